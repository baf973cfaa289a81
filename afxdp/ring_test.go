package afxdp

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestDescLayout(t *testing.T) {
	if got, want := unsafe.Sizeof(Desc{}), unsafe.Sizeof(unix.XDPDesc{}); got != want {
		t.Fatalf("Desc is %d bytes, struct xdp_desc %d", got, want)
	}
	if unsafe.Offsetof(Desc{}.Len) != 8 || unsafe.Offsetof(Desc{}.Options) != 12 {
		t.Fatalf("Desc field offsets differ from struct xdp_desc")
	}
}

// Starting indices: zero like a fresh kernel ring, and just below the 2^32
// wrap of the free-running indices.
var ringStarts = []struct {
	name  string
	start uint32
}{
	{"from zero", 0},
	{"across 2^32", ^uint32(0) - 5},
}

func seq(from, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(from+i) * 2048
	}
	return s
}

func TestFillRing(t *testing.T) {
	for _, st := range ringStarts {
		t.Run(st.name, func(t *testing.T) {
			mem, off := fakeRingMem(8, 8, st.start)
			f, k := newFillRing(mem, off, 8), newKernelEnd(mem, off, 8, 8)

			if got := f.Free(); got != 8 {
				t.Fatalf("empty ring: Free = %d, want 8", got)
			}
			if got := f.Produce(nil); got != 0 {
				t.Fatalf("Produce(nil) = %d", got)
			}
			// Partial batch: 11 offered, 8 fit.
			if got := f.Produce(seq(0, 11)); got != 8 {
				t.Fatalf("Produce(11) on an empty ring of 8 = %d, want 8", got)
			}
			// Full.
			if got := f.Produce(seq(100, 1)); got != 0 {
				t.Fatalf("Produce on a full ring = %d, want 0", got)
			}
			if got := f.Outstanding(); got != 8 {
				t.Fatalf("Outstanding = %d, want 8", got)
			}
			got := make([]uint64, 3)
			if n := k.takeAddrs(got); n != 3 || !slices.Equal(got, seq(0, 3)) {
				t.Fatalf("kernel took %d %v, want %v", n, got, seq(0, 3))
			}
			// The cached consumer is stale; Produce refreshes it and wraps.
			if n := f.Produce(seq(8, 5)); n != 3 {
				t.Fatalf("Produce(5) with 3 free = %d, want 3", n)
			}
			rest := make([]uint64, 16)
			n := k.takeAddrs(rest)
			if want := seq(3, 8); !slices.Equal(rest[:n], want) {
				t.Fatalf("kernel took %v, want %v", rest[:n], want)
			}
			if got := f.Free(); got != 8 {
				t.Fatalf("drained ring: Free = %d, want 8", got)
			}
		})
	}
}

func TestCompletionRing(t *testing.T) {
	for _, st := range ringStarts {
		t.Run(st.name, func(t *testing.T) {
			mem, off := fakeRingMem(4, 8, st.start)
			c, k := newCompletionRing(mem, off, 4), newKernelEnd(mem, off, 4, 8)
			buf := make([]uint64, 8)

			if n := c.Consume(buf); n != 0 {
				t.Fatalf("empty ring: Consume = %d", n)
			}
			if n := k.putAddrs(seq(0, 6)); n != 4 {
				t.Fatalf("kernel put %d into a ring of 4", n)
			}
			if got := c.Available(); got != 4 {
				t.Fatalf("Available = %d, want 4", got)
			}
			// Partial batches: the caller's slice is the limit.
			if n := c.Consume(buf[:3]); n != 3 || !slices.Equal(buf[:3], seq(0, 3)) {
				t.Fatalf("Consume(3) = %d %v", n, buf[:3])
			}
			if n := k.putAddrs(seq(4, 3)); n != 3 {
				t.Fatalf("kernel put %d after 3 freed", n)
			}
			if n := c.Consume(buf); n != 4 || !slices.Equal(buf[:4], []uint64{3 * 2048, 4 * 2048, 5 * 2048, 6 * 2048}) {
				t.Fatalf("Consume across the wrap = %d %v", n, buf[:n])
			}
			if n := c.Consume(buf); n != 0 {
				t.Fatalf("drained ring: Consume = %d", n)
			}
		})
	}
}

