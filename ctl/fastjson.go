package ctl

import "encoding/binary"

// Bulk requests of text-form flows, the shape xvsctl add-flows and most
// controllers send (`[{"flow":"..."},{"flow":"..."}]`), are read without
// encoding/json: a 160k-flow body costs encoding/json a decoder and a
// RawMessage copy per item, about as much as parsing the flows. Anything
// else, and any doubt (an escape, a byte above 0x7f, another key), goes
// through encoding/json as before, so the two paths accept the same
// bodies and give the same errors.

// textFlows returns where the flow texts of body are when it is exactly a
// JSON array of objects each holding one key "flow" with a string value
// free of escapes, control characters and non-ASCII bytes; ok is false
// otherwise. The texts are body's bytes, not copies: a text becomes a
// string only if it has to be parsed (decodeFlowsKnown).
func textFlows(body []byte) (texts []span, ok bool) {
	p := jsonScan{b: body}
	if !p.byte('[') {
		return nil, false
	}
	if p.byte(']') {
		return []span{}, p.end()
	}
	texts = make([]span, 0, len(body)/96)
	for {
		if !p.byte('{') || !p.lit(`"flow"`) || !p.byte(':') {
			return nil, false
		}
		s, ok := p.plainString()
		if !ok || !p.byte('}') {
			return nil, false
		}
		texts = append(texts, s)
		if p.byte(']') {
			return texts, p.end()
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

// jsonScan reads the few JSON tokens textFlows accepts.
type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// byte skips white space and c.
func (p *jsonScan) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// lit skips white space and s.
func (p *jsonScan) lit(s string) bool {
	p.space()
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// span is where a string is in the bytes scanned: b[lo:hi].
type span struct{ lo, hi int }

// of returns the bytes of s in b.
func (s span) of(b []byte) []byte { return b[s.lo:s.hi:s.hi] }

// plainString reads a string whose bytes need no decoding.
func (p *jsonScan) plainString() (span, bool) {
	if !p.byte('"') {
		return span{}, false
	}
	start := p.i
	for p.i < len(p.b) {
		// Eight bytes at a time while none of them ends the string or
		// sends it to encoding/json: this scan is serial, before the
		// parallel parse.
		if p.i+8 <= len(p.b) && !jsonSpecial(binary.LittleEndian.Uint64(p.b[p.i:])) {
			p.i += 8
			continue
		}
		switch c := p.b[p.i]; {
		case c == '"':
			s := span{start, p.i}
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return span{}, false
		}
		p.i++
	}
	return span{}, false
}

// jsonSpecial reports whether one of the eight bytes of w may be '"',
// '\\', below 0x20 or above 0x7f (plainString's bytes to look at one by
// one; true for others too is only slower).
func jsonSpecial(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((w-ones*0x20)|(q-ones)|(bs-ones)|w)&highs != 0
}

// end reports whether only white space is left.
func (p *jsonScan) end() bool {
	p.space()
	return p.i == len(p.b)
}
