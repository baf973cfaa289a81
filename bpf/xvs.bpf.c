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

/* port * XVS_CNT_MAX + counter -> packets and bytes, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_MAX_PORTS * XVS_CNT_MAX);
	__type(key, __u32);
	__type(value, struct xvs_counter_value);
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
#define ETH_P_8021Q_   0x8100
#define ETH_P_8021AD_  0x88a8
#define ETH_P_IPV6_    0x86dd
#define PROTO_ICMP     1
#define PROTO_TCP      6
#define PROTO_UDP      17
#define PROTO_ICMPV6   58

enum parse_status {
	PARSE_OK = 0,
	PARSE_MALFORMED = 1,
};

static __always_inline int is_vlan(__be16 type)
{
	return type == bpf_htons(ETH_P_8021Q_) || type == bpf_htons(ETH_P_8021AD_);
}

/* TCP and UDP ports of the header at l4, whose IP payload holds plen bytes. */
static __always_inline void parse_tcpudp(__u8 *l4, __u32 plen, __u8 proto,
					 void *data_end, struct xvs_key *k)
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
	k->tp_src = *(__be16 *)(l4 + 0);
	k->tp_dst = *(__be16 *)(l4 + 2);
	k->flags |= XVS_FLAG_L4;
}

/* ICMP or ICMPv6 type and code as 16-bit big-endian values. */
static __always_inline void parse_icmp(__u8 *l4, __u32 plen, void *data_end,
				       struct xvs_key *k)
{
	if (plen < 4 || (void *)(l4 + 4) > data_end)
		return;
	k->tp_src = bpf_htons((__u16)l4[0]);
	k->tp_dst = bpf_htons((__u16)l4[1]);
	k->flags |= XVS_FLAG_L4;
}

static __always_inline int parse_ipv4(__u8 *ip, void *data_end, struct xvs_key *k)
{
	if ((void *)(ip + 20) > data_end)
		return PARSE_MALFORMED;
	__u32 remain = (__u32)((long)data_end - (long)ip);
	__u32 hlen = (__u32)(ip[0] & 0x0f) * 4;
	__u32 tot = bpf_ntohs(*(__be16 *)(ip + 2));
	if (hlen < 20 || hlen > remain || tot < hlen || tot > remain)
		return PARSE_MALFORMED;

	__u8 proto = ip[9];
	k->nw_proto = proto;
	k->nw_tos = ip[1];
	k->nw_src[0] = *(__be32 *)(ip + 12);
	k->nw_dst[0] = *(__be32 *)(ip + 16);

	__u16 frag = bpf_ntohs(*(__be16 *)(ip + 6));
	if (frag & 0x3fff) { /* MF or a fragment offset */
		k->nw_frag = XVS_FRAG_ANY;
		if (frag & 0x1fff) {
			k->nw_frag |= XVS_FRAG_LATER;
			return PARSE_OK;
		}
	}

	__u8 *l4 = ip + hlen;
	__u32 plen = tot - hlen;
	if (proto == PROTO_ICMP)
		parse_icmp(l4, plen, data_end, k);
	else
		parse_tcpudp(l4, plen, proto, data_end, k);
	return PARSE_OK;
}

static __always_inline int parse_ipv6(__u8 *ip, void *data_end, struct xvs_key *k)
{
	if ((void *)(ip + 40) > data_end)
		return PARSE_MALFORMED;
	__u32 remain = (__u32)((long)data_end - (long)ip);
	__u32 plen = bpf_ntohs(*(__be16 *)(ip + 4));
	if (40 + plen > remain)
		return PARSE_MALFORMED;

	__u8 proto = ip[6];
	k->nw_proto = proto;
	k->nw_tos = (__u8)((ip[0] << 4) | (ip[1] >> 4));
	__builtin_memcpy(k->nw_src, ip + 8, 16);
	__builtin_memcpy(k->nw_dst, ip + 24, 16);

	__u8 *l4 = ip + 40;
	if (proto == PROTO_ICMPV6)
		parse_icmp(l4, plen, data_end, k);
	else
		parse_tcpudp(l4, plen, proto, data_end, k);
	return PARSE_OK;
}

/* Ethernet/IPv4 ARP only; anything else leaves the L3 fields zero. */
static __always_inline void parse_arp(__u8 *arp, void *data_end, struct xvs_key *k)
{
	if ((void *)(arp + 28) > data_end)
		return;
	if (*(__be16 *)(arp + 0) != bpf_htons(1) ||
	    *(__be16 *)(arp + 2) != bpf_htons(ETH_P_IPV4_) ||
	    arp[4] != 6 || arp[5] != 4)
		return;
	k->nw_proto = arp[7];
	__builtin_memcpy(&k->nw_src[0], arp + 14, 4);
	__builtin_memcpy(&k->nw_dst[0], arp + 24, 4);
}

/*
 * parse fills k (zeroed by the caller, in_port set) from the frame. On
 * PARSE_MALFORMED, k holds the fields parsed before the fault.
 */
