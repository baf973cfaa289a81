// Package client is the Go client of xvsd's REST API. It speaks the wire
// types of package api and links nothing of the switch, so a program (xvsctl
// first) can drive xvsd without the datapath, the XDP program or netlink in
// its binary.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-project/xvs/api"
)

// DefaultServer is the server a Client talks to when none is named.
const DefaultServer = "unix:" + api.DefaultSocket

// Options configure a Client.
type Options struct {
	Token   string        // bearer token sent with every request; "" sends none
	Timeout time.Duration // per request; 0 means 30s
}

// Client talks to xvsd's REST API. It is safe for concurrent use.
//
// Every method returns an *APIError when the server answered with an error
// status, carrying the server's code, message, the field at fault and the
// index of the bad item in an array request; errors.Is(err, api.CodeX)
// tests its code.
type Client struct {
	base  string // scheme://host, no trailing slash
	token string
	http  *http.Client
}

// New returns a Client for server: "unix:PATH", "tcp:HOST:PORT",
// "http://HOST:PORT" or "https://HOST:PORT".
func New(server string, opts Options) (*Client, error) {
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
		data, ok := body.(encoded)
		if !ok {
			var err error
			if data, err = json.Marshal(body); err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
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
	if body != nil || method == http.MethodPost || method == http.MethodPut {
		// The server takes no write without it (a web page cannot send it
		// to another origin).
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
	if raw, ok := out.(*rawAnswer); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// APIError is an error answer from the server.
type APIError struct {
	Status  int           // HTTP status code
	Code    api.ErrorCode // the server's code; for an answer without one, api.CodeForStatus
	Message string        // the server's message
	Field   string        // the field at fault, if the server named one
	Index   int           // position of the bad item in an array request; -1 if none
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Index >= 0 {
		msg = fmt.Sprintf("item %d: %s", e.Index, msg)
	}
	if e.Field != "" {
		msg = fmt.Sprintf("%s (field %s)", msg, e.Field)
	}
	return msg
}

// Is reports whether target is the error's code:
// errors.Is(err, api.CodeNoSuchPort). Only the code counts, never the
// status: a missing flow is not a missing port though both are 404.
func (e *APIError) Is(target error) bool {
	c, ok := target.(api.ErrorCode)
	return ok && e.Code != "" && c == e.Code
}

func apiError(status int, body []byte) error {
	e := &APIError{Status: status, Index: -1}
	var er api.ErrorResponse
	if err := json.Unmarshal(body, &er); err == nil && er.Error != "" {
		e.Message, e.Field, e.Code = er.Error, er.Field, er.Code
		if er.Index != nil {
			e.Index = *er.Index
		}
	} else {
		e.Message = strings.TrimSpace(string(body))
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	if e.Code == "" {
		e.Code = api.CodeForStatus(status)
	}
	return e
}

// Ports lists the switch's ports.
func (c *Client) Ports(ctx context.Context) ([]api.PortInfo, error) {
	var ports []api.PortInfo
	err := c.do(ctx, http.MethodGet, api.PathPorts, nil, nil, &ports)
	return ports, err
}

// AddPort attaches a netdev to the switch.
func (c *Client) AddPort(ctx context.Context, req api.PortRequest) (api.PortInfo, error) {
	var info api.PortInfo
	err := c.do(ctx, http.MethodPost, api.PathPorts, nil, req, &info)
	return info, err
}

// Port describes one port.
func (c *Client) Port(ctx context.Context, name string) (api.PortInfo, error) {
	var info api.PortInfo
	err := c.do(ctx, http.MethodGet, portPath(name), nil, nil, &info)
	return info, err
}

// DeletePort detaches a port.
func (c *Client) DeletePort(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, portPath(name), nil, nil, nil)
}

// PortStats returns one port's counters.
func (c *Client) PortStats(ctx context.Context, name string) (api.PortStats, error) {
	var st api.PortStats
	err := c.do(ctx, http.MethodGet, portPath(name)+api.PortStatsSuffix, nil, nil, &st)
	return st, err
}

func portPath(name string) string { return api.PathPorts + "/" + url.PathEscape(name) }

// Stats returns the switch's counters.
func (c *Client) Stats(ctx context.Context) (api.Stats, error) {
	var st api.Stats
	err := c.do(ctx, http.MethodGet, api.PathStats, nil, nil, &st)
	return st, err
}

// Frames says where the frames of every UMEM are (GET /v1/frames).
func (c *Client) Frames(ctx context.Context) ([]api.FrameStats, error) {
	var out []api.FrameStats
	err := c.do(ctx, http.MethodGet, api.PathFrames, nil, nil, &out)
	return out, err
}

// Health returns nil when the server says it is healthy, else an *APIError
// (status 503) with what is wrong.
func (c *Client) Health(ctx context.Context) error {
	var h api.HealthResponse
	if err := c.do(ctx, http.MethodGet, api.PathHealth, nil, nil, &h); err != nil {
		return err
	}
	if h.Status != api.HealthOK {
		return errors.New("server unhealthy: " + h.Error)
	}
	return nil
}

// Metrics returns the Prometheus text exposition of /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.PathMetrics, nil)
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

// Flows lists the installed flows, by table, highest priority first. filter, if not
// empty, selects flows as ovs-ofctl dump-flows does (see DeleteFlowsRequest);
// strict selects only flows whose match and priority equal the filter's.
func (c *Client) Flows(ctx context.Context, filter string, strict bool) ([]api.FlowStatus, error) {
	q := url.Values{}
	if filter != "" {
		q.Set("match", filter)
	}
	if strict {
		q.Set("strict", "true")
	}
	var flows []api.FlowStatus
	err := c.do(ctx, http.MethodGet, api.PathFlows, q, nil, &flows)
	return flows, err
}

// FlowsText writes to w the flows Flows would list, as ovs-ofctl
// dump-flows prints them, one line each (what xvsctl dump-flows shows). A
// server answers it faster than the JSON of many flows. ovs leaves out the
// datapath= field, so that ovs-ofctl add-flows reads the lines.
func (c *Client) FlowsText(ctx context.Context, filter string, strict, ovs bool, w io.Writer) error {
	q := url.Values{}
	if filter != "" {
		q.Set("match", filter)
	}
	if strict {
		q.Set("strict", "true")
	}
	if ovs {
		q.Set("ovs", "true")
	}
	u := c.base + api.PathFlows
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return apiError(resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return fmt.Errorf("GET %s: answer is %q, not text/plain", api.PathFlows, ct)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: read answer: %w", api.PathFlows, err)
	}
	return nil
}

// AddFlow installs one flow, given in either form of api.Flow
// (e.g. api.Flow{Text: "udp,tp_dst=7999,actions=output:p1"}).
func (c *Client) AddFlow(ctx context.Context, f api.Flow) (api.FlowStatus, error) {
	var out api.FlowStatus
	err := c.do(ctx, http.MethodPost, api.PathFlows, nil, f, &out)
	return out, err
}

// AddFlows installs flows as one transaction: all of them or, on error,
// none. An *APIError's Index names the flow at fault.
func (c *Client) AddFlows(ctx context.Context, flows []api.Flow) ([]api.FlowStatus, error) {
	if flows == nil {
		flows = []api.Flow{}
	}
	var out []api.FlowStatus
	err := c.do(ctx, http.MethodPost, api.PathFlows, nil, encodeFlows(flows), &out)
	return out, err
}

// AddFlowsIDs is AddFlows answered with the new flows' IDs only (FlowIDs),
// which for many flows is much faster than the full answer.
func (c *Client) AddFlowsIDs(ctx context.Context, flows []api.Flow) ([]uint64, error) {
	return c.flowsMinimal(ctx, http.MethodPost, flows)
}

// ReplaceFlowsIDs is ReplaceFlows answered with the new flows' IDs only.
func (c *Client) ReplaceFlowsIDs(ctx context.Context, flows []api.Flow) ([]uint64, error) {
	return c.flowsMinimal(ctx, http.MethodPut, flows)
}

// AddFlowTexts is AddFlows for flows given as texts.
func (c *Client) AddFlowTexts(ctx context.Context, flows *FlowTexts) ([]api.FlowStatus, error) {
	var out []api.FlowStatus
	err := c.do(ctx, http.MethodPost, api.PathFlows, nil, flows.encoded(), &out)
	return out, err
}

// AddFlowTextsIDs is AddFlowsIDs for flows given as texts.
func (c *Client) AddFlowTextsIDs(ctx context.Context, flows *FlowTexts) ([]uint64, error) {
	return c.minimal(ctx, http.MethodPost, flows.encoded(), flows.Len())
}

// ReplaceFlowTexts is ReplaceFlows for flows given as texts.
func (c *Client) ReplaceFlowTexts(ctx context.Context, flows *FlowTexts) ([]api.FlowStatus, error) {
	var out []api.FlowStatus
	err := c.do(ctx, http.MethodPut, api.PathFlows, nil, flows.encoded(), &out)
	return out, err
}

// ReplaceFlowTextsIDs is ReplaceFlowsIDs for flows given as texts.
func (c *Client) ReplaceFlowTextsIDs(ctx context.Context, flows *FlowTexts) ([]uint64, error) {
	return c.minimal(ctx, http.MethodPut, flows.encoded(), flows.Len())
}

func (c *Client) flowsMinimal(ctx context.Context, method string, flows []api.Flow) ([]uint64, error) {
	if flows == nil {
		flows = []api.Flow{}
	}
	return c.minimal(ctx, method, encodeFlows(flows), len(flows))
}

// minimal sends body, n flows, asking for their IDs only.
func (c *Client) minimal(ctx context.Context, method string, body any, n int) ([]uint64, error) {
	var raw rawAnswer
	if err := c.doHeader(ctx, method, api.PathFlows, nil, http.Header{"Prefer": {"return=minimal"}}, body, &raw); err != nil {
		return nil, err
	}
	// A server may ignore the preference (RFC 7240), as xvsd before it did:
	// then the answer is the flows, and the IDs are theirs.
	var ids []uint64
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		var full []api.FlowStatus
		if err := json.Unmarshal(t, &full); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, api.PathFlows, err)
		}
		for _, f := range full {
			ids = append(ids, f.ID)
		}
	} else if ids = readFlowIDs(t); ids == nil {
		var out api.FlowIDs
		if err := json.Unmarshal(t, &out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, api.PathFlows, err)
		}
		ids = out.IDs
	}
	if len(ids) != n {
		return ids, fmt.Errorf("%s %s: %d IDs for %d flows", method, api.PathFlows, len(ids), n)
	}
	return ids, nil
}

