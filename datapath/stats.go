package datapath

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// portCounters are one socket's packet counters (its drops are in
// dropCounters). Only the owning poller writes them (once per batch);
// anyone may read them.
type portCounters struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
}

// PortStats returns a port's counters: the pollers', the XDP program's and
// the kernel's socket statistics.
//
// Counters are read under the switch's lock: removing a port closes its
// sockets, and a socket's kernel statistics are read through its fd.
func (s *Switch) PortStats(name string) (PortStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.ports[name]; ok {
		return s.portStatsLocked(p), nil
	}
	return PortStats{}, fmt.Errorf("port %s: %w", name, ErrNoSuchPort)
}

func (s *Switch) portStatsLocked(p *Port) PortStats {
	r := &p.retired
	st := PortStats{Name: p.name, OFPort: p.ofport, XDP: make(map[string]uint64, steer.NumCounters),
		RxPackets: r.rxPackets, RxBytes: r.rxBytes, TxPackets: r.txPackets, TxBytes: r.txBytes, Drops: r.drops}
	for _, ps := range p.socks {
		c := &ps.stats
		st.RxPackets += c.rxPackets.Load()
		st.RxBytes += c.rxBytes.Load()
		st.TxPackets += c.txPackets.Load()
		st.TxBytes += c.txBytes.Load()
		ps.drops.sumInto(&st.Drops)
		if xs, err := ps.sock.Stats(); err == nil {
			st.XSK.RxDropped += xs.RxDropped
			st.XSK.RxInvalidDescs += xs.RxInvalidDescs
			st.XSK.TxInvalidDescs += xs.TxInvalidDescs
			st.XSK.RxRingFull += xs.RxRingFull
			st.XSK.RxFillRingEmptyDescs += xs.RxFillRingEmptyDescs
			st.XSK.TxRingEmptyDescs += xs.TxRingEmptyDescs
		}
	}
	if cs, err := s.bpf.Counters(p.ofport); err == nil {
		for i, v := range cs {
			st.XDP[steer.Counter(i).String()] = v.Packets - p.xdpBase[i]
		}
	} else {
		s.log.Warn("read xdp counters", "port", p.name, "err", err)
	}
	return st
}

// Stats returns every counter of the switch.
func (s *Switch) Stats() Stats {
	st := Stats{Uptime: time.Since(s.start)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.portsLocked() {
		st.Ports = append(st.Ports, s.portStatsLocked(p))
	}
	t := s.table.Load()
	st.Flows = t.Len()
	st.Masks = t.NumMasks()
	st.Fast = s.fast.liveRecords()
	st.Syncs = s.syncs
	for _, pl := range s.pollers {
		if pl != nil {
			st.Pollers = append(st.Pollers, pl.statsSnapshot())
		}
	}
	return st
}

// MapMemory returns the kernel memory of the switch's BPF maps, in bytes,
// by map name (bpf.Objects.MapMemory). Any goroutine may call it.
func (s *Switch) MapMemory() (map[string]uint64, error) { return s.bpf.MapMemory() }
