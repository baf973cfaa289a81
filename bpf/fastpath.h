/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fastpath.h: the XDP fast path, included by xvs.bpf.c.
 *
 * A FORWARD rule names an action record (struct xvs_record): rewrites, then
 * one output or in_port, in the op encoding flowtable's programs use
 * (steer.Op). fast_path runs it with the semantics of flowtable's
 * Program.Run, byte for byte (a differential test holds both to that), and
 * sends the frame out of the output port's devmap slot.
 *
 * Everything that could make the record hand the frame to userspace is
 * decided before the first byte is written, so a frame handed over is the
 * frame as received and userspace does exactly what it does without a fast
 * path: a record from another flow (a stale rule), an output to the input
 * port (userspace skips it), an output port with no devmap slot (it cannot
 * take redirected frames), a TTL that dec_ttl would see expire, an IP
 * fragment when an op touches the L4 header, a port rewrite without a
 * TCP/UDP header read, a TCP/UDP header to patch that IPv6 extension
 * headers put past FP_MAX_L4, no headroom for the VLAN pushes.
 *
 * While the record runs, offsets are counted from data, which is moved back
 * by the record's grow bytes first: VLAN pushes and pops then move only the
 * frame start (s); the IP and L4 headers stay where they are. The slack left
 * in front is cut off at the end.
 */
#ifndef XVS_FASTPATH_H
#define XVS_FASTPATH_H

/*
 * The action records and their hit counters are paged: slot s is entry
 * s % XVS_RECORD_PAGE of the map in entry s / XVS_RECORD_PAGE of the array
 * of maps "records" (and "record_hits"). The loader creates the pages for
 * Options.Records slots; GrowRecords (bpf/grow.go) adds pages into empty
 * entries, so the records grow without a new program and without moving a
 * record or a counter. Every page has the template's size, so the verifier
 * inlines the lookup in a page as it does in a plain array. A slot whose
 * page is not there is a slot past the end: NULL, as from an array.
 *
 * A page of hit counters is a plain array with a row of XVS_RECORD_PAGE
 * counters for each possible CPU (the loader sizes it), each CPU writing
 * only its own row: per-CPU counters, but made with one allocation, where
 * a per-CPU array allocates each entry on its own (4096 of them took 2.6
 * ms, a grow to 180k slots 112 ms of them).
 */
#define XVS_RECORD_PAGE_SHIFT 12
#define XVS_RECORD_PAGE       (1 << XVS_RECORD_PAGE_SHIFT) /* slots of a page */
#define XVS_RECORD_PAGES      ((1 << 20) / XVS_RECORD_PAGE) /* steer.RecordSlotsLimit */

/* slot % XVS_RECORD_PAGE -> action record. Mappable: userspace writes the
 * records of a sync through a mapping of the page (bpf.Objects.PutRecords),
 * not a syscall per record. */
struct record_page {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XVS_RECORD_PAGE);
	__type(key, __u32);
	__type(value, struct xvs_record);
};

/* slot / XVS_RECORD_PAGE -> a page of records. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XVS_RECORD_PAGES);
	__type(key, __u32);
	__array(values, struct record_page);
} records SEC(".maps");

/* cpu * XVS_RECORD_PAGE + slot % XVS_RECORD_PAGE -> packets and bytes the
 * record forwarded on that CPU. The loader multiplies max_entries by the
 * possible CPUs. Mapped into userspace, which reads the counters (every
 * harvest reads them all) and clears them in place. */
struct record_hits_page {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XVS_RECORD_PAGE);
	__type(key, __u32);
	__type(value, struct xvs_counter_value);
};

/* slot / XVS_RECORD_PAGE -> a page of hit counters. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XVS_RECORD_PAGES);
	__type(key, __u32);
	__array(values, struct record_hits_page);
} record_hits SEC(".maps");

/* record_page_of returns the page of slot in the array of pages outer, and
 * sets *off to the slot's entry in it; NULL when the page is not there. */
