package flowtable

import (
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestPacketFromMatch: the frame built for a match is one the match
// matches, whose checksums are right, and DescribeKey says it back in a
// form that matches it too.
func TestPacketFromMatch(t *testing.T) {
	r := dpRand(42)
	built := 0
	for i := range 3000 {
		m := genMatch(r)
		if m.InPort != "" {
			m.InPort = ""
		}
		f, err := PacketFromMatch(&m)
		if err != nil {
			continue // a match no single frame can have (a masked VLAN)
		}
		var k Key
		if st := Extract(f, 0, &k); st != ParseOK {
			t.Fatalf("match %d %s: frame %x is %v", i, &m, f, st)
		}
		var masked Key
		k.And(&m.Mask, &masked)
		if masked != m.Key {
			t.Fatalf("match %s does not match its frame %x (key %x)", &m, f, k)
		}
		d, err := ParseMatch(DescribeKey(&k))
		if err != nil {
			t.Fatalf("DescribeKey(%x) = %q: %v", k, DescribeKey(&k), err)
		}
		k.And(&d.Mask, &masked)
		if masked != d.Key {
			t.Fatalf("description %q does not match its key %x", DescribeKey(&k), k)
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil && (k.DlType() == etherTypeARP ||
			(k.DlType() == etherTypeIPv4 || k.DlType() == etherTypeIPv6) && (k.NwProto() == ipProtoTCP || k.NwProto() == ipProtoUDP)) {
			t.Fatalf("frame %x of %s: %v", f, &m, el.Error())
		}
		built++
	}
	if built < 2000 {
		t.Fatalf("only %d of 3000 matches built", built)
	}
	// A UDP frame's checksum, checked by gopacket's own computation.
	m, _ := ParseMatch("udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_src=5,tp_dst=53")
	f, _ := PacketFromMatch(&m)
	u := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeUDP).(*layers.UDP)
	want := u.Checksum
	ip := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	u.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, u); err != nil {
		t.Fatal(err)
	}
	if got := uint16(buf.Bytes()[6])<<8 | uint16(buf.Bytes()[7]); got != want {
		t.Fatalf("udp checksum %#x, gopacket computes %#x", want, got)
	}
}

// DescribeKey says every field a flow can match: packets that differ only
// in ECN bits or fragment state describe differently.
func TestDescribeKeyFields(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec dpSpec
		want string
	}{
		{"ecn", dpWith(dpUDP4Spec, func(s *dpSpec) { s.tos = 0xb9 }), "nw_tos=184,nw_ecn=1,nw_frag=no"},
		{"first fragment", dpWith(dpUDP4Spec, func(s *dpSpec) { s.mf = true }), "nw_tos=0,nw_ecn=0,nw_frag=first"},
		{"later fragment", dpWith(dpUDP4Spec, func(s *dpSpec) { s.fragOff = 8 }), "nw_tos=0,nw_ecn=0,nw_frag=later"},
	} {
		var k Key
		Extract(tt.spec.build(t), 1, &k)
		if d := DescribeKey(&k); !strings.Contains(d, tt.want) {
			t.Errorf("%s: %q lacks %q", tt.name, d, tt.want)
		}
	}
}
