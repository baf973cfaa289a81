package flowtable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func dpProgram(tb testing.TB, acts ...Action) Program {
	tb.Helper()
	p, err := compileProgram(acts, dpPorts, true, 0)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return p
}

// step is one Output of a run with the frame as it was at that moment.
type dpStep struct {
	out   Output
	frame []byte
}

// runAll runs prog to the end the way a poller does.
func dpRunAll(tb testing.TB, prog *Program, pkt *Packet, lay *Layout) []dpStep {
	var steps []dpStep
	for pc := 0; pc >= 0; {
		var out Output
		next, prevPC := 0, pc
		out, next = prog.Run(pkt, lay, pc)
		if next >= 0 && next <= prevPC {
			tb.Fatalf("pc went from %d to %d", prevPC, next)
		}
		pc = next
		steps = append(steps, dpStep{out, bytes.Clone(pkt.Frame())})
		if len(steps) > 100 {
			tb.Fatalf("program does not end")
		}
	}
	return steps
}

// onesSum adds b as big-endian 16-bit words to s (reference, not the
// incremental code under test).
func dpOnesSum(s uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// fixIPv4Csum recomputes the checksum of an IPv4 header from scratch.
func dpFixIPv4Csum(h []byte) {
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], ^dpFold(dpOnesSum(0, h)))
}

func dpFold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// verifyChecksums decodes frame with gopacket and checks the IPv4 header
// checksum and the TCP/UDP checksum (pseudo-header included) from scratch.
// UDP over IPv4 with checksum 0 is accepted (no checksum); L4 checksums of
// fragments are not checkable and skipped.
func dpVerifyChecksums(frame []byte) error {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var pseudo uint32
	frag := false
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		if s := dpFold(dpOnesSum(0, ip.Contents)); s != 0xffff {
			return fmt.Errorf("ipv4 header checksum %#04x wrong (sum %#x)", ip.Checksum, s)
		}
		pseudo = dpOnesSum(dpOnesSum(0, ip.SrcIP.To4()), ip.DstIP.To4()) + uint32(ip.Protocol)
		frag = ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0
	case *layers.IPv6:
		pseudo = dpOnesSum(dpOnesSum(0, ip.SrcIP.To16()), ip.DstIP.To16()) + uint32(ip.NextHeader)
	default:
		return nil
	}
	if frag {
		return nil
	}
	var seg []byte
	switch l4 := p.TransportLayer().(type) {
	case *layers.TCP:
		seg = append(bytes.Clone(l4.Contents), l4.Payload...)
	case *layers.UDP:
		if l4.Checksum == 0 && p.Layer(layers.LayerTypeIPv4) != nil {
			return nil
		}
		seg = append(bytes.Clone(l4.Contents), l4.Payload...)
	default:
		return nil
	}
	if s := dpFold(dpOnesSum(pseudo+uint32(len(seg)), seg)); s != 0xffff {
		return fmt.Errorf("l4 checksum wrong (sum %#x)", s)
	}
	return nil
}

// frameSpec describes a test frame; build() serializes it with correct
// checksums, so an expected rewrite is a second spec.
type dpSpec struct {
	tags         []dpTag
	v6           bool
	src, dst     string
	proto        layers.IPProtocol
	sport, dport uint16
	tos          uint8
	ttl          uint8
	fragOff      uint16
	mf           bool
	udpNoCsum    bool
}

