package flowtable

import (
	"errors"
	"strings"
	"testing"
)

// The flow syntax of ovs-ofctl as xvs reads it: OXM and NXM names, port
// numbers and keywords, and the strict errors that say what Open vSwitch
// would have done. Expected canonical forms were checked against
// ovs-ofctl 3.1's parse-flow where OVS accepts the flow.

func TestOVSMatchFields(t *testing.T) {
	tests := []struct{ in, want string }{
		{"eth_src=02:00:00:00:00:01", "dl_src=02:00:00:00:00:01"},
		{"eth_dst=01:00:00:00:00:00/01:00:00:00:00:00", "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"},
		{"eth_type=0x0800", "ip"},
		{"eth_type=0x88cc", "dl_type=0x88cc"},
		{"dl_type=0x05ff", "dl_type=0x05ff"},
		{"dl_type=0x8035", "rarp"},
		{"ip,ip_src=10.0.0.0/8", "ip,nw_src=10.0.0.0/8"},
		{"ip,ip_dst=10.0.0.1", "ip,nw_dst=10.0.0.1"},
		{"arp,ip_src=10.0.0.1", "arp,arp_spa=10.0.0.1"},
		{"eth_type=0x0800,ip_proto=6", "tcp"},
		{"ip,ip_proto=47", "ip,nw_proto=47"},
		{"rarp,arp_op=3,nw_src=1.2.3.4", "rarp,arp_spa=1.2.3.4,arp_op=3"},
		{"rarp,arp_tpa=1.2.3.0/24", "rarp,arp_tpa=1.2.3.0/24"},
		{"arp,nw_proto=2", "arp,arp_op=2"},
		{"ip,ip_dscp=46", "ip,nw_tos=184"},
		{"ip,ip_ecn=1", "ip,nw_ecn=1"},
		{"ipv6,nw_ecn=3,nw_tos=4", "ipv6,nw_tos=4,nw_ecn=3"},
		{"ip,ip_frag=no", "ip,nw_frag=no"},
		{"ip,ip_frag=yes", "ip,nw_frag=yes"},
		{"ipv6,nw_frag=first", "ipv6,nw_frag=first"},
		{"ip,nw_frag=later", "ip,nw_frag=later"},
		{"ip,nw_frag=not_later", "ip,nw_frag=not_later"},
		{"tcp,tcp_src=1,tcp_dst=2", "tcp,tp_src=1,tp_dst=2"},
		{"udp6,udp_dst=53", "udp6,tp_dst=53"},
		{"udp,udp_src=0x1f00/0xff00", "udp,tp_src=0x1f00/0xff00"},
		{"icmp,icmpv4_type=8,icmpv4_code=0", "icmp,icmp_type=8,icmp_code=0"},
		{"icmp6,icmpv6_type=135,icmpv6_code=0", "icmp6,icmp_type=135,icmp_code=0"},
		{"icmp6,icmp_type=128", "icmp6,icmp_type=128"},
		{"ipv6,ipv6_src=2001:db8::/32", "ipv6,ipv6_src=2001:db8::/32"},
		{"ipv6,ipv6_dst=2001:db8::/ffff:0:ffff::", "ipv6,ipv6_dst=2001::/ffff:0:ffff::"},
		{"vlan_tci=0", "dl_vlan=0xffff"},
		{"vlan_tci=0x0000", "dl_vlan=0xffff"},
		{"vlan_tci=0x1000/0x1000", "vlan_tci=0x1000/0x1000"},
		{"vlan_tci=0x1005/0x1fff", "dl_vlan=5"},
		{"vlan_tci=0x7005", "dl_vlan=5,dl_vlan_pcp=3"},
		{"vlan_tci=0x0000/0x1000", "vlan_tci=0x0000/0x1000"},
		{"vlan_tci=0x6000/0xe000", "vlan_tci=0x6000/0xe000"},
		{"vlan_tci=0x1005/0x1fff,dl_vlan_pcp=2", "dl_vlan=5,dl_vlan_pcp=2"},
		{"vlan_vid=0x1005", "dl_vlan=5"},
		{"vlan_vid=4101", "dl_vlan=5"},
		{"vlan_vid=0", "dl_vlan=0xffff"},
		{"vlan_vid=0x1000/0x1000", "vlan_tci=0x1000/0x1000"},
		{"vlan_vid=0x1004/0x1ffc", "vlan_tci=0x1004/0x1ffc"},
		{"vlan_pcp=3", "dl_vlan_pcp=3"},
		{"vlan_vid=0x1005,vlan_pcp=3", "dl_vlan=5,dl_vlan_pcp=3"},
		{"in_port=1", "in_port=1"},
		{"in_port=007", "in_port=7"},
		{`in_port="p0"`, "in_port=p0"},
		{`in_port="12"`, `in_port="12"`},
		{`in_port="local"`, `in_port="local"`},
		{"in_port=veth-a.100", "in_port=veth-a.100"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMatch(tt.in)
			if err != nil {
				t.Fatalf("ParseMatch: %v", err)
			}
			if got := m.String(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if err := m.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
			back, err := ParseMatch(tt.want)
			if err != nil || back != m {
				t.Fatalf("canonical form reads back as %v, %v", back, err)
			}
		})
	}
}

