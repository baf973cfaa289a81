package datapath

import (
	"fmt"
	"time"
)

// PollMode is how a poller waits when a pass of its loop finds nothing to
// do. The choice trades CPU for the delay of the first frame after a pause:
// a sleeping poller is woken by the kernel when frames arrive, and that
// wake-up (an IPI to an idle CPU, which on a virtual machine is a trip
// through the hypervisor: 70-120 us measured on the development VM) is
// paid by the frame that caused it.
type PollMode uint8

const (
	// PollAdaptive, the default: after its last frame the poller keeps
	// polling for Config.PollWindow (the reply to a request, the rest of a
	// burst find it awake), and a source whose bursts come in a steady
	// rhythm (a voice stream: a frame every 20 ms per call; a probe every
	// second) is anticipated: the poller sleeps until just before its next
	// burst is due and polls through it. Otherwise it sleeps in poll(2)
	// until frames come.
	PollAdaptive PollMode = iota
	// PollBusy never sleeps, like Open vSwitch's PMD threads: no wake-up
	// on the path of any frame, and a whole CPU per poller, idle or not.
	PollBusy
	// PollSleep sleeps as soon as a pass finds nothing: the least CPU,
	// and every frame after a pause pays a wake-up.
	PollSleep
)

var pollModeNames = [...]string{PollAdaptive: "adaptive", PollBusy: "busy", PollSleep: "sleep"}

func (m PollMode) String() string {
	if int(m) < len(pollModeNames) {
		return pollModeNames[m]
	}
	return fmt.Sprintf("PollMode(%d)", uint8(m))
}

