package datapath

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// cacheSize is the number of entries of each poller's exact-match cache.
const cacheSize = 8192

// poller serves RX queue `queue` of every port. Everything but the atomics
// and cmds belongs to its goroutine.
type poller struct {
	sw    *Switch
	queue int
	cpu   int // -1: not pinned

	umem  *afxdp.Umem                 // shared by the queue's sockets of every port
	extra []*afxdp.Umem               // more, when umem is full (umem.go)
	socks []*portSocket               // the sockets this poller serves
	out   [steer.MaxPorts]*portSocket // ofport -> this queue's socket of the port
	poll  afxdp.PollSet

	// Hand-offs (handoff.go). links routes an output port this poller has
	// no socket for to the poller serving the port's queue q % queues;
	// inbound are the hand-offs other pollers send this one; dirty those
	// this batch pushed to; hbuf takes inbound frames.
	links   [steer.MaxPorts]*handoff
	inbound []*handoff
	dirty   []*handoff
	hbuf    []handoffDesc
	// routes is what links was last set to: the switch's copy, under its
	// mutex.
	routes [steer.MaxPorts]*handoff

	cmds       chan func() error
	replies    chan error
	wakeFd     int // eventfd: a command is waiting
	handoffFd  int // eventfd: a sleeping poller was handed frames
	handoffIdx int // handoffFd's index in poll
	sleeping   atomic.Bool
	done       chan struct{}

	// When to sleep (idle.go): the rhythms of the sources, each socket's
	// and the hand-offs'.
	handoffRhythm rhythm
	rhythms       []*rhythm

	dead    atomic.Bool
	deadErr atomic.Value // error that stopped the loop

	batches, packets atomic.Uint64
	busyNs, idleNs   atomic.Uint64
	sleeps, sleepNs  atomic.Uint64
	wakeups          atomic.Uint64
	handoffWakeups   atomic.Uint64
	earlyWakeups     atomic.Uint64
	handoffs         atomic.Uint64
	handoffLost      atomic.Uint64
}

// pollerLocked returns poller q, starting it (and its UMEM) on first use.
func (s *Switch) pollerLocked(q int) (*poller, error) {
	for len(s.pollers) <= q {
		s.pollers = append(s.pollers, nil)
	}
	if pl := s.pollers[q]; pl != nil {
		return pl, nil
	}
	u, err := afxdp.NewUmem(afxdp.UmemOptions{
		NumFrames: s.cfg.FramesPerPoller,
		FrameSize: s.cfg.FrameSize,
		Headroom:  s.cfg.Headroom,
	})
	if err != nil {
		return nil, fmt.Errorf("poller %d: %w", q, err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("poller %d: eventfd: %w", q, err)
	}
	hfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(efd)
		u.Close()
		return nil, fmt.Errorf("poller %d: eventfd: %w", q, err)
	}
	pl := &poller{
		sw:        s,
		queue:     q,
		cpu:       -1,
		umem:      u,
		hbuf:      make([]handoffDesc, s.cfg.BatchSize),
		cmds:      make(chan func() error),
		replies:   make(chan error),
		wakeFd:    efd,
		handoffFd: hfd,
		done:      make(chan struct{}),
	}
	if len(s.cfg.CPUs) > 0 {
		pl.cpu = s.cfg.CPUs[q%len(s.cfg.CPUs)]
	}
	started := make(chan error)
	go pl.run(started)
	if err := <-started; err != nil {
		<-pl.done
		unix.Close(hfd)
		return nil, err
	}
	s.pollers[q] = pl
	return pl, nil
}

// do runs fn on the poller's goroutine, between two batches, and returns its
// error.
func (pl *poller) do(fn func() error) error {
	if pl.dead.Load() {
		return fmt.Errorf("poller %d is not running", pl.queue)
	}
	var one = [8]byte{1}
	if _, err := unix.Write(pl.wakeFd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("wake poller %d: %w", pl.queue, err)
	}
	select {
	case pl.cmds <- fn:
		return <-pl.replies
	case <-pl.done:
		return fmt.Errorf("poller %d stopped", pl.queue)
	}
}

// stop ends the poller: every socket must be gone. It closes the UMEM.
func (pl *poller) stop() {
	_ = pl.do(func() error { return errStop })
	<-pl.done
	// Closed here, not by the goroutine: do may still write to it while
	// the goroutine exits, and a closed fd number can be reused at once.
	// Every hand-off to this poller is gone with the sockets, so no other
	// poller writes handoffFd any more.
	unix.Close(pl.wakeFd)
	unix.Close(pl.handoffFd)
}

