package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/datapath"
	"github.com/xvs-project/xvs/flowtable/steer"
)

var portCommands = []command{
	{
		name: "add-port", args: "NAME [--mode MODE]", min: 1, max: 1,
		summary: "attach the netdev NAME to the switch",
		help: `The XDP program is attached in the given mode: native (driver), generic
(skb), or auto (native if the driver can, else generic; the default). The
port's RX queues each get an AF_XDP socket. "show" tells what was chosen.
`,
		flags: func(fs *flag.FlagSet) func(*app, []string) error {
			mode := fs.String("mode", "auto", "XDP attach mode: native, generic or auto")
			return func(a *app, args []string) error {
				info, err := a.client.AddPort(a.ctx, ctl.PortRequest{Name: args[0], Mode: datapath.XDPMode(*mode)})
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
		name: "del-port", args: "NAME", min: 1, max: 1,
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
		name: "dump-ports", args: "[NAME]", min: 0, max: 1,
		summary: "print port counters (all ports, or NAME)",
		help: `For each port: packets and bytes received from and sent to it, drops by
reason (rx: frames the port received that went nowhere, e.g. no_flow,
dec_ttl_zero, port_gone; tx: frames for the port that could not be sent,
e.g. tx_ring_full), the XDP program's verdicts, and the kernel's AF_XDP
socket statistics.
`,
		flags: noFlags(func(a *app, args []string) error {
			var stats []datapath.PortStats
			if len(args) == 1 {
				st, err := a.client.PortStats(a.ctx, args[0])
				if err != nil {
					return err
				}
				stats = []datapath.PortStats{st}
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
// queues. A degraded port (an active queue without a socket) says why
// below the table.
func writePorts(w io.Writer, ports []datapath.PortInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tOFPORT\tIFINDEX\tMAC\tMTU\tQUEUES\tXDP\tXSK\tUMEM\tSTATE")
	for _, p := range ports {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d/%d\t%s\t%s\t%s\t%s\n",
			p.Name, p.OFPort, p.Ifindex, p.MAC, p.MTU, p.ActiveQueues, p.MaxQueues, p.XDPMode, p.XSKMode, p.UmemMode, p.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range ports {
		if p.Problem != "" {
			fmt.Fprintf(w, "port %s %s: %s (%d of %d active queues served)\n", p.Name, p.State, p.Problem, p.Queues, p.ActiveQueues)
		}
	}
	return nil
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

// xdpCounters lists the XDP verdict counters in the program's order, then
// any the client does not know, sorted.
func xdpCounters(m map[string]uint64) string {
	var pairs []any
	seen := make(map[string]bool, len(m))
	for c := steer.Counter(0); c < steer.NumCounters; c++ {
		name := c.String()
		pairs = append(pairs, name, m[name])
		seen[name] = true
	}
	var extra []string
	for name := range m {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		pairs = append(pairs, name, m[name])
	}
	return kv(pairs...)
}

// writePortStats prints counters in the shape of ovs-ofctl dump-ports.
func writePortStats(w io.Writer, stats []datapath.PortStats) error {
	fmt.Fprintf(w, "port stats: %d ports\n", len(stats))
	for _, p := range stats {
		var drop [2]uint64
		var reasons [2][]any
		for _, d := range ctl.PortDrops(&p) {
			i := 0
			if d.Side == "tx" {
				i = 1
			}
			drop[i] += d.Packets
			reasons[i] = append(reasons[i], d.Reason, d.Packets)
		}
		fmt.Fprintf(w, "  port %2d: %s\n", p.OFPort, p.Name)
		fmt.Fprintf(w, "           rx %s (%s)\n", kv("pkts", p.RxPackets, "bytes", p.RxBytes, "drop", drop[0]), kv(reasons[0]...))
		fmt.Fprintf(w, "           tx %s (%s)\n", kv("pkts", p.TxPackets, "bytes", p.TxBytes, "drop", drop[1]), kv(reasons[1]...))
		fmt.Fprintf(w, "           xdp %s\n", xdpCounters(p.XDP))
		x := p.XSK
		fmt.Fprintf(w, "           xsk %s\n", kv("rx_dropped", x.RxDropped, "rx_ring_full", x.RxRingFull,
			"fill_ring_empty", x.RxFillRingEmptyDescs, "tx_ring_empty", x.TxRingEmptyDescs,
			"rx_invalid", x.RxInvalidDescs, "tx_invalid", x.TxInvalidDescs))
	}
	return nil
}

func writeStats(w io.Writer, st datapath.Stats) error {
	var rx, rxB, tx, txB, drops uint64
	for _, p := range st.Ports {
		rx += p.RxPackets
		rxB += p.RxBytes
		tx += p.TxPackets
		txB += p.TxBytes
		for _, d := range ctl.PortDrops(&p) {
			drops += d.Packets
		}
	}
	fmt.Fprintf(w, "uptime %s, %d ports, %d flows, %d steering masks\n",
		st.Uptime.Truncate(time.Second), len(st.Ports), st.Flows, st.Masks)
	fmt.Fprintf(w, "total: rx %s; tx %s; %s\n", kv("pkts", rx, "bytes", rxB), kv("pkts", tx, "bytes", txB), kv("drop", drops))
	if len(st.Pollers) == 0 {
		fmt.Fprintln(w, "no pollers")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "QUEUE\tCPU\tBATCHES\tPACKETS\tPKTS/BATCH\tBUSY\tIDLE\tWAKEUPS\tHANDOFFS\t")
	for _, p := range st.Pollers {
		cpu := "-"
		if p.CPU >= 0 {
			cpu = fmt.Sprint(p.CPU)
		}
		perBatch := 0.0
		if p.Batches > 0 {
			perBatch = float64(p.Packets) / float64(p.Batches)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.1f\t%s\t%s\t%d\t%d\t\n", p.Queue, cpu, p.Batches, p.Packets, perBatch,
			time.Duration(p.BusyNs).Round(time.Millisecond), time.Duration(p.IdleNs).Round(time.Millisecond), p.Wakeups, p.Handoffs)
	}
	return tw.Flush()
}
