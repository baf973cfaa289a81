package ctl

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/flowtable"
)

// The wire form of a flow, byte for byte.
func TestAPIFlowJSON(t *testing.T) {
	f, err := flowtable.ParseFlow("cookie=0x1f,priority=100,hard_timeout=30,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1")
	if err != nil {
		t.Fatal(err)
	}
	f.ID = 9
	b, err := json.Marshal(apiFlow(f))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":9,"priority":100,"cookie":"0x1f","hard_timeout_s":30,"match":{"in_port":"p0","tp_dst":"7999","udp":""},` +
		`"actions":["mod_tp_dst:7998","output:p1"],"flow":"cookie=0x1f,hard_timeout=30,priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1"}`
	if string(b) != want {
		t.Fatalf("json\n got  %s\n want %s", b, want)
	}
	if b, _ := json.Marshal(apiFlow(&flowtable.Flow{})); string(b) != `{"priority":0,"actions":["drop"],"flow":"priority=0,actions=drop"}` {
		t.Fatalf("json of an empty flow: %s", b)
	}
}

// A flow as the server answers it goes back in, in either form, as the
// same flow.
func TestAPIFlowRoundTrip(t *testing.T) {
	for _, text := range []string{
		"priority=0,actions=drop",
		"cookie=0xffffffffffffffff,idle_timeout=5,hard_timeout=6,priority=65535,tcp6,ipv6_dst=2001:db8::/32,actions=push_vlan:0x8100,mod_vlan_vid:20,output:p1",
		"priority=150,in_port=p0,dl_vlan=10,actions=strip_vlan,output:p0",
		"priority=300,udp,nw_src=10.0.0.0/8,tp_dst=7999,actions=mod_nw_dst:192.0.2.1,mod_tp_dst:7998,dec_ttl,output:p1",
		"arp,actions=kernel",
	} {
		f, err := flowtable.ParseFlow(text)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(apiFlow(f))
		if err != nil {
			t.Fatal(err)
		}
		var j api.Flow
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatal(err)
		}
		structured := j
		structured.Text = ""
		for _, form := range []api.Flow{{Text: j.Text}, structured} {
			g, err := flowFromAPI(form)
			if err != nil {
				t.Fatalf("%s: flowFromAPI(%+v): %v", text, form, err)
			}
			if !reflect.DeepEqual(f, g) {
				t.Fatalf("%s: round trip via %s\n got  %+v\n want %+v", text, b, g, f)
			}
		}
	}
}

func TestFlowFromAPIErrors(t *testing.T) {
	prio := uint16(1)
	tests := []struct {
		name  string
		j     api.Flow
		field string
		want  string
	}{
		{"nothing", api.Flow{}, "flow", "empty flow"},
		{"id", api.Flow{ID: 3, Text: "actions=drop"}, "id", "id is assigned by the switch"},
		{"both", api.Flow{Text: "actions=drop", Actions: []string{}}, "flow", `give a flow as text ("flow") or as fields, not both`},
		{"both priority", api.Flow{Text: "actions=drop", Priority: &prio}, "flow", `give a flow as text ("flow") or as fields, not both`},
		{"text error keeps field and column", api.Flow{Text: "udp,tp_dsst=1,actions=drop"}, "tp_dsst", `unknown field "tp_dsst" at column 5`},
		{"text missing actions", api.Flow{Text: "udp"}, "actions", "missing actions"},
		{"structured", api.Flow{Match: map[string]string{"tp_dst": "1"}, Actions: []string{}}, "tp_dst", "tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := flowFromAPI(tt.j)
			er := errorResponse(err)
			if err == nil || er.Field != tt.field || er.Error != tt.want || er.Code != api.CodeInvalid {
				t.Fatalf("got %v (%+v), want field %q, %q", err, er, tt.field, tt.want)
			}
		})
	}
}
