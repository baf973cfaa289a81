package flowtable

import "math/bits"

// nameTable finds a descriptor by its name, for the names the text syntax
// reads in every field and action: an open-addressed table built once
// from the descriptor lists (see nameHash).
// A lookup is a hash and a compare or two, a fraction of a map's (a bulk
// request looks up half a dozen names a flow).
type nameTable[V any] struct {
	slots []nameSlot[V]
	mask  uint32
}

type nameSlot[V any] struct {
	name string // "" for an empty slot
	v    V
}

// newNameTable builds the table of names; a name given twice panics, as
// a descriptor list that names two things the same is a bug.
func newNameTable[V any](names []string, values []V) *nameTable[V] {
	n := 1 << bits.Len(uint(4*len(names))) // at most a quarter full: probes stay short
	t := &nameTable[V]{slots: make([]nameSlot[V], n), mask: uint32(n - 1)}
	for i, name := range names {
		if name == "" {
			panic("flowtable: empty name in a name table")
		}
		j := nameHash(name) & t.mask
		for t.slots[j].name != "" {
			if t.slots[j].name == name {
				panic("flowtable: name " + name + " given twice")
			}
			j = (j + 1) & t.mask
		}
		t.slots[j] = nameSlot[V]{name, values[i]}
	}
	return t
}

// lookup returns the value of name, and whether the table has it.
func (t *nameTable[V]) lookup(name string) (V, bool) {
	for j := nameHash(name) & t.mask; ; j = (j + 1) & t.mask {
		s := &t.slots[j]
		if s.name == name && name != "" {
			return s.v, true
		}
		if s.name == "" {
			var zero V
			return zero, false
		}
	}
}

// nameHash mixes a name's length and three of its bytes (first, middle,
// last): enough to tell the names of a table apart but for a few, and
// cheaper than hashing every byte. Any two names may collide; the
// lookup compares the whole name.
func nameHash(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	h := uint32(len(s)) | uint32(s[0])<<8 | uint32(s[len(s)/2])<<16 | uint32(s[len(s)-1])<<24
	return (h * 0x9e3779b1) >> 16
}