func TestRxTxRings(t *testing.T) {
	for _, st := range ringStarts {
		t.Run(st.name, func(t *testing.T) {
			rmem, roff := fakeRingMem(4, 16, st.start)
			rx, kr := newRxRing(rmem, roff, 4), newKernelEnd(rmem, roff, 4, 16)
			tmem, toff := fakeRingMem(4, 16, st.start)
			tx, kt := newTxRing(tmem, toff, 4), newKernelEnd(tmem, toff, 4, 16)

			in := []Desc{{Addr: 256, Len: 60}, {Addr: 2048 + 256, Len: 1514}, {Addr: 4096 + 300, Len: 64, Options: 0}}
			if n := kr.putDescs(in); n != 3 {
				t.Fatalf("kernel put %d", n)
			}
			got := make([]Desc, 8)
			n := rx.Consume(got)
			if n != 3 || !slices.Equal(got[:n], in) {
				t.Fatalf("rx Consume = %d %v, want %v", n, got[:n], in)
			}
			// Forward them: same descriptors on TX.
			if m := tx.Produce(got[:n]); m != 3 {
				t.Fatalf("tx Produce = %d", m)
			}
			if m := tx.Produce(got[:n]); m != 1 {
				t.Fatalf("tx Produce with 1 free = %d, want 1", m)
			}
			if tx.Free() != 0 || tx.Outstanding() != 4 {
				t.Fatalf("full tx: Free %d Outstanding %d", tx.Free(), tx.Outstanding())
			}
			out := make([]Desc, 8)
			if m := kt.takeDescs(out); m != 4 || !slices.Equal(out[:3], in) || out[3] != in[0] {
				t.Fatalf("kernel took %d %v", m, out[:m])
			}
			if tx.Outstanding() != 0 {
				t.Fatalf("Outstanding after the kernel took all = %d", tx.Outstanding())
			}
		})
	}
}

func TestNeedWakeup(t *testing.T) {
	mem, off := fakeRingMem(4, 8, 0)
	f, k := newFillRing(mem, off, 4), newKernelEnd(mem, off, 4, 8)
	if f.NeedWakeup() {
		t.Fatal("NeedWakeup set on a fresh ring")
	}
	k.setNeedWakeup(true)
	if !f.NeedWakeup() {
		t.Fatal("NeedWakeup not seen")
	}
	k.setNeedWakeup(false)
	if f.NeedWakeup() {
		t.Fatal("NeedWakeup still set")
	}
}

