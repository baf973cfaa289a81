package datapath

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
	"github.com/xvs-project/xvs/internal/radix"
)

// The XDP fast path, the datapath's side. flowtable compiles a table-0 flow
// whose actions XDP can carry out to a forward rule (steer.VerdictForward);
// the switch decides whether it may run in XDP here (the fast path is on,
// its output port takes redirected frames, a record slot is free), demotes
// it to a redirect rule otherwise, and keeps the record slots:
//
//   - A flow's record goes into a slot no rule points at and no program run
//     can still read, before the rule naming it is written (PutLate, after
//     the userspace snapshot that has the flow: a record hands some frames
//     to userspace, so a forward rule is a redirect rule for the sync's
//     invariant).
//   - A record is never rewritten. A flow whose program changes (a port came
//     or went) gets a new slot and its rule is repointed; the old slot is
//     retired when the sync is through, and reused only after an RCU grace
//     period (bpf.Objects.Synchronize), once its last hits are credited and
//     its counters cleared. The program also checks that a rule's record
//     names the rule's flow, so no forward rule ever acts on another flow's
//     record.
//   - What a record forwarded is counted per slot and per CPU, apart from
//     the rule, so a repointed rule loses nothing: harvests credit each
//     slot's hits to the flow whose record it holds.

// Where a flow runs, as FlowInfo.Datapath says.
const (
	DatapathXDP  = "xdp"  // the XDP program handles the flow's packets itself
	DatapathUser = "user" // its packets reach userspace (FlowInfo.DatapathReason says why)
)

// Reasons a forward rule is demoted to a redirect (besides a port's reason
// from redirectTarget, which is prefixed with the port's name).
const (
	reasonFastPathOff = "fast_path_off"
	reasonRecordsFull = "records_full"
)

type slotState uint8

const (
	slotFree     slotState = iota // ready for use, counters clear
	slotLive                      // holds the record of a flow a rule may point at
	slotRetired                   // no rule points at it any more; waits for a grace period
	slotReleased                  // being released: a grace period is under way
)

// recordSlot is one action record slot of the kernel's records map.
type recordSlot struct {
	state slotState
	flow  uint64           // the flow whose record the slot holds
	entry *flowtable.Entry // the entry the record was compiled from; its counters get the hits
	out   uint32           // the record's output ofport; 0 = in_port
	seen  bpf.CounterValue // hits credited so far
}

// fastPath is the switch's fast path state. mu guards it; it is taken
// under Switch.mu by the steering sync, and on its own by harvests and
// status reads (never while holding kernelHits.mu).
type fastPath struct {
	off      bool // Config.FastPathOff: every forward rule is demoted
	maxSlots int  // Config.FastPathFlows: the most the kernel's maps grow to
	capSlots int  // the slots the kernel's maps have now (bpf.Objects.Records)

	mu      sync.Mutex
	slots   []recordSlot // by slot number; grows up to capSlots
	byFlow  flowSlots    // flow -> the slot its rule points at
	free    []uint32     // slotFree slots, taken from the end
	retired []uint32     // slotRetired slots
	full    []uint64     // flows demoted because no slot was free, by ID
	// txMoved: a port's tx changed since the last full sync; a sync by
	// delta would leave the other keys' rules as that port was.
	txMoved bool
	tx      [steer.MaxPorts]portTx
}

// portTx is whether a port takes frames redirected by XDP.
type portTx struct {
	ok  bool
	why string // when not ok: the token shown as a flow's reason (with the port's name)
}

func newFastPath(off bool, maxSlots, capSlots int) *fastPath {
	return &fastPath{off: off, maxSlots: maxSlots, capSlots: capSlots}
}

// flowSlots is which record slot each flow's rule points at: the flows'
// IDs ascending, and their slots. A sync builds it from the rules it
// assigns (flowSlotsBuilder) and sorts it once, where a map took an insert
// that missed the cache for every flow of a bulk install (30 ms of 160k);
// the next sync looks up the rules' flows in it, in about the order they
// lie in (SteeringFlows gives a mask's rules by flow ID).
type flowSlots struct {
	ids   []uint64
	slots []uint32
}

func (fs *flowSlots) len() int { return len(fs.ids) }

// slot returns the slot of flow id's rule, if it has one.
func (fs *flowSlots) slot(id uint64) (uint32, bool) {
	at := 0
	return fs.slotFrom(id, &at)
}

