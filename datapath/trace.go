package datapath

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// TraceInput is a packet to trace: Frame as it would arrive on Port's RX
// queue Queue.
type TraceInput struct {
	Port  string
	Queue int
	Frame []byte
}

// XDPVerdict is what the XDP program did with a traced frame.
type XDPVerdict string

const (
	XDPToUser  XDPVerdict = "redirect" // to the port's AF_XDP socket: the pipeline decides
	XDPForward XDPVerdict = "forward"  // the XDP fast path carried out the flow's actions and sent the frame
	XDPToHost  XDPVerdict = "pass"     // XDP_PASS: the host's stack has it
	XDPDropped XDPVerdict = "drop"     // XDP_DROP
	XDPAborted XDPVerdict = "aborted"  // XDP_ABORTED: a bug in the program
)

// XDPReason says why the XDP program decided as it did.
type XDPReason string

const (
	XDPReasonRule        XDPReason = "rule"         // a steering rule matched: Rank, Flow
	XDPReasonNoMatch     XDPReason = "no_match"     // no rule matched: unmatched traffic is the kernel's
	XDPReasonMalformed   XDPReason = "malformed"    // the parser refused the headers: to the kernel
	XDPReasonUnknownPort XDPReason = "unknown_port" // the device is not in the program's port map
	XDPReasonNoSocket    XDPReason = "no_socket"    // redirect wanted, but the queue has no socket: to the kernel
)

// XDPTrace is the XDP program's decision for a traced frame, as the loaded
// program made it (a test run with the live maps), not re-derived in Go.
type XDPTrace struct {
	Verdict XDPVerdict
	Reason  XDPReason
	Key     flowtable.Key // the key the program extracted
	// The rule that matched, with XDPReasonRule: its rank and mask, and the
	// table-0 flow that owns it (nil if the table changed since).
	Rank   steer.Rank
	MaskID uint32
	Flow   *flowtable.Flow
	// Masks is how many masks the classifier looked up; Cached, that the
	// XDP program's exact-match cache answered instead.
	Masks  int
	Cached bool
	// FastPath is what the fast path did with a forward rule's frame:
	// "forwarded" (Verdict XDPForward, sent on OutPort as Frame),
	// "user" (handed to userspace untouched: a check failed), "stale" (the
	// rule's record was another flow's), "error" (dropped); "" for other
	// rules.
	FastPath string
	OutPort  uint32
	Frame    []byte // the frame as the program left it
}

// TraceResult is what the switch does with one frame: the XDP program's
// decision and, for a frame it sends to userspace, the pipeline's trace.
type TraceResult struct {
	Port   string
	OFPort uint32
	Queue  int
	Frame  []byte
	XDP    XDPTrace
	// Pipeline is the trace through the flow tables, when XDP redirected
	// the frame to userspace; nil otherwise.
	Pipeline *flowtable.Trace
	// Outcome sums it up: the frame was sent (Pipeline.Outputs), given to
	// the host's stack, or dropped; Drop then names why: a DropReason's
	// name (the counter real traffic would count it under), or "xdp_drop"
	// for a drop rule the XDP program carried out.
	Outcome TraceOutcome
	Drop    string
	// Disagree says how the XDP program and the Go classifier disagreed on
	// this frame (key or rule), which a flow change in between can cause
	// and nothing else should; "" when they agree.
	Disagree string
}

// TraceOutcome is what became of a traced frame.
type TraceOutcome string

const (
	TraceSent   TraceOutcome = "output" // sent on one port or more
	TraceKernel TraceOutcome = "kernel" // XDP_PASS: to the host's stack
	TraceDrop   TraceOutcome = "drop"   // dropped: TraceResult.Drop says why
)

// traceRunner is the switch's dry-run instance of the XDP program, loaded on
// the first trace. It shares the live program's maps, the record maps a
// grow adds pages to among them, so it lives as long as the switch.
type traceRunner struct {
	mu   sync.Mutex
	objs *bpf.Objects
}

