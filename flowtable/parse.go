package flowtable

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	r := parseResult{flow: new(Flow)}
	if err := parseText(text, modeFlow, &r, nil); err != nil {
		return nil, err
	}
	return r.flow, nil
}

// A FlowParser parses many flows, as ParseFlow does, for a bulk request:
// it allocates the flows and their actions in blocks of flowBlock
// flows, not one by one, and the flows it returns share no memory with
// the texts they were parsed from (their port references are copies,
// one for each distinct reference of a run of flows), so the text of a
// request is garbage once it is parsed (the FlowParser itself refers
// to the last few texts it parsed, until it is dropped). A block is
// freed when none of its flows is left.
//
// Flows whose action texts are the same byte for byte share one Actions
// slice, read-only as every installed flow's is (see Change.Owned): the
// flows of a bulk request mostly have a few action lists (steer to this
// uplink, mark that DSCP), and each of the last few is parsed and
// allocated once; each flow's own checks (prerequisites on its match,
// VLAN tags, its table) still run. The zero FlowParser is ready; one is
// for one goroutine at a time.
type FlowParser struct {
	flows []Flow   // the rest of the current block
	acts  []Action // the rest of the current block of actions
	refs  [4]string
	next  int // the slot of refs to fill next
	lists [4]sharedActions
	nextL int            // the slot of lists to fill next
	pas   []parsedAction // scratch: a shared list's actions, for one flow's checks
	// b is the builder of every parse, its own: it is neither taken from
	// the pool nor cleared for it after each flow (that was a tenth of a
	// bulk parse).
	b *matchBuilder
}

// flowBlock is how many flows a FlowParser allocates at once (about 13
// KiB), and flowBlock*actBlockPerFlow actions: enough to make
// allocating them a small part of parsing, few enough that a block
// does not keep much memory for a flow that outlives its neighbours.
const (
	flowBlock       = 64
	actBlockPerFlow = 2
)

// ParseFlow parses text as ParseFlow does.
func (fp *FlowParser) ParseFlow(text string) (*Flow, error) {
	if len(fp.flows) == 0 {
		fp.flows = make([]Flow, flowBlock)
	}
	// Parsed in place: the slot is taken only if the text parses.
	f := &fp.flows[0]
	r := parseResult{flow: f}
	if err := parseText(text, modeFlow, &r, fp); err != nil {
		*f = Flow{}
		return nil, err
	}
	fp.flows = fp.flows[1:]
	f.Match.InPort = fp.intern(f.Match.InPort)
	return f, nil
}

// sharedActions is an action list a FlowParser parsed, for the next flows
// with the same action text.
type sharedActions struct {
	text []byte         // the action text (a copy: a text may be overwritten once parsed); nil = slot unused
	base int            // where it began in its flow's text: the offsets of pas count from there
	pas  []parsedAction // as parsed: for each flow's checks (their strings are an earlier text's)
	acts []Action       // what the flows with this text share (nil: drop)
}

// checked returns l's parsed actions for the checks of a flow whose
// action text begins at base: a copy in fp's scratch, its offsets moved
// into that flow's text (an error is built, if only to be thrown away,
// from an offset into the text being parsed).
func (fp *FlowParser) checked(l *sharedActions, base int) []parsedAction {
	fp.pas = append(fp.pas[:0], l.pas...)
	for i := range fp.pas {
		fp.pas[i].off += base - l.base
	}
	return fp.pas
}

// sharedList returns the action list an earlier flow had with the same
// action text, or nil.
func (fp *FlowParser) sharedList(text string) *sharedActions {
	for i := range fp.lists {
		if l := &fp.lists[i]; l.text != nil && string(l.text) == text {
			return l
		}
	}
	return nil
}

// shareList keeps the action list of text, just parsed into pas and
// given to a flow as acts (its port names interned), for the next flows.
func (fp *FlowParser) shareList(text string, base int, pas []parsedAction, acts []Action) {
	l := &fp.lists[fp.nextL]
	fp.nextL = (fp.nextL + 1) % len(fp.lists)
	l.text = append(l.text[:0], text...)
	l.base = base
	l.pas = append(l.pas[:0], pas...)
	l.acts = acts
}

// actionsOf is actionsOf(pas) out of the current block (full capacity: an
// append to it does not reach the next flow's), its port names interned.
func (fp *FlowParser) actionsOf(pas []parsedAction) []Action {
	n := len(pas)
	if n == 0 {
		return nil
	}
	var a []Action
	switch {
	case n > flowBlock:
		a = make([]Action, n)
	case n > len(fp.acts):
		fp.acts = make([]Action, flowBlock*actBlockPerFlow)
		fallthrough
	default:
		a = fp.acts[:n:n]
		fp.acts = fp.acts[n:]
	}
	for i := range pas {
		a[i] = pas[i].a
		a[i].Port = fp.intern(a[i].Port)
	}
	return a
}

