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
	"reflect"
	"strconv"
	"syscall"

	"github.com/xvs-project/xvs/datapath"
)

// StateVersion is the version of the state file format this package
// writes: 3, a snapshot with an epoch that a journal of changes extends
// (journal.go). Versions 1 (flows as a list of strings, no IDs) and 2 (no
// journal) are read too. An older xvsd refuses version 3 rather than
// miss the journal.
const StateVersion = 3

// State is the configuration xvsd persists: what the operator asked for, not
// counters. Flows are kept in their text form, which is stable across
// releases and readable by people, with the IDs controllers know them by.
type State struct {
	Version int `json:"version"`
	// NextFlowID is the ID the next flow added gets: IDs of flows deleted
	// before a restart are not given again after it.
	NextFlowID uint64      `json:"next_flow_id,omitempty"`
	Ports      []PortState `json:"ports"`
	Groups     []string    `json:"groups,omitempty"` // add-group syntax; restored before the flows that use them
	Flows      []FlowState `json:"flows"`            // by ID
}

// PortState is a configured port: its name, the XDP mode that was asked for
// (which may be auto, while PortInfo says what auto resolved to), its
// ofport, and the liveness a prober set ("" for auto). A port is saved
// whether its device is there or not.
type PortState struct {
	Name     string            `json:"name"`
	Mode     datapath.XDPMode  `json:"mode"`
	OFPort   uint32            `json:"ofport,omitempty"`
	Liveness datapath.Liveness `json:"liveness,omitempty"`
}

// FlowState is a saved flow: its ID and its text.
type FlowState struct {
	ID   uint64 `json:"id"`
	Flow string `json:"flow"`
}

// appendJSON appends f as json.Marshal writes it, for a text that needs no
// escaping (printable ASCII without the characters encoding/json escapes):
// a save of 160k flows spent most of its encoding in json.Marshal's
// reflection. ok is false, and nothing appended, for any other text.
func (f *FlowState) appendJSON(b []byte) (_ []byte, ok bool) {
	for i := 0; i < len(f.Flow); i++ {
		if jsonEscaped[f.Flow[i]] {
			return b, false
		}
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, f.ID, 10)
	b = append(b, `,"flow":"`...)
	b = append(b, f.Flow...)
	return append(b, `"}`...), true
}

// jsonEscaped marks the bytes that are not printable ASCII or that
// encoding/json escapes: one load a byte of a flow's text, where six
// compares were a tenth of a 160k-flow save.
var jsonEscaped = func() (t [256]bool) {
	for c := range t {
		t[c] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&'
	}
	return t
}()

// writeState writes st as indented JSON, one port or flow per line, one
// flow at a time, with the epoch its journal names.
func writeState(w *bufio.Writer, st *State, epoch string) error {
	// A nil list is written [] like an empty one (writeList), never null.
	fmt.Fprintf(w, "{\n  \"version\": %d,\n  \"epoch\": %q,\n", StateVersion, epoch)
	if st.NextFlowID > 0 {
		fmt.Fprintf(w, "  \"next_flow_id\": %d,\n", st.NextFlowID)
	}
	w.WriteString("  \"ports\": ")
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

// Store keeps the State in one JSON file and a journal of the changes
// since (PATH.journal, see journal.go). Save replaces the file atomically,
// so a crash leaves either the old state or the new one, never a mix;
// Append adds a change to the journal, and a crash leaves it or not. Lock
// keeps other processes (a second xvsd) off the files; within the process
// their one writer is the Server, which serializes changes.
type Store struct {
	path string
	lock *os.File // held while locked

	// The snapshot Save wrote last, and its journal (journal.go). epoch
	// is "" until a Save: Append then refuses.
	epoch       string
	snapID      fileID
	journal     *os.File // nil until the epoch's first Append
	journalID   fileID
	journalSize int64
	nextFlowID  uint64 // what the files say
}

// NewStore returns a Store for the file at path. Nothing is read or created
// until Lock, Load or Save.
func NewStore(path string) *Store { return &Store{path: path} }

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// lockPath is the file whose lock says who owns the state file. (The state
// file itself is replaced at every save, and a lock on it would go with
// the old one.)
func (s *Store) lockPath() string { return s.path + ".lock" }

// Lock takes the state file for this process until Unlock (or its exit),
// or fails at once if another process has it: two servers saving one file
// would each overwrite what the other saved. The lock is flock(2) on
// PATH.lock, which holds the owner's pid for the message.
func (s *Store) Lock() error {
	f, err := os.OpenFile(s.lockPath(), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := "another process"
			if b, rerr := os.ReadFile(s.lockPath()); rerr == nil && len(bytes.TrimSpace(b)) > 0 {
				owner = "process " + string(bytes.TrimSpace(b))
			}
			return fmt.Errorf("state file %s is in use by %s (another xvsd?): stop it, or give this one another --state: %w", s.path, owner, ErrStateLocked)
		}
		return fmt.Errorf("lock state %s: %w", s.lockPath(), err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	s.lock = f
	return nil
}

// ErrStateLocked: another process holds the state file (Store.Lock).
var ErrStateLocked = errors.New("state file locked")

// Unlock releases the lock Lock took.
func (s *Store) Unlock() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing the last descriptor releases the flock
	s.lock = nil
	return err
}

// tempPattern is the name Save's temporary files have.
func (s *Store) tempPattern() string { return "." + filepath.Base(s.path) + ".tmp*" }

// CleanTemp removes the temporary files saves left behind: a crash during
// a save (kill -9, power) leaves one, as large as the state. Call it with
// the lock held, so that no save of another server is under way. It
// returns what it removed.
func (s *Store) CleanTemp() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(s.path), s.tempPattern()))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, m)
	}
	return removed, errors.Join(errs...)
}

