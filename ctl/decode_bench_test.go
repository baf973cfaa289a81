package ctl

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/ctltest"
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

// BenchmarkCheckFlowPorts checks the ports of 160k decoded flows, as a
// bulk install does under the server's lock.
func BenchmarkCheckFlowPorts(b *testing.B) {
	srv, err := NewServer(Options{Backend: ctltest.New(), Store: NewStore(filepath.Join(b.TempDir(), "state.json"))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	for _, p := range []string{"p0", "p1"} {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", api.PathPorts, strings.NewReader(fmt.Sprintf(`{"name":%q}`, p)))
		req.Header.Set("Content-Type", "application/json")
		if srv.ServeHTTP(w, req); w.Code != http.StatusCreated {
			b.Fatalf("add port %s: %d %s", p, w.Code, w.Body)
		}
	}
	flows, _, err := decodeFlowsKnown(bulkBody(160_000), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		srv.mu.Lock()
		err := srv.checkFlowPortsLocked(flows, true)
		srv.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteState writes the state of 160k flows, as the save of a
// bulk install does (to a discarding writer: the encoding, not the disk).
func BenchmarkWriteState(b *testing.B) {
	st := &State{Version: StateVersion, Ports: []PortState{}}
	for i := range 160_000 {
		st.Flows = append(st.Flows, FlowState{ID: uint64(i + 1), Flow: fmt.Sprintf(
			"priority=100,udp,in_port=p0,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:p1", i/65536%256, i/256%256, i%256)})
	}
	w := bufio.NewWriterSize(io.Discard, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		if err := writeState(w, st, "0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}