// MarshalText makes a PollMode its name in JSON.
func (m PollMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// ParsePollMode parses "adaptive", "busy" or "sleep".
func ParsePollMode(s string) (PollMode, error) {
	for m, name := range pollModeNames {
		if s == name {
			return PollMode(m), nil
		}
	}
	return 0, fmt.Errorf("poll mode %q: want adaptive, busy or sleep: %w", s, ErrInvalid)
}

// The poll window (Config.PollWindow): the default and the most allowed.
// 200 us covers the reply to a request just forwarded on a VM (echo RTT
// 50-150 us) so it finds the poller awake; measured side by side with
// 50 us (README, Performance: Latency), it halved the wake-ups at 500
// requests/s and had the lower p50 at 500 and 5000/s, for about 28% of a
// CPU instead of 22% at 500/s (93% instead of 57% at 5000/s).
const (
	DefaultPollWindow = 200 * time.Microsecond
	MaxPollWindow     = time.Second
)

// Bounds of the adaptive policy.
const (
	// rhythmSteady is how many intervals in a row must agree with a
	// source's period before its bursts are anticipated.
	rhythmSteady = 4
	// rhythmMisses is how many anticipated bursts may fail to come, in a
	// row, before the poller stops waking for the source (until its
	// rhythm is steady again).
	rhythmMisses = 2
	// rhythmMaxPeriod: slower sources are not anticipated.
	rhythmMaxPeriod = int64(2 * time.Second)
	// minBurstGap is the shortest pause that separates two bursts of a
	// source when the poll window is shorter.
	minBurstGap = int64(20 * time.Microsecond)
	// wakeGuard is polled through on each side of an anticipated burst
	// beyond its jitter.
	wakeGuard = int64(10 * time.Microsecond)
	// initialLate is the guess of how late a timed wake-up is, until one
	// is measured; maxLate bounds the estimate (one wake-up delayed by
	// another task on the CPU must not make every later one start early).
	initialLate = int64(50 * time.Microsecond)
	maxLate     = int64(time.Millisecond)
)

// rhythm learns when a source (one socket, or the hand-offs from other
// pollers) sends its next burst: the smoothed interval between the starts
// of its bursts and its mean deviation (as TCP smooths round trips). A
// burst starts with the first frame after a pause of at least the burst
// gap. It belongs to the poller's goroutine.
type rhythm struct {
	start, last int64 // first and latest frame of the current burst (ns); 0: none yet
	period, dev int64 // smoothed burst interval and its mean deviation (ns); 0: none yet
	steady      int   // intervals in a row within period/8 of the period
	outliers    int   // intervals in a row off by more than half a period
	missed      int   // anticipated bursts, in a row, that did not come
}

// saw notes frames from the source at now.
func (r *rhythm) saw(now, gap int64) {
	if r.last != 0 && now-r.last < gap {
		r.last = now
		return
	}
	if r.start != 0 {
		r.learn(now - r.start)
	}
	r.start, r.last, r.missed = now, now, 0
}

func (r *rhythm) learn(iv int64) {
	if iv <= 0 || iv > rhythmMaxPeriod {
		r.period, r.dev, r.steady = 0, 0, 0
		return
	}
	if r.period == 0 {
		r.period, r.dev, r.steady = iv, iv/2, 0
		return
	}
	// Skipped bursts (silence, a lost frame) keep the rhythm: an interval
	// of k periods counts as k intervals of one.
	if k := (iv + r.period/2) / r.period; k >= 2 && abs(iv-k*r.period) <= r.period/8 {
		iv /= k
	}
	err := iv - r.period
	if abs(err) > r.period/2 {
		// An outlier (a pause, a burst out of turn) says nothing about
		// the period, unless they keep coming: then the rhythm changed.
		r.steady = 0
		if r.outliers++; r.outliers >= 3 {
			r.period, r.dev, r.outliers = iv, iv/2, 0
		}
		return
	}
	r.outliers = 0
	r.period += err / 8
	r.dev += (abs(err) - r.dev) / 4
	if abs(err) <= r.period/8 {
		r.steady++
	} else {
		r.steady = 0
	}
}

// slack is how far around a due time the burst may come.
func (r *rhythm) slack() int64 { return 2*r.dev + wakeGuard }

// due returns when the source's next burst is expected, at or after now
// minus its slack, and whether its rhythm is steady enough to wake for:
// steady for a while, and with a slack of at most an eighth of the period
// (polling through a burst's slack on both sides then costs at most a
// quarter of the time).
func (r *rhythm) due(now int64) (int64, bool) {
	if r.steady < rhythmSteady || 8*r.slack() > r.period || r.missed >= rhythmMisses {
		return 0, false
	}
	at := r.start + r.period
	if lag := now - r.slack() - at; lag > 0 {
		at += (lag/r.period + 1) * r.period
	}
	return at, true
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// idler decides, after each pass of a poller's loop, whether to poll again
// or to sleep in poll(2), and for how long. It belongs to the poller's
// goroutine. Times are nanoseconds (time.Time.UnixNano).
type idler struct {
	mode     PollMode
	window   int64 // keep polling this long after the last frame
	maxSleep int64 // longest sleep (Config.PollTimeout)
	gap      int64 // the pause that separates a source's bursts

	spinUntil int64 // poll, without sleeping, until then
	late      int64 // smoothed lateness of timed wake-ups
	timedAt   int64 // when the current timed sleep should end; 0: none
	// expect is the source whose burst, due at expectAt, the poller woke
	// or keeps polling for; nil: none.
	expect   *rhythm
	expectAt int64
}

func newIdler(mode PollMode, window, maxSleep time.Duration) idler {
	return idler{mode: mode, window: int64(window), maxSleep: int64(maxSleep),
		gap: max(int64(window), minBurstGap), late: initialLate}
}

// moved notes a pass at now that moved frames.
func (d *idler) moved(now int64) {
	d.spinUntil = max(d.spinUntil, now+d.window)
}

// next says what to do after a pass at now that moved nothing, with srcs
// the rhythms of the poller's sources and limit the longest sleep the
// poller can afford now: poll again (sleep false), or sleep for at most
// timeout; early says the sleep ends ahead of an expected burst, not by
// the poll timeout.
func (d *idler) next(now int64, srcs []*rhythm, limit int64) (sleep bool, timeout int64, early bool) {
	limit = min(limit, d.maxSleep)
	switch {
	case d.mode == PollBusy || now < d.spinUntil:
		return false, 0, false
	case d.mode == PollSleep:
		return true, limit, false
	}
	if e := d.expect; e != nil && now > d.expectAt+e.slack() {
		if e.start < d.expectAt-e.slack() { // it did not come
			e.missed++
		}
		d.expect = nil
	}
	var first *rhythm
	var at int64
	for _, r := range srcs {
		if t, ok := r.due(now); ok && (first == nil || t < at) {
			first, at = r, t
		}
	}
	if first == nil {
		return true, limit, false
	}
	d.expect, d.expectAt = first, at
	wake := at - d.late - first.slack()
	if wake <= now {
		// Due before a sleep could end: poll through it.
		d.spinUntil = at + first.slack()
		return false, 0, false
	}
	if wake-now >= limit {
		return true, limit, false
	}
	d.timedAt = wake
	return true, wake - now, true
}

// woke notes the end at now of a sleep next asked for; timedOut says
// poll(2) returned by its timeout rather than for an event.
func (d *idler) woke(now int64, timedOut bool) {
	if d.timedAt != 0 && timedOut {
		d.late += (min(max(now-d.timedAt, 0), maxLate) - d.late) / 8
		if e := d.expect; e != nil {
			d.spinUntil = d.expectAt + e.slack()
		}
	}
	d.timedAt = 0
}
