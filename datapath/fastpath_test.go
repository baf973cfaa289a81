package datapath

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
	"github.com/xvs-project/xvs/testenv"
)

// checkWhere checks where flow id ran after a sent n datagrams of size
// bytes to b through it: with fast, in XDP (the pollers saw none of them,
// the XDP program forwarded them all, the flow counted them exactly);
// without, in userspace, because b's port takes no redirected frames.
func checkWhere(t *testing.T, tp *topo, id uint64, n, size int, fast bool) {
	t.Helper()
	fi, err := tp.sw.Flow(id)
	if err != nil {
		t.Fatal(err)
	}
	if !fast {
		if want := "no_ndo_xdp_xmit:" + tp.b.port(); fi.Datapath != DatapathUser || fi.DatapathReason != want {
			t.Fatalf("flow runs in %s(%s), want user(%s)", fi.Datapath, fi.DatapathReason, want)
		}
		if rx := tp.stats(t, tp.a).RxPackets; rx < uint64(n) {
			t.Fatalf("the pollers saw %d packets from a, want at least %d", rx, n)
		}
		return
	}
	if fi.Datapath != DatapathXDP {
		t.Fatalf("flow runs in %s(%s), want xdp", fi.Datapath, fi.DatapathReason)
	}
	st := tp.stats(t, tp.a)
	if st.RxPackets != 0 {
		t.Fatalf("the pollers saw %d packets from a", st.RxPackets)
	}
	if fwd := st.XDP["forward"]; fwd != uint64(n) {
		t.Fatalf("XDP forwarded %d packets, want %d (%v)", fwd, n, st.XDP)
	}
	frame := uint64(14 + 20 + 8 + size)
	eventually(t, 2*time.Second, func() bool {
		fi, _ = tp.sw.Flow(id)
		return fi.Packets == uint64(n) && fi.Bytes == uint64(n)*frame
	}, func() string {
		return fmt.Sprintf("flow counted %d packets, %d bytes; want %d, %d", fi.Packets, fi.Bytes, n, uint64(n)*frame)
	})
}

// flowWhere returns where flow id runs, as dump-flows prints it.
func flowWhere(t testing.TB, sw *Switch, id uint64) string {
	t.Helper()
	fi, err := sw.Flow(id)
	if err != nil {
		t.Fatal(err)
	}
	if fi.DatapathReason != "" {
		return fi.Datapath + "(" + fi.DatapathReason + ")"
	}
	return fi.Datapath
}

// waitWhere waits until flow id runs where want says.
func waitWhere(t testing.TB, sw *Switch, id uint64, want string) {
	t.Helper()
	var got string
	eventually(t, 5*time.Second, func() bool {
		got = flowWhere(t, sw, id)
		return got == want
	}, func() string { return fmt.Sprintf("flow %d runs in %s, want %s", id, got, want) })
}

// sendThrough sends n datagrams from a to b's port 7100 and checks they all
// arrive; it returns how many more packets the pollers and the XDP program
// forwarded meanwhile.
func sendThrough(t *testing.T, tp *topo, sink *udpSink, n int) (polled, forwarded uint64) {
	t.Helper()
	before := tp.stats(t, tp.a)
	sendUDP(t, tp.a, tp.b.ip, 7100, n, seqPayload(64), sendOpts{})
	checkSeq(t, "a to b", sink.collect(n, 5*time.Second), n, 64)
	after := tp.stats(t, tp.a)
	return after.RxPackets - before.RxPackets, after.XDP["forward"] - before.XDP["forward"]
}

