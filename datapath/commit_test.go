package datapath

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xvs-project/xvs/flowtable"
)

// liveSlots counts the record slots that hold a live record.
func liveSlots(sw *Switch) int {
	sw.fast.mu.Lock()
	defer sw.fast.mu.Unlock()
	n := 0
	for _, sl := range sw.fast.slots {
		if sl.state == slotLive {
			n++
		}
	}
	return n
}

// ApplyCommit saves (commit) beside the part of the kernel sync no packet
// can see: the new flow's action record is written while commit runs, and
// nothing of the change reaches a packet before commit returns. When
// commit fails, the change is not made: the flows, the traffic and the
// live record slots are as before.
func TestCommitBesideSync(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true})
	old7100 := listenUDP(t, tp.b.NS, tp.b.ip, 7100)
	new7101 := listenUDP(t, tp.b.NS, tp.b.ip, 7101)
	const n, size = 5, 64
	errDisk := errors.New("disk full")

	for _, tt := range []struct {
		name string
		fail bool
	}{
		{"saved", false},
		{"not saved", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tp.sw.Apply(Change{Replace: true, Add: tp.flows(t, "priority=1,in_port={a},udp,actions=output:{b}")}); err != nil {
				t.Fatal(err)
			}
			before, live := flowTexts(tp.sw), liveSlots(tp.sw)
			table := tp.sw.Pipeline()
			change := Change{Add: tp.flows(t, "priority=300,in_port={a},udp,tp_dst=7100,actions=mod_tp_dst:7101,output:{b}")}
			commit := func(next *flowtable.Table) error {
				// The record is written while the state is saved...
				deadline := time.Now().Add(5 * time.Second)
				for liveSlots(tp.sw) == live {
					if time.Now().After(deadline) {
						return fmt.Errorf("no record written while committing (%d live slots)", live)
					}
					time.Sleep(time.Millisecond)
				}
				// ...and no packet meets the change yet.
				if tp.sw.Pipeline() != table {
					return errors.New("the new table is live before the commit returned")
				}
				sendUDP(t, tp.a, tp.b.ip, 7100, n, seqPayload(size), sendOpts{})
				if got := old7100.collect(n, 5*time.Second); len(got) != n {
					return fmt.Errorf("before the commit returned, %d of %d datagrams went the old way", len(got), n)
				}
				if tt.fail {
					return errDisk
				}
				return nil
			}
			_, err := tp.sw.ApplyCommit(change, commit)
			if tt.fail {
				if !errors.Is(err, errDisk) {
					t.Fatalf("apply: %v, want the commit's error", err)
				}
				if after := flowTexts(tp.sw); !slices.Equal(before, after) {
					t.Fatalf("flows changed:\nbefore %q\nafter  %q", before, after)
				}
				if got := liveSlots(tp.sw); got != live {
					t.Fatalf("%d live record slots after a failed commit, want %d", got, live)
				}
				sendUDP(t, tp.a, tp.b.ip, 7100, n, seqPayload(size), sendOpts{})
				checkSeq(t, "the old way", old7100.collect(n, 5*time.Second), n, size)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sendUDP(t, tp.a, tp.b.ip, 7100, n, seqPayload(size), sendOpts{})
			checkSeq(t, "the new way", new7101.collect(n, 5*time.Second), n, size)
		})
	}
}
