package flowtable

import "encoding/binary"

// Incremental Internet checksum updates (RFC 1624). A rewrite changes a few
// 16-bit words of a header; the checksum is patched from the old and new
// values of those words instead of summing the packet again. Equation 3 of
// RFC 1624, HC' = ~(~HC + ~m + m'), is used throughout: it never turns a
// valid checksum into 0x0000 from -0 arithmetic, except where the sum really
// is zero (which UDP then writes as 0xffff).

// csumFold folds a 32-bit one's complement accumulator to 16 bits.
func csumFold(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}

// csumReplace16 returns checksum c after one 16-bit word covered by it
// changed from old to new.
func csumReplace16(c, old, new uint16) uint16 {
	return ^csumFold(uint32(^c) + uint32(^old) + uint32(new))
}

// csumReplace32 returns checksum c after a 32-bit value (two aligned 16-bit
// words) covered by it changed from old to new.
func csumReplace32(c uint16, old, new uint32) uint16 {
	s := uint32(^c) +
		uint32(^uint16(old>>16)) + uint32(^uint16(old)) +
		uint32(uint16(new>>16)) + uint32(uint16(new))
	return ^csumFold(s)
}

// patchCsum16 applies csumReplace16 to the big-endian checksum at b[0:2].
func patchCsum16(b []byte, old, new uint16) {
	binary.BigEndian.PutUint16(b, csumReplace16(binary.BigEndian.Uint16(b), old, new))
}

// patchCsum32 applies csumReplace32 to the big-endian checksum at b[0:2].
func patchCsum32(b []byte, old, new uint32) {
	binary.BigEndian.PutUint16(b, csumReplace32(binary.BigEndian.Uint16(b), old, new))
}
