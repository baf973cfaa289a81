package bpf

import (
	"testing"
	"time"
)

func TestSyncRules(t *testing.T) {
	o := load(t, false)
	all := manyRules(20000)
	if err := o.PutRules(all); err != nil {
		t.Fatal(err)
	}
	// Keep every other rule of the first half and change the verdict of
	// some, so both deletes and rewrites are needed.
	var want = all[:0:0]
	for i := 0; i < 10000; i += 2 {
		r := all[i]
		if i%4 == 0 {
			r.Verdict = (r.Verdict + 1) % 3
		}
		want = append(want, r)
	}
	start := time.Now()
	if err := o.SyncRules(want); err != nil {
		t.Fatal(err)
	}
	t.Logf("synced 20000 -> %d rules in %v", len(want), time.Since(start))
	if n := countRules(t, o); n != len(want) {
		t.Fatalf("table holds %d rules, want %d", n, len(want))
	}
	for _, r := range want {
		var v ruleValue
		if err := o.objs.Rules.Lookup(&ruleKey{MaskID: r.MaskID, Key: r.Key}, &v); err != nil {
			t.Fatalf("rule %+v missing: %v", r.Key[:8], err)
		}
		if v.Verdict != uint8(r.Verdict) || v.Rank != uint64(r.Rank) {
			t.Fatalf("rule has verdict %d rank %#x, want %d %#x", v.Verdict, v.Rank, r.Verdict, r.Rank)
		}
	}
	if err := o.SyncRules(nil); err != nil {
		t.Fatal(err)
	}
	if n := countRules(t, o); n != 0 {
		t.Fatalf("table holds %d rules after syncing to none", n)
	}
}
