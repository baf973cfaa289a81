package flowtable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Port references.
//
// A flow names a port (in_port=, output:, resubmit:, a bucket's
// watch_port:) as ovs-ofctl lets it, by name or by ofport number:
//
//	p0      the port named p0
//	2       the port whose ofport is 2 (1..steer.MaxPorts-1)
//	"2"     the port named 2
//
// A name is quoted, as ovs-ofctl quotes it, when it would otherwise read as
// a number or as one of OpenFlow's reserved ports (IN_PORT, LOCAL, ALL, ...,
// in any case); the quotes may be written around any name. Match.InPort,
// Action.Port and Bucket.WatchPort hold a reference in this text form,
// canonical: quotes only where they are needed, numbers in decimal.
//
// A number names whatever port has that ofport when the flow is installed:
// BindPortNumbers turns it into a reference by name, and the table holds
// and persists the name (so a flow keeps its port across restarts, which
// renumber ports). A reference by number that was not bound resolves to no
// port.

// reservedPorts are OpenFlow's reserved port names (OVS's
// OFPUTIL_NAMED_PORTS, matched without regard to case), with what xvs makes
// of each where a flow names a port. IN_PORT is the input port, as the
// in_port action and resubmit's default; the others are refused.
var reservedPorts = map[string]string{
	"IN_PORT":    "",
	"TABLE":      "TABLE is only for packet-outs",
	"NORMAL":     "xvs has no normal switching (MAC learning)",
	"FLOOD":      "xvs has no flooding: write the outputs, or use an all group",
	"ALL":        "xvs has no all-ports output: write the outputs, or use an all group",
	"CONTROLLER": "xvs has no controller",
	"LOCAL":      "xvs has no LOCAL port: the kernel action hands a packet to the host stack",
	"ANY":        "ANY is not a port",
	"NONE":       "NONE is not a port",
	"UNSET":      "UNSET is not a port",
}

