package afxdp

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// PollSet waits on several sockets at once, for a poller that goes idle:
// one poll(2) over every socket it serves. Build it once (Add), then Wait
// as often as needed; Wait does not allocate. When the poller's sockets
// change, Reset and Add them again before the next Wait. A PollSet belongs
// to one goroutine.
type PollSet struct {
	fds []unix.PollFd
}

// Add adds s, waiting for RX descriptors and, with tx, for TX ring room
// (which in copy mode also makes poll send). It returns s's index for
// Readable and Writable.
func (p *PollSet) Add(s *Socket, tx bool) int {
	ev := int16(unix.POLLIN)
	if tx {
		ev |= unix.POLLOUT
	}
	p.fds = append(p.fds, unix.PollFd{Fd: int32(s.Fd()), Events: ev})
	return len(p.fds) - 1
}

// Reset empties the set, keeping its memory.
func (p *PollSet) Reset() { p.fds = p.fds[:0] }

// Len returns the number of sockets in the set.
func (p *PollSet) Len() int { return len(p.fds) }

// Wait blocks until a socket of the set is ready or timeout (negative:
// forever) passes, and returns how many are ready: 0 on timeout.
func (p *PollSet) Wait(timeout time.Duration) (int, error) {
	for i := range p.fds {
		p.fds[i].Revents = 0
	}
	n, err := poll(p.fds, timeout)
	if err != nil {
		return 0, fmt.Errorf("poll %d xsks: %w", len(p.fds), err)
	}
	return n, nil
}

// Readable reports whether socket i had RX descriptors at the last Wait.
func (p *PollSet) Readable(i int) bool { return p.fds[i].Revents&unix.POLLIN != 0 }

// Writable reports whether socket i had TX ring room at the last Wait.
func (p *PollSet) Writable(i int) bool { return p.fds[i].Revents&unix.POLLOUT != 0 }

// AddFd adds another file descriptor to wait on for reading, such as an
// eventfd that tells a sleeping poller a control request is waiting. Its
// index is returned like Add's; Readable reports on it.
func (p *PollSet) AddFd(fd int) int {
	p.fds = append(p.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	return len(p.fds) - 1
}
