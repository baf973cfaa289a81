package datapath

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ping sends n ICMP echo requests from h to dst over a raw socket and fails
// the test unless each gets its reply.
func ping(t testing.TB, h *host, dst net.IP, n int) {
	t.Helper()
	err := h.NS.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err != nil {
			return fmt.Errorf("raw icmp socket: %w", err)
		}
		defer unix.Close(fd)
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		to := &unix.SockaddrInet4{}
		copy(to.Addr[:], dst.To4())
		const id = 0x7873
		buf := make([]byte, 1500)
		for seq := 1; seq <= n; seq++ {
			req := make([]byte, 8, 64)
			req[0] = 8 // echo request
			binary.BigEndian.PutUint16(req[4:], id)
			binary.BigEndian.PutUint16(req[6:], uint16(seq))
			req = append(req, fmt.Sprintf("xvs ping %d", seq)...)
			binary.BigEndian.PutUint16(req[2:], inetChecksum(req))
			if err := unix.Sendto(fd, req, 0, to); err != nil {
				return fmt.Errorf("send echo request %d: %w", seq, err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				if time.Now().After(deadline) {
					return fmt.Errorf("no echo reply to request %d", seq)
				}
				k, _, err := unix.Recvfrom(fd, buf, 0)
				if err != nil || k < 20 {
					continue
				}
				ip := buf[:k]
				icmp := ip[int(ip[0]&0x0f)*4:]
				if len(icmp) >= 8 && icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id &&
					binary.BigEndian.Uint16(icmp[6:]) == uint16(seq) && bytes.Equal(icmp[8:], req[8:]) {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ping %s from %s: %v", dst, h.name, err)
	}
}

// inetChecksum is the Internet checksum of b (RFC 1071).
func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// Traffic no flow wants stays in the kernel: with only UDP forwarding flows
// installed, a host resolves the switch host's own address on the port by
// ARP, pings it and talks TCP to it, and none of that reaches userspace. A
// kernel flow hands traffic that a forwarding flow would take to the host.
func TestUnmatchedToKernel(t *testing.T) {
	tp := newTopo(t, topoOptions{HostIP: true})
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}", "in_port={b},udp,actions=output:{a}")
	hostIP := net.ParseIP(testHostIP).To4()
	for _, nb := range neighbours(t, tp.a.NS, tp.a.PeerIndex()) {
		if nb.IP.Equal(hostIP) {
			t.Fatalf("a already has a neighbour entry for %s", hostIP)
		}
	}

	t.Run("arp and ping", func(t *testing.T) {
		const n = 5
		st0 := tp.stats(t, tp.a)
		ping(t, tp.a, hostIP, n)
		st := tp.stats(t, tp.a)
		if st.RxPackets != st0.RxPackets || st.XDP["redirect"] != st0.XDP["redirect"] {
			t.Fatalf("ping reached userspace: rx %d -> %d, redirect %d -> %d", st0.RxPackets, st.RxPackets, st0.XDP["redirect"], st.XDP["redirect"])
		}
		if d := st.XDP["pass_nomatch"] - st0.XDP["pass_nomatch"]; d < n+1 {
			t.Fatalf("pass_nomatch rose by %d, want at least %d (an ARP request and %d echo requests)", d, n+1, n)
		}
		var mac net.HardwareAddr
		for _, nb := range neighbours(t, tp.a.NS, tp.a.PeerIndex()) {
			if nb.IP.Equal(hostIP) {
				mac = nb.HardwareAddr
			}
		}
		if !bytes.Equal(mac, tp.a.LocalMAC) {
			t.Fatalf("a resolved %s to %v, want the port's MAC %v", hostIP, mac, tp.a.LocalMAC)
		}
	})

	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp4", testHostIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		errc := make(chan error, 1)
		go func() { // echo the sha256 of what comes
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			h := sha256.New()
			if _, err := io.Copy(h, c); err != nil {
				errc <- err
				return
			}
			_, err = c.Write(h.Sum(nil))
			errc <- err
		}()
		st0 := tp.stats(t, tp.a)
		var c net.Conn
		if err := tp.a.NS.Do(func() (err error) {
			c, err = net.DialTimeout("tcp4", ln.Addr().String(), 10*time.Second)
			return err
		}); err != nil {
			t.Fatalf("connect from a to %s: %v", ln.Addr(), err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		data := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{1}).Read(data)
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("server: %v", err)
		}
		if want := sha256.Sum256(data); !bytes.Equal(got, want[:]) {
			t.Fatalf("the host received other bytes than a sent")
		}
		st := tp.stats(t, tp.a)
		if st.RxPackets != st0.RxPackets {
			t.Fatalf("tcp to the host reached userspace: rx %d -> %d", st0.RxPackets, st.RxPackets)
		}
		if d := st.XDP["pass_nomatch"] - st0.XDP["pass_nomatch"]; d < 100 {
			t.Fatalf("pass_nomatch rose by %d for a 1 MiB transfer", d)
		}
	})

	t.Run("udp to b is forwarded meanwhile", func(t *testing.T) {
		const n, size = 10, 100
		sink := listenUDP(t, tp.b.NS, tp.b.ip, 9200)
		st0 := tp.stats(t, tp.a)
		sendUDP(t, tp.a, tp.b.ip, 9200, n, seqPayload(size), sendOpts{})
		checkSeq(t, "a to b", sink.collect(n, 5*time.Second), n, size)
		if d := tp.stats(t, tp.a).RxPackets - st0.RxPackets; d != n {
			t.Fatalf("userspace received %d frames from a, want %d", d, n)
		}
	})

	t.Run("kernel action", func(t *testing.T) {
		const n, size = 10, 100
		// The host's own socket, in the test's namespace.
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: hostIP, Port: 9201})
		if err != nil {
			t.Fatal(err)
		}
		atHost := newUDPSink(t, c)
		// The forwarding flow takes UDP to the host's address to b, which
		// drops it (not its MAC).
		sendUDP(t, tp.a, hostIP, 9201, n, seqPayload(size), sendOpts{})
		if got := atHost.quiet(200 * time.Millisecond); len(got) > 0 {
			t.Fatalf("%d datagrams reached the host through a forwarding flow", len(got))
		}
		ids := tp.addFlows(t, "priority=40000,in_port={a},udp,nw_dst="+testHostIP+",actions=kernel")
		st0 := tp.stats(t, tp.a)
		sendUDP(t, tp.a, hostIP, 9201, n, seqPayload(size), sendOpts{})
		checkSeq(t, "a to the host", atHost.collect(n, 5*time.Second), n, size)
		st := tp.stats(t, tp.a)
		if st.XDP["pass_rule"]-st0.XDP["pass_rule"] != n || st.RxPackets != st0.RxPackets {
			t.Fatalf("pass_rule rose by %d (want %d), userspace rx by %d (want 0)",
				st.XDP["pass_rule"]-st0.XDP["pass_rule"], n, st.RxPackets-st0.RxPackets)
		}
		if fi, err := tp.sw.Flow(ids[0]); err != nil || fi.Packets != n {
			t.Fatalf("kernel flow counted %d packets (%v), want %d", fi.Packets, err, n)
		}
	})
}

