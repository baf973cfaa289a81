package ctl

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// Errors of the API layer itself.
var (
	errNotFound         = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	errUnauthorized     = errors.New("missing or wrong bearer token")
	errForbidden        = errors.New("forbidden")
	errUnsupportedType  = errors.New("unsupported media type")
	// errNotSaved: the state could not be saved, so the change was not made.
	errNotSaved = errors.New("state not saved, so the change was not made")
	// errBusy: too many large bodies at once.
	errBusy = errors.New("busy")
)

// errorCodes maps the errors of the layers below, and the API's own, to
// the API's error codes: the first sentinel an error wraps (errors.Is)
// chooses its code, and api.ErrorKinds its status. Order matters where one
// error wraps two sentinels: a request error too large for the body limit
// is an ErrInvalid too, but answers too_large. An error that wraps none
// of them is internal (500): a user's mistake that reaches it is a bug
// here or below.
var errorCodes = []struct {
	is   func(error) bool
	code api.ErrorCode
}{
	{sentinel(errUnauthorized), api.CodeUnauthorized},
	{sentinel(errMethodNotAllowed), api.CodeMethodNotAllowed},
	{sentinel(errNotFound), api.CodeNotFound},
	{sentinel(errForbidden), api.CodeForbidden},
	{sentinel(errUnsupportedType), api.CodeUnsupportedType},
	{sentinel(errNotSaved), api.CodeNotSaved},
	{sentinel(errBusy), api.CodeUnavailable},
	{func(err error) bool { var e *http.MaxBytesError; return errors.As(err, &e) }, api.CodeTooLarge},
	{sentinel(datapath.ErrClosed), api.CodeUnavailable},
	{sentinel(flowtable.ErrTooManyMasks), api.CodeTooManyMasks},
	{sentinel(flowtable.ErrTooManyFlows), api.CodeTooManyFlows},
	{sentinel(datapath.ErrPortExists), api.CodePortExists},
	{sentinel(datapath.ErrBusy), api.CodeBusy},
	{sentinel(datapath.ErrNotSupported), api.CodeNotSupported},
	{sentinel(datapath.ErrNoSuchDevice), api.CodeNoSuchDevice},
	{sentinel(datapath.ErrNoSuchPort), api.CodeNoSuchPort},
	{sentinel(datapath.ErrNoSuchFlow), api.CodeNoSuchFlow},
	{sentinel(datapath.ErrNoSuchGroup), api.CodeNoSuchGroup},
	{sentinel(datapath.ErrGroupExists), api.CodeGroupExists},
	{sentinel(datapath.ErrGroupInUse), api.CodeGroupInUse},
	{sentinel(datapath.ErrInvalid), api.CodeInvalid},
}

func sentinel(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// codeOf returns the API's error code for err.
func codeOf(err error) api.ErrorCode {
	for _, c := range errorCodes {
		if c.is(err) {
			return c.code
		}
	}
	return api.CodeInternal
}

// statusOf maps an error to the HTTP status the API answers it with: the
// status api.ErrorKinds gives its code. It is the only function in the
// package that chooses an error status.
func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return codeOf(err).Status()
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
func errorResponse(err error) api.ErrorResponse {
	resp := api.ErrorResponse{Error: err.Error(), Code: codeOf(err)}
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
	var fie *flowtable.ItemError
	switch {
	case errors.As(err, &ie):
		i := ie.index
		resp.Index = &i
	case errors.As(err, &fie):
		i := fie.Index
		resp.Index = &i
	}
	if resp.Field == "" && resp.Code == api.CodeNoSuchGroup {
		resp.Field = "group"
	}
	return resp
}
