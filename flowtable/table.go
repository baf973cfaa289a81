package flowtable

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/xvs-project/xvs/flowtable/steer"
	"github.com/xvs-project/xvs/internal/radix"
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

	live    bool          // false when Flow.Match.InPort names a port that is gone
	verdict steer.Verdict // Verdict, kept: the steering compile asks it of every flow
	fast    string        // why the flow cannot run in XDP (fastPathProblem); "" if it can
	mkey    Key           // Match.Key with in_port set: the key under the effective mask
	portSig uint64        // portSignature of the ports Program was compiled against
	stats   *entryStats
}

// entryStats are an entry's counters, and its flow's text once asked for.
// They are shared by the Entries a Recompile makes for the same flow, so
// nothing is lost when a port change rebuilds a program.
type entryStats struct {
	packets   atomic.Uint64
	bytes     atomic.Uint64
	used      atomic.Int64 // unix ns of the last hit; 0 = never
	installed int64        // unix ns
	text      atomic.Pointer[string]
}

// Text returns the flow in canonical text form (Flow.String), printed once
// (a save of the state and every dump print every flow). Any number of
// goroutines may call it.
func (e *Entry) Text() string {
	if p := e.stats.text.Load(); p != nil {
		return *p
	}
	s := e.Flow.String()
	e.stats.text.Store(&s)
	return s
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

// tableStats count the lookups userspace makes in one table (goto_table,
// resubmit; table 0's first lookup of every packet is the XDP program's and
// counted there). They live as long as the lineage of snapshots.
type tableStats struct {
	lookups, matched atomic.Uint64
}

// TableStats are one table's counters, as ovs-ofctl dump-tables shows them.
type TableStats struct {
	Table   uint8
	Flows   int    // installed flows (active_count)
	Lookups uint64 // lookups made in userspace (lookup_count)
	Matched uint64 // of those, the ones a flow matched (matched_count)
}

// PortSet is a set of ofports.
type PortSet [steer.MaxPorts / 64]uint64

// Add adds ofport p.
func (s *PortSet) Add(p uint32) {
	if p < steer.MaxPorts {
		s[p/64] |= 1 << (p % 64)
	}
}

// Has reports whether p is in the set.
func (s *PortSet) Has(p uint32) bool { return p < steer.MaxPorts && s[p/64]>>(p%64)&1 != 0 }

// Table is an immutable snapshot of the whole pipeline: the flows of every
// OpenFlow table (0..MaxTable) with each table's classifier, the groups,
// and which ports are dead (for the groups' watch ports).
//
// One writer builds new snapshots with Apply, Recompile and WithDeadPorts;
// the old snapshot stays valid and unchanged, so any number of readers
// (pollers) use a snapshot without locks while the writer builds the next
// one, and pick up the new one through an atomic.Pointer[Table]. Everything
// a Table returns is read-only.
//
// Ranks: a flow's rank is steer.MakeRank(priority, uint32(ID)). The highest
// rank wins; at equal priority the flow with the smaller ID, that is the one
// installed earlier, wins (as the XDP classifier decides). Only the low 32
// bits of the ID take part: after 2^32 flows the tie-break wraps.
type Table struct {
	gen     uint64
	nextID  uint64
	flows   []*Entry // every table's, by ID ascending, which is install order
	timed   []*Entry // flows with an idle or hard timeout, by ID
	added   []uint64
	removed []uint64    // flows the change removed because a group they used went
	delta   *steerDelta // how table 0 differs from the snapshot this one was made from; nil: unknown

	tables [MaxTable + 1]*classifier // never nil
	groups map[uint32]*GroupEntry    // read-only once published
	dead   PortSet                   // ports that are not live
	tstats *[MaxTable + 1]tableStats // shared by the lineage
	names  portNames                 // the port names of the lineage's flows, interned; read-only once published
	// room is claimed by the first table derived from this one that
	// appends to flows and timed in place, past their length: the spare
	// capacity of the arrays is that table's alone. Tables that share the
	// arrays share the token; one derived later copies before it appends
	// (two tables made from one snapshot must not write each other's
	// entries).
	room *atomic.Bool
}

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{gen: tableGen.Add(1), nextID: 1, tstats: new([MaxTable + 1]tableStats), room: new(atomic.Bool)}
	for i := range t.tables {
		t.tables[i] = emptyClassifier
	}
	return t
}

// derive returns a copy of t with a new generation, for a snapshot that
// differs from t in what the caller changes next.
func (t *Table) derive() *Table {
	nt := *t
	nt.gen = tableGen.Add(1)
	nt.added, nt.removed, nt.delta = nil, nil, nil
	return &nt
}

// Gen returns the snapshot's generation: unique among every snapshot of the
// process.
func (t *Table) Gen() uint64 { return t.gen }

// Len returns the number of flows, in all tables.
func (t *Table) Len() int { return len(t.flows) }

// NumMasks returns the number of distinct effective masks of table 0's
// flows, the number that steer.MaxMasks bounds (only table 0 is in the XDP
// program).
func (t *Table) NumMasks() int { return t.tables[0].numMasks() }

