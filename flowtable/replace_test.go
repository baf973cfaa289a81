package flowtable

import (
	"errors"
	"slices"
	"testing"
)

// A replace keeps every flow it gives exactly as installed (ID, counters,
// install time), as ovs-ofctl replace-flows leaves such flows alone; the
// others are new.
func TestReplaceKeepsUnchangedFlows(t *testing.T) {
	web := dpMatch().dlType(0x0800).nwProto(6).tpDst(80).get()
	dns := dpMatch().dlType(0x0800).nwProto(17).tpDst(53).get()
	v6 := dpMatch().dlType(0x86dd).get()
	flows := func() []*Flow {
		return []*Flow{dpFlow(100, web, dpOut("p2")), dpFlow(200, dns, dpOut("p3")), dpFlow(5, v6, dpOut("p2"))}
	}
	t1 := dpApply(t, NewTable(), Change{Add: flows()}, dpPorts)
	t1.Get(1).Hit(3, 300, 1)

	tests := []struct {
		name     string
		change   func(fl []*Flow) []*Flow
		added    []uint64 // Added, in the order of the request
		same     bool     // the pipeline is t1's (same generation)
		keptSubs int      // table 0 subtables shared with t1
	}{
		{"same flows", func(fl []*Flow) []*Flow { return fl }, []uint64{1, 2, 3}, true, 2},
		{"other order", func(fl []*Flow) []*Flow { return []*Flow{fl[2], fl[0], fl[1]} }, []uint64{3, 1, 2}, true, 2},
		{"an action differs", func(fl []*Flow) []*Flow { fl[1].Actions[0].Port = "p4"; return fl }, []uint64{1, 5, 3}, false, 1},
		{"a cookie differs", func(fl []*Flow) []*Flow { fl[0].Cookie = 7; return fl }, []uint64{4, 2, 3}, false, 1},
		{"a timeout differs", func(fl []*Flow) []*Flow { fl[2].IdleTimeout = 9; return fl }, []uint64{1, 2, 6}, false, 1},
		{"a flow fewer", func(fl []*Flow) []*Flow { return fl[:2] }, []uint64{1, 2}, false, 1},
		{"a flow more", func(fl []*Flow) []*Flow { return append(fl, dpFlow(7, v6, dpOut("p3"))) }, []uint64{1, 2, 3, 7}, false, 1},
		// The later of the two keeps flow 1 (ID, counters), as ovs-ofctl
		// replace-flows leaves a flow its file gives twice; the earlier,
		// which it replaces, had ID 4.
		{"given twice", func(fl []*Flow) []*Flow { return append(fl, dpFlow(100, web, dpOut("p2"))) }, []uint64{4, 2, 3, 1}, false, 2},
		{"given twice, the second changed", func(fl []*Flow) []*Flow { return append(fl, dpFlow(100, web, dpOut("p3"))) }, []uint64{1, 2, 3, 7}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t2 := dpApply(t, t1, Change{Replace: true, Add: tt.change(flows())}, dpPorts)
			if !slices.Equal(t2.Added(), tt.added) {
				t.Errorf("added %v, want %v", t2.Added(), tt.added)
			}
			if (t2.Gen() == t1.Gen()) != tt.same {
				t.Errorf("generation kept: %v, want %v", t2.Gen() == t1.Gen(), tt.same)
			}
			if !slices.IsSortedFunc(t2.flows, func(a, b *Entry) int { return int(a.id()) - int(b.id()) }) {
				t.Errorf("flows not by ID: %v", ids(t2.flows))
			}
			for _, id := range tt.added {
				if e := t2.Get(id); e == nil && id != tt.added[0] {
					t.Errorf("flow %d missing", id)
				} else if e != nil && id <= 3 && e != t1.Get(id) {
					t.Errorf("flow %d kept but not its entry", id)
				}
			}
			if e := t2.Get(1); e != nil && e.Packets() != 3 {
				t.Errorf("kept flow's counters: %d packets", e.Packets())
			}
			kept := 0
			for _, s := range t2.tables[0].subs {
				if slices.Contains(t1.tables[0].subs, s) {
					kept++
				}
			}
			if kept != tt.keptSubs {
				t.Errorf("%d subtables shared with the old table, want %d", kept, tt.keptSubs)
			}
			// Whatever was kept, the table answers as one built afresh.
			fresh := dpApply(t, NewTable(), Change{Add: tt.change(flows())}, dpPorts)
			for _, k := range []Key{web.Key, dns.Key, v6.Key} {
				k.SetInPort(1)
				got, want := t2.Lookup(&k), fresh.Lookup(&k)
				if (got == nil) != (want == nil) || got != nil && !sameFlow(got.Flow, want.Flow) {
					t.Errorf("lookup %x: %v, fresh table %v", k[16:24], flowID(got), flowID(want))
				}
			}
		})
	}
}

