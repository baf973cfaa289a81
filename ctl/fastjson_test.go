package ctl

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/flowtable"
)

// The fast path for text-form flows gives what encoding/json gives, for
// every body: the same flows, or the same error at the same item.
func TestTextFlowsAgreeWithJSON(t *testing.T) {
	good := `udp,tp_dst=7999,actions=drop`
	tests := []struct {
		name string
		body string
		fast bool // the fast path takes it
	}{
		{"one", `[{"flow":"` + good + `"}]`, true},
		{"two with spaces", " [ {\"flow\" : \"" + good + "\"} ,\n\t{ \"flow\":\"tcp,actions=drop\" } ]\n", true},
		{"empty array", `[]`, true},
		{"empty array spaced", " [ ] ", true},
		{"bad flow", `[{"flow":"` + good + `"},{"flow":"udp,tp_dsst=1,actions=drop"}]`, true},
		{"empty text", `[{"flow":""}]`, true},
		{"escape", `[{"flow":"udp,tp_dst=7999,actions=\u0064rop"}]`, false},
		{"escaped quote", `[{"flow":"udp,actions=drop\""}]`, false},
		{"non-ascii", `[{"flow":"udp,in_port=pé,actions=drop"}]`, false},
		{"other key", `[{"flow":"` + good + `","cookie":"1"}]`, false},
		{"unknown key", `[{"flo":"` + good + `"}]`, false},
		{"case folded key", `[{"FLOW":"` + good + `"}]`, false},
		{"duplicate key", `[{"flow":"` + good + `","flow":"tcp,actions=drop"}]`, false},
		{"structured", `[{"match":{"udp":""},"actions":["drop"]}]`, false},
		{"mixed", `[{"flow":"` + good + `"},{"match":{"udp":""},"actions":["drop"]}]`, false},
		{"trailing comma", `[{"flow":"` + good + `"},]`, false},
		{"missing comma", `[{"flow":"` + good + `"} {"flow":"` + good + `"}]`, false},
		{"trailing data", `[{"flow":"` + good + `"}] x`, false},
		{"second value", `[{"flow":"` + good + `"}][]`, false},
		{"unterminated", `[{"flow":"` + good, false},
		{"number", `[{"flow":1}]`, false},
		{"null", `[null]`, false},
		{"control char", "[{\"flow\":\"udp,\tactions=drop\"}]", false},
		{"object", `{"flow":"` + good + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fast := textFlows([]byte(strings.TrimLeft(tt.body, " \t\r\n")))
			if fast != tt.fast {
				t.Errorf("fast path took it: %v, want %v", fast, tt.fast)
			}
			got, garray, gerr := decodeFlows([]byte(tt.body))
			want, warray, werr := decodeFlowsJSON([]byte(tt.body))
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || garray != warray || len(got) != len(want) {
				t.Fatalf("decodeFlows: %d flows, array %v, %v; encoding/json: %d flows, array %v, %v",
					len(got), garray, gerr, len(want), warray, werr)
			}
			for i := range got {
				if got[i].String() != want[i].String() {
					t.Errorf("flow %d: %s, want %s", i, got[i], want[i])
				}
			}
		})
	}
}

// The fast path reads the texts in place, in the request's body: neither
// the flows it parses nor those it takes from the installed ones may keep
// pointing into the body, which the server reuses and drops.
func TestTextFlowsCopyOut(t *testing.T) {
	texts := []string{"priority=5,udp,tp_dst=99,actions=drop", "arp,actions=kernel"}
	body := []byte(`[{"flow":"` + texts[0] + `"},{"flow":"` + texts[1] + `"}]`)
	installed, err := flowtable.ParseFlow(texts[1])
	if err != nil {
		t.Fatal(err)
	}
	known := func(b []byte) *flowtable.Flow {
		if string(b) == texts[1] {
			c := *installed
			return &c
		}
		return nil
	}
	flows, _, err := decodeFlowsKnown(body, known)
	if err != nil || len(flows) != 2 {
		t.Fatalf("%d flows, %v", len(flows), err)
	}
	for i := range body {
		body[i] = 'x'
	}
	for i, f := range flows {
		want, _ := flowtable.ParseFlow(texts[i])
		if got := f.String(); got != want.String() {
			t.Errorf("flow %d after the body changed: %s, want %s", i, got, want)
		}
	}
	// Nor may an error: its field and message stay as they were.
	body = []byte(`[{"flow":"udp,actions=drop"},{"flow":"udp,tp_dst=9,bogus=1,actions=drop"}]`)
	_, _, err = decodeFlowsKnown(body, nil)
	var ie *itemError
	var pe *flowtable.ParseError
	if !errors.As(err, &ie) || ie.index != 1 || !errors.As(err, &pe) || pe.Field != "bogus" {
		t.Fatalf("a bad flow: %#v", err)
	}
	msg := err.Error()
	for i := range body {
		body[i] = 'x'
	}
	if pe.Field != "bogus" || err.Error() != msg {
		t.Errorf("after the body changed: field %q, error %q; want bogus, %q", pe.Field, err.Error(), msg)
	}
}

// A body large enough to be parsed on several goroutines gives the flows
// in order and, when several are bad, the error of the first bad one, as
// one loop over the flows does.
func TestDecodeFlowsParallelOrder(t *testing.T) {
	n := 3*parallelOver + 5
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("priority=%d,udp,tp_dst=%d,actions=drop", i%60000+1, i%65536)
	}
	body := func(ts []string) []byte { return []byte(textFlowsBody(ts)) }
	flows, _, err := decodeFlows(body(texts))
	if err != nil || len(flows) != n {
		t.Fatalf("%d flows, %v", len(flows), err)
	}
	for i, f := range flows {
		if want, _ := flowtable.ParseFlow(texts[i]); f.String() != want.String() {
			t.Fatalf("flow %d: %s, want %s", i, f, want)
		}
	}
	for _, bad := range [][]int{{n - 1}, {10, n - 1}, {2*parallelOver + 1, parallelOver + 3}, {0, 1}} {
		ts := slices.Clone(texts)
		for _, i := range bad {
			ts[i] = fmt.Sprintf("udp,tp_dst=x%d,actions=drop", i)
		}
		_, _, err := decodeFlows(body(ts))
		var ie *itemError
		if !errors.As(err, &ie) || ie.index != slices.Min(bad) {
			t.Fatalf("bad flows %v: %v, want the error of flow %d", bad, err, slices.Min(bad))
		}
	}
}

// textFlowsBody is a bulk request of the flows texts, in the text form.
func textFlowsBody(texts []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range texts {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"flow":%q}`, s)
	}
	b.WriteByte(']')
	return b.String()
}

// jsonSpecial never misses a byte plainString must look at: every byte
// value at every place of a word of plain bytes, and random words.
func TestJSONSpecial(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	check := func(w uint64) {
		want := false
		for i := range 8 {
			want = want || special(byte(w>>(8*i)))
		}
		if want && !jsonSpecial(w) {
			t.Fatalf("jsonSpecial(%#016x) = false", w)
		}
		if !want && jsonSpecial(w) {
			t.Errorf("jsonSpecial(%#016x) = true for plain bytes", w)
		}
	}
	for _, base := range []uint64{0x2020202020202020, 0x7f7f7f7f7f7f7f7f, 0x6161616161616161, 0x2121212121212121, 0x5d5d5d5d5d5d5d5d} {
		for i := range 8 {
			for c := range 256 {
				check(base&^(0xff<<(8*i)) | uint64(c)<<(8*i))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		check(r.Uint64())
	}
}
