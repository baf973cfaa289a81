package datapath

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// checkKernelSteering checks that the kernel's steering rules are the live
// table's (Steering): each forward rule points at a live slot that holds
// its flow's record, or was demoted to a redirect for a reason (fast path
// off, no slot free, an output port that takes no redirected frames), and
// a rule forwards to no such port. It checks that the record assignment
// is exactly the forward rules' slots, and that the switch's own account
// of the kernel (masks, the count of rules the program counts, the rules
// when it keeps them) is true.
func checkKernelSteering(t *testing.T, sw *Switch, when string) {
	t.Helper()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	live := sw.table.Load()
	want, flows, err := live.SteeringFlows(&steer.Table{Masks: sw.masks})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want.Masks, sw.masks) && len(want.Masks)+len(sw.masks) > 0 {
		t.Fatalf("%s: masks %v, the table's %v", when, sw.masks, want.Masks)
	}
	got, err := sw.bpf.DumpRules()
	if err != nil {
		t.Fatal(err)
	}
	kernel := map[ruleAt]steer.Rule{}
	for _, r := range got {
		kernel[ruleAt{r.MaskID, r.Key}] = r
	}
	if len(kernel) != len(want.Rules) {
		t.Errorf("%s: the kernel has %d rules, the table %d", when, len(kernel), len(want.Rules))
	}
	fp := sw.fast
	fp.mu.Lock()
	defer fp.mu.Unlock()
	var slots flowSlotsBuilder
	var counted int64
	for i := range want.Rules {
		w := want.Rules[i]
		g, ok := kernel[ruleAt{w.MaskID, w.Key}]
		if !ok {
			t.Errorf("%s: flow %d's rule is not in the kernel", when, w.Flow)
			continue
		}
		if w.Verdict == steer.VerdictForward {
			out, _ := flows[i].FastPathOutput()
			tx := fp.txOKLocked(out, flows[i])
			switch g.Verdict {
			case steer.VerdictForward:
				sl := fp.slots[g.Arg]
				if sl.state != slotLive || sl.flow != w.Flow || sl.entry != flows[i] {
					t.Errorf("%s: flow %d's rule points at slot %d: state %d, flow %d, its entry %v", when, w.Flow, g.Arg, sl.state, sl.flow, sl.entry == flows[i])
				}
				if !tx || fp.off {
					t.Errorf("%s: flow %d runs in XDP, to port %d which takes no redirected frames (tx %v off %v)", when, w.Flow, out, tx, fp.off)
				}
				w.Arg = g.Arg
				slots.add(w.Flow, g.Arg)
			case steer.VerdictRedirect:
				if tx && !fp.off && !fp.isFull(w.Flow) {
					t.Errorf("%s: flow %d demoted for no reason (out %d)", when, w.Flow, out)
				}
				w.Verdict = steer.VerdictRedirect
			}
		}
		if g != w {
			t.Errorf("%s: kernel rule %+v\nthe table's       %+v", when, g, w)
		}
		if !w.Verdict.ToUser() {
			counted++
		}
	}
	if byFlow := slots.build(); !slices.Equal(byFlow.ids, fp.byFlow.ids) || !slices.Equal(byFlow.slots, fp.byFlow.slots) {
		t.Errorf("%s: the assignment holds %d flows, the rules %d", when, fp.byFlow.len(), byFlow.len())
	}
	if n := sw.kernelRules.Load(); n != counted {
		t.Errorf("%s: %d kernel-counted rules, the table has %d", when, n, counted)
	}
	if sw.steering != nil {
		if !slices.Equal(sw.steering.Masks, sw.masks) || len(sw.steering.Rules) != len(got) {
			t.Errorf("%s: the switch's copy of the rules: %d rules, the kernel %d", when, len(sw.steering.Rules), len(got))
		}
		for _, r := range sw.steering.Rules {
			if kernel[ruleAt{r.MaskID, r.Key}] != r {
				t.Errorf("%s: the switch's copy has rule %+v, the kernel %+v", when, r, kernel[ruleAt{r.MaskID, r.Key}])
				break
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// ruleAt is a rule's place in the kernel's map.
type ruleAt struct {
	mask uint32
	key  steer.Key
}

// Random small changes (adds that replace or outrank flows, deletes,
// mixes, a port coming and going) go by delta, and after each the
// kernel's rules, records and the switch's account of them are what a
// full compile gives; a replace between them goes the full way from what
// a delta left.
func TestSyncByDelta(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true})
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	sw := tp.sw
	deltas := 0
	onDeltaPlan = func() { deltas++ }
	t.Cleanup(func() { onDeltaPlan = nil })

	rng := rand.New(rand.NewPCG(13, 7))
	actions := []string{"output:{b}", "mod_nw_dst:10.9.9.9,output:{b}", "drop", "kernel", "goto_table:1", "output:{c}", "mod_nw_tos:8,output:{a}"}
	flow := func() string {
		act := actions[rng.IntN(len(actions))]
		prio := 100 + rng.IntN(4)*10
		switch rng.IntN(5) {
		case 0, 1: // a large group: exact 5-tuples
			return fmt.Sprintf("priority=%d,udp,in_port={a},nw_dst=10.1.%d.%d,tp_dst=%d,actions=%s", prio, rng.IntN(4), rng.IntN(250), 7000+rng.IntN(2), act)
		case 2: // few keys, many priorities: the best flow of a key changes
			return fmt.Sprintf("priority=%d,udp,tp_dst=%d,actions=%s", prio, rng.IntN(8), act)
		case 3: // flows of a port that comes and goes
			return fmt.Sprintf("priority=%d,in_port={c},ip,nw_dst=10.2.%d.0/24,actions=%s", prio, rng.IntN(16), act)
		default: // a mask of a few flows that comes and goes
			return fmt.Sprintf("priority=%d,tcp,tp_src=%d,actions=%s", prio, rng.IntN(6), act)
		}
	}
	installed := func() []uint64 {
		var ids []uint64
		for _, e := range sw.Pipeline().ByID() {
			ids = append(ids, e.Flow.ID)
		}
		return ids
	}
	var seed []string
	for range 1500 {
		seed = append(seed, flow())
	}
	if _, err := sw.Apply(Change{Add: tp.flows(t, seed...)}); err != nil {
		t.Fatal(err)
	}
	checkKernelSteering(t, sw, "seed")
	cPort := true
	full := 0
	for step := range 300 {
		var ch Change
		var what string
		switch r := rng.IntN(20); {
		case r < 7:
			n := 1 + rng.IntN(4)
			for range n {
				ch.Add = append(ch.Add, tp.flow(t, flow()))
			}
			what = fmt.Sprintf("add %d", n)
		case r < 14:
			ids := installed()
			n := 1 + rng.IntN(4)
			for range n {
				ch.Delete = append(ch.Delete, ids[rng.IntN(len(ids))])
			}
			slices.Sort(ch.Delete)
			ch.Delete = slices.Compact(ch.Delete)
			what = fmt.Sprintf("delete %v", ch.Delete)
		case r < 18:
			ids := installed()
			ch.Delete = []uint64{ids[rng.IntN(len(ids))]}
			ch.Add = []*flowtable.Flow{tp.flow(t, flow()), tp.flow(t, flow())}
			what = fmt.Sprintf("delete %v and add 2", ch.Delete)
		case r < 19:
			// A port goes or comes: its flows are recompiled.
			var err error
			if cPort {
				err = sw.DeletePort(c.port())
			} else {
				_, err = sw.AddPort(PortSpec{Name: c.port()})
			}
			if err != nil {
				t.Fatal(err)
			}
			cPort = !cPort
			checkKernelSteering(t, sw, fmt.Sprintf("step %d: port c %v", step, cPort))
			continue
		default:
			// A replace: the full way, from the rules a delta left.
			for _, e := range sw.Pipeline().ByID() {
				f := *e.Flow
				ch.Add = append(ch.Add, &f)
			}
			ch.Add = append(ch.Add, tp.flow(t, flow()))
			ch.Replace = true
			full++
			what = "replace"
		}
		ch.AllowMissingPorts = !cPort
		if _, err := sw.Apply(ch); err != nil {
			t.Fatalf("step %d: %s: %v", step, what, err)
		}
		checkKernelSteering(t, sw, fmt.Sprintf("step %d: %s", step, what))
	}
	if deltas < 200 {
		t.Fatalf("%d of 300 changes went by delta", deltas)
	}
	if st := sw.Stats().Syncs; st.Delta != uint64(deltas) || st.Full == 0 {
		t.Fatalf("stats count %d syncs by delta and %d full; %d went by delta", st.Delta, st.Full, deltas)
	}
	t.Logf("%d changes by delta, %d replaces", deltas, full)
}

// A change by delta that its commit refuses leaves the kernel, the records
// and the switch's account as they were, and the next one goes through.
func TestSyncByDeltaRefused(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true})
	sw := tp.sw
	deltas := 0
	onDeltaPlan = func() { deltas++ }
	t.Cleanup(func() { onDeltaPlan = nil })
	var seed []string
	for i := range 600 {
		seed = append(seed, fmt.Sprintf("priority=100,udp,in_port={a},nw_dst=10.1.%d.%d,actions=mod_tp_dst:9,output:{b}", i/200, i%200))
	}
	tp.addFlows(t, seed...)
	ids := tp.addFlows(t, "priority=100,udp,in_port={a},nw_dst=10.1.9.1,actions=mod_tp_dst:9,output:{b}")
	checkKernelSteering(t, sw, "seed")
	refuse := errors.New("disk full")
	for _, ch := range []Change{
		{Add: tp.flows(t, "priority=200,udp,in_port={a},nw_dst=10.1.0.7,actions=drop", "priority=100,udp,in_port={a},nw_dst=10.1.8.8,actions=output:{b}")},
		{Delete: ids},
		{Delete: []uint64{3}, Add: tp.flows(t, "priority=100,udp,in_port={a},nw_dst=10.1.0.9,actions=mod_nw_dst:10.0.0.1,output:{b}")},
	} {
		before := deltas
		if _, err := sw.ApplyCommit(ch, func(*flowtable.Table) error { return refuse }); !errors.Is(err, refuse) {
			t.Fatalf("apply: %v, want %v", err, refuse)
		}
		if deltas != before+1 {
			t.Fatalf("the refused change did not go by delta")
		}
		checkKernelSteering(t, sw, "refused")
		if _, err := sw.Apply(ch); err != nil {
			t.Fatal(err)
		}
		checkKernelSteering(t, sw, "applied")
	}
}

