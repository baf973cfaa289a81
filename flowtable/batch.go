package flowtable

import (
	"encoding/binary"
	"math/bits"
	"sort"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// MaxBatch is the most keys one LookupBatch call takes: the bits of a
// uint64, which is how the batch tracks the keys still being looked up.
const MaxBatch = 64

// Batched lookups are how a poller should classify a burst of received
// frames. One key at a time, a lookup is a chain of dependent cache misses
// (filter word, slot, entry) per group, and the CPU waits for each. A batch
// goes group by group instead, like Open vSwitch's dpcls_lookup: it first
// hashes every key still pending and loads its filter word, then probes the
// slots of the keys the filter lets through. The loads of one pass do not
// depend on each other, so the CPU has many misses in flight at once, and the
// group's fields stay in registers across the keys.

// BatchScratch is working memory for Table.LookupBatch, reused from call to
// call so that lookups do not allocate. It belongs to one goroutine.
type BatchScratch struct {
	prod [MaxBatch][maxWordMasks]uint64 // per key: the products of t.words
	kw   [MaxBatch][8]uint64            // per key: its words (unshared path)
	h    [MaxBatch]uint64               // per key: its hash in the current group
	rank [MaxBatch]steer.Rank           // per key: its best hit's rank so far
	at   [MaxBatch]uint8                // per key: the visit of its best hit
	// done[j]: the keys whose best hit no flow of visit j or later beats.
	done   [steer.MaxMasks + 1]uint64
	doneAt [MaxBatch]uint8 // per key: where its bit is in done
}

// LookupBatch sets out[i] = t.lookup(&keys[i]) for every i < len(keys)
// whose bit is set in want, and leaves the other out[i] alone. keys and out
// hold at most MaxBatch entries, and out at least len(keys). Each key's
// in_port must be set. It does not allocate; s is the caller's, one per
// goroutine.
//
// Within a group a slot whose 64-bit hash equals the key's is taken as the
// key's without reading its Entry: unless the group was built with two keys
// of the same hash (then it compares keys as it goes), no other slot can be
// the key's. Only each key's final answer is compared with the key; if that
// one was a hash collision, the key is looked up again with Lookup. Every
// group skipped on the way had no flow above the rank in hand, so a verified
// answer is the right one.
func (t *Table) LookupBatch(keys []Key, want uint64, out []*Entry, s *BatchScratch) {
	t.tables[0].lookupBatch(keys, want, out, s)
}

// lookupBatch is LookupBatch in one table.
func (t *classifier) lookupBatch(keys []Key, want uint64, out []*Entry, s *BatchScratch) {
	want = batchWant(len(keys), want)
	out = out[:len(keys)]
	for m := want; m != 0; m &= m - 1 {
		out[bits.TrailingZeros64(m)] = nil
	}
	if want == 0 {
		return
	}
	le := binary.LittleEndian
	words := t.words
	shared := words != nil
	for m := want; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		k := &keys[i]
		if shared {
			p := &s.prod[i]
			for j, wm := range words {
				w := wm.idx & 7
				p[j&(maxWordMasks-1)] = (le.Uint64(k[w*8:]) & wm.mask) * hashMuls[w]
			}
		} else {
			for w := range s.kw[i] {
				s.kw[i][w] = le.Uint64(k[w*8:])
			}
		}
	}
	visits := t.visits
	if len(visits) > steer.MaxMasks { // Apply never builds one; s.done has no room
		for m := want; m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			out[i] = t.lookup(&keys[i])
		}
		return
	}
	pending := want
	var found uint64 // keys with a hit
	s.done = [steer.MaxMasks + 1]uint64{}
	for vi := range visits {
		v := &visits[vi]
		// Keys whose best hit no flow from here on can beat are done.
		if pending &^= s.done[vi]; pending == 0 {
			break
		}
		// Pass 1: hash the pending keys and keep those the filter lets
		// through, without branching on the filter.
		filter, fmask := v.filter, v.fmask
		var cand uint64
		if shared {
			w0, w1, w2, w3 := v.word[0]&(maxWordMasks-1), v.word[1]&(maxWordMasks-1), v.word[2]&(maxWordMasks-1), v.word[3]&(maxWordMasks-1)
			w4, w5, w6, w7 := v.word[4]&(maxWordMasks-1), v.word[5]&(maxWordMasks-1), v.word[6]&(maxWordMasks-1), v.word[7]&(maxWordMasks-1)
			if v.nw <= 4 { // the other terms are prod 0
				for m := pending; m != 0; m &= m - 1 {
					i := bits.TrailingZeros64(m)
					p := &s.prod[i]
					h := hashFinish(p[w0] + p[w1] + p[w2] + p[w3])
					s.h[i] = h
					cand |= filterBits(filter, fmask, h) << i
				}
			} else {
				for m := pending; m != 0; m &= m - 1 {
					i := bits.TrailingZeros64(m)
					p := &s.prod[i]
					h := hashFinish(p[w0] + p[w1] + p[w2] + p[w3] + p[w4] + p[w5] + p[w6] + p[w7])
					s.h[i] = h
					cand |= filterBits(filter, fmask, h) << i
				}
			}
		} else {
			for m := pending; m != 0; m &= m - 1 {
				i := bits.TrailingZeros64(m)
				h := v.s.hash(&s.kw[i])
				s.h[i] = h
				cand |= filterBits(filter, fmask, h) << i
			}
		}
		// Pass 2: probe the slots of the candidates.
		for m := cand; m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			if sl := v.find(s.h[i], &keys[i]); sl != nil && (found>>i&1 == 0 || sl.rank > s.rank[i]) {
				out[i], s.rank[i], s.at[i] = sl.e, sl.rank, uint8(vi)
				// The key is done at the first later visit whose best
				// flow ranks no higher (visits are by maxRank, highest
				// first).
				j := vi + 1 + sort.Search(len(visits)-vi-1, func(j int) bool { return visits[vi+1+j].maxRank <= sl.rank })
				s.done[s.doneAt[i]] &^= 1 << i // from an earlier hit, if any
				s.done[j] |= 1 << i
				s.doneAt[i] = uint8(j)
				found |= 1 << i
			}
		}
	}
	for m := found; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if v := &t.visits[s.at[i]]; !v.collide && !v.s.equal(out[i], &keys[i]) {
			out[i] = t.lookup(&keys[i]) // a hash collision with a key not in the table
		}
	}
}

// batchWant returns the bits of want that name one of n keys, and panics
// if n is more than a batch holds.
func batchWant(n int, want uint64) uint64 {
	if n > MaxBatch {
		panic("flowtable: LookupBatch of more than MaxBatch keys")
	}
	if n < MaxBatch {
		want &= 1<<n - 1
	}
	return want
}

// find returns the slot of k's masked key in v's group, given the key's hash
// h in the group, or nil. Unless the group has colliding hashes, a slot with
// hash h is taken as k's without comparing keys (see LookupBatch).
func (v *visit) find(h uint64, k *Key) *slot {
	m := v.slots.mask
	for i := h >> v.shift; ; i = (i + 1) & m {
		sl := v.slots.at(i)
		if sl.e == nil {
			return nil
		}
		if sl.h == h && (!v.collide || v.s.equal(sl.e, k)) {
			return sl
		}
	}
}
