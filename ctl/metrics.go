package ctl

import (
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvs-project/xvs/datapath"
)

// collector exports Backend.Stats at scrape time: nothing is counted twice
// and nothing runs between scrapes.
type collector struct {
	backend Backend

	rxPackets, rxBytes, txPackets, txBytes *prometheus.Desc
	drops, xdp, xsk                        *prometheus.Desc
	pollerBatches, pollerPackets           *prometheus.Desc
	pollerBusy, pollerIdle, pollerWakeups  *prometheus.Desc
	pollerSleeps, pollerSleep              *prometheus.Desc
	pollerEarly, pollerHandoffWakeups      *prometheus.Desc
	flows, masks, ports, uptime            *prometheus.Desc
	fastFlows, syncs                       *prometheus.Desc
}

func newCollector(b Backend) *collector {
	port := []string{"port"}
	poller := []string{"queue", "cpu"}
	return &collector{
		backend:              b,
		rxPackets:            prometheus.NewDesc("xvs_port_rx_packets_total", "Packets the switch received from the port's AF_XDP sockets.", port, nil),
		rxBytes:              prometheus.NewDesc("xvs_port_rx_bytes_total", "Bytes the switch received from the port's AF_XDP sockets.", port, nil),
		txPackets:            prometheus.NewDesc("xvs_port_tx_packets_total", "Packets the switch sent on the port.", port, nil),
		txBytes:              prometheus.NewDesc("xvs_port_tx_bytes_total", "Bytes the switch sent on the port.", port, nil),
		drops:                prometheus.NewDesc("xvs_port_drops_total", "Packets the switch dropped, by reason.", []string{"port", "reason"}, nil),
		xdp:                  prometheus.NewDesc("xvs_xdp_packets_total", "Packets by XDP program verdict counter.", []string{"port", "counter"}, nil),
		xsk:                  prometheus.NewDesc("xvs_xsk_events_total", "Kernel AF_XDP socket statistics summed over the port's sockets.", []string{"port", "counter"}, nil),
		pollerBatches:        prometheus.NewDesc("xvs_poller_batches_total", "Batches a poller processed.", poller, nil),
		pollerPackets:        prometheus.NewDesc("xvs_poller_packets_total", "Packets a poller processed.", poller, nil),
		pollerBusy:           prometheus.NewDesc("xvs_poller_busy_seconds_total", "Time a poller spent in batches that moved packets.", poller, nil),
		pollerIdle:           prometheus.NewDesc("xvs_poller_idle_seconds_total", "Time a poller spent polling for nothing or sleeping in poll(2).", poller, nil),
		pollerWakeups:        prometheus.NewDesc("xvs_poller_wakeups_total", "Sleeps in poll(2) ended by frames, a hand-off or a command.", poller, nil),
		pollerSleeps:         prometheus.NewDesc("xvs_poller_sleeps_total", "Sleeps in poll(2).", poller, nil),
		pollerSleep:          prometheus.NewDesc("xvs_poller_sleep_seconds_total", "Time a poller slept in poll(2) (part of the idle time).", poller, nil),
		pollerEarly:          prometheus.NewDesc("xvs_poller_early_wakeups_total", "Sleeps a poller ended itself just before a burst it expected.", poller, nil),
		pollerHandoffWakeups: prometheus.NewDesc("xvs_poller_handoff_wakeups_total", "Wake-ups caused by another poller handing frames over.", poller, nil),
		flows:                prometheus.NewDesc("xvs_flows", "Installed flows.", nil, nil),
		masks:                prometheus.NewDesc("xvs_steering_masks", "Masks in the XDP steering classifier.", nil, nil),
		fastFlows:            prometheus.NewDesc("xvs_fast_path_flows", "Flows the XDP fast path forwards itself.", nil, nil),
		syncs:                prometheus.NewDesc("xvs_steering_syncs_total", "Steering syncs to the XDP program that went through, by way: delta (the rules of the keys a change touched) or full (every rule compiled and compared).", []string{"way"}, nil),
		ports:                prometheus.NewDesc("xvs_ports", "Ports attached to the switch.", nil, nil),
		uptime:               prometheus.NewDesc("xvs_uptime_seconds", "Time since the switch started.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.rxPackets, c.rxBytes, c.txPackets, c.txBytes, c.drops, c.xdp, c.xsk,
		c.pollerBatches, c.pollerPackets, c.pollerBusy, c.pollerIdle, c.pollerWakeups,
		c.pollerSleeps, c.pollerSleep, c.pollerEarly, c.pollerHandoffWakeups,
		c.flows, c.masks, c.ports, c.uptime, c.fastFlows, c.syncs,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.backend.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for i := range st.Ports {
		p := &st.Ports[i]
		counter(c.rxPackets, p.RxPackets, p.Name)
		counter(c.rxBytes, p.RxBytes, p.Name)
		counter(c.txPackets, p.TxPackets, p.Name)
		counter(c.txBytes, p.TxBytes, p.Name)
		for _, d := range PortDrops(p) {
			counter(c.drops, d.Packets, p.Name, d.Reason)
		}
		names := make([]string, 0, len(p.XDP))
		for name := range p.XDP {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			counter(c.xdp, p.XDP[name], p.Name, name)
		}
		for _, x := range xskCounters(&p.XSK) {
			counter(c.xsk, x.n, p.Name, x.reason)
		}
	}
	for _, p := range st.Pollers {
		q, cpu := strconv.Itoa(p.Queue), strconv.Itoa(p.CPU)
		counter(c.pollerBatches, p.Batches, q, cpu)
		counter(c.pollerPackets, p.Packets, q, cpu)
		ch <- prometheus.MustNewConstMetric(c.pollerBusy, prometheus.CounterValue, float64(p.BusyNs)/1e9, q, cpu)
		ch <- prometheus.MustNewConstMetric(c.pollerIdle, prometheus.CounterValue, float64(p.IdleNs)/1e9, q, cpu)
		counter(c.pollerWakeups, p.Wakeups, q, cpu)
		counter(c.pollerSleeps, p.Sleeps, q, cpu)
		ch <- prometheus.MustNewConstMetric(c.pollerSleep, prometheus.CounterValue, float64(p.SleepNs)/1e9, q, cpu)
		counter(c.pollerEarly, p.EarlyWakeups, q, cpu)
		counter(c.pollerHandoffWakeups, p.HandoffWakeups, q, cpu)
	}
	ch <- prometheus.MustNewConstMetric(c.flows, prometheus.GaugeValue, float64(st.Flows))
	ch <- prometheus.MustNewConstMetric(c.masks, prometheus.GaugeValue, float64(st.Masks))
	ch <- prometheus.MustNewConstMetric(c.fastFlows, prometheus.GaugeValue, float64(st.Fast))
	ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(st.Syncs.Delta), "delta")
	ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(st.Syncs.Full), "full")
	ch <- prometheus.MustNewConstMetric(c.ports, prometheus.GaugeValue, float64(len(st.Ports)))
	ch <- prometheus.MustNewConstMetric(c.uptime, prometheus.GaugeValue, st.Uptime.Seconds())
}

