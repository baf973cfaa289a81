package ctltest

import (
	"errors"
	"testing"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

func mustParse(t *testing.T, text string) *flowtable.Flow {
	t.Helper()
	f, err := flowtable.ParseFlow(text)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBackend(t *testing.T) {
	b := New()
	b.SetNetdevs("p0", "p1")
	if _, err := b.AddPort(datapath.PortSpec{Name: "p0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPort(datapath.PortSpec{Name: "p0"}); !errors.Is(err, datapath.ErrPortExists) {
		t.Fatalf("duplicate port: %v", err)
	}
	if _, err := b.AddPort(datapath.PortSpec{Name: "p9"}); !errors.Is(err, datapath.ErrNoSuchDevice) {
		t.Fatalf("missing netdev: %v", err)
	}
	if _, err := b.AddPort(datapath.PortSpec{Name: "p1", Mode: "fast"}); !errors.Is(err, datapath.ErrInvalid) {
		t.Fatalf("bad mode: %v", err)
	}

	res, err := b.Apply(datapath.Change{Add: []*flowtable.Flow{
		mustParse(t, "priority=10,udp,actions=output:p0"),
		mustParse(t, "priority=20,tcp,actions=drop"),
	}})
	ids := res.Added
	if err != nil || len(ids) != 2 || ids[0] != 1 || ids[1] != 2 {
		t.Fatalf("add: %v %v", ids, err)
	}

	tests := []struct {
		name   string
		change datapath.Change
		err    error
	}{
		{"unknown output", datapath.Change{Add: []*flowtable.Flow{mustParse(t, "arp,actions=kernel"), mustParse(t, "udp,actions=output:p1")}}, datapath.ErrNoSuchPort},
		{"unknown in_port", datapath.Change{Add: []*flowtable.Flow{mustParse(t, "in_port=p1,actions=drop")}}, datapath.ErrNoSuchPort},
		{"unknown delete", datapath.Change{Delete: []uint64{1, 99}}, datapath.ErrNoSuchFlow},
		{"replace with a bad flow", datapath.Change{Replace: true, Add: []*flowtable.Flow{nil}}, datapath.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.Apply(tt.change); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if n := len(b.Flows()); n != 2 {
				t.Fatalf("failed change left %d flows, want 2", n)
			}
		})
	}

	// Same priority and match replaces.
	res, err = b.Apply(datapath.Change{Add: []*flowtable.Flow{mustParse(t, "priority=10,udp,actions=drop")}})
	ids = res.Added
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Flow(1); !errors.Is(err, datapath.ErrNoSuchFlow) {
		t.Fatalf("replaced flow still there: %v", err)
	}
	if fi, err := b.Flow(ids[0]); err != nil || len(fi.Flow.Actions) != 0 {
		t.Fatalf("replacing flow: %+v %v", fi, err)
	}

	b.SetMaxMasks(1) // udp and tcp share one mask
	if _, err := b.Apply(datapath.Change{Add: []*flowtable.Flow{mustParse(t, "udp,tp_dst=1,actions=drop")}}); !errors.Is(err, flowtable.ErrTooManyMasks) {
		t.Fatalf("third mask: %v", err)
	}
	if _, err := b.Apply(datapath.Change{Replace: true}); err != nil || len(b.Flows()) != 0 {
		t.Fatalf("replace with nothing: %v, %d flows", err, len(b.Flows()))
	}

	b.Close()
	if _, err := b.Apply(datapath.Change{}); !errors.Is(err, datapath.ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
	if err := b.Health(); !errors.Is(err, datapath.ErrClosed) {
		t.Fatalf("closed health: %v", err)
	}
}
