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
// takes the rest of the text. Besides the match fields it takes priority=
// (default DefaultPriority), cookie= (hex or decimal), idle_timeout= and
// hard_timeout=, and it accepts and ignores the fields dump-flows prints
// (duration=, n_packets=, n_bytes=, idle_age=, hard_age=, table=0), so a line
// of dump-flows output is a valid flow. Prerequisites (tp_dst requires udp or
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
	Cookie      uint64
	CookieMask  uint64 // bits of Cookie a flow's cookie must agree with; 0 = any cookie
}

// ParseFilter parses a filter: match fields plus optional priority=,
// cookie=VALUE[/MASK] (without a mask the cookie must be equal) and table=0.
func ParseFilter(text string) (Filter, error) {
	r, err := parseText(text, modeFilter)
	if err != nil {
		return Filter{}, err
	}
	return Filter{
		Match:       r.flow.Match,
		Priority:    r.flow.Priority,
		HasPriority: r.hasPriority,
		Cookie:      r.flow.Cookie,
		CookieMask:  r.cookieMask,
	}, nil
}

// Selects reports whether the filter selects f. Not strict (OVS's default):
// the filter's match covers f's (see Match.Covers) and priority is ignored.
// Strict (--strict): f's match equals the filter's and so does its
// priority. In both, f's cookie must agree with Cookie under CookieMask.
func (flt *Filter) Selects(f *Flow, strict bool) bool {
	if (f.Cookie^flt.Cookie)&flt.CookieMask != 0 {
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
		if v, err = num(0xff); err == nil && v != 0 {
			err = bad("there is only table 0")
		}
	case "duration":
		d, ok := strings.CutSuffix(value, "s")
		if f, perr := strconv.ParseFloat(d, 64); !ok || perr != nil || !(f >= 0) || math.IsInf(f, 0) {
			err = bad("not a duration in seconds like 1.234s")
		}
	case "n_packets", "n_bytes", "idle_age", "hard_age":
		_, err = num(math.MaxUint64)
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

// needOf is what an action of type t needs, whatever its text said.
func needOf(t ActionType) actionNeed {
	switch t {
	case ActSetNwSrc, ActSetNwDst, ActSetNwTos:
		return needIPv4
	case ActSetTpSrc, ActSetTpDst:
		return needTCPUDP
	case ActDecTTL:
		return needIP
	}
	return needNothing
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

// splitActions splits an action list at commas and whitespace. base is the
// list's offset in the whole text (-1: structured input, no offsets).
func splitActions(s string, base int) []actionToken {
	var toks []actionToken
	for i := 0; ; {
		for i < len(s) && isFlowSep(s[i]) {
			i++
		}
		if i == len(s) {
			return toks
		}
		start := i
		for i < len(s) && !isFlowSep(s[i]) {
			i++
		}
		off := -1
		if base >= 0 {
			off = base + start
		}
		toks = append(toks, actionToken{s[start:i], off})
	}
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
		if pa.a.Type == ActKernel && len(toks) > 1 {
			return nil, p.errAt(tok.off, "kernel", "kernel must be the only action")
		}
		pas = append(pas, pa)
	}
	return pas, nil
}

// unsupportedActions are OVS actions xvs does not have. Naming one is an
// error rather than an output to a port of that name.
var unsupportedActions = map[string]bool{
	"normal": true, "flood": true, "all": true, "controller": true, "local": true,
	"enqueue": true, "resubmit": true, "learn": true, "note": true, "set_queue": true,
	"pop_queue": true, "ct": true, "ct_clear": true, "meter": true, "group": true,
	"goto_table": true, "clone": true, "exit": true, "multipath": true, "bundle": true,
	"sample": true, "push_mpls": true, "pop_mpls": true, "dec_mpls_ttl": true,
	"set_mpls_ttl": true, "set_tunnel": true, "mod_nw_ecn": true, "mod_nw_ttl": true,
	"move": true, "load": true, "output_reg": true, "mod_vlan_tci": true,
}

// action parses one action token. drop reports the "drop" keyword.
func (p *textParser) action(tok actionToken) (pa parsedAction, drop bool, err *ParseError) {
	name, value, hasValue := strings.Cut(tok.text, ":")
	pa = parsedAction{name: name, what: name, off: tok.off}
	bad := func(msg string) *ParseError {
		return p.errAt(tok.off, name, "bad value %q for %s: %s", value, name, msg)
	}
	noValue := func(t ActionType) *ParseError {
		if hasValue {
			return p.errAt(tok.off, name, "%s takes no value", name)
		}
		pa.a.Type = t
		pa.need = needOf(t)
		return nil
	}
	num := func(t ActionType, max uint64) *ParseError {
		v, msg := parseNum(value, max)
		if msg != "" {
			return bad(msg)
		}
		pa.a = Action{Type: t, Value: uint16(v)}
		pa.need = needOf(t)
		return nil
	}
	if t, ok := bareActions[name]; ok {
		err = noValue(t)
		return pa, name == "drop", err
	}
	if !hasValue {
		switch {
		case actionsWithValue[name]:
			return pa, false, p.errAt(tok.off, name, "missing value for %s", name)
		case unsupportedActions[name]:
			return pa, false, p.errAt(tok.off, name, "unsupported action %q", name)
		case portNameProblem(name) != "":
			return pa, false, p.errAt(tok.off, name, "unknown action %q", name)
		}
		// A bare port name is output to that port, as in OVS.
		pa.a = Action{Type: ActOutput, Port: name}
		pa.name, pa.what = "output", "output"
		return pa, false, nil
	}
	if value == "" {
		return pa, false, p.errAt(tok.off, name, "missing value for %s", name)
	}
	switch name {
	case "output":
		if value == "in_port" {
			pa.a.Type = ActInPort
			break
		}
		if msg := portNameProblem(value); msg != "" {
			return pa, false, bad(msg)
		}
		pa.a = Action{Type: ActOutput, Port: value}
	case "mod_dl_src", "mod_dl_dst":
		mac, ok := parseMAC(value)
		if !ok {
			return pa, false, bad("not a MAC address")
		}
		pa.a = Action{Type: ActSetDlSrc, MAC: mac}
		if name == "mod_dl_dst" {
			pa.a.Type = ActSetDlDst
		}
	case "mod_nw_src", "mod_nw_dst":
		a, ok := parseIPv4(value)
		if !ok {
			return pa, false, bad("not an IPv4 address")
		}
		pa.a = Action{Type: ActSetNwSrc, Addr: a}
		if name == "mod_nw_dst" {
			pa.a.Type = ActSetNwDst
		}
		pa.need = needIPv4
	case "mod_nw_tos":
		if err := num(ActSetNwTos, 0xff); err != nil {
			return pa, false, err
		}
		if pa.a.Value&^nwTosMask != 0 {
			return pa, false, bad("the low 2 bits (ECN) must be zero")
		}
	case "mod_tp_src":
		err = num(ActSetTpSrc, 0xffff)
	case "mod_tp_dst":
		err = num(ActSetTpDst, 0xffff)
	case "push_vlan":
		if err = num(ActPushVLAN, 0xffff); err == nil && pa.a.Value != etherTypeVLAN && pa.a.Value != etherTypeQinQ {
			err = bad("must be 0x8100 or 0x88a8")
		}
	case "mod_vlan_vid":
		err = num(ActSetVlanVID, 0x0fff)
	case "mod_vlan_pcp":
		err = num(ActSetVlanPCP, 7)
	case "set_field":
		err = p.setField(&pa, value)
	default:
		if unsupportedActions[name] {
			return pa, false, p.errAt(tok.off, name, "unsupported action %q", name)
		}
		return pa, false, p.errAt(tok.off, name, "unknown action %q", name)
	}
	return pa, false, err
}

// bareActions are the actions that take no value; "drop" (type 0) is the
// empty list.
var bareActions = map[string]ActionType{
	"drop": 0, "kernel": ActKernel, "in_port": ActInPort,
	"strip_vlan": ActStripVLAN, "pop_vlan": ActStripVLAN, "dec_ttl": ActDecTTL,
}

// actionsWithValue are the actions that take a value after a colon.
var actionsWithValue = map[string]bool{
	"output": true, "mod_dl_src": true, "mod_dl_dst": true, "mod_nw_src": true, "mod_nw_dst": true,
	"mod_nw_tos": true, "mod_tp_src": true, "mod_tp_dst": true, "push_vlan": true,
	"mod_vlan_vid": true, "mod_vlan_pcp": true, "set_field": true,
}

// setField parses set_field:VALUE->FIELD into the action mod_* would give.
func (p *textParser) setField(pa *parsedAction, arg string) *ParseError {
	i := strings.LastIndex(arg, "->")
	if i < 0 {
		return p.errAt(pa.off, "set_field", "set_field wants VALUE->FIELD, got %q", arg)
	}
	value, field := arg[:i], arg[i+2:]
	pa.what = "set_field to " + field
	bad := func(msg string) *ParseError {
		return p.errAt(pa.off, "set_field", "bad value %q for set_field to %s: %s", value, field, msg)
	}
	num := func(max uint64) (uint16, *ParseError) {
		v, msg := parseNum(value, max)
		if msg != "" {
			return 0, bad(msg)
		}
		return uint16(v), nil
	}
	var err *ParseError
	a := &pa.a
	switch field {
	case "eth_src", "dl_src", "eth_dst", "dl_dst":
		mac, ok := parseMAC(value)
		if !ok {
			return bad("not a MAC address")
		}
		a.Type, a.MAC = ActSetDlSrc, mac
		if field == "eth_dst" || field == "dl_dst" {
			a.Type = ActSetDlDst
		}
	case "ip_src", "nw_src", "ip_dst", "nw_dst":
		addr, ok := parseIPv4(value)
		if !ok {
			return bad("not an IPv4 address")
		}
		a.Type, a.Addr = ActSetNwSrc, addr
		if field == "ip_dst" || field == "nw_dst" {
			a.Type = ActSetNwDst
		}
	case "nw_tos":
		a.Type = ActSetNwTos
		if a.Value, err = num(0xff); err == nil && a.Value&^nwTosMask != 0 {
			err = bad("the low 2 bits (ECN) must be zero")
		}
	case "ip_dscp":
		a.Type = ActSetNwTos
		a.Value, err = num(63)
		a.Value <<= 2
	case "tcp_src", "udp_src", "tp_src":
		a.Type = ActSetTpSrc
		a.Value, err = num(0xffff)
	case "tcp_dst", "udp_dst", "tp_dst":
		a.Type = ActSetTpDst
		a.Value, err = num(0xffff)
	case "vlan_vid":
		// OpenFlow's vlan_vid may carry the "VID present" bit 0x1000; as in
		// OVS, setting it sets the VID alone.
		a.Type = ActSetVlanVID
		a.Value, err = num(0x1fff)
		a.Value &= 0x0fff
	case "vlan_pcp":
		a.Type = ActSetVlanPCP
		a.Value, err = num(7)
	default:
		return p.errAt(pa.off, "set_field", "set_field: unknown or unsupported field %q", field)
	}
	pa.need = needOf(a.Type)
	switch field {
	case "tcp_src", "tcp_dst":
		pa.need = needTCP
	case "udp_src", "udp_dst":
		pa.need = needUDP
	}
	return err
}

// Checks on the model.

// Check reports whether f is a flow ParseFlow could have produced: its match
// passes Match.Check, and its actions are well formed (valid port names,
// values in range, no field set that the action type does not use, kernel
// alone, no zero ActionType) and their prerequisites hold on the match
// (mod_nw_* need ip, mod_tp_* need udp or tcp, dec_ttl needs ip or ipv6).
// For such a flow, ParseFlow(f.String()) returns f again (ID aside, and with
// nil Actions for drop). The error is a *ParseError, Column 0.
func (f *Flow) Check() error {
	if err := f.Match.Check(); err != nil {
		return err
	}
	for i, a := range f.Actions {
		if msg := actionProblem(a); msg != "" {
			return &ParseError{Field: actionName(a.Type), Msg: fmt.Sprintf("action %d (%s): %s", i+1, actionName(a.Type), msg)}
		}
		if a.Type == ActKernel && len(f.Actions) > 1 {
			return &ParseError{Field: "kernel", Msg: "kernel must be the only action"}
		}
		if n := needOf(a.Type); !n.holds(&f.Match) {
			return &ParseError{Field: actionName(a.Type), Msg: fmt.Sprintf("%s requires %s", actionName(a.Type), n)}
		}
	}
	return nil
}

// actionProblem says what is wrong with a on its own, or "".
func actionProblem(a Action) string {
	want := Action{Type: a.Type} // a with only the fields its type uses
	switch a.Type {
	case ActOutput:
		if msg := portNameProblem(a.Port); msg != "" {
			return fmt.Sprintf("port name %q: %s", a.Port, msg)
		}
		want.Port = a.Port
	case ActInPort, ActKernel, ActStripVLAN, ActDecTTL:
	case ActSetDlSrc, ActSetDlDst:
		want.MAC = a.MAC
	case ActSetNwSrc, ActSetNwDst:
		if !a.Addr.Is4() {
			return fmt.Sprintf("%v is not an IPv4 address", a.Addr)
		}
		want.Addr = a.Addr
	case ActSetNwTos:
		if a.Value > 0xff || a.Value&^nwTosMask != 0 {
			return fmt.Sprintf("tos %d: must be 0..255 with the low 2 bits (ECN) zero", a.Value)
		}
		want.Value = a.Value
	case ActSetTpSrc, ActSetTpDst:
		want.Value = a.Value
	case ActPushVLAN:
		if a.Value != etherTypeVLAN && a.Value != etherTypeQinQ {
			return fmt.Sprintf("ethertype %#04x: must be 0x8100 or 0x88a8", a.Value)
		}
		want.Value = a.Value
	case ActSetVlanVID:
		if a.Value > 0x0fff {
			return fmt.Sprintf("vid %d out of range 0..4095", a.Value)
		}
		want.Value = a.Value
	case ActSetVlanPCP:
		if a.Value > 7 {
			return fmt.Sprintf("pcp %d out of range 0..7", a.Value)
		}
		want.Value = a.Value
	default:
		return "unknown action type"
	}
	if a != want {
		return "sets fields its type does not use"
	}
	return ""
}
