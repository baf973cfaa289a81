package ctl

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

func decodeFlowList(t *testing.T, body string) []api.FlowStatus {
	t.Helper()
	var out []api.FlowStatus
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("flow list %q: %v", body, err)
	}
	return out
}

func texts(fs []api.FlowStatus) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Text
	}
	return out
}

// savedTexts lists the flows of a saved state in the API's order (highest
// priority first, then by ID), as backendTexts does the switch's.
func savedTexts(t *testing.T, st *State) []string {
	t.Helper()
	var fis []datapath.FlowInfo
	for _, fs := range st.Flows {
		f, err := flowtable.ParseFlow(fs.Flow)
		if err != nil {
			t.Fatalf("saved flow %d %q: %v", fs.ID, fs.Flow, err)
		}
		f.ID = fs.ID
		fis = append(fis, datapath.FlowInfo{Flow: f})
	}
	var out []string
	for _, fi := range sortFlows(fis) {
		out = append(out, fi.Flow.String())
	}
	return out
}

// backendTexts lists the backend's flows, in the API's order.
func (h *harness) backendTexts() []string {
	var out []string
	for _, fi := range sortFlows(h.backend.Flows()) {
		out = append(out, fi.Flow.String())
	}
	return out
}

func TestFlowEndpoints(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")

	// One flow in text form: an object in, an object out.
	var one api.FlowStatus
	body := h.must(201, "POST", api.PathFlows, `{"flow":"priority=100,udp,tp_dst=7999,actions=output:p1"}`)
	if err := json.Unmarshal([]byte(body), &one); err != nil {
		t.Fatal(err)
	}
	if one.ID == 0 || one.Text != "priority=100,udp,tp_dst=7999,actions=output:p1" ||
		one.Match["udp"] != "" || one.Match["tp_dst"] != "7999" || !reflect.DeepEqual(one.Actions, []string{"output:p1"}) ||
		one.Priority == nil || *one.Priority != 100 {
		t.Fatalf("added flow = %s", body)
	}
	for _, key := range []string{`"packets":0`, `"bytes":0`, `"duration_s":`, `"idle_age_s":`, `"match":{`, `"actions":[`, `"flow":"`} {
		if !strings.Contains(body, key) {
			t.Errorf("response lacks %s: %s", key, body)
		}
	}

	// One flow in structured form.
	var st api.FlowStatus
	body = h.must(201, "POST", api.PathFlows, `{"priority":200,"cookie":"0x2a","match":{"in_port":"p0","udp":"","tp_dst":"7999"},"actions":["mod_tp_dst:7998","output:p1"]}`)
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Text != "cookie=0x2a,priority=200,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1" {
		t.Fatalf("structured flow = %s", body)
	}

	// A batch: an array in, an array out, IDs in order.
	added := decodeFlowList(t, h.must(201, "POST", api.PathFlows, `[
		{"flow":"priority=50,tcp,actions=kernel"},
		{"priority":10,"match":{},"actions":[]}
	]`))
	if got := texts(added); !reflect.DeepEqual(got, []string{"priority=50,tcp,actions=kernel", "priority=10,actions=drop"}) || added[0].ID >= added[1].ID {
		t.Fatalf("batch = %v %+v", got, added)
	}

	all := decodeFlowList(t, h.must(200, "GET", api.PathFlows, ""))
	wantAll := []string{
		"cookie=0x2a,priority=200,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1",
		"priority=100,udp,tp_dst=7999,actions=output:p1",
		"priority=50,tcp,actions=kernel",
		"priority=10,actions=drop",
	}
	if got := texts(all); !reflect.DeepEqual(got, wantAll) {
		t.Fatalf("GET flows = %q", got)
	}
	h.backend.CountFlow(one.ID, 3, 300)
	var got api.FlowStatus
	json.Unmarshal([]byte(h.must(200, "GET", fmt.Sprintf("%s/%d", api.PathFlows, one.ID), "")), &got)
	if got.ID != one.ID || got.Packets != 3 || got.Bytes != 300 {
		t.Fatalf("GET flow = %+v", got)
	}

	// Filters: non-strict selects every flow the match covers.
	filterTests := []struct {
		name, query string
		want        []string
	}{
		{"covers", "match=" + url.QueryEscape("udp,tp_dst=7999"), wantAll[:2]},
		{"strict", "match=" + url.QueryEscape("priority=100,udp,tp_dst=7999") + "&strict=true", wantAll[1:2]},
		{"strict without priority", "match=" + url.QueryEscape("udp,tp_dst=7999") + "&strict=true", nil},
		{"ip covers tcp and udp", "match=ip", wantAll[:3]},
		{"in_port", "match=in_port=p0", wantAll[:1]},
		{"cookie", "match=" + url.QueryEscape("cookie=0x2a/0xffffffffffffffff"), wantAll[:1]},
		{"empty", "match=", wantAll},
	}
	for _, tt := range filterTests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{t: t, srv: h.srv, backend: h.backend, store: h.store}
			got := texts(decodeFlowList(t, h.must(200, "GET", api.PathFlows+"?"+tt.query, "")))
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Fatalf("GET ?%s = %q, want %q", tt.query, got, tt.want)
			}
		})
	}

	// Delete one by ID: answered with the flow as it was.
	var del api.FlowStatus
	json.Unmarshal([]byte(h.must(200, "DELETE", fmt.Sprintf("%s/%d", api.PathFlows, one.ID), "")), &del)
	if del.ID != one.ID || del.Packets != 3 {
		t.Fatalf("DELETE flow = %+v", del)
	}
	h.must(404, "DELETE", fmt.Sprintf("%s/%d", api.PathFlows, one.ID), "")
	h.must(404, "GET", fmt.Sprintf("%s/%d", api.PathFlows, one.ID), "")

	// Delete by filter: answered with what was deleted.
	gone := decodeFlowList(t, h.must(200, "POST", api.PathFlowsDelete, `{"match":"ip"}`))
	if got := texts(gone); !reflect.DeepEqual(got, []string{wantAll[0], wantAll[2]}) {
		t.Fatalf("delete ip = %q", got)
	}
	if got := h.backendTexts(); !reflect.DeepEqual(got, wantAll[3:]) {
		t.Fatalf("left after delete ip = %q", got)
	}
	if gone := decodeFlowList(t, h.must(200, "POST", api.PathFlowsDelete, `{"match":"udp"}`)); len(gone) != 0 {
		t.Fatalf("delete of nothing = %+v", gone)
	}

	// Replace the whole table.
	repl := decodeFlowList(t, h.must(200, "PUT", api.PathFlows, `[{"flow":"priority=5,arp,actions=kernel"},{"flow":"priority=6,icmp,actions=drop"}]`))
	if len(repl) != 2 {
		t.Fatalf("PUT = %+v", repl)
	}
	if got := h.backendTexts(); !reflect.DeepEqual(got, []string{"priority=6,icmp,actions=drop", "priority=5,arp,actions=kernel"}) {
		t.Fatalf("after PUT = %q", got)
	}

	// Delete everything: no filter, or an empty body.
	if gone := decodeFlowList(t, h.must(200, "POST", api.PathFlowsDelete, `{}`)); len(gone) != 2 {
		t.Fatalf("delete all = %+v", gone)
	}
	h.must(201, "POST", api.PathFlows, `{"flow":"arp,actions=kernel"}`)
	if gone := decodeFlowList(t, h.must(200, "POST", api.PathFlowsDelete, ``)); len(gone) != 1 {
		t.Fatalf("delete all (empty body) = %+v", gone)
	}
	if n := len(h.backend.Flows()); n != 0 {
		t.Fatalf("%d flows left", n)
	}
	h.must(200, "PUT", api.PathFlows, `[]`)
}

