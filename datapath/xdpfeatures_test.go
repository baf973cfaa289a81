package datapath

import (
	"testing"

	"github.com/xvs-project/xvs/testenv"
)

// The XDP features of a veth follow its peer: it takes redirected frames
// (ndo_xdp_xmit) only while the peer has GRO on (or an XDP program). Every
// read must work, the first of the process too.
func TestRedirectTarget(t *testing.T) {
	testenv.RequireRoot(t)
	for _, gro := range []bool{false, true} {
		v := testenv.NewVeth(t, testenv.NewNS(t), "xf", testenv.VethOptions{PeerGRO: gro})
		for i := 0; i < 3; i++ {
			ok, why, err := redirectTarget(v.LocalIndex())
			if err != nil {
				t.Fatalf("peer gro %v, read %d: %v", gro, i, err)
			}
			if ok != gro || (why == "") != gro {
				t.Fatalf("peer gro %v: redirect target %v (%q)", gro, ok, why)
			}
		}
	}
	if _, why, err := redirectTarget(1 << 30); err == nil || why != errNoXDPFeaturesReason {
		t.Fatalf("a device that does not exist: %q, %v", why, err)
	}
}
