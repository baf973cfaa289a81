package ctl

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// budget bounds the bytes of request bodies the server holds at once: a
// request takes from it as its body arrives (not what it declares), keeps
// it while it is decoded and applied, and gives it back when it is
// answered. So memory follows what is being applied: clients that declare
// much and send little hold little, and large bodies that arrive take
// turns once the budget is spent.
type budget struct {
	mu   sync.Mutex
	free int64
	wake chan struct{} // closed when bytes come back
}

func newBudget(n int64) *budget { return &budget{free: n, wake: make(chan struct{})} }

// take takes n bytes, waiting until they are free, ctx is done or until
// passes; false if they were not had.
func (b *budget) take(ctx context.Context, n int64, until time.Time) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return true
		}
		wake := b.wake
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(until))
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

// give gives back n bytes.
func (b *budget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// bodyHold is what one request holds of the budget; ServeHTTP gives it
// back when the request is answered.
type bodyHold struct {
	b    *budget
	held int64
}

type holdKey struct{}

// withHold returns r carrying a hold on b, and the function that gives it
// back.
func withHold(r *http.Request, b *budget) (*http.Request, func()) {
	h := &bodyHold{b: b}
	return r.WithContext(context.WithValue(r.Context(), holdKey{}, h)), func() { b.give(h.held) }
}

// holdOf returns the hold ServeHTTP gave r (nil for a request that did
// not come through it).
func holdOf(r *http.Request) *bodyHold {
	h, _ := r.Context().Value(holdKey{}).(*bodyHold)
	return h
}
