package flowtable

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Packet is a frame being switched. Buf is the whole buffer the frame lives
// in (a UMEM chunk): the frame is Buf[Off:Off+Len], and the bytes before Off
// are headroom a VLAN push grows into. A program moves Off and changes Len
// when it pushes or pops a tag; the poller reads them back to build the TX
// descriptor.
type Packet struct {
	Buf    []byte
	Off    int
	Len    int
	InPort uint32 // ofport the frame arrived on (for in_port and the output:in_port skip)
}

// Frame returns the frame's bytes.
func (p *Packet) Frame() []byte { return p.Buf[p.Off : p.Off+p.Len] }

// OutputKind is what a program asks the poller to do at one step.
type OutputKind uint8

const (
	// OutEnd: the program is done. A frame no output took is freed.
	OutEnd OutputKind = iota
	// OutPort: transmit the frame, as it is now, on Output.Port.
	OutPort
	// OutDrop: count a drop for Output.Reason. For DropPortGone the program
	// goes on (one output was lost); for every other reason it stopped.
	OutDrop
	// OutKernel: the flow hands packets to the host stack. The XDP program
	// does that before the packet reaches userspace; a poller sees this only
	// when a packet raced a table update, and cannot pass it any more.
	OutKernel
	// OutClone: run the next Output.Span ops on a copy of the packet (with
	// RunTo, up to the returned pc + Span), then go on with the packet
	// itself at that pc + Span. Group buckets are clones.
	OutClone
)

// DropReason says why a program dropped a packet (or one output of it).
type DropReason uint8

const (
	DropNone       DropReason = iota
	DropActions               // the flow's action list is empty: drop
	DropDecTTLZero            // dec_ttl on a TTL or hop limit of 0 or 1
	DropPortGone              // output to a port that no longer exists
	DropTooBig                // no headroom or tailroom for a VLAN push
	DropTableMiss             // goto_table found no flow in that table
	DropTooDeep               // the pipeline went past MaxDepth or MaxResubmits
	DropKernel                // a kernel flow reached in userspace (resubmit back to table 0)
	NumDropReasons
)

var dropReasonNames = [NumDropReasons]string{"none", "actions", "dec_ttl_zero", "port_gone", "too_big", "table_miss", "too_deep", "kernel"}

func (r DropReason) String() string {
	if int(r) < len(dropReasonNames) {
		return dropReasonNames[r]
	}
	return fmt.Sprintf("drop_reason(%d)", uint8(r))
}

// Output is one step of a program's result.
type Output struct {
	Kind   OutputKind
	Reason DropReason // OutDrop
	// Last is set on an OutPort after which no action can send the packet
	// again: the poller transmits the frame itself. For an OutPort that is
	// not Last, it transmits a copy and resumes the program on the original.
	Last bool
	Port uint32 // OutPort: ofport; OutClone: how many ops the copy runs (Span)
	// Output has four fields, no more: the compiler keeps a struct of up
	// to four in registers, and a fifth put it in memory, where setting
	// Last stalled the load after it (about 7 ns a packet).
}

// Span is how many ops an OutClone's copy runs.
func (o Output) Span() int { return int(o.Port) }

// Program is a flow's action list compiled for the datapath: a flat list of
// ops (steer.Op, the encoding the XDP program shares) the poller runs with a
// switch, no interface calls, no allocations. A Program is immutable and may
// be run by any number of pollers at once.
type Program struct {
	ops      []steer.Op
	lastEmit int  // index of the last op that can send or lose a packet; -1 if none
	control  bool // has goto_table, resubmit or group: the pipeline runs it, not Run
}

// Len returns the number of ops: Run runs them all, RunTo up to an end.
func (p *Program) Len() int { return len(p.ops) }

// compiler builds a Program from actions, one descriptor's compile at a
// time.
type compiler struct {
	ports  PortResolver
	strict bool  // an output to an unknown port is an error, not a counted drop
	table  uint8 // the flow's table: resubmit's default
	ops    []steer.Op
}

func (c *compiler) emit(o steer.Op) error {
	c.ops = append(c.ops, o)
	return nil
}

func (c *compiler) emitMAC(code uint8, mac [6]byte) error {
	o := steer.Op{Code: code}
	copy(o.Arg[:6], mac[:])
	return c.emit(o)
}

