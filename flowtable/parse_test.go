package flowtable

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func TestParseFlow(t *testing.T) {
	udp7999 := wantMatch("p0", kvIPv4, kvUDP, exact(steer.OffTpDst, 0x1f, 0x3f))
	example := &Flow{
		Priority: 100,
		Match:    udp7999,
		Actions:  []Action{{Type: ActSetTpDst, Value: 7998}, {Type: ActOutput, Port: "p1"}},
	}
	tests := []struct {
		name string
		text string
		want *Flow
	}{
		{"example", "priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1", example},
		{"spaces and order", "  tp_dst=7999 in_port=p0\tudp, priority=100 actions=mod_tp_dst:7998, output:p1\n", example},
		{"dump-flows line", " cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, hard_age=3, " +
			"priority=100,udp,in_port=p0,tp_dst=7999 actions=mod_tp_dst:7998,output:p1", example},
		{"dump-flows line, in XDP", " cookie=0x0, n_packets=10, idle_age=2, datapath=xdp, " +
			"priority=100,udp,in_port=p0,tp_dst=7999 actions=mod_tp_dst:7998,output:p1", example},
		{"dump-flows line, in userspace", " cookie=0x0, idle_age=2, datapath=user(no_ndo_xdp_xmit:p1), " +
			"priority=100,udp,in_port=p0,tp_dst=7999 actions=mod_tp_dst:7998,output:p1", example},
		{"default priority", "actions=drop", &Flow{Priority: DefaultPriority}},
		{"empty actions drop", "priority=0,actions=", &Flow{}},
		{"actions separators only", "priority=0,actions= , ", &Flow{}},
		{"cookie hex", "cookie=0x1f,priority=1,actions=drop", &Flow{Priority: 1, Cookie: 0x1f}},
		{"cookie decimal max", "cookie=18446744073709551615,priority=1,actions=drop", &Flow{Priority: 1, Cookie: 1<<64 - 1}},
		{"timeouts", "idle_timeout=10,hard_timeout=65535,priority=65535,actions=kernel",
			&Flow{Priority: 65535, IdleTimeout: 10, HardTimeout: 65535, Actions: []Action{{Type: ActKernel}}}},
		{"action prereqs use the whole match", "ipv6,priority=1,actions=dec_ttl",
			&Flow{Priority: 1, Match: wantMatch("", kvIPv6), Actions: []Action{{Type: ActDecTTL}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFlow(tt.text)
			if err != nil {
				t.Fatalf("ParseFlow(%q): %v", tt.text, err)
			}
			if !reflect.DeepEqual(f, tt.want) {
				t.Fatalf("ParseFlow(%q)\n got  %+v\n want %+v", tt.text, f, tt.want)
			}
			if err := f.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

func TestParseFlowErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		field string
		want  string
	}{
		{"missing actions", "udp,tp_dst=1", "actions", "missing actions"},
		{"empty", "", "actions", "missing actions"},
		{"unknown field", "priority=100,udp,in_port=p0,tp_dsst=7999,actions=drop", "tp_dsst", `unknown field "tp_dsst" at column 29`},
		{"tp_dst prereq", "priority=100,in_port=p0,tp_dst=7999,actions=drop", "tp_dst", "tp_dst requires udp or tcp at column 25"},
		{"priority range", "priority=65536,actions=drop", "priority", `bad value "65536" for priority: out of range 0..65535 at column 1`},
		{"priority twice", "priority=1,priority=1,actions=drop", "priority", "priority given twice at column 12"},
		{"priority empty", "priority=,actions=drop", "priority", "missing value for priority at column 1"},
		{"cookie mask", "cookie=0x1/0xff,actions=drop", "cookie", "a cookie mask is only allowed in a filter at column 1"},
		{"cookie bad", "cookie=0xg,actions=drop", "cookie", `bad value "0xg" for cookie: not a number at column 1`},
		{"idle_timeout range", "idle_timeout=70000,actions=drop", "idle_timeout", `bad value "70000" for idle_timeout: out of range 0..65535 at column 1`},
		{"table 254", "table=254,actions=drop", "table", `bad value "254" for table: out of range 0..253 at column 1`},
		{"duration", "duration=1.2,actions=drop", "duration", `bad value "1.2" for duration: not a duration in seconds like 1.234s at column 1`},
		{"duration negative", "duration=-1s,actions=drop", "duration", `bad value "-1s" for duration: not a duration in seconds like 1.234s at column 1`},
		{"duration nan", "duration=NaNs,actions=drop", "duration", `bad value "NaNs" for duration: not a duration in seconds like 1.234s at column 1`},
		{"n_packets", "n_packets=-1,actions=drop", "n_packets", `bad value "-1" for n_packets: not a number at column 1`},
		{"datapath", "datapath=kernel,actions=drop", "datapath", `bad value "kernel" for datapath: want xdp, user or user(REASON) at column 1`},
		{"datapath open", "datapath=user(x,actions=drop", "datapath", `bad value "user(x" for datapath: want xdp, user or user(REASON) at column 1`},
		{"drop not alone", "actions=drop,output:p1", "drop", "drop must be the only action at column 9"},
		{"kernel not alone", "actions=output:p1,kernel", "kernel", "kernel must be the only action at column 19"},
		{"mod_tp_dst needs l4", "ip,actions=mod_tp_dst:1", "mod_tp_dst", "mod_tp_dst requires udp or tcp at column 12"},
		{"mod_tp_src with icmp", "icmp,actions=mod_tp_src:1", "mod_tp_src", "mod_tp_src requires udp or tcp at column 14"},
		{"mod_nw_src needs ip", "arp,actions=mod_nw_src:1.2.3.4", "mod_nw_src", "mod_nw_src requires ip at column 13"},
		{"mod_nw_tos needs ipv4", "ipv6,actions=mod_nw_tos:4", "mod_nw_tos", "mod_nw_tos requires ip at column 14"},
		{"dec_ttl needs ip", "actions=dec_ttl", "dec_ttl", "dec_ttl requires ip or ipv6 at column 9"},
		{"set_field tcp_dst needs tcp", "udp,actions=set_field:1->tcp_dst", "set_field", "set_field to tcp_dst requires tcp at column 13"},
		{"set_field udp_src needs udp", "tcp6,actions=set_field:1->udp_src", "set_field", "set_field to udp_src requires udp at column 14"},
		{"set_field ip_dst needs ip", "ipv6,actions=set_field:1.2.3.4->ip_dst", "set_field", "set_field to ip_dst requires ip at column 14"},
		{"bad action column", "udp,actions=output:p1,mod_tp_dsst:1", "mod_tp_dsst", `unknown action "mod_tp_dsst" at column 23`},
		{"actions twice", "actions=output:p1,actions=drop", "actions=drop", `unknown action "actions=drop" at column 19`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFlow(tt.text)
			checkParseError(t, err, tt.field, tt.want)
		})
	}
}

func TestParseActions(t *testing.T) {
	mac := [6]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55}
	a4 := mustAddr(t, "10.0.0.1")
	tests := []struct {
		name string
		text string
		want []Action
	}{
		{"empty", "", nil},
		{"drop", "drop", nil},
		{"output", "output:p1", []Action{{Type: ActOutput, Port: "p1"}}},
		{"bare port", "p1", []Action{{Type: ActOutput, Port: "p1"}}},
		{"output named like a keyword", "output:drop", []Action{{Type: ActOutput, Port: "drop"}}},
		{"in_port", "in_port", []Action{{Type: ActInPort}}},
		{"output in_port", "output:in_port", []Action{{Type: ActInPort}}},
		{"kernel", "kernel", []Action{{Type: ActKernel}}},
		{"mod_dl_src", "mod_dl_src:00:11:22:33:44:55", []Action{{Type: ActSetDlSrc, MAC: mac}}},
		{"mod_dl_dst", "mod_dl_dst:0:11:22:33:44:55", []Action{{Type: ActSetDlDst, MAC: mac}}},
		{"mod_nw_src", "mod_nw_src:10.0.0.1", []Action{{Type: ActSetNwSrc, Addr: a4}}},
		{"mod_nw_dst", "mod_nw_dst:10.0.0.1", []Action{{Type: ActSetNwDst, Addr: a4}}},
		{"mod_nw_tos", "mod_nw_tos:184", []Action{{Type: ActSetNwTos, Value: 184}}},
		{"mod_tp_src", "mod_tp_src:0", []Action{{Type: ActSetTpSrc, Value: 0}}},
		{"mod_tp_dst", "mod_tp_dst:0xffff", []Action{{Type: ActSetTpDst, Value: 65535}}},
		{"push_vlan", "push_vlan:0x8100", []Action{{Type: ActPushVLAN, Value: 0x8100}}},
		{"push_vlan qinq decimal", "push_vlan:34984", []Action{{Type: ActPushVLAN, Value: 0x88a8}}},
		{"mod_vlan_vid", "mod_vlan_vid:4095", []Action{{Type: ActSetVlanVID, Value: 4095}}},
		{"mod_vlan_pcp", "mod_vlan_pcp:7", []Action{{Type: ActSetVlanPCP, Value: 7}}},
		{"strip_vlan", "strip_vlan", []Action{{Type: ActStripVLAN}}},
		{"pop_vlan", "pop_vlan", []Action{{Type: ActStripVLAN}}},
		{"dec_ttl", "dec_ttl", []Action{{Type: ActDecTTL}}},
		{"set_field eth_src", "set_field:00:11:22:33:44:55->eth_src", []Action{{Type: ActSetDlSrc, MAC: mac}}},
		{"set_field dl_dst", "set_field:00:11:22:33:44:55->dl_dst", []Action{{Type: ActSetDlDst, MAC: mac}}},
		{"set_field ip_src", "set_field:10.0.0.1->ip_src", []Action{{Type: ActSetNwSrc, Addr: a4}}},
		{"set_field nw_dst", "set_field:10.0.0.1->nw_dst", []Action{{Type: ActSetNwDst, Addr: a4}}},
		{"set_field nw_tos", "set_field:184->nw_tos", []Action{{Type: ActSetNwTos, Value: 184}}},
		{"set_field ip_dscp", "set_field:46->ip_dscp", []Action{{Type: ActSetNwTos, Value: 184}}},
		{"set_field tcp_src", "set_field:1->tcp_src", []Action{{Type: ActSetTpSrc, Value: 1}}},
		{"set_field udp_dst", "set_field:2->udp_dst", []Action{{Type: ActSetTpDst, Value: 2}}},
		{"set_field tp_dst", "set_field:3->tp_dst", []Action{{Type: ActSetTpDst, Value: 3}}},
		{"set_field vlan_vid", "set_field:100->vlan_vid", []Action{{Type: ActSetVlanVID, Value: 100}}},
		{"set_field vlan_vid present bit", "set_field:0x1064->vlan_vid", []Action{{Type: ActSetVlanVID, Value: 100}}},
		{"set_field vlan_pcp", "set_field:3->vlan_pcp", []Action{{Type: ActSetVlanPCP, Value: 3}}},
		{"list", "mod_tp_dst:7998,output:p1 output:p2", []Action{{Type: ActSetTpDst, Value: 7998}, {Type: ActOutput, Port: "p1"}, {Type: ActOutput, Port: "p2"}}},
		{"output twice", "output:p1,output:p1", []Action{{Type: ActOutput, Port: "p1"}, {Type: ActOutput, Port: "p1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseActions(tt.text)
			if err != nil {
				t.Fatalf("ParseActions(%q): %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseActions(%q)\n got  %+v\n want %+v", tt.text, got, tt.want)
			}
			if len(tt.want) == 1 {
				a, err := ParseAction(tt.text)
				if err != nil || a != tt.want[0] {
					t.Fatalf("ParseAction(%q) = %+v, %v", tt.text, a, err)
				}
			}
		})
	}
}

func TestParseActionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		field string
		want  string
	}{
		{"output empty", "output:", "output", "missing value for output at column 1"},
		{"output bare", "output", "output", "missing value for output at column 1"},
		{"mod_tp_dst bare", "mod_tp_dst", "mod_tp_dst", "missing value for mod_tp_dst at column 1"},
		{"output bad name", "output:a/b", "output", `bad value "a/b" for output: contains '/' at column 1`},
		{"output long name", "output:0123456789abcdef", "output", `bad value "0123456789abcdef" for output: longer than 15 bytes at column 1`},
		{"unknown", "mod_tp_dsst:1", "mod_tp_dsst", `unknown action "mod_tp_dsst" at column 1`},
		{"unsupported bare", "flood", "flood", `unsupported action "flood" at column 1`},
		{"unsupported with value", "output:p1,learn(table=1)", "learn", `unsupported action "learn" at column 11`},
		{"not a port name", "a=b", "a=b", `unknown action "a=b" at column 1`},
		{"kernel first", "kernel,output:p1", "kernel", "kernel must be the only action at column 1"},
		{"drop with value", "drop:1", "drop", "drop takes no value at column 1"},
		{"dec_ttl with value", "dec_ttl:1", "dec_ttl", "dec_ttl takes no value at column 1"},
		{"mod_nw_tos ecn", "mod_nw_tos:5", "mod_nw_tos", `bad value "5" for mod_nw_tos: the low 2 bits (ECN) must be zero at column 1`},
		{"mod_nw_tos range", "mod_nw_tos:256", "mod_nw_tos", `bad value "256" for mod_nw_tos: out of range 0..255 at column 1`},
		{"mod_vlan_vid range", "mod_vlan_vid:4096", "mod_vlan_vid", `bad value "4096" for mod_vlan_vid: out of range 0..4095 at column 1`},
		{"mod_vlan_pcp range", "mod_vlan_pcp:8", "mod_vlan_pcp", `bad value "8" for mod_vlan_pcp: out of range 0..7 at column 1`},
		{"mod_tp_src range", "mod_tp_src:65536", "mod_tp_src", `bad value "65536" for mod_tp_src: out of range 0..65535 at column 1`},
		{"push_vlan type", "push_vlan:0x0800", "push_vlan", `bad value "0x0800" for push_vlan: must be 0x8100 or 0x88a8 at column 1`},
		{"mod_dl_src bad", "mod_dl_src:zz", "mod_dl_src", `bad value "zz" for mod_dl_src: not a MAC address at column 1`},
		{"mod_nw_src ipv6", "mod_nw_src:::1", "mod_nw_src", `bad value "::1" for mod_nw_src: not an IPv4 address at column 1`},
		{"set_field no arrow", "set_field:1", "set_field", `set_field wants VALUE->FIELD, got "1" at column 1`},
		{"set_field unknown field", "set_field:1->tun_id", "set_field", `set_field: unknown or unsupported field "tun_id" at column 1`},
		{"set_field dscp range", "set_field:64->ip_dscp", "set_field", `bad value "64" for set_field to ip_dscp: out of range 0..63 at column 1`},
		{"set_field vlan_vid range", "set_field:0x2000->vlan_vid", "set_field", `bad value "0x2000" for set_field to vlan_vid: out of range 0..8191 at column 1`},
		{"set_field nw_tos ecn", "set_field:1->nw_tos", "set_field", `bad value "1" for set_field to nw_tos: the low 2 bits (ECN) must be zero at column 1`},
		{"set_field mac", "set_field:1.2.3.4->eth_dst", "set_field", `bad value "1.2.3.4" for set_field to eth_dst: not a MAC address at column 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseActions(tt.text)
			checkParseError(t, err, tt.field, tt.want)
		})
	}
}

func TestParseActionErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		field string
		want  string
	}{
		{"empty", "", "", `want exactly one action in ""`},
		{"two", "output:p1,output:p2", "", `want exactly one action in "output:p1,output:p2"`},
		{"drop", "drop", "drop", "drop is the empty action list, not an action at column 1"},
		{"bad", "output:", "output", "missing value for output at column 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAction(tt.text)
			checkParseError(t, err, tt.field, tt.want)
		})
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		want  Filter
		field string
		err   string
	}{
		{name: "empty", text: "", want: Filter{Priority: DefaultPriority}},
		{name: "match priority cookie", text: "udp,priority=5,cookie=0x10,table=0",
			want: Filter{Match: wantMatch("", kvIPv4, kvUDP), Priority: 5, HasPriority: true, HasTable: true, Cookie: 0x10, CookieMask: 1<<64 - 1}},
		{name: "cookie mask premasks", text: "cookie=0x1f/0xf0", want: Filter{Priority: DefaultPriority, Cookie: 0x10, CookieMask: 0xf0}},
		{name: "cookie mask bad", text: "cookie=1/x", field: "cookie", err: `bad value "1/x" for cookie: mask not a number at column 1`},
		{name: "actions", text: "udp,actions=drop", field: "actions", err: "actions are not allowed in a filter at column 5"},
		{name: "timeouts", text: "idle_timeout=5", field: "idle_timeout", err: "idle_timeout is not allowed in a filter at column 1"},
		{name: "counters", text: "n_packets=5", field: "n_packets", err: "n_packets is not allowed in a filter at column 1"},
		{name: "prereq", text: "tp_dst=5", field: "tp_dst", err: "tp_dst requires udp or tcp at column 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFilter(tt.text)
			if tt.err != "" {
				checkParseError(t, err, tt.field, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFilterSelects(t *testing.T) {
	flows := map[string]*Flow{}
	for _, s := range []string{
		"priority=10,udp,in_port=p1,tp_dst=53,actions=output:p2",
		"priority=20,udp,actions=output:p2",
		"priority=10,tcp,cookie=0x12,actions=drop",
		"actions=kernel",
	} {
		f, err := ParseFlow(s)
		if err != nil {
			t.Fatal(err)
		}
		flows[s] = f
	}
	tests := []struct {
		name   string
		filter string
		strict bool
		want   []string
	}{
		{"empty selects all", "", false, []string{
			"priority=10,udp,in_port=p1,tp_dst=53,actions=output:p2", "priority=20,udp,actions=output:p2",
			"priority=10,tcp,cookie=0x12,actions=drop", "actions=kernel"}},
		{"udp", "udp", false, []string{"priority=10,udp,in_port=p1,tp_dst=53,actions=output:p2", "priority=20,udp,actions=output:p2"}},
		{"priority ignored when not strict", "udp,priority=99", false, []string{"priority=10,udp,in_port=p1,tp_dst=53,actions=output:p2", "priority=20,udp,actions=output:p2"}},
		{"in_port", "in_port=p1", false, []string{"priority=10,udp,in_port=p1,tp_dst=53,actions=output:p2"}},
		{"cookie", "cookie=0x12", false, []string{"priority=10,tcp,cookie=0x12,actions=drop"}},
		{"cookie mask", "cookie=0x10/0xf0", false, []string{"priority=10,tcp,cookie=0x12,actions=drop"}},
		{"cookie mask zero flows", "cookie=0/0xff", false, []string{
			"priority=10,udp,in_port=p1,tp_dst=53,actions=output:p2", "priority=20,udp,actions=output:p2", "actions=kernel"}},
		{"strict needs priority", "udp", true, nil},
		{"strict", "udp,priority=20", true, []string{"priority=20,udp,actions=output:p2"}},
		{"strict default priority", "", true, []string{"actions=kernel"}},
		{"strict more specific", "udp,in_port=p1,priority=10", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flt, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for _, s := range tt.want {
				want[s] = true
			}
			for s, f := range flows {
				if got := flt.Selects(f, tt.strict); got != want[s] {
					t.Errorf("filter %q (strict %v) selects %q = %v, want %v", tt.filter, tt.strict, s, got, want[s])
				}
			}
		})
	}
}

func TestFlowCheck(t *testing.T) {
	tcpm := wantMatch("", kvIPv4, kvTCP)
	tests := []struct {
		name  string
		f     Flow
		field string
		want  string
	}{
		{"bad match", Flow{Match: wantMatch("", exact(steer.OffTpDst, 0, 1))}, "tp_dst", "tp_dst requires udp or tcp"},
		{"zero action type", Flow{Actions: []Action{{}}}, "action(0)", "action 1 (action(0)): unknown action type"},
		{"bad port", Flow{Actions: []Action{{Type: ActOutput, Port: ""}}}, "output", `action 1 (output:): port name "": empty`},
		{"stray field", Flow{Actions: []Action{{Type: ActDecTTL, Port: "p1"}}, Match: tcpm}, "dec_ttl", "action 1 (dec_ttl): sets fields its type does not use"},
		{"stray value", Flow{Actions: []Action{{Type: ActOutput, Port: "p1", Value: 1}}}, "output", "action 1 (output:p1): sets fields its type does not use"},
		{"ipv6 address", Flow{Actions: []Action{{Type: ActSetNwDst, Addr: mustAddr(t, "::1")}}, Match: tcpm}, "mod_nw_dst", "action 1 (mod_nw_dst:::1): ::1 is not an IPv4 address"},
		{"tos", Flow{Actions: []Action{{Type: ActSetNwTos, Value: 2}}, Match: tcpm}, "mod_nw_tos", "action 1 (mod_nw_tos:2): the low 2 bits (ECN) must be zero"},
		{"tpid", Flow{Actions: []Action{{Type: ActPushVLAN, Value: 0x800}}}, "push_vlan", "action 1 (push_vlan:0x0800): must be 0x8100 or 0x88a8"},
		{"vid", Flow{Actions: []Action{{Type: ActSetVlanVID, Value: 4096}}}, "mod_vlan_vid", "action 1 (mod_vlan_vid:4096): out of range 0..4095"},
		{"pcp", Flow{Actions: []Action{{Type: ActSetVlanPCP, Value: 8}}}, "mod_vlan_pcp", "action 1 (mod_vlan_pcp:8): out of range 0..7"},
		{"kernel not alone", Flow{Actions: []Action{{Type: ActKernel}, {Type: ActInPort}}}, "kernel", "kernel must be the only action"},
		{"prereq", Flow{Actions: []Action{{Type: ActSetTpDst, Value: 1}}}, "mod_tp_dst", "mod_tp_dst requires udp or tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParseError(t, tt.f.Check(), tt.field, tt.want)
		})
	}
}

// TestParseFlowLongInput checks that parsing stays linear: repeated
// shorthands must not make every field compare against all the others.
func TestParseFlowLongInput(t *testing.T) {
	text := strings.Repeat("ip,tcp,", 200000) + "tp_dst=80,actions=" + strings.Repeat("output:p1,", 100000)
	start := time.Now()
	f, err := ParseFlow(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Actions) != 100000 || f.Match != wantMatch("", kvIPv4, kvTCP, exact(steer.OffTpDst, 0, 80)) {
		t.Fatalf("got %d actions, match %s", len(f.Actions), f.Match.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("parsing %d bytes took %v", len(text), d)
	}
}