func TestOVSMatchErrors(t *testing.T) {
	tests := []struct{ in, field, want string }{
		{"tp_dst=80", "tp_dst", "tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets)"},
		{"ip,icmp_type=3", "icmp_type", "icmp_type requires icmp or icmp6 (Open vSwitch would ignore icmp_type and match more packets)"},
		{"udp,tcp_dst=5", "tcp_dst", "tcp_dst requires tcp (on udp Open vSwitch reads tcp_dst as tp_dst; write tp_dst or udp_dst)"},
		{"tcp6,udp_src=5", "udp_src", "udp_src requires udp (on tcp Open vSwitch reads udp_src as tp_src; write tp_src or tcp_src)"},
		{"ip,tcp_dst=5", "tcp_dst", "tcp_dst requires tcp (Open vSwitch would ignore tcp_dst and match more packets)"},
		{"icmp6,icmpv4_type=1", "icmpv4_type", "icmpv4_type requires icmp (Open vSwitch would ignore"},
		{"ip,ipv6_src=::1", "ipv6_src", "ipv6_src requires ipv6"},
		{"ip,nw_tos=1", "nw_tos", "the low 2 bits (ECN) must be zero; match them with nw_ecn (Open vSwitch would clear them: nw_tos=0)"},
		{"ip,nw_tos=0xfd", "nw_tos", "(Open vSwitch would clear them: nw_tos=252)"},
		{"dl_vlan_pcp=8", "dl_vlan_pcp", "out of range 0..7 (Open vSwitch would keep the low 3 bits: 0)"},
		{"vlan_pcp=9", "vlan_pcp", "out of range 0..7 (Open vSwitch would keep the low 3 bits: 1)"},
		{"dl_vlan=4096", "dl_vlan", "out of range 0..4095 (Open vSwitch would keep the low 12 bits: dl_vlan=0)"},
		{"ip,ip_dscp=64", "ip_dscp", "out of range 0..63 (Open vSwitch would keep the low 6 bits: 0)"},
		{"ip,nw_ecn=4", "nw_ecn", "out of range 0..3 (Open vSwitch would keep the low 2 bits: 0)"},
		{"arp,arp_op=256", "arp_op", "an opcode above 255 reads as 0 (Open vSwitch would match arp_op=0, the low byte)"},
		{"tcp,tp_dst=80,tp_dst=81", "tp_dst", "tp_dst given twice (Open vSwitch would use the last one)"},
		{"tcp,tcp_dst=80,tp_dst=81", "tp_dst", "tp_dst conflicts with tcp_dst (Open vSwitch would use the last one)"},
		{"ip,nw_src=1.1.1.1,ip_src=2.2.2.2", "ip_src", "ip_src conflicts with nw_src (Open vSwitch would use the last one)"},
		{"tcp,udp", "udp", "udp conflicts with tcp (Open vSwitch would use the last one)"},
		{"dl_vlan=5,vlan_tci=0x2006", "vlan_tci", "0x2006 has VID or PCP bits without the 0x1000 present bit: only an untagged frame lacks the bit, and its vlan_tci is 0 (Open vSwitch would match untagged frames: vlan_tci=0x0000)"},
		{"dl_vlan=5,vlan_tci=0x1006", "vlan_tci", "vlan_tci=0x1006 conflicts with dl_vlan=5"},
		{"vlan_vid=5", "vlan_vid", "VID 5 without the 0x1000 present bit: write vlan_vid=0x1005 (or dl_vlan=5) for frames tagged with VID 5, vlan_vid=0 for untagged frames (Open vSwitch would match untagged frames)"},
		{"vlan_vid=0x2000", "vlan_vid", "out of range"},
		{"vlan_tci=0x0005", "vlan_tci", "has VID or PCP bits without the 0x1000 present bit"},
		{"ip,nw_frag=maybe", "nw_frag", "want no, yes, first, later or not_later"},
		{"nw_frag=no", "nw_frag", "nw_frag requires ip or ipv6"},
		{"arp,nw_ecn=1", "nw_ecn", "nw_ecn requires ip or ipv6"},
		{"dl_type=0x0100", "dl_type", "an 802.3 length, which no frame's dl_type is"},
		{"icmp,icmp_type=256", "icmp_type", "out of range 0..255"},
		{"in_port=LOCAL", "in_port", `xvs has no LOCAL port: the kernel action hands a packet to the host stack (a port named LOCAL is written "LOCAL")`},
		{"in_port=in_port", "in_port", "IN_PORT is the input port, not a port to name here"},
		{"in_port=normal", "in_port", "xvs has no normal switching"},
		{"in_port=0", "in_port", "ofport 0 out of range 1..255"},
		{"in_port=256", "in_port", "ofport 256 out of range 1..255"},
		{"in_port=99999999999999999999", "in_port", "out of range 1..255"},
		{`in_port=a"b`, "in_port", `a quoted name is written "NAME"`},
		{`in_port=""`, "in_port", "empty"},
		{`in_port="a/b"`, "in_port", "contains '/'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseMatch(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want a ParseError", err)
			}
			if pe.Field != tt.field || !strings.Contains(pe.Msg, tt.want) {
				t.Fatalf("got field %q, %q; want field %q and %q", pe.Field, pe.Msg, tt.field, tt.want)
			}
		})
	}
}

