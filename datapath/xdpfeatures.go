package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The XDP features a netdev reports over the "netdev" generic netlink
// family (Linux 6.3+, include/uapi/linux/netdev.h), which
// vishvananda/netlink does not wrap.
const (
	netdevCmdDevGet        = 1 // NETDEV_CMD_DEV_GET
	netdevAttrIfindex      = 1 // NETDEV_A_DEV_IFINDEX
	netdevAttrXDPFeatures  = 3 // NETDEV_A_DEV_XDP_FEATURES, u64 of NETDEV_XDP_ACT_*
	netdevXDPActNdoXmit    = 1 << 2
	netdevGenlVersion      = 1
	netdevGenlFamilyName   = "netdev"
	errNoXDPFeaturesReason = "no_xdp_features"
)

// genlHeader is struct genlmsghdr: cmd, version, 2 reserved bytes that
// must be zero (the family validates strictly). nl.Genlmsg serializes 4
// bytes of a 2-byte struct, so its reserved bytes are whatever follows it
// in memory, and the kernel answers EINVAL now and then.
type genlHeader [4]byte

func (h *genlHeader) Len() int          { return len(h) }
func (h *genlHeader) Serialize() []byte { return h[:] }

var netdevFamily struct {
	once sync.Once
	id   uint16
	err  error
}

// xdpFeatures returns the NETDEV_XDP_ACT_* bits of ifindex.
func xdpFeatures(ifindex int) (uint64, error) {
	netdevFamily.once.Do(func() {
		f, err := netlink.GenlFamilyGet(netdevGenlFamilyName)
		if err != nil {
			netdevFamily.err = fmt.Errorf("generic netlink family %q (Linux 6.3+): %w", netdevGenlFamilyName, err)
			return
		}
		netdevFamily.id = f.ID
	})
	if netdevFamily.err != nil {
		return 0, netdevFamily.err
	}
	req := nl.NewNetlinkRequest(int(netdevFamily.id), 0)
	req.AddData(&genlHeader{netdevCmdDevGet, netdevGenlVersion})
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(ifindex))
	req.AddData(nl.NewRtAttr(netdevAttrIfindex, b[:]))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, fmt.Errorf("xdp features of ifindex %d: %w", ifindex, err)
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return 0, fmt.Errorf("xdp features of ifindex %d: %w", ifindex, err)
		}
		for _, a := range attrs {
			if a.Attr.Type == netdevAttrXDPFeatures && len(a.Value) >= 8 {
				return binary.NativeEndian.Uint64(a.Value), nil
			}
		}
	}
	return 0, errors.New("xdp features: no answer")
}

// redirectTarget says whether a port's device takes frames another
// device's XDP program redirects to it (ndo_xdp_xmit), and if not, why, as
// a short token. A veth takes them only while its peer has an XDP program
// or GRO enabled; a driver without ndo_xdp_xmit never does.
func redirectTarget(ifindex int) (ok bool, why string, err error) {
	f, err := xdpFeatures(ifindex)
	if err != nil {
		return false, errNoXDPFeaturesReason, err
	}
	if f&netdevXDPActNdoXmit == 0 {
		return false, "no_ndo_xdp_xmit", nil
	}
	return true, "", nil
}
