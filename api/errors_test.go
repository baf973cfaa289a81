package api

import (
	"net/http"
	"regexp"
	"testing"
)

func TestErrorKinds(t *testing.T) {
	codes := map[ErrorCode]bool{}
	valid := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, k := range ErrorKinds {
		if codes[k.Code] {
			t.Errorf("code %s twice", k.Code)
		}
		codes[k.Code] = true
		if !valid.MatchString(string(k.Code)) {
			t.Errorf("code %q is not snake_case", k.Code)
		}
		if k.Status < 400 || k.Status > 599 || http.StatusText(k.Status) == "" {
			t.Errorf("code %s: status %d is not an HTTP error status", k.Code, k.Status)
		}
		if got := k.Code.Status(); got != k.Status {
			t.Errorf("%s.Status() = %d, want %d", k.Code, got, k.Status)
		}
	}
	if got := ErrorCode("no_such_thing").Status(); got != http.StatusInternalServerError {
		t.Errorf("unknown code: status %d, want 500", got)
	}
}

func TestCodeForStatus(t *testing.T) {
	tests := []struct {
		status int
		want   ErrorCode
	}{
		{400, CodeInvalid},
		{401, CodeUnauthorized},
		{404, ""}, // port, flow or path: ambiguous
		{405, CodeMethodNotAllowed},
		{409, ""},
		{413, CodeTooLarge},
		{403, CodeForbidden},
		{415, CodeUnsupportedType},
		{507, CodeNotSaved},
		{500, CodeInternal},
		{503, CodeUnavailable},
		{418, ""},
	}
	for _, tt := range tests {
		if got := CodeForStatus(tt.status); got != tt.want {
			t.Errorf("CodeForStatus(%d) = %q, want %q", tt.status, got, tt.want)
		}
	}
}
