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

// ifreqPtr is struct ifreq with ifr_data. data is a Go pointer, so the
// runtime keeps it right if the stack it points into moves.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

func ethtool(fd int, name string, v *ethtoolValue) error {
	return ethtoolPtr(fd, name, unsafe.Pointer(v))
}

// ethtoolPtr runs the SIOCETHTOOL command whose struct p points to.
func ethtoolPtr(fd int, name string, p unsafe.Pointer) error {
	var ifr ifreqPtr
	copy(ifr.name[:], name)
	ifr.data = p
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

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// SetChannels sets the RX and TX channel counts of a link in the calling
// thread's namespace, like `ethtool -L DEV rx RX tx TX` (veth has separate
// rx and tx channels, up to the queues it was created with). A veth with an
// XDP program refuses fewer RX channels than its peer has TX channels, and
// the kernel refuses to deactivate a queue an AF_XDP socket is bound to
// (both EINVAL).
func SetChannels(name string, rx, tx int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	ch := ethtoolChannels{cmd: unix.ETHTOOL_GCHANNELS}
	if err := ethtoolPtr(fd, name, unsafe.Pointer(&ch)); err != nil {
		return fmt.Errorf("ethtool -l %s: %w", name, err)
	}
	ch.cmd = unix.ETHTOOL_SCHANNELS
	ch.rxCount, ch.txCount = uint32(rx), uint32(tx)
	if err := ethtoolPtr(fd, name, unsafe.Pointer(&ch)); err != nil {
		return fmt.Errorf("ethtool -L %s rx %d tx %d: %w", name, rx, tx, err)
	}
	return nil
}
