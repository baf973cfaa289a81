package bpf

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The fast path's maps: action records by slot ("records"), what each slot
// forwarded ("record_hits", per CPU), both in pages of recordPage slots
// (fastpath.h, grow.go), and the devmap of output ports ("tx_ports"). A forward rule (steer.VerdictForward) names its record by
// slot in Rule.Arg and its flow in Rule.Flow; the program runs the record
// only if the record names the same flow.
//
// The caller keeps two promises, which make a record immutable for every
// program run that can read it: a slot is written only while no rule points
// at it, and a slot a rule stopped pointing at is written again only after
// Synchronize returned (no program run that read the old rule is still
// going). The slot's counters go on counting hits of the old record until
// then, so read them (RecordHits) and clear them (ClearRecordHits) after
// Synchronize and before the slot's next use.

// PutRecord writes the action record of slot. See above for when it may.
func (o *Objects) PutRecord(slot uint32, r *steer.Record) error {
	return o.PutRecords([]uint32{slot}, []steer.Record{*r})
}

// PutRecords writes the action records recs[i] into slots[i], through a
// mapping of each run of up to recordChunk records in one page
// (writeRecords). See above for when a slot may be written. The records
// are checked before anything is written; on error some of them may have
// been written (the error says how many: the first ones).
func (o *Objects) PutRecords(slots []uint32, recs []steer.Record) error {
	r := o.rec
	if err := r.rlock("put records"); err != nil {
		return err
	}
	defer r.mu.RUnlock()
	if len(slots) != len(recs) {
		return fmt.Errorf("put records: %d slots for %d records", len(slots), len(recs))
	}
	for i := range recs {
		if slots[i] >= r.n {
			return fmt.Errorf("put records: record %d: slot %d out of range 0..%d", i, slots[i], r.n-1)
		}
		if n := recs[i].N; n == 0 || n > steer.MaxOps {
			return fmt.Errorf("put records: record %d (slot %d): %d ops, want 1..%d", i, slots[i], n, steer.MaxOps)
		}
	}
	done, err := byPage(slots, func(page int, keys []uint32, i int) (int, error) {
		return writeRecords(r.recs[page], keys, recs[i:i+len(keys)])
	})
	if err != nil {
		return fmt.Errorf("put records: %d of %d written: %w", done, len(slots), err)
	}
	return nil
}

// writeRecords writes recs[i] into entry keys[i] of m, a page of records,
// through a mapping of the part of the page they lie in, made for the
// call: a bulk install writes 160k records of 400 bytes, and a batch
// update syscall took 300-350 ns a record, a copy 70-80 (4096 records
// x40: 47-58 ms against 12-13). The mapping goes when the copy is done:
// kept, the pages of every record would count in the daemon's RSS (the
// same memory as the map's, counted twice). It returns how many records
// it wrote: all or none.
func writeRecords(m *ebpf.Map, keys []uint32, recs []steer.Record) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	const size = steer.RecordLen // the struct's size too (layout_test)
	lo, hi := keys[0], keys[0]
	for _, k := range keys {
		lo, hi = min(lo, k), max(hi, k)
	}
	if hi >= m.MaxEntries() {
		return 0, fmt.Errorf("entry %d of a page of %d", hi, m.MaxEntries())
	}
	ps := os.Getpagesize()
	from := int(lo) * size / ps * ps
	to := (int(hi+1)*size + ps - 1) / ps * ps
	b, err := unix.Mmap(m.FD(), int64(from), to-from, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("map records into memory: %w", err)
	}
	for i, k := range keys {
		copy(b[int(k)*size-from:], unsafe.Slice((*byte)(unsafe.Pointer(&recs[i])), size))
	}
	if err := unix.Munmap(b); err != nil {
		return len(keys), fmt.Errorf("unmap records: %w", err)
	}
	return len(keys), nil
}

