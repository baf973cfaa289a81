package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
)

func TestTraceCommand(t *testing.T) {
	e := newTestEnv(t, ctl.Options{})
	for _, p := range []string{"lan", "wan1", "wan2"} {
		e.ok("add-port", p)
	}
	e.ok("add-group", "group_id=1,type=fast_failover,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=output:wan2")
	e.ok("add-flow", "cookie=0x5,priority=100,udp,tp_dst=5060,actions=mod_nw_tos:184,goto_table:1")
	e.ok("add-flow", "table=1,udp,actions=resubmit(,2),group:1")
	e.ok("add-flow", "table=2,udp,actions=dec_ttl")
	e.ok("add-flow", "priority=100,tcp,tp_dst=23,actions=drop")

	out := e.ok("trace", "in_port=lan,udp,nw_src=10.1.0.1,nw_dst=10.2.0.1,tp_src=4000,tp_dst=5060")
	want := `Flow: in_port=lan,udp,dl_vlan=0xffff,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=10.1.0.1,nw_dst=10.2.0.1,nw_tos=0,tp_src=4000,tp_dst=5060,nw_ttl=64

XDP program (port lan, queue 0)
-------------------------------
rule of udp,tp_dst=5060, priority 100, cookie 0x5 (flow 1)
masks looked up: 0
verdict: to userspace (XDP_REDIRECT to the queue's AF_XDP socket)

bridge("xvs")
-------------
 0. udp,tp_dst=5060, priority 100, cookie 0x5 (flow 1)
    mod_nw_tos:184
     -> nw_tos=184
    goto_table:1
 1. udp, priority 32768 (flow 2)
    resubmit(,2)
     2. udp, priority 32768 (flow 3)
        dec_ttl
         -> nw_ttl=63
    group:1
     -> using bucket 0
    bucket 0
        output:wan1

Final flow: udp,dl_vlan=0xffff,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=10.1.0.1,nw_dst=10.2.0.1,nw_tos=184,tp_src=4000,tp_dst=5060,nw_ttl=63
Datapath actions: output:wan1
`
	if out != want {
		t.Errorf("trace:\n%s\nwant:\n%s", out, want)
	}

	e.backend.SetDeadPorts("wan1")
	if out := e.ok("trace", "in_port=lan,udp,tp_dst=5060"); !strings.Contains(out, " -> using bucket 1\n") || !strings.HasSuffix(out, "Datapath actions: output:wan2\n") {
		t.Errorf("trace after wan1 died:\n%s", out)
	}
	e.backend.SetDeadPorts("wan1", "wan2")
	if out := e.ok("trace", "in_port=lan,udp,tp_dst=5060"); !strings.Contains(out, "group 1 has no live bucket") || !strings.HasSuffix(out, "Datapath actions: drop (action_drop, in userspace)\n") {
		t.Errorf("trace with no live uplink:\n%s", out)
	}
	if out := e.ok("trace", "in_port=lan,tcp,tp_dst=23"); !strings.HasSuffix(out, "verdict: dropped (XDP_DROP)\n\nDatapath actions: drop (xdp_drop, in XDP)\n") {
		t.Errorf("trace of a drop:\n%s", out)
	}
	if out := e.ok("trace", "in_port=lan,tcp,tp_dst=22"); !strings.Contains(out, "no rule matched\n") || !strings.HasSuffix(out, "Datapath actions: kernel (XDP_PASS: the host's stack has the packet)\n") {
		t.Errorf("trace of a packet no flow wants:\n%s", out)
	}

	var tr api.Trace
	if err := json.Unmarshal([]byte(e.ok("trace", "--json", "in_port=lan,tcp,tp_dst=23")), &tr); err != nil || tr.Result != "drop" {
		t.Fatalf("trace --json: %v %+v", err, tr)
	}
	if out := e.ok("trace", "--packet", tr.Packet, "in_port=lan"); !strings.Contains(out, "drop (xdp_drop, in XDP)") {
		t.Errorf("trace --packet:\n%s", out)
	}
	for _, args := range [][]string{
		{"trace", "--packet", tr.Packet, "lan"},
		{"trace", "--packet", tr.Packet, "in_port=lan,tcp"},
		{"trace"},
	} {
		if r := e.xvsctl(args...); r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage): %s", args, r.code, r.stderr)
		}
	}
	if r := e.xvsctl("trace", "udp,tp_dst=1"); r.code != 1 || !strings.Contains(r.stderr, "in_port") {
		t.Errorf("trace without in_port: %+v", r)
	}
}
