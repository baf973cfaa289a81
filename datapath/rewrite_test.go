package datapath

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xvs-project/xvs/testenv"
)

// checksumErrors returns the counters a namespace's kernel bumps when it
// drops a frame for a bad UDP or IPv4 header checksum.
func checksumErrors(t testing.TB, ns *testenv.NS) (udp, ip uint64) {
	t.Helper()
	return snmp(t, ns, "Udp", "InCsumErrors"), snmp(t, ns, "Ip", "InHdrErrors")
}

// L3/L4 rewrites with incremental checksum updates: the receiving kernel
// takes every datagram (it drops a bad checksum and counts it), with the
// rewritten field as asked, and its checksum error counters stay put. Each
// case runs in userspace (the hosts' veth ends have GRO off, so the ports
// take no redirected frames) and in the XDP fast path (GRO on), where the
// pollers see none of the packets and the flow's counters are exact.
func TestRewriteL3L4(t *testing.T) {
	for _, fast := range []bool{false, true} {
		name := "userspace"
		if fast {
			name = "xdp"
		}
		t.Run(name, func(t *testing.T) { testRewriteL3L4(t, fast) })
	}
}

func testRewriteL3L4(t *testing.T, fast bool) {
	const n, size = 20, 333
	for _, tc := range []struct {
		name     string
		flow     string
		sendPort int // a sends to b on this port
		recvPort int // b listens here
		check    func(m udpMsg) error
	}{
		{
			name:     "mod_tp_dst",
			flow:     "priority=100,udp,in_port={a},tp_dst=7999,actions=mod_tp_dst:7998,output:{b}",
			sendPort: 7999, recvPort: 7998,
		},
		{
			name:     "mod_tp_src",
			flow:     "udp,in_port={a},tp_dst=7400,actions=mod_tp_src:5555,output:{b}",
			sendPort: 7400, recvPort: 7400,
			check: func(m udpMsg) error {
				if m.src.Port() != 5555 {
					return fmt.Errorf("source port %d, want 5555", m.src.Port())
				}
				return nil
			},
		},
		{
			name:     "mod_nw_src",
			flow:     "udp,in_port={a},tp_dst=7401,actions=mod_nw_src:10.231.1.77,output:{b}",
			sendPort: 7401, recvPort: 7401,
			check: func(m udpMsg) error {
				if m.src.Addr() != netip.MustParseAddr("10.231.1.77") {
					return fmt.Errorf("source address %v, want 10.231.1.77", m.src.Addr())
				}
				return nil
			},
		},
		{
			name:     "mod_nw_tos and mod_tp_dst",
			flow:     "udp,in_port={a},tp_dst=7402,actions=mod_nw_tos:0xb8,mod_tp_dst:7403,output:{b}",
			sendPort: 7402, recvPort: 7403,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, topoOptions{FastPath: fast})
			ids := tp.addFlows(t, tc.flow)
			sink := listenUDP(t, tp.b.NS, tp.b.ip, tc.recvPort)
			var other *udpSink // the unrewritten port: nothing may arrive there
			if tc.sendPort != tc.recvPort {
				other = listenUDP(t, tp.b.NS, tp.b.ip, tc.sendPort)
			}
			udpErr0, ipErr0 := checksumErrors(t, tp.b.NS)
			sendUDP(t, tp.a, tp.b.ip, tc.sendPort, n, seqPayload(size), sendOpts{})
			got := sink.collect(n, 5*time.Second)
			checkSeq(t, "a to b", got, n, size)
			for _, m := range got {
				if tc.check != nil {
					if err := tc.check(m); err != nil {
						t.Fatal(err)
					}
				}
			}
			if other != nil {
				if m := other.quiet(100 * time.Millisecond); len(m) > 0 {
					t.Fatalf("%d datagrams arrived at the port before the rewrite", len(m))
				}
			}
			if udpErr, ipErr := checksumErrors(t, tp.b.NS); udpErr != udpErr0 || ipErr != ipErr0 {
				t.Fatalf("b's checksum errors rose: udp InCsumErrors %d -> %d, ip InHdrErrors %d -> %d", udpErr0, udpErr, ipErr0, ipErr)
			}
			checkWhere(t, tp, ids[0], n, size, fast)
		})
	}

	// The counters above can tell: a frame with a bad UDP checksum, sent
	// through the same kind of rewrite, is dropped by b and counted.
	t.Run("bad checksum is counted", func(t *testing.T) {
		tp := newTopo(t, topoOptions{FastPath: fast})
		tp.addFlows(t, "priority=100,udp,in_port={a},tp_dst=7999,actions=mod_tp_dst:7998,output:{b}")
		sink := listenUDP(t, tp.b.NS, tp.b.ip, 7998)
		udpErr0, _ := checksumErrors(t, tp.b.NS)
		f := udpFrame(t, tp.a.PeerMAC, tp.b.PeerMAC, tp.a.ip, tp.b.ip, 40000, 7999, 64, []byte("good"))
		injectFrame(t, tp.a, f)
		if got := sink.collect(1, 5*time.Second); len(got) != 1 || string(got[0].data) != "good" {
			t.Fatalf("the well-formed injected frame did not arrive: %v", got)
		}
		f = udpFrame(t, tp.a.PeerMAC, tp.b.PeerMAC, tp.a.ip, tp.b.ip, 40000, 7999, 64, []byte("bad!"))
		f[14+20+6] ^= 0x5a // UDP checksum
		injectFrame(t, tp.a, f)
		eventually(t, 5*time.Second, func() bool {
			u, _ := checksumErrors(t, tp.b.NS)
			return u == udpErr0+1
		}, func() string {
			u, _ := checksumErrors(t, tp.b.NS)
			return fmt.Sprintf("b's udp InCsumErrors %d -> %d, want +1", udpErr0, u)
		})
		if got := sink.quiet(100 * time.Millisecond); len(got) > 0 {
			t.Fatalf("a datagram with a bad checksum arrived: %q", got[0].data)
		}
	})
}

