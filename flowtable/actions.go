package flowtable

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// ActionType names what an Action does. Everything about a type (its name,
// value syntax, checks, prerequisites, printer and compiler) is in its
// descriptor, actionKinds[type]: adding an action is adding one entry there
// (and, for a new kind of packet operation, its case in Program.Run).
type ActionType uint8

const (
	ActOutput     ActionType = iota + 1 // send to Port
	ActInPort                           // send back out of the input port
	ActKernel                           // hand to the host stack (XDP_PASS); must be the only action
	ActSetDlSrc                         // MAC
	ActSetDlDst                         // MAC
	ActSetNwSrc                         // Addr (IPv4)
	ActSetNwDst                         // Addr (IPv4)
	ActSetNwTos                         // Value: TOS byte with the ECN bits zero (DSCP<<2), IPv4 or IPv6
	ActSetTpSrc                         // Value
	ActSetTpDst                         // Value
	ActPushVLAN                         // Value: TPID (0x8100 or 0x88a8)
	ActSetVlanVID                       // Value: 0..4095
	ActSetVlanPCP                       // Value: 0..7
	ActStripVLAN                        // pop the outer tag
	ActDecTTL                           // decrement the IP TTL / hop limit; drop (counted) at zero
	ActGotoTable                        // Table: continue the lookup in that table; must be the last action
	ActResubmit                         // Table (TableCurrent: the flow's own), Port ("" = the packet's): look up, run, go on
	ActGroup                            // Value: group ID
	ActSetNwEcn                         // Value: the ECN bits, 0..3, IPv4 or IPv6
	numActionTypes
)

// Action is one step of a flow's action list. Each type uses only some of
// the fields (see ActionType); the others are zero.
type Action struct {
	Type  ActionType
	Port  string     // ActOutput; ActResubmit: the in_port of its lookup ("" = the packet's); a port reference (see PortRefOf)
	MAC   [6]byte    // ActSetDlSrc, ActSetDlDst
	Addr  netip.Addr // ActSetNwSrc, ActSetNwDst
	Value uint32     // ActSetNwTos, ActSetTpSrc/Dst, ActPushVLAN, ActSetVlanVID/PCP, ActGroup
	Table uint8      // ActGotoTable, ActResubmit
}

// Table numbers.
const (
	MaxTable     = 253 // tables are 0..MaxTable, as OVS's (254 is its internal table)
	TableCurrent = 255 // resubmit's "the table of the flow doing it"
	MaxGroupID   = 0xfffffeff
)

// actionFields are the fields of Action a type uses.
type actionFields uint8

const (
	usesPort actionFields = 1 << iota
	usesMAC
	usesAddr
	usesValue
	usesTable
)

// vlanEffect is what an action does to a frame's VLAN tags, for the
// checks on a list's tags (see vlanProblem).
type vlanEffect uint8

const (
	vlanKeep vlanEffect = iota
	vlanPush            // pushes a tag
	vlanPop             // pops the outer tag, if there is one
	vlanSet             // sets a field of the outer tag, pushing one onto an untagged frame
)

// setSlot is an action's place in an OpenFlow action set (a group bucket),
// in the order it runs (ovs lib/ofp-actions.c ACTION_SET_ORDER); 0: not
// allowed in an action set.
type setSlot uint8

const (
	slotNone setSlot = iota
	slotStripVLAN
	slotPushVLAN
	slotDecTTL
	slotRewrite // any number of them
	slotFinal   // exactly one: output, in_port, group or resubmit
)

// actionKind describes one action type.
type actionKind struct {
	name     string   // canonical, as printed
	aliases  []string // other names the parser takes
	value    bool     // takes a value: name:VALUE or name(VALUE)
	optValue bool     // the value may be left out
	fields   actionFields
	need     actionNeed // what the match must say
	alone    bool       // must be the only action of its list (kernel)
	last     bool       // must be the last action of its list (goto_table)
	vlan     vlanEffect
	slot     setSlot
	// parse reads the value into a (Type is set) and says what is wrong
	// with it, or "". It may change a.Type (output:in_port is in_port).
	parse func(v string, a *Action) string
	// check says what is wrong with a's fields, or "". Parsing runs it
	// too, so a range is written once.
	check func(a *Action) string
	// format is how the value is printed after the name (appendAction).
	format actionFormat
	// compile appends a's ops.
	compile func(c *compiler, a *Action) error
}

