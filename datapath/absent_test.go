package datapath

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/flowtable"
	"github.com/xvs-project/xvs/testenv"
)

// waitPortState waits until port name is in state want.
func waitPortState(t testing.TB, sw *Switch, name, want string) PortInfo {
	t.Helper()
	var info PortInfo
	eventually(t, 5*time.Second, func() bool {
		var err error
		info, err = sw.Port(name)
		return err == nil && info.State == want
	}, func() string { return fmt.Sprintf("port %s: %+v, want state %s", name, info, want) })
	return info
}

// A port configured while its device is missing (xvsd restoring a port
// whose veth is not made yet) is kept, absent: it has its ofport, the
// flows and groups that name it are installed, it is dead for
// fast_failover, health says so, and it is attached when the device
// appears (a netlink link update), with no request.
func TestPortAbsentUntilDeviceAppears(t *testing.T) {
	const n, size = 20, 100
	tp := newTopo(t, topoOptions{})
	dev := testenv.RandName("xabs")
	if _, err := tp.sw.AddPort(PortSpec{Name: dev}); !errors.Is(err, ErrNoSuchDevice) {
		t.Fatalf("add port of a missing device without KeepAbsent: %v, want ErrNoSuchDevice", err)
	}
	info, err := tp.sw.AddPort(PortSpec{Name: dev, OFPort: 9, KeepAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.State != PortAbsent || info.Live || info.OFPort != 9 || info.Problem == "" {
		t.Fatalf("absent port: %+v", info)
	}
	if err := tp.sw.Health(); err == nil || !strings.Contains(err.Error(), dev+" absent") {
		t.Fatalf("health with an absent port: %v", err)
	}
	// Flows to the absent port, and a fast_failover group preferring it:
	// until it comes, the group uses b.
	g, err := flowtable.ParseGroup(fmt.Sprintf("group_id=1,type=ff,bucket=watch_port:%s,actions=output:%s,bucket=watch_port:%s,actions=output:%s", dev, dev, tp.b.port(), tp.b.port()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.sw.Apply(Change{AddGroups: []*flowtable.Group{g}, Add: tp.flows(t, "in_port={a},udp,tp_dst=7910,actions=group:1")}); !errors.Is(err, ErrNoSuchPort) {
		t.Fatalf("a group naming an absent port, strictly: %v, want ErrNoSuchPort", err)
	}
	if _, err := tp.sw.Apply(Change{AllowMissingPorts: true, AddGroups: []*flowtable.Group{g}, Add: tp.flows(t, "in_port={a},udp,tp_dst=7910,actions=group:1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.sw.Apply(Change{AllowMissingPorts: true, Add: []*flowtable.Flow{tp.flow(t, "in_port={a},udp,tp_dst=7911,actions=output:"+dev)}}); err != nil {
		t.Fatal(err)
	}
	atB := listenUDP(t, tp.b.NS, tp.b.ip, 7910)
	sendUDP(t, tp.a, tp.b.ip, 7910, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to b while the group's first port is absent", atB.collect(n, 5*time.Second), n, size)
	if st := tp.stats(t, tp.a); st.Drops[DropPortGone] != 0 {
		t.Fatalf("drops to the absent port before any was sent: %v", st.Drops)
	}

	// The device appears: the port attaches, the group moves to it, the
	// flow to it forwards.
	c := tp.addHostDev(t, "c", dev)
	info = waitPortState(t, tp.sw, dev, PortUp)
	if info.OFPort != 9 || info.Ifindex != c.LocalIndex() {
		t.Fatalf("attached: %+v, want ofport 9 ifindex %d", info, c.LocalIndex())
	}
	eventually(t, 5*time.Second, func() bool { p, _ := tp.sw.Port(dev); return p.Live }, func() string { return "the port never became live" })
	atC2 := listenUDP(t, c.NS, c.ip, 7911)
	sendUDP(t, tp.a, c.ip, 7911, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to the port that came", atC2.collect(n, 5*time.Second), n, size)
	// c takes b's addresses too: the group sends b's traffic there now.
	if err := c.NS.Do(func() error {
		l, err := netlink.LinkByName(c.PeerName())
		if err != nil {
			return err
		}
		if err := netlink.LinkSetHardwareAddr(l, tp.b.PeerMAC); err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(tp.b.ip.String() + "/32")
		return netlink.AddrAdd(l, a)
	}); err != nil {
		t.Fatal(err)
	}
	atC := listenUDP(t, c.NS, tp.b.ip, 7910)
	sendUDP(t, tp.a, tp.b.ip, 7910, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to the port that came, through the group", atC.collect(n, 5*time.Second), n, size)
	if err := tp.sw.Health(); err != nil {
		t.Fatalf("health once the device came: %v", err)
	}

	// It goes again: absent, its flows kept; and back once more.
	if err := netlink.LinkDel(c.Local); err != nil {
		t.Fatal(err)
	}
	tp.dropHost(c)
	waitPortState(t, tp.sw, dev, PortAbsent)
	if got := tp.sw.Pipeline().Len(); got != 2 {
		t.Fatalf("%d flows after the device went, want 2", got)
	}
	checkFrames(t, tp.sw, "after the device went")
	c2 := tp.addHostDev(t, "c2", dev)
	info = waitPortState(t, tp.sw, dev, PortUp)
	if info.OFPort != 9 || info.Ifindex != c2.LocalIndex() {
		t.Fatalf("attached again: %+v", info)
	}
	if err := tp.sw.DeletePort(dev); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, tp.sw, "after the port was deleted")
}

// A device deleted and made again under the same name comes back as the
// same port, with its flows.
func TestPortDeviceComesBack(t *testing.T) {
	const n, size = 20, 100
	tp := newTopo(t, topoOptions{})
	c := tp.addHost(t, "c")
	tp.addPort(t, c)
	tp.addFlows(t, "in_port={a},udp,tp_dst=7920,actions=output:{c}")
	before, err := tp.sw.Port(c.port())
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(c.Local); err != nil {
		t.Fatal(err)
	}
	tp.dropHost(c)
	waitPortState(t, tp.sw, c.port(), PortAbsent)
	c2 := tp.addHostDev(t, "c2", c.port())
	after := waitPortState(t, tp.sw, c.port(), PortUp)
	if after.OFPort != before.OFPort || after.Ifindex == before.Ifindex {
		t.Fatalf("before %+v\nafter %+v: want the same ofport on the new device", before, after)
	}
	at := listenUDP(t, c2.NS, c2.ip, 7920)
	sendUDP(t, tp.a, c2.ip, 7920, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to the device made again", at.collect(n, 5*time.Second), n, size)
}

// Ofports of removed ports are given to new names once every number is
// held and no flow names the removed port; a configured port keeps its
// number, and so does a removed one while flows name it.
func TestOFPortsReused(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	tp.sw.mu.Lock()
	tp.sw.maxOF = 4 // a and b hold 1 and 2
	tp.sw.mu.Unlock()
	held := tp.addHost(t, "held")
	tp.addPort(t, held)
	tp.addFlows(t, "in_port={held},actions=drop")
	if err := tp.sw.DeletePort(held.port()); err != nil {
		t.Fatal(err)
	}
	// Many names come and go through the one number left.
	var last uint32
	for i := range 6 {
		h := tp.addHost(t, fmt.Sprintf("h%d", i))
		info, err := tp.sw.AddPort(PortSpec{Name: h.port()})
		if err != nil {
			t.Fatalf("port %d: %v", i, err)
		}
		if info.OFPort == 1 || info.OFPort == 2 || info.OFPort == 3 {
			t.Fatalf("port %d got ofport %d: held by a, b or a removed port that a flow names", i, info.OFPort)
		}
		last = info.OFPort
		if err := tp.sw.DeletePort(h.port()); err != nil {
			t.Fatal(err)
		}
	}
	if last != 4 {
		t.Fatalf("last ofport %d, want 4", last)
	}
	// Two at once do not fit: the error says why.
	h1, h2 := tp.addHost(t, "x1"), tp.addHost(t, "x2")
	tp.addPort(t, h1)
	if _, err := tp.sw.AddPort(PortSpec{Name: h2.port()}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "flows or groups still name") {
		t.Fatalf("a fifth port: %v", err)
	}
	// Once the flow naming the removed port goes, its number is free.
	if _, err := tp.sw.Apply(Change{Replace: true}); err != nil {
		t.Fatal(err)
	}
	info, err := tp.sw.AddPort(PortSpec{Name: h2.port()})
	if err != nil || info.OFPort != 3 {
		t.Fatalf("after the flow went: %+v, %v; want ofport 3", info, err)
	}
	// A port's number stays while it is configured, and its counters are
	// its own.
	if p, _ := tp.sw.Port(tp.a.port()); p.OFPort != 1 {
		t.Fatalf("a's ofport %d", p.OFPort)
	}
	if st := tp.stats(t, h2); st.XDP["rx"] > 10 {
		t.Fatalf("port on a reused number starts with its XDP counters: %v", st.XDP)
	}
}

// With the fast path, a flow to an absent port runs in userspace (its
// output compiles to a counted drop) and the port says why it takes no
// redirected frames; once the device appears, the port's redirect target
// is read as it attaches and the flow moves to XDP; when the device goes
// again the flow leaves XDP at once.
func TestFastPathAbsentPort(t *testing.T) {
	const n, size = 20, 64
	tp := newTopo(t, topoOptions{FastPath: true})
	dev := testenv.RandName("xabf")
	info, err := tp.sw.AddPort(PortSpec{Name: dev, KeepAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.FastPathOut != "port_absent" {
		t.Fatalf("absent port: fast_path_out %q, want port_absent", info.FastPathOut)
	}
	app, err := tp.sw.Apply(Change{AllowMissingPorts: true, Add: []*flowtable.Flow{tp.flow(t, "in_port={a},udp,tp_dst=7930,actions=output:"+dev)}})
	if err != nil {
		t.Fatal(err)
	}
	id := app.Added[0]
	if got := flowWhere(t, tp.sw, id); got != "user(port_gone)" {
		t.Fatalf("flow to the absent port runs in %s, want user(port_gone)", got)
	}

	c := tp.addHostDev(t, "c", dev)
	waitPortState(t, tp.sw, dev, PortUp)
	waitWhere(t, tp.sw, id, DatapathXDP)
	if p, _ := tp.sw.Port(dev); p.FastPathOut != "ok" {
		t.Fatalf("attached port: fast_path_out %q, want ok", p.FastPathOut)
	}
	at := listenUDP(t, c.NS, c.ip, 7930)
	before := tp.stats(t, tp.a)
	sendUDP(t, tp.a, c.ip, 7930, n, seqPayload(size), sendOpts{})
	checkSeq(t, "a to the port that came, in XDP", at.collect(n, 5*time.Second), n, size)
	after := tp.stats(t, tp.a)
	if polled, fwd := after.RxPackets-before.RxPackets, after.XDP["forward"]-before.XDP["forward"]; polled != 0 || fwd != n {
		t.Fatalf("pollers saw %d, XDP forwarded %d; want 0, %d", polled, fwd, n)
	}

	if err := netlink.LinkDel(c.Local); err != nil {
		t.Fatal(err)
	}
	tp.dropHost(c)
	info = waitPortState(t, tp.sw, dev, PortAbsent)
	if info.FastPathOut != "port_absent" {
		t.Fatalf("port whose device went: fast_path_out %q", info.FastPathOut)
	}
	if got := flowWhere(t, tp.sw, id); got != "user(port_gone)" {
		t.Fatalf("flow to the port whose device went runs in %s, want user(port_gone)", got)
	}
	checkFrames(t, tp.sw, "after the device went")
}

// A port named with digits is written quoted in flows ("7"); it is in use
// under its name, so its ofport is not given away while flows name it.
func TestPortNamesInUseQuoted(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	f, err := flowtable.ParseFlow(`in_port="7",actions=output:"12",output:placeholder`)
	if err != nil {
		t.Fatal(err)
	}
	f.Actions[1].Port = tp.b.port()
	if _, err := tp.sw.Apply(Change{AllowMissingPorts: true, Add: []*flowtable.Flow{f}}); err != nil {
		t.Fatal(err)
	}
	tp.sw.mu.Lock()
	used := tp.sw.portNamesInUseLocked()
	tp.sw.mu.Unlock()
	for _, name := range []string{"7", "12", tp.b.port()} {
		if !used[name] {
			t.Errorf("%q not in use: %v", name, used)
		}
	}
	if used[`"7"`] {
		t.Errorf("the quoted reference counted as a name of its own: %v", used)
	}
}