// A drop flow drops in XDP: nothing arrives, the XDP drop counter rises by
// exactly what was sent, and userspace never sees a frame. Traffic the
// lower-priority forwarding flow takes still arrives.
func TestDropFlow(t *testing.T) {
	const n, size = 50, 100
	tp := newTopo(t, topoOptions{})
	ids := tp.addFlows(t, "priority=100,in_port={a},udp,actions=output:{b}", "priority=200,udp,tp_dst=6666,actions=drop")
	dropped := listenUDP(t, tp.b.NS, tp.b.ip, 6666)
	passed := listenUDP(t, tp.b.NS, tp.b.ip, 6665)

	sendUDP(t, tp.a, tp.b.ip, 6665, n, seqPayload(size), sendOpts{})
	checkSeq(t, "to 6665", passed.collect(n, 5*time.Second), n, size)

	st0 := tp.stats(t, tp.a)
	sendUDP(t, tp.a, tp.b.ip, 6666, n, seqPayload(size), sendOpts{})
	eventually(t, 5*time.Second, func() bool { return tp.stats(t, tp.a).XDP["drop"]-st0.XDP["drop"] >= n }, func() string {
		return fmt.Sprintf("xdp drop rose by %d, want %d", tp.stats(t, tp.a).XDP["drop"]-st0.XDP["drop"], n)
	})
	if got := dropped.quiet(200 * time.Millisecond); len(got) > 0 {
		t.Fatalf("%d datagrams to the drop flow arrived", len(got))
	}
	st := tp.stats(t, tp.a)
	if d := st.XDP["drop"] - st0.XDP["drop"]; d != n {
		t.Fatalf("xdp drop rose by %d, want exactly %d", d, n)
	}
	if st.RxPackets != st0.RxPackets || st.XDP["redirect"] != st0.XDP["redirect"] {
		t.Fatalf("dropped traffic reached userspace: rx %d -> %d, redirect %d -> %d",
			st0.RxPackets, st.RxPackets, st0.XDP["redirect"], st.XDP["redirect"])
	}
	// The drop flow's counters count what the XDP program dropped for it.
	fi, err := tp.sw.Flow(ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Packets != n || fi.Bytes != n*(14+20+8+size) {
		t.Fatalf("drop flow counted %d packets, %d bytes; want %d, %d", fi.Packets, fi.Bytes, n, n*(14+20+8+size))
	}
}
