package flowtable

import (
	"encoding/binary"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Random tables and keys for the differential tests and the benchmarks.

// keyGen draws packet keys. With small set, every field takes one of a few
// values, so flows overlap and priorities compete; otherwise fields are
// random, so flows are distinct.
type keyGen struct {
	rnd   *rand.Rand
	small bool
}

func (g *keyGen) pick16(vals ...uint16) uint16 { return vals[g.rnd.IntN(len(vals))] }

func (g *keyGen) base(inPort uint32) Key {
	var k Key
	r := g.rnd
	fill := func(off, n int, small byte) {
		for i := 0; i < n; i++ {
			if g.small {
				k[off+i] = byte(r.IntN(2)) * small
			} else {
				k[off+i] = byte(r.Uint32())
			}
		}
	}
	fill(steer.OffDlDst, 6, 1)
	fill(steer.OffDlSrc, 6, 1)
	binary.BigEndian.PutUint16(k[steer.OffDlType:], g.pick16(0x0800, 0x86dd, 0x0806))
	binary.BigEndian.PutUint16(k[steer.OffVlanTCI:], g.pick16(0, 0x1005, 0x3006, 0x7fff))
	k[steer.OffNwProto] = byte(g.pick16(1, 6, 17))
	k[steer.OffNwTos] = byte(g.pick16(0, 0xb8, 0x03))
	k[steer.OffNwFrag] = byte(g.pick16(0, 0, 1, 3))
	fill(steer.OffNwSrc, 16, 0x81)
	fill(steer.OffNwDst, 16, 0x42)
	if g.small {
		binary.BigEndian.PutUint16(k[steer.OffTpSrc:], g.pick16(0, 53, 80, 443))
		binary.BigEndian.PutUint16(k[steer.OffTpDst:], g.pick16(0, 53, 80, 0x1f90))
	} else {
		fill(steer.OffTpSrc, 4, 0)
	}
	k.SetInPort(inPort)
	return k
}

// fieldMask is one field's mask choices.
var fieldMasks = []struct {
	off   int
	masks [][]byte
}{
	{steer.OffDlDst, [][]byte{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0, 0, 0, 0, 0}}},
	{steer.OffDlSrc, [][]byte{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}},
	{steer.OffDlType, [][]byte{{0xff, 0xff}}},
	{steer.OffVlanTCI, [][]byte{{0xff, 0xff}, {0x1f, 0xff}, {0x10, 0x00}, {0xe0, 0x00}}},
	{steer.OffNwProto, [][]byte{{0xff}}},
	{steer.OffNwTos, [][]byte{{0xfc}}},
	{steer.OffNwFrag, [][]byte{{0x01}, {0x03}}},
	{steer.OffNwSrc, [][]byte{{0xff}, {0xff, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xf0}, bytesOf(16, 0xff)}},
	{steer.OffNwDst, [][]byte{{0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff}, {0x80}, bytesOf(16, 0xff)}},
	{steer.OffTpSrc, [][]byte{{0xff, 0xff}, {0xff, 0x00}}},
	{steer.OffTpDst, [][]byte{{0xff, 0xff}, {0xff, 0xf0}}},
}

func bytesOf(n int, b byte) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

// maskPool returns n distinct masks of 1 to 4 fields each.
func maskPool(r *rand.Rand, n int) []Key {
	seen := map[Key]bool{}
	var pool []Key
	for len(pool) < n {
		var m Key
		for f := 1 + r.IntN(4); f > 0; f-- {
			fm := fieldMasks[r.IntN(len(fieldMasks))]
			copy(m[fm.off:], fm.masks[r.IntN(len(fm.masks))])
		}
		if !seen[m] {
			seen[m] = true
			pool = append(pool, m)
		}
	}
	return pool
}

var randPortNames = []string{"", "", "p1", "p2", "p3"}

