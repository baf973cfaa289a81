package afxdp

import (
	"errors"
	"os"
	"testing"
)

func TestUmemOptionsValidate(t *testing.T) {
	page := os.Getpagesize()
	tests := []struct {
		name string
		o    UmemOptions
		ok   bool
	}{
		{"defaults", UmemOptions{}, true},
		{"2K frames", UmemOptions{NumFrames: 16, FrameSize: 2048}, true},
		{"page-size frames with headroom", UmemOptions{NumFrames: 16, FrameSize: page, Headroom: 512}, true},
		{"largest headroom", UmemOptions{NumFrames: 1, FrameSize: 2048, Headroom: 2048 - 256 - 1}, true},
		{"headroom leaves no room", UmemOptions{NumFrames: 1, FrameSize: 2048, Headroom: 2048 - 256}, false},
		{"negative headroom", UmemOptions{NumFrames: 1, FrameSize: 2048, Headroom: -1}, false},
		{"frame below 2048", UmemOptions{NumFrames: 1, FrameSize: 1024}, false},
		{"frame not a power of two", UmemOptions{NumFrames: 1, FrameSize: 3000}, false},
		{"frame above the page size", UmemOptions{NumFrames: 1, FrameSize: 2 * page}, false},
		{"negative frame count", UmemOptions{NumFrames: -1}, false},
		{"too many frames", UmemOptions{NumFrames: 1<<24 + 1, FrameSize: 2048}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.withDefaults().validate()
			if tt.ok && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("validate = %v, want ErrInvalidOptions", err)
			}
			if !tt.ok {
				if _, err := NewUmem(tt.o); !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("NewUmem = %v, want ErrInvalidOptions", err)
				}
			}
		})
	}
}

func TestUmemAccessors(t *testing.T) {
	for _, fs := range []int{2048, 4096} {
		u, err := NewUmem(UmemOptions{NumFrames: 8, FrameSize: fs, Headroom: 64})
		if err != nil {
			t.Fatal(err)
		}
		if u.NumFrames() != 8 || u.FrameSize() != fs || u.Size() != 8*fs || u.Headroom() != 64 || u.DataOffset() != 64+PacketHeadroom {
			t.Fatalf("frame size %d: accessors %d %d %d %d %d", fs, u.NumFrames(), u.FrameSize(), u.Size(), u.Headroom(), u.DataOffset())
		}
		addr := uint64(3*fs + u.DataOffset())
		if u.ChunkBase(addr) != uint64(3*fs) || u.ChunkOffset(addr) != u.DataOffset() {
			t.Fatalf("ChunkBase %#x ChunkOffset %d", u.ChunkBase(addr), u.ChunkOffset(addr))
		}
		c := u.Chunk(addr)
		if len(c) != fs || cap(c) != fs {
			t.Fatalf("Chunk len %d cap %d", len(c), cap(c))
		}
		c[u.DataOffset()] = 0xab
		f := u.Frame(Desc{Addr: addr, Len: 60})
		if len(f) != 60 || cap(f) != fs-u.DataOffset() || f[0] != 0xab {
			t.Fatalf("Frame len %d cap %d first %#x", len(f), cap(f), f[0])
		}
		// Pushing a 4-byte tag: the frame grows to the front.
		g := u.Frame(Desc{Addr: addr - 4, Len: 64})
		if g[4] != 0xab {
			t.Fatal("Frame of a pushed descriptor does not alias the chunk")
		}
		if u.Mode() != ModeAuto {
			t.Fatalf("Mode without sockets = %v", u.Mode())
		}
		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close = %v, want ErrClosed", err)
		}
		if _, err := NewSocket(u, SocketOptions{Ifindex: 1}); !errors.Is(err, ErrClosed) {
			t.Fatalf("NewSocket on a closed umem = %v, want ErrClosed", err)
		}
	}
}

func TestSocketOptionsValidate(t *testing.T) {
	u, err := NewUmem(UmemOptions{NumFrames: 16, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	tests := []struct {
		name string
		o    SocketOptions
	}{
		{"no ifindex", SocketOptions{}},
		{"negative queue", SocketOptions{Ifindex: 1, Queue: -1}},
		{"bad mode", SocketOptions{Ifindex: 1, Mode: 7}},
		{"rx not a power of two", SocketOptions{Ifindex: 1, RxSize: 1000}},
		{"tx negative", SocketOptions{Ifindex: 1, TxSize: -4}},
		{"fill too big", SocketOptions{Ifindex: 1, FillSize: MaxRingSize * 2}},
		{"completion not a power of two", SocketOptions{Ifindex: 1, CompletionSize: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSocket(u, tt.o); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("NewSocket = %v, want ErrInvalidOptions", err)
			}
		})
	}
	if err := (SocketOptions{Ifindex: 1}).withDefaults().validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeAuto: "auto", ModeCopy: "copy", ModeZeroCopy: "zerocopy", 9: "Mode(9)"} {
		if m.String() != want {
			t.Errorf("%d.String() = %q, want %q", m, m.String(), want)
		}
	}
}
