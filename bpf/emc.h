/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * emc.h: an exact-match cache in front of the steering classifier, included
 * by xvs.bpf.c.
 *
 * Classifying a key costs a hash of 72 bytes per mask walked (jhash: about
 * half the program's time when one mask is walked). Each CPU keeps the
 * results of recent keys in a direct-mapped array indexed by a cheap hash of
 * the key: a hit costs eight word compares.
 *
 * An entry is valid only under the steering generation it was computed in.
 * Userspace bumps the generation (map "steer_gen") after every change to the
 * rules or the mask order has been written. A run reads the generation
 * before it classifies, so an entry tagged with the current generation was
 * computed from rules at least as new as the last change: the cache never
 * answers what the classifier would not answer now. Only results that need
 * no rule pointer are kept: no match, redirect and forward (drop and kernel
 * rules count their hits on the rule itself).
 *
 * An entry is 128 bytes, two whole cache lines: with 104 most entries
 * straddled three, and a hit in a cache bigger than the CPU's caches pays
 * every line. Keys of many active flows keep missing a small cache (4096
 * slots answered 10k active 5-tuples at a fifth of the one-flow rate), so
 * the loader sizes it per CPU from a memory budget (bpf/loader.go
 * emcShiftFor), up to XVS_EMC_SLOTS, and sets emc_shift to match.
 */
#ifndef XVS_EMC_H
#define XVS_EMC_H

struct xvs_emc_entry {
	struct xvs_key key;     /*  0 */
	__u64 gen;              /* 64: steering generation; 0: empty */
	__u64 flow_id;          /* 72 */
	__u64 rank;             /* 80 */
	__u32 arg;              /* 88 */
	__u32 mask_id;          /* 92 */
	__u8  hit;              /* 96: a rule matched (else no match: pass) */
	__u8  verdict;          /* 97 */
	__u8  pad[30];          /* 98 */
};                              /* 128 bytes */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_EMC_SLOTS);
	__type(key, __u32);
	__type(value, struct xvs_emc_entry);
} emc SEC(".maps");

/* The steering generation: bumped by userspace after each rule or mask
 * order change; 0 until the first. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} steer_gen SEC(".maps");

/*
 * When the active keys are many more than the cache holds, nearly every
 * lookup misses and its fill evicts a live entry of another key: the
 * lookup and the fill cost two cache lines that are rarely in the CPU's
 * caches, on top of the classification they did not save (measured with
 * 100k distinct active 5-tuples over 65536 slots: 810 ns a run with the
 * cache, 607 without; with 10k, 337 with it, 446 without). So each CPU
 * judges its cache over windows of EMC_WINDOW lookups: when more than half
 * of a window's lookups found their slot holding another key of the
 * current generation (a conflict, not a cold or stale slot), the next
 * EMC_SKIP frames are classified without the cache, and then another
 * window looks again (and fills what it misses, so a working set that
 * shrank fills the cache again within a few windows). Only which frames
 * use the cache changes: its answers stay those of the classifier.
 */
#define EMC_WINDOW 256
#define EMC_SKIP   (15 * EMC_WINDOW)

struct xvs_emc_judge {
	__u32 lookups;          /* in this window */
	__u32 conflicts;        /* of them: the slot held another live key */
	__u32 skip;             /* frames left to classify without the cache */
	__u32 asides;           /* windows that turned the cache off (wraps) */
};                              /* 16 bytes */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_emc_judge);
} emc_judge SEC(".maps");

/* emc_judge_window counts one lookup (conflict: it evicts a live entry of
 * another key) and, at a window's end, decides whether to skip. */
static __always_inline void emc_judge_window(struct xvs_emc_judge *j, int conflict)
{
	j->lookups++;
	j->conflicts += conflict;
	if (j->lookups < EMC_WINDOW)
		return;
	if (j->conflicts * 2 > j->lookups) {
		j->skip = EMC_SKIP;
		j->asides++;
	}
	j->lookups = 0;
	j->conflicts = 0;
}

/* log2 of the emc map's entries: set by the loader, at most XVS_EMC_SHIFT. */
volatile const __u32 emc_shift = XVS_EMC_SHIFT;

/*
 * emc_slot: the key's words folded into one, then a multiplicative hash's
 * top bits (a weak hash is enough for a cache: a collision costs a
 * classification, no more). The IPv4 addresses sit at the same offset of
 * two words: the destination's is turned by 32 bits and both are mixed by a
 * multiply before the rest goes in, so neither swapping them nor a
 * difference that cancels against the ports or in_port keeps the slot.
 */
static __always_inline __u32 emc_slot(const __u64 *w)
{
	__u64 ip = (w[3] ^ (w[5] << 32 | w[5] >> 32)) * 0xff51afd7ed558ccdULL;
	__u64 h = w[0] ^ w[1] ^ w[2] ^ w[4] ^ w[6] ^ w[7] ^ ip;
	return (__u32)((h * 0x9e3779b97f4a7c15ULL) >> (64 - emc_shift));
}

static __always_inline int emc_same(const __u64 *a, const __u64 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) |
		(a[4] ^ b[4]) | (a[5] ^ b[5]) | (a[6] ^ b[6]) | (a[7] ^ b[7])) == 0;
}

/*
 * classify_cached is classify with the cache in front: m gets the winning
 * rule's verdict, arg and flow (m->rule only on a miss, so drop and kernel
 * verdicts, which are never cached, always have it).
 */
static __always_inline void classify_cached(const struct xvs_key *key, struct match *m)
{
	__u32 zero = 0;
	__u64 *gp = bpf_map_lookup_elem(&steer_gen, &zero);
	__u64 gen = gp ? *(volatile __u64 *)gp : 0;
	/* A dry run neither judges nor skips: it looks as the cache is. */
	struct xvs_emc_judge *j = dry_run ? NULL : bpf_map_lookup_elem(&emc_judge, &zero);
	struct xvs_emc_entry *e = NULL;
	const __u64 *kw = (const __u64 *)key;
	if (j && j->skip) {
		/* Skipping: e stays NULL, so the classifier answers and
		 * nothing is filled. */
		j->skip--;
	} else {
		__u32 slot = emc_slot(kw);
		/* The key escapes here, so the compare below reads it again
		 * from the stack instead of keeping the hash's eight loads
		 * alive in spill slots across the lookup. */
		asm volatile("" : : "r"(kw) : "memory");
		e = bpf_map_lookup_elem(&emc, &slot);
	}
	if (e && gen && e->gen == gen && emc_same((const __u64 *)&e->key, kw)) {
		m->hit = e->hit;
		m->verdict = e->verdict;
		m->arg = e->arg;
		m->flow_id = e->flow_id;
		if (trace_enabled) {
			m->rank = e->rank;
			m->mask_id = e->mask_id;
			m->cached = 1;
		}
		if (j)
			emc_judge_window(j, 0);
		return;
	}
	if (j && e && gen)
		emc_judge_window(j, e->gen == gen);
	classify(key, m);
	if (m->rule) {
		m->arg = m->rule->arg;
		m->flow_id = m->rule->flow_id;
	}
	if (!e || !gen || dry_run) /* a dry run leaves the cache as it was */
		return;
	if (m->hit && m->verdict != XVS_VERDICT_REDIRECT && m->verdict != XVS_VERDICT_FORWARD)
		return;
	__builtin_memcpy(&e->key, key, sizeof(*key));
	e->gen = gen;
	e->flow_id = m->flow_id;
	e->rank = m->rank;
	e->arg = m->arg;
	e->mask_id = m->mask_id;
	e->hit = m->hit;
	e->verdict = m->verdict;
}

#endif /* XVS_EMC_H */
