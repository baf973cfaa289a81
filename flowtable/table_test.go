package flowtable

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func ids(es []*Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Flow.ID)
	}
	return out
}

func TestApplyAddDelete(t *testing.T) {
	web := dpMatch().dlType(0x0800).nwProto(6).tpDst(80).get()
	dns := dpMatch().dlType(0x0800).nwProto(17).tpDst(53).get() // the same mask
	t0 := NewTable()
	t1 := dpApply(t, t0, Change{Add: []*Flow{dpFlow(100, web, dpOut("p2")), dpFlow(200, dns, dpOut("p3"))}}, dpPorts)
	if t0.Len() != 0 || t1.Len() != 2 || t1.NumMasks() != 1 {
		t.Fatalf("len %d/%d masks %d", t0.Len(), t1.Len(), t1.NumMasks())
	}
	if !slices.Equal(t1.Added(), []uint64{1, 2}) || t1.NextID() != 3 {
		t.Fatalf("added %v next %d", t1.Added(), t1.NextID())
	}
	if got := ids(t1.Entries()); !slices.Equal(got, []uint64{2, 1}) {
		t.Fatalf("entries by rank: %v", got)
	}
	e1 := t1.Get(1)
	if e1 == nil || e1.Flow.Priority != 100 || e1.Rank != steer.MakeRank(100, 1) || t1.Get(3) != nil {
		t.Fatalf("get: %+v", e1)
	}

	// The table copied the flow: changing the caller's flow changes nothing.
	f := dpFlow(300, web, dpOut("p4"))
	t2 := dpApply(t, t1, Change{Add: []*Flow{f, dpFlow(1, dpMatch().dlType(0x86dd).get())}}, dpPorts)
	f.Actions[0].Port = "p5"
	f.Priority = 1
	if e := t2.Get(3); e.Flow.Priority != 300 || e.Flow.Actions[0].Port != "p4" || f.ID != 0 {
		t.Fatalf("entry follows the caller's flow: %+v", e.Flow)
	}
	if t2.Get(1) != e1 {
		t.Fatal("unchanged flow not shared between snapshots")
	}

	// Delete.
	if t2.NumMasks() != 2 {
		t.Fatalf("masks %d", t2.NumMasks())
	}
	t3 := dpApply(t, t2, Change{Delete: []uint64{1, 3, 4}}, dpPorts)
	if got := ids(t3.Entries()); !slices.Equal(got, []uint64{2}) || t3.NumMasks() != 1 {
		t.Fatalf("after delete: %v masks %d", got, t3.NumMasks())
	}
	if t2.Len() != 4 || t2.Get(1) == nil {
		t.Fatal("old snapshot changed")
	}
	_, err := t3.Apply(Change{Delete: []uint64{2, 1}}, dpPorts)
	if !errors.Is(err, ErrNoSuchFlow) || !strings.Contains(err.Error(), "1") {
		t.Fatalf("delete unknown: %v", err)
	}

	// Replace: everything goes, IDs go on.
	t4 := dpApply(t, t3, Change{Replace: true, Add: []*Flow{dpFlow(1, web, dpOut("p1"))}}, dpPorts)
	if got := ids(t4.Entries()); !slices.Equal(got, []uint64{5}) {
		t.Fatalf("after replace: %v", got)
	}
	t5 := dpApply(t, t4, Change{Replace: true}, dpPorts)
	if t5.Len() != 0 || t5.NumMasks() != 0 || t5.NextID() != 6 {
		t.Fatalf("replace with nothing: len %d next %d", t5.Len(), t5.NextID())
	}
	if t5.Gen() == t4.Gen() {
		t.Fatal("same generation")
	}
	if same := dpApply(t, t5, Change{}, dpPorts); same != t5 {
		t.Fatal("empty change built a new snapshot")
	}
}

