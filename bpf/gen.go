package bpf

// The XDP program is compiled by bpf2go into xvs_bpfel.o and wrapped by
// xvs_bpfel.go; both are committed, so building needs no clang. Rebuild with
// `make generate` (BPF2GO_CC=clang-16 go generate ./bpf/).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" xvs xvs.bpf.c
