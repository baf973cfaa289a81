package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (network namespaces, veth, XDP, AF_XDP)")
	}
}

// NS is a network namespace created for one test.
type NS struct {
	Name   string // short name, for messages
	handle netns.NsHandle
}

// NewNS creates a fresh, unnamed network namespace with loopback up. It is
// closed (and so destroyed, with every link in it) when the test ends.
func NewNS(tb testing.TB) *NS {
	tb.Helper()
	RequireRoot(tb)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		tb.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	h, err := netns.New()
	if err != nil {
		tb.Fatalf("create netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		h.Close()
		tb.Fatalf("restore netns: %v", err)
	}
	ns := &NS{Name: "ns-" + RandName(""), handle: h}
	tb.Cleanup(func() { h.Close() })
	if err := ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		tb.Fatalf("loopback up in %s: %v", ns.Name, err)
	}
	return ns
}

// Handle returns the namespace's handle (valid until the test ends).
func (ns *NS) Handle() netns.NsHandle { return ns.handle }

// Do runs fn on a locked OS thread switched into the namespace. Sockets
// created inside fn stay in the namespace after Do returns.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// This goroutine's thread is never unlocked, so the runtime destroys
		// it on exit instead of reusing a thread left in another namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns.handle); err != nil {
			errc <- fmt.Errorf("enter %s: %w", ns.Name, err)
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil && err == nil {
			err = fmt.Errorf("leave %s: %w", ns.Name, serr)
		}
		errc <- err
	}()
	return <-errc
}

// RandName returns prefix followed by 6 random hex digits: unique enough for
// link names (at most 15 bytes) of parallel test runs.
func RandName(prefix string) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// VethOptions shape a veth pair.
type VethOptions struct {
	// Queues is the number of RX and TX queues of each end, all active.
	// 0 leaves them to the kernel, as `ip link add a type veth peer name b`
	// does: on this kernel that allocates one queue per CPU and activates
	// one (SetChannels activates more).
	Queues  int
	MTU     int    // 0 = 1500
	PeerIP  string // CIDR for the peer end, e.g. "10.10.0.2/24"; "" = none
	LocalIP string // CIDR for the local (switch) end; "" = none
	// Name is the local end's name; "" = prefix and random hex. A test
	// that makes a device again under a name it had gives it.
	Name string
	// PeerGRO turns on GRO on the peer end, so the local end takes frames
	// XDP redirects to it: what the switch's fast path needs of an output
	// port (see EnableGRO). Off, as a new veth is, flows that output to
	// the local end stay in userspace.
	PeerGRO bool
}

// Veth is a veth pair: Local stays in the test's namespace, Peer lives in NS.
type Veth struct {
	Local     netlink.Link
	Peer      netlink.Link // as seen inside NS
	NS        *NS
	LocalMAC  net.HardwareAddr
	PeerMAC   net.HardwareAddr
	PeerAddr  net.IP // nil if no PeerIP
	LocalAddr net.IP // nil if no LocalIP
}

// NewVeth creates a veth pair with a random local name (prefix + hex, or
// o.Name), moves
// the peer into ns, brings both up, turns off TX checksum and VLAN offload on
// the peer (frames from a raw or AF_XDP path carry no partial checksums),
// turns on GRO on the peer if asked, and assigns the addresses. The pair is
// deleted when the test ends.
func NewVeth(tb testing.TB, ns *NS, prefix string, o VethOptions) *Veth {
	tb.Helper()
	RequireRoot(tb)
	if o.MTU == 0 {
		o.MTU = 1500
	}
	local := o.Name
	if local == "" {
		local = RandName(prefix)
	}
	peer := RandName("pe")
	la := netlink.NewLinkAttrs()
	la.Name = local
	la.MTU = o.MTU
	la.NumTxQueues = o.Queues
	la.NumRxQueues = o.Queues
	v := &netlink.Veth{LinkAttrs: la, PeerName: peer, PeerNamespace: netlink.NsFd(int(ns.handle))}
	if err := netlink.LinkAdd(v); err != nil {
		tb.Fatalf("add veth %s/%s: %v", local, peer, err)
	}
	tb.Cleanup(func() {
		if l, err := netlink.LinkByName(local); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	l, err := netlink.LinkByName(local)
	if err != nil {
		tb.Fatalf("find %s: %v", local, err)
	}
	out := &Veth{Local: l, NS: ns, LocalMAC: l.Attrs().HardwareAddr}
	if o.LocalIP != "" {
		addr, err := netlink.ParseAddr(o.LocalIP)
		if err != nil {
			tb.Fatalf("parse %s: %v", o.LocalIP, err)
		}
		if err := netlink.AddrAdd(l, addr); err != nil {
			tb.Fatalf("address %s on %s: %v", o.LocalIP, local, err)
		}
		out.LocalAddr = addr.IP
	}
	if err := netlink.LinkSetUp(l); err != nil {
		tb.Fatalf("up %s: %v", local, err)
	}
	err = ns.Do(func() error {
		p, err := netlink.LinkByName(peer)
		if err != nil {
			return err
		}
		out.Peer = p
		out.PeerMAC = p.Attrs().HardwareAddr
		if o.PeerIP != "" {
			addr, err := netlink.ParseAddr(o.PeerIP)
			if err != nil {
				return err
			}
			if err := netlink.AddrAdd(p, addr); err != nil {
				return fmt.Errorf("address %s: %w", o.PeerIP, err)
			}
			out.PeerAddr = addr.IP
		}
		if err := netlink.LinkSetUp(p); err != nil {
			return err
		}
		if o.PeerGRO {
			if err := EnableGRO(peer); err != nil {
				return err
			}
		}
		return DisableOffloads(peer)
	})
	if err != nil {
		tb.Fatalf("set up peer %s: %v", peer, err)
	}
	return out
}

// LocalName returns the name of the switch-side end.
func (v *Veth) LocalName() string { return v.Local.Attrs().Name }

// LocalIndex returns the ifindex of the switch-side end.
func (v *Veth) LocalIndex() int { return v.Local.Attrs().Index }

// PeerName returns the name of the end inside the namespace.
func (v *Veth) PeerName() string { return v.Peer.Attrs().Name }

// PeerIndex returns the ifindex of the end inside the namespace.
func (v *Veth) PeerIndex() int { return v.Peer.Attrs().Index }

// AddNeigh adds a permanent neighbour entry ip -> mac on the peer end, so
// traffic from the namespace needs no ARP.
func (v *Veth) AddNeigh(tb testing.TB, ip net.IP, mac net.HardwareAddr) {
	tb.Helper()
	err := v.NS.Do(func() error {
		fam := netlink.FAMILY_V4
		if ip.To4() == nil {
			fam = netlink.FAMILY_V6
		}
		return netlink.NeighSet(&netlink.Neigh{
			LinkIndex:    v.Peer.Attrs().Index,
			Family:       fam,
			State:        netlink.NUD_PERMANENT,
			IP:           ip,
			HardwareAddr: mac,
		})
	})
	if err != nil {
		tb.Fatalf("neighbour %s -> %s on %s: %v", ip, mac, v.PeerName(), err)
	}
}
