package datapath

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// Config tunes a Switch. The zero value is usable.
type Config struct {
	// CPUs the pollers are pinned to: poller q runs on CPUs[q % len(CPUs)].
	// Empty: pollers are locked to OS threads but not pinned.
	CPUs []int
	// Logger; nil = slog.Default().
	Logger *slog.Logger
	// FrameSize is the UMEM chunk size (2048 or 4096). Default 2048, enough
	// for a 1500-byte MTU plus two VLAN tags.
	FrameSize int
	// FramesPerPoller is the number of frames in each of a poller's UMEMs.
	// Each socket on a UMEM may hold RingSize frames in its fill and RX
	// rings, and each poller handing this one frames HandoffFrames, so a
	// UMEM serves FramesPerPoller/RingSize - 1 sockets and hand-offs
	// together (the rest is for frames in flight to TX). When they do not
	// fit, the poller makes another UMEM of the same size, and frames
	// between ports of different UMEMs are copied (umem.go). The kernel
	// pins all of a UMEM: it is resident memory whether used or not.
	// Default 4 * RingSize (32 MiB at the default sizes: 3 sockets and
	// hand-offs, e.g. 2 ports and a poller handing frames over, with no
	// copy between them; 14 ports take five UMEMs, 160 MiB).
	FramesPerPoller int
	// RingSize is the size of every AF_XDP ring. It bounds how many frames
	// a socket lends the kernel, so how long a poller may be kept off its
	// CPU before the fill ring runs dry (4096 frames: 12 ms at 340 kpps).
	// Default 4096.
	RingSize int
	// BatchSize is how many descriptors a poller takes from one RX ring at
	// once. Default 64.
	BatchSize int
	// PollMode is how pollers wait when there is nothing to do (see
	// PollMode): adaptive (the zero value), busy or sleep.
	PollMode PollMode
	// PollWindow is how long an adaptive poller keeps polling after its
	// last frame before it sleeps: the longer, the more replies and burst
	// tails find it awake, and the more CPU a trickle of traffic costs
	// (up to PollWindow per frame). Default DefaultPollWindow; negative:
	// none (the poller still wakes ahead of steady rhythms). At most
	// MaxPollWindow.
	PollWindow time.Duration
	// PollTimeout bounds one sleep in poll(2). Default 100ms.
	PollTimeout time.Duration
	// BusyPoll, if positive, turns on the kernel's busy polling of every
	// socket's device queue (afxdp.BusyPoll, preferred, with a budget of
	// BatchSize) for up to this long per call, and a poller whose pass
	// found nothing then runs its queues' NAPI itself (Socket.PollQueue)
	// before it looks again. It pays where the driver defers interrupts
	// (napi_defer_hard_irqs, gro_flush_timeout); on veth the sender's
	// softirq does the device's work anyway (measured: no effect). At most
	// afxdp.MaxBusyPollTimeout. Default 0: off.
	BusyPoll time.Duration
	// Headroom is the UMEM headroom reserved before each frame, which VLAN
	// pushes grow into. Default 64.
	Headroom int
	// HandoffFrames is how many frames a poller lends each other poller
	// that hands it frames for its queue of a port (a port with fewer
	// queues than the switch has pollers): the hand-off's buffer, as the
	// TX ring is a socket's. Too few and a burst the serving poller does
	// not take at once is dropped (handoff_full). They count against
	// FramesPerPoller like a socket's RingSize. Default RingSize.
	HandoffFrames int
	// QueueCheck is how often the ports' active RX queues are read again,
	// for changes no link update tells (they are read at every link update
	// of a port and every port change too). Default 1s; negative: never.
	QueueCheck time.Duration
	// FastPathOff keeps every flow's packets out of the XDP fast path: flows
	// whose actions XDP could carry out are redirected to userspace like
	// the others (for comparison and for debugging). Drop and kernel flows
	// are still handled in XDP.
	FastPathOff bool
	// FastPathFlows is the most flows the fast path runs at once (its
	// action record slots, some of them kept for flows being changed);
	// the flows of lowest priority past that run in userspace with the
	// reason records_full. The kernel's record maps start small and grow
	// with the flows up to it; each slot costs FastPathFlowBytes of kernel
	// memory, and 16 more per CPU. Default DefaultFastPathFlows, at most
	// MaxFastPathFlows.
	FastPathFlows int
	// OnExpire, if set, is called with the IDs of flows the switch removed
	// because their idle or hard timeout passed, after the removal is live.
	// It runs on the switch's timeout goroutine, outside the switch's locks
	// (it may call the switch), and should return soon: the next round of
	// timeouts waits for it. The control plane uses it to persist the
	// shrunken table.
	OnExpire func(ids []uint64)
	// OnEvent, if set, is told of what the switch does on its own or is
	// told to (Event): ports, links, liveness, failovers, expiries. It may
	// run with the switch's lock held: it must return at once and never
	// call the Switch.
	OnEvent func(Event)
}

