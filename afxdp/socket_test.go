package afxdp

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/testenv"
)

// Privileged tests, modelled on the kernel's AF_XDP selftests
// (tools/testing/selftests/bpf/xskxceiver.c) on veth pairs: the switch end
// in the test's namespace, where the sockets are, the other end in a fresh
// namespace with a packet socket (the peer). Every test checks at the end
// that every frame is back in its UMEM's pool and that no fd or goroutine
// leaked.

const waitLong = 5 * time.Second

// newTestUmem makes a UMEM whose cleanup (which runs after the sockets'
// cleanups) checks that every frame came back, then unmaps it.
func newTestUmem(t *testing.T, o UmemOptions) *Umem {
	t.Helper()
	u, err := NewUmem(o)
	if err != nil {
		t.Fatalf("NewUmem: %v", err)
	}
	t.Cleanup(func() {
		if p := u.Pool(); p.Free() != p.Total() {
			t.Errorf("frame accounting: %d of %d frames in the pool", p.Free(), p.Total())
		}
		if err := u.Close(); err != nil {
			t.Errorf("close umem: %v", err)
		}
	})
	return u
}

func openSocket(t *testing.T, u *Umem, o SocketOptions) *Socket {
	t.Helper()
	s, err := NewSocket(u, o)
	if err != nil {
		t.Fatalf("NewSocket: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close socket: %v", err)
		}
	})
	return s
}

// port is one switch port under test: a veth pair, a socket on queue 0 of
// the switch end, and the peer on the other end.
type port struct {
	veth *testenv.Veth
	sock *Socket
	peer *peer
}

// newPort builds a port on u. With redirect, the test XDP program on the
// switch end steers test frames into the socket.
func newPort(t *testing.T, u *Umem, o SocketOptions, redirect bool) *port {
	t.Helper()
	ns := testenv.NewNS(t)
	v := testenv.NewVeth(t, ns, "xk", testenv.VethOptions{})
	o.Ifindex = v.LocalIndex()
	s := openSocket(t, u, o)
	if redirect {
		attachRedirect(t, v.LocalIndex()).add(t, 0, s)
	}
	return &port{veth: v, sock: s, peer: openPeer(t, v)}
}

// toPeer and fromPeer build frames addressed across the port.
func (p *port) toPeer(size int, id uint32) []byte {
	return testFrame(p.veth.PeerMAC, p.veth.LocalMAC, size, id)
}

func (p *port) fromPeer(size int, id uint32) []byte {
	return testFrame(p.veth.LocalMAC, p.veth.PeerMAC, size, id)
}