// Action descriptors, by type.
var actionKinds = [numActionTypes]*actionKind{
	ActOutput: {
		name: "output", value: true, fields: usesPort, slot: slotFinal,
		parse: func(v string, a *Action) string {
			if isInPortKeyword(v) {
				a.Type = ActInPort
				return ""
			}
			if msg := portRefProblem(v); msg != "" {
				return msg
			}
			a.Port = canonicalPortRef(v)
			return ""
		},
		check:   checkPortRef,
		format:  formatPort,
		compile: func(c *compiler, a *Action) error { return c.output(a.Port) },
	},
	ActInPort: {name: "in_port", slot: slotFinal, compile: emitCode(steer.OpInPort)},
	ActKernel: {name: "kernel", alone: true, compile: emitCode(steer.OpKernel)},
	ActSetDlSrc: {
		name: "mod_dl_src", value: true, fields: usesMAC, slot: slotRewrite, parse: parseMACValue, format: formatMAC,
		compile: func(c *compiler, a *Action) error { return c.emitMAC(steer.OpSetDlSrc, a.MAC) },
	},
	ActSetDlDst: {
		name: "mod_dl_dst", value: true, fields: usesMAC, slot: slotRewrite, parse: parseMACValue, format: formatMAC,
		compile: func(c *compiler, a *Action) error { return c.emitMAC(steer.OpSetDlDst, a.MAC) },
	},
	ActSetNwSrc: {
		name: "mod_nw_src", value: true, fields: usesAddr, need: needIPv4, slot: slotRewrite,
		parse: parseIPv4Value, check: checkIPv4, format: formatAddr,
		compile: func(c *compiler, a *Action) error { return c.emitIPv4(steer.OpSetNwSrc, a.Addr) },
	},
	ActSetNwDst: {
		name: "mod_nw_dst", value: true, fields: usesAddr, need: needIPv4, slot: slotRewrite,
		parse: parseIPv4Value, check: checkIPv4, format: formatAddr,
		compile: func(c *compiler, a *Action) error { return c.emitIPv4(steer.OpSetNwDst, a.Addr) },
	},
	ActSetNwTos: {
		name: "mod_nw_tos", value: true, fields: usesValue, need: needIP, slot: slotRewrite,
		parse: parseValue(0xff), check: checkTos, format: formatValue,
		compile: func(c *compiler, a *Action) error { return c.emit(steer.Op{Code: steer.OpSetNwTos, A: uint8(a.Value)}) },
	},
	ActSetNwEcn: {
		name: "mod_nw_ecn", value: true, fields: usesValue, need: needIP, slot: slotRewrite,
		parse: parseValue(0xff), check: checkMax(3), format: formatValue,
		compile: func(c *compiler, a *Action) error { return c.emit(steer.Op{Code: steer.OpSetNwEcn, A: uint8(a.Value)}) },
	},
	ActSetTpSrc: {
		name: "mod_tp_src", value: true, fields: usesValue, need: needTCPUDP, slot: slotRewrite,
		parse: parseValue(0xffff), check: checkMax(0xffff), format: formatValue,
		compile: func(c *compiler, a *Action) error {
			return c.emit(steer.Op{Code: steer.OpSetTpSrc, B: uint16(a.Value)})
		},
	},
	ActSetTpDst: {
		name: "mod_tp_dst", value: true, fields: usesValue, need: needTCPUDP, slot: slotRewrite,
		parse: parseValue(0xffff), check: checkMax(0xffff), format: formatValue,
		compile: func(c *compiler, a *Action) error {
			return c.emit(steer.Op{Code: steer.OpSetTpDst, B: uint16(a.Value)})
		},
	},
	ActPushVLAN: {
		name: "push_vlan", value: true, fields: usesValue, vlan: vlanPush, slot: slotPushVLAN,
		parse: parseValue(0xffff), check: checkTPID,
		format: formatHex16,
		compile: func(c *compiler, a *Action) error {
			return c.emit(steer.Op{Code: steer.OpPushVLAN, B: uint16(a.Value)})
		},
	},
	ActSetVlanVID: {
		name: "mod_vlan_vid", value: true, fields: usesValue, vlan: vlanSet, slot: slotRewrite,
		parse: parseValue(0xffff), check: checkMax(0x0fff), format: formatValue,
		compile: func(c *compiler, a *Action) error {
			return c.emit(steer.Op{Code: steer.OpSetVlanVID, B: uint16(a.Value)})
		},
	},
	ActSetVlanPCP: {
		name: "mod_vlan_pcp", value: true, fields: usesValue, vlan: vlanSet, slot: slotRewrite,
		parse: parseValue(0xff), check: checkMax(7), format: formatValue,
		compile: func(c *compiler, a *Action) error {
			return c.emit(steer.Op{Code: steer.OpSetVlanPCP, A: uint8(a.Value)})
		},
	},
	ActStripVLAN: {name: "strip_vlan", aliases: []string{"pop_vlan"}, vlan: vlanPop, slot: slotStripVLAN, compile: emitCode(steer.OpStripVLAN)},
	ActDecTTL: {
		// dec_ttl(ID,...) names the controllers to tell when the TTL runs
		// out; xvs has none, and drops such packets (counted) as OVS does
		// when no controller listens: the IDs are checked and forgotten.
		name: "dec_ttl", value: true, optValue: true, need: needIP, slot: slotDecTTL,
		parse: func(v string, a *Action) string {
			for _, id := range strings.Split(v, ",") {
				if _, msg := parseNum(id, 0xffff); msg != "" {
					return fmt.Sprintf("controller id %q: %s", id, msg)
				}
			}
			return ""
		},
		compile: emitCode(steer.OpDecTTL),
	},
	ActGotoTable: {
		name: "goto_table", value: true, fields: usesTable, last: true,
		parse: func(v string, a *Action) string {
			n, msg := parseNum(v, MaxTable)
			a.Table = uint8(n)
			return msg
		},
		check:   checkTable,
		format:  formatTable,
		compile: func(c *compiler, a *Action) error { return c.emit(steer.Op{Code: steer.OpGotoTable, A: a.Table}) },
	},
	ActResubmit: {
		name: "resubmit", value: true, fields: usesPort | usesTable, slot: slotFinal,
		parse: parseResubmit, check: checkResubmit, format: formatResubmit,
		compile: func(c *compiler, a *Action) error { return c.resubmit(a) },
	},
	ActGroup: {
		name: "group", value: true, fields: usesValue, slot: slotFinal,
		parse: parseValue(MaxGroupID), check: checkMax(MaxGroupID), format: formatValue,
		compile: func(c *compiler, a *Action) error { return c.emit(steer.Op{Code: steer.OpGroup, Val: a.Value}) },
	},
}

