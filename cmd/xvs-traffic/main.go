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
  xvs-traffic send --to IP:PORT [--count N] [--size BYTES] [--rate PPS]
  xvs-traffic sink --listen IP:PORT [--for DURATION] [--expect N]
  xvs-traffic tcp-echo --listen IP:PORT [--for DURATION]
  xvs-traffic tcp-check --to IP:PORT
  xvs-traffic offloads-off DEV
  xvs-traffic blast --dev DEV --dst-mac MAC --src-ip A --dst-ip B --dst-port P
              [--size 64] [--seconds N] [--flows K] [--src-port P] [--rate PPS]
  xvs-traffic count --dev DEV [--seconds N] [--delay N] [--cpu-pid PID,...]
  xvs-traffic xdp-redirect --from DEV --to DEV [--seconds N]
  xvs-traffic echo --listen IP:PORT [--for DURATION]
  xvs-traffic ping --to IP:PORT [--rate 500] [--count 10000] [--size 24]
              [--from IP:PORT] [--wait 1s] [--over 500us]

send writes N UDP datagrams of SIZE payload bytes (>= 16) to IP:PORT and
prints how many it sent and at what rate. sink counts datagrams arriving on
IP:PORT until --for elapses (or --expect arrive), checks each payload, and
prints received/damaged counts and the rate; it exits 1 if --expect is set and
fewer arrived, or if any payload was damaged. tcp-echo echoes TCP
connections for a while; tcp-check connects, sends a line and checks the
echo (the host stack at work). offloads-off turns off TX
checksum and VLAN offload on DEV (like ethtool -K DEV tx off txvlan off
rxvlan off), which hosts behind a raw switch path need.

blast makes the kernel the traffic source (BPF_PROG_RUN live frames): an XDP
program redirects one crafted UDP frame out of DEV, about 10 Mpps on one core,
rewriting the source port over K flows; it prints the frames offered and the
rate. Pin it with taskset. The receiving veth peer needs an XDP program or GRO
on, or the kernel drops the frames. count attaches an XDP program to DEV that
counts and drops every frame and prints what arrived in the window (and the
CPU time of --cpu-pid processes over it). xdp-redirect attaches an XDP
program that redirects everything from one device to another (the in-kernel
forwarding ceiling). All three need root.

ping measures round trips through a switch: it sends --count requests at
--rate per second on a fixed schedule (a late reply never delays the next
request) to an echo, which sends every datagram back. The round trip runs
from just before the request's sendto to the kernel's receive timestamp of
the reply, so ping's own wake-up is left out (and shown apart). It prints
p50/p90/p99/p99.9/max, the replies lost, and a ping-result line of
key=value pairs for scripts. Both are IPv4; pin them with taskset.
`)
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return errors.New("missing command")
	}
	switch args[0] {
	case "send":
		return send(args[1:], out)
	case "sink":
		return sink(args[1:], out)
	case "tcp-echo":
		return tcpEcho(args[1:], out)
	case "tcp-check":
		return tcpCheck(args[1:], out)
	case "blast":
		return blast(args[1:], out)
	case "count":
		return count(args[1:], out)
	case "xdp-redirect":
		return xdpRedirect(args[1:], out)
	case "ping":
		return ping(args[1:], out)
	case "echo":
		return echo(args[1:], out)
	case "offloads-off":
		if len(args) != 2 {
			return errors.New("usage: xvs-traffic offloads-off DEV")
		}
		return testenv.DisableOffloads(args[1])
	case "help", "-h", "--help":
		usage(out)
		return nil
	}
	usage(os.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("send: --to is required")
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
	deadline := time.Now().Add(*dur)
	buf := make([]byte, 65536)
	var got, bad int
	var first, last time.Time
	for *expect == 0 || got < *expect {
		if err := c.SetReadDeadline(deadline); err != nil {
			return err
		}
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return fmt.Errorf("sink: %w", err)
		}
		now := time.Now()
		if got == 0 {
			first = now
		}
		last = now
		got++
		if !valid(buf[:n]) {
			bad++
		}
	}
	pps := 0.0
	if got > 1 {
		pps = float64(got-1) / last.Sub(first).Seconds()
	}
	fmt.Fprintf(out, "received %d datagrams, %d damaged, %.0f pps\n", got, bad, pps)
	if bad > 0 {
		return fmt.Errorf("sink: %d damaged datagrams", bad)
	}
	if *expect > 0 && got < *expect {
		return fmt.Errorf("sink: %d of %d expected datagrams arrived", got, *expect)
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