// A frame to a MAC address b does not have is dropped by b (other host);
// mod_dl_dst with b's address makes it arrive.
func TestRewriteDlDst(t *testing.T) {
	const n, size = 10, 100
	tp := newTopo(t, topoOptions{})
	bogus := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	tp.a.AddNeigh(t, tp.b.ip, bogus)
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7300)

	tp.addFlows(t, "in_port={a},udp,tp_dst=7300,actions=output:{b}")
	tx0 := tp.stats(t, tp.b).TxPackets
	sendUDP(t, tp.a, tp.b.ip, 7300, n, seqPayload(size), sendOpts{})
	eventually(t, 5*time.Second, func() bool { return tp.stats(t, tp.b).TxPackets == tx0+n }, func() string {
		return fmt.Sprintf("port b sent %d frames, want %d", tp.stats(t, tp.b).TxPackets-tx0, n)
	})
	if got := sink.quiet(200 * time.Millisecond); len(got) > 0 {
		t.Fatalf("without mod_dl_dst, %d datagrams to %v arrived at b", len(got), bogus)
	}

	// Same priority and match: replaces the flow above.
	tp.addFlows(t, "in_port={a},udp,tp_dst=7300,actions=mod_dl_dst:{b.mac},output:{b}")
	if got := tp.sw.Flows(); len(got) != 1 {
		t.Fatalf("%d flows installed, want 1 (the second replaces the first)", len(got))
	}
	sendUDP(t, tp.a, tp.b.ip, 7300, n, seqPayload(size), sendOpts{})
	checkSeq(t, "with mod_dl_dst", sink.collect(n, 5*time.Second), n, size)
}

