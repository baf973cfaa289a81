package ctl

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// DefaultMaxBodyBytes bounds a request body unless Options says otherwise:
// room for a few hundred thousand flows in one transaction.
const DefaultMaxBodyBytes = 32 << 20

// Bodies: how long a request may take to send its body, and how much of
// them the server holds. A body that stops arriving for the idle timeout
// is cut off, and so is one that has not arrived in bodyTotal (a minute,
// plus a second per MiB it declares: at least 1 MiB/s). Bodies take from a
// budget of bodyBudgetBodies times the body limit as they arrive (see
// budget), so a few of the largest are read and applied at once (and
// small ones beside them) and the rest wait, at most defaultBudgetWait.
const (
	DefaultBodyIdleTimeout = 10 * time.Second
	bodyBudgetBodies       = 2
	bodyChunk              = 64 << 10 // what a body takes of the budget at first
	bodyBudgetSmall        = 64 * bodyChunk
	defaultBudgetWait      = time.Minute
)

// bodyTotal is how long a body of n bytes (-1: unknown, up to max) may take.
func bodyTotal(n, max int64) time.Duration {
	if n < 0 {
		n = max
	}
	return time.Minute + time.Duration(n>>20)*time.Second
}

// Options configure a Server.
type Options struct {
	Backend Backend // required
	// Store receives the configuration with every change, before the
	// change goes live; nil persists nothing.
	Store *Store
	// Logger; nil discards.
	Logger *slog.Logger
	// Token, if not empty, must come with every request as
	// "Authorization: Bearer TOKEN". SetToken changes it.
	Token string
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// BodyIdleTimeout cuts off a request whose body stops arriving for
	// that long; 0 means DefaultBodyIdleTimeout.
	BodyIdleTimeout time.Duration
	// Listen is the address served. On TCP without a token, requests
	// whose Host header is not this address, a loopback address or
	// localhost are refused (a web page that rebinds its DNS name to
	// 127.0.0.1 sends its own name).
	Listen ListenAddr
}

// Server serves the REST API for one Backend. It is an http.Handler; all its
// methods are safe for concurrent use.
type Server struct {
	backend    Backend
	store      *Store
	log        *slog.Logger
	token      atomic.Pointer[[]byte] // SHA-256 of the bearer token; nil: no authentication
	maxBody    int64
	bodyIdle   time.Duration
	hosts      hostCheck
	bodies     *budget // bytes of bodies held
	budgetWait time.Duration
	handler    http.Handler

	// mu serializes configuration changes and their persistence, so the
	// state file follows the order in which changes were applied.
	mu    sync.Mutex
	ports map[string]portConfig // the configured ports, as saved; guarded by mu

	// Saving. saveErr is the last failure to save, nil once a save works;
	// unsaved is set while the switch has changed on its own (flows
	// expired) since the last save. While either is, a goroutine saves
	// again every saveRetry.
	saveErr   atomic.Pointer[error]
	unsaved   bool       // guarded by mu
	saved     savedState // what the last save wrote (persist.go); guarded by mu
	retrying  bool       // guarded by mu
	saveRetry time.Duration
	closed    chan struct{}
	closeOnce sync.Once
	retries   sync.WaitGroup // the goroutine that saves again

	events *events
	trim   memTrimmer
}

// portConfig is a configured port as saved.
type portConfig struct {
	mode     datapath.XDPMode // asked for
	ofport   uint32
	liveness datapath.Liveness
}

