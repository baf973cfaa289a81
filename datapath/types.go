package datapath

import (
	"errors"
	"time"

	"github.com/xvs-project/xvs/flowtable"
)

// Errors a caller can act on. ctl maps them to HTTP status codes.
var (
	ErrPortExists = errors.New("port already exists")
	ErrNoSuchPort = flowtable.ErrNoSuchPort
	ErrNoSuchFlow = flowtable.ErrNoSuchFlow
	// Group errors: see flowtable.Table.Apply.
	ErrNoSuchGroup = flowtable.ErrNoSuchGroup
	ErrGroupExists = flowtable.ErrGroupExists
	ErrGroupInUse  = flowtable.ErrGroupInUse
	ErrInvalid     = flowtable.ErrInvalid // bad input: wrapped by every validation error
	ErrClosed      = errors.New("switch is closed")
	// ErrNoSuchDevice: the netdev to add as a port does not exist.
	ErrNoSuchDevice = errors.New("no such network device")
	// ErrBusy: what a port needs is held by another program: the device's
	// XDP hook, or one of its queues (another AF_XDP socket).
	ErrBusy = errors.New("in use by another program")
	// ErrNotSupported: the device cannot do what was asked (native XDP on
	// a driver without it).
	ErrNotSupported = errors.New("not supported by the device")
)

// XDPMode is how the XDP program is attached to a port.
type XDPMode string

const (
	ModeAuto    XDPMode = "auto"    // native, else generic
	ModeNative  XDPMode = "native"  // driver mode
	ModeGeneric XDPMode = "generic" // skb mode
)

// PortSpec describes a port to add.
type PortSpec struct {
	Name string  // Linux netdev name
	Mode XDPMode // "" = ModeAuto
	// OFPort asks for an ofport (a restore asks for the one saved, so that
	// numbers survive a restart); 0, or a number another name holds: the
	// switch chooses. A name the switch knows keeps its number.
	OFPort uint32
	// KeepAbsent: a port whose device does not exist, or cannot be
	// attached, is added all the same, in state PortAbsent or PortFailed
	// (Problem says why). It keeps its ofport and the flows that name it,
	// is not live, and is attached when netlink tells of a device of its
	// name (or the periodic check finds one). Without it such a port is
	// refused. Configuration is the user's: a device missing at start
	// must not erase it.
	KeepAbsent bool
}

// Port states (PortInfo.State).
const (
	PortUp       = "up"
	PortDegraded = "degraded" // attached, but an active queue has no socket
	PortAbsent   = "absent"   // configured, no device of its name
	PortFailed   = "failed"   // configured, its device could not be attached
)

// PortInfo describes a live port.
type PortInfo struct {
	Name    string `json:"name"`
	OFPort  uint32 `json:"ofport"`  // stable number used in keys and dumps
	Ifindex int    `json:"ifindex"` // Linux ifindex
	MAC     string `json:"mac"`
	MTU     int    `json:"mtu"`
	// Queues are the RX queues served: each has a socket. It equals
	// ActiveQueues unless the port is degraded.
	Queues       int       `json:"queues"`
	ActiveQueues int       `json:"active_queues"`     // RX queues the device has active (ethtool -l: combined + rx)
	MaxQueues    int       `json:"max_queues"`        // RX queues the device can activate (ethtool -L)
	XDPMode      XDPMode   `json:"xdp_mode"`          // the mode in use (native or generic)
	XSKMode      string    `json:"xsk_mode"`          // "copy" or "zerocopy"
	UmemMode     string    `json:"umem_mode"`         // "shared" (descriptors move), "extra" (on a poller's next UMEM: frames to ports of the first are copied) or "own" (frames copied between UMEMs)
	State        string    `json:"state"`             // PortUp, PortDegraded, PortAbsent or PortFailed
	Problem      string    `json:"problem,omitempty"` // why the port is not up
	AddedAt      time.Time `json:"added_at"`
	// FastPathOut is "ok" when the port takes frames the XDP fast path
	// redirects to it, so flows that output to it can run in XDP; else why
	// not ("no_ndo_xdp_xmit": on a veth, the peer has neither an XDP
	// program nor GRO; "fast_path_off").
	FastPathOut string `json:"fast_path_out"`
	// Live says whether groups may use the port (a bucket watching it is
	// live): its link is up with carrier, unless Liveness overrides that.
	Live     bool     `json:"live"`
	Liveness Liveness `json:"liveness"`
	LinkUp   bool     `json:"link_up"` // IFF_UP
	Carrier  bool     `json:"carrier"` // IFF_LOWER_UP
}

// EventType names what an Event says.
type EventType string

const (
	EventPortAdded    EventType = "port_added"     // Port, Live
	EventPortRemoved  EventType = "port_removed"   // Port
	EventLink         EventType = "link"           // Port, Up, Carrier: what netlink said
	EventLiveness     EventType = "liveness"       // Port, Live, Reason
	EventFailover     EventType = "group_failover" // Group, From, To: a fast_failover group moved (-1: no live bucket)
	EventBucket       EventType = "group_bucket"   // Group, Bucket, Live: a bucket of another group became live or dead
	EventFlowsExpired EventType = "flows_expired"  // Flows: removed by their idle or hard timeout
)

// Event is something the switch did on its own, for Config.OnEvent.
type Event struct {
	Type    EventType
	Time    time.Time
	Port    string
	Up      bool
	Carrier bool
	Live    bool
	Reason  string // EventLiveness: carrier, no_carrier, admin_down, override
	Group   uint32
	Bucket  int
	From    int
	To      int
	Flows   []uint64
}