// randomFlow returns a flow under one of masks with a key drawn by g.
func randomFlow(g *keyGen, masks []Key, inPorts bool) *Flow {
	r := g.rnd
	f := &Flow{Priority: uint16(r.IntN(8)) * 100}
	if !g.small {
		f.Priority = uint16(r.Uint32())
	}
	m := masks[r.IntN(len(masks))]
	k := g.base(0)
	k.And(&m, &f.Match.Key)
	f.Match.Mask = m
	if inPorts {
		f.Match.InPort = randPortNames[r.IntN(len(randPortNames))]
	}
	switch r.IntN(6) {
	case 0:
		// drop
	case 1:
		f.Actions = []Action{{Type: ActKernel}}
	default:
		f.Actions = []Action{{Type: ActSetTpDst, Value: 7}, dpOut(randPortNames[2+r.IntN(3)])}
	}
	return f
}

// randomTable builds a table of n flows over nmasks masks (no in_port) in
// one Change.
func randomTable(tb testing.TB, r *rand.Rand, n, nmasks int) *Table {
	tb.Helper()
	g := &keyGen{rnd: r}
	masks := maskPool(r, nmasks)
	fl := make([]*Flow, n)
	for i := range fl {
		fl[i] = randomFlow(g, masks, false)
	}
	return dpApply(tb, NewTable(), Change{Add: fl}, dpPorts)
}

// randomKeys returns n keys, mostly built from a flow's key with the bits
// outside its mask random, so most hit some flow.
func randomKeys(r *rand.Rand, t *Table, n int) []Key {
	return keysFor(&keyGen{rnd: r}, t.Entries(), n)
}

func keysFor(g *keyGen, es []*Entry, n int) []Key {
	keys := make([]Key, n)
	for i := range keys {
		k := g.base(uint32(1 + g.rnd.IntN(4)))
		if len(es) > 0 && g.rnd.IntN(8) != 0 {
			e := es[g.rnd.IntN(len(es))]
			m := effectiveMask(&e.Flow.Match)
			for j := range k {
				k[j] = k[j]&^m[j] | e.mkey[j]&m[j]
			}
			if e.InPort == 0 && g.rnd.IntN(2) == 0 {
				k.SetInPort(uint32(1 + g.rnd.IntN(4)))
			}
		}
		keys[i] = k
	}
	return keys
}

// refLookup is the reference classifier: a linear scan over the model's
// flows for the highest rank among those that match.
func refLookup(model map[uint64]*Flow, ports PortResolver, k *Key) *Flow {
	var best *Flow
	var bestRank steer.Rank
	for _, f := range model {
		if f.Match.InPort != "" {
			no, ok := ports(f.Match.InPort)
			if !ok || no != k.InPort() {
				continue
			}
		}
		var masked Key
		k.And(&f.Match.Mask, &masked)
		masked.SetInPort(0)
		if masked != f.Match.Key {
			continue
		}
		if r := steer.MakeRank(f.Priority, uint32(f.ID)); best == nil || r > bestRank {
			best, bestRank = f, r
		}
	}
	return best
}

// refSteer is the reference for the XDP classifier: a linear scan over the
// steering rules for the highest-ranked one that matches. ok is false when
// no rule matches (the XDP program passes the packet).
func refSteer(st *steer.Table, k *Key) (steer.Rule, bool) {
	var masks [steer.MaxMasks]Key
	for _, m := range st.Masks {
		masks[m.ID] = m.Mask
	}
	var best steer.Rule
	found := false
	for _, r := range st.Rules {
		var masked Key
		k.And(&masks[r.MaskID], &masked)
		if masked == r.Key && (!found || r.Rank > best.Rank) {
			best, found = r, true
		}
	}
	return best, found
}

// TestClassifierDifferential runs random Apply sequences (adds with
// overlapping matches and tied priorities, deletes, replaces, port changes)
// and checks after each that the classifier, with and without the cache,
// and the steering table all agree with the linear-scan references.
func TestClassifierDifferential(t *testing.T) {
	testClassifierDifferential(t, 12)
}

// TestClassifierDifferentialCollisions: the same with every flow's match
// hash colliding, so Apply finds the flows an add replaces the slow way.
func TestClassifierDifferentialCollisions(t *testing.T) {
	matchHasher = func(*Flow) uint64 { return 42 }
	defer func() { matchHasher = matchHash }()
	testClassifierDifferential(t, 3)
}

