package flowtable

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The differential test of the pipeline: random multi-table pipelines with
// groups, random frames, and two ways of running them that must send the
// same frames to the same ports in the same order:
//
//   - the flat program the translation makes (Resolve / TranslateFrame),
//     run as a poller runs it, with clones on copies;
//   - a naive reference that walks the pipeline on the frame itself: each
//     action runs on the packet as it is, each goto_table and resubmit
//     extracts the key again from the rewritten frame and scans the
//     table's flows linearly, each bucket runs on its own copy.
//
// The translation predicts how rewrites change the key instead of
// re-extracting it; this test is what holds it to the frame's truth.

// refOut is one thing a packet did: sent (port and frame) or dropped.
type refOut struct {
	port  uint32
	frame string
}

func (o refOut) String() string { return fmt.Sprintf("port %d: %x", o.port, o.frame) }

// refPipeline runs a Table's pipeline the naive way.
type refPipeline struct {
	t         *Table
	ports     PortResolver
	inPort    uint32
	outs      []refOut
	depth     int
	resubmits int
	failed    bool
}

// refLookupTable is the linear reference classifier of one table.
func (r *refPipeline) lookup(table uint8, k *Key) *Entry {
	var best *Entry
	for _, e := range r.t.flows {
		f := e.Flow
		if f.Table != table {
			continue
		}
		if f.Match.InPort != "" {
			no, ok := r.ports(f.Match.InPort)
			if !ok || no != k.InPort() {
				continue
			}
		}
		var masked Key
		k.And(&f.Match.Mask, &masked)
		masked.SetInPort(0)
		if masked != f.Match.Key {
			continue
		}
		if best == nil || e.Rank > best.Rank {
			best = e
		}
	}
	return best
}

// refPacket is a packet (or a bucket's copy of it). A packet dropped by a
// rewrite (dec_ttl at 1, no room for a push) is dead: it sends nothing more,
// but the walk goes on, as the translation's does, which does not know the
// TTL and so fails on a pipeline that loops past its bounds even for a
// packet that would have died first.
//
// Rewrites act on the headers the parse of the frame found, which pushes and
// pops keep track of (the Layout), as the datapath does: only lookups see
// the frame parsed again.
type refPacket struct {
	buf  []byte
	off  int
	n    int
	lay  Layout
	dead bool
}

func (p *refPacket) frame() []byte { return p.buf[p.off : p.off+p.n] }

func (p *refPacket) clone() *refPacket {
	return &refPacket{buf: bytes.Clone(p.buf), off: p.off, n: p.n, lay: p.lay, dead: p.dead}
}

func (r *refPipeline) send(p *refPacket, port uint32) {
	if !p.dead {
		r.outs = append(r.outs, refOut{port, string(p.frame())})
	}
}

// key extracts the packet as it is now.
func (r *refPipeline) key(p *refPacket) (Key, Layout) {
	var k Key
	var lay Layout
	ExtractLayout(p.frame(), r.inPort, &k, &lay)
	return k, lay
}

// rewrite runs one rewrite action on p, which dies if it drops it. A dead
// packet is still rewritten: the translation does not know it died, and
// goes on following its key.
func (r *refPipeline) rewrite(p *refPacket, a Action) {
	prog, err := compileProgram([]Action{a}, r.ports, false, 0)
	if err != nil {
		panic(err)
	}
	pkt := Packet{Buf: p.buf, Off: p.off, Len: p.n, InPort: r.inPort}
	out, _ := prog.Run(&pkt, &p.lay, 0)
	p.off, p.n = pkt.Off, pkt.Len
	p.dead = p.dead || out.Kind == OutDrop
}

// run runs acts (of a flow in table) on p.
func (r *refPipeline) run(p *refPacket, acts []Action, table uint8) {
	for _, a := range acts {
		if r.failed {
			return
		}
		switch a.Type {
		case ActOutput:
			if no, ok := resolvePort(r.ports, a.Port); ok && no != r.inPort {
				r.send(p, no)
			}
		case ActInPort:
			r.send(p, r.inPort)
		case ActGotoTable:
			r.table(p, a.Table, r.inPort, table)
		case ActResubmit:
			t := a.Table
			if t == TableCurrent {
				t = table
			}
			port := r.inPort
			if a.Port != "" {
				port, _ = resolvePort(r.ports, a.Port)
			}
			r.table(p, t, port, table)
		case ActGroup:
			r.group(p, a.Value, table)
		case ActKernel:
		default:
			r.rewrite(p, a)
		}
	}
}

func (r *refPipeline) bounds() bool {
	r.resubmits++
	if r.depth >= MaxDepth || r.resubmits > MaxResubmits {
		r.failed = true
		return false
	}
	return true
}

