/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xvs.h: the ABI shared by the XDP program and userspace.
 *
 * Every struct here has a byte-for-byte twin in Go, in package
 * flowtable/steer (Key, Rule, Op, Record) and in package bpf (the map
 * layouts). Change both together; bpf's tests check the sizes, offsets and
 * enum values against this object's BTF.
 */
#ifndef XVS_H
#define XVS_H

#include <linux/types.h>

#define XVS_MAX_MASKS   32      /* masks the steering classifier walks */
#define XVS_MAX_PORTS   256     /* ofport numbers 1..255; 0 = unknown */
#define XVS_MAX_QUEUES  64      /* RX queues per port */
#define XVS_MAX_RULES   262144  /* steering rules (old + new during a sync) */
#define XVS_MAX_OPS     16      /* ops of an action record */
#define XVS_MAX_RECORDS 16384   /* action record slots */
#define XVS_PORT_CACHE  4096    /* slots of the ifindex -> ofport array in front of ports */
#define XVS_EMC_SHIFT   16      /* most exact-match cache entries per CPU, log2 (emc.h) */
#define XVS_EMC_SLOTS   (1 << XVS_EMC_SHIFT) /* the loader may size the map smaller */

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

/* Steering verdicts. */
enum xvs_verdict {
	XVS_VERDICT_PASS     = 0, /* to the host stack */
	XVS_VERDICT_REDIRECT = 1, /* to the port's AF_XDP socket for this queue */
	XVS_VERDICT_DROP     = 2, /* dropped in XDP */
	XVS_VERDICT_FORWARD  = 3, /* run the action record rule.arg, send out of its port */
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
	__u32 arg;              /* FORWARD: the action record's slot; else 0 */
	__u64 flow_id;          /* the flow the rule belongs to */
	/* Hits of a drop or pass rule, counted by the program (redirected
	 * packets are counted in userspace, forwarded ones per record slot).
	 * Zeroed whenever userspace writes the rule. */
	__u64 packets;
	__u64 bytes;
};                              /* 40 bytes */

/*
 * The action encoding (steer.Op) shared with flowtable's programs. A record
 * holds only the codes below XVS_OP_USERSPACE that rewrite, then one output
 * or in_port. b and val are in host byte order; arg in network order.
 */
enum xvs_opcode {
	XVS_OP_DROP          = 0,
	XVS_OP_OUTPUT        = 1,  /* val: ofport */
	XVS_OP_IN_PORT       = 2,
	XVS_OP_GONE          = 3,
	XVS_OP_KERNEL        = 4,
	XVS_OP_SET_DL_SRC    = 5,  /* arg[0:6] */
	XVS_OP_SET_DL_DST    = 6,  /* arg[0:6] */
	XVS_OP_SET_NW_SRC    = 7,  /* arg[0:4] */
	XVS_OP_SET_NW_DST    = 8,  /* arg[0:4] */
	XVS_OP_SET_NW_TOS    = 9,  /* a: DSCP << 2 */
	XVS_OP_SET_TP_SRC    = 10, /* b */
	XVS_OP_SET_TP_DST    = 11, /* b */
	XVS_OP_PUSH_VLAN     = 12, /* b: TPID */
	XVS_OP_SET_VLAN_VID  = 13, /* b */
	XVS_OP_SET_VLAN_PCP  = 14, /* a */
	XVS_OP_STRIP_VLAN    = 15,
	XVS_OP_DEC_TTL       = 16,
	XVS_OP_SET_NW_ECN    = 17, /* a: ECN bits */
	XVS_OP_USERSPACE     = 128, /* codes from here on never reach a record */
};

struct xvs_op {
	__u8  code;             /* enum xvs_opcode */
	__u8  a;
	__u16 b;
	__u32 val;
	__u8  arg[16];
};                              /* 24 bytes */

/* xvs_record flags: what the ops touch. */
#define XVS_REC_L4      0x01    /* the TCP/UDP header or its checksum */
#define XVS_REC_TP      0x02    /* a TCP/UDP port */

/*
 * A flow's action record: rewrites, then one output or in_port (the last
 * op). Userspace never writes a record a rule points at, nor one a program
 * run may still read: a changed flow gets a new slot.
 */
struct xvs_record {
	__u64 flow_id;          /* must equal the rule's flow_id */
	__u8  n;                /* ops in use, 1..XVS_MAX_OPS */
	__u8  dec_ttl;          /* dec_ttl ops: a TTL not above this goes to userspace */
	__u8  grow;             /* bytes VLAN pushes may add in front */
	__u8  flags;            /* XVS_REC_* */
	__u32 pad;
	struct xvs_op ops[XVS_MAX_OPS];
};                              /* 400 bytes */

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

/* Per-port counters: struct xvs_port_counters, indexed by ofport in a per-CPU
 * array (one lookup per frame). The program counts each frame once, under
 * its outcome; it leaves XVS_CNT_RX at 0 and userspace fills it in as the
 * sum of the outcomes (all but XVS_CNT_FORWARD_FALLBACK). */
enum xvs_counter {
	XVS_CNT_RX = 0,           /* packets seen by the program: the outcomes' sum */
	XVS_CNT_PASS_NOMATCH,     /* no rule matched: to the kernel */
	XVS_CNT_PASS_RULE,        /* a rule said kernel */
	XVS_CNT_REDIRECT,         /* redirected to an AF_XDP socket */
	XVS_CNT_REDIRECT_NOSOCK,  /* a rule said redirect, but no socket on that queue: passed */
	XVS_CNT_DROP,             /* a rule said drop */
	XVS_CNT_MALFORMED,        /* truncated or malformed headers: passed */
	XVS_CNT_FORWARD,          /* a record ran: sent out of its output port */
	XVS_CNT_FORWARD_ERROR,    /* a record ran, the output's devmap slot was gone: dropped */
	XVS_CNT_FORWARD_FALLBACK, /* not an outcome: a forward rule's packet went to userspace */
	XVS_CNT_MAX,
};

struct xvs_counter_value {
	__u64 packets;
	__u64 bytes;
};

struct xvs_port_counters {
	struct xvs_counter_value c[XVS_CNT_MAX];
};

#endif /* XVS_H */
