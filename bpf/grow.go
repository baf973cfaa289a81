package bpf

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The action records grow with the flow table. An array map cannot be
// resized, so GrowRecords makes larger records and record_hits maps, copies
// the records into them, loads the program again on them (every other map
// shared) and moves every attachment to it with an atomic bpf_link update:
// a device runs the old program or the new one, never none, and both read
// the same record in every slot the old maps have. The caller writes a
// slot past the old size only after GrowRecords returned, so no run of the
// old program can be pointed at one. Once a grace period has passed, no run
// of the old program remains: its hit counters are final, and are kept as
// a base that RecordHits adds and ClearRecordHits clears, so a grow loses
// no hit.

// GrowRecords makes room for n action record slots; with n at most
// Records() it does nothing. An error before the new maps went live leaves
// the objects as they were; one after (reading the old maps' last counts,
// closing them, moving a device back) leaves them grown: Records says.
func (o *Objects) GrowRecords(n int) error {
	o.recMu.Lock()
	defer o.recMu.Unlock()
	if n <= int(o.records) {
		return nil
	}
	if n > steer.RecordSlotsLimit {
		return fmt.Errorf("grow records to %d: at most %d", n, steer.RecordSlotsLimit)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("grow records: objects closed")
	}
	spec := o.spec.Copy()
	spec.Maps[xvsMapRecords].MaxEntries = uint32(n)
	spec.Maps[xvsMapRecordHits].MaxEntries = uint32(n)
	recs, err := ebpf.NewMap(spec.Maps[xvsMapRecords])
	if err != nil {
		return fmt.Errorf("grow records to %d: %w", n, err)
	}
	hits, err := ebpf.NewMap(spec.Maps[xvsMapRecordHits])
	if err != nil {
		_ = recs.Close()
		return fmt.Errorf("grow records to %d: %w", n, err)
	}
	prog, merr, err := o.growLocked(spec, recs, hits)
	if err != nil {
		_ = recs.Close()
		_ = hits.Close()
		return fmt.Errorf("grow records to %d: %w", n, err)
	}
	// No run of the old program is left (but on a device growLocked could
	// not move, whose error is in merr): its counts are final.
	oldHits, oldRecs, oldProg := o.objs.RecordHits, o.objs.Records, o.objs.XvsXdp
	final, herr := sumHits(oldHits, int(o.records))
	base := make([]CounterValue, n)
	copy(base, o.hitBase)
	for i, v := range final {
		base[i].Packets += v.Packets
		base[i].Bytes += v.Bytes
	}
	o.hitBase = base
	o.objs.Records, o.objs.RecordHits, o.objs.XvsXdp = recs, hits, prog
	o.spec, o.records = spec, uint32(n)
	if o.twin != nil {
		_ = o.twin.Close() // on the old maps; no link runs it (growLocked moved them all)
		o.twin = nil
	}
	o.grows++
	if herr != nil {
		herr = fmt.Errorf("grow records to %d: the old maps' last hits are lost: %w", n, herr)
	}
	return errors.Join(merr, herr, oldHits.Close(), oldRecs.Close(), oldProg.Close())
}

// growLocked copies the records into recs, loads the program on recs and
// hits, moves every attachment to it and waits for a grace period. A device
// that is gone (its link severed) runs nothing and is skipped. On err every
// attachment runs the program it ran before. merr is set when that could
// not be: a device refused the new program and another one, already moved,
// refused the old one back. The new maps are then live (a device runs
// them), and the caller commits them; the refusing device keeps the old
// program and maps, whose records no longer change.
func (o *Objects) growLocked(spec *ebpf.CollectionSpec, recs, hits *ebpf.Map) (prog *ebpf.Program, merr, err error) {
	if err := copyRecords(o.objs.Records, recs, int(o.records)); err != nil {
		return nil, nil, err
	}
	repl := o.sharedMaps()
	repl[xvsMapRecords], repl[xvsMapRecordHits] = recs, hits
	repl[xvsMapTrace] = o.objs.Trace
	var t struct {
		Prog *ebpf.Program `ebpf:"xvs_xdp"`
	}
	if err := spec.Copy().LoadAndAssign(&t, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		return nil, nil, fmt.Errorf("load xdp program: %w", err)
	}
	var moved []*Attachment
	for a := range o.links {
		err := a.l.Update(t.Prog)
		if errors.Is(err, syscall.ENOLINK) {
			continue // its device is gone; its Attachment is closed when the port goes
		}
		if err != nil {
			err = fmt.Errorf("xdp on ifindex %d: %w", a.ifindex, err)
			var stuck []error
			for _, m := range moved {
				if berr := m.l.Update(m.prog); berr != nil && !errors.Is(berr, syscall.ENOLINK) {
					m.prog = t.Prog
					stuck = append(stuck, fmt.Errorf("xdp on ifindex %d stays on the grown maps: %w", m.ifindex, berr))
				}
			}
			if len(stuck) > 0 {
				_ = o.waitForProgramsLocked()
				return t.Prog, errors.Join(append([]error{err}, stuck...)...), nil
			}
			_ = t.Prog.Close()
			return nil, nil, err
		}
		moved = append(moved, a)
	}
	for _, a := range moved {
		a.prog = t.Prog
	}
	// Should the wait fail, every device still runs the new program: only
	// the old program's last counts may then be short.
	_ = o.waitForProgramsLocked()
	return t.Prog, nil, nil
}

// copyRecords copies slots 0..n-1 of the array from into to, a batch
// syscall per recordChunk records each way.
func copyRecords(from, to *ebpf.Map, n int) error {
	keys := make([]uint32, min(n, recordChunk))
	vals := make([]steer.Record, len(keys))
	var cursor ebpf.MapBatchCursor
	for done := 0; done < n; {
		want := min(n-done, len(keys))
		c, err := from.BatchLookup(&cursor, keys[:want], vals[:want], nil)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("copy records: %w", err)
		}
		if c == 0 {
			return fmt.Errorf("copy records: %d of %d read", done, n)
		}
		if _, err := to.BatchUpdate(keys[:c], vals[:c], nil); err != nil {
			return fmt.Errorf("copy records: %w", err)
		}
		done += c
	}
	return nil
}

// Grows returns how many times the records grew (GrowRecords).
func (o *Objects) Grows() int {
	o.recMu.RLock()
	defer o.recMu.RUnlock()
	return o.grows
}
