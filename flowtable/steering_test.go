package flowtable

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func TestSteeringCompile(t *testing.T) {
	ports := map[string]uint32{"p1": 1, "p2": 2, "p3": 3}
	tcp80 := dpMatch().dlType(0x0800).nwProto(6).tpDst(80).get()
	tb := dpApply(t, NewTable(), Change{Add: []*Flow{
		dpFlow(100, tcp80, dpOut("p2")), // 1 forward
		dpFlow(50, tcp80),               // 2 drop, shadowed by 1: no rule
		dpFlow(100, dpMatch().dlType(0x0800).nwProto(6).tpDst(22).get()),                                    // 3 drop, same mask as 1
		dpFlow(10, dpMatch().dlType(0x0806).get(), Action{Type: ActKernel}),                                 // 4 pass
		{Priority: 200, Match: dpMatch().dlType(0x0800).inPort("p3").get(), Actions: []Action{dpOut("p1")}}, // 5 forward, in_port
	}}, dpPortMap(ports))
	st, err := tb.Steering(nil)
	if err != nil {
		t.Fatal(err)
	}
	inPortMask := dpMatch().dlType(0x0800).get().Mask
	inPortMask.SetInPort(0xffffffff)
	wantMasks := []steer.Mask{
		{ID: 0, Mask: inPortMask, MaxRank: steer.MakeRank(200, 5)},
		{ID: 1, Mask: tcp80.Mask, MaxRank: steer.MakeRank(100, 1)},
		{ID: 2, Mask: dpMatch().dlType(0x0806).get().Mask, MaxRank: steer.MakeRank(10, 4)},
	}
	if !slices.Equal(st.Masks, wantMasks) {
		t.Fatalf("masks\n got %+v\nwant %+v", st.Masks, wantMasks)
	}
	k5 := dpMatch().dlType(0x0800).key(3)
	wantRules := []steer.Rule{
		{MaskID: 0, Key: k5, Rank: steer.MakeRank(200, 5), Verdict: steer.VerdictForward, Flow: 5},
		{MaskID: 1, Key: tcp80.Key, Rank: steer.MakeRank(100, 1), Verdict: steer.VerdictForward, Flow: 1},
		{MaskID: 1, Key: dpMatch().dlType(0x0800).nwProto(6).tpDst(22).key(0), Rank: steer.MakeRank(100, 3), Verdict: steer.VerdictDrop, Flow: 3},
		{MaskID: 2, Key: dpMatch().dlType(0x0806).key(0), Rank: steer.MakeRank(10, 4), Verdict: steer.VerdictPass, Flow: 4},
	}
	sortRules(st.Rules)
	sortRules(wantRules)
	if !slices.Equal(st.Rules, wantRules) {
		t.Fatalf("rules\n got %+v\nwant %+v", st.Rules, wantRules)
	}

	// p3 goes: flow 5 leaves steering, its mask too; the others keep their
	// IDs.
	delete(ports, "p3")
	tb2 := tb.Recompile(dpPortMap(ports))
	st2, err := tb2.Steering(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(st2.Masks) != 2 || st2.Masks[0].ID != 1 || st2.Masks[1].ID != 2 || len(st2.Rules) != 3 {
		t.Fatalf("after p3 gone: %+v, %d rules", st2.Masks, len(st2.Rules))
	}
	// A new mask takes an ID never used in prev (3), not the one just freed (0).
	tb3 := dpApply(t, tb2, Change{Add: []*Flow{dpFlow(1, dpMatch().nwProto(17).get(), dpOut("p1"))}}, dpPortMap(ports))
	st3, _ := tb3.Steering(st)
	var got []uint32
	for _, m := range st3.Masks {
		got = append(got, m.ID)
	}
	if !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Fatalf("mask ids %v", got)
	}
}

func sortRules(rs []steer.Rule) {
	slices.SortFunc(rs, func(a, b steer.Rule) int {
		if a.MaskID != b.MaskID {
			return int(a.MaskID) - int(b.MaskID)
		}
		return compareKeys(&a.Key, &b.Key)
	})
}

