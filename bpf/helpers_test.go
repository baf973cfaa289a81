package bpf

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/flowtable/steer"
	"github.com/xvs-project/xvs/testenv"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	ip4A = netip.MustParseAddr("192.0.2.1")
	ip4B = netip.MustParseAddr("198.51.100.7")
	ip6A = netip.MustParseAddr("2001:db8::1")
	ip6B = netip.MustParseAddr("2001:db8:ffff::abcd")
)

// load loads the program (with the trace map when trace is set) and closes
// it when the test ends.
func load(tb testing.TB, trace bool) *Objects {
	tb.Helper()
	testenv.RequireRoot(tb)
	o, err := LoadWith(Options{Trace: trace})
	if err != nil {
		tb.Fatalf("load: %+v", err)
	}
	tb.Cleanup(func() {
		if err := o.Close(); err != nil {
			tb.Errorf("close objects: %v", err)
		}
	})
	return o
}

// loIndex is the loopback's ifindex: a device every namespace has, good
// for test runs that need no traffic.
func loIndex(tb testing.TB) int {
	tb.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		tb.Fatalf("find lo: %v", err)
	}
	return lo.Index
}

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{DstMAC: macB, SrcMAC: macA, EthernetType: t}
}

func ipv4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, TOS: 0xb9, Protocol: proto,
		SrcIP: ip4A.AsSlice(), DstIP: ip4B.AsSlice()}
}

func ipv6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, TrafficClass: 0x2d, HopLimit: 64, NextHeader: next,
		SrcIP: ip6A.AsSlice(), DstIP: ip6B.AsSlice()}
}

func udp(src, dst uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(src), DstPort: layers.UDPPort(dst)}
}

func tcp(src, dst uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(src), DstPort: layers.TCPPort(dst), SYN: true, Window: 1024}
}

// udp4Frame is Ethernet/IPv4/UDP from A to B.
func udp4Frame(tb testing.TB, src, dst uint16) []byte {
	ip := ipv4(layers.IPProtocolUDP)
	u := udp(src, dst)
	_ = u.SetNetworkLayerForChecksum(ip)
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip, u, gopacket.Payload("hello"))
}

// fields builds an expected key; zero fields stay zero.
type fields struct {
	port         uint32
	l2           bool // dl_dst = macB, dl_src = macA
	dlType, tci  uint16
	proto        uint8
	tos, frag    uint8
	nwSrc, nwDst netip.Addr
	tpSrc, tpDst uint16
	flags        uint8 // steer.Flag*
}

func (f fields) key() steer.Key {
	var k steer.Key
	k.SetInPort(f.port)
	if f.l2 {
		copy(k[steer.OffDlDst:], macB)
		copy(k[steer.OffDlSrc:], macA)
	}
	binary.BigEndian.PutUint16(k[steer.OffDlType:], f.dlType)
	binary.BigEndian.PutUint16(k[steer.OffVlanTCI:], f.tci)
	k[steer.OffNwProto] = f.proto
	k[steer.OffNwTos] = f.tos
	k[steer.OffNwFrag] = f.frag
	k[steer.OffFlags] = f.flags
	if f.nwSrc.IsValid() {
		copy(k[steer.OffNwSrc:], f.nwSrc.AsSlice())
	}
	if f.nwDst.IsValid() {
		copy(k[steer.OffNwDst:], f.nwDst.AsSlice())
	}
	binary.BigEndian.PutUint16(k[steer.OffTpSrc:], f.tpSrc)
	binary.BigEndian.PutUint16(k[steer.OffTpDst:], f.tpDst)
	return k
}

// span is a run of key bytes a mask selects.
type span struct{ off, n int }

var (
	spanInPort  = span{steer.OffInPort, 4}
	spanDlType  = span{steer.OffDlType, 2}
	spanNwProto = span{steer.OffNwProto, 1}
	spanNwSrc4  = span{steer.OffNwSrc, 4}
	spanNwDst4  = span{steer.OffNwDst, 4}
	spanTpSrc   = span{steer.OffTpSrc, 2}
	spanTpDst   = span{steer.OffTpDst, 2}
)

func maskOf(spans ...span) steer.Key {
	var m steer.Key
	for _, s := range spans {
		for i := s.off; i < s.off+s.n; i++ {
			m[i] = 0xff
		}
	}
	return m
}

// ruleFor returns the rule under mask id with key k & mask.
func ruleFor(k steer.Key, id uint32, mask steer.Key, rank steer.Rank, v steer.Verdict) steer.Rule {
	r := steer.Rule{MaskID: id, Rank: rank, Verdict: v}
	k.And(&mask, &r.Key)
	return r
}

// counters reads the counters of ofport.
func counters(tb testing.TB, o *Objects, ofport uint32) [steer.NumCounters]CounterValue {
	tb.Helper()
	c, err := o.Counters(ofport)
	if err != nil {
		tb.Fatalf("counters: %v", err)
	}
	return c
}

// packets returns the packet counts of c.
func packets(c [steer.NumCounters]CounterValue) [steer.NumCounters]uint64 {
	var p [steer.NumCounters]uint64
	for i := range c {
		p[i] = c[i].Packets
	}
	return p
}

// testXSK is the least AF_XDP socket the kernel lets into an XSKMAP: a
// UMEM with fill and completion rings, an RX ring, bound in copy mode.
// Nothing ever fills the fill ring, so every frame redirected to it is
// dropped and counted in its rx_dropped statistic.
type testXSK struct {
	fd   int
	umem []byte
}

func newTestXSK(tb testing.TB, ifindex, queue int) *testXSK {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("xsk socket: %v", err)
	}
	x := &testXSK{fd: fd}
	tb.Cleanup(func() {
		unix.Close(x.fd)
		if x.umem != nil {
			_ = unix.Munmap(x.umem)
		}
	})
	const frames, frameSize = 16, 4096
	x.umem, err = unix.Mmap(-1, 0, frames*frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatalf("mmap umem: %v", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))), Len: frames * frameSize, Size: frameSize}
	if _, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); errno != 0 {
		tb.Fatalf("xsk umem reg: %v", errno)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, frames); err != nil {
			tb.Fatalf("xsk ring %d: %v", opt, err)
		}
	}
	sa := &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if err := unix.Bind(fd, sa); err != nil {
		tb.Fatalf("xsk bind ifindex %d queue %d: %v", ifindex, queue, err)
	}
	return x
}

func (x *testXSK) stats(tb testing.TB) unix.XDPStatistics {
	tb.Helper()
	var st unix.XDPStatistics
	n := uint32(unsafe.Sizeof(st))
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(x.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&n)), 0); errno != 0 {
		tb.Fatalf("xsk statistics: %v", errno)
	}
	return st
}
