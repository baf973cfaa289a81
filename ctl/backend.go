package ctl

import "github.com/xvs-project/xvs/datapath"

// Backend is what the control plane needs from the switch. datapath.Switch
// implements it; package ctltest has a fake for tests.
//
// Every method may be called from several goroutines at once. Errors wrap the
// datapath sentinels (ErrPortExists, ErrNoSuchPort, ErrNoSuchFlow, ErrInvalid,
// ErrClosed) or flowtable.ErrTooManyMasks, so the Server can map them to HTTP
// status codes; validation errors about a flow's content should be (or wrap)
// a *flowtable.ParseError naming the field.
type Backend interface {
	// AddPort attaches the netdev spec.Name to the switch.
	AddPort(spec datapath.PortSpec) (datapath.PortInfo, error)
	// DeletePort detaches a port.
	DeletePort(name string) error
	// Ports lists the ports in ofport order. The caller owns the slice.
	Ports() []datapath.PortInfo
	// Port describes one port.
	Port(name string) (datapath.PortInfo, error)
	// PortStats returns one port's counters.
	PortStats(name string) (datapath.PortStats, error)

	// ApplyFlows applies one transaction on the flow table: all of it or
	// nothing. It returns the IDs given to change.Add, in order.
	ApplyFlows(change datapath.FlowChange) ([]uint64, error)
	// Flows lists the installed flows with their counters. The caller owns
	// the slice; the *Flow values must not be modified.
	Flows() []datapath.FlowInfo
	// Flow returns one installed flow.
	Flow(id uint64) (datapath.FlowInfo, error)

	// Stats returns the switch's counters.
	Stats() datapath.Stats
	// Health returns nil when the switch works, else what is wrong.
	Health() error
}
