package flowtable

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Key is the packed packet key (see package steer for its layout).
type Key = steer.Key

// DefaultPriority is the priority of a flow that names none (as in OpenFlow).
const DefaultPriority = 32768

// Errors. Everything the package returns for bad input wraps ErrInvalid, so a
// caller can tell "the user wrote something wrong" from "something broke".
// Their texts end messages about other things too (datapath's port
// validation wraps ErrInvalid), so they say what kind of error, not what of.
var (
	ErrInvalid      = errors.New("invalid input")
	ErrNoSuchPort   = errors.New("no such port")
	ErrTooManyMasks = errors.New("too many masks for the XDP classifier")
	ErrNoSuchFlow   = errors.New("no such flow")
	// ErrTooManyFlows: the table needs more steering rules than the XDP
	// classifier's map holds. The bpf package's "table full" is the same
	// error, so a kernel that holds fewer is reported the same way.
	ErrTooManyFlows = steer.ErrTooManyRules
)

// ParseError says what is wrong with a flow's text and where.
type ParseError struct {
	Field  string // the field or action at fault, if any
	Column int    // 1-based column in the text; 0 when not known (structured input)
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s at column %d", e.Msg, e.Column)
	}
	return e.Msg
}

// Unwrap makes every ParseError an ErrInvalid.
func (e *ParseError) Unwrap() error { return ErrInvalid }

// PortResolver maps a port name to its ofport number (1..steer.MaxPorts-1).
// ok is false for a name the switch does not know.
type PortResolver func(name string) (ofport uint32, ok bool)

// Flow is one OpenFlow-style flow: a match, a priority and actions. A Flow is
// a value the user wrote; the live, compiled form is an Entry.
type Flow struct {
	ID          uint64 // assigned by the table; 0 until installed
	Priority    uint16 // 0..65535, higher wins; DefaultPriority if not given
	Cookie      uint64
	IdleTimeout uint16 // seconds without a packet before removal; 0 = never
	HardTimeout uint16 // seconds after install before removal; 0 = never
	Match       Match
	Actions     []Action // empty = drop
}

// Match selects packets: every bit set in Mask must equal the same bit in Key.
// Key is always pre-masked (Key & Mask == Key). The in_port bytes of Key and
// Mask stay zero in a Match: the input port is held by name in InPort and
// resolved to an ofport when the table is compiled.
type Match struct {
	InPort string // "" = any port
	Key    Key
	Mask   Key
}

// ActionType names what an Action does.
type ActionType uint8

const (
	ActOutput     ActionType = iota + 1 // send to Port
	ActInPort                           // send back out of the input port
	ActKernel                           // hand to the host stack (XDP_PASS); must be the only action
	ActSetDlSrc                         // MAC
	ActSetDlDst                         // MAC
	ActSetNwSrc                         // Addr (IPv4)
	ActSetNwDst                         // Addr (IPv4)
	ActSetNwTos                         // Value: TOS byte with the ECN bits zero (DSCP<<2)
	ActSetTpSrc                         // Value
	ActSetTpDst                         // Value
	ActPushVLAN                         // Value: TPID (0x8100 or 0x88a8)
	ActSetVlanVID                       // Value: 0..4095
	ActSetVlanPCP                       // Value: 0..7
	ActStripVLAN                        // pop the outer tag
	ActDecTTL                           // decrement the IP TTL / hop limit; drop (counted) at zero
)

// Action is one step of a flow's action list.
type Action struct {
	Type  ActionType
	Port  string     // ActOutput
	MAC   [6]byte    // ActSetDlSrc, ActSetDlDst
	Addr  netip.Addr // ActSetNwSrc, ActSetNwDst
	Value uint16     // ActSetNwTos, ActSetTpSrc/Dst, ActPushVLAN, ActSetVlanVID/PCP
}

// Verdict is the steering verdict a flow's actions compile to in the XDP
// program: drop and kernel flows never reach userspace.
func (f *Flow) Verdict() steer.Verdict {
	if len(f.Actions) == 0 {
		return steer.VerdictDrop
	}
	if len(f.Actions) == 1 && f.Actions[0].Type == ActKernel {
		return steer.VerdictPass
	}
	return steer.VerdictRedirect
}

// Change is one transaction on the flow table: all of it applies, or nothing
// does.
type Change struct {
	Replace bool     // remove every existing flow first (replace-flows)
	Add     []*Flow  // flows to add; a flow with the same priority and match as an installed one replaces it
	Delete  []uint64 // flow IDs to remove
}
