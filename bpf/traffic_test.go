package bpf

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Real frames through the attached program: UDP from the peer namespace to
// the local end's address passes with no rules, stops at a DROP rule for
// its destination port, goes to an AF_XDP socket with a REDIRECT rule, and
// passes again once the rule is deleted. Other ports pass throughout.
func TestTraffic(t *testing.T) {
	for _, mode := range []Mode{ModeNative, ModeGeneric} {
		t.Run(mode.String(), func(t *testing.T) { testTraffic(t, mode) })
	}
}

func listenUDP(t *testing.T, ip net.IP) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testTraffic(t *testing.T, mode Mode) {
	const ofport, n = 3, 20
	var b [1]byte
	_, _ = rand.Read(b[:])
	subnet := fmt.Sprintf("10.213.%d.", b[0])
	v := newVeth(t, subnet+"1/24", subnet+"2/24")
	v.AddNeigh(t, v.LocalAddr, v.LocalMAC)

	o := load(t, false)
	a, err := o.Attach(v.LocalIndex(), mode)
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode() != mode {
		t.Fatalf("attached as %v, want %v", a.Mode(), mode)
	}
	if err := o.SetPort(v.LocalIndex(), ofport); err != nil {
		t.Fatal(err)
	}
	xsk := newTestXSK(t, v.LocalIndex(), 0)
	if err := o.RegisterSocket(ofport, 0, xsk.fd); err != nil {
		t.Fatal(err)
	}

	rx1, rx2 := listenUDP(t, v.LocalAddr), listenUDP(t, v.LocalAddr)
	var tx *net.UDPConn
	if err := v.NS.Do(func() (err error) {
		tx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: v.PeerAddr})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	send := func(to *net.UDPConn) {
		t.Helper()
		for i := range n {
			if _, err := tx.WriteToUDP([]byte{byte(i)}, to.LocalAddr().(*net.UDPAddr)); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, 64)
	expect := func(c *net.UDPConn, want int) {
		t.Helper()
		for i := range want {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err != nil {
				t.Fatalf("datagram %d of %d: %v", i+1, want, err)
			}
		}
	}
	expectNone := func(c *net.UDPConn) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("want nothing, read: %v", err)
		}
	}

	port1 := uint16(rx1.LocalAddr().(*net.UDPAddr).Port)
	mask := maskOf(spanDlType, spanNwProto, spanTpDst)
	rule := func(vd steer.Verdict) steer.Rule {
		return ruleFor(fields{dlType: 0x0800, proto: 17, tpDst: port1}.key(), 0, mask, steer.MakeRank(100, 0), vd)
	}
	if err := o.SetMasks([]steer.Mask{{ID: 0, Mask: mask, MaxRank: steer.MakeRank(100, 0)}}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		rules   func() error
		counter steer.Counter // what the datagrams to port 1 count as
		arrive  bool          // ... and whether they reach rx1
		xskDrop bool          // ... or the AF_XDP socket
	}{
		{"no rules", func() error { return nil }, steer.CounterPassNoMatch, true, false},
		{"drop rule", func() error { return o.PutRules([]steer.Rule{rule(steer.VerdictDrop)}) }, steer.CounterDrop, false, false},
		{"redirect rule", func() error { return o.PutRules([]steer.Rule{rule(steer.VerdictRedirect)}) }, steer.CounterRedirect, false, true},
		{"pass rule", func() error { return o.PutRules([]steer.Rule{rule(steer.VerdictPass)}) }, steer.CounterPassRule, true, false},
		{"rule deleted", func() error { return o.DeleteRules([]steer.Rule{rule(0)}) }, steer.CounterPassNoMatch, true, false},
	}
	for _, s := range steps {
		if err := s.rules(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		before := counters(t, o, ofport)
		xBefore := xsk.stats(t)
		// Port 1 first, then port 2 on the same queue: once port 2 has
		// everything, port 1's datagrams were decided.
		send(rx1)
		send(rx2)
		expect(rx2, n)
		if s.arrive {
			expect(rx1, n)
		} else {
			expectNone(rx1)
		}
		after := counters(t, o, ofport)
		xAfter := xsk.stats(t)

		d := func(c steer.Counter) uint64 { return after[c].Packets - before[c].Packets }
		if s.counter == steer.CounterPassNoMatch {
			if d(s.counter) < 2*n {
				t.Errorf("%s: pass_nomatch rose by %d, want >= %d", s.name, d(s.counter), 2*n)
			}
		} else {
			if d(s.counter) != n {
				t.Errorf("%s: %v rose by %d, want %d", s.name, s.counter, d(s.counter), n)
			}
			if d(steer.CounterPassNoMatch) < n {
				t.Errorf("%s: pass_nomatch rose by %d, want >= %d (port 2)", s.name, d(steer.CounterPassNoMatch), n)
			}
		}
		if d(steer.CounterRX) < 2*n || after[steer.CounterRX].Bytes <= before[steer.CounterRX].Bytes {
			t.Errorf("%s: rx rose by %d packets, want >= %d", s.name, d(steer.CounterRX), 2*n)
		}
		xd := xAfter.Rx_dropped - xBefore.Rx_dropped
		if s.xskDrop && xd != n || !s.xskDrop && xd != 0 {
			t.Errorf("%s: the AF_XDP socket dropped %d frames (empty fill ring), want %d", s.name, xd, map[bool]int{true: n}[s.xskDrop])
		}
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if x := xdpOn(t, v.LocalIndex()); x != nil {
		t.Fatalf("still attached: %+v", x)
	}
}
