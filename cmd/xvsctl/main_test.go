package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
)

// env is an xvsd (ctl.Server over a fake switch) and the environment
// xvsctl runs in.
type testEnv struct {
	t       *testing.T
	backend *ctltest.Backend
	server  string // --server value
	vars    map[string]string
}

func newTestEnv(t *testing.T, opts ctl.Options) *testEnv {
	t.Helper()
	b := ctltest.New()
	opts.Backend = b
	srv, err := ctl.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &testEnv{t: t, backend: b, server: hs.URL, vars: map[string]string{"XVS_SERVER": hs.URL}}
}

type result struct {
	code           int
	stdout, stderr string
}

// xvsctl runs the command line with stdin.
func (e *testEnv) xvsctlIn(stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb, func(k string) string { return e.vars[k] })
	return result{code, out.String(), errb.String()}
}

func (e *testEnv) xvsctl(args ...string) result {
	e.t.Helper()
	return e.xvsctlIn("", args...)
}

// ok runs a command that must succeed and returns its output.
func (e *testEnv) ok(args ...string) string {
	e.t.Helper()
	r := e.xvsctl(args...)
	if r.code != 0 {
		e.t.Fatalf("xvsctl %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func TestPortCommands(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p0")
	e.ok("add-port", "p1", "--mode", "generic")
	e.ok("add-port", "--mode=native", "p2")

	out := e.ok("show")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("show:\n%s", out)
	}
	for i, want := range [][]string{
		{"PORT", "OFPORT", "IFINDEX", "MAC", "MTU", "QUEUES", "XDP", "XSK", "UMEM", "STATE", "LIVE", "FASTPATH_OUT"},
		{"p0", "1", "101", "02:00:00:00:00:01", "1500", "1/2", "native", "copy", "shared", "up", "yes", "ok"},
		{"p1", "2", "102", "02:00:00:00:00:02", "1500", "1/2", "generic", "copy", "shared", "up", "yes", "ok"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("show line %d = %q, want %q", i, got, want)
		}
	}
	// A port whose device gained a queue it could not open says so.
	if err := e.backend.SetPortQueues("p1", 1, 2, 2, "queue 1: busy"); err != nil {
		t.Fatal(err)
	}
	out = e.ok("show")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 ||
		!strings.HasSuffix(strings.Join(strings.Fields(lines[2]), " "), "2/2 generic copy shared degraded yes ok") ||
		lines[4] != "port p1 degraded: queue 1: busy (1 of 2 active queues served)" {
		t.Errorf("show with a degraded port:\n%s", out)
	}

	// A port whose device went is absent, and says what that means.
	e.backend.SetNetdevs("p0", "p1")
	out = e.ok("show")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 6 ||
		strings.Join(strings.Fields(lines[3]), " ") != "p2 3 - - - - - - - absent no (absent) -" ||
		!strings.HasPrefix(lines[5], "port p2 absent: no network device of that name (kept with its flows") {
		t.Errorf("show with an absent port:\n%s", out)
	}
	e.backend.SetNetdevs("p0", "p1", "p2", "p3")

	var ports []api.PortInfo
	if err := json.Unmarshal([]byte(e.ok("show", "--json")), &ports); err != nil || len(ports) != 3 {
		t.Fatalf("show --json: %v %+v", err, ports)
	}
	if err := json.Unmarshal([]byte(e.ok("--json", "show")), &ports); err != nil || len(ports) != 3 {
		t.Fatalf("--json show: %v %+v", err, ports)
	}

	e.ok("del-port", "p2")
	if got := e.backend.Ports(); len(got) != 2 {
		t.Fatalf("ports after del-port: %+v", got)
	}
	var info api.PortInfo
	if err := json.Unmarshal([]byte(e.ok("add-port", "p3", "--json")), &info); err != nil || info.Name != "p3" {
		t.Fatalf("add-port --json: %v %+v", err, info)
	}
}

func TestErrors(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p0")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"duplicate port", []string{"add-port", "p0"}, 1, "xvsctl: p0: port already exists\n"},
		{"bad mode", []string{"add-port", "p1", "--mode", "fast"}, 1, `xvsctl: mode "fast" is not native, generic or auto (field mode)` + "\n"},
		{"unknown port", []string{"del-port", "nope"}, 1, "xvsctl: port nope: no such port\n"},
		{"dump unknown port", []string{"dump-ports", "nope"}, 1, "no such port"},
		{"missing argument", []string{"add-port"}, 2, "wrong number of arguments"},
		{"extra argument", []string{"show", "x"}, 2, "wrong number of arguments"},
		{"unknown flag", []string{"show", "--wide"}, 2, "flag provided but not defined: -wide"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"no command", nil, 2, "usage: xvsctl"},
		{"bad server", []string{"--server", "ftp://x", "show"}, 2, "want unix:PATH"},
		{"no server", []string{"--server", "unix:/nonexistent/xvsd.sock", "show"}, 1, "no such file"},
		{"missing token file", []string{"--token-file", "/nonexistent/token", "show"}, 1, "token file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.xvsctl(tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d, stderr with %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q on error", r.stdout)
			}
		})
	}
}

func TestServerSelection(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p0")
	// The flag beats the environment.
	e.vars["XVS_SERVER"] = "unix:/nonexistent.sock"
	if r := e.xvsctl("show"); r.code != 1 {
		t.Fatalf("XVS_SERVER not used: %+v", r)
	}
	if out := e.ok("--server", e.server, "show"); !strings.Contains(out, "p0") {
		t.Fatalf("--server not used:\n%s", out)
	}
	if out := e.ok("show", "--server", e.server); !strings.Contains(out, "p0") {
		t.Fatalf("--server after the command not used:\n%s", out)
	}
}

