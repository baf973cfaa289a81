package flowtable

import "github.com/xvs-project/xvs/flowtable/steer"

// The XDP fast path runs a table-0 flow itself when the flow's program
// compiles to an action record (steer.NewRecord): rewrites XDP does, then
// exactly one output or in_port. Offloadability is decided by compiling to
// the record, not by a list of actions: the record holds the program's own
// ops, which the XDP program runs with Program.Run's semantics.

// Reasons a flow stays in userspace, besides steer's (ReasonNoOutput, ...)
// and the name of an action only userspace runs ("group", "goto_table").
const (
	ReasonLaterTable = "later_table" // only table 0 is in the XDP program
)

// fastPathProblem says why flow f, whose steering verdict is v
// (Flow.Verdict), with program p cannot run in XDP, as a short token (""
// when it can).
func fastPathProblem(f *Flow, v steer.Verdict, p *Program) string {
	if f.Table != 0 {
		return ReasonLaterTable
	}
	switch v {
	case steer.VerdictDrop, steer.VerdictPass:
		return "" // the steering verdict itself, no record
	}
	if pr := steer.CheckRecord(p.ops); pr != nil {
		return problemReason(f, pr)
	}
	return ""
}

// problemReason names what pr is about: the action of an op only userspace
// runs, or pr's own reason. Each action compiles to exactly one op, so op i
// is action i.
func problemReason(f *Flow, pr *steer.Problem) string {
	if pr.Reason == steer.ReasonUserspace && pr.Op >= 0 && pr.Op < len(f.Actions) {
		return f.Actions[pr.Op].Name()
	}
	return pr.Reason
}

// FastPath returns the action record the XDP program runs for e, or why
// there is none: the reason as a short token without spaces ("group",
// steer.ReasonOutputs, ReasonLaterTable, ...). Drop and kernel flows have
// no record and no reason: their steering verdict is all XDP needs.
func (e *Entry) FastPath() (steer.Record, string) {
	var r steer.Record
	why := e.CompileFastPath(&r)
	return r, why
}

// CompileFastPath is FastPath into r, in place: it sets r to e's record,
// or to the zero record when e has none, and returns FastPath's reason.
func (e *Entry) CompileFastPath(r *steer.Record) string {
	if e.verdict != steer.VerdictForward { // (a reason makes it a redirect)
		*r = steer.Record{}
		return e.fast // "" for drop and kernel flows
	}
	if pr := r.Compile(e.Flow.ID, e.Program.ops); pr != nil {
		panic("flowtable: a record that compiled once does not: " + pr.Error())
	}
	return ""
}

// FastPathReason is the reason FastPath gives, without building a record.
func (e *Entry) FastPathReason() string { return e.fast }

// FastPathOutput returns the ofport the record of e outputs to (0 for
// in_port), without building the record; ok is false when e has none.
func (e *Entry) FastPathOutput() (port uint32, ok bool) {
	if e.verdict != steer.VerdictForward {
		return 0, false
	}
	if last := &e.Program.ops[len(e.Program.ops)-1]; last.Code == steer.OpOutput {
		return last.Val, true
	}
	return 0, true
}

// Verdict is the steering verdict of e: Flow.Verdict, except that a flow
// whose program compiles to a record is steer.VerdictForward. (Whether the
// datapath lets it run in XDP, for example whether its output port takes
// redirected frames, is the datapath's to decide; demoted, it is a
// redirect.)
//
// It is worked out when the entry is made (fastPathOf): a flow's actions
// are in memory of their own, and a steering compile of a large table
// spent most of its time fetching them.
func (e *Entry) Verdict() steer.Verdict { return e.verdict }

// fastPathOf is what follows from flow f and its program p for an entry:
// its Verdict, and why it cannot run in XDP (fastPathProblem, "" if it
// can). Every entry's is worked out once its program is compiled
// (lastProgram.set), and shared by the entries that share the program.
func fastPathOf(f *Flow, p *Program) (v steer.Verdict, fast string) {
	v = f.Verdict()
	fast = fastPathProblem(f, v, p)
	if v == steer.VerdictRedirect && fast == "" {
		v = steer.VerdictForward
	}
	return v, fast
}