func TestApplySameMatchReplaces(t *testing.T) {
	m := dpMatch().dlType(0x0800).nwDst("10.0.0.0/8").get()
	t1 := dpApply(t, NewTable(), Change{Add: []*Flow{
		dpFlow(10, m, dpOut("p1")),
		dpFlow(20, m, dpOut("p2")), // other priority: a second flow
		dpFlow(10, dpMatch().dlType(0x0800).nwDst("10.0.0.0/16").get(), dpOut("p3")),                                           // other mask
		{Priority: 10, Match: dpMatch().dlType(0x0800).nwDst("10.0.0.0/8").inPort("p1").get(), Actions: []Action{dpOut("p4")}}, // other in_port
	}}, dpPorts)
	if t1.Len() != 4 {
		t.Fatalf("len %d", t1.Len())
	}
	t1.Get(1).Hit(5, 500, 1)
	t2 := dpApply(t, t1, Change{Add: []*Flow{dpFlow(10, m, dpOut("p5"))}}, dpPorts)
	if t2.Len() != 4 || t2.Get(1) != nil {
		t.Fatalf("flow 1 not replaced: %v", ids(t2.Entries()))
	}
	e := t2.Get(5)
	if e == nil || e.Flow.Actions[0].Port != "p5" || e.Packets() != 0 {
		t.Fatalf("replacement: %+v", e)
	}
	// t1 is a snapshot readers may still hold: the replacement in t2 left
	// it as it was.
	var k1 Key = dpMatch().dlType(0x0800).nwDst("10.1.2.3/32").key(0)
	if e := t1.Lookup(&k1); e == nil || e.Flow.ID != 2 {
		t.Fatalf("t1 after t2 replaced flow 1: lookup %+v", e)
	}
	for _, s := range t1.tables[0].subs {
		for _, e := range s.flows {
			if e == nil {
				t.Fatalf("t1 after t2 replaced flow 1: a nil flow in the subtable of mask %x", s.mask)
			}
		}
	}
	if t1.Len() != 4 || t1.Get(1) == nil {
		t.Fatalf("t1 after t2 replaced flow 1: %v", ids(t1.Entries()))
	}
	// Within one change, and together with a delete of the same flow.
	t3 := dpApply(t, t2, Change{Delete: []uint64{5}, Add: []*Flow{dpFlow(10, m, dpOut("p1")), dpFlow(10, m, dpOut("p2"))}}, dpPorts)
	if got := ids(t3.Entries()); !slices.Equal(got, []uint64{2, 3, 4, 7}) || !slices.Equal(t3.Added(), []uint64{6, 7}) {
		t.Fatalf("entries %v added %v", got, t3.Added())
	}
	var k Key = dpMatch().dlType(0x0800).nwDst("10.1.2.3/32").key(3)
	if e := t3.Lookup(&k); e == nil || e.Flow.ID != 2 {
		t.Fatalf("lookup: %+v", e)
	}
}

