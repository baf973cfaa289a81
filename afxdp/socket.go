package afxdp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mode is how a socket moves frames between the driver and the UMEM.
type Mode uint8

const (
	// ModeAuto binds in zero-copy mode where the driver supports it and in
	// copy mode otherwise (the kernel falls back by itself); Socket.Mode
	// reports which took.
	ModeAuto Mode = iota
	// ModeCopy: the kernel copies frames into the UMEM on RX and out of it
	// on TX (XDP_COPY). Works on every device with XDP, veth included.
	ModeCopy
	// ModeZeroCopy: the driver DMAs straight into the UMEM (XDP_ZEROCOPY).
	// Binding fails with ErrNotSupported where the driver cannot.
	ModeZeroCopy
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeCopy:
		return "copy"
	case ModeZeroCopy:
		return "zerocopy"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Ring sizes.
const (
	DefaultRingSize = 1024
	MaxRingSize     = 1 << 18
)

// SocketOptions say where to bind a socket and how big its rings are.
// Ifindex is required; a zero size takes DefaultRingSize. Sizes must be
// powers of two.
type SocketOptions struct {
	Ifindex int // device
	Queue   int // queue of the device
	// Mode of the socket. Every socket of a UMEM has the mode the first one
	// got (the kernel shares it), so later sockets take ModeAuto or that
	// mode.
	Mode Mode
	// RxSize is the RX ring size, and the most frames Refill lends the
	// kernel for receiving: the sockets of a UMEM together lend up to the
	// sum of their RxSize, so keep it well below NumFrames.
	RxSize         int
	TxSize         int // TX ring
	FillSize       int // fill ring (this socket's own)
	CompletionSize int // completion ring (this socket's own)
}

func (o SocketOptions) withDefaults() SocketOptions {
	for _, p := range []*int{&o.RxSize, &o.TxSize, &o.FillSize, &o.CompletionSize} {
		if *p == 0 {
			*p = DefaultRingSize
		}
	}
	return o
}

func (o SocketOptions) validate() error {
	if o.Ifindex < 1 {
		return fmt.Errorf("xsk: ifindex %d: %w", o.Ifindex, ErrInvalidOptions)
	}
	if o.Queue < 0 || o.Queue > 1<<16-1 {
		return fmt.Errorf("xsk: queue %d: %w", o.Queue, ErrInvalidOptions)
	}
	if o.Mode > ModeZeroCopy {
		return fmt.Errorf("xsk: %v: %w", o.Mode, ErrInvalidOptions)
	}
	for _, r := range []struct {
		name string
		n    int
	}{{"rx", o.RxSize}, {"tx", o.TxSize}, {"fill", o.FillSize}, {"completion", o.CompletionSize}} {
		if r.n < 1 || r.n > MaxRingSize || r.n&(r.n-1) != 0 {
			return fmt.Errorf("xsk: %s ring size %d (want a power of two up to %d): %w", r.name, r.n, MaxRingSize, ErrInvalidOptions)
		}
	}
	return nil
}

// Stats are the kernel's counters of a socket (struct xdp_statistics).
type Stats struct {
	RxDropped            uint64 // received frames dropped: no fill address, or too big for a chunk
	RxInvalidDescs       uint64 // invalid RX descriptors (not produced by single-buffer sockets)
	TxInvalidDescs       uint64 // TX descriptors not sent because invalid (see TxRing.Produce)
	RxRingFull           uint64 // frames dropped because the RX ring was full
	RxFillRingEmptyDescs uint64 // times the kernel found the fill ring empty
	TxRingEmptyDescs     uint64 // times the kernel found the TX ring empty when asked to send
}

// Socket is an AF_XDP socket bound to one queue of one device, with its own
// four rings, on a Umem it may share with other sockets.
//
// The rings, Receive, Transmit, Reap, Refill, Kick and Poll are for the
// goroutine that owns the UMEM, and so is Close (it returns the frames of
// the rings to the pool). Fd, Ifindex, Queue, Mode and Stats may be called
// from any goroutine while the socket is open. Nothing may be called once
// Close started.
type Socket struct {
	fd   int
	umem *Umem

	fill FillRing
	comp CompletionRing
	rx   RxRing
	tx   TxRing

	pollfd [1]unix.PollFd

	maps    [4][]byte // fill, completion, rx, tx mappings
	ifindex int
	queue   int
	mode    Mode
	closed  bool
}

// NewSocket opens a socket on u and binds it to (o.Ifindex, o.Queue).
//
// The first socket of a UMEM registers it (XDP_UMEM_REG) and binds with
// XDP_USE_NEED_WAKEUP in the mode asked for. Later sockets share it
// (XDP_SHARED_UMEM with an open socket of u as sxdp_shared_umem_fd) with
// fill and completion rings of their own; they inherit the first socket's
// mode and need_wakeup. Two sockets of one UMEM cannot use the same
// (device, queue).
//
// Errors wrap ErrInvalidOptions for bad options, ErrBusy (and unix.EBUSY)
// when the queue already has a socket (after BindBusyWait of retries), ErrNotSupported (and
// unix.EOPNOTSUPP) when the driver cannot do zero-copy, and the
// unix.Errno of any other failing call.
//
// A socket receives nothing until an XDP program on the device redirects
// into it through an XSKMAP (bpf_redirect_map with the key Fd is stored
// under).
func NewSocket(u *Umem, o SocketOptions) (*Socket, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	where := fmt.Sprintf("xsk (ifindex %d queue %d)", o.Ifindex, o.Queue)

	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, fmt.Errorf("%s: umem: %w", where, ErrClosed)
	}
	for _, other := range u.socks {
		if other.ifindex == o.Ifindex && other.queue == o.Queue {
			return nil, fmt.Errorf("bind %s: a socket of this umem has it: %w: %w", where, ErrBusy, unix.EBUSY)
		}
	}
	shared := len(u.socks) > 0
	if shared && o.Mode != ModeAuto && o.Mode != u.mode {
		return nil, fmt.Errorf("%s: %v mode asked for, but the umem's sockets are bound in %v mode: %w",
			where, o.Mode, u.mode, ErrInvalidOptions)
	}

	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: socket: %w", where, err)
	}
	s := &Socket{fd: fd, umem: u, ifindex: o.Ifindex, queue: o.Queue}
	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()

	if !shared {
		reg := unix.XDPUmemReg{
			Addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(u.area)))),
			Len:      uint64(len(u.area)),
			Size:     uint32(u.frameSize),
			Headroom: uint32(u.headroom),
		}
		if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return nil, fmt.Errorf("%s: register umem: %w", where, err)
		}
	}
	for _, r := range []struct {
		opt  int
		name string
		n    int
	}{
		{unix.XDP_UMEM_FILL_RING, "fill", o.FillSize},
		{unix.XDP_UMEM_COMPLETION_RING, "completion", o.CompletionSize},
		{unix.XDP_RX_RING, "rx", o.RxSize},
		{unix.XDP_TX_RING, "tx", o.TxSize},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, r.opt, r.n); err != nil {
			return nil, fmt.Errorf("%s: %s ring size %d: %w", where, r.name, r.n, err)
		}
	}
	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return nil, fmt.Errorf("%s: mmap offsets: %w", where, err)
	}
	descSize, addrSize := uint64(unsafe.Sizeof(Desc{})), uint64(8)
	for i, m := range []struct {
		name  string
		pgoff int64
		off   unix.XDPRingOffset
		len   uint64
	}{
		{"fill", unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, off.Fr.Desc + uint64(o.FillSize)*addrSize},
		{"completion", unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, off.Cr.Desc + uint64(o.CompletionSize)*addrSize},
		{"rx", unix.XDP_PGOFF_RX_RING, off.Rx, off.Rx.Desc + uint64(o.RxSize)*descSize},
		{"tx", unix.XDP_PGOFF_TX_RING, off.Tx, off.Tx.Desc + uint64(o.TxSize)*descSize},
	} {
		mem, err := unix.Mmap(fd, m.pgoff, int(m.len), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return nil, fmt.Errorf("%s: mmap %s ring: %w", where, m.name, err)
		}
		s.maps[i] = mem
	}
	s.fill = newFillRing(s.maps[0], off.Fr, uint32(o.FillSize))
	s.comp = newCompletionRing(s.maps[1], off.Cr, uint32(o.CompletionSize))
	s.rx = newRxRing(s.maps[2], off.Rx, uint32(o.RxSize))
	s.tx = newTxRing(s.maps[3], off.Tx, uint32(o.TxSize))

	sa := &unix.SockaddrXDP{Ifindex: uint32(o.Ifindex), QueueID: uint32(o.Queue)}
	if shared {
		sa.Flags = unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(u.socks[0].fd)
	} else {
		sa.Flags = unix.XDP_USE_NEED_WAKEUP
		switch o.Mode {
		case ModeCopy:
			sa.Flags |= unix.XDP_COPY
		case ModeZeroCopy:
			sa.Flags |= unix.XDP_ZEROCOPY
		}
	}
	if err := bind(fd, sa); err != nil {
		switch {
		case errors.Is(err, unix.EBUSY):
			return nil, fmt.Errorf("bind %s: %w: %w", where, ErrBusy, err)
		case errors.Is(err, unix.EOPNOTSUPP):
			m := o.Mode
			if shared {
				m = u.mode
			}
			return nil, fmt.Errorf("bind %s in %v mode: %w: %w", where, m, ErrNotSupported, err)
		}
		return nil, fmt.Errorf("bind %s: %w", where, err)
	}

	var xo struct{ flags uint32 } // struct xdp_options
	if err := getsockopt(fd, unix.XDP_OPTIONS, unsafe.Pointer(&xo), unsafe.Sizeof(xo)); err != nil {
		return nil, fmt.Errorf("%s: options: %w", where, err)
	}
	s.mode = ModeCopy
	if xo.flags&unix.XDP_OPTIONS_ZEROCOPY != 0 {
		s.mode = ModeZeroCopy
	}
	s.pollfd[0].Fd = int32(fd)
	if !shared {
		u.mode = s.mode
	}
	u.addSocketLocked(s)
	ok = true
	return s, nil
}