func (c *compiler) emitIPv4(code uint8, a netip.Addr) error {
	if !a.Is4() {
		return fmt.Errorf("address %v is not IPv4: %w", a, ErrInvalid)
	}
	o := steer.Op{Code: code}
	b := a.As4()
	copy(o.Arg[:4], b[:])
	return c.emit(o)
}

// port resolves a port an action names. A name that does not resolve is an
// error wrapping ErrNoSuchPort when strict, else ok is false.
func (c *compiler) port(what, name string) (no uint32, ok bool, err error) {
	if no, ok := resolvePort(c.ports, name); ok {
		return no, true, nil
	}
	if c.strict {
		return 0, false, fmt.Errorf("%s %q: %w", what, name, ErrNoSuchPort)
	}
	return 0, false, nil
}

func (c *compiler) output(name string) error {
	no, ok, err := c.port("output to", name)
	if err != nil {
		return err
	}
	if !ok {
		return c.emit(steer.Op{Code: steer.OpGone})
	}
	return c.emit(steer.Op{Code: steer.OpOutput, Val: no})
}

// resubmit compiles resubmit; a port that is gone looks up with in_port 0,
// which only flows matching every port match.
func (c *compiler) resubmit(a *Action) error {
	o := steer.Op{Code: steer.OpResubmit, A: a.Table}
	if a.Table == TableCurrent {
		o.A = c.table
	}
	if a.Port != "" {
		no, _, err := c.port("resubmit to", a.Port)
		if err != nil {
			return err
		}
		o.Val = no
	}
	return c.emit(o)
}

// compileProgram compiles actions of a flow in table. Ports resolve through
// ports; a name that does not resolve is an error wrapping ErrNoSuchPort
// when strict (a flow being added), and otherwise compiles to a "port gone"
// output that counts a drop (a flow already installed whose port was
// removed). Actions must pass actionProblem; anything else is an error
// wrapping ErrInvalid.
func compileProgram(actions []Action, ports PortResolver, strict bool, table uint8) (Program, error) {
	return compileProgramInto(make([]steer.Op, 0, max(len(actions), 1)), actions, ports, strict, table)
}

// compileProgramInto is compileProgram appending the ops to buf[:0]: the
// Program's ops are buf's array when it has room.
func compileProgramInto(buf []steer.Op, actions []Action, ports PortResolver, strict bool, table uint8) (Program, error) {
	return (&compiler{}).compile(buf, actions, ports, strict, table)
}

// compile is compileProgramInto with c, which it resets: a bulk add
// reuses one compiler (it escapes to the heap through actionKinds).
func (c *compiler) compile(buf []steer.Op, actions []Action, ports PortResolver, strict bool, table uint8) (Program, error) {
	*c = compiler{ports: ports, strict: strict, table: table, ops: buf[:0]}
	if len(actions) == 0 {
		c.emit(steer.Op{Code: steer.OpDrop})
	}
	if _, msg := listProblem(actions); msg != "" {
		return Program{}, fmt.Errorf("%s: %w", msg, ErrInvalid)
	}
	for i := range actions {
		a := &actions[i]
		if msg := actionProblem(a); msg != "" {
			return Program{}, fmt.Errorf("action %d (%s): %s: %w", i+1, actionName(a.Type), msg, ErrInvalid)
		}
		if err := actionKinds[a.Type].compile(c, a); err != nil {
			return Program{}, err
		}
	}
	return newProgram(c.ops), nil
}

// newProgram wraps ops, finding the last op that can send or lose the
// packet and whether the ops need the pipeline.
func newProgram(ops []steer.Op) Program {
	p := Program{ops: ops, lastEmit: -1}
	for i := range ops {
		switch ops[i].Code {
		case steer.OpOutput, steer.OpInPort, steer.OpGone, steer.OpDrop, steer.OpClone:
			p.lastEmit = i
		case steer.OpGotoTable, steer.OpResubmit, steer.OpGroup:
			p.control = true
		}
	}
	return p
}

// resolvePort resolves a port reference (see PortRefOf). A reference by
// number resolves to no port: the caller binds numbers to names first
// (BindPortNumbers), so that flows keep their ports by name.
func resolvePort(ports PortResolver, ref string) (uint32, bool) {
	name, _ := ParsePortRef(ref)
	if ports == nil || name == "" {
		return 0, false
	}
	no, ok := ports(name)
	if !ok || no == 0 || no >= steer.MaxPorts {
		return 0, false
	}
	return no, true
}

