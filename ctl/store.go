package ctl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/xvs-project/xvs/datapath"
)

// StateVersion is the version of the state file format this package writes.
const StateVersion = 1

// State is the configuration xvsd persists: what the operator asked for, not
// counters. Flows are kept in their text form, which is stable across
// releases and readable by people.
type State struct {
	Version int         `json:"version"`
	Ports   []PortState `json:"ports"`
	Groups  []string    `json:"groups,omitempty"` // add-group syntax; restored before the flows that use them
	Flows   []string    `json:"flows"`
}

// PortState is a persisted port: its name and the XDP mode that was asked for
// (which may be auto, while PortInfo says what auto resolved to).
type PortState struct {
	Name string           `json:"name"`
	Mode datapath.XDPMode `json:"mode"`
}

// writeState writes st as indented JSON, one port or flow per line, one
// flow at a time.
func writeState(w *bufio.Writer, st *State) error {
	// A nil list is written [] like an empty one (writeList), never null.
	fmt.Fprintf(w, "{\n  \"version\": %d,\n  \"ports\": ", st.Version)
	if err := writeList(w, st.Ports, "    ", "  "); err != nil {
		return err
	}
	if len(st.Groups) > 0 {
		w.WriteString(",\n  \"groups\": ")
		if err := writeList(w, st.Groups, "    ", "  "); err != nil {
			return err
		}
	}
	w.WriteString(",\n  \"flows\": ")
	if err := writeList(w, st.Flows, "    ", "  "); err != nil {
		return err
	}
	_, err := w.WriteString("\n}\n")
	return err
}

// Store keeps the State in one JSON file. Save replaces the file atomically,
// so a crash leaves either the old state or the new one, never a mix. A Store
// does not lock: its one writer is the Server, which serializes changes.
type Store struct {
	path string
}

// NewStore returns a Store for the file at path. Nothing is read or created
// until Load or Save.
func NewStore(path string) *Store { return &Store{path: path} }

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the state file. A file that does not exist is an empty State
// and no error; a file that cannot be parsed is an error naming the file and
// the place, and xvsd refuses to start rather than overwrite it.
func (s *Store) Load() (*State, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: StateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset-1) // Offset is just past the bad byte
			return nil, fmt.Errorf("state file %s is corrupt at line %d, column %d: %w", s.path, line, col, err)
		}
		return nil, fmt.Errorf("state file %s is corrupt: %w", s.path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("state file %s is corrupt: data after the JSON object", s.path)
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("state file %s: version %d, want %d", s.path, st.Version, StateVersion)
	}
	return &st, nil
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Save writes st: to a temporary file in the same directory, synced, then
// renamed over the state file, then the directory synced. The directory is
// created (0755) if it does not exist; the file is 0600.
func (s *Store) Save(st *State) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Encoded straight into the file through a buffer: the state of a
	// large table is tens of megabytes, not worth building in memory first.
	bw := bufio.NewWriterSize(tmp, 256<<10)
	if err := writeState(bw, st); err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save state: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save state: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save state: sync dir: %w", err)
	}
	return nil
}
