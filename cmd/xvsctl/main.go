// Command xvsctl programs a running xvsd through its REST API: ports, flows
// and counters, in the spirit of ovs-vsctl and ovs-ofctl.
//
//	xvsctl [--server unix:PATH|http://HOST:PORT] [--token-file FILE] [--json] COMMAND [ARGS]
//
// Output is made for people (tables, ovs-ofctl-like dumps) unless --json is
// given, which prints the API's JSON for scripts. On error xvsctl prints the
// server's message on stderr and exits non-zero. "xvsctl help" lists the
// commands; "xvsctl help COMMAND" explains one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the request failed
	exitUsage = 2 // the command line is wrong
)

// globals are the flags every command takes.
type globals struct {
	server    string
	tokenFile string
	json      bool
	timeout   time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "xvsd API: unix:PATH, tcp:HOST:PORT or http://HOST:PORT (env XVS_SERVER)")
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "file holding the API's bearer token (env XVS_TOKEN_FILE)")
	fs.BoolVar(&g.json, "json", g.json, "print JSON instead of tables")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up on the server after this long")
}

// env is the part of the process environment xvsctl reads.
type env func(string) string

// app is one invocation's context.
type app struct {
	ctx    context.Context
	g      globals
	client *client.Client
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one xvsctl command.
type command struct {
	name     string
	args     string // synopsis of the arguments
	summary  string // one line
	help     string // paragraphs after the synopsis
	min, max int    // positional arguments; max < 0: no limit
	complete string // what its arguments are, for shell completion: "port", "netdev", "file" or ""
	flags    func(fs *flag.FlagSet) func(a *app, args []string) error
}

// usageError is a command line mistake: exit 2 with the command's usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run is xvsctl without the process around it; it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv env) int {
	g := globals{server: client.DefaultServer, timeout: 30 * time.Second}
	if s := getenv("XVS_SERVER"); s != "" {
		g.server = s
	}
	g.tokenFile = getenv("XVS_TOKEN_FILE")

	fs := flag.NewFlagSet("xvsctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "xvsctl: %v\n\n", err)
		printUsage(stderr)
		return exitUsage
	}
	if fs.NArg() == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	switch name {
	case "help":
		return help(rest, stdout, stderr)
	case "completion":
		return completion(rest, stdout, stderr)
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "xvsctl: unknown command %q (xvsctl help lists them)\n", name)
		return exitUsage
	}

	cfs := flag.NewFlagSet("xvsctl "+cmd.name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	g.register(cfs)
	exec := cmd.flags(cfs)
	pos, err := parseInterspersed(cfs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, cmd)
		return exitOK
	}
	if err == nil && (len(pos) < cmd.min || (cmd.max >= 0 && len(pos) > cmd.max)) {
		err = usagef("wrong number of arguments")
	}
	if err != nil {
		fmt.Fprintf(stderr, "xvsctl %s: %v\nusage: xvsctl %s %s\n", cmd.name, err, cmd.name, cmd.args)
		return exitUsage
	}

	a := &app{g: g, stdin: stdin, stdout: stdout, stderr: stderr}
	opts := client.Options{Timeout: g.timeout}
	if g.tokenFile != "" {
		tok, err := os.ReadFile(g.tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "xvsctl: token file: %v\n", err)
			return exitError
		}
		opts.Token = strings.TrimSpace(string(tok))
	}
	if a.client, err = client.New(g.server, opts); err != nil {
		fmt.Fprintf(stderr, "xvsctl: %v\n", err)
		return exitUsage
	}
	defer a.client.Close()
	var cancel context.CancelFunc
	a.ctx, cancel = context.WithTimeout(context.Background(), g.timeout)
	defer cancel()

	if err := exec(a, pos); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "xvsctl %s: %v\nusage: xvsctl %s %s\n", cmd.name, err, cmd.name, cmd.args)
			return exitUsage
		}
		fmt.Fprintf(stderr, "xvsctl: %v\n", err)
		return exitError
	}
	return exitOK
}

// parseInterspersed parses flags wherever they are among the positional
// arguments ("add-port p0 --mode native"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: xvsctl [--server ADDR] [--token-file FILE] [--json] COMMAND [ARGS]

xvsctl programs a running xvsd through its REST API.

commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-32s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprint(w, `  help [COMMAND]                   this text, or one command's
  completion bash                  print the bash completion script

global flags (before or after the command):
  --server ADDR      unix:PATH, tcp:HOST:PORT or http://HOST:PORT
                     (default $XVS_SERVER, else unix:`+api.DefaultSocket+`)
  --token-file FILE  bearer token for a server that wants one ($XVS_TOKEN_FILE)
  --json             print the API's JSON instead of tables
  --timeout DUR      give up on the server after DUR (default 30s)
`)
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: xvsctl %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s", strings.TrimLeft(c.help, "\n"))
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs)
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nflags:\n%s", b.String())
	}
}

func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "xvsctl: unknown command %q (xvsctl help lists them)\n", args[0])
		return exitUsage
	}
	printCommandHelp(stdout, c)
	return exitOK
}
