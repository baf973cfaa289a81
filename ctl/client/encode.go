package client

import (
	"unicode/utf8"

	"github.com/xvs-project/xvs/api"
)

// encoded is a request body already in JSON.
type encoded []byte

// encodeFlows returns flows as the JSON of a request body. Text-form flows
// (a bulk add-flows) are written directly, about twenty times faster than
// encoding/json does it; anything else is left to encoding/json (the body
// is then flows itself).
func encodeFlows(flows []api.Flow) any {
	n := 2
	for i := range flows {
		f := &flows[i]
		if f.Text == "" || !utf8.ValidString(f.Text) || f.ID != 0 || f.Table != 0 || f.Priority != nil || f.Cookie != "" ||
			f.IdleTimeoutS != 0 || f.HardTimeoutS != 0 || f.Match != nil || f.Actions != nil {
			return flows
		}
		n += len(f.Text) + len(`{"flow":""},`)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i := range flows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"flow":`...)
		b = appendString(b, flows[i].Text)
		b = append(b, '}')
	}
	return encoded(append(b, ']'))
}

// FlowTexts is the body of a bulk request of text-form flows, written as
// the texts are read (xvsctl add-flows FILE): a request of many flows
// costs no api.Flow, string or copy of its own a flow. The zero
// FlowTexts holds no flow.
type FlowTexts struct {
	body []byte // "[" and the flows so far, without the closing "]"
	n    int
}

// Grow makes room for about n more bytes of flow texts.
func (t *FlowTexts) Grow(n int) {
	if n += n/8 + 2; cap(t.body)-len(t.body) < n {
		// (make, not append: no clearing of what will be written over)
		b := make([]byte, len(t.body), len(t.body)+n)
		copy(b, t.body)
		t.body = b
	}
}

// Add appends a flow's text (see api.Flow.Text). It adds nothing and
// returns false for a text that is empty or not valid UTF-8: give such a
// flow as an api.Flow (AddFlows), which says what encoding/json makes of
// it.
func (t *FlowTexts) Add(text string) bool {
	if len(text) == 0 || !utf8.ValidString(text) {
		return false
	}
	if t.n == 0 {
		t.body = append(t.body[:0], '[')
	} else {
		t.body = append(t.body, ',')
	}
	t.body = append(t.body, `{"flow":`...)
	t.body = appendString(t.body, text)
	t.body = append(t.body, '}')
	t.n++
	return true
}

// Len returns the number of flows added.
func (t *FlowTexts) Len() int { return t.n }

// encoded returns the request body.
func (t *FlowTexts) encoded() encoded {
	if t.n == 0 {
		return encoded("[]")
	}
	return encoded(append(t.body, ']')) // (t.body keeps its length)
}

// jsonEscapes marks the bytes appendString escapes: one load a byte of a
// bulk body's 14 MB of texts, not three compares.
var jsonEscapes = func() (t [256]bool) {
	for c := range t {
		t[c] = c < 0x20 || c == '"' || c == '\\'
	}
	return t
}()

// appendString appends s, valid UTF-8, as a JSON string.
func appendString[S string | []byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !jsonEscapes[c] {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
