package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable"
)

// DefaultServer is the server a Client talks to when none is named.
const DefaultServer = "unix:" + DefaultSocket

// ClientOptions configure a Client.
type ClientOptions struct {
	Token   string        // bearer token sent with every request; "" sends none
	Timeout time.Duration // per request; 0 means 30s
}

// Client talks to xvsd's REST API. It is safe for concurrent use.
//
// Every method returns an *APIError when the server answered with an error
// status, carrying the server's message, the field at fault and the index of
// the bad item in an array request.
type Client struct {
	base  string // scheme://host, no trailing slash
	token string
	http  *http.Client
}

// NewClient returns a Client for server: "unix:PATH", "tcp:HOST:PORT",
// "http://HOST:PORT" or "https://HOST:PORT".
func NewClient(server string) (*Client, error) {
	return NewClientWithOptions(server, ClientOptions{})
}

// NewClientWithOptions is NewClient with options.
func NewClientWithOptions(server string, opts ClientOptions) (*Client, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	c := &Client{token: opts.Token}
	switch {
	case strings.HasPrefix(server, "unix:"):
		path := strings.TrimPrefix(server, "unix:")
		if path == "" {
			return nil, fmt.Errorf("server %q: empty socket path", server)
		}
		var d net.Dialer
		c.base = "http://xvsd"
		c.http = &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return d.DialContext(ctx, "unix", path)
				},
				MaxIdleConns:    2,
				IdleConnTimeout: 30 * time.Second,
			},
		}
		return c, nil
	case strings.HasPrefix(server, "tcp:"):
		server = "http://" + strings.TrimPrefix(server, "tcp:")
	case strings.HasPrefix(server, "http://"), strings.HasPrefix(server, "https://"):
	default:
		return nil, fmt.Errorf("server %q: want unix:PATH, tcp:HOST:PORT or http://HOST:PORT", server)
	}
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", server, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("server %q: want scheme://HOST:PORT", server)
	}
	c.base = u.Scheme + "://" + u.Host
	c.http = &http.Client{Timeout: timeout}
	return c, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// do sends a request with body (JSON-encoded unless nil) and decodes a
// successful answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.doHeader(ctx, method, path, query, nil, body, out)
}

// doHeader is do with extra request headers.
func (c *Client) doHeader(ctx context.Context, method, path string, query url.Values, hdr http.Header, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return apiError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func apiError(status int, body []byte) error {
	e := &APIError{Status: status, Index: -1}
	var er ErrorResponse
	if err := json.Unmarshal(body, &er); err == nil && er.Error != "" {
		e.Message, e.Field = er.Error, er.Field
		if er.Index != nil {
			e.Index = *er.Index
		}
		return e
	}
	e.Message = strings.TrimSpace(string(body))
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// Ports lists the switch's ports.
func (c *Client) Ports(ctx context.Context) ([]datapath.PortInfo, error) {
	var ports []datapath.PortInfo
	err := c.do(ctx, http.MethodGet, PathPorts, nil, nil, &ports)
	return ports, err
}

// AddPort attaches a netdev to the switch.
func (c *Client) AddPort(ctx context.Context, req PortRequest) (datapath.PortInfo, error) {
	var info datapath.PortInfo
	err := c.do(ctx, http.MethodPost, PathPorts, nil, req, &info)
	return info, err
}

// Port describes one port.
func (c *Client) Port(ctx context.Context, name string) (datapath.PortInfo, error) {
	var info datapath.PortInfo
	err := c.do(ctx, http.MethodGet, portPath(name), nil, nil, &info)
	return info, err
}

// DeletePort detaches a port.
func (c *Client) DeletePort(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, portPath(name), nil, nil, nil)
}

// PortStats returns one port's counters.
func (c *Client) PortStats(ctx context.Context, name string) (datapath.PortStats, error) {
	var st datapath.PortStats
	err := c.do(ctx, http.MethodGet, portPath(name)+"/stats", nil, nil, &st)
	return st, err
}

func portPath(name string) string { return PathPorts + "/" + url.PathEscape(name) }

// Stats returns the switch's counters.
func (c *Client) Stats(ctx context.Context) (datapath.Stats, error) {
	var st datapath.Stats
	err := c.do(ctx, http.MethodGet, PathStats, nil, nil, &st)
	return st, err
}

// Health returns nil when the server says it is healthy, else an *APIError
// (status 503) with what is wrong.
func (c *Client) Health(ctx context.Context) error {
	var h HealthResponse
	if err := c.do(ctx, http.MethodGet, PathHealth, nil, nil, &h); err != nil {
		return err
	}
	if h.Status != "ok" {
		return errors.New("server unhealthy: " + h.Error)
	}
	return nil
}

// Metrics returns the Prometheus text exposition of /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathMetrics, nil)
	if err != nil {
		return "", err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read metrics: %w", err)
	}
	if resp.StatusCode >= 300 {
		return "", apiError(resp.StatusCode, data)
	}
	return string(data), nil
}

