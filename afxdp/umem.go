package afxdp

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// Errors a caller can test with errors.Is. Errors from the kernel also wrap
// the unix.Errno, so errors.Is(err, unix.EBUSY) works as well.
var (
	ErrInvalidOptions = errors.New("invalid options")
	ErrBusy           = errors.New("queue already in use")
	ErrNotSupported   = errors.New("mode not supported by the driver")
	ErrInUse          = errors.New("umem still in use")
	ErrClosed         = errors.New("already closed")
)

// PacketHeadroom is the room the kernel keeps in front of every received
// frame for XDP programs (XDP_PACKET_HEADROOM), after the UMEM's own headroom.
const PacketHeadroom = unix.XDP_PACKET_HEADROOM

// MinFrameSize is the smallest chunk size; the largest is the page size.
const MinFrameSize = 2048

// UmemOptions shape a UMEM. A zero field takes the value of
// DefaultUmemOptions.
type UmemOptions struct {
	NumFrames int // chunks in the area
	FrameSize int // chunk size: a power of two from 2048 to the page size
	// Headroom is reserved by the kernel at the start of every chunk before
	// the PacketHeadroom: received data starts at Headroom+PacketHeadroom.
	// It must be below FrameSize-PacketHeadroom (the kernel may ask for
	// more room at the end; its refusal is reported as an EINVAL).
	Headroom int
}

// DefaultUmemOptions returns 4096 frames of 4096 bytes (16 MiB), no extra
// headroom.
func DefaultUmemOptions() UmemOptions {
	return UmemOptions{NumFrames: 4096, FrameSize: 4096}
}

func (o UmemOptions) withDefaults() UmemOptions {
	d := DefaultUmemOptions()
	if o.NumFrames == 0 {
		o.NumFrames = d.NumFrames
	}
	if o.FrameSize == 0 {
		o.FrameSize = d.FrameSize
	}
	return o
}

func (o UmemOptions) validate() error {
	page := os.Getpagesize()
	switch {
	case o.NumFrames < 1 || o.NumFrames > 1<<24:
		return fmt.Errorf("umem: %d frames (want 1..%d): %w", o.NumFrames, 1<<24, ErrInvalidOptions)
	case o.FrameSize < MinFrameSize || o.FrameSize > page || o.FrameSize&(o.FrameSize-1) != 0:
		return fmt.Errorf("umem: frame size %d (want a power of two from %d to the page size %d): %w",
			o.FrameSize, MinFrameSize, page, ErrInvalidOptions)
	case o.Headroom < 0 || o.Headroom >= o.FrameSize-PacketHeadroom:
		return fmt.Errorf("umem: headroom %d (want 0..%d for %d-byte frames): %w",
			o.Headroom, o.FrameSize-PacketHeadroom-1, o.FrameSize, ErrInvalidOptions)
	}
	return nil
}

// Umem is the packet buffer area shared by the kernel and us: NumFrames
// chunks of FrameSize bytes in one anonymous mapping, and the FramePool of
// its free chunks. The first Socket opened on it registers it with the
// kernel; more sockets, on any device and queue, share it.
//
// The pool, the frames and the sockets' rings belong to the one goroutine
// that owns the UMEM (its poller). The UMEM's socket list is locked, so
// NewSocket may run on another goroutine (a control plane adding a port)
// while the poller works; Socket.Close returns frames to the pool, so it
// runs on the owner.
type Umem struct {
	area      []byte
	frameSize uint64
	offMask   uint64 // frameSize - 1
	headroom  int
	pool      FramePool

	mu     sync.Mutex
	socks  []*Socket // open sockets; any of them can be the shared_umem_fd
	mode   Mode      // copy or zero-copy, fixed by the first bind while sockets are open
	closed bool
}

// NewUmem maps and initialises a UMEM. Every chunk starts in the pool.
func NewUmem(o UmemOptions) (*Umem, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	size := o.NumFrames * o.FrameSize
	area, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap umem (%d bytes): %w", size, err)
	}
	return &Umem{
		area:      area,
		frameSize: uint64(o.FrameSize),
		offMask:   uint64(o.FrameSize) - 1,
		headroom:  o.Headroom,
		pool:      newFramePool(o.NumFrames, uint64(o.FrameSize)),
	}, nil
}

// Pool returns the UMEM's free frame list.
func (u *Umem) Pool() *FramePool { return &u.pool }

// NumFrames returns the number of chunks.
func (u *Umem) NumFrames() int { return u.pool.Total() }

// FrameSize returns the chunk size.
func (u *Umem) FrameSize() int { return int(u.frameSize) }

// Headroom returns the UMEM headroom of the options.
func (u *Umem) Headroom() int { return u.headroom }

// DataOffset returns where the kernel puts received data in a chunk:
// Headroom + PacketHeadroom. Frames built by the caller may start anywhere
// in the chunk, but starting there leaves the same room for pushing headers.
func (u *Umem) DataOffset() int { return u.headroom + PacketHeadroom }

// Size returns the size of the area in bytes.
func (u *Umem) Size() int { return len(u.area) }

// ChunkBase returns the base address of the chunk holding addr.
func (u *Umem) ChunkBase(addr uint64) uint64 { return addr &^ u.offMask }

// ChunkOffset returns addr's offset inside its chunk: for a frame's Addr,
// the room in front of the frame that headers can be pushed into.
func (u *Umem) ChunkOffset(addr uint64) int { return int(addr & u.offMask) }

// Chunk returns the whole chunk holding addr, headroom included. The slice
// aliases the UMEM: it is valid until the Umem is closed, and its bytes are
// the caller's only while the caller owns the frame.
func (u *Umem) Chunk(addr uint64) []byte {
	b := addr &^ u.offMask
	return u.area[b : b+u.frameSize : b+u.frameSize]
}

// Frame returns the bytes of the frame d describes. The capacity reaches to
// the end of the chunk, so the frame may grow in place up to
// FrameSize-ChunkOffset(d.Addr). Same validity as Chunk.
func (u *Umem) Frame(d Desc) []byte {
	end := (d.Addr &^ u.offMask) + u.frameSize
	return u.area[d.Addr : d.Addr+uint64(d.Len) : end]
}

// Mode returns the mode of the sockets sharing the UMEM (ModeCopy or
// ModeZeroCopy), fixed by the first socket bound; ModeAuto while no socket
// is open.
func (u *Umem) Mode() Mode {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.mode
}

// Close unmaps the area. Every socket on the UMEM must be closed first
// (ErrInUse otherwise): the kernel may still write into frames a socket's
// rings hold.
func (u *Umem) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return fmt.Errorf("close umem: %w", ErrClosed)
	}
	if n := len(u.socks); n > 0 {
		return fmt.Errorf("close umem: %d sockets open: %w", n, ErrInUse)
	}
	u.closed = true
	if err := unix.Munmap(u.area); err != nil {
		return fmt.Errorf("munmap umem: %w", err)
	}
	u.area = nil
	return nil
}

// addSocketLocked records an open socket.
func (u *Umem) addSocketLocked(s *Socket) { u.socks = append(u.socks, s) }

// removeSocket forgets a socket; with none left the kernel drops its
// registration, and the next socket registers the area again.
func (u *Umem) removeSocket(s *Socket) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if i := slices.Index(u.socks, s); i >= 0 {
		u.socks = slices.Delete(u.socks, i, i+1)
	}
	if len(u.socks) == 0 {
		u.mode = ModeAuto
	}
}
