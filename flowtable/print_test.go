package flowtable

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func TestFlowStringCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"example", "priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1",
			"priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1"},
		{"order and spaces", "tp_dst=80 tcp priority=5 actions=output:p1",
			"priority=5,tcp,tp_dst=80,actions=output:p1"},
		{"default priority drop", "actions=", "priority=32768,actions=drop"},
		{"flow fields", "hard_timeout=20,priority=1,cookie=31,idle_timeout=10,actions=drop",
			"cookie=0x1f,idle_timeout=10,hard_timeout=20,priority=1,actions=drop"},
		{"dl_type and nw_proto to shorthand", "dl_type=0x0800,nw_proto=17,actions=drop", "priority=32768,udp,actions=drop"},
		{"ip nw_proto tcp", "ip,nw_proto=6,actions=drop", "priority=32768,tcp,actions=drop"},
		{"ipv6 nw_proto tcp", "ipv6,nw_proto=6,actions=drop", "priority=32768,tcp6,actions=drop"},
		{"ipv6 icmp6", "dl_type=0x86dd,nw_proto=58,actions=drop", "priority=32768,icmp6,actions=drop"},
		{"other proto", "nw_proto=89,ip,actions=drop", "priority=32768,ip,nw_proto=89,actions=drop"},
		{"other dl_type", "dl_type=35020,actions=drop", "priority=32768,dl_type=0x88cc,actions=drop"},
		{"arp names", "arp,nw_src=10.0.0.1,nw_dst=10.0.0.0/8,nw_proto=1,actions=drop",
			"priority=32768,arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_op=1,actions=drop"},
		{"cidr canonical", "ip,nw_src=10.1.2.3/8,nw_dst=10.0.0.1/255.255.255.255,actions=drop",
			"priority=32768,ip,nw_src=10.0.0.0/8,nw_dst=10.0.0.1,actions=drop"},
		{"netmask kept", "ip,nw_dst=10.1.2.3/255.0.255.0,actions=drop", "priority=32768,ip,nw_dst=10.0.2.0/255.0.255.0,actions=drop"},
		{"prefix written as netmask", "ip,nw_dst=10.1.2.3/255.255.0.0,actions=drop", "priority=32768,ip,nw_dst=10.1.0.0/16,actions=drop"},
		{"dscp as tos", "ip,ip_dscp=46,actions=drop", "priority=32768,ip,nw_tos=184,actions=drop"},
		{"tp masked", "tcp,tp_dst=0x1f3f/0xff00,tp_src=80/0xffff,actions=drop", "priority=32768,tcp,tp_src=80,tp_dst=0x1f00/0xff00,actions=drop"},
		{"tp zero mask dropped", "tcp,tp_dst=5/0,actions=drop", "priority=32768,tcp,actions=drop"},
		{"vlan", "dl_vlan_pcp=5,dl_vlan=10,actions=drop", "priority=32768,dl_vlan=10,dl_vlan_pcp=5,actions=drop"},
		{"vlan pcp", "dl_vlan_pcp=5,actions=drop", "priority=32768,dl_vlan_pcp=5,actions=drop"},
		{"untagged", "dl_vlan=65535,actions=drop", "priority=32768,dl_vlan=0xffff,actions=drop"},
		{"macs", "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_src=AA:BB:CC:DD:EE:FF,actions=drop",
			"priority=32768,dl_src=aa:bb:cc:dd:ee:ff,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=drop"},
		{"mac full mask", "dl_src=aa:bb:cc:dd:ee:ff/ff:ff:ff:ff:ff:ff,actions=drop", "priority=32768,dl_src=aa:bb:cc:dd:ee:ff,actions=drop"},
		{"ipv6", "ipv6,ipv6_src=2001:DB8::1/32,ipv6_dst=::1/ffff::ffff,actions=drop",
			"priority=32768,ipv6,ipv6_src=2001:db8::/32,ipv6_dst=::1/ffff::ffff,actions=drop"},
		{"icmp", "icmp,icmp_code=0,icmp_type=8,actions=drop", "priority=32768,icmp,icmp_type=8,icmp_code=0,actions=drop"},
		{"icmp6", "icmp6,icmp_type=135,actions=drop", "priority=32768,icmp6,icmp_type=135,actions=drop"},
		{"field order", "tcp,tp_dst=1,nw_tos=4,nw_dst=1.1.1.1,nw_src=2.2.2.2,dl_dst=00:00:00:00:00:01,dl_src=00:00:00:00:00:02,dl_vlan=3,in_port=p,actions=drop",
			"priority=32768,tcp,in_port=p,dl_vlan=3,dl_src=00:00:00:00:00:02,dl_dst=00:00:00:00:00:01,nw_src=2.2.2.2,nw_dst=1.1.1.1,nw_tos=4,tp_dst=1,actions=drop"},
		{"actions canonical", "tcp,actions=p1,output:in_port,set_field:46->ip_dscp,pop_vlan,push_vlan:33024,set_field:0x1064->vlan_vid,set_field:7->tcp_dst,set_field:00:00:00:00:00:0A->eth_src",
			"priority=32768,tcp,actions=output:p1,in_port,mod_nw_tos:184,strip_vlan,push_vlan:0x8100,mod_vlan_vid:100,mod_tp_dst:7,mod_dl_src:00:00:00:00:00:0a"},
		{"every action", "tcp,actions=mod_dl_src:0:1:2:3:4:5,mod_dl_dst:00:01:02:03:04:05,mod_nw_src:1.2.3.4,mod_nw_dst:4.3.2.1,mod_nw_tos:4,mod_tp_src:1,mod_tp_dst:2,push_vlan:0x88a8,mod_vlan_vid:5,mod_vlan_pcp:6,strip_vlan,dec_ttl,in_port,output:p9",
			"priority=32768,tcp,actions=mod_dl_src:00:01:02:03:04:05,mod_dl_dst:00:01:02:03:04:05,mod_nw_src:1.2.3.4,mod_nw_dst:4.3.2.1,mod_nw_tos:4,mod_tp_src:1,mod_tp_dst:2,push_vlan:0x88a8,mod_vlan_vid:5,mod_vlan_pcp:6,strip_vlan,dec_ttl,in_port,output:p9"},
		{"kernel", "actions=kernel", "priority=32768,actions=kernel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFlow(tt.in)
			if err != nil {
				t.Fatalf("ParseFlow(%q): %v", tt.in, err)
			}
			if got := f.String(); got != tt.want {
				t.Fatalf("String()\n got  %s\n want %s", got, tt.want)
			}
			g, err := ParseFlow(tt.want)
			if err != nil {
				t.Fatalf("ParseFlow(String()): %v", err)
			}
			if !reflect.DeepEqual(f, g) {
				t.Fatalf("round trip\n got  %+v\n want %+v", g, f)
			}
		})
	}
}

