package flowtable

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// ParseFlow parses a flow in ovs-ofctl add-flow syntax, e.g.
//
//	priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1
//
// Fields are separated by commas and/or whitespace, in any order; actions=
// takes the rest of the text. Besides the match fields it takes table=
// (0..MaxTable, default 0), priority= (default DefaultPriority), cookie=
// (hex or decimal), idle_timeout= and hard_timeout=, and it accepts and
// ignores the counters dump-flows prints (duration=, n_packets=, n_bytes=,
// idle_age=, hard_age=, and where the flow runs, datapath=xdp or
// datapath=user(REASON)), so a line of dump-flows output is a valid flow. Prerequisites (tp_dst requires udp or
// tcp, mod_nw_src requires ip, ...) are checked once every field is read.
// A flow that drops has nil Actions. The error is a *ParseError, which wraps
// ErrInvalid.
func ParseFlow(text string) (*Flow, error) {
	r, err := parseText(text, modeFlow)
	if err != nil {
		return nil, err
	}
	return &r.flow, nil
}

// ParseMatch parses match fields only (no priority, cookie or actions), as
// in "udp,in_port=p0,tp_dst=7999". The empty text is the match that matches
// every packet.
func ParseMatch(text string) (Match, error) {
	r, err := parseText(text, modeMatch)
	if err != nil {
		return Match{}, err
	}
	return r.flow.Match, nil
}

// Filter selects installed flows, as the flow argument of ovs-ofctl
// del-flows and dump-flows does.
type Filter struct {
	Match       Match
	Priority    uint16 // used by strict selection only; DefaultPriority unless HasPriority
	HasPriority bool
	Table       uint8 // the table a flow must be in, when HasTable
	HasTable    bool
	Cookie      uint64
	CookieMask  uint64 // bits of Cookie a flow's cookie must agree with; 0 = any cookie
}

// ParseFilter parses a filter: match fields plus optional priority=,
// cookie=VALUE[/MASK] (without a mask the cookie must be equal) and table=N
// (without it, a filter selects flows of every table, as in ovs-ofctl).
func ParseFilter(text string) (Filter, error) {
	r, err := parseText(text, modeFilter)
	if err != nil {
		return Filter{}, err
	}
	return Filter{
		Match:       r.flow.Match,
		Priority:    r.flow.Priority,
		HasPriority: r.hasPriority,
		Table:       r.flow.Table,
		HasTable:    r.hasTable,
		Cookie:      r.flow.Cookie,
		CookieMask:  r.cookieMask,
	}, nil
}

// Selects reports whether the filter selects f. Not strict (OVS's default):
// the filter's match covers f's (see Match.Covers) and priority is ignored.
// Strict (--strict): f's match equals the filter's and so does its
// priority. In both, f's cookie must agree with Cookie under CookieMask,
// and f must be in Table if the filter names one.
func (flt *Filter) Selects(f *Flow, strict bool) bool {
	if (f.Cookie^flt.Cookie)&flt.CookieMask != 0 || flt.HasTable && f.Table != flt.Table {
		return false
	}
	if !strict {
		return flt.Match.Covers(&f.Match)
	}
	return f.Priority == flt.Priority && f.Match == flt.Match
}

// ParseActions parses an action list as it follows actions=, e.g.
// "mod_tp_dst:7998,output:p1". The empty list and "drop" give nil (drop).
// Prerequisites on the match are not checked here (see Flow.Check).
func ParseActions(text string) ([]Action, error) {
	p := &textParser{text: text}
	pas, err := p.actions(0, text)
	if err != nil {
		return nil, err
	}
	return actionsOf(pas), nil
}

// ParseAction parses one action, e.g. "output:p1". "drop" is not an action
// but the empty action list: ParseAction refuses it.
func ParseAction(text string) (Action, error) {
	p := &textParser{text: text}
	toks := splitActions(text, 0)
	if len(toks) != 1 {
		return Action{}, p.errAt(-1, "", "want exactly one action in %q", text)
	}
	pa, drop, err := p.action(toks[0])
	if err != nil {
		return Action{}, err
	}
	if drop {
		return Action{}, p.errAt(toks[0].off, "drop", "drop is the empty action list, not an action")
	}
	return pa.a, nil
}

