//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xvs.bpf.c: the XDP program of every xvs port.
 *
 * It parses a frame into struct xvs_key (the rules are in xvs.h and in
 * flowtable.Extract, which must agree bit for bit), classifies the key with
 * the steering classifier (a list of masks, each with a hash of masked keys
 * to ranked verdicts) and then redirects the frame to the port's AF_XDP
 * socket for the RX queue, drops it, passes it to the kernel, or runs the
 * flow's action record and sends it out of another port (fastpath.h).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xvs.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ifindex -> ofport of the ports this program serves. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} ports SEC(".maps");

/*
 * ifindex % XVS_PORT_CACHE -> ifindex << 32 | ofport: the ports map as an
 * array, so the per-frame lookup costs no hash (about a tenth of the
 * fast path's time). Userspace fills a slot only for the first ifindex that
 * falls into it; the others are looked up in ports.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_PORT_CACHE);
	__type(key, __u32);
	__type(value, __u64);
} port_cache SEC(".maps");

/* ofport * XVS_MAX_QUEUES + rx queue -> AF_XDP socket. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XVS_MAX_PORTS * XVS_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* mask id -> mask. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_MAX_MASKS);
	__type(key, __u32);
	__type(value, struct xvs_key);
} masks SEC(".maps");

/* Two visit orders of the masks; active names the live one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct xvs_mask_order);
} mask_order SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} active SEC(".maps");

/*
 * (mask id, masked key) -> ranked verdict. Not preallocated: a preallocated
 * table of XVS_MAX_RULES entries pins tens of megabytes while most switches
 * hold a few rules, and lookups cost the same either way.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xvs_rule_key);
	__type(value, struct xvs_rule_value);
} rules SEC(".maps");

/* ofport -> its counters (packets and bytes), per CPU: a frame looks its
 * port's up once and counts its outcome there (xvs.h, enum xvs_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct xvs_port_counters);
} counters SEC(".maps");

/*
 * Tests only: when trace_enabled is set at load time, every run records what
 * it saw and decided in the single entry of trace. With the default 0 the
 * verifier removes the recording as dead code.
 */
enum xvs_trace_status {
	XVS_TRACE_OK = 0,
	XVS_TRACE_MALFORMED = 1,
	XVS_TRACE_UNKNOWN_PORT = 2,
};

struct xvs_trace {
	struct xvs_key key;     /*  0: the extracted key */
	__u64 rank;             /* 64: rank of the winning rule */
	__u32 status;           /* 72: enum xvs_trace_status */
	__u32 mask_id;          /* 76: mask of the winning rule */
	__u32 visited;          /* 80: masks looked up */
	__u8  hit;              /* 84: a rule matched */
	__u8  verdict;          /* 85: its verdict */
	__u8  fp;               /* 86: enum fp_result */
	__u8  emc;              /* 87: the exact-match cache answered */
	__u32 ingress_ifindex;  /* 88 */
	__u32 len;              /* 92: frame length */
	__u32 out_port;         /* 96: the fast path's output ofport */
	__u32 pad2;             /* 100 */
};                              /* 104 bytes */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_trace);
} trace SEC(".maps");

volatile const __u32 trace_enabled = 0;

/*
 * A dry run counts nothing: the instance xvsctl trace runs (sharing every
 * map but trace with the live program) is loaded with dry_run set, so a
 * trace leaves every counter as it was. With the default 0 the verifier
 * keeps the counting and drops the test.
 */
volatile const __u32 dry_run = 0;
/* Never read: it puts the ABI's enums into the object's BTF, where a test
 * compares them with their Go twins in steer. */
struct xvs_abi_enums {
	enum xvs_opcode op;
	enum xvs_verdict verdict;
	enum xvs_counter counter;
};
volatile const struct xvs_abi_enums xvs_abi_enums;

#define ETH_HLEN_      14
#define ETH_P_IPV4_    0x0800
#define ETH_P_ARP_     0x0806
#define ETH_P_RARP_    0x8035
#define ETH_P_MIN_     0x0600  /* smaller type fields are an 802.3 length */
#define DL_TYPE_NONE_  0x05ff  /* 802.3 without SNAP, as OVS's FLOW_DL_TYPE_NONE */
#define ETH_P_8021Q_   0x8100
#define ETH_P_8021AD_  0x88a8
#define ETH_P_IPV6_    0x86dd
#define PROTO_ICMP     1
#define PROTO_TCP      6
#define PROTO_UDP      17
#define PROTO_ICMPV6   58
#define PROTO_HOPOPTS  0
#define PROTO_ROUTING  43
#define PROTO_FRAGMENT 44
#define PROTO_AH       51
#define PROTO_DSTOPTS  60
#define ICMP_MIN_LEN   8       /* OVS reads ICMP type and code from 8 bytes on */
/* IPv6 extension headers walked (flowtable.MaxIPv6ExtHeaders): the verifier
 * needs a bound. */
