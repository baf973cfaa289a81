package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xvs-project/xvs/api"
)

var portCommands = []command{
	{
		name: "add-port", args: "NAME [--mode MODE]", min: 1, max: 1, complete: "netdev",
		summary: "attach the netdev NAME to the switch",
		help: `The XDP program is attached in the given mode: native (driver), generic
(skb), or auto (native if the driver can, else generic; the default). The
port's RX queues each get an AF_XDP socket. "show" tells what was chosen.
`,
		flags: func(fs *flag.FlagSet) func(*app, []string) error {
			mode := fs.String("mode", "auto", "XDP attach mode: native, generic or auto")
			return func(a *app, args []string) error {
				info, err := a.client.AddPort(a.ctx, api.PortRequest{Name: args[0], Mode: api.XDPMode(*mode)})
				if err != nil {
					return err
				}
				if a.g.json {
					return writeJSON(a.stdout, info)
				}
				return nil
			}
		},
	},
	{
		name: "del-port", args: "NAME", min: 1, max: 1, complete: "port",
		summary: "detach port NAME from the switch",
		help: `The XDP program and the port's sockets go; the netdev's traffic goes back
to the host stack. Flows that name the port stay, as in Open vSwitch.
`,
		flags: noFlags(func(a *app, args []string) error {
			return a.client.DeletePort(a.ctx, args[0])
		}),
	},
	{
		name: "show", args: "", min: 0, max: 0,
		summary: "list the ports: ofport, active/max RX queues, XDP mode, xsk/umem mode, state",
		flags: noFlags(func(a *app, _ []string) error {
			ports, err := a.client.Ports(a.ctx)
			if err != nil {
				return err
			}
			if a.g.json {
				return writeJSON(a.stdout, ports)
			}
			return writePorts(a.stdout, ports)
		}),
	},
	{
		name: "dump-ports", args: "[NAME]", min: 0, max: 1, complete: "port",
		summary: "print port counters (all ports, or NAME)",
		help: `For each port: packets and bytes received from and sent to it, drops by
reason (rx: frames the port received that went nowhere, e.g. no_flow,
dec_ttl_zero, port_gone; tx: frames for the port that could not be sent,
e.g. tx_ring_full), the XDP program's verdicts, and the kernel's AF_XDP
socket statistics.
`,
		flags: noFlags(func(a *app, args []string) error {
			var stats []api.PortStats
			if len(args) == 1 {
				st, err := a.client.PortStats(a.ctx, args[0])
				if err != nil {
					return err
				}
				stats = []api.PortStats{st}
			} else {
				st, err := a.client.Stats(a.ctx)
				if err != nil {
					return err
				}
				stats = st.Ports
			}
			if a.g.json {
				return writeJSON(a.stdout, stats)
			}
			return writePortStats(a.stdout, stats)
		}),
	},
}

var statsCommand = command{
	name: "stats", args: "", min: 0, max: 0,
	summary: "print switch totals and poller counters",
	help: `Per poller (one per RX queue index): batches and packets received, busy and
idle time, returns from poll(2), and HANDOFFS: frames other pollers passed
it for a port queue it serves (ports with fewer queues than the switch has
pollers).
`,
	flags: noFlags(func(a *app, _ []string) error {
		st, err := a.client.Stats(a.ctx)
		if err != nil {
			return err
		}
		if a.g.json {
			return writeJSON(a.stdout, st)
		}
		return writeStats(a.stdout, st)
	}),
}

// noFlags is the flags func of a command without flags of its own.
func noFlags(run func(a *app, args []string) error) func(*flag.FlagSet) func(*app, []string) error {
	return func(*flag.FlagSet) func(*app, []string) error { return run }
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writePorts prints the ports; QUEUES is the device's active/maximum RX
// queues. A port that is not up (degraded: an active queue without a
// socket; absent or failed: no device attached) says why below the table.
func writePorts(w io.Writer, ports []api.PortInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tOFPORT\tIFINDEX\tMAC\tMTU\tQUEUES\tXDP\tXSK\tUMEM\tSTATE\tLIVE\tFASTPATH_OUT")
	for _, p := range ports {
		if p.State == "absent" || p.State == "failed" {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t-\t-\t%s\t%s\t-\n", p.Name, p.OFPort, p.State, liveText(&p))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			p.Name, p.OFPort, p.Ifindex, p.MAC, p.MTU, p.ActiveQueues, p.MaxQueues, p.XDPMode, p.XSKMode, p.UmemMode, p.State, liveText(&p), p.FastPathOut)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range ports {
		switch {
		case p.State == "absent" || p.State == "failed":
			fmt.Fprintf(w, "port %s %s: %s (kept with its flows; attached when its device appears; del-port removes it)\n", p.Name, p.State, p.Problem)
		case p.Problem != "":
			fmt.Fprintf(w, "port %s %s: %s (%d of %d active queues served)\n", p.Name, p.State, p.Problem, p.Queues, p.ActiveQueues)
		}
	}
	return nil
}

// liveText says whether a port is live, and why when it is not its link
// that decides: "yes", "no (no carrier)", "no (set dead)".
func liveText(p *api.PortInfo) string {
	yes := map[bool]string{true: "yes", false: "no"}[p.Live]
	switch {
	case p.State == "absent" || p.State == "failed":
		return "no (" + p.State + ")"
	case p.Liveness != "" && p.Liveness != api.LivenessAuto:
		return yes + " (set " + string(p.Liveness) + ")"
	case !p.LinkUp:
		return yes + " (link down)"
	case !p.Carrier:
		return yes + " (no carrier)"
	}
	return yes
}

// kv formats name=value pairs joined with ", ".
func kv(pairs ...any) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v=%v", pairs[i], pairs[i+1])
	}
	return b.String()
}

