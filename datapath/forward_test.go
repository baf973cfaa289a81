package datapath

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/flowtable"
)

// forwardRig is a poller without goroutine or sockets around a real UMEM
// (an anonymous mapping: no root needed): enough to call forward, the
// per-packet path, on frames placed in UMEM chunks. Ports a, b and c are
// ofports 1, 2 and 3; their TX queues are never flushed (there is no
// socket), the rig empties them after each frame.
type forwardRig struct {
	pl    *poller
	u     *afxdp.Umem
	ports []*portSocket // a, b, c
	cache *flowtable.Cache
	b     batchState
	rx    [flowtable.MaxBatch]afxdp.Desc
	one   [1][]byte
}

var rigPorts = map[string]uint32{"a": 1, "b": 2, "c": 3}

func newForwardRig(tb testing.TB, flows ...string) *forwardRig {
	tb.Helper()
	u, err := afxdp.NewUmem(afxdp.UmemOptions{NumFrames: 64, FrameSize: 2048, Headroom: 64})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { u.Close() })
	var fs []*flowtable.Flow
	for _, s := range flows {
		f, err := flowtable.ParseFlow(s)
		if err != nil {
			tb.Fatalf("parse %q: %v", s, err)
		}
		fs = append(fs, f)
	}
	tbl, err := flowtable.NewTable().Apply(flowtable.Change{Add: fs}, func(name string) (uint32, bool) {
		no, ok := rigPorts[name]
		return no, ok
	})
	if err != nil {
		tb.Fatal(err)
	}
	r := &forwardRig{pl: &poller{umem: u, cpu: -1}, u: u, cache: flowtable.NewCache(cacheSize)}
	for _, name := range []string{"a", "b", "c"} {
		ps := &portSocket{port: &Port{name: name, ofport: rigPorts[name]}, umem: u, shared: true,
			txq: make([]afxdp.Desc, 0, 2*flowtable.MaxBatch)}
		r.ports = append(r.ports, ps)
		r.pl.out[ps.port.ofport] = ps
	}
	r.b.table = tbl
	r.b.now = time.Now().UnixNano()
	return r
}

// forward puts frame into a free UMEM frame, runs forward on it as received
// on port a, hands every frame queued for TX to seen (if not nil) and
// returns them to the pool.
func (r *forwardRig) forward(frame []byte, seen func(port string, f []byte)) {
	r.one[0] = frame
	r.forwardBurst(r.one[:], seen)
}

// forwardBurst is forward for a burst of frames received together.
func (r *forwardRig) forwardBurst(frames [][]byte, seen func(port string, f []byte)) {
	rx := &r.rx
	for i, frame := range frames {
		addr, ok := r.u.Pool().Get()
		if !ok {
			panic("forward rig: no free frame")
		}
		off := uint64(r.u.DataOffset())
		copy(r.u.Chunk(addr)[off:], frame)
		rx[i] = afxdp.Desc{Addr: addr + off, Len: uint32(len(frame))}
	}
	r.pl.forward(r.ports[0], rx[:len(frames)], r.cache, &r.b)
	r.b.flushFlow()
	for _, ps := range r.ports {
		for _, d := range ps.txq {
			if seen != nil {
				seen(ps.port.name, r.u.Frame(d))
			}
			r.u.Pool().Put(d.Addr)
		}
		ps.txq = ps.txq[:0]
	}
}

// manyFlowsRig is a rig with nflows flows, flow i matching UDP to
// 10.x.y.z with xyz = i, and nframes frames to addresses spread over them.
func manyFlowsRig(b *testing.B, nflows, nframes int) (*forwardRig, [][]byte) {
	ip := func(i int) net.IP { return net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)) }
	flows := make([]string, nflows)
	for i := range flows {
		flows[i] = fmt.Sprintf("in_port=a,udp,nw_dst=%s,actions=output:b", ip(i))
	}
	r := newForwardRig(b, flows...)
	frames := make([][]byte, nframes)
	for k := range frames {
		frames[k] = udpFrame(b, net.HardwareAddr{2, 0, 0, 0, 0, 1}, rigMACb, net.IPv4(10, 0, 0, 1), ip(k*(nflows/nframes)),
			40000, 7999, 64, bytes.Repeat([]byte("xvs!"), 16))
	}
	return r, frames
}

// rigFrame is a UDP frame from 10.0.0.1:40000 to 10.0.0.2:dport.
func rigFrame(tb testing.TB, dstMAC net.HardwareAddr, dport uint16, ttl uint8) []byte {
	return udpFrame(tb, net.HardwareAddr{2, 0, 0, 0, 0, 1}, dstMAC, net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2),
		40000, dport, ttl, bytes.Repeat([]byte("xvs!"), 16))
}

