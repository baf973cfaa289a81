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
	Queue   int    `json:"queue"`
	CPU     int    `json:"cpu"` // -1 if not pinned
	Batches uint64 `json:"batches"`
	Packets uint64 `json:"packets"`
	// PollMode is how the poller waits when there is nothing to do:
	// "adaptive" (it polls for PollWindowS after its last frame, wakes
	// ahead of steady streams and otherwise sleeps), "busy" (it never
	// sleeps) or "sleep".
	PollMode    string  `json:"poll_mode"`
	PollWindowS float64 `json:"poll_window_s"`
	BusyS       float64 `json:"busy_s"` // time in batches that moved packets
	IdleS       float64 `json:"idle_s"` // time polling for nothing or sleeping in poll(2)
	// Sleeps are the poller's sleeps in poll(2), SleepS their time (part
	// of IdleS). A sleep ends for an event (Wakeups: frames, a hand-off, a
	// command), by the poller's own timer ahead of a burst it expects
	// (EarlyWakeups), or by the poll timeout (the rest).
	Sleeps       uint64  `json:"sleeps"`
	SleepS       float64 `json:"sleep_s"`
	Wakeups      uint64  `json:"wakeups"`
	EarlyWakeups uint64  `json:"early_wakeups"`
	// HandoffWakeups are the Wakeups another poller's hand-off caused.
	HandoffWakeups uint64 `json:"handoff_wakeups"`
	// Handoffs are frames other pollers switched to a port queue this
	// poller serves (they had no socket on it), queued here for TX.
	Handoffs uint64 `json:"handoffs"`
	// HandoffLost are frames handed over for a queue this poller no longer
	// serves; reconfiguration drains hand-offs first, so it stays 0.
	HandoffLost uint64 `json:"handoff_lost"`
}

// FrameStats say where the frames of one UMEM are: GET /v1/frames lists
// every poller's (and every port UMEM's, for ports that could not share
// the poller's). While the switch is idle every frame is in one of these
// places and Balanced is true; under traffic some are in the kernel. A
// frame leak shows as a Balanced that stays false when traffic stops.
type FrameStats struct {
	Queue      int  `json:"queue"`  // the poller
	Shared     bool `json:"shared"` // the poller's shared UMEM, else a port's own
	Total      int  `json:"total"`
	Free       int  `json:"free"`        // in the poller's pool
	Fill       int  `json:"fill"`        // lent to the kernel in fill rings
	RX         int  `json:"rx"`          // received, not yet taken
	TX         int  `json:"tx"`          // queued to send
	Completion int  `json:"completion"`  // sent, not yet reaped
	Lent       int  `json:"lent"`        // lent to other pollers for hand-offs
	LentBooked int  `json:"lent_booked"` // what the poller believes it lent
	Balanced   bool `json:"balanced"`    // free+fill+rx+tx+completion+lent = total, and lent = lent_booked
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
