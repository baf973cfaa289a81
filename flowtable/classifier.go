package flowtable

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// classifier is one OpenFlow table's tuple space search: flows are grouped
// by effective mask (the match's mask, plus the in_port bytes when the flow
// names a port); each group is a hash table from masked key to the best flow
// under that key. lookup visits the groups highest rank first and stops as
// soon as no remaining group can beat the best hit. A classifier is
// immutable once built.
type classifier struct {
	subs   []*subtable // by maxRank descending; each holds at least one flow
	visits []visit     // the subs with live flows, as lookup reads them
	words  []wordMask  // distinct masked words of the visits
}

// emptyClassifier matches nothing.
var emptyClassifier = &classifier{}

// newClassifier builds a classifier from its groups.
func newClassifier(subs []*subtable) *classifier {
	if len(subs) == 0 {
		return emptyClassifier
	}
	c := &classifier{subs: subs}
	sortSubtables(c.subs)
	c.index()
	return c
}

// numMasks returns the number of distinct effective masks of the flows.
func (t *classifier) numMasks() int { return len(t.subs) }

// lookup returns the highest-ranked flow matching k, or nil. k's in_port
// must be set. It does not allocate; any number of goroutines may call it at
// once.
func (t *classifier) lookup(k *Key) *Entry {
	var kw [8]uint64
	for i := range kw {
		kw[i] = binary.LittleEndian.Uint64(k[i*8:])
	}
	// The hash of a key under a mask is a sum of one product per masked
	// word; groups share masked words (dl_type and nw_proto, say), so each
	// distinct (word, mask) product is computed once per lookup.
	var prod [maxWordMasks]uint64
	shared := t.words != nil
	for i, wm := range t.words {
		prod[i&(maxWordMasks-1)] = (kw[wm.idx&7] & wm.mask) * hashMuls[wm.idx&7]
	}
	var best *Entry
	var bestRank steer.Rank
	for i := range t.visits {
		v := &t.visits[i]
		if v.maxRank <= bestRank && best != nil {
			break
		}
		var h uint64
		if shared {
			// Four or eight terms: unused ones are prod[0] = 0.
			w := &v.word
			h = prod[w[0]&(maxWordMasks-1)] + prod[w[1]&(maxWordMasks-1)] +
				prod[w[2]&(maxWordMasks-1)] + prod[w[3]&(maxWordMasks-1)]
			if v.nw > 4 {
				h += prod[w[4]&(maxWordMasks-1)] + prod[w[5]&(maxWordMasks-1)] +
					prod[w[6]&(maxWordMasks-1)] + prod[w[7]&(maxWordMasks-1)]
			}
			h = hashFinish(h)
		} else {
			h = v.s.hash(&kw)
		}
		if !filterHas(v.filter, v.fmask, h) {
			continue
		}
		// visit.find's probe loop, but always comparing keys (LookupBatch
		// falls back on Lookup), and written out: a call here costs ~10% of
		// a lookup over 32 masks.
		m := v.slots.mask
		for i := h >> v.shift; ; i = (i + 1) & m {
			sl := v.slots.at(i)
			if sl.e == nil {
				break
			}
			if sl.h == h && v.s.equal(sl.e, k) {
				if best == nil || sl.rank > bestRank {
					best, bestRank = sl.e, sl.rank
				}
				break
			}
		}
	}
	return best
}

// maxWordMasks bounds the distinct (word, mask word) pairs whose products
// Lookup shares (it zeroes an array of that many on every call). Tables with
// more hash every group on its own.
const maxWordMasks = 32

// wordMask is one masked word of one or more groups' masks.
type wordMask struct {
	idx  uint8 // word of the key, 0..7
	mask uint64
}

// visit is a group as Lookup sees it: the fields it reads, copied from the
// subtable into one array in visit order, and the indexes of the group's
// masked words in Table.words (0, the all-zero mask, for unused ones).
type visit struct {
	maxRank steer.Rank
	shift   uint8
	collide bool
	nw      uint8 // masked words; word[nw:] are 0
	word    [8]uint8
	fmask   uint64
	filter  []uint64
	slots   slotPages
	s       *subtable
}

