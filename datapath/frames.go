package datapath

import (
	"fmt"
	"slices"

	"github.com/xvs-project/xvs/afxdp"
)

// FrameStats says where the frames of one UMEM of a poller are. Every frame
// is in exactly one of the places counted, or inside the kernel (an skb
// being sent, a frame being received): while the switch is idle, Balanced
// holds. A soak test or an operator checks with it that no frame leaked.
type FrameStats struct {
	Queue      int  `json:"queue"`
	Shared     bool `json:"shared"` // one of the poller's UMEMs, shared by its ports (else a port's own)
	Total      int  `json:"total"`
	Free       int  `json:"free"`       // in the pool
	Fill       int  `json:"fill"`       // fill rings: lent to the kernel
	RX         int  `json:"rx"`         // RX rings: received, not yet taken
	TX         int  `json:"tx"`         // TX rings: not yet sent
	Completion int  `json:"completion"` // completion rings: sent, not yet reaped
	Lent       int  `json:"lent"`       // lent to other pollers for hand-offs: credits and frames rings
	// LentBooked is what the poller believes it lent; it differs from Lent
	// if a frame went missing between two pollers.
	LentBooked int `json:"lent_booked"`
}

// Balanced reports whether every frame is accounted for.
func (l FrameStats) Balanced() bool {
	return l.Free+l.Fill+l.RX+l.TX+l.Completion+l.Lent == l.Total && l.Lent == l.LentBooked
}

func (l FrameStats) String() string {
	return fmt.Sprintf("queue %d (shared %v): %d frames: free %d + fill %d + rx %d + tx %d + completion %d + lent %d (booked %d) = %d",
		l.Queue, l.Shared, l.Total, l.Free, l.Fill, l.RX, l.TX, l.Completion, l.Lent, l.LentBooked, l.Free+l.Fill+l.RX+l.TX+l.Completion+l.Lent)
}

// Frames counts, on each poller's goroutine between two batches, where the
// frames of its UMEMs are (frames a poller lent others for hand-offs count
// with the lender), in poller order. It costs every poller a command round
// trip: it is for checks, not for every scrape.
func (s *Switch) Frames() ([]FrameStats, error) {
	s.mu.Lock()
	pollers := slices.Clone(s.pollers)
	s.mu.Unlock()
	var out []FrameStats
	for _, pl := range pollers {
		if pl == nil {
			continue
		}
		err := pl.do(func() error {
			// The poller's shared UMEM and its extra ones (umem.go), then
			// the UMEMs of ports that have their own.
			byUmem := map[*afxdp.Umem]*FrameStats{}
			var order []*afxdp.Umem
			for _, u := range append([]*afxdp.Umem{pl.umem}, pl.extra...) {
				byUmem[u] = &FrameStats{Queue: pl.queue, Shared: true, Total: u.Pool().Total(), Free: u.Pool().Free()}
				order = append(order, u)
			}
			for _, h := range pl.inbound {
				l := byUmem[h.umem]
				if l == nil {
					return fmt.Errorf("hand-off from poller %d lends frames of a UMEM the poller does not have", h.src.queue)
				}
				l.Lent += h.credits.inRing() + h.frames.inRing()
				l.LentBooked += h.lent
			}
			for _, ps := range pl.socks {
				l := byUmem[ps.umem]
				if l == nil {
					l = &FrameStats{Queue: pl.queue, Total: ps.umem.Pool().Total(), Free: ps.umem.Pool().Free()}
					byUmem[ps.umem] = l
					order = append(order, ps.umem)
				}
				l.Fill += ps.sock.Fill().Outstanding()
				l.RX += ps.sock.Rx().Available()
				l.TX += ps.sock.Tx().Outstanding()
				l.Completion += ps.sock.Completion().Available()
			}
			for _, u := range order {
				out = append(out, *byUmem[u])
			}
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("frames of poller %d: %w", pl.queue, err)
		}
	}
	return out, nil
}
