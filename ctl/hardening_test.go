package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
)

// switchState is what a test compares of the switch before and after a
// request: its ports (with liveness), groups and flows with their IDs.
func switchState(b Backend) string {
	var sb strings.Builder
	for _, p := range b.Ports() {
		fmt.Fprintf(&sb, "port %s %d %s\n", p.Name, p.OFPort, p.Liveness)
	}
	for _, g := range b.Groups() {
		fmt.Fprintf(&sb, "group %s\n", g.Group)
	}
	for _, e := range b.Pipeline().ByID() {
		fmt.Fprintf(&sb, "flow %d %s\n", e.Flow.ID, e.Flow)
	}
	return sb.String()
}

// blockSave makes every save of path fail, as a full disk would: a
// directory that is not empty sits where the file is renamed to. It
// returns a function that lets saves work again (and puts the file back).
func blockSave(t *testing.T, path string) (unblock func()) {
	t.Helper()
	keep := path + ".keep"
	if err := os.Rename(path, keep); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.RemoveAll(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(keep, path); err != nil {
			t.Fatal(err)
		}
	}
}

// Issue 9, item 1: a change that cannot be saved is refused (507
// not_saved, with the reason) and not made: the switch stays as the disk
// has it, for every kind of change.
func TestNotSavedNotMade(t *testing.T) {
	tests := []struct {
		name, method, path, body string
	}{
		{"add port", "POST", api.PathPorts, `{"name":"p9"}`},
		{"delete port", "DELETE", api.PathPorts + "/p1", ""},
		{"set liveness", "PUT", api.PathPorts + "/p0/liveness", `{"liveness":"dead"}`},
		{"add flow", "POST", api.PathFlows, `{"flow":"arp,actions=kernel"}`},
		{"add flows", "POST", api.PathFlows, `[{"flow":"arp,actions=kernel"},{"flow":"priority=3,actions=drop"}]`},
		{"replace flows with none", "PUT", api.PathFlows, `[]`},
		{"delete flows", "POST", api.PathFlowsDelete, `{"match":"udp"}`},
		{"delete every flow", "POST", api.PathFlowsDelete, ``},
		{"delete flow", "DELETE", api.PathFlows + "/1", ""},
		{"add group", "POST", api.PathGroups, `{"group":"group_id=7,type=all,bucket=output:p0"}`},
		{"replace groups", "PUT", api.PathGroups, `[]`},
		{"modify group", "PUT", api.PathGroups + "/1", `{"group":"group_id=1,type=all,bucket=output:p0"}`},
		{"delete group", "DELETE", api.PathGroups + "/1", ""},
		{"bundle", "POST", api.PathBundle, `{"replace":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.addPorts("p0", "p1")
			h.must(201, "POST", api.PathGroups, `{"group":"group_id=1,type=select,bucket=output:p0,bucket=output:p1"}`)
			h.must(201, "POST", api.PathFlows, `[{"flow":"udp,actions=output:p1"},{"flow":"tcp,actions=group:1"}]`)
			before := switchState(h.backend)
			// What the files say (a retry after the disk recovers may
			// write them again, as a new snapshot: the same state in
			// other bytes).
			saved := func() string {
				st, err := NewStore(h.store.Path()).Load()
				if err != nil {
					t.Fatal(err)
				}
				return stateDump(st)
			}
			disk := saved()
			unblock := blockSave(t, h.store.Path())
			code, body := h.do(tt.method, tt.path, tt.body)
			if code != 507 {
				t.Fatalf("status %d, want 507: %s", code, body)
			}
			er := decodeError(t, body)
			if er.Code != api.CodeNotSaved || !strings.Contains(er.Error, "state.json") {
				t.Fatalf("error %+v: want not_saved with the reason", er)
			}
			if after := switchState(h.backend); after != before {
				t.Fatalf("the switch changed although the change was not saved:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			code, body = h.do("GET", api.PathHealth, "")
			if code != 503 || !strings.Contains(body, "state not saved") {
				t.Fatalf("health while saves fail: %d %s", code, body)
			}
			unblock()
			if now := saved(); now != disk {
				t.Fatalf("the saved state changed:\n%s\nwas:\n%s", now, disk)
			}
			// Once the disk takes it again, the same request works.
			if code, body := h.do(tt.method, tt.path, tt.body); code >= 300 {
				t.Fatalf("after the disk recovered: %d %s", code, body)
			}
			h.must(200, "GET", api.PathHealth, "")
			st, err := h.store.Load()
			if err != nil {
				t.Fatal(err)
			}
			if got := stateDump(st); got != switchState(h.backend) {
				t.Fatalf("saved\n%s\nswitch\n%s", got, switchState(h.backend))
			}
		})
	}
}

// stateDump is switchState of what a State says.
func stateDump(st *State) string {
	var sb strings.Builder
	for _, p := range st.Ports {
		l := p.Liveness
		if l == "" {
			l = datapath.LivenessAuto
		}
		fmt.Fprintf(&sb, "port %s %d %s\n", p.Name, p.OFPort, l)
	}
	for _, g := range st.Groups {
		fmt.Fprintf(&sb, "group %s\n", g)
	}
	for _, f := range st.Flows {
		fmt.Fprintf(&sb, "flow %d %s\n", f.ID, f.Flow)
	}
	return sb.String()
}

// Flows that expire while the disk is full are gone (a timeout is kept),
// health says the state is not saved, and the save is made as soon as the
// disk takes it, with no request.
func TestExpirySavedLater(t *testing.T) {
	h := newHarness(t, Options{})
	h.srv.saveRetry = 20 * time.Millisecond
	added := decodeFlowList(t, h.must(201, "POST", api.PathFlows, `[{"flow":"udp,hard_timeout=5,actions=drop"},{"flow":"tcp,actions=drop"}]`))
	unblock := blockSave(t, h.store.Path())
	h.backend.ExpireFlow(added[0].ID)
	h.srv.FlowsExpired([]uint64{added[0].ID})
	if code, body := h.do("GET", api.PathHealth, ""); code != 503 || !strings.Contains(body, "state not saved") {
		t.Fatalf("health after an expiry not saved: %d %s", code, body)
	}
	time.Sleep(100 * time.Millisecond) // retries fail meanwhile
	// Room again: the blocker goes (the old file stays aside, so what
	// is there next is what a retry saved).
	_ = unblock
	if err := os.RemoveAll(h.store.Path()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := h.store.Load()
		code, _ := h.do("GET", api.PathHealth, "")
		if err == nil && len(st.Flows) == 1 && st.Flows[0].ID == added[1].ID && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expiry was never saved: %+v, %v; health %d", st, err, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveTCP serves srv on a loopback TCP port through NewHTTPServer, as
// xvsd does, and returns the address; change adjusts the http.Server.
func serveTCP(t *testing.T, srv *Server, change func(*http.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(srv, slog.New(slog.DiscardHandler))
	if change != nil {
		change(hs)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// Issue 9, item 5: clients that declare a large body and send a byte cost
// what they sent, not what they declared, and are cut off when the body
// does not come; a body over the limit is refused unread.
func TestSlowBodies(t *testing.T) {
	srv, err := NewServer(Options{Backend: ctltest.New(), BodyIdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTCP(t, srv, nil)
	const conns, declared = 24, 30 << 20
	base := heapInUse()
	var cs []net.Conn
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v1/flows HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[", addr, declared)
		cs = append(cs, c)
	}
	time.Sleep(100 * time.Millisecond) // the server reads what came
	if grown := int64(heapInUse()) - int64(base); grown > 64<<20 {
		t.Errorf("%d clients that declared %d MiB and sent a byte grew the heap by %d MiB", conns, declared>>20, grown>>20)
	}
	// Every one is answered (400: the body stopped coming) once the idle
	// timeout passes.
	start := time.Now()
	for i, c := range cs {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(body), "nothing came for 300ms") {
			t.Fatalf("client %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow clients cut off after %v, want about 300ms", d)
	}
	if grown := int64(heapInUse()) - int64(base); grown > 16<<20 {
		t.Errorf("the heap stayed %d MiB larger after the slow clients went", grown>>20)
	}
	// Declared over the limit: refused before a byte of the body is read.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/flows HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, DefaultMaxBodyBytes+1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("declared over the limit: %v %v", resp, err)
	}
}

// Slow clients that declare large bodies hold what they sent, so a large
// body that arrives goes through beside them; when bodies that did arrive
// spend the budget, the next waits, and is told to come back (503 with
// Retry-After) if it waits too long; a small request still fits.
func TestBodyBudget(t *testing.T) {
	srv, err := NewServer(Options{Backend: ctltest.New(), BodyIdleTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTCP(t, srv, nil)
	put := func(body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", "http://"+addr+api.PathFlows, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
	}
	slow := func(declared int, send int) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "PUT /v1/flows HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[%s", addr, declared, strings.Repeat(" ", send))
	}
	for range 8 {
		slow(30<<20, 0)
	}
	time.Sleep(100 * time.Millisecond)
	big := "[" + strings.Repeat(" ", 20<<20) + "]"
	if code, body, _ := put(big); code != 200 {
		t.Fatalf("a 20 MiB body beside 8 slow clients that declared 30 MiB: %d %s", code, body)
	}

	// A budget of 1 MiB and a chunk: one body of 900 KiB that arrived in
	// part (700 KiB, then nothing) holds its 900 KiB.
	srv.bodies = newBudget(1<<20 + bodyChunk)
	srv.budgetWait = 300 * time.Millisecond
	slow(900<<10, 700<<10)
	time.Sleep(200 * time.Millisecond)
	code, body, retry := put("[" + strings.Repeat(" ", 600<<10) + "]")
	if code != 503 || retry == "" || !strings.Contains(body, "large bodies") {
		t.Fatalf("a body beyond the budget: %d %s (Retry-After %q)", code, body, retry)
	}
	if code, body, _ := put(`[{"flow":"arp,actions=kernel"}]`); code != 200 {
		t.Fatalf("a small body while the budget is spent: %d %s", code, body)
	}
}

// The event stream is exempt from the server's read and write timeouts: it
// outlives them and still delivers.
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	srv, err := NewServer(Options{Backend: ctltest.New()})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTCP(t, srv, func(hs *http.Server) {
		hs.ReadTimeout, hs.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+api.PathEvents, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(700 * time.Millisecond) // past both timeouts
	srv.events.publish(api.Event{Type: api.EventGroupsChanged, Request: "POST /v1/groups"})
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: ") {
				got <- sc.Text()
				return
			}
		}
		got <- "stream ended: " + fmt.Sprint(sc.Err())
	}()
	select {
	case line := <-got:
		if line != "event: groups_changed" {
			t.Fatalf("stream: %s", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
}

// Issue 9, item 6: what a web page can send is refused. The page's
// requests: a cross-site POST of text/plain to the loopback API (with the
// Origin a browser adds, or as a rebound name: Host evil.example), and
// /v1/flows/delete, which empties the table.
func TestCrossSiteRefused(t *testing.T) {
	const listen = "127.0.0.1:6640"
	tests := []struct {
		name   string
		token  bool
		method string
		path   string
		body   string
		hdr    []string
		want   int
		code   api.ErrorCode
	}{
		{"rebound host, text/plain", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`,
			[]string{"Host", "evil.example:6640", "Origin", "http://evil.example:6640", "Content-Type", "text/plain"}, 403, api.CodeForbidden},
		{"rebound host, json", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`,
			[]string{"Host", "evil.example:6640"}, 403, api.CodeForbidden},
		{"rebound host, read", false, "GET", api.PathFlows, ``, []string{"Host", "evil.example:6640"}, 403, api.CodeForbidden},
		{"cross-origin delete", false, "POST", api.PathFlowsDelete, ``,
			[]string{"Origin", "http://evil.example", "Content-Type", "text/plain"}, 403, api.CodeForbidden},
		{"cross-origin, json", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`,
			[]string{"Origin", "http://evil.example"}, 403, api.CodeForbidden},
		{"origin null", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`, []string{"Origin", "null"}, 403, api.CodeForbidden},
		{"cross-site fetch", false, "GET", api.PathFlows, ``, []string{"Sec-Fetch-Site", "cross-site"}, 403, api.CodeForbidden},
		{"text/plain", false, "POST", api.PathFlowsDelete, ``, []string{"Content-Type", "text/plain"}, 415, api.CodeUnsupportedType},
		{"form", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, api.CodeUnsupportedType},
		{"no content type", false, "PUT", api.PathFlows, `[]`, []string{"Content-Type", ""}, 415, api.CodeUnsupportedType},
		{"with token, any host", true, "GET", api.PathFlows, ``, []string{"Host", "switch1.example:6640"}, 200, ""},
		{"with token, cross-origin", true, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`, []string{"Origin", "http://evil.example"}, 403, api.CodeForbidden},

		{"loopback address", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`, []string{"Host", listen}, 201, ""},
		{"localhost", false, "GET", api.PathFlows, ``, []string{"Host", "localhost:6640"}, 200, ""},
		{"ipv6 loopback", false, "GET", api.PathFlows, ``, []string{"Host", "[::1]:6640"}, 200, ""},
		{"same origin", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`, []string{"Host", listen, "Origin", "http://" + listen}, 201, ""},
		{"json with charset", false, "POST", api.PathFlows, `{"flow":"arp,actions=drop"}`, []string{"Content-Type", "application/json; charset=utf-8"}, 201, ""},
		{"delete needs no type", false, "DELETE", api.PathFlows + "/1", ``, []string{"Content-Type", ""}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Listen: ListenAddr{Network: "tcp", Address: listen}}
			if tt.token {
				opts.Token = "s3cret"
			}
			h := newHarness(t, opts)
			own := []string{"Host", listen}
			if tt.token {
				own = append(own, "Authorization", "Bearer s3cret")
			}
			if code, body := h.do("POST", api.PathFlows, `{"flow":"udp,actions=drop"}`, own...); code != 201 {
				t.Fatalf("setup: %d %s", code, body)
			}
			before := switchState(h.backend)
			hdr := append(slices.Clone(own), tt.hdr...)
			code, body := h.do(tt.method, tt.path, tt.body, hdr...)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, body)
			}
			if tt.code != "" {
				if er := decodeError(t, body); er.Code != tt.code {
					t.Fatalf("code %s, want %s", er.Code, tt.code)
				}
				if after := switchState(h.backend); after != before {
					t.Fatalf("a refused request changed the switch:\n%s", after)
				}
			}
		})
	}
}

