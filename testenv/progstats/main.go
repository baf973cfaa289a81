// progstats ID...: "id run_time_ns run_cnt" of each BPF program id.
// progstats setgen ID VALUE: write VALUE into the steer_gen map of program ID
// (0 turns the exact-match cache off: emc.h neither reads nor fills it).
// progstats judge ID: the exact-match cache's judge (emc.h, map emc_judge)
// of program ID, per CPU: "cpu lookups conflicts skip asides".
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/cilium/ebpf"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "setgen" {
		id, _ := strconv.Atoi(os.Args[2])
		v, _ := strconv.ParseUint(os.Args[3], 10, 64)
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		info, err := p.Info()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ids, _ := info.MapIDs()
		for _, mid := range ids {
			m, err := ebpf.NewMapFromID(mid)
			if err != nil {
				continue
			}
			mi, _ := m.Info()
			if mi != nil && mi.Name == "steer_gen" {
				var old uint64
				_ = m.Lookup(uint32(0), &old)
				if err := m.Put(uint32(0), v); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				fmt.Printf("steer_gen of prog %d (map %d): %d -> %d\n", id, mid, old, v)
				return
			}
			m.Close()
		}
		fmt.Fprintln(os.Stderr, "no steer_gen map")
		os.Exit(1)
	}
	if len(os.Args) == 3 && os.Args[1] == "judge" {
		judge(os.Args[2])
		return
	}
	for _, a := range os.Args[1:] {
		id, _ := strconv.Atoi(a)
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			fmt.Println(a, 0, 0)
			continue
		}
		s, err := p.Stats()
		if err != nil {
			fmt.Println(a, 0, 0)
		} else {
			fmt.Println(a, s.Runtime.Nanoseconds(), s.RunCount)
		}
		p.Close()
	}
}

// mapOf returns the map named name of program id.
func mapOf(id int, name string) (*ebpf.Map, error) {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return nil, err
	}
	ids, _ := info.MapIDs()
	for _, mid := range ids {
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			continue
		}
		if mi, _ := m.Info(); mi != nil && mi.Name == name {
			return m, nil
		}
		m.Close()
	}
	return nil, fmt.Errorf("program %d has no map %s", id, name)
}

func judge(a string) {
	id, _ := strconv.Atoi(a)
	m, err := mapOf(id, "emc_judge")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer m.Close()
	var per []struct{ Lookups, Conflicts, Skip, Asides uint32 }
	if err := m.Lookup(uint32(0), &per); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for cpu, j := range per {
		fmt.Println(cpu, j.Lookups, j.Conflicts, j.Skip, j.Asides)
	}
}