// ParseMatchFields builds a match from structured input, a map from field
// name to value in the text syntax ({"udp": "", "tp_dst": "7999"}): a
// shorthand takes the empty value. Fields are applied in name order; errors
// name the field (ParseError.Field) and have Column 0.
func ParseMatchFields(fields map[string]string) (Match, error) {
	p := &textParser{}
	b := matchBuilder{p: p}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := matchFieldByName[name]
		if f == nil {
			if flowFields[name] {
				return Match{}, p.errAt(-1, name, "%s is not a match field", name)
			}
			return Match{}, p.errAt(-1, name, "unknown field %q", name)
		}
		v := fields[name]
		if err := b.add(f, v, v != "", -1); err != nil {
			return Match{}, err
		}
	}
	m, err := b.finish()
	if err != nil {
		return Match{}, err
	}
	return m, nil
}

// flowFields are the fields of a flow that are not match fields.
var flowFields = map[string]bool{
	"priority": true, "cookie": true, "idle_timeout": true, "hard_timeout": true, "actions": true,
	"table": true, "duration": true, "n_packets": true, "n_bytes": true, "idle_age": true, "hard_age": true,
	"datapath": true,
}

// textParser turns byte offsets into the text being parsed into columns for
// errors. Structured input has no text: offset -1, column 0.
type textParser struct {
	text string
}

func (p *textParser) errAt(off int, field, format string, args ...any) *ParseError {
	col := 0
	if off >= 0 {
		col = utf8.RuneCountInString(p.text[:off]) + 1
	}
	return &ParseError{Field: field, Column: col, Msg: fmt.Sprintf(format, args...)}
}

type parseMode uint8

const (
	modeFlow parseMode = iota
	modeMatch
	modeFilter
)

func (m parseMode) String() string {
	switch m {
	case modeMatch:
		return "a match"
	case modeFilter:
		return "a filter"
	}
	return "a flow"
}

type parseResult struct {
	flow        Flow
	hasPriority bool
	hasTable    bool
	cookieMask  uint64
}

func isFlowSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func parseText(text string, mode parseMode) (*parseResult, error) {
	p := &textParser{text: text}
	r := &parseResult{flow: Flow{Priority: DefaultPriority}}
	b := matchBuilder{p: p}
	var seen map[string]bool
	var acts []parsedAction
	hasActions := false
	for i := 0; ; {
		for i < len(text) && isFlowSep(text[i]) {
			i++
		}
		if i == len(text) {
			break
		}
		start := i
		for i < len(text) && !isFlowSep(text[i]) && text[i] != '=' {
			i++
		}
		key, value, hasValue := text[start:i], "", false
		if i < len(text) && text[i] == '=' {
			if key == "actions" {
				if mode != modeFlow {
					return nil, p.errAt(start, key, "actions are not allowed in %s", mode)
				}
				var err *ParseError
				if acts, err = p.actions(i+1, text[i+1:]); err != nil {
					return nil, err
				}
				hasActions = true
				break
			}
			i++
			vstart := i
			for i < len(text) && !isFlowSep(text[i]) {
				i++
			}
			value, hasValue = text[vstart:i], true
		}
		if f := matchFieldByName[key]; f != nil {
			if err := b.add(f, value, hasValue, start); err != nil {
				return nil, err
			}
			continue
		}
		if !flowFields[key] {
			return nil, p.errAt(start, key, "unknown field %q", key)
		}
		if err := p.flowField(r, mode, key, value, hasValue, start); err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, p.errAt(start, key, "%s given twice", key)
		}
		if seen == nil {
			seen = make(map[string]bool)
		}
		seen[key] = true
	}
	m, err := b.finish()
	if err != nil {
		return nil, err
	}
	r.flow.Match = m
	if mode != modeFlow {
		return r, nil
	}
	if !hasActions {
		return nil, p.errAt(-1, "actions", "missing actions")
	}
	for _, pa := range acts {
		if !pa.need.holds(&m) {
			return nil, p.errAt(pa.off, pa.name, "%s requires %s", pa.what, pa.need)
		}
		if msg := flowActionProblem(&r.flow, &pa.a); msg != "" {
			return nil, p.errAt(pa.off, pa.name, "%s", msg)
		}
	}
	r.flow.Actions = actionsOf(acts)
	return r, nil
}

