package bpf

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

const testPort = 1

type parseCase struct {
	name      string
	frame     []byte
	want      fields // port is filled in
	malformed bool
}

// setTotLen rewrites the IPv4 total length of a frame whose IPv4 header
// starts at byte 14.
func setTotLen(f []byte, n uint16) []byte {
	binary.BigEndian.PutUint16(f[16:], n)
	return f
}

func with(f []byte, off int, b byte) []byte {
	f[off] = b
	return f
}

func parseCases(tb testing.TB) []parseCase {
	l3 := fields{l2: true, dlType: 0x0800, proto: 17, tos: 0xb9, nwSrc: ip4A, nwDst: ip4B}
	udp4 := l3
	udp4.tpSrc, udp4.tpDst, udp4.flags = 1234, 53, steer.FlagL4
	proto := func(f fields, p uint8) fields { f.proto = p; return f }
	ports := func(f fields, s, d uint16) fields { f.tpSrc, f.tpDst = s, d; f.flags |= steer.FlagL4; return f }
	frag := func(f fields, fr uint8) fields { f.frag = fr; return f }
	l2only := func(t uint16) fields { return fields{l2: true, dlType: t} }
	// shifted: the parser walked an LLC/SNAP header or IPv6 extension
	// headers, so headers are not where the tags alone put them.
	shifted := func(f fields) fields { f.flags |= steer.FlagLayout; return f }

	tcp4 := func() []byte {
		ip := ipv4(layers.IPProtocolTCP)
		tc := tcp(40000, 443)
		_ = tc.SetNetworkLayerForChecksum(ip)
		return serialize(tb, eth(layers.EthernetTypeIPv4), ip, tc)
	}
	tcp4opts := func() []byte {
		ip := ipv4(layers.IPProtocolTCP)
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
		tc := tcp(40000, 443)
		_ = tc.SetNetworkLayerForChecksum(ip)
		f := serialize(tb, eth(layers.EthernetTypeIPv4), ip, tc)
		if f[14] != 0x46 {
			tb.Fatalf("router alert frame has IHL byte %#x, want 0x46", f[14])
		}
		return f
	}
	icmp4 := func(typ, code uint8) []byte {
		return serialize(tb, eth(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: 7, Seq: 1}, gopacket.Payload("ping"))
	}
	frag4 := func(flags layers.IPv4Flag, off uint16, payload gopacket.SerializableLayer) []byte {
		ip := ipv4(layers.IPProtocolUDP)
		ip.Flags, ip.FragOffset = flags, off
		if u, ok := payload.(*layers.UDP); ok {
			_ = u.SetNetworkLayerForChecksum(ip)
			return serialize(tb, eth(layers.EthernetTypeIPv4), ip, u, gopacket.Payload("frag"))
		}
		return serialize(tb, eth(layers.EthernetTypeIPv4), ip, payload)
	}
	l3v6 := fields{l2: true, dlType: 0x86dd, tos: 0x2d, nwSrc: ip6A, nwDst: ip6B}
	tcp6 := func() []byte {
		ip := ipv6(layers.IPProtocolTCP)
		tc := tcp(5555, 80)
		_ = tc.SetNetworkLayerForChecksum(ip)
		return serialize(tb, eth(layers.EthernetTypeIPv6), ip, tc)
	}
	icmp6 := func(typ, code uint8) []byte {
		ip := ipv6(layers.IPProtocolICMPv6)
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
		_ = ic.SetNetworkLayerForChecksum(ip)
		return serialize(tb, eth(layers.EthernetTypeIPv6), ip, ic, gopacket.Payload("abcdefgh"))
	}
	setPayloadLen := func(f []byte, n uint16) []byte {
		binary.BigEndian.PutUint16(f[14+4:], n)
		return f
	}
	vlan := func(outer layers.EthernetType, tags []layers.Dot1Q, rest ...gopacket.SerializableLayer) []byte {
		ls := []gopacket.SerializableLayer{eth(outer)}
		for i := range tags {
			ls = append(ls, &tags[i])
		}
		return serialize(tb, append(ls, rest...)...)
	}
	udpL := func(ip *layers.IPv4) []gopacket.SerializableLayer {
		u := udp(1234, 53)
		_ = u.SetNetworkLayerForChecksum(ip)
		return []gopacket.SerializableLayer{ip, u, gopacket.Payload("hello")}
	}
	arp := func(op uint16, htype layers.LinkType) []byte {
		return serialize(tb, eth(layers.EthernetTypeARP), &layers.ARP{
			AddrType: htype, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: macA, SourceProtAddress: ip4A.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: ip4B.AsSlice(),
		})
	}
	arpFields := func(op uint8) fields {
		return fields{l2: true, dlType: 0x0806, proto: op, nwSrc: ip4A, nwDst: ip4B}
	}
	lldp := serialize(tb, eth(0x88cc), gopacket.Payload("lldp-ish payload"))
	v6 := func(next uint8, payload ...[]byte) []byte {
		var p []byte
		for _, b := range payload {
			p = append(p, b...)
		}
		return serialize(tb, eth(layers.EthernetTypeIPv6), ipv6(layers.IPProtocol(next)), gopacket.Payload(p))
	}
	// ext is an IPv6 extension header with next header nh, units 8-byte units.
	ext := func(nh uint8, units int) []byte {
		h := make([]byte, units*8)
		h[0], h[1] = nh, uint8(units-1)
		return h
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
	fragHdr := func(nh uint8, offlg uint16) []byte {
		return []byte{nh, 0, byte(offlg >> 8), byte(offlg), 0, 0, 0, 42}
	}
	udpHdr := []byte{0, 7, 0, 8, 0, 8, 0, 0}
	tcpHdr := []byte{0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x10, 0, 0, 0, 0, 0}
	raw := func(tl uint16, rest []byte) []byte {
		f := append(append([]byte(nil), macB...), macA...)
		f = binary.BigEndian.AppendUint16(f, tl)
		return append(f, rest...)
	}
	snap := func(typ uint16, l3 []byte) []byte {
		h := []byte{0xaa, 0xaa, 0x03, 0, 0, 0, byte(typ >> 8), byte(typ)}
		return raw(uint16(len(h)+len(l3)), append(h, l3...))
	}
	tagged := func(f []byte, tpid, tci uint16) []byte {
		out := append([]byte(nil), f[:12]...)
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, tci)
		return append(out, f[12:]...)
	}

	return []parseCase{
		// IPv4
		{name: "ipv4 udp (ethernet padding after tot_len)", frame: udp4Frame(tb, 1234, 53), want: udp4},
		{name: "ipv4 tot_len equals what remains", frame: setTotLen(udp4Frame(tb, 1234, 53), 46), want: udp4},
		{name: "ipv4 tcp", frame: tcp4(), want: ports(proto(l3, 6), 40000, 443)},
		{name: "ipv4 tcp after ip options", frame: tcp4opts(), want: ports(proto(l3, 6), 40000, 443)},
		{name: "tcp data offset 4: no l4", frame: with(tcp4(), 14+20+12, 0x40), want: proto(l3, 6)},
		{name: "tcp data offset past the segment: no l4", frame: with(tcp4(), 14+20+12, 0xf0), want: proto(l3, 6)},
		{name: "tcp cut short by tot_len: no l4", frame: setTotLen(tcp4(), 20+19), want: proto(l3, 6)},
		{name: "tcp of exactly 20 bytes", frame: setTotLen(tcp4(), 20+20), want: ports(proto(l3, 6), 40000, 443)},
		{name: "udp cut short by tot_len: no l4", frame: setTotLen(udp4Frame(tb, 1234, 53), 27), want: l3},
		{name: "udp header of exactly 8 bytes", frame: setTotLen(udp4Frame(tb, 1234, 53), 28), want: udp4},
		{name: "icmp echo request", frame: icmp4(8, 0), want: ports(proto(l3, 1), 8, 0)},
		{name: "icmp port unreachable", frame: icmp4(3, 3), want: ports(proto(l3, 1), 3, 3)},
		{name: "icmp cut short by tot_len: no l4", frame: setTotLen(icmp4(3, 1), 23), want: proto(l3, 1)},
		{name: "icmp of 7 bytes: not read, as in ovs", frame: setTotLen(icmp4(3, 1), 27), want: proto(l3, 1)},
		{name: "icmp of exactly 8 bytes", frame: setTotLen(icmp4(3, 1), 28), want: ports(proto(l3, 1), 3, 1)},
		{name: "icmpv6 number over ipv4: no l4",
			frame: serialize(tb, eth(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolICMPv6), gopacket.Payload{128, 0, 0, 0, 1, 2, 3, 4}),
			want:  proto(l3, 58)},
		{name: "first fragment keeps l4", frame: frag4(layers.IPv4MoreFragments, 0, udp(1234, 53)), want: frag(udp4, steer.FragAny)},
		{name: "later fragment has no l4", frame: frag4(layers.IPv4MoreFragments, 185, gopacket.Payload{0x12, 0x34, 0x56, 0x78, 0, 8, 0, 0}),
			want: frag(l3, steer.FragAny|steer.FragLater)},
		{name: "last fragment has no l4", frame: frag4(0, 10, gopacket.Payload{0x12, 0x34, 0x56, 0x78, 0, 8, 0, 0}),
			want: frag(l3, steer.FragAny|steer.FragLater)},
		{name: "dont-fragment is not a fragment", frame: frag4(layers.IPv4DontFragment, 0, udp(1234, 53)), want: udp4},
		{name: "ipv4 header cut short", frame: udp4Frame(tb, 1234, 53)[:14+19], want: l2only(0x0800), malformed: true},
		{name: "ipv4 ihl 4", frame: with(udp4Frame(tb, 1234, 53), 14, 0x44), want: l2only(0x0800), malformed: true},
		{name: "ipv4 ihl past the frame", frame: with(udp4Frame(tb, 1234, 53), 14, 0x4f), want: l2only(0x0800), malformed: true},
		{name: "ipv4 tot_len below the header", frame: setTotLen(udp4Frame(tb, 1234, 53), 19), want: l2only(0x0800), malformed: true},
		{name: "ipv4 tot_len past the frame", frame: setTotLen(udp4Frame(tb, 1234, 53), 47), want: l2only(0x0800), malformed: true},

		// IPv6
		{name: "ipv6 tcp", frame: tcp6(), want: ports(proto(l3v6, 6), 5555, 80)},
		{name: "ipv6 udp", frame: func() []byte {
			ip := ipv6(layers.IPProtocolUDP)
			u := udp(7, 4789)
			_ = u.SetNetworkLayerForChecksum(ip)
			return serialize(tb, eth(layers.EthernetTypeIPv6), ip, u)
		}(), want: ports(proto(l3v6, 17), 7, 4789)},
		{name: "icmpv6 echo request", frame: icmp6(128, 0), want: ports(proto(l3v6, 58), 128, 0)},
		{name: "icmpv6 port unreachable", frame: icmp6(1, 4), want: ports(proto(l3v6, 58), 1, 4)},
		{name: "icmpv6 cut short by payload length: no l4", frame: setPayloadLen(icmp6(1, 4), 3), want: proto(l3v6, 58)},
		{name: "tcp cut short by payload length: no l4", frame: setPayloadLen(tcp6(), 19), want: proto(l3v6, 6)},
		{name: "icmp number over ipv6: no l4",
			frame: serialize(tb, eth(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolICMPv4), gopacket.Payload{8, 0, 0, 0}),
			want:  proto(l3v6, 1)},
		{name: "ipv6 hop-by-hop walked to udp",
			frame: serialize(tb, eth(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolIPv6HopByHop),
				gopacket.Payload{17, 0, 1, 4, 0, 0, 0, 0, 0x04, 0xd2, 0x00, 0x35, 0, 8, 0, 0}),
			want: shifted(ports(proto(l3v6, 17), 1234, 53))},
		{name: "ipv6 hop-by-hop, dest opts (16 bytes), routing, tcp",
			frame: v6(0, ext(60, 1), ext(43, 2), ext(6, 1), tcpHdr), want: shifted(ports(proto(l3v6, 6), 1, 2))},
		{name: "ipv6 ah (4-byte units), udp",
			frame: v6(51, []byte{17, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, udpHdr),
			want:  shifted(ports(proto(l3v6, 17), 7, 8))},
		{name: "ipv6 first fragment: frag bits, l4 read", frame: v6(44, fragHdr(17, 0x0001), udpHdr),
			want: shifted(frag(ports(proto(l3v6, 17), 7, 8), steer.FragAny))},
		{name: "ipv6 later fragment: nw_proto 44, no l4", frame: v6(44, fragHdr(17, 0x0008), udpHdr),
			want: shifted(frag(proto(l3v6, 44), steer.FragAny|steer.FragLater))},
		{name: "ipv6 last fragment after hop-by-hop", frame: v6(0, ext(44, 1), fragHdr(6, 0x0100), tcpHdr),
			want: shifted(frag(proto(l3v6, 44), steer.FragAny|steer.FragLater))},
		{name: "ipv6 atomic fragment: not a fragment", frame: v6(44, fragHdr(17, 0), udpHdr),
			want: shifted(ports(proto(l3v6, 17), 7, 8))},
		{name: "ipv6 fragment header with reserved bits only: a fragment", frame: v6(44, fragHdr(17, 0x0006), udpHdr),
			want: shifted(frag(ports(proto(l3v6, 17), 7, 8), steer.FragAny))},
		{name: "icmpv6 after hop-by-hop", frame: v6(0, ext(58, 1), []byte{135, 0, 0, 0, 0, 0, 0, 0}),
			want: shifted(ports(proto(l3v6, 58), 135, 0))},
		{name: "ipv6 no next header after dest opts", frame: v6(60, ext(59, 1)), want: shifted(proto(l3v6, 59))},
		{name: "ipv6 8 extension headers: all walked", frame: v6(0, hbhs(8, 17), udpHdr), want: shifted(ports(proto(l3v6, 17), 7, 8))},
		{name: "ipv6 9 extension headers: stops at the bound", frame: v6(0, hbhs(9, 17), udpHdr), want: shifted(proto(l3v6, 0))},
		{name: "ipv6 extension headers of 2048 and 800 bytes", frame: v6(0, ext(60, 256), ext(17, 100), udpHdr), want: shifted(ports(proto(l3v6, 17), 7, 8))},
		{name: "icmpv6 7 bytes: not read", frame: v6(58, []byte{128, 0, 0, 0, 0, 0, 0}), want: proto(l3v6, 58)},
		{name: "icmpv6 8 bytes", frame: v6(58, []byte{128, 0, 0, 0, 0, 0, 0, 0}), want: ports(proto(l3v6, 58), 128, 0)},
		{name: "ipv6 hop-by-hop of 7 bytes", frame: v6(0, []byte{17, 0, 0, 0, 0, 0, 0}), want: l3v6, malformed: true},
		{name: "ipv6 hop-by-hop longer than the payload", frame: v6(0, ext(17, 2)[:8], []byte{0, 0, 0, 0}), want: l3v6, malformed: true},
		{name: "ipv6 routing header claiming 16 bytes in 8", frame: v6(43, []byte{6, 1, 0, 0, 0, 0, 0, 0}), want: l3v6, malformed: true},
		{name: "ipv6 ah claiming 24 bytes in 16", frame: v6(51, make([]byte, 16)), want: l3v6, malformed: true},
		{name: "ipv6 fragment header of 7 bytes", frame: v6(44, fragHdr(17, 1)[:7]), want: l3v6, malformed: true},
		{name: "ipv6 dest opts after hop-by-hop, cut", frame: v6(0, ext(60, 1), []byte{17, 0, 0}), want: l3v6, malformed: true},
		{name: "ipv6 header cut short", frame: tcp6()[:14+39], want: l2only(0x86dd), malformed: true},
		{name: "ipv6 payload length past the frame", frame: setPayloadLen(tcp6(), 21), want: l2only(0x86dd), malformed: true},

		// VLAN
		{name: "one 802.1q tag, dei replaced by present",
			frame: vlan(layers.EthernetTypeDot1Q, []layers.Dot1Q{{Priority: 5, DropEligible: true, VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}},
				udpL(ipv4(layers.IPProtocolUDP))...),
			want: func() fields { f := udp4; f.tci = 5<<13 | steer.VlanPresent | 100; return f }()},
		{name: "one tag, pcp 7 vid 4095",
			frame: vlan(layers.EthernetTypeDot1Q, []layers.Dot1Q{{Priority: 7, VLANIdentifier: 4095, Type: 0x88cc}}, gopacket.Payload("x")),
			want:  fields{l2: true, dlType: 0x88cc, tci: 0xffff}},
		{name: "qinq: outer tag kept, l3 after both",
			frame: vlan(layers.EthernetTypeQinQ, []layers.Dot1Q{
				{Priority: 3, VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
				{Priority: 1, VLANIdentifier: 20, Type: layers.EthernetTypeIPv4}}, udpL(ipv4(layers.IPProtocolUDP))...),
			want: func() fields { f := udp4; f.tci = 3<<13 | steer.VlanPresent | 10; f.flags |= steer.FlagVlan2; return f }()},
		{name: "two 802.1q tags",
			frame: vlan(layers.EthernetTypeDot1Q, []layers.Dot1Q{
				{VLANIdentifier: 1, Type: layers.EthernetTypeDot1Q},
				{VLANIdentifier: 2, Type: layers.EthernetTypeIPv4}}, udpL(ipv4(layers.IPProtocolUDP))...),
			want: func() fields { f := udp4; f.tci = steer.VlanPresent | 1; f.flags |= steer.FlagVlan2; return f }()},
		{name: "third tag stops parsing",
			frame: vlan(layers.EthernetTypeQinQ, []layers.Dot1Q{
				{VLANIdentifier: 1, Type: layers.EthernetTypeDot1Q},
				{VLANIdentifier: 2, Type: layers.EthernetTypeDot1Q},
				{VLANIdentifier: 3, Type: layers.EthernetTypeIPv4}}, udpL(ipv4(layers.IPProtocolUDP))...),
			want: fields{l2: true, dlType: 0x8100, tci: steer.VlanPresent | 1, flags: steer.FlagVlan2}},
		{name: "vlan tag cut short",
			frame: vlan(layers.EthernetTypeDot1Q, []layers.Dot1Q{{VLANIdentifier: 9, Type: 0x88cc}})[:17],
			want:  fields{l2: true}, malformed: true},
		{name: "second vlan tag cut short",
			frame: vlan(layers.EthernetTypeDot1Q, []layers.Dot1Q{
				{VLANIdentifier: 9, Type: layers.EthernetTypeDot1Q},
				{VLANIdentifier: 2, Type: 0x88cc}})[:21],
			want: fields{l2: true, tci: steer.VlanPresent | 9}, malformed: true},
		{name: "vlan tag ending the frame",
			frame: vlan(layers.EthernetTypeDot1Q, []layers.Dot1Q{{VLANIdentifier: 9, Type: 0x88cc}})[:18],
			want:  fields{l2: true, dlType: 0x88cc, tci: steer.VlanPresent | 9}},

		// ARP
		{name: "arp request", frame: arp(1, layers.LinkTypeEthernet), want: arpFields(1)},
		{name: "arp reply", frame: arp(2, layers.LinkTypeEthernet), want: arpFields(2)},
		{name: "arp opcode above 255 reads as 0", frame: with(arp(2, layers.LinkTypeEthernet), 14+6, 0x01), want: arpFields(0)},
		{name: "arp opcode 255", frame: arp(255, layers.LinkTypeEthernet), want: arpFields(255)},
		{name: "rarp is read as arp", frame: with(with(arp(3, layers.LinkTypeEthernet), 12, 0x80), 13, 0x35),
			want: func() fields { f := arpFields(3); f.dlType = 0x8035; return f }()},
		{name: "arp over ieee 802 (htype 6): l2 only", frame: arp(1, layers.LinkTypeTokenRing), want: l2only(0x0806)},
		{name: "arp with 16-byte protocol addresses: l2 only", frame: with(arp(1, layers.LinkTypeEthernet), 14+5, 16), want: l2only(0x0806)},
		{name: "arp cut short: l2 only", frame: arp(1, layers.LinkTypeEthernet)[:14+27], want: l2only(0x0806)},

		// 802.3
		{name: "802.3 llc/snap ipv4 udp", frame: snap(0x0800, udp4Frame(tb, 1234, 53)[14:]), want: shifted(udp4)},
		{name: "802.3 llc/snap, tagged",
			frame: tagged(snap(0x0800, udp4Frame(tb, 1234, 53)[14:]), 0x8100, 3<<13|9),
			want:  shifted(func() fields { f := udp4; f.tci = 3<<13 | steer.VlanPresent | 9; return f }())},
		{name: "802.3 llc/snap arp", frame: snap(0x0806, arp(2, layers.LinkTypeEthernet)[14:]), want: shifted(arpFields(2))},
		{name: "802.3 llc/snap ipv4 cut short", frame: snap(0x0800, udp4Frame(tb, 1234, 53)[14:30]), want: shifted(l2only(0x0800)), malformed: true},
		{name: "802.3 llc/snap with a length for a type: 0x05ff", frame: snap(0x0100, udp4Frame(tb, 1234, 53)[14:]), want: l2only(0x05ff)},
		{name: "802.3 llc/snap with a non-zero oui: 0x05ff", frame: with(snap(0x0800, udp4Frame(tb, 1234, 53)[14:]), 19, 1), want: l2only(0x05ff)},
		{name: "802.3 llc without snap (stp): 0x05ff", frame: raw(0x0026, []byte{0x42, 0x42, 0x03, 0, 0, 0, 0, 0}), want: l2only(0x05ff)},
		{name: "802.3 with 7 bytes after the length: 0x05ff", frame: raw(7, []byte{0xaa, 0xaa, 3, 0, 0, 0, 8}), want: l2only(0x05ff)},
		{name: "802.3 with nothing after the length: 0x05ff", frame: raw(0, nil), want: l2only(0x05ff)},
		{name: "length 0x05ff itself", frame: raw(0x05ff, nil), want: l2only(0x05ff)},
		{name: "ethertype 0x0600 is a type", frame: raw(0x0600, []byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}), want: l2only(0x0600)},

		// Ethernet
		{name: "unknown ethertype", frame: lldp, want: l2only(0x88cc)},
		{name: "ethernet header alone", frame: lldp[:14], want: l2only(0x88cc)},
		{name: "ipv4 ethertype, no header", frame: udp4Frame(tb, 1, 2)[:14], want: l2only(0x0800), malformed: true},
		{name: "13 bytes", frame: lldp[:13], want: fields{}, malformed: true},
		{name: "1 byte", frame: lldp[:1], want: fields{}, malformed: true},
		{name: "empty frame", frame: []byte{}, want: fields{}, malformed: true},
	}
}

func TestParse(t *testing.T) {
	o := load(t, true)
	lo := loIndex(t)
	if err := o.SetPort(lo, testPort); err != nil {
		t.Fatal(err)
	}
	cases := parseCases(t)
	var want [steer.NumCounters]CounterValue
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := o.TestRun(tc.frame, lo, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.port = testPort
			wantKey := tc.want.key()
			if res.Action != ActionPass {
				t.Errorf("action %v, want pass", res.Action)
			}
			if res.Malformed != tc.malformed {
				t.Errorf("malformed %v, want %v", res.Malformed, tc.malformed)
			}
			if res.Key != wantKey {
				t.Errorf("key mismatch\n got %x\nwant %x", res.Key[:], wantKey[:])
			}
			if res.Hit || res.Visited != 0 {
				t.Errorf("no masks, yet hit %v visited %d", res.Hit, res.Visited)
			}
			// flowtable.Extract, the userspace parser, agrees bit for bit.
			var gk steer.Key
			st := flowtable.Extract(tc.frame, testPort, &gk)
			if (st == flowtable.ParseMalformed) != res.Malformed || gk != res.Key {
				t.Errorf("flowtable.Extract differs: %v\n Go %x\n XDP %x", st, gk[:], res.Key[:])
			}
			// TestRunKey sees the same.
			k, act, err := o.TestRunKey(tc.frame, lo)
			if err != nil || k != res.Key || act != res.Action {
				t.Errorf("TestRunKey: %x %v %v", k[:], act, err)
			}
		})
		n := uint64(len(tc.frame))
		for range 2 {
			want[steer.CounterRX].Packets++
			want[steer.CounterRX].Bytes += n
			c := steer.CounterPassNoMatch
			if tc.malformed {
				c = steer.CounterMalformed
			}
			want[c].Packets++
			want[c].Bytes += n
		}
	}
	if got := counters(t, o, testPort); got != want {
		t.Errorf("counters\n got %v\nwant %v", got, want)
	}
}

