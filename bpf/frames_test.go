package bpf

import (
	"encoding/binary"
	"math/rand/v2"
)

// frameSpec describes a frame for the fast path tests, built by hand so
// that every header field (IP options, fragment bits, a UDP checksum of 0,
// TTL 0) can be what a test wants. Checksums are correct unless a field
// says otherwise.
type frameSpec struct {
	tags     []uint16 // TPIDs of the VLAN tags, outermost first (0x8100, 0x88a8)
	tci      uint16   // TCI of every tag (PCP and VID)
	l3       uint16   // EtherType after the tags: 0x0800, 0x86dd, 0x0806 or anything
	proto    uint8    // 6, 17, 1 (58 over IPv6), or anything
	ttl      uint8    // TTL or hop limit
	tos      uint8    // TOS or traffic class
	options  int      // IPv4 option words (IHL - 5), 0..10
	frag     int      // 0: not a fragment; 1: first fragment (MF); 2: a later one
	udpZero  bool     // UDP checksum 0 (none)
	payload  int      // bytes after the L4 header
	src, dst [4]byte  // IPv4 addresses (IPv6: fd00::src, fd00::dst)
	sport    uint16   // L4 ports (ICMP: type and code)
	dport    uint16
}

func (s *frameSpec) build() []byte {
	f := []byte{0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a}
	for _, tpid := range s.tags {
		f = binary.BigEndian.AppendUint16(f, tpid)
		f = binary.BigEndian.AppendUint16(f, s.tci)
	}
	f = binary.BigEndian.AppendUint16(f, s.l3)
	switch s.l3 {
	case 0x0800:
		return append(f, s.ipv4()...)
	case 0x86dd:
		return append(f, s.ipv6()...)
	case 0x0806:
		arp := []byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0x0a}
		arp = append(arp, s.src[:]...)
		arp = append(arp, 0, 0, 0, 0, 0, 0)
		return append(append(f, arp...), s.dst[:]...)
	}
	return append(f, make([]byte, 46)...)
}

// l4 builds the transport header and payload with a zero checksum.
func (s *frameSpec) l4() []byte {
	var h []byte
	switch s.proto {
	case 6:
		h = make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], s.sport)
		binary.BigEndian.PutUint16(h[2:], s.dport)
		h[12] = 5 << 4
		h[13] = 0x02 // SYN
	case 17:
		h = make([]byte, 8)
		binary.BigEndian.PutUint16(h[0:], s.sport)
		binary.BigEndian.PutUint16(h[2:], s.dport)
		binary.BigEndian.PutUint16(h[4:], uint16(8+s.payload))
	case 1, 58:
		h = []byte{byte(s.sport), byte(s.dport), 0, 0, 0, 1, 0, 1}
	}
	for i := 0; i < s.payload; i++ {
		h = append(h, byte(i*7))
	}
	return h
}

// csumAt returns where the transport checksum of proto sits in its header,
// or -1.
func csumAt(proto uint8) int {
	switch proto {
	case 6:
		return 16
	case 17:
		return 6
	case 1, 58:
		return 2
	}
	return -1
}

