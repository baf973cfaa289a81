package datapath

import (
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// KeepOffCPUs confines every thread of the process to the CPUs it may run
// on minus cpus, and returns the CPUs left. Call it before New, with the
// CPUs the pollers will be pinned to (Config.CPUs): the pollers pin
// themselves there, and everything else the process runs (the Go runtime's
// other threads: garbage collection, timers, the API server) stays away
// from them instead of preempting a poller in the middle of a burst.
//
// Threads the Go runtime starts later inherit the restriction: new threads
// are cloned from a thread that has it (the runtime starts them from its
// template thread when the current one is locked, as pollers are). It
// fails, changing nothing, when no CPU would be left.
func KeepOffCPUs(cpus []int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("keep off cpus: %w", err)
	}
	for _, c := range cpus {
		set.Clear(c)
	}
	var rest []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			rest = append(rest, c)
		}
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("keep off cpus %v: no other cpu to run on", cpus)
	}
	tids, err := threads()
	if err != nil {
		return nil, fmt.Errorf("keep off cpus: %w", err)
	}
	for _, tid := range tids {
		// A thread may have exited since the listing: ESRCH is fine.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return nil, fmt.Errorf("keep off cpus: thread %d: %w", tid, err)
		}
	}
	return rest, nil
}

// threads lists the thread IDs of the process.
func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}
