package bpf

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Options shape how the program is loaded.
type Options struct {
	// Trace makes every run of the program record the key it extracted
	// and how it classified it, for TestRun. It costs a map write per
	// packet, so it is for tests only; without it the recording is
	// removed by the verifier as dead code.
	Trace bool
	// DryRun makes the program count nothing (see DryRunner).
	DryRun bool
	// Records is the number of action record slots, how many flows the
	// fast path can run at once: 0 is steer.MaxRecords, at most
	// steer.RecordSlotsLimit. The maps are made of pages of 4096 slots
	// (fastpath.h), so fewer take a page. A DryRunner has its live
	// program's.
	Records int
	// share, when set, are the maps of the live objects the program uses
	// instead of its own (all but the trace map).
	share *Objects
}

// Objects is the loaded XDP program and its maps. One Objects serves every
// port of a switch: the ports map tells the program which ofport an ifindex
// is. Nothing is pinned, so the program, its maps and its attachments live
// as long as the process holds them.
//
// All methods are safe for concurrent use. The order of a steering sync
// (PutRules, SetMasks, DeleteRules) is the caller's; see the package
// documentation for what each step lets a frame see.
type Objects struct {
	objs  xvsObjects
	trace bool
	spec  *ebpf.CollectionSpec // what objs was loaded from, for twin
	// rec holds the pages of records and record_hits. A DryRunner shares
	// its live objects' (dry is set): it sees their grows, and neither
	// grows nor closes them.
	rec *recordMaps
	dry bool

	traceMu   sync.Mutex // serializes TestRun: the trace map has one entry
	closeOnce sync.Once

	// An outer array of maps, updated only to wait for an RCU grace
	// period, and the inner map it is updated with.
	barrier, barrierInner *ebpf.Map

	// genMu serializes bumps of the steering generation, so that it only
	// grows (exact-match cache entries of an older one stay invalid).
	genMu sync.Mutex
	gen   uint64

	mu        sync.Mutex // guards the fields below
	closed    bool
	slot      uint32                   // order slot the program reads
	order     maskOrder                // the order in that slot
	live      [steer.MaxMasks]liveMask // masks of the live order, with their keys
	flipped   time.Time                // when slot last changed
	idleQuiet bool                     // no run reads the idle slot since flipped
	waits     int                      // grace periods waited for (tests)
	links     map[*Attachment]struct{} // attachments to detach with Objects
	twin      *ebpf.Program            // a second copy of the program on the same maps; loaded on first use
}

// recordMaps are the pages of the records and record_hits arrays of maps
// (fastpath.h): slot s is entry s%recordPage of page s/recordPage.
type recordMaps struct {
	// mu guards the fields below: held for reading by everything that
	// uses them, for writing by a grow.
	mu   sync.RWMutex
	n    uint32      // action record slots (Options.Records, then GrowRecords)
	recs []*ebpf.Map // the pages of records: entry -> steer.Record
	hits []*ebpf.Map // the pages of record_hits: cpu*recordPage+entry -> CounterValue
	// rows are the pages of hits mapped into memory (BPF_F_MMAPABLE):
	// RecordHits reads them, ClearRecordHits zeroes them, with no syscall.
	rows  [][]CounterValue
	grows int // GrowRecords that grew
	// unwaited: pages went in and no grace period is known to have passed
	// since (GrowRecords' wait failed); the next grow waits, whatever it adds.
	unwaited bool
	closed   bool // the pages are gone (Objects.Close): nothing may use them
}

// errRecordsClosed is what the records' users get once the objects closed.
var errRecordsClosed = errors.New("objects closed")

// rlock takes r.mu for reading for a user of the pages (what, for its
// error), unless they are closed: then it holds nothing and says so.
func (r *recordMaps) rlock(what string) error {
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return fmt.Errorf("%s: %w", what, errRecordsClosed)
	}
	return nil
}

