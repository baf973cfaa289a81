package flowtable

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Benchmarks of the per-packet path (parse, lookup, rewrite) and of the
// control path (Apply, Steering). Flows match IPv4/TCP packets under masks
// built from real header fields, so every benchmark packet is a real frame
// that goes through Extract.

// benchMasks returns n distinct masks: dl_type and nw_proto exact, one wide
// field (so flows are distinct), and up to three more fields.
func benchMasks(r *rand.Rand, n int) []Key {
	wide := []func(*dpMB){
		func(b *dpMB) { b.nwSrc("0.0.0.0/24") }, func(b *dpMB) { b.nwSrc("0.0.0.0/32") },
		func(b *dpMB) { b.nwDst("0.0.0.0/24") }, func(b *dpMB) { b.nwDst("0.0.0.0/32") },
		func(b *dpMB) { b.dlSrc(dpMacA) }, func(b *dpMB) { b.dlDst(dpMacA) },
	}
	extra := []func(*dpMB){
		func(b *dpMB) { b.tpSrc(0) }, func(b *dpMB) { b.tpDst(0) }, func(b *dpMB) { b.nwTos(0) },
		func(b *dpMB) { b.nwSrc("0.0.0.0/8") }, func(b *dpMB) { b.nwDst("0.0.0.0/16") },
		func(b *dpMB) { b.setMasked(steer.OffTpDst, []byte{0, 0}, []byte{0xff, 0}) },
	}
	seen := map[Key]bool{}
	var out []Key
	for len(out) < n {
		b := dpMatch().dlType(0x0800).nwProto(6)
		wide[r.IntN(len(wide))](b)
		for i := r.IntN(4); i > 0; i-- {
			extra[r.IntN(len(extra))](b)
		}
		if m := b.get().Mask; !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// benchFlows returns n flows over nmasks masks with random priorities and
// keys; each rewrites the TCP destination port and outputs to p2.
func benchFlows(r *rand.Rand, n, nmasks int) []*Flow {
	masks := benchMasks(r, nmasks)
	fl := make([]*Flow, n)
	for i := range fl {
		var k Key
		for j := steer.OffDlDst; j < steer.KeyLen; j++ {
			k[j] = byte(r.Uint32())
		}
		binary.BigEndian.PutUint16(k[steer.OffDlType:], 0x0800)
		k[steer.OffNwProto] = 6
		m := masks[i%len(masks)]
		f := &Flow{Priority: uint16(r.Uint32()), Match: Match{Mask: m}}
		k.And(&m, &f.Match.Key)
		f.Actions = []Action{{Type: ActSetTpDst, Value: 8080}, dpOut("p2")}
		fl[i] = f
	}
	return fl
}

// benchFrames returns n TCP/IPv4 frames, each built to match a random flow
// of t (the fields outside its mask random).
func benchFrames(tb testing.TB, r *rand.Rand, t *Table, n int) [][]byte {
	tmpl := dpTCP4Frame(tb)
	es := t.Entries()
	frames := make([][]byte, n)
	for i := range frames {
		f := append([]byte(nil), tmpl...)
		e := es[r.IntN(len(es))]
		m, k := &e.Flow.Match.Mask, &e.Flow.Match.Key
		put := func(frameOff, keyOff, n int) {
			for j := 0; j < n; j++ {
				f[frameOff+j] = f[frameOff+j]&^m[keyOff+j] | k[keyOff+j]&m[keyOff+j]
				if m[keyOff+j] != 0xff {
					f[frameOff+j] = f[frameOff+j]&m[keyOff+j] | byte(r.Uint32())&^m[keyOff+j]
				}
			}
		}
		put(0, steer.OffDlDst, 12)
		put(14+1, steer.OffNwTos, 1)
		put(14+12, steer.OffNwSrc, 4)
		put(14+16, steer.OffNwDst, 4)
		put(34, steer.OffTpSrc, 4)
		frames[i] = f
	}
	return frames
}

var benchShapes = []struct{ flows, masks, tables int }{
	{1, 1, 1}, {1000, 1, 1}, {1000, 1, 3}, {1000, 8, 1}, {1000, 32, 1}, {100000, 1, 1}, {100000, 8, 1}, {100000, 32, 1},
}

// benchPipeline spreads the work of benchFlows' flows over n tables: the
// table-0 flows keep their matches and go to table 1, where one flow
// rewrites the port and goes on, until the last table outputs. The packet
// does what it does with one table, through n.
func benchPipeline(fl []*Flow, n int) []*Flow {
	if n == 1 {
		return fl
	}
	for _, f := range fl {
		f.Actions = []Action{{Type: ActGotoTable, Table: 1}}
	}
	ip := dpMatch().dlType(0x0800).get()
	for t := 1; t < n; t++ {
		f := &Flow{Table: uint8(t), Priority: 1, Match: ip}
		if t == 1 {
			f.Actions = append(f.Actions, Action{Type: ActSetTpDst, Value: 8080})
		}
		if t < n-1 {
			f.Actions = append(f.Actions, Action{Type: ActGotoTable, Table: uint8(t + 1)})
		} else {
			f.Actions = append(f.Actions, dpOut("p2"))
		}
		fl = append(fl, f)
	}
	return fl
}

// benchPackets runs loop, the body of a per-packet benchmark, on every
// shape of table and in three modes: cached and cached16 look up through c,
// the exact-match cache, with packets cycling over 1024 frames of distinct
// flows (the working set is in L2, not L1) or over 16 (a few heavy flows);
// classifier has c nil and looks up in the classifier, as on a cache miss.
// The frames of one cycle are frames[:nframes]. loop resets the timer once
// it has set up.
func benchPackets(b *testing.B, loop func(b *testing.B, tb *Table, frames [][]byte, nframes int, c *Cache)) {
	for _, sh := range benchShapes {
		r := dpRand(uint64(sh.flows*100 + sh.masks))
		tb := dpApply(b, NewTable(), Change{Add: benchFlows(r, sh.flows, sh.masks)}, dpPorts)
		frames := benchFrames(b, r, tb, 1024)
		name := fmt.Sprintf("flows=%d/masks=%d", sh.flows, sh.masks)
		if sh.tables > 1 {
			// The same frames, through a pipeline of sh.tables.
			tb = dpApply(b, NewTable(), Change{Add: benchPipeline(benchFlows(dpRand(uint64(sh.flows*100+sh.masks)), sh.flows, sh.masks), sh.tables)}, dpPorts)
			name += fmt.Sprintf("/tables=%d", sh.tables)
		}
		for _, mode := range []string{"cached", "cached16", "classifier"} {
			nframes := 1024
			if mode == "cached16" {
				nframes = 16
			}
			b.Run(name+"/"+mode, func(b *testing.B) {
				var c *Cache
				if mode != "classifier" {
					c = NewCache(0)
				}
				b.ReportAllocs()
				loop(b, tb, frames, nframes, c) // calls b.ResetTimer after its setup
				// 1024 keys in 8192 slots: nearly all hits.
				if c != nil && b.N > 100000 && float64(c.Misses) > 0.01*float64(b.N) {
					b.Fatalf("%.1f%% cache misses", 100*float64(c.Misses)/float64(b.N))
				}
			})
		}
	}
}

// BenchmarkPacket is the per-packet cost in a poller, one packet at a time:
// copy a frame into the buffer (as the NIC does), ExtractLayout, look up,
// run the flow's program (one port rewrite with its checksum, one output).
func BenchmarkPacket(b *testing.B) {
	benchPackets(b, func(b *testing.B, tb *Table, frames [][]byte, nframes int, c *Cache) {
		buf := make([]byte, 2048)
		var k Key
		var lay Layout
		var sink uint32
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f := frames[i&(nframes-1)]
			copy(buf[256:], f)
			pkt := Packet{Buf: buf, Off: 256, Len: len(f), InPort: 1}
			ExtractLayout(pkt.Frame(), 1, &k, &lay)
			var e *Entry
			if c != nil {
				e = c.Lookup(tb, &k).Entry()
			} else {
				e = tb.Lookup(&k)
			}
			if e == nil {
				b.Fatal("frame matches no flow")
			}
			out, _ := e.Program.Run(&pkt, &lay, 0)
			sink += out.Port
		}
		_ = sink
	})
}

// BenchmarkPacketBatch is BenchmarkPacket the way a poller runs it: a burst
// of MaxBatch frames is copied in and extracted, then looked up together
// (Cache.LookupBatch, or Table.LookupBatch and Resolve as when every key
// misses the cache), then each key's program runs. ns/op is per packet.
func BenchmarkPacketBatch(b *testing.B) {
	benchPackets(b, func(b *testing.B, tb *Table, frames [][]byte, nframes int, c *Cache) {
		benchBatchLoop(b, tb, frames, nframes, c)
	})
}

// benchBatchLoop is the body of BenchmarkPacketBatch: frames through tb
// (through c, unless it is nil) in bursts of MaxBatch.
func benchBatchLoop(b *testing.B, tb *Table, frames [][]byte, nframes int, c *Cache) {
	const frameSize = 2048
	bufs := make([]byte, MaxBatch*frameSize)
	var keys [MaxBatch]Key
	var lays [MaxBatch]Layout
	var pkts [MaxBatch]Packet
	var es [MaxBatch]*Entry
	var out [MaxBatch]Result
	var scratch BatchScratch
	var sink uint32
	b.ResetTimer()
	for i := 0; i < b.N; i += MaxBatch {
		n := min(MaxBatch, b.N-i)
		var want uint64
		for j := 0; j < n; j++ {
			f := frames[(i+j)&(nframes-1)]
			buf := bufs[j*frameSize : (j+1)*frameSize]
			copy(buf[256:], f)
			pkts[j] = Packet{Buf: buf, Off: 256, Len: len(f), InPort: 1}
			if ExtractLayout(pkts[j].Frame(), 1, &keys[j], &lays[j]) == ParseOK {
				want |= 1 << j
			}
		}
		if c != nil {
			c.LookupBatch(tb, keys[:n], want, out[:])
		} else {
			tb.LookupBatch(keys[:n], want, es[:], &scratch)
			for j := 0; j < n; j++ {
				out[j] = tb.Resolve(es[j], &keys[j])
			}
		}
		for j := 0; j < n; j++ {
			r := out[j]
			if !r.Found() {
				b.Fatal("frame matches no flow")
			}
			for pc := 0; pc >= 0; {
				var o Output
				o, pc = r.Program().Run(&pkts[j], &lays[j], pc)
				sink += o.Port
			}
		}
	}
	_ = sink
}

// benchLookups runs loop on every shape of table with 4096 keys that hit.
func benchLookups(b *testing.B, loop func(b *testing.B, tb *Table, keys []Key)) {
	for _, sh := range benchShapes {
		if sh.tables > 1 {
			continue // the classifier sees table 0 alone
		}
		r := dpRand(uint64(sh.flows*100 + sh.masks))
		tb := dpApply(b, NewTable(), Change{Add: benchFlows(r, sh.flows, sh.masks)}, dpPorts)
		frames := benchFrames(b, r, tb, 4096)
		keys := make([]Key, len(frames))
		for i, f := range frames {
			Extract(f, 1, &keys[i])
		}
		b.Run(fmt.Sprintf("flows=%d/masks=%d", sh.flows, sh.masks), func(b *testing.B) {
			b.ReportAllocs()
			loop(b, tb, keys)
		})
	}
}

// BenchmarkLookup is the classifier alone on keys that hit.
func BenchmarkLookup(b *testing.B) {
	benchLookups(b, func(b *testing.B, tb *Table, keys []Key) {
		for i := 0; i < b.N; i++ {
			if tb.Lookup(&keys[i&4095]) == nil {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkLookupBatch is the classifier alone on keys that hit, looked up
// MaxBatch at a time. ns/op is per key.
func BenchmarkLookupBatch(b *testing.B) {
	benchLookups(b, func(b *testing.B, tb *Table, keys []Key) {
		var out [MaxBatch]*Entry
		var scratch BatchScratch
		for i := 0; i < b.N; i += MaxBatch {
			n := min(MaxBatch, b.N-i)
			at := i & 4095 &^ (MaxBatch - 1)
			tb.LookupBatch(keys[at:at+n], ^uint64(0), out[:], &scratch)
			if out[0] == nil {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkLookupNoMatch: a key no flow matches visits every mask.
func BenchmarkLookupNoMatch(b *testing.B) {
	for _, sh := range benchShapes[1:] {
		if sh.tables > 1 {
			continue
		}
		tb := dpApply(b, NewTable(), Change{Add: benchFlows(dpRand(1), sh.flows, sh.masks)}, dpPorts)
		k := dpMatch().dlType(0x0800).nwProto(17).key(1)
		b.Run(fmt.Sprintf("flows=%d/masks=%d", sh.flows, sh.masks), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if tb.Lookup(&k) != nil {
					b.Fatal("hit")
				}
			}
		})
	}
}

func BenchmarkExtract(b *testing.B) {
	f := dpTCP4Frame(b)
	var k Key
	var lay Layout
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ExtractLayout(f, 1, &k, &lay)
	}
}

// BenchmarkApply installs N flows over 32 masks in one Change into an empty
// table, as a bulk add-flows request does.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1000, 10000, 160000} {
		fl := benchFlows(dpRand(uint64(n)), n, 32)
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := NewTable().Apply(Change{Add: fl}, dpPorts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/flow")
		})
	}
}

// BenchmarkApplyOne adds one flow at a time to a table of 160k flows (32
// masks), each to the table the last add made, as a switch takes add-flow
// after add-flow: the cost of a single add-flow on a large table.
func BenchmarkApplyOne(b *testing.B) {
	r := dpRand(9)
	tb := dpApply(b, NewTable(), Change{Add: benchFlows(r, 160000, 32)}, dpPorts)
	one := benchFlows(r, 1, 1)
	one[0].Match = tb.Get(1).Flow.Match // an existing mask
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one[0].Priority = uint16(1 + i%60000) // a new flow each time (Apply copies it)
		nt, err := tb.Apply(Change{Add: one}, dpPorts)
		if err != nil {
			b.Fatal(err)
		}
		tb = nt
	}
}

// BenchmarkSteering compiles the steering table of 160k flows (32 masks),
// and diffs it against the previous one after one flow was added.
func BenchmarkSteering(b *testing.B) {
	r := dpRand(10)
	tb := dpApply(b, NewTable(), Change{Add: benchFlows(r, 160000, 32)}, dpPorts)
	st, err := tb.Steering(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("compile/flows=160000", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := tb.Steering(st); err != nil {
				b.Fatal(err)
			}
		}
	})
	one := benchFlows(r, 1, 1)
	one[0].Match = tb.Get(1).Flow.Match // an existing mask
	one[0].Priority++
	tb2 := dpApply(b, tb, Change{Add: one}, dpPorts)
	st2, err := tb2.Steering(st)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("diff/flows=160000", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d := DiffSteering(st, st2)
			if len(d.PutLate) != 1 {
				b.Fatalf("diff %d late puts", len(d.PutLate))
			}
		}
	})
}

// BenchmarkCacheHit is the exact-match cache alone, on 1024 keys that hit.
func BenchmarkCacheHit(b *testing.B) {
	r := dpRand(11)
	tb := dpApply(b, NewTable(), Change{Add: benchFlows(r, 1000, 8)}, dpPorts)
	keys := make([]Key, 1024)
	for i, f := range benchFrames(b, r, tb, len(keys)) {
		Extract(f, 1, &keys[i])
	}
	c := NewCache(0)
	for i := range keys {
		c.Lookup(tb, &keys[i]).Entry()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.Lookup(tb, &keys[i&1023]).Entry() == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkRun is a program alone: mod_tp_dst (with its checksum) and one
// output.
func BenchmarkRun(b *testing.B) {
	f := dpTCP4Frame(b)
	pkt := dpPacket(f, 64, 0, 1)
	var k Key
	var lay Layout
	ExtractLayout(pkt.Frame(), 1, &k, &lay)
	prog := dpProgram(b, Action{Type: ActSetTpDst, Value: 8080}, dpOut("p2"))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		prog.ops[0].B = uint16(i) // a real change every time
		if out, _ := prog.Run(&pkt, &lay, 0); !out.Last {
			b.Fatal(out)
		}
	}
}

// BenchmarkProgramRun is one flow's program alone (a port rewrite with its
// checksum, one output) on a frame copied in, without extraction or
// lookup: the interpreter's cost, which BenchmarkPacketBatch hides in the
// noise of the rest.
func BenchmarkProgramRun(b *testing.B) {
	r := dpRand(uint64(1000*100 + 1))
	tb := dpApply(b, NewTable(), Change{Add: benchFlows(r, 1000, 1)}, dpPorts)
	frame := benchFrames(b, r, tb, 1)[0]
	var k Key
	var lay Layout
	ExtractLayout(frame, 1, &k, &lay)
	e := tb.Lookup(&k)
	buf := make([]byte, 2048)
	var sink uint32
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(buf[256:], frame)
		pkt := Packet{Buf: buf, Off: 256, Len: len(frame), InPort: 1}
		l := lay
		for pc := 0; pc >= 0; {
			var o Output
			o, pc = e.Program.Run(&pkt, &l, pc)
			sink += o.Port
		}
	}
	_ = sink
}
