package datapath

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// Port is a live port. Its identity (name, ofport, ifindex, MAC, MTU, XDP
// attachment) is set when it is added and never changes. Its queues follow
// the device's active RX queues (queues.go): socks, routeQueues and
// retired change under the switch's mutex, and what PortInfo shows of
// them is published in state. Its link state (up, carrier, liveness)
// changes under the switch's mutex too.
type Port struct {
	name    string
	ofport  uint32
	ifindex int
	mac     net.HardwareAddr
	mtu     int
	kind    string // netlink link type: "veth", "device", ...
	xdp     *bpf.Attachment
	xdpMode XDPMode
	added   time.Time

	socks       []*portSocket // by queue: queues 0..len-1 are served
	routeQueues int           // the queue count the pollers' routes use
	retryAt     time.Time     // a degraded port's next try, but for a port change
	retired     retiredCounters
	state       atomic.Pointer[portState]
	link        linkState // guarded by the switch's mutex
}

// portState is what PortInfo shows of a port's queues and sockets.
type portState struct {
	queues, active, max int
	xskMode, umemMode   string
	problem             string // why not every active queue is served
}

// retiredCounters keep the counts of sockets a queue change closed, so a
// port's counters never go back.
type retiredCounters struct {
	rxPackets, rxBytes, txPackets, txBytes uint64
	drops                                  Drops
}

// portSocket is one queue's socket of a port, owned by that queue's poller.
type portSocket struct {
	port   *Port
	queue  int
	sock   *afxdp.Socket
	umem   *afxdp.Umem  // the UMEM the socket is bound to
	shared bool         // umem is the poller's shared UMEM
	txq    []afxdp.Desc // descriptors waiting for the TX ring (poller-owned)
	stats  portCounters
	drops  dropCounters
}

// portInfoLocked describes p; the switch's mutex must be held.
func (s *Switch) portInfoLocked(p *Port) PortInfo {
	info := p.infoLocked()
	s.fast.mu.Lock()
	tx := s.fast.tx[p.ofport]
	off := s.fast.off
	s.fast.mu.Unlock()
	info.FastPathOut = "ok"
	switch {
	case off:
		info.FastPathOut = reasonFastPathOff
	case !tx.ok:
		info.FastPathOut = tx.why
	}
	return info
}

// infoLocked describes p; the switch's mutex must be held.
func (p *Port) infoLocked() PortInfo {
	st := p.state.Load()
	state := "up"
	if st.problem != "" {
		state = "degraded"
	}
	return PortInfo{
		Name:         p.name,
		OFPort:       p.ofport,
		Ifindex:      p.ifindex,
		MAC:          p.mac.String(),
		MTU:          p.mtu,
		Queues:       st.queues,
		ActiveQueues: st.active,
		MaxQueues:    st.max,
		XDPMode:      p.xdpMode,
		XSKMode:      st.xskMode,
		UmemMode:     st.umemMode,
		State:        state,
		Problem:      st.problem,
		AddedAt:      p.added,
		Live:         p.link.live(),
		Liveness:     p.link.liveness,
		LinkUp:       p.link.up,
		Carrier:      p.link.carrier,
	}
}

// maxFrame is the largest frame (Ethernet header included) a UMEM chunk
// carries with room for two VLAN pushes.
func (s *Switch) maxFrame() int {
	return s.cfg.FrameSize - afxdp.PacketHeadroom - s.cfg.Headroom - 2*4
}