// A flow runs in XDP while its output port takes redirected frames, and
// moves to userspace (still forwarding every packet) while it does not: on
// a veth, that follows GRO on the peer.
func TestFastPathFollowsOutputPort(t *testing.T) {
	const n = 20
	tp := newTopo(t, topoOptions{FastPath: true})
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7100)
	id := tp.addFlows(t, "in_port={a},udp,tp_dst=7100,actions=output:{b}")[0]
	waitWhere(t, tp.sw, id, DatapathXDP)
	if polled, fwd := sendThrough(t, tp, sink, n); polled != 0 || fwd != n {
		t.Fatalf("in XDP: pollers %d, XDP forwarded %d; want 0, %d", polled, fwd, n)
	}

	setGRO := func(on bool) {
		t.Helper()
		err := tp.b.NS.Do(func() error {
			if on {
				return testenv.EnableGRO(tp.b.PeerName())
			}
			return testenv.DisableGRO(tp.b.PeerName())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setGRO(false)
	waitWhere(t, tp.sw, id, "user(no_ndo_xdp_xmit:"+tp.b.port()+")")
	if p, err := tp.sw.Port(tp.b.port()); err != nil || p.FastPathOut != "no_ndo_xdp_xmit" {
		t.Fatalf("port b: %+v, %v", p, err)
	}
	if polled, fwd := sendThrough(t, tp, sink, n); polled != n || fwd != 0 {
		t.Fatalf("in userspace: pollers %d, XDP forwarded %d; want %d, 0", polled, fwd, n)
	}

	setGRO(true)
	waitWhere(t, tp.sw, id, DatapathXDP)
	if polled, fwd := sendThrough(t, tp, sink, n); polled != 0 || fwd != n {
		t.Fatalf("back in XDP: pollers %d, XDP forwarded %d; want 0, %d", polled, fwd, n)
	}
	if fi, _ := tp.sw.Flow(id); fi.Packets != 3*n {
		eventually(t, 2*time.Second, func() bool { fi, _ = tp.sw.Flow(id); return fi.Packets == 3*n },
			func() string { return fmt.Sprintf("flow counted %d packets, want %d", fi.Packets, 3*n) })
	}
}

// Config.FastPathOff (xvsd --fast-path=off) keeps every flow in userspace.
func TestFastPathOff(t *testing.T) {
	const n = 20
	tp := newTopo(t, topoOptions{FastPath: true, Config: Config{FastPathOff: true}})
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7100)
	ids := tp.addFlows(t, "in_port={a},udp,tp_dst=7100,actions=output:{b}", "in_port={a},udp,tp_dst=9,actions=drop")
	if got := flowWhere(t, tp.sw, ids[0]); got != "user(fast_path_off)" {
		t.Fatalf("forwarding flow runs in %s", got)
	}
	if got := flowWhere(t, tp.sw, ids[1]); got != DatapathXDP {
		t.Fatalf("drop flow runs in %s: drops stay in XDP", got)
	}
	if p, _ := tp.sw.Port(tp.b.port()); p.FastPathOut != "fast_path_off" {
		t.Fatalf("port b says fast_path_out %q", p.FastPathOut)
	}
	if polled, fwd := sendThrough(t, tp, sink, n); polled != n || fwd != 0 {
		t.Fatalf("pollers %d, XDP forwarded %d; want %d, 0", polled, fwd, n)
	}
}

// Idle timeouts see the packets the XDP program forwards: a flow that
// forwards only in XDP stays while traffic flows and expires after.
func TestFastPathIdleTimeout(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true})
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7100)
	id := tp.addFlows(t, "idle_timeout=2,in_port={a},udp,tp_dst=7100,actions=output:{b}")[0]
	waitWhere(t, tp.sw, id, DatapathXDP)
	for i := 0; i < 16; i++ { // 4 s, twice the idle timeout
		sendUDP(t, tp.a, tp.b.ip, 7100, 1, seqPayload(64), sendOpts{})
		time.Sleep(250 * time.Millisecond)
	}
	if _, err := tp.sw.Flow(id); err != nil {
		t.Fatalf("a flow busy in XDP expired: %v", err)
	}
	if got := len(sink.drain()); got != 16 {
		t.Fatalf("%d datagrams arrived, want 16", got)
	}
	eventually(t, 5*time.Second, func() bool { _, err := tp.sw.Flow(id); return err != nil },
		func() string { return "an idle flow did not expire" })
}

