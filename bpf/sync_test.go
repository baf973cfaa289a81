package bpf

import (
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable/steer"
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

// TestRuleHits: the program counts hits of drop and pass rules on the rule,
// not those of redirect rules (userspace counts those), and a rewrite of the
// rule starts its count over.
func TestRuleHits(t *testing.T) {
	o := load(t, false)
	lo := loIndex(t)
	if err := o.SetPort(lo, 1); err != nil {
		t.Fatal(err)
	}
	mask := maskOf(span{steer.OffTpDst, 2})
	drop := ruleFor(fields{tpDst: 9}.key(), 0, mask, steer.MakeRank(10, 1), steer.VerdictDrop)
	pass := ruleFor(fields{tpDst: 10}.key(), 0, mask, steer.MakeRank(10, 2), steer.VerdictPass)
	redir := ruleFor(fields{tpDst: 11}.key(), 0, mask, steer.MakeRank(10, 3), steer.VerdictRedirect)
	drop.Flow, pass.Flow, redir.Flow = 1, 2, 3
	if err := o.PutRules([]steer.Rule{drop, pass, redir}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetMasks([]steer.Mask{{ID: 0, Mask: mask, MaxRank: steer.MakeRank(10, 1)}}); err != nil {
		t.Fatal(err)
	}
	send := func(port uint16, n int) int {
		f := udp4Frame(t, 1, port)
		for i := 0; i < n; i++ {
			if _, err := o.TestRun(f, lo, 0); err != nil {
				t.Fatal(err)
			}
		}
		return len(f)
	}
	dl := send(9, 3)
	pl := send(10, 2)
	send(11, 4)
	hits, err := o.RuleHits()
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]CounterValue{
		drop.Flow: {Packets: 3, Bytes: uint64(3 * dl)},
		pass.Flow: {Packets: 2, Bytes: uint64(2 * pl)},
	}
	if len(hits) != len(want) || hits[drop.Flow] != want[drop.Flow] || hits[pass.Flow] != want[pass.Flow] {
		t.Fatalf("hits %+v, want %+v", hits, want)
	}
	if err := o.PutRules([]steer.Rule{drop}); err != nil {
		t.Fatal(err)
	}
	if hits, err = o.RuleHits(); err != nil || hits[drop.Flow].Packets != 0 {
		t.Fatalf("after a rewrite the drop rule has %+v (%v), want no hits", hits[drop.Flow], err)
	}
}
