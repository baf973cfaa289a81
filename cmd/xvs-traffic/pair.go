package main

// pair: two forwarding paths measured side by side, in alternating slices.
//
// On a shared machine the rate of the same path swings 2x from one second
// to the next (other tenants' load, the host's), so the ratio of two
// systems measured seconds apart is mostly noise. pair offers the same
// frames to two paths in turn, a fraction of a second each (A B, then B A,
// so neither always goes first), from one thread, and reports every
// pair's ratio: the two slices of a pair met nearly the same machine.
// What is left is the share of the CPU the sending thread got in each
// slice (other tasks preempt it, and nothing forwards meanwhile): pair
// measures that too (the thread's CPU time over the slice's wall time) and
// reports each slice's frames per CPU-second, the rate the path would have
// on a CPU of its own; the ratio of those is the ratio of the two paths'
// per-frame costs, and holds within a few percent where the raw ratio
// swings 30%.
//
// Each path is a device to send out of (a blaster, see blast.go) and a
// sink device, in another namespace, where a program counts and drops
// what arrives and stamps the first frame of a slice and every 64th with
// the kernel's clock. A slice's rate is the frames between the first and
// the last stamp over the time between them, so the ~25ms each live-frames
// call spends setting up its page pool does not dilute it. The forwarding
// runs on the sending thread's CPU (the receiving veths' NAPI runs in its
// softirq), so pin the command with taskset.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// stampValue is the one entry of a stamp counter's array.
type stampValue struct {
	N       uint64 // frames since the last reset
	FirstTS uint64 // ktime (ns) of the first of them; 0: none yet
	FirstN  uint64 // N at FirstTS
	LastTS  uint64 // ktime of the last stamped frame (every 64th)
	LastN   uint64 // N at LastTS
}

const stampValueLen = 5 * 8

// stampProgram counts every frame in the array stamps and stamps the first
// after a reset and every 64th; it drops them all.
func stampProgram(stamps *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, stamps.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadMem(asm.R8, asm.R7, 0, asm.DWord),
		asm.Add.Imm(asm.R8, 1),
		asm.StoreMem(asm.R7, 0, asm.R8, asm.DWord),
		asm.LoadMem(asm.R1, asm.R7, 8, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "stamp"),
		asm.Mov.Reg(asm.R1, asm.R8),
		asm.And.Imm(asm.R1, 63),
		asm.JNE.Imm(asm.R1, 0, "out"),
		asm.FnKtimeGetNs.Call().WithSymbol("stamp"),
		asm.LoadMem(asm.R1, asm.R7, 8, asm.DWord),
		asm.JNE.Imm(asm.R1, 0, "last"),
		asm.StoreMem(asm.R7, 8, asm.R0, asm.DWord),
		asm.StoreMem(asm.R7, 16, asm.R8, asm.DWord),
		asm.StoreMem(asm.R7, 24, asm.R0, asm.DWord).WithSymbol("last"),
		asm.StoreMem(asm.R7, 32, asm.R8, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("out"),
		asm.Return(),
	}
}

// stampCounter is a stamp program attached to a sink device.
type stampCounter struct {
	stamps *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
	mac    net.HardwareAddr
}

// attachStamps attaches a stamp program (native XDP) to dev in the network
// namespace ns ("" = this one).
func attachStamps(ns, dev string) (*stampCounter, error) {
	stamps, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_stamps", Type: ebpf.Array, KeySize: 4,
		ValueSize: stampValueLen, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create stamp map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xvs_stamp", Type: ebpf.XDP, License: "GPL",
		Instructions: stampProgram(stamps)})
	if err != nil {
		stamps.Close()
		return nil, fmt.Errorf("load stamp program: %w", err)
	}
	c := &stampCounter{stamps: stamps, prog: prog}
	err = inNetns(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		c.mac = l.Attrs().HardwareAddr
		c.link, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: l.Attrs().Index, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		prog.Close()
		stamps.Close()
		return nil, fmt.Errorf("attach stamp counter to %s: %w", dev, err)
	}
	return c, nil
}

func (c *stampCounter) reset() error { return c.stamps.Put(uint32(0), stampValue{}) }

func (c *stampCounter) read() (stampValue, error) {
	var v stampValue
	err := c.stamps.Lookup(uint32(0), &v)
	return v, err
}

