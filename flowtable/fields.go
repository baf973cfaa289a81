package flowtable

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Field is one field of a match in its text form: Name=Value, or a
// shorthand such as "udp" with an empty Value.
type Field struct {
	Name  string
	Value string // "" for a shorthand
}

// MaxPortNameLen is the longest port name, in bytes (IFNAMSIZ-1, as Linux).
const MaxPortNameLen = 15

// CheckPortName reports whether name can name a port in a flow: 1 to 15
// bytes, not "." or "..", and none of NUL, whitespace, '/', ',', ':', '='
// or '"' (the characters Linux refuses in a netdev name, plus the flow
// syntax's separators and quote); "in_port" is reserved, as in OVS. A name
// that reads as a number or a reserved port (LOCAL, ...) is allowed, and
// written quoted in flows (see PortRefOf). The error wraps ErrInvalid.
func CheckPortName(name string) error {
	if msg := portNameProblem(name); msg != "" {
		return fmt.Errorf("port name %q: %s: %w", name, msg, ErrInvalid)
	}
	return nil
}

func portNameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxPortNameLen:
		return fmt.Sprintf("longer than %d bytes", MaxPortNameLen)
	case name == "." || name == "..":
		return "not a name"
	case name == "in_port":
		return "reserved (output:in_port sends back out of the input port)"
	}
	if i := strings.IndexAny(name, "\x00 \t\n\v\f\r/,:=\""); i >= 0 {
		return fmt.Sprintf("contains %q", name[i])
	}
	return ""
}

// fieldGroup is the piece of the key a match field sets. Two fields of the
// same group in one match are an error even if they agree (tp_dst twice,
// nw_src and arp_spa); shorthands have no group and may repeat or overlap
// dl_type and nw_proto as long as they agree. Fields of different groups
// may share key bits (vlan_tci and dl_vlan) if they agree on them.
type fieldGroup uint8

const (
	groupNone fieldGroup = iota
	groupInPort
	groupDlSrc
	groupDlDst
	groupDlType
	groupVlanTCI
	groupVlanVID
	groupVlanPCP
	groupNwSrc
	groupNwDst
	groupNwProto
	groupNwTos
	groupNwEcn
	groupNwFrag
	groupTpSrc
	groupTpDst
	numFieldGroups
)

// groupBytes are the bytes of the key the fields of each group set (the
// shorthands, of no group, set dl_type and nw_proto), as offset and
// length; add merges a field into the match over these alone.
var groupBytes = [numFieldGroups][2]int{
	groupNone:    {steer.OffDlType, steer.OffNwProto + 1 - steer.OffDlType},
	groupInPort:  {0, 0}, // by name, in Match.InPort
	groupDlSrc:   {steer.OffDlSrc, 6},
	groupDlDst:   {steer.OffDlDst, 6},
	groupDlType:  {steer.OffDlType, 2},
	groupVlanTCI: {steer.OffVlanTCI, 2},
	groupVlanVID: {steer.OffVlanTCI, 2},
	groupVlanPCP: {steer.OffVlanTCI, 2},
	groupNwSrc:   {steer.OffNwSrc, 16},
	groupNwDst:   {steer.OffNwDst, 16},
	groupNwProto: {steer.OffNwProto, 1},
	groupNwTos:   {steer.OffNwTos, 1},
	groupNwEcn:   {steer.OffNwTos, 1},
	groupNwFrag:  {steer.OffNwFrag, 1},
	groupTpSrc:   {steer.OffTpSrc, 2},
	groupTpDst:   {steer.OffTpDst, 2},
}

// groupWords returns the 8-byte words [lo, hi) of the key that hold the
// bytes of group g.
func groupWords(g fieldGroup) (lo, hi int) {
	off, n := groupBytes[g][0], groupBytes[g][1]
	return off / 8, (off + n + 7) / 8
}

// matchField describes one match field of the text syntax. Its name is the
// one Fields prints; aliases (the OXM and NXM names, as ovs-ofctl takes
// them) parse the same way.
type matchField struct {
	name    string
	aliases []string
	group   fieldGroup
	// Shorthands (ip, tcp, ...) set dl_type and, if nwProto >= 0, nw_proto.
	short   bool
	dlType  uint16
	nwProto int
	// set parses a value into k and m (zero on entry) and returns what is
	// wrong with it, or "".
	set func(v string, k, m *Key) string
	// prereq is what the rest of the match must say for the field to be
	// allowed; needs says it in words for the error ("udp or tcp").
	prereq func(m *Match) bool
	needs  string
	// ovs says what Open vSwitch does when the prerequisite does not
	// hold, if not the usual (it drops the field from the match).
	ovs string
}