// rawAnswer is a successful answer's body as it came, not decoded: to
// decode it, the caller first has to see what it is.
type rawAnswer []byte

// readFlowIDs reads the FlowIDs the server writes, {"ids":[1,2,...]}
// exactly, without encoding/json (for 160k flows, a tenth of the
// client's time); nil for anything else (encoding/json decodes it).
func readFlowIDs(b []byte) []uint64 {
	const head, tail = `{"ids":[`, `]}`
	if len(b) < len(head)+len(tail) || string(b[:len(head)]) != head || string(b[len(b)-len(tail):]) != tail {
		return nil
	}
	b = b[len(head) : len(b)-len(tail)]
	ids := make([]uint64, 0, len(b)/7+1)
	if len(b) == 0 {
		return ids
	}
	for i := 0; ; {
		start := i
		var v uint64
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			d := uint64(b[i] - '0')
			if v > (math.MaxUint64-d)/10 {
				return nil // not ours to judge: encoding/json says it
			}
			v = v*10 + d
		}
		if i == start || b[start] == '0' && i-start > 1 {
			return nil
		}
		ids = append(ids, v)
		if i == len(b) {
			return ids
		}
		if b[i] != ',' {
			return nil
		}
		i++
	}
}

// ReplaceFlows makes the flow table exactly flows, atomically (like
// ovs-ofctl replace-flows --bundle). An empty list deletes every flow.
func (c *Client) ReplaceFlows(ctx context.Context, flows []api.Flow) ([]api.FlowStatus, error) {
	if flows == nil {
		flows = []api.Flow{}
	}
	var out []api.FlowStatus
	err := c.do(ctx, http.MethodPut, api.PathFlows, nil, encodeFlows(flows), &out)
	return out, err
}

