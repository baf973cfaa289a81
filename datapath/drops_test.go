package datapath

import (
	"encoding/json"
	"testing"

	"github.com/xvs-project/xvs/flowtable"
)

// Every reason has a name of its own, a side and a description, so a new
// one shows in JSON, dump-ports and /metrics without more code.
func TestDropReasonTable(t *testing.T) {
	seen := map[string]DropReason{}
	for r := range DropReason(NumDropReasons) {
		name := r.String()
		if name == "" || r.Help() == "" || (r.Side() != SideRx && r.Side() != SideTx) {
			t.Errorf("reason %d: name %q side %q help %q", r, name, r.Side(), r.Help())
		}
		if o, dup := seen[name]; dup {
			t.Errorf("reasons %d and %d are both %q", o, r, name)
		}
		seen[name] = r
	}
}

// Each reason a flow program gives counts under a reason of its own.
func TestProgramDrops(t *testing.T) {
	tests := []struct {
		in   flowtable.DropReason
		want DropReason
	}{
		{flowtable.DropActions, DropAction},
		{flowtable.DropDecTTLZero, DropDecTTLZero},
		{flowtable.DropPortGone, DropPortGone},
		{flowtable.DropTooBig, DropTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			if got := ProgramDrop(tt.in); got != tt.want {
				t.Fatalf("ProgramDrop(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// Drops are an object of names in JSON; names a reader does not know are
// ignored, and missing ones read as zero.
func TestDropsJSON(t *testing.T) {
	var d Drops
	d[DropNoFlow], d[DropTxRingFull], d[DropHandoffFull] = 3, 5, 7
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil || len(m) != int(NumDropReasons) || m["no_flow"] != 3 || m["tx_ring_full"] != 5 || m["handoff_full"] != 7 {
		t.Fatalf("marshal: %s (%v)", b, err)
	}
	var back Drops
	if err := json.Unmarshal(b, &back); err != nil || back != d {
		t.Fatalf("round trip: %v %v, want %v", back, err, d)
	}
	if err := json.Unmarshal([]byte(`{"no_flow":1,"from_the_future":9}`), &back); err != nil || back != (Drops{DropNoFlow: 1}) {
		t.Fatalf("unknown and missing names: %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`[1,2]`), &back); err == nil {
		t.Fatal("an array read as drops")
	}
	if got := d.Total(SideRx); got != 10 {
		t.Errorf("rx total %d, want 10", got)
	}
	if got := d.Total(""); got != 15 {
		t.Errorf("total %d, want 15", got)
	}
}
