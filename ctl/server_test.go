package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

var _ Backend = (*ctltest.Backend)(nil)

// harness is a Server over a fake backend, called in-process.
type harness struct {
	t       *testing.T
	srv     *Server
	backend *ctltest.Backend
	store   *Store
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	b := ctltest.New()
	opts.Backend = b
	if opts.Store == nil {
		opts.Store = NewStore(filepath.Join(t.TempDir(), "state.json"))
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close) // before the temporary directory goes
	return &harness{t: t, srv: srv, backend: b, store: opts.Store}
}

// do sends one request and returns the status and body.
func (h *harness) do(method, path, body string, hdr ...string) (int, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if method == "POST" || method == "PUT" || method == "PATCH" {
		req.Header.Set("Content-Type", "application/json") // as every client must
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// An answer that does not end (an event stream the request did not
	// mean to open) ends here, so the test fails instead of hanging.
	ctx, cancel := context.WithTimeout(req.Context(), 20*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req.WithContext(ctx))
	return rec.Code, rec.Body.String()
}

// must sends a request that must answer want.
func (h *harness) must(want int, method, path, body string) string {
	h.t.Helper()
	code, resp := h.do(method, path, body)
	if code != want {
		h.t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, code, want, resp)
	}
	return resp
}

func (h *harness) addPorts(names ...string) {
	h.t.Helper()
	for _, n := range names {
		h.must(http.StatusCreated, "POST", api.PathPorts, fmt.Sprintf(`{"name":%q}`, n))
	}
}

