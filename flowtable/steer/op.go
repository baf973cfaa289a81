package steer

// Op is one compiled action of a flow: the encoding flowtable's programs
// run in userspace, and the one an XDP fast path runs in the kernel (struct
// xvs_op). It is pointer-free and comparable, so programs compare with ==.
// What A, B, Val and Arg hold depends on Code (see the Op* constants).
type Op struct {
	Code uint8
	A    uint8    // a byte operand: TOS, PCP, table
	B    uint16   // a 16-bit operand: L4 port, TPID, VID
	Val  uint32   // a 32-bit operand: ofport, group ID, clone end
	Arg  [16]byte // MAC in [0:6], IPv4 in [0:4], IPv6 in all 16
}

// OpLen is the size of an Op in bytes.
const OpLen = 24

// Opcodes. Codes below OpUserspace are the record semantics both executors
// share; codes from OpUserspace on exist only in userspace programs (they
// need the whole pipeline, or several frames) and never appear in a kernel
// record.
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
