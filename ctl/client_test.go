package ctl

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// serveUnix serves srv on a unix socket in a temporary directory and returns
// the client address.
func serveUnix(t *testing.T, srv http.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xvsd.sock")
	ln, err := Listen(ListenAddr{"unix", path}, 0)
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

func newClientHarness(t *testing.T, opts Options) (*Client, *harness) {
	t.Helper()
	h := newHarness(t, opts)
	c, err := NewClientWithOptions(serveUnix(t, h.srv), ClientOptions{Token: opts.Token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, h
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
			c, err := NewClient(tt.server)
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
	c, h := newClientHarness(t, Options{})
	ctx := context.Background()

	info, err := c.AddPort(ctx, PortRequest{Name: "p0", Mode: datapath.ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "p0" || info.OFPort != 1 || info.XDPMode != datapath.ModeGeneric {
		t.Fatalf("AddPort = %+v", info)
	}
	if _, err := c.AddPort(ctx, PortRequest{Name: "p1"}); err != nil {
		t.Fatal(err)
	}

	_, err = c.AddPort(ctx, PortRequest{Name: "p0"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Index != -1 || !strings.Contains(ae.Message, "already exists") {
		t.Fatalf("duplicate AddPort: %#v", err)
	}
	if !errors.Is(err, datapath.ErrPortExists) {
		t.Errorf("errors.Is(%v, ErrPortExists) = false", err)
	}
	_, err = c.AddPort(ctx, PortRequest{Name: "p2", Mode: "turbo"})
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
	if _, err := c.Port(ctx, "nope"); !errors.Is(err, datapath.ErrNoSuchPort) {
		t.Fatalf("Port(nope) = %v", err)
	}
	h.backend.SetPortStats("p1", datapath.PortStats{RxPackets: 5, XDP: map[string]uint64{"rx": 5}})
	if st, err := c.PortStats(ctx, "p1"); err != nil || st.RxPackets != 5 || st.XDP["rx"] != 5 {
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

	h.backend.SetHealth(errors.New("poller 1 wedged"))
	if err := c.Health(ctx); !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "poller 1 wedged" {
		t.Fatalf("Health = %#v", err)
	}
}

func TestClientToken(t *testing.T) {
	h := newHarness(t, Options{Token: "t0ken"})
	addr := serveUnix(t, h.srv)
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
			c, err := NewClientWithOptions(addr, ClientOptions{Token: tt.token})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Ports(ctx)
			var ae *APIError
			switch {
			case tt.want == 0 && err != nil:
				t.Fatal(err)
			case tt.want != 0 && (!errors.As(err, &ae) || ae.Status != tt.want):
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
	c, err := NewClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ports(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "bad gateway thing" {
		t.Fatalf("err = %#v", err)
	}
}

func TestClientNoServer(t *testing.T) {
	c, err := NewClient("unix:" + filepath.Join(t.TempDir(), "none.sock"))
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
	c, h := newClientHarness(t, Options{})
	ctx := context.Background()
	flows := []flowtable.FlowJSON{{Text: "priority=5,udp,actions=drop"}, {Text: "priority=6,tcp,actions=drop"}}
	ids, err := c.AddFlowsIDs(ctx, flows)
	if err != nil || len(ids) != 2 {
		t.Fatalf("AddFlowsIDs = %v, %v", ids, err)
	}
	for i, id := range ids {
		if fi, err := h.backend.Flow(id); err != nil || fi.Flow.Priority != uint16(5+i) {
			t.Fatalf("ID %d: %+v, %v", id, fi, err)
		}
	}
	ids, err = c.ReplaceFlowsIDs(ctx, flows[:1])
	if err != nil || len(ids) != 1 || len(h.backend.Flows()) != 1 {
		t.Fatalf("ReplaceFlowsIDs = %v, %v; %d flows", ids, err, len(h.backend.Flows()))
	}
	if _, err := c.AddFlowsIDs(ctx, []flowtable.FlowJSON{{Text: "udp,actions=output:nope"}}); err == nil {
		t.Fatal("a flow to a missing port was accepted")
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
	c, err := NewClient("tcp:" + strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.AddFlowsIDs(context.Background(), []flowtable.FlowJSON{{Text: "udp,actions=drop"}, {Text: "tcp,actions=drop"}})
	if err != nil || len(ids) != 2 || ids[0] != 7 || ids[1] != 9 {
		t.Fatalf("AddFlowsIDs = %v, %v; want [7 9]", ids, err)
	}
}
