package ctl

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// The OpenAPI document (api/openapi.json) is checked against the server it
// describes: the same routes, and for requests good and bad on every
// operation, a status the document lists for it and a body its schema
// accepts. Every status the document lists must be answered by one of the
// requests, so the document can neither miss a status nor claim one the
// server never gives.

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("load api/openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// operations returns "METHOD path" for every operation of the document.
func operations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	srv, err := NewServer(Options{Backend: ctltest.New()})
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	err = srv.handler.(*mux.Router).Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a catch-all that answers 405: no operation
		}
		for _, m := range methods {
			routes = append(routes, m+" "+path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(routes)
	if ops := operations(doc); !slices.Equal(routes, ops) {
		t.Fatalf("router and document differ\nrouter:   %q\ndocument: %q", routes, ops)
	}
}

// oaBackend is the fake switch, made to fail on demand.
type oaBackend struct {
	*ctltest.Backend
	mu     sync.Mutex
	broken bool // AddPort, DeletePort and ApplyFlows fail as the kernel might
	expire bool // every delete finds its first flow expired
}

var errKernel = errors.New("kernel said EFAULT")

func (b *oaBackend) failing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.broken
}

func (b *oaBackend) AddPort(spec datapath.PortSpec) (datapath.PortInfo, error) {
	if b.failing() {
		return datapath.PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, errKernel)
	}
	return b.Backend.AddPort(spec)
}

func (b *oaBackend) DeletePort(name string) error {
	if b.failing() {
		return fmt.Errorf("port %s: %w", name, errKernel)
	}
	return b.Backend.DeletePort(name)
}

func (b *oaBackend) ApplyCommit(c datapath.Change, commit datapath.Commit) (datapath.Applied, error) {
	if b.failing() {
		return datapath.Applied{}, fmt.Errorf("sync steering: %w", errKernel)
	}
	b.mu.Lock()
	if b.expire && len(c.Delete) > 0 {
		b.Backend.ExpireFlow(c.Delete[0])
	}
	b.mu.Unlock()
	return b.Backend.ApplyCommit(c, commit)
}

func (b *oaBackend) Trace(in datapath.TraceInput) (datapath.TraceResult, error) {
	if b.failing() {
		return datapath.TraceResult{}, fmt.Errorf("trace: test run: %w", errKernel)
	}
	return b.Backend.Trace(in)
}

// oaEnv is what a request runs against: ports p0 and p1, flow 1
// (udp to p1) and flow 2 (tcp, dropped), and the switch in the state the
// case wants.
type oaEnv struct {
	t       *testing.T
	opts    Options
	backend *oaBackend
	closed  bool // the switch is shut down
}

type oaCase struct {
	name   string
	method string
	path   string
	body   string
	hdr    []string // name, value, ...
	setup  func(e *oaEnv)
	want   int
	// For a stream: what happens on the server before the request (after
	// setup), and how long the client listens.
	before func(s *Server)
	listen time.Duration
}

var (
	withToken = func(e *oaEnv) { e.opts.Token = "s3cret" }
	smallBody = func(e *oaEnv) { e.opts.MaxBodyBytes = 64 }
	broken    = func(e *oaEnv) { e.backend.broken = true }
	closed    = func(e *oaEnv) { e.closed = true }
	// notSaved puts the state file where it cannot be saved: a directory
	// that is not empty sits at its path.
	notSaved = func(e *oaEnv) {
		path := filepath.Join(e.t.TempDir(), "state.json")
		if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
			panic(err)
		}
		e.opts.Store = NewStore(path)
	}
	// absentPort configures p9, whose netdev is missing.
	absentPort = func(e *oaEnv) {
		e.backend.SetNetdevs("p0", "p1")
		if _, err := e.backend.AddPort(datapath.PortSpec{Name: "p9", KeepAbsent: true}); err != nil {
			panic(err)
		}
	}
	// withGroups adds group 1 (select over p0 and p1), group 2 (all,
	// chaining to 1) and a flow sending to group 1.
	withGroups = func(e *oaEnv) {
		var gs []*flowtable.Group
		for _, text := range []string{
			"group_id=1,type=select,bucket=watch_port:p0,actions=output:p0,bucket=output:p1",
			"group_id=2,type=all,bucket=group:1",
		} {
			g, err := flowtable.ParseGroup(text)
			if err != nil {
				panic(err)
			}
			gs = append(gs, g)
		}
		f, _ := flowtable.ParseFlow("priority=5,ip,actions=group:1")
		if _, err := e.backend.Backend.Apply(datapath.Change{AddGroups: gs, Add: []*flowtable.Flow{f}}); err != nil {
			panic(err)
		}
		e.backend.SetDeadPorts("p0")
	}
	both = func(fs ...func(e *oaEnv)) func(e *oaEnv) {
		return func(e *oaEnv) {
			for _, f := range fs {
				if f != nil {
					f(e)
				}
			}
		}
	}
)

