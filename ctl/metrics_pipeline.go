package ctl

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// pipelineCollector exports what the SD-WAN pipeline adds to the counters:
// port liveness, groups and their buckets, tables, and cross-poller
// hand-offs. Like collector, it reads the backend at scrape time.
type pipelineCollector struct {
	backend Backend

	live, linkUp, carrier              *prometheus.Desc
	groupPackets, groupBytes           *prometheus.Desc
	bucketPackets, bucketBytes, bucket *prometheus.Desc
	tableFlows, tableLookups, matched  *prometheus.Desc
	handoffs, handoffLost              *prometheus.Desc
}

func newPipelineCollector(b Backend) *pipelineCollector {
	port, group, bucket, table, poller := []string{"port"}, []string{"group"}, []string{"group", "bucket"}, []string{"table"}, []string{"queue", "cpu"}
	return &pipelineCollector{
		backend:       b,
		live:          prometheus.NewDesc("xvs_port_live", "1 if groups may use the port (its link is up with carrier, unless its liveness is set), else 0.", port, nil),
		linkUp:        prometheus.NewDesc("xvs_port_link_up", "1 if the port's netdev is up (IFF_UP).", port, nil),
		carrier:       prometheus.NewDesc("xvs_port_carrier", "1 if the port's netdev has carrier (IFF_LOWER_UP).", port, nil),
		groupPackets:  prometheus.NewDesc("xvs_group_packets_total", "Packets sent to the group.", group, nil),
		groupBytes:    prometheus.NewDesc("xvs_group_bytes_total", "Bytes sent to the group.", group, nil),
		bucketPackets: prometheus.NewDesc("xvs_group_bucket_packets_total", "Packets the bucket's actions ran on.", bucket, nil),
		bucketBytes:   prometheus.NewDesc("xvs_group_bucket_bytes_total", "Bytes the bucket's actions ran on.", bucket, nil),
		bucket:        prometheus.NewDesc("xvs_group_bucket_live", "1 if the bucket may be picked (its watch_port is live), else 0.", bucket, nil),
		tableFlows:    prometheus.NewDesc("xvs_table_flows", "Flows in the table.", table, nil),
		tableLookups:  prometheus.NewDesc("xvs_table_lookups_total", "Lookups in the table (table 0: every packet the XDP program classified).", table, nil),
		matched:       prometheus.NewDesc("xvs_table_matched_total", "Lookups in the table that found a flow.", table, nil),
		handoffs:      prometheus.NewDesc("xvs_poller_handoffs_total", "Frames other pollers switched to a queue this poller serves, sent by it.", poller, nil),
		handoffLost:   prometheus.NewDesc("xvs_poller_handoff_lost_total", "Frames handed over for a queue the poller no longer serves (stays 0).", poller, nil),
	}
}

func (c *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.live, c.linkUp, c.carrier, c.groupPackets, c.groupBytes, c.bucketPackets, c.bucketBytes, c.bucket,
		c.tableFlows, c.tableLookups, c.matched, c.handoffs, c.handoffLost,
	} {
		ch <- d
	}
}

func (c *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range c.backend.Ports() {
		metric(c.live, prometheus.GaugeValue, flag(p.Live), p.Name)
		metric(c.linkUp, prometheus.GaugeValue, flag(p.LinkUp), p.Name)
		metric(c.carrier, prometheus.GaugeValue, flag(p.Carrier), p.Name)
	}
	for _, g := range c.backend.Groups() {
		id := strconv.FormatUint(uint64(g.Group.ID), 10)
		metric(c.groupPackets, prometheus.CounterValue, float64(g.Stats.Packets), id)
		metric(c.groupBytes, prometheus.CounterValue, float64(g.Stats.Bytes), id)
		for i, b := range g.Stats.Buckets {
			bi := strconv.Itoa(i)
			metric(c.bucketPackets, prometheus.CounterValue, float64(b.Packets), id, bi)
			metric(c.bucketBytes, prometheus.CounterValue, float64(b.Bytes), id, bi)
			metric(c.bucket, prometheus.GaugeValue, flag(b.Live), id, bi)
		}
	}
	for _, t := range c.backend.Tables() {
		n := strconv.Itoa(int(t.Table))
		metric(c.tableFlows, prometheus.GaugeValue, float64(t.Flows), n)
		metric(c.tableLookups, prometheus.CounterValue, float64(t.Lookups), n)
		metric(c.matched, prometheus.CounterValue, float64(t.Matched), n)
	}
	for _, p := range c.backend.Stats().Pollers {
		q, cpu := strconv.Itoa(p.Queue), strconv.Itoa(p.CPU)
		metric(c.handoffs, prometheus.CounterValue, float64(p.Handoffs), q, cpu)
		metric(c.handoffLost, prometheus.CounterValue, float64(p.HandoffLost), q, cpu)
	}
}
