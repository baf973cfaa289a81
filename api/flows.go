package api

// Flow is a flow as the API speaks it, in one of two forms.
//
// Text form: only Text (and, in a response, ID) is set, in the add-flow
// syntax of ovs-ofctl:
//
//	{"flow": "priority=100,udp,tp_dst=7999,actions=output:p1"}
//
// Structured form: the other fields, with Match a map from match field name
// to value in the text syntax, a shorthand (ip, udp, tcp6, ...) being a key
// with the empty value, and Actions a list of single actions in the text
// syntax. The empty list (or ["drop"]) drops; Actions left out (null) is an
// error, as add-flow without actions= is:
//
//	{"priority": 100, "match": {"udp": "", "tp_dst": "7999"}, "actions": ["output:p1"]}
//
// A request gives one form, not both, and no ID (the switch assigns it). A
// response fills both: the structured fields, and Text in canonical form,
//
//	[cookie=C,][table=T,][idle_timeout=N,][hard_timeout=N,]priority=P[,MATCH],actions=A
//
// with Actions ["drop"] for a flow that drops and Cookie in hex, left out
// when zero. To send a response back as a request, drop one of the forms.
type Flow struct {
	ID           uint64            `json:"id,omitempty"`
	Table        uint8             `json:"table,omitempty"`    // 0..253; 0 when left out
	Priority     *uint16           `json:"priority,omitempty"` // nil: the default, 32768
	Cookie       string            `json:"cookie,omitempty"`   // "0x1f" or decimal; "" = 0
	IdleTimeoutS uint16            `json:"idle_timeout_s,omitempty"`
	HardTimeoutS uint16            `json:"hard_timeout_s,omitempty"`
	Match        map[string]string `json:"match,omitempty"`
	Actions      []string          `json:"actions,omitempty"`
	Text         string            `json:"flow,omitempty"`
}

// FlowStatus is an installed flow, in both forms, with its counters.
type FlowStatus struct {
	Flow
	Packets   uint64  `json:"packets"` // in userspace and in XDP
	Bytes     uint64  `json:"bytes"`
	DurationS float64 `json:"duration_s"` // since install
	IdleAgeS  float64 `json:"idle_age_s"` // since the last packet (or install)
	// Datapath says where the flow's packets are handled: DatapathXDP (the
	// XDP program forwards, drops or passes them itself) or DatapathUser,
	// with DatapathReason saying why, as a short token without spaces.
	Datapath       string `json:"datapath"`
	DatapathReason string `json:"datapath_reason,omitempty"`
}

// Values of FlowStatus.Datapath.
const (
	DatapathXDP  = "xdp"
	DatapathUser = "user"
)

// FlowIDs answers POST and PUT /v1/flows sent with the header
// "Prefer: return=minimal" (RFC 7240): the IDs given to the flows, in the
// order of the request, instead of every flow as installed. A bulk add of
// many flows answers in a fraction of the bytes and time.
type FlowIDs struct {
	IDs []uint64 `json:"ids"`
}

// DeleteFlowsRequest is the body of POST /v1/flows/delete (an empty body is
// the zero value). Like ovs-ofctl del-flows, Match is a filter in flow syntax
// ("udp,tp_dst=7999", optionally with priority= and cookie=VALUE/MASK) that
// selects every flow whose match it covers; with Strict, only flows whose
// match and priority equal it. An empty Match deletes every flow. GET
// /v1/flows takes the same two as query parameters, match and strict.
type DeleteFlowsRequest struct {
	Match  string `json:"match,omitempty"`
	Strict bool   `json:"strict,omitempty"`
}
