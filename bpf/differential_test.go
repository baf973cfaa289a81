package bpf

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
)

// The invariant the whole switch rests on: the XDP classifier and the Go
// classifier agree on every packet. A packet the kernel redirects must find
// its flow in userspace; a packet it passes or drops must be one userspace
// would pass or drop. This test loads random flow tables into both (the
// kernel through the same incremental sync the datapath does), runs random
// packets through both, and compares the parsed key, the verdict and the
// winning rank. Packets come from small value sets, so the kernel's
// exact-match cache answers many of them, across every sync: a stale entry
// shows as a disagreement.

// Small value universes, shared by flows and packets, so that packets hit
// flows often and ties and overlaps are common.
var (
	dMACs  = []string{"02:00:00:00:00:01", "02:00:00:00:00:02", "ff:ff:ff:ff:ff:ff"}
	dIPs   = []string{"10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2"}
	dIP6s  = []string{"fd00::1", "fd00::2", "fd00:0:0:1::1"}
	dPorts = []uint16{53, 80, 7999, 1234}
	dTOS   = []uint8{0, 0x20, 0xb8}
	dVLANs = []uint16{10, 20}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// templates each produce the match part of a flow; a fixed set keeps the
// number of distinct masks under the kernel's 32 (with and without in_port).
var templates = []func(r *rand.Rand) string{
	func(r *rand.Rand) string { return "" },
	func(r *rand.Rand) string { return "udp,tp_dst=" + fmt.Sprint(pick(r, dPorts)) },
	func(r *rand.Rand) string { return "tcp,tp_dst=" + fmt.Sprint(pick(r, dPorts)) },
	func(r *rand.Rand) string {
		return "udp,tp_src=" + fmt.Sprint(pick(r, dPorts)) + ",tp_dst=0x1f00/0xff00"
	},
	func(r *rand.Rand) string { return "ip,nw_dst=" + pick(r, dIPs) },
	func(r *rand.Rand) string { return "ip,nw_src=" + pick(r, []string{"10.0.0.0/24", "10.0.1.0/24"}) },
	func(r *rand.Rand) string { return "ip,nw_tos=" + fmt.Sprint(pick(r, dTOS)) },
	func(r *rand.Rand) string { return "icmp,icmp_type=8" },
	func(r *rand.Rand) string { return "arp,arp_tpa=" + pick(r, dIPs) },
	func(r *rand.Rand) string {
		return "udp6,ipv6_dst=" + pick(r, dIP6s) + ",tp_dst=" + fmt.Sprint(pick(r, dPorts))
	},
	func(r *rand.Rand) string { return "dl_vlan=" + fmt.Sprint(pick(r, dVLANs)) },
	func(r *rand.Rand) string {
		return "dl_vlan=" + fmt.Sprint(pick(r, dVLANs)) + ",dl_vlan_pcp=" + fmt.Sprint(r.IntN(2))
	},
	func(r *rand.Rand) string { return "dl_dst=" + pick(r, dMACs) },
	func(r *rand.Rand) string { return "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00" },
}

func randomFlow(r *rand.Rand) string {
	var parts []string
	parts = append(parts, fmt.Sprintf("priority=%d", pick(r, []int{1, 10, 10, 100, 100, 200})))
	if r.IntN(3) == 0 {
		parts = append(parts, "in_port="+pick(r, []string{"pa", "pb"}))
	}
	if m := pick(r, templates)(r); m != "" {
		parts = append(parts, m)
	}
	parts = append(parts, "actions="+pick(r, []string{"output:pb", "output:pa", "drop", "kernel", "mod_dl_src:02:00:00:00:00:09,output:pb"}))
	return strings.Join(parts, ",")
}

func randomPacket(tb testing.TB, r *rand.Rand) []byte {
	tb.Helper()
	eth := &layers.Ethernet{
		SrcMAC: mustMAC(pick(r, dMACs[:2])),
		DstMAC: mustMAC(pick(r, dMACs)),
	}
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	next := &eth.EthernetType
	if r.IntN(4) == 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		tag := &layers.Dot1Q{VLANIdentifier: pick(r, dVLANs), Priority: uint8(r.IntN(2))}
		ls = append(ls, tag)
		next = &tag.Type
	}
	switch r.IntN(7) {
	case 0, 1, 2: // IPv4 UDP/TCP/ICMP
		*next = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: 64, TOS: pick(r, dTOS),
			SrcIP: net.ParseIP(pick(r, dIPs)), DstIP: net.ParseIP(pick(r, dIPs))}
		ls = append(ls, ip)
		switch r.IntN(3) {
		case 0:
			ip.Protocol = layers.IPProtocolUDP
			u := &layers.UDP{SrcPort: layers.UDPPort(pick(r, dPorts)), DstPort: layers.UDPPort(pick(r, append(dPorts, 0x1f42)))}
			u.SetNetworkLayerForChecksum(ip)
			ls = append(ls, u)
		case 1:
			ip.Protocol = layers.IPProtocolTCP
			t := &layers.TCP{SrcPort: layers.TCPPort(pick(r, dPorts)), DstPort: layers.TCPPort(pick(r, dPorts)), DataOffset: 5}
			t.SetNetworkLayerForChecksum(ip)
			ls = append(ls, t)
		default:
			ip.Protocol = layers.IPProtocolICMPv4
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(uint8(pick(r, []int{0, 8})), 0)})
		}
		ls = append(ls, gopacket.Payload(make([]byte, r.IntN(40))))
	case 3: // IPv6 UDP
		*next = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP(pick(r, dIP6s)), DstIP: net.ParseIP(pick(r, dIP6s))}
		u := &layers.UDP{SrcPort: layers.UDPPort(pick(r, dPorts)), DstPort: layers.UDPPort(pick(r, dPorts))}
		u.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip, u, gopacket.Payload(make([]byte, 8)))
	case 4: // ARP
		*next = layers.EthernetTypeARP
		ls = append(ls, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: uint16(1 + r.IntN(2)),
			SourceHwAddress: mustMAC(dMACs[0]), SourceProtAddress: net.ParseIP(pick(r, dIPs)).To4(),
			DstHwAddress: make([]byte, 6), DstProtAddress: net.ParseIP(pick(r, dIPs)).To4()})
	case 5: // something else
		*next = 0x88b5
		ls = append(ls, gopacket.Payload(make([]byte, 46)))
	default: // a damaged IPv4 packet: truncated somewhere
		*next = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: net.ParseIP(pick(r, dIPs)), DstIP: net.ParseIP(pick(r, dIPs))}
		u := &layers.UDP{SrcPort: 1, DstPort: layers.UDPPort(pick(r, dPorts))}
		u.SetNetworkLayerForChecksum(ip)
		f := serialize(tb, append(ls, ip, u, gopacket.Payload(make([]byte, 10)))...)
		return f[:r.IntN(len(f)+1)]
	}
	return serialize(tb, ls...)
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestKernelAgreesWithGoClassifier(t *testing.T) {
	o := load(t, true)
	lo := loIndex(t)
	r := rand.New(rand.NewPCG(1, uint64(testingSeed(t))))
	ports := func(name string) (uint32, bool) {
		switch name {
		case "pa":
			return 1, true
		case "pb":
			return 2, true
		}
		return 0, false
	}
	table := flowtable.NewTable()
	var prev *steer.Table
	const rounds, packets = 30, 400
	var hits, checked, cached int
	for round := 0; round < rounds; round++ {
		// A new table: sometimes replaced whole, sometimes edited, so the
		// incremental sync sees adds, deletes, verdict and rank changes.
		var c flowtable.Change
		if round%3 == 0 {
			c.Replace = true
		} else {
			es := table.Entries()
			for i := 0; i < len(es)/4; i++ {
				c.Delete = append(c.Delete, es[r.IntN(len(es))].Flow.ID)
			}
			c.Delete = dedup(c.Delete)
		}
		for i, n := 0, 5+r.IntN(60); i < n; i++ {
			f, err := flowtable.ParseFlow(randomFlow(r))
			if err != nil {
				t.Fatalf("random flow: %v", err)
			}
			c.Add = append(c.Add, f)
		}
		nt, err := table.Apply(c, ports)
		if err != nil {
			t.Fatalf("round %d: apply: %v", round, err)
		}
		st, err := nt.Steering(prev)
		if err != nil {
			t.Fatalf("round %d: steering: %v", round, err)
		}
		d := flowtable.DiffSteering(prev, st)
		if err := o.DeleteRules(d.Delete); err != nil {
			t.Fatal(err)
		}
		if err := o.PutRules(d.PutEarly); err != nil {
			t.Fatal(err)
		}
		if err := o.PutRules(d.PutLate); err != nil {
			t.Fatal(err)
		}
		if err := o.SetMasks(d.Masks); err != nil {
			t.Fatal(err)
		}
		table, prev = nt, st

		inPort := uint32(1 + round%2)
		if err := o.SetPort(lo, inPort); err != nil {
			t.Fatal(err)
		}
		// Each frame comes back a few times: the exact-match cache
		// answers the repeats it may keep.
		pool := make([][]byte, packets/4)
		for i := range pool {
			pool[i] = randomPacket(t, r)
		}
		for i := 0; i < packets; i++ {
			frame := pool[r.IntN(len(pool))]
			var k steer.Key
			status := flowtable.Extract(frame, inPort, &k)
			res, err := o.TestRun(frame, lo, 0)
			if err != nil {
				t.Fatalf("test run: %v", err)
			}
			if res.Malformed != (status == flowtable.ParseMalformed) {
				t.Fatalf("round %d: malformed: kernel %v, Go %v, frame %x", round, res.Malformed, status, frame)
			}
			if status == flowtable.ParseMalformed {
				if res.Action != ActionPass {
					t.Fatalf("malformed frame got %v from the kernel", res.Action)
				}
				continue
			}
			if res.Cached {
				cached++
			}
			if res.Key != k {
				t.Fatalf("round %d: keys differ for frame %x:\nkernel %x\nGo     %x", round, frame, res.Key, k)
			}
			want, wantRank := steer.VerdictPass, steer.Rank(0)
			e := table.Lookup(&k)
			if e != nil {
				want, wantRank = e.Verdict(), e.Rank
				hits++
			}
			got, gotRank := steer.VerdictPass, steer.Rank(0)
			if res.Hit {
				got, gotRank = res.Verdict, res.Rank
			}
			if got != want || gotRank != wantRank {
				t.Fatalf("round %d: frame %x: kernel says %v (rank %#x), Go says %v (rank %#x, flow %v)",
					round, frame, got, uint64(gotRank), want, uint64(wantRank), flowString(e))
			}
			// No socket and no records: redirect and forward fall back to
			// the kernel.
			wantAction := map[steer.Verdict]Action{steer.VerdictPass: ActionPass, steer.VerdictDrop: ActionDrop,
				steer.VerdictRedirect: ActionPass, steer.VerdictForward: ActionPass}[want]
			if res.Action != wantAction {
				t.Fatalf("verdict %v gave action %v", want, res.Action)
			}
			checked++
		}
	}
	t.Logf("%d packets compared over %d tables, %d matched a flow, %d answered by the exact-match cache", checked, rounds, hits, cached)
	if hits < checked/10 {
		t.Fatalf("only %d of %d packets hit a flow: the test would not see disagreements", hits, checked)
	}
	if cached < checked/10 {
		t.Fatalf("only %d of %d packets were answered by the exact-match cache: the test would not see it go stale", cached, checked)
	}
}

func flowString(e *flowtable.Entry) string {
	if e == nil {
		return "none"
	}
	return e.Flow.String()
}

func dedup(ids []uint64) []uint64 {
	seen := map[uint64]bool{}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// testingSeed returns a seed that differs between runs and is logged, so a
// failure can be replayed with XVS_SEED.
func testingSeed(t *testing.T) int64 {
	seed := seedFromEnv()
	t.Logf("seed %d (set XVS_SEED to replay)", seed)
	return seed
}