// Issue 9, item 7: requests that could mean two things are refused, and
// the answer says what is wrong.
func TestAmbiguousRequests(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		field, msg               string
	}{
		{"put one flow", "PUT", api.PathFlows, `{"flow":"arp,actions=kernel"}`, "", "takes an array"},
		{"bad escape", "GET", api.PathFlows + "?match=%zz", ``, "", "invalid URL escape"},
		{"semicolon", "GET", api.PathFlows + "?match=tp_dst=4243;x", ``, "", "semicolon"},
		{"match twice", "GET", api.PathFlows + "?match=udp&match=tcp", ``, "match", "given 2 times"},
		{"strict twice", "GET", api.PathFlows + "?match=udp&strict=true&strict=false", ``, "strict", "given 2 times"},
		{"unknown parameter", "GET", api.PathPorts + "?verbose=1", ``, "verbose", "unknown query parameter"},
		{"event id twice", "GET", api.PathEvents + "?last_event_id=1&last_event_id=2", ``, "last_event_id", "given 2 times"},
		{"key twice", "POST", api.PathPorts, `{"name":"a","name":"b"}`, "name", "name given twice"},
		{"key in capitals", "POST", api.PathPorts, `{"NAME":"p9"}`, "NAME", "case-sensitive"},
		{"key in another case", "POST", api.PathFlows, `{"Flow":"arp,actions=kernel"}`, "Flow", "case-sensitive"},
		{"match key twice", "POST", api.PathFlows, `{"match":{"udp":"","tp_dst":"1","tp_dst":"2"},"actions":[]}`, "tp_dst", "match.tp_dst given twice"},
		{"item key twice", "POST", api.PathFlows, `[{"flow":"arp,actions=kernel"},{"flow":"a","flow":"b"}]`, "flow", "given twice"},
		{"bundle key twice", "POST", api.PathBundle, `{"flows":[],"flows":[{"flow":"arp,actions=kernel"}]}`, "flows", "given twice"},
		{"delete filter twice", "POST", api.PathFlowsDelete, `{"match":"udp","match":"tcp"}`, "match", "given twice"},
		{"liveness in capitals", "PUT", api.PathPorts + "/p0/liveness", `{"Liveness":"dead"}`, "Liveness", "case-sensitive"},
		{"put one group", "PUT", api.PathGroups, `{"group":"group_id=1,type=all,bucket=output:p0"}`, "", "takes an array"},
		{"group key twice", "POST", api.PathGroups, `{"group":"group_id=1,type=all,bucket=output:p0","group":"group_id=2,type=all,bucket=output:p0"}`, "group", "given twice"},
		{"bucket key twice", "POST", api.PathGroups, `{"group_id":1,"type":"all","buckets":[{"actions":["output:p0"],"actions":["drop"]}]}`, "actions", "buckets[].actions given twice"},
		{"group key in capitals", "PUT", api.PathGroups + "/1", `{"Group":"group_id=1,type=all,bucket=output:p0"}`, "Group", "case-sensitive"},
		{"bundle key in capitals", "POST", api.PathBundle, `{"Replace":true}`, "Replace", "case-sensitive"},
		{"trace key twice", "POST", api.PathTrace, `{"flow":"in_port=p0,udp","flow":"in_port=p0,tcp"}`, "flow", "given twice"},
		{"trace key in capitals", "POST", api.PathTrace, `{"In_Port":"p0","flow":"udp"}`, "In_Port", "case-sensitive"},
		{"trace query", "POST", api.PathTrace + "?flow=udp", `{"flow":"in_port=p0,udp"}`, "flow", "unknown query parameter"},
		{"groups query", "GET", api.PathGroups + "?group_id=1", ``, "group_id", "unknown query parameter"},
		{"events unknown parameter", "GET", api.PathEvents + "?since=1", ``, "since", "unknown query parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.addPorts("p0")
			h.must(201, "POST", api.PathFlows, `[{"flow":"udp,actions=drop"},{"flow":"tcp,actions=drop"}]`)
			before := switchState(h.backend)
			code, body := h.do(tt.method, tt.path, tt.body)
			if code != 400 {
				t.Fatalf("status %d, want 400: %s", code, body)
			}
			er := decodeError(t, body)
			if er.Field != tt.field || !strings.Contains(er.Error, tt.msg) {
				t.Fatalf("error %+v: want field %q and %q", er, tt.field, tt.msg)
			}
			if after := switchState(h.backend); after != before {
				t.Fatalf("a refused request changed the switch:\n%s", after)
			}
		})
	}
}

