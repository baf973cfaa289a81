package datapath

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// Ports with two RX queues get a socket per queue and two pollers. Traffic
// from many source ports spreads over both queues (the sending veth picks
// its TX queue, which is the receiving end's RX queue, by flow hash), both
// pollers forward, and everything arrives.
func TestTwoQueues(t *testing.T) {
	const flows, perFlow, size = 64, 10, 120
	tp := newTopo(t, topoOptions{Queues: 2})
	for _, h := range []*host{tp.a, tp.b} {
		pi, err := tp.sw.Port(h.port())
		if err != nil {
			t.Fatal(err)
		}
		if pi.Queues != 2 {
			t.Fatalf("port %s has %d queues, want 2", h.name, pi.Queues)
		}
	}
	tp.addFlows(t, "in_port={a},udp,actions=output:{b}", "in_port={b},udp,actions=output:{a}")
	sink := listenUDP(t, tp.b.NS, tp.b.ip, 9300)

	// Each flow (source port) sends its own numbered datagrams.
	payload := func(flow int) func(int) []byte {
		return func(i int) []byte { return seqPayload(size)(flow*perFlow + i) }
	}
	var wg sync.WaitGroup
	errs := make([]error, flows)
	for f := range flows {
		wg.Go(func() { errs[f] = trySendUDP(tp.a, tp.b.ip, 9300, perFlow, payload(f), sendOpts{}) })
		if f%8 == 7 {
			wg.Wait() // a few flows at a time: a modest rate
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, "a to b", sink.collect(flows*perFlow, 10*time.Second), flows*perFlow, size)

	st := tp.sw.Stats()
	if len(st.Pollers) != 2 {
		t.Fatalf("%d pollers, want 2", len(st.Pollers))
	}
	for _, p := range st.Pollers {
		if p.Packets == 0 {
			t.Errorf("poller %d forwarded nothing: %+v", p.Queue, st.Pollers)
		}
	}
	for _, ps := range st.Ports {
		if ps.NoTxQueue != 0 || ps.TxRingFull != 0 || ps.NoFlow != 0 {
			t.Errorf("port %s dropped frames: %+v", ps.Name, ps)
		}
	}
	if a := tp.stats(t, tp.a); a.RxPackets != flows*perFlow {
		t.Errorf("port a received %d frames in userspace, want %d", a.RxPackets, flows*perFlow)
	}
	if t.Failed() {
		t.Logf("stats: %+v", st)
	}
}
