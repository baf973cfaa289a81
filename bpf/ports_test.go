package bpf

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/testenv"
)

// The array in front of the ports hash holds the first ifindex of each of
// its slots; an ifindex that falls into a taken slot is found in the hash,
// and removing either leaves the other as it was.
func TestPortCacheCollisions(t *testing.T) {
	o := load(t, true)
	ns := testenv.NewNS(t)
	const a, b = 3001, 3001 + portCacheSlots // the same slot
	err := ns.Do(func() error {
		for _, idx := range []int{a, b} {
			la := netlink.NewLinkAttrs()
			la.Name = testenv.RandName("pc")
			la.Index = idx
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: testenv.RandName("pp")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	portOf := func(ifindex int) uint32 {
		t.Helper()
		var res TestResult
		err := ns.Do(func() (err error) {
			res, err = o.TestRun(udp4Frame(t, 1, 2), ifindex, 0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.UnknownPort {
			return 0
		}
		return res.Key.InPort()
	}
	if err := o.SetPort(a, 7); err != nil {
		t.Fatal(err)
	}
	if err := o.SetPort(b, 8); err != nil {
		t.Fatal(err)
	}
	if pa, pb := portOf(a), portOf(b); pa != 7 || pb != 8 {
		t.Fatalf("ports %d, %d; want 7, 8", pa, pb)
	}
	if err := o.SetPort(a, 9); err != nil { // a new ofport for a: the cached slot follows
		t.Fatal(err)
	}
	if pa := portOf(a); pa != 9 {
		t.Fatalf("after a change, port %d; want 9", pa)
	}
	if err := o.DeletePort(a); err != nil {
		t.Fatal(err)
	}
	if pa, pb := portOf(a), portOf(b); pa != 0 || pb != 8 {
		t.Fatalf("after deleting a: ports %d, %d; want unknown, 8", pa, pb)
	}
	if err := o.DeletePort(b); err != nil {
		t.Fatal(err)
	}
	if pb := portOf(b); pb != 0 {
		t.Fatalf("after deleting b: port %d", pb)
	}
}