// flowField parses one of flowFields (other than actions) into r.
func (p *textParser) flowField(r *parseResult, mode parseMode, key, value string, hasValue bool, off int) *ParseError {
	allowed := false
	switch mode {
	case modeFlow:
		allowed = true
	case modeFilter:
		allowed = key == "priority" || key == "cookie" || key == "table"
	}
	if !allowed {
		return p.errAt(off, key, "%s is not allowed in %s", key, mode)
	}
	if !hasValue || value == "" {
		return p.errAt(off, key, "missing value for %s", key)
	}
	bad := func(msg string) *ParseError {
		return p.errAt(off, key, "bad value %q for %s: %s", value, key, msg)
	}
	num := func(max uint64) (uint64, *ParseError) {
		v, msg := parseNum(value, max)
		if msg != "" {
			return 0, bad(msg)
		}
		return v, nil
	}
	var err *ParseError
	var v uint64
	switch key {
	case "priority":
		v, err = num(0xffff)
		r.flow.Priority, r.hasPriority = uint16(v), true
	case "idle_timeout":
		v, err = num(0xffff)
		r.flow.IdleTimeout = uint16(v)
	case "hard_timeout":
		v, err = num(0xffff)
		r.flow.HardTimeout = uint16(v)
	case "cookie":
		vs, ms, masked := strings.Cut(value, "/")
		if masked && mode != modeFilter {
			return p.errAt(off, key, "a cookie mask is only allowed in a filter")
		}
		c, msg := parseNum(vs, math.MaxUint64)
		if msg != "" {
			return bad(msg)
		}
		mask := uint64(math.MaxUint64)
		if masked {
			if mask, msg = parseNum(ms, math.MaxUint64); msg != "" {
				return bad("mask " + msg)
			}
		}
		r.flow.Cookie, r.cookieMask = c&mask, mask
	case "table":
		v, err = num(MaxTable)
		r.flow.Table, r.hasTable = uint8(v), true
	case "duration":
		d, ok := strings.CutSuffix(value, "s")
		if f, perr := strconv.ParseFloat(d, 64); !ok || perr != nil || !(f >= 0) || math.IsInf(f, 0) {
			err = bad("not a duration in seconds like 1.234s")
		}
	case "n_packets", "n_bytes", "idle_age", "hard_age":
		_, err = num(math.MaxUint64)
	case "datapath":
		if rest, ok := strings.CutPrefix(value, "user("); value != "xdp" && value != "user" && (!ok || !strings.HasSuffix(rest, ")")) {
			err = bad("want xdp, user or user(REASON)")
		}
	}
	return err
}

// matchBuilder collects match fields in any order and checks them together.
type matchBuilder struct {
	p       *textParser
	m       Match
	entries []matchEntry
}

type matchEntry struct {
	f    *matchField
	text string // as written: name, or name=value
	off  int
	k, m Key // what the field alone matches
}

func (b *matchBuilder) add(f *matchField, value string, hasValue bool, off int) *ParseError {
	p := b.p
	e := matchEntry{f: f, text: f.name, off: off}
	switch {
	case f.short:
		if hasValue {
			return p.errAt(off, f.name, "%s takes no value", f.name)
		}
		putUint(&e.k, steer.OffDlType, 2, uint64(f.dlType))
		putUint(&e.m, steer.OffDlType, 2, 0xffff)
		if f.nwProto >= 0 {
			e.k[steer.OffNwProto], e.m[steer.OffNwProto] = byte(f.nwProto), 0xff
		}
	case !hasValue || value == "":
		return p.errAt(off, f.name, "missing value for %s", f.name)
	case f.group == groupInPort:
		if msg := portNameProblem(value); msg != "" {
			return p.errAt(off, f.name, "bad value %q for %s: %s", value, f.name, msg)
		}
	default:
		if msg := f.set(value, &e.k, &e.m); msg != "" {
			return p.errAt(off, f.name, "bad value %q for %s: %s", value, f.name, msg)
		}
	}
	if hasValue {
		e.text = f.name + "=" + value
	}
	for i := range b.entries {
		o := &b.entries[i]
		if f.short && o.f == f {
			return nil // a repeated shorthand adds nothing (and keeps the entries few)
		}
		if f.group != groupNone && o.f.group == f.group {
			if o.f == f {
				return p.errAt(off, f.name, "%s given twice", f.name)
			}
			return p.errAt(off, f.name, "%s conflicts with %s", f.name, o.f.name)
		}
		for j := range e.m {
			if both := e.m[j] & o.m[j]; e.k[j]&both != o.k[j]&both {
				return p.errAt(off, f.name, "%s conflicts with %s", e.text, o.text)
			}
		}
	}
	for j := range e.m {
		b.m.Key[j] |= e.k[j]
		b.m.Mask[j] |= e.m[j]
	}
	if f.group == groupInPort {
		b.m.InPort = value
	}
	b.entries = append(b.entries, e)
	return nil
}

