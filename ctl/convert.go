package ctl

import (
	"fmt"
	"slices"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// This file is the one place that maps between the wire types of package
// api and the switch's types. A field added to either side is one line here
// (and one in api/openapi.json).

func apiPortInfo(p datapath.PortInfo) api.PortInfo {
	return api.PortInfo{
		Name:         p.Name,
		OFPort:       p.OFPort,
		Ifindex:      p.Ifindex,
		MAC:          p.MAC,
		MTU:          p.MTU,
		Queues:       p.Queues,
		ActiveQueues: p.ActiveQueues,
		MaxQueues:    p.MaxQueues,
		XDPMode:      api.XDPMode(p.XDPMode),
		XSKMode:      p.XSKMode,
		UmemMode:     p.UmemMode,
		State:        p.State,
		Problem:      p.Problem,
		AddedAt:      p.AddedAt.UTC(),
		FastPathOut:  p.FastPathOut,
		Live:         p.Live,
		Liveness:     api.Liveness(p.Liveness),
		LinkUp:       p.LinkUp,
		Carrier:      p.Carrier,
	}
}

func apiPortInfos(ps []datapath.PortInfo) []api.PortInfo {
	out := make([]api.PortInfo, len(ps))
	for i, p := range ps {
		out[i] = apiPortInfo(p)
	}
	return out
}

func apiPortStats(p *datapath.PortStats) api.PortStats {
	st := api.PortStats{
		Name:      p.Name,
		OFPort:    p.OFPort,
		RxPackets: p.RxPackets,
		RxBytes:   p.RxBytes,
		TxPackets: p.TxPackets,
		TxBytes:   p.TxBytes,
		RxDrops:   []api.Counter{},
		TxDrops:   []api.Counter{},
		XDP:       xdpCounters(p.XDP),
		XSK: api.XSKStats{
			RxDropped:            p.XSK.RxDropped,
			RxInvalidDescs:       p.XSK.RxInvalidDescs,
			TxInvalidDescs:       p.XSK.TxInvalidDescs,
			RxRingFull:           p.XSK.RxRingFull,
			RxFillRingEmptyDescs: p.XSK.RxFillRingEmptyDescs,
			TxRingEmptyDescs:     p.XSK.TxRingEmptyDescs,
		},
	}
	for _, d := range PortDrops(p) {
		c := api.Counter{Name: d.Reason, Packets: d.Packets}
		if d.Side == "tx" {
			st.TxDrops = append(st.TxDrops, c)
		} else {
			st.RxDrops = append(st.RxDrops, c)
		}
	}
	return st
}

// xdpCounters lists the XDP program's counters in its order, then any
// others the switch reported, by name.
func xdpCounters(m map[string]uint64) []api.Counter {
	out := make([]api.Counter, 0, len(m))
	known := make(map[string]bool, steer.NumCounters)
	for c := steer.Counter(0); c < steer.NumCounters; c++ {
		name := c.String()
		known[name] = true
		out = append(out, api.Counter{Name: name, Packets: m[name]})
	}
	var extra []string
	for name := range m {
		if !known[name] {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		out = append(out, api.Counter{Name: name, Packets: m[name]})
	}
	return out
}

func apiPollerStats(p datapath.PollerStats) api.PollerStats {
	return api.PollerStats{
		Queue:   p.Queue,
		CPU:     p.CPU,
		Batches: p.Batches,
		Packets: p.Packets,
		BusyS:   nsToSeconds(p.BusyNs),
		IdleS:   nsToSeconds(p.IdleNs),

		PollMode:       p.Mode.String(),
		PollWindowS:    p.Window.Seconds(),
		Sleeps:         p.Sleeps,
		SleepS:         nsToSeconds(p.SleepNs),
		Wakeups:        p.Wakeups,
		EarlyWakeups:   p.EarlyWakeups,
		HandoffWakeups: p.HandoffWakeups,

		Handoffs:    p.Handoffs,
		HandoffLost: p.HandoffLost,
	}
}

func apiStats(st *datapath.Stats) api.Stats {
	out := api.Stats{
		Ports:   make([]api.PortStats, len(st.Ports)),
		Pollers: make([]api.PollerStats, len(st.Pollers)),
		Flows:   st.Flows,
		Masks:   st.Masks,
		UptimeS: st.Uptime.Seconds(),

		FastPathFlows: st.Fast,
	}
	for i := range st.Ports {
		out.Ports[i] = apiPortStats(&st.Ports[i])
	}
	for i, p := range st.Pollers {
		out.Pollers[i] = apiPollerStats(p)
	}
	return out
}

func nsToSeconds(ns uint64) float64 { return time.Duration(ns).Seconds() }

func apiFrameStats(fs []datapath.FrameStats) []api.FrameStats {
	out := make([]api.FrameStats, len(fs))
	for i, f := range fs {
		out[i] = api.FrameStats{Queue: f.Queue, Shared: f.Shared, Total: f.Total, Free: f.Free, Fill: f.Fill, RX: f.RX, TX: f.TX,
			Completion: f.Completion, Lent: f.Lent, LentBooked: f.LentBooked, Balanced: f.Balanced()}
	}
	return out
}

// portSpec is the port a request asks for.
func portSpec(req api.PortRequest) datapath.PortSpec {
	mode := datapath.XDPMode(req.Mode)
	if mode == "" {
		mode = datapath.ModeAuto
	}
	return datapath.PortSpec{Name: req.Name, Mode: mode}
}

// apiFlow returns f in both forms of api.Flow.
func apiFlow(f *flowtable.Flow) api.Flow { return apiFlowText(f, f.String()) }

// apiFlowText is apiFlow with the flow's text known (Entry.Text).
func apiFlowText(f *flowtable.Flow, text string) api.Flow {
	ff := flowtable.FieldsOf(f)
	return api.Flow{
		ID:           f.ID,
		Table:        ff.Table,
		Priority:     ff.Priority,
		Cookie:       ff.Cookie,
		IdleTimeoutS: ff.IdleTimeout,
		HardTimeoutS: ff.HardTimeout,
		Match:        ff.Match,
		Actions:      ff.Actions,
		Text:         text,
	}
}

// flowFromAPI parses a flow of a request: the text form or the structured
// one, not both, and no ID. Errors are *flowtable.ParseError naming the field
// ("flow" for the text form as a whole, with the column in the text).
func flowFromAPI(j api.Flow) (*flowtable.Flow, error) {
	ff := flowtable.FlowFields{
		Table:       j.Table,
		Priority:    j.Priority,
		Cookie:      j.Cookie,
		IdleTimeout: j.IdleTimeoutS,
		HardTimeout: j.HardTimeoutS,
		Match:       j.Match,
		Actions:     j.Actions,
	}
	structured := ff.Table != 0 || ff.Priority != nil || ff.Cookie != "" || ff.IdleTimeout != 0 || ff.HardTimeout != 0 ||
		ff.Match != nil || ff.Actions != nil
	switch {
	case j.ID != 0:
		return nil, badRequest("id", "id is assigned by the switch")
	case j.Text != "" && structured:
		return nil, &flowtable.ParseError{Field: "flow", Msg: `give a flow as text ("flow") or as fields, not both`}
	case j.Text != "":
		f, err := flowtable.ParseFlow(j.Text)
		if pe, ok := err.(*flowtable.ParseError); ok && pe.Field == "" {
			pe.Field = "flow"
		}
		return f, err
	case !structured:
		return nil, &flowtable.ParseError{Field: "flow", Msg: "empty flow"}
	}
	return flowtable.ParseFlowFields(ff)
}

// infoText is fi's flow in canonical text form.
func infoText(fi datapath.FlowInfo) string {
	if fi.Text != "" {
		return fi.Text
	}
	return flowText(fi.Flow)
}

func apiFlowStatus(fi datapath.FlowInfo) api.FlowStatus {
	return api.FlowStatus{
		Flow:      apiFlowText(fi.Flow, infoText(fi)),
		Packets:   fi.Packets,
		Bytes:     fi.Bytes,
		DurationS: fi.Duration.Seconds(),
		IdleAgeS:  fi.IdleAge.Seconds(),

		Datapath:       fi.Datapath,
		DatapathReason: fi.DatapathReason,
	}
}

func apiFlowStatuses(fis []datapath.FlowInfo) []api.FlowStatus {
	out := make([]api.FlowStatus, len(fis))
	for i, fi := range fis {
		out[i] = apiFlowStatus(fi)
	}
	return out
}

// apiGroup returns g in both forms of api.Group.
func apiGroup(g *flowtable.Group) api.Group {
	gf := flowtable.GroupFieldsOf(g)
	out := api.Group{ID: &gf.ID, Type: gf.Type, Text: g.String(), Buckets: make([]api.Bucket, len(gf.Buckets))}
	for i, b := range gf.Buckets {
		out.Buckets[i] = api.Bucket{Weight: b.Weight, WatchPort: b.WatchPort, Actions: b.Actions}
	}
	return out
}

// groupFromAPI parses a group of a request: the text form or the
// structured one, not both.
func groupFromAPI(j api.Group) (*flowtable.Group, error) {
	structured := j.ID != nil || j.Type != "" || j.Buckets != nil
	switch {
	case j.Text != "" && structured:
		return nil, &flowtable.ParseError{Field: "group", Msg: `give a group as text ("group") or as fields, not both`}
	case j.Text != "":
		g, err := flowtable.ParseGroup(j.Text)
		if pe, ok := err.(*flowtable.ParseError); ok && pe.Field == "" {
			pe.Field = "group"
		}
		return g, err
	case !structured:
		return nil, &flowtable.ParseError{Field: "group", Msg: "empty group"}
	case j.ID == nil:
		return nil, &flowtable.ParseError{Field: "group_id", Msg: "missing group_id"}
	}
	gf := flowtable.GroupFields{ID: *j.ID, Type: j.Type, Buckets: make([]flowtable.BucketFields, len(j.Buckets))}
	for i, b := range j.Buckets {
		if b.Actions == nil {
			return nil, &flowtable.ParseError{Field: "actions", Msg: fmt.Sprintf("bucket %d: missing actions", i)}
		}
		gf.Buckets[i] = flowtable.BucketFields{Weight: b.Weight, WatchPort: b.WatchPort, Actions: b.Actions}
	}
	return flowtable.ParseGroupFields(gf)
}

func apiGroupStatus(gi datapath.GroupInfo) api.GroupStatus {
	st := api.GroupStatus{
		Group:     apiGroup(gi.Group),
		Flows:     gi.Flows,
		Packets:   gi.Stats.Packets,
		Bytes:     gi.Stats.Bytes,
		DurationS: gi.Stats.Duration.Seconds(),
		Stats:     make([]api.BucketStats, len(gi.Stats.Buckets)),
	}
	for i, b := range gi.Stats.Buckets {
		st.Stats[i] = api.BucketStats{Packets: b.Packets, Bytes: b.Bytes, Live: b.Live}
	}
	return st
}

func apiGroupStatuses(gis []datapath.GroupInfo) []api.GroupStatus {
	out := make([]api.GroupStatus, len(gis))
	for i, gi := range gis {
		out[i] = apiGroupStatus(gi)
	}
	return out
}

func apiTableStats(ts []datapath.TableStats) []api.TableStats {
	out := make([]api.TableStats, len(ts))
	for i, t := range ts {
		out[i] = api.TableStats{Table: t.Table, Flows: t.Flows, Lookups: t.Lookups, Matched: t.Matched}
	}
	return out
}