func (s dpSpec) build(tb testing.TB) []byte {
	tb.Helper()
	var l3 gopacket.SerializableLayer
	et := layers.EthernetTypeIPv4
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	if s.v6 {
		ip := dpIPv6(s.src, s.dst, s.proto)
		ip.TrafficClass, ip.HopLimit = s.tos, ttl
		l3, et = ip, layers.EthernetTypeIPv6
	} else {
		ip := dpIPv4(s.src, s.dst, s.proto)
		ip.TOS, ip.TTL, ip.FragOffset = s.tos, ttl, s.fragOff
		if s.mf {
			ip.Flags = layers.IPv4MoreFragments
		}
		l3 = ip
	}
	ls := []gopacket.SerializableLayer{l3}
	switch s.proto {
	case layers.IPProtocolTCP:
		ls = append(ls, dpTCP(s.sport, s.dport))
	case layers.IPProtocolUDP:
		ls = append(ls, dpUDP(s.sport, s.dport))
	}
	ls = append(ls, dpPayload)
	f := dpFrame(tb, s.tags, et, ls...)
	if s.udpNoCsum {
		binary.BigEndian.PutUint16(f[14+4*len(s.tags)+20+6:], 0)
	}
	return f
}

var (
	dpTCP4Spec = dpSpec{src: "10.0.0.1", dst: "10.0.0.2", proto: layers.IPProtocolTCP, sport: 1234, dport: 80}
	dpUDP4Spec = dpSpec{src: "10.0.0.1", dst: "10.0.0.2", proto: layers.IPProtocolUDP, sport: 5353, dport: 53}
	dpTCP6Spec = dpSpec{v6: true, src: "2001:db8::1", dst: "2001:db8::2", proto: layers.IPProtocolTCP, sport: 1234, dport: 80}
	dpUDP6Spec = dpSpec{v6: true, src: "2001:db8::1", dst: "2001:db8::2", proto: layers.IPProtocolUDP, sport: 1234, dport: 80}
)

func dpWith(s dpSpec, fn func(*dpSpec)) dpSpec {
	s.tags = append([]dpTag(nil), s.tags...)
	fn(&s)
	return s
}