// actionNames holds every action name and alias, with its type.
var actionNames = func() *nameTable[ActionType] {
	var names []string
	var types []ActionType
	for t, k := range actionKinds {
		if k == nil {
			continue
		}
		for _, n := range append([]string{k.name}, k.aliases...) {
			names, types = append(names, n), append(types, ActionType(t))
		}
	}
	return newNameTable(names, types)
}()

// kindOf returns the descriptor of t, or nil for a type that does not exist.
func kindOf(t ActionType) *actionKind {
	if int(t) < len(actionKinds) {
		return actionKinds[t]
	}
	return nil
}

// Value parsers and printers shared by several kinds.

func parseValue(max uint64) func(v string, a *Action) string {
	return func(v string, a *Action) string {
		n, msg := parseNum(v, max)
		a.Value = uint32(n)
		return msg
	}
}

func parseMACValue(v string, a *Action) string {
	mac, ok := parseMAC(v)
	if !ok {
		return "not a MAC address"
	}
	a.MAC = mac
	return ""
}

func parseIPv4Value(v string, a *Action) string {
	addr, ok := parseIPv4(v)
	if !ok {
		return "not an IPv4 address"
	}
	a.Addr = addr
	return ""
}

func checkMax(max uint32) func(a *Action) string {
	return func(a *Action) string {
		if a.Value > max {
			return fmt.Sprintf("out of range 0..%d", max)
		}
		return ""
	}
}