var matchFields = []*matchField{
	{name: "ip", short: true, dlType: etherTypeIPv4, nwProto: -1},
	{name: "ipv6", short: true, dlType: etherTypeIPv6, nwProto: -1},
	{name: "arp", short: true, dlType: etherTypeARP, nwProto: -1},
	{name: "rarp", short: true, dlType: etherTypeRARP, nwProto: -1},
	{name: "icmp", short: true, dlType: etherTypeIPv4, nwProto: ipProtoICMP},
	{name: "tcp", short: true, dlType: etherTypeIPv4, nwProto: ipProtoTCP},
	{name: "udp", short: true, dlType: etherTypeIPv4, nwProto: ipProtoUDP},
	{name: "icmp6", short: true, dlType: etherTypeIPv6, nwProto: ipProtoICMPv6},
	{name: "tcp6", short: true, dlType: etherTypeIPv6, nwProto: ipProtoTCP},
	{name: "udp6", short: true, dlType: etherTypeIPv6, nwProto: ipProtoUDP},

	{name: "in_port", group: groupInPort}, // held as written in Match.InPort
	{name: "dl_src", aliases: []string{"eth_src"}, group: groupDlSrc, set: setMAC(steer.OffDlSrc)},
	{name: "dl_dst", aliases: []string{"eth_dst"}, group: groupDlDst, set: setMAC(steer.OffDlDst)},
	{name: "dl_type", aliases: []string{"eth_type"}, group: groupDlType, set: setDlType},
	{name: "vlan_tci", group: groupVlanTCI, set: setVlanTCI},
	{name: "dl_vlan", group: groupVlanVID, set: setDlVlan},
	{name: "vlan_vid", group: groupVlanVID, set: setVlanVID},
	{name: "dl_vlan_pcp", aliases: []string{"vlan_pcp"}, group: groupVlanPCP, set: setDlVlanPCP},

	{name: "nw_src", aliases: []string{"ip_src"}, group: groupNwSrc, set: setIPv4(steer.OffNwSrc), prereq: matchIsIPv4OrARP, needs: "ip, arp or rarp"},
	{name: "nw_dst", aliases: []string{"ip_dst"}, group: groupNwDst, set: setIPv4(steer.OffNwDst), prereq: matchIsIPv4OrARP, needs: "ip, arp or rarp"},
	{name: "nw_proto", aliases: []string{"ip_proto"}, group: groupNwProto, set: setUint(steer.OffNwProto, 1, 0xff), prereq: matchIsL3, needs: "ip, ipv6, arp or rarp"},
	{name: "nw_tos", group: groupNwTos, set: setNwTos, prereq: matchIsIP, needs: "ip or ipv6"},
	{name: "ip_dscp", group: groupNwTos, set: setIPDSCP, prereq: matchIsIP, needs: "ip or ipv6"},
	{name: "nw_ecn", aliases: []string{"ip_ecn"}, group: groupNwEcn, set: setNwEcn, prereq: matchIsIP, needs: "ip or ipv6"},
	{name: "nw_frag", aliases: []string{"ip_frag"}, group: groupNwFrag, set: setNwFrag, prereq: matchIsIP, needs: "ip or ipv6"},
	{name: "ipv6_src", group: groupNwSrc, set: setIPv6(steer.OffNwSrc), prereq: matchIsIPv6, needs: "ipv6"},
	{name: "ipv6_dst", group: groupNwDst, set: setIPv6(steer.OffNwDst), prereq: matchIsIPv6, needs: "ipv6"},
	{name: "arp_spa", group: groupNwSrc, set: setIPv4(steer.OffNwSrc), prereq: matchIsARP, needs: "arp or rarp"},
	{name: "arp_tpa", group: groupNwDst, set: setIPv4(steer.OffNwDst), prereq: matchIsARP, needs: "arp or rarp"},
	{name: "arp_op", group: groupNwProto, set: setARPOp, prereq: matchIsARP, needs: "arp or rarp"},

	{name: "tp_src", group: groupTpSrc, set: setTpPort(steer.OffTpSrc), prereq: matchIsTCPUDP, needs: "udp or tcp"},
	{name: "tp_dst", group: groupTpDst, set: setTpPort(steer.OffTpDst), prereq: matchIsTCPUDP, needs: "udp or tcp"},
	{name: "tcp_src", group: groupTpSrc, set: setTpPort(steer.OffTpSrc), prereq: matchIsTCP, needs: "tcp", ovs: "on udp Open vSwitch reads tcp_src as tp_src; write tp_src or udp_src"},
	{name: "tcp_dst", group: groupTpDst, set: setTpPort(steer.OffTpDst), prereq: matchIsTCP, needs: "tcp", ovs: "on udp Open vSwitch reads tcp_dst as tp_dst; write tp_dst or udp_dst"},
	{name: "udp_src", group: groupTpSrc, set: setTpPort(steer.OffTpSrc), prereq: matchIsUDP, needs: "udp", ovs: "on tcp Open vSwitch reads udp_src as tp_src; write tp_src or tcp_src"},
	{name: "udp_dst", group: groupTpDst, set: setTpPort(steer.OffTpDst), prereq: matchIsUDP, needs: "udp", ovs: "on tcp Open vSwitch reads udp_dst as tp_dst; write tp_dst or tcp_dst"},
	{name: "icmp_type", group: groupTpSrc, set: setICMP(steer.OffTpSrc), prereq: matchIsICMP, needs: "icmp or icmp6"},
	{name: "icmp_code", group: groupTpDst, set: setICMP(steer.OffTpDst), prereq: matchIsICMP, needs: "icmp or icmp6"},
	{name: "icmpv4_type", group: groupTpSrc, set: setICMP(steer.OffTpSrc), prereq: matchIsICMPv4, needs: "icmp"},
	{name: "icmpv4_code", group: groupTpDst, set: setICMP(steer.OffTpDst), prereq: matchIsICMPv4, needs: "icmp"},
	{name: "icmpv6_type", group: groupTpSrc, set: setICMP(steer.OffTpSrc), prereq: matchIsICMPv6, needs: "icmp6"},
	{name: "icmpv6_code", group: groupTpDst, set: setICMP(steer.OffTpDst), prereq: matchIsICMPv6, needs: "icmp6"},
}

// matchFieldNamed returns the match field name (its name or an alias)
// names, or nil.
func matchFieldNamed(name string) *matchField {
	tf, _ := textFields.lookup(name)
	return tf.match
}

// Prerequisites, on the final match.

func matchDlType(m *Match) (uint16, bool) {
	if binary.BigEndian.Uint16(m.Mask[steer.OffDlType:]) != 0xffff {
		return 0, false
	}
	return binary.BigEndian.Uint16(m.Key[steer.OffDlType:]), true
}

func matchNwProto(m *Match) (uint8, bool) {
	return m.Key[steer.OffNwProto], m.Mask[steer.OffNwProto] == 0xff
}

