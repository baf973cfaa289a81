package flowtable

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// GroupType is an OpenFlow group type.
type GroupType uint8

const (
	GroupAll          GroupType = iota + 1 // every bucket, each on its own copy of the packet
	GroupSelect                            // one bucket, picked by a hash of the packet's 5-tuple and the weights
	GroupIndirect                          // its one bucket
	GroupFastFailover                      // the first live bucket
)

var groupTypeNames = [...]string{GroupAll: "all", GroupSelect: "select", GroupIndirect: "indirect", GroupFastFailover: "fast_failover"}

func (t GroupType) String() string {
	if int(t) < len(groupTypeNames) && groupTypeNames[t] != "" {
		return groupTypeNames[t]
	}
	return fmt.Sprintf("group_type(%d)", uint8(t))
}

// ParseGroupType parses all, select, indirect, fast_failover (or ff).
func ParseGroupType(s string) (GroupType, bool) {
	if s == "ff" {
		return GroupFastFailover, true
	}
	for t, n := range groupTypeNames {
		if n != "" && n == s {
			return GroupType(t), true
		}
	}
	return 0, false
}

// Bucket is one bucket of a group.
type Bucket struct {
	// Weight is a select bucket's share of the flows (relative to the
	// other buckets' weights); 0 never picks it. Other types have none.
	Weight uint16
	// WatchPort makes the bucket live only while that port is live; ""
	// is always live. Every fast_failover bucket has one.
	WatchPort string
	// Actions are an OpenFlow action set: at most one each of strip_vlan,
	// push_vlan and dec_ttl, in that order, then the field rewrites, then
	// exactly one output, in_port, group or resubmit. (Open vSwitch runs a
	// bucket's actions in that order, whatever order they were written
	// in, and only the last output; xvs refuses a bucket whose actions are
	// written otherwise, so what is written is what runs.)
	Actions []Action
}

// Group is an OpenFlow group: flows send packets to it with group:ID.
type Group struct {
	ID      uint32
	Type    GroupType
	Buckets []Bucket
}

// Limits on groups.
const (
	MaxBuckets = 64 // buckets of one group
)

// bucketProblem says what is wrong with a bucket of a group of type t.
func bucketProblem(t GroupType, b *Bucket) (field, msg string) {
	if b.Weight != 0 && t != GroupSelect {
		return "weight", fmt.Sprintf("weight is for select groups, not %s", t)
	}
	if b.WatchPort != "" {
		if msg := portRefProblem(b.WatchPort); msg != "" {
			return "watch_port", fmt.Sprintf("watch_port %q: %s", b.WatchPort, msg)
		}
		if c := canonicalPortRef(b.WatchPort); c != b.WatchPort {
			return "watch_port", fmt.Sprintf("watch_port %q is not in canonical form %q", b.WatchPort, c)
		}
	} else if t == GroupFastFailover {
		return "watch_port", "a fast_failover bucket needs a watch_port"
	}
	if len(b.Actions) == 0 {
		return "actions", "a bucket needs actions"
	}
	prev, tags := slotNone, 0
	for i := range b.Actions {
		a := &b.Actions[i]
		name := actionName(a.Type)
		if msg := actionProblem(a); msg != "" {
			return name, fmt.Sprintf("action %d (%s): %s", i+1, FormatAction(*a), msg)
		}
		if msg := followTags(&tags, a); msg != "" {
			return name, msg
		}
		c := actionKinds[a.Type].slot
		switch {
		case c == slotNone:
			return name, fmt.Sprintf("%s is not allowed in a bucket (an action set)", name)
		case c < prev || c == prev && c != slotRewrite:
			return name, fmt.Sprintf("%s out of order: a bucket is an action set, run as strip_vlan, push_vlan, dec_ttl, rewrites, then one output, group or resubmit (Open vSwitch would reorder it, or use only the last output); write it in that order", FormatAction(*a))
		}
		prev = c
	}
	if prev != slotFinal {
		return "actions", "a bucket needs an output, in_port, group or resubmit last: an action set without one does nothing"
	}
	return "", ""
}

