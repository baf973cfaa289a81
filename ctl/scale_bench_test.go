package ctl_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/ctl/client"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/testenv"
)

// BenchmarkBulkFlows is what a controller pushing a large table meets, end
// to end through a real switch (2 veth ports, the XDP program, its maps)
// and the REST server with its state file, over a unix socket with the Go
// client xvsctl uses: install N exact-match flows in one request, replace
// the table with the same flows, dump them (as text, what xvsctl
// dump-flows asks for, and as JSON), and add one flow to the N and delete
// it again, each its own request (one-add-delete: what a controller that
// programs flow by flow meets on a large table; its B/op is the garbage
// each pair leaves). It reports what an installed flow
// costs: the Go heap it takes (heap-B/flow, after a GC; the switch's
// tables, steering lists and records, and the text the server saves and
// dumps) and the kernel memory of the BPF maps it grows (kernel-B/flow,
// their memlock), and the sum (B/flow).
//
//	go test -run '^$' -bench 'BulkFlows/flows=160000/install' -benchtime 3x ./ctl/
func BenchmarkBulkFlows(b *testing.B) {
	testenv.RequireRoot(b)
	for _, n := range []int{10_000, 160_000} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) { benchBulk(b, n) })
	}
}

func benchBulk(b *testing.B, n int) {
	ns := testenv.NewNS(b)
	in := testenv.NewVeth(b, ns, "xb", testenv.VethOptions{PeerGRO: true})
	out := testenv.NewVeth(b, ns, "xb", testenv.VethOptions{PeerGRO: true})
	sw, err := datapath.New(datapath.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sw.Close() })
	srv, err := ctl.NewServer(ctl.Options{Backend: sw, Store: ctl.NewStore(filepath.Join(b.TempDir(), "state.json"))})
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "xvsd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	c, err := client.New("unix:"+sock, client.Options{Timeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{in.LocalName(), out.LocalName()} {
		if _, err := c.AddPort(ctx, api.PortRequest{Name: p}); err != nil {
			b.Fatal(err)
		}
	}
	flows := make([]api.Flow, n)
	for i := range flows {
		flows[i] = api.Flow{Text: fmt.Sprintf("priority=100,udp,in_port=%s,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:%s",
			in.LocalName(), i/65536%256, i/256%256, i%256, out.LocalName())}
	}
	clear := func(b *testing.B) {
		b.StopTimer()
		if _, err := c.DeleteFlows(ctx, api.DeleteFlowsRequest{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	install := func(b *testing.B) {
		if _, err := c.AddFlowsIDs(ctx, flows); err != nil {
			b.Fatal(err)
		}
	}
	kernel := func() uint64 {
		mm, err := sw.MapMemory()
		if err != nil {
			b.Fatal(err)
		}
		var n uint64
		for _, v := range mm {
			n += v
		}
		return n
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	b.Run("install", func(b *testing.B) {
		var perHeap, perKernel float64
		for b.Loop() {
			clear(b)
			b.StopTimer()
			h0, k0 := heap(), kernel()
			b.StartTimer()
			install(b)
			b.StopTimer()
			perHeap = (float64(heap()) - float64(h0)) / float64(n)
			perKernel = (float64(kernel()) - float64(k0)) / float64(n)
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/request")
		b.ReportMetric(perHeap, "heap-B/flow")
		b.ReportMetric(perKernel, "kernel-B/flow")
		b.ReportMetric(perHeap+perKernel, "B/flow")
	})
	b.Run("replace-same", func(b *testing.B) {
		clear(b)
		install(b)
		for b.Loop() {
			if _, err := c.ReplaceFlowsIDs(ctx, flows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/request")
	})
	b.Run("one-add-delete", func(b *testing.B) {
		const one = "priority=200,udp,in_port=%s,nw_dst=10.200.0.1,tp_dst=7999"
		match := fmt.Sprintf(one, in.LocalName())
		add := api.Flow{Text: match + ",actions=output:" + out.LocalName()}
		clear(b)
		install(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.AddFlow(ctx, add); err != nil {
				b.Fatal(err)
			}
			if got, err := c.DeleteFlows(ctx, api.DeleteFlowsRequest{Match: match, Strict: true}); err != nil || len(got) != 1 {
				b.Fatalf("delete: %d flows, %v", len(got), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(2*b.N), "ms/request")
	})
	b.Run("dump-text", func(b *testing.B) {
		for b.Loop() {
			var w lineCounter
			if err := c.FlowsText(ctx, "", false, false, &w); err != nil || w.n != n {
				b.Fatalf("dump: %d lines, %v", w.n, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/request")
	})
	b.Run("dump-json", func(b *testing.B) {
		for b.Loop() {
			got, err := c.Flows(ctx, "", false)
			if err != nil || len(got) != n {
				b.Fatalf("dump: %d flows, %v", len(got), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/request")
	})
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (w *lineCounter) Write(p []byte) (int, error) {
	w.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}
