package flowtable

import (
	"fmt"
	"math"
)

// FlowJSON is a flow as the REST API speaks it, in one of two forms.
//
// Text form: only Flow (and optionally ID) is set, in add-flow syntax:
//
//	{"flow": "priority=100,udp,tp_dst=7999,actions=output:p1"}
//
// Structured form: the fields below, with Match a map from match field name
// to value in the text syntax, a shorthand (ip, udp, tcp6, ...) being a key
// with the empty value, and Actions a list of single actions in the text
// syntax. The empty list (or ["drop"]) drops; Actions left out (null) is an
// error, as add-flow without actions= is:
//
//	{"priority": 100, "match": {"udp": "", "tp_dst": "7999"}, "actions": ["output:p1"]}
//
// FlowFromJSON takes either form and refuses both at once. FlowToJSON fills
// both (Flow with the canonical text), so a response shows both; to send it
// back as a request, drop one of them.
type FlowJSON struct {
	ID          uint64            `json:"id,omitempty"`
	Priority    *uint16           `json:"priority,omitempty"` // nil: DefaultPriority
	Cookie      string            `json:"cookie,omitempty"`   // "0x1f" or decimal; "" = 0
	IdleTimeout uint16            `json:"idle_timeout,omitempty"`
	HardTimeout uint16            `json:"hard_timeout,omitempty"`
	Match       map[string]string `json:"match,omitempty"`
	Actions     []string          `json:"actions,omitempty"`
	Text        string            `json:"flow,omitempty"`
}

func (j *FlowJSON) structured() bool {
	return j.Priority != nil || j.Cookie != "" || j.IdleTimeout != 0 || j.HardTimeout != 0 ||
		j.Match != nil || j.Actions != nil
}

// FlowFromJSON builds a flow from either form of j (see FlowJSON), with ID
// j.ID. Errors are *ParseError naming the field at fault: a match field
// ("tp_dst"), an action ("mod_tp_dst", or "actions" for the list itself),
// "cookie", or "flow" (for the text form, with the column in the text).
func FlowFromJSON(j FlowJSON) (*Flow, error) {
	p := &textParser{}
	if j.Text != "" {
		if j.structured() {
			return nil, p.errAt(-1, "flow", "give a flow as text (\"flow\") or as fields, not both")
		}
		f, err := ParseFlow(j.Text)
		if err != nil {
			if pe, ok := err.(*ParseError); ok && pe.Field == "" {
				pe.Field = "flow"
			}
			return nil, err
		}
		f.ID = j.ID
		return f, nil
	}
	if !j.structured() {
		return nil, p.errAt(-1, "flow", "empty flow")
	}
	m, err := ParseMatchFields(j.Match)
	if err != nil {
		return nil, err
	}
	f := &Flow{ID: j.ID, Priority: DefaultPriority, IdleTimeout: j.IdleTimeout, HardTimeout: j.HardTimeout, Match: m}
	if j.Priority != nil {
		f.Priority = *j.Priority
	}
	if j.Cookie != "" {
		c, msg := parseNum(j.Cookie, math.MaxUint64)
		if msg != "" {
			return nil, p.errAt(-1, "cookie", "bad value %q for cookie: %s", j.Cookie, msg)
		}
		f.Cookie = c
	}
	if j.Actions == nil {
		return nil, p.errAt(-1, "actions", "missing actions")
	}
	toks := make([]actionToken, len(j.Actions))
	for i, s := range j.Actions {
		if t := splitActions(s, -1); len(t) != 1 || t[0].text != s {
			return nil, p.errAt(-1, "actions", "actions[%d] = %q: want one action, no separators", i, s)
		}
		toks[i] = actionToken{text: s, off: -1}
	}
	pas, perr := p.actionList(toks)
	if perr != nil {
		return nil, perr
	}
	for _, pa := range pas {
		if !pa.need.holds(&m) {
			return nil, p.errAt(-1, pa.name, "%s requires %s", pa.what, pa.need)
		}
	}
	f.Actions = actionsOf(pas)
	return f, nil
}

// FlowToJSON returns f in both forms: the structured fields and, in Flow,
// its canonical text (Flow.String). Actions is ["drop"] for a flow that
// drops; Cookie is hex, left out when zero.
func FlowToJSON(f *Flow) FlowJSON {
	prio := f.Priority
	j := FlowJSON{
		ID:          f.ID,
		Priority:    &prio,
		IdleTimeout: f.IdleTimeout,
		HardTimeout: f.HardTimeout,
		Text:        f.String(),
	}
	if f.Cookie != 0 {
		j.Cookie = fmt.Sprintf("%#x", f.Cookie)
	}
	if fs := f.Match.Fields(); len(fs) > 0 {
		j.Match = make(map[string]string, len(fs))
		for _, fl := range fs {
			j.Match[fl.Name] = fl.Value
		}
	}
	if len(f.Actions) == 0 {
		j.Actions = []string{"drop"}
	} else {
		j.Actions = make([]string, len(f.Actions))
		for i, a := range f.Actions {
			j.Actions[i] = FormatAction(a)
		}
	}
	return j
}