// byPage calls f for each run of slots, in order, that lie in one page, at
// most recordChunk of them: with the page, the slots' entries in it and
// the index in slots of the first. f returns how many of them it did; at
// its first error byPage stops and returns how many slots were done.
func byPage(slots []uint32, f func(page int, keys []uint32, i int) (int, error)) (int, error) {
	keys := make([]uint32, min(len(slots), recordChunk))
	done := 0
	for done < len(slots) {
		page := slots[done] >> recordPageShift
		c := 0
		for done+c < len(slots) && c < len(keys) && slots[done+c]>>recordPageShift == page {
			keys[c] = slots[done+c] & (recordPage - 1)
			c++
		}
		n, err := f(int(page), keys[:c], done)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// recordChunk is how many records or counters one batch syscall writes.
const recordChunk = 4096

// RecordHits returns what slots 0..n-1 forwarded since they were last
// cleared, summed over CPUs, read from the pages of counters mapped into
// memory (no syscall: a harvest reads every slot once a second).
func (o *Objects) RecordHits(n int) ([]CounterValue, error) {
	r := o.rec
	if err := r.rlock("record hits"); err != nil {
		return nil, err
	}
	defer r.mu.RUnlock()
	if n < 0 || n > int(r.n) {
		return nil, fmt.Errorf("record hits: %d slots, at most %d", n, r.n)
	}
	out := make([]CounterValue, n)
	for page := 0; page*recordPage < n; page++ {
		sumHits(r.rows[page], out[page*recordPage:min(n, (page+1)*recordPage)])
	}
	return out, nil
}

// sumHits adds the counters of row, a page of hit counters (fastpath.h),
// summed over CPUs, to out, the first len(out) slots of the page. The
// program counts on while they are read: each counter is read whole
// (atomically), a slot's packets and bytes maybe a frame apart, as a
// batch read of the map would give them.
func sumHits(row []CounterValue, out []CounterValue) {
	for cpu := 0; cpu*recordPage < len(row); cpu++ {
		r := row[cpu*recordPage : cpu*recordPage+len(out)]
		for i := range r {
			out[i].Packets += atomic.LoadUint64(&r[i].Packets)
			out[i].Bytes += atomic.LoadUint64(&r[i].Bytes)
		}
	}
}

// ClearRecordHits zeroes the counters of slots on every CPU, in the pages
// mapped into memory. It returns how many of the slots, from the first, it
// cleared: all of them, unless one is out of range. A slot is cleared when
// no program run can count on it (it is released after a grace period).
func (o *Objects) ClearRecordHits(slots []uint32) (int, error) {
	r := o.rec
	if err := r.rlock("clear record hits"); err != nil {
		return 0, err
	}
	defer r.mu.RUnlock()
	for i, slot := range slots {
		if slot >= r.n {
			return i, fmt.Errorf("clear record hits: slot %d out of range 0..%d", slot, r.n-1)
		}
		row := r.rows[slot>>recordPageShift]
		for cpu := 0; cpu*recordPage < len(row); cpu++ {
			c := &row[cpu*recordPage+int(slot&(recordPage-1))]
			atomic.StoreUint64(&c.Packets, 0)
			atomic.StoreUint64(&c.Bytes, 0)
		}
	}
	return len(slots), nil
}

// SetTxPort makes ifindex the device of ofport in the devmap the fast path
// sends through: records whose output is ofport may run from then on. The
// device must take redirected frames (see the package documentation).
func (o *Objects) SetTxPort(ofport uint32, ifindex int) error {
	if ofport == 0 || ofport >= steer.MaxPorts {
		return fmt.Errorf("set tx port: ofport %d out of range 1..%d", ofport, steer.MaxPorts-1)
	}
	if ifindex <= 0 {
		return fmt.Errorf("set tx port %d: bad ifindex %d", ofport, ifindex)
	}
	if err := o.objs.TxPorts.Put(ofport, uint32(ifindex)); err != nil {
		return fmt.Errorf("set tx port %d: %w", ofport, err)
	}
	return nil
}

// DeleteTxPort takes ofport out of the devmap: records whose output is
// ofport hand their frames to userspace from then on. Deleting an empty slot
// is not an error.
func (o *Objects) DeleteTxPort(ofport uint32) error {
	if ofport == 0 || ofport >= steer.MaxPorts {
		return fmt.Errorf("delete tx port: ofport %d out of range 1..%d", ofport, steer.MaxPorts-1)
	}
	if err := o.objs.TxPorts.Delete(ofport); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete tx port %d: %w", ofport, err)
	}
	return nil
}

// Synchronize returns once every program run that started before the call
// has finished (an RCU grace period): what those runs read from the maps
// (a rule value, the record it named) no run reads any more.
func (o *Objects) Synchronize() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("synchronize: objects closed")
	}
	return o.waitForProgramsLocked()
}
