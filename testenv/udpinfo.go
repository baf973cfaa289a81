package testenv

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetTOS sets the IPv4 TOS byte (DSCP << 2 | ECN) of what c sends.
func SetTOS(c *net.UDPConn, tos int) error {
	return control(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, tos) })
}

// RecvInfo asks the kernel to tell, with each datagram c receives, the
// interface it arrived on and its TOS byte (see ReadInfo).
func RecvInfo(c *net.UDPConn) error {
	return control(c, func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
			return err
		}
		return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
	})
}

// Info is what the kernel said about one received datagram.
type Info struct {
	Ifindex int // the interface it arrived on; 0 if not said
	TOS     int // its TOS byte; -1 if not said
}

// OOBSize is room for the control messages RecvInfo asks for.
const OOBSize = 128

// ReadInfo reads the control messages of a datagram read with
// ReadMsgUDP from a connection RecvInfo was called on.
func ReadInfo(oob []byte) (Info, error) {
	info := Info{TOS: -1}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return info, err
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IP {
			continue
		}
		switch m.Header.Type {
		case unix.IP_PKTINFO:
			if len(m.Data) >= int(unsafe.Sizeof(unix.Inet4Pktinfo{})) {
				info.Ifindex = int((*unix.Inet4Pktinfo)(unsafe.Pointer(&m.Data[0])).Ifindex)
			}
		case unix.IP_TOS:
			if len(m.Data) >= 1 {
				info.TOS = int(m.Data[0])
			}
		}
	}
	return info, nil
}

func control(c *net.UDPConn, fn func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = fn(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt: %w", serr)
	}
	return nil
}
