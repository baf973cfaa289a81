package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/flowtable/steer"
	"github.com/xvs-project/xvs/testenv"
)

// GrowRecords: the records and the hits they counted carry over, the slots
// past the old size become usable, the attached device runs the new
// program, a dry runner loaded after sees the new maps, and a grow that
// cannot be (past the limit) or need not be changes nothing.
func TestGrowRecords(t *testing.T) {
	testenv.RequireRoot(t)
	o, err := LoadWith(Options{Trace: true, Records: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	lo := loIndex(t)
	setFastPorts(t, o, lo)
	var zero steer.Key
	if err := o.SetMasks([]steer.Mask{{ID: 0, Mask: zero, MaxRank: steer.MakeRank(10, 0)}}); err != nil {
		t.Fatal(err)
	}
	e, _ := installFast(t, o, "actions=mod_dl_src:02:00:00:00:00:99,output:pb", 5)
	rec, _ := e.FastPath()
	v := newVeth(t, "", "")
	if _, err := o.Attach(v.LocalIndex(), ModeAuto); err != nil {
		t.Fatal(err)
	}
	frame := udp4Frame(t, 1, 2)
	forward := func(obj *Objects, when string) {
		t.Helper()
		res, err := obj.TestRun(frame, lo, 0)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if res.FastPath != FastPathForwarded || res.Frame[11] != 0x99 {
			t.Fatalf("%s: fast path %v, frame %x", when, res.FastPath, res.Frame)
		}
	}
	hitsOf := func(slot int) uint64 {
		t.Helper()
		hits, err := o.RecordHits(o.Records())
		if err != nil {
			t.Fatal(err)
		}
		return hits[slot].Packets
	}
	forward(o, "before")

	if err := o.PutRecord(40, &rec); err == nil {
		t.Fatal("slot 40 of 8 written")
	}
	before := progID(t, o)
	for _, n := range []int{steer.RecordSlotsLimit + 1, 8, 3} {
		err := o.GrowRecords(n)
		if (err == nil) != (n <= 8) || o.Records() != 8 || progID(t, o) != before || o.Grows() != 0 {
			t.Fatalf("GrowRecords(%d): %v; %d slots, %d grows", n, err, o.Records(), o.Grows())
		}
	}

	if err := o.GrowRecords(64); err != nil {
		t.Fatal(err)
	}
	if o.Records() != 64 || o.Grows() != 1 {
		t.Fatalf("after a grow to 64: %d slots, %d grows", o.Records(), o.Grows())
	}
	for _, m := range []*ebpf.Map{o.objs.Records, o.objs.RecordHits} {
		if info, err := m.Info(); err != nil || info.MaxEntries != 64 {
			t.Fatalf("map %v: %v entries (%v), want 64", m, info.MaxEntries, err)
		}
	}
	after := progID(t, o)
	if after == before {
		t.Fatal("the same program after the grow")
	}
	if x := xdpOn(t, v.LocalIndex()); x == nil || x.ProgId != after {
		t.Fatalf("device runs %+v, want program %d", x, after)
	}
	if got := hitsOf(5); got != 1 {
		t.Fatalf("slot 5 hits after the grow: %d, want the 1 from before", got)
	}
	forward(o, "after") // slot 5's record was copied
	if got := hitsOf(5); got != 2 {
		t.Fatalf("slot 5 hits: %d, want 2", got)
	}
	if err := o.PutRecord(40, &rec); err != nil {
		t.Fatalf("slot 40 of 64: %v", err)
	}
	if err := o.PutRules([]steer.Rule{{MaskID: 0, Rank: e.Rank, Verdict: steer.VerdictForward, Arg: 40, Flow: e.Flow.ID}}); err != nil {
		t.Fatalf("a rule naming slot 40: %v", err)
	}
	forward(o, "through slot 40")
	if hitsOf(40) != 1 || hitsOf(5) != 2 {
		t.Fatalf("hits: slot 40 %d, slot 5 %d", hitsOf(40), hitsOf(5))
	}
	if _, err := o.ClearRecordHits([]uint32{5}); err != nil {
		t.Fatal(err)
	}
	if got := hitsOf(5); got != 0 {
		t.Fatalf("slot 5 hits after clear: %d (the base of the grow stayed)", got)
	}

	dry, err := o.DryRunner()
	if err != nil {
		t.Fatal(err)
	}
	defer dry.Close()
	if dry.Records() != 64 {
		t.Fatalf("dry runner: %d slots", dry.Records())
	}
	forward(dry, "dry run through slot 40")
	if hitsOf(40) != 1 {
		t.Fatalf("the dry run counted: slot 40 %d", hitsOf(40))
	}
}

// A grow from a size that is not a multiple of the copy's chunk copies
// every record; a device that went away (its link severed) does not stop
// a grow, and the devices still there move to the new program.
func TestGrowRecordsOddSizeAndGoneDevice(t *testing.T) {
	testenv.RequireRoot(t)
	o, err := LoadWith(Options{Trace: true, Records: recordChunk + 904})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	lo := loIndex(t)
	setFastPorts(t, o, lo)
	var zero steer.Key
	if err := o.SetMasks([]steer.Mask{{ID: 0, Mask: zero, MaxRank: steer.MakeRank(10, 0)}}); err != nil {
		t.Fatal(err)
	}
	last := uint32(recordChunk + 903) // in the copy's second, short chunk
	installFast(t, o, "actions=mod_dl_src:02:00:00:00:00:99,output:pb", last)
	stay, gone := newVeth(t, "", ""), newVeth(t, "", "")
	for _, v := range []*testenv.Veth{stay, gone} {
		if _, err := o.Attach(v.LocalIndex(), ModeAuto); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlink.LinkDel(gone.Local); err != nil {
		t.Fatal(err)
	}
	if err := o.GrowRecords(2 * recordChunk); err != nil {
		t.Fatalf("grow with a device gone: %v", err)
	}
	if o.Records() != 2*recordChunk {
		t.Fatalf("%d slots after the grow", o.Records())
	}
	if x := xdpOn(t, stay.LocalIndex()); x == nil || x.ProgId != progID(t, o) {
		t.Fatalf("the device still there runs %+v, want program %d", x, progID(t, o))
	}
	res, err := o.TestRun(udp4Frame(t, 1, 2), lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.FastPath != FastPathForwarded || res.Frame[11] != 0x99 {
		t.Fatalf("slot %d after the grow: fast path %v, frame %x", last, res.FastPath, res.Frame)
	}
}
