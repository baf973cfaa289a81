package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make install puts the binaries, the systemd unit and the bash completion
// under DESTDIR+PREFIX; the unit starts the installed xvsd and passes
// systemd-analyze verify.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	for _, tool := range []string{"make", "install", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("make install needs %s: %v", tool, err)
		}
	}
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "root")
	cmd := exec.Command("make", "-C", "../..", "install", "BIN="+filepath.Join(tmp, "bin"), "DESTDIR="+dest, "PREFIX=/opt/xvs")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	files := map[string]os.FileMode{
		"/opt/xvs/sbin/xvsd":                                0o755,
		"/opt/xvs/bin/xvsctl":                               0o755,
		"/opt/xvs/lib/systemd/system/xvsd.service":          0o644,
		"/opt/xvs/share/bash-completion/completions/xvsctl": 0o644,
	}
	for f, mode := range files {
		fi, err := os.Stat(dest + f)
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), mode)
		}
	}
	if t.Failed() {
		return
	}

	// The completion is the installed xvsctl's own.
	want, err := exec.Command(dest+"/opt/xvs/bin/xvsctl", "completion", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest + "/opt/xvs/share/bash-completion/completions/xvsctl"); !bytes.Equal(got, want) {
		t.Error("the installed completion is not what the installed xvsctl prints")
	}

	unit, err := os.ReadFile(dest + "/opt/xvs/lib/systemd/system/xvsd.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/opt/xvs/sbin/xvsd $XVSD_OPTS\n") || strings.Contains(string(unit), "@") {
		t.Fatalf("unit's ExecStart is not the installed xvsd:\n%s", unit)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skipf("no systemd-analyze to verify the unit with: %v", err)
	}
	// verify checks that ExecStart exists: point it into DESTDIR.
	check := filepath.Join(tmp, "xvsd.service")
	os.WriteFile(check, bytes.ReplaceAll(unit, []byte("=/opt/xvs/sbin/"), []byte("="+dest+"/opt/xvs/sbin/")), 0o644)
	out, err := exec.Command(analyze, "verify", check).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