// receive takes n descriptors from s, refilling its fill ring on the way
// when refill is set.
func receive(t *testing.T, s *Socket, n int, refill bool) []Desc {
	t.Helper()
	var out []Desc
	buf := make([]Desc, 64)
	deadline := time.Now().Add(waitLong)
	for len(out) < n {
		if refill {
			s.Refill()
		}
		k := s.Receive(buf[:min(len(buf), n-len(out))])
		out = append(out, buf[:k]...)
		if k > 0 {
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket received %d of %d frames", len(out), n)
		}
		if _, _, err := s.Poll(10*time.Millisecond, false); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// stage copies frames into fresh chunks at offset off and returns their
// descriptors.
func stage(t *testing.T, u *Umem, off int, frames [][]byte) []Desc {
	t.Helper()
	descs := make([]Desc, len(frames))
	for i, f := range frames {
		a, ok := u.Pool().Get()
		if !ok {
			t.Fatalf("pool empty after %d frames", i)
		}
		copy(u.Chunk(a)[off:], f)
		descs[i] = Desc{Addr: a + uint64(off), Len: uint32(len(f))}
	}
	return descs
}

// sendAll queues descs on s, kicks, and reaps until n completions came
// back (n may count completions of descriptors queued earlier).
func sendAll(t *testing.T, s *Socket, descs []Desc, n int) {
	t.Helper()
	queued, done := 0, 0
	deadline := time.Now().Add(waitLong)
	for done < n || queued < len(descs) {
		queued += s.Transmit(descs[queued:])
		if err := s.Kick(); err != nil {
			t.Fatalf("kick: %v", err)
		}
		done += s.Reap()
		if done >= n && queued == len(descs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queued %d of %d, completed %d of %d", queued, len(descs), done, n)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// putAll returns received frames to the pool.
func putAll(u *Umem, descs []Desc) {
	for _, d := range descs {
		u.Pool().Put(d.Addr)
	}
}

// wantStats compares every counter but TxRingEmptyDescs, which depends on
// how often the kernel happened to look at an empty TX ring.
func wantStats(t *testing.T, s *Socket, want Stats) {
	t.Helper()
	got, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	got.TxRingEmptyDescs = want.TxRingEmptyDescs
	if got != want {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}
}

func TestSendReceive(t *testing.T) {
	testenv.RequireRoot(t)
	const n = 100
	for _, fs := range []int{2048, 4096} {
		for _, size := range []int{64, 1514} {
			t.Run(fmt.Sprintf("%dB frames, %dB chunks, rx", size, fs), func(t *testing.T) {
				checkLeaks(t)
				u := newTestUmem(t, UmemOptions{NumFrames: 256, FrameSize: fs})
				p := newPort(t, u, SocketOptions{}, true)
				if p.sock.Mode() != ModeCopy {
					t.Fatalf("mode %v on veth, want copy", p.sock.Mode())
				}
				p.sock.Refill()
				for i := range n {
					p.peer.send(t, p.fromPeer(size, uint32(i)))
				}
				got := receive(t, p.sock, n, true)
				for i, d := range got {
					f := u.Frame(d)
					if want := p.fromPeer(size, uint32(i)); !bytes.Equal(f, want) {
						t.Fatalf("frame %d: got % x..., want % x...", i, f[:min(len(f), 24)], want[:24])
					}
					if off := u.ChunkOffset(d.Addr); off != u.DataOffset() {
						t.Fatalf("frame %d at chunk offset %d, want %d", i, off, u.DataOffset())
					}
				}
				putAll(u, got)
				wantStats(t, p.sock, Stats{})
			})
			t.Run(fmt.Sprintf("%dB frames, %dB chunks, tx", size, fs), func(t *testing.T) {
				checkLeaks(t)
				u := newTestUmem(t, UmemOptions{NumFrames: 256, FrameSize: fs})
				p := newPort(t, u, SocketOptions{}, false)
				frames := make([][]byte, n)
				for i := range frames {
					frames[i] = p.toPeer(size, uint32(i))
				}
				descs := stage(t, u, u.DataOffset(), frames)
				sendAll(t, p.sock, descs, n)
				got := p.peer.recv(t, n, waitLong)
				for i, f := range got {
					if !bytes.Equal(f, frames[i]) {
						t.Fatalf("peer frame %d (id %d): differs from frame %d sent", i, frameID(f), i)
					}
				}
				if p.sock.Tx().Outstanding() != 0 {
					t.Fatalf("tx outstanding %d", p.sock.Tx().Outstanding())
				}
				wantStats(t, p.sock, Stats{})
			})
		}
	}
}

func TestBidirectional(t *testing.T) {
	testenv.RequireRoot(t)
	checkLeaks(t)
	const n = 200
	u := newTestUmem(t, UmemOptions{NumFrames: 512, FrameSize: 2048})
	p := newPort(t, u, SocketOptions{RxSize: 256}, true)
	p.sock.Refill()

	out := make([][]byte, n)
	for i := range out {
		out[i] = p.toPeer(60+i, uint32(i))
	}
	descs := stage(t, u, u.DataOffset(), out)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			if _, err := unix.Write(p.peer.fd, p.fromPeer(1000-i, uint32(1000+i))); err != nil {
				t.Errorf("peer send: %v", err)
				return
			}
		}
	}()
	// Send while the peer sends; receive what arrives in between.
	var got []Desc
	buf := make([]Desc, 64)
	queued, done := 0, 0
	deadline := time.Now().Add(waitLong)
	for done < n || len(got) < n {
		queued += p.sock.Transmit(descs[queued:])
		if err := p.sock.Kick(); err != nil {
			t.Fatalf("kick: %v", err)
		}
		done += p.sock.Reap()
		p.sock.Refill()
		k := p.sock.Receive(buf)
		got = append(got, buf[:k]...)
		if time.Now().After(deadline) {
			t.Fatalf("sent %d of %d, received %d of %d", done, n, len(got), n)
		}
		if k == 0 {
			p.sock.Poll(time.Millisecond, true)
		}
	}
	<-sent
	for i, d := range got {
		if want := p.fromPeer(1000-i, uint32(1000+i)); !bytes.Equal(u.Frame(d), want) {
			t.Fatalf("received frame %d differs", i)
		}
	}
	putAll(u, got)
	for i, f := range p.peer.recv(t, n, waitLong) {
		if !bytes.Equal(f, out[i]) {
			t.Fatalf("peer frame %d differs", i)
		}
	}
	wantStats(t, p.sock, Stats{})
}

// TestHeadroom checks that received data lands at Headroom+PacketHeadroom
// and that frames sent from any offset in the chunk go out intact.
func TestHeadroom(t *testing.T) {
	testenv.RequireRoot(t)
	tests := []struct {
		frameSize, headroom int
	}{
		{2048, 0},
		{2048, 128},
		{4096, 1024},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dB chunks, headroom %d", tt.frameSize, tt.headroom), func(t *testing.T) {
			checkLeaks(t)
			u := newTestUmem(t, UmemOptions{NumFrames: 64, FrameSize: tt.frameSize, Headroom: tt.headroom})
			if u.DataOffset() != tt.headroom+PacketHeadroom {
				t.Fatalf("DataOffset %d", u.DataOffset())
			}
			p := newPort(t, u, SocketOptions{}, true)
			p.sock.Refill()
			p.peer.send(t, p.fromPeer(200, 1))
			d := receive(t, p.sock, 1, false)[0]
			if got := u.ChunkOffset(d.Addr); got != tt.headroom+PacketHeadroom {
				t.Fatalf("data at chunk offset %d, want %d", got, tt.headroom+PacketHeadroom)
			}
			if !bytes.Equal(u.Frame(d), p.fromPeer(200, 1)) {
				t.Fatal("received frame differs")
			}
			// Push a 4-byte tag into the headroom, as a VLAN push does (with
			// the test EtherType as its TPID, so the peer's packet socket
			// takes the frame as is), and send the grown frame back out.
			d.Addr -= 4
			d.Len += 4
			f := u.Frame(d)
			copy(f, f[4:16])
			copy(f[12:16], []byte{testEtherType >> 8, testEtherType & 0xff, 0x00, 0x07})
			copy(f[:6], p.veth.PeerMAC)
			sendAll(t, p.sock, []Desc{d}, 1)
			got := p.peer.recv(t, 1, waitLong)[0]
			if !bytes.Equal(got, f) {
				t.Fatalf("peer got % x..., want % x...", got[:20], f[:20])
			}
		})
	}
}

func TestStatsCounters(t *testing.T) {
	testenv.RequireRoot(t)
	t.Run("rx_dropped: frame bigger than a chunk's room", func(t *testing.T) {
		checkLeaks(t)
		// Room for data: 2048 - 1024 - 256 = 768 bytes at most.
		u := newTestUmem(t, UmemOptions{NumFrames: 32, FrameSize: 2048, Headroom: 1024})
		p := newPort(t, u, SocketOptions{}, true)
		p.sock.Refill()
		p.peer.send(t, p.fromPeer(1514, 1), p.fromPeer(64, 2))
		d := receive(t, p.sock, 1, false)
		if frameID(u.Frame(d[0])) != 2 {
			t.Fatalf("received frame %d, want the small one", frameID(u.Frame(d[0])))
		}
		putAll(u, d)
		wantStats(t, p.sock, Stats{RxDropped: 1})
	})
	t.Run("rx_fill_ring_empty_descs: nothing in the fill ring", func(t *testing.T) {
		checkLeaks(t)
		u := newTestUmem(t, UmemOptions{NumFrames: 32, FrameSize: 2048})
		p := newPort(t, u, SocketOptions{}, true)
		p.peer.send(t, p.fromPeer(64, 1), p.fromPeer(64, 2), p.fromPeer(64, 3))
		// The drops happen in the veth's NAPI poll: wait for them.
		waitStats(t, p.sock, func(s Stats) bool { return s.RxDropped == 3 })
		wantStats(t, p.sock, Stats{RxDropped: 3, RxFillRingEmptyDescs: 3})
		p.sock.Refill()
		p.peer.send(t, p.fromPeer(64, 4))
		d := receive(t, p.sock, 1, false)
		if frameID(u.Frame(d[0])) != 4 {
			t.Fatalf("received frame %d, want 4", frameID(u.Frame(d[0])))
		}
		putAll(u, d)
	})
	t.Run("rx_ring_full: more frames than the RX ring holds", func(t *testing.T) {
		checkLeaks(t)
		u := newTestUmem(t, UmemOptions{NumFrames: 32, FrameSize: 2048})
		p := newPort(t, u, SocketOptions{RxSize: 4, FillSize: 16}, true)
		// Refill would lend only 4; fill the ring by hand to overrun RX.
		addrs := make([]uint64, 16)
		u.Pool().GetBatch(addrs)
		if n := p.sock.Fill().Produce(addrs); n != 16 {
			t.Fatalf("fill Produce = %d", n)
		}
		for i := range 10 {
			p.peer.send(t, p.fromPeer(64, uint32(i)))
		}
		waitStats(t, p.sock, func(s Stats) bool { return s.RxRingFull == 6 })
		wantStats(t, p.sock, Stats{RxRingFull: 6})
		got := receive(t, p.sock, 4, false)
		for i, d := range got {
			if frameID(u.Frame(d)) != uint32(i) {
				t.Fatalf("frame %d has id %d", i, frameID(u.Frame(d)))
			}
		}
		putAll(u, got)
		// The kernel parked the fill frame of the first dropped frame; the
		// next frame takes it back out through the RX ring.
		p.peer.send(t, p.fromPeer(64, 99))
		got = receive(t, p.sock, 1, false)
		if frameID(u.Frame(got[0])) != 99 {
			t.Fatalf("received id %d, want 99", frameID(u.Frame(got[0])))
		}
		putAll(u, got)
		if n := p.sock.Fill().Outstanding(); n != 16-5 {
			t.Fatalf("fill outstanding %d, want 11", n)
		}
	})
}

func waitStats(t *testing.T, s *Socket, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never got there: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestInvalidTxDescs queues an invalid descriptor before a valid marker
// frame: the kernel must not send the first (and count it), and must send
// the marker. Whether the invalid descriptor's address comes back on the
// completion ring depends on the kernel (6.18 returns it); the frame is
// accounted for either way.
func TestInvalidTxDescs(t *testing.T) {
	testenv.RequireRoot(t)
	const fs = 2048
	tests := []struct {
		name string
		desc func(u *Umem, chunk uint64) Desc
	}{
		{"address past the end of the umem", func(u *Umem, _ uint64) Desc {
			return Desc{Addr: uint64(u.Size()) + PacketHeadroom, Len: 64}
		}},
		{"frame straddling a chunk boundary", func(_ *Umem, chunk uint64) Desc {
			return Desc{Addr: chunk + fs - 32, Len: 64}
		}},
		{"zero length", func(_ *Umem, chunk uint64) Desc {
			return Desc{Addr: chunk + PacketHeadroom, Len: 0}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			u := newTestUmem(t, UmemOptions{NumFrames: 16, FrameSize: fs})
			p := newPort(t, u, SocketOptions{}, false)
			chunk, _ := u.Pool().Get()
			bad := tt.desc(u, chunk)
			// What the bad descriptor covers is a test frame, so the peer
			// would see it if it went out.
			if end := bad.Addr + uint64(bad.Len); bad.Len > 0 && end <= uint64(u.Size()) {
				copy(u.area[bad.Addr:end], p.toPeer(int(bad.Len), 666))
			}
			marker := stage(t, u, u.DataOffset(), [][]byte{p.toPeer(64, 1)})[0]
			if n := p.sock.Transmit([]Desc{bad, marker}); n != 2 {
				t.Fatalf("Transmit = %d", n)
			}
			sendAll(t, p.sock, nil, 1)
			if f := p.peer.recv(t, 1, waitLong)[0]; frameID(f) != 1 {
				t.Fatalf("peer got frame %d first, want the marker", frameID(f))
			}
			waitFor(t, func() bool { p.sock.Reap(); return u.Pool().Contains(marker.Addr) })
			if n := p.sock.Tx().Outstanding(); n != 0 {
				t.Fatalf("tx outstanding %d", n)
			}
			wantStats(t, p.sock, Stats{TxInvalidDescs: 1})
			if !u.Pool().Contains(chunk) {
				u.Pool().Put(chunk) // an older kernel kept the invalid descriptor
			}
		})
	}
}

func TestPoll(t *testing.T) {
	testenv.RequireRoot(t)
	t.Run("rx times out", func(t *testing.T) {
		checkLeaks(t)
		u := newTestUmem(t, UmemOptions{NumFrames: 16, FrameSize: 2048})
		p := newPort(t, u, SocketOptions{}, true)
		p.sock.Refill()
		const timeout = 50 * time.Millisecond
		start := time.Now()
		r, w, err := p.sock.Poll(timeout, false)
		if err != nil || r || w {
			t.Fatalf("Poll = %v %v %v, want a timeout", r, w, err)
		}
		if el := time.Since(start); el < timeout*9/10 {
			t.Fatalf("Poll returned after %v, before its %v timeout", el, timeout)
		}
		p.peer.send(t, p.fromPeer(64, 1))
		r, _, err = p.sock.Poll(waitLong, false)
		if err != nil || !r {
			t.Fatalf("Poll after a frame arrived = %v %v", r, err)
		}
		putAll(u, receive(t, p.sock, 1, false))
	})
	t.Run("tx ring with room is writable", func(t *testing.T) {
		checkLeaks(t)
		u := newTestUmem(t, UmemOptions{NumFrames: 16, FrameSize: 2048})
		p := newPort(t, u, SocketOptions{}, false)
		r, w, err := p.sock.Poll(waitLong, true)
		if err != nil || r || !w {
			t.Fatalf("Poll = %v %v %v, want writable", r, w, err)
		}
	})
	t.Run("tx times out while the completion ring is full", func(t *testing.T) {
		checkLeaks(t)
		const n = 16
		u := newTestUmem(t, UmemOptions{NumFrames: 32, FrameSize: 2048})
		p := newPort(t, u, SocketOptions{TxSize: n, CompletionSize: 4}, false)
		frames := make([][]byte, n)
		for i := range frames {
			frames[i] = p.toPeer(64, uint32(i))
		}
		descs := stage(t, u, u.DataOffset(), frames)
		if got := p.sock.Transmit(descs); got != n {
			t.Fatalf("Transmit = %d", got)
		}
		// The kernel sends as many as the completion ring has room for.
		if err := p.sock.Kick(); err != nil {
			t.Fatalf("kick with a full completion ring: %v", err)
		}
		p.peer.recv(t, 4, waitLong)
		if got := p.sock.Tx().Outstanding(); got != n-4 {
			t.Fatalf("tx outstanding %d, want %d", got, n-4)
		}
		// More than half the TX ring is taken: not writable.
		if _, w, err := p.sock.Poll(50*time.Millisecond, true); err != nil || w {
			t.Fatalf("Poll = writable %v, %v; want a timeout", w, err)
		}
		// Reaping lets the rest through.
		sendAll(t, p.sock, nil, n)
		for i, f := range p.peer.recv(t, n-4, waitLong) {
			if frameID(f) != uint32(i+4) {
				t.Fatalf("peer frame %d has id %d", i+4, frameID(f))
			}
		}
	})
	t.Run("poll set", func(t *testing.T) {
		checkLeaks(t)
		u := newTestUmem(t, UmemOptions{NumFrames: 32, FrameSize: 2048})
		a := newPort(t, u, SocketOptions{RxSize: 8}, true)
		b := newPort(t, u, SocketOptions{RxSize: 8}, true)
		a.sock.Refill()
		b.sock.Refill()
		var ps PollSet
		ia, ib := ps.Add(a.sock, false), ps.Add(b.sock, false)
		if n, err := ps.Wait(20 * time.Millisecond); n != 0 || err != nil {
			t.Fatalf("Wait on idle sockets = %d, %v", n, err)
		}
		b.peer.send(t, b.fromPeer(64, 1))
		if n, err := ps.Wait(waitLong); n != 1 || err != nil || ps.Readable(ia) || !ps.Readable(ib) || ps.Writable(ib) {
			t.Fatalf("Wait = %d %v; readable a %v b %v", n, err, ps.Readable(ia), ps.Readable(ib))
		}
		putAll(u, receive(t, b.sock, 1, false))
		if ps.Len() != 2 {
			t.Fatalf("Len = %d", ps.Len())
		}
		ps.Reset()
		if ps.Len() != 0 {
			t.Fatal("Reset left sockets")
		}
	})
}

// TestSharedUmemForward is the datapath's core move: a frame received on a
// socket of veth A goes out, same descriptor and same UMEM address, on a
// socket of veth B that shares the UMEM, and reaches B's peer intact; and
// the other way round at the same time.
func TestSharedUmemForward(t *testing.T) {
	testenv.RequireRoot(t)
	for _, fs := range []int{2048, 4096} {
		t.Run(fmt.Sprintf("%dB chunks", fs), func(t *testing.T) {
			checkLeaks(t)
			const n = 128
			// Each socket lends at most RxSize frames to the kernel: room for
			// both and for the frames in flight between them.
			u := newTestUmem(t, UmemOptions{NumFrames: 1024, FrameSize: fs})
			a := newPort(t, u, SocketOptions{RxSize: 256}, true)
			b := newPort(t, u, SocketOptions{RxSize: 256}, true)
			if a.sock.Mode() != ModeCopy || b.sock.Mode() != ModeCopy || u.Mode() != ModeCopy {
				t.Fatalf("modes %v %v umem %v", a.sock.Mode(), b.sock.Mode(), u.Mode())
			}
			a.sock.Refill()
			b.sock.Refill()
			for i := range n {
				a.peer.send(t, a.fromPeer(64+i*10, uint32(i)))
				b.peer.send(t, b.fromPeer(64+i*10, uint32(1000+i)))
			}

			type path struct {
				name     string
				in, out  *port
				received map[uint64]bool // UMEM addresses received on in
			}
			paths := []*path{{name: "a->b", in: a, out: b}, {name: "b->a", in: b, out: a}}
			buf := make([]Desc, 32)
			forwarded := map[*path]int{}
			completed := map[*path]int{}
			for _, pa := range paths {
				pa.received = map[uint64]bool{}
			}
			deadline := time.Now().Add(waitLong)
			comp := make([]uint64, 64)
			for forwarded[paths[0]] < n || forwarded[paths[1]] < n || completed[paths[0]] < n || completed[paths[1]] < n {
				if time.Now().After(deadline) {
					t.Fatalf("forwarded %v, completed %v", forwarded, completed)
				}
				idle := true
				for _, pa := range paths {
					k := pa.in.sock.Receive(buf)
					for i := range buf[:k] {
						d := &buf[i]
						pa.received[d.Addr] = true
						// Rewrite in place, as the datapath does: new MACs.
						f := u.Frame(*d)
						copy(f[0:6], pa.out.veth.PeerMAC)
						copy(f[6:12], pa.out.veth.LocalMAC)
					}
					if m := pa.out.sock.Transmit(buf[:k]); m != k {
						t.Fatalf("%s: tx ring full (%d of %d)", pa.name, m, k)
					}
					forwarded[pa] += k
					if err := pa.out.sock.Kick(); err != nil {
						t.Fatal(err)
					}
					// Completions come back on the output socket's own ring,
					// with the very addresses received on the input socket.
					c := pa.out.sock.Completion().Consume(comp)
					for _, addr := range comp[:c] {
						if !pa.received[addr] {
							t.Fatalf("%s: completion of %#x, never received on %s", pa.name, addr, pa.in.veth.LocalName())
						}
						delete(pa.received, addr)
						u.Pool().Put(addr)
					}
					completed[pa] += c
					pa.in.sock.Refill()
					if k > 0 || c > 0 {
						idle = false
					}
				}
				if idle {
					time.Sleep(200 * time.Microsecond)
				}
			}
			for _, pa := range paths {
				base := uint32(0)
				if pa.in == b {
					base = 1000
				}
				got := pa.out.peer.recv(t, n, waitLong)
				for i, f := range got {
					want := testFrame(pa.out.veth.PeerMAC, pa.out.veth.LocalMAC, 64+i*10, base+uint32(i))
					if !bytes.Equal(f, want) {
						t.Fatalf("%s: frame %d at %s's peer differs", pa.name, i, pa.out.veth.LocalName())
					}
				}
				wantStats(t, pa.in.sock, Stats{})
			}
		})
	}
}

func TestBindBusy(t *testing.T) {
	testenv.RequireRoot(t)
	tests := []struct {
		name      string
		sameUmem  bool
		kernelErr bool // the kernel, not this package, refuses
	}{
		{"socket of another umem", false, true},
		{"socket of the same umem", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			u := newTestUmem(t, UmemOptions{NumFrames: 16, FrameSize: 2048})
			p := newPort(t, u, SocketOptions{}, false)
			u2 := u
			if !tt.sameUmem {
				u2 = newTestUmem(t, UmemOptions{NumFrames: 16, FrameSize: 2048})
			}
			s, err := NewSocket(u2, SocketOptions{Ifindex: p.veth.LocalIndex(), Queue: 0})
			if err == nil {
				s.Close()
				t.Fatal("second bind to the same queue succeeded")
			}
			if !errors.Is(err, unix.EBUSY) || !errors.Is(err, ErrBusy) {
				t.Fatalf("err = %v, want EBUSY and ErrBusy", err)
			}
			t.Logf("%v", err)
			// The first socket still works.
			sendAll(t, p.sock, stage(t, u, u.DataOffset(), [][]byte{p.toPeer(64, 1)}), 1)
			p.peer.recv(t, 1, waitLong)
		})
	}
}

func TestModes(t *testing.T) {
	testenv.RequireRoot(t)
	tests := []struct {
		name    string
		mode    Mode
		want    Mode
		wantErr error
	}{
		{"auto falls back to copy", ModeAuto, ModeCopy, nil},
		{"copy", ModeCopy, ModeCopy, nil},
		// veth has no zero-copy support (no ndo_xsk_wakeup).
		{"zero-copy is refused", ModeZeroCopy, 0, ErrNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			u := newTestUmem(t, UmemOptions{NumFrames: 16, FrameSize: 2048})
			ns := testenv.NewNS(t)
			v := testenv.NewVeth(t, ns, "xk", testenv.VethOptions{})
			s, err := NewSocket(u, SocketOptions{Ifindex: v.LocalIndex(), Mode: tt.mode})
			if tt.wantErr != nil {
				if err == nil {
					s.Close()
					t.Fatalf("bind in %v mode succeeded", tt.mode)
				}
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, unix.EOPNOTSUPP) {
					t.Fatalf("err = %v, want %v and EOPNOTSUPP", err, tt.wantErr)
				}
				t.Logf("%v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Mode() != tt.want || u.Mode() != tt.want {
				t.Fatalf("socket mode %v, umem mode %v, want %v", s.Mode(), u.Mode(), tt.want)
			}
			// A socket sharing the umem cannot ask for another mode.
			v2 := testenv.NewVeth(t, ns, "xk", testenv.VethOptions{})
			if s2, err := NewSocket(u, SocketOptions{Ifindex: v2.LocalIndex(), Mode: ModeZeroCopy}); !errors.Is(err, ErrInvalidOptions) {
				if err == nil {
					s2.Close()
				}
				t.Fatalf("shared socket in zero-copy mode: %v, want ErrInvalidOptions", err)
			}
		})
	}
}

