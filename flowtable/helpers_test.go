package flowtable

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Test helpers shared by the datapath tests: flows built straight from the
// model (no text parser), frames built with gopacket.

var (
	dpMacA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	dpMacB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

// portMap is a PortResolver over a fixed map.
func dpPortMap(m map[string]uint32) PortResolver {
	return func(name string) (uint32, bool) {
		no, ok := m[name]
		return no, ok
	}
}

var dpPorts = dpPortMap(map[string]uint32{"p1": 1, "p2": 2, "p3": 3, "p4": 4, "p5": 5})

// mb builds a Match field by field; every field set is exact-matched unless
// a mask is given.
type dpMB struct{ m Match }

func dpMatch() *dpMB { return &dpMB{} }

func (b *dpMB) setMasked(off int, val, mask []byte) *dpMB {
	for i := range val {
		b.m.Mask[off+i] |= mask[i]
		b.m.Key[off+i] = b.m.Key[off+i]&^mask[i] | val[i]&mask[i]
	}
	return b
}

func (b *dpMB) set(off int, val []byte) *dpMB {
	ones := make([]byte, len(val))
	for i := range ones {
		ones[i] = 0xff
	}
	return b.setMasked(off, val, ones)
}

func dpBE16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func (b *dpMB) inPort(name string) *dpMB       { b.m.InPort = name; return b }
func (b *dpMB) dlType(t uint16) *dpMB          { return b.set(steer.OffDlType, dpBE16(t)) }
func (b *dpMB) dlDst(m net.HardwareAddr) *dpMB { return b.set(steer.OffDlDst, m) }
func (b *dpMB) dlSrc(m net.HardwareAddr) *dpMB { return b.set(steer.OffDlSrc, m) }
func (b *dpMB) vlanTCI(tci, mask uint16) *dpMB {
	return b.setMasked(steer.OffVlanTCI, dpBE16(tci), dpBE16(mask))
}
func (b *dpMB) nwProto(p uint8) *dpMB { return b.set(steer.OffNwProto, []byte{p}) }
func (b *dpMB) nwTos(tos uint8) *dpMB { return b.set(steer.OffNwTos, []byte{tos}) }
func (b *dpMB) nwFrag(v, mask uint8) *dpMB {
	return b.setMasked(steer.OffNwFrag, []byte{v}, []byte{mask})
}
func (b *dpMB) tpSrc(p uint16) *dpMB               { return b.set(steer.OffTpSrc, dpBE16(p)) }
func (b *dpMB) tpDst(p uint16) *dpMB               { return b.set(steer.OffTpDst, dpBE16(p)) }
func (b *dpMB) nwSrc(prefix string) *dpMB          { return b.prefix(steer.OffNwSrc, prefix) }
func (b *dpMB) nwDst(prefix string) *dpMB          { return b.prefix(steer.OffNwDst, prefix) }
func (b *dpMB) get() Match                         { return b.m }
func (b *dpMB) key(inPort uint32) (k Key)          { k = b.m.Key; k.SetInPort(inPort); return k }
func (b *dpMB) nwSrcAddr(a netip.Addr) *dpMB       { return b.set(steer.OffNwSrc, a.AsSlice()) }
func (b *dpMB) nwDstAddr(a netip.Addr) *dpMB       { return b.set(steer.OffNwDst, a.AsSlice()) }
func (b *dpMB) dl(dst, src net.HardwareAddr) *dpMB { return b.dlDst(dst).dlSrc(src) }

func (b *dpMB) prefix(off int, s string) *dpMB {
	p := netip.MustParsePrefix(s)
	addr := p.Addr().AsSlice()
	mask := make([]byte, len(addr))
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return b.setMasked(off, addr, mask)
}

func dpFlow(prio uint16, m Match, acts ...Action) *Flow {
	return &Flow{Priority: prio, Match: m, Actions: acts}
}

func dpOut(port string) Action { return Action{Type: ActOutput, Port: port} }

func dpApply(tb testing.TB, t *Table, c Change, ports PortResolver) *Table {
	tb.Helper()
	nt, err := t.Apply(c, ports)
	if err != nil {
		tb.Fatalf("apply: %v", err)
	}
	return nt
}

// vlanTag is one 802.1Q tag of a test frame.
type dpTag struct {
	tpid uint16
	pcp  uint8
	dei  bool
	vid  uint16
}

// buildFrame serializes an Ethernet frame with the given tags, EtherType and
// upper layers, fixing lengths and computing checksums.
func dpFrame(tb testing.TB, tags []dpTag, etype layers.EthernetType, upper ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: dpMacA, DstMAC: dpMacB, EthernetType: etype}
	ls = append(ls, eth)
	prev := &eth.EthernetType
	for _, tg := range tags {
		*prev = layers.EthernetType(tg.tpid)
		q := &layers.Dot1Q{Priority: tg.pcp, DropEligible: tg.dei, VLANIdentifier: tg.vid, Type: etype}
		prev = &q.Type
		ls = append(ls, q)
	}
	var nl gopacket.NetworkLayer
	for _, l := range upper {
		switch v := l.(type) {
		case *layers.IPv4:
			nl = v
		case *layers.IPv6:
			nl = v
		case *layers.TCP:
			v.SetNetworkLayerForChecksum(nl)
		case *layers.UDP:
			v.SetNetworkLayerForChecksum(nl)
		case *layers.ICMPv6:
			v.SetNetworkLayerForChecksum(nl)
		}
	}
	ls = append(ls, upper...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func dpIPv4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func dpIPv6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func dpTCP(sport, dport uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1, Window: 1000, SYN: true}
}

func dpUDP(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

var dpPayload = gopacket.Payload([]byte("0123456789abcdefghijklmnopqrstuvwxyz"))

// Standard frames.
func dpTCP4Frame(tb testing.TB) []byte {
	return dpFrame(tb, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), dpTCP(1234, 80), dpPayload)
}

func dpUDP4Frame(tb testing.TB) []byte {
	return dpFrame(tb, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), dpUDP(5353, 53), dpPayload)
}

// withHeadroom copies frame into a buffer with head bytes before it and tail
// bytes after it.
func dpPacket(frame []byte, head, tail int, inPort uint32) Packet {
	buf := make([]byte, head+len(frame)+tail)
	copy(buf[head:], frame)
	return Packet{Buf: buf, Off: head, Len: len(frame), InPort: inPort}
}

func dpRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