func matchIsDlType(m *Match, t uint16) bool {
	dt, ok := matchDlType(m)
	return ok && dt == t
}

func matchIsIPv4(m *Match) bool { return matchIsDlType(m, etherTypeIPv4) }
func matchIsIPv6(m *Match) bool { return matchIsDlType(m, etherTypeIPv6) }
func matchIsARP(m *Match) bool {
	return matchIsDlType(m, etherTypeARP) || matchIsDlType(m, etherTypeRARP)
}
func matchIsIP(m *Match) bool        { return matchIsIPv4(m) || matchIsIPv6(m) }
func matchIsIPv4OrARP(m *Match) bool { return matchIsIPv4(m) || matchIsARP(m) }
func matchIsL3(m *Match) bool        { return matchIsIP(m) || matchIsARP(m) }

func matchIsProto(m *Match, p uint8) bool {
	np, ok := matchNwProto(m)
	return ok && np == p && matchIsIP(m)
}

func matchIsTCP(m *Match) bool { return matchIsProto(m, ipProtoTCP) }
func matchIsUDP(m *Match) bool { return matchIsProto(m, ipProtoUDP) }

func matchIsICMPv4(m *Match) bool {
	np, ok := matchNwProto(m)
	return ok && matchIsIPv4(m) && np == ipProtoICMP
}
func matchIsICMPv6(m *Match) bool {
	np, ok := matchNwProto(m)
	return ok && matchIsIPv6(m) && np == ipProtoICMPv6
}

func matchIsTCPUDP(m *Match) bool {
	return matchIsProto(m, ipProtoTCP) || matchIsProto(m, ipProtoUDP)
}

func matchIsICMP(m *Match) bool { return matchIsICMPv4(m) || matchIsICMPv6(m) }

// Value syntax.

// parseNum parses a decimal number or, with a 0x prefix, a hex one.
func parseNum(s string, max uint64) (uint64, string) {
	if v, ok := parseDecimal(s); ok {
		if v > max {
			return 0, fmt.Sprintf("out of range 0..%d", max)
		}
		return v, ""
	}
	base, digits := 10, s
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, digits = 16, s[2:]
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Sprintf("out of range 0..%d", max)
		}
		return 0, "not a number"
	}
	if v > max {
		return 0, fmt.Sprintf("out of range 0..%d", max)
	}
	return v, ""
}

// parseDecimal is parseNum's fast path, for the numbers nearly every
// flow gives: 1 to 19 decimal digits, which cannot overflow. Anything
// else is for strconv to read.
func parseDecimal(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + uint64(d)
	}
	return v, true
}

func parseMAC(s string) ([6]byte, bool) {
	var mac [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return mac, false
	}
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return mac, false
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return mac, false
		}
		mac[i] = byte(v)
	}
	return mac, true
}

func parseIPv4(s string) (netip.Addr, bool) {
	a, err := parseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// parseAddr is netip.ParseAddr, with a fast path for the dotted IPv4
// address nearly every flow gives.
func parseAddr(s string) (netip.Addr, error) {
	if a, ok := parseDotted4(s); ok {
		return netip.AddrFrom4(a), nil
	}
	return netip.ParseAddr(s)
}

// parseDotted4 reads A.B.C.D, each 0..255 in decimal without a leading
// zero: a strict subset of what netip.ParseAddr takes as IPv4, and read
// the same. false says nothing: netip.ParseAddr has the last word.
func parseDotted4(s string) (a [4]byte, ok bool) {
	field, n, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			if digits == 1 && n == 0 { // a leading zero
				return a, false
			}
			n, digits = n*10+int(c-'0'), digits+1
			if n > 255 {
				return a, false
			}
		case c == '.' && digits > 0 && field < 3:
			a[field] = byte(n)
			field, n, digits = field+1, 0, 0
		default:
			return a, false
		}
	}
	if field != 3 || digits == 0 {
		return a, false
	}
	a[3] = byte(n)
	return a, true
}

// parseAddrMasked parses ADDR, ADDR/PREFIXLEN or ADDR/MASK for an address of
// n bytes (4 or 16) into value and mask.
func parseAddrMasked(s string, n int) (val, mask [16]byte, msg string) {
	addrStr, maskStr, masked := strings.Cut(s, "/")
	kind := "IPv4"
	if n == 16 {
		kind = "IPv6"
	}
	a, err := parseAddr(addrStr)
	if err != nil || (n == 4) != a.Is4() || a.Zone() != "" {
		return val, mask, "not an " + kind + " address"
	}
	copy(val[:], a.AsSlice())
	switch {
	case !masked:
		for i := range n {
			mask[i] = 0xff
		}
	case maskStr != "" && allDigits(maskStr):
		plen, err := strconv.Atoi(maskStr)
		if err != nil || plen > n*8 {
			return val, mask, fmt.Sprintf("prefix length out of range 0..%d", n*8)
		}
		for i := range plen {
			mask[i/8] |= 0x80 >> (i % 8)
		}
	default:
		ma, err := parseAddr(maskStr)
		if err != nil || (n == 4) != ma.Is4() || ma.Zone() != "" {
			return val, mask, "not an " + kind + " mask"
		}
		copy(mask[:], ma.AsSlice())
	}
	for i := range n {
		val[i] &= mask[i]
	}
	return val, mask, ""
}

func setMAC(off int) func(v string, k, m *Key) string {
	return func(v string, k, m *Key) string {
		addr, maskStr, masked := strings.Cut(v, "/")
		val, ok := parseMAC(addr)
		if !ok {
			return "not a MAC address"
		}
		mask := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		if masked {
			if mask, ok = parseMAC(maskStr); !ok {
				return "not a MAC mask"
			}
		}
		for i := range 6 {
			k[off+i] = val[i] & mask[i]
			m[off+i] = mask[i]
		}
		return ""
	}
}

