package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/ctl/client"
	"github.com/xvs-project/xvs/testenv"
)

// These run the real xvsd, as the reports did.

// flowIDs lists the IDs of the flows xvsd has, ascending.
func flowIDs(t *testing.T, c *client.Client) []uint64 {
	t.Helper()
	fs, err := c.Flows(tctx(t), "", false)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	return ids
}

// Issue 9, item 1: with the state file on a full filesystem, a change is
// refused (507) and not made, health says why, and after a restart the
// switch is what it was; once there is room, changes work again.
func TestFullDiskRefusesChanges(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	d := startXvsd(t, dir)
	var flows []api.Flow
	for i := range 3 {
		flows = append(flows, flowJSON(fmt.Sprintf("priority=%d,udp,tp_dst=%d,actions=drop", i+1, 9000+i)))
	}
	if _, err := d.client.AddFlows(tctx(t), flows); err != nil {
		t.Fatal(err)
	}
	before := flowIDs(t, d.client)
	// Fill the filesystem.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 64<<10)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()

	var ae *client.APIError
	if _, err := d.client.ReplaceFlows(tctx(t), []api.Flow{}); !errors.As(err, &ae) || ae.Status != 507 || ae.Code != api.CodeNotSaved || !strings.Contains(ae.Message, "no space left") {
		t.Fatalf("replace-flows with a full disk: %v; want 507 not_saved saying why", err)
	}
	if _, err := d.client.AddFlow(tctx(t), flowJSON("arp,actions=kernel")); !errors.As(err, &ae) || ae.Status != 507 {
		t.Fatalf("add-flow with a full disk: %v", err)
	}
	if got := flowIDs(t, d.client); !slices.Equal(got, before) {
		t.Fatalf("flows %v after refused changes, want %v", got, before)
	}
	if err := d.client.Health(tctx(t)); err == nil || !strings.Contains(err.Error(), "state not saved") {
		t.Fatalf("health: %v", err)
	}
	d.stop(t)
	d = startXvsd(t, dir)
	if got := flowIDs(t, d.client); !slices.Equal(got, before) {
		t.Fatalf("flows %v after the restart, want %v", got, before)
	}
	// Room again: the same request works.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.ReplaceFlows(tctx(t), []api.Flow{}); err != nil {
		t.Fatalf("replace-flows with room on the disk: %v", err)
	}
	if err := d.client.Health(tctx(t)); err != nil {
		t.Fatalf("health: %v", err)
	}
}

