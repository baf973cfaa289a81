package flowtable

import (
	"strconv"
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
	var buf [256]byte
	return string(f.appendText(buf[:0]))
}

// appendText appends f.String(). The printers append to one buffer, with
// no allocation of their own: a save of the state prints every flow.
func (f *Flow) appendText(b []byte) []byte {
	if f.Cookie != 0 {
		b = appendHex(append(b, "cookie="...), f.Cookie, 1)
		b = append(b, ',')
	}
	if f.Table != 0 {
		b = strconv.AppendUint(append(b, "table="...), uint64(f.Table), 10)
		b = append(b, ',')
	}
	b = appendTimeouts(b, f, ",")
	b = strconv.AppendUint(append(b, "priority="...), uint64(f.Priority), 10)
	b = f.Match.appendFields(b, &fieldWriter{comma: true})
	return appendActions(append(b, ",actions="...), f.Actions)
}

// appendTimeouts appends the timeouts that are set, each followed by sep.
func appendTimeouts(b []byte, f *Flow, sep string) []byte {
	if f.IdleTimeout != 0 {
		b = strconv.AppendUint(append(b, "idle_timeout="...), uint64(f.IdleTimeout), 10)
		b = append(b, sep...)
	}
	if f.HardTimeout != 0 {
		b = strconv.AppendUint(append(b, "hard_timeout="...), uint64(f.HardTimeout), 10)
		b = append(b, sep...)
	}
	return b
}

// FormatFlow returns f as a line of ovs-ofctl dump-flows output, e.g.
//
//	cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, priority=100,udp,tp_dst=7999 actions=output:p1
//
// (with a leading space, as OVS prints it). With st nil the counters are
// left out. ParseFlow reads the line back: it ignores the counters.
func FormatFlow(f *Flow, st *FlowStats) string {
	var buf [384]byte
	b := appendHex(append(buf[:0], " cookie="...), f.Cookie, 1)
	b = append(b, ", "...)
	if st != nil {
		b = strconv.AppendFloat(append(b, "duration="...), st.Duration.Seconds(), 'f', 3, 64)
		b = append(b, "s, "...)
	}
	b = strconv.AppendUint(append(b, "table="...), uint64(f.Table), 10)
	b = append(b, ", "...)
	if st != nil {
		b = strconv.AppendUint(append(b, "n_packets="...), st.Packets, 10)
		b = strconv.AppendUint(append(b, ", n_bytes="...), st.Bytes, 10)
		b = append(b, ", "...)
	}
	b = appendTimeouts(b, f, ", ")
	if st != nil {
		b = strconv.AppendInt(append(b, "idle_age="...), int64(st.IdleAge/time.Second), 10)
		b = append(b, ", "...)
	}
	b = strconv.AppendUint(append(b, "priority="...), uint64(f.Priority), 10)
	b = f.Match.appendFields(b, &fieldWriter{comma: true})
	return string(appendActions(append(b, " actions="...), f.Actions))
}

// FormatActions returns an action list as it follows actions=: the actions
// joined with commas, or "drop" for the empty list.
func FormatActions(acts []Action) string {
	var buf [96]byte
	return string(appendActions(buf[:0], acts))
}

// appendActions appends FormatActions(acts).
func appendActions(b []byte, acts []Action) []byte {
	if len(acts) == 0 {
		return append(b, "drop"...)
	}
	for i := range acts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAction(b, &acts[i])
	}
	return b
}
