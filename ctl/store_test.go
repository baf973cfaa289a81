package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/xvs-project/xvs/datapath"
)

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "state.json")
	s := NewStore(path)
	st, err := s.Load()
	if err != nil {
		t.Fatalf("load of a missing file: %v", err)
	}
	if len(st.Ports) != 0 || len(st.Flows) != 0 {
		t.Fatalf("missing file gave %+v", st)
	}
	want := &State{
		Version:    StateVersion,
		NextFlowID: 9,
		Ports:      []PortState{{Name: "p0", Mode: datapath.ModeAuto, OFPort: 1}, {Name: "p1", Mode: datapath.ModeNative, OFPort: 3, Liveness: datapath.LivenessDead}},
		Groups:     []string{"group_id=1,type=all,bucket=actions=output:p1"},
		Flows:      []FlowState{{ID: 4, Flow: "priority=100,udp,tp_dst=7999 actions=output:p1"}, {ID: 8, Flow: "actions=drop"}},
	}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %+v, want %+v", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o755 {
		t.Errorf("state dir: %v, %v; want mode 0755", di.Mode().Perm(), err)
	}
	assertNoTemp(t, filepath.Dir(path))
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestStoreLoadErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"truncated", "{\n  \"version\": 1,\n  \"ports\": [\n", "corrupt"},
		{"garbage", "{\n  \"version\": 1,\n  x\n}", "corrupt at line 3, column 3"},
		{"unknown field", `{"version":1,"ports":[],"flows":[],"extra":1}`, `unknown field "extra"`},
		{"wrong type", `{"version":1,"ports":{},"flows":[]}`, "corrupt"},
		{"two values", `{"version":1} {"version":1}`, "data after"},
		{"wrong version", `{"version":7,"ports":[],"flows":[]}`, "version 7"},
		{"key twice", `{"version":2,"ports":[{"name":"p0","name":"p1","mode":"auto"}],"flows":[]}`, "name given twice"},
		{"key in another case", `{"version":2,"ports":[{"NAME":"p0","mode":"auto"}],"flows":[]}`, "case-sensitive"},
		{"flow not an object", `{"version":2,"ports":[],"flows":["actions=drop"]}`, "flows[0]"},
		{"flow without its text", `{"version":2,"ports":[],"flows":[{"id":1,"text":"actions=drop"}]}`, `unknown field "text"`},
		{"no version", `{"ports":[],"flows":[]}`, "version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewStore(path).Load()
			if err == nil {
				t.Fatal("load succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file and say %q", err, tt.want)
			}
		})
	}
}

// A failed save leaves the old state whole and no temporary file.
func TestStoreSaveFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := NewStore(path)
	old := &State{Version: StateVersion, Ports: []PortState{{Name: "p0", Mode: "auto"}}, Flows: []FlowState{}}
	if err := s.Save(old); err != nil {
		t.Fatal(err)
	}
	// Make the rename fail: a non-empty directory sits where the file goes.
	if err := os.Rename(path, path+".keep"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "busy"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(&State{Version: StateVersion}); err == nil {
		t.Fatal("save over a non-empty directory succeeded")
	}
	assertNoTemp(t, dir)
	os.RemoveAll(path)
	if err := os.Rename(path+".keep", path); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("old state after failed save: %+v, %v", got, err)
	}
}

// Readers racing with writers always see one complete state or another.
func TestStoreAtomicReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := NewStore(path)
	big := func(n int) *State {
		st := &State{Version: StateVersion, Ports: []PortState{}, Flows: make([]FlowState, 2000)}
		for i := range st.Flows {
			st.Flows[i] = FlowState{ID: uint64(i + 1), Flow: fmt.Sprintf("priority=%d,udp,tp_dst=%d actions=output:p%d", n, i, n)}
		}
		return st
	}
	if err := s.Save(big(0)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if err != nil {
				errs <- err
				return
			}
			var st State
			if err := json.Unmarshal(data, &st); err != nil || len(st.Flows) != 2000 {
				errs <- fmt.Errorf("reader saw a partial state (%d bytes): %v", len(data), err)
				return
			}
		}
	}()
	for i := 1; i <= 30; i++ {
		if err := s.Save(big(i)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	assertNoTemp(t, filepath.Dir(path))
}

// Save writes the state one flow at a time; what it writes reads back as the
// same state, empty lists included, whatever the flow texts hold.
func TestSaveRoundTrip(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state.json"))
	for _, st := range []*State{
		{Version: StateVersion, Ports: []PortState{}, Flows: []FlowState{}},
		{Version: StateVersion, Ports: []PortState{{Name: "p0", Mode: datapath.ModeAuto}}, Flows: []FlowState{}},
		{Version: StateVersion, Ports: []PortState{{Name: "p0"}, {Name: "p1"}},
			Flows: []FlowState{{ID: 1, Flow: "priority=1,actions=drop"}, {ID: 2, Flow: `cookie=0x1,udp,actions=output:"p\"1\\"`}, {ID: 3, Flow: "ü\n\t<>&"}}},
	} {
		if err := s.Save(st); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("saved %+v, loaded %+v", st, got)
		}
		raw, _ := os.ReadFile(s.Path())
		var generic map[string]any
		if err := json.Unmarshal(raw, &generic); err != nil || len(generic) != 4 || len(generic["epoch"].(string)) != 16 {
			t.Fatalf("file is not one JSON object of four fields, a 16-digit epoch among them: %v\n%s", err, raw)
		}
	}
}

