package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/testenv"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		wantComm string
		wantBusy time.Duration
		ok       bool
	}{
		{"plain", "42 (xvsd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0", "xvsd", 3 * time.Second, true},
		{"comm with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", "a (b) c", 30 * time.Millisecond, true},
		{"kthread", "99 (napi/p0-1379) S 2 0 0 0 -1 2129984 0 0 0 0 0 185 0 0 20 0 1 0", "napi/p0-1379", 1850 * time.Millisecond, true},
		{"short", "42 (xvsd) S 1 42", "", 0, false},
		{"no parens", "42 xvsd S 1 42 42 0 -1 0 0 0 0 0 1 1 0 0", "", 0, false},
		{"bad number", "42 (xvsd) S 1 42 42 0 -1 0 0 0 0 0 x 1 0 0", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(42, tt.line)
			if !tt.ok {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.comm != tt.wantComm || got.busy != tt.wantBusy {
				t.Errorf("got %q %v, want %q %v", got.comm, got.busy, tt.wantComm, tt.wantBusy)
			}
		})
	}
}

func TestReadProcCPUSelf(t *testing.T) {
	// Burn a little CPU so that the ticks move.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	got, err := readProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got.busy <= 0 || got.comm == "" {
		t.Errorf("self: %+v", got)
	}
	if _, err := readProcCPU(1 << 30); err == nil {
		t.Error("a pid that cannot exist: want an error")
	}
}

func TestParseCPUTimes(t *testing.T) {
	stat := "cpu  10 0 10 100 0 0 0 0 0 0\n" +
		"cpu0 1 2 3 4 5 6 7 8 0 0\n" +
		"cpu1 10 0 20 30 0 0 40 0 0 0\n" +
		"intr 12345\n"
	got, err := parseCPUTimes(stat)
	if err != nil {
		t.Fatal(err)
	}
	want := []cpuTimes{
		{user: 3, system: 9, softirq: 7, idle: 9, total: 36},
		{user: 10, system: 20, softirq: 40, idle: 30, total: 100},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d cpus, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cpu%d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", "intr 1\n", "cpu0 1 2 x 4 5 6 7 8\n"} {
		if _, err := parseCPUTimes(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestParsePIDs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []int
		ok   bool
	}{
		{"empty", "", nil, true},
		{"one", "12", []int{12}, true},
		{"several", "1, 2,3", []int{1, 2, 3}, true},
		{"zero", "0", nil, false},
		{"word", "xvsd", nil, false},
		{"trailing comma", "1,", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePIDs(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestCountBadArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"count without dev", []string{"count"}},
		{"count zero seconds", []string{"count", "--dev", "lo", "--seconds", "0"}},
		{"count negative delay", []string{"count", "--dev", "lo", "--delay", "-1"}},
		{"count bad pid", []string{"count", "--dev", "lo", "--cpu-pid", "x"}},
		{"count no such device", []string{"count", "--dev", "xvs-nosuchdev"}},
		{"redirect without to", []string{"xdp-redirect", "--from", "lo"}},
		{"redirect negative seconds", []string{"xdp-redirect", "--from", "lo", "--to", "lo", "--seconds", "-1"}},
		{"redirect no such device", []string{"xdp-redirect", "--from", "xvs-nosuchdev", "--to", "lo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(tt.args, &bytes.Buffer{}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

var receivedRE = regexp.MustCompile(`received (\d+) packets`)

// TestCountAndRedirect builds gen [a] <-> [a'] root [b'] <-> [b] sink,
// forwards a' -> b' with xdp-redirect, sends with blast from gen and counts
// with count in sink: the bench's in-kernel path end to end.
func TestCountAndRedirect(t *testing.T) {
	gen := testenv.NewNS(t)
	sink := testenv.NewNS(t)
	in := testenv.NewVeth(t, gen, "xi", testenv.VethOptions{})
	out := testenv.NewVeth(t, sink, "xo", testenv.VethOptions{})

	redirDone := make(chan error, 1)
	var redirOut bytes.Buffer
	go func() {
		redirDone <- run([]string{"xdp-redirect", "--from", in.LocalName(), "--to", out.LocalName(), "--seconds", "2.5"}, &redirOut)
	}()
	countDone := make(chan error, 1)
	var countOut bytes.Buffer
	go func() {
		countDone <- sink.Do(func() error {
			return run([]string{"count", "--dev", out.PeerName(), "--delay", "0.5", "--seconds", "1",
				"--cpu-pid", strconv.Itoa(os.Getpid())}, &countOut)
		})
	}()
	time.Sleep(200 * time.Millisecond) // both attached (attaching takes milliseconds)
	var blastOut bytes.Buffer
	if err := gen.Do(func() error {
		return run([]string{"blast", "--dev", in.PeerName(), "--dst-mac", out.PeerMAC.String(),
			"--src-ip", "10.100.0.1", "--dst-ip", "10.100.0.2", "--dst-port", "7999", "--seconds", "2"}, &blastOut)
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-countDone; err != nil {
		t.Fatalf("count: %v", err)
	}
	if err := <-redirDone; err != nil {
		t.Fatalf("xdp-redirect: %v", err)
	}
	offered := parseCount(t, offeredRE, blastOut.String())
	received := parseCount(t, receivedRE, countOut.String())
	redirected := parseCount(t, regexp.MustCompile(`redirected (\d+) frames`), redirOut.String())
	t.Logf("offered %d, redirected %d, received in the window %d", offered, redirected, received)
	if received == 0 || received > redirected || redirected > offered+chatter {
		t.Errorf("want 0 < received <= redirected <= offered (+chatter):\n%s%s%s", blastOut.String(), redirOut.String(), countOut.String())
	}
	for _, want := range []string{"counting (xdp native)", "count: cpu pid", "count: cpu0 user"} {
		if !strings.Contains(countOut.String(), want) {
			t.Errorf("count output lacks %q:\n%s", want, countOut.String())
		}
	}
}
