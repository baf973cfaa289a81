package flowtable

import (
	"fmt"
	"slices"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
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

// scaleFlows parses scaleFlowTexts(n) as a bulk request does, with a
// FlowParser (the flows share their actions).
func scaleFlows(b *testing.B, n int) []*Flow {
	flows := make([]*Flow, n)
	var fp FlowParser
	for i, s := range scaleFlowTexts(n) {
		f, err := fp.ParseFlow(s)
		if err != nil {
			b.Fatal(err)
		}
		flows[i] = f
	}
	return flows
}

// BenchmarkBulkApply is the flow table's part of a bulk request of 160k
// flows of the shape above (one mask): Apply into an empty table (install),
// Apply of the same flows as a replace (replace-same), the steering rules
// of the new table (steering: SteeringFlows, prev nil as on the first
// install) and their diff against nothing (diff-install) and against
// themselves (diff-same, what a resync of an unchanged table costs).
//
//	go test -run '^$' -bench BulkApply -benchmem ./flowtable/
func BenchmarkBulkApply(b *testing.B) {
	const n = 160_000
	flows := scaleFlows(b, n)
	b.Run("install", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewTable().Apply(Change{Add: flows}, dpPorts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/flow")
	})
	// As ctl installs: the table keeps the flows it is given. (Each round
	// gets flows of its own, copied outside the timer; their Actions are
	// shared, as Owned allows for an installed flow's.)
	b.Run("install-owned", func(b *testing.B) {
		b.ReportAllocs()
		own := make([]Flow, n)
		add := make([]*Flow, n)
		for b.Loop() {
			b.StopTimer()
			for i, f := range flows {
				own[i] = *f
				add[i] = &own[i]
			}
			b.StartTimer()
			if _, err := NewTable().Apply(Change{Add: add, Owned: true}, dpPorts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/flow")
	})
	tb := dpApply(b, NewTable(), Change{Add: flows}, dpPorts)
	b.Run("replace-same", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tb.Apply(Change{Replace: true, Add: flows}, dpPorts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("steering", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := tb.SteeringFlows(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	st, _, err := tb.SteeringFlows(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("diff-install", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := DiffSteering(nil, st); len(d.PutLate)+len(d.PutEarly) != n {
				b.Fatalf("diff puts %d rules", len(d.PutLate)+len(d.PutEarly))
			}
		}
	})
	b.Run("diff-one-gone-mid", func(b *testing.B) { // a flow deleted from the middle
		mid := &steer.Table{Masks: st.Masks, Rules: slices.Delete(slices.Clone(st.Rules), n/2, n/2+1)}
		b.ReportAllocs()
		for b.Loop() {
			if d := DiffSteering(st, mid); len(d.Delete) != 1 || len(d.PutLate)+len(d.PutEarly) != 0 {
				b.Fatalf("diff deletes %d rules, puts %d", len(d.Delete), len(d.PutLate)+len(d.PutEarly))
			}
		}
	})
	b.Run("diff-same", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := DiffSteering(st, st); len(d.PutLate)+len(d.PutEarly)+len(d.Delete) != 0 {
				b.Fatal("diff of a table with itself changes something")
			}
		}
	})
}

// BenchmarkRecompile recompiles 160k flows of the shape above, parsed as
// a bulk request parses them (their actions shared), after the port they
// output to got another ofport: what a port removed and added again costs
// the table.
//
//	go test -run '^$' -bench Recompile -benchmem ./flowtable/
func BenchmarkRecompile(b *testing.B) {
	tb := dpApply(b, NewTable(), Change{Add: scaleFlows(b, 160_000), Owned: true}, dpPorts)
	moved := dpPortMap(map[string]uint32{"p1": 1, "p2": 12})
	b.ReportAllocs()
	for b.Loop() {
		if nt := tb.Recompile(moved); nt == tb {
			b.Fatal("nothing recompiled")
		}
	}
}
