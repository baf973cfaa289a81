package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/flowtable/steer"
	"github.com/xvs-project/xvs/testenv"
)

// The fast path and userspace produce the same bytes for the same flow and
// frame. Random offloadable flows run through both executors on random and
// crafted frames: the XDP program's record interpreter (BPF_PROG_TEST_RUN)
// and flowtable's Program.Run. For every frame the kernel must either
// forward exactly what userspace would send, to the same port, or hand the
// frame to userspace untouched, and the latter only in the cases the fast
// path leaves to userspace (which the test works out on its own).

// fpPorts: pa (1) is where test frames come in; pa and pb (2) take
// redirected frames (they have a devmap slot, fpTxPorts), pc (3) does not.
var (
	fpPorts   = map[string]uint32{"pa": 1, "pb": 2, "pc": 3}
	fpTxPorts = map[uint32]bool{1: true, 2: true}
)

// setFastPorts makes lo port pa, and the device of pa and pb in the devmap.
func setFastPorts(t *testing.T, o *Objects, lo int) {
	t.Helper()
	if err := o.SetPort(lo, fpPorts["pa"]); err != nil {
		t.Fatal(err)
	}
	for p := range fpTxPorts {
		if err := o.SetTxPort(p, lo); err != nil {
			t.Fatal(err)
		}
	}
}

func fpResolve(name string) (uint32, bool) {
	no, ok := fpPorts[name]
	return no, ok
}

// randomRewrite returns one rewrite action in text form and what the
// flow's match then needs ("ip", "udp", "tcp", "").
func randomRewrite(r *rand.Rand) (string, string) {
	switch r.IntN(12) {
	case 0:
		return "mod_dl_src:" + pick(r, []string{"02:00:00:00:00:09", "02:00:00:00:00:0a"}), ""
	case 1:
		return "mod_dl_dst:" + pick(r, []string{"02:00:00:00:00:0b", "0e:00:00:00:00:01"}), ""
	case 2:
		return "mod_nw_src:" + pick(r, []string{"10.0.0.1", "10.9.8.7", "192.168.255.254"}), "ip"
	case 3:
		return "mod_nw_dst:" + pick(r, []string{"10.0.1.2", "172.16.0.1", "0.0.0.0"}), "ip"
	case 4:
		return "mod_nw_tos:" + pick(r, []string{"0", "4", "184", "252"}), "ip"
	case 11:
		return "mod_nw_ecn:" + pick(r, []string{"0", "1", "2", "3"}), "ip"
	case 5:
		return "mod_tp_src:" + pick(r, []string{"53", "1", "65535", "0"}), pick(r, []string{"udp", "tcp"})
	case 6:
		return "mod_tp_dst:" + pick(r, []string{"7998", "80", "65534"}), pick(r, []string{"udp", "tcp"})
	case 7:
		return pick(r, []string{"push_vlan:0x8100", "push_vlan:0x88a8"}), ""
	case 8:
		return "mod_vlan_vid:" + pick(r, []string{"0", "10", "4095"}), ""
	case 9:
		return pick(r, []string{"mod_vlan_pcp:0", "mod_vlan_pcp:5", "strip_vlan"}), ""
	default:
		return "dec_ttl", "ip"
	}
}

// randomFastFlow returns the text of a flow whose actions the fast path
// runs: up to 9 rewrites, then one output. A list the flow syntax refuses
// (a third VLAN tag pushed) is drawn again.
func randomFastFlow(r *rand.Rand) string {
	for {
		text := randomFlowText(r)
		if _, err := flowtable.ParseFlow(text); err == nil {
			return text
		}
	}
}

func randomFlowText(r *rand.Rand) string {
	return randomFlowTextN(r, r.IntN(10))
}