func TestProgramRewrites(t *testing.T) {
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tag := func(tpid uint16, pcp uint8, vid uint16) dpTag { return dpTag{tpid: tpid, pcp: pcp, vid: vid} }
	tests := []struct {
		name    string
		in      dpSpec
		inBytes []byte // instead of in, when set
		acts    []Action
		want    dpSpec
		wantB   []byte // instead of want, when set
		headOff int    // expected change of Packet.Off
	}{
		{"mod_nw_src tcp", dpTCP4Spec, nil, []Action{{Type: ActSetNwSrc, Addr: addr("192.168.77.1")}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.src = "192.168.77.1" }), nil, 0},
		{"mod_nw_dst tcp", dpTCP4Spec, nil, []Action{{Type: ActSetNwDst, Addr: addr("172.16.0.9")}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.dst = "172.16.0.9" }), nil, 0},
		{"mod_nw_src udp", dpUDP4Spec, nil, []Action{{Type: ActSetNwSrc, Addr: addr("1.2.3.4")}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.src = "1.2.3.4" }), nil, 0},
		{"mod_nw_dst udp checksum 0 stays 0", dpWith(dpUDP4Spec, func(s *dpSpec) { s.udpNoCsum = true }), nil,
			[]Action{{Type: ActSetNwDst, Addr: addr("9.9.9.9")}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.dst = "9.9.9.9"; s.udpNoCsum = true }), nil, 0},
		{"mod_nw_src same address", dpTCP4Spec, nil, []Action{{Type: ActSetNwSrc, Addr: addr("10.0.0.1")}}, dpTCP4Spec, nil, 0},
		{"mod_nw_src and dst icmp", dpSpec{src: "10.0.0.1", dst: "10.0.0.2", proto: layers.IPProtocolICMPv4}, nil,
			[]Action{{Type: ActSetNwSrc, Addr: addr("10.1.1.1")}, {Type: ActSetNwDst, Addr: addr("10.2.2.2")}},
			dpSpec{src: "10.1.1.1", dst: "10.2.2.2", proto: layers.IPProtocolICMPv4}, nil, 0},
		{"mod_nw_src later fragment: L4 bytes untouched", dpWith(dpUDP4Spec, func(s *dpSpec) { s.fragOff = 10 }), nil,
			[]Action{{Type: ActSetNwSrc, Addr: addr("10.7.7.7")}, {Type: ActSetTpDst, Value: 99}},
			dpSpec{}, func() []byte {
				f := dpWith(dpUDP4Spec, func(s *dpSpec) { s.fragOff = 10 }).build(t)
				copy(f[14+12:], []byte{10, 7, 7, 7})
				dpFixIPv4Csum(f[14:34])
				return f
			}(), 0},
		{"mod_nw_dst first fragment patches L4", dpWith(dpUDP4Spec, func(s *dpSpec) { s.mf = true }), nil,
			[]Action{{Type: ActSetNwDst, Addr: addr("10.8.8.8")}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.mf = true; s.dst = "10.8.8.8" }), nil, 0},
		{"mod_nw_src on ipv6: no-op", dpTCP6Spec, nil, []Action{{Type: ActSetNwSrc, Addr: addr("10.0.0.9")}}, dpTCP6Spec, nil, 0},
		{"mod_nw_tos keeps ecn", dpWith(dpTCP4Spec, func(s *dpSpec) { s.tos = 0x03 }), nil, []Action{{Type: ActSetNwTos, Value: 0xb8}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tos = 0xbb }), nil, 0},
		{"mod_nw_tos ipv6 traffic class", dpWith(dpTCP6Spec, func(s *dpSpec) { s.tos = 0x41 }), nil, []Action{{Type: ActSetNwTos, Value: 0xb8}},
			dpWith(dpTCP6Spec, func(s *dpSpec) { s.tos = 0xb9 }), nil, 0},
		{"mod_nw_ecn keeps dscp", dpWith(dpTCP4Spec, func(s *dpSpec) { s.tos = 0xb8 }), nil, []Action{{Type: ActSetNwEcn, Value: 3}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tos = 0xbb }), nil, 0},
		{"mod_nw_ecn clears", dpWith(dpUDP4Spec, func(s *dpSpec) { s.tos = 0x03 }), nil, []Action{{Type: ActSetNwEcn, Value: 0}},
			dpUDP4Spec, nil, 0},
		{"mod_nw_ecn ipv6 traffic class", dpWith(dpTCP6Spec, func(s *dpSpec) { s.tos = 0xb8 }), nil, []Action{{Type: ActSetNwEcn, Value: 1}},
			dpWith(dpTCP6Spec, func(s *dpSpec) { s.tos = 0xb9 }), nil, 0},
		{"mod_nw_tos then mod_nw_ecn", dpWith(dpTCP6Spec, func(s *dpSpec) { s.tos = 0x02 }), nil,
			[]Action{{Type: ActSetNwTos, Value: 0x20}, {Type: ActSetNwEcn, Value: 1}},
			dpWith(dpTCP6Spec, func(s *dpSpec) { s.tos = 0x21 }), nil, 0},
		{"mod_tp_src tcp", dpTCP4Spec, nil, []Action{{Type: ActSetTpSrc, Value: 40000}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.sport = 40000 }), nil, 0},
		{"mod_tp_dst tcp", dpTCP4Spec, nil, []Action{{Type: ActSetTpDst, Value: 8080}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.dport = 8080 }), nil, 0},
		{"mod_tp_src and dst udp", dpUDP4Spec, nil, []Action{{Type: ActSetTpSrc, Value: 1}, {Type: ActSetTpDst, Value: 65535}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.sport, s.dport = 1, 65535 }), nil, 0},
		{"mod_tp_dst udp checksum 0 stays 0", dpWith(dpUDP4Spec, func(s *dpSpec) { s.udpNoCsum = true }), nil, []Action{{Type: ActSetTpDst, Value: 5000}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.dport = 5000; s.udpNoCsum = true }), nil, 0},
		{"mod_tp_dst ipv6 tcp", dpTCP6Spec, nil, []Action{{Type: ActSetTpDst, Value: 443}},
			dpWith(dpTCP6Spec, func(s *dpSpec) { s.dport = 443 }), nil, 0},
		{"mod_tp_src ipv6 udp", dpUDP6Spec, nil, []Action{{Type: ActSetTpSrc, Value: 7}},
			dpWith(dpUDP6Spec, func(s *dpSpec) { s.sport = 7 }), nil, 0},
		{"mod_tp_dst on icmp: no-op", dpSpec{src: "1.1.1.1", dst: "2.2.2.2", proto: layers.IPProtocolICMPv4}, nil,
			[]Action{{Type: ActSetTpDst, Value: 1}}, dpSpec{src: "1.1.1.1", dst: "2.2.2.2", proto: layers.IPProtocolICMPv4}, nil, 0},
		{"dec_ttl ipv4", dpTCP4Spec, nil, []Action{{Type: ActDecTTL}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.ttl = 63 }), nil, 0},
		{"dec_ttl ipv4 ttl 2", dpWith(dpUDP4Spec, func(s *dpSpec) { s.ttl = 2 }), nil, []Action{{Type: ActDecTTL}, {Type: ActDecTTL}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.ttl = 2 }), nil, 0}, // second one drops: checked below
		{"dec_ttl ipv6", dpTCP6Spec, nil, []Action{{Type: ActDecTTL}},
			dpWith(dpTCP6Spec, func(s *dpSpec) { s.ttl = 63 }), nil, 0},
		{"mod_dl_src mod_dl_dst", dpTCP4Spec, nil, []Action{{Type: ActSetDlSrc, MAC: [6]byte{1, 2, 3, 4, 5, 6}}, {Type: ActSetDlDst, MAC: [6]byte{7, 8, 9, 10, 11, 12}}},
			dpSpec{}, func() []byte {
				f := dpTCP4Spec.build(t)
				copy(f[0:], []byte{7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6})
				return f
			}(), 0},
		{"push_vlan on untagged", dpTCP4Spec, nil, []Action{{Type: ActPushVLAN, Value: 0x8100}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 0, 0)} }), nil, -4},
		{"push_vlan 88a8 copies the outer tci", dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 5, 100)} }), nil,
			[]Action{{Type: ActPushVLAN, Value: 0x88a8}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x88a8, 5, 100), tag(0x8100, 5, 100)} }), nil, -4},
		{"push_vlan then rewrite L3 and L4", dpUDP4Spec, nil,
			[]Action{{Type: ActPushVLAN, Value: 0x8100}, {Type: ActSetVlanVID, Value: 42}, {Type: ActSetNwSrc, Addr: addr("3.3.3.3")}, {Type: ActSetTpDst, Value: 9}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 0, 42)}; s.src = "3.3.3.3"; s.dport = 9 }), nil, -4},
		{"strip_vlan", dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 3, 7)} }), nil, []Action{{Type: ActStripVLAN}},
			dpTCP4Spec, nil, 4},
		{"strip_vlan outer of two", dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x88a8, 3, 7), tag(0x8100, 1, 8)} }), nil, []Action{{Type: ActStripVLAN}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 1, 8)} }), nil, 4},
		{"strip_vlan then rewrite", dpWith(dpUDP6Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 3, 7)} }), nil,
			[]Action{{Type: ActStripVLAN}, {Type: ActSetTpSrc, Value: 11}, {Type: ActDecTTL}},
			dpWith(dpUDP6Spec, func(s *dpSpec) { s.sport = 11; s.ttl = 63 }), nil, 4},
		{"strip_vlan untagged: no-op", dpTCP4Spec, nil, []Action{{Type: ActStripVLAN}}, dpTCP4Spec, nil, 0},
		{"mod_vlan_vid tagged keeps pcp", dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 6, 7)} }), nil, []Action{{Type: ActSetVlanVID, Value: 4094}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 6, 4094)} }), nil, 0},
		{"mod_vlan_vid untagged pushes", dpTCP4Spec, nil, []Action{{Type: ActSetVlanVID, Value: 10}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 0, 10)} }), nil, -4},
		{"mod_vlan_pcp tagged keeps vid", dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x88a8, 6, 7)} }), nil, []Action{{Type: ActSetVlanPCP, Value: 2}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x88a8, 2, 7)} }), nil, 0},
		{"mod_vlan_pcp untagged pushes", dpTCP4Spec, nil, []Action{{Type: ActSetVlanPCP, Value: 7}},
			dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{tag(0x8100, 7, 0)} }), nil, -4},
		{"arp: L3 rewrites are no-ops", dpSpec{}, dpFrame(t, nil, layers.EthernetTypeARP, &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: dpMacA, SourceProtAddress: []byte{1, 2, 3, 4}, DstHwAddress: dpMacB, DstProtAddress: []byte{5, 6, 7, 8}}),
			[]Action{{Type: ActSetNwSrc, Addr: addr("9.9.9.9")}, {Type: ActDecTTL}, {Type: ActSetNwTos, Value: 4}, {Type: ActSetTpDst, Value: 1}},
			dpSpec{}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.inBytes
			if in == nil {
				in = tt.in.build(t)
			}
			want := tt.wantB
			switch {
			case want != nil:
			case tt.want.src == "":
				want = in
			default:
				want = tt.want.build(t)
			}
			pkt := dpPacket(in, 64, 0, 1)
			var k Key
			var lay Layout
			if ExtractLayout(pkt.Frame(), 1, &k, &lay) != ParseOK {
				t.Fatal("input malformed")
			}
			prog := dpProgram(t, append(tt.acts, dpOut("p2"))...)
			steps := dpRunAll(t, &prog, &pkt, &lay)
			last := steps[len(steps)-1]
			if tt.name == "dec_ttl ipv4 ttl 2" {
				if len(steps) != 1 || last.out != (Output{Kind: OutDrop, Reason: DropDecTTLZero}) {
					t.Fatalf("steps %+v, want one dec_ttl drop", steps)
				}
				return
			}
			if len(steps) != 1 || last.out != (Output{Kind: OutPort, Port: 2, Last: true}) {
				t.Fatalf("steps %+v, want one last output to 2", steps)
			}
			if pkt.Off != 64+tt.headOff {
				t.Fatalf("Off %d, want %d", pkt.Off, 64+tt.headOff)
			}
			if !bytes.Equal(last.frame, want) {
				t.Fatalf("frame\n got %x\nwant %x", last.frame, want)
			}
			if err := dpVerifyChecksums(last.frame); err != nil {
				t.Fatal(err)
			}
			// The layout the program kept is the one a fresh parse finds.
			var k2 Key
			var lay2 Layout
			ExtractLayout(last.frame, 1, &k2, &lay2)
			if lay2 != lay {
				t.Fatalf("layout after run %+v, fresh parse %+v", lay, lay2)
			}
		})
	}
}

