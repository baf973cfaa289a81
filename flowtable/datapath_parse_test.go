package flowtable

import (
	"bytes"
	"testing"

	"github.com/google/gopacket/layers"
)

// TestParsedFlowsEndToEnd installs flows written in the text syntax and
// switches real frames through them: extract, lookup, run.
func TestParsedFlowsEndToEnd(t *testing.T) {
	texts := []string{
		"priority=100,udp,in_port=p1,tp_dst=53,actions=mod_tp_dst:5353,mod_nw_dst:10.9.9.9,output:p2",
		"priority=90,ip,nw_dst=10.0.0.0/24,actions=dec_ttl,mod_vlan_vid:7,output:p3",
		"priority=80,ip,actions=kernel",
		"priority=70,ipv6,actions=drop",
	}
	var fl []*Flow
	for _, s := range texts {
		f, err := ParseFlow(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		fl = append(fl, f)
	}
	tb := dpApply(t, NewTable(), Change{Add: fl}, dpPorts)
	tests := []struct {
		name   string
		in     []byte
		inPort uint32
		flow   uint64 // 0: none
		outs   []Output
		want   []byte // the frame at the last output
	}{
		{"udp 53 from p1", dpUDP4Spec.build(t), 1, 1,
			[]Output{{Kind: OutPort, Port: 2, Last: true}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.dport, s.dst = 5353, "10.9.9.9" }).build(t)},
		{"udp 53 from p2: in_port does not match", dpUDP4Spec.build(t), 2, 2,
			[]Output{{Kind: OutPort, Port: 3, Last: true}},
			dpWith(dpUDP4Spec, func(s *dpSpec) { s.ttl, s.tags = 63, []dpTag{{tpid: 0x8100, vid: 7}} }).build(t)},
		{"ttl 1: dropped by dec_ttl", dpWith(dpTCP4Spec, func(s *dpSpec) { s.ttl = 1 }).build(t), 4, 2,
			[]Output{{Kind: OutDrop, Reason: DropDecTTLZero}}, nil},
		{"other ipv4: kernel", dpWith(dpTCP4Spec, func(s *dpSpec) { s.dst = "10.0.1.1" }).build(t), 1, 3,
			[]Output{{Kind: OutKernel}}, nil},
		{"ipv6: drop", dpTCP6Spec.build(t), 1, 4, []Output{{Kind: OutDrop, Reason: DropActions}}, nil},
		{"arp: no flow", dpFrame(t, nil, layers.EthernetTypeARP, &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: 1, SourceHwAddress: dpMacA, SourceProtAddress: []byte{1, 2, 3, 4}, DstHwAddress: dpMacB, DstProtAddress: []byte{5, 6, 7, 8}}), 1, 0, nil, nil},
	}
	c := NewCache(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := dpPacket(tt.in, 16, 0, tt.inPort)
			var k Key
			var lay Layout
			if ExtractLayout(pkt.Frame(), tt.inPort, &k, &lay) != ParseOK {
				t.Fatal("malformed")
			}
			e := c.Lookup(tb, &k).Entry()
			if tt.flow == 0 {
				if e != nil {
					t.Fatalf("matched flow %d", e.Flow.ID)
				}
				return
			}
			if e == nil || e.Flow.ID != tt.flow {
				t.Fatalf("flow %v, want %d", flowID(e), tt.flow)
			}
			steps := dpRunAll(t, &e.Program, &pkt, &lay)
			var outs []Output
			for _, s := range steps {
				outs = append(outs, s.out)
			}
			if len(outs) != len(tt.outs) || outs[0] != tt.outs[0] {
				t.Fatalf("outputs %+v, want %+v", outs, tt.outs)
			}
			if tt.want != nil && !bytes.Equal(steps[len(steps)-1].frame, tt.want) {
				t.Fatalf("frame\n got %x\nwant %x", steps[len(steps)-1].frame, tt.want)
			}
		})
	}
	// The steering table agrees: redirect, pass, drop.
	st, err := tb.Steering(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		var k Key
		Extract(tt.in, tt.inPort, &k)
		rule, ok := refSteer(st, &k)
		e := tb.Lookup(&k)
		if ok != (e != nil) || ok && (rule.Verdict != e.Verdict() || rule.Flow != e.Flow.ID) {
			t.Fatalf("%s: steering %+v %v, flow %v", tt.name, rule, ok, flowID(e))
		}
	}
}
