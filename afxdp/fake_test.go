package afxdp

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's end of a ring, over plain memory, so the ring logic runs
// without the kernel. Its methods take caller slices and do not allocate.

// fakeRingMem lays a ring out like the kernel: producer, consumer and flags
// on cache lines of their own, then the slots. Both indices start at start,
// which lets a test begin next to the 2^32 wrap.
func fakeRingMem(size uint32, entry uintptr, start uint32) ([]byte, unix.XDPRingOffset) {
	off := unix.XDPRingOffset{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}
	words := make([]uint64, (192+uintptr(size)*entry+7)/8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	*(*uint32)(unsafe.Pointer(&mem[off.Producer])) = start
	*(*uint32)(unsafe.Pointer(&mem[off.Consumer])) = start
	return mem, off
}

type kernelEnd struct {
	prod, cons, flags *uint32
	mask, size        uint32
	addrs             []uint64 // fill and completion slots
	descs             []Desc   // rx and tx slots
}

func newKernelEnd(mem []byte, off unix.XDPRingOffset, size uint32, entry uintptr) *kernelEnd {
	k := &kernelEnd{
		prod:  (*uint32)(unsafe.Pointer(&mem[off.Producer])),
		cons:  (*uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags: (*uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:  size - 1,
		size:  size,
	}
	if entry == 8 {
		k.addrs = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off.Desc])), size)
	} else {
		k.descs = unsafe.Slice((*Desc)(unsafe.Pointer(&mem[off.Desc])), size)
	}
	return k
}

func (k *kernelEnd) setNeedWakeup(on bool) {
	if on {
		atomic.StoreUint32(k.flags, unix.XDP_RING_NEED_WAKEUP)
	} else {
		atomic.StoreUint32(k.flags, 0)
	}
}

// filled returns the entries between consumer and producer.
func (k *kernelEnd) filled() uint32 { return atomic.LoadUint32(k.prod) - atomic.LoadUint32(k.cons) }

// takeAddrs consumes up to len(dst) addresses (fill ring).
func (k *kernelEnd) takeAddrs(dst []uint64) int {
	c := atomic.LoadUint32(k.cons)
	n := min(uint32(len(dst)), atomic.LoadUint32(k.prod)-c)
	for i := range n {
		dst[i] = k.addrs[(c+i)&k.mask]
	}
	atomic.StoreUint32(k.cons, c+n)
	return int(n)
}

// takeDescs consumes up to len(dst) descriptors (TX ring).
func (k *kernelEnd) takeDescs(dst []Desc) int {
	c := atomic.LoadUint32(k.cons)
	n := min(uint32(len(dst)), atomic.LoadUint32(k.prod)-c)
	for i := range n {
		dst[i] = k.descs[(c+i)&k.mask]
	}
	atomic.StoreUint32(k.cons, c+n)
	return int(n)
}

// putAddrs produces as many of src as fit (completion ring).
func (k *kernelEnd) putAddrs(src []uint64) int {
	p := atomic.LoadUint32(k.prod)
	n := min(uint32(len(src)), k.size-(p-atomic.LoadUint32(k.cons)))
	for i := range n {
		k.addrs[(p+i)&k.mask] = src[i]
	}
	atomic.StoreUint32(k.prod, p+n)
	return int(n)
}

// putDescs produces as many of src as fit (RX ring).
func (k *kernelEnd) putDescs(src []Desc) int {
	p := atomic.LoadUint32(k.prod)
	n := min(uint32(len(src)), k.size-(p-atomic.LoadUint32(k.cons)))
	for i := range n {
		k.descs[(p+i)&k.mask] = src[i]
	}
	atomic.StoreUint32(k.prod, p+n)
	return int(n)
}

// fakeSocket is a Socket whose four rings are plain memory, on a Umem with
// a pool but no mapping: enough for Receive, Transmit, Reap and Refill.
type fakeSocket struct {
	s                  *Socket
	fill, comp, rx, tx *kernelEnd
}

func newFakeSocket(numFrames int, frameSize uint64, fillSize, compSize, rxSize, txSize uint32) *fakeSocket {
	u := &Umem{frameSize: frameSize, offMask: frameSize - 1, pool: newFramePool(numFrames, frameSize)}
	s := &Socket{fd: -1, umem: u, mode: ModeCopy}
	fs := &fakeSocket{s: s}

	mem, off := fakeRingMem(fillSize, 8, 0)
	s.fill, fs.fill = newFillRing(mem, off, fillSize), newKernelEnd(mem, off, fillSize, 8)
	mem, off = fakeRingMem(compSize, 8, 0)
	s.comp, fs.comp = newCompletionRing(mem, off, compSize), newKernelEnd(mem, off, compSize, 8)
	mem, off = fakeRingMem(rxSize, 16, 0)
	s.rx, fs.rx = newRxRing(mem, off, rxSize), newKernelEnd(mem, off, rxSize, 16)
	mem, off = fakeRingMem(txSize, 16, 0)
	s.tx, fs.tx = newTxRing(mem, off, txSize), newKernelEnd(mem, off, txSize, 16)
	return fs
}

// receive plays the kernel receiving frames of length n: it takes up to
// len(tmp) fill addresses and posts them on the RX ring at the data offset.
// It returns how many it posted. The RX ring must have room (Refill sees to
// that).
func (f *fakeSocket) receive(tmp []uint64, descs []Desc, dataOff uint64, n uint32) int {
	got := f.fill.takeAddrs(tmp)
	for i := range got {
		descs[i] = Desc{Addr: tmp[i] + dataOff, Len: n}
	}
	return f.rx.putDescs(descs[:got])
}

// send plays the kernel sending: it takes up to len(descs) TX descriptors
// and completes them. It returns how many.
func (f *fakeSocket) send(descs []Desc, tmp []uint64) int {
	n := f.tx.takeDescs(descs)
	for i := range n {
		tmp[i] = descs[i].Addr
	}
	return f.comp.putAddrs(tmp[:n])
}