// mapHits maps the page of hit counters m into memory.
func mapHits(m *ebpf.Map) ([]CounterValue, error) {
	size := int(m.MaxEntries()) * int(unsafe.Sizeof(CounterValue{}))
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map record hits into memory: %w", err)
	}
	return unsafe.Slice((*CounterValue)(unsafe.Pointer(unsafe.SliceData(b))), m.MaxEntries()), nil
}

// unmapHits undoes mapHits.
func unmapHits(row []CounterValue) error {
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(row))), len(row)*int(unsafe.Sizeof(CounterValue{})))
	return unix.Munmap(b)
}

// A page of records (XVS_RECORD_PAGE_SHIFT), and the most pages
// (XVS_RECORD_PAGES).
const (
	recordPageShift = 12
	recordPage      = 1 << recordPageShift
	recordPages     = steer.RecordSlotsLimit / recordPage
)

// sizeHitPages gives spec's pages of hit counters a row of recordPage
// counters for each possible CPU (fastpath.h).
func sizeHitPages(spec *ebpf.CollectionSpec) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("load xdp program: %w", err)
	}
	spec.Maps[xvsMapRecordHits].InnerMap.MaxEntries = uint32(recordPage * cpus)
	return nil
}

// pagesFor is how many pages n slots take.
func pagesFor(n int) int { return (n + recordPage - 1) / recordPage }

// batchUpdatePages puts the pages fds under keys into the outer map m; the
// tests replace it to make a grow fail half way.
var batchUpdatePages = func(m *ebpf.Map, keys, fds []uint32) (int, error) {
	return m.BatchUpdate(keys, fds, nil)
}

// addPages creates the pages that n slots need past those r has, puts them
// into the outer maps (records first; no rule names a slot in them yet,
// so the order does not matter) and appends them to r. On error nothing is
// added: what went into the outer maps is taken out again.
func (o *Objects) addPages(r *recordMaps, n int) error {
	from, to := len(r.recs), pagesFor(n)
	if to <= from {
		return nil
	}
	var recs, hits []*ebpf.Map
	var rows [][]CounterValue
	type put struct {
		m *ebpf.Map
		n int // keys[:n] are in m
	}
	var inserted []put
	keys := make([]uint32, 0, to-from)
	fail := func(err error) error {
		for _, row := range rows {
			_ = unmapHits(row)
		}
		// A page put into an outer map goes out again; nothing ran in it
		// (no rule names its slots). One key at a time: an array of maps
		// has no batch delete (the kernel refuses it), and a page left in
		// would hold its memory until the objects close.
		for _, in := range inserted {
			for _, k := range keys[:in.n] {
				_ = in.m.Delete(k)
			}
		}
		for _, m := range append(recs, hits...) {
			_ = m.Close()
		}
		return err
	}
	rs := o.spec.Maps[xvsMapRecords].InnerMap
	hs := o.spec.Maps[xvsMapRecordHits].InnerMap
	rfds := make([]uint32, 0, to-from)
	hfds := make([]uint32, 0, to-from)
	for p := from; p < to; p++ {
		rm, err := ebpf.NewMap(rs)
		if err != nil {
			return fail(fmt.Errorf("records page %d: %w", p, err))
		}
		recs = append(recs, rm)
		hm, err := ebpf.NewMap(hs)
		if err != nil {
			return fail(fmt.Errorf("record hits page %d: %w", p, err))
		}
		hits = append(hits, hm)
		row, err := mapHits(hm)
		if err != nil {
			return fail(fmt.Errorf("record hits page %d: %w", p, err))
		}
		rows = append(rows, row)
		keys = append(keys, uint32(p))
		rfds = append(rfds, uint32(rm.FD()))
		hfds = append(hfds, uint32(hm.FD()))
	}
	// One batch each: the kernel waits for a grace period after each
	// update of an array of maps, and once for a batch.
	for _, u := range []struct {
		m    *ebpf.Map
		fds  []uint32
		name string
	}{{o.objs.Records, rfds, "records"}, {o.objs.RecordHits, hfds, "record hits"}} {
		n, err := batchUpdatePages(u.m, keys, u.fds)
		if n > 0 {
			inserted = append(inserted, put{u.m, n})
		}
		if err != nil {
			return fail(fmt.Errorf("%s pages %d..%d: %w", u.name, from, to-1, err))
		}
	}
	r.recs = append(r.recs, recs...)
	r.hits = append(r.hits, hits...)
	r.rows = append(r.rows, rows...)
	return nil
}