// finish checks every field's prerequisites against the whole match. A
// field whose mask is zero (tp_dst=0/0) matches nothing and needs nothing.
func (b *matchBuilder) finish() (Match, *ParseError) {
	for i := range b.entries {
		e := &b.entries[i]
		if e.f.prereq == nil || e.m == (Key{}) {
			continue
		}
		if !e.f.prereq(&b.m) {
			return Match{}, b.p.errAt(e.off, e.f.name, "%s requires %s", e.f.name, e.f.needs)
		}
	}
	return b.m, nil
}

// Actions.

// actionNeed is what an action needs the match to say.
type actionNeed uint8

const (
	needNothing actionNeed = iota
	needIPv4
	needIP
	needTCPUDP
	needTCP
	needUDP
)

func (n actionNeed) holds(m *Match) bool {
	switch n {
	case needIPv4:
		return matchIsIPv4(m)
	case needIP:
		return matchIsIP(m)
	case needTCPUDP:
		return matchIsTCPUDP(m)
	case needTCP:
		return matchIsProto(m, ipProtoTCP)
	case needUDP:
		return matchIsProto(m, ipProtoUDP)
	}
	return true
}

func (n actionNeed) String() string {
	return [...]string{"nothing", "ip", "ip or ipv6", "udp or tcp", "tcp", "udp"}[n]
}

type parsedAction struct {
	a    Action
	name string // the action's name as written, for ParseError.Field
	what string // how errors call it: "mod_tp_dst", "set_field to tcp_dst"
	off  int
	need actionNeed
}

func actionsOf(pas []parsedAction) []Action {
	if len(pas) == 0 {
		return nil
	}
	acts := make([]Action, len(pas))
	for i := range pas {
		acts[i] = pas[i].a
	}
	return acts
}

type actionToken struct {
	text string
	off  int // byte offset in the parser's text; -1 for structured input
}

// splitActions splits an action list at commas and whitespace outside
// parentheses (resubmit(,1) is one action). base is the list's offset in
// the whole text (-1: structured input, no offsets).
func splitActions(s string, base int) []actionToken {
	var toks []actionToken
	for i := 0; ; {
		for i < len(s) && isFlowSep(s[i]) {
			i++
		}
		if i == len(s) {
			return toks
		}
		start, depth := i, 0
		for ; i < len(s) && (depth > 0 || !isFlowSep(s[i])); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		off := -1
		if base >= 0 {
			off = base + start
		}
		toks = append(toks, actionToken{s[start:i], off})
	}
}

// splitAction splits one action into its name and value: name:VALUE or
// name(VALUE), as ovs-ofctl takes both.
func splitAction(s string) (name, value string, hasValue bool) {
	i := strings.IndexAny(s, ":(")
	switch {
	case i < 0:
		return s, "", false
	case s[i] == ':':
		return s[:i], s[i+1:], true
	case strings.HasSuffix(s, ")"):
		return s[:i], s[i+1 : len(s)-1], true
	}
	return s, "", false // an unbalanced "(": reported as an unknown action
}

// actions parses an action list starting at byte offset base of p.text.
func (p *textParser) actions(base int, s string) ([]parsedAction, *ParseError) {
	return p.actionList(splitActions(s, base))
}