// TestSteeringMaskIDs: at full occupancy a freed ID is reused; IDs of
// masks that stay never move.
func TestSteeringMaskIDs(t *testing.T) {
	var fl []*Flow
	for i := 1; i <= steer.MaxMasks; i++ {
		fl = append(fl, dpFlow(uint16(i), dpMatch().nwDst(fmt.Sprintf("10.0.0.0/%d", i)).get(), dpOut("p1")))
	}
	t1 := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
	st1, err := t1.Steering(nil)
	if err != nil {
		t.Fatal(err)
	}
	idOf := func(st *steer.Table) map[Key]uint32 {
		m := map[Key]uint32{}
		for _, x := range st.Masks {
			m[x.Mask] = x.ID
		}
		return m
	}
	t2 := dpApply(t, t1, Change{Delete: []uint64{7}, Add: []*Flow{dpFlow(5, dpMatch().tpDst(1).get())}}, dpPorts)
	st2, err := t2.Steering(st1)
	if err != nil {
		t.Fatal(err)
	}
	ids1, ids2 := idOf(st1), idOf(st2)
	freed := ids1[t1.Get(7).Flow.Match.Mask]
	for m, id := range ids2 {
		if old, ok := ids1[m]; ok && old != id {
			t.Fatalf("mask moved from %d to %d", old, id)
		}
		if _, ok := ids1[m]; !ok && id != freed {
			t.Fatalf("new mask got %d, the free one is %d", id, freed)
		}
	}
}

func TestSteeringTooManyMasks(t *testing.T) {
	var fl []*Flow
	for i := 1; i <= steer.MaxMasks; i++ {
		fl = append(fl, dpFlow(1, dpMatch().nwSrc(fmt.Sprintf("10.0.0.0/%d", i)).get(), dpOut("p1")))
	}
	tb := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
	// Apply never builds such a table; build one by hand.
	bad := *tb
	extra := dpApply(t, NewTable(), Change{Add: []*Flow{dpFlow(1, dpMatch().tpDst(1).get(), dpOut("p1"))}}, dpPorts)
	bad.tables[0] = &classifier{subs: append(slices.Clone(tb.tables[0].subs), extra.tables[0].subs...)}
	if st, err := bad.Steering(nil); !errors.Is(err, ErrTooManyMasks) || st != nil {
		t.Fatalf("33 masks: %v", err)
	}
}

func TestDiffSteering(t *testing.T) {
	key := func(b byte) Key {
		var k Key
		k[steer.OffNwProto] = b
		return k
	}
	r := func(mask uint32, k byte, rank steer.Rank, v steer.Verdict) steer.Rule {
		return steer.Rule{MaskID: mask, Key: key(k), Rank: rank, Verdict: v}
	}
	const (
		pass = steer.VerdictPass
		red  = steer.VerdictRedirect
		drop = steer.VerdictDrop
	)
	old := &steer.Table{
		Masks: []steer.Mask{{ID: 0}, {ID: 1}},
		Rules: []steer.Rule{
			r(0, 1, 10, red),  // unchanged
			r(0, 2, 10, red),  // deleted
			r(0, 3, 10, red),  // redirect -> drop
			r(0, 4, 10, drop), // drop -> redirect
			r(0, 5, 10, pass), // pass -> drop
			r(0, 6, 10, red),  // rank only
			r(0, 7, 10, drop), // rank only, drop
			r(1, 1, 10, drop), // deleted (other mask, same key)
		},
	}
	new := &steer.Table{
		Masks: []steer.Mask{{ID: 1}, {ID: 2}},
		Rules: []steer.Rule{
			r(0, 1, 10, red),
			r(0, 3, 10, drop),
			r(0, 4, 10, red),
			r(0, 5, 10, drop),
			r(0, 6, 11, red),
			r(0, 7, 9, drop),
			r(2, 1, 5, drop), // new drop
			r(2, 2, 5, red),  // new redirect
			r(2, 3, 5, pass), // new pass
		},
	}
	d := DiffSteering(old, new)
	// The same with every rule's hash colliding.
	ruleHasher = func(*steer.Rule) uint64 { return 7 }
	dc := DiffSteering(old, new)
	ruleHasher = ruleHash
	want := SteeringDiff{
		Delete:   []steer.Rule{r(0, 3, 10, red), r(0, 2, 10, red), r(1, 1, 10, drop)},
		PutEarly: []steer.Rule{r(0, 3, 10, drop), r(0, 5, 10, drop), r(2, 1, 5, drop), r(2, 3, 5, pass)},
		PutLate:  []steer.Rule{r(0, 4, 10, red), r(0, 6, 11, red), r(0, 7, 9, drop), r(2, 2, 5, red)},
		Masks:    new.Masks,
		// Drop and pass rules are deleted (1/1) or rewritten (4, 5, 7).
		ResetsCounts: true,
	}
	for _, l := range [][]steer.Rule{d.Delete, d.PutEarly, d.PutLate, dc.Delete, dc.PutEarly, dc.PutLate, want.Delete, want.PutEarly, want.PutLate} {
		sortRulesFull(l)
	}
	if fmt.Sprint(d) != fmt.Sprint(want) {
		t.Fatalf("diff\n got %+v\nwant %+v", d, want)
	}
	if fmt.Sprint(dc) != fmt.Sprint(want) {
		t.Fatalf("diff with colliding hashes\n got %+v\nwant %+v", dc, want)
	}

	// From nothing, and to nothing.
	d = DiffSteering(nil, new)
	if len(d.Delete) != 0 || len(d.PutEarly)+len(d.PutLate) != len(new.Rules) {
		t.Fatalf("from nil: %+v", d)
	}
	d = DiffSteering(old, &steer.Table{})
	if len(d.Delete) != len(old.Rules) || len(d.PutEarly)+len(d.PutLate)+len(d.Masks) != 0 {
		t.Fatalf("to empty: %+v", d)
	}
}

