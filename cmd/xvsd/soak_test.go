package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl"
	"github.com/xvs-project/xvs/ctl/client"
	"github.com/xvs-project/xvs/testenv"
)

// TestSoak (issue 9, item 10) runs the real xvsd for XVS_SOAK (a duration:
// `make soak DURATION=10m`; CI runs a short one): several clients add and
// remove ports, flows and groups at random and set liveness, a follower
// reads /v1/events, traffic crosses the switch, and every few seconds xvsd
// is killed with SIGKILL and started again. After every restart each
// client checks that everything the switch acknowledged is there (what
// was in flight at the kill may or may not be). The last part runs without
// kills, and at its end: every UMEM frame is accounted for, xvsd has no
// more fds or goroutines than at its start, its RSS stayed bounded, and
// the live table equals the state file. It prints what it held.
//
// All names are random (testenv): it needs no lock and runs beside other
// tests.
func TestSoak(t *testing.T) {
	spec := os.Getenv("XVS_SOAK")
	if spec == "" {
		t.Skip("a soak of minutes: set XVS_SOAK=DURATION (make soak)")
	}
	duration, err := time.ParseDuration(spec)
	if err != nil || duration < 30*time.Second {
		t.Fatalf("XVS_SOAK=%q: want a duration of 30s or more", spec)
	}
	testenv.RequireRoot(t)
	start := time.Now()
	killUntil := start.Add(duration * 2 / 3)
	end := start.Add(duration)

	// The topology: traffic from a to b; c is a group's other bucket; each
	// client has a device of its own to add and remove as a port.
	const nClients = 4
	a := testenv.NewVeth(t, testenv.NewNS(t), "sa", testenv.VethOptions{PeerIP: "10.231.20.1/24"})
	b := testenv.NewVeth(t, testenv.NewNS(t), "sb", testenv.VethOptions{PeerIP: "10.231.20.2/24"})
	c := testenv.NewVeth(t, testenv.NewNS(t), "sc", testenv.VethOptions{PeerIP: "10.231.20.3/24"})
	a.AddNeigh(t, b.PeerAddr, b.PeerMAC)
	dir := t.TempDir()
	st := &soakStats{start: start, acked: map[string]int{}}

	d := startXvsd(t, dir)
	for _, v := range []*testenv.Veth{a, b, c} {
		if _, err := d.client.AddPort(tctx(t), api.PortRequest{Name: v.LocalName()}); err != nil {
			t.Fatal(err)
		}
	}
	base, err := d.client.AddFlow(tctx(t), flowJSON(fmt.Sprintf("priority=1000,udp,in_port=%s,tp_dst=7777,actions=output:%s", a.LocalName(), b.LocalName())))
	if err != nil {
		t.Fatal(err)
	}
	clients := make([]*soakClient, nClients)
	for i := range clients {
		v := testenv.NewVeth(t, testenv.NewNS(t), fmt.Sprintf("s%d", i), testenv.VethOptions{})
		clients[i] = newSoakClient(i, v.LocalName(), []string{b.LocalName(), c.LocalName()})
	}
	traffic := startSoakTraffic(t, a, b, 7777)
	defer traffic.stop()
	events := startSoakEvents()
	defer events.stop()

	var killed atomic.Bool
	failures := make(chan error, nClients)
	runClients := func(d *xvsdProc, until time.Time) {
		ctx, cancel := context.WithDeadline(context.Background(), until)
		defer cancel()
		var wg sync.WaitGroup
		for _, cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := cl.run(ctx, d.client, &killed); err != nil {
					failures <- err
				}
			}()
		}
		wg.Wait()
	}
	checkFailures := func() {
		t.Helper()
		select {
		case err := <-failures:
			t.Fatalf("soak: %v\nxvsd log:\n%s", err, d.log)
		default:
		}
	}
	verify := func(d *xvsdProc, when string) {
		t.Helper()
		sw, err := readSwitch(d.client)
		if err != nil {
			t.Fatalf("%s: read the switch: %v", when, err)
		}
		if _, ok := sw.flows[base.ID]; !ok {
			t.Fatalf("%s: the base flow %d is gone", when, base.ID)
		}
		for _, cl := range clients {
			if err := cl.verify(sw); err != nil {
				t.Fatalf("%s: client %d: %v\nxvsd log:\n%s", when, cl.id, err, d.log)
			}
		}
	}

	// Kill phases.
	events.follow(d.client)
	for time.Now().Before(killUntil) {
		phase := time.Duration(4000+rand.IntN(5000)) * time.Millisecond
		killed.Store(false)
		runKill := make(chan struct{})
		go func() {
			runClients(d, time.Now().Add(phase))
			close(runKill)
		}()
		time.Sleep(phase - 50*time.Millisecond)
		killed.Store(true)
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		<-runKill
		checkFailures()
		st.kills++
		d = startXvsd(t, dir)
		events.follow(d.client)
		st.tempsRemoved += strings.Count(d.log.String(), "removed a temporary state file")
		verify(d, fmt.Sprintf("after kill %d", st.kills))
	}

	// The last part: no kills. Clean up what the clients own, measure, run,
	// clean up, measure again.
	killed.Store(false)
	clean := func() {
		t.Helper()
		for _, cl := range clients {
			if err := cl.clean(d.client); err != nil {
				t.Fatalf("client %d cleaning up: %v", cl.id, err)
			}
		}
	}
	clean()
	pid := d.cmd.Process.Pid
	st.base = sampleXvsd(t, pid, dir)
	sent0, got0 := traffic.counts()
	sampling := make(chan struct{})
	var maxRSS atomic.Int64
	go func() {
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-tk.C:
				if r := int64(rssKiB(t, pid)); r > maxRSS.Load() {
					maxRSS.Store(r)
				}
			}
		}
	}()
	runClients(d, end)
	close(sampling)
	checkFailures()
	verify(d, "at the end")
	sent1, got1 := traffic.counts()
	clean()
	traffic.stop()
	events.stop()
	time.Sleep(time.Second)
	st.end = sampleXvsd(t, pid, dir)
	st.maxRSS = int(maxRSS.Load())

	// Every frame accounted for, once the traffic stopped.
	var frames []api.FrameStats
	deadline := time.Now().Add(5 * time.Second)
	for {
		frames, err = d.client.Frames(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(frames, func(f api.FrameStats) bool { return !f.Balanced }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames unaccounted for after the traffic stopped: %+v", frames)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The live table is the state file.
	sw, err := readSwitch(d.client)
	if err != nil {
		t.Fatal(err)
	}
	state, err := ctl.NewStore(filepath.Join(dir, "state.json")).Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.matches(state); err != nil {
		t.Fatalf("the live switch and the state file differ: %v", err)
	}
	d.stop(t)

	// The figures.
	for _, cl := range clients {
		for k, n := range cl.acked {
			st.acked[k] += n
		}
		st.uncertain += cl.uncertainSeen
	}
	st.sent, st.got = traffic.counts()
	st.finalSent, st.finalGot = sent1-sent0, got1-got0
	st.events, st.eventStreams = events.counts()
	st.frames = frames
	t.Log(st.String())
	fmt.Println(st.String())

	if st.end.fds > st.base.fds+2 {
		t.Errorf("fds grew from %d to %d", st.base.fds, st.end.fds)
	}
	if st.end.goroutines > st.base.goroutines+5 {
		t.Errorf("goroutines grew from %d to %d", st.base.goroutines, st.end.goroutines)
	}
	if st.maxRSS > st.base.rss+128<<10 || st.end.rss > st.base.rss+64<<10 {
		t.Errorf("RSS %d MiB at the start of the last part, %d MiB at most, %d MiB at its end", st.base.rss>>10, st.maxRSS>>10, st.end.rss>>10)
	}
	if st.finalSent == 0 || float64(st.finalGot) < 0.5*float64(st.finalSent) {
		t.Errorf("traffic in the last part: %d of %d datagrams arrived", st.finalGot, st.finalSent)
	}
	if st.kills == 0 {
		t.Error("xvsd was never killed")
	}
}

// soakStats are the figures a soak prints.
type soakStats struct {
	start                time.Time
	kills, tempsRemoved  int
	acked                map[string]int
	uncertain            int
	sent, got            int64
	finalSent, finalGot  int64
	events, eventStreams int64
	base, end            xvsdSample
	maxRSS               int
	frames               []api.FrameStats
}

func (s *soakStats) String() string {
	var kinds []string
	total := 0
	for k, n := range s.acked {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	slices.Sort(kinds)
	var fr []string
	for _, f := range s.frames {
		fr = append(fr, fmt.Sprintf("q%d %d/%d free", f.Queue, f.Free, f.Total))
	}
	return fmt.Sprintf(`soak: %v, %d kill -9 and restarts (%d temporary state files removed at start)
  changes acknowledged and found after every restart: %d (%s)
  changes in flight at a kill (adopted as the switch had them): %d
  traffic a->b: %d of %d datagrams arrived (kills included); in the last part, without kills: %d of %d
  events followed: %d over %d streams
  xvsd at the start of the last part: %d fds, %d goroutines, %d MiB RSS; at its end: %d fds, %d goroutines, %d MiB RSS; %d MiB RSS at most
  frames, all accounted for: %s
  live table = state file`,
		time.Since(s.start).Round(time.Second), s.kills, s.tempsRemoved,
		total, strings.Join(kinds, ", "), s.uncertain,
		s.got, s.sent, s.finalGot, s.finalSent,
		s.events, s.eventStreams,
		s.base.fds, s.base.goroutines, s.base.rss>>10, s.end.fds, s.end.goroutines, s.end.rss>>10, s.maxRSS>>10,
		strings.Join(fr, ", "))
}

// xvsdSample is what the soak measures of the xvsd process.
type xvsdSample struct{ fds, goroutines, rss int }

func sampleXvsd(t *testing.T, pid int, dir string) xvsdSample {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	// A client of its own, closed at once: its connection is no goroutine
	// of xvsd's after the answer.
	c, err := client.New("unix:"+filepath.Join(dir, "xvsd.sock"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := c.Metrics(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	g := -1
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			g, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return xvsdSample{fds: len(ents), goroutines: g, rss: rssKiB(t, pid)}
}

// soakSwitch is what the switch has, read through the API.
type soakSwitch struct {
	flows  map[uint64]string // ID -> text
	groups map[uint32]string
	ports  map[string]api.PortInfo
}

func readSwitch(c *client.Client) (*soakSwitch, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sw := &soakSwitch{flows: map[uint64]string{}, groups: map[uint32]string{}, ports: map[string]api.PortInfo{}}
	fs, err := c.Flows(ctx, "", false)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		sw.flows[f.ID] = f.Text
	}
	gs, err := c.Groups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		sw.groups[*g.ID] = g.Text
	}
	ps, err := c.Ports(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		sw.ports[p.Name] = p
	}
	return sw, nil
}

// matches compares the switch with a state file.
func (sw *soakSwitch) matches(st *ctl.State) error {
	if len(st.Flows) != len(sw.flows) {
		return fmt.Errorf("%d flows live, %d saved", len(sw.flows), len(st.Flows))
	}
	for _, f := range st.Flows {
		if sw.flows[f.ID] != f.Flow {
			return fmt.Errorf("flow %d: live %q, saved %q", f.ID, sw.flows[f.ID], f.Flow)
		}
	}
	if len(st.Groups) != len(sw.groups) {
		return fmt.Errorf("%d groups live, %d saved", len(sw.groups), len(st.Groups))
	}
	for _, g := range st.Groups {
		found := false
		for _, live := range sw.groups {
			found = found || live == g
		}
		if !found {
			return fmt.Errorf("group %q saved, not live", g)
		}
	}
	if len(st.Ports) != len(sw.ports) {
		return fmt.Errorf("%d ports live, %d saved", len(sw.ports), len(st.Ports))
	}
	for _, p := range st.Ports {
		live, ok := sw.ports[p.Name]
		l := api.Liveness(p.Liveness)
		if l == "" {
			l = api.LivenessAuto
		}
		if !ok || live.OFPort != p.OFPort || live.Liveness != l {
			return fmt.Errorf("port %+v saved, live %+v", p, live)
		}
	}
	return nil
}

// soakClient changes what it owns, at random: flows with its cookie,
// groups in its range of IDs, and its port. What the switch acknowledged
// is its model.
type soakClient struct {
	id     int
	cookie uint64
	port   string
	others []string // ports its groups send to
	rng    *rand.Rand
	dst    int // tp_dst of the next flow: every flow's is new

	flows    map[uint64]string
	groups   map[uint32]string
	portOn   bool
	liveness api.Liveness

	inFlight      *soakOp // the change whose answer never came
	uncertainSeen int
	acked         map[string]int
}

// soakOp is one change; touched names what it may have changed.
type soakOp struct {
	kind  string
	dsts  []int    // flows added: their tp_dst
	flows []uint64 // flows deleted
	group uint32
	port  bool
}

func newSoakClient(id int, port string, others []string) *soakClient {
	return &soakClient{
		id: id, cookie: uint64(0x50 + id), port: port, others: others,
		rng: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano()))), dst: 10000 + 1000*id,
		flows: map[uint64]string{}, groups: map[uint32]string{}, liveness: api.LivenessAuto, acked: map[string]int{},
	}
}

func (cl *soakClient) groupRange() (uint32, uint32) {
	lo := uint32(1000 + 100*cl.id)
	return lo, lo + 16
}

func (cl *soakClient) ownsGroup(id uint32) bool {
	lo, hi := cl.groupRange()
	return id >= lo && id < hi
}

func pick[K comparable, V any](rng *rand.Rand, m map[K]V) (K, bool) {
	var zero K
	if len(m) == 0 {
		return zero, false
	}
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys[rng.IntN(len(keys))], true
}

// flowText makes a new flow of the client's.
func (cl *soakClient) flowText() (string, int) {
	cl.dst++
	act := "drop"
	switch cl.rng.IntN(3) {
	case 0:
		if cl.portOn {
			act = "output:" + cl.port
		}
	case 1:
		if g, ok := pick(cl.rng, cl.groups); ok {
			act = fmt.Sprintf("group:%d", g)
		}
	}
	return fmt.Sprintf("cookie=0x%x,priority=%d,udp,tp_dst=%d,actions=%s", cl.cookie, 100+cl.rng.IntN(100), cl.dst, act), cl.dst
}

// run makes changes until ctx is done, or until an answer does not come
// (xvsd was killed: the change is in flight). An error answer, or no
// answer while xvsd runs, is a failure.
func (cl *soakClient) run(ctx context.Context, c *client.Client, killed *atomic.Bool) error {
	for ctx.Err() == nil {
		op, err := cl.step(c)
		if err == nil {
			continue
		}
		var ae *client.APIError
		if errors.As(err, &ae) || !killed.Load() {
			return fmt.Errorf("client %d: %s: %w", cl.id, op.kind, err)
		}
		cl.inFlight = op
		cl.uncertainSeen++
		return nil
	}
	return nil
}

// step makes one change and records it in the model once acknowledged.
func (cl *soakClient) step(c *client.Client) (*soakOp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lo, hi := cl.groupRange()
	switch n := cl.rng.IntN(100); {
	case n < 30:
		text, dst := cl.flowText()
		op := &soakOp{kind: "add-flow", dsts: []int{dst}}
		f, err := c.AddFlow(ctx, api.Flow{Text: text})
		if err == nil {
			cl.flows[f.ID] = f.Text
		}
		return op, cl.ack(op, err)
	case n < 40:
		op := &soakOp{kind: "add-flows"}
		var batch []api.Flow
		for range 2 + cl.rng.IntN(8) {
			text, dst := cl.flowText()
			batch = append(batch, api.Flow{Text: text})
			op.dsts = append(op.dsts, dst)
		}
		fs, err := c.AddFlows(ctx, batch)
		for _, f := range fs {
			cl.flows[f.ID] = f.Text
		}
		return op, cl.ack(op, err)
	case n < 55:
		id, ok := pick(cl.rng, cl.flows)
		if !ok {
			return &soakOp{kind: "none"}, nil
		}
		op := &soakOp{kind: "del-flow", flows: []uint64{id}}
		_, err := c.DeleteFlow(ctx, id)
		if err == nil {
			delete(cl.flows, id)
		}
		return op, cl.ack(op, err)
	case n < 58:
		op := &soakOp{kind: "del-flows", flows: slices.Collect(mapKeysOf(cl.flows))}
		_, err := c.DeleteFlows(ctx, api.DeleteFlowsRequest{Match: fmt.Sprintf("cookie=0x%x", cl.cookie)})
		if err == nil {
			clear(cl.flows)
		}
		return op, cl.ack(op, err)
	case n < 68:
		id := lo + uint32(cl.rng.IntN(int(hi-lo)))
		if _, ok := cl.groups[id]; ok {
			op := &soakOp{kind: "mod-group", group: id}
			g, err := c.ModGroup(ctx, id, api.Group{Text: fmt.Sprintf("group_id=%d,type=all,bucket=output:%s", id, cl.others[cl.rng.IntN(2)])})
			if err == nil {
				cl.groups[id] = g.Text
			}
			return op, cl.ack(op, err)
		}
		op := &soakOp{kind: "add-group", group: id}
		gs, err := c.AddGroups(ctx, []api.Group{{Text: fmt.Sprintf("group_id=%d,type=select,bucket=output:%s,bucket=output:%s", id, cl.others[0], cl.others[1])}})
		if err == nil {
			cl.groups[id] = gs[0].Text
		}
		return op, cl.ack(op, err)
	case n < 75:
		id, ok := pick(cl.rng, cl.groups)
		if !ok {
			return &soakOp{kind: "none"}, nil
		}
		op := &soakOp{kind: "del-group", group: id}
		res, err := c.DeleteGroup(ctx, id)
		if err == nil {
			delete(cl.groups, id)
			for _, f := range res.RemovedFlows {
				if _, ok := cl.flows[f.ID]; !ok {
					return op, fmt.Errorf("deleting group %d removed flow %d %q, not the client's", id, f.ID, f.Text)
				}
				delete(cl.flows, f.ID)
			}
			for fid, text := range cl.flows {
				if strings.Contains(text, fmt.Sprintf("group:%d", id)) {
					return op, fmt.Errorf("deleting group %d left flow %d %q", id, fid, text)
				}
			}
		}
		return op, cl.ack(op, err)
	case n < 88:
		op := &soakOp{kind: "port", port: true}
		var err error
		if cl.portOn {
			op.kind = "del-port"
			if err = c.DeletePort(ctx, cl.port); err == nil {
				cl.portOn = false
			}
		} else {
			op.kind = "add-port"
			if _, err = c.AddPort(ctx, api.PortRequest{Name: cl.port}); err == nil {
				cl.portOn, cl.liveness = true, api.LivenessAuto
			}
		}
		return op, cl.ack(op, err)
	default:
		if !cl.portOn {
			return &soakOp{kind: "none"}, nil
		}
		op := &soakOp{kind: "liveness", port: true}
		l := []api.Liveness{api.LivenessAuto, api.LivenessLive, api.LivenessDead}[cl.rng.IntN(3)]
		_, err := c.SetLiveness(ctx, cl.port, l)
		if err == nil {
			cl.liveness = l
		}
		return op, cl.ack(op, err)
	}
}

func (cl *soakClient) ack(op *soakOp, err error) error {
	if err == nil {
		cl.acked[op.kind]++
	}
	return err
}

func mapKeysOf[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// verify checks the switch against the model after a restart: what was in
// flight is taken as the switch has it; everything else must be exactly
// as acknowledged.
func (cl *soakClient) verify(sw *soakSwitch) error {
	mine := map[uint64]string{}
	for id, text := range sw.flows {
		if strings.HasPrefix(text, fmt.Sprintf("cookie=0x%x,", cl.cookie)) {
			mine[id] = text
		}
	}
	myGroups := map[uint32]string{}
	for id, text := range sw.groups {
		if cl.ownsGroup(id) {
			myGroups[id] = text
		}
	}
	p, portOn := sw.ports[cl.port]
	if op := cl.inFlight; op != nil {
		cl.inFlight = nil
		for id, text := range mine { // flows it added
			if _, ok := cl.flows[id]; !ok && slices.ContainsFunc(op.dsts, func(d int) bool { return strings.Contains(text, fmt.Sprintf("tp_dst=%d,", d)) }) {
				cl.flows[id] = text
			}
		}
		for _, id := range op.flows { // flows it deleted
			if _, ok := mine[id]; !ok {
				delete(cl.flows, id)
			}
		}
		if op.group != 0 {
			if text, ok := myGroups[op.group]; ok {
				cl.groups[op.group] = text
			} else {
				delete(cl.groups, op.group)
				for id, text := range cl.flows { // a group deleted takes its flows
					if _, ok := mine[id]; !ok && strings.Contains(text, fmt.Sprintf("group:%d", op.group)) {
						delete(cl.flows, id)
					}
				}
			}
		}
		if op.port {
			cl.portOn = portOn
			if portOn {
				cl.liveness = p.Liveness
			}
		}
	}
	if len(mine) != len(cl.flows) {
		return fmt.Errorf("%d flows of mine after the restart, %d acknowledged: %v vs %v", len(mine), len(cl.flows), mine, cl.flows)
	}
	for id, text := range cl.flows {
		if mine[id] != text {
			return fmt.Errorf("flow %d: %q acknowledged, %q after the restart", id, text, mine[id])
		}
	}
	if len(myGroups) != len(cl.groups) {
		return fmt.Errorf("groups %v after the restart, %v acknowledged", myGroups, cl.groups)
	}
	for id, text := range cl.groups {
		if myGroups[id] != text {
			return fmt.Errorf("group %d: %q acknowledged, %q after the restart", id, text, myGroups[id])
		}
	}
	if portOn != cl.portOn || (portOn && p.Liveness != cl.liveness) {
		return fmt.Errorf("port %s: configured %v liveness %s acknowledged; after the restart %v %+v", cl.port, cl.portOn, cl.liveness, portOn, p)
	}
	return nil
}

// clean removes what the client owns.
func (cl *soakClient) clean(c *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.DeleteFlows(ctx, api.DeleteFlowsRequest{Match: fmt.Sprintf("cookie=0x%x", cl.cookie)}); err != nil {
		return err
	}
	clear(cl.flows)
	for id := range cl.groups {
		if _, err := c.DeleteGroup(ctx, id); err != nil {
			return err
		}
		delete(cl.groups, id)
	}
	if cl.portOn {
		if err := c.DeletePort(ctx, cl.port); err != nil {
			return err
		}
		cl.portOn = false
	}
	return nil
}

// soakTraffic sends numbered datagrams from a to b's address, a thousand a
// second, and counts what arrives.
type soakTraffic struct {
	sent, got atomic.Int64
	done      chan struct{}
	once      sync.Once
	conns     []*net.UDPConn
}

func startSoakTraffic(t *testing.T, from, to *testenv.Veth, port int) *soakTraffic {
	t.Helper()
	tr := &soakTraffic{done: make(chan struct{})}
	var rx, tx *net.UDPConn
	if err := to.NS.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: to.PeerAddr, Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := from.NS.Do(func() (err error) {
		tx, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: to.PeerAddr, Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tr.conns = []*net.UDPConn{rx, tx}
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
			tr.got.Add(1)
		}
	}()
	go func() {
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		msg := make([]byte, 32)
		for {
			select {
			case <-tr.done:
				return
			case <-tk.C:
				tx.Write(msg)
				tr.sent.Add(1)
			}
		}
	}()
	return tr
}

func (tr *soakTraffic) counts() (sent, got int64) { return tr.sent.Load(), tr.got.Load() }

func (tr *soakTraffic) stop() {
	tr.once.Do(func() {
		close(tr.done)
		time.Sleep(200 * time.Millisecond) // the last ones arrive
		for _, c := range tr.conns {
			c.Close()
		}
	})
}

// soakEvents follows /v1/events of each xvsd it is given.
type soakEvents struct {
	events, streams atomic.Int64
	mu              sync.Mutex
	cancel          context.CancelFunc
}

func startSoakEvents() *soakEvents { return &soakEvents{} }

func (e *soakEvents) follow(c *client.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		e.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.streams.Add(1)
	go c.Events(ctx, -1, func(api.Event) error {
		e.events.Add(1)
		return nil
	})
}

func (e *soakEvents) counts() (int64, int64) { return e.events.Load(), e.streams.Load() }

func (e *soakEvents) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		e.cancel()
	}
}
