package ctl

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// The journal: a change to a large table rewrote the whole state file (19
// MB for 160k flows, a third of a one-flow change's time). Now a save
// appends what changed to PATH.journal, one JSON line a change (a Delta),
// synced; Save writes the whole state (a snapshot) when the journal would
// outgrow it, when most of the flows changed, and when either file is not
// the one this process wrote. Each snapshot has a random epoch; the
// journal's first line names the epoch it extends, so a journal left from
// an older snapshot is never replayed onto a newer one (a crash between a
// snapshot and the journal's reset leaves exactly that). Load reads the
// snapshot, then replays the journal of its epoch; a last record cut short
// or unreadable (a crash during an append, which was never acknowledged)
// is left out, any other line that does not parse is corruption. As with
// OVSDB's log, the snapshot plus its journal is the state.

// Delta is what one save changed since the one before: the flows added
// or changed (by ID, their whole text) and deleted, the ID counter, and
// the ports and groups when they changed (nil: as they were).
type Delta struct {
	NextFlowID uint64       `json:"next_flow_id,omitempty"`
	Ports      *[]PortState `json:"ports,omitempty"`
	Groups     *[]string    `json:"groups,omitempty"`
	Delete     []uint64     `json:"delete,omitempty"`
	Flows      []FlowState  `json:"flows,omitempty"`
}

// journalHeader is the journal's first line.
type journalHeader struct {
	Journal int    `json:"journal"` // 1
	Epoch   string `json:"epoch"`
}

// journalMin is the size a journal may reach whatever the snapshot's:
// a small state's journal is replayed in a moment anyway. (A variable for
// the tests.)
var journalMin int64 = 1 << 20

// journalWrite writes a record to the journal. (A variable for the tests,
// which make it fail part way, as a full disk does.)
var journalWrite = (*os.File).Write

// errJournalFull says an Append was not made because the journal would
// outgrow the snapshot, or because the files on disk are not the ones this
// Store wrote: Save the whole state instead.
var errJournalFull = errors.New("journal full")

func (s *Store) journalPath() string { return s.path + ".journal" }

// fileID is what tells a file from one put in its place or written by
// another: an inode number is given again as soon as it is free, a
// change time is not.
type fileID struct {
	dev, ino uint64
	size     int64
	ctime    syscall.Timespec
}

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino, st.Size, st.Ctim}, true
}

// statID is idOf the file at path.
func statID(path string) (fileID, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, false
	}
	return idOf(fi)
}

// fdID is idOf the open file f.
func fdID(f *os.File) (fileID, bool) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, false
	}
	return idOf(fi)
}

func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// intact reports whether the snapshot is the one Save wrote last and the
// journal, if open, is still the file at journalPath: an operator who
// removed or replaced either must get a whole snapshot, never records
// that extend a snapshot which is gone.
func (s *Store) intact() bool {
	if s.epoch == "" {
		return false
	}
	if id, ok := statID(s.path); !ok || id != s.snapID {
		return false
	}
	if s.journal == nil {
		return true
	}
	id, ok := statID(s.journalPath())
	return ok && id == s.journalID
}

// Append adds d to the journal, synced. It returns errJournalFull, having
// written nothing, when a Save must come instead (see errJournalFull). On
// any other error the journal is as it was (the record cut off again) or,
// if even that failed, not used again until a Save.
func (s *Store) Append(d *Delta) error {
	if !s.intact() {
		return errJournalFull
	}
	if d.Ports == nil && d.Groups == nil && len(d.Delete) == 0 && len(d.Flows) == 0 && d.NextFlowID == s.nextFlowID {
		return nil // what the files say already
	}
	rec, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode state change: %w", err)
	}
	rec = append(rec, '\n')
	if s.journalSize+int64(len(rec)) > max(s.snapID.size, journalMin) {
		return errJournalFull
	}
	if s.journal == nil {
		if err := s.startJournal(); err != nil {
			return err
		}
	}
	if _, err := journalWrite(s.journal, rec); err != nil {
		return s.cutBack(fmt.Errorf("save state: %w", err))
	}
	if err := syscall.Fdatasync(int(s.journal.Fd())); err != nil {
		return s.cutBack(fmt.Errorf("save state: sync %s: %w", s.journalPath(), err))
	}
	id, ok := fdID(s.journal)
	if !ok {
		return s.cutBack(fmt.Errorf("save state: stat %s failed", s.journalPath()))
	}
	s.journalID, s.journalSize = id, id.size
	s.nextFlowID = d.NextFlowID
	return nil
}

