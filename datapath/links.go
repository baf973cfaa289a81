package datapath

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/flowtable"
)

// Liveness says how a port's liveness is decided.
type Liveness string

const (
	// LivenessAuto: the port is live while its link is up with carrier
	// (IFF_UP and IFF_LOWER_UP, from netlink link updates).
	LivenessAuto Liveness = "auto"
	// LivenessLive and LivenessDead override the link: an external prober
	// (the host's BFD daemon, a ping monitor) says what it found.
	LivenessLive Liveness = "live"
	LivenessDead Liveness = "dead"
)

// ParseLiveness parses "auto", "live" or "dead".
func ParseLiveness(s string) (Liveness, error) {
	switch l := Liveness(s); l {
	case LivenessAuto, LivenessLive, LivenessDead:
		return l, nil
	}
	return "", fmt.Errorf("liveness %q: want auto, live or dead: %w", s, ErrInvalid)
}

// linkState is what netlink last said of a port's link, and the liveness
// asked for. Guarded by Switch.mu.
type linkState struct {
	up, carrier bool
	absent      bool // the port is not attached: it is dead, whatever Liveness says
	liveness    Liveness
}

func (l *linkState) live() bool {
	if l.absent {
		return false
	}
	switch l.liveness {
	case LivenessLive:
		return true
	case LivenessDead:
		return false
	}
	return l.up && l.carrier
}

// reason says why the port is live or not, for events.
func (l *linkState) reason() string {
	switch {
	case l.absent:
		return "absent"
	case l.liveness != LivenessAuto:
		return "override"
	case !l.up:
		return "admin_down"
	case !l.carrier:
		return "no_carrier"
	}
	return "carrier"
}

func linkStateOf(flags uint32) linkState {
	return linkState{up: flags&unix.IFF_UP != 0, carrier: flags&unix.IFF_LOWER_UP != 0, liveness: LivenessAuto}
}

// linkUpdate applies one netlink link update: a port's link changed, its
// device went (the port becomes absent), or a device appeared with the
// name of an absent port (which is attached to it).
func (s *Switch) linkUpdate(u netlink.LinkUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	name := ""
	if u.Link != nil {
		name = u.Link.Attrs().Name
	}
	p := s.portByIfindexLocked(int(u.Index))
	if p == nil {
		if q := s.ports[name]; q != nil && !q.attached && u.Header.Type == unix.RTM_NEWLINK {
			s.attachAbsentLocked(q)
		}
		return
	}
	switch {
	case u.Header.Type == unix.RTM_DELLINK:
		s.detachLocked(p, "the device was deleted or left the namespace")
		return
	case name != "" && name != p.name:
		s.detachLocked(p, "the device was renamed to "+name)
		if q := s.ports[name]; q != nil && !q.attached {
			s.attachAbsentLocked(q)
		}
		return
	}
	st := linkStateOf(u.Flags)
	st.liveness = p.link.liveness
	if st == p.link {
		return
	}
	was := p.link
	p.link = st
	if was.up != st.up || was.carrier != st.carrier {
		s.emit(Event{Type: EventLink, Port: p.name, Up: st.up, Carrier: st.carrier})
	}
	s.livenessChangedLocked(p, was)
}

// resyncLinks reads every port's link as it is now: after link updates
// may have been lost, and now and then in case (watchLinks). An attached
// port whose device is gone becomes absent; an absent port whose device
// is there is attached (one that failed to attach, at most every
// attachRetryDelay).
func (s *Switch) resyncLinks() {
	s.mu.Lock()
	idx := make([]int, 0, len(s.ports))
	var absent []string
	now := time.Now()
	for _, p := range s.ports {
		switch {
		case p.attached:
			idx = append(idx, p.ifindex)
		case p.noDevice || now.After(p.attachAt):
			absent = append(absent, p.name)
		}
	}
	s.mu.Unlock()
	for _, i := range idx {
		l, err := netlink.LinkByIndex(i)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			s.linkUpdate(netlink.LinkUpdate{IfInfomsg: nl.IfInfomsg{IfInfomsg: unix.IfInfomsg{Index: int32(i)}},
				Header: unix.NlMsghdr{Type: unix.RTM_DELLINK}})
			continue
		}
		if err != nil {
			continue
		}
		a := l.Attrs()
		s.linkUpdate(netlink.LinkUpdate{IfInfomsg: nl.IfInfomsg{IfInfomsg: unix.IfInfomsg{Index: int32(i), Flags: a.RawFlags}},
			Header: unix.NlMsghdr{Type: unix.RTM_NEWLINK}, Link: l})
	}
	for _, name := range absent {
		if _, err := netlink.LinkByName(name); err != nil {
			continue
		}
		s.mu.Lock()
		if p := s.ports[name]; p != nil && !p.attached && !s.closed {
			s.attachAbsentLocked(p)
		}
		s.mu.Unlock()
	}
}