func sortRulesFull(rs []steer.Rule) {
	slices.SortFunc(rs, func(a, b steer.Rule) int {
		if a.MaskID != b.MaskID {
			return int(a.MaskID) - int(b.MaskID)
		}
		if c := compareKeys(&a.Key, &b.Key); c != 0 {
			return c
		}
		return int(a.Verdict) - int(b.Verdict)
	})
}

// TestSteeringSyncInvariant replays random table changes through the
// documented sync order and checks at every intermediate state that each
// key the kernel redirects finds a flow in the userspace snapshot published
// at that moment (as far as ranks go: the masks' visit order is not
// consulted by the linear-scan reference).
func TestSteeringSyncInvariant(t *testing.T) {
	r := dpRand(77)
	g := &keyGen{rnd: r, small: true}
	masks := maskPool(r, 10)
	tb := NewTable()
	var st *steer.Table
	kernel := map[ruleID]steer.Rule{} // the BPF rules map
	violations := 0
	check := func(userspace *Table, keys []Key) {
		cur := steer.Table{Masks: st.Masks} // mask contents by ID
		for _, rule := range kernel {
			cur.Rules = append(cur.Rules, rule)
		}
		for i := range keys {
			rule, ok := refSteer(&cur, &keys[i])
			if ok && rule.Verdict == steer.VerdictRedirect && userspace.Lookup(&keys[i]) == nil {
				violations++
			}
		}
	}
	for step := 0; step < 60; step++ {
		var c Change
		for _, e := range tb.flows {
			if r.IntN(4) == 0 {
				c.Delete = append(c.Delete, e.Flow.ID)
			}
		}
		for n := r.IntN(20); n > 0; n-- {
			c.Add = append(c.Add, randomFlow(g, masks, false))
		}
		nt := dpApply(t, tb, c, dpPorts)
		nst, err := nt.Steering(st)
		if err != nil {
			t.Fatal(err)
		}
		keys := keysFor(g, append(tb.Entries(), nt.Entries()...), 200)
		d := DiffSteering(st, nst)
		prevMasks := st
		if prevMasks == nil {
			prevMasks = &steer.Table{}
		}
		// Masks of both old and new are known to the kernel by ID while
		// syncing (new IDs avoid old ones when they can).
		all := &steer.Table{Masks: append(append([]steer.Mask(nil), prevMasks.Masks...), nst.Masks...)}
		st = all
		for _, rule := range d.Delete {
			delete(kernel, ruleID{rule.MaskID, rule.Key})
		}
		check(tb, keys)
		for _, rule := range d.PutEarly {
			kernel[ruleID{rule.MaskID, rule.Key}] = rule
		}
		check(tb, keys)
		tb = nt // publish
		check(tb, keys)
		for _, rule := range d.PutLate {
			kernel[ruleID{rule.MaskID, rule.Key}] = rule
		}
		check(tb, keys)
		st = nst
		check(tb, keys)
	}
	if violations != 0 {
		t.Fatalf("%d keys redirected by the kernel found no userspace flow", violations)
	}
}

// ResetsCounts says whether a diff deletes or rewrites a rule whose hits
// the XDP program counts (drop, kernel): only then must they be read first.
func TestDiffResetsCounts(t *testing.T) {
	rule := func(key byte, v steer.Verdict, rank steer.Rank) steer.Rule {
		r := steer.Rule{MaskID: 1, Verdict: v, Rank: rank}
		r.Key[4] = key
		return r
	}
	drop, redirect, pass := steer.VerdictDrop, steer.VerdictRedirect, steer.VerdictPass
	for _, tc := range []struct {
		name     string
		old, new []steer.Rule
		want     bool
	}{
		{"add redirect", nil, []steer.Rule{rule(1, redirect, 5)}, false},
		{"add drop", nil, []steer.Rule{rule(1, drop, 5)}, false},
		{"unchanged drop", []steer.Rule{rule(1, drop, 5)}, []steer.Rule{rule(1, drop, 5)}, false},
		{"delete redirect", []steer.Rule{rule(1, redirect, 5)}, nil, false},
		{"redirect becomes drop", []steer.Rule{rule(1, redirect, 5)}, []steer.Rule{rule(1, drop, 6)}, false},
		{"delete drop", []steer.Rule{rule(1, drop, 5), rule(2, redirect, 5)}, []steer.Rule{rule(2, redirect, 5)}, true},
		{"delete kernel", []steer.Rule{rule(1, pass, 5)}, nil, true},
		{"drop changes rank", []steer.Rule{rule(1, drop, 5)}, []steer.Rule{rule(1, drop, 6)}, true},
		{"drop becomes redirect", []steer.Rule{rule(1, drop, 5)}, []steer.Rule{rule(1, redirect, 6)}, true},
	} {
		d := DiffSteering(&steer.Table{Rules: tc.old}, &steer.Table{Rules: tc.new})
		if d.ResetsCounts != tc.want {
			t.Errorf("%s: ResetsCounts %v, want %v", tc.name, d.ResetsCounts, tc.want)
		}
	}
}