// Config.FastPathFlows: its default and largest value, and the kernel
// memory a slot takes (besides its per-CPU counters).
const (
	DefaultFastPathFlows = 1 << 18
	MaxFastPathFlows     = steer.RecordSlotsLimit
	FastPathFlowBytes    = steer.RecordLen
)

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.FrameSize == 0 {
		c.FrameSize = 2048
	}
	if c.RingSize == 0 {
		c.RingSize = 4096
	}
	if c.FramesPerPoller == 0 {
		c.FramesPerPoller = 4 * c.RingSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = 64
	}
	if c.FastPathFlows == 0 {
		c.FastPathFlows = DefaultFastPathFlows
	}
	switch {
	case c.PollWindow == 0:
		c.PollWindow = DefaultPollWindow
	case c.PollWindow < 0:
		c.PollWindow = 0
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = 100 * time.Millisecond
	}
	if c.Headroom == 0 {
		c.Headroom = 64
	}
	if c.HandoffFrames == 0 {
		c.HandoffFrames = c.RingSize
	}
	if c.QueueCheck == 0 {
		c.QueueCheck = time.Second
	}
	return c
}

// Switch is the switch: ports, pollers, the flow table. Its methods are
// safe for concurrent use.
type Switch struct {
	cfg   Config
	log   *slog.Logger
	bpf   *bpf.Objects
	start time.Time

	mu     sync.Mutex // serialises configuration changes; guards the fields below
	closed bool
	// unsteered: Close emptied the XDP program's mask list, so every
	// packet passes to the kernel and the flows need no recompiling as
	// the ports go.
	unsteered bool
	ports     map[string]*Port // by name: attached and absent
	// ofports holds the numbers names have: a port's while it is
	// configured, and a removed port's while the switch has room, so it
	// gets its number back. When every number is held, those of removed
	// ports that no flow or group names are given to new names
	// (allocOFPortLocked).
	ofports  map[string]uint32
	nextOF   uint32    // where the search for a free number starts
	maxOF    uint32    // the highest ofport: steer.MaxPorts-1 (tests lower it)
	pollers  []*poller // by queue index
	handoffs map[pollerPair]*handoff
	// steering is the kernel's steering rules and masks, as the last sync
	// wrote them. After a sync by delta (deltaPlanLocked) only masks is
	// kept up to date, and steering is nil until a full sync needs the
	// rules (kernelSteeringLocked).
	steering *steer.Table
	masks    []steer.Mask
	syncs    SyncStats // under mu

	// table is the published flow table snapshot. Pollers load it once per
	// batch; only the holder of mu stores it.
	table atomic.Pointer[flowtable.Table]
	// portsByOF is the published port set, indexed by ofport, for stats and
	// the resolver. Replaced (copy-on-write) under mu.
	portsByOF atomic.Pointer[[steer.MaxPorts]*Port]

	// kernelRules counts the steering rules whose packets the XDP program
	// handles itself (drop, kernel); hits harvests their counters.
	kernelRules atomic.Int64
	hits        kernelHits
	// fast is the XDP fast path: record slots, which ports take redirected
	// frames, which flows run in XDP.
	fast *fastPath

	tracer traceRunner // the dry-run XDP program of Trace

	stopTimeouts chan struct{}
	timeoutsDone chan struct{}
	stopWatch    chan struct{}
	watchDone    chan struct{}
}