// BindBusyWait is how long NewSocket retries a bind that fails with EBUSY.
// The kernel frees the queue of a closed socket from a work item that needs
// the rtnl lock, a little after close returns, so binding right after
// closing (a port removed and added again) can meet a queue that is only
// busy for a while: under load that was seen to take more than 250 ms.
// A queue another program really holds is reported after this long.
const BindBusyWait = time.Second

func bind(fd int, sa *unix.SockaddrXDP) error {
	deadline := time.Now().Add(BindBusyWait)
	delay := 500 * time.Microsecond
	for {
		err := unix.Bind(fd, sa)
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// release unmaps whatever rings are mapped and closes the fd.
func (s *Socket) release() error {
	err := unix.Close(s.fd)
	for i, m := range s.maps {
		if m != nil {
			if merr := unix.Munmap(m); merr != nil && err == nil {
				err = merr
			}
			s.maps[i] = nil
		}
	}
	return err
}

// Fd returns the socket's file descriptor, the value to store in an XSKMAP.
func (s *Socket) Fd() int { return s.fd }

// Ifindex returns the device the socket is bound to.
func (s *Socket) Ifindex() int { return s.ifindex }

// Queue returns the queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// Mode returns the mode the socket is bound in: ModeCopy or ModeZeroCopy.
func (s *Socket) Mode() Mode { return s.mode }

// Umem returns the UMEM the socket uses.
func (s *Socket) Umem() *Umem { return s.umem }

// Fill returns the socket's fill ring.
func (s *Socket) Fill() *FillRing { return &s.fill }

// Completion returns the socket's completion ring.
func (s *Socket) Completion() *CompletionRing { return &s.comp }

// Rx returns the socket's RX ring.
func (s *Socket) Rx() *RxRing { return &s.rx }

// Tx returns the socket's TX ring.
func (s *Socket) Tx() *TxRing { return &s.tx }

// Receive is Rx().Consume: it moves up to len(descs) received descriptors
// into descs and returns how many. The frames are the caller's.
func (s *Socket) Receive(descs []Desc) int { return s.rx.Consume(descs) }

// Transmit is Tx().Produce: it queues descs for sending, up to the free
// room, and returns how many it queued. The caller still owns descs[n:].
// Kick sends them.
func (s *Socket) Transmit(descs []Desc) int { return s.tx.Produce(descs) }

// Reap moves every completed frame from the completion ring to the UMEM's
// pool and returns how many completions it consumed. A completion outside
// the UMEM (the kernel returns the address of an invalid TX descriptor as
// it was queued) is no frame and is dropped.
func (s *Socket) Reap() int {
	c := &s.comp
	n := c.r.consAvail(c.r.size)
	if n == 0 {
		return 0
	}
	p := &s.umem.pool
	idx := c.r.cachedCons
	for i := range n {
		if a := c.addrs[(idx+i)&c.r.mask]; a < p.limit {
			p.Put(a)
		}
	}
	c.r.cachedCons = idx + n
	atomic.StoreUint32(c.r.consumer, c.r.cachedCons)
	return int(n)
}

// Refill moves free frames from the UMEM's pool to the fill ring and
// returns how many. It lends the kernel at most RxSize frames at a time
// (frames in the fill ring plus descriptors in the RX ring): the RX ring can
// then never overflow, and when the caller falls behind the kernel drops at
// the empty fill ring (RxDropped, RxFillRingEmptyDescs) instead of parking a
// frame it took (RxRingFull, see the package documentation).
//
// If the fill ring asks for a wakeup (zero-copy drivers), Refill wakes the
// driver with recvfrom(MSG_DONTWAIT). That call's errors are not reported:
// a socket in trouble reports them on Kick and Poll.
func (s *Socket) Refill() int {
	f := &s.fill
	lent := f.r.cachedProd - s.rx.r.cachedCons
	var room uint32
	if lent < s.rx.r.size {
		room = s.rx.r.size - lent
	}
	p := &s.umem.pool
	want := min(room, uint32(len(p.stack)))
	n := min(f.r.prodFree(want), want)
	if n > 0 {
		top := len(p.stack)
		idx := f.r.cachedProd
		for j := range n {
			a := p.stack[top-1-int(j)]
			i := a >> p.shift
			p.inPool[i/64] &^= 1 << (i % 64)
			f.addrs[(idx+j)&f.r.mask] = a
		}
		p.stack = p.stack[:top-int(n)]
		f.r.cachedProd = idx + n
		atomic.StoreUint32(f.r.producer, f.r.cachedProd)
	}
	if f.r.needWakeup() {
		recvfromWakeup(s.fd)
	}
	return int(n)
}

// Kick makes the kernel send what the TX ring holds.
//
// In copy mode the kernel sends synchronously inside sendto, at most 32
// frames per call, so Kick calls sendto(MSG_DONTWAIT) again as long as the
// kernel keeps taking descriptors. It stops without error when the ring is
// drained or the kernel makes no progress: EAGAIN with nothing taken means
// the completion ring is full (call Reap) or the device queue is busy; the
// descriptors stay queued for the next Kick. EBUSY (the device dropped a
// frame; it still completes) and EAGAIN after progress are retried; ENOBUFS
// (no memory for an skb) stops until the next Kick. In zero-copy mode one
// wakeup suffices, and none when the driver did not ask for it.
//
// Errors: ENETDOWN (the device is down: the descriptors stay queued),
// ENXIO (the socket lost its device), and anything unexpected, wrapped.
func (s *Socket) Kick() error {
	t := &s.tx
	if !t.r.needWakeup() {
		return nil
	}
	stalled := false
	for {
		before := atomic.LoadUint32(t.r.consumer)
		t.r.cachedCons = before
		if before == t.r.cachedProd {
			return nil
		}
		switch errno := sendtoWakeup(s.fd); errno {
		case 0, unix.EAGAIN, unix.EBUSY:
		case unix.ENOBUFS:
			return nil
		default:
			return s.kickError(errno)
		}
		if s.mode == ModeZeroCopy {
			return nil
		}
		if atomic.LoadUint32(t.r.consumer) != before {
			stalled = false
			continue
		}
		// The kernel may have consumed without publishing yet (an invalid
		// descriptor, a dropped frame): one more call publishes it.
		if stalled {
			return nil
		}
		stalled = true
	}
}

//go:noinline
func (s *Socket) kickError(errno unix.Errno) error {
	if errno == unix.ENETDOWN {
		return fmt.Errorf("kick xsk (ifindex %d queue %d): device down: %w", s.ifindex, s.queue, errno)
	}
	return fmt.Errorf("kick xsk (ifindex %d queue %d): %w", s.ifindex, s.queue, errno)
}

// Poll waits up to timeout (negative: forever) until the RX ring has
// descriptors or, with tx, the TX ring is at most half full. In copy mode
// poll also sends what the TX ring holds. A timeout returns false, false
// and no error.
func (s *Socket) Poll(timeout time.Duration, tx bool) (readable, writable bool, err error) {
	s.pollfd[0].Events = unix.POLLIN
	if tx {
		s.pollfd[0].Events |= unix.POLLOUT
	}
	s.pollfd[0].Revents = 0
	if _, err := poll(s.pollfd[:], timeout); err != nil {
		return false, false, fmt.Errorf("poll xsk: %w", err)
	}
	re := s.pollfd[0].Revents
	return re&unix.POLLIN != 0, re&unix.POLLOUT != 0, nil
}

// Stats reads the socket's kernel counters.
func (s *Socket) Stats() (Stats, error) {
	var st unix.XDPStatistics
	if err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st)); err != nil {
		return Stats{}, fmt.Errorf("xsk statistics: %w", err)
	}
	return Stats{
		RxDropped:            st.Rx_dropped,
		RxInvalidDescs:       st.Rx_invalid_descs,
		TxInvalidDescs:       st.Tx_invalid_descs,
		RxRingFull:           st.Rx_ring_full,
		RxFillRingEmptyDescs: st.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     st.Tx_ring_empty_descs,
	}, nil
}

