package ctl

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// portStatesLocked is the configured ports (attached or absent) with what
// was asked of them, by ofport. s.mu must be held.
func (s *Server) portStatesLocked() []PortState {
	ports := []PortState{}
	for name, p := range s.ports {
		ps := PortState{Name: name, Mode: p.mode, OFPort: p.ofport}
		if p.liveness != datapath.LivenessAuto {
			ps.Liveness = p.liveness
		}
		ports = append(ports, ps)
	}
	slices.SortFunc(ports, func(a, b PortState) int { return cmp.Or(cmp.Compare(a.OFPort, b.OFPort), cmp.Compare(a.Name, b.Name)) })
	return ports
}

// groupTexts is the groups of pipeline t, in add-group syntax, by ID;
// never nil (a journal record's null groups would read as unchanged).
func groupTexts(t *flowtable.Table) []string {
	out := []string{}
	for _, ge := range t.Groups() {
		out = append(out, groupText(ge.Group))
	}
	return out
}

// flowStates is the saved form of flows (a table's ByID). Each flow's text
// is printed once and kept (Entry.Text), on every CPU for a bulk install:
// the save runs beside the kernel sync, and is the longer.
func flowStates(es []*flowtable.Entry) []FlowState {
	out := make([]FlowState, len(es))
	_ = inParallel(len(es), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			out[i] = FlowState{ID: es[i].Flow.ID, Flow: es[i].Text()}
		}
		return nil
	})
	return out
}

// savedState is what the last save wrote, for the next to write only what
// changed: the pipeline's flows (its ByID list, which the table never
// changes), the ports and the groups. ok is false until a save works.
type savedState struct {
	ok     bool
	flows  []*flowtable.Entry
	ports  []PortState
	groups []string
}

// writeLocked saves the configuration with the pipeline t: what changed
// since the last save, appended to the journal (Store.Append), or the
// whole state (Store.Save) when that is smaller or the journal cannot take
// it. s.mu must be held.
func (s *Server) writeLocked(t *flowtable.Table) error {
	ports, groups, flows := s.portStatesLocked(), groupTexts(t), t.ByID()
	// After a failed save, a snapshot: the change was refused, so a
	// record would be empty and write nothing, and a save that writes
	// nothing does not show that the disk takes writes again.
	if s.saved.ok && s.saveErr.Load() == nil {
		d := &Delta{NextFlowID: t.NextID()}
		if !slices.Equal(ports, s.saved.ports) {
			d.Ports = &ports
		}
		if !slices.Equal(groups, s.saved.groups) {
			d.Groups = &groups
		}
		// Past a quarter of the flows, a snapshot is the smaller write.
		if diffFlows(s.saved.flows, flows, d, max(64, (len(flows)+len(s.saved.flows))/4)) {
			err := s.store.Append(d)
			if err == nil {
				s.saved = savedState{ok: true, flows: flows, ports: ports, groups: groups}
				return nil
			}
			if !errors.Is(err, errJournalFull) {
				return err
			}
		}
	}
	st := &State{Version: StateVersion, NextFlowID: t.NextID(), Ports: ports, Groups: groups, Flows: flowStates(flows)}
	if err := s.store.Save(st); err != nil {
		return err
	}
	s.saved = savedState{ok: true, flows: flows, ports: ports, groups: groups}
	return nil
}

// diffFlows adds to d what turns the flows was (by ID) into now (by ID):
// the IDs gone, and the flows new or changed with their text. It gives up,
// returning false, past limit of them. Flows the two share are the same
// Entry, and are passed over without a look at them (a load of each
// Entry of a large table was a cache miss a flow).
func diffFlows(was, now []*flowtable.Entry, d *Delta, limit int) bool {
	i, j := 0, 0
	for i < len(was) || j < len(now) {
		if i < len(was) && j < len(now) && was[i] == now[j] {
			i++
			j++
			continue
		}
		if len(d.Delete)+len(d.Flows) >= limit {
			return false
		}
		switch {
		case j == len(now) || i < len(was) && was[i].Flow.ID < now[j].Flow.ID:
			d.Delete = append(d.Delete, was[i].Flow.ID)
			i++
		case i == len(was) || now[j].Flow.ID < was[i].Flow.ID:
			d.Flows = append(d.Flows, FlowState{ID: now[j].Flow.ID, Flow: now[j].Text()})
			j++
		default:
			if was[i].Text() != now[j].Text() { // (not the same Entry: see above)
				d.Flows = append(d.Flows, FlowState{ID: now[j].Flow.ID, Flow: now[j].Text()})
			}
			i++
			j++
		}
	}
	return true
}

// saveLocked saves the configuration with the pipeline t. It is the
// commit of every change (datapath.Commit): an error, which wraps
// errNotSaved, abandons the change. s.mu must be held.
func (s *Server) saveLocked(t *flowtable.Table) error {
	if s.store == nil {
		return nil
	}
	if err := s.writeLocked(t); err != nil {
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
			if err := s.writeLocked(s.backend.Pipeline()); err == nil {
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
