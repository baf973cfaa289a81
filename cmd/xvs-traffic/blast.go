package main

// blast: the kernel as a traffic source. BPF_PROG_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES runs a tiny XDP program over one crafted frame,
// Repeat times, in batches of BatchSize page-pool frames; the program returns
// bpf_redirect(ifindex of DEV), so every run sends a real frame out of DEV
// without an skb (about 10 Mpps on one core here, see shared/PERF.md).
//
// The kernel copies the frame into each page-pool page once and then
// recycles the pages without copying it again, so a rewrite of the frame
// persists into later runs on the same page: the program's own, and that of
// whatever the frame meets on its way in place (an XDP program on the
// receiving veth that rewrites it, as xvs's fast path does, writes into
// the same page). So every run first writes the Ethernet, IPv4 and UDP
// headers back as crafted (eleven stores). With --flows K > 1 the program
// then numbers the run's flow m = counter%K and writes it into the UDP
// ports, patching the UDP checksum incrementally (RFC 1624) from the old
// port: the source port counts up from the crafted one to 65535 (P ports),
// and past P flows the destination port counts up too (flowPorts), so K
// may exceed 64k: distinct 5-tuples for a table of many flows.

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Frame layout of what buildFrame makes: Ethernet, IPv4 without options, UDP.
const (
	ethLen       = 14
	ipv4Len      = 20
	udpLen       = 8
	udpOff       = ethLen + ipv4Len
	udpSportOff  = udpOff + 0
	udpCsumOff   = udpOff + 6
	minFrameSize = ethLen + ipv4Len + udpLen + 18 // 60: Ethernet's minimum without FCS
	maxFrameSize = 1514                           // a 1500-byte MTU
)

// frameSpec describes the one UDP frame blast sends.
type frameSpec struct {
	SrcMAC, DstMAC   net.HardwareAddr
	SrcIP, DstIP     netip.Addr // IPv4
	SrcPort, DstPort uint16
	Size             int // whole frame without FCS, minFrameSize..maxFrameSize
}

// buildFrame serializes spec as Ethernet/IPv4/UDP with correct IPv4 and UDP
// checksums and a zero payload.
func buildFrame(spec frameSpec) ([]byte, error) {
	if spec.Size < minFrameSize || spec.Size > maxFrameSize {
		return nil, fmt.Errorf("frame size %d out of range %d..%d", spec.Size, minFrameSize, maxFrameSize)
	}
	if !spec.SrcIP.Is4() || !spec.DstIP.Is4() {
		return nil, errors.New("source and destination must be IPv4 addresses")
	}
	if len(spec.SrcMAC) != 6 || len(spec.DstMAC) != 6 {
		return nil, errors.New("source and destination MACs must be 6 bytes")
	}
	src, dst := spec.SrcIP.As4(), spec.DstIP.As4()
	eth := &layers.Ethernet{SrcMAC: spec.SrcMAC, DstMAC: spec.DstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src[:], DstIP: dst[:]}
	udp := &layers.UDP{SrcPort: layers.UDPPort(spec.SrcPort), DstPort: layers.UDPPort(spec.DstPort)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, fmt.Errorf("udp checksum: %w", err)
	}
	buf := gopacket.NewSerializeBuffer()
	payload := gopacket.Payload(make([]byte, spec.Size-ethLen-ipv4Len-udpLen))
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, payload); err != nil {
		return nil, fmt.Errorf("serialize frame: %w", err)
	}
	return buf.Bytes(), nil
}

// udpFlags are the flags blast and pair share: the UDP frame they send
// and how.
type udpFlags struct {
	srcIP, dstIP     *string
	srcPort, dstPort *uint
	size, flows      *int
	batch            *uint
}

func addUDPFlags(fs *flag.FlagSet) udpFlags {
	return udpFlags{
		srcIP:   fs.String("src-ip", "", "source IPv4 address"),
		dstIP:   fs.String("dst-ip", "", "destination IPv4 address"),
		srcPort: fs.Uint("src-port", 1024, "UDP source port (the first of --flows)"),
		dstPort: fs.Uint("dst-port", 0, "UDP destination port"),
		size:    fs.Int("size", 64, "frame size in bytes without FCS (60..1514)"),
		flows:   fs.Int("flows", 1, "distinct UDP 5-tuples, round robin: source ports from --src-port up to 65535, then the next destination port, and so on"),
		batch:   fs.Uint("batch", 64, "live-frames batch size (1..256)"),
	}
}

