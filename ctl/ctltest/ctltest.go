// Package ctltest has a fake ctl.Backend that behaves like the switch without
// touching the kernel: ports are names, flows live in a slice, and every
// change is validated and applied all or nothing. Tests of ctl, xvsctl and
// xvsd run the whole control plane against it.
package ctltest

import (
	"fmt"
	"net"
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
// walks; a flow with the same priority and match as an installed one
// replaces it. Flow IDs count up from 1; ofports count up from 1.
type Backend struct {
	mu         sync.Mutex
	start      time.Time
	closed     bool
	health     error
	netdevs    map[string]bool // nil: every name exists
	maxMasks   int
	ports      []*port // in ofport order
	nextOFPort uint32
	flows      []*flowEntry // in install order
	nextID     uint64
	pollers    []datapath.PollerStats
	calls      int // ApplyFlows calls that changed the table
}

type port struct {
	info  datapath.PortInfo
	stats datapath.PortStats
}

type flowEntry struct {
	flow    *flowtable.Flow
	added   time.Time
	packets uint64
	bytes   uint64
}

// New returns an empty fake switch.
func New() *Backend {
	return &Backend{start: time.Now(), maxMasks: steer.MaxMasks, nextOFPort: 1, nextID: 1}
}

// SetNetdevs limits the netdevs AddPort finds to names; AddPort of any other
// name fails with datapath.ErrNoSuchPort. Without it every name exists.
func (b *Backend) SetNetdevs(names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.netdevs = make(map[string]bool, len(names))
	for _, n := range names {
		b.netdevs[n] = true
	}
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
	for _, e := range b.flows {
		if e.flow.ID == id {
			e.packets += packets
			e.bytes += bytes
			return nil
		}
	}
	return fmt.Errorf("flow %d: %w", id, datapath.ErrNoSuchFlow)
}

// ExpireFlow removes a flow behind the API's back, as an idle timeout would.
func (b *Backend) ExpireFlow(id uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, e := range b.flows {
		if e.flow.ID == id {
			b.flows = append(b.flows[:i:i], b.flows[i+1:]...)
			return
		}
	}
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
	if b.netdevs != nil && !b.netdevs[spec.Name] {
		return datapath.PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, datapath.ErrNoSuchDevice)
	}
	n := b.nextOFPort
	b.nextOFPort++
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
	}
	b.ports = append(b.ports, &port{info: info, stats: datapath.PortStats{
		Name: info.Name, OFPort: n, XDP: map[string]uint64{},
	}})
	return info, nil
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

type maskKey struct {
	inPort bool
	mask   flowtable.Key
}

// ApplyFlows implements ctl.Backend: Replace, then Delete, then Add, all or
// nothing.
func (b *Backend) ApplyFlows(change datapath.FlowChange) ([]uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, datapath.ErrClosed
	}
	var table []*flowEntry
	if !change.Replace {
		table = append(table, b.flows...)
	}
	for _, id := range change.Delete {
		i := indexOf(table, id)
		if i < 0 {
			return nil, fmt.Errorf("flow %d: %w", id, datapath.ErrNoSuchFlow)
		}
		table = append(table[:i:i], table[i+1:]...)
	}
	now := time.Now()
	ids := make([]uint64, len(change.Add))
	nextID := b.nextID
	for i, f := range change.Add {
		if f == nil {
			return nil, fmt.Errorf("flow %d: nil: %w", i, datapath.ErrInvalid)
		}
		if f.Match.InPort != "" && b.portLocked(f.Match.InPort) == nil {
			return nil, fmt.Errorf("flow %d: in_port %s: %w", i, f.Match.InPort, datapath.ErrNoSuchPort)
		}
		for _, a := range f.Actions {
			if a.Type == flowtable.ActOutput && b.portLocked(a.Port) == nil {
				return nil, fmt.Errorf("flow %d: output %s: %w", i, a.Port, datapath.ErrNoSuchPort)
			}
		}
		c := *f
		c.ID = nextID
		ids[i] = nextID
		nextID++
		for j, e := range table {
			if e.flow.Priority == c.Priority && e.flow.Match == c.Match {
				table = append(table[:j:j], table[j+1:]...)
				break
			}
		}
		table = append(table, &flowEntry{flow: &c, added: now})
	}
	masks := make(map[maskKey]bool)
	for _, e := range table {
		masks[maskKey{e.flow.Match.InPort != "", e.flow.Match.Mask}] = true
	}
	if len(masks) > b.maxMasks {
		return nil, fmt.Errorf("%d masks, the classifier holds %d: %w", len(masks), b.maxMasks, flowtable.ErrTooManyMasks)
	}
	b.flows = table
	b.nextID = nextID
	b.calls++
	return ids, nil
}

func indexOf(table []*flowEntry, id uint64) int {
	for i, e := range table {
		if e.flow.ID == id {
			return i
		}
	}
	return -1
}

func (e *flowEntry) info(now time.Time) datapath.FlowInfo {
	return datapath.FlowInfo{
		Flow:     e.flow,
		Packets:  e.packets,
		Bytes:    e.bytes,
		Duration: now.Sub(e.added),
		IdleAge:  now.Sub(e.added),
	}
}

// Flows implements ctl.Backend; flows come in install order.
func (b *Backend) Flows() []datapath.FlowInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	out := make([]datapath.FlowInfo, 0, len(b.flows))
	for _, e := range b.flows {
		out = append(out, e.info(now))
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
	if i := indexOf(b.flows, id); i >= 0 {
		return b.flows[i].info(time.Now()), nil
	}
	return datapath.FlowInfo{}, fmt.Errorf("flow %d: %w", id, datapath.ErrNoSuchFlow)
}

// Stats implements ctl.Backend.
func (b *Backend) Stats() datapath.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := datapath.Stats{
		Pollers: append([]datapath.PollerStats(nil), b.pollers...),
		Flows:   len(b.flows),
		Uptime:  time.Since(b.start),
	}
	masks := make(map[maskKey]bool)
	for _, e := range b.flows {
		masks[maskKey{e.flow.Match.InPort != "", e.flow.Match.Mask}] = true
	}
	st.Masks = len(masks)
	for _, p := range b.ports {
		st.Ports = append(st.Ports, copyStats(p.stats))
	}
	sort.Slice(st.Ports, func(i, j int) bool { return st.Ports[i].OFPort < st.Ports[j].OFPort })
	return st
}

// Health implements ctl.Backend.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return datapath.ErrClosed
	}
	return b.health
}
