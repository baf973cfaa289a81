package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"

	"github.com/xvs-project/xvs/testenv"
)

func TestPairBadArgs(t *testing.T) {
	base := []string{"--a", "xa:xb", "--b", "ya:yb", "--src-ip", "10.0.0.1", "--dst-ip", "10.0.0.2", "--dst-port", "7999"}
	tests := []struct {
		name string
		args []string
	}{
		{"nothing", nil},
		{"no b", []string{"--a", "xa:xb", "--src-ip", "10.0.0.1", "--dst-ip", "10.0.0.2", "--dst-port", "7999"}},
		{"path without sink", append([]string{"--a", "xa"}, base[2:]...)},
		{"path with empty dev", append([]string{"--a", ":xb"}, base[2:]...)},
		{"bad src ip", append(append([]string{}, base...), "--src-ip", "x")},
		{"port too big", append(append([]string{}, base...), "--dst-port", "70000")},
		{"slice longer than the run", append(append([]string{}, base...), "--seconds", "1", "--slice", "2")},
		{"zero seconds", append(append([]string{}, base...), "--seconds", "0")},
		{"batch too big", append(append([]string{}, base...), "--batch", "300")},
		{"no such device", base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(append([]string{"pair"}, tt.args...), &bytes.Buffer{}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

var pairRatioRE = regexp.MustCompile(`A/B per CPU-second: median ([0-9.]+) \(([0-9.]+)\.\.([0-9.]+).* over (\d+) pairs`)

// TestPair runs pair over two identical in-kernel paths, each ns [xa] <->
// [xa'] root -- xdp-redirect -- root [xb'] <-> [xb] ns, senders and sinks in
// the same namespace: both paths received frames in every slice, and the
// ratio of two equal paths is near 1 (loosely: the machine is shared).
func TestPair(t *testing.T) {
	ns := testenv.NewNS(t)
	var paths []string
	for _, p := range []string{"pa", "pb"} {
		in := testenv.NewVeth(t, ns, p+"i", testenv.VethOptions{})
		out := testenv.NewVeth(t, ns, p+"o", testenv.VethOptions{})
		done := make(chan error, 1)
		go func() {
			done <- run([]string{"xdp-redirect", "--from", in.LocalName(), "--to", out.LocalName(), "--seconds", "4"}, &bytes.Buffer{})
		}()
		t.Cleanup(func() {
			if err := <-done; err != nil {
				t.Errorf("xdp-redirect %s: %v", p, err)
			}
		})
		paths = append(paths, in.PeerName()+":"+out.PeerName())
	}
	var out bytes.Buffer
	if err := ns.Do(func() error {
		return run([]string{"pair", "--a", paths[0], "--b", paths[1], "--src-ip", "10.100.0.1", "--dst-ip", "10.100.0.2",
			"--dst-port", "7999", "--seconds", "2", "--slice", "0.2", "-v"}, &out)
	}); err != nil {
		t.Fatalf("pair: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	m := pairRatioRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no per CPU-second ratio in the output:\n%s", out.String())
	}
	med, _ := strconv.ParseFloat(m[1], 64)
	n, _ := strconv.Atoi(m[4])
	if n < 2 || med < 0.5 || med > 2 {
		t.Errorf("two equal paths: median ratio %v over %d pairs, want 0.5..2 over at least 2", med, n)
	}
	for _, want := range []string{"pair: A " + paths[0] + ": median", "pair: B " + paths[1] + ": median", "A/B rate: median"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q", want)
		}
	}
}
