package api

import "time"

// XDPMode is how the XDP program is attached to a port.
type XDPMode string

const (
	ModeAuto    XDPMode = "auto"    // native if the driver can, else generic
	ModeNative  XDPMode = "native"  // driver mode
	ModeGeneric XDPMode = "generic" // skb mode
)

// PortRequest is the body of POST /v1/ports.
type PortRequest struct {
	Name string  `json:"name"`           // Linux netdev name
	Mode XDPMode `json:"mode,omitempty"` // "" = auto
}

// PortInfo describes a port of the switch.
type PortInfo struct {
	Name    string `json:"name"`
	OFPort  uint32 `json:"ofport"`  // stable number used in keys and dumps
	Ifindex int    `json:"ifindex"` // Linux ifindex
	MAC     string `json:"mac"`     // "02:00:00:00:00:01"
	MTU     int    `json:"mtu"`     // bytes
	// Queues are the RX queues served, each with an AF_XDP socket. They
	// equal ActiveQueues unless the port is degraded.
	Queues       int     `json:"queues"`
	ActiveQueues int     `json:"active_queues"` // RX queues the device has active (ethtool -l: combined + rx)
	MaxQueues    int     `json:"max_queues"`    // RX queues the device can activate (ethtool -L)
	XDPMode      XDPMode `json:"xdp_mode"`      // the mode in use: native or generic
	XSKMode      string  `json:"xsk_mode"`      // "copy" or "zerocopy"
	UmemMode     string  `json:"umem_mode"`     // "shared" (descriptors move), "extra" (on a poller's next UMEM: frames to ports of the first are copied) or "own" (frames copied between UMEMs)
	// State is "up"; "degraded": an active queue has no socket; "absent":
	// configured, but no netdev has its name (it is attached when one
	// appears, and its flows stay); "failed": its netdev could not be
	// attached. An absent or failed port has no ifindex, MAC, MTU, queues
	// or modes.
	State   string    `json:"state"`
	Problem string    `json:"problem,omitempty"` // why the port is not up
	AddedAt time.Time `json:"added_at"`
	// FastPathOut is "ok" when the port takes frames the XDP fast path
	// redirects to it (flows that output to it can run in XDP), else why
	// not, as a short token: "no_ndo_xdp_xmit" (on a veth: its peer has
	// neither an XDP program nor GRO), "fast_path_off", "port_absent" or
	// "port_failed" (no device attached).
	FastPathOut string `json:"fast_path_out"`
	// Live says whether groups may use the port (buckets watching it are
	// live): its link is up with carrier, unless Liveness overrides it.
	Live     bool     `json:"live"`
	Liveness Liveness `json:"liveness"`
	LinkUp   bool     `json:"link_up"` // the netdev is up (IFF_UP)
	Carrier  bool     `json:"carrier"` // it has carrier (IFF_LOWER_UP)
}

// Liveness says how a port's liveness is decided.
type Liveness string

const (
	LivenessAuto Liveness = "auto" // follows the link: up with carrier
	LivenessLive Liveness = "live" // live, whatever the link (an external prober says so)
	LivenessDead Liveness = "dead" // dead, whatever the link
)

// LivenessRequest is the body of PUT /v1/ports/{name}/liveness.
type LivenessRequest struct {
	Liveness Liveness `json:"liveness"`
}

// Counter is one counter of a set whose names the switch defines.
type Counter struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
}

// PortStats are a port's counters: GET /v1/ports/{name}/stats, and each of
// Stats.Ports.
type PortStats struct {
	Name      string `json:"name"`
	OFPort    uint32 `json:"ofport"`
	RxPackets uint64 `json:"rx_packets"` // received by the switch from this port's sockets
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"` // sent by the switch on this port
	TxBytes   uint64 `json:"tx_bytes"`
	// Packets dropped by the switch, by reason: RxDrops while handling what
	// the port received, TxDrops on the way out of it. Every reason the
	// switch counts is listed, zero or not, in the switch's order.
	RxDrops []Counter `json:"rx_drops"`
	TxDrops []Counter `json:"tx_drops"`
	// XDP are the XDP program's verdicts on this port's packets, every
	// counter the program has, in the program's order.
	XDP []Counter `json:"xdp"`
	// XSK are the kernel's AF_XDP socket statistics, summed over the
	// port's sockets.
	XSK XSKStats `json:"xsk"`
}

// XSKStats mirrors the kernel's struct xdp_statistics, field for field and
// under its names.
type XSKStats struct {
	RxDropped            uint64 `json:"rx_dropped"`
	RxInvalidDescs       uint64 `json:"rx_invalid_descs"`
	TxInvalidDescs       uint64 `json:"tx_invalid_descs"`
	RxRingFull           uint64 `json:"rx_ring_full"`
	RxFillRingEmptyDescs uint64 `json:"rx_fill_ring_empty_descs"`
	TxRingEmptyDescs     uint64 `json:"tx_ring_empty_descs"`
}
