// Command xvs-traffic sends and counts UDP test traffic for demos and
// benchmarks. Run it inside the namespaces testenv.sh builds:
//
//	ip netns exec xvs-sink xvs-traffic sink --listen 10.100.0.2:7998 --for 5s &
//	ip netns exec xvs-gen  xvs-traffic send --to 10.100.0.2:7999 --count 100000
//
// Every datagram carries a sequence number and a pattern derived from it, so
// the sink reports not only how many arrived but whether any was damaged.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/xvs-project/xvs/testenv"
)

const magic = 0x78767374 // "xvst"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "xvs-traffic:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  xvs-traffic send --to IP:PORT [--count N] [--size BYTES] [--rate PPS] [--tos TOS]
  xvs-traffic sink --listen IP:PORT [--for DURATION] [--expect N] [--tos TOS]
              [--count N [--max-gaps K] [--max-gap DURATION]]
  xvs-traffic tcp-echo --listen IP:PORT [--for DURATION]
  xvs-traffic tcp-check --to IP:PORT
  xvs-traffic tcp-bulk --to IP:PORT [--conns N] [--bytes B]
  xvs-traffic offloads-off DEV
  xvs-traffic gro DEV on|off
  xvs-traffic blast --dev DEV --dst-mac MAC --src-ip A --dst-ip B --dst-port P
              [--size 64] [--seconds N] [--flows K] [--src-port P] [--rate PPS]
  xvs-traffic count --dev DEV [--seconds N] [--delay N] [--cpu-pid PID,...]
  xvs-traffic xdp-redirect --from DEV --to DEV [--seconds N]
  xvs-traffic pair --a DEV:SINKDEV --b DEV:SINKDEV [--sink-ns NS] --src-ip A --dst-ip B
              --dst-port P [--size 64] [--flows K] [--seconds 10] [--slice 0.5] [-v]
  xvs-traffic echo --listen IP:PORT [--for DURATION]
  xvs-traffic ping --to IP:PORT [--rate 500] [--count 10000] [--size 24]
              [--from IP:PORT] [--wait 1s] [--over 500us]

send writes N UDP datagrams of SIZE payload bytes (>= 16) to IP:PORT and
prints how many it sent and at what rate. sink counts datagrams arriving on
IP:PORT until --for elapses (or --expect arrive), checks each payload, and
prints received/damaged counts and the rate, and the datagrams by the
interface they arrived on and by TOS byte; with --count (what the sender
sends) it lists the missing datagrams as gaps, each with how long it lasted
between the arrivals around it. It exits 1 if --expect is set and fewer
arrived, if any payload was damaged, if a datagram had another TOS than
--tos, or if there were more gaps than --max-gaps or one longer than
--max-gap. tcp-echo echoes TCP
connections for a while; tcp-check connects, sends a line and checks the
echo (the host stack at work). tcp-bulk opens N connections to a tcp-echo
at once and checks that B bytes come back intact on each. offloads-off turns off TX
checksum and VLAN offload on DEV (like ethtool -K DEV tx off txvlan off
rxvlan off), which hosts behind a raw switch path need. gro turns GRO on DEV
on or off (ethtool -K DEV gro on|off): a veth whose peer has GRO on takes
XDP-redirected frames.

blast makes the kernel the traffic source (BPF_PROG_RUN live frames): an XDP
program redirects one crafted UDP frame out of DEV, about 10 Mpps on one core,
rewriting the source port over K flows; it prints the frames offered and the
rate. Pin it with taskset. The receiving veth peer needs an XDP program or GRO
on, or the kernel drops the frames. count attaches an XDP program to DEV that
counts and drops every frame and prints what arrived in the window (and the
CPU time of --cpu-pid processes over it). xdp-redirect attaches an XDP
program that redirects everything from one device to another (the in-kernel
forwarding ceiling). pair offers the same frames to two paths (out of DEV,
counted on SINKDEV) in alternating slices and prints each path's rate and
the ratio A/B of every pair of slices, with its median and spread: on a noisy
machine the two slices of a pair meet the same load. All four need root.