// Load reads the state file and replays its journal. A file that does
// not exist is an empty State and no error (a journal without its file is
// ignored); a file that cannot be parsed is an error naming the file and
// the place, and xvsd refuses to start rather than overwrite it.
func (s *Store) Load() (*State, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: StateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	// Flows are strings in version 1 and objects in version 2.
	var raw struct {
		Version    int               `json:"version"`
		Epoch      string            `json:"epoch"`
		NextFlowID uint64            `json:"next_flow_id"`
		Ports      []PortState       `json:"ports"`
		Groups     []string          `json:"groups"`
		Flows      []json.RawMessage `json:"flows"`
	}
	if err := checkKeys(data, reflect.TypeOf(&raw)); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %w", s.path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
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
	if raw.Version < 1 || raw.Version > StateVersion {
		return nil, fmt.Errorf("state file %s: version %d, want 1 to %d (written by a newer xvsd?)", s.path, raw.Version, StateVersion)
	}
	st := &State{Version: StateVersion, NextFlowID: raw.NextFlowID, Ports: raw.Ports, Groups: raw.Groups, Flows: make([]FlowState, len(raw.Flows))}
	for i, r := range raw.Flows {
		var err error
		if raw.Version == 1 {
			st.Flows[i].ID = uint64(i + 1) // as a restore numbered them
			err = json.Unmarshal(r, &st.Flows[i].Flow)
		} else {
			err = decodeJSON(r, &st.Flows[i])
		}
		if err != nil {
			return nil, fmt.Errorf("state file %s is corrupt: flows[%d]: %w", s.path, i, err)
		}
	}
	if raw.Version >= 3 {
		if raw.Epoch == "" {
			return nil, fmt.Errorf("state file %s is corrupt: version %d without an epoch", s.path, raw.Version)
		}
		if err := s.replayJournal(st, raw.Epoch); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Save writes st whole, a snapshot with a new epoch: to a temporary file
// in the same directory, synced, then renamed over the state file, then
// the directory synced. The journal of the snapshot before is done with
// (the next Append empties it). The directory is created (0755) if it does
// not exist; the file is 0600.
func (s *Store) Save(st *State) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, s.tempPattern())
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
	epoch := newEpoch()
	if err := writeState(bw, st, epoch); err != nil {
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
	// The file is in place: the journal that extended the old one is done
	// with, whatever the directory's sync says.
	s.dropJournal()
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save state: sync dir: %w", err)
	}
	// What tells this file from one put in its place (a rename changes
	// the change time: read it after).
	if id, ok := statID(s.path); ok {
		s.epoch, s.snapID, s.nextFlowID = epoch, id, st.NextFlowID
	}
	return nil
}
