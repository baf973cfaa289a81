package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/gorilla/mux"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// flowText is a flow's persisted form.
func flowText(f *flowtable.Flow) string { return f.String() }

// parseFlowText parses a persisted flow.
func parseFlowText(text string) (*flowtable.Flow, error) { return flowtable.ParseFlow(text) }

// decodeFlows decodes a body holding one flow (an object) or a batch (an
// array) in either form of api.Flow. Errors about an item of an array carry
// its index.
func decodeFlows(body []byte) (flows []*flowtable.Flow, array bool, err error) {
	return decodeFlowsKnown(body, nil)
}

// decodeFlowsKnown is decodeFlows, taking the flow of a text from known
// instead of parsing it when known has it (see installedFlows).
func decodeFlowsKnown(body []byte, known func([]byte) *flowtable.Flow) (flows []*flowtable.Flow, array bool, err error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if texts, ok := textFlows(trimmed); ok {
			flows = make([]*flowtable.Flow, len(texts))
			// On every CPU: parsing is most of a bulk install's time
			// before the switch's lock (flowtable.ParseFlow may run
			// concurrently).
			err := inParallel(len(texts), func(lo, hi int) error {
				var fp flowtable.FlowParser
				for i := lo; i < hi; i++ {
					t := texts[i]
					if known != nil {
						if flows[i] = known(t.of(trimmed)); flows[i] != nil {
							continue
						}
					}
					var err error
					if flows[i], err = parseTextFlow(&fp, t.of(trimmed)); err != nil {
						return &itemError{index: i, err: err}
					}
				}
				return nil
			})
			if err != nil {
				return nil, true, err
			}
			return flows, true, nil
		}
	}
	return decodeFlowsJSON(body)
}

// parseTextFlow parses a flow's text, bytes of the request's body, with
// fp, as flowFromAPI parses the text of an api.Flow. The text is read in
// place, not copied (a bulk body is many MiB, and fresh memory is dear:
// each page is a fault): the flows of a FlowParser keep nothing of their
// texts, and an error is given a copy of the field it names, so nothing
// refers to the body once parsed; the body is not written meanwhile.
func parseTextFlow(fp *flowtable.FlowParser, text []byte) (*flowtable.Flow, error) {
	if len(text) == 0 {
		return flowFromAPI(api.Flow{}) // refused as empty
	}
	f, err := fp.ParseFlow(unsafe.String(unsafe.SliceData(text), len(text)))
	if pe, ok := err.(*flowtable.ParseError); ok { // (its only error)
		if pe.Field == "" {
			pe.Field = "flow"
		}
		pe.Field = strings.Clone(pe.Field)
	}
	return f, err
}

// decodeFlowsJSON is decodeFlows with encoding/json alone.
func decodeFlowsJSON(body []byte) (flows []*flowtable.Flow, array bool, err error) {
	return decodeOneOrMany(body, decodeFlow)
}

// decodeOneOrMany decodes a body holding one item (an object) or several
// (an array), each with decode. Errors about an item of an array carry its
// index.
func decodeOneOrMany[T any](body []byte, decode func([]byte) (T, error)) (items []T, array bool, err error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := decodeJSON(body, &raws); err != nil {
			return nil, true, err
		}
		items = make([]T, len(raws))
		for i, raw := range raws {
			if items[i], err = decode(raw); err != nil {
				return nil, true, &itemError{index: i, err: err}
			}
		}
		return items, true, nil
	}
	item, err := decode(body)
	if err != nil {
		return nil, false, err
	}
	return []T{item}, false, nil
}

func decodeFlow(data []byte) (*flowtable.Flow, error) {
	var j api.Flow
	if err := decodeJSON(data, &j); err != nil {
		return nil, err
	}
	return flowFromAPI(j)
}

// installedFlows returns what parsing a flow's text gives, for the texts
// of the installed flows, and nil for any other. A controller replacing
// its table sends mostly the flows it installed before, in the canonical
// form they print in (what dump-flows shows, and what a controller that
// writes canonical text sends anyway); parsing 160k of them again was
// most of an unchanged replace's time and memory. The canonical text
// parses back to the flow it was printed from (flowtable's
// TestRoundTripRandom and FuzzParseFlow hold it), so the installed flow,
// less the ID the table gave it, is that parse; which flows are installed
// when the request applies does not matter. The flows are the installed
// flows themselves, IDs and all (no copy: that was 32 MB of a 160k
// replace's 90): the table keeps each, or adds a copy of it, and writes to
// none (see flowtable.Change.Owned), nor does checkFlowPortsLocked
// (BindPortNumbers).
func installedFlows(entries []*flowtable.Entry) func([]byte) *flowtable.Flow {
	if len(entries) == 0 {
		return nil
	}
	byText := make(map[string]*flowtable.Flow, len(entries))
	for _, e := range entries {
		byText[e.Text()] = e.Flow
	}
	return func(text []byte) *flowtable.Flow {
		return byText[string(text)] // (no copy: the compiler looks the bytes up)
	}
}