func TestFlowErrors(t *testing.T) {
	h := newHarness(t, Options{MaxBodyBytes: 4096})
	h.addPorts("p0", "p1")
	h.must(201, "POST", api.PathFlows, `{"flow":"priority=1,arp,actions=kernel"}`)
	h.backend.SetMaxMasks(3)
	before := h.backendTexts()
	changes := h.backend.Changes()

	idx := func(i int) *int { return &i }
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     api.ErrorCode
		field                    string
		index                    *int
		msg                      string
	}{
		{"prerequisite", "POST", api.PathFlows, `{"flow":"priority=100,tp_dst=7999,actions=output:p1"}`, 400, api.CodeInvalid, "tp_dst", nil, "tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets) at column 14"},
		{"bad value", "POST", api.PathFlows, `{"flow":"udp,tp_dst=99999,actions=drop"}`, 400, api.CodeInvalid, "tp_dst", nil, "out of range"},
		{"missing actions", "POST", api.PathFlows, `{"flow":"udp,tp_dst=7999"}`, 400, api.CodeInvalid, "actions", nil, "missing actions"},
		{"structured prerequisite", "POST", api.PathFlows, `{"match":{"tp_dst":"1"},"actions":["drop"]}`, 400, api.CodeInvalid, "tp_dst", nil, "requires udp or tcp"},
		{"structured unknown match field", "POST", api.PathFlows, `{"match":{"tp_dest":"1"},"actions":["drop"]}`, 400, api.CodeInvalid, "tp_dest", nil, "unknown field"},
		{"structured no actions", "POST", api.PathFlows, `{"match":{"udp":""}}`, 400, api.CodeInvalid, "actions", nil, "missing actions"},
		{"both forms", "POST", api.PathFlows, `{"flow":"arp,actions=drop","priority":3}`, 400, api.CodeInvalid, "flow", nil, "not both"},
		{"empty flow", "POST", api.PathFlows, `{}`, 400, api.CodeInvalid, "flow", nil, "empty flow"},
		{"id given", "POST", api.PathFlows, `{"id":7,"flow":"arp,actions=drop"}`, 400, api.CodeInvalid, "id", nil, "assigned by the switch"},
		{"unknown JSON field", "POST", api.PathFlows, `{"flow":"arp,actions=drop","n_packets":3}`, 400, api.CodeInvalid, "n_packets", nil, "unknown field"},
		{"priority out of range", "POST", api.PathFlows, `{"priority":70000,"match":{},"actions":[]}`, 400, api.CodeInvalid, "priority", nil, "expected uint16"},
		{"bad JSON", "POST", api.PathFlows, `{"flow":`, 400, api.CodeInvalid, "", nil, "invalid JSON"},
		{"not an object", "POST", api.PathFlows, `"arp,actions=drop"`, 400, api.CodeInvalid, "", nil, "invalid JSON"},
		{"too big", "POST", api.PathFlows, `{"flow":"` + strings.Repeat(" ", 5000) + `"}`, 413, api.CodeTooLarge, "", nil, "too large"},
		{"unknown output port", "POST", api.PathFlows, `{"flow":"udp,actions=output:p9"}`, 404, api.CodeNoSuchPort, "output", nil, "output:p9: no such port"},
		{"unknown in_port", "POST", api.PathFlows, `{"flow":"in_port=p9,actions=drop"}`, 404, api.CodeNoSuchPort, "in_port", nil, "in_port=p9: no such port"},
		{"batch bad flow", "POST", api.PathFlows, `[{"flow":"udp,actions=drop"},{"flow":"tcp,actions=drop"},{"flow":"tcp,tp_src=x,actions=drop"}]`, 400, api.CodeInvalid, "tp_src", idx(2), "bad value"},
		{"batch bad port", "POST", api.PathFlows, `[{"flow":"udp,actions=output:p0"},{"flow":"tcp,actions=output:p7"}]`, 404, api.CodeNoSuchPort, "output", idx(1), "no such port"},
		{"batch unknown field", "POST", api.PathFlows, `[{"flow":"udp,actions=drop"},{"text":"x"}]`, 400, api.CodeInvalid, "text", idx(1), "unknown field"},
		{"batch not objects", "POST", api.PathFlows, `[{"flow":"udp,actions=drop"},3]`, 400, api.CodeInvalid, "", idx(1), "invalid JSON"},
		{"batch too many masks", "POST", api.PathFlows, `[{"flow":"udp,actions=drop"},{"flow":"udp,tp_dst=1,actions=drop"},{"flow":"tcp,tp_src=1,actions=drop"}]`, 409, api.CodeTooManyMasks, "", nil, "too many masks"},
		{"replace bad flow", "PUT", api.PathFlows, `[{"flow":"udp,actions=drop"},{"flow":"udp,nw_src=1.2.3,actions=drop"}]`, 400, api.CodeInvalid, "nw_src", idx(1), ""},
		{"replace bad port", "PUT", api.PathFlows, `[{"flow":"in_port=p8,actions=drop"}]`, 404, api.CodeNoSuchPort, "in_port", idx(0), "no such port"},
		{"delete bad filter", "POST", api.PathFlowsDelete, `{"match":"udp,tp_dst=x"}`, 400, api.CodeInvalid, "tp_dst", nil, "bad value"},
		{"delete unknown filter field", "POST", api.PathFlowsDelete, `{"match":"bogus=1"}`, 400, api.CodeInvalid, "bogus", nil, "unknown field"},
		{"delete unknown JSON field", "POST", api.PathFlowsDelete, `{"filter":"udp"}`, 400, api.CodeInvalid, "filter", nil, "unknown field"},
		{"delete filter with actions", "POST", api.PathFlowsDelete, `{"match":"udp,actions=drop"}`, 400, api.CodeInvalid, "actions", nil, ""},
		{"list bad filter", "GET", api.PathFlows + "?match=" + url.QueryEscape("tp_dst=1"), "", 400, api.CodeInvalid, "tp_dst", nil, "requires"},
		{"list bad strict", "GET", api.PathFlows + "?match=udp&strict=maybe", "", 400, api.CodeInvalid, "strict", nil, "want true or false"},
		{"list unknown parameter", "GET", api.PathFlows + "?filter=udp", "", 400, api.CodeInvalid, "filter", nil, "unknown query parameter"},
		{"get bad id", "GET", api.PathFlows + "/abc", "", 400, api.CodeInvalid, "id", nil, "want a positive number"},
		{"get id zero", "GET", api.PathFlows + "/0", "", 400, api.CodeInvalid, "id", nil, "want a positive number"},
		{"get unknown id", "GET", api.PathFlows + "/999", "", 404, api.CodeNoSuchFlow, "", nil, "no such flow"},
		{"delete unknown id", "DELETE", api.PathFlows + "/999", "", 404, api.CodeNoSuchFlow, "", nil, "no such flow"},
		{"delete endpoint GET", "GET", api.PathFlowsDelete, "", 405, api.CodeMethodNotAllowed, "", nil, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := h.do(tt.method, tt.path, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, body)
			}
			er := decodeError(t, body)
			if er.Code != tt.code {
				t.Errorf("code %q, want %q: %s", er.Code, tt.code, body)
			}
			if er.Field != tt.field {
				t.Errorf("field %q, want %q: %s", er.Field, tt.field, body)
			}
			if (er.Index == nil) != (tt.index == nil) || (er.Index != nil && *er.Index != *tt.index) {
				t.Errorf("index %v, want %v: %s", er.Index, tt.index, body)
			}
			if !strings.Contains(er.Error, tt.msg) {
				t.Errorf("message %q lacks %q", er.Error, tt.msg)
			}
			// A failed request changes nothing.
			if got := h.backendTexts(); !reflect.DeepEqual(got, before) {
				t.Fatalf("flows changed by a failed request: %q, want %q", got, before)
			}
		})
	}
	if got := h.backend.Changes(); got != changes {
		t.Errorf("failed requests made %d backend changes", got-changes)
	}
}

