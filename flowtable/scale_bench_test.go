package flowtable

import (
	"fmt"
	"testing"
)

// Benchmarks of what a bulk request of many flows costs the flow table:
// parsing the text form, and the bytes an installed flow takes.

// scaleFlowTexts returns n distinct exact-match flows of one mask, the
// shape of the 160k-flow table:
//
//	priority=100,udp,in_port=p1,nw_dst=10.A.B.C,tp_dst=7999,actions=mod_tp_dst:7998,output:p2
func scaleFlowTexts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("priority=100,udp,in_port=p1,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:p2",
			i/65536%256, i/256%256, i%256)
	}
	return out
}

// BenchmarkParseFlow parses one flow of the shape above.
func BenchmarkParseFlow(b *testing.B) {
	texts := scaleFlowTexts(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseFlow(texts[i&1023]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlowString prints one flow of the shape above in canonical
// form, as a save of the state and a dump do for every flow.
func BenchmarkFlowString(b *testing.B) {
	texts := scaleFlowTexts(1024)
	flows := make([]*Flow, len(texts))
	for i, s := range texts {
		f, err := ParseFlow(s)
		if err != nil {
			b.Fatal(err)
		}
		flows[i] = f
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = flows[i&1023].String()
	}
}

// BenchmarkFlowParser is BenchmarkParseFlow with a FlowParser, as a bulk
// request parses.
func BenchmarkFlowParser(b *testing.B) {
	texts := scaleFlowTexts(1024)
	var fp FlowParser
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := fp.ParseFlow(texts[i&1023]); err != nil {
			b.Fatal(err)
		}
	}
}
