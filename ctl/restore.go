package ctl

import (
	"errors"
	"slices"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// RestoreResult counts what Restore brought back and what it could not.
type RestoreResult struct {
	Ports, PortsFailed   int
	Groups, GroupsFailed int
	Flows, FlowsFailed   int
}

// Restore applies a persisted State to the backend: ports first, then
// groups and flows. It keeps going past failures and logs each one: a port
// whose netdev is gone is skipped, and a group or flow is restored only if
// it is still valid (so flows that name a skipped port or group are skipped
// too). The groups and flows go in as one transaction when they can; if
// that fails, one by one, groups first.
//
// Restore does not rewrite the state file: the next configuration change
// does, with what is live then. Call it before serving requests.
func (s *Server) Restore(st *State) RestoreResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res RestoreResult
	for _, p := range st.Ports {
		mode := p.Mode
		if mode == "" {
			mode = datapath.ModeAuto
		}
		_, err := s.backend.AddPort(datapath.PortSpec{Name: p.Name, Mode: mode})
		if err != nil && !errors.Is(err, datapath.ErrPortExists) {
			res.PortsFailed++
			s.log.Warn("restore port: skipped", "port", p.Name, "mode", mode, "err", err)
			continue
		}
		s.modes[p.Name] = mode
		res.Ports++
	}

	var groups []*flowtable.Group
	var gtexts []string
	for i, text := range st.Groups {
		g, err := flowtable.ParseGroup(text)
		if err != nil {
			res.GroupsFailed++
			s.log.Warn("restore group: skipped", "index", i, "group", text, "err", err)
			continue
		}
		groups = append(groups, g)
		gtexts = append(gtexts, text)
	}
	var flows []*flowtable.Flow
	var texts []string
	for i, text := range st.Flows {
		f, err := parseFlowText(text)
		if err != nil {
			res.FlowsFailed++
			s.log.Warn("restore flow: skipped", "index", i, "flow", text, "err", err)
			continue
		}
		flows = append(flows, f)
		texts = append(texts, text)
	}
	if len(groups)+len(flows) == 0 {
		return res
	}
	if _, err := s.backend.Apply(datapath.Change{AddGroups: groups, Add: flows}); err == nil {
		res.Groups += len(groups)
		res.Flows += len(flows)
		return res
	}
	// One by one; a group that sends to another may come before it, so
	// go round until a round adds none.
	for pending := groups; len(pending) > 0; {
		var left []*flowtable.Group
		for _, g := range pending {
			if _, err := s.backend.Apply(datapath.Change{AddGroups: []*flowtable.Group{g}}); err != nil {
				left = append(left, g)
				continue
			}
			res.Groups++
		}
		if len(left) == len(pending) {
			for _, g := range left {
				res.GroupsFailed++
				_, err := s.backend.Apply(datapath.Change{AddGroups: []*flowtable.Group{g}})
				s.log.Warn("restore group: skipped", "group", gtexts[slices.Index(groups, g)], "err", err)
			}
			break
		}
		pending = left
	}
	for i, f := range flows {
		if _, err := s.backend.Apply(datapath.Change{Add: []*flowtable.Flow{f}}); err != nil {
			res.FlowsFailed++
			s.log.Warn("restore flow: skipped", "flow", texts[i], "err", err)
			continue
		}
		res.Flows++
	}
	return res
}