// checkFlowPortsLocked checks that every port the flows name is configured
// (attached or absent), so a batch that names a missing port is refused
// (404, as any reference to a missing port) with the item's index and the
// field. Ports given by number (in_port=2, output:2) are first bound to the names
// of the ports that have those numbers now: the switch keeps and persists
// flows by port name (see flowtable.Flow.BindPortNumbers).
// s.mu must be held: ports change only under it.
func (s *Server) checkFlowPortsLocked(flows []*flowtable.Flow, array bool) error {
	ports := s.ports
	_, names := s.portNames()
	wrap := func(i int, err error) error {
		if array {
			return &itemError{index: i, err: err}
		}
		return err
	}
	var last []flowtable.Action // the actions checked last: flows of a bulk request share them (FlowParser)
	for i, f := range flows {
		if field, err := f.BindPortNumbers(names); err != nil {
			return wrap(i, &fieldError{field: field, err: err})
		}
		if _, ok := ports[flowtable.PortName(f.Match.InPort)]; f.Match.InPort != "" && !ok {
			return wrap(i, &fieldError{field: "in_port", err: fmt.Errorf("in_port=%s: %w", f.Match.InPort, datapath.ErrNoSuchPort)})
		}
		if len(f.Actions) == len(last) && unsafe.SliceData(f.Actions) == unsafe.SliceData(last) {
			continue // bound above and checked
		}
		for _, a := range f.Actions {
			if _, ok := ports[flowtable.PortName(a.PortRef())]; a.PortRef() != "" && !ok {
				return wrap(i, &fieldError{field: a.Name(), err: fmt.Errorf("%s: %w", flowtable.FormatAction(a), datapath.ErrNoSuchPort)})
			}
		}
		last = f.Actions
	}
	return nil
}

// portNames returns the names of the ports the switch has and a namer of
// their ofports.
func (s *Server) portNames() (map[string]bool, flowtable.PortNamer) {
	ports := make(map[string]bool)
	byOF := make(map[uint32]string)
	for _, p := range s.backend.Ports() {
		ports[p.Name] = true
		byOF[p.OFPort] = p.Name
	}
	return ports, func(n uint32) (string, bool) {
		name, ok := byOF[n]
		return name, ok
	}
}

// bindFilter binds a filter's in_port and out_port given by number to the
// ports' names, as flows are bound when added; a number no port has
// selects no flow.
func (s *Server) bindFilter(flt *flowtable.Filter) {
	if flt != nil {
		_, names := s.portNames()
		flt.BindPortNumbers(names)
	}
}

// installedLocked returns the flows with the given IDs as they are now.
// s.mu must be held.
func (s *Server) installedLocked(ids []uint64, flows []*flowtable.Flow) []api.FlowStatus {
	out := make([]api.FlowStatus, len(ids))
	for i, id := range ids {
		fi, err := s.backend.Flow(id)
		if err != nil {
			// A later item of the same batch with the same priority and
			// match replaced it: show it as it was installed.
			c := *flows[i]
			c.ID = id
			fi = datapath.FlowInfo{Flow: &c}
		}
		out[i] = apiFlowStatus(fi)
	}
	return out
}

// parseFilterParam parses a flow filter; "" selects every flow.
func parseFilterParam(text string) (*flowtable.Filter, error) {
	if text == "" {
		return nil, nil
	}
	flt, err := flowtable.ParseFilter(text)
	if err != nil {
		var pe *flowtable.ParseError
		if errors.As(err, &pe) && pe.Field == "" {
			pe.Field = "match"
		}
		return nil, err
	}
	return &flt, nil
}

// selectFlows returns the flows flt selects (all when flt is nil), with
// their counters: only those are described.
func (s *Server) selectFlows(flt *flowtable.Filter, strict bool) []datapath.FlowInfo {
	if flt == nil {
		return s.backend.Flows()
	}
	return s.backend.SelectFlows(func(f *flowtable.Flow) bool { return flt.Selects(f, strict) })
}

func parseStrict(s string) (bool, error) { return parseBoolParam("strict", s) }

// parseBoolParam reads the boolean query parameter name (false when
// absent).
func parseBoolParam(name, s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest(name, "%s=%q: want true or false", name, s)
	}
	return b, nil
}

