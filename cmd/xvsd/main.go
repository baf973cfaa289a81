// Command xvsd is the xvs switch daemon: it owns the switch's ports and flow
// table and serves the REST API that xvsctl talks to.
//
//	xvsd [--listen unix:PATH | tcp:HOST:PORT] [--cpus LIST] [--state FILE]
//	     [--token-file FILE] [--log-level debug|info|warn|error]
//	     [--poll-mode adaptive|busy|sleep] [--poll-window DURATION]
//	     [--busy-poll DURATION] [--fast-path on|off] [--fast-path-flows N]
//
// With no flags (as root) it listens on unix:/run/xvs/xvsd.sock and keeps
// its configuration in /var/lib/xvs/state.json, restoring it at start. Every
// change is saved there before it is made; the file is locked (a second
// xvsd on it refuses to start), and temporary files a crash left next to it
// are removed at start. With --cpus, the pollers are pinned to those CPUs
// and every other thread of xvsd is kept off them (when another CPU is
// left). Flows whose actions the XDP program can carry out run there, never
// reaching userspace, unless --fast-path=off; --fast-path-flows says how
// many at once (the rest, of lowest priority, run in userspace). --poll-mode and --poll-window
// say how pollers wait for frames (the trade of CPU for latency, see
// datapath.PollMode).
// SIGTERM or SIGINT stop it gracefully: the API stops, then the switch
// detaches every port (the host gets its traffic back) and it exits 0.
// SIGHUP reads the token file again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xvs-project/xvs/afxdp"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/datapath"
)

const (
	defaultState   = "/var/lib/xvs/state.json"
	socketMode     = 0o660
	shutdownWithin = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stderr, newBackend)
	stop()
	os.Exit(code)
}

// backendConfig is what the switch is built from.
type backendConfig struct {
	CPUs []int // CPUs to pin pollers to; nil = the switch's default
	// PollMode and PollWindow: how pollers wait (datapath.Config).
	PollMode   datapath.PollMode
	PollWindow time.Duration
	BusyPoll   time.Duration // kernel busy polling per call; 0: off
	Logger     *slog.Logger
	// FastPathOff keeps every forwarded packet in userspace
	// (datapath.Config.FastPathOff).
	FastPathOff bool
	// FastPathFlows: how many flows the fast path runs at once
	// (datapath.Config.FastPathFlows).
	FastPathFlows int
	// OnExpire is called with the IDs of flows the switch removed by
	// timeout (datapath.Config.OnExpire).
	OnExpire func(ids []uint64)
	// OnEvent is told of what the switch does on its own
	// (datapath.Config.OnEvent).
	OnEvent func(datapath.Event)
}

// backendFactory builds the switch; the io.Closer detaches everything.
type backendFactory func(backendConfig) (ctl.Backend, io.Closer, error)

