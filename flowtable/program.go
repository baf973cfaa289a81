package flowtable

import (
	"encoding/binary"
	"fmt"

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
)

// DropReason says why a program dropped a packet (or one output of it).
type DropReason uint8

const (
	DropNone       DropReason = iota
	DropActions               // the flow's action list is empty: drop
	DropDecTTLZero            // dec_ttl on a TTL or hop limit of 0 or 1
	DropPortGone              // output to a port that no longer exists
	DropTooBig                // no headroom or tailroom for a VLAN push
)

var dropReasonNames = [...]string{"none", "actions", "dec_ttl_zero", "port_gone", "too_big"}

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
	Port uint32 // OutPort: ofport
}

type opcode uint8

const (
	opDrop opcode = iota
	opOutput
	opInPort
	opGone // output to a port that no longer resolves
	opKernel
	opSetDlSrc
	opSetDlDst
	opSetNwSrc
	opSetNwDst
	opSetNwTos
	opSetTpSrc
	opSetTpDst
	opPushVLAN
	opSetVlanVID
	opSetVlanPCP
	opStripVLAN
	opDecTTL
)

// op is one compiled action: pointer-free and comparable, so programs are
// compared with ==, element by element.
type op struct {
	code opcode
	arg  [6]byte // MAC, or IPv4 address in arg[0:4]
	val  uint16  // TOS, port, TPID, VID, PCP
	port uint32  // opOutput: ofport
}

// Program is a flow's action list compiled for the datapath: a flat list of
// ops the poller runs with a switch, no interface calls, no allocations.
// A Program is immutable and may be run by any number of pollers at once.
type Program struct {
	ops      []op
	lastEmit int // index of the last op that can send or lose a packet; -1 if none
}

// compileProgram compiles actions. Output ports resolve through ports; a name
// that does not resolve is an error wrapping ErrNoSuchPort when strict (a
// flow being added), and otherwise compiles to a "port gone" output that
// counts a drop (a flow already installed whose port was removed).
func compileProgram(actions []Action, ports PortResolver, strict bool) (Program, error) {
	p := Program{ops: make([]op, 0, max(len(actions), 1)), lastEmit: -1}
	if len(actions) == 0 {
		p.ops = append(p.ops, op{code: opDrop})
		p.lastEmit = 0
		return p, nil
	}
	for i := range actions {
		a := &actions[i]
		var o op
		switch a.Type {
		case ActOutput:
			if no, ok := resolvePort(ports, a.Port); ok {
				o = op{code: opOutput, port: no}
			} else if strict {
				return Program{}, fmt.Errorf("output to %q: %w", a.Port, ErrNoSuchPort)
			} else {
				o = op{code: opGone}
			}
		case ActInPort:
			o = op{code: opInPort}
		case ActKernel:
			if len(actions) != 1 {
				return Program{}, fmt.Errorf("kernel must be the only action: %w", ErrInvalid)
			}
			o = op{code: opKernel}
		case ActSetDlSrc, ActSetDlDst:
			o = op{code: opSetDlSrc, arg: a.MAC}
			if a.Type == ActSetDlDst {
				o.code = opSetDlDst
			}
		case ActSetNwSrc, ActSetNwDst:
			if !a.Addr.Is4() {
				return Program{}, fmt.Errorf("action %d: address %v is not IPv4: %w", i+1, a.Addr, ErrInvalid)
			}
			o = op{code: opSetNwSrc}
			if a.Type == ActSetNwDst {
				o.code = opSetNwDst
			}
			b := a.Addr.As4()
			copy(o.arg[:4], b[:])
		case ActSetNwTos:
			if a.Value > 0xff || a.Value&3 != 0 {
				return Program{}, fmt.Errorf("action %d: tos %#x: ECN bits must be zero: %w", i+1, a.Value, ErrInvalid)
			}
			o = op{code: opSetNwTos, val: a.Value}
		case ActSetTpSrc:
			o = op{code: opSetTpSrc, val: a.Value}
		case ActSetTpDst:
			o = op{code: opSetTpDst, val: a.Value}
		case ActPushVLAN:
			if a.Value != etherTypeVLAN && a.Value != etherTypeQinQ {
				return Program{}, fmt.Errorf("action %d: push_vlan ethertype %#x: %w", i+1, a.Value, ErrInvalid)
			}
			o = op{code: opPushVLAN, val: a.Value}
		case ActSetVlanVID:
			if a.Value > 0x0fff {
				return Program{}, fmt.Errorf("action %d: vlan vid %d: %w", i+1, a.Value, ErrInvalid)
			}
			o = op{code: opSetVlanVID, val: a.Value}
		case ActSetVlanPCP:
			if a.Value > 7 {
				return Program{}, fmt.Errorf("action %d: vlan pcp %d: %w", i+1, a.Value, ErrInvalid)
			}
			o = op{code: opSetVlanPCP, val: a.Value}
		case ActStripVLAN:
			o = op{code: opStripVLAN}
		case ActDecTTL:
			o = op{code: opDecTTL}
		default:
			return Program{}, fmt.Errorf("action %d: unknown type %d: %w", i+1, a.Type, ErrInvalid)
		}
		if o.code == opOutput || o.code == opInPort || o.code == opGone {
			p.lastEmit = len(p.ops)
		}
		p.ops = append(p.ops, o)
	}
	return p, nil
}

