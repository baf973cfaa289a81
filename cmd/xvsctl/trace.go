package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/xvs-project/xvs/api"
)

var traceCommand = command{
	name: "trace", args: "FIELDS | --packet HEX in_port=PORT", min: 1, max: 1, complete: "",
	summary: "show what the switch does with a packet (like ovs-appctl ofproto/trace)",
	help: `FIELDS describe the packet in match syntax, with the port it arrives on:
  xvsctl trace in_port=p0,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=7999
The switch builds that frame (fields not given are zero; lengths and
checksums right). With --packet the frame is given in hex instead, and the
argument is in_port=PORT.

It prints the XDP program's decision, made by running the loaded program
on the frame with the live maps; then, for a frame it sends to userspace,
each table looked up and the flow that matched, each action and the packet
after it, each group and the bucket it chose; then what comes out: the
ports it is sent on, or that it is dropped and why, or that the kernel has
it. Tracing changes nothing: no counters, no caches.
`,
	flags: func(fs *flag.FlagSet) func(*app, []string) error {
		packet := fs.String("packet", "", "the frame to trace, in hex (the argument is then in_port=PORT)")
		queue := fs.Int("queue", 0, "the RX queue the frame arrives on")
		return func(a *app, args []string) error {
			req := api.TraceRequest{Flow: args[0], Queue: *queue}
			if *packet != "" {
				port, ok := strings.CutPrefix(args[0], "in_port=")
				if !ok || strings.Contains(port, ",") {
					return usagef("with --packet the argument is in_port=PORT, not %q", args[0])
				}
				req = api.TraceRequest{Packet: *packet, InPort: port, Queue: *queue}
			}
			tr, err := a.client.Trace(a.ctx, req)
			if err != nil {
				return err
			}
			if a.g.json {
				return writeJSON(a.stdout, tr)
			}
			writeTrace(a.stdout, &tr)
			return nil
		}
	},
}

// writeTrace prints a trace in the layout of ovs-appctl ofproto/trace.
func writeTrace(w io.Writer, tr *api.Trace) {
	fmt.Fprintf(w, "Flow: %s\n\n", tr.Flow)
	title := fmt.Sprintf("XDP program (port %s, queue %d)", tr.InPort, tr.Queue)
	fmt.Fprintf(w, "%s\n%s\n", title, strings.Repeat("-", len(title)))
	x := &tr.XDP
	switch x.Reason {
	case "rule":
		fmt.Fprintf(w, "rule of %s\n", flowTitle(x.Flow))
	case "no_match":
		fmt.Fprintln(w, "no rule matched")
	case "malformed":
		fmt.Fprintln(w, "the parser refused the headers")
	case "no_socket":
		fmt.Fprintf(w, "rule of %s, but queue %d has no AF_XDP socket\n", flowTitle(x.Flow), tr.Queue)
	case "unknown_port":
		fmt.Fprintln(w, "the device is not in the program's port map")
	default:
		fmt.Fprintln(w, x.Reason)
	}
	if x.Cached {
		fmt.Fprintln(w, "answered by the exact-match cache")
	} else {
		fmt.Fprintf(w, "masks looked up: %d\n", x.Masks)
	}
	if x.FastPath != "" && x.FastPath != "forwarded" {
		fmt.Fprintf(w, "fast path: %s\n", fastPathTexts[x.FastPath])
	}
	fmt.Fprintf(w, "verdict: %s\n", xdpVerdicts[x.Verdict])

	if len(tr.Steps) > 0 {
		if x.Verdict == "forward" {
			fmt.Fprintf(w, "\nbridge(\"xvs\"), as the XDP fast path carried it out\n----------------------------------------------------\n")
		} else {
			fmt.Fprintf(w, "\nbridge(\"xvs\")\n-------------\n")
		}
		writeSteps(w, tr.Steps, strings.TrimPrefix(tr.Flow, "in_port="+tr.InPort+","))
	}
	fmt.Fprintln(w)
	final := tr.Flow
	var acts []string
	for _, o := range tr.Outputs {
		if o.Port != "" {
			acts = append(acts, "output:"+o.Port)
			if final == tr.Flow {
				final = o.Flow
			}
		} else {
			acts = append(acts, "drop("+o.Drop+")")
		}
	}
	if len(tr.Steps) > 0 {
		fmt.Fprintf(w, "Final flow: %s\n", final)
	}
	switch tr.Result {
	case api.TraceResultOutput:
		in := ""
		if x.Verdict == "forward" {
			in = " (in XDP)"
		}
		fmt.Fprintf(w, "Datapath actions: %s%s\n", strings.Join(acts, ","), in)
		for _, o := range tr.Outputs {
			if o.Port != "" && o.Flow != final {
				fmt.Fprintf(w, "  sent on %s: %s\n", o.Port, o.Flow)
			}
		}
	case api.TraceResultKernel:
		fmt.Fprintln(w, "Datapath actions: kernel (XDP_PASS: the host's stack has the packet)")
	default:
		where := "in userspace"
		if strings.HasPrefix(tr.Drop, "xdp_") {
			where = "in XDP"
		}
		fmt.Fprintf(w, "Datapath actions: drop (%s, %s)\n", tr.Drop, where)
	}
	if tr.Disagree != "" {
		fmt.Fprintf(w, "\nwarning: %s\n", tr.Disagree)
	}
}

