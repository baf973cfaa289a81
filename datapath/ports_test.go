package datapath

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// udpStream sends numbered datagrams (seqPayload) from h to to:port, four
// every millisecond, until stop is called (or the test ends); stop returns
// how many it sent.
func udpStream(t *testing.T, h *host, to net.IP, port, size int) (stop func() int) {
	t.Helper()
	conn := h.dialUDP(t, to, port)
	var quit atomic.Bool
	done := make(chan struct{})
	var sent int
	var err error
	go func() {
		defer close(done)
		pay := seqPayload(size)
		for !quit.Load() {
			if _, err = conn.Write(pay(sent)); err != nil {
				return
			}
			if sent++; sent%4 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			quit.Store(true)
			<-done
			conn.Close()
			if err != nil {
				t.Errorf("stream from %s after %d datagrams: %v", h.name, sent, err)
			}
		})
		return sent
	}
	t.Cleanup(func() { stop() })
	return stop
}

// Adding and removing a third port again and again while a streams to b
// disturbs nothing: every datagram of the stream arrives, intact, once.
// Each time c is back, it gets what a sends it.
func TestAddRemovePortUnderTraffic(t *testing.T) {
	const rounds, size, toC = 10, 200, 5
	tp := newTopo(t, topoOptions{})
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	tp.addFlows(t,
		"in_port={a},udp,tp_dst=7600,actions=output:{b}",
		"in_port={a},udp,tp_dst=7601,actions=output:{c}",
		"in_port={c},udp,actions=output:{a}",
	)
	atB := listenUDP(t, tp.b.NS, tp.b.ip, 7600)
	atC := listenUDP(t, c.NS, c.ip, 7601)

	stop := udpStream(t, tp.a, tp.b.ip, 7600, size)
	for r := range rounds {
		time.Sleep(20 * time.Millisecond)
		if err := tp.sw.DeletePort(c.port()); err != nil {
			t.Fatalf("round %d: delete port c: %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := tp.sw.AddPort(PortSpec{Name: c.port()}); err != nil {
			t.Fatalf("round %d: add port c: %v", r, err)
		}
		if err := trySendUDP(tp.a, c.ip, 7601, toC, seqPayload(size), sendOpts{}); err != nil {
			t.Fatal(err)
		}
		got := atC.collect(toC, 5*time.Second)
		if len(got) != toC {
			t.Logf("port a: %+v", tp.stats(t, tp.a))
			t.Logf("port c: %+v", tp.stats(t, c))
			for _, fi := range tp.sw.Flows() {
				t.Logf("flow %d: %v", fi.Flow.ID, fi.Flow)
			}
			t.Fatalf("round %d: %d of %d datagrams reached c after it came back", r, len(got), toC)
		}
	}
	sent := stop()
	if sent < 100 {
		t.Fatalf("the stream sent only %d datagrams", sent)
	}
	checkSeq(t, "a to b", atB.collect(sent, 10*time.Second), sent, size)
	if err := tp.sw.Health(); err != nil {
		t.Fatalf("health: %v", err)
	}
	checkFrames(t, tp.sw, "after port churn")
}

// Every frame of every poller's UMEM is always somewhere the poller can
// count (pool, fill, RX, TX or completion ring) once traffic stops: after
// forwarding with copies (two outputs), after the TX ring overflows (the
// output device down, and a burst into tiny rings), after ports go, and
// after Close. Drops at the TX ring are counted, and the counters add up.
func TestFrameAccounting(t *testing.T) {
	const size = 100
	// Tiny rings and plenty of frames: the TX rings overflow, the pool
	// does not run dry.
	tp := newTopo(t, topoOptions{Config: Config{RingSize: 64, BatchSize: 64, FramesPerPoller: 65536}})
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	ids := tp.addFlows(t,
		"in_port={a},udp,tp_dst=7700,actions=output:{b}",
		"in_port={a},udp,tp_dst=7701,actions=output:{b},output:{c}",
		"in_port={a},udp,tp_dst=7702,actions=output:{b},mod_tp_dst:7700,output:{b},output:{b}",
	)
	atB := listenUDP(t, tp.b.NS, tp.b.ip, 7700)
	atB1 := listenUDP(t, tp.b.NS, tp.b.ip, 7701)
	listenUDP(t, tp.b.NS, tp.b.ip, 7702)
	atC := listenUDP(t, c.NS, c.ip, 7701)

	t.Run("forwarding with copies", func(t *testing.T) {
		const n = 200
		a0, b0, c0 := tp.stats(t, tp.a), tp.stats(t, tp.b), tp.stats(t, c)
		sendUDP(t, tp.a, tp.b.ip, 7700, n, seqPayload(size), sendOpts{Burst: 4})
		sendUDP(t, tp.a, tp.b.ip, 7701, n, seqPayload(size), sendOpts{Burst: 4})
		// a's 64-entry RX ring may overflow on a busy machine. Whatever XDP
		// redirected, a's socket received or counted as dropped; the flows
		// counted what was received; all of it went out, to c as well for
		// the second flow.
		var a, b, cs PortStats
		var f [2]FlowInfo
		eventually(t, 5*time.Second, func() bool {
			a, b, cs = tp.stats(t, tp.a), tp.stats(t, tp.b), tp.stats(t, c)
			for i := range f {
				var err error
				if f[i], err = tp.sw.Flow(ids[i]); err != nil {
					t.Fatal(err)
				}
			}
			rx := a.RxPackets - a0.RxPackets
			redirected := a.XDP["redirect"] - a0.XDP["redirect"]
			return redirected >= n && rx+a.XSK.RxDropped-a0.XSK.RxDropped == redirected &&
				f[0].Packets+f[1].Packets == rx &&
				b.TxPackets-b0.TxPackets+b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull] == rx &&
				cs.TxPackets-c0.TxPackets+cs.Drops[DropTxRingFull]-c0.Drops[DropTxRingFull] == f[1].Packets
		}, func() string {
			return fmt.Sprintf("a: %d redirected, %d received, %d dropped at the socket; flows %d + %d; b sent %d (+%d ring full), c sent %d (+%d ring full)",
				a.XDP["redirect"]-a0.XDP["redirect"], a.RxPackets-a0.RxPackets, a.XSK.RxDropped-a0.XSK.RxDropped,
				f[0].Packets, f[1].Packets, b.TxPackets-b0.TxPackets, b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull],
				cs.TxPackets-c0.TxPackets, cs.Drops[DropTxRingFull]-c0.Drops[DropTxRingFull])
		})
		if f[0].Packets < n/2 || f[1].Packets < n/2 {
			t.Fatalf("the flows forwarded only %d and %d of %d datagrams each", f[0].Packets, f[1].Packets, n)
		}
		// What b's port sent arrives, intact and once.
		var got [2][]udpMsg
		sent := int(b.TxPackets - b0.TxPackets)
		for deadline := time.Now().Add(5 * time.Second); len(got[0])+len(got[1]) < sent && time.Now().Before(deadline); {
			got[0] = append(got[0], atB.drain()...)
			got[1] = append(got[1], atB1.drain()...)
			time.Sleep(5 * time.Millisecond)
		}
		got[0] = append(got[0], atB.quiet(100*time.Millisecond)...)
		got[1] = append(got[1], atB1.quiet(10*time.Millisecond)...)
		checkIntact(t, "a to b", got[0], n, size)
		checkIntact(t, "a to b (copy)", got[1], n, size)
		if k := len(got[0]) + len(got[1]); k != sent {
			t.Fatalf("port b sent %d frames, %d arrived", sent, k)
		}
		// c's stack drops the copies (b's MAC).
		if got := atC.quiet(10 * time.Millisecond); len(got) > 0 {
			t.Fatalf("c accepted %d datagrams addressed to b", len(got))
		}
		checkFrames(t, tp.sw, "after forwarding")
	})

	t.Run("tx ring full: device down", func(t *testing.T) {
		const n = 300
		a0, b0 := tp.stats(t, tp.a), tp.stats(t, tp.b)
		if err := netlink.LinkSetDown(tp.b.Local); err != nil {
			t.Fatal(err)
		}
		sendUDP(t, tp.a, tp.b.ip, 7700, n, seqPayload(size), sendOpts{})
		// Whatever XDP redirected, a's socket received or counted as
		// dropped (its 64-entry RX ring may overflow on a busy machine);
		// whatever userspace received, it queued for b or counted as
		// dropped at b's full TX ring.
		var a, b PortStats
		eventually(t, 5*time.Second, func() bool {
			a, b = tp.stats(t, tp.a), tp.stats(t, tp.b)
			rx := a.RxPackets - a0.RxPackets
			redirected := a.XDP["redirect"] - a0.XDP["redirect"]
			return redirected >= n/2 &&
				rx+a.XSK.RxDropped-a0.XSK.RxDropped+a.XSK.RxRingFull-a0.XSK.RxRingFull == redirected &&
				b.TxPackets-b0.TxPackets+b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull] == rx
		}, func() string {
			return fmt.Sprintf("a: %d redirected, %d received + %d dropped at the socket; b: %d queued + %d ring full, want the received",
				a.XDP["redirect"]-a0.XDP["redirect"], a.RxPackets-a0.RxPackets, a.XSK.RxDropped-a0.XSK.RxDropped+a.XSK.RxRingFull-a0.XSK.RxRingFull,
				b.TxPackets-b0.TxPackets, b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull])
		})
		rx := a.RxPackets - a0.RxPackets
		queued := b.TxPackets - b0.TxPackets
		if rx <= 64 || queued > 64 || b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull] < rx-64 {
			t.Fatalf("port b down: of %d frames received, %d queued on a 64-entry TX ring, %d dropped", rx, queued, b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull])
		}
		checkFrames(t, tp.sw, "with b down")
		if err := netlink.LinkSetUp(tp.b.Local); err != nil {
			t.Fatal(err)
		}
		got := atB.collect(int(queued), 5*time.Second)
		if len(got) != int(queued) {
			t.Fatalf("%d of the %d frames queued while b was down arrived once it came up", len(got), queued)
		}
		if extra := atB.quiet(100 * time.Millisecond); len(extra) > 0 {
			t.Fatalf("%d more datagrams than queued arrived", len(extra))
		}
		checkFrames(t, tp.sw, "after b came back")
	})

	t.Run("tx ring full: burst", func(t *testing.T) {
		// Each frame goes out three times to b: 64 frames received fill
		// 192 TX slots of a 64-entry ring.
		const n = 3000
		a0, b0 := tp.stats(t, tp.a), tp.stats(t, tp.b)
		for range 3 {
			if err := trySendUDP(tp.a, tp.b.ip, 7702, n/3, seqPayload(size), sendOpts{Burst: 64}); err != nil {
				t.Fatal(err)
			}
		}
		// Whatever XDP redirected, the socket received or counted as
		// dropped; whatever userspace received, it sent three times or
		// counted as dropped at the TX ring.
		var a, b PortStats
		eventually(t, 10*time.Second, func() bool {
			a, b = tp.stats(t, tp.a), tp.stats(t, tp.b)
			rx := a.RxPackets - a0.RxPackets
			redirected := a.XDP["redirect"] - a0.XDP["redirect"]
			return redirected >= n/2 &&
				rx+a.XSK.RxDropped-a0.XSK.RxDropped+a.XSK.RxRingFull-a0.XSK.RxRingFull == redirected &&
				b.TxPackets-b0.TxPackets+b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull] == 3*rx
		}, func() string {
			return fmt.Sprintf("a: %d redirected, %d received + %d dropped at the socket; b: %d sent + %d ring full, want 3x received",
				a.XDP["redirect"]-a0.XDP["redirect"], a.RxPackets-a0.RxPackets, a.XSK.RxDropped-a0.XSK.RxDropped+a.XSK.RxRingFull-a0.XSK.RxRingFull,
				b.TxPackets-b0.TxPackets, b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull])
		})
		t.Logf("a: %d of %d redirected, %d received, %d dropped at the socket; b: %d sent, %d dropped (TX ring full)",
			a.XDP["redirect"]-a0.XDP["redirect"], n, a.RxPackets-a0.RxPackets, a.XSK.RxDropped-a0.XSK.RxDropped,
			b.TxPackets-b0.TxPackets, b.Drops[DropTxRingFull]-b0.Drops[DropTxRingFull])
		checkFrames(t, tp.sw, "after the burst")
	})

	t.Run("port removal", func(t *testing.T) {
		if err := tp.sw.DeletePort(c.port()); err != nil {
			t.Fatal(err)
		}
		checkFrames(t, tp.sw, "after removing c")
		for _, h := range []*host{tp.a, tp.b} {
			if err := tp.sw.DeletePort(h.port()); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range checkFrames(t, tp.sw, "after removing every port") {
			if l.Free != l.Total {
				t.Fatalf("no port left, yet frames are out of the pool: %v", l)
			}
		}
	})

	t.Run("close", func(t *testing.T) {
		tp.sw.mu.Lock()
		pollers := slices.Clone(tp.sw.pollers)
		tp.sw.mu.Unlock()
		if len(pollers) == 0 {
			t.Fatal("no pollers")
		}
		if err := tp.sw.Close(); err != nil {
			t.Fatal(err)
		}
		for _, pl := range pollers {
			<-pl.done
			if p := pl.umem.Pool(); p.Free() != p.Total() {
				t.Errorf("poller %d: %d of %d frames in the pool after Close", pl.queue, p.Free(), p.Total())
			}
		}
	})
}

