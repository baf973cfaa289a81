package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable"
)

// traceCounters are the counters a trace must not move, all of them: the
// test hosts' IPv6 is off (quietIPv6), so nothing but the tests' own
// frames reaches the ports.
type traceCounters struct {
	ports  []PortStats
	flows  map[uint64]uint64
	tables []TableStats
	groups []uint64
}

func countersForTrace(t *testing.T, tp *topo) traceCounters {
	var c traceCounters
	for _, h := range tp.hosts {
		st := tp.stats(t, h)
		c.ports = append(c.ports, st)
	}
	c.flows = map[uint64]uint64{}
	for _, f := range tp.sw.Flows() {
		c.flows[f.Flow.ID] = f.Packets
	}
	c.tables = tp.sw.Tables()
	for _, g := range tp.sw.Groups() {
		c.groups = append(c.groups, g.Stats.Packets)
	}
	return c
}

func (c traceCounters) equal(o traceCounters) bool {
	if len(c.ports) != len(o.ports) || len(c.flows) != len(o.flows) || len(c.tables) != len(o.tables) || len(c.groups) != len(o.groups) {
		return false
	}
	for i := range c.ports {
		a, b := c.ports[i], o.ports[i]
		if a.RxPackets != b.RxPackets || a.TxPackets != b.TxPackets || a.Drops != b.Drops || len(a.XDP) != len(b.XDP) {
			return false
		}
		for k, v := range a.XDP {
			if b.XDP[k] != v {
				return false
			}
		}
	}
	for id, n := range c.flows {
		if o.flows[id] != n {
			return false
		}
	}
	for i := range c.tables {
		if c.tables[i] != o.tables[i] {
			return false
		}
	}
	for i := range c.groups {
		if c.groups[i] != o.groups[i] {
			return false
		}
	}
	return true
}

