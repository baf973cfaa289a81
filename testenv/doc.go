// Package testenv builds throwaway network topologies for privileged tests:
// fresh network namespaces and veth pairs whose switch-side end stays in the
// test's own namespace (where the AF_XDP sockets are opened) and whose other
// end lives in a namespace of its own with an address, like a host plugged
// into the switch. Everything is removed with t.Cleanup.
//
// testenv.sh in this directory builds the same shapes from the shell for
// demos and benchmarks.
//
// Tests that need root call RequireRoot: it skips when not root, and nothing
// else in this package skips. A failure to build a topology as root fails the
// test, because on the machines this project runs on it must work.
package testenv