// The backend is still the last word: an error it finds is answered
// without a change, like ctl's own checks.
func TestFlowBackendRefuses(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0")
	h.backend.SetMaxMasks(1)
	h.must(201, "POST", api.PathFlows, `{"flow":"udp,actions=drop"}`)
	code, body := h.do("PUT", api.PathFlows, `[{"flow":"udp,actions=drop"},{"flow":"tcp,tp_dst=1,actions=drop"}]`)
	if code != 409 || decodeError(t, body).Code != api.CodeTooManyMasks {
		t.Fatalf("status %d: %s", code, body)
	}
	if got := h.backendTexts(); !reflect.DeepEqual(got, []string{"priority=32768,udp,actions=drop"}) {
		t.Fatalf("replace half applied: %q", got)
	}
	// Too many flows for the steering table: a conflict with the table, not
	// a server error, and the message says the limit.
	h.backend.SetMaxMasks(2)
	h.backend.SetMaxRules(2)
	code, body = h.do("POST", api.PathFlows, `[{"flow":"priority=9,udp,actions=drop"},{"flow":"udp,tp_dst=2,actions=drop"},{"flow":"udp,tp_dst=3,actions=drop"}]`)
	if er := decodeError(t, body); code != 409 || er.Code != api.CodeTooManyFlows || !strings.Contains(er.Error, "3 distinct matches, the XDP classifier holds 2") {
		t.Fatalf("too many flows: %d %s", code, body)
	}
	// A second priority of an installed match takes no room.
	h.must(201, "POST", api.PathFlows, `[{"flow":"priority=9,udp,actions=drop"},{"flow":"udp,tp_dst=2,actions=drop"}]`)
	h.backend.Close()
	if code, body := h.do("POST", api.PathFlows, `{"flow":"tcp,actions=drop"}`); code != 503 {
		t.Fatalf("closed switch: %d %s", code, body)
	}
}

