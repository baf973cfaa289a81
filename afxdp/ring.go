package afxdp

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Desc is one RX or TX descriptor, laid out like struct xdp_desc.
//
// Addr is the offset of the frame's first byte in the UMEM area, so it is
// the chunk's base plus the offset of the data inside the chunk. Len is the
// frame's length in bytes. Options is zero for single-buffer frames.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// Every ring index is a free-running uint32: entries live at idx & mask and
// the number of entries is prod - cons, which stays right across the 2^32
// wrap.
//
// ring holds the shared indices of one ring and our cached copies. For a ring
// we produce into (fill, TX), cachedProd is our own producer (published with
// a store) and cachedCons the kernel's consumer as last read. For a ring we
// consume from (completion, RX) it is the other way round. The shared words
// are touched only with atomics (Go's atomics are sequentially consistent,
// which includes the acquire/release the protocol needs), and only when the
// cached view is not enough: descriptors move with plain loads and stores.
type ring struct {
	producer *uint32 // producer index; written by the producer side only
	consumer *uint32 // consumer index; written by the consumer side only
	flags    *uint32 // XDP_RING_NEED_WAKEUP; written by the kernel only
	mask     uint32
	size     uint32

	cachedProd uint32
	cachedCons uint32
}

// newRing points a ring at its mapped header. mem must stay mapped (or, in
// tests, referenced) as long as the ring is used.
func newRing(mem []byte, off unix.XDPRingOffset, size uint32) ring {
	base := unsafe.Pointer(unsafe.SliceData(mem))
	r := ring{
		producer: (*uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*uint32)(unsafe.Add(base, off.Flags)),
		mask:     size - 1,
		size:     size,
	}
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return r
}

// clamp bounds a batch length to the ring size, so the uint32 arithmetic
// below never sees a larger count.
func (r *ring) clamp(n int) uint32 {
	if n > int(r.size) {
		return r.size
	}
	return uint32(n)
}

// prodFree returns the free slots of a ring we produce into, reading the
// kernel's consumer only if the cached view shows fewer than want.
func (r *ring) prodFree(want uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free < want {
		r.cachedCons = atomic.LoadUint32(r.consumer)
		free = r.size - (r.cachedProd - r.cachedCons)
	}
	return free
}

// consAvail returns the filled slots of a ring we consume from, reading the
// kernel's producer only if the cached view shows fewer than want.
func (r *ring) consAvail(want uint32) uint32 {
	avail := r.cachedProd - r.cachedCons
	if avail < want {
		r.cachedProd = atomic.LoadUint32(r.producer)
		avail = r.cachedProd - r.cachedCons
	}
	return avail
}

// pending returns how many entries we produced that the kernel has not
// consumed yet (rings we produce into).
func (r *ring) pending() int {
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return int(r.cachedProd - r.cachedCons)
}

func (r *ring) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// FillRing hands free frames to the kernel for receiving. We produce chunk
// addresses, the kernel consumes them. Only the goroutine that owns the
// socket's UMEM may use it.
type FillRing struct {
	r     ring
	addrs []uint64 // slots: written by us, read by the kernel
}

func newFillRing(mem []byte, off unix.XDPRingOffset, size uint32) FillRing {
	return FillRing{r: newRing(mem, off, size), addrs: unsafe.Slice((*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off.Desc)), size)}
}

// Produce queues the addresses of free chunks for the kernel to receive
// into and returns how many it queued: fewer than len(addrs) when the ring is
// full. The caller still owns addrs[n:].
func (f *FillRing) Produce(addrs []uint64) int {
	n := min(f.r.prodFree(f.r.clamp(len(addrs))), uint32(len(addrs)))
	if n == 0 {
		return 0
	}
	idx := f.r.cachedProd
	for i, a := range addrs[:n] {
		f.addrs[(idx+uint32(i))&f.r.mask] = a
	}
	f.r.cachedProd = idx + n
	atomic.StoreUint32(f.r.producer, f.r.cachedProd)
	return int(n)
}

// Free returns how many addresses Produce would accept now.
func (f *FillRing) Free() int { return int(f.r.prodFree(f.r.size)) }

// Outstanding returns how many queued addresses the kernel has not taken yet.
func (f *FillRing) Outstanding() int { return f.r.pending() }

// NeedWakeup reports whether the driver asks to be woken up (recvfrom or
// poll) before it takes more addresses. Copy mode never sets it.
func (f *FillRing) NeedWakeup() bool { return f.r.needWakeup() }

// Size returns the number of slots.
func (f *FillRing) Size() int { return int(f.r.size) }

// CompletionRing returns transmitted frames. The kernel produces the
// addresses of frames it has sent (the Addr of their TX descriptors), we
// consume them. Only the goroutine that owns the socket's UMEM may use it.
type CompletionRing struct {
	r     ring
	addrs []uint64 // slots: written by the kernel, read by us
}

