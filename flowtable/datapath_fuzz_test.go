package flowtable

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable/steer"
)

func dpFuzzSeeds(f *testing.F) [][]byte {
	return [][]byte{
		dpTCP4Spec.build(f), dpUDP4Spec.build(f), dpTCP6Spec.build(f), dpUDP6Spec.build(f),
		dpWith(dpUDP4Spec, func(s *dpSpec) { s.tags = []dpTag{{tpid: 0x8100, vid: 3}} }).build(f),
		dpWith(dpTCP4Spec, func(s *dpSpec) { s.tags = []dpTag{{tpid: 0x88a8, vid: 3}, {tpid: 0x8100, vid: 4}} }).build(f),
		dpWith(dpUDP4Spec, func(s *dpSpec) { s.mf = true }).build(f),
		dpWith(dpUDP4Spec, func(s *dpSpec) { s.udpNoCsum = true }).build(f),
		dpFrame(f, nil, layers.EthernetTypeIPv4, dpIPv4("1.1.1.1", "2.2.2.2", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: 0x0800}),
		dpFrame(f, nil, layers.EthernetTypeARP, &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: dpMacA, SourceProtAddress: []byte{1, 2, 3, 4}, DstHwAddress: dpMacB, DstProtAddress: []byte{5, 6, 7, 8}}),
		// 802.3 with LLC/SNAP, IPv6 behind extension headers and a fragment header.
		dpSNAP(0x0800, dpUDP4Spec.build(f)[14:]),
		dpFrame(f, nil, layers.EthernetTypeIPv6, dpIPv6("::1", "::2", 0),
			gopacket.Payload{60, 0, 0, 0, 0, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 9, 0, 7, 0, 8, 0, 8, 0, 0}),
	}
}

// FuzzExtract: Extract never panics, is deterministic, agrees with
// ExtractLayout, keeps padding zero, and its layout stays inside the frame.
func FuzzExtract(f *testing.F) {
	for _, s := range dpFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		dpCheckExtract(t, frame)
	})
}

// dpChecksumsOK checks, from scratch, the IPv4 header checksum and the
// TCP/UDP checksum of a frame whose layout is lay. Fragments' L4 checksums
// are not checked (they cover the whole datagram).
func dpChecksumsOK(frame []byte, lay *Layout, k *Key) (ip, l4 bool) {
	ip, l4 = true, true
	var end int
	var pseudo uint32
	switch lay.L3Type {
	case L3IPv4:
		h := frame[lay.L3:]
		ihl := int(h[0]&0x0f) * 4
		ip = dpFold(dpOnesSum(0, h[:ihl])) == 0xffff
		end = lay.L3 + int(binary.BigEndian.Uint16(h[2:]))
		pseudo = dpOnesSum(0, h[12:20]) + uint32(h[9])
	case L3IPv6:
		h := frame[lay.L3:]
		end = lay.L3 + 40 + int(binary.BigEndian.Uint16(h[4:]))
		pseudo = dpOnesSum(0, h[8:40]) + uint32(h[6])
	default:
		return
	}
	if k[steer.OffNwFrag] != 0 {
		return
	}
	switch lay.L4Type {
	case L4TCP:
	case L4UDP:
		if binary.BigEndian.Uint16(frame[lay.L4+6:]) == 0 && lay.L3Type == L3IPv4 {
			return
		}
	default:
		return
	}
	seg := frame[lay.L4:end]
	l4 = dpFold(dpOnesSum(pseudo+uint32(len(seg)), seg)) == 0xffff
	return
}

// dpFuzzActions decodes a program: 4 bytes per action.
func dpFuzzActions(b []byte) []Action {
	names := []string{"p1", "p2", "p3", "gone"}
	var acts []Action
	for len(b) >= 4 && len(acts) < 16 {
		v := uint32(binary.BigEndian.Uint16(b[2:]))
		a := Action{Type: ActionType(1 + b[0]%15)}
		switch a.Type {
		case ActOutput:
			a.Port = names[b[1]%4]
		case ActSetDlSrc, ActSetDlDst:
			a.MAC = [6]byte{b[1], b[2], b[3], 1, 2, 3}
		case ActSetNwSrc, ActSetNwDst:
			a.Addr = netip.AddrFrom4([4]byte{10, b[1], b[2], b[3]})
		case ActSetNwTos:
			a.Value = v & 0xfc
		case ActPushVLAN:
			a.Value = [2]uint32{0x8100, 0x88a8}[b[1]&1]
		case ActSetVlanVID:
			a.Value = v & 0xfff
		case ActSetVlanPCP:
			a.Value = v & 7
		case ActKernel:
			a.Type = ActDecTTL
		case ActSetTpSrc, ActSetTpDst:
			a.Value = v
		}
		acts = append(acts, a)
		b = b[4:]
	}
	return acts
}

// FuzzProgram runs random programs on random frames: no panic, the frame
// stays inside its buffer, the layout stays the one a fresh parse finds, and
// checksums valid before are valid after every step.
func FuzzProgram(f *testing.F) {
	for i, s := range dpFuzzSeeds(f) {
		f.Add(s, []byte{byte(ActSetNwSrc - 1), 1, 2, 3, byte(ActSetTpDst - 1), 0, 0x1f, 0x90, byte(ActPushVLAN - 1), 0, 0, 0, 0, 1, 0, 0}, uint8(i))
		f.Add(s, []byte{byte(ActStripVLAN - 1), 0, 0, 0, byte(ActDecTTL - 1), 0, 0, 0, byte(ActSetNwTos - 1), 0, 0, 0xb8, 0, 2, 0, 0}, uint8(4))
	}
	ports := dpPortMap(map[string]uint32{"p1": 1, "p2": 2, "p3": 3})
	f.Fuzz(func(t *testing.T, frame, code []byte, head uint8) {
		var k Key
		var lay Layout
		if ExtractLayout(frame, 1, &k, &lay) != ParseOK {
			return
		}
		ipOK, l4OK := dpChecksumsOK(frame, &lay, &k)
		prog, err := compileProgram(dpFuzzActions(code), ports, false, 0)
		if err != nil {
			t.Fatalf("compile: %v", err)
		}
		pkt := dpPacket(frame, int(head%16), int(head/16), 1)
		for pc, steps := 0, 0; pc >= 0; steps++ {
			if steps > len(prog.ops)+1 {
				t.Fatal("program does not end")
			}
			_, pc = prog.Run(&pkt, &lay, pc)
			if pkt.Off < 0 || pkt.Len < 0 || pkt.Off+pkt.Len > len(pkt.Buf) {
				t.Fatalf("frame out of its buffer: off %d len %d buf %d", pkt.Off, pkt.Len, len(pkt.Buf))
			}
			// While the program knows the L3 header, a fresh parse finds
			// the same headers, unless pushed tags hide them (more than two).
			var k2 Key
			var lay2 Layout
			st := ExtractLayout(pkt.Frame(), 1, &k2, &lay2)
			if lay.L3Type != L3None && (st != ParseOK || lay2.L3Type != L3None && lay2 != lay) {
				t.Fatalf("layout %+v, fresh parse %v %+v", lay, st, lay2)
			}
			ip2, l42 := dpChecksumsOK(pkt.Frame(), &lay, &k)
			if ipOK && !ip2 || l4OK && !l42 {
				t.Fatalf("checksums broken: ip %v->%v l4 %v->%v", ipOK, ip2, l4OK, l42)
			}
		}
	})
}
