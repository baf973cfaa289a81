package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/client"
)

var eventCommands = []command{
	{
		name: "set-port-liveness", args: "NAME auto|live|dead", min: 2, max: 2, complete: "port",
		summary: "say whether port NAME is live (for an external prober), or let its link decide",
		help: `A port is live while its link is up with carrier (auto, the default). A
prober that knows better (the host's BFD daemon, a ping monitor) sets it
live or dead; fast_failover and select buckets watching the port follow at
once. The setting is not persisted: the prober says it again after xvsd
restarts.
`,
		flags: noFlags(func(a *app, args []string) error {
			info, err := a.client.SetLiveness(a.ctx, args[0], api.Liveness(args[1]))
			if err != nil {
				return err
			}
			return a.maybeJSON(info)
		}),
	},
	{
		name: "monitor", args: "[--since ID]", min: 0, max: 0,
		summary: "print the switch's events as they happen (like ovs-ofctl monitor)",
		help: `One line per event: ports added and removed, link and liveness changes,
fast_failover groups moving to another bucket, buckets becoming live or
dead, flows expired and changed (by which request). With --since ID it
first prints the events after ID that the server still keeps. It runs
until interrupted, and reconnects (resuming where it was) if the server
goes away. With --json each event is one JSON object per line.
`,
		flags: func(fs *flag.FlagSet) func(*app, []string) error {
			since := fs.Int64("since", -1, "first print the events after this ID still kept by the server")
			count := fs.Int("count", 0, "stop after this many events (0: run until interrupted)")
			return func(a *app, _ []string) error { return a.monitor(*since, *count) }
		},
	},
}

// errEnough stops the stream after --count events.
var errEnough = errors.New("enough")

func (a *app) monitor(since int64, count int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := 0
	after := since
	for {
		last, err := a.client.Events(ctx, after, func(e api.Event) error {
			if a.g.json {
				if err := writeJSONLine(a.stdout, e); err != nil {
					return err
				}
			} else if _, err := fmt.Fprintln(a.stdout, formatEvent(&e)); err != nil {
				return err
			}
			if n++; count > 0 && n >= count {
				return errEnough
			}
			return nil
		})
		var ae *client.APIError
		switch {
		case errors.Is(err, errEnough), ctx.Err() != nil:
			return nil
		case errors.As(err, &ae):
			return err // the server answered: retrying would answer the same
		default:
			// The server went away: resume after the last event seen.
			fmt.Fprintf(a.stderr, "xvsctl: monitor: %v; reconnecting\n", err)
			if last > 0 || after >= 0 {
				after = int64(last)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

func writeJSONLine(w io.Writer, v any) error {
	return writeJSON(w, v)
}

// formatEvent prints an event as one line of key=value pairs, e.g.
//
//	event=group_failover id=12 at=2026-12-01T20:38:07.123Z group=1 from=0 to=1
func formatEvent(e *api.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "event=%s", e.Type)
	if e.ID != 0 {
		fmt.Fprintf(&b, " id=%d", e.ID)
	}
	fmt.Fprintf(&b, " at=%s", e.At.Format(time.RFC3339Nano))
	add := func(k, v string) { fmt.Fprintf(&b, " %s=%s", k, v) }
	if e.Port != "" {
		add("port", e.Port)
	}
	if e.LinkUp != nil {
		add("link_up", strconv.FormatBool(*e.LinkUp))
	}
	if e.Carrier != nil {
		add("carrier", strconv.FormatBool(*e.Carrier))
	}
	if e.Live != nil {
		add("live", strconv.FormatBool(*e.Live))
	}
	if e.Reason != "" {
		add("reason", e.Reason)
	}
	if e.Group != nil {
		add("group", strconv.FormatUint(uint64(*e.Group), 10))
	}
	if e.Bucket != nil {
		add("bucket", strconv.Itoa(*e.Bucket))
	}
	if e.From != nil {
		add("from", strconv.Itoa(*e.From))
	}
	if e.To != nil {
		add("to", strconv.Itoa(*e.To))
	}
	if e.Replaced {
		add("replaced", "true")
	}
	if len(e.Flows) > 0 {
		add("flows", ids(e.Flows))
	}
	if len(e.Removed) > 0 {
		add("removed", ids(e.Removed))
	}
	if e.Request != "" {
		add("request", strconv.Quote(e.Request))
	}
	if e.Missed != 0 {
		add("missed", strconv.FormatUint(e.Missed, 10))
	}
	return b.String()
}

// ids lists IDs with commas, at most 20 of them, then how many more.
func ids(v []uint64) string {
	var parts []string
	for i, id := range v {
		if i == 20 {
			parts = append(parts, fmt.Sprintf("...(%d more)", len(v)-20))
			break
		}
		parts = append(parts, strconv.FormatUint(id, 10))
	}
	return strings.Join(parts, ",")
}