// With no record slot free, a flow waits in userspace, and moves to XDP
// once a slot is released (after a grace period). Config.FastPathFlows
// sizes the kernel's record maps too: the slots in use are 0 and 1.
func TestFastPathRecordsFull(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true, Config: Config{FastPathFlows: 2}})
	if n := tp.sw.bpf.Records(); n != 2 {
		t.Fatalf("the kernel has %d record slots, want 2", n)
	}
	ids := tp.addFlows(t,
		"priority=3,in_port={a},udp,tp_dst=7100,actions=output:{b}",
		"priority=2,in_port={a},udp,tp_dst=7101,actions=output:{b}",
		"priority=1,in_port={a},udp,tp_dst=7102,actions=output:{b}")
	where := func() []string {
		var out []string
		for _, id := range ids {
			if fi, err := tp.sw.Flow(id); err == nil {
				out = append(out, flowWhere(t, tp.sw, fi.Flow.ID))
			}
		}
		return out
	}
	if got := fmt.Sprint(where()); got != "[xdp xdp user(records_full)]" {
		t.Fatalf("flows run in %s", got)
	}
	if st := tp.sw.Stats(); st.Fast != 2 {
		t.Fatalf("stats say %d fast path flows", st.Fast)
	}
	if _, err := tp.sw.Apply(Change{Delete: ids[:1]}); err != nil {
		t.Fatal(err)
	}
	ids = ids[1:]
	eventually(t, 5*time.Second, func() bool { return fmt.Sprint(where()) == "[xdp xdp]" },
		func() string { return fmt.Sprintf("after a delete, flows run in %s", where()) })
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7102)
	before := tp.stats(t, tp.a)
	sendUDP(t, tp.a, tp.b.ip, 7102, 10, seqPayload(64), sendOpts{})
	checkSeq(t, "a to b", sink.collect(10, 5*time.Second), 10, 64)
	if after := tp.stats(t, tp.a); after.RxPackets != before.RxPackets || after.XDP["forward"] != before.XDP["forward"]+10 {
		t.Fatalf("the promoted flow did not forward in XDP: %+v -> %+v", before, after)
	}
}

// Under traffic, a flow is replaced over and over by one of two flows that
// rewrite two fields to different values: every frame that arrives carries
// both rewrites of one of them, never one of each (a record is never
// written while a rule points at it), with a checksum the receiver accepts,
// and none of the packets reaches userspace.
func TestFastPathRewriteAlternates(t *testing.T) {
	const rounds = 2000
	tp := newTopo(t, topoOptions{FastPath: true})
	texts := [2]string{
		"in_port={a},udp,tp_dst=7100,actions=mod_dl_src:02:00:00:00:00:a1,mod_tp_src:1111,output:{b}",
		"in_port={a},udp,tp_dst=7100,actions=mod_dl_src:02:00:00:00:00:b2,mod_tp_src:2222,output:{b}",
	}
	want := map[string]uint16{"02:00:00:00:00:a1": 1111, "02:00:00:00:00:b2": 2222}
	flows := [2]*flowtable.Flow{tp.flow(t, texts[0]), tp.flow(t, texts[1])}
	id := tp.addFlows(t, texts[0])[0]
	waitWhere(t, tp.sw, id, DatapathXDP)

	capture := captureFrames(t, tp.b)
	var seen [2]atomic.Int64
	var bad atomic.Value
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for f := range capture.frames {
			p := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default)
			eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if eth == nil || !ok || u.DstPort != 7100 {
				continue
			}
			sport, known := want[eth.SrcMAC.String()]
			if !known || uint16(u.SrcPort) != sport {
				bad.CompareAndSwap(nil, fmt.Sprintf("a mixed frame: source MAC %v with source port %d", eth.SrcMAC, u.SrcPort))
				continue
			}
			if msg := checkUDPChecksum(f.data); msg != "" {
				bad.CompareAndSwap(nil, msg)
			}
			if sport == 1111 {
				seen[0].Add(1)
			} else {
				seen[1].Add(1)
			}
		}
	}()
	stop := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				sent <- nil
				return
			default:
			}
			if err := trySendUDP(tp.a, tp.b.ip, 7100, 64, seqPayload(32), sendOpts{Burst: 8}); err != nil {
				sent <- err
				return
			}
		}
	}()
	before := tp.stats(t, tp.a)
	start := time.Now()
	for i := 1; i <= rounds; i++ {
		if _, err := tp.sw.Apply(Change{Add: []*flowtable.Flow{flows[i%2]}}); err != nil {
			close(stop)
			t.Fatalf("round %d: %v", i, err)
		}
	}
	took := time.Since(start)
	close(stop)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	capture.close()
	close(capture.frames)
	<-checked
	t.Logf("%d replacements in %v (%v each); frames seen: %d and %d", rounds, took, took/rounds, seen[0].Load(), seen[1].Load())
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	if seen[0].Load() < 100 || seen[1].Load() < 100 {
		t.Fatalf("too few frames of each rewrite to tell: %d and %d", seen[0].Load(), seen[1].Load())
	}
	if after := tp.stats(t, tp.a); after.RxPackets != before.RxPackets {
		t.Fatalf("the pollers saw %d packets during the replacements", after.RxPackets-before.RxPackets)
	}
	checkFrames(t, tp.sw, "after the replacements")
}

