package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/flowtable"
)

// durations masks what changes between two dumps.
var durations = regexp.MustCompile(`duration=[0-9.]+s, `)

func TestFlowCommands(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p0")
	e.ok("add-port", "p1")
	if out := e.ok("add-flow", "priority=100,udp,tp_dst=7999,actions=output:p1"); out != "" {
		t.Errorf("add-flow printed %q", out)
	}
	// Unquoted spaces: the arguments are one flow.
	e.ok("add-flow", "priority=200,in_port=p0,udp,tp_dst=7999", "actions=mod_tp_dst:7998,output:p1")
	e.ok("add-flow", "cookie=0x2a,priority=50,tcp,actions=kernel")
	for _, fi := range e.backend.Flows() {
		if fi.Flow.Priority == 100 {
			e.backend.CountFlow(fi.Flow.ID, 10, 640)
		}
	}

	out := durations.ReplaceAllString(e.ok("dump-flows"), "")
	want := ` cookie=0x0, table=0, n_packets=0, n_bytes=0, idle_age=0, datapath=xdp, priority=200,udp,in_port=p0,tp_dst=7999 actions=mod_tp_dst:7998,output:p1
 cookie=0x0, table=0, n_packets=10, n_bytes=640, idle_age=0, datapath=xdp, priority=100,udp,tp_dst=7999 actions=output:p1
 cookie=0x2a, table=0, n_packets=0, n_bytes=0, idle_age=0, datapath=xdp, priority=50,tcp actions=kernel
`
	if out != want {
		t.Fatalf("dump-flows:\n%s\nwant:\n%s", out, want)
	}
	if !durations.MatchString(e.ok("dump-flows")) {
		t.Error("dump-flows prints no duration")
	}

	lines := func(s string) int { return strings.Count(s, "\n") }
	if n := lines(e.ok("dump-flows", "udp,tp_dst=7999")); n != 2 {
		t.Errorf("dump-flows udp,tp_dst=7999: %d flows, want 2", n)
	}
	if n := lines(e.ok("dump-flows", "--strict", "priority=100,udp,tp_dst=7999")); n != 1 {
		t.Errorf("dump-flows --strict: %d flows, want 1", n)
	}
	if n := lines(e.ok("dump-flows", "udp,tp_dst=7999", "--strict")); n != 0 {
		t.Errorf("dump-flows --strict (default priority): %d flows, want 0", n)
	}
	var flows []api.FlowStatus
	if err := json.Unmarshal([]byte(e.ok("dump-flows", "--json", "tcp")), &flows); err != nil || len(flows) != 1 || flows[0].Cookie != "0x2a" {
		t.Fatalf("dump-flows --json tcp: %v %+v", err, flows)
	}

	var deleted []api.FlowStatus
	if err := json.Unmarshal([]byte(e.ok("del-flows", "--json", "in_port=p0")), &deleted); err != nil || len(deleted) != 1 || deleted[0].Match["in_port"] != "p0" {
		t.Fatalf("del-flows --json in_port=p0: %v %+v", err, deleted)
	}
	if out := e.ok("del-flows", "tcp"); out != "" {
		t.Errorf("del-flows printed %q", out)
	}
	if n := len(e.backend.Flows()); n != 1 {
		t.Fatalf("%d flows left, want 1", n)
	}
	e.ok("del-flows")
	if n := len(e.backend.Flows()); n != 0 {
		t.Fatalf("del-flows left %d flows", n)
	}
}