// emit tells Config.OnEvent of e.
func (s *Switch) emit(e Event) {
	if s.cfg.OnEvent != nil {
		e.Time = time.Now()
		s.cfg.OnEvent(e)
	}
}

// New loads the XDP program and returns a Switch with no ports and an empty
// flow table. Close releases everything; if the process dies instead, the
// kernel detaches the XDP programs (nothing is pinned).
func New(cfg Config) (*Switch, error) {
	cfg = cfg.withDefaults()
	if cfg.FrameSize != 2048 && cfg.FrameSize != 4096 {
		return nil, fmt.Errorf("frame size %d: must be 2048 or 4096: %w", cfg.FrameSize, ErrInvalid)
	}
	if cfg.PollMode > PollSleep {
		return nil, fmt.Errorf("poll mode %v: %w", cfg.PollMode, ErrInvalid)
	}
	if cfg.BusyPoll < 0 || cfg.BusyPoll > afxdp.MaxBusyPollTimeout {
		return nil, fmt.Errorf("busy poll %v: want 0 to %v: %w", cfg.BusyPoll, afxdp.MaxBusyPollTimeout, ErrInvalid)
	}
	if cfg.PollWindow > MaxPollWindow {
		return nil, fmt.Errorf("poll window %v: at most %v: %w", cfg.PollWindow, MaxPollWindow, ErrInvalid)
	}
	if cfg.FastPathFlows < 1 || cfg.FastPathFlows > MaxFastPathFlows {
		return nil, fmt.Errorf("fast path flows %d: want 1 to %d: %w", cfg.FastPathFlows, MaxFastPathFlows, ErrInvalid)
	}
	objs, err := bpf.LoadWith(bpf.Options{Records: min(cfg.FastPathFlows, InitialFastPathFlows)})
	if err != nil {
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	s := &Switch{
		cfg:          cfg,
		log:          cfg.Logger,
		bpf:          objs,
		start:        time.Now(),
		ports:        make(map[string]*Port),
		ofports:      make(map[string]uint32),
		nextOF:       1,
		maxOF:        steer.MaxPorts - 1,
		handoffs:     make(map[pollerPair]*handoff),
		stopTimeouts: make(chan struct{}),
		timeoutsDone: make(chan struct{}),
		stopWatch:    make(chan struct{}),
		watchDone:    make(chan struct{}),
		fast:         newFastPath(cfg.FastPathOff, cfg.FastPathFlows, objs.Records()),
	}
	s.table.Store(flowtable.NewTable())
	s.portsByOF.Store(new([steer.MaxPorts]*Port))
	go s.expireLoop()
	go s.watchLinks()
	return s, nil
}

// Close removes every port (detaching XDP, closing sockets), stops the
// pollers and unloads the program. The Switch cannot be used afterwards.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stopTimeouts)
	close(s.stopWatch)
	s.mu.Unlock()
	// Let the timeout loop finish first: an OnExpire in flight reads the
	// ports and flows to save them, and must see them all, not a switch
	// half taken apart. (It may be reading the rule table's counters too,
	// which must outlive it.)
	<-s.timeoutsDone
	<-s.watchDone
	s.mu.Lock()
	var errs []error
	// Hand every packet to the kernel first, as when xvsd dies: with no
	// mask to visit the XDP program steers nothing, so the ports can go
	// without compiling and syncing the flows again after each (with a
	// large table, seconds of work for a switch about to vanish).
	if err := s.bpf.SetMasks(nil); err != nil {
		s.log.Warn("close: clear the steering masks", "err", err)
	} else {
		s.unsteered = true
	}
	for _, name := range slices.Sorted(mapKeys(s.ports)) {
		if err := s.removePortLocked(s.ports[name]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range s.pollers {
		if p != nil {
			p.stop()
		}
	}
	s.pollers = nil
	s.mu.Unlock()
	errs = append(errs, s.tracer.close(), s.bpf.Close())
	return errors.Join(errs...)
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// resolveLocked maps a port name to its ofport, for ports attached now
// (the flows of an absent port are compiled as those of a removed one).
// It is the flow table's PortResolver; s.mu must be held.
func (s *Switch) resolveLocked(name string) (uint32, bool) {
	if p, ok := s.ports[name]; ok && p.attached {
		return p.ofport, true
	}
	return 0, false
}

// nameLocked maps an ofport to the name of the port that has it now. It is
// the PortNamer that binds ports flows give by number; s.mu must be held.
func (s *Switch) nameLocked(ofport uint32) (string, bool) {
	for name, p := range s.ports {
		if p.ofport == ofport {
			return name, true
		}
	}
	return "", false
}

// Apply applies one transaction to the pipeline (flows and groups) and
// says what it added and removed. Ports the flows and groups give by
// number are first bound to the names of the ports that have them (in
// place: see flowtable.Change.BindPortNumbers). On error nothing changed.
func (s *Switch) Apply(c Change) (Applied, error) { return s.ApplyCommit(c, nil) }

// ApplyCommit is Apply, with commit (if not nil) told of the pipeline the
// change builds, under the switch's lock, before it goes live: an error
// from commit abandons the change, which then changed nothing. If the
// kernel then refuses the new pipeline, commit is told again, of the
// pipeline kept, so that what it recorded follows the switch (an error of
// that second call is joined to the one returned). The control plane saves
// the configuration in commit: nothing is live that is not on disk. A
// change that leaves the pipeline as it was (a replace with the same
// flows) is not committed.
//
// commit runs on a goroutine of its own, beside the part of the kernel
// sync no packet can see yet (compiling the steering rules, writing new
// action records into slots no rule points at); the sync waits for it
// before the first step a packet can see. commit must not call the
// Switch, and must be done with nt when it returns.
func (s *Switch) ApplyCommit(c Change, commit Commit) (Applied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Applied{}, ErrClosed
	}
	if err := c.BindPortNumbers(s.nameLocked); err != nil {
		return Applied{}, err
	}
	old := s.table.Load()
	nt, err := old.Apply(c, s.resolveLocked)
	if err != nil {
		return Applied{}, err
	}
	changed := nt.Gen() != old.Gen()
	var pc *pendingCommit
	if commit != nil && changed {
		pc = startCommit(commit, nt)
	}
	if err := s.publishLocked(nt, pc); err != nil {
		if pc != nil && pc.wait() == nil {
			// Saved, then refused by the kernel: save what stays.
			if cerr := commit(old); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return Applied{}, err
	}
	return Applied{Added: slices.Clone(nt.Added()), Removed: slices.Clone(nt.Removed()), Unchanged: !changed}, nil
}

// Pipeline returns the live pipeline: flows and groups. It is an immutable
// snapshot; the caller must not modify what it returns.
func (s *Switch) Pipeline() *flowtable.Table { return s.table.Load() }

// publishLocked makes nt the live table: it compiles nt's steering rules and
// syncs them to the kernel around the snapshot swap (see doc.go). If the
// kernel refuses a step, or pc (if not nil) fails, it puts the old rules
// back and returns the error: the table is unchanged. A table of the live
// one's generation is the live pipeline (flowtable.Table.Apply): nothing
// is done.
func (s *Switch) publishLocked(nt *flowtable.Table, pc *pendingCommit) error {
	if nt.Gen() == s.table.Load().Gen() {
		return pc.wait()
	}
	return s.syncLocked(nt, pc)
}

// pendingCommit is a Commit of a pipeline, running beside the work on the
// kernel's maps that no packet can see yet.
type pendingCommit struct {
	done chan error
	err  error
	over bool
}

func startCommit(commit Commit, nt *flowtable.Table) *pendingCommit {
	pc := &pendingCommit{done: make(chan error, 1)}
	go func() { pc.done <- commit(nt) }()
	return pc
}

// wait returns once the commit is done, with its error; nil for a nil pc.
// It may be called again, and gives the same error.
func (pc *pendingCommit) wait() error {
	if pc == nil {
		return nil
	}
	if !pc.over {
		pc.err, pc.over = <-pc.done, true
	}
	return pc.err
}

// resyncLocked compiles the live table's steering again and syncs what
// changed: after something besides the table changed which flows may run
// in XDP (a port started or stopped taking redirected frames, record slots
// were freed).
func (s *Switch) resyncLocked() error { return s.syncLocked(s.table.Load(), nil) }

// syncLocked is publishLocked without the shortcut for an unchanged table.
// Forward rules get their record slots (written before any rule points at
// them) or are demoted to redirects first. Until pc is done, only what no
// packet can see is done; it is waited for on every return.
func (s *Switch) syncLocked(nt *flowtable.Table, pc *pendingCommit) error {
	defer pc.wait()
	old := s.table.Load()
	p, err := s.planLocked(old, nt)
	if err != nil {
		return err
	}
	d, txn := &p.diff, p.txn
	if err := pc.wait(); err != nil {
		s.fast.abort(txn) // no rule points at the records written
		return err
	}
	if d.ResetsCounts {
		// Credit what the rules about to go counted so far to their flows.
		// (Hits between this read and the rules' removal are still lost:
		// microseconds, not the up to one second between harvests.)
		s.harvest(true)
	}
	if err := s.bpf.DeleteRules(d.Delete); err != nil {
		return s.rollbackLocked(txn, fmt.Errorf("sync steering: %w", err))
	}
	if err := s.bpf.PutRules(d.PutEarly); err != nil {
		return s.rollbackLocked(txn, fmt.Errorf("sync steering: %w", err))
	}
	s.table.Store(nt)
	// A batch that began before the Store still runs on the old table: wait
	// until every poller has begun a new one, so that what the rules put
	// below redirect, and every packet sent once this change returns, meets
	// nt.
	s.quiesceLocked()
	if err := s.bpf.PutRules(d.PutLate); err != nil {
		s.table.Store(old)
		s.quiesceLocked()
		return s.rollbackLocked(txn, fmt.Errorf("sync steering: %w", err))
	}
	if err := s.bpf.SetMasks(d.Masks); err != nil {
		s.table.Store(old)
		s.quiesceLocked()
		return s.rollbackLocked(txn, fmt.Errorf("sync steering: %w", err))
	}
	s.steering, s.masks = p.steering, d.Masks
	s.fast.commitLocked(txn)
	s.kernelRules.Store(p.kernelRules)
	if txn.patch {
		s.syncs.Delta++
	} else {
		s.syncs.Full++
	}
	return nil
}

// syncPlan is what a sync writes: the diff of the kernel's rules, the
// record slots it assigned (records written, no rule pointing at them
// yet), and what the kernel then holds: its rules (nil when the plan came
// from a delta) and how many the program counts itself.
type syncPlan struct {
	diff        flowtable.SteeringDiff
	txn         *recordTxn
	steering    *steer.Table
	kernelRules int64
}

// planLocked works out what turns the kernel's rules, which are old's,
// into nt's. When nt knows how its table 0 differs from old's
// (flowtable.Table.SteeringDelta), only the rules of the keys it changed
// are looked at (deltaPlanLocked); otherwise every rule of nt is compiled
// and diffed against the kernel's.
func (s *Switch) planLocked(old, nt *flowtable.Table) (syncPlan, error) {
	if nt != old && s.fast.takesDelta() {
		if delta, ok := nt.SteeringDelta(old, s.masks); ok {
			if onDeltaPlan != nil {
				onDeltaPlan()
			}
			return s.deltaPlanLocked(&delta)
		}
	}
	prev := s.kernelSteeringLocked()
	ns, flows, err := nt.SteeringFlows(prev)
	if err != nil {
		return syncPlan{}, err
	}
	txn, err := s.assignRecordsLocked(ns, flows)
	if err != nil {
		return syncPlan{}, err
	}
	return syncPlan{diff: flowtable.DiffSteering(prev, ns), txn: txn, steering: ns, kernelRules: countKernelRules(ns)}, nil
}

// onDeltaPlan, if set, is called when a sync goes by delta (for tests).
var onDeltaPlan func()

// kernelSteeringLocked returns the kernel's steering rules and masks: the
// live table's rules as the record assignment has them (a forward rule
// points at its flow's slot, or was demoted to a redirect when its flow
// has none). It compiles them again after a sync by delta, and keeps
// them until the next one.
func (s *Switch) kernelSteeringLocked() *steer.Table {
	if s.steering != nil || s.masks == nil {
		return s.steering
	}
	st, _, err := s.table.Load().SteeringFlows(&steer.Table{Masks: s.masks})
	if err != nil {
		panic("datapath: the live table does not compile: " + err.Error()) // it did when it was synced
	}
	s.fast.toKernel(st.Rules)
	s.steering = st
	return st
}

// quiesceLocked returns once every running poller has finished the batch
// it was in: each later batch loads the table published before the call.
// (A command runs between two batches, before the next one loads the
// table.)
func (s *Switch) quiesceLocked() {
	for _, pl := range s.pollers {
		if pl != nil {
			_ = pl.do(func() error { return nil })
		}
	}
}

// rollbackLocked restores the kernel's rules to the live table's
// (kernelSteeringLocked) after a failed sync, whatever part of the sync got
// through, and returns err. The record slots the sync wrote are retired (a
// rule may have named them for a moment); the old ones stay live.
func (s *Switch) rollbackLocked(txn *recordTxn, err error) error {
	s.fast.abort(txn)
	var want []steer.Rule
	var masks []steer.Mask
	if st := s.kernelSteeringLocked(); st != nil {
		want, masks = st.Rules, st.Masks
	}
	rerr := errors.Join(s.bpf.SyncRules(want), s.bpf.SetMasks(masks))
	if rerr != nil {
		s.log.Error("steering rollback failed: the XDP classifier may disagree with the flow table", "err", rerr)
		return errors.Join(err, rerr)
	}
	return err
}

// Groups returns every installed group with its counters, by ID.
func (s *Switch) Groups() []GroupInfo {
	return GroupInfos(s.table.Load(), time.Now())
}

// Group returns one group by ID.
func (s *Switch) Group(id uint32) (GroupInfo, error) {
	return GroupInfoOf(s.table.Load(), id, time.Now())
}

// GroupInfoOf returns group id of pipeline t with its counters at now.
func GroupInfoOf(t *flowtable.Table, id uint32, now time.Time) (GroupInfo, error) {
	ge := t.Group(id)
	if ge == nil {
		return GroupInfo{}, fmt.Errorf("group %d: %w", id, ErrNoSuchGroup)
	}
	return GroupInfo{Group: ge.Group, Stats: t.GroupStats(ge, now), Flows: len(t.GroupUsers(id))}, nil
}

// GroupInfos lists the groups of pipeline t with their counters at now.
func GroupInfos(t *flowtable.Table, now time.Time) []GroupInfo {
	refs := t.GroupRefCounts()
	var out []GroupInfo
	for _, ge := range t.Groups() {
		out = append(out, GroupInfo{Group: ge.Group, Stats: t.GroupStats(ge, now), Flows: refs[ge.Group.ID]})
	}
	return out
}

// Tables returns the counters of every table that has flows or was looked
// up in. Table 0's lookups are every packet the XDP program classified on
// any port (and the resubmits back to it); its matches, those a rule
// matched.
func (s *Switch) Tables() []TableStats {
	ts := s.table.Load().TableStats()
	for _, p := range s.portsByOF.Load() {
		if p == nil {
			continue
		}
		cs, err := s.bpf.Counters(p.ofport)
		if err != nil {
			continue
		}
		n := cs[steer.CounterRX].Packets - cs[steer.CounterMalformed].Packets
		ts[0].Lookups += n
		ts[0].Matched += n - cs[steer.CounterPassNoMatch].Packets
	}
	return ts
}

// Flows returns every installed flow with its counters, highest rank first.
func (s *Switch) Flows() []FlowInfo { return s.SelectFlows(nil) }

// SelectFlows lists the flows keep is true of (every flow when keep is
// nil) with their counters, in the order of Flows: only those are
// counted and described.
func (s *Switch) SelectFlows(keep func(*flowtable.Flow) bool) []FlowInfo {
	s.harvestKernelHits()
	t := s.table.Load()
	now := time.Now()
	es := t.Select(keep)
	out := make([]FlowInfo, len(es))
	s.fast.mu.Lock()
	defer s.fast.mu.Unlock()
	for i, e := range es {
		out[i] = s.flowInfoLocked(e, now)
	}
	return out
}

// Flow returns one flow by ID.
func (s *Switch) Flow(id uint64) (FlowInfo, error) {
	s.harvestKernelHits()
	e := s.table.Load().Get(id)
	if e == nil {
		return FlowInfo{}, fmt.Errorf("flow %d: %w", id, ErrNoSuchFlow)
	}
	s.fast.mu.Lock()
	defer s.fast.mu.Unlock()
	return s.flowInfoLocked(e, time.Now()), nil
}

func (s *Switch) flowInfoLocked(e *flowtable.Entry, now time.Time) FlowInfo {
	where, why := s.fast.whereLocked(e, s.portName)
	return FlowInfo{
		Flow:           e.Flow,
		Text:           e.Text(),
		Packets:        e.Packets(),
		Bytes:          e.Bytes(),
		Duration:       now.Sub(e.Installed()),
		IdleAge:        now.Sub(e.LastUsed()),
		Datapath:       where,
		DatapathReason: why,
	}
}

// portName returns the name of ofport, or "ofport N" for one that is gone.
func (s *Switch) portName(ofport uint32) string {
	if ofport < steer.MaxPorts {
		if p := s.portsByOF.Load()[ofport]; p != nil {
			return p.name
		}
	}
	return fmt.Sprintf("ofport_%d", ofport)
}

// expireLoop removes flows whose idle or hard timeout has passed, once a
// second.
func (s *Switch) expireLoop() {
	defer close(s.timeoutsDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stopTimeouts:
			return
		case now := <-t.C:
			s.refreshFastPath()
			// Drop, kernel and fast path flows see their packets in the
			// kernel: count them first, or an idle timeout would end a busy
			// flow.
			s.harvestKernelHits()
			ids := s.table.Load().Expired(now)
			if len(ids) == 0 {
				continue
			}
			gone, err := s.expire(ids)
			if err != nil {
				s.log.Error("expire flows", "err", err)
			}
			if len(gone) > 0 {
				s.emit(Event{Type: EventFlowsExpired, Flows: gone})
				if s.cfg.OnExpire != nil {
					s.cfg.OnExpire(gone)
				}
			}
		}
	}
}

// expire removes the flows ids that are still installed and returns their
// IDs.
func (s *Switch) expire(ids []uint64) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil
	}
	t := s.table.Load()
	live := ids[:0]
	for _, id := range ids {
		if t.Get(id) != nil { // a request may have removed it meanwhile
			live = append(live, id)
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	nt, err := t.Apply(Change{Delete: live}, s.resolveLocked)
	if err != nil {
		return nil, err
	}
	if err := s.publishLocked(nt, nil); err != nil {
		return nil, err
	}
	s.log.Info("flows expired", "ids", live)
	return live, nil
}

// Health reports whether the switch works: nil when it does.
func (s *Switch) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, p := range s.pollers {
		if p != nil && p.dead.Load() {
			return fmt.Errorf("poller %d stopped: %v", p.queue, p.deadErr.Load())
		}
	}
	var errs []error
	for _, name := range slices.Sorted(mapKeys(s.ports)) {
		p := s.ports[name]
		if !p.attached {
			errs = append(errs, fmt.Errorf("port %s %s: %s", name, p.absentState(), p.absence))
		} else if st := p.state.Load(); st.problem != "" {
			errs = append(errs, fmt.Errorf("port %s degraded: %s", name, st.problem))
		}
	}
	return errors.Join(errs...)
}