// checkUDPChecksum verifies the IPv4 header and UDP checksums of an
// untagged Ethernet/IPv4/UDP frame.
func checkUDPChecksum(f []byte) string {
	sum := func(s uint32, b []byte) uint32 {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
		for s > 0xffff {
			s = s&0xffff + s>>16
		}
		return s
	}
	ip := f[14:]
	hl := int(ip[0]&0xf) * 4
	if sum(0, ip[:hl]) != 0xffff {
		return "bad IPv4 header checksum"
	}
	tot := int(ip[2])<<8 | int(ip[3])
	udp := ip[hl:tot]
	pseudo := append(append([]byte{}, ip[12:20]...), 0, 17, byte(len(udp)>>8), byte(len(udp)))
	if sum(sum(0, pseudo), udp) != 0xffff {
		return "bad UDP checksum"
	}
	return ""
}

// The kernel's record maps start small and grow with the flows, up to
// Config.FastPathFlows: every flow of a bulk add past the first size runs
// in XDP, and past the limit the rest wait in userspace. The trace's dry
// run, loaded before the grow, stays and runs the grown slots.
func TestFastPathRecordsGrow(t *testing.T) {
	const flows = 5000
	tests := []struct {
		limit, wantSlots, wantFast int
	}{
		{20000, 8192, flows}, // twice the first size: more than 5000 + 1/8
		{4100, 4100, 4100},   // the limit
		{InitialFastPathFlows, InitialFastPathFlows, InitialFastPathFlows}, // no grow at all
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			tp := newTopo(t, topoOptions{FastPath: true, Config: Config{FastPathFlows: tt.limit}})
			if n := tp.sw.bpf.Records(); n != min(tt.limit, InitialFastPathFlows) {
				t.Fatalf("the kernel starts with %d record slots", n)
			}
			traceFrame := func(dport int) []byte {
				return udpFrame(t, tp.a.PeerMAC, tp.b.PeerMAC, tp.a.ip, tp.b.ip, 4000, uint16(dport), 64, []byte("trace-payload-0123"))
			}
			if _, err := tp.sw.Trace(TraceInput{Port: tp.a.port(), Frame: traceFrame(9999)}); err != nil {
				t.Fatal(err)
			}
			dry := tp.sw.tracer.objs
			texts := make([]string, flows)
			for i := range texts {
				texts[i] = fmt.Sprintf("priority=%d,in_port={a},udp,tp_dst=%d,actions=output:{b}", flows-i, 10000+i)
			}
			tp.addFlows(t, texts...)
			if n := tp.sw.bpf.Records(); n != tt.wantSlots {
				t.Fatalf("the kernel has %d record slots, want %d", n, tt.wantSlots)
			}
			if st := tp.sw.Stats(); st.Fast != tt.wantFast {
				t.Fatalf("%d flows in the fast path, want %d", st.Fast, tt.wantFast)
			}
			// The last flow the fast path got: its slot is past the first maps'.
			port := 10000 + tt.wantFast - 1
			res, err := tp.sw.Trace(TraceInput{Port: tp.a.port(), Frame: traceFrame(port)})
			if err != nil {
				t.Fatal(err)
			}
			if res.XDP.Verdict != XDPForward || res.XDP.FastPath != "forwarded" || tp.sw.tracer.objs != dry {
				t.Fatalf("trace of the flow to port %d: %s, fast path %q; the same dry run: %v", port, res.XDP.Verdict, res.XDP.FastPath, tp.sw.tracer.objs == dry)
			}
			sink := listenUDP(t, tp.b.NS, tp.b.ip, port)
			before := tp.stats(t, tp.a)
			sendUDP(t, tp.a, tp.b.ip, port, 10, seqPayload(64), sendOpts{})
			checkSeq(t, "a to b", sink.collect(10, 5*time.Second), 10, 64)
			if after := tp.stats(t, tp.a); after.RxPackets != before.RxPackets || after.XDP["forward"] != before.XDP["forward"]+10 {
				t.Fatalf("flow to port %d did not forward in XDP: %+v -> %+v", port, before, after)
			}
		})
	}
}

