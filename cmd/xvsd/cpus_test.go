package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []int
		err      string
	}{
		{"empty", "", nil, ""},
		{"one", "1", []int{1}, ""},
		{"range", "0-1", []int{0, 1}, ""},
		{"list", "1,3", []int{1, 3}, ""},
		{"mixed", "4-6,0,2", []int{0, 2, 4, 5, 6}, ""},
		{"duplicates", "1,0-2,1", []int{0, 1, 2}, ""},
		{"single range", "3-3", []int{3}, ""},
		{"spaces around", " 2 ", []int{2}, ""},
		{"backwards", "3-1", nil, "backwards"},
		{"negative", "-1", nil, "empty cpu number"},
		{"empty item", "1,,2", nil, "empty cpu number"},
		{"trailing comma", "1,", nil, "empty cpu number"},
		{"open range", "1-", nil, "empty cpu number"},
		{"word", "all", nil, `"all" is not a cpu number`},
		{"plus", "+1", nil, "not a cpu number"},
		{"too big", "9000", nil, "above"},
		{"double range", "1-2-3", nil, "not a cpu number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUList(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseCPUList(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("parseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}
