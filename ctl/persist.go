package ctl

import (
	"cmp"
	"slices"

	"github.com/xvs-project/xvs/datapath"
)

// snapshotLocked is the configuration to persist: the live ports with the
// mode asked for, and the live groups and flows in text form. s.mu must be
// held.
func (s *Server) snapshotLocked() *State {
	st := &State{Version: StateVersion, Ports: []PortState{}, Flows: []string{}}
	for _, p := range s.backend.Ports() {
		mode, ok := s.modes[p.Name]
		if !ok {
			mode = p.XDPMode
		}
		st.Ports = append(st.Ports, PortState{Name: p.Name, Mode: mode})
	}
	for _, gi := range s.backend.Groups() {
		st.Groups = append(st.Groups, groupText(gi.Group))
	}
	for _, fi := range sortFlows(s.backend.Flows()) {
		st.Flows = append(st.Flows, flowText(fi.Flow))
	}
	return st
}

// persistLocked saves the configuration after a successful change. A failure
// does not undo the change (it is live already): it is logged, and Health
// reports it until a later save works. s.mu must be held.
func (s *Server) persistLocked() {
	if s.store == nil {
		return
	}
	if err := s.store.Save(s.snapshotLocked()); err != nil {
		s.log.Error("persist state", "path", s.store.Path(), "err", err)
		s.persistErr.Store(&err)
		return
	}
	s.persistErr.Store(nil)
}

// FlowsExpired tells the server that the backend removed flows ids on its
// own (their idle or hard timeout passed): it saves the configuration, so a
// restart does not bring them back. datapath.Config.OnExpire calls it. Like
// the save after any change, it records the switch as it is: a port the
// state file named but Restore could not attach is no longer in it.
func (s *Server) FlowsExpired(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.persistLocked()
}

// sortFlows orders flows as they are shown and saved: by table (as
// ovs-ofctl dump-flows groups them), then highest priority
// first, then by ID (install order).
func sortFlows(flows []datapath.FlowInfo) []datapath.FlowInfo {
	slices.SortStableFunc(flows, func(a, b datapath.FlowInfo) int {
		if a.Flow.Table != b.Flow.Table {
			return cmp.Compare(a.Flow.Table, b.Flow.Table)
		}
		if a.Flow.Priority != b.Flow.Priority {
			return cmp.Compare(b.Flow.Priority, a.Flow.Priority)
		}
		return cmp.Compare(a.Flow.ID, b.Flow.ID)
	})
	return flows
}