// TestDiffSteeringShifted checks DiffSteering on old and new rule lists
// that share most rules in order, with runs deleted, inserted, changed and
// moved anywhere (what the positional pairing and its look-ahead see),
// against a reference that pairs rules by (mask ID, key) alone.
func TestDiffSteeringShifted(t *testing.T) {
	r := dpRand(5)
	rule := func(n int) steer.Rule {
		x := steer.Rule{MaskID: uint32(n % 3), Verdict: []steer.Verdict{steer.VerdictRedirect, steer.VerdictDrop, steer.VerdictPass, steer.VerdictForward}[r.IntN(4)], Rank: steer.Rank(r.IntN(4))}
		binary.LittleEndian.PutUint64(x.Key[8:], uint64(n))
		return x
	}
	sorted := func(rs []steer.Rule) []steer.Rule {
		rs = slices.Clone(rs)
		slices.SortFunc(rs, func(a, b steer.Rule) int {
			return cmp.Or(cmp.Compare(a.MaskID, b.MaskID), bytes.Compare(a.Key[:], b.Key[:]))
		})
		return rs
	}
	for round := range 300 {
		n := r.IntN(400)
		var old []steer.Rule
		for i := range n {
			old = append(old, rule(i))
		}
		var nw []steer.Rule
		next := n
		for i := 0; i < len(old); i++ {
			switch r.IntN(40) {
			case 0: // a run deleted
				i += r.IntN(12)
			case 1: // new ones inserted
				for k := r.IntN(12); k > 0; k-- {
					nw = append(nw, rule(next))
					next++
				}
				nw = append(nw, old[i])
			case 2: // changed in place
				c := old[i]
				c.Rank++
				c.Verdict = []steer.Verdict{steer.VerdictRedirect, steer.VerdictDrop, steer.VerdictPass}[r.IntN(3)]
				nw = append(nw, c)
			default:
				nw = append(nw, old[i])
			}
		}
		if len(nw) > 2 && r.IntN(3) == 0 { // one moved far
			a, b := r.IntN(len(nw)), r.IntN(len(nw))
			nw[a], nw[b] = nw[b], nw[a]
		}
		got := DiffSteering(&steer.Table{Rules: old}, &steer.Table{Rules: nw})

		// The reference: every pair found by (mask ID, key).
		var want SteeringDiff
		byKey := map[ruleID]steer.Rule{}
		for _, o := range old {
			byKey[ruleID{o.MaskID, o.Key}] = o
		}
		for _, x := range nw {
			o, ok := byKey[ruleID{x.MaskID, x.Key}]
			if !ok {
				want.put(x)
				continue
			}
			delete(byKey, ruleID{x.MaskID, x.Key})
			if !o.Verdict.ToUser() && o != x {
				want.ResetsCounts = true
			}
			switch {
			case o == x:
			case o.Verdict == x.Verdict && !x.Verdict.ToUser() && o.Arg == x.Arg:
				want.PutLate = append(want.PutLate, x)
			case o.Verdict.ToUser() && !x.Verdict.ToUser():
				want.Delete = append(want.Delete, o)
				want.PutEarly = append(want.PutEarly, x)
			default:
				want.put(x)
			}
		}
		for _, o := range byKey {
			want.Delete = append(want.Delete, o)
			if !o.Verdict.ToUser() {
				want.ResetsCounts = true
			}
		}
		for _, c := range []struct {
			name      string
			got, want []steer.Rule
		}{{"Delete", got.Delete, want.Delete}, {"PutEarly", got.PutEarly, want.PutEarly}, {"PutLate", got.PutLate, want.PutLate}} {
			if !slices.Equal(sorted(c.got), sorted(c.want)) {
				t.Fatalf("round %d (%d -> %d rules): %s %d rules, want %d", round, len(old), len(nw), c.name, len(c.got), len(c.want))
			}
		}
		if got.ResetsCounts != want.ResetsCounts {
			t.Fatalf("round %d: ResetsCounts %v, want %v", round, got.ResetsCounts, want.ResetsCounts)
		}
	}
}