func (p *textParser) actionList(toks []actionToken) ([]parsedAction, *ParseError) {
	pas := make([]parsedAction, 0, len(toks))
	for _, tok := range toks {
		pa, drop, err := p.action(tok)
		if err != nil {
			return nil, err
		}
		if drop {
			if len(toks) > 1 {
				return nil, p.errAt(tok.off, "drop", "drop must be the only action")
			}
			return nil, nil
		}
		pas = append(pas, pa)
	}
	for i := range pas {
		k := actionKinds[pas[i].a.Type]
		if k.alone && len(pas) > 1 {
			return nil, p.errAt(pas[i].off, pas[i].name, "%s must be the only action", k.name)
		}
		if k.last && i != len(pas)-1 {
			return nil, p.errAt(pas[i].off, pas[i].name, "%s must be the last action", k.name)
		}
	}
	return pas, nil
}

// unsupportedActions are OVS actions xvs does not have. Naming one is an
// error rather than an output to a port of that name.
var unsupportedActions = map[string]bool{
	"normal": true, "flood": true, "all": true, "controller": true, "local": true,
	"enqueue": true, "learn": true, "note": true, "set_queue": true,
	"pop_queue": true, "ct": true, "ct_clear": true, "meter": true,
	"clone": true, "exit": true, "multipath": true, "bundle": true,
	"sample": true, "push_mpls": true, "pop_mpls": true, "dec_mpls_ttl": true,
	"set_mpls_ttl": true, "set_tunnel": true, "mod_nw_ecn": true, "mod_nw_ttl": true,
	"move": true, "load": true, "output_reg": true, "mod_vlan_tci": true,
	"write_actions": true, "clear_actions": true, "write_metadata": true,
}

// action parses one action token. drop reports the "drop" keyword.
func (p *textParser) action(tok actionToken) (pa parsedAction, drop bool, err *ParseError) {
	name, value, hasValue := splitAction(tok.text)
	pa = parsedAction{name: name, what: name, off: tok.off}
	if name == "drop" {
		if hasValue {
			return pa, false, p.errAt(tok.off, name, "drop takes no value")
		}
		return pa, true, nil
	}
	if name == "set_field" && hasValue {
		return pa, false, p.setField(&pa, value)
	}
	t, known := actionByName[name]
	switch {
	case !known && unsupportedActions[name]:
		return pa, false, p.errAt(tok.off, name, "unsupported action %q", name)
	case !known && !hasValue && portNameProblem(name) == "":
		// A bare port name is output to that port, as in OVS.
		pa.a = Action{Type: ActOutput, Port: name}
		pa.name, pa.what = "output", "output"
		return pa, false, nil
	case !known:
		return pa, false, p.errAt(tok.off, name, "unknown action %q", name)
	}
	k := actionKinds[t]
	pa.a.Type, pa.need = t, k.need
	switch {
	case k.value && (!hasValue || value == ""):
		return pa, false, p.errAt(tok.off, name, "missing value for %s", name)
	case !k.value && hasValue:
		return pa, false, p.errAt(tok.off, name, "%s takes no value", name)
	case !k.value:
		return pa, false, nil
	}
	msg := k.parse(value, &pa.a)
	if msg == "" {
		msg = actionProblem(&pa.a)
	}
	if msg != "" {
		return pa, false, p.errAt(tok.off, name, "bad value %q for %s: %s", value, name, msg)
	}
	return pa, false, nil
}

// setFieldTarget is a field set_field can set: the action it is, how its
// value reads, and what the match must say (tcp_src needs tcp, not just
// udp or tcp).
type setFieldTarget struct {
	typ   ActionType
	parse func(v string, a *Action) string
	need  actionNeed
}

