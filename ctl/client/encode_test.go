package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/xvs-project/xvs/api"
)

// encodeFlows writes what encoding/json reads back as the same flows.
func TestEncodeFlows(t *testing.T) {
	prio := uint16(5)
	tests := []struct {
		name  string
		flows []api.Flow
		fast  bool
	}{
		{"none", []api.Flow{}, true},
		{"text", []api.Flow{{Text: "udp,actions=drop"}, {Text: "tcp,actions=output:p1"}}, true},
		{"escapes", []api.Flow{{Text: "a\"b\\c\n\r\t\x01\x1f<>&é\u2028"}}, true},
		{"every ASCII byte", []api.Flow{{Text: func() string {
			b := make([]byte, 128)
			for i := range b {
				b[i] = byte(i)
			}
			return string(b)
		}()}}, true},
		{"invalid utf-8", []api.Flow{{Text: "a\xffb"}}, false},
		{"empty text", []api.Flow{{Text: ""}}, false},
		{"structured", []api.Flow{{Text: "udp,actions=drop"}, {Priority: &prio, Match: map[string]string{"udp": ""}, Actions: []string{"drop"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := encodeFlows(tt.flows)
			data, fast := body.(encoded)
			if fast != tt.fast {
				t.Fatalf("written directly: %v, want %v", fast, tt.fast)
			}
			if !fast {
				return
			}
			if !json.Valid(data) {
				t.Fatalf("not JSON: %s", data)
			}
			var back []api.Flow
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.flows) {
				t.Errorf("read back %+v, want %+v", back, tt.flows)
			}
		})
	}
}

// FlowTexts writes the body encodeFlows writes for the same texts, and
// takes no text encodeFlows would leave to encoding/json.
func TestFlowTexts(t *testing.T) {
	tests := []struct {
		name  string
		texts []string
		ok    bool
	}{
		{"none", nil, true},
		{"one", []string{"udp,actions=drop"}, true},
		{"text", []string{"udp,actions=drop", "tcp,actions=output:p1"}, true},
		{"escapes", []string{"a\"b\\c\n\r\t\x01\x1f<>&é\u2028", "x"}, true},
		{"invalid utf-8", []string{"udp,actions=drop", "a\xffb"}, false},
		{"empty text", []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ft FlowTexts
			flows := []api.Flow{}
			ok := true
			for _, s := range tt.texts {
				if !ft.Add(s) {
					ok = false
					break
				}
				flows = append(flows, api.Flow{Text: s})
			}
			if ok != tt.ok {
				t.Fatalf("added: %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if ft.Len() != len(tt.texts) {
				t.Errorf("Len = %d, want %d", ft.Len(), len(tt.texts))
			}
			want := encodeFlows(flows).(encoded)
			if got := ft.encoded(); string(got) != string(want) {
				t.Errorf("body %s, want %s", got, want)
			}
			// Encoding again, after more flows, gives the longer body.
			if ft.Add("arp,actions=drop"); !json.Valid(ft.encoded()) {
				t.Errorf("after another flow: not JSON: %s", ft.encoded())
			}
		})
	}
}

// readFlowIDs reads what the server writes and leaves anything else to
// encoding/json.
func TestReadFlowIDs(t *testing.T) {
	tests := []struct {
		body string
		want []uint64 // nil: not read
	}{
		{`{"ids":[]}`, []uint64{}},
		{`{"ids":[1]}`, []uint64{1}},
		{`{"ids":[1,22,333,18446744073709551615]}`, []uint64{1, 22, 333, 18446744073709551615}},
		{`{"ids":[0]}`, []uint64{0}},
		{`{"ids":[01]}`, nil},
		{`{"ids":[1,]}`, nil},
		{`{"ids":[,1]}`, nil},
		{`{"ids":[1 ,2]}`, nil},
		{`{"ids":[-1]}`, nil},
		{`{"ids":[1.5]}`, nil},
		{`{"ids":[18446744073709551616]}`, nil},
		{`{"ids": [1]}`, nil},
		{`{"ids":[1]} `, nil},
		{`{"ids":null}`, nil},
		{`{}`, nil},
	}
	for _, tt := range tests {
		got := readFlowIDs([]byte(tt.body))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("readFlowIDs(%s) = %v, want %v", tt.body, got, tt.want)
		}
		if got == nil {
			continue
		}
		var j api.FlowIDs
		if err := json.Unmarshal([]byte(tt.body), &j); err != nil || !reflect.DeepEqual(j.IDs, got) {
			t.Errorf("%s: encoding/json reads %v, %v", tt.body, j.IDs, err)
		}
	}
}
