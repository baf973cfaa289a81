package bpf

// The XDP program is compiled by bpf2go into xvs_bpfel.o and wrapped by
// xvs_bpfel.go; both are committed, so building needs no clang. Rebuild with
// `make generate` (BPF2GO_CC=clang-16 go generate ./bpf/).
//
// -mcpu=v3 (32-bit jumps and ALU ops, Linux 5.1 and later; bpf2go's default
// is v1): the program is about a tenth shorter once JITed, and a forwarded
// frame costs 2-4 ns less (BenchmarkProgramVerdicts).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types -cflags "-O2 -mcpu=v3 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" xvs xvs.bpf.c
