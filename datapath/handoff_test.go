package datapath

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/flowtable"
)

// The ring hands every value over once, in order, between two goroutines
// that publish and release at random batch sizes.
func TestSPSC(t *testing.T) {
	const n = 1 << 18
	r := newSPSC[uint64](64)
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := uint64(0); i < n; {
			if r.push(i) {
				i++
			}
			if rng.IntN(8) == 0 {
				r.publish()
			}
		}
		r.publish()
	})
	buf := make([]uint64, 16)
	rng := rand.New(rand.NewPCG(3, 4))
	for next := uint64(0); next < n; {
		var k int
		if rng.IntN(2) == 0 {
			k = r.popBatch(buf[:1+rng.IntN(len(buf))])
		} else if v, ok := r.pop(); ok {
			buf[0], k = v, 1
		}
		for _, v := range buf[:k] {
			if v != next {
				t.Fatalf("got %d, want %d", v, next)
			}
			next++
		}
		if rng.IntN(4) == 0 {
			r.release()
		}
	}
	r.release()
	wg.Wait()
	if r.waiting() || r.inRing() != 0 {
		t.Fatalf("ring not empty at the end: %d", r.inRing())
	}
}

// handoffRig is a forwardRig whose port b is served by a second poller:
// the rig's poller hands b's frames over to it.
type handoffRig struct {
	*forwardRig
	dst *poller
	bd  *portSocket // b's socket, on dst
	h   *handoff
}

func newHandoffRig(tb testing.TB, flows ...string) *handoffRig {
	tb.Helper()
	r := newForwardRig(tb, flows...)
	u, err := afxdp.NewUmem(afxdp.UmemOptions{NumFrames: 1024, FrameSize: 2048, Headroom: 64})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { u.Close() })
	dst := &poller{queue: 0, umem: u, cpu: -1, hbuf: make([]handoffDesc, 64), handoffFd: -1}
	r.pl.queue = 1
	b := rigPorts["b"]
	bd := &portSocket{port: r.ports[1].port, umem: u, shared: true, txq: make([]afxdp.Desc, 0, 1024)}
	dst.out[b] = bd
	r.pl.out[b] = nil
	h := newHandoff(r.pl, dst, 256)
	dst.inbound = append(dst.inbound, h)
	dst.lend(h)
	r.pl.links[b] = h
	return &handoffRig{forwardRig: r, dst: dst, bd: bd, h: h}
}

// drain returns the frames queued on b's socket to dst's pool, as their
// completions would, and hands each to seen first.
func (r *handoffRig) drain(seen func([]byte)) {
	for _, d := range r.bd.txq {
		if seen != nil {
			seen(r.dst.umem.Frame(d))
		}
		r.dst.umem.Pool().Put(d.Addr)
	}
	r.bd.txq = r.bd.txq[:0]
}

// balanced reports whether every frame of dst's UMEM is in its pool or
// lent, and lent as booked.
func (r *handoffRig) balanced() error {
	lent := r.h.credits.inRing() + r.h.frames.inRing()
	p := r.dst.umem.Pool()
	if p.Free()+lent != p.Total() || lent != r.h.lent {
		return fmt.Errorf("dst: %d free + %d lent (booked %d) of %d", p.Free(), lent, r.h.lent, p.Total())
	}
	if p := r.u.Pool(); p.Free() != p.Total() {
		return fmt.Errorf("src: %d of %d frames free", p.Free(), p.Total())
	}
	return nil
}

// A frame for a port the poller has no socket of is copied into a frame
// the serving poller lent, reaches that port's TX queue intact, and every
// frame of both UMEMs stays accounted for; with no frame lent, the frame
// is dropped and counted as handoff_full at the input port. The hand-off
// allocates nothing.
func TestHandoffRig(t *testing.T) {
	in := rigFrame(t, rigMACb, 7999, 64)
	r := newHandoffRig(t, "in_port=a,udp,actions=mod_tp_dst:7998,output:b")
	want := rigFrame(t, rigMACb, 7998, 64)

	r.forward(in, nil)
	r.pl.publishHandoffs()
	if got := r.dst.takeHandoffs(); got != 1 {
		t.Fatalf("took %d frames, want 1", got)
	}
	var got [][]byte
	r.drain(func(f []byte) { got = append(got, bytes.Clone(f)) })
	if len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("b was sent %q, want one frame %x", got, want)
	}
	if err := r.balanced(); err != nil {
		t.Fatal(err)
	}

	// The serving poller does not come by: the source uses up its credits.
	const extra = 10
	for range r.h.target + extra {
		r.forward(in, nil)
	}
	r.pl.publishHandoffs()
	var drops Drops
	r.ports[0].drops.sumInto(&drops)
	if drops[DropHandoffFull] != extra {
		t.Fatalf("handoff_full %d, want %d: %v", drops[DropHandoffFull], extra, drops)
	}
	if got := r.dst.takeHandoffs(); got != r.h.target {
		t.Fatalf("took %d frames, want %d", got, r.h.target)
	}
	r.drain(nil)
	if err := r.balanced(); err != nil {
		t.Fatal(err)
	}

	if allocs := testing.AllocsPerRun(1000, func() {
		r.forward(in, nil)
		r.pl.publishHandoffs()
		r.dst.takeHandoffs()
		r.drain(nil)
	}); allocs != 0 {
		t.Fatalf("a hand-off allocates %.1f times per frame", allocs)
	}

	// The hand-off stops: what it carries is taken, the credits come back.
	r.forward(in, nil)
	r.pl.publishHandoffs()
	r.pl.links[rigPorts["b"]] = nil
	r.dst.takeHandoff(r.h)
	r.drain(nil)
	pool := r.dst.umem.Pool()
	r.h.lent -= r.h.credits.takeOver(func(a uint64) { pool.Put(a) })
	if r.h.lent != 0 || pool.Free() != pool.Total() {
		t.Fatalf("after the hand-off stopped: %d lent, %d of %d free", r.h.lent, pool.Free(), pool.Total())
	}
}

