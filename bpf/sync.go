package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// RuleHits returns the hits the program counted on drop and pass rules,
// by the flow each rule belongs to (steer.Rule.Flow), for the rules that
// have any. Redirected packets are not counted here: userspace counts them;
// forwarded ones are counted per record (RecordHits). A rule's counters
// start from zero whenever PutRules writes it.
func (o *Objects) RuleHits() (map[uint64]CounterValue, error) {
	hits := make(map[uint64]CounterValue)
	err := o.eachRule(func(k *ruleKey, v *ruleValue) {
		if v.Packets > 0 {
			c := hits[v.FlowID]
			c.Packets += v.Packets
			c.Bytes += v.Bytes
			hits[v.FlowID] = c
		}
	})
	if err != nil {
		return nil, fmt.Errorf("rule hits: %w", err)
	}
	return hits, nil
}

// DumpRules returns every rule of the kernel's table, in the map's order.
// It reads the whole table (in batches): for checks and tests, not for a
// sync.
func (o *Objects) DumpRules() ([]steer.Rule, error) {
	var rules []steer.Rule
	err := o.eachRule(func(k *ruleKey, v *ruleValue) {
		rules = append(rules, steer.Rule{MaskID: k.MaskID, Key: k.Key, Rank: steer.Rank(v.Rank),
			Verdict: steer.Verdict(v.Verdict), Arg: v.Arg, Flow: v.FlowID})
	})
	if err != nil {
		return nil, fmt.Errorf("dump rules: %w", err)
	}
	return rules, nil
}

// eachRule calls fn for every rule of the kernel's table, read in batches.
func (o *Objects) eachRule(fn func(*ruleKey, *ruleValue)) error {
	keys := make([]ruleKey, 4096)
	vals := make([]ruleValue, len(keys))
	var cursor ebpf.MapBatchCursor
	for {
		n, err := o.objs.Rules.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			fn(&keys[i], &vals[i])
		}
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			return nil
		case err != nil:
			return fmt.Errorf("read rule table: %w", err)
		}
	}
}

// SyncRules makes the kernel's rule table hold exactly want: every rule not
// in want is deleted and every rule of want is written. It reads the whole
// table (in batches), so it is for recovering from a sync that failed half
// way, not for ordinary updates.
func (o *Objects) SyncRules(want []steer.Rule) error {
	keep := make(map[ruleKey]struct{}, len(want))
	for i := range want {
		keep[ruleKey{MaskID: want[i].MaskID, Key: want[i].Key}] = struct{}{}
	}
	var stale []steer.Rule
	err := o.eachRule(func(k *ruleKey, _ *ruleValue) {
		if _, ok := keep[*k]; !ok {
			stale = append(stale, steer.Rule{MaskID: k.MaskID, Key: k.Key})
		}
	})
	if err != nil {
		return fmt.Errorf("sync rules: %w", err)
	}
	if err := o.DeleteRules(stale); err != nil {
		return fmt.Errorf("sync rules: %w", err)
	}
	if err := o.PutRules(want); err != nil {
		return fmt.Errorf("sync rules: %w", err)
	}
	return nil
}