func TestParseUnknownPort(t *testing.T) {
	o := load(t, true)
	lo := loIndex(t)
	frame := udp4Frame(t, 1, 2)
	res, err := o.TestRun(frame, lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != ActionPass || !res.UnknownPort || res.Key != (steer.Key{}) {
		t.Fatalf("unknown ifindex: %+v", res)
	}
	want := [steer.NumCounters]uint64{steer.CounterRX: 1, steer.CounterPassNoMatch: 1}
	if got := packets(counters(t, o, 0)); got != want {
		t.Fatalf("port 0 counters %v, want %v", got, want)
	}

	// Known once SetPort names it, unknown again after DeletePort.
	if err := o.SetPort(lo, 9); err != nil {
		t.Fatal(err)
	}
	if res, err = o.TestRun(frame, lo, 0); err != nil || res.UnknownPort || res.Key.InPort() != 9 {
		t.Fatalf("after SetPort: %+v %v", res, err)
	}
	for range 2 { // deleting twice is fine
		if err := o.DeletePort(lo); err != nil {
			t.Fatal(err)
		}
	}
	if res, err = o.TestRun(frame, lo, 0); err != nil || !res.UnknownPort {
		t.Fatalf("after DeletePort: %+v %v", res, err)
	}
	if got := packets(counters(t, o, 0))[steer.CounterRX]; got != 2 {
		t.Fatalf("port 0 rx %d, want 2", got)
	}
}

func TestRunFrameSizes(t *testing.T) {
	o := load(t, true)
	lo := loIndex(t)
	if err := o.SetPort(lo, testPort); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 13, 14, 1514, MaxTestFrame} {
		f := make([]byte, n)
		copy(f, []byte{12: 0x88, 13: 0xcc}[:min(n, 14)])
		res, err := o.TestRun(f, lo, 0)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if res.Malformed != (n < 14) {
			t.Fatalf("%d bytes: malformed %v", n, res.Malformed)
		}
	}
	if got := counters(t, o, testPort)[steer.CounterRX].Bytes; got != 13+14+1514+MaxTestFrame {
		t.Fatalf("rx bytes %d: the program saw other lengths", got)
	}
	if _, err := o.TestRun(make([]byte, MaxTestFrame+1), lo, 0); err == nil {
		t.Fatal("frame over MaxTestFrame: no error")
	}
	if _, err := o.TestRun(make([]byte, 60), lo, -1); err == nil {
		t.Fatal("negative queue: no error")
	}
}

// The production program (no trace) decides the same.
func TestParseWithoutTrace(t *testing.T) {
	o := load(t, false)
	lo := loIndex(t)
	if err := o.SetPort(lo, testPort); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.TestRunKey(udp4Frame(t, 1, 2), lo); err == nil {
		t.Fatal("TestRunKey without trace: no error")
	}
	var malformed uint64
	for _, tc := range parseCases(t) {
		res, err := o.TestRun(tc.frame, lo, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.Action != ActionPass || res.Traced {
			t.Fatalf("%s: %+v", tc.name, res)
		}
		if tc.malformed {
			malformed++
		}
	}
	if got := packets(counters(t, o, testPort))[steer.CounterMalformed]; got != malformed {
		t.Fatalf("malformed counter %d, want %d", got, malformed)
	}
}