func setIPv4(off int) func(v string, k, m *Key) string {
	return func(v string, k, m *Key) string {
		val, mask, msg := parseAddrMasked(v, 4)
		copy(k[off:off+4], val[:4])
		copy(m[off:off+4], mask[:4])
		return msg
	}
}

func setIPv6(off int) func(v string, k, m *Key) string {
	return func(v string, k, m *Key) string {
		val, mask, msg := parseAddrMasked(v, 16)
		copy(k[off:off+16], val[:])
		copy(m[off:off+16], mask[:])
		return msg
	}
}

// putUint stores v in n bytes (1 or 2) at off, big-endian.
func putUint(k *Key, off, n int, v uint64) {
	if n == 1 {
		k[off] = byte(v)
		return
	}
	binary.BigEndian.PutUint16(k[off:], uint16(v))
}

// setUint is an exact match on an n-byte number up to max.
func setUint(off, n int, max uint64) func(v string, k, m *Key) string {
	return func(v string, k, m *Key) string {
		x, msg := parseNum(v, max)
		if msg != "" {
			return msg
		}
		putUint(k, off, n, x)
		putUint(m, off, n, 1<<(8*n)-1)
		return ""
	}
}

func setTpPort(off int) func(v string, k, m *Key) string {
	return func(v string, k, m *Key) string {
		vs, ms, masked := strings.Cut(v, "/")
		x, msg := parseNum(vs, 0xffff)
		if msg != "" {
			return msg
		}
		mask := uint64(0xffff)
		if masked {
			if mask, msg = parseNum(ms, 0xffff); msg != "" {
				return "mask " + msg
			}
		}
		putUint(k, off, 2, x&mask)
		putUint(m, off, 2, mask)
		return ""
	}
}

// setICMP: the ICMP type and code are one byte, stored as a 16-bit field
// (tp_src / tp_dst) whose high byte is zero.
func setICMP(off int) func(v string, k, m *Key) string {
	return func(v string, k, m *Key) string {
		x, msg := parseNum(v, 0xff)
		if msg != "" {
			return msg
		}
		putUint(k, off, 2, x)
		putUint(m, off, 2, 0xffff)
		return ""
	}
}

func setDlType(v string, k, m *Key) string {
	x, msg := parseNum(v, 0xffff)
	if msg == "" {
		msg = dlTypeProblem(uint16(x))
	}
	if msg != "" {
		return msg
	}
	putUint(k, steer.OffDlType, 2, x)
	putUint(m, steer.OffDlType, 2, 0xffff)
	return ""
}

// dlTypeProblem refuses the values below 0x0600 but 0x05ff: they are 802.3
// lengths, which a frame's dl_type never is.
func dlTypeProblem(t uint16) string {
	if t < etherTypeMin && t != dlTypeNone {
		return "an 802.3 length, which no frame's dl_type is (802.3 frames have dl_type 0x05ff, or their SNAP type; Open vSwitch would take a flow that never matches)"
	}
	return ""
}

// vlanNone is dl_vlan's value for "no VLAN tag", as in OVS.
const vlanNone = 0xffff

func setDlVlan(v string, k, m *Key) string {
	x, msg := parseNum(v, 0xffff)
	if msg == "" && x > 0x0fff && x != vlanNone {
		msg = fmt.Sprintf("out of range 0..4095 (Open vSwitch would keep the low 12 bits: dl_vlan=%d)", x&0x0fff)
	}
	if msg != "" {
		return msg + " (or 0xffff for no VLAN)"
	}
	if x == vlanNone {
		putUint(m, steer.OffVlanTCI, 2, 0xffff)
		return ""
	}
	putUint(k, steer.OffVlanTCI, 2, steer.VlanPresent|x)
	putUint(m, steer.OffVlanTCI, 2, steer.VlanPresent|0x0fff)
	return ""
}

func setDlVlanPCP(v string, k, m *Key) string {
	x, msg := parseLowBits(v, 3)
	if msg != "" {
		return msg
	}
	putUint(k, steer.OffVlanTCI, 2, x<<13|steer.VlanPresent)
	putUint(m, steer.OffVlanTCI, 2, 0xe000|steer.VlanPresent)
	return ""
}

// parseLowBits parses a field of bits bits; for a larger value the message
// says the low bits Open vSwitch would keep of it.
func parseLowBits(v string, bits int) (uint64, string) {
	x, msg := parseNum(v, math.MaxUint64)
	max := uint64(1)<<bits - 1
	if msg == "" && x > max {
		msg = fmt.Sprintf("out of range 0..%d (Open vSwitch would keep the low %d bits: %d)", max, bits, x&max)
	}
	return x, msg
}

// parseMasked16 parses N or N/MASK (16 bits), the value masked.
func parseMasked16(v string) (val, mask uint16, msg string) {
	vs, ms, masked := strings.Cut(v, "/")
	x, msg := parseNum(vs, 0xffff)
	if msg != "" {
		return 0, 0, msg
	}
	mk := uint64(0xffff)
	if masked {
		if mk, msg = parseNum(ms, 0xffff); msg != "" {
			return 0, 0, "mask " + msg
		}
	}
	return uint16(x & mk), uint16(mk), ""
}

// setVlanTCI is NXM's vlan_tci: the outer tag's TCI with the CFI (DEI)
// bit standing for "a tag is present", 0 for untagged frames, maskable.
func setVlanTCI(v string, k, m *Key) string {
	val, mask, msg := parseMasked16(v)
	if msg != "" {
		return msg
	}
	if val&steer.VlanPresent == 0 && val&^steer.VlanPresent != 0 && mask&steer.VlanPresent != 0 {
		return fmt.Sprintf("%#04x has VID or PCP bits without the 0x1000 present bit: only an untagged frame lacks the bit, and its vlan_tci is 0 (Open vSwitch would match untagged frames: vlan_tci=0x0000)", val)
	}
	putUint(k, steer.OffVlanTCI, 2, uint64(val))
	putUint(m, steer.OffVlanTCI, 2, uint64(mask))
	return ""
}