func TestOVSActions(t *testing.T) {
	tests := []struct{ in, want string }{
		{"actions=OUTPUT:1", "actions=output:1"},
		{"actions=2,3", "actions=output:2,output:3"},
		{"action=output:2", "actions=output:2"},
		{"actions=IN_PORT", "actions=in_port"},
		{"actions=output:IN_PORT", "actions=in_port"},
		{"actions=output:in_port", "actions=in_port"},
		{`actions="7"`, `actions=output:"7"`},
		{`actions=output:"p1",output:"all"`, `actions=output:p1,output:"all"`},
		{"actions=Drop", "actions=drop"},
		{"actions=", "actions=drop"},
		{"actions=resubmit(1,2)", "actions=resubmit(1,2)"},
		{"actions=resubmit(IN_PORT,2)", "actions=resubmit(,2)"},
		{"actions=Resubmit:3", "actions=resubmit:3"},
		{"ipv6,actions=mod_nw_tos:8,mod_nw_ecn:1", "ipv6,actions=mod_nw_tos:8,mod_nw_ecn:1"},
		{"ip,actions=MOD_NW_ECN:3", "ip,actions=mod_nw_ecn:3"},
		{"ip,actions=set_field:46->ip_dscp", "ip,actions=mod_nw_tos:184"},
		{"ipv6,actions=set_field:2->ip_dscp", "ipv6,actions=mod_nw_tos:8"},
		{"ipv6,actions=set_field:2->ip_ecn,set_field:1->nw_ecn", "ipv6,actions=mod_nw_ecn:2,mod_nw_ecn:1"},
		{"ip,actions=load:0x1->NXM_NX_IP_ECN[]", "ip,actions=mod_nw_ecn:1"},
		{"actions=load:0x020000000001->NXM_OF_ETH_SRC[]", "actions=mod_dl_src:02:00:00:00:00:01"},
		{"ip,actions=load:0x0a000001->NXM_OF_IP_DST[]", "ip,actions=mod_nw_dst:10.0.0.1"},
		{"tcp,actions=load:443->NXM_OF_TCP_DST[]", "tcp,actions=mod_tp_dst:443"},
		{"ip,actions=set_field:10.0.0.9->OXM_OF_IPV4_SRC", "ip,actions=mod_nw_src:10.0.0.9"},
		{"ip,actions=dec_ttl(1,2)", "ip,actions=dec_ttl"},
		{"ip,actions=dec_ttl()", "ip,actions=dec_ttl"},
		{"ip,actions=DEC_TTL", "ip,actions=dec_ttl"},
		{"dl_vlan=5,actions=set_field:4101->vlan_vid", "dl_vlan=5,actions=mod_vlan_vid:5"},
		{"dl_vlan=5,actions=set_field:5->vlan_vid", "dl_vlan=5,actions=mod_vlan_vid:5"},
		{"vlan_tci=0x1000/0x1000,actions=set_field:3->vlan_pcp", "vlan_tci=0x1000/0x1000,actions=mod_vlan_pcp:3"},
		{"actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1", "actions=push_vlan:0x8100,mod_vlan_vid:100,output:1"},
		{"actions=mod_vlan_vid:5,set_field:3->vlan_pcp", "actions=mod_vlan_vid:5,mod_vlan_pcp:3"},
		{"actions=strip_vlan", "actions=strip_vlan"},
		{"actions=pop_vlan,POP_VLAN", "actions=strip_vlan,strip_vlan"},
		{"actions=push_vlan:0x88a8,push_vlan:0x8100", "actions=push_vlan:0x88a8,push_vlan:0x8100"},
		{"dl_vlan=1,actions=strip_vlan,push_vlan:0x8100,push_vlan:0x8100", "dl_vlan=1,actions=strip_vlan,push_vlan:0x8100,push_vlan:0x8100"},
		{"tcp,actions=set_field:80->tp_dst", "tcp,actions=mod_tp_dst:80"},
		{"udp,actions=set_field:53->udp_dst,mod_tp_src:5", "udp,actions=mod_tp_dst:53,mod_tp_src:5"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFlow(tt.in)
			if err != nil {
				t.Fatalf("ParseFlow: %v", err)
			}
			got := strings.TrimPrefix(f.String(), "priority=32768,")
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if err := f.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

func TestOVSActionErrors(t *testing.T) {
	tests := []struct{ in, field, want string }{
		{"udp,actions=set_field:5->tp_src", "set_field", "set_field to tp_src requires tcp (Open vSwitch's set_field tp_src and tp_dst are tcp_src and tcp_dst, refused on udp: write udp_src, udp_dst or mod_tp_*)"},
		{"udp,actions=set_field:5->tcp_dst", "set_field", "set_field to tcp_dst requires tcp (Open vSwitch refuses it too)"},
		{"actions=set_field:1.2.3.4->ip_dst", "set_field", "set_field to ip_dst requires ip (Open vSwitch refuses it too)"},
		{"actions=mod_nw_src:1.2.3.4", "mod_nw_src", "mod_nw_src requires ip (Open vSwitch would take it and leave packets without that header as they are)"},
		{"arp,actions=mod_nw_ecn:1", "mod_nw_ecn", "mod_nw_ecn requires ip or ipv6"},
		{"ip,actions=mod_nw_ecn:4", "mod_nw_ecn", "out of range 0..3"},
		{"actions=set_field:5->vlan_vid", "set_field", "set_field to vlan_vid needs a VLAN tag: match one (dl_vlan=VID, vlan_tci=0x1000/0x1000) or push_vlan first; mod_vlan_vid pushes one onto an untagged frame (Open vSwitch refuses it too)"},
		{"actions=set_field:4101->vlan_vid", "set_field", "needs a VLAN tag"},
		{"dl_vlan=0xffff,actions=set_field:3->vlan_pcp", "set_field", "set_field to vlan_pcp needs a VLAN tag"},
		{"dl_vlan=5,actions=strip_vlan,set_field:3->vlan_pcp", "set_field", "needs a VLAN tag"},
		{"vlan_tci=0x0000/0x1000,actions=set_field:3->vlan_pcp", "set_field", "needs a VLAN tag"},
		{"actions=push_vlan:0x8100,push_vlan:0x8100,push_vlan:0x8100", "push_vlan", "push_vlan:0x8100 would push a third VLAN tag: xvs parses two, and Open vSwitch refuses it too (OFPBAC_BAD_TAG)"},
		{"dl_vlan=5,actions=push_vlan:0x8100,push_vlan:0x8100", "push_vlan", "third VLAN tag"},
		{"actions=mod_vlan_vid:1,push_vlan:0x8100,push_vlan:0x8100", "push_vlan", "third VLAN tag"},
		{"actions=NORMAL", "NORMAL", `unsupported action "NORMAL": xvs has no normal switching (MAC learning)`},
		{"actions=flood", "flood", "xvs has no flooding"},
		{"actions=output:LOCAL", "output", `bad value "LOCAL" for output: xvs has no LOCAL port: the kernel action hands a packet to the host stack (a port named LOCAL is written "LOCAL")`},
		{"actions=Controller", "Controller", "xvs has no controller"},
		{"actions=controller(reason=no_match)", "controller", `unsupported action "controller"`},
		{"actions=output:all", "output", "xvs has no all-ports output"},
		{"actions=TABLE", "TABLE", "TABLE is only for packet-outs"},
		{"actions=output:0", "output", "ofport 0 out of range 1..255"},
		{"actions=resubmit(LOCAL,1)", "resubmit", "port xvs has no LOCAL port"},
		{"ip,actions=load:1->NXM_NX_IP_ECN[0..1]", "load", "only a whole field (FIELD[]) can be loaded"},
		{"ip,actions=load:1->NXM_NX_IP_TTL[]", "load", `load: unknown or unsupported field "NXM_NX_IP_TTL"`},
		{"actions=load:0x1000000000000->NXM_OF_ETH_SRC[]", "load", "out of range"},
		{"ip,actions=set_field:1/1->ip_ecn", "set_field", "a masked value is not supported"},
		{"ip,actions=dec_ttl(x)", "dec_ttl", `controller id "x": not a number`},
		{"ip,actions=mod_nw_ttl:5", "mod_nw_ttl", `unsupported action "mod_nw_ttl"`},
		{"actions=set_field", "set_field", "missing value for set_field"},
		{"actions=LOAD", "LOAD", "missing value for LOAD"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseFlow(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a ParseError", err)
			}
			if pe.Field != tt.field || !strings.Contains(pe.Msg, tt.want) {
				t.Fatalf("got field %q, %q; want field %q and %q", pe.Field, pe.Msg, tt.field, tt.want)
			}
		})
	}
}

// Buckets follow the VLAN tags too: a bucket starts with what the frame
// may have, no tag guaranteed.
func TestOVSBucketVLAN(t *testing.T) {
	tests := []struct{ in, err string }{
		{"group_id=1,type=all,bucket=push_vlan:0x8100,set_field:4100->vlan_vid,output:1", ""},
		{"group_id=1,type=all,bucket=set_field:4100->vlan_vid,output:1", "needs a VLAN tag"},
		{"group_id=1,type=all,bucket=watch_port:2,output:1", ""},
		{`group_id=1,type=ff,bucket=watch_port:"2",output:"3"`, ""},
		{"group_id=1,type=ff,bucket=watch_port:LOCAL,output:1", "xvs has no LOCAL port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g, err := ParseGroup(tt.in)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if g2, err := ParseGroup(g.String()); err != nil || g2.String() != g.String() {
					t.Fatalf("%q reads back as %v, %v", g.String(), g2, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
}

func TestPortRefs(t *testing.T) {
	for _, tt := range []struct {
		ref    string
		name   string
		ofport uint32
	}{
		{"p0", "p0", 0},
		{"2", "", 2},
		{`"2"`, "2", 0},
		{`"LOCAL"`, "LOCAL", 0},
		{"veth-a", "veth-a", 0},
		{"0", "", 0},     // not a valid reference
		{"LOCAL", "", 0}, // a reserved name, not a port
		{"", "", 0},
	} {
		name, n := ParsePortRef(tt.ref)
		if name != tt.name || n != tt.ofport {
			t.Errorf("ParsePortRef(%q) = %q, %d; want %q, %d", tt.ref, name, n, tt.name, tt.ofport)
		}
	}
	for name, want := range map[string]string{"p0": "p0", "12": `"12"`, "local": `"local"`, "In_Port": `"In_Port"`, "a1": "a1", "1a": "1a"} {
		if got := PortRefOf(name); got != want {
			t.Errorf("PortRefOf(%q) = %q, want %q", name, got, want)
		}
	}
	if err := CheckPortName(`a"b`); err == nil {
		t.Error(`CheckPortName accepts a name with '"'`)
	}
}

func TestBindPortNumbers(t *testing.T) {
	names := PortNamer(func(n uint32) (string, bool) {
		name, ok := map[uint32]string{1: "p1", 2: "12", 3: "LOCAL"}[n]
		return name, ok
	})
	f, err := ParseFlow("in_port=1,actions=output:2,resubmit(3,1),output:p1,in_port")
	if err != nil {
		t.Fatal(err)
	}
	if field, err := f.BindPortNumbers(names); err != nil {
		t.Fatalf("bind: %s %v", field, err)
	}
	if got, want := f.String(), `priority=32768,in_port=p1,actions=output:"12",resubmit("LOCAL",1),output:p1,in_port`; got != want {
		t.Fatalf("bound flow %q, want %q", got, want)
	}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ text, field string }{
		{"in_port=9,actions=drop", "in_port"},
		{"actions=output:1,output:9", "output"},
		{"actions=resubmit(9,1)", "resubmit"},
	} {
		f, _ := ParseFlow(tt.text)
		field, err := f.BindPortNumbers(names)
		if field != tt.field || !errors.Is(err, ErrNoSuchPort) || !strings.Contains(err.Error(), "no port has ofport 9") {
			t.Errorf("%s: field %q err %v", tt.text, field, err)
		}
	}

	g, _ := ParseGroup("group_id=7,type=ff,bucket=watch_port:1,output:2,bucket=watch_port:3,output:1")
	if _, err := g.BindPortNumbers(names); err != nil {
		t.Fatal(err)
	}
	if got, want := g.String(), `group_id=7,type=fast_failover,bucket=watch_port:p1,actions=output:"12",bucket=watch_port:"LOCAL",actions=output:p1`; got != want {
		t.Fatalf("bound group %q, want %q", got, want)
	}
	g, _ = ParseGroup("group_id=7,type=ff,bucket=watch_port:9,output:2")
	if field, err := g.BindPortNumbers(names); field != "watch_port" || !errors.Is(err, ErrNoSuchPort) {
		t.Fatalf("unknown watch port: %q %v", field, err)
	}

	flt, _ := ParseFilter("in_port=2")
	if !flt.Match.BindPortNumbers(names) || flt.Match.InPort != `"12"` {
		t.Fatalf("filter bound to %q", flt.Match.InPort)
	}
	flt, _ = ParseFilter("in_port=9")
	if flt.Match.BindPortNumbers(names) || flt.Match.InPort != "9" {
		t.Fatalf("unknown filter port: %q", flt.Match.InPort)
	}

	bad, _ := ParseFlow("actions=output:9")
	c := Change{Add: []*Flow{f, bad}}
	var ie *ItemError
	if err := c.BindPortNumbers(names); !errors.As(err, &ie) || ie.Index != 1 || !errors.Is(err, ErrNoSuchPort) {
		t.Fatalf("change: %v", err)
	}

	// A number nobody bound names no port: the table does not guess.
	unbound, _ := ParseFlow("in_port=1,actions=drop")
	if _, err := NewTable().Apply(Change{Add: []*Flow{unbound}}, dpPortMap(map[string]uint32{"p1": 1, "1": 1})); !errors.Is(err, ErrNoSuchPort) {
		t.Fatalf("unbound number installed: %v", err)
	}
	quoted, _ := ParseFlow(`in_port="1",actions=drop`)
	if _, err := NewTable().Apply(Change{Add: []*Flow{quoted}}, dpPortMap(map[string]uint32{"1": 4})); err != nil {
		t.Fatalf("port named 1: %v", err)
	}
}