// TestClassifierDifferentialHashCollisions: the same with group hashes cut
// to six bits, so distinct keys of a group share hashes (the group compares
// keys as it probes) and keys not in a group hash like keys that are
// (LookupBatch must catch the false hit when it checks its answer).
func TestClassifierDifferentialHashCollisions(t *testing.T) {
	hashKeep = 0xe000000000000007
	defer func() { hashKeep = ^uint64(0) }()
	testClassifierDifferential(t, 4)
}

// TestLookupBatchFalseHit: a key whose masked value is not in a group but
// whose hash is must not match the group's flow.
func TestLookupBatchFalseHit(t *testing.T) {
	hashKeep = 0
	defer func() { hashKeep = ^uint64(0) }()
	tb := dpApply(t, NewTable(), Change{Add: []*Flow{
		{Priority: 10, Match: dpMatch().dlType(0x0800).nwDst("10.0.0.1/32").get(), Actions: []Action{dpOut("p1")}},
		{Priority: 5, Match: dpMatch().dlType(0x0800).get(), Actions: []Action{dpOut("p2")}},
	}}, dpPorts)
	if tb.tables[0].visits[0].collide || tb.tables[0].visits[1].collide {
		t.Fatal("one key per group: no build-time collision expected")
	}
	keys := []Key{
		dpMatch().dlType(0x0800).nwDst("10.0.0.2/32").key(1),
		dpMatch().dlType(0x0800).nwDst("10.0.0.1/32").key(1),
		dpMatch().dlType(0x86dd).key(1),
	}
	var out [3]*Entry
	var s BatchScratch
	tb.LookupBatch(keys, 7, out[:], &s)
	for i := range keys {
		if want := tb.Lookup(&keys[i]); out[i] != want {
			t.Errorf("key %d: batch %v, Lookup %v", i, flowID(out[i]), flowID(want))
		}
	}
	if out[0] == nil || out[0].Flow.Priority != 5 || out[2] != nil {
		t.Errorf("got %v %v %v", flowID(out[0]), flowID(out[1]), flowID(out[2]))
	}
}