// counters formats a list of counters as name=packets pairs.
func counters(cs []api.Counter) string {
	pairs := make([]any, 0, 2*len(cs))
	for _, c := range cs {
		pairs = append(pairs, c.Name, c.Packets)
	}
	return kv(pairs...)
}

// sum adds up a list of counters.
func sum(cs []api.Counter) uint64 {
	var n uint64
	for _, c := range cs {
		n += c.Packets
	}
	return n
}

func writePortStats(w io.Writer, stats []api.PortStats) error {
	fmt.Fprintf(w, "port stats: %d ports\n", len(stats))
	for _, p := range stats {
		fmt.Fprintf(w, "  port %2d: %s\n", p.OFPort, p.Name)
		fmt.Fprintf(w, "           rx %s (%s)\n", kv("pkts", p.RxPackets, "bytes", p.RxBytes, "drop", sum(p.RxDrops)), counters(p.RxDrops))
		fmt.Fprintf(w, "           tx %s (%s)\n", kv("pkts", p.TxPackets, "bytes", p.TxBytes, "drop", sum(p.TxDrops)), counters(p.TxDrops))
		fmt.Fprintf(w, "           xdp %s\n", counters(p.XDP))
		x := p.XSK
		fmt.Fprintf(w, "           xsk %s\n", kv("rx_dropped", x.RxDropped, "rx_ring_full", x.RxRingFull,
			"fill_ring_empty", x.RxFillRingEmptyDescs, "tx_ring_empty", x.TxRingEmptyDescs,
			"rx_invalid", x.RxInvalidDescs, "tx_invalid", x.TxInvalidDescs))
	}
	return nil
}

func writeStats(w io.Writer, st api.Stats) error {
	var rx, rxB, tx, txB, drops uint64
	for _, p := range st.Ports {
		rx += p.RxPackets
		rxB += p.RxBytes
		tx += p.TxPackets
		txB += p.TxBytes
		drops += sum(p.RxDrops) + sum(p.TxDrops)
	}
	fmt.Fprintf(w, "uptime %s, %d ports, %d flows (%d in the XDP fast path), %d steering masks\n",
		seconds(st.UptimeS).Truncate(time.Second), len(st.Ports), st.Flows, st.FastPathFlows, st.Masks)
	fmt.Fprintf(w, "total: rx %s; tx %s; %s\n", kv("pkts", rx, "bytes", rxB), kv("pkts", tx, "bytes", txB), kv("drop", drops))
	if len(st.Pollers) == 0 {
		fmt.Fprintln(w, "no pollers")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "QUEUE\tCPU\tMODE\tBATCHES\tPACKETS\tPKTS/BATCH\tBUSY\tIDLE\tASLEEP\tSLEEPS\tWAKEUPS\tEARLY\tHANDOFFS\t")
	for _, p := range st.Pollers {
		cpu := "-"
		if p.CPU >= 0 {
			cpu = fmt.Sprint(p.CPU)
		}
		perBatch := 0.0
		if p.Batches > 0 {
			perBatch = float64(p.Packets) / float64(p.Batches)
		}
		mode := p.PollMode
		if mode == "adaptive" {
			mode += ":" + seconds(p.PollWindowS).Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", p.Queue, cpu, mode, p.Batches, p.Packets, perBatch,
			seconds(p.BusyS).Round(time.Millisecond), seconds(p.IdleS).Round(time.Millisecond), seconds(p.SleepS).Round(time.Millisecond),
			p.Sleeps, p.Wakeups, p.EarlyWakeups, p.Handoffs)
	}
	return tw.Flush()
}

// seconds turns a duration of the API (seconds) into a time.Duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
