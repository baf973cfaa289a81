package flowtable

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// A FlowParser gives every flow and every error ParseFlow gives, whatever
// it parsed before, and its flows keep nothing of their texts: the texts
// may be overwritten once parsed.
func TestFlowParserAgrees(t *testing.T) {
	texts := append([]string{}, fuzzFlowSeeds...)
	texts = append(texts, scaleFlowTexts(300)...) // past a block
	texts = append(texts,
		`in_port="7",actions=output:"p1",output:3,resubmit:p5,resubmit(p6,2)`,
		"in_port=p0,actions=output:p1,output:p2,output:p3,output:p4,output:p5,output:p6", // more refs than remembered
		"ip,actions="+strings.Repeat("output:p1,", 200)+"output:p2",                      // more actions than a block
		"in_port=NORMAL,actions=drop", "actions=output:p1,drop", "bogus=1,actions=drop",
		// The same action texts under matches and tables they do not
		// suit: each flow's checks run, and their errors point into its
		// own text.
		"udp,actions=mod_tp_dst:1,output:p1", "ip,actions=mod_tp_dst:1,output:p1",
		"priority=7,ip,actions=mod_tp_dst:1,output:p1", "tcp,actions=mod_tp_dst:1,output:p1",
		"actions=kernel", "table=1,actions=kernel", "table=2,priority=3,actions=kernel",
		"dl_vlan=5,actions=set_field:3->vlan_pcp", "ip,actions=set_field:3->vlan_pcp",
		"table=1,actions=goto_table:2", "table=2,actions=goto_table:2",
		// ... and with a shorter match than the flow that parsed them
		// first: the shared list's offsets are past this text's end.
		"priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1", "ip,actions=mod_tp_dst:7998,output:p1",
		"priority=100,udp,in_port=p0,tp_dst=7999,actions=goto_table:1", "table=1,actions=goto_table:1",
		"priority=100,dl_vlan=5,in_port=p0,actions=set_field:3->vlan_pcp", "actions=set_field:3->vlan_pcp",
	)
	var fp FlowParser
	for round := range 2 {
		for _, text := range texts {
			want, werr := ParseFlow(text)
			buf := []byte(text)
			got, gerr := fp.ParseFlow(unsafe.String(unsafe.SliceData(buf), len(buf)))
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("round %d: %q: error %v, ParseFlow's %v", round, text, gerr, werr)
			}
			if werr != nil {
				continue
			}
			for i := range buf {
				buf[i] = '#'
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: %q:\n got  %+v\n want %+v", round, text, got, want)
			}
			if got.String() != want.String() {
				t.Fatalf("round %d: %q: prints %q, ParseFlow's %q", round, text, got.String(), want.String())
			}
		}
	}
}

// The actions of a flow from a FlowParser end at its own: appending to
// them does not reach the next flow's.
func TestFlowParserActionsCapped(t *testing.T) {
	var fp FlowParser
	a, err := fp.ParseFlow("actions=output:p1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fp.ParseFlow("actions=output:p2,output:p3")
	if err != nil {
		t.Fatal(err)
	}
	_ = append(a.Actions, Action{Type: ActOutput, Port: "p9"})
	if b.Actions[0].Port != "p2" {
		t.Fatalf("appending to a flow's actions changed the next flow's: %+v", b.Actions)
	}
}

// Flows of a FlowParser with the same action text share one Actions slice
// (one parse, one allocation); other texts get their own.
func TestFlowParserSharesActions(t *testing.T) {
	var fp FlowParser
	parse := func(text string) *Flow {
		t.Helper()
		f, err := fp.ParseFlow(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		return f
	}
	a := parse("udp,nw_dst=10.0.0.1,actions=mod_tp_dst:7998,output:p1")
	b := parse("priority=5,udp,nw_dst=10.0.0.2,actions=mod_tp_dst:7998,output:p1")
	c := parse("udp,actions=mod_tp_dst:7998,output:p2")
	if _, err := fp.ParseFlow("ip,actions=mod_tp_dst:7998,output:p1"); err == nil {
		t.Fatal("mod_tp_dst under an ip match parsed")
	}
	d := parse("udp,nw_dst=10.0.0.3,actions=mod_tp_dst:7998,output:p1")
	if unsafe.SliceData(a.Actions) != unsafe.SliceData(b.Actions) || unsafe.SliceData(a.Actions) != unsafe.SliceData(d.Actions) {
		t.Error("flows with the same action text have actions of their own")
	}
	if unsafe.SliceData(a.Actions) == unsafe.SliceData(c.Actions) || c.Actions[1].Port != "p2" {
		t.Errorf("a flow with other actions shares them: %+v", c.Actions)
	}
}
