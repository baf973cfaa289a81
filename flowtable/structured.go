package flowtable

import (
	"fmt"
	"math"
)

// FlowFields is a flow in structured form: the fields of a flow's text with
// Match a map from match field name to value in the text syntax, a shorthand
// (ip, udp, tcp6, ...) being a key with the empty value, and Actions a list
// of single actions in the text syntax. It is what the REST API's structured
// flows carry; the JSON names are package api's, not this package's.
type FlowFields struct {
	Table       uint8   // 0..MaxTable
	Priority    *uint16 // nil: DefaultPriority
	Cookie      string  // "0x1f" or decimal; "" = 0
	IdleTimeout uint16  // seconds
	HardTimeout uint16  // seconds
	Match       map[string]string
	Actions     []string // nil is an error, as add-flow without actions= is; empty (or ["drop"]) drops
}

// ParseFlowFields builds a flow from its structured form. Errors are
// *ParseError naming the field at fault: a match field ("tp_dst"), an action
// ("mod_tp_dst", or "actions" for the list itself) or "cookie".
func ParseFlowFields(ff FlowFields) (*Flow, error) {
	p := &textParser{}
	m, err := ParseMatchFields(ff.Match)
	if err != nil {
		return nil, err
	}
	if ff.Table > MaxTable {
		return nil, p.errAt(-1, "table", "table %d out of range 0..%d", ff.Table, MaxTable)
	}
	f := &Flow{Table: ff.Table, Priority: DefaultPriority, IdleTimeout: ff.IdleTimeout, HardTimeout: ff.HardTimeout, Match: m}
	if ff.Priority != nil {
		f.Priority = *ff.Priority
	}
	if ff.Cookie != "" {
		c, msg := parseNum(ff.Cookie, math.MaxUint64)
		if msg != "" {
			return nil, p.errAt(-1, "cookie", "bad value %q for cookie: %s", ff.Cookie, msg)
		}
		f.Cookie = c
	}
	if ff.Actions == nil {
		return nil, p.errAt(-1, "actions", "missing actions")
	}
	toks := make([]actionToken, len(ff.Actions))
	for i, s := range ff.Actions {
		if t := splitActions(s, -1); len(t) != 1 || t[0].text != s {
			return nil, p.errAt(-1, "actions", "actions[%d] = %q: want one action, no separators", i, s)
		}
		toks[i] = actionToken{text: s, off: -1}
	}
	pas, perr := p.actionList(toks)
	if perr != nil {
		return nil, perr
	}
	if err := p.flowActions(f, pas); err != nil {
		return nil, err
	}
	f.Actions = actionsOf(pas)
	return f, nil
}

// FieldsOf returns f in structured form. Actions is ["drop"] for a flow
// that drops; Cookie is hex, "" when zero; Priority is always set.
func FieldsOf(f *Flow) FlowFields {
	prio := f.Priority
	ff := FlowFields{Table: f.Table, Priority: &prio, IdleTimeout: f.IdleTimeout, HardTimeout: f.HardTimeout}
	if f.Cookie != 0 {
		ff.Cookie = fmt.Sprintf("%#x", f.Cookie)
	}
	if fs := f.Match.Fields(); len(fs) > 0 {
		ff.Match = make(map[string]string, len(fs))
		for _, fl := range fs {
			ff.Match[fl.Name] = fl.Value
		}
	}
	if len(f.Actions) == 0 {
		ff.Actions = []string{"drop"}
	} else {
		ff.Actions = make([]string, len(f.Actions))
		for i, a := range f.Actions {
			ff.Actions[i] = FormatAction(a)
		}
	}
	return ff
}