func testClassifierDifferential(t *testing.T, rounds int) {
	steps := 25
	if testing.Short() {
		rounds = min(rounds, 4)
	}
	for round := 0; round < rounds; round++ {
		r := dpRand(uint64(100 + round))
		g := &keyGen{rnd: r, small: true}
		masks := maskPool(r, 4+r.IntN(13)) // with in_port variants at most 32
		portNums := map[string]uint32{"p1": 1, "p2": 2, "p3": 3, "p4": 4, "p5": 5}
		ports := dpPortMap(portNums)
		model := map[uint64]*Flow{}
		tb := NewTable()
		cache := NewCache(256) // keys collide and evict, and survive snapshots
		bcache := NewCache(256)
		var scratch BatchScratch
		var st *steer.Table
		var prevKeys []Key
		for step := 0; step < steps; step++ {
			// A random change, applied to the model the way the table
			// documents it.
			var c Change
			c.Replace = r.IntN(15) == 0
			for id := range model {
				if r.IntN(6) == 0 {
					c.Delete = append(c.Delete, id)
				}
			}
			for n := r.IntN(30); n > 0; n-- {
				f := randomFlow(g, masks, true)
				if _, ok := ports(f.Match.InPort); !ok && f.Match.InPort != "" {
					f.Match.InPort = "p1"
				}
				if len(f.Actions) == 2 {
					if _, ok := ports(f.Actions[1].Port); !ok {
						f.Actions[1].Port = "p3"
					}
				}
				c.Add = append(c.Add, f)
			}
			c.Owned = r.IntN(2) == 0 // the table keeps the flows given, or copies them
			nt, err := tb.Apply(c, ports)
			if err != nil {
				t.Fatalf("round %d step %d: %v", round, step, err)
			}
			// A replace keeps the ID of a flow it gives as installed.
			keepable := map[uint64]*Flow{}
			if c.Replace {
				keepable = maps.Clone(model)
				clear(model)
			}
			for _, id := range c.Delete {
				delete(model, id)
				delete(keepable, id)
			}
			// The last flow given that is the same as an installed one
			// keeps its ID (an earlier one, the same, it replaces).
			last := map[uint64]int{}
			for i, f := range c.Add {
				for id, o := range keepable {
					if sameFlow(o, f) {
						last[id] = i
					}
				}
			}
			for i, f := range c.Add {
				fc := *f
				fc.ID = tb.NextID() + uint64(i)
				for id, j := range last {
					if j == i {
						fc.ID = id
					}
				}
				for id, o := range model {
					if o.Priority == fc.Priority && o.Match == fc.Match {
						delete(model, id)
					}
				}
				model[fc.ID] = &fc
			}
			tb = nt
			if r.IntN(5) == 0 { // a port change
				if _, ok := portNums["p2"]; ok {
					delete(portNums, "p2")
				} else {
					portNums["p2"] = uint32(2 + 10*r.IntN(2))
				}
				tb = tb.Recompile(ports)
			}

			// The table holds the model's flows.
			var want []uint64
			for id := range model {
				want = append(want, id)
			}
			slices.Sort(want)
			got := ids(tb.flows)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d step %d: flows %v, model %v", round, step, got, want)
			}
			if tb.NumMasks() > steer.MaxMasks {
				t.Fatalf("%d masks", tb.NumMasks())
			}

			st, err = tb.Steering(st)
			if err != nil {
				t.Fatal(err)
			}
			checkSteeringShape(t, tb, st)

			// Keys of the previous step first: cached under the old snapshot.
			keys := append(prevKeys, keysFor(g, tb.Entries(), 300)...)
			keys = append(keys, keys...) // and again: answered by the cache
			prevKeys = keys[:300]
			for _, k := range keys {
				ref := refLookup(model, ports, &k)
				e := tb.Lookup(&k)
				ec := cache.Lookup(tb, &k).Entry()
				if (ref == nil) != (e == nil) || ref != nil && e.Flow.ID != ref.ID {
					t.Fatalf("round %d step %d key %x: classifier %v, reference %v", round, step, k, flowID(e), ref)
				}
				if ec != e {
					t.Fatalf("round %d step %d key %x: cache %v, classifier %v", round, step, k, flowID(ec), flowID(e))
				}
				rule, ok := refSteer(st, &k)
				switch {
				case e == nil && ok:
					t.Fatalf("key %x: steering rule %+v, no flow", k, rule)
				case e != nil && !ok:
					t.Fatalf("key %x: no steering rule, flow %d", k, e.Flow.ID)
				case e != nil && (rule.Verdict != e.Verdict() || rule.Rank != e.Rank || rule.Flow != e.Flow.ID):
					t.Fatalf("key %x: rule %+v, flow %d rank %#x verdict %v", k, rule, e.Flow.ID, e.Rank, e.Verdict())
				}
			}
			checkBatches(t, r, tb, bcache, &scratch, keys)
		}
	}
}

// checkBatches looks keys up in batches of random sizes, each key wanted or
// not at random, through Table.LookupBatch and Cache.LookupBatch, and
// checks both against Lookup, and that unwanted keys' results are left
// alone.
func checkBatches(t *testing.T, r *rand.Rand, tb *Table, c *Cache, s *BatchScratch, keys []Key) {
	t.Helper()
	untouched := &Entry{}
	var out [MaxBatch]*Entry
	var cout [MaxBatch]Result
	for len(keys) > 0 {
		n := min(len(keys), 1+r.IntN(MaxBatch))
		if r.IntN(4) == 0 {
			n = min(len(keys), MaxBatch)
		}
		batch := keys[:n]
		keys = keys[n:]
		want := r.Uint64()
		if r.IntN(3) == 0 {
			want = ^uint64(0)
		}
		for i := range out {
			out[i], cout[i] = untouched, Result{e: untouched}
		}
		tb.LookupBatch(batch, want, out[:], s)
		c.LookupBatch(tb, batch, want, cout[:])
		for i := range out {
			exp := untouched
			if i < n && want>>i&1 != 0 {
				exp = tb.Lookup(&batch[i])
			}
			if out[i] != exp || cout[i].Entry() != exp {
				t.Fatalf("batch of %d, key %d: classifier %v, cache %v, want %v", n, i, flowID(out[i]), flowID(cout[i].Entry()), flowID(exp))
			}
		}
	}
}

