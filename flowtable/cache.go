package flowtable

import (
	"encoding/binary"
	"math/bits"
)

// DefaultCacheSize is the number of keys a Cache holds when NewCache is given
// 0.
const DefaultCacheSize = 8192

// Cache is an exact-match cache in front of a Table's pipeline: full key
// -> the Result for that key (the table-0 flow the classifier chose and, for
// flows that go on to later tables or groups, the whole pipeline's
// translation), or "no flow" (misses are cached too, in the same bounded
// space). It belongs to one poller: no locks, no sharing;
// calling it from two goroutines at once is a bug.
//
// As Open vSwitch's exact-match cache does, a key may sit in one of two
// slots picked by two parts of its hash. A new key takes a slot that is
// empty or stale, or else evicts one of the two at random, so keys that
// share slots cannot evict each other in a fixed cycle. Each slot remembers
// the generation of the snapshot that filled it, so a new snapshot
// invalidates the whole cache at no cost; stale slots are refilled as keys
// come back.
type Cache struct {
	slots []cacheSlot
	mask  uint64 // len(slots) - 1
	rnd   uint64 // xorshift state for evictions
	// Hits and Misses count lookups answered by the cache and by the
	// classifier. Read them only from the owning goroutine.
	Hits, Misses uint64

	h       [MaxBatch]uint64 // LookupBatch: the keys' hashes
	es      [MaxBatch]*Entry // LookupBatch: the classifier's answers
	scratch BatchScratch     // LookupBatch: the classifier's
}

type cacheSlot struct {
	gen uint64 // Table.Gen of the snapshot that filled the slot; 0 = empty
	r   Result // not Found: no flow matches key
	key Key
}

// NewCache returns a cache of size slots, rounded up to a power of two, at
// least 2 (DefaultCacheSize if size <= 0).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	n := max(2, 1<<bits.Len(uint(size-1)))
	return &Cache{slots: make([]cacheSlot, n), mask: uint64(n - 1), rnd: 0x9e3779b97f4a7c15}
}

// Len returns the number of slots.
func (c *Cache) Len() int { return len(c.slots) }

// Lookup returns t.Resolve(t.Lookup(k), k), answered from the cache when
// the same key was looked up in the same snapshot before and has not been
// evicted since. It does not allocate, but for the translation of a key
// whose flow goes on to other tables or groups.
func (c *Cache) Lookup(t *Table, k *Key) Result {
	h := hashKey(k)
	s1 := &c.slots[h&c.mask]
	if s1.gen == t.gen && keyEqual(&s1.key, k) {
		c.Hits++
		return s1.r
	}
	s2 := &c.slots[(h>>32)&c.mask]
	if s2.gen == t.gen && keyEqual(&s2.key, k) {
		c.Hits++
		return s2.r
	}
	c.Misses++
	r := t.Resolve(t.Lookup(k), k)
	c.insert(t, h, k, r)
	return r
}

// LookupBatch is Lookup for a batch: it sets out[i] = c.Lookup(t,
// &keys[i]) for every i < len(keys) whose bit is set in want, and leaves
// the other out[i] alone. keys and out hold at most MaxBatch entries, and
// out at least len(keys). The keys that miss the cache go to the classifier
// together (Table.LookupBatch). It does not allocate, but for translations
// (see Lookup).
func (c *Cache) LookupBatch(t *Table, keys []Key, want uint64, out []Result) {
	want = batchWant(len(keys), want)
	out = out[:len(keys)]
	if want&(want-1) == 0 { // one key (or none): nothing to overlap
		if want != 0 {
			i := bits.TrailingZeros64(want)
			out[i] = c.Lookup(t, &keys[i])
		}
		return
	}
	// Hash every key first, then probe: the slot loads of different keys
	// do not wait for each other.
	for m := want; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		c.h[i] = hashKey(&keys[i])
	}
	gen := t.gen
	var miss uint64
	for m := want; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		h, k := c.h[i], &keys[i]
		if s := &c.slots[h&c.mask]; s.gen == gen && keyEqual(&s.key, k) {
			out[i] = s.r
			continue
		}
		if s := &c.slots[(h>>32)&c.mask]; s.gen == gen && keyEqual(&s.key, k) {
			out[i] = s.r
			continue
		}
		miss |= 1 << i
	}
	nmiss := uint64(bits.OnesCount64(miss))
	c.Hits += uint64(bits.OnesCount64(want)) - nmiss
	if miss == 0 {
		return
	}
	c.Misses += nmiss
	t.LookupBatch(keys, miss, c.es[:], &c.scratch)
	for m := miss; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		out[i] = t.Resolve(c.es[i], &keys[i])
		c.insert(t, c.h[i], &keys[i], out[i])
	}
}

// insert caches r as the answer for k (hash h) in snapshot t.
func (c *Cache) insert(t *Table, h uint64, k *Key, r Result) {
	s1, s2 := &c.slots[h&c.mask], &c.slots[(h>>32)&c.mask]
	s := s1
	switch {
	case s1.gen == t.gen && keyEqual(&s1.key, k), s2.gen == t.gen && keyEqual(&s2.key, k):
		return // the same key twice in one batch
	case s1.gen != t.gen:
	case s2.gen != t.gen:
		s = s2
	default:
		c.rnd ^= c.rnd << 13
		c.rnd ^= c.rnd >> 7
		c.rnd ^= c.rnd << 17
		if c.rnd&1 != 0 {
			s = s2
		}
	}
	s.gen, s.r, s.key = t.gen, r, *k
}

// hashKey hashes a whole key: four independent multiplies of word pairs,
// then a final mix. It only spreads keys over the slots; the full key is
// compared on every hit.
func hashKey(k *Key) uint64 {
	w0 := binary.LittleEndian.Uint64(k[0:])
	w1 := binary.LittleEndian.Uint64(k[8:])
	w2 := binary.LittleEndian.Uint64(k[16:])
	w3 := binary.LittleEndian.Uint64(k[24:])
	w4 := binary.LittleEndian.Uint64(k[32:])
	w5 := binary.LittleEndian.Uint64(k[40:])
	w6 := binary.LittleEndian.Uint64(k[48:])
	w7 := binary.LittleEndian.Uint64(k[56:])
	h := mulMix(w0^0xa0761d6478bd642f, w1^0xe7037ed1a0b428db) ^
		mulMix(w2^0x8ebc6af09c88c6e3, w3^0x589965cc75374cc3) ^
		mulMix(w4^0x1d8e4e27c47d124f, w5^0x9e3779b97f4a7c15) ^
		mulMix(w6^0xbf58476d1ce4e5b9, w7^0x94d049bb133111eb)
	h ^= h >> 32
	h *= hashMul
	h ^= h >> 29
	return h
}

// mulMix is the 128-bit product of a and b folded to 64 bits.
func mulMix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// keyEqual is a == b without a call to the runtime's memequal. (The
// parentheses matter: in Go, ^ and | bind equally and left to right.)
func keyEqual(a, b *Key) bool {
	le := binary.LittleEndian
	return (le.Uint64(a[0:])^le.Uint64(b[0:]))|(le.Uint64(a[8:])^le.Uint64(b[8:]))|
		(le.Uint64(a[16:])^le.Uint64(b[16:]))|(le.Uint64(a[24:])^le.Uint64(b[24:]))|
		(le.Uint64(a[32:])^le.Uint64(b[32:]))|(le.Uint64(a[40:])^le.Uint64(b[40:]))|
		(le.Uint64(a[48:])^le.Uint64(b[48:]))|(le.Uint64(a[56:])^le.Uint64(b[56:])) == 0
}