func TestTokenFile(t *testing.T) {
	e := newTestEnv(t, ctl.Options{Token: "sesame"})
	if r := e.xvsctl("show"); r.code != 1 || !strings.Contains(r.stderr, "bearer token") {
		t.Fatalf("without token: %+v", r)
	}
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("sesame\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("--token-file", tok, "add-port", "p0")
	e.vars["XVS_TOKEN_FILE"] = tok
	if out := e.ok("show"); !strings.Contains(out, "p0") {
		t.Fatalf("XVS_TOKEN_FILE not used:\n%s", out)
	}
}

func TestUnixSocket(t *testing.T) {
	b := ctltest.New()
	srv, err := ctl.NewServer(ctl.Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "xvsd.sock")
	ln, err := ctl.Listen(ctl.ListenAddr{Network: "unix", Address: path}, 0)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	defer hs.Close()
	var out, errb bytes.Buffer
	env := func(k string) string {
		if k == "XVS_SERVER" {
			return "unix:" + path
		}
		return ""
	}
	if code := run([]string{"add-port", "p0"}, nil, &out, &errb, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if len(b.Ports()) != 1 {
		t.Fatal("add-port over the unix socket did nothing")
	}
}

func TestDumpPortsAndStats(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p0")
	e.ok("add-port", "p1")
	var drops datapath.Drops
	for r := range drops {
		drops[r] = uint64(r) + 1
	}
	e.backend.SetPortStats("p0", datapath.PortStats{
		RxPackets: 10, RxBytes: 1000, TxPackets: 7, TxBytes: 700,
		Drops: drops,
		XDP:   map[string]uint64{"rx": 12, "redirect": 10, "pass_nomatch": 2, "future": 1},
		XSK:   datapath.XSKStats{RxDropped: 1, RxRingFull: 6, RxFillRingEmptyDescs: 7, TxRingEmptyDescs: 8, RxInvalidDescs: 9, TxInvalidDescs: 11},
	})
	e.backend.SetPollers([]datapath.PollerStats{
		{Queue: 0, CPU: 1, Mode: datapath.PollAdaptive, Window: 200 * time.Microsecond, Batches: 4, Packets: 10, BusyNs: 1.5e6, IdleNs: 2e9,
			Sleeps: 5, SleepNs: 1.9e9, Wakeups: 3, EarlyWakeups: 1, Handoffs: 7},
		{Queue: 1, CPU: -1, Mode: datapath.PollBusy},
	})

	want := `port stats: 1 ports
  port  1: p0
           rx pkts=10, bytes=1000, drop=66 (no_flow=1, malformed=2, kernel_flow=3, action_drop=4, dec_ttl_zero=5, port_gone=6, too_big=7, table_miss=8, too_deep=9, no_tx_queue=10, handoff_full=11)
           tx pkts=7, bytes=700, drop=25 (tx_ring_full=12, no_frame=13)
           xdp rx=12, pass_nomatch=2, pass_rule=0, redirect=10, redirect_nosock=0, drop=0, malformed=0, forward=0, forward_error=0, forward_fallback=0, future=1
           xsk rx_dropped=1, rx_ring_full=6, fill_ring_empty=7, tx_ring_empty=8, rx_invalid=9, tx_invalid=11
`
	if got := e.ok("dump-ports", "p0"); got != want {
		t.Errorf("dump-ports p0:\n%s\nwant:\n%s", got, want)
	}
	all := e.ok("dump-ports")
	if !strings.HasPrefix(all, "port stats: 2 ports\n") || !strings.Contains(all, "port  2: p1\n") {
		t.Errorf("dump-ports:\n%s", all)
	}
	var ps []api.PortStats
	if err := json.Unmarshal([]byte(e.ok("dump-ports", "--json")), &ps); err != nil || len(ps) != 2 || ps[0].RxDrops[6] != (api.Counter{Name: "too_big", Packets: 7}) {
		t.Errorf("dump-ports --json: %v %+v", err, ps)
	}

	out := e.ok("stats")
	for _, want := range []string{
		"2 ports, 0 flows (0 in the XDP fast path), 0 steering masks\n",
		"total: rx pkts=10, bytes=1000; tx pkts=7, bytes=700; drop=91\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got := strings.Fields(lines[len(lines)-2]); strings.Join(got, " ") != "0 1 adaptive:200µs 4 10 2.5 2ms 2s 1.9s 5 3 1 7" {
		t.Errorf("poller line %q", got)
	}
	if got := strings.Fields(lines[len(lines)-1]); strings.Join(got, " ") != "1 - busy 0 0 0.0 0s 0s 0s 0 0 0 0" {
		t.Errorf("poller line %q", got)
	}
	var st api.Stats
	if err := json.Unmarshal([]byte(e.ok("stats", "--json")), &st); err != nil || len(st.Pollers) != 2 {
		t.Errorf("stats --json: %v %+v", err, st)
	}
}

func TestHelp(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		out := e.ok(args...)
		for _, c := range commands {
			if !strings.Contains(out, "\n  "+c.name) {
				t.Errorf("%v does not list %s:\n%s", args, c.name, out)
			}
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}} {
			out := e.ok(args...)
			if !strings.HasPrefix(out, "usage: xvsctl "+c.name) || !strings.Contains(out, c.summary) {
				t.Errorf("%v:\n%s", args, out)
			}
		}
	}
	if out := e.ok("help", "add-port"); !strings.Contains(out, "-mode") {
		t.Errorf("help add-port does not show --mode:\n%s", out)
	}
	if r := e.xvsctl("help", "nope"); r.code != 2 {
		t.Errorf("help nope: %+v", r)
	}
}