func TestProgramDecTTLDrop(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec dpSpec
	}{
		{"ipv4 ttl 1", dpWith(dpTCP4Spec, func(s *dpSpec) { s.ttl = 1 })},
		{"ipv6 hop limit 1", dpWith(dpUDP6Spec, func(s *dpSpec) { s.ttl = 1 })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.spec.build(t)
			pkt := dpPacket(in, 0, 0, 1)
			var k Key
			var lay Layout
			ExtractLayout(pkt.Frame(), 1, &k, &lay)
			prog := dpProgram(t, dpOut("p3"), Action{Type: ActDecTTL}, dpOut("p2"))
			steps := dpRunAll(t, &prog, &pkt, &lay)
			if len(steps) != 2 || steps[0].out != (Output{Kind: OutPort, Port: 3}) ||
				steps[1].out != (Output{Kind: OutDrop, Reason: DropDecTTLZero}) {
				t.Fatalf("steps %+v", steps)
			}
			if !bytes.Equal(steps[1].frame, in) {
				t.Fatal("dropped frame was modified")
			}
		})
	}
	// A TTL of 0 in the header is not made 255.
	f := dpWith(dpTCP4Spec, func(s *dpSpec) { s.ttl = 1 }).build(t)
	f[14+8] = 0
	var lay Layout
	var k Key
	ExtractLayout(f, 1, &k, &lay)
	if rwDecTTL(f, &lay) || f[14+8] != 0 {
		t.Fatal("ttl 0 not dropped")
	}
}

