package ctl

import (
	"runtime"
	"sync"
)

// parallelOver is the number of items above which the work of a bulk
// request (parsing its flows, printing the texts to save) is split over
// the CPUs: below it, starting goroutines costs more than it saves.
const parallelOver = 2048

// inParallel calls fn on contiguous ranges [lo, hi) that cover 0..n-1,
// on up to GOMAXPROCS goroutines at once when n is above parallelOver, and
// returns the error of the lowest range that had one: with fn stopping at
// its first error, the error a loop over 0..n-1 would have stopped at.
func inParallel(n int, fn func(lo, hi int) error) error {
	workers := min(runtime.GOMAXPROCS(0), (n+parallelOver-1)/parallelOver)
	if workers <= 1 {
		return fn(0, n)
	}
	chunk := (n + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		wg.Go(func() { errs[w] = fn(lo, hi) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
