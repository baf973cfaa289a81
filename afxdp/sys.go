package afxdp

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw socket option and I/O calls for AF_XDP. x/sys/unix has the structs
// (XDPUmemReg, XDPMmapOffsets, XDPStatistics) but no typed helpers for them.

func setsockopt(fd, name int, p unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(name), uintptr(p), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func getsockopt(fd, name int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0): the TX wakeup.
func sendtoWakeup(fd int) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return errno
}

// recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL): the fill ring wakeup.
func recvfromWakeup(fd int) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return errno
}

// poll waits on fds for at most timeout (negative: forever). It restarts
// after EINTR (the Go runtime preempts threads with signals) with the time
// left, so it never returns early without an event.
func poll(fds []unix.PollFd, timeout time.Duration) (int, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		var ts unix.Timespec
		tsp := &ts
		switch {
		case timeout < 0:
			tsp = nil
		case timeout > 0:
			ts = unix.NsecToTimespec(int64(timeout))
		}
		n, err := unix.Ppoll(fds, tsp, nil)
		if err != unix.EINTR {
			return n, err
		}
		if timeout > 0 {
			timeout = time.Until(deadline)
			if timeout <= 0 {
				return 0, nil
			}
		}
	}
}
