package ctl

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"

	"github.com/xvs-project/xvs/api"
)

// A replace with the flows already installed keeps them (IDs, counters)
// and, the configuration being what it was, does not write the state file
// again; a replace that changes one flow keeps the others.
func TestReplaceUnchanged(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	body := `[{"flow":"priority=10,udp,actions=output:p1"},{"flow":"priority=20,in_port=p0,tcp,actions=output:p1"}]`
	first := decodeFlowList(t, h.must(201, "POST", api.PathFlows, body))
	ids := []uint64{first[0].ID, first[1].ID}
	if err := os.Remove(h.store.Path()); err != nil {
		t.Fatal(err)
	}
	again := decodeFlowList(t, h.must(200, "PUT", api.PathFlows, body))
	if got := []uint64{again[0].ID, again[1].ID}; !slices.Equal(got, ids) {
		t.Fatalf("replace with the same flows: IDs %v, want %v kept", got, ids)
	}
	if _, err := os.Stat(h.store.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unchanged replace wrote the state file (%v)", err)
	}
	changed := decodeFlowList(t, h.must(200, "PUT", api.PathFlows,
		`[{"flow":"priority=10,udp,actions=output:p1"},{"flow":"priority=20,in_port=p0,tcp,actions=output:p0"}]`))
	if changed[0].ID != ids[0] || changed[1].ID == ids[1] {
		t.Fatalf("replace of one flow: IDs %d %d, want %d kept and a new one", changed[0].ID, changed[1].ID, ids[0])
	}
	st, err := h.store.Load()
	if err != nil || len(st.Flows) != 2 {
		t.Fatalf("state after a changing replace: %+v, %v", st, err)
	}
}

// A replace whose flows give an installed flow twice leaves it alone (ID,
// counters), as ovs-ofctl replace-flows does: the later of the two keeps
// it; the earlier, which the later replaces, is answered with an ID of its
// own that is not installed.
func TestReplaceGivenTwice(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	first := decodeFlowList(t, h.must(201, "POST", api.PathFlows, `[{"flow":"priority=10,udp,actions=output:p1"},{"flow":"tcp,actions=drop"}]`))
	h.backend.Pipeline().Get(first[0].ID).Hit(5, 500, 1)
	got := decodeFlowList(t, h.must(200, "PUT", api.PathFlows,
		`[{"flow":"priority=10,udp,actions=output:p1"},{"flow":"tcp,actions=drop"},{"flow":"priority=10,udp,actions=output:p1"}]`))
	if len(got) != 3 || got[2].ID != first[0].ID || got[1].ID != first[1].ID || got[0].ID == first[0].ID {
		t.Fatalf("replace with a flow twice: %+v, installed %d %d", got, first[0].ID, first[1].ID)
	}
	fi, err := h.backend.Flow(first[0].ID)
	if err != nil || fi.Packets != 5 || len(h.backend.Flows()) != 2 {
		t.Fatalf("the flow given twice: %+v, %v; %d flows", fi, err, len(h.backend.Flows()))
	}
	if _, err := h.backend.Flow(got[0].ID); err == nil {
		t.Fatalf("the earlier of the two, flow %d, is installed", got[0].ID)
	}
	checkSaved(t, h, "after the replace")
}