// BenchmarkHandoff measures what a frame costs that goes out through
// another poller's socket, beside one that goes out through the poller's
// own (ns/op is per frame): forward on the source poller (parse, lookup,
// actions), the copy into a lent frame and the ring, and the destination
// taking it onto the TX queue and lending a frame again.
func BenchmarkHandoff(b *testing.B) {
	for _, size := range []int{64, 1500} {
		pay := bytes.Repeat([]byte("x"), size-42)
		in := udpFrame(b, rigMACb, rigMACb, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, 40000, 7999, 64, pay)
		b.Run(fmt.Sprintf("%dB/own socket", size), func(b *testing.B) {
			r := newForwardRig(b, "in_port=a,actions=output:b")
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				r.forward(in, nil)
			}
		})
		b.Run(fmt.Sprintf("%dB/handed over", size), func(b *testing.B) {
			r := newHandoffRig(b, "in_port=a,actions=output:b")
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				r.forward(in, nil)
				r.pl.publishHandoffs()
				r.dst.takeHandoffs()
				r.drain(nil)
			}
		})
	}
}

// BenchmarkHandoffCrossCPU measures the hand-off alone between two
// goroutines running at once (GOMAXPROCS >= 2; not pinned: two goroutines
// locked to pinned threads and spinning starve the runtime): the source takes a lent frame, copies the frame
// into it and pushes it, publishing every 32 frames (a burst); the
// destination takes the frames, returns them to its pool (as their TX
// completions would) and lends again. When no frame is lent the source
// publishes and tries again. ns/op is per frame handed over.
func BenchmarkHandoffCrossCPU(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 CPUs")
	}
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			r := newHandoffRig(b, "in_port=a,actions=output:b")
			pkt := flowtable.Packet{Buf: make([]byte, 2048), Off: 256, Len: size}
			copy(pkt.Buf[256:], bytes.Repeat([]byte{0xab}, size))
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					r.dst.takeHandoff(r.h)
					r.drain(nil)
					r.dst.lend(r.h)
				}
			}()
			in, port := r.ports[0], rigPorts["b"]
			full := &in.drops[DropHandoffFull]
			retries := 0
			b.SetBytes(int64(size))
			sent := 0
			for b.Loop() {
				for {
					f := full.Load()
					r.pl.handOff(in, r.h, port, &pkt)
					if full.Load() == f {
						break
					}
					retries++
					r.pl.publishHandoffs()
				}
				if sent++; sent%32 == 0 {
					r.pl.publishHandoffs()
				}
			}
			r.pl.publishHandoffs()
			close(stop)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(retries)/float64(sent), "retries/op")
		})
	}
}

// Two pollers at once: every frame handed over arrives, once, in order,
// with its bytes, and every lent frame comes back.
func TestHandoffConcurrent(t *testing.T) {
	const n = 200000
	r := newHandoffRig(t, "in_port=a,actions=output:b")
	pkt := flowtable.Packet{Buf: make([]byte, 2048), Off: 256, Len: 64}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		next := uint64(0)
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			r.dst.takeHandoff(r.h)
			for _, d := range r.bd.txq {
				if got := binary.LittleEndian.Uint64(r.dst.umem.Frame(d)); got != next {
					done <- fmt.Errorf("frame %d arrived as frame %d", got, next)
					return
				}
				next++
			}
			r.drain(nil)
			r.dst.lend(r.h)
		}
	}()
	in, port := r.ports[0], rigPorts["b"]
	full := &in.drops[DropHandoffFull]
	for i := range uint64(n) {
		binary.LittleEndian.PutUint64(pkt.Buf[256:], i)
		for {
			f := full.Load()
			r.pl.handOff(in, r.h, port, &pkt)
			if full.Load() == f {
				break
			}
			r.pl.publishHandoffs() // no frame lent: let the other side see what it has
		}
		if i%32 == 31 {
			r.pl.publishHandoffs()
		}
	}
	r.pl.publishHandoffs()
	eventually(t, 5*time.Second, func() bool { return r.h.frames.inRing() == 0 }, func() string { return "frames left in the ring" })
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.dst.takeHandoff(r.h)
	r.drain(nil)
	if err := r.balanced(); err != nil {
		t.Fatal(err)
	}
}