func decodeError(t *testing.T, body string) api.ErrorResponse {
	t.Helper()
	var er api.ErrorResponse
	if err := json.Unmarshal([]byte(body), &er); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if er.Error == "" {
		t.Fatalf("error body %q has no message", body)
	}
	return er
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"invalid", fmt.Errorf("x: %w", datapath.ErrInvalid), 400},
		{"parse error", fmt.Errorf("flow: %w", &flowtable.ParseError{Field: "tp_dst", Msg: "bad"}), 400},
		{"request error", badRequest("name", "empty"), 400},
		{"request too big", &requestError{err: fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 1})}, 413},
		{"no such port", fmt.Errorf("p: %w", datapath.ErrNoSuchPort), 404},
		{"no such flow", fmt.Errorf("f: %w", datapath.ErrNoSuchFlow), 404},
		{"no route", errNotFound, 404},
		{"port exists", fmt.Errorf("p: %w", datapath.ErrPortExists), 409},
		{"too many masks", fmt.Errorf("t: %w", flowtable.ErrTooManyMasks), 409},
		{"too many flows", fmt.Errorf("t: %w", flowtable.ErrTooManyFlows), 409},
		{"kernel rule table full", fmt.Errorf("sync steering: put rules: %w", steer.ErrTooManyRules), 409},
		{"closed", fmt.Errorf("c: %w", datapath.ErrClosed), 503},
		{"unauthorized", errUnauthorized, 401},
		{"method", errMethodNotAllowed, 405},
		{"other", errors.New("disk on fire"), 500},
		{"item wraps", &itemError{index: 3, err: fmt.Errorf("x: %w", datapath.ErrNoSuchPort)}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.err); got != tt.want {
				t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorResponse(t *testing.T) {
	err := &itemError{index: 2, err: fmt.Errorf("add: %w", &flowtable.ParseError{Field: "tp_dst", Msg: "tp_dst requires udp or tcp", Column: 5})}
	er := errorResponse(err)
	if er.Field != "tp_dst" || er.Index == nil || *er.Index != 2 || er.Error != "add: tp_dst requires udp or tcp at column 5" {
		t.Errorf("errorResponse = %+v (index %v)", er, er.Index)
	}
	er = errorResponse(badRequest("mode", "bad mode"))
	if er.Field != "mode" || er.Index != nil {
		t.Errorf("errorResponse = %+v", er)
	}
}

func TestPorts(t *testing.T) {
	h := newHarness(t, Options{MaxBodyBytes: 1024})
	h.addPorts("p0")
	tests := []struct {
		name, method, path, body string
		want                     int
		code                     api.ErrorCode
		field                    string // for errors
	}{
		{"add", "POST", api.PathPorts, `{"name":"p1","mode":"generic"}`, 201, "", ""},
		{"add duplicate", "POST", api.PathPorts, `{"name":"p0"}`, 409, api.CodePortExists, ""},
		{"add no name", "POST", api.PathPorts, `{"mode":"auto"}`, 400, api.CodeInvalid, "name"},
		{"add long name", "POST", api.PathPorts, `{"name":"abcdefghijklmnop"}`, 400, api.CodeInvalid, "name"},
		{"add slash", "POST", api.PathPorts, `{"name":"a/b"}`, 400, api.CodeInvalid, "name"},
		{"add bad mode", "POST", api.PathPorts, `{"name":"p2","mode":"turbo"}`, 400, api.CodeInvalid, "mode"},
		{"add unknown field", "POST", api.PathPorts, `{"name":"p2","speed":10}`, 400, api.CodeInvalid, "speed"},
		{"add wrong type", "POST", api.PathPorts, `{"name":7}`, 400, api.CodeInvalid, "name"},
		{"add bad JSON", "POST", api.PathPorts, `{"name":`, 400, api.CodeInvalid, ""},
		{"add empty body", "POST", api.PathPorts, ``, 400, api.CodeInvalid, ""},
		{"add trailing data", "POST", api.PathPorts, `{"name":"p2"} {}`, 400, api.CodeInvalid, ""},
		{"add too big", "POST", api.PathPorts, `{"name":"` + strings.Repeat("x", 2000) + `"}`, 413, api.CodeTooLarge, ""},
		{"get", "GET", api.PathPorts + "/p0", "", 200, "", ""},
		{"get missing", "GET", api.PathPorts + "/nope", "", 404, api.CodeNoSuchPort, ""},
		{"stats", "GET", api.PathPorts + "/p0/stats", "", 200, "", ""},
		{"stats missing", "GET", api.PathPorts + "/nope/stats", "", 404, api.CodeNoSuchPort, ""},
		{"delete missing", "DELETE", api.PathPorts + "/nope", "", 404, api.CodeNoSuchPort, ""},
		{"method not allowed", "PATCH", api.PathPorts, "", 405, api.CodeMethodNotAllowed, ""},
		{"unknown path", "GET", "/v2/ports", "", 404, api.CodeNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := h.do(tt.method, tt.path, tt.body)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, body)
			}
			if code >= 400 {
				er := decodeError(t, body)
				if er.Field != tt.field || er.Code != tt.code {
					t.Errorf("field %q code %q, want %q %q (%s)", er.Field, er.Code, tt.field, tt.code, body)
				}
				if strings.Contains(er.Error, "invalid flow") {
					t.Errorf("a port error reads %q", er.Error)
				}
			}
		})
	}

	var ports []api.PortInfo
	if err := json.Unmarshal([]byte(h.must(200, "GET", api.PathPorts, "")), &ports); err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || ports[0].Name != "p0" || ports[1].Name != "p1" || ports[1].XDPMode != api.ModeGeneric {
		t.Fatalf("ports = %+v", ports)
	}
	h.must(204, "DELETE", api.PathPorts+"/p0", "")
	h.must(404, "GET", api.PathPorts+"/p0", "")
	if got := h.backend.Ports(); len(got) != 1 || got[0].Name != "p1" {
		t.Fatalf("backend ports after delete = %+v", got)
	}
}

