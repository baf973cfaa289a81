package flowtable

import (
	"net/netip"
	"testing"
)

func TestCache(t *testing.T) {
	c := NewCache(0)
	if c.Len() != DefaultCacheSize {
		t.Fatalf("size %d", c.Len())
	}
	if NewCache(1000).Len() != 1024 || NewCache(1).Len() != 2 {
		t.Fatal("sizes not rounded to powers of two")
	}
	m := dpMatch().dlType(0x0800).nwProto(6).get()
	k := dpMatch().dlType(0x0800).nwProto(6).tpDst(80).key(1)
	other := dpMatch().dlType(0x0800).nwProto(17).key(1)

	t0 := NewTable()
	if e := c.Lookup(t0, &k).Entry(); e != nil || c.Misses != 1 {
		t.Fatalf("empty table: %v misses %d", e, c.Misses)
	}
	if e := c.Lookup(t0, &k).Entry(); e != nil || c.Hits != 1 {
		t.Fatalf("cached miss: %v hits %d", e, c.Hits)
	}
	// A new snapshot invalidates everything, cached misses included.
	t1 := dpApply(t, t0, Change{Add: []*Flow{dpFlow(1, m, dpOut("p1"))}}, dpPorts)
	e1 := c.Lookup(t1, &k).Entry()
	if e1 == nil || e1.Flow.ID != 1 || c.Misses != 2 {
		t.Fatalf("after add: %v misses %d", flowID(e1), c.Misses)
	}
	if e := c.Lookup(t1, &k).Entry(); e != e1 || c.Hits != 2 {
		t.Fatal("not cached")
	}
	if e := c.Lookup(t1, &other).Entry(); e != nil {
		t.Fatal("udp matched the tcp flow")
	}
	t2 := dpApply(t, t1, Change{Add: []*Flow{dpFlow(2, m, dpOut("p2"))}}, dpPorts)
	if e := c.Lookup(t2, &k).Entry(); e == nil || e.Flow.ID != 2 {
		t.Fatalf("after a higher flow: %v", flowID(e))
	}
	// Looking up in an older snapshot again gives that snapshot's answer.
	if e := c.Lookup(t1, &k).Entry(); e != e1 {
		t.Fatalf("old snapshot: %v", flowID(e))
	}
	// Keys differing only in in_port are different keys.
	k2 := k
	k2.SetInPort(2)
	if e := c.Lookup(t1, &k2).Entry(); e != e1 || c.Lookup(t1, &k).Entry() != e1 {
		t.Fatal("in_port variants")
	}
	// A two-slot cache holds two keys; a third evicts one of them.
	c2 := NewCache(2)
	k3 := dpMatch().dlType(0x86dd).key(1)
	for i, kk := range []*Key{&k, &other, &k3, &k, &other, &k3} {
		want := e1
		if kk != &k {
			want = nil
		}
		if e := c2.Lookup(t1, kk).Entry(); e != want {
			t.Fatalf("lookup %d: %v", i, flowID(e))
		}
	}
	if c2.Hits+c2.Misses != 6 || c2.Misses < 3 {
		t.Fatalf("two-slot cache: %d hits %d misses", c2.Hits, c2.Misses)
	}
	// Keys that share both slots do not evict each other in a cycle: three
	// keys looked up in turn through two slots still hit now and then.
	c2 = NewCache(2)
	for i := 0; i < 300; i++ {
		c2.Lookup(t1, []*Key{&k, &other, &k3}[i%3])
	}
	if c2.Hits < 30 {
		t.Fatalf("cyclic keys: %d hits of 300", c2.Hits)
	}
}

