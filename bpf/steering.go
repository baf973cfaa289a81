package bpf

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// ErrRuleTableFull is returned (wrapped) by PutRules when the kernel's rule
// table holds steer.MaxRules rules. It is steer.ErrTooManyRules, which the
// flow table returns before it gets that far.
var ErrRuleTableFull = steer.ErrTooManyRules

// checkRule checks rule i; records is Records().
func (o *Objects) checkRule(op string, i int, r *steer.Rule, records uint32) error {
	if r.MaskID >= steer.MaxMasks {
		return fmt.Errorf("%s: rule %d: mask id %d out of range 0..%d", op, i, r.MaskID, steer.MaxMasks-1)
	}
	if r.Verdict > steer.VerdictForward {
		return fmt.Errorf("%s: rule %d: unknown %v", op, i, r.Verdict)
	}
	if r.Verdict == steer.VerdictForward && r.Arg >= records {
		return fmt.Errorf("%s: rule %d: record slot %d out of range 0..%d", op, i, r.Arg, records-1)
	}
	return nil
}

// FailPutRules, if set, is asked before every PutRules and fails it with
// the error it returns: the tests of the datapath's rollback set it, as
// a kernel refusing a sync half way cannot be had on demand.
var FailPutRules func([]steer.Rule) error

// PutRules adds or replaces rules in the kernel's rule table, with one
// batch syscall. A rule under a live mask takes effect as soon as it is
// written; a rule under a mask not yet live, once SetMasks makes the mask
// live. Rule keys must already be masked. The rules are checked before
// anything is written.
//
// On error some of the rules may have been written. When the table is full
// the error wraps ErrRuleTableFull.
func (o *Objects) PutRules(rules []steer.Rule) error {
	if len(rules) == 0 {
		return nil
	}
	if FailPutRules != nil {
		if err := FailPutRules(rules); err != nil {
			return err
		}
	}
	records := uint32(o.Records())
	for i := range rules {
		if err := o.checkRule("put rules", i, &rules[i], records); err != nil {
			return err
		}
	}
	defer o.bumpGen()
	// In chunks, through buffers of one chunk: a bulk install writes
	// hundreds of thousands of rules.
	keys := make([]ruleKey, min(len(rules), ruleChunk))
	vals := make([]ruleValue, len(keys))
	done := 0
	for done < len(rules) {
		c := min(len(rules)-done, len(keys))
		for i := range c {
			r := &rules[done+i]
			keys[i] = ruleKey{MaskID: r.MaskID, Key: r.Key}
			vals[i] = ruleValue{Rank: uint64(r.Rank), Verdict: uint8(r.Verdict), Arg: r.Arg, FlowID: r.Flow}
		}
		n, err := o.objs.Rules.BatchUpdate(keys[:c], vals[:c], nil)
		if errors.Is(err, ebpf.ErrNotSupported) {
			for n = 0; n < c; n++ {
				if err = o.objs.Rules.Put(&keys[n], &vals[n]); err != nil {
					break
				}
			}
		}
		done += n
		if errors.Is(err, syscall.E2BIG) {
			err = ErrRuleTableFull
		}
		if err != nil {
			return fmt.Errorf("put rules: %d of %d written: %w", done, len(rules), err)
		}
	}
	return nil
}

// ruleChunk is how many rules one batch syscall writes or deletes.
const ruleChunk = 4096