#define IPV6_MAX_EXT   8

enum parse_status {
	PARSE_OK = 0,
	PARSE_MALFORMED = 1,
};

static __always_inline int is_vlan(__be16 type)
{
	return type == bpf_htons(ETH_P_8021Q_) || type == bpf_htons(ETH_P_8021AD_);
}

/*
 * The parser builds the key as its eight 64-bit words (w[0] = bytes 0..7,
 * little-endian, as struct xvs_key lays them out) and parse stores each
 * word once: the classifier's hash and compares read the key back a word
 * at a time right away, and a load that spans several narrower stores
 * cannot be forwarded from them (it waits until they reach the cache: a
 * stall per word, about a quarter of the program's time when the fields
 * were stored one by one). Fields that sit next to each other in the frame
 * and in the key are read with one load.
 */
#define KW_L2          2        /* w[2]: dl_type | vlan_tci << 16 | ... */
#define KW_PROTO_SHIFT 32
#define KW_TOS_SHIFT   40
#define KW_FRAG_SHIFT  48
#define KW_FLAGS_SHIFT 56

static __always_inline void kw_flag(__u64 *w, __u8 flag)
{
	w[KW_L2] |= (__u64)flag << KW_FLAGS_SHIFT;
}

static __always_inline void kw_frag(__u64 *w, __u8 frag)
{
	w[KW_L2] |= (__u64)frag << KW_FRAG_SHIFT;
}

/* TCP and UDP ports of the header at l4, whose IP payload holds plen bytes. */
static __always_inline void parse_tcpudp(__u8 *l4, __u32 plen, __u8 proto,
					 void *data_end, __u64 *w)
{
	if (proto == PROTO_TCP) {
		if (plen < 20 || (void *)(l4 + 20) > data_end)
			return;
		__u32 doff = (__u32)(l4[12] >> 4) * 4;
		if (doff < 20 || doff > plen)
			return;
	} else if (proto == PROTO_UDP) {
		if (plen < 8 || (void *)(l4 + 8) > data_end)
			return;
	} else {
		return;
	}
	w[7] = *(__u32 *)l4; /* tp_src, tp_dst as on the wire */
	kw_flag(w, XVS_FLAG_L4);
}

/* ICMP or ICMPv6 type and code as 16-bit big-endian values. */
static __always_inline void parse_icmp(__u8 *l4, __u32 plen, void *data_end, __u64 *w)
{
	if (plen < ICMP_MIN_LEN || (void *)(l4 + ICMP_MIN_LEN) > data_end)
		return;
	w[7] = (__u64)l4[0] << 8 | (__u64)l4[1] << 24;
	kw_flag(w, XVS_FLAG_L4);
}

/*
 * pkt_off returns p's offset from data, computed by the program as the
 * difference of the two packet pointers: a number the verifier does not
 * know. Each way through the parser puts its headers at other offsets; were
 * they constants to the verifier, the fast path's uses of them would keep
 * the states of those ways apart all through the classifier (they prune
 * together when the offsets are unknown), and the program would need more
 * than the verifier's million instructions. The fast path checks every
 * offset it uses against a bound of its own (fp_at).
 */
static __always_inline __u32 pkt_off(const void *data, const void *p)
{
	asm volatile("" : "+r"(p)); /* else the compiler folds it to a constant */
	return (__u32)((long)p - (long)data);
}

/* Where parse found the network and transport headers, from the frame's
 * first byte: the fast path rewrites there (an LLC/SNAP header or IPv6
 * extension headers put them where the key alone does not say). l4 is set
 * when the key's XVS_FLAG_L4 is. */
struct hdr_offs {
	__u32 l3;
	__u32 l4;
};

