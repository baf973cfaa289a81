package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xvs-project/xvs/flowtable/steer"
)

// The fast path's maps: action records by slot ("records"), what each slot
// forwarded ("record_hits", per CPU) and the devmap of output ports
// ("tx_ports"). A forward rule (steer.VerdictForward) names its record by
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
	if slot >= o.records {
		return fmt.Errorf("put record: slot %d out of range 0..%d", slot, o.records-1)
	}
	if r.N == 0 || r.N > steer.MaxOps {
		return fmt.Errorf("put record %d: %d ops, want 1..%d", slot, r.N, steer.MaxOps)
	}
	if err := o.objs.Records.Put(slot, r); err != nil {
		return fmt.Errorf("put record %d: %w", slot, err)
	}
	return nil
}

// RecordHits returns what slots 0..n-1 forwarded since they were last
// cleared, summed over CPUs, in one batch read.
func (o *Objects) RecordHits(n int) ([]CounterValue, error) {
	if n < 0 || n > int(o.records) {
		return nil, fmt.Errorf("record hits: %d slots, at most %d", n, o.records)
	}
	out := make([]CounterValue, n)
	if n == 0 {
		return out, nil
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("record hits: %w", err)
	}
	keys := make([]uint32, n)
	vals := make([]CounterValue, n*ncpu)
	var cursor ebpf.MapBatchCursor
	got := 0
	for got < n {
		m, err := o.objs.RecordHits.BatchLookup(&cursor, keys[got:], vals[got*ncpu:], nil)
		for i := got; i < got+m; i++ {
			slot := keys[i]
			if slot >= uint32(n) {
				continue
			}
			for _, v := range vals[i*ncpu : (i+1)*ncpu] {
				out[slot].Packets += v.Packets
				out[slot].Bytes += v.Bytes
			}
		}
		got += m
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("record hits: %w", err)
		}
	}
	return out, nil
}

// ClearRecordHits zeroes the counters of slot on every CPU.
func (o *Objects) ClearRecordHits(slot uint32) error {
	if slot >= o.records {
		return fmt.Errorf("clear record hits: slot %d out of range 0..%d", slot, o.records-1)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("clear record hits: %w", err)
	}
	if err := o.objs.RecordHits.Put(slot, make([]CounterValue, ncpu)); err != nil {
		return fmt.Errorf("clear record hits %d: %w", slot, err)
	}
	return nil
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
