package api

import "net/http"

// ErrorCode names a kind of error: the "code" of every error body. An
// ErrorCode is also an error, so that a client's error can be tested with
// errors.Is against the code it carries:
//
//	if errors.Is(err, api.CodeNoSuchPort) { ... }
type ErrorCode string

// The error codes. ErrorKinds gives each its HTTP status.
const (
	CodeInvalid          ErrorCode = "invalid"            // bad input: syntax, a value out of range, an unknown field
	CodeUnauthorized     ErrorCode = "unauthorized"       // missing or wrong bearer token
	CodeNoSuchPort       ErrorCode = "no_such_port"       // a port that does not exist
	CodeNoSuchDevice     ErrorCode = "no_such_device"     // a netdev to add as a port that does not exist
	CodeNoSuchFlow       ErrorCode = "no_such_flow"       // a flow ID that is not installed
	CodeNoSuchGroup      ErrorCode = "no_such_group"      // a group ID that is not installed (to change, or that a flow or bucket sends to)
	CodeGroupExists      ErrorCode = "group_exists"       // a group to add whose ID is taken
	CodeGroupInUse       ErrorCode = "group_in_use"       // a group to delete that another group's bucket sends to
	CodeNotFound         ErrorCode = "not_found"          // no such path
	CodeMethodNotAllowed ErrorCode = "method_not_allowed" // the path exists, the method does not
	CodePortExists       ErrorCode = "port_exists"        // the port is attached already
	CodeBusy             ErrorCode = "busy"               // another program holds the device's XDP hook or one of its queues
	CodeNotSupported     ErrorCode = "not_supported"      // the device cannot do what was asked (native XDP on a driver without it)
	CodeTooManyMasks     ErrorCode = "too_many_masks"     // the XDP classifier walks at most 32 masks
	CodeTooManyFlows     ErrorCode = "too_many_flows"     // the XDP classifier holds at most 262144 distinct matches
	CodeTooLarge         ErrorCode = "too_large"          // the request body is over the server's limit
	CodeForbidden        ErrorCode = "forbidden"          // a cross-origin request, or a Host that is not the server's (DNS rebinding)
	CodeUnsupportedType  ErrorCode = "unsupported_type"   // a write whose Content-Type is not application/json
	CodeUnavailable      ErrorCode = "unavailable"        // the switch is shutting down or unhealthy, or too many large requests are in flight
	CodeNotSaved         ErrorCode = "not_saved"          // the change could not be saved to the state file, so it was not made
	CodeInternal         ErrorCode = "internal"           // a bug, or the kernel refused something it should not
)

func (c ErrorCode) Error() string { return string(c) }

// ErrorKind is one kind of error the API answers with.
type ErrorKind struct {
	Code   ErrorCode
	Status int // HTTP status
}

// ErrorKinds is the table of every error kind: the server answers an error
// of kind Code with Status, and nothing else chooses an error status.
//
// too_many_flows and too_many_masks are 409 Conflict: the request is valid
// and would succeed against a smaller table; it conflicts with the flows
// installed (RFC 9110: "the user might be able to resolve the conflict and
// resubmit"). A 5xx (507 Insufficient Storage included) would tell clients
// and proxies that the server failed, and invite them to retry the same
// request, which fails the same way.
//
// not_saved is 507 Insufficient Storage: the server could not store what
// the change needs (the state file: a full disk, an I/O error), so it did
// not make the change; the same request succeeds once the disk does.
var ErrorKinds = []ErrorKind{
	{CodeInvalid, http.StatusBadRequest},
	{CodeUnauthorized, http.StatusUnauthorized},
	{CodeNoSuchPort, http.StatusNotFound},
	{CodeNoSuchDevice, http.StatusNotFound},
	{CodeNoSuchFlow, http.StatusNotFound},
	{CodeNoSuchGroup, http.StatusNotFound},
	{CodeNotFound, http.StatusNotFound},
	{CodeMethodNotAllowed, http.StatusMethodNotAllowed},
	{CodePortExists, http.StatusConflict},
	{CodeBusy, http.StatusConflict},
	{CodeNotSupported, http.StatusBadRequest},
	{CodeGroupExists, http.StatusConflict},
	{CodeGroupInUse, http.StatusConflict},
	{CodeTooManyMasks, http.StatusConflict},
	{CodeTooManyFlows, http.StatusConflict},
	{CodeTooLarge, http.StatusRequestEntityTooLarge},
	{CodeForbidden, http.StatusForbidden},
	{CodeUnsupportedType, http.StatusUnsupportedMediaType},
	{CodeUnavailable, http.StatusServiceUnavailable},
	{CodeNotSaved, http.StatusInsufficientStorage},
	{CodeInternal, http.StatusInternalServerError},
}

// Status returns the HTTP status of code; 500 for a code not in ErrorKinds.
func (c ErrorCode) Status() int {
	for _, k := range ErrorKinds {
		if k.Code == c {
			return k.Status
		}
	}
	return http.StatusInternalServerError
}

// CodeForStatus returns the code of status when exactly one kind has it,
// else "". A client uses it for an error answer without a code (from a proxy
// in front of xvsd, say): a 404 from there is not known to be about a port.
//
// 400 is the exception: not_supported is bad input too (it asks a device for
// what it cannot do), so a bare 400 is invalid.
func CodeForStatus(status int) ErrorCode {
	if status == http.StatusBadRequest {
		return CodeInvalid
	}
	var code ErrorCode
	for _, k := range ErrorKinds {
		if k.Status == status {
			if code != "" {
				return ""
			}
			code = k.Code
		}
	}
	return code
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string    `json:"error"`           // for people
	Code  ErrorCode `json:"code"`            // for programs: one of ErrorKinds
	Field string    `json:"field,omitempty"` // the flow field, action, JSON field or parameter at fault
	Index *int      `json:"index,omitempty"` // 0-based position of the bad item in an array request
}