static __always_inline int parse_ipv4(void *data, __u8 *ip, void *data_end, __u64 *w,
				      struct hdr_offs *o)
{
	if ((void *)(ip + 20) > data_end)
		return PARSE_MALFORMED;
	__u32 remain = (__u32)((long)data_end - (long)ip);
	__u32 hlen = (__u32)(ip[0] & 0x0f) * 4;
	__u32 tot = bpf_ntohs(*(__be16 *)(ip + 2));
	if (hlen < 20 || hlen > remain || tot < hlen || tot > remain)
		return PARSE_MALFORMED;

	__u8 proto = ip[9];
	w[KW_L2] |= (__u64)proto << KW_PROTO_SHIFT | (__u64)ip[1] << KW_TOS_SHIFT;
	w[3] = *(__u32 *)(ip + 12); /* nw_src[0] */
	w[5] = *(__u32 *)(ip + 16); /* nw_dst[0] */

	__u16 frag = bpf_ntohs(*(__be16 *)(ip + 6));
	if (frag & 0x3fff) { /* MF or a fragment offset */
		if (frag & 0x1fff) {
			kw_frag(w, XVS_FRAG_ANY | XVS_FRAG_LATER);
			return PARSE_OK;
		}
		kw_frag(w, XVS_FRAG_ANY);
	}

	__u8 *l4 = ip + hlen;
	__u32 plen = tot - hlen;
	o->l4 = pkt_off(data, l4);
	if (proto == PROTO_ICMP)
		parse_icmp(l4, plen, data_end, w);
	else
		parse_tcpudp(l4, plen, proto, data_end, w);
	return PARSE_OK;
}

/*
 * parse_ipv6 walks up to IPV6_MAX_EXT extension headers (hop-by-hop,
 * routing, fragment, AH, destination options) to the transport header, as
 * OVS does (flowtable.Extract has the rules). nw_proto goes into the key
 * only once the walk ends: a malformed extension header leaves it 0.
 */
static __always_inline int parse_ipv6(void *data, __u8 *ip, void *data_end, __u64 *w,
				      struct hdr_offs *o)
{
	if ((void *)(ip + 40) > data_end)
		return PARSE_MALFORMED;
	__u32 remain = (__u32)((long)data_end - (long)ip);
	__u32 plen = bpf_ntohs(*(__be16 *)(ip + 4));
	if (40 + plen > remain)
		return PARSE_MALFORMED;

	__u8 proto = ip[6];
	__u8 tc = (__u8)((ip[0] << 4) | (ip[1] >> 4));
	w[KW_L2] |= (__u64)tc << KW_TOS_SHIFT;
	w[3] = *(__u64 *)(ip + 8);  /* nw_src */
	w[4] = *(__u64 *)(ip + 16);
	w[5] = *(__u64 *)(ip + 24); /* nw_dst */
	w[6] = *(__u64 *)(ip + 32);

	/* off counts from the end of the fixed header, within plen. */
	__u32 off = 0;
	for (int i = 0; i < IPV6_MAX_EXT; i++) {
		if (proto != PROTO_HOPOPTS && proto != PROTO_ROUTING &&
		    proto != PROTO_DSTOPTS && proto != PROTO_AH &&
		    proto != PROTO_FRAGMENT)
			break;
		if (off > 0xffff || plen < off || plen - off < 8)
			return PARSE_MALFORMED;
		__u8 *h = ip + 40 + off;
		if ((void *)(h + 8) > data_end)
			return PARSE_MALFORMED;
		__u32 n;
		if (proto == PROTO_FRAGMENT) {
			__u16 offlg = bpf_ntohs(*(__be16 *)(h + 2));
			if (offlg) {
				if (offlg & 0xfff8) {
					w[KW_L2] |= (__u64)PROTO_FRAGMENT << KW_PROTO_SHIFT |
						    (__u64)(XVS_FRAG_ANY | XVS_FRAG_LATER) << KW_FRAG_SHIFT |
						    (__u64)XVS_FLAG_LAYOUT << KW_FLAGS_SHIFT;
					return PARSE_OK;
				}
				kw_frag(w, XVS_FRAG_ANY);
			}
			n = 8;
		} else if (proto == PROTO_AH) {
			n = ((__u32)h[1] + 2) * 4;
		} else {
			n = ((__u32)h[1] + 1) * 8;
		}
		if (plen - off < n)
			return PARSE_MALFORMED;
		proto = h[0];
		off += n;
	}
	w[KW_L2] |= (__u64)proto << KW_PROTO_SHIFT;
	if (off)
		kw_flag(w, XVS_FLAG_LAYOUT);

