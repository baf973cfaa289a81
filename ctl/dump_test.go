package ctl

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/api"
)

// refDumpLine is how xvsctl printed a dump-flows line from the JSON of a
// flow before the server printed them: the text dump must say the same.
// ovs: without the datapath= field.
func refDumpLine(fs *api.FlowStatus, ovs bool) string {
	i := strings.Index(fs.Text, "priority=")
	j := strings.Index(fs.Text, ",actions=")
	cookie := fs.Cookie
	if cookie == "" {
		cookie = "0x0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, " cookie=%s, duration=%.3fs, table=%d, n_packets=%d, n_bytes=%d, ", cookie, fs.DurationS, fs.Table, fs.Packets, fs.Bytes)
	if fs.IdleTimeoutS != 0 {
		fmt.Fprintf(&b, "idle_timeout=%d, ", fs.IdleTimeoutS)
	}
	if fs.HardTimeoutS != 0 {
		fmt.Fprintf(&b, "hard_timeout=%d, ", fs.HardTimeoutS)
	}
	fmt.Fprintf(&b, "idle_age=%d, ", int64(fs.IdleAgeS))
	switch {
	case fs.Datapath == "" || ovs:
	case fs.DatapathReason != "":
		fmt.Fprintf(&b, "datapath=%s(%s), ", fs.Datapath, fs.DatapathReason)
	default:
		fmt.Fprintf(&b, "datapath=%s, ", fs.Datapath)
	}
	fmt.Fprintf(&b, "%s actions=%s", fs.Text[i:j], fs.Text[j+len(",actions="):])
	return b.String()
}

func TestDumpText(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	h.must(201, "POST", api.PathFlows, `[
		{"flow":"priority=10,udp,actions=output:p1"},
		{"flow":"cookie=0x2a,table=3,idle_timeout=30,hard_timeout=60,priority=7,in_port=p0,tcp,tp_dst=80,actions=mod_tp_dst:8080,output:p1"},
		{"flow":"arp,actions=kernel"},
		{"flow":"table=1,priority=0,actions=drop"}]`)
	if err := h.backend.CountFlow(1, 12, 3400); err != nil {
		t.Fatal(err)
	}
	var flows []api.FlowStatus
	if err := json.Unmarshal([]byte(h.must(200, "GET", api.PathFlows+"?match=", "")), &flows); err != nil {
		t.Fatal(err)
	}
	code, text := h.do("GET", api.PathFlows, "", "Accept", "text/plain")
	if code != 200 {
		t.Fatalf("text dump: %d %s", code, text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(flows) {
		t.Fatalf("%d lines for %d flows:\n%s", len(lines), len(flows), text)
	}
	dur := func(s string) string { // the dumps were a moment apart
		i := strings.Index(s, "duration=")
		j := strings.Index(s[i:], ", ")
		return s[:i] + s[i+j:]
	}
	for i := range flows {
		if got, want := dur(lines[i]), dur(refDumpLine(&flows[i], false)); got != want {
			t.Errorf("line %d:\n%s\nwant\n%s", i, got, want)
		}
	}

	// ovs=true: the same lines without datapath=, for ovs-ofctl; only in
	// the text form.
	code, text = h.do("GET", api.PathFlows+"?ovs=true", "", "Accept", "text/plain")
	if code != 200 {
		t.Fatalf("text dump, ovs=true: %d %s", code, text)
	}
	lines = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(flows) || strings.Contains(text, "datapath=") {
		t.Fatalf("ovs=true: %d lines for %d flows, datapath= left out:\n%s", len(lines), len(flows), text)
	}
	for i := range flows {
		if got, want := dur(lines[i]), dur(refDumpLine(&flows[i], true)); got != want {
			t.Errorf("ovs=true, line %d:\n%s\nwant\n%s", i, got, want)
		}
	}
	for _, bad := range []struct{ query, accept string }{{"?ovs=true", ""}, {"?ovs=yes", "text/plain"}} {
		code, body := h.do("GET", api.PathFlows+bad.query, "", "Accept", bad.accept)
		if er := decodeError(t, body); code != 400 || er.Field != "ovs" {
			t.Errorf("GET %s, Accept %q: %d %s, want 400 naming ovs", bad.query, bad.accept, code, body)
		}
	}
}

func TestWantsText(t *testing.T) {
	tests := []struct {
		accept string
		text   bool
	}{
		{"", false},
		{"application/json", false},
		{"text/plain", true},
		{"text/plain; charset=utf-8", true},
		{"text/plain, application/json;q=0.5", true},
		{"application/json, text/plain;q=0.5", false},
		{"text/plain;q=0.9, */*;q=0.1", true},
		{"text/plain;q=0", false},
		{"*/*", false},
		{"text/html", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, api.PathFlows, nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		if got := wantsText(r); got != tt.text {
			t.Errorf("Accept %q: text %v, want %v", tt.accept, got, tt.text)
		}
	}
}