// NewServer returns a Server for opts.Backend. The ports the backend has
// already are taken as configured.
func NewServer(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("ctl: no backend")
	}
	s := &Server{
		backend:    opts.Backend,
		store:      opts.Store,
		log:        opts.Logger,
		maxBody:    opts.MaxBodyBytes,
		bodyIdle:   opts.BodyIdleTimeout,
		hosts:      newHostCheck(opts.Listen),
		budgetWait: defaultBudgetWait,
		ports:      make(map[string]portConfig),
		saveRetry:  time.Second,
		closed:     make(chan struct{}),
		events:     newEvents(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.bodyIdle <= 0 {
		s.bodyIdle = DefaultBodyIdleTimeout
	}
	// Room for the largest bodies, and for small requests beside them.
	s.bodies = newBudget(bodyBudgetBodies*(s.maxBody+bodyChunk) + bodyBudgetSmall)
	s.SetToken(opts.Token)
	for _, p := range s.backend.Ports() {
		s.ports[p.Name] = portConfig{mode: p.XDPMode, ofport: p.OFPort, liveness: p.Liveness}
	}

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{newCollector(s.backend), newPipelineCollector(s.backend)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	r := mux.NewRouter()
	// A path with "." or ".." segments, "//" or a trailing slash names no
	// resource: it is answered 404 like any other, not redirected.
	r.SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, fmt.Errorf("%s: %w", r.URL.Path, errNotFound))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, fmt.Errorf("%s %s: %w", r.Method, r.URL.Path, errMethodNotAllowed))
	})
	r.Use(s.checkRequest)
	r.HandleFunc(api.PathPorts, s.listPorts).Methods(http.MethodGet)
	r.HandleFunc(api.PathPorts, s.addPort).Methods(http.MethodPost)
	r.HandleFunc(api.PathPorts+"/{name}", s.getPort).Methods(http.MethodGet)
	r.HandleFunc(api.PathPorts+"/{name}", s.deletePort).Methods(http.MethodDelete)
	r.HandleFunc(api.PathPorts+"/{name}"+api.PortStatsSuffix, s.getPortStats).Methods(http.MethodGet)
	r.HandleFunc(api.PathPorts+"/{name}"+api.PortLivenessSuffix, s.setLiveness).Methods(http.MethodPut)
	r.HandleFunc(api.PathFlows, s.listFlows).Methods(http.MethodGet)
	r.HandleFunc(api.PathFlows, s.addFlows).Methods(http.MethodPost)
	r.HandleFunc(api.PathFlows, s.replaceFlows).Methods(http.MethodPut)
	r.HandleFunc(api.PathFlowsDelete, s.deleteFlows).Methods(http.MethodPost)
	// Other methods must not fall through to the {id} routes.
	r.Handle(api.PathFlowsDelete, r.MethodNotAllowedHandler)
	r.HandleFunc(api.PathFlows+"/{id}", s.getFlow).Methods(http.MethodGet)
	r.HandleFunc(api.PathFlows+"/{id}", s.deleteFlow).Methods(http.MethodDelete)
	r.HandleFunc(api.PathGroups, s.listGroups).Methods(http.MethodGet)
	r.HandleFunc(api.PathGroups, s.addGroups).Methods(http.MethodPost)
	r.HandleFunc(api.PathGroups, s.replaceGroups).Methods(http.MethodPut)
	r.HandleFunc(api.PathGroups+"/{id}", s.getGroup).Methods(http.MethodGet)
	r.HandleFunc(api.PathGroups+"/{id}", s.modGroup).Methods(http.MethodPut)
	r.HandleFunc(api.PathGroups+"/{id}", s.deleteGroup).Methods(http.MethodDelete)
	r.HandleFunc(api.PathBundle, s.bundle).Methods(http.MethodPost)
	r.HandleFunc(api.PathTables, s.listTables).Methods(http.MethodGet)
	r.HandleFunc(api.PathTrace, s.trace).Methods(http.MethodPost)
	r.HandleFunc(api.PathEvents, s.streamEvents).Methods(http.MethodGet)
	r.HandleFunc(api.PathStats, s.getStats).Methods(http.MethodGet)
	r.HandleFunc(api.PathFrames, s.getFrames).Methods(http.MethodGet)
	r.HandleFunc(api.PathHealth, s.getHealth).Methods(http.MethodGet)
	r.HandleFunc(api.PathOpenAPI, s.getOpenAPI).Methods(http.MethodGet)
	r.Handle(api.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}})).Methods(http.MethodGet)
	s.handler = r
	return s, nil
}

// SetToken sets the bearer token every request must carry from now on;
// "" lets every request in.
func (s *Server) SetToken(token string) {
	if token == "" {
		s.token.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	b := sum[:]
	s.token.Store(&b)
}

// Close stops what the server does on its own (saving again after a failed
// save) and waits until it has. It does not stop serving: that is the
// http.Server's.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.retries.Wait()
}

