package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// BenchmarkProgramVerdicts measures what one run of the XDP program costs, with
// BPF_PROG_TEST_RUN's own clock (repeat runs in the kernel, no syscall per
// run), beside the least program that forwards: count in a per-CPU array
// and bpf_redirect, as bench.sh's bare XDP redirect does. Frames are not
// sent (a test run does not carry out a redirect), so this is the
// program's share of the per-packet cost only.
//
//	go test -run '^$' -bench ProgramVerdicts ./bpf/
func BenchmarkProgramVerdicts(b *testing.B) {
	o := load(b, false)
	lo := loIndex(b)
	if err := o.SetPort(lo, 1); err != nil {
		b.Fatal(err)
	}
	if err := o.SetTxPort(2, lo); err != nil {
		b.Fatal(err)
	}
	frame := udp4Frame(b, 1, 7999)
	cases := []struct {
		name string
		flow string // "" = no rule
	}{
		{"no_match", ""},
		{"drop", "in_port=pa,actions=drop"},
		{"forward", "in_port=pa,actions=output:pb"},
		{"forward_rewrite", "in_port=pa,udp,actions=mod_dl_src:02:00:00:00:00:09,mod_dl_dst:02:00:00:00:00:0a,mod_nw_tos:184,mod_tp_dst:7998,output:pb"},
	}
	b.Run("bare_redirect", func(b *testing.B) {
		runs, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
		if err != nil {
			b.Fatal(err)
		}
		defer runs.Close()
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, runs.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R1, int32(lo)).WithSymbol("out"),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			asm.Return(),
		}})
		if err != nil {
			b.Fatal(err)
		}
		defer prog.Close()
		benchRun(b, prog, frame)
	})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var rules []steer.Rule
			var masks []steer.Mask
			if c.flow != "" {
				f, err := flowtable.ParseFlow(c.flow)
				if err != nil {
					b.Fatal(err)
				}
				t, err := flowtable.NewTable().Apply(flowtable.Change{Add: []*flowtable.Flow{f}}, fpResolve)
				if err != nil {
					b.Fatal(err)
				}
				st, err := t.Steering(nil)
				if err != nil {
					b.Fatal(err)
				}
				if e := t.Entries()[0]; e.Verdict() == steer.VerdictForward {
					rec, _ := e.FastPath()
					if err := o.PutRecord(0, &rec); err != nil {
						b.Fatal(err)
					}
				}
				rules, masks = st.Rules, st.Masks
			}
			if err := o.SyncRules(rules); err != nil {
				b.Fatal(err)
			}
			if err := o.SetMasks(masks); err != nil {
				b.Fatal(err)
			}
			benchRun(b, o.objs.XvsXdp, frame)
		})
	}
}

func benchRun(b *testing.B, prog *ebpf.Program, frame []byte) {
	b.Helper()
	ret, per, err := prog.Benchmark(frame, max(b.N, 1000), b.ResetTimer)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(per.Nanoseconds()), "ns/run")
	b.ReportMetric(float64(ret), "action")
}
