package main

// ping and echo: round-trip time through a switch at a given request rate.
//
// ping sends requests on a fixed schedule (open loop: a slow reply never
// delays the next request, so a stall shows in every request it holds up)
// and echo sends every datagram back to where it came from. Both use
// testenv.UDPConn: blocking sockets, read on a locked OS thread, without the
// Go netpoller. A request carries its sequence number and the time just
// before its sendto; the round trip ends at the kernel's receive timestamp
// of the reply (SO_TIMESTAMPNS), so ping's own wake-up is not part of it
// (it is reported apart, as "reader wake-up"). What is measured: the
// pinger's send path, the switch twice, the echo host's wake-up and send.

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/testenv"
)

// A ping payload: magic, sequence number, send time (Unix ns), length.
const (
	pingMagic   = 0x78767370 // "xvsp"
	pingMinSize = 24
)

func putPing(b []byte, seq uint64, sent int64) {
	binary.BigEndian.PutUint32(b[0:], pingMagic)
	binary.BigEndian.PutUint64(b[4:], seq)
	binary.BigEndian.PutUint64(b[12:], uint64(sent))
	binary.BigEndian.PutUint32(b[20:], uint32(len(b)))
}

func readPing(b []byte) (seq uint64, sent int64, ok bool) {
	if len(b) < pingMinSize || binary.BigEndian.Uint32(b) != pingMagic || binary.BigEndian.Uint32(b[20:]) != uint32(len(b)) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[4:]), int64(binary.BigEndian.Uint64(b[12:])), true
}

// pingResult is what one ping run measured. RTTs are in nanoseconds, by
// sequence number; -1: no reply.
type pingResult struct {
	Sent, Received, Damaged, Duplicates int
	Rate                                float64 // requests per second actually sent
	RTT                                 []int64
	Wake                                []int64 // reply's kernel timestamp -> ping's reader running
}

