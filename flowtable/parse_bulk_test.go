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