// Flow returns one flow by ID.
func (c *Client) Flow(ctx context.Context, id uint64) (api.FlowStatus, error) {
	var out api.FlowStatus
	err := c.do(ctx, http.MethodGet, flowPath(id), nil, nil, &out)
	return out, err
}

// DeleteFlow deletes one flow by ID and returns it as it was.
func (c *Client) DeleteFlow(ctx context.Context, id uint64) (api.FlowStatus, error) {
	var out api.FlowStatus
	err := c.do(ctx, http.MethodDelete, flowPath(id), nil, nil, &out)
	return out, err
}

// DeleteFlows deletes the flows req selects (every flow when req.Match is
// empty) as one transaction and returns them as they were.
func (c *Client) DeleteFlows(ctx context.Context, req api.DeleteFlowsRequest) ([]api.FlowStatus, error) {
	var out []api.FlowStatus
	err := c.do(ctx, http.MethodPost, api.PathFlowsDelete, nil, req, &out)
	return out, err
}

func flowPath(id uint64) string { return api.PathFlows + "/" + strconv.FormatUint(id, 10) }

func groupPath(id uint32) string { return api.PathGroups + "/" + strconv.FormatUint(uint64(id), 10) }

// Groups lists the installed groups with their counters, by ID.
func (c *Client) Groups(ctx context.Context) ([]api.GroupStatus, error) {
	var out []api.GroupStatus
	err := c.do(ctx, http.MethodGet, api.PathGroups, nil, nil, &out)
	return out, err
}