func TestFormatFlow(t *testing.T) {
	f, err := ParseFlow("cookie=0x5,idle_timeout=10,hard_timeout=20,priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1")
	if err != nil {
		t.Fatal(err)
	}
	st := &FlowStats{Packets: 10, Bytes: 640, Duration: 1234567 * time.Microsecond, IdleAge: 2900 * time.Millisecond}
	tests := []struct {
		name string
		st   *FlowStats
		want string
	}{
		{"stats", st, " cookie=0x5, duration=1.235s, table=0, n_packets=10, n_bytes=640, idle_timeout=10, hard_timeout=20, idle_age=2, " +
			"priority=100,udp,in_port=p0,tp_dst=7999 actions=mod_tp_dst:7998,output:p1"},
		{"no stats", nil, " cookie=0x5, table=0, idle_timeout=10, hard_timeout=20, priority=100,udp,in_port=p0,tp_dst=7999 actions=mod_tp_dst:7998,output:p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FormatFlow(f, tt.st)
			if got != tt.want {
				t.Fatalf("FormatFlow\n got  %q\n want %q", got, tt.want)
			}
			g, err := ParseFlow(got)
			if err != nil {
				t.Fatalf("ParseFlow(FormatFlow): %v", err)
			}
			if !reflect.DeepEqual(f, g) {
				t.Fatalf("dump-flows round trip\n got  %+v\n want %+v", g, f)
			}
		})
	}
	empty := &Flow{Priority: 7}
	if got, want := FormatFlow(empty, &FlowStats{}), " cookie=0x0, duration=0.000s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=7 actions=drop"; got != want {
		t.Fatalf("FormatFlow(empty)\n got  %q\n want %q", got, want)
	}
}

