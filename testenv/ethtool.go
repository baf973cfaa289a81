package testenv

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool commands (linux/ethtool.h); veth still honours them.
const (
	ethtoolSTXCSUM = 0x17
	ethtoolGFLAGS  = 0x25
	ethtoolSFLAGS  = 0x26
	ethFlagTXVLAN  = 1 << 7
	ethFlagRXVLAN  = 1 << 8
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [16]byte
}

func ethtool(fd int, name string, v *ethtoolValue) error {
	var ifr ifreqPtr
	copy(ifr.name[:], name)
	ifr.data = uintptr(unsafe.Pointer(v))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return errno
	}
	return nil
}

// DisableOffloads turns off TX checksum offload and the VLAN offloads of a
// link in the calling thread's namespace, like
// `ethtool -K DEV tx off txvlan off rxvlan off`. Frames that leave through a
// raw path (XDP, AF_XDP) carry no partial checksums or out-of-band VLAN tags,
// so the hosts plugged into the switch must not count on them.
func DisableOffloads(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	if err := ethtool(fd, name, &ethtoolValue{cmd: ethtoolSTXCSUM}); err != nil {
		return fmt.Errorf("ethtool %s tx off: %w", name, err)
	}
	v := ethtoolValue{cmd: ethtoolGFLAGS}
	if err := ethtool(fd, name, &v); err != nil {
		return fmt.Errorf("ethtool %s get flags: %w", name, err)
	}
	v = ethtoolValue{cmd: ethtoolSFLAGS, data: v.data &^ (ethFlagTXVLAN | ethFlagRXVLAN)}
	if err := ethtool(fd, name, &v); err != nil {
		return fmt.Errorf("ethtool %s txvlan off rxvlan off: %w", name, err)
	}
	return nil
}
