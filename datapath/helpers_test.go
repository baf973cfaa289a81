package datapath

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/testenv"
)

// testNet is the hosts' subnet (inside their own namespaces): host n has
// testNet+n/24. testHostIP is the address topoOptions.HostIP puts on a's
// switch-side end, in the test's (root) namespace.
const (
	testNet    = "10.231.1."
	testHostIP = testNet + "254"
)

// host is a namespace plugged into the switch through a veth pair. The
// switch-side end (LocalName) is the port.
type host struct {
	*testenv.Veth
	name string
	ip   net.IP
	late bool // created after the switch: its veth goes before the switch closes
}

func (h *host) port() string { return h.LocalName() }

// topoOptions shape a topology.
type topoOptions struct {
	Config Config
	Queues int // RX and TX queues on both ends of every veth; 0: the kernel's default (one active)
	// HostQueues overrides Queues for the first hosts: a, b, ...
	HostQueues []int
	HostIP     bool // a's switch-side end carries testHostIP/24
	// FastPath turns on GRO on the hosts' ends of the veths, so that every
	// port takes redirected frames and flows XDP can carry out run in XDP.
	// Without it they stay in userspace (a new veth has GRO off).
	FastPath bool
}

// topo is hosts, each in its own namespace behind a port of one switch.
// Every host has a permanent neighbour entry for every other host, so
// traffic between them needs no ARP.
type topo struct {
	opts  topoOptions
	sw    *Switch
	a, b  *host
	hosts []*host
}

// newTopo builds hosts a (testNet.1) and b (testNet.2) and a switch with
// both as ports, and no flows. Everything goes away with t.Cleanup, the
// switch before the veths.
func newTopo(t testing.TB, o topoOptions) *topo {
	t.Helper()
	testenv.RequireRoot(t)
	tp := &topo{opts: o}
	tp.a = tp.addHost(t, "a")
	tp.b = tp.addHost(t, "b")
	tp.sw = newSwitch(t, o.Config)
	tp.addPort(t, tp.a)
	tp.addPort(t, tp.b)
	return tp
}

// newSwitch returns a switch that logs to the test's output and is closed
// when the test ends.
func newSwitch(t testing.TB, cfg Config) *Switch {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	sw, err := New(cfg)
	if err != nil {
		t.Fatalf("new switch: %v", err)
	}
	t.Cleanup(func() {
		if err := sw.Close(); err != nil {
			t.Errorf("close switch: %v", err)
		}
	})
	return sw
}

// addHost creates the next host (a namespace and a veth pair; no port yet)
// and neighbours it with the hosts already there.
func (tp *topo) addHost(t testing.TB, name string) *host {
	t.Helper()
	return tp.addHostDev(t, name, "")
}

// addHostDev is addHost with the switch-side end named dev ("" = random).
func (tp *topo) addHostDev(t testing.TB, name, dev string) *host {
	t.Helper()
	n := len(tp.hosts) + 1
	vo := testenv.VethOptions{PeerIP: fmt.Sprintf("%s%d/24", testNet, n), Queues: tp.opts.Queues, Name: dev, PeerGRO: tp.opts.FastPath}
	if n <= len(tp.opts.HostQueues) {
		vo.Queues = tp.opts.HostQueues[n-1]
	}
	if tp.opts.HostIP && n == 1 {
		vo.LocalIP = testHostIP + "/24"
	}
	v := testenv.NewVeth(t, testenv.NewNS(t), "x"+name, vo)
	quietIPv6(t, v)
	h := &host{Veth: v, name: name, ip: v.PeerAddr, late: tp.sw != nil}
	for _, o := range tp.hosts {
		h.AddNeigh(t, o.ip, o.PeerMAC)
		o.AddNeigh(t, h.ip, h.PeerMAC)
	}
	tp.hosts = append(tp.hosts, h)
	return h
}

// dropHost forgets h, whose veth the test deleted: later hosts are not
// neighboured with it.
func (tp *topo) dropHost(h *host) {
	tp.hosts = slices.DeleteFunc(tp.hosts, func(o *host) bool { return o == h })
}

// addPort makes h a port of the switch. The ports of hosts made before the
// switch are still there when it closes; a later host's port is removed
// before its veth goes.
func (tp *topo) addPort(t testing.TB, h *host) {
	t.Helper()
	if _, err := tp.sw.AddPort(PortSpec{Name: h.port()}); err != nil {
		t.Fatalf("add port %s (%s): %v", h.port(), h.name, err)
	}
	if !h.late {
		return
	}
	t.Cleanup(func() {
		if err := tp.sw.DeletePort(h.port()); err != nil && !errors.Is(err, ErrNoSuchPort) && !errors.Is(err, ErrClosed) {
			t.Errorf("delete port %s: %v", h.port(), err)
		}
	})
}