var errStop = errors.New("stop")

// addSocket opens the socket of port p on this poller's queue, preferring
// the shared UMEM, and starts serving it.
func (pl *poller) addSocket(p *Port, q int) (*portSocket, error) {
	var ps *portSocket
	err := pl.do(func() error {
		u, err := pl.pickUmem(1, 0)
		if err != nil {
			return err
		}
		opts := afxdp.SocketOptions{
			Ifindex:        p.ifindex,
			Queue:          q,
			RxSize:         pl.sw.cfg.RingSize,
			TxSize:         pl.sw.cfg.RingSize,
			FillSize:       pl.sw.cfg.RingSize,
			CompletionSize: pl.sw.cfg.RingSize,
		}
		shared, extra := true, u != pl.umem
		sock, err := afxdp.NewSocket(u, opts)
		if err != nil && !errors.Is(err, afxdp.ErrBusy) && !errors.Is(err, afxdp.ErrInvalidOptions) && pl.socksOn(u) > 0 {
			// Some drivers will not share a UMEM with another device's
			// queue (zero-copy). Give the port a UMEM of its own; frames
			// crossing UMEMs are then copied.
			pl.sw.log.Warn("shared umem refused, using a umem of the port's own", "port", p.name, "queue", q, "err", err)
			u, shared, extra = nil, false, false
			own, uerr := afxdp.NewUmem(afxdp.UmemOptions{
				NumFrames: pl.sw.cfg.FramesPerPoller,
				FrameSize: pl.sw.cfg.FrameSize,
				Headroom:  pl.sw.cfg.Headroom,
			})
			if uerr != nil {
				return errors.Join(err, uerr)
			}
			sock, err = afxdp.NewSocket(own, opts)
			if err != nil {
				own.Close()
				return err
			}
			u = own
		}
		if err != nil {
			return errors.Join(err, pl.releaseUmems())
		}
		if bp := pl.sw.cfg.BusyPoll; bp > 0 {
			if err := sock.SetBusyPoll(afxdp.BusyPoll{Timeout: bp, Prefer: true, Budget: pl.sw.cfg.BatchSize}); err != nil {
				sock.Close()
				if !shared {
					u.Close()
					return err
				}
				return errors.Join(err, pl.releaseUmems())
			}
		}
		ps = &portSocket{port: p, queue: q, sock: sock, umem: u, shared: shared, extra: extra}
		ps.txq = make([]afxdp.Desc, 0, 2*pl.sw.cfg.BatchSize)
		sock.Refill()
		pl.socks = append(pl.socks, ps)
		pl.out[p.ofport] = ps
		pl.rebuildPollSet()
		return nil
	})
	return ps, err
}

// removeSocket stops serving ps and closes it, getting back every frame it
// holds. The kernel must no longer redirect to it (XDP detached, XSKMAP
// entry gone).
func (pl *poller) removeSocket(ps *portSocket) error {
	return pl.do(func() error {
		// Frames handed over for ps's port before the other pollers
		// stopped routing it here go out first (the switch reroutes
		// before it removes a socket).
		pl.takeHandoffs()
		pl.flushAll()
		for i, x := range pl.socks {
			if x == ps {
				pl.socks = append(pl.socks[:i], pl.socks[i+1:]...)
				break
			}
		}
		if pl.out[ps.port.ofport] == ps {
			pl.out[ps.port.ofport] = nil
		}
		pl.rebuildPollSet()
		// Let queued transmissions finish, so their frames come back
		// through the completion ring rather than from an skb in flight.
		deadline := time.Now().Add(200 * time.Millisecond)
		for ps.sock.Tx().Outstanding() > 0 && time.Now().Before(deadline) {
			if err := ps.sock.Kick(); err != nil {
				break
			}
			ps.sock.Reap()
		}
		ps.sock.Reap()
		err := ps.sock.Close()
		if !ps.shared {
			err = errors.Join(err, ps.umem.Close())
		}
		return errors.Join(err, pl.releaseUmems())
	})
}

func (pl *poller) rebuildPollSet() {
	pl.poll.Reset()
	pl.rhythms = pl.rhythms[:0]
	for _, ps := range pl.socks {
		pl.poll.Add(ps.sock, false)
		pl.rhythms = append(pl.rhythms, &ps.rhythm)
	}
	pl.poll.AddFd(pl.wakeFd)
	pl.handoffIdx = pl.poll.AddFd(pl.handoffFd)
	pl.rhythms = append(pl.rhythms, &pl.handoffRhythm)
}

