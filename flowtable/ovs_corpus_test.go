package flowtable

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/ovs/dump.golden from the dumps")

// corpusStats are the counters the corpus's dump-flows lines show.
var corpusStats = &FlowStats{Packets: 7, Bytes: 700, Duration: 1234 * time.Millisecond, IdleAge: time.Second}

// TestOVSDumpCorpus reads back what Open vSwitch 3.1's dump-flows printed
// for testdata/ovs/flows.txt, in OpenFlow 1.0 and 1.3 form, and what its
// parse-flow made of the flows of its own tests (gen.sh dump): every line
// parses, and its canonical form is the one dump.golden holds (gen.sh check
// verified, with ovs-ofctl, that OVS reads that canonical form as the same
// flow as its own line) and reads back to the same flow.
func TestOVSDumpCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "ovs")
	var pairs []string // "ovs: LINE", "xvs: CANONICAL", "dump: DUMP-FLOWS LINE", ...
	for _, name := range []string{"dump-of10.txt", "dump-of13.txt"} {
		lines := readLines(t, filepath.Join(dir, name))
		if len(lines) < 70 {
			t.Fatalf("%s: only %d lines", name, len(lines))
		}
		for i, line := range lines {
			f, err := ParseFlow(line)
			if err != nil {
				t.Errorf("%s:%d: %q: %v", name, i+1, line, err)
				continue
			}
			canon := f.String()
			g, err := ParseFlow(canon)
			if err != nil || !reflect.DeepEqual(f, g) {
				t.Errorf("%s:%d: canonical %q reads back as %v, %v", name, i+1, canon, g, err)
			}
			pairs = append(pairs, "ovs: "+line, "xvs: "+canon, "dump: "+FormatFlow(f, corpusStats))
		}
	}
	// OVS's own test inputs, and what ovs-ofctl made of them: xvs reads
	// the two as the same flow.
	ins, outs := readLines(t, filepath.Join(dir, "ovs-tests.flows")), readLines(t, filepath.Join(dir, "ovs-tests.parsed"))
	if len(ins) != len(outs) || len(ins) < 50 {
		t.Fatalf("ovs-tests: %d flows, %d parsed", len(ins), len(outs))
	}
	for i := range ins {
		f, err := ParseFlow(ins[i])
		if err != nil {
			t.Errorf("ovs-tests.flows:%d: %q: %v", i+1, ins[i], err)
			continue
		}
		g, err := ParseFlow(outs[i])
		if err != nil || !reflect.DeepEqual(f, g) {
			t.Errorf("ovs-tests %q reads as %v, OVS's form %q as %v, %v", ins[i], f, outs[i], g, err)
			continue
		}
		if h, err := ParseFlow(f.String()); err != nil || !reflect.DeepEqual(f, h) {
			t.Errorf("ovs-tests.flows:%d: canonical %q reads back as %v, %v", i+1, f.String(), h, err)
		}
		pairs = append(pairs, "ovs: "+outs[i], "xvs: "+f.String(), "dump: "+FormatFlow(f, corpusStats))
	}
	golden := filepath.Join(dir, "dump.golden")
	if *update {
		var checked []string
		for _, l := range readLines(t, golden) {
			if strings.HasPrefix(l, "# checked:") {
				checked = append(checked, l+" (before -update)")
			}
		}
		hdr := "# A line Open vSwitch printed (dump-of10.txt, dump-of13.txt, ovs-tests.parsed),\n" +
			"# xvs's canonical form of it, and xvs's dump-flows line of it. Written by\n" +
			"# go test -run TestOVSDumpCorpus -update; gen.sh check verifies with\n" +
			"# ovs-ofctl that OVS reads both of xvs's forms as its own line's flow.\n"
		body := hdr + strings.Join(checked, "\n")
		if len(checked) > 0 {
			body += "\n"
		}
		if err := os.WriteFile(golden, []byte(body+strings.Join(pairs, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	var want []string
	for _, l := range readLines(t, golden) {
		if !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	if len(want) != len(pairs) {
		t.Fatalf("dump.golden has %d lines, the dumps give %d (run with -update)", len(want), len(pairs))
	}
	for i := range pairs {
		if pairs[i] != want[i] {
			t.Errorf("dump.golden line %d:\n got  %s\n want %s", i+1, pairs[i], want[i])
		}
	}
}

// readLines returns the lines of a file that are neither empty nor, unless
// they start with "# checked:", comments.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "# checked:") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", path, err))
	}
	return out
}
