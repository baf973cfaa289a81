package bpf

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// classifier is a loaded program serving lo as testPort, with the key of a
// UDP frame at hand.
type classifier struct {
	o     *Objects
	lo    int
	frame []byte
	key   steer.Key
}

func newClassifier(t *testing.T) *classifier {
	t.Helper()
	c := &classifier{o: load(t, true), lo: loIndex(t)}
	if err := c.o.SetPort(c.lo, testPort); err != nil {
		t.Fatal(err)
	}
	c.frame = udp4Frame(t, 1234, 53)
	res, err := c.o.TestRun(c.frame, c.lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.key = res.Key
	return c
}

func (c *classifier) run(t *testing.T) TestResult {
	t.Helper()
	res, err := c.o.TestRun(c.frame, c.lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (c *classifier) put(t *testing.T, rules ...steer.Rule) {
	t.Helper()
	if err := c.o.PutRules(rules); err != nil {
		t.Fatal(err)
	}
}

func (c *classifier) masks(t *testing.T, masks ...steer.Mask) {
	t.Helper()
	if err := c.o.SetMasks(masks); err != nil {
		t.Fatal(err)
	}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name    string
		verdict steer.Verdict
		action  Action
		counter steer.Counter
	}{
		{"drop", steer.VerdictDrop, ActionDrop, steer.CounterDrop},
		{"pass rule", steer.VerdictPass, ActionPass, steer.CounterPassRule},
		{"redirect without a socket", steer.VerdictRedirect, ActionPass, steer.CounterRedirectNoSock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClassifier(t)
			if res := c.run(t); res.Action != ActionPass || res.Hit {
				t.Fatalf("no rules: %+v", res)
			}
			m := maskOf(spanDlType, spanNwProto, spanTpDst)
			c.put(t, ruleFor(c.key, 4, m, steer.MakeRank(100, 1), tt.verdict))
			if res := c.run(t); res.Hit {
				t.Fatalf("rule matched before its mask is live: %+v", res)
			}
			c.masks(t, steer.Mask{ID: 4, Mask: m, MaxRank: steer.MakeRank(100, 1)})
			res := c.run(t)
			if res.Action != tt.action || !res.Hit || res.Verdict != tt.verdict || res.MaskID != 4 {
				t.Fatalf("got %+v, want action %v verdict %v", res, tt.action, tt.verdict)
			}
			// Another port does not match.
			other := udp4Frame(t, 1234, 54)
			if r, err := c.o.TestRun(other, c.lo, 0); err != nil || r.Action != ActionPass || r.Hit {
				t.Fatalf("tp_dst 54: %+v %v", r, err)
			}
			// Runs: the key probe, no rules, rule not live, the verdict, other port.
			n, no := uint64(len(c.frame)), uint64(len(other))
			var want [steer.NumCounters]CounterValue
			want[steer.CounterRX] = CounterValue{5, 4*n + no}
			want[steer.CounterPassNoMatch] = CounterValue{4, 3*n + no}
			want[tt.counter] = CounterValue{1, n}
			if got := counters(t, c.o, testPort); got != want {
				t.Fatalf("counters\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestRedirectToSocket(t *testing.T) {
	o := load(t, true)
	v := newVeth(t, "", "")
	ifindex := v.LocalIndex()
	if err := o.SetPort(ifindex, 7); err != nil {
		t.Fatal(err)
	}
	x := newTestXSK(t, ifindex, 0)
	frame := udp4Frame(t, 1000, 2000)
	res, err := o.TestRun(frame, ifindex, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := maskOf(spanInPort, spanTpDst)
	if err := o.PutRules([]steer.Rule{ruleFor(res.Key, 0, m, steer.MakeRank(1, 0), steer.VerdictRedirect)}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetMasks([]steer.Mask{{ID: 0, Mask: m, MaxRank: steer.MakeRank(1, 0)}}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		do      func() error
		action  Action
		counter steer.Counter
	}{
		{"no socket", func() error { return nil }, ActionPass, steer.CounterRedirectNoSock},
		{"socket registered", func() error { return o.RegisterSocket(7, 0, x.fd) }, ActionRedirect, steer.CounterRedirect},
		{"registered again", func() error { return o.RegisterSocket(7, 0, x.fd) }, ActionRedirect, steer.CounterRedirect},
		{"socket on another port", func() error {
			if err := o.UnregisterSocket(7, 0); err != nil {
				return err
			}
			return o.RegisterSocket(8, 0, x.fd)
		}, ActionPass, steer.CounterRedirectNoSock},
		{"unregistered twice", func() error {
			if err := o.UnregisterSocket(8, 0); err != nil {
				return err
			}
			return o.UnregisterSocket(8, 0)
		}, ActionPass, steer.CounterRedirectNoSock},
	}
	for _, s := range steps {
		before := packets(counters(t, o, 7))
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		res, err := o.TestRun(frame, ifindex, 0)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.Action != s.action || res.Verdict != steer.VerdictRedirect {
			t.Fatalf("%s: %+v, want %v", s.name, res, s.action)
		}
		after := packets(counters(t, o, 7))
		if after[s.counter]-before[s.counter] != 1 || after[steer.CounterRX]-before[steer.CounterRX] != 1 {
			t.Fatalf("%s: counters %v -> %v", s.name, before, after)
		}
	}
}

func TestSocketArgs(t *testing.T) {
	o := load(t, false)
	tests := []struct {
		name   string
		ofport uint32
		queue  int
		fd     int
	}{
		{"ofport 0", 0, 0, 3},
		{"ofport too big", steer.MaxPorts, 0, 3},
		{"negative queue", 1, -1, 3},
		{"queue too big", 1, steer.MaxQueues, 3},
		{"negative fd", 1, 0, -1},
		{"not a socket", 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := o.RegisterSocket(tt.ofport, tt.queue, tt.fd); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if err := o.UnregisterSocket(0, 0); err == nil {
		t.Fatal("unregister ofport 0: no error")
	}
	for _, p := range []struct {
		ifindex int
		ofport  uint32
	}{{0, 1}, {-1, 1}, {1, 0}, {1, steer.MaxPorts}} {
		if err := o.SetPort(p.ifindex, p.ofport); err == nil {
			t.Fatalf("SetPort(%d, %d): no error", p.ifindex, p.ofport)
		}
	}
	if _, err := o.Counters(steer.MaxPorts); err == nil {
		t.Fatal("Counters(MaxPorts): no error")
	}
}

// Three masks over the same UDP frame, ranks chosen per case. A mask's
// rule matches the frame unless its rank is 0.
func TestPriorities(t *testing.T) {
	m1 := maskOf(spanDlType, spanTpDst)
	m2 := maskOf(spanNwSrc4)
	m3 := maskOf(spanNwDst4, spanNwProto)
	tests := []struct {
		name        string
		maxRanks    [3]steer.Rank // the masks' max ranks, order 1,2,3
		ranks       [3]steer.Rank // the matching rule under each mask; 0 = none
		wantMask    uint32
		wantVisited int
	}{
		{"first mask wins, walk stops", [3]steer.Rank{300, 200, 100}, [3]steer.Rank{300, 200, 100}, 1, 1},
		{"later mask beats a weaker hit", [3]steer.Rank{300, 200, 100}, [3]steer.Rank{50, 200, 100}, 2, 2},
		{"last mask beats weaker hits", [3]steer.Rank{300, 200, 150}, [3]steer.Rank{50, 100, 150}, 3, 3},
		{"miss, then a hit that ends the walk", [3]steer.Rank{300, 200, 100}, [3]steer.Rank{0, 200, 100}, 2, 2},
		{"hit equal to the next max rank stops", [3]steer.Rank{300, 200, 100}, [3]steer.Rank{200, 200, 100}, 1, 1},
		{"lying max rank: the stop trusts it", [3]steer.Rank{300, 200, 100}, [3]steer.Rank{250, 900, 100}, 1, 1},
		{"only the last mask matches", [3]steer.Rank{300, 200, 100}, [3]steer.Rank{0, 0, 100}, 3, 3},
		{"nothing matches", [3]steer.Rank{300, 200, 100}, [3]steer.Rank{0, 0, 0}, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClassifier(t)
			masks := []steer.Mask{
				{ID: 11, Mask: m1, MaxRank: tt.maxRanks[0]},
				{ID: 22, Mask: m2, MaxRank: tt.maxRanks[1]},
				{ID: 3, Mask: m3, MaxRank: tt.maxRanks[2]},
			}
			ids := map[uint32]uint32{11: 1, 22: 2, 3: 3}
			for i, r := range tt.ranks {
				if r == 0 {
					// A rule under the mask that the frame misses.
					miss := ruleFor(c.key, masks[i].ID, masks[i].Mask, 999, steer.VerdictDrop)
					miss.Key[steer.OffDlType] ^= 0xff
					miss.Key[steer.OffNwSrc] ^= 0xff
					miss.Key[steer.OffNwDst] ^= 0xff
					c.put(t, miss)
					continue
				}
				c.put(t, ruleFor(c.key, masks[i].ID, masks[i].Mask, r, steer.VerdictDrop))
			}
			c.masks(t, masks...)
			res := c.run(t)
			if res.Visited != tt.wantVisited {
				t.Errorf("visited %d masks, want %d", res.Visited, tt.wantVisited)
			}
			if tt.wantMask == 0 {
				if res.Hit || res.Action != ActionPass {
					t.Fatalf("want no hit, got %+v", res)
				}
				return
			}
			if !res.Hit || ids[res.MaskID] != tt.wantMask || res.Rank != tt.ranks[tt.wantMask-1] || res.Action != ActionDrop {
				t.Fatalf("got %+v (mask %d), want mask %d", res, ids[res.MaskID], tt.wantMask)
			}
		})
	}
}

// The equal-rank tie goes to the mask visited first, whichever it is.
func TestTieGoesToFirstMask(t *testing.T) {
	c := newClassifier(t)
	ma, mb := maskOf(spanTpSrc), maskOf(spanTpDst)
	c.put(t, ruleFor(c.key, 1, ma, 500, steer.VerdictDrop), ruleFor(c.key, 2, mb, 500, steer.VerdictPass))
	c.masks(t, steer.Mask{ID: 1, Mask: ma, MaxRank: 500}, steer.Mask{ID: 2, Mask: mb, MaxRank: 500})
	if res := c.run(t); res.MaskID != 1 || res.Action != ActionDrop {
		t.Fatalf("order 1,2: %+v", res)
	}
	c.masks(t, steer.Mask{ID: 2, Mask: mb, MaxRank: 500}, steer.Mask{ID: 1, Mask: ma, MaxRank: 500})
	if res := c.run(t); res.MaskID != 2 || res.Action != ActionPass {
		t.Fatalf("order 2,1: %+v", res)
	}
}

func activeSlot(t *testing.T, o *Objects) uint32 {
	t.Helper()
	var s uint32
	if err := o.objs.Active.Lookup(uint32(0), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// SetMasks writes the idle order slot and flips: each call switches the
// program to the other slot, and only the masks of the live order count.
func TestOrderFlip(t *testing.T) {
	c := newClassifier(t)
	ma := maskOf(spanTpDst)
	mb := maskOf(spanNwDst4)
	c.put(t, ruleFor(c.key, 1, ma, steer.MakeRank(10, 0), steer.VerdictPass))
	c.put(t, ruleFor(c.key, 2, mb, steer.MakeRank(20, 0), steer.VerdictDrop))
	A := steer.Mask{ID: 1, Mask: ma, MaxRank: steer.MakeRank(10, 0)}
	B := steer.Mask{ID: 2, Mask: mb, MaxRank: steer.MakeRank(20, 0)}

	steps := []struct {
		name    string
		masks   []steer.Mask
		slot    uint32
		action  Action
		visited int
	}{
		{"a only", []steer.Mask{A}, 1, ActionPass, 1},
		{"b joins ahead of a", []steer.Mask{B, A}, 0, ActionDrop, 1},
		{"a only again", []steer.Mask{A}, 1, ActionPass, 1},
		{"empty order", nil, 0, ActionPass, 0},
		{"b only", []steer.Mask{B}, 1, ActionDrop, 1},
	}
	if s := activeSlot(t, c.o); s != 0 {
		t.Fatalf("fresh objects read slot %d", s)
	}
	prev := 0
	for _, s := range steps {
		c.masks(t, s.masks...)
		if got := activeSlot(t, c.o); got != s.slot {
			t.Fatalf("%s: active slot %d, want %d", s.name, got, s.slot)
		}
		res := c.run(t)
		if res.Action != s.action || res.Visited != s.visited {
			t.Fatalf("%s: %+v, want %v after %d masks", s.name, res, s.action, s.visited)
		}
		// The idle slot still holds the previous order.
		var idle, live maskOrder
		if err := c.o.objs.MaskOrder.Lookup(s.slot^1, &idle); err != nil {
			t.Fatal(err)
		}
		if err := c.o.objs.MaskOrder.Lookup(s.slot, &live); err != nil {
			t.Fatal(err)
		}
		if int(idle.N) != prev {
			t.Fatalf("%s: idle order has %d masks, want the previous %d", s.name, idle.N, prev)
		}
		prev = len(s.masks)
		if int(live.N) != len(s.masks) {
			t.Fatalf("%s: live order has %d masks, want %d", s.name, live.N, len(s.masks))
		}
	}
}

func TestSetMasksErrors(t *testing.T) {
	c := newClassifier(t)
	m := func(id uint32, rank steer.Rank) steer.Mask {
		return steer.Mask{ID: id, Mask: maskOf(span{steer.OffTpDst, 2}), MaxRank: rank}
	}
	tooMany := make([]steer.Mask, steer.MaxMasks+1)
	for i := range tooMany {
		tooMany[i] = m(uint32(i%steer.MaxMasks), 1)
	}
	c.masks(t, m(5, 10)) // live order in slot 1

	tests := []struct {
		name  string
		masks []steer.Mask
		want  string
	}{
		{"too many", tooMany, "at most"},
		{"id out of range", []steer.Mask{m(steer.MaxMasks, 1)}, "out of range"},
		{"duplicate id", []steer.Mask{m(1, 5), m(1, 4)}, "used twice"},
		{"not sorted by max rank", []steer.Mask{m(1, 5), m(2, 6)}, "highest first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.o.SetMasks(tt.masks)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if s := activeSlot(t, c.o); s != 1 {
				t.Fatalf("a refused SetMasks flipped the order to slot %d", s)
			}
		})
	}
}

// A live mask id that takes another key goes through an order without it.
func TestMaskKeyChange(t *testing.T) {
	c := newClassifier(t)
	mTp, mSrc, mDst := maskOf(spanTpDst), maskOf(spanNwSrc4), maskOf(spanNwDst4)
	old := ruleFor(c.key, 1, mTp, 300, steer.VerdictDrop)
	c.put(t, old, ruleFor(c.key, 2, mDst, 100, steer.VerdictPass))
	c.masks(t, steer.Mask{ID: 1, Mask: mTp, MaxRank: 300}, steer.Mask{ID: 2, Mask: mDst, MaxRank: 100})
	if res := c.run(t); res.MaskID != 1 || res.Action != ActionDrop {
		t.Fatalf("before: %+v", res)
	}

	// The flow table's sync: old rules out, new rules in, then the masks.
	if err := c.o.DeleteRules([]steer.Rule{old}); err != nil {
		t.Fatal(err)
	}
	c.put(t, ruleFor(c.key, 1, mSrc, 200, steer.VerdictRedirect))
	slot, waits := activeSlot(t, c.o), c.o.waits
	time.Sleep(2 * flipGrace)
	c.masks(t, steer.Mask{ID: 1, Mask: mSrc, MaxRank: 200}, steer.Mask{ID: 2, Mask: mDst, MaxRank: 100})
	if s := activeSlot(t, c.o); s != slot {
		t.Fatalf("active slot %d, want %d after two flips", s, slot)
	}
	if c.o.waits != waits+1 {
		t.Fatalf("waited for program runs %d times, want once", c.o.waits-waits)
	}
	var k steer.Key
	if err := c.o.objs.Masks.Lookup(uint32(1), &k); err != nil || k != mSrc {
		t.Fatalf("mask 1 reads %x (%v), want the nw_src mask", k[:], err)
	}
	if res := c.run(t); res.MaskID != 1 || res.Rank != 200 || res.Verdict != steer.VerdictRedirect {
		t.Fatalf("after: %+v", res)
	}

	// A flip long after the previous one does not wait.
	time.Sleep(2 * flipGrace)
	waits = c.o.waits
	c.masks(t, steer.Mask{ID: 2, Mask: mDst, MaxRank: 100})
	if c.o.waits != waits {
		t.Fatal("a flip long after the last one waited for program runs")
	}
	// Back to back, the second flip rewrites the slot the first one left
	// only if it is older than flipGrace; either way the result is right.
	c.masks(t, steer.Mask{ID: 1, Mask: mSrc, MaxRank: 200})
	if res := c.run(t); res.MaskID != 1 || res.Verdict != steer.VerdictRedirect {
		t.Fatalf("back to back: %+v", res)
	}
}

func TestWaitForPrograms(t *testing.T) {
	o := load(t, false)
	o.mu.Lock()
	defer o.mu.Unlock()
	start := time.Now()
	for range 3 {
		if err := o.waitForProgramsLocked(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("a grace period takes %v", time.Since(start)/3)
	if o.waits != 3 || !o.idleQuiet {
		t.Fatalf("waits %d quiet %v", o.waits, o.idleQuiet)
	}
}

func TestRuleErrors(t *testing.T) {
	c := newClassifier(t)
	tests := []struct {
		name string
		rule steer.Rule
	}{
		{"mask id out of range", steer.Rule{MaskID: steer.MaxMasks}},
		{"unknown verdict", steer.Rule{Verdict: steer.VerdictForward + 1}},
		{"record slot out of range", steer.Rule{Verdict: steer.VerdictForward, Arg: steer.MaxRecords}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.o.PutRules([]steer.Rule{{}, tt.rule}); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if err := c.o.DeleteRules([]steer.Rule{{MaskID: steer.MaxMasks}}); err == nil {
		t.Fatal("delete with a bad mask id: no error")
	}
	if n := countRules(t, c.o); n != 0 {
		t.Fatalf("refused batches wrote %d rules", n)
	}
}

func countRules(t *testing.T, o *Objects) int {
	t.Helper()
	keys := make([]ruleKey, 4096)
	vals := make([]ruleValue, len(keys))
	var cursor ebpf.MapBatchCursor
	total := 0
	for {
		n, err := o.objs.Rules.BatchLookup(&cursor, keys, vals, nil)
		total += n
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return total
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// manyRules returns n distinct rules under 4 masks.
func manyRules(n int) []steer.Rule {
	rules := make([]steer.Rule, n)
	for i := range rules {
		r := &rules[i]
		r.MaskID = uint32(i % 4)
		binary.BigEndian.PutUint32(r.Key[steer.OffNwDst:], uint32(i))
		r.Rank = steer.MakeRank(uint16(i%7), uint32(i))
		r.Verdict = steer.Verdict(i % 3)
	}
	return rules
}

func TestBulkRules(t *testing.T) {
	o := load(t, false)
	rules := manyRules(160_000)
	if err := o.PutRules(rules); err != nil {
		t.Fatal(err)
	}
	if n := countRules(t, o); n != len(rules) {
		t.Fatalf("%d rules in the map, want %d", n, len(rules))
	}
	// Rewriting replaces in place.
	rules[7].Rank, rules[7].Verdict, rules[7].Arg = 42, steer.VerdictRedirect, 9
	if err := o.PutRules(rules[7:8]); err != nil {
		t.Fatal(err)
	}
	var v ruleValue
	if err := o.objs.Rules.Lookup(&ruleKey{MaskID: rules[7].MaskID, Key: rules[7].Key}, &v); err != nil {
		t.Fatal(err)
	}
	if v.Rank != 42 || v.Verdict != uint8(steer.VerdictRedirect) || v.Arg != 9 {
		t.Fatalf("rewritten rule reads %+v", v)
	}
	if n := countRules(t, o); n != len(rules) {
		t.Fatalf("%d rules after a rewrite, want %d", n, len(rules))
	}
	// Deleting skips rules that are not there: delete every other rule,
	// then all of them.
	var half []steer.Rule
	for i := 0; i < len(rules); i += 2 {
		half = append(half, rules[i])
	}
	if err := o.DeleteRules(half); err != nil {
		t.Fatal(err)
	}
	if n := countRules(t, o); n != len(rules)-len(half) {
		t.Fatalf("%d rules after deleting %d, want %d", n, len(half), len(rules)-len(half))
	}
	if err := o.DeleteRules(rules); err != nil {
		t.Fatal(err)
	}
	if n := countRules(t, o); n != 0 {
		t.Fatalf("%d rules left", n)
	}
}

func TestRulesCapacity(t *testing.T) {
	o := load(t, false)
	rules := manyRules(steer.MaxRules + 1)
	if err := o.PutRules(rules[:steer.MaxRules]); err != nil {
		t.Fatalf("filling the table: %v", err)
	}
	err := o.PutRules(rules[steer.MaxRules:])
	if !errors.Is(err, ErrRuleTableFull) {
		t.Fatalf("rule %d: %v, want ErrRuleTableFull", steer.MaxRules+1, err)
	}
	if n := countRules(t, o); n != steer.MaxRules {
		t.Fatalf("%d rules in a full table", n)
	}
}

func BenchmarkPutRules160k(b *testing.B) {
	o := load(b, false)
	rules := manyRules(160_000)
	b.ReportAllocs()
	for b.Loop() {
		if err := o.PutRules(rules); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := o.DeleteRules(rules); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/install")
}

// BenchmarkProgram is the kernel's cost for one frame through the program:
// parse, and a walk of 4 masks that all miss over 160k rules.
func BenchmarkProgram(b *testing.B) {
	o := load(b, false)
	lo := loIndex(b)
	if err := o.SetPort(lo, testPort); err != nil {
		b.Fatal(err)
	}
	if err := o.PutRules(manyRules(160_000)); err != nil {
		b.Fatal(err)
	}
	var masks []steer.Mask
	for i := range 4 {
		masks = append(masks, steer.Mask{ID: uint32(i), Mask: maskOf(spanNwDst4, spanTpSrc), MaxRank: steer.Rank(100 - i)})
	}
	if err := o.SetMasks(masks); err != nil {
		b.Fatal(err)
	}
	frame := udp4Frame(b, 1, 2)
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(lo)}
	b.ResetTimer()
	ret, err := o.objs.XvsXdp.Run(&ebpf.RunOptions{Data: frame, Context: &ctx, Repeat: uint32(b.N)})
	if err != nil || Action(ret) != ActionPass {
		b.Fatalf("run: %v %v", Action(ret), err)
	}
}