// PortStats are a port's counters.
type PortStats struct {
	Name      string `json:"name"`
	OFPort    uint32 `json:"ofport"`
	RxPackets uint64 `json:"rx_packets"` // received by the switch from this port's sockets
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"` // sent by the switch on this port
	TxBytes   uint64 `json:"tx_bytes"`
	// Drops by reason (see DropReason): rx reasons count frames this port
	// received that went nowhere, tx reasons frames for this port that
	// could not be sent.
	Drops Drops `json:"drops"`
	// XDP program verdicts on this port (packets).
	XDP map[string]uint64 `json:"xdp"` // steer.Counter names -> packets
	// Kernel XSK statistics summed over this port's sockets.
	XSK XSKStats `json:"xsk"`
}

// XSKStats mirrors struct xdp_statistics.
type XSKStats struct {
	RxDropped            uint64 `json:"rx_dropped"`
	RxInvalidDescs       uint64 `json:"rx_invalid_descs"`
	TxInvalidDescs       uint64 `json:"tx_invalid_descs"`
	RxRingFull           uint64 `json:"rx_ring_full"`
	RxFillRingEmptyDescs uint64 `json:"rx_fill_ring_empty_descs"`
	TxRingEmptyDescs     uint64 `json:"tx_ring_empty_descs"`
}

// GroupInfo is an installed group with its counters.
type GroupInfo struct {
	Group *flowtable.Group
	Stats flowtable.GroupStats // Stats.Buckets[i].Live: whether bucket i may be picked now
	Flows int                  // flows that send to it (OpenFlow's ref_count)
}

// TableStats are one table's counters (see flowtable.TableStats); table 0's
// count the XDP program's lookups too.
type TableStats = flowtable.TableStats

// FlowInfo is an installed flow with its counters.
type FlowInfo struct {
	Flow     *flowtable.Flow
	Text     string // Flow in canonical text form (Flow.String)
	Packets  uint64 // in userspace and in XDP
	Bytes    uint64
	Duration time.Duration // since install
	IdleAge  time.Duration // since the last packet (or install)
	// Datapath says where the flow's packets are handled: DatapathXDP (the
	// XDP program forwards, drops or passes them itself) or DatapathUser,
	// with DatapathReason a short token saying why ("group",
	// "several_outputs", "fast_path_off", "no_ndo_xdp_xmit:p1", ...).
	Datapath       string
	DatapathReason string
}

// PollerStats are one poller's counters.
type PollerStats struct {
	Queue int `json:"queue"`
	CPU   int `json:"cpu"` // -1 if not pinned
	// Mode and Window are how the poller waits (Config.PollMode,
	// Config.PollWindow).
	Mode    PollMode      `json:"mode"`
	Window  time.Duration `json:"window_ns"`
	Batches uint64        `json:"batches"`
	Packets uint64        `json:"packets"`
	BusyNs  uint64        `json:"busy_ns"` // time in batches that moved packets
	IdleNs  uint64        `json:"idle_ns"` // time polling for nothing or sleeping in poll(2)
	// Sleeps are the poller's sleeps in poll(2), SleepNs the time they
	// took (part of IdleNs). A sleep ends for an event (Wakeups: frames,
	// a hand-off, a command), by the poller's own timer ahead of a burst
	// it expects (EarlyWakeups, Config.PollMode adaptive), or by the poll
	// timeout (the rest).
	Sleeps       uint64 `json:"sleeps"`
	SleepNs      uint64 `json:"sleep_ns"`
	Wakeups      uint64 `json:"wakeups"`
	EarlyWakeups uint64 `json:"early_wakeups"`
	// HandoffWakeups are the Wakeups another poller's hand-off caused
	// (among other events, maybe).
	HandoffWakeups uint64 `json:"handoff_wakeups"`
	// Handoffs are frames other pollers switched to a port queue this
	// poller serves, and it queued for TX.
	Handoffs uint64 `json:"handoffs"`
	// HandoffLost are frames handed over for a port queue this poller no
	// longer serves. Reconfiguration drains hand-offs before it removes a
	// socket, so this stays 0; it is counted to prove it.
	HandoffLost uint64 `json:"handoff_lost"`
}

// Stats are the switch's counters.
type Stats struct {
	Ports   []PortStats   `json:"ports"`
	Pollers []PollerStats `json:"pollers"`
	Flows   int           `json:"flows"`
	Masks   int           `json:"masks"`           // masks in the steering classifier
	Fast    int           `json:"fast_path_flows"` // flows the XDP fast path forwards itself
	// Syncs counts the steering syncs that went through, by the way they
	// went: by delta (only the keys a change touched) or in full (every
	// rule compiled and compared).
	Syncs  SyncStats     `json:"steering_syncs"`
	Uptime time.Duration `json:"uptime_ns"`
}

// SyncStats counts steering syncs by the way they went.
type SyncStats struct {
	Delta uint64 `json:"delta"`
	Full  uint64 `json:"full"`
}

// Change is one transaction on the pipeline, flows and groups: all of it
// applies, or nothing does.
type Change = flowtable.Change

// Commit is told of the pipeline a change builds before it goes live
// (Switch.ApplyCommit): the control plane saves it there, and an error
// abandons the change.
type Commit func(next *flowtable.Table) error

// Applied says what a Change did: the IDs given to its added flows, in
// order, and the IDs of the flows it removed because they sent to a group
// it removed, by ID. Unchanged is set when the pipeline is as it was (a replace
// with the flows already installed, which keep their IDs).
type Applied struct {
	Added     []uint64
	Removed   []uint64
	Unchanged bool
}
