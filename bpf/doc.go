// Package bpf is xvs's XDP program and its loader.
//
// # The program
//
// One program (xvs.bpf.c, compiled by bpf2go into the committed
// xvs_bpfel.o) serves every port of the switch. For each frame it:
//
//  1. maps the receiving ifindex to an ofport (the array "port_cache" in
//     front of the hash "ports"); a frame from an ifindex it does not know
//     goes to the kernel, counted under ofport 0;
//  2. parses Ethernet (and 802.3 with LLC/SNAP), up to two VLAN tags,
//     ARP and RARP, IPv4, IPv6 with up to 8 extension headers
//     (flowtable.MaxIPv6ExtHeaders: the verifier needs a bound), TCP, UDP
//     and ICMP into a steer.Key, with exactly the rules of
//     flowtable.Extract (see bpf/xvs.h); a malformed frame goes to the
//     kernel, counted as such;
//  3. classifies the key with the steering classifier: for each mask of the
//     live order, highest max rank first, it looks up (mask id, key & mask)
//     in the rules hash and keeps the highest-ranked hit (on a tie, the
//     first found). It stops as soon as the next mask's max rank cannot
//     beat the best hit, so a frame matching a high-priority rule costs one
//     lookup. A per-CPU exact-match cache ("emc", emc.h) answers keys seen
//     since the last steering change (map "steer_gen", bumped by every
//     PutRules, DeleteRules and mask flip) with no match, redirect or
//     forward, without the classifier. A CPU whose cache thrashes (more
//     than half of a window's lookups evict another live key: many more
//     active keys than slots) classifies without it for a while (map
//     "emc_judge"), since then the cache costs more than it saves;
//  4. acts on the verdict: REDIRECT sends the frame to the AF_XDP socket of
//     (ofport, RX queue) in the XSKMAP "xsks" (or to the kernel, counted as
//     redirect_nosock, when that queue has none), DROP drops it, PASS and no
//     match hand it to the kernel, FORWARD runs the flow's action record
//     (the fast path, below).
//
// # The fast path
//
// A forward rule names an action record slot (Rule.Arg) and its flow
// (Rule.Flow). The record (steer.Record, struct xvs_record, map "records")
// is the flow's compiled program, rewrites then one output or in_port, and
// fastpath.h runs it with the semantics of flowtable's Program.Run, byte for
// byte, then bpf_redirect_map's the frame to the output port's devmap slot
// ("tx_ports", SetTxPort). Everything that could make it hand the frame to
// userspace instead is decided before a byte is written (a record of
// another flow, an output to the input port or to a port without a devmap
// slot, a TTL dec_ttl would see expire, a fragment when an op touches the
// L4 header, a port rewrite without a TCP/UDP header, no headroom for the
// VLAN pushes): such a frame is redirected to the socket untouched, counted
// as forward_fallback besides its outcome. What each slot forwarded is
// counted per CPU ("record_hits", RecordHits). A slot is written only while
// no rule points at it, and reused only after Synchronize (an RCU grace
// period) once a rule stopped pointing at it.
//
// Every frame counts exactly one outcome (steer.Counter) in a per-CPU array,
// in packets and bytes; rx is not counted by the program but is the sum of
// the outcomes (Objects.Counters adds them up).
//
// # Maps
//
//	ports       hash   ifindex -> ofport                  steer.MaxPorts
//	xsks        xskmap ofport*MaxQueues+queue -> socket    MaxPorts*MaxQueues
//	masks       array  mask id -> mask                     steer.MaxMasks
//	mask_order  array  2 visit orders (double buffer)      2
//	active      array  which mask_order slot is live       1
//	port_cache  array  ifindex%4096 -> ifindex<<32|ofport  4096
//	rules       hash   (mask id, masked key) -> rank, verdict, arg, flow  steer.MaxRules, not preallocated
//	counters    percpu ofport*NumCounters+counter          MaxPorts*NumCounters
//	emc         percpu key hash -> key, result, generation 4096..65536 a CPU
//	steer_gen   array  the steering generation             1
//	records     maps   slot/4096 -> page (array): slot%4096 -> action record  256 pages (RecordSlotsLimit)
//	record_hits maps   slot/4096 -> page (array): cpu*4096+slot%4096 -> packets, bytes forwarded  as records
//	tx_ports    devmap ofport -> ifindex (fast path outputs) MaxPorts
//	trace       array  last run's key and decision (tests) 1
//
// records and record_hits hold the pages of Options.Records slots, and
// grow by pages (GrowRecords puts new pages into their empty entries; the
// program stays loaded and attached, and no record or counter moves; see
// grow.go). A slot without a page is past the end, as in an array: its
// frame goes to userspace (FP_STALE). A page of hit counters has a row for
// each possible CPU, which only that CPU writes: per-CPU counters in one
// allocation (a per-CPU array allocates each entry on its own, and made a
// grow to 180k slots take 112 ms more).
//
// The rules table is not preallocated: preallocation pins about 40 MB for
// 262144 entries whatever the table holds, while lookups and a 160k-rule
// install cost the same either way (measured on 6.18).
//
// # Syncing the steering classifier
//
// Three primitives change the classifier; none shows a frame a
// half-written rule or order:
//
//   - PutRules writes rules one by one. A rule under a live mask takes
//     effect when written; a rule under a mask not yet live is invisible
//     until a SetMasks makes the mask live.
//   - SetMasks writes the keys of new masks into free mask slots, writes the
//     new visit order into the order slot the program is not reading, and
//     flips "active". The flip, a single word, is the switch point: a frame
//     walks either the whole old order or the whole new one.
//   - DeleteRules removes rules one by one; each stops matching when
//     deleted.
//
// The caller orders them (the datapath deletes before it swaps its
// userspace snapshot and adds after, see ARCHITECTURE.md); rules of a new
// mask go in before the SetMasks that makes it live.
//
// A mask id keeps its key while it is live; when the flow table must give
// a live id another key, SetMasks first flips to an order without it.
// Before rewriting what a flip retired (the idle order slot, masks no
// longer live), SetMasks makes sure no program run still reads it: if the
// flip was less than 10 ms ago, it waits for an RCU grace period (about
// 10 ms here), which an update of the Go-created map-of-maps "xvs_barrier"
// provides (the kernel runs synchronize_rcu for it, and XDP runs are RCU
// read-side sections).
//
// # Lifetime
//
// Nothing is pinned. The maps and the program live as long as Objects, and
// each Attachment is a bpf_link held by this process: if xvsd dies, the
// kernel detaches its programs and the host gets its traffic back, and a
// restarted xvsd loads and fills fresh maps. Closing Objects detaches every
// attachment made through it.
//
// # Tests
//
// Objects loaded with Options.Trace record the key and classification of
// each run in the "trace" map; TestRun and TestRunKey run the program on a
// crafted frame with BPF_PROG_TEST_RUN and read it back, so tests compare
// the kernel's key and verdict with the Go classifier's. Without Trace the
// recording is dead code the verifier removes.
//
// DryRunner loads a second instance with Trace and the dry_run constant set:
// it shares every map of the first but trace (sharedMaps; a test fails when
// a new map is not listed there), the record pages a grow adds too, and
// neither counts nor writes its cache,
// so xvsctl trace can run the live decision on any frame, changing nothing.
// A counter or cache write added to the program must be guarded by dry_run.
package bpf