static __always_inline int parse(void *data, void *data_end, struct xvs_key *k)
{
	__u8 *eth = data;
	if ((void *)(eth + ETH_HLEN_) > data_end)
		return PARSE_MALFORMED;
	__builtin_memcpy(k->dl_dst, eth, 6);
	__builtin_memcpy(k->dl_src, eth + 6, 6);

	__u8 *p = eth + 12; /* the EtherType (or TPID) */
	__be16 type = *(__be16 *)p;
	if (is_vlan(type)) {
		if ((void *)(p + 6) > data_end)
			return PARSE_MALFORMED;
		__be16 tci = *(__be16 *)(p + 2);
		k->vlan_tci = (tci & bpf_htons(0xefff)) | bpf_htons(0x1000);
		type = *(__be16 *)(p + 4);
		p += 4;
		if (is_vlan(type)) {
			if ((void *)(p + 6) > data_end)
				return PARSE_MALFORMED;
			k->flags |= XVS_FLAG_VLAN2;
			type = *(__be16 *)(p + 4);
			p += 4;
		}
	}
	k->dl_type = type;

	__u8 *l3 = p + 2;
	if (type == bpf_htons(ETH_P_IPV4_))
		return parse_ipv4(l3, data_end, k);
	if (type == bpf_htons(ETH_P_IPV6_))
		return parse_ipv6(l3, data_end, k);
	if (type == bpf_htons(ETH_P_ARP_))
		parse_arp(l3, data_end, k);
	return PARSE_OK;
}

static __always_inline void count(__u32 port, __u32 c, __u64 len)
{
	if (dry_run)
		return;
	__u32 idx = port * XVS_CNT_MAX + c;
	struct xvs_counter_value *v = bpf_map_lookup_elem(&counters, &idx);
	if (v) {
		v->packets++;
		v->bytes += len;
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
static __always_inline int to_socket(struct xdp_md *ctx, __u32 port, __u32 len)
{
	__u32 q = ctx->rx_queue_index;
	if (q < XVS_MAX_QUEUES) {
		/* The helper looks the socket up now and returns the fallback
		 * action (XDP_PASS) when the slot is empty. */
		long act = bpf_redirect_map(&xsks, port * XVS_MAX_QUEUES + q, XDP_PASS);
		if (act == XDP_REDIRECT) {
			count(port, XVS_CNT_REDIRECT, len);
			return XDP_REDIRECT;
		}
	}
	count(port, XVS_CNT_REDIRECT_NOSOCK, len);
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

	__builtin_memset(&key, 0, sizeof(key));
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 port = XVS_MAX_PORTS;
	__u32 slot = ifindex % XVS_PORT_CACHE;
	__u64 *pc = bpf_map_lookup_elem(&port_cache, &slot);
	if (pc && (__u32)(*pc >> 32) == ifindex) {
		port = (__u32)*pc;
	} else {
		__u32 *pp = bpf_map_lookup_elem(&ports, &ifindex);
		if (pp)
			port = *pp;
	}
	if (port >= XVS_MAX_PORTS) {
		count(0, XVS_CNT_RX, len);
		count(0, XVS_CNT_PASS_NOMATCH, len);
		if (trace_enabled)
			record(ctx, &key, &m, XVS_TRACE_UNKNOWN_PORT, len);
		return XDP_PASS;
	}
	key.in_port = port;
	count(port, XVS_CNT_RX, len);

	if (parse(data, data_end, &key) != PARSE_OK) {
		count(port, XVS_CNT_MALFORMED, len);
		if (trace_enabled)
			record(ctx, &key, &m, XVS_TRACE_MALFORMED, len);
		return XDP_PASS;
	}

	classify_cached(&key, &m);
	if (trace_enabled)
		record(ctx, &key, &m, XVS_TRACE_OK, len);

	if (!m.hit) {
		count(port, XVS_CNT_PASS_NOMATCH, len);
		return XDP_PASS;
	}
	switch (m.verdict) {
	case XVS_VERDICT_REDIRECT:
		return to_socket(ctx, port, len);
	case XVS_VERDICT_FORWARD: {
		struct fp_args a = {.port = port, .len = len, .flow_id = m.flow_id, .slot = m.arg};
		int fp = fast_path(ctx, &key, &a);
		if (trace_enabled)
			record_fp(fp, a.out);
		if (fp == FP_FORWARDED) {
			count(port, XVS_CNT_FORWARD, len);
			return XDP_REDIRECT;
		}
		if (fp == FP_ERROR) {
			count(port, XVS_CNT_FORWARD_ERROR, len);
			return XDP_DROP;
		}
		count(port, XVS_CNT_FORWARD_FALLBACK, len);
		return to_socket(ctx, port, len);
	}
	case XVS_VERDICT_DROP:
		count(port, XVS_CNT_DROP, len);
		count_rule(m.rule, len);
		return XDP_DROP;
	default:
		/* XVS_VERDICT_PASS, and verdicts this program does not know. */
		count(port, XVS_CNT_PASS_RULE, len);
		count_rule(m.rule, len);
		return XDP_PASS;
	}
}
