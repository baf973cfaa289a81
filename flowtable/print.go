package flowtable

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FlowStats are the counters FormatFlow prints with a flow.
type FlowStats struct {
	Packets  uint64
	Bytes    uint64
	Duration time.Duration // since the flow was installed
	IdleAge  time.Duration // since its last packet (or its install)
}

// String returns the flow in canonical add-flow syntax, as one word with no
// spaces: cookie (if not zero), table (if not zero), idle_timeout and
// hard_timeout (if not zero), priority, the match (see Match.Fields) and
// actions, e.g.
//
//	priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1
//
// ID is not part of it. For a flow that passes Check, ParseFlow(f.String())
// gives f back.
func (f *Flow) String() string {
	var b strings.Builder
	b.Grow(128)
	if f.Cookie != 0 {
		fmt.Fprintf(&b, "cookie=%#x,", f.Cookie)
	}
	if f.Table != 0 {
		fmt.Fprintf(&b, "table=%d,", f.Table)
	}
	writeTimeouts(&b, f, ",")
	b.WriteString("priority=")
	b.WriteString(strconv.Itoa(int(f.Priority)))
	var buf [maxFields]Field
	writeFields(&b, f.Match.appendFields(buf[:0]), ",")
	b.WriteString(",actions=")
	writeActions(&b, f.Actions)
	return b.String()
}

// writeFields writes fs as name[=value] joined by commas, each after
// first for the first field.
func writeFields(b *strings.Builder, fs []Field, first string) {
	for i, f := range fs {
		if i == 0 {
			b.WriteString(first)
		} else {
			b.WriteByte(',')
		}
		b.WriteString(f.Name)
		if f.Value != "" {
			b.WriteByte('=')
			b.WriteString(f.Value)
		}
	}
}

func writeTimeouts(b *strings.Builder, f *Flow, sep string) {
	if f.IdleTimeout != 0 {
		fmt.Fprintf(b, "idle_timeout=%d%s", f.IdleTimeout, sep)
	}
	if f.HardTimeout != 0 {
		fmt.Fprintf(b, "hard_timeout=%d%s", f.HardTimeout, sep)
	}
}

// FormatFlow returns f as a line of ovs-ofctl dump-flows output, e.g.
//
//	cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, priority=100,udp,tp_dst=7999 actions=output:p1
//
// (with a leading space, as OVS prints it). With st nil the counters are
// left out. ParseFlow reads the line back: it ignores the counters.
func FormatFlow(f *Flow, st *FlowStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, " cookie=%#x, ", f.Cookie)
	if st != nil {
		fmt.Fprintf(&b, "duration=%.3fs, ", st.Duration.Seconds())
	}
	fmt.Fprintf(&b, "table=%d, ", f.Table)
	if st != nil {
		fmt.Fprintf(&b, "n_packets=%d, n_bytes=%d, ", st.Packets, st.Bytes)
	}
	writeTimeouts(&b, f, ", ")
	if st != nil {
		fmt.Fprintf(&b, "idle_age=%d, ", int64(st.IdleAge/time.Second))
	}
	b.WriteString("priority=")
	b.WriteString(strconv.Itoa(int(f.Priority)))
	if m := f.Match.String(); m != "" {
		b.WriteByte(',')
		b.WriteString(m)
	}
	b.WriteString(" actions=")
	b.WriteString(FormatActions(f.Actions))
	return b.String()
}

// FormatActions returns an action list as it follows actions=: the actions
// joined with commas, or "drop" for the empty list.
func FormatActions(acts []Action) string {
	if len(acts) == 0 {
		return "drop"
	}
	var b strings.Builder
	writeActions(&b, acts)
	return b.String()
}

// writeActions writes FormatActions(acts).
func writeActions(b *strings.Builder, acts []Action) {
	if len(acts) == 0 {
		b.WriteString("drop")
	}
	for i := range acts {
		if i > 0 {
			b.WriteByte(',')
		}
		writeAction(b, &acts[i])
	}
}
