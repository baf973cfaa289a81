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
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

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

// Options configure a Server.
type Options struct {
	Backend Backend // required
	// Store receives the configuration after every successful change; nil
	// persists nothing.
	Store *Store
	// Logger; nil discards.
	Logger *slog.Logger
	// Token, if not empty, must come with every request as
	// "Authorization: Bearer TOKEN".
	Token string
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Server serves the REST API for one Backend. It is an http.Handler; all its
// methods are safe for concurrent use.
type Server struct {
	backend Backend
	store   *Store
	log     *slog.Logger
	token   []byte // SHA-256 of the bearer token; nil: no authentication
	maxBody int64
	handler http.Handler

	// mu serializes configuration changes and their persistence, so the
	// state file follows the order in which changes were applied.
	mu    sync.Mutex
	modes map[string]datapath.XDPMode // XDP mode asked for, by port name; guarded by mu

	persistErr atomic.Pointer[error] // last failure to persist, nil once a save works
	events     *events
}

// NewServer returns a Server for opts.Backend.
func NewServer(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("ctl: no backend")
	}
	s := &Server{
		backend: opts.Backend,
		store:   opts.Store,
		log:     opts.Logger,
		maxBody: opts.MaxBodyBytes,
		modes:   make(map[string]datapath.XDPMode),
		events:  newEvents(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if opts.Token != "" {
		sum := sha256.Sum256([]byte(opts.Token))
		s.token = sum[:]
	}

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{newCollector(s.backend), newPipelineCollector(s.backend)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, fmt.Errorf("%s: %w", r.URL.Path, errNotFound))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, fmt.Errorf("%s %s: %w", r.Method, r.URL.Path, errMethodNotAllowed))
	})
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
	r.HandleFunc(api.PathHealth, s.getHealth).Methods(http.MethodGet)
	r.HandleFunc(api.PathOpenAPI, s.getOpenAPI).Methods(http.MethodGet)
	r.Handle(api.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}})).Methods(http.MethodGet)
	s.handler = r
	return s, nil
}

// ServeHTTP checks the bearer token, then routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.token != nil && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="xvs"`)
		s.fail(w, r, errUnauthorized)
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	// Comparing digests takes the same time whatever the length of the
	// token offered.
	sum := sha256.Sum256([]byte(h[len(prefix):]))
	return subtle.ConstantTimeCompare(sum[:], s.token) == 1
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
	w.WriteByte('[')
	for i := range list {
		if i > 0 {
			w.WriteByte(',')
		}
		if indent != "" {
			w.WriteByte('\n')
			w.WriteString(indent)
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

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// With a declared length the body is read into one buffer of that size
	// (the limit still holds), not grown by doubling: bulk adds are large.
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= s.maxBody {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to read on
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBody)); err != nil {
		return nil, &requestError{err: fmt.Errorf("read body: %w", err)}
	}
	return buf.Bytes(), nil
}

// decodeJSON decodes data, which must hold exactly one JSON value, into v.
func decodeJSON(data []byte, v any) error {
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
	s.modes[spec.Name] = spec.Mode
	s.log.Debug("port added", "name", info.Name, "ofport", info.OFPort, "xdp_mode", info.XDPMode, "queues", info.Queues)
	s.persistLocked()
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

func (s *Server) deletePort(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.backend.DeletePort(name); err != nil {
		// The switch may have removed the port and failed at a later
		// step: then it is gone, and the saved state must say so too.
		if _, perr := s.backend.Port(name); errors.Is(perr, datapath.ErrNoSuchPort) {
			if _, had := s.modes[name]; had {
				delete(s.modes, name)
				s.persistLocked()
			}
		}
		s.fail(w, r, err)
		return
	}
	delete(s.modes, name)
	s.log.Debug("port deleted", "name", name)
	s.persistLocked()
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
// its link (auto). It is not persisted: a prober says it again after a
// restart.
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
	info, err := s.backend.SetLiveness(name, l)
	if err != nil {
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

// Health is nil when the backend is healthy and the last configuration
// change was persisted.
func (s *Server) Health() error {
	if err := s.backend.Health(); err != nil {
		return err
	}
	if p := s.persistErr.Load(); p != nil {
		return fmt.Errorf("state not persisted: %w", *p)
	}
	return nil
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
