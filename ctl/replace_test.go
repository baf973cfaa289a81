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
