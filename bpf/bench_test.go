package bpf

import (
	"os"
	"path/filepath"
	"strings"
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
//
// To compare builds of the program side by side, name other objects in
// XVS_BENCH_OBJS (space-separated .o paths, for example the committed
// xvs_bpfel.o of another commit, or one built with clang by hand): each
// runs after the committed program on the same maps (a map whose spec
// differs gets one of its own; one of records unpaged, as before the
// pages, gets the benchmark's records too) as case/name-of-the-file, and
// -count N interleaves all of them over N rounds:
//
//	git show main:bpf/xvs_bpfel.o >/tmp/main.o
//	XVS_BENCH_OBJS=/tmp/main.o go test -run '^$' -bench ProgramVerdicts -count 10 -cpu 1 ./bpf/
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
		{"forward_tp", "in_port=pa,udp,actions=mod_tp_dst:7998,output:pb"},
		{"forward_rewrite", "in_port=pa,udp,actions=mod_dl_src:02:00:00:00:00:09,mod_dl_dst:02:00:00:00:00:0a,mod_nw_tos:184,mod_tp_dst:7998,output:pb"},
	}
	progs := []namedProg{{"committed", o.objs.XvsXdp, nil}}
	for _, path := range strings.Fields(os.Getenv("XVS_BENCH_OBJS")) {
		p, recs := loadVariant(b, o, path)
		defer p.Close()
		progs = append(progs, namedProg{strings.TrimSuffix(filepath.Base(path), ".o"), p, recs})
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
					for _, p := range progs {
						if p.recs != nil {
							if err := p.recs.Put(uint32(0), &rec); err != nil {
								b.Fatal(err)
							}
						}
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
			for _, p := range progs {
				b.Run(p.name, func(b *testing.B) { benchRun(b, p.prog, frame) })
			}
		})
	}
}

type namedProg struct {
	name string
	prog *ebpf.Program
	recs *ebpf.Map // a records array of its own (an object from before the pages), or nil
}

// loadVariant loads the program of the object at path onto o's maps (a
// map whose type, key, value or size differs from o's gets one of its
// own). It returns the program's records map when that is an array of its
// own, for the caller to write the records o has into.
func loadVariant(b *testing.B, o *Objects, path string) (*ebpf.Program, *ebpf.Map) {
	b.Helper()
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		b.Fatalf("XVS_BENCH_OBJS: %v", err)
	}
	repl := o.sharedMaps()
	for name, m := range repl {
		ms := spec.Maps[name]
		if ms == nil || ms.Type != m.Type() || ms.KeySize != m.KeySize() || ms.ValueSize != m.ValueSize() || ms.MaxEntries != m.MaxEntries() {
			delete(repl, name)
		}
	}
	var v struct {
		Prog *ebpf.Program `ebpf:"xvs_xdp"`
		Recs *ebpf.Map     `ebpf:"records"`
	}
	if err := spec.LoadAndAssign(&v, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		b.Fatalf("XVS_BENCH_OBJS: load %s: %v", path, err)
	}
	if _, shared := repl[xvsMapRecords]; shared || v.Recs.Type() != ebpf.Array {
		_ = v.Recs.Close()
		return v.Prog, nil
	}
	b.Cleanup(func() { v.Recs.Close() })
	return v.Prog, v.Recs
}

// benchRun reports the program's time per run on frame, by the test run's
// clock (ns/run) and, with sysctl kernel.bpf_stats_enabled=1, by the
// kernel's run statistics (run_time_ns/run_cnt: stats-ns/run).
func benchRun(b *testing.B, prog *ebpf.Program, frame []byte) {
	b.Helper()
	s0, serr := prog.Stats()
	ret, per, err := prog.Benchmark(frame, max(b.N, 1000), b.ResetTimer)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(per.Nanoseconds()), "ns/run")
	b.ReportMetric(float64(ret), "action")
	if s1, err := prog.Stats(); serr == nil && err == nil && s1.RunCount > s0.RunCount {
		b.ReportMetric(float64((s1.Runtime-s0.Runtime).Nanoseconds())/float64(s1.RunCount-s0.RunCount), "stats-ns/run")
	}
}
