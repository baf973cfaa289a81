package bpf

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/flowtable/steer"
	"github.com/xvs-project/xvs/testenv"
)

// GrowRecords: the records and the hits they counted carry over, the slots
// past the old size become usable, the program and the attached device's
// program stay the same (a grow only adds pages), a dry
// runner and the twin loaded before the grow see the grown maps, as does
// a dry runner loaded after, and a grow that cannot be (past the limit) or
// need not be changes nothing.
func TestGrowRecords(t *testing.T) {
	o, lo := growObjects(t, Options{Trace: true, Records: 8})
	e, _ := installFast(t, o, "actions=mod_dl_src:02:00:00:00:00:99,output:pb", 5)
	rec, _ := e.FastPath()
	v := newVeth(t, "", "")
	a, err := o.Attach(v.LocalIndex(), ModeAuto)
	if err != nil {
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
	dryBefore, err := o.DryRunner()
	if err != nil {
		t.Fatal(err)
	}
	defer dryBefore.Close()
	if err := a.Reinstall(); err != nil { // loads the twin, which the device now runs
		t.Fatal(err)
	}
	twin := a.prog

	const far = 2*recordPage + 40 // in the third page
	if err := o.PutRecord(far, &rec); err == nil {
		t.Fatal("a slot past 8 written")
	}
	before := progID(t, o)
	for _, n := range []int{steer.RecordSlotsLimit + 1, 8, 3} {
		err := o.GrowRecords(n)
		if (err == nil) != (n <= 8) || o.Records() != 8 || progID(t, o) != before || o.Grows() != 0 {
			t.Fatalf("GrowRecords(%d): %v; %d slots, %d grows", n, err, o.Records(), o.Grows())
		}
	}
	if err := o.PutRules([]steer.Rule{{MaskID: 0, Rank: e.Rank, Verdict: steer.VerdictForward, Arg: far, Flow: e.Flow.ID}}); err == nil {
		t.Fatal("a rule naming a slot past 8 written")
	}
	const size = far + 1
	if err := dryBefore.GrowRecords(size); err == nil || o.Records() != 8 {
		t.Fatalf("a dry runner grew: %v, %d slots", err, o.Records())
	}

	if err := o.GrowRecords(size); err != nil {
		t.Fatal(err)
	}
	if o.Records() != size || o.Grows() != 1 || dryBefore.Records() != size {
		t.Fatalf("after a grow to %d: %d slots (dry runner %d), %d grows", size, o.Records(), dryBefore.Records(), o.Grows())
	}
	if len(o.rec.recs) != 3 || len(o.rec.hits) != 3 {
		t.Fatalf("%d and %d pages for %d slots", len(o.rec.recs), len(o.rec.hits), size)
	}
	if after := progID(t, o); after != before {
		t.Fatalf("program %d after the grow, was %d", after, before)
	}
	if x, tw := xdpOn(t, v.LocalIndex()), progInfoID(t, twin); x == nil || x.ProgId != tw || a.prog != twin {
		t.Fatalf("device runs %+v, want the twin %d it ran before the grow", x, tw)
	}
	if got := hitsOf(5); got != 1 {
		t.Fatalf("slot 5 hits after the grow: %d, want the 1 from before", got)
	}
	forward(o, "after") // slot 5's record was copied
	if got := hitsOf(5); got != 2 {
		t.Fatalf("slot 5 hits: %d, want 2", got)
	}
	if err := o.PutRecord(far, &rec); err != nil {
		t.Fatalf("slot %d of %d: %v", far, size, err)
	}
	if err := o.PutRules([]steer.Rule{{MaskID: 0, Rank: e.Rank, Verdict: steer.VerdictForward, Arg: far, Flow: e.Flow.ID}}); err != nil {
		t.Fatalf("a rule naming slot far: %v", err)
	}
	forward(o, "through slot far")
	if hitsOf(far) != 1 || hitsOf(5) != 2 {
		t.Fatalf("hits: slot far %d, slot 5 %d", hitsOf(far), hitsOf(5))
	}
	// The twin, loaded before the grow, runs slot far and counts it.
	if ret, err := twin.Run(&ebpf.RunOptions{Data: frame, Context: &xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(lo)}}); err != nil || Action(ret) != ActionRedirect {
		t.Fatalf("twin through slot far: %v, %v", Action(ret), err)
	}
	if hitsOf(far) != 2 {
		t.Fatalf("hits of slot far after the twin's run: %d, want 2", hitsOf(far))
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
	if dry.Records() != size {
		t.Fatalf("dry runner: %d slots", dry.Records())
	}
	forward(dry, "dry run through slot far")
	forward(dryBefore, "dry run loaded before the grow, through slot far")
	if hitsOf(far) != 2 {
		t.Fatalf("the dry runs counted: slot far %d", hitsOf(far))
	}
	// A dry runner closed leaves the live objects' record maps open.
	if err := dryBefore.Close(); err != nil {
		t.Fatal(err)
	}
	forward(o, "after a dry runner closed")
}

func progInfoID(tb testing.TB, p *ebpf.Program) uint32 {
	tb.Helper()
	info, err := p.Info()
	if err != nil {
		tb.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		tb.Fatal("program has no id")
	}
	return uint32(id)
}

// A grow from a size that is not a multiple of a page keeps the record of
// the short last page's last slot where it was and adds pages past it; a
// device that went away (its link severed) does not stop a grow, and the
// devices still there keep running the program.
func TestGrowRecordsOddSizeAndGoneDevice(t *testing.T) {
	testenv.RequireRoot(t)
	o, err := LoadWith(Options{Trace: true, Records: recordPage + 904})
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
	last := uint32(recordPage + 903) // in the second, short page
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
	prog := progID(t, o)
	if err := o.GrowRecords(3*recordPage + 1); err != nil {
		t.Fatalf("grow with a device gone: %v", err)
	}
	if o.Records() != 3*recordPage+1 || len(o.rec.recs) != 4 || len(o.rec.hits) != 4 {
		t.Fatalf("%d slots, %d and %d pages after the grow", o.Records(), len(o.rec.recs), len(o.rec.hits))
	}
	if x := xdpOn(t, stay.LocalIndex()); x == nil || x.ProgId != prog || progID(t, o) != prog {
		t.Fatalf("the device still there runs %+v, want program %d", x, prog)
	}
	res, err := o.TestRun(udp4Frame(t, 1, 2), lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.FastPath != FastPathForwarded || res.Frame[11] != 0x99 {
		t.Fatalf("slot %d after the grow: fast path %v, frame %x", last, res.FastPath, res.Frame)
	}
	installFast(t, o, "actions=mod_dl_src:02:00:00:00:00:99,output:pb", 3*recordPage) // the last page's only slot
	if res, err = o.TestRun(udp4Frame(t, 1, 2), lo, 0); err != nil {
		t.Fatal(err)
	}
	if res.FastPath != FastPathForwarded || res.Frame[11] != 0x99 {
		t.Fatalf("slot %d after the grow: fast path %v, frame %x", 3*recordPage, res.FastPath, res.Frame)
	}
}

// BenchmarkGrowRecords times one GrowRecords from 4096 slots, all of them
// holding a record, to 180224 (the scale run's 160k flows in one grow),
// with the program attached to a veth, as a switch's first big grow.
//
//	go test -run '^$' -bench GrowRecords -benchtime 5x ./bpf/
func BenchmarkGrowRecords(b *testing.B) {
	testenv.RequireRoot(b)
	const from, to = 4096, 180224
	v := newVeth(b, "", "")
	slots := make([]uint32, from)
	recs := make([]steer.Record, from)
	for i := range slots {
		slots[i] = uint32(i)
		recs[i] = steer.Record{Flow: uint64(i + 1), N: 1}
	}
	var total time.Duration
	for range b.N {
		b.StopTimer()
		o, err := LoadWith(Options{Records: from})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.Attach(v.LocalIndex(), ModeAuto); err != nil {
			b.Fatal(err)
		}
		if err := o.PutRecords(slots, recs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		err = o.GrowRecords(to)
		total += time.Since(t0)
		b.StopTimer()
		if err != nil || o.Records() != to {
			b.Fatalf("grow: %v, %d slots", err, o.Records())
		}
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/grow")
}

// Frames forwarded while the records grow, page by page, all find their
// record and are all counted.
func TestGrowRecordsUnderTraffic(t *testing.T) {
	o, lo := growObjects(t, Options{Records: 8})
	installFast(t, o, "actions=mod_dl_src:02:00:00:00:00:99,output:pb", 5)
	frame := udp4Frame(t, 1, 2)
	stop := make(chan struct{})
	type result struct {
		runs int
		err  error
	}
	done := make(chan result)
	go func() {
		var r result
		for {
			select {
			case <-stop:
				done <- r
				return
			default:
			}
			res, err := o.TestRun(frame, lo, 0)
			if err == nil && res.Action != ActionRedirect {
				err = fmt.Errorf("run %d: %v", r.runs, res.Action)
			}
			if err != nil {
				r.err = err
				done <- r
				return
			}
			r.runs++
		}
	}()
	for _, n := range []int{recordPage + 1, 3 * recordPage, 5*recordPage + 7} {
		time.Sleep(10 * time.Millisecond)
		if err := o.GrowRecords(n); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	hits, err := o.RecordHits(o.Records())
	if err != nil {
		t.Fatal(err)
	}
	if hits[5].Packets != uint64(r.runs) || r.runs == 0 {
		t.Fatalf("%d frames forwarded across %d grows, slot 5 counted %d", r.runs, o.Grows(), hits[5].Packets)
	}
	t.Logf("%d frames forwarded across %d grows", r.runs, o.Grows())
}

// Once the objects closed, the record pages are gone (their counters
// unmapped): every user of them, the live objects' and a dry runner's
// sharing them, gets an error, not a crash.
func TestRecordsAfterClose(t *testing.T) {
	testenv.RequireRoot(t)
	o, err := LoadWith(Options{})
	if err != nil {
		t.Fatal(err)
	}
	dry, err := o.DryRunner()
	if err != nil {
		o.Close()
		t.Fatal(err)
	}
	defer dry.Close()
	if _, err := o.RecordHits(8); err != nil {
		t.Fatalf("before close: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	rec := steer.Record{N: 1}
	for name, obj := range map[string]*Objects{"live": o, "dry runner": dry} {
		if _, err := obj.RecordHits(8); !errors.Is(err, errRecordsClosed) {
			t.Errorf("%s: RecordHits after close: %v", name, err)
		}
		if n, err := obj.ClearRecordHits([]uint32{1, 2}); n != 0 || !errors.Is(err, errRecordsClosed) {
			t.Errorf("%s: ClearRecordHits after close: %d, %v", name, n, err)
		}
		if err := obj.PutRecords([]uint32{1}, []steer.Record{rec}); !errors.Is(err, errRecordsClosed) {
			t.Errorf("%s: PutRecords after close: %v", name, err)
		}
	}
	if _, err := o.MapMemory(); !errors.Is(err, errRecordsClosed) {
		t.Errorf("MapMemory after close: %v", err)
	}
	if err := o.GrowRecords(o.Records() + recordPage); !errors.Is(err, errRecordsClosed) {
		t.Errorf("GrowRecords after close: %v", err)
	}
}

// growObjects loads objects with opts for a grow test: the fast path's
// ports on lo, whose index it returns, and one mask that matches every
// frame.
func growObjects(t *testing.T, opts Options) (*Objects, int) {
	t.Helper()
	testenv.RequireRoot(t)
	o, err := LoadWith(opts)
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
	return o, lo
}

// A grow that fails once its records pages are in takes them out of the
// outer map again: the slots stay as they were, no page is left holding
// kernel memory, and the next grow works.
func TestGrowRecordsRollback(t *testing.T) {
	o, _ := growObjects(t, Options{Records: 8})
	before := o.Records()
	refused := errors.New("refused by the test")
	put := batchUpdatePages
	batchUpdatePages = func(m *ebpf.Map, keys, fds []uint32) (int, error) {
		if m == o.objs.RecordHits {
			return 0, refused
		}
		return put(m, keys, fds)
	}
	err := o.GrowRecords(3 * recordPage)
	batchUpdatePages = put
	if !errors.Is(err, refused) {
		t.Fatalf("grow: %v, want the refusal", err)
	}
	if got := o.Records(); got != before {
		t.Errorf("records after a failed grow: %d, want %d", got, before)
	}
	if n := len(o.rec.recs); n != 1 {
		t.Errorf("record pages after a failed grow: %d, want 1", n)
	}
	for _, m := range []*ebpf.Map{o.objs.Records, o.objs.RecordHits} {
		for k := uint32(1); k < 3; k++ {
			var id uint32
			if err := m.Lookup(k, &id); !errors.Is(err, ebpf.ErrKeyNotExist) {
				t.Errorf("%v page %d after a failed grow: id %d, %v", m, k, id, err)
			}
		}
	}
	if err := o.GrowRecords(3 * recordPage); err != nil {
		t.Fatalf("grow after the failed one: %v", err)
	}
	if got := o.Records(); got != 3*recordPage {
		t.Errorf("records: %d, want %d", got, 3*recordPage)
	}
}
