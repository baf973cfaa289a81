package bpf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/testenv"
)

// newVeth makes a veth pair whose local end stays in the test's namespace
// and whose peer lives in a fresh namespace.
func newVeth(tb testing.TB, localIP, peerIP string) *testenv.Veth {
	tb.Helper()
	ns := testenv.NewNS(tb)
	return testenv.NewVeth(tb, ns, "xb", testenv.VethOptions{LocalIP: localIP, PeerIP: peerIP})
}

// xdpOn returns the XDP state netlink reports for ifindex.
func xdpOn(tb testing.TB, ifindex int) *netlink.LinkXdp {
	tb.Helper()
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		tb.Fatalf("link %d: %v", ifindex, err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return x
	}
	return nil
}

func progID(tb testing.TB, o *Objects) uint32 {
	tb.Helper()
	return progInfoID(tb, o.objs.XvsXdp)
}

// netlink's IFLA_XDP_ATTACHED values.
const (
	xdpAttachedDrv = 1
	xdpAttachedSkb = 2
)

func TestAttach(t *testing.T) {
	tests := []struct {
		mode     Mode
		want     Mode
		attached uint32
	}{
		{ModeNative, ModeNative, xdpAttachedDrv},
		{ModeGeneric, ModeGeneric, xdpAttachedSkb},
		{ModeAuto, ModeNative, xdpAttachedDrv}, // veth has a native XDP path
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			o := load(t, false)
			v := newVeth(t, "", "")
			a, err := o.Attach(v.LocalIndex(), tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			if a.Mode() != tt.want || a.Ifindex() != v.LocalIndex() {
				t.Fatalf("attached as %v on %d, want %v on %d", a.Mode(), a.Ifindex(), tt.want, v.LocalIndex())
			}
			x := xdpOn(t, v.LocalIndex())
			if x == nil || x.ProgId != progID(t, o) || x.AttachMode != tt.attached {
				t.Fatalf("netlink xdp state %+v, want prog %d mode %d", x, progID(t, o), tt.attached)
			}
			if _, err := o.Attach(v.LocalIndex(), tt.mode); err == nil {
				t.Fatal("second attach to the same device: no error")
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if x := xdpOn(t, v.LocalIndex()); x != nil {
				t.Fatalf("still attached after Close: %+v", x)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			// Attachable again once detached.
			a, err = o.Attach(v.LocalIndex(), tt.mode)
			if err != nil {
				t.Fatalf("re-attach: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCloseObjectsDetaches(t *testing.T) {
	testenv.RequireRoot(t)
	o, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := newVeth(t, "", ""), newVeth(t, "", "")
	a1, err := o.Attach(v1.LocalIndex(), ModeNative)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Attach(v2.LocalIndex(), ModeGeneric); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ifindex := range []int{v1.LocalIndex(), v2.LocalIndex()} {
		if x := xdpOn(t, ifindex); x != nil {
			t.Fatalf("ifindex %d still has xdp after Objects.Close: %+v", ifindex, x)
		}
	}
	if err := a1.Close(); err != nil {
		t.Fatalf("closing an attachment after its objects: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := o.Attach(v1.LocalIndex(), ModeGeneric); err == nil {
		t.Fatal("attach after Close: no error")
	}
	if err := o.SetMasks(nil); err == nil {
		t.Fatal("SetMasks after Close: no error")
	}
}

func TestAttachErrors(t *testing.T) {
	o := load(t, false)
	if _, err := o.Attach(0, ModeAuto); err == nil {
		t.Fatal("ifindex 0: no error")
	}
	if _, err := o.Attach(1<<30, ModeAuto); err == nil {
		t.Fatal("missing device: no error")
	}
	if _, err := o.Attach(loIndex(t), Mode(9)); err == nil {
		t.Fatal("unknown mode: no error")
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeNative, ModeGeneric} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("offload"); err == nil {
		t.Fatal("ParseMode(offload): no error")
	}
}

const childEnv = "XVS_BPF_ATTACH_CHILD"

// The child half of TestAttachDiesWithProcess: attach, say so, wait to be
// killed.
func attachChild(ifindex string) {
	n, err := strconv.Atoi(ifindex)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	o, err := Load()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if _, err := o.Attach(n, ModeNative); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	info, _ := o.objs.XvsXdp.Info()
	id, _ := info.ID()
	fmt.Println("attached", uint32(id))
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// If the process dies, the kernel detaches its program: nothing is pinned.
func TestAttachDiesWithProcess(t *testing.T) {
	if ifindex := os.Getenv(childEnv); ifindex != "" {
		attachChild(ifindex)
		return
	}
	testenv.RequireRoot(t)
	v := newVeth(t, "", "")
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttachDiesWithProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(v.LocalIndex()))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	idStr, ok := strings.CutPrefix(strings.TrimSpace(line), "attached ")
	if !ok {
		t.Fatalf("child: %s", line)
	}
	x := xdpOn(t, v.LocalIndex())
	if x == nil || strconv.FormatUint(uint64(x.ProgId), 10) != idStr {
		t.Fatalf("child's program %s not on the device: %+v", idStr, x)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waited = true
	deadline := time.Now().Add(5 * time.Second)
	for xdpOn(t, v.LocalIndex()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("program still attached 5s after its process died")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
