package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
)

// serveUnix serves srv on a unix socket in a temporary directory and returns
// the client address.
func serveUnix(t *testing.T, srv http.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xvsd.sock")
	ln, err := ctl.Listen(ctl.ListenAddr{Network: "unix", Address: path}, 0)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return "unix:" + path
}

// newServer is a ctl.Server over a fake switch.
func newServer(t *testing.T, opts ctl.Options) (*ctl.Server, *ctltest.Backend) {
	t.Helper()
	b := ctltest.New()
	opts.Backend = b
	srv, err := ctl.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, b
}

func newClient(t *testing.T, opts ctl.Options) (*Client, *ctltest.Backend) {
	t.Helper()
	srv, b := newServer(t, opts)
	c, err := New(serveUnix(t, srv), Options{Token: opts.Token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, b
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name, server, base, err string
	}{
		{"unix", "unix:/run/xvs/xvsd.sock", "http://xvsd", ""},
		{"tcp", "tcp:127.0.0.1:6680", "http://127.0.0.1:6680", ""},
		{"http", "http://127.0.0.1:6680", "http://127.0.0.1:6680", ""},
		{"http slash", "http://127.0.0.1:6680/", "http://127.0.0.1:6680", ""},
		{"https", "https://xvs.example:443", "https://xvs.example:443", ""},
		{"unix empty", "unix:", "", "empty socket path"},
		{"path", "http://h:1/v1", "", "want scheme://HOST:PORT"},
		{"no host", "http://", "", "want scheme://HOST:PORT"},
		{"bare path", "/run/xvs/xvsd.sock", "", "want unix:PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.server, Options{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || c.base != tt.base {
				t.Fatalf("base %q, %v; want %q", c.base, err, tt.base)
			}
		})
	}
}

func TestClientPorts(t *testing.T) {
	c, b := newClient(t, ctl.Options{})
	ctx := context.Background()

	info, err := c.AddPort(ctx, api.PortRequest{Name: "p0", Mode: api.ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "p0" || info.OFPort != 1 || info.XDPMode != api.ModeGeneric {
		t.Fatalf("AddPort = %+v", info)
	}
	if _, err := c.AddPort(ctx, api.PortRequest{Name: "p1"}); err != nil {
		t.Fatal(err)
	}

	_, err = c.AddPort(ctx, api.PortRequest{Name: "p0"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Index != -1 || !strings.Contains(ae.Message, "already exists") {
		t.Fatalf("duplicate AddPort: %#v", err)
	}
	if !errors.Is(err, api.CodePortExists) || ae.Code != api.CodePortExists {
		t.Errorf("duplicate AddPort: code %q, errors.Is(CodePortExists) = false", ae.Code)
	}
	_, err = c.AddPort(ctx, api.PortRequest{Name: "p2", Mode: "turbo"})
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "mode" {
		t.Fatalf("bad mode: %#v", err)
	}
	if got := err.Error(); !strings.HasSuffix(got, "(field mode)") {
		t.Errorf("error text %q does not name the field", got)
	}

	ports, err := c.Ports(ctx)
	if err != nil || len(ports) != 2 {
		t.Fatalf("Ports = %+v, %v", ports, err)
	}
	if p, err := c.Port(ctx, "p1"); err != nil || p.OFPort != 2 {
		t.Fatalf("Port = %+v, %v", p, err)
	}
	if _, err := c.Port(ctx, "nope"); !errors.Is(err, api.CodeNoSuchPort) || errors.Is(err, api.CodeNoSuchFlow) {
		t.Fatalf("Port(nope) = %v", err)
	}
	if _, err := c.Flow(ctx, 42); !errors.Is(err, api.CodeNoSuchFlow) || errors.Is(err, api.CodeNoSuchPort) {
		t.Fatalf("Flow(42) = %v: a missing flow must not pass as a missing port", err)
	}
	b.SetPortStats("p1", datapath.PortStats{RxPackets: 5, XDP: map[string]uint64{"rx": 5}})
	if st, err := c.PortStats(ctx, "p1"); err != nil || st.RxPackets != 5 || st.XDP[0] != (api.Counter{Name: "rx", Packets: 5}) {
		t.Fatalf("PortStats = %+v, %v", st, err)
	}
	if st, err := c.Stats(ctx); err != nil || len(st.Ports) != 2 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Metrics(ctx); err != nil || !strings.Contains(m, `xvs_port_rx_packets_total{port="p1"} 5`) {
		t.Fatalf("Metrics: %v\n%s", err, m)
	}
	if err := c.DeletePort(ctx, "p0"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePort(ctx, "p0"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("second DeletePort = %v", err)
	}

	b.SetHealth(errors.New("poller 1 wedged"))
	if err := c.Health(ctx); !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "poller 1 wedged" || !errors.Is(err, api.CodeUnavailable) {
		t.Fatalf("Health = %#v", err)
	}
}

func TestClientToken(t *testing.T) {
	srv, _ := newServer(t, ctl.Options{Token: "t0ken"})
	addr := serveUnix(t, srv)
	ctx := context.Background()
	for _, tt := range []struct {
		name, token string
		want        int
	}{
		{"none", "", 401},
		{"wrong", "nope", 401},
		{"right", "t0ken", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(addr, Options{Token: tt.token})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Ports(ctx)
			var ae *APIError
			switch {
			case tt.want == 0 && err != nil:
				t.Fatal(err)
			case tt.want != 0 && (!errors.As(err, &ae) || ae.Status != tt.want || !errors.Is(err, api.CodeUnauthorized)):
				t.Fatalf("err = %v, want status %d", err, tt.want)
			}
		})
	}
}

// A server that is not xvsd (or a proxy) answering plain text still gives an
// APIError with its words.
func TestClientNonJSONError(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway thing", http.StatusBadGateway)
	}))
	defer hs.Close()
	c, err := New(hs.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ports(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "bad gateway thing" || ae.Code != "" {
		t.Fatalf("err = %#v", err)
	}
}

// An answer without a code gets the one its status implies, if only one
// kind has that status: a bare 404 is not known to be about a port.
func TestClientCodeFromStatus(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   api.ErrorCode
	}{
		{400, "nope", api.CodeInvalid},
		{404, "404 page not found", ""},
		{503, `{"error":"down"}`, api.CodeUnavailable},
		{404, `{"error":"flow 3: no such flow","code":"no_such_flow"}`, api.CodeNoSuchFlow},
	} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, tt.body, tt.status)
		}))
		c, err := New(hs.URL, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Ports(context.Background())
		hs.Close()
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != tt.want {
			t.Errorf("%d %q: %#v, want code %q", tt.status, tt.body, err, tt.want)
		}
		if tt.want == "" && (errors.Is(err, api.CodeNoSuchPort) || errors.Is(err, api.CodeNotFound)) {
			t.Errorf("%d %q: a bare status matched a code", tt.status, tt.body)
		}
	}
}

