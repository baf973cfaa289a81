package afxdp

import (
	"fmt"
	"math/bits"
)

// FramePool is the free list of a UMEM's chunks: a stack of chunk base
// addresses. It has no lock: the goroutine that owns the UMEM (its poller)
// is the only one to use it.
//
// The pool knows which chunks it holds, so Free and Total account for every
// frame: Total - Free frames are somewhere else (fill, RX, TX or completion
// ring, or with the caller). Putting a chunk that is already in the pool, or
// an address outside the UMEM, is a bug that would hand one frame to two
// owners; the pool panics rather than corrupt packets.
type FramePool struct {
	stack  []uint64 // free chunk bases, the top is the last
	inPool []uint64 // bit per chunk: set while the chunk is on the stack
	shift  uint     // log2(chunk size)
	base   uint64   // mask clearing the offset inside a chunk
	limit  uint64   // size of the UMEM area
}

func newFramePool(numFrames int, frameSize uint64) FramePool {
	p := FramePool{
		stack:  make([]uint64, numFrames),
		inPool: make([]uint64, (numFrames+63)/64),
		shift:  uint(bits.TrailingZeros64(frameSize)),
		base:   ^(frameSize - 1),
		limit:  uint64(numFrames) * frameSize,
	}
	// Lowest address on top, so a fresh pool hands out 0, frameSize, ...
	for i := range p.stack {
		p.stack[i] = uint64(numFrames-1-i) * frameSize
	}
	for i := range p.inPool {
		p.inPool[i] = ^uint64(0)
	}
	if r := numFrames % 64; r != 0 {
		p.inPool[len(p.inPool)-1] = 1<<r - 1
	}
	return p
}

// Free returns the number of chunks in the pool.
func (p *FramePool) Free() int { return len(p.stack) }

// Total returns the number of chunks of the UMEM.
func (p *FramePool) Total() int { return cap(p.stack) }

// Get takes a chunk from the pool and returns its base address; ok is false
// when the pool is empty.
func (p *FramePool) Get() (addr uint64, ok bool) {
	n := len(p.stack)
	if n == 0 {
		return 0, false
	}
	addr = p.stack[n-1]
	p.stack = p.stack[:n-1]
	i := addr >> p.shift
	p.inPool[i/64] &^= 1 << (i % 64)
	return addr, true
}

// GetBatch fills addrs with chunk base addresses taken from the pool and
// returns how many: fewer than len(addrs) when the pool runs out.
func (p *FramePool) GetBatch(addrs []uint64) int {
	n := min(len(addrs), len(p.stack))
	top := len(p.stack)
	for j := range addrs[:n] {
		a := p.stack[top-1-j]
		addrs[j] = a
		i := a >> p.shift
		p.inPool[i/64] &^= 1 << (i % 64)
	}
	p.stack = p.stack[:top-n]
	return n
}

// Put returns the frame at addr to the pool. addr may point anywhere inside
// the chunk (an RX descriptor's Addr, a completion): the pool keeps the
// chunk's base.
func (p *FramePool) Put(addr uint64) {
	a := addr & p.base
	if a >= p.limit {
		p.badPut(addr, "outside the umem")
	}
	i := a >> p.shift
	w, bit := i/64, uint64(1)<<(i%64)
	if p.inPool[w]&bit != 0 {
		p.badPut(addr, "already free")
	}
	p.inPool[w] |= bit
	p.stack = append(p.stack, a) // never grows: at most Total chunks are free
}

// PutBatch returns every frame of addrs to the pool, like Put.
func (p *FramePool) PutBatch(addrs []uint64) {
	for _, a := range addrs {
		p.Put(a)
	}
}

// Contains reports whether the chunk holding addr is in the pool.
func (p *FramePool) Contains(addr uint64) bool {
	a := addr & p.base
	if a >= p.limit {
		return false
	}
	i := a >> p.shift
	return p.inPool[i/64]&(1<<(i%64)) != 0
}

// putIfAbsent returns a frame unless it is already free or out of range;
// it reports whether it did. Used where the kernel may have returned a frame
// twice (see Socket.Close).
func (p *FramePool) putIfAbsent(addr uint64) bool {
	if addr&p.base >= p.limit || p.Contains(addr) {
		return false
	}
	p.Put(addr)
	return true
}

//go:noinline
func (p *FramePool) badPut(addr uint64, why string) {
	panic(fmt.Sprintf("afxdp: frame pool: put of %#x: %s", addr, why))
}