func resolvePort(ports PortResolver, name string) (uint32, bool) {
	if ports == nil {
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
// as in a later fragment) do nothing. Run never allocates.
func (p *Program) Run(pkt *Packet, lay *Layout, pc int) (Output, int) {
	for ; pc >= 0 && pc < len(p.ops); pc++ {
		o := &p.ops[pc]
		switch o.code {
		case opDrop:
			return Output{Kind: OutDrop, Reason: DropActions}, -1
		case opOutput:
			if o.port == pkt.InPort {
				continue
			}
			return p.emit(Output{Kind: OutPort, Port: o.port}, pc, pkt.InPort)
		case opInPort:
			return p.emit(Output{Kind: OutPort, Port: pkt.InPort}, pc, pkt.InPort)
		case opGone:
			return p.emit(Output{Kind: OutDrop, Reason: DropPortGone}, pc, pkt.InPort)
		case opKernel:
			return Output{Kind: OutKernel}, -1
		case opSetDlSrc:
			if pkt.Len >= ethHeaderLen {
				copy(pkt.Buf[pkt.Off+6:pkt.Off+12], o.arg[:])
			}
		case opSetDlDst:
			if pkt.Len >= ethHeaderLen {
				copy(pkt.Buf[pkt.Off:pkt.Off+6], o.arg[:])
			}
		case opSetNwSrc:
			rwNwAddr(pkt.Frame(), lay, 12, binary.BigEndian.Uint32(o.arg[:4]))
		case opSetNwDst:
			rwNwAddr(pkt.Frame(), lay, 16, binary.BigEndian.Uint32(o.arg[:4]))
		case opSetNwTos:
			rwNwTos(pkt.Frame(), lay, uint8(o.val))
		case opSetTpSrc:
			rwTpPort(pkt.Frame(), lay, 0, o.val)
		case opSetTpDst:
			rwTpPort(pkt.Frame(), lay, 2, o.val)
		case opPushVLAN:
			var tci uint16
			if f := pkt.Frame(); rwHasVLANTag(f) {
				tci = binary.BigEndian.Uint16(f[14:]) &^ vlanDEI
			}
			if !rwPushVLAN(pkt, lay, o.val, tci) {
				return Output{Kind: OutDrop, Reason: DropTooBig}, -1
			}
		case opSetVlanVID:
			if f := pkt.Frame(); rwHasVLANTag(f) {
				tci := binary.BigEndian.Uint16(f[14:])
				binary.BigEndian.PutUint16(f[14:], tci&0xf000|o.val)
			} else if !rwPushVLAN(pkt, lay, etherTypeVLAN, o.val) {
				return Output{Kind: OutDrop, Reason: DropTooBig}, -1
			}
		case opSetVlanPCP:
			if f := pkt.Frame(); rwHasVLANTag(f) {
				tci := binary.BigEndian.Uint16(f[14:])
				binary.BigEndian.PutUint16(f[14:], tci&0x1fff|o.val<<13)
			} else if !rwPushVLAN(pkt, lay, etherTypeVLAN, o.val<<13) {
				return Output{Kind: OutDrop, Reason: DropTooBig}, -1
			}
		case opStripVLAN:
			rwPopVLAN(pkt, lay)
		case opDecTTL:
			if !rwDecTTL(pkt.Frame(), lay) {
				return Output{Kind: OutDrop, Reason: DropDecTTLZero}, -1
			}
		}
	}
	return Output{Kind: OutEnd}, -1
}

// emit returns out for the op at pc, marked Last (and the program ended) when
// no later op can send or lose the packet.
func (p *Program) emit(out Output, pc int, inPort uint32) (Output, int) {
	for j := pc + 1; j <= p.lastEmit; j++ {
		switch o := &p.ops[j]; o.code {
		case opOutput:
			if o.port != inPort {
				return out, pc + 1
			}
		case opInPort, opGone:
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

// rwNwTos sets the DSCP bits of the IPv4 TOS or the IPv6 traffic class,
// keeping the ECN bits.
func rwNwTos(f []byte, lay *Layout, tos uint8) {
	if ip := rwIPv4Header(f, lay); ip >= 0 {
		old := binary.BigEndian.Uint16(f[ip:])
		f[ip+1] = f[ip+1]&3 | tos
		patchCsum16(f[ip+10:], old, binary.BigEndian.Uint16(f[ip:]))
		return
	}
	if lay.L3Type == L3IPv6 && lay.L3 >= 0 && lay.L3+ipv6HeaderLen <= len(f) {
		ip := lay.L3
		tc := f[ip]<<4 | f[ip+1]>>4
		tc = tc&3 | tos
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
