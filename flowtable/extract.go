package flowtable

import (
	"encoding/binary"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// ParseStatus says whether Extract understood a frame's headers.
type ParseStatus uint8

const (
	// ParseOK: the key is complete. Headers Extract does not know, or
	// optional headers too short to read (a TCP header cut short, an ARP
	// packet that is not Ethernet/IPv4), leave their fields zero: that is
	// still ParseOK.
	ParseOK ParseStatus = iota
	// ParseMalformed: a header the frame claims to carry is inconsistent
	// or cut short (see Extract). The XDP program passes such frames to the
	// kernel, so the datapath must not forward them: the key is
	// deterministic but incomplete, and is not meant for a lookup.
	ParseMalformed
)

func (s ParseStatus) String() string {
	if s == ParseOK {
		return "ok"
	}
	return "malformed"
}

// L3Type is the network header Extract found.
type L3Type uint8

const (
	L3None L3Type = iota
	L3IPv4
	L3IPv6
	L3ARP
)

// L4Type is the transport header Extract found and read.
type L4Type uint8

const (
	L4None L4Type = iota
	L4TCP
	L4UDP
	L4ICMP // ICMP over IPv4 or ICMPv6 over IPv6
)

// Layout says where the headers of a frame are, so that a flow's program
// rewrites them without parsing the frame again. Offsets count from the first
// byte of the frame. The program keeps a Layout current while it pushes and
// pops VLAN tags.
//
// L3 is set (and L3Type is not L3None) only when the key holds the network
// fields; L4 only when the key holds the transport fields (L4Type not
// L4None): a later IPv4 fragment or a TCP header cut short has L4Type
// L4None, and a program never touches its transport header. The whole L4
// header (20 bytes at least for TCP, 8 for UDP and ICMP) lies inside the
// frame and inside the IP payload.
type Layout struct {
	L3     int // offset of the IPv4/IPv6/ARP header
	L4     int // offset of the TCP/UDP/ICMP header
	L3Type L3Type
	L4Type L4Type
}

// EtherTypes and IP protocols Extract knows.
const (
	etherTypeIPv4  = 0x0800
	etherTypeARP   = 0x0806
	etherTypeRARP  = 0x8035
	etherTypeVLAN  = 0x8100
	etherTypeQinQ  = 0x88a8
	etherTypeIPv6  = 0x86dd
	ipProtoICMP    = 1
	ipProtoTCP     = 6
	ipProtoUDP     = 17
	ipProtoICMPv6  = 58
	ipProtoHopOpts = 0      // IPv6 hop-by-hop options
	ipProtoRouting = 43     // IPv6 routing header
	ipProtoFrag    = 44     // IPv6 fragment header
	ipProtoAH      = 51     // authentication header
	ipProtoDstOpts = 60     // IPv6 destination options
	etherTypeMin   = 0x0600 // smaller values are an 802.3 length
	dlTypeNone     = 0x05ff // dl_type of an 802.3 frame without SNAP, as OVS's FLOW_DL_TYPE_NONE
	llcSNAPLen     = 8      // LLC (AA AA 03) and SNAP (OUI 00 00 00, type)
	ipv6ExtMinLen  = 8
	// MaxIPv6ExtHeaders is how many IPv6 extension headers Extract (and
	// the XDP program, whose verifier needs a fixed bound) walks.
	MaxIPv6ExtHeaders = 8
	ethHeaderLen      = 14
	vlanTagLen        = 4
	ipv4MinLen        = 20
	ipv6HeaderLen     = 40
	tcpMinLen         = 20
	udpHeaderLen      = 8
	icmpMinLen        = 8 // type, code, checksum and the 4 bytes after, as OVS reads ICMP
	arpEthIPv4Len     = 28
	maxVlanTags       = 2
	vlanDEI           = 0x1000
	ipv4FlagMF        = 0x2000
	ipv4FragOffset    = 0x1fff
	ipv6FragOffset    = 0xfff8 // offset bits of the fragment header's offset/flags word
)

func isVLANType(t uint16) bool { return t == etherTypeVLAN || t == etherTypeQinQ }

// Extract parses frame, an Ethernet frame received on ofport inPort, into k.
// It never allocates and never panics, whatever frame holds. The XDP
// program (bpf/) implements exactly the same rules, so both sides compute
// the same key for every frame:
//
//   - Frames shorter than 14 bytes are malformed.
//   - EtherType 0x8100 or 0x88a8 is a VLAN tag; at most two tags are
//     consumed, a consumed tag cut short makes the frame malformed. The outer
//     tag's TCI is stored with its DEI bit replaced by steer.VlanPresent.
//     dl_type is the EtherType after the consumed tags; when a third tag
//     follows, dl_type is its TPID and parsing stops there.
//   - A type field below 0x0600 is an 802.3 length: with an LLC/SNAP
//     header (AA AA 03, OUI 00:00:00) whose type is 0x0600 or more,
//     dl_type is the SNAP type and the network header follows the 8 SNAP
//     bytes; otherwise dl_type is 0x05ff and nothing more is read. The
//     length itself is not checked (Open vSwitch's rules).
//   - IPv4: malformed when fewer than 20 bytes remain, IHL < 5, the header
//     is longer than what remains, tot_len is smaller than the header or
//     larger than what remains. Fragments set steer.FragAny; non-first
//     fragments also set steer.FragLater and carry no L4 fields. The L4
//     header must fit inside tot_len.
//   - IPv6: malformed when fewer than 40 bytes remain or the payload length
//     runs past the frame. Up to MaxIPv6ExtHeaders extension headers
//     (hop-by-hop 0, routing 43, fragment 44, AH 51, destination options
//     60) are walked to the transport header; nw_proto is the header after
//     them. An extension header that does not fit in the payload (8 bytes
//     at least, then its length) makes the frame malformed. A fragment
//     header whose offset/flags word is not zero sets steer.FragAny; with
//     a non-zero offset also steer.FragLater, nw_proto 44 and no L4. Past
//     the bound, nw_proto is the next extension header's number and the L4
//     fields are zero.
//   - TCP needs 20 bytes and a data offset from 5 to what the payload
//     holds; UDP 8 bytes; ICMP (IPv4 only) and ICMPv6 (IPv6 only) 8 bytes:
//     tp_src is the type, tp_dst the code. A header that does not fit leaves
//     the L4 fields zero (not malformed).
//   - ARP and RARP (0x8035) for Ethernet/IPv4 (28 bytes): nw_proto is the
//     opcode when it is at most 255 (0 otherwise), nw_src the sender's and
//     nw_dst the target's IPv4 address. Any other ARP leaves the L3 fields
//     zero.
//   - The flags byte says steer.FlagVlan2 when a second tag was consumed,
//     steer.FlagL4 when the TCP, UDP or ICMP header was read (Layout's
//     L4Type is not L4None), and steer.FlagLayout when an LLC/SNAP header
//     or IPv6 extension headers were walked.
//
// Every byte of k not set by these rules is zero. On ParseMalformed, k holds
// the fields parsed before the fault.
func Extract(frame []byte, inPort uint32, k *Key) ParseStatus {
	var lay Layout
	return ExtractLayout(frame, inPort, k, &lay)
}

// ExtractLayout is Extract that also fills lay with the header offsets the
// flow's program needs, so a packet is parsed once.
func ExtractLayout(frame []byte, inPort uint32, k *Key, lay *Layout) ParseStatus {
	var w keyWords
	*lay = Layout{}
	st := extract(frame, inPort, &w, lay)
	if lay.L4Type != L4None {
		w[2] |= uint64(steer.FlagL4) << shiftFlags
	}
	w.store(k)
	return st
}

// keyWords is a key while Extract builds it: the eight little-endian 64-bit
// words of its bytes. Extract fills the words and stores them with eight
// 8-byte writes at the end: a key written byte by byte and then read as
// words (hashing, masking) stalls the CPU's store-to-load forwarding.
type keyWords [8]uint64

func (w *keyWords) store(k *Key) {
	le := binary.LittleEndian
	le.PutUint64(k[0:], w[0])
	le.PutUint64(k[8:], w[1])
	le.PutUint64(k[16:], w[2])
	le.PutUint64(k[24:], w[3])
	le.PutUint64(k[32:], w[4])
	le.PutUint64(k[40:], w[5])
	le.PutUint64(k[48:], w[6])
	le.PutUint64(k[56:], w[7])
}

// Where the fields of a key sit in its words (see steer's offsets).
const (
	shiftVlanTCI = 8 * (steer.OffVlanTCI - 16) // in word 2
	shiftNwProto = 8 * (steer.OffNwProto - 16)
	shiftNwTos   = 8 * (steer.OffNwTos - 16)
	shiftNwFrag  = 8 * (steer.OffNwFrag - 16)
	shiftFlags   = 8 * (steer.OffFlags - 16)
	shiftTpDst   = 8 * (steer.OffTpDst - 56) // in word 7
)

func extract(frame []byte, inPort uint32, w *keyWords, lay *Layout) ParseStatus {
	le := binary.LittleEndian
	var port [4]byte
	binary.NativeEndian.PutUint32(port[:], inPort) // in_port is in host order
	w[0] = uint64(le.Uint32(port[:]))
	if len(frame) < ethHeaderLen {
		return ParseMalformed
	}
	// Key bytes 4..15 are frame bytes 0..11: dl_dst, dl_src.
	macs := le.Uint64(frame[0:8])
	w[0] |= macs << 32
	w[1] = macs>>32 | uint64(le.Uint32(frame[8:12]))<<32
	off := 12
	typ := binary.BigEndian.Uint16(frame[off:])
	for tags := 0; tags < maxVlanTags && isVLANType(typ); tags++ {
		if len(frame) < off+2+vlanTagLen {
			return ParseMalformed
		}
		if tags == 0 {
			// The TCI as on the wire, DEI replaced by "present": both are
			// bit 0x1000, that is bit 4 of the TCI's first byte.
			w[2] |= uint64(le.Uint16(frame[off+2:])|steer.VlanPresent>>8) << shiftVlanTCI
		} else {
			w[2] |= uint64(steer.FlagVlan2) << shiftFlags
		}
		typ = binary.BigEndian.Uint16(frame[off+4:])
		off += vlanTagLen
	}
	l3 := off + 2
	if typ < etherTypeMin {
		if typ, l3 = llcSNAP(frame, l3); typ != dlTypeNone {
			w[2] |= uint64(steer.FlagLayout) << shiftFlags
		}
	}
	w[2] |= uint64(typ>>8 | typ<<8) // dl_type, big endian as on the wire
	switch typ {
	case etherTypeIPv4:
		return extractIPv4(frame, l3, w, lay)
	case etherTypeIPv6:
		return extractIPv6(frame, l3, w, lay)
	case etherTypeARP, etherTypeRARP:
		extractARP(frame, l3, w, lay)
	}
	return ParseOK
}

// llcSNAP reads the LLC/SNAP header of an 802.3 frame at off: the SNAP type
// and the offset after the header, or dlTypeNone when there is none.
func llcSNAP(frame []byte, off int) (uint16, int) {
	if len(frame)-off < llcSNAPLen {
		return dlTypeNone, off
	}
	h := frame[off : off+llcSNAPLen]
	if h[0] != 0xaa || h[1] != 0xaa || h[2] != 0x03 || h[3] != 0 || h[4] != 0 || h[5] != 0 {
		return dlTypeNone, off
	}
	if t := binary.BigEndian.Uint16(h[6:]); t >= etherTypeMin {
		return t, off + llcSNAPLen
	}
	return dlTypeNone, off
}

func extractIPv4(frame []byte, l3 int, w *keyWords, lay *Layout) ParseStatus {
	if l3 > len(frame) {
		return ParseMalformed
	}
	ip := frame[l3:]
	if len(ip) < ipv4MinLen {
		return ParseMalformed
	}
	hlen := int(ip[0]&0x0f) * 4
	totLen := int(binary.BigEndian.Uint16(ip[2:]))
	if hlen < ipv4MinLen || hlen > len(ip) || totLen < hlen || totLen > len(ip) {
		return ParseMalformed
	}
	le := binary.LittleEndian
	proto := ip[9]
	w[2] |= uint64(proto)<<shiftNwProto | uint64(ip[1])<<shiftNwTos
	w[3] = uint64(le.Uint32(ip[12:16])) // nw_src
	w[5] = uint64(le.Uint32(ip[16:20])) // nw_dst
	lay.L3, lay.L3Type = l3, L3IPv4
	frag := binary.BigEndian.Uint16(ip[6:])
	if frag&(ipv4FlagMF|ipv4FragOffset) != 0 {
		if frag&ipv4FragOffset != 0 {
			w[2] |= uint64(steer.FragAny|steer.FragLater) << shiftNwFrag
			return ParseOK
		}
		w[2] |= uint64(steer.FragAny) << shiftNwFrag
	}
	if proto == ipProtoICMP {
		if totLen-hlen >= icmpMinLen {
			w[7] = uint64(ip[hlen])<<8 | uint64(ip[hlen+1])<<(shiftTpDst+8) // type, code: 16-bit big endian
			lay.L4, lay.L4Type = l3+hlen, L4ICMP
		}
		return ParseOK
	}
	extractTCPUDP(ip[hlen:totLen], proto, l3+hlen, w, lay)
	return ParseOK
}

func extractIPv6(frame []byte, l3 int, w *keyWords, lay *Layout) ParseStatus {
	if l3 > len(frame) {
		return ParseMalformed
	}
	ip := frame[l3:]
	if len(ip) < ipv6HeaderLen {
		return ParseMalformed
	}
	end := ipv6HeaderLen + int(binary.BigEndian.Uint16(ip[4:]))
	if end > len(ip) {
		return ParseMalformed
	}
	le := binary.LittleEndian
	w[3] = le.Uint64(ip[8:16])
	w[4] = le.Uint64(ip[16:24])
	w[5] = le.Uint64(ip[24:32])
	w[6] = le.Uint64(ip[32:40])
	w[2] |= uint64(ip[0]<<4|ip[1]>>4) << shiftNwTos
	l4, proto, frag, ok := walkIPv6Ext(ip[:end], ip[6])
	if !ok {
		return ParseMalformed
	}
	w[2] |= uint64(proto)<<shiftNwProto | uint64(frag)<<shiftNwFrag
	if l4 != ipv6HeaderLen {
		w[2] |= uint64(steer.FlagLayout) << shiftFlags
	}
	lay.L3, lay.L3Type = l3, L3IPv6
	if frag&steer.FragLater != 0 {
		return ParseOK
	}
	if proto == ipProtoICMPv6 {
		if end-l4 >= icmpMinLen {
			w[7] = uint64(ip[l4])<<8 | uint64(ip[l4+1])<<(shiftTpDst+8)
			lay.L4, lay.L4Type = l3+l4, L4ICMP
		}
		return ParseOK
	}
	extractTCPUDP(ip[l4:end], proto, l3+l4, w, lay)
	return ParseOK
}

// walkIPv6Ext walks the extension headers of the IPv6 packet ip (header and
// payload, no padding) starting with next header proto, at most
// MaxIPv6ExtHeaders of them, as Open vSwitch does. It returns the offset
// and number of the header after them and the nw_frag bits; ok is false
// when an extension header runs past the payload.
func walkIPv6Ext(ip []byte, proto uint8) (off int, next uint8, frag uint8, ok bool) {
	off = ipv6HeaderLen
	for range MaxIPv6ExtHeaders {
		var n int
		switch proto {
		case ipProtoHopOpts, ipProtoRouting, ipProtoDstOpts:
			if len(ip)-off < ipv6ExtMinLen {
				return off, proto, frag, false
			}
			n = (int(ip[off+1]) + 1) * 8
		case ipProtoAH:
			if len(ip)-off < ipv6ExtMinLen {
				return off, proto, frag, false
			}
			n = (int(ip[off+1]) + 2) * 4
		case ipProtoFrag:
			if len(ip)-off < ipv6ExtMinLen {
				return off, proto, frag, false
			}
			if offlg := binary.BigEndian.Uint16(ip[off+2:]); offlg != 0 {
				frag = steer.FragAny
				if offlg&ipv6FragOffset != 0 {
					return off + ipv6ExtMinLen, ipProtoFrag, frag | steer.FragLater, true
				}
			}
			n = ipv6ExtMinLen
		default:
			return off, proto, frag, true
		}
		if len(ip)-off < n {
			return off, proto, frag, false
		}
		proto = ip[off]
		off += n
	}
	return off, proto, frag, true
}

// extractTCPUDP reads the ports of a TCP or UDP header at the start of
// payload (the IP payload, bounded by the IP length), which starts at frame
// offset l4.
func extractTCPUDP(payload []byte, proto uint8, l4 int, w *keyWords, lay *Layout) {
	switch proto {
	case ipProtoTCP:
		if len(payload) < tcpMinLen {
			return
		}
		doff := int(payload[12]>>4) * 4
		if doff < tcpMinLen || doff > len(payload) {
			return
		}
		lay.L4Type = L4TCP
	case ipProtoUDP:
		if len(payload) < udpHeaderLen {
			return
		}
		lay.L4Type = L4UDP
	default:
		return
	}
	w[7] = uint64(binary.LittleEndian.Uint32(payload[0:4])) // tp_src, tp_dst as on the wire
	lay.L4 = l4
}

func extractARP(frame []byte, l3 int, w *keyWords, lay *Layout) {
	if l3 > len(frame) {
		return
	}
	arp := frame[l3:]
	if len(arp) < arpEthIPv4Len ||
		binary.BigEndian.Uint16(arp[0:]) != 1 || binary.BigEndian.Uint16(arp[2:]) != etherTypeIPv4 ||
		arp[4] != 6 || arp[5] != 4 {
		return
	}
	le := binary.LittleEndian
	if arp[6] == 0 { // opcodes above 255 read as 0, as in OVS
		w[2] |= uint64(arp[7]) << shiftNwProto
	}
	w[3] = uint64(le.Uint32(arp[14:18])) // sender IPv4
	w[5] = uint64(le.Uint32(arp[24:28])) // target IPv4
	lay.L3, lay.L3Type = l3, L3ARP
}
