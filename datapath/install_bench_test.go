package datapath

import (
	"fmt"
	"testing"

	"github.com/xvs-project/xvs/flowtable"
)

// BenchmarkBulkInstall installs 160k exact-match flows that run in XDP
// into an empty table in one change, as a controller's first push does:
// the table, the steering maps and the action records (grown from
// InitialFastPathFlows), and reports the time per install. Between
// installs the flows are removed, outside the timer.
func BenchmarkBulkInstall(b *testing.B) {
	const n = 160 << 10
	tp := newTopo(b, topoOptions{FastPath: true, Config: Config{FastPathFlows: n}})
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("priority=100,udp,in_port=%s,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:%s",
			tp.a.port(), i>>16&255, i>>8&255, i&255, tp.b.port())
	}
	// The table keeps the flows of an owned change (as a bulk request
	// gives them): each install gets flows of its own.
	parse := func() []*flowtable.Flow {
		var fp flowtable.FlowParser
		flows := make([]*flowtable.Flow, n)
		for i, s := range texts {
			f, err := fp.ParseFlow(s)
			if err != nil {
				b.Fatal(err)
			}
			flows[i] = f
		}
		return flows
	}
	flows := parse()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.sw.Apply(Change{Add: flows, Owned: true}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := tp.sw.Apply(Change{Replace: true}); err != nil {
			b.Fatal(err)
		}
		flows = parse()
		b.StartTimer()
	}
}