func TestProgramPushRoom(t *testing.T) {
	in := dpTCP4Spec.build(t)
	want := dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{{tpid: 0x8100, vid: 5}} }).build(t)
	prog := dpProgram(t, Action{Type: ActSetVlanVID, Value: 5}, dpOut("p2"))
	tests := []struct {
		name       string
		head, tail int
		off        int // Packet.Off after the push; -1: TooBig
	}{
		{"headroom", 4, 0, 0},
		{"tailroom", 0, 4, 0},
		{"tailroom with 3 bytes of headroom", 3, 10, 3},
		{"no room", 3, 3, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := dpPacket(in, tt.head, tt.tail, 1)
			var k Key
			var lay Layout
			ExtractLayout(pkt.Frame(), 1, &k, &lay)
			steps := dpRunAll(t, &prog, &pkt, &lay)
			if tt.off < 0 {
				if len(steps) != 1 || steps[0].out != (Output{Kind: OutDrop, Reason: DropTooBig}) {
					t.Fatalf("steps %+v, want too_big", steps)
				}
				if !bytes.Equal(pkt.Frame(), in) {
					t.Fatal("frame changed")
				}
				return
			}
			if pkt.Off != tt.off || !bytes.Equal(steps[0].frame, want) {
				t.Fatalf("off %d frame %x", pkt.Off, steps[0].frame)
			}
		})
	}
}

