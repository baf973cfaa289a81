package ctl

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xvs-project/xvs/api"
)

// DefaultSocket is where xvsd listens and xvsctl connects by default.
const DefaultSocket = api.DefaultSocket

// ListenAddr is a parsed --listen address.
type ListenAddr struct {
	Network string // "unix" or "tcp"
	Address string // socket path, or host:port
}

func (a ListenAddr) String() string { return a.Network + ":" + a.Address }

// ParseListenAddr parses "unix:PATH" or "tcp:HOST:PORT". A TCP host must be an
// IP address or "localhost". When haveToken is false, a TCP address that is
// not loopback is refused: the API would be open to the network without
// authentication.
func ParseListenAddr(s string, haveToken bool) (ListenAddr, error) {
	network, rest, ok := strings.Cut(s, ":")
	if !ok {
		return ListenAddr{}, fmt.Errorf("listen address %q: want unix:PATH or tcp:HOST:PORT", s)
	}
	switch network {
	case "unix":
		if rest == "" {
			return ListenAddr{}, fmt.Errorf("listen address %q: empty socket path", s)
		}
		return ListenAddr{Network: "unix", Address: rest}, nil
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return ListenAddr{}, fmt.Errorf("listen address %q: %w", s, err)
		}
		if port == "" {
			return ListenAddr{}, fmt.Errorf("listen address %q: no port", s)
		}
		loopback := host == "localhost"
		if !loopback && host != "" {
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return ListenAddr{}, fmt.Errorf("listen address %q: host must be an IP address or localhost", s)
			}
			loopback = ip.IsLoopback()
		}
		if !loopback && !haveToken {
			return ListenAddr{}, fmt.Errorf("listen address %q is not loopback: refusing to serve the API to the network without --token-file", s)
		}
		return ListenAddr{Network: "tcp", Address: rest}, nil
	}
	return ListenAddr{}, fmt.Errorf("listen address %q: unknown network %q (want unix or tcp)", s, network)
}

// Listen opens a listener at a. For a unix socket it creates the directory
// (0755), removes a stale socket left by a server that died (but refuses if a
// server still answers there, or if the path is not a socket), and sets the
// socket's mode to perm (0 means 0660). The socket is removed when the
// listener is closed.
func Listen(a ListenAddr, perm fs.FileMode) (net.Listener, error) {
	if a.Network != "unix" {
		ln, err := net.Listen(a.Network, a.Address)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		return ln, nil
	}
	if perm == 0 {
		perm = 0o660
	}
	path := a.Address
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(path, perm); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another server is listening there", path)
	}
	return os.Remove(path)
}

// Timeouts of the HTTP server NewHTTPServer makes. A request has
// HeaderTimeout to send its headers and the body timeout (Options) for its
// body; an answer must be written within WriteTimeout; an idle keep-alive
// connection closes after IdleTimeout. The event stream is exempt from the
// read and write timeouts: it lives as long as its client, and each write
// of it has streamWriteTimeout.
const (
	HeaderTimeout = 10 * time.Second
	ReadTimeout   = 2 * time.Minute
	WriteTimeout  = 2 * time.Minute
	IdleTimeout   = 2 * time.Minute
)

// NewHTTPServer returns the http.Server xvsd serves h with: timeouts on
// every stage of a request (a client that declares a body and sends
// nothing is cut off), errors to log.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: HeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
