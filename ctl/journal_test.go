package ctl

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/xvs-project/xvs/api"
)

// journalLines is the number of lines of path's journal (0 if none).
func journalLines(t *testing.T, s *Store) int {
	t.Helper()
	b, err := os.ReadFile(s.journalPath())
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte{'\n'})
}

// checkSaved fails unless what the files say is what the switch has.
func checkSaved(t *testing.T, h *harness, step string) {
	t.Helper()
	st, err := NewStore(h.store.Path()).Load() // what a restart reads
	if err != nil {
		t.Fatalf("%s: load: %v", step, err)
	}
	if got, want := stateDump(st), switchState(h.backend); got != want {
		t.Fatalf("%s: saved\n%s\nswitch\n%s", step, got, want)
	}
}

// Every kind of change is saved as a journal record, the snapshot left as
// it is, and the snapshot plus the journal reads back as the switch; a
// change of most of the flows writes a snapshot instead.
func TestJournalFollowsEveryChange(t *testing.T) {
	h := newHarness(t, Options{})
	many := func(n, prio int) string {
		var fl []string
		for i := range n {
			fl = append(fl, fmt.Sprintf(`{"flow":"priority=%d,udp,tp_dst=%d,actions=output:p1"}`, prio, i+1))
		}
		return "[" + strings.Join(fl, ",") + "]"
	}
	steps := []struct {
		name, method, path, body string
		code                     int
		snapshot                 bool
	}{
		{"first port", "POST", api.PathPorts, `{"name":"p0"}`, 201, true}, // the first save
		{"port", "POST", api.PathPorts, `{"name":"p1"}`, 201, false},
		{"group", "POST", api.PathGroups, `{"group":"group_id=1,type=select,bucket=output:p0,bucket=output:p1"}`, 201, false},
		{"bulk", "POST", api.PathFlows, many(300, 10), 201, true},
		{"flow", "POST", api.PathFlows, `{"flow":"tcp,actions=group:1"}`, 201, false},
		{"flow with escapes", "POST", api.PathFlows, `{"flow":"cookie=0x1,arp,actions=output:\"p1\""}`, 201, false},
		{"same match replaces", "POST", api.PathFlows, `{"flow":"priority=10,udp,tp_dst=7,actions=drop"}`, 201, false},
		{"delete by match", "POST", api.PathFlowsDelete, `{"match":"udp,tp_dst=8","strict":false}`, 200, false},
		{"delete by id", "DELETE", api.PathFlows + "/5", "", 200, false},
		{"liveness", "PUT", api.PathPorts + "/p0/liveness", `{"liveness":"dead"}`, 200, false},
		{"modify group", "PUT", api.PathGroups + "/1", `{"group":"group_id=1,type=all,bucket=output:p0"}`, 200, false},
		{"delete group takes its flows", "DELETE", api.PathGroups + "/1", "", 200, false},
		{"bundle", "POST", api.PathBundle, `{"groups":[{"group":"group_id=2,type=all,bucket=output:p1"}],"flows":[{"flow":"icmp,actions=group:2"}]}`, 201, false},
		{"replace groups with none", "PUT", api.PathGroups, `[]`, 200, false},
		{"delete port", "DELETE", api.PathPorts + "/p0", "", 204, false},
		{"replace with others", "PUT", api.PathFlows, many(300, 20), 200, true},
		{"delete every flow", "POST", api.PathFlowsDelete, ``, 200, true},
		{"a flow again", "POST", api.PathFlows, `{"flow":"udp,actions=drop"}`, 201, false},
	}
	lines := 0
	for _, st := range steps {
		snap, _ := os.ReadFile(h.store.Path())
		h.must(st.code, st.method, st.path, st.body)
		now, err := os.ReadFile(h.store.Path())
		if err != nil {
			t.Fatal(err)
		}
		if rewrote := !bytes.Equal(snap, now); rewrote != st.snapshot {
			t.Errorf("%s: snapshot written %v, want %v", st.name, rewrote, st.snapshot)
		}
		n := journalLines(t, h.store)
		if !st.snapshot && n <= lines {
			t.Errorf("%s: journal %d lines, had %d: no record", st.name, n, lines)
		}
		lines = n
		if st.snapshot {
			lines = 1 // the next record begins the journal again: a header and itself
		}
		checkSaved(t, h, st.name)
	}
}

