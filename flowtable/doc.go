// Package flowtable is xvs's flow table: the flow model, its ovs-ofctl text
// syntax, packet key extraction, the classifier and caches, action
// execution, and the compiler of the XDP program's steering rules.
//
// # Model
//
// A Flow is what a user writes: a Match, a priority (0..65535, higher wins;
// DefaultPriority when not given), a cookie, timeouts and a list of Actions
// (empty = drop). A Match is a Key and a Mask of the packed packet key (see
// package steer for its layout; multi-byte fields in network byte order):
// a packet matches when its key, masked with Mask, equals Key. Key is always
// pre-masked. The input port is not in the Key of a Match: Match.InPort holds
// it as a port reference (a name, once BindPortNumbers has bound a number),
// resolved to an ofport when the flow is installed.
//
// Match.Check and Flow.Check say whether a Match or Flow is one the text
// syntax can express (and so the classifiers and the XDP program can
// match); everything ParseFlow returns passes them, and for everything that
// passes them ParseFlow(f.String()) gives f back.
//
// Among the flows that match a packet, the one with the highest priority
// wins. Between flows of equal priority OpenFlow leaves the choice
// undefined; here the flow installed first wins, in userspace and in the XDP
// program alike (steer.MakeRank), so the two classifiers always agree.
//
// # Text syntax
//
// Flows are written as ovs-ofctl add-flow writes them (ParseFlow):
//
//	priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1
//
// Fields are key=value pairs (or a bare shorthand) separated by commas
// and/or whitespace, in any order; actions= (or action=) takes the rest of
// the text.
// Flow fields: table= (0..MaxTable, default 0), priority=, cookie= (hex
// with 0x, or decimal), idle_timeout=, hard_timeout=. The counters
// dump-flows prints (duration=, n_packets=, n_bytes=, idle_age=, hard_age=)
// are accepted and ignored, as OVS does with its own output, so a line of
// dump-flows (FormatFlow) can be fed back to add-flows.
//
// Match fields (numbers are decimal, or hex with 0x; each field also has
// the OXM/NXM names ovs-ofctl takes, in matchFields, e.g. eth_src, ip_dst,
// ip_proto, ip_ecn, ip_frag):
//
//	in_port=PORT                       a port reference (see below)
//	dl_src=MAC[/MASK], dl_dst=...      e.g. 01:00:00:00:00:00/01:00:00:00:00:00
//	dl_type=N                          EtherType (after at most two VLAN tags; 0x05ff: 802.3 without SNAP)
//	vlan_tci=TCI[/MASK]                outer TCI, 0x1000 meaning "tagged"; 0: untagged
//	dl_vlan=VID                        0..4095; 0xffff: frames without a VLAN tag
//	vlan_vid=0x1000|VID[/MASK]         OpenFlow 1.2's; 0: untagged
//	dl_vlan_pcp=PCP, vlan_pcp=PCP      0..7 (implies a tag)
//	nw_src=IP[/N|/MASK], nw_dst=...    IPv4 (ip); with arp or rarp they are arp_spa/arp_tpa
//	ipv6_src=IP6[/N|/MASK], ipv6_dst   IPv6 (ipv6)
//	arp_spa=IP[/N|/MASK], arp_tpa=...  ARP sender/target IPv4 (arp, rarp)
//	nw_proto=N                         IP protocol after extension headers (ip, ipv6); ARP opcode (arp, rarp)
//	arp_op=N                           ARP opcode 0..255 (arp, rarp)
//	nw_tos=TOS                         0..255, low 2 bits zero: matches the DSCP bits (ip, ipv6)
//	ip_dscp=DSCP                       0..63, the same bits (ip, ipv6)
//	nw_ecn=ECN                         0..3, the ECN bits (ip, ipv6)
//	nw_frag=no|yes|first|later|not_later  (ip, ipv6)
//	tp_src=N[/MASK], tp_dst=...        TCP/UDP port, e.g. 0x1f00/0xff00 (tcp, udp, tcp6, udp6)
//	tcp_src, tcp_dst / udp_src, udp_dst  the same, for tcp / udp only
//	icmp_type=N, icmp_code=N           0..255 (icmp, icmp6); icmpv4_* for icmp, icmpv6_* for icmp6
//
// The shorthands ip, ipv6, arp, rarp, icmp, tcp, udp, icmp6, tcp6 and udp6
// set dl_type (and nw_proto) as in OVS. A field's prerequisite, shown in
// parentheses, is checked once all fields are read, so "tp_dst=80,tcp" is
// valid and "tp_dst=80" alone is not ("tp_dst requires udp or tcp"). A field
// with an all-zero mask (tp_dst=0/0) matches nothing and needs nothing.
// Giving a field twice is an error, and so is a field that contradicts
// another (tcp,udp); shorthands may overlap dl_type and nw_proto when they
// agree (ip,tcp). Where Open vSwitch would silently widen or truncate (a
// missing prerequisite, ECN bits in nw_tos, dl_vlan_pcp=8, the last of two
// fields winning) the error says what it would have done.
//
// Ports (ports.go): a name (p0), an ofport number (2), or a quoted name
// ("2"), quoted as ovs-ofctl quotes it when the name reads as a number or
// a reserved port. IN_PORT is the input port; OpenFlow's other reserved
// ports (LOCAL, NORMAL, ...) are refused with the reason. BindPortNumbers
// turns numbers into names before a flow is installed: the table holds,
// resolves and persists ports by name.
//
// Actions (name:VALUE or name(VALUE), as ovs-ofctl takes both, names in any
// case; each action type is one descriptor in actionKinds): output:PORT (or
// a bare port that is not an action keyword), in_port, drop (alone; the
// empty list), kernel (alone, table 0 only: the packet goes to the host
// stack, XDP_PASS), goto_table:N (last, to a later table), resubmit:PORT,
// resubmit([PORT],[TABLE]), group:ID, mod_dl_src:MAC, mod_dl_dst:MAC,
// mod_nw_src:IP, mod_nw_dst:IP (these two need ip), mod_nw_tos:TOS,
// mod_nw_ecn:ECN (need ip or ipv6), mod_tp_src:N, mod_tp_dst:N (need udp or
// tcp), push_vlan:0x8100|0x88a8, mod_vlan_vid:VID, mod_vlan_pcp:PCP,
// strip_vlan (or pop_vlan), dec_ttl (needs ip or ipv6; dec_ttl(ID,...)'s
// controller IDs are checked and dropped), and set_field:VALUE->FIELD or
// load:NUMBER->FIELD[] (a whole field) for the fields of
// setFieldTargetList (eth_src, ip_dst, ip_dscp, ip_ecn, tcp_src, udp_dst,
// vlan_vid, ..., with their NXM and OXM names), which is the same action as
// its mod_* form and is printed that way. set_field keeps OVS's
// prerequisites: tp_src and tp_dst are tcp_src and tcp_dst, and vlan_vid
// and vlan_pcp need a tag the match or an earlier action guarantees. A
// list that would push a third VLAN tag is refused, as OVS refuses it.
//
// Printing is canonical (Flow.String, Match.Fields): shorthands where they
// fit, fields in a fixed order, a full mask left out, a prefix mask as /N.
// Errors are *ParseError values naming the field or action at fault and its
// 1-based column, e.g. `unknown field "tp_dsst" at column 23`; all wrap
// ErrInvalid.
//
// Filters (ParseFilter) select installed flows as del-flows and dump-flows
// do: not strict, a filter selects every flow whose match is at least as
// specific and agrees with it (Match.Covers); strict, the match and priority
// must be equal.
//
// FlowFields is a flow's structured form, as the REST API carries it: the
// match a map ({"udp": "", "tp_dst": "7999"}), the actions a list; see
// ParseFlowFields. The JSON around it is package api's.
//
// # Concurrency
//
// The parsing and printing functions are pure and safe for concurrent use.
// A Flow or Match is a plain value: do not modify one that another goroutine
// reads. Flows may share their Actions: a FlowParser gives the flows of a
// bulk request with the same action text one slice, and the entries of
// flows with the same actions in one table share one Program (Apply,
// Recompile); both are read-only, as an installed flow's are.
//
// # Datapath
//
// A poller parses each frame once with ExtractLayout into a Key (the same
// rules as the XDP program, bit for bit; see Extract) and a Layout (where
// the headers are), looks the key up, and runs the flow's Program on the
// frame. None of it allocates or calls through an interface.
//
// Table is an immutable snapshot of the installed flows and groups with
// their classifiers. Apply builds the next snapshot from a Change, all or
// nothing, copying only the groups of flows the change touches; the flows it
// leaves alone keep their Entry, and so their counters (a replace leaves
// alone the flows it gives exactly as installed, as ovs-ofctl
// replace-flows does). Recompile rebuilds
// the programs whose ports changed after a port was added or removed. Each
// table's classifier is a tuple space search: one hash table per distinct mask (the
// flow's mask plus the in_port bytes when it names a port), visited highest
// rank first, stopping as soon as no remaining mask can beat the best hit.
// A flow's rank is steer.MakeRank(priority, uint32(ID)): at equal priority
// the flow installed first wins, as in the XDP program. Each hash table has a
// small Bloom filter in front, so a mask that does not hold the key costs a
// hash and one cached word.
//
// Cache is a poller's exact-match cache in front of the classifier (full key
// to Entry, misses included). A new snapshot invalidates it at no cost: each
// slot remembers the generation of the snapshot that filled it.
//
// Pollers look keys up a burst at a time (Cache.LookupBatch, and
// Table.LookupBatch for the cache's misses), as Open vSwitch's dpcls does:
// the classifier visits each mask once for all the keys still pending, so
// the memory loads of different keys overlap instead of waiting in turn.
// Lookup, one key at a time, gives the same answers and is the reference.
//
// A Program runs a flow's actions with Open vSwitch semantics: every output
// sends the packet as rewritten so far (Run returns at each output, and says
// whether it is the last, so the poller copies the frame only for the
// others); output:PORT to the input port is skipped (only in_port sends a
// packet back); rewrites patch the IPv4, TCP and UDP checksums
// incrementally (RFC 1624; a UDP checksum of 0 over IPv4 stays 0). VLAN:
// push_vlan inserts a tag into the frame's headroom, copying the VID and PCP
// of the outer tag if there is one (OpenFlow 1.3); mod_vlan_vid and
// mod_vlan_pcp on an untagged frame push an 802.1Q tag whose other field is
// 0, as OVS does; strip_vlan pops the outer tag. mod_nw_tos sets the DSCP
// bits of the IPv4 TOS or the IPv6 traffic class, mod_nw_ecn their ECN
// bits. dec_ttl drops (counted,
// DropDecTTLZero) a packet whose TTL or hop limit is 0 or 1. A rewrite whose
// header the frame lacks (mod_tp_dst on a later fragment, mod_nw_src on
// IPv6) does nothing. An output to a port that is gone counts a
// DropPortGone and the program goes on.
//
// # Tables, groups and the pipeline
//
// A Table snapshot holds every OpenFlow table (0..MaxTable, each with its
// own classifier) and the groups (Group: all, select, indirect,
// fast_failover, in ovs-ofctl add-group syntax, ParseGroup). A packet
// starts in table 0; goto_table continues the lookup in a later table (a
// miss there drops, DropTableMiss), resubmit looks a table up, runs the
// flow and comes back (a miss does nothing), group runs the buckets its
// type picks, each on its own copy of the packet (a bucket's rewrites are
// not seen after it). Bucket actions are an OpenFlow action set and must be
// written in the order it runs (see Bucket). Lookups see the packet as the
// actions before them rewrote it. Translations are bounded (MaxDepth,
// MaxResubmits); past the bounds the packet is dropped (DropTooDeep).
//
// Select groups pick by weighted rendezvous hashing over the packet's
// 5-tuple: a flow sticks to its bucket, weights hold, and when a bucket's
// watch port dies only that bucket's flows move (and come back when it
// lives). fast_failover takes the first bucket whose watch port is live.
// Which ports are dead is part of the snapshot (WithDeadPorts), so a change
// of liveness is a new generation that every poller's cache sees at once.
//
// Translate (pipeline.go) walks the pipeline once per key and flattens it
// into a Result: one Program of plain ops (clone ops for buckets that need a
// copy) and the flows, buckets and tables to credit. The Cache keeps the
// Result per key, so a cached packet costs the same however many tables it
// crosses. The key tells what each rewrite does to it (steer's parse flags
// say whether a second VLAN tag or the L4 header was there); only VLAN
// pushes and pops on frames with two tags need the frame, and such keys are
// translated per packet (Result.PerPacket, TranslateFrame). Trace shows
// every step for one packet, and changes nothing.
//
// Steering compiles a snapshot into the XDP program's steering table (masks
// in visit order with stable IDs, one rule per mask and masked key, the
// verdict of the best flow), and DiffSteering says how to move the kernel's
// maps from one table to the next without the XDP program redirecting a
// packet userspace has no flow for (see SteeringDiff for the order). A
// snapshot that Apply or Recompile made from another knows
// which of table 0's masked keys the change touched (up to 4096), and
// SteeringDelta gives just their rules before and after, what DiffSteering
// would find by comparing every rule: a small change to a large table
// costs its keys, not the table.
//
// The XDP fast path runs a table-0 flow itself when its program compiles
// to an action record (steer.NewRecord: rewrites the XDP program does, then
// exactly one output or in_port): Entry.Verdict is then
// steer.VerdictForward and Entry.FastPath gives the record, or the reason
// the flow stays in userspace ("group", "several_outputs", "later_table",
// ...). The record is the program's own ops, which the XDP program runs
// with Program.Run's semantics; a differential test in package bpf holds
// the two executors to the same bytes.
//
// A Table and everything it returns may be read by any number of goroutines;
// only Entry counters change, through atomics (Entry.Hit). A Cache, a Packet
// and a Layout belong to one goroutine.
package flowtable