	if (off > 0xffff)
		return PARSE_MALFORMED;
	__u8 *l4 = ip + 40 + off;
	o->l4 = pkt_off(data, l4);
	if (proto == PROTO_ICMPV6)
		parse_icmp(l4, plen - off, data_end, w);
	else
		parse_tcpudp(l4, plen - off, proto, data_end, w);
	return PARSE_OK;
}

/* Ethernet/IPv4 ARP (and RARP) only; anything else leaves the L3 fields
 * zero. Opcodes above 255 read as 0, as in OVS. */
static __always_inline void parse_arp(__u8 *arp, void *data_end, __u64 *w)
{
	if ((void *)(arp + 28) > data_end)
		return;
	if (*(__be16 *)(arp + 0) != bpf_htons(1) ||
	    *(__be16 *)(arp + 2) != bpf_htons(ETH_P_IPV4_) ||
	    arp[4] != 6 || arp[5] != 4)
		return;
	if (arp[6] == 0)
		w[KW_L2] |= (__u64)arp[7] << KW_PROTO_SHIFT;
	w[3] = *(__u32 *)(arp + 14); /* SPA */
	w[5] = *(__u32 *)(arp + 24); /* TPA */
}

/*
 * parse_llc_snap reads the LLC/SNAP header of an 802.3 frame at p: the
 * SNAP type, moving *l3 past the header, or DL_TYPE_NONE_.
 */
static __always_inline __be16 parse_llc_snap(__u8 *p, void *data_end, __u8 **l3)
{
	if ((void *)(p + 8) > data_end)
		return bpf_htons(DL_TYPE_NONE_);
	if (p[0] != 0xaa || p[1] != 0xaa || p[2] != 0x03 ||
	    p[3] != 0 || p[4] != 0 || p[5] != 0)
		return bpf_htons(DL_TYPE_NONE_);
	__be16 type = *(__be16 *)(p + 6);
	if (bpf_ntohs(type) < ETH_P_MIN_)
		return bpf_htons(DL_TYPE_NONE_);
	*l3 = p + 8;
	return type;
}

/* parse_words fills w (zero but for in_port in w[0]) and o from the frame.
 * On PARSE_MALFORMED, w holds the fields parsed before the fault. */
static __always_inline int parse_words(void *data, void *data_end, __u64 *w,
				       struct hdr_offs *o)
{
	__u8 *eth = data;
	if ((void *)(eth + ETH_HLEN_) > data_end)
		return PARSE_MALFORMED;
	w[0] |= (__u64)*(__u32 *)eth << 32;  /* dl_dst[0..3] */
	w[1] = *(__u64 *)(eth + 4);          /* dl_dst[4..5], dl_src */

	__u8 *p = eth + 12; /* the EtherType (or TPID) */
	__be16 type = *(__be16 *)p;
	if (is_vlan(type)) {
		if ((void *)(p + 6) > data_end)
			return PARSE_MALFORMED;
		__be16 tci = *(__be16 *)(p + 2);
		w[KW_L2] = (__u64)(__u16)((tci & bpf_htons(0xefff)) | bpf_htons(0x1000)) << 16;
		type = *(__be16 *)(p + 4);
		p += 4;
		if (is_vlan(type)) {
			if ((void *)(p + 6) > data_end)
				return PARSE_MALFORMED;
			kw_flag(w, XVS_FLAG_VLAN2);
			type = *(__be16 *)(p + 4);
			p += 4;
		}
	}
	__u8 *l3 = p + 2;
	if (bpf_ntohs(type) < ETH_P_MIN_) {
		type = parse_llc_snap(l3, data_end, &l3);
		if (type != bpf_htons(DL_TYPE_NONE_))
			kw_flag(w, XVS_FLAG_LAYOUT);
	}
	w[KW_L2] |= (__u16)type;
	o->l3 = pkt_off(data, l3);

	if (type == bpf_htons(ETH_P_IPV4_))
		return parse_ipv4(data, l3, data_end, w, o);
	if (type == bpf_htons(ETH_P_IPV6_))
		return parse_ipv6(data, l3, data_end, w, o);
	if (type == bpf_htons(ETH_P_ARP_) || type == bpf_htons(ETH_P_RARP_))
		parse_arp(l3, data_end, w);
	return PARSE_OK;
}

/*
 * parse fills k from the frame of port in_port, all of it (on
 * PARSE_MALFORMED, the fields parsed before the fault and zeros), and o
 * with the header offsets found.
 */