type liveMask struct {
	used bool
	key  steer.Key
}

// Kernel layouts (bpf/xvs.h). The tests check them against the BTF of the
// compiled object.
type ruleKey struct {
	MaskID uint32
	_      uint32
	Key    steer.Key
}

type ruleValue struct {
	Rank    uint64
	Verdict uint8
	_       [3]uint8
	Arg     uint32
	FlowID  uint64
	Packets uint64 // hits of a drop or pass rule, counted by the program
	Bytes   uint64
}

type maskRef struct {
	ID      uint32
	_       uint32
	MaxRank uint64
}

type maskOrder struct {
	N uint32
	_ uint32
	M [steer.MaxMasks]maskRef
}

// CounterValue is one counter of a port, summed over CPUs
// (struct xvs_counter_value).
type CounterValue struct {
	Packets uint64
	Bytes   uint64
}

// portCounters is one CPU's counters of a port (struct xvs_port_counters).
type portCounters [steer.NumCounters]CounterValue

type traceRecord struct {
	Key            steer.Key
	Rank           uint64
	Status         uint32
	MaskID         uint32
	Visited        uint32
	Hit            uint8
	Verdict        uint8
	FP             uint8
	EMC            uint8
	IngressIfindex uint32
	Len            uint32
	OutPort        uint32
	_              uint32
}

// Values of traceRecord.Status (enum xvs_trace_status).
const (
	traceOK          = 0
	traceMalformed   = 1
	traceUnknownPort = 2
	traceNone        = ^uint32(0) // written before a test run: no run recorded
)

// Load loads the XDP program and its maps for production use.
func Load() (*Objects, error) {
	return LoadWith(Options{})
}

// LoadWith loads the XDP program and its maps.
func LoadWith(opts Options) (*Objects, error) {
	spec, err := loadXvs()
	if err != nil {
		return nil, err
	}
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		on   bool
		name string
	}{{opts.Trace, xvsVarTraceEnabled}, {opts.DryRun, xvsVarDryRun}} {
		if !c.on {
			continue
		}
		v := spec.Variables[c.name]
		if v == nil {
			return nil, fmt.Errorf("load xdp program: no %s variable", c.name)
		}
		if err := v.Set(uint32(1)); err != nil {
			return nil, fmt.Errorf("set %s: %w", c.name, err)
		}
	}
	if err := sizeEMC(spec); err != nil {
		return nil, err
	}
	if err := sizeHitPages(spec); err != nil {
		return nil, err
	}
	records := opts.Records
	switch {
	case opts.share != nil:
	case records == 0:
		records = steer.MaxRecords
	case records < 0 || records > steer.RecordSlotsLimit:
		return nil, fmt.Errorf("load xdp program: %d record slots, want 1..%d", records, steer.RecordSlotsLimit)
	}
	var lo *ebpf.CollectionOptions
	if opts.share != nil {
		lo = &ebpf.CollectionOptions{MapReplacements: opts.share.sharedMaps()}
	}
	// Kernels since 5.11 charge BPF memory to the memory cgroup and ignore
	// RLIMIT_MEMLOCK; where the limit cannot be raised, loading may still
	// work, so the error is not fatal.
	_ = rlimit.RemoveMemlock()

	o := &Objects{trace: opts.Trace, spec: spec.Copy(), links: make(map[*Attachment]struct{})}
	if err := spec.LoadAndAssign(&o.objs, lo); err != nil {
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	if opts.share != nil {
		o.rec, o.dry = opts.share.rec, true
	} else if err := o.initRecords(records); err != nil {
		_ = o.closeMaps()
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	inner := &ebpf.MapSpec{Name: "xvs_barrier_in", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	if o.barrierInner, err = ebpf.NewMap(inner); err == nil {
		o.barrier, err = ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_barrier", Type: ebpf.ArrayOfMaps,
			KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: inner})
	}
	if err != nil {
		_ = o.closeMaps()
		return nil, fmt.Errorf("create barrier map: %w", err)
	}
	return o, nil
}