// resyncChangesNothing: a full sync from what a delta left writes the
// kernel's rules as they are.
func resyncChangesNothing(t *testing.T, sw *Switch, when string) {
	t.Helper()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.fast.mu.Lock()
	full := len(sw.fast.full)
	sw.fast.mu.Unlock()
	if full > 0 {
		return
	}
	before, _ := sw.bpf.DumpRules()
	if err := sw.resyncLocked(); err != nil {
		t.Fatal(err)
	}
	after, _ := sw.bpf.DumpRules()
	m := map[ruleAt]steer.Rule{}
	for _, r := range before {
		m[ruleAt{r.MaskID, r.Key}] = r
	}
	diff := 0
	for _, r := range after {
		if o := m[ruleAt{r.MaskID, r.Key}]; o != r {
			if diff < 5 {
				t.Errorf("%s: a full resync rewrote %+v\ninto %+v", when, o, r)
			}
			diff++
		}
	}
	if len(before) != len(after) || diff > 0 {
		t.Fatalf("%s: a full resync changed %d rules (%d -> %d)", when, diff, len(before), len(after))
	}
}

// TestSyncByDeltaDemoted is TestSyncByDelta with demoted forward
// rules: few record slots, a port that takes no redirected frames, and its
// fast path output coming and going.
func TestSyncByDeltaDemoted(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true, Config: Config{FastPathFlows: 32}})
	tp.opts.FastPath = false // c's peer has no GRO: c takes no redirected frames
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	sw := tp.sw
	deltas := 0
	onDeltaPlan = func() { deltas++ }
	t.Cleanup(func() { onDeltaPlan = nil })

	rng := rand.New(rand.NewPCG(5, 9))
	actions := []string{"output:{b}", "mod_nw_dst:10.9.9.9,output:{b}", "drop", "output:{c}", "mod_nw_tos:8,output:{c}", "in_port"}
	flow := func() string {
		act := actions[rng.IntN(len(actions))]
		prio := 100 + rng.IntN(4)*10
		switch rng.IntN(3) {
		case 0:
			return fmt.Sprintf("priority=%d,udp,in_port={a},nw_dst=10.1.0.%d,actions=%s", prio, rng.IntN(60), act)
		case 1:
			return fmt.Sprintf("priority=%d,udp,in_port={c},tp_dst=%d,actions=%s", prio, rng.IntN(8), act)
		default:
			return fmt.Sprintf("priority=%d,udp,tp_dst=%d,actions=%s", prio, 100+rng.IntN(8), act)
		}
	}
	var seed []string
	for range 250 {
		seed = append(seed, flow())
	}
	if _, err := sw.Apply(Change{Add: tp.flows(t, seed...)}); err != nil {
		t.Fatal(err)
	}
	checkKernelSteering(t, sw, "seed")
	cTx := false
	maxFull := 0
	for step := range 300 {
		var ch Change
		what := ""
		switch r := rng.IntN(20); {
		case r < 9:
			for n := 1 + rng.IntN(3); n > 0; n-- {
				ch.Add = append(ch.Add, tp.flow(t, flow()))
			}
			what = "add"
		case r < 16 && len(sw.Pipeline().ByID()) > 0:
			ids := sw.Pipeline().ByID()
			for n := 1 + rng.IntN(3); n > 0; n-- {
				id := ids[rng.IntN(len(ids))].Flow.ID
				if !slices.Contains(ch.Delete, id) {
					ch.Delete = append(ch.Delete, id)
				}
			}
			what = "delete"
		case r >= 16 && r < 18:
			// c's fast path output changes, as refreshFastPath sees it.
			cTx = !cTx
			sw.mu.Lock()
			p := sw.ports[c.port()]
			if err := sw.setPortTxLocked(p, cTx, "no_ndo_xdp_xmit"); err != nil {
				t.Fatal(err)
			}
			err := sw.resyncLocked()
			sw.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			checkKernelSteering(t, sw, fmt.Sprintf("step %d: c tx %v", step, cTx))
			continue
		case r >= 18:
			// Free the retired slots, and give them to the flows waiting.
			sw.refreshFastPath()
			checkKernelSteering(t, sw, fmt.Sprintf("step %d: refresh", step))
			continue
		}
		if len(ch.Add)+len(ch.Delete) == 0 {
			t.Logf("step %d: empty table", step)
			continue
		}
		if _, err := sw.Apply(ch); err != nil {
			t.Fatalf("step %d: %s: %v", step, what, err)
		}
		when := fmt.Sprintf("step %d: %s", step, what)
		sw.fast.mu.Lock()
		maxFull = max(maxFull, len(sw.fast.full))
		sw.fast.mu.Unlock()
		checkKernelSteering(t, sw, when)
		if rng.IntN(3) == 0 {
			resyncChangesNothing(t, sw, when)
		}
	}
	t.Logf("%d by delta, %d flows waiting at most, %d flows", deltas, maxFull, len(sw.Pipeline().ByID()))
}

