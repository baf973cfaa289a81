package datapath

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/testenv"
)

// UDP from a to b and back through in_port=X,actions=output:Y flows arrives
// complete and intact, and the counters of the ports saw it.
func TestForwardBothWays(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	tp.addFlows(t, "in_port={a},actions=output:{b}", "in_port={b},actions=output:{a}")
	const n, size = 50, 300
	for _, dir := range []struct {
		name     string
		from, to *host
	}{{"a to b", tp.a, tp.b}, {"b to a", tp.b, tp.a}} {
		sink := listenUDP(t, dir.to.NS, dir.to.ip, 9000)
		sendUDP(t, dir.from, dir.to.ip, 9000, n, seqPayload(size), sendOpts{})
		checkSeq(t, dir.name, sink.collect(n, 5*time.Second), n, size)
	}
	for _, h := range []*host{tp.a, tp.b} {
		st := tp.stats(t, h)
		if st.RxPackets < n || st.TxPackets < n || st.XDP["redirect"] < n || st.RxBytes < n*size {
			t.Errorf("port %s (%s): counters too low for %d datagrams each way: %+v", h.port(), h.name, n, st)
		}
	}
}

// A switch's life (New, AddPort, traffic, Close) leaves no goroutine and no
// file descriptor behind.
func TestNoLeaks(t *testing.T) {
	testenv.RequireRoot(t)
	tp := &topo{}
	tp.a, tp.b = tp.addHost(t, "a"), tp.addHost(t, "b")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	life := func() {
		t.Helper()
		sw, err := New(Config{Logger: quiet})
		if err != nil {
			t.Fatalf("new switch: %v", err)
		}
		for _, h := range []*host{tp.a, tp.b} {
			if _, err := sw.AddPort(PortSpec{Name: h.port()}); err != nil {
				sw.Close()
				t.Fatalf("add port: %v", err)
			}
		}
		if _, err := sw.Apply(Change{Add: tp.flows(t, "in_port={a},udp,actions=output:{b}")}); err != nil {
			sw.Close()
			t.Fatalf("apply flows: %v", err)
		}
		sink := listenUDP(t, tp.b.NS, tp.b.ip, 9100)
		sendUDP(t, tp.a, tp.b.ip, 9100, 20, seqPayload(64), sendOpts{})
		got := sink.collect(20, 5*time.Second)
		sink.close()
		if err := sw.Close(); err != nil {
			t.Fatalf("close switch: %v", err)
		}
		checkSeq(t, "a to b", got, 20, 64)
	}
	// A first life opens what the runtime and the libraries open once
	// (the netpoller's epoll fd, kernel feature probes).
	life()
	g0, f0 := settledGoroutines(0), openFds(t)
	life()
	if g := settledGoroutines(g0); g > g0 {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("goroutines: %d before a switch's life, %d after:\n%s", g0, g, b.String())
	}
	if f := openFds(t); len(f) != len(f0) {
		t.Errorf("open fds: %d before a switch's life, %d after; new: %v", len(f0), len(f), newFds(f0, f))
	}
}

// settledGoroutines returns the number of goroutines once it stops falling
// to want (goroutines that were told to end may take a moment), at most
// after two seconds.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(2 * time.Second)
	n := runtime.NumGoroutine()
	for time.Now().Before(deadline) && (want == 0 || n > want) {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if want == 0 && m == n {
			break
		}
		n = m
	}
	return n
}

// openFds returns the targets of the process's open file descriptors.
func openFds(t testing.TB) map[string]string {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string, len(es))
	for _, e := range es {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		fds[e.Name()] = target
	}
	return fds
}

func newFds(before, after map[string]string) []string {
	var out []string
	for fd, target := range after {
		if before[fd] != target {
			out = append(out, fmt.Sprintf("%s -> %s", fd, target))
		}
	}
	slices.Sort(out)
	return out
}

// Flows that give ports by ofport number are bound to the ports' names
// when applied; a number no port has is refused.
func TestApplyBindsPortNumbers(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	f := tp.flow(t, "priority=9,in_port=1,actions=output:2")
	g, err := flowtable.ParseGroup("group_id=3,type=ff,bucket=watch_port:2,output:2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.sw.Apply(Change{AddGroups: []*flowtable.Group{g}, Add: []*flowtable.Flow{f}}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("priority=9,in_port=%s,actions=output:%s", tp.a.port(), tp.b.port())
	if fs := tp.sw.Flows(); len(fs) != 1 || fs[0].Flow.String() != want {
		t.Fatalf("flows %v, want %s", fs, want)
	}
	if gs := tp.sw.Groups(); len(gs) != 1 || !strings.Contains(gs[0].Group.String(), "watch_port:"+tp.b.port()) {
		t.Fatalf("groups %v", gs)
	}
	_, err = tp.sw.Apply(Change{Add: []*flowtable.Flow{tp.flow(t, "actions=output:9")}})
	if !errors.Is(err, ErrNoSuchPort) || !strings.Contains(err.Error(), "no port has ofport 9") {
		t.Fatalf("output:9: %v", err)
	}
}
