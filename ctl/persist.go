package ctl

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// stateLocked is the configuration to save: the configured ports (attached
// or absent) with what was asked of them, and the groups and flows of the
// pipeline t, with the flows' IDs and the ID counter. s.mu must be held.
func (s *Server) stateLocked(t *flowtable.Table) *State {
	st := &State{Version: StateVersion, NextFlowID: t.NextID(), Ports: []PortState{}, Flows: []FlowState{}}
	for name, p := range s.ports {
		ps := PortState{Name: name, Mode: p.mode, OFPort: p.ofport}
		if p.liveness != datapath.LivenessAuto {
			ps.Liveness = p.liveness
		}
		st.Ports = append(st.Ports, ps)
	}
	slices.SortFunc(st.Ports, func(a, b PortState) int { return cmp.Or(cmp.Compare(a.OFPort, b.OFPort), cmp.Compare(a.Name, b.Name)) })
	for _, ge := range t.Groups() {
		st.Groups = append(st.Groups, groupText(ge.Group))
	}
	// By ID, which is install order: a restore gives them back in it, so
	// flows of equal priority rank as they did. Each flow's text is
	// printed once and kept (Entry.Text), on every CPU for a bulk
	// install: the save runs beside the kernel sync, and is the longer.
	es := t.ByID()
	st.Flows = make([]FlowState, len(es))
	_ = inParallel(len(es), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			st.Flows[i] = FlowState{ID: es[i].Flow.ID, Flow: es[i].Text()}
		}
		return nil
	})
	return st
}

// saveLocked saves the configuration with the pipeline t. It is the
// commit of every change (datapath.Commit): an error, which wraps
// errNotSaved, abandons the change. s.mu must be held.
func (s *Server) saveLocked(t *flowtable.Table) error {
	if s.store == nil {
		return nil
	}
	if err := s.store.Save(s.stateLocked(t)); err != nil {
		s.log.Error("save state", "path", s.store.Path(), "err", err)
		s.saveErr.Store(&err)
		s.retryLocked()
		return fmt.Errorf("%w: %w", errNotSaved, err)
	}
	if s.saveErr.Swap(nil) != nil {
		s.log.Info("state saved again", "path", s.store.Path())
	}
	s.unsaved = false
	return nil
}

// applyLocked applies change, saved before it goes live. Flows and groups
// may name any configured port, attached or absent: the handlers check
// the names against s.ports first. s.mu must be held.
func (s *Server) applyLocked(change datapath.Change) (datapath.Applied, error) {
	change.AllowMissingPorts = true
	// Every caller hands over flows it decoded for this request (or
	// shallow copies of installed ones): the table keeps them.
	change.Owned = true
	return s.backend.ApplyCommit(change, s.saveLocked)
}

// FlowsExpired tells the server that the backend removed flows ids on its
// own (their idle or hard timeout passed): it saves the configuration, so
// a restart does not bring them back. datapath.Config.OnExpire calls it.
// The flows are gone already (a timeout is a promise to remove them): if
// the save fails, it is retried until it works, and Health says so.
func (s *Server) FlowsExpired(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsaved = true
	_ = s.saveLocked(s.backend.Pipeline())
}

// retryLocked starts the goroutine that saves again, every saveRetry,
// until a save works (the disk has room again) or the server closes.
// s.mu must be held.
func (s *Server) retryLocked() {
	if s.retrying {
		return
	}
	s.retrying = true
	s.retries.Add(1)
	go func() {
		defer s.retries.Done()
		for {
			select {
			case <-s.closed:
				s.mu.Lock()
				s.retrying = false
				s.mu.Unlock()
				return
			case <-time.After(s.saveRetry):
			}
			s.mu.Lock()
			if s.saveErr.Load() == nil && !s.unsaved {
				s.retrying = false
				s.mu.Unlock()
				return
			}
			if err := s.store.Save(s.stateLocked(s.backend.Pipeline())); err == nil {
				s.saveErr.Store(nil)
				s.unsaved = false
				s.log.Info("state saved again", "path", s.store.Path())
			} else {
				s.saveErr.Store(&err)
			}
			s.mu.Unlock()
		}
	}()
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