// spec returns the frame the flags describe, without its MACs; cmd
// prefixes the errors. The caller has checked that the required flags
// are set.
func (u udpFlags) spec(cmd string) (frameSpec, error) {
	if *u.srcPort > math.MaxUint16 || *u.dstPort > math.MaxUint16 {
		return frameSpec{}, fmt.Errorf("%s: ports must be below 65536", cmd)
	}
	spec := frameSpec{SrcPort: uint16(*u.srcPort), DstPort: uint16(*u.dstPort), Size: *u.size}
	var err error
	if spec.SrcIP, err = netip.ParseAddr(*u.srcIP); err != nil {
		return frameSpec{}, fmt.Errorf("%s: --src-ip: %w", cmd, err)
	}
	if spec.DstIP, err = netip.ParseAddr(*u.dstIP); err != nil {
		return frameSpec{}, fmt.Errorf("%s: --dst-ip: %w", cmd, err)
	}
	return spec, nil
}

// flowPorts returns the UDP ports of flow m (0-based) of a blast whose
// frame has source port base and destination port dst: the source port
// counts up from base to 65535, then starts again at base with the next
// destination port. blastProgram writes these; a test or a script that
// installs one flow per 5-tuple computes the same.
func flowPorts(m int, base, dst uint16) (src, dstPort uint16) {
	per := 65536 - int(base)
	return uint16(int(base) + m%per), uint16(int(dst) + m/per)
}

// blastProgram returns the source program: count the run in slot 0 of the
// per-CPU array runs, write hdr (the frame's first udpOff+udpLen bytes) back
// into the frame, with flows > 1 write flow runs%flows's ports (flowPorts,
// fixing the checksum), and redirect to ifindex.
func blastProgram(runs *ebpf.Map, ifindex int, flows int, basePort, dstPort uint16, hdr []byte) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // ctx
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, runs.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "redirect"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, udpOff+udpLen),
		asm.JGT.Reg(asm.R4, asm.R3, "redirect"),
	}
	// The headers as crafted: words (stored little-endian, as the CPU
	// does), then the last half word.
	for off := 0; off+4 <= len(hdr); off += 4 {
		insns = append(insns, asm.StoreImm(asm.R2, int16(off), int64(int32(binary.LittleEndian.Uint32(hdr[off:]))), asm.Word))
	}
	if n := len(hdr) &^ 3; n < len(hdr) {
		insns = append(insns, asm.StoreImm(asm.R2, int16(n), int64(int16(binary.LittleEndian.Uint16(hdr[n:]))), asm.Half))
	}
	if flows > 1 {
		per := 65536 - int(basePort)
		// r7 = flow m = runs % flows
		insns = append(insns, asm.Mod.Imm(asm.R7, int32(flows)))
		next := "redirect"
		if flows > per {
			next = "dport"
			// r5 = dstPort + m / per, r7 = m % per
			insns = append(insns,
				asm.Mov.Reg(asm.R5, asm.R7),
				asm.Div.Imm(asm.R5, int32(per)),
				asm.Add.Imm(asm.R5, int32(dstPort)),
				asm.Mod.Imm(asm.R7, int32(per)),
			)
		}
		insns = append(insns, asm.Add.Imm(asm.R7, int32(basePort)))
		insns = append(insns, writePort(asm.R7, udpSportOff, "sport", next)...)
		if flows > per {
			dport := writePort(asm.R5, udpOff+2, "dport_csum", "redirect")
			dport[0] = dport[0].WithSymbol("dport")
			insns = append(insns, dport...)
		}
	}
	return append(insns,
		asm.Mov.Imm(asm.R1, int32(ifindex)).WithSymbol("redirect"),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
}

