package flowtable

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func TestExtract(t *testing.T) {
	l2 := func() *dpMB { return dpMatch().dl(dpMacB, dpMacA) }
	tag100 := []dpTag{{tpid: 0x8100, pcp: 5, dei: true, vid: 100}}
	tcpOpts := dpTCP(1, 2)
	tcpOpts.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}
	ipOpts := dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	ipOpts.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
	frag := func(flags layers.IPv4Flag, off uint16) *layers.IPv4 {
		ip := dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
		ip.Flags, ip.FragOffset = flags, off
		return ip
	}
	arp := func(op uint16, psize uint8) *layers.ARP {
		a := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
			ProtAddressSize: psize, Operation: op, SourceHwAddress: dpMacA, DstHwAddress: make([]byte, 6),
			SourceProtAddress: make([]byte, psize), DstProtAddress: make([]byte, psize)}
		copy(a.SourceProtAddress, []byte{192, 168, 0, 1})
		copy(a.DstProtAddress, []byte{192, 168, 0, 2})
		return a
	}
	v6 := dpIPv6("2001:db8::1", "2001:db8::2", layers.IPProtocolTCP)
	v6.TrafficClass = 0xb9
	icmp6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}

	tests := []struct {
		name  string
		frame []byte
		want  *dpMB
		lay   Layout
	}{
		{"ipv4 tcp", dpTCP4Frame(t),
			l2().dlType(0x0800).nwProto(6).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(1234).tpDst(80),
			Layout{L3: 14, L4: 34, L3Type: L3IPv4, L4Type: L4TCP}},
		{"ipv4 tcp with options", dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcpOpts),
			l2().dlType(0x0800).nwProto(6).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(1).tpDst(2),
			Layout{L3: 14, L4: 34, L3Type: L3IPv4, L4Type: L4TCP}},
		{"ipv4 options udp", dpFrame(t, nil, layers.EthernetTypeIPv4, ipOpts, dpUDP(7, 8), dpPayload),
			l2().dlType(0x0800).nwProto(17).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(7).tpDst(8),
			Layout{L3: 14, L4: 38, L3Type: L3IPv4, L4Type: L4UDP}},
		{"ipv4 tos", func() []byte {
			ip := dpIPv4("1.2.3.4", "5.6.7.8", layers.IPProtocolUDP)
			ip.TOS = 0xb9
			return dpFrame(t, nil, layers.EthernetTypeIPv4, ip, dpUDP(1, 2))
		}(),
			l2().dlType(0x0800).nwProto(17).nwTos(0xb9).nwSrc("1.2.3.4/32").nwDst("5.6.7.8/32").tpSrc(1).tpDst(2),
			Layout{L3: 14, L4: 34, L3Type: L3IPv4, L4Type: L4UDP}},
		{"one tag, DEI set", dpFrame(t, tag100, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), dpUDP(1, 2)),
			l2().dlType(0x0800).vlanTCI(5<<13|steer.VlanPresent|100, 0xffff).nwProto(17).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(1).tpDst(2),
			Layout{L3: 18, L4: 38, L3Type: L3IPv4, L4Type: L4UDP}},
		{"one tag, DEI clear, vid 0", dpFrame(t, []dpTag{{tpid: 0x8100}}, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), dpUDP(1, 2)),
			l2().dlType(0x0800).vlanTCI(steer.VlanPresent, 0xffff).nwProto(17).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(1).tpDst(2),
			Layout{L3: 18, L4: 38, L3Type: L3IPv4, L4Type: L4UDP}},
		{"two tags", dpFrame(t, []dpTag{{tpid: 0x88a8, pcp: 1, vid: 10}, {tpid: 0x8100, pcp: 7, vid: 20}}, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), dpUDP(1, 2)),
			l2().dlType(0x0800).vlanTCI(1<<13|steer.VlanPresent|10, 0xffff).nwProto(17).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(1).tpDst(2),
			Layout{L3: 22, L4: 42, L3Type: L3IPv4, L4Type: L4UDP}},
		{"three tags: no L3", dpFrame(t, []dpTag{{tpid: 0x8100, vid: 1}, {tpid: 0x8100, vid: 2}, {tpid: 0x88a8, vid: 3}}, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), dpUDP(1, 2)),
			l2().dlType(0x88a8).vlanTCI(steer.VlanPresent|1, 0xffff),
			Layout{}},
		{"icmp echo", dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}),
			l2().dlType(0x0800).nwProto(1).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(8).tpDst(0),
			Layout{L3: 14, L4: 34, L3Type: L3IPv4, L4Type: L4ICMP}},
		{"icmp unreachable code 3", dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}),
			l2().dlType(0x0800).nwProto(1).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(3).tpDst(3),
			Layout{L3: 14, L4: 34, L3Type: L3IPv4, L4Type: L4ICMP}},
		{"ipv4 first fragment", dpFrame(t, nil, layers.EthernetTypeIPv4, frag(layers.IPv4MoreFragments, 0), dpUDP(1, 2), dpPayload),
			l2().dlType(0x0800).nwProto(17).nwFrag(steer.FragAny, 0xff).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(1).tpDst(2),
			Layout{L3: 14, L4: 34, L3Type: L3IPv4, L4Type: L4UDP}},
		{"ipv4 middle fragment", dpFrame(t, nil, layers.EthernetTypeIPv4, frag(layers.IPv4MoreFragments, 100), dpPayload),
			l2().dlType(0x0800).nwProto(17).nwFrag(steer.FragAny|steer.FragLater, 0xff).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32"),
			Layout{L3: 14, L3Type: L3IPv4}},
		{"ipv4 last fragment", dpFrame(t, nil, layers.EthernetTypeIPv4, frag(0, 100), dpPayload),
			l2().dlType(0x0800).nwProto(17).nwFrag(steer.FragAny|steer.FragLater, 0xff).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32"),
			Layout{L3: 14, L3Type: L3IPv4}},
		{"ipv4 DF is not a fragment", dpFrame(t, nil, layers.EthernetTypeIPv4, frag(layers.IPv4DontFragment, 0), dpUDP(1, 2)),
			l2().dlType(0x0800).nwProto(17).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32").tpSrc(1).tpDst(2),
			Layout{L3: 14, L4: 34, L3Type: L3IPv4, L4Type: L4UDP}},
		{"ipv4 unknown protocol", dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", 47), dpPayload),
			l2().dlType(0x0800).nwProto(47).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32"),
			Layout{L3: 14, L3Type: L3IPv4}},
		{"ipv4 icmpv6 protocol: no L4", dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", 58), dpPayload),
			l2().dlType(0x0800).nwProto(58).nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32"),
			Layout{L3: 14, L3Type: L3IPv4}},
		{"ipv6 tcp traffic class", dpFrame(t, nil, layers.EthernetTypeIPv6, v6, dpTCP(443, 5555)),
			l2().dlType(0x86dd).nwProto(6).nwTos(0xb9).nwSrc("2001:db8::1/128").nwDst("2001:db8::2/128").tpSrc(443).tpDst(5555),
			Layout{L3: 14, L4: 54, L3Type: L3IPv6, L4Type: L4TCP}},
		{"ipv6 udp, tagged", dpFrame(t, tag100, layers.EthernetTypeIPv6, dpIPv6("fe80::1", "ff02::1", layers.IPProtocolUDP), dpUDP(546, 547), dpPayload),
			l2().dlType(0x86dd).vlanTCI(5<<13|steer.VlanPresent|100, 0xffff).nwProto(17).nwSrc("fe80::1/128").nwDst("ff02::1/128").tpSrc(546).tpDst(547),
			Layout{L3: 18, L4: 58, L3Type: L3IPv6, L4Type: L4UDP}},
		{"icmpv6 echo", dpFrame(t, nil, layers.EthernetTypeIPv6, dpIPv6("2001:db8::1", "2001:db8::2", layers.IPProtocolICMPv6), icmp6, dpPayload),
			l2().dlType(0x86dd).nwProto(58).nwSrc("2001:db8::1/128").nwDst("2001:db8::2/128").tpSrc(128).tpDst(0),
			Layout{L3: 14, L4: 54, L3Type: L3IPv6, L4Type: L4ICMP}},
		{"ipv6 icmpv4 protocol: no L4", dpFrame(t, nil, layers.EthernetTypeIPv6, dpIPv6("2001:db8::1", "2001:db8::2", 1), dpPayload),
			l2().dlType(0x86dd).nwProto(1).nwSrc("2001:db8::1/128").nwDst("2001:db8::2/128"),
			Layout{L3: 14, L3Type: L3IPv6}},
		{"arp request", dpFrame(t, nil, layers.EthernetTypeARP, arp(1, 4)),
			l2().dlType(0x0806).nwProto(1).nwSrc("192.168.0.1/32").nwDst("192.168.0.2/32"),
			Layout{L3: 14, L3Type: L3ARP}},
		{"arp reply tagged", dpFrame(t, tag100, layers.EthernetTypeARP, arp(2, 4)),
			l2().dlType(0x0806).vlanTCI(5<<13|steer.VlanPresent|100, 0xffff).nwProto(2).nwSrc("192.168.0.1/32").nwDst("192.168.0.2/32"),
			Layout{L3: 18, L3Type: L3ARP}},
		{"arp opcode above 255 reads as 0", dpFrame(t, nil, layers.EthernetTypeARP, arp(0x0102, 4)),
			l2().dlType(0x0806).nwSrc("192.168.0.1/32").nwDst("192.168.0.2/32"),
			Layout{L3: 14, L3Type: L3ARP}},
		{"arp opcode 255", dpFrame(t, nil, layers.EthernetTypeARP, arp(255, 4)),
			l2().dlType(0x0806).nwProto(255).nwSrc("192.168.0.1/32").nwDst("192.168.0.2/32"),
			Layout{L3: 14, L3Type: L3ARP}},
		{"rarp is read as arp", dpFrame(t, nil, 0x8035, arp(3, 4)),
			l2().dlType(0x8035).nwProto(3).nwSrc("192.168.0.1/32").nwDst("192.168.0.2/32"),
			Layout{L3: 14, L3Type: L3ARP}},
		{"arp with 16-byte protocol addresses: L2 only", dpFrame(t, nil, layers.EthernetTypeARP, arp(1, 16)),
			l2().dlType(0x0806), Layout{}},
		{"arp truncated: L2 only", dpFrame(t, nil, layers.EthernetTypeARP, arp(1, 4))[:14+27],
			l2().dlType(0x0806), Layout{}},
		{"lldp", dpFrame(t, nil, 0x88cc, dpPayload), l2().dlType(0x88cc), Layout{}},
		{"bare ethernet header", dpFrame(t, nil, 0x1234)[:14], l2().dlType(0x1234), Layout{}},
		{"tagged frame ending after the tag", dpFrame(t, tag100, 0x1234)[:18],
			l2().dlType(0x1234).vlanTCI(5<<13|steer.VlanPresent|100, 0xffff), Layout{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want.key(7)
			if isVLANType(binary.BigEndian.Uint16(tt.frame[12:])) && isVLANType(binary.BigEndian.Uint16(tt.frame[16:])) {
				want[steer.OffFlags] |= steer.FlagVlan2
			}
			checkExtracted(t, tt.frame, want, tt.lay)
		})
	}
}

