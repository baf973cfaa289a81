package bpf

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The exact-match cache answers a key again only while nothing in the
// steering changed: each primitive (PutRules, DeleteRules, SetMasks) makes
// the next run classify afresh. Drop and kernel verdicts are never cached
// (their hits are counted on the rule).
func TestExactMatchCache(t *testing.T) {
	c := newClassifier(t)
	mask := maskOf(spanTpDst)
	m := steer.Mask{ID: 0, Mask: mask, MaxRank: 500}
	redirect := ruleFor(c.key, 0, mask, 100, steer.VerdictRedirect)
	higher := ruleFor(c.key, 1, maskOf(spanTpDst, spanTpSrc), 200, steer.VerdictRedirect)
	drop := redirect
	drop.Verdict = steer.VerdictDrop

	check := func(when string, wantCached, wantHit bool, wantRank steer.Rank) {
		t.Helper()
		res := c.run(t)
		if res.Cached != wantCached || res.Hit != wantHit || wantHit && res.Rank != wantRank {
			t.Fatalf("%s: cached %v hit %v rank %d; want cached %v hit %v rank %d",
				when, res.Cached, res.Hit, res.Rank, wantCached, wantHit, wantRank)
		}
	}
	c.put(t, redirect)
	c.masks(t, m)
	check("first run", false, true, 100)
	check("again", true, true, 100)

	c.put(t, higher) // under a mask not live yet: nothing changes, but the cache is dropped
	check("after PutRules", false, true, 100)
	c.masks(t, m, steer.Mask{ID: 1, Mask: maskOf(spanTpDst, spanTpSrc), MaxRank: 200})
	check("after SetMasks", false, true, 200)
	check("again", true, true, 200)

	if err := c.o.DeleteRules([]steer.Rule{higher}); err != nil {
		t.Fatal(err)
	}
	check("after DeleteRules", false, true, 100)
	if err := c.o.DeleteRules([]steer.Rule{redirect}); err != nil {
		t.Fatal(err)
	}
	check("no rule", false, false, 0)
	check("no rule, again", true, false, 0)

	c.put(t, drop)
	check("drop", false, true, 100)
	check("drop, again", false, true, 100)
}

func TestEMCShiftFor(t *testing.T) {
	for _, tt := range []struct {
		cpus int
		want uint32
	}{
		{0, 16}, {1, 16}, {2, 16}, {3, 15}, {4, 15}, {8, 14}, {16, 13}, {32, 12}, {64, 12}, {1024, 12},
	} {
		if got := emcShiftFor(tt.cpus); got != tt.want {
			t.Errorf("emcShiftFor(%d) = %d, want %d", tt.cpus, got, tt.want)
		}
		if got := emcShiftFor(tt.cpus); tt.cpus <= 32 && uint64(max(tt.cpus, 1))<<got*emcEntryLen > emcBudget {
			t.Errorf("emcShiftFor(%d) = %d: %d bytes, over the budget", tt.cpus, got, uint64(tt.cpus)<<got*emcEntryLen)
		}
	}
}

// The cache is sized for this machine and holds that many keys: a second
// pass over twice the old size's 4096 distinct keys is answered from it.
// Each key is a flow of its own (no match: a cached result too).
func TestExactMatchCacheHoldsManyKeys(t *testing.T) {
	c := newClassifier(t)
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	shift := emcShiftFor(cpus)
	if info, err := c.o.objs.Emc.Info(); err != nil {
		t.Fatal(err)
	} else if info.MaxEntries != 1<<shift {
		t.Fatalf("emc map has %d entries, want %d for %d CPUs", info.MaxEntries, 1<<shift, cpus)
	}
	if shift < 14 {
		t.Skipf("%d CPUs: %d slots per CPU, too few for 8192 keys", cpus, 1<<shift)
	}
	cpu := pinToOneCPU(t)
	mask := maskOf(spanTpSrc)
	c.put(t, ruleFor(c.key, 0, mask, 100, steer.VerdictRedirect))
	c.masks(t, steer.Mask{ID: 0, Mask: mask, MaxRank: 100})
	const keys = 8192
	frames := make([][]byte, keys)
	for i := range frames {
		frames[i] = udp4Frame(t, uint16(10000+i), 53)
	}
	cached := 0
	for pass := 0; pass < 2; pass++ {
		for _, f := range frames {
			res, err := c.o.TestRun(f, c.lo, 0)
			if err != nil {
				t.Fatal(err)
			}
			if pass == 1 && res.Cached {
				cached++
			}
		}
	}
	// 8192 keys in 65536 slots: about 6% lose theirs to another key.
	if min := keys * 8 / 10; cached < min {
		t.Errorf("second pass: %d of %d keys answered from the cache, want at least %d", cached, keys, min)
	}
	// Filling empty slots is no conflict: the cache never stepped aside.
	if j := emcJudgeOf(t, c.o, cpu); j.Asides != 0 {
		t.Errorf("cache judge %+v: stepped aside with keys that fit", j)
	}
}