// slotFrom is slot for IDs asked mostly in ascending order, as a sync
// asks them (the rules of a group by ID): it looks at *at, just past the
// last one found, before it searches, and moves *at past what it finds.
// (A binary search a rule over 160k IDs was 6 ms of a one-flow change.)
func (fs *flowSlots) slotFrom(id uint64, at *int) (uint32, bool) {
	i := *at
	if i >= len(fs.ids) || fs.ids[i] != id {
		var ok bool
		if i, ok = slices.BinarySearch(fs.ids, id); !ok {
			return 0, false
		}
	}
	*at = i + 1
	return fs.slots[i], true
}

// flowSlotsBuilder collects a sync's (flow, slot) pairs, in any order;
// each flow once.
type flowSlotsBuilder []radix.Item

func (b *flowSlotsBuilder) add(id uint64, slot uint32) {
	*b = append(*b, radix.Item{Key: id, Index: int(slot)}) // the sort carries the slot as the item's index
}

func (b flowSlotsBuilder) build() flowSlots {
	sorted := radix.Sort(b)
	fs := flowSlots{ids: make([]uint64, len(sorted)), slots: make([]uint32, len(sorted))}
	for i, it := range sorted {
		fs.ids[i], fs.slots[i] = it.Key, uint32(it.Index)
	}
	return fs
}

// The kernel's record maps start with InitialFastPathFlows slots (fewer when
// Config.FastPathFlows says so) and grow when the rules want more: to an
// eighth more than they want, at least twice what they had, in multiples of
// recordSlotGrain, up to Config.FastPathFlows. A grow adds pages of slots
// to the maps the program reads (bpf.Objects.GrowRecords; no program load):
// 41-53 ms from 4096 to 180224 slots here, mostly allocating the records'
// memory, so still few and large.
const recordSlotGrain = 4096

// InitialFastPathFlows is how many record slots the kernel's maps start with.
const InitialFastPathFlows = 4096

// growSlots is how many slots the kernel's maps grow to when need are
// wanted and there are now: past need, a multiple of recordSlotGrain, at
// most max.
func growSlots(need, now, most int) int {
	n := max(need+need/8, 2*now)
	n = (n + recordSlotGrain - 1) / recordSlotGrain * recordSlotGrain
	return min(n, most)
}

// growRecordsLocked makes room for need record slots in the kernel, as far
// as Config.FastPathFlows allows. When the kernel refuses, the slots stay as
// they were and the flows past them run in userspace (records_full).
// fp.mu is held.
func (s *Switch) growRecordsLocked(need int) {
	fp := s.fast
	if need <= fp.capSlots || fp.capSlots >= fp.maxSlots {
		return
	}
	n, was := growSlots(need, fp.capSlots, fp.maxSlots), fp.capSlots
	t0 := time.Now()
	err := s.bpf.GrowRecords(n)
	fp.capSlots = s.bpf.Records() // an error may come after the grow
	if fp.capSlots > was {
		// The trace's dry run shares the record maps, grown ones too: it
		// stays.
		s.log.Info("fast path records grew", "slots", fp.capSlots, "was", was, "took", time.Since(t0).Round(time.Millisecond))
	}
	if err != nil {
		s.log.Warn("fast path records: grow", "slots", fp.capSlots, "want", n, "err", err)
	}
}

// isFull reports whether flow id was demoted because no slot was free
// (fp.mu held).
func (fp *fastPath) isFull(id uint64) bool {
	_, ok := slices.BinarySearch(fp.full, id)
	return ok
}

// recordTxn is what assignRecordsLocked (or deltaPlanLocked) did, to
// commit when the sync went through or abort when it did not.
type recordTxn struct {
	byFlow flowSlotsBuilder
	// patch: byFlow is not the whole assignment but the flows of gone
	// that have a slot now (a sync by delta); the others stay as they are.
	patch bool
	gone  []uint64       // by ID
	full  []uint64       // by ID
	fresh []uint32       // slots written for this sync
	recs  []steer.Record // the records of fresh[put:], not written yet
	put   int            // how many of fresh are written
}

// recordBatch is how many records assignRecordsLocked writes at once: a
// bulk install's records (400 bytes each) go through a buffer of this
// many, not a copy of them all (160k flows: 64 MB of fresh memory).
const recordBatch = 4096

// putRecordsLocked writes the records of txn not written yet.
func (s *Switch) putRecordsLocked(txn *recordTxn) error {
	if len(txn.recs) == 0 {
		return nil
	}
	err := s.bpf.PutRecords(txn.fresh[txn.put:], txn.recs)
	txn.put = len(txn.fresh)
	txn.recs = txn.recs[:0]
	return err
}

