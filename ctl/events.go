package ctl

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
)

// events is the server's event log: a bounded backlog of the latest
// events, and the streams following it. Publishing never blocks: a stream
// that falls more than its buffer behind is cut off (its client reconnects
// with Last-Event-ID and gets what is still in the backlog).
type events struct {
	mu      sync.Mutex
	nextID  uint64
	backlog []api.Event // ring of api.EventBacklog; oldest at start (mod len)
	start   int
	subs    map[chan api.Event]struct{}
}

func newEvents() *events {
	return &events{nextID: 1, subs: make(map[chan api.Event]struct{})}
}

// streamWriteTimeout bounds each write of an event stream.
const streamWriteTimeout = 30 * time.Second

// subBuffer is how many events a stream may be behind before it is cut.
const subBuffer = 1024

// publish adds e with the next ID and hands it to every stream.
func (ev *events) publish(e api.Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	e.ID = ev.nextID
	ev.nextID++
	if len(ev.backlog) < api.EventBacklog {
		ev.backlog = append(ev.backlog, e)
	} else {
		ev.backlog[ev.start] = e
		ev.start = (ev.start + 1) % len(ev.backlog)
	}
	for ch := range ev.subs {
		select {
		case ch <- e:
		default:
			delete(ev.subs, ch)
			close(ch)
		}
	}
}

// subscribe returns the backlog after event ID last, how many events after
// last are gone from it, and a channel of the events to come (closed if
// the stream falls too far behind). cancel ends the subscription.
func (ev *events) subscribe(last uint64) (past []api.Event, missed uint64, ch chan api.Event, cancel func()) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := len(ev.backlog)
	oldest := ev.nextID // the ID of the oldest event kept
	if n > 0 {
		oldest = ev.backlog[ev.start].ID
	}
	for i := range n {
		if e := ev.backlog[(ev.start+i)%n]; e.ID > last {
			past = append(past, e)
		}
	}
	if last+1 < oldest {
		missed = oldest - last - 1
	}
	ch = make(chan api.Event, subBuffer)
	ev.subs[ch] = struct{}{}
	return past, missed, ch, func() {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		if _, ok := ev.subs[ch]; ok {
			delete(ev.subs, ch)
			close(ch)
		}
	}
}

// SwitchEvent publishes what the switch reports on its own
// (datapath.Config.OnEvent): it never blocks and never calls the switch.
func (s *Server) SwitchEvent(e datapath.Event) {
	s.events.publish(apiEvent(e))
}

// apiEvent is e on the wire.
func apiEvent(e datapath.Event) api.Event {
	out := api.Event{At: e.Time, Port: e.Port}
	b := func(v bool) *bool { return &v }
	n := func(v int) *int { return &v }
	switch e.Type {
	case datapath.EventPortAdded:
		out.Type, out.Live = api.EventPortAdded, b(e.Live)
	case datapath.EventPortRemoved:
		out.Type = api.EventPortRemoved
	case datapath.EventLink:
		out.Type, out.LinkUp, out.Carrier = api.EventLink, b(e.Up), b(e.Carrier)
	case datapath.EventLiveness:
		out.Type, out.Live, out.Reason = api.EventLiveness, b(e.Live), e.Reason
	case datapath.EventFailover:
		g := e.Group
		out.Type, out.Group, out.From, out.To = api.EventFailover, &g, n(e.From), n(e.To)
	case datapath.EventBucket:
		g := e.Group
		out.Type, out.Group, out.Bucket, out.Live = api.EventGroupBucket, &g, n(e.Bucket), b(e.Live)
	case datapath.EventFlowsExpired:
		out.Type, out.Flows = api.EventFlowsExpired, e.Flows
	default:
		out.Type = api.EventType(e.Type)
	}
	return out
}

// changed publishes what a request changed.
func (s *Server) changed(r *http.Request, t api.EventType, added, removed []uint64) {
	s.events.publish(api.Event{Type: t, Flows: added, Removed: removed, Request: r.Method + " " + r.URL.Path})
}

// replaced publishes that a request replaced every flow.
func (s *Server) replaced(r *http.Request, added []uint64) {
	s.events.publish(api.Event{Type: api.EventFlowsChanged, Flows: added, Replaced: true, Request: r.Method + " " + r.URL.Path})
}

// streamEvents serves GET /v1/events: server-sent events, from after
// Last-Event-ID (or the query parameter last_event_id) when given, else
// from now on.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	var last uint64
	hdr := r.Header.Get("Last-Event-ID")
	if hdr == "" {
		hdr = r.URL.Query().Get("last_event_id")
	}
	backlog := hdr != ""
	if backlog {
		n, err := strconv.ParseUint(hdr, 10, 64)
		if err != nil {
			s.fail(w, r, badRequest("Last-Event-ID", "Last-Event-ID %q: want an event ID", hdr))
			return
		}
		last = n
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, r, fmt.Errorf("events: the connection cannot stream"))
		return
	}
	// A stream lives as long as its client: the server's read and write
	// timeouts do not apply to it, but each write must get through within
	// streamWriteTimeout (a client that stops reading is cut off).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	past, missed, ch, cancel := s.events.subscribe(last)
	defer cancel()
	if !backlog {
		past, missed = nil, 0 // a new follower starts now
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	if missed > 0 {
		writeEvent(bw, api.Event{Type: api.EventLost, At: time.Now().UTC(), Missed: missed})
	}
	for _, e := range past {
		writeEvent(bw, e)
	}
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if bw.Flush() != nil {
		return
	}
	fl.Flush()
	// A comment now and then keeps proxies and idle timeouts from closing
	// a quiet stream.
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-ch:
			if !ok {
				return // too far behind: the client reconnects with Last-Event-ID
			}
			writeEvent(bw, e)
			for more := true; more; {
				select {
				case e, ok := <-ch:
					if !ok {
						bw.Flush()
						return
					}
					writeEvent(bw, e)
				default:
					more = false
				}
			}
		case <-keep.C:
			bw.WriteString(": keep-alive\n\n")
		}
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if bw.Flush() != nil {
			return
		}
		fl.Flush()
	}
}

func writeEvent(w *bufio.Writer, e api.Event) {
	data, _ := json.Marshal(e) // plain data: cannot fail
	if e.ID != 0 {             // EventLost has none: it must not move the client's Last-Event-ID
		fmt.Fprintf(w, "id: %d\n", e.ID)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
}
