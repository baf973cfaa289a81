package bpf

import (
	"errors"
	"fmt"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The action records grow with the flow table. An array map cannot be
// resized, so the records and their hit counters are paged (fastpath.h):
// the program finds slot s in page s/recordPage of the arrays of maps
// records and record_hits. GrowRecords creates the pages the new size
// needs past the ones there are and puts them into the empty entries of
// the two outer maps, records first. The program is not loaded again, no
// attachment changes, and no record or counter moves: a grow only adds.
//
// Nothing a run can see changes meaning. Between the two outer updates a
// run may find a new slot's records page but not its hits page, and until
// an update it finds neither; but no rule names a slot past the old size
// before GrowRecords returned (PutRules refuses one), and every update of
// an array of maps returns only after a grace period (the kernel waits for
// one, as waitForProgramsLocked relies on; GrowRecords waits once more for
// kernels before 6.8, whose batch updates did not): once it returned, no
// run that could miss a new page is left, so a slot written from then on
// is found by every run that reads a rule naming it, and its hits counted.
// The slots of the old size keep their pages: their records and their
// counts (RecordHits, ClearRecordHits) are where they were. A grow within
// the last page only raises Records.
//
// A DryRunner and the program's twin share the outer maps: they see the
// grow as the live program does.

// GrowRecords makes room for n action record slots; with n at most
// Records() it does nothing. An error leaves the slots as they were.
func (o *Objects) GrowRecords(n int) error {
	if o.dry {
		return errors.New("grow records: a dry runner; grow its live objects")
	}
	r := o.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("grow records: %w", errRecordsClosed)
	}
	if n <= int(r.n) {
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
	grew := len(r.recs)
	if err := o.addPages(r, n); err != nil {
		return fmt.Errorf("grow records to %d: %w", n, err)
	}
	if len(r.recs) > grew {
		r.unwaited = true
	}
	if r.unwaited {
		// The kernel has waited (6.8 and later wait once for a batch);
		// an older one may not have.
		if err := o.waitForProgramsLocked(); err != nil {
			return fmt.Errorf("grow records to %d: %w", n, err)
		}
		r.unwaited = false
	}
	r.n = uint32(n)
	r.grows++
	return nil
}

// Grows returns how many times the records grew (GrowRecords).
func (o *Objects) Grows() int {
	o.rec.mu.RLock()
	defer o.rec.mu.RUnlock()
	return o.rec.grows
}
