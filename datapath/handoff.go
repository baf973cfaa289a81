package datapath

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/flowtable"
)

// spsc is a lock-free ring between one producer goroutine and one consumer
// goroutine. Like the AF_XDP rings, each side works on indices of its own
// and touches the shared ones only at batch boundaries (publish, release)
// or when its cached view of the other side runs out.
type spsc[T any] struct {
	buf  []T // the slots; the slice itself never changes
	mask uint32
	_    cpu.CacheLinePad
	prod atomic.Uint32 // written by the producer (publish)
	_    cpu.CacheLinePad
	cons atomic.Uint32 // written by the consumer (release)
	_    cpu.CacheLinePad
	// The producer's own: the next slot it fills, the cons it last read.
	pNext, pConsSeen uint32
	_                cpu.CacheLinePad
	// The consumer's own: the next slot it reads, the prod it last read.
	cNext, cProdSeen uint32
	_                cpu.CacheLinePad
}

// newSPSC returns a ring of size slots, a power of two.
func newSPSC[T any](size int) *spsc[T] {
	if size < 1 || size&(size-1) != 0 {
		panic(fmt.Sprintf("spsc ring of %d slots: not a power of two", size))
	}
	return &spsc[T]{buf: make([]T, size), mask: uint32(size - 1)}
}

// push adds v unless the ring is full. Producer only; the consumer sees it
// after publish.
func (r *spsc[T]) push(v T) bool {
	if r.pNext-r.pConsSeen == uint32(len(r.buf)) {
		r.pConsSeen = r.cons.Load()
		if r.pNext-r.pConsSeen == uint32(len(r.buf)) {
			return false
		}
	}
	r.buf[r.pNext&r.mask] = v
	r.pNext++
	return true
}

// publish makes what push added visible to the consumer.
func (r *spsc[T]) publish() { r.prod.Store(r.pNext) }

// pop takes the oldest published entry. Consumer only; the producer may
// reuse its slot after release.
func (r *spsc[T]) pop() (v T, ok bool) {
	if r.cNext == r.cProdSeen {
		r.cProdSeen = r.prod.Load()
		if r.cNext == r.cProdSeen {
			return v, false
		}
	}
	v = r.buf[r.cNext&r.mask]
	r.cNext++
	return v, true
}

// popBatch takes up to len(out) published entries into out and returns how
// many. Consumer only.
func (r *spsc[T]) popBatch(out []T) int {
	if r.cProdSeen-r.cNext < uint32(len(out)) {
		r.cProdSeen = r.prod.Load()
	}
	n := min(r.cProdSeen-r.cNext, uint32(len(out)))
	for i := range n {
		out[i] = r.buf[(r.cNext+i)&r.mask]
	}
	r.cNext += n
	return int(n)
}

// release gives the slots pop took back to the producer.
func (r *spsc[T]) release() { r.cons.Store(r.cNext) }

// waiting reports whether published entries wait for the consumer.
// Consumer only.
func (r *spsc[T]) waiting() bool { return r.prod.Load() != r.cNext }

// inRing returns the number of entries published and not yet released.
// Anyone may call it; it is exact only while both sides are between
// batches.
func (r *spsc[T]) inRing() int { return int(r.prod.Load() - r.cons.Load()) }

// takeOver calls fn on every entry published and not released, for the
// producer once the consumer is gone for good (it released what it took at
// its last batch, and that batch happened before this call).
func (r *spsc[T]) takeOver(fn func(T)) int {
	end := r.prod.Load()
	n := 0
	for i := r.cons.Load(); i != end; i++ {
		fn(r.buf[i&r.mask])
		n++
	}
	r.cons.Store(end)
	return n
}

// handoffDesc is a frame handed to the poller serving the output queue.
type handoffDesc struct {
	addr uint64 // in the destination poller's UMEM, data start
	len  uint32
	port uint32 // output ofport
}

// handoff carries frames from poller src to poller dst, which serves the
// queue of an output port src has no socket for (see doc.go). dst lends
// src free frames of its UMEM through credits; src copies a frame into one
// and returns it through frames. Every frame lent is in credits, being
// filled by src (within one of its batches), in frames, or back with dst.
type handoff struct {
	src, dst *poller
	umem     *afxdp.Umem        // dst's UMEM the lent frames are of (addHandoff picks it)
	credits  *spsc[uint64]      // dst -> src: chunk bases src may fill
	frames   *spsc[handoffDesc] // src -> dst: filled frames
	target   int                // frames dst keeps lent; the size of both rings

	lent  int  // dst's: frames out (in credits, with src, in frames)
	dirty bool // src's: pushed since its last publish
}

func newHandoff(src, dst *poller, target int) *handoff {
	return &handoff{
		src:     src,
		dst:     dst,
		umem:    dst.umem,
		credits: newSPSC[uint64](target),
		frames:  newSPSC[handoffDesc](target),
		target:  target,
	}
}

// handOff copies the frame pkt holds into a frame lent by h's destination
// poller, for output port. The caller keeps pkt's frame. Poller src only.
func (pl *poller) handOff(in *portSocket, h *handoff, port uint32, pkt *flowtable.Packet) {
	addr, ok := h.credits.pop()
	if !ok {
		in.drops.add(DropHandoffFull, 1)
		return
	}
	off := uint64(h.umem.DataOffset())
	copy(h.umem.Chunk(addr)[off:], pkt.Frame())
	if !h.frames.push(handoffDesc{addr: addr + off, len: uint32(pkt.Len), port: port}) {
		// frames holds at most target entries, and at most target frames
		// are lent, one of which is this one: never full.
		panic("datapath: hand-off ring full with a lent frame in hand")
	}
	if !h.dirty {
		h.dirty = true
		pl.dirty = append(pl.dirty, h)
	}
}

