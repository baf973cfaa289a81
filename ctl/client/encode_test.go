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