// NumRules returns the number of rules table 0 compiles to (see Steering):
// its distinct (effective mask, masked key) pairs, the number that
// steer.MaxRules bounds.
func (t *Table) NumRules() int {
	n := 0
	for _, s := range t.tables[0].subs {
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

// Removed returns the IDs of the flows the Apply which built t removed
// because they sent packets to a group the change deleted (as OpenFlow's
// group delete does), by ID.
func (t *Table) Removed() []uint64 { return t.removed }

// Get returns the flow with the given ID, or nil.
func (t *Table) Get(id uint64) *Entry {
	i, ok := slices.BinarySearchFunc(t.flows, id, func(e *Entry, id uint64) int { return cmp.Compare(e.id(), id) })
	if !ok {
		return nil
	}
	return t.flows[i]
}

// Entries returns every flow, by table, then highest rank first (the order
// a dump shows). The slice is the caller's.
func (t *Table) Entries() []*Entry { return t.Select(nil) }

// Select returns the flows keep is true of (every flow when keep is nil)
// in the order of Entries. Only those are sorted: selecting a few of a
// large table costs a walk of it. The slice is the caller's.
func (t *Table) Select(keep func(*Flow) bool) []*Entry {
	var es []*Entry
	if keep == nil {
		es = slices.Clone(t.flows)
	} else {
		for _, e := range t.flows {
			if keep(e.Flow) {
				es = append(es, e)
			}
		}
	}
	slices.SortFunc(es, func(a, b *Entry) int {
		if c := cmp.Compare(a.Flow.Table, b.Flow.Table); c != 0 {
			return c
		}
		return cmp.Compare(b.Rank, a.Rank)
	})
	return es
}

// ByID returns every flow by ID, which is install order. The slice is the
// table's: the caller must not modify it.
func (t *Table) ByID() []*Entry { return t.flows }

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

// Lookup returns the highest-ranked flow of table 0 matching k, or nil. k's
// in_port must be set. Lookup does not allocate; any number of goroutines
// may call it at once.
func (t *Table) Lookup(k *Key) *Entry { return t.tables[0].lookup(k) }

// LookupTable is Lookup in table n.
func (t *Table) LookupTable(n uint8, k *Key) *Entry {
	if int(n) >= len(t.tables) {
		return nil
	}
	return t.tables[n].lookup(k)
}

// Group returns the group with the given ID, or nil.
func (t *Table) Group(id uint32) *GroupEntry { return t.groups[id] }

// Groups returns every group, by ID. The slice is the caller's.
func (t *Table) Groups() []*GroupEntry {
	gs := slices.Collect(maps.Values(t.groups))
	slices.SortFunc(gs, func(a, b *GroupEntry) int { return cmp.Compare(a.Group.ID, b.Group.ID) })
	return gs
}

// GroupRefCounts returns, per group, how many flows send packets to it
// (OpenFlow's ref_count).
func (t *Table) GroupRefCounts() map[uint32]int {
	n := make(map[uint32]int, len(t.groups))
	var ids []uint32
	for _, e := range t.flows {
		ids = ids[:0]
		for i := range e.Flow.Actions {
			if id, ok := e.Flow.Actions[i].GroupRef(); ok && !slices.Contains(ids, id) {
				ids = append(ids, id)
				n[id]++
			}
		}
	}
	return n
}

// GroupUsers returns the IDs of the flows that send packets to group id, by
// ID.
func (t *Table) GroupUsers(id uint32) []uint64 {
	var ids []uint64
	for _, e := range t.flows {
		if flowUsesGroup(e.Flow, id) {
			ids = append(ids, e.id())
		}
	}
	return ids
}

func flowUsesGroup(f *Flow, id uint32) bool {
	for i := range f.Actions {
		if g, ok := f.Actions[i].GroupRef(); ok && g == id {
			return true
		}
	}
	return false
}

// DeadPorts returns the set of ports the snapshot takes as not live.
func (t *Table) DeadPorts() PortSet { return t.dead }

// WithDeadPorts returns a snapshot that differs from t only in the ports it
// takes as dead (fast_failover and select buckets watching them are not
// picked), or t itself when they are the same. It is cheap: nothing is
// rebuilt, only the generation changes, which makes every poller's cache
// look the pipeline up again.
func (t *Table) WithDeadPorts(dead PortSet) *Table {
	if dead == t.dead {
		return t
	}
	nt := t.derive()
	nt.dead = dead
	return nt
}

// TableStats returns the counters of every table that has flows or was
// looked up in, by table.
func (t *Table) TableStats() []TableStats {
	var n [MaxTable + 1]int
	for _, e := range t.flows {
		n[e.Flow.Table]++
	}
	var out []TableStats
	for i := range t.tables {
		st := &t.tstats[i]
		ts := TableStats{Table: uint8(i), Flows: n[i], Lookups: st.lookups.Load(), Matched: st.matched.Load()}
		if i == 0 || ts.Flows > 0 || ts.Lookups > 0 {
			out = append(out, ts)
		}
	}
	return out
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

// subKey names a group of flows: a table and an effective mask.
type subKey struct {
	table uint8
	mask  Key
}

func subKeyOf(f *Flow) subKey { return subKey{f.Table, effectiveMask(&f.Match)} }

// Apply returns a new snapshot with c applied. Groups change first:
// c.ReplaceGroups removes every group, then c.DeleteGroups removes groups,
// c.AddGroups adds new ones and c.ModGroups replaces existing ones (with
// fresh counters). Then flows: c.Replace removes every flow, then c.Delete
// removes flows by ID, then c.Add adds flows in order, except that a replace
// keeps the Entry (ID, counters, install time) of an installed flow it adds
// again exactly (same table, priority, match, cookie, timeouts and
// actions), as ovs-ofctl replace-flows leaves such flows alone (given
// twice, the later of the two keeps it, and the earlier, which the later
// replaces, has an ID of its own in Added); when it
// keeps every flow and changes no group, the result is t's pipeline with
// t's generation, and only Added differs. An added flow with
// the same table, priority and match (in_port, key, mask) as a flow already
// there replaces it, as OpenFlow's add does: the old flow goes, the new one
// gets a new ID and fresh counters. A flow that sends to a group the change
// removes goes with it, as OpenFlow says (Removed lists them). The table
// copies what it is given; flow IDs come from a counter carried from
// snapshot to snapshot and are never reused (Added lists them).
//
// Apply checks everything before building anything; on error t is
// unchanged and the error wraps ErrNoSuchFlow (an unknown ID in c.Delete),
// ErrNoSuchGroup (a group to delete or modify that is not there, or a flow
// or bucket sending to one), ErrGroupExists (a group to add that is
// there), ErrGroupInUse (a group to delete that another group's bucket
// sends to), ErrNoSuchPort (an added flow or group names a port ports does
// not know), ErrTooManyMasks (table 0 would need more than steer.MaxMasks
// effective masks), ErrTooManyFlows (table 0 would need more than
// steer.MaxRules steering rules: distinct matches, counted once the new
// table is built) or ErrInvalid (anything else wrong in an added flow or
// group, group loops included). Flows and groups already installed are not
// recompiled: after a port is added or removed, call Recompile. An empty
// Change returns t itself.
func (t *Table) Apply(c Change, ports PortResolver) (*Table, error) {
	if c.empty() {
		return t, nil
	}
	now := time.Now().UnixNano()

	groups, groupsGone, err := t.applyGroups(&c, ports, now)
	if err != nil {
		return nil, err
	}

	// What goes: deleted IDs (checked against t even when c.Replace), and
	// the flows of groups that go.
	gone := make([]uint64, 0, len(c.Delete))
	for _, id := range c.Delete {
		if t.Get(id) == nil {
			return nil, fmt.Errorf("delete flow %d: %w", id, ErrNoSuchFlow)
		}
		gone = append(gone, id)
	}
	var removed []uint64
	if len(groupsGone) > 0 && !c.Replace {
		for _, e := range t.flows {
			for i := range e.Flow.Actions {
				if id, ok := e.Flow.Actions[i].GroupRef(); ok && groupsGone[id] {
					removed = append(removed, e.id())
					break
				}
			}
		}
		gone = append(gone, removed...)
	}

	// What comes: new entries, validated and compiled. A replace keeps the
	// Entry (ID, counters, install time) of a flow it gives exactly as it
	// is installed, as ovs-ofctl replace-flows leaves such a flow alone
	// (not when the change gives the IDs: each flow then gets its own).
	var keepable *keepSet
	if c.Replace && !c.KeepIDs && len(t.flows) > 0 && len(c.Add) > 0 {
		keepable = &keepSet{es: t.flows}
		if len(c.Delete) > 0 {
			keepable.es = make([]*Entry, 0, len(t.flows))
			for _, e := range t.flows {
				if !slices.Contains(c.Delete, e.id()) {
					keepable.es = append(keepable.es, e)
				}
			}
		}
		keepable.by = make([]int32, len(keepable.es))
	}
	adds := make([]*Entry, len(c.Add))
	kept := 0
	sc := newAddScratch(t.names)
	sc.own = c.Owned
	nextID := t.nextID
	// fresh is a new entry, with ID id, for the i-th flow given.
	fresh := func(i int, id uint64) (*Entry, error) {
		f := c.Add[i]
		if c.Owned && !c.KeepIDs && f != nil && f.ID != 0 {
			f = sc.shareless(f) // an installed flow (see Change.Owned)
		}
		sc.left = len(c.Add) - i
		return newEntry(f, id, ports, sc, !c.AllowMissingPorts, now)
	}
	for i, f := range c.Add {
		id := t.nextID + uint64(i)
		if c.KeepIDs && f != nil {
			if f.ID < nextID {
				return nil, &ItemError{What: "flow", Index: i, Of: len(c.Add),
					Err: fmt.Errorf("flow id %d: must be at least %d and above the one before: %w", f.ID, nextID, ErrInvalid)}
			}
			id = f.ID
			nextID = id + 1
		}
		var e *Entry
		var err error
		from := -1
		if keepable != nil && f != nil && (c.AllowMissingPorts || portsResolve(f, ports)) {
			e, from = keepable.take(i, f)
		}
		switch {
		case e == nil:
			e, err = fresh(i, id)
		case from < 0:
			kept++
		default:
			// An earlier flow given took e, which moved to this one: that
			// one, replaced by this one, gets an entry of its own.
			if adds[from], err = fresh(from, t.nextID+uint64(from)); err != nil {
				return nil, &ItemError{What: "flow", Index: from, Of: len(c.Add), Err: err}
			}
		}
		if err == nil {
			err = checkGroupRefs(f.Actions, groups)
		}
		if err != nil {
			return nil, &ItemError{What: "flow", Index: i, Of: len(c.Add), Err: err}
		}
		adds[i] = e
	}
	if c.Replace && kept == len(t.flows) && kept == len(adds) && len(groupsGone) == 0 && maps.Equal(groups, t.groups) && c.NextID <= t.nextID {
		// The pipeline as it was: only Added is new.
		nt := *t
		nt.delta = nil // (t's generation: nothing to sync)
		nt.added = make([]uint64, len(adds))
		for i, e := range adds {
			nt.added[i] = e.id()
		}
		nt.removed = nil
		return &nt, nil
	}
	byID := func(es []*Entry) []*Entry { // kept entries break the ID order of adds
		if kept > 0 {
			es = slices.Clone(es)
			slices.SortFunc(es, func(a, b *Entry) int { return cmp.Compare(a.id(), b.id()) })
		}
		return es
	}

	// The groups of flows the change touches. A replace rebuilds every
	// group, but one left with the flows it had keeps its subtable.
	old := make(map[subKey]*subtable)
	prev := make(map[subKey]*subtable)
	for n, cl := range t.tables {
		for _, s := range cl.subs {
			prev[subKey{uint8(n), s.mask}] = s
		}
	}
	if !c.Replace {
		old = prev
	}
	touched := make(map[subKey]*touchedGroup)
	touch := func(k subKey) *touchedGroup {
		g := touched[k]
		if g == nil {
			g = &touchedGroup{old: old[k]}
			touched[k] = g
		}
		return g
	}
	slices.Sort(gone)
	gone = slices.Compact(gone)
	if !c.Replace {
		for _, id := range gone {
			e := t.Get(id)
			g := touch(subKeyOf(e.Flow))
			g.gone = append(g.gone, e)
		}
	}
	for _, e := range adds {
		g := touch(subKeyOf(e.Flow))
		g.adds = append(g.adds, e)
	}

	// Each touched group's flows: the old ones minus deletions, then the
	// adds, each replacing a flow with the same priority and match.
	var replaced []uint64 // IDs removed by an add, old or new
	flowsOf := make(map[subKey][]*Entry, len(touched))
	for k, g := range touched {
		if g.old != nil && !c.Replace && g.old.takesSmall(len(g.gone)+len(g.adds)) {
			flowsOf[k], replaced = g.smallChange(replaced)
			continue
		}
		var fl []*Entry
		if g.old != nil {
			fl = withoutIDs(g.old.flows, gone)
		}
		if len(g.adds) > 0 {
			// fl may be the old subtable's own slice (withoutIDs returns it
			// when nothing goes), which t's readers still walk: the
			// replacements below write into a copy.
			fl = append(append(make([]*Entry, 0, len(fl)+len(g.adds)), fl...), g.adds...)
			replaced = replaceSameMatches(fl, replaced)
			fl = slices.DeleteFunc(fl, func(e *Entry) bool { return e == nil })
		}
		flowsOf[k] = byID(fl)
	}

	// Table 0's mask limit, before building anything.
	nmasks := 0
	for k, s := range old {
		if k.table == 0 && touched[k] == nil && len(s.flows) > 0 {
			nmasks++
		}
	}
	for k, fl := range flowsOf {
		if k.table == 0 && len(fl) > 0 {
			nmasks++
		}
	}
	if nmasks > steer.MaxMasks {
		return nil, fmt.Errorf("table 0: %d masks, at most %d: %w", nmasks, steer.MaxMasks, ErrTooManyMasks)
	}

	// Build: only the tables the change touched get a new classifier.
	nt := t.derive()
	nt.nextID = t.nextID + uint64(len(adds))
	if c.KeepIDs {
		nt.nextID = nextID
	}
	nt.nextID = max(nt.nextID, c.NextID)
	nt.groups = groups
	nt.names = sc.names
	nt.removed = removed
	if !c.Replace {
		nt.delta = t.deltaOf(touched)
	}
	nt.added = make([]uint64, len(adds))
	for i, e := range adds {
		nt.added[i] = e.id()
	}
	var changed [MaxTable + 1]bool
	for k := range touched {
		changed[k.table] = true
	}
	for n := range nt.tables {
		if c.Replace || changed[n] {
			var subs []*subtable
			for k, s := range old {
				if int(k.table) == n && touched[k] == nil {
					subs = append(subs, s)
				}
			}
			for k, fl := range flowsOf {
				if int(k.table) != n || len(fl) == 0 {
					continue
				}
				if p := prev[k]; c.Replace && p != nil && slices.Equal(p.flows, fl) {
					subs = append(subs, p)
				} else if g := touched[k]; g != nil && g.small {
					subs = append(subs, g.old.derive(fl, g.rm, g.kept))
				} else {
					subs = append(subs, newSubtable(k.mask, fl))
				}
			}
			nt.tables[n] = newClassifier(subs)
		}
	}
	// The rule limit, once the subtables know their distinct keys.
	if c.Replace || changed[0] {
		if n := nt.NumRules(); n > steer.MaxRules {
			return nil, fmt.Errorf("table 0: %d distinct matches, the XDP classifier holds %d (flows that differ only in priority count once): %w",
				n, steer.MaxRules, ErrTooManyFlows)
		}
	}

	slices.Sort(replaced)
	if c.Replace {
		nt.flows = make([]*Entry, 0, len(adds))
		nt.timed = nil
		nt.room = new(atomic.Bool)
	} else {
		nt.flows = withoutIDs(withoutIDs(t.flows, gone), replaced)
		nt.timed = withoutIDs(withoutIDs(t.timed, gone), replaced)
		if len(adds) > 0 {
			if !t.room.CompareAndSwap(false, true) {
				// Another table took the room past t's arrays: append
				// to copies.
				nt.flows, nt.timed = slices.Clip(nt.flows), slices.Clip(nt.timed)
			}
			nt.room = new(atomic.Bool) // what nt appends is nt's
		}
	}
	for _, e := range withoutIDs(byID(adds), replaced) {
		nt.flows = append(nt.flows, e)
		if e.Flow.IdleTimeout > 0 || e.Flow.HardTimeout > 0 {
			nt.timed = append(nt.timed, e)
		}
	}
	return nt, nil
}

// touchedGroup is a group of flows (a table and an effective mask) that a
// change touches: its subtable before, the flows the change adds to it
// and those it deletes from it.
type touchedGroup struct {
	old  *subtable
	adds []*Entry
	gone []*Entry // old flows c.Delete (or a group's delete) takes, by ID
	// small is set by smallChange: old's subtable derives the new one
	// (subtable.derive), rm being old's flows that go and kept the adds
	// that stay.
	small    bool
	rm, kept []*Entry
}

// smallChange is the flows of g after the change, by ID, for a change
// small beside g.old, whose every flow holds its key's slot alone
// (subtable.takesSmall): the only old flow an add can have the same
// match as is the one the add's key finds, so adds are matched against
// it by a probe, not by hashing every flow of the group
// (replaceSameMatches). It appends to replaced the IDs of the flows an
// add replaced, old or added, and sets g.rm, g.kept and g.small.
func (g *touchedGroup) smallChange(replaced []uint64) ([]*Entry, []uint64) {
	g.small = true
	g.rm = slices.Clone(g.gone)
	kept := slices.Clone(g.adds)
	replaced = replaceSameMatches(kept, replaced) // adds among themselves
	for _, a := range kept {
		if a == nil {
			continue
		}
		if e := g.old.find(&a.mkey); e != nil && sameMatch(e.Flow, a.Flow) && !slices.Contains(g.gone, e) {
			g.rm = append(g.rm, e)
			replaced = append(replaced, e.id())
		}
	}
	g.kept = slices.DeleteFunc(kept, func(e *Entry) bool { return e == nil })
	ids := make([]uint64, len(g.rm))
	for i, e := range g.rm {
		ids[i] = e.id()
	}
	slices.Sort(ids)
	// The adds' IDs are above every installed one (Apply gives them from
	// nextID, and KeepIDs asks for them so).
	fl := withoutIDs(g.old.flows, ids)
	return append(append(make([]*Entry, 0, len(fl)+len(g.kept)), fl...), g.kept...), replaced
}

// keepSet is the installed flows a replace may keep. A replace mostly
// gives the installed flows in the order they were installed (a table a
// controller pushes again, a dump fed back), so the i-th flow given is
// first compared with the i-th installed one; the others are looked up by
// keepHash, in an index built on the first miss. Flows whose hashes
// collide (the same masked key and priority under two masks hash alike)
// are all kept in it.
type keepSet struct {
	es    []*Entry // the flows that may be kept, by ID
	by    []int32  // by es's index: 1 + the index of the flow given that took it, 0 if none did
	built bool
	one   map[uint64]int32
	more  map[uint64][]int32 // entries whose hash an entry in one has already
}

func (k *keepSet) build() {
	k.built = true
	k.one = make(map[uint64]int32, len(k.es))
	for i, e := range k.es {
		h := keepHash(e.Flow)
		if _, ok := k.one[h]; !ok {
			k.one[h] = int32(i)
			continue
		}
		if k.more == nil {
			k.more = make(map[uint64][]int32)
		}
		k.more[h] = append(k.more[h], int32(i))
	}
}

// take returns the entry of the installed flow that f, the i-th flow
// given, is the same as (sameFlow), and takes it for f; nil if there is
// none. When an earlier flow given, the same as f, took it, it moves to
// f, and from is that flow's index (else -1): f, given later with the same
// match, replaces that one, and the installed flow is left alone, as
// ovs-ofctl replace-flows leaves a flow its file gives twice.
func (k *keepSet) take(i int, f *Flow) (e *Entry, from int) {
	if i < len(k.es) && k.by[i] == 0 && sameFlow(k.es[i].Flow, f) {
		k.by[i] = int32(i + 1)
		return k.es[i], -1
	}
	if !k.built {
		k.build()
	}
	h := keepHash(f)
	try := func(j int32) bool { return sameFlow(k.es[j].Flow, f) }
	j, ok := k.one[h]
	if !ok || !try(j) {
		ok = false
		for _, m := range k.more[h] {
			if try(m) {
				j, ok = m, true
				break
			}
		}
	}
	if !ok {
		return nil, -1
	}
	from = int(k.by[j]) - 1 // (flows that are the same have one match: one entry is)
	k.by[j] = int32(i + 1)
	return k.es[j], from
}

// shareless returns a copy of f, an installed flow, that newEntry may own:
// a shallow one without the ID, sharing the actions (read-only) unless a
// port name in them is not the one this table interns (f may be of a table
// that was rolled back, whose names this one never had): newEntry would
// write it.
func (sc *addScratch) shareless(f *Flow) *Flow {
	c := *f
	c.ID = 0
	for i := range c.Actions {
		if p := c.Actions[i].Port; unsafe.StringData(sc.intern(p)) != unsafe.StringData(p) {
			c.Actions = slices.Clone(c.Actions)
			break
		}
	}
	return &c
}

// keepHash hashes what a replace compares to keep an installed flow.
func keepHash(f *Flow) uint64 {
	if f == nil {
		return 0
	}
	return matchHash(f) ^ uint64(f.Table)<<56 ^ f.Cookie*0xff51afd7ed558ccd ^ uint64(len(f.Actions))
}

// sameFlow reports whether a and b are the same flow but for the ID: what
// a replace keeps.
func sameFlow(a, b *Flow) bool {
	return a.Table == b.Table && a.Priority == b.Priority && a.Cookie == b.Cookie &&
		a.IdleTimeout == b.IdleTimeout && a.HardTimeout == b.HardTimeout &&
		a.Match == b.Match && slices.Equal(a.Actions, b.Actions)
}

// portNames interns the port names of a lineage's flows: a parsed flow's
// names are slices of its text, which an installed flow should not keep
// alive.
type portNames map[string]string

// addScratch is what one Apply's newEntry calls share: the port names
// interned (the table's, copied before the first new one is added), and
// a buffer to compile programs in.
type addScratch struct {
	names  portNames
	copied bool
	own    bool // Change.Owned
	ops    []steer.Op
	comp   compiler
	boxes  []ownedBox // what is left of the last chunk
	boxOps []steer.Op // what is left of the last chunk of the boxes' ops
	left   int        // flows still to add, this one included
	last   lastProgram
}

// lastProgram is what newEntry last worked out from a flow's actions, with
// what it worked it out from: the next flow with the same actions (the
// same slice: the flows of a FlowParser with the same action text share
// it) and table shares it, program and all (a program is read-only), and
// its actions are not checked, interned or compiled again.
type lastProgram struct {
	ok      bool
	acts    *Action // unsafe.SliceData of the actions, and their number
	n       int
	table   uint8
	strict  bool
	prog    Program
	portSig uint64        // portSignature
	verdict steer.Verdict // Entry.verdict and Entry.fast (fastPathOf)
	fast    string
}

// same reports whether f's actions and table, with strict, are what l was
// worked out from.
func (l *lastProgram) same(f *Flow, strict bool) bool {
	return l.ok && l.acts == unsafe.SliceData(f.Actions) && l.n == len(f.Actions) && l.table == f.Table && l.strict == strict
}

// ownedBox is an Entry of an owned flow with its counters.
type ownedBox struct {
	e     Entry
	stats entryStats
}

// boxChunk is the most ownedBoxes allocated at once: a bulk add then
// allocates once per boxChunk flows, not once per flow, and an entry that
// outlives the others of its chunk keeps at most that many alive.
const boxChunk = 128

// ownedBox returns a zeroed box for the next flow; sc.left says how many
// flows are still to come.
func (sc *addScratch) ownedBox() *ownedBox {
	if len(sc.boxes) == 0 {
		sc.boxes = make([]ownedBox, max(1, min(boxChunk, sc.left)))
	}
	b := &sc.boxes[0]
	sc.boxes = sc.boxes[1:]
	return b
}

// ownedOps returns room for the n ops of an owned flow's program (full
// capacity), out of a chunk as its box is when n is at most inlineOps.
func (sc *addScratch) ownedOps(n int) []steer.Op {
	if n > inlineOps {
		return make([]steer.Op, n)
	}
	if n > len(sc.boxOps) {
		sc.boxOps = make([]steer.Op, inlineOps*max(1, min(boxChunk, sc.left)))
	}
	o := sc.boxOps[:n:n]
	sc.boxOps = sc.boxOps[n:]
	return o
}

// program compiles f's program against ports, its ops in stable memory
// (stable(n) gives room for n), and works out what else comes of f's
// actions, into sc.last.
func (sc *addScratch) program(f *Flow, ports PortResolver, strict bool, stable func(int) []steer.Op) error {
	// The ops go to the scratch buffer, then into stable memory.
	prog, err := sc.comp.compile(sc.ops, f.Actions, ports, strict, f.Table)
	if err != nil {
		sc.last.ok = false
		return err
	}
	sc.ops = prog.ops[:0] // (grown, if it had to)
	prog.ops = append(stable(len(prog.ops))[:0], prog.ops...)
	sc.last.set(f, strict, prog, portSignature(f, ports))
	return nil
}

// set makes l what was worked out from f's actions with strict: prog
// compiled from them, sig their port signature.
func (l *lastProgram) set(f *Flow, strict bool, prog Program, sig uint64) {
	verdict, fast := fastPathOf(f, &prog)
	acts := unsafe.SliceData(f.Actions)
	*l = lastProgram{ok: acts != nil, acts: acts, n: len(f.Actions), table: f.Table, strict: strict,
		prog: prog, portSig: sig, verdict: verdict, fast: fast}
}

func newAddScratch(names portNames) *addScratch {
	return &addScratch{names: names, ops: make([]steer.Op, 0, 16)}
}

// intern returns the interned string equal to s.
func (sc *addScratch) intern(s string) string {
	if s == "" {
		return s
	}
	if c, ok := sc.names[s]; ok {
		return c
	}
	if !sc.copied {
		sc.names = maps.Clone(sc.names)
		if sc.names == nil {
			sc.names = make(portNames)
		}
		sc.copied = true
	}
	c := strings.Clone(s)
	sc.names[c] = c
	return c
}

// internInPlace interns *p, writing only when *p is not the interned
// string itself: an owned flow's actions may be an installed flow's,
// shared and read-only, whose names are interned already.
func (sc *addScratch) internInPlace(p *string) {
	if c := sc.intern(*p); unsafe.StringData(c) != unsafe.StringData(*p) {
		*p = c
	}
}

// applyGroups returns the groups after c's group changes and the IDs of the
// groups that go, checking them all (see Apply).
func (t *Table) applyGroups(c *Change, ports PortResolver, now int64) (map[uint32]*GroupEntry, map[uint32]bool, error) {
	if !c.ReplaceGroups && len(c.DeleteGroups) == 0 && len(c.AddGroups) == 0 && len(c.ModGroups) == 0 {
		return t.groups, nil, nil
	}
	groups := make(map[uint32]*GroupEntry, len(t.groups)+len(c.AddGroups))
	if !c.ReplaceGroups {
		maps.Copy(groups, t.groups)
	}
	for _, id := range c.DeleteGroups {
		if groups[id] == nil {
			return nil, nil, fmt.Errorf("delete group %d: %w", id, ErrNoSuchGroup)
		}
		delete(groups, id)
	}
	for i, g := range c.AddGroups {
		var err error
		switch {
		case g == nil:
			err = fmt.Errorf("nil group: %w", ErrInvalid)
		case groups[g.ID] != nil:
			err = fmt.Errorf("add group %d: %w", g.ID, ErrGroupExists)
		default:
			groups[g.ID], err = checkedGroup(g, ports, !c.AllowMissingPorts, now)
		}
		if err != nil {
			return nil, nil, &ItemError{What: "group", Index: i, Of: len(c.AddGroups), Err: err}
		}
	}
	for i, g := range c.ModGroups {
		var err error
		switch {
		case g == nil:
			err = fmt.Errorf("nil group: %w", ErrInvalid)
		case groups[g.ID] == nil:
			err = fmt.Errorf("modify group %d: %w", g.ID, ErrNoSuchGroup)
		default:
			groups[g.ID], err = checkedGroup(g, ports, !c.AllowMissingPorts, now)
		}
		if err != nil {
			return nil, nil, &ItemError{What: "group", Index: i, Of: len(c.ModGroups), Err: err}
		}
	}
	gone := make(map[uint32]bool)
	for id := range t.groups {
		if groups[id] == nil {
			gone[id] = true
		}
	}
	// Chains: every group a bucket sends to exists, and none loops back.
	for _, ge := range groups {
		for _, ref := range ge.Group.GroupRefs() {
			if groups[ref] != nil {
				continue
			}
			if gone[ref] {
				return nil, nil, fmt.Errorf("group %d: a bucket of group %d sends to it: %w", ref, ge.Group.ID, ErrGroupInUse)
			}
			return nil, nil, fmt.Errorf("group %d: bucket sends to group %d: %w", ge.Group.ID, ref, ErrNoSuchGroup)
		}
	}
	if id, ok := groupLoop(groups); ok {
		return nil, nil, fmt.Errorf("group %d: its buckets lead back to it: %w", id, ErrInvalid)
	}
	return groups, gone, nil
}

func checkedGroup(g *Group, ports PortResolver, strict bool, now int64) (*GroupEntry, error) {
	if err := g.Check(); err != nil {
		return nil, fmt.Errorf("group %d: %w", g.ID, err)
	}
	return newGroupEntry(g, ports, strict, now, nil)
}

// groupLoop finds a group whose chain of buckets leads back to itself.
func groupLoop(groups map[uint32]*GroupEntry) (uint32, bool) {
	const (
		unseen = iota
		open
		done
	)
	state := make(map[uint32]uint8, len(groups))
	var visit func(id uint32) bool
	visit = func(id uint32) bool {
		switch state[id] {
		case open:
			return true
		case done:
			return false
		}
		state[id] = open
		if ge := groups[id]; ge != nil {
			for _, ref := range ge.Group.GroupRefs() {
				if visit(ref) {
					return true
				}
			}
		}
		state[id] = done
		return false
	}
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		if visit(id) {
			return id, true
		}
	}
	return 0, false
}

// checkGroupRefs checks that every group actions send to exists.
func checkGroupRefs(actions []Action, groups map[uint32]*GroupEntry) error {
	for i := range actions {
		if id, ok := actions[i].GroupRef(); ok && groups[id] == nil {
			return fmt.Errorf("group:%d: %w", id, ErrNoSuchGroup)
		}
	}
	return nil
}

// withoutIDs returns the entries of es (sorted by ID) whose IDs are not in
// ids (sorted). It returns es itself, not a copy, when nothing goes.
func withoutIDs(es []*Entry, ids []uint64) []*Entry {
	if len(ids) == 0 || len(es) == 0 {
		return es
	}
	if len(ids) > len(es)/64 {
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
		if len(out) == len(es) {
			return es
		}
		return out
	}
	// A few IDs of many flows: found by binary search, the runs between
	// them copied, where loading every Entry for its ID missed the cache
	// once a flow.
	out := make([]*Entry, 0, len(es))
	from := 0
	for _, id := range ids {
		i, ok := slices.BinarySearchFunc(es[from:], id, func(e *Entry, id uint64) int { return cmp.Compare(e.id(), id) })
		if !ok {
			continue
		}
		out = append(out, es[from:from+i]...)
		from += i + 1
	}
	if from == 0 {
		return es // none of ids is here
	}
	return append(out, es[from:]...)
}

// newEntry validates and compiles f as flow id against ports; its port
// names are interned in sc. With sc.own the entry keeps f itself (see
// Change.Owned), else a copy. strict: every port f names must resolve (a
// flow being added); else a port that does not compiles as in Recompile.
func newEntry(f *Flow, id uint64, ports PortResolver, sc *addScratch, strict bool, now int64) (*Entry, error) {
	if f == nil {
		return nil, fmt.Errorf("nil flow: %w", ErrInvalid)
	}
	if f.Table > MaxTable {
		return nil, fmt.Errorf("table %d out of range 0..%d: %w", f.Table, MaxTable, ErrInvalid)
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
	if m.Mask[steer.OffFlags] != 0 || binary.LittleEndian.Uint32(m.Mask[60:]) != 0 {
		return nil, fmt.Errorf("mask covers padding bytes: %w", ErrInvalid)
	}
	// An owned flow with the last one's actions is checked, interned and
	// compiled already (see lastProgram).
	known := sc.own && sc.last.same(f, strict)
	if !known {
		for i := range f.Actions {
			if msg := flowActionProblem(f, &f.Actions[i]); msg != "" {
				return nil, fmt.Errorf("%s: %w", msg, ErrInvalid)
			}
		}
	}
	var inPort uint32
	live := true
	if m.InPort != "" {
		no, ok := resolvePort(ports, m.InPort)
		if !ok && strict {
			return nil, fmt.Errorf("in_port %q: %w", m.InPort, ErrNoSuchPort)
		}
		inPort, live = no, ok
	}
	var e *Entry
	var fl *Flow
	var err error
	if sc.own {
		// The flow is the table's: the entry and its counters from a
		// chunk of such boxes, its program's ops (when few) from a chunk
		// of theirs, or another flow's program when it has its actions.
		box := sc.ownedBox()
		e, fl = &box.e, f
		e.stats = &box.stats
		sc.internInPlace(&fl.Match.InPort)
		if !known {
			for i := range fl.Actions {
				sc.internInPlace(&fl.Actions[i].Port)
			}
			err = sc.program(f, ports, strict, sc.ownedOps)
		}
	} else {
		// One allocation for the entry, its program's ops and its
		// actions (when few), its counters and its copy of the flow: a
		// packet's flow and its ops then sit next to each other in
		// memory.
		box := &struct {
			e     Entry
			ops   [inlineOps]steer.Op
			stats entryStats
			flow  Flow
			acts  [inlineActions]Action
		}{flow: *f}
		e, fl = &box.e, &box.flow
		e.stats = &box.stats
		fl.Match.InPort = sc.intern(f.Match.InPort)
		if n := len(f.Actions); n <= inlineActions {
			fl.Actions = box.acts[:n:n]
			copy(fl.Actions, f.Actions)
		} else {
			fl.Actions = slices.Clone(f.Actions)
		}
		for i := range fl.Actions {
			fl.Actions[i].Port = sc.intern(fl.Actions[i].Port)
		}
		err = sc.program(fl, ports, strict, func(n int) []steer.Op {
			if n <= inlineOps {
				return box.ops[:n:n]
			}
			return make([]steer.Op, n)
		})
	}
	if err != nil {
		return nil, err
	}
	l := &sc.last
	fl.ID = id
	e.stats.installed = now
	e.Flow = fl
	e.Rank = steer.MakeRank(fl.Priority, uint32(id))
	e.Program = l.prog
	e.InPort = inPort
	e.live = live
	e.mkey = fl.Match.Key
	e.portSig, e.verdict, e.fast = l.portSig, l.verdict, l.fast
	e.mkey.SetInPort(inPort)
	return e, nil
}

// inlineOps is the most ops a program keeps inside its Entry's
// allocation; inlineActions the most actions a flow keeps there.
const (
	inlineOps     = 4
	inlineActions = 2
)

// matchHasher is matchHash; tests replace it to force collisions.
var matchHasher = matchHash

// replaceSameMatches applies OpenFlow's add to the flows of one group, in
// order (the installed ones, then the adds): a flow with the same match as
// a later one is replaced by it. It sets the replaced flows to nil in fl
// and appends their IDs to replaced.
//
// The flows are sorted by the hash of what makes them the same flow
// (matchHasher), and only flows whose hashes are equal are compared: a map
// of 160k hashes, probed once per add, missed the cache every time (20 ms
// of a 140 ms BenchmarkBulkApply/install-owned).
func replaceSameMatches(fl []*Entry, replaced []uint64) []uint64 {
	items := make([]radix.Item, len(fl))
	for i, e := range fl {
		// The hash's high half orders; runs of an equal half are few, and
		// compared by the whole hash, then the match. Four passes, not eight.
		items[i] = radix.Item{Key: matchHasher(e.Flow) >> 32, Index: i}
	}
	items = radix.Sort(items)
	hashes := make([]uint64, 0, 8)
	var gone []int
	for a := 0; a < len(items); {
		b := a + 1
		for b < len(items) && items[b].Key == items[a].Key {
			b++
		}
		if run := items[a:b]; len(run) > 1 {
			// In index order (the sort is stable): each flow is replaced
			// by the next one after it with the same match, if any.
			hashes = hashes[:0]
			for _, it := range run {
				hashes = append(hashes, matchHasher(fl[it.Index].Flow))
			}
			gone = gone[:0]
			for x, it := range run {
				f := fl[it.Index].Flow
				for y := x + 1; y < len(run); y++ {
					if hashes[y] == hashes[x] && sameMatch(fl[run[y].Index].Flow, f) {
						gone = append(gone, it.Index)
						break
					}
				}
			}
			for _, i := range gone {
				replaced = append(replaced, fl[i].id())
				fl[i] = nil
			}
		}
		a = b
	}
	return replaced
}

// matchHash hashes what makes two flows of a group the same flow for
// OpenFlow's add: priority, in_port and key (the table and mask are the
// group's).
func matchHash(f *Flow) uint64 {
	h := hashKey(&f.Match.Key) ^ uint64(f.Priority)*0x9e3779b97f4a7c15
	for i := 0; i < len(f.Match.InPort); i++ {
		h = (h ^ uint64(f.Match.InPort[i])) * 0x100000001b3
	}
	return h
}

func sameMatch(a, b *Flow) bool {
	return a.Table == b.Table && a.Priority == b.Priority && a.Match.InPort == b.Match.InPort && a.Match.Key == b.Match.Key
}

// Recompile returns a snapshot whose flows and groups are compiled against
// ports, after a port was added or removed. It never fails: an output to a
// port that is gone compiles to a counted drop (DropPortGone), a flow whose
// in_port is gone stays installed but matches nothing (it is left out of the
// steering table too) until a port of that name comes back, and a bucket
// watching a port that is gone is dead. Flows whose compilation does not
// change keep their Entry; the others get a new Entry with the same ID, rank
// and counters. When nothing changes Recompile returns t.
func (t *Table) Recompile(ports PortResolver) *Table {
	var changed map[uint64]*Entry
	touched := make(map[subKey]bool)
	var last lastProgram // flows that share their actions share the program (see lastProgram)
	delta := &steerDelta{from: t.gen}
	for _, e := range t.flows {
		ne := e.recompiled(ports, &last)
		if ne == nil {
			continue
		}
		if changed == nil {
			changed = make(map[uint64]*Entry)
		}
		changed[e.id()] = ne
		k := subKeyOf(e.Flow)
		touched[k] = true
		if k.table == 0 && delta != nil {
			if len(delta.keys)+2 > maxDeltaKeys {
				delta = nil
			} else {
				delta.keys = append(delta.keys, maskedKey{k.mask, e.mkey}, maskedKey{k.mask, ne.mkey})
			}
		}
	}
	var groups map[uint32]*GroupEntry
	for id, ge := range t.groups {
		if len(ge.Group.PortRefs()) == 0 {
			continue
		}
		if groups == nil {
			groups = maps.Clone(t.groups)
		}
		groups[id] = ge.recompiled(ports)
	}
	if changed == nil && groups == nil {
		return t
	}
	nt := t.derive()
	nt.delta = delta
	if groups != nil {
		nt.groups = groups
	}
	if changed == nil {
		return nt
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
	nt.flows = swap(t.flows)
	nt.timed = swap(t.timed)
	nt.room = new(atomic.Bool) // the arrays are nt's own: t's room stays for t's next table
	for n, cl := range t.tables {
		hit := false
		subs := make([]*subtable, len(cl.subs))
		for i, s := range cl.subs {
			if touched[subKey{uint8(n), s.mask}] {
				s = newSubtable(s.mask, swap(s.flows))
				hit = true
			}
			subs[i] = s
		}
		if hit {
			nt.tables[n] = newClassifier(subs)
		}
	}
	return nt
}

// recompiled returns e compiled against ports, or nil when that changes
// nothing. It checks before compiling, so the common case does not allocate,
// and takes last's program when e's flow has last's actions.
func (e *Entry) recompiled(ports PortResolver, last *lastProgram) *Entry {
	f := e.Flow
	var inPort uint32
	live := true
	if f.Match.InPort != "" {
		inPort, live = resolvePort(ports, f.Match.InPort)
	}
	sig := portSignature(f, ports)
	if inPort == e.InPort && live == e.live && sig == e.portSig {
		return nil
	}
	if !last.same(f, false) {
		prog, err := compileProgram(f.Actions, ports, false, f.Table)
		if err != nil {
			// The flow compiled when it was added; only ports changed since.
			panic(fmt.Sprintf("flowtable: recompiling flow %d: %v", f.ID, err))
		}
		last.set(f, false, prog, sig)
	}
	ne := &Entry{Flow: f, Rank: e.Rank, Program: last.prog, InPort: inPort, live: live, mkey: e.Flow.Match.Key,
		portSig: sig, verdict: last.verdict, fast: last.fast, stats: e.stats}
	ne.mkey.SetInPort(inPort)
	return ne
}

// portsResolve reports whether every port f names resolves: a flow kept by
// a replace must pass the check newEntry makes of an added one.
func portsResolve(f *Flow, ports PortResolver) bool {
	if f.Match.InPort != "" {
		if _, ok := resolvePort(ports, f.Match.InPort); !ok {
			return false
		}
	}
	for i := range f.Actions {
		if name := f.Actions[i].PortRef(); name != "" {
			if _, ok := resolvePort(ports, name); !ok {
				return false
			}
		}
	}
	return true
}

// portSignature hashes what the ports a flow's actions name resolve to
// (0 for a name that does not): when it has not changed, neither has the
// flow's program. Recompile compares it without compiling.
func portSignature(f *Flow, ports PortResolver) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for i := range f.Actions {
		if name := f.Actions[i].PortRef(); name != "" {
			no, _ := resolvePort(ports, name)
			h = (h ^ uint64(no)) * 0x100000001b3
		}
	}
	return h
}
