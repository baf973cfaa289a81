package radix

import (
	"testing"

	"github.com/xvs-project/xvs/internal/deptest"
)

// A leaf: it imports nothing but the standard library, so flowtable (which
// imports nothing of ours but steer and this) and datapath may both use it.
func TestDeps(t *testing.T) {
	deptest.StandardOnly(t, "github.com/xvs-project/xvs/internal/radix")
}