// setVlanVID is OpenFlow 1.2's vlan_vid: 0x1000 (OFPVID_PRESENT) | VID
// for a tagged frame, 0 for an untagged one, maskable.
func setVlanVID(v string, k, m *Key) string {
	val, mask, msg := parseMasked16(v)
	if msg != "" {
		return msg
	}
	if val > 0x1fff || mask > 0x1fff && mask != 0xffff {
		return "out of range: the VID with the 0x1000 present bit is at most 0x1fff"
	}
	if mask == 0xffff {
		mask = 0x1fff
	}
	switch {
	case val == 0 && mask == 0x1fff:
		// No tag: the same match as dl_vlan=0xffff.
		putUint(m, steer.OffVlanTCI, 2, 0xffff)
		return ""
	case val&steer.VlanPresent == 0 && mask&steer.VlanPresent != 0:
		return fmt.Sprintf("VID %d without the 0x1000 present bit: write vlan_vid=%#x (or dl_vlan=%d) for frames tagged with VID %d, vlan_vid=0 for untagged frames (Open vSwitch would match untagged frames)", val&0x0fff, val|steer.VlanPresent, val&0x0fff, val&0x0fff)
	}
	putUint(k, steer.OffVlanTCI, 2, uint64(val))
	putUint(m, steer.OffVlanTCI, 2, uint64(mask))
	return ""
}

// nwTosMask is the part of nw_tos that nw_tos and ip_dscp match: the DSCP
// bits, as in OVS; nwEcnMask is the rest, which nw_ecn matches.
const (
	nwTosMask = 0xfc
	nwEcnMask = 0x03
)

func setNwTos(v string, k, m *Key) string {
	x, msg := parseNum(v, 0xff)
	if msg != "" {
		return msg
	}
	if x&^nwTosMask != 0 {
		return fmt.Sprintf("the low 2 bits (ECN) must be zero; match them with nw_ecn (Open vSwitch would clear them: nw_tos=%d)", x&nwTosMask)
	}
	k[steer.OffNwTos], m[steer.OffNwTos] = byte(x), nwTosMask
	return ""
}

func setIPDSCP(v string, k, m *Key) string {
	x, msg := parseLowBits(v, 6)
	if msg != "" {
		return msg
	}
	k[steer.OffNwTos], m[steer.OffNwTos] = byte(x<<2), nwTosMask
	return ""
}

func setNwEcn(v string, k, m *Key) string {
	x, msg := parseLowBits(v, 2)
	if msg != "" {
		return msg
	}
	k[steer.OffNwTos], m[steer.OffNwTos] = byte(x), nwEcnMask
	return ""
}

// fragValues are nw_frag's values, with OVS's names and what OVS parses
// each name to (its frag_handling table, first match).
var fragValues = []struct {
	name        string
	value, mask uint8
}{
	{"no", 0, steer.FragAny | steer.FragLater},
	{"first", steer.FragAny, steer.FragAny | steer.FragLater},
	{"later", steer.FragAny | steer.FragLater, steer.FragAny | steer.FragLater},
	{"yes", steer.FragAny, steer.FragAny},
	{"not_later", 0, steer.FragLater},
}

func setNwFrag(v string, k, m *Key) string {
	for _, fv := range fragValues {
		if fv.name == v {
			k[steer.OffNwFrag], m[steer.OffNwFrag] = fv.value, fv.mask
			return ""
		}
	}
	return "want no, yes, first, later or not_later"
}

// fragName is the name of an nw_frag value and mask, or "".
func fragName(value, mask uint8) string {
	for _, fv := range fragValues {
		if fv.value == value && fv.mask == mask {
			return fv.name
		}
	}
	return ""
}

func setARPOp(v string, k, m *Key) string {
	x, msg := parseNum(v, 0xffff)
	if msg == "" && x > 0xff {
		msg = fmt.Sprintf("out of range 0..255: an opcode above 255 reads as 0 (Open vSwitch would match arp_op=%d, the low byte)", x&0xff)
	}
	if msg != "" {
		return msg
	}
	k[steer.OffNwProto], m[steer.OffNwProto] = byte(x), 0xff
	return ""
}

// Printing.

// maxFields bounds the fields a match prints as (Fields), for the buffers
// printers keep on the stack: more would only cost an allocation.
const maxFields = 16

// fieldWriter appends a match's fields to a buffer as text, name[=value]
// joined by commas. With spans set it also notes where each field starts,
// for Fields to cut them out. (The buffer is passed and returned, not
// kept here, so that a printer's buffer can stay on its stack.)
type fieldWriter struct {
	comma bool // write a comma before the next field
	spans *[]fieldSpan
}

// fieldSpan places one printed field: its name, where it starts in b and
// where its value does (-1 for a shorthand). The value ends at the comma
// before the next field, or at the end.
type fieldSpan struct {
	name   string
	at, lo int
}

// field appends the start of a field to b: a comma, if one is due, the
// name and (unless short) '='. The caller appends the value.
func (w *fieldWriter) field(b []byte, name string, short bool) []byte {
	if w.comma {
		b = append(b, ',')
	}
	w.comma = true
	at, lo := len(b), -1
	b = append(b, name...)
	if !short {
		b = append(b, '=')
		lo = len(b)
	}
	if w.spans != nil {
		*w.spans = append(*w.spans, fieldSpan{name, at, lo})
	}
	return b
}

