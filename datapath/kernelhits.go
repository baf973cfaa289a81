package datapath

import (
	"sync"
	"time"

	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// kernelHits carries the hit counts the XDP program keeps on drop and
// kernel rules, and per record slot for the flows it forwards itself, into
// the counters of their flows: those packets never reach a poller. A rule
// names its flow (steer.Rule.Flow), a slot holds one flow's record, so each
// count lands on exactly one flow.
type kernelHits struct {
	mu   sync.Mutex
	seen map[uint64]bpf.CounterValue // what the rules held at the last harvest, by flow
	last time.Time                   // when that was
}

// harvestEvery bounds how often the rule table is read: a harvest reads all
// of it, and a request may ask for the counters of every flow it added.
const harvestEvery = 100 * time.Millisecond

// harvestKernelHits adds what each drop or kernel rule and each fast path
// record counted since the last harvest to its flow, at most every
// harvestEvery (counters may lag by that much). A rule rewritten since then
// starts from zero again, so a count below the last one seen is all new.
func (s *Switch) harvestKernelHits() { s.harvest(false) }

// harvest is harvestKernelHits, at once when now is set: before a change
// that deletes or rewrites counted rules (their counts go with them).
func (s *Switch) harvest(now bool) {
	h := &s.hits
	h.mu.Lock()
	defer h.mu.Unlock()
	rules, records := s.kernelRules.Load() > 0, s.fast.usedSlots()
	if !rules {
		h.seen = nil // a rule that comes back starts from zero
	}
	if !rules && !records {
		return
	}
	if !now && time.Since(h.last) < harvestEvery {
		return
	}
	h.last = time.Now()
	stamp := time.Now().UnixNano()
	if records {
		s.harvestRecords(stamp)
	}
	if !rules {
		return
	}
	cur, err := s.bpf.RuleHits()
	if err != nil {
		s.log.Warn("read xdp rule hits", "err", err)
		return
	}
	t := s.table.Load()
	for id, c := range cur {
		d := c
		if last, ok := h.seen[id]; ok && c.Packets >= last.Packets {
			d.Packets -= last.Packets
			d.Bytes -= last.Bytes
		}
		if d.Packets == 0 {
			continue
		}
		if e := t.Get(id); e != nil {
			e.Hit(d.Packets, d.Bytes, stamp)
		}
	}
	h.seen = cur
}

// countKernelRules returns how many rules of st the program counts itself.
func countKernelRules(st *steer.Table) int64 {
	var n int64
	for i := range st.Rules {
		if !st.Rules[i].Verdict.ToUser() {
			n++
		}
	}
	return n
}
