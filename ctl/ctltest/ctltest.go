// Package ctltest has a fake ctl.Backend that behaves like the switch without
// touching the kernel: ports are names, and flows live in the switch's own
// flow table (flowtable.Table), so every change is validated and applied all
// or nothing exactly as the switch does it. Tests of ctl, xvsctl and xvsd run
// the whole control plane against it.
package ctltest

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// Backend is a fake switch. All methods are safe for concurrent use.
//
// Like the switch it stands for, it refuses ports that already exist, flows
// naming ports it does not have (in_port or output), deletes of flows it does
// not have, and tables needing more distinct masks than the XDP classifier
// walks or more distinct matches than it holds; a flow with the same priority and match as an installed one
// replaces it. Flow IDs count up from 1; ofports count up from 1 (or are
// the ones asked for). A port whose netdev is missing (SetNetdevs) is
// refused, or with KeepAbsent added absent, as the switch does; it is
// attached by SetNetdevs naming it.
type Backend struct {
	mu         sync.Mutex
	start      time.Time
	closed     bool
	health     error
	netdevs    map[string]bool // nil: every name exists
	maxMasks   int
	maxRules   int
	ports      []*port // in ofport order
	nextOFPort uint32
	table      *flowtable.Table // the real flow table, over the fake ports
	pollers    []datapath.PollerStats
	frames     []datapath.FrameStats
	calls      int // ApplyFlows calls that changed the table
}

type port struct {
	info  datapath.PortInfo
	stats datapath.PortStats
}

func (p *port) attached() bool { return p.info.State != datapath.PortAbsent }

// New returns an empty fake switch.
func New() *Backend {
	return &Backend{start: time.Now(), maxMasks: steer.MaxMasks, maxRules: steer.MaxRules, nextOFPort: 1, table: flowtable.NewTable()}
}

// SetMaxRules sets how many distinct matches the fake steering classifier
// holds (steer.MaxRules by default). Flows that differ only in priority
// share one, as in the switch.
func (b *Backend) SetMaxRules(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.maxRules = n
}

// SetNetdevs limits the netdevs AddPort finds to names; AddPort of any other
// name fails with datapath.ErrNoSuchDevice. Without it every name exists.
// As the switch's link watcher does, absent ports whose device is now
// there are attached, and attached ports whose device is gone become
// absent.
func (b *Backend) SetNetdevs(names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.netdevs = make(map[string]bool, len(names))
	for _, n := range names {
		b.netdevs[n] = true
	}
	for _, p := range b.ports {
		if have := b.netdevs[p.info.Name]; have != p.attached() {
			b.setAttachedLocked(p, have)
		}
	}
	b.table = b.table.Recompile(b.resolveLocked)
	b.livenessLocked()
}

// setAttachedLocked makes p attached or absent.
func (b *Backend) setAttachedLocked(p *port, attached bool) {
	if attached {
		p.info.State, p.info.Problem = "up", ""
		p.info.LinkUp, p.info.Carrier = true, true
		p.info.Queues, p.info.ActiveQueues, p.info.MaxQueues = 1, 1, 2
		return
	}
	p.info.State, p.info.Problem = datapath.PortAbsent, "no network device of that name"
	p.info.LinkUp, p.info.Carrier = false, false
	p.info.Queues, p.info.ActiveQueues, p.info.MaxQueues = 0, 0, 0
}

// SetMaxMasks sets how many distinct masks the fake steering classifier holds
// (steer.MaxMasks by default).
func (b *Backend) SetMaxMasks(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.maxMasks = n
}

// SetHealth sets what Health returns.
func (b *Backend) SetHealth(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.health = err
}

// SetPollers sets the pollers Stats reports.
func (b *Backend) SetPollers(p []datapath.PollerStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pollers = append([]datapath.PollerStats(nil), p...)
}

// SetPortStats replaces a port's counters (Name and OFPort are kept).
func (b *Backend) SetPortStats(name string, st datapath.PortStats) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.portLocked(name)
	if p == nil {
		return fmt.Errorf("port %s: %w", name, datapath.ErrNoSuchPort)
	}
	st.Name, st.OFPort = p.info.Name, p.info.OFPort
	p.stats = st
	return nil
}

// SetPortQueues sets what a port reports of its queues, as a queue change
// on its device would: served sockets, active and maximum queues, and the
// problem that makes it degraded ("" for none).
func (b *Backend) SetPortQueues(name string, served, active, max int, problem string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.portLocked(name)
	if p == nil {
		return fmt.Errorf("port %s: %w", name, datapath.ErrNoSuchPort)
	}
	p.info.Queues, p.info.ActiveQueues, p.info.MaxQueues, p.info.Problem = served, active, max, problem
	p.info.State = "up"
	if problem != "" {
		p.info.State = "degraded"
	}
	return nil
}

