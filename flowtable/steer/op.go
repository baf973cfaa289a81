package steer

import "fmt"

// Op is one compiled action of a flow: the encoding flowtable's programs
// run in userspace, and the one the XDP fast path runs in the kernel
// (struct xvs_op). It is pointer-free and comparable, so programs compare
// with ==. What A, B, Val and Arg hold depends on Code (see the Op*
// constants); B and Val are in host byte order, Arg in network byte order.
type Op struct {
	Code uint8
	A    uint8    // a byte operand: TOS, PCP, table
	B    uint16   // a 16-bit operand: L4 port, TPID, VID
	Val  uint32   // a 32-bit operand: ofport, group ID, clone end
	Arg  [16]byte // MAC in [0:6], IPv4 in [0:4], IPv6 in all 16
}

// OpLen is the size of an Op in bytes.
const OpLen = 24

// Opcodes (enum xvs_opcode). Codes below OpUserspace are the record
// semantics both executors share; codes from OpUserspace on exist only in
// userspace programs (they need the whole pipeline, or several frames) and
// never appear in a kernel record.
const (
	OpDrop       = 0  // drop the packet (the empty action list)
	OpOutput     = 1  // Val: ofport; skipped when it is the input port
	OpInPort     = 2  // send back out of the input port
	OpGone       = 3  // output to a port that no longer exists: counted drop, go on
	OpKernel     = 4  // hand to the host stack
	OpSetDlSrc   = 5  // Arg[0:6]
	OpSetDlDst   = 6  // Arg[0:6]
	OpSetNwSrc   = 7  // Arg[0:4], IPv4 only
	OpSetNwDst   = 8  // Arg[0:4], IPv4 only
	OpSetNwTos   = 9  // A: the DSCP bits (TOS & 0xfc), IPv4 or IPv6
	OpSetTpSrc   = 10 // B: TCP/UDP source port
	OpSetTpDst   = 11 // B: TCP/UDP destination port
	OpPushVLAN   = 12 // B: TPID
	OpSetVlanVID = 13 // B: VID (pushes a tag on an untagged frame)
	OpSetVlanPCP = 14 // A: PCP (pushes a tag on an untagged frame)
	OpStripVLAN  = 15 // pop the outer tag
	OpDecTTL     = 16 // decrement the TTL or hop limit; drop at 0 or 1
	OpSetNwEcn   = 17 // A: the ECN bits (0..3) of the IPv4 TOS or IPv6 traffic class

	OpUserspace = 128
	OpGotoTable = 128 // A: table; the lookup continues there (last action)
	OpResubmit  = 129 // A: table; Val: ofport for the lookup, 0 = the packet's
	OpGroup     = 130 // Val: group ID
	OpClone     = 131 // Val: end; ops up to end run on a copy of the packet
)

// MaxOps is the most ops an action record holds. The longest list of
// distinct rewrites XDP does (both MACs, both IPv4 addresses, both L4
// ports, TOS, TTL, a VLAN push with its VID and PCP) and its output is 12
// ops; 16 leaves room for a few more while a record stays small (400
// bytes) and the interpreter's loop short for the verifier.
const MaxOps = 16

// MaxRecords is the default number of action record slots in the kernel:
// how many flows the fast path runs at once, with room for the records of
// flows being changed (a record is rewritten only once no program run can
// still read it). The loader may size the maps for more, up to
// RecordSlotsLimit (bpf.Options.Records, xvsd --fast-path-flows): each slot
// costs RecordLen bytes of kernel memory, and 16 more per CPU for its
// counters.
const MaxRecords = 16384

// RecordSlotsLimit is the most action record slots the kernel's maps may
// be sized for (420 MB of records).
const RecordSlotsLimit = 1 << 20

// RecordLen is the size of a Record in bytes.
const RecordLen = 400

// Record flags: what a record's ops touch, so the XDP program can tell
// before it writes anything whether a frame is one it must hand to
// userspace instead.
const (
	RecL4 = 0x01 // an op writes the TCP/UDP header or its checksum (mod_nw_src/dst, mod_tp_src/dst)
	RecTp = 0x02 // an op rewrites a TCP/UDP port (mod_tp_src/dst)
)

// Record is a flow's action list as the XDP fast path runs it (struct
// xvs_record): rewrites, then exactly one output or in_port. Ops are the
// program's own ops, with the semantics of flowtable's Program.Run; the
// other fields are derived from them by NewRecord. A record in the kernel
// is never written while a rule points at it: a changed flow gets a new
// record and its rule is repointed.
type Record struct {
	Flow   uint64 // the flow whose actions these are; a rule acts on a record only if it names the same flow
	N      uint8  // ops in use, 1..MaxOps
	DecTTL uint8  // how many ops are dec_ttl: a frame whose TTL is not above it goes to userspace
	Grow   uint8  // bytes the VLAN pushes may add in front of the frame: the headroom needed
	Flags  uint8  // Rec*
	_      uint32
	Ops    [MaxOps]Op
}