func TestApplyErrors(t *testing.T) {
	base := dpApply(t, NewTable(), Change{Add: []*Flow{dpFlow(1, dpMatch().dlType(0x0806).get(), Action{Type: ActKernel})}}, dpPorts)
	ok := dpFlow(5, dpMatch().dlType(0x0800).get(), dpOut("p1"))
	badKey := dpFlow(5, dpMatch().dlType(0x0800).get())
	badKey.Match.Key[steer.OffTpDst] = 1
	inPortMask := dpFlow(5, dpMatch().dlType(0x0800).get())
	inPortMask.Match.Mask.SetInPort(0xffffffff)
	padMask := dpFlow(5, dpMatch().dlType(0x0800).get())
	padMask.Match.Mask[23] = 0xff
	tests := []struct {
		name string
		c    Change
		want error
		text string
	}{
		{"unknown output port", Change{Add: []*Flow{ok, dpFlow(5, dpMatch().get(), dpOut("eth9"))}}, ErrNoSuchPort, "eth9"},
		{"unknown in_port", Change{Add: []*Flow{{Match: dpMatch().inPort("eth7").get()}}}, ErrNoSuchPort, "eth7"},
		{"key outside mask", Change{Add: []*Flow{badKey}}, ErrInvalid, ""},
		{"in_port in the mask", Change{Add: []*Flow{inPortMask}}, ErrInvalid, ""},
		{"padding in the mask", Change{Add: []*Flow{padMask}}, ErrInvalid, ""},
		{"nil flow", Change{Add: []*Flow{nil}}, ErrInvalid, ""},
		{"bad action", Change{Add: []*Flow{dpFlow(1, dpMatch().get(), Action{Type: ActSetVlanVID, Value: 5000})}}, ErrInvalid, ""},
		{"unknown flow id", Change{Delete: []uint64{99}, Add: []*Flow{ok}}, ErrNoSuchFlow, "99"},
		{"unknown flow id with replace", Change{Replace: true, Delete: []uint64{99}}, ErrNoSuchFlow, "99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nt, err := base.Apply(tt.c, dpPorts)
			if !errors.Is(err, tt.want) || nt != nil || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			if base.Len() != 1 || base.NextID() != 2 {
				t.Fatal("base changed")
			}
		})
	}
}

func TestApplyTooManyFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a table of 262144 flows")
	}
	dst := func(i int) Match {
		return dpMatch().nwDstAddr(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})).get()
	}
	fl := make([]*Flow, steer.MaxRules)
	for i := range fl {
		fl[i] = dpFlow(10, dst(i))
	}
	full := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
	if n := full.NumRules(); n != steer.MaxRules {
		t.Fatalf("%d rules, want %d", n, steer.MaxRules)
	}
	one := []*Flow{dpFlow(10, dst(steer.MaxRules))}
	_, err := full.Apply(Change{Add: one}, dpPorts)
	if !errors.Is(err, ErrTooManyFlows) || !strings.Contains(err.Error(), "262145 distinct matches, the XDP classifier holds 262144") {
		t.Fatalf("one flow over: %v", err)
	}
	if full.Len() != steer.MaxRules {
		t.Fatal("a refused Apply changed the table")
	}
	// A flow that differs from an installed one only in priority shares its
	// rule; one that replaces a flow takes no new rule; deleting makes room.
	for _, c := range []Change{
		{Add: []*Flow{dpFlow(20, dst(0))}},
		{Add: []*Flow{dpFlow(10, dst(0), dpOut("p1"))}},
		{Delete: []uint64{1}, Add: one},
	} {
		if _, err := full.Apply(c, dpPorts); err != nil {
			t.Errorf("%+v on a full table: %v", c, err)
		}
	}
}

func TestApplyTooManyMasks(t *testing.T) {
	var fl []*Flow
	for i := 0; i < steer.MaxMasks; i++ {
		fl = append(fl, dpFlow(1, dpMatch().nwDst("10.0.0.0/"+strconv.Itoa(i+1)).get(), dpOut("p1")))
	}
	t1 := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
	if t1.NumMasks() != steer.MaxMasks {
		t.Fatalf("masks %d", t1.NumMasks())
	}
	// A flow naming an in_port has a mask of its own.
	extra := &Flow{Match: dpMatch().nwDst("10.0.0.0/1").inPort("p2").get()}
	if _, err := t1.Apply(Change{Add: []*Flow{extra}}, dpPorts); !errors.Is(err, ErrTooManyMasks) {
		t.Fatalf("33 masks: %v", err)
	}
	// Replacing a mask in the same change is fine: deletes come first.
	t2, err := t1.Apply(Change{Delete: []uint64{1}, Add: []*Flow{extra}}, dpPorts)
	if err != nil || t2.NumMasks() != steer.MaxMasks {
		t.Fatalf("swap a mask: %v", err)
	}
	// Same mask as an existing flow: no new mask.
	if _, err := t1.Apply(Change{Add: []*Flow{dpFlow(9, dpMatch().nwDst("10.0.0.0/1").get())}}, dpPorts); err != nil {
		t.Fatal(err)
	}
}

