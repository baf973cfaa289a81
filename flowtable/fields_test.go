package flowtable

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// kv is one piece of an expected match: value and mask bytes at off.
type kv struct {
	off       int
	val, mask []byte
}

func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func ones(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

func exact(off int, val ...byte) kv { return kv{off, val, ones(len(val))} }

var (
	kvIPv4  = exact(steer.OffDlType, 0x08, 0x00)
	kvIPv6  = exact(steer.OffDlType, 0x86, 0xdd)
	kvARP   = exact(steer.OffDlType, 0x08, 0x06)
	kvTCP   = exact(steer.OffNwProto, 6)
	kvUDP   = exact(steer.OffNwProto, 17)
	kvICMP  = exact(steer.OffNwProto, 1)
	kvICMP6 = exact(steer.OffNwProto, 58)
)

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantMatch(inPort string, kvs ...kv) Match {
	m := Match{InPort: inPort}
	for _, p := range kvs {
		copy(m.Key[p.off:], p.val)
		copy(m.Mask[p.off:], p.mask)
	}
	return m
}

func TestParseMatchFields(t *testing.T) {
	v6 := func(s string) []byte { b := mustAddr(t, s).As16(); return b[:] }
	tests := []struct {
		name string
		text string
		want Match
	}{
		{"empty", "", Match{}},
		{"separators only", " ,\t,\n", Match{}},
		{"in_port", "in_port=p0", wantMatch("p0")},
		{"in_port 15 bytes", "in_port=0123456789abcde", wantMatch("0123456789abcde")},
		{"dl_src", "dl_src=00:11:22:33:44:55", wantMatch("", exact(steer.OffDlSrc, 0, 0x11, 0x22, 0x33, 0x44, 0x55))},
		{"dl_dst short digits upper", "dl_dst=A:b:C:d:E:f", wantMatch("", exact(steer.OffDlDst, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf))},
		{"dl_dst multicast mask", "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
			wantMatch("", kv{steer.OffDlDst, []byte{1, 0, 0, 0, 0, 0}, []byte{1, 0, 0, 0, 0, 0}})},
		{"dl_src mask premasks", "dl_src=ff:ff:ff:ff:ff:ff/ff:ff:ff:00:00:00",
			wantMatch("", kv{steer.OffDlSrc, []byte{0xff, 0xff, 0xff, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0, 0, 0}})},
		{"dl_type hex", "dl_type=0x88cc", wantMatch("", exact(steer.OffDlType, 0x88, 0xcc))},
		{"dl_type decimal", "dl_type=2048", wantMatch("", kvIPv4)},
		{"dl_type leading zero is decimal", "dl_type=02048", wantMatch("", kvIPv4)},
		{"dl_vlan", "dl_vlan=10", wantMatch("", kv{steer.OffVlanTCI, u16(0x100a), u16(0x1fff)})},
		{"dl_vlan 0", "dl_vlan=0", wantMatch("", kv{steer.OffVlanTCI, u16(0x1000), u16(0x1fff)})},
		{"dl_vlan 4095", "dl_vlan=4095", wantMatch("", kv{steer.OffVlanTCI, u16(0x1fff), u16(0x1fff)})},
		{"dl_vlan untagged", "dl_vlan=0xffff", wantMatch("", kv{steer.OffVlanTCI, u16(0), u16(0xffff)})},
		{"dl_vlan untagged decimal", "dl_vlan=65535", wantMatch("", kv{steer.OffVlanTCI, u16(0), u16(0xffff)})},
		{"dl_vlan_pcp", "dl_vlan_pcp=5", wantMatch("", kv{steer.OffVlanTCI, u16(0xb000), u16(0xf000)})},
		{"dl_vlan and pcp", "dl_vlan_pcp=5,dl_vlan=10", wantMatch("", kv{steer.OffVlanTCI, u16(0xb00a), u16(0xffff)})},
		{"ip", "ip", wantMatch("", kvIPv4)},
		{"ipv6", "ipv6", wantMatch("", kvIPv6)},
		{"arp", "arp", wantMatch("", kvARP)},
		{"tcp", "tcp", wantMatch("", kvIPv4, kvTCP)},
		{"udp", "udp", wantMatch("", kvIPv4, kvUDP)},
		{"icmp", "icmp", wantMatch("", kvIPv4, kvICMP)},
		{"tcp6", "tcp6", wantMatch("", kvIPv6, kvTCP)},
		{"udp6", "udp6", wantMatch("", kvIPv6, kvUDP)},
		{"icmp6", "icmp6", wantMatch("", kvIPv6, kvICMP6)},
		{"ip and tcp agree", "ip,tcp", wantMatch("", kvIPv4, kvTCP)},
		{"shorthand twice", "udp,udp", wantMatch("", kvIPv4, kvUDP)},
		{"dl_type and nw_proto are udp", "dl_type=0x0800,nw_proto=17", wantMatch("", kvIPv4, kvUDP)},
		{"tcp and nw_proto agree", "nw_proto=6,tcp", wantMatch("", kvIPv4, kvTCP)},
		{"nw_src", "ip,nw_src=10.0.0.1", wantMatch("", kvIPv4, exact(steer.OffNwSrc, 10, 0, 0, 1))},
		{"nw_dst cidr premasks", "ip,nw_dst=10.1.2.3/8",
			wantMatch("", kvIPv4, kv{steer.OffNwDst, []byte{10, 0, 0, 0}, []byte{0xff, 0, 0, 0}})},
		{"nw_dst netmask", "ip,nw_dst=10.1.2.3/255.0.255.0",
			wantMatch("", kvIPv4, kv{steer.OffNwDst, []byte{10, 0, 2, 0}, []byte{0xff, 0, 0xff, 0}})},
		{"nw_src /0 matches nothing", "ip,nw_src=1.2.3.4/0", wantMatch("", kvIPv4)},
		{"nw_src with arp is arp_spa", "arp,nw_src=10.0.0.1", wantMatch("", kvARP, exact(steer.OffNwSrc, 10, 0, 0, 1))},
		{"nw_proto", "ip,nw_proto=89", wantMatch("", kvIPv4, exact(steer.OffNwProto, 89))},
		{"nw_proto ipv6", "ipv6,nw_proto=0", wantMatch("", kvIPv6, exact(steer.OffNwProto, 0))},
		{"nw_proto with arp is the opcode", "arp,nw_proto=2", wantMatch("", kvARP, exact(steer.OffNwProto, 2))},
		{"nw_tos", "ip,nw_tos=184", wantMatch("", kvIPv4, kv{steer.OffNwTos, []byte{184}, []byte{0xfc}})},
		{"nw_tos ipv6", "ipv6,nw_tos=0", wantMatch("", kvIPv6, kv{steer.OffNwTos, []byte{0}, []byte{0xfc}})},
		{"ip_dscp", "ip,ip_dscp=46", wantMatch("", kvIPv4, kv{steer.OffNwTos, []byte{184}, []byte{0xfc}})},
		{"ipv6_src", "ipv6,ipv6_src=2001:db8::1", wantMatch("", kvIPv6, kv{steer.OffNwSrc, v6("2001:db8::1"), ones(16)})},
		{"ipv6_dst prefix", "ipv6,ipv6_dst=2001:db8:ff::1/32",
			wantMatch("", kvIPv6, kv{steer.OffNwDst, v6("2001:db8::"), v6("ffff:ffff::")})},
		{"ipv6_src mask", "ipv6,ipv6_src=2001:db8::1/ffff::ff",
			wantMatch("", kvIPv6, kv{steer.OffNwSrc, v6("2001::1"), v6("ffff::ff")})},
		{"ipv6_src v4-mapped", "ipv6,ipv6_src=::ffff:1.2.3.4", wantMatch("", kvIPv6, kv{steer.OffNwSrc, v6("::ffff:1.2.3.4"), ones(16)})},
		{"arp fields", "arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,arp_op=2",
			wantMatch("", kvARP, exact(steer.OffNwSrc, 10, 0, 0, 1),
				kv{steer.OffNwDst, []byte{10, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0}}, exact(steer.OffNwProto, 2))},
		{"tp_dst", "tcp,tp_dst=80", wantMatch("", kvIPv4, kvTCP, exact(steer.OffTpDst, 0, 80))},
		{"tp_src hex mask premasks", "udp,tp_src=0x1f3f/0xff00", wantMatch("", kvIPv4, kvUDP, kv{steer.OffTpSrc, u16(0x1f00), u16(0xff00)})},
		{"tp_dst full mask", "tcp6,tp_dst=443/0xffff", wantMatch("", kvIPv6, kvTCP, exact(steer.OffTpDst, 1, 187))},
		{"tp_dst zero mask needs nothing", "tp_dst=0/0", Match{}},
		{"order independent", "tp_dst=80,tcp", wantMatch("", kvIPv4, kvTCP, exact(steer.OffTpDst, 0, 80))},
		{"whitespace separates", "udp  tp_dst=53\t in_port=p1", wantMatch("p1", kvIPv4, kvUDP, exact(steer.OffTpDst, 0, 53))},
		{"icmp type and code", "icmp,icmp_type=8,icmp_code=0",
			wantMatch("", kvIPv4, kvICMP, exact(steer.OffTpSrc, 0, 8), exact(steer.OffTpDst, 0, 0))},
		{"icmp6 type", "icmp6,icmp_type=135", wantMatch("", kvIPv6, kvICMP6, exact(steer.OffTpSrc, 0, 135))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMatch(tt.text)
			if err != nil {
				t.Fatalf("ParseMatch(%q): %v", tt.text, err)
			}
			if m != tt.want {
				t.Fatalf("ParseMatch(%q):\n got  %x / %x %q\n want %x / %x %q", tt.text, m.Key, m.Mask, m.InPort, tt.want.Key, tt.want.Mask, tt.want.InPort)
			}
			if err := m.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

func TestParseMatchErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		field string
		want  string
	}{
		{"unknown field", "tp_dsst=1", "tp_dsst", `unknown field "tp_dsst" at column 1`},
		{"unknown field column", "udp,tp_dsst=1", "tp_dsst", `unknown field "tp_dsst" at column 5`},
		{"column counts runes", "in_port=pü,bad=1", "bad", `unknown field "bad" at column 12`},
		{"empty key", "=5", "", `unknown field "" at column 1`},
		{"tp_dst needs l4", "tp_dst=80", "tp_dst", "tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets) at column 1"},
		{"tp_src with ip", "ip,tp_src=80", "tp_src", "tp_src requires udp or tcp (Open vSwitch would ignore tp_src and match more packets) at column 4"},
		{"tp_dst with icmp", "icmp,tp_dst=1", "tp_dst", "tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets) at column 6"},
		{"tp_dst range", "tcp,tp_dst=70000", "tp_dst", `bad value "70000" for tp_dst: out of range 0..65535 at column 5`},
		{"tp_dst huge", "tcp,tp_dst=99999999999999999999999", "tp_dst", `bad value "99999999999999999999999" for tp_dst: out of range 0..65535 at column 5`},
		{"tp_dst not a number", "tcp,tp_dst=http", "tp_dst", `bad value "http" for tp_dst: not a number at column 5`},
		{"tp_dst negative", "tcp,tp_dst=-1", "tp_dst", `bad value "-1" for tp_dst: not a number at column 5`},
		{"tp_dst mask range", "tcp,tp_dst=1/0x10000", "tp_dst", `bad value "1/0x10000" for tp_dst: mask out of range 0..65535 at column 5`},
		{"tp_dst no value", "tcp,tp_dst", "tp_dst", "missing value for tp_dst at column 5"},
		{"tp_dst empty value", "tcp,tp_dst=", "tp_dst", "missing value for tp_dst at column 5"},
		{"shorthand with value", "udp=1", "udp", "udp takes no value at column 1"},
		{"tcp and udp", "tcp,udp", "udp", "udp conflicts with tcp (Open vSwitch would use the last one) at column 5"},
		{"ip and arp", "ip,arp", "arp", "arp conflicts with ip (Open vSwitch would use the last one) at column 4"},
		{"tcp and nw_proto", "tcp,nw_proto=17", "nw_proto", "nw_proto=17 conflicts with tcp (Open vSwitch would use the last one) at column 5"},
		{"dl_type and ip", "ip,dl_type=0x86dd", "dl_type", "dl_type=0x86dd conflicts with ip (Open vSwitch would use the last one) at column 4"},
		{"tp_dst twice", "tcp,tp_dst=1,tp_dst=2", "tp_dst", "tp_dst given twice (Open vSwitch would use the last one) at column 14"},
		{"tp_dst twice same value", "tcp,tp_dst=1,tp_dst=1", "tp_dst", "tp_dst given twice (Open vSwitch would use the last one) at column 14"},
		{"in_port twice", "in_port=a,in_port=a", "in_port", "in_port given twice (Open vSwitch would use the last one) at column 11"},
		{"nw_src and arp_spa", "arp,nw_src=1.1.1.1,arp_spa=1.1.1.1", "arp_spa", "arp_spa conflicts with nw_src (Open vSwitch would use the last one) at column 20"},
		{"nw_tos and ip_dscp", "ip,nw_tos=4,ip_dscp=1", "ip_dscp", "ip_dscp conflicts with nw_tos (Open vSwitch would use the last one) at column 13"},
		{"icmp_type and tp_src", "icmp,icmp_type=1,tp_src=1", "tp_src", "tp_src conflicts with icmp_type (Open vSwitch would use the last one) at column 18"},
		{"untagged and pcp", "dl_vlan=0xffff,dl_vlan_pcp=1", "dl_vlan_pcp", "dl_vlan_pcp=1 conflicts with dl_vlan=0xffff (Open vSwitch would use the last one) at column 16"},
		{"dl_vlan range", "dl_vlan=4096", "dl_vlan", `bad value "4096" for dl_vlan: out of range 0..4095 (Open vSwitch would keep the low 12 bits: dl_vlan=0) (or 0xffff for no VLAN) at column 1`},
		{"dl_vlan_pcp range", "dl_vlan_pcp=8", "dl_vlan_pcp", `bad value "8" for dl_vlan_pcp: out of range 0..7 (Open vSwitch would keep the low 3 bits: 0) at column 1`},
		{"dl_type range", "dl_type=0x10000", "dl_type", `bad value "0x10000" for dl_type: out of range 0..65535 at column 1`},
		{"dl_type bare 0x", "dl_type=0x", "dl_type", `bad value "0x" for dl_type: not a number at column 1`},
		{"dl_src short", "dl_src=00:11:22:33:44", "dl_src", `bad value "00:11:22:33:44" for dl_src: not a MAC address at column 1`},
		{"dl_src long octet", "dl_src=000:11:22:33:44:55", "dl_src", `bad value "000:11:22:33:44:55" for dl_src: not a MAC address at column 1`},
		{"dl_src dashes", "dl_src=00-11-22-33-44-55", "dl_src", `bad value "00-11-22-33-44-55" for dl_src: not a MAC address at column 1`},
		{"dl_dst bad mask", "dl_dst=00:11:22:33:44:55/ff", "dl_dst", `bad value "00:11:22:33:44:55/ff" for dl_dst: not a MAC mask at column 1`},
		{"nw_src needs ip", "nw_src=1.2.3.4", "nw_src", "nw_src requires ip, arp or rarp (Open vSwitch would ignore nw_src and match more packets) at column 1"},
		{"nw_dst with ipv6", "ipv6,nw_dst=1.2.3.4", "nw_dst", "nw_dst requires ip, arp or rarp (Open vSwitch would ignore nw_dst and match more packets) at column 6"},
		{"nw_src prefix range", "ip,nw_src=1.2.3.4/33", "nw_src", `bad value "1.2.3.4/33" for nw_src: prefix length out of range 0..32 at column 4`},
		{"nw_src bad address", "ip,nw_src=1.2.3", "nw_src", `bad value "1.2.3" for nw_src: not an IPv4 address at column 4`},
		{"nw_src ipv6 address", "ip,nw_src=::1", "nw_src", `bad value "::1" for nw_src: not an IPv4 address at column 4`},
		{"nw_src bad mask", "ip,nw_src=1.2.3.4/255.0.0.256", "nw_src", `bad value "1.2.3.4/255.0.0.256" for nw_src: not an IPv4 mask at column 4`},
		{"nw_src empty mask", "ip,nw_src=1.2.3.4/", "nw_src", `bad value "1.2.3.4/" for nw_src: not an IPv4 mask at column 4`},
		{"ipv6_src needs ipv6", "ip,ipv6_src=::1", "ipv6_src", "ipv6_src requires ipv6 (Open vSwitch would ignore ipv6_src and match more packets) at column 4"},
		{"ipv6_src ipv4 address", "ipv6,ipv6_src=1.2.3.4", "ipv6_src", `bad value "1.2.3.4" for ipv6_src: not an IPv6 address at column 6`},
		{"ipv6_src zone", "ipv6,ipv6_src=fe80::1%eth0", "ipv6_src", `bad value "fe80::1%eth0" for ipv6_src: not an IPv6 address at column 6`},
		{"ipv6_dst prefix range", "ipv6,ipv6_dst=::/129", "ipv6_dst", `bad value "::/129" for ipv6_dst: prefix length out of range 0..128 at column 6`},
		{"nw_tos ecn", "ip,nw_tos=3", "nw_tos", `bad value "3" for nw_tos: the low 2 bits (ECN) must be zero; match them with nw_ecn (Open vSwitch would clear them: nw_tos=0) at column 4`},
		{"nw_tos range", "ip,nw_tos=256", "nw_tos", `bad value "256" for nw_tos: out of range 0..255 at column 4`},
		{"nw_tos needs ip", "arp,nw_tos=4", "nw_tos", "nw_tos requires ip or ipv6 (Open vSwitch would ignore nw_tos and match more packets) at column 5"},
		{"ip_dscp range", "ip,ip_dscp=64", "ip_dscp", `bad value "64" for ip_dscp: out of range 0..63 (Open vSwitch would keep the low 6 bits: 0) at column 4`},
		{"nw_proto needs l3", "nw_proto=6", "nw_proto", "nw_proto requires ip, ipv6, arp or rarp (Open vSwitch would ignore nw_proto and match more packets) at column 1"},
		{"arp_op needs arp", "ip,arp_op=1", "arp_op", "arp_op requires arp or rarp (Open vSwitch would ignore arp_op and match more packets) at column 4"},
		{"arp_op range", "arp,arp_op=256", "arp_op", `bad value "256" for arp_op: out of range 0..255: an opcode above 255 reads as 0 (Open vSwitch would match arp_op=0, the low byte) at column 5`},
		{"arp_spa needs arp", "ip,arp_spa=1.1.1.1", "arp_spa", "arp_spa requires arp or rarp (Open vSwitch would ignore arp_spa and match more packets) at column 4"},
		{"icmp_type needs icmp", "icmp_type=3", "icmp_type", "icmp_type requires icmp or icmp6 (Open vSwitch would ignore icmp_type and match more packets) at column 1"},
		{"icmp_code with tcp", "tcp,icmp_code=3", "icmp_code", "icmp_code requires icmp or icmp6 (Open vSwitch would ignore icmp_code and match more packets) at column 5"},
		{"icmp_type with ipv6 proto 1", "ipv6,nw_proto=1,icmp_type=3", "icmp_type", "icmp_type requires icmp or icmp6 (Open vSwitch would ignore icmp_type and match more packets) at column 17"},
		{"icmp_type range", "icmp,icmp_type=256", "icmp_type", `bad value "256" for icmp_type: out of range 0..255 at column 6`},
		{"in_port empty", "in_port=", "in_port", "missing value for in_port at column 1"},
		{"in_port slash", "in_port=a/b", "in_port", `bad value "a/b" for in_port: contains '/' at column 1`},
		{"in_port colon", "in_port=a:b", "in_port", `bad value "a:b" for in_port: contains ':' at column 1`},
		{"in_port too long", "in_port=0123456789abcdef", "in_port", `bad value "0123456789abcdef" for in_port: longer than 15 bytes at column 1`},
		{"in_port dot", "in_port=.", "in_port", `bad value "." for in_port: not a name at column 1`},
		{"priority in a match", "udp,priority=5", "priority", "priority is not allowed in a match at column 5"},
		{"actions in a match", "udp,actions=drop", "actions", "actions are not allowed in a match at column 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMatch(tt.text)
			checkParseError(t, err, tt.field, tt.want)
		})
	}
}

// checkParseError fails unless err is a *ParseError for field with message
// want that wraps ErrInvalid.
func checkParseError(t *testing.T, err error, field, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v is not a *ParseError", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	if err.Error() != want {
		t.Fatalf("error\n got  %q\n want %q", err.Error(), want)
	}
	if pe.Field != field {
		t.Fatalf("error field = %q, want %q", pe.Field, field)
	}
}

