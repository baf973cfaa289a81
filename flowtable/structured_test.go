package flowtable

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func TestFlowFromJSON(t *testing.T) {
	want := &Flow{
		ID:       7,
		Priority: 100,
		Cookie:   0x1f,
		Match:    wantMatch("p0", kvIPv4, kvUDP, exact(steer.OffTpDst, 0x1f, 0x3f)),
		Actions:  []Action{{Type: ActSetTpDst, Value: 7998}, {Type: ActOutput, Port: "p1"}},
	}
	tests := []struct {
		name string
		body string
		want *Flow
	}{
		{"text", `{"id": 7, "flow": "cookie=0x1f,priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1"}`, want},
		{"structured", `{"id": 7, "priority": 100, "cookie": "0x1f", "match": {"udp": "", "in_port": "p0", "tp_dst": "7999"},
			"actions": ["mod_tp_dst:7998", "output:p1"]}`, want},
		{"structured decimal cookie, set_field", `{"id": 7, "priority": 100, "cookie": "31", "match": {"dl_type": "0x0800", "nw_proto": "17", "in_port": "p0", "tp_dst": "0x1f3f"},
			"actions": ["set_field:7998->udp_dst", "p1"]}`, want},
		{"structured default priority, drop", `{"match": {"ip": ""}, "actions": []}`,
			&Flow{Priority: DefaultPriority, Match: wantMatch("", kvIPv4)}},
		{"structured drop keyword", `{"actions": ["drop"]}`, &Flow{Priority: DefaultPriority}},
		{"structured priority 0 and timeouts", `{"priority": 0, "idle_timeout": 5, "hard_timeout": 6, "actions": ["kernel"]}`,
			&Flow{IdleTimeout: 5, HardTimeout: 6, Actions: []Action{{Type: ActKernel}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j FlowJSON
			if err := json.Unmarshal([]byte(tt.body), &j); err != nil {
				t.Fatal(err)
			}
			f, err := FlowFromJSON(j)
			if err != nil {
				t.Fatalf("FlowFromJSON: %v", err)
			}
			if !reflect.DeepEqual(f, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", f, tt.want)
			}
		})
	}
}

func TestFlowFromJSONErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string
		want  string
	}{
		{"nothing", `{}`, "flow", "empty flow"},
		{"only id", `{"id": 3}`, "flow", "empty flow"},
		{"both", `{"flow": "actions=drop", "actions": []}`, "flow", `give a flow as text ("flow") or as fields, not both`},
		{"both priority", `{"flow": "actions=drop", "priority": 1}`, "flow", `give a flow as text ("flow") or as fields, not both`},
		{"text error keeps field and column", `{"flow": "udp,tp_dsst=1,actions=drop"}`, "tp_dsst", `unknown field "tp_dsst" at column 5`},
		{"text missing actions", `{"flow": "udp"}`, "actions", "missing actions"},
		{"missing actions", `{"match": {"udp": ""}}`, "actions", "missing actions"},
		{"null actions", `{"match": {"udp": ""}, "actions": null}`, "actions", "missing actions"},
		{"match field", `{"match": {"tp_dst": "80"}, "actions": []}`, "tp_dst", "tp_dst requires udp or tcp"},
		{"match value", `{"match": {"tcp": "", "tp_dst": "70000"}, "actions": []}`, "tp_dst", `bad value "70000" for tp_dst: out of range 0..65535`},
		{"match unknown", `{"match": {"tp_dsst": "1"}, "actions": []}`, "tp_dsst", `unknown field "tp_dsst"`},
		{"match shorthand value", `{"match": {"udp": "yes"}, "actions": []}`, "udp", "udp takes no value"},
		{"cookie", `{"cookie": "0xzz", "actions": []}`, "cookie", `bad value "0xzz" for cookie: not a number`},
		{"action", `{"actions": ["mod_tp_dsst:1"]}`, "mod_tp_dsst", `unknown action "mod_tp_dsst"`},
		{"action value", `{"match": {"tcp": ""}, "actions": ["mod_tp_dst:70000"]}`, "mod_tp_dst", `bad value "70000" for mod_tp_dst: out of range 0..65535`},
		{"two actions in one item", `{"actions": ["output:p1,output:p2"]}`, "actions", `actions[0] = "output:p1,output:p2": want one action, no separators`},
		{"empty item", `{"actions": ["output:p1", ""]}`, "actions", `actions[1] = "": want one action, no separators`},
		{"padded item", `{"actions": [" output:p1"]}`, "actions", `actions[0] = " output:p1": want one action, no separators`},
		{"drop not alone", `{"actions": ["drop", "output:p1"]}`, "drop", "drop must be the only action"},
		{"kernel not alone", `{"actions": ["output:p1", "kernel"]}`, "kernel", "kernel must be the only action"},
		{"action prereq", `{"match": {"ip": ""}, "actions": ["mod_tp_dst:1"]}`, "mod_tp_dst", "mod_tp_dst requires udp or tcp"},
		{"set_field prereq", `{"match": {"udp": ""}, "actions": ["set_field:1->tcp_src"]}`, "set_field", "set_field to tcp_src requires tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j FlowJSON
			if err := json.Unmarshal([]byte(tt.body), &j); err != nil {
				t.Fatal(err)
			}
			_, err := FlowFromJSON(j)
			checkParseError(t, err, tt.field, tt.want)
		})
	}
}

func TestFlowToJSON(t *testing.T) {
	f, err := ParseFlow("cookie=0x1f,priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1")
	if err != nil {
		t.Fatal(err)
	}
	f.ID = 9
	b, err := json.Marshal(FlowToJSON(f))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":9,"priority":100,"cookie":"0x1f","match":{"in_port":"p0","tp_dst":"7999","udp":""},` +
		`"actions":["mod_tp_dst:7998","output:p1"],"flow":"cookie=0x1f,priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1"}`
	if string(b) != want {
		t.Fatalf("json\n got  %s\n want %s", b, want)
	}
	b, err = json.Marshal(FlowToJSON(&Flow{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"priority":0,"actions":["drop"],"flow":"priority=0,actions=drop"}`; string(b) != want {
		t.Fatalf("json of an empty flow\n got  %s\n want %s", b, want)
	}
}

// TestJSONRoundTripRandom sends random flows through JSON in each form.
func TestJSONRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 5000 {
		f := genFlow(r)
		f.ID = r.Uint64()
		b, err := json.Marshal(FlowToJSON(f))
		if err != nil {
			t.Fatal(err)
		}
		var j FlowJSON
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatal(err)
		}
		text := FlowJSON{ID: j.ID, Text: j.Text}
		structured := j
		structured.Text = ""
		for _, form := range []FlowJSON{text, structured} {
			g, err := FlowFromJSON(form)
			if err != nil {
				t.Fatalf("flow %d: FlowFromJSON(%+v): %v", i, form, err)
			}
			if !reflect.DeepEqual(f, g) {
				t.Fatalf("flow %d: JSON round trip of %s\n got  %+v\n want %+v", i, b, g, f)
			}
		}
	}
}
