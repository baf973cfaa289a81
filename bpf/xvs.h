/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xvs.h: the ABI shared by the XDP program and userspace.
 *
 * Every struct here has a byte-for-byte twin in Go, in package
 * flowtable/steer (Key, RuleKey, RuleValue, MaskOrder). Change both together;
 * steer's tests check the sizes and offsets.
 */
#ifndef XVS_H
#define XVS_H

#include <linux/types.h>

#define XVS_MAX_MASKS   32      /* masks the steering classifier walks */
#define XVS_MAX_PORTS   256     /* ofport numbers 1..255; 0 = unknown */
#define XVS_MAX_QUEUES  64      /* RX queues per port */
#define XVS_MAX_RULES   262144  /* steering rules (old + new during a sync) */

/* nw_frag bits. */
#define XVS_FRAG_ANY    0x01    /* the packet is an IP fragment */
#define XVS_FRAG_LATER  0x02    /* ... and not the first one: no L4 fields */

/* flags bits: masks never cover them, so they do not change what matches;
 * an exact key cache in userspace reads them. */
#define XVS_FLAG_VLAN2  0x01    /* a second VLAN tag was read */
#define XVS_FLAG_L4     0x02    /* the TCP, UDP or ICMP header was read */
#define XVS_FLAG_LAYOUT 0x04    /* LLC/SNAP before L3, or IPv6 extension headers
                                 * before L4: offsets not derivable from the key */

/*
 * The packed packet key. Multi-byte packet fields are in network byte order,
 * exactly as on the wire; in_port is in host order.
 */
struct xvs_key {
	__u32  in_port;     /*  0: ofport of the receiving port */
	__u8   dl_dst[6];   /*  4 */
	__u8   dl_src[6];   /* 10 */
	__be16 dl_type;     /* 16: EtherType after at most two VLAN tags */
	__be16 vlan_tci;    /* 18: outer tag: PCP<<13 | 0x1000 (present) | VID; 0 = untagged */
	__u8   nw_proto;    /* 20: IP protocol; ARP: the opcode, 0 above 255 */
	__u8   nw_tos;      /* 21: IPv4 TOS / IPv6 traffic class (DSCP<<2 | ECN) */
	__u8   nw_frag;     /* 22: XVS_FRAG_* */
	__u8   flags;       /* 23: XVS_FLAG_*: what the parser read; never matched */
	__be32 nw_src[4];   /* 24: IPv4 source (or ARP SPA) in [0]; IPv6 source in all */
	__be32 nw_dst[4];   /* 40: IPv4 destination (or ARP TPA) in [0]; IPv6 destination */
	__be16 tp_src;      /* 56: TCP/UDP source port; ICMP/ICMPv6 type */
	__be16 tp_dst;      /* 58: TCP/UDP destination port; ICMP/ICMPv6 code */
	__u32  pad1;        /* 60: always 0 */
};                          /* 64 bytes */

/* Steering verdicts. Room is left (rule value arg) for an action payload, so
 * an XDP fast path (redirect to a devmap) is an addition. */
enum xvs_verdict {
	XVS_VERDICT_PASS     = 0, /* to the host stack */
	XVS_VERDICT_REDIRECT = 1, /* to the port's AF_XDP socket for this queue */
	XVS_VERDICT_DROP     = 2, /* dropped in XDP */
};

/* Key of the rules hash map: a mask id and the key masked with that mask. */
struct xvs_rule_key {
	__u32 mask_id;
	__u32 pad;              /* always 0 */
	struct xvs_key key;
};                              /* 72 bytes */

/* The rank orders rules: priority << 32 | tie-break. Highest rank wins. */
struct xvs_rule_value {
	__u64 rank;
	__u8  verdict;          /* enum xvs_verdict */
	__u8  pad[3];
	__u32 arg;              /* verdict payload; 0 today */
	/* Hits of a drop or pass rule, counted by the program (redirected
	 * packets are counted in userspace). Zeroed whenever userspace writes
	 * the rule. */
	__u64 packets;
	__u64 bytes;
};                              /* 32 bytes */

/* One visit order of the masks, highest max_rank first. Two of these live in
 * the order map; the active one is named by the config map. */
struct xvs_mask_ref {
	__u32 id;               /* index into the masks map */
	__u32 pad;
	__u64 max_rank;         /* highest rank of any rule under this mask */
};

struct xvs_mask_order {
	__u32 n;                /* masks in use, <= XVS_MAX_MASKS */
	__u32 pad;
	struct xvs_mask_ref m[XVS_MAX_MASKS];
};

/* Per-port counters: index port * XVS_CNT_MAX + counter in a per-CPU array. */
enum xvs_counter {
	XVS_CNT_RX = 0,           /* packets seen by the program */
	XVS_CNT_PASS_NOMATCH,     /* no rule matched: to the kernel */
	XVS_CNT_PASS_RULE,        /* a rule said kernel */
	XVS_CNT_REDIRECT,         /* redirected to an AF_XDP socket */
	XVS_CNT_REDIRECT_NOSOCK,  /* a rule said redirect, but no socket on that queue: passed */
	XVS_CNT_DROP,             /* a rule said drop */
	XVS_CNT_MALFORMED,        /* truncated or malformed headers: passed */
	XVS_CNT_MAX,
};

struct xvs_counter_value {
	__u64 packets;
	__u64 bytes;
};

#endif /* XVS_H */