// checkExtracted checks that frame parses, from port 7, into want (with
// steer.FlagL4 when wantLay has an L4 header) and wantLay, and that
// Extract agrees with ExtractLayout.
func checkExtracted(t *testing.T, frame []byte, want Key, wantLay Layout) {
	t.Helper()
	var k Key
	var lay Layout
	if st := ExtractLayout(frame, 7, &k, &lay); st != ParseOK {
		t.Fatalf("status %v, want ok", st)
	}
	if wantLay.L4Type != L4None {
		want[steer.OffFlags] |= steer.FlagL4
	}
	if k != want {
		t.Fatalf("key\n got %x\nwant %x", k, want)
	}
	if lay != wantLay {
		t.Fatalf("layout %+v, want %+v", lay, wantLay)
	}
	var k2 Key
	if st := Extract(frame, 7, &k2); st != ParseOK || k2 != k {
		t.Fatalf("Extract differs from ExtractLayout: %v %x", st, k2)
	}
}

// TestExtractL4Bounds: the L4 header must fit in the IP payload, not merely
// in the frame (Ethernet padding follows short packets).
func TestExtractL4Bounds(t *testing.T) {
	mk := func(proto uint8, l4 []byte) []byte {
		f := make([]byte, 14+20, 200) // frame padded well beyond tot_len
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[14:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		ip[8], ip[9] = 64, proto
		f = append(f, l4...)
		return append(f, make([]byte, 60)...)
	}
	tcpHdr := func(doff uint8, n int) []byte {
		h := make([]byte, n)
		binary.BigEndian.PutUint16(h[0:], 1000)
		binary.BigEndian.PutUint16(h[2:], 2000)
		if n > 12 {
			h[12] = doff << 4
		}
		return h
	}
	tests := []struct {
		name   string
		frame  []byte
		l4     L4Type
		tpSrc  uint16
		tpDest uint16
	}{
		{"tcp 20 bytes", mk(6, tcpHdr(5, 20)), L4TCP, 1000, 2000},
		{"tcp 19 bytes", mk(6, tcpHdr(5, 19)), L4None, 0, 0},
		{"tcp doff 4", mk(6, tcpHdr(4, 20)), L4None, 0, 0},
		{"tcp doff 6 in 20 bytes", mk(6, tcpHdr(6, 20)), L4None, 0, 0},
		{"tcp doff 6 in 24 bytes", mk(6, tcpHdr(6, 24)), L4TCP, 1000, 2000},
		{"tcp doff 15 in 60 bytes", mk(6, tcpHdr(15, 60)), L4TCP, 1000, 2000},
		{"udp 8 bytes", mk(17, tcpHdr(0, 8)), L4UDP, 1000, 2000},
		{"udp 7 bytes", mk(17, tcpHdr(0, 7)), L4None, 0, 0},
		{"icmp 8 bytes", mk(1, []byte{3, 4, 0, 0, 0, 0, 0, 0}), L4ICMP, 3, 4},
		{"icmp 7 bytes: not read, as in OVS", mk(1, []byte{3, 4, 0, 0, 0, 0, 0}), L4None, 0, 0},
		{"icmp 4 bytes: not read", mk(1, []byte{3, 4, 0, 0}), L4None, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k Key
			var lay Layout
			if st := ExtractLayout(tt.frame, 1, &k, &lay); st != ParseOK {
				t.Fatalf("status %v", st)
			}
			if lay.L4Type != tt.l4 || k.TpSrc() != tt.tpSrc || k.TpDst() != tt.tpDest {
				t.Fatalf("l4 %v tp %d/%d, want %v %d/%d", lay.L4Type, k.TpSrc(), k.TpDst(), tt.l4, tt.tpSrc, tt.tpDest)
			}
			if tt.l4 == L4None && lay.L4 != 0 {
				t.Fatalf("L4 offset %d without an L4 header", lay.L4)
			}
			if k.NwProto() == 0 || lay.L3Type != L3IPv4 {
				t.Fatalf("L3 fields missing: %x", k)
			}
		})
	}
}