// push_vlan + mod_vlan_vid + mod_vlan_pcp tag a's untagged frames: b sees
// the tag (the kernel here has no 802.1Q support, so a packet socket reads
// the tag the receiving kernel took out of the frame, PACKET_AUXDATA).
// strip_vlan untags b's VLAN 100 frames so they arrive at a's UDP socket;
// without it, a drops them (tagged for a VLAN it does not have).
func TestRewriteVLAN(t *testing.T) {
	const n, size = 10, 200
	const port = 7200
	tp := newTopo(t, topoOptions{})
	atB := captureFrames(t, tp.b)
	atA := listenUDP(t, tp.a.NS, tp.a.ip, port)
	pay := seqPayload(size)

	// b's frames to a, tagged VLAN 100 (PCP 3), as a VLAN interface of b
	// would send them.
	tagged := func(i int) []byte {
		return withVLAN(udpFrame(t, tp.b.PeerMAC, tp.a.PeerMAC, tp.b.ip, tp.a.ip, 40000, port, 64, pay(i)), 3<<13|100)
	}

	for _, tc := range []struct {
		name  string
		flows []string
		tag   bool // a's frames arrive at b tagged; b's arrive at a
	}{
		{"without tag actions", []string{
			"in_port={a},udp,tp_dst=7200,actions=output:{b}",
			"in_port={b},dl_vlan=100,udp,actions=output:{a}",
		}, false},
		{"push and strip", []string{
			"in_port={a},udp,tp_dst=7200,actions=push_vlan:0x8100,mod_vlan_vid:100,mod_vlan_pcp:5,output:{b}",
			"in_port={b},dl_vlan=100,udp,actions=strip_vlan,output:{a}",
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Same priorities and matches: each case replaces the last one's flows.
			tp.addFlows(t, tc.flows...)
			if got := len(tp.sw.Flows()); got != 2 {
				t.Fatalf("%d flows installed, want 2", got)
			}
			sendUDP(t, tp.a, tp.b.ip, port, n, pay, sendOpts{})
			fs, ps := atB.udpTo(port, n, 5*time.Second)
			if len(fs) != n {
				t.Fatalf("%d of %d frames from a arrived at b", len(fs), n)
			}
			for i, f := range fs {
				if !bytes.Equal(ps[i], pay(i)) {
					t.Fatalf("frame %d from a damaged", i)
				}
				switch {
				case tc.tag && (!f.vlanValid || f.tpid != 0x8100 || f.tci != 5<<13|100):
					t.Fatalf("frame %d from a: tag valid %v tpid %#x tci %#x, want tpid 0x8100 tci %#x", i, f.vlanValid, f.tpid, f.tci, 5<<13|100)
				case !tc.tag && f.vlanValid:
					t.Fatalf("frame %d from a arrived tagged (tci %#x)", i, f.tci)
				}
			}

			st0 := tp.stats(t, tp.b)
			for i := range n {
				injectFrame(t, tp.b, tagged(i))
			}
			eventually(t, 5*time.Second, func() bool { return tp.stats(t, tp.b).RxPackets-st0.RxPackets == n }, func() string {
				return fmt.Sprintf("the switch took %d of b's %d tagged frames", tp.stats(t, tp.b).RxPackets-st0.RxPackets, n)
			})
			if !tc.tag {
				if got := atA.quiet(200 * time.Millisecond); len(got) > 0 {
					t.Fatalf("%d frames still tagged arrived at a's socket", len(got))
				}
				return
			}
			got := atA.collect(n, 5*time.Second)
			checkSeq(t, "b's vlan to a", got, n, size)
		})
	}
}

// dec_ttl: what arrives has one hop less than what was sent; a datagram
// sent with TTL 1 is dropped by the switch and counted.
func TestRewriteDecTTL(t *testing.T) {
	const n, size = 10, 100
	tp := newTopo(t, topoOptions{})
	tp.addFlows(t, "in_port={a},udp,tp_dst=7100,actions=dec_ttl,output:{b}")
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 7100)
	_, ipErr0 := checksumErrors(t, tp.b.NS)
	for _, ttl := range []int{64, 9, 2} {
		sendUDP(t, tp.a, tp.b.ip, 7100, n, seqPayload(size), sendOpts{TTL: ttl})
		got := sink.collect(n, 5*time.Second)
		checkSeq(t, fmt.Sprintf("ttl %d", ttl), got, n, size)
		for _, m := range got {
			if m.ttl != ttl-1 {
				t.Fatalf("sent with ttl %d, arrived with %d, want %d", ttl, m.ttl, ttl-1)
			}
		}
	}
	if _, ipErr := checksumErrors(t, tp.b.NS); ipErr != ipErr0 {
		t.Fatalf("b's ip InHdrErrors rose: %d -> %d", ipErr0, ipErr)
	}

	st0 := tp.stats(t, tp.a)
	sendUDP(t, tp.a, tp.b.ip, 7100, n, seqPayload(size), sendOpts{TTL: 1})
	eventually(t, 5*time.Second, func() bool { return tp.stats(t, tp.a).Drops[DropDecTTLZero]-st0.Drops[DropDecTTLZero] == n }, func() string {
		return fmt.Sprintf("dec_ttl_zero drops rose by %d, want %d", tp.stats(t, tp.a).Drops[DropDecTTLZero]-st0.Drops[DropDecTTLZero], n)
	})
	if got := sink.quiet(200 * time.Millisecond); len(got) > 0 {
		t.Fatalf("%d datagrams sent with ttl 1 arrived", len(got))
	}
	st := tp.stats(t, tp.a)
	if st.RxPackets-st0.RxPackets != n || st.Drops[DropDecTTLZero]-st0.Drops[DropDecTTLZero] != n {
		t.Fatalf("port a: %d received, %d dropped at ttl 1; want %d and %d", st.RxPackets-st0.RxPackets, st.Drops[DropDecTTLZero]-st0.Drops[DropDecTTLZero], n, n)
	}
}