func TestParseMatchFieldsMap(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]string
		want   Match
		field  string // error's field; "" = no error
		err    string
	}{
		{name: "nil", fields: nil, want: Match{}},
		{name: "udp tp_dst", fields: map[string]string{"udp": "", "tp_dst": "7999", "in_port": "p0"},
			want: wantMatch("p0", kvIPv4, kvUDP, exact(steer.OffTpDst, 0x1f, 0x3f))},
		{name: "prereq", fields: map[string]string{"tp_dst": "7999"}, field: "tp_dst", err: "tp_dst requires udp or tcp (Open vSwitch would ignore tp_dst and match more packets)"},
		{name: "shorthand value", fields: map[string]string{"udp": "1"}, field: "udp", err: "udp takes no value"},
		{name: "empty value", fields: map[string]string{"tcp": "", "tp_dst": ""}, field: "tp_dst", err: "missing value for tp_dst"},
		{name: "bad value", fields: map[string]string{"tcp": "", "tp_dst": "70000"}, field: "tp_dst",
			err: `bad value "70000" for tp_dst: out of range 0..65535`},
		{name: "flow field", fields: map[string]string{"priority": "1"}, field: "priority", err: "priority is not a match field"},
		{name: "unknown", fields: map[string]string{"tp_dsst": "1"}, field: "tp_dsst", err: `unknown field "tp_dsst"`},
		{name: "conflict in name order", fields: map[string]string{"udp": "", "tcp": ""}, field: "udp", err: "udp conflicts with tcp (Open vSwitch would use the last one)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMatchFields(tt.fields)
			if tt.err != "" {
				checkParseError(t, err, tt.field, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m != tt.want {
				t.Fatalf("got %x/%x, want %x/%x", m.Key, m.Mask, tt.want.Key, tt.want.Mask)
			}
		})
	}
}