// Problem says why ops cannot be a record: Op is the index of the op at
// fault (-1 for the list as a whole) and Reason a short token without
// spaces, commas or equals signs, as dump-flows shows it ("several_outputs").
type Problem struct {
	Op     int
	Reason string
}

func (p *Problem) Error() string {
	if p.Op < 0 {
		return "not for the XDP fast path: " + p.Reason
	}
	return fmt.Sprintf("op %d not for the XDP fast path: %s", p.Op, p.Reason)
}

// Reasons of a Problem.
const (
	ReasonNoOutput       = "no_output"        // no output: nothing to forward
	ReasonOutputs        = "several_outputs"  // more than one output
	ReasonAfterOutput    = "after_output"     // actions after the output
	ReasonTooManyActions = "too_many_actions" // more than MaxOps ops
	ReasonPortGone       = "port_gone"        // an output to a port that does not exist
	ReasonUserspace      = "userspace_action" // an op only userspace runs (Problem.Op says which)
)

// recordOp says what the XDP program does with each code in a record:
// rewrite (run it and go on) or emit (the one output, last).
var recordOp = [OpUserspace]uint8{
	OpOutput: opEmit, OpInPort: opEmit,
	OpSetDlSrc: opRewrite, OpSetDlDst: opRewrite, OpSetNwSrc: opRewrite, OpSetNwDst: opRewrite,
	OpSetNwTos: opRewrite, OpSetTpSrc: opRewrite, OpSetTpDst: opRewrite, OpPushVLAN: opRewrite,
	OpSetVlanVID: opRewrite, OpSetVlanPCP: opRewrite, OpStripVLAN: opRewrite, OpDecTTL: opRewrite,
	OpSetNwEcn: opRewrite,
}

const (
	opNone = iota
	opRewrite
	opEmit
)

// NewRecord compiles ops, a flow's program, into the record the XDP program
// runs for flow, or says why it cannot: every op but the last must be a
// rewrite XDP does, and the last the one output or in_port.
func NewRecord(flow uint64, ops []Op) (Record, *Problem) {
	var r Record
	if pr := r.Compile(flow, ops); pr != nil {
		return Record{}, pr
	}
	return r, nil
}

// Compile sets r to the record NewRecord returns for flow and ops, in
// place (a bulk install writes 160k records of 400 bytes into a buffer:
// returned by value, each was copied twice on its way). When ops cannot be
// a record it says why and leaves r as it was.
func (r *Record) Compile(flow uint64, ops []Op) *Problem {
	if pr := CheckRecord(ops); pr != nil {
		return pr
	}
	*r = Record{Flow: flow, N: uint8(len(ops))}
	copy(r.Ops[:], ops)
	for i := range ops {
		switch ops[i].Code {
		case OpDecTTL:
			r.DecTTL++
		case OpPushVLAN, OpSetVlanVID, OpSetVlanPCP:
			r.Grow += 4
		case OpSetNwSrc, OpSetNwDst:
			r.Flags |= RecL4
		case OpSetTpSrc, OpSetTpDst:
			r.Flags |= RecL4 | RecTp
		}
	}
	return nil
}

// CheckRecord says why ops cannot be a record, or returns nil when they
// can: NewRecord's checks, without building the record.
func CheckRecord(ops []Op) *Problem {
	emits := 0
	for i := range ops {
		switch c := ops[i].Code; {
		case c == OpGone:
			return &Problem{i, ReasonPortGone}
		case c >= OpUserspace || recordOp[c] == opNone:
			return &Problem{i, ReasonUserspace}
		case recordOp[c] == opEmit:
			emits++
		}
	}
	switch {
	case emits == 0:
		return &Problem{-1, ReasonNoOutput}
	case emits > 1:
		return &Problem{-1, ReasonOutputs}
	case recordOp[ops[len(ops)-1].Code] != opEmit:
		return &Problem{-1, ReasonAfterOutput}
	case len(ops) > MaxOps:
		return &Problem{-1, ReasonTooManyActions}
	}
	return nil
}

// Output returns the ofport of the record's output, or 0 for in_port.
func (r *Record) Output() uint32 {
	if r.N == 0 {
		return 0
	}
	if o := &r.Ops[r.N-1]; o.Code == OpOutput {
		return o.Val
	}
	return 0
}
