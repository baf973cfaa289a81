package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
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

// journaled returns a harness whose switch has ports p0 and p1 and three
// flows, each saved as a journal record after the first port's snapshot.
func journaled(t *testing.T) *harness {
	h := newHarness(t, Options{})
	h.addPorts("p0", "p1")
	for i := range 3 {
		h.must(201, "POST", api.PathFlows, fmt.Sprintf(`{"flow":"udp,tp_dst=%d,actions=output:p1"}`, i+1))
	}
	return h
}

// A journal's last line cut short or unreadable (a crash during its
// append, never acknowledged) is left out; a line in the middle that does
// not parse, or a whole header that is not one, is corruption, named; a
// journal of another snapshot (a crash between a snapshot and the
// journal's reset) is ignored.
func TestJournalCrashes(t *testing.T) {
	h := journaled(t)
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

	// A last record whose sync a crash cut: whole line, pages missing.
	unsynced := append(bytes.Clone(good), "{\"next_flow_id\":9,\"flows\":[{\"id\":8,\x00\x00\x00\n"...)
	os.WriteFile(jp, unsynced, 0o600)
	if got, err := load(); err != nil || got != want {
		t.Fatalf("an unreadable last line: %v\n%s\nwant\n%s", err, got, want)
	}

	// A whole header that is not one is corruption, not another epoch's.
	os.WriteFile(jp, append([]byte("{\"journal\":1,\"epoch\":\"\x01\"\n"), good[bytes.IndexByte(good, '\n')+1:]...), 0o600)
	if _, err := load(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a bad header: %v", err)
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

// An append that fails part way (a full disk) is cut off again, and the
// next one goes where the file ends: a restart reads both the records
// before and the one after, not a hole.
func TestStoreAppendCutBack(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state.json"))
	if err := s.Save(&State{Version: StateVersion, NextFlowID: 2, Ports: []PortState{}, Flows: []FlowState{{ID: 1, Flow: "udp,actions=drop"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(&Delta{NextFlowID: 3, Flows: []FlowState{{ID: 2, Flow: "tcp,actions=drop"}}}); err != nil {
		t.Fatal(err)
	}
	defer func() { journalWrite = (*os.File).Write }()
	journalWrite = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, syscall.ENOSPC
	}
	if err := s.Append(&Delta{NextFlowID: 4, Flows: []FlowState{{ID: 3, Flow: "icmp,actions=drop"}}}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v", err)
	}
	journalWrite = (*os.File).Write
	if err := s.Append(&Delta{NextFlowID: 5, Delete: []uint64{1}, Flows: []FlowState{{ID: 4, Flow: "arp,actions=drop"}}}); err != nil {
		t.Fatalf("the append after: %v", err)
	}
	st, err := NewStore(s.Path()).Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []FlowState{{ID: 2, Flow: "tcp,actions=drop"}, {ID: 4, Flow: "arp,actions=drop"}}
	if !slices.Equal(st.Flows, want) || st.NextFlowID != 5 {
		t.Fatalf("loaded %+v next %d, want %+v next 5", st.Flows, st.NextFlowID, want)
	}
}

// On a full disk (a 256 KiB tmpfs, as root): a change is refused (507),
// health stays 503 while saves fail, also when the refused change leaves
// nothing to write, and once there is room a retry saves and health is
// 200; one-flow changes whose journal write runs out of room are refused
// the same way, and the files read back as the switch.
func TestJournalDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts a tmpfs)")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount tmpfs as root: %v", err) // not a skip: CI runs it as root
	}
	h := newHarness(t, Options{Store: NewStore(filepath.Join(dir, "state.json"))})
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) }) // after the server closes (cleanups run last first)
	h.srv.saveRetry = 20 * time.Millisecond
	h.addPorts("p0", "p1")
	flows := func(prio int) string {
		var fl []string
		for i := range 100 {
			fl = append(fl, fmt.Sprintf(`{"flow":"priority=%d,udp,tp_dst=%d,actions=output:p1"}`, prio, i+1))
		}
		return "[" + strings.Join(fl, ",") + "]"
	}
	h.must(201, "POST", api.PathFlows, flows(10))
	filler := filepath.Join(dir, "filler")
	fill := func() {
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
		f.Close()
	}
	healthy := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := h.do("GET", api.PathHealth, "")
			if code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health %d, want %d: %s", code, want, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	fill()
	before := switchState(h.backend)
	h.must(507, "POST", api.PathFlows, flows(20)) // most of the flows: a snapshot, which finds no room
	time.Sleep(150 * time.Millisecond)            // retries meanwhile, with nothing changed to write
	healthy(503, 0)
	if switchState(h.backend) != before {
		t.Fatal("a refused change was made")
	}
	os.Remove(filler)
	healthy(200, 5*time.Second)
	checkSaved(t, h, "after room again")

	fill()
	refused := false
	for i := 0; i < 500 && !refused; i++ {
		code, body := h.do("POST", api.PathFlows, fmt.Sprintf(`{"flow":"tcp,tp_dst=%d,actions=output:p1"}`, i+1))
		switch code {
		case 201:
		case 507:
			refused = true
		default:
			t.Fatalf("a one-flow change on a full disk: %d %s", code, body)
		}
	}
	if !refused {
		t.Fatal("500 one-flow changes fit on a full disk")
	}
	checkSaved(t, h, "after a refused append")
	os.Remove(filler)
	healthy(200, 5*time.Second)
	h.must(201, "POST", api.PathFlows, `{"flow":"icmp,actions=output:p1"}`)
	checkSaved(t, h, "after room again")
}

// A change the kernel refuses after it was saved is saved away again
// (datapath.Switch.ApplyCommit commits the old pipeline): a record that
// undoes it, after which the files say the switch as it stayed, and the
// journal goes on.
func TestJournalUndoesRefusedChange(t *testing.T) {
	h := journaled(t)
	old := h.backend.Pipeline()
	f1, _ := flowtable.ParseFlow("tcp,actions=drop")
	f2, _ := flowtable.ParseFlow("udp,tp_dst=1,actions=drop") // replaces flow 1
	nt, err := old.Apply(datapath.Change{Add: []*flowtable.Flow{f1, f2}, Delete: []uint64{2}, AllowMissingPorts: true},
		func(string) (uint32, bool) { return 1, true })
	if err != nil {
		t.Fatal(err)
	}
	lines := journalLines(t, h.store)
	h.srv.mu.Lock()
	err = errors.Join(h.srv.saveLocked(nt), h.srv.saveLocked(old))
	h.srv.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if n := journalLines(t, h.store); n != lines+2 {
		t.Fatalf("journal %d lines, had %d: want the change and its undoing", n, lines)
	}
	checkSaved(t, h, "after the change and its undoing")
	h.must(201, "POST", api.PathFlows, `{"flow":"icmp,actions=output:p1"}`)
	checkSaved(t, h, "after the next change")
}