// initRecords creates the pages of n record slots, before any program run.
func (o *Objects) initRecords(n int) error {
	o.rec = &recordMaps{n: uint32(n)}
	return o.addPages(o.rec, n)
}

// Records returns the number of action record slots (Options.Records,
// then GrowRecords; a DryRunner's are its live objects').
func (o *Objects) Records() int {
	o.rec.mu.RLock()
	defer o.rec.mu.RUnlock()
	return int(o.rec.n)
}

// DryRunner loads a second instance of the program that shares every map
// of o but its trace map and counts nothing (no port counters, no rule
// hits): TestRun on it shows, with Trace's detail, what the live program
// decides for a frame, and changes nothing. It is not attached anywhere.
// It shares the arrays of record pages too, so it runs the records of o's
// grows (GrowRecords) as o does. The caller closes it (o's maps stay).
func (o *Objects) DryRunner() (*Objects, error) {
	r, err := LoadWith(Options{Trace: true, DryRun: true, share: o})
	if err != nil {
		return nil, fmt.Errorf("dry-run program: %w", err)
	}
	return r, nil
}

// sharedMaps are the maps a DryRunner uses instead of its own: all the
// program's maps but trace (each instance records its own runs) and the
// global variables' (each has its own constants).
func (o *Objects) sharedMaps() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		xvsMapPorts: o.objs.Ports, xvsMapXsks: o.objs.Xsks, xvsMapMasks: o.objs.Masks,
		xvsMapMaskOrder: o.objs.MaskOrder, xvsMapActive: o.objs.Active,
		xvsMapRules: o.objs.Rules, xvsMapCounters: o.objs.Counters,
		xvsMapRecords: o.objs.Records, xvsMapRecordHits: o.objs.RecordHits, xvsMapTxPorts: o.objs.TxPorts,
		xvsMapEmc: o.objs.Emc, xvsMapEmcJudge: o.objs.EmcJudge, xvsMapSteerGen: o.objs.SteerGen, xvsMapPortCache: o.objs.PortCache,
	}
}

// twinLocked returns a second copy of the program, loaded from the same
// object onto the same maps (the arrays of record pages too, so it sees
// every grow): it behaves exactly like the first, and a device's attachment can
// swap between the two. o.mu must be held.
func (o *Objects) twinLocked() (*ebpf.Program, error) {
	if o.twin != nil {
		return o.twin, nil
	}
	repl := o.sharedMaps()
	repl[xvsMapTrace] = o.objs.Trace
	var t struct {
		Prog *ebpf.Program `ebpf:"xvs_xdp"`
	}
	if err := o.spec.Copy().LoadAndAssign(&t, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		return nil, fmt.Errorf("load xdp program twin: %w", err)
	}
	o.twin = t.Prog
	return o.twin, nil
}

