package afxdp

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/xvs-project/xvs/testenv"
)

// Busy polling set on a socket reads back as set, values out of range
// are refused before any setsockopt, and a socket busy-polled through
// PollQueue receives what its peer sends.
func TestBusyPoll(t *testing.T) {
	testenv.RequireRoot(t)
	checkLeaks(t)
	u := newTestUmem(t, UmemOptions{NumFrames: 256})
	p := newPort(t, u, SocketOptions{}, true)
	if b, err := p.sock.BusyPoll(); err != nil || b.Timeout != 0 || b.Prefer {
		t.Fatalf("a fresh socket busy-polls: %+v, %v", b, err)
	}
	for _, c := range []struct {
		name string
		in   BusyPoll
		ok   bool
	}{
		{"on", BusyPoll{Timeout: 50 * time.Microsecond, Prefer: true, Budget: 64}, true},
		{"timeout only", BusyPoll{Timeout: 20 * time.Microsecond}, true},
		{"negative timeout", BusyPoll{Timeout: -1}, false},
		{"timeout too long", BusyPoll{Timeout: MaxBusyPollTimeout + time.Microsecond}, false},
		{"negative budget", BusyPoll{Timeout: time.Microsecond, Budget: -1}, false},
		{"budget too big", BusyPoll{Timeout: time.Microsecond, Budget: 65536}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := p.sock.BusyPoll()
			err := p.sock.SetBusyPoll(c.in)
			if c.ok != (err == nil) {
				t.Fatalf("SetBusyPoll(%+v): %v", c.in, err)
			}
			got, gerr := p.sock.BusyPoll()
			if gerr != nil {
				t.Fatal(gerr)
			}
			if !c.ok {
				if !errors.Is(err, ErrInvalidOptions) || got != before {
					t.Fatalf("refused with %v, now %+v (was %+v)", err, got, before)
				}
				return
			}
			want := c.in
			want.Budget = 0 // not reported
			if got != want {
				t.Fatalf("busy poll %+v, want %+v", got, want)
			}
		})
	}

	if err := p.sock.SetBusyPoll(BusyPoll{Timeout: 50 * time.Microsecond, Prefer: true, Budget: 64}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	p.sock.Refill()
	for i := range n {
		p.peer.send(t, p.fromPeer(64, uint32(i)))
	}
	var got []Desc
	buf := make([]Desc, 64)
	deadline := time.Now().Add(waitLong)
	for len(got) < n && time.Now().Before(deadline) {
		p.sock.PollQueue()
		k := p.sock.Receive(buf)
		got = append(got, buf[:k]...)
		if k == 0 {
			runtime.Gosched()
		}
	}
	if len(got) != n {
		t.Fatalf("received %d of %d frames busy-polling", len(got), n)
	}
	putAll(u, got)
	if err := p.sock.SetBusyPoll(BusyPoll{}); err != nil {
		t.Fatal(err)
	}
}