// flow expands {a}, {b}, ... in text to the hosts' port names, {a.mac} to
// their MAC addresses, and parses it.
func (tp *topo) flow(t testing.TB, text string) *flowtable.Flow {
	t.Helper()
	var kv []string
	for _, h := range tp.hosts {
		kv = append(kv, "{"+h.name+".mac}", h.PeerMAC.String(), "{"+h.name+"}", h.port())
	}
	s := strings.NewReplacer(kv...).Replace(text)
	f, err := flowtable.ParseFlow(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return f
}

func (tp *topo) flows(t testing.TB, texts ...string) []*flowtable.Flow {
	t.Helper()
	fs := make([]*flowtable.Flow, len(texts))
	for i, s := range texts {
		fs[i] = tp.flow(t, s)
	}
	return fs
}

// addFlows installs flows in one transaction and returns their IDs.
func (tp *topo) addFlows(t testing.TB, texts ...string) []uint64 {
	t.Helper()
	res, err := tp.sw.Apply(Change{Add: tp.flows(t, texts...)})
	ids := res.Added
	if err != nil {
		t.Fatalf("apply flows %q: %v", texts, err)
	}
	return ids
}

// stats returns the port counters of h.
func (tp *topo) stats(t testing.TB, h *host) PortStats {
	t.Helper()
	st, err := tp.sw.PortStats(h.port())
	if err != nil {
		t.Fatalf("stats of %s: %v", h.name, err)
	}
	return st
}

// eventually polls cond every 10ms until it holds, and fails the test with
// what() if it does not within timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// udpMsg is one received datagram with what the receiving kernel said about
// it.
type udpMsg struct {
	data    []byte
	src     netip.AddrPort
	ttl     int // IP_RECVTTL
	ifindex int // IP_PKTINFO: the interface it arrived on
}

// udpSink is a UDP socket in a host's namespace and a goroutine reading it
// into a channel, so nothing piles up in the socket buffer.
type udpSink struct {
	conn *net.UDPConn
	msgs chan udpMsg
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// listenUDP opens a sink on ip:port inside ns, closed when the test ends.
func listenUDP(t testing.TB, ns *testenv.NS, ip net.IP, port int) *udpSink {
	t.Helper()
	var conn *net.UDPConn
	if err := ns.Do(func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port})
		return err
	}); err != nil {
		t.Fatalf("listen udp %s:%d in %s: %v", ip, port, ns.Name, err)
	}
	if err := setsockopts(conn, func(fd int) error {
		return errors.Join(
			unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1),
			unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1),
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20),
		)
	}); err != nil {
		conn.Close()
		t.Fatalf("udp socket options: %v", err)
	}
	return newUDPSink(t, conn)
}

// newUDPSink starts reading conn; the sink is closed when the test ends.
func newUDPSink(t testing.TB, conn *net.UDPConn) *udpSink {
	s := &udpSink{conn: conn, msgs: make(chan udpMsg, 1<<16), stop: make(chan struct{}), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *udpSink) read() {
	defer close(s.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, oobn, _, src, err := s.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			return
		}
		m := udpMsg{data: bytes.Clone(buf[:n]), src: src, ttl: -1, ifindex: -1}
		cms, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, cm := range cms {
			switch {
			case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_TTL && len(cm.Data) >= 4:
				m.ttl = int(int32(binary.NativeEndian.Uint32(cm.Data)))
			case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_PKTINFO && len(cm.Data) >= 4:
				m.ifindex = int(int32(binary.NativeEndian.Uint32(cm.Data)))
			}
		}
		select {
		case s.msgs <- m:
		case <-s.stop:
			return
		}
	}
}

// close closes the socket and waits for the reader.
func (s *udpSink) close() {
	s.once.Do(func() {
		close(s.stop)
		s.conn.Close()
		<-s.done
	})
}

// collect returns the datagrams that arrive until there are n or timeout
// passes.
func (s *udpSink) collect(n int, timeout time.Duration) []udpMsg {
	var got []udpMsg
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(got) < n {
		select {
		case m := <-s.msgs:
			got = append(got, m)
		case <-timer.C:
			return got
		}
	}
	return got
}

// drain returns the datagrams that have arrived, without waiting.
func (s *udpSink) drain() []udpMsg {
	var got []udpMsg
	for {
		select {
		case m := <-s.msgs:
			got = append(got, m)
		default:
			return got
		}
	}
}

// quiet returns whatever arrives within d (a test expecting nothing calls it).
func (s *udpSink) quiet(d time.Duration) []udpMsg {
	return s.collect(1<<30, d)
}