static __always_inline void *record_page_of(void *outer, __u32 slot, __u32 *off)
{
	__u32 page = slot >> XVS_RECORD_PAGE_SHIFT;
	*off = slot & (XVS_RECORD_PAGE - 1);
	return bpf_map_lookup_elem(outer, &page);
}

/* ofport -> ifindex, for the ports that take redirected frames. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, XVS_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

/* What fast_path did (also the trace's fp field). */
enum fp_result {
	FP_NONE = 0,      /* not a forward rule */
	FP_FORWARDED = 1, /* rewritten, redirected to the output's devmap slot */
	FP_USER = 2,      /* untouched: hand to userspace */
	FP_STALE = 3,     /* the rule's record is not its flow's: hand to userspace */
	FP_ERROR = 4,     /* failed after writing: drop */
};

enum { FP_L3_NONE, FP_L3_IPV4, FP_L3_IPV6 };
enum { FP_L4_NONE, FP_L4_TCP, FP_L4_UDP, FP_L4_ICMP };

/* Bounds every offset, for the verifier: grow and pops keep s below 128.
 * The network header starts at most 30 bytes in (two tags, LLC/SNAP), an
 * IPv4 transport header at most 90; IPv6 extension headers can put it
 * anywhere, so a frame whose TCP/UDP header the record would write starts
 * after FP_MAX_L4 goes to userspace (with the record's grow, its checksum
 * must lie within FP_MAX_OFF). */
#define FP_MAX_OFF 255
#define FP_MAX_L3  30
#define FP_MAX_L4  (FP_MAX_OFF - 4 * XVS_MAX_OPS - 20)

struct fp_frame {
	__u32 s;      /* frame start, from data */
	__u32 l3;     /* IPv4/IPv6 header, from data; valid when l3type */
	__u32 l4;     /* TCP/UDP/ICMP header, from data; valid when l4type */
	__u8  l3type; /* FP_L3_* */
	__u8  l4type; /* FP_L4_* */
};

/* fp_at returns the n bytes at off from data, or NULL. */
static __always_inline __u8 *fp_at(struct xdp_md *ctx, __u32 off, __u32 n)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	/* Opaque to the compiler, so the check below is made on the register
	 * that is then added: a bound the compiler knows from elsewhere (l3 <=
	 * FP_MAX_L3 on another copy of it) would let it drop the check, and
	 * the verifier would see an unbounded offset. */
	asm volatile("" : "+r"(off));
	if (off > FP_MAX_OFF)
		return NULL;
	__u8 *p = (__u8 *)data + off;
	if ((void *)(p + n) > end)
		return NULL;
	return p;
}

/* RFC 1624 eqn. 3, exactly as flowtable's csumReplace16/32. */
static __always_inline __u16 fp_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

static __always_inline __u16 fp_csum16(__u16 c, __u16 old, __u16 new)
{
	return (__u16)~fp_fold((__u32)(__u16)~c + (__u32)(__u16)~old + (__u32)new);
}

static __always_inline __u16 fp_csum32(__u16 c, __u32 old, __u32 new)
{
	__u32 s = (__u32)(__u16)~c + (__u32)(__u16)~(old >> 16) + (__u32)(__u16)~old +
		  (new >> 16) + (new & 0xffff);
	return (__u16)~fp_fold(s);
}

static __always_inline __u16 fp_get16(const __u8 *p) { return ((__u16)p[0] << 8) | p[1]; }

static __always_inline void fp_put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* fp_patch16 patches the checksum at p for a 16-bit word from old to new. */
static __always_inline void fp_patch16(__u8 *p, __u16 old, __u16 new)
{
	fp_put16(p, fp_csum16(fp_get16(p), old, new));
}

/* fp_l4_csum returns the TCP or UDP checksum, or NULL (flowtable's
 * rwL4Checksum). */
static __always_inline __u8 *fp_l4_csum(struct xdp_md *ctx, const struct fp_frame *f)
{
	if (f->l4type == FP_L4_TCP)
		return fp_at(ctx, f->l4 + 16, 2);
	if (f->l4type == FP_L4_UDP)
		return fp_at(ctx, f->l4 + 6, 2);
	return NULL;
}