// A resync after a port stops taking redirected frames can fail (and roll
// back): fp.tx then says the port takes none while the kernel's rules still
// forward to it, and refreshFastPath does not try again (fp.tx is already
// what it reads). The next change goes the full way (fastPath.txMoved),
// which puts the rules right, though it touches another key; by delta it
// would leave them.
func TestSyncByDeltaAfterFailedTxResync(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true})
	sw := tp.sw
	tp.addFlows(t, "priority=100,udp,in_port={a},tp_dst=7,actions=output:{b}")
	checkKernelSteering(t, sw, "seed")
	// refreshFastPath's first half, its resync failing and rolled back:
	// the kernel's rules stay those of the sync before.
	sw.mu.Lock()
	if err := sw.setPortTxLocked(sw.ports[tp.b.port()], false, "no_ndo_xdp_xmit"); err != nil {
		t.Fatal(err)
	}
	sw.mu.Unlock()
	// The next change, of another key.
	tp.addFlows(t, "priority=100,udp,in_port={a},tp_dst=8,actions=drop")
	checkKernelSteering(t, sw, "a change after the failed resync")
}

// Syncs whose PutRules the kernel refuses (the early or the late one) roll
// back to the rules a delta left; the account stays, and later changes by
// delta still end where a full compile does.
func TestSyncByDeltaRollback(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true, Config: Config{FastPathFlows: 64}})
	sw := tp.sw
	rng := rand.New(rand.NewPCG(3, 4))
	actions := []string{"output:{b}", "mod_nw_dst:10.9.9.9,output:{b}", "drop", "kernel", "goto_table:1"}
	flow := func() string {
		return fmt.Sprintf("priority=%d,udp,in_port={a},tp_dst=%d,actions=%s", 100+10*rng.IntN(3), rng.IntN(40), actions[rng.IntN(len(actions))])
	}
	var seed []string
	for range 60 {
		seed = append(seed, flow())
	}
	tp.addFlows(t, seed...)
	refuse := fmt.Errorf("refused")
	defer func() { bpf.FailPutRules = nil }()
	fails := 0
	for step := range 300 {
		var ch Change
		for n := rng.IntN(3); n > 0; n-- {
			ch.Add = append(ch.Add, tp.flow(t, flow()))
		}
		ids := sw.Pipeline().ByID()
		for n := rng.IntN(3); n > 0 && len(ids) > 0; n-- {
			id := ids[rng.IntN(len(ids))].Flow.ID
			if !slices.Contains(ch.Delete, id) {
				ch.Delete = append(ch.Delete, id)
			}
		}
		if len(ch.Add)+len(ch.Delete) == 0 {
			continue
		}
		fail := rng.IntN(3) // 0: none, 1: the first PutRules, 2: the second
		calls := 0
		bpf.FailPutRules = func([]steer.Rule) error {
			calls++
			if calls == fail {
				return refuse
			}
			return nil
		}
		sw.mu.Lock()
		sw.fast.mu.Lock()
		byFlow := flowSlots{slices.Clone(sw.fast.byFlow.ids), slices.Clone(sw.fast.byFlow.slots)}
		full := slices.Clone(sw.fast.full)
		sw.fast.mu.Unlock()
		masks, krules, gen := slices.Clone(sw.masks), sw.kernelRules.Load(), sw.table.Load().Gen()
		sw.mu.Unlock()
		_, err := sw.Apply(ch)
		bpf.FailPutRules = nil
		when := fmt.Sprintf("step %d (fail %d, err %v)", step, fail, err)
		if err != nil {
			fails++
			sw.mu.Lock()
			sw.fast.mu.Lock()
			same := slices.Equal(byFlow.ids, sw.fast.byFlow.ids) && slices.Equal(byFlow.slots, sw.fast.byFlow.slots) && slices.Equal(full, sw.fast.full)
			sw.fast.mu.Unlock()
			same = same && slices.Equal(masks, sw.masks) && krules == sw.kernelRules.Load() && gen == sw.table.Load().Gen()
			sw.mu.Unlock()
			if !same {
				t.Fatalf("%s: a failed sync changed the switch's account", when)
			}
		}
		checkKernelSteering(t, sw, when)
	}
	t.Logf("%d refused", fails)
}