// CountFlow adds packets and bytes to flow id's counters, as traffic would.
func (b *Backend) CountFlow(id uint64, packets, bytes uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.table.Get(id)
	if e == nil {
		return fmt.Errorf("flow %d: %w", id, datapath.ErrNoSuchFlow)
	}
	e.Hit(packets, bytes, time.Now().UnixNano())
	return nil
}

// ExpireFlow removes a flow behind the API's back, as an idle timeout would.
func (b *Backend) ExpireFlow(id uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if nt, err := b.table.Apply(flowtable.Change{Delete: []uint64{id}}, b.resolveLocked); err == nil {
		b.table = nt
	}
}

// resolveLocked is the flow table's view of the fake ports.
func (b *Backend) resolveLocked(name string) (uint32, bool) {
	if p := b.portLocked(name); p != nil && p.attached() {
		return p.info.OFPort, true
	}
	return 0, false
}

// Changes returns how many ApplyFlows calls succeeded.
func (b *Backend) Changes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

// Close makes every later call fail with datapath.ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.ErrClosed
	}
	b.closed = true
	return nil
}

func (b *Backend) portLocked(name string) *port {
	for _, p := range b.ports {
		if p.info.Name == name {
			return p
		}
	}
	return nil
}

// AddPort implements ctl.Backend.
func (b *Backend) AddPort(spec datapath.PortSpec) (datapath.PortInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.PortInfo{}, datapath.ErrClosed
	}
	mode := spec.Mode
	switch mode {
	case "", datapath.ModeAuto:
		mode = datapath.ModeNative
	case datapath.ModeNative, datapath.ModeGeneric:
	default:
		return datapath.PortInfo{}, fmt.Errorf("mode %q: %w", spec.Mode, datapath.ErrInvalid)
	}
	if spec.Name == "" {
		return datapath.PortInfo{}, fmt.Errorf("empty port name: %w", datapath.ErrInvalid)
	}
	if b.portLocked(spec.Name) != nil {
		return datapath.PortInfo{}, fmt.Errorf("%s: %w", spec.Name, datapath.ErrPortExists)
	}
	absent := b.netdevs != nil && !b.netdevs[spec.Name]
	if absent && !spec.KeepAbsent {
		return datapath.PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, datapath.ErrNoSuchDevice)
	}
	n := b.nextOFPort
	if spec.OFPort != 0 && !slices.ContainsFunc(b.ports, func(p *port) bool { return p.info.OFPort == spec.OFPort }) {
		n = spec.OFPort
	}
	b.nextOFPort = max(b.nextOFPort, n+1)
	info := datapath.PortInfo{
		Name:    spec.Name,
		OFPort:  n,
		Ifindex: int(100 + n),
		MAC:     net.HardwareAddr{0x02, 0, 0, 0, 0, byte(n)}.String(),
		MTU:     1500,
		// A veth as `ip link add` makes it: two queues, one active.
		Queues:       1,
		ActiveQueues: 1,
		MaxQueues:    2,
		XDPMode:      mode,
		XSKMode:      "copy",
		UmemMode:     "shared",
		State:        "up",
		AddedAt:      time.Now().UTC().Truncate(time.Second),
		Live:         true,
		Liveness:     datapath.LivenessAuto,
		LinkUp:       true,
		Carrier:      true,
		FastPathOut:  "ok",
	}
	p := &port{info: info, stats: datapath.PortStats{Name: info.Name, OFPort: n, XDP: map[string]uint64{}}}
	if absent {
		b.setAttachedLocked(p, false)
	}
	b.ports = append(b.ports, p)
	slices.SortFunc(b.ports, func(x, y *port) int { return int(x.info.OFPort) - int(y.info.OFPort) })
	b.table = b.table.Recompile(b.resolveLocked)
	b.livenessLocked()
	return p.info, nil
}

// DeletePort implements ctl.Backend.
func (b *Backend) DeletePort(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.ErrClosed
	}
	for i, p := range b.ports {
		if p.info.Name == name {
			b.ports = append(b.ports[:i:i], b.ports[i+1:]...)
			b.table = b.table.Recompile(b.resolveLocked)
			return nil
		}
	}
	return fmt.Errorf("%s: %w", name, datapath.ErrNoSuchPort)
}

// Ports implements ctl.Backend.
func (b *Backend) Ports() []datapath.PortInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]datapath.PortInfo, 0, len(b.ports))
	for _, p := range b.ports {
		out = append(out, p.info)
	}
	return out
}

