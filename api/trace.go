package api

// TraceRequest is the body of POST /v1/trace: a packet to trace, as
// ovs-appctl ofproto/trace takes one. Give either Flow, the packet in match
// syntax with its input port,
//
//	{"flow": "in_port=p0,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=7999"}
//
// (the switch builds a frame with those fields, zero elsewhere, and every
// length and checksum right), or Packet, the frame in hex, with InPort:
//
//	{"in_port": "p0", "packet": "0200000000020200000000010800..."}
//
// Queue is the RX queue the frame arrives on (default 0).
type TraceRequest struct {
	Flow   string `json:"flow,omitempty"`
	Packet string `json:"packet,omitempty"`
	InPort string `json:"in_port,omitempty"`
	Queue  int    `json:"queue,omitempty"`
}

// Trace results: what became of the packet.
const (
	TraceResultOutput = "output" // sent on one port or more (Outputs)
	TraceResultDrop   = "drop"   // dropped: Drop says why
	TraceResultKernel = "kernel" // given to the host's stack (XDP_PASS)
)

// Trace answers POST /v1/trace: what the switch does with the packet. The
// XDP part is what the loaded program decided, run on the frame with the
// live maps (BPF_PROG_TEST_RUN); the pipeline part, present when XDP sent
// the frame to userspace, is each table lookup, action and group on the
// way, as ofproto/trace prints them. Tracing changes nothing: no counters,
// no cache entries.
type Trace struct {
	InPort string `json:"in_port"`
	OFPort uint32 `json:"ofport"`
	Queue  int    `json:"queue"`
	Packet string `json:"packet"` // the frame traced, in hex
	// Flow describes the packet in match syntax: every field a flow can
	// match, as the switch extracted them.
	Flow string   `json:"flow"`
	XDP  TraceXDP `json:"xdp"`
	// Steps are the pipeline's steps; empty unless XDP redirected the
	// frame.
	Steps   []TraceStep   `json:"steps"`
	Outputs []TraceOutput `json:"outputs"` // what came out, in order
	Result  string        `json:"result"`  // TraceResultOutput, TraceResultDrop or TraceResultKernel
	// Drop is why the packet went nowhere, with result "drop": a drop
	// reason of the port counters (action_drop, dec_ttl_zero, port_gone,
	// too_big, table_miss, too_deep, ...), "xdp_drop" for a drop rule XDP
	// carried out, or "xdp_forward_error" for a frame the fast path
	// dropped.
	Drop string `json:"drop,omitempty"`
	// Disagree is set when the XDP program and the switch's own classifier
	// did not agree on this packet (a flow change between the two looks
	// can cause it, nothing else should): what differed.
	Disagree string `json:"disagree,omitempty"`
}

// TraceXDP is the XDP program's decision.
type TraceXDP struct {
	// Verdict is "redirect" (to the port's AF_XDP socket: the pipeline
	// decides), "forward" (the XDP fast path carried out the flow's actions
	// and sent the frame: the steps show what it did), "pass" (to the
	// host's stack), "drop" or "aborted".
	Verdict string `json:"verdict"`
	// Reason is "rule" (a steering rule matched: Flow), "no_match" (no rule
	// matched: unmatched traffic is the kernel's), "malformed" (the parser
	// refused the headers), "no_socket" (redirect wanted, the queue has no
	// socket) or "unknown_port".
	Reason string `json:"reason"`
	Flow   *Flow  `json:"flow,omitempty"` // the table-0 flow whose rule matched
	Masks  int    `json:"masks"`          // masks the classifier looked up
	Cached bool   `json:"cached"`         // the XDP program's exact-match cache answered (masks is 0)
	// FastPath is what the XDP fast path did with a forward rule's frame:
	// "forwarded", "user" (a check failed: handed to userspace untouched),
	// "stale" (the rule's record was another flow's) or "error" (dropped);
	// absent for other rules.
	FastPath string `json:"fast_path,omitempty"`
}

// TraceStep is one step of the pipeline, as ofproto/trace shows it. Kind
// says which fields are set:
//
//   - "lookup": Table, Flow (absent on a miss: the table's miss);
//   - "action": Action, and Packet, the frame after it (absent when the
//     action dropped this copy);
//   - "group": Group, Bucket (the bucket chosen; -1: no live bucket);
//   - "bucket": Group, Bucket: the bucket's actions follow, one deeper;
//   - "note": Note.
type TraceStep struct {
	Kind   string `json:"kind"`
	Depth  int    `json:"depth"`
	Table  *uint8 `json:"table,omitempty"`
	Flow   *Flow  `json:"flow,omitempty"`
	Action string `json:"action,omitempty"`
	Packet string `json:"packet,omitempty"`
	// PacketFlow is Packet in match syntax.
	PacketFlow string  `json:"packet_flow,omitempty"`
	Group      *uint32 `json:"group,omitempty"`
	Bucket     *int    `json:"bucket,omitempty"`
	Note       string  `json:"note,omitempty"`
}

// TraceOutput is one thing that came out of the pipeline: a frame sent on
// Port, or a copy dropped (Drop) or given to the kernel ("kernel").
type TraceOutput struct {
	Port   string `json:"port,omitempty"`
	OFPort uint32 `json:"ofport,omitempty"`
	Packet string `json:"packet,omitempty"` // the frame as sent, in hex
	Flow   string `json:"flow,omitempty"`   // Packet in match syntax
	Drop   string `json:"drop,omitempty"`
}
