package flowtable

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
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
