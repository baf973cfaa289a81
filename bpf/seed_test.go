package bpf

import (
	"os"
	"strconv"
	"time"
)

func seedFromEnv() int64 {
	if s, err := strconv.ParseInt(os.Getenv("XVS_SEED"), 10, 64); err == nil {
		return s
	}
	return time.Now().UnixNano()
}
