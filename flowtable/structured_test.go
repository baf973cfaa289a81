package flowtable

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func prio(v uint16) *uint16 { return &v }

func TestParseFlowFields(t *testing.T) {
	want := &Flow{
		Priority: 100,
		Cookie:   0x1f,
		Match:    wantMatch("p0", kvIPv4, kvUDP, exact(steer.OffTpDst, 0x1f, 0x3f)),
		Actions:  []Action{{Type: ActSetTpDst, Value: 7998}, {Type: ActOutput, Port: "p1"}},
	}
	tests := []struct {
		name string
		ff   FlowFields
		want *Flow
	}{
		{"shorthands", FlowFields{Priority: prio(100), Cookie: "0x1f", Match: map[string]string{"udp": "", "in_port": "p0", "tp_dst": "7999"},
			Actions: []string{"mod_tp_dst:7998", "output:p1"}}, want},
		{"decimal cookie, set_field", FlowFields{Priority: prio(100), Cookie: "31",
			Match:   map[string]string{"dl_type": "0x0800", "nw_proto": "17", "in_port": "p0", "tp_dst": "0x1f3f"},
			Actions: []string{"set_field:7998->udp_dst", "p1"}}, want},
		{"default priority, drop", FlowFields{Match: map[string]string{"ip": ""}, Actions: []string{}},
			&Flow{Priority: DefaultPriority, Match: wantMatch("", kvIPv4)}},
		{"drop keyword", FlowFields{Actions: []string{"drop"}}, &Flow{Priority: DefaultPriority}},
		{"priority 0 and timeouts", FlowFields{Priority: prio(0), IdleTimeout: 5, HardTimeout: 6, Actions: []string{"kernel"}},
			&Flow{IdleTimeout: 5, HardTimeout: 6, Actions: []Action{{Type: ActKernel}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFlowFields(tt.ff)
			if err != nil {
				t.Fatalf("ParseFlowFields: %v", err)
			}
			if !reflect.DeepEqual(f, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", f, tt.want)
			}
		})
	}
}

func TestParseFlowFieldsErrors(t *testing.T) {
	tcp := map[string]string{"tcp": ""}
	tests := []struct {
		name  string
		ff    FlowFields
		field string
		want  string
	}{
		{"missing actions", FlowFields{Match: map[string]string{"udp": ""}}, "actions", "missing actions"},
		{"match field", FlowFields{Match: map[string]string{"tp_dst": "80"}, Actions: []string{}}, "tp_dst", "tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets)"},
		{"match value", FlowFields{Match: map[string]string{"tcp": "", "tp_dst": "70000"}, Actions: []string{}}, "tp_dst", `bad value "70000" for tp_dst: out of range 0..65535`},
		{"match unknown", FlowFields{Match: map[string]string{"tp_dsst": "1"}, Actions: []string{}}, "tp_dsst", `unknown field "tp_dsst"`},
		{"match shorthand value", FlowFields{Match: map[string]string{"udp": "yes"}, Actions: []string{}}, "udp", "udp takes no value"},
		{"cookie", FlowFields{Cookie: "0xzz", Actions: []string{}}, "cookie", `bad value "0xzz" for cookie: not a number`},
		{"action", FlowFields{Actions: []string{"mod_tp_dsst:1"}}, "mod_tp_dsst", `unknown action "mod_tp_dsst"`},
		{"action value", FlowFields{Match: tcp, Actions: []string{"mod_tp_dst:70000"}}, "mod_tp_dst", `bad value "70000" for mod_tp_dst: out of range 0..65535`},
		{"two actions in one item", FlowFields{Actions: []string{"output:p1,output:p2"}}, "actions", `actions[0] = "output:p1,output:p2": want one action, no separators`},
		{"empty item", FlowFields{Actions: []string{"output:p1", ""}}, "actions", `actions[1] = "": want one action, no separators`},
		{"padded item", FlowFields{Actions: []string{" output:p1"}}, "actions", `actions[0] = " output:p1": want one action, no separators`},
		{"drop not alone", FlowFields{Actions: []string{"drop", "output:p1"}}, "drop", "drop must be the only action"},
		{"kernel not alone", FlowFields{Actions: []string{"output:p1", "kernel"}}, "kernel", "kernel must be the only action"},
		{"action prereq", FlowFields{Match: map[string]string{"ip": ""}, Actions: []string{"mod_tp_dst:1"}}, "mod_tp_dst", "mod_tp_dst requires udp or tcp (Open vSwitch would take it and leave packets without that header as they are)"},
		{"set_field prereq", FlowFields{Match: map[string]string{"udp": ""}, Actions: []string{"set_field:1->tcp_src"}}, "set_field", "set_field to tcp_src requires tcp (Open vSwitch refuses it too)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFlowFields(tt.ff)
			checkParseError(t, err, tt.field, tt.want)
		})
	}
}

func TestFieldsOf(t *testing.T) {
	f, err := ParseFlow("cookie=0x1f,priority=100,idle_timeout=9,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1")
	if err != nil {
		t.Fatal(err)
	}
	want := FlowFields{Priority: prio(100), Cookie: "0x1f", IdleTimeout: 9,
		Match:   map[string]string{"in_port": "p0", "tp_dst": "7999", "udp": ""},
		Actions: []string{"mod_tp_dst:7998", "output:p1"}}
	if got := FieldsOf(f); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if got, want := FieldsOf(&Flow{}), (FlowFields{Priority: prio(0), Actions: []string{"drop"}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("empty flow: got %+v, want %+v", got, want)
	}
}

// TestFieldsRoundTripRandom sends random flows through the structured form.
func TestFieldsRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 5000 {
		f := genFlow(r)
		ff := FieldsOf(f)
		g, err := ParseFlowFields(ff)
		if err != nil {
			t.Fatalf("flow %d: ParseFlowFields(%+v): %v", i, ff, err)
		}
		if !reflect.DeepEqual(f, g) {
			t.Fatalf("flow %d: round trip via %+v\n got  %+v\n want %+v", i, ff, g, f)
		}
	}
}