func TestExtractMalformed(t *testing.T) {
	good4 := dpUDP4Frame(t)
	good6 := dpFrame(t, nil, layers.EthernetTypeIPv6, dpIPv6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP), dpUDP(1, 2), dpPayload)
	tagged := dpFrame(t, []dpTag{{tpid: 0x8100, vid: 5}, {tpid: 0x88a8, vid: 6}}, layers.EthernetTypeIPv4, dpIPv4("1.1.1.1", "2.2.2.2", layers.IPProtocolUDP), dpUDP(1, 2), dpPayload)
	mod := func(f []byte, fn func(f []byte)) []byte {
		f = append([]byte(nil), f...)
		fn(f)
		return f
	}
	tests := []struct {
		name  string
		frame []byte
	}{
		{"empty", nil},
		{"13 bytes", good4[:13]},
		{"tag cut at 14", tagged[:14]},
		{"tag cut at 17", tagged[:17]},
		{"second tag cut at 18", tagged[:18]},
		{"second tag cut at 21", tagged[:21]},
		{"ipv4 header 19 bytes", good4[:14+19]},
		{"ipv4 no header", good4[:14]},
		{"ipv4 ihl 4", mod(good4, func(f []byte) { f[14] = 0x44 })},
		{"ipv4 ihl 0", mod(good4, func(f []byte) { f[14] = 0x40 })},
		{"ipv4 ihl past frame", mod(good4[:14+40], func(f []byte) { f[14] = 0x4f; binary.BigEndian.PutUint16(f[16:], 40) })},
		{"ipv4 tot_len < header", mod(good4, func(f []byte) { binary.BigEndian.PutUint16(f[16:], 19) })},
		{"ipv4 tot_len 0", mod(good4, func(f []byte) { binary.BigEndian.PutUint16(f[16:], 0) })},
		{"ipv4 tot_len > frame", mod(good4, func(f []byte) { binary.BigEndian.PutUint16(f[16:], uint16(len(f)-14+1)) })},
		{"ipv4 tot_len > frame, tagged", tagged[:len(tagged)-1]},
		{"ipv6 39 bytes", good6[:14+39]},
		{"ipv6 payload past frame", good6[:len(good6)-1]},
		{"ipv6 payload length huge", mod(good6, func(f []byte) { binary.BigEndian.PutUint16(f[18:], 0xffff) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k Key
			var lay Layout
			if st := ExtractLayout(tt.frame, 3, &k, &lay); st != ParseMalformed {
				t.Fatalf("status %v, want malformed (key %x)", st, k)
			}
		})
	}
	// The boundaries themselves are fine.
	ok := []struct {
		name  string
		frame []byte
	}{
		{"ipv4 tot_len = frame", good4},
		{"ipv4 tot_len < frame (padding)", append(append([]byte(nil), good4...), 0, 0, 0)},
		{"ipv6 payload = frame", good6},
		{"ipv4 ihl 15 = tot_len", mod(append(good4[:14:14], make([]byte, 60)...), func(f []byte) {
			f[14] = 0x4f
			binary.BigEndian.PutUint16(f[16:], 60)
		})},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			var k Key
			if st := Extract(tt.frame, 3, &k); st != ParseOK {
				t.Fatalf("status %v, want ok", st)
			}
		})
	}
}