// Check reports whether g is a group ParseGroup could have produced: an ID
// up to MaxGroupID, a type, 1 to MaxBuckets buckets (exactly one for
// indirect) that pass the bucket rules (see Bucket). The error is a
// *ParseError naming the field.
func (g *Group) Check() error {
	fail := func(field, format string, args ...any) error {
		return &ParseError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if g.ID > MaxGroupID {
		return fail("group_id", "group_id %d out of range 0..%d", g.ID, uint32(MaxGroupID))
	}
	if int(g.Type) >= len(groupTypeNames) || groupTypeNames[g.Type] == "" {
		return fail("type", "unknown group type %d", g.Type)
	}
	switch n := len(g.Buckets); {
	case n == 0:
		return fail("bucket", "group %d has no buckets", g.ID)
	case n > MaxBuckets:
		return fail("bucket", "group %d has %d buckets, at most %d", g.ID, n, MaxBuckets)
	case g.Type == GroupIndirect && n != 1:
		return fail("bucket", "an indirect group has exactly one bucket, not %d", n)
	}
	for i := range g.Buckets {
		if field, msg := bucketProblem(g.Type, &g.Buckets[i]); msg != "" {
			return fail(field, "bucket %d: %s", i, msg)
		}
	}
	return nil
}

// ParseGroup parses a group in ovs-ofctl add-group syntax:
//
//	group_id=1,type=select,bucket=weight:3,actions=output:wan1,bucket=weight:1,actions=output:wan2
//
// group_id= and type= come first; each bucket= starts a bucket, which runs
// to the next. In a bucket, weight: (or weight=), watch_port: and actions=
// are read, bucket_id: is accepted and ignored (buckets are numbered by
// position), and anything else is an action, as in ovs-ofctl. A select
// bucket without a weight has weight 1. Errors are *ParseError values
// naming the field, with the column in text.
func ParseGroup(text string) (*Group, error) {
	p := &textParser{text: text}
	toks := splitActions(text, 0)
	g := &Group{}
	var hasID, hasType bool
	var buckets [][]actionToken
	for _, tok := range toks {
		key, value, _ := strings.Cut(tok.text, "=")
		if key == "bucket" {
			buckets = append(buckets, nil)
			if value != "" {
				buckets[len(buckets)-1] = append(buckets[len(buckets)-1], actionToken{value, tok.off + len("bucket=")})
			}
			continue
		}
		if len(buckets) > 0 {
			buckets[len(buckets)-1] = append(buckets[len(buckets)-1], tok)
			continue
		}
		switch key {
		case "group_id":
			n, msg := parseNum(value, MaxGroupID)
			if msg != "" {
				return nil, p.errAt(tok.off, key, "bad value %q for group_id: %s", value, msg)
			}
			if hasID {
				return nil, p.errAt(tok.off, key, "group_id given twice")
			}
			g.ID, hasID = uint32(n), true
		case "type":
			t, ok := ParseGroupType(value)
			if !ok {
				return nil, p.errAt(tok.off, key, "bad value %q for type: want all, select, indirect or fast_failover", value)
			}
			if hasType {
				return nil, p.errAt(tok.off, key, "type given twice")
			}
			g.Type, hasType = t, true
		case "selection_method", "selection_method_param", "fields", "command_bucket_id":
			return nil, p.errAt(tok.off, key, "%s is not supported: select groups hash the 5-tuple", key)
		default:
			return nil, p.errAt(tok.off, key, "unknown group field %q", key)
		}
	}
	if !hasID {
		return nil, p.errAt(-1, "group_id", "missing group_id")
	}
	if !hasType {
		return nil, p.errAt(-1, "type", "missing type")
	}
	for i, btoks := range buckets {
		b, err := p.bucket(g.Type, i, btoks)
		if err != nil {
			return nil, err
		}
		g.Buckets = append(g.Buckets, b)
	}
	if err := g.Check(); err != nil {
		return nil, err
	}
	return g, nil
}

// bucket parses the fields of bucket i.
func (p *textParser) bucket(t GroupType, i int, toks []actionToken) (Bucket, *ParseError) {
	var b Bucket
	hasWeight := false
	var acts []actionToken
	for _, tok := range toks {
		key, value, ok := strings.Cut(tok.text, ":")
		if k2, v2, ok2 := strings.Cut(tok.text, "="); ok2 && (!ok || len(k2) < len(key)) {
			key, value, ok = k2, v2, true
		}
		switch {
		case ok && key == "weight":
			n, msg := parseNum(value, 0xffff)
			if msg != "" {
				return b, p.errAt(tok.off, key, "bucket %d: bad value %q for weight: %s", i, value, msg)
			}
			b.Weight, hasWeight = uint16(n), true
		case ok && key == "watch_port":
			if msg := portRefProblem(value); msg != "" {
				return b, p.errAt(tok.off, key, "bucket %d: bad value %q for watch_port: %s", i, value, msg)
			}
			b.WatchPort = canonicalPortRef(value)
		case ok && key == "watch_group":
			return b, p.errAt(tok.off, key, "bucket %d: watch_group is not supported (use watch_port)", i)
		case ok && key == "bucket_id":
			if _, msg := parseNum(value, 0xffffffff); msg != "" {
				return b, p.errAt(tok.off, key, "bucket %d: bad value %q for bucket_id: %s", i, value, msg)
			}
		case ok && (key == "actions" || key == "action") && strings.HasPrefix(tok.text, key+"="):
			if value != "" {
				acts = append(acts, actionToken{value, tok.off + len(key) + 1})
			}
		default:
			acts = append(acts, tok)
		}
	}
	if t == GroupSelect && !hasWeight {
		b.Weight = 1
	}
	pas, err := p.actionList(acts)
	if err != nil {
		return b, err
	}
	if err := p.vlanTags(0, pas); err != nil {
		return b, err
	}
	b.Actions = actionsOf(pas)
	if field, msg := bucketProblem(t, &b); msg != "" {
		off := -1
		if len(toks) > 0 {
			off = toks[0].off
		}
		return b, p.errAt(off, field, "bucket %d: %s", i, msg)
	}
	return b, nil
}

// String returns the group in canonical add-group syntax (weights of
// select buckets always shown), which ParseGroup reads back.
func (g *Group) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "group_id=%d,type=%s", g.ID, g.Type)
	for _, b := range g.Buckets {
		s.WriteString(",bucket=")
		if g.Type == GroupSelect {
			fmt.Fprintf(&s, "weight:%d,", b.Weight)
		}
		if b.WatchPort != "" {
			s.WriteString("watch_port:" + b.WatchPort + ",")
		}
		s.WriteString("actions=")
		s.WriteString(FormatActions(b.Actions))
	}
	return s.String()
}