func TestLookupTieBreak(t *testing.T) {
	wide := dpMatch().dlType(0x0800).get()
	narrow := dpMatch().dlType(0x0800).nwProto(6).get()
	t1 := dpApply(t, NewTable(), Change{Add: []*Flow{dpFlow(100, wide, dpOut("p1")), dpFlow(100, narrow, dpOut("p2"))}}, dpPorts)
	k := dpMatch().dlType(0x0800).nwProto(6).key(1)
	if e := t1.Lookup(&k); e == nil || e.Flow.ID != 1 {
		t.Fatalf("equal priority: got %+v, want the earlier flow 1", e)
	}
	t2 := dpApply(t, t1, Change{Add: []*Flow{dpFlow(101, narrow, dpOut("p3"))}}, dpPorts)
	if e := t2.Lookup(&k); e == nil || e.Flow.ID != 3 {
		t.Fatalf("higher priority: got %+v", e)
	}
	k6 := dpMatch().dlType(0x86dd).key(1)
	if e := t2.Lookup(&k6); e != nil {
		t.Fatalf("no flow should match, got %d", e.Flow.ID)
	}
}

func TestRecompile(t *testing.T) {
	ports := map[string]uint32{"p1": 1, "p2": 2, "p3": 3}
	all := dpMatch().dlType(0x0800).get()
	t1 := dpApply(t, NewTable(), Change{Add: []*Flow{
		{Priority: 10, Match: dpMatch().dlType(0x0800).inPort("p1").get(), Actions: []Action{dpOut("p2")}},
		dpFlow(5, all, dpOut("p3")),
		dpFlow(1, dpMatch().get(), Action{Type: ActKernel}),
	}}, dpPortMap(ports))
	e1, e2, e3 := t1.Get(1), t1.Get(2), t1.Get(3)
	e1.Hit(3, 300, time.Now().UnixNano())
	if same := t1.Recompile(dpPortMap(ports)); same != t1 {
		t.Fatal("recompile without changes built a new snapshot")
	}
	k1 := dpMatch().dlType(0x0800).key(1)
	if e := t1.Lookup(&k1); e != e1 {
		t.Fatal("in_port flow does not match")
	}

	// p1 goes: flow 1 can no longer match; p3 goes: flow 2 drops.
	delete(ports, "p1")
	delete(ports, "p3")
	t2 := t1.Recompile(dpPortMap(ports))
	n1, n2 := t2.Get(1), t2.Get(2)
	if n1 == e1 || n1.Live() || n1.InPort != 0 || n2 == e2 || t2.Get(3) != e3 {
		t.Fatalf("entries: %p %p %p / %p %p %p live %v", e1, e2, e3, n1, n2, t2.Get(3), n1.Live())
	}
	if n1.Packets() != 3 || n1.Bytes() != 300 || n1.Rank != e1.Rank {
		t.Fatal("counters or rank lost in recompile")
	}
	if e := t2.Lookup(&k1); e != n2 {
		t.Fatalf("lookup after in_port gone: %+v", e)
	}
	var pkt Packet = dpPacket(dpTCP4Frame(t), 0, 0, 1)
	var lay Layout
	var k Key
	ExtractLayout(pkt.Frame(), 1, &k, &lay)
	if out, _ := n2.Program.Run(&pkt, &lay, 0); out != (Output{Kind: OutDrop, Reason: DropPortGone}) {
		t.Fatalf("output to gone port: %+v", out)
	}
	// Adding a flow naming the gone port fails, but deleting flows works.
	if _, err := t2.Apply(Change{Add: []*Flow{dpFlow(1, all, dpOut("p3"))}}, dpPortMap(ports)); !errors.Is(err, ErrNoSuchPort) {
		t.Fatalf("add to gone port: %v", err)
	}
	if _, err := t2.Apply(Change{Delete: []uint64{1}}, dpPortMap(ports)); err != nil {
		t.Fatal(err)
	}

	// p1 comes back under another number.
	ports["p1"] = 7
	ports["p3"] = 3
	t3 := t2.Recompile(dpPortMap(ports))
	k7 := dpMatch().dlType(0x0800).key(7)
	if e := t3.Lookup(&k7); e == nil || e.Flow.ID != 1 || e.InPort != 7 || e.Packets() != 3 {
		t.Fatalf("after p1 is back: %+v", e)
	}
	if e := t3.Lookup(&k1); e == nil || e.Flow.ID != 2 {
		t.Fatalf("port 1 packets: %+v", e)
	}
	if t1.Get(1) != e1 || !e1.Live() {
		t.Fatal("old snapshot changed")
	}
}