var xdpVerdicts = map[string]string{
	"redirect": "to userspace (XDP_REDIRECT to the queue's AF_XDP socket)",
	"forward":  "forwarded in XDP (the fast path carried out the flow's actions)",
	"pass":     "to the kernel (XDP_PASS)",
	"drop":     "dropped (XDP_DROP)",
	"aborted":  "aborted (XDP_ABORTED: a bug in the program)",
}

var fastPathTexts = map[string]string{
	"user":  "a check failed (see dump-flows' datapath=): handed to userspace untouched",
	"stale": "the rule's action record was another flow's (a flow change raced): handed to userspace",
	"error": "failed after rewriting: dropped",
}

// writeSteps prints the pipeline's steps, each nesting level four columns
// in, as ofproto/trace does; a packet is printed after the action that
// changed it.
func writeSteps(w io.Writer, steps []api.TraceStep, packet string) {
	for _, s := range steps {
		in := strings.Repeat("    ", s.Depth)
		switch s.Kind {
		case "lookup":
			if s.Flow == nil {
				fmt.Fprintf(w, "%s%2d. No match.\n", in, *s.Table)
			} else {
				fmt.Fprintf(w, "%s%2d. %s\n", in, *s.Table, flowTitle(s.Flow))
			}
		case "action":
			fmt.Fprintf(w, "%s%s\n", in, s.Action)
			if s.PacketFlow != "" && s.PacketFlow != packet {
				if d := changedFields(packet, s.PacketFlow); d != "" {
					fmt.Fprintf(w, "%s -> %s\n", in, d)
				}
				packet = s.PacketFlow
			}
		case "group":
			if *s.Bucket < 0 {
				fmt.Fprintf(w, "%s -> group %d has no live bucket: drop\n", in, *s.Group)
			} else {
				fmt.Fprintf(w, "%s -> using bucket %d\n", in, *s.Bucket)
			}
		case "bucket":
			fmt.Fprintf(w, "%sbucket %d\n", in, *s.Bucket)
		default:
			fmt.Fprintf(w, "%s%s\n", in, s.Note)
		}
	}
}

// changedFields returns the fields of flow now that differ from before, as
// "nw_tos=184,tp_dst=6002"; a field now lacks is "-field".
func changedFields(before, now string) string {
	old := map[string]string{}
	for _, f := range strings.Split(before, ",") {
		k, _, _ := strings.Cut(f, "=")
		old[k] = f
	}
	var out []string
	for _, f := range strings.Split(now, ",") {
		k, _, _ := strings.Cut(f, "=")
		if old[k] != f {
			out = append(out, f)
		}
		delete(old, k)
	}
	for _, f := range strings.Split(before, ",") {
		if k, _, _ := strings.Cut(f, "="); old[k] != "" {
			out = append(out, "-"+k)
		}
	}
	return strings.Join(out, ",")
}

// flowTitle names a flow as ofproto/trace does, "MATCH, priority P,
// cookie C", and adds its ID.
func flowTitle(f *api.Flow) string {
	if f == nil {
		return "a flow no longer in the table"
	}
	text, _, _ := strings.Cut(f.Text, ",actions=")
	var match []string
	prio, cookie := "", ""
	for _, p := range strings.Split(text, ",") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "priority":
			prio = v
		case "cookie":
			cookie = v
		case "table", "idle_timeout", "hard_timeout":
		default:
			match = append(match, p)
		}
	}
	parts := []string{"priority " + prio}
	if len(match) > 0 {
		parts = append([]string{strings.Join(match, ",")}, parts...)
	}
	if cookie != "" {
		parts = append(parts, "cookie "+cookie)
	}
	return fmt.Sprintf("%s (flow %d)", strings.Join(parts, ", "), f.ID)
}