// TestExtractTruncations cuts valid frames of every kind at every length:
// no panic, a deterministic result, and layout offsets inside the frame.
func TestExtractTruncations(t *testing.T) {
	frames := [][]byte{
		dpTCP4Frame(t), dpUDP4Frame(t),
		dpFrame(t, []dpTag{{tpid: 0x8100, vid: 1}}, layers.EthernetTypeIPv4, dpIPv4("1.1.1.1", "2.2.2.2", layers.IPProtocolTCP), dpTCP(1, 2), dpPayload),
		dpFrame(t, []dpTag{{tpid: 0x88a8, vid: 1}, {tpid: 0x8100, vid: 2}}, layers.EthernetTypeIPv6, dpIPv6("::1", "::2", layers.IPProtocolUDP), dpUDP(1, 2), dpPayload),
		dpFrame(t, nil, layers.EthernetTypeIPv6, dpIPv6("::1", "::2", layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)}, dpPayload),
		dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("1.1.1.1", "2.2.2.2", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: 0x0800}, dpPayload),
		dpFrame(t, nil, layers.EthernetTypeARP, &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: dpMacA, SourceProtAddress: []byte{1, 2, 3, 4}, DstHwAddress: dpMacB, DstProtAddress: []byte{5, 6, 7, 8}}),
	}
	for fi, f := range frames {
		for n := 0; n <= len(f); n++ {
			dpCheckExtract(t, f[:n])
			if t.Failed() {
				t.Fatalf("frame %d cut at %d", fi, n)
			}
		}
	}
}