// TestSharedUmemOutlivesFirstSocket closes the socket that registered the
// UMEM while another shares it: a third socket must still share it (through
// the remaining one), and once all are closed a new socket registers it
// again.
func TestSharedUmemOutlivesFirstSocket(t *testing.T) {
	testenv.RequireRoot(t)
	checkLeaks(t)
	u := newTestUmem(t, UmemOptions{NumFrames: 64, FrameSize: 2048})
	ns := testenv.NewNS(t)
	var veths []*testenv.Veth
	for range 3 {
		veths = append(veths, testenv.NewVeth(t, ns, "xk", testenv.VethOptions{}))
	}
	open := func(v *testenv.Veth) *Socket {
		return openSocket(t, u, SocketOptions{Ifindex: v.LocalIndex()})
	}
	s0, s1 := open(veths[0]), open(veths[1])
	if err := s0.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s0.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	s2 := open(veths[2])
	if err := u.Close(); !errors.Is(err, ErrInUse) {
		t.Fatalf("Umem.Close with open sockets = %v, want ErrInUse", err)
	}
	// Both still work: send one frame on each.
	for i, s := range []*Socket{s1, s2} {
		v := veths[i+1]
		pe := openPeer(t, v)
		sendAll(t, s, stage(t, u, u.DataOffset(), [][]byte{testFrame(v.PeerMAC, v.LocalMAC, 64, uint32(i))}), 1)
		pe.recv(t, 1, waitLong)
	}
	s1.Close()
	s2.Close()
	if u.Mode() != ModeAuto {
		t.Fatalf("umem mode with no sockets: %v", u.Mode())
	}
	s3 := open(veths[0])
	if s3.Mode() != ModeCopy {
		t.Fatalf("re-registered socket mode %v", s3.Mode())
	}
	s3.Close()
}