// expiringBackend expires the first flow a delete names just before the
// delete is applied, as an idle timeout racing the request would.
type expiringBackend struct {
	*ctltest.Backend
	mu      sync.Mutex
	expired int
}

func (b *expiringBackend) ApplyCommit(c datapath.Change, commit datapath.Commit) (datapath.Applied, error) {
	b.mu.Lock()
	if len(c.Delete) > 0 && b.expired == 0 {
		b.expired++
		b.Backend.ExpireFlow(c.Delete[0])
	}
	b.mu.Unlock()
	return b.Backend.ApplyCommit(c, commit)
}

func TestDeleteFlowsRetriesExpired(t *testing.T) {
	b := &expiringBackend{Backend: ctltest.New()}
	srv, err := NewServer(Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, backend: b.Backend}
	h.must(201, "POST", api.PathFlows, `[{"flow":"udp,tp_dst=1,actions=drop"},{"flow":"udp,tp_dst=2,actions=drop"},{"flow":"tcp,actions=drop"}]`)
	gone := decodeFlowList(t, h.must(200, "POST", api.PathFlowsDelete, `{"match":"udp"}`))
	if len(gone) != 1 || b.expired != 1 {
		t.Fatalf("deleted %q (expired %d), want the one udp flow left", texts(gone), b.expired)
	}
	if got := h.backendTexts(); !reflect.DeepEqual(got, []string{"priority=32768,tcp,actions=drop"}) {
		t.Fatalf("left: %q", got)
	}
}

func TestFlowsPersisted(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	h.must(201, "POST", api.PathFlows, `[{"flow":"priority=10,udp,actions=output:p1"},{"flow":"priority=20,in_port=p0,tcp,actions=output:p1"}]`)
	h.must(404, "POST", api.PathFlows, `{"flow":"priority=30,udp,actions=output:p7"}`)
	st, err := h.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"priority=20,tcp,in_port=p0,actions=output:p1", "priority=10,udp,actions=output:p1"}
	if got := savedTexts(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("persisted flows %q, want %q", got, want)
	}
	h.must(200, "POST", api.PathFlowsDelete, `{"match":"tcp"}`)
	if st, _ = h.store.Load(); !reflect.DeepEqual(savedTexts(t, st), want[1:]) {
		t.Fatalf("persisted flows after delete %v", st.Flows)
	}
	h.must(200, "PUT", api.PathFlows, `[]`)
	if st, _ = h.store.Load(); len(st.Flows) != 0 || len(st.Ports) != 2 {
		t.Fatalf("persisted after replace with nothing: %+v", st)
	}
}

