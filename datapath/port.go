package datapath

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// Port is a configured port. Its name, ofport and the XDP mode asked for
// never change. While it is attached, its identity on the device
// (ifindex, MAC, MTU, XDP attachment) is fixed; an absent port (its device
// is missing, or could not be attached) has none, and gets them again when
// it is attached. Its queues follow the device's active RX queues
// (queues.go): socks, routeQueues and retired change under the switch's
// mutex, and what PortInfo shows of them is published in state. Its link
// state (up, carrier, liveness) changes under the switch's mutex too, as do
// attached and absence.
type Port struct {
	name    string
	ofport  uint32
	mode    bpf.Mode // asked for
	ifindex int
	mac     net.HardwareAddr
	mtu     int
	kind    string // netlink link type: "veth", "device", ...
	xdp     *bpf.Attachment
	xdpMode XDPMode
	added   time.Time

	attached    bool                      // the device is the port's: XDP attached, sockets open
	absence     string                    // why not attached: the problem PortInfo shows
	noDevice    bool                      // not attached because no device has the name
	attachAt    time.Time                 // an unattached port with a device: its next try
	xdpBase     [steer.NumCounters]uint64 // the XDP counters of the ofport when the port got it
	socks       []*portSocket             // by queue: queues 0..len-1 are served
	routeQueues int                       // the queue count the pollers' routes use
	retryAt     time.Time                 // a degraded port's next try, but for a port change
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
	shared bool         // umem is one of the poller's UMEMs, not the socket's own
	extra  bool         // ... and not its first (umem.go)
	txq    []afxdp.Desc // descriptors waiting for the TX ring (poller-owned)
	rhythm rhythm       // when its frames come (poller-owned, idle.go)
	stats  portCounters
	drops  dropCounters
}

// absentState is the state of a port that is not attached.
func (p *Port) absentState() string {
	if p.noDevice {
		return PortAbsent
	}
	return PortFailed
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
	case !p.attached:
		info.FastPathOut = "port_" + info.State // port_absent, port_failed
	case off:
		info.FastPathOut = reasonFastPathOff
	case !tx.ok:
		info.FastPathOut = tx.why
	}
	return info
}

// infoLocked describes p; the switch's mutex must be held.
func (p *Port) infoLocked() PortInfo {
	info := PortInfo{
		Name:     p.name,
		OFPort:   p.ofport,
		AddedAt:  p.added,
		Live:     p.link.live(),
		Liveness: p.link.liveness,
		LinkUp:   p.link.up,
		Carrier:  p.link.carrier,
	}
	if !p.attached {
		info.State, info.Problem = p.absentState(), p.absence
		return info
	}
	st := p.state.Load()
	info.State = PortUp
	if st.problem != "" {
		info.State = PortDegraded
	}
	info.Ifindex, info.MAC, info.MTU = p.ifindex, p.mac.String(), p.mtu
	info.Queues, info.ActiveQueues, info.MaxQueues = st.queues, st.active, st.max
	info.XDPMode, info.XSKMode, info.UmemMode = p.xdpMode, st.xskMode, st.umemMode
	info.Problem = st.problem
	return info
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
// mode, a device that cannot be a port, no ofport left), ErrPortExists,
// ErrBusy (another program holds the device's XDP hook or one of its
// queues), ErrNotSupported (native XDP asked of a driver without it), and
// name the device and, for a socket, the queue. With spec.KeepAbsent, a
// device that is missing or cannot be attached is no error: the port is
// added absent (see PortSpec).
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
	_, known := s.ofports[spec.Name]
	ofport, err := s.allocOFPortLocked(spec.Name, spec.OFPort)
	if err != nil {
		return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, err)
	}
	p := &Port{name: spec.Name, ofport: ofport, mode: bmode, added: time.Now(), link: linkState{liveness: LivenessAuto}}
	p.state.Store(&portState{})
	if !known {
		// The number may have been another name's: its XDP counters start
		// from here for this port.
		if cs, err := s.bpf.Counters(ofport); err == nil {
			for i, v := range cs {
				p.xdpBase[i] = v.Packets
			}
		}
	}
	s.ports[p.name] = p // the pollers' routes and the flows see it once attached
	if err := s.attachLocked(p); err != nil {
		if !spec.KeepAbsent {
			delete(s.ports, p.name)
			if !known {
				delete(s.ofports, spec.Name) // a port refused holds no number
			}
			return PortInfo{}, fmt.Errorf("port %s: %w", spec.Name, err)
		}
		s.setAbsentLocked(p, err)
		s.publishLivenessLocked()
		s.log.Warn("port added absent: attached when its device appears", "port", p.name, "ofport", p.ofport, "state", p.absentState(), "problem", p.absence)
		s.emit(Event{Type: EventPortAdded, Port: p.name})
		return s.portInfoLocked(p), nil
	}
	st := p.state.Load()
	info := s.portInfoLocked(p)
	s.log.Info("port added", "port", p.name, "ofport", p.ofport, "queues", st.queues, "max_queues", st.max,
		"xdp", p.xdpMode, "xsk", st.xskMode, "umem", st.umemMode, "live", p.link.live(), "fast_path_out", info.FastPathOut)
	if st.problem != "" {
		s.log.Warn("port degraded", "port", p.name, "problem", st.problem)
	}
	s.emit(Event{Type: EventPortAdded, Port: p.name, Live: p.link.live()})
	// A change of one port is a moment to look at the others' queues.
	s.checkQueuesLocked(0, true)
	return info, nil
}