func (c *stampCounter) Close() error {
	return errors.Join(c.link.Close(), c.prog.Close(), c.stamps.Close())
}

// inNetns runs fn on a thread in the namespace named ns ("" = the caller's).
func inNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked if it cannot go back: the runtime
		// then ends it with the goroutine instead of reusing it.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			errc <- errors.Join(err, fmt.Errorf("leave netns %s: %w", ns, serr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// pairPath is one side: a blaster and the sink it reaches.
type pairPath struct {
	name  string
	b     *blaster
	frame []byte
	sink  *stampCounter
	rate  float64 // last slice's rate, to size the next
}

// sliceResult is what one slice measured.
type sliceResult struct {
	rate    float64 // frames per second at the sink, between stamps
	offered uint64
	got     uint64
	share   float64 // CPU time of the sending thread over wall time
}

// slice sends about d worth of frames on p and measures them.
func (p *pairPath) slice(d time.Duration, batch uint32) (sliceResult, error) {
	var r sliceResult
	repeat := uint32(1 << 14)
	if p.rate > 0 {
		repeat = uint32(min(max(p.rate*d.Seconds(), float64(batch)), 1<<30))
	}
	if err := p.sink.reset(); err != nil {
		return r, err
	}
	before, err := p.b.Runs()
	if err != nil {
		return r, err
	}
	var c0, c1 unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c0)
	t0 := time.Now()
	if err := p.b.Send(p.frame, repeat, batch); err != nil {
		return r, err
	}
	wall := time.Since(t0)
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c1)
	after, err := p.b.Runs()
	if err != nil {
		return r, err
	}
	v, err := p.sink.read()
	if err != nil {
		return r, err
	}
	r.offered, r.got = after-before, v.N
	r.share = float64(c1.Nano()-c0.Nano()) / float64(wall.Nanoseconds())
	if v.LastTS > v.FirstTS && v.LastN > v.FirstN {
		r.rate = float64(v.LastN-v.FirstN) / (float64(v.LastTS-v.FirstTS) / 1e9)
		p.rate = r.rate
	}
	return r, nil
}

// parsePath parses DEV:SINKDEV.
func parsePath(s string) (dev, sink string, err error) {
	dev, sink, ok := strings.Cut(s, ":")
	if !ok || dev == "" || sink == "" {
		return "", "", fmt.Errorf("path %q: want DEV:SINKDEV", s)
	}
	return dev, sink, nil
}

// quantile returns the q-quantile (0..1) of sorted xs, interpolated.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}

