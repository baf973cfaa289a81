package bpf

import (
	"strings"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// TestDryRunnerChangesNothing: the dry-run instance sees the live rules and
// decides as the live program does, and counts nothing, on the port or on
// the rule.
func TestDryRunnerChangesNothing(t *testing.T) {
	c := newClassifier(t)
	m := maskOf(spanDlType, spanNwProto, spanTpDst)
	r := ruleFor(c.key, 4, m, steer.MakeRank(100, 1), steer.VerdictDrop)
	r.Flow = 1
	c.put(t, r)
	c.masks(t, steer.Mask{ID: 4, Mask: m, MaxRank: steer.MakeRank(100, 1)})
	dry, err := c.o.DryRunner()
	if err != nil {
		t.Fatal(err)
	}
	defer dry.Close()
	before := counters(t, c.o, testPort)
	hitsBefore, err := c.o.RuleHits()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := dry.TestRun(c.frame, c.lo, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Action != ActionDrop || !res.Hit || res.Verdict != steer.VerdictDrop || res.MaskID != 4 || res.Key != c.key {
			t.Fatalf("dry run: %+v", res)
		}
	}
	if after := counters(t, c.o, testPort); after != before {
		t.Fatalf("dry runs counted on the port\n before %v\n after  %v", before, after)
	}
	if hits, _ := c.o.RuleHits(); len(hits) != len(hitsBefore) || hits[1] != hitsBefore[1] {
		t.Fatalf("dry runs counted on the rule: %v then %v", hitsBefore, hits)
	}
	// The live program still counts.
	c.run(t)
	if after := counters(t, c.o, testPort); after[steer.CounterDrop].Packets != before[steer.CounterDrop].Packets+1 {
		t.Fatalf("live run did not count: %v", after)
	}
}

// TestDryRunnerSharesEveryMap: a map added to the program must be shared
// with the dry-run instance, or a trace would not see what the live
// program does.
func TestDryRunnerSharesEveryMap(t *testing.T) {
	spec, err := loadXvs()
	if err != nil {
		t.Fatal(err)
	}
	shared := (&Objects{}).sharedMaps()
	for name := range spec.Maps {
		if name == xvsMapTrace || strings.HasPrefix(name, ".") {
			continue
		}
		if _, ok := shared[name]; !ok {
			t.Errorf("map %s is not shared with the dry-run instance (Objects.sharedMaps)", name)
		}
	}
}