func (s *frameSpec) ipv4() []byte {
	l4 := s.l4()
	hl := 20 + 4*s.options
	ip := make([]byte, hl)
	ip[0] = 0x40 | byte(hl/4)
	ip[1] = s.tos
	binary.BigEndian.PutUint16(ip[2:], uint16(hl+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	switch s.frag {
	case 1:
		binary.BigEndian.PutUint16(ip[6:], 0x2000)
	case 2:
		binary.BigEndian.PutUint16(ip[6:], 0x0003)
	}
	ip[8] = s.ttl
	ip[9] = s.proto
	copy(ip[12:], s.src[:])
	copy(ip[16:], s.dst[:])
	for i := 20; i < hl; i++ {
		ip[i] = 1 // NOP options
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(onesSum(0, ip)))
	if at := csumAt(s.proto); at >= 0 {
		var sum uint32
		if s.proto != 1 {
			pseudo := append(append(append([]byte{}, s.src[:]...), s.dst[:]...), 0, s.proto, byte(len(l4)>>8), byte(len(l4)))
			sum = onesSum(0, pseudo)
		}
		c := ^uint16(onesSum(sum, l4))
		if s.proto == 17 && c == 0 {
			c = 0xffff
		}
		if s.proto == 17 && s.udpZero {
			c = 0
		}
		binary.BigEndian.PutUint16(l4[at:], c)
	}
	return append(ip, l4...)
}

func (s *frameSpec) ipv6() []byte {
	proto := s.proto
	if proto == 1 {
		proto = 58
	}
	sp := *s
	sp.proto = proto
	l4 := sp.l4()
	ip := make([]byte, 40)
	ip[0] = 0x60 | s.tos>>4
	ip[1] = s.tos << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
	ip[6] = proto
	ip[7] = s.ttl
	ip[8], ip[9] = 0xfd, 0
	copy(ip[20:24], s.src[:])
	ip[24], ip[25] = 0xfd, 0
	copy(ip[36:40], s.dst[:])
	if at := csumAt(proto); at >= 0 {
		pseudo := append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, proto)
		c := ^uint16(onesSum(onesSum(0, pseudo), l4))
		if proto == 17 && c == 0 {
			c = 0xffff
		}
		if proto == 17 && s.udpZero {
			c = 0
		}
		binary.BigEndian.PutUint16(l4[at:], c)
	}
	return append(ip, l4...)
}

// onesSum adds b to the one's complement sum s (not yet complemented).
func onesSum(s uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return s
}

// headerEnds returns the offsets in f at which a header ends: the places
// to cut a frame short.
func (s *frameSpec) headerEnds() []int {
	ends := []int{0, 6, 12, 13}
	off := 12
	for range s.tags {
		ends = append(ends, off+2, off+4)
		off += 4
	}
	l3 := off + 2
	ends = append(ends, l3)
	switch s.l3 {
	case 0x0800:
		hl := 20 + 4*s.options
		ends = append(ends, l3+1, l3+10, l3+19, l3+20, l3+hl-1, l3+hl)
		ends = append(ends, l3+hl+2, l3+hl+4, l3+hl+7, l3+hl+8, l3+hl+19, l3+hl+20)
	case 0x86dd:
		ends = append(ends, l3+1, l3+8, l3+39, l3+40, l3+44, l3+47, l3+48, l3+59, l3+60)
	}
	return ends
}

// randomSpec picks a frame from small value sets, so that flows and frames
// meet the interesting cases often.
func randomSpec(r *rand.Rand) frameSpec {
	s := frameSpec{
		l3:      pick(r, []uint16{0x0800, 0x0800, 0x0800, 0x86dd, 0x86dd, 0x0806, 0x88b5}),
		proto:   pick(r, []uint8{6, 17, 17, 1, 47}),
		ttl:     pick(r, []uint8{0, 1, 2, 3, 64, 255}),
		tos:     pick(r, []uint8{0, 0x03, 0xb9, 0xfc}),
		payload: r.IntN(24),
		src:     [4]byte{10, 0, 0, byte(1 + r.IntN(2))},
		dst:     [4]byte{10, 0, 1, byte(1 + r.IntN(2))},
		sport:   pick(r, []uint16{53, 80, 7999, 0xffff}),
		dport:   pick(r, []uint16{53, 80, 7999, 0}),
		tci:     pick(r, []uint16{0x0010, 0xe00a, 0x1fff}),
	}
	switch r.IntN(6) {
	case 0:
		s.tags = []uint16{0x8100}
	case 1:
		s.tags = []uint16{0x88a8}
	case 2:
		s.tags = []uint16{0x88a8, 0x8100}
	case 3:
		if r.IntN(4) == 0 {
			s.tags = []uint16{0x8100, 0x8100, 0x8100}
		}
	}
	if s.l3 == 0x0800 {
		if r.IntN(4) == 0 {
			s.options = 1 + r.IntN(10)
		}
		if r.IntN(5) == 0 {
			s.frag = 1 + r.IntN(2)
		}
	}
	s.udpZero = s.proto == 17 && r.IntN(3) == 0
	return s
}
