package datapath

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// readQueues returns the RX queue counts of p's device. If the device
// cannot say, it serves one queue, the least every device has; allocated
// is what netlink says the device allocated, shown as the maximum.
func (s *Switch) readQueues(p *Port, allocated int) afxdp.Queues {
	qs, err := afxdp.QueueInfo(p.name)
	if err != nil {
		s.log.Warn("active rx queues unknown: serving queue 0 only", "port", p.name, "err", err)
		return afxdp.Queues{Active: 1, Max: max(1, allocated), Source: "guess"}
	}
	return qs
}

// checkQueuesLocked re-reads the active RX queues of the port with ifindex
// (0: of every port) and follows a change: sockets open for new queues and
// close for queues gone, and the pollers' routes follow. What cannot be
// done leaves the port degraded (PortInfo.State, Problem; Health), never
// silently half served. A degraded port is tried again when its queue
// counts change, at a port change (force), and otherwise every
// queueRetryDelay: a queue another program holds costs a bind that waits
// afxdp.BindBusyWait, under the switch's mutex.
func (s *Switch) checkQueuesLocked(ifindex int, force bool) {
	for _, p := range s.ports {
		if p.attached && (ifindex == 0 || p.ifindex == ifindex) {
			s.reconcileQueuesLocked(p, force)
		}
	}
}

// queueRetryDelay is how long a degraded port waits before a periodic
// check or a link update tries its queues again.
const queueRetryDelay = 10 * time.Second

func (s *Switch) reconcileQueuesLocked(p *Port, force bool) {
	qs, err := afxdp.QueueInfo(p.name)
	if err != nil {
		// ENODEV: the device is gone or renamed; the port awaits deletion
		// and its sockets report the device's absence themselves.
		if !errors.Is(err, unix.ENODEV) {
			s.log.Warn("read rx queues", "port", p.name, "err", err)
		}
		return
	}
	old := p.state.Load()
	want := min(qs.Active, steer.MaxQueues)
	same := qs.Active == old.active && qs.Max == old.max
	if same && want == len(p.socks) && old.problem == "" {
		return
	}
	if same && old.problem != "" && !force && time.Now().Before(p.retryAt) {
		return
	}
	defer func() {
		if p.state.Load().problem != "" {
			p.retryAt = time.Now().Add(queueRetryDelay)
		}
	}()
	have := len(p.socks)
	var problem string
	switch {
	case want > have:
		// New queues: their sockets first, then the routes that send to
		// them.
		for q := have; q < want; q++ {
			if err := s.openSocketLocked(p, q); err != nil {
				problem = fmt.Sprintf("queue %d: %v", q, err)
				s.dropSocketLocked(p, q) // a socket opened but not registered
				break
			}
		}
		if len(p.socks) > have && p.kind == "veth" && p.xdpMode == ModeNative {
			// veth runs no program on queues ethtool activates after the
			// attach (see bpf.Attachment.Reinstall).
			if err := p.xdp.Reinstall(); err != nil {
				problem = fmt.Sprintf("queues %d..%d get no XDP program: %v", have, len(p.socks)-1, err)
			}
		}
		p.routeQueues = len(p.socks)
		if err := s.rerouteLocked(); err != nil {
			problem = fmt.Sprintf("routes to %d queues: %v", len(p.socks), err)
		}
	case want < have:
		// Queues gone (the kernel refuses that while a socket is bound, but
		// a driver reset may do it): no route may lead to their sockets
		// before they close.
		p.routeQueues = want
		if err := s.rerouteLocked(); err != nil {
			p.routeQueues = have
			problem = fmt.Sprintf("routes to %d queues: %v", want, err)
			break
		}
		for q := have - 1; q >= want; q-- {
			if err := s.closeSocketLocked(p, q); err != nil {
				s.log.Warn("close socket of a queue gone", "port", p.name, "queue", q, "err", err)
			}
		}
	}
	s.publishStateLocked(p, qs, problem)
	st := p.state.Load()
	if st.queues == old.queues && st.active == old.active && st.max == old.max && st.problem == old.problem {
		return
	}
	s.log.Info("port queues changed", "port", p.name, "queues", st.queues, "active", st.active, "max", st.max,
		"was", old.queues, "was_active", old.active)
	if st.problem != "" {
		s.log.Warn("port degraded", "port", p.name, "problem", st.problem)
	}
}

// dropSocketLocked closes p's socket on queue q if openSocketLocked left
// it open without registering it.
func (s *Switch) dropSocketLocked(p *Port, q int) {
	if len(p.socks) == q+1 {
		if err := s.closeSocketLocked(p, q); err != nil {
			s.log.Warn("close socket", "port", p.name, "queue", q, "err", err)
		}
	}
}

// closeSocketLocked closes p's socket on its last queue q, keeping its
// counters in p.retired. No route may lead to it.
func (s *Switch) closeSocketLocked(p *Port, q int) error {
	ps := p.socks[q]
	err := s.bpf.UnregisterSocket(p.ofport, q)
	err = errors.Join(err, s.pollers[q].removeSocket(ps))
	p.socks = p.socks[:q]
	p.retired.add(ps)
	return err
}