static __always_inline int parse(void *data, void *data_end, __u32 in_port,
				 struct xvs_key *k, struct hdr_offs *o)
{
	__u64 w[8] = {in_port};
	int r = parse_words(data, data_end, w, o);
	__u64 *kw = (__u64 *)k;
	kw[0] = w[0];
	kw[1] = w[1];
	kw[2] = w[2];
	kw[3] = w[3];
	kw[4] = w[4];
	kw[5] = w[5];
	kw[6] = w[6];
	kw[7] = w[7];
	return r;
}

/* port_counters returns the counters of port on this CPU, NULL in a dry run
 * (which counts nothing). */
static __always_inline struct xvs_port_counters *port_counters(__u32 port)
{
	if (dry_run)
		return NULL;
	return bpf_map_lookup_elem(&counters, &port);
}

static __always_inline void count(struct xvs_port_counters *pc, enum xvs_counter c, __u32 len)
{
	if (pc) {
		pc->c[c].packets++;
		pc->c[c].bytes += len;
	}
}

#include "fastpath.h"

struct match {
	struct xvs_rule_value *rule; /* the winning rule, for its hit counters (not from the cache) */
	__u64 rank;
	__u64 flow_id;               /* the rule's flow and arg */
	__u32 arg;
	__u32 mask_id;
	__u32 visited;
	__u8  hit;
	__u8  verdict;
	__u8  cached;                /* the exact-match cache answered */
};

/*
 * count_rule counts a hit of a drop or pass rule on the rule itself: those
 * packets never reach userspace, so this is the only place their flow's
 * counters can come from. The rule is shared by all CPUs, hence atomics.
 */
static __always_inline void count_rule(struct xvs_rule_value *r, __u32 len)
{
	if (dry_run)
		return;
	if (!r)
		return;
	__sync_fetch_and_add(&r->packets, 1);
	__sync_fetch_and_add(&r->bytes, len);
}

/*
 * classify walks the live mask order, highest max_rank first, and keeps the
 * highest-ranked matching rule (the first one found on a tie). It stops as
 * soon as the next mask's max_rank cannot beat the best rule found.
 */
static __always_inline void classify(const struct xvs_key *key, struct match *m)
{
	__u32 zero = 0;
	__u32 *act = bpf_map_lookup_elem(&active, &zero);
	if (!act)
		return;
	__u32 slot = *act & 1;
	struct xvs_mask_order *ord = bpf_map_lookup_elem(&mask_order, &slot);
	if (!ord)
		return;
	__u32 n = ord->n;

	struct xvs_rule_key rk __attribute__((aligned(8)));
	__builtin_memset(&rk, 0, sizeof(rk));
	const __u64 *kw = (const __u64 *)key;
	__u64 *rw = (__u64 *)&rk.key;

	for (__u32 i = 0; i < XVS_MAX_MASKS; i++) {
		if (i >= n)
			break;
		if (m->hit && ord->m[i].max_rank <= m->rank)
			break;
		__u32 id = ord->m[i].id;
		const __u64 *mw = bpf_map_lookup_elem(&masks, &id);
		if (!mw)
			continue;
		rk.mask_id = id;
		rw[0] = kw[0] & mw[0];
		rw[1] = kw[1] & mw[1];
		rw[2] = kw[2] & mw[2];
		rw[3] = kw[3] & mw[3];
		rw[4] = kw[4] & mw[4];
		rw[5] = kw[5] & mw[5];
		rw[6] = kw[6] & mw[6];
		rw[7] = kw[7] & mw[7];
		m->visited++;
		struct xvs_rule_value *v = bpf_map_lookup_elem(&rules, &rk);
		if (v && (!m->hit || v->rank > m->rank)) {
			m->hit = 1;
			m->rule = v;
			m->rank = v->rank;
			m->verdict = v->verdict;
			m->mask_id = id;
		}
	}
}

#include "emc.h"

static __always_inline void record(struct xdp_md *ctx, const struct xvs_key *key,
				   const struct match *m, __u32 status, __u32 len)
{
	__u32 zero = 0;
	struct xvs_trace *t = bpf_map_lookup_elem(&trace, &zero);
	if (!t)
		return;
	__builtin_memcpy(&t->key, key, sizeof(*key));
	t->rank = m->rank;
	t->status = status;
	t->mask_id = m->mask_id;
	t->visited = m->visited;
	t->hit = m->hit;
	t->verdict = m->verdict;
	t->fp = FP_NONE;
	t->emc = m->cached;
	t->ingress_ifindex = ctx->ingress_ifindex;
	t->len = len;
	t->out_port = 0;
	t->pad2 = 0;
}