// randomFlowTextN is randomFlowText with n rewrites drawn (fewer when a
// drawn one conflicts with the match of an earlier one).
func randomFlowTextN(r *rand.Rand, n int) string {
	var acts []string
	need := ""
	for i := 0; i < n; i++ {
		a, nd := randomRewrite(r)
		acts = append(acts, a)
		switch {
		case nd == "":
		case need == "" || need == "ip":
			need = nd
		case nd != "ip" && nd != need: // udp and tcp: keep the first
			acts = acts[:len(acts)-1]
		}
	}
	acts = append(acts, pick(r, []string{"output:pb", "output:pb", "output:pc", "output:pa", "in_port"}))
	match := ""
	if need != "" {
		match = need + ","
	}
	return "priority=10," + match + "actions=" + strings.Join(acts, ",")
}

// userResult is what userspace does with a frame: the frame it sends and
// where, or that it sends nothing (and why).
type userResult struct {
	sent   bool
	port   uint32
	frame  []byte
	reason flowtable.DropReason // when not sent: DropNone = the output was skipped (in_port)
}

func runUser(prog *flowtable.Program, frame []byte, inPort uint32) (userResult, flowtable.ParseStatus) {
	const headroom = 128
	buf := make([]byte, headroom+len(frame)+64)
	copy(buf[headroom:], frame)
	pkt := flowtable.Packet{Buf: buf, Off: headroom, Len: len(frame), InPort: inPort}
	var k steer.Key
	var lay flowtable.Layout
	st := flowtable.ExtractLayout(frame, inPort, &k, &lay)
	var res userResult
	for pc := 0; pc >= 0; {
		var out flowtable.Output
		out, pc = prog.Run(&pkt, &lay, pc)
		switch out.Kind {
		case flowtable.OutPort:
			res = userResult{sent: true, port: out.Port, frame: append([]byte(nil), pkt.Frame()...)}
		case flowtable.OutDrop:
			res.reason = out.Reason
		}
	}
	return res, st
}

// fpMaxL4 is the deepest TCP/UDP header the fast path patches: bpf's
// FP_MAX_L4, where 64 bytes of VLAN pushes leave its checksum within the
// 255 bytes the interpreter's offsets are bounded to.
const fpMaxL4 = 255 - 4*steer.MaxOps - 20

// fastCase is what the test knows of a flow: its actions' text.
type fastCase struct {
	text          string
	l4, tp, decTT bool // it rewrites the L4 header or its checksum / an L4 port / decrements the TTL
	out           uint32
}

func newFastCase(text string, e *flowtable.Entry, rec *steer.Record) fastCase {
	c := fastCase{text: text, out: rec.Output()}
	for _, a := range e.Flow.Actions {
		switch a.Type {
		case flowtable.ActSetNwSrc, flowtable.ActSetNwDst:
			c.l4 = true
		case flowtable.ActSetTpSrc, flowtable.ActSetTpDst:
			c.l4, c.tp = true, true
		case flowtable.ActDecTTL:
			c.decTT = true
		}
	}
	return c
}

// leftToUser says whether the fast path must hand frame to userspace
// rather than forward it, and why: worked out from the frame and the flow
// with no help from the interpreter or the record's summary.
func (c *fastCase) leftToUser(frame []byte, u userResult, inPort uint32) string {
	var k steer.Key
	var lay flowtable.Layout
	flowtable.ExtractLayout(frame, inPort, &k, &lay)
	out := c.out
	if out == 0 {
		out = inPort
	}
	switch {
	case c.out == inPort:
		return "output to the input port"
	case !fpTxPorts[out]:
		return "output port takes no redirected frames"
	case u.reason == flowtable.DropDecTTLZero:
		return "TTL would expire"
	case c.l4 && k[steer.OffNwFrag]&steer.FragAny != 0:
		return "fragment with an L4 rewrite"
	case c.tp && lay.L4Type != flowtable.L4TCP && lay.L4Type != flowtable.L4UDP:
		return "port rewrite without a TCP/UDP header"
	case c.l4 && (lay.L4Type == flowtable.L4TCP || lay.L4Type == flowtable.L4UDP) && lay.L4 > fpMaxL4:
		return "TCP/UDP header past the fast path's reach"
	}
	return ""
}