// Issue 9, item 9: paths with dot segments, doubled or trailing slashes
// answer 404 with an error body, not a redirect with none.
func TestPathsNotCleaned(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0")
	for _, path := range []string{"/v1/../v1/ports", "/v1/./ports", "/v1//ports", "/v1/ports/", "/v1/ports/../flows", "/../v1/health"} {
		code, body := h.do("GET", path, "")
		if code != 404 {
			t.Errorf("GET %s: %d %q, want 404", path, code, body)
			continue
		}
		if er := decodeError(t, body); er.Code != api.CodeNotFound {
			t.Errorf("GET %s: code %s", path, er.Code)
		}
	}
}

// Issue 9, item 9: a new token takes effect at once, and the old one stops.
func TestSetToken(t *testing.T) {
	h := newHarness(t, Options{Token: "old"})
	if code, _ := h.do("GET", api.PathPorts, "", "Authorization", "Bearer old"); code != 200 {
		t.Fatalf("old token: %d", code)
	}
	h.srv.SetToken("new")
	for _, tc := range []struct {
		tok  string
		want int
	}{{"old", 401}, {"new", 200}} {
		if code, _ := h.do("GET", api.PathPorts, "", "Authorization", "Bearer "+tc.tok); code != tc.want {
			t.Errorf("token %s after the change: %d, want %d", tc.tok, code, tc.want)
		}
	}
}

