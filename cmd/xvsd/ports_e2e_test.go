package main

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/client"
	"github.com/xvs-project/xvs/testenv"
)

// TestRESTPorts: veths made as users make them (no queue arguments: two
// queues, one active) are ports and forward, and show says active/max; a
// port the kernel refuses answers a 4xx naming the device (and queue),
// never a 500, and leaves nothing behind.
func TestRESTPorts(t *testing.T) {
	ns, nsB := testenv.NewNS(t), testenv.NewNS(t)
	a := testenv.NewVeth(t, ns, "qa", testenv.VethOptions{PeerIP: "10.231.9.1/24"})
	b := testenv.NewVeth(t, nsB, "qb", testenv.VethOptions{PeerIP: "10.231.9.2/24"})
	a.AddNeigh(t, b.PeerAddr, b.PeerMAC)
	busy := testenv.NewVeth(t, ns, "qc", testenv.VethOptions{})
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: testenv.RandName("qbr")}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(br) })
	d := startXvsd(t, t.TempDir())
	c := d.client

	for _, v := range []*testenv.Veth{a, b} {
		pi, err := c.AddPort(tctx(t), api.PortRequest{Name: v.LocalName()})
		if err != nil {
			t.Fatalf("add a default veth: %v", err)
		}
		if pi.Queues != 1 || pi.ActiveQueues != 1 || pi.MaxQueues != v.Local.Attrs().NumRxQueues || pi.State != "up" {
			t.Fatalf("port %s: %+v, want 1 of %d queues, up", v.LocalName(), pi, v.Local.Attrs().NumRxQueues)
		}
	}
	if _, err := c.AddFlow(tctx(t), flowJSON("udp,in_port="+a.LocalName()+",actions=output:"+b.LocalName())); err != nil {
		t.Fatal(err)
	}
	if err := udpThrough(a, b); err != nil {
		t.Fatalf("a to b through the switch: %v", err)
	}

	// Another program's AF_XDP socket on queue 0 of busy.
	u, err := afxdp.NewUmem(afxdp.UmemOptions{NumFrames: 64, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	s, err := afxdp.NewSocket(u, afxdp.SocketOptions{Ifindex: busy.LocalIndex(), RxSize: 16, TxSize: 16, FillSize: 16, CompletionSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	tests := []struct {
		name   string
		req    api.PortRequest
		status int
		says   []string
	}{
		{"no such device", api.PortRequest{Name: "nosuchdev0"}, 404, []string{"nosuchdev0", "no such network device"}},
		{"queue held by another program", api.PortRequest{Name: busy.LocalName()}, 409, []string{busy.LocalName(), "queue 0", "in use"}},
		{"native xdp on a bridge", api.PortRequest{Name: br.Name, Mode: "native"}, 400, []string{br.Name, "native", "not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AddPort(tctx(t), tt.req)
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != tt.status {
				t.Fatalf("add port %+v: %v, want status %d", tt.req, err, tt.status)
			}
			for _, s := range tt.says {
				if !strings.Contains(ae.Message, s) {
					t.Errorf("message %q does not say %q", ae.Message, s)
				}
			}
		})
	}
	ports, err := c.Ports(tctx(t))
	if err != nil || len(ports) != 2 {
		t.Fatalf("ports after the refused ones: %+v %v", ports, err)
	}
	if xdpAttached(t, busy.LocalName()) || xdpAttached(t, br.Name) {
		t.Fatal("a refused port kept its XDP program")
	}
	if err := c.Health(tctx(t)); err != nil {
		t.Fatalf("health: %v", err)
	}
}

// udpThrough sends datagrams from from's namespace to to's peer address
// and reports whether one arrived in to's namespace.
func udpThrough(from, to *testenv.Veth) error {
	var l *net.UDPConn
	if err := to.NS.Do(func() (err error) {
		l, err = net.ListenUDP("udp4", &net.UDPAddr{IP: to.PeerAddr})
		return err
	}); err != nil {
		return err
	}
	defer l.Close()
	err := from.NS.Do(func() error {
		c, err := net.DialUDP("udp4", nil, l.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return err
		}
		defer c.Close()
		for range 5 {
			if _, err := c.Write([]byte("ping")); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = l.Read(make([]byte, 16))
	return err
}
