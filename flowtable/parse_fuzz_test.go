package flowtable

import (
	"errors"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

var fuzzFlowSeeds = []string{
	"priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1",
	" cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, priority=100,udp,in_port=p0,tp_dst=7999 actions=mod_tp_dst:7998,output:p1",
	"cookie=0x1f,idle_timeout=10,hard_timeout=20,priority=1,actions=drop",
	"tcp,tp_dst=0x1f00/0xff00,tp_src=80,actions=kernel",
	"dl_vlan=10,dl_vlan_pcp=5,dl_src=01:00:00:00:00:00/01:00:00:00:00:00,actions=strip_vlan,p1",
	"dl_vlan=0xffff,actions=push_vlan:0x8100,mod_vlan_vid:5,mod_vlan_pcp:3,output:p2",
	"ip,nw_src=10.0.0.0/8,nw_dst=10.1.2.3/255.0.255.0,nw_tos=184,actions=mod_nw_src:1.2.3.4,mod_nw_tos:4,dec_ttl,in_port",
	"ipv6,ipv6_src=2001:db8::/32,ipv6_dst=::1/ffff::ffff,ip_dscp=46,actions=dec_ttl,output:in_port",
	"arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,arp_op=2,actions=output:p1",
	"icmp,icmp_type=8,icmp_code=0,actions=drop",
	"icmp6,icmp_type=135,actions=kernel",
	"tcp6,tp_dst=443,actions=set_field:00:11:22:33:44:55->eth_src,set_field:7->tcp_dst",
	"udp,actions=set_field:46->ip_dscp,set_field:10.0.0.1->ip_dst,set_field:0x1064->vlan_vid,set_field:3->vlan_pcp",
	"dl_type=0x0800,nw_proto=17,tp_dst=53,actions=drop",
	"tp_dst=80,tcp,actions=output:p1",
	"in_port=pü,actions=drop",
	"tcp,udp,actions=drop",
	"tp_dst=80,actions=drop",
	// OVS syntax: aliases, ports by number and quoted, keywords, load.
	"in_port=1,eth_type=0x0800,ip_proto=6,tcp_dst=80,actions=2,IN_PORT",
	`in_port="7",vlan_tci=0x1000/0x1000,actions=set_field:4101->vlan_vid,output:"LOCAL"`,
	"ipv6,ip_ecn=1,ip_frag=first,actions=load:0x2->NXM_NX_IP_ECN[],mod_nw_tos:8,dec_ttl(1,2)",
	"rarp,arp_op=3,nw_src=10.0.0.0/8,action=Resubmit(2,1)",
	"vlan_vid=0x1000/0x1000,vlan_pcp=3,actions=push_vlan:0x88a8,push_vlan:0x8100,output:3",
	"dl_type=0x05ff,actions=drop",
}

func FuzzParseFlow(f *testing.F) {
	for _, s := range fuzzFlowSeeds {
		f.Add(s)
	}
	stats := &FlowStats{Packets: 1, Bytes: 64, Duration: 1500 * time.Millisecond, IdleAge: time.Second}
	var fp FlowParser // across inputs, as a bulk request parses
	f.Fuzz(func(t *testing.T, text string) {
		fl, err := ParseFlow(text)
		if bl, berr := fp.ParseFlow(text); (err == nil) != (berr == nil) || err != nil && err.Error() != berr.Error() || err == nil && !reflect.DeepEqual(fl, bl) {
			t.Fatalf("FlowParser.ParseFlow(%q) = %+v, %v; ParseFlow gives %+v, %v", text, bl, berr, fl, err)
		}
		if err != nil {
			checkFuzzError(t, text, err)
		} else {
			if err := fl.Check(); err != nil {
				t.Fatalf("ParseFlow(%q) gave a flow that fails Check: %v", text, err)
			}
			s := fl.String()
			g, err := ParseFlow(s)
			if err != nil {
				t.Fatalf("ParseFlow(%q) = %q, which does not parse: %v", text, s, err)
			}
			if !reflect.DeepEqual(fl, g) {
				t.Fatalf("round trip of %q via %q\n got  %+v\n want %+v", text, s, g, fl)
			}
			d := FormatFlow(fl, stats)
			if g, err = ParseFlow(d); err != nil || !reflect.DeepEqual(fl, g) {
				t.Fatalf("dump-flows round trip of %q via %q: %v", text, d, err)
			}
			if g, err = ParseFlowFields(FieldsOf(fl)); err != nil || !reflect.DeepEqual(fl, g) {
				t.Fatalf("structured round trip of %q: %v\n got  %+v\n want %+v", text, err, g, fl)
			}
		}
		flt, err := ParseFilter(text)
		if err != nil {
			checkFuzzError(t, text, err)
			return
		}
		if err := flt.Match.Check(); err != nil {
			t.Fatalf("ParseFilter(%q) gave a match that fails Check: %v", text, err)
		}
		if m, err := ParseMatch(flt.Match.String()); err != nil || m != flt.Match {
			t.Fatalf("filter match round trip of %q via %q: %v", text, flt.Match.String(), err)
		}
	})
}

// checkFuzzError checks what every parse error must be.
func checkFuzzError(t *testing.T, text string, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v for %q is not a *ParseError wrapping ErrInvalid", err, text)
	}
	if pe.Column < 0 || pe.Column > utf8.RuneCountInString(text)+1 || pe.Msg == "" {
		t.Fatalf("error %+v for %q: bad column or empty message", pe, text)
	}
}