// TestTrace traces a forwarded, a rewritten (through two tables and a
// group), a dropped-in-XDP, a kernel-bound, an expiring and a malformed
// packet; checks that tracing moved no counter; then sends each packet for
// real and checks that it did what its trace said, byte for byte where it
// came out.
func TestTrace(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	g, err := flowtable.ParseGroup("group_id=1,type=fast_failover,bucket=watch_port:" + tp.b.port() + ",actions=output:" + tp.b.port() +
		",bucket=watch_port:" + c.port() + ",actions=output:" + c.port())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.sw.Apply(Change{AddGroups: []*flowtable.Group{g}}); err != nil {
		t.Fatal(err)
	}
	tp.addFlows(t,
		"priority=10,udp,tp_dst=5001,actions=output:{b}",
		"priority=10,udp,tp_dst=5002,actions=mod_nw_tos:184,mod_tp_dst:6002,goto_table:1",
		"table=1,udp,tp_dst=6002,actions=dec_ttl,group:1",
		"priority=10,udp,tp_dst=5003,actions=drop",
		"priority=10,udp,tp_dst=5005,actions=dec_ttl,output:{b}",
	)
	frame := func(dport uint16, ttl uint8) []byte {
		return udpFrame(t, tp.a.PeerMAC, tp.b.PeerMAC, tp.a.ip, tp.b.ip, 4000, dport, ttl, []byte("trace-payload-0123"))
	}
	malformed := frame(5001, 64)
	malformed[14] = 0x43 // IHL 3: shorter than an IPv4 header

	tests := []struct {
		name    string
		frame   []byte
		verdict XDPVerdict
		reason  XDPReason
		outcome TraceOutcome
		drop    string
		outPort string // the port the frame leaves on
		tables  []uint8
	}{
		{"forwarded", frame(5001, 64), XDPToUser, XDPReasonRule, TraceSent, "", tp.b.port(), []uint8{0}},
		{"rewritten through a group", frame(5002, 64), XDPToUser, XDPReasonRule, TraceSent, "", tp.b.port(), []uint8{0, 1}},
		{"dropped in XDP", frame(5003, 64), XDPDropped, XDPReasonRule, TraceDrop, "xdp_drop", "", nil},
		{"no flow: to the kernel", frame(5004, 64), XDPToHost, XDPReasonNoMatch, TraceKernel, "", "", nil},
		{"ttl expires in userspace", frame(5005, 1), XDPToUser, XDPReasonRule, TraceDrop, "dec_ttl_zero", "", []uint8{0}},
		{"malformed: to the kernel", malformed, XDPToHost, XDPReasonMalformed, TraceKernel, "", "", nil},
	}
	before := countersForTrace(t, tp)
	results := make([]TraceResult, len(tests))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tp.sw.Trace(TraceInput{Port: tp.a.port(), Frame: tt.frame})
			if err != nil {
				t.Fatal(err)
			}
			results[i] = res
			if res.XDP.Verdict != tt.verdict || res.XDP.Reason != tt.reason || res.Outcome != tt.outcome || res.Drop != tt.drop {
				t.Fatalf("xdp %s/%s, outcome %s/%q; want %s/%s, %s/%q", res.XDP.Verdict, res.XDP.Reason, res.Outcome, res.Drop,
					tt.verdict, tt.reason, tt.outcome, tt.drop)
			}
			if res.Disagree != "" {
				t.Errorf("disagree: %s", res.Disagree)
			}
			if tt.reason == XDPReasonRule && res.XDP.Flow == nil {
				t.Errorf("no flow named for the XDP rule")
			}
			if tt.verdict != XDPToUser {
				if res.Pipeline != nil {
					t.Errorf("a pipeline trace for a frame XDP kept: %+v", res.Pipeline)
				}
				return
			}
			var tables []uint8
			for _, s := range res.Pipeline.Steps {
				if s.Kind == flowtable.TraceLookup {
					tables = append(tables, s.Table)
				}
			}
			if !bytes.Equal(tables, tt.tables) {
				t.Errorf("tables looked up %v, want %v", tables, tt.tables)
			}
			if tt.outPort != "" {
				if len(res.Pipeline.Outputs) != 1 || !res.Pipeline.Outputs[0].Output {
					t.Fatalf("outputs %+v", res.Pipeline.Outputs)
				}
				p, _ := tp.sw.Port(tt.outPort)
				if res.Pipeline.Outputs[0].Port != p.OFPort {
					t.Errorf("sent on ofport %d, want %d (%s)", res.Pipeline.Outputs[0].Port, p.OFPort, tt.outPort)
				}
			}
		})
	}
	if _, err := tp.sw.Trace(TraceInput{Port: "nosuch0", Frame: frame(5001, 64)}); !errors.Is(err, ErrNoSuchPort) {
		t.Errorf("trace on a missing port: %v", err)
	}
	if _, err := tp.sw.Trace(TraceInput{Port: tp.a.port(), Queue: 7, Frame: frame(5001, 64)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("trace on queue 7 of a 2-queue veth: %v", err)
	}
	if after := countersForTrace(t, tp); !after.equal(before) {
		t.Fatalf("tracing moved counters:\n before %+v\n after  %+v", before, after)
	}

	// Now for real: each frame does what its trace said.
	capB, capC := captureFrames(t, tp.b), captureFrames(t, c)
	for i, tt := range tests {
		res := results[i]
		st := tp.stats(t, tp.a)
		injectFrame(t, tp.a, tt.frame)
		switch {
		case tt.outPort != "":
			want := res.Pipeline.Outputs[0].Frame
			got := waitFrame(capB, want, 2*time.Second)
			if got == nil {
				t.Errorf("%s: the traced frame did not arrive at b:\n%x", tt.name, want)
			}
		case tt.verdict == XDPDropped:
			eventually(t, 2*time.Second, func() bool { return tp.stats(t, tp.a).XDP["drop"] == st.XDP["drop"]+1 },
				func() string { return tt.name + ": XDP drop counter" })
		case tt.reason == XDPReasonMalformed:
			eventually(t, 2*time.Second, func() bool { return tp.stats(t, tp.a).XDP["malformed"] == st.XDP["malformed"]+1 },
				func() string { return tt.name + ": XDP malformed counter" })
		case tt.verdict == XDPToHost:
			eventually(t, 2*time.Second, func() bool { return tp.stats(t, tp.a).XDP["pass_nomatch"] > st.XDP["pass_nomatch"] },
				func() string { return tt.name + ": XDP pass_nomatch counter" })
		case tt.drop == "dec_ttl_zero":
			eventually(t, 2*time.Second, func() bool {
				return tp.stats(t, tp.a).Drops[DropDecTTLZero] == st.Drops[DropDecTTLZero]+1
			}, func() string { return tt.name + ": dec_ttl_zero drops" })
		}
	}
	if _, fs := capC.udpTo(6002, 1, 100*time.Millisecond); len(fs) != 0 {
		t.Errorf("c got %d frames while b is live", len(fs))
	}

	// With b's link down, the group's first live bucket is c's: the trace
	// says so, and the frame goes there.
	if _, err := tp.sw.SetLiveness(tp.b.port(), LivenessDead); err != nil {
		t.Fatal(err)
	}
	res, err := tp.sw.Trace(TraceInput{Port: tp.a.port(), Frame: tests[1].frame})
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := tp.sw.Port(c.port())
	if res.Outcome != TraceSent || len(res.Pipeline.Outputs) != 1 || res.Pipeline.Outputs[0].Port != cp.OFPort {
		t.Fatalf("trace after failover: %s %+v", res.Outcome, res.Pipeline.Outputs)
	}
	injectFrame(t, tp.a, tests[1].frame)
	if waitFrame(capC, res.Pipeline.Outputs[0].Frame, 2*time.Second) == nil {
		t.Errorf("after failover the traced frame did not arrive at c")
	}
}