// TestRingsDifferential runs random batches through every ring kind and
// checks them against a plain FIFO of the ring's contents.
func TestRingsDifferential(t *testing.T) {
	for _, size := range []uint32{1, 2, 8, 64} {
		for _, st := range ringStarts {
			for seed := range uint64(5) {
				rng := rand.New(rand.NewPCG(seed, uint64(size)))
				next := uint64(0)
				batch := func() []uint64 {
					b := make([]uint64, rng.IntN(int(size)*2+1))
					for i := range b {
						b[i] = next
						next++
					}
					return b
				}
				descsOf := func(a []uint64) []Desc {
					d := make([]Desc, len(a))
					for i, x := range a {
						d[i] = Desc{Addr: x, Len: uint32(x), Options: uint32(x >> 3)}
					}
					return d
				}

				fmem, foff := fakeRingMem(size, 8, st.start)
				fill, kf := newFillRing(fmem, foff, size), newKernelEnd(fmem, foff, size, 8)
				cmem, coff := fakeRingMem(size, 8, st.start)
				comp, kc := newCompletionRing(cmem, coff, size), newKernelEnd(cmem, coff, size, 8)
				rmem, roff := fakeRingMem(size, 16, st.start)
				rx, kr := newRxRing(rmem, roff, size), newKernelEnd(rmem, roff, size, 16)
				tmem, toff := fakeRingMem(size, 16, st.start)
				tx, kt := newTxRing(tmem, toff, size), newKernelEnd(tmem, toff, size, 16)

				var qf, qc, qr, qt []uint64 // reference contents
				for step := range 400 {
					switch rng.IntN(8) {
					case 0: // we produce into fill
						b := batch()
						n := fill.Produce(b)
						want := min(len(b), int(size)-len(qf))
						if n != want {
							t.Fatalf("size %d seed %d step %d: fill Produce(%d) = %d, want %d", size, seed, step, len(b), n, want)
						}
						qf = append(qf, b[:n]...)
					case 1: // kernel consumes fill
						got := make([]uint64, rng.IntN(int(size)+2))
						n := kf.takeAddrs(got)
						if want := min(len(got), len(qf)); n != want || !slices.Equal(got[:n], qf[:n]) {
							t.Fatalf("size %d seed %d step %d: kernel took fill %v, want %v", size, seed, step, got[:n], qf[:want])
						}
						qf = qf[n:]
					case 2: // kernel completes
						b := batch()
						n := kc.putAddrs(b)
						qc = append(qc, b[:n]...)
					case 3: // we consume completions
						got := make([]uint64, rng.IntN(int(size)+2))
						n := comp.Consume(got)
						if want := min(len(got), len(qc)); n != want || !slices.Equal(got[:n], qc[:n]) {
							t.Fatalf("size %d seed %d step %d: completions %v, want %v", size, seed, step, got[:n], qc[:want])
						}
						qc = qc[n:]
					case 4: // kernel receives
						b := batch()
						n := kr.putDescs(descsOf(b))
						qr = append(qr, b[:n]...)
					case 5: // we consume RX
						got := make([]Desc, rng.IntN(int(size)+2))
						n := rx.Consume(got)
						if want := min(len(got), len(qr)); n != want || !slices.Equal(got[:n], descsOf(qr[:n])) {
							t.Fatalf("size %d seed %d step %d: rx %v, want %v", size, seed, step, got[:n], descsOf(qr[:want]))
						}
						qr = qr[n:]
					case 6: // we produce TX
						b := batch()
						n := tx.Produce(descsOf(b))
						if want := min(len(b), int(size)-len(qt)); n != want {
							t.Fatalf("size %d seed %d step %d: tx Produce(%d) = %d, want %d", size, seed, step, len(b), n, want)
						}
						qt = append(qt, b[:n]...)
						if got := tx.Outstanding(); got != len(qt) {
							t.Fatalf("size %d seed %d step %d: tx Outstanding %d, want %d", size, seed, step, got, len(qt))
						}
					case 7: // kernel consumes TX
						got := make([]Desc, rng.IntN(int(size)+2))
						n := kt.takeDescs(got)
						if want := min(len(got), len(qt)); n != want || !slices.Equal(got[:n], descsOf(qt[:n])) {
							t.Fatalf("size %d seed %d step %d: kernel took tx %v, want %v", size, seed, step, got[:n], descsOf(qt[:want]))
						}
						qt = qt[n:]
					}
					if fill.Free() != int(size)-len(qf) || comp.Available() != len(qc) ||
						rx.Available() != len(qr) || tx.Free() != int(size)-len(qt) {
						t.Fatalf("size %d seed %d step %d: occupancy differs from the model", size, seed, step)
					}
				}
			}
		}
	}
}

