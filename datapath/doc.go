// Package datapath is the switch: ports, the per-queue pollers that forward
// frames between them, the flow table they consult, and the counters.
//
// # Ports
//
// A port is a Linux netdev (a NIC, or a veth in tests) with the XDP steering
// program attached and one AF_XDP socket per active RX queue. Each port gets
// an ofport number, used in packet keys, flows and dumps: a name keeps its
// number while it is configured (and a restore asks for the saved one,
// PortSpec.OFPort); a port removed and added again gets its old number
// back while the switch has others to give, and once every number is held,
// those of removed ports that no flow or group names go to new names.
//
// A port is configuration, and outlives its device. Added with
// PortSpec.KeepAbsent (a restore does), a port whose device is missing or
// cannot be attached is kept in state "absent" or "failed"; and an attached
// port whose device is deleted, leaves the namespace or is renamed becomes
// absent. An absent port keeps its ofport, is not live (fast_failover
// buckets watching it are dead), its flows compile as those of a removed
// port (outputs count port_gone, an in_port matches nothing), and Health
// names it. The link watcher below attaches it when netlink tells of a
// device of its name (or the periodic check finds one); only DeletePort
// removes it.
//
// # Queues
//
// Devices allocate more RX queues than they activate (a veth made without
// queue arguments: 2 and 1; a NIC: one per CPU and what `ethtool -L` says),
// and only active queues can be bound. A port serves its device's active
// queues (afxdp.QueueInfo: ETHTOOL_GCHANNELS combined + rx, else the rx-N
// entries in sysfs), at most steer.MaxQueues. PortInfo shows the queues
// served, active and possible.
//
// The count is read again at every netlink link update about the port (an
// up veth or NIC bounces its carrier when its channels change), every
// Config.QueueCheck (a device that is down says nothing) and every port
// added or removed, and followed: a new queue gets its socket (on veth the
// XDP program is installed again, see bpf.Attachment.Reinstall) and then
// the routes below; a queue gone loses its routes, then its socket (the
// kernel refuses to deactivate a queue a socket is bound to, so this waits
// for a driver that does). A queue that cannot be opened (another
// program's socket holds it) leaves the port "degraded" in PortInfo and
// Health, saying which queue and why, until a later check opens it.
//
// # Pollers
//
// Poller q serves RX queue q of every port. It runs on its own goroutine,
// locked to an OS thread and pinned to a CPU, and owns one UMEM that the
// queue-q sockets of all ports share, its free list of frames, and an
// exact-match cache. Its loop:
//
//	reap completions -> take frames other pollers handed over ->
//	refill fill rings -> RX batch from every socket ->
//	extract the burst's keys, look them up together (cache, then
//	classifier), run each frame's flow program ->
//	queue the descriptor on the output socket's TX ring (or copy it to
//	the poller serving the output's queue) -> publish hand-offs -> kick
//
// Forwarding moves the descriptor from one socket's RX ring to another's TX
// ring: no bytes are copied. Only a flow with several outputs copies, into a
// fresh frame of the same UMEM, for every output but the last. When the
// kernel refuses to share a UMEM between two devices, the port gets a UMEM
// of its own inside the same poller and frames crossing UMEMs are copied
// (PortInfo.UmemMode says which way each port runs). A UMEM is sized for a
// few sockets (Config.FramesPerPoller), as the kernel pins all of it; a
// poller serving more makes another one (umem.go), with the same copy
// between the two.
//
// # Hand-offs between pollers
//
// Ports need not have the same number of queues: a LAN port with four and
// an uplink with one is the normal case. Poller q has a socket only for
// ports with more than q queues; a frame it switches to port P with n <= q
// queues goes out on P's queue q % n (so a given poller always hands to the
// same one, and the n queues share the load), through the poller d that
// owns that queue. The kernel allows one UMEM per (device, queue), and a
// poller's UMEM, free list and rings are its goroutine's alone, so poller q
// cannot put the frame on d's TX ring itself; the two meet in a handoff,
// one per pair (q, d) whatever the ports:
//
//	d --credits (chunk addresses of d's UMEM)--> q
//	q copies the frame into a lent chunk
//	q --frames (address, length, output ofport)--> d
//	d queues it on P's TX queue; the TX completion returns it to d's pool
//
// Both are lock-free single-producer single-consumer rings (spsc) with
// cached indices, published once per batch. d lends up to
// Config.HandoffFrames chunks (default RingSize: the hand-off buffers what
// the output's TX ring would) and tops them up at every pass; q drops a
// frame when none is lent (handoff_full: d is behind). d takes the frames
// at the top of each pass, before its own RX. A sleeping d is woken through
// an eventfd of its own: it sets sleeping before poll(2) and looks at its
// rings once more; q, having published, writes the eventfd only if it sees
// sleeping set.
//
// Routes change only with the ports' queues, in three steps under the
// switch's mutex: new hand-offs start at their destination (which lends
// them frames), then every poller whose routes change gets its new routes
// (between two of its batches), then hand-offs no route uses stop at their
// destination, which queues what they still carry for TX and takes back
// what it lent. A socket closes only after no route leads to it, and its
// poller first takes what was handed to it: no frame is lost or stranded.
//
// Copy is the price: a frame handed over costs about 50 ns (64 bytes) to
// 70 ns (1500 bytes) more in userspace than one sent on the poller's own
// socket (BenchmarkHandoff, on the 2-core development VM).
// Only frames crossing queues pay it; OVS's userspace datapath copies every
// frame between ports. Two pollers busy on one CPU hand off poorly (the
// destination runs only every scheduler slice): give pollers CPUs of their
// own (Config.CPUs).
//
// # Frames and drops
//
// Every frame is in exactly one place: the poller's free list, a fill ring,
// an RX ring, the batch being processed, a TX ring, a completion ring, or
// lent to another poller (its credits ring, being filled in that poller's
// batch, or its frames ring). A frame that cannot go on goes back to the
// free list and the counter of its DropReason says why: one table
// (drops.go) names every reason and where it counts, the port the frame
// came in on (rx) or the one it was going out of (tx).
//
// # Waiting
//
// When a pass brings nothing, the poller either looks again or sleeps in
// poll(2) on its sockets and two eventfds (commands, hand-offs); the
// kernel wakes it when frames arrive. Sleeping saves a CPU and costs the
// first frame after a pause a wake-up: an IPI to an idle CPU, 70-125 us on
// the development VM (through the hypervisor), where Go's part (getting a
// P back after the syscall) is under a microsecond. Config.PollMode
// chooses (idle.go):
//
//   - adaptive (default): keep polling for Config.PollWindow (200 us)
//     after the last frame, so a reply to what was just forwarded and the
//     rest of a burst find the poller awake; and learn each source's
//     rhythm (the interval between the starts of its bursts, smoothed, and
//     its deviation, per socket and for the hand-offs): a steady one (a
//     voice stream, a keepalive) is anticipated, the poller sleeps until
//     just before the burst is due, less how late its timed wake-ups have
//     come, and polls through it. Two anticipated bursts that do not come
//     and it stops until the rhythm is steady again. Irregular traffic
//     pays a wake-up per pause longer than the window.
//   - busy: never sleep, like OVS's PMD: no wake-up on any frame's path,
//     a CPU per poller, idle or not.
//   - sleep: sleep as soon as a pass finds nothing: the least CPU.
//
// All of this is about frames that reach a poller. A flow in the XDP fast
// path forwards in the receiving NAPI softirq and never wakes one: its
// delay is the XDP program's, whatever the poll mode.
//
// PollerStats counts sleeps, their time, and how they ended: woken for
// an event, early by the poller's own timer, or by the poll timeout.
// Config.BusyPoll adds the kernel's busy polling of the device queues
// (for NICs that defer interrupts; on veth the sender's softirq does the
// device's work and it changes nothing).
//
// Control requests (add or remove a socket, stop) reach a poller through a
// channel and its eventfd; a poller never takes a lock per packet.
//
// # Configuration changes
//
// Switch methods are safe for concurrent use; changes are serialised by one
// mutex. A flow change is one transaction: flowtable builds a new immutable
// snapshot; the steering rules are synced to the XDP program's maps around
// the snapshot's publication (rules that stop redirecting go first, rules
// that start redirecting last, then the mask order), so a packet the XDP
// program redirects finds its flow in userspace; pollers pick up the new
// snapshot at their next batch. A small change goes by delta (delta.go):
// only the rules of the keys it touched are compared and written, and the
// record assignment is patched; the kernel's rules are a function of the
// live snapshot and the assignment, so nothing else has to be kept to
// know them. ApplyCommit hands the new snapshot to the
// caller's commit before any of that (the control plane saves it there,
// so nothing goes live that is not on disk); an error from commit abandons
// the change.
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
// FlowInfo says why. The kernel's record maps start with 4096 slots and
// grow when a sync wants more (before any rule names a new slot), up to
// Config.FastPathFlows. Record slots are written before the rules that name
// them, never rewritten while named, and reused only after an RCU grace
// period; what they forwarded is credited to their flows' counters (and
// idle timeouts) by the same harvest that reads the drop and kernel rules'
// hits (see fastpath.go).
//
// # Port liveness and events
//
// One netlink link subscription (queues.go, watchLinks) feeds both queue
// reconciliation and port liveness (links.go): a port is live while its link
// is up with carrier, unless SetLiveness overrides it. A liveness change
// publishes a new table generation with the dead ports (WithDeadPorts), so
// groups' buckets follow at the pollers' next batch with no steering sync
// and no controller. The switch tells Config.OnEvent of what it does on its
// own: ports, links, liveness, group failovers and buckets, expired flows.
//
// # Trace
//
// Trace runs a frame through a dry-run instance of the XDP program (loaded
// on first use; it shares every map of the live program but its trace map
// and counts nothing: bpf's dry_run) with BPF_PROG_TEST_RUN, then, for a
// frame it redirects or forwards, through flowtable's Table.Trace of the
// published snapshot. It checks the two agree (keys, rules, and for the fast
// path the rewritten frame) and says where they did not.
package datapath
