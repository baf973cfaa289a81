package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/testenv"
)

// onesSum is the folded one's complement sum of b (RFC 1071) plus initial.
func onesSum(b []byte, initial uint32) uint16 {
	sum := initial
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// checkFrame fails unless frame is an Ethernet/IPv4/UDP frame of size bytes
// whose IPv4 header and UDP checksums verify, and returns its UDP header.
func checkFrame(t *testing.T, frame []byte, size int) *layers.UDP {
	t.Helper()
	if len(frame) != size {
		t.Fatalf("frame is %d bytes, want %d", len(frame), size)
	}
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip == nil || udp == nil {
		t.Fatalf("not Ethernet/IPv4/UDP: %v", p)
	}
	if s := onesSum(frame[ethLen:ethLen+ipv4Len], 0); s != 0xffff {
		t.Errorf("IPv4 header checksum does not verify (sum %#04x)", s)
	}
	if int(ip.Length) != size-ethLen || int(udp.Length) != size-ethLen-ipv4Len {
		t.Errorf("lengths: ip %d udp %d for a %d-byte frame", ip.Length, udp.Length, size)
	}
	if udp.Checksum != 0 {
		seg := frame[udpOff:]
		pseudo := uint32(onesSum(frame[ethLen+12:ethLen+20], 0)) + uint32(layers.IPProtocolUDP) + uint32(len(seg))
		if s := onesSum(seg, pseudo); s != 0xffff {
			t.Errorf("UDP checksum %#04x does not verify (sum %#04x)", udp.Checksum, s)
		}
	}
	return udp
}

func testSpec() frameSpec {
	return frameSpec{
		SrcMAC:  net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		DstMAC:  net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
		SrcIP:   netip.MustParseAddr("10.100.0.1"),
		DstIP:   netip.MustParseAddr("10.100.0.2"),
		SrcPort: 1024,
		DstPort: 7999,
		Size:    64,
	}
}

func TestBuildFrame(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*frameSpec)
		ok     bool
	}{
		{"64 bytes", func(*frameSpec) {}, true},
		{"minimum 60", func(s *frameSpec) { s.Size = 60 }, true},
		{"odd size", func(s *frameSpec) { s.Size = 77 }, true},
		{"maximum 1514", func(s *frameSpec) { s.Size = 1514 }, true},
		{"high ports", func(s *frameSpec) { s.SrcPort, s.DstPort = 65535, 65534 }, true},
		{"too small", func(s *frameSpec) { s.Size = 59 }, false},
		{"too big", func(s *frameSpec) { s.Size = 1515 }, false},
		{"IPv6 source", func(s *frameSpec) { s.SrcIP = netip.MustParseAddr("fd00::1") }, false},
		{"no destination", func(s *frameSpec) { s.DstIP = netip.Addr{} }, false},
		{"short MAC", func(s *frameSpec) { s.DstMAC = s.DstMAC[:4] }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			tt.modify(&spec)
			frame, err := buildFrame(spec)
			if !tt.ok {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			udp := checkFrame(t, frame, spec.Size)
			if udp.Checksum == 0 {
				t.Error("UDP checksum not computed")
			}
			if uint16(udp.SrcPort) != spec.SrcPort || uint16(udp.DstPort) != spec.DstPort {
				t.Errorf("ports %d -> %d, want %d -> %d", udp.SrcPort, udp.DstPort, spec.SrcPort, spec.DstPort)
			}
			if !bytes.Equal(frame[0:6], spec.DstMAC) || !bytes.Equal(frame[6:12], spec.SrcMAC) {
				t.Errorf("MACs %x", frame[:12])
			}
		})
	}
}

// TestBlastProgramRewrite runs the source program in ordinary test-run mode
// (no frames sent), feeding each output back in as live-frames mode does
// with a recycled page, and checks the port sequence and checksums.
func TestBlastProgramRewrite(t *testing.T) {
	testenv.RequireRoot(t)
	tests := []struct {
		name      string
		flows     int
		base      uint16
		zeroCsum  bool // a frame without a UDP checksum keeps none
		wantPorts []uint16
		wantDst   []uint16 // nil: the crafted destination port throughout
	}{
		{"one flow", 1, 1024, false, []uint16{1024, 1024, 1024}, nil},
		{"three flows", 3, 5000, false, []uint16{5000, 5001, 5002, 5000, 5001, 5002, 5000}, nil},
		{"wrap at 65535", 2, 65534, false, []uint16{65534, 65535, 65534}, nil},
		{"checksum zero", 4, 2000, true, []uint16{2000, 2001, 2002, 2003, 2000}, nil},
		{"many flows", 1000, 10000, false, []uint16{10000, 10001, 10002}, nil},
		{"past port 65535", 5, 65534, false, []uint16{65534, 65535, 65534, 65535, 65534, 65534},
			[]uint16{7999, 7999, 8000, 8000, 8001, 7999}},
		{"past port 65535 checksum zero", 3, 65535, true, []uint16{65535, 65535, 65535, 65535},
			[]uint16{7999, 8000, 8001, 7999}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			spec.SrcPort = tt.base
			frame, err := buildFrame(spec)
			if err != nil {
				t.Fatal(err)
			}
			if tt.zeroCsum {
				binary.BigEndian.PutUint16(frame[udpCsumOff:], 0)
			}
			b, err := newBlaster(1, tt.flows, frame)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			crafted := bytes.Clone(frame)
			for i, want := range tt.wantPorts {
				out := make([]byte, len(frame))
				ret, err := b.prog.Run(&ebpf.RunOptions{Data: frame, DataOut: out})
				if err != nil {
					t.Fatal(err)
				}
				if ret != 4 {
					t.Fatalf("run %d returned %d, want XDP_REDIRECT (4)", i, ret)
				}
				udp := checkFrame(t, out, len(frame))
				if !bytes.Equal(out[:udpSportOff], crafted[:udpSportOff]) {
					t.Fatalf("run %d: headers not as crafted:\n got %x\nwant %x", i, out[:udpOff+udpLen], crafted[:udpOff+udpLen])
				}
				wantDst := spec.DstPort
				if tt.wantDst != nil {
					wantDst = tt.wantDst[i]
				}
				if uint16(udp.SrcPort) != want || uint16(udp.DstPort) != wantDst {
					t.Errorf("run %d: ports %d -> %d, want %d -> %d", i, udp.SrcPort, udp.DstPort, want, wantDst)
				}
				if gs, gd := flowPorts(i%tt.flows, tt.base, spec.DstPort); gs != want || gd != wantDst {
					t.Errorf("flowPorts(%d) = %d -> %d, want %d -> %d", i%tt.flows, gs, gd, want, wantDst)
				}
				if tt.zeroCsum != (udp.Checksum == 0) {
					t.Errorf("run %d: UDP checksum %#04x", i, udp.Checksum)
				}
				// What a switch's XDP rewrite leaves in the page (a new
				// destination port and MAC) is undone by the next run.
				out[0] ^= 0xff
				binary.BigEndian.PutUint16(out[udpOff+2:], 7998)
				frame = out
			}
			if n, err := b.Runs(); err != nil || n != uint64(len(tt.wantPorts)) {
				t.Errorf("Runs() = %d, %v; want %d", n, err, len(tt.wantPorts))
			}
		})
	}
}

