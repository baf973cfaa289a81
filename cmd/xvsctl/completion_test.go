package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The completion script is made from the command table: it names every
// command and every flag.
func TestCompletionListsEverything(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"completion", "bash"}, nil, &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, errb.String())
	}
	script := out.String()
	var want []string
	for _, c := range commands {
		want = append(want, c.name)
		if !strings.Contains(script, "\t"+c.name+") flags=") {
			t.Errorf("the script has no case for %s", c.name)
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(script, "--"+f.Name) {
				t.Errorf("the script lacks %s's flag --%s", c.name, f.Name)
			}
		})
	}
	want = append(want, builtins...)
	got := completeWords(t, script, "xvsctl", "")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("xvsctl <TAB>: %q, want every command %q", got, want)
	}
	if r := run([]string{"completion", "zsh"}, nil, &out, &errb, func(string) string { return "" }); r != exitUsage {
		t.Errorf("completion zsh: exit %d, want %d", r, exitUsage)
	}
}

// completeWords runs the script in bash as readline would for the words
// (the last one being completed) and returns the candidates, sorted.
func completeWords(t *testing.T, script string, words ...string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("no bash to run the completion in: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "xvsctl.bash")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// The xvsctl the script asks for the ports is a stand-in.
	fake := "#!/bin/sh\n[ \"$1\" = show ] && printf 'PORT  OFPORT\\neth1  1\\neth2  2\\n'\n"
	if err := os.WriteFile(filepath.Join(dir, "xvsctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	var q []string
	for _, w := range words {
		q = append(q, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	prog := `source "$1" && COMP_WORDS=(` + strings.Join(q, " ") + `) && COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )) && { _xvsctl; printf '%s\n' "${COMPREPLY[@]}"; }`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog, "bash", file)
	cmd.Env = append(os.Environ(), "PATH="+dir+":/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	return got
}

func TestCompletionInBash(t *testing.T) {
	var out bytes.Buffer
	writeBashCompletion(&out)
	script := out.String()
	dir := t.TempDir()
	for _, f := range []string{"flows.txt", "flows2.txt"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{"xvsctl", "dump-"}, []string{"dump-flows", "dump-group-stats", "dump-groups", "dump-ports", "dump-tables"}},
		{[]string{"xvsctl", "--json", "sh"}, []string{"show"}},
		{[]string{"xvsctl", "--server", "unix:/x", "st"}, []string{"stats"}},
		{[]string{"xvsctl", "--t"}, []string{"--timeout", "--token-file"}},
		{[]string{"xvsctl", "add-port", "--"}, []string{"--json", "--mode", "--server", "--timeout", "--token-file"}},
		{[]string{"xvsctl", "add-port", "--mode", ""}, []string{"auto", "generic", "native"}},
		{[]string{"xvsctl", "add-port", "--mode", "native", "lo"}, []string{"lo"}},
		{[]string{"xvsctl", "add-port", "lo", ""}, nil},
		{[]string{"xvsctl", "del-flows", "--s"}, []string{"--server", "--strict"}},
		{[]string{"xvsctl", "add-flows", filepath.Join(dir, "flo")}, []string{filepath.Join(dir, "flows.txt"), filepath.Join(dir, "flows2.txt")}},
		{[]string{"xvsctl", "help", "add-f"}, []string{"add-flow", "add-flows"}},
		{[]string{"xvsctl", "completion", ""}, []string{"bash"}},
		{[]string{"xvsctl", "del-port", ""}, []string{"eth1", "eth2"}},
		{[]string{"xvsctl", "dump-ports", "eth2"}, []string{"eth2"}},
		{[]string{"xvsctl", "--timeout", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			if got := completeWords(t, script, tt.words...); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
