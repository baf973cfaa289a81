package flowtable

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/layers"
)

// TestOVSDocFlows: flow files copied from Open vSwitch's documentation
// (testdata/ovs/docs-*.flows) load unchanged, their port numbers bound to
// ports p1..p6 (ofports 1..6), and do what the documents say they do.
func TestOVSDocFlows(t *testing.T) {
	ports := map[string]uint32{}
	for i := uint32(1); i <= 6; i++ {
		ports[fmt.Sprintf("p%d", i)] = i
	}
	names := PortNamer(func(n uint32) (string, bool) {
		if n >= 1 && n <= 6 {
			return fmt.Sprintf("p%d", n), true
		}
		return "", false
	})
	ipTo := func(dst string) []byte {
		return dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("192.168.0.9", dst, layers.IPProtocolUDP), dpUDP(1, 2), dpPayload)
	}
	arp := dpFrame(t, nil, layers.EthernetTypeARP, &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: dpMacA, SourceProtAddress: []byte{192, 168, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 168, 0, 2}})
	tagged := func(vid uint16) []byte {
		return dpFrame(t, []dpTag{{tpid: 0x8100, vid: vid}}, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), dpUDP(1, 2), dpPayload)
	}
	multicastSrc := dpUDP4Frame(t)
	multicastSrc[6] |= 1

	type check struct {
		name   string
		frame  []byte
		inPort uint32
		out    []uint32 // ports the packet leaves on, in order; nil: none
		saw    string   // if not "", an action the trace must show
		hit    string   // if not "", a flow the trace must match, as Flow.String
	}
	tests := []struct {
		file   string
		checks []check
	}{
		{"docs-tutorial.flows", []check{
			{name: "multicast source dropped in table 0", frame: multicastSrc, inPort: 1},
			{name: "access port tags with VLAN 20, table 2 is empty", frame: dpUDP4Frame(t), inPort: 2, saw: "mod_vlan_vid:20"},
			{name: "tagged frame on an access port dropped", frame: tagged(5), inPort: 3, hit: "table=1,priority=0,actions=drop"},
			{name: "trunk port takes tagged frames", frame: tagged(5), inPort: 1, hit: "table=1,priority=99,in_port=p1,actions=resubmit(,2)"},
			{name: "priority-tagged frame accepted on port 2", frame: tagged(0), inPort: 2, saw: "mod_vlan_vid:20"},
		}},
		{"docs-faq-hosts.flows", []check{
			{name: "ip to the other host", frame: ipTo("192.168.0.2"), inPort: 1, out: []uint32{2}},
			{name: "ip elsewhere dropped", frame: ipTo("192.168.0.7"), inPort: 1},
			{name: "arp passes", frame: arp, inPort: 2, out: []uint32{1}},
			{name: "broadcast passes", frame: func() []byte {
				f := ipTo("192.168.0.7")
				copy(f, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
				return f
			}(), inPort: 1, out: []uint32{2}},
		}},
		{"docs-faq-examples.flows", []check{
			{name: "everything dropped at priority 65535", frame: dpUDP4Frame(t), inPort: 2},
		}},
		{"docs-dpdk.flows", []check{
			{name: "port 1 to 3 (the later flow replaced 1 to 2)", frame: dpUDP4Frame(t), inPort: 1, out: []uint32{3}},
			{name: "port 2 to 4", frame: dpUDP4Frame(t), inPort: 2, out: []uint32{4}},
			{name: "port 4 to 2", frame: dpUDP4Frame(t), inPort: 4, out: []uint32{2}},
		}},
	}
	for _, ft := range tests {
		t.Run(ft.file, func(t *testing.T) {
			lines := readLines(t, filepath.Join("testdata", "ovs", ft.file))
			var c Change
			for i, line := range lines {
				f, err := ParseFlow(line)
				if err != nil {
					t.Fatalf("line %d %q: %v", i+1, line, err)
				}
				if field, err := f.BindPortNumbers(names); err != nil {
					t.Fatalf("line %d %q: %s: %v", i+1, line, field, err)
				}
				c.Add = append(c.Add, f)
			}
			tbl, err := NewTable().Apply(c, dpPortMap(ports))
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			for _, ck := range ft.checks {
				tr := tbl.Trace(ck.frame, ck.inPort)
				var out []uint32
				for _, o := range tr.Outputs {
					if o.Output {
						out = append(out, o.Port)
					}
				}
				if fmt.Sprint(out) != fmt.Sprint(ck.out) {
					t.Errorf("%s: outputs %v, want %v", ck.name, out, ck.out)
				}
				if ck.saw != "" && !traceSaw(tr, ck.saw) {
					t.Errorf("%s: no %s in %+v", ck.name, ck.saw, tr.Steps)
				}
				if ck.hit != "" && !traceHit(tr, ck.hit) {
					t.Errorf("%s: no flow %s in %+v", ck.name, ck.hit, tr.Steps)
				}
			}
		})
	}
}

// traceSaw reports whether the trace ran action.
func traceSaw(tr *Trace, action string) bool {
	for _, s := range tr.Steps {
		if s.Kind == TraceAction && s.Action == action {
			return true
		}
	}
	return false
}

// traceHit reports whether a lookup of the trace matched flow.
func traceHit(tr *Trace, flow string) bool {
	for _, s := range tr.Steps {
		if s.Kind == TraceLookup && s.Flow != nil && s.Flow.String() == flow {
			return true
		}
	}
	return false
}
