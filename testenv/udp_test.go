package testenv

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A datagram between two UDPConns arrives intact, says who sent it, and
// carries a kernel receive time between its send and its read; a read
// with nothing to read ends at the timeout.
func TestUDPConn(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	a, err := ListenUDP(lo)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ListenUDP(lo)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.LocalAddr().Port() == 0 || a.LocalAddr().Addr() != lo.Addr() {
		t.Fatalf("local address %v", a.LocalAddr())
	}
	if err := b.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	msg := []byte("round and round")
	before := time.Now()
	if err := a.WriteTo(msg, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, stamp, err := b.ReadFrom(buf)
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], msg) || from != a.LocalAddr() {
		t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, msg, a.LocalAddr())
	}
	if stamp.Before(before.Add(-time.Millisecond)) || stamp.After(after) {
		t.Fatalf("receive time %v not within [%v, %v]", stamp, before, after)
	}

	if err := b.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, _, err := b.ReadFrom(buf); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read with nothing sent: %v, want EAGAIN", err)
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Fatalf("read timed out after %v, want 50ms", el)
	}
	if _, err := ListenUDP(netip.MustParseAddrPort("[::1]:0")); err == nil {
		t.Fatal("an IPv6 address was accepted")
	}
}