// Close closes the socket, in this order:
//
//  1. It leaves the UMEM's socket list, so no new socket shares the UMEM
//     through this one.
//  2. It closes the fd: the kernel unbinds the socket (waiting until the
//     driver no longer uses it) and deletes it from its XSKMAPs.
//  3. It returns the frames its four rings still hold to the UMEM's pool:
//     completions, unread RX descriptors, fill addresses the kernel never
//     took, and TX descriptors it never took.
//  4. It unmaps the rings.
//
// The UMEM area stays mapped until Umem.Close, after its last socket.
// Frames the kernel holds elsewhere at that moment are not recovered: a
// copy-mode TX frame in an skb not yet freed (reap completions until the TX
// ring is empty to avoid it), or a frame parked after RxRingFull.
func (s *Socket) Close() error {
	if s.closed {
		return fmt.Errorf("close xsk: %w", ErrClosed)
	}
	s.closed = true
	s.umem.removeSocket(s)
	err := unix.Close(s.fd)
	s.fd = -1
	s.recoverFrames()
	for i, m := range s.maps {
		if merr := unix.Munmap(m); merr != nil && err == nil {
			err = merr
		}
		s.maps[i] = nil
	}
	if err != nil {
		return fmt.Errorf("close xsk: %w", err)
	}
	return nil
}

