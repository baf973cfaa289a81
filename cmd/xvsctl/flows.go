package main

import (
	"bufio"
	"flag"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"unsafe"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/client"
)

const flowSyntaxHelp = `A flow is written as for ovs-ofctl add-flow, e.g.
  priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1
The OXM/NXM names ovs-ofctl takes work too (eth_src, ip_dst, tcp_dst,
vlan_vid, set_field, load, ...). A port is a name (p0), an ofport number (1)
or a quoted name ("7"); a number is bound to its port's name when the flow
is added. The server checks the flow completely before anything changes.
`

const filterHelp = `MATCH selects flows as ovs-ofctl does: every flow whose match is at least
as specific as MATCH (e.g. "udp" selects udp,tp_dst=7999 too); with
--strict only flows whose match and priority equal it. It may hold
priority=, cookie=VALUE[/MASK], table=N, and out_port=PORT / out_group=ID
(flows with an output to that port or sending to that group). No MATCH
selects every flow.
`

var flowCommands = []command{
	{
		name: "add-flow", args: "FLOW", min: 1, max: -1,
		summary: "add one flow (replacing one with the same priority and match)",
		help:    flowSyntaxHelp + "\nSeveral arguments are joined with spaces.\n",
		flags: noFlags(func(a *app, args []string) error {
			fs, err := a.client.AddFlow(a.ctx, api.Flow{Text: strings.Join(args, " ")})
			if err != nil {
				return err
			}
			if a.g.json {
				return writeJSON(a.stdout, fs)
			}
			return nil
		}),
	},
	{
		name: "add-flows", args: "FILE", min: 1, max: 1, complete: "file",
		summary: "add the flows in FILE (- for stdin) as one transaction",
		help: flowSyntaxHelp + `
FILE holds one flow per line; blank lines and lines starting with # are
skipped. Either every flow is added or, if one is wrong, none is (the error
names its line). dump-flows output is valid input.
`,
		flags: noFlags(func(a *app, args []string) error {
			return a.loadFlows(args[0], false)
		}),
	},
	{
		name: "replace-flows", args: "FILE", min: 1, max: 1, complete: "file",
		summary: "make the flow table exactly the flows in FILE, atomically",
		help: `Like ovs-ofctl replace-flows --bundle: flows not in FILE are deleted and
those in it added, as one transaction; traffic never sees a table in
between. A flow in FILE exactly as installed (priority, match, cookie,
timeouts, actions) is left alone and keeps its counters, as in OVS, also
when FILE gives it twice. An empty FILE deletes every flow. FILE is read
as for add-flows.
`,
		flags: noFlags(func(a *app, args []string) error {
			return a.loadFlows(args[0], true)
		}),
	},
	{
		name: "del-flows", args: "[MATCH] [--strict]", min: 0, max: -1,
		summary: "delete the flows MATCH selects (all without MATCH)",
		help:    filterHelp + "\nWith --json the deleted flows are printed.\n",
		flags: func(fs *flag.FlagSet) func(*app, []string) error {
			strict := fs.Bool("strict", false, "select only flows whose match and priority equal MATCH")
			return func(a *app, args []string) error {
				deleted, err := a.client.DeleteFlows(a.ctx, api.DeleteFlowsRequest{Match: strings.Join(args, " "), Strict: *strict})
				if err != nil {
					return err
				}
				if a.g.json {
					return writeJSON(a.stdout, deleted)
				}
				return nil
			}
		},
	},
	{
		name: "dump-flows", args: "[MATCH] [--strict] [--ovs]", min: 0, max: -1,
		summary: "print the flows MATCH selects (all without MATCH) with counters",
		help: filterHelp + `
Flows are printed as ovs-ofctl prints them, by table, highest priority first, with
where each one runs: datapath=xdp (the XDP program handles its packets
itself, they never reach userspace) or datapath=user(REASON):
 cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, datapath=xdp, priority=100,udp,tp_dst=7999 actions=output:p1
The output can be fed back to add-flows or replace-flows. With --ovs the
datapath= field, which ovs-ofctl does not know, is left out: ovs-ofctl
add-flows then reads the lines too (it skips the counters, as xvsctl does;
ports are named, so the bridge needs ports of those names).
`,
		flags: func(fs *flag.FlagSet) func(*app, []string) error {
			strict := fs.Bool("strict", false, "select only flows whose match and priority equal MATCH")
			ovs := fs.Bool("ovs", false, "print lines ovs-ofctl add-flows reads: no datapath= field")
			return func(a *app, args []string) error {
				if !a.g.json {
					// The server prints the lines.
					return a.client.FlowsText(a.ctx, strings.Join(args, " "), *strict, *ovs, a.stdout)
				}
				flows, err := a.client.Flows(a.ctx, strings.Join(args, " "), *strict)
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, flows)
			}
		},
	},
}