// TestRefillLendsAtMostRxSize checks Refill's cap on frames lent to the
// kernel, and Reap, over fake rings.
func TestRefillLendsAtMostRxSize(t *testing.T) {
	const frameSize = 2048
	fs := newFakeSocket(32, frameSize, 16, 16, 4, 16)
	s, pool := fs.s, fs.s.umem.Pool()

	if n := s.Refill(); n != 4 {
		t.Fatalf("first Refill = %d, want 4 (RX ring size)", n)
	}
	if n := s.Refill(); n != 0 {
		t.Fatalf("Refill with 4 lent = %d, want 0", n)
	}
	tmp, descs := make([]uint64, 16), make([]Desc, 16)
	if n := fs.receive(tmp, descs, PacketHeadroom, 60); n != 4 {
		t.Fatalf("kernel received %d", n)
	}
	// Fill empty, RX full: still 4 lent.
	if n := s.Refill(); n != 0 {
		t.Fatalf("Refill with a full RX ring = %d, want 0", n)
	}
	got := make([]Desc, 2)
	if n := s.Receive(got); n != 2 || got[0].Addr != PacketHeadroom || got[1].Addr != frameSize+PacketHeadroom {
		t.Fatalf("Receive = %d %v", n, got)
	}
	if n := s.Refill(); n != 2 {
		t.Fatalf("Refill after 2 received = %d, want 2", n)
	}
	if pool.Free() != 32-6 {
		t.Fatalf("pool Free = %d, want 26", pool.Free())
	}
	// Send the two received frames; the kernel completes them; Reap.
	if n := s.Transmit(got); n != 2 {
		t.Fatalf("Transmit = %d", n)
	}
	if n := fs.send(descs, tmp); n != 2 {
		t.Fatalf("kernel sent %d", n)
	}
	if n := s.Reap(); n != 2 {
		t.Fatalf("Reap = %d", n)
	}
	if !pool.Contains(0) || !pool.Contains(frameSize) || pool.Free() != 28 {
		t.Fatalf("after Reap: Free %d, chunks 0 and 1 in pool: %v %v", pool.Free(), pool.Contains(0), pool.Contains(frameSize))
	}
}

// TestForwardLoopAllocs runs the poller's loop over fake rings: receive,
// transmit the same descriptors, reap, refill. It must not allocate.
func TestForwardLoopAllocs(t *testing.T) {
	fs := newFakeSocket(256, 2048, 64, 64, 64, 64)
	s := fs.s
	rx := make([]Desc, 32)
	tmp, kd := make([]uint64, 64), make([]Desc, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		s.Refill()
		fs.receive(tmp[:32], kd, PacketHeadroom, 64)
		n := s.Receive(rx)
		m := s.Transmit(rx[:n])
		s.umem.pool.PutBatch(addrsOf(rx[m:n], tmp))
		fs.send(kd, tmp)
		s.Reap()
	})
	if allocs != 0 {
		t.Fatalf("forward loop allocates %.1f times per run", allocs)
	}
	if got := s.umem.pool.Free() + int(fs.fill.filled()+fs.rx.filled()); got != 256 {
		t.Fatalf("frames accounted for: %d, want 256", got)
	}
}

func addrsOf(d []Desc, buf []uint64) []uint64 {
	for i := range d {
		buf[i] = d[i].Addr
	}
	return buf[:len(d)]
}

func BenchmarkRxConsume(b *testing.B) {
	mem, off := fakeRingMem(1024, 16, 0)
	rx, k := newRxRing(mem, off, 1024), newKernelEnd(mem, off, 1024, 16)
	in, out := make([]Desc, 64), make([]Desc, 64)
	b.ReportAllocs()
	for b.Loop() {
		k.putDescs(in)
		rx.Consume(out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/desc")
}

func BenchmarkTxProduce(b *testing.B) {
	mem, off := fakeRingMem(1024, 16, 0)
	tx, k := newTxRing(mem, off, 1024), newKernelEnd(mem, off, 1024, 16)
	in, out := make([]Desc, 64), make([]Desc, 64)
	b.ReportAllocs()
	for b.Loop() {
		tx.Produce(in)
		k.takeDescs(out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/desc")
}

func BenchmarkForwardLoop(b *testing.B) {
	fs := newFakeSocket(4096, 2048, 1024, 1024, 1024, 1024)
	s := fs.s
	rx := make([]Desc, 64)
	tmp, kd := make([]uint64, 64), make([]Desc, 64)
	b.ReportAllocs()
	for b.Loop() {
		s.Refill()
		fs.receive(tmp, kd, PacketHeadroom, 64)
		n := s.Receive(rx)
		s.Transmit(rx[:n])
		fs.send(kd, tmp)
		s.Reap()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}
