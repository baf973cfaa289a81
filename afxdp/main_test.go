package afxdp

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The Go runtime opens its poller's fds (epoll, eventfd) on first use and
	// keeps them: open them before any test counts fds.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	os.Exit(m.Run())
}