// testRun runs frame through the dry-run instance of live's program.
func (r *traceRunner) testRun(live *bpf.Objects, frame []byte, ifindex, queue int) (bpf.TestResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.objs == nil {
		objs, err := live.DryRunner()
		if err != nil {
			return bpf.TestResult{}, err
		}
		r.objs = objs
	}
	return r.objs.TestRun(frame, ifindex, queue)
}

// close drops the dry-run instance (the next trace loads another).
func (r *traceRunner) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.objs == nil {
		return nil
	}
	err := r.objs.Close()
	r.objs = nil
	return err
}

// Trace shows what the switch does with in.Frame arriving on in.Port's RX
// queue in.Queue, as ovs-appctl ofproto/trace does for Open vSwitch: the
// XDP program's decision, from a run of the loaded program with the live
// maps (BPF_PROG_TEST_RUN on a dry-run instance), then, for a frame it
// redirects, each table lookup, action and group of the pipeline and what
// comes out. Tracing changes nothing: no counters (port, rule, flow or
// table), no cache entries.
func (s *Switch) Trace(in TraceInput) (TraceResult, error) {
	res := TraceResult{Port: in.Port, Queue: in.Queue, Frame: in.Frame}
	if len(in.Frame) > bpf.MaxTestFrame {
		return res, fmt.Errorf("trace: %d-byte frame, at most %d: %w", len(in.Frame), bpf.MaxTestFrame, ErrInvalid)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return res, ErrClosed
	}
	p, ok := s.ports[in.Port]
	if !ok {
		s.mu.Unlock()
		return res, fmt.Errorf("trace: port %s: %w", in.Port, ErrNoSuchPort)
	}
	if !p.attached {
		s.mu.Unlock()
		return res, fmt.Errorf("trace: port %s is %s (%s): %w", in.Port, p.absentState(), p.absence, ErrNoSuchDevice)
	}
	ifindex, allocated := p.ifindex, p.state.Load().max
	res.OFPort = p.ofport
	s.mu.Unlock()
	if in.Queue < 0 || (allocated > 0 && in.Queue >= allocated) {
		return res, fmt.Errorf("trace: queue %d: port %s has queues 0..%d: %w", in.Queue, in.Port, allocated-1, ErrInvalid)
	}
	tr, err := s.tracer.testRun(s.bpf, in.Frame, ifindex, in.Queue)
	if err != nil {
		return res, fmt.Errorf("trace: %w", err)
	}
	t := s.table.Load()
	res.XDP = xdpTrace(&tr, t)

	var goKey flowtable.Key
	goStatus := flowtable.Extract(in.Frame, res.OFPort, &goKey)
	switch {
	case tr.UnknownPort:
	case tr.Malformed != (goStatus == flowtable.ParseMalformed):
		res.Disagree = fmt.Sprintf("the XDP parser says malformed=%v, the Go parser %v", tr.Malformed, goStatus == flowtable.ParseMalformed)
	case !tr.Malformed && flowtable.Key(tr.Key) != goKey:
		res.Disagree = "the XDP program and the Go parser extract different keys: " +
			flowtable.DescribeKey(&res.XDP.Key) + " / " + flowtable.DescribeKey(&goKey)
	case tr.Hit && res.XDP.Flow == nil:
		res.Disagree = fmt.Sprintf("the XDP rule (rank %#x) has no flow in the table", uint64(tr.Rank))
	case !tr.Hit && !tr.Malformed && t.Lookup(&goKey) != nil:
		res.Disagree = "no XDP rule matched, but a table-0 flow does"
	}
	res.Complete(t)
	if res.XDP.Verdict == XDPForward && res.Disagree == "" {
		// The fast path and the Go program must do the same to the frame.
		pl := res.Pipeline
		switch {
		case len(pl.Outputs) != 1 || !pl.Outputs[0].Output:
			res.Disagree = fmt.Sprintf("the XDP fast path sent the frame on ofport %d; the pipeline does otherwise", res.XDP.OutPort)
		case pl.Outputs[0].Port != res.XDP.OutPort:
			res.Disagree = fmt.Sprintf("the XDP fast path sent the frame on ofport %d, the pipeline on %d", res.XDP.OutPort, pl.Outputs[0].Port)
		case !bytes.Equal(pl.Outputs[0].Frame, res.XDP.Frame):
			res.Disagree = "the XDP fast path and the pipeline rewrote the frame differently: " +
				flowtable.DescribeFrame(res.XDP.Frame, 0) + " / " + flowtable.DescribeFrame(pl.Outputs[0].Frame, 0)
		}
	}
	return res, nil
}