// Flows lists the installed flows, highest priority first. filter, if not
// empty, selects flows as ovs-ofctl dump-flows does (see DeleteFlowsRequest);
// strict selects only flows whose match and priority equal the filter's.
func (c *Client) Flows(ctx context.Context, filter string, strict bool) ([]FlowStatus, error) {
	q := url.Values{}
	if filter != "" {
		q.Set("match", filter)
	}
	if strict {
		q.Set("strict", "true")
	}
	var flows []FlowStatus
	err := c.do(ctx, http.MethodGet, PathFlows, q, nil, &flows)
	return flows, err
}

// AddFlow installs one flow, given in either form of flowtable.FlowJSON
// (e.g. flowtable.FlowJSON{Text: "udp,tp_dst=7999,actions=output:p1"}).
func (c *Client) AddFlow(ctx context.Context, f flowtable.FlowJSON) (FlowStatus, error) {
	var out FlowStatus
	err := c.do(ctx, http.MethodPost, PathFlows, nil, f, &out)
	return out, err
}

// AddFlows installs flows as one transaction: all of them or, on error,
// none. An *APIError's Index names the flow at fault.
func (c *Client) AddFlows(ctx context.Context, flows []flowtable.FlowJSON) ([]FlowStatus, error) {
	if flows == nil {
		flows = []flowtable.FlowJSON{}
	}
	var out []FlowStatus
	err := c.do(ctx, http.MethodPost, PathFlows, nil, flows, &out)
	return out, err
}

// AddFlowsIDs is AddFlows answered with the new flows' IDs only (FlowIDs),
// which for many flows is much faster than the full answer.
func (c *Client) AddFlowsIDs(ctx context.Context, flows []flowtable.FlowJSON) ([]uint64, error) {
	return c.flowsMinimal(ctx, http.MethodPost, flows)
}

// ReplaceFlowsIDs is ReplaceFlows answered with the new flows' IDs only.
func (c *Client) ReplaceFlowsIDs(ctx context.Context, flows []flowtable.FlowJSON) ([]uint64, error) {
	return c.flowsMinimal(ctx, http.MethodPut, flows)
}

func (c *Client) flowsMinimal(ctx context.Context, method string, flows []flowtable.FlowJSON) ([]uint64, error) {
	if flows == nil {
		flows = []flowtable.FlowJSON{}
	}
	var raw json.RawMessage
	if err := c.doHeader(ctx, method, PathFlows, nil, http.Header{"Prefer": {"return=minimal"}}, flows, &raw); err != nil {
		return nil, err
	}
	// A server may ignore the preference (RFC 7240), as xvsd before it did:
	// then the answer is the flows, and the IDs are theirs.
	var ids []uint64
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		var full []FlowStatus
		if err := json.Unmarshal(t, &full); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, PathFlows, err)
		}
		for _, f := range full {
			ids = append(ids, f.ID)
		}
	} else {
		var out FlowIDs
		if err := json.Unmarshal(t, &out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, PathFlows, err)
		}
		ids = out.IDs
	}
	if len(ids) != len(flows) {
		return ids, fmt.Errorf("%s %s: %d IDs for %d flows", method, PathFlows, len(ids), len(flows))
	}
	return ids, nil
}

// ReplaceFlows makes the flow table exactly flows, atomically (like
// ovs-ofctl replace-flows --bundle). An empty list deletes every flow.
func (c *Client) ReplaceFlows(ctx context.Context, flows []flowtable.FlowJSON) ([]FlowStatus, error) {
	if flows == nil {
		flows = []flowtable.FlowJSON{}
	}
	var out []FlowStatus
	err := c.do(ctx, http.MethodPut, PathFlows, nil, flows, &out)
	return out, err
}

// Flow returns one flow by ID.
func (c *Client) Flow(ctx context.Context, id uint64) (FlowStatus, error) {
	var out FlowStatus
	err := c.do(ctx, http.MethodGet, flowPath(id), nil, nil, &out)
	return out, err
}

// DeleteFlow deletes one flow by ID and returns it as it was.
func (c *Client) DeleteFlow(ctx context.Context, id uint64) (FlowStatus, error) {
	var out FlowStatus
	err := c.do(ctx, http.MethodDelete, flowPath(id), nil, nil, &out)
	return out, err
}

// DeleteFlows deletes the flows req selects (every flow when req.Match is
// empty) as one transaction and returns them as they were.
func (c *Client) DeleteFlows(ctx context.Context, req DeleteFlowsRequest) ([]FlowStatus, error) {
	var out []FlowStatus
	err := c.do(ctx, http.MethodPost, PathFlowsDelete, nil, req, &out)
	return out, err
}

func flowPath(id uint64) string { return PathFlows + "/" + strconv.FormatUint(id, 10) }