/* fp_patch_l4 is rwPatchL4: an IPv4 UDP checksum of 0 stays 0, a computed
 * UDP checksum of 0 goes out as 0xffff. */
static __always_inline void fp_patch_l4(const struct fp_frame *f, __u8 *cs, __u32 old, __u32 new, int wide)
{
	__u16 c = fp_get16(cs);
	if (f->l4type == FP_L4_UDP && c == 0 && f->l3type == FP_L3_IPV4)
		return;
	if (wide)
		c = fp_csum32(c, old, new);
	else
		c = fp_csum16(c, (__u16)old, (__u16)new);
	if (f->l4type == FP_L4_UDP && c == 0)
		c = 0xffff;
	fp_put16(cs, c);
}

/* mod_nw_src (field 12) and mod_nw_dst (16): rwNwAddr. */
static __always_inline int fp_set_nw(struct xdp_md *ctx, const struct fp_frame *f, const __u8 *arg, int dst)
{
	if (f->l3type != FP_L3_IPV4)
		return 0;
	__u8 *ip = fp_at(ctx, f->l3, 20);
	if (!ip)
		return -1;
	__u8 *a = dst ? ip + 16 : ip + 12;
	__u32 old = ((__u32)fp_get16(a) << 16) | fp_get16(a + 2);
	__u32 new = ((__u32)fp_get16(arg) << 16) | fp_get16(arg + 2);
	if (old == new)
		return 0;
	__builtin_memcpy(a, arg, 4);
	fp_put16(ip + 10, fp_csum32(fp_get16(ip + 10), old, new));
	__u8 *cs = fp_l4_csum(ctx, f);
	if (cs)
		fp_patch_l4(f, cs, old, new, 1);
	return 0;
}

/* mod_nw_tos (mask 0xfc) and mod_nw_ecn (mask 3): rwNwTos. */
static __always_inline int fp_set_tos(struct xdp_md *ctx, const struct fp_frame *f, __u8 tos, __u8 mask)
{
	tos &= mask;
	if (f->l3type == FP_L3_IPV4) {
		__u8 *ip = fp_at(ctx, f->l3, 20);
		if (!ip)
			return -1;
		__u16 old = fp_get16(ip);
		ip[1] = (ip[1] & ~mask) | tos;
		fp_patch16(ip + 10, old, fp_get16(ip));
	} else if (f->l3type == FP_L3_IPV6) {
		__u8 *ip = fp_at(ctx, f->l3, 40);
		if (!ip)
			return -1;
		__u8 tc = (__u8)((ip[0] << 4) | (ip[1] >> 4));
		tc = (tc & ~mask) | tos;
		ip[0] = (ip[0] & 0xf0) | (tc >> 4);
		ip[1] = (ip[1] & 0x0f) | (__u8)(tc << 4);
	}
	return 0;
}

/* mod_tp_src (field 0) and mod_tp_dst (2): rwTpPort. */
static __always_inline int fp_set_tp(struct xdp_md *ctx, const struct fp_frame *f, __u16 port, int dst)
{
	__u8 *cs = fp_l4_csum(ctx, f);
	if (!cs)
		return 0;
	__u8 *l4 = fp_at(ctx, f->l4, 4);
	if (!l4)
		return -1;
	__u8 *p = dst ? l4 + 2 : l4;
	__u16 old = fp_get16(p);
	if (old == port)
		return 0;
	fp_put16(p, port);
	fp_patch_l4(f, cs, old, port, 0);
	return 0;
}

/* dec_ttl: rwDecTTL. fast_path made sure the TTL stays above 0. */
static __always_inline int fp_dec_ttl(struct xdp_md *ctx, const struct fp_frame *f)
{
	if (f->l3type == FP_L3_IPV4) {
		__u8 *ip = fp_at(ctx, f->l3, 20);
		if (!ip || ip[8] <= 1)
			return -1;
		__u16 old = fp_get16(ip + 8);
		ip[8]--;
		fp_patch16(ip + 10, old, old - 0x100);
	} else if (f->l3type == FP_L3_IPV6) {
		__u8 *ip = fp_at(ctx, f->l3, 40);
		if (!ip || ip[7] <= 1)
			return -1;
		ip[7]--;
	}
	return 0;
}