// AddPort adds the netdev spec.Name as a port: XDP program attached, one
// AF_XDP socket per active RX queue, each served by that queue's poller.
//
// Errors wrap ErrNoSuchDevice (no such netdev), ErrInvalid (a bad name or
// mode, a device that cannot be a port), ErrPortExists, ErrBusy (another
// program holds the device's XDP hook or one of its queues),
// ErrNotSupported (native XDP asked of a driver without it), and name the
// device and, for a socket, the queue.
func (s *Switch) AddPort(spec PortSpec) (PortInfo, error) {
	mode := spec.Mode
	if mode == "" {
		mode = ModeAuto
	}
	var bmode bpf.Mode
	switch mode {
	case ModeAuto:
		bmode = bpf.ModeAuto
	case ModeNative:
		bmode = bpf.ModeNative
	case ModeGeneric:
		bmode = bpf.ModeGeneric
	default:
		return PortInfo{}, fmt.Errorf("port %s: mode %q: must be auto, native or generic: %w", spec.Name, spec.Mode, ErrInvalid)
	}
	if spec.Name == "" || len(spec.Name) > 15 || strings.ContainsAny(spec.Name, "/ \t\n,:=") {
		return PortInfo{}, fmt.Errorf("port name %q: not a valid interface name: %w", spec.Name, ErrInvalid)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return PortInfo{}, ErrClosed
	}
	if _, ok := s.ports[spec.Name]; ok {
		return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, ErrPortExists)
	}
	link, err := netlink.LinkByName(spec.Name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, ErrNoSuchDevice)
		}
		return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, err)
	}
	a := link.Attrs()
	if a.Flags&net.FlagLoopback != 0 {
		return PortInfo{}, fmt.Errorf("port %s: a loopback device cannot be a port: %w", spec.Name, ErrInvalid)
	}
	if a.MTU+14 > s.maxFrame() {
		return PortInfo{}, fmt.Errorf("port %s: MTU %d does not fit a %d-byte frame (at most %d): %w",
			spec.Name, a.MTU, s.cfg.FrameSize, s.maxFrame()-14, ErrInvalid)
	}
	ofport, ok := s.ofports[spec.Name]
	if !ok {
		if s.nextOF >= steer.MaxPorts {
			return PortInfo{}, fmt.Errorf("port %s: all %d ofports are taken: %w", spec.Name, steer.MaxPorts-1, ErrInvalid)
		}
		ofport = s.nextOF
	}
	p := &Port{
		name:    spec.Name,
		ofport:  ofport,
		ifindex: a.Index,
		mac:     a.HardwareAddr,
		mtu:     a.MTU,
		kind:    link.Type(),
		added:   time.Now(),
		link:    linkStateOf(uint32(a.RawFlags)),
	}
	p.state.Store(&portState{})
	qs := s.readQueues(p, a.NumRxQueues)
	if err := s.openPortLocked(p, bmode, qs); err != nil {
		s.closePortLocked(p)
		return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, err)
	}
	if !ok {
		s.ofports[spec.Name] = ofport
		s.nextOF++
	}
	txOK, txWhy, err := redirectTarget(p.ifindex)
	if err != nil {
		s.log.Warn("read the port's xdp features: its flows stay in userspace", "port", p.name, "err", err)
	}
	if err := s.setPortTxLocked(p, txOK, txWhy); err != nil {
		s.closePortLocked(p)
		return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, err)
	}
	s.ports[p.name] = p
	byOF := *s.portsByOF.Load()
	byOF[p.ofport] = p
	s.portsByOF.Store(&byOF)
	undo := func() {
		delete(s.ports, p.name)
		byOF := *s.portsByOF.Load()
		byOF[p.ofport] = nil
		s.portsByOF.Store(&byOF)
		_ = s.closePortLocked(p) // the ofport stays the name's, as after a removal
	}
	// Pollers without a socket of the port hand its frames to those with.
	if err := s.rerouteLocked(); err != nil {
		undo()
		return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, err)
	}
	// Flows naming this port (kept from before it was removed) come alive.
	if err := s.publishLocked(s.table.Load().Recompile(s.resolveLocked)); err != nil {
		// Undo: a port whose flows cannot be compiled in is not added.
		undo()
		return PortInfo{}, fmt.Errorf("port %s: recompile flows: %w", spec.Name, err)
	}
	s.publishLivenessLocked()
	st := p.state.Load()
	s.log.Info("port added", "port", p.name, "ofport", p.ofport, "queues", st.queues, "max_queues", st.max,
		"xdp", p.xdpMode, "xsk", st.xskMode, "umem", st.umemMode, "live", p.link.live(), "fast_path_out", txOK, "reason", txWhy)
	if st.problem != "" {
		s.log.Warn("port degraded", "port", p.name, "problem", st.problem)
	}
	s.emit(Event{Type: EventPortAdded, Port: p.name, Live: p.link.live()})
	// A change of one port is a moment to look at the others' queues.
	s.checkQueuesLocked(0, true)
	return s.portInfoLocked(p), nil
}

// openPortLocked attaches XDP and opens the port's sockets, one per active
// queue of qs. On error the caller undoes what was done with
// closePortLocked.
func (s *Switch) openPortLocked(p *Port, mode bpf.Mode, qs afxdp.Queues) error {
	if err := s.bpf.SetPort(p.ifindex, p.ofport); err != nil {
		return err
	}
	att, err := s.bpf.Attach(p.ifindex, mode)
	if err != nil {
		return attachError(err, mode)
	}
	p.xdp = att
	p.xdpMode = XDPMode(att.Mode().String())
	for q := range min(qs.Active, steer.MaxQueues) {
		if err := s.openSocketLocked(p, q); err != nil {
			return err
		}
	}
	p.routeQueues = len(p.socks)
	s.publishStateLocked(p, qs, "")
	return nil
}

// openSocketLocked opens port p's socket on queue q (the next one) and
// registers it with the XDP program.
func (s *Switch) openSocketLocked(p *Port, q int) error {
	pl, err := s.pollerLocked(q)
	if err != nil {
		return err
	}
	ps, err := pl.addSocket(p, q) // afxdp waits out a queue the kernel is still releasing
	if err != nil {
		return fmt.Errorf("queue %d: %w", q, socketError(err))
	}
	p.socks = append(p.socks, ps)
	if err := s.bpf.RegisterSocket(p.ofport, q, ps.sock.Fd()); err != nil {
		return fmt.Errorf("queue %d: %w", q, err)
	}
	return nil
}

