package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// tcpBulk opens --conns connections to a tcp-echo at once, sends --bytes
// of a pattern on each and checks that all of it comes back: many TCP flows
// (distinct source ports) for a select group to share out.
func tcpBulk(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tcp-bulk", flag.ContinueOnError)
	to := fs.String("to", "", "IP:PORT of a tcp-echo")
	conns := fs.Int("conns", 16, "connections, in parallel")
	size := fs.Int("bytes", 1<<20, "bytes to send (and get back) on each")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("tcp-bulk: --to is required")
	}
	if *conns < 1 || *size < 1 {
		return fmt.Errorf("tcp-bulk: --conns %d and --bytes %d must be positive", *conns, *size)
	}
	payload := make([]byte, *size)
	fill(payload, 7)
	start := time.Now()
	errs := make([]error, *conns)
	var wg sync.WaitGroup
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = bulkOne(*to, payload, start.Add(*timeout))
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tcp-bulk: %w", err)
	}
	fmt.Fprintf(out, "tcp-bulk: %d connections to %s, %d bytes each way on each, all intact, in %v (%.1f Mbit/s each way)\n",
		*conns, *to, *size, el.Round(time.Millisecond), float64(*conns)*float64(*size)*8/el.Seconds()/1e6)
	return nil
}

func bulkOne(to string, payload []byte, deadline time.Time) error {
	c, err := net.DialTimeout("tcp", to, time.Until(deadline))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		werr <- err
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("%s: read: %w", c.LocalAddr(), err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("%s: write: %w", c.LocalAddr(), err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("%s: the echo differs", c.LocalAddr())
	}
	return nil
}
