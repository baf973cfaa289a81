package main

import (
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/testenv"
)

// TestRESTTrace: POST /v1/trace on the real switch runs the loaded XDP
// program (a packet no flow wants goes to the kernel; a drop flow drops in
// XDP) and then the pipeline, naming ports as the user does.
func TestRESTTrace(t *testing.T) {
	nsA, nsB := testenv.NewNS(t), testenv.NewNS(t)
	a := testenv.NewVeth(t, nsA, "ta", testenv.VethOptions{PeerIP: "10.204.0.1/24"})
	b := testenv.NewVeth(t, nsB, "tb", testenv.VethOptions{PeerIP: "10.204.0.2/24"})
	d := startXvsd(t, t.TempDir())
	for _, v := range []*testenv.Veth{a, b} {
		if _, err := d.client.AddPort(tctx(t), api.PortRequest{Name: v.LocalName()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{
		"priority=10,udp,tp_dst=53,actions=mod_tp_dst:5353,output:" + b.LocalName(),
		"priority=10,tcp,tp_dst=23,actions=drop",
	} {
		if _, err := d.client.AddFlow(tctx(t), flowJSON(f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		flow, verdict, reason, result, drop, out string
	}{
		{"udp,tp_dst=53", "redirect", "rule", api.TraceResultOutput, "", b.LocalName()},
		{"tcp,tp_dst=23", "drop", "rule", api.TraceResultDrop, "xdp_drop", ""},
		{"tcp,tp_dst=22", "pass", "no_match", api.TraceResultKernel, "", ""},
	} {
		tr, err := d.client.Trace(tctx(t), api.TraceRequest{Flow: "in_port=" + a.LocalName() + "," + tt.flow})
		if err != nil {
			t.Fatalf("trace %s: %v", tt.flow, err)
		}
		if tr.XDP.Verdict != tt.verdict || tr.XDP.Reason != tt.reason || tr.Result != tt.result || tr.Drop != tt.drop || tr.Disagree != "" {
			t.Errorf("trace %s: xdp %+v result %s drop %q disagree %q", tt.flow, tr.XDP, tr.Result, tr.Drop, tr.Disagree)
		}
		if tt.out != "" && (len(tr.Outputs) != 1 || tr.Outputs[0].Port != tt.out) {
			t.Errorf("trace %s: outputs %+v, want %s", tt.flow, tr.Outputs, tt.out)
		}
	}
}
