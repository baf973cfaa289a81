package testenv

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDPConn is a blocking IPv4 UDP socket for latency measurements
// (xvs-traffic ping and echo). A read blocks its OS thread in recvmsg(2),
// so a datagram reaches the reader without the Go netpoller in between,
// and every datagram comes with the kernel's receive time (SO_TIMESTAMPNS,
// CLOCK_REALTIME): a round trip measured against it does not include the
// reader's own wake-up. Reads and writes do not allocate.
//
// One goroutine may read while another writes; neither call is for
// concurrent use with itself. Lock the reading goroutine to its thread
// (runtime.LockOSThread) for the least delay.
type UDPConn struct {
	fd int

	// recvmsg's arguments, reused: only the reader touches them.
	from  unix.RawSockaddrInet4
	iov   unix.Iovec
	msg   unix.Msghdr
	oob   [64]byte
	wto   unix.RawSockaddrInet4 // the writer's
	local netip.AddrPort
}

// ListenUDP opens a blocking UDP socket bound to laddr (port 0: any).
func ListenUDP(laddr netip.AddrPort) (*UDPConn, error) {
	if !laddr.Addr().Is4() {
		return nil, fmt.Errorf("udp listen %v: IPv4 only", laddr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	c := &UDPConn{fd: fd}
	fail := func(what string, err error) (*UDPConn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("udp %s %v: %w", what, laddr, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("timestamps", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(laddr.Port()), Addr: laddr.Addr().As4()}); err != nil {
		return fail("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	s4 := sa.(*unix.SockaddrInet4)
	c.local = netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), uint16(s4.Port))
	return c, nil
}

// LocalAddr returns the address the socket is bound to.
func (c *UDPConn) LocalAddr() netip.AddrPort { return c.local }

// SetReadTimeout makes ReadFrom give up after d (0: never) with an error
// wrapping unix.EAGAIN.
func (c *UDPConn) SetReadTimeout(d time.Duration) error {
	tv := unix.NsecToTimeval(int64(d))
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("udp read timeout: %w", err)
	}
	return nil
}

func rawInet4(sa *unix.RawSockaddrInet4, to netip.AddrPort) {
	sa.Family = unix.AF_INET
	p := to.Port()
	sa.Port = p<<8 | p>>8 // network byte order
	sa.Addr = to.Addr().As4()
}

// WriteTo sends b to the IPv4 address to.
func (c *UDPConn) WriteTo(b []byte, to netip.AddrPort) error {
	if len(b) == 0 {
		return errors.New("udp write: empty datagram")
	}
	rawInet4(&c.wto, to)
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
		uintptr(unsafe.Pointer(&c.wto)), unsafe.Sizeof(c.wto))
	if errno != 0 {
		return fmt.Errorf("udp write to %v: %w", to, errno)
	}
	return nil
}

// ReadFrom blocks until a datagram arrives and copies it into b. It
// returns its length, its sender, and when the kernel received it (zero if
// the kernel gave no timestamp). Errors: the read timeout (unix.EAGAIN),
// a closed socket (unix.EBADF), and any other wrapped unix.Errno.
func (c *UDPConn) ReadFrom(b []byte) (int, netip.AddrPort, time.Time, error) {
	if len(b) == 0 {
		return 0, netip.AddrPort{}, time.Time{}, errors.New("udp read: empty buffer")
	}
	c.iov.Base = &b[0]
	c.iov.SetLen(len(b))
	c.msg = unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&c.from)),
		Namelen: uint32(unsafe.Sizeof(c.from)),
		Iov:     &c.iov,
		Iovlen:  1,
		Control: &c.oob[0],
	}
	c.msg.SetControllen(len(c.oob))
	for {
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.msg)), 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, netip.AddrPort{}, time.Time{}, fmt.Errorf("udp read: %w", errno)
		}
		p := c.from.Port
		from := netip.AddrPortFrom(netip.AddrFrom4(c.from.Addr), p<<8|p>>8)
		return int(n), from, rxStamp(c.oob[:c.msg.Controllen]), nil
	}
}

// rxStamp finds the SCM_TIMESTAMPNS message in oob.
func rxStamp(oob []byte) time.Time {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return time.Time{}
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && int(h.Len) >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return time.Unix(ts.Sec, ts.Nsec)
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}
}

// Close closes the socket. A ReadFrom blocked in another goroutine is not
// woken by it: give reads a timeout.
func (c *UDPConn) Close() error {
	if err := unix.Close(c.fd); err != nil {
		return fmt.Errorf("udp close: %w", err)
	}
	return nil
}
