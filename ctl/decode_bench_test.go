package ctl

import (
	"fmt"
	"testing"
)

// Benchmarks of the ingest half of a bulk install: what the server does
// with a request body of n text-form flows before it takes its lock (the
// shape of issue 13's 160k-flow table), and what checking their ports
// costs under the lock.

// bulkBody returns the body xvsctl add-flows sends for n flows of the
// issue's shape, from in_port p0 to p1.
func bulkBody(n int) []byte {
	b := []byte{'['}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"flow":"priority=100,udp,in_port=p0,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:p1"}`,
			i/65536%256, i/256%256, i%256)
	}
	return append(b, ']')
}

// BenchmarkDecodeBulkFlows decodes a body of 160k flows (textFlows and
// the parallel parse), as a bulk install does after reading it.
//
//	go test -run '^$' -bench DecodeBulkFlows -benchmem ./ctl/
func BenchmarkDecodeBulkFlows(b *testing.B) {
	body := bulkBody(160_000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		flows, _, err := decodeFlowsKnown(body, nil)
		if err != nil || len(flows) != 160_000 {
			b.Fatal(len(flows), err)
		}
	}
}
