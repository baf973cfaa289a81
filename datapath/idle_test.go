package datapath

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

const (
	us = int64(time.Microsecond)
	ms = int64(time.Millisecond)
)

func TestParsePollMode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want PollMode
		ok   bool
	}{
		{"adaptive", PollAdaptive, true},
		{"busy", PollBusy, true},
		{"sleep", PollSleep, true},
		{"", 0, false},
		{"Busy", 0, false},
		{"spin", 0, false},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParsePollMode(c.in)
			if c.ok != (err == nil) || got != c.want {
				t.Fatalf("ParsePollMode(%q) = %v, %v", c.in, got, err)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if c.ok && got.String() != c.in {
				t.Fatalf("%v.String() = %q", got, got.String())
			}
		})
	}
}

// feed gives r bursts of one frame at start + i*period + jitter.
func feed(r *rhythm, start, period int64, n int, jitter func() int64) (last int64) {
	for i := range n {
		last = start + int64(i)*period + jitter()
		r.saw(last, 200*us)
	}
	return last
}

func noJitter() int64 { return 0 }

// A source is anticipated once its bursts came in a steady rhythm, and not
// when they come at random or stop coming.
func TestRhythm(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name   string
		period int64
		n      int
		jitter func() int64
		want   bool
	}{
		{"steady", 2 * ms, 20, noJitter, true},
		{"small jitter", 2 * ms, 50, func() int64 { return rnd.Int64N(100 * us) }, true},
		{"voice", 20 * ms, 20, func() int64 { return rnd.Int64N(500 * us) }, true},
		{"too few", 2 * ms, rhythmSteady, noJitter, false},
		{"random", 2 * ms, 200, func() int64 { return rnd.Int64N(2 * ms) }, false},
		{"jitter too wide to pay polling through", 2 * ms, 200, func() int64 { return rnd.Int64N(700 * us) }, false},
		{"slower than the longest period", 3 * int64(time.Second), 10, noJitter, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r rhythm
			start := int64(time.Hour)
			last := feed(&r, start, c.period, c.n, c.jitter)
			at, ok := r.due(last + 100*us)
			if ok != c.want {
				t.Fatalf("due: ok %v, want %v (period %v dev %v steady %d)", ok, c.want, time.Duration(r.period), time.Duration(r.dev), r.steady)
			}
			if ok && abs(at-(last+c.period)) > c.period/8 {
				t.Fatalf("due at %v after the last burst, want about %v", time.Duration(at-last), time.Duration(c.period))
			}
		})
	}
}

// Frames closer together than the gap are one burst: a burst's length
// does not disturb the rhythm of its starts.
func TestRhythmBursts(t *testing.T) {
	var r rhythm
	start := int64(time.Hour)
	for i := range 10 {
		b := start + int64(i)*2*ms
		for j := range 5 { // 5 frames 30 us apart
			r.saw(b+int64(j)*30*us, 200*us)
		}
	}
	if at, ok := r.due(start + 9*2*ms + 500*us); !ok || at != start+10*2*ms {
		t.Fatalf("due %v, %v; want the next burst start %v", at, ok, start+10*2*ms)
	}
}

// A skipped burst (a lost frame, a silence of whole periods) keeps the
// rhythm; a due time that passed moves on by whole periods.
func TestRhythmSkips(t *testing.T) {
	var r rhythm
	start := int64(time.Hour)
	last := feed(&r, start, 2*ms, 10, noJitter)
	last += 3 * 2 * ms // two bursts missing
	r.saw(last, 200*us)
	at, ok := r.due(last + 100*us)
	if !ok || at != last+2*ms {
		t.Fatalf("after a skip: due %v, %v; want %v", at-last, ok, 2*ms)
	}
	// Nothing came at the due time: the next due time is a period on.
	if at, ok := r.due(last + 2*ms + 500*us); !ok || at != last+4*ms {
		t.Fatalf("after a due time passed: due %v, %v; want %v", at-last, ok, 4*ms)
	}
}

// newTestIdler is an adaptive idler that has learnt that timed wake-ups
// are late by late.
func newTestIdler(window time.Duration, late int64) idler {
	d := newIdler(PollAdaptive, window, 100*time.Millisecond)
	d.late = late
	return d
}

func TestIdlerModes(t *testing.T) {
	const maxSleep = 100 * ms
	now := int64(time.Hour)
	for _, c := range []struct {
		name      string
		mode      PollMode
		window    time.Duration
		after     int64 // since the last frame
		wantSleep bool
	}{
		{"busy right after a frame", PollBusy, 0, 0, false},
		{"busy long after", PollBusy, 0, 10 * int64(time.Second), false},
		{"sleep right after a frame", PollSleep, 0, 1, true},
		{"adaptive inside the window", PollAdaptive, time.Millisecond, ms - 1, false},
		{"adaptive at the window's end", PollAdaptive, time.Millisecond, ms, true},
		{"adaptive without a window", PollAdaptive, 0, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newIdler(c.mode, c.window, time.Duration(maxSleep))
			d.moved(now)
			sleep, timeout, early := d.next(now+c.after, nil, maxSleep)
			if sleep != c.wantSleep {
				t.Fatalf("sleep %v, want %v", sleep, c.wantSleep)
			}
			if sleep && (timeout != maxSleep || early) {
				t.Fatalf("sleep for %v (early %v), want the poll timeout %v", time.Duration(timeout), early, time.Duration(maxSleep))
			}
		})
	}
}

