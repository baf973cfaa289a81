package datapath

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// dialUDP returns a UDP socket from h to to:port, in h's namespace.
func (h *host) dialUDP(t testing.TB, to net.IP, port int) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	if err := h.NS.Do(func() (err error) {
		conn, err = net.DialUDP("udp4", &net.UDPAddr{IP: h.ip}, &net.UDPAddr{IP: to, Port: port})
		return err
	}); err != nil {
		t.Fatalf("dial udp from %s: %v", h.name, err)
	}
	return conn
}

// sendPaced sends one datagram from h to to:port after each pause of
// gaps, payload(i) for the i-th.
func sendPaced(t testing.TB, h *host, to net.IP, port int, gaps []time.Duration, payload func(int) []byte) {
	t.Helper()
	conn := h.dialUDP(t, to, port)
	defer conn.Close()
	next := time.Now()
	for i, g := range gaps {
		next = next.Add(g)
		time.Sleep(time.Until(next))
		if _, err := conn.Write(payload(i)); err != nil {
			t.Fatalf("send datagram %d from %s: %v", i, h.name, err)
		}
	}
}

// poller0 returns poller 0's counters.
func poller0(t testing.TB, sw *Switch) PollerStats {
	t.Helper()
	p, ok := pollerStats(sw)[0]
	if !ok {
		t.Fatal("no poller 0")
	}
	return p
}

// An idle poller sleeps in poll(2), and frames that come after pauses
// (irregular ones: nothing to anticipate) wake it; the counters say so.
func TestPollerSleepsAndWakes(t *testing.T) {
	const n, size, port = 20, 64, 9500
	tp := newTopo(t, topoOptions{})
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}")
	sink := listenUDP(t, tp.b.NS, tp.b.ip, port)
	eventually(t, 5*time.Second, func() bool { return poller0(t, tp.sw).Sleeps > 0 },
		func() string { return fmt.Sprintf("an idle poller never slept: %+v", poller0(t, tp.sw)) })

	before := poller0(t, tp.sw)
	rnd := rand.New(rand.NewPCG(3, 4))
	gaps := make([]time.Duration, n)
	for i := range gaps {
		gaps[i] = time.Duration(20+rnd.IntN(60)) * time.Millisecond
	}
	sendPaced(t, tp.a, tp.b.ip, port, gaps, seqPayload(size))
	checkSeq(t, "a to b", sink.collect(n, 10*time.Second), n, size)
	after := poller0(t, tp.sw)
	if after.Mode != PollAdaptive || after.Window != DefaultPollWindow {
		t.Errorf("poller mode %v window %v, want the defaults %v %v", after.Mode, after.Window, PollAdaptive, DefaultPollWindow)
	}
	if got := after.Wakeups - before.Wakeups; got < n/2 {
		t.Errorf("%d wake-ups for %d frames after pauses of 20-80ms, want most of them", got, n)
	}
	if after.Sleeps-before.Sleeps < after.Wakeups-before.Wakeups {
		t.Errorf("more wake-ups than sleeps: %+v -> %+v", before, after)
	}
	if slept := after.SleepNs - before.SleepNs; slept == 0 || slept > after.IdleNs-before.IdleNs {
		t.Errorf("slept %v of %v idle", time.Duration(slept), time.Duration(after.IdleNs-before.IdleNs))
	}
}

// PollWindow is how long the poller keeps polling after a frame: with a
// long one it does not sleep until the window has passed (a short poll
// timeout would show a sleep at once), then it does; a busy poller never
// sleeps.
func TestPollWindow(t *testing.T) {
	const size, port = 64, 9501
	t.Run("1s window", func(t *testing.T) {
		const window = MaxPollWindow
		tp := newTopo(t, topoOptions{Config: Config{PollWindow: window, PollTimeout: 20 * time.Millisecond}})
		tp.addFlows(t, "in_port={a},udp,actions=output:{b}")
		sink := listenUDP(t, tp.b.NS, tp.b.ip, port)
		eventually(t, 5*time.Second, func() bool { return poller0(t, tp.sw).Sleeps > 0 },
			func() string { return "the poller never slept" })
		sendUDP(t, tp.a, tp.b.ip, port, 1, seqPayload(size), sendOpts{})
		checkSeq(t, "one frame", sink.collect(1, 5*time.Second), 1, size)
		got := poller0(t, tp.sw)
		time.Sleep(window / 2)
		if p := poller0(t, tp.sw); p.Sleeps != got.Sleeps {
			t.Fatalf("the poller slept %d times within half its %v window after a frame", p.Sleeps-got.Sleeps, window)
		}
		eventually(t, 3*window, func() bool { return poller0(t, tp.sw).Sleeps > got.Sleeps },
			func() string { return fmt.Sprintf("the poller never slept after its %v window", window) })
	})
	t.Run("busy", func(t *testing.T) {
		tp := newTopo(t, topoOptions{Config: Config{PollMode: PollBusy}})
		tp.addFlows(t, "in_port={a},udp,actions=output:{b}")
		sink := listenUDP(t, tp.b.NS, tp.b.ip, port)
		time.Sleep(300 * time.Millisecond)
		sendUDP(t, tp.a, tp.b.ip, port, 10, seqPayload(size), sendOpts{})
		checkSeq(t, "busy", sink.collect(10, 5*time.Second), 10, size)
		time.Sleep(100 * time.Millisecond)
		if p := poller0(t, tp.sw); p.Sleeps != 0 || p.Mode != PollBusy {
			t.Errorf("a busy poller: %+v, want mode busy and no sleeps", p)
		}
	})
	t.Run("bad", func(t *testing.T) {
		for _, c := range []Config{{PollWindow: MaxPollWindow + 1}, {PollMode: PollSleep + 1}} {
			if sw, err := New(c); err == nil {
				sw.Close()
				t.Errorf("New(%+v) took it", c)
			}
		}
	})
}