// Group returns one group by ID.
func (c *Client) Group(ctx context.Context, id uint32) (api.GroupStatus, error) {
	var out api.GroupStatus
	err := c.do(ctx, http.MethodGet, groupPath(id), nil, nil, &out)
	return out, err
}

// AddGroups adds groups as one transaction: all of them or, on error,
// none. An *APIError's Index names the group at fault.
func (c *Client) AddGroups(ctx context.Context, groups []api.Group) ([]api.GroupStatus, error) {
	if groups == nil {
		groups = []api.Group{}
	}
	var out []api.GroupStatus
	err := c.do(ctx, http.MethodPost, api.PathGroups, nil, groups, &out)
	return out, err
}

// ReplaceGroups makes the groups exactly groups, atomically; the flows that
// sent to a group that goes go with it (the answer lists them).
func (c *Client) ReplaceGroups(ctx context.Context, groups []api.Group) (api.GroupsReplaced, error) {
	if groups == nil {
		groups = []api.Group{}
	}
	var out api.GroupsReplaced
	err := c.do(ctx, http.MethodPut, api.PathGroups, nil, groups, &out)
	return out, err
}

// ModGroup replaces the group g names (mod-group).
func (c *Client) ModGroup(ctx context.Context, id uint32, g api.Group) (api.GroupStatus, error) {
	var out api.GroupStatus
	err := c.do(ctx, http.MethodPut, groupPath(id), nil, g, &out)
	return out, err
}

// DeleteGroup deletes one group and the flows that send to it, and returns
// both as they were.
func (c *Client) DeleteGroup(ctx context.Context, id uint32) (api.GroupDeleted, error) {
	var out api.GroupDeleted
	err := c.do(ctx, http.MethodDelete, groupPath(id), nil, nil, &out)
	return out, err
}

// Bundle applies groups and flows as one transaction (see api.Bundle).
func (c *Client) Bundle(ctx context.Context, b api.Bundle) (api.BundleResult, error) {
	var out api.BundleResult
	err := c.do(ctx, http.MethodPost, api.PathBundle, nil, b, &out)
	return out, err
}

// Tables returns the counters of the tables that have flows or were looked
// up in.
func (c *Client) Tables(ctx context.Context) ([]api.TableStats, error) {
	var out []api.TableStats
	err := c.do(ctx, http.MethodGet, api.PathTables, nil, nil, &out)
	return out, err
}

// Trace shows what the switch does with a packet, changing nothing.
func (c *Client) Trace(ctx context.Context, req api.TraceRequest) (api.Trace, error) {
	var out api.Trace
	err := c.do(ctx, http.MethodPost, api.PathTrace, nil, req, &out)
	return out, err
}

// SetLiveness sets how port name's liveness is decided: auto (its link),
// live or dead.
func (c *Client) SetLiveness(ctx context.Context, name string, l api.Liveness) (api.PortInfo, error) {
	var info api.PortInfo
	err := c.do(ctx, http.MethodPut, portPath(name)+api.PortLivenessSuffix, nil, api.LivenessRequest{Liveness: l}, &info)
	return info, err
}

// Events follows GET /v1/events until ctx is done or the stream ends, and
// calls fn with each event. With after >= 0 the stream resumes after that
// event ID (api.EventLost first if some are gone from the backlog); with
// after < 0 it starts now. It returns the ID of the last event seen, to
// resume from, and why the stream ended (ctx.Err() when ctx ended it).
// The client's timeout does not apply to the stream.
func (c *Client) Events(ctx context.Context, after int64, fn func(api.Event) error) (uint64, error) {
	last := uint64(max(after, 0))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.PathEvents, nil)
	if err != nil {
		return last, err
	}
	if after >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return last, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return last, apiError(resp.StatusCode, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue // id:, event: (data has both), comments, blank lines
		}
		var e api.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return last, fmt.Errorf("event %q: %w", data, err)
		}
		if e.ID != 0 {
			last = e.ID
		}
		if err := fn(e); err != nil {
			return last, err
		}
	}
	if err := ctx.Err(); err != nil {
		return last, err
	}
	if err := sc.Err(); err != nil {
		return last, fmt.Errorf("events: %w", err)
	}
	return last, io.ErrUnexpectedEOF
}