// publishStateLocked publishes what PortInfo shows of p's queues: qs as the
// device reported them, and problem (or the problem of serving fewer queues
// than are active).
func (s *Switch) publishStateLocked(p *Port, qs afxdp.Queues, problem string) {
	st := &portState{queues: len(p.socks), active: qs.Active, max: qs.Max, problem: problem, umemMode: "shared"}
	if st.problem == "" && st.queues < st.active {
		if st.active > steer.MaxQueues {
			st.problem = fmt.Sprintf("the device has %d active RX queues; xvs serves at most %d, the others pass to the kernel", st.active, steer.MaxQueues)
		} else {
			st.problem = fmt.Sprintf("%d of %d active RX queues served", st.queues, st.active)
		}
	}
	if len(p.socks) > 0 {
		st.xskMode = p.socks[0].sock.Mode().String()
	}
	for _, ps := range p.socks {
		if !ps.shared {
			st.umemMode = "own"
		}
	}
	p.state.Store(st)
}

// closePortLocked undoes openPortLocked, in the reverse order: the kernel
// stops redirecting first, the other pollers stop handing frames to the
// port's pollers, then the pollers drain and close the sockets. The port
// must not be in s.ports any more.
func (s *Switch) closePortLocked(p *Port) error {
	var errs []error
	errs = append(errs, s.setPortTxLocked(p, false, ""))
	if p.xdp != nil {
		errs = append(errs, p.xdp.Close())
		p.xdp = nil
	}
	for _, ps := range p.socks {
		errs = append(errs, s.bpf.UnregisterSocket(p.ofport, ps.queue))
	}
	errs = append(errs, s.bpf.DeletePort(p.ifindex))
	errs = append(errs, s.rerouteLocked())
	for _, ps := range p.socks {
		errs = append(errs, s.pollers[ps.queue].removeSocket(ps))
	}
	p.socks = nil
	return errors.Join(errs...)
}

// attachError gives an XDP attach error its kind: another program holds the
// hook (EBUSY, or EEXIST when it is attached in the other mode), or the
// driver has no native mode.
func attachError(err error, mode bpf.Mode) error {
	switch {
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return fmt.Errorf("xdp hook %w: %w", ErrBusy, err)
	case mode == bpf.ModeNative && errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("xdp mode native %w: %w", ErrNotSupported, err)
	}
	return err
}

// socketError gives a bind error its kind: another socket holds the queue,
// or the driver cannot do the mode.
func socketError(err error) error {
	switch {
	case errors.Is(err, afxdp.ErrBusy):
		return kindOf(ErrBusy, err)
	case errors.Is(err, afxdp.ErrNotSupported):
		return kindOf(ErrNotSupported, err)
	}
	return err
}

// kindError is an error of a kind (a sentinel) its message does not name.
type kindError struct{ kind, err error }

func kindOf(kind, err error) error   { return &kindError{kind: kind, err: err} }
func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

// DeletePort removes a port: its XDP program is detached (the host gets its
// traffic back), its sockets drained and closed. Flows that name it stay
// installed: outputs to it count as drops and in_port matches match nothing
// until a port of that name is added again.
func (s *Switch) DeletePort(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	p, ok := s.ports[name]
	if !ok {
		return fmt.Errorf("port %s: %w", name, ErrNoSuchPort)
	}
	return s.removePortLocked(p)
}

func (s *Switch) removePortLocked(p *Port) error {
	delete(s.ports, p.name)
	byOF := *s.portsByOF.Load()
	byOF[p.ofport] = nil
	s.portsByOF.Store(&byOF)
	var errs []error
	if err := s.publishLocked(s.table.Load().Recompile(s.resolveLocked)); err != nil {
		errs = append(errs, fmt.Errorf("recompile flows: %w", err))
	}
	if err := s.closePortLocked(p); err != nil {
		errs = append(errs, err)
	}
	s.publishLivenessLocked()
	s.log.Info("port removed", "port", p.name, "ofport", p.ofport)
	s.emit(Event{Type: EventPortRemoved, Port: p.name})
	if !s.closed {
		s.checkQueuesLocked(0, true)
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove port %s: %w", p.name, errors.Join(errs...))
	}
	return nil
}

// Ports returns the ports, by ofport.
func (s *Switch) Ports() []PortInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PortInfo
	for _, p := range s.portsByOF.Load() {
		if p != nil {
			out = append(out, s.portInfoLocked(p))
		}
	}
	return out
}

// Port returns one port by name.
func (s *Switch) Port(name string) (PortInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.ports[name]; ok {
		return s.portInfoLocked(p), nil
	}
	return PortInfo{}, fmt.Errorf("port %s: %w", name, ErrNoSuchPort)
}
