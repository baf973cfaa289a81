package datapath

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ports with two RX queues get a socket per queue and two pollers. Traffic
// from many source ports spreads over both queues (the sending veth picks
// its TX queue, which is the receiving end's RX queue, by flow hash), both
// pollers forward, and everything arrives.
func TestTwoQueues(t *testing.T) {
	const flows, perFlow, size = 64, 10, 120
	tp := newTopo(t, topoOptions{Queues: 2})
	for _, h := range []*host{tp.a, tp.b} {
		pi, err := tp.sw.Port(h.port())
		if err != nil {
			t.Fatal(err)
		}
		if pi.Queues != 2 {
			t.Fatalf("port %s has %d queues, want 2", h.name, pi.Queues)
		}
	}
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}", "in_port={b},udp,actions=output:{a}")
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 9300)

	// Each flow (source port) sends its own numbered datagrams.
	payload := func(flow int) func(int) []byte {
		return func(i int) []byte { return seqPayload(size)(flow*perFlow + i) }
	}
	var wg sync.WaitGroup
	errs := make([]error, flows)
	for f := range flows {
		wg.Go(func() { errs[f] = trySendUDP(tp.a, tp.b.ip, 9300, perFlow, payload(f), sendOpts{}) })
		if f%8 == 7 {
			wg.Wait() // a few flows at a time: a modest rate
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, "a to b", sink.collect(flows*perFlow, 10*time.Second), flows*perFlow, size)

	st := tp.sw.Stats()
	if len(st.Pollers) != 2 {
		t.Fatalf("%d pollers, want 2", len(st.Pollers))
	}
	for _, p := range st.Pollers {
		if p.Packets == 0 {
			t.Errorf("poller %d forwarded nothing: %+v", p.Queue, st.Pollers)
		}
	}
	for _, ps := range st.Ports {
		if n := ps.Drops.Total(""); n != 0 {
			t.Errorf("port %s dropped frames: %+v", ps.Name, ps)
		}
	}
	if a := tp.stats(t, tp.a); a.RxPackets != flows*perFlow {
		t.Errorf("port a received %d frames in userspace, want %d", a.RxPackets, flows*perFlow)
	}
	if t.Failed() {
		t.Logf("stats: %+v", st)
	}
}

// sendOnQueue sends frames out of h's namespace end on its TX queue q,
// which a veth delivers on RX queue q of the port. A packet socket that
// bypasses the qdisc has the kernel pick TX queue cpu % queues, so the
// frames go from a thread pinned to CPU q, in bursts of 16 a millisecond
// apart (the veth's XDP ring holds 256).
func sendOnQueue(h *host, q int, frames [][]byte) error {
	if q >= runtime.NumCPU() {
		return fmt.Errorf("queue %d: no CPU %d to send from", q, q)
	}
	return h.NS.Do(func() error {
		// Do's thread is never reused: its CPU mask goes with it.
		var set unix.CPUSet
		set.Set(q)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin to cpu %d: %w", q, err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fmt.Errorf("qdisc bypass: %w", err)
		}
		to := &unix.SockaddrLinklayer{Ifindex: h.PeerIndex()}
		for i, f := range frames {
			if i > 0 && i%16 == 0 {
				time.Sleep(time.Millisecond)
			}
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return fmt.Errorf("frame %d on queue %d: %w", i, q, err)
			}
		}
		return nil
	})
}

// queueFrames builds n UDP frames from host from to host to's port, with
// seqPayload(size) payloads first..first+n-1.
func queueFrames(t testing.TB, from, to *host, port uint16, first, n, size int) [][]byte {
	t.Helper()
	fs := make([][]byte, n)
	pay := seqPayload(size)
	for i := range fs {
		fs[i] = udpFrame(t, from.PeerMAC, to.PeerMAC, from.ip, to.ip, 40000, port, 64, pay(first+i))
	}
	return fs
}

// checkSeq is checkSeq, with the switch's counters in the log if it fails.
func (tp *topo) checkSeq(t testing.TB, what string, got []udpMsg, n, size int) {
	t.Helper()
	if len(got) != n {
		st := tp.sw.Stats()
		for _, p := range st.Ports {
			t.Logf("port %s: %+v", p.Name, p)
		}
		t.Logf("pollers: %+v", st.Pollers)
	}
	checkSeq(t, what, got, n, size)
}

func needCPUs(t testing.TB, n int) {
	t.Helper()
	if runtime.NumCPU() < n {
		t.Skipf("needs %d CPUs to send on %d queues, has %d", n, n, runtime.NumCPU())
	}
}

// pollerStats returns the pollers' counters by queue.
func pollerStats(sw *Switch) map[int]PollerStats {
	m := map[int]PollerStats{}
	for _, p := range sw.Stats().Pollers {
		m[p.Queue] = p
	}
	return m
}