// table looks up table n (from a flow of table cur) and runs the flow.
func (r *refPipeline) table(p *refPacket, n uint8, port uint32, cur uint8) {
	if !r.bounds() {
		return
	}
	k, _ := r.key(p)
	k.SetInPort(port)
	e := r.lookup(n, &k)
	if e == nil {
		return
	}
	deeper := n <= cur
	if deeper {
		r.depth++
	}
	r.run(p, e.Flow.Actions, n)
	if deeper {
		r.depth--
	}
}

func (r *refPipeline) group(p *refPacket, id uint32, table uint8) {
	ge := r.t.groups[id]
	if !r.bounds() {
		return
	}
	r.depth++
	defer func() { r.depth-- }()
	bucket := func(i int) { r.run(p.clone(), ge.Group.Buckets[i].Actions, table) }
	switch ge.Group.Type {
	case GroupAll, GroupIndirect:
		for i := range ge.buckets {
			bucket(i)
		}
	case GroupSelect:
		k, _ := r.key(p)
		if i := r.t.pickSelect(ge, &k); i >= 0 {
			bucket(i)
		}
	case GroupFastFailover:
		for i := range ge.buckets {
			if r.t.bucketLive(&ge.buckets[i]) {
				bucket(i)
				break
			}
		}
	}
}

// refRun runs frame from inPort through t's pipeline the naive way.
func refRun(t *Table, ports PortResolver, frame []byte, inPort uint32) []refOut {
	r := &refPipeline{t: t, ports: ports, inPort: inPort}
	p := &refPacket{buf: make([]byte, 64+len(frame)+16), off: 64, n: len(frame)}
	copy(p.frame(), frame)
	k, lay := r.key(p)
	p.lay = lay
	e := r.lookup(0, &k)
	if e == nil || e.Flow.Verdict() != steer.VerdictRedirect {
		return nil
	}
	r.run(p, e.Flow.Actions, 0)
	if r.failed {
		return nil
	}
	return r.outs
}

// flatRun runs frame through the flat program of r, as a poller does.
func flatRun(r Result, frame []byte, lay *Layout, inPort uint32) []refOut {
	tr := &Trace{}
	tr.run(r.Program(), frame, lay, inPort)
	var outs []refOut
	for _, o := range tr.Outputs {
		if o.Output {
			outs = append(outs, refOut{o.Port, string(o.Frame)})
		}
	}
	return outs
}

// pipeGen draws random pipelines and frames from small sets of values, so
// that flows, rewrites and lookups meet.
type pipeGen struct {
	r      *rand.Rand
	tables int
	groups []uint32
}

var (
	pipeAddrs = []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	pipePorts = []uint16{53, 80, 443}
	pipeNames = []string{"p1", "p2", "p3", "p4", "gone"} // "gone" resolves to nothing
)

func (g *pipeGen) pick(n int) int { return g.r.IntN(n) }

func (g *pipeGen) match() Match {
	b := dpMatch()
	switch g.pick(4) {
	case 0:
	case 1:
		b.dlType(0x0800)
	default:
		b.dlType(0x0800).nwProto([]uint8{6, 17}[g.pick(2)])
		if g.pick(2) == 0 {
			b.tpDst(pipePorts[g.pick(len(pipePorts))])
		}
	}
	if g.pick(3) == 0 {
		b.vlanTCI(steer.VlanPresent|uint16(g.pick(3)), steer.VlanPresent|0x0fff)
	} else if g.pick(4) == 0 {
		b.vlanTCI(0, 0xffff)
	}
	if b.m.Mask.DlType() == 0xffff && g.pick(2) == 0 {
		b.nwDst(pipeAddrs[g.pick(len(pipeAddrs))] + "/32")
	}
	if g.pick(4) == 0 {
		b.inPort(pipeNames[g.pick(2)])
	}
	return b.get()
}

// rewrite returns a random rewrite action that needs at most m's
// prerequisites.
func (g *pipeGen) rewrite(m *Match) Action {
	for {
		var a Action
		switch g.pick(10) {
		case 0:
			a = Action{Type: ActSetDlSrc, MAC: [6]byte{2, 0, 0, 0, 0, byte(g.pick(3))}}
		case 1:
			a = Action{Type: ActSetNwDst, Addr: netip.MustParseAddr(pipeAddrs[g.pick(len(pipeAddrs))])}
		case 2:
			a = Action{Type: ActSetTpDst, Value: uint32(pipePorts[g.pick(len(pipePorts))])}
		case 3:
			a = Action{Type: ActSetNwTos, Value: uint32(g.pick(4)) << 2}
		case 4:
			a = Action{Type: ActPushVLAN, Value: 0x8100}
		case 5:
			a = Action{Type: ActSetVlanVID, Value: uint32(g.pick(3))}
		case 6:
			a = Action{Type: ActStripVLAN}
		case 7:
			a = Action{Type: ActDecTTL}
		case 8:
			a = Action{Type: ActSetVlanPCP, Value: uint32(g.pick(8))}
		case 9:
			a = Action{Type: ActSetNwEcn, Value: uint32(g.pick(4))}
		}
		if m == nil || actionKinds[a.Type].need.holds(m) {
			return a
		}
	}
}

