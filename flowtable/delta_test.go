package flowtable

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// kernelModel is a model of the kernel's steering map.
type kernelModel struct {
	rules map[ruleID]steer.Rule
	masks []steer.Mask
}

func (k *kernelModel) apply(t *testing.T, d SteeringDiff) {
	for _, r := range d.Delete {
		if _, ok := k.rules[ruleID{r.MaskID, r.Key}]; !ok {
			t.Fatalf("delete of a rule not there: %+v", r)
		}
		delete(k.rules, ruleID{r.MaskID, r.Key})
	}
	for _, l := range [][]steer.Rule{d.PutEarly, d.PutLate} {
		for _, r := range l {
			k.rules[ruleID{r.MaskID, r.Key}] = r
		}
	}
	k.masks = d.Masks
}

func (k *kernelModel) table() *steer.Table {
	st := &steer.Table{Masks: k.masks}
	for _, r := range k.rules {
		st.Rules = append(st.Rules, r)
	}
	return st
}

// syncModel syncs k from old to nt by delta when it can, else in full, and
// reports whether it went by delta.
func syncModel(t *testing.T, k *kernelModel, old, nt *Table, when string) bool {
	t.Helper()
	if nt == old || nt.Gen() == old.Gen() {
		return false
	}
	byDelta := false
	if d, ok := nt.SteeringDelta(old, k.masks); ok {
		byDelta = true
		var sd SteeringDiff
		sd.Masks = d.Masks
		seen := map[ruleID]bool{}
		for i := range d.Changes {
			c := &d.Changes[i]
			var o, r *steer.Rule
			if c.OldFlow != nil {
				o = &c.Old
				id := ruleID{o.MaskID, o.Key}
				if seen[id] {
					t.Fatalf("%s: key twice in the delta", when)
				}
				seen[id] = true
				if got, ok := k.rules[id]; !ok || got != *o {
					t.Fatalf("%s: delta's old rule %+v, the kernel's %+v (%v)", when, *o, got, ok)
				}
			}
			if c.NewFlow != nil {
				r = &c.New
				id := ruleID{r.MaskID, r.Key}
				if o == nil {
					if seen[id] {
						t.Fatalf("%s: key twice in the delta", when)
					}
					seen[id] = true
					if got, ok := k.rules[id]; ok {
						t.Fatalf("%s: delta says new rule %+v, the kernel has %+v", when, *r, got)
					}
				}
			}
			sd.Add(o, r)
		}
		k.apply(t, sd)
	} else {
		st, err := nt.Steering(k.table())
		if err != nil {
			t.Fatal(err)
		}
		k.apply(t, DiffSteering(k.table(), st))
	}
	want, err := nt.Steering(&steer.Table{Masks: k.masks})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want.Masks, k.masks) {
		t.Fatalf("%s (delta %v): masks %v, want %v", when, byDelta, k.masks, want.Masks)
	}
	if len(want.Rules) != len(k.rules) {
		t.Errorf("%s (delta %v): kernel has %d rules, want %d", when, byDelta, len(k.rules), len(want.Rules))
	}
	for _, r := range want.Rules {
		if got := k.rules[ruleID{r.MaskID, r.Key}]; got != r {
			t.Errorf("%s (delta %v): kernel rule %+v, want %+v", when, byDelta, got, r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return byDelta
}

// TestSteeringDeltaRandom: random Applies (adds, same-match replaces,
// outranks, deletes, group deletes, KeepIDs), Recompiles with ports
// coming, going and renumbered, and WithDeadPorts chains stored without a
// sync, each synced to a model kernel by SteeringDelta when it can (and
// every old rule the delta gives checked against the model's), and
// compared with a full compile. Small groups derive, hashes collide, and
// up to 32 masks make a new mask take a freed ID (the delta refuses).
func TestSteeringDeltaRandom(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			defer func(m int, k uint64) { deriveMin, hashKeep = m, k }(deriveMin, hashKeep)
			deriveMin = 8
			if seed%2 == 0 {
				hashKeep = 0xC0000000000000FF
			}
			r := dpRand(seed)
			ports := map[string]uint32{"p1": 1, "p2": 2, "p3": 3, "p4": 4}
			resolve := func(name string) (uint32, bool) { no, ok := ports[name]; return no, ok }
			names := []string{"p1", "p2", "p3", "p4", "p5"}
			acts := []string{"output:%s", "mod_nw_dst:10.9.9.9,output:%s", "drop", "kernel", "goto_table:1", "group:1", "in_port"}
			flow := func() *Flow {
				p := names[r.IntN(len(names))]
				act := acts[r.IntN(len(acts))]
				if act[0] == 'o' || act[0] == 'm' {
					act = fmt.Sprintf(act, names[r.IntN(len(names))])
				}
				prio := 100 + 10*r.IntN(3)
				var s string
				switch r.IntN(6) {
				case 5:
					s = fmt.Sprintf("priority=%d,ip,nw_src=10.%d.0.0/%d,actions=%s", prio, r.IntN(3), 8+r.IntN(20), act)
				case 0, 1:
					s = fmt.Sprintf("priority=%d,udp,in_port=%s,nw_dst=10.1.0.%d,actions=%s", prio, p, r.IntN(8), act)
				case 2:
					s = fmt.Sprintf("priority=%d,udp,tp_dst=%d,actions=%s", prio, r.IntN(4), act)
				case 3:
					s = fmt.Sprintf("priority=%d,tcp,tp_src=%d/0x%x,actions=%s", prio, r.IntN(4), 0xfff0|r.IntN(16), act)
				default:
					s = fmt.Sprintf("priority=%d,in_port=%s,ip,nw_dst=10.%d.0.0/%d,actions=%s", prio, p, r.IntN(3), 8+r.IntN(20), act)
				}
				return mustParse(t, s)
			}
			group := func() *Group { return mustParseGroup(t, "group_id=1,type=all,bucket=output:p1") }
			tb := NewTable()
			k := &kernelModel{rules: map[ruleID]steer.Rule{}}
			deltas, errs, maxm := 0, 0, 0
			groupOn := false
			for step := 0; step < 1500; step++ {
				old := tb
				when := fmt.Sprintf("step %d", step)
				switch x := r.IntN(20); {
				case x < 2: // ports change
					switch r.IntN(3) {
					case 0:
						delete(ports, names[r.IntN(len(names))])
					case 1:
						ports[names[r.IntN(len(names))]] = uint32(1 + r.IntN(6))
					default:
						n := names[r.IntN(len(names))]
						if _, ok := ports[n]; !ok {
							ports[n] = uint32(10 + r.IntN(3))
						}
					}
					// a port's number taken twice is not a thing the switch does
					used := map[uint32]string{}
					for _, n := range slices.Sorted(maps.Keys(ports)) {
						if o, ok := used[ports[n]]; ok && o != n {
							delete(ports, n)
							continue
						}
						used[ports[n]] = n
					}
					tb = tb.Recompile(resolve)
					when += " recompile"
				case x < 4: // liveness, maybe twice without a sync
					var dead PortSet
					dead.Add(uint32(1 + r.IntN(4)))
					tb = tb.WithDeadPorts(dead)
					if r.IntN(2) == 0 {
						tb = tb.WithDeadPorts(PortSet{})
					}
					// stored without a sync: the next change is made from it
					old = tb
					when += " liveness"
					continue
				default:
					var c Change
					c.AllowMissingPorts = true
					if !groupOn && r.IntN(3) == 0 {
						c.AddGroups = []*Group{group()}
						groupOn = true
					} else if groupOn && r.IntN(15) == 0 {
						c.DeleteGroups = []uint32{1}
						groupOn = false
					}
					c.KeepIDs = r.IntN(5) == 0
					nid := tb.NextID() + uint64(r.IntN(3))
					for n := r.IntN(4); n > 0; n-- {
						f := flow()
						if !groupOn && slices.ContainsFunc(f.Actions, func(a Action) bool { _, ok := a.GroupRef(); return ok }) {
							f = mustParse(t, "priority=100,udp,tp_dst=1,actions=drop")
						}
						if c.KeepIDs {
							f.ID = nid
							nid += 1 + uint64(r.IntN(2))
						}
						c.Add = append(c.Add, f)
					}
					ids := tb.ByID()
					for n := r.IntN(3); n > 0 && len(ids) > 0; n-- {
						id := ids[r.IntN(len(ids))].Flow.ID
						if !slices.Contains(c.Delete, id) {
							c.Delete = append(c.Delete, id)
						}
					}
					if c.empty() {
						continue
					}
					nt, err := tb.Apply(c, resolve)
					if err != nil {
						errs++
						continue // too many masks, a group in use
					}
					tb = nt
					when += fmt.Sprintf(" apply %d adds %d deletes, groups %v/%v", len(c.Add), len(c.Delete), c.AddGroups != nil, c.DeleteGroups)
				}
				if syncModel(t, k, old, tb, when) {
					deltas++
				}
				maxm = max(maxm, len(k.masks))
			}
			t.Logf("%d by delta, %d refused, %d masks at most", deltas, errs, maxm)
		})
	}
}
