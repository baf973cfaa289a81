package flowtable

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// tableGen numbers every snapshot built in the process, so a Cache can tell
// any two snapshots apart, even of different lineages.
var tableGen atomic.Uint64

// Entry is an installed flow: the flow as the user wrote it, its rank, its
// compiled program and its counters. Everything but the counters is
// immutable. An Entry outlives the snapshot that created it: a new snapshot
// shares the Entry of every flow the change left alone, so counters go on.
type Entry struct {
	Flow    *Flow      // read-only; Flow.ID is set
	Rank    steer.Rank // steer.MakeRank(Flow.Priority, uint32(Flow.ID))
	Program Program
	// InPort is the ofport Flow.Match.InPort resolved to; 0 when the flow
	// matches every port, or when its port is gone (then it matches nothing).
	InPort uint32

	live  bool // false when Flow.Match.InPort names a port that is gone
	mkey  Key  // Match.Key with in_port set: the key under the effective mask
	stats *entryStats
}

// entryStats are an entry's counters. They are shared by the Entries a
// Recompile makes for the same flow, so nothing is lost when a port change
// rebuilds a program.
type entryStats struct {
	packets   atomic.Uint64
	bytes     atomic.Uint64
	used      atomic.Int64 // unix ns of the last hit; 0 = never
	installed int64        // unix ns
}

// Hit adds packets and bytes to the counters and records now (unix ns) as
// the time the flow last saw a packet. Pollers may call it concurrently; a
// poller that aggregates a batch calls it once per flow and batch with a
// coarse per-batch now.
func (e *Entry) Hit(packets, bytes uint64, now int64) {
	s := e.stats
	s.packets.Add(packets)
	s.bytes.Add(bytes)
	if s.used.Load() < now {
		s.used.Store(now)
	}
}

// Packets returns the packets the flow matched.
func (e *Entry) Packets() uint64 { return e.stats.packets.Load() }

// Bytes returns the bytes the flow matched.
func (e *Entry) Bytes() uint64 { return e.stats.bytes.Load() }

// Installed returns when the flow was added.
func (e *Entry) Installed() time.Time { return time.Unix(0, e.stats.installed) }

// LastUsed returns when the flow last matched a packet, or its install time
// if it never did.
func (e *Entry) LastUsed() time.Time {
	if u := e.stats.used.Load(); u > e.stats.installed {
		return time.Unix(0, u)
	}
	return time.Unix(0, e.stats.installed)
}

// Live reports whether the flow can match: false when its in_port names a
// port that no longer exists.
func (e *Entry) Live() bool { return e.live }

func (e *Entry) id() uint64 { return e.Flow.ID }

// Table is an immutable snapshot of the flow table with its classifier.
//
// One writer builds new snapshots with Apply and Recompile; the old snapshot
// stays valid and unchanged, so any number of readers (pollers) use a
// snapshot without locks while the writer builds the next one, and pick up
// the new one through an atomic.Pointer[Table]. Everything a Table returns is
// read-only.
//
// The classifier is a tuple space search: flows are grouped by effective mask
// (the match's mask, plus the in_port bytes when the flow names a port); each
// group is a hash table from masked key to the best flow under that key.
// Lookup visits the groups highest rank first and stops as soon as no
// remaining group can beat the best hit.
//
// Ranks: a flow's rank is steer.MakeRank(priority, uint32(ID)). The highest
// rank wins; at equal priority the flow with the smaller ID, that is the one
// installed earlier, wins (as the XDP classifier decides). Only the low 32
// bits of the ID take part: after 2^32 flows the tie-break wraps.
type Table struct {
	gen    uint64
	nextID uint64
	flows  []*Entry    // by ID ascending, which is install order
	subs   []*subtable // by maxRank descending; each holds at least one flow
	visits []visit     // the subs with live flows, as Lookup reads them
	words  []wordMask  // distinct masked words of the visits
	timed  []*Entry    // flows with an idle or hard timeout, by ID
	added  []uint64
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{gen: tableGen.Add(1), nextID: 1}
}

// Gen returns the snapshot's generation: unique among every snapshot of the
// process.
func (t *Table) Gen() uint64 { return t.gen }

// Len returns the number of flows.
func (t *Table) Len() int { return len(t.flows) }

// NumMasks returns the number of distinct effective masks of the flows, the
// number that steer.MaxMasks bounds.
func (t *Table) NumMasks() int { return len(t.subs) }

