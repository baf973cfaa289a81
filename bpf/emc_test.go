package bpf

import (
	"testing"

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
