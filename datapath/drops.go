package datapath

import (
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/xvs-project/xvs/flowtable"
)

// DropReason says why the switch dropped a frame. Every reason has its own
// counter on every socket; dropReasons names them.
type DropReason uint8

// The reasons. To add one, add its constant here and its line to
// dropReasons; everything that shows drops (PortStats JSON, xvsctl
// dump-ports, /metrics) iterates the table.
const (
	DropNoFlow DropReason = iota
	DropMalformed
	DropKernelFlow
	DropAction
	DropDecTTLZero
	DropPortGone
	DropTooBig
	DropTableMiss
	DropTooDeep
	DropNoTxQueue
	DropHandoffFull
	DropTxRingFull
	DropNoFrame
	NumDropReasons
)

// Side is where a drop is counted: SideRx on the port the frame came in on
// (it went nowhere), SideTx on the port it was going out of.
type Side string

const (
	SideRx Side = "rx"
	SideTx Side = "tx"
)

var dropReasons = [NumDropReasons]struct {
	name string
	side Side
	help string
}{
	DropNoFlow:      {"no_flow", SideRx, "redirected to userspace, but no flow matched (a steering update raced)"},
	DropMalformed:   {"malformed", SideRx, "redirected, but the parser refused the headers (a steering update raced)"},
	DropKernelFlow:  {"kernel_flow", SideRx, "its flow sends it to the kernel, which it can no longer reach (a table update raced)"},
	DropAction:      {"action_drop", SideRx, "its flow's action list is empty: drop"},
	DropDecTTLZero:  {"dec_ttl_zero", SideRx, "dec_ttl on a TTL or hop limit of 0 or 1"},
	DropPortGone:    {"port_gone", SideRx, "one output names a port that no longer exists"},
	DropTooBig:      {"too_big", SideRx, "no room in the frame for a VLAN push"},
	DropTableMiss:   {"table_miss", SideRx, "goto_table found no flow in that table"},
	DropTooDeep:     {"too_deep", SideRx, "the pipeline went past its bounds (64 nested resubmits or groups, 4096 in all)"},
	DropNoTxQueue:   {"no_tx_queue", SideRx, "the output port has no queue this poller can reach (its queues are being reconfigured)"},
	DropHandoffFull: {"handoff_full", SideRx, "the poller serving the output port's queue lent no free frame: it is behind"},
	DropTxRingFull:  {"tx_ring_full", SideTx, "the output socket's TX ring was full"},
	DropNoFrame:     {"no_frame", SideTx, "no free frame for a copy (a flow with several outputs, or a port with a UMEM of its own)"},
}

// String returns the reason's name, as in JSON and metrics.
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropReasons[r].name
	}
	return fmt.Sprintf("drop_reason(%d)", uint8(r))
}

// Side returns where the reason is counted.
func (r DropReason) Side() Side {
	if r < NumDropReasons {
		return dropReasons[r].side
	}
	return ""
}

// Help describes the reason in a sentence.
func (r DropReason) Help() string {
	if r < NumDropReasons {
		return dropReasons[r].help
	}
	return ""
}

// programDrops maps the reasons a flow program gives to the switch's.
var programDrops = [...]DropReason{
	flowtable.DropActions:    DropAction,
	flowtable.DropDecTTLZero: DropDecTTLZero,
	flowtable.DropPortGone:   DropPortGone,
	flowtable.DropTooBig:     DropTooBig,
	flowtable.DropTableMiss:  DropTableMiss,
	flowtable.DropTooDeep:    DropTooDeep,
	flowtable.DropKernel:     DropKernelFlow,
}

// ProgramDrop returns the switch's reason for a program's.
func ProgramDrop(r flowtable.DropReason) DropReason {
	if int(r) < len(programDrops) && r != flowtable.DropNone {
		return programDrops[r]
	}
	return DropAction
}

// Drops are drop counts by reason. In JSON they are an object of reason
// names to counts ({"no_flow": 0, ...}); names a reader does not know are
// ignored, so a newer switch's reasons do not break an older client.
type Drops [NumDropReasons]uint64

// Total returns the sum over the reasons of side ("" for both).
func (d *Drops) Total(side Side) uint64 {
	var n uint64
	for r, v := range d {
		if side == "" || DropReason(r).Side() == side {
			n += v
		}
	}
	return n
}

func (d Drops) MarshalJSON() ([]byte, error) {
	m := make(map[string]uint64, NumDropReasons)
	for r, v := range d {
		m[DropReason(r).String()] = v
	}
	return json.Marshal(m)
}

func (d *Drops) UnmarshalJSON(b []byte) error {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*d = Drops{}
	for r := range DropReason(NumDropReasons) {
		d[r] = m[r.String()]
	}
	return nil
}

// dropCounters are one socket's drop counters. Only the poller owning the
// socket adds to them; anyone may read them.
type dropCounters [NumDropReasons]atomic.Uint64

func (c *dropCounters) add(r DropReason, n uint64) { c[r].Add(n) }

// sumInto adds the counters to d.
func (c *dropCounters) sumInto(d *Drops) {
	for r := range c {
		d[r] += c[r].Load()
	}
}