func checkIPv4(a *Action) string {
	if !a.Addr.Is4() {
		return fmt.Sprintf("%v is not an IPv4 address", a.Addr)
	}
	return ""
}

func checkTos(a *Action) string {
	switch {
	case a.Value > 0xff:
		return "out of range 0..255"
	case a.Value&^nwTosMask != 0:
		return "the low 2 bits (ECN) must be zero"
	}
	return ""
}

func checkTPID(a *Action) string {
	if a.Value != etherTypeVLAN && a.Value != etherTypeQinQ {
		return "must be 0x8100 or 0x88a8"
	}
	return ""
}

func checkPortRef(a *Action) string {
	if msg := portRefProblem(a.Port); msg != "" {
		return fmt.Sprintf("port %q: %s", a.Port, msg)
	}
	if c := canonicalPortRef(a.Port); c != a.Port {
		return fmt.Sprintf("port %q is not in canonical form %q", a.Port, c)
	}
	return ""
}

func checkTable(a *Action) string {
	if a.Table > MaxTable {
		return fmt.Sprintf("out of range 0..%d", MaxTable)
	}
	return ""
}

// resubmit's value: PORT (resubmit:PORT) or [PORT],[TABLE]
// (resubmit([PORT],[TABLE])); a missing port is the packet's in_port, a
// missing table the flow's own.
func parseResubmit(v string, a *Action) string {
	port, table, hasTable := strings.Cut(v, ",")
	a.Table = TableCurrent
	if hasTable {
		if strings.Contains(table, ",") {
			return "want [PORT],[TABLE] (the ct form is not supported)"
		}
		if table != "" {
			n, msg := parseNum(table, MaxTable)
			if msg != "" {
				return "table " + msg
			}
			a.Table = uint8(n)
		}
	}
	if isInPortKeyword(port) {
		port = ""
	}
	if port != "" {
		if msg := portRefProblem(port); msg != "" {
			return "port " + msg
		}
		port = canonicalPortRef(port)
	}
	a.Port = port
	if a.Port == "" && a.Table == TableCurrent {
		return "give a port, a table or both"
	}
	return ""
}

func checkResubmit(a *Action) string {
	if a.Port != "" {
		if msg := checkPortRef(a); msg != "" {
			return msg
		}
	}
	if a.Table > MaxTable && a.Table != TableCurrent {
		return fmt.Sprintf("table out of range 0..%d", MaxTable)
	}
	if a.Port == "" && a.Table == TableCurrent {
		return "resubmit needs a port, a table or both"
	}
	return ""
}

// FormatAction returns one action in canonical form: output:PORT, in_port,
// kernel, strip_vlan, dec_ttl, goto_table:N, resubmit(PORT,N), group:N, or
// the mod_* form (set_field is written as the mod_* action it means), e.g.
// "mod_tp_dst:7998".
func FormatAction(a Action) string {
	var buf [48]byte
	return string(appendAction(buf[:0], &a))
}

// actionFormat is how an action's value is printed after its name.
type actionFormat uint8

const (
	formatNone     actionFormat = iota // the name alone
	formatPort                         // :PORT
	formatValue                        // :Value in decimal
	formatHex16                        // :0xVALUE, at least 4 hex digits (push_vlan's TPID)
	formatMAC                          // :MAC
	formatAddr                         // :ADDR
	formatTable                        // :TABLE
	formatResubmit                     // :PORT without a table, else ([PORT],TABLE), as ovs-ofctl prints it
)

