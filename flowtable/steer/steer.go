// Package steer is the contract between the flow table and the XDP program:
// the packed packet key both sides extract, the steering rules, masks and
// verdicts the flow table compiles and the bpf package loads into the
// kernel's maps, and the action records (Op, Record) of the flows the XDP
// fast path runs itself.
//
// Every type here has a byte-for-byte twin in bpf/xvs.h. The kernel's
// classifier and the Go classifier must agree on every packet, so both sides
// parse into the same layout and mask it the same way.
//
// The package is tiny on purpose: the bpf package imports it without taking
// in the rest of flowtable.
package steer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Limits shared with bpf/xvs.h.
const (
	MaxMasks  = 32     // masks the XDP classifier walks
	MaxPorts  = 256    // ofport numbers 1..MaxPorts-1; 0 = unknown
	MaxQueues = 64     // RX queues per port
	MaxRules  = 262144 // steering rules the kernel map holds (old and new during a sync)
)

// ErrTooManyRules is the error for a steering table over MaxRules rules:
// flowtable refuses to build one, and the bpf package reports the kernel's
// map filling up with it.
var ErrTooManyRules = errors.New("too many flows for the XDP classifier")

// KeyLen is the size of a Key in bytes.
const KeyLen = 64

// Byte offsets of the fields of a Key (struct xvs_key). Multi-byte packet
// fields are stored in network byte order, exactly as on the wire; in_port is
// in host byte order.
const (
	OffInPort  = 0  // 4 bytes, host order
	OffDlDst   = 4  // 6 bytes
	OffDlSrc   = 10 // 6 bytes
	OffDlType  = 16 // 2 bytes: EtherType after at most two VLAN tags
	OffVlanTCI = 18 // 2 bytes: outer tag PCP<<13 | VlanPresent | VID; 0 = untagged
	OffNwProto = 20 // 1 byte: IP protocol; ARP: the opcode, 0 above 255
	OffNwTos   = 21 // 1 byte: IPv4 TOS / IPv6 traffic class
	OffNwFrag  = 22 // 1 byte: FragAny | FragLater
	OffFlags   = 23 // 1 byte: Flag*: what the parser read; never matched (masks are 0 here)
	OffNwSrc   = 24 // 16 bytes: IPv4 (or ARP SPA) in the first 4; IPv6 in all 16
	OffNwDst   = 40 // 16 bytes
	OffTpSrc   = 56 // 2 bytes: TCP/UDP source port; ICMP type
	OffTpDst   = 58 // 2 bytes: TCP/UDP destination port; ICMP code
)

// VlanPresent is set in the vlan_tci field of a Key when the frame carries a
// VLAN tag (it takes the place of the DEI bit, as in Open vSwitch).
const VlanPresent = 0x1000

// nw_frag bits.
const (
	FragAny   = 0x01 // the packet is an IP fragment
	FragLater = 0x02 // ... and not the first one: L4 fields are zero
)

// Parse flags (the key's flags byte). No flow matches on them: masks are
// zero there, so they do not change what a key matches. They tell an exact
// key cache what frames of the key look like beyond the matched fields, so
// that what a rewrite does to the key is known from the key alone: whether
// a VLAN pop uncovers a second tag, whether a port rewrite finds its header.
const (
	FlagVlan2 = 0x01 // a second VLAN tag was read (vlan_tci is the outer one)
	FlagL4    = 0x02 // the TCP, UDP or ICMP header was read: tp_src and tp_dst are the packet's
	// FlagLayout: a header is not where the VLAN tags alone put it: an
	// LLC/SNAP header came before the network header, or IPv6 extension
	// headers before the transport header. Offsets must then come from
	// the parser (the XDP fast path takes them from parse), not from the key.
	FlagLayout = 0x04
)

// Key is the packed packet key, the layout of struct xvs_key. It is
// comparable and pointer-free, so it can key a Go map directly.
type Key [KeyLen]byte

// InPort returns the ofport of the receiving port.
func (k *Key) InPort() uint32 { return binary.NativeEndian.Uint32(k[OffInPort:]) }

// SetInPort sets the ofport of the receiving port.
func (k *Key) SetInPort(p uint32) { binary.NativeEndian.PutUint32(k[OffInPort:], p) }

// DlType returns the EtherType.
func (k *Key) DlType() uint16 { return binary.BigEndian.Uint16(k[OffDlType:]) }

// VlanTCI returns the outer VLAN TCI with VlanPresent set, or 0.
func (k *Key) VlanTCI() uint16 { return binary.BigEndian.Uint16(k[OffVlanTCI:]) }

// NwProto returns the IP protocol (or the ARP opcode, 0 above 255).
func (k *Key) NwProto() uint8 { return k[OffNwProto] }