func TestPortsPersisted(t *testing.T) {
	h := newHarness(t, Options{})
	h.must(201, "POST", api.PathPorts, `{"name":"p0"}`)
	h.must(201, "POST", api.PathPorts, `{"name":"p1","mode":"generic"}`)
	h.must(409, "POST", api.PathPorts, `{"name":"p1"}`)
	st, err := h.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []PortState{{Name: "p0", Mode: datapath.ModeAuto, OFPort: 1}, {Name: "p1", Mode: datapath.ModeGeneric, OFPort: 2}}
	if fmt.Sprint(st.Ports) != fmt.Sprint(want) {
		t.Fatalf("persisted ports = %v, want %v (auto must stay auto, not what it resolved to)", st.Ports, want)
	}
	h.must(204, "DELETE", api.PathPorts+"/p0", "")
	if st, err = h.store.Load(); err != nil {
		t.Fatal(err)
	}
	if len(st.Ports) != 1 || st.Ports[0].Name != "p1" {
		t.Fatalf("persisted ports after delete = %v", st.Ports)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, Options{Token: "s3cret"})
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"missing", api.PathPorts, "", 401},
		{"wrong", api.PathPorts, "Bearer nope", 401},
		{"prefix of token", api.PathPorts, "Bearer s3cre", 401},
		{"not bearer", api.PathPorts, "Basic s3cret", 401},
		{"right", api.PathPorts, "Bearer s3cret", 200},
		{"scheme case", api.PathPorts, "bearer s3cret", 200},
		{"metrics missing", api.PathMetrics, "", 401},
		{"metrics right", api.PathMetrics, "Bearer s3cret", 200},
		{"health missing", api.PathHealth, "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			code, body := h.do("GET", tt.path, "", hdr...)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, body)
			}
			if code == 401 {
				decodeError(t, body)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, Options{Store: NewStore(filepath.Join(dir, "state.json"))})
	var hr api.HealthResponse
	json.Unmarshal([]byte(h.must(200, "GET", api.PathHealth, "")), &hr)
	if hr.Status != "ok" {
		t.Fatalf("health = %+v", hr)
	}

	h.backend.SetHealth(errors.New("poller 0 stuck"))
	json.Unmarshal([]byte(h.must(503, "GET", api.PathHealth, "")), &hr)
	if hr.Status != "unhealthy" || hr.Error != "poller 0 stuck" {
		t.Fatalf("health = %+v", hr)
	}
	h.backend.SetHealth(nil)

	// A change that cannot be saved is not made, and health says why until
	// a save works again (TestNotSavedNotMade has every operation).
	blocker := filepath.Join(dir, "state.json")
	if err := os.Mkdir(blocker, 0o700); err != nil { // rename over a directory fails, even as root
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blocker, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.must(507, "POST", api.PathPorts, `{"name":"p0"}`)
	json.Unmarshal([]byte(h.must(503, "GET", api.PathHealth, "")), &hr)
	if !strings.Contains(hr.Error, "state not saved") {
		t.Fatalf("health after failed save = %+v", hr)
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	h.must(201, "POST", api.PathPorts, `{"name":"p1"}`)
	h.must(200, "GET", api.PathHealth, "")
	st, err := h.store.Load()
	if err != nil || len(st.Ports) != 1 {
		t.Fatalf("state after recovery = %+v, %v", st, err)
	}

	h.backend.Close()
	h.must(503, "GET", api.PathHealth, "")
	code, body := h.do("POST", api.PathPorts, `{"name":"p2"}`)
	if code != 503 {
		t.Fatalf("add port on a closed switch: %d %s", code, body)
	}
}

func TestStatsAndMetrics(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	err := h.backend.SetPortStats("p0", datapath.PortStats{
		RxPackets: 10, RxBytes: 1000, TxPackets: 7, TxBytes: 700,
		Drops: datapath.Drops{datapath.DropTxRingFull: 3, datapath.DropNoFlow: 2, datapath.DropNoTxQueue: 1, datapath.DropDecTTLZero: 5},
		XDP:   map[string]uint64{"rx": 12, "redirect": 10, "pass_nomatch": 2, "zz_new": 1},
		XSK:   datapath.XSKStats{RxRingFull: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.backend.SetPollers([]datapath.PollerStats{{Queue: 0, CPU: 1, Mode: datapath.PollAdaptive, Window: 200 * time.Microsecond,
		Batches: 5, Packets: 17, BusyNs: 2e9, IdleNs: 5e8, Sleeps: 12, SleepNs: 4e8, Wakeups: 9, EarlyWakeups: 2, HandoffWakeups: 1}})

	var st api.Stats
	if err := json.Unmarshal([]byte(h.must(200, "GET", api.PathStats, "")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Ports) != 2 || st.Ports[0].RxPackets != 10 || len(st.Pollers) != 1 || st.Pollers[0].Packets != 17 || st.UptimeS <= 0 {
		t.Fatalf("stats = %+v", st)
	}
	// The wire form, field by field: a rename in the datapath must not
	// change it.
	wantPort := `{"name":"p0","ofport":1,"rx_packets":10,"rx_bytes":1000,"tx_packets":7,"tx_bytes":700,` +
		`"rx_drops":[{"name":"no_flow","packets":2},{"name":"malformed","packets":0},{"name":"kernel_flow","packets":0},` +
		`{"name":"action_drop","packets":0},{"name":"dec_ttl_zero","packets":5},{"name":"port_gone","packets":0},` +
		`{"name":"too_big","packets":0},{"name":"table_miss","packets":0},{"name":"too_deep","packets":0},` +
		`{"name":"no_tx_queue","packets":1},{"name":"handoff_full","packets":0}],` +
		`"tx_drops":[{"name":"tx_ring_full","packets":3},{"name":"no_frame","packets":0}],` +
		`"xdp":[{"name":"rx","packets":12},{"name":"pass_nomatch","packets":2},{"name":"pass_rule","packets":0},{"name":"redirect","packets":10},` +
		`{"name":"redirect_nosock","packets":0},{"name":"drop","packets":0},{"name":"malformed","packets":0},` +
		`{"name":"forward","packets":0},{"name":"forward_error","packets":0},{"name":"forward_fallback","packets":0},{"name":"zz_new","packets":1}],` +
		`"xsk":{"rx_dropped":0,"rx_invalid_descs":0,"tx_invalid_descs":0,"rx_ring_full":4,"rx_fill_ring_empty_descs":0,"tx_ring_empty_descs":0}}`
	if got := strings.TrimSpace(h.must(200, "GET", api.PathPorts+"/p0/stats", "")); got != wantPort {
		t.Errorf("port stats:\n got %s\nwant %s", got, wantPort)
	}
	var raw struct {
		Pollers []json.RawMessage `json:"pollers"`
	}
	json.Unmarshal([]byte(h.must(200, "GET", api.PathStats, "")), &raw)
	wantPoller := `{"queue":0,"cpu":1,"batches":5,"packets":17,"poll_mode":"adaptive","poll_window_s":0.0002,"busy_s":2,"idle_s":0.5,` +
		`"sleeps":12,"sleep_s":0.4,"wakeups":9,"early_wakeups":2,"handoff_wakeups":1,"handoffs":0,"handoff_lost":0}`
	if len(raw.Pollers) != 1 || string(raw.Pollers[0]) != wantPoller {
		t.Errorf("pollers: got %s, want [%s]", raw.Pollers, wantPoller)
	}

	metrics := h.must(200, "GET", api.PathMetrics, "")
	for _, want := range []string{
		`xvs_port_rx_packets_total{port="p0"} 10`,
		`xvs_port_rx_bytes_total{port="p0"} 1000`,
		`xvs_port_tx_packets_total{port="p0"} 7`,
		`xvs_port_tx_bytes_total{port="p0"} 700`,
		`xvs_port_drops_total{port="p0",reason="tx_ring_full"} 3`,
		`xvs_port_drops_total{port="p0",reason="no_flow"} 2`,
		`xvs_port_drops_total{port="p1",reason="too_big"} 0`,
		`xvs_port_drops_total{port="p0",reason="no_tx_queue"} 1`,
		`xvs_port_drops_total{port="p0",reason="dec_ttl_zero"} 5`,
		`xvs_port_drops_total{port="p0",reason="port_gone"} 0`,
		`xvs_xdp_packets_total{counter="redirect",port="p0"} 10`,
		`xvs_xsk_events_total{counter="rx_ring_full",port="p0"} 4`,
		`xvs_poller_packets_total{cpu="1",queue="0"} 17`,
		`xvs_poller_busy_seconds_total{cpu="1",queue="0"} 2`,
		`xvs_poller_wakeups_total{cpu="1",queue="0"} 9`,
		`xvs_poller_sleeps_total{cpu="1",queue="0"} 12`,
		`xvs_poller_sleep_seconds_total{cpu="1",queue="0"} 0.4`,
		`xvs_poller_early_wakeups_total{cpu="1",queue="0"} 2`,
		`xvs_poller_handoff_wakeups_total{cpu="1",queue="0"} 1`,
		`xvs_flows 0`,
		`xvs_ports 2`,
		`xvs_steering_syncs_total{way="delta"} 0`,
		`xvs_steering_syncs_total{way="full"} 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", metrics)
	}
}