func (c *oaCase) run(t *testing.T) *httptest.ResponseRecorder {
	t.Helper()
	e := &oaEnv{t: t, backend: &oaBackend{Backend: ctltest.New()}}
	e.opts.Backend = e.backend
	b := e.backend.Backend
	for _, n := range []string{"p0", "p1"} {
		if _, err := b.AddPort(datapath.PortSpec{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Apply(datapath.Change{Add: mustFlows(t, "udp,actions=output:p1", "priority=7,tcp,actions=drop")}); err != nil {
		t.Fatal(err)
	}
	b.SetPollers([]datapath.PollerStats{{Queue: 0, CPU: 1, Batches: 3, Packets: 9, BusyNs: 1e6, IdleNs: 3e9, Wakeups: 2}})
	b.SetPortStats("p0", datapath.PortStats{RxPackets: 9, RxBytes: 900, Drops: datapath.Drops{datapath.DropNoFlow: 1}, XDP: map[string]uint64{"rx": 9, "redirect": 9}})
	if c.setup != nil {
		c.setup(e)
	}
	srv, err := NewServer(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close) // a failed save is retried until then
	if e.closed {
		b.Close()
	}
	if c.before != nil {
		c.before(srv)
	}
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.listen > 0 {
		ctx, cancel := context.WithTimeout(req.Context(), c.listen)
		defer cancel()
		req = req.WithContext(ctx)
	}
	if e.opts.Token != "" && !slices.Contains(c.hdr, "Authorization") {
		req.Header.Set("Authorization", "Bearer "+e.opts.Token)
	}
	if c.method == "POST" || c.method == "PUT" {
		req.Header.Set("Content-Type", "application/json") // as every client must
	}
	for i := 0; i+1 < len(c.hdr); i += 2 {
		req.Header.Set(c.hdr[i], c.hdr[i+1])
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func mustFlows(t *testing.T, texts ...string) []*flowtable.Flow {
	t.Helper()
	var out []*flowtable.Flow
	for _, text := range texts {
		f, err := flowtable.ParseFlow(text)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// oaCases are requests on every operation: what users send right and
// wrong, and what the switch may answer.
var oaCases = []oaCase{
	{name: "list ports", method: "GET", path: "/v1/ports", want: 200},
	{name: "list ports no token", method: "GET", path: "/v1/ports", setup: withToken, hdr: []string{"Authorization", "Bearer wrong"}, want: 401},

	{name: "add port", method: "POST", path: "/v1/ports", body: `{"name":"p9","mode":"generic"}`, want: 201},
	{name: "add port, name only", method: "POST", path: "/v1/ports", body: `{"name":"p9"}`, want: 201},
	{name: "add port bad mode", method: "POST", path: "/v1/ports", body: `{"name":"p9","mode":"fast"}`, want: 400},
	{name: "add port unknown field", method: "POST", path: "/v1/ports", body: `{"name":"p9","speed":1}`, want: 400},
	{name: "add port name twice", method: "POST", path: "/v1/ports", body: `{"name":"p8","name":"p9"}`, want: 400},
	{name: "add port name in capitals", method: "POST", path: "/v1/ports", body: `{"NAME":"p9"}`, want: 400},
	{name: "add port no token", method: "POST", path: "/v1/ports", body: `{"name":"p9"}`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "add port no netdev", method: "POST", path: "/v1/ports", body: `{"name":"p9"}`, setup: func(e *oaEnv) { e.backend.SetNetdevs("p0", "p1") }, want: 404},
	{name: "add port twice", method: "POST", path: "/v1/ports", body: `{"name":"p0"}`, want: 409},
	{name: "add port too large", method: "POST", path: "/v1/ports", body: `{"name":"` + strings.Repeat("p", 100) + `"}`, setup: smallBody, want: 413},
	{name: "add port kernel fails", method: "POST", path: "/v1/ports", body: `{"name":"p9"}`, setup: broken, want: 500},
	{name: "add port closed", method: "POST", path: "/v1/ports", body: `{"name":"p9"}`, setup: closed, want: 503},

	{name: "get port", method: "GET", path: "/v1/ports/p0", want: 200},
	{name: "get absent port", method: "GET", path: "/v1/ports/p9", setup: absentPort, want: 200},
	{name: "get port no token", method: "GET", path: "/v1/ports/p0", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "get missing port", method: "GET", path: "/v1/ports/nope", want: 404},
	{name: "get port closed", method: "GET", path: "/v1/ports/p0", setup: closed, want: 503},

	{name: "delete port", method: "DELETE", path: "/v1/ports/p0", want: 204},
	{name: "delete port no token", method: "DELETE", path: "/v1/ports/p0", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "delete missing port", method: "DELETE", path: "/v1/ports/nope", want: 404},
	{name: "delete port kernel fails", method: "DELETE", path: "/v1/ports/p0", setup: broken, want: 500},
	{name: "delete port closed", method: "DELETE", path: "/v1/ports/p0", setup: closed, want: 503},

	{name: "port stats", method: "GET", path: "/v1/ports/p0/stats", want: 200},
	{name: "port stats no token", method: "GET", path: "/v1/ports/p0/stats", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "missing port stats", method: "GET", path: "/v1/ports/nope/stats", want: 404},
	{name: "port stats closed", method: "GET", path: "/v1/ports/p0/stats", setup: closed, want: 503},

	{name: "list flows", method: "GET", path: "/v1/flows", want: 200},
	{name: "list flows as text", method: "GET", path: "/v1/flows", hdr: []string{"Accept", "text/plain"}, want: 200},
	{name: "list flows filtered", method: "GET", path: "/v1/flows?match=udp&strict=true", want: 200},
	{name: "list flows bad filter", method: "GET", path: "/v1/flows?match=tp_dst=1", want: 400},
	{name: "list flows bad escape", method: "GET", path: "/v1/flows?match=%zz", want: 400},
	{name: "list flows semicolon", method: "GET", path: "/v1/flows?match=tp_dst=4243;x", want: 400},
	{name: "list flows filter twice", method: "GET", path: "/v1/flows?match=udp&match=tcp", want: 400},
	{name: "list flows unknown parameter", method: "GET", path: "/v1/flows?limit=3", want: 400},
	{name: "list flows no token", method: "GET", path: "/v1/flows", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},

	{name: "add flow text", method: "POST", path: "/v1/flows", body: `{"flow":"priority=9,udp,tp_dst=53,actions=output:p0"}`, want: 201},
	{name: "add flow structured", method: "POST", path: "/v1/flows", body: `{"priority":9,"cookie":"0x2a","hard_timeout_s":60,"match":{"udp":"","tp_dst":"53"},"actions":["mod_tp_dst:54","output:p0"]}`, want: 201},
	{name: "add flows", method: "POST", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel"},{"actions":[]}]`, want: 201},
	{name: "add flows minimal", method: "POST", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel"}]`, hdr: []string{"Prefer", "return=minimal"}, want: 201},
	{name: "add flow bad syntax", method: "POST", path: "/v1/flows", body: `{"flow":"tp_dst=1,actions=drop"}`, want: 400},
	{name: "add flows bad item", method: "POST", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel"},{"flow":"udp,tp_src=x,actions=drop"}]`, want: 400},
	{name: "add flow no token", method: "POST", path: "/v1/flows", body: `{"flow":"arp,actions=kernel"}`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "add flow missing port", method: "POST", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel"},{"flow":"in_port=p7,actions=drop"}]`, want: 404},
	{name: "add flow too many masks", method: "POST", path: "/v1/flows", body: `{"flow":"udp,tp_dst=9,actions=drop"}`, setup: func(e *oaEnv) { e.backend.SetMaxMasks(1) }, want: 409},
	{name: "add flow too many flows", method: "POST", path: "/v1/flows", body: `{"flow":"udp,tp_dst=9,actions=drop"}`, setup: func(e *oaEnv) { e.backend.SetMaxRules(2) }, want: 409},
	{name: "add flow too large", method: "POST", path: "/v1/flows", body: `{"flow":"` + strings.Repeat(" ", 80) + `arp,actions=kernel"}`, setup: smallBody, want: 413},
	{name: "add flow kernel fails", method: "POST", path: "/v1/flows", body: `{"flow":"arp,actions=kernel"}`, setup: broken, want: 500},
	{name: "add flow closed", method: "POST", path: "/v1/flows", body: `{"flow":"arp,actions=kernel"}`, setup: closed, want: 503},

	{name: "replace flows", method: "PUT", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel"}]`, want: 200},
	{name: "replace flows with none", method: "PUT", path: "/v1/flows", body: `[]`, want: 200},
	{name: "replace flows minimal", method: "PUT", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel"}]`, hdr: []string{"Prefer", "return=minimal"}, want: 200},
	{name: "replace flows both forms", method: "PUT", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel","actions":[]}]`, want: 400},
	{name: "replace flows with one object", method: "PUT", path: "/v1/flows", body: `{"flow":"arp,actions=kernel"}`, want: 400},
	{name: "replace flows no token", method: "PUT", path: "/v1/flows", body: `[]`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "replace flows missing port", method: "PUT", path: "/v1/flows", body: `[{"flow":"actions=output:p7"}]`, want: 404},
	{name: "replace flows too many masks", method: "PUT", path: "/v1/flows", body: `[{"flow":"udp,actions=drop"},{"flow":"tcp,tp_dst=1,actions=drop"}]`, setup: func(e *oaEnv) { e.backend.SetMaxMasks(1) }, want: 409},
	{name: "replace flows too large", method: "PUT", path: "/v1/flows", body: `[{"flow":"arp,actions=kernel"},{"flow":"arp,actions=kernel"},{"flow":"arp,actions=kernel"}]`, setup: smallBody, want: 413},
	{name: "replace flows kernel fails", method: "PUT", path: "/v1/flows", body: `[]`, setup: broken, want: 500},
	{name: "replace flows closed", method: "PUT", path: "/v1/flows", body: `[]`, setup: closed, want: 503},

	{name: "delete flows", method: "POST", path: "/v1/flows/delete", body: `{"match":"udp"}`, want: 200},
	{name: "delete all flows", method: "POST", path: "/v1/flows/delete", want: 200},
	{name: "delete flows strict", method: "POST", path: "/v1/flows/delete", body: `{"match":"priority=7,tcp","strict":true}`, want: 200},
	{name: "delete flows bad filter", method: "POST", path: "/v1/flows/delete", body: `{"match":"udp,actions=drop"}`, want: 400},
	{name: "delete flows no token", method: "POST", path: "/v1/flows/delete", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "delete flows that keep expiring", method: "POST", path: "/v1/flows/delete", body: `{"match":"ip"}`, setup: func(e *oaEnv) {
		for i := range 8 {
			f, _ := flowtable.ParseFlow(fmt.Sprintf("priority=%d,ip,actions=drop", i))
			e.backend.Backend.Apply(datapath.Change{Add: []*flowtable.Flow{f}})
		}
		e.backend.expire = true
	}, want: 404},
	{name: "delete flows too large", method: "POST", path: "/v1/flows/delete", body: `{"match":"` + strings.Repeat(" ", 80) + `udp"}`, setup: smallBody, want: 413},
	{name: "delete flows kernel fails", method: "POST", path: "/v1/flows/delete", body: `{"match":"udp"}`, setup: broken, want: 500},
	{name: "delete flows closed", method: "POST", path: "/v1/flows/delete", setup: closed, want: 503},

	{name: "get flow", method: "GET", path: "/v1/flows/1", want: 200},
	{name: "get flow bad id", method: "GET", path: "/v1/flows/one", want: 400},
	{name: "get flow no token", method: "GET", path: "/v1/flows/1", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "get missing flow", method: "GET", path: "/v1/flows/99", want: 404},
	{name: "get flow closed", method: "GET", path: "/v1/flows/1", setup: closed, want: 503},

	{name: "delete flow", method: "DELETE", path: "/v1/flows/2", want: 200},
	{name: "delete flow id 0", method: "DELETE", path: "/v1/flows/0", want: 400},
	{name: "delete flow no token", method: "DELETE", path: "/v1/flows/2", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "delete missing flow", method: "DELETE", path: "/v1/flows/99", want: 404},
	{name: "delete flow kernel fails", method: "DELETE", path: "/v1/flows/2", setup: broken, want: 500},
	{name: "delete flow closed", method: "DELETE", path: "/v1/flows/2", setup: closed, want: 503},

	{name: "list groups", method: "GET", path: "/v1/groups", setup: withGroups, want: 200},
	{name: "list groups no token", method: "GET", path: "/v1/groups", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},

	{name: "add group text", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=ff,bucket=watch_port:p0,actions=output:p0,bucket=watch_port:p1,actions=output:p1"}`, want: 201},
	{name: "add groups structured", method: "POST", path: "/v1/groups", body: `[{"group_id":7,"type":"select","buckets":[{"weight":3,"actions":["output:p0"]},{"actions":["mod_dl_dst:02:00:00:00:00:01","output:p1"]}]},{"group":"group_id=8,type=indirect,bucket=group:7"}]`, want: 201},
	{name: "add group bad syntax", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=all,bucket=output:p0,mod_tp_dst:1"}`, want: 400},
	{name: "add group both forms", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=all,bucket=output:p0","group_id":7}`, want: 400},
	{name: "add group no token", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=all,bucket=output:p0"}`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "add group missing port", method: "POST", path: "/v1/groups", body: `[{"group":"group_id=7,type=all,bucket=output:p0"},{"group":"group_id=8,type=ff,bucket=watch_port:p9,actions=output:p0"}]`, want: 404},
	{name: "add group chained to a missing one", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=indirect,bucket=group:9"}`, want: 404},
	{name: "add group that exists", method: "POST", path: "/v1/groups", body: `{"group":"group_id=1,type=all,bucket=output:p0"}`, setup: withGroups, want: 409},
	{name: "add group too large", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=all,bucket=output:p0` + strings.Repeat(",bucket=output:p1", 8) + `"}`, setup: smallBody, want: 413},
	{name: "add group kernel fails", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=all,bucket=output:p0"}`, setup: broken, want: 500},
	{name: "add group closed", method: "POST", path: "/v1/groups", body: `{"group":"group_id=7,type=all,bucket=output:p0"}`, setup: closed, want: 503},

	{name: "replace groups", method: "PUT", path: "/v1/groups", body: `[{"group":"group_id=3,type=all,bucket=output:p0"}]`, setup: withGroups, want: 200},
	{name: "replace groups with none", method: "PUT", path: "/v1/groups", body: `[]`, setup: withGroups, want: 200},
	{name: "replace groups not an array", method: "PUT", path: "/v1/groups", body: `{"group":"group_id=3,type=all,bucket=output:p0"}`, want: 400},
	{name: "replace groups no token", method: "PUT", path: "/v1/groups", body: `[]`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "replace groups missing port", method: "PUT", path: "/v1/groups", body: `[{"group":"group_id=3,type=all,bucket=output:p9"}]`, want: 404},
	{name: "replace groups twice the same", method: "PUT", path: "/v1/groups", body: `[{"group":"group_id=3,type=all,bucket=output:p0"},{"group":"group_id=3,type=all,bucket=output:p1"}]`, want: 409},
	{name: "replace groups too large", method: "PUT", path: "/v1/groups", body: `[{"group":"group_id=3,type=all,bucket=output:p0"},{"group":"group_id=4,type=all,bucket=output:p0"}]`, setup: smallBody, want: 413},
	{name: "replace groups kernel fails", method: "PUT", path: "/v1/groups", body: `[]`, setup: broken, want: 500},
	{name: "replace groups closed", method: "PUT", path: "/v1/groups", body: `[]`, setup: closed, want: 503},

	{name: "get group", method: "GET", path: "/v1/groups/1", setup: withGroups, want: 200},
	{name: "get group bad id", method: "GET", path: "/v1/groups/one", want: 400},
	{name: "get group no token", method: "GET", path: "/v1/groups/1", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "get missing group", method: "GET", path: "/v1/groups/9", want: 404},
	{name: "get group closed", method: "GET", path: "/v1/groups/1", setup: both(withGroups, closed), want: 503},

	{name: "modify group", method: "PUT", path: "/v1/groups/1", body: `{"type":"indirect","buckets":[{"actions":["output:p1"]}]}`, setup: withGroups, want: 200},
	{name: "modify group text", method: "PUT", path: "/v1/groups/1", body: `{"group":"group_id=1,type=all,bucket=output:p0,bucket=output:p1"}`, setup: withGroups, want: 200},
	{name: "modify group other id", method: "PUT", path: "/v1/groups/1", body: `{"group":"group_id=2,type=all,bucket=output:p0"}`, setup: withGroups, want: 400},
	{name: "modify group into a loop", method: "PUT", path: "/v1/groups/1", body: `{"group":"group_id=1,type=indirect,bucket=group:2"}`, setup: withGroups, want: 400},
	{name: "modify group no token", method: "PUT", path: "/v1/groups/1", body: `{}`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "modify missing group", method: "PUT", path: "/v1/groups/9", body: `{"type":"all","buckets":[{"actions":["output:p1"]}]}`, want: 404},
	{name: "modify group too large", method: "PUT", path: "/v1/groups/1", body: `{"group":"group_id=1,type=all,bucket=output:p0` + strings.Repeat(",bucket=output:p1", 8) + `"}`, setup: both(withGroups, smallBody), want: 413},
	{name: "modify group kernel fails", method: "PUT", path: "/v1/groups/1", body: `{"group":"group_id=1,type=all,bucket=output:p0"}`, setup: both(withGroups, broken), want: 500},
	{name: "modify group closed", method: "PUT", path: "/v1/groups/1", body: `{"group":"group_id=1,type=all,bucket=output:p0"}`, setup: both(withGroups, closed), want: 503},

	{name: "delete group", method: "DELETE", path: "/v1/groups/2", setup: withGroups, want: 200},
	{name: "delete group bad id", method: "DELETE", path: "/v1/groups/x", want: 400},
	{name: "delete group no token", method: "DELETE", path: "/v1/groups/2", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "delete missing group", method: "DELETE", path: "/v1/groups/9", want: 404},
	{name: "delete a chained group", method: "DELETE", path: "/v1/groups/1", setup: withGroups, want: 409},
	{name: "delete group kernel fails", method: "DELETE", path: "/v1/groups/2", setup: both(withGroups, broken), want: 500},
	{name: "delete group closed", method: "DELETE", path: "/v1/groups/2", setup: both(withGroups, closed), want: 503},

	{name: "bundle", method: "POST", path: "/v1/bundle", body: `{"groups":[{"group":"group_id=5,type=select,bucket=output:p0,bucket=output:p1"}],"flows":[{"flow":"tcp,tp_dst=80,actions=group:5"}]}`, want: 201},
	{name: "bundle replace", method: "POST", path: "/v1/bundle", body: `{"replace":true,"groups":[{"group":"group_id=5,type=all,bucket=output:p0"}],"flows":[{"flow":"ip,actions=group:5"}]}`, setup: withGroups, want: 200},
	{name: "bundle bad flow", method: "POST", path: "/v1/bundle", body: `{"flows":[{"flow":"ip,actions=group:x"}]}`, want: 400},
	{name: "bundle no token", method: "POST", path: "/v1/bundle", body: `{}`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "bundle flow to a missing group", method: "POST", path: "/v1/bundle", body: `{"flows":[{"flow":"ip,actions=group:5"}]}`, want: 404},
	{name: "bundle group that exists", method: "POST", path: "/v1/bundle", body: `{"groups":[{"group":"group_id=1,type=all,bucket=output:p0"}]}`, setup: withGroups, want: 409},
	{name: "bundle too large", method: "POST", path: "/v1/bundle", body: `{"flows":[{"flow":"arp,actions=kernel"},{"flow":"arp,actions=kernel"}]}`, setup: smallBody, want: 413},
	{name: "bundle kernel fails", method: "POST", path: "/v1/bundle", body: `{"replace":true}`, setup: broken, want: 500},
	{name: "bundle closed", method: "POST", path: "/v1/bundle", body: `{"replace":true}`, setup: closed, want: 503},

	{name: "tables", method: "GET", path: "/v1/tables", want: 200},
	{name: "tables no token", method: "GET", path: "/v1/tables", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},

	{name: "trace flow", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p0,udp,nw_dst=10.0.0.2,tp_dst=53"}`, want: 200},
	{name: "trace through a group", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p1,icmp,icmp_type=8"}`, setup: withGroups, want: 200},
	{name: "trace packet", method: "POST", path: "/v1/trace", body: `{"in_port":"p1","queue":0,"packet":"ffffffffffff02000000000188b5000102030405060708090a0b0c0d0e0f"}`, want: 200},
	{name: "trace bad field", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p0,udp,tp_dsst=53"}`, want: 400},
	{name: "trace without a port", method: "POST", path: "/v1/trace", body: `{"flow":"udp"}`, want: 400},
	{name: "trace no token", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p0,udp"}`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "trace missing port", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p9,udp"}`, want: 404},
	{name: "trace too large", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p0,udp` + strings.Repeat(" ", 80) + `"}`, setup: smallBody, want: 413},
	{name: "trace kernel fails", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p0,udp"}`, setup: broken, want: 500},
	{name: "trace closed", method: "POST", path: "/v1/trace", body: `{"flow":"in_port=p0,udp"}`, setup: closed, want: 503},

	{name: "set liveness", method: "PUT", path: "/v1/ports/p0/liveness", body: `{"liveness":"dead"}`, want: 200},
	{name: "set liveness auto", method: "PUT", path: "/v1/ports/p0/liveness", body: `{"liveness":"auto"}`, want: 200},
	{name: "set liveness bad", method: "PUT", path: "/v1/ports/p0/liveness", body: `{"liveness":"maybe"}`, want: 400},
	{name: "set liveness no token", method: "PUT", path: "/v1/ports/p0/liveness", body: `{"liveness":"dead"}`, setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "set liveness missing port", method: "PUT", path: "/v1/ports/nope/liveness", body: `{"liveness":"dead"}`, want: 404},
	{name: "set liveness too large", method: "PUT", path: "/v1/ports/p0/liveness", body: `{"liveness":"` + strings.Repeat("d", 80) + `"}`, setup: smallBody, want: 413},
	{name: "set liveness closed", method: "PUT", path: "/v1/ports/p0/liveness", body: `{"liveness":"dead"}`, setup: closed, want: 503},

	{name: "events from the start", method: "GET", path: "/v1/events", hdr: []string{"Last-Event-ID", "0"}, listen: 50 * time.Millisecond, before: func(s *Server) {
		up, one := true, uint32(1)
		s.events.publish(api.Event{Type: api.EventLink, Port: "p0", LinkUp: &up, Carrier: &up})
		s.events.publish(api.Event{Type: api.EventFailover, Group: &one, From: new(int), To: &[]int{1}[0]})
		s.events.publish(api.Event{Type: api.EventFlowsChanged, Flows: []uint64{3}, Request: "POST /v1/flows"})
	}, want: 200},
	{name: "events missed", method: "GET", path: "/v1/events?last_event_id=1", listen: 50 * time.Millisecond, before: func(s *Server) {
		for range api.EventBacklog + 5 {
			s.events.publish(api.Event{Type: api.EventGroupsChanged, Request: "POST /v1/groups"})
		}
	}, want: 200},
	{name: "events bad id", method: "GET", path: "/v1/events", hdr: []string{"Last-Event-ID", "x"}, want: 400},
	{name: "events no token", method: "GET", path: "/v1/events", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},

	{name: "stats", method: "GET", path: "/v1/stats", want: 200},
	{name: "frames", method: "GET", path: "/v1/frames", setup: func(e *oaEnv) {
		e.backend.SetFrames([]datapath.FrameStats{{Queue: 0, Shared: true, Total: 64, Free: 32, Fill: 32}})
	}, want: 200},
	{name: "frames closed", method: "GET", path: "/v1/frames", setup: closed, want: 503},
	{name: "frames no token", method: "GET", path: "/v1/frames", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "stats no token", method: "GET", path: "/v1/stats", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},

	{name: "health", method: "GET", path: "/v1/health", want: 200},
	{name: "health no token", method: "GET", path: "/v1/health", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
	{name: "health unhealthy", method: "GET", path: "/v1/health", setup: func(e *oaEnv) { e.backend.SetHealth(errors.New("poller 0 stuck")) }, want: 503},

	{name: "openapi", method: "GET", path: "/v1/openapi.json", want: 200},
	{name: "openapi no token", method: "GET", path: "/v1/openapi.json", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},

	{name: "metrics", method: "GET", path: "/metrics", want: 200},
	{name: "metrics no token", method: "GET", path: "/metrics", setup: withToken, hdr: []string{"Authorization", ""}, want: 401},
}

// oaOther are requests no operation takes: their answers are error bodies
// with the code the description promises.
var oaOther = []struct {
	method, path string
	code         api.ErrorCode
}{
	{"GET", "/v2/ports", api.CodeNotFound},
	{"GET", "/v1/ports/p0/queues", api.CodeNotFound},
	{"PATCH", "/v1/ports", api.CodeMethodNotAllowed},
	{"GET", "/v1/flows/delete", api.CodeMethodNotAllowed},
	{"POST", "/v1/stats", api.CodeMethodNotAllowed},
	{"HEAD", "/v1/health", api.CodeMethodNotAllowed},
}

// eventSchema is the document's Event, which TestOpenAPIAnswers sets.
var eventSchema *openapi3.Schema

// derivedCases are, for every operation, the answers any of them may give:
// 403 for a request from a web page of another origin, 415 for a write
// without a JSON body type, and 507 for a change that cannot be saved.
// Each is the operation's first successful case, changed so.
func derivedCases() []oaCase {
	saves := map[string]bool{
		"POST /v1/ports": true, "DELETE /v1/ports/p0": true, "PUT /v1/ports/p0/liveness": true,
		"POST /v1/flows": true, "PUT /v1/flows": true, "POST /v1/flows/delete": true, "DELETE /v1/flows/2": true,
		"POST /v1/groups": true, "PUT /v1/groups": true, "PUT /v1/groups/1": true, "DELETE /v1/groups/2": true,
		"POST /v1/bundle": true,
	}
	seen := map[string]bool{}
	var out []oaCase
	for _, c := range oaCases {
		op := c.method + " " + strings.SplitN(c.path, "?", 2)[0]
		if c.want >= 300 || seen[op] {
			continue
		}
		seen[op] = true
		x := c
		x.name, x.want = c.name+" cross-origin", 403
		x.hdr = append(slices.Clone(c.hdr), "Origin", "http://evil.example")
		out = append(out, x)
		if c.method == "POST" || c.method == "PUT" {
			x := c
			x.name, x.want = c.name+" as text/plain", 415
			x.hdr = append(slices.Clone(c.hdr), "Content-Type", "text/plain")
			out = append(out, x)
		}
		if saves[op] {
			x := c
			x.name, x.want = c.name+" not saved", 507
			x.setup = both(c.setup, notSaved)
			out = append(out, x)
		}
	}
	return out
}

func TestOpenAPIAnswers(t *testing.T) {
	doc := loadOpenAPI(t)
	eventSchema = doc.Components.Schemas["Event"].Value
	// Paths without parameters first: /v1/flows/delete is not a flow ID.
	paths := doc.Paths.Keys()
	slices.SortFunc(paths, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(a, "{"), strings.Count(b, "{")), cmp.Compare(a, b))
	})
	router := mux.NewRouter()
	for _, path := range paths {
		router.NewRoute().Path(path).Name(path)
	}
	answered := map[string]bool{} // "METHOD path status"
	for _, c := range append(slices.Clone(oaCases), derivedCases()...) {
		t.Run(c.name, func(t *testing.T) {
			var m mux.RouteMatch
			if !router.Match(httptest.NewRequest(c.method, c.path, nil), &m) {
				t.Fatalf("%s %s: no path of the document", c.method, c.path)
			}
			path := m.Route.GetName()
			op := doc.Paths.Value(path).GetOperation(c.method)
			if op == nil {
				t.Fatalf("%s %s: the document has no such operation", c.method, path)
			}
			rec := c.run(t)
			if rec.Code != c.want {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, rec.Code, c.want, rec.Body)
			}
			answered[fmt.Sprintf("%s %s %d", c.method, path, rec.Code)] = true
			resp := op.Responses.Status(rec.Code)
			if resp == nil {
				t.Fatalf("%s %s answered %d, which the document does not list: %s", c.method, path, rec.Code, rec.Body)
			}
			checkBody(t, resp.Value.Content, rec)
			if rec.Code < 300 && c.body != "" && op.RequestBody != nil {
				// What the server takes, the document allows.
				mt := op.RequestBody.Value.Content.Get("application/json")
				if err := visit(mt.Schema.Value, []byte(c.body)); err != nil {
					t.Errorf("request body %s, accepted by the server, does not match the document: %v", c.body, err)
				}
			}
		})
	}
	for _, op := range operations(doc) {
		method, path, _ := strings.Cut(op, " ")
		for status := range doc.Paths.Value(path).GetOperation(method).Responses.Map() {
			if !answered[op+" "+status] {
				t.Errorf("%s: the document lists %s, which no request of the test got", op, status)
			}
		}
	}

	errSchema := doc.Components.Schemas["ErrorResponse"].Value
	for _, o := range oaOther {
		rec := (&oaCase{method: o.method, path: o.path}).run(t)
		if rec.Code != o.code.Status() {
			t.Errorf("%s %s: status %d, want %d", o.method, o.path, rec.Code, o.code.Status())
			continue
		}
		if o.method == "HEAD" {
			continue // no body
		}
		if err := visit(errSchema, rec.Body.Bytes()); err != nil {
			t.Errorf("%s %s: body %s: %v", o.method, o.path, rec.Body, err)
		}
		var er api.ErrorResponse
		if json.Unmarshal(rec.Body.Bytes(), &er); er.Code != o.code {
			t.Errorf("%s %s: code %q, want %q", o.method, o.path, er.Code, o.code)
		}
	}
}

// checkBody checks the answer's body against the content the document
// gives for its status: the media type, and the body against its schema.
func checkBody(t *testing.T, content openapi3.Content, rec *httptest.ResponseRecorder) {
	t.Helper()
	if len(content) == 0 {
		if rec.Body.Len() != 0 {
			t.Errorf("status %d has no content in the document, the server sent %q", rec.Code, rec.Body)
		}
		return
	}
	ct, _, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", rec.Header().Get("Content-Type"), err)
	}
	mt := content.Get(ct)
	if mt == nil {
		t.Fatalf("status %d: Content-Type %s is not in the document", rec.Code, ct)
	}
	if ct == "text/event-stream" {
		// Every event's data is an Event.
		n := 0
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				n++
				if err := visit(eventSchema, []byte(data)); err != nil {
					t.Errorf("event %s does not match the document: %v", data, err)
				}
			}
		}
		if n == 0 {
			t.Errorf("no event in the stream: %q", rec.Body)
		}
		return
	}
	if ct != "application/json" {
		return
	}
	if err := visit(mt.Schema.Value, rec.Body.Bytes()); err != nil {
		t.Errorf("status %d: body does not match the document: %v\n%s", rec.Code, err, rec.Body)
	}
}

func visit(schema *openapi3.Schema, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return schema.VisitJSON(v, openapi3.MultiErrors(), openapi3.EnableFormatValidation())
}

// The document is what the server serves, byte for byte.
func TestOpenAPIServed(t *testing.T) {
	rec := (&oaCase{method: "GET", path: api.PathOpenAPI}).run(t)
	if rec.Code != http.StatusOK || rec.Body.String() != string(api.OpenAPI) {
		t.Fatalf("GET %s: %d, %d bytes; want the %d bytes of api/openapi.json", api.PathOpenAPI, rec.Code, rec.Body.Len(), len(api.OpenAPI))
	}
}

// The document's error codes are api's.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	var inDoc []string
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		inDoc = append(inDoc, v.(string))
	}
	var kinds []string
	for _, k := range api.ErrorKinds {
		kinds = append(kinds, string(k.Code))
	}
	slices.Sort(inDoc)
	slices.Sort(kinds)
	if !slices.Equal(inDoc, kinds) {
		t.Fatalf("ErrorCode enum %q, api.ErrorKinds %q", inDoc, kinds)
	}
}