// The poll timeout and the caller's limit bound every sleep.
func TestIdlerLimit(t *testing.T) {
	d := newIdler(PollAdaptive, 0, 100*time.Millisecond)
	if sleep, timeout, _ := d.next(int64(time.Hour), nil, ms); !sleep || timeout != ms {
		t.Fatalf("sleep %v for %v, want 1ms (the limit)", sleep, time.Duration(timeout))
	}
	if _, timeout, _ := d.next(int64(time.Hour), nil, int64(time.Hour)); timeout != 100*ms {
		t.Fatalf("sleep for %v, want 100ms (the poll timeout)", time.Duration(timeout))
	}
}

// With a source in a steady rhythm the poller sleeps until its next burst
// is due minus how late wake-ups are and the burst's slack, polls through
// the burst, and gives up on a source whose anticipated bursts stop coming.
func TestIdlerAnticipates(t *testing.T) {
	const period, late = 2 * ms, 80 * us
	d := newTestIdler(200*time.Microsecond, late)
	var r rhythm
	srcs := []*rhythm{&r}
	start := int64(time.Hour)
	last := feed(&r, start, period, 10, noJitter)
	d.moved(last)

	// Inside the window: poll.
	if sleep, _, _ := d.next(last+100*us, srcs, 100*ms); sleep {
		t.Fatal("slept inside the window")
	}
	// After it: sleep until the next burst is due, early enough.
	now := last + 250*us
	sleep, timeout, early := d.next(now, srcs, 100*ms)
	due := last + period
	wantWake := due - late - r.slack()
	if !sleep || !early || now+timeout != wantWake {
		t.Fatalf("sleep %v early %v until %v, want until %v (due %v)", sleep, early, time.Duration(timeout), time.Duration(wantWake-now), time.Duration(due-now))
	}
	// The wake-up came 100 us late: the estimate of lateness grows, and
	// the poller polls through the due time.
	woke := wantWake + 100*us
	d.woke(woke, true)
	if d.late <= late {
		t.Fatalf("lateness estimate %v after a 100us late wake-up, was %v", time.Duration(d.late), time.Duration(late))
	}
	if sleep, _, _ := d.next(due, srcs, 100*ms); sleep {
		t.Fatal("slept at the due time of an anticipated burst")
	}
	// The burst does not come: after its slack the poller sleeps again,
	// for the burst after.
	now = due + r.slack() + 1
	sleep, timeout, early = d.next(now, srcs, 100*ms)
	if !sleep || !early || now+timeout > due+period {
		t.Fatalf("after a miss: sleep %v early %v for %v, want an early wake-up before the next due time", sleep, early, time.Duration(timeout))
	}
	d.woke(now+timeout, true)
	// That one does not come either: the source is no longer anticipated.
	now = due + period + r.slack() + 1
	sleep, timeout, early = d.next(now, srcs, 100*ms)
	if !sleep || early || timeout != 100*ms {
		t.Fatalf("after %d misses: sleep %v early %v for %v, want the poll timeout", rhythmMisses, sleep, early, time.Duration(timeout))
	}
	// It comes back: anticipated again once steady.
	last = feed(&r, now+ms, period, rhythmSteady+2, noJitter)
	d.moved(last)
	if _, _, early := d.next(last+250*us, srcs, 100*ms); !early {
		t.Fatal("a source back in its rhythm is not anticipated")
	}
}

// A burst due sooner than a wake-up could take is polled for, not slept
// through; of several sources the next due one counts.
func TestIdlerSoonest(t *testing.T) {
	const late = 80 * us
	d := newTestIdler(0, late)
	var slow, fast rhythm
	start := int64(time.Hour)
	feed(&slow, start, 20*ms, 10, noJitter)
	last := feed(&fast, start+50*us, 300*us, int(10*20*ms/(300*us)), noJitter)
	srcs := []*rhythm{&slow, &fast}
	d.moved(last)
	now := last + 250*us // the next fast burst is due in 50 us, less than late + slack
	if sleep, _, _ := d.next(now, srcs, 100*ms); sleep {
		t.Fatal("slept although a burst is due before a wake-up could take place")
	}
	if d.expect != &fast || d.spinUntil != last+300*us+fast.slack() {
		t.Fatalf("polling for %p until %v, want the fast source until its due time plus slack", d.expect, time.Duration(d.spinUntil-last))
	}
}

// Wake-ups that come late raise the estimate, but no more than maxLate;
// wake-ups for events say nothing about timers.
func TestIdlerLateness(t *testing.T) {
	d := newTestIdler(0, initialLate)
	d.timedAt = int64(time.Hour)
	d.woke(d.timedAt+50*ms, true)
	if d.late > initialLate+(maxLate-initialLate)/8+1 {
		t.Fatalf("late %v after one 50ms late wake-up, want at most a step towards %v", time.Duration(d.late), time.Duration(maxLate))
	}
	before := d.late
	d.timedAt = int64(time.Hour)
	d.woke(d.timedAt+10*ms, false)
	if d.late != before || d.timedAt != 0 {
		t.Fatalf("an event wake-up changed the lateness estimate: %v -> %v", time.Duration(before), time.Duration(d.late))
	}
}