// recoverFrames returns to the pool the frames the closed socket's rings
// hold. The kernel publishes its TX consumer lazily: a descriptor it took
// and completed (a frame the device dropped) can still look untaken, so
// frames already back in the pool are skipped rather than put twice.
func (s *Socket) recoverFrames() {
	p := &s.umem.pool
	c := &s.comp
	for i := range span(c.r.cachedCons, atomic.LoadUint32(c.r.producer), c.r.size) {
		p.putIfAbsent(c.addrs[(c.r.cachedCons+i)&c.r.mask])
	}
	rx := &s.rx
	for i := range span(rx.r.cachedCons, atomic.LoadUint32(rx.r.producer), rx.r.size) {
		p.putIfAbsent(rx.descs[(rx.r.cachedCons+i)&rx.r.mask].Addr)
	}
	f := &s.fill
	fc := atomic.LoadUint32(f.r.consumer)
	for i := range span(fc, f.r.cachedProd, f.r.size) {
		p.putIfAbsent(f.addrs[(fc+i)&f.r.mask])
	}
	t := &s.tx
	tc := atomic.LoadUint32(t.r.consumer)
	for i := range span(tc, t.r.cachedProd, t.r.size) {
		p.putIfAbsent(t.descs[(tc+i)&t.r.mask].Addr)
	}
}

