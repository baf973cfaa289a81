package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/client"
)

const groupSyntaxHelp = `A group is written as for ovs-ofctl add-group, e.g.
  group_id=1,type=select,bucket=weight:3,actions=output:wan1,bucket=weight:1,actions=output:wan2
Types: all, select, indirect, fast_failover (ff). A bucket has weight: (select),
watch_port: (the bucket is live only while that port is; fast_failover needs
it) and actions=, an OpenFlow action set written in the order it runs:
strip_vlan, push_vlan, dec_ttl, rewrites, then one output, in_port, group or
resubmit. Flows send to a group with actions=group:ID.
`

var groupCommands = []command{
	{
		name: "add-group", args: "GROUP", min: 1, max: -1,
		summary: "add one group",
		help:    groupSyntaxHelp + "\nSeveral arguments are joined with spaces. A group_id in use is an error.\n",
		flags: noFlags(func(a *app, args []string) error {
			out, err := a.client.AddGroups(a.ctx, []api.Group{{Text: strings.Join(args, " ")}})
			if err != nil {
				return err
			}
			return a.maybeJSON(out[0])
		}),
	},
	{
		name: "add-groups", args: "FILE", min: 1, max: 1, complete: "file",
		summary: "add the groups in FILE (- for stdin) as one transaction",
		help:    groupSyntaxHelp + "\nFILE holds one group per line; blank lines and # comments are skipped.\n",
		flags: noFlags(func(a *app, args []string) error {
			name, lines, err := a.readLines(args[0])
			if err != nil {
				return err
			}
			req := make([]api.Group, len(lines))
			for i, l := range lines {
				req[i] = api.Group{Text: l.text}
			}
			out, err := a.client.AddGroups(a.ctx, req)
			if err != nil {
				return lineError(name, lines, err)
			}
			return a.maybeJSON(out)
		}),
	},
	{
		name: "mod-group", args: "GROUP", min: 1, max: -1,
		summary: "replace the group with GROUP's group_id (its flows stay)",
		help:    groupSyntaxHelp + "\nThe group must exist; its counters start again.\n",
		flags: noFlags(func(a *app, args []string) error {
			text := strings.Join(args, " ")
			id, err := groupIDOf(text)
			if err != nil {
				return usagef("%v", err)
			}
			out, err := a.client.ModGroup(a.ctx, id, api.Group{Text: text})
			if err != nil {
				return err
			}
			return a.maybeJSON(out)
		}),
	},
	{
		name: "del-groups", args: "[group_id=N]", min: 0, max: 1,
		summary: "delete one group (or every group), and the flows that send to it",
		help: `As in OpenFlow, a group's flows go with it; they are printed, as they
were, with --json. Without group_id= every group is deleted.
`,
		flags: noFlags(func(a *app, args []string) error {
			if len(args) == 0 {
				out, err := a.client.ReplaceGroups(a.ctx, nil)
				if err != nil {
					return err
				}
				return a.maybeJSON(out)
			}
			id, err := groupIDOf(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			out, err := a.client.DeleteGroup(a.ctx, id)
			if err != nil {
				return err
			}
			return a.maybeJSON(out)
		}),
	},
	{
		name: "dump-groups", args: "[group_id=N]", min: 0, max: 1,
		summary: "print the groups (or one) as ovs-ofctl dump-groups does",
		help:    "The output can be fed back to add-groups.\n",
		flags: noFlags(func(a *app, args []string) error {
			groups, err := a.groupsArg(args)
			if err != nil {
				return err
			}
			if a.g.json {
				return writeJSON(a.stdout, groups)
			}
			for _, g := range groups {
				fmt.Fprintf(a.stdout, " %s\n", g.Text)
			}
			return nil
		}),
	},
	{
		name: "dump-group-stats", args: "[group_id=N]", min: 0, max: 1,
		summary: "print the groups' counters, per bucket, with which buckets are live",
		flags: noFlags(func(a *app, args []string) error {
			groups, err := a.groupsArg(args)
			if err != nil {
				return err
			}
			if a.g.json {
				return writeJSON(a.stdout, groups)
			}
			for _, g := range groups {
				writeGroupStats(a.stdout, &g)
			}
			return nil
		}),
	},
	{
		name: "dump-tables", min: 0, max: 0,
		summary: "print each table's flows, lookups and matches",
		help: `Table 0's lookups are every packet the XDP program classified; a miss
there goes to the kernel. The other tables count the lookups of goto_table
and resubmit; a goto_table that misses drops the packet.
`,
		flags: noFlags(func(a *app, args []string) error {
			ts, err := a.client.Tables(a.ctx)
			if err != nil {
				return err
			}
			if a.g.json {
				return writeJSON(a.stdout, ts)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "TABLE\tFLOWS\tLOOKUPS\tMATCHED\t")
			for _, t := range ts {
				fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t\n", t.Table, t.Flows, t.Lookups, t.Matched)
			}
			return tw.Flush()
		}),
	},
	{
		name: "add-bundle", args: "FILE", min: 1, max: 1, complete: "file",
		summary: "add the groups and flows in FILE as one transaction",
		help: `FILE holds groups (lines starting with group_id=) and flows, one per
line, in any order; blank lines and # comments are skipped. The groups are
added first, so the flows may send to them. All of it or none.
`,
		flags: noFlags(func(a *app, args []string) error { return a.loadBundle(args[0], false) }),
	},
	{
		name: "replace-bundle", args: "FILE", min: 1, max: 1, complete: "file",
		summary: "make the groups and flows exactly those in FILE, atomically",
		help: `A policy swap: groups and flows not in FILE are deleted, those in it
added, as one transaction; no packet sees a mix of old and new. FILE is read
as for add-bundle.
`,
		flags: noFlags(func(a *app, args []string) error { return a.loadBundle(args[0], true) }),
	},
}

// maybeJSON prints v as JSON with --json, and nothing otherwise.
func (a *app) maybeJSON(v any) error {
	if a.g.json {
		return writeJSON(a.stdout, v)
	}
	return nil
}

// groupIDOf reads the group_id= of a group's text or of "group_id=N".
func groupIDOf(text string) (uint32, error) {
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' }) {
		if v, ok := strings.CutPrefix(f, "group_id="); ok {
			id, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return 0, fmt.Errorf("group_id=%s: not a number", v)
			}
			return uint32(id), nil
		}
	}
	return 0, errors.New("no group_id=")
}

