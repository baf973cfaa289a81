package ctl

import (
	"encoding/json"
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
		Version: StateVersion,
		Ports:   []PortState{{"p0", datapath.ModeAuto}, {"p1", datapath.ModeNative}},
		Flows:   []string{"priority=100,udp,tp_dst=7999 actions=output:p1"},
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
	old := &State{Version: StateVersion, Ports: []PortState{{"p0", "auto"}}, Flows: []string{}}
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
		st := &State{Version: StateVersion, Ports: []PortState{}, Flows: make([]string, 2000)}
		for i := range st.Flows {
			st.Flows[i] = fmt.Sprintf("priority=%d,udp,tp_dst=%d actions=output:p%d", n, i, n)
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
		{Version: StateVersion, Ports: []PortState{}, Flows: []string{}},
		{Version: StateVersion, Ports: []PortState{{Name: "p0", Mode: datapath.ModeAuto}}, Flows: []string{}},
		{Version: StateVersion, Ports: []PortState{{Name: "p0"}, {Name: "p1"}},
			Flows: []string{"priority=1,actions=drop", `cookie=0x1,udp,actions=output:"p\"1\\"`, "ü\n\t<>&"}},
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
		if err := json.Unmarshal(raw, &generic); err != nil || len(generic) != 3 {
			t.Fatalf("file is not one JSON object of three fields: %v\n%s", err, raw)
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