func TestExpired(t *testing.T) {
	t0 := time.Now()
	fl := []*Flow{
		{Priority: 1, IdleTimeout: 10, Match: dpMatch().tpDst(1).get()},
		{Priority: 1, HardTimeout: 20, Match: dpMatch().tpDst(2).get()},
		{Priority: 1, IdleTimeout: 5, HardTimeout: 30, Match: dpMatch().tpDst(3).get()},
		{Priority: 1, Match: dpMatch().tpDst(4).get()},
	}
	t1 := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n)*time.Second + time.Second/2) }
	if got := t1.Expired(sec(0)); len(got) != 0 {
		t.Fatalf("at 0: %v", got)
	}
	if got := t1.Expired(sec(5)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("at 5: %v", got)
	}
	t1.Get(3).Hit(1, 60, sec(4).UnixNano())
	t1.Get(1).Hit(1, 60, sec(8).UnixNano())
	if got := t1.Expired(sec(8)); len(got) != 0 {
		t.Fatalf("at 8 after hits: %v", got)
	}
	if got := t1.Expired(sec(10)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("at 10: %v", got)
	}
	if got := t1.Expired(sec(20)); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("at 20: %v", got)
	}
	if lu := t1.Get(1).LastUsed(); !lu.Equal(time.Unix(0, sec(8).UnixNano())) {
		t.Fatalf("last used %v", lu)
	}
	if lu, in := t1.Get(4).LastUsed(), t1.Get(4).Installed(); !lu.Equal(in) || in.Before(t0) {
		t.Fatalf("never used: last used %v installed %v", lu, in)
	}
	t2 := dpApply(t, t1, Change{Delete: []uint64{1, 2, 3}}, dpPorts)
	if got := t2.Expired(sec(100)); len(got) != 0 {
		t.Fatalf("deleted flows expire: %v", got)
	}
}

func TestLookupAllocs(t *testing.T) {
	tb := randomTable(t, dpRand(3), 1000, 16)
	keys := randomKeys(dpRand(4), tb, 64)
	n := testing.AllocsPerRun(100, func() {
		for i := range keys {
			tb.Lookup(&keys[i])
		}
	})
	if n != 0 {
		t.Fatalf("Lookup allocates %v times", n)
	}
}