// waitFrame waits for a frame equal to want (compared without the
// Ethernet padding a receiver may see).
func waitFrame(c *frameCapture, want []byte, timeout time.Duration) []byte {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case f := <-c.frames:
			if len(f.data) >= len(want) && bytes.Equal(f.data[:len(want)], want) {
				return f.data
			}
		case <-timer.C:
			return nil
		}
	}
}

// TestTraceFastPath: a flow the XDP fast path carries out traces as
// forwarded in XDP, the frame the loaded program rewrote is the one the Go
// pipeline makes (Trace compares them), tracing counts nothing on the
// flow's record, and the frame sent for real arrives as traced. The frames
// include the ones whose headers are not where the VLAN tags alone put
// them: 802.3 with LLC/SNAP, IPv6 with a hop-by-hop header.
func TestTraceFastPath(t *testing.T) {
	tp := newTopo(t, topoOptions{FastPath: true})
	ids := tp.addFlows(t, "priority=10,udp,tp_dst=5001,actions=mod_tp_dst:6001,mod_nw_tos:184,dec_ttl,output:{b}",
		"priority=10,udp6,udp_dst=5001,actions=set_field:6001->udp_dst,mod_nw_ecn:2,dec_ttl,output:{b}")
	for _, id := range ids {
		fi, err := tp.sw.Flow(id)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Datapath != "xdp" {
			t.Fatalf("flow %d runs in %q (%s), want xdp", id, fi.Datapath, fi.DatapathReason)
		}
	}
	v4 := udpFrame(t, tp.a.PeerMAC, tp.b.PeerMAC, tp.a.ip, tp.b.ip, 4000, 5001, 64, []byte("trace-payload-0123"))
	v6 := udp6Frame(t, tp.a.PeerMAC, tp.b.PeerMAC, net.ParseIP("fd00::1"), net.ParseIP("fd00::2"), 4000, 5001, []byte("trace-payload-v6"))
	sent := map[uint64]int{}
	for _, tt := range []struct {
		name  string
		flow  uint64
		frame []byte
	}{
		{"ipv4 udp", ids[0], v4},
		{"802.3 llc/snap ipv4 udp", ids[0], llcSNAPFrame(v4)},
		{"ipv6 udp", ids[1], v6},
		{"ipv6 hop-by-hop udp", ids[1], hopByHopFrame(v6)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := countersForTrace(t, tp)
			res, err := tp.sw.Trace(TraceInput{Port: tp.a.port(), Frame: tt.frame})
			if err != nil {
				t.Fatal(err)
			}
			bp, _ := tp.sw.Port(tp.b.port())
			if res.XDP.Verdict != XDPForward || res.XDP.FastPath != "forwarded" || res.XDP.OutPort != bp.OFPort || res.Outcome != TraceSent || res.Disagree != "" {
				t.Fatalf("trace: xdp %+v outcome %s disagree %q", res.XDP, res.Outcome, res.Disagree)
			}
			if bytes.Equal(res.XDP.Frame, tt.frame) {
				t.Fatal("the fast path did not rewrite the traced frame")
			}
			if after := countersForTrace(t, tp); !after.equal(before) {
				t.Fatalf("tracing moved counters:\n before %+v\n after  %+v", before, after)
			}
			capB := captureFrames(t, tp.b)
			injectFrame(t, tp.a, tt.frame)
			if waitFrame(capB, res.XDP.Frame, 2*time.Second) == nil {
				t.Fatalf("the traced frame did not arrive at b:\n%x", res.XDP.Frame)
			}
			sent[tt.flow]++
			eventually(t, 2*time.Second, func() bool {
				fi, _ := tp.sw.Flow(tt.flow)
				return fi.Packets == uint64(sent[tt.flow])
			}, func() string { return "the flow's counter after the real packets" })
		})
	}
}

// udp6Frame is an IPv6 UDP frame with hop limit 64.
func udp6Frame(t testing.TB, srcMAC, dstMAC net.HardwareAddr, src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatalf("serialize frame: %v", err)
	}
	return buf.Bytes()
}

// llcSNAPFrame wraps an Ethernet II frame's payload in 802.3 with an
// LLC/SNAP header carrying its EtherType.
func llcSNAPFrame(f []byte) []byte {
	out := append([]byte(nil), f[:12]...)
	body := append([]byte{0xaa, 0xaa, 0x03, 0, 0, 0}, f[12:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(body)))
	return append(out, body...)
}

// hopByHopFrame puts an 8-byte hop-by-hop header (a PadN option) between
// the IPv6 header and the UDP header of an untagged IPv6 UDP frame; the UDP
// checksum stays right (the pseudo-header does not change).
func hopByHopFrame(f []byte) []byte {
	out := append([]byte(nil), f[:14+40]...)
	out[14+6] = 0 // next header: hop-by-hop
	binary.BigEndian.PutUint16(out[14+4:], binary.BigEndian.Uint16(f[14+4:])+8)
	out = append(out, 17, 0, 1, 4, 0, 0, 0, 0)
	return append(out, f[14+40:]...)
}