// assignRecordsLocked decides for every forward rule of st, whose flows
// are flows (flowtable.Table.SteeringFlows), whether it runs in XDP: it
// demotes the rules that may not to redirect rules, and fills in the
// others' record slots, writing the records of flows that need a new one.
// A flow keeps its slot while its record stays the same; when slots run
// out, the flows of the highest priority get them first. The caller holds
// s.mu; the records it writes are not pointed at by any rule yet.
func (s *Switch) assignRecordsLocked(st *steer.Table, flows []*flowtable.Entry) (*recordTxn, error) {
	fp := s.fast
	fp.mu.Lock()
	defer fp.mu.Unlock()
	forward := 0
	for i := range st.Rules {
		if st.Rules[i].Verdict == steer.VerdictForward {
			forward++
		}
	}
	// Every forward rule keeps or gets a slot, mostly: sized for them, the
	// (flow, slot) list of a bulk install does not grow 160k entries one
	// doubling at a time.
	txn := &recordTxn{byFlow: make(flowSlotsBuilder, 0, forward)}
	wants := make([]want, 0, forward) // rules whose flow needs a new slot
	at := 0                           // where in fp.byFlow the last rule's flow was
	for i := range st.Rules {
		if st.Rules[i].Verdict == steer.VerdictForward {
			fp.assignLocked(&st.Rules[i], flows[i], txn, &at, &wants)
		}
	}
	if err := s.giveSlotsLocked(txn, wants); err != nil {
		return nil, err
	}
	return txn, nil
}

// assignLocked is assignRecordsLocked for one rule r of flow e: it demotes
// a forward rule that may not run in XDP, fills in the slot of one that
// keeps its flow's, and adds the others to wants. at is slotFrom's.
// fp.mu is held.
func (fp *fastPath) assignLocked(r *steer.Rule, e *flowtable.Entry, txn *recordTxn, at *int, wants *[]want) {
	if r.Verdict != steer.VerdictForward {
		return
	}
	if fp.off {
		r.Verdict = steer.VerdictRedirect
		return
	}
	slot, ok := fp.keepSlotLocked(e, r.Flow, txn, at)
	switch {
	case !ok:
		r.Verdict = steer.VerdictRedirect
	case slot >= 0:
		r.Arg = uint32(slot)
	default:
		*wants = append(*wants, want{r, e})
	}
}

// giveSlotsLocked gives the rules of wants new record slots and writes
// their records, the highest ranks first, demoting those left without one
// (fp.mu held). On error txn is aborted.
func (s *Switch) giveSlotsLocked(txn *recordTxn, wants []want) error {
	fp := s.fast
	s.growRecordsLocked(len(fp.slots) + len(wants) - len(fp.free) - len(fp.retired))
	// Room for the records of as many as may get a slot, at once: they
	// are 400 bytes each, and a bulk install writes thousands.
	room := min(len(wants), len(fp.free)+len(fp.retired)+max(0, fp.capSlots-len(fp.slots)))
	// The highest ranks first: when not all fit, they get the slots. The
	// order is also where the records lie: by rank, flows of one priority
	// get their slots in install order, so flows installed together, which
	// tend to be active together, share cache lines and pages. (The rules'
	// order scattered the records: with 1000-10000 active flows of a 100k
	// table, the XDP program took 1.4-1.8x as long a frame.)
	sortByRank(wants)
	txn.fresh = make([]uint32, 0, room)
	txn.recs = make([]steer.Record, 0, min(room, recordBatch))
	txn.full = make([]uint64, 0, len(wants)-room) // the flows left without one
	fp.slots = slices.Grow(fp.slots, min(len(wants), max(0, fp.capSlots-len(fp.slots))))
	for i, w := range wants {
		if !s.slotLeftLocked() {
			for _, w := range wants[i:] {
				w.rule.Verdict = steer.VerdictRedirect
				txn.full = append(txn.full, w.entry.Flow.ID)
			}
			break
		}
		slot := s.newSlotLocked(w.entry, txn)
		if slot < 0 {
			w.rule.Verdict = steer.VerdictRedirect
			continue
		}
		w.rule.Arg = uint32(slot)
		if len(txn.recs) == recordBatch {
			if err := s.putRecordsLocked(txn); err != nil {
				fp.abortLocked(txn) // some may be written: retired, not freed
				return fmt.Errorf("sync steering: %w", err)
			}
		}
	}
	slices.Sort(txn.full)
	err := s.putRecordsLocked(txn)
	txn.recs = nil
	if err != nil {
		fp.abortLocked(txn) // some may be written: retired, not freed
		return fmt.Errorf("sync steering: %w", err)
	}
	return nil
}

