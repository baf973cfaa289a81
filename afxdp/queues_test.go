package afxdp

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/testenv"
)

// QueueInfo reports active queues, not allocated ones: a veth made without
// queue arguments allocates one per CPU and activates one, and `ethtool -L`
// activates more.
func TestQueueInfo(t *testing.T) {
	ns := testenv.NewNS(t)
	def := testenv.NewVeth(t, ns, "qd", testenv.VethOptions{})
	two := testenv.NewVeth(t, ns, "q2", testenv.VethOptions{Queues: 2})
	tests := []struct {
		name        string
		dev         string
		active, max int
	}{
		{"default veth", def.LocalName(), 1, def.Local.Attrs().NumRxQueues},
		{"two queues", two.LocalName(), 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := QueueInfo(tt.dev)
			if err != nil {
				t.Fatal(err)
			}
			if q.Active != tt.active || q.Max != tt.max || q.Source != "ethtool" {
				t.Fatalf("QueueInfo(%s) = %+v, want %d active of %d, from ethtool", tt.dev, q, tt.active, tt.max)
			}
		})
	}
	if def.Local.Attrs().NumRxQueues < 2 {
		t.Skip("one CPU: the default veth has no second queue to activate")
	}
	if err := testenv.SetChannels(def.LocalName(), 2, 2); err != nil {
		t.Fatal(err)
	}
	if q, err := QueueInfo(def.LocalName()); err != nil || q.Active != 2 {
		t.Fatalf("after ethtool -L rx 2: %+v %v", q, err)
	}
}

// A device without ethtool channels (loopback) is counted in sysfs; a
// device that does not exist is ENODEV.
func TestQueueInfoFallbackAndErrors(t *testing.T) {
	testenv.RequireRoot(t)
	q, err := QueueInfo("lo")
	if err != nil || q.Active < 1 || q.Source != "sysfs" || q.Max != q.Active {
		t.Fatalf("QueueInfo(lo) = %+v %v, want a count from sysfs", q, err)
	}
	if _, err := QueueInfo("nosuchdev0"); !errors.Is(err, unix.ENODEV) {
		t.Fatalf("QueueInfo of a missing device: %v, want ENODEV", err)
	}
	if _, err := QueueInfo("a-name-far-too-long"); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("QueueInfo of a bad name: %v", err)
	}
}