// loadFast loads the program for a fast path test: lo is pa, pa and pb
// have devmap slots, and one empty mask makes a rule under it match every
// frame.
func loadFast(t *testing.T) (*Objects, int) {
	t.Helper()
	o := load(t, true)
	lo := loIndex(t)
	setFastPorts(t, o, lo)
	var zero steer.Key
	if err := o.SetMasks([]steer.Mask{{ID: 0, Mask: zero, MaxRank: steer.MakeRank(10, 0)}}); err != nil {
		t.Fatal(err)
	}
	return o, lo
}

// installFast makes the flow of text the only one of a table, writes its
// record into slot and points the catch-all rule at it (the record first).
func installFast(t *testing.T, o *Objects, text string, slot uint32) (*flowtable.Entry, fastCase) {
	t.Helper()
	f, err := flowtable.ParseFlow(text)
	if err != nil {
		t.Fatalf("flow %q: %v", text, err)
	}
	table, err := flowtable.NewTable().Apply(flowtable.Change{Add: []*flowtable.Flow{f}}, fpResolve)
	if err != nil {
		t.Fatalf("flow %q: %v", text, err)
	}
	e := table.Entries()[0]
	rec, why := e.FastPath()
	if why != "" || e.Verdict() != steer.VerdictForward {
		t.Fatalf("flow %q: not offloadable (%s)", text, why)
	}
	if err := o.PutRecord(slot, &rec); err != nil {
		t.Fatal(err)
	}
	rule := steer.Rule{MaskID: 0, Rank: e.Rank, Verdict: steer.VerdictForward, Arg: slot, Flow: e.Flow.ID}
	if err := o.PutRules([]steer.Rule{rule}); err != nil {
		t.Fatal(err)
	}
	return e, newFastCase(text, e, &rec)
}

func TestFastPathMatchesUserspace(t *testing.T) {
	o, lo := loadFast(t)
	r := rand.New(rand.NewPCG(2, uint64(testingSeed(t))))

	const flows, frames = 150, 120
	stats := map[string]int{}
	for i := 0; i < flows; i++ {
		text := randomFastFlow(r)
		// A fresh slot each time, written before the rule points at it.
		e, c := installFast(t, o, text, uint32(i%64))
		for j := 0; j < frames; j++ {
			spec := randomSpec(r)
			frame := spec.build()
			if j%4 == 0 { // cut short at a header boundary
				ends := spec.headerEnds()
				if cut := pick(r, ends); cut < len(frame) {
					frame = frame[:cut]
				}
			}
			got := checkFastFrame(t, o, lo, e, &c, frame, spec, j%4 != 0)
			stats[got]++
			if spec.snap {
				stats[got+" llc/snap"]++
			}
			if len(spec.ext) > 0 {
				stats[got+" ipv6 ext"]++
			}
		}
	}
	t.Logf("%d flows x %d frames: %v", flows, frames, stats)
	if stats["forwarded"] < flows*frames/5 || stats["user"] < flows*frames/50 {
		t.Fatalf("too few frames forwarded or handed over to compare anything: %v", stats)
	}
	if stats["forwarded llc/snap"] < flows || stats["forwarded ipv6 ext"] < flows {
		t.Fatalf("too few LLC/SNAP or IPv6 extension header frames forwarded: %v", stats)
	}
}

// Records of one rewrite run a path of their own when it is a port rewrite
// (fast_path inlines it); every single-rewrite record, mod_tp_src/dst over
// TCP and UDP most of all, meets the same random and truncated frames as
// the general test's records.
func TestFastPathOneRewrite(t *testing.T) {
	o, lo := loadFast(t)
	r := rand.New(rand.NewPCG(3, uint64(testingSeed(t))))
	const frames = 150
	stats := map[string]int{}
	flows := []string{
		"priority=10,udp,actions=mod_tp_dst:7998,output:pb",
		"priority=10,udp,actions=mod_tp_src:53,output:pb",
		"priority=10,tcp,actions=mod_tp_dst:80,in_port",
		"priority=10,tcp,actions=mod_tp_src:0,output:pc",
		"priority=10,udp,actions=mod_tp_dst:0,output:pa",
	}
	for i := 0; i < 60; i++ {
		flows = append(flows, randomFlowTextN(r, 1))
	}
	for i, text := range flows {
		if _, err := flowtable.ParseFlow(text); err != nil {
			continue // a drawn rewrite the syntax refuses
		}
		e, c := installFast(t, o, text, uint32(i%64))
		for j := 0; j < frames; j++ {
			spec := randomSpec(r)
			frame := spec.build()
			if j%4 == 0 {
				if cut := pick(r, spec.headerEnds()); cut < len(frame) {
					frame = frame[:cut]
				}
			}
			stats[checkFastFrame(t, o, lo, e, &c, frame, spec, j%4 != 0)]++
		}
	}
	t.Logf("%d flows x %d frames: %v", len(flows), frames, stats)
	if stats["forwarded"] < len(flows)*frames/5 || stats["user"] < len(flows)*frames/50 {
		t.Fatalf("too few frames forwarded or handed over to compare anything: %v", stats)
	}
}