// want is a forward rule whose flow needs a new record slot.
type want struct {
	rule  *steer.Rule
	entry *flowtable.Entry
}

// sortByRank orders wants by rank, the highest first. Ranks are distinct.
// A bulk install's 160k wants are radix sorted (internal/radix: three
// passes, 8 ms of a BenchmarkBulkInstall profile) where a comparison sort
// compared through the rule pointers 17 times each (34 ms). A few are
// sorted by comparison.
func sortByRank(wants []want) {
	desc := func(a, b want) int { return cmp.Compare(b.rule.Rank, a.rule.Rank) }
	if slices.IsSortedFunc(wants, desc) {
		// Mostly: SteeringFlows gives a mask's rules by flow ID, and at one
		// priority a later flow ranks lower.
		return
	}
	if len(wants) < 256 {
		slices.SortFunc(wants, desc)
		return
	}
	items := make([]radix.Item, len(wants))
	for i, w := range wants {
		items[i] = radix.Item{Key: ^uint64(w.rule.Rank), Index: i} // ascending complements: descending ranks
	}
	sorted := make([]want, len(wants))
	for i, it := range radix.Sort(items) {
		sorted[i] = wants[it.Index]
	}
	copy(wants, sorted)
}

// keepSlotLocked returns the record slot the rule of e (flow id) points at
// and keeps, or -1 when e needs a new one; ok is false when e may not run
// in XDP (its output port takes no redirected frames). at is slotFrom's.
// (The ID comes from the rule: loading it from e missed the cache once a
// flow of a large table.)
func (fp *fastPath) keepSlotLocked(e *flowtable.Entry, id uint64, txn *recordTxn, at *int) (slot int, ok bool) {
	old, had := fp.byFlow.slotFrom(id, at)
	if had && fp.slots[old].entry == e {
		if !fp.txOKLocked(fp.slots[old].out, e) {
			return -1, false
		}
		txn.byFlow.add(id, old)
		return int(old), true
	}
	out, ok := e.FastPathOutput()
	if !ok || !fp.txOKLocked(out, e) {
		return -1, false // (!ok does not happen: flowtable made it a forward rule)
	}
	if had {
		rec, _ := e.FastPath()
		if prev, _ := fp.slots[old].entry.FastPath(); prev == rec {
			fp.slots[old].entry = e // recompiled to the same record
			txn.byFlow.add(id, old)
			return int(old), true
		}
	}
	return -1, true
}

// slotLeftLocked reports whether takeSlotLocked may still find a slot.
func (s *Switch) slotLeftLocked() bool {
	fp := s.fast
	return len(fp.free) > 0 || len(fp.slots) < fp.capSlots || len(fp.retired) > 0
}

// newSlotLocked takes a free slot for e's record and returns it, or -1
// when no slot is free. The record is compiled into txn.recs, to be written
// with the others (a batch at a time) before assignRecordsLocked returns.
func (s *Switch) newSlotLocked(e *flowtable.Entry, txn *recordTxn) int {
	id := e.Flow.ID
	slot, ok := s.takeSlotLocked()
	if !ok {
		txn.full = append(txn.full, id)
		return -1
	}
	if len(txn.recs) < cap(txn.recs) {
		txn.recs = txn.recs[:len(txn.recs)+1] // CompileFastPath sets all of it
	} else {
		txn.recs = append(txn.recs, steer.Record{})
	}
	rec := &txn.recs[len(txn.recs)-1]
	e.CompileFastPath(rec)
	s.fast.slots[slot] = recordSlot{state: slotLive, flow: id, entry: e, out: rec.Output()}
	txn.byFlow.add(id, slot)
	txn.fresh = append(txn.fresh, slot)
	return int(slot)
}

// txOKLocked says whether a record of e whose output is out (0: in_port)
// may run: its output port takes redirected frames. An in_port output of a
// flow that matches every port is checked per packet by the XDP program
// (a port without a devmap slot hands the frame to userspace).
func (fp *fastPath) txOKLocked(out uint32, e *flowtable.Entry) bool {
	if out == 0 {
		out = e.InPort
	}
	return out == 0 || out < steer.MaxPorts && fp.tx[out].ok
}