/* fp_tag returns the frame when it carries a VLAN tag (rwHasVLANTag), with
 * the 18 bytes up to the end of the tag readable. */
static __always_inline __u8 *fp_tag(struct xdp_md *ctx, const struct fp_frame *f)
{
	__u8 *p = fp_at(ctx, f->s, 18);
	if (p && is_vlan(*(__be16 *)(p + 12)))
		return p;
	return NULL;
}

/* fp_push inserts a tag after the MAC addresses, into the slack in front. */
static __always_inline int fp_push(struct xdp_md *ctx, struct fp_frame *f, __u16 tpid, __u16 tci)
{
	if (f->s < 4)
		return -1;
	__u8 *p = fp_at(ctx, f->s - 4, 18);
	if (!p)
		return -1;
	__u8 macs[12];
	__builtin_memcpy(macs, p + 4, 12);
	__builtin_memcpy(p, macs, 12);
	fp_put16(p + 12, tpid);
	fp_put16(p + 14, tci);
	f->s -= 4;
	return 0;
}

/* fp_pop removes the outer tag, if there is one (rwPopVLAN). */
static __always_inline int fp_pop(struct xdp_md *ctx, struct fp_frame *f)
{
	__u8 *p = fp_tag(ctx, f);
	if (!p)
		return 0;
	__u8 macs[12];
	__builtin_memcpy(macs, p, 12);
	__builtin_memcpy(p + 4, macs, 12);
	f->s += 4;
	return 0;
}

/* fp_vlan does push_vlan, mod_vlan_vid and mod_vlan_pcp. */
static __always_inline int fp_vlan(struct xdp_md *ctx, struct fp_frame *f, const struct xvs_op *op)
{
	__u8 *p = fp_tag(ctx, f);
	__u16 tci = p ? fp_get16(p + 14) : 0;
	switch (op->code) {
	case XVS_OP_PUSH_VLAN:
		return fp_push(ctx, f, op->b, tci & ~0x1000);
	case XVS_OP_SET_VLAN_VID:
		if (!p)
			return fp_push(ctx, f, ETH_P_8021Q_, op->b);
		fp_put16(p + 14, (tci & 0xf000) | op->b);
		return 0;
	default: /* XVS_OP_SET_VLAN_PCP */
		if (!p)
			return fp_push(ctx, f, ETH_P_8021Q_, (__u16)op->a << 13);
		fp_put16(p + 14, (tci & 0x1fff) | ((__u16)op->a << 13));
		return 0;
	}
}

/* fp_do_op runs one rewrite of a record: 0, or -1 when the frame is
 * damaged. It calls no helper that moves packet data. */
static __always_inline int fp_do_op(struct xdp_md *ctx, struct fp_frame *f, const struct xvs_op *op)
{
	__u8 *p;
	switch (op->code) {
	case XVS_OP_SET_DL_SRC:
	case XVS_OP_SET_DL_DST:
		p = fp_at(ctx, f->s, 12);
		if (!p)
			return -1;
		if (op->code == XVS_OP_SET_DL_SRC)
			__builtin_memcpy(p + 6, op->arg, 6);
		else
			__builtin_memcpy(p, op->arg, 6);
		return 0;
	case XVS_OP_SET_NW_SRC:
		return fp_set_nw(ctx, f, op->arg, 0);
	case XVS_OP_SET_NW_DST:
		return fp_set_nw(ctx, f, op->arg, 1);
	case XVS_OP_SET_NW_TOS:
		return fp_set_tos(ctx, f, op->a, 0xfc);
	case XVS_OP_SET_NW_ECN:
		return fp_set_tos(ctx, f, op->a, 0x03);
	case XVS_OP_SET_TP_SRC:
		return fp_set_tp(ctx, f, op->b, 0);
	case XVS_OP_SET_TP_DST:
		return fp_set_tp(ctx, f, op->b, 1);
	case XVS_OP_PUSH_VLAN:
	case XVS_OP_SET_VLAN_VID:
	case XVS_OP_SET_VLAN_PCP:
		return fp_vlan(ctx, f, op);
	case XVS_OP_STRIP_VLAN:
		return fp_pop(ctx, f);
	case XVS_OP_DEC_TTL:
		return fp_dec_ttl(ctx, f);
	}
	return -1; /* not a code of a record */
}