// TpSrc returns the L4 source port (ICMP type).
func (k *Key) TpSrc() uint16 { return binary.BigEndian.Uint16(k[OffTpSrc:]) }

// TpDst returns the L4 destination port (ICMP code).
func (k *Key) TpDst() uint16 { return binary.BigEndian.Uint16(k[OffTpDst:]) }

// NwSrc4 returns the IPv4 source address (or ARP SPA).
func (k *Key) NwSrc4() netip.Addr { return netip.AddrFrom4([4]byte(k[OffNwSrc : OffNwSrc+4])) }

// NwDst4 returns the IPv4 destination address (or ARP TPA).
func (k *Key) NwDst4() netip.Addr { return netip.AddrFrom4([4]byte(k[OffNwDst : OffNwDst+4])) }

// And stores k & m into dst. It is the masking every classifier does.
func (k *Key) And(m *Key, dst *Key) {
	for i := 0; i < KeyLen; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(k[i:])&binary.LittleEndian.Uint64(m[i:]))
	}
}

// Verdict is what the XDP program does with a packet (enum xvs_verdict).
type Verdict uint8

const (
	VerdictPass     Verdict = 0 // to the host stack
	VerdictRedirect Verdict = 1 // to the port's AF_XDP socket for the RX queue
	VerdictDrop     Verdict = 2 // dropped in XDP
	// VerdictForward: the XDP program runs the flow's action record (Rule.Arg
	// names its slot) and sends the frame out of the output port itself. A
	// frame the record cannot handle (a TTL that would expire, a fragment
	// whose L4 header a rewrite touches, ...) is redirected instead, so
	// for the classifiers' agreement a forward rule is a redirect rule.
	VerdictForward Verdict = 3
)

// ToUser reports whether packets of v may reach userspace: redirect, and
// forward (whose record hands some frames to userspace).
func (v Verdict) ToUser() bool { return v == VerdictRedirect || v == VerdictForward }

func (v Verdict) String() string {
	switch v {
	case VerdictPass:
		return "pass"
	case VerdictRedirect:
		return "redirect"
	case VerdictDrop:
		return "drop"
	case VerdictForward:
		return "forward"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Rank orders rules: the higher rank wins. Priority is in the high 32 bits;
// the low 32 bits break ties between equal priorities deterministically (the
// flow table puts the complement of the flow's sequence number there, so at
// equal priority the flow installed first wins).
type Rank uint64

// MakeRank builds a rank from a priority and a sequence number.
func MakeRank(priority uint16, seq uint32) Rank {
	return Rank(uint64(priority)<<32 | uint64(^seq))
}

// Priority returns the priority part of the rank.
func (r Rank) Priority() uint16 { return uint16(r >> 32) }

// Mask is one mask of the steering classifier.
type Mask struct {
	ID      uint32 // slot in the kernel's masks map, 0..MaxMasks-1; stable while the mask is in use
	Mask    Key
	MaxRank Rank // highest rank of any rule under this mask
}

// Rule is one entry of the steering classifier: packets whose key, masked
// with mask MaskID, equals Key get Verdict, unless a higher-ranked rule under
// another mask matches too.
type Rule struct {
	MaskID  uint32
	Key     Key // already masked
	Rank    Rank
	Verdict Verdict
	Arg     uint32 // VerdictForward: the slot of the flow's action record; 0 otherwise
	Flow    uint64 // ID of the flow the rule belongs to: its hits are that flow's
}

// Table is a compiled steering table: the masks in the order the XDP program
// visits them (highest MaxRank first) and the rules.
type Table struct {
	Masks []Mask
	Rules []Rule
}

// Counter indexes the per-port counters of the XDP program (enum xvs_counter).
type Counter int

const (
	CounterRX             Counter = iota // packets seen by the program: the sum of the outcomes below
	CounterPassNoMatch                   // no rule matched: to the kernel
	CounterPassRule                      // a rule said kernel
	CounterRedirect                      // redirected to an AF_XDP socket
	CounterRedirectNoSock                // rule said redirect but the queue had no socket: passed
	CounterDrop                          // a rule said drop
	CounterMalformed                     // truncated or malformed headers: passed
	CounterForward                       // a forward rule's record ran: sent out of the output port
	CounterForwardError                  // a record ran but the output port's devmap slot was gone: dropped
	// CounterForwardFallback is not an outcome: it counts the packets of
	// forward rules handed to userspace instead (their outcome is redirect
	// or redirect_nosock).
	CounterForwardFallback
	NumCounters
)

var counterNames = [NumCounters]string{
	"rx", "pass_nomatch", "pass_rule", "redirect", "redirect_nosock", "drop", "malformed",
	"forward", "forward_error", "forward_fallback",
}

func (c Counter) String() string {
	if c >= 0 && c < NumCounters {
		return counterNames[c]
	}
	return fmt.Sprintf("counter(%d)", int(c))
}