// checkKeys refuses what encoding/json would guess at, and nothing else.
func TestCheckKeys(t *testing.T) {
	type inner struct {
		A string            `json:"a"`
		M map[string]string `json:"m"`
	}
	type outer struct {
		inner
		B    []inner         `json:"b"`
		Raw  json.RawMessage `json:"raw"`
		Time time.Time       `json:"time"`
		Skip string          `json:"-"`
	}
	tests := []struct {
		in   string
		want string // "" = accepted
	}{
		{`{"a":"x","b":[{"a":"y","m":{"k":"1","l":"2"}}],"raw":{"z":1},"time":"2026-01-01T00:00:00Z"}`, ""},
		{`{"a":"x","a":"y"}`, "a given twice"},
		{`{"A":"x"}`, "case-sensitive"},
		{`{"b":[{"a":"1"},{"m":{"k":"1","k":"2"}}]}`, "b[].m.k given twice"},
		{`{"raw":{"z":1,"z":2}}`, "raw.z given twice"},
		{`{"unknown":1,"unknown":2}`, "unknown given twice"},
		{`{"unknown":1}`, ""},
		{`{"a":`, ""}, // syntax: the decoder's to say
		{`[1,2]`, ""},
	}
	for _, tt := range tests {
		err := checkKeys([]byte(tt.in), reflect.TypeFor[*outer]())
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want %q", tt.in, err, tt.want)
		}
	}
}

