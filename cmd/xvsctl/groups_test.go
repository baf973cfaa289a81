package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/ctl"
)

func TestGroupCommands(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	for _, p := range []string{"wan1", "wan2", "lan"} {
		e.ok("add-port", p)
	}
	e.ok("add-group", "group_id=1,type=select,bucket=weight:3,watch_port:wan1,actions=output:wan1,bucket=weight:1,watch_port:wan2,actions=output:wan2")
	dir := t.TempDir()
	file := filepath.Join(dir, "groups.txt")
	os.WriteFile(file, []byte("# uplinks\ngroup_id=2,type=ff,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=output:wan2\n\ngroup_id=3,type=all,bucket=output:lan,bucket=group:2\n"), 0o644)
	e.ok("add-groups", file)
	e.ok("add-flow", "priority=10,tcp,actions=group:1")
	e.ok("add-flow", "priority=20,udp,actions=group:2")

	out := e.ok("dump-groups")
	want := ` group_id=1,type=select,bucket=weight:3,watch_port:wan1,actions=output:wan1,bucket=weight:1,watch_port:wan2,actions=output:wan2
 group_id=2,type=fast_failover,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=output:wan2
 group_id=3,type=all,bucket=actions=output:lan,bucket=actions=group:2
`
	if out != want {
		t.Fatalf("dump-groups:\n%s\nwant\n%s", out, want)
	}
	// dump-groups output reads back.
	back := filepath.Join(dir, "back.txt")
	os.WriteFile(back, []byte(strings.NewReplacer("group_id=", "group_id=1", "group:", "group:1").Replace(out)), 0o644)
	e.ok("add-groups", back)
	if again := e.ok("dump-groups", "group_id=13"); again != " group_id=13,type=all,bucket=actions=output:lan,bucket=actions=group:12\n" {
		t.Fatalf("read back: %q", again)
	}

	e.backend.SetDeadPorts("wan1")
	out = e.ok("dump-group-stats", "group_id=2")
	if !strings.HasPrefix(out, " group_id=2,duration=") || !strings.Contains(out, ",ref_count=1,packet_count=0,byte_count=0,bucket0:packet_count=0,byte_count=0,bucket1:") ||
		!strings.HasSuffix(out, " (bucket0=dead bucket1=live)\n") {
		t.Fatalf("dump-group-stats: %q", out)
	}

	e.ok("mod-group", "group_id=1,type=indirect,bucket=output:wan2")
	if out := e.ok("dump-groups", "group_id=1"); out != " group_id=1,type=indirect,bucket=actions=output:wan2\n" {
		t.Fatalf("after mod-group: %q", out)
	}
	r := e.xvsctl("del-groups", "group_id=2")
	if r.code == 0 || !strings.Contains(r.stderr, "group_in_use") && !strings.Contains(r.stderr, "sends to it") {
		t.Fatalf("deleting a chained group: %+v", r)
	}
	e.ok("del-groups", "group_id=3")
	if out := e.ok("del-groups", "--json", "group_id=2"); !strings.Contains(out, `"removed_flows": [`) || !strings.Contains(out, "udp,actions=group:2") {
		t.Fatalf("del-groups --json: %s", out)
	}
	if flows := e.ok("dump-flows"); strings.Contains(flows, "group:2") || !strings.Contains(flows, "group:1") {
		t.Fatalf("flows after del-groups: %s", flows)
	}
	e.ok("del-groups")
	if out := e.ok("dump-groups"); out != "" {
		t.Fatalf("groups after del-groups: %q", out)
	}
	if flows := e.ok("dump-flows"); strings.Contains(flows, "group:") {
		t.Fatalf("flows of deleted groups remain: %s", flows)
	}

	// Errors name the line of the file.
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("group_id=7,type=all,bucket=output:lan\n\ngroup_id=8,type=all,bucket=output:lan,mod_tp_dst:1\n"), 0o644)
	if r := e.xvsctl("add-groups", bad); r.code != 1 || !strings.Contains(r.stderr, "bad.txt:3:") || !strings.Contains(r.stderr, "out of order") {
		t.Fatalf("bad groups file: %+v", r)
	}
}

func TestBundleAndTables(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	for _, p := range []string{"wan1", "wan2", "lan"} {
		e.ok("add-port", p)
	}
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.txt")
	os.WriteFile(policy, []byte(`# classification, then the uplink groups
table=0,priority=100,ip,actions=goto_table:1
table=1,priority=100,udp,tp_dst=5060,actions=mod_nw_tos:184,group:1
table=1,priority=10,ip,actions=group:2
group_id=1,type=ff,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=output:wan2
group_id=2,type=select,bucket=weight:3,actions=output:wan1,bucket=weight:1,actions=output:wan2
`), 0o644)
	e.ok("add-bundle", policy)
	if out := e.ok("dump-flows", "table=1"); strings.Count(out, "\n") != 2 || !strings.Contains(out, " table=1, ") {
		t.Fatalf("dump-flows table=1:\n%s", out)
	}
	out := e.ok("dump-tables")
	var rows []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	if strings.Join(rows, "|") != "TABLE FLOWS LOOKUPS MATCHED|0 1 0 0|1 2 0 0" {
		t.Fatalf("dump-tables:\n%s", out)
	}
	swap := filepath.Join(dir, "swap.txt")
	os.WriteFile(swap, []byte("group_id=9,type=indirect,bucket=output:wan2\nip,actions=group:9\n"), 0o644)
	e.ok("replace-bundle", swap)
	if out := e.ok("dump-flows"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "group:9") {
		t.Fatalf("after the swap:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("ip,actions=output:lan\ngroup_id=10,type=indirect,bucket=output:nowhere\n"), 0o644)
	if r := e.xvsctl("add-bundle", bad); r.code != 1 || !strings.Contains(r.stderr, "bad.txt:2:") {
		t.Fatalf("bad bundle: %+v", r)
	}
	if out := e.ok("dump-flows"); strings.Contains(out, "output:lan") {
		t.Fatalf("a failed bundle added a flow:\n%s", out)
	}
}