static __always_inline void record_fp(int fp, __u32 out)
{
	__u32 zero = 0;
	struct xvs_trace *t = bpf_map_lookup_elem(&trace, &zero);
	if (t) {
		t->fp = (__u8)fp;
		t->out_port = out;
	}
}

/* to_socket redirects the frame to the AF_XDP socket of (port, RX queue),
 * or passes it to the kernel when that queue has none. */
static __always_inline int to_socket(struct xdp_md *ctx, __u32 port, struct xvs_port_counters *pc, __u32 len)
{
	__u32 q = ctx->rx_queue_index;
	if (q < XVS_MAX_QUEUES) {
		/* The helper looks the socket up now and returns the fallback
		 * action (XDP_PASS) when the slot is empty. */
		long act = bpf_redirect_map(&xsks, port * XVS_MAX_QUEUES + q, XDP_PASS);
		if (act == XDP_REDIRECT) {
			count(pc, XVS_CNT_REDIRECT, len);
			return XDP_REDIRECT;
		}
	}
	count(pc, XVS_CNT_REDIRECT_NOSOCK, len);
	return XDP_PASS;
}

SEC("xdp")
int xvs_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = (__u32)((long)data_end - (long)data);
	struct xvs_key key __attribute__((aligned(8)));
	struct match m = {};
	struct hdr_offs offs = {};

	__u32 ifindex = ctx->ingress_ifindex;
	__u32 port = XVS_MAX_PORTS;
	__u32 slot = ifindex % XVS_PORT_CACHE;
	__u64 *pcache = bpf_map_lookup_elem(&port_cache, &slot);
	if (pcache && (__u32)(*pcache >> 32) == ifindex) {
		port = (__u32)*pcache;
	} else {
		__u32 *pp = bpf_map_lookup_elem(&ports, &ifindex);
		if (pp)
			port = *pp;
	}
	if (port >= XVS_MAX_PORTS) {
		__builtin_memset(&key, 0, sizeof(key));
		count(port_counters(0), XVS_CNT_PASS_NOMATCH, len);
		if (trace_enabled)
			record(ctx, &key, &m, XVS_TRACE_UNKNOWN_PORT, len);
		return XDP_PASS;
	}
	/* Every way out counts one outcome, and rx is their sum (userspace
	 * adds them up): a frame costs one counter update, not two. */
	struct xvs_port_counters *pc = port_counters(port);

	/* parse writes all of key (the unknown port's path zeroes it). */
	if (parse(data, data_end, port, &key, &offs) != PARSE_OK) {
		count(pc, XVS_CNT_MALFORMED, len);
		if (trace_enabled)
			record(ctx, &key, &m, XVS_TRACE_MALFORMED, len);
		return XDP_PASS;
	}

	classify_cached(&key, &m);
	if (trace_enabled)
		record(ctx, &key, &m, XVS_TRACE_OK, len);

	if (!m.hit) {
		count(pc, XVS_CNT_PASS_NOMATCH, len);
		return XDP_PASS;
	}
	switch (m.verdict) {
	case XVS_VERDICT_REDIRECT:
		return to_socket(ctx, port, pc, len);
	case XVS_VERDICT_FORWARD: {
		struct fp_args a = {.port = port, .len = len, .flow_id = m.flow_id, .slot = m.arg,
				     .l3 = offs.l3, .l4 = offs.l4};
		int fp = fast_path(ctx, &key, &a);
		if (trace_enabled)
			record_fp(fp, a.out);
		if (fp == FP_FORWARDED) {
			count(pc, XVS_CNT_FORWARD, len);
			return XDP_REDIRECT;
		}
		if (fp == FP_ERROR) {
			count(pc, XVS_CNT_FORWARD_ERROR, len);
			return XDP_DROP;
		}
		count(pc, XVS_CNT_FORWARD_FALLBACK, len);
		return to_socket(ctx, port, pc, len);
	}
	case XVS_VERDICT_DROP:
		count(pc, XVS_CNT_DROP, len);
		count_rule(m.rule, len);
		return XDP_DROP;
	default:
		/* XVS_VERDICT_PASS, and verdicts this program does not know. */
		count(pc, XVS_CNT_PASS_RULE, len);
		count_rule(m.rule, len);
		return XDP_PASS;
	}
}