func TestFormatActionUnknownType(t *testing.T) {
	if got := FormatAction(Action{Type: 200}); got != "action(200)" {
		t.Fatalf("FormatAction = %q", got)
	}
	if got := FormatActions(nil); got != "drop" {
		t.Fatalf("FormatActions(nil) = %q", got)
	}
}

// Random flows built from the model, for round trips.

const genPortChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@+"

func genPortName(r *rand.Rand) string {
	for {
		b := make([]byte, 1+r.IntN(MaxPortNameLen))
		for i := range b {
			b[i] = genPortChars[r.IntN(len(genPortChars))]
		}
		if s := string(b); s != "." && s != ".." && s != "in_port" {
			return s
		}
	}
}

// genPortRef returns a port reference: a name (quoted when it reads as a
// number or a reserved port), or now and then an ofport number.
func genPortRef(r *rand.Rand) string {
	if r.IntN(8) == 0 {
		return strconv.Itoa(1 + r.IntN(steer.MaxPorts-1))
	}
	if r.IntN(8) == 0 {
		return PortRefOf(strconv.Itoa(r.IntN(1000)))
	}
	return PortRefOf(genPortName(r))
}

// genMask returns an n-byte mask: all ones, a prefix, zero or random.
func genMask(r *rand.Rand, n int) []byte {
	m := make([]byte, n)
	switch r.IntN(4) {
	case 0:
		copy(m, ones(n))
	case 1:
		for i := range r.IntN(n*8 + 1) {
			m[i/8] |= 0x80 >> (i % 8)
		}
	case 2:
	default:
		for i := range m {
			m[i] = byte(r.Uint32())
		}
	}
	return m
}

// genSet sets value & mask at off in m.
func genSet(m *Match, off int, val, mask []byte) {
	for i := range val {
		m.Key[off+i] = val[i] & mask[i]
		m.Mask[off+i] = mask[i]
	}
}

func genBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// genMatch returns a random match that passes Check.
func genMatch(r *rand.Rand) Match {
	var m Match
	if r.IntN(3) == 0 {
		m.InPort = genPortRef(r)
	}
	for _, off := range []int{steer.OffDlSrc, steer.OffDlDst} {
		if r.IntN(3) == 0 {
			genSet(&m, off, genBytes(r, 6), genMask(r, 6))
		}
	}
	vid, pcp := uint16(r.IntN(4096)), uint16(r.IntN(8))
	switch r.IntN(6) {
	case 1:
		genSet(&m, steer.OffVlanTCI, u16(steer.VlanPresent|vid), u16(0x1fff))
	case 2:
		genSet(&m, steer.OffVlanTCI, u16(pcp<<13|steer.VlanPresent), u16(0xf000))
	case 3:
		genSet(&m, steer.OffVlanTCI, u16(pcp<<13|steer.VlanPresent|vid), u16(0xffff))
	case 4:
		genSet(&m, steer.OffVlanTCI, u16(0), u16(0xffff))
	case 5: // any vlan_tci mask
		tci, mask := uint16(r.Uint32())|steer.VlanPresent, uint16(r.Uint32())
		if r.IntN(4) == 0 {
			tci = 0 // untagged, by some bits
		}
		genSet(&m, steer.OffVlanTCI, u16(tci&mask), u16(mask))
	}
	var dlType uint16
	switch r.IntN(6) {
	case 0:
		return m
	case 1:
		dlType = uint16(r.Uint32())
		if dlType < etherTypeMin {
			dlType = dlTypeNone // what 802.3 frames have
		}
	case 2:
		dlType = [2]uint16{etherTypeARP, etherTypeRARP}[r.IntN(2)]
	case 3:
		dlType = etherTypeIPv6
	default:
		dlType = etherTypeIPv4
	}
	genSet(&m, steer.OffDlType, u16(dlType), u16(0xffff))
	addrLen := 4
	switch dlType {
	case etherTypeIPv4, etherTypeARP, etherTypeRARP:
	case etherTypeIPv6:
		addrLen = 16
	default:
		return m
	}
	for _, off := range []int{steer.OffNwSrc, steer.OffNwDst} {
		if r.IntN(2) == 0 {
			genSet(&m, off, genBytes(r, addrLen), genMask(r, addrLen))
		}
	}
	if dlType == etherTypeARP || dlType == etherTypeRARP {
		if r.IntN(2) == 0 {
			genSet(&m, steer.OffNwProto, genBytes(r, 1), ones(1))
		}
		return m
	}
	if r.IntN(3) == 0 {
		genSet(&m, steer.OffNwTos, []byte{byte(r.IntN(64) << 2)}, []byte{nwTosMask})
	}
	if r.IntN(3) == 0 {
		m.Key[steer.OffNwTos] |= byte(r.IntN(4))
		m.Mask[steer.OffNwTos] |= nwEcnMask
	}
	if r.IntN(3) == 0 {
		fv := fragValues[r.IntN(len(fragValues))]
		genSet(&m, steer.OffNwFrag, []byte{fv.value}, []byte{fv.mask})
	}
	icmp := uint8(ipProtoICMP)
	if dlType == etherTypeIPv6 {
		icmp = ipProtoICMPv6
	}
	var proto uint8
	switch r.IntN(5) {
	case 0:
		return m
	case 1:
		proto = byte(r.Uint32())
	case 2:
		proto = icmp
	case 3:
		proto = ipProtoUDP
	default:
		proto = ipProtoTCP
	}
	genSet(&m, steer.OffNwProto, []byte{proto}, ones(1))
	for _, off := range []int{steer.OffTpSrc, steer.OffTpDst} {
		if r.IntN(2) == 0 {
			continue
		}
		switch proto {
		case ipProtoTCP, ipProtoUDP:
			genSet(&m, off, genBytes(r, 2), genMask(r, 2))
		case icmp:
			genSet(&m, off, []byte{0, byte(r.Uint32())}, ones(2))
		}
	}
	return m
}

