package ctl

import (
	"testing"
	"time"
)

// A large request leads to one trim; requests while it runs to at most one
// more; small requests to none.
func TestMemTrimmer(t *testing.T) {
	var m memTrimmer
	m.after(trimFlows - 1)
	if m.running.Load() || m.want.Load() {
		t.Fatal("a small request started a trim")
	}
	for range 5 {
		m.after(trimFlows)
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.running.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m.running.Load() {
		t.Fatal("trim still running after 10s")
	}
	if n := m.trims.Load(); n < 1 || n > 5 {
		t.Fatalf("%d trims for 5 requests", n)
	}
	if m.want.Load() {
		t.Fatal("a request's trim was left undone")
	}
}