// checkExtract runs the properties every frame must have.
func dpCheckExtract(t testing.TB, frame []byte) {
	var k1, k2 Key
	var l1, l2 Layout
	s1 := ExtractLayout(frame, 9, &k1, &l1)
	s2 := ExtractLayout(frame, 9, &k2, &l2)
	if s1 != s2 || k1 != k2 || l1 != l2 {
		t.Fatalf("not deterministic")
	}
	var k3 Key
	if s3 := Extract(frame, 9, &k3); s3 != s1 || k3 != k1 {
		t.Fatalf("Extract and ExtractLayout differ")
	}
	if k1.InPort() != 9 || k1[steer.OffFlags]&^(steer.FlagVlan2|steer.FlagL4|steer.FlagLayout) != 0 || binary.LittleEndian.Uint32(k1[60:]) != 0 {
		t.Fatalf("in_port, flags or padding wrong: %x", k1)
	}
	// Without FlagLayout the headers are where the key's tags put them,
	// which is how the XDP fast path finds them.
	if k1[steer.OffFlags]&steer.FlagLayout == 0 && s1 == ParseOK {
		l3 := ethHeaderLen
		if k1.VlanTCI() != 0 {
			l3 += vlanTagLen
			if k1[steer.OffFlags]&steer.FlagVlan2 != 0 {
				l3 += vlanTagLen
			}
		}
		if (l1.L3Type == L3IPv4 || l1.L3Type == L3IPv6) && l1.L3 != l3 ||
			l1.L3Type == L3IPv6 && l1.L4Type != L4None && l1.L4 != l3+ipv6HeaderLen {
			t.Fatalf("no FlagLayout, yet layout %+v (network header expected at %d)", l1, l3)
		}
	}
	if (k1[steer.OffFlags]&steer.FlagL4 != 0) != (l1.L4Type != L4None) {
		t.Fatalf("flags %#x with L4 %v", k1[steer.OffFlags], l1.L4Type)
	}
	if s1 != ParseOK {
		return
	}
	switch l1.L3Type {
	case L3None:
		if l1.L3 != 0 {
			t.Fatalf("L3 offset %d with no L3", l1.L3)
		}
	case L3IPv4:
		if l1.L3 < 14 || l1.L3+20 > len(frame) {
			t.Fatalf("ipv4 at %d in %d bytes", l1.L3, len(frame))
		}
	case L3IPv6:
		if l1.L3 < 14 || l1.L3+40 > len(frame) {
			t.Fatalf("ipv6 at %d in %d bytes", l1.L3, len(frame))
		}
	case L3ARP:
		if l1.L3 < 14 || l1.L3+28 > len(frame) {
			t.Fatalf("arp at %d in %d bytes", l1.L3, len(frame))
		}
	default:
		t.Fatalf("L3 type %d", l1.L3Type)
	}
	need := [...]int{L4TCP: 20, L4UDP: 8, L4ICMP: 4}
	switch l1.L4Type {
	case L4None:
		if l1.L4 != 0 || k1.TpSrc() != 0 || k1.TpDst() != 0 {
			t.Fatalf("L4 fields without an L4 header")
		}
	case L4TCP, L4UDP, L4ICMP:
		if l1.L3Type != L3IPv4 && l1.L3Type != L3IPv6 || l1.L4 <= l1.L3 || l1.L4+need[l1.L4Type] > len(frame) {
			t.Fatalf("L4 type %d at %d (L3 %d) in %d bytes", l1.L4Type, l1.L4, l1.L3, len(frame))
		}
	default:
		t.Fatalf("L4 type %d", l1.L4Type)
	}
}

