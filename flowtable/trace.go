package flowtable

import (
	"fmt"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Trace is what the pipeline does with one packet, step by step, as
// ovs-appctl ofproto/trace shows it: each table looked up and the flow that
// matched, each action and the packet after it, each group and the bucket
// it picked; then what running the result does: the packets sent and where,
// or why the packet was dropped. Tracing changes nothing: no counter, no
// cache.
type Trace struct {
	Key     Key         // the packet's key as extracted
	Status  ParseStatus // ParseMalformed: the XDP program passes it to the kernel
	Steps   []TraceStep
	Outputs []TraceOutput // what the packet became, in order
	// Drop is why the packet (or its last copy) went nowhere, when it did
	// not: DropNone when it was sent somewhere or passed.
	Drop DropReason
	// NoFlow: no flow of table 0 matches; the XDP program passes such
	// packets to the kernel.
	NoFlow bool
	// Kernel: the table-0 flow says kernel: the XDP program passes it.
	Kernel bool
	// PerPacket: the key alone does not decide this packet's fate (see
	// Result.PerPacket); the trace followed this frame.
	PerPacket bool
}

// TraceKind is the kind of a TraceStep.
type TraceKind uint8

const (
	TraceLookup TraceKind = iota + 1 // a table lookup: Table, Key, Flow (nil on a miss); its flow's actions follow one deeper
	TraceAction                      // an action: Action, Packet
	TraceGroup                       // a group picked a bucket: Group, Bucket (-1: no live bucket)
	TraceBucket                      // a bucket runs (on a copy of the packet): Group, Bucket
	TraceNote                        // Note
)

// TraceStep is one step of a Trace.
type TraceStep struct {
	Kind   TraceKind
	Depth  int // nesting: tables resubmitted to and buckets are one deeper
	Table  uint8
	Key    Key
	Flow   *Flow // TraceLookup: the flow that matched; nil: a miss
	Action string
	Group  uint32
	Bucket int
	// Packet is the frame after the action (TraceAction), or nil when that
	// copy of the packet was dropped.
	Packet []byte
	Note   string
}

// TraceOutput is one thing the packet's program did when run.
type TraceOutput struct {
	Port   uint32 // ofport the frame is sent on; 0 for a drop
	Frame  []byte // the frame as sent
	Drop   DropReason
	Output bool // sent (false: a drop, Drop says why)
}

// tracer records a translation's steps. Its methods do nothing on a nil
// tracer, which is what every translation but a trace's has.
type tracer struct {
	steps []TraceStep
	depth int
	x     *xlator
}

func (t *tracer) add(s TraceStep) {
	s.Depth = t.depth
	t.steps = append(t.steps, s)
}

// lookup records a lookup one level out from the flow's actions, which
// follow it at the current depth.
func (t *tracer) lookup(table uint8, k *Key, e *Entry) {
	if t == nil {
		return
	}
	s := TraceStep{Kind: TraceLookup, Table: table, Key: *k}
	if e != nil {
		s.Flow = e.Flow
	}
	t.add(s)
	t.steps[len(t.steps)-1].Depth = max(t.depth-1, 0)
}

// enter and leave nest the steps between them one level deeper.
func (t *tracer) enter() {
	if t != nil {
		t.depth++
	}
}

func (t *tracer) leave() {
	if t != nil {
		t.depth--
	}
}

func (t *tracer) action(a *Action, o *steer.Op) {
	if t == nil {
		return
	}
	text := fmt.Sprintf("op %d", o.Code)
	if a != nil {
		text = FormatAction(*a)
	} else if o.Code == steer.OpDrop {
		text = "drop"
	}
	t.add(TraceStep{Kind: TraceAction, Action: text})
	if o.Code == steer.OpGotoTable || o.Code == steer.OpResubmit || o.Code == steer.OpGroup {
		t.steps[len(t.steps)-1].Packet = t.x.shadow.frame()
	}
}

// packet records the packet after the last action.
func (t *tracer) packet(s *shadow) {
	if t == nil || len(t.steps) == 0 || t.steps[len(t.steps)-1].Kind != TraceAction {
		return
	}
	t.steps[len(t.steps)-1].Packet = s.frame()
}

func (t *tracer) pick(ge *GroupEntry, i int) {
	if t == nil {
		return
	}
	t.add(TraceStep{Kind: TraceGroup, Group: ge.Group.ID, Bucket: i})
}

func (t *tracer) bucket(ge *GroupEntry, i int) {
	if t == nil {
		return
	}
	t.add(TraceStep{Kind: TraceBucket, Group: ge.Group.ID, Bucket: i})
	t.depth++
}

func (t *tracer) bucketEnd() {
	if t != nil {
		t.depth--
	}
}

func (t *tracer) note(format string, args ...any) {
	if t == nil {
		return
	}
	t.add(TraceStep{Kind: TraceNote, Note: fmt.Sprintf(format, args...)})
}

// Trace traces frame, received on ofport inPort, through the pipeline as it
// is in t.
func (t *Table) Trace(frame []byte, inPort uint32) *Trace {
	tr := &Trace{}
	var lay Layout
	tr.Status = ExtractLayout(frame, inPort, &tr.Key, &lay)
	if tr.Status != ParseOK {
		return tr
	}
	e := t.Lookup(&tr.Key)
	rec := &tracer{depth: 1}
	rec.lookup(0, &tr.Key, e)
	if e == nil {
		tr.NoFlow = true
		tr.Steps = rec.steps
		return tr
	}
	if e.Flow.Verdict() == steer.VerdictPass {
		tr.Kernel = true
		rec.action(&e.Flow.Actions[0], &e.Program.ops[0])
		tr.Steps = rec.steps
		return tr
	}
	tr.PerPacket = t.Resolve(e, &tr.Key).PerPacket()
	// Follow the frame itself, so that each step shows the packet.
	x := &xlator{t: t, key: tr.Key, inPort: inPort, tr: rec, res: &xlated{}}
	rec.x = x
	x.shadow = newShadow(frame, &lay, inPort)
	x.runFlow(e, 0)
	x.finish()
	tr.Steps = rec.steps
	tr.run(&x.res.prog, frame, &lay, inPort)
	return tr
}

// run runs prog on a copy of frame as a poller would and records what
// comes out.
func (tr *Trace) run(prog *Program, frame []byte, lay *Layout, inPort uint32) {
	buf := make([]byte, shadowHeadroom+len(frame)+2*vlanTagLen)
	copy(buf[shadowHeadroom:], frame)
	pkt := Packet{Buf: buf, Off: shadowHeadroom, Len: len(frame), InPort: inPort}
	l := *lay
	sent := tr.runRange(prog, &pkt, &l, 0, len(prog.ops))
	if !sent && tr.Drop == DropNone {
		tr.Drop = DropActions
	}
}

// runRange runs ops [pc, end) of prog on pkt, clones on copies, and reports
// whether anything was sent.
func (tr *Trace) runRange(prog *Program, pkt *Packet, lay *Layout, pc, end int) bool {
	sent := false
	for pc >= 0 && pc < end {
		var out Output
		out, pc = prog.RunTo(pkt, lay, pc, end)
		switch out.Kind {
		case OutPort:
			tr.Outputs = append(tr.Outputs, TraceOutput{Port: out.Port, Frame: append([]byte(nil), pkt.Frame()...), Output: true})
			sent = true
		case OutDrop:
			tr.Outputs = append(tr.Outputs, TraceOutput{Drop: out.Reason})
			if !sent {
				tr.Drop = out.Reason
			}
		case OutKernel:
			tr.Outputs = append(tr.Outputs, TraceOutput{Drop: DropKernel})
		case OutClone:
			c := Packet{Buf: append([]byte(nil), pkt.Buf...), Off: pkt.Off, Len: pkt.Len, InPort: pkt.InPort}
			cl := *lay
			if tr.runRange(prog, &c, &cl, pc, pc+out.Span()) {
				sent = true
			}
			pc += out.Span()
		}
	}
	if sent {
		tr.Drop = DropNone
	}
	return sent
}
