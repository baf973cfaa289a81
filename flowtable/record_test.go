package flowtable

import (
	"strings"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Whether a flow runs in XDP is decided by compiling its program to a
// record; these are the reasons it does not, and what a record holds.
func TestFastPathDecision(t *testing.T) {
	ports := dpPortMap(map[string]uint32{"p1": 1, "p2": 2})
	tests := []struct {
		flow    string
		verdict steer.Verdict
		reason  string
		rec     steer.Record // N, DecTTL, Grow, Flags; the ops are checked by count
	}{
		{"actions=output:p1", steer.VerdictForward, "", steer.Record{N: 1}},
		{"actions=in_port", steer.VerdictForward, "", steer.Record{N: 1}},
		{"udp,actions=mod_tp_dst:1,mod_nw_src:10.0.0.1,dec_ttl,dec_ttl,output:p2", steer.VerdictForward, "",
			steer.Record{N: 5, DecTTL: 2, Flags: steer.RecL4 | steer.RecTp}},
		{"ip,actions=mod_nw_dst:10.0.0.1,output:p2", steer.VerdictForward, "", steer.Record{N: 2, Flags: steer.RecL4}},
		{"actions=push_vlan:0x8100,mod_vlan_vid:3,mod_vlan_pcp:1,strip_vlan,output:p1", steer.VerdictForward, "",
			steer.Record{N: 5, Grow: 12}},
		{"actions=drop", steer.VerdictDrop, "", steer.Record{}},
		{"actions=kernel", steer.VerdictPass, "", steer.Record{}},
		{"actions=output:p1,output:p2", steer.VerdictRedirect, steer.ReasonOutputs, steer.Record{}},
		{"actions=mod_dl_src:02:00:00:00:00:01", steer.VerdictRedirect, steer.ReasonNoOutput, steer.Record{}},
		{"actions=output:p1,mod_dl_src:02:00:00:00:00:01", steer.VerdictRedirect, steer.ReasonAfterOutput, steer.Record{}},
		{"actions=output:p9", steer.VerdictRedirect, steer.ReasonPortGone, steer.Record{}},
		{"actions=goto_table:1", steer.VerdictRedirect, "goto_table", steer.Record{}},
		{"actions=mod_dl_src:02:00:00:00:00:01,resubmit(,1)", steer.VerdictRedirect, "resubmit", steer.Record{}},
		{"table=1,actions=output:p1", steer.VerdictRedirect, ReasonLaterTable, steer.Record{}},
		{"ip,actions=" + strings.Repeat("dec_ttl,", 16) + "output:p1", steer.VerdictRedirect, steer.ReasonTooManyActions, steer.Record{}},
		{"ip,actions=" + strings.Repeat("dec_ttl,", 15) + "output:p1", steer.VerdictForward, "", steer.Record{N: 16, DecTTL: 15}},
	}
	for _, tt := range tests {
		t.Run(tt.flow, func(t *testing.T) {
			f, err := ParseFlow(tt.flow)
			if err != nil {
				t.Fatal(err)
			}
			e, err := newEntry(f, 7, ports, newAddScratch(nil), true, 0)
			if err != nil {
				if tt.reason != steer.ReasonPortGone {
					t.Fatal(err)
				}
				// Added flows must name ports that exist; a port that
				// went since compiles to a counted drop.
				e, _ = newEntry(f, 7, dpPortMap(map[string]uint32{"p9": 9}), newAddScratch(nil), true, 0)
				e = e.recompiled(ports, new(lastProgram))
			}
			if v := e.Verdict(); v != tt.verdict {
				t.Fatalf("verdict %v, want %v", v, tt.verdict)
			}
			// Compiled against other port numbers, then against these:
			// the entry a recompile makes has the same verdict.
			other := dpPortMap(map[string]uint32{"p1": 11, "p2": 12, "p9": 9})
			o, err := newEntry(f, 7, other, newAddScratch(nil), false, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := o.recompiled(ports, new(lastProgram))
			if r == nil {
				r = o // it names no port: nothing to recompile
			}
			if r.Verdict() != tt.verdict {
				t.Fatalf("recompiled: verdict %v, want %v", r.Verdict(), tt.verdict)
			}
			rec, why := e.FastPath()
			if why != tt.reason {
				t.Fatalf("reason %q, want %q", why, tt.reason)
			}
			if why != "" || tt.verdict != steer.VerdictForward {
				return
			}
			if rec.Flow != 7 || rec.N != tt.rec.N || rec.DecTTL != tt.rec.DecTTL || rec.Grow != tt.rec.Grow || rec.Flags != tt.rec.Flags {
				t.Fatalf("record flow %d n %d dec_ttl %d grow %d flags %#x, want n %d dec_ttl %d grow %d flags %#x",
					rec.Flow, rec.N, rec.DecTTL, rec.Grow, rec.Flags, tt.rec.N, tt.rec.DecTTL, tt.rec.Grow, tt.rec.Flags)
			}
			for i := range int(rec.N) {
				if rec.Ops[i] != e.Program.ops[i] {
					t.Fatalf("op %d: record %+v, program %+v", i, rec.Ops[i], e.Program.ops[i])
				}
			}
		})
	}
}