// sendOpts tune sendUDP.
type sendOpts struct {
	TTL   int    // IP_TTL; 0 = the default
	From  net.IP // source address; nil = the host's
	Burst int    // datagrams sent back to back before a millisecond's pause; 0 = 16
}

// sendUDP sends n datagrams from host h (one socket, one source port) to
// to:port, payload(i) each, in bursts (of 16 by default) a millisecond
// apart, so the veth's XDP ring (256 frames) never overflows.
func sendUDP(t testing.TB, h *host, to net.IP, port, n int, payload func(int) []byte, o sendOpts) {
	t.Helper()
	if err := trySendUDP(h, to, port, n, payload, o); err != nil {
		t.Fatal(err)
	}
}

// trySendUDP is sendUDP for goroutines other than the test's.
func trySendUDP(h *host, to net.IP, port, n int, payload func(int) []byte, o sendOpts) error {
	from := o.From
	if from == nil {
		from = h.ip
	}
	var conn *net.UDPConn
	if err := h.NS.Do(func() (err error) {
		conn, err = net.DialUDP("udp4", &net.UDPAddr{IP: from}, &net.UDPAddr{IP: to, Port: port})
		return err
	}); err != nil {
		return fmt.Errorf("dial udp %s:%d from %s: %w", to, port, h.name, err)
	}
	defer conn.Close()
	if o.TTL > 0 {
		if err := setsockopts(conn, func(fd int) error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, o.TTL)
		}); err != nil {
			return fmt.Errorf("set ttl: %w", err)
		}
	}
	burst := o.Burst
	if burst == 0 {
		burst = 16
	}
	for i := range n {
		if i > 0 && i%burst == 0 {
			time.Sleep(time.Millisecond)
		}
		if _, err := conn.Write(payload(i)); err != nil {
			return fmt.Errorf("send datagram %d from %s to %s:%d: %w", i, h.name, to, port, err)
		}
	}
	return nil
}

// setsockopts runs fn on c's file descriptor.
func setsockopts(c interface {
	SyscallConn() (syscall.RawConn, error)
}, fn func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// seqPayload is datagram i of a numbered stream: its number and a pattern
// derived from it, so damage and reordering show.
func seqPayload(size int) func(int) []byte {
	return func(i int) []byte {
		p := make([]byte, size)
		copy(p, strconv.Itoa(i)+":")
		for j := len(strconv.Itoa(i)) + 1; j < size; j++ {
			p[j] = byte(i*7 + j)
		}
		return p
	}
}

// checkSeq checks that got holds datagrams 0..n-1 of seqPayload(size),
// each exactly once.
func checkSeq(t testing.TB, what string, got []udpMsg, n, size int) {
	t.Helper()
	seen := checkIntact(t, what, got, n, size)
	if len(got) != n {
		t.Fatalf("%s: %d of %d datagrams arrived (first missing: %d)", what, len(got), n, slices.Index(seen, false))
	}
}

// checkIntact checks that got holds datagrams of 0..n-1 of seqPayload(size),
// intact and none twice, and returns which arrived.
func checkIntact(t testing.TB, what string, got []udpMsg, n, size int) []bool {
	t.Helper()
	pay := seqPayload(size)
	seen := make([]bool, n)
	for _, m := range got {
		num, _, ok := bytes.Cut(m.data, []byte(":"))
		i, err := strconv.Atoi(string(num))
		if !ok || err != nil || i < 0 || i >= n {
			t.Fatalf("%s: unexpected datagram %q", what, m.data[:min(len(m.data), 16)])
		}
		if seen[i] {
			t.Fatalf("%s: datagram %d arrived twice", what, i)
		}
		seen[i] = true
		if !bytes.Equal(m.data, pay(i)) {
			t.Fatalf("%s: datagram %d damaged", what, i)
		}
	}
	return seen
}

// snmp reads one counter of /proc/net/snmp (e.g. "Udp", "InCsumErrors") as
// ns sees it: /proc/net follows the reading thread's namespace.
func snmp(t testing.TB, ns *testenv.NS, proto, field string) uint64 {
	t.Helper()
	var v uint64
	err := ns.Do(func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		var names []string
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 0 || fs[0] != proto+":" {
				continue
			}
			if names == nil {
				names = fs
				continue
			}
			i := slices.Index(names, field)
			if i < 0 || i >= len(fs) {
				return fmt.Errorf("no %s %s", proto, field)
			}
			v, err = strconv.ParseUint(fs[i], 10, 64)
			return err
		}
		return fmt.Errorf("no %s lines", proto)
	})
	if err != nil {
		t.Fatalf("read snmp %s %s in %s: %v", proto, field, ns.Name, err)
	}
	return v
}

