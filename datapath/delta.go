package datapath

import (
	"slices"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// A sync by delta: when the new table knows which of table 0's keys the
// change touched (flowtable.Table.SteeringDelta), only their rules are
// compared, assigned records and written, and the record assignment is
// patched rather than rebuilt. One flow added to 160k compiled and diffed
// 160k rules (16 MB) and rebuilt the assignment of 160k slots.
//
// The kernel's rules are a function of the live table and the record
// assignment (fp.byFlow): a forward rule points at its flow's slot, or was
// demoted to a redirect when its flow has none. That is what lets a delta
// know the kernel's rule of a key without a copy of every rule
// (kernelRuleLocked), and a full sync compile them again when it needs
// them (kernelSteeringLocked).

// takesDelta reports whether a sync may go by delta, which only sees the
// keys its change touched: no flow is waiting for a record slot (a full
// sync gives the slots a change frees to the flows waiting, highest rank
// first), and no port's fast path output changed since the last full sync
// (one that failed left forward rules to a port that takes no redirected
// frames, or redirects to one that does).
func (fp *fastPath) takesDelta() bool {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return len(fp.full) == 0 && !fp.txMoved
}

// toKernel turns rules, as Steering compiles them, into the kernel's under
// the live record assignment. It takes fp.mu; the caller holds s.mu.
func (fp *fastPath) toKernel(rules []steer.Rule) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	at := 0
	for i := range rules {
		fp.kernelRuleLocked(&rules[i], &at)
	}
}

// kernelRuleLocked turns r, a rule as Steering compiles it, into the one
// the kernel has under the record assignment (fp.mu held). at is
// flowSlots.slotFrom's.
func (fp *fastPath) kernelRuleLocked(r *steer.Rule, at *int) {
	if r.Verdict != steer.VerdictForward {
		return
	}
	if slot, ok := fp.byFlow.slotFrom(r.Flow, at); ok {
		r.Arg = slot
	} else {
		r.Verdict = steer.VerdictRedirect
	}
}

// deltaPlanLocked is planLocked for a change whose rules delta gives. The
// rules before are the kernel's; the forward rules after keep or get
// their records as assignRecordsLocked gives them, and the assignment of
// the flows whose rules changed is patched at commit (recordTxn.patch).
func (s *Switch) deltaPlanLocked(delta *flowtable.SteeringDelta) (syncPlan, error) {
	fp := s.fast
	n := s.kernelRules.Load()
	txn := &recordTxn{patch: true}
	var wants []want
	fp.mu.Lock()
	defer fp.mu.Unlock()
	for i := range delta.Changes {
		c := &delta.Changes[i]
		if c.OldFlow != nil {
			at := 0
			fp.kernelRuleLocked(&c.Old, &at)
			txn.gone = append(txn.gone, c.Old.Flow)
			if !c.Old.Verdict.ToUser() {
				n--
			}
		}
		if c.NewFlow != nil {
			at := 0
			fp.assignLocked(&c.New, c.NewFlow, txn, &at, &wants)
			txn.gone = append(txn.gone, c.New.Flow) // its slot, if it had one, may be another now
			if !c.New.Verdict.ToUser() {
				n++
			}
		}
	}
	slices.Sort(txn.gone)
	txn.gone = slices.Compact(txn.gone)
	if err := s.giveSlotsLocked(txn, wants); err != nil {
		return syncPlan{}, err
	}
	p := syncPlan{txn: txn, kernelRules: n}
	p.diff.Masks = delta.Masks
	for i := range delta.Changes {
		c := &delta.Changes[i]
		var o, r *steer.Rule
		if c.OldFlow != nil {
			o = &c.Old
		}
		if c.NewFlow != nil {
			r = &c.New
		}
		p.diff.Add(o, r)
	}
	return p, nil
}

// patch makes fs the assignment less the flows of gone (by ID, unique)
// and with add's (by ID, each of them in gone or not in fs), in place.
func (fs *flowSlots) patch(gone []uint64, add flowSlots) {
	if len(gone) > 0 {
		w, _ := slices.BinarySearch(fs.ids, gone[0])
		g := 0
		for r := w; r < len(fs.ids); r++ {
			id := fs.ids[r]
			for g < len(gone) && gone[g] < id {
				g++
			}
			if g < len(gone) && gone[g] == id {
				continue
			}
			fs.ids[w], fs.slots[w] = id, fs.slots[r]
			w++
		}
		fs.ids, fs.slots = fs.ids[:w], fs.slots[:w]
	}
	if len(add.ids) == 0 {
		return
	}
	i, j := len(fs.ids)-1, len(add.ids)-1
	fs.ids = append(fs.ids, add.ids...) // the room; merged into from the end
	fs.slots = append(fs.slots, add.slots...)
	for k := len(fs.ids) - 1; j >= 0; k-- {
		if i >= 0 && fs.ids[i] > add.ids[j] {
			fs.ids[k], fs.slots[k] = fs.ids[i], fs.slots[i]
			i--
		} else {
			fs.ids[k], fs.slots[k] = add.ids[j], add.slots[j]
			j--
		}
	}
}
