package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/ctl/client"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
)

// syncBuffer is a bytes.Buffer the daemon's logger and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeFactory hands out one fake switch and records how it was built.
type fakeFactory struct {
	backend *ctltest.Backend
	cfg     backendConfig
	closed  bool
}

func (f *fakeFactory) new(cfg backendConfig) (ctl.Backend, io.Closer, error) {
	f.cfg = cfg
	f.backend = ctltest.New()
	return f.backend, closerFunc(func() error {
		f.closed = true
		return f.backend.Close()
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// daemon is a running xvsd.
type daemon struct {
	cancel  context.CancelFunc
	done    chan int
	stderr  *syncBuffer
	client  *client.Client
	factory *fakeFactory
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}, factory: &fakeFactory{}}
	go func() { d.done <- run(ctx, args, d.stderr, d.factory.new) }()
	t.Cleanup(func() {
		cancel()
		<-d.done
	})
	var server string
	for i, a := range args {
		if a == "--listen" {
			server = args[i+1]
		}
	}
	if strings.HasPrefix(server, "tcp:") {
		server = "http://" + strings.TrimPrefix(server, "tcp:")
	}
	c, err := client.New(server, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	d.client = c
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Health(context.Background())
		if err == nil {
			return d
		}
		select {
		case code := <-d.done:
			d.done <- code
			t.Fatalf("xvsd exited with %d before serving: %s", code, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("xvsd never answered: %v\n%s", err, d.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop stops the daemon as SIGTERM would and returns its exit code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	d.cancel()
	select {
	case code := <-d.done:
		d.done <- code
		return code
	case <-time.After(15 * time.Second):
		t.Fatal("xvsd did not stop")
		return -1
	}
}

func TestDaemonLifecycle(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "xvsd.sock")
	state := filepath.Join(dir, "lib", "state.json")
	args := []string{"--listen", "unix:" + sock, "--state", state, "--cpus", "0-1", "--log-level", "debug"}
	ctx := context.Background()

	d := startDaemon(t, args...)
	if got := d.factory.cfg.CPUs; len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Errorf("switch built with CPUs %v, want [0 1]", got)
	}
	if d.factory.cfg.FastPathOff {
		t.Error("the fast path is off by default")
	}
	if n := d.factory.cfg.FastPathFlows; n != datapath.DefaultFastPathFlows {
		t.Errorf("the fast path runs %d flows by default, want %d", n, datapath.DefaultFastPathFlows)
	}
	for _, name := range []string{"p0", "p1"} {
		if _, err := d.client.AddPort(ctx, api.PortRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != socketMode {
		t.Errorf("socket: %v, %v; want mode %v", fi, err, os.FileMode(socketMode))
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code %d: %s", code, d.stderr)
	}
	if !d.factory.closed {
		t.Error("the switch was not closed on shutdown")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(d.stderr.String(), "switch closed") {
		t.Errorf("log lacks the shutdown:\n%s", d.stderr)
	}

	// A restart restores the ports from the state file.
	d = startDaemon(t, append(args, "--fast-path=off", "--fast-path-flows", "100000")...)
	if !d.factory.cfg.FastPathOff {
		t.Error("--fast-path=off did not reach the switch")
	}
	if n := d.factory.cfg.FastPathFlows; n != 100000 {
		t.Errorf("--fast-path-flows 100000 reached the switch as %d", n)
	}
	ports, err := d.client.Ports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || ports[0].Name != "p0" || ports[1].Name != "p1" {
		t.Fatalf("ports after restart = %+v", ports)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code %d: %s", code, d.stderr)
	}
}

func TestDaemonTCPToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	f := &fakeFactory{}
	done := make(chan int, 1)
	// Port 0 cannot be dialled back, so find a free one first.
	addr := freeLoopbackAddr(t)
	go func() {
		done <- run(ctx, []string{"--listen", "tcp:" + addr, "--state", "", "--token-file", tokenFile}, stderr, f.new)
	}()
	anon, _ := client.New("http://"+addr, client.Options{})
	authed, _ := client.New("http://"+addr, client.Options{Token: "hunter2"})
	defer anon.Close()
	defer authed.Close()
	deadline := time.Now().Add(10 * time.Second)
	for authed.Health(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("xvsd never answered:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ae *client.APIError
	if _, err := anon.Ports(context.Background()); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("request without token: %v", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := ctl.Listen(ctl.ListenAddr{Network: "tcp", Address: "127.0.0.1:0"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestDaemonRefuses(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-token")
	os.WriteFile(empty, []byte("\n"), 0o600)
	corrupt := filepath.Join(dir, "corrupt.json")
	os.WriteFile(corrupt, []byte(`{"version":1,"ports":[`), 0o600)
	sock := "unix:" + filepath.Join(dir, "x.sock")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"public tcp without token", []string{"--listen", "tcp:0.0.0.0:6680"}, 2, "not loopback"},
		{"all interfaces without token", []string{"--listen", "tcp::6680"}, 2, "not loopback"},
		{"empty token file", []string{"--listen", "tcp:0.0.0.0:6680", "--token-file", empty}, 2, "is empty"},
		{"missing token file", []string{"--token-file", filepath.Join(dir, "nope")}, 2, "token file"},
		{"bad cpus", []string{"--cpus", "2-1"}, 2, "--cpus"},
		{"bad log level", []string{"--log-level", "loud"}, 2, "--log-level"},
		{"bad fast path", []string{"--fast-path", "maybe"}, 2, `--fast-path "maybe": want on or off`},
		{"no fast path flows", []string{"--fast-path-flows", "0"}, 2, `--fast-path-flows 0: want 1 to 1048576`},
		{"too many fast path flows", []string{"--fast-path-flows", "2000000"}, 2, `--fast-path-flows 2000000: want 1 to 1048576`},
		{"bad listen", []string{"--listen", "udp:1"}, 2, "unknown network"},
		{"extra argument", []string{"now"}, 2, "unexpected argument"},
		{"unknown flag", []string{"--turbo"}, 2, "turbo"},
		{"bad poll mode", []string{"--poll-mode", "spin"}, 2, "--poll-mode"},
		{"negative poll window", []string{"--poll-window", "-1us"}, 2, "--poll-window"},
		{"poll window too long", []string{"--poll-window", "2s"}, 2, "--poll-window"},
		{"poll window without a unit", []string{"--poll-window", "200"}, 2, "poll-window"},
		{"busy poll too long", []string{"--busy-poll", "2s"}, 2, "--busy-poll"},
		{"corrupt state", []string{"--listen", sock, "--state", corrupt}, 1, "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			f := &fakeFactory{}
			code := run(context.Background(), tt.args, &stderr, f.new)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, want %d; stderr %q does not say %q", code, tt.code, stderr.String(), tt.want)
			}
			if f.backend != nil {
				t.Error("the switch was built although xvsd refused to start")
			}
		})
	}
}

// The poll flags reach the switch: the defaults, and what is asked for
// (a zero window is none, not the switch's default).
func TestDaemonPollFlags(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		mode   datapath.PollMode
		window time.Duration
		busy   time.Duration
	}{
		{"defaults", nil, datapath.PollAdaptive, datapath.DefaultPollWindow, 0},
		{"busy", []string{"--poll-mode", "busy"}, datapath.PollBusy, datapath.DefaultPollWindow, 0},
		{"window", []string{"--poll-window", "1ms", "--busy-poll", "50us"}, datapath.PollAdaptive, time.Millisecond, 50 * time.Microsecond},
		{"no window", []string{"--poll-mode", "adaptive", "--poll-window", "0"}, datapath.PollAdaptive, -1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--listen", "unix:" + filepath.Join(t.TempDir(), "s"), "--state", ""}, c.args...)
			d := startDaemon(t, args...)
			if d.stop(t) != 0 {
				t.Fatalf("exit: %s", d.stderr)
			}
			cfg := d.factory.cfg // after the daemon's goroutine ended
			if cfg.PollMode != c.mode || cfg.PollWindow != c.window || cfg.BusyPoll != c.busy {
				t.Fatalf("switch built with mode %v window %v busy poll %v, want %v %v %v", cfg.PollMode, cfg.PollWindow, cfg.BusyPoll, c.mode, c.window, c.busy)
			}
		})
	}
}

func TestDaemonBackendFails(t *testing.T) {
	var stderr syncBuffer
	fail := func(backendConfig) (ctl.Backend, io.Closer, error) {
		return nil, nil, errors.New("no xdp for you")
	}
	code := run(context.Background(), []string{"--listen", "unix:" + filepath.Join(t.TempDir(), "s"), "--state", ""}, &stderr, fail)
	if code != 1 || !strings.Contains(stderr.String(), "no xdp for you") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestDaemonHelp(t *testing.T) {
	var stderr syncBuffer
	if code := run(context.Background(), []string{"-h"}, &stderr, nil); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"usage: xvsd", "-listen", "-cpus", "-state", "-token-file", "-log-level", "-poll-mode", "-poll-window", "-busy-poll", "-fast-path", "-fast-path-flows"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stderr.String())
		}
	}
}
