package main

import (
	"io"

	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/datapath"
)

// The switch is what xvsd serves.
var _ ctl.Backend = (*datapath.Switch)(nil)

// newBackend builds the switch: it loads the XDP program (ports come later,
// from the state file and the API). Closing it detaches every port.
func newBackend(cfg backendConfig) (ctl.Backend, io.Closer, error) {
	sw, err := datapath.New(datapath.Config{CPUs: cfg.CPUs, PollMode: cfg.PollMode, PollWindow: cfg.PollWindow, BusyPoll: cfg.BusyPoll,
		Logger: cfg.Logger, OnExpire: cfg.OnExpire, OnEvent: cfg.OnEvent, FastPathOff: cfg.FastPathOff, FastPathFlows: cfg.FastPathFlows})
	if err != nil {
		return nil, nil, err
	}
	return sw, sw, nil
}
