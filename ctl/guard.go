package ctl

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/xvs-project/xvs/api"
)

// What a browser can be made to send: a web page may POST to any address,
// 127.0.0.1 included, with a body of type text/plain, and a page whose DNS
// name the attacker points at 127.0.0.1 (DNS rebinding) talks to the API as
// if it were its own origin. The checks below keep both out; the unix
// socket, which no browser reaches, stays the default.
//
//   - Every POST, PUT and PATCH must say Content-Type: application/json,
//     which a page cannot send to another origin without a CORS preflight
//     that xvsd never answers. (DELETE always needs one: it is not checked,
//     and needs no body.)
//   - A request with an Origin header (browsers send it on every
//     cross-origin request, and on same-origin writes) must come from the
//     origin it is sent to; so must one whose Sec-Fetch-Site says it is
//     cross-site.
//   - On TCP without a token, the Host header must be the listen address,
//     a loopback address or localhost: a rebound name is refused. (With a
//     token a page cannot authenticate anyway, and the server may have
//     any name.)

// hostCheck says which Host headers a TCP listener without a token takes.
type hostCheck struct {
	on         bool
	host       string // the listen host, lower case
	anyLiteral bool   // the listener is on every address: any IP literal is one of them
}

func newHostCheck(a ListenAddr) hostCheck {
	if a.Network != "tcp" {
		return hostCheck{}
	}
	h := hostCheck{on: true}
	host, _, err := net.SplitHostPort(a.Address)
	if err != nil {
		return h
	}
	h.host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		h.anyLiteral = true
	}
	return h
}

// allows reports whether a request with Host host may be served.
func (h hostCheck) allows(host string) bool {
	if !h.on {
		return true
	}
	name := host
	if n, _, err := net.SplitHostPort(host); err == nil {
		name = n
	}
	name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
	if name == "localhost" || name == h.host {
		return true
	}
	ip, err := netip.ParseAddr(name)
	if err != nil {
		return false // a name: only a rebound one would reach a loopback listener
	}
	return ip.IsLoopback() || h.anyLiteral || ip.String() == h.host
}

// checkOrigin refuses requests from another origin (see above).
func (s *Server) checkOrigin(r *http.Request) error {
	if s.token.Load() == nil && !s.hosts.allows(r.Host) {
		return fmt.Errorf("host %q is not this server's address (a DNS name pointed at it from elsewhere?): %w", r.Host, errForbidden)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("cross-origin request from %q refused: %w", o, errForbidden)
		}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return fmt.Errorf("%s request refused (Sec-Fetch-Site): %w", site, errForbidden)
	}
	return nil
}

// checkContentType refuses a write whose body is not said to be JSON.
func checkContentType(r *http.Request) error {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		if ct == "" {
			ct = "none"
		}
		return &requestError{field: "Content-Type", err: fmt.Errorf("%s %s: Content-Type %s: want application/json: %w", r.Method, r.URL.Path, ct, errUnsupportedType)}
	}
	return nil
}

// queryParams are the query parameters each operation takes; the others
// take none.
var queryParams = map[string][]string{
	"GET " + api.PathFlows:  {"match", "strict", "ovs"},
	"GET " + api.PathEvents: {"last_event_id"},
}

// checkRequest refuses, for a route that exists, a write whose body is
// not said to be JSON (checkContentType) and a query that is not clear:
// one that does not parse (a bad escape such as %zz, a ';' separator), a
// parameter the operation does not take, or one given twice. Go's
// URL.Query drops what does not parse, so "match=%zz" would otherwise
// select every flow.
func (s *Server) checkRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkContentType(r); err != nil {
			s.fail(w, r, err)
			return
		}
		if r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			s.fail(w, r, badRequest("", "query %q: %v", r.URL.RawQuery, err))
			return
		}
		var allowed []string
		if route := mux.CurrentRoute(r); route != nil {
			if tmpl, err := route.GetPathTemplate(); err == nil {
				allowed = queryParams[r.Method+" "+tmpl]
			}
		}
		for _, k := range slices.Sorted(mapKeys(q)) {
			switch {
			case !slices.Contains(allowed, k):
				s.fail(w, r, badRequest(k, "unknown query parameter %q", k))
				return
			case len(q[k]) > 1:
				s.fail(w, r, badRequest(k, "query parameter %q given %d times", k, len(q[k])))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