// TestConcurrentSnapshots: readers look up, count and run programs on
// whatever snapshot is current while a writer builds new ones. Run with
// -race: snapshots are never written after they are published.
func TestConcurrentSnapshots(t *testing.T) {
	var cur atomic.Pointer[Table]
	r := dpRand(31)
	g := &keyGen{rnd: r, small: true}
	masks := maskPool(r, 8)
	cur.Store(NewTable())
	keys := keysFor(g, nil, 512)
	frame := dpTCP4Frame(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewCache(64)
			buf := make([]byte, 256)
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				tb := cur.Load()
				k := &keys[n%len(keys)]
				if e := c.Lookup(tb, k).Entry(); e != nil {
					e.Hit(1, 64, int64(n))
					copy(buf[64:], frame)
					pkt := Packet{Buf: buf, Off: 64, Len: len(frame), InPort: 1}
					var fk Key
					var lay Layout
					ExtractLayout(pkt.Frame(), 1, &fk, &lay)
					for pc := 0; pc >= 0; {
						_, pc = e.Program.Run(&pkt, &lay, pc)
					}
				}
				tb.Lookup(k)
			}
		}()
	}
	tb := cur.Load()
	for step := 0; step < 200; step++ {
		var c Change
		for _, e := range tb.flows {
			if r.IntN(5) == 0 {
				c.Delete = append(c.Delete, e.Flow.ID)
			}
		}
		for n := r.IntN(10); n > 0; n-- {
			c.Add = append(c.Add, randomFlow(g, masks, false))
		}
		tb = dpApply(t, tb, c, dpPorts)
		if step%20 == 0 {
			tb = tb.Recompile(dpPortMap(map[string]uint32{"p1": 1, "p2": uint32(2 + 10*(step%3)), "p3": 3, "p4": 4}))
		}
		if _, err := tb.Steering(nil); err != nil {
			t.Fatal(err)
		}
		tb.Entries()
		tb.Expired(time.Now())
		cur.Store(tb)
	}
	close(done)
	wg.Wait()
}

// Two tables made from one snapshot hold their own flows: the second does
// not write over the first's in the arrays they began with, and the
// snapshot keeps its own. (Apply appends in place once: the snapshot's
// spare capacity goes to the first table that takes it.)
func TestApplySnapshots(t *testing.T) {
	base := NewTable()
	for i := range 3 { // grow the arrays, so they have room past their length
		base = dpApply(t, base, Change{Add: []*Flow{mustParse(t, fmt.Sprintf("priority=%d,udp,tp_dst=%d,actions=drop", 10+i, 100+i))}}, dpPorts)
	}
	n := len(base.ByID())
	a := dpApply(t, base, Change{Add: []*Flow{mustParse(t, "priority=1,udp,tp_dst=1,hard_timeout=60,actions=drop")}}, dpPorts)
	b := dpApply(t, base, Change{Add: []*Flow{mustParse(t, "priority=2,udp,tp_dst=2,hard_timeout=60,actions=drop")}}, dpPorts)
	for _, c := range []struct {
		name string
		tb   *Table
		want string // the last flow's, "" for none added
	}{{"a", a, "tp_dst=1"}, {"b", b, "tp_dst=2"}, {"base", base, ""}} {
		es := c.tb.ByID()
		wantN := n
		if c.want != "" {
			wantN++
		}
		if len(es) != wantN {
			t.Fatalf("%s: %d flows, want %d", c.name, len(es), wantN)
		}
		if c.want == "" {
			continue
		}
		if s := es[len(es)-1].Text(); !strings.Contains(s, c.want) {
			t.Errorf("%s: last flow %q, want one with %s", c.name, s, c.want)
		}
		if tm := c.tb.timed; len(tm) != 1 || !strings.Contains(tm[0].Text(), c.want) {
			t.Errorf("%s: timed flows %v, want the one with %s", c.name, tm, c.want)
		}
	}
}

