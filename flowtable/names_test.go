package flowtable

import (
	"strings"
	"testing"

	"github.com/xvs-project/xvs/flowtable/steer"
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

// Every match field sets key bits only in its group's bytes (groupBytes),
// valid value or not: add merges a field over those alone.
func TestFieldKeyInGroup(t *testing.T) {
	values := strings.Fields(`0 1 3 7 8 63 64 255 256 4095 4096 0x1000 0x1fff 0xffff 0x10000 0x1000/0x1000 0x1064 0xe000/0xe000
		0x0800 0x86dd 0x0806 0x05ff 0x05fe 65535 18446744073709551615 0x1f00/0xff00 1/0 0/0 80/0xfff0
		10.1.2.3 10.0.0.0/8 10.1.2.3/255.0.255.0 10.1.2.3/33 255.255.255.255/0 1.2.3 ::1 2001:db8::/32 ::1/ffff::ffff
		fe80::1/64 2001:db8::1/::ffff 01:00:00:00:00:00/01:00:00:00:00:00 ff:ff:ff:ff:ff:ff 02:00:00:00:00:01/ff:ff:ff:00:00:00
		no yes first later not_later bogus p0 "2"`)
	for _, f := range matchFields {
		off, n := groupBytes[f.group][0], groupBytes[f.group][1]
		for _, v := range values {
			var k, m Key
			fieldKey(f, v, &k, &m)
			for i := range steer.KeyLen {
				if (i < off || i >= off+n) && (k[i] != 0 || m[i] != 0) {
					t.Errorf("%s=%s sets key byte %d, outside its group's %d..%d", f.name, v, i, off, off+n-1)
				}
			}
		}
	}
}

// A ')' without its '(' does not join the next action to it: the split
// ends at a separator whenever no parenthesis is open.
func TestSplitActionsUnbalanced(t *testing.T) {
	toks := splitActions("mod)_9d,_dst resubmit(,1),p1", 0)
	var got []string
	for _, tok := range toks {
		got = append(got, tok.text)
	}
	if want := "mod)_9d|_dst|resubmit(,1)|p1"; strings.Join(got, "|") != want {
		t.Errorf("splitActions = %q, want %q", strings.Join(got, "|"), want)
	}
}
