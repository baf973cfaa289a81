package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// Action is an XDP program's return code (enum xdp_action).
type Action uint32

const (
	ActionAborted  Action = 0
	ActionDrop     Action = 1
	ActionPass     Action = 2
	ActionTX       Action = 3
	ActionRedirect Action = 4
)

var actionNames = [...]string{"aborted", "drop", "pass", "tx", "redirect"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint32(a))
}

// TestResult is what one test run of the program decided and, for objects
// loaded with Options.Trace, what it saw.
type TestResult struct {
	Action Action
	// Frame is the frame as the program left it (rewritten by a fast path
	// record, or unchanged).
	Frame []byte

	// The fields below are set only when Traced is true.
	Traced      bool
	Key         steer.Key     // the key the program extracted
	UnknownPort bool          // ifindex is not in the ports map: Key is all zero
	Malformed   bool          // Key holds the fields parsed before the fault
	Hit         bool          // a rule matched
	MaskID      uint32        // the winning rule's mask
	Rank        steer.Rank    // its rank
	Verdict     steer.Verdict // its verdict
	Visited     int           // masks the classifier looked up (0 when Cached)
	Cached      bool          // the exact-match cache answered, not the classifier
	// For a forward rule: what the fast path did, and the output ofport it
	// chose (0 if it did not get that far).
	FastPath FastPathResult
	OutPort  uint32
}

// FastPathResult is what the fast path did with a forward rule's frame
// (enum fp_result).
type FastPathResult uint8

const (
	FastPathNone      FastPathResult = 0 // not a forward rule
	FastPathForwarded FastPathResult = 1 // rewritten and redirected to the output port
	FastPathUser      FastPathResult = 2 // handed to userspace untouched
	FastPathStale     FastPathResult = 3 // the rule's record is another flow's: handed to userspace untouched
	FastPathError     FastPathResult = 4 // failed after writing: dropped
)

var fastPathNames = [...]string{"none", "forwarded", "user", "stale", "error"}

func (r FastPathResult) String() string {
	if int(r) < len(fastPathNames) {
		return fastPathNames[r]
	}
	return fmt.Sprintf("fast_path(%d)", uint8(r))
}

// xdpMD is struct xdp_md, the context of an XDP test run.
type xdpMD struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// The kernel wants at least an Ethernet header of test input.
const minTestInput = 14

// MaxTestFrame is the longest frame TestRun takes: a page less the XDP
// headroom (256) and the skb_shared_info tailroom (320 on x86-64). The
// kernel would put the rest in a fragment this program does not read.
const MaxTestFrame = 4096 - 256 - 320

// TestRun runs the program once on frame with BPF_PROG_TEST_RUN, as if it
// arrived on device ifindex, RX queue queue. The device must exist in the
// caller's network namespace and have more than queue RX queues. Counters
// count the run like a real frame; a REDIRECT verdict is not carried out.
// Frames from 0 to MaxTestFrame bytes are accepted (below 14 bytes, kernel
// 6.18 or later: the program sees data_end bytes of a padded input).
//
// With Options.Trace, the result also holds the extracted key and the
// classification, read from the program's one-entry trace map: TestRun
// calls are serialized, and objects loaded with Trace must not see real
// traffic at the same time.
func (o *Objects) TestRun(frame []byte, ifindex, queue int) (TestResult, error) {
	var res TestResult
	if ifindex <= 0 || queue < 0 {
		return res, fmt.Errorf("test run: bad ifindex %d or queue %d", ifindex, queue)
	}
	if len(frame) > MaxTestFrame {
		return res, fmt.Errorf("test run: %d-byte frame, at most %d", len(frame), MaxTestFrame)
	}
	// Shorter frames are padded, and data_end cuts the padding off: it
	// goes to a fragment the program does not see.
	data := frame
	if len(frame) < minTestInput {
		data = make([]byte, minTestInput)
		copy(data, frame)
	}
	ctx := xdpMD{
		DataEnd:        uint32(len(frame)),
		IngressIfindex: uint32(ifindex),
		RxQueueIndex:   uint32(queue),
	}

	if o.trace {
		o.traceMu.Lock()
		defer o.traceMu.Unlock()
		if err := o.objs.Trace.Put(uint32(0), &traceRecord{Status: traceNone}); err != nil {
			return res, fmt.Errorf("test run: reset trace: %w", err)
		}
	}
	out := make([]byte, len(data)+4*steer.MaxOps+64)
	opts := ebpf.RunOptions{Data: data, DataOut: out, Context: &ctx, ContextOut: &ctx}
	ret, err := o.objs.XvsXdp.Run(&opts)
	if err != nil {
		return res, fmt.Errorf("test run: %w", err)
	}
	res.Action = Action(ret)
	// The kernel copies out data..data_end as the program left it; the
	// context's data_end is that length.
	res.Frame = opts.DataOut[:min(len(opts.DataOut), int(ctx.DataEnd-ctx.Data))]
	if !o.trace {
		return res, nil
	}

	var tr traceRecord
	if err := o.objs.Trace.Lookup(uint32(0), &tr); err != nil {
		return res, fmt.Errorf("test run: read trace: %w", err)
	}
	if tr.Status == traceNone {
		return res, errors.New("test run: the program recorded no trace")
	}
	if tr.Len != uint32(len(frame)) || tr.IngressIfindex != uint32(ifindex) {
		return res, fmt.Errorf("test run: trace is of another frame (%d bytes on ifindex %d)", tr.Len, tr.IngressIfindex)
	}
	res.Traced = true
	res.Key = tr.Key
	res.UnknownPort = tr.Status == traceUnknownPort
	res.Malformed = tr.Status == traceMalformed
	res.Hit = tr.Hit != 0
	res.MaskID = tr.MaskID
	res.Rank = steer.Rank(tr.Rank)
	res.Verdict = steer.Verdict(tr.Verdict)
	res.Visited = int(tr.Visited)
	res.Cached = tr.EMC != 0
	res.FastPath = FastPathResult(tr.FP)
	res.OutPort = tr.OutPort
	return res, nil
}

// TestRunKey runs the program on frame as received on ifindex, RX queue 0,
// and returns the key it extracted and its action. The objects must be
// loaded with Options.Trace, and ifindex named by SetPort (for an unknown
// ifindex the program extracts nothing and the key is zero). A malformed
// frame yields the fields parsed before the fault, like
// flowtable.Extract; use TestRun to tell.
func (o *Objects) TestRunKey(frame []byte, ifindex int) (steer.Key, Action, error) {
	if !o.trace {
		return steer.Key{}, 0, errors.New("test run key: objects loaded without Options.Trace")
	}
	res, err := o.TestRun(frame, ifindex, 0)
	return res.Key, res.Action, err
}