// setAbsentLocked records why p is not attached.
func (s *Switch) setAbsentLocked(p *Port, err error) {
	p.attached = false
	p.noDevice = errors.Is(err, ErrNoSuchDevice)
	p.absence = err.Error()
	if p.noDevice {
		p.absence = "no network device of that name"
	}
	p.attachAt = time.Now().Add(attachRetryDelay)
	was := p.link
	p.link = linkState{liveness: p.link.liveness, absent: true}
	if was != p.link {
		s.livenessChangedLocked(p, was)
	}
}

// attachRetryDelay is how long a port whose device exists but could not
// be attached waits before the periodic check tries again (a link update
// about the device tries at once).
const attachRetryDelay = 10 * time.Second

// attachLocked attaches p, not attached, to the device of its name: XDP,
// sockets, the pollers' routes, and the flows that name it. On error
// nothing of it is left.
func (s *Switch) attachLocked(p *Port) error {
	link, err := netlink.LinkByName(p.name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return ErrNoSuchDevice
		}
		return err
	}
	a := link.Attrs()
	if a.Flags&net.FlagLoopback != 0 {
		return fmt.Errorf("a loopback device cannot be a port: %w", ErrInvalid)
	}
	if a.MTU+14 > s.maxFrame() {
		return fmt.Errorf("MTU %d does not fit a %d-byte frame (at most %d): %w",
			a.MTU, s.cfg.FrameSize, s.maxFrame()-14, ErrInvalid)
	}
	p.ifindex, p.mac, p.mtu, p.kind = a.Index, a.HardwareAddr, a.MTU, link.Type()
	was := p.link
	p.link = linkStateOf(uint32(a.RawFlags))
	p.link.liveness = was.liveness
	undoLink := func() { p.link = was }
	qs := s.readQueues(p, a.NumRxQueues)
	if err := s.openPortLocked(p, p.mode, qs); err != nil {
		s.closePortLocked(p)
		undoLink()
		return err
	}
	// Whether the fast path may redirect to it, before any rule can.
	txOK, txWhy, err := redirectTarget(p.ifindex)
	if err != nil {
		s.log.Warn("read the port's xdp features: its flows stay in userspace", "port", p.name, "err", err)
	}
	if err := s.setPortTxLocked(p, txOK, txWhy); err != nil {
		s.closePortLocked(p)
		undoLink()
		return err
	}
	p.attached = true
	p.absence, p.noDevice = "", false
	byOF := *s.portsByOF.Load()
	byOF[p.ofport] = p
	s.portsByOF.Store(&byOF)
	undo := func() {
		p.attached = false
		byOF := *s.portsByOF.Load()
		byOF[p.ofport] = nil
		s.portsByOF.Store(&byOF)
		_ = s.closePortLocked(p)
		undoLink()
	}
	// Pollers without a socket of the port hand its frames to those with.
	if err := s.rerouteLocked(); err != nil {
		undo()
		return err
	}
	// Flows naming this port (kept from before it was removed, or while it
	// was absent) come alive.
	if err := s.publishLocked(s.table.Load().Recompile(s.resolveLocked), nil); err != nil {
		// Undo: a port whose flows cannot be compiled in is not added.
		undo()
		return fmt.Errorf("recompile flows: %w", err)
	}
	if was.live() != p.link.live() {
		s.livenessChangedLocked(p, was)
	} else {
		s.publishLivenessLocked()
	}
	return nil
}

// attachAbsentLocked tries to attach p, a port that is not attached, now
// that a device of its name may exist.
func (s *Switch) attachAbsentLocked(p *Port) {
	if err := s.attachLocked(p); err != nil {
		was := p.absence
		s.setAbsentLocked(p, err)
		if p.absence != was {
			s.log.Warn("port not attached", "port", p.name, "state", p.absentState(), "problem", p.absence)
		}
		return
	}
	st := p.state.Load()
	s.log.Info("port attached: its device appeared", "port", p.name, "ofport", p.ofport, "ifindex", p.ifindex,
		"queues", st.queues, "xdp", p.xdpMode, "live", p.link.live())
	s.emit(Event{Type: EventLink, Port: p.name, Up: p.link.up, Carrier: p.link.carrier})
	s.checkQueuesLocked(0, true)
}