// Issue 9, item 2: a port whose device is missing at start stays
// configured (absent, in show and health), its flows stay, the next
// unrelated change keeps both in the state file, and the port comes up
// when the device appears. After del-port and a restart, the flows that
// name the port are still there for add-port.
func TestAbsentDeviceKept(t *testing.T) {
	nsA, nsB := testenv.NewNS(t), testenv.NewNS(t)
	a := testenv.NewVeth(t, nsA, "aa", testenv.VethOptions{PeerIP: "10.231.14.1/24"})
	b := testenv.NewVeth(t, nsB, "ab", testenv.VethOptions{PeerIP: "10.231.14.2/24"})
	a.AddNeigh(t, b.PeerAddr, b.PeerMAC)
	pa, pb := a.LocalName(), b.LocalName()
	dir := t.TempDir()
	d := startXvsd(t, dir)
	for _, p := range []string{pa, pb} {
		if _, err := d.client.AddPort(tctx(t), api.PortRequest{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	toB, err := d.client.AddFlow(tctx(t), flowJSON("udp,in_port="+pa+",actions=output:"+pb))
	if err != nil {
		t.Fatal(err)
	}
	if err := udpThrough(a, b); err != nil {
		t.Fatalf("a to b: %v", err)
	}
	d.stop(t)
	if err := netlink.LinkDel(b.Local); err != nil {
		t.Fatal(err)
	}

	d = startXvsd(t, dir)
	p, err := d.client.Port(tctx(t), pb)
	if err != nil || p.State != "absent" || p.Live {
		t.Fatalf("port %s whose device is gone: %+v, %v; want state absent", pb, p, err)
	}
	if err := d.client.Health(tctx(t)); err == nil || !strings.Contains(err.Error(), pb+" absent") {
		t.Fatalf("health: %v; want the absent port named", err)
	}
	if f, err := d.client.Flow(tctx(t), toB.ID); err != nil || f.Text != toB.Text {
		t.Fatalf("the flow to the absent port: %+v, %v", f, err)
	}
	// An unrelated change: the state file keeps the port and its flow.
	if _, err := d.client.AddFlow(tctx(t), flowJSON("arp,actions=kernel")); err != nil {
		t.Fatal(err)
	}
	st, err := ctl.NewStore(filepath.Join(dir, "state.json")).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ports) != 2 || st.Ports[1].Name != pb || len(st.Flows) != 2 || st.Flows[0].ID != toB.ID {
		t.Fatalf("state file after an unrelated change: %+v", st)
	}

	// The device comes back (same name, new netns and ifindex): the port
	// comes up by itself and forwards.
	b2 := testenv.NewVeth(t, testenv.NewNS(t), "ab", testenv.VethOptions{PeerIP: "10.231.14.2/24", Name: pb})
	a.AddNeigh(t, b2.PeerAddr, b2.PeerMAC)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err = d.client.Port(tctx(t), pb)
		if err == nil && p.State == "up" && p.Live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s after its device came back: %+v, %v", pb, p, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := udpThrough(a, b2); err != nil {
		t.Fatalf("a to the device that came back: %v", err)
	}
	if err := d.client.Health(tctx(t)); err != nil {
		t.Fatalf("health: %v", err)
	}

	// del-port, restart, add-port: the flow naming it is still there.
	if err := d.client.DeletePort(tctx(t), pb); err != nil {
		t.Fatal(err)
	}
	d.stop(t)
	d = startXvsd(t, dir)
	if f, err := d.client.Flow(tctx(t), toB.ID); err != nil || f.Text != toB.Text {
		t.Fatalf("after del-port and a restart, the flow naming the port: %+v, %v", f, err)
	}
	if _, err := d.client.AddPort(tctx(t), api.PortRequest{Name: pb}); err != nil {
		t.Fatal(err)
	}
	if err := udpThrough(a, b2); err != nil {
		t.Fatalf("a to b after add-port: %v", err)
	}
}

// Issue 9, item 9: SIGHUP reads the token file again (and says so in the
// log) instead of killing xvsd.
func TestSighupReloadsToken(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	d := startXvsdAt(t, dir, "tcp:"+addr, client.Options{Token: "first"}, "--token-file", tokenFile)
	if err := os.WriteFile(tokenFile, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	second, _ := client.New("http://"+addr, client.Options{Token: "second"})
	defer second.Close()
	deadline := time.Now().Add(5 * time.Second)
	for second.Health(tctx(t)) != nil {
		select {
		case err := <-d.done:
			t.Fatalf("xvsd exited on SIGHUP: %v\n%s", err, d.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new token never worked:\n%s", d.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ae *client.APIError
	if err := d.client.Health(tctx(t)); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("the old token after the reload: %v", err)
	}
	if !strings.Contains(d.log.String(), "token reloaded") {
		t.Errorf("the log does not say the token was reloaded:\n%s", d.log)
	}
}

// rawRequest sends req as it is (no client rewrites Host or adds headers)
// and returns the status and body.
func rawRequest(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Issue 9, item 6: the requests a web page can make of a loopback TCP API
// with no token are refused, and change nothing.
func TestWebPageRefused(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	d := startXvsdAt(t, dir, "tcp:"+addr, client.Options{})
	if _, err := d.client.AddFlow(tctx(t), flowJSON("udp,tp_dst=53,actions=drop")); err != nil {
		t.Fatal(err)
	}
	body := `{"flow":"tcp,actions=drop"}`
	for _, tc := range []struct{ name, req string }{
		{"cross-site post", "POST /v1/flows HTTP/1.1\r\nHost: evil.example:" + port + "\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body},
		{"rebinding", "POST /v1/flows HTTP/1.1\r\nHost: evil.example:" + port + "\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body},
		{"cross-origin to loopback", "POST /v1/flows HTTP/1.1\r\nHost: " + addr + "\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body},
		{"empty the table", "POST /v1/flows/delete HTTP/1.1\r\nHost: " + addr + "\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"},
		{"form post", "POST /v1/flows/delete HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"},
	} {
		code, resp := rawRequest(t, addr, tc.req)
		if code != 403 && code != 415 {
			t.Errorf("%s: %d %s, want 403 or 415", tc.name, code, resp)
		}
	}
	if fs, err := d.client.Flows(tctx(t), "", false); err != nil || len(fs) != 1 {
		t.Fatalf("flows after the web page tried: %+v, %v", fs, err)
	}
}

// rssKiB returns a process's resident set.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			n, _ := strconv.Atoi(strings.Fields(string(v))[0])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// Issue 9, item 5: 60 connections that each declare a 32 MiB body and send
// one byte leave xvsd's memory where it was, and are cut off.
func TestSlowClientsCostNothing(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	d := startXvsdAt(t, dir, "tcp:"+addr, client.Options{})
	before := rssKiB(t, d.cmd.Process.Pid)
	var conns []net.Conn
	for range 60 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/flows HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[", addr, 32<<20)
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second)
	during := rssKiB(t, d.cmd.Process.Pid)
	t.Logf("xvsd RSS: %d MiB before, %d MiB with 60 clients that declared 32 MiB", before>>10, during>>10)
	if during-before > 64<<10 {
		t.Errorf("RSS grew by %d MiB", (during-before)>>10)
	}
	// Cut off once the body stops for the idle timeout.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(ctl.DefaultBodyIdleTimeout + 10*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("client %d: %v, %v; want a 400 once the body stops", i, resp, err)
		}
	}
	if err := d.client.Health(tctx(t)); err != nil {
		t.Fatal(err)
	}
}
