package datapath

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/testenv"
)

// portInfo returns h's port.
func (tp *topo) portInfo(t testing.TB, h *host) PortInfo {
	t.Helper()
	pi, err := tp.sw.Port(h.port())
	if err != nil {
		t.Fatal(err)
	}
	return pi
}

// waitQueues waits until h's port serves queues queues, all active.
func (tp *topo) waitQueues(t testing.TB, h *host, queues int, within time.Duration) {
	t.Helper()
	var pi PortInfo
	eventually(t, within, func() bool {
		pi = tp.portInfo(t, h)
		return pi.Queues == queues && pi.ActiveQueues == queues && pi.State == "up"
	}, func() string { return fmt.Sprintf("port %s: %+v, want %d queues served", h.name, pi, queues) })
}

// takeQueue binds an AF_XDP socket of a UMEM of its own to (dev, queue), as
// another program would, until the test ends or the returned func is
// called.
func takeQueue(t testing.TB, ifindex, queue int) (release func()) {
	t.Helper()
	u, err := afxdp.NewUmem(afxdp.UmemOptions{NumFrames: 64, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	s, err := afxdp.NewSocket(u, afxdp.SocketOptions{Ifindex: ifindex, Queue: queue, RxSize: 16, TxSize: 16, FillSize: 16, CompletionSize: 16})
	if err != nil {
		u.Close()
		t.Fatalf("bind a socket of our own to ifindex %d queue %d: %v", ifindex, queue, err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			s.Close()
			u.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// A port serves the active RX queues of its device, and follows `ethtool
// -L`: through the link update the kernel sends when an up veth changes
// channels, through the periodic check when nothing is sent (the device is
// down), and at the next port change. A queue it cannot open leaves the
// port degraded, said in PortInfo and Health, until a later check opens
// it.
func TestQueueCountChange(t *testing.T) {
	needCPUs(t, 2)
	const n, size, port = 100, 100, 9500

	t.Run("link update", func(t *testing.T) {
		tp := newTopo(t, topoOptions{Config: Config{QueueCheck: -1}})
		a := tp.portInfo(t, tp.a)
		if a.Queues != 1 || a.ActiveQueues != 1 || a.MaxQueues != tp.a.Local.Attrs().NumRxQueues || a.MaxQueues < 2 {
			t.Fatalf("port a on a default veth: %+v, want 1 active of %d", a, tp.a.Local.Attrs().NumRxQueues)
		}
		tp.addFlows(t, "in_port={a},udp,actions=output:{b}")
		atB := listenUDP(t, tp.b.NS, tp.b.ip, port)
		if err := testenv.SetChannels(tp.a.LocalName(), 2, 2); err != nil {
			t.Fatal(err)
		}
		tp.waitQueues(t, tp.a, 2, 5*time.Second)
		// The peer sends on two queues too: queue 1 reaches poller 1, which
		// hands the frames to poller 0, b's only queue.
		if err := tp.a.NS.Do(func() error { return testenv.SetChannels(tp.a.PeerName(), 1, 2) }); err != nil {
			t.Fatal(err)
		}
		p0 := pollerStats(tp.sw)
		if err := sendOnQueue(tp.a, 1, queueFrames(t, tp.a, tp.b, port, 0, n, size)); err != nil {
			t.Fatal(err)
		}
		tp.checkSeq(t, "a's new queue 1 to b", atB.collect(n, 10*time.Second), n, size)
		if got := pollerStats(tp.sw)[1].Packets - p0[1].Packets; got != n {
			t.Fatalf("poller 1 received %d frames, want %d", got, n)
		}

		// Fewer queues: the kernel refuses to deactivate a queue a socket
		// is bound to. If it ever lets it happen, the port follows.
		if err := tp.a.NS.Do(func() error { return testenv.SetChannels(tp.a.PeerName(), 1, 1) }); err != nil {
			t.Fatal(err)
		}
		err := testenv.SetChannels(tp.a.LocalName(), 1, 1)
		t.Logf("ethtool -L rx 1 with a socket on queue 1: %v", err)
		switch {
		case errors.Is(err, unix.EINVAL):
			time.Sleep(100 * time.Millisecond)
			if pi := tp.portInfo(t, tp.a); pi.Queues != 2 || pi.ActiveQueues != 2 {
				t.Fatalf("a refused shrink changed the port: %+v", pi)
			}
		case err == nil:
			tp.waitQueues(t, tp.a, 1, 5*time.Second)
		default:
			t.Fatal(err)
		}
		sendUDP(t, tp.a, tp.b.ip, port, n, seqPayload(size), sendOpts{})
		tp.checkSeq(t, "a to b after the shrink", atB.collect(n, 10*time.Second), n, size)
		checkFrames(t, tp.sw, "after the queue changes")
	})

	t.Run("periodic check", func(t *testing.T) {
		tp := newTopo(t, topoOptions{Config: Config{QueueCheck: 50 * time.Millisecond}})
		// Down, a veth changes channels without a link update.
		if err := netlink.LinkSetDown(tp.a.Local); err != nil {
			t.Fatal(err)
		}
		if err := testenv.SetChannels(tp.a.LocalName(), 2, 2); err != nil {
			t.Fatal(err)
		}
		tp.waitQueues(t, tp.a, 2, 5*time.Second)
	})

	t.Run("next port change, degraded meanwhile", func(t *testing.T) {
		tp := newTopo(t, topoOptions{Config: Config{QueueCheck: -1}})
		if err := netlink.LinkSetDown(tp.a.Local); err != nil {
			t.Fatal(err)
		}
		if err := testenv.SetChannels(tp.a.LocalName(), 2, 2); err != nil {
			t.Fatal(err)
		}
		// Another program takes the new queue first.
		release := takeQueue(t, tp.a.LocalIndex(), 1)
		c := tp.addHost(t, "c")
		tp.addPort(t, c) // a change of port c: the switch looks at a too
		pi := tp.portInfo(t, tp.a)
		if pi.State != "degraded" || pi.Queues != 1 || pi.ActiveQueues != 2 ||
			!strings.Contains(pi.Problem, "queue 1") || !strings.Contains(pi.Problem, "in use") {
			t.Fatalf("port a with queue 1 taken: %+v, want degraded, 1 of 2 served, saying why", pi)
		}
		if err := tp.sw.Health(); err == nil || !strings.Contains(err.Error(), tp.a.port()) {
			t.Fatalf("health with a degraded port: %v", err)
		}
		release()
		if err := tp.sw.DeletePort(c.port()); err != nil {
			t.Fatal(err)
		}
		if pi := tp.portInfo(t, tp.a); pi.State != "up" || pi.Queues != 2 || pi.Problem != "" {
			t.Fatalf("port a once queue 1 is free and a port changed: %+v", pi)
		}
		if err := tp.sw.Health(); err != nil {
			t.Fatalf("health: %v", err)
		}
		checkFrames(t, tp.sw, "after the queue came")
	})
}

// A port the kernel refuses is an error of the right kind, naming the
// device (and the queue): a device that does not exist, an XDP hook or a
// queue another program holds, native XDP on a driver without it. A failed
// AddPort leaves nothing behind.
func TestAddPortErrors(t *testing.T) {
	ns := testenv.NewNS(t)
	v := testenv.NewVeth(t, ns, "xe", testenv.VethOptions{})
	// A bridge has no native XDP (and this kernel has no dummy driver).
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: testenv.RandName("xbr")}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	sw := newSwitch(t, Config{})
	other := newSwitch(t, Config{})

	tests := []struct {
		name  string
		setup func(t *testing.T)
		spec  PortSpec
		kind  error
		says  []string
	}{
		{"no such device", nil, PortSpec{Name: "nosuchdev0"}, ErrNoSuchDevice, []string{"nosuchdev0", "no such network device"}},
		{"xdp held by another program", func(t *testing.T) {
			if _, err := other.AddPort(PortSpec{Name: v.LocalName()}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.DeletePort(v.LocalName()) })
		}, PortSpec{Name: v.LocalName()}, ErrBusy, []string{v.LocalName()}},
		{"queue held by another socket", func(t *testing.T) {
			takeQueue(t, v.LocalIndex(), 0)
		}, PortSpec{Name: v.LocalName()}, ErrBusy, []string{v.LocalName(), "queue 0", "in use"}},
		{"native mode the driver cannot do", nil, PortSpec{Name: br.Name, Mode: ModeNative}, ErrNotSupported, []string{br.Name, "native"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			_, err := sw.AddPort(tt.spec)
			t.Logf("AddPort(%+v): %v", tt.spec, err)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("AddPort(%+v) = %v, want %v", tt.spec, err, tt.kind)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if ps := sw.Ports(); len(ps) != 0 {
				t.Fatalf("a failed AddPort left ports: %+v", ps)
			}
		})
	}
	// Nothing was left behind: the device is a port again at once.
	if _, err := sw.AddPort(PortSpec{Name: v.LocalName()}); err != nil {
		t.Fatalf("add the veth after the failures: %v", err)
	}
	checkFrames(t, sw, "after failed AddPorts")
}
