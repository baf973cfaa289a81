package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxCPU bounds CPU numbers in a list (the kernel's NR_CPUS limit is 8192).
const maxCPU = 8191

// parseCPUList parses a CPU list in the kernel's cpulist format: comma
// separated numbers and inclusive ranges, e.g. "1", "0-1", "1,3", "0-3,8".
// The result is sorted and without duplicates; "" is nil (no pinning asked).
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("cpu list %q: %w", s, err)
			}
			if last < first {
				return nil, fmt.Errorf("cpu list %q: range %s is backwards", s, part)
			}
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func parseCPU(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty cpu number")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a cpu number", s)
	}
	if n > maxCPU {
		return 0, fmt.Errorf("cpu %d is above %d", n, maxCPU)
	}
	return n, nil
}