var (
	rigMACb = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	rigMACc = net.HardwareAddr{2, 0, 0, 0, 0, 3}
)

func withVLAN(f []byte, tci uint16) []byte {
	return append(append(append([]byte(nil), f[:12]...), 0x81, 0x00, byte(tci>>8), byte(tci)), f[12:]...)
}

// forward does what the flow says to a frame in the UMEM, moves or copies
// it to the right TX queues, counts drops, returns every frame it does not
// send, and allocates nothing.
func TestForwardNoAllocs(t *testing.T) {
	in := rigFrame(t, rigMACb, 7999, 64)
	type sent struct {
		port  string
		frame []byte
	}
	for _, tc := range []struct {
		name  string
		flows []string
		in    []byte
		want  []sent
		gone  string // a port removed after the flows went in
		drop  string // the drop reason that counts the frame on a, the input port
	}{
		{
			name:  "output",
			flows: []string{"in_port=a,actions=output:b"},
			in:    in,
			want:  []sent{{"b", in}},
		},
		{
			name:  "rewrite",
			flows: []string{"in_port=a,udp,tp_dst=7999,actions=mod_dl_dst:02:00:00:00:00:03,mod_tp_dst:7998,dec_ttl,output:c"},
			in:    in,
			want:  []sent{{"c", rigFrame(t, rigMACc, 7998, 63)}},
		},
		{
			name:  "push vlan",
			flows: []string{"in_port=a,actions=push_vlan:0x8100,mod_vlan_vid:100,mod_vlan_pcp:5,output:b"},
			in:    in,
			want:  []sent{{"b", withVLAN(in, 5<<13|100)}},
		},
		{
			name:  "strip vlan",
			flows: []string{"in_port=a,dl_vlan=100,actions=strip_vlan,output:b"},
			in:    withVLAN(in, 100),
			want:  []sent{{"b", in}},
		},
		{
			name:  "two outputs: copy, then move",
			flows: []string{"in_port=a,udp,actions=output:b,mod_tp_dst:7998,output:c"},
			in:    in,
			want:  []sent{{"b", in}, {"c", rigFrame(t, rigMACb, 7998, 64)}},
		},
		{
			name:  "no flow",
			flows: []string{"in_port=a,udp,tp_dst=1,actions=output:b"},
			in:    in,
			drop:  "no_flow",
		},
		{
			name:  "malformed",
			flows: []string{"in_port=a,actions=output:b"},
			in:    in[:20],
			drop:  "malformed",
		},
		{
			name:  "dec_ttl at ttl 1",
			flows: []string{"in_port=a,ip,actions=dec_ttl,output:b"},
			in:    rigFrame(t, rigMACb, 7999, 1),
			drop:  "dec_ttl_zero",
		},
		{
			name:  "drop",
			flows: []string{"in_port=a,actions=drop"},
			in:    in,
			drop:  "action_drop",
		},
		{
			name:  "kernel flow raced",
			flows: []string{"in_port=a,actions=kernel"},
			in:    in,
			drop:  "kernel_flow",
		},
		{
			name:  "one output gone",
			flows: []string{"in_port=a,actions=output:b,output:c"},
			in:    in,
			gone:  "b",
			want:  []sent{{"c", in}},
			drop:  "port_gone",
		},
		{
			name:  "no tx queue",
			flows: []string{"in_port=a,actions=output:b"},
			in:    in,
			gone:  "b-socket",
			drop:  "no_tx_queue",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newForwardRig(t, tc.flows...)
			switch tc.gone {
			case "":
			case "b-socket": // the port is there, but not on this poller's queue
				r.pl.out[rigPorts["b"]] = nil
			default:
				r.b.table = r.b.table.Recompile(func(name string) (uint32, bool) {
					no, ok := rigPorts[name]
					return no, ok && name != tc.gone
				})
			}
			var got []sent
			r.forward(tc.in, func(port string, f []byte) { got = append(got, sent{port, bytes.Clone(f)}) })
			if len(got) != len(tc.want) {
				t.Fatalf("sent %d frames, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				if got[i].port != w.port || !bytes.Equal(got[i].frame, w.frame) {
					t.Fatalf("frame %d: sent to %s\n% x\nwant to %s\n% x", i, got[i].port, got[i].frame, w.port, w.frame)
				}
			}
			for i, ps := range r.ports {
				var got, want Drops
				ps.drops.sumInto(&got)
				for d := range DropReason(NumDropReasons) {
					if i == 0 && d.String() == tc.drop {
						want[d] = 1
					}
				}
				if got != want {
					t.Fatalf("port %s drops %v, want %v", ps.port.name, got, want)
				}
			}
			if p := r.u.Pool(); p.Free() != p.Total() {
				t.Fatalf("%d of %d frames back in the pool", p.Free(), p.Total())
			}
			e := r.b.table.Entries()[0]
			if tc.want != nil && e.Packets() != 1 {
				t.Fatalf("flow counted %d packets, want 1", e.Packets())
			}

			if allocs := testing.AllocsPerRun(1000, func() { r.forward(tc.in, nil) }); allocs != 0 {
				t.Fatalf("forward allocates %.1f times per frame", allocs)
			}
			if p := r.u.Pool(); p.Free() != p.Total() {
				t.Fatalf("%d of %d frames back in the pool after 1000 runs", p.Free(), p.Total())
			}
		})
	}
}