func TestNewBlasterBadFlows(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flows int
		base  uint16
	}{
		{"zero", 0, 1024},
		{"past destination port 65535", 2*(65536-7999) + 1, 65534},
		{"past a 32-bit immediate", 1 << 31, 1024},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			spec.SrcPort = tt.base
			frame, err := buildFrame(spec)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := newBlaster(1, tt.flows, frame); err == nil {
				b.Close()
				t.Fatal("want an error")
			}
		})
	}
}

func TestBlastBadArgs(t *testing.T) {
	req := []string{"--dev", "lo", "--dst-mac", "02:00:00:00:00:02", "--src-ip", "10.100.0.1", "--dst-ip", "10.100.0.2", "--dst-port", "7999"}
	tests := []struct {
		name string
		args []string
	}{
		{"no flags", nil},
		{"no dev", req[2:]},
		{"bad mac", append(append([]string{}, req...), "--dst-mac", "zz")},
		{"bad ip", append(append([]string{}, req...), "--src-ip", "fd00::1")},
		{"port too big", append(append([]string{}, req...), "--dst-port", "70000")},
		{"size too small", append(append([]string{}, req...), "--size", "20")},
		{"zero seconds", append(append([]string{}, req...), "--seconds", "0")},
		{"batch too big", append(append([]string{}, req...), "--batch", "1000")},
		{"negative rate", append(append([]string{}, req...), "--rate", "-1")},
		{"no such device", append(append([]string{}, req...), "--dev", "xvs-nosuchdev")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(append([]string{"blast"}, tt.args...), &bytes.Buffer{}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

// chatter bounds the frames a fresh veth sends by itself (IPv6 ND, MLD).
const chatter = 100

var offeredRE = regexp.MustCompile(`offered (\d+) frames`)

// parseCount returns the first number of the line of out that re matches.
func parseCount(t *testing.T, re *regexp.Regexp, out string) uint64 {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in %q", re, out)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBlastOverVeth sends live frames out of a veth end and counts them
// with an XDP program on its peer in another namespace.
func TestBlastOverVeth(t *testing.T) {
	ns := testenv.NewNS(t)
	v := testenv.NewVeth(t, ns, "xb", testenv.VethOptions{})
	var c *xdpCounter
	if err := ns.Do(func() (err error) {
		c, err = attachCounter(v.PeerIndex(), xdpDrop, 0, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"flat out", nil},
		{"four flows", []string{"--flows", "4", "--size", "128"}},
		{"rate limited", []string{"--rate", "20000"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := c.Count()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			args := append([]string{"blast", "--dev", v.LocalName(), "--dst-mac", v.PeerMAC.String(),
				"--src-ip", "10.100.0.1", "--dst-ip", "10.100.0.2", "--dst-port", "7999", "--seconds", "0.3"}, tt.args...)
			if err := run(args, &out); err != nil {
				t.Fatal(err)
			}
			offered := parseCount(t, offeredRE, out.String())
			after, err := c.Count()
			if err != nil {
				t.Fatal(err)
			}
			got := after - before
			// veth drops what its ring cannot take, so some loss is fine;
			// none arriving, or more than offered, is not (the kernel's
			// own IPv6 chatter on a fresh link adds a few frames).
			if got == 0 || got > offered+chatter {
				t.Fatalf("peer counted %d frames of %d offered (%s)", got, offered, strings.TrimSpace(out.String()))
			}
			// At 20000/s the first quarter second's burst is 5000 frames,
			// the second (at 0.25s) 5000 more; flat out would be millions.
			if strings.Contains(tt.name, "rate") && offered > 10000 {
				t.Errorf("rate 20000/s for 0.3s offered %d frames", offered)
			}
		})
	}
}