// A two-queue port forwards both queues into a one-queue port (a veth made
// the way users make them) with nothing lost: poller 1, which has no
// socket of the one-queue port, hands its frames to poller 0. Every frame
// of every UMEM stays accounted for, also when the output port goes and
// comes back under traffic.
func TestHandoffToFewerQueues(t *testing.T) {
	needCPUs(t, 2)
	const n, size, port = 300, 100, 9400
	tp := newTopo(t, topoOptions{HostQueues: []int{2, 0}})
	for _, c := range []struct {
		h      *host
		queues int
	}{{tp.a, 2}, {tp.b, 1}} {
		pi, err := tp.sw.Port(c.h.port())
		if err != nil {
			t.Fatal(err)
		}
		if pi.Queues != c.queues || pi.ActiveQueues != c.queues || pi.State != "up" {
			t.Fatalf("port %s: %+v, want %d queues served", c.h.name, pi, c.queues)
		}
	}
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}", "in_port={b},udp,actions=output:{a}")
	atB := listenUDP(t, tp.b.NS, tp.b.ip, port)

	t.Run("both queues to one", func(t *testing.T) {
		a0, b0, p0 := tp.stats(t, tp.a), tp.stats(t, tp.b), pollerStats(tp.sw)
		for q := range 2 {
			if err := sendOnQueue(tp.a, q, queueFrames(t, tp.a, tp.b, port, q*n, n, size)); err != nil {
				t.Fatal(err)
			}
		}
		tp.checkSeq(t, "a's two queues to b", atB.collect(2*n, 10*time.Second), 2*n, size)
		a, b, p := tp.stats(t, tp.a), tp.stats(t, tp.b), pollerStats(tp.sw)
		if got := p[1].Packets - p0[1].Packets; got != n {
			t.Errorf("poller 1 received %d frames, want %d (the frames sent on queue 1)", got, n)
		}
		if got := p[0].Handoffs - p0[0].Handoffs; got != n {
			t.Errorf("poller 0 took %d frames from poller 1, want %d", got, n)
		}
		if a.RxPackets-a0.RxPackets != 2*n || b.TxPackets-b0.TxPackets != 2*n {
			t.Errorf("a received %d, b sent %d; want %d each", a.RxPackets-a0.RxPackets, b.TxPackets-b0.TxPackets, 2*n)
		}
		for _, d := range []struct {
			name   string
			before PortStats
			after  PortStats
		}{{"a", a0, a}, {"b", b0, b}} {
			if got := d.after.Drops.Total("") - d.before.Drops.Total(""); got != 0 {
				t.Errorf("port %s dropped %d frames: %v", d.name, got, d.after.Drops)
			}
		}
		checkFrames(t, tp.sw, "after forwarding two queues into one")
	})

	t.Run("one queue to two", func(t *testing.T) {
		atA := listenUDP(t, tp.a.NS, tp.a.ip, port)
		sendUDP(t, tp.b, tp.a.ip, port, n, seqPayload(size), sendOpts{})
		checkSeq(t, "b to a", atA.collect(n, 10*time.Second), n, size)
	})

	t.Run("output port removed under traffic", func(t *testing.T) {
		stop := make(chan struct{})
		done := make(chan error)
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if err := sendOnQueue(tp.a, 1, queueFrames(t, tp.a, tp.b, port, 0, 16, size)); err != nil {
					done <- err
					return
				}
			}
		}()
		for range 3 {
			time.Sleep(20 * time.Millisecond)
			if err := tp.sw.DeletePort(tp.b.port()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			if _, err := tp.sw.AddPort(PortSpec{Name: tp.b.port()}); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		checkFrames(t, tp.sw, "after b went and came back under traffic")
		atB.quiet(100 * time.Millisecond)
		if err := sendOnQueue(tp.a, 1, queueFrames(t, tp.a, tp.b, port, 0, n, size)); err != nil {
			t.Fatal(err)
		}
		tp.checkSeq(t, "queue 1 to b, back", atB.collect(n, 10*time.Second), n, size)
		for _, p := range tp.sw.Stats().Pollers {
			if p.HandoffLost != 0 {
				t.Errorf("poller %d lost %d handed-over frames", p.Queue, p.HandoffLost)
			}
		}
	})
}

// Hand-offs keep every frame accounted for when the output's TX ring is
// full: what the destination poller cannot queue it drops and counts at
// the output port, and what the source cannot hand over (no frame lent)
// the source counts at the input port.
func TestHandoffFrameAccounting(t *testing.T) {
	needCPUs(t, 2)
	const n, size, port = 300, 100, 9400
	tp := newTopo(t, topoOptions{HostQueues: []int{2, 0}, Config: Config{RingSize: 64}})
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}")
	atB := listenUDP(t, tp.b.NS, tp.b.ip, port)

	// b down: its 64-entry TX ring fills; what poller 1 hands over
	// beyond it is dropped and counted at b.
	a0, b0 := tp.stats(t, tp.a), tp.stats(t, tp.b)
	if err := netlink.LinkSetDown(tp.b.Local); err != nil {
		t.Fatal(err)
	}
	if err := sendOnQueue(tp.a, 1, queueFrames(t, tp.a, tp.b, port, 0, n, size)); err != nil {
		t.Fatal(err)
	}
	var a, b PortStats
	eventually(t, 5*time.Second, func() bool {
		a, b = tp.stats(t, tp.a), tp.stats(t, tp.b)
		rx := a.RxPackets - a0.RxPackets
		return rx > 64 && rx == b.TxPackets-b0.TxPackets+b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull]+
			a.Drops[DropHandoffFull]-a0.Drops[DropHandoffFull]
	}, func() string {
		return fmt.Sprintf("a received %d; b queued %d + %d TX ring full; a %d hand-off full",
			a.RxPackets-a0.RxPackets, b.TxPackets-b0.TxPackets, b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull],
			a.Drops[DropHandoffFull]-a0.Drops[DropHandoffFull])
	})
	if full := b.Drops[DropTxRingFull] - b0.Drops[DropTxRingFull]; full == 0 {
		t.Fatalf("b down: no frame dropped at its TX ring (%d queued)", b.TxPackets-b0.TxPackets)
	}
	checkFrames(t, tp.sw, "with b down")
	if err := netlink.LinkSetUp(tp.b.Local); err != nil {
		t.Fatal(err)
	}
	queued := int(b.TxPackets - b0.TxPackets)
	checkIntact(t, "queued while b was down", atB.collect(queued, 5*time.Second), n, size)
	checkFrames(t, tp.sw, "after b came back")
}