// A Recompile's table has arrays of its own: what it appends later does not
// take the room past its parent's arrays, so the parent's next table still
// appends in place.
func TestRecompileLeavesParentsRoom(t *testing.T) {
	ports := map[string]uint32{"p1": 1, "p2": 2}
	base := NewTable()
	for i := range 3 { // grow the arrays, so they have room past their length
		base = dpApply(t, base, Change{Add: []*Flow{dpFlow(uint16(100+i), dpMatch().dlType(0x0800).nwProto(uint8(6+i)).get(), dpOut("p2"))}}, dpPortMap(ports))
	}
	if cap(base.flows) == len(base.flows) {
		t.Fatalf("no room past %d flows to test with", len(base.flows))
	}
	ports["p2"] = 7
	re := base.Recompile(dpPortMap(ports))
	if re == base {
		t.Fatal("a port's new number recompiled nothing")
	}
	dpApply(t, re, Change{Add: []*Flow{mustParse(t, "priority=1,udp,tp_dst=1,actions=drop")}}, dpPortMap(ports))
	a := dpApply(t, base, Change{Add: []*Flow{mustParse(t, "priority=2,udp,tp_dst=2,actions=drop")}}, dpPorts)
	if &a.flows[0] != &base.flows[0] {
		t.Error("the parent's next table copied its flows: the recompiled table took the room past them")
	}
}

func mustParse(t *testing.T, text string) *Flow {
	t.Helper()
	f, err := ParseFlow(text)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	return f
}

// TestApplySnapshotLineage derives tables from one parent snapshot (siblings, as
// an abandoned change and the next one, or two dry runs, are) and checks
// that each holds exactly its own flows and the parent is unchanged: a
// derived table must not append into arrays another table of the lineage
// appends into too.
func TestApplySnapshotLineage(t *testing.T) {
	match := func(i int) Match { return dpMatch().dlType(0x0800).nwProto(17).tpDst(uint16(1000 + i)).get() }
	flow := func(i int) *Flow {
		f := dpFlow(uint16(100+i), match(i), dpOut("p2"))
		f.HardTimeout = uint16(10 + i) // in timed too
		return f
	}
	// want checks that tb holds the flows of prios, in order, and nothing
	// else, in flows, in timed and in its classifier.
	want := func(name string, tb *Table, prios ...int) {
		t.Helper()
		for what, es := range map[string][]*Entry{"flows": tb.flows, "timed": tb.timed} {
			var got []int
			for _, e := range es {
				got = append(got, int(e.Flow.Priority)-100)
			}
			if !slices.Equal(got, prios) {
				t.Errorf("%s: %s hold flows %v, want %v", name, what, got, prios)
			}
		}
		for i := range 20 {
			k := dpMatch().dlType(0x0800).nwProto(17).tpDst(uint16(1000 + i)).key(0)
			if hit := tb.Lookup(&k) != nil; hit != slices.Contains(prios, i) {
				t.Errorf("%s: lookup of flow %d hits %v", name, i, hit)
			}
		}
	}
	group, err := ParseGroup("group_id=1,type=all,bucket=output:p2")
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 9; n++ {
		// The parent, as one add of n flows and as a chain of adds.
		var all []*Flow
		var prios []int
		for i := range n {
			all = append(all, flow(i))
			prios = append(prios, i)
		}
		chain := NewTable()
		for _, f := range all {
			chain = dpApply(t, chain, Change{Add: []*Flow{f}}, dpPorts)
		}
		for pname, p := range map[string]*Table{"one add": dpApply(t, NewTable(), Change{Add: all}, dpPorts), "chain": chain} {
			name := strconv.Itoa(n) + " flows, " + pname
			// Tables that share p's arrays: p itself, and what a
			// replace of the same flows and a liveness change give.
			same := dpApply(t, p, Change{Replace: true, Add: all}, dpPorts)
			dead := p.WithDeadPorts(PortSet{1})
			// A change of groups only leaves p's flows to e, which its
			// child appends to, before p's other children do.
			e := dpApply(t, p, Change{AddGroups: []*Group{group}}, dpPorts)
			e2 := dpApply(t, e, Change{Add: []*Flow{flow(18)}}, dpPorts)
			a := dpApply(t, p, Change{Add: []*Flow{flow(10)}}, dpPorts)
			b := dpApply(t, p, Change{Add: []*Flow{flow(11)}}, dpPorts)
			c := dpApply(t, same, Change{Add: []*Flow{flow(12)}}, dpPorts)
			d := dpApply(t, dead, Change{Add: []*Flow{flow(13), flow(14)}}, dpPorts)
			// And their children, in both orders.
			a2 := dpApply(t, a, Change{Add: []*Flow{flow(15)}}, dpPorts)
			b2 := dpApply(t, b, Change{Add: []*Flow{flow(16)}}, dpPorts)
			a3 := dpApply(t, a, Change{Add: []*Flow{flow(17)}}, dpPorts)
			want(name+": parent", p, prios...)
			want(name+": replace-same", same, prios...)
			want(name+": dead ports", dead, prios...)
			want(name+": e", e, prios...)
			want(name+": e2", e2, append(slices.Clone(prios), 18)...)
			want(name+": a", a, append(slices.Clone(prios), 10)...)
			want(name+": b", b, append(slices.Clone(prios), 11)...)
			want(name+": c", c, append(slices.Clone(prios), 12)...)
			want(name+": d", d, append(slices.Clone(prios), 13, 14)...)
			want(name+": a2", a2, append(slices.Clone(prios), 10, 15)...)
			want(name+": b2", b2, append(slices.Clone(prios), 11, 16)...)
			want(name+": a3", a3, append(slices.Clone(prios), 10, 17)...)
		}
	}
}