func (o *Objects) closeMaps() error {
	var errs []error
	if err := o.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close xdp objects: %w", err))
	}
	if o.twin != nil {
		if err := o.twin.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close xdp program twin: %w", err))
		}
	}
	if r := o.rec; r != nil && !o.dry {
		// Under the lock: a reader of the rows (RecordHits, ClearRecordHits,
		// of these objects or of a dry runner sharing them) holds it, and
		// after it finds them closed.
		r.mu.Lock()
		defer r.mu.Unlock()
		r.closed = true
		for _, row := range r.rows {
			if err := unmapHits(row); err != nil {
				errs = append(errs, fmt.Errorf("unmap record hits page: %w", err))
			}
		}
		r.rows = nil
		for _, m := range append(slices.Clone(r.recs), r.hits...) {
			if err := m.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close record page: %w", err))
			}
		}
	}
	for _, m := range []*ebpf.Map{o.barrier, o.barrierInner} {
		if m != nil {
			if err := m.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close barrier map: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// bumpGen invalidates every exact-match cache entry (emc.h): it is called
// after each write to the rules or the mask order, whether or not the
// write got through.
func (o *Objects) bumpGen() {
	o.genMu.Lock()
	defer o.genMu.Unlock()
	o.gen++
	_ = o.objs.SteerGen.Put(uint32(0), o.gen) // an array slot that exists: cannot fail
}

// checkSpec makes sure the compiled object and the Go twins of its structs
// agree, so a change to xvs.h that misses steer.go fails loudly.
func checkSpec(spec *ebpf.CollectionSpec) error {
	want := []struct {
		name       string
		key, value uintptr
		max        uint32
	}{
		{xvsMapPorts, 4, 4, steer.MaxPorts},
		{xvsMapXsks, 4, 4, steer.MaxPorts * steer.MaxQueues},
		{xvsMapMasks, 4, steer.KeyLen, steer.MaxMasks},
		{xvsMapMaskOrder, 4, unsafe.Sizeof(maskOrder{}), 2},
		{xvsMapActive, 4, 4, 1},
		{xvsMapRules, unsafe.Sizeof(ruleKey{}), unsafe.Sizeof(ruleValue{}), steer.MaxRules},
		{xvsMapCounters, 4, unsafe.Sizeof(portCounters{}), steer.MaxPorts},
		{xvsMapTrace, 4, unsafe.Sizeof(traceRecord{}), 1},
		{xvsMapRecords, 4, 4, recordPages},
		{xvsMapRecordHits, 4, 4, recordPages},
		{xvsMapRecords + "_inner", 4, steer.RecordLen, recordPage},
		{xvsMapRecordHits + "_inner", 4, unsafe.Sizeof(CounterValue{}), recordPage},
		{xvsMapTxPorts, 4, 4, steer.MaxPorts},
		{xvsMapPortCache, 4, 8, portCacheSlots},
		{xvsMapEmc, 4, emcEntryLen, 1 << emcMaxShift},
		{xvsMapEmcJudge, 4, emcJudgeLen, 1},
		{xvsMapSteerGen, 4, 8, 1},
	}
	for _, w := range want {
		m := spec.Maps[w.name]
		if outer, ok := strings.CutSuffix(w.name, "_inner"); ok {
			m = nil
			if om := spec.Maps[outer]; om != nil && om.Type == ebpf.ArrayOfMaps {
				m = om.InnerMap
			}
		}
		if m == nil {
			return fmt.Errorf("xdp object: no map %s", w.name)
		}
		if uintptr(m.KeySize) != w.key || uintptr(m.ValueSize) != w.value || m.MaxEntries != w.max {
			return fmt.Errorf("xdp object: map %s is %d/%d bytes x %d, Go expects %d/%d x %d",
				w.name, m.KeySize, m.ValueSize, m.MaxEntries, w.key, w.value, w.max)
		}
	}
	return nil
}

// Close detaches every attachment made through o and releases the program
// and its maps. It is safe to call more than once.
func (o *Objects) Close() error {
	var errs []error
	o.closeOnce.Do(func() {
		o.mu.Lock()
		o.closed = true
		links := o.links
		o.links = nil
		o.mu.Unlock()
		for a := range links {
			if err := a.detach(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := o.closeMaps(); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// SetPort tells the program that ifindex is ofport. Frames from an ifindex
// the program does not know are passed to the kernel and counted under
// ofport 0.
func (o *Objects) SetPort(ifindex int, ofport uint32) error {
	if ifindex <= 0 {
		return fmt.Errorf("set port: bad ifindex %d", ifindex)
	}
	if ofport == 0 || ofport >= steer.MaxPorts {
		return fmt.Errorf("set port: ofport %d out of range 1..%d", ofport, steer.MaxPorts-1)
	}
	if err := o.objs.Ports.Put(uint32(ifindex), ofport); err != nil {
		return fmt.Errorf("set port %d: %w", ifindex, err)
	}
	// The array in front of the hash: a slot another ifindex holds stays
	// its (this one is found in the hash). One 8-byte value, so a run sees
	// the old entry or the new one.
	slot := uint32(ifindex) % portCacheSlots
	var cur uint64
	if err := o.objs.PortCache.Lookup(slot, &cur); err != nil {
		return fmt.Errorf("set port %d: %w", ifindex, err)
	}
	if cur == 0 || uint32(cur>>32) == uint32(ifindex) {
		if err := o.objs.PortCache.Put(slot, uint64(ifindex)<<32|uint64(ofport)); err != nil {
			return fmt.Errorf("set port %d: %w", ifindex, err)
		}
	}
	return nil
}

// portCacheSlots is XVS_PORT_CACHE.
const portCacheSlots = 4096

// The exact-match cache's entries (emc.h; never read by userspace), and
// the most and fewest slots per CPU (log2), and the memory all CPUs' slots
// may take together.
const (
	emcEntryLen = 128
	emcJudgeLen = 16 // struct xvs_emc_judge: per CPU, how the cache is doing
	emcMaxShift = 16 // XVS_EMC_SHIFT
	emcMinShift = 12
	emcBudget   = 16 << 20
)

// emcShiftFor is log2 of the exact-match cache's slots per CPU for cpus
// possible CPUs (a per-CPU map takes memory for each): the most that fit
// emcBudget, between emcMinShift and emcMaxShift. 2 CPUs get 65536 slots
// (8 MiB each), 4 get 32768, 64 get the minimum 4096 (32 MiB in all).
func emcShiftFor(cpus int) uint32 {
	shift := uint32(emcMaxShift)
	for shift > emcMinShift && uint64(max(cpus, 1))<<shift*emcEntryLen > emcBudget {
		shift--
	}
	return shift
}

// sizeEMC sizes spec's exact-match cache for this machine's CPUs and sets
// the program's emc_shift to match.
func sizeEMC(spec *ebpf.CollectionSpec) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("load xdp program: %w", err)
	}
	shift := emcShiftFor(cpus)
	v := spec.Variables[xvsVarEmcShift]
	if v == nil {
		return fmt.Errorf("load xdp program: no %s variable", xvsVarEmcShift)
	}
	if err := v.Set(shift); err != nil {
		return fmt.Errorf("set %s: %w", xvsVarEmcShift, err)
	}
	spec.Maps[xvsMapEmc].MaxEntries = 1 << shift
	return nil
}

// DeletePort forgets ifindex. Deleting an unknown ifindex is not an error.
func (o *Objects) DeletePort(ifindex int) error {
	if ifindex <= 0 {
		return fmt.Errorf("delete port: bad ifindex %d", ifindex)
	}
	slot := uint32(ifindex) % portCacheSlots
	var cur uint64
	if err := o.objs.PortCache.Lookup(slot, &cur); err != nil {
		return fmt.Errorf("delete port %d: %w", ifindex, err)
	}
	if cur != 0 && uint32(cur>>32) == uint32(ifindex) {
		if err := o.objs.PortCache.Put(slot, uint64(0)); err != nil {
			return fmt.Errorf("delete port %d: %w", ifindex, err)
		}
	}
	if err := o.objs.Ports.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete port %d: %w", ifindex, err)
	}
	return nil
}

func xskIndex(op string, ofport uint32, queue int) (uint32, error) {
	if ofport == 0 || ofport >= steer.MaxPorts {
		return 0, fmt.Errorf("%s: ofport %d out of range 1..%d", op, ofport, steer.MaxPorts-1)
	}
	if queue < 0 || queue >= steer.MaxQueues {
		return 0, fmt.Errorf("%s: queue %d out of range 0..%d", op, queue, steer.MaxQueues-1)
	}
	return ofport*steer.MaxQueues + uint32(queue), nil
}

// RegisterSocket makes fd, a bound AF_XDP socket, the target of REDIRECT
// verdicts for frames of ofport received on RX queue queue. The map holds
// its own reference to the socket; the caller keeps ownership of fd.
func (o *Objects) RegisterSocket(ofport uint32, queue int, fd int) error {
	idx, err := xskIndex("register socket", ofport, queue)
	if err != nil {
		return err
	}
	if fd < 0 {
		return fmt.Errorf("register socket: bad fd %d", fd)
	}
	if err := o.objs.Xsks.Put(idx, uint32(fd)); err != nil {
		return fmt.Errorf("register socket port %d queue %d: %w", ofport, queue, err)
	}
	return nil
}

// UnregisterSocket removes the socket of (ofport, queue): REDIRECT verdicts
// for that queue fall back to the kernel. Removing an empty slot is not an
// error.
func (o *Objects) UnregisterSocket(ofport uint32, queue int) error {
	idx, err := xskIndex("unregister socket", ofport, queue)
	if err != nil {
		return err
	}
	if err := o.objs.Xsks.Delete(idx); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unregister socket port %d queue %d: %w", ofport, queue, err)
	}
	return nil
}

// Counters returns the counters of ofport (0: frames from unknown
// ifindexes), indexed by steer.Counter and summed over CPUs. The program
// counts each frame once, under its outcome; CounterRX is their sum.
func (o *Objects) Counters(ofport uint32) ([steer.NumCounters]CounterValue, error) {
	var out [steer.NumCounters]CounterValue
	if ofport >= steer.MaxPorts {
		return out, fmt.Errorf("counters: ofport %d out of range 0..%d", ofport, steer.MaxPorts-1)
	}
	var percpu []portCounters
	if err := o.objs.Counters.Lookup(ofport, &percpu); err != nil {
		return out, fmt.Errorf("counters of port %d: %w", ofport, err)
	}
	for _, cpu := range percpu {
		for c, v := range cpu {
			out[c].Packets += v.Packets
			out[c].Bytes += v.Bytes
		}
	}
	out[steer.CounterRX] = CounterValue{}
	for c := steer.CounterRX + 1; c < steer.NumCounters; c++ {
		if c == steer.CounterForwardFallback {
			continue // not an outcome: redirect or redirect_nosock counted it again
		}
		out[steer.CounterRX].Packets += out[c].Packets
		out[steer.CounterRX].Bytes += out[c].Bytes
	}
	return out, nil
}

// MapMemory returns the kernel memory each of the program's maps takes
// (its memlock, as bpftool map show reports it), in bytes, by map name;
// records and record_hits count their pages too. A preallocated map
// costs its full size from the start; the rule table (no prealloc) grows
// with its rules.
func (o *Objects) MapMemory() (map[string]uint64, error) {
	if err := o.rec.rlock("map memory"); err != nil {
		return nil, err
	}
	defer o.rec.mu.RUnlock()
	out := make(map[string]uint64)
	v := reflect.ValueOf(&o.objs.xvsMaps).Elem()
	for i := range v.NumField() {
		m, ok := v.Field(i).Interface().(*ebpf.Map)
		if !ok || m == nil {
			continue
		}
		name := v.Type().Field(i).Tag.Get("ebpf")
		maps := []*ebpf.Map{m}
		switch name {
		case xvsMapRecords:
			maps = append(maps, o.rec.recs...)
		case xvsMapRecordHits:
			maps = append(maps, o.rec.hits...)
		}
		for _, m := range maps {
			info, err := m.Info()
			if err != nil {
				return nil, fmt.Errorf("map %s: %w", name, err)
			}
			n, ok := info.Memlock()
			if !ok {
				return nil, fmt.Errorf("map %s: the kernel does not report its memory: %w", name, ebpf.ErrNotSupported)
			}
			out[name] += n
		}
	}
	return out, nil
}
