package datapath

import (
	"fmt"
	"os"
	"runtime"
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
// fixes GOMAXPROCS at its current value, which the runtime would otherwise
// shrink to the CPUs left. When no CPU would be left it fails before it
// changes anything.
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
	// The Go runtime sizes GOMAXPROCS from the process's CPU affinity and
	// re-reads it now and then: fix it at what it is, or it would shrink to
	// the CPUs left here and the pollers, each holding a P while it
	// busy-polls, would starve everything else (or each other).
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	// A thread cloned by one not yet restricted could slip through one
	// listing: list again until a pass finds no new thread.
	done := make(map[int]bool)
	for {
		tids, err := threads()
		if err != nil {
			return nil, fmt.Errorf("keep off cpus: %w", err)
		}
		fresh := 0
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			fresh++
			done[tid] = true
			// A thread may have exited since the listing: ESRCH is fine.
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return nil, fmt.Errorf("keep off cpus: thread %d: %w", tid, err)
			}
		}
		if fresh == 0 {
			return rest, nil
		}
	}
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