// TestCloseRecoversFrames leaves frames in all four rings and checks that
// Close brings every one back to the pool.
func TestCloseRecoversFrames(t *testing.T) {
	testenv.RequireRoot(t)
	checkLeaks(t)
	u := newTestUmem(t, UmemOptions{NumFrames: 64, FrameSize: 2048})
	p := newPort(t, u, SocketOptions{RxSize: 16, FillSize: 16, TxSize: 16, CompletionSize: 16}, true)
	s := p.sock
	if n := s.Refill(); n != 16 {
		t.Fatalf("Refill = %d", n)
	}
	// RX ring: 3 received, not consumed.
	p.peer.send(t, p.fromPeer(64, 1), p.fromPeer(64, 2), p.fromPeer(64, 3))
	waitFor(t, func() bool { return s.Rx().Available() == 3 })
	// Completion ring: 2 sent, not reaped.
	sent := stage(t, u, u.DataOffset(), [][]byte{p.toPeer(64, 4), p.toPeer(64, 5)})
	s.Transmit(sent)
	if err := s.Kick(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Completion().Available() == 2 })
	// TX ring: 4 queued, never kicked.
	s.Transmit(stage(t, u, u.DataOffset(), [][]byte{p.toPeer(64, 6), p.toPeer(64, 7), p.toPeer(64, 8), p.toPeer(64, 9)}))
	if got := u.Pool().Free(); got != 64-16-2-4 {
		t.Fatalf("pool Free before Close = %d", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := u.Pool().Free(); got != 64 {
		t.Fatalf("pool Free after Close = %d, want 64", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKickDeviceDown: a kick on a device that is down fails with ENETDOWN
// and leaves the descriptors queued; Close brings them back.
func TestKickDeviceDown(t *testing.T) {
	testenv.RequireRoot(t)
	checkLeaks(t)
	u := newTestUmem(t, UmemOptions{NumFrames: 16, FrameSize: 2048})
	p := newPort(t, u, SocketOptions{}, false)
	if err := setLinkDown(p.veth.LocalName()); err != nil {
		t.Fatal(err)
	}
	p.sock.Transmit(stage(t, u, u.DataOffset(), [][]byte{p.toPeer(64, 1)}))
	if err := p.sock.Kick(); !errors.Is(err, unix.ENETDOWN) {
		t.Fatalf("Kick on a down device = %v, want ENETDOWN", err)
	}
	if n := p.sock.Tx().Outstanding(); n != 1 {
		t.Fatalf("tx outstanding %d, want 1", n)
	}
}

func setLinkDown(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() &^ unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set %s down: %w", name, err)
	}
	return nil
}

// TestHotPathAllocs runs the poller's calls on a live socket, sending a
// frame per run: none may allocate.
func TestHotPathAllocs(t *testing.T) {
	testenv.RequireRoot(t)
	checkLeaks(t)
	u := newTestUmem(t, UmemOptions{NumFrames: 64, FrameSize: 2048})
	p := newPort(t, u, SocketOptions{}, true)
	var ps PollSet
	ps.Add(p.sock, true)
	rx := make([]Desc, 4)
	tx := make([]Desc, 1)
	frame := p.toPeer(64, 1)
	// Frames waiting on the RX ring, so the runs receive too.
	p.sock.Refill()
	for i := range 40 {
		p.peer.send(t, p.fromPeer(64, uint32(i)))
	}
	waitFor(t, func() bool { return p.sock.Rx().Available() == 40 })
	sent, received := 0, 0
	allocs := testing.AllocsPerRun(200, func() {
		p.sock.Refill()
		n := p.sock.Receive(rx)
		received += n
		putAll(u, rx[:n])
		if a, ok := u.Pool().Get(); ok {
			copy(u.Chunk(a)[u.DataOffset():], frame)
			tx[0] = Desc{Addr: a + uint64(u.DataOffset()), Len: uint32(len(frame))}
			if p.sock.Transmit(tx) == 1 {
				sent++
			} else {
				u.Pool().Put(a)
			}
		}
		if err := p.sock.Kick(); err != nil {
			t.Fatal(err)
		}
		p.sock.Reap()
		if _, _, err := p.sock.Poll(0, true); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.Wait(0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("hot path allocates %.1f times per run", allocs)
	}
	if sent == 0 || received != 40 {
		t.Fatalf("runs sent %d frames and received %d of 40", sent, received)
	}
	// Every frame sent comes back.
	waitFor(t, func() bool { p.sock.Reap(); return u.Pool().Free()+p.sock.Fill().Outstanding() == u.Pool().Total() })
	p.peer.recv(t, sent, waitLong)
}

// TestRebindAfterClose closes a socket and at once binds its queue again,
// as removing and re-adding a port does: the kernel frees the queue a little
// after close returns, and NewSocket must ride that out.
func TestRebindAfterClose(t *testing.T) {
	testenv.RequireRoot(t)
	checkLeaks(t)
	u := newTestUmem(t, UmemOptions{NumFrames: 64, FrameSize: 2048})
	other := newTestUmem(t, UmemOptions{NumFrames: 64, FrameSize: 2048})
	ns := testenv.NewNS(t)
	v := testenv.NewVeth(t, ns, "xk", testenv.VethOptions{})
	w := testenv.NewVeth(t, ns, "xk", testenv.VethOptions{})
	// A socket on w keeps u registered, so sockets on v share it.
	openSocket(t, u, SocketOptions{Ifindex: w.LocalIndex()})
	for i := range 20 {
		um := u
		if i%2 == 1 {
			um = other
		}
		s, err := NewSocket(um, SocketOptions{Ifindex: v.LocalIndex()})
		if err != nil {
			t.Fatalf("bind %d: %v", i, err)
		}
		if n := s.Refill(); n == 0 {
			t.Fatalf("bind %d: Refill lent nothing", i)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
}
