package ctl

import (
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// Backend is what the control plane needs from the switch. datapath.Switch
// implements it; package ctltest has a fake for tests.
//
// Every method may be called from several goroutines at once. Errors wrap the
// datapath sentinels (ErrPortExists, ErrNoSuchPort, ErrNoSuchFlow, ErrInvalid,
// ErrClosed) or flowtable.ErrTooManyMasks, so the Server can map them to HTTP
// status codes; validation errors about a flow's content should be (or wrap)
// a *flowtable.ParseError naming the field.
type Backend interface {
	// AddPort attaches the netdev spec.Name to the switch (or, with
	// spec.KeepAbsent, configures it absent if it cannot).
	AddPort(spec datapath.PortSpec) (datapath.PortInfo, error)
	// DeletePort detaches a port.
	DeletePort(name string) error
	// Ports lists the ports, attached and absent, in ofport order. The
	// caller owns the slice.
	Ports() []datapath.PortInfo
	// Port describes one port.
	Port(name string) (datapath.PortInfo, error)
	// PortStats returns one port's counters.
	PortStats(name string) (datapath.PortStats, error)
	// SetLiveness sets how a port's liveness is decided.
	SetLiveness(name string, l datapath.Liveness) (datapath.PortInfo, error)

	// ApplyCommit applies one transaction on the pipeline, flows and
	// groups: all of it or nothing. It says what it added and removed.
	// commit is told of the new pipeline before it goes live, and an
	// error from it abandons the change (datapath.Switch.ApplyCommit).
	ApplyCommit(change datapath.Change, commit datapath.Commit) (datapath.Applied, error)
	// Pipeline returns the live pipeline, read-only.
	Pipeline() *flowtable.Table
	// Flows lists the installed flows with their counters. The caller owns
	// the slice; the *Flow values must not be modified.
	Flows() []datapath.FlowInfo
	// SelectFlows lists the installed flows keep is true of (every flow
	// when keep is nil), in the order of Flows, with their counters.
	SelectFlows(keep func(*flowtable.Flow) bool) []datapath.FlowInfo
	// Flow returns one installed flow.
	Flow(id uint64) (datapath.FlowInfo, error)

	// Groups lists the installed groups with their counters, by ID. The
	// caller owns the slice; the *Group values must not be modified.
	Groups() []datapath.GroupInfo
	// Group returns one installed group.
	Group(id uint32) (datapath.GroupInfo, error)
	// Tables returns the counters of the tables that have flows or were
	// looked up in, by table.
	Tables() []datapath.TableStats

	// Trace shows what the switch does with a frame, changing nothing.
	Trace(in datapath.TraceInput) (datapath.TraceResult, error)

	// Stats returns the switch's counters.
	Stats() datapath.Stats
	// Frames says where the frames of every UMEM are.
	Frames() ([]datapath.FrameStats, error)
	// Health returns nil when the switch works, else what is wrong.
	Health() error
}