// genActions returns random actions whose prerequisites m meets, for a
// flow in table.
func genActions(r *rand.Rand, m *Match, table uint8) []Action {
	switch r.IntN(8) {
	case 0:
		return nil
	case 1:
		if table == 0 {
			return []Action{{Type: ActKernel}}
		}
		return nil
	}
	var acts []Action
	tags := matchTags(m)
	for range 1 + r.IntN(6) {
		var a Action
		switch t := ActionType(1 + r.IntN(int(numActionTypes-1))); t {
		case ActKernel, ActGotoTable:
			continue
		case ActOutput:
			a = Action{Type: t, Port: genPortRef(r)}
		case ActSetDlSrc, ActSetDlDst:
			a = Action{Type: t, MAC: [6]byte(genBytes(r, 6))}
		case ActSetNwSrc, ActSetNwDst:
			a = Action{Type: t, Addr: netip.AddrFrom4([4]byte(genBytes(r, 4)))}
		case ActSetNwTos:
			a = Action{Type: t, Value: uint32(r.IntN(64) << 2)}
		case ActSetNwEcn:
			a = Action{Type: t, Value: uint32(r.IntN(4))}
		case ActSetTpSrc, ActSetTpDst:
			a = Action{Type: t, Value: uint32(uint16(r.Uint32()))}
		case ActPushVLAN:
			a = Action{Type: t, Value: [2]uint32{0x8100, 0x88a8}[r.IntN(2)]}
		case ActSetVlanVID:
			a = Action{Type: t, Value: uint32(r.IntN(4096))}
		case ActSetVlanPCP:
			a = Action{Type: t, Value: uint32(r.IntN(8))}
		case ActGroup:
			a = Action{Type: t, Value: uint32(r.Int64N(MaxGroupID + 1))}
		case ActResubmit:
			a = Action{Type: t, Table: TableCurrent}
			if r.IntN(2) == 0 {
				a.Port = genPortRef(r)
			}
			if a.Port == "" || r.IntN(2) == 0 {
				a.Table = uint8(r.IntN(MaxTable + 1))
			}
		default:
			a = Action{Type: t}
		}
		if t := tags; actionKinds[a.Type].need.holds(m) && followTags(&t, &a) == "" {
			acts = append(acts, a)
			tags = t
		}
	}
	if table < MaxTable && r.IntN(4) == 0 {
		acts = append(acts, Action{Type: ActGotoTable, Table: table + 1 + uint8(r.IntN(MaxTable-int(table)))})
	}
	return acts
}

func genFlow(r *rand.Rand) *Flow {
	f := &Flow{Priority: uint16(r.Uint32()), Match: genMatch(r)}
	if r.IntN(3) == 0 {
		f.Cookie = r.Uint64()
	}
	if r.IntN(3) == 0 {
		f.IdleTimeout = uint16(r.Uint32())
	}
	if r.IntN(3) == 0 {
		f.HardTimeout = uint16(r.Uint32())
	}
	if r.IntN(3) == 0 {
		f.Table = uint8(r.IntN(MaxTable + 1))
	}
	f.Actions = genActions(r, &f.Match, f.Table)
	return f
}

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	stats := &FlowStats{Packets: 1, Bytes: 2, Duration: 3 * time.Second, IdleAge: time.Second}
	for i := range 20000 {
		f := genFlow(r)
		if err := f.Check(); err != nil {
			t.Fatalf("flow %d: generated flow fails Check: %v\n%+v", i, err, f)
		}
		s := f.String()
		g, err := ParseFlow(s)
		if err != nil {
			t.Fatalf("flow %d: ParseFlow(%q): %v", i, s, err)
		}
		if !reflect.DeepEqual(f, g) {
			t.Fatalf("flow %d: round trip of %q\n got  %+v\n want %+v", i, s, g, f)
		}
		d := FormatFlow(f, stats)
		if g, err = ParseFlow(d); err != nil || !reflect.DeepEqual(f, g) {
			t.Fatalf("flow %d: dump-flows round trip of %q: %v\n got  %+v\n want %+v", i, d, err, g, f)
		}
		ms := f.Match.String()
		m, err := ParseMatch(ms)
		if err != nil || m != f.Match {
			t.Fatalf("flow %d: match round trip of %q: %v", i, ms, err)
		}
		// Fields cuts its values out of the same text.
		var joined []string
		for _, fl := range f.Match.Fields() {
			if fl.Value == "" {
				joined = append(joined, fl.Name)
			} else {
				joined = append(joined, fl.Name+"="+fl.Value)
			}
		}
		if j := strings.Join(joined, ","); j != ms {
			t.Fatalf("flow %d: Fields joined give %q, String %q", i, j, ms)
		}
	}
}