// steeringRules returns the number of rules the table compiles to (see
// Steering): its distinct (effective mask, masked key) pairs.
func (t *Table) steeringRules() int {
	n := 0
	for _, s := range t.subs {
		n += s.nkeys
	}
	return n
}

// NextID returns the ID the next added flow gets.
func (t *Table) NextID() uint64 { return t.nextID }

// Added returns the IDs that the Apply which built t gave to Change.Add, in
// order. A flow that a later flow of the same Change replaced has an ID here
// but no Entry.
func (t *Table) Added() []uint64 { return t.added }

// Get returns the flow with the given ID, or nil.
func (t *Table) Get(id uint64) *Entry {
	i, ok := slices.BinarySearchFunc(t.flows, id, func(e *Entry, id uint64) int { return cmp.Compare(e.id(), id) })
	if !ok {
		return nil
	}
	return t.flows[i]
}

// Entries returns every flow, highest rank first (the order a dump shows).
// The slice is the caller's.
func (t *Table) Entries() []*Entry {
	es := slices.Clone(t.flows)
	slices.SortFunc(es, func(a, b *Entry) int { return cmp.Compare(b.Rank, a.Rank) })
	return es
}

// Expired returns the IDs of the flows whose hard timeout or idle timeout
// has passed at now, by ID.
func (t *Table) Expired(now time.Time) []uint64 {
	var ids []uint64
	n := now.UnixNano()
	for _, e := range t.timed {
		f := e.Flow
		if f.HardTimeout > 0 && n >= e.stats.installed+int64(f.HardTimeout)*int64(time.Second) {
			ids = append(ids, f.ID)
			continue
		}
		if f.IdleTimeout > 0 && n >= e.LastUsed().UnixNano()+int64(f.IdleTimeout)*int64(time.Second) {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// Lookup returns the highest-ranked flow matching k, or nil. k's in_port
// must be set. Lookup does not allocate; any number of goroutines may call
// it at once.
func (t *Table) Lookup(k *Key) *Entry {
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
		m := uint64(len(v.slots) - 1)
		for i := h >> v.shift; ; i = (i + 1) & m {
			sl := &v.slots[i]
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
	slots   []slot
	s       *subtable
}

// index builds t.visits and t.words from t.subs (sorted). Groups without
// live flows are left out: they match nothing.
func (t *Table) index() {
	t.visits = make([]visit, 0, len(t.subs))
	t.words = make([]wordMask, 1, maxWordMasks) // words[0]: mask 0, product 0
	pos := make(map[wordMask]uint8)
	for _, s := range t.subs {
		if len(s.slots) == 0 {
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

// effectiveMask returns the mask a flow's entry lives under: its match's mask
// plus the in_port bytes when it names a port.
func effectiveMask(m *Match) Key {
	k := m.Mask
	if m.InPort != "" {
		k.SetInPort(0xffffffff)
	}
	return k
}

// Apply returns a new snapshot with c applied: c.Replace removes every flow,
// then c.Delete removes flows by ID, then c.Add adds flows in order. An added
// flow with the same priority and match (in_port, key, mask) as a flow
// already there replaces it, as OpenFlow's add does: the old flow goes, the
// new one gets a new ID and fresh counters. The table copies the added
// flows; IDs come from a counter carried from snapshot to snapshot and are
// never reused (Added lists them).
//
// Apply checks everything before building anything; on error t is
// unchanged and the error wraps ErrNoSuchFlow (an unknown ID in c.Delete),
// ErrNoSuchPort (an added flow's in_port or output names a port ports does
// not know), ErrTooManyMasks (the result would need more than
// steer.MaxMasks effective masks), ErrTooManyFlows (more than
// steer.MaxRules steering rules: distinct matches, counted once the new
// table is built) or ErrInvalid (anything else wrong in an added flow). Flows already installed are not recompiled: after a port is
// added or removed, call Recompile. An empty Change returns t itself.
func (t *Table) Apply(c Change, ports PortResolver) (*Table, error) {
	if !c.Replace && len(c.Add) == 0 && len(c.Delete) == 0 {
		return t, nil
	}
	now := time.Now().UnixNano()

	// What goes: deleted IDs (checked against t even when c.Replace).
	gone := make([]uint64, 0, len(c.Delete))
	for _, id := range c.Delete {
		if t.Get(id) == nil {
			return nil, fmt.Errorf("delete flow %d: %w", id, ErrNoSuchFlow)
		}
		gone = append(gone, id)
	}

	// What comes: new entries, validated and compiled.
	adds := make([]*Entry, len(c.Add))
	for i, f := range c.Add {
		e, err := newEntry(f, t.nextID+uint64(i), ports, now)
		if err != nil {
			return nil, fmt.Errorf("flow %d of %d: %w", i+1, len(c.Add), err)
		}
		adds[i] = e
	}

	// The groups the change touches.
	old := make(map[Key]*subtable, len(t.subs))
	if !c.Replace {
		for _, s := range t.subs {
			old[s.mask] = s
		}
	}
	type group struct {
		old  *subtable
		adds []*Entry
	}
	touched := make(map[Key]*group)
	touch := func(m Key) *group {
		g := touched[m]
		if g == nil {
			g = &group{old: old[m]}
			touched[m] = g
		}
		return g
	}
	if !c.Replace {
		for _, id := range gone {
			touch(effectiveMask(&t.Get(id).Flow.Match))
		}
	}
	for _, e := range adds {
		g := touch(effectiveMask(&e.Flow.Match))
		g.adds = append(g.adds, e)
	}
	slices.Sort(gone)
	gone = slices.Compact(gone)

	// Each touched group's flows: the old ones minus deletions, then the
	// adds, each replacing a flow with the same priority and match.
	var replaced []uint64 // IDs removed by an add, old or new
	flowsOf := make(map[Key][]*Entry, len(touched))
	for m, g := range touched {
		var fl []*Entry
		if g.old != nil {
			fl = withoutIDs(g.old.flows, gone)
		}
		if len(g.adds) > 0 {
			// fl may be the old subtable's own slice (withoutIDs returns it
			// when nothing goes), which t's readers still walk: the
			// replacements below write into a copy.
			fl = append(make([]*Entry, 0, len(fl)+len(g.adds)), fl...)
			// Index by a hash of (priority, in_port, key): the mask is the
			// group's. A hash hit is checked; a collision falls back to a scan.
			idx := make(map[uint64]int32, len(fl)+len(g.adds))
			for i, e := range fl {
				idx[matchHasher(e.Flow)] = int32(i)
			}
			for _, e := range g.adds {
				h := matchHasher(e.Flow)
				if i, ok := idx[h]; ok {
					j := int(i)
					if fl[j] == nil || !sameMatch(fl[j].Flow, e.Flow) {
						j = slices.IndexFunc(fl, func(o *Entry) bool { return o != nil && sameMatch(o.Flow, e.Flow) })
					}
					if j >= 0 {
						replaced = append(replaced, fl[j].id())
						fl[j] = nil
					}
				}
				idx[h] = int32(len(fl))
				fl = append(fl, e)
			}
			fl = slices.DeleteFunc(fl, func(e *Entry) bool { return e == nil })
		}
		flowsOf[m] = fl
	}

	// The mask limit, before building anything.
	nmasks := 0
	for m, s := range old {
		if touched[m] == nil && len(s.flows) > 0 {
			nmasks++
		}
	}
	for _, fl := range flowsOf {
		if len(fl) > 0 {
			nmasks++
		}
	}
	if nmasks > steer.MaxMasks {
		return nil, fmt.Errorf("%d masks, at most %d: %w", nmasks, steer.MaxMasks, ErrTooManyMasks)
	}

	// Build.
	nt := &Table{gen: tableGen.Add(1), nextID: t.nextID + uint64(len(adds))}
	nt.added = make([]uint64, len(adds))
	for i, e := range adds {
		nt.added[i] = e.id()
	}
	nt.subs = make([]*subtable, 0, nmasks)
	for m, s := range old {
		if touched[m] == nil {
			nt.subs = append(nt.subs, s)
		}
	}
	for m, fl := range flowsOf {
		if len(fl) > 0 {
			nt.subs = append(nt.subs, newSubtable(m, fl))
		}
	}
	sortSubtables(nt.subs)
	// The rule limit, once the subtables know their distinct keys.
	if n := nt.steeringRules(); n > steer.MaxRules {
		return nil, fmt.Errorf("%d distinct matches, the XDP classifier holds %d (flows that differ only in priority count once): %w",
			n, steer.MaxRules, ErrTooManyFlows)
	}
	nt.index()

	slices.Sort(replaced)
	if c.Replace {
		nt.flows = make([]*Entry, 0, len(adds))
	} else {
		nt.flows = withoutIDs(withoutIDs(t.flows, gone), replaced)
		nt.timed = withoutIDs(withoutIDs(t.timed, gone), replaced)
	}
	for _, e := range withoutIDs(adds, replaced) {
		nt.flows = append(nt.flows, e)
		if e.Flow.IdleTimeout > 0 || e.Flow.HardTimeout > 0 {
			nt.timed = append(nt.timed, e)
		}
	}
	return nt, nil
}

// withoutIDs returns the entries of es (sorted by ID) whose IDs are not in
// ids (sorted). It returns es itself, not a copy, when nothing goes.
func withoutIDs(es []*Entry, ids []uint64) []*Entry {
	if len(ids) == 0 || len(es) == 0 {
		return es
	}
	out := make([]*Entry, 0, len(es))
	j := 0
	for _, e := range es {
		for j < len(ids) && ids[j] < e.id() {
			j++
		}
		if j < len(ids) && ids[j] == e.id() {
			continue
		}
		out = append(out, e)
	}
	return out
}

// newEntry validates and compiles an added flow, with ID id.
func newEntry(f *Flow, id uint64, ports PortResolver, now int64) (*Entry, error) {
	if f == nil {
		return nil, fmt.Errorf("nil flow: %w", ErrInvalid)
	}
	m := &f.Match
	var masked Key
	m.Key.And(&m.Mask, &masked)
	if masked != m.Key {
		return nil, fmt.Errorf("match key has bits outside its mask: %w", ErrInvalid)
	}
	if m.Mask.InPort() != 0 {
		return nil, fmt.Errorf("in_port must be given by name, not in the mask: %w", ErrInvalid)
	}
	if m.Mask[23] != 0 || binary.LittleEndian.Uint32(m.Mask[60:]) != 0 {
		return nil, fmt.Errorf("mask covers padding bytes: %w", ErrInvalid)
	}
	var inPort uint32
	if m.InPort != "" {
		no, ok := resolvePort(ports, m.InPort)
		if !ok {
			return nil, fmt.Errorf("in_port %q: %w", m.InPort, ErrNoSuchPort)
		}
		inPort = no
	}
	prog, err := compileProgram(f.Actions, ports, true)
	if err != nil {
		return nil, err
	}
	// One allocation for the entry, its program's ops (when few), its
	// counters and its copy of the flow: a packet's flow and its ops then
	// sit next to each other in memory.
	box := &struct {
		e     Entry
		ops   [inlineOps]op
		stats entryStats
		flow  Flow
	}{flow: *f}
	if n := len(prog.ops); n <= inlineOps {
		copy(box.ops[:], prog.ops)
		prog.ops = box.ops[:n:n]
	}
	box.flow.ID = id
	box.flow.Actions = slices.Clone(f.Actions)
	box.stats.installed = now
	box.e = Entry{
		Flow:    &box.flow,
		Rank:    steer.MakeRank(f.Priority, uint32(id)),
		Program: prog,
		InPort:  inPort,
		live:    true,
		mkey:    m.Key,
		stats:   &box.stats,
	}
	box.e.mkey.SetInPort(inPort)
	return &box.e, nil
}

// inlineOps is the most ops a program keeps inside its Entry's allocation.
const inlineOps = 4

// matchHasher is matchHash; tests replace it to force collisions.
var matchHasher = matchHash

// matchHash hashes what makes two flows of a group the same flow for
// OpenFlow's add: priority, in_port and key.
func matchHash(f *Flow) uint64 {
	h := hashKey(&f.Match.Key) ^ uint64(f.Priority)*0x9e3779b97f4a7c15
	for i := 0; i < len(f.Match.InPort); i++ {
		h = (h ^ uint64(f.Match.InPort[i])) * 0x100000001b3
	}
	return h
}

func sameMatch(a, b *Flow) bool {
	return a.Priority == b.Priority && a.Match.InPort == b.Match.InPort && a.Match.Key == b.Match.Key
}

// Recompile returns a snapshot whose flows are compiled against ports, after
// a port was added or removed. It never fails: an output to a port that is
// gone compiles to a counted drop (DropPortGone), and a flow whose in_port is
// gone stays installed but matches nothing (it is left out of the steering
// table too) until a port of that name comes back. Flows whose compilation
// does not change keep their Entry; the others get a new Entry with the same
// ID, rank and counters. When nothing changes Recompile returns t.
func (t *Table) Recompile(ports PortResolver) *Table {
	var changed map[uint64]*Entry
	touched := make(map[Key]bool)
	for _, e := range t.flows {
		ne := e.recompiled(ports)
		if ne == nil {
			continue
		}
		if changed == nil {
			changed = make(map[uint64]*Entry)
		}
		changed[e.id()] = ne
		touched[effectiveMask(&e.Flow.Match)] = true
	}
	if changed == nil {
		return t
	}
	swap := func(es []*Entry) []*Entry {
		out := make([]*Entry, len(es))
		for i, e := range es {
			if ne := changed[e.id()]; ne != nil {
				e = ne
			}
			out[i] = e
		}
		return out
	}
	nt := &Table{gen: tableGen.Add(1), nextID: t.nextID}
	nt.flows = swap(t.flows)
	nt.timed = swap(t.timed)
	nt.subs = make([]*subtable, len(t.subs))
	for i, s := range t.subs {
		if touched[s.mask] {
			s = newSubtable(s.mask, swap(s.flows))
		}
		nt.subs[i] = s
	}
	sortSubtables(nt.subs)
	nt.index()
	return nt
}

// recompiled returns e compiled against ports, or nil when that changes
// nothing. It checks before compiling, so the common case does not allocate.
func (e *Entry) recompiled(ports PortResolver) *Entry {
	f := e.Flow
	var inPort uint32
	live := true
	if f.Match.InPort != "" {
		inPort, live = resolvePort(ports, f.Match.InPort)
	}
	same := inPort == e.InPort && live == e.live
	for i := 0; same && i < len(f.Actions); i++ {
		if f.Actions[i].Type != ActOutput {
			continue
		}
		o := &e.Program.ops[i] // ops and actions correspond one to one
		no, ok := resolvePort(ports, f.Actions[i].Port)
		same = ok && o.code == opOutput && o.port == no || !ok && o.code == opGone
	}
	if same {
		return nil
	}
	prog, err := compileProgram(f.Actions, ports, false)
	if err != nil {
		// The flow compiled when it was added; only ports changed since.
		panic(fmt.Sprintf("flowtable: recompiling flow %d: %v", f.ID, err))
	}
	ne := &Entry{Flow: f, Rank: e.Rank, Program: prog, InPort: inPort, live: live, mkey: e.Flow.Match.Key, stats: e.stats}
	ne.mkey.SetInPort(inPort)
	return ne
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
	slots   []slot    // len a power of two; empty when no flow is live

	mask  Key
	flows []*Entry // every flow with this mask, live or not, by ID
	nkeys int      // distinct masked keys (occupied slots)
	// collide is set when two distinct masked keys of the group have the
	// same 64-bit hash; otherwise a hash match finds the only candidate.
	collide bool
}

// slot is a masked key's place in a group: its hash, its best flow and that
// flow's rank (so a batch lookup compares ranks without loading the Entry).
type slot struct {
	h    uint64
	rank steer.Rank
	e    *Entry
}

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
	size := 8
	for size < 2*live {
		size <<= 1
	}
	s.slots = make([]slot, size)
	s.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	s.filter = make([]uint64, size/8) // 16 bits per live flow at least
	s.fmask = uint64(len(s.filter) - 1)
	var kw [8]uint64
	for _, e := range flows {
		if !e.live {
			continue
		}
		for i := range kw {
			kw[i] = binary.LittleEndian.Uint64(e.mkey[i*8:])
		}
		h := s.hash(&kw)
		filterAdd(s.filter, s.fmask, h)
		for i := h >> s.shift; ; i = (i + 1) & uint64(size-1) {
			sl := &s.slots[i]
			if sl.e == nil {
				*sl = slot{h: h, rank: e.Rank, e: e}
				s.nkeys++
				break
			}
			if sl.h == h {
				if s.equal(sl.e, &e.mkey) {
					if e.Rank > sl.rank {
						sl.e, sl.rank = e, e.Rank
					}
					break
				}
				s.collide = true
			}
		}
		s.maxRank = max(s.maxRank, e.Rank)
	}
	return s
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