// pinToOneCPU locks the test to the first CPU it may use, and returns it:
// the cache is per CPU, so every run must be on the same one.
func pinToOneCPU(t *testing.T) int {
	t.Helper()
	runtime.LockOSThread() // never unlocked: the thread ends with the test
	var allowed, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	for cpu := 0; cpu < len(allowed)*64; cpu++ {
		if allowed.IsSet(cpu) {
			one.Set(cpu)
			if err := unix.SchedSetaffinity(0, &one); err != nil {
				t.Fatal(err)
			}
			return cpu
		}
	}
	t.Fatal("no CPU allowed")
	return 0
}

// emcJudge is struct xvs_emc_judge (emc.h).
type emcJudge struct {
	Lookups, Conflicts, Skip, Asides uint32
}

func emcJudgeOf(t *testing.T, o *Objects, cpu int) emcJudge {
	t.Helper()
	var per []emcJudge
	if err := o.objs.EmcJudge.Lookup(uint32(0), &per); err != nil {
		t.Fatal(err)
	}
	if cpu >= len(per) {
		t.Fatalf("cache judge: %d CPUs, want CPU %d", len(per), cpu)
	}
	return per[cpu]
}

// Keys far more than the slots thrash the cache: each CPU then classifies
// without it for a while (emc.h, EMC_SKIP), and takes it up again when the
// keys it sees fit: one key, run again and again, is answered from it.
func TestExactMatchCacheStepsAsideWhenThrashed(t *testing.T) {
	const window, skip = 256, 15 * 256 // EMC_WINDOW, EMC_SKIP
	c := newClassifier(t)
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	slots := 1 << emcShiftFor(cpus)
	cpu := pinToOneCPU(t)
	mask := maskOf(spanTpSrc)
	c.put(t, ruleFor(c.key, 0, mask, 100, steer.VerdictRedirect))
	c.masks(t, steer.Mask{ID: 0, Mask: mask, MaxRank: 100})

	// Twice the slots in distinct ports, round robin: once the first
	// pass filled the cache, nearly every lookup evicts another key.
	frame := udp4Frame(t, 0, 0)
	const ports = 14 + 20 // UDP source and destination ports
	keys := 2 * slots
	cachedLate := 0
	for i := 0; i < keys; i++ {
		binary.BigEndian.PutUint32(frame[ports:], uint32(i)+1)
		res, err := c.o.TestRun(frame, c.lo, 0)
		if err != nil {
			t.Fatal(err)
		}
		if i >= slots && res.Cached {
			cachedLate++
		}
	}
	j := emcJudgeOf(t, c.o, cpu)
	if j.Asides == 0 {
		t.Fatalf("cache judge %+v after %d keys over %d slots: never stepped aside", j, keys, slots)
	}
	if cachedLate > slots/4 {
		t.Errorf("%d of the last %d runs answered from the cache, want few", cachedLate, slots)
	}

	// One key from now on: at most a skip and a window (ended by the
	// thrash's lookups) pass without the cache, a window of hits turns it
	// on, and then every run is answered from it.
	binary.BigEndian.PutUint32(frame[ports:], 0xfffe_fffe)
	runs := 2*skip + 2*window
	for i := 0; i < runs+skip; i++ {
		res, err := c.o.TestRun(frame, c.lo, 0)
		if err != nil {
			t.Fatal(err)
		}
		if i >= runs {
			if !res.Cached {
				t.Fatalf("run %d of one key: not from the cache (judge %+v)", i, emcJudgeOf(t, c.o, cpu))
			}
		}
	}
	if j := emcJudgeOf(t, c.o, cpu); j.Skip != 0 {
		t.Errorf("cache judge %+v: still skipping with one key", j)
	}
}
