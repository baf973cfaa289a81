package testenv

import (
	"net"
	"testing"
	"time"
)

// TestVethUDPToLocal proves the helper builds a working topology: a UDP
// datagram sent from inside the namespace arrives at the local end.
func TestVethUDPToLocal(t *testing.T) {
	ns := NewNS(t)
	v := NewVeth(t, ns, "tv", VethOptions{PeerIP: "10.250.0.2/24", LocalIP: "10.250.0.1/24"})
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: v.LocalAddr, Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.LocalAddr().(*net.UDPAddr).Port
	err = ns.Do(func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: v.LocalAddr, Port: port})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, from, err := l.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("nothing arrived from the namespace: %v", err)
	}
	if string(buf[:n]) != "hello" || !from.IP.Equal(v.PeerAddr) {
		t.Fatalf("got %q from %v", buf[:n], from)
	}
}