func TestClientNoServer(t *testing.T) {
	c, err := New("unix:"+filepath.Join(t.TempDir(), "none.sock"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ports(context.Background())
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v, want a dial error", err)
	}
}

// AddFlowsIDs and ReplaceFlowsIDs get the IDs only, one per flow, in order.
func TestClientFlowsIDs(t *testing.T) {
	c, b := newClient(t, ctl.Options{})
	ctx := context.Background()
	flows := []api.Flow{{Text: "priority=5,udp,actions=drop"}, {Text: "priority=6,tcp,actions=drop"}}
	ids, err := c.AddFlowsIDs(ctx, flows)
	if err != nil || len(ids) != 2 {
		t.Fatalf("AddFlowsIDs = %v, %v", ids, err)
	}
	for i, id := range ids {
		if fi, err := b.Flow(id); err != nil || fi.Flow.Priority != uint16(5+i) {
			t.Fatalf("ID %d: %+v, %v", id, fi, err)
		}
	}
	ids, err = c.ReplaceFlowsIDs(ctx, flows[:1])
	if err != nil || len(ids) != 1 || len(b.Flows()) != 1 {
		t.Fatalf("ReplaceFlowsIDs = %v, %v; %d flows", ids, err, len(b.Flows()))
	}
	_, err = c.AddFlowsIDs(ctx, []api.Flow{{Text: "udp,actions=output:nope"}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != api.CodeNoSuchPort || ae.Field != "output" || ae.Index != 0 {
		t.Fatalf("a flow to a missing port: %#v", err)
	}
}

// The FlowTexts methods do what the api.Flow ones do.
func TestClientFlowTexts(t *testing.T) {
	c, b := newClient(t, ctl.Options{})
	ctx := context.Background()
	var ft FlowTexts
	ft.Add("priority=5,udp,actions=drop")
	ft.Add("priority=6,tcp,actions=drop")
	ids, err := c.AddFlowTextsIDs(ctx, &ft)
	if err != nil || len(ids) != 2 {
		t.Fatalf("AddFlowTextsIDs = %v, %v", ids, err)
	}
	for i, id := range ids {
		if fi, err := b.Flow(id); err != nil || fi.Flow.Priority != uint16(5+i) {
			t.Fatalf("ID %d: %+v, %v", id, fi, err)
		}
	}
	out, err := c.ReplaceFlowTexts(ctx, &ft)
	if err != nil || len(out) != 2 || out[0].Text != "priority=5,udp,actions=drop" || len(b.Flows()) != 2 {
		t.Fatalf("ReplaceFlowTexts = %+v, %v; %d flows", out, err, len(b.Flows()))
	}
	var one FlowTexts
	one.Add("priority=7,arp,actions=drop")
	if ids, err = c.ReplaceFlowTextsIDs(ctx, &one); err != nil || len(ids) != 1 || len(b.Flows()) != 1 {
		t.Fatalf("ReplaceFlowTextsIDs = %v, %v; %d flows", ids, err, len(b.Flows()))
	}
	if out, err = c.AddFlowTexts(ctx, &ft); err != nil || len(out) != 2 || len(b.Flows()) != 3 {
		t.Fatalf("AddFlowTexts = %+v, %v; %d flows", out, err, len(b.Flows()))
	}
	var bad FlowTexts
	bad.Add("priority=8,arp,actions=drop")
	bad.Add("udp,actions=output:nope")
	_, err = c.AddFlowTextsIDs(ctx, &bad)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != api.CodeNoSuchPort || ae.Field != "output" || ae.Index != 1 || len(b.Flows()) != 3 {
		t.Fatalf("a flow to a missing port: %#v; %d flows", err, len(b.Flows()))
	}
}

// A server that ignores "Prefer: return=minimal" (RFC 7240 allows it, and
// xvsd did before it knew it) answers the flows: AddFlowsIDs takes their IDs.
func TestClientFlowsIDsServerIgnoresPreference(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`[{"id":7,"flow":"priority=5,udp,actions=drop"},{"id":9,"flow":"priority=6,tcp,actions=drop"}]`))
	}))
	defer hs.Close()
	c, err := New("tcp:"+strings.TrimPrefix(hs.URL, "http://"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.AddFlowsIDs(context.Background(), []api.Flow{{Text: "udp,actions=drop"}, {Text: "tcp,actions=drop"}})
	if err != nil || len(ids) != 2 || ids[0] != 7 || ids[1] != 9 {
		t.Fatalf("AddFlowsIDs = %v, %v; want [7 9]", ids, err)
	}
}