// checkFastFrame runs frame through both executors and fails the test if
// they disagree; it returns what happened, for the statistics.
func checkFastFrame(t *testing.T, o *Objects, lo int, e *flowtable.Entry, c *fastCase, frame []byte, spec frameSpec, whole bool) string {
	t.Helper()
	const inPort = 1
	u, st := runUser(&e.Program, frame, inPort)
	res, err := o.TestRun(frame, lo, 0)
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	where := func() string {
		return fmt.Sprintf("flow %q, frame %x (%d bytes)", c.text, frame, len(frame))
	}
	if st == flowtable.ParseMalformed {
		if res.Action != ActionPass || !res.Malformed || res.FastPath != FastPathNone {
			t.Fatalf("%s: malformed frame got %v (fast path %v)", where(), res.Action, res.FastPath)
		}
		if !bytes.Equal(res.Frame, frame) {
			t.Fatalf("%s: malformed frame changed", where())
		}
		return "malformed"
	}
	why := c.leftToUser(frame, u, inPort)
	switch res.FastPath {
	case FastPathForwarded:
		if why != "" {
			t.Fatalf("%s: forwarded in XDP, but should go to userspace: %s", where(), why)
		}
		if res.Action != ActionRedirect {
			t.Fatalf("%s: forwarded with action %v", where(), res.Action)
		}
		if !u.sent {
			t.Fatalf("%s: XDP sent it to %d, userspace sends nothing (%v)", where(), res.OutPort, u.reason)
		}
		if res.OutPort != u.port {
			t.Fatalf("%s: XDP sent it to %d, userspace to %d", where(), res.OutPort, u.port)
		}
		if !bytes.Equal(res.Frame, u.frame) {
			t.Fatalf("%s: frames differ\nXDP       %x\nuserspace %x", where(), res.Frame, u.frame)
		}
		// (A UDP checksum of 0 over IPv6 is invalid to begin with; over
		// IPv4 it stays 0.)
		if whole && spec.frag == 0 && !spec.udpZero {
			if msg := checksumProblem(res.Frame); msg != "" {
				t.Fatalf("%s: forwarded frame %x: %s", where(), res.Frame, msg)
			}
		}
		return "forwarded"
	case FastPathUser:
		if why == "" {
			t.Fatalf("%s: handed to userspace for no reason (userspace: sent %v to %d, %v)", where(), u.sent, u.port, u.reason)
		}
		if res.Action != ActionPass { // no socket in the test: the redirect falls back to the kernel
			t.Fatalf("%s: handed over with action %v", where(), res.Action)
		}
		if !bytes.Equal(res.Frame, frame) {
			t.Fatalf("%s: handed to userspace changed:\n got %x", where(), res.Frame)
		}
		return "user"
	}
	t.Fatalf("%s: fast path %v, action %v", where(), res.FastPath, res.Action)
	return ""
}