// TestSelect checks that Select gives what Entries gives, less the flows
// keep refuses, in Entries' order.
func TestSelect(t *testing.T) {
	var add []*Flow
	for i := range 40 {
		add = append(add, mustParse(t, fmt.Sprintf("table=%d,priority=%d,udp,tp_dst=%d,actions=drop", i%3, 100-i%7, i)))
	}
	tb := dpApply(t, NewTable(), Change{Add: add}, dpPorts)
	all := tb.Entries()
	odd := func(f *Flow) bool { return f.ID%2 == 1 }
	var want []uint64
	for _, e := range all {
		if odd(e.Flow) {
			want = append(want, e.Flow.ID)
		}
	}
	if got := ids(tb.Select(odd)); len(want) != 20 || !slices.Equal(got, want) {
		t.Fatalf("Select(odd) = %v, want %v", got, want)
	}
	if got := ids(tb.Select(nil)); !slices.Equal(got, ids(all)) {
		t.Fatalf("Select(nil) = %v, want Entries' %v", got, ids(all))
	}
	if got := tb.Select(func(*Flow) bool { return false }); len(got) != 0 {
		t.Fatalf("Select(none) = %v", ids(got))
	}
}

// TestWithoutIDs checks both of withoutIDs' ways (a walk, and binary
// searches for a few IDs) against a filter, IDs absent and repeated
// included.
func TestWithoutIDs(t *testing.T) {
	r := dpRand(3)
	for round := range 200 {
		n := r.IntN(300)
		var es []*Entry
		id := uint64(0)
		for range n {
			id += 1 + uint64(r.IntN(3))
			es = append(es, &Entry{Flow: &Flow{ID: id}})
		}
		var ids []uint64
		for k := r.IntN(1 + n/(1+r.IntN(80))); k > 0; k-- {
			ids = append(ids, uint64(r.IntN(int(id)+2)))
		}
		slices.Sort(ids)
		var want []uint64
		for _, e := range es {
			if _, found := slices.BinarySearch(ids, e.Flow.ID); !found {
				want = append(want, e.Flow.ID)
			}
		}
		got := withoutIDs(es, ids)
		if !slices.Equal(flowIDs(got), want) {
			t.Fatalf("round %d: withoutIDs(%v, %v) = %v, want %v", round, flowIDs(es), ids, flowIDs(got), want)
		}
		if len(got) == len(es) && len(es) > 0 && &got[0] != &es[0] {
			t.Fatalf("round %d: nothing went, and es was copied", round)
		}
	}
}

func flowIDs(es []*Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Flow.ID)
	}
	return out
}
