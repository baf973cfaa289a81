package steer

import (
	"net/netip"
	"testing"
)

func TestRankOrder(t *testing.T) {
	tests := []struct {
		name   string
		hi, lo Rank
	}{
		{"higher priority wins", MakeRank(200, 9), MakeRank(100, 1)},
		{"equal priority: earlier flow wins", MakeRank(100, 1), MakeRank(100, 2)},
		{"priority 0 vs 1", MakeRank(1, ^uint32(0)), MakeRank(0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.hi <= tt.lo {
				t.Fatalf("rank %#x should beat %#x", tt.hi, tt.lo)
			}
		})
	}
	if p := MakeRank(4242, 7).Priority(); p != 4242 {
		t.Fatalf("Priority() = %d", p)
	}
}

func TestKeyAccessors(t *testing.T) {
	var k Key
	k.SetInPort(7)
	copy(k[OffDlType:], []byte{0x08, 0x00})
	copy(k[OffNwSrc:], []byte{10, 0, 0, 1})
	copy(k[OffNwDst:], []byte{10, 0, 0, 2})
	copy(k[OffTpDst:], []byte{0x1f, 0x3f})
	k[OffNwProto] = 17
	if k.InPort() != 7 || k.DlType() != 0x0800 || k.NwProto() != 17 || k.TpDst() != 7999 {
		t.Fatalf("accessors: in_port %d dl_type %#x proto %d tp_dst %d", k.InPort(), k.DlType(), k.NwProto(), k.TpDst())
	}
	if k.NwSrc4() != netip.MustParseAddr("10.0.0.1") || k.NwDst4() != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("addresses: %v %v", k.NwSrc4(), k.NwDst4())
	}
	var m, dst Key
	copy(m[OffTpDst:], []byte{0xff, 0x00})
	k.And(&m, &dst)
	for i, b := range dst {
		want := byte(0)
		if i == OffTpDst {
			want = 0x1f
		}
		if b != want {
			t.Fatalf("And: byte %d = %#x, want %#x", i, b, want)
		}
	}
}
