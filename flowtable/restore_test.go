package flowtable

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// A saved table comes back with its flows' IDs, its ID counter, and the
// flows and groups of ports that are not there (KeepIDs, NextID,
// AllowMissingPorts).
func TestApplyRestore(t *testing.T) {
	withID := func(id uint64, text string) *Flow {
		f, err := ParseFlow(text)
		if err != nil {
			t.Fatal(err)
		}
		f.ID = id
		return f
	}
	tests := []struct {
		name    string
		change  Change
		wantErr error
		ids     []uint64 // installed, by ID
		next    uint64
	}{
		{name: "ids kept", change: Change{KeepIDs: true, Add: []*Flow{withID(4, "udp,actions=output:p1"), withID(9, "tcp,actions=drop")}},
			ids: []uint64{4, 9}, next: 10},
		{name: "counter moved past deleted ids", change: Change{KeepIDs: true, NextID: 30, Add: []*Flow{withID(4, "udp,actions=output:p1")}},
			ids: []uint64{4}, next: 30},
		{name: "counter alone", change: Change{NextID: 7}, next: 7},
		{name: "counter alone in a replace", change: Change{Replace: true, KeepIDs: true, NextID: 7}, next: 7},
		{name: "ids not ascending", change: Change{KeepIDs: true, Add: []*Flow{withID(9, "udp,actions=drop"), withID(4, "tcp,actions=drop")}},
			wantErr: ErrInvalid},
		{name: "no id", change: Change{KeepIDs: true, Add: []*Flow{withID(0, "udp,actions=drop")}}, wantErr: ErrInvalid},
		{name: "missing port refused", change: Change{Add: []*Flow{withID(0, "in_port=gone,actions=output:p1")}}, wantErr: ErrNoSuchPort},
		{name: "missing output refused", change: Change{Add: []*Flow{withID(0, "udp,actions=output:gone")}}, wantErr: ErrNoSuchPort},
		{name: "missing ports allowed", change: Change{AllowMissingPorts: true, Add: []*Flow{withID(0, "in_port=gone,actions=output:p1"), withID(0, "udp,actions=output:gone")}},
			ids: []uint64{1, 2}, next: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nt, err := NewTable().Apply(tt.change, dpPorts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range nt.flows {
				got = append(got, e.Flow.ID)
			}
			if !slices.Equal(got, tt.ids) || nt.NextID() != tt.next {
				t.Fatalf("ids %v next %d, want %v next %d", got, nt.NextID(), tt.ids, tt.next)
			}
		})
	}

	// A flow whose in_port is missing matches nothing until the port comes;
	// one whose output is missing counts a drop, then outputs.
	f1, f2 := withID(0, "in_port=gone,actions=output:p1"), withID(0, "udp,actions=output:gone")
	g, err := ParseGroup("group_id=1,type=ff,bucket=watch_port:gone,actions=output:gone,bucket=watch_port:p1,actions=output:p1")
	if err != nil {
		t.Fatal(err)
	}
	nt, err := NewTable().Apply(Change{AllowMissingPorts: true, AddGroups: []*Group{g}, Add: []*Flow{f1, f2}}, dpPorts)
	if err != nil {
		t.Fatal(err)
	}
	if nt.Get(1).Live() || !nt.Get(2).Live() {
		t.Fatalf("live: in_port missing %v, output missing %v", nt.Get(1).Live(), nt.Get(2).Live())
	}
	if st := nt.GroupStats(nt.Group(1), time.Now()); st.Buckets[0].Live || !st.Buckets[1].Live {
		t.Fatalf("buckets %+v: the one watching a missing port must be dead", st.Buckets)
	}
	back := dpPortMap(map[string]uint32{"p1": 1, "gone": 7})
	rt := nt.Recompile(back)
	if !rt.Get(1).Live() || rt.Get(1).InPort != 7 {
		t.Fatalf("after the port came: live %v in_port %d", rt.Get(1).Live(), rt.Get(1).InPort)
	}
	if st := rt.GroupStats(rt.Group(1), time.Now()); !st.Buckets[0].Live {
		t.Fatalf("buckets %+v: the port came back", st.Buckets)
	}
}
