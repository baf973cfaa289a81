package radix

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortMatchesStableSort checks Sort against slices.SortStableFunc on
// keys that differ in every byte, in some bytes only, and not at all, with
// many equal keys (stability), and on keys in order already.
func TestSortMatchesStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := map[string]func() uint64{
		"random":     r.Uint64,
		"low-bytes":  func() uint64 { return 0xabcd_0000_0000_0000 | r.Uint64N(1<<20) },
		"one-byte":   func() uint64 { return 0x1100_0000_0000_0011 | r.Uint64N(256)<<24 },
		"few-values": func() uint64 { return r.Uint64N(4) << 40 },
		"all-equal":  func() uint64 { return 42 },
	}
	// Sorted already (returned as is), and sorted but for the last item.
	var next uint64
	keys["ascending"] = func() uint64 { next += r.Uint64N(3); return next }
	var k uint64
	keys["ascending-then-less"] = func() uint64 {
		k++
		if k%256 == 0 {
			return 0
		}
		return k
	}
	for name, key := range keys {
		for _, n := range []int{0, 1, 2, 3, 255, 256, 10_000} {
			items := make([]Item, n)
			for i := range items {
				items[i] = Item{Key: key(), Index: i}
			}
			want := slices.Clone(items)
			slices.SortStableFunc(want, func(a, b Item) int { return cmp.Compare(a.Key, b.Key) })
			if got := Sort(items); !slices.Equal(got, want) {
				t.Errorf("%s, %d items: not sorted stably by key", name, n)
			}
		}
	}
}
