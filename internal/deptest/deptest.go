// Package deptest checks what a package links, as tailscale's
// tstest/deptest does: a test lists the package's dependencies with
// "go list -deps" and fails on any it must not have.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// Dep is one package a package links.
type Dep struct {
	Path     string // import path
	Standard bool   // in the standard library
}

// Deps returns the packages pkg links, itself first, as "go list -deps"
// gives them for the host's GOOS and GOARCH; test files do not count.
func Deps(t testing.TB, pkg string) []Dep {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", pkg).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, msg)
	}
	var deps []Dep
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, std, _ := strings.Cut(line, " ")
		deps = append(deps, Dep{Path: path, Standard: std == "true"})
	}
	// go list prints dependencies before the packages that import them.
	last := len(deps) - 1
	deps[0], deps[last] = deps[last], deps[0]
	return deps
}

// Bad fails t for every package pkg links that bad names: an import path
// names that package, a path ending in "/..." the packages below it too, as
// for the go command ("github.com/cilium/ebpf/..." covers
// github.com/cilium/ebpf/link).
func Bad(t testing.TB, pkg string, bad []string) {
	t.Helper()
	for _, d := range Deps(t, pkg) {
		for _, b := range bad {
			tree, ok := strings.CutSuffix(b, "/...")
			if d.Path == b || ok && (d.Path == tree || strings.HasPrefix(d.Path, tree+"/")) {
				t.Errorf("%s links %s, which it must not (%s)", pkg, d.Path, b)
			}
		}
	}
}

// StandardOnly fails t for every package pkg links, other than itself,
// that is not in the standard library.
func StandardOnly(t testing.TB, pkg string) {
	t.Helper()
	for _, d := range Deps(t, pkg)[1:] {
		if !d.Standard {
			t.Errorf("%s links %s: only the standard library is allowed", pkg, d.Path)
		}
	}
}