func TestMatchCheck(t *testing.T) {
	tests := []struct {
		name  string
		m     Match
		field string
		want  string
	}{
		{"key outside mask", wantMatch("", kv{steer.OffTpDst, u16(0xffff), u16(0xff00)}), "", "match key has bits outside its mask"},
		{"bad in_port", wantMatch("a b"), "in_port", `bad value "a b" for in_port: contains ' '`},
		{"in_port in mask", wantMatch("", kv{steer.OffInPort, []byte{1, 0, 0, 0}, ones(4)}), "in_port", "in_port is matched by name, not in the mask"},
		{"nw_frag", wantMatch("", kvIPv4, kv{steer.OffNwFrag, []byte{2}, []byte{3}}), "nw_frag", "nw_frag 0x2/0x3 is not one of no, yes, first, later, not_later"},
		{"nw_frag no by its any bit", wantMatch("", kvIPv4, kv{steer.OffNwFrag, []byte{0}, []byte{1}}), "nw_frag", "nw_frag 0x0/0x1 is not one of no, yes, first, later, not_later"},
		{"dl_type 802.3 length", wantMatch("", exact(steer.OffDlType, 0x01, 0x00)), "dl_type",
			"dl_type 0x0100: an 802.3 length, which no frame's dl_type is (802.3 frames have dl_type 0x05ff, or their SNAP type; Open vSwitch would take a flow that never matches)"},
		{"flags byte", wantMatch("", kv{steer.OffFlags, []byte{0}, []byte{1}}), "", "mask covers padding bytes"},
		{"padding", wantMatch("", kv{steer.OffTpDst + 2, []byte{0}, []byte{1}}), "", "mask covers padding bytes"},
		{"partial dl_type", wantMatch("", kv{steer.OffDlType, u16(0x0800), u16(0xff00)}), "dl_type",
			"dl_type mask 0xff00: dl_type is matched exactly or not at all"},
		{"partial nw_proto", wantMatch("", kvIPv4, kv{steer.OffNwProto, []byte{6}, []byte{0x0f}}), "nw_proto",
			"nw_proto mask 0x0f: nw_proto is matched exactly or not at all"},
		{"vlan vid without present", wantMatch("", kv{steer.OffVlanTCI, u16(0x0005), u16(0x1fff)}), "vlan_tci",
			"vlan_tci 0x0005/0x1fff has VID or PCP bits without the present bit: it never matches"},
		{"nw_tos half a dscp", wantMatch("", kvIPv4, kv{steer.OffNwTos, []byte{4}, []byte{0x0f}}), "nw_tos",
			"nw_tos mask 0x0f: the DSCP bits (0xfc, nw_tos) and the ECN bits (0x03, nw_ecn) are matched whole or not at all"},
		{"prereq nw_ecn", wantMatch("", kvARP, kv{steer.OffNwTos, []byte{1}, []byte{0x03}}), "nw_tos", "nw_tos requires ip or ipv6"},
		{"prereq nw_frag", wantMatch("", kvARP, kv{steer.OffNwFrag, []byte{1}, []byte{1}}), "nw_frag", "nw_frag requires ip or ipv6"},
		{"ipv4 in 16 bytes", wantMatch("", kvIPv4, kv{steer.OffNwDst, ones(16), ones(16)}), "nw_dst", "nw_dst mask covers more than an IPv4 address"},
		{"arp in 16 bytes", wantMatch("", kvARP, kv{steer.OffNwSrc + 4, []byte{1}, []byte{1}}), "arp_spa", "arp_spa mask covers more than an IPv4 address"},
		{"icmp partial", wantMatch("", kvIPv4, kvICMP, kv{steer.OffTpSrc, u16(0x0003), u16(0x00ff)}), "icmp_type", "icmp_type must be an exact value 0..255"},
		{"icmp wide", wantMatch("", kvIPv6, kvICMP6, exact(steer.OffTpDst, 1, 0)), "icmp_code", "icmp_code must be an exact value 0..255"},
		{"prereq tp", wantMatch("", kvIPv4, exact(steer.OffTpDst, 0, 80)), "tp_dst", "tp_dst requires udp or tcp"},
		{"prereq nw_src", wantMatch("", exact(steer.OffNwSrc, 1, 2, 3, 4)), "nw_src", "nw_src requires ip, arp or rarp"},
		{"prereq nw_tos", wantMatch("", kvARP, kv{steer.OffNwTos, []byte{4}, []byte{0xfc}}), "nw_tos", "nw_tos requires ip or ipv6"},
		{"prereq nw_proto", wantMatch("", exact(steer.OffNwProto, 6)), "nw_proto", "nw_proto requires ip, ipv6, arp or rarp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParseError(t, tt.m.Check(), tt.field, tt.want)
		})
	}
}

