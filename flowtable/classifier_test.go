package flowtable

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// byHome orders slots as a stable sort by home index does, on the short
// path (a comparison sort) and the long one (the radix passes).
func TestByHome(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 100, 5000, 70_000} {
		const shift = 64 - 17
		in := make([]slot, n)
		for i := range in {
			// Every other slot has one of 64 homes: many ties, whose
			// order must hold.
			h := rnd.Uint64()
			if i%2 == 1 {
				h = h&(1<<shift-1) | uint64(rnd.IntN(64))<<shift
			}
			in[i] = slot{h: h, rank: steer.MakeRank(0, uint32(i))}
		}
		want := slices.Clone(in)
		slices.SortStableFunc(want, func(a, b slot) int { return cmp.Compare(a.h>>shift, b.h>>shift) })
		if got := byHome(slices.Clone(in), shift); !slices.Equal(got, want) {
			t.Errorf("%d slots: not in home order, or ties out of their order", n)
		}
	}
}

// A group of many flows, keys shared by several flows at other priorities
// (and, with hashKeep, distinct keys sharing hashes), finds the flow of
// the highest rank for each key.
func TestLargeSubtable(t *testing.T) {
	for _, keep := range []uint64{^uint64(0), 0xe000000000000007} {
		t.Run(fmt.Sprintf("hashKeep=%#x", keep), func(t *testing.T) {
			hashKeep = keep
			defer func() { hashKeep = ^uint64(0) }()
			rnd := rand.New(rand.NewPCG(3, 4))
			const keys = 3000
			var add []*Flow
			best := map[int]uint16{}
			for range 3 * keys {
				k, prio := rnd.IntN(keys), uint16(1+rnd.IntN(60000))
				add = append(add, &Flow{Priority: prio, Actions: []Action{dpOut("p1")},
					Match: dpMatch().dlType(0x0800).nwDst(fmt.Sprintf("10.1.%d.%d/32", k>>8, k&255)).get()})
				best[k] = max(best[k], prio)
			}
			tb := dpApply(t, NewTable(), Change{Add: add}, dpPorts)
			for k := range keys {
				key := dpMatch().dlType(0x0800).nwDst(fmt.Sprintf("10.1.%d.%d/32", k>>8, k&255)).key(1)
				e := tb.Lookup(&key)
				if want, ok := best[k]; !ok && e != nil || ok && (e == nil || e.Flow.Priority != want) {
					t.Fatalf("key %d: flow %v, want priority %d", k, flowID(e), want)
				}
			}
		})
	}
}

// TestSmallChangesDifferential makes small changes to a large group of
// flows with distinct keys (which subtable.derive takes, from a copy of
// the slots), some adds replacing a flow with the same match, some
// sharing a key at another priority (after which the group is rebuilt
// until deletes make its keys distinct again), and checks after each
// that the table holds the model's flows, that lookups and the steering
// rules agree with the linear-scan references, and that every subtable
// is what newSubtable builds from its flows.
func TestSmallChangesDifferential(t *testing.T) {
	defer func(m, p int) { deriveMin, maxPage = m, p }(deriveMin, maxPage)
	deriveMin, maxPage = 64, 16 // groups of many pages
	derived := 0
	onDerive = func() { derived++ }
	defer func() { onDerive = nil }()
	r := dpRand(7)
	udp := func(prio, in, a, b int) *Flow {
		return mustParse(t, fmt.Sprintf("priority=%d,udp,in_port=p%d,nw_dst=10.0.%d.%d,tp_dst=7999,actions=output:p%d", prio, in, a, b, 3+r.IntN(2)))
	}
	var twins []uint64 // flows sharing a key at another priority, deleted again soon
	flow := func(model map[uint64]*Flow) *Flow {
		if len(model) > 0 && r.IntN(5) < 2 { // an installed flow's key
			var f *Flow
			for _, f = range model {
				break
			}
			if f.Match.InPort != "" {
				var a, b int
				fmt.Sscanf(f.String()[strings.Index(f.String(), "nw_dst=10.0.")+len("nw_dst=10.0."):], "%d.%d", &a, &b)
				in := int(f.Match.InPort[1] - '0')
				if r.IntN(6) == 0 {
					return udp(int(f.Priority)+100, in, a, b) // another priority: the key is no longer one flow's
				}
				return udp(int(f.Priority), in, a, b) // the same match: replaces f
			}
		}
		if r.IntN(8) == 0 {
			return mustParse(t, fmt.Sprintf("priority=100,tcp,nw_src=10.1.0.%d,actions=drop", r.IntN(256))) // a group of its own
		}
		return udp(100, 1+r.IntN(2), r.IntN(16), r.IntN(256))
	}
	model := map[uint64]*Flow{}
	tb := NewTable()
	var c Change
	for range 600 {
		c.Add = append(c.Add, flow(nil))
	}
	for step := 0; step < 300; step++ {
		nt, err := tb.Apply(c, dpPorts)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		gone := map[uint64]bool{}
		for _, id := range c.Delete {
			gone[id] = true
		}
		applyToModel(model, c, tb.NextID(), gone)
		tb = nt
		want := checkModel(t, step, tb, model, r)

		// The next change: a few adds, a few deletes, and the twins of
		// the steps before go.
		c = Change{}
		for n := r.IntN(5); n > 0; n-- {
			c.Add = append(c.Add, flow(model))
		}
		for n := r.IntN(4); n > 0 && len(want) > 0; n-- {
			id := want[r.IntN(len(want))]
			if !slices.Contains(c.Delete, id) {
				c.Delete = append(c.Delete, id)
			}
		}
		for _, id := range twins {
			if model[id] != nil && !slices.Contains(c.Delete, id) {
				c.Delete = append(c.Delete, id)
			}
		}
		twins = twins[:0]
		for id, f := range model {
			if f.Priority > 100 {
				twins = append(twins, id)
			}
		}
		if len(c.Add)+len(c.Delete) == 0 {
			c.Add = append(c.Add, flow(model))
		}
	}
	if derived < 100 {
		t.Fatalf("derive took %d of 300 changes", derived)
	}
	t.Logf("derive took %d of 300 changes", derived)
}

