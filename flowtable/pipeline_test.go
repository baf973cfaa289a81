package flowtable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// pipe installs groups and flows given as text, with dpPorts.
func pipe(tb testing.TB, groups []string, flows ...string) *Table {
	tb.Helper()
	var c Change
	for _, s := range groups {
		g, err := ParseGroup(s)
		if err != nil {
			tb.Fatalf("group %q: %v", s, err)
		}
		c.AddGroups = append(c.AddGroups, g)
	}
	for _, s := range flows {
		f, err := ParseFlow(s)
		if err != nil {
			tb.Fatalf("flow %q: %v", s, err)
		}
		c.Add = append(c.Add, f)
	}
	t, err := NewTable().Apply(c, dpPorts)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// sent runs frame from inPort through t's pipeline (as a poller does, from
// the key's cached result) and returns "port:frame-summary" per output.
func sent(tb testing.TB, t *Table, frame []byte, inPort uint32) ([]refOut, Result) {
	tb.Helper()
	var k Key
	var lay Layout
	if ExtractLayout(frame, inPort, &k, &lay) != ParseOK {
		tb.Fatal("malformed")
	}
	r := t.Resolve(t.Lookup(&k), &k)
	if !r.Found() {
		return nil, r
	}
	if r.PerPacket() {
		r = t.TranslateFrame(r.Entry(), &k, frame, &lay)
	}
	return flatRun(r, frame, &lay, inPort), r
}

func udpFrame(tb testing.TB, dst string, sport, dport uint16) []byte {
	return dpFrame(tb, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", dst, layers.IPProtocolUDP), dpUDP(sport, dport), dpPayload)
}

func ports(outs []refOut) []uint32 {
	var p []uint32
	for _, o := range outs {
		p = append(p, o.port)
	}
	return p
}

func dstOf(o refOut) string {
	f := []byte(o.frame)
	return fmt.Sprintf("%d.%d.%d.%d:%d", f[30], f[31], f[32], f[33], binary.BigEndian.Uint16(f[36:]))
}

func TestGotoTableSeesRewrites(t *testing.T) {
	tb := pipe(t, nil,
		"udp,actions=mod_nw_dst:10.9.9.9,goto_table:1",
		"table=1,udp,nw_dst=10.9.9.9,actions=mod_tp_dst:99,goto_table:2",
		"table=1,priority=1,actions=output:p4", // loses to the flow above
		"table=2,udp,tp_dst=99,actions=output:p2",
	)
	outs, r := sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1)
	if !slices.Equal(ports(outs), []uint32{2}) || dstOf(outs[0]) != "10.9.9.9:99" {
		t.Fatalf("outputs %v", outs)
	}
	r.Credit(1, 100, 1)
	st := tb.TableStats()
	if st[1].Lookups != 1 || st[1].Matched != 1 || st[2].Lookups != 1 || st[2].Matched != 1 {
		t.Fatalf("table stats %+v", st)
	}
	for _, e := range tb.Entries() {
		want := uint64(1)
		if e.Flow.Priority == 1 {
			want = 0
		}
		if e.Packets() != want {
			t.Errorf("flow %s: %d packets, want %d", e.Flow, e.Packets(), want)
		}
	}
}

func TestGotoTableMissDrops(t *testing.T) {
	tb := pipe(t, nil, "udp,actions=output:p2,goto_table:5", "table=5,tcp,actions=output:p3")
	outs, r := sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1)
	if !slices.Equal(ports(outs), []uint32{2}) {
		t.Fatalf("outputs %v: the output before the miss stands", outs)
	}
	tb = pipe(t, nil, "udp,actions=mod_tp_dst:1,goto_table:5")
	outs, r = sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1)
	if len(outs) != 0 {
		t.Fatalf("outputs %v", outs)
	}
	tr := &Trace{}
	var lay Layout
	var k Key
	f := udpFrame(t, "10.0.0.2", 1, 53)
	ExtractLayout(f, 1, &k, &lay)
	tr.run(r.Program(), f, &lay, 1)
	if tr.Drop != DropTableMiss {
		t.Fatalf("drop %v, want table_miss", tr.Drop)
	}
	r.Credit(3, 300, 1)
	if st := tb.TableStats(); len(st) != 2 || st[1].Table != 5 || st[1].Lookups != 3 || st[1].Matched != 0 {
		t.Fatalf("table stats %+v", st)
	}
}