// writePort writes the port in reg (host order; reg is clobbered) at UDP
// offset off of the frame at R2 and patches the UDP checksum from the old
// port, then goes on at the label next (name labels this step's own
// store). R8 and R9 are scratch.
func writePort(reg asm.Register, off int16, name, next string) asm.Instructions {
	return asm.Instructions{
		asm.HostTo(asm.BE, reg, asm.Half),
		asm.LoadMem(asm.R8, asm.R2, off, asm.Half), // old port
		asm.StoreMem(asm.R2, off, reg, asm.Half),
		asm.LoadMem(asm.R9, asm.R2, udpCsumOff, asm.Half),
		asm.JEq.Imm(asm.R9, 0, next), // no checksum: nothing to fix
		// HC' = ~(~HC + ~m + m'), one's complement, folded twice. The
		// sum is byte-order independent, so the loaded halves are
		// used as they are.
		asm.Xor.Imm(asm.R9, 0xffff),
		asm.Xor.Imm(asm.R8, 0xffff),
		asm.Add.Reg(asm.R9, asm.R8),
		asm.Add.Reg(asm.R9, reg),
		asm.Mov.Reg(asm.R8, asm.R9),
		asm.RSh.Imm(asm.R8, 16),
		asm.And.Imm(asm.R9, 0xffff),
		asm.Add.Reg(asm.R9, asm.R8),
		asm.Mov.Reg(asm.R8, asm.R9),
		asm.RSh.Imm(asm.R8, 16),
		asm.And.Imm(asm.R9, 0xffff),
		asm.Add.Reg(asm.R9, asm.R8),
		asm.Xor.Imm(asm.R9, 0xffff),
		asm.JNE.Imm(asm.R9, 0, name),
		asm.Mov.Imm(asm.R9, 0xffff), // UDP sends a computed zero as all ones
		asm.StoreMem(asm.R2, udpCsumOff, asm.R9, asm.Half).WithSymbol(name),
		asm.Ja.Label(next),
	}
}

// xdpMD is struct xdp_md, the context of an XDP test run.
type xdpMD struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// blaster sends one frame out of a device from BPF_PROG_RUN live frames.
// It is not safe for concurrent use.
type blaster struct {
	prog    *ebpf.Program
	runs    *ebpf.Map // per-CPU u64 at key 0: program runs
	ifindex int
}

// newBlaster loads the source program for the device ifindex (in the
// caller's network namespace), sending frame (buildFrame's layout), with
// flows 5-tuples numbered from frame's ports (flowPorts).
func newBlaster(ifindex, flows int, frame []byte) (*blaster, error) {
	if len(frame) < udpOff+udpLen {
		return nil, fmt.Errorf("frame of %d bytes, want at least %d", len(frame), udpOff+udpLen)
	}
	basePort := binary.BigEndian.Uint16(frame[udpSportOff:])
	dstPort := binary.BigEndian.Uint16(frame[udpOff+2:])
	per := 65536 - int(basePort)
	// The program takes flows as a 32-bit immediate.
	if most := min(per*(65536-int(dstPort)), math.MaxInt32); flows < 1 || flows > most {
		return nil, fmt.Errorf("flows %d out of range 1..%d for ports %d -> %d", flows, most, basePort, dstPort)
	}
	runs, err := newRunCounter("xvs_blast_runs")
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "xvs_blast",
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: blastProgram(runs, ifindex, flows, basePort, dstPort, frame[:udpOff+udpLen]),
	})
	if err != nil {
		runs.Close()
		return nil, fmt.Errorf("load blast program: %w", err)
	}
	return &blaster{prog: prog, runs: runs, ifindex: ifindex}, nil
}

// Close releases the program and its map.
func (b *blaster) Close() error {
	return errors.Join(b.prog.Close(), b.runs.Close())
}

// Runs returns how often the program has run (frames offered), on all CPUs.
func (b *blaster) Runs() (uint64, error) { return sumPerCPU(b.runs) }

// Send runs the program over frame repeat times in live-frame mode, batch
// frames at a time. It returns when the kernel is done.
func (b *blaster) Send(frame []byte, repeat, batch uint32) error {
	_, err := b.prog.Run(&ebpf.RunOptions{
		Data:      frame,
		Context:   xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(b.ifindex)},
		Repeat:    repeat,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: batch,
	})
	if err != nil {
		return fmt.Errorf("live-frames run: %w", err)
	}
	return nil
}

