package bpf

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/btf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The Go twins of the C structs must match the compiled object's BTF
// member by member: xvs.h and steer.go (and this package) change together.
func TestLayoutMatchesBTF(t *testing.T) {
	spec, err := loadXvs()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSpec(spec); err != nil {
		t.Fatal(err)
	}
	var (
		rk ruleKey
		rv ruleValue
		mr maskRef
		mo maskOrder
		cv CounterValue
		tr traceRecord
	)
	tests := []struct {
		name    string
		size    uintptr
		members map[string]uintptr
	}{
		{"xvs_key", steer.KeyLen, map[string]uintptr{
			"in_port": steer.OffInPort, "dl_dst": steer.OffDlDst, "dl_src": steer.OffDlSrc,
			"dl_type": steer.OffDlType, "vlan_tci": steer.OffVlanTCI, "nw_proto": steer.OffNwProto,
			"nw_tos": steer.OffNwTos, "nw_frag": steer.OffNwFrag, "flags": steer.OffFlags, "nw_src": steer.OffNwSrc,
			"nw_dst": steer.OffNwDst, "tp_src": steer.OffTpSrc, "tp_dst": steer.OffTpDst, "pad1": 60,
		}},
		{"xvs_rule_key", unsafe.Sizeof(rk), map[string]uintptr{
			"mask_id": unsafe.Offsetof(rk.MaskID), "pad": 4, "key": unsafe.Offsetof(rk.Key),
		}},
		{"xvs_rule_value", unsafe.Sizeof(rv), map[string]uintptr{
			"rank": unsafe.Offsetof(rv.Rank), "verdict": unsafe.Offsetof(rv.Verdict), "pad": 9, "arg": unsafe.Offsetof(rv.Arg),
			"packets": unsafe.Offsetof(rv.Packets), "bytes": unsafe.Offsetof(rv.Bytes),
		}},
		{"xvs_mask_ref", unsafe.Sizeof(mr), map[string]uintptr{
			"id": unsafe.Offsetof(mr.ID), "pad": 4, "max_rank": unsafe.Offsetof(mr.MaxRank),
		}},
		{"xvs_mask_order", unsafe.Sizeof(mo), map[string]uintptr{
			"n": unsafe.Offsetof(mo.N), "pad": 4, "m": unsafe.Offsetof(mo.M),
		}},
		{"xvs_counter_value", unsafe.Sizeof(cv), map[string]uintptr{
			"packets": unsafe.Offsetof(cv.Packets), "bytes": unsafe.Offsetof(cv.Bytes),
		}},
		{"xvs_trace", unsafe.Sizeof(tr), map[string]uintptr{
			"key": unsafe.Offsetof(tr.Key), "rank": unsafe.Offsetof(tr.Rank), "status": unsafe.Offsetof(tr.Status),
			"mask_id": unsafe.Offsetof(tr.MaskID), "visited": unsafe.Offsetof(tr.Visited), "hit": unsafe.Offsetof(tr.Hit),
			"verdict": unsafe.Offsetof(tr.Verdict), "pad": 86, "ingress_ifindex": unsafe.Offsetof(tr.IngressIfindex),
			"len": unsafe.Offsetof(tr.Len),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st *btf.Struct
			if err := spec.Types.TypeByName(tt.name, &st); err != nil {
				t.Fatal(err)
			}
			if uintptr(st.Size) != tt.size {
				t.Errorf("size %d in C, %d in Go", st.Size, tt.size)
			}
			if len(st.Members) != len(tt.members) {
				t.Errorf("%d members in C, %d checked", len(st.Members), len(tt.members))
			}
			for _, m := range st.Members {
				off, ok := tt.members[m.Name]
				if !ok {
					t.Errorf("member %s not checked", m.Name)
					continue
				}
				if uintptr(m.Offset.Bytes()) != off {
					t.Errorf("member %s at %d in C, %d in Go", m.Name, m.Offset.Bytes(), off)
				}
			}
		})
	}
	if n := len(mo.M); n != steer.MaxMasks {
		t.Fatalf("mask order holds %d masks", n)
	}
}
