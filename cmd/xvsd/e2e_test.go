package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/ctl/client"
	"github.com/xvs-project/xvs/testenv"
)

// These tests run the real xvsd binary, as root, on veth topologies of their
// own: what a user of the xvsdProc meets.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// xvsdBinary builds xvsd once per test run.
func xvsdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xvsd-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "xvsd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build xvsd: %v", buildErr)
	}
	return binPath
}

type xvsdProc struct {
	cmd    *exec.Cmd
	client *client.Client
	log    *syncBuffer
	done   chan error
}

// stop ends xvsd with SIGTERM and waits for it.
func (d *xvsdProc) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("xvsd exited: %v\n%s", err, d.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("xvsd did not stop:\n%s", d.log)
	}
}

// startXvsd starts xvsd with its socket and state under dir, and args, and
// waits until it answers.
func startXvsd(t *testing.T, dir string, args ...string) *xvsdProc {
	t.Helper()
	sock := filepath.Join(dir, "xvsd.sock")
	os.Remove(sock)
	return startXvsdAt(t, dir, "unix:"+sock, client.Options{}, args...)
}

// startXvsdAt starts xvsd listening at listen (a --listen address), with
// its state under dir, and waits until a client with opts gets an answer.
func startXvsdAt(t *testing.T, dir, listen string, opts client.Options, args ...string) *xvsdProc {
	t.Helper()
	d := &xvsdProc{log: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(xvsdBinary(t), append([]string{"--listen", listen, "--state", filepath.Join(dir, "state.json")}, args...)...)
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	server := listen
	if a, ok := strings.CutPrefix(listen, "tcp:"); ok {
		server = "http://" + a
	}
	c, err := client.New(server, opts)
	if err != nil {
		t.Fatal(err)
	}
	d.client = c
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Any answer will do: health may say a port is absent.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ports(ctx)
		cancel()
		if err == nil {
			return d
		}
		select {
		case werr := <-d.done:
			t.Fatalf("xvsd exited (%v): %s", werr, d.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("xvsd did not answer: %v\n%s", err, d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func flowJSON(s string) api.Flow { return api.Flow{Text: s} }

// udpArrives reports whether a datagram sent from v's namespace to addr
// reaches a listener on addr in the test's namespace.
func udpArrives(t *testing.T, v *testenv.Veth, addr net.IP) bool {
	t.Helper()
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.LocalAddr().(*net.UDPAddr).Port
	err = v.NS.Do(func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: addr, Port: port})
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < 5; i++ { // the first may wait for ARP
			c.Write([]byte("ping"))
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 16)
	_, _, err = l.ReadFromUDP(buf)
	return err == nil
}

func xdpAttached(t *testing.T, name string) bool {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	x := l.Attrs().Xdp
	return x != nil && x.Attached
}

// TestKill9GivesTrafficBack: if xvsd dies, its XDP programs go with it and
// the host gets its traffic back; on restart, ports and flows come back from
// the state file. The flow runs in the XDP fast path (b's peer has GRO on,
// so b takes redirected frames) when xvsd is killed.
func TestKill9GivesTrafficBack(t *testing.T) {
	nsA, nsB := testenv.NewNS(t), testenv.NewNS(t)
	a := testenv.NewVeth(t, nsA, "ka", testenv.VethOptions{LocalIP: "10.203.0.254/24", PeerIP: "10.203.0.1/24"})
	b := testenv.NewVeth(t, nsB, "kb", testenv.VethOptions{PeerIP: "10.203.0.2/24", PeerGRO: true})
	if !udpArrives(t, a, a.LocalAddr) {
		t.Fatal("the host's address is not reachable even before xvsd")
	}
	dir := t.TempDir()
	d := startXvsd(t, dir)
	for _, v := range []*testenv.Veth{a, b} {
		if _, err := d.client.AddPort(tctx(t), api.PortRequest{Name: v.LocalName()}); err != nil {
			t.Fatal(err)
		}
	}
	// Everything from a goes to b: the host no longer sees a's traffic.
	if _, err := d.client.AddFlow(tctx(t), flowJSON("in_port="+a.LocalName()+",actions=output:"+b.LocalName())); err != nil {
		t.Fatal(err)
	}
	if !xdpAttached(t, a.LocalName()) {
		t.Fatal("no XDP program on the port while xvsd runs")
	}
	if udpArrives(t, a, a.LocalAddr) {
		t.Fatal("the host still got a's traffic although a flow takes all of it")
	}
	if flows, err := d.client.Flows(tctx(t), "", false); err != nil || len(flows) != 1 || flows[0].Datapath != api.DatapathXDP {
		t.Fatalf("the flow does not run in XDP: %+v, %v", flows, err)
	}

	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done
	// The kernel releases the bpf_links when the last fd goes.
	deadline := time.Now().Add(5 * time.Second)
	for xdpAttached(t, a.LocalName()) || xdpAttached(t, b.LocalName()) {
		if time.Now().After(deadline) {
			t.Fatal("an XDP program outlived xvsd")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !udpArrives(t, a, a.LocalAddr) {
		t.Fatal("after xvsd died the host did not get its traffic back")
	}

	// Restart: the state file brings the ports and the flow back.
	d2 := startXvsd(t, dir)
	ports, err := d2.client.Ports(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 {
		t.Fatalf("restored %d ports, want 2: %+v", len(ports), ports)
	}
	flows, err := d2.client.Flows(tctx(t), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 || !strings.Contains(flows[0].Text, "in_port="+a.LocalName()) || flows[0].Datapath != api.DatapathXDP {
		t.Fatalf("restored flows: %+v", flows)
	}
	if udpArrives(t, a, a.LocalAddr) {
		t.Fatal("after the restart the restored flow does not take a's traffic")
	}
}

// TestRESTBadInput: bad requests are refused with the right status and
// say what is wrong, and a failed request changes nothing.
func TestRESTBadInput(t *testing.T) {
	nsA := testenv.NewNS(t)
	a := testenv.NewVeth(t, nsA, "ra", testenv.VethOptions{})
	b := testenv.NewVeth(t, nsA, "rb", testenv.VethOptions{})
	d := startXvsd(t, t.TempDir())
	c := d.client
	pa, pb := a.LocalName(), b.LocalName()
	for _, n := range []string{pa, pb} {
		if _, err := c.AddPort(tctx(t), api.PortRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	good := "priority=5,udp,in_port=" + pa + ",actions=output:" + pb
	if _, err := c.AddFlow(tctx(t), flowJSON(good)); err != nil {
		t.Fatal(err)
	}

	apiErr := func(err error) *client.APIError {
		t.Helper()
		var ae *client.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("want an API error, got %v", err)
		}
		return ae
	}
	tests := []struct {
		name   string
		call   func() error
		status int
		code   api.ErrorCode
		field  string
		index  int
		msg    string
	}{
		{"unknown field", func() error {
			_, err := c.AddFlow(tctx(t), flowJSON("udp,tp_dsst=1,actions=drop"))
			return err
		}, 400, api.CodeInvalid, "tp_dsst", -1, `unknown field "tp_dsst"`},
		{"missing prerequisite", func() error {
			_, err := c.AddFlow(tctx(t), flowJSON("tp_dst=80,actions=drop"))
			return err
		}, 400, api.CodeInvalid, "tp_dst", -1, "requires"},
		{"output to unknown port", func() error {
			_, err := c.AddFlow(tctx(t), flowJSON("udp,actions=output:nosuch0"))
			return err
		}, 404, api.CodeNoSuchPort, "output", -1, "no such port"},
		{"get unknown port", func() error {
			_, err := c.Port(tctx(t), "nosuch0")
			return err
		}, 404, api.CodeNoSuchPort, "", -1, "no such port"},
		{"delete unknown port", func() error { return c.DeletePort(tctx(t), "nosuch0") }, 404, api.CodeNoSuchPort, "", -1, "no such port"},
		{"add missing netdev", func() error {
			_, err := c.AddPort(tctx(t), api.PortRequest{Name: "nosuch0"})
			return err
		}, 404, api.CodeNoSuchDevice, "", -1, "no such"},
		{"duplicate port", func() error {
			_, err := c.AddPort(tctx(t), api.PortRequest{Name: pa})
			return err
		}, 409, api.CodePortExists, "", -1, "exists"},
		{"bad mode", func() error {
			_, err := c.AddPort(tctx(t), api.PortRequest{Name: "lo", Mode: "turbo"})
			return err
		}, 400, api.CodeInvalid, "mode", -1, "mode"},
		{"loopback port", func() error {
			_, err := c.AddPort(tctx(t), api.PortRequest{Name: "lo"})
			return err
		}, 400, api.CodeInvalid, "", -1, "a loopback device cannot be a port: invalid input"},
		{"batch with one bad flow", func() error {
			_, err := c.AddFlows(tctx(t), []api.Flow{
				flowJSON("priority=9,tcp,actions=output:" + pb),
				flowJSON("priority=9,udp,tp_dst=99999,actions=drop"),
			})
			return err
		}, 400, api.CodeInvalid, "tp_dst", 1, "out of range"},
		{"replace with one bad flow", func() error {
			_, err := c.ReplaceFlows(tctx(t), []api.Flow{
				flowJSON("priority=9,tcp,actions=output:" + pb),
				flowJSON("priority=9,in_port=nosuch0,actions=drop"),
			})
			return err
		}, 404, api.CodeNoSuchPort, "in_port", 1, "no such port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := apiErr(tt.call())
			if ae.Status != tt.status || ae.Code != tt.code || ae.Field != tt.field || ae.Index != tt.index || !strings.Contains(ae.Message, tt.msg) {
				t.Fatalf("got status %d code %q field %q index %d message %q; want %d %q %q %d containing %q",
					ae.Status, ae.Code, ae.Field, ae.Index, ae.Message, tt.status, tt.code, tt.field, tt.index, tt.msg)
			}
			if strings.Contains(ae.Message, "invalid flow") && !strings.Contains(tt.name, "flow") {
				t.Errorf("message %q", ae.Message)
			}
		})
	}
	// Nothing changed: one flow, two ports.
	flows, err := c.Flows(tctx(t), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 || !strings.Contains(flows[0].Text, "in_port="+pa) {
		t.Fatalf("failed requests changed the flows: %+v", flows)
	}
	ports, err := c.Ports(tctx(t))
	if err != nil || len(ports) != 2 {
		t.Fatalf("ports after failed requests: %+v %v", ports, err)
	}
}

// TestExpiredFlowsPersisted: a flow removed by its hard timeout leaves the
// state file too, so a restart does not bring it back.
func TestExpiredFlowsPersisted(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	d := startXvsd(t, dir)
	for _, f := range []string{"priority=10,udp,tp_dst=9,hard_timeout=1,actions=drop", "priority=5,tcp,tp_dst=9,actions=drop"} {
		if _, err := d.client.AddFlow(tctx(t), flowJSON(f)); err != nil {
			t.Fatal(err)
		}
	}
	store := ctl.NewStore(filepath.Join(dir, "state.json"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := store.Load()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Flows) == 1 && strings.Contains(st.Flows[0].Flow, "tcp") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state file still holds %v 5s after a 1s hard timeout", st.Flows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	flows, err := d.client.Flows(tctx(t), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 || !strings.Contains(flows[0].Text, "tcp") {
		t.Fatalf("switch holds %+v, want the tcp flow alone", flows)
	}
}

// TestPollerCPUsKeptForPollers: with --cpus, the poller thread runs on its
// CPU alone, every other thread of xvsd keeps off it, and GOMAXPROCS stays
// the number of CPUs.
func TestPollerCPUsKeptForPollers(t *testing.T) {
	testenv.RequireRoot(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs")
	}
	pollerCPU := runtime.NumCPU() - 1
	ns := testenv.NewNS(t)
	v := testenv.NewVeth(t, ns, "cpu", testenv.VethOptions{})
	d := startXvsd(t, t.TempDir(), "--cpus", strconv.Itoa(pollerCPU))
	if _, err := d.client.AddPort(tctx(t), api.PortRequest{Name: v.LocalName()}); err != nil {
		t.Fatal(err)
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", d.cmd.Process.Pid))
	if err != nil || len(tasks) < 2 {
		t.Fatalf("threads of xvsd: %v %v", tasks, err)
	}
	want := strconv.Itoa(pollerCPU)
	pollers := 0
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		var allowed string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				allowed = strings.TrimSpace(v)
			}
		}
		switch {
		case allowed == want:
			pollers++
		case cpuListHas(t, allowed, pollerCPU):
			t.Errorf("%s: thread may run on %s, the poller's CPU %d among them", f, allowed, pollerCPU)
		}
	}
	if pollers != 1 {
		t.Fatalf("%d threads pinned to CPU %d, want the one poller", pollers, pollerCPU)
	}
	// The Go runtime re-reads the process's CPU affinity about once a
	// second and would shrink GOMAXPROCS to the CPUs left to the rest:
	// xvsd keeps it.
	time.Sleep(2500 * time.Millisecond)
	m, err := d.client.Metrics(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("go_sched_gomaxprocs_threads %d\n", runtime.NumCPU())
	if !strings.Contains(m, want) {
		i := strings.Index(m, "go_sched_gomaxprocs_threads ")
		t.Fatalf("metrics do not say %q: %.40s", want, m[max(i, 0):])
	}
}

// cpuListHas reports whether a Cpus_allowed_list ("0-2,5") holds cpu.
func cpuListHas(t *testing.T, list string, cpu int) bool {
	for _, r := range strings.Split(list, ",") {
		lo, hi, ok := strings.Cut(r, "-")
		if !ok {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad cpu list %q", list)
		}
		if a <= cpu && cpu <= b {
			return true
		}
	}
	return false
}