// checksumProblem checks the IPv4 header checksum and the TCP/UDP
// checksum of an unfragmented, untruncated frame, as a receiver would. The
// headers are where Extract finds them (past LLC/SNAP, past IPv6 extension
// headers, which the parse tests hold to the frames).
func checksumProblem(f []byte) string {
	var k steer.Key
	var lay flowtable.Layout
	if flowtable.ExtractLayout(f, 1, &k, &lay) != flowtable.ParseOK {
		return "forwarded frame does not parse"
	}
	l3, l4 := lay.L3, lay.L4
	proto := k.NwProto()
	if lay.L4Type != flowtable.L4TCP && lay.L4Type != flowtable.L4UDP {
		return ""
	}
	var seg, pseudo []byte
	switch lay.L3Type {
	case flowtable.L3IPv4:
		hl := int(f[l3]&0xf) * 4
		if onesSum(0, f[l3:l3+hl]) != 0xffff {
			return "bad IPv4 header checksum"
		}
		seg = f[l4 : l3+int(binary.BigEndian.Uint16(f[l3+2:]))]
		pseudo = append(append([]byte{}, f[l3+12:l3+20]...), 0, proto, byte(len(seg)>>8), byte(len(seg)))
	case flowtable.L3IPv6:
		seg = f[l4 : l3+40+int(binary.BigEndian.Uint16(f[l3+4:]))]
		pseudo = append(append([]byte{}, f[l3+8:l3+40]...), 0, 0, byte(len(seg)>>8), byte(len(seg)), 0, 0, 0, proto)
	default:
		return ""
	}
	if proto == 17 && binary.BigEndian.Uint16(seg[6:]) == 0 {
		return "" // no checksum
	}
	if onesSum(onesSum(0, pseudo), seg) != 0xffff {
		return fmt.Sprintf("bad %d checksum", proto)
	}
	return ""
}

// A rule whose record names another flow (a slot reused too early) must
// not run it: the frame goes to userspace untouched.
func TestFastPathStaleRecord(t *testing.T) {
	o := load(t, true)
	lo := loIndex(t)
	if err := o.SetPort(lo, 1); err != nil {
		t.Fatal(err)
	}
	if err := o.SetTxPort(2, lo); err != nil {
		t.Fatal(err)
	}
	f, err := flowtable.ParseFlow("actions=mod_dl_src:02:00:00:00:00:99,output:pb")
	if err != nil {
		t.Fatal(err)
	}
	table, err := flowtable.NewTable().Apply(flowtable.Change{Add: []*flowtable.Flow{f}}, fpResolve)
	if err != nil {
		t.Fatal(err)
	}
	e := table.Entries()[0]
	rec, _ := e.FastPath()
	var zero steer.Key
	if err := o.SetMasks([]steer.Mask{{ID: 0, Mask: zero, MaxRank: e.Rank}}); err != nil {
		t.Fatal(err)
	}
	frame := udp4Frame(t, 1, 2)
	tests := []struct {
		name     string
		ruleFlow uint64
		slot     uint32
		want     FastPathResult
	}{
		{"own record", e.Flow.ID, 5, FastPathForwarded},
		{"another flow's record", e.Flow.ID + 1, 5, FastPathStale},
		{"an empty slot", e.Flow.ID, 6, FastPathStale},
		// PutRules refuses it: the rule goes into the kernel's map as is.
		{"a slot past the pages", e.Flow.ID, uint32(pagesFor(steer.MaxRecords)) * recordPage, FastPathStale},
	}
	if err := o.PutRecord(5, &rec); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := steer.Rule{MaskID: 0, Rank: e.Rank, Verdict: steer.VerdictForward, Arg: tt.slot, Flow: tt.ruleFlow}
			if tt.slot >= uint32(o.Records()) {
				v := ruleValue{Rank: uint64(rule.Rank), Verdict: uint8(rule.Verdict), Arg: rule.Arg, FlowID: rule.Flow}
				if err := o.objs.Rules.Put(&ruleKey{MaskID: 0}, &v); err != nil {
					t.Fatal(err)
				}
				o.bumpGen()
			} else if err := o.PutRules([]steer.Rule{rule}); err != nil {
				t.Fatal(err)
			}
			before := counters(t, o, 1)
			res, err := o.TestRun(frame, lo, 0)
			if err != nil {
				t.Fatal(err)
			}
			if res.FastPath != tt.want {
				t.Fatalf("fast path %v, want %v", res.FastPath, tt.want)
			}
			after := counters(t, o, 1)
			d := func(c steer.Counter) uint64 { return after[c].Packets - before[c].Packets }
			if tt.want == FastPathForwarded {
				if res.Action != ActionRedirect || d(steer.CounterForward) != 1 || res.Frame[11] != 0x99 {
					t.Fatalf("action %v, forward +%d, frame %x", res.Action, d(steer.CounterForward), res.Frame)
				}
				return
			}
			if res.Action != ActionPass || !bytes.Equal(res.Frame, frame) {
				t.Fatalf("action %v, frame %x", res.Action, res.Frame)
			}
			if d(steer.CounterForwardFallback) != 1 || d(steer.CounterRedirectNoSock) != 1 || d(steer.CounterForward) != 0 {
				t.Fatalf("counters: fallback +%d, redirect_nosock +%d, forward +%d",
					d(steer.CounterForwardFallback), d(steer.CounterRedirectNoSock), d(steer.CounterForward))
			}
		})
	}
	hits, err := o.RecordHits(8)
	if err != nil {
		t.Fatal(err)
	}
	if hits[5].Packets != 1 || hits[5].Bytes != uint64(len(frame)) || hits[6].Packets != 0 {
		t.Fatalf("record hits %+v", hits)
	}
	if _, err := o.ClearRecordHits([]uint32{5}); err != nil {
		t.Fatal(err)
	}
	if hits, err = o.RecordHits(8); err != nil || hits[5].Packets != 0 {
		t.Fatalf("after clear: %+v, %v", hits[5], err)
	}
}