// detachLocked makes p, attached, absent: its device went (or was
// renamed). Its flows stay, compiled as a removed port's, its counters are
// kept, and it is attached again when a device of its name appears.
func (s *Switch) detachLocked(p *Port, why string) {
	p.attached = false
	byOF := *s.portsByOF.Load()
	byOF[p.ofport] = nil
	s.portsByOF.Store(&byOF)
	if err := s.publishLocked(s.table.Load().Recompile(s.resolveLocked), nil); err != nil {
		s.log.Error("recompile flows of a port whose device went", "port", p.name, "err", err)
	}
	for _, ps := range p.socks {
		p.retired.add(ps)
	}
	if err := s.closePortLocked(p); err != nil {
		s.log.Warn("close port whose device went", "port", p.name, "err", err)
	}
	p.ifindex, p.mac, p.mtu = 0, nil, 0
	p.state.Store(&portState{})
	s.setAbsentLocked(p, ErrNoSuchDevice)
	s.publishLivenessLocked()
	s.log.Warn("port absent: its device went", "port", p.name, "ofport", p.ofport, "why", why)
	s.emit(Event{Type: EventLink, Port: p.name})
	s.checkQueuesLocked(0, true)
}

// allocOFPortLocked gives name an ofport: the one it has, else want if no
// name holds it, else a free one. When none is free, the numbers of
// removed ports that no flow or group names any more are freed first.
func (s *Switch) allocOFPortLocked(name string, want uint32) (uint32, error) {
	if n, ok := s.ofports[name]; ok {
		return n, nil
	}
	for try := 0; try < 2; try++ {
		held := make(map[uint32]bool, len(s.ofports))
		for _, n := range s.ofports {
			held[n] = true
		}
		if want >= 1 && want <= s.maxOF && !held[want] {
			s.ofports[name] = want
			return want, nil
		}
		for i := range s.maxOF {
			n := (s.nextOF-1+i)%s.maxOF + 1
			if !held[n] {
				s.ofports[name] = n
				s.nextOF = n%s.maxOF + 1
				return n, nil
			}
		}
		if try == 0 {
			s.releaseOFPortsLocked()
		}
	}
	used := s.portNamesInUseLocked()
	var flows int
	for n := range s.ofports {
		if s.ports[n] == nil && used[n] {
			flows++
		}
	}
	return 0, fmt.Errorf("all %d ofports are taken: %d by configured ports, %d by removed ports that flows or groups still name (delete those to free their numbers): %w",
		s.maxOF, len(s.ports), flows, ErrInvalid)
}

// releaseOFPortsLocked frees the numbers of names that are no port and
// that no flow or group names.
func (s *Switch) releaseOFPortsLocked() {
	used := s.portNamesInUseLocked()
	var freed []string
	for name := range s.ofports {
		if s.ports[name] == nil && !used[name] {
			delete(s.ofports, name)
			freed = append(freed, name)
		}
	}
	if len(freed) > 0 {
		s.log.Info("ofports of removed ports freed", "ports", len(freed))
	}
}

// portNamesInUseLocked is the set of port names the pipeline's flows and
// groups name (a name written quoted, "2", is the port 2).
func (s *Switch) portNamesInUseLocked() map[string]bool {
	used := make(map[string]bool)
	use := func(ref string) {
		if name := flowtable.PortName(ref); name != "" {
			used[name] = true
		}
	}
	t := s.table.Load()
	for _, e := range t.Entries() {
		use(e.Flow.Match.InPort)
		for i := range e.Flow.Actions {
			use(e.Flow.Actions[i].PortRef())
		}
	}
	for _, ge := range t.Groups() {
		for _, n := range ge.Group.PortRefs() {
			use(n)
		}
	}
	return used
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
		switch {
		case !ps.shared:
			st.umemMode = "own"
		case ps.extra && st.umemMode == "shared":
			st.umemMode = "extra"
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
	if p.ifindex > 0 {
		errs = append(errs, s.bpf.DeletePort(p.ifindex))
	}
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

// DeletePort removes a port, attached or absent: its XDP program is
// detached (the host gets its traffic back), its sockets drained and
// closed. Flows that name it stay installed: outputs to it count as drops
// and in_port matches match nothing until a port of that name is added
// again.
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
	if !p.attached {
		s.publishLivenessLocked()
		s.log.Info("port removed", "port", p.name, "ofport", p.ofport, "state", p.absentState())
		s.emit(Event{Type: EventPortRemoved, Port: p.name})
		return nil
	}
	p.attached = false
	byOF := *s.portsByOF.Load()
	byOF[p.ofport] = nil
	s.portsByOF.Store(&byOF)
	var errs []error
	if !s.unsteered {
		if err := s.publishLocked(s.table.Load().Recompile(s.resolveLocked), nil); err != nil {
			errs = append(errs, fmt.Errorf("recompile flows: %w", err))
		}
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

// portsLocked returns the ports, attached or not, by ofport.
func (s *Switch) portsLocked() []*Port {
	out := make([]*Port, 0, len(s.ports))
	for _, p := range s.ports {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Port) int { return cmp.Compare(a.ofport, b.ofport) })
	return out
}

// Ports returns the ports, attached or absent, by ofport.
func (s *Switch) Ports() []PortInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PortInfo
	for _, p := range s.portsLocked() {
		out = append(out, s.portInfoLocked(p))
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