// Port implements ctl.Backend.
func (b *Backend) Port(name string) (datapath.PortInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.PortInfo{}, datapath.ErrClosed
	}
	p := b.portLocked(name)
	if p == nil {
		return datapath.PortInfo{}, fmt.Errorf("%s: %w", name, datapath.ErrNoSuchPort)
	}
	return p.info, nil
}

// PortStats implements ctl.Backend.
func (b *Backend) PortStats(name string) (datapath.PortStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.PortStats{}, datapath.ErrClosed
	}
	p := b.portLocked(name)
	if p == nil {
		return datapath.PortStats{}, fmt.Errorf("%s: %w", name, datapath.ErrNoSuchPort)
	}
	return copyStats(p.stats), nil
}

func copyStats(st datapath.PortStats) datapath.PortStats {
	xdp := make(map[string]uint64, len(st.XDP))
	for k, v := range st.XDP {
		xdp[k] = v
	}
	st.XDP = xdp
	return st
}

// Apply implements ctl.Backend with the switch's own pipeline
// (flowtable.Table.Apply): the same validation, replacement and atomicity,
// and the same limits on masks and rules unless SetMaxMasks or SetMaxRules
// lowered them.
func (b *Backend) Apply(change datapath.Change) (datapath.Applied, error) {
	return b.ApplyCommit(change, nil)
}

// ApplyCommit implements ctl.Backend: commit is told of the new pipeline
// before it is installed, as the switch does it.
func (b *Backend) ApplyCommit(change datapath.Change, commit datapath.Commit) (datapath.Applied, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.Applied{}, datapath.ErrClosed
	}
	nt, err := b.table.Apply(change, b.resolveLocked)
	if err != nil {
		return datapath.Applied{}, err
	}
	if n := nt.NumMasks(); n > b.maxMasks {
		return datapath.Applied{}, fmt.Errorf("%d masks, the classifier holds %d: %w", n, b.maxMasks, flowtable.ErrTooManyMasks)
	}
	if n := nt.NumRules(); n > b.maxRules {
		return datapath.Applied{}, fmt.Errorf("%d distinct matches, the XDP classifier holds %d: %w", n, b.maxRules, flowtable.ErrTooManyFlows)
	}
	unchanged := nt.Gen() == b.table.Gen()
	if !unchanged {
		if commit != nil {
			if err := commit(nt); err != nil {
				return datapath.Applied{}, err
			}
		}
		b.table = nt
		b.calls++
	}
	return datapath.Applied{Added: slices.Clone(nt.Added()), Removed: slices.Clone(nt.Removed()), Unchanged: unchanged}, nil
}

// Pipeline implements ctl.Backend.
func (b *Backend) Pipeline() *flowtable.Table {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.table
}

// flowInfo reports a flow as a switch whose ports all take redirected
// frames would: in XDP unless its actions need userspace.
func flowInfo(e *flowtable.Entry, now time.Time) datapath.FlowInfo {
	fi := datapath.FlowInfo{
		Flow:     e.Flow,
		Text:     e.Text(),
		Packets:  e.Packets(),
		Bytes:    e.Bytes(),
		Duration: now.Sub(e.Installed()),
		IdleAge:  now.Sub(e.LastUsed()),
		Datapath: datapath.DatapathXDP,
	}
	if why := e.FastPathReason(); why != "" {
		fi.Datapath, fi.DatapathReason = datapath.DatapathUser, why
	}
	return fi
}

// Flows implements ctl.Backend; flows come highest rank first, as the
// switch's do.
func (b *Backend) Flows() []datapath.FlowInfo { return b.SelectFlows(nil) }

// SelectFlows implements ctl.Backend.
func (b *Backend) SelectFlows(keep func(*flowtable.Flow) bool) []datapath.FlowInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	es := b.table.Select(keep)
	out := make([]datapath.FlowInfo, 0, len(es))
	for _, e := range es {
		out = append(out, flowInfo(e, now))
	}
	return out
}

// Flow implements ctl.Backend.
func (b *Backend) Flow(id uint64) (datapath.FlowInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.FlowInfo{}, datapath.ErrClosed
	}
	if e := b.table.Get(id); e != nil {
		return flowInfo(e, time.Now()), nil
	}
	return datapath.FlowInfo{}, fmt.Errorf("flow %d: %w", id, datapath.ErrNoSuchFlow)
}

// Groups implements ctl.Backend.
func (b *Backend) Groups() []datapath.GroupInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return datapath.GroupInfos(b.table, time.Now())
}

// Group implements ctl.Backend.
func (b *Backend) Group(id uint32) (datapath.GroupInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.GroupInfo{}, datapath.ErrClosed
	}
	return datapath.GroupInfoOf(b.table, id, time.Now())
}

