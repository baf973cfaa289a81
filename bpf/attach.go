package bpf

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Mode is how the XDP program is attached to a device.
type Mode int

const (
	// ModeAuto tries ModeNative, then ModeGeneric.
	ModeAuto Mode = iota
	// ModeNative runs the program in the driver (XDP_FLAGS_DRV_MODE).
	ModeNative
	// ModeGeneric runs the program on the skb path (XDP_FLAGS_SKB_MODE):
	// works on every device, slower, and AF_XDP runs in copy mode.
	ModeGeneric
)

var modeNames = [...]string{"auto", "native", "generic"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode parses "auto", "native" or "generic".
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("xdp mode %q: want auto, native or generic", s)
}

// Attachment is the program attached to one device through a bpf_link. The
// kernel detaches it when the link is closed or the process dies.
type Attachment struct {
	objs    *Objects
	ifindex int
	mode    Mode

	once sync.Once
	l    link.Link
	prog *ebpf.Program // the program the link runs now: objs' or its twin
	err  error
}

// Mode returns the mode that took: ModeNative or ModeGeneric.
func (a *Attachment) Mode() Mode { return a.mode }

// Ifindex returns the device the program is attached to.
func (a *Attachment) Ifindex() int { return a.ifindex }

// Reinstall installs the program on the device again, for drivers that
// run no program on queues activated after the attach: veth enables a queue
// that `ethtool -L` adds with XDP on but without the program, passing its
// frames to the kernel, until the program is set again. Setting the same
// program is a no-op for the kernel, so the link swaps between the program
// and its twin (same object, same maps): the device never runs without it.
func (a *Attachment) Reinstall() error {
	a.objs.mu.Lock()
	defer a.objs.mu.Unlock()
	if a.objs.closed {
		return fmt.Errorf("reinstall xdp on ifindex %d: objects closed", a.ifindex)
	}
	next := a.objs.objs.XvsXdp
	if a.prog == next {
		twin, err := a.objs.twinLocked()
		if err != nil {
			return fmt.Errorf("reinstall xdp on ifindex %d: %w", a.ifindex, err)
		}
		next = twin
	}
	if err := a.l.Update(next); err != nil {
		return fmt.Errorf("reinstall xdp on ifindex %d: %w", a.ifindex, err)
	}
	a.prog = next
	return nil
}

// Close detaches the program. It is safe to call more than once.
func (a *Attachment) Close() error {
	a.objs.mu.Lock()
	if a.objs.links != nil {
		delete(a.objs.links, a)
	}
	a.objs.mu.Unlock()
	return a.detach()
}

func (a *Attachment) detach() error {
	a.once.Do(func() {
		if err := a.l.Close(); err != nil {
			a.err = fmt.Errorf("detach xdp from ifindex %d: %w", a.ifindex, err)
		}
	})
	return a.err
}

// Attach attaches the program to ifindex. The program serves the device
// only once SetPort names its ofport; until then its frames pass to the
// kernel. Closing o detaches every attachment made through it.
func (o *Objects) Attach(ifindex int, mode Mode) (*Attachment, error) {
	if ifindex <= 0 {
		return nil, fmt.Errorf("attach xdp: bad ifindex %d", ifindex)
	}
	var tries []Mode
	switch mode {
	case ModeAuto:
		tries = []Mode{ModeNative, ModeGeneric}
	case ModeNative, ModeGeneric:
		tries = []Mode{mode}
	default:
		return nil, fmt.Errorf("attach xdp: unknown %v", mode)
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, fmt.Errorf("attach xdp to ifindex %d: objects closed", ifindex)
	}
	var errs []error
	for _, m := range tries {
		flags := link.XDPDriverMode
		if m == ModeGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{
			Program:   o.objs.XvsXdp,
			Interface: ifindex,
			Flags:     flags,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", m, err))
			continue
		}
		a := &Attachment{objs: o, ifindex: ifindex, mode: m, l: l, prog: o.objs.XvsXdp}
		o.links[a] = struct{}{}
		return a, nil
	}
	return nil, fmt.Errorf("attach xdp to ifindex %d: %w", ifindex, errors.Join(errs...))
}