// add keeps the counts of ps, a socket about to close.
func (r *retiredCounters) add(ps *portSocket) {
	r.rxPackets += ps.stats.rxPackets.Load()
	r.rxBytes += ps.stats.rxBytes.Load()
	r.txPackets += ps.stats.txPackets.Load()
	r.txBytes += ps.stats.txBytes.Load()
	ps.drops.sumInto(&r.drops)
}

// rerouteLocked makes every poller's hand-off routes match the ports'
// queues: poller q sends a frame for port P through P's socket on queue q
// if P has one, and otherwise hands it to the poller of queue
// q % P.routeQueues, through the hand-off between the two (one per pair of
// pollers, whatever the ports). Only pollers that serve a socket get
// routes: the others receive nothing.
//
// In three steps, so that no frame is handed to a poller that does not
// take it: hand-offs that are new start at their destination, then every
// poller whose routes change gets its new ones, then hand-offs no route
// uses any more stop at their destination (which sends what they still
// carry, and takes its frames back). If a new hand-off cannot start, the
// routes stay as they were.
func (s *Switch) rerouteLocked() error {
	sources := 0 // pollers 0..sources-1 serve a socket
	for _, p := range s.ports {
		sources = max(sources, len(p.socks))
	}
	routes := make([][steer.MaxPorts]*handoff, len(s.pollers))
	var added []pollerPair
	for q := range sources {
		for _, p := range s.ports {
			n := p.routeQueues
			if n == 0 || q < n {
				continue
			}
			k := pollerPair{q, q % n}
			h := s.handoffs[k]
			if h == nil {
				h = newHandoff(s.pollers[k.src], s.pollers[k.dst], s.handoffTarget())
				if err := h.dst.addHandoff(h); err != nil {
					var errs []error
					for _, a := range added {
						errs = append(errs, s.handoffs[a].dst.removeHandoff(s.handoffs[a]))
						delete(s.handoffs, a)
					}
					return errors.Join(fmt.Errorf("hand-off from poller %d to %d: %w", k.src, k.dst, err), errors.Join(errs...))
				}
				s.handoffs[k] = h
				added = append(added, k)
			}
			routes[q][p.ofport] = h
		}
	}
	var errs []error
	used := make(map[*handoff]bool)
	for q, pl := range s.pollers {
		if pl == nil {
			continue
		}
		if pl.routes != routes[q] {
			r := routes[q]
			if err := pl.do(func() error { pl.links = r; return nil }); err != nil {
				errs = append(errs, err)
			} else {
				pl.routes = r
			}
		}
		for _, h := range pl.routes {
			if h != nil {
				used[h] = true
			}
		}
	}
	for k, h := range s.handoffs {
		if !used[h] {
			errs = append(errs, h.dst.removeHandoff(h))
			delete(s.handoffs, k)
		}
	}
	return errors.Join(errs...)
}

// pollerPair names the hand-off from poller src to poller dst.
type pollerPair struct{ src, dst int }

// watchLinks follows the ports' links through netlink link updates: each
// change of a port's link is a change of its liveness, which the pipeline
// sees at once (fast_failover and select buckets watching it), with no
// controller in between (linkUpdate); and it notices RX queue changes of
// the devices (a veth or a NIC whose channels change bounces its carrier
// while up). Every QueueCheck, and after the subscription lost updates, it
// reads every port again, for changes no update told (a device that is
// down; drivers that change queues quietly).
func (s *Switch) watchLinks() {
	defer close(s.watchDone)
	var tick <-chan time.Time
	if s.cfg.QueueCheck > 0 {
		t := time.NewTicker(s.cfg.QueueCheck)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	updates, stopSub := s.subscribeLinks()
	defer func() { stopLinks(updates, stopSub) }()
	for {
		select {
		case <-s.stopWatch:
			return
		case u, ok := <-updates:
			if ok {
				s.linkUpdate(u)
				s.checkQueues(int(u.Index), false)
				continue
			}
			// The subscription ended (a netlink overrun, ENOBUFS, ends it):
			// subscribe again soon, and look at every port then, for the
			// updates missed.
			close(stopSub) // its socket's closer still waits for it
			updates, stopSub = nil, nil
			retry = time.After(time.Second)
		case <-retry:
			if updates, stopSub = s.subscribeLinks(); updates == nil {
				retry = time.After(time.Second)
			}
			s.resyncLinks()
			s.checkQueues(0, false)
		case <-tick:
			s.resyncLinks()
			s.checkQueues(0, false)
		}
	}
}

// subscribeLinks subscribes to link updates; nil if it cannot.
func (s *Switch) subscribeLinks() (chan netlink.LinkUpdate, chan struct{}) {
	updates := make(chan netlink.LinkUpdate, 64)
	stop := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(updates, stop, netlink.LinkSubscribeOptions{
		ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case <-stop: // closing the socket fails its last receive
			default:
				s.log.Warn("link updates", "err", err) // the watcher subscribes again
			}
		},
	})
	if err != nil {
		s.log.Warn("no link updates: RX queue changes are noticed by the periodic check only", "err", err)
		return nil, nil
	}
	return updates, stop
}

// stopLinks ends a subscription and waits until it is gone.
func stopLinks(updates chan netlink.LinkUpdate, stop chan struct{}) {
	if updates == nil {
		return
	}
	close(stop)
	for range updates { // the subscription closes it once it stops
	}
}

// checkQueues is checkQueuesLocked for the watcher.
func (s *Switch) checkQueues(ifindex int, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.checkQueuesLocked(ifindex, force)
}
