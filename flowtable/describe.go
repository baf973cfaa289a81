package flowtable

import (
	"encoding/binary"
	"fmt"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// DescribeKey returns the packet a key was extracted from as match fields
// (canonical order, no in_port), e.g.
//
//	udp,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_tos=0,tp_src=1,tp_dst=53
//
// Every field the key holds for that kind of packet is there, so two
// packets that differ in a field a flow can match describe differently.
func DescribeKey(k *Key) string {
	var m Match
	full := func(off, n int) {
		for i := 0; i < n; i++ {
			m.Mask[off+i] = 0xff
		}
	}
	full(steer.OffDlDst, 6)
	full(steer.OffDlSrc, 6)
	full(steer.OffDlType, 2)
	full(steer.OffVlanTCI, 2) // a tag's VID and PCP, or dl_vlan=0xffff: untagged
	switch k.DlType() {
	case etherTypeIPv4, etherTypeIPv6:
		n := 4
		if k.DlType() == etherTypeIPv6 {
			n = 16
		}
		full(steer.OffNwSrc, n)
		full(steer.OffNwDst, n)
		full(steer.OffNwProto, 1)
		m.Mask[steer.OffNwTos] = nwTosMask
		if k[steer.OffFlags]&steer.FlagL4 != 0 {
			full(steer.OffTpSrc, 2)
			full(steer.OffTpDst, 2)
		}
	case etherTypeARP:
		full(steer.OffNwSrc, 4)
		full(steer.OffNwDst, 4)
		full(steer.OffNwProto, 1)
	}
	k.And(&m.Mask, &m.Key)
	m.Key.SetInPort(0)
	s := m.String()
	if k[steer.OffNwFrag]&steer.FragAny != 0 {
		s += ",nw_frag=first"
		if k[steer.OffNwFrag]&steer.FragLater != 0 {
			s = s[:len(s)-len("first")] + "later"
		}
	}
	return s
}

// DescribeFrame describes a frame received on inPort as DescribeKey does
// its key, and adds what a trace wants to see change that no flow matches:
// nw_ttl for IP. A frame the parser refuses is described as far as it
// parsed, and says so.
func DescribeFrame(frame []byte, inPort uint32) string {
	var k Key
	var lay Layout
	st := ExtractLayout(frame, inPort, &k, &lay)
	s := DescribeKey(&k)
	switch {
	case st == ParseMalformed:
		s += " (malformed: the parser stopped here)"
	case lay.L3Type == L3IPv4 && lay.L3+8 < len(frame):
		s += fmt.Sprintf(",nw_ttl=%d", frame[lay.L3+8])
	case lay.L3Type == L3IPv6 && lay.L3+7 < len(frame):
		s += fmt.Sprintf(",nw_ttl=%d", frame[lay.L3+7])
	}
	return s
}

// PacketFromMatch builds a frame that m matches, for a trace of a packet
// described in match syntax: Ethernet (MACs zero unless given), a VLAN tag
// when m asks for one, then IPv4 or IPv6 (TTL 64), TCP, UDP or ICMP, or
// ARP, with the values m gives (masked fields take their masked value) and
// every length and checksum right. Fields m does not give are zero.
func PacketFromMatch(m *Match) ([]byte, error) {
	k := &m.Key
	f := make([]byte, 0, 128)
	f = append(f, k[steer.OffDlDst:steer.OffDlDst+6]...)
	f = append(f, k[steer.OffDlSrc:steer.OffDlSrc+6]...)
	if tci, tm := k.VlanTCI(), binary.BigEndian.Uint16(m.Mask[steer.OffVlanTCI:]); tci&steer.VlanPresent != 0 {
		f = binary.BigEndian.AppendUint16(f, etherTypeVLAN)
		f = binary.BigEndian.AppendUint16(f, tci&^steer.VlanPresent)
	} else if tm != 0 && tm != 0xffff {
		return nil, fmt.Errorf("a VLAN match without a tag: %w", ErrInvalid)
	}
	dlType := k.DlType()
	f = binary.BigEndian.AppendUint16(f, dlType)
	l3 := len(f)
	proto := k.NwProto()
	switch dlType {
	case etherTypeIPv4:
		f = append(f, 0x45, k[steer.OffNwTos], 0, 0, 0, 0, 0, 0, 64, proto, 0, 0)
		f = append(f, k[steer.OffNwSrc:steer.OffNwSrc+4]...)
		f = append(f, k[steer.OffNwDst:steer.OffNwDst+4]...)
	case etherTypeIPv6:
		tc := k[steer.OffNwTos]
		f = append(f, 0x60|tc>>4, tc<<4, 0, 0, 0, 0, proto, 64)
		f = append(f, k[steer.OffNwSrc:steer.OffNwSrc+16]...)
		f = append(f, k[steer.OffNwDst:steer.OffNwDst+16]...)
	case etherTypeARP:
		f = append(f, 0, 1, 8, 0, 6, 4, 0, proto)
		f = append(f, k[steer.OffDlSrc:steer.OffDlSrc+6]...)
		f = append(f, k[steer.OffNwSrc:steer.OffNwSrc+4]...)
		f = append(f, 0, 0, 0, 0, 0, 0)
		f = append(f, k[steer.OffNwDst:steer.OffNwDst+4]...)
		return padFrame(f), nil
	default:
		return padFrame(f), nil
	}
	l4 := len(f)
	sp, dp := k.TpSrc(), k.TpDst()
	switch {
	case proto == ipProtoTCP:
		f = binary.BigEndian.AppendUint16(f, sp)
		f = binary.BigEndian.AppendUint16(f, dp)
		f = append(f, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0) // seq 1, SYN
	case proto == ipProtoUDP:
		f = binary.BigEndian.AppendUint16(f, sp)
		f = binary.BigEndian.AppendUint16(f, dp)
		f = append(f, 0, 8, 0, 0)
	case proto == ipProtoICMP && dlType == etherTypeIPv4, proto == ipProtoICMPv6 && dlType == etherTypeIPv6:
		f = append(f, byte(sp), byte(dp), 0, 0, 0, 0, 0, 0)
	}
	payload := len(f) - l4
	if dlType == etherTypeIPv4 {
		binary.BigEndian.PutUint16(f[l3+2:], uint16(len(f)-l3))
		binary.BigEndian.PutUint16(f[l3+10:], ^csumFold(sum16(f[l3:l4])))
	} else {
		binary.BigEndian.PutUint16(f[l3+4:], uint16(payload))
	}
	if proto == ipProtoUDP {
		binary.BigEndian.PutUint16(f[l4+4:], uint16(payload))
	}
	// The L4 checksum over the pseudo-header.
	if at := map[uint8]int{ipProtoTCP: 16, ipProtoUDP: 6, ipProtoICMP: 2, ipProtoICMPv6: 2}[proto]; at > 0 && payload > at {
		var s uint32
		if proto != ipProtoICMP {
			if dlType == etherTypeIPv4 {
				s = sum16(f[l3+12 : l3+20])
			} else {
				s = sum16(f[l3+8 : l3+40])
			}
			s += uint32(proto) + uint32(payload)
		}
		c := ^csumFold(s + sum16(f[l4:]))
		if c == 0 && proto == ipProtoUDP {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(f[l4+at:], c)
	}
	return padFrame(f), nil
}

// sum16 is the one's complement sum of b's 16-bit words.
func sum16(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// padFrame pads a frame to Ethernet's 60 bytes.
func padFrame(f []byte) []byte {
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}