// Entry.Text is Flow.String, printed once for the flow: a Recompile's new
// Entry for it shares the text.
func TestEntryText(t *testing.T) {
	ports := map[string]uint32{"p1": 1, "p2": 2}
	t1 := dpApply(t, NewTable(), Change{Add: []*Flow{dpFlow(100, dpMatch().dlType(0x0800).get(), dpOut("p2"))}}, dpPortMap(ports))
	e := t1.Get(1)
	if e.Text() != e.Flow.String() || e.Text() != "priority=100,ip,actions=output:p2" {
		t.Fatalf("text %q, flow %q", e.Text(), e.Flow.String())
	}
	ports["p2"] = 7
	t2 := t1.Recompile(dpPortMap(ports))
	if e2 := t2.Get(1); e2 == e || e2.stats.text.Load() != e.stats.text.Load() {
		t.Fatal("recompiled entry does not share the flow's text")
	}
}

// Flows whose keep hashes collide are all kept: two flows of one priority
// whose keys, masked, are the same under two masks hash alike.
func TestReplaceKeepsCollidingFlows(t *testing.T) {
	flows := func() []*Flow {
		return []*Flow{
			dpFlow(100, dpMatch().dlType(0x0800).get(), dpOut("p2")),
			dpFlow(100, dpMatch().dlType(0x0800).nwDst("0.0.0.0/8").get(), dpOut("p2")),
			dpFlow(100, dpMatch().dlType(0x0800).nwDst("0.0.0.0/16").get(), dpOut("p2")),
		}
	}
	fl := flows()
	if keepHash(fl[0]) != keepHash(fl[1]) || keepHash(fl[1]) != keepHash(fl[2]) {
		t.Fatal("the flows' keep hashes differ: the test needs them alike")
	}
	t1 := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		f := flows()
		var add []*Flow
		var want []uint64
		for _, i := range order {
			add = append(add, f[i])
			want = append(want, uint64(i+1))
		}
		t2 := dpApply(t, t1, Change{Replace: true, Add: add}, dpPorts)
		if !slices.Equal(t2.Added(), want) || t2.Gen() != t1.Gen() {
			t.Errorf("order %v: added %v (want %v), generation kept %v", order, t2.Added(), want, t2.Gen() == t1.Gen())
		}
	}
}

// A replace keeps an installed flow only if the flow would be accepted as
// added: one naming a port that is gone is refused, as an add is (unless
// the change allows missing ports).
func TestReplaceKeepsOnlyResolvingFlows(t *testing.T) {
	parse := func() *Flow {
		f, err := ParseFlow("udp,actions=output:p9")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	t0, err := NewTable().Apply(Change{Add: []*Flow{parse()}}, dpPortMap(map[string]uint32{"p1": 1, "p9": 9}))
	if err != nil {
		t.Fatal(err)
	}
	gone := dpPortMap(map[string]uint32{"p1": 1})
	if _, err := t0.Apply(Change{Replace: true, Add: []*Flow{parse()}}, gone); !errors.Is(err, ErrNoSuchPort) {
		t.Errorf("replace naming a gone port: %v, want %v", err, ErrNoSuchPort)
	}
	if _, err := t0.Apply(Change{Replace: true, AllowMissingPorts: true, Add: []*Flow{parse()}}, gone); err != nil {
		t.Errorf("replace allowing missing ports: %v", err)
	}
}