// Crafted frames, each whole and cut short at every header boundary,
// through a few fixed flows that cover every op.
func TestFastPathCrafted(t *testing.T) {
	o, lo := loadFast(t)
	flows := []string{
		"priority=10,udp,actions=mod_dl_src:02:00:00:00:00:09,mod_dl_dst:0e:00:00:00:00:01,mod_nw_src:10.9.8.7,mod_nw_dst:172.16.0.1,mod_tp_src:1,mod_tp_dst:7998,mod_nw_tos:184,dec_ttl,output:pb",
		"priority=10,tcp,actions=mod_nw_dst:192.168.255.254,mod_tp_dst:65535,dec_ttl,dec_ttl,output:pb",
		"priority=10,ip,actions=push_vlan:0x88a8,mod_vlan_vid:4095,mod_vlan_pcp:5,push_vlan:0x8100,mod_vlan_vid:10,dec_ttl,output:pb",
		"priority=10,actions=strip_vlan,strip_vlan,mod_vlan_pcp:7,strip_vlan,mod_dl_src:02:00:00:00:00:0a,in_port",
		"priority=10,ip,actions=mod_nw_tos:252,mod_nw_src:0.0.0.0,output:pb",
		"priority=10,ipv6,actions=mod_nw_ecn:2,mod_nw_tos:184,dec_ttl,output:pb",
		"priority=10,udp6,actions=set_field:46->ip_dscp,set_field:1->ip_ecn,mod_tp_dst:4789,mod_tp_src:1,output:pb",
		"priority=10,tcp6,actions=push_vlan:0x8100,mod_tp_src:443,output:pb",
	}
	var specs []frameSpec
	for _, tags := range [][]uint16{nil, {0x8100}, {0x88a8, 0x8100}} {
		for _, l3 := range []uint16{0x0800, 0x86dd} {
			for _, proto := range []uint8{6, 17, 1} {
				for _, ttl := range []uint8{0, 1, 2, 64} {
					s := frameSpec{tags: tags, tci: 0xe00a, l3: l3, proto: proto, ttl: ttl, tos: 0xb9,
						payload: 5, src: [4]byte{10, 0, 0, 1}, dst: [4]byte{10, 0, 1, 2}, sport: 53, dport: 80}
					specs = append(specs, s)
					if l3 == 0x0800 && ttl == 64 {
						opt, frag1, frag2 := s, s, s
						opt.options = 10
						frag1.frag, frag2.frag = 1, 2
						specs = append(specs, opt, frag1, frag2)
					}
					if proto == 17 && ttl == 64 {
						z := s
						z.udpZero = true
						specs = append(specs, z)
					}
				}
			}
		}
	}
	specs = append(specs, frameSpec{l3: 0x0806, src: [4]byte{10, 0, 0, 1}, dst: [4]byte{10, 0, 0, 2}},
		frameSpec{tags: []uint16{0x8100}, l3: 0x88b5})
	// 802.3 with LLC/SNAP, and IPv6 with extension headers: the headers
	// are not where the tags alone put them.
	base := frameSpec{tci: 0xe00a, ttl: 64, tos: 0xb9, payload: 5, src: [4]byte{10, 0, 0, 1}, dst: [4]byte{10, 0, 1, 2}, sport: 53, dport: 80}
	for _, tags := range [][]uint16{nil, {0x8100}, {0x88a8, 0x8100}} {
		for _, l3 := range []uint16{0x0800, 0x86dd, 0x0806, 0x88b5} {
			for _, proto := range []uint8{6, 17} {
				s := base
				s.tags, s.snap, s.l3, s.proto = tags, true, l3, proto
				specs = append(specs, s)
			}
		}
		for _, ext := range [][]extHdr{
			{{typ: 0}},
			{{typ: 0}, {typ: 60, n: 1}, {typ: 43, n: 2}},
			{{typ: 51, n: 4}},
			{{typ: 44}},
			{{typ: 60, n: 20}},               // the L4 header at 14+40+168: patched in XDP
			{{typ: 0, n: 20}, {typ: 60}},     // ... at 14+40+176: past FP_MAX_L4
			{{typ: 0}, {typ: 44}, {typ: 60}}, // a fragment header in the middle
		} {
			for _, proto := range []uint8{6, 17, 58} {
				for frag := 0; frag < 3; frag++ {
					s := base
					s.tags, s.l3, s.proto, s.ext, s.frag = tags, 0x86dd, proto, ext, frag
					specs = append(specs, s)
					s.snap = true
					specs = append(specs, s)
				}
			}
		}
	}
	stats := map[string]int{}
	for i, text := range flows {
		e, c := installFast(t, o, text, uint32(i))
		for _, s := range specs {
			whole := s.build()
			stats[checkFastFrame(t, o, lo, e, &c, whole, s, true)]++
			for _, cut := range s.headerEnds() {
				if cut < len(whole) {
					stats[checkFastFrame(t, o, lo, e, &c, whole[:cut], s, false)]++
				}
			}
		}
	}
	t.Logf("%d flows x %d frames (and their cuts): %v", len(flows), len(specs), stats)
}

