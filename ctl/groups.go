package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// groupText is a group's persisted form.
func groupText(g *flowtable.Group) string { return g.String() }

// decodeGroups decodes a body holding one group (an object) or several (an
// array) in either form of api.Group. Errors about an item of an array
// carry its index.
func decodeGroups(body []byte) (groups []*flowtable.Group, array bool, err error) {
	return decodeOneOrMany(body, decodeGroup)
}

func decodeGroup(data []byte) (*flowtable.Group, error) {
	var j api.Group
	if err := decodeJSON(data, &j); err != nil {
		return nil, err
	}
	return groupFromAPI(j)
}

func groupID(r *http.Request) (uint32, error) {
	s := mux.Vars(r)["id"]
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id > flowtable.MaxGroupID {
		return 0, badRequest("id", "group id %q: want a number 0..%d", s, uint32(flowtable.MaxGroupID))
	}
	return uint32(id), nil
}

// groupsLocked returns the groups with the given IDs as they are now.
// s.mu must be held.
func (s *Server) groupsLocked(groups []*flowtable.Group) []api.GroupStatus {
	out := make([]api.GroupStatus, 0, len(groups))
	for _, g := range groups {
		gi, err := s.backend.Group(g.ID)
		if err != nil {
			gi = datapath.GroupInfo{Group: g} // replaced again since; shown as given
		}
		out = append(out, apiGroupStatus(gi))
	}
	return out
}

// removedLocked returns the flows of before whose IDs are in ids, as they
// were: the flows a change took with the groups it removed.
func removedFlows(before []datapath.FlowInfo, ids []uint64) []api.FlowStatus {
	out := []api.FlowStatus{}
	for _, fi := range sortFlows(before) {
		if _, ok := slices.BinarySearch(ids, fi.Flow.ID); ok { // ids are by ID (Applied.Removed)
			out = append(out, apiFlowStatus(fi))
		}
	}
	return out
}

// flowsToGroups returns the flows that send to a group gone is true of,
// with their counters: those a change that removes such groups removes.
func (s *Server) flowsToGroups(gone func(id uint32) bool) []datapath.FlowInfo {
	return s.backend.SelectFlows(func(f *flowtable.Flow) bool {
		for i := range f.Actions {
			if id, ok := f.Actions[i].GroupRef(); ok && gone(id) {
				return true
			}
		}
		return false
	})
}

// checkGroupPortsLocked checks that every port the groups name is configured (404
// naming the field and the item, as for flows). s.mu must be held.
// Ports given by number are bound to names first, as for flows.
func (s *Server) checkGroupPortsLocked(groups []*flowtable.Group, array bool) error {
	ports := s.ports
	_, names := s.portNames()
	wrap := func(i int, err error) error {
		if array {
			return &itemError{index: i, err: err}
		}
		return err
	}
	for i, g := range groups {
		if field, err := g.BindPortNumbers(names); err != nil {
			return wrap(i, &fieldError{field: field, err: err})
		}
		for _, p := range g.PortRefs() {
			if _, ok := ports[flowtable.PortName(p)]; !ok {
				return wrap(i, &fieldError{field: "bucket", err: fmt.Errorf("group %d names port %s: %w", g.ID, p, datapath.ErrNoSuchPort)})
			}
		}
	}
	return nil
}

// listGroups serves GET /v1/groups.
func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	s.reply(w, http.StatusOK, apiGroupStatuses(s.backend.Groups()))
}

