package main

// count and xdp-redirect: the kernel as a sink and as the simplest switch.
//
// count attaches an XDP program to a device that counts every frame in a
// per-CPU array and drops it, and reads the array at the start and the end
// of a window. On veth it is also what makes native XDP redirects into the
// device's peer work at all: veth accepts redirected frames only while the
// receiving end has an XDP program (or GRO) on it.
//
// xdp-redirect attaches bpf_redirect(ifindex of --to) to --from: the
// in-kernel ceiling for a p0 -> p1 forwarding path.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// xdpAction values (enum xdp_action).
const (
	xdpDrop = 1
	xdpPass = 2
)

// countProgram counts each run in slot 0 of the per-CPU array runs and then
// returns verdict (or, with redirectTo > 0, bpf_redirect(redirectTo, 0)).
func countProgram(runs *ebpf.Map, verdict int32, redirectTo int) asm.Instructions {
	insns := asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, runs.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	}
	if redirectTo > 0 {
		return append(insns,
			asm.Mov.Imm(asm.R1, int32(redirectTo)).WithSymbol("out"),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			asm.Return(),
		)
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, verdict).WithSymbol("out"),
		asm.Return(),
	)
}

// xdpCounter is an XDP program attached to one device that counts the
// frames it sees (and drops, passes or redirects them). Its methods may be
// called concurrently.
type xdpCounter struct {
	runs *ebpf.Map
	prog *ebpf.Program
	link link.Link
	mode string
}

// attachCounter attaches a counting program to ifindex (in the caller's
// network namespace) in native mode, or generic mode if generic is set.
// With redirectTo > 0 it redirects every frame there instead of applying
// verdict.
func attachCounter(ifindex int, verdict int32, redirectTo int, generic bool) (*xdpCounter, error) {
	runs, err := newRunCounter("xvs_count")
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "xvs_count",
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: countProgram(runs, verdict, redirectTo),
	})
	if err != nil {
		runs.Close()
		return nil, fmt.Errorf("load count program: %w", err)
	}
	flags, mode := link.XDPDriverMode, "native"
	if generic {
		flags, mode = link.XDPGenericMode, "generic"
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
	if err != nil {
		prog.Close()
		runs.Close()
		return nil, fmt.Errorf("attach xdp (%s) to ifindex %d: %w", mode, ifindex, err)
	}
	return &xdpCounter{runs: runs, prog: prog, link: l, mode: mode}, nil
}

// Count returns the frames seen since the program was attached.
func (c *xdpCounter) Count() (uint64, error) { return sumPerCPU(c.runs) }

// Close detaches the program and frees it.
func (c *xdpCounter) Close() error {
	return errors.Join(c.link.Close(), c.prog.Close(), c.runs.Close())
}

// procCPU is a process's CPU time from /proc/PID/stat.
type procCPU struct {
	pid  int
	comm string
	busy time.Duration // utime + stime, all threads
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTick = 10 * time.Millisecond

// readProcCPU reads utime+stime of pid (all of its threads).
func readProcCPU(pid int) (procCPU, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procCPU{}, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	return parseProcStat(pid, string(b))
}

// parseProcStat parses a /proc/PID/stat line: "pid (comm) state ... utime
// stime ...", where comm may hold spaces and parentheses.
func parseProcStat(pid int, s string) (procCPU, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procCPU{}, fmt.Errorf("cpu of pid %d: malformed stat", pid)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return procCPU{}, fmt.Errorf("cpu of pid %d: short stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procCPU{}, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	return procCPU{pid: pid, comm: s[open+1 : end], busy: time.Duration(ut+st) * clockTick}, nil
}

// cpuTimes is one CPU's line of /proc/stat, in ticks.
type cpuTimes struct {
	user, system, softirq, idle, total uint64
}

// readCPUTimes reads the per-CPU lines of /proc/stat.
func readCPUTimes() ([]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseCPUTimes(string(b))
}

// parseCPUTimes parses the "cpuN user nice system idle iowait irq softirq
// steal ..." lines of /proc/stat, in CPU order.
func parseCPUTimes(s string) ([]cpuTimes, error) {
	var cpus []cpuTimes
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat %s: %w", f[0], err)
			}
			v[i] = n
		}
		t := cpuTimes{user: v[0] + v[1], system: v[2] + v[5], softirq: v[6], idle: v[3] + v[4]}
		for _, n := range v {
			t.total += n
		}
		cpus = append(cpus, t)
	}
	if len(cpus) == 0 {
		return nil, errors.New("/proc/stat: no cpu lines")
	}
	return cpus, nil
}