// intern returns a copy of s, the same copy as for the last few equal
// references.
func (fp *FlowParser) intern(s string) string {
	if s == "" {
		return ""
	}
	for _, r := range fp.refs {
		if r == s {
			return r
		}
	}
	c := strings.Clone(s)
	fp.refs[fp.next] = c
	fp.next = (fp.next + 1) % len(fp.refs)
	return c
}

// ParseMatch parses match fields only (no priority, cookie or actions), as
// in "udp,in_port=p0,tp_dst=7999". The empty text is the match that matches
// every packet.
func ParseMatch(text string) (Match, error) {
	var f Flow
	r := parseResult{flow: &f}
	if err := parseText(text, modeMatch, &r, nil); err != nil {
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
	OutPort     string // a port reference: the flow must have an output to it ("" = any flow)
	OutGroup    uint32 // the group a flow must send to, when HasOutGroup
	HasOutGroup bool
}

// ParseFilter parses a filter: match fields plus optional priority=,
// cookie=VALUE[/MASK] (without a mask the cookie must be equal), table=N
// (without it, a filter selects flows of every table, as in ovs-ofctl),
// out_port=PORT and out_group=ID.
func ParseFilter(text string) (Filter, error) {
	var f Flow
	r := parseResult{flow: &f}
	if err := parseText(text, modeFilter, &r, nil); err != nil {
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
		OutPort:     r.outPort,
		OutGroup:    r.outGroup,
		HasOutGroup: r.hasOutGroup,
	}, nil
}

// Selects reports whether the filter selects f. Not strict (OVS's default):
// the filter's match covers f's (see Match.Covers) and priority is ignored.
// With OutPort or OutGroup, f must have an output to that port or send to
// that group (either one when both are given), as ovs-ofctl's out_port and
// out_group select: the flow's own actions, not its groups' buckets.
// Strict (--strict): f's match equals the filter's and so does its
// priority. In both, f's cookie must agree with Cookie under CookieMask,
// and f must be in Table if the filter names one.
func (flt *Filter) Selects(f *Flow, strict bool) bool {
	if (f.Cookie^flt.Cookie)&flt.CookieMask != 0 || flt.HasTable && f.Table != flt.Table {
		return false
	}
	if flt.OutPort != "" || flt.HasOutGroup {
		out := false
		for i := range f.Actions {
			a := &f.Actions[i]
			out = out || flt.OutPort != "" && a.Type == ActOutput && a.Port == flt.OutPort ||
				flt.HasOutGroup && a.Type == ActGroup && a.Value == flt.OutGroup
		}
		if !out {
			return false
		}
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
	var pa parsedAction
	drop, err := p.action(toks[0], &pa)
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
	b := newMatchBuilder(p)
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		tf, _ := textFields.lookup(name)
		f := tf.match
		if f == nil {
			if tf.bit != 0 {
				return Match{}, p.errAt(-1, name, "%s is not a match field", name)
			}
			return Match{}, p.errAt(-1, name, "unknown field %q", name)
		}
		v := fields[name]
		if err := b.add(name, f, v, v != "", -1); err != nil {
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
var flowFields = []string{
	"priority", "cookie", "idle_timeout", "hard_timeout", "actions",
	"table", "duration", "n_packets", "n_bytes", "idle_age", "hard_age",
	"datapath", "out_port", "out_group",
}

// textField is what a key of a flow's text names: a match field, or one
// of flowFields with its bit in parseText's set of those given.
type textField struct {
	match *matchField
	bit   uint32
}

// textFields holds every key a flow's text may give: the names and
// aliases of matchFields, and flowFields.
var textFields = func() *nameTable[textField] {
	if len(flowFields) > 32 {
		panic("flowtable: more flow fields than bits in parseText's set of them")
	}
	var names []string
	var fields []textField
	for _, f := range matchFields {
		for _, n := range append([]string{f.name}, f.aliases...) {
			names, fields = append(names, n), append(fields, textField{match: f})
		}
	}
	for i, n := range flowFields {
		names, fields = append(names, n), append(fields, textField{bit: 1 << i})
	}
	return newNameTable(names, fields)
}()

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
	flow        *Flow // where the flow is parsed to
	hasPriority bool
	hasTable    bool
	cookieMask  uint64
	outPort     string // filters only
	outGroup    uint32
	hasOutGroup bool
}

func isFlowSep(c byte) bool { return byteClass[c]&classSep != 0 }

// byteClass says what each byte is to the scan of a flow's text, which
// asks for every byte: a table, not a chain of compares.
var byteClass = [256]uint8{
	',': classSep, ' ': classSep, '\t': classSep, '\r': classSep, '\n': classSep,
	'=': classEq, '(': classParen, ')': classParen,
}

const (
	classSep   = 1 << iota // separates fields and actions
	classEq                // ends a field's name
	classParen             // nests in an action (resubmit(,1))
)

// parseText parses text into r, a parseResult holding only the flow to
// parse into (a zero Flow), its actions (mode modeFlow) allocated
// by fp when it is not nil. The error is a *ParseError.
func parseText(text string, mode parseMode, r *parseResult, fp *FlowParser) *ParseError {
	var b *matchBuilder
	if fp != nil {
		b = fp.builder(text)
	} else {
		b = getMatchBuilder(text)
		defer putMatchBuilder(b)
	}
	p := b.p
	r.flow.Priority = DefaultPriority // (the rest of r, and r.flow, is zero)
	var seen uint32                   // bits of textField
	var acts []parsedAction
	hasActions := false
	var actText string // the action text, and where it starts
	var actBase int
	var shared *sharedActions // with fp: an earlier flow's list, acts a copy of its pas
	for i := 0; ; {
		for i < len(text) && isFlowSep(text[i]) {
			i++
		}
		if i == len(text) {
			break
		}
		start := i
		for i < len(text) && byteClass[text[i]]&(classSep|classEq) == 0 {
			i++
		}
		key, value, hasValue := text[start:i], "", false
		if i < len(text) && text[i] == '=' {
			if key == "actions" || key == "action" { // ovs-ofctl takes both
				if mode != modeFlow {
					return p.errAt(start, key, "actions are not allowed in %s", mode)
				}
				hasActions, actText, actBase = true, text[i+1:], i+1
				if fp != nil {
					if shared = fp.sharedList(actText); shared != nil {
						acts = fp.checked(shared, actBase)
						break
					}
				}
				var err *ParseError
				if acts, err = b.actions(actText, actBase); err != nil {
					return err
				}
				break
			}
			i++
			vstart := i
			for i < len(text) && !isFlowSep(text[i]) {
				i++
			}
			value, hasValue = text[vstart:i], true
		}
		tf, known := textFields.lookup(key)
		if tf.match != nil {
			if err := b.add(key, tf.match, value, hasValue, start); err != nil {
				return err
			}
			continue
		}
		if !known {
			return p.errAt(start, key, "unknown field %q", key)
		}
		if err := p.flowField(r, mode, key, value, hasValue, start); err != nil {
			return err
		}
		if seen&tf.bit != 0 {
			return p.errAt(start, key, "%s given twice", key)
		}
		seen |= tf.bit
	}
	m, err := b.finish()
	if err != nil {
		return err
	}
	r.flow.Match = m
	if mode != modeFlow {
		return nil
	}
	if !hasActions {
		return p.errAt(-1, "actions", "missing actions")
	}
	if err := p.flowActions(r.flow, acts); err != nil {
		if shared == nil {
			return err
		}
		// The shared list fails this flow's checks: its error is told
		// from the flow's own text.
		if acts, err = b.actions(actText, actBase); err != nil {
			return err
		}
		if err := p.flowActions(r.flow, acts); err != nil {
			return err
		}
		shared = nil
	}
	switch {
	case fp == nil:
		r.flow.Actions = actionsOf(acts)
	case shared != nil:
		r.flow.Actions = shared.acts
	default:
		r.flow.Actions = fp.actionsOf(acts)
		fp.shareList(actText, actBase, acts, r.flow.Actions)
	}
	return nil
}

// flowActions checks parsed actions against flow f (its match and table):
// each action's prerequisites on the match, the VLAN tags through the
// list, goto_table and kernel's rules.
func (p *textParser) flowActions(f *Flow, acts []parsedAction) *ParseError {
	for i := range acts {
		pa := &acts[i]
		if !pa.need.holds(&f.Match) {
			return p.errAt(pa.off, pa.name, "%s requires %s (%s)", pa.what, pa.need, pa.why)
		}
		if msg := flowActionProblem(f, &pa.a); msg != "" {
			return p.errAt(pa.off, pa.name, "%s", msg)
		}
	}
	return p.vlanTags(matchTags(&f.Match), acts)
}

// matchTags is how many VLAN tags a match guarantees a frame has: 1 when
// it matches the present bit set, else 0 (no match field sees a second
// tag).
func matchTags(m *Match) int {
	if m.Key[steer.OffVlanTCI]&(steer.VlanPresent>>8) != 0 {
		return 1
	}
	return 0
}

// vlanTags follows the VLAN tags a frame is sure to have through an action
// list, starting with tags: set_field to vlan_vid or vlan_pcp needs one
// (Open vSwitch refuses it otherwise), and a push that would make a third
// is refused (Open vSwitch refuses it, OFPBAC_BAD_TAG; xvs parses two).
func (p *textParser) vlanTags(tags int, acts []parsedAction) *ParseError {
	for i := range acts {
		pa := &acts[i]
		if pa.needTag && tags == 0 {
			return p.errAt(pa.off, pa.name, "%s needs a VLAN tag: match one (dl_vlan=VID, vlan_tci=0x1000/0x1000) or push_vlan first; mod_vlan_%s pushes one onto an untagged frame (Open vSwitch refuses it too)",
				pa.what, strings.TrimPrefix(pa.field, "vlan_"))
		}
		if msg := followTags(&tags, &pa.a); msg != "" {
			return p.errAt(pa.off, pa.name, "%s", msg)
		}
	}
	return nil
}

// followTags updates tags, the VLAN tags a frame is sure to have, for
// action a, and says what is wrong if a pushes a third.
func followTags(tags *int, a *Action) string {
	switch actionKinds[a.Type].vlan {
	case vlanPush:
		if *tags++; *tags > maxVlanTags {
			return fmt.Sprintf("%s would push a third VLAN tag: xvs parses two, and Open vSwitch refuses it too (OFPBAC_BAD_TAG)", FormatAction(*a))
		}
	case vlanPop:
		*tags = max(*tags-1, 0)
	case vlanSet:
		*tags = max(*tags, 1)
	}
	return ""
}

// flowField parses one of flowFields (other than actions) into r.
func (p *textParser) flowField(r *parseResult, mode parseMode, key, value string, hasValue bool, off int) *ParseError {
	allowed := false
	switch mode {
	case modeFlow:
		allowed = key != "out_port" && key != "out_group"
	case modeFilter:
		allowed = key == "priority" || key == "cookie" || key == "table" || key == "out_port" || key == "out_group"
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
	case "out_port":
		if msg := portRefProblem(value); msg != "" {
			return bad(msg)
		}
		r.outPort = canonicalPortRef(value)
	case "out_group":
		v, err = num(math.MaxUint32)
		r.outGroup, r.hasOutGroup = uint32(v), true
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
	tp      textParser // p, for a builder of the pool
	m       Match
	k, mk   Key // what the field being added matches alone
	ok, om  Key // what an earlier field matches alone, for a conflict's message
	entries []matchEntry
	buf     [8]matchEntry // entries' first backing array: a match has few fields

	// First backing arrays of the action list parseText parses (the flow
	// it returns has its actions copied out): a flow has few actions.
	toks [8]actionToken
	pas  [4]parsedAction
	// How many of toks and pas may have been written (at most their
	// length), for putMatchBuilder.
	ntoks, npas int
}

// actions parses the action list text, which starts at byte offset base
// of the flow's text, into b's first backing arrays.
func (b *matchBuilder) actions(text string, base int) ([]parsedAction, *ParseError) {
	toks := appendActionTokens(b.toks[:0], text, base)
	b.ntoks, b.npas = min(len(toks), len(b.toks)), min(len(toks), len(b.pas))
	return b.p.appendActionList(b.pas[:0], toks)
}

func newMatchBuilder(p *textParser) *matchBuilder {
	b := &matchBuilder{p: p}
	b.entries = b.buf[:0]
	return b
}

// matchBuilders recycles the builders of parseText (and their parser): a
// bulk request parses many flows, and a builder is most of what parsing
// one allocates.
var matchBuilders = sync.Pool{New: func() any { return newOwnMatchBuilder() }}

// newOwnMatchBuilder returns a builder with a parser of its own.
func newOwnMatchBuilder() *matchBuilder {
	b := newMatchBuilder(nil)
	b.p = &b.tp
	return b
}

// start empties b for a parse of text.
func (b *matchBuilder) start(text string) *matchBuilder {
	b.tp.text = text
	b.entries = b.buf[:0]
	b.m = Match{}
	return b
}

// getMatchBuilder returns an empty builder whose parser reads text.
func getMatchBuilder(text string) *matchBuilder {
	return matchBuilders.Get().(*matchBuilder).start(text)
}

// builder returns fp's builder, empty, its parser reading text.
func (fp *FlowParser) builder(text string) *matchBuilder {
	if fp.b == nil {
		fp.b = newOwnMatchBuilder()
	}
	return fp.b.start(text)
}

// putMatchBuilder gives b back, keeping none of the text it read: it
// clears what was used of the first backing arrays (a clear of all of
// them was a tenth of a bulk parse).
func putMatchBuilder(b *matchBuilder) {
	clear(b.buf[:min(len(b.entries), len(b.buf))])
	clear(b.toks[:b.ntoks])
	clear(b.pas[:b.npas])
	b.ntoks, b.npas = 0, 0
	b.entries = nil
	b.m = Match{}
	b.tp.text = ""
	matchBuilders.Put(b)
}

// matchEntry is a field added to a matchBuilder. What it matches alone is
// in the builder's match; key computes it again for an error message.
type matchEntry struct {
	f        *matchField
	name     string // as written: the name or an alias
	value    string
	hasValue bool
	zeroMask bool // it matches nothing (tp_dst=0/0), so it needs nothing
	off      int
}

// text is the field as written: name, or name=value.
func (e *matchEntry) text() string {
	if e.hasValue {
		return e.name + "=" + e.value
	}
	return e.name
}

// key sets k and m to what the entry matches alone.
func (e *matchEntry) key(k, m *Key) {
	*k, *m = Key{}, Key{}
	fieldKey(e.f, e.value, k, m)
}

// fieldKey parses value for f into k and m (zero on entry), or says what is
// wrong with it. An in_port sets no key bits. The key has no bits outside
// the mask (Match.Check), which add's conflict check relies on.
func fieldKey(f *matchField, value string, k, m *Key) string {
	switch {
	case f.short:
		putUint(k, steer.OffDlType, 2, uint64(f.dlType))
		putUint(m, steer.OffDlType, 2, 0xffff)
		if f.nwProto >= 0 {
			k[steer.OffNwProto], m[steer.OffNwProto] = byte(f.nwProto), 0xff
		}
	case f.group == groupInPort:
		return portRefProblem(value)
	default:
		return f.set(value, k, m)
	}
	return ""
}

// add adds field f, written as name (f's name or an alias).
func (b *matchBuilder) add(name string, f *matchField, value string, hasValue bool, off int) *ParseError {
	p := b.p
	e := matchEntry{f: f, name: name, value: value, hasValue: hasValue, off: off}
	b.k, b.mk = Key{}, Key{}
	switch {
	case f.short && hasValue:
		return p.errAt(off, name, "%s takes no value", name)
	case !f.short && (!hasValue || value == ""):
		return p.errAt(off, name, "missing value for %s", name)
	}
	if msg := fieldKey(f, value, &b.k, &b.mk); msg != "" {
		return p.errAt(off, name, "bad value %q for %s: %s", value, name, msg)
	}
	// The fields so far agree with each other, so the new one conflicts
	// with one of them exactly when it conflicts with their union; only
	// then are their own keys needed, to say which. The new bits go into
	// the union at once, in the same pass: an error drops the builder.
	conflict, zeroMask := mergeKey(&b.m.Key, &b.m.Mask, &b.k, &b.mk, f.group)
	for i := range b.entries {
		o := &b.entries[i]
		if f.short && o.f == f {
			return nil // a repeated shorthand adds nothing (and keeps the entries few)
		}
		if f.group != groupNone && o.f.group == f.group {
			if o.f == f && o.name == name {
				return p.errAt(off, name, "%s given twice (Open vSwitch would use the last one)", name)
			}
			return p.errAt(off, name, "%s conflicts with %s (Open vSwitch would use the last one)", name, o.name)
		}
		if conflict {
			if o.key(&b.ok, &b.om); keysConflict(&b.k, &b.mk, &b.ok, &b.om) {
				return p.errAt(off, name, "%s conflicts with %s (Open vSwitch would use the last one)", e.text(), o.text())
			}
		}
	}
	if f.group == groupInPort {
		b.m.InPort = canonicalPortRef(value)
	}
	e.zeroMask = zeroMask
	b.entries = append(b.entries, e)
	return nil
}

// mergeKey sets the bits of (k, m), a field of group g, in (dk, dm), and
// reports whether the two disagreed on a bit both masks covered (see
// keysConflict) and whether m is zero. Only g's words are looked at: a
// field sets no other bit (TestFieldKeyInGroup).
func mergeKey(dk, dm, k, m *Key, g fieldGroup) (conflict, zero bool) {
	le := binary.LittleEndian
	var diff, any uint64
	lo, hi := groupWords(g)
	for j := lo * 8; j < hi*8; j += 8 {
		kw, mw := le.Uint64(k[j:]), le.Uint64(m[j:])
		dkw, dmw := le.Uint64(dk[j:]), le.Uint64(dm[j:])
		diff |= (kw ^ dkw) & mw & dmw
		any |= mw
		le.PutUint64(dk[j:], dkw|kw)
		le.PutUint64(dm[j:], dmw|mw)
	}
	return diff != 0, any == 0
}

// keysConflict reports whether two (key, mask) pairs disagree on a bit
// both masks cover.
func keysConflict(k1, m1, k2, m2 *Key) bool {
	le := binary.LittleEndian
	for j := 0; j < steer.KeyLen; j += 8 {
		both := le.Uint64(m1[j:]) & le.Uint64(m2[j:])
		if (le.Uint64(k1[j:])^le.Uint64(k2[j:]))&both != 0 {
			return true
		}
	}
	return false
}

// finish checks every field's prerequisites against the whole match. A
// field whose mask is zero (tp_dst=0/0) matches nothing and needs nothing.
func (b *matchBuilder) finish() (Match, *ParseError) {
	for i := range b.entries {
		e := &b.entries[i]
		if e.f.prereq == nil || e.zeroMask {
			continue
		}
		if !e.f.prereq(&b.m) {
			ovs := e.f.ovs
			if ovs == "" || !matchIsTCPUDP(&b.m) {
				ovs = "Open vSwitch would ignore " + e.name + " and match more packets"
			}
			return Match{}, b.p.errAt(e.off, e.name, "%s requires %s (%s)", e.name, e.f.needs, ovs)
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
	a       Action
	name    string // the action's name as written, for ParseError.Field
	what    string // how errors call it: "mod_tp_dst", "set_field to tcp_dst"
	field   string // set_field's field
	off     int
	need    actionNeed
	why     string // said when need does not hold
	needTag bool   // set_field to a VLAN field: a tag must be there
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
	return appendActionTokens(make([]actionToken, 0, 4), s, base)
}

// appendActionTokens appends the tokens of action list s to toks, as
// splitActions splits it.
func appendActionTokens(toks []actionToken, s string, base int) []actionToken {
	for i := 0; ; {
		for i < len(s) && isFlowSep(s[i]) {
			i++
		}
		if i == len(s) {
			return toks
		}
		start, depth := i, 0
		for ; i < len(s); i++ {
			c := byteClass[s[i]]
			if c&classSep != 0 && depth <= 0 {
				break
			}
			if c&classParen != 0 {
				if s[i] == '(' {
					depth++
				} else {
					depth--
				}
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
	i := 0
	for i < len(s) && s[i] != ':' && s[i] != '(' {
		i++
	}
	switch {
	case i == len(s):
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
	return p.appendActionList(make([]parsedAction, 0, len(toks)), toks)
}

// appendActionList parses toks into pas, an empty slice whose room is
// used first.
func (p *textParser) appendActionList(pas []parsedAction, toks []actionToken) ([]parsedAction, *ParseError) {
	for _, tok := range toks {
		// Parsed in place: a parsedAction of its own would live on the
		// heap (the parsers take its address). action sets all of it.
		if len(pas) < cap(pas) {
			pas = pas[:len(pas)+1]
		} else {
			pas = append(pas, parsedAction{})
		}
		drop, err := p.action(tok, &pas[len(pas)-1])
		if err != nil {
			return nil, err
		}
		if drop {
			if len(toks) > 1 {
				return nil, p.errAt(tok.off, "drop", "drop must be the only action")
			}
			return nil, nil
		}
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
// error rather than an output to a port of that name (OpenFlow's reserved
// ports, NORMAL and the like, are in reservedPorts).
var unsupportedActions = map[string]bool{
	"enqueue": true, "learn": true, "note": true, "set_queue": true,
	"pop_queue": true, "ct": true, "ct_clear": true, "meter": true,
	"clone": true, "exit": true, "multipath": true, "bundle": true,
	"sample": true, "push_mpls": true, "pop_mpls": true, "dec_mpls_ttl": true,
	"set_mpls_ttl": true, "set_tunnel": true, "mod_nw_ttl": true, "set_nw_ttl": true,
	"move": true, "output_reg": true, "mod_vlan_tci": true, "push": true, "pop": true,
	"write_actions": true, "clear_actions": true, "write_metadata": true,
	"fin_timeout": true, "controller": true, "check_pkt_larger": true,
	"encap": true, "decap": true, "set_tunnel64": true, "bundle_load": true,
}

// action parses one action token into pa. drop reports the "drop"
// keyword. Action names are read without regard to case, as ovs-ofctl
// reads them.
func (p *textParser) action(tok actionToken, pa *parsedAction) (drop bool, err *ParseError) {
	name, value, hasValue := splitAction(tok.text)
	*pa = parsedAction{name: name, what: name, off: tok.off}
	lname := strings.ToLower(name)
	if lname == "drop" {
		if hasValue {
			return false, p.errAt(tok.off, name, "drop takes no value")
		}
		return true, nil
	}
	if lname == "set_field" || lname == "load" {
		if !hasValue || value == "" {
			return false, p.errAt(tok.off, name, "missing value for %s", name)
		}
		return false, p.setField(pa, lname, value)
	}
	t, known := actionNames.lookup(lname)
	if !known {
		return false, p.notAction(tok, pa, name, lname, hasValue)
	}
	k := actionKinds[t]
	pa.a.Type, pa.need = t, k.need
	pa.why = "Open vSwitch would take it and leave packets without that header as they are"
	switch {
	case k.value && k.optValue && (!hasValue || value == ""):
		return false, nil
	case k.value && (!hasValue || value == ""):
		return false, p.errAt(tok.off, name, "missing value for %s", name)
	case !k.value && hasValue:
		return false, p.errAt(tok.off, name, "%s takes no value", name)
	case !k.value:
		return false, nil
	}
	msg := k.parse(value, &pa.a)
	if msg == "" {
		msg = actionProblem(&pa.a)
	}
	if msg != "" {
		return false, p.errAt(tok.off, name, "bad value %q for %s: %s", value, name, msg)
	}
	return false, nil
}

// notAction parses tok, whose name is no action's, into pa: a bare port
// is output to that port, as in OVS; else the error says why it is not
// an action.
func (p *textParser) notAction(tok actionToken, pa *parsedAction, name, lname string, hasValue bool) *ParseError {
	why, reserved := reservedPort(name)
	switch {
	case reserved && why != "":
		return p.errAt(tok.off, name, "unsupported action %q: %s", name, why)
	case unsupportedActions[lname]:
		return p.errAt(tok.off, name, "unsupported action %q", name)
	case !hasValue && portRefProblem(name) == "":
		pa.a = Action{Type: ActOutput, Port: canonicalPortRef(name)}
		pa.name, pa.what = "output", "output"
		return nil
	}
	return p.errAt(tok.off, name, "unknown action %q", name)
}

// setFieldTarget is a field set_field (and load) can set: the action it
// is, how its value reads, and what the match must say (tcp_src needs tcp,
// not just udp or tcp).
type setFieldTarget struct {
	names []string // the OXM or NXM name, then the others
	typ   ActionType
	parse func(v string, a *Action) string
	need  actionNeed
	why   string // said when need does not hold
	tag   bool   // a VLAN field: the frame must have a tag
	kind  loadKind
}

// loadKind is how load:N->FIELD[] turns the number N into set_field's
// value syntax.
type loadKind uint8

const (
	loadNumber loadKind = iota
	loadMAC
	loadIPv4
)

const whyTpPort = "Open vSwitch's set_field tp_src and tp_dst are tcp_src and tcp_dst, refused on udp: write udp_src, udp_dst or mod_tp_*"

var setFieldTargetList = []*setFieldTarget{
	{names: []string{"eth_src", "dl_src", "NXM_OF_ETH_SRC", "OXM_OF_ETH_SRC"}, typ: ActSetDlSrc, parse: parseMACValue, kind: loadMAC},
	{names: []string{"eth_dst", "dl_dst", "NXM_OF_ETH_DST", "OXM_OF_ETH_DST"}, typ: ActSetDlDst, parse: parseMACValue, kind: loadMAC},
	{names: []string{"ip_src", "nw_src", "NXM_OF_IP_SRC", "OXM_OF_IPV4_SRC"}, typ: ActSetNwSrc, parse: parseIPv4Value, need: needIPv4, kind: loadIPv4},
	{names: []string{"ip_dst", "nw_dst", "NXM_OF_IP_DST", "OXM_OF_IPV4_DST"}, typ: ActSetNwDst, parse: parseIPv4Value, need: needIPv4, kind: loadIPv4},
	{names: []string{"nw_tos", "NXM_OF_IP_TOS"}, typ: ActSetNwTos, parse: parseValue(0xff), need: needIP},
	{names: []string{"ip_dscp", "OXM_OF_IP_DSCP"}, typ: ActSetNwTos, parse: func(v string, a *Action) string {
		n, msg := parseNum(v, 63)
		a.Value = uint32(n) << 2
		return msg
	}, need: needIP},
	{names: []string{"nw_ecn", "ip_ecn", "NXM_NX_IP_ECN", "OXM_OF_IP_ECN"}, typ: ActSetNwEcn, parse: parseValue(3), need: needIP},
	{names: []string{"tcp_src", "NXM_OF_TCP_SRC", "OXM_OF_TCP_SRC"}, typ: ActSetTpSrc, parse: parseValue(0xffff), need: needTCP},
	{names: []string{"tcp_dst", "NXM_OF_TCP_DST", "OXM_OF_TCP_DST"}, typ: ActSetTpDst, parse: parseValue(0xffff), need: needTCP},
	{names: []string{"tp_src"}, typ: ActSetTpSrc, parse: parseValue(0xffff), need: needTCP, why: whyTpPort},
	{names: []string{"tp_dst"}, typ: ActSetTpDst, parse: parseValue(0xffff), need: needTCP, why: whyTpPort},
	{names: []string{"udp_src", "NXM_OF_UDP_SRC", "OXM_OF_UDP_SRC"}, typ: ActSetTpSrc, parse: parseValue(0xffff), need: needUDP},
	{names: []string{"udp_dst", "NXM_OF_UDP_DST", "OXM_OF_UDP_DST"}, typ: ActSetTpDst, parse: parseValue(0xffff), need: needUDP},
	// OpenFlow's vlan_vid carries the "VID present" bit 0x1000; as in OVS,
	// setting it sets the VID, with the bit or without.
	{names: []string{"vlan_vid", "OXM_OF_VLAN_VID"}, typ: ActSetVlanVID, parse: func(v string, a *Action) string {
		n, msg := parseNum(v, 0x1fff)
		a.Value = uint32(n) & 0x0fff
		return msg
	}, tag: true},
	{names: []string{"vlan_pcp", "OXM_OF_VLAN_PCP"}, typ: ActSetVlanPCP, parse: parseValue(7), tag: true},
}

var setFieldTargets = func() *nameTable[*setFieldTarget] {
	var names []string
	var targets []*setFieldTarget
	for _, t := range setFieldTargetList {
		for _, n := range t.names {
			names, targets = append(names, n), append(targets, t)
		}
	}
	return newNameTable(names, targets)
}()

// loadValue turns load's number into set_field's value for kind.
func loadValue(v string, kind loadKind) (string, string) {
	switch kind {
	case loadMAC:
		n, msg := parseNum(v, 1<<48-1)
		if msg != "" {
			return "", msg
		}
		b := binary.BigEndian.AppendUint64(nil, n)
		return fmtMAC(b[2:]), ""
	case loadIPv4:
		n, msg := parseNum(v, 0xffffffff)
		if msg != "" {
			return "", msg
		}
		return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, uint32(n)))).String(), ""
	}
	return v, ""
}

// setField parses set_field:VALUE->FIELD, or load:NUMBER->FIELD[] (the
// whole field; NXM and OXM names), into the action mod_* would give.
func (p *textParser) setField(pa *parsedAction, verb, arg string) *ParseError {
	i := strings.LastIndex(arg, "->")
	if i < 0 {
		return p.errAt(pa.off, pa.name, "%s wants VALUE->FIELD, got %q", verb, arg)
	}
	value, field := arg[:i], arg[i+2:]
	if verb == "load" {
		f, ok := strings.CutSuffix(field, "[]")
		if !ok {
			return p.errAt(pa.off, pa.name, "load to %q: only a whole field (FIELD[]) can be loaded", field)
		}
		field = f
	}
	pa.what, pa.field = verb+" to "+field, field
	tg, ok := setFieldTargets.lookup(field)
	if !ok {
		return p.errAt(pa.off, pa.name, "%s: unknown or unsupported field %q", verb, field)
	}
	if strings.Contains(value, "/") {
		return p.errAt(pa.off, pa.name, "%s to %s: a masked value is not supported", verb, field)
	}
	if verb == "load" {
		v, msg := loadValue(value, tg.kind)
		if msg != "" {
			return p.errAt(pa.off, pa.name, "bad value %q for load to %s: %s", value, field, msg)
		}
		value = v
	}
	pa.a = Action{Type: tg.typ}
	pa.need, pa.why, pa.needTag = tg.need, tg.why, tg.tag
	if pa.why == "" {
		pa.why = "Open vSwitch refuses it too"
	}
	msg := tg.parse(value, &pa.a)
	if msg == "" {
		msg = actionProblem(&pa.a)
	}
	if msg != "" {
		return p.errAt(pa.off, pa.name, "bad value %q for %s to %s: %s", value, verb, field, msg)
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
	tags := matchTags(&f.Match)
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
		if msg := followTags(&tags, a); msg != "" {
			return &ParseError{Field: name, Msg: msg}
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