// span returns the number of entries from cons to prod, bounded by the ring
// size in case the shared indices are garbage.
func span(cons, prod, size uint32) uint32 {
	return min(prod-cons, size)
}

// BusyPoll is the kernel's busy polling of the device queue a socket is
// bound to (socket(7): SO_BUSY_POLL, SO_PREFER_BUSY_POLL,
// SO_BUSY_POLL_BUDGET). With it on, PollQueue runs the queue's NAPI poll
// in the caller's context, on the caller's CPU, instead of waiting for the
// driver's interrupt and softirq: frames arrive without an interrupt, at
// the price of a syscall per call. Where the driver defers interrupts
// (/sys/class/net/DEV/napi_defer_hard_irqs and gro_flush_timeout), Prefer
// keeps them masked while the caller keeps polling.
type BusyPoll struct {
	// Timeout is how long one busy poll may last, in whole microseconds;
	// 0 turns busy polling off. A nonblocking PollQueue polls once.
	Timeout time.Duration
	// Prefer asks the kernel to leave the queue's processing to the busy
	// poller while it polls (SO_PREFER_BUSY_POLL).
	Prefer bool
	// Budget is the most frames one busy poll takes, 1 to 65535; 0 keeps
	// the kernel's default (8).
	Budget int
}

// MaxBusyPollTimeout bounds BusyPoll.Timeout.
const MaxBusyPollTimeout = time.Second