// SendFor calls Send until d has elapsed and returns the frames offered
// (program runs) and the time taken. Every live-frames call costs about
// 25ms of setup and teardown here (the kernel's page pool), so calls are
// long: flat out, each is sized to take about half a second (the last one
// the time left); with rate > 0, each sends a quarter second's worth of
// frames in one burst and then sleeps to hold rate frames per second.
func (b *blaster) SendFor(frame []byte, d time.Duration, batch uint32, rate float64) (uint64, time.Duration, error) {
	const slice = 500 * time.Millisecond
	before, err := b.Runs()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	repeat := uint32(1 << 14)
	if rate > 0 {
		repeat = uint32(max(rate/4, float64(batch)))
	}
	var asked float64
	for {
		t0 := time.Now()
		if err := b.Send(frame, repeat, batch); err != nil {
			return 0, 0, err
		}
		asked += float64(repeat)
		left := d - time.Since(start)
		if left <= 0 {
			break
		}
		if rate > 0 {
			due := start.Add(time.Duration(asked / rate * float64(time.Second)))
			if w := time.Until(due); w > 0 {
				if w >= left {
					time.Sleep(left) // no burst after d
					break
				}
				time.Sleep(w)
			}
			continue
		}
		// Aim the next call at min(slice, time left) from this one's rate.
		took := time.Since(t0)
		next := float64(repeat) * float64(min(slice, left)) / float64(max(took, time.Microsecond))
		repeat = uint32(min(max(next, float64(batch)), math.MaxUint32/2))
	}
	el := time.Since(start)
	after, err := b.Runs()
	if err != nil {
		return 0, 0, err
	}
	return after - before, el, nil
}

func blast(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("blast", flag.ContinueOnError)
	dev := fs.String("dev", "", "device to send out of (in this namespace)")
	dstMAC := fs.String("dst-mac", "", "destination MAC")
	srcMAC := fs.String("src-mac", "", "source MAC (default: the device's)")
	u := addUDPFlags(fs)
	seconds := fs.Float64("seconds", 5, "how long to send")
	rate := fs.Float64("rate", 0, "average frames per second, sent in bursts of a quarter second's worth (0 = as fast as the kernel goes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dev == "" || *dstMAC == "" || *u.srcIP == "" || *u.dstIP == "" || *u.dstPort == 0 {
		return errors.New("blast: --dev, --dst-mac, --src-ip, --dst-ip and --dst-port are required")
	}
	spec, err := u.spec("blast")
	if err != nil {
		return err
	}
	if *seconds <= 0 || *u.batch < 1 || *u.batch > 256 || *rate < 0 {
		return errors.New("blast: --seconds must be positive, --batch in 1..256 and --rate not negative")
	}
	link, err := netlink.LinkByName(*dev)
	if err != nil {
		return fmt.Errorf("blast: %s: %w", *dev, err)
	}
	spec.SrcMAC = link.Attrs().HardwareAddr
	if spec.DstMAC, err = net.ParseMAC(*dstMAC); err != nil {
		return fmt.Errorf("blast: --dst-mac: %w", err)
	}
	if *srcMAC != "" {
		if spec.SrcMAC, err = net.ParseMAC(*srcMAC); err != nil {
			return fmt.Errorf("blast: --src-mac: %w", err)
		}
	}
	frame, err := buildFrame(spec)
	if err != nil {
		return fmt.Errorf("blast: %w", err)
	}
	b, err := newBlaster(link.Attrs().Index, *u.flows, frame)
	if err != nil {
		return fmt.Errorf("blast: %w", err)
	}
	defer b.Close()
	// The kernel runs the frames on this thread's CPU: keep it on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := currentCPU()
	sent, el, err := b.SendFor(frame, time.Duration(*seconds*float64(time.Second)), uint32(*u.batch), *rate)
	if err != nil {
		return fmt.Errorf("blast: %w", err)
	}
	fmt.Fprintf(out, "blast: %s offered %d frames of %d bytes (%d flows) in %.3fs on cpu %d: %.0f pps\n",
		*dev, sent, len(frame), *u.flows, el.Seconds(), cpu, float64(sent)/el.Seconds())
	return nil
}

// currentCPU is the one CPU the calling thread may run on, or -1.
func currentCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() == 1 {
		for i := 0; i < len(set)*64; i++ {
			if set.IsSet(i) {
				return i
			}
		}
	}
	return -1 // not pinned to one CPU
}

// newRunCounter makes a one-slot per-CPU u64 array.
func newRunCounter(name string) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create %s map: %w", name, err)
	}
	return m, nil
}

// sumPerCPU adds up slot 0 of a per-CPU u64 array over all CPUs.
func sumPerCPU(m *ebpf.Map) (uint64, error) {
	var vals []uint64
	if err := m.Lookup(uint32(0), &vals); err != nil {
		return 0, fmt.Errorf("read counter: %w", err)
	}
	var sum uint64
	for _, v := range vals {
		sum += v
	}
	return sum, nil
}