/*
 * fp_op is fp_do_op as a global function, so the verifier checks it once on
 * its own, for any frame state and any op, instead of once per path through
 * the record loop (which would not end).
 */
__attribute__((noinline)) int fp_op(struct xdp_md *ctx, struct fp_frame *f, const struct xvs_op *op)
{
	if (!ctx || !f || !op)
		return -1;
	return fp_do_op(ctx, f, op);
}

/* fp_count counts a frame a record forwarded (or damaged trying). */
static __always_inline void fp_count(__u32 slot, __u32 len)
{
	if (dry_run)
		return;
	__u32 off;
	void *page = record_page_of(&record_hits, slot, &off);
	if (!page)
		return;
	off += bpf_get_smp_processor_id() * XVS_RECORD_PAGE;
	struct xvs_counter_value *h = bpf_map_lookup_elem(page, &off);
	if (h) {
		h->packets++;
		h->bytes += len;
	}
}

/* fp_layout is flowtable's Layout of the frame: the header offsets parse()
 * found (past an LLC/SNAP header, past IPv6 extension headers), and from
 * the key the header types it read. */
static __always_inline void fp_layout(const struct xvs_key *k, __u32 l3, __u32 l4, struct fp_frame *f)
{
	f->l3 = l3;
	f->l4 = l4;
	if (k->dl_type == bpf_htons(ETH_P_IPV4_))
		f->l3type = FP_L3_IPV4;
	else if (k->dl_type == bpf_htons(ETH_P_IPV6_))
		f->l3type = FP_L3_IPV6;
	else
		return;
	if (!(k->flags & XVS_FLAG_L4))
		return;
	if (k->nw_proto == PROTO_TCP)
		f->l4type = FP_L4_TCP;
	else if (k->nw_proto == PROTO_UDP)
		f->l4type = FP_L4_UDP;
	else
		f->l4type = FP_L4_ICMP;
}

/* fp_ttl returns the IPv4 TTL or IPv6 hop limit, 256 for other frames. */
static __always_inline __u32 fp_ttl(struct xdp_md *ctx, const struct fp_frame *f)
{
	__u8 *ip;
	if (f->l3type == FP_L3_IPV4) {
		ip = fp_at(ctx, f->l3, 20);
		return ip ? ip[8] : 0;
	}
	if (f->l3type == FP_L3_IPV6) {
		ip = fp_at(ctx, f->l3, 40);
		return ip ? ip[7] : 0;
	}
	return 256;
}

/* What fast_path is given about a frame, and tells back. */
struct fp_args {
	__u64 flow_id; /* the forward rule's flow */
	__u32 slot;    /* ... and its record slot (arg) */
	__u32 port;    /* ofport the frame came in on */
	__u32 len;     /* frame length, for the record's counters */
	__u32 l3;      /* network header, from the frame's start (parse) */
	__u32 l4;      /* transport header, when the key's XVS_FLAG_L4 */
	__u32 out;     /* set: the output ofport */
};

/*
 * fp_begin sets up f for record rec on the frame with key k and its network
 * and transport headers at l3 and l4 (parse's hdr_offs), and says whether
 * the record may run on it: 0, or FP_USER (the frame is untouched).
 */