// sortByRank orders any set of distinct ranks as a comparison sort does,
// keeping each rule with its entry: few and many, one priority or several,
// sequence numbers close together or spread.
func TestSortByRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		n, priorities int
		spread        uint32
	}{{0, 1, 1}, {1, 1, 1}, {255, 3, 1 << 20}, {256, 1, 1 << 9}, {5000, 1, 1 << 13}, {20000, 7, 1 << 31}, {40000, 300, 1 << 16}} {
		seen := map[steer.Rank]bool{}
		rules := make([]steer.Rule, 0, c.n)
		for len(rules) < c.n {
			r := steer.MakeRank(uint16(rng.IntN(c.priorities)), 1000+rng.Uint32N(c.spread))
			if !seen[r] {
				seen[r] = true
				rules = append(rules, steer.Rule{Rank: r})
			}
		}
		wants := make([]want, len(rules))
		for i := range rules {
			wants[i] = want{&rules[i], &flowtable.Entry{Rank: rules[i].Rank}}
		}
		sorted := slices.Clone(wants)
		slices.SortFunc(sorted, func(a, b want) int { return cmp.Compare(b.rule.Rank, a.rule.Rank) })
		ascending := slices.Clone(sorted)
		slices.Reverse(ascending)
		for order, in := range map[string][]want{"random": slices.Clone(wants), "sorted": slices.Clone(sorted), "ascending": ascending} {
			sortByRank(in)
			if !slices.Equal(in, sorted) {
				t.Errorf("%d ranks of %d priorities, %s: order differs from a comparison sort", c.n, c.priorities, order)
			}
		}
		sortByRank(wants)
		for i, w := range wants {
			if w.entry.Rank != w.rule.Rank {
				t.Fatalf("%d ranks: want %d lost its entry", c.n, i)
			}
		}
	}
}

// A flow keeps its record slot across syncs that leave it alone (another
// flow added, one deleted): its record is not written again, and the slot
// of a deleted flow is retired, not handed to the new one while rules may
// still point at it.
func TestFastPathFlowKeepsSlot(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true})
	ids := tp.addFlows(t,
		"priority=3,in_port={a},udp,tp_dst=7100,actions=output:{b}",
		"priority=2,in_port={a},udp,tp_dst=7101,actions=output:{b}")
	slotOf := func(id uint64) (uint32, bool) {
		tp.sw.fast.mu.Lock()
		defer tp.sw.fast.mu.Unlock()
		return tp.sw.fast.byFlow.slot(id)
	}
	keep, ok1 := slotOf(ids[0])
	gone, ok2 := slotOf(ids[1])
	if !ok1 || !ok2 || keep == gone {
		t.Fatalf("slots %d (%v) and %d (%v) for two XDP flows", keep, ok1, gone, ok2)
	}
	added := tp.addFlows(t, "priority=1,in_port={a},udp,tp_dst=7102,actions=mod_tp_dst:7100,output:{b}")
	if _, err := tp.sw.Apply(Change{Delete: ids[1:]}); err != nil {
		t.Fatal(err)
	}
	if s, ok := slotOf(ids[0]); !ok || s != keep {
		t.Errorf("flow %d moved from slot %d to %d (%v) when others changed", ids[0], keep, s, ok)
	}
	if s, ok := slotOf(added[0]); !ok || s == keep || s == gone {
		t.Errorf("the added flow got slot %d (%v); in use or just retired: %d, %d", s, ok, keep, gone)
	}
	if _, ok := slotOf(ids[1]); ok {
		t.Errorf("the deleted flow %d still has a slot", ids[1])
	}
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7100)
	before := tp.stats(t, tp.a)
	sendUDP(t, tp.a, tp.b.ip, 7100, 10, seqPayload(64), sendOpts{})
	checkSeq(t, "a to b", sink.collect(10, 5*time.Second), 10, 64)
	if after := tp.stats(t, tp.a); after.XDP["forward"] != before.XDP["forward"]+10 {
		t.Fatalf("the kept flow did not forward in XDP: %+v -> %+v", before, after)
	}
}