func TestResubmitComesBack(t *testing.T) {
	tb := pipe(t, nil,
		"udp,actions=resubmit(,1),mod_tp_dst:7,output:p3",
		"table=1,udp,actions=output:p2",
		"table=2,in_port=p4,actions=output:p1",
		"priority=1,tcp,actions=resubmit(p4,2),output:p2",
	)
	outs, _ := sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1)
	if !slices.Equal(ports(outs), []uint32{2, 3}) || dstOf(outs[0]) != "10.0.0.2:53" || dstOf(outs[1]) != "10.0.0.2:7" {
		t.Fatalf("outputs %v", outs)
	}
	// resubmit(p4,2) looks up with in_port p4; the packet's in_port stays 3.
	outs, _ = sent(t, tb, dpTCP4Frame(t), 3)
	if !slices.Equal(ports(outs), []uint32{1, 2}) {
		t.Fatalf("outputs %v", outs)
	}
}

func TestResubmitLoopIsBounded(t *testing.T) {
	tb := pipe(t, nil, "udp,actions=output:p2,resubmit(,0)")
	outs, r := sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1)
	if len(outs) != 0 || r.x == nil || r.x.drop != DropTooDeep {
		t.Fatalf("outputs %v, drop %v", outs, r.x.drop)
	}
	// Wide but not deep: 2 resubmits per level, 10 levels deep = 2046.
	var flows []string
	for i := range 10 {
		flows = append(flows, fmt.Sprintf("table=%d,actions=resubmit(,%d),resubmit(,%d)", i, i+1, i+1))
	}
	flows = append(flows, "table=10,actions=output:p2")
	tb = pipe(t, nil, flows...)
	outs, _ = sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1)
	if len(outs) != 1024 {
		t.Fatalf("%d outputs, want 1024", len(outs))
	}
	flows[0] = "table=0,actions=resubmit(,1),resubmit(,1),resubmit(,1),resubmit(,1),resubmit(,1)"
	tb = pipe(t, nil, flows...)
	if outs, r := sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1); len(outs) != 0 || r.x.drop != DropTooDeep {
		t.Fatalf("%d outputs past %d resubmits", len(outs), MaxResubmits)
	}
}

func TestGroupAllBucketsAreCopies(t *testing.T) {
	tb := pipe(t, []string{
		"group_id=7,type=all,bucket=mod_nw_dst:10.1.1.1,output:p2,bucket=mod_tp_dst:11,output:p3",
	}, "udp,actions=group:7,output:p4")
	outs, r := sent(t, tb, udpFrame(t, "10.0.0.2", 1, 53), 1)
	got := []string{}
	for _, o := range outs {
		got = append(got, fmt.Sprintf("%d %s", o.port, dstOf(o)))
	}
	want := []string{"2 10.1.1.1:53", "3 10.0.0.2:11", "4 10.0.0.2:53"}
	if !slices.Equal(got, want) {
		t.Fatalf("outputs %v, want %v", got, want)
	}
	r.Credit(1, 64, 1)
	gs := tb.Group(7).Stats(time.Now())
	if gs.Packets != 1 || gs.Buckets[0].Packets != 1 || gs.Buckets[1].Packets != 1 {
		t.Fatalf("group stats %+v", gs)
	}
}

// selectCounts sends n UDP flows (distinct source ports) through tb and
// counts them per output port; it returns each source port's output too.
func selectCounts(t *testing.T, tb *Table, n int) (map[uint32]int, map[uint16]uint32) {
	t.Helper()
	counts := map[uint32]int{}
	by := map[uint16]uint32{}
	for sp := range uint16(n) {
		outs, _ := sent(t, tb, udpFrame(t, "10.0.0.2", 1000+sp, 53), 1)
		if len(outs) != 1 {
			t.Fatalf("flow %d: outputs %v", sp, outs)
		}
		counts[outs[0].port]++
		by[sp] = outs[0].port
	}
	return counts, by
}

