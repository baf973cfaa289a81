package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/testenv"
)

// Test frames carry the IEEE local experimental EtherType. The test XDP
// program redirects only those, so the IPv6 chatter of a fresh link stays
// out of the sockets.
const testEtherType = 0x88B5

// redirector is the test XDP program: frames of testEtherType go to the
// XSKMAP entry of their RX queue (XDP_PASS if none), the rest pass.
type redirector struct {
	xsks *ebpf.Map
}

// attachRedirect loads the program with an XSKMAP of its own and attaches
// it in native mode to ifindex (a veth end in the test's namespace).
func attachRedirect(t *testing.T, ifindex int) *redirector {
	t.Helper()
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 64})
	if err != nil {
		t.Fatalf("create xskmap: %v", err)
	}
	t.Cleanup(func() { xsks.Close() })
	// h_proto as a native-endian 16-bit load sees it.
	etype := binary.NativeEndian.Uint16([]byte{testEtherType >> 8, testEtherType & 0xff})
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "xsk_redirect",
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),              // r6 = ctx
			asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // r2 = data
			asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // r3 = data_end
			asm.Mov.Reg(asm.R4, asm.R2),              // r4 = data + ETH_HLEN
			asm.Add.Imm(asm.R4, 14),
			asm.JGT.Reg(asm.R4, asm.R3, "pass"),       // runt
			asm.LoadMem(asm.R4, asm.R2, 12, asm.Half), // r4 = h_proto
			asm.JNE.Imm(asm.R4, int32(etype), "pass"), // not ours
			asm.LoadMem(asm.R2, asm.R6, 16, asm.Word), // key = rx_queue_index
			asm.LoadMapPtr(asm.R1, xsks.FD()),
			asm.Mov.Imm(asm.R3, 2), // flags: XDP_PASS when the key has no socket
			asm.FnRedirectMap.Call(),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load xdp program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatalf("attach xdp to ifindex %d: %v", ifindex, err)
	}
	t.Cleanup(func() { l.Close() })
	return &redirector{xsks: xsks}
}

// add steers queue's frames to s.
func (r *redirector) add(t *testing.T, queue int, s *Socket) {
	t.Helper()
	if err := r.xsks.Put(uint32(queue), uint32(s.Fd())); err != nil {
		t.Fatalf("xskmap[%d] = fd %d: %v", queue, s.Fd(), err)
	}
}

// peer is an AF_PACKET socket on the namespace end of a veth: the host on
// the other side of the switch port. It sees only testEtherType frames.
type peer struct {
	fd  int
	mac net.HardwareAddr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPeer(t *testing.T, v *testenv.Veth) *peer {
	t.Helper()
	fd := -1
	err := v.NS.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(testEtherType)))
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(testEtherType), Ifindex: v.PeerIndex()}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("packet socket on %s: %v", v.PeerName(), err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
		t.Fatalf("SO_RCVBUF: %v", err)
	}
	return &peer{fd: fd, mac: v.PeerMAC}
}

func (p *peer) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(p.fd, f); err != nil {
			t.Fatalf("peer send: %v", err)
		}
	}
}

// recv returns the next n frames, failing the test if they take longer
// than timeout.
func (p *peer) recv(t *testing.T, n int, timeout time.Duration) [][]byte {
	t.Helper()
	var out [][]byte
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 9000)
	for len(out) < n {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("peer received %d of %d frames", len(out), n)
		}
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatalf("peer poll: %v", err)
		}
		for {
			m, from, err := unix.Recvfrom(p.fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if err != nil {
				t.Fatalf("peer recv: %v", err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			out = append(out, append([]byte(nil), buf[:m]...))
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// testFrame builds a frame of size bytes: Ethernet header with
// testEtherType, a 32-bit id, then bytes derived from the id.
func testFrame(dst, src net.HardwareAddr, size int, id uint32) []byte {
	f := make([]byte, size)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], testEtherType)
	binary.BigEndian.PutUint32(f[14:18], id)
	for i := 18; i < size; i++ {
		f[i] = byte(int(id)*7 + i)
	}
	return f
}

func frameID(f []byte) uint32 { return binary.BigEndian.Uint32(f[14:18]) }

// checkLeaks fails the test if it leaves file descriptors or goroutines
// behind. Call it first: its cleanup then runs last.
func checkLeaks(t *testing.T) {
	t.Helper()
	fds, gs := openFds(t), runtime.NumGoroutine()
	t.Cleanup(func() {
		// testenv's namespace goroutines exit just after handing back.
		deadline := time.Now().Add(2 * time.Second)
		for {
			f, g := openFds(t), runtime.NumGoroutine()
			if len(f) == len(fds) && g <= gs {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("leak: fds %v (were %v), %d goroutines (were %d)", f, fds, g, gs)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// openFds lists this process's fds with what they point to.
func openFds(t *testing.T) []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list fds: %v", err)
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own fd, closed by now
		}
		out = append(out, e.Name()+"->"+target)
	}
	return out
}
