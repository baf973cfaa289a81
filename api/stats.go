package api

// Stats are the switch's counters: GET /v1/stats.
type Stats struct {
	Ports   []PortStats   `json:"ports"`   // in ofport order
	Pollers []PollerStats `json:"pollers"` // by queue
	Flows   int           `json:"flows"`   // installed flows
	Masks   int           `json:"masks"`   // masks in the XDP steering classifier
	// FastPathFlows are the flows the XDP fast path forwards itself.
	FastPathFlows int     `json:"fast_path_flows"`
	UptimeS       float64 `json:"uptime_s"`
}

// PollerStats are one poller's counters. A poller serves one RX queue index
// of every port.
type PollerStats struct {
	Queue   int     `json:"queue"`
	CPU     int     `json:"cpu"` // -1 if not pinned
	Batches uint64  `json:"batches"`
	Packets uint64  `json:"packets"`
	BusyS   float64 `json:"busy_s"` // time in batches that moved packets
	IdleS   float64 `json:"idle_s"` // time polling for nothing or sleeping in poll(2)
	Wakeups uint64  `json:"wakeups"`
	// Handoffs are frames other pollers switched to a port queue this
	// poller serves (they had no socket on it), queued here for TX.
	Handoffs uint64 `json:"handoffs"`
	// HandoffLost are frames handed over for a queue this poller no longer
	// serves; reconfiguration drains hand-offs first, so it stays 0.
	HandoffLost uint64 `json:"handoff_lost"`
}

// Health statuses.
const (
	HealthOK        = "ok"
	HealthUnhealthy = "unhealthy"
)

// HealthResponse is the body of GET /v1/health: 200 with Status "ok", or 503
// with Status "unhealthy", Error saying what is wrong and Code
// CodeUnavailable (so it reads as an ErrorResponse too).
type HealthResponse struct {
	Status string    `json:"status"`
	Error  string    `json:"error,omitempty"`
	Code   ErrorCode `json:"code,omitempty"`
}