// namedCount is one counter of a fixed set, with its label value.
type namedCount struct {
	reason string
	n      uint64
}

// Drop is one of a port's drop counters.
type Drop struct {
	Reason  string // its name: a key of datapath.PortStats.Drops in JSON
	Side    string // "rx": counted on the port the frame came in on; "tx": on the port it was going out of
	Packets uint64
}

// PortDrops lists a port's drop counters, one per datapath.DropReason in the
// table's order (receive side first). /metrics and xvsctl both show drops
// from it.
func PortDrops(p *datapath.PortStats) []Drop {
	out := make([]Drop, 0, datapath.NumDropReasons)
	for r := range datapath.DropReason(datapath.NumDropReasons) {
		out = append(out, Drop{Reason: r.String(), Side: string(r.Side()), Packets: p.Drops[r]})
	}
	return out
}

// xskCounters lists the kernel's XSK statistics with their JSON names.
func xskCounters(x *datapath.XSKStats) []namedCount {
	return []namedCount{
		{"rx_dropped", x.RxDropped},
		{"rx_invalid_descs", x.RxInvalidDescs},
		{"tx_invalid_descs", x.TxInvalidDescs},
		{"rx_ring_full", x.RxRingFull},
		{"rx_fill_ring_empty_descs", x.RxFillRingEmptyDescs},
		{"tx_ring_empty_descs", x.TxRingEmptyDescs},
	}
}
