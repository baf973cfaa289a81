package ctl

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// Errors of the API layer itself. Each wraps the sentinel its status code is
// chosen by, so statusOf stays the only place that knows HTTP codes.
var (
	errNotFound         = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	errUnauthorized     = errors.New("missing or wrong bearer token")
)

// statusOf maps an error to the HTTP status the API answers it with. It is the
// only function in the package that chooses an error status.
func statusOf(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errMethodNotAllowed):
		return http.StatusMethodNotAllowed
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, datapath.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, flowtable.ErrTooManyMasks):
		// Valid on its own, but the XDP classifier cannot hold it next to
		// the flows already installed.
		return http.StatusConflict
	case errors.Is(err, datapath.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, datapath.ErrPortExists):
		return http.StatusConflict
	case errors.Is(err, datapath.ErrBusy): // the device's XDP hook or a queue is another program's
		return http.StatusConflict
	case errors.Is(err, datapath.ErrNotSupported): // asked of a device that cannot do it
		return http.StatusBadRequest
	case errors.Is(err, datapath.ErrNoSuchPort),
		errors.Is(err, datapath.ErrNoSuchDevice),
		errors.Is(err, datapath.ErrNoSuchFlow),
		errors.Is(err, errNotFound):
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"` // the flow field or action at fault, or the JSON field
	Index *int   `json:"index,omitempty"` // 0-based position of the bad item in an array request
}

// itemError says which item of an array request an error is about.
type itemError struct {
	index int
	err   error
}

func (e *itemError) Error() string { return e.err.Error() }
func (e *itemError) Unwrap() error { return e.err }

// requestError is a malformed request: bad JSON, an unknown or wrong field,
// a bad query or path parameter. It is an ErrInvalid, so it answers 400
// (or 413 when it wraps an *http.MaxBytesError).
type requestError struct {
	field string // the JSON field or parameter at fault, if known
	err   error
}

func (e *requestError) Error() string   { return e.err.Error() }
func (e *requestError) Unwrap() []error { return []error{e.err, datapath.ErrInvalid} }

func badRequest(field string, format string, args ...any) error {
	return &requestError{field: field, err: fmt.Errorf(format, args...)}
}

// fieldError is an error about one field of a request whose kind (and so
// status) comes from err, e.g. a flow naming a port that does not exist.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// errorResponse builds the body for err.
func errorResponse(err error) ErrorResponse {
	resp := ErrorResponse{Error: err.Error()}
	var pe *flowtable.ParseError
	var re *requestError
	var fe *fieldError
	switch {
	case errors.As(err, &pe):
		resp.Field = pe.Field
	case errors.As(err, &re):
		resp.Field = re.field
	case errors.As(err, &fe):
		resp.Field = fe.field
	}
	var ie *itemError
	if errors.As(err, &ie) {
		i := ie.index
		resp.Index = &i
	}
	return resp
}

// APIError is an error answer from the server, as Client returns it.
type APIError struct {
	Status  int    // HTTP status code
	Message string // the server's message
	Field   string // the field at fault, if the server named one
	Index   int    // position of the bad item in an array request; -1 if none
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Index >= 0 {
		msg = fmt.Sprintf("item %d: %s", e.Index, msg)
	}
	if e.Field != "" {
		msg = fmt.Sprintf("%s (field %s)", msg, e.Field)
	}
	return msg
}

// Is lets callers test an APIError against the datapath sentinels by status:
// 404 is ErrNoSuchPort or ErrNoSuchFlow, 409 ErrPortExists, 400 ErrInvalid,
// 503 ErrClosed.
func (e *APIError) Is(target error) bool {
	switch target {
	case datapath.ErrNoSuchPort, datapath.ErrNoSuchFlow:
		return e.Status == http.StatusNotFound
	case datapath.ErrPortExists:
		return e.Status == http.StatusConflict
	case datapath.ErrInvalid:
		return e.Status == http.StatusBadRequest
	case datapath.ErrClosed:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}