// cutBack truncates the journal to what it held before a failed append,
// and returns err; if that fails too, the journal is dropped: the next
// save is a snapshot.
func (s *Store) cutBack(err error) error {
	if terr := s.journal.Truncate(s.journalSize); terr == nil {
		if terr = s.journal.Sync(); terr == nil {
			if id, ok := fdID(s.journal); ok && id.size == s.journalSize {
				s.journalID = id // the truncate's own change time
				return err
			}
		}
	}
	s.dropJournal() // records of this epoch may be lost: a snapshot must come first
	return err
}

// startJournal makes the journal of the current epoch: PATH.journal,
// emptied (what it held extends an older snapshot, which the current one
// holds), with its header, synced, and the directory synced.
func (s *Store) startJournal() error {
	// O_APPEND: after a failed append is cut off, the next one goes where
	// the file ends, not where the failed one left the offset.
	f, err := os.OpenFile(s.journalPath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	hdr, _ := json.Marshal(journalHeader{Journal: 1, Epoch: s.epoch})
	hdr = append(hdr, '\n')
	fail := func(err error) error {
		f.Close()
		return fmt.Errorf("save state: %s: %w", s.journalPath(), err)
	}
	if _, err := f.Write(hdr); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fail(err)
	}
	id, ok := fdID(f)
	if !ok {
		return fail(errors.New("stat failed"))
	}
	s.journal, s.journalID, s.journalSize = f, id, id.size
	return nil
}

// dropJournal closes the journal and forgets the epoch: Append refuses
// until a Save, and the first Append after it starts a new journal.
func (s *Store) dropJournal() {
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
	s.journalSize = 0
	s.epoch = ""
}

// replayJournal applies to st the journal of epoch, if there is one: a
// journal of another epoch (or one whose header a crash cut short) is
// left from an older snapshot and ignored.
func (s *Store) replayJournal(st *State, epoch string) error {
	data, err := os.ReadFile(s.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state journal: %w", err)
	}
	corrupt := func(line int, err error) error {
		return fmt.Errorf("state journal %s is corrupt at line %d: %w", s.journalPath(), line, err)
	}
	line := 0
	var deltas []Delta
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // cut short by a crash: never acknowledged
		}
		rec := data[:i]
		data = data[i+1:]
		line++
		if line == 1 {
			// A header is one small write: a crash leaves all of it or a
			// line without its end, never a whole line that does not parse.
			var h journalHeader
			if err := decodeJSON(rec, &h); err != nil || h.Journal != 1 || h.Epoch == "" {
				return corrupt(line, fmt.Errorf("not a journal header: %q", rec))
			}
			if h.Epoch != epoch {
				return nil // an older snapshot's: what it holds, the snapshot has
			}
			continue
		}
		var d Delta
		if err := decodeJSON(rec, &d); err != nil {
			if len(bytes.TrimSpace(data)) == 0 {
				// The last record, whose sync a crash interrupted: its
				// pages may have reached the disk in any order. It was
				// never acknowledged (an append answers after the sync).
				break
			}
			return corrupt(line, err)
		}
		deltas = append(deltas, d)
	}
	if len(deltas) == 0 {
		return nil
	}
	// By ID: an ID is deleted or given a text, the last record's word
	// holding.
	text := make(map[uint64]string, len(st.Flows))
	for i, f := range st.Flows {
		if _, dup := text[f.ID]; dup {
			return fmt.Errorf("state file %s is corrupt: flows[%d]: id %d given twice", s.path, i, f.ID)
		}
		text[f.ID] = f.Flow
	}
	for _, d := range deltas {
		if d.NextFlowID > 0 {
			st.NextFlowID = d.NextFlowID // as the switch had it (a record undoing a refused change lowers it)
		}
		if d.Ports != nil {
			st.Ports = *d.Ports
		}
		if d.Groups != nil {
			st.Groups = *d.Groups
		}
		for _, id := range d.Delete {
			delete(text, id)
		}
		for _, f := range d.Flows {
			text[f.ID] = f.Flow
		}
	}
	st.Flows = make([]FlowState, 0, len(text))
	for id, t := range text {
		st.Flows = append(st.Flows, FlowState{ID: id, Flow: t})
	}
	slices.SortFunc(st.Flows, func(a, b FlowState) int { return cmp.Compare(a.ID, b.ID) })
	if len(st.Groups) == 0 {
		st.Groups = nil
	}
	return nil
}

// syncDir syncs directory dir, so that a file made or renamed in it stays.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
