package main

import (
	"testing"

	"github.com/xvs-project/xvs/internal/deptest"
)

// xvsctl speaks the wire types (api) through the client and nothing else of
// xvs: not the switch, the XDP program, the kernel interfaces, nor the
// server. Linking them made a 14 MB CLI that a renamed internal field could
// silently break.
func TestDeps(t *testing.T) {
	deptest.Bad(t, "github.com/xvs-project/xvs/cmd/xvsctl", []string{
		"github.com/xvs-project/xvs/datapath/...",
		"github.com/xvs-project/xvs/bpf/...",
		"github.com/xvs-project/xvs/afxdp/...",
		"github.com/xvs-project/xvs/flowtable/...",
		"github.com/xvs-project/xvs/testenv/...",
		"github.com/xvs-project/xvs/ctl", // the server; ctl/client is the client
		"github.com/xvs-project/xvs/ctl/ctltest",
		"github.com/cilium/ebpf/...",
		"github.com/vishvananda/netlink/...",
		"github.com/vishvananda/netns/...",
		"github.com/gorilla/mux/...",
		"github.com/prometheus/...",
		"golang.org/x/sys/unix",
	})
}
