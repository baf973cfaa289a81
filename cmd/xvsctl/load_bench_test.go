package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkAddFlowsFile is what xvsctl add-flows FILE costs the client
// for a file of 160k flows (issue 13's table): reading the file,
// encoding and sending the body, and decoding the answer (the IDs). The
// server is a stub that reads the body and answers 160k IDs.
//
//	go test -run '^$' -bench AddFlowsFile -benchmem ./cmd/xvsctl/
func BenchmarkAddFlowsFile(b *testing.B) {
	const n = 160_000
	file := filepath.Join(b.TempDir(), "flows.txt")
	var text []byte
	for i := range n {
		text = fmt.Appendf(text, "priority=100,udp,in_port=p0,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:p1\n",
			i/65536%256, i/256%256, i%256)
	}
	if err := os.WriteFile(file, text, 0o644); err != nil {
		b.Fatal(err)
	}
	answer := []byte(`{"ids":[`)
	for i := range n {
		if i > 0 {
			answer = append(answer, ',')
		}
		answer = strconv.AppendInt(answer, int64(i+1), 10)
	}
	answer = append(answer, "]}"...)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(answer)
	}))
	b.Cleanup(hs.Close)
	env := func(k string) string {
		if k == "XVS_SERVER" {
			return hs.URL
		}
		return ""
	}
	b.ReportAllocs()
	for b.Loop() {
		if code := run([]string{"add-flows", file}, nil, io.Discard, os.Stderr, env); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
