package bpf

import (
	"strings"
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
		rk  ruleKey
		rv  ruleValue
		mr  maskRef
		mo  maskOrder
		cv  CounterValue
		tr  traceRecord
		op  steer.Op
		rec steer.Record
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
			"flow_id": unsafe.Offsetof(rv.FlowID), "packets": unsafe.Offsetof(rv.Packets), "bytes": unsafe.Offsetof(rv.Bytes),
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
			"verdict": unsafe.Offsetof(tr.Verdict), "fp": unsafe.Offsetof(tr.FP), "emc": unsafe.Offsetof(tr.EMC),
			"ingress_ifindex": unsafe.Offsetof(tr.IngressIfindex), "len": unsafe.Offsetof(tr.Len),
			"out_port": unsafe.Offsetof(tr.OutPort), "pad2": 100,
		}},
		{"xvs_op", steer.OpLen, map[string]uintptr{
			"code": unsafe.Offsetof(op.Code), "a": unsafe.Offsetof(op.A), "b": unsafe.Offsetof(op.B),
			"val": unsafe.Offsetof(op.Val), "arg": unsafe.Offsetof(op.Arg),
		}},
		{"xvs_record", steer.RecordLen, map[string]uintptr{
			"flow_id": unsafe.Offsetof(rec.Flow), "n": unsafe.Offsetof(rec.N), "dec_ttl": unsafe.Offsetof(rec.DecTTL),
			"grow": unsafe.Offsetof(rec.Grow), "flags": unsafe.Offsetof(rec.Flags), "pad": 12,
			"ops": unsafe.Offsetof(rec.Ops),
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
	if unsafe.Sizeof(op) != steer.OpLen || unsafe.Sizeof(rec) != steer.RecordLen || len(rec.Ops) != steer.MaxOps {
		t.Fatalf("Go: op %d bytes, record %d bytes with %d ops", unsafe.Sizeof(op), unsafe.Sizeof(rec), len(rec.Ops))
	}
}

// The enums of xvs.h carry the same numbers as their steer twins: the
// opcodes (a record is flowtable's ops, unchanged), the verdicts and the
// counters.
func TestEnumsMatchBTF(t *testing.T) {
	spec, err := loadXvs()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		enum string
		want map[string]uint64
	}{
		{"xvs_opcode", map[string]uint64{
			"XVS_OP_DROP": steer.OpDrop, "XVS_OP_OUTPUT": steer.OpOutput, "XVS_OP_IN_PORT": steer.OpInPort,
			"XVS_OP_GONE": steer.OpGone, "XVS_OP_KERNEL": steer.OpKernel, "XVS_OP_SET_DL_SRC": steer.OpSetDlSrc,
			"XVS_OP_SET_DL_DST": steer.OpSetDlDst, "XVS_OP_SET_NW_SRC": steer.OpSetNwSrc, "XVS_OP_SET_NW_DST": steer.OpSetNwDst,
			"XVS_OP_SET_NW_TOS": steer.OpSetNwTos, "XVS_OP_SET_TP_SRC": steer.OpSetTpSrc, "XVS_OP_SET_TP_DST": steer.OpSetTpDst,
			"XVS_OP_PUSH_VLAN": steer.OpPushVLAN, "XVS_OP_SET_VLAN_VID": steer.OpSetVlanVID,
			"XVS_OP_SET_VLAN_PCP": steer.OpSetVlanPCP, "XVS_OP_STRIP_VLAN": steer.OpStripVLAN,
			"XVS_OP_DEC_TTL": steer.OpDecTTL, "XVS_OP_USERSPACE": steer.OpUserspace,
		}},
		{"xvs_verdict", map[string]uint64{
			"XVS_VERDICT_PASS": uint64(steer.VerdictPass), "XVS_VERDICT_REDIRECT": uint64(steer.VerdictRedirect),
			"XVS_VERDICT_DROP": uint64(steer.VerdictDrop), "XVS_VERDICT_FORWARD": uint64(steer.VerdictForward),
		}},
		{"xvs_counter", func() map[string]uint64 {
			m := map[string]uint64{"XVS_CNT_MAX": uint64(steer.NumCounters)}
			for c := steer.Counter(0); c < steer.NumCounters; c++ {
				m["XVS_CNT_"+strings.ToUpper(c.String())] = uint64(c)
			}
			return m
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.enum, func(t *testing.T) {
			var e *btf.Enum
			if err := spec.Types.TypeByName(tt.enum, &e); err != nil {
				t.Fatal(err)
			}
			if len(e.Values) != len(tt.want) {
				t.Errorf("%d values in C, %d in Go", len(e.Values), len(tt.want))
			}
			for _, v := range e.Values {
				w, ok := tt.want[v.Name]
				if !ok {
					t.Errorf("%s has no Go twin", v.Name)
				} else if v.Value != w {
					t.Errorf("%s = %d in C, %d in Go", v.Name, v.Value, w)
				}
			}
		})
	}
}