// flowLine is a flow read from a file, with where it was.
type flowLine struct {
	line int
	text string
}

// maxFlowLine is the longest line readFlows takes (as bufio.Scanner's
// limit was).
const maxFlowLine = 1 << 20

// readFlows reads one flow per line, skipping blank lines and # comments.
// Lines split as bufio.Scanner splits them (a final line needs no
// newline; a \r before the newline is dropped); their texts share one
// string, the whole input's, not one each.
func readFlows(r io.Reader) ([]flowLine, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, err
	}
	// The bytes are never written again: the lines' texts are slices of
	// them, not a copy (for 160k flows, 16 MB).
	all := unsafe.String(unsafe.SliceData(data), len(data))
	var flows []flowLine
	for n := 1; len(all) > 0; n++ {
		line, rest, _ := strings.Cut(all, "\n")
		if len(line) > maxFlowLine {
			return nil, bufio.ErrTooLong
		}
		all = rest
		text := strings.TrimSpace(line)
		if text == "" || text[0] == '#' {
			continue
		}
		flows = append(flows, flowLine{n, text})
	}
	return flows, nil
}

// readAll is io.ReadAll, reading a file into a buffer of its size at
// once rather than one that doubles as it fills.
func readAll(r io.Reader) ([]byte, error) {
	f, ok := r.(*os.File)
	if !ok {
		return io.ReadAll(r)
	}
	size := 0
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = int(st.Size())
	}
	data := make([]byte, 0, size+1) // +1: room to see the end
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return data, err
		}
		if len(data) == cap(data) {
			data = slices.Grow(data, len(data)) // it grew
		}
	}
}

// loadFlows sends the flows of file (- = stdin) in one request: added, or
// replacing the table.
func (a *app) loadFlows(file string, replace bool) error {
	// What a bulk load allocates (the file, its lines, the body, the
	// answer) is live until it is done, so a collection finds next to no
	// garbage: it was a sixth of xvsctl's CPU for 160k flows, and its
	// threads compete with xvsd's for a small box's CPUs.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	name, lines, err := a.readLines(file)
	if err != nil {
		return err
	}
	// The body is written from the texts directly; one that is not valid
	// UTF-8 goes through encoding/json instead, which says what it makes
	// of it.
	var texts client.FlowTexts
	size := 0
	for _, l := range lines {
		size += len(l.text)
	}
	texts.Grow(size + len(lines)*len(`{"flow":""},`))
	for _, l := range lines {
		if !texts.Add(l.text) {
			return a.loadFlowsAPI(name, lines, replace)
		}
	}
	// Without --json nothing of the answer is shown: ask for the IDs only,
	// not every flow as installed (for 100k flows, seconds of encoding).
	var out []api.FlowStatus
	switch {
	case replace && a.g.json:
		out, err = a.client.ReplaceFlowTexts(a.ctx, &texts)
	case replace:
		_, err = a.client.ReplaceFlowTextsIDs(a.ctx, &texts)
	case a.g.json:
		out, err = a.client.AddFlowTexts(a.ctx, &texts)
	default:
		_, err = a.client.AddFlowTextsIDs(a.ctx, &texts)
	}
	return a.loadDone(name, lines, out, err)
}

// loadFlowsAPI is loadFlows for lines not all valid UTF-8.
func (a *app) loadFlowsAPI(name string, lines []flowLine, replace bool) error {
	req := make([]api.Flow, len(lines))
	for i, l := range lines {
		req[i] = api.Flow{Text: l.text}
	}
	var out []api.FlowStatus
	var err error
	switch {
	case replace && a.g.json:
		out, err = a.client.ReplaceFlows(a.ctx, req)
	case replace:
		_, err = a.client.ReplaceFlowsIDs(a.ctx, req)
	case a.g.json:
		out, err = a.client.AddFlows(a.ctx, req)
	default:
		_, err = a.client.AddFlowsIDs(a.ctx, req)
	}
	return a.loadDone(name, lines, out, err)
}

// loadDone reports the answer to a load of lines from name.
func (a *app) loadDone(name string, lines []flowLine, out []api.FlowStatus, err error) error {
	if err != nil {
		return lineError(name, lines, err)
	}
	if a.g.json {
		return writeJSON(a.stdout, out)
	}
	return nil
}