// Flows the backend removes on its own (timeouts) leave the state file when
// the switch reports them.
func TestFlowsExpiredPersisted(t *testing.T) {
	h := newHarness(t, Options{})
	ids := decodeFlowList(t, h.must(201, "POST", api.PathFlows, `[{"flow":"udp,hard_timeout=5,actions=drop"},{"flow":"tcp,actions=drop"}]`))
	if len(ids) != 2 {
		t.Fatalf("added %d flows", len(ids))
	}
	if _, err := h.backend.Apply(datapath.Change{Delete: []uint64{ids[0].ID}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.store.Load(); len(st.Flows) != 2 {
		t.Fatalf("persisted %v before the switch reported the expiry", st.Flows)
	}
	h.srv.FlowsExpired([]uint64{ids[0].ID})
	st, err := h.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"priority=32768,tcp,actions=drop"}; !reflect.DeepEqual(savedTexts(t, st), want) {
		t.Fatalf("persisted %v, want %q", st.Flows, want)
	}
}

// Concurrent changes are persisted in the order they were applied: the
// state file always ends up describing the switch.
func TestConcurrentChangesPersisted(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0, 1:
				h.do("POST", api.PathFlows, fmt.Sprintf(`{"flow":"priority=%d,udp,tp_dst=%d,actions=output:p1"}`, i, i))
			case 2:
				h.do("POST", api.PathFlowsDelete, fmt.Sprintf(`{"match":"udp,tp_dst=%d"}`, i-2))
			case 3:
				h.do("POST", api.PathPorts, fmt.Sprintf(`{"name":"q%d"}`, i))
			}
		}()
	}
	wg.Wait()
	st, err := h.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.backendTexts(); !reflect.DeepEqual(savedTexts(t, st), got) {
		t.Fatalf("persisted flows %q, switch has %q", savedTexts(t, st), got)
	}
	if len(st.Ports) != len(h.backend.Ports()) {
		t.Fatalf("persisted %d ports, switch has %d", len(st.Ports), len(h.backend.Ports()))
	}
}

// A restore brings everything back, nothing is dropped: a port whose
// netdev is missing stays configured (absent), the flows naming it or a
// port deleted before the restart come back, flow IDs and the ID counter
// are kept, and the next change saves all of it.
func TestRestore(t *testing.T) {
	state := &State{
		Version:    StateVersion,
		NextFlowID: 12,
		Ports: []PortState{
			{Name: "p0", Mode: datapath.ModeAuto, OFPort: 1},
			{Name: "gone", Mode: datapath.ModeNative, OFPort: 2}, // its netdev vanished
			{Name: "p1", Mode: datapath.ModeGeneric, OFPort: 5, Liveness: datapath.LivenessDead},
		},
		Groups: []string{"group_id=1,type=fast_failover,bucket=watch_port:gone,actions=output:gone,bucket=watch_port:p0,actions=output:p0"},
		Flows: []FlowState{
			{ID: 4, Flow: "priority=20,tcp,in_port=p0,actions=output:p1"},
			{ID: 7, Flow: "priority=15,udp,actions=output:gone"}, // names the absent port
			{ID: 9, Flow: "priority=10,udp,actions=output:p1"},
			{ID: 10, Flow: "priority=5,in_port=deleted,actions=group:1"}, // names a port deleted before the restart
		},
	}
	path := filepath.Join(t.TempDir(), "state.json")
	store := NewStore(path)
	if err := store.Save(state); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(path)
	b := ctltest.New()
	b.SetNetdevs("p0", "p1", "new")
	srv, err := NewServer(Options{Backend: b, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Restore(state)
	if err != nil || res != (RestoreResult{Ports: 3, PortsAbsent: 1, Groups: 1, Flows: 4}) {
		t.Fatalf("restore = %+v, %v", res, err)
	}
	ports := b.Ports()
	if len(ports) != 3 || ports[0].Name != "p0" || ports[1].Name != "gone" || ports[1].State != datapath.PortAbsent ||
		ports[2].Name != "p1" || ports[2].OFPort != 5 || ports[2].XDPMode != datapath.ModeGeneric || ports[2].Liveness != datapath.LivenessDead {
		t.Fatalf("restored ports %+v", ports)
	}
	var ids []uint64
	for _, e := range b.Pipeline().ByID() {
		ids = append(ids, e.Flow.ID)
	}
	if !slices.Equal(ids, []uint64{4, 7, 9, 10}) {
		t.Fatalf("restored flow IDs %v, want 4 7 9 10", ids)
	}
	h := &harness{t: t, srv: srv, backend: b, store: store}
	if err := srv.Health(); err == nil || !strings.Contains(err.Error(), "gone absent") {
		t.Fatalf("health with an absent port: %v", err)
	}
	// Restore leaves the file alone.
	if now, _ := os.ReadFile(path); string(now) != string(saved) {
		t.Fatalf("restore rewrote the state file:\n%s", now)
	}
	// The next change saves all of it, the absent port and its flows too;
	// the next flow gets the next ID.
	h.must(201, "POST", api.PathPorts, `{"name":"new"}`)
	added := decodeFlowList(t, h.must(201, "POST", api.PathFlows, `[{"flow":"arp,actions=output:gone"}]`))
	if len(added) != 1 || added[0].ID != 12 {
		t.Fatalf("added %+v, want ID 12", added)
	}
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(st.Ports); got != "[{p0 auto 1 } {gone native 2 } {p1 generic 5 dead} {new auto 6 }]" {
		t.Fatalf("saved ports %s", got)
	}
	if len(st.Flows) != 5 || st.NextFlowID != 13 || len(st.Groups) != 1 {
		t.Fatalf("saved %+v", st)
	}
	// The device appears: the port comes up, with nothing asked.
	b.SetNetdevs("p0", "p1", "new", "gone")
	if p, _ := b.Port("gone"); p.State != "up" {
		t.Fatalf("port gone once its device appeared: %+v", p)
	}
	h.must(200, "GET", api.PathHealth, "")
	// Only del-port removes it; its flows stay, as the switch keeps them.
	h.must(204, "DELETE", api.PathPorts+"/gone", "")
	if st, _ = store.Load(); len(st.Ports) != 3 || len(st.Flows) != 5 {
		t.Fatalf("saved after del-port: %+v", st)
	}
}

// A state whose entries are not valid is refused whole, naming the entry:
// nothing is dropped without a word.
func TestRestoreRefusesInvalid(t *testing.T) {
	port := []PortState{{Name: "p0", Mode: datapath.ModeAuto}}
	tests := []struct {
		name  string
		state State
		want  string
	}{
		{"bad flow", State{Ports: port, Flows: []FlowState{{ID: 1, Flow: "udp,actions=drop"}, {ID: 2, Flow: "tcp,tp_dst=x,actions=drop"}}}, `flows[1] (id 2) "tcp,tp_dst=x,actions=drop"`},
		{"ids not ascending", State{Ports: port, Flows: []FlowState{{ID: 5, Flow: "udp,actions=drop"}, {ID: 3, Flow: "tcp,actions=drop"}}}, "flows[1]"},
		{"no id", State{Ports: port, Flows: []FlowState{{Flow: "udp,actions=drop"}}}, "flows[0]"},
		{"counter below an id", State{Ports: port, NextFlowID: 2, Flows: []FlowState{{ID: 5, Flow: "udp,actions=drop"}}}, "next_flow_id 2"},
		{"port twice", State{Ports: append(port, port[0])}, "ports[1]: port p0 is there twice"},
		{"bad mode", State{Ports: []PortState{{Name: "p0", Mode: "fast"}}}, `ports[0] p0: mode "fast"`},
		{"bad port name", State{Ports: []PortState{{Name: "a b"}}}, "ports[0]"},
		{"bad liveness", State{Ports: []PortState{{Name: "p0", Liveness: "maybe"}}}, "ports[0] p0"},
		{"ofport twice", State{Ports: []PortState{{Name: "p0", OFPort: 3}, {Name: "p1", OFPort: 3}}}, "ofport 3 is p0's too"},
		{"bad group", State{Groups: []string{"group_id=1,type=nope"}}, "groups[0]"},
		{"flow to a missing group", State{Ports: port, Flows: []FlowState{{ID: 1, Flow: "ip,actions=group:9"}}}, "flows[0] (id 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := NewServer(Options{Backend: ctltest.New()})
			if err != nil {
				t.Fatal(err)
			}
			tt.state.Version = StateVersion
			_, err = srv.Restore(&tt.state)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("restore: %v; want an error naming %q", err, tt.want)
			}
		})
	}
}

// All of a good state comes back in one transaction.
func TestRestoreOneTransaction(t *testing.T) {
	b := ctltest.New()
	srv, err := NewServer(Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Restore(&State{Version: StateVersion, Ports: []PortState{{Name: "p0"}},
		Flows: []FlowState{{ID: 1, Flow: "udp,actions=output:p0"}, {ID: 2, Flow: "tcp,actions=output:p0"}, {ID: 3, Flow: "arp,actions=kernel"}}})
	if err != nil || res != (RestoreResult{Ports: 1, Flows: 3}) || b.Changes() != 1 {
		t.Fatalf("restore = %+v, %v in %d changes", res, err, b.Changes())
	}
}

// A bulk add and a dump of many flows stream their answers: the body is
// still one JSON list with every flow, in order, with its ID.
func TestManyFlowsStreamed(t *testing.T) {
	h := newHarness(t, Options{})
	var b strings.Builder
	b.WriteString("[")
	const n = 3 * streamReplyOver
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"flow":"priority=%d,udp,tp_dst=%d,actions=drop"}`, 1000+i, i+1)
	}
	b.WriteString("]")
	added := decodeFlowList(t, h.must(201, "POST", api.PathFlows, b.String()))
	if len(added) != n {
		t.Fatalf("answer lists %d flows, want %d", len(added), n)
	}
	for i, f := range added {
		if want := fmt.Sprintf("tp_dst=%d,", i+1); f.ID == 0 || !strings.Contains(f.Text, want) {
			t.Fatalf("flow %d of the answer: %+v, want ID and %q", i, f.Flow, want)
		}
	}
	if dump := decodeFlowList(t, h.must(200, "GET", api.PathFlows, "")); len(dump) != n {
		t.Fatalf("dump lists %d flows, want %d", len(dump), n)
	}
	st, err := h.store.Load()
	if err != nil || len(st.Flows) != n {
		t.Fatalf("state holds %d flows (%v), want %d", len(st.Flows), err, n)
	}
}

// With "Prefer: return=minimal" a bulk add or replace answers the new IDs
// only, in request order, and says so; the flows are installed and saved
// the same.
func TestFlowsPreferMinimal(t *testing.T) {
	h := newHarness(t, Options{})
	body := `[{"flow":"priority=5,udp,actions=drop"},{"flow":"priority=6,tcp,actions=drop"}]`
	for _, tc := range []struct {
		method, prefer string
		status         int
	}{
		{"POST", "return=minimal", 201},
		{"POST", "respond-async, RETURN=minimal", 201},
		{"PUT", "return=minimal", 200},
	} {
		req := httptest.NewRequest(tc.method, api.PathFlows, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Prefer", tc.prefer)
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		if rec.Code != tc.status || rec.Header().Get("Preference-Applied") != "return=minimal" {
			t.Fatalf("%s Prefer %q: status %d, Preference-Applied %q: %s", tc.method, tc.prefer, rec.Code, rec.Header().Get("Preference-Applied"), rec.Body)
		}
		var ids api.FlowIDs
		if err := json.Unmarshal(rec.Body.Bytes(), &ids); err != nil || len(ids.IDs) != 2 {
			t.Fatalf("%s: answer %s (%v), want two IDs", tc.method, rec.Body, err)
		}
		for i, id := range ids.IDs {
			fi, err := h.backend.Flow(id)
			if err != nil || fi.Flow.Priority != uint16(5+i) {
				t.Fatalf("%s: ID %d of the answer: %+v, %v", tc.method, id, fi, err)
			}
		}
	}
	if st, _ := h.store.Load(); len(st.Flows) != 2 {
		t.Fatalf("persisted %v", st.Flows)
	}
	// Without the preference, the full answer.
	if got := decodeFlowList(t, h.must(201, "POST", api.PathFlows, `[{"flow":"priority=7,icmp,actions=drop"}]`)); len(got) != 1 || got[0].Text == "" {
		t.Fatalf("full answer %+v", got)
	}
}

// A replace takes the flows of texts the installed flows print as from the
// installed flows instead of parsing them: each is the installed flow
// itself, exactly what parsing gives but for the table's ID, and a text no
// flow prints as is parsed. The replace then keeps the flows it gives
// unchanged, changes the one that differs, fails as a whole on a bad one,
// and writes to no installed flow, even one it is given twice.
func TestReplaceKnownFlows(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p1", "p2")
	texts := []string{
		"priority=100,udp,in_port=p1,nw_dst=10.0.0.1,tp_dst=7999,actions=mod_tp_dst:7998,output:p2",
		"cookie=0x5,table=3,idle_timeout=60,hard_timeout=90,priority=7,tcp,tp_src=80,actions=drop",
		"priority=1,arp,actions=kernel",
		"in_port=p2,dl_vlan=10,actions=strip_vlan,mod_dl_dst:02:00:00:00:00:01,output:p1",
	}
	body := textFlowsBody
	h.must(http.StatusCreated, "POST", api.PathFlows, body(texts))
	infos := h.backend.Flows()
	known := installedFlows(h.backend.Pipeline().ByID())
	for _, fi := range infos {
		got := known([]byte(fi.Text))
		if got != fi.Flow {
			t.Fatalf("%q: known flow %p, not the installed flow %p", fi.Text, got, fi.Flow)
		}
		want, err := flowtable.ParseFlow(fi.Text)
		if err != nil {
			t.Fatalf("%q: %v", fi.Text, err)
		}
		want.ID = fi.Flow.ID
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: known flow\n %+v\nparsed\n %+v", fi.Text, got, want)
		}
	}
	if f := known([]byte("priority=100,udp,actions=drop")); f != nil {
		t.Errorf("a text no flow prints as gave %+v", f)
	}
	ids := func() map[string]uint64 {
		m := map[string]uint64{}
		for _, fi := range h.backend.Flows() {
			m[fi.Text] = fi.Flow.ID
		}
		return m
	}
	before := ids()
	changed := slices.Clone(texts)
	changed[2] = "priority=2,arp,actions=kernel"
	h.must(http.StatusOK, "PUT", api.PathFlows, body(changed))
	after := ids()
	for i, s := range changed {
		f, err := flowtable.ParseFlow(s)
		if err != nil {
			t.Fatal(err)
		}
		s = f.String() // the keys of ids; texts[3] is not canonical, so it is parsed
		if i == 2 {
			if _, ok := before[s]; ok || after[s] == 0 {
				t.Errorf("the changed flow %q: before %v, after %v", s, before, after)
			}
			continue
		}
		if after[s] != before[s] || after[s] == 0 {
			t.Errorf("%q: ID %d before the replace, %d after", s, before[s], after[s])
		}
	}
	if len(after) != len(changed) {
		t.Errorf("%d flows after the replace, want %d", len(after), len(changed))
	}
	bad := append(slices.Clone(changed), "udp,nw_src=1.2.3,actions=drop")
	h.must(http.StatusBadRequest, "PUT", api.PathFlows, body(bad))
	if got := ids(); !maps.Equal(got, after) {
		t.Errorf("a failed replace changed the flows: %v, was %v", got, after)
	}

	// One installed flow given twice: it is left alone (the later of the
	// two keeps it, replacing the earlier, as ovs-ofctl replace-flows
	// leaves a flow its file gives twice), and neither it nor any other
	// installed flow is written to.
	installed := map[*flowtable.Flow]flowtable.Flow{}
	for _, e := range h.backend.Pipeline().ByID() {
		installed[e.Flow] = *e.Flow
	}
	twice := append(slices.Clone(changed), changed[0])
	h.must(http.StatusOK, "PUT", api.PathFlows, body(twice))
	for f, was := range installed {
		if !reflect.DeepEqual(*f, was) {
			t.Errorf("the replace wrote to installed flow %q: %+v, was %+v", was.String(), *f, was)
		}
	}
	final := ids()
	if len(final) != len(changed) {
		t.Errorf("%d flows after a replace with a flow twice, want %d: %v", len(final), len(changed), final)
	}
	for _, e := range h.backend.Pipeline().ByID() {
		if e.Flow.ID == 0 || final[e.Text()] != e.Flow.ID {
			t.Errorf("flow %q: ID %d, dump says %d", e.Text(), e.Flow.ID, final[e.Text()])
		}
	}
	if s := changed[0]; final[s] != after[s] {
		t.Errorf("%q given twice: ID %d, was %d", s, final[s], after[s])
	}
}

// Ports given by ofport number, as OVS users write them, are bound to the
// names of the ports that have those numbers: the flows are kept (and
// persisted) by name. A port named with digits is written quoted.
func TestFlowPortNumbers(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1", "7") // ofports 1, 2, 3
	tests := []struct {
		name, body string
		status     int
		want       string // the flow as installed, or the error
		field      string
	}{
		{"in_port and output", `{"flow":"priority=5,in_port=1,actions=output:2"}`, 201, "priority=5,in_port=p0,actions=output:p1", ""},
		{"bare numbers and IN_PORT", `{"flow":"priority=6,in_port=2,actions=1,IN_PORT"}`, 201, "priority=6,in_port=p1,actions=output:p0,in_port", ""},
		{"a port named 7 is ofport 3", `{"flow":"priority=7,in_port=3,actions=output:\"7\""}`, 201, `priority=7,in_port="7",actions=output:"7"`, ""},
		{"resubmit", `{"flow":"priority=8,actions=resubmit(2,1)"}`, 201, "priority=8,actions=resubmit(p1,1)", ""},
		{"structured", `{"priority":9,"match":{"in_port":"2"},"actions":["output:1"]}`, 201, "priority=9,in_port=p1,actions=output:p0", ""},
		{"unknown in_port number", `{"flow":"in_port=9,actions=drop"}`, 404, "in_port=9: no port has ofport 9: no such port", "in_port"},
		{"unknown output number", `{"flow":"actions=output:1,output:7"}`, 404, "output:7: no port has ofport 7: no such port", "output"},
		{"reserved port", `{"flow":"actions=output:LOCAL"}`, 400, "xvs has no LOCAL port", "output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := h.do("POST", api.PathFlows, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, body)
			}
			if code != 201 {
				er := decodeError(t, body)
				if er.Field != tt.field || !strings.Contains(er.Error, tt.want) {
					t.Fatalf("error %+v, want field %q and %q", er, tt.field, tt.want)
				}
				return
			}
			var st api.FlowStatus
			if err := json.Unmarshal([]byte(body), &st); err != nil || st.Text != tt.want {
				t.Fatalf("installed %q (%v), want %q", st.Text, err, tt.want)
			}
		})
	}

	// Filters take numbers too (in_port, out_port); a number no port has
	// selects nothing.
	for filter, want := range map[string]int{"in_port=1": 1, "in_port=2": 2, "in_port=p1": 2, `in_port="7"`: 1, "in_port=3": 1, "in_port=9": 0,
		"out_port=1": 2, "out_port=p0": 2, "out_port=2": 1, "out_port=3": 1, `out_port="7"`: 1, "out_port=9": 0, "in_port=2,out_port=1": 2} {
		got := decodeFlowList(t, h.must(200, "GET", api.PathFlows+"?match="+url.QueryEscape(filter), ""))
		if len(got) != want {
			t.Errorf("filter %s selects %q, want %d flows", filter, texts(got), want)
		}
	}
	del := decodeFlowList(t, h.must(200, "POST", api.PathFlowsDelete, `{"match":"in_port=2"}`))
	if len(del) != 2 {
		t.Errorf("delete in_port=2 removed %q", texts(del))
	}

	// Groups: watch ports and outputs by number.
	body := h.must(201, "POST", api.PathGroups, `{"group":"group_id=4,type=ff,bucket=watch_port:1,output:1,bucket=watch_port:2,output:2"}`)
	if !strings.Contains(body, "bucket=watch_port:p0,actions=output:p0,bucket=watch_port:p1,actions=output:p1") {
		t.Errorf("group installed as %s", body)
	}
	code, body := h.do("POST", api.PathGroups, `{"group":"group_id=5,type=ff,bucket=watch_port:9,output:1"}`)
	if er := decodeError(t, body); code != 404 || er.Field != "watch_port" || !strings.Contains(er.Error, "no port has ofport 9") {
		t.Errorf("group with unknown watch port: %d %s", code, body)
	}
}

// A bulk request large enough to be parsed on every CPU, whose flows share
// their action text, one of them under a match (shorter than the others')
// that the actions do not suit: a 400 naming that flow and its field, and
// the server goes on.
func TestBulkSharedActionsRefused(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p1", "p2")
	texts := make([]string, 5000)
	for i := range texts {
		texts[i] = fmt.Sprintf("priority=100,udp,in_port=p1,nw_dst=10.1.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:p2", i>>8, i&255)
	}
	texts[4500] = "ip,actions=mod_tp_dst:7998,output:p2"
	code, body := h.do("POST", api.PathFlows, textFlowsBody(texts))
	if code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %.300s", code, body)
	}
	er := decodeError(t, body)
	if er.Index == nil || *er.Index != 4500 || er.Field != "mod_tp_dst" || !strings.Contains(er.Error, "column 12") {
		t.Errorf("error %+v, want item 4500, field mod_tp_dst, column 12", er)
	}
	if n := len(h.backend.Flows()); n != 0 {
		t.Errorf("%d flows installed by a refused request", n)
	}
	h.must(http.StatusCreated, "POST", api.PathFlows, textFlowsBody(texts[:4500]))
}