// GroupRefs returns the groups g's buckets send to (group chaining).
func (g *Group) GroupRefs() []uint32 {
	var ids []uint32
	for i := range g.Buckets {
		for j := range g.Buckets[i].Actions {
			if id, ok := g.Buckets[i].Actions[j].GroupRef(); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// PortRefs returns the ports g names: watch ports and the ports of its
// buckets' actions.
func (g *Group) PortRefs() []string {
	var ps []string
	for i := range g.Buckets {
		b := &g.Buckets[i]
		if b.WatchPort != "" {
			ps = append(ps, b.WatchPort)
		}
		for j := range b.Actions {
			if p := b.Actions[j].PortRef(); p != "" {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// GroupEntry is an installed group: the group as written, its buckets
// compiled, and counters. Like an Entry it outlives the snapshot that
// created it: a snapshot shares the GroupEntry of every group a change left
// alone.
type GroupEntry struct {
	Group   *Group // read-only
	buckets []bucketEntry
	stats   *groupStats
}

type bucketEntry struct {
	prog      Program
	watch     uint32 // ofport of WatchPort; 0: none
	watchGone bool   // WatchPort names a port that does not exist: never live
	weight    uint16
	salt      uint64 // the bucket's hash salt (rendezvous hashing)
	stats     *counter
}

// counter is a packet and byte count, added to by pollers.
type counter struct {
	packets, bytes atomic.Uint64
}

func (c *counter) add(packets, bytes uint64) {
	c.packets.Add(packets)
	c.bytes.Add(bytes)
}

type groupStats struct {
	packets, bytes atomic.Uint64
	installed      int64 // unix ns
	buckets        []counter
}

// GroupStats are a group's counters.
type GroupStats struct {
	Packets, Bytes uint64
	Duration       time.Duration
	Buckets        []BucketStats
}

// BucketStats are one bucket's counters, and whether it may be picked.
type BucketStats struct {
	Packets, Bytes uint64
	Live           bool
}

// GroupStats returns ge's counters at now, with which buckets are live in
// t.
func (t *Table) GroupStats(ge *GroupEntry, now time.Time) GroupStats {
	st := ge.Stats(now)
	for i := range st.Buckets {
		st.Buckets[i].Live = t.bucketLive(&ge.buckets[i])
	}
	return st
}

// Stats returns the group's counters at now (Live left false: liveness is
// the snapshot's, see Table.GroupStats).
func (g *GroupEntry) Stats(now time.Time) GroupStats {
	st := GroupStats{
		Packets:  g.stats.packets.Load(),
		Bytes:    g.stats.bytes.Load(),
		Duration: now.Sub(time.Unix(0, g.stats.installed)),
		Buckets:  make([]BucketStats, len(g.stats.buckets)),
	}
	for i := range g.stats.buckets {
		st.Buckets[i] = BucketStats{Packets: g.stats.buckets[i].packets.Load(), Bytes: g.stats.buckets[i].bytes.Load()}
	}
	return st
}

// newGroupEntry compiles g against ports (strict: every port g names must
// exist).
func newGroupEntry(g *Group, ports PortResolver, strict bool, now int64, stats *groupStats) (*GroupEntry, error) {
	c := *g
	c.Buckets = make([]Bucket, len(g.Buckets))
	for i, b := range g.Buckets {
		b.Actions = cloneActions(b.Actions)
		c.Buckets[i] = b
	}
	ge := &GroupEntry{Group: &c, buckets: make([]bucketEntry, len(c.Buckets)), stats: stats}
	if ge.stats == nil {
		ge.stats = &groupStats{installed: now, buckets: make([]counter, len(c.Buckets))}
	}
	for i := range c.Buckets {
		b := &c.Buckets[i]
		prog, err := compileProgram(b.Actions, ports, strict, TableCurrent)
		if err != nil {
			return nil, fmt.Errorf("group %d bucket %d: %w", g.ID, i, err)
		}
		be := bucketEntry{prog: prog, weight: b.Weight, salt: hashMix(uint64(g.ID)<<32 | uint64(i)), stats: &ge.stats.buckets[i]}
		if b.WatchPort != "" {
			no, ok := resolvePort(ports, b.WatchPort)
			if !ok && strict {
				return nil, fmt.Errorf("group %d bucket %d: watch_port %q: %w", g.ID, i, b.WatchPort, ErrNoSuchPort)
			}
			be.watch, be.watchGone = no, !ok
		}
		ge.buckets[i] = be
	}
	return ge, nil
}

// recompiled returns ge compiled against ports, sharing its counters.
func (ge *GroupEntry) recompiled(ports PortResolver) *GroupEntry {
	ne, err := newGroupEntry(ge.Group, ports, false, 0, ge.stats)
	if err != nil {
		// It compiled when it was added; only ports changed since.
		panic(fmt.Sprintf("flowtable: recompiling group %d: %v", ge.Group.ID, err))
	}
	return ne
}

func cloneActions(a []Action) []Action {
	if a == nil {
		return nil
	}
	return append([]Action(nil), a...)
}

// hashMix is a 64-bit finalizer (splitmix64).
func hashMix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// GroupFields is a group in structured form, as the REST API's structured
// groups carry it: the type by name and each bucket's actions as a list of
// single actions in the text syntax. The JSON names are package api's.
type GroupFields struct {
	ID      uint32
	Type    string
	Buckets []BucketFields
}

// BucketFields is one bucket of a GroupFields.
type BucketFields struct {
	Weight    *uint16 // select only; nil: 1
	WatchPort string
	Actions   []string
}

// ParseGroupFields builds a group from its structured form. Errors are
// *ParseError naming the field at fault.
func ParseGroupFields(gf GroupFields) (*Group, error) {
	p := &textParser{}
	g := &Group{ID: gf.ID}
	t, ok := ParseGroupType(gf.Type)
	if !ok {
		return nil, p.errAt(-1, "type", "bad value %q for type: want all, select, indirect or fast_failover", gf.Type)
	}
	g.Type = t
	for i, bf := range gf.Buckets {
		b := Bucket{WatchPort: bf.WatchPort}
		switch {
		case bf.Weight != nil:
			b.Weight = *bf.Weight
		case t == GroupSelect:
			b.Weight = 1
		}
		toks := make([]actionToken, len(bf.Actions))
		for k, s := range bf.Actions {
			if tt := splitActions(s, -1); len(tt) != 1 || tt[0].text != s {
				return nil, p.errAt(-1, "actions", "bucket %d: actions[%d] = %q: want one action, no separators", i, k, s)
			}
			toks[k] = actionToken{text: s, off: -1}
		}
		pas, err := p.actionList(toks)
		if err != nil {
			return nil, err
		}
		b.Actions = actionsOf(pas)
		g.Buckets = append(g.Buckets, b)
	}
	if err := g.Check(); err != nil {
		return nil, err
	}
	return g, nil
}

// GroupFieldsOf returns g in structured form (weights of select buckets
// always set).
func GroupFieldsOf(g *Group) GroupFields {
	gf := GroupFields{ID: g.ID, Type: g.Type.String(), Buckets: make([]BucketFields, len(g.Buckets))}
	for i, b := range g.Buckets {
		bf := BucketFields{WatchPort: b.WatchPort, Actions: make([]string, len(b.Actions))}
		if g.Type == GroupSelect {
			w := b.Weight
			bf.Weight = &w
		}
		for k, a := range b.Actions {
			bf.Actions[k] = FormatAction(a)
		}
		gf.Buckets[i] = bf
	}
	return gf
}

// FormatGroupStats returns a group's counters as a line of ovs-ofctl
// dump-group-stats, e.g.
//
//	group_id=1,duration=1.234s,ref_count=2,packet_count=10,byte_count=640,bucket0:packet_count=5,byte_count=320,...
func FormatGroupStats(id uint32, refs int, st GroupStats) string {
	var s strings.Builder
	fmt.Fprintf(&s, " group_id=%d,duration=%.3fs,ref_count=%d,packet_count=%d,byte_count=%d",
		id, st.Duration.Seconds(), refs, st.Packets, st.Bytes)
	for i, b := range st.Buckets {
		s.WriteString(",bucket" + strconv.Itoa(i) + ":")
		fmt.Fprintf(&s, "packet_count=%d,byte_count=%d", b.Packets, b.Bytes)
	}
	return s.String()
}