static __always_inline int fp_begin(struct xdp_md *ctx, const struct xvs_key *k,
				    const struct xvs_record *rec, __u32 l3, __u32 l4,
				    struct fp_frame *f)
{
	fp_layout(k, l3, l4, f);
	if (f->l3 > FP_MAX_L3)
		return FP_USER;
	if (rec->dec_ttl && fp_ttl(ctx, f) <= rec->dec_ttl)
		return FP_USER;
	if ((rec->flags & XVS_REC_L4) && (k->nw_frag & XVS_FRAG_ANY))
		return FP_USER;
	if ((rec->flags & XVS_REC_TP) && f->l4type != FP_L4_TCP && f->l4type != FP_L4_UDP)
		return FP_USER;
	if ((rec->flags & XVS_REC_L4) && (f->l4type == FP_L4_TCP || f->l4type == FP_L4_UDP) &&
	    f->l4 > FP_MAX_L4)
		return FP_USER;
	return 0;
}

/*
 * fp_rewrite runs the rewrites of record rec (ops 0..n-2; the last is the
 * output) on the frame with key k and its headers at l3 and l4, whose
 * redirect fast_path has set up. It returns 0 when the frame is rewritten,
 * or FP_USER (untouched), FP_STALE or FP_ERROR (damaged). A global
 * function: the verifier checks it once, for any record, instead of once
 * per way the classifier can reach it.
 */
__attribute__((noinline)) int fp_rewrite(struct xdp_md *ctx, const struct xvs_key *k,
					  const struct xvs_record *rec, __u32 l3, __u32 l4)
{
	if (!ctx || !k || !rec)
		return FP_STALE;
	__u32 n = rec->n;
	struct fp_frame f = {};
	int r = fp_begin(ctx, k, rec, l3, l4, &f);
	if (r)
		return r;
	__u32 grow = rec->grow;
	if (grow > 4 * XVS_MAX_OPS)
		return FP_STALE;
	if (grow) {
		if (bpf_xdp_adjust_head(ctx, -(int)grow))
			return FP_USER;
		f.s = grow;
		f.l3 += grow;
		f.l4 += grow;
	}

	/* From here on the frame is being written. The first rewrite runs
	 * inline, the others through fp_op. fast_path calls this only for
	 * n > 1. */
	if (n >= 2 && fp_do_op(ctx, &f, &rec->ops[0]))
		return FP_ERROR;
	for (__u32 i = 1; i < XVS_MAX_OPS - 1; i++) {
		if (i + 1 >= n)
			break;
		if (fp_op(ctx, &f, &rec->ops[i]))
			return FP_ERROR;
	}
	if (f.s && bpf_xdp_adjust_head(ctx, (int)f.s))
		return FP_ERROR;
	return 0;
}

/* fp_only_tp says whether rec is one mod_tp_src or mod_tp_dst and the
 * output, flagged as such and with nothing to push: the most common
 * rewrite, which fast_path runs inline (fp_rewrite_tp) instead of calling
 * fp_rewrite. */
static __always_inline int fp_only_tp(const struct xvs_record *rec, __u32 n)
{
	__u8 c = rec->ops[0].code;
	return n == 2 && rec->grow == 0 && rec->dec_ttl == 0 &&
	       rec->flags == (XVS_REC_L4 | XVS_REC_TP) &&
	       (c == XVS_OP_SET_TP_SRC || c == XVS_OP_SET_TP_DST);
}

/* fp_tp_patch writes port (as on the wire) to *pp and patches the checksum
 * at cp for it: fp_set_tp on words as on the wire (the one's-complement
 * sum, RFC 1071, comes out the same in either byte order, and 0 and
 * 0xffff read the same in both). keep0: a checksum of 0 stays 0 (IPv4
 * UDP); ones: a computed 0 goes out as 0xffff (UDP). */
static __always_inline void fp_tp_patch(__be16 *pp, __be16 *cp, __u16 port, int keep0, int ones)
{
	__u16 old = *pp;
	if (old == port)
		return;
	*pp = port;
	__u16 c = *cp;
	if (keep0 && c == 0)
		return;
	c = fp_csum16(c, old, port);
	if (ones && c == 0)
		c = 0xffff;
	*cp = c;
}