func (g *pipeGen) output() Action {
	if g.pick(6) == 0 {
		return Action{Type: ActInPort}
	}
	return Action{Type: ActOutput, Port: pipeNames[g.pick(len(pipeNames))]}
}

func (g *pipeGen) flow(table uint8) *Flow {
	f := &Flow{Table: table, Priority: uint16(g.pick(4)), Match: g.match()}
	for range g.pick(5) {
		switch p := g.pick(10); {
		case p < 4:
			f.Actions = append(f.Actions, g.rewrite(&f.Match))
		case p < 7:
			f.Actions = append(f.Actions, g.output())
		case p < 8 && len(g.groups) > 0:
			f.Actions = append(f.Actions, Action{Type: ActGroup, Value: g.groups[g.pick(len(g.groups))]})
		default:
			a := Action{Type: ActResubmit, Table: uint8(g.pick(g.tables)), Port: ""}
			if g.pick(3) == 0 {
				a.Port = pipeNames[g.pick(2)]
			}
			if g.pick(3) == 0 {
				a.Table = TableCurrent
				if a.Port == "" {
					a.Port = "p1"
				}
			}
			f.Actions = append(f.Actions, a)
		}
	}
	if int(table) < g.tables-1 && g.pick(2) == 0 {
		f.Actions = append(f.Actions, Action{Type: ActGotoTable, Table: table + 1 + uint8(g.pick(g.tables-1-int(table)))})
	}
	if table == 0 && len(f.Actions) == 0 && g.pick(2) == 0 {
		f.Actions = []Action{g.output()}
	}
	return f
}

// group returns a random group of ID id whose buckets send only to groups
// below it (so there is no loop).
func (g *pipeGen) group(id uint32) *Group {
	t := []GroupType{GroupAll, GroupSelect, GroupIndirect, GroupFastFailover}[g.pick(4)]
	gr := &Group{ID: id, Type: t}
	n := 1 + g.pick(3)
	if t == GroupIndirect {
		n = 1
	}
	for range n {
		b := Bucket{}
		if t == GroupSelect {
			b.Weight = uint16(g.pick(4))
		}
		if t == GroupFastFailover || g.pick(3) == 0 {
			b.WatchPort = pipeNames[g.pick(len(pipeNames))]
		}
		// Action-set order: strip, push, dec_ttl, rewrites, one final.
		if g.pick(4) == 0 {
			b.Actions = append(b.Actions, Action{Type: ActStripVLAN})
		}
		if g.pick(4) == 0 {
			b.Actions = append(b.Actions, Action{Type: ActPushVLAN, Value: 0x88a8})
		}
		if g.pick(4) == 0 {
			b.Actions = append(b.Actions, Action{Type: ActDecTTL})
		}
		for range g.pick(3) {
			a := g.rewrite(nil)
			if actionKinds[a.Type].slot == slotRewrite {
				b.Actions = append(b.Actions, a)
			}
		}
		switch p := g.pick(6); {
		case p == 0 && len(g.groups) > 0:
			b.Actions = append(b.Actions, Action{Type: ActGroup, Value: g.groups[g.pick(len(g.groups))]})
		case p == 1:
			b.Actions = append(b.Actions, Action{Type: ActResubmit, Table: uint8(g.pick(g.tables))})
		default:
			b.Actions = append(b.Actions, g.output())
		}
		gr.Buckets = append(gr.Buckets, b)
	}
	return gr
}

