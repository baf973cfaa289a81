package ctl

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseListenAddr(t *testing.T) {
	tests := []struct {
		name, addr string
		token      bool
		want       ListenAddr
		err        string
	}{
		{"unix", "unix:/run/xvs/xvsd.sock", false, ListenAddr{"unix", "/run/xvs/xvsd.sock"}, ""},
		{"tcp loopback", "tcp:127.0.0.1:6680", false, ListenAddr{"tcp", "127.0.0.1:6680"}, ""},
		{"tcp loopback 8", "tcp:127.0.0.9:6680", false, ListenAddr{"tcp", "127.0.0.9:6680"}, ""},
		{"tcp v6 loopback", "tcp:[::1]:6680", false, ListenAddr{"tcp", "[::1]:6680"}, ""},
		{"tcp localhost", "tcp:localhost:6680", false, ListenAddr{"tcp", "localhost:6680"}, ""},
		{"tcp any without token", "tcp::6680", false, ListenAddr{}, "not loopback"},
		{"tcp 0.0.0.0 without token", "tcp:0.0.0.0:6680", false, ListenAddr{}, "not loopback"},
		{"tcp public without token", "tcp:192.0.2.1:6680", false, ListenAddr{}, "not loopback"},
		{"tcp public with token", "tcp:192.0.2.1:6680", true, ListenAddr{"tcp", "192.0.2.1:6680"}, ""},
		{"tcp any with token", "tcp::6680", true, ListenAddr{"tcp", ":6680"}, ""},
		{"tcp hostname", "tcp:example.com:6680", true, ListenAddr{}, "IP address or localhost"},
		{"tcp no port", "tcp:127.0.0.1", false, ListenAddr{}, "missing port"},
		{"tcp empty port", "tcp:127.0.0.1:", false, ListenAddr{}, "no port"},
		{"unix empty", "unix:", false, ListenAddr{}, "empty socket path"},
		{"no network", "/run/xvs.sock", false, ListenAddr{}, "want unix:PATH"},
		{"unknown network", "udp:127.0.0.1:1", false, ListenAddr{}, "unknown network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseListenAddr(tt.addr, tt.token)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestListenUnix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "xvs")
	path := filepath.Join(dir, "xvsd.sock")
	addr := ListenAddr{"unix", path}

	ln, err := Listen(addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o755 {
		t.Errorf("dir mode %v, want 0755", di.Mode().Perm())
	}

	// A live server is not displaced.
	if _, err := Listen(addr, 0); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Fatalf("second listen: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after close: %v", err)
	}

	// A stale socket (its server died without closing) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err = Listen(addr, 0o600)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	ln.Close()

	// Anything else at the path is left alone.
	if err := os.WriteFile(path, []byte("important"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(addr, 0); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "important" {
		t.Fatal("regular file was touched")
	}
}