// equal reports whether p and q do the same thing.
func (p *Program) equal(q *Program) bool {
	if len(p.ops) != len(q.ops) {
		return false
	}
	for i := range p.ops {
		if p.ops[i] != q.ops[i] {
			return false
		}
	}
	return true
}

// Run runs the program on pkt from op pc (0 for a new packet) up to the
// next output and returns it with the pc to resume at, or -1 when the
// program is done. lay must come from ExtractLayout on this frame; Run keeps
// it current across VLAN pushes and pops. The poller's loop:
//
//	for pc := 0; pc >= 0; {
//		var out Output
//		out, pc = prog.Run(&pkt, &lay, pc)
//		// OutPort: transmit (the frame itself if out.Last, else a copy)
//		// OutDrop: count out.Reason; OutKernel, OutEnd: nothing
//	}
//	// free the frame unless an output took it
//
// Semantics follow Open vSwitch: each output sends the packet as rewritten
// so far; output:PORT to the port the packet came in on is skipped (only the
// in_port action sends a packet back); rewrites whose headers the frame
// lacks (mod_nw_* on a non-IPv4 frame, mod_tp_* without a TCP/UDP header,
// as in a later fragment) do nothing. Run never allocates. Ops that need the
// pipeline (goto_table, resubmit, group) are not run here: a program with
// them runs as the pipeline translates it.
func (p *Program) Run(pkt *Packet, lay *Layout, pc int) (Output, int) {
	return p.RunTo(pkt, lay, pc, len(p.ops))
}

// RunTo is Run that stops at op end: for the ops of a clone (OutClone),
// which run on a copy of the packet up to the end of the clone.
func (p *Program) RunTo(pkt *Packet, lay *Layout, pc, end int) (Output, int) {
	for ; pc >= 0 && pc < end; pc++ {
		o := &p.ops[pc]
		switch o.Code {
		case steer.OpDrop:
			r := DropReason(o.A)
			if r == DropNone {
				r = DropActions
			}
			return Output{Kind: OutDrop, Reason: r}, -1
		case steer.OpOutput:
			if o.Val == pkt.InPort {
				continue
			}
			return p.emit(Output{Kind: OutPort, Port: o.Val}, pc, end, pkt.InPort)
		case steer.OpInPort:
			return p.emit(Output{Kind: OutPort, Port: pkt.InPort}, pc, end, pkt.InPort)
		case steer.OpGone:
			return p.emit(Output{Kind: OutDrop, Reason: DropPortGone}, pc, end, pkt.InPort)
		case steer.OpKernel:
			return Output{Kind: OutKernel}, -1
		case steer.OpClone:
			return Output{Kind: OutClone, Port: o.Val}, pc + 1
		case steer.OpSetDlSrc:
			if pkt.Len >= ethHeaderLen {
				copy(pkt.Buf[pkt.Off+6:pkt.Off+12], o.Arg[:6])
			}
		case steer.OpSetDlDst:
			if pkt.Len >= ethHeaderLen {
				copy(pkt.Buf[pkt.Off:pkt.Off+6], o.Arg[:6])
			}
		case steer.OpSetNwSrc:
			rwNwAddr(pkt.Frame(), lay, 12, binary.BigEndian.Uint32(o.Arg[:4]))
		case steer.OpSetNwDst:
			rwNwAddr(pkt.Frame(), lay, 16, binary.BigEndian.Uint32(o.Arg[:4]))
		case steer.OpSetNwTos:
			rwNwTos(pkt.Frame(), lay, o.A, nwTosMask)
		case steer.OpSetNwEcn:
			rwNwTos(pkt.Frame(), lay, o.A, nwEcnMask)
		case steer.OpSetTpSrc:
			rwTpPort(pkt.Frame(), lay, 0, o.B)
		case steer.OpSetTpDst:
			rwTpPort(pkt.Frame(), lay, 2, o.B)
		case steer.OpPushVLAN:
			var tci uint16
			if f := pkt.Frame(); rwHasVLANTag(f) {
				tci = binary.BigEndian.Uint16(f[14:]) &^ vlanDEI
			}
			if !rwPushVLAN(pkt, lay, o.B, tci) {
				return Output{Kind: OutDrop, Reason: DropTooBig}, -1
			}
		case steer.OpSetVlanVID:
			if f := pkt.Frame(); rwHasVLANTag(f) {
				tci := binary.BigEndian.Uint16(f[14:])
				binary.BigEndian.PutUint16(f[14:], tci&0xf000|o.B)
			} else if !rwPushVLAN(pkt, lay, etherTypeVLAN, o.B) {
				return Output{Kind: OutDrop, Reason: DropTooBig}, -1
			}
		case steer.OpSetVlanPCP:
			if f := pkt.Frame(); rwHasVLANTag(f) {
				tci := binary.BigEndian.Uint16(f[14:])
				binary.BigEndian.PutUint16(f[14:], tci&0x1fff|uint16(o.A)<<13)
			} else if !rwPushVLAN(pkt, lay, etherTypeVLAN, uint16(o.A)<<13) {
				return Output{Kind: OutDrop, Reason: DropTooBig}, -1
			}
		case steer.OpStripVLAN:
			rwPopVLAN(pkt, lay)
		case steer.OpDecTTL:
			if !rwDecTTL(pkt.Frame(), lay) {
				return Output{Kind: OutDrop, Reason: DropDecTTLZero}, -1
			}
		}
	}
	return Output{Kind: OutEnd}, -1
}