func pair(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	pa := fs.String("a", "", "path A: DEV:SINKDEV (send out of DEV here, count on SINKDEV in --sink-ns)")
	pb := fs.String("b", "", "path B, the reference: DEV:SINKDEV")
	sinkNS := fs.String("sink-ns", "", "network namespace of the sink devices (default: this one)")
	u := addUDPFlags(fs)
	seconds := fs.Float64("seconds", 10, "how long to alternate (both paths together)")
	sliceSec := fs.Float64("slice", 0.5, "seconds of one slice")
	verbose := fs.Bool("v", false, "print every pair")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pa == "" || *pb == "" || *u.srcIP == "" || *u.dstIP == "" || *u.dstPort == 0 {
		return errors.New("pair: --a, --b, --src-ip, --dst-ip and --dst-port are required")
	}
	base, err := u.spec("pair")
	if err != nil {
		return err
	}
	if *seconds <= 0 || *sliceSec <= 0 || *sliceSec > *seconds || *u.batch < 1 || *u.batch > 256 {
		return errors.New("pair: --seconds and --slice must be positive (--slice at most --seconds), --batch in 1..256")
	}
	var paths [2]*pairPath
	for i, s := range []string{*pa, *pb} {
		dev, sinkDev, err := parsePath(s)
		if err != nil {
			return fmt.Errorf("pair: %w", err)
		}
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("pair: %s: %w", dev, err)
		}
		sink, err := attachStamps(*sinkNS, sinkDev)
		if err != nil {
			return fmt.Errorf("pair: %w", err)
		}
		defer sink.Close()
		spec := base
		spec.SrcMAC, spec.DstMAC = l.Attrs().HardwareAddr, sink.mac
		frame, err := buildFrame(spec)
		if err != nil {
			return fmt.Errorf("pair: %w", err)
		}
		b, err := newBlaster(l.Attrs().Index, *u.flows, frame)
		if err != nil {
			return fmt.Errorf("pair: %w", err)
		}
		defer b.Close()
		paths[i] = &pairPath{name: string(rune('A' + i)), b: b, frame: frame, sink: sink}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := currentCPU()
	d := time.Duration(*sliceSec * float64(time.Second))
	// One short slice each first: warm-up, and a rate to size slices by.
	for _, p := range paths {
		if _, err := p.slice(d/10, uint32(*u.batch)); err != nil {
			return fmt.Errorf("pair: %w", err)
		}
	}
	var rates, shares, costs [2][]float64
	var offered, got [2]uint64
	var ratios, cpuRatios []float64
	start := time.Now()
	for i := 0; time.Since(start) < time.Duration(*seconds*float64(time.Second)); i++ {
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		var res [2]sliceResult
		for _, k := range order {
			if res[k], err = paths[k].slice(d, uint32(*u.batch)); err != nil {
				return fmt.Errorf("pair: %w", err)
			}
		}
		for k := range paths {
			offered[k] += res[k].offered
			got[k] += res[k].got
		}
		if res[0].rate == 0 || res[1].rate == 0 || res[0].share <= 0 || res[1].share <= 0 {
			if *verbose {
				fmt.Fprintf(out, "pair %d: a path received nothing (A %d of %d, B %d of %d)\n", i,
					res[0].got, res[0].offered, res[1].got, res[1].offered)
			}
			continue
		}
		for k := range paths {
			rates[k] = append(rates[k], res[k].rate)
			shares[k] = append(shares[k], res[k].share)
			costs[k] = append(costs[k], res[k].share/res[k].rate*1e9)
		}
		ratios = append(ratios, res[0].rate/res[1].rate)
		cpuRatios = append(cpuRatios, (res[0].rate/res[0].share)/(res[1].rate/res[1].share))
		if *verbose {
			fmt.Fprintf(out, "pair %d: A %.3f Mpps (cpu %.0f%%) B %.3f Mpps (cpu %.0f%%) A/B %.3f, per CPU-second %.3f\n", i,
				res[0].rate/1e6, 100*res[0].share, res[1].rate/1e6, 100*res[1].share, ratios[len(ratios)-1],
				cpuRatios[len(cpuRatios)-1])
		}
	}
	if len(ratios) == 0 {
		return fmt.Errorf("pair: no pair where both paths received frames (A %d of %d, B %d of %d)",
			got[0], offered[0], got[1], offered[1])
	}
	for k := range paths {
		slices.Sort(rates[k])
		slices.Sort(shares[k])
		slices.Sort(costs[k])
	}
	slices.Sort(ratios)
	slices.Sort(cpuRatios)
	for k, p := range paths {
		lost := 0.0
		if offered[k] > 0 && offered[k] > got[k] {
			lost = 100 * float64(offered[k]-got[k]) / float64(offered[k])
		}
		fmt.Fprintf(out, "pair: %s %s: median %.0f pps (%.0f..%.0f), %.1f cpu-ns/frame (%.1f..%.1f), lost %.2f%%, sender cpu %.0f%%\n",
			p.name, []string{*pa, *pb}[k], quantile(rates[k], 0.5), rates[k][0], rates[k][len(rates[k])-1],
			quantile(costs[k], 0.5), costs[k][0], costs[k][len(costs[k])-1], lost, 100*quantile(shares[k], 0.5))
	}
	for _, r := range []struct {
		what string
		xs   []float64
	}{{"rate", ratios}, {"per CPU-second", cpuRatios}} {
		fmt.Fprintf(out, "pair: A/B %s: median %.3f (%.3f..%.3f, quartiles %.3f..%.3f) over %d pairs of %.2fs slices on cpu %d\n",
			r.what, quantile(r.xs, 0.5), r.xs[0], r.xs[len(r.xs)-1], quantile(r.xs, 0.25), quantile(r.xs, 0.75),
			len(r.xs), *sliceSec, cpu)
	}
	return nil
}