// A source with a steady rhythm (a frame every 20 ms, as a voice call
// sends) is anticipated: the poller ends some sleeps itself just before
// the frames are due, and they find it awake.
func TestPollAnticipates(t *testing.T) {
	const n, size, port = 100, 64, 9502
	tp := newTopo(t, topoOptions{})
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}")
	sink := listenUDP(t, tp.b.NS, tp.b.ip, port)
	before := poller0(t, tp.sw)
	gaps := make([]time.Duration, n)
	for i := range gaps {
		gaps[i] = 20 * time.Millisecond
	}
	sendPaced(t, tp.a, tp.b.ip, port, gaps, seqPayload(size))
	checkSeq(t, "a to b", sink.collect(n, 10*time.Second), n, size)
	after := poller0(t, tp.sw)
	if after.EarlyWakeups == before.EarlyWakeups {
		t.Errorf("%d frames 20ms apart, no early wake-up: %+v", n, after)
	}
}

// A poller asleep with nothing to time its sleep (a poll timeout of a
// minute) is woken by another poller handing it frames: they arrive in
// far less than the timeout, and the wake-up is counted.
func TestHandoffWakesSleepingPoller(t *testing.T) {
	needCPUs(t, 2)
	const n, size, port = 50, 100, 9503
	tp := newTopo(t, topoOptions{HostQueues: []int{2, 0}, Config: Config{PollTimeout: time.Minute}})
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}")
	atB := listenUDP(t, tp.b.NS, tp.b.ip, port)
	var asleep PollerStats
	eventually(t, 5*time.Second, func() bool {
		asleep = poller0(t, tp.sw)
		return asleep.Sleeps > 0
	}, func() string { return "poller 0 never slept" })
	start := time.Now()
	if err := sendOnQueue(tp.a, 1, queueFrames(t, tp.a, tp.b, port, 0, n, size)); err != nil {
		t.Fatal(err)
	}
	tp.checkSeq(t, "queue 1 to b through poller 0", atB.collect(n, 10*time.Second), n, size)
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("the frames took %v", el)
	}
	p := poller0(t, tp.sw)
	if p.Handoffs-asleep.Handoffs != n {
		t.Errorf("poller 0 took %d handed-over frames, want %d", p.Handoffs-asleep.Handoffs, n)
	}
	if p.HandoffWakeups == asleep.HandoffWakeups {
		t.Errorf("no hand-off wake-up counted: %+v -> %+v", asleep, p)
	}
}

// With Config.BusyPoll every socket has the kernel's busy polling on
// (SO_BUSY_POLL, SO_PREFER_BUSY_POLL read back from each socket), and the
// pollers, which then drive their queues' NAPI themselves on idle passes,
// forward every frame as before: on veths as users make them (the flow
// stays in userspace: the peer takes no redirected frames) and with the
// fast path on but switched off (--fast-path=off). On veth the sender's
// softirq still does the device's work, so this shows the path works, not
// that it is faster.
func TestBusyPollSockets(t *testing.T) {
	const n, bp = 100, 50 * time.Microsecond
	for _, c := range []struct {
		name  string
		opts  topoOptions
		where string
	}{
		{"users' veths", topoOptions{Config: Config{BusyPoll: bp}}, ""},
		{"fast path off", topoOptions{FastPath: true, Config: Config{BusyPoll: bp, FastPathOff: true}}, "user(fast_path_off)"},
		{"two queues", topoOptions{Queues: 2, Config: Config{BusyPoll: bp, FastPathOff: true}}, "user(fast_path_off)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := newTopo(t, c.opts)
			sink := listenUDP(t, tp.b.NS, tp.b.ip, 7100)
			id := tp.addFlows(t, "in_port={a},udp,tp_dst=7100,actions=output:{b}")[0]
			if got := flowWhere(t, tp.sw, id); c.where != "" && got != c.where || !strings.HasPrefix(got, DatapathUser) {
				t.Fatalf("the flow runs in %s, want userspace %s", got, c.where)
			}
			socks := 0
			tp.sw.mu.Lock()
			for _, p := range tp.sw.ports {
				for _, ps := range p.socks {
					socks++
					if b, err := ps.sock.BusyPoll(); err != nil || b.Timeout != bp || !b.Prefer {
						t.Errorf("port %s queue %d: busy poll %+v, %v; want %v, preferred", p.name, ps.queue, b, err, bp)
					}
				}
			}
			tp.sw.mu.Unlock()
			if socks < 2 {
				t.Fatalf("%d sockets on two ports", socks)
			}
			before := pollerStats(tp.sw)
			polled, fwd := sendThrough(t, tp, sink, n)
			if polled != n || fwd != 0 {
				t.Fatalf("pollers took %d, XDP forwarded %d; want %d, 0", polled, fwd, n)
			}
			var moved uint64
			for q, p := range pollerStats(tp.sw) {
				moved += p.Packets - before[q].Packets
			}
			if moved < n {
				t.Errorf("the pollers counted %d packets of %d", moved, n)
			}
		})
	}
	for _, bad := range []time.Duration{-time.Microsecond, time.Second + time.Microsecond} {
		if sw, err := New(Config{BusyPoll: bad}); err == nil {
			sw.Close()
			t.Errorf("busy poll %v was taken", bad)
		}
	}
}