func TestSelectGroupWeightsAndFailover(t *testing.T) {
	tb := pipe(t, []string{
		"group_id=1,type=select,bucket=weight:3,watch_port:p2,actions=output:p2,bucket=weight:1,watch_port:p3,actions=output:p3",
	}, "udp,actions=group:1")
	const n = 1000
	counts, before := selectCounts(t, tb, n)
	// 3:1 is 750:250; OVS's own default scoring would give about 833:167.
	if c := counts[2]; c < 675 || c > 825 {
		t.Fatalf("weights 3:1 over %d flows: %v", n, counts)
	}
	// The same flows again: each sticks to its bucket.
	if _, again := selectCounts(t, tb, n); !mapsEqual(again, before) {
		t.Fatal("flows moved between two passes")
	}
	// p3 dies: only its flows move, all to p2.
	var dead PortSet
	dead.Add(3)
	down := tb.WithDeadPorts(dead)
	if down.Gen() == tb.Gen() {
		t.Fatal("a liveness change must be a new snapshot")
	}
	counts, during := selectCounts(t, down, n)
	if counts[2] != n {
		t.Fatalf("p3 dead: %v", counts)
	}
	for sp, p := range before {
		if p == 2 && during[sp] != 2 {
			t.Fatalf("flow %d moved off a live bucket", sp)
		}
	}
	// p3 comes back: its flows return.
	if _, after := selectCounts(t, down.WithDeadPorts(PortSet{}), n); !mapsEqual(after, before) {
		t.Fatal("flows did not come back to the revived bucket")
	}
}

