// Package radix sorts large lists by a 64-bit key without comparisons.
//
// A bulk install orders or groups hundreds of thousands of items by a key
// (a flow's rank, the hash of its match): a comparison sort of 160k items
// compares each about 17 times, mostly through pointers that miss the
// cache, where a radix sort makes one pass per key byte over a flat list,
// and skips the bytes in which all keys agree (the flows of one push share
// a priority and the high bytes of their sequence numbers).
//
// It is a leaf, importing only the standard library (a deps test keeps it
// so): flowtable, which imports nothing else of ours but steer, uses it,
// and so does datapath.
package radix

// Item is a key and the index of what it is the key of.
type Item struct {
	Key   uint64
	Index int
}

// Sort sorts items by Key, ascending; items with equal keys keep their
// order (it is stable). It returns the sorted list, which is items or a
// list of the same length it allocated.
func Sort(items []Item) []Item {
	if len(items) < 2 {
		return items
	}
	and, or := ^uint64(0), uint64(0)
	sorted := true
	for i, it := range items {
		and &= it.Key
		or |= it.Key
		sorted = sorted && (i == 0 || items[i-1].Key <= it.Key)
	}
	if sorted {
		return items // (a sync's flows mostly come by ID already)
	}
	differ := and ^ or
	a, b := items, []Item(nil)
	for shift := 0; shift < 64; shift += 8 {
		if differ>>shift&0xff == 0 {
			continue // every key has the same byte here
		}
		if b == nil {
			b = make([]Item, len(items))
		}
		var at [256]int
		for _, it := range a {
			at[it.Key>>shift&0xff]++
		}
		n := 0
		for d, c := range at {
			at[d] = n
			n += c
		}
		for _, it := range a {
			d := it.Key >> shift & 0xff
			b[at[d]] = it
			at[d]++
		}
		a, b = b, a
	}
	return a
}