// takeSlotLocked returns a free slot, releasing the retired ones first
// when there is none (a grace period, under the switch's lock).
func (s *Switch) takeSlotLocked() (uint32, bool) {
	fp := s.fast
	if len(fp.free) == 0 && len(fp.slots) < fp.capSlots {
		fp.slots = append(fp.slots, recordSlot{})
		return uint32(len(fp.slots) - 1), true
	}
	if len(fp.free) == 0 && len(fp.retired) > 0 {
		retired := fp.retired
		fp.retired = nil
		for _, slot := range retired {
			fp.slots[slot].state = slotReleased
		}
		if err := s.bpf.Synchronize(); err != nil {
			s.log.Warn("release action records", "err", err)
			fp.putBackLocked(retired)
			return 0, false
		}
		s.releaseLocked(retired)
	}
	if len(fp.free) == 0 {
		return 0, false
	}
	slot := fp.free[len(fp.free)-1]
	fp.free = fp.free[:len(fp.free)-1]
	return slot, true
}

// commitLocked makes txn the live assignment once the sync went through:
// the slots rules no longer point at are retired.
func (fp *fastPath) commitLocked(txn *recordTxn) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	now := txn.byFlow.build()
	if txn.patch {
		for _, id := range txn.gone {
			if old, ok := fp.byFlow.slot(id); ok {
				if slot, ok := now.slot(id); !ok || slot != old {
					fp.retireLocked(old)
				}
			}
		}
		fp.byFlow.patch(txn.gone, now)
		txn.byFlow = nil
		fp.full = txn.full
		return
	}
	// Both by flow ID: a slot is retired when its flow has no slot now or
	// another one.
	j := 0
	for i, id := range fp.byFlow.ids {
		for j < len(now.ids) && now.ids[j] < id {
			j++
		}
		if j == len(now.ids) || now.ids[j] != id || now.slots[j] != fp.byFlow.slots[i] {
			fp.retireLocked(fp.byFlow.slots[i])
		}
	}
	fp.byFlow = now
	txn.byFlow = nil
	fp.full = txn.full
	fp.txMoved = false // every forward rule's port was checked
}

// abortLocked undoes assignRecordsLocked after a failed sync. The slots it
// wrote may have been pointed at for a moment, so they are retired, not
// freed. (fp.mu is held.)
func (fp *fastPath) abortLocked(txn *recordTxn) {
	for _, slot := range txn.fresh {
		fp.retireLocked(slot)
	}
}

func (fp *fastPath) abort(txn *recordTxn) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.abortLocked(txn)
}

func (fp *fastPath) retireLocked(slot uint32) {
	if fp.slots[slot].state == slotLive {
		fp.slots[slot].state = slotRetired
		fp.retired = append(fp.retired, slot)
	}
}

func (fp *fastPath) putBackLocked(slots []uint32) {
	for _, slot := range slots {
		fp.slots[slot].state = slotRetired
	}
	fp.retired = append(fp.retired, slots...)
}

// releaseLocked frees slots that a grace period has passed over: their
// last hits are credited, their counters cleared. fp.mu is held.
func (s *Switch) releaseLocked(slots []uint32) {
	fp := s.fast
	s.creditRecordsLocked(time.Now().UnixNano())
	// Retired in the order of the flows that went, not of their slots:
	// sorted, the counters clear a page's run per batch syscall, and the
	// records of the flows that take the slots next are written a page's
	// run per mapping, not one slot each. Descending, as fp.free is taken
	// from its end.
	slices.SortFunc(slots, func(a, b uint32) int { return cmp.Compare(b, a) })
	for len(slots) > 0 {
		n, err := s.bpf.ClearRecordHits(slots)
		for _, slot := range slots[:n] {
			fp.slots[slot] = recordSlot{}
			fp.free = append(fp.free, slot)
		}
		slots = slots[n:]
		if err != nil {
			// A slot whose counters cannot be cleared would credit its
			// old hits to the next flow: never use it again.
			s.log.Warn("clear action record counters", "slot", slots[0], "err", err)
			slots = slots[1:]
		}
	}
}