// A journal's last line cut short by a crash is left out; a line in the
// middle that does not parse is corruption, named; a journal of another
// snapshot (a crash between a snapshot and the journal's reset) is
// ignored.
func TestJournalCrashes(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	for i := range 3 {
		h.must(201, "POST", api.PathFlows, fmt.Sprintf(`{"flow":"udp,tp_dst=%d,actions=output:p1"}`, i+1))
	}
	jp := h.store.journalPath()
	good, err := os.ReadFile(jp)
	if err != nil || bytes.Count(good, []byte{'\n'}) != 5 { // header, p1, three flows
		t.Fatalf("journal: %v\n%s", err, good)
	}
	want := switchState(h.backend)
	load := func() (string, error) {
		st, err := NewStore(h.store.Path()).Load()
		if err != nil {
			return "", err
		}
		return stateDump(st), nil
	}

	torn := append(bytes.Clone(good), `{"next_flow_id":9,"flows":[{"id":8,"flow":"tcp,act`...)
	os.WriteFile(jp, torn, 0o600)
	if got, err := load(); err != nil || got != want {
		t.Fatalf("a torn last line: %v\n%s\nwant\n%s", err, got, want)
	}

	i := bytes.LastIndexByte(good[:len(good)-1], '\n')
	bad := append(append(bytes.Clone(good[:i+1]), "{\"flows\":[1]}\n"...), good[i+1:]...)
	os.WriteFile(jp, bad, 0o600)
	if _, err := load(); err == nil || !strings.Contains(err.Error(), "journal") || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("a bad line in the middle: %v", err)
	}

	// A snapshot, then the old journal back in place, as a crash before
	// the new one was begun leaves it.
	os.WriteFile(jp, good, 0o600)
	h.store.dropJournal()
	h.store.epoch = ""
	h.must(201, "POST", api.PathFlows, `{"flow":"tcp,actions=drop"}`)
	if n := journalLines(t, h.store); n != 5 {
		t.Fatalf("the snapshot's save wrote the journal: %d lines", n)
	}
	if got, err := load(); err != nil || got != switchState(h.backend) {
		t.Fatalf("an older snapshot's journal: %v\n%s\nwant\n%s", err, got, switchState(h.backend))
	}
}

// A state file or journal that is not the one the server wrote (removed,
// copied over, put back by an operator) gets a whole snapshot, never
// records that extend a snapshot that is gone.
func TestJournalFilesReplaced(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	h.must(201, "POST", api.PathFlows, `{"flow":"udp,actions=output:p1"}`)
	for _, tt := range []struct {
		name string
		do   func()
	}{
		{"state file removed", func() { os.Remove(h.store.Path()) }},
		{"state file copied over", func() {
			b, _ := os.ReadFile(h.store.Path())
			os.Remove(h.store.Path())
			os.WriteFile(h.store.Path(), b, 0o600)
		}},
		{"journal removed", func() { os.Remove(h.store.journalPath()) }},
		{"journal grown by another", func() {
			f, _ := os.OpenFile(h.store.journalPath(), os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("{}\n")
			f.Close()
		}},
	} {
		h.must(201, "POST", api.PathFlows, `{"flow":"tcp,tp_dst=1,actions=output:p1"}`) // a journal record
		before, _ := os.ReadFile(h.store.Path())
		tt.do()
		h.must(201, "POST", api.PathFlows, `{"flow":"tcp,tp_dst=2,actions=output:p1"}`)
		if now, _ := os.ReadFile(h.store.Path()); bytes.Equal(now, before) {
			t.Errorf("%s: no snapshot", tt.name)
		}
		checkSaved(t, h, tt.name)
	}
}

// The journal grows to the snapshot's size (or journalMin) at most: then
// a snapshot starts it again.
func TestJournalBounded(t *testing.T) {
	defer func(m int64) { journalMin = m }(journalMin)
	journalMin = 2000
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	snaps := 0
	for i := range 60 {
		before, _ := os.ReadFile(h.store.Path())
		h.must(201, "POST", api.PathFlows, fmt.Sprintf(`{"flow":"udp,tp_dst=%d,actions=output:p1"}`, i+1))
		now, _ := os.ReadFile(h.store.Path())
		if !bytes.Equal(before, now) {
			snaps++
		}
		fi, err := os.Stat(h.store.journalPath())
		if err == nil && fi.Size() > max(int64(len(now)), journalMin) {
			t.Fatalf("flow %d: journal %d bytes, snapshot %d", i+1, fi.Size(), len(now))
		}
	}
	if snaps < 2 || snaps > 20 {
		t.Fatalf("%d snapshots in 60 one-flow changes", snaps)
	}
	checkSaved(t, h, "after 60 flows")
}

// A journal append that fails is not made (507, the switch as it was);
// when the record cannot even be cut off again, the journal is not used
// until a snapshot, which the next save writes.
func TestJournalAppendFails(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	h.must(201, "POST", api.PathFlows, `{"flow":"udp,actions=output:p1"}`)
	before := switchState(h.backend)
	// Writes and truncates through a read-only descriptor fail.
	ro, err := os.OpenFile(h.store.journalPath(), os.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.store.journal.Close()
	h.store.journal = ro
	h.must(507, "POST", api.PathFlows, `{"flow":"tcp,actions=output:p1"}`)
	if after := switchState(h.backend); after != before {
		t.Fatalf("changed although not saved:\n%s\nwas\n%s", after, before)
	}
	checkSaved(t, h, "after the failed append")
	snap, _ := os.ReadFile(h.store.Path())
	h.must(201, "POST", api.PathFlows, `{"flow":"tcp,actions=output:p1"}`)
	if now, _ := os.ReadFile(h.store.Path()); bytes.Equal(now, snap) {
		t.Fatal("no snapshot after the journal was dropped")
	}
	checkSaved(t, h, "after the snapshot")
	h.must(200, "GET", api.PathHealth, "")
}
