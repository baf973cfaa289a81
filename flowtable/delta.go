package flowtable

import "github.com/xvs-project/xvs/flowtable/steer"

// steerDelta is what a snapshot knows of how its table 0 differs from the
// snapshot it was made from: the masked keys whose best flow may be
// another. Any other key's rule is the same in both (Steering's rules are
// a function of each key's best flow).
type steerDelta struct {
	from uint64      // the generation of the snapshot this one was made from
	keys []maskedKey // may repeat
}

// maskedKey is a masked key under an effective mask of table 0.
type maskedKey struct {
	mask, key Key
}

// maxDeltaKeys is the most keys a snapshot keeps a delta of. A change of
// more has every rule compiled and diffed again (SteeringFlows,
// DiffSteering): a few ms for 160k flows, not worth a larger delta's
// memory.
const maxDeltaKeys = 4096

// deltaOf is a delta from t of the keys of table 0's flows that a
// change adds or deletes (touched), or nil when there are too many.
func (t *Table) deltaOf(touched map[subKey]*touchedGroup) *steerDelta {
	d := &steerDelta{from: t.gen}
	for k, g := range touched {
		if k.table != 0 {
			continue
		}
		if len(d.keys)+len(g.gone)+len(g.adds) > maxDeltaKeys {
			return nil
		}
		for _, es := range [2][]*Entry{g.gone, g.adds} {
			for _, e := range es {
				d.keys = append(d.keys, maskedKey{k.mask, e.mkey})
			}
		}
	}
	return d
}

// SteeringDelta is what changes table 0's steering rules from one snapshot
// to the next: the new masks, and the rules of the keys whose best flow is
// another (the rules of every other key are the same).
type SteeringDelta struct {
	Masks   []steer.Mask // as Steering gives them
	Changes []RuleChange
}

// RuleChange is one key's rule before and after a change, under one mask
// ID. OldFlow and NewFlow are the flows of the rules; a nil one means that
// there is no rule, before (a new key) or after (a key that goes). As in
// Steering, a forward rule's Arg is 0: the datapath's to fill in.
type RuleChange struct {
	Old, New         steer.Rule
	OldFlow, NewFlow *Entry
}

// SteeringDelta returns what changes the steering rules of from, whose
// masks are prev (Steering(nil or its own prev).Masks), into t's: what
// DiffSteering(from's, t's) would find, in the time of the change, not of
// the table. ok is false when t does not know how it differs from from (it
// was not made from it by Apply or Recompile, or the change
// was of more than maxDeltaKeys flows of table 0), or when a new mask
// would take the ID of one that goes: compile and diff the whole table
// then.
func (t *Table) SteeringDelta(from *Table, prev []steer.Mask) (d SteeringDelta, ok bool) {
	if t.delta == nil || from == nil || t.delta.from != from.gen {
		return SteeringDelta{}, false
	}
	subs := t.tables[0].subs
	n := 0
	for _, s := range subs {
		if s.nkeys > 0 {
			n++
		}
	}
	if n > steer.MaxMasks {
		return SteeringDelta{}, false // (Apply ruled it out)
	}
	ids, reused := maskIDs(subs, n, prev)
	if reused {
		return SteeringDelta{}, false
	}
	d.Masks = make([]steer.Mask, 0, n)
	newID := make(map[Key]uint32, n)
	for _, s := range subs {
		if s.nkeys > 0 {
			id := ids[len(d.Masks)]
			d.Masks = append(d.Masks, steer.Mask{ID: id, Mask: s.mask, MaxRank: s.maxRank})
			newID[s.mask] = id
		}
	}
	oldID := make(map[Key]uint32, len(prev))
	for _, m := range prev {
		oldID[m.Mask] = m.ID
	}
	var seen map[maskedKey]bool
	if len(t.delta.keys) > 1 {
		seen = make(map[maskedKey]bool, len(t.delta.keys))
	}
	for i := range t.delta.keys {
		mk := &t.delta.keys[i]
		if seen != nil {
			if seen[*mk] {
				continue
			}
			seen[*mk] = true
		}
		var c RuleChange
		if os := subOf(from, &mk.mask); os != nil {
			if c.OldFlow = os.find(&mk.key); c.OldFlow != nil {
				id, ok := oldID[mk.mask]
				if !ok {
					return SteeringDelta{}, false // prev is not from's
				}
				c.Old = c.OldFlow.rule(id)
			}
		}
		if ns := subOf(t, &mk.mask); ns != nil {
			if c.NewFlow = ns.find(&mk.key); c.NewFlow != nil {
				c.New = c.NewFlow.rule(newID[mk.mask])
			}
		}
		if c.OldFlow != c.NewFlow {
			d.Changes = append(d.Changes, c)
		}
	}
	return d, true
}

// subOf returns t's table-0 subtable of mask, or nil.
func subOf(t *Table, mask *Key) *subtable {
	for _, s := range t.tables[0].subs {
		if s.mask == *mask {
			return s
		}
	}
	return nil
}