// groupsArg returns every group, or the one args names (group_id=N).
func (a *app) groupsArg(args []string) ([]api.GroupStatus, error) {
	if len(args) == 0 {
		return a.client.Groups(a.ctx)
	}
	id, err := groupIDOf(args[0])
	if err != nil {
		return nil, usagef("%v", err)
	}
	g, err := a.client.Group(a.ctx, id)
	if err != nil {
		return nil, err
	}
	return []api.GroupStatus{g}, nil
}

// writeGroupStats prints a group's counters as ovs-ofctl dump-group-stats
// does, with the buckets' liveness after them.
func writeGroupStats(w io.Writer, g *api.GroupStatus) {
	var id uint32
	if g.ID != nil {
		id = *g.ID
	}
	fmt.Fprintf(w, " group_id=%d,duration=%.3fs,ref_count=%d,packet_count=%d,byte_count=%d", id, g.DurationS, g.Flows, g.Packets, g.Bytes)
	for i, b := range g.Stats {
		fmt.Fprintf(w, ",bucket%d:packet_count=%d,byte_count=%d", i, b.Packets, b.Bytes)
	}
	var live []string
	for i, b := range g.Stats {
		state := "live"
		if !b.Live {
			state = "dead"
		}
		live = append(live, fmt.Sprintf("bucket%d=%s", i, state))
	}
	fmt.Fprintf(w, " (%s)\n", strings.Join(live, " "))
}

// readLines reads the non-blank, non-comment lines of file (- = stdin).
func (a *app) readLines(file string) (string, []flowLine, error) {
	var r io.Reader = a.stdin
	name := "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", nil, err
		}
		defer f.Close()
		r, name = f, file
	}
	lines, err := readFlows(r)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	return name, lines, nil
}

// lineError names the line of an error about an item of a request made
// from lines.
func lineError(name string, lines []flowLine, err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Index >= 0 && ae.Index < len(lines) {
		e := *ae
		e.Index = -1
		return fmt.Errorf("%s:%d: %w", name, lines[ae.Index].line, &e)
	}
	return err
}

// loadBundle sends the groups and flows of file as one bundle.
func (a *app) loadBundle(file string, replace bool) error {
	name, lines, err := a.readLines(file)
	if err != nil {
		return err
	}
	b := api.Bundle{Replace: replace}
	var glines, flines []flowLine
	for _, l := range lines {
		if strings.HasPrefix(l.text, "group_id=") {
			b.Groups = append(b.Groups, api.Group{Text: l.text})
			glines = append(glines, l)
		} else {
			b.Flows = append(b.Flows, api.Flow{Text: l.text})
			flines = append(flines, l)
		}
	}
	out, err := a.client.Bundle(a.ctx, b)
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Index >= 0 {
		// The server's message says which list first: "groups[i]",
		// "group i of n", "flows[i]", "flow i of n".
		if strings.HasPrefix(ae.Message, "group") {
			return lineError(name, glines, err)
		}
		return lineError(name, flines, err)
	}
	if err != nil {
		return err
	}
	return a.maybeJSON(out)
}