// coversRef is Covers bit by bit.
func coversRef(f, m *Match) bool {
	if f.InPort != "" && f.InPort != m.InPort {
		return false
	}
	for i := range steer.KeyLen {
		for b := range 8 {
			bit := byte(1) << b
			if f.Mask[i]&bit == 0 {
				continue
			}
			if m.Mask[i]&bit == 0 || m.Key[i]&bit != f.Key[i]&bit {
				return false
			}
		}
	}
	return true
}

// matches reports whether a packet key k (in_port by name) matches m.
func matches(m *Match, k *Key, inPort string) bool {
	if m.InPort != "" && m.InPort != inPort {
		return false
	}
	var masked Key
	k.And(&m.Mask, &masked)
	return masked == m.Key
}

func TestCoversRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		m := genMatch(r)
		// A generalization of m: some mask bits dropped, sometimes in_port.
		f := m
		drop := genBytes(r, steer.KeyLen)
		for j := range drop {
			if r.IntN(2) == 0 {
				f.Mask[j] &^= drop[j]
			}
		}
		f.Key.And(&f.Mask, &f.Key)
		if r.IntN(2) == 0 {
			f.InPort = ""
		}
		if !m.Covers(&m) || !(&Match{}).Covers(&m) {
			t.Fatalf("%d: a match must cover itself and be covered by the empty match", i)
		}
		if !f.Covers(&m) {
			t.Fatalf("%d: generalization %q does not cover %q", i, f.String(), m.String())
		}
		// Against the reference, on unrelated pairs and on f flipped.
		o := genMatch(r)
		if f.Covers(&o) != coversRef(&f, &o) || o.Covers(&f) != coversRef(&o, &f) || m.Covers(&f) != coversRef(&m, &f) {
			t.Fatalf("%d: Covers disagrees with the reference", i)
		}
		// Soundness: every packet m matches, f matches.
		var k Key
		for j := range k {
			k[j] = m.Key[j] | byte(r.Uint32())&^m.Mask[j]
		}
		binary.NativeEndian.PutUint32(k[steer.OffInPort:], 0)
		port := m.InPort
		if port == "" {
			port = genPortName(r)
		}
		if !matches(&m, &k, port) || !matches(&f, &k, port) {
			t.Fatalf("%d: packet matching %q does not match its generalization %q", i, m.String(), f.String())
		}
	}
}

// Printing a flow allocates its text and nothing else: the printers
// append to one buffer on the stack. A save or a dump prints every flow of
// the table.
func TestFlowStringAllocs(t *testing.T) {
	f, err := ParseFlow("cookie=0x1f,table=3,idle_timeout=10,priority=100,udp,in_port=p0,dl_src=00:11:22:33:44:55,nw_dst=10.1.2.0/24,tp_dst=7999,actions=mod_tp_dst:7998,mod_nw_src:10.9.8.7,push_vlan:0x8100,resubmit(p2,4),output:p1")
	if err != nil {
		t.Fatal(err)
	}
	st := &FlowStats{Packets: 10, Bytes: 640, Duration: 1234 * time.Millisecond}
	for name, print := range map[string]func(){
		"Flow.String":   func() { _ = f.String() },
		"Match.String":  func() { _ = f.Match.String() },
		"FormatFlow":    func() { _ = FormatFlow(f, st) },
		"FormatActions": func() { _ = FormatActions(f.Actions) },
	} {
		if n := testing.AllocsPerRun(100, print); n > 1 {
			t.Errorf("%s: %v allocations, want 1 (the text)", name, n)
		}
	}
}

// appendHex writes what fmt's 0x%0Nx does.
func TestAppendHex(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xf, 0x10, 0xff, 0x100, 0xfff, 0x1000, 0x8100, 0xffff, 0x10000, 1<<64 - 1} {
		for _, digits := range []int{1, 2, 4} {
			want := fmt.Sprintf("0x%0*x", digits, v)
			if got := string(appendHex([]byte("x="), v, digits)); got != "x="+want {
				t.Errorf("appendHex(%#x, %d) = %q, want %q", v, digits, got, "x="+want)
			}
		}
	}
}