// releaseRecords frees the retired record slots after a grace period,
// outside the switch's lock. It reports whether a flow was waiting for a
// slot (the caller then syncs the steering again).
func (s *Switch) releaseRecords() bool {
	fp := s.fast
	fp.mu.Lock()
	retired := fp.retired
	fp.retired = nil
	for _, slot := range retired {
		fp.slots[slot].state = slotReleased
	}
	fp.mu.Unlock()
	if len(retired) == 0 {
		return false
	}
	err := s.bpf.Synchronize()
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err != nil {
		s.log.Warn("release action records", "err", err)
		fp.putBackLocked(retired)
		return false
	}
	s.releaseLocked(retired)
	return len(fp.full) > 0
}

// creditRecordsLocked adds what each slot forwarded since the last harvest
// to the flow whose record it holds (fp.mu held).
func (s *Switch) creditRecordsLocked(stamp int64) {
	fp := s.fast
	if len(fp.slots) == 0 {
		return
	}
	hits, err := s.bpf.RecordHits(len(fp.slots))
	if err != nil {
		s.log.Warn("read fast path counters", "err", err)
		return
	}
	for i, h := range hits {
		sl := &fp.slots[i]
		if sl.state == slotFree || h.Packets <= sl.seen.Packets {
			continue
		}
		sl.entry.Hit(h.Packets-sl.seen.Packets, h.Bytes-sl.seen.Bytes, stamp)
		sl.seen = h
	}
}

// harvestRecords credits the slots' hits (see creditRecordsLocked).
func (s *Switch) harvestRecords(stamp int64) {
	s.fast.mu.Lock()
	defer s.fast.mu.Unlock()
	s.creditRecordsLocked(stamp)
}

// liveRecords returns how many flows run in XDP with a record.
func (fp *fastPath) liveRecords() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.byFlow.len()
}

// usedSlots reports whether any slot may hold hits not credited yet.
func (fp *fastPath) usedSlots() bool {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.byFlow.len() > 0 || len(fp.retired) > 0
}

// whereLocked says where e's packets are handled: DatapathXDP, or
// DatapathUser and why (a short token). fp.mu is held.
func (fp *fastPath) whereLocked(e *flowtable.Entry, portName func(uint32) string) (string, string) {
	out, _ := e.FastPathOutput()
	switch {
	case e.FastPathReason() != "":
		return DatapathUser, e.FastPathReason()
	case e.Verdict() != steer.VerdictForward:
		return DatapathXDP, "" // drop and kernel flows
	case fp.off:
		return DatapathUser, reasonFastPathOff
	case fp.isFull(e.Flow.ID):
		return DatapathUser, reasonRecordsFull
	}
	if out == 0 {
		out = e.InPort
	}
	if out != 0 && out < steer.MaxPorts && !fp.tx[out].ok {
		why := fp.tx[out].why
		if why == "" {
			why = "no_redirect"
		}
		return DatapathUser, why + ":" + portName(out)
	}
	return DatapathXDP, ""
}

// setPortTxLocked records whether ofport takes redirected frames and puts
// it in the program's devmap (or takes it out). The caller holds s.mu and
// syncs the steering afterwards, so that forward rules follow.
func (s *Switch) setPortTxLocked(p *Port, ok bool, why string) error {
	fp := s.fast
	fp.mu.Lock()
	if fp.tx[p.ofport] != (portTx{ok: ok, why: why}) {
		fp.tx[p.ofport] = portTx{ok: ok, why: why}
		fp.txMoved = true
	}
	fp.mu.Unlock()
	if ok && !fp.off {
		return s.bpf.SetTxPort(p.ofport, p.ifindex)
	}
	return s.bpf.DeleteTxPort(p.ofport)
}

// refreshFastPath frees retired record slots and checks whether each port
// still takes redirected frames (on a veth, that follows its peer's XDP
// program and GRO); when either changes what may run in XDP, it syncs the
// steering again. The timeout loop calls it every second.
func (s *Switch) refreshFastPath() {
	resync := s.releaseRecords()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for _, p := range s.ports {
		if !p.attached {
			continue // attachLocked reads it when its device appears
		}
		ok, why, err := redirectTarget(p.ifindex)
		s.fast.mu.Lock()
		cur := s.fast.tx[p.ofport]
		s.fast.mu.Unlock()
		if cur.ok == ok && cur.why == why {
			continue
		}
		s.log.Info("port fast path output changed", "port", p.name, "ok", ok, "reason", why, "err", err)
		if err := s.setPortTxLocked(p, ok, why); err != nil {
			s.log.Warn("fast path output", "port", p.name, "err", err)
		}
		resync = true
	}
	if resync {
		if err := s.resyncLocked(); err != nil {
			s.log.Error("sync steering after a fast path change", "err", err)
		}
	}
}
