package ctl

import (
	"runtime/debug"
	"sync/atomic"
)

// trimFlows is the size of a request (flows added, replaced, deleted or
// dumped) after which the server hands the memory it left behind back to
// the OS.
const trimFlows = 4096

// memTrimmer returns the memory large requests leave behind to the OS,
// in the background. Go's runtime keeps a collected heap mapped and gives
// it back slowly (its scavenger), and lets the heap grow to twice what is
// live before it collects: after a bulk request of 160k flows that is
// hundreds of megabytes of garbage, parsed flows, request and state text,
// resident until the next requests reuse it. The daemon is idle then, so
// one forced collection (debug.FreeOSMemory: a GC, then the free pages
// returned) costs what a GC costs, on no request's time.
type memTrimmer struct {
	want    atomic.Bool // a request asked since the running trim began
	running atomic.Bool
	trims   atomic.Uint64 // done, for tests
}

// after records that a request of n flows finished.
func (m *memTrimmer) after(n int) {
	if n < trimFlows {
		return
	}
	m.want.Store(true)
	if m.running.CompareAndSwap(false, true) {
		go m.run()
	}
}

func (m *memTrimmer) run() {
	for {
		for m.want.Swap(false) {
			debug.FreeOSMemory()
			m.trims.Add(1)
		}
		m.running.Store(false)
		// A request that set want after the last Swap and found running
		// still true started nothing: take it over, unless another run did.
		if !m.want.Load() || !m.running.CompareAndSwap(false, true) {
			return
		}
	}
}
