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
	st, _, err := t.SteeringFlows(prev)
	return st, err
}

// SteeringFlows is Steering, and the flow of each rule: flows[i] is the
// Entry of st.Rules[i].Flow.
func (t *Table) SteeringFlows(prev *steer.Table) (st *steer.Table, flows []*Entry, err error) {
	n, nrules := 0, 0
	for _, s := range t.tables[0].subs {
		if s.nkeys > 0 {
			n++
			nrules += s.nkeys
		}
	}
	if n > steer.MaxMasks {
		return nil, nil, fmt.Errorf("%d masks, at most %d: %w", n, steer.MaxMasks, ErrTooManyMasks)
	}

	var prevMasks []steer.Mask
	if prev != nil {
		prevMasks = prev.Masks
	}
	ids, _ := maskIDs(t.tables[0].subs, n, prevMasks)

	st = &steer.Table{Masks: make([]steer.Mask, 0, n), Rules: make([]steer.Rule, 0, nrules)}
	flows = make([]*Entry, 0, nrules)
	i := 0
	for _, s := range t.tables[0].subs {
		if s.nkeys == 0 {
			continue
		}
		id := ids[i]
		i++
		st.Masks = append(st.Masks, steer.Mask{ID: id, Mask: s.mask, MaxRank: s.maxRank})
		// The rules in the order of the flows (by ID, the order they were
		// installed in and mostly lie in memory), not of the slots: a slot
		// is found by one probe, where the slots' hash order fetched every
		// Entry and Flow from a random place (a 160k-flow compile spent
		// most of its time waiting for them, and so did the record
		// assignment that walks the rules next). A change that adds flows
		// appends their rules, so the old ones keep their positions for
		// DiffSteering's pairing. When no two live flows share a key (a
		// bulk install's), each live one wins without a probe.
		every := s.nkeys == s.nlive
		for _, e := range s.flows {
			if !e.live || !every && !s.wins(e) {
				continue
			}
			st.Rules = append(st.Rules, e.rule(id))
			flows = append(flows, e)
		}
	}
	return st, flows, nil
}

// rule is e's steering rule under mask id.
func (e *Entry) rule(id uint32) steer.Rule {
	return steer.Rule{MaskID: id, Key: e.mkey, Rank: e.Rank, Verdict: e.Verdict(), Flow: e.Flow.ID}
}