func (s *Switch) portByIfindexLocked(ifindex int) *Port {
	for _, p := range s.ports {
		if p.attached && p.ifindex == ifindex {
			return p
		}
	}
	return nil
}

// SetLiveness sets how port name's liveness is decided: LivenessAuto
// follows its link, LivenessLive and LivenessDead override it.
func (s *Switch) SetLiveness(name string, l Liveness) (PortInfo, error) {
	if _, err := ParseLiveness(string(l)); err != nil {
		return PortInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return PortInfo{}, ErrClosed
	}
	p, ok := s.ports[name]
	if !ok {
		return PortInfo{}, fmt.Errorf("port %s: %w", name, ErrNoSuchPort)
	}
	was := p.link
	p.link.liveness = l
	s.livenessChangedLocked(p, was)
	return s.portInfoLocked(p), nil
}

// livenessChangedLocked publishes the pipeline with p's liveness as it is
// now, if it changed from was's, and says so in events.
func (s *Switch) livenessChangedLocked(p *Port, was linkState) {
	if was.live() == p.link.live() {
		return
	}
	s.emit(Event{Type: EventLiveness, Port: p.name, Live: p.link.live(), Reason: p.link.reason()})
	s.log.Info("port liveness", "port", p.name, "live", p.link.live(), "reason", p.link.reason())
	s.publishLivenessLocked()
}

// deadPortsLocked is the set of ports that are not live.
func (s *Switch) deadPortsLocked() flowtable.PortSet {
	var dead flowtable.PortSet
	for _, p := range s.ports {
		if !p.link.live() {
			dead.Add(p.ofport)
		}
	}
	return dead
}

// publishLivenessLocked makes the live snapshot take the ports' liveness as
// it is now. Only groups read liveness, and only in userspace: the XDP
// program's rules do not change, so the snapshot is stored without a
// steering sync, and every poller's cache sees it at its next batch.
func (s *Switch) publishLivenessLocked() {
	old := s.table.Load()
	nt := old.WithDeadPorts(s.deadPortsLocked())
	if nt == old {
		return
	}
	s.table.Store(nt)
	s.groupEventsLocked(old, nt)
}

// groupEventsLocked says what a change of liveness did to the groups:
// which fast_failover groups moved to another bucket, and which buckets of
// the others became live or dead.
func (s *Switch) groupEventsLocked(old, nt *flowtable.Table) {
	now := time.Now()
	for _, ge := range nt.Groups() {
		before, after := old.GroupStats(ge, now).Buckets, nt.GroupStats(ge, now).Buckets
		id := ge.Group.ID
		if ge.Group.Type == flowtable.GroupFastFailover {
			if from, to := firstLive(before), firstLive(after); from != to {
				s.emit(Event{Type: EventFailover, Group: id, From: from, To: to})
				s.log.Info("group failover", "group", id, "from", from, "to", to)
			}
			continue
		}
		for i := range after {
			if before[i].Live != after[i].Live {
				s.emit(Event{Type: EventBucket, Group: id, Bucket: i, Live: after[i].Live})
			}
		}
	}
}

// firstLive is the bucket a fast_failover group picks: the first live one,
// or -1.
func firstLive(bs []flowtable.BucketStats) int {
	for i, b := range bs {
		if b.Live {
			return i
		}
	}
	return -1
}
