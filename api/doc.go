// Package api is the wire contract of xvsd's REST API (/v1): every JSON
// body a request sends or a response carries, the paths, and the error
// kinds with their HTTP statuses and codes. The server (package ctl), the Go
// client (ctl/client) and xvsctl all speak these types.
//
// The package imports only the standard library, nothing of xvs: the
// switch's internal types can change without changing /v1, and a client
// links nothing of the datapath. A change to a type here is a change to the
// API; the OpenAPI document served at /v1/openapi.json (openapi.json in this
// directory, the one hand-written description of /v1) changes with it, and a
// test in ctl checks the two against what the server really answers.
//
// # Names and units
//
//   - Field names are snake_case.
//   - A duration is a number of seconds and its name ends in _s:
//     "uptime_s", "duration_s", "busy_s". Measured durations are
//     fractional (a float64: nanosecond precision for 104 days, and no
//     integer that JavaScript or jq would round); configured ones, the
//     flow timeouts "idle_timeout_s" and "hard_timeout_s", are whole
//     seconds, as in OpenFlow.
//   - A timestamp is an RFC 3339 string in UTC with fractional seconds
//     ("2026-12-01T20:38:07.123456789Z") and its name ends in _at
//     ("added_at").
//   - A counter of packets is "packets" or ends in _packets, a counter of
//     bytes is "bytes" or ends in _bytes. Counters only grow (until the
//     thing they count is removed).
//   - A set of named counters whose names belong to the switch (drop
//     reasons, XDP verdicts) is a list of Counter in the switch's order, so
//     a client shows reasons it does not know yet without a change.
//   - The one exception: "xsk" holds the kernel's struct xdp_statistics
//     under the kernel's own field names.
//   - A flow's cookie is a string ("0x1f", or decimal in a request): a
//     64-bit value does not fit a JSON number that every client reads
//     exactly.
//
// # Errors
//
// Every error answer has a body of type ErrorResponse:
//
//	{"error": "in_port=p9: no such port", "code": "no_such_port", "field": "in_port", "index": 3}
//
// Code is one of the ErrorCode constants; ErrorKinds is the table that gives
// each its HTTP status (several codes may share a status: 404 is
// no_such_port, no_such_flow or not_found). Field names the flow field,
// action, JSON field or parameter at fault when there is one; Index is the
// 0-based position of the bad item in an array request. Clients should act
// on Code, not on the status or the message. A user's mistake is never
// answered with a 5xx: 500 (internal) means a bug or a kernel failure, 503
// (unavailable) a switch that is shutting down or unhealthy.
package api