func (pl *poller) statsSnapshot() PollerStats {
	return PollerStats{
		Queue:   pl.queue,
		CPU:     pl.cpu,
		Mode:    pl.sw.cfg.PollMode,
		Window:  pl.sw.cfg.PollWindow,
		Batches: pl.batches.Load(),
		Packets: pl.packets.Load(),
		BusyNs:  pl.busyNs.Load(),
		IdleNs:  pl.idleNs.Load(),
		Sleeps:  pl.sleeps.Load(),
		SleepNs: pl.sleepNs.Load(),
		Wakeups: pl.wakeups.Load(),

		HandoffWakeups: pl.handoffWakeups.Load(),
		EarlyWakeups:   pl.earlyWakeups.Load(),

		Handoffs:    pl.handoffs.Load(),
		HandoffLost: pl.handoffLost.Load(),
	}
}

// run is the poller's goroutine. It locks itself to an OS thread (never
// unlocked: the thread dies with the goroutine, pinned CPU mask and all).
func (pl *poller) run(started chan<- error) {
	defer close(pl.done)
	runtime.LockOSThread()
	if pl.cpu >= 0 {
		var set unix.CPUSet
		set.Set(pl.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			pl.umem.Close()
			unix.Close(pl.wakeFd)
			pl.dead.Store(true)
			started <- fmt.Errorf("poller %d: pin to cpu %d: %w", pl.queue, pl.cpu, err)
			return
		}
	}
	// A sleep the idle policy times to end before expected frames must
	// end then, not up to the default 50 us later.
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		pl.sw.log.Warn("poller timer slack", "queue", pl.queue, "err", err)
	}
	pl.rebuildPollSet()
	started <- nil
	err := pl.loop()
	pl.dead.Store(true)
	if !errors.Is(err, errStop) {
		pl.deadErr.Store(err)
		pl.sw.log.Error("poller stopped", "queue", pl.queue, "err", err)
	}
	for _, ps := range pl.socks {
		_ = ps.sock.Close()
		if !ps.shared {
			_ = ps.umem.Close()
		}
	}
	for _, u := range append(pl.extra, pl.umem) {
		if err := u.Close(); err != nil {
			pl.sw.log.Error("close umem", "queue", pl.queue, "err", err)
		}
	}
	pl.extra = nil
}

// batchState is what one pass of the loop carries between packets.
type batchState struct {
	table *flowtable.Table
	now   int64
	// One burst of received frames: keys, header layouts, what the
	// pipeline does with them.
	keys    [flowtable.MaxBatch]flowtable.Key
	lays    [flowtable.MaxBatch]flowtable.Layout
	results [flowtable.MaxBatch]flowtable.Result
	// Counters are added once per run of packets with one Result.
	res        flowtable.Result
	resPackets uint64
	resBytes   uint64
}

func (b *batchState) flushFlow() {
	if b.res.Found() {
		b.res.Credit(b.resPackets, b.resBytes, b.now)
		b.res, b.resPackets, b.resBytes = flowtable.Result{}, 0, 0
	}
}