func flowID(e *Entry) any {
	if e == nil {
		return nil
	}
	return e.Flow.ID
}

// checkSteeringShape checks the structure of a steering table: distinct
// mask IDs in range, masks in MaxRank order, MaxRank the max of the rules,
// one rule per (mask, key), keys pre-masked.
func checkSteeringShape(t *testing.T, tb *Table, st *steer.Table) {
	t.Helper()
	if len(st.Masks) > steer.MaxMasks {
		t.Fatalf("%d masks", len(st.Masks))
	}
	byID := map[uint32]*steer.Mask{}
	maxRank := map[uint32]steer.Rank{}
	for i := range st.Masks {
		m := &st.Masks[i]
		if m.ID >= steer.MaxMasks || byID[m.ID] != nil {
			t.Fatalf("mask id %d reused or out of range", m.ID)
		}
		byID[m.ID] = m
		if i > 0 && st.Masks[i-1].MaxRank < m.MaxRank {
			t.Fatalf("masks out of order at %d", i)
		}
	}
	seen := map[ruleID]bool{}
	for _, r := range st.Rules {
		m := byID[r.MaskID]
		if m == nil {
			t.Fatalf("rule under unknown mask %d", r.MaskID)
		}
		var masked Key
		r.Key.And(&m.Mask, &masked)
		if masked != r.Key {
			t.Fatalf("rule key not masked")
		}
		id := ruleID{r.MaskID, r.Key}
		if seen[id] {
			t.Fatalf("two rules for one (mask, key)")
		}
		seen[id] = true
		maxRank[r.MaskID] = max(maxRank[r.MaskID], r.Rank)
	}
	for _, m := range st.Masks {
		if maxRank[m.ID] != m.MaxRank {
			t.Fatalf("mask %d MaxRank %#x, rules' max %#x", m.ID, m.MaxRank, maxRank[m.ID])
		}
	}
}

// TestLookupWordMaskPaths: Lookup shares the hash products of equal masked
// words between groups when a table has few distinct ones, and hashes each
// group on its own otherwise. Both paths agree with the reference.
func TestLookupWordMaskPaths(t *testing.T) {
	for _, many := range []bool{false, true} {
		r := dpRand(21)
		var fl []*Flow
		for i := 0; i < steer.MaxMasks; i++ {
			m := dpMatch().dlType(0x0800)
			if many { // 32 distinct masks of word 7 and of word 3
				m.setMasked(steer.OffTpDst, []byte{0, 0}, be16mask(i+1))
				m.nwSrc("0.0.0.0/" + itoa(i+1))
			} else { // 16 distinct masks of word 5, twice
				m.nwDst("0.0.0.0/" + itoa(i%16+1))
				if i >= 16 {
					m.nwProto(6)
				}
			}
			for j := 0; j < 20; j++ {
				f := &Flow{Priority: uint16(r.IntN(4)), Match: m.get(), Actions: []Action{dpOut("p1")}}
				k := (&keyGen{rnd: r, small: true}).base(0)
				k.And(&f.Match.Mask, &f.Match.Key)
				fl = append(fl, f)
			}
		}
		tb := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
		if shared := tb.tables[0].words != nil; shared == many {
			t.Fatalf("many=%v: shared products %v (%d words)", many, shared, len(tb.tables[0].words))
		}
		model := map[uint64]*Flow{}
		for _, e := range tb.flows {
			model[e.Flow.ID] = e.Flow
		}
		for _, k := range keysFor(&keyGen{rnd: r, small: true}, tb.Entries(), 2000) {
			ref, e := refLookup(model, dpPorts, &k), tb.Lookup(&k)
			if (ref == nil) != (e == nil) || ref != nil && ref.ID != e.Flow.ID {
				t.Fatalf("many=%v key %x: classifier %v, reference %v", many, k, flowID(e), ref)
			}
		}
		var scratch BatchScratch
		checkBatches(t, r, tb, NewCache(64), &scratch, keysFor(&keyGen{rnd: r, small: true}, tb.Entries(), 2000))
	}
}

func be16mask(bits int) []byte {
	m := ^uint16(0) << (16 - bits%17)
	return dpBE16(m)
}

func itoa(i int) string { return strconv.Itoa(i) }
