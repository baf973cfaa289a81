package ctl

import (
	"errors"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// RestoreResult counts what Restore brought back and what it could not.
type RestoreResult struct {
	Ports, PortsFailed int
	Flows, FlowsFailed int
}

// Restore applies a persisted State to the backend: ports first, then flows.
// It keeps going past failures and logs each one: a port whose netdev is gone
// is skipped, and a flow is restored only if it is still valid (so flows that
// name a skipped port are skipped too). All the flows go in as one
// transaction when they can; if that fails, one by one.
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
	if len(flows) == 0 {
		return res
	}
	if _, err := s.backend.ApplyFlows(datapath.FlowChange{Add: flows}); err == nil {
		res.Flows += len(flows)
		return res
	}
	for i, f := range flows {
		if _, err := s.backend.ApplyFlows(datapath.FlowChange{Add: []*flowtable.Flow{f}}); err != nil {
			res.FlowsFailed++
			s.log.Warn("restore flow: skipped", "flow", texts[i], "err", err)
			continue
		}
		res.Flows++
	}
	return res
}
