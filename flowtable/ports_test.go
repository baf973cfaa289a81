package flowtable

import (
	"strings"
	"testing"
)

// reservedPort reads a name without regard to case, as strings.ToUpper
// does, non-ASCII letters that upper-case to ASCII included.
func TestReservedPortCase(t *testing.T) {
	tests := []struct {
		name     string
		reserved bool
		why      string
	}{
		{"IN_PORT", true, ""},
		{"in_port", true, ""},
		{"In_Port", true, ""},
		{"normal", true, reservedPorts["NORMAL"]},
		{"controller", true, reservedPorts["CONTROLLER"]},
		{"ın_port", true, ""},                   // U+0131 upper-cases to I
		{"unſet", true, reservedPorts["UNSET"]}, // U+017F upper-cases to S
		{"p1", false, ""},
		{"output", false, ""},
		{"normal0", false, ""},
		{"", false, ""},
		{"controllercontroller", false, ""},
		{"ñormal", false, ""},
	}
	for _, tt := range tests {
		why, reserved := reservedPort(tt.name)
		if reserved != tt.reserved || why != tt.why {
			t.Errorf("reservedPort(%q) = %q, %v; want %q, %v", tt.name, why, reserved, tt.why, tt.reserved)
		}
	}
}

// plainPortRef's shortcut gives what the full checks give: a reference it
// takes is valid, canonical as written and a name, and it takes the usual
// names.
func TestPlainPortRef(t *testing.T) {
	tests := []struct {
		ref   string
		plain bool
	}{
		{"p0", true}, {"p1", true}, {"eth0", true}, {"veth-a.10", true}, {"xb3f2_x", true},
		{"P0", true}, {"br0", true}, {"ens3", true}, {"0a", true}, {"9p", true},
		{"abcdefghijklmno", false}, // starts with a: reserved initial
		{"bcdefghijklmnop", true},  // 15 bytes
		{"bcdefghijklmnopq", false},
		{"", false}, {"7", false}, {"007", false}, {`"7"`, false}, {`"p0"`, false},
		{".", false}, {"..", false}, {".x", false},
		{"in_port", false}, {"IN_PORT", false}, {"local", false}, {"LOCAL", false}, {"normal", false},
		{"all", false}, {"any", false}, {"none", false}, {"unset", false}, {"table", false},
		{"flood", false}, {"controller", false}, {"Controller", false},
		{"p 0", false}, {"p/0", false}, {"p,0", false}, {"p:0", false}, {"p=0", false}, {`p"0`, false},
		{"p\x00", false}, {"pñ", false}, {"p\t", false},
	}
	for _, tt := range tests {
		if got := plainPortRef(tt.ref); got != tt.plain {
			t.Errorf("plainPortRef(%q) = %v, want %v", tt.ref, got, tt.plain)
		}
	}
	// Every reference plainPortRef takes passes the full checks as a
	// canonical name; every reserved name and in_port, in any case, takes
	// the slow path.
	for _, tt := range tests {
		if !plainPortRef(tt.ref) {
			continue
		}
		if msg := slowPortRefProblem(tt.ref); msg != "" {
			t.Errorf("%q: plain, but slowPortRefProblem says %s", tt.ref, msg)
		}
		if c := slowCanonicalPortRef(tt.ref); c != tt.ref {
			t.Errorf("%q: plain, but canonical form %q", tt.ref, c)
		}
		if name, n := ParsePortRef(tt.ref); name != tt.ref || n != 0 {
			t.Errorf("ParsePortRef(%q) = %q, %d", tt.ref, name, n)
		}
	}
	for name := range reservedPorts {
		for _, s := range []string{name, strings.ToLower(name), name + "x", strings.ToLower(name) + "0"} {
			if plainPortRef(s) {
				t.Errorf("plainPortRef(%q) is true: reserved names must take the slow path", s)
			}
		}
	}
}