// Options.Records sizes the record maps; a dry runner shares them, and
// slots past the size are refused before the kernel sees them.
func TestRecordSlots(t *testing.T) {
	testenv.RequireRoot(t)
	for _, bad := range []int{-1, steer.RecordSlotsLimit + 1} {
		if o, err := LoadWith(Options{Records: bad}); err == nil {
			o.Close()
			t.Errorf("Records %d loaded", bad)
		}
	}
	for _, tt := range []struct{ opt, want int }{{0, steer.MaxRecords}, {3, 3}, {100000, 100000}} {
		o, err := LoadWith(Options{Records: tt.opt})
		if err != nil {
			t.Fatal(err)
		}
		dry, err := o.DryRunner()
		if err != nil {
			o.Close()
			t.Fatal(err)
		}
		for _, obj := range []*Objects{o, dry} {
			if obj.Records() != tt.want {
				t.Errorf("Records %d: %d slots, want %d", tt.opt, obj.Records(), tt.want)
			}
			if len(obj.rec.recs) != pagesFor(tt.want) || len(obj.rec.hits) != pagesFor(tt.want) {
				t.Errorf("Records %d: %d and %d pages, want %d", tt.opt, len(obj.rec.recs), len(obj.rec.hits), pagesFor(tt.want))
			}
			ncpu, err := ebpf.PossibleCPU()
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range append(slices.Clone(obj.rec.recs), obj.rec.hits...) {
				want := uint32(recordPage)
				if i >= len(obj.rec.recs) {
					want *= uint32(ncpu) // a row of counters for each CPU
				}
				if info, err := m.Info(); err != nil || info.MaxEntries != want {
					t.Errorf("Records %d: page %v has %v entries (%v), want %d", tt.opt, m, info.MaxEntries, err, want)
				}
			}
		}
		rec := &steer.Record{N: 1}
		last := uint32(tt.want - 1)
		if err := o.PutRecord(last, rec); err != nil {
			t.Errorf("Records %d: slot %d: %v", tt.opt, last, err)
		}
		if err := o.PutRecord(last+1, rec); err == nil {
			t.Errorf("Records %d: slot %d taken", tt.opt, last+1)
		}
		if _, err := o.ClearRecordHits([]uint32{last + 1}); err == nil {
			t.Errorf("Records %d: clear of slot %d taken", tt.opt, last+1)
		}
		if _, err := o.RecordHits(tt.want + 1); err == nil {
			t.Errorf("Records %d: hits of %d slots taken", tt.opt, tt.want+1)
		}
		fwd := steer.Rule{Verdict: steer.VerdictForward, Arg: last + 1}
		if err := o.PutRules([]steer.Rule{fwd}); err == nil {
			t.Errorf("Records %d: a rule naming slot %d taken", tt.opt, last+1)
		}
		dry.Close()
		o.Close()
	}
}

