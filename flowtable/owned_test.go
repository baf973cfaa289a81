package flowtable

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// TestApplyOwned: with Change.Owned an added flow's Entry holds the Flow
// given, its ID set and its port names interned (no longer slices of the
// text it was parsed from); a flow whose Actions are an installed flow's
// (a shallow copy, as ctl's installedFlows gives a replace) leaves them
// as they are; and the table is the one a copying Apply builds.
func TestApplyOwned(t *testing.T) {
	texts := []string{
		"priority=10,udp,in_port=p1,tp_dst=1,actions=mod_tp_dst:2,output:p2",
		"priority=10,udp,in_port=p1,tp_dst=3,actions=output:p2,output:p3,output:p4",
		"priority=10,tcp,in_port=p2,tp_dst=1,actions=output:p1",
	}
	parse := func() []*Flow {
		var fl []*Flow
		for _, s := range texts {
			f, err := ParseFlow(s)
			if err != nil {
				t.Fatal(err)
			}
			fl = append(fl, f)
		}
		return fl
	}
	inText := func(s string, texts []string) bool {
		for _, txt := range texts {
			p, q := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(txt)))
			if s != "" && p >= q && p < q+uintptr(len(txt)) {
				return true
			}
		}
		return false
	}
	copied := dpApply(t, NewTable(), Change{Add: parse()}, dpPorts)
	owned := parse()
	tb := dpApply(t, NewTable(), Change{Add: owned, Owned: true}, dpPorts)
	for i, f := range owned {
		e := tb.Get(tb.Added()[i])
		if e.Flow != f || f.ID != tb.Added()[i] {
			t.Errorf("flow %d: the entry holds %p (id %d), want the flow given %p", i, e.Flow, e.Flow.ID, f)
		}
		if inText(f.Match.InPort, texts) {
			t.Errorf("flow %d: in_port %q still points into the flow's text", i, f.Match.InPort)
		}
		for j := range f.Actions {
			if inText(f.Actions[j].Port, texts) {
				t.Errorf("flow %d action %d: port %q still points into the text", i, j, f.Actions[j].Port)
			}
		}
		if c := copied.Get(copied.Added()[i]); c.Text() != e.Text() || c.Rank != e.Rank || c.InPort != e.InPort || !c.Program.equal(&e.Program) {
			t.Errorf("flow %d: owned %q, copied %q", i, e.Text(), c.Text())
		}
	}

	// A replace with shallow copies of the installed flows, one of them
	// changed so that it is not kept: its new Entry shares the installed
	// flow's actions, whose names are the table's already.
	var add []*Flow
	var before []string
	for _, e := range tb.ByID() {
		c := *e.Flow
		c.ID = 0
		add = append(add, &c)
	}
	add[0].Cookie = 7
	for _, a := range tb.ByID()[0].Flow.Actions {
		before = append(before, a.Port)
	}
	nt := dpApply(t, tb, Change{Replace: true, Add: add, Owned: true}, dpPorts)
	if nt.Len() != len(texts) || nt.Get(tb.ByID()[1].Flow.ID) != tb.ByID()[1] {
		t.Fatalf("replace: %d flows, the unchanged ones not kept", nt.Len())
	}
	ne := nt.Get(nt.Added()[0])
	if ne == tb.ByID()[0] || ne.Flow.Cookie != 7 {
		t.Fatalf("the changed flow was kept")
	}
	for j, a := range tb.ByID()[0].Flow.Actions {
		if unsafe.StringData(a.Port) != unsafe.StringData(before[j]) {
			t.Errorf("action %d of an installed flow: its port name was rewritten", j)
		}
		if unsafe.StringData(ne.Flow.Actions[j].Port) != unsafe.StringData(a.Port) {
			t.Errorf("action %d: the new entry's port name is not the table's interned one", j)
		}
	}
}

// Owned installed flows given again (the same *Flow, ID set): a replace
// keeps each, a flow given twice too (the earlier of the two gets an entry
// of its own, a copy, which the later replaces), an add of one adds a
// copy, and none of the installed flows is written to.
func TestApplyOwnedInstalled(t *testing.T) {
	var add []*Flow
	for _, s := range []string{
		"priority=10,udp,in_port=p1,tp_dst=1,actions=mod_tp_dst:2,output:p2",
		"priority=10,tcp,in_port=p2,tp_dst=1,actions=output:p1",
	} {
		f, err := ParseFlow(s)
		if err != nil {
			t.Fatal(err)
		}
		add = append(add, f)
	}
	tb := dpApply(t, NewTable(), Change{Add: add, Owned: true}, dpPorts)
	was := map[*Flow]Flow{}
	for _, e := range tb.ByID() {
		was[e.Flow] = *e.Flow
	}
	a, b := tb.ByID()[0], tb.ByID()[1]
	unchanged := func() {
		t.Helper()
		for f, w := range was {
			if !reflect.DeepEqual(*f, w) {
				t.Fatalf("installed flow written to: %+v, was %+v", *f, w)
			}
		}
	}
	nt := dpApply(t, tb, Change{Replace: true, Add: []*Flow{a.Flow, b.Flow, b.Flow}, Owned: true}, dpPorts)
	unchanged()
	if nt.Len() != 2 || nt.Get(a.Flow.ID) != a || nt.Get(b.Flow.ID) != b {
		t.Fatalf("replace with a flow twice: %d flows; kept: %v, %v", nt.Len(), nt.Get(a.Flow.ID) == a, nt.Get(b.Flow.ID) == b)
	}
	// (Added: the IDs given to Change.Add, in order.) The later of the two
	// took b's entry; the earlier got one of its own (a copy of b's flow,
	// which must not be written), replaced by the later.
	if ad := nt.Added(); ad[2] != b.Flow.ID || ad[1] == b.Flow.ID || nt.Get(ad[1]) != nil {
		t.Fatalf("the flow given twice: added %v, b is %d", ad, b.Flow.ID)
	}
	at := dpApply(t, tb, Change{Add: []*Flow{a.Flow}, Owned: true}, dpPorts)
	unchanged()
	// Given to a table its own came from (as after a rollback), whose names
	// are not the ones its actions hold: the new entry has actions of its
	// own, the installed flow keeps its names.
	port := unsafe.StringData(a.Flow.Actions[1].Port)
	old := dpApply(t, NewTable(), Change{Add: []*Flow{a.Flow}, Owned: true}, dpPorts)
	unchanged()
	if unsafe.StringData(a.Flow.Actions[1].Port) != port || old.Len() != 1 {
		t.Fatalf("an add to another lineage rewrote the installed flow's port name (or added %d flows)", old.Len())
	}
	if na := at.Get(at.Added()[0]); at.Len() != 2 || na.Flow == a.Flow || na.Flow.ID == a.Flow.ID {
		t.Fatalf("an add of an installed flow: %d flows, entry %+v", at.Len(), na.Flow)
	}
}

