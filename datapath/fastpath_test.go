package datapath

import (
	"fmt"
	"testing"
	"time"
)

// checkWhere checks where flow id ran after a sent n datagrams of size
// bytes to b through it: with fast, in XDP (the pollers saw none of them,
// the XDP program forwarded them all, the flow counted them exactly);
// without, in userspace, because b's port takes no redirected frames.
func checkWhere(t *testing.T, tp *topo, id uint64, n, size int, fast bool) {
	t.Helper()
	fi, err := tp.sw.Flow(id)
	if err != nil {
		t.Fatal(err)
	}
	if !fast {
		if want := "no_ndo_xdp_xmit:" + tp.b.port(); fi.Datapath != DatapathUser || fi.DatapathReason != want {
			t.Fatalf("flow runs in %s(%s), want user(%s)", fi.Datapath, fi.DatapathReason, want)
		}
		if rx := tp.stats(t, tp.a).RxPackets; rx < uint64(n) {
			t.Fatalf("the pollers saw %d packets from a, want at least %d", rx, n)
		}
		return
	}
	if fi.Datapath != DatapathXDP {
		t.Fatalf("flow runs in %s(%s), want xdp", fi.Datapath, fi.DatapathReason)
	}
	st := tp.stats(t, tp.a)
	if st.RxPackets != 0 {
		t.Fatalf("the pollers saw %d packets from a", st.RxPackets)
	}
	if fwd := st.XDP["forward"]; fwd != uint64(n) {
		t.Fatalf("XDP forwarded %d packets, want %d (%v)", fwd, n, st.XDP)
	}
	frame := uint64(14 + 20 + 8 + size)
	eventually(t, 2*time.Second, func() bool {
		fi, _ = tp.sw.Flow(id)
		return fi.Packets == uint64(n) && fi.Bytes == uint64(n)*frame
	}, func() string {
		return fmt.Sprintf("flow counted %d packets, %d bytes; want %d, %d", fi.Packets, fi.Bytes, n, uint64(n)*frame)
	})
}