// emit returns out for the op at pc, marked Last (and the program ended) when
// no later op before end can send, copy or lose the packet.
func (p *Program) emit(out Output, pc, end int, inPort uint32) (Output, int) {
	for j := pc + 1; j <= p.lastEmit && j < end; j++ {
		switch o := &p.ops[j]; o.Code {
		case steer.OpOutput:
			if o.Val != inPort {
				return out, pc + 1
			}
		case steer.OpInPort, steer.OpGone, steer.OpClone:
			return out, pc + 1
		}
	}
	out.Last = out.Kind == OutPort
	return out, -1
}

func rwHasVLANTag(f []byte) bool {
	return len(f) >= ethHeaderLen+vlanTagLen && isVLANType(binary.BigEndian.Uint16(f[12:]))
}

// rwPushVLAN inserts a tag (tpid, tci) after the MAC addresses, growing the
// frame into the headroom, or else into the tailroom. It reports false when
// neither has 4 bytes.
func rwPushVLAN(pkt *Packet, lay *Layout, tpid, tci uint16) bool {
	if pkt.Len < ethHeaderLen {
		return true // not a frame a key was extracted from; leave it alone
	}
	b := pkt.Buf
	switch {
	case pkt.Off >= vlanTagLen:
		copy(b[pkt.Off-vlanTagLen:], b[pkt.Off:pkt.Off+12])
		pkt.Off -= vlanTagLen
	case pkt.Off+pkt.Len+vlanTagLen <= len(b):
		copy(b[pkt.Off+12+vlanTagLen:], b[pkt.Off+12:pkt.Off+pkt.Len])
	default:
		return false
	}
	pkt.Len += vlanTagLen
	binary.BigEndian.PutUint16(b[pkt.Off+12:], tpid)
	binary.BigEndian.PutUint16(b[pkt.Off+14:], tci)
	rwShiftLayout(lay, vlanTagLen)
	return true
}

// rwPopVLAN removes the outer tag, if the frame has one.
func rwPopVLAN(pkt *Packet, lay *Layout) {
	if !rwHasVLANTag(pkt.Frame()) {
		return
	}
	b := pkt.Buf
	copy(b[pkt.Off+vlanTagLen:pkt.Off+vlanTagLen+12], b[pkt.Off:pkt.Off+12])
	pkt.Off += vlanTagLen
	pkt.Len -= vlanTagLen
	rwShiftLayout(lay, -vlanTagLen)
}

func rwShiftLayout(lay *Layout, d int) {
	if lay.L3Type != L3None {
		lay.L3 += d
	}
	if lay.L4Type != L4None {
		lay.L4 += d
	}
}

// rwIPv4Header returns the offset of the IPv4 header in f, or -1.
func rwIPv4Header(f []byte, lay *Layout) int {
	if lay.L3Type != L3IPv4 || lay.L3 < 0 || lay.L3+ipv4MinLen > len(f) {
		return -1
	}
	return lay.L3
}