func mapsEqual(a, b map[uint16]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFastFailoverGroup(t *testing.T) {
	tb := pipe(t, []string{
		"group_id=2,type=fast_failover,bucket=watch_port:p2,actions=output:p2,bucket=watch_port:p3,actions=mod_dl_src:02:00:00:00:00:03,output:p3",
	}, "udp,actions=group:2")
	f := udpFrame(t, "10.0.0.2", 1, 53)
	for _, tt := range []struct {
		dead []uint32
		want []uint32
	}{
		{nil, []uint32{2}},
		{[]uint32{2}, []uint32{3}},
		{[]uint32{3}, []uint32{2}},
		{[]uint32{2, 3}, nil},
	} {
		var d PortSet
		for _, p := range tt.dead {
			d.Add(p)
		}
		outs, _ := sent(t, tb.WithDeadPorts(d), f, 1)
		if !slices.Equal(ports(outs), tt.want) {
			t.Errorf("dead %v: outputs %v, want %v", tt.dead, ports(outs), tt.want)
		}
	}
}

func TestGroupChanges(t *testing.T) {
	g := func(s string) *Group {
		gr, err := ParseGroup(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return gr
	}
	fl := func(s string) *Flow {
		f, err := ParseFlow(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return f
	}
	base := pipe(t, []string{
		"group_id=1,type=indirect,bucket=output:p1",
		"group_id=2,type=all,bucket=group:1",
	}, "udp,actions=group:2", "tcp,actions=group:1,output:p3", "arp,actions=output:p2")
	tests := []struct {
		name string
		c    Change
		want error
	}{
		{"add existing", Change{AddGroups: []*Group{g("group_id=1,type=indirect,bucket=output:p2")}}, ErrGroupExists},
		{"modify missing", Change{ModGroups: []*Group{g("group_id=9,type=indirect,bucket=output:p2")}}, ErrNoSuchGroup},
		{"delete missing", Change{DeleteGroups: []uint32{9}}, ErrNoSuchGroup},
		{"flow to missing group", Change{Add: []*Flow{fl("ip,actions=group:9")}}, ErrNoSuchGroup},
		{"bucket to missing group", Change{AddGroups: []*Group{g("group_id=3,type=indirect,bucket=group:9")}}, ErrNoSuchGroup},
		{"delete a chained group", Change{DeleteGroups: []uint32{1}}, ErrGroupInUse},
		{"loop", Change{ModGroups: []*Group{g("group_id=1,type=indirect,bucket=group:2")}}, ErrInvalid},
		{"self loop", Change{AddGroups: []*Group{g("group_id=5,type=indirect,bucket=group:5")}}, ErrInvalid},
		{"unknown watch port", Change{AddGroups: []*Group{g("group_id=6,type=fast_failover,bucket=watch_port:p9,actions=output:p1")}}, ErrNoSuchPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nt, err := base.Apply(tt.c, dpPorts)
			if !errors.Is(err, tt.want) || nt != nil {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	// Deleting both groups removes the flows that send to them, as
	// OpenFlow does, and says which.
	nt, err := base.Apply(Change{DeleteGroups: []uint32{2, 1}}, dpPorts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nt.Removed(), []uint64{1, 2}) || nt.Len() != 1 || len(nt.Groups()) != 0 {
		t.Fatalf("removed %v, %d flows, %d groups left", nt.Removed(), nt.Len(), len(nt.Groups()))
	}
	if !slices.Equal(base.GroupUsers(1), []uint64{2}) {
		t.Fatalf("users of group 1: %v", base.GroupUsers(1))
	}
	// A policy swap in one change: new groups and the flows using them.
	nt, err = base.Apply(Change{ReplaceGroups: true, Replace: true,
		AddGroups: []*Group{g("group_id=10,type=select,bucket=output:p4")},
		Add:       []*Flow{fl("ip,actions=group:10")}}, dpPorts)
	if err != nil || nt.Len() != 1 || nt.Group(10) == nil || nt.Group(1) != nil {
		t.Fatalf("swap: %v", err)
	}
	// Modifying a group keeps its flows and starts fresh counters.
	nt, err = base.Apply(Change{ModGroups: []*Group{g("group_id=1,type=indirect,bucket=output:p4")}}, dpPorts)
	if err != nil || nt.Len() != 3 {
		t.Fatalf("modify: %v", err)
	}
	if outs, _ := sent(t, nt, dpTCP4Frame(t), 2); !slices.Equal(ports(outs), []uint32{4, 3}) {
		t.Fatalf("after modify: %v", outs)
	}
}

func TestParseGroup(t *testing.T) {
	tests := []struct {
		text  string
		want  string // canonical, "" = text itself
		field string // error
		err   string
	}{
		{text: "group_id=1,type=select,bucket=weight:3,actions=output:wan1,bucket=weight:1,actions=output:wan2",
			want: "group_id=1,type=select,bucket=weight:3,actions=output:wan1,bucket=weight:1,actions=output:wan2"},
		{text: "group_id=2,type=select,bucket=output:a,bucket=output:b",
			want: "group_id=2,type=select,bucket=weight:1,actions=output:a,bucket=weight:1,actions=output:b"},
		{text: "group_id=3,type=ff,bucket=watch_port:a,actions=output:a,bucket=watch_port:b,actions=mod_dl_dst:00:00:00:00:00:01,output:b",
			want: "group_id=3,type=fast_failover,bucket=watch_port:a,actions=output:a,bucket=watch_port:b,actions=mod_dl_dst:00:00:00:00:00:01,output:b"},
		{text: "group_id=4 type=all bucket=bucket_id:0,actions=strip_vlan,push_vlan:0x8100,dec_ttl,mod_vlan_vid:5,output:x bucket=actions=resubmit(,1)",
			want: "group_id=4,type=all,bucket=actions=strip_vlan,push_vlan:0x8100,dec_ttl,mod_vlan_vid:5,output:x,bucket=actions=resubmit(,1)"},
		{text: "group_id=5,type=indirect,bucket=actions=group:4", want: "group_id=5,type=indirect,bucket=actions=group:4"},
		{text: "type=all,bucket=output:a", field: "group_id", err: "missing group_id"},
		{text: "group_id=1,bucket=output:a", field: "type", err: "missing type"},
		{text: "group_id=1,type=random,bucket=output:a", field: "type", err: `bad value "random" for type: want all, select, indirect or fast_failover at column 12`},
		{text: "group_id=1,type=all", field: "bucket", err: "group 1 has no buckets"},
		{text: "group_id=1,type=indirect,bucket=output:a,bucket=output:b", field: "bucket", err: "an indirect group has exactly one bucket, not 2"},
		{text: "group_id=1,type=ff,bucket=output:a", field: "watch_port", err: "bucket 0: a fast_failover bucket needs a watch_port at column 27"},
		{text: "group_id=1,type=all,bucket=weight:2,output:a", field: "weight", err: "bucket 0: weight is for select groups, not all at column 28"},
		{text: "group_id=1,type=all,bucket=output:a,output:b", field: "output", err: "bucket 0: output:b out of order"},
		{text: "group_id=1,type=all,bucket=output:a,mod_tp_dst:1", field: "mod_tp_dst", err: "out of order"},
		{text: "group_id=1,type=all,bucket=mod_tp_dst:1", field: "actions", err: "a bucket needs an output, in_port, group or resubmit last"},
		{text: "group_id=1,type=all,bucket=kernel", field: "kernel", err: "kernel is not allowed in a bucket"},
		{text: "group_id=1,type=all,bucket=goto_table:1", field: "goto_table", err: "goto_table is not allowed in a bucket"},
		{text: "group_id=1,type=all,selection_method=hash,bucket=output:a", field: "selection_method", err: "not supported"},
		{text: "group_id=1,type=all,bucket=watch_group:2,output:a", field: "watch_group", err: "watch_group is not supported"},
		{text: "group_id=4294967040,type=all,bucket=output:a", field: "group_id", err: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			g, err := ParseGroup(tt.text)
			if tt.err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Field != tt.field || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v (field %q), want field %q, %q", err, fieldOf(err), tt.field, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := g.String(); s != tt.want {
				t.Fatalf("got  %s\nwant %s", s, tt.want)
			}
			back, err := ParseGroup(g.String())
			if err != nil || back.String() != g.String() {
				t.Fatalf("round trip: %v, %v", back, err)
			}
			back, err = ParseGroupFields(GroupFieldsOf(g))
			if err != nil || back.String() != g.String() {
				t.Fatalf("structured round trip: %v, %v", back, err)
			}
		})
	}
}

func fieldOf(err error) string {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Field
	}
	return ""
}

func TestPerPacketOnlyForDoubleTags(t *testing.T) {
	tb := pipe(t, nil, "actions=strip_vlan,goto_table:1", "table=1,dl_vlan=5,actions=output:p2", "table=1,dl_vlan=0xffff,actions=output:p3")
	ip := dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	one := dpFrame(t, []dpTag{{tpid: 0x8100, vid: 7}}, layers.EthernetTypeIPv4, ip, dpUDP(1, 2))
	two := dpFrame(t, []dpTag{{tpid: 0x88a8, vid: 7}, {tpid: 0x8100, vid: 5}}, layers.EthernetTypeIPv4, ip, dpUDP(1, 2))
	for _, tt := range []struct {
		name      string
		frame     []byte
		perPacket bool
		want      uint32
	}{
		{"one tag", one, false, 3},
		{"two tags: the inner tag shows after the pop", two, true, 2},
	} {
		var k Key
		var lay Layout
		ExtractLayout(tt.frame, 1, &k, &lay)
		r := tb.Resolve(tb.Lookup(&k), &k)
		if r.PerPacket() != tt.perPacket {
			t.Errorf("%s: per packet %v", tt.name, r.PerPacket())
		}
		if outs, _ := sent(t, tb, tt.frame, 1); !slices.Equal(ports(outs), []uint32{tt.want}) {
			t.Errorf("%s: outputs %v, want %d", tt.name, ports(outs), tt.want)
		}
	}
}

func TestCachedPipelineDoesNotAllocate(t *testing.T) {
	tb := pipe(t, []string{"group_id=1,type=select,bucket=output:p2,bucket=output:p3"},
		"udp,actions=mod_nw_tos:8,goto_table:1", "table=1,udp,actions=dec_ttl,goto_table:2", "table=2,actions=group:1")
	var keys [MaxBatch]Key
	var lays [MaxBatch]Layout
	for i := range keys {
		ExtractLayout(udpFrame(t, "10.0.0.2", uint16(i), 53), 1, &keys[i], &lays[i])
	}
	c := NewCache(0)
	var out [MaxBatch]Result
	c.LookupBatch(tb, keys[:], ^uint64(0), out[:]) // translate once
	first := out
	if n := testing.AllocsPerRun(100, func() { c.LookupBatch(tb, keys[:], ^uint64(0), out[:]) }); n != 0 {
		t.Fatalf("cached lookups allocate %v times", n)
	}
	if out != first || c.Misses != MaxBatch {
		t.Fatalf("results not cached: %d misses", c.Misses)
	}
	if n := testing.AllocsPerRun(100, func() { out[0].Credit(1, 64, 1) }); n != 0 {
		t.Fatalf("Credit allocates %v times", n)
	}
}

func TestTrace(t *testing.T) {
	tb := pipe(t, []string{"group_id=1,type=all,bucket=mod_tp_dst:7,output:p2,bucket=output:p3"},
		"udp,in_port=p1,actions=mod_nw_dst:10.9.9.9,goto_table:1",
		"table=1,udp,nw_dst=10.9.9.9,actions=group:1",
		"priority=1,tcp,actions=drop",
		"priority=2,tcp,tp_dst=22,actions=kernel")
	f := udpFrame(t, "10.0.0.2", 1, 53)
	tr := tb.Trace(f, 1)
	var kinds []string
	for _, s := range tr.Steps {
		kinds = append(kinds, fmt.Sprintf("%d:%v:%s", s.Depth, s.Kind, s.Action))
	}
	want := []string{"0:1:", "1:2:mod_nw_dst:10.9.9.9", "1:2:goto_table:1", "0:1:", "1:2:group:1",
		"1:4:", "2:2:mod_tp_dst:7", "2:2:output:p2", "1:4:", "2:2:output:p3"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("steps\n got %v\nwant %v", kinds, want)
	}
	// A resubmit nests the table it looks up, as in ofproto/trace; a
	// goto_table goes on at the same level.
	rs := pipe(t, nil, "udp,actions=resubmit(,3),goto_table:4", "table=3,ip,actions=mod_nw_tos:8", "table=4,actions=output:p2")
	kinds = nil
	for _, s := range rs.Trace(f, 1).Steps {
		kinds = append(kinds, fmt.Sprintf("%d:%v:%s", s.Depth, s.Kind, s.Action))
	}
	if want := []string{"0:1:", "1:2:resubmit(,3)", "1:1:", "2:2:mod_nw_tos:8", "1:2:goto_table:4", "0:1:", "1:2:output:p2"}; !slices.Equal(kinds, want) {
		t.Fatalf("resubmit steps\n got %v\nwant %v", kinds, want)
	}
	if p := tr.Steps[1].Packet; len(p) != len(f) || p[33] != 9 {
		t.Fatalf("packet after mod_nw_dst: %x", p)
	}
	if len(tr.Outputs) != 2 || tr.Outputs[0].Port != 2 || tr.Outputs[1].Port != 3 || tr.Drop != DropNone {
		t.Fatalf("outputs %+v drop %v", tr.Outputs, tr.Drop)
	}
	for _, e := range tb.Entries() {
		if e.Packets() != 0 {
			t.Fatalf("trace counted on flow %s", e.Flow)
		}
	}
	if tr := tb.Trace(dpTCP4Frame(t), 1); !tr.NoFlow && tr.Drop != DropActions {
		t.Fatalf("tcp: no flow %v drop %v", tr.NoFlow, tr.Drop)
	}
	ssh := dpFrame(t, nil, layers.EthernetTypeIPv4, dpIPv4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), dpTCP(5000, 22))
	if tr := tb.Trace(ssh, 1); !tr.Kernel {
		t.Fatalf("ssh: not to the kernel: %+v", tr)
	}
	if tr := tb.Trace(f[:20], 1); tr.Status != ParseMalformed {
		t.Fatal("truncated frame not malformed")
	}
	if tr := tb.Trace(f, 4); !tr.NoFlow {
		t.Fatal("in_port=p1 flow matched a frame from p4")
	}
}