// ServeHTTP refuses requests from elsewhere (a web page's: see
// checkOrigin), checks the bearer token, then routes the request (and
// checkRequest checks what the route takes).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, release := withHold(r, s.bodies)
	defer release()
	if err := s.checkOrigin(r); err != nil {
		s.fail(w, r, err)
		return
	}
	if tok := s.token.Load(); tok != nil && !authorized(r, *tok) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="xvs"`)
		s.fail(w, r, errUnauthorized)
		return
	}
	s.handler.ServeHTTP(w, r)
}

func authorized(r *http.Request, token []byte) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	// Comparing digests takes the same time whatever the length of the
	// token offered.
	sum := sha256.Sum256([]byte(h[len(prefix):]))
	return subtle.ConstantTimeCompare(sum[:], token) == 1
}

// reply writes v as the JSON body with status.
//
// Small bodies are encoded whole first, so an encoding error can still turn
// into a 500. A list of flows (a dump, or the answer to a bulk add, up to
// hundreds of thousands) is streamed through a buffer instead of being built
// in memory: the values are plain data that cannot fail to encode.
func (s *Server) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if fl, ok := v.([]api.FlowStatus); ok && len(fl) > streamReplyOver {
		w.WriteHeader(status)
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := writeList(bw, fl, "", ""); err != nil {
			s.log.Error("encode response", "err", err)
			return
		}
		bw.WriteByte('\n')
		if err := bw.Flush(); err != nil {
			s.log.Debug("write response", "err", err)
		}
		return
	}
	body, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "err", err)
		status = http.StatusInternalServerError
		body, _ = json.Marshal(api.ErrorResponse{Error: "encode response: " + err.Error(), Code: api.CodeInternal})
	}
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// writeList writes list to w as one JSON array, encoding one element at a
// time (encoding/json's Encoder builds a whole value in memory before it
// writes). With indent set, each element goes on its own line after
// indent, and the closing bracket on a line of its own after outdent.
func writeList[T any](w *bufio.Writer, list []T, indent, outdent string) error {
	var buf []byte
	w.WriteByte('[')
	for i := range list {
		if i > 0 {
			w.WriteByte(',')
		}
		if indent != "" {
			w.WriteByte('\n')
			w.WriteString(indent)
		}
		if a, ok := any(&list[i]).(jsonAppender); ok {
			var done bool
			if buf, done = a.appendJSON(buf[:0]); done {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				continue
			}
		}
		b, err := json.Marshal(&list[i])
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	if indent != "" && len(list) > 0 {
		w.WriteByte('\n')
		w.WriteString(outdent)
	}
	_, err := w.WriteString("]")
	return err
}

// jsonAppender is an item writeList encodes without encoding/json when
// appendJSON says it could (ok).
type jsonAppender interface {
	appendJSON(b []byte) (_ []byte, ok bool)
}

// streamReplyOver is the number of flows above which reply streams.
const streamReplyOver = 256

// fail answers err with the status statusOf chooses.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	s.reply(w, status, errorResponse(err))
}

// decode reads the request body as exactly one JSON value into v, refusing
// unknown fields and bodies over the size limit.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// readBody reads the request body. A body over the limit is refused before
// it is read when it says its length; the buffer grows with what arrives,
// taking from the body budget (held until the request is answered); and a
// body that stops coming, or comes too slowly, is cut off (see
// bodyTotal).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n > s.maxBody {
		return nil, &requestError{err: fmt.Errorf("read body: %w", &http.MaxBytesError{Limit: s.maxBody})}
	}
	total := bodyTotal(n, s.maxBody)
	end := time.Now().Add(total)
	hold := holdOf(r)
	// grow makes room for want bytes, taking them from the budget first.
	grow := func(buf []byte, want int64) ([]byte, error) {
		if hold != nil && want > hold.held {
			until := time.Now().Add(s.budgetWait)
			if end.Before(until) {
				until = end
			}
			if !s.bodies.take(r.Context(), want-hold.held, until) {
				w.Header().Set("Retry-After", "10")
				return nil, fmt.Errorf("read body: the server holds as many large bodies as it takes at once (%d MiB): try again: %w",
					bodyBudgetBodies*s.maxBody>>20, errBusy)
			}
			hold.held = want
		}
		return slices.Grow(buf, int(want)-len(buf)), nil
	}
	// The deadlines cover the body only: once it is read, the handler
	// works on with none on the connection.
	rc := http.NewResponseController(w)
	dr := &deadlineReader{r: http.MaxBytesReader(w, r.Body, s.maxBody), rc: rc, idle: s.bodyIdle, end: end}
	defer rc.SetReadDeadline(time.Time{})
	first := int64(bodyChunk)
	if n >= 0 && n < first {
		first = n + 1 // room to see the end
	}
	buf, err := grow(nil, first)
	if err != nil {
		return nil, err
	}
	for {
		if len(buf) == cap(buf) {
			want := nextBodyRoom(int64(cap(buf)), n, s.maxBody)
			if want <= int64(cap(buf)) { // cannot be: the body is longer than it said
				return nil, &requestError{err: fmt.Errorf("read body: more than the %d bytes declared", n)}
			}
			if buf, err = grow(buf, want); err != nil {
				return nil, err
			}
		}
		m, rerr := dr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if rerr == io.EOF {
			return buf, nil
		}
		if rerr != nil {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				what := fmt.Sprintf("nothing came for %v", s.bodyIdle)
				if !time.Now().Before(end) {
					what = fmt.Sprintf("it did not come within %v", total)
				}
				return nil, &requestError{err: fmt.Errorf("read body: %d of %d bytes came, and %s: %w", len(buf), n, what, rerr)}
			}
			return nil, &requestError{err: fmt.Errorf("read body: %w", rerr)}
		}
	}
}

// nextBodyRoom is the room a body buffer of room bytes, full, grows to:
// about four times as much (the budget it holds stays at most four times
// what came), and for a body that declared its length n, the steps are
// the length's fourths, sixteenths, ..., so that the last is the length
// itself. The buffers outgrown are garbage, resident until the next
// collection: a third of the body, where doubling (and a last step cut
// to the length) left one to two times the body (45 MB for a 22 MB replace
// of 160k flows).
func nextBodyRoom(room, n, max int64) int64 {
	if n < 0 {
		return min(4*room, max+1)
	}
	want := n + 1
	for want/4 > room {
		want /= 4
	}
	return want
}

// deadlineReader sets the connection's read deadline before every read: the
// idle timeout from now, but no later than end.
type deadlineReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	dl := time.Now().Add(d.idle)
	if dl.After(d.end) {
		dl = d.end
	}
	_ = d.rc.SetReadDeadline(dl) // not supported by a ResponseRecorder: then none
	return d.r.Read(p)
}

// decodeJSON decodes data, which must hold exactly one JSON value, into v:
// no unknown field, no key twice, no key in another case than the field's.
func decodeJSON(data []byte, v any) error {
	if err := checkKeys(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "invalid JSON: data after the value")
	}
	return nil
}

// jsonError turns an encoding/json error into a requestError naming the
// field when there is one.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("", "invalid JSON: empty body")
	case errors.As(err, &te) && te.Field == "":
		return badRequest("", "invalid JSON: expected %s, got %s", te.Type, te.Value)
	case errors.As(err, &te):
		return badRequest(te.Field, "invalid JSON: field %s: expected %s, got %s", te.Field, te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, "invalid JSON: unknown field %q", field)
	default:
		return badRequest("", "invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// validPortName checks name is a possible Linux netdev name that the flow
// syntax can name.
func validPortName(name string) error {
	if err := flowtable.CheckPortName(name); err != nil {
		msg := strings.TrimSuffix(err.Error(), ": "+flowtable.ErrInvalid.Error())
		return badRequest("name", "%s", msg)
	}
	return nil
}

func validMode(mode api.XDPMode) error {
	switch mode {
	case "", api.ModeAuto, api.ModeNative, api.ModeGeneric:
		return nil
	}
	return badRequest("mode", "mode %q is not native, generic or auto", mode)
}

func (s *Server) listPorts(w http.ResponseWriter, r *http.Request) {
	s.reply(w, http.StatusOK, apiPortInfos(s.backend.Ports()))
}

func (s *Server) addPort(w http.ResponseWriter, r *http.Request) {
	var req api.PortRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := validPortName(req.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := validMode(req.Mode); err != nil {
		s.fail(w, r, err)
		return
	}
	spec := portSpec(req)

	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := s.backend.AddPort(spec)
	if err != nil {
		s.fail(w, r, err) // the backend names the port
		return
	}
	s.ports[spec.Name] = portConfig{mode: spec.Mode, ofport: info.OFPort, liveness: datapath.LivenessAuto}
	if err := s.saveLocked(s.backend.Pipeline()); err != nil {
		// Not saved, so not made: a restart would not know the port.
		delete(s.ports, spec.Name)
		if derr := s.backend.DeletePort(spec.Name); derr != nil {
			s.log.Error("undo port not saved", "port", spec.Name, "err", derr)
			err = errors.Join(err, derr)
		}
		s.fail(w, r, err)
		return
	}
	s.log.Debug("port added", "name", info.Name, "ofport", info.OFPort, "xdp_mode", info.XDPMode, "queues", info.Queues)
	w.Header().Set("Location", api.PathPorts+"/"+url.PathEscape(info.Name))
	s.reply(w, http.StatusCreated, apiPortInfo(info))
}

func (s *Server) getPort(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	info, err := s.backend.Port(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, apiPortInfo(info))
}

// configuredLocked returns the configuration of port name. s.mu must be
// held.
func (s *Server) configuredLocked(name string) (portConfig, error) {
	cfg, ok := s.ports[name]
	if !ok {
		return portConfig{}, fmt.Errorf("port %s: %w", name, datapath.ErrNoSuchPort)
	}
	return cfg, nil
}

// deletePort serves DELETE /v1/ports/{name}. The state without the port is
// saved first: a port that is gone from the switch is gone from the disk.
func (s *Server) deletePort(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.configuredLocked(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	delete(s.ports, name)
	if err := s.saveLocked(s.backend.Pipeline()); err != nil {
		s.ports[name] = cfg
		s.fail(w, r, err)
		return
	}
	if err := s.backend.DeletePort(name); err != nil {
		// The switch may have removed the port and failed at a later
		// step: then it is gone, as the saved state says. If it is still
		// there, the state must say so again.
		if _, perr := s.backend.Port(name); perr == nil {
			s.ports[name] = cfg
			if serr := s.saveLocked(s.backend.Pipeline()); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		s.fail(w, r, err)
		return
	}
	s.log.Debug("port deleted", "name", name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getPortStats(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	st, err := s.backend.PortStats(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, apiPortStats(&st))
}

// setLiveness serves PUT /v1/ports/{name}/liveness: an external prober
// (BFD, a ping monitor) says whether the port is live, or gives it back to
// its link (auto). It is saved like any change: after a restart the port
// is as the prober last said, until it says otherwise.
func (s *Server) setLiveness(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	var req api.LivenessRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	l, err := datapath.ParseLiveness(string(req.Liveness))
	if err != nil {
		s.fail(w, r, badRequest("liveness", "liveness %q: want auto, live or dead", req.Liveness))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.configuredLocked(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.backend.SetLiveness(name, l)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	was := cfg.liveness
	cfg.liveness = l
	s.ports[name] = cfg
	if err := s.saveLocked(s.backend.Pipeline()); err != nil {
		cfg.liveness = was
		s.ports[name] = cfg
		if _, uerr := s.backend.SetLiveness(name, was); uerr != nil {
			err = errors.Join(err, uerr)
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("port liveness set", "port", name, "liveness", l)
	s.reply(w, http.StatusOK, apiPortInfo(info))
}

func (s *Server) getStats(w http.ResponseWriter, r *http.Request) {
	st := s.backend.Stats()
	s.reply(w, http.StatusOK, apiStats(&st))
}

// getFrames serves GET /v1/frames.
func (s *Server) getFrames(w http.ResponseWriter, r *http.Request) {
	fs, err := s.backend.Frames()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, apiFrameStats(fs))
}

// Health is nil when the backend is healthy and the last save of the
// configuration worked.
func (s *Server) Health() error {
	var errs []error
	if err := s.backend.Health(); err != nil {
		errs = append(errs, err)
	}
	if p := s.saveErr.Load(); p != nil {
		errs = append(errs, fmt.Errorf("state not saved (changes are refused until a save works; retrying): %w", *p))
	}
	return errors.Join(errs...)
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.Health(); err != nil {
		s.reply(w, api.CodeUnavailable.Status(), api.HealthResponse{Status: api.HealthUnhealthy, Error: err.Error(), Code: api.CodeUnavailable})
		return
	}
	s.reply(w, http.StatusOK, api.HealthResponse{Status: api.HealthOK})
}

// getOpenAPI serves the OpenAPI document of /v1.
func (s *Server) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(api.OpenAPI)
}

// slogPrinter adapts a slog.Logger to promhttp's error logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }
