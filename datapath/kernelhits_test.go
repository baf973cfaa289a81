package datapath

import (
	"testing"
	"time"
)

// TestDropFlowCounters: a drop flow's packets die in XDP, never reaching a
// poller, yet its n_packets counts them, and its idle timeout does not end
// it while they keep coming.
func TestDropFlowCounters(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	ids := tp.addFlows(t,
		"priority=100,udp,tp_dst=6666,idle_timeout=2,actions=drop",
		"priority=10,in_port={a},actions=output:{b}",
	)
	dropBefore := tp.stats(t, tp.a).XDP["drop"]
	// Three seconds of an attack, more than the idle timeout.
	const per = 50
	for i := 0; i < 6; i++ {
		sendUDP(t, tp.a, tp.b.ip, 6666, per, seqPayload(64), sendOpts{})
		time.Sleep(500 * time.Millisecond)
	}
	fi, err := tp.sw.Flow(ids[0])
	if err != nil {
		t.Fatalf("the drop flow is gone although it kept dropping: %v", err)
	}
	if fi.Packets != 6*per {
		t.Fatalf("drop flow n_packets = %d, want %d", fi.Packets, 6*per)
	}
	if fi.Bytes < 6*per*64 {
		t.Fatalf("drop flow n_bytes = %d, want at least %d", fi.Bytes, 6*per*64)
	}
	if d := tp.stats(t, tp.a).XDP["drop"] - dropBefore; d != 6*per {
		t.Fatalf("the XDP program dropped %d packets, want %d", d, 6*per)
	}
	// Once the attack stops, the idle timeout ends the flow.
	eventually(t, 5*time.Second, func() bool {
		_, err := tp.sw.Flow(ids[0])
		return err != nil
	}, func() string { return "the idle drop flow was not removed" })
}

// TestDropCountsKeptAcrossRuleRewrite: a change that rewrites a drop rule
// (a higher-priority flow takes over its match) resets the rule's counters
// in the kernel; what the old flow had counted is credited to it first.
func TestDropCountsKeptAcrossRuleRewrite(t *testing.T) {
	tp := newTopo(t, topoOptions{})
	ids := tp.addFlows(t, "priority=100,udp,tp_dst=6666,actions=drop")
	// A read harvests, so the next harvest on its own is 100ms away at
	// least, and the periodic one up to a second.
	if _, err := tp.sw.Flow(ids[0]); err != nil {
		t.Fatal(err)
	}
	const n = 40
	sendUDP(t, tp.a, tp.b.ip, 6666, n, seqPayload(64), sendOpts{})
	tp.addFlows(t, "priority=200,udp,tp_dst=6666,actions=drop")
	fi, err := tp.sw.Flow(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Packets != n {
		t.Fatalf("the overridden drop flow counted %d packets, want %d", fi.Packets, n)
	}
}
