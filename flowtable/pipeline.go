package flowtable

import (
	"encoding/binary"
	"math"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The pipeline. A packet starts at table 0; the flow that matches it may
// send it on with goto_table (the lookup continues in a later table),
// resubmit (look up a table, run that flow's actions, come back) and group
// (run one or more buckets), each of which may again. Open vSwitch runs the
// same chain of lookups for every packet of a flow key and caches the
// result as one list of datapath actions (its xlate and megaflows); xvs does
// the same: Translate walks the pipeline once for a key and flattens what
// it does into one Program of plain ops (rewrites, outputs, and clone ops
// for buckets that must not see each other's rewrites), plus the list of
// flows, buckets and tables whose counters each packet of the key adds to.
// A poller's Cache keeps that Result per key, so a cached packet costs one
// lookup and one program run however many tables it crosses.
//
// The translation follows the key as the actions rewrite it (a rewrite of
// nw_dst before goto_table is seen by the next table's lookup, and a select
// group hashes the rewritten 5-tuple). The key alone decides what happens
// to every frame of that key, with one exception: a VLAN push or pop on a
// frame that already has two tags changes the key in a way only the frame
// shows (the third tag's type, the inner tag's TCI). A translation that
// meets that before a lookup or a select is per packet (Result.PerPacket):
// TranslateFrame then follows a copy of the frame instead of the key.

// Bounds of a translation, as in Open vSwitch (ofproto-dpif-xlate.c
// MAX_DEPTH, MAX_RESUBMITS): past them the packet is dropped, counted as
// DropTooDeep.
const (
	MaxDepth     = 64             // nested resubmits to the same or an earlier table, and nested groups
	MaxResubmits = 64 * 64        // lookups and groups in one translation
	maxFlatOps   = 64 * 1024 / 24 // ops of one flat program
)

// Result is what the pipeline does with the packets of one key: the table-0
// flow that matched, and, when that flow sends packets on to other tables
// or groups, the translation of the whole pipeline. It is two pointers; the
// zero Result is "no flow matched".
type Result struct {
	e *Entry
	x *xlated // nil: e's own program is all there is to run
}

// xlated is a translated pipeline.
type xlated struct {
	prog      Program
	flows     []*Entry // flows after the table-0 one, in the order they ran
	buckets   []*counter
	groups    []*groupStats
	lookups   []lookupStat
	perPacket bool // the key does not decide: see Result.PerPacket
	drop      DropReason
}

type lookupStat struct {
	st  *tableStats
	hit bool
}

// Found reports whether a table-0 flow matched.
func (r Result) Found() bool { return r.e != nil }

// Entry returns the table-0 flow that matched, or nil.
func (r Result) Entry() *Entry { return r.e }

// Program returns the program to run on every packet of the key. Only a
// Result that is Found and not PerPacket has one.
func (r Result) Program() *Program {
	if r.x != nil {
		return &r.x.prog
	}
	return &r.e.Program
}

// PerPacket reports whether the key alone does not decide what the pipeline
// does: each packet must be translated with its frame (TranslateFrame).
func (r Result) PerPacket() bool { return r.x != nil && r.x.perPacket }

// Credit adds packets (bytes) to the counters of every flow, bucket, group
// and table lookup the result went through. Pollers call it once per run of
// packets that had the same Result.
func (r Result) Credit(packets, bytes uint64, now int64) {
	r.e.Hit(packets, bytes, now)
	x := r.x
	if x == nil {
		return
	}
	for _, e := range x.flows {
		e.Hit(packets, bytes, now)
	}
	for _, c := range x.buckets {
		c.add(packets, bytes)
	}
	for _, g := range x.groups {
		g.packets.Add(packets)
		g.bytes.Add(bytes)
	}
	for _, l := range x.lookups {
		l.st.lookups.Add(packets)
		if l.hit {
			l.st.matched.Add(packets)
		}
	}
}

// Resolve returns the Result for key k whose table-0 lookup returned e (nil:
// no flow). A flow that needs no other table or group is its own result and
// costs nothing; others are translated (Translate).
func (t *Table) Resolve(e *Entry, k *Key) Result {
	if e == nil || !e.Program.control {
		return Result{e: e}
	}
	return t.translate(e, k, nil, nil)
}

// Translate returns what the pipeline does with packets of key k that table
// 0 sends to flow e. It does not look at any frame; when the key does not
// decide, the Result says PerPacket.
func (t *Table) Translate(e *Entry, k *Key) Result { return t.translate(e, k, nil, nil) }

// TranslateFrame is Translate for one frame (extracted into k and lay),
// following a copy of it through the rewrites where the key alone does not
// say what they do. The Result is never PerPacket; it is exact for this
// frame only.
func (t *Table) TranslateFrame(e *Entry, k *Key, frame []byte, lay *Layout) Result {
	return t.translate(e, k, frame, lay)
}

func (t *Table) translate(e *Entry, k *Key, frame []byte, lay *Layout) Result {
	return t.translateTraced(e, k, frame, lay, nil)
}

func (t *Table) translateTraced(e *Entry, k *Key, frame []byte, lay *Layout, tr *tracer) Result {
	x := &xlator{t: t, key: *k, inPort: k.InPort(), tr: tr, res: &xlated{}}
	if frame != nil {
		x.shadow = newShadow(frame, lay, k.InPort())
	}
	x.runFlow(e, 0)
	if x.needFrame && frame == nil {
		return Result{e: e, x: &xlated{perPacket: true}}
	}
	x.finish()
	return Result{e: e, x: x.res}
}

// xlator is one translation in progress.
type xlator struct {
	t         *Table
	key       Key    // the packet's key as rewritten so far
	inPort    uint32 // the packet's input port (the key's in_port changes for resubmit's lookup only)
	table     uint8  // the table whose flow runs
	ops       []steer.Op
	res       *xlated
	depth     int
	resubmits int
	// keyUnsure: a rewrite changed the key in a way only the frame shows;
	// needFrame: a lookup or select depended on that.
	keyUnsure, needFrame bool
	dropped              bool // a drop that ends the translation (depth, size)
	missed               bool // the last goto_table found no flow
	shadow               *shadow
	tr                   *tracer
}

// runFlow runs the actions of flow e, found in table.
func (x *xlator) runFlow(e *Entry, table uint8) {
	old := x.table
	x.table = table
	x.runProgram(&e.Program, e.Flow.Actions)
	x.table = old
}

// runProgram translates p's ops (acts are the actions they came from, one
// op per action, for the trace).
func (x *xlator) runProgram(p *Program, acts []Action) {
	for i := range p.ops {
		if x.dropped {
			return
		}
		o := &p.ops[i]
		var a *Action
		if i < len(acts) {
			a = &acts[i]
		}
		x.tr.action(a, o)
		switch o.Code {
		case steer.OpGotoTable:
			x.lookup(o.A, x.inPort, true)
		case steer.OpResubmit:
			table, port := o.A, o.Val
			if table == TableCurrent {
				table = x.table
			}
			if port == 0 {
				port = x.inPort
			}
			x.lookup(table, port, false)
		case steer.OpGroup:
			x.group(o.Val)
		case steer.OpDrop:
			// An empty action list: nothing more from this flow.
		case steer.OpKernel:
			// Only a table-0 flow may say kernel, and the XDP program
			// passes its packets; one reached here (resubmit back to
			// table 0) cannot go back to the kernel.
			x.emit(steer.Op{Code: steer.OpDrop, A: uint8(DropKernel)})
		default:
			x.emit(*o)
		}
	}
}

// emit appends o to the flat program and follows its effect on the key.
func (x *xlator) emit(o steer.Op) {
	if len(x.ops) >= maxFlatOps {
		x.fail(DropTooDeep)
		return
	}
	x.ops = append(x.ops, o)
	if !x.keyUnsure && !rewriteKey(&x.key, &o) {
		x.keyUnsure = true
	}
	if x.shadow != nil {
		x.shadow.run(&o)
	}
	x.tr.packet(x.shadow)
}

// fail ends the translation: the packet is dropped for reason r, whatever
// the program had done so far (as Open vSwitch does on a translation
// error).
func (x *xlator) fail(r DropReason) {
	x.dropped = true
	x.res.drop = r
}

// resources counts a lookup or group against the translation's bounds.
func (x *xlator) resources() bool {
	x.resubmits++
	if x.depth >= MaxDepth || x.resubmits > MaxResubmits {
		x.tr.note("over %d nested resubmits or %d in all: dropped", MaxDepth, MaxResubmits)
		x.fail(DropTooDeep)
		return false
	}
	return true
}

// currentKey is the key a lookup or hash sees now. It says false when only
// the frame could tell and there is none (the translation is per packet).
func (x *xlator) currentKey() (Key, bool) {
	if x.shadow != nil && x.keyUnsure {
		return x.shadow.key(), true
	}
	if x.keyUnsure {
		x.needFrame = true
		return Key{}, false
	}
	return x.key, true
}

// lookup looks up table with in_port port and runs the flow it finds. For
// goto_table (jump), a miss drops the packet, as OpenFlow's table miss does;
// for resubmit it does nothing.
func (x *xlator) lookup(table uint8, port uint32, jump bool) {
	if !x.resources() {
		return
	}
	k, ok := x.currentKey()
	if !ok {
		x.dropped = true // the caller translates again with the frame
		return
	}
	k.SetInPort(port)
	e := x.t.LookupTable(table, &k)
	x.res.lookups = append(x.res.lookups, lookupStat{st: &x.t.tstats[table], hit: e != nil})
	if !jump {
		// A resubmit's lookup and flow nest in the trace, as in
		// ofproto/trace; goto_table's follow on at the same level.
		x.tr.enter()
		defer x.tr.leave()
	}
	x.tr.lookup(table, &k, e)
	if e == nil {
		if jump {
			x.missed = true
		}
		return
	}
	x.res.flows = append(x.res.flows, e)
	deeper := table <= x.table
	if deeper {
		x.depth++
	}
	x.runFlow(e, table)
	if deeper {
		x.depth--
	}
}

// group runs the buckets of group id that its type picks.
func (x *xlator) group(id uint32) {
	ge := x.t.groups[id]
	if ge == nil || !x.resources() {
		return
	}
	x.res.groups = append(x.res.groups, ge.stats)
	x.depth++
	defer func() { x.depth-- }()
	switch ge.Group.Type {
	case GroupAll, GroupIndirect:
		for i := range ge.buckets {
			x.bucket(ge, i)
		}
	case GroupSelect:
		k, ok := x.currentKey()
		if !ok {
			x.dropped = true
			return
		}
		i := x.t.pickSelect(ge, &k)
		x.tr.pick(ge, i)
		if i >= 0 {
			x.bucket(ge, i)
		}
	case GroupFastFailover:
		i := -1
		for j := range ge.buckets {
			if x.t.bucketLive(&ge.buckets[j]) {
				i = j
				break
			}
		}
		x.tr.pick(ge, i)
		if i >= 0 {
			x.bucket(ge, i)
		}
	}
}

// bucket runs bucket i of ge as Open vSwitch does: on a copy of the packet,
// so that its rewrites are not seen by the next bucket or by the actions
// after the group. The copy is an OpClone around the bucket's ops, which
// finish drops when it is not needed.
func (x *xlator) bucket(ge *GroupEntry, i int) {
	b := &ge.buckets[i]
	x.res.buckets = append(x.res.buckets, b.stats)
	x.tr.bucket(ge, i)
	key, unsure := x.key, x.keyUnsure
	at := len(x.ops)
	x.emitClone()
	if x.shadow != nil {
		x.shadow.push()
	}
	x.runProgram(&b.prog, ge.Group.Buckets[i].Actions)
	if x.shadow != nil {
		x.shadow.pop()
	}
	if at < len(x.ops) && x.ops[at].Code == steer.OpClone {
		x.ops[at].Val = uint32(len(x.ops) - at - 1)
	}
	x.key, x.keyUnsure = key, unsure
	x.tr.bucketEnd()
}

func (x *xlator) emitClone() {
	if len(x.ops) >= maxFlatOps {
		x.fail(DropTooDeep)
		return
	}
	x.ops = append(x.ops, steer.Op{Code: steer.OpClone})
}

// finish makes the flat program: a drop when the translation failed or
// nothing sends the packet anywhere, else the ops with the clones that are
// not needed taken out.
func (x *xlator) finish() {
	r := x.res
	if r.drop != DropNone {
		r.prog = newProgram([]steer.Op{{Code: steer.OpDrop, A: uint8(r.drop)}})
		return
	}
	ops := simplifyClones(x.ops)
	sends := false
	for i := range ops {
		switch ops[i].Code {
		case steer.OpOutput, steer.OpInPort, steer.OpGone:
			sends = true
		}
	}
	if !sends {
		reason := DropActions
		if x.missed {
			reason = DropTableMiss
		}
		for i := range ops {
			if ops[i].Code == steer.OpDrop && ops[i].A != 0 {
				reason = DropReason(ops[i].A) // a kernel flow reached by resubmit
			}
		}
		ops = []steer.Op{{Code: steer.OpDrop, A: uint8(reason)}}
	}
	r.prog = newProgram(ops)
}

// simplifyClones takes out the clones that change nothing: a clone whose
// ops do not touch the packet (only outputs, and clones of their own), and
// a clone nothing follows (the packet it would keep is not used again).
func simplifyClones(ops []steer.Op) []steer.Op {
	out := make([]steer.Op, 0, len(ops))
	var walk func(ops []steer.Op, tail bool)
	walk = func(ops []steer.Op, tail bool) {
		for i := 0; i < len(ops); i++ {
			o := ops[i]
			if o.Code != steer.OpClone {
				out = append(out, o)
				continue
			}
			n := int(o.Val)
			body := ops[i+1 : i+1+n]
			last := tail && i+1+n == len(ops)
			if last || pure(body) {
				walk(body, last)
			} else {
				at := len(out)
				out = append(out, o)
				walk(body, false)
				out[at].Val = uint32(len(out) - at - 1)
			}
			i += n
		}
	}
	walk(ops, true)
	return out
}

// pure reports whether ops leave the packet as it was: outputs only (and
// clones, which work on copies).
func pure(ops []steer.Op) bool {
	for i := 0; i < len(ops); i++ {
		switch ops[i].Code {
		case steer.OpOutput, steer.OpInPort, steer.OpGone:
		case steer.OpClone:
			i += int(ops[i].Val)
		default:
			return false
		}
	}
	return true
}

// rewriteKey applies op o's effect to key k, as Extract would see the frame
// after it, and reports false when the key alone does not say what that is
// (a VLAN push or pop on a frame with two tags).
func rewriteKey(k *Key, o *steer.Op) bool {
	dlType := k.DlType()
	tci := k.VlanTCI()
	vlan2 := k[steer.OffFlags]&steer.FlagVlan2 != 0
	setTCI := func(v uint16) { binary.BigEndian.PutUint16(k[steer.OffVlanTCI:], v) }
	switch o.Code {
	case steer.OpSetDlSrc:
		copy(k[steer.OffDlSrc:steer.OffDlSrc+6], o.Arg[:6])
	case steer.OpSetDlDst:
		copy(k[steer.OffDlDst:steer.OffDlDst+6], o.Arg[:6])
	case steer.OpSetNwSrc, steer.OpSetNwDst:
		if dlType == etherTypeIPv4 {
			off := steer.OffNwSrc
			if o.Code == steer.OpSetNwDst {
				off = steer.OffNwDst
			}
			copy(k[off:off+4], o.Arg[:4])
		}
	case steer.OpSetNwTos:
		if dlType == etherTypeIPv4 || dlType == etherTypeIPv6 {
			k[steer.OffNwTos] = k[steer.OffNwTos]&3 | o.A
		}
	case steer.OpSetTpSrc, steer.OpSetTpDst:
		if p := k.NwProto(); k[steer.OffFlags]&steer.FlagL4 != 0 && (p == ipProtoTCP || p == ipProtoUDP) &&
			(dlType == etherTypeIPv4 || dlType == etherTypeIPv6) {
			off := steer.OffTpSrc
			if o.Code == steer.OpSetTpDst {
				off = steer.OffTpDst
			}
			binary.BigEndian.PutUint16(k[off:], o.B)
		}
	case steer.OpPushVLAN:
		switch {
		case vlan2 || isVLANType(dlType):
			return false // a third tag: dl_type becomes the inner tag's TPID
		case tci != 0:
			k[steer.OffFlags] |= steer.FlagVlan2 // the same TCI on top, a second tag below
		default:
			setTCI(steer.VlanPresent)
		}
	case steer.OpSetVlanVID:
		if tci != 0 {
			setTCI(tci&0xf000 | o.B)
		} else if isVLANType(dlType) {
			return false
		} else {
			setTCI(steer.VlanPresent | o.B)
		}
	case steer.OpSetVlanPCP:
		if tci != 0 {
			setTCI(tci&0x1fff | uint16(o.A)<<13)
		} else if isVLANType(dlType) {
			return false
		} else {
			setTCI(steer.VlanPresent | uint16(o.A)<<13)
		}
	case steer.OpStripVLAN:
		switch {
		case vlan2:
			return false // the inner tag becomes the outer one
		case tci != 0:
			setTCI(0)
		}
	}
	return true
}

// bucketLive reports whether bucket b may be picked: its watch port, if it
// has one, exists and is live.
func (t *Table) bucketLive(b *bucketEntry) bool {
	if b.watchGone {
		return false
	}
	return b.watch == 0 || !t.dead.Has(b.watch)
}

// pickSelect picks the bucket of select group ge for key k, or -1 when no
// bucket is live. It is weighted rendezvous hashing (highest random weight):
// every live bucket scores weight / -ln(u), u a uniform hash of the key's
// 5-tuple and the bucket, and the best score wins. A key sticks to its
// bucket while that bucket lives; when a bucket dies only its keys move, and
// they come back when it revives; each bucket gets a share of keys
// proportional to its weight. (Open vSwitch's default scores
// hash * weight, which does not keep proportions: 3:1 weights give 5:1.)
func (t *Table) pickSelect(ge *GroupEntry, k *Key) int {
	h := hashL4(k)
	best, bestScore := -1, 0.0
	for i := range ge.buckets {
		b := &ge.buckets[i]
		if b.weight == 0 || !t.bucketLive(b) {
			continue
		}
		u := (float64(hashMix(h^b.salt)>>11) + 0.5) / (1 << 53) // in (0, 1)
		score := float64(b.weight) / -math.Log(u)
		if best < 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// hashL4 hashes what a select group spreads: the IP addresses, the protocol
// and the L4 ports (symmetric, as Open vSwitch's default: both directions of
// a connection hash alike), and the dl_type.
func hashL4(k *Key) uint64 {
	le := binary.LittleEndian
	var a, b [2]uint64
	a[0], a[1] = le.Uint64(k[steer.OffNwSrc:]), le.Uint64(k[steer.OffNwSrc+8:])
	b[0], b[1] = le.Uint64(k[steer.OffNwDst:]), le.Uint64(k[steer.OffNwDst+8:])
	sp, dp := uint64(k.TpSrc()), uint64(k.TpDst())
	if a[0] > b[0] || a[0] == b[0] && a[1] > b[1] {
		a, b = b, a
	}
	if sp > dp {
		sp, dp = dp, sp
	}
	h := hashMix(a[0] ^ 0x9e3779b97f4a7c15)
	h = hashMix(h ^ a[1])
	h = hashMix(h ^ b[0])
	h = hashMix(h ^ b[1])
	return hashMix(h ^ sp<<48 ^ dp<<32 ^ uint64(k.NwProto())<<16 ^ uint64(k.DlType()))
}

// shadow follows a copy of a frame through a translation's ops, for the
// lookups where the key alone does not say what the packet has become, and
// for the trace's "the packet after each action". Clones push a copy and
// pop it after the bucket.
type shadow struct {
	inPort uint32
	stack  []shadowPacket
}

type shadowPacket struct {
	pkt  Packet
	lay  Layout
	drop DropReason // the copy was dropped (dec_ttl at 1, no room to push)
}

// shadowHeadroom leaves room for VLAN pushes.
const shadowHeadroom = 64

func newShadow(frame []byte, lay *Layout, inPort uint32) *shadow {
	buf := make([]byte, shadowHeadroom+len(frame)+2*vlanTagLen)
	copy(buf[shadowHeadroom:], frame)
	return &shadow{inPort: inPort, stack: []shadowPacket{{
		pkt: Packet{Buf: buf, Off: shadowHeadroom, Len: len(frame), InPort: inPort},
		lay: *lay,
	}}}
}

func (s *shadow) top() *shadowPacket { return &s.stack[len(s.stack)-1] }

// run applies o to the packet on top. A packet a rewrite drops (dec_ttl at
// 1) is still rewritten by the ops after it: the translation goes on with
// the key whatever the TTL, and the shadow must show that key.
func (s *shadow) run(o *steer.Op) {
	sp := s.top()
	p := Program{ops: []steer.Op{*o}, lastEmit: -1}
	if out, _ := p.Run(&sp.pkt, &sp.lay, 0); out.Kind == OutDrop && out.Reason != DropPortGone && sp.drop == DropNone {
		sp.drop = out.Reason
	}
}

func (s *shadow) push() {
	sp := *s.top()
	sp.pkt.Buf = append([]byte(nil), sp.pkt.Buf...)
	s.stack = append(s.stack, sp)
}

func (s *shadow) pop() { s.stack = s.stack[:len(s.stack)-1] }

// key extracts the packet on top as it is now.
func (s *shadow) key() Key {
	var k Key
	var lay Layout
	sp := s.top()
	ExtractLayout(sp.pkt.Frame(), s.inPort, &k, &lay)
	return k
}

// frame returns a copy of the packet on top as it is now, or nil if it was
// dropped.
func (s *shadow) frame() []byte {
	if s == nil {
		return nil
	}
	sp := s.top()
	if sp.drop != DropNone {
		return nil
	}
	return append([]byte(nil), sp.pkt.Frame()...)
}