func TestAddFlowsFile(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p0")
	e.ok("add-port", "p1")
	dir := t.TempDir()
	file := filepath.Join(dir, "flows.txt")
	os.WriteFile(file, []byte(`# SD-WAN steering
priority=100,udp,tp_dst=7999,actions=output:p1

   # indented comment
priority=90,udp,tp_dst=7998 actions=output:p0
arp,actions=kernel
`), 0o600)
	e.ok("add-flows", file)
	if n := len(e.backend.Flows()); n != 3 {
		t.Fatalf("add-flows: %d flows", n)
	}

	// One bad line: the error names it, and nothing changes.
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("# ok\nudp,actions=drop\n\ntcp,tp_dst=80,actions=output:p1\nip,tp_dst=80,actions=drop\n"), 0o600)
	r := e.xvsctl("add-flows", bad)
	wantErr := "xvsctl: " + bad + ":5: tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets) at column 4 (field tp_dst)\n"
	if r.code != 1 || r.stderr != wantErr {
		t.Fatalf("add-flows bad file: exit %d, stderr %q, want %q", r.code, r.stderr, wantErr)
	}
	os.WriteFile(bad, []byte("udp,actions=drop\ntcp,actions=output:p9\n"), 0o600)
	if r := e.xvsctl("add-flows", bad); r.code != 1 || !strings.Contains(r.stderr, bad+":2: output:p9: no such port (field output)") {
		t.Fatalf("add-flows unknown port: %+v", r)
	}
	if n := len(e.backend.Flows()); n != 3 {
		t.Fatalf("failed add-flows changed the table: %d flows", n)
	}

	// stdin, and replace-flows.
	e.ok("del-flows")
	if r := e.xvsctlIn("udp,actions=drop\ntcp,actions=drop\n", "add-flows", "-"); r.code != 0 {
		t.Fatalf("add-flows -: %+v", r)
	}
	if r := e.xvsctlIn("arp,actions=kernel\n", "replace-flows", "-"); r.code != 0 {
		t.Fatalf("replace-flows -: %+v", r)
	}
	if out := durations.ReplaceAllString(e.ok("dump-flows"), ""); out != " cookie=0x0, table=0, n_packets=0, n_bytes=0, idle_age=0, datapath=xdp, priority=32768,arp actions=kernel\n" {
		t.Fatalf("after replace-flows:\n%s", out)
	}
	if r := e.xvsctlIn("arp,actions=kernel\nudp,actions=output:nope\n", "replace-flows", "-"); r.code != 1 || !strings.Contains(r.stderr, "stdin:2:") {
		t.Fatalf("bad replace-flows: %+v", r)
	}
	if n := len(e.backend.Flows()); n != 1 {
		t.Fatalf("failed replace-flows changed the table: %d flows", n)
	}
	if r := e.xvsctlIn("", "replace-flows", "-"); r.code != 0 || len(e.backend.Flows()) != 0 {
		t.Fatalf("replace-flows with nothing: %+v, %d flows", r, len(e.backend.Flows()))
	}
	if r := e.xvsctl("add-flows", filepath.Join(dir, "missing.txt")); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("add-flows missing file: %+v", r)
	}
}

// dump-flows output fed to add-flows (or replace-flows) gives the same table.
func TestDumpFlowsRoundTrip(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p0")
	e.ok("add-port", "p1")
	e.xvsctlIn(`cookie=0x1f,priority=300,idle_timeout=60,hard_timeout=600,in_port=p0,udp,nw_src=10.0.0.0/8,tp_dst=7999,actions=mod_nw_dst:192.0.2.1,mod_tp_dst:7998,dec_ttl,output:p1
priority=200,dl_vlan=10,actions=strip_vlan,output:p0
priority=150,tcp6,ipv6_dst=2001:db8::/32,actions=push_vlan:0x8100,mod_vlan_vid:20,output:p1
priority=100,arp,actions=kernel
priority=50,udp,actions=output:p0,output:p1
priority=1,actions=drop
`, "add-flows", "-")
	if n := len(e.backend.Flows()); n != 6 {
		t.Fatalf("%d flows installed, want 6", n)
	}
	for _, fi := range e.backend.Flows() {
		e.backend.CountFlow(fi.Flow.ID, 5, 500)
	}
	dump := e.ok("dump-flows")
	if !strings.Contains(dump, "datapath=user(several_outputs), priority=50,udp actions=output:p0,output:p1") ||
		strings.Count(dump, "datapath=xdp, ") != 5 {
		t.Fatalf("dump-flows does not say where each flow runs:\n%s", dump)
	}

	e2 := newTestEnv(t, ctl.Options{})
	e2.ok("add-port", "p0")
	e2.ok("add-port", "p1")
	if r := e2.xvsctlIn(dump, "add-flows", "-"); r.code != 0 {
		t.Fatalf("add-flows of dump-flows output: %+v\n%s", r, dump)
	}
	strip := func(s string) string {
		s = durations.ReplaceAllString(s, "")
		return regexp.MustCompile(`n_packets=\d+, n_bytes=\d+, `).ReplaceAllString(s, "")
	}
	if got := e2.ok("dump-flows"); strip(got) != strip(dump) {
		t.Fatalf("round trip through add-flows:\n%s\nwant:\n%s", got, dump)
	}
	if r := e.xvsctlIn(dump, "replace-flows", "-"); r.code != 0 {
		t.Fatalf("replace-flows of dump-flows output: %+v", r)
	}
	if got := e.ok("dump-flows"); strip(got) != strip(dump) {
		t.Fatalf("round trip through replace-flows:\n%s\nwant:\n%s", got, dump)
	}
}

