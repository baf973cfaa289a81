package ctl

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// trace answers POST /v1/trace: what the switch does with a packet.
func (s *Server) trace(w http.ResponseWriter, r *http.Request) {
	var req api.TraceRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	_, names := s.portNames()
	in, err := traceInput(&req, names)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.backend.Trace(in)
	if err != nil {
		switch {
		case errors.Is(err, datapath.ErrNoSuchPort), errors.Is(err, datapath.ErrNoSuchDevice):
			err = &fieldError{field: "in_port", err: err} // unknown, or absent: no device to trace on
		case errors.Is(err, datapath.ErrInvalid):
			err = &fieldError{field: "queue", err: err}
		}
		s.fail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, apiTrace(&res, s.ofportNames()))
}

// traceInput reads a trace request: the packet in match syntax or in hex.
// in_port, in the flow fields or on its own, is a port reference as in a
// flow: a name, or an ofport number that names that has it.
func traceInput(req *api.TraceRequest, names flowtable.PortNamer) (datapath.TraceInput, error) {
	in := datapath.TraceInput{Queue: req.Queue}
	if req.Queue < 0 {
		return in, badRequest("queue", "queue %d: must be 0 or more", req.Queue)
	}
	reqPort, err := tracePort(req.InPort, names)
	if err != nil {
		return in, err
	}
	in.Port = reqPort
	switch {
	case req.Flow != "" && req.Packet != "":
		return in, badRequest("packet", "give the packet as flow fields or as hex (packet), not both")
	case req.Flow != "":
		m, err := flowtable.ParseMatch(req.Flow)
		if err != nil {
			if pe, ok := err.(*flowtable.ParseError); ok && pe.Field == "" {
				pe.Field = "flow"
			}
			return in, err
		}
		port, err := tracePort(m.InPort, names)
		switch {
		case err != nil:
			return in, err
		case port == "" && reqPort == "":
			return in, badRequest("in_port", "the packet needs an input port: in_port=PORT in the flow fields")
		case port != "" && reqPort != "" && port != reqPort:
			return in, badRequest("in_port", "in_port %s and in_port=%s in the flow fields disagree", req.InPort, m.InPort)
		case port != "":
			in.Port = port
		}
		if in.Frame, err = flowtable.PacketFromMatch(&m); err != nil {
			return in, badRequest("flow", "%v", err)
		}
	case req.Packet != "":
		if req.InPort == "" {
			return in, badRequest("in_port", "a packet in hex needs in_port, the port it arrives on")
		}
		h := strings.Join(strings.Fields(req.Packet), "")
		h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
		b, err := hex.DecodeString(h)
		if err != nil {
			return in, badRequest("packet", "packet: not hex: %v", err)
		}
		if len(b) < 14 {
			return in, badRequest("packet", "packet: %d bytes, shorter than an Ethernet header", len(b))
		}
		in.Frame = b
	default:
		return in, badRequest("flow", "give the packet to trace: flow (match fields with in_port) or packet (hex) with in_port")
	}
	if err := validPortName(in.Port); err != nil {
		return in, badRequest("in_port", "in_port %q: %v", in.Port, err)
	}
	return in, nil
}

// tracePort returns the name of the port ref names ("" for none): a
// number is the port with that ofport (404 when none has it), a quoted
// name the name.
func tracePort(ref string, names flowtable.PortNamer) (string, error) {
	if ref == "" {
		return "", nil
	}
	name, n := flowtable.ParsePortRef(ref)
	if n == 0 {
		if name == "" { // not a valid reference: validPortName says why
			return ref, nil
		}
		return name, nil
	}
	if name, ok := names(n); ok {
		return name, nil
	}
	return "", &fieldError{field: "in_port", err: fmt.Errorf("in_port=%d: no port has ofport %d: %w", n, n, datapath.ErrNoSuchPort)}
}

// ofportNames maps ofports to the names of the ports there are now.
func (s *Server) ofportNames() map[uint32]string {
	ports := s.backend.Ports()
	m := make(map[uint32]string, len(ports))
	for _, p := range ports {
		m[p.OFPort] = p.Name
	}
	return m
}

var traceKinds = [...]string{
	flowtable.TraceLookup: "lookup",
	flowtable.TraceAction: "action",
	flowtable.TraceGroup:  "group",
	flowtable.TraceBucket: "bucket",
	flowtable.TraceNote:   "note",
}

// apiTrace converts a trace result; names maps ofports to port names.
func apiTrace(res *datapath.TraceResult, names map[uint32]string) api.Trace {
	out := api.Trace{
		InPort:   res.Port,
		OFPort:   res.OFPort,
		Queue:    res.Queue,
		Packet:   hex.EncodeToString(res.Frame),
		Flow:     describeFrame(res.Frame, res.Port, res.OFPort),
		Steps:    []api.TraceStep{},
		Outputs:  []api.TraceOutput{},
		Result:   string(res.Outcome),
		Drop:     res.Drop,
		Disagree: res.Disagree,
		XDP: api.TraceXDP{
			Verdict: string(res.XDP.Verdict),
			Reason:  string(res.XDP.Reason),
			Masks:   res.XDP.Masks,
			Cached:  res.XDP.Cached,

			FastPath: res.XDP.FastPath,
		},
	}
	if res.XDP.Flow != nil {
		f := apiFlow(res.XDP.Flow)
		out.XDP.Flow = &f
	}
	pl := res.Pipeline
	if pl == nil {
		return out
	}
	for _, st := range pl.Steps {
		a := api.TraceStep{Kind: traceKinds[st.Kind], Depth: st.Depth}
		switch st.Kind {
		case flowtable.TraceLookup:
			table := st.Table
			a.Table = &table
			if st.Flow != nil {
				f := apiFlow(st.Flow)
				a.Flow = &f
			}
		case flowtable.TraceAction:
			a.Action = st.Action
			if st.Packet != nil {
				a.Packet = hex.EncodeToString(st.Packet)
				a.PacketFlow = describeFrame(st.Packet, "", 0)
			}
		case flowtable.TraceGroup, flowtable.TraceBucket:
			g, b := st.Group, st.Bucket
			a.Group, a.Bucket = &g, &b
		case flowtable.TraceNote:
			a.Note = st.Note
		}
		out.Steps = append(out.Steps, a)
	}
	for _, o := range pl.Outputs {
		switch {
		case o.Output:
			name := names[o.Port]
			if name == "" {
				name = fmt.Sprintf("ofport %d", o.Port)
			}
			out.Outputs = append(out.Outputs, api.TraceOutput{
				Port: name, OFPort: o.Port,
				Packet: hex.EncodeToString(o.Frame), Flow: describeFrame(o.Frame, "", 0),
			})
		case o.Drop == flowtable.DropKernel:
			out.Outputs = append(out.Outputs, api.TraceOutput{Drop: datapath.DropKernelFlow.String()})
		default:
			out.Outputs = append(out.Outputs, api.TraceOutput{Drop: datapath.ProgramDrop(o.Drop).String()})
		}
	}
	return out
}

// describeFrame is frame in match syntax, after in_port=port when port is
// given.
func describeFrame(frame []byte, port string, ofport uint32) string {
	d := flowtable.DescribeFrame(frame, ofport)
	if port != "" {
		d = "in_port=" + port + "," + d
	}
	return d
}
