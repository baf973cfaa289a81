package flowtable

import (
	"fmt"
	"slices"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Steering compiles table 0 into the XDP program's steering classifier
// (the only table the XDP program sees; a packet a table-0 flow sends on to
// goto_table, resubmit or a group is redirected to userspace, which runs the
// rest of the pipeline).
//
// Masks are the table's effective masks (the in_port bytes are 0xffffffff
// for flows that name a port), in the order Lookup visits them: highest
// MaxRank first. A mask that prev also has keeps its ID; a new mask takes a
// free ID, preferring IDs prev did not use at all, so that during a sync no
// rule of a new mask is ever read under an old mask that still holds its
// slot (only a table at the full steer.MaxMasks can force the reuse of an ID
// freed by this very change). prev may be nil.
//
// Rules: one per distinct (mask, masked key), with the rank and ID of the
// highest-ranked flow sharing it and that flow's verdict (Entry.Verdict:
// drop, pass for kernel, forward for a flow whose program compiles to an
// action record, redirect otherwise; a forward rule's Arg, the record's
// slot, is the datapath's to fill in, as is turning it into a redirect
// when the flow may not run in XDP after all). Lower-ranked flows with the
// same mask and key can never win, so they need no rule. The rule keys carry
// the resolved ofport in the in_port bytes; flows whose in_port is gone
// match nothing and are left out.
//
// A highest-ranked matching rule in the result has the verdict of the flow
// Lookup returns for the same key, for every key. Steering fails only with
// ErrTooManyMasks, which Apply already rules out.
func (t *Table) Steering(prev *steer.Table) (*steer.Table, error) {
	n, nrules := 0, 0
	for _, s := range t.tables[0].subs {
		if s.nkeys > 0 {
			n++
			nrules += s.nkeys
		}
	}
	if n > steer.MaxMasks {
		return nil, fmt.Errorf("%d masks, at most %d: %w", n, steer.MaxMasks, ErrTooManyMasks)
	}

	// Mask IDs: keep the old ones, then fill in free ones.
	var prevID map[Key]uint32
	var usedBefore [steer.MaxMasks]bool
	if prev != nil {
		prevID = make(map[Key]uint32, len(prev.Masks))
		for _, m := range prev.Masks {
			prevID[m.Mask] = m.ID
			if m.ID < steer.MaxMasks {
				usedBefore[m.ID] = true
			}
		}
	}
	ids := make([]uint32, 0, n)
	var taken [steer.MaxMasks]bool
	for _, s := range t.tables[0].subs {
		if s.nkeys == 0 {
			continue
		}
		id, ok := prevID[s.mask]
		if ok && id < steer.MaxMasks {
			taken[id] = true
		} else {
			id = steer.MaxMasks // to be assigned
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		if id < steer.MaxMasks {
			continue
		}
		ids[i] = freeMaskID(&taken, &usedBefore)
	}

	st := &steer.Table{Masks: make([]steer.Mask, 0, n), Rules: make([]steer.Rule, 0, nrules)}
	i := 0
	for _, s := range t.tables[0].subs {
		if s.nkeys == 0 {
			continue
		}
		id := ids[i]
		i++
		st.Masks = append(st.Masks, steer.Mask{ID: id, Mask: s.mask, MaxRank: s.maxRank})
		for j := range s.slots {
			e := s.slots[j].e
			if e == nil {
				continue
			}
			st.Rules = append(st.Rules, steer.Rule{MaskID: id, Key: e.mkey, Rank: e.Rank, Verdict: e.Verdict(), Flow: e.Flow.ID})
		}
	}
	return st, nil
}

// freeMaskID takes the lowest ID not taken, preferring IDs not used before.
func freeMaskID(taken, usedBefore *[steer.MaxMasks]bool) uint32 {
	for pass := 0; pass < 2; pass++ {
		for id := range taken {
			if !taken[id] && (pass == 1 || !usedBefore[id]) {
				taken[id] = true
				return uint32(id)
			}
		}
	}
	panic("flowtable: no free mask id") // Steering checked the count
}

// SteeringDiff is what turns the kernel's steering classifier from one
// steering table into the next. The datapath applies it in this order:
//
//  1. Delete, then PutEarly, to the BPF maps;
//  2. publish the new userspace snapshot (the atomic pointer swap);
//  3. PutLate, then Masks, to the BPF maps.
//
// The invariant it keeps is "a packet the XDP program redirects finds its
// flow in userspace". A forward rule counts as a redirect rule here: its
// record hands some frames to userspace. Before step 2 userspace still has
// the old flows, so the kernel may only lose redirect rules (Delete), gain
// rules that do not redirect (a drop or kernel flow taking over packets
// earlier than userspace does is harmless), or stop redirecting (a rule
// changing from redirect to drop/pass is deleted, then put again). After
// step 2 userspace has the new flows, so the kernel may gain redirect and
// forward rules, repointed records and rank changes (PutLate). A forward
// rule's record must be in the kernel before the rule that names it.
// Masks go last, so a new mask is visited only once all its rules are in,
// and a mask whose rules are gone is visited harmlessly until then. What is
// not covered: between steps, the kernel's order of masks and their
// MaxRanks are the old ones, so a packet may for a moment take a verdict of
// the old table's ranking; a redirected packet that then finds no flow is
// counted by the datapath (PortStats.NoFlow), not forwarded wrongly.
type SteeringDiff struct {
	Delete   []steer.Rule // rules of old not in new, and old redirect or forward rules that stop going to userspace
	PutEarly []steer.Rule // new or changed drop and pass rules
	PutLate  []steer.Rule // new or changed redirect and forward rules, and rank-only changes
	Masks    []steer.Mask // the new visit order, written last
	// ResetsCounts is set when the change deletes or rewrites a drop or
	// kernel rule: the hits the XDP program counted on it are lost with it,
	// so whoever credits them to flows should read them first.
	ResetsCounts bool
}

type ruleID struct {
	mask uint32
	key  Key
}

// ruleHasher is ruleHash; tests replace it to force collisions.
var ruleHasher = ruleHash

func ruleHash(r *steer.Rule) uint64 {
	return hashKey(&r.Key) ^ uint64(r.MaskID+1)*0x9e3779b97f4a7c15
}

// DiffSteering returns what changes the kernel's classifier from old (nil:
// empty) to new. Rules are identified as the kernel's map does, by mask ID
// and masked key.
func DiffSteering(old, new *steer.Table) SteeringDiff {
	var d SteeringDiff
	if new == nil {
		new = &steer.Table{}
	}
	d.Masks = new.Masks
	var oldRules []steer.Rule
	if old != nil {
		oldRules = old.Rules
	}
	// Index the old rules by a hash of (mask ID, key); a hit is checked, a
	// collision falls back to a scan.
	idx := make(map[uint64]int32, len(oldRules))
	for i := range oldRules {
		idx[ruleHasher(&oldRules[i])] = int32(i)
	}
	same := func(a, b *steer.Rule) bool { return a.MaskID == b.MaskID && a.Key == b.Key }
	seen := make([]bool, len(oldRules))
	for _, r := range new.Rules {
		j, ok := idx[ruleHasher(&r)]
		i := int(j)
		if ok && !same(&oldRules[i], &r) {
			i = slices.IndexFunc(oldRules, func(o steer.Rule) bool { return same(&o, &r) })
			ok = i >= 0
		}
		if !ok {
			d.put(r)
			continue
		}
		seen[i] = true
		o := oldRules[i]
		if !o.Verdict.ToUser() && o != r {
			d.ResetsCounts = true
		}
		switch {
		case o == r:
		case o.Verdict == r.Verdict && !r.Verdict.ToUser() && o.Arg == r.Arg:
			d.PutLate = append(d.PutLate, r) // rank (and flow) only
		case o.Verdict.ToUser() && !r.Verdict.ToUser():
			d.Delete = append(d.Delete, o)
			d.PutEarly = append(d.PutEarly, r)
		default:
			d.put(r)
		}
	}
	for i, o := range oldRules {
		if !seen[i] {
			d.Delete = append(d.Delete, o)
			if !o.Verdict.ToUser() {
				d.ResetsCounts = true
			}
		}
	}
	return d
}

func (d *SteeringDiff) put(r steer.Rule) {
	if r.Verdict.ToUser() {
		d.PutLate = append(d.PutLate, r)
	} else {
		d.PutEarly = append(d.PutEarly, r)
	}
}