// index builds t.visits and t.words from t.subs (sorted). Groups without
// live flows are left out: they match nothing.
func (t *classifier) index() {
	t.visits = make([]visit, 0, len(t.subs))
	t.words = make([]wordMask, 1, maxWordMasks) // words[0]: mask 0, product 0
	pos := make(map[wordMask]uint8)
	for _, s := range t.subs {
		if s.slots.n == 0 {
			continue
		}
		v := visit{maxRank: s.maxRank, shift: s.shift, collide: s.collide, nw: uint8(s.nw), fmask: s.fmask, filter: s.filter, slots: s.slots, s: s}
		for j := 0; j < s.nw; j++ {
			wm := wordMask{s.widx[j], s.mword[j]}
			p, ok := pos[wm]
			if !ok {
				p = uint8(len(t.words))
				pos[wm] = p
				t.words = append(t.words, wm)
			}
			v.word[j] = p
		}
		t.visits = append(t.visits, v)
	}
	if len(t.words) > maxWordMasks {
		t.words = nil
	}
}

func sortSubtables(subs []*subtable) {
	slices.SortFunc(subs, func(a, b *subtable) int {
		if c := cmp.Compare(b.maxRank, a.maxRank); c != 0 {
			return c
		}
		// Deterministic order between groups without live flows.
		return compareKeys(&a.mask, &b.mask)
	})
}