// Tables implements ctl.Backend: the table's userspace counters (the fake
// has no XDP program counting table 0).
func (b *Backend) Tables() []datapath.TableStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.table.TableStats()
}

// SetDeadPorts takes the links of names down (and every other port's up),
// as netlink would tell the switch: ports on auto liveness follow.
func (b *Backend) SetDeadPorts(names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.ports {
		p.info.Carrier = !slices.Contains(names, p.info.Name)
	}
	b.livenessLocked()
}

// SetLiveness implements ctl.Backend.
func (b *Backend) SetLiveness(name string, l datapath.Liveness) (datapath.PortInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.PortInfo{}, datapath.ErrClosed
	}
	if _, err := datapath.ParseLiveness(string(l)); err != nil {
		return datapath.PortInfo{}, err
	}
	p := b.portLocked(name)
	if p == nil {
		return datapath.PortInfo{}, fmt.Errorf("%s: %w", name, datapath.ErrNoSuchPort)
	}
	p.info.Liveness = l
	b.livenessLocked()
	return p.info, nil
}

// livenessLocked derives every port's Live and the pipeline's dead ports.
func (b *Backend) livenessLocked() {
	var dead flowtable.PortSet
	for _, p := range b.ports {
		switch p.info.Liveness {
		case datapath.LivenessLive:
			p.info.Live = true
		case datapath.LivenessDead:
			p.info.Live = false
		default:
			p.info.Live = p.info.LinkUp && p.info.Carrier
		}
		if !p.attached() {
			p.info.Live = false
		}
		if !p.info.Live {
			dead.Add(p.info.OFPort)
		}
	}
	b.table = b.table.WithDeadPorts(dead)
}

// Stats implements ctl.Backend.
func (b *Backend) Stats() datapath.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := datapath.Stats{
		Pollers: append([]datapath.PollerStats(nil), b.pollers...),
		Flows:   b.table.Len(),
		Masks:   b.table.NumMasks(),
		Uptime:  time.Since(b.start),
	}
	for _, p := range b.ports {
		st.Ports = append(st.Ports, copyStats(p.stats))
	}
	sort.Slice(st.Ports, func(i, j int) bool { return st.Ports[i].OFPort < st.Ports[j].OFPort })
	return st
}

// SetFrames sets what Frames reports.
func (b *Backend) SetFrames(fs []datapath.FrameStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames = slices.Clone(fs)
}

// Frames implements ctl.Backend.
func (b *Backend) Frames() ([]datapath.FrameStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, datapath.ErrClosed
	}
	return slices.Clone(b.frames), nil
}

// Health implements ctl.Backend.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.ErrClosed
	}
	if b.health != nil {
		return b.health
	}
	for _, p := range b.ports {
		if !p.attached() {
			return fmt.Errorf("port %s absent: %s", p.info.Name, p.info.Problem)
		}
	}
	return nil
}

// Trace implements ctl.Backend. There is no XDP program here: its part is
// decided by the Go classifier (the real switch runs the loaded program),
// with a socket on every queue; the pipeline's part is the real table's.
func (b *Backend) Trace(in datapath.TraceInput) (datapath.TraceResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	res := datapath.TraceResult{Port: in.Port, Queue: in.Queue, Frame: in.Frame}
	if b.closed {
		return res, datapath.ErrClosed
	}
	p := b.portLocked(in.Port)
	if p == nil {
		return res, fmt.Errorf("trace: port %s: %w", in.Port, datapath.ErrNoSuchPort)
	}
	if !p.attached() {
		return res, fmt.Errorf("trace: port %s is %s (%s): %w", in.Port, p.info.State, p.info.Problem, datapath.ErrNoSuchDevice)
	}
	res.OFPort = p.info.OFPort
	x := &res.XDP
	switch flowtable.Extract(in.Frame, res.OFPort, &x.Key) {
	case flowtable.ParseMalformed:
		x.Verdict, x.Reason = datapath.XDPToHost, datapath.XDPReasonMalformed
	default:
		e := b.table.Lookup(&x.Key)
		if e == nil {
			x.Verdict, x.Reason = datapath.XDPToHost, datapath.XDPReasonNoMatch
			break
		}
		x.Reason, x.Flow, x.Rank = datapath.XDPReasonRule, e.Flow, e.Rank
		switch e.Flow.Verdict() {
		case steer.VerdictPass:
			x.Verdict = datapath.XDPToHost
		case steer.VerdictDrop:
			x.Verdict = datapath.XDPDropped
		default:
			x.Verdict = datapath.XDPToUser
		}
	}
	res.Complete(b.table)
	return res, nil
}