// maskIDs gives each of the n subtables of subs that hold a key its mask
// ID, in their order: the one prev gave its mask, or a free one, preferring
// IDs prev did not use at all. reused reports whether a new mask took an ID
// that prev gave another one (only a table at the full steer.MaxMasks can
// force that).
func maskIDs(subs []*subtable, n int, prev []steer.Mask) (ids []uint32, reused bool) {
	var prevID map[Key]uint32
	var usedBefore [steer.MaxMasks]bool
	if len(prev) > 0 {
		prevID = make(map[Key]uint32, len(prev))
		for _, m := range prev {
			prevID[m.Mask] = m.ID
			if m.ID < steer.MaxMasks {
				usedBefore[m.ID] = true
			}
		}
	}
	ids = make([]uint32, 0, n)
	var taken [steer.MaxMasks]bool
	for _, s := range subs {
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
		reused = reused || usedBefore[ids[i]]
	}
	return ids, reused
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
// and masked key. The lists may share old's and new's Rules: they are
// read-only.
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
	if len(oldRules) == 0 {
		// Everything is new (the first bulk install): no index needed.
		late := 0
		for i := range new.Rules {
			if new.Rules[i].Verdict.ToUser() {
				late++
			}
		}
		switch late {
		case len(new.Rules): // every rule goes to userspace: no copy
			d.PutLate = new.Rules
		case 0:
			d.PutEarly = new.Rules
		default:
			d.PutLate = make([]steer.Rule, 0, late)
			d.PutEarly = make([]steer.Rule, 0, len(new.Rules)-late)
			for _, r := range new.Rules {
				d.put(r)
			}
		}
		return d
	}
	if len(new.Rules) == 0 {
		// Everything goes (a delete of every flow).
		d.Delete = oldRules
		for i := range oldRules {
			if !oldRules[i].Verdict.ToUser() {
				d.ResetsCounts = true
				break
			}
		}
		return d
	}
	same := func(a, b *steer.Rule) bool { return a.MaskID == b.MaskID && a.Key == b.Key }
	seen := make([]bool, len(oldRules))
	pair := d.Add
	// A table compiles its rules in the same order every time (Steering):
	// the rules of what a change left alone line up with the old ones,
	// shifted past the rules it deleted. Those pair by position, an old
	// rule o for each new one, and o skips ahead over a few deleted rules
	// when the next old one is not the pair; only the others need the
	// index. (A rule's mask ID and key are unique in a table, so a
	// positional pair is the pair the index would find. One flow deleted
	// from the middle of 160k put every rule after it through the index:
	// a map of the old rules, 30 ms.)
	const ahead = 8
	probes := 64 * ahead // for look-aheads that find nothing (a new table)
	var rest []int32     // new rules not paired by position
	o := 0
	for i := range new.Rules {
		r := &new.Rules[i]
		span := ahead
		if probes <= 0 {
			span = 0
		}
		k := -1
		for j := 0; j <= span && o+j < len(oldRules); j++ {
			if same(&oldRules[o+j], r) {
				k = j
				break
			}
			if j > 0 {
				probes--
			}
		}
		if k < 0 {
			rest = append(rest, int32(i))
			continue
		}
		probes = 64 * ahead // found: the look-aheads that follow may miss again
		o += k
		seen[o] = true
		pair(&oldRules[o], r)
		o++
	}
	if len(rest) > 0 {
		// Index the old rules left by a hash of (mask ID, key); a hit is
		// checked, a collision falls back to a scan.
		idx := make(map[uint64]int32, len(oldRules)-(len(new.Rules)-len(rest)))
		for i := range oldRules {
			if !seen[i] {
				idx[ruleHasher(&oldRules[i])] = int32(i)
			}
		}
		for _, k := range rest {
			r := &new.Rules[k]
			j, ok := idx[ruleHasher(r)]
			i := int(j)
			if ok && (seen[i] || !same(&oldRules[i], r)) {
				i = slices.IndexFunc(oldRules, func(o steer.Rule) bool { return same(&o, r) })
				ok = i >= 0
			}
			if !ok {
				d.Add(nil, r)
				continue
			}
			seen[i] = true
			pair(&oldRules[i], r)
		}
	}
	for i := range oldRules {
		if !seen[i] {
			d.Add(&oldRules[i], nil)
		}
	}
	return d
}

// Add adds to d what turns the kernel's rule o into r, two rules of one
// mask ID and key; a nil o is a rule that is not there yet, a nil r one
// that goes.
func (d *SteeringDiff) Add(o, r *steer.Rule) {
	switch {
	case o == nil:
		if r != nil {
			d.put(*r)
		}
		return
	case r == nil:
		d.Delete = append(d.Delete, *o)
		d.ResetsCounts = d.ResetsCounts || !o.Verdict.ToUser()
		return
	}
	if !o.Verdict.ToUser() && *o != *r {
		d.ResetsCounts = true
	}
	switch {
	case *o == *r:
	case o.Verdict == r.Verdict && !r.Verdict.ToUser() && o.Arg == r.Arg:
		d.PutLate = append(d.PutLate, *r) // rank (and flow) only
	case o.Verdict.ToUser() && !r.Verdict.ToUser():
		d.Delete = append(d.Delete, *o)
		d.PutEarly = append(d.PutEarly, *r)
	default:
		d.put(*r)
	}
}

func (d *SteeringDiff) put(r steer.Rule) {
	if r.Verdict.ToUser() {
		d.PutLate = append(d.PutLate, r)
	} else {
		d.PutEarly = append(d.PutEarly, r)
	}
}