ping measures round trips through a switch: it sends --count requests at
--rate per second on a fixed schedule (a late reply never delays the next
request) to an echo, which sends every datagram back. The round trip runs
from just before the request's sendto to the kernel's receive timestamp of
the reply, so ping's own wake-up is left out (and shown apart). It prints
p50/p90/p99/p99.9/max, the replies lost, and a ping-result line of
key=value pairs for scripts. Both are IPv4; pin them with taskset.
`)
}

// commands are xvs-traffic's commands by name; each takes the arguments
// after its name.
var commands = map[string]func(args []string, out io.Writer) error{
	"send":         send,
	"sink":         sink,
	"tcp-echo":     tcpEcho,
	"tcp-check":    tcpCheck,
	"tcp-bulk":     tcpBulk,
	"blast":        blast,
	"count":        count,
	"xdp-redirect": xdpRedirect,
	"pair":         pair,
	"ping":         ping,
	"echo":         echo,
	"offloads-off": offloadsOff,
	"gro":          gro,
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return errors.New("missing command")
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd(args[1:], out)
	}
	switch args[0] {
	case "help", "-h", "--help":
		usage(out)
		return nil
	}
	usage(os.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func offloadsOff(args []string, _ io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: xvs-traffic offloads-off DEV")
	}
	return testenv.DisableOffloads(args[0])
}

func gro(args []string, _ io.Writer) error {
	if len(args) != 2 || (args[1] != "on" && args[1] != "off") {
		return errors.New("usage: xvs-traffic gro DEV on|off")
	}
	if args[1] == "on" {
		return testenv.EnableGRO(args[0])
	}
	return testenv.DisableGRO(args[0])
}

func fill(b []byte, seq uint64) {
	binary.BigEndian.PutUint32(b[0:], magic)
	binary.BigEndian.PutUint64(b[4:], seq)
	binary.BigEndian.PutUint32(b[12:], uint32(len(b)))
	for i := 16; i < len(b); i++ {
		b[i] = byte(seq) + byte(i)
	}
}

func valid(b []byte) bool {
	if len(b) < 16 || binary.BigEndian.Uint32(b) != magic || binary.BigEndian.Uint32(b[12:]) != uint32(len(b)) {
		return false
	}
	seq := binary.BigEndian.Uint64(b[4:])
	for i := 16; i < len(b); i++ {
		if b[i] != byte(seq)+byte(i) {
			return false
		}
	}
	return true
}

func send(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	to := fs.String("to", "", "destination IP:PORT")
	count := fs.Int("count", 10000, "datagrams to send")
	size := fs.Int("size", 22, "payload bytes per datagram (22 = a 64-byte frame)")
	rate := fs.Int("rate", 0, "packets per second (0 = as fast as possible)")
	tos := fs.Int("tos", -1, "IPv4 TOS byte to send with (DSCP<<2; EF is 184); default: the system's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("send: --to is required")
	}
	if *tos > 255 {
		return fmt.Errorf("send: --tos %d out of range 0..255", *tos)
	}
	if *size < 16 || *size > 65000 {
		return fmt.Errorf("send: --size %d out of range 16..65000", *size)
	}
	raddr, err := net.ResolveUDPAddr("udp", *to)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer c.Close()
	if *tos >= 0 {
		if err := testenv.SetTOS(c, *tos); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	buf := make([]byte, *size)
	start := time.Now()
	sent, failed := 0, 0
	for i := 0; i < *count; i++ {
		if *rate > 0 {
			due := start.Add(time.Duration(i) * time.Second / time.Duration(*rate))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		fill(buf, uint64(i))
		if _, err := c.Write(buf); err != nil {
			failed++ // ENOBUFS and friends: the local queue is full
			continue
		}
		sent++
	}
	el := time.Since(start)
	fmt.Fprintf(out, "sent %d datagrams (%d refused locally) of %d bytes in %v: %.0f pps\n",
		sent, failed, *size, el.Round(time.Millisecond), float64(sent)/el.Seconds())
	return nil
}

func sink(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	listen := fs.String("listen", "", "local IP:PORT")
	dur := fs.Duration("for", 5*time.Second, "how long to count")
	expect := fs.Int("expect", 0, "stop once this many arrived; fail if fewer did")
	count := fs.Int("count", 0, "datagrams the sender sends (seq 0..count-1): report the ones missing as gaps")
	maxGaps := fs.Int("max-gaps", -1, "with --count: fail if the missing datagrams form more gaps than this")
	maxGap := fs.Duration("max-gap", 0, "with --count: fail if a gap lasted longer (between the arrivals around it)")
	wantTOS := fs.Int("tos", -1, "fail if a datagram arrives with another IPv4 TOS byte")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *listen == "" {
		return errors.New("sink: --listen is required")
	}
	laddr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	c, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(8 << 20)
	if err := testenv.RecvInfo(c); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	deadline := time.Now().Add(*dur)
	buf := make([]byte, 65536)
	oob := make([]byte, testenv.OOBSize)
	r := newSinkReport(*count)
	for *expect == 0 || r.got < *expect {
		if err := c.SetReadDeadline(deadline); err != nil {
			return err
		}
		n, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return fmt.Errorf("sink: %w", err)
		}
		info, _ := testenv.ReadInfo(oob[:oobn])
		r.add(buf[:n], info, time.Now())
		if *count > 0 && r.got >= *count && *expect == 0 {
			break
		}
	}
	return r.finish(out, *expect, *maxGaps, *maxGap, *wantTOS)
}

// sinkReport counts what a sink received.
type sinkReport struct {
	got, bad    int
	first, last time.Time
	byIf        map[int]int
	byTOS       map[int]int
	count       int
	at          []time.Time // by sequence number, with count: when it arrived (zero: missing)
	dups        int
}

func newSinkReport(count int) *sinkReport {
	r := &sinkReport{byIf: map[int]int{}, byTOS: map[int]int{}, count: count}
	if count > 0 {
		r.at = make([]time.Time, count)
	}
	return r
}

func (r *sinkReport) add(b []byte, info testenv.Info, now time.Time) {
	if r.got == 0 {
		r.first = now
	}
	r.last = now
	r.got++
	r.byIf[info.Ifindex]++
	r.byTOS[info.TOS]++
	if !valid(b) {
		r.bad++
		return
	}
	if seq := binary.BigEndian.Uint64(b[4:]); r.at != nil && seq < uint64(len(r.at)) {
		if !r.at[seq].IsZero() {
			r.dups++
		}
		r.at[seq] = now
	}
}

// gap is a run of missing datagrams, seq from..to.
type gap struct {
	from, to int
	lasted   time.Duration // between the arrivals around it; 0 at either end of the stream
}

func (r *sinkReport) gaps() []gap {
	var gs []gap
	for i := 0; i < len(r.at); i++ {
		if !r.at[i].IsZero() {
			continue
		}
		g := gap{from: i}
		for i < len(r.at) && r.at[i].IsZero() {
			i++
		}
		g.to = i - 1
		if g.from > 0 && i < len(r.at) {
			g.lasted = r.at[i].Sub(r.at[g.from-1])
		}
		gs = append(gs, g)
	}
	return gs
}

func (r *sinkReport) finish(out io.Writer, expect, maxGaps int, maxGap time.Duration, wantTOS int) error {
	pps := 0.0
	if r.got > 1 {
		pps = float64(r.got-1) / r.last.Sub(r.first).Seconds()
	}
	fmt.Fprintf(out, "received %d datagrams, %d damaged, %.0f pps\n", r.got, r.bad, pps)
	var ifs []string
	for idx, n := range r.byIf {
		name := fmt.Sprintf("ifindex %d", idx)
		if ifi, err := net.InterfaceByIndex(idx); err == nil {
			name = ifi.Name
		}
		ifs = append(ifs, fmt.Sprintf("%s=%d", name, n))
	}
	sort.Strings(ifs)
	fmt.Fprintf(out, "by interface: %s\n", strings.Join(ifs, " "))
	var toss []string
	for tos, n := range r.byTOS {
		toss = append(toss, fmt.Sprintf("%d=%d", tos, n))
	}
	sort.Strings(toss)
	fmt.Fprintf(out, "by tos: %s\n", strings.Join(toss, " "))
	var errs []error
	if r.count > 0 {
		gs := r.gaps()
		missing, longest := 0, time.Duration(0)
		for _, g := range gs {
			missing += g.to - g.from + 1
			longest = max(longest, g.lasted)
			fmt.Fprintf(out, "gap: seq %d..%d (%d datagrams), %v between the arrivals around it\n",
				g.from, g.to, g.to-g.from+1, g.lasted.Round(10*time.Microsecond))
		}
		fmt.Fprintf(out, "missing %d of %d in %d gaps, longest %v, %d duplicates\n",
			missing, r.count, len(gs), longest.Round(10*time.Microsecond), r.dups)
		if maxGaps >= 0 && len(gs) > maxGaps {
			errs = append(errs, fmt.Errorf("%d gaps, at most %d allowed", len(gs), maxGaps))
		}
		if maxGap > 0 && longest > maxGap {
			errs = append(errs, fmt.Errorf("a gap of %v, at most %v allowed", longest.Round(10*time.Microsecond), maxGap))
		}
		for _, g := range gs {
			if maxGap > 0 && (g.from == 0 || g.to == r.count-1) {
				errs = append(errs, fmt.Errorf("datagrams %d..%d missing at an end of the stream", g.from, g.to))
			}
		}
	}
	if wantTOS >= 0 && r.byTOS[wantTOS] != r.got {
		errs = append(errs, fmt.Errorf("%d of %d datagrams arrived with a TOS other than %d", r.got-r.byTOS[wantTOS], r.got, wantTOS))
	}
	if r.bad > 0 {
		errs = append(errs, fmt.Errorf("%d damaged datagrams", r.bad))
	}
	if expect > 0 && r.got < expect {
		errs = append(errs, fmt.Errorf("%d of %d expected datagrams arrived", r.got, expect))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	return nil
}

func tcpEcho(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tcp-echo", flag.ContinueOnError)
	listen := fs.String("listen", "", "local IP:PORT")
	dur := fs.Duration("for", 5*time.Second, "how long to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *listen == "" {
		return errors.New("tcp-echo: --listen is required")
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("tcp-echo: %w", err)
	}
	defer l.Close()
	l.(*net.TCPListener).SetDeadline(time.Now().Add(*dur))
	served := 0
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		served++
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(*dur))
			io.Copy(c, c)
		}()
	}
	fmt.Fprintf(out, "tcp-echo: served %d connections\n", served)
	return nil
}

func tcpCheck(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tcp-check", flag.ContinueOnError)
	to := fs.String("to", "", "IP:PORT of a tcp-echo")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("tcp-check: --to is required")
	}
	start := time.Now()
	c, err := net.DialTimeout("tcp", *to, 3*time.Second)
	if err != nil {
		return fmt.Errorf("tcp-check: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	msg := []byte("hello through the host stack\n")
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("tcp-check: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("tcp-check: %w", err)
	}
	if string(got) != string(msg) {
		return fmt.Errorf("tcp-check: echo came back as %q", got)
	}
	fmt.Fprintf(out, "tcp-check: %s answered, echo intact, %v\n", *to, time.Since(start).Round(time.Microsecond))
	return nil
}