func TestCovers(t *testing.T) {
	mm := func(s string) Match {
		m, err := ParseMatch(s)
		if err != nil {
			t.Fatalf("ParseMatch(%q): %v", s, err)
		}
		return m
	}
	tests := []struct {
		name          string
		filter, match string
		want          bool
	}{
		{"empty covers empty", "", "", true},
		{"empty covers all", "", "udp,in_port=p1,tp_dst=53", true},
		{"itself", "udp,tp_dst=53", "udp,tp_dst=53", true},
		{"less specific", "udp", "udp,tp_dst=53", true},
		{"more specific", "udp,tp_dst=53", "udp", false},
		{"other value", "tcp", "udp,tp_dst=53", false},
		{"ip covers udp", "ip", "udp", true},
		{"prefix covers longer prefix", "ip,nw_dst=10.0.0.0/8", "ip,nw_dst=10.1.0.0/16", true},
		{"prefix vs shorter prefix", "ip,nw_dst=10.0.0.0/8", "ip,nw_dst=10.0.0.0/7", false},
		{"prefix vs other net", "ip,nw_dst=10.0.0.0/8", "ip,nw_dst=11.0.0.1", false},
		{"tp mask", "tcp,tp_dst=0x1f00/0xff00", "tcp,tp_dst=0x1f3f", true},
		{"tp mask other", "tcp,tp_dst=0x1f00/0xff00", "tcp,tp_dst=0x203f", false},
		{"in_port filter", "in_port=p1", "udp,in_port=p1", true},
		{"in_port filter other port", "in_port=p1", "udp,in_port=p2", false},
		{"in_port filter any port", "in_port=p1", "udp", false},
		{"vlan vid covers vid+pcp", "dl_vlan=5", "dl_vlan=5,dl_vlan_pcp=3", true},
		{"vlan pcp vs vid", "dl_vlan_pcp=3", "dl_vlan=5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, m := mm(tt.filter), mm(tt.match)
			if got := f.Covers(&m); got != tt.want {
				t.Fatalf("%q covers %q = %v, want %v", tt.filter, tt.match, got, tt.want)
			}
		})
	}
}

func TestCheckPortName(t *testing.T) {
	for _, name := range []string{"p0", "eth0.100", "veth-a_b", "0123456789abcde", "drop"} {
		if err := CheckPortName(name); err != nil {
			t.Errorf("CheckPortName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a b", "a/b", "a,b", "a:b", "a=b", "a\x00", "a\tb", "0123456789abcdef", "in_port"} {
		err := CheckPortName(name)
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckPortName(%q) = %v, want an ErrInvalid", name, err)
		}
	}
}