// parsePIDs parses "1,2,3" ("" = none).
func parsePIDs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var pids []int
	for _, f := range strings.Split(s, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("bad pid %q", f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// sleepCtx sleeps d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func count(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("count", flag.ContinueOnError)
	dev := fs.String("dev", "", "device to count on (in this namespace)")
	seconds := fs.Float64("seconds", 5, "length of the window")
	delay := fs.Float64("delay", 0, "seconds to wait after attaching before the window opens")
	pass := fs.Bool("pass", false, "pass frames to the stack instead of dropping them")
	generic := fs.Bool("generic", false, "attach in generic (skb) mode instead of native")
	cpuPIDs := fs.String("cpu-pid", "", "comma-separated PIDs whose CPU time (utime+stime) to report over the window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dev == "" {
		return errors.New("count: --dev is required")
	}
	if *seconds <= 0 || *delay < 0 {
		return errors.New("count: --seconds must be positive and --delay not negative")
	}
	pids, err := parsePIDs(*cpuPIDs)
	if err != nil {
		return fmt.Errorf("count: --cpu-pid: %w", err)
	}
	l, err := netlink.LinkByName(*dev)
	if err != nil {
		return fmt.Errorf("count: %s: %w", *dev, err)
	}
	verdict := int32(xdpDrop)
	if *pass {
		verdict = xdpPass
	}
	c, err := attachCounter(l.Attrs().Index, verdict, 0, *generic)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	defer c.Close()
	fmt.Fprintf(out, "count: %s: counting (xdp %s)\n", *dev, c.mode)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if !sleepCtx(ctx, time.Duration(*delay*float64(time.Second))) {
		return errors.New("count: interrupted before the window opened")
	}
	cpu0 := make([]procCPU, len(pids))
	for i, pid := range pids {
		if cpu0[i], err = readProcCPU(pid); err != nil {
			return fmt.Errorf("count: %w", err)
		}
	}
	st0, err := readCPUTimes()
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	n0, err := c.Count()
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	t0 := time.Now()
	full := sleepCtx(ctx, time.Duration(*seconds*float64(time.Second)))
	n1, err := c.Count()
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	el := time.Since(t0)
	cpu1 := make([]procCPU, len(pids))
	for i, pid := range pids {
		if cpu1[i], err = readProcCPU(pid); err != nil {
			return fmt.Errorf("count: %w", err)
		}
	}
	st1, err := readCPUTimes()
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	note := ""
	if !full {
		note = " (interrupted)"
	}
	fmt.Fprintf(out, "count: %s received %d packets in %.3fs: %.0f pps%s\n",
		*dev, n1-n0, el.Seconds(), float64(n1-n0)/el.Seconds(), note)
	for i := range pids {
		busy := cpu1[i].busy - cpu0[i].busy
		fmt.Fprintf(out, "count: cpu pid %d (%s): %.2fs of %.3fs = %.1f%%\n",
			pids[i], cpu1[i].comm, busy.Seconds(), el.Seconds(), 100*busy.Seconds()/el.Seconds())
	}
	for i := range min(len(st0), len(st1)) {
		a, b := st0[i], st1[i]
		tot := float64(max(b.total-a.total, 1)) / 100
		fmt.Fprintf(out, "count: cpu%d user %.0f%% system %.0f%% softirq %.0f%% idle %.0f%%\n", i,
			float64(b.user-a.user)/tot, float64(b.system-a.system)/tot, float64(b.softirq-a.softirq)/tot, float64(b.idle-a.idle)/tot)
	}
	return nil
}

func xdpRedirect(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("xdp-redirect", flag.ContinueOnError)
	from := fs.String("from", "", "device whose XDP program redirects")
	to := fs.String("to", "", "device to redirect to")
	seconds := fs.Float64("seconds", 0, "how long to stay attached (0 = until SIGINT or SIGTERM)")
	generic := fs.Bool("generic", false, "attach in generic (skb) mode instead of native")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return errors.New("xdp-redirect: --from and --to are required")
	}
	if *seconds < 0 {
		return errors.New("xdp-redirect: --seconds must not be negative")
	}
	src, err := netlink.LinkByName(*from)
	if err != nil {
		return fmt.Errorf("xdp-redirect: %s: %w", *from, err)
	}
	dst, err := netlink.LinkByName(*to)
	if err != nil {
		return fmt.Errorf("xdp-redirect: %s: %w", *to, err)
	}
	c, err := attachCounter(src.Attrs().Index, 0, dst.Attrs().Index, *generic)
	if err != nil {
		return fmt.Errorf("xdp-redirect: %w", err)
	}
	defer c.Close()
	fmt.Fprintf(out, "xdp-redirect: %s -> %s attached (xdp %s)\n", *from, *to, c.mode)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if *seconds > 0 {
		sleepCtx(ctx, time.Duration(*seconds*float64(time.Second)))
	} else {
		<-ctx.Done()
	}
	n, err := c.Count()
	if err != nil {
		return fmt.Errorf("xdp-redirect: %w", err)
	}
	fmt.Fprintf(out, "xdp-redirect: %s -> %s redirected %d frames in %.3fs\n", *from, *to, n, time.Since(start).Seconds())
	return nil
}
