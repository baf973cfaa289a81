package ctl

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/api"
)

func TestTraceRequests(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1", "p2")
	h.must(201, "POST", api.PathGroups, `{"group":"group_id=1,type=all,bucket=output:p1,bucket=mod_tp_dst:99,output:p2"}`)
	h.must(201, "POST", api.PathFlows, `[
		{"flow":"priority=10,udp,tp_dst=53,actions=mod_nw_dst:10.9.9.9,goto_table:1"},
		{"flow":"table=1,udp,actions=group:1"},
		{"flow":"priority=10,tcp,tp_dst=22,actions=kernel"},
		{"flow":"priority=10,tcp,tp_dst=23,actions=drop"},
		{"flow":"priority=10,udp,tp_dst=54,actions=dec_ttl,output:p1"}]`)

	trace := func(body string) api.Trace {
		t.Helper()
		var tr api.Trace
		if err := json.Unmarshal([]byte(h.must(200, "POST", api.PathTrace, body)), &tr); err != nil {
			t.Fatal(err)
		}
		return tr
	}

	tr := trace(`{"flow":"in_port=p0,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=53"}`)
	if tr.InPort != "p0" || tr.OFPort != 1 || tr.Result != api.TraceResultOutput || tr.XDP.Verdict != "redirect" || tr.XDP.Flow == nil || tr.XDP.Flow.ID != 1 {
		t.Fatalf("trace: %+v", tr)
	}
	if !strings.HasPrefix(tr.Flow, "in_port=p0,udp,") || !strings.Contains(tr.Flow, "nw_dst=10.0.0.2") || !strings.Contains(tr.Flow, "tp_dst=53") {
		t.Errorf("flow %q", tr.Flow)
	}
	var kinds []string
	for _, s := range tr.Steps {
		kinds = append(kinds, s.Kind)
	}
	if got := strings.Join(kinds, " "); got != "lookup action action lookup action bucket action bucket action action" {
		t.Errorf("steps: %s", got)
	}
	if s := tr.Steps[1]; s.Action != "mod_nw_dst:10.9.9.9" || !strings.Contains(s.PacketFlow, "nw_dst=10.9.9.9") || s.Packet == "" {
		t.Errorf("step after mod_nw_dst: %+v", s)
	}
	if len(tr.Outputs) != 2 || tr.Outputs[0].Port != "p1" || tr.Outputs[1].Port != "p2" ||
		!strings.Contains(tr.Outputs[1].Flow, "tp_dst=99") || !strings.Contains(tr.Outputs[0].Flow, "tp_dst=53") {
		t.Errorf("outputs: %+v", tr.Outputs)
	}

	// in_port by ofport number, as ofproto/trace takes it (p0 is ofport 1),
	// in the flow fields or with a packet in hex.
	for _, body := range []string{
		`{"flow":"in_port=1,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=53"}`,
		`{"flow":"in_port=\"p0\",udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=53"}`,
		`{"flow":"in_port=1,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=53","in_port":"p0"}`,
		`{"in_port":"1","packet":"` + tr.Packet + `"}`,
	} {
		if got := trace(body); got.InPort != "p0" || got.Packet != tr.Packet || len(got.Steps) != len(tr.Steps) {
			t.Errorf("%s: in_port %q, %d steps; want p0 and the trace of in_port=p0", body, got.InPort, len(got.Steps))
		}
	}

	for _, tt := range []struct {
		name, body, result, drop, verdict string
	}{
		{"kernel flow", `{"flow":"in_port=p0,tcp,tp_dst=22"}`, api.TraceResultKernel, "", "pass"},
		{"drop flow", `{"flow":"in_port=p0,tcp,tp_dst=23"}`, api.TraceResultDrop, "xdp_drop", "drop"},
		{"no flow", `{"flow":"in_port=p0,tcp,tp_dst=24"}`, api.TraceResultKernel, "", "pass"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := trace(tt.body)
			if tr.Result != tt.result || tr.Drop != tt.drop || tr.XDP.Verdict != tt.verdict {
				t.Fatalf("result %s drop %q verdict %s, want %s %q %s", tr.Result, tr.Drop, tr.XDP.Verdict, tt.result, tt.drop, tt.verdict)
			}
		})
	}

	// The same packet in hex traces the same way, and the frame the
	// switch built is the one in the answer.
	raw, err := hex.DecodeString(tr.Packet)
	if err != nil || len(raw) < 42 {
		t.Fatalf("packet %q: %v", tr.Packet, err)
	}
	tr2 := trace(`{"in_port":"p0","packet":"` + tr.Packet + `"}`)
	if tr2.Packet != tr.Packet || len(tr2.Steps) != len(tr.Steps) || tr2.Result != tr.Result {
		t.Errorf("hex trace differs: %+v", tr2)
	}

	for _, tt := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"no packet", `{}`, 400, "flow"},
		{"both forms", `{"flow":"in_port=p0,udp","packet":"00"}`, 400, "packet"},
		{"no in_port", `{"flow":"udp,tp_dst=53"}`, 400, "in_port"},
		{"in_ports disagree", `{"flow":"in_port=p0,udp","in_port":"p1"}`, 400, "in_port"},
		{"bad field", `{"flow":"in_port=p0,udp,tp_dsst=53"}`, 400, "tp_dsst"},
		{"bad value", `{"flow":"in_port=p0,udp,tp_dst=x"}`, 400, "tp_dst"},
		{"hex without in_port", `{"packet":"` + tr.Packet + `"}`, 400, "in_port"},
		{"not hex", `{"in_port":"p0","packet":"xyz"}`, 400, "packet"},
		{"too short", `{"in_port":"p0","packet":"0000"}`, 400, "packet"},
		{"negative queue", `{"flow":"in_port=p0,udp","queue":-1}`, 400, "queue"},
		{"missing port", `{"flow":"in_port=p9,udp"}`, 404, "in_port"},
		{"missing ofport", `{"flow":"in_port=9,udp"}`, 404, "in_port"},
		{"missing ofport with hex", `{"in_port":"9","packet":"` + tr.Packet + `"}`, 404, "in_port"},
		{"ofport and name disagree", `{"flow":"in_port=2,udp","in_port":"p0"}`, 400, "in_port"},
		{"unknown field", `{"flow":"in_port=p0,udp","port":"p0"}`, 400, "port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := h.do("POST", api.PathTrace, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, body)
			}
			if er := decodeError(t, body); er.Field != tt.field {
				t.Errorf("field %q, want %q: %s", er.Field, tt.field, er.Error)
			}
		})
	}

	// A port whose device went has nothing to trace on: 404, naming the
	// port, not a trace of a frame no device could send.
	h.backend.SetNetdevs("p0", "p1")
	code, body := h.do("POST", api.PathTrace, `{"flow":"in_port=p2,udp"}`)
	if er := decodeError(t, body); code != 404 || er.Field != "in_port" || er.Code != api.CodeNoSuchDevice || !strings.Contains(er.Error, "absent") {
		t.Errorf("trace on an absent port: %d %+v", code, er)
	}
	h.backend.SetNetdevs("p0", "p1", "p2")

	// Tracing counts nothing.
	var flows []api.FlowStatus
	json.Unmarshal([]byte(h.must(200, "GET", api.PathFlows, "")), &flows)
	for _, f := range flows {
		if f.Packets != 0 {
			t.Errorf("flow %d counted %d packets", f.ID, f.Packets)
		}
	}
}