var setFieldTargets = map[string]setFieldTarget{
	"eth_src": {ActSetDlSrc, parseMACValue, needNothing},
	"dl_src":  {ActSetDlSrc, parseMACValue, needNothing},
	"eth_dst": {ActSetDlDst, parseMACValue, needNothing},
	"dl_dst":  {ActSetDlDst, parseMACValue, needNothing},
	"ip_src":  {ActSetNwSrc, parseIPv4Value, needIPv4},
	"nw_src":  {ActSetNwSrc, parseIPv4Value, needIPv4},
	"ip_dst":  {ActSetNwDst, parseIPv4Value, needIPv4},
	"nw_dst":  {ActSetNwDst, parseIPv4Value, needIPv4},
	"nw_tos":  {ActSetNwTos, parseValue(0xff), needIPv4},
	"ip_dscp": {ActSetNwTos, func(v string, a *Action) string {
		n, msg := parseNum(v, 63)
		a.Value = uint32(n) << 2
		return msg
	}, needIPv4},
	"tcp_src": {ActSetTpSrc, parseValue(0xffff), needTCP},
	"udp_src": {ActSetTpSrc, parseValue(0xffff), needUDP},
	"tp_src":  {ActSetTpSrc, parseValue(0xffff), needTCPUDP},
	"tcp_dst": {ActSetTpDst, parseValue(0xffff), needTCP},
	"udp_dst": {ActSetTpDst, parseValue(0xffff), needUDP},
	"tp_dst":  {ActSetTpDst, parseValue(0xffff), needTCPUDP},
	// OpenFlow's vlan_vid may carry the "VID present" bit 0x1000; as in
	// OVS, setting it sets the VID alone.
	"vlan_vid": {ActSetVlanVID, func(v string, a *Action) string {
		n, msg := parseNum(v, 0x1fff)
		a.Value = uint32(n) & 0x0fff
		return msg
	}, needNothing},
	"vlan_pcp": {ActSetVlanPCP, parseValue(7), needNothing},
}

// setField parses set_field:VALUE->FIELD into the action mod_* would give.
func (p *textParser) setField(pa *parsedAction, arg string) *ParseError {
	i := strings.LastIndex(arg, "->")
	if i < 0 {
		return p.errAt(pa.off, "set_field", "set_field wants VALUE->FIELD, got %q", arg)
	}
	value, field := arg[:i], arg[i+2:]
	pa.what = "set_field to " + field
	tg, ok := setFieldTargets[field]
	if !ok {
		return p.errAt(pa.off, "set_field", "set_field: unknown or unsupported field %q", field)
	}
	pa.a = Action{Type: tg.typ}
	pa.need = tg.need
	msg := tg.parse(value, &pa.a)
	if msg == "" {
		msg = actionProblem(&pa.a)
	}
	if msg != "" {
		return p.errAt(pa.off, "set_field", "bad value %q for set_field to %s: %s", value, field, msg)
	}
	return nil
}

// Checks on the model.

// Check reports whether f is a flow ParseFlow could have produced: its
// table is 0..MaxTable, its match passes Match.Check, and its actions are
// well formed (valid port names, values in range, no field set that the
// action type does not use, kernel alone, goto_table last and to a later
// table, no zero ActionType) and their prerequisites hold on the match
// (mod_nw_* need ip, mod_tp_* need udp or tcp, dec_ttl needs ip or ipv6).
// For such a flow, ParseFlow(f.String()) returns f again (ID aside, and with
// nil Actions for drop). The error is a *ParseError, Column 0.
func (f *Flow) Check() error {
	if f.Table > MaxTable {
		return &ParseError{Field: "table", Msg: fmt.Sprintf("table %d out of range 0..%d", f.Table, MaxTable)}
	}
	if err := f.Match.Check(); err != nil {
		return err
	}
	if field, msg := listProblem(f.Actions); msg != "" {
		return &ParseError{Field: field, Msg: msg}
	}
	for i := range f.Actions {
		a := &f.Actions[i]
		name := actionName(a.Type)
		if msg := actionProblem(a); msg != "" {
			return &ParseError{Field: name, Msg: fmt.Sprintf("action %d (%s): %s", i+1, FormatAction(*a), msg)}
		}
		if msg := flowActionProblem(f, a); msg != "" {
			return &ParseError{Field: name, Msg: msg}
		}
		if n := actionKinds[a.Type].need; !n.holds(&f.Match) {
			return &ParseError{Field: name, Msg: fmt.Sprintf("%s requires %s", name, n)}
		}
	}
	return nil
}

// flowActionProblem says what is wrong with a in flow f, beyond a itself:
// goto_table must go to a later table, and kernel is only for table 0.
func flowActionProblem(f *Flow, a *Action) string {
	switch {
	case a.Type == ActGotoTable && a.Table <= f.Table:
		return fmt.Sprintf("goto_table:%d must go to a table after the flow's own (%d)", a.Table, f.Table)
	case a.Type == ActKernel && f.Table != 0:
		return fmt.Sprintf("kernel is for table 0 only: a packet table %d sees has left the kernel, which passes it only from table 0", f.Table)
	}
	return ""
}