func FuzzParseMatchFields(f *testing.F) {
	f.Add("udp", "", "tp_dst", "7999", "in_port", "p0")
	f.Add("dl_type", "0x0800", "nw_proto", "6", "tp_src", "0x1f00/0xff00")
	f.Add("arp", "", "nw_src", "10.0.0.0/8", "arp_op", "1")
	f.Add("ipv6", "", "ipv6_dst", "2001:db8::/ffff::1", "ip_dscp", "46")
	f.Add("icmp6", "", "icmp_type", "135", "icmp_code", "0")
	f.Add("dl_vlan", "0xffff", "dl_src", "01:00:00:00:00:00/01:00:00:00:00:00", "dl_vlan_pcp", "1")
	f.Add("tcp", "", "udp", "", "tp_dst", "70000")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		fields := map[string]string{k1: v1, k2: v2, k3: v3}
		m, err := ParseMatchFields(fields)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || pe.Column != 0 {
				t.Fatalf("error %v for %v is not a *ParseError wrapping ErrInvalid with column 0", err, fields)
			}
			if _, ok := fields[pe.Field]; !ok {
				t.Fatalf("error %v for %v names field %q, not one of the input", err, fields, pe.Field)
			}
			return
		}
		if err := m.Check(); err != nil {
			t.Fatalf("ParseMatchFields(%v) gave a match that fails Check: %v", fields, err)
		}
		if g, err := ParseMatch(m.String()); err != nil || g != m {
			t.Fatalf("text round trip of %v via %q: %v", fields, m.String(), err)
		}
		back := map[string]string{}
		for _, fl := range m.Fields() {
			back[fl.Name] = fl.Value
		}
		if g, err := ParseMatchFields(back); err != nil || g != m {
			t.Fatalf("fields round trip of %v via %v: %v", fields, back, err)
		}
	})
}

func FuzzParseActions(f *testing.F) {
	for _, s := range []string{
		"mod_tp_dst:7998,output:p1", "drop", "", "kernel", "p1 p2", "output:in_port",
		"set_field:00:11:22:33:44:55->eth_dst,set_field:46->ip_dscp,set_field:0x1064->vlan_vid",
		"push_vlan:0x88a8,mod_vlan_vid:4095,mod_vlan_pcp:7,strip_vlan,pop_vlan,dec_ttl",
		"mod_nw_src:1.2.3.4,mod_nw_dst:4.3.2.1,mod_nw_tos:252,mod_dl_src:0:1:2:3:4:5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		acts, err := ParseActions(text)
		if err != nil {
			checkFuzzError(t, text, err)
			return
		}
		for i, a := range acts {
			if msg := actionProblem(&a); msg != "" {
				t.Fatalf("ParseActions(%q): action %d %+v: %s", text, i, a, msg)
			}
			s := FormatAction(a)
			if b, err := ParseAction(s); err != nil || b != a {
				t.Fatalf("action round trip of %+v via %q: %+v, %v", a, s, b, err)
			}
		}
		s := FormatActions(acts)
		if back, err := ParseActions(s); err != nil || !reflect.DeepEqual(back, acts) {
			t.Fatalf("round trip of %q via %q: %+v, %v", text, s, back, err)
		}
	})
}
