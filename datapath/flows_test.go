package datapath

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable"
)

// flowTexts returns the installed flows as "id text" lines, highest rank
// first.
func flowTexts(sw *Switch) []string {
	var out []string
	for _, fi := range sw.Flows() {
		out = append(out, fmt.Sprintf("%d %s", fi.Flow.ID, fi.Flow))
	}
	return out
}

// A transaction with one bad part changes nothing: not the flow table, not
// the XDP classifier (traffic behaves as before), not the next IDs.
func TestFlowTransactionAllOrNothing(t *testing.T) {
	const n, size = 5, 100
	tp := newTopo(t, topoOptions{})
	tp.addFlows(t, "priority=100,in_port={a},udp,actions=output:{b}")
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7800)
	// Installed, this flow would stop the traffic the test sends.
	stopper := "priority=300,in_port={a},udp,tp_dst=7800,actions=drop"

	var manyMasks []string // more effective masks than the XDP classifier has
	for k := 1; k <= 16; k++ {
		m := 1<<k - 1
		manyMasks = append(manyMasks,
			fmt.Sprintf("udp,tp_dst=0x%x/0x%x,actions=output:{b}", m, m),
			fmt.Sprintf("udp,tp_src=0x%x/0x%x,actions=output:{b}", m, m))
	}
	for k := 1; k <= 8; k++ {
		manyMasks = append(manyMasks, fmt.Sprintf("ip,nw_src=10.0.0.0/%d,actions=output:{b}", k))
	}

	for _, tc := range []struct {
		name   string
		change func(t testing.TB) Change
		want   error
	}{
		{"unknown output port", func(t testing.TB) Change {
			return Change{Add: tp.flows(t, stopper, "in_port={a},udp,tp_dst=7801,actions=output:nosuch")}
		}, ErrNoSuchPort},
		{"unknown in_port", func(t testing.TB) Change {
			return Change{Add: tp.flows(t, stopper, "in_port=nosuch,actions=output:{b}")}
		}, ErrNoSuchPort},
		{"invalid action", func(t testing.TB) Change {
			bad := tp.flow(t, "in_port={a},udp,tp_dst=7801,actions=output:{b}")
			bad.Actions = append([]flowtable.Action{{Type: flowtable.ActSetVlanVID, Value: 5000}}, bad.Actions...)
			return Change{Add: append(tp.flows(t, stopper), bad)}
		}, ErrInvalid},
		{"unknown flow to delete", func(t testing.TB) Change {
			return Change{Add: tp.flows(t, stopper), Delete: []uint64{1 << 40}}
		}, ErrNoSuchFlow},
		{"replace with a bad flow", func(t testing.TB) Change {
			return Change{Replace: true, Add: tp.flows(t, stopper, "in_port={a},actions=output:nosuch")}
		}, ErrNoSuchPort},
		{"too many masks", func(t testing.TB) Change {
			return Change{Add: append(tp.flows(t, stopper), tp.flows(t, manyMasks...)...)}
		}, flowtable.ErrTooManyMasks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, st0, a0 := flowTexts(tp.sw), tp.sw.Stats(), tp.stats(t, tp.a)
			res, err := tp.sw.Apply(tc.change(t))
			ids := res.Added
			if !errors.Is(err, tc.want) {
				t.Fatalf("apply: %v, want an error wrapping %v", err, tc.want)
			}
			if ids != nil {
				t.Fatalf("a failed transaction returned ids %v", ids)
			}
			if after := flowTexts(tp.sw); !slices.Equal(before, after) {
				t.Fatalf("flows changed:\nbefore %q\nafter  %q", before, after)
			}
			if st := tp.sw.Stats(); st.Flows != st0.Flows || st.Masks != st0.Masks {
				t.Fatalf("flows/masks %d/%d -> %d/%d", st0.Flows, st0.Masks, st.Flows, st.Masks)
			}
			sendUDP(t, tp.a, tp.b.ip, 7800, n, seqPayload(size), sendOpts{})
			checkSeq(t, "a to b", sink.collect(n, 5*time.Second), n, size)
			if a := tp.stats(t, tp.a); a.XDP["drop"] != a0.XDP["drop"] {
				t.Fatalf("the XDP program dropped %d frames: the failed transaction reached it", a.XDP["drop"]-a0.XDP["drop"])
			}
		})
	}

	// The next good transaction numbers on from the last good one.
	var last uint64
	for _, fi := range tp.sw.Flows() {
		last = max(last, fi.Flow.ID)
	}
	ids := tp.addFlows(t, "priority=200,in_port={a},udp,tp_dst=7802,actions=output:{b}")
	if want := last + 1; ids[0] != want {
		t.Fatalf("next flow id %d, want %d", ids[0], want)
	}
}

