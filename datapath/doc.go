// Package datapath is the switch: ports, the per-queue pollers that forward
// frames between them, the flow table they consult, and the counters.
//
// # Ports
//
// A port is a Linux netdev (a NIC, or a veth in tests) with the XDP steering
// program attached and one AF_XDP socket per RX queue. Each port gets an
// ofport number, stable for the life of the Switch (a port removed and added
// again gets its old number back), used in packet keys, flows and dumps.
//
// # Pollers
//
// Poller q serves RX queue q of every port. It runs on its own goroutine,
// locked to an OS thread and pinned to a CPU, and owns one UMEM that the
// queue-q sockets of all ports share, its free list of frames, and an
// exact-match cache. Its loop:
//
//	reap completions -> refill fill rings -> RX batch from every socket ->
//	extract the burst's keys, look them up together (cache, then
//	classifier), run each frame's flow program ->
//	queue the descriptor on the output socket's TX ring -> kick
//
// Forwarding moves the descriptor from one socket's RX ring to another's TX
// ring: no bytes are copied. Only a flow with several outputs copies, into a
// fresh frame of the same UMEM, for every output but the last. When the
// kernel refuses to share a UMEM between two devices, the port gets a UMEM
// of its own inside the same poller and frames crossing UMEMs are copied
// (PortInfo.UmemMode says which way each port runs).
//
// Every frame is in exactly one place: the poller's free list, a fill ring,
// an RX ring, the batch being processed, a TX ring or a completion ring. A
// frame that cannot go on (TX ring full, flow drops it, no flow) goes back to
// the free list and a counter says why.
//
// When a batch brings nothing, the poller spins a little, then sleeps in
// poll(2) on its sockets and a wake-up eventfd, so an idle switch burns
// almost no CPU. Control requests (add or remove a socket, stop) reach a
// poller through a channel and that eventfd; a poller never takes a lock per
// packet.
//
// # Configuration changes
//
// Switch methods are safe for concurrent use; changes are serialised by one
// mutex. A flow change is one transaction: flowtable builds a new immutable
// snapshot; the steering rules are synced to the XDP program's maps around
// the snapshot's publication (rules that stop redirecting go first, rules
// that start redirecting last, then the mask order), so a packet the XDP
// program redirects finds its flow in userspace; pollers pick up the new
// snapshot at their next batch.
//
// # The XDP fast path
//
// A table-0 flow whose actions XDP can carry out (flowtable compiles it to
// a forward rule with an action record) runs in the XDP program: its
// packets never reach a poller. The switch lets it when the fast path is on
// (Config.FastPathOff, xvsd --fast-path=off), its output port takes
// redirected frames (the netdev's XDP features over generic netlink,
// rechecked every second: a veth only while its peer has an XDP program
// or GRO) and a record slot is free; otherwise the rule is a redirect and
// FlowInfo says why. Record slots are written before the rules that name
// them, never rewritten while named, and reused only after an RCU grace
// period; what they forwarded is credited to their flows' counters (and
// idle timeouts) by the same harvest that reads the drop and kernel rules'
// hits (see fastpath.go).
package datapath
