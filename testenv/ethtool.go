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
	ethtoolSGRO    = 0x2c
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

// EnableGRO turns on generic receive offload on a link in the calling
// thread's namespace, like `ethtool -K DEV gro on`. A veth takes frames an
// XDP program redirects to it (ndo_xdp_xmit, which xvs's fast path sends
// through) only while its peer has an XDP program or GRO on: enabling GRO
// on the namespace end of a veth lets the switch-side end be a fast path
// output.
func EnableGRO(name string) error { return setGRO(name, true) }

// DisableGRO turns GRO off again (`ethtool -K DEV gro off`).
func DisableGRO(name string) error { return setGRO(name, false) }

func setGRO(name string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: ethtoolSGRO}
	if on {
		v.data = 1
	}
	if err := ethtool(fd, name, &v); err != nil {
		return fmt.Errorf("ethtool %s gro %v: %w", name, on, err)
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