func (pl *poller) loop() error {
	cfg := &pl.sw.cfg
	rx := make([]afxdp.Desc, cfg.BatchSize)
	cache := flowtable.NewCache(cacheSize)
	var b batchState
	idle := newIdler(cfg.PollMode, cfg.PollWindow, cfg.PollTimeout)
	for {
		select {
		case fn := <-pl.cmds:
			var drain [8]byte
			unix.Read(pl.wakeFd, drain[:])
			err := fn()
			if errors.Is(err, errStop) {
				pl.replies <- nil
				return errStop
			}
			pl.replies <- err
			continue
		default:
		}

		b.table = pl.sw.table.Load()
		now := time.Now()
		b.now = now.UnixNano()
		moved, received := 0, 0
		for _, ps := range pl.socks {
			ps.sock.Reap()
		}
		if len(pl.inbound) > 0 {
			if n := pl.takeHandoffs(); n > 0 {
				moved += n
				pl.handoffRhythm.saw(b.now, idle.gap)
			}
		}
		for _, in := range pl.socks {
			in.sock.Refill()
			n := in.sock.Receive(rx)
			if n == 0 {
				continue
			}
			in.rhythm.saw(b.now, idle.gap)
			moved += n
			received += n
			var bytes uint64
			for i := range rx[:n] {
				bytes += uint64(rx[i].Len)
			}
			for burst := rx[:n]; len(burst) > 0; {
				m := min(len(burst), flowtable.MaxBatch)
				pl.forward(in, burst[:m], cache, &b)
				burst = burst[m:]
			}
			in.stats.rxPackets.Add(uint64(n))
			in.stats.rxBytes.Add(bytes)
		}
		if received > 0 {
			// Counted before any frame of the pass is sent or handed to
			// another poller: a frame that has left is in the count.
			pl.packets.Add(uint64(received))
		}
		b.flushFlow()
		if len(pl.dirty) > 0 {
			pl.publishHandoffs()
		}
		for _, ps := range pl.socks {
			if len(ps.txq) > 0 {
				pl.flushTx(ps)
			}
			if ps.sock.Tx().Outstanding() > 0 {
				// ENETDOWN: the device is down; ENXIO: it is gone (the port
				// awaits deletion). Either way the descriptors stay queued
				// (Close recovers them) and the other ports go on.
				if err := ps.sock.Kick(); err != nil && !errors.Is(err, unix.ENETDOWN) && !errors.Is(err, unix.ENXIO) {
					return err
				}
			}
		}

		// The pass is busy time if it moved packets, idle time otherwise;
		// a sleep in poll(2) below is idle time too.
		el := time.Since(now)
		end := b.now + int64(el)
		if moved > 0 {
			pl.batches.Add(1)
			pl.busyNs.Add(uint64(el))
			idle.moved(end)
			continue
		}
		pl.idleNs.Add(uint64(el))
		if cfg.BusyPoll > 0 {
			// Nothing came: run the queues' NAPI here before looking again.
			for _, ps := range pl.socks {
				ps.sock.PollQueue()
			}
		}
		// Frames still queued for TX keep a sleep short.
		limit := cfg.PollTimeout
		for _, ps := range pl.socks {
			if ps.sock.Tx().Outstanding() > 0 {
				limit = min(limit, time.Millisecond)
			}
		}
		sleep, timeout, early := idle.next(end, pl.rhythms, int64(limit))
		if !sleep {
			continue
		}
		// Sleep until a socket has frames, another poller hands some
		// over, a command comes or the timeout passes. Other pollers wake
		// this one through handoffFd only while it sleeps: say so, then
		// look at the hand-offs once more (see publishHandoffs).
		pl.sleeping.Store(true)
		if pl.handoffsWaiting() {
			pl.sleeping.Store(false)
			continue
		}
		slept := time.Now()
		ready, err := pl.poll.Wait(time.Duration(timeout))
		pl.sleeping.Store(false)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		woke := time.Now()
		idle.woke(woke.UnixNano(), ready == 0)
		if pl.poll.Readable(pl.handoffIdx) {
			var drain [8]byte
			unix.Read(pl.handoffFd, drain[:])
			pl.handoffWakeups.Add(1)
		}
		asleep := uint64(woke.Sub(slept))
		pl.idleNs.Add(asleep)
		pl.sleepNs.Add(asleep)
		pl.sleeps.Add(1)
		switch {
		case ready > 0:
			pl.wakeups.Add(1)
		case early:
			pl.earlyWakeups.Add(1)
		}
	}
}

// forward switches a burst of at most flowtable.MaxBatch received frames:
// it parses them all, looks them up together, then runs each one's flow.
func (pl *poller) forward(in *portSocket, rx []afxdp.Desc, cache *flowtable.Cache, b *batchState) {
	u := in.umem
	var parsed uint64
	for i, d := range rx {
		if flowtable.ExtractLayout(u.Frame(d), in.port.ofport, &b.keys[i], &b.lays[i]) == flowtable.ParseOK {
			parsed |= 1 << i
		}
	}
	cache.LookupBatch(b.table, b.keys[:len(rx)], parsed, b.results[:])
	for i, d := range rx {
		if parsed>>i&1 == 0 {
			// The XDP program passes malformed frames to the kernel; one
			// here raced a change. Nothing to match.
			in.drops.add(DropMalformed, 1)
			u.Pool().Put(d.Addr)
			continue
		}
		pl.switchFrame(in, d, b.results[i], &b.keys[i], &b.lays[i], b)
	}
}

// switchFrame does what the pipeline's result r (not Found: no flow) says
// to one received frame with key k and layout lay.
func (pl *poller) switchFrame(in *portSocket, d afxdp.Desc, r flowtable.Result, k *flowtable.Key, lay *flowtable.Layout, b *batchState) {
	u := in.umem
	if !r.Found() {
		in.drops.add(DropNoFlow, 1)
		u.Pool().Put(d.Addr)
		return
	}
	if r.PerPacket() {
		// The key alone does not say what this frame becomes (VLAN
		// pushes and pops on a frame with two tags before a later table).
		r = b.table.TranslateFrame(r.Entry(), k, u.Frame(d), lay)
	}
	if r != b.res {
		b.flushFlow()
		b.res = r
	}
	b.resPackets++
	b.resBytes += uint64(d.Len)

	base := u.ChunkBase(d.Addr)
	pkt := flowtable.Packet{Buf: u.Chunk(d.Addr), Off: u.ChunkOffset(d.Addr), Len: int(d.Len), InPort: in.port.ofport}
	prog := r.Program()
	if !pl.execute(in, prog, &pkt, lay, base, 0, prog.Len()) {
		u.Pool().Put(base)
	}
}

