package datapath

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/bpf"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// Port is a live port. Its fields are set when it is added and never change.
type Port struct {
	name     string
	ofport   uint32
	ifindex  int
	mac      net.HardwareAddr
	mtu      int
	queues   int
	xdp      *bpf.Attachment
	xdpMode  XDPMode
	xskMode  string
	umemMode string
	added    time.Time
	socks    []*portSocket // by queue
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
}

func (s *Switch) portInfo(p *Port) PortInfo {
	s.fast.mu.Lock()
	tx := s.fast.tx[p.ofport]
	off := s.fast.off
	s.fast.mu.Unlock()
	out := "ok"
	switch {
	case off:
		out = reasonFastPathOff
	case !tx.ok:
		out = tx.why
	}
	return PortInfo{
		FastPathOut: out,
		Name:        p.name,
		OFPort:      p.ofport,
		Ifindex:     p.ifindex,
		MAC:         p.mac.String(),
		MTU:         p.mtu,
		Queues:      p.queues,
		XDPMode:     p.xdpMode,
		XSKMode:     p.xskMode,
		UmemMode:    p.umemMode,
		State:       "up",
		AddedAt:     p.added,
	}
}

// maxFrame is the largest frame (Ethernet header included) a UMEM chunk
// carries with room for two VLAN pushes.
func (s *Switch) maxFrame() int {
	return s.cfg.FrameSize - afxdp.PacketHeadroom - s.cfg.Headroom - 2*4
}

// AddPort adds the netdev spec.Name as a port: XDP program attached, one
// AF_XDP socket per RX queue, each served by that queue's poller.
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
			return PortInfo{}, fmt.Errorf("port %s: no such network device: %w", spec.Name, ErrNoSuchPort)
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
	queues := a.NumRxQueues
	if queues < 1 {
		queues = 1
	}
	if queues > steer.MaxQueues {
		queues = steer.MaxQueues
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
		queues:  queues,
		added:   time.Now(),
	}
	if err := s.openPortLocked(p, bmode); err != nil {
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
	// Flows naming this port (kept from before it was removed) come alive.
	if err := s.publishLocked(s.table.Load().Recompile(s.resolveLocked)); err != nil {
		// Undo: a port whose flows cannot be compiled in is not added.
		delete(s.ports, p.name)
		undo := *s.portsByOF.Load()
		undo[p.ofport] = nil
		s.portsByOF.Store(&undo)
		_ = s.closePortLocked(p) // the ofport stays the name's, as after a removal
		return PortInfo{}, fmt.Errorf("port %s: recompile flows: %w", spec.Name, err)
	}
	s.log.Info("port added", "port", p.name, "ofport", p.ofport, "queues", p.queues,
		"xdp", p.xdpMode, "xsk", p.xskMode, "umem", p.umemMode, "fast_path_out", txOK, "reason", txWhy)
	return s.portInfo(p), nil
}

// openPortLocked attaches XDP and opens the port's sockets. On error the
// caller undoes what was done with closePortLocked.
func (s *Switch) openPortLocked(p *Port, mode bpf.Mode) error {
	if err := s.bpf.SetPort(p.ifindex, p.ofport); err != nil {
		return err
	}
	att, err := s.bpf.Attach(p.ifindex, mode)
	if err != nil {
		return err
	}
	p.xdp = att
	p.xdpMode = XDPMode(att.Mode().String())
	for q := 0; q < p.queues; q++ {
		pl, err := s.pollerLocked(q)
		if err != nil {
			return err
		}
		ps, err := pl.addSocket(p, q) // afxdp waits out a queue the kernel is still releasing
		if err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
		p.socks = append(p.socks, ps)
		if err := s.bpf.RegisterSocket(p.ofport, q, ps.sock.Fd()); err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
	}
	p.xskMode = p.socks[0].sock.Mode().String()
	p.umemMode = "shared"
	for _, ps := range p.socks {
		if !ps.shared {
			p.umemMode = "own"
		}
	}
	return nil
}

// closePortLocked undoes openPortLocked, in the reverse order: the kernel
// stops redirecting first, then the pollers drain and close the sockets.
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
	for _, ps := range p.socks {
		errs = append(errs, s.pollers[ps.queue].removeSocket(ps))
	}
	return errors.Join(errs...)
}

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
	s.log.Info("port removed", "port", p.name, "ofport", p.ofport)
	if len(errs) > 0 {
		return fmt.Errorf("remove port %s: %w", p.name, errors.Join(errs...))
	}
	return nil
}

// Ports returns the live ports, by ofport.
func (s *Switch) Ports() []PortInfo {
	var out []PortInfo
	for _, p := range s.portsByOF.Load() {
		if p != nil {
			out = append(out, s.portInfo(p))
		}
	}
	return out
}

// Port returns one port by name.
func (s *Switch) Port(name string) (PortInfo, error) {
	for _, p := range s.portsByOF.Load() {
		if p != nil && p.name == name {
			return s.portInfo(p), nil
		}
	}
	return PortInfo{}, fmt.Errorf("port %s: %w", name, ErrNoSuchPort)
}