// Owned flows that share their actions (a FlowParser's, from the same
// action text) share one program when they are in the same table, and
// each gets the program its own table compiles (resubmit's default table
// is the flow's), whatever came between.
func TestApplySharesPrograms(t *testing.T) {
	texts := []string{
		"table=1,priority=1,udp,tp_dst=1,actions=resubmit:p1",
		"table=1,priority=1,udp,tp_dst=2,actions=resubmit:p1",
		"table=2,priority=1,udp,tp_dst=1,actions=resubmit:p1",
		"table=2,priority=1,udp,tp_dst=2,actions=mod_tp_dst:9,resubmit:p1",
		"table=2,priority=1,udp,tp_dst=3,actions=resubmit:p1",
	}
	shared, own := parseShared(t, texts)
	tb := dpApply(t, NewTable(), Change{Add: shared, Owned: true}, dpPorts)
	progs := compiledAlike(t, texts, tb, dpApply(t, NewTable(), Change{Add: own}, dpPorts))
	same := func(i, j int) bool { return unsafe.SliceData(progs[i].ops) == unsafe.SliceData(progs[j].ops) }
	if !same(0, 1) {
		t.Error("two flows of table 1 with the same actions compiled twice")
	}
	if same(0, 2) {
		t.Error("flows of two tables share a program")
	}
}

// Flows that share their actions but not their table are each checked
// against their own: goto_table:2 is fine in table 1, not in table 2.
func TestApplySharedActionsCheckedPerTable(t *testing.T) {
	acts := []Action{{Type: ActGotoTable, Table: 2}}
	add := []*Flow{
		{Table: 1, Priority: 1, Actions: acts},
		{Table: 1, Priority: 2, Actions: acts},
		{Table: 2, Priority: 1, Actions: acts},
	}
	if _, err := NewTable().Apply(Change{Add: add, Owned: true}, dpPorts); err == nil || !strings.Contains(err.Error(), "goto_table:2 must go to a table after") {
		t.Fatalf("goto_table:2 in table 2, after two flows of table 1 with the same actions: %v", err)
	}
}

// A recompile after a port comes gives the flows that share their actions
// one program again, each the one (and the fast-path verdict) a fresh
// Apply against the new ports gives it, its own table's.
func TestRecompileSharesPrograms(t *testing.T) {
	texts := []string{
		"priority=1,udp,tp_dst=1,actions=output:p6",
		"priority=1,udp,tp_dst=2,actions=output:p6",
		"table=1,priority=1,udp,tp_dst=3,actions=output:p6",
		"priority=1,udp,tp_dst=4,actions=output:p6",
	}
	shared, own := parseShared(t, texts)
	with6 := dpPortMap(map[string]uint32{"p1": 1, "p2": 2, "p6": 6})
	tb := dpApply(t, NewTable(), Change{Add: shared, Owned: true, AllowMissingPorts: true}, dpPorts).Recompile(with6)
	progs := compiledAlike(t, texts, tb, dpApply(t, NewTable(), Change{Add: own}, with6))
	if unsafe.SliceData(progs[0].ops) != unsafe.SliceData(progs[1].ops) {
		t.Error("two flows with the same actions in one table were recompiled apart")
	}
}

// parseShared parses texts with one FlowParser (flows with the same action
// text share their actions) and, for comparison, each on its own.
func parseShared(t *testing.T, texts []string) (shared, own []*Flow) {
	t.Helper()
	var fp FlowParser
	for _, s := range texts {
		f, err := fp.ParseFlow(s)
		if err != nil {
			t.Fatal(err)
		}
		shared = append(shared, f)
		if f, err = ParseFlow(s); err != nil {
			t.Fatal(err)
		}
		own = append(own, f)
	}
	return shared, own
}

// compiledAlike checks that the flows of tb (by ID, one for each of texts)
// are compiled as want's are: program, verdict, fast-path reason, port
// signature and in_port. It returns tb's programs.
func compiledAlike(t *testing.T, texts []string, tb, want *Table) []*Program {
	t.Helper()
	var progs []*Program
	for i := range texts {
		e, w := tb.ByID()[i], want.ByID()[i]
		if !e.Program.equal(&w.Program) || e.verdict != w.verdict || e.fast != w.fast || e.portSig != w.portSig || e.InPort != w.InPort {
			t.Errorf("flow %d (%s): program %+v, verdict %v, fast %q, port signature %x; want %+v, %v, %q, %x",
				i, texts[i], e.Program.ops, e.verdict, e.fast, e.portSig, w.Program.ops, w.verdict, w.fast, w.portSig)
		}
		progs = append(progs, &e.Program)
	}
	return progs
}