// A body's buffer grows about four times at a step, and for a body of
// declared length in steps that end at its length: what it outgrows is
// about a third of the body.
func TestNextBodyRoom(t *testing.T) {
	for _, n := range []int64{1, 64 << 10, 64<<10 + 1, 1 << 20, 22_000_123, 16 << 20} {
		room, garbage := int64(bodyChunk), int64(0)
		if n+1 < room {
			continue // read in the first chunk
		}
		for room < n+1 {
			next := nextBodyRoom(room, n, 32<<20)
			if next <= room || next > 4*room+4 { // (+4: the length divided by four, rounded down)
				t.Fatalf("n=%d: room %d grows to %d", n, room, next)
			}
			garbage += room
			room = next
		}
		if room != n+1 || garbage > (n+1)/3+int64(bodyChunk) {
			t.Errorf("n=%d: ends at %d (want %d), outgrown %d bytes", n, room, n+1, garbage)
		}
	}
	if got := nextBodyRoom(1<<20, -1, 32<<20); got != 4<<20 {
		t.Errorf("no length: 1 MiB grows to %d, want 4 MiB", got)
	}
	if got := nextBodyRoom(16<<20, -1, 32<<20); got != 32<<20+1 {
		t.Errorf("no length: 16 MiB grows to %d, want the limit and a byte", got)
	}
}
