package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
)

// Issue 9, item 3: a second xvsd on the state file of a running one
// refuses to start, and says who has it; the first goes on undisturbed.
func TestDaemonSecondOnStateRefused(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	d := startDaemon(t, "--listen", "unix:"+filepath.Join(dir, "a.sock"), "--state", state)
	if _, err := d.client.AddPort(context.Background(), api.PortRequest{Name: "p0"}); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	f := &fakeFactory{}
	// Refused at once; without the lock it would serve until ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code := run(ctx, []string{"--listen", "unix:" + filepath.Join(dir, "b.sock"), "--state", state}, &stderr, f.new)
	if code != 1 || !strings.Contains(stderr.String(), "in use by process") || f.backend != nil {
		t.Fatalf("second xvsd: exit %d, switch built %v, stderr %q", code, f.backend != nil, stderr.String())
	}
	if _, err := d.client.AddPort(context.Background(), api.PortRequest{Name: "p1"}); err != nil {
		t.Fatalf("the first xvsd after the second tried: %v", err)
	}
	if code := d.stop(t); code != 0 {
		t.Fatal(code)
	}
	// Once the first is gone, another may start on the file.
	d = startDaemon(t, "--listen", "unix:"+filepath.Join(dir, "b.sock"), "--state", state)
	if ports, err := d.client.Ports(context.Background()); err != nil || len(ports) != 2 {
		t.Fatalf("ports %+v, %v", ports, err)
	}
}

// Issue 9, item 4: the temporary file of a save a crash interrupted is
// removed at start, and the log says so.
func TestDaemonRemovesCrashedSave(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, ".state.json.tmp2718281828")
	if err := os.WriteFile(left, make([]byte, 6<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--listen", "unix:"+filepath.Join(dir, "x.sock"), "--state", filepath.Join(dir, "state.json"))
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is still there: %v", err)
	}
	if !strings.Contains(d.stderr.String(), "removed a temporary state file") || !strings.Contains(d.stderr.String(), left) {
		t.Errorf("the log does not say so:\n%s", d.stderr)
	}
}

// Issue 9, item 9: the IDs controllers hold survive a restart, and IDs of
// flows deleted before it are not given again.
func TestDaemonFlowIDsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--listen", "unix:" + filepath.Join(dir, "x.sock"), "--state", filepath.Join(dir, "state.json")}
	ctx := context.Background()
	d := startDaemon(t, args...)
	var flows []api.Flow
	for _, port := range []string{"1", "2", "3", "4", "5", "6"} {
		flows = append(flows, api.Flow{Text: "priority=" + port + ",udp,tp_dst=" + port + ",actions=drop"})
	}
	added, err := d.client.AddFlows(ctx, flows)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range added[:3] {
		if _, err := d.client.DeleteFlow(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Groups and flows of later tables that go to them come back as they
	// were, IDs included.
	if _, err := d.client.AddPort(ctx, api.PortRequest{Name: "p0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.AddPort(ctx, api.PortRequest{Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.AddGroups(ctx, []api.Group{
		{Text: "group_id=40,type=ff,bucket=watch_port:p1,actions=output:p1,bucket=watch_port:p0,actions=output:p0"},
		{Text: "group_id=7,type=select,bucket=weight:3,actions=output:p0,bucket=weight:1,actions=output:p1"},
	}); err != nil {
		t.Fatal(err)
	}
	more, err := d.client.AddFlows(ctx, []api.Flow{
		{Text: "table=0,priority=9,ip,actions=goto_table:3"},
		{Text: "table=3,priority=5,udp,actions=group:40"},
		{Text: "table=3,priority=4,tcp,actions=group:7"},
	})
	if err != nil || more[0].ID != 7 {
		t.Fatalf("flows of later tables: %+v, %v", more, err)
	}
	before := flowIDs(t, d.client)
	flowsBefore := flowTexts(t, d)
	groupsBefore := groupTexts(t, d)
	if len(groupsBefore) != 2 || !strings.Contains(groupsBefore[0], "group_id=40") || len(flowsBefore) != 6 || !strings.Contains(flowsBefore[3], "7 ") || !strings.Contains(flowsBefore[3], "goto_table:3") {
		t.Fatalf("before the restart: groups %q, flows %q", groupsBefore, flowsBefore)
	}
	if code := d.stop(t); code != 0 {
		t.Fatal(code)
	}
	d = startDaemon(t, args...)
	if after := flowIDs(t, d.client); !slices.Equal(after, before) || !slices.Equal(after, []uint64{4, 5, 6, 7, 8, 9}) {
		t.Fatalf("IDs before the restart %v, after %v", before, after)
	}
	if after := flowTexts(t, d); !slices.Equal(after, flowsBefore) {
		t.Fatalf("flows before the restart\n%s\nafter\n%s", strings.Join(flowsBefore, "\n"), strings.Join(after, "\n"))
	}
	if after := groupTexts(t, d); !slices.Equal(after, groupsBefore) {
		t.Fatalf("groups before the restart\n%s\nafter\n%s", strings.Join(groupsBefore, "\n"), strings.Join(after, "\n"))
	}
	f, err := d.client.AddFlow(ctx, api.Flow{Text: "arp,actions=kernel"})
	if err != nil || f.ID != 10 {
		t.Fatalf("next flow after the restart: %+v, %v; want ID 10", f, err)
	}
}

// flowTexts is every flow of d as "id text", by ID.
func flowTexts(t *testing.T, d *daemon) []string {
	t.Helper()
	fs, err := d.client.Flows(context.Background(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(fs, func(a, b api.FlowStatus) int { return int(a.ID) - int(b.ID) })
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%d %s", f.ID, f.Text))
	}
	return out
}

// groupTexts is every group of d in text form, by ID.
func groupTexts(t *testing.T, d *daemon) []string {
	t.Helper()
	gs, err := d.client.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range gs {
		out = append(out, g.Text)
	}
	slices.Sort(out)
	return out
}