func (g *pipeGen) frame(tb testing.TB) []byte {
	src := pipeAddrs[g.pick(len(pipeAddrs))]
	dst := pipeAddrs[g.pick(len(pipeAddrs))]
	sp, dp := pipePorts[g.pick(len(pipePorts))], pipePorts[g.pick(len(pipePorts))]
	var tags []dpTag
	for range g.pick(3) {
		tags = append(tags, dpTag{tpid: []uint16{0x8100, 0x88a8}[g.pick(2)], pcp: uint8(g.pick(8)), vid: uint16(g.pick(3))})
	}
	ip := dpIPv4(src, dst, layers.IPProtocolTCP)
	ip.TTL = uint8(1 + g.pick(3))
	ip.TOS = uint8(g.pick(4)<<2 | g.pick(4))
	switch g.pick(6) {
	case 0:
		ip.Protocol = layers.IPProtocolUDP
		return dpFrame(tb, tags, layers.EthernetTypeIPv4, ip, dpUDP(sp, dp), dpPayload)
	case 2:
		// 802.3 with LLC/SNAP: the same rewrites, 8 bytes further in.
		ip.Protocol = layers.IPProtocolUDP
		f := dpFrame(tb, tags, layers.EthernetTypeIPv4, ip, dpUDP(sp, dp), dpPayload)
		at := 12 + 4*len(tags)
		body := append([]byte{0xaa, 0xaa, 0x03, 0, 0, 0}, f[at:]...)
		out := binary.BigEndian.AppendUint16(append([]byte(nil), f[:at]...), uint16(len(body)))
		return append(out, body...)
	case 1:
		// A TCP header cut short: tp_src and tp_dst are 0, FlagL4 clear.
		f := dpFrame(tb, tags, layers.EthernetTypeIPv4, ip, dpTCP(sp, dp))
		f = f[:len(f)-8]
		l3 := 14 + 4*len(tags)
		f[l3+2], f[l3+3] = 0, byte(len(f)-l3)
		ipv4Checksum(f[l3:])
		return f
	}
	return dpFrame(tb, tags, layers.EthernetTypeIPv4, ip, dpTCP(sp, dp), dpPayload)
}

func ipv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	c := ^csumFold(s)
	h[10], h[11] = byte(c>>8), byte(c)
}

func pipeSeed(t *testing.T) uint64 {
	if s := os.Getenv("XVS_PIPE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return rand.Uint64()
}

func TestPipelineDifferential(t *testing.T) {
	seed := pipeSeed(t)
	t.Logf("seed %#x (XVS_PIPE_SEED=%#x replays)", seed, seed)
	r := dpRand(seed)
	for round := range 150 {
		g := &pipeGen{r: r, tables: 1 + r.IntN(4)}
		tb := NewTable()
		var groups []*Group
		for id := uint32(1); id <= uint32(r.IntN(5)); id++ {
			groups = append(groups, g.group(id))
			g.groups = append(g.groups, id)
		}
		var flows []*Flow
		for range 2 + r.IntN(20) {
			flows = append(flows, g.flow(uint8(r.IntN(g.tables))))
		}
		// Install with port "gone" there, then take it away.
		withGone := dpPortMap(map[string]uint32{"p1": 1, "p2": 2, "p3": 3, "p4": 4, "gone": 9})
		tb, err := tb.Apply(Change{AddGroups: groups, Add: flows}, withGone)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		tb = tb.Recompile(dpPorts)
		var dead PortSet
		for no := uint32(1); no <= 4; no++ {
			if r.IntN(4) == 0 {
				dead.Add(no)
			}
		}
		tb = tb.WithDeadPorts(dead)
		c := NewCache(0)
		for fi := range 40 {
			frame := g.frame(t)
			inPort := uint32(1 + r.IntN(2))
			want := refRun(tb, dpPorts, frame, inPort)

			var k Key
			var lay Layout
			if ExtractLayout(frame, inPort, &k, &lay) != ParseOK {
				t.Fatalf("round %d frame %d: malformed %x", round, fi, frame)
			}
			res := c.Lookup(tb, &k)
			if !res.Found() || res.Entry().Flow.Verdict() != steer.VerdictRedirect {
				if len(want) != 0 {
					t.Fatalf("round %d frame %d: no userspace flow, reference sends %v", round, fi, want)
				}
				continue
			}
			exact := tb.TranslateFrame(res.Entry(), &k, frame, &lay)
			got := flatRun(exact, frame, &lay, inPort)
			if !slices.EqualFunc(got, want, func(a, b refOut) bool { return a == b }) {
				dumpPipeline(t, tb)
				t.Fatalf("round %d frame %d %x from %d: translated with the frame sends\n%v\nreference sends\n%v\nprogram %v",
					round, fi, frame, inPort, got, want, exact.Program().ops)
			}
			if res.PerPacket() {
				continue
			}
			if got := flatRun(res, frame, &lay, inPort); !slices.EqualFunc(got, want, func(a, b refOut) bool { return a == b }) {
				dumpPipeline(t, tb)
				t.Fatalf("round %d frame %d %x from %d: translated from the key sends\n%v\nreference sends\n%v\nprogram %v",
					round, fi, frame, inPort, got, want, res.Program().ops)
			}
		}
	}
}

func dumpPipeline(t *testing.T, tb *Table) {
	t.Helper()
	for _, ge := range tb.Groups() {
		t.Logf("  %s", ge.Group)
	}
	for _, e := range tb.Entries() {
		t.Logf("  %s", e.Flow)
	}
	t.Logf("  dead ports %x", tb.DeadPorts())
}