func newCompletionRing(mem []byte, off unix.XDPRingOffset, size uint32) CompletionRing {
	return CompletionRing{r: newRing(mem, off, size), addrs: unsafe.Slice((*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off.Desc)), size)}
}

// Consume moves up to len(addrs) completed addresses into addrs and returns
// how many. The frames are the caller's from then on.
func (c *CompletionRing) Consume(addrs []uint64) int {
	n := min(c.r.consAvail(c.r.clamp(len(addrs))), uint32(len(addrs)))
	if n == 0 {
		return 0
	}
	idx := c.r.cachedCons
	for i := range addrs[:n] {
		addrs[i] = c.addrs[(idx+uint32(i))&c.r.mask]
	}
	c.r.cachedCons = idx + n
	atomic.StoreUint32(c.r.consumer, c.r.cachedCons)
	return int(n)
}

// Available returns how many completions are waiting.
func (c *CompletionRing) Available() int { return int(c.r.consAvail(c.r.size)) }

// Size returns the number of slots.
func (c *CompletionRing) Size() int { return int(c.r.size) }

// RxRing carries received frames. The kernel produces descriptors, we
// consume them. Only the goroutine that owns the socket's UMEM may use it.
type RxRing struct {
	r     ring
	descs []Desc // slots: written by the kernel, read by us
}

func newRxRing(mem []byte, off unix.XDPRingOffset, size uint32) RxRing {
	return RxRing{r: newRing(mem, off, size), descs: unsafe.Slice((*Desc)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off.Desc)), size)}
}

// Consume moves up to len(descs) received descriptors into descs and
// returns how many. Each descriptor's frame is the caller's from then on: it
// must go back to the pool, to a TX ring, or stay with the caller.
func (r *RxRing) Consume(descs []Desc) int {
	n := min(r.r.consAvail(r.r.clamp(len(descs))), uint32(len(descs)))
	if n == 0 {
		return 0
	}
	idx := r.r.cachedCons
	for i := range descs[:n] {
		descs[i] = r.descs[(idx+uint32(i))&r.r.mask]
	}
	r.r.cachedCons = idx + n
	atomic.StoreUint32(r.r.consumer, r.r.cachedCons)
	return int(n)
}

// Available returns how many received descriptors are waiting.
func (r *RxRing) Available() int { return int(r.r.consAvail(r.r.size)) }

// Size returns the number of slots.
func (r *RxRing) Size() int { return int(r.r.size) }

// TxRing carries frames to send. We produce descriptors, the kernel
// consumes them and later returns their addresses on the completion ring.
// Only the goroutine that owns the socket's UMEM may use it.
type TxRing struct {
	r     ring
	descs []Desc // slots: written by us, read by the kernel
}

func newTxRing(mem []byte, off unix.XDPRingOffset, size uint32) TxRing {
	return TxRing{r: newRing(mem, off, size), descs: unsafe.Slice((*Desc)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off.Desc)), size)}
}

// Produce queues descriptors for sending and returns how many it queued:
// fewer than len(descs) when the ring is full. The frames of descs[:n]
// belong to the kernel until they come back on the completion ring; the
// caller still owns descs[n:]. Nothing is sent before a Kick (or Poll).
//
// A descriptor the kernel finds invalid (Len 0, Addr outside the UMEM, or a
// frame crossing its chunk's end) is not sent and is counted in
// Stats.TxInvalidDescs. Kernel 6.18 still returns its address on the
// completion ring; older kernels did not, and the frame stays the
// caller's.
func (t *TxRing) Produce(descs []Desc) int {
	n := min(t.r.prodFree(t.r.clamp(len(descs))), uint32(len(descs)))
	if n == 0 {
		return 0
	}
	idx := t.r.cachedProd
	for i := range descs[:n] {
		t.descs[(idx+uint32(i))&t.r.mask] = descs[i]
	}
	t.r.cachedProd = idx + n
	atomic.StoreUint32(t.r.producer, t.r.cachedProd)
	return int(n)
}

// Free returns how many descriptors Produce would accept now.
func (t *TxRing) Free() int { return int(t.r.prodFree(t.r.size)) }

// Outstanding returns how many queued descriptors the kernel has not taken
// yet. Taken is not sent: sent frames show up on the completion ring.
func (t *TxRing) Outstanding() int { return t.r.pending() }

// NeedWakeup reports whether the kernel must be kicked to send. Copy mode
// always sets it.
func (t *TxRing) NeedWakeup() bool { return t.r.needWakeup() }

// Size returns the number of slots.
func (t *TxRing) Size() int { return int(t.r.size) }
