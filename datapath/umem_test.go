package datapath

import (
	"testing"
	"time"
)

// A poller whose UMEM is full puts the next socket on another UMEM:
// forwarding between ports of the two copies the frames, both ways, every
// frame stays accounted for, and the extra UMEM goes with its last port.
func TestExtraUmem(t *testing.T) {
	const size, n = 200, 100
	// 3 rings' worth: room for a's and b's sockets only.
	tp := newTopo(t, topoOptions{Config: Config{RingSize: 256, FramesPerPoller: 3 * 256}})
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	for _, tc := range []struct {
		name string
		want string
	}{{tp.a.port(), "shared"}, {tp.b.port(), "shared"}, {c.port(), "extra"}} {
		p, err := tp.sw.Port(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if p.UmemMode != tc.want {
			t.Errorf("port %s: umem mode %q, want %q", tc.name, p.UmemMode, tc.want)
		}
	}
	extras := func() int {
		tp.sw.mu.Lock()
		pl := tp.sw.pollers[0]
		tp.sw.mu.Unlock()
		var k int
		if err := pl.do(func() error { k = len(pl.extra); return nil }); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if k := extras(); k != 1 {
		t.Fatalf("%d extra UMEMs with 3 ports, want 1", k)
	}
	tp.addFlows(t,
		"in_port={a},udp,tp_dst=7700,actions=output:{c}",
		"in_port={c},udp,tp_dst=7701,actions=output:{a}",
		"in_port={c},udp,tp_dst=7702,actions=output:{b}",
	)
	atC := listenUDP(t, c.NS, c.ip, 7700)
	atA := listenUDP(t, tp.a.NS, tp.a.ip, 7701)
	atB := listenUDP(t, tp.b.NS, tp.b.ip, 7702)
	sendUDP(t, tp.a, c.ip, 7700, n, seqPayload(size), sendOpts{})
	sendUDP(t, c, tp.a.ip, 7701, n, seqPayload(size), sendOpts{})
	sendUDP(t, c, tp.b.ip, 7702, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to c", atC.collect(n, 5*time.Second), n, size)
	checkSeq(t, "c to a", atA.collect(n, 5*time.Second), n, size)
	checkSeq(t, "c to b", atB.collect(n, 5*time.Second), n, size)
	checkFrames(t, tp.sw, "after forwarding between two UMEMs")

	if err := tp.sw.DeletePort(c.port()); err != nil {
		t.Fatal(err)
	}
	if k := extras(); k != 0 {
		t.Fatalf("%d extra UMEMs after the port on it went, want 0", k)
	}
	checkFrames(t, tp.sw, "after the port on the extra UMEM went")
}