// appendAction appends FormatAction(*a).
func appendAction(b []byte, a *Action) []byte {
	k := kindOf(a.Type)
	if k == nil {
		return fmt.Appendf(b, "action(%d)", uint8(a.Type))
	}
	b = append(b, k.name...)
	switch k.format {
	case formatPort:
		b = append(append(b, ':'), a.Port...)
	case formatValue:
		b = strconv.AppendUint(append(b, ':'), uint64(a.Value), 10)
	case formatHex16:
		b = appendHex(append(b, ':'), uint64(a.Value), 4)
	case formatMAC:
		b = appendMAC(append(b, ':'), a.MAC[:])
	case formatAddr:
		b = append(b, ':')
		if !a.Addr.IsValid() {
			return append(b, a.Addr.String()...) // "invalid IP": Check refuses it
		}
		b = a.Addr.AppendTo(b)
	case formatTable:
		b = strconv.AppendUint(append(b, ':'), uint64(a.Table), 10)
	case formatResubmit:
		if a.Table == TableCurrent {
			return append(append(b, ':'), a.Port...)
		}
		b = append(append(b, '('), a.Port...)
		b = append(strconv.AppendUint(append(b, ','), uint64(a.Table), 10), ')')
	}
	return b
}

// actionName is the canonical name of an action type.
func actionName(t ActionType) string {
	if k := kindOf(t); k != nil {
		return k.name
	}
	return fmt.Sprintf("action(%d)", uint8(t))
}

// actionProblem says what is wrong with a on its own, or "".
func actionProblem(a *Action) string {
	k := kindOf(a.Type)
	if k == nil {
		return "unknown action type"
	}
	// Field by field: building a copy with only the fields the type uses
	// and comparing it with a was a tenth of parsing an action.
	if k.fields&usesPort == 0 && a.Port != "" ||
		k.fields&usesMAC == 0 && a.MAC != [6]byte{} ||
		k.fields&usesAddr == 0 && a.Addr != (netip.Addr{}) ||
		k.fields&usesValue == 0 && a.Value != 0 ||
		k.fields&usesTable == 0 && a.Table != 0 {
		return "sets fields its type does not use"
	}
	if k.check != nil {
		return k.check(a)
	}
	return ""
}

// listProblem checks the rules of a whole action list: kernel alone,
// goto_table last; field names the action at fault.
func listProblem(acts []Action) (field, msg string) {
	for i := range acts {
		k := kindOf(acts[i].Type)
		if k == nil {
			continue
		}
		if k.alone && len(acts) > 1 {
			return k.name, k.name + " must be the only action"
		}
		if k.last && i != len(acts)-1 {
			return k.name, k.name + " must be the last action"
		}
	}
	return "", ""
}

// Name returns the canonical name of a's type ("output", "mod_tp_dst").
func (a *Action) Name() string { return actionName(a.Type) }

// PortRef returns the name of the port a refers to: output's port, a
// resubmit's in_port; "" for every other action.
func (a *Action) PortRef() string {
	switch a.Type {
	case ActOutput, ActResubmit:
		return a.Port
	}
	return ""
}

// GroupRef returns the group a refers to, and whether it refers to one.
func (a *Action) GroupRef() (uint32, bool) { return a.Value, a.Type == ActGroup }

// Verdict is the steering verdict a flow's actions compile to in the XDP
// program: drop and kernel flows never reach userspace.
func verdictOf(acts []Action) steer.Verdict {
	if len(acts) == 0 {
		return steer.VerdictDrop
	}
	if len(acts) == 1 && acts[0].Type == ActKernel {
		return steer.VerdictPass
	}
	return steer.VerdictRedirect
}

func emitCode(code uint8) func(c *compiler, a *Action) error {
	return func(c *compiler, a *Action) error { return c.emit(steer.Op{Code: code}) }
}