// rwL4Checksum returns the offset of the TCP or UDP checksum in f, or -1.
func rwL4Checksum(f []byte, lay *Layout) int {
	var at int
	switch lay.L4Type {
	case L4TCP:
		at = lay.L4 + 16
	case L4UDP:
		at = lay.L4 + 6
	default:
		return -1
	}
	if lay.L4 < 0 || at+2 > len(f) {
		return -1
	}
	return at
}

// rwPatchL4 patches the TCP or UDP checksum at f[at:] for a change of a
// covered value. A UDP checksum of 0 over IPv4 means "none" and stays 0;
// a computed UDP checksum of 0 is sent as 0xffff (RFC 768).
func rwPatchL4(f []byte, lay *Layout, at int, old, new uint32, wide bool) {
	c := binary.BigEndian.Uint16(f[at:])
	if lay.L4Type == L4UDP && c == 0 && lay.L3Type == L3IPv4 {
		return
	}
	if wide {
		c = csumReplace32(c, old, new)
	} else {
		c = csumReplace16(c, uint16(old), uint16(new))
	}
	if lay.L4Type == L4UDP && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(f[at:], c)
}

// rwNwAddr rewrites the IPv4 source (field 12) or destination (16) address
// and patches the IP checksum and, through the pseudo-header, the TCP/UDP
// checksum.
func rwNwAddr(f []byte, lay *Layout, field int, addr uint32) {
	ip := rwIPv4Header(f, lay)
	if ip < 0 {
		return
	}
	old := binary.BigEndian.Uint32(f[ip+field:])
	if old == addr {
		return
	}
	binary.BigEndian.PutUint32(f[ip+field:], addr)
	patchCsum32(f[ip+10:], old, addr)
	if at := rwL4Checksum(f, lay); at >= 0 {
		rwPatchL4(f, lay, at, old, addr, true)
	}
}

// rwNwTos sets the bits mask selects (the DSCP bits, or the ECN bits) of
// the IPv4 TOS or the IPv6 traffic class to those of tos, keeping the
// others.
func rwNwTos(f []byte, lay *Layout, tos, mask uint8) {
	if ip := rwIPv4Header(f, lay); ip >= 0 {
		old := binary.BigEndian.Uint16(f[ip:])
		f[ip+1] = f[ip+1]&^mask | tos&mask
		patchCsum16(f[ip+10:], old, binary.BigEndian.Uint16(f[ip:]))
		return
	}
	if lay.L3Type == L3IPv6 && lay.L3 >= 0 && lay.L3+ipv6HeaderLen <= len(f) {
		ip := lay.L3
		tc := f[ip]<<4 | f[ip+1]>>4
		tc = tc&^mask | tos&mask
		f[ip] = f[ip]&0xf0 | tc>>4
		f[ip+1] = f[ip+1]&0x0f | tc<<4
	}
}

// rwTpPort rewrites the TCP/UDP source (field 0) or destination (2) port.
// The pseudo-header does not change, so IPv4 and IPv6 patch the same way.
func rwTpPort(f []byte, lay *Layout, field int, port uint16) {
	at := rwL4Checksum(f, lay)
	if at < 0 {
		return
	}
	old := binary.BigEndian.Uint16(f[lay.L4+field:])
	if old == port {
		return
	}
	binary.BigEndian.PutUint16(f[lay.L4+field:], port)
	rwPatchL4(f, lay, at, uint32(old), uint32(port), false)
}

// rwDecTTL decrements the IPv4 TTL or IPv6 hop limit. It reports false (drop)
// when that is 0 or 1. Other frames pass unchanged.
func rwDecTTL(f []byte, lay *Layout) bool {
	if ip := rwIPv4Header(f, lay); ip >= 0 {
		if f[ip+8] <= 1 {
			return false
		}
		old := binary.BigEndian.Uint16(f[ip+8:])
		f[ip+8]--
		patchCsum16(f[ip+10:], old, old-0x100)
		return true
	}
	if lay.L3Type == L3IPv6 && lay.L3 >= 0 && lay.L3+ipv6HeaderLen <= len(f) {
		if f[lay.L3+7] <= 1 {
			return false
		}
		f[lay.L3+7]--
	}
	return true
}
