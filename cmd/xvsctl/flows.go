package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/client"
)

const flowSyntaxHelp = `A flow is written as for ovs-ofctl add-flow, e.g.
  priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1
The server checks it completely before anything changes.
`

const filterHelp = `MATCH selects flows as ovs-ofctl does: every flow whose match is at least
as specific as MATCH (e.g. "udp" selects udp,tp_dst=7999 too); with
--strict only flows whose match and priority equal it. It may hold
priority= and cookie=VALUE[/MASK]. No MATCH selects every flow.
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
between. An empty FILE deletes every flow. FILE is read as for add-flows.
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
		name: "dump-flows", args: "[MATCH] [--strict]", min: 0, max: -1,
		summary: "print the flows MATCH selects (all without MATCH) with counters",
		help: filterHelp + `
Flows are printed as ovs-ofctl prints them, by table, highest priority first, with
where each one runs: datapath=xdp (the XDP program handles its packets
itself, they never reach userspace) or datapath=user(REASON):
 cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, datapath=xdp, priority=100,udp,tp_dst=7999 actions=output:p1
The output can be fed back to add-flows or replace-flows.
`,
		flags: func(fs *flag.FlagSet) func(*app, []string) error {
			strict := fs.Bool("strict", false, "select only flows whose match and priority equal MATCH")
			return func(a *app, args []string) error {
				flows, err := a.client.Flows(a.ctx, strings.Join(args, " "), *strict)
				if err != nil {
					return err
				}
				if a.g.json {
					return writeJSON(a.stdout, flows)
				}
				return writeFlows(a.stdout, flows)
			}
		},
	},
}

// writeFlows prints flows in ovs-ofctl dump-flows form.
func writeFlows(w io.Writer, flows []api.FlowStatus) error {
	for i := range flows {
		line, err := dumpLine(&flows[i])
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// dumpLine formats a flow as a line of ovs-ofctl dump-flows output:
//
//	cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, datapath=xdp, priority=100,udp,tp_dst=7999 actions=output:p1
//
// The match and actions come from the canonical text the server sends
// ("[cookie=C,][idle_timeout=N,][hard_timeout=N,]priority=P[,MATCH],actions=A",
// see api.Flow), unparsed: xvsctl needs no flow syntax of its own, so it
// prints the fields of a newer server as they are.
func dumpLine(fs *api.FlowStatus) (string, error) {
	i := strings.Index(fs.Text, "priority=")
	j := strings.Index(fs.Text, ",actions=")
	if i < 0 || j < i {
		return "", fmt.Errorf("flow %d from the server: %q is not in canonical form", fs.ID, fs.Text)
	}
	cookie := fs.Cookie
	if cookie == "" {
		cookie = "0x0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, " cookie=%s, duration=%.3fs, table=%d, n_packets=%d, n_bytes=%d, ", cookie, fs.DurationS, fs.Table, fs.Packets, fs.Bytes)
	if fs.IdleTimeoutS != 0 {
		fmt.Fprintf(&b, "idle_timeout=%d, ", fs.IdleTimeoutS)
	}
	if fs.HardTimeoutS != 0 {
		fmt.Fprintf(&b, "hard_timeout=%d, ", fs.HardTimeoutS)
	}
	fmt.Fprintf(&b, "idle_age=%d, ", int64(fs.IdleAgeS))
	switch {
	case fs.Datapath == "":
	case fs.DatapathReason != "":
		fmt.Fprintf(&b, "datapath=%s(%s), ", fs.Datapath, fs.DatapathReason)
	default:
		fmt.Fprintf(&b, "datapath=%s, ", fs.Datapath)
	}
	fmt.Fprintf(&b, "%s actions=%s", fs.Text[i:j], fs.Text[j+len(",actions="):])
	return b.String(), nil
}

// flowLine is a flow read from a file, with where it was.
type flowLine struct {
	line int
	text string
}

// readFlows reads one flow per line, skipping blank lines and # comments.
func readFlows(r io.Reader) ([]flowLine, error) {
	var flows []flowLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		flows = append(flows, flowLine{n, text})
	}
	return flows, sc.Err()
}

// loadFlows sends the flows of file (- = stdin) in one request: added, or
// replacing the table.
func (a *app) loadFlows(file string, replace bool) error {
	var r io.Reader = a.stdin
	name := "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r, name = f, file
	}
	lines, err := readFlows(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	req := make([]api.Flow, len(lines))
	for i, l := range lines {
		req[i] = api.Flow{Text: l.text}
	}
	// Without --json nothing of the answer is shown: ask for the IDs only,
	// not every flow as installed (for 100k flows, seconds of encoding).
	var out []api.FlowStatus
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
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Index >= 0 && ae.Index < len(lines) {
		// Name the line instead of the position in the request.
		e := *ae
		e.Index = -1
		return fmt.Errorf("%s:%d: %w", name, lines[ae.Index].line, &e)
	}
	if err != nil {
		return err
	}
	if a.g.json {
		return writeJSON(a.stdout, out)
	}
	return nil
}