// A State with nil lists is saved with empty lists, not null.
func TestSaveNilLists(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state.json"))
	if err := s.Save(&State{Version: StateVersion}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"ports": []`) || !strings.Contains(string(raw), `"flows": []`) || strings.Contains(string(raw), "null") {
		t.Fatalf("saved:\n%s", raw)
	}
}

// A state file written by an older xvsd (version 1: flows as strings) loads
// with the IDs a restore gave them then.
func TestStoreLoadVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	v1 := `{"version":1,"ports":[{"name":"p0","mode":"auto"}],"groups":["group_id=1,type=all,bucket=actions=output:p0"],"flows":["priority=5,actions=drop","udp,actions=output:p0"]}`
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := NewStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	want := &State{Version: StateVersion, Ports: []PortState{{Name: "p0", Mode: datapath.ModeAuto}},
		Groups: []string{"group_id=1,type=all,bucket=actions=output:p0"},
		Flows:  []FlowState{{ID: 1, Flow: "priority=5,actions=drop"}, {ID: 2, Flow: "udp,actions=output:p0"}}}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("loaded %+v, want %+v", st, want)
	}
}

// Two stores (two xvsd) cannot hold one state file; the second is told
// who has it. Once the first lets go, the second may.
func TestStoreLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	a, b := NewStore(path), NewStore(path)
	if err := a.Lock(); err != nil {
		t.Fatal(err)
	}
	err := b.Lock()
	if !errors.Is(err, ErrStateLocked) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second lock: %v; want ErrStateLocked naming the file and the owner", err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(); err != nil {
		t.Fatalf("lock after the first let go: %v", err)
	}
	b.Unlock()
}

// The temporary files of saves a crash interrupted are removed, and
// nothing else.
func TestStoreCleanTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := NewStore(path)
	if err := s.Save(&State{Version: StateVersion}); err != nil {
		t.Fatal(err)
	}
	left := []string{".state.json.tmp123456", ".state.json.tmp9"}
	for _, n := range left {
		if err := os.WriteFile(filepath.Join(dir, n), make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, ".other.json.tmp1")
	os.WriteFile(other, nil, 0o600)
	removed, err := s.CleanTemp()
	if err != nil || len(removed) != 2 {
		t.Fatalf("removed %q, %v; want the two temporary files", removed, err)
	}
	for _, n := range left {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", n)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file's temp removed: %v", err)
	}
	if _, err := s.Load(); err != nil {
		t.Errorf("the state itself: %v", err)
	}
}

// A saved flow is written without encoding/json when its text needs no
// escaping, byte for byte as json.Marshal writes it; any other text goes
// through json.Marshal. Either way the file loads back to the same state.
func TestFlowStateAppendJSON(t *testing.T) {
	tests := []struct {
		name, text string
		fast       bool
	}{
		{"plain", "priority=100,udp,in_port=p0,nw_dst=10.0.0.1,tp_dst=7999,actions=mod_tp_dst:7998,output:p1", true},
		{"empty", "", true},
		{"arrow", "tcp,actions=set_field:5->tcp_src,output:p1", false},
		{"ampersand", "actions=note:a&b", false},
		{"lt", "actions=note:<", false},
		{"quote", `actions=output:"p 1"`, false},
		{"backslash", `actions=output:p\1`, false},
		{"tab", "udp,\tactions=drop", false},
		{"del", "udp,actions=drop\x7f", false},
		{"non-ascii", "actions=output:pé", false},
	}
	st := &State{Version: StateVersion, NextFlowID: 99, Ports: []PortState{}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := FlowState{ID: uint64(1000 + i), Flow: tt.text}
			got, ok := fs.appendJSON([]byte("x"))
			if ok != tt.fast {
				t.Fatalf("written without encoding/json: %v, want %v", ok, tt.fast)
			}
			if !ok {
				if string(got) != "x" {
					t.Fatalf("appended %q although it could not", got)
				}
				return
			}
			want, err := json.Marshal(&fs)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "x"+string(want) {
				t.Fatalf("got  %s\nwant x%s", got, want)
			}
		})
		st.Flows = append(st.Flows, FlowState{ID: uint64(1000 + i), Flow: tt.text})
	}
	s := NewStore(filepath.Join(t.TempDir(), "state.json"))
	if err := s.Save(st); err != nil {
		t.Fatal(err)
	}
	back, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Fatalf("loaded %+v\nsaved  %+v", back, st)
	}
}

// appendJSON's table says plain exactly for the bytes encoding/json writes
// as they are, printable ASCII.
func TestJSONEscapedTable(t *testing.T) {
	for c := range 256 {
		s := "a" + string([]byte{byte(c)})
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		plain := string(b) == `"`+s+`"` && c >= 0x20 && c < 0x7f
		if jsonEscaped[c] == plain {
			t.Errorf("byte %#x: escaped %v, encoding/json writes %s", c, jsonEscaped[c], b)
		}
	}
}