func compareKeys(a, b *Key) int {
	for i := range a {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// subtable is the group of flows sharing an effective mask: an open
// addressing hash table (linear probing, load <= 1/2) from masked key to the
// best live flow under that key. Only the 64-bit words the mask touches are
// masked, hashed and compared. A bitmap with 16 bits per key answers most
// "not here" without touching the slots, which for large groups are not in
// the CPU cache: most groups a packet visits do not hold its key.
type subtable struct {
	// Read by Lookup, first so that they share cache lines.
	maxRank steer.Rank
	nw      int       // words the mask touches
	widx    [8]uint8  // their indexes
	shift   uint8     // 64 - log2(len(slots))
	mword   [8]uint64 // the mask's words, by widx
	filter  []uint64  // see filterAdd
	fmask   uint64    // len(filter) - 1
	slots   slotPages // a power of two; none when no flow is live

	mask  Key
	flows []*Entry // every flow with this mask, live or not, by ID
	nkeys int      // distinct masked keys (occupied slots)
	nlive int      // live flows; when it is nkeys, each holds a slot of its own
	// collide is set when two distinct masked keys of the group have the
	// same 64-bit hash; otherwise a hash match finds the only candidate.
	collide bool
	stale   int // keys removed by derive since the last build, whose filter bits stay
	// own is, while derive edits the subtable, which pages of slots are
	// its own copies (the others are the old subtable's); nil otherwise.
	own []bool
}

// slotPages is a subtable's slots, in pages of at most maxPage: a subtable
// derived from another copies only the pages its change writes and
// shares the others (read-only), where one flow added to 160k copied the
// whole 12 MB of slots. Reading a slot costs one more load, of a page
// table that stays in cache (128 pages for 160k flows).
type slotPages struct {
	pages [][]slot
	shift uint8  // log2 of a page's length
	pmask uint64 // a page's length - 1
	mask  uint64 // the slots' number - 1
	n     int    // the slots' number
}

// maxPage is the most slots a page holds (96 KiB); a power of two. (A
// variable for the tests, which make subtables of many small pages.)
var maxPage = 4096

// newSlotPages returns n empty slots, n a power of two.
func newSlotPages(n int) slotPages {
	size := min(n, maxPage)
	p := slotPages{shift: uint8(bits.TrailingZeros(uint(size))), pmask: uint64(size - 1), mask: uint64(n - 1), n: n}
	p.pages = make([][]slot, n/size)
	for i := range p.pages {
		p.pages[i] = make([]slot, size)
	}
	return p
}

// at returns slot i, to read.
func (p *slotPages) at(i uint64) *slot { return &p.pages[i>>p.shift][i&p.pmask] }

// all returns a copy of every slot, in order (for tests).
func (p *slotPages) all() []slot {
	var out []slot
	for _, pg := range p.pages {
		out = append(out, pg...)
	}
	return out
}

// mut returns slot i, to write: while derive edits s, a page that is
// still the old subtable's is copied first.
func (s *subtable) mut(i uint64) *slot {
	if s.own != nil {
		if pg := i >> s.slots.shift; !s.own[pg] {
			s.slots.pages[pg] = slices.Clone(s.slots.pages[pg])
			s.own[pg] = true
		}
	}
	return s.slots.at(i)
}

// slot is a masked key's place in a group: its hash, its best flow and that
// flow's rank (so a batch lookup compares ranks without loading the Entry).
type slot struct {
	h    uint64
	rank steer.Rank
	e    *Entry
}

// newSubtable builds the subtable of flows (by ID) under mask.
func newSubtable(mask Key, flows []*Entry) *subtable {
	s := &subtable{mask: mask, flows: flows}
	for i := 0; i < 8; i++ {
		if w := binary.LittleEndian.Uint64(mask[i*8:]); w != 0 {
			s.widx[s.nw] = uint8(i)
			s.mword[s.nw] = w
			s.nw++
		}
	}
	live := 0
	for _, e := range flows {
		if e.live {
			live++
		}
	}
	if live == 0 {
		return s
	}
	s.nlive = live
	size := 8
	for size < 2*live {
		size <<= 1
	}
	s.slots = newSlotPages(size)
	s.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	s.filter = make([]uint64, size/8) // 16 bits per live flow at least
	s.fmask = uint64(len(s.filter) - 1)
	in := make([]slot, 0, live)
	for _, e := range flows {
		if e.live {
			in = append(in, slot{h: s.keyHash(e), rank: e.Rank, e: e})
		}
	}
	// The flows go in in the order of their home slots, not of their IDs:
	// each probe then lands next to the last one, where the slots of a
	// large group missed the cache (and the TLB) once a flow.
	in = byHome(in, s.shift)
	for i := range in {
		s.insert(in[i])
	}
	return s
}

// takesSmall reports whether a change of n flows (added or deleted) to s
// is one derive makes from s's slots rather than a rebuild: s is large,
// n small beside it, and every flow of s is live and holds its masked
// key's slot alone (so a deleted flow's slot goes with it, and an added
// flow's same-match twin is the one its key finds).
func (s *subtable) takesSmall(n int) bool {
	return len(s.flows) >= deriveMin && n*8 <= len(s.flows) && s.nkeys == s.nlive && s.nlive == len(s.flows)
}

// deriveMin is the size of the smallest group derive takes. (A variable
// for the tests, as is onDerive, called when derive does not rebuild.)
var (
	deriveMin = 512
	onDerive  func()
)

// find returns the flow whose masked key is k that holds a slot of s, or
// nil.
func (s *subtable) find(k *Key) *Entry {
	if s.slots.n == 0 {
		return nil
	}
	var kw [8]uint64
	for i := range kw {
		kw[i] = binary.LittleEndian.Uint64(k[i*8:])
	}
	h := s.hash(&kw)
	for i := h >> s.shift; ; i = (i + 1) & s.slots.mask {
		sl := s.slots.at(i)
		if sl.e == nil {
			return nil
		}
		if sl.h == h && s.equal(sl.e, k) {
			return sl.e
		}
	}
}

// derive returns the subtable of flows (s's flows by ID, less rm, plus
// add), made from a copy of s's slots and filter: rm's slots are emptied
// (each holds its own, see takesSmall) and add's live flows put in, as
// newSubtable would. It rebuilds instead when the slots would be more
// than half full or less than an eighth, or when the filter holds more
// than an eighth of stale keys: a removed key's filter bits stay (a
// filter only says "maybe"). maxRank is found again by a walk of the
// slots when the flow of that rank goes.
func (s *subtable) derive(flows, rm, add []*Entry) *subtable {
	live := s.nlive - len(rm)
	for _, e := range add {
		if e.live {
			live++
		}
	}
	if s.slots.n == 0 || live == 0 || 2*live > s.slots.n || 8*live < s.slots.n || 8*(s.stale+len(rm)) > live {
		return newSubtable(s.mask, flows)
	}
	if onDerive != nil {
		onDerive()
	}
	ns := *s
	ns.flows = flows
	ns.slots.pages = slices.Clone(s.slots.pages) // the pages it writes are copied (mut)
	ns.own = make([]bool, len(ns.slots.pages))
	defer func() { ns.own = nil }()
	ns.filter = slices.Clone(s.filter)
	ns.stale += len(rm)
	top := false // the flow of the highest rank goes: find the next
	for _, e := range rm {
		if !ns.remove(e) {
			return newSubtable(s.mask, flows) // (not reached: see takesSmall)
		}
		top = top || e.Rank == s.maxRank
	}
	if top {
		ns.maxRank = 0
		for _, pg := range ns.slots.pages {
			for i := range pg {
				if pg[i].e != nil {
					ns.maxRank = max(ns.maxRank, pg[i].rank)
				}
			}
		}
	}
	for _, e := range add {
		if e.live {
			ns.nlive++
			ns.insert(slot{h: ns.keyHash(e), rank: e.Rank, e: e})
		}
	}
	return &ns
}

// insert puts n in s's slots, which have room: the best flow of a key
// holds its slot.
func (s *subtable) insert(n slot) {
	filterAdd(s.filter, s.fmask, n.h)
	s.maxRank = max(s.maxRank, n.rank)
	for j := n.h >> s.shift; ; j = (j + 1) & s.slots.mask {
		sl := s.slots.at(j)
		if sl.e == nil {
			*s.mut(j) = n
			s.nkeys++
			return
		}
		if sl.h == n.h {
			if s.equal(sl.e, &n.e.mkey) {
				if n.rank > sl.rank {
					sl = s.mut(j)
					sl.e, sl.rank = n.e, n.rank
				}
				return
			}
			s.collide = true
		}
	}
}

// remove empties the slot e holds alone, shifting the slots after it
// back where their probe sequences allow (linear probing's deletion: no
// tombstones). It returns false, changing nothing, if e holds no slot.
func (s *subtable) remove(e *Entry) bool {
	m := s.slots.mask
	i := s.keyHash(e) >> s.shift
	for s.slots.at(i).e != e {
		if s.slots.at(i).e == nil {
			return false
		}
		i = (i + 1) & m
	}
	for j := (i + 1) & m; s.slots.at(j).e != nil; j = (j + 1) & m {
		// The slot at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if home := s.slots.at(j).h >> s.shift; (j-home)&m >= (j-i)&m {
			*s.mut(i) = *s.slots.at(j)
			i = j
		}
	}
	*s.mut(i) = slot{}
	s.nkeys--
	s.nlive--
	return true
}

// byHome sorts slots by their home index (h >> shift), stably (the flows
// of a key keep their ID order), with an LSD radix sort of 11-bit digits.
// It returns the sorted slots: slots itself or a list it allocated. (Not
// internal/radix: sorting radix.Items would send the insert pass through
// their indexes into slots, a cache miss a flow, which is what the sort
// is for; a generic radix.Sort by a key function ran at half its speed.)
func byHome(slots []slot, shift uint8) []slot {
	const digit = 11
	if len(slots) < 1<<digit {
		slices.SortStableFunc(slots, func(a, b slot) int { return cmp.Compare(a.h>>shift, b.h>>shift) })
		return slots
	}
	a, b := slots, make([]slot, len(slots))
	for low := uint(0); low < uint(64-shift); low += digit {
		var at [1 << digit]int
		for i := range a {
			at[a[i].h>>shift>>low&(1<<digit-1)]++
		}
		n := 0
		for d, c := range at {
			at[d] = n
			n += c
		}
		for i := range a {
			d := a[i].h >> shift >> low & (1<<digit - 1)
			b[at[d]] = a[i]
			at[d]++
		}
		a, b = b, a
	}
	return a
}

// keyHash is the hash of e's masked key, which its slot holds.
func (s *subtable) keyHash(e *Entry) uint64 {
	var kw [8]uint64
	for i := range kw {
		kw[i] = binary.LittleEndian.Uint64(e.mkey[i*8:])
	}
	return s.hash(&kw)
}

// wins reports whether e, one of s's live flows, is the one its masked
// key's slot holds: of the highest rank among the flows with that key.
func (s *subtable) wins(e *Entry) bool {
	h := s.keyHash(e)
	for i := h >> s.shift; ; i = (i + 1) & s.slots.mask {
		sl := s.slots.at(i)
		switch {
		case sl.e == e:
			return true
		case sl.e == nil: // (not reached: newSubtable gave every live flow's key a slot)
			return false
		case sl.h == h && s.equal(sl.e, &e.mkey):
			return false // a flow of a higher rank has the key
		}
	}
}

const hashMul = 0xc4ceb9fe1a85ec53

// hashMuls are odd multipliers, one per word of a key.
var hashMuls = [8]uint64{
	0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9, 0x94d049bb133111eb, 0xff51afd7ed558ccd,
	0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3, 0x589965cc75374cc3,
}

// hash hashes the masked words of kw: a sum of products, one per masked
// word, with a multiplier per word of the key (so Lookup can share the
// products of equal masked words between groups), then a mix that spreads
// every bit over the top bits (the slot index) and the low bits (the
// filter's word and bits).
func (s *subtable) hash(kw *[8]uint64) uint64 {
	var h uint64
	for j := 0; j < 8; j++ { // unused words have mask 0: no branch on nw
		w := s.widx[j] & 7
		h += (kw[w] & s.mword[j]) * hashMuls[w]
	}
	return hashFinish(h)
}

// A group's filter is a Bloom filter blocked to one 64-bit word per key:
// hash bits 12 and up pick the word, bits 0-5 and 6-11 two bits in it. At 16
// bits per key it answers "not here" wrongly for about one key in a
// hundred, and it is small enough for the filters of 32 groups of a 100k-flow
// table to stay in the CPU's L2 cache, which is what makes a lookup that
// visits every group fast.
func filterAdd(f []uint64, fmask, h uint64) {
	f[(h>>12)&fmask] |= 1<<(h&63) | 1<<(h>>6&63)
}

func filterHas(f []uint64, fmask, h uint64) bool {
	return filterBits(f, fmask, h) != 0
}

// filterBits is 1 if h may be in the filter, 0 if not: a result to OR into a
// mask without a branch.
func filterBits(f []uint64, fmask, h uint64) uint64 {
	w := f[(h>>12)&fmask]
	return w >> (h & 63) & (w >> (h >> 6 & 63)) & 1
}

func hashFinish(h uint64) uint64 {
	h ^= h >> 32
	h *= hashMul
	h ^= h >> 29
	return h & hashKeep
}

// hashKeep masks every group hash. Tests clear most of its bits to make
// distinct keys collide, which a 64-bit hash otherwise never shows them.
var hashKeep = ^uint64(0)

// equal reports whether e's key equals k under the group's mask.
func (s *subtable) equal(e *Entry, k *Key) bool {
	le := binary.LittleEndian
	for j := 0; j < s.nw && j < 8; j++ {
		w := s.widx[j] & 7
		if le.Uint64(e.mkey[w*8:]) != le.Uint64(k[w*8:])&s.mword[j] {
			return false
		}
	}
	return true
}
