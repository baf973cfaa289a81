package ctl

import "github.com/xvs-project/xvs/datapath"

// API paths, relative to the server root.
const (
	PathPorts       = "/v1/ports"
	PathFlows       = "/v1/flows"
	PathFlowsDelete = "/v1/flows/delete"
	PathStats       = "/v1/stats"
	PathHealth      = "/v1/health"
	PathMetrics     = "/metrics"
)

// FlowIDs answers POST and PUT /v1/flows sent with the header
// "Prefer: return=minimal" (RFC 7240): the IDs given to the flows, in the
// order of the request, instead of every flow as installed. A bulk add of
// many flows answers in a fraction of the bytes and time.
type FlowIDs struct {
	IDs []uint64 `json:"ids"`
}

// PortRequest is the body of POST /v1/ports.
type PortRequest struct {
	Name string           `json:"name"`
	Mode datapath.XDPMode `json:"mode,omitempty"` // "" = auto
}

// DeleteFlowsRequest is the body of POST /v1/flows/delete (an empty body is
// the zero value). Like ovs-ofctl del-flows, Match is a filter in flow syntax
// ("udp,tp_dst=7999", optionally with priority= and cookie=VALUE/MASK) that
// selects every flow whose match it covers; with Strict, only flows whose
// match and priority equal it. An empty Match deletes every flow.
type DeleteFlowsRequest struct {
	Match  string `json:"match,omitempty"`
	Strict bool   `json:"strict,omitempty"`
}

// HealthResponse is the body of GET /v1/health. The status code is 200 when
// Status is "ok" and 503 otherwise.
type HealthResponse struct {
	Status string `json:"status"`          // "ok" or "unhealthy"
	Error  string `json:"error,omitempty"` // what is wrong
}