// PutRecords writes every record into its slot, over several batches;
// ClearRecordHits zeroes the counters of many slots the same way. A bad
// record is refused before anything is written; a bad slot to clear stops
// the clearing there and says how far it got.
func TestRecordsBatch(t *testing.T) {
	o := load(t, false)
	n := 2*recordChunk + 3
	slots := make([]uint32, n)
	recs := make([]steer.Record, n)
	for i := range slots {
		slots[i] = uint32(steer.MaxRecords - 1 - i) // not in slot order
		recs[i] = steer.Record{Flow: uint64(1000 + i), N: 1}
		recs[i].Ops[0].Val = uint32(i)
	}
	bad := slices.Clone(recs)
	bad[n-1].N = 0
	if err := o.PutRecords(slots, bad); err == nil {
		t.Fatal("a record without ops was written")
	}
	var got steer.Record
	if err := o.rec.recs[slots[0]>>recordPageShift].Lookup(slots[0]%recordPage, &got); err != nil || got.N != 0 {
		t.Fatalf("slot %d after a refused batch: %+v, %v", slots[0], got, err)
	}
	if err := o.PutRecords(slots, recs); err != nil {
		t.Fatal(err)
	}
	for i, slot := range slots {
		if err := o.rec.recs[slot>>recordPageShift].Lookup(slot%recordPage, &got); err != nil || got != recs[i] {
			t.Fatalf("slot %d: %+v, %v; want %+v", slot, got, err, recs[i])
		}
	}

	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	one := CounterValue{Packets: 1, Bytes: 64}
	for _, slot := range slots {
		// On the last CPU's row.
		if err := o.rec.hits[slot>>recordPageShift].Put(uint32((ncpu-1)*recordPage)+slot%recordPage, one); err != nil {
			t.Fatal(err)
		}
	}
	withBad := append(slices.Clone(slots[:recordChunk+1]), steer.MaxRecords, slots[recordChunk+1])
	if c, err := o.ClearRecordHits(withBad); err == nil || c != recordChunk+1 {
		t.Fatalf("clear with a bad slot at %d: cleared %d, %v", recordChunk+1, c, err)
	}
	hits, err := o.RecordHits(steer.MaxRecords)
	if err != nil {
		t.Fatal(err)
	}
	for i, slot := range slots {
		want := uint64(0) // cleared: the ones before the bad slot
		if i > recordChunk {
			want = 1
		}
		if hits[slot].Packets != want {
			t.Fatalf("slot %d (%d): %d packets, want %d", slot, i, hits[slot].Packets, want)
		}
	}
	if c, err := o.ClearRecordHits(slots); err != nil || c != n {
		t.Fatalf("clear: %d, %v", c, err)
	}
	if hits, err = o.RecordHits(steer.MaxRecords); err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		if hits[slot].Packets != 0 {
			t.Fatalf("slot %d: %d packets after the clear", slot, hits[slot].Packets)
		}
	}
}
