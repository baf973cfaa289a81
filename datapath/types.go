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
	ErrInvalid    = flowtable.ErrInvalid // bad input: wrapped by every validation error
	ErrClosed     = errors.New("switch is closed")
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
}

// PortInfo describes a live port.
type PortInfo struct {
	Name     string    `json:"name"`
	OFPort   uint32    `json:"ofport"`  // stable number used in keys and dumps
	Ifindex  int       `json:"ifindex"` // Linux ifindex
	MAC      string    `json:"mac"`
	MTU      int       `json:"mtu"`
	Queues   int       `json:"queues"`    // RX queues with a socket
	XDPMode  XDPMode   `json:"xdp_mode"`  // the mode in use (native or generic)
	XSKMode  string    `json:"xsk_mode"`  // "copy" or "zerocopy"
	UmemMode string    `json:"umem_mode"` // "shared" (descriptors move) or "own" (frames copied between UMEMs)
	State    string    `json:"state"`     // "up"
	AddedAt  time.Time `json:"added_at"`
	// FastPathOut is "ok" when the port takes frames the XDP fast path
	// redirects to it, so flows that output to it can run in XDP; else why
	// not ("no_ndo_xdp_xmit": on a veth, the peer has neither an XDP
	// program nor GRO; "fast_path_off").
	FastPathOut string `json:"fast_path_out"`
}

// PortStats are a port's counters.
type PortStats struct {
	Name      string `json:"name"`
	OFPort    uint32 `json:"ofport"`
	RxPackets uint64 `json:"rx_packets"` // received by the switch from this port's sockets
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"` // sent by the switch on this port
	TxBytes   uint64 `json:"tx_bytes"`
	// Drops by reason.
	TxRingFull uint64 `json:"tx_ring_full"` // TX ring full: frame dropped
	NoFrame    uint64 `json:"no_frame"`     // no free frame for a copy (flood/multi-output)
	NoFlow     uint64 `json:"no_flow"`      // redirected, but no userspace flow matched (steering update race)
	ActionDrop uint64 `json:"action_drop"`  // flow's actions dropped it (dec_ttl at zero, ...)
	TooBig     uint64 `json:"too_big"`      // did not fit the frame after a rewrite (VLAN push)
	NoTxQueue  uint64 `json:"no_tx_queue"`  // output port has no socket on the RX queue's index: dropped
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

// FlowInfo is an installed flow with its counters.
type FlowInfo struct {
	Flow     *flowtable.Flow
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
	Queue   int    `json:"queue"`
	CPU     int    `json:"cpu"` // -1 if not pinned
	Batches uint64 `json:"batches"`
	Packets uint64 `json:"packets"`
	BusyNs  uint64 `json:"busy_ns"` // time in batches that moved packets
	IdleNs  uint64 `json:"idle_ns"` // time polling for nothing or sleeping in poll(2)
	Wakeups uint64 `json:"wakeups"` // returns from poll(2)
}

// Stats are the switch's counters.
type Stats struct {
	Ports   []PortStats   `json:"ports"`
	Pollers []PollerStats `json:"pollers"`
	Flows   int           `json:"flows"`
	Masks   int           `json:"masks"`           // masks in the steering classifier
	Fast    int           `json:"fast_path_flows"` // flows the XDP fast path forwards itself
	Uptime  time.Duration `json:"uptime_ns"`
}

// FlowChange is one transaction on the flow table: all of it applies, or
// nothing does.
type FlowChange = flowtable.Change