// flowSlots.patch agrees with a map, with spare capacity or without.
func TestFlowSlotsPatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 20000; it++ {
		ref := map[uint64]uint32{}
		var b flowSlotsBuilder
		for n := r.IntN(20); n > 0; n-- {
			id := uint64(r.IntN(40))
			if _, ok := ref[id]; !ok {
				ref[id] = uint32(r.IntN(1000))
				b.add(id, ref[id])
			}
		}
		fs := b.build()
		// spare capacity sometimes, to catch aliasing
		if r.IntN(2) == 0 {
			fs.ids = slices.Grow(fs.ids, 10)
			fs.slots = slices.Grow(fs.slots, 10)
		}
		var gone []uint64
		for n := r.IntN(10); n > 0; n-- {
			gone = append(gone, uint64(r.IntN(45)))
		}
		slices.Sort(gone)
		gone = slices.Compact(gone)
		var ab flowSlotsBuilder
		for _, id := range gone {
			delete(ref, id)
		}
		for _, id := range gone {
			if r.IntN(2) == 0 {
				ref[id] = uint32(2000 + r.IntN(1000))
				ab.add(id, ref[id])
			}
		}
		for n := r.IntN(5); n > 0; n-- {
			id := uint64(r.IntN(60))
			if _, ok := ref[id]; !ok && !slices.Contains(gone, id) {
				ref[id] = uint32(5000 + r.IntN(1000))
				ab.add(id, ref[id])
			}
		}
		fs.patch(gone, ab.build())
		if len(fs.ids) != len(ref) || len(fs.slots) != len(ref) || !slices.IsSorted(fs.ids) {
			t.Fatalf("it %d: %v %v, want %v", it, fs.ids, fs.slots, ref)
		}
		for i, id := range fs.ids {
			if ref[id] != fs.slots[i] {
				t.Fatalf("it %d: %v %v, want %v", it, fs.ids, fs.slots, ref)
			}
		}
	}
}