// TestExtractAgreesWithGopacket decodes random well-formed frames with
// gopacket and compares the fields.
func TestExtractAgreesWithGopacket(t *testing.T) {
	frames := [][]byte{
		dpTCP4Frame(t), dpUDP4Frame(t),
		dpFrame(t, []dpTag{{tpid: 0x8100, pcp: 3, vid: 4000}}, layers.EthernetTypeIPv6, dpIPv6("2001:db8::5", "2001:db8::6", layers.IPProtocolTCP), dpTCP(9, 10)),
	}
	for i, f := range frames {
		var k Key
		if Extract(f, 1, &k) != ParseOK {
			t.Fatalf("frame %d malformed", i)
		}
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !dpEqualBytes(k[steer.OffDlDst:steer.OffDlDst+6], eth.DstMAC) || !dpEqualBytes(k[steer.OffDlSrc:steer.OffDlSrc+6], eth.SrcMAC) {
			t.Fatalf("frame %d: MACs", i)
		}
		if q, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok {
			if want := uint16(q.Priority)<<13 | steer.VlanPresent | q.VLANIdentifier; k.VlanTCI() != want {
				t.Fatalf("frame %d: tci %#x, want %#x", i, k.VlanTCI(), want)
			}
		}
		var src, dst net.IP
		if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			src, dst = ip.SrcIP, ip.DstIP
		}
		if ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			src, dst = ip.SrcIP, ip.DstIP
		}
		if !dpEqualBytes(k[steer.OffNwSrc:steer.OffNwSrc+len(src)], src) || !dpEqualBytes(k[steer.OffNwDst:steer.OffNwDst+len(dst)], dst) {
			t.Fatalf("frame %d: addresses", i)
		}
		if tl, ok := p.TransportLayer().(*layers.TCP); ok && (k.TpSrc() != uint16(tl.SrcPort) || k.TpDst() != uint16(tl.DstPort)) {
			t.Fatalf("frame %d: tcp ports", i)
		}
		if ul, ok := p.TransportLayer().(*layers.UDP); ok && (k.TpSrc() != uint16(ul.SrcPort) || k.TpDst() != uint16(ul.DstPort)) {
			t.Fatalf("frame %d: udp ports", i)
		}
	}
}

func dpEqualBytes(a, b []byte) bool { return string(a) == string(b) }

func TestExtractAllocs(t *testing.T) {
	f := dpTCP4Frame(t)
	var k Key
	var lay Layout
	if n := testing.AllocsPerRun(100, func() { ExtractLayout(f, 1, &k, &lay) }); n != 0 {
		t.Fatalf("ExtractLayout allocates %v times", n)
	}
}

