package ctl

import (
	"errors"
	"fmt"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// RestoreResult counts what Restore brought back.
type RestoreResult struct {
	Ports       int // configured, attached or not
	PortsAbsent int // of which have no device, or one that could not be attached
	Groups      int
	Flows       int
}

// Restore applies a persisted State to the backend: ports first, then
// groups and flows, with the flows' IDs. Nothing in it is dropped:
//
//   - A port whose device is missing (or cannot be attached) is configured
//     absent (datapath.PortSpec.KeepAbsent), its flows installed; it is
//     attached when the device appears, and only del-port removes it.
//   - Flows and groups that name a port no longer configured (one deleted
//     with del-port before the restart) are installed as the switch kept
//     them.
//   - An entry that is not valid (bad syntax, a duplicate, a group or ID
//     that does not fit) is an error naming it: xvsd refuses to start
//     rather than start without it and then save the state without it.
//
// Restore does not rewrite the state file: the next change does. Call it
// before serving requests.
func (s *Server) Restore(st *State) (RestoreResult, error) {
	var res RestoreResult
	groups, flows, err := checkState(st)
	if err != nil {
		return res, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range st.Ports {
		mode := p.Mode
		if mode == "" {
			mode = datapath.ModeAuto
		}
		info, err := s.backend.AddPort(datapath.PortSpec{Name: p.Name, Mode: mode, OFPort: p.OFPort, KeepAbsent: true})
		if errors.Is(err, datapath.ErrPortExists) {
			info, err = s.backend.Port(p.Name)
		}
		if err != nil {
			return res, fmt.Errorf("state: ports[%d] %s: %w", i, p.Name, err)
		}
		l := p.Liveness
		if l == "" {
			l = datapath.LivenessAuto
		}
		if l != datapath.LivenessAuto {
			if _, err := s.backend.SetLiveness(p.Name, l); err != nil {
				return res, fmt.Errorf("state: ports[%d] %s: %w", i, p.Name, err)
			}
		}
		s.ports[p.Name] = portConfig{mode: mode, ofport: info.OFPort, liveness: l}
		res.Ports++
		if info.State == datapath.PortAbsent || info.State == datapath.PortFailed {
			res.PortsAbsent++
			s.log.Warn("restore port: absent, kept: it is attached when its device appears", "port", p.Name, "state", info.State, "problem", info.Problem)
		}
	}
	if len(groups)+len(flows) == 0 && st.NextFlowID == 0 {
		return res, nil
	}
	_, err = s.backend.ApplyCommit(datapath.Change{
		AddGroups: groups, Add: flows,
		KeepIDs: true, NextID: st.NextFlowID, AllowMissingPorts: true,
		Owned: true, // parsed for this restore only
	}, nil)
	if err != nil {
		var ie *flowtable.ItemError
		if errors.As(err, &ie) && ie.What == "group" {
			return res, fmt.Errorf("state: groups[%d] %q: %w", ie.Index, st.Groups[ie.Index], ie.Err)
		}
		if errors.As(err, &ie) {
			return res, fmt.Errorf("state: flows[%d] (id %d) %q: %w", ie.Index, st.Flows[ie.Index].ID, st.Flows[ie.Index].Flow, ie.Err)
		}
		return res, fmt.Errorf("state: groups and flows: %w", err)
	}
	res.Groups, res.Flows = len(groups), len(flows)
	return res, nil
}

// checkState parses a State's groups and flows and checks every entry,
// before anything is applied: an error names the entry.
func checkState(st *State) ([]*flowtable.Group, []*flowtable.Flow, error) {
	names := make(map[string]bool)
	ofports := make(map[uint32]string)
	for i, p := range st.Ports {
		if err := flowtable.CheckPortName(p.Name); err != nil {
			return nil, nil, fmt.Errorf("state: ports[%d]: %w", i, err)
		}
		if names[p.Name] {
			return nil, nil, fmt.Errorf("state: ports[%d]: port %s is there twice: %w", i, p.Name, datapath.ErrInvalid)
		}
		names[p.Name] = true
		switch p.Mode {
		case "", datapath.ModeAuto, datapath.ModeNative, datapath.ModeGeneric:
		default:
			return nil, nil, fmt.Errorf("state: ports[%d] %s: mode %q is not native, generic or auto: %w", i, p.Name, p.Mode, datapath.ErrInvalid)
		}
		if p.Liveness != "" {
			if _, err := datapath.ParseLiveness(string(p.Liveness)); err != nil {
				return nil, nil, fmt.Errorf("state: ports[%d] %s: %w", i, p.Name, err)
			}
		}
		if other, ok := ofports[p.OFPort]; ok && p.OFPort != 0 {
			return nil, nil, fmt.Errorf("state: ports[%d] %s: ofport %d is %s's too: %w", i, p.Name, p.OFPort, other, datapath.ErrInvalid)
		}
		ofports[p.OFPort] = p.Name
	}
	groups := make([]*flowtable.Group, len(st.Groups))
	for i, text := range st.Groups {
		g, err := flowtable.ParseGroup(text)
		if err != nil {
			return nil, nil, fmt.Errorf("state: groups[%d] %q: %w", i, text, err)
		}
		groups[i] = g
	}
	flows := make([]*flowtable.Flow, len(st.Flows))
	var last uint64
	for i, fs := range st.Flows {
		f, err := parseFlowText(fs.Flow)
		if err != nil {
			return nil, nil, fmt.Errorf("state: flows[%d] (id %d) %q: %w", i, fs.ID, fs.Flow, err)
		}
		if fs.ID <= last {
			return nil, nil, fmt.Errorf("state: flows[%d] %q: id %d: flows must have IDs, ascending: %w", i, fs.Flow, fs.ID, datapath.ErrInvalid)
		}
		last = fs.ID
		f.ID = fs.ID
		flows[i] = f
	}
	if st.NextFlowID != 0 && st.NextFlowID <= last {
		return nil, nil, fmt.Errorf("state: next_flow_id %d is not above the last flow's ID %d: %w", st.NextFlowID, last, datapath.ErrInvalid)
	}
	return groups, flows, nil
}
