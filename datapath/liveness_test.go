package datapath

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/testenv"
)

// eventLog collects the switch's events.
type eventLog struct {
	mu sync.Mutex
	es []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.es = append(l.es, e)
}

func (l *eventLog) has(match func(Event) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.es, match)
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%+v", l.es)
}

// setPeer takes the namespace end of h's veth up or down: the switch's end
// then gains or loses carrier, as an uplink does when the provider's end
// goes.
func setPeer(t testing.TB, h *host, up bool) {
	t.Helper()
	err := h.NS.Do(func() error {
		l, err := netlink.LinkByName(h.PeerName())
		if err != nil {
			return err
		}
		if up {
			return netlink.LinkSetUp(l)
		}
		return netlink.LinkSetDown(l)
	})
	if err != nil {
		t.Fatalf("set %s's peer up=%v: %v", h.name, up, err)
	}
}

// uplinkTopo is a LAN host a and two uplinks b (wan1) and c (wan2) behind
// one switch, with a fast_failover group over b and c. Bucket 1 rewrites
// the destination to c's, so c's socket takes the packets b's would have.
func uplinkTopo(t *testing.T, events *eventLog) (*topo, *host) {
	t.Helper()
	testenv.RequireRoot(t)
	tp := &topo{}
	tp.a = tp.addHost(t, "a")
	tp.b = tp.addHost(t, "b")
	c := tp.addHost(t, "c")
	tp.sw = newSwitch(t, Config{OnEvent: events.add})
	for _, h := range tp.hosts {
		tp.addPort(t, h)
	}
	g := fmt.Sprintf("group_id=1,type=fast_failover,bucket=watch_port:%s,actions=output:%s,bucket=watch_port:%s,actions=mod_dl_dst:%s,mod_nw_dst:%s,output:%s",
		tp.b.port(), tp.b.port(), c.port(), c.PeerMAC, c.ip, c.port())
	grp, err := flowtable.ParseGroup(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.sw.Apply(Change{AddGroups: []*flowtable.Group{grp}, Add: tp.flows(t, "in_port={a},udp,actions=group:1")}); err != nil {
		t.Fatal(err)
	}
	return tp, c
}

func TestLivenessFollowsTheLink(t *testing.T) {
	events := &eventLog{}
	tp, c := uplinkTopo(t, events)
	live := func(h *host) bool {
		p, err := tp.sw.Port(h.port())
		if err != nil {
			t.Fatal(err)
		}
		return p.Live
	}
	if !live(tp.b) || !live(c) {
		t.Fatal("uplinks not live at start")
	}
	if !events.has(func(e Event) bool { return e.Type == EventPortAdded && e.Port == tp.b.port() && e.Live }) {
		t.Fatalf("no port_added event: %v", events)
	}

	// wan1's far end goes down: wan1 is dead, the group moves to bucket 1.
	setPeer(t, tp.b, false)
	eventually(t, 2*time.Second, func() bool { return !live(tp.b) }, func() string { return "wan1 still live" })
	p, _ := tp.sw.Port(tp.b.port())
	if p.Carrier || !p.LinkUp || p.Liveness != LivenessAuto {
		t.Fatalf("wan1 after its peer went down: %+v", p)
	}
	eventually(t, time.Second, func() bool {
		return events.has(func(e Event) bool { return e.Type == EventFailover && e.Group == 1 && e.From == 0 && e.To == 1 })
	}, events.String)
	if !events.has(func(e Event) bool {
		return e.Type == EventLiveness && e.Port == tp.b.port() && !e.Live && e.Reason == "no_carrier"
	}) || !events.has(func(e Event) bool { return e.Type == EventLink && e.Port == tp.b.port() && !e.Carrier }) {
		t.Fatalf("no liveness or link event: %v", events)
	}
	gi, err := tp.sw.Group(1)
	if err != nil || gi.Stats.Buckets[0].Live || !gi.Stats.Buckets[1].Live {
		t.Fatalf("group 1 with wan1 dead: %+v %v", gi.Stats, err)
	}

	// An external prober says wan1 is live after all: it is, the group
	// moves back; then auto again follows the link.
	if _, err := tp.sw.SetLiveness(tp.b.port(), LivenessLive); err != nil {
		t.Fatal(err)
	}
	if !live(tp.b) || !events.has(func(e Event) bool { return e.Type == EventFailover && e.From == 1 && e.To == 0 }) {
		t.Fatalf("override live: %v", events)
	}
	if _, err := tp.sw.SetLiveness(tp.b.port(), LivenessAuto); err != nil || live(tp.b) {
		t.Fatalf("back to auto with no carrier: live %v, %v", live(tp.b), err)
	}
	if _, err := tp.sw.SetLiveness(tp.b.port(), "maybe"); err == nil {
		t.Fatal("liveness maybe accepted")
	}
	if _, err := tp.sw.SetLiveness("nope", LivenessDead); err == nil {
		t.Fatal("liveness of a missing port set")
	}

	// The far end comes back.
	setPeer(t, tp.b, true)
	eventually(t, 2*time.Second, func() bool { return live(tp.b) }, func() string { return "wan1 not live again" })
	eventually(t, time.Second, func() bool {
		return events.has(func(e Event) bool {
			return e.Type == EventFailover && e.From == 1 && e.To == 0 && e.Time.After(p.AddedAt)
		})
	}, events.String)
}

// TestFailoverGap sends a numbered stream at 1 kpps from the LAN through the
// fast_failover group while wan1's far end goes down and comes back, and
// counts what is lost: only what was in flight while the switch learned of
// the link and moved the group, under 50 ms of the stream.
func TestFailoverGap(t *testing.T) {
	events := &eventLog{}
	tp, c := uplinkTopo(t, events)
	const port, n, size = 7001, 3000, 64
	sinkB := listenUDP(t, tp.b.NS, tp.b.ip, port)
	sinkC := listenUDP(t, c.NS, c.ip, port)
	sent := make(chan error, 1)
	start := time.Now()
	go func() { sent <- trySendUDP(tp.a, tp.b.ip, port, n, seqPayload(size), sendOpts{Burst: 1}) }()
	time.Sleep(time.Second)
	down := time.Now()
	setPeer(t, tp.b, false)
	time.Sleep(time.Second)
	setPeer(t, tp.b, true)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	rate := float64(n) / time.Since(start).Seconds()
	time.Sleep(200 * time.Millisecond)
	viaB, viaC := sinkB.drain(), sinkC.drain()
	got := append(viaB, viaC...)
	seen := checkIntact(t, "failover stream", got, n, size)
	var missing []int
	for i, ok := range seen {
		if !ok {
			missing = append(missing, i)
		}
	}
	gap := time.Duration(float64(len(missing)) / rate * float64(time.Second))
	t.Logf("%d datagrams at %.0f/s, %d lost (%v of the stream), wan1 down at %v; missing %v",
		n, rate, len(missing), gap.Round(time.Millisecond), down.Sub(start).Round(time.Millisecond), missing)
	// wan1 is down for a second of the stream: at the rate it went (under
	// 1 kpps when the machine is busy), at least half of that via wan2.
	if len(viaB) < n/3 || float64(len(viaC)) < rate/2 {
		t.Fatalf("%d datagrams via wan1, %d via wan2: the stream did not move to wan2 and back", len(viaB), len(viaC))
	}
	if gap >= 50*time.Millisecond {
		t.Fatalf("failover lost %v of the stream, want under 50ms", gap)
	}
	if !events.has(func(e Event) bool { return e.Type == EventFailover && e.To == 1 }) {
		t.Fatalf("no failover: %v", events)
	}
}