// DeleteRules removes rules from the kernel's rule table; only MaskID and
// Key of each rule matter. Each rule stops matching as soon as it is
// deleted. Rules that are not in the table are skipped (each costs a
// syscall: the kernel ends a batch at the first missing key).
func (o *Objects) DeleteRules(rules []steer.Rule) error {
	for i := range rules {
		if rules[i].MaskID >= steer.MaxMasks {
			return fmt.Errorf("delete rules: rule %d: mask id %d out of range 0..%d", i, rules[i].MaskID, steer.MaxMasks-1)
		}
	}
	if len(rules) == 0 {
		return nil
	}
	defer o.bumpGen()
	keys := make([]ruleKey, min(len(rules), ruleChunk))
	for done := 0; done < len(rules); {
		c := min(len(rules)-done, len(keys))
		for i := range c {
			keys[i] = ruleKey{MaskID: rules[done+i].MaskID, Key: rules[done+i].Key}
		}
		done += c
		for rest := keys[:c]; len(rest) > 0; {
			n, err := o.objs.Rules.BatchDelete(rest, nil)
			switch {
			case err == nil:
				rest = nil
			case errors.Is(err, ebpf.ErrKeyNotExist) && n < len(rest):
				rest = rest[n+1:]
			case errors.Is(err, ebpf.ErrNotSupported):
				for i := range rest {
					if err := o.objs.Rules.Delete(&rest[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
						return fmt.Errorf("delete rules: %w", err)
					}
				}
				rest = nil
			default:
				return fmt.Errorf("delete rules: %w", err)
			}
		}
	}
	return nil
}

// SetMasks makes masks, in the given order, the program's live mask order.
// The order must be sorted by MaxRank, highest first: the program stops
// walking once a mask's MaxRank cannot beat the best rule it has found.
//
// It writes the keys of masks that are not live into their slots, then the
// order into the slot of the double-buffered order map the program is not
// reading, then flips the active index: that single word write is the
// switch point, so a frame sees either the whole old order or the whole new
// one.
//
// A live mask id whose key changes (the flow table reuses a freed id only
// when all steer.MaxMasks ids are taken) cannot change in place: SetMasks
// first flips to the live order without those ids and waits until no
// program run can still be using them, then rewrites their keys and flips
// to the new order. Between the two flips, frames that only those masks'
// rules match get no verdict from them (they pass, or fall to a lower
// rule).
//
// SetMasks calls are serialized. On error the live order is the old one,
// or the old one less the ids whose key was changing.
func (o *Objects) SetMasks(masks []steer.Mask) error {
	if len(masks) > steer.MaxMasks {
		return fmt.Errorf("set masks: %d masks, at most %d", len(masks), steer.MaxMasks)
	}
	var seen [steer.MaxMasks]bool
	var order maskOrder
	for i := range masks {
		m := &masks[i]
		if m.ID >= steer.MaxMasks {
			return fmt.Errorf("set masks: mask %d: id %d out of range 0..%d", i, m.ID, steer.MaxMasks-1)
		}
		if seen[m.ID] {
			return fmt.Errorf("set masks: mask %d: id %d used twice", i, m.ID)
		}
		seen[m.ID] = true
		if i > 0 && m.MaxRank > masks[i-1].MaxRank {
			return fmt.Errorf("set masks: mask %d: max rank %#x above the previous mask's %#x: order must be by max rank, highest first",
				i, uint64(m.MaxRank), uint64(masks[i-1].MaxRank))
		}
		order.M[i] = maskRef{ID: m.ID, MaxRank: uint64(m.MaxRank)}
	}
	order.N = uint32(len(masks))

	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("set masks: objects closed")
	}

	// Take the live ids whose key changes out of the live order first.
	var changing [steer.MaxMasks]bool
	nchanging := 0
	for i := range masks {
		m := &masks[i]
		if lm := &o.live[m.ID]; lm.used && lm.key != m.Mask {
			changing[m.ID] = true
			nchanging++
		}
	}
	if nchanging > 0 {
		var tmp maskOrder
		tmpLive := o.live
		for _, ref := range o.order.M[:o.order.N] {
			if changing[ref.ID] {
				tmpLive[ref.ID] = liveMask{}
				continue
			}
			tmp.M[tmp.N] = ref
			tmp.N++
		}
		if err := o.flipLocked(&tmp, &tmpLive); err != nil {
			return fmt.Errorf("set masks: %w", err)
		}
		// Runs that loaded the old order may still AND with the old keys.
		if err := o.waitForProgramsLocked(); err != nil {
			return fmt.Errorf("set masks: %w", err)
		}
	}

	// Mask slots that are not live were last read by runs before the
	// last flip.
	if err := o.quiesceLocked(); err != nil {
		return fmt.Errorf("set masks: %w", err)
	}
	for i := range masks {
		m := &masks[i]
		if o.live[m.ID].used {
			continue // same key, already in place
		}
		if err := o.objs.Masks.Put(m.ID, &m.Mask); err != nil {
			return fmt.Errorf("set masks: write mask %d: %w", m.ID, err)
		}
	}
	var live [steer.MaxMasks]liveMask
	for i := range masks {
		live[masks[i].ID] = liveMask{used: true, key: masks[i].Mask}
	}
	if err := o.flipLocked(&order, &live); err != nil {
		return fmt.Errorf("set masks: %w", err)
	}
	return nil
}

// flipGrace bounds how long a program run may still read the order slot
// that was live before a flip. XDP runs take microseconds inside an RCU
// read-side section; this is a wide margin, and only flips closer together
// than this pay for a grace period.
const flipGrace = 10 * time.Millisecond

// flipLocked writes order, whose masks are live, into the idle order slot
// and makes it the live one. The idle slot was live until the previous
// flip: if that was recent, it first waits until no program run can still
// be reading it.
func (o *Objects) flipLocked(order *maskOrder, live *[steer.MaxMasks]liveMask) error {
	if err := o.quiesceLocked(); err != nil {
		return err
	}
	next := o.slot ^ 1
	if err := o.objs.MaskOrder.Put(next, order); err != nil {
		return fmt.Errorf("write order: %w", err)
	}
	err := o.objs.Active.Put(uint32(0), next)
	o.bumpGen()
	if err != nil {
		return fmt.Errorf("flip order: %w", err)
	}
	o.slot = next
	o.order = *order
	o.flipped = time.Now()
	o.idleQuiet = false
	o.live = *live
	return nil
}

// quiesceLocked makes sure no program run still reads what the last flip
// retired: the idle order slot and the masks only it refers to.
func (o *Objects) quiesceLocked() error {
	if o.idleQuiet || time.Since(o.flipped) >= flipGrace {
		return nil
	}
	return o.waitForProgramsLocked()
}

// waitForProgramsLocked returns once every program run that started before
// the call has finished. Updating a map-of-maps waits for an RCU grace
// period (synchronize_rcu) before the syscall returns, and XDP programs run
// inside RCU read-side sections.
func (o *Objects) waitForProgramsLocked() error {
	if err := o.barrier.Put(uint32(0), o.barrierInner); err != nil {
		return fmt.Errorf("wait for program runs: %w", err)
	}
	o.idleQuiet = true
	o.waits++
	return nil
}