/*
 * fp_rewrite_tp is fp_rewrite for a record fp_only_tp accepts: fp_begin's
 * checks for such a record, then fp_set_tp on the header read once. What
 * the key says is read once, into f (fp_layout), and only f is tested
 * after that: a key field tested a second time, after a test that pinned
 * its value, makes the verifier track the key exactly, and then it no
 * longer merges the states of the parser's paths (over a million
 * instructions). For the same reason each protocol has a branch of its own
 * with constant offsets.
 */
static __always_inline int fp_rewrite_tp(struct xdp_md *ctx, const struct xvs_key *k,
					 const struct xvs_record *rec, __u32 l3, __u32 l4)
{
	struct fp_frame f = {};
	fp_layout(k, l3, l4, &f);
	if (f.l3 > FP_MAX_L3 || (k->nw_frag & XVS_FRAG_ANY) || f.l4 > FP_MAX_L4)
		return FP_USER;
	const struct xvs_op *op = &rec->ops[0];
	__u16 port = bpf_htons(op->b);
	int dst = op->code == XVS_OP_SET_TP_DST;
	/* When the header up to the end of its checksum is not all there,
	 * fp_set_tp finds no checksum and leaves the frame as it is. */
	__u8 *h;
	if (f.l4type == FP_L4_UDP) {
		h = fp_at(ctx, f.l4, 8);
		if (h)
			fp_tp_patch((__be16 *)(dst ? h + 2 : h), (__be16 *)(h + 6), port,
				    f.l3type == FP_L3_IPV4, 1);
	} else if (f.l4type == FP_L4_TCP) {
		h = fp_at(ctx, f.l4, 18);
		if (h)
			fp_tp_patch((__be16 *)(dst ? h + 2 : h), (__be16 *)(h + 16), port, 0, 0);
	} else {
		return FP_USER;
	}
	return 0;
}

/*
 * fast_path runs record a->slot for flow a->flow_id on the frame with key
 * k. On FP_FORWARDED the redirect to the output port is set up (return
 * XDP_REDIRECT), on FP_USER and FP_STALE the frame is untouched, on
 * FP_ERROR it is damaged (drop it). The redirect is set up first: it says
 * whether the output has a devmap slot before a byte is written (a frame
 * that then goes to userspace after all gets its socket's redirect
 * instead, and one dropped or passed none).
 */
static __always_inline int fast_path(struct xdp_md *ctx, const struct xvs_key *k, struct fp_args *a)
{
	__u32 slot = a->slot, off;
	/* No page for the slot (past the end), a record of another flow: the
	 * frame goes to userspace untouched. */
	void *page = record_page_of(&records, slot, &off);
	if (!page)
		return FP_STALE;
	struct xvs_record *rec = bpf_map_lookup_elem(page, &off);
	if (!rec || rec->flow_id != a->flow_id)
		return FP_STALE;
	__u32 n = rec->n;
	if (n == 0 || n > XVS_MAX_OPS)
		return FP_STALE;
	const struct xvs_op *last = &rec->ops[(n - 1) & (XVS_MAX_OPS - 1)];
	__u32 to;
	if (last->code == XVS_OP_OUTPUT) {
		to = last->val;
		if (to == a->port)
			return FP_USER; /* userspace skips it: nothing is sent */
	} else if (last->code == XVS_OP_IN_PORT) {
		to = a->port;
	} else {
		return FP_STALE;
	}
	a->out = to;
	if (bpf_redirect_map(&tx_ports, to, 0) != XDP_REDIRECT)
		return FP_USER;
	if (n > 1) {
		int r;
		if (fp_only_tp(rec, n))
			r = fp_rewrite_tp(ctx, k, rec, a->l3, a->l4);
		else
			r = fp_rewrite(ctx, k, rec, a->l3, a->l4);
		if (r)
			return r;
	}
	fp_count(slot, a->len);
	return FP_FORWARDED;
}

#endif /* XVS_FASTPATH_H */