// applyToModel applies c, made to a table whose NextID was next, to model
// the way Apply documents it: the flows in gone go (c.Delete's, and those
// of groups it deletes), then each add comes, with the next ID (or its own
// with KeepIDs), replacing a flow of the same match.
func applyToModel(model map[uint64]*Flow, c Change, next uint64, gone map[uint64]bool) {
	for id := range gone {
		delete(model, id)
	}
	for i, f := range c.Add {
		fc := *f
		fc.ID = next + uint64(i)
		if c.KeepIDs {
			fc.ID = f.ID
		}
		for id, o := range model {
			if sameMatch(o, &fc) && o.Match.Mask == fc.Match.Mask {
				delete(model, id)
			}
		}
		model[fc.ID] = &fc
	}
}

// checkModel checks tb against model: its flows, each subtable of table 0
// against what newSubtable builds from its flows (counts, maxRank, the
// slots taken and in the filter, what each flow's key finds and whether
// it wins), the steering rules' shape, and lookups and steering of keys
// drawn by r against the linear-scan references. It returns the model's
// IDs, sorted.
func checkModel(t *testing.T, step int, tb *Table, model map[uint64]*Flow, r *rand.Rand) []uint64 {
	t.Helper()
	var want []uint64
	for id := range model {
		want = append(want, id)
	}
	slices.Sort(want)
	if got := ids(tb.flows); !slices.Equal(got, want) {
		t.Fatalf("step %d: flows %v, model %v", step, got, want)
	}
	for _, s := range tb.tables[0].subs {
		fresh := newSubtable(s.mask, s.flows)
		if s.nkeys != fresh.nkeys || s.nlive != fresh.nlive || s.slots.n < 2*s.nlive {
			t.Fatalf("step %d: subtable keys %d live %d slots %d, built afresh %d %d", step, s.nkeys, s.nlive, s.slots.n, fresh.nkeys, fresh.nlive)
		}
		if s.maxRank != fresh.maxRank || fresh.collide && !s.collide {
			t.Fatalf("step %d: maxRank %x collide %v, afresh %x %v", step, s.maxRank, s.collide, fresh.maxRank, fresh.collide)
		}
		n := 0
		for _, sl := range s.slots.all() {
			if sl.e != nil {
				n++
				if !filterHas(s.filter, s.fmask, sl.h) {
					t.Fatalf("step %d: flow %d's key not in the filter", step, sl.e.Flow.ID)
				}
			}
		}
		if n != s.nkeys {
			t.Fatalf("step %d: %d slots taken, nkeys %d", step, n, s.nkeys)
		}
		for _, e := range s.flows {
			if got, want := s.find(&e.mkey), fresh.find(&e.mkey); got != want {
				t.Fatalf("step %d: flow %d's key finds %v, afresh %v", step, e.Flow.ID, flowID(got), flowID(want))
			}
			if e.live && s.wins(e) != fresh.wins(e) {
				t.Fatalf("step %d: flow %d wins %v, afresh %v", step, e.Flow.ID, s.wins(e), fresh.wins(e))
			}
		}
	}
	st, err := tb.Steering(nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSteeringShape(t, tb, st)
	for _, k := range keysFor(&keyGen{rnd: r}, tb.Entries(), 200) {
		ref := refLookup(model, dpPorts, &k)
		e := tb.Lookup(&k)
		if (ref == nil) != (e == nil) || ref != nil && e.Flow.ID != ref.ID {
			t.Fatalf("step %d key %x: classifier %v, reference %v", step, k, flowID(e), ref)
		}
		rule, ok := refSteer(st, &k)
		if ok != (e != nil) || ok && rule.Flow != e.Flow.ID {
			t.Fatalf("step %d key %x: steering %+v (%v), flow %v", step, k, rule, ok, flowID(e))
		}
	}
	return want
}