// addGroups serves POST /v1/groups: one group (object in, object out) or
// several added as one transaction (array in, array out), like add-group
// and add-groups.
func (s *Server) addGroups(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	groups, array, err := decodeGroups(body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkGroupPortsLocked(groups, array); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.applyLocked(datapath.Change{AddGroups: groups}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("groups added", "groups", len(groups))
	s.changed(r, api.EventGroupsChanged, nil, nil)
	out := s.groupsLocked(groups)
	if array {
		s.reply(w, http.StatusCreated, out)
	} else {
		s.reply(w, http.StatusCreated, out[0])
	}
}

// replaceGroups serves PUT /v1/groups: the groups become exactly the ones
// given, atomically; flows that sent to a group that goes go with it.
func (s *Server) replaceGroups(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		s.fail(w, r, badRequest("", "PUT %s takes an array of groups", api.PathGroups))
		return
	}
	groups, _, err := decodeGroups(body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkGroupPortsLocked(groups, true); err != nil {
		s.fail(w, r, err)
		return
	}
	before := s.flowsToGroups(func(uint32) bool { return true })
	res, err := s.applyLocked(datapath.Change{ReplaceGroups: true, AddGroups: groups})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("groups replaced", "groups", len(groups), "flows_removed", len(res.Removed))
	s.changed(r, api.EventGroupsChanged, nil, nil)
	if len(res.Removed) > 0 {
		s.changed(r, api.EventFlowsChanged, nil, res.Removed)
	}
	s.reply(w, http.StatusOK, api.GroupsReplaced{Groups: s.groupsLocked(groups), RemovedFlows: removedFlows(before, res.Removed)})
}

// getGroup serves GET /v1/groups/{id}.
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	id, err := groupID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	gi, err := s.backend.Group(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, apiGroupStatus(gi))
}

// modGroup serves PUT /v1/groups/{id}: the group is replaced by the one
// given (mod-group); its flows stay, its counters start again.
func (s *Server) modGroup(w http.ResponseWriter, r *http.Request) {
	id, err := groupID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var j api.Group
	if err := decodeJSON(body, &j); err != nil {
		s.fail(w, r, err)
		return
	}
	if j.ID == nil && j.Text == "" {
		j.ID = &id
	}
	g, err := groupFromAPI(j)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if g.ID != id {
		s.fail(w, r, badRequest("group_id", "group_id %d in the body is not the %d of the path", g.ID, id))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkGroupPortsLocked([]*flowtable.Group{g}, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.applyLocked(datapath.Change{ModGroups: []*flowtable.Group{g}}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("group modified", "group", id)
	s.changed(r, api.EventGroupsChanged, nil, nil)
	s.reply(w, http.StatusOK, s.groupsLocked([]*flowtable.Group{g})[0])
}

// deleteGroup serves DELETE /v1/groups/{id}: the group goes, with the
// flows that send to it (as OpenFlow's group delete), and the answer shows
// both as they were.
func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	id, err := groupID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gi, err := s.backend.Group(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	before := s.flowsToGroups(func(g uint32) bool { return g == id })
	res, err := s.applyLocked(datapath.Change{DeleteGroups: []uint32{id}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("group deleted", "group", id, "flows_removed", len(res.Removed))
	s.changed(r, api.EventGroupsChanged, nil, nil)
	if len(res.Removed) > 0 {
		s.changed(r, api.EventFlowsChanged, nil, res.Removed)
	}
	s.reply(w, http.StatusOK, api.GroupDeleted{Group: apiGroupStatus(gi), RemovedFlows: removedFlows(before, res.Removed)})
}

// bundle serves POST /v1/bundle: groups and flows in one transaction.
func (s *Server) bundle(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Replace bool              `json:"replace,omitempty"`
		Groups  []json.RawMessage `json:"groups,omitempty"`
		Flows   []json.RawMessage `json:"flows,omitempty"`
	}
	if err := decodeJSON(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	groups := make([]*flowtable.Group, len(req.Groups))
	for i, raw := range req.Groups {
		if groups[i], err = decodeGroup(raw); err != nil {
			s.fail(w, r, &itemError{index: i, err: fmt.Errorf("groups[%d]: %w", i, err)})
			return
		}
	}
	flows := make([]*flowtable.Flow, len(req.Flows))
	for i, raw := range req.Flows {
		if flows[i], err = decodeFlow(raw); err != nil {
			s.fail(w, r, &itemError{index: i, err: fmt.Errorf("flows[%d]: %w", i, err)})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkGroupPortsLocked(groups, true); err != nil {
		s.fail(w, r, fmt.Errorf("groups: %w", err))
		return
	}
	if err := s.checkFlowPortsLocked(flows, true); err != nil {
		s.fail(w, r, fmt.Errorf("flows: %w", err))
		return
	}
	res, err := s.applyLocked(datapath.Change{
		Replace: req.Replace, ReplaceGroups: req.Replace,
		AddGroups: groups, Add: flows,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("bundle applied", "replace", req.Replace, "groups", len(groups), "flows", len(flows))
	s.changed(r, api.EventGroupsChanged, nil, nil)
	if req.Replace {
		s.replaced(r, res.Added)
	} else {
		s.changed(r, api.EventFlowsChanged, res.Added, res.Removed)
	}
	status := http.StatusCreated
	if req.Replace {
		status = http.StatusOK
	}
	out := api.BundleResult{Groups: s.groupsLocked(groups), Flows: s.installedLocked(res.Added, flows)}
	s.reply(w, status, out)
}

// listTables serves GET /v1/tables.
func (s *Server) listTables(w http.ResponseWriter, r *http.Request) {
	s.reply(w, http.StatusOK, apiTableStats(s.backend.Tables()))
}
