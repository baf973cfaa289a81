// Package afxdp speaks AF_XDP: UMEMs, the four rings, and sockets bound to
// a device queue. It is the only package of xvs that makes raw XSK
// syscalls, and it knows nothing of flows.
//
// # Model
//
// A Umem is one anonymous mapping cut into NumFrames chunks of FrameSize
// bytes (2048 up to the page size). A frame is named by its address: its
// offset in the area. Chunk(addr) is the whole chunk, Frame(desc) the bytes
// a descriptor covers. Received data starts at DataOffset() in its chunk
// (Headroom plus the kernel's 256-byte PacketHeadroom), so there is room in
// front of every received frame to push headers (a VLAN tag): move Addr back
// and grow Len, keeping the frame inside its chunk.
//
// Frames circulate between the caller and the kernel through four
// single-producer single-consumer rings per socket:
//
//	FramePool --Refill--> fill ring --kernel receives--> RX ring --Receive--> caller
//	caller --Transmit--> TX ring --Kick, kernel sends--> completion ring --Reap--> FramePool
//
// Every frame is in exactly one place: the pool, a fill ring, an RX ring,
// with the caller, a TX ring, a completion ring (or, briefly, inside the
// kernel). The pool counts what it holds (Free, Total), so a test can check
// that every frame came back.
//
// Several sockets share one Umem (XDP_SHARED_UMEM), on different devices
// and queues, each with its own fill and completion ring. A descriptor
// received on one of them can be handed as is to the TX ring of another:
// same address, no copy. That is the datapath's forwarding step. The
// sockets of one Umem all have the mode (copy or zero-copy) and need_wakeup
// setting of the first one bound.
//
// # Ownership and concurrency
//
// Rings and the pool have no locks: the goroutine that owns a Umem (a
// datapath poller) is the only one to use its pool, its sockets' rings, and
// the frames. Ring indices are cached; the shared producer and consumer
// words are read and written with sync/atomic only at batch boundaries.
// The batch calls (Receive, Transmit, Reap, Refill, Kick, PollSet.Wait)
// work on caller-owned slices and do not allocate.
//
// A poller loop:
//
//	rx := make([]afxdp.Desc, 64)
//	for {
//		for _, s := range sockets {
//			n := s.Receive(rx)
//			for _, d := range rx[:n] {
//				// decide; rewrite umem.Frame(d) in place; append d to the
//				// output socket's batch, or pool.Put(d.Addr) to drop.
//			}
//		}
//		for each output socket o with batch b {
//			n := o.Transmit(b)
//			pool.PutBatch(addrs of b[n:]) // TX ring full: drop
//			o.Kick()
//		}
//		for _, s := range sockets {
//			s.Reap()
//			s.Refill()
//		}
//	}
//
// # Kernel behaviour worth knowing
//
//   - A bound socket receives nothing until an XDP program on its device
//     redirects into it through an XSKMAP (key: queue, value: Fd()).
//   - Copy mode sends inside sendto, at most 32 frames per call; Kick loops.
//     Completions of copy-mode frames arrive when the kernel frees the skb,
//     which may be after Kick returns.
//   - The kernel does not send invalid TX descriptors (Len 0, Addr outside
//     the UMEM, a frame crossing its chunk's end) and counts them in
//     TxInvalidDescs. Kernel 6.18 returns their addresses on the completion
//     ring anyway (Reap drops those outside the UMEM); older kernels kept
//     them, leaving the frame with the caller. The datapath only queues
//     descriptors it received or built, which are valid.
//   - When a frame arrives and the RX ring is full, the kernel keeps the fill
//     frame it took in a private free list (RxRingFull) and uses it for the
//     next frame. If the socket is closed then, that frame is lost to the
//     pool. Refill never lends more frames than the RX ring holds, so the
//     RX ring cannot overflow; only a caller using Fill().Produce directly
//     can get there.
package afxdp
