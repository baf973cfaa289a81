package flowtable

import "testing"

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