// config is the parsed command line.
type config struct {
	listen     ctl.ListenAddr
	cpus       []int
	state      string // "" = persist nothing
	token      string
	logLevel   slog.Level
	tokenFile  string
	pollMode   datapath.PollMode
	pollWindow time.Duration // as datapath.Config.PollWindow: negative = none
	busyPoll   time.Duration
	fastOff    bool
	fastFlows  int
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `usage: xvsd [flags]

xvsd runs the xvs switch and serves its REST API. Configuration changes are
persisted to the state file and restored at start.

flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// parseFlags parses args. It returns flag.ErrHelp for -h.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("xvsd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "unix:"+ctl.DefaultSocket, "API address: unix:PATH or tcp:HOST:PORT (non-loopback TCP needs --token-file)")
	cpus := fs.String("cpus", "", "CPUs to pin pollers to, e.g. 1 or 0-1 or 1,3; the rest of xvsd keeps off them (default: the switch chooses)")
	state := fs.String("state", defaultState, `state file ("" persists nothing)`)
	tokenFile := fs.String("token-file", "", "file holding a bearer token every API request must carry")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	pollMode := fs.String("poll-mode", "adaptive", "how pollers wait for frames: adaptive (poll for --poll-window after traffic, wake ahead of steady streams, else sleep), busy (never sleep: a CPU per poller) or sleep (least CPU, a wake-up per pause)")
	busyPoll := fs.Duration("busy-poll", 0, fmt.Sprintf("kernel busy polling of the ports' queues (SO_BUSY_POLL, preferred), up to this long per call, 0 to %v; for NICs with napi_defer_hard_irqs and gro_flush_timeout set (no effect on veth). 0: off", afxdp.MaxBusyPollTimeout))
	pollWindow := fs.Duration("poll-window", datapath.DefaultPollWindow, fmt.Sprintf("adaptive: how long a poller keeps polling after its last frame, 0 to %v (longer: lower latency for replies and bursts, more CPU at low rates)", datapath.MaxPollWindow))
	fastPath := fs.String("fast-path", "on", "run flows whose actions XDP can carry out in the XDP program (on) or every flow in userspace (off)")
	fastFlows := fs.Int("fast-path-flows", datapath.DefaultFastPathFlows, fmt.Sprintf("the most flows the fast path runs at once, 1 to %d; past that the flows of lowest priority run in userspace (datapath=user(records_full)). Its kernel maps start with %d slots and grow with the flows; each slot costs %d bytes of kernel memory, and 16 more per CPU", datapath.MaxFastPathFlows, datapath.InitialFastPathFlows, datapath.FastPathFlowBytes))
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stderr, fs)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := &config{state: *state, tokenFile: *tokenFile, fastFlows: *fastFlows}
	if *fastFlows < 1 || *fastFlows > datapath.MaxFastPathFlows {
		return nil, fmt.Errorf("--fast-path-flows %d: want 1 to %d", *fastFlows, datapath.MaxFastPathFlows)
	}
	switch *fastPath {
	case "on":
	case "off":
		cfg.fastOff = true
	default:
		return nil, fmt.Errorf("--fast-path %q: want on or off", *fastPath)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	if *tokenFile != "" {
		tok, err := readToken(*tokenFile)
		if err != nil {
			return nil, err
		}
		cfg.token = tok
	}
	addr, err := ctl.ParseListenAddr(*listen, cfg.token != "")
	if err != nil {
		return nil, err
	}
	cfg.listen = addr
	if cfg.cpus, err = parseCPUList(*cpus); err != nil {
		return nil, fmt.Errorf("--cpus: %w", err)
	}
	if cfg.pollMode, err = datapath.ParsePollMode(*pollMode); err != nil {
		return nil, fmt.Errorf("--poll-mode: %w", err)
	}
	if *pollWindow < 0 || *pollWindow > datapath.MaxPollWindow {
		return nil, fmt.Errorf("--poll-window %v: want 0 to %v", *pollWindow, datapath.MaxPollWindow)
	}
	cfg.pollWindow = *pollWindow
	if *busyPoll < 0 || *busyPoll > afxdp.MaxBusyPollTimeout {
		return nil, fmt.Errorf("--busy-poll %v: want 0 to %v", *busyPoll, afxdp.MaxBusyPollTimeout)
	}
	cfg.busyPoll = *busyPoll
	if cfg.pollWindow == 0 {
		cfg.pollWindow = -1 // none; the switch's zero is its default
	}
	return cfg, nil
}

// readToken reads a bearer token: the file's content without surrounding
// white space, which must not be empty.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("token file %s: the token must be one word", path)
	}
	return tok, nil
}

// reloadToken reads the token file again (SIGHUP): a token that was
// changed takes effect at once. A file that cannot be read, or is empty,
// keeps the old token.
func reloadToken(cfg *config, srv *ctl.Server, log *slog.Logger) {
	if cfg.tokenFile == "" {
		log.Warn("SIGHUP: no --token-file to read again; nothing to do")
		return
	}
	tok, err := readToken(cfg.tokenFile)
	if err != nil {
		log.Error("SIGHUP: token not reloaded, the old one stays", "err", err)
		return
	}
	srv.SetToken(tok)
	log.Info("SIGHUP: token reloaded", "path", cfg.tokenFile)
}

// run is xvsd without the process around it: it returns the exit code and
// stops gracefully when ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer, newBackend backendFactory) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "xvsd:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := serve(ctx, cfg, log, newBackend); err != nil {
		log.Error("xvsd failed", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg *config, log *slog.Logger, newBackend backendFactory) (err error) {
	if cfg.tokenFile != "" {
		if fi, err := os.Stat(cfg.tokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("token file is readable by others", "path", cfg.tokenFile, "mode", fi.Mode().Perm())
		}
	}
	var store *ctl.Store
	state := &ctl.State{}
	if cfg.state != "" {
		// Fail now, not at the first change, if the state cannot be kept.
		if err := os.MkdirAll(filepath.Dir(cfg.state), 0o755); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		store = ctl.NewStore(cfg.state)
		if err := store.Lock(); err != nil {
			return err
		}
		defer store.Unlock()
		removed, err := store.CleanTemp()
		for _, f := range removed {
			log.Warn("removed a temporary state file a crash left", "path", f)
		}
		if err != nil {
			log.Warn("remove temporary state files", "err", err)
		}
		if state, err = store.Load(); err != nil {
			return fmt.Errorf("%w (fix or move it away to start empty)", err)
		}
	}

	// The switch learns of the server only once both exist: flows that
	// expire before then are saved with the next change, and events before
	// then (none: ports come with Restore) are not published.
	var server atomic.Pointer[ctl.Server]
	onExpire := func(ids []uint64) {
		if srv := server.Load(); srv != nil {
			srv.FlowsExpired(ids)
		}
	}
	if len(cfg.cpus) > 0 {
		// The pollers get their CPUs to themselves: the rest of xvsd
		// (garbage collector, API, timers) runs elsewhere.
		if rest, err := datapath.KeepOffCPUs(cfg.cpus); err != nil {
			log.Warn("pollers share their cpus with the rest of xvsd", "err", err)
		} else {
			log.Info("pollers have their cpus to themselves", "pollers", cfg.cpus, "others", rest)
		}
	}
	onEvent := func(e datapath.Event) {
		if srv := server.Load(); srv != nil {
			srv.SwitchEvent(e)
		}
	}
	backend, closer, err := newBackend(backendConfig{CPUs: cfg.cpus, PollMode: cfg.pollMode, PollWindow: cfg.pollWindow, BusyPoll: cfg.busyPoll,
		Logger: log, OnExpire: onExpire, OnEvent: onEvent, FastPathOff: cfg.fastOff, FastPathFlows: cfg.fastFlows})
	if err != nil {
		return fmt.Errorf("start switch: %w", err)
	}
	defer func() {
		if cerr := closer.Close(); cerr != nil {
			log.Error("close switch", "err", cerr)
			if err == nil {
				err = fmt.Errorf("close switch: %w", cerr)
			}
		} else {
			log.Info("switch closed")
		}
	}()

	srv, err := ctl.NewServer(ctl.Options{Backend: backend, Store: store, Logger: log, Token: cfg.token, Listen: cfg.listen})
	if err != nil {
		return err
	}
	defer srv.Close()
	server.Store(srv)
	res, err := srv.Restore(state)
	if err != nil {
		return fmt.Errorf("state file %s: %w (fix the entry, or move the file away to start empty)", cfg.state, err)
	}
	if len(state.Ports)+len(state.Groups)+len(state.Flows) > 0 {
		log.Info("state restored", "path", cfg.state, "ports", res.Ports, "ports_absent", res.PortsAbsent,
			"groups", res.Groups, "flows", res.Flows)
	}

	ln, err := ctl.Listen(cfg.listen, socketMode)
	if err != nil {
		return err
	}
	hs := ctl.NewHTTPServer(srv, log)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("xvsd listening", "addr", cfg.listen.String(), "state", cfg.state, "auth", cfg.token != "",
		"poll_mode", cfg.pollMode, "poll_window", max(cfg.pollWindow, 0))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			done = true
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			reloadToken(cfg, srv, log)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWithin)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
		hs.Close()
	}
	<-served
	return nil
}
