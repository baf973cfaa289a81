package flowtable

import (
	"errors"
	"fmt"

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
	ErrNoSuchGroup  = errors.New("no such group")
	ErrGroupExists  = errors.New("group already exists")
	ErrGroupInUse   = errors.New("group is in use by another group")
	// ErrTooManyFlows: the table needs more steering rules than the XDP
	// classifier's map holds. The bpf package's "table full" is the same
	// error, so a kernel that holds fewer is reported the same way.
	ErrTooManyFlows = steer.ErrTooManyRules
)

// ItemError says which item of a Change (the Index-th of Of added flows,
// or groups added or modified) an error is about.
type ItemError struct {
	What  string // "flow" or "group"
	Index int    // 0-based
	Of    int
	Err   error
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("%s %d of %d: %v", e.What, e.Index+1, e.Of, e.Err)
}

func (e *ItemError) Unwrap() error { return e.Err }

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
	Table       uint8  // 0..MaxTable: the OpenFlow table the flow is in
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

// Verdict is the steering verdict a flow's actions compile to in the XDP
// program: drop and kernel flows never reach userspace. (Only table 0 is in
// the XDP program; a flow of a later table is only ever reached in
// userspace.)
func (f *Flow) Verdict() steer.Verdict { return verdictOf(f.Actions) }

// Change is one transaction on the pipeline: all of it applies, or nothing
// does. Groups change before flows (see Table.Apply).
type Change struct {
	Replace bool     // remove every existing flow first (replace-flows)
	Add     []*Flow  // flows to add; a flow with the same table, priority and match as an installed one replaces it
	Delete  []uint64 // flow IDs to remove

	ReplaceGroups bool     // remove every existing group first
	AddGroups     []*Group // groups to add; the ID must be free
	ModGroups     []*Group // groups to replace; the ID must be installed
	DeleteGroups  []uint32 // group IDs to remove, with the flows that send to them

	// KeepIDs: the flows of Add carry their IDs (Flow.ID: ascending, each
	// at least the table's NextID), as when a saved table is restored, and
	// keep them instead of getting new ones.
	KeepIDs bool
	// NextID, if above the table's counter, moves the counter there: IDs
	// below it are never given (those of flows deleted before a restart).
	NextID uint64
	// AllowMissingPorts: added flows and groups may name ports the
	// resolver does not know. They are installed as Recompile leaves flows
	// whose port went: an output to such a port counts a drop, an in_port
	// matches nothing, a bucket watching it is dead, until a port of that
	// name comes. (The switch keeps the flows of a port that was removed or
	// whose device is absent; a restore must be able to give them back.)
	AllowMissingPorts bool
	// Owned: the flows of Add are the table's to keep. Each added flow's
	// Entry holds the Flow itself, not a copy: Apply sets its ID and
	// interns its port names in place, even when it fails, and the caller
	// must neither give one Flow twice nor touch the flows afterwards (a
	// bulk request saves a copy of every flow it parsed). A flow's Actions
	// may be an installed flow's of the same table (a shallow copy of it):
	// the names in them are interned already, so they are only read.
	// Without KeepIDs, a flow whose ID is set is taken to be an installed
	// flow itself, of this table or another (a replace that gives the
	// installed flows again, as they are, maybe of a table since rolled
	// back): Apply never writes to it or its actions (it keeps its entry,
	// or adds a copy), and it may be given more than once.
	Owned bool
}

func (c *Change) empty() bool {
	return !c.Replace && len(c.Add) == 0 && len(c.Delete) == 0 &&
		!c.ReplaceGroups && len(c.AddGroups) == 0 && len(c.ModGroups) == 0 && len(c.DeleteGroups) == 0 &&
		c.NextID == 0
}