// TestDatapathAllocs: the per-packet path (parse, cached lookup, program
// with rewrites and outputs) and the classifier path allocate nothing.
func TestDatapathAllocs(t *testing.T) {
	tb := randomTable(t, dpRand(5), 5000, 16)
	tb = dpApply(t, tb, Change{Add: []*Flow{dpFlow(65535, dpMatch().dlType(0x0800).nwProto(6).get(),
		Action{Type: ActSetNwDst, Addr: netip.MustParseAddr("10.9.9.9")}, Action{Type: ActSetTpDst, Value: 8080},
		dpOut("p2"), Action{Type: ActPushVLAN, Value: 0x8100}, Action{Type: ActDecTTL}, dpOut("p3"))}}, dpPorts)
	frame := dpTCP4Frame(t)
	buf := make([]byte, 256+len(frame))
	c := NewCache(0)
	var k Key
	var lay Layout
	outs := 0
	packet := func() {
		copy(buf[256:], frame)
		pkt := Packet{Buf: buf, Off: 256, Len: len(frame), InPort: 1}
		if ExtractLayout(pkt.Frame(), 1, &k, &lay) != ParseOK {
			t.Fatal("malformed")
		}
		e := c.Lookup(tb, &k).Entry()
		if e == nil {
			t.Fatal("no flow")
		}
		e.Hit(1, uint64(pkt.Len), 1)
		for pc := 0; pc >= 0; {
			var out Output
			out, pc = e.Program.Run(&pkt, &lay, pc)
			if out.Kind == OutPort {
				outs++
			}
		}
	}
	if n := testing.AllocsPerRun(1000, packet); n != 0 {
		t.Fatalf("cached path allocates %v times", n)
	}
	if outs != 2*1001 {
		t.Fatalf("%d outputs", outs)
	}
	// Misses: alternating between two snapshots, every cache lookup goes to
	// the classifier.
	tb2 := dpApply(t, tb, Change{Delete: []uint64{1}}, dpPorts)
	keys := randomKeys(dpRand(6), tb, 256)
	misses := c.Misses
	miss := func() {
		for i := range keys {
			c.Lookup(tb, &keys[i])
			c.Lookup(tb2, &keys[i])
		}
	}
	if n := testing.AllocsPerRun(10, miss); n != 0 {
		t.Fatalf("miss path allocates %v times", n)
	}
	if c.Misses-misses != 11*2*256 {
		t.Fatalf("%d misses", c.Misses-misses)
	}
	// The same in batches, as a poller looks up a burst.
	var out [MaxBatch]Result
	misses = c.Misses
	batches := func() {
		for i := 0; i < len(keys); i += MaxBatch {
			c.LookupBatch(tb, keys[i:i+MaxBatch], ^uint64(0), out[:])
			c.LookupBatch(tb2, keys[i:i+MaxBatch], ^uint64(0), out[:])
		}
	}
	if n := testing.AllocsPerRun(10, batches); n != 0 {
		t.Fatalf("batch miss path allocates %v times", n)
	}
	if c.Misses-misses != 11*2*256 {
		t.Fatalf("%d batch misses", c.Misses-misses)
	}
}

// TestKeyEqual: keys differing in any word, or in words whose differences
// cancel under a left-to-right ^| chain, are not equal.
func TestKeyEqual(t *testing.T) {
	var a Key
	for i := range a {
		a[i] = byte(i*7 + 1)
	}
	if !keyEqual(&a, &a) {
		t.Fatal("a key must equal itself")
	}
	for w := 0; w < len(a)/8; w++ {
		b := a
		b[w*8+3] ^= 0x10
		if keyEqual(&a, &b) {
			t.Fatalf("keys differing in word %d compare equal", w)
		}
	}
	// Word 0 differs by d; word 1 of a is 0 and of b is d. Evaluated as
	// ((a0^b0)|a1)^b1 this is 0: the bug keyEqual once had.
	a, b := Key{}, Key{}
	a[0], b[0] = 0x01, 0x03 // a0^b0 = 0x02
	b[8] = 0x02             // a1 = 0, b1 = 0x02
	if keyEqual(&a, &b) {
		t.Fatal("keys whose word differences cancel left to right compare equal")
	}
}