// Fields returns the match as fields in canonical order: the shorthand (or
// dl_type and nw_proto when none fits), in_port, dl_vlan, dl_vlan_pcp,
// dl_src, dl_dst, the L3 addresses (nw_*, arp_* or ipv6_* after dl_type),
// nw_proto or arp_op, nw_tos, then tp_* or icmp_*. Values are canonical: a
// full mask is left out, a prefix mask is written /N, any other mask in
// full. An empty match has no fields. For a match that passes Check,
// ParseMatch of the fields joined with commas gives the same match back.
func (m *Match) Fields() []Field {
	var buf [maxFields]fieldSpan
	spans := buf[:0]
	w := fieldWriter{spans: &spans}
	s := string(m.appendFields(nil, &w)) // the values are cut from one string
	fs := make([]Field, len(spans))
	for i, sp := range spans {
		fs[i].Name = sp.name
		if sp.lo >= 0 {
			hi := len(s)
			if i+1 < len(spans) {
				hi = spans[i+1].at - 1
			}
			fs[i].Value = s[sp.lo:hi]
		}
	}
	return fs
}

// String returns the match in canonical text form (see Fields), e.g.
// "udp,in_port=p0,tp_dst=7999"; "" for a match that matches everything.
func (m *Match) String() string {
	var buf [96]byte
	return string(m.appendFields(buf[:0], &fieldWriter{}))
}

// appendFields appends the fields Fields returns to b, with no allocation
// of its own: a bulk save or dump prints every flow.
func (m *Match) appendFields(b []byte, w *fieldWriter) []byte {
	dlType, dlExact := matchDlType(m)
	proto, protoExact := matchNwProto(m)
	protoShown := false

	switch {
	case dlExact && (dlType == etherTypeIPv4 || dlType == etherTypeIPv6 || dlType == etherTypeARP || dlType == etherTypeRARP):
		name := shorthandName(dlType, proto, protoExact)
		protoShown = name != "ip" && name != "ipv6" && name != "arp" && name != "rarp"
		b = w.field(b, name, true)
	case !isZero(m.Mask[steer.OffDlType : steer.OffDlType+2]):
		b = w.field(b, "dl_type", false)
		v, mask := getUint(&m.Key, steer.OffDlType, 2), getUint(&m.Mask, steer.OffDlType, 2)
		b = appendHex(b, v, 4)
		if mask != 0xffff { // Check refuses it
			b = appendHex(append(b, '/'), mask, 4)
		}
	}
	if m.InPort != "" {
		b = w.field(b, "in_port", false)
		b = append(b, m.InPort...)
	}
	tci := binary.BigEndian.Uint16(m.Key[steer.OffVlanTCI:])
	switch tmask := binary.BigEndian.Uint16(m.Mask[steer.OffVlanTCI:]); {
	case tmask == 0:
	case tmask == 0xffff && tci == 0:
		b = w.field(b, "dl_vlan", false)
		b = append(b, "0xffff"...)
	case tmask == 0x1fff && tci&steer.VlanPresent != 0:
		b = w.field(b, "dl_vlan", false)
		b = strconv.AppendUint(b, uint64(tci&0x0fff), 10)
	case tmask == 0xffff && tci&steer.VlanPresent != 0:
		b = w.field(b, "dl_vlan", false)
		b = strconv.AppendUint(b, uint64(tci&0x0fff), 10)
		b = w.field(b, "dl_vlan_pcp", false)
		b = strconv.AppendUint(b, uint64(tci>>13), 10)
	case tmask == 0xf000 && tci&steer.VlanPresent != 0:
		b = w.field(b, "dl_vlan_pcp", false)
		b = strconv.AppendUint(b, uint64(tci>>13), 10)
	case tmask == 0xffff:
		b = w.field(b, "vlan_tci", false)
		b = appendHex(b, uint64(tci), 4)
	default:
		b = w.field(b, "vlan_tci", false)
		b = appendHex(append(appendHex(b, uint64(tci), 4), '/'), uint64(tmask), 4)
	}
	b = appendMACMasked(w, b, "dl_src", m, steer.OffDlSrc)
	b = appendMACMasked(w, b, "dl_dst", m, steer.OffDlDst)
	srcName, dstName, n := "nw_src", "nw_dst", 4
	switch {
	case dlExact && dlType == etherTypeIPv6:
		srcName, dstName, n = "ipv6_src", "ipv6_dst", 16
	case matchIsARP(m):
		srcName, dstName = "arp_spa", "arp_tpa"
	}
	b = appendAddrMasked(w, b, srcName, m, steer.OffNwSrc, n)
	b = appendAddrMasked(w, b, dstName, m, steer.OffNwDst, n)
	if m.Mask[steer.OffNwProto] != 0 && !protoShown {
		name := "nw_proto"
		if matchIsARP(m) {
			name = "arp_op"
		}
		b = w.field(b, name, false)
		b = appendUintMasked(b, m, steer.OffNwProto, 1)
	}
	tos, tmask := m.Key[steer.OffNwTos], m.Mask[steer.OffNwTos]
	switch {
	case tmask&^(nwTosMask|nwEcnMask) != 0, tmask&nwTosMask != 0 && tmask&nwTosMask != nwTosMask:
		b = w.field(b, "nw_tos", false) // Check refuses it
		b = appendDecHex(b, tos, tmask)
	default:
		if tmask&nwTosMask != 0 {
			b = w.field(b, "nw_tos", false)
			b = strconv.AppendUint(b, uint64(tos&nwTosMask), 10)
		}
		if tmask&nwEcnMask == nwEcnMask {
			b = w.field(b, "nw_ecn", false)
			b = strconv.AppendUint(b, uint64(tos&nwEcnMask), 10)
		} else if tmask&nwEcnMask != 0 {
			b = w.field(b, "nw_ecn", false) // Check refuses it
			b = appendDecHex(b, tos&nwEcnMask, tmask&nwEcnMask)
		}
	}
	if fm := m.Mask[steer.OffNwFrag]; fm != 0 {
		b = w.field(b, "nw_frag", false)
		if name := fragName(m.Key[steer.OffNwFrag], fm); name != "" {
			b = append(b, name...)
		} else {
			b = appendUintMasked(b, m, steer.OffNwFrag, 1) // Check refuses it
		}
	}
	tpSrc, tpDst := "tp_src", "tp_dst"
	if matchIsICMP(m) {
		tpSrc, tpDst = "icmp_type", "icmp_code"
	}
	if !isZero(m.Mask[steer.OffTpSrc : steer.OffTpSrc+2]) {
		b = w.field(b, tpSrc, false)
		b = appendUintMasked(b, m, steer.OffTpSrc, 2)
	}
	if !isZero(m.Mask[steer.OffTpDst : steer.OffTpDst+2]) {
		b = w.field(b, tpDst, false)
		b = appendUintMasked(b, m, steer.OffTpDst, 2)
	}
	return b
}