// SetBusyPoll sets the socket's busy polling. Raising the timeout or the
// budget above the system's defaults needs CAP_NET_ADMIN (the error then
// wraps unix.EPERM). Errors wrap ErrInvalidOptions for values out of
// range and the unix.Errno of a failing setsockopt.
func (s *Socket) SetBusyPoll(b BusyPoll) error {
	where := fmt.Sprintf("xsk (ifindex %d queue %d) busy poll", s.ifindex, s.queue)
	if b.Timeout < 0 || b.Timeout > MaxBusyPollTimeout {
		return fmt.Errorf("%s: timeout %v (want 0 to %v): %w", where, b.Timeout, MaxBusyPollTimeout, ErrInvalidOptions)
	}
	if b.Budget < 0 || b.Budget > 65535 {
		return fmt.Errorf("%s: budget %d (want 0 to 65535): %w", where, b.Budget, ErrInvalidOptions)
	}
	prefer := 0
	if b.Prefer {
		prefer = 1
	}
	type sockopt struct {
		name     string
		opt, val int
	}
	opts := []sockopt{
		{"timeout", unix.SO_BUSY_POLL, int(b.Timeout / time.Microsecond)},
		{"prefer", unix.SO_PREFER_BUSY_POLL, prefer},
	}
	if b.Budget > 0 {
		opts = append(opts, sockopt{"budget", unix.SO_BUSY_POLL_BUDGET, b.Budget})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, o.opt, o.val); err != nil {
			return fmt.Errorf("%s: %s %d: %w", where, o.name, o.val, err)
		}
	}
	return nil
}

// BusyPoll returns the socket's busy polling as the kernel has it, but for
// the budget, which the kernel does not report (it is 0 here).
func (s *Socket) BusyPoll() (BusyPoll, error) {
	var b BusyPoll
	us, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL)
	if err != nil {
		return b, fmt.Errorf("xsk busy poll timeout: %w", err)
	}
	prefer, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL)
	if err != nil {
		return b, fmt.Errorf("xsk busy poll prefer: %w", err)
	}
	return BusyPoll{Timeout: time.Duration(us) * time.Microsecond, Prefer: prefer != 0}, nil
}

// PollQueue calls recvfrom(MSG_DONTWAIT) on the socket. With busy polling
// on (SetBusyPoll) that runs the device queue's NAPI poll once, here, up
// to the budget; received frames then show in the RX ring. Without it, it
// is the fill-ring wakeup (what Refill does when the ring asks for one).
// Errors are not reported: a socket in trouble reports them on Kick and
// Poll.
func (s *Socket) PollQueue() { recvfromWakeup(s.fd) }
