package api

import (
	"testing"

	"github.com/xvs-project/xvs/internal/deptest"
)

// The contract imports nothing but the standard library, so every client
// can link it and nothing internal leaks into it.
func TestDeps(t *testing.T) {
	deptest.StandardOnly(t, "github.com/xvs-project/xvs/api")
}
