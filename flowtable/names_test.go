package flowtable

import (
	"strings"
	"testing"
)

// The name tables find what the maps they replaced found: every name of
// the descriptor lists, and nothing for the names near them.
func TestNameTables(t *testing.T) {
	// The maps as they were built before the tables.
	matchByName := map[string]*matchField{}
	for _, f := range matchFields {
		matchByName[f.name] = f
		for _, a := range f.aliases {
			matchByName[a] = f
		}
	}
	isFlowField := map[string]bool{}
	for _, n := range flowFields {
		isFlowField[n] = true
	}
	actionByName := map[string]ActionType{}
	for typ, k := range actionKinds {
		if k == nil {
			continue
		}
		actionByName[k.name] = ActionType(typ)
		for _, a := range k.aliases {
			actionByName[a] = ActionType(typ)
		}
	}
	targets := map[string]*setFieldTarget{}
	for _, tg := range setFieldTargetList {
		for _, n := range tg.names {
			targets[n] = tg
		}
	}

	names := append([]string(nil), flowFields...)
	for n := range matchByName {
		names = append(names, n)
	}
	for n := range actionByName {
		names = append(names, n)
	}
	for n := range targets {
		names = append(names, n)
	}
	// And the names near them, which no table must find.
	for _, n := range append([]string(nil), names...) {
		names = append(names, n[:len(n)-1], n+"x", "x"+n, strings.ToUpper(n), n+"\x00", n[1:])
	}
	names = append(names, "", "drop", "set_field", "load", "\xff", "actions=")

	for _, n := range names {
		tf, known := textFields.lookup(n)
		if want := matchByName[n]; tf.match != want {
			t.Errorf("textFields %q: match field %v, want %v", n, tf.match, want)
		}
		_, isMatch := matchByName[n]
		if (tf.bit != 0) != (isFlowField[n] && !isMatch) || known != (isMatch || isFlowField[n]) {
			t.Errorf("textFields %q: bit %#x, known %v; flow field %v, match field %v", n, tf.bit, known, isFlowField[n], isMatch)
		}
		if got, ok := matchFieldNamed(n), matchByName[n]; got != ok {
			t.Errorf("matchFieldNamed(%q) = %v, want %v", n, got, ok)
		}
		typ, ok := actionNames.lookup(n)
		if wt, wok := actionByName[n]; typ != wt || ok != wok {
			t.Errorf("actionNames %q = %v, %v; want %v, %v", n, typ, ok, wt, wok)
		}
		tg, ok := setFieldTargets.lookup(n)
		if wtg, wok := targets[n]; tg != wtg || ok != wok {
			t.Errorf("setFieldTargets %q = %v, %v; want %v, %v", n, tg, ok, wtg, wok)
		}
	}
	bits := map[uint32]string{}
	for _, n := range flowFields {
		tf, _ := textFields.lookup(n)
		if o, dup := bits[tf.bit]; dup || tf.bit == 0 || tf.bit&(tf.bit-1) != 0 {
			t.Errorf("flow fields %q and %q share bit %#x", n, o, tf.bit)
		}
		bits[tf.bit] = n
	}
}

// A table refuses a name given twice.
func TestNameTableDuplicate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("newNameTable took a name twice")
		}
	}()
	newNameTable([]string{"a", "b", "a"}, []int{1, 2, 3})
}