func shorthandName(dlType uint16, proto uint8, protoExact bool) string {
	switch dlType {
	case etherTypeARP:
		return "arp"
	case etherTypeRARP:
		return "rarp"
	case etherTypeIPv4:
		if protoExact {
			switch proto {
			case ipProtoICMP:
				return "icmp"
			case ipProtoTCP:
				return "tcp"
			case ipProtoUDP:
				return "udp"
			}
		}
		return "ip"
	default:
		if protoExact {
			switch proto {
			case ipProtoICMPv6:
				return "icmp6"
			case ipProtoTCP:
				return "tcp6"
			case ipProtoUDP:
				return "udp6"
			}
		}
		return "ipv6"
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func isOnes(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// prefixLen returns the length of mask as a prefix, or -1 if it is not one.
func prefixLen(mask []byte) int {
	n := 0
	for i, c := range mask {
		if c == 0xff {
			n += 8
			continue
		}
		l := bits.LeadingZeros8(^c)
		if c != byte(0xff<<(8-l)) || !isZero(mask[i+1:]) {
			return -1
		}
		return n + l
	}
	return n
}

func getUint(k *Key, off, n int) uint64 {
	if n == 1 {
		return uint64(k[off])
	}
	return uint64(binary.BigEndian.Uint16(k[off:]))
}

const hexDigits = "0123456789abcdef"

// appendHex appends v as 0x and at least digits lowercase hex digits, as
// fmt's %#0Nx does for N = digits+2 ("0x%04x").
func appendHex(b []byte, v uint64, digits int) []byte {
	b = append(b, '0', 'x')
	for n := max(1, (bits.Len64(v)+3)/4); n < digits; n++ {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, v, 16)
}

// appendDecHex appends v/0xMASK with v in decimal and the mask in two hex
// digits ("%d/0x%02x"), the form of a mask Check refuses.
func appendDecHex(b []byte, v, mask uint8) []byte {
	b = strconv.AppendUint(b, uint64(v), 10)
	return appendHex(append(b, '/'), uint64(mask), 2)
}

// appendUintMasked appends an n-byte number: decimal under a full mask,
// 0xVALUE/0xMASK otherwise.
func appendUintMasked(b []byte, m *Match, off, n int) []byte {
	v, mask := getUint(&m.Key, off, n), getUint(&m.Mask, off, n)
	if mask != 1<<(8*n)-1 {
		return appendHex(append(appendHex(b, v, 1), '/'), mask, 1)
	}
	return strconv.AppendUint(b, v, 10)
}

// appendMAC appends mac as six colon-separated pairs of hex digits.
func appendMAC(b []byte, mac []byte) []byte {
	for i, c := range mac[:6] {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

func fmtMAC(mac []byte) string {
	var buf [17]byte
	return string(appendMAC(buf[:0], mac))
}

// appendMACMasked appends field name for the MAC at off, if its mask is not
// zero.
func appendMACMasked(w *fieldWriter, b []byte, name string, m *Match, off int) []byte {
	mask := m.Mask[off : off+6]
	if isZero(mask) {
		return b
	}
	b = w.field(b, name, false)
	b = appendMAC(b, m.Key[off:off+6])
	if !isOnes(mask) {
		b = appendMAC(append(b, '/'), mask)
	}
	return b
}

// appendAddrMasked appends field name for the n-byte address at off, if its
// mask is not zero; bytes past n are not looked at (Check refuses a mask
// there for IPv4 and ARP).
func appendAddrMasked(w *fieldWriter, b []byte, name string, m *Match, off, n int) []byte {
	mask := m.Mask[off : off+n]
	if isZero(mask) {
		return b
	}
	b = w.field(b, name, false)
	addr, _ := netip.AddrFromSlice(m.Key[off : off+n])
	b = addr.AppendTo(b)
	switch l := prefixLen(mask); l {
	case n * 8:
	case -1:
		ma, _ := netip.AddrFromSlice(mask)
		b = ma.AppendTo(append(b, '/'))
	default:
		b = strconv.AppendUint(append(b, '/'), uint64(l), 10)
	}
	return b
}

// Checks on the model.

// Check reports whether m is a match the text syntax can express, which is
// what the classifiers and the XDP program can match: Key has no bit outside
// Mask; InPort is "" or a valid port reference and the in_port bytes of the
// mask are zero; dl_type and nw_proto are matched exactly or not at all, and
// dl_type is not an 802.3 length; a VLAN TCI with VID or PCP bits has the
// present bit if it matches that bit; nw_tos is matched on its DSCP bits,
// its ECN bits, or both; nw_frag is one of its named values; an IPv4 or ARP
// address uses only the first 4 bytes; ICMP type and code are exact
// one-byte values; the flags byte and padding are not matched; and every
// field's prerequisites hold (tp_dst needs udp or tcp, and so on). The
// error is a *ParseError naming the field, Column 0.
func (m *Match) Check() error {
	fail := func(field, format string, args ...any) error {
		return &ParseError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	var masked Key
	m.Key.And(&m.Mask, &masked)
	if masked != m.Key {
		return fail("", "match key has bits outside its mask")
	}
	if m.InPort != "" {
		if msg := portRefProblem(m.InPort); msg != "" {
			return fail("in_port", "bad value %q for in_port: %s", m.InPort, msg)
		}
		if c := canonicalPortRef(m.InPort); c != m.InPort {
			return fail("in_port", "in_port %q is not in canonical form %q", m.InPort, c)
		}
	}
	if !isZero(m.Mask[steer.OffInPort : steer.OffInPort+4]) {
		return fail("in_port", "in_port is matched by name, not in the mask")
	}
	if fv, fm := m.Key[steer.OffNwFrag], m.Mask[steer.OffNwFrag]; fm != 0 && fragName(fv, fm) == "" {
		return fail("nw_frag", "nw_frag %#x/%#x is not one of no, yes, first, later, not_later", fv, fm)
	}
	if m.Mask[steer.OffFlags] != 0 || !isZero(m.Mask[steer.OffTpDst+2:]) {
		return fail("", "mask covers padding bytes")
	}
	if dm := binary.BigEndian.Uint16(m.Mask[steer.OffDlType:]); dm != 0 && dm != 0xffff {
		return fail("dl_type", "dl_type mask %#04x: dl_type is matched exactly or not at all", dm)
	} else if t, ok := matchDlType(m); ok {
		if msg := dlTypeProblem(t); msg != "" {
			return fail("dl_type", "dl_type %#04x: %s", t, msg)
		}
	}
	if pm := m.Mask[steer.OffNwProto]; pm != 0 && pm != 0xff {
		return fail("nw_proto", "nw_proto mask %#02x: nw_proto is matched exactly or not at all", pm)
	}
	tci, tmask := binary.BigEndian.Uint16(m.Key[steer.OffVlanTCI:]), binary.BigEndian.Uint16(m.Mask[steer.OffVlanTCI:])
	if tci&steer.VlanPresent == 0 && tci != 0 && tmask&steer.VlanPresent != 0 {
		return fail("vlan_tci", "vlan_tci %#04x/%#04x has VID or PCP bits without the present bit: it never matches", tci, tmask)
	}
	if tm := m.Mask[steer.OffNwTos]; tm != 0 && tm != nwTosMask && tm != nwEcnMask && tm != nwTosMask|nwEcnMask {
		return fail("nw_tos", "nw_tos mask %#02x: the DSCP bits (0xfc, nw_tos) and the ECN bits (0x03, nw_ecn) are matched whole or not at all", tm)
	}
	names := canonicalNames(m)
	if !matchIsIPv6(m) {
		for _, off := range []int{steer.OffNwSrc, steer.OffNwDst} {
			if !isZero(m.Mask[off+4 : off+16]) {
				name := names.src
				if off == steer.OffNwDst {
					name = names.dst
				}
				return fail(name, "%s mask covers more than an IPv4 address", name)
			}
		}
	}
	if matchIsICMP(m) {
		for _, off := range []int{steer.OffTpSrc, steer.OffTpDst} {
			v, mask := binary.BigEndian.Uint16(m.Key[off:]), binary.BigEndian.Uint16(m.Mask[off:])
			if mask != 0 && (mask != 0xffff || v > 0xff) {
				name := names.tpSrc
				if off == steer.OffTpDst {
					name = names.tpDst
				}
				return fail(name, "%s must be an exact value 0..255", name)
			}
		}
	}
	for _, r := range []struct {
		name string
		off  int
		n    int
	}{
		{names.src, steer.OffNwSrc, 16},
		{names.dst, steer.OffNwDst, 16},
		{names.proto, steer.OffNwProto, 1},
		{"nw_tos", steer.OffNwTos, 1},
		{"nw_frag", steer.OffNwFrag, 1},
		{names.tpSrc, steer.OffTpSrc, 2},
		{names.tpDst, steer.OffTpDst, 2},
	} {
		if isZero(m.Mask[r.off : r.off+r.n]) {
			continue
		}
		if f := matchFieldNamed(r.name); !f.prereq(m) {
			return fail(r.name, "%s requires %s", r.name, f.needs)
		}
	}
	return nil
}

// fieldNames are the names Fields gives the shared parts of the key.
type fieldNames struct{ src, dst, proto, tpSrc, tpDst string }

func canonicalNames(m *Match) fieldNames {
	n := fieldNames{"nw_src", "nw_dst", "nw_proto", "tp_src", "tp_dst"}
	switch {
	case matchIsIPv6(m):
		n.src, n.dst = "ipv6_src", "ipv6_dst"
	case matchIsARP(m):
		n.src, n.dst, n.proto = "arp_spa", "arp_tpa", "arp_op"
	}
	if matchIsICMP(m) {
		n.tpSrc, n.tpDst = "icmp_type", "icmp_code"
	}
	return n
}

// Covers reports whether m, used as a filter, selects other: every key bit
// m matches is matched by other too, with the same value, and other's
// in_port is m's when m names one. This is OVS's non-strict rule for
// del-flows and dump-flows: the empty match covers every match, and a match
// covers itself.
func (m *Match) Covers(other *Match) bool {
	if m.InPort != "" && m.InPort != other.InPort {
		return false
	}
	for i := 0; i < steer.KeyLen; i += 8 {
		mm := binary.LittleEndian.Uint64(m.Mask[i:])
		om := binary.LittleEndian.Uint64(other.Mask[i:])
		mk := binary.LittleEndian.Uint64(m.Key[i:])
		ok := binary.LittleEndian.Uint64(other.Key[i:])
		if mm&^om != 0 || ok&mm != mk {
			return false
		}
	}
	return true
}
