package main

import (
	"strings"
	"testing"

	"github.com/xvs-project/xvs/ctl"
)

func TestMonitorAndLiveness(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	e.ok("add-port", "wan1")
	e.ok("add-port", "wan2")
	e.ok("add-group", "group_id=1,type=ff,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=output:wan2")
	e.ok("add-flow", "udp,actions=group:1")

	out := e.ok("set-port-liveness", "--json", "wan1", "dead")
	if !strings.Contains(out, `"live": false`) || !strings.Contains(out, `"liveness": "dead"`) {
		t.Fatalf("set-port-liveness --json: %s", out)
	}
	if show := e.ok("show"); !strings.Contains(show, "no (set dead)") {
		t.Fatalf("show after set dead:\n%s", show)
	}
	if st := e.ok("dump-group-stats"); !strings.Contains(st, "(bucket0=dead bucket1=live)") {
		t.Fatalf("dump-group-stats: %s", st)
	}
	if r := e.xvsctl("set-port-liveness", "wan1", "maybe"); r.code != 1 || !strings.Contains(r.stderr, "want auto, live or dead") {
		t.Fatalf("bad liveness: %+v", r)
	}

	// The events so far, from the first: groups changed, flows changed.
	out = e.ok("monitor", "--since", "0", "--count", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "event=groups_changed id=1 at=") ||
		!strings.Contains(lines[0], ` request="POST /v1/groups"`) ||
		!strings.HasPrefix(lines[1], "event=flows_changed id=2 ") || !strings.Contains(lines[1], " flows=1 ") {
		t.Fatalf("monitor:\n%s", out)
	}
	if out := e.ok("monitor", "--json", "--since", "1", "--count", "1"); !strings.Contains(out, `"type": "flows_changed"`) {
		t.Fatalf("monitor --json: %s", out)
	}
}