// BenchmarkForward measures forward, the per-packet cost of the switch in
// userspace: key extraction, cache and classifier lookup, actions, queueing
// for TX (ns/op is ns per packet).
func BenchmarkForward(b *testing.B) {
	in := rigFrame(b, rigMACb, 7999, 64)
	for _, bc := range []struct {
		name  string
		flows []string
	}{
		{"output", []string{"in_port=a,actions=output:b"}},
		{"rewrite", []string{"in_port=a,udp,tp_dst=7999,actions=mod_dl_dst:02:00:00:00:00:03,mod_tp_dst:7998,dec_ttl,output:c"}},
		{"push vlan", []string{"in_port=a,actions=push_vlan:0x8100,mod_vlan_vid:100,output:b"}},
		{"copy to two ports", []string{"in_port=a,actions=output:b,output:c"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newForwardRig(b, bc.flows...)
			b.ReportAllocs()
			for b.Loop() {
				r.forward(in, nil)
			}
		})
	}
	for _, nflows := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("%d flows, 1000 keys", nflows), func(b *testing.B) {
			r, frames := manyFlowsRig(b, nflows, 1000)
			var sent int
			r.forward(frames[len(frames)-1], func(string, []byte) { sent++ })
			if sent != 1 {
				b.Fatalf("the last frame matched no flow")
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.forward(frames[i], nil)
				if i++; i == len(frames) {
					i = 0
				}
			}
		})
		b.Run(fmt.Sprintf("%d flows, 1024 keys, bursts of 32", nflows), func(b *testing.B) {
			r, frames := manyFlowsRig(b, nflows, 1024)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.forwardBurst(frames[i:i+32], nil)
				i = (i + 32) % len(frames)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/packet")
		})
	}
}

// A burst mixing frames that forward, match no flow, hit a drop flow and
// are malformed is switched frame by frame as if each came alone: the same
// frames leave in order, each drop is counted once under its reason, the
// flow counters add up and every frame not sent is back in the pool.
func TestForwardBurst(t *testing.T) {
	r := newForwardRig(t,
		"priority=10,in_port=a,udp,tp_dst=7999,actions=mod_tp_dst:7998,output:b",
		"priority=10,in_port=a,udp,tp_dst=8000,actions=drop")
	fwd := rigFrame(t, rigMACb, 7999, 64)
	want := rigFrame(t, rigMACb, 7998, 64)
	noFlow := rigFrame(t, rigMACb, 9000, 64)
	drop := rigFrame(t, rigMACb, 8000, 64)
	malformed := bytes.Clone(fwd)
	malformed[14] = 0x44 // IHL 4: an IPv4 header shorter than 20 bytes
	burst := [][]byte{fwd, noFlow, drop, fwd, malformed, fwd, drop, noFlow}
	var got [][]byte
	r.forwardBurst(burst, func(port string, f []byte) {
		if port != "b" {
			t.Errorf("frame sent to %s", port)
		}
		got = append(got, bytes.Clone(f))
	})
	if len(got) != 3 {
		t.Fatalf("sent %d frames, want 3", len(got))
	}
	for i, f := range got {
		if !bytes.Equal(f, want) {
			t.Fatalf("frame %d:\n% x\nwant\n% x", i, f, want)
		}
	}
	var drops Drops
	r.ports[0].drops.sumInto(&drops)
	if n, m, d := drops[DropNoFlow], drops[DropMalformed], drops[DropAction]; n != 2 || m != 1 || d != 2 {
		t.Fatalf("no_flow %d (want 2), malformed %d (want 1), action drops %d (want 2)", n, m, d)
	}
	for _, e := range r.b.table.Entries() {
		want := uint64(3)
		if len(e.Flow.Actions) == 0 {
			want = 2
		}
		if e.Packets() != want {
			t.Errorf("flow %s counted %d packets, want %d", flowtable.FormatFlow(e.Flow, nil), e.Packets(), want)
		}
	}
	if p := r.u.Pool(); p.Free() != p.Total() {
		t.Fatalf("%d of %d frames back in the pool", p.Free(), p.Total())
	}
}