// Complete fills in what follows from res.XDP: for a frame XDP redirected
// or forwarded, the pipeline's trace through t (for a forwarded one: what
// the fast path carried out, step by step), and the outcome. Switch.Trace calls it;
// a test double that decides XDP's part otherwise can call it too.
func (res *TraceResult) Complete(t *flowtable.Table) {
	if res.XDP.Verdict == XDPToUser || res.XDP.Verdict == XDPForward {
		res.Pipeline = t.Trace(res.Frame, res.OFPort)
	}
	res.Outcome, res.Drop = traceOutcome(res)
}

// traceOutcome sums up a trace as real traffic would count it.
func traceOutcome(res *TraceResult) (TraceOutcome, string) {
	if res.XDP.FastPath == bpf.FastPathError.String() {
		return TraceDrop, "xdp_forward_error"
	}
	switch res.XDP.Verdict {
	case XDPToHost:
		return TraceKernel, ""
	case XDPDropped:
		return TraceDrop, "xdp_drop"
	case XDPAborted:
		return TraceDrop, "xdp_aborted"
	case XDPForward:
		return TraceSent, ""
	}
	pl := res.Pipeline
	switch {
	case pl.Status != flowtable.ParseOK:
		return TraceDrop, DropMalformed.String()
	case pl.NoFlow:
		return TraceDrop, DropNoFlow.String()
	case pl.Kernel:
		return TraceDrop, DropKernelFlow.String()
	}
	for _, o := range pl.Outputs {
		if o.Output {
			return TraceSent, ""
		}
	}
	return TraceDrop, ProgramDrop(pl.Drop).String()
}

// xdpTrace reads a test run's result, naming the rule's flow from t.
func xdpTrace(tr *bpf.TestResult, t *flowtable.Table) XDPTrace {
	x := XDPTrace{Key: flowtable.Key(tr.Key), Rank: tr.Rank, MaskID: tr.MaskID, Masks: tr.Visited, Cached: tr.Cached,
		OutPort: tr.OutPort, Frame: tr.Frame}
	if tr.FastPath != bpf.FastPathNone {
		x.FastPath = tr.FastPath.String()
	}
	switch tr.Action {
	case bpf.ActionRedirect:
		x.Verdict = XDPToUser
		if tr.FastPath == bpf.FastPathForwarded {
			x.Verdict = XDPForward
		}
	case bpf.ActionPass:
		x.Verdict = XDPToHost
	case bpf.ActionDrop:
		x.Verdict = XDPDropped
	default:
		x.Verdict = XDPAborted
	}
	switch {
	case tr.UnknownPort:
		x.Reason = XDPReasonUnknownPort
	case tr.Malformed:
		x.Reason = XDPReasonMalformed
	case !tr.Hit:
		x.Reason = XDPReasonNoMatch
	case (tr.Verdict == steer.VerdictRedirect || tr.Verdict == steer.VerdictForward) && tr.Action == bpf.ActionPass:
		x.Reason = XDPReasonNoSocket
	default:
		x.Reason = XDPReasonRule
	}
	if tr.Hit {
		if e := t.Lookup(&x.Key); e != nil && e.Rank == tr.Rank {
			x.Flow = e.Flow
		}
	}
	return x
}