func TestProgramOutputs(t *testing.T) {
	addr := netip.MustParseAddr("10.9.9.9")
	gonePorts := dpPortMap(map[string]uint32{"p2": 2, "p3": 3})
	tests := []struct {
		name   string
		acts   []Action
		ports  PortResolver // nil: testPorts, strict
		inPort uint32
		want   []Output
	}{
		{"drop", nil, nil, 1, []Output{{Kind: OutDrop, Reason: DropActions}}},
		{"kernel", []Action{{Type: ActKernel}}, nil, 1, []Output{{Kind: OutKernel}}},
		{"one output", []Action{dpOut("p2")}, nil, 1, []Output{{Kind: OutPort, Port: 2, Last: true}}},
		{"rewrite after last output is not run", []Action{dpOut("p2"), {Type: ActSetNwDst, Addr: addr}}, nil, 1,
			[]Output{{Kind: OutPort, Port: 2, Last: true}}},
		{"three outputs", []Action{dpOut("p2"), dpOut("p3"), dpOut("p4")}, nil, 1,
			[]Output{{Kind: OutPort, Port: 2}, {Kind: OutPort, Port: 3}, {Kind: OutPort, Port: 4, Last: true}}},
		{"output to in_port skipped", []Action{dpOut("p2"), dpOut("p3")}, nil, 2,
			[]Output{{Kind: OutPort, Port: 3, Last: true}}},
		{"trailing output to in_port skipped", []Action{dpOut("p3"), dpOut("p2")}, nil, 2,
			[]Output{{Kind: OutPort, Port: 3, Last: true}}},
		{"only output is in_port", []Action{dpOut("p2")}, nil, 2, []Output{{Kind: OutEnd}}},
		{"in_port action", []Action{{Type: ActInPort}}, nil, 2, []Output{{Kind: OutPort, Port: 2, Last: true}}},
		{"in_port then output", []Action{{Type: ActInPort}, dpOut("p3")}, nil, 2,
			[]Output{{Kind: OutPort, Port: 2}, {Kind: OutPort, Port: 3, Last: true}}},
		{"port gone first", []Action{dpOut("p1"), dpOut("p2")}, gonePorts, 3,
			[]Output{{Kind: OutDrop, Reason: DropPortGone}, {Kind: OutPort, Port: 2, Last: true}}},
		{"port gone last", []Action{dpOut("p2"), dpOut("p1")}, gonePorts, 3,
			[]Output{{Kind: OutPort, Port: 2}, {Kind: OutDrop, Reason: DropPortGone}}},
		{"no actions but rewrites", []Action{{Type: ActSetNwDst, Addr: addr}}, nil, 1, []Output{{Kind: OutEnd}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prog Program
			if tt.ports == nil {
				prog = dpProgram(t, tt.acts...)
			} else {
				var err error
				if prog, err = compileProgram(tt.acts, tt.ports, false, 0); err != nil {
					t.Fatal(err)
				}
			}
			pkt := dpPacket(dpTCP4Frame(t), 0, 0, tt.inPort)
			var k Key
			var lay Layout
			ExtractLayout(pkt.Frame(), tt.inPort, &k, &lay)
			steps := dpRunAll(t, &prog, &pkt, &lay)
			var got []Output
			for _, s := range steps {
				got = append(got, s.out)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("outputs %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestProgramMultipleOutputs: each output sends the packet as rewritten up to
// that point (OVS semantics).
func TestProgramMultipleOutputs(t *testing.T) {
	in := dpUDP4Spec.build(t)
	prog := dpProgram(t,
		dpOut("p2"),
		Action{Type: ActSetNwDst, Addr: netip.MustParseAddr("10.5.5.5")},
		dpOut("p3"),
		Action{Type: ActPushVLAN, Value: 0x8100}, Action{Type: ActSetVlanVID, Value: 9}, Action{Type: ActSetTpDst, Value: 5000},
		dpOut("p4"),
		Action{Type: ActStripVLAN}, Action{Type: ActDecTTL},
		dpOut("p5"),
	)
	want := []dpStep{
		{Output{Kind: OutPort, Port: 2}, in},
		{Output{Kind: OutPort, Port: 3}, dpWith(dpUDP4Spec, func(s *dpSpec) { s.dst = "10.5.5.5" }).build(t)},
		{Output{Kind: OutPort, Port: 4}, dpWith(dpUDP4Spec, func(s *dpSpec) {
			s.dst, s.dport, s.tags = "10.5.5.5", 5000, []dpTag{{tpid: 0x8100, vid: 9}}
		}).build(t)},
		{Output{Kind: OutPort, Port: 5, Last: true}, dpWith(dpUDP4Spec, func(s *dpSpec) { s.dst, s.dport, s.ttl = "10.5.5.5", 5000, 63 }).build(t)},
	}
	pkt := dpPacket(in, 16, 0, 1)
	var k Key
	var lay Layout
	ExtractLayout(pkt.Frame(), 1, &k, &lay)
	steps := dpRunAll(t, &prog, &pkt, &lay)
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i := range want {
		if steps[i].out != want[i].out || !bytes.Equal(steps[i].frame, want[i].frame) {
			t.Fatalf("step %d: %+v %x\nwant %+v %x", i, steps[i].out, steps[i].frame, want[i].out, want[i].frame)
		}
		if err := dpVerifyChecksums(steps[i].frame); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		acts []Action
		want error
	}{
		{"unknown port", []Action{dpOut("nope")}, ErrNoSuchPort},
		{"kernel with others", []Action{{Type: ActKernel}, dpOut("p1")}, ErrInvalid},
		{"ipv6 nw_src", []Action{{Type: ActSetNwSrc, Addr: netip.MustParseAddr("::1")}}, ErrInvalid},
		{"zero nw_dst", []Action{{Type: ActSetNwDst}}, ErrInvalid},
		{"tos with ecn", []Action{{Type: ActSetNwTos, Value: 0x03}}, ErrInvalid},
		{"tos too big", []Action{{Type: ActSetNwTos, Value: 0x100}}, ErrInvalid},
		{"ecn too big", []Action{{Type: ActSetNwEcn, Value: 4}}, ErrInvalid},
		{"push_vlan bad tpid", []Action{{Type: ActPushVLAN, Value: 0x0800}}, ErrInvalid},
		{"vid too big", []Action{{Type: ActSetVlanVID, Value: 4096}}, ErrInvalid},
		{"pcp too big", []Action{{Type: ActSetVlanPCP, Value: 8}}, ErrInvalid},
		{"unknown action", []Action{{Type: 200}}, ErrInvalid},
		{"zero action", []Action{{}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := compileProgram(tt.acts, dpPorts, true, 0); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	// A resolver answering an ofport out of range does not resolve.
	bad := dpPortMap(map[string]uint32{"zero": 0, "big": 256})
	for _, name := range []string{"zero", "big"} {
		if _, err := compileProgram([]Action{dpOut(name)}, bad, true, 0); !errors.Is(err, ErrNoSuchPort) {
			t.Fatalf("port %s: err %v", name, err)
		}
	}
}

func TestCsumReplace(t *testing.T) {
	// Incremental updates agree with recomputing from scratch, for random
	// data and random word changes.
	rnd := dpRand(1)
	for i := 0; i < 20000; i++ {
		b := make([]byte, 2+2*rnd.IntN(20))
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		if rnd.IntN(4) == 0 { // all-zero and all-ones data reach the edges
			for j := range b {
				b[j] = byte(0xff * (i & 1))
			}
		}
		c := ^dpFold(dpOnesSum(0, b))
		w := 2 * rnd.IntN(len(b)/2)
		old := binary.BigEndian.Uint16(b[w:])
		nw := uint16(rnd.Uint32())
		binary.BigEndian.PutUint16(b[w:], nw)
		got := csumReplace16(c, old, nw)
		// Valid means: data plus checksum sums to -0.
		if s := dpFold(dpOnesSum(uint32(got), b)); s != 0xffff {
			t.Fatalf("case %d: incremental checksum %#x invalid (sum %#x)", i, got, s)
		}
	}
}

// TestProgramUDPZeroChecksum: a rewrite whose UDP checksum comes out as 0
// writes 0xffff, since 0 means "no checksum" (RFC 768).
func TestProgramUDPZeroChecksum(t *testing.T) {
	for _, spec := range []dpSpec{dpUDP4Spec, dpUDP6Spec} {
		in := spec.build(t)
		var k Key
		var lay Layout
		ExtractLayout(in, 1, &k, &lay)
		// Find, from scratch, the destination port that makes the checksum 0.
		port := -1
		for p := 0; p < 65536 && port < 0; p++ {
			f := bytes.Clone(in)
			binary.BigEndian.PutUint16(f[lay.L4+2:], uint16(p))
			binary.BigEndian.PutUint16(f[lay.L4+6:], 0)
			addrs := f[lay.L3+12 : lay.L3+20] // source and destination
			if spec.v6 {
				addrs = f[lay.L3+8 : lay.L3+40]
			}
			pseudo := dpOnesSum(0, addrs) + 17 + uint32(len(f)-lay.L4)
			if ^dpFold(dpOnesSum(pseudo, f[lay.L4:])) == 0 {
				port = p
			}
		}
		if port < 0 {
			t.Fatal("no port gives checksum 0")
		}
		pkt := dpPacket(in, 0, 0, 1)
		prog := dpProgram(t, Action{Type: ActSetTpDst, Value: uint32(port)}, dpOut("p2"))
		dpRunAll(t, &prog, &pkt, &lay)
		f := pkt.Frame()
		if c := binary.BigEndian.Uint16(f[lay.L4+6:]); c != 0xffff {
			t.Fatalf("v6=%v: checksum %#x, want 0xffff", spec.v6, c)
		}
		if err := dpVerifyChecksums(f); err != nil {
			t.Fatal(err)
		}
	}
}
