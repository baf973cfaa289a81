package datapath

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// Bulk TCP through the switch, both ways at once (one connection each way,
// 16 MiB each): every byte arrives intact. TCP retransmits what the switch
// might lose, so this proves integrity under load, not losslessness.
func TestTCPBulk(t *testing.T) {
	const size = 16 << 20
	tp := newTopo(t, topoOptions{})
	tp.addFlows(t, "in_port={a},actions=output:{b}", "in_port={b},actions=output:{a}")

	type transfer struct {
		name     string
		from, to *host
		port     int
		seed     byte
	}
	transfers := []transfer{{"a to b", tp.a, tp.b, 5001, 1}, {"b to a", tp.b, tp.a, 5002, 2}}
	lns := make([]net.Listener, len(transfers))
	for i, x := range transfers {
		if err := x.to.NS.Do(func() (err error) {
			lns[i], err = net.Listen("tcp4", fmt.Sprintf("%s:%d", x.to.ip, x.port))
			return err
		}); err != nil {
			t.Fatalf("listen in %s: %v", x.to.name, err)
		}
		defer lns[i].Close()
	}

	deadline := time.Now().Add(2 * time.Minute)
	var wg sync.WaitGroup
	errs := make([]error, 2*len(transfers))
	sums := make([][2][32]byte, len(transfers)) // sent, received
	for i, x := range transfers {
		wg.Go(func() { // receiver
			c, err := lns[i].Accept()
			if err != nil {
				errs[2*i] = err
				return
			}
			defer c.Close()
			c.SetDeadline(deadline)
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err == nil && n != size {
				err = fmt.Errorf("received %d bytes, want %d", n, size)
			}
			errs[2*i] = err
			copy(sums[i][1][:], h.Sum(nil))
		})
		wg.Go(func() { // sender
			var c net.Conn
			if err := x.from.NS.Do(func() (err error) {
				c, err = net.DialTimeout("tcp4", lns[i].Addr().String(), 10*time.Second)
				return err
			}); err != nil {
				errs[2*i+1] = fmt.Errorf("connect: %w", err)
				return
			}
			defer c.Close()
			c.SetDeadline(deadline)
			h := sha256.New()
			src := io.LimitReader(rand.NewChaCha8([32]byte{x.seed}), size)
			if _, err := io.Copy(io.MultiWriter(c, h), src); err != nil {
				errs[2*i+1] = err
				return
			}
			copy(sums[i][0][:], h.Sum(nil))
		})
	}
	wg.Wait()
	for i, x := range transfers {
		if err := errors.Join(errs[2*i], errs[2*i+1]); err != nil {
			t.Errorf("%s: %v", x.name, err)
			continue
		}
		if !bytes.Equal(sums[i][0][:], sums[i][1][:]) {
			t.Errorf("%s: sha256 of what arrived differs from what was sent", x.name)
		}
	}
	for _, h := range []*host{tp.a, tp.b} {
		if st := tp.stats(t, h); st.RxBytes < size {
			t.Errorf("port %s: userspace received %d bytes, less than the %d sent through it", h.name, st.RxBytes, size)
		}
	}
}