// execute runs ops [pc, end) of prog on pkt, whose frame is the chunk at
// base of in's UMEM, and reports whether an output took the frame. A clone
// runs on a copy in a fresh chunk, which execute frees unless an output
// took it.
func (pl *poller) execute(in *portSocket, prog *flowtable.Program, pkt *flowtable.Packet, lay *flowtable.Layout, base uint64, pc, end int) bool {
	u := in.umem
	taken := false
	for pc >= 0 && pc < end {
		var out flowtable.Output
		out, pc = prog.RunTo(pkt, lay, pc, end)
		switch out.Kind {
		case flowtable.OutPort:
			dst := pl.out[out.Port]
			if dst == nil {
				// No socket of the port on this queue: the poller serving
				// its queue sends it.
				if h := pl.links[out.Port]; h != nil {
					pl.handOff(in, h, out.Port, pkt)
				} else {
					in.drops.add(DropNoTxQueue, 1)
				}
				continue
			}
			if out.Last && dst.umem == u {
				pl.queueTx(dst, afxdp.Desc{Addr: base + uint64(pkt.Off), Len: uint32(pkt.Len)})
				taken = true
				continue
			}
			// An output before the last, or one into another UMEM: copy.
			addr, ok := dst.umem.Pool().Get()
			if !ok {
				dst.drops.add(DropNoFrame, 1)
				continue
			}
			off := uint64(dst.umem.DataOffset())
			copy(dst.umem.Chunk(addr)[off:], pkt.Frame())
			pl.queueTx(dst, afxdp.Desc{Addr: addr + off, Len: uint32(pkt.Len)})
		case flowtable.OutDrop:
			in.drops.add(ProgramDrop(out.Reason), 1)
		case flowtable.OutKernel:
			// A kernel flow's packets are passed by XDP; this one raced a
			// table change and can no longer reach the host.
			in.drops.add(DropKernelFlow, 1)
		case flowtable.OutClone:
			if addr, ok := u.Pool().Get(); ok {
				c := flowtable.Packet{Buf: u.Chunk(addr), Off: pkt.Off, Len: pkt.Len, InPort: pkt.InPort}
				copy(c.Buf[c.Off:c.Off+c.Len], pkt.Frame())
				cl := *lay
				if !pl.execute(in, prog, &c, &cl, addr, pc, pc+out.Span()) {
					u.Pool().Put(addr)
				}
			} else {
				in.drops.add(DropNoFrame, 1)
			}
			pc += out.Span()
		}
	}
	return taken
}

// flushAll moves every socket's pending batch to its TX ring; the loop's
// next pass kicks them.
func (pl *poller) flushAll() {
	for _, ps := range pl.socks {
		if len(ps.txq) > 0 {
			pl.flushTx(ps)
		}
	}
}

// queueTx adds d to dst's pending TX batch, flushing it when full.
func (pl *poller) queueTx(dst *portSocket, d afxdp.Desc) {
	if len(dst.txq) == cap(dst.txq) {
		pl.flushTx(dst)
	}
	dst.txq = append(dst.txq, d)
}

// flushTx moves dst's pending batch to its TX ring. What does not fit is
// dropped and counted: the frames go back to the free list.
func (pl *poller) flushTx(dst *portSocket) {
	n := dst.sock.Transmit(dst.txq)
	if n < len(dst.txq) {
		// Kick and reap once: copy mode frees ring room synchronously.
		_ = dst.sock.Kick()
		dst.sock.Reap()
		n += dst.sock.Transmit(dst.txq[n:])
		for _, d := range dst.txq[n:] {
			dst.umem.Pool().Put(d.Addr)
		}
		dst.drops.add(DropTxRingFull, uint64(len(dst.txq)-n))
	}
	var bytes uint64
	for _, d := range dst.txq[:n] {
		bytes += uint64(d.Len)
	}
	dst.stats.txPackets.Add(uint64(n))
	dst.stats.txBytes.Add(bytes)
	dst.txq = dst.txq[:0]
}