// Frames Open vSwitch parses beyond what a plain Ethernet/IP parser reads:
// 802.3 with LLC/SNAP, IPv6 extension headers, short ICMP. Each case is
// also a case of the XDP program's parser (bpf/parse_test.go), which must
// agree.
func TestExtractOVSFrames(t *testing.T) {
	l2 := func() *dpMB { return dpMatch().dl(dpMacB, dpMacA) }
	ip4 := func(b *dpMB) *dpMB { return b.nwSrc("10.0.0.1/32").nwDst("10.0.0.2/32") }
	ip6 := func(b *dpMB) *dpMB { return b.nwSrc("2001:db8::1/128").nwDst("2001:db8::2/128") }
	// shifted: an LLC/SNAP header or IPv6 extension headers were walked.
	shifted := func(b *dpMB) *dpMB { b.m.Key[steer.OffFlags] |= steer.FlagLayout; return b }
	udp4 := dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), dpUDP(7, 8), dpPayload)[14:]
	udpHdr := []byte{0, 7, 0, 8, 0, 8, 0, 0}
	tcpHdr := append([]byte{0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x10, 0}, 0, 0, 0, 0)
	// ext is an IPv6 extension header with next header nh, n 8-byte units.
	ext := func(nh uint8, units int) []byte {
		h := make([]byte, units*8)
		h[0], h[1] = nh, uint8(units-1)
		return h
	}
	fragHdr := func(nh uint8, offlg uint16) []byte {
		return []byte{nh, 0, byte(offlg >> 8), byte(offlg), 0, 0, 0, 42}
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	v6 := func(next uint8, payload ...[]byte) []byte {
		return dpFrame(t, nil, layers.EthernetTypeIPv6, dpIPv6("2001:db8::1", "2001:db8::2", layers.IPProtocol(next)), gopacket.Payload(cat(payload...)))
	}
	hbhs := func(n int, last uint8) []byte {
		var out []byte
		for i := range n {
			nh := uint8(0)
			if i == n-1 {
				nh = last
			}
			out = append(out, ext(nh, 1)...)
		}
		return out
	}
	tests := []struct {
		name  string
		frame []byte
		want  *dpMB
		lay   Layout
	}{
		{"802.3 llc/snap ipv4 udp", dpSNAP(0x0800, udp4), shifted(ip4(l2().dlType(0x0800).nwProto(17)).tpSrc(7).tpDst(8)),
			Layout{L3: 22, L4: 42, L3Type: L3IPv4, L4Type: L4UDP}},
		{"802.3 llc/snap, tagged", dpTagged(dpSNAP(0x0800, udp4), 0x8100, 3<<13|9), shifted(ip4(l2().dlType(0x0800).vlanTCI(3<<13|steer.VlanPresent|9, 0xffff).nwProto(17)).tpSrc(7).tpDst(8)),
			Layout{L3: 26, L4: 46, L3Type: L3IPv4, L4Type: L4UDP}},
		{"802.3 llc/snap arp", dpSNAP(0x0806, []byte{0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 0xa, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 5, 6, 7, 8}), shifted(l2().dlType(0x0806).nwProto(2).nwSrc("1.2.3.4/32").nwDst("5.6.7.8/32")),
			Layout{L3: 22, L3Type: L3ARP}},
		{"802.3 llc/snap with a length for a type: 0x05ff", dpSNAP(0x0100, udp4), l2().dlType(0x05ff), Layout{}},
		{"802.3 llc/snap with a non-zero oui: 0x05ff", func() []byte { f := dpSNAP(0x0800, udp4); f[19] = 1; return f }(), l2().dlType(0x05ff), Layout{}},
		{"802.3 llc without snap (stp): 0x05ff", dpRaw(0x0026, []byte{0x42, 0x42, 0x03, 0, 0, 0, 0, 0}), l2().dlType(0x05ff), Layout{}},
		{"802.3 with 7 bytes after the length: 0x05ff", dpRaw(7, []byte{0xaa, 0xaa, 3, 0, 0, 0, 8}), l2().dlType(0x05ff), Layout{}},
		{"802.3 with nothing after the length: 0x05ff", dpRaw(0, nil), l2().dlType(0x05ff), Layout{}},
		{"length 0x05ff itself", dpRaw(0x05ff, nil), l2().dlType(0x05ff), Layout{}},
		{"ethertype 0x0600 is a type", dpRaw(0x0600, []byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}), l2().dlType(0x0600), Layout{}},

		{"ipv6 hop-by-hop, udp", v6(0, ext(17, 1), udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(17)).tpSrc(7).tpDst(8)),
			Layout{L3: 14, L4: 62, L3Type: L3IPv6, L4Type: L4UDP}},
		{"ipv6 hop-by-hop, dest opts (16 bytes), routing, tcp", v6(0, ext(60, 1), ext(43, 2), ext(6, 1), tcpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(6)).tpSrc(1).tpDst(2)),
			Layout{L3: 14, L4: 54 + 32, L3Type: L3IPv6, L4Type: L4TCP}},
		{"ipv6 ah (len counts 4-byte units), udp", v6(51, []byte{17, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(17)).tpSrc(7).tpDst(8)),
			Layout{L3: 14, L4: 54 + 24, L3Type: L3IPv6, L4Type: L4UDP}},
		{"ipv6 first fragment: frag bits, l4 read", v6(44, fragHdr(17, 0x0001), udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(17).nwFrag(steer.FragAny, 0xff)).tpSrc(7).tpDst(8)),
			Layout{L3: 14, L4: 62, L3Type: L3IPv6, L4Type: L4UDP}},
		{"ipv6 later fragment: nw_proto 44, no l4", v6(44, fragHdr(17, 0x0008), udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(44).nwFrag(steer.FragAny|steer.FragLater, 0xff))),
			Layout{L3: 14, L3Type: L3IPv6}},
		{"ipv6 last fragment: nw_proto 44, no l4", v6(0, ext(44, 1), fragHdr(6, 0x0100), tcpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(44).nwFrag(steer.FragAny|steer.FragLater, 0xff))),
			Layout{L3: 14, L3Type: L3IPv6}},
		{"ipv6 atomic fragment (offset 0, no M): not a fragment", v6(44, fragHdr(17, 0), udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(17)).tpSrc(7).tpDst(8)),
			Layout{L3: 14, L4: 62, L3Type: L3IPv6, L4Type: L4UDP}},
		{"ipv6 fragment header with only reserved bits: a fragment", v6(44, fragHdr(17, 0x0006), udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(17).nwFrag(steer.FragAny, 0xff)).tpSrc(7).tpDst(8)),
			Layout{L3: 14, L4: 62, L3Type: L3IPv6, L4Type: L4UDP}},
		{"ipv6 icmpv6 after hop-by-hop", v6(0, ext(58, 1), []byte{135, 0, 0, 0, 0, 0, 0, 0}), shifted(ip6(l2().dlType(0x86dd).nwProto(58)).tpSrc(135)),
			Layout{L3: 14, L4: 62, L3Type: L3IPv6, L4Type: L4ICMP}},
		{"ipv6 no next header after dest opts", v6(60, ext(59, 1)), shifted(ip6(l2().dlType(0x86dd).nwProto(59))), Layout{L3: 14, L3Type: L3IPv6}},
		{"ipv6 8 extension headers: all walked", v6(0, hbhs(8, 17), udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(17)).tpSrc(7).tpDst(8)),
			Layout{L3: 14, L4: 54 + 64, L3Type: L3IPv6, L4Type: L4UDP}},
		{"ipv6 9 extension headers: stops at the bound", v6(0, hbhs(9, 17), udpHdr), shifted(ip6(l2().dlType(0x86dd).nwProto(0))), Layout{L3: 14, L3Type: L3IPv6}},
		{"icmpv6 7 bytes: not read", v6(58, []byte{128, 0, 0, 0, 0, 0, 0}),
			ip6(l2().dlType(0x86dd).nwProto(58)), Layout{L3: 14, L3Type: L3IPv6}},
		{"icmpv6 8 bytes", v6(58, []byte{128, 0, 0, 0, 0, 0, 0, 0}),
			ip6(l2().dlType(0x86dd).nwProto(58)).tpSrc(128),
			Layout{L3: 14, L4: 54, L3Type: L3IPv6, L4Type: L4ICMP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkExtracted(t, tt.frame, tt.want.key(7), tt.lay) })
	}

	// Extension headers that do not fit make the frame malformed.
	bad := []struct {
		name  string
		frame []byte
	}{
		{"hop-by-hop of 7 bytes", v6(0, []byte{17, 0, 0, 0, 0, 0, 0})},
		{"hop-by-hop longer than the payload", v6(0, ext(17, 2)[:8], []byte{0, 0, 0, 0})},
		{"routing header claiming 16 bytes in 8", v6(43, []byte{6, 1, 0, 0, 0, 0, 0, 0})},
		{"ah claiming 24 bytes in 16", v6(51, []byte{17, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
		{"fragment header of 7 bytes", v6(44, fragHdr(17, 1)[:7])},
		{"dest opts after hop-by-hop, cut", v6(0, ext(60, 1), []byte{17, 0, 0})},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var k Key
			if st := Extract(tt.frame, 7, &k); st != ParseMalformed {
				t.Fatalf("status %v, want malformed (key %x)", st, k)
			}
		})
	}
}

// dpRaw is an Ethernet header with type/length field tl, then rest.
func dpRaw(tl uint16, rest []byte) []byte {
	f := append(append([]byte(nil), dpMacB...), dpMacA...)
	f = binary.BigEndian.AppendUint16(f, tl)
	return append(f, rest...)
}

// dpSNAP is an 802.3 frame with an LLC/SNAP header of type typ before l3.
func dpSNAP(typ uint16, l3 []byte) []byte {
	snap := []byte{0xaa, 0xaa, 0x03, 0, 0, 0, byte(typ >> 8), byte(typ)}
	return dpRaw(uint16(len(snap)+len(l3)), append(snap, l3...))
}

// dpTagged inserts a VLAN tag after the MAC addresses of f.
func dpTagged(f []byte, tpid, tci uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	out = binary.BigEndian.AppendUint16(out, tpid)
	out = binary.BigEndian.AppendUint16(out, tci)
	return append(out, f[12:]...)
}