// A port whose netdev disappears under the switch (a veth deleted, a NIC
// unplugged) harms nothing else: the pollers keep running, the other ports
// forward, the port becomes absent (and says so in health), can still be
// deleted, and its frames come back.
func TestPortDeviceVanishes(t *testing.T) {
	const n, size = 20, 100
	tp := newTopo(t, topoOptions{})
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	tp.addFlows(t, "in_port={a},udp,tp_dst=7900,actions=output:{b}", "in_port={a},udp,tp_dst=7901,actions=output:{c}")
	atB := listenUDP(t, tp.b.NS, tp.b.ip, 7900)
	atC := listenUDP(t, c.NS, c.ip, 7901)
	sendUDP(t, tp.a, c.ip, 7901, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to c", atC.collect(n, 5*time.Second), n, size)

	if err := netlink.LinkDel(c.Local); err != nil {
		t.Fatalf("delete c's veth: %v", err)
	}
	// Traffic for the vanished port, then for a live one.
	sendUDP(t, tp.a, c.ip, 7901, n, seqPayload(size), sendOpts{})
	sendUDP(t, tp.a, tp.b.ip, 7900, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to b", atB.collect(n, 5*time.Second), n, size)
	waitPortState(t, tp.sw, c.port(), PortAbsent)
	if err := tp.sw.Health(); err == nil || !strings.Contains(err.Error(), c.port()+" absent") {
		t.Fatalf("health after c's device vanished: %v; want the port absent", err)
	}
	if err := tp.sw.DeletePort(c.port()); err != nil {
		t.Fatalf("delete port c: %v", err)
	}
	checkFrames(t, tp.sw, "after deleting the vanished port")
	sendUDP(t, tp.a, tp.b.ip, 7900, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to b", atB.collect(n, 5*time.Second), n, size)
}
