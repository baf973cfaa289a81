package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/testenv"
)

func TestPayloadCheck(t *testing.T) {
	b := make([]byte, 64)
	fill(b, 42)
	if !valid(b) {
		t.Fatal("a fresh payload must be valid")
	}
	b[40] ^= 1
	if valid(b) {
		t.Fatal("a flipped byte must be caught")
	}
	if valid(b[:10]) {
		t.Fatal("a short payload must be invalid")
	}
}

func TestSendSinkLoopback(t *testing.T) {
	// Find a free port, then let sink listen there.
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	done := make(chan error, 1)
	var sinkOut bytes.Buffer
	go func() { done <- run([]string{"sink", "--listen", addr, "--expect", "100", "--for", "5s"}, &sinkOut) }()
	var sendOut bytes.Buffer
	// The sink may not be listening yet; send at a modest rate for long enough.
	if err := run([]string{"send", "--to", addr, "--count", "3000", "--rate", "20000"}, &sendOut); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("sink: %v (%s)", err, sinkOut.String())
	}
	if !strings.Contains(sinkOut.String(), "received 100 datagrams, 0 damaged") {
		t.Fatalf("sink said %q", sinkOut.String())
	}
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"send"}, {"send", "--to", "127.0.0.1:1", "--size", "3"}, {"sink"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}

func TestTCPEchoCheck(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	done := make(chan error, 1)
	go func() { done <- run([]string{"tcp-echo", "--listen", addr, "--for", "1s"}, &bytes.Buffer{}) }()
	var out bytes.Buffer
	var cerr error
	for i := 0; i < 50; i++ { // until the echo server listens
		if cerr = run([]string{"tcp-check", "--to", addr}, &out); cerr == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if cerr != nil {
		t.Fatal(cerr)
	}
	if !strings.Contains(out.String(), "echo intact") {
		t.Fatalf("tcp-check said %q", out.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSinkGapsAndTOS(t *testing.T) {
	r := newSinkReport(10)
	t0 := time.Unix(0, 0)
	b := make([]byte, 32)
	for _, seq := range []int{0, 1, 2, 6, 7, 9} {
		fill(b, uint64(seq))
		r.add(b, testenvInfo(3, 184), t0.Add(time.Duration(seq)*time.Millisecond))
	}
	gs := r.gaps()
	if len(gs) != 2 || gs[0] != (gap{3, 5, 4 * time.Millisecond}) || gs[1] != (gap{8, 8, 2 * time.Millisecond}) {
		t.Fatalf("gaps %+v", gs)
	}
	var out bytes.Buffer
	if err := r.finish(&out, 0, 2, 5*time.Millisecond, 184); err != nil {
		t.Fatalf("within limits: %v\n%s", err, out.String())
	}
	if err := r.finish(&out, 0, 1, 0, -1); err == nil || !strings.Contains(err.Error(), "2 gaps") {
		t.Errorf("too many gaps: %v", err)
	}
	if err := r.finish(&out, 0, -1, 3*time.Millisecond, -1); err == nil || !strings.Contains(err.Error(), "a gap of 4ms") {
		t.Errorf("too long a gap: %v", err)
	}
	if err := r.finish(&out, 0, -1, 0, 0); err == nil || !strings.Contains(err.Error(), "TOS other than 0") {
		t.Errorf("wrong TOS: %v", err)
	}
	// Loss at the end of the stream is not hidden as "no gap".
	r = newSinkReport(4)
	fill(b, 0)
	r.add(b, testenvInfo(3, 0), t0)
	if err := r.finish(&out, 0, -1, time.Second, -1); err == nil || !strings.Contains(err.Error(), "at an end") {
		t.Errorf("loss at the end: %v", err)
	}
}

func TestTCPBulk(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	done := make(chan error, 1)
	go func() { done <- run([]string{"tcp-echo", "--listen", addr, "--for", "3s"}, &bytes.Buffer{}) }()
	time.Sleep(100 * time.Millisecond)
	var out bytes.Buffer
	if err := run([]string{"tcp-bulk", "--to", addr, "--conns", "8", "--bytes", "300000"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "8 connections") || !strings.Contains(out.String(), "all intact") {
		t.Fatalf("tcp-bulk said %q", out.String())
	}
	<-done
}

func testenvInfo(ifindex, tos int) testenv.Info { return testenv.Info{Ifindex: ifindex, TOS: tos} }