// neighbours returns ns's IPv4 neighbour entries of link (by index).
func neighbours(t testing.TB, ns *testenv.NS, link int) []netlink.Neigh {
	t.Helper()
	var out []netlink.Neigh
	if err := ns.Do(func() (err error) {
		out, err = netlink.NeighList(link, netlink.FAMILY_V4)
		return err
	}); err != nil {
		t.Fatalf("neighbours in %s: %v", ns.Name, err)
	}
	return out
}

// checkFrames waits until every frame of every UMEM is accounted for, and
// fails the test if that does not happen within a few seconds.
func checkFrames(t testing.TB, sw *Switch, when string) []FrameStats {
	t.Helper()
	var ls []FrameStats
	eventually(t, 5*time.Second, func() bool {
		var err error
		if ls, err = sw.Frames(); err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if !l.Balanced() {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%s: frames unaccounted for: %v", when, ls) })
	return ls
}

// udpFrame builds an Ethernet/IPv4/UDP frame with correct lengths and
// checksums.
func udpFrame(t testing.TB, srcMAC, dstMAC net.HardwareAddr, src, dst net.IP, sport, dport uint16, ttl uint8, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: layers.IPProtocolUDP, SrcIP: src.To4(), DstIP: dst.To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatalf("serialize frame: %v", err)
	}
	return buf.Bytes()
}

// injectFrame sends a raw frame out of h's namespace end (AF_PACKET), as if
// h's stack had sent it.
func injectFrame(t testing.TB, h *host, frame []byte) {
	t.Helper()
	err := h.NS.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: h.PeerIndex()})
	})
	if err != nil {
		t.Fatalf("inject frame from %s: %v", h.name, err)
	}
}

// capturedFrame is a frame a packet socket saw arrive, with the VLAN tag the
// kernel took out of it (PACKET_AUXDATA) if it had one.
type capturedFrame struct {
	data      []byte
	vlanValid bool
	tci, tpid uint16
}

// frameCapture is a packet socket on a host's namespace end that records
// incoming frames.
type frameCapture struct {
	fd     int
	frames chan capturedFrame
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// captureFrames starts recording the frames arriving at h's namespace end,
// until the test ends.
func captureFrames(t testing.TB, h *host) *frameCapture {
	t.Helper()
	fd := -1
	err := h.NS.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		tv := unix.NsecToTimeval((20 * time.Millisecond).Nanoseconds())
		return errors.Join(
			unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1),
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
			unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: h.PeerIndex(), Protocol: htons(unix.ETH_P_ALL)}),
		)
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		t.Fatalf("capture on %s: %v", h.name, err)
	}
	c := &frameCapture{fd: fd, frames: make(chan capturedFrame, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *frameCapture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err != nil {
			continue // timeout: look at stop again
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f := capturedFrame{data: bytes.Clone(buf[:n])}
		cms, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, cm := range cms {
			if cm.Header.Level != unix.SOL_PACKET || cm.Header.Type != unix.PACKET_AUXDATA || len(cm.Data) < int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
				continue
			}
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&cm.Data[0]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
				f.vlanValid, f.tci, f.tpid = true, aux.Vlan_tci, aux.Vlan_tpid
			}
		}
		select {
		case c.frames <- f:
		default: // nobody is looking: drop
		}
	}
}

func (c *frameCapture) close() {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		unix.Close(c.fd)
	})
}

// udpTo returns the frames seen within timeout (at most n) that carry UDP to
// port, with their UDP payloads.
func (c *frameCapture) udpTo(port uint16, n int, timeout time.Duration) ([]capturedFrame, [][]byte) {
	var fs []capturedFrame
	var ps [][]byte
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(fs) < n {
		select {
		case f := <-c.frames:
			p := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default)
			if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && uint16(u.DstPort) == port {
				fs = append(fs, f)
				ps = append(ps, u.Payload)
			}
		case <-timer.C:
			return fs, ps
		}
	}
	return fs, ps
}

// quietIPv6 turns IPv6 off on the host's end of v: otherwise its router
// solicitations and MLD reports, sent seconds after the link comes up,
// reach the switch at times no test chooses (a test that counts frames,
// or asserts that nothing moved a counter, sees them; on a loaded machine
// they land inside its window). No test here speaks IPv6 through a host's
// stack; frames built by hand still can.
func quietIPv6(t testing.TB, v *testenv.Veth) {
	t.Helper()
	path := "/proc/sys/net/ipv6/conf/" + v.Peer.Attrs().Name + "/disable_ipv6"
	if err := v.NS.Do(func() error { return os.WriteFile(path, []byte("1"), 0o644) }); err != nil {
		t.Fatalf("disable IPv6 on %s: %v", v.Peer.Attrs().Name, err)
	}
}
