package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
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
