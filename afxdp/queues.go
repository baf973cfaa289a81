package afxdp

import (
	"errors"
	"fmt"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Queues is how many RX queues a device has: the active ones, which receive
// traffic and can take a socket, and the most the driver allows.
type Queues struct {
	Active int // RX queues in use: ethtool -l "current" combined + rx
	Max    int // ethtool -l "pre-set maximums" combined + rx; Active when unknown
	// Source says where the numbers come from: "ethtool", or "sysfs" for a
	// driver without ETHTOOL_GCHANNELS (the rx-N entries of
	// /sys/class/net/DEV/queues; Max is then Active).
	Source string
}

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// ifreqData is struct ifreq with ifr_data, the argument of SIOCETHTOOL. The
// data field is a pointer to Go, so the runtime adjusts it if the stack
// holding what it points to moves.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// QueueInfo reads the RX queue counts of the device ifname in the calling
// thread's network namespace. A device allocates more queues than it uses
// (a veth made without queue arguments has 2 of which 1 is active; NICs
// allocate one per CPU and activate what `ethtool -L` says): only the
// active ones can be bound (a bind past them fails with EINVAL).
//
// It asks the driver (ETHTOOL_GCHANNELS, what `ethtool -l` shows) and falls
// back to counting /sys/class/net/ifname/queues/rx-* when the driver does
// not answer. Errors wrap unix.ENODEV when the device does not exist.
func QueueInfo(ifname string) (Queues, error) {
	if len(ifname) == 0 || len(ifname) >= unix.IFNAMSIZ {
		return Queues{}, fmt.Errorf("queues of %q: bad device name: %w", ifname, ErrInvalidOptions)
	}
	ch, err := getChannels(ifname)
	if err == nil {
		q := Queues{
			Active: int(ch.combinedCount + ch.rxCount),
			Max:    int(ch.maxCombined + ch.maxRx),
			Source: "ethtool",
		}
		if q.Active > 0 {
			q.Max = max(q.Max, q.Active)
			return q, nil
		}
		// A driver reporting no RX channel at all does not know: count.
	} else if errors.Is(err, unix.ENODEV) {
		return Queues{}, fmt.Errorf("queues of %s: %w", ifname, err)
	}
	dir := filepath.Join("/sys/class/net", ifname, "queues")
	if rx, _ := filepath.Glob(filepath.Join(dir, "rx-*")); len(rx) > 0 {
		return Queues{Active: len(rx), Max: len(rx), Source: "sysfs"}, nil
	}
	if err == nil {
		err = errors.New("the driver reports no RX channel")
	}
	return Queues{}, fmt.Errorf("queues of %s: %w, and %s has no rx-* entries", ifname, err, dir)
}

func getChannels(ifname string) (ethtoolChannels, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ethtoolChannels{}, fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	ch := ethtoolChannels{cmd: unix.ETHTOOL_GCHANNELS}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&ch)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return ethtoolChannels{}, fmt.Errorf("ETHTOOL_GCHANNELS: %w", errno)
	}
	return ch, nil
}
