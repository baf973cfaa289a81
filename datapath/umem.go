package datapath

import (
	"fmt"

	"github.com/xvs-project/xvs/afxdp"
)

// A poller's UMEMs. The first (poller.umem) is made with the poller and
// holds Config.FramesPerPoller frames, enough for a few sockets and
// hand-offs (framesNeeded); the kernel pins every page of a UMEM when its
// first socket registers it, so the size is what it costs in memory,
// whether the frames are used or not. When a socket or a hand-off does not
// fit any more, the poller makes another UMEM of the same size for it
// (poller.extra), shared by the next ones that do not fit. Frames between
// ports on one UMEM move as descriptors; between two UMEMs they are copied,
// as OVS copies every frame between ports. An extra UMEM goes once its
// last socket and hand-off are gone.

// socksOn is how many of the poller's sockets are bound to u.
func (pl *poller) socksOn(u *afxdp.Umem) int {
	n := 0
	for _, ps := range pl.socks {
		if ps.umem == u {
			n++
		}
	}
	return n
}

// linksOn is how many of the hand-offs into the poller borrow u's frames.
func (pl *poller) linksOn(u *afxdp.Umem) int {
	n := 0
	for _, h := range pl.inbound {
		if h.umem == u {
			n++
		}
	}
	return n
}

// pickUmem returns the poller's UMEM with room for socks more sockets and
// links more hand-offs: the first, else an extra one, else a new extra
// one. The poller's goroutine only.
func (pl *poller) pickUmem(socks, links int) (*afxdp.Umem, error) {
	for _, u := range append([]*afxdp.Umem{pl.umem}, pl.extra...) {
		if pl.framesNeeded(pl.socksOn(u)+socks, pl.linksOn(u)+links) <= u.NumFrames() {
			return u, nil
		}
	}
	if need := pl.framesNeeded(socks, links); need > pl.sw.cfg.FramesPerPoller {
		return nil, fmt.Errorf("poller %d: a UMEM of %d frames cannot feed a socket of %d-entry rings (needs %d; raise FramesPerPoller or lower RingSize): %w",
			pl.queue, pl.sw.cfg.FramesPerPoller, pl.sw.cfg.RingSize, need, ErrInvalid)
	}
	u, err := afxdp.NewUmem(afxdp.UmemOptions{
		NumFrames: pl.sw.cfg.FramesPerPoller,
		FrameSize: pl.sw.cfg.FrameSize,
		Headroom:  pl.sw.cfg.Headroom,
	})
	if err != nil {
		return nil, fmt.Errorf("poller %d: another umem: %w", pl.queue, err)
	}
	pl.sw.log.Info("umem full, another one for the next sockets (frames between the two are copied)",
		"queue", pl.queue, "umems", len(pl.extra)+2, "frames", pl.sw.cfg.FramesPerPoller)
	pl.extra = append(pl.extra, u)
	return u, nil
}

// releaseUmems closes the extra UMEMs no socket or hand-off uses any more.
// The poller's goroutine only.
func (pl *poller) releaseUmems() error {
	var err error
	keep := pl.extra[:0]
	for _, u := range pl.extra {
		if pl.socksOn(u) > 0 || pl.linksOn(u) > 0 {
			keep = append(keep, u)
			continue
		}
		if cerr := u.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("poller %d: close umem: %w", pl.queue, cerr)
		}
	}
	clear(pl.extra[len(keep):])
	pl.extra = keep
	return err
}

// isExtra reports whether u is one of the poller's extra UMEMs.
func (pl *poller) isExtra(u *afxdp.Umem) bool {
	for _, x := range pl.extra {
		if x == u {
			return true
		}
	}
	return false
}
