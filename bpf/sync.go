package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

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
	keys := make([]ruleKey, 4096)
	vals := make([]ruleValue, len(keys))
	var cursor ebpf.MapBatchCursor
	for done := false; !done; {
		n, err := o.objs.Rules.BatchLookup(&cursor, keys, vals, nil)
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			done = true
		case err != nil:
			return fmt.Errorf("sync rules: read table: %w", err)
		}
		for _, k := range keys[:n] {
			if _, ok := keep[k]; !ok {
				stale = append(stale, steer.Rule{MaskID: k.MaskID, Key: k.Key})
			}
		}
	}
	if err := o.DeleteRules(stale); err != nil {
		return fmt.Errorf("sync rules: %w", err)
	}
	if err := o.PutRules(want); err != nil {
		return fmt.Errorf("sync rules: %w", err)
	}
	return nil
}