// Replacing the whole table while traffic flows is atomic for every packet:
// each datagram is forwarded by the old table or the new one, never lost,
// never both. The two tables rewrite to different ports, so each datagram
// shows which one handled it.
func TestFlowReplaceAtomic(t *testing.T) {
	const rounds, size = 20, 100
	tp := newTopo(t, topoOptions{})
	table := func(port int) Change {
		return Change{Replace: true, Add: tp.flows(t,
			fmt.Sprintf("in_port={a},udp,tp_dst=7810,actions=mod_tp_dst:%d,output:{b}", port),
			"in_port={b},udp,actions=output:{a}",
		)}
	}
	if _, err := tp.sw.Apply(table(7811)); err != nil {
		t.Fatal(err)
	}
	sinks := []*udpSink{listenUDP(t, tp.b.NS, tp.b.ip, 7811), listenUDP(t, tp.b.NS, tp.b.ip, 7812)}

	stop := udpStream(t, tp.a, tp.b.ip, 7810, size)
	for r := range rounds {
		time.Sleep(15 * time.Millisecond)
		res, err := tp.sw.Apply(table(7811 + (r+1)%2))
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		// The flow back from b is the same in both tables: the replace
		// keeps it.
		ids := slices.Sorted(slices.Values(res.Added))
		var got []uint64
		for _, fi := range tp.sw.Flows() {
			got = append(got, fi.Flow.ID)
		}
		if slices.Sort(got); !slices.Equal(got, ids) {
			t.Fatalf("round %d: flows %v installed, want exactly the new ones %v", r, got, ids)
		}
	}
	time.Sleep(15 * time.Millisecond)
	sent := stop()

	var all []udpMsg
	perPort := make([]int, len(sinks))
	for deadline := time.Now().Add(10 * time.Second); len(all) < sent && time.Now().Before(deadline); {
		for i, s := range sinks {
			got := s.drain()
			perPort[i] += len(got)
			all = append(all, got...)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, s := range sinks {
		got := s.quiet(100 * time.Millisecond)
		perPort[i] += len(got)
		all = append(all, got...)
	}
	if len(all) != sent {
		t.Logf("port a: %+v", tp.stats(t, tp.a))
		t.Logf("port b: %+v", tp.stats(t, tp.b))
	}
	checkSeq(t, "a to b across replaces", all, sent, size)
	if perPort[0] == 0 || perPort[1] == 0 {
		t.Fatalf("datagrams per table: %v; both tables should have forwarded", perPort)
	}
}

// A flow change applies to every packet sent after ApplyFlows returns, even
// while the pollers are busy: a datagram sent right after a flow is added
// meets it; once it has arrived and the flow is deleted, the next one does
// not.
func TestFlowChangeSeenOnReturn(t *testing.T) {
	const rounds, size = 50, 64
	tp := newTopo(t, topoOptions{})
	tp.addFlows(t, "priority=100,in_port={a},udp,actions=output:{b}")
	plain := listenUDP(t, tp.b.NS, tp.b.ip, 7840)
	rewritten := listenUDP(t, tp.b.NS, tp.b.ip, 7841)
	listenUDP(t, tp.b.NS, tp.b.ip, 7842) // the background stream's
	udpStream(t, tp.a, tp.b.ip, 7842, size)
	pay := seqPayload(size)
	// exchange sends datagram i and says where it arrived.
	exchange := func(i int) *udpSink {
		t.Helper()
		sendUDP(t, tp.a, tp.b.ip, 7840, 1, func(int) []byte { return pay(i) }, sendOpts{})
		select {
		case m := <-plain.msgs:
			if !bytes.Equal(m.data, pay(i)) {
				t.Fatalf("datagram %d: got %q", i, m.data[:8])
			}
			return plain
		case m := <-rewritten.msgs:
			if !bytes.Equal(m.data, pay(i)) {
				t.Fatalf("datagram %d: got %q", i, m.data[:8])
			}
			return rewritten
		case <-time.After(5 * time.Second):
			t.Fatalf("datagram %d did not arrive", i)
			return nil
		}
	}
	for r := range rounds {
		ids := tp.addFlows(t, "priority=200,in_port={a},udp,tp_dst=7840,actions=mod_tp_dst:7841,output:{b}")
		if got := exchange(2 * r); got != rewritten {
			t.Fatalf("round %d: a datagram sent after the flow was added missed it", r)
		}
		if _, err := tp.sw.Apply(Change{Delete: ids}); err != nil {
			t.Fatal(err)
		}
		if got := exchange(2*r + 1); got != plain {
			t.Fatalf("round %d: a datagram sent after the flow was deleted met it", r)
		}
	}
}

// Flows with an idle timeout go once unused for that long, not while used;
// flows with a hard timeout go after that long, used or not. When they go,
// the XDP program stops redirecting their traffic too.
func TestFlowTimeouts(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	ids := tp.addFlows(t,
		"idle_timeout=1,in_port={a},udp,tp_dst=7820,actions=output:{b}",
		"hard_timeout=2,in_port={a},udp,tp_dst=7821,actions=output:{b}",
	)
	installed := time.Now()
	idle, hard := ids[0], ids[1]
	atIdle := listenUDP(t, tp.b.NS, tp.b.ip, 7820)
	atHard := listenUDP(t, tp.b.NS, tp.b.ip, 7821)
	exists := func(id uint64) bool {
		_, err := tp.sw.Flow(id)
		if err != nil && !errors.Is(err, ErrNoSuchFlow) {
			t.Fatalf("flow %d: %v", id, err)
		}
		return err == nil
	}

	// Both flows in use, a datagram each every 100ms, for 2.5 seconds.
	var conns [2]*net.UDPConn
	for i, port := range []int{7820, 7821} {
		if err := tp.a.NS.Do(func() (err error) {
			conns[i], err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: tp.b.ip, Port: port})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	lastSend := installed // of the last round
	var hardGone time.Duration
	for time.Since(installed) < 2500*time.Millisecond {
		prevSend := lastSend
		for _, c := range conns {
			if _, err := c.Write([]byte("in use")); err != nil {
				t.Fatal(err)
			}
		}
		lastSend = time.Now()
		time.Sleep(100 * time.Millisecond)
		// The flow may go only a second after the last packet it saw,
		// which is at the earliest the one of the round before.
		if !exists(idle) {
			if d := time.Since(prevSend); d < time.Second {
				t.Fatalf("the idle_timeout=1 flow went %v after the last but one packet", d)
			}
			t.Fatalf("the machine is too slow for this test: %v between two packets", lastSend.Sub(prevSend))
		}
		if hardGone == 0 && !exists(hard) {
			hardGone = time.Since(installed)
		}
	}
	if hardGone != 0 && hardGone < 2*time.Second {
		t.Fatalf("the hard_timeout=2 flow went after %v", hardGone)
	}
	eventually(t, 3*time.Second, func() bool { return !exists(hard) }, func() string {
		return fmt.Sprintf("the hard_timeout=2 flow is still there after %v", time.Since(installed))
	})
	eventually(t, 4*time.Second, func() bool { return !exists(idle) }, func() string {
		return fmt.Sprintf("the idle_timeout=1 flow is still there %v after its last packet", time.Since(lastSend))
	})
	// The poller stamps a flow's use with its batch's start, which may be
	// a little before the packet came: leave room for that.
	if d := time.Since(lastSend); d < 500*time.Millisecond {
		t.Fatalf("the idle_timeout=1 flow went %v after its last packet", d)
	}
	if got := atIdle.collect(1, 2*time.Second); len(got) == 0 {
		t.Fatalf("nothing arrived through the idle flow while it was there")
	}
	if got := atHard.collect(1, 2*time.Second); len(got) == 0 {
		t.Fatalf("nothing arrived through the hard flow while it was there")
	}
	atIdle.quiet(100 * time.Millisecond)
	atHard.quiet(100 * time.Millisecond)

	// Gone from the XDP classifier too: their traffic passes to the kernel.
	a0 := tp.stats(t, tp.a)
	sendUDP(t, tp.a, tp.b.ip, 7820, 5, seqPayload(50), sendOpts{})
	sendUDP(t, tp.a, tp.b.ip, 7821, 5, seqPayload(50), sendOpts{})
	if got := append(atIdle.quiet(200*time.Millisecond), atHard.quiet(10*time.Millisecond)...); len(got) > 0 {
		t.Fatalf("%d datagrams arrived through expired flows", len(got))
	}
	a := tp.stats(t, tp.a)
	if a.RxPackets != a0.RxPackets || a.XDP["pass_nomatch"]-a0.XDP["pass_nomatch"] < 10 {
		t.Fatalf("after expiry: userspace rx %d -> %d, pass_nomatch +%d (want +10)", a0.RxPackets, a.RxPackets, a.XDP["pass_nomatch"]-a0.XDP["pass_nomatch"])
	}
}

// A flow's counters count exactly the packets and bytes it forwarded.
func TestFlowCounters(t *testing.T) {
	const n, payload = 37, 100
	const frame = 14 + 20 + 8 + payload
	tp := newTopo(t, topoOptions{})
	ids := tp.addFlows(t,
		"in_port={a},udp,tp_dst=7830,actions=output:{b}",
		"in_port={a},udp,tp_dst=7831,actions=output:{b}",
	)
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7830)
	sendUDP(t, tp.a, tp.b.ip, 7830, n, seqPayload(payload), sendOpts{})
	checkSeq(t, "a to b", sink.collect(n, 5*time.Second), n, payload)
	var used, unused FlowInfo
	eventually(t, 2*time.Second, func() bool {
		var err error
		if used, err = tp.sw.Flow(ids[0]); err != nil {
			t.Fatal(err)
		}
		if unused, err = tp.sw.Flow(ids[1]); err != nil {
			t.Fatal(err)
		}
		return used.Packets >= n
	}, func() string { return fmt.Sprintf("flow counted %d packets, want %d", used.Packets, n) })
	if used.Packets != n || used.Bytes != n*frame {
		t.Fatalf("flow counted %d packets, %d bytes; want %d, %d", used.Packets, used.Bytes, n, n*frame)
	}
	if unused.Packets != 0 || unused.Bytes != 0 {
		t.Fatalf("the unused flow counted %d packets, %d bytes", unused.Packets, unused.Bytes)
	}
	if used.IdleAge >= used.Duration || unused.IdleAge != unused.Duration {
		t.Fatalf("ages: used flow idle %v of %v, unused idle %v of %v", used.IdleAge, used.Duration, unused.IdleAge, unused.Duration)
	}
}
