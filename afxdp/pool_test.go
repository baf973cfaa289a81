package afxdp

import (
	"slices"
	"strings"
	"testing"
)

func TestFramePool(t *testing.T) {
	const n, size = 70, 2048 // 70: the bitmap's last word is partial
	p := newFramePool(n, size)
	if p.Free() != n || p.Total() != n {
		t.Fatalf("fresh pool: Free %d Total %d", p.Free(), p.Total())
	}
	a, ok := p.Get()
	if !ok || a != 0 || p.Contains(0) {
		t.Fatalf("Get = %#x %v, Contains %v", a, ok, p.Contains(0))
	}
	batch := make([]uint64, 5)
	if got := p.GetBatch(batch); got != 5 || !slices.Equal(batch, []uint64{size, 2 * size, 3 * size, 4 * size, 5 * size}) {
		t.Fatalf("GetBatch = %d %v", got, batch)
	}
	if p.Free() != n-6 {
		t.Fatalf("Free = %d, want %d", p.Free(), n-6)
	}
	// Any address inside a chunk returns the chunk's base.
	p.Put(a + PacketHeadroom + 17)
	if !p.Contains(0) {
		t.Fatal("chunk 0 not back")
	}
	if got, _ := p.Get(); got != 0 {
		t.Fatalf("Get after Put = %#x, want 0", got)
	}
	p.Put(0)
	p.PutBatch(batch)
	if p.Free() != n {
		t.Fatalf("Free after returning all = %d", p.Free())
	}
	// Drain completely, then the empty cases.
	all := make([]uint64, n+5)
	if got := p.GetBatch(all); got != n {
		t.Fatalf("GetBatch(all) = %d", got)
	}
	if _, ok := p.Get(); ok {
		t.Fatal("Get on an empty pool succeeded")
	}
	if got := p.GetBatch(all); got != 0 {
		t.Fatalf("GetBatch on an empty pool = %d", got)
	}
	seen := map[uint64]bool{}
	for _, a := range all[:n] {
		if a%size != 0 || a >= n*size || seen[a] {
			t.Fatalf("bad or duplicate chunk %#x", a)
		}
		seen[a] = true
	}
	p.PutBatch(all[:n])
	if p.Free() != n {
		t.Fatalf("Free = %d", p.Free())
	}
}

func TestFramePoolMisuse(t *testing.T) {
	tests := []struct {
		name string
		do   func(p *FramePool)
		want string
	}{
		{"put twice", func(p *FramePool) { p.Put(2048) }, "already free"},
		{"put of an interior address of a free chunk", func(p *FramePool) { p.Put(2048 + 300) }, "already free"},
		{"put past the end", func(p *FramePool) { a, _ := p.Get(); _ = a; p.Put(8 * 2048) }, "outside the umem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFramePool(8, 2048)
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Fatalf("panic %v, want one saying %q", r, tt.want)
				}
			}()
			tt.do(&p)
		})
	}
}

func TestFramePoolPutIfAbsent(t *testing.T) {
	p := newFramePool(4, 4096)
	if p.putIfAbsent(0) {
		t.Fatal("putIfAbsent of a free chunk put it")
	}
	if p.putIfAbsent(1 << 40) {
		t.Fatal("putIfAbsent of an address outside the umem put it")
	}
	a, _ := p.Get()
	if !p.putIfAbsent(a+100) || p.Free() != 4 {
		t.Fatalf("putIfAbsent of a taken chunk: Free %d", p.Free())
	}
}