// pctl returns the q-quantile (0..1) of sorted v, nearest rank.
func pctl(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// summary prints the result: a human line and a key=value line for scripts.
func (r *pingResult) summary(w io.Writer, over time.Duration) {
	rtt := make([]int64, 0, len(r.RTT))
	for _, v := range r.RTT {
		if v >= 0 {
			rtt = append(rtt, v)
		}
	}
	slices.Sort(rtt)
	wake := slices.Clone(r.Wake)
	slices.Sort(wake)
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	var sum, above int64
	for _, v := range rtt {
		sum += v
		if v > int64(over) {
			above++
		}
	}
	mean := int64(0)
	if len(rtt) > 0 {
		mean = sum / int64(len(rtt))
	}
	lost := r.Sent - r.Received
	fmt.Fprintf(w, "ping: %d sent at %.0f/s, %d replies, %d lost, %d damaged, %d duplicates\n",
		r.Sent, r.Rate, r.Received, lost, r.Damaged, r.Duplicates)
	fmt.Fprintf(w, "ping: rtt us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f mean %.1f; %d above %v\n",
		us(pctl(rtt, .5)), us(pctl(rtt, .9)), us(pctl(rtt, .99)), us(pctl(rtt, .999)), us(pctl(rtt, 1)), us(mean), above, over)
	fmt.Fprintf(w, "ping: reader wake-up us (not in rtt): p50 %.1f p99 %.1f max %.1f\n",
		us(pctl(wake, .5)), us(pctl(wake, .99)), us(pctl(wake, 1)))
	fmt.Fprintf(w, "ping-result sent=%d received=%d lost=%d damaged=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f above=%d\n",
		r.Sent, r.Received, lost, r.Damaged, us(pctl(rtt, .5)), us(pctl(rtt, .9)), us(pctl(rtt, .99)), us(pctl(rtt, .999)), us(pctl(rtt, 1)), us(mean), above)
}

func ping(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	to := fs.String("to", "", "echo server IP:PORT (IPv4)")
	from := fs.String("from", "0.0.0.0:0", "local IP:PORT")
	rate := fs.Float64("rate", 500, "requests per second")
	count := fs.Int("count", 10000, "requests to send")
	size := fs.Int("size", pingMinSize, fmt.Sprintf("payload bytes per request (>= %d)", pingMinSize))
	wait := fs.Duration("wait", time.Second, "how long to wait for replies after the last request")
	over := fs.Duration("over", 500*time.Microsecond, "also count the round trips longer than this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *to == "":
		return errors.New("ping: --to is required")
	case *rate <= 0 || *rate > 1e6:
		return fmt.Errorf("ping: --rate %v out of range (0, 1e6]", *rate)
	case *count < 1:
		return fmt.Errorf("ping: --count %d must be positive", *count)
	case *size < pingMinSize || *size > 65000:
		return fmt.Errorf("ping: --size %d out of range %d..65000", *size, pingMinSize)
	case *wait <= 0:
		return fmt.Errorf("ping: --wait %v must be positive", *wait)
	}
	dst, err := netip.ParseAddrPort(*to)
	if err != nil || !dst.Addr().Is4() {
		return fmt.Errorf("ping: --to %q: want IPv4:PORT", *to)
	}
	src, err := netip.ParseAddrPort(*from)
	if err != nil || !src.Addr().Is4() {
		return fmt.Errorf("ping: --from %q: want IPv4:PORT", *from)
	}
	c, err := testenv.ListenUDP(src)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	defer c.Close()
	r, err := pingRun(c, dst, *rate, *count, *size, *wait)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	r.summary(out, *over)
	if r.Received == 0 {
		return errors.New("ping: no replies")
	}
	return nil
}

// pingRun sends count requests of size bytes to dst at rate, collecting
// replies on c until every request was answered or wait passed after the
// last one.
func pingRun(c *testenv.UDPConn, dst netip.AddrPort, rate float64, count, size int, wait time.Duration) (*pingResult, error) {
	if err := c.SetReadTimeout(20 * time.Millisecond); err != nil {
		return nil, err
	}
	r := &pingResult{RTT: make([]int64, count), Wake: make([]int64, 0, count)}
	for i := range r.RTT {
		r.RTT[i] = -1
	}
	var sent atomic.Int64 // requests sent so far
	var sendDone atomic.Int64
	sendErr := make(chan error, 1)
	go func() {
		// Pace on this thread with a 1 ns timer slack (the default 50 us
		// would smear the schedule).
		runtime.LockOSThread()
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
		buf := make([]byte, size)
		interval := time.Duration(float64(time.Second) / rate)
		start := time.Now()
		var err error
		for i := 0; i < count; i++ {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				ts := unix.NsecToTimespec(int64(d))
				for unix.Nanosleep(&ts, &ts) == unix.EINTR {
				}
			}
			putPing(buf, uint64(i), time.Now().UnixNano())
			if err = c.WriteTo(buf, dst); err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
				break
			}
			err = nil
			sent.Store(int64(i + 1))
		}
		r.Rate = float64(sent.Load()) / time.Since(start).Seconds()
		sendDone.Store(time.Now().UnixNano())
		sendErr <- err
	}()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 65536)
	for {
		if d := sendDone.Load(); d != 0 {
			if r.Received >= int(sent.Load()) || time.Now().UnixNano() > d+int64(wait) {
				break
			}
		}
		n, _, stamp, err := c.ReadFrom(buf)
		now := time.Now()
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return nil, err
		}
		seq, t0, ok := readPing(buf[:n])
		if !ok || seq >= uint64(count) {
			r.Damaged++
			continue
		}
		if r.RTT[seq] >= 0 {
			r.Duplicates++
			continue
		}
		end := stamp
		if end.IsZero() {
			end = now
		} else {
			r.Wake = append(r.Wake, int64(now.Sub(stamp)))
		}
		r.RTT[seq] = max(0, end.UnixNano()-t0)
		r.Received++
	}
	if err := <-sendErr; err != nil {
		return nil, err
	}
	r.Sent = int(sent.Load())
	return r, nil
}

func echo(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "", "local IP:PORT (IPv4)")
	dur := fs.Duration("for", 30*time.Second, "how long to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *listen == "" {
		return errors.New("echo: --listen is required")
	}
	laddr, err := netip.ParseAddrPort(*listen)
	if err != nil || !laddr.Addr().Is4() {
		return fmt.Errorf("echo: --listen %q: want IPv4:PORT", *listen)
	}
	c, err := testenv.ListenUDP(laddr)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	defer c.Close()
	fmt.Fprintf(out, "echo: serving %v for %v\n", c.LocalAddr(), *dur)
	n, err := echoServe(c, time.Now().Add(*dur))
	fmt.Fprintf(out, "echo: %d datagrams echoed\n", n)
	return err
}

// echoServe sends every datagram c receives back to its sender until
// deadline, and returns how many it echoed.
func echoServe(c *testenv.UDPConn, deadline time.Time) (int, error) {
	if err := c.SetReadTimeout(50 * time.Millisecond); err != nil {
		return 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 65536)
	echoed := 0
	for time.Now().Before(deadline) {
		n, from, _, err := c.ReadFrom(buf)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return echoed, err
		}
		if err := c.WriteTo(buf[:n], from); err != nil {
			continue // ENOBUFS and friends: the requester counts it lost
		}
		echoed++
	}
	return echoed, nil
}