// publishHandoffs makes this batch's hand-offs visible to their pollers and
// wakes those that sleep. Poller src only, at the end of a batch.
func (pl *poller) publishHandoffs() {
	var woken uint64
	for _, h := range pl.dirty {
		h.credits.release()
		h.frames.publish()
		h.dirty = false
		// The destination sets sleeping, then looks at its rings once more
		// before poll(2); publish, then this load: one of the two sees the
		// other (sync/atomic is sequentially consistent).
		if bit := uint64(1) << (h.dst.queue % 64); h.dst.sleeping.Load() && woken&bit == 0 {
			woken |= bit
			var one = [8]byte{1}
			unix.Write(h.dst.handoffFd, one[:]) // EAGAIN: a wakeup is pending anyway
		}
	}
	pl.dirty = pl.dirty[:0]
}

// takeHandoffs queues the frames other pollers handed over on the TX queues
// of their ports and lends them frames again. It returns how many frames
// it took. Poller dst only.
func (pl *poller) takeHandoffs() int {
	n := 0
	for _, h := range pl.inbound {
		n += pl.takeHandoff(h)
		pl.lend(h)
	}
	return n
}

func (pl *poller) takeHandoff(h *handoff) int {
	total := 0
	for total < h.target {
		k := h.frames.popBatch(pl.hbuf)
		if k == 0 {
			break
		}
		for _, d := range pl.hbuf[:k] {
			dst := pl.out[d.port]
			switch {
			case dst == nil:
				pl.handoffLost.Add(1)
				h.umem.Pool().Put(d.addr)
			case dst.umem == h.umem:
				pl.queueTx(dst, afxdp.Desc{Addr: d.addr, Len: d.len})
			default:
				// The port has a UMEM of its own: one more copy.
				if addr, ok := dst.umem.Pool().Get(); ok {
					off := uint64(dst.umem.DataOffset())
					copy(dst.umem.Chunk(addr)[off:], h.umem.Frame(afxdp.Desc{Addr: d.addr, Len: d.len}))
					pl.queueTx(dst, afxdp.Desc{Addr: addr + off, Len: d.len})
				} else {
					dst.drops.add(DropNoFrame, 1)
				}
				h.umem.Pool().Put(d.addr)
			}
		}
		total += k
	}
	if total > 0 {
		h.frames.release()
		h.lent -= total
		pl.handoffs.Add(uint64(total))
	}
	return total
}

// lend tops h's credits up to its target from the pool.
func (pl *poller) lend(h *handoff) {
	if h.lent >= h.target {
		return
	}
	pool := h.umem.Pool()
	n := 0
	for h.lent < h.target {
		a, ok := pool.Get()
		if !ok {
			break
		}
		if !h.credits.push(a) { // src has not released what it took yet
			pool.Put(a)
			break
		}
		h.lent++
		n++
	}
	if n > 0 {
		h.credits.publish()
	}
}

// handoffsWaiting reports whether a hand-off waits to be taken. Poller dst
// only.
func (pl *poller) handoffsWaiting() bool {
	for _, h := range pl.inbound {
		if h.frames.waiting() {
			return true
		}
	}
	return false
}

// addHandoff starts taking frames from h and lends it frames, of a UMEM
// with room for them next to what its sockets need (pickUmem).
func (pl *poller) addHandoff(h *handoff) error {
	return pl.do(func() error {
		u, err := pl.pickUmem(0, 1)
		if err != nil {
			return err
		}
		h.umem = u
		pl.inbound = append(pl.inbound, h)
		pl.lend(h)
		return nil
	})
}

// removeHandoff stops taking frames from h, once its source no longer
// hands any over: it queues what h still carries for TX and takes back
// the frames it lent.
func (pl *poller) removeHandoff(h *handoff) error {
	return pl.do(func() error {
		for i, x := range pl.inbound {
			if x == h {
				pl.inbound = append(pl.inbound[:i], pl.inbound[i+1:]...)
				break
			}
		}
		pl.takeHandoff(h)
		pl.flushAll()
		pool := h.umem.Pool()
		h.lent -= h.credits.takeOver(func(a uint64) { pool.Put(a) })
		if h.lent != 0 {
			return fmt.Errorf("poller %d: hand-off from poller %d: %d lent frames did not come back", pl.queue, h.src.queue, h.lent)
		}
		return pl.releaseUmems()
	})
}

// framesNeeded is how many frames the poller's UMEM needs for socks
// sockets and links inbound hand-offs: every socket lends up to RingSize
// frames to the kernel, every hand-off its target, and RingSize more are
// kept for frames on their way out.
func (pl *poller) framesNeeded(socks, links int) int {
	return (socks+1)*pl.sw.cfg.RingSize + links*pl.sw.handoffTarget()
}

// handoffTarget is how many frames a poller lends each poller handing it
// frames (Config.HandoffFrames), a power of two.
func (s *Switch) handoffTarget() int {
	n := 1
	for n < max(s.cfg.HandoffFrames, s.cfg.BatchSize) {
		n <<= 1
	}
	return n
}
