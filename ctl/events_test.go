package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/client"
	"github.com/xvs-project/xvs/datapath"
)

// follow streams events of the server at url into a channel.
func follow(t *testing.T, url string, after int64) <-chan api.Event {
	t.Helper()
	c, err := client.New(url, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan api.Event, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Events(ctx, after, func(e api.Event) error {
			select {
			case ch <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done; c.Close() })
	return ch
}

func next(t *testing.T, ch <-chan api.Event) api.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return api.Event{}
	}
}

func TestEventStream(t *testing.T) {
	h := newHarness(t, Options{})
	hs := httptest.NewServer(h.srv)
	t.Cleanup(hs.Close) // after the streams' cleanups have ended them
	h.addPorts("p0", "p1")
	live := follow(t, hs.URL, 0) // from the first event
	// The stream is open once a published event comes through.
	h.srv.SwitchEvent(datapath.Event{Type: datapath.EventLink, Port: "p0", Up: true, Carrier: false, Time: time.Now()})
	if e := next(t, live); e.Type != api.EventLink || e.Port != "p0" || e.Carrier == nil || *e.Carrier || e.ID != 1 {
		t.Fatalf("first event %+v", e)
	}

	h.must(201, "POST", api.PathFlows, `[{"flow":"udp,actions=output:p1"},{"flow":"tcp,actions=output:p0"}]`)
	e := next(t, live)
	if e.Type != api.EventFlowsChanged || !slices.Equal(e.Flows, []uint64{1, 2}) || e.Request != "POST /v1/flows" {
		t.Fatalf("flows added: %+v", e)
	}
	h.must(200, "DELETE", api.PathFlows+"/1", "")
	if e := next(t, live); e.Type != api.EventFlowsChanged || !slices.Equal(e.Removed, []uint64{1}) {
		t.Fatalf("flow deleted: %+v", e)
	}
	h.must(200, "PUT", api.PathFlows, `[]`)
	if e := next(t, live); e.Type != api.EventFlowsChanged || !e.Replaced {
		t.Fatalf("flows replaced: %+v", e)
	}
	h.srv.SwitchEvent(datapath.Event{Type: datapath.EventFailover, Group: 7, From: 0, To: 1, Time: time.Now()})
	if e := next(t, live); e.Type != api.EventFailover || *e.Group != 7 || *e.From != 0 || *e.To != 1 || e.ID != 5 {
		t.Fatalf("failover: %+v", e)
	}

	// A client that comes back after event 2 gets 3, 4, 5, then what is new.
	resumed := follow(t, hs.URL, 2)
	for _, want := range []uint64{3, 4, 5} {
		if e := next(t, resumed); e.ID != want {
			t.Fatalf("resumed: event %d, want %d", e.ID, want)
		}
	}
	h.srv.SwitchEvent(datapath.Event{Type: datapath.EventFlowsExpired, Flows: []uint64{9}, Time: time.Now()})
	if e := next(t, resumed); e.ID != 6 || e.Type != api.EventFlowsExpired || !slices.Equal(e.Flows, []uint64{9}) {
		t.Fatalf("after resuming: %+v", e)
	}
	next(t, live)

	// One that comes back too late learns how many it missed.
	for range api.EventBacklog {
		h.srv.SwitchEvent(datapath.Event{Type: datapath.EventLiveness, Port: "p1", Live: true, Time: time.Now()})
	}
	late := follow(t, hs.URL, 3)
	if e := next(t, late); e.Type != api.EventLost || e.Missed != 3 || e.ID != 0 {
		t.Fatalf("late: first %+v", e)
	}
	if e := next(t, late); e.ID != 7 {
		t.Fatalf("late: then %+v", e)
	}
}

func TestEventsCutSlowReader(t *testing.T) {
	ev := newEvents()
	_, _, ch, cancel := ev.subscribe(0)
	defer cancel()
	for range subBuffer + 1 {
		ev.publish(api.Event{Type: api.EventGroupsChanged})
	}
	n := 0
	for range ch {
		n++
	}
	if n != subBuffer {
		t.Fatalf("a reader that fell behind got %d events before the cut, want %d", n, subBuffer)
	}
	// A bad Last-Event-ID is a 400.
	h := newHarness(t, Options{})
	code, body := h.do("GET", api.PathEvents, "", "Last-Event-ID", "-1")
	if er := decodeError(t, body); code != 400 || er.Field != "Last-Event-ID" {
		t.Fatalf("bad id: %d %s", code, body)
	}
	var ae *client.APIError
	c, _ := client.New("http://127.0.0.1:1", client.Options{})
	if _, err := c.Events(context.Background(), -1, nil); err == nil || errors.As(err, &ae) {
		t.Fatalf("no server: %v", err)
	}
}

func TestLivenessEndpoint(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("wan1", "wan2")
	h.must(201, "POST", api.PathGroups, `{"group":"group_id=1,type=ff,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=output:wan2"}`)
	body := h.must(200, "PUT", api.PathPorts+"/wan1/liveness", `{"liveness":"dead"}`)
	var info api.PortInfo
	if err := jsonUnmarshal(body, &info); err != nil || info.Live || info.Liveness != api.LivenessDead || !info.Carrier {
		t.Fatalf("set dead: %s", body)
	}
	var g api.GroupStatus
	jsonUnmarshal(h.must(200, "GET", api.PathGroups+"/1", ""), &g)
	if g.Stats[0].Live || !g.Stats[1].Live {
		t.Fatalf("wan1 set dead, buckets %+v", g.Stats)
	}
	h.must(200, "PUT", api.PathPorts+"/wan1/liveness", `{"liveness":"auto"}`)
	jsonUnmarshal(h.must(200, "GET", api.PathGroups+"/1", ""), &g)
	if !g.Stats[0].Live {
		t.Fatalf("wan1 back to auto, buckets %+v", g.Stats)
	}
}

func jsonUnmarshal(body string, v any) error { return json.Unmarshal([]byte(body), v) }