func TestFlowErrorMessages(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p1")
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"prerequisite", []string{"add-flow", "tp_dst=7999,actions=output:p1"}, "xvsctl: tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets) at column 1 (field tp_dst)\n"},
		{"unknown port", []string{"add-flow", "udp,actions=output:p2"}, "xvsctl: output:p2: no such port (field output)\n"},
		{"bad filter", []string{"dump-flows", "udp,tp_dst=x"}, "(field tp_dst)\n"},
		{"bad del filter", []string{"del-flows", "nw_src=1.2.3.4"}, "(field nw_src)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.xvsctl(tt.args...)
			if r.code != 1 || !strings.HasSuffix(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q, want it to end in %q", r.code, r.stderr, tt.stderr)
			}
		})
	}
}

// dump-flows --ovs prints what ovs-ofctl add-flows reads: the line
// flowtable.FormatFlow makes of each flow (whose form ovs-ofctl 3.1 reads
// as the same flow, flowtable/testdata/ovs/dump.golden), with no datapath=
// field, across tables, goto_table, resubmit and groups.
func TestDumpFlowsOVS(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	for _, p := range []string{"p1", "p2"} {
		e.ok("add-port", p)
	}
	e.ok("add-group", "group_id=1,type=all,bucket=output:p1,bucket=output:p2")
	e.xvsctlIn(`table=0,priority=100,in_port=p1,udp,actions=mod_nw_ecn:1,goto_table:1
table=0,in_port=p2,actions=resubmit(,2),output:p1
table=1,priority=10,ipv6,actions=set_field:46->ip_dscp,resubmit(p1,2)
table=2,vlan_tci=0x0000/0x1fff,actions=group:1
table=253,actions=drop
`, "add-flows", "-")
	plain, ovs := e.ok("dump-flows"), e.ok("dump-flows", "--ovs")
	if strings.Contains(ovs, "datapath=") || !strings.Contains(plain, "datapath=") {
		t.Fatalf("dump-flows:\n%s\ndump-flows --ovs:\n%s", plain, ovs)
	}
	t.Logf("dump-flows --ovs:\n%s", ovs)
	lines := strings.Split(strings.TrimSuffix(ovs, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("dump-flows --ovs: %d lines, want 5:\n%s", len(lines), ovs)
	}
	for i, line := range lines {
		f, err := flowtable.ParseFlow(line)
		if err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		st := &flowtable.FlowStats{}
		if want := flowtable.FormatFlow(f, st); durations.ReplaceAllString(line, "") != durations.ReplaceAllString(want, "") {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, line, want)
		}
	}
	for _, want := range []string{"table=1, ", "table=2, ", "table=253, ", "goto_table:1", "resubmit(,2)", "resubmit(p1,2)", "group:1", "mod_nw_ecn:1"} {
		if !strings.Contains(ovs, want) {
			t.Errorf("dump-flows --ovs has no %q:\n%s", want, ovs)
		}
	}
}

// readFlows splits lines as bufio.Scanner did: numbered from 1, blank
// lines and # comments skipped, white space trimmed, \r\n taken, a last
// line without a newline read, a line over the limit refused.
func TestReadFlows(t *testing.T) {
	tests := []struct {
		in   string
		want []flowLine
		err  bool
	}{
		{"", nil, false},
		{"a\n", []flowLine{{1, "a"}}, false},
		{"a", []flowLine{{1, "a"}}, false},
		{"a\r\n\r\n  # c\n\t b c \r\nd", []flowLine{{1, "a"}, {4, "b c"}, {5, "d"}}, false},
		{"\n\n#x\n  x\u00a0\n", []flowLine{{4, "x"}}, false},
		{"a\n" + strings.Repeat("x", maxFlowLine+1) + "\n", nil, true},
	}
	for _, tt := range tests {
		got, err := readFlows(strings.NewReader(tt.in))
		if (err != nil) != tt.err || !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("readFlows(%.40q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// A file with a line that is not valid UTF-8 is sent through
// encoding/json, as before, and the server's error names the line.
func TestAddFlowsInvalidUTF8(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "p1")
	file := filepath.Join(t.TempDir(), "flows.txt")
	if err := os.WriteFile(file, []byte("udp,actions=output:p1\n\nudp,tp_dst=1,actions=output:p\xff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.xvsctl("add-flows", file)
	if r.code == 0 || !strings.Contains(r.stderr, file+":3:") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := len(e.backend.Flows()); n != 0 {
		t.Errorf("%d flows after a failed add-flows", n)
	}
}