// reservedPort reports whether s is a reserved port name and, if xvs does
// not take it where a port goes, why.
func reservedPort(s string) (why string, reserved bool) {
	// Upper-cased on the stack: this runs for every port and action name a
	// flow gives, and strings.ToUpper allocates for a lower-case one.
	// Non-ASCII text goes to strings.ToUpper, which maps some of it to
	// ASCII (U+0131 ı to I).
	var buf [16]byte
	if len(s) > len(buf) || !isASCII(s) {
		why, reserved = reservedPorts[strings.ToUpper(s)]
		return why, reserved
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	why, reserved = reservedPorts[string(buf[:len(s)])]
	return why, reserved
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isInPortKeyword reports whether s names the input port (in_port,
// IN_PORT).
func isInPortKeyword(s string) bool { return strings.EqualFold(s, "IN_PORT") }

// nameNeedsQuotes reports whether a port name must be quoted in a flow.
func nameNeedsQuotes(name string) bool {
	if plainPortRef(name) {
		return false
	}
	if _, reserved := reservedPort(name); reserved {
		return true
	}
	return allDigits(name)
}

// allDigits reports whether s is only decimal digits (true for "").
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// plainPortRef reports, quickly, whether s is a reference by name that is
// valid and canonical as written: 1 to MaxPortNameLen letters, digits,
// '_', '-' and '.', not all digits, not "." or "..", and not beginning
// with '.' or the first letter of a reserved port name (so none of them,
// in any case, nor in_port). This is how nearly every flow names its ports (p0,
// eth1, veth-a.10), and it spares them portRefProblem's slower checks:
// a bulk request checks two references a flow, several times. False says
// nothing: the reference takes the slow path.
func plainPortRef(s string) bool {
	if len(s) == 0 || len(s) > MaxPortNameLen {
		return false
	}
	switch s[0] | 0x20 { // lower case, for letters
	case 'i', 't', 'n', 'f', 'a', 'c', 'l', 'u', '.':
		return false
	}
	digits := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '-', c == '.':
			digits = false
		default:
			return false
		}
	}
	return !digits
}

// PortRefOf returns the reference to the port named name: the name,
// quoted if it needs quotes.
func PortRefOf(name string) string {
	if nameNeedsQuotes(name) {
		return `"` + name + `"`
	}
	return name
}

// ParsePortRef splits a port reference (as Match.InPort holds one) into the
// port's name, or its ofport when it names the port by number; both are
// zero for a reference that is not valid.
func ParsePortRef(ref string) (name string, ofport uint32) {
	if plainPortRef(ref) {
		return ref, 0
	}
	if ref == "" || portRefProblem(ref) != "" {
		return "", 0
	}
	if n, ok := parseOFPort(ref); ok {
		return "", n
	}
	if unq, ok := unquote(ref); ok {
		return unq, 0
	}
	return ref, 0
}

// PortName returns the name a reference names, or "" when it names the
// port by number (or is not valid).
func PortName(ref string) string {
	name, _ := ParsePortRef(ref)
	return name
}

func unquote(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// parseOFPort reads a decimal ofport number; ok is false when s is not all
// digits.
func parseOFPort(s string) (uint32, bool) {
	if s == "" || !allDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return steer.MaxPorts, true // out of range either way
	}
	return uint32(n), true
}

// portRefProblem says what is wrong with a port reference as written, or
// "". Reserved names are for the caller to handle before: here they are
// problems.
func portRefProblem(s string) string {
	if plainPortRef(s) {
		return ""
	}
	return slowPortRefProblem(s)
}

// slowPortRefProblem is portRefProblem without plainPortRef's shortcut.
func slowPortRefProblem(s string) string {
	if n, ok := parseOFPort(s); ok {
		if n == 0 || n >= steer.MaxPorts {
			return fmt.Sprintf("ofport %s out of range 1..%d", s, steer.MaxPorts-1)
		}
		return ""
	}
	if unq, ok := unquote(s); ok {
		return portNameProblem(unq)
	}
	if strings.Contains(s, `"`) {
		return `a quoted name is written "NAME"`
	}
	if why, reserved := reservedPort(s); reserved {
		if why == "" {
			why = "IN_PORT is the input port, not a port to name here"
		}
		return why + fmt.Sprintf(` (a port named %s is written "%s")`, s, s)
	}
	return portNameProblem(s)
}

// canonicalPortRef returns the canonical form of a reference that passed
// portRefProblem.
func canonicalPortRef(s string) string {
	if plainPortRef(s) {
		return s
	}
	return slowCanonicalPortRef(s)
}

// slowCanonicalPortRef is canonicalPortRef without plainPortRef's
// shortcut.
func slowCanonicalPortRef(s string) string {
	if n, ok := parseOFPort(s); ok {
		return strconv.FormatUint(uint64(n), 10)
	}
	if unq, ok := unquote(s); ok {
		return PortRefOf(unq)
	}
	return s
}

// PortNamer maps an ofport number to the name of the port that has it.
type PortNamer func(ofport uint32) (name string, ok bool)

// bindRef binds one reference: a number becomes the name of the port that
// has it. ok is false when no port has it.
func bindRef(ref string, names PortNamer) (string, bool) {
	_, n := ParsePortRef(ref)
	if n == 0 {
		return ref, true
	}
	if names != nil {
		if name, ok := names(n); ok {
			return PortRefOf(name), true
		}
	}
	return ref, false
}

// BindPortNumbers rewrites every port f gives by ofport number (see "Port
// references") into a reference by name. A number no port has is an error
// wrapping ErrNoSuchPort; field is the field or action at fault, and f is
// left partly bound.
func (f *Flow) BindPortNumbers(names PortNamer) (field string, err error) {
	if ref, ok := bindRef(f.Match.InPort, names); !ok {
		return "in_port", fmt.Errorf("in_port=%s: no port has ofport %s: %w", ref, ref, ErrNoSuchPort)
	} else if ref != f.Match.InPort { // f may be an installed flow, read-only (see Change.Owned)
		f.Match.InPort = ref
	}
	return bindActions(f.Actions, names)
}

func bindActions(acts []Action, names PortNamer) (string, error) {
	for i := range acts {
		a := &acts[i]
		if a.Type != ActOutput && a.Type != ActResubmit {
			continue
		}
		ref, ok := bindRef(a.Port, names)
		if !ok {
			return a.Name(), fmt.Errorf("%s: no port has ofport %s: %w", FormatAction(*a), a.Port, ErrNoSuchPort)
		}
		if ref != a.Port { // actions may be an installed flow's, shared and read-only
			a.Port = ref
		}
	}
	return "", nil
}

// BindPortNumbers is Flow.BindPortNumbers for a group's buckets (watch
// ports and actions).
func (g *Group) BindPortNumbers(names PortNamer) (field string, err error) {
	for i := range g.Buckets {
		b := &g.Buckets[i]
		ref, ok := bindRef(b.WatchPort, names)
		if !ok {
			return "watch_port", fmt.Errorf("group %d bucket %d: watch_port:%s: no port has ofport %s: %w", g.ID, i, ref, ref, ErrNoSuchPort)
		}
		b.WatchPort = ref
		if field, err := bindActions(b.Actions, names); err != nil {
			return field, fmt.Errorf("group %d bucket %d: %w", g.ID, i, err)
		}
	}
	return "", nil
}

// BindPortNumbers binds the in_port of a filter's match. It reports false
// when no port has the number: such a filter selects no installed flow.
func (m *Match) BindPortNumbers(names PortNamer) bool {
	ref, ok := bindRef(m.InPort, names)
	m.InPort = ref
	return ok
}

// BindPortNumbers binds the filter's in_port and out_port given by number
// (see Match.BindPortNumbers); false when no port has one of them.
func (flt *Filter) BindPortNumbers(names PortNamer) bool {
	ok := flt.Match.BindPortNumbers(names)
	ref, ok2 := bindRef(flt.OutPort, names)
	flt.OutPort = ref
	return ok && ok2
}

// BindPortNumbers binds the flows and groups c adds or modifies (see
// Flow.BindPortNumbers); the error is an *ItemError.
func (c *Change) BindPortNumbers(names PortNamer) error {
	for i, f := range c.Add {
		if _, err := f.BindPortNumbers(names); err != nil {
			return &ItemError{What: "flow", Index: i, Of: len(c.Add), Err: err}
		}
	}
	for _, gs := range [][]*Group{c.AddGroups, c.ModGroups} {
		for i, g := range gs {
			if _, err := g.BindPortNumbers(names); err != nil {
				return &ItemError{What: "group", Index: i, Of: len(gs), Err: err}
			}
		}
	}
	return nil
}