// listFlows serves GET /v1/flows[?match=FILTER[&strict=true]], as JSON or,
// asked for with Accept, as dump-flows lines (replyDump; ovs=true leaves
// out the datapath= field, for ovs-ofctl).
func (s *Server) listFlows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query() // checkQuery refused what is not clear
	flt, err := parseFilterParam(q.Get("match"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	strict, err := parseStrict(q.Get("strict"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ovs, err := parseBoolParam("ovs", q.Get("ovs"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	text := wantsText(r)
	if ovs && !text {
		s.fail(w, r, badRequest("ovs", "ovs=true is for the text form (Accept: text/plain); the JSON has the datapath as a field of its own"))
		return
	}
	s.bindFilter(flt)
	flows := sortFlows(s.selectFlows(flt, strict))
	defer s.trim.after(len(flows))
	if text {
		s.replyDump(w, flows, ovs)
		return
	}
	s.reply(w, http.StatusOK, apiFlowStatuses(flows))
}

// addFlows serves POST /v1/flows: one flow (object in, object out) or a
// batch applied as one transaction (array in, array out).
func (s *Server) addFlows(w http.ResponseWriter, r *http.Request) {
	s.applyFlows(w, r, false)
}

// replaceFlows serves PUT /v1/flows: the table becomes exactly the flows
// given, atomically.
func (s *Server) replaceFlows(w http.ResponseWriter, r *http.Request) {
	s.applyFlows(w, r, true)
}

func (s *Server) applyFlows(w http.ResponseWriter, r *http.Request, replace bool) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); replace && (len(t) == 0 || t[0] != '[') {
		// One flow would replace the whole table: that is a mistake more
		// often than a wish, and the API says an array.
		s.fail(w, r, badRequest("", "PUT %s takes an array of flows (the whole table); to add one flow, POST it", api.PathFlows))
		return
	}
	var known func([]byte) *flowtable.Flow
	if replace {
		// The pipeline's entries, not Flows: their counters (a read of
		// the kernel's) and FlowInfos are not needed.
		known = installedFlows(s.backend.Pipeline().ByID())
	}
	flows, array, err := decodeFlowsKnown(body, known)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer s.trim.after(len(flows))

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkFlowPortsLocked(flows, array); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.applyLocked(datapath.Change{Replace: replace, Add: flows})
	ids := res.Added
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if replace {
		s.log.Info("flows replaced", "flows", len(flows), "unchanged", res.Unchanged)
	} else {
		s.log.Info("flows added", "flows", len(flows))
	}
	if replace {
		s.replaced(r, ids)
	} else {
		s.changed(r, api.EventFlowsChanged, ids, res.Removed)
	}
	status := http.StatusCreated
	if replace {
		status = http.StatusOK
	}
	if preferMinimal(r) {
		w.Header().Set("Preference-Applied", "return=minimal")
		s.reply(w, status, api.FlowIDs{IDs: ids})
		return
	}
	out := s.installedLocked(ids, flows)
	if array {
		s.reply(w, status, out)
	} else {
		s.reply(w, status, out[0])
	}
}

// preferMinimal reports whether the request asks, with RFC 7240's
// "Prefer: return=minimal", for a short answer.
func preferMinimal(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "return=minimal") {
				return true
			}
		}
	}
	return false
}

// maxDeleteTries bounds how often a filtered delete is retried when flows it
// selected expire before it is applied.
const maxDeleteTries = 5

// deleteFlows serves POST /v1/flows/delete: deletes the flows the filter
// selects (every flow without one) and returns them as they were.
func (s *Server) deleteFlows(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req api.DeleteFlowsRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSON(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	flt, err := parseFilterParam(req.Match)
	if err != nil {
		s.fail(w, r, err)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.bindFilter(flt)
	var deleted []datapath.FlowInfo
	for try := 1; ; try++ {
		deleted = s.selectFlows(flt, req.Strict)
		if len(deleted) == 0 {
			s.reply(w, http.StatusOK, []api.FlowStatus{})
			return
		}
		change := datapath.Change{Replace: flt == nil}
		if flt != nil {
			for _, fi := range deleted {
				change.Delete = append(change.Delete, fi.Flow.ID)
			}
		}
		_, err = s.applyLocked(change)
		// A flow that timed out between listing and deleting is gone
		// already: select again.
		if err == nil || !errors.Is(err, datapath.ErrNoSuchFlow) || try == maxDeleteTries {
			break
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("flows deleted", "filter", req.Match, "flows", len(deleted))
	gone := make([]uint64, len(deleted))
	for i, fi := range deleted {
		gone[i] = fi.Flow.ID
	}
	s.changed(r, api.EventFlowsChanged, nil, gone)
	s.reply(w, http.StatusOK, apiFlowStatuses(sortFlows(deleted)))
	s.trim.after(len(deleted))
}

func flowID(r *http.Request) (uint64, error) {
	s := mux.Vars(r)["id"]
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, badRequest("id", "flow id %q: want a positive number", s)
	}
	return id, nil
}

// getFlow serves GET /v1/flows/{id}.
func (s *Server) getFlow(w http.ResponseWriter, r *http.Request) {
	id, err := flowID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fi, err := s.backend.Flow(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, apiFlowStatus(fi))
}

// deleteFlow serves DELETE /v1/flows/{id} and returns the flow as it was.
func (s *Server) deleteFlow(w http.ResponseWriter, r *http.Request) {
	id, err := flowID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := s.backend.Flow(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.applyLocked(datapath.Change{Delete: []uint64{id}}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("flow deleted", "id", id)
	s.changed(r, api.EventFlowsChanged, nil, []uint64{id})
	s.reply(w, http.StatusOK, apiFlowStatus(fi))
}
