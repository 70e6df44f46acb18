/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Synthetic DMA trace generators (include/pegpu/dma_gen.h).
 *
 * A small discrete-event simulation.  "Sessions" (a driver load, a game, a
 * model load) issue DMA API calls at planned times; every buffer gets its
 * unmap time when it is created, and a min-heap releases buffers in time
 * order, so the output is sorted by timestamp without ever materialising
 * the trace.  Everything is seeded: one xoshiro256** stream per generator.
 *
 * The page model decides where buffers land in guest-physical memory,
 * which is what coalescing depends on.  Guest RAM is 4 KiB pages in 2 MiB
 * blocks (the buddy allocator's pageblocks).  foreign_pct of the pages are
 * held by the rest of the system (page cache, slab, other processes) for
 * the whole trace: half of the blocks carry twice that share at random
 * places, the other half none (the kernel keeps movable and unmovable
 * pageblocks apart, so clean blocks exist for huge pages).  Order-0 pages reach a driver
 * through a per-CPU list: the kernel pulls `window` pages at a time out of
 * a block, in address order, minus the ones other kernel users got first
 * (skip_pct), and hands them out in an order that churn has shuffled.  So
 * consecutive 4 KiB buffers sit close together (same 256 KiB region) but
 * are rarely adjacent.  Freed pages go back on top of the per-CPU list
 * (LIFO, up to pcp_high pages) and are handed out again first; beyond that
 * they return to the buddy allocator, which serves the smallest free order
 * first, i.e. refills from the holes of recently freed blocks before it
 * breaks up a fresh one (hole_reuse_pct of the time; 0 models an allocator
 * that always moves on).  Only when no such block is left does the stream
 * continue in the next block (adjacent_pct) or jump to another one.
 * Higher-order allocations (64 KiB, 2 MiB) are naturally aligned runs of
 * free pages, as the buddy allocator returns them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pegpu/dma_gen.h"

#define GP_SHIFT	12			/* guest page: 4 KiB */
#define GP_SIZE		(1u << GP_SHIFT)
#define BLOCK_SHIFT	9			/* 2 MiB pageblocks */
#define BLOCK_PAGES	(1u << BLOCK_SHIFT)
#define WINDOW_MAX	1024u
#define PCP_MAX		65536u
#define FREED_MAX	4096u			/* recently freed blocks remembered */
#define MAX_SLOTS	8u
#define NS_PER_MS	1000000ull
#define NS_PER_S	1000000000ull
#define CALL_NS		1000ull			/* between calls of one burst */
#define MIB		(1ull << 20)
#define NEVER		UINT64_MAX

static const char *const profile_names[PEGPU_GEN__COUNT] = {
	[PEGPU_GEN_NVIDIA_LOADING] = "nvidia-loading",
	[PEGPU_GEN_GAME_STREAMING] = "game-streaming",
	[PEGPU_GEN_LLM_LOAD] = "llm-load",
	[PEGPU_GEN_MIXED] = "mixed",
};

/* ---------------------------------------------------------------- */
/* randomness                                                        */
/* ---------------------------------------------------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t rng_next(struct rng *r)
{
	uint64_t res = rotl(r->s[1] * 5, 7) * 9;
	uint64_t t = r->s[1] << 17;

	r->s[2] ^= r->s[0];
	r->s[3] ^= r->s[1];
	r->s[1] ^= r->s[2];
	r->s[0] ^= r->s[3];
	r->s[2] ^= t;
	r->s[3] = rotl(r->s[3], 45);
	return res;
}

/* Uniform in [0, n), n > 0; the modulo bias is below 2^-40 for our n. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

static uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + rng_below(r, hi - lo + 1);
}

static bool rng_pct(struct rng *r, uint32_t pct)
{
	return rng_below(r, 100) < pct;
}

/*
 * ln(x) for x in (0, 1] without libm: scale into [0.5, 1], then
 * ln(m) = 2 atanh((m - 1) / (m + 1)), whose series converges fast for
 * |z| <= 1/3.  Only +, -, *, / so every host computes the same bits.
 */
static double ln_unit(double x)
{
	double z, z2, term, sum = 0;
	int e = 0, k;

	while (x < 0.5) {
		x *= 2;
		e++;
	}
	z = (x - 1) / (x + 1);
	z2 = z * z;
	term = z;
	for (k = 1; k < 41; k += 2) {
		sum += term / k;
		term *= z2;
	}
	return 2 * sum - e * 0.69314718055994530942;
}

/* Exponentially distributed with the given mean (same unit), capped at 20 means. */
static uint64_t rng_exp(struct rng *r, uint64_t mean)
{
	double u = (double)((rng_next(r) >> 11) + 1) * (1.0 / 9007199254740992.0);
	double v = -ln_unit(u) * (double)mean;

	if (v > 20.0 * (double)mean)
		v = 20.0 * (double)mean;
	return (uint64_t)v;
}

/* ---------------------------------------------------------------- */
/* state                                                             */
/* ---------------------------------------------------------------- */

struct gseg {
	uint64_t addr;
	uint32_t len;
};

enum { SRC_BUDDY = 0, SRC_KERN, SRC_USER };

struct gbuf {
	uint64_t id;
	uint64_t total;
	uint32_t nseg;
	uint32_t cap;
	uint8_t kind;
	uint8_t dir;
	uint8_t src;		/* where its order-0 pages go back to */
	struct gseg seg[];
};

struct heap_ent {
	uint64_t t;
	uint64_t seq;		/* ties release in creation order */
	struct gbuf *b;
};

/* An order-0 page stream (a per-CPU list): a LIFO stack of free pages. */
struct pagesrc {
	uint32_t skip_pct;
	uint64_t next;		/* next page of the current block to pull */
	uint64_t end;		/* end of the current block */
	uint32_t n;		/* pages on the list */
	uint64_t *win;		/* pcp_high entries */
};

enum sess_state {
	S_OFF = 0,
	S_NV_FW, S_NV_PINNED, S_NV_BURST,
	S_GS_PINNED, S_GS_FRAME,
	S_LLM_PINNED, S_LLM_CHUNK,
	S_END,
};

struct session {
	enum pegpu_gen_profile profile;
	enum sess_state state;
	uint64_t t;		/* time of the next call */
	uint64_t start;
	uint64_t end;		/* every buffer of the session is unmapped by then */
	uint64_t k;		/* calls made in the current state */
	uint64_t left;		/* calls left in the current burst */
	uint32_t bursts;	/* bursts done (nvidia); chunks done (llm) */
	uint32_t loads;		/* loads done (nvidia) */
	uint64_t burst_gap;	/* mean gap between bursts (nvidia) */
	/* llm: the whole pipeline is planned at session start */
	uint32_t nchunks;
	uint64_t *chunk_len;	/* bytes */
	uint64_t *chunk_start;
	uint64_t *chunk_done;
};

struct pegpu_gen {
	struct pegpu_gen_params p;
	struct rng rng;
	struct pegpu_gen_stats st;

	/* page model */
	uint64_t base_pg;	/* ram_base >> GP_SHIFT */
	uint64_t npages;
	uint32_t nblocks;
	uint64_t *used;		/* bitmap over npages */
	uint16_t *bused;	/* pages used per block */
	struct pagesrc kern;	/* kernel allocations */
	struct pagesrc user;	/* user pages pinned by the driver */
	uint64_t hi_next;	/* order 1..8 allocations: current block stream */
	uint64_t hi_end;
	uint32_t *freed;	/* ring of blocks pages were freed into, newest last */
	uint32_t nfreed;
	uint32_t freed_head;

	/* buffers waiting for their unmap */
	struct heap_ent *heap;
	size_t nheap, heap_cap;
	uint64_t seq;
	uint64_t next_id;
	uint64_t last_end;	/* address after the previous call's last segment */

	/* events ready to hand out */
	struct pegpu_trace_event *q;
	size_t qh, qn, qcap;
	uint64_t now;

	struct session slot[MAX_SLOTS];
	uint32_t nslots;
	uint64_t mix_next;	/* next session start (mixed); NEVER when done */
	uint64_t mix_end;
	int err;
};

/* ---------------------------------------------------------------- */
/* parameters                                                        */
/* ---------------------------------------------------------------- */

const char *pegpu_gen_profile_name(enum pegpu_gen_profile p)
{
	return (unsigned int)p < PEGPU_GEN__COUNT ? profile_names[p] : "?";
}

int pegpu_gen_profile_parse(const char *name)
{
	int i;

	for (i = 0; i < PEGPU_GEN__COUNT; i++)
		if (!strcmp(name, profile_names[i]))
			return i;
	return -1;
}

/*
 * The defaults; docs/dma-traces.md explains each number.  Every profile
 * gets all of them so that `mixed` can run the other three as they are.
 */
void pegpu_gen_defaults(struct pegpu_gen_params *p, enum pegpu_gen_profile profile,
			uint64_t seed)
{
	memset(p, 0, sizeof(*p));
	p->profile = profile;
	p->seed = seed;
	p->ram_base = 0x40000000ull;	/* arm64 virt machine */
	p->ram_mib = 16384;
	p->window = 63;			/* Linux pcp batch on a large zone */
	p->skip_pct = 5;
	p->user_skip_pct = 25;
	p->adjacent_pct = 75;
	p->pcp_high = 1024;
	p->foreign_pct = 10;
	p->hole_reuse_pct = 100;

	p->nv_loads = 1;
	p->nv_load_ms = 3000;
	p->nv_fw_kib = 32768;
	p->nv_pinned = 4096;
	p->nv_coherent = 64;
	p->nv_bursts = 24;
	p->nv_burst_min = 64;
	p->nv_burst_max = 1024;
	p->nv_sg_pct = 30;
	p->nv_sg_max = 16;
	p->nv_64k_permille = 30;
	p->nv_2m_permille = 2;
	p->nv_keep_pct = 20;
	p->nv_life_ms = 150;

	p->gs_seconds = 10;
	p->gs_fps = 120;
	p->gs_calls = 32;
	p->gs_life_frames = 3;
	p->gs_mid_pct = 10;
	p->gs_big_pct = 1;
	p->gs_thp_pct = 50;
	p->gs_pinned = 2048;

	p->llm_model_mib = 8192;
	p->llm_chunk_min_mib = 32;
	p->llm_chunk_max_mib = 384;
	p->llm_inflight = 2;
	p->llm_mbps = 2500;
	p->llm_thp_pct = 90;
	p->llm_pinned = 512;

	p->mix_minutes = 120;
	p->mix_gap_s = 120;
	p->mix_slots = 3;
}

#define PARAM(name) { #name, offsetof(struct pegpu_gen_params, name) }
static const struct {
	const char *name;
	size_t off;
} u32_params[] = {
	PARAM(ram_mib), PARAM(window), PARAM(skip_pct), PARAM(user_skip_pct),
	PARAM(adjacent_pct), PARAM(pcp_high), PARAM(foreign_pct), PARAM(hole_reuse_pct),
	PARAM(nv_loads), PARAM(nv_load_ms), PARAM(nv_fw_kib), PARAM(nv_pinned),
	PARAM(nv_coherent), PARAM(nv_bursts), PARAM(nv_burst_min), PARAM(nv_burst_max),
	PARAM(nv_sg_pct), PARAM(nv_sg_max), PARAM(nv_64k_permille), PARAM(nv_2m_permille),
	PARAM(nv_keep_pct), PARAM(nv_life_ms),
	PARAM(gs_seconds), PARAM(gs_fps), PARAM(gs_calls), PARAM(gs_life_frames),
	PARAM(gs_mid_pct), PARAM(gs_big_pct), PARAM(gs_thp_pct), PARAM(gs_pinned),
	PARAM(llm_model_mib), PARAM(llm_chunk_min_mib), PARAM(llm_chunk_max_mib),
	PARAM(llm_inflight), PARAM(llm_mbps), PARAM(llm_thp_pct), PARAM(llm_pinned),
	PARAM(mix_minutes), PARAM(mix_gap_s), PARAM(mix_slots),
};
#undef PARAM

static bool parse_num(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return false;
	*v = strtoull(s, &end, 0);
	return !*end;
}

int pegpu_gen_set(struct pegpu_gen_params *p, const char *name, const char *value)
{
	uint64_t v;
	size_t i;
	int prof;

	if (!strcmp(name, "profile")) {
		prof = pegpu_gen_profile_parse(value);
		if (prof < 0)
			return PEGPU_GEN_E_INVAL;
		p->profile = (enum pegpu_gen_profile)prof;
		return 0;
	}
	if (!parse_num(value, &v))
		return PEGPU_GEN_E_INVAL;
	if (!strcmp(name, "seed")) {
		p->seed = v;
		return 0;
	}
	if (!strcmp(name, "ram_base")) {
		p->ram_base = v;
		return 0;
	}
	for (i = 0; i < sizeof(u32_params) / sizeof(u32_params[0]); i++) {
		if (strcmp(name, u32_params[i].name))
			continue;
		if (v > UINT32_MAX)
			return PEGPU_GEN_E_INVAL;
		*(uint32_t *)((char *)p + u32_params[i].off) = (uint32_t)v;
		return 0;
	}
	return PEGPU_GEN_E_INVAL;
}

void pegpu_gen_print_params(const struct pegpu_gen_params *p, FILE *f, const char *prefix)
{
	size_t i;

	fprintf(f, "%sprofile=%s seed=%" PRIu64 " ram_base=0x%" PRIx64, prefix,
		pegpu_gen_profile_name(p->profile), p->seed, p->ram_base);
	for (i = 0; i < sizeof(u32_params) / sizeof(u32_params[0]); i++) {
		/* six to a line, each line prefixed */
		if (i % 6 == 5)
			fprintf(f, "\n%s", prefix);
		else
			fputc(' ', f);
		fprintf(f, "%s=%" PRIu32, u32_params[i].name,
			*(const uint32_t *)((const char *)p + u32_params[i].off));
	}
	fputc('\n', f);
}

int pegpu_gen_check(const struct pegpu_gen_params *p)
{
	uint64_t ram = (uint64_t)p->ram_mib * MIB;

	if ((unsigned int)p->profile >= PEGPU_GEN__COUNT)
		return PEGPU_GEN_E_INVAL;
	if (p->ram_base & ((2 * MIB) - 1) || p->ram_mib < 64 || p->ram_mib % 2 ||
	    p->ram_mib > (1u << 20) || ram - 1 > UINT64_MAX - p->ram_base)
		return PEGPU_GEN_E_INVAL;
	if (!p->window || p->window > WINDOW_MAX || p->pcp_high < p->window ||
	    p->pcp_high > PCP_MAX || p->skip_pct > 90 || p->foreign_pct > 45 ||
	    p->hole_reuse_pct > 100 ||
	    p->user_skip_pct > 90 || p->adjacent_pct > 100)
		return PEGPU_GEN_E_INVAL;
	/* nvidia-loading */
	if (!p->nv_loads || p->nv_load_ms < 10 || p->nv_burst_min > p->nv_burst_max ||
	    !p->nv_burst_max || p->nv_sg_pct > 100 || p->nv_sg_max < 2 ||
	    p->nv_sg_max > 65536 || p->nv_64k_permille + p->nv_2m_permille > 1000 ||
	    p->nv_keep_pct > 100 || p->nv_fw_kib > (1u << 22))
		return PEGPU_GEN_E_INVAL;
	/* game-streaming */
	if (!p->gs_seconds || !p->gs_fps || p->gs_fps > 1000 || !p->gs_calls ||
	    p->gs_calls > 100000 || p->gs_mid_pct + p->gs_big_pct > 100 || p->gs_thp_pct > 100)
		return PEGPU_GEN_E_INVAL;
	/* llm-load */
	if (!p->llm_model_mib || p->llm_chunk_min_mib < 2 ||
	    p->llm_chunk_min_mib > p->llm_chunk_max_mib || p->llm_chunk_max_mib > 4096 ||
	    !p->llm_inflight || p->llm_inflight > 64 || !p->llm_mbps || p->llm_thp_pct > 100 ||
	    p->llm_model_mib / p->llm_chunk_min_mib > 65536)
		return PEGPU_GEN_E_INVAL;
	/* mixed */
	if (!p->mix_slots || p->mix_slots > MAX_SLOTS || !p->mix_gap_s)
		return PEGPU_GEN_E_INVAL;
	return 0;
}

/* ---------------------------------------------------------------- */
/* page model                                                        */
/* ---------------------------------------------------------------- */

static bool pg_used(const struct pegpu_gen *g, uint64_t pg)
{
	return (g->used[pg / 64] >> (pg % 64)) & 1;
}

static void pg_take(struct pegpu_gen *g, uint64_t pg)
{
	g->used[pg / 64] |= 1ull << (pg % 64);
	g->bused[pg >> BLOCK_SHIFT]++;
}

static void pg_give(struct pegpu_gen *g, uint64_t pg)
{
	if (!pg_used(g, pg)) {
		g->err = PEGPU_GEN_E_INVAL;	/* a bug: freeing a free page */
		return;
	}
	g->used[pg / 64] &= ~(1ull << (pg % 64));
	g->bused[pg >> BLOCK_SHIFT]--;
	/* remember the block once per run of frees into it */
	if (!g->nfreed || g->freed[(g->freed_head + FREED_MAX - 1) % FREED_MAX] !=
	    (uint32_t)(pg >> BLOCK_SHIFT)) {
		g->freed[g->freed_head] = (uint32_t)(pg >> BLOCK_SHIFT);
		g->freed_head = (g->freed_head + 1) % FREED_MAX;
		if (g->nfreed < FREED_MAX)
			g->nfreed++;
	}
}

/* [pg, pg + n) all free; pg is n-aligned and n a power of two <= 512. */
static bool run_free(const struct pegpu_gen *g, uint64_t pg, uint32_t n)
{
	uint64_t w;

	if (n < 64) {
		uint64_t m = ((1ull << n) - 1) << (pg % 64);

		return !(g->used[pg / 64] & m);
	}
	for (w = pg / 64; w < (pg + n) / 64; w++)
		if (g->used[w])
			return false;
	return true;
}

/* The rest of the system's pages; see the page model at the top. */
static void foreign_init(struct pegpu_gen *g)
{
	uint64_t b, i;

	for (b = 0; b < g->nblocks; b++) {
		if (rng_pct(&g->rng, 50))
			continue;
		for (i = 0; i < BLOCK_PAGES; i++)
			if (rng_pct(&g->rng, 2 * g->p.foreign_pct))
				pg_take(g, (b << BLOCK_SHIFT) + i);
	}
	/* those are not frees: no hole to refill */
	g->nfreed = 0;
}

/* A block with at most max_used pages in use: random probes, then a scan. */
static int pick_block(struct pegpu_gen *g, uint32_t max_used, uint64_t *block)
{
	uint64_t b, start, i;
	int tries;

	for (tries = 0; tries < 64; tries++) {
		b = rng_below(&g->rng, g->nblocks);
		if (g->bused[b] <= max_used) {
			*block = b;
			return 0;
		}
	}
	start = rng_below(&g->rng, g->nblocks);
	for (i = 0; i < g->nblocks; i++) {
		b = (start + i) % g->nblocks;
		if (g->bused[b] <= max_used) {
			*block = b;
			return 0;
		}
	}
	return PEGPU_GEN_E_RAM;
}

static int src_new_block(struct pegpu_gen *g, struct pagesrc *s)
{
	uint64_t b;
	int ret;

	/* smallest order first: the holes of the most recently freed blocks */
	while (g->nfreed && rng_pct(&g->rng, g->p.hole_reuse_pct)) {
		g->freed_head = (g->freed_head + FREED_MAX - 1) % FREED_MAX;
		g->nfreed--;
		b = g->freed[g->freed_head];
		if (g->bused[b] < BLOCK_PAGES) {
			s->next = b << BLOCK_SHIFT;
			s->end = s->next + BLOCK_PAGES;
			return 0;
		}
	}
	if (s->end && s->end < g->npages && rng_pct(&g->rng, g->p.adjacent_pct) &&
	    g->bused[s->end >> BLOCK_SHIFT] <= BLOCK_PAGES / 2) {
		s->next = s->end;
		s->end += BLOCK_PAGES;
		return 0;
	}
	/* prefer a mostly free block, settle for any with room */
	ret = pick_block(g, BLOCK_PAGES / 4, &b);
	if (ret)
		ret = pick_block(g, BLOCK_PAGES - 1, &b);
	if (ret)
		return ret;
	s->next = b << BLOCK_SHIFT;
	s->end = s->next + BLOCK_PAGES;
	return 0;
}

/* Pull a window of pages out of the block stream, then shuffle it. */
static int src_refill(struct pegpu_gen *g, struct pagesrc *s)
{
	uint32_t i, j;
	uint64_t tmp, scanned = 0;
	int ret;

	while (s->n < g->p.window) {
		uint64_t pg;

		if (s->next >= s->end) {
			ret = src_new_block(g, s);
			if (ret)
				break;
		}
		pg = s->next++;
		/* bounded: with skip_pct <= 90 a free page is taken soon enough */
		if (++scanned > 64 * g->npages)
			break;
		if (pg_used(g, pg) || rng_pct(&g->rng, s->skip_pct))
			continue;
		pg_take(g, pg);
		s->win[s->n++] = pg;
	}
	if (!s->n)
		return PEGPU_GEN_E_RAM;
	for (i = s->n - 1; i > 0; i--) {
		j = (uint32_t)rng_below(&g->rng, i + 1);
		tmp = s->win[i];
		s->win[i] = s->win[j];
		s->win[j] = tmp;
	}
	return 0;
}

static int alloc_page(struct pegpu_gen *g, struct pagesrc *s, uint64_t *addr)
{
	int ret;

	if (!s->n) {
		ret = src_refill(g, s);
		if (ret)
			return ret;
	}
	*addr = (g->base_pg + s->win[--s->n]) << GP_SHIFT;
	return 0;
}

/* 2^order pages, naturally aligned, as the buddy allocator returns them. */
static int alloc_order(struct pegpu_gen *g, unsigned int order, uint64_t *addr)
{
	uint32_t n = 1u << order, i;
	uint64_t b, pg;
	int ret;

	if (order == 0)
		return alloc_page(g, &g->kern, addr);
	if (order >= BLOCK_SHIFT) {
		ret = pick_block(g, 0, &b);
		if (ret)
			return ret;
		pg = b << BLOCK_SHIFT;
	} else {
		for (;;) {
			pg = (g->hi_next + n - 1) & ~(uint64_t)(n - 1);
			while (pg + n <= g->hi_end && !run_free(g, pg, n))
				pg += n;
			if (pg + n <= g->hi_end)
				break;
			ret = pick_block(g, 0, &b);
			if (ret)
				return ret;
			g->hi_next = b << BLOCK_SHIFT;
			g->hi_end = g->hi_next + BLOCK_PAGES;
		}
		g->hi_next = pg + n;
	}
	for (i = 0; i < n; i++)
		pg_take(g, pg + i);
	*addr = (g->base_pg + pg) << GP_SHIFT;
	return 0;
}

/*
 * Give a segment back: order-0 pages onto the per-CPU list they came from
 * while it has room (LIFO: reused first), the rest to the buddy allocator.
 * Huge-page and order-N segments always go back to the buddy allocator.
 */
static void free_range(struct pegpu_gen *g, struct pagesrc *s, uint64_t addr, uint64_t len)
{
	uint64_t pg = (addr >> GP_SHIFT) - g->base_pg;
	uint64_t n = len >> GP_SHIFT;

	if (len >= 2 * MIB)
		s = NULL;
	while (n--) {
		if (s && s->n < g->p.pcp_high && pg_used(g, pg))
			s->win[s->n++] = pg++;
		else
			pg_give(g, pg++);
	}
}

/* ---------------------------------------------------------------- */
/* buffers, heap, output queue                                       */
/* ---------------------------------------------------------------- */

static struct gbuf *buf_new(struct pegpu_gen *g, uint32_t cap, uint8_t kind, uint8_t dir,
			    uint8_t src)
{
	struct gbuf *b = malloc(sizeof(*b) + (size_t)cap * sizeof(b->seg[0]));

	if (!b) {
		g->err = PEGPU_GEN_E_NOMEM;
		return NULL;
	}
	b->id = ++g->next_id;
	b->total = 0;
	b->nseg = 0;
	b->cap = cap;
	b->kind = kind;
	b->dir = dir;
	b->src = src;
	return b;
}

/* Append a range, merging with the previous segment when contiguous
 * (sg_alloc_table_from_pages does the same). */
static void buf_add(struct gbuf *b, uint64_t addr, uint64_t len)
{
	struct gseg *last = b->nseg ? &b->seg[b->nseg - 1] : NULL;

	b->total += len;
	if (last && last->addr + last->len == addr && last->len + len <= (1ull << 31)) {
		last->len += (uint32_t)len;
		return;
	}
	b->seg[b->nseg].addr = addr;
	b->seg[b->nseg].len = (uint32_t)len;
	b->nseg++;
}

static void buf_free_pages(struct pegpu_gen *g, struct gbuf *b)
{
	struct pagesrc *s = b->src == SRC_KERN ? &g->kern : b->src == SRC_USER ? &g->user : NULL;
	uint32_t i;

	for (i = 0; i < b->nseg; i++)
		free_range(g, s, b->seg[i].addr, b->seg[i].len);
}

static int queue_push(struct pegpu_gen *g, const struct pegpu_trace_event *ev)
{
	if (g->qn == g->qcap) {
		size_t cap = g->qcap ? g->qcap * 2 : 4096;
		struct pegpu_trace_event *q = realloc(g->q, cap * sizeof(*q));

		if (!q) {
			g->err = PEGPU_GEN_E_NOMEM;
			return g->err;
		}
		g->q = q;
		g->qcap = cap;
	}
	g->q[g->qn++] = *ev;
	return 0;
}

static bool heap_less(const struct heap_ent *a, const struct heap_ent *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int heap_push(struct pegpu_gen *g, uint64_t t, struct gbuf *b)
{
	struct heap_ent e = { t, ++g->seq, b };
	size_t i;

	if (g->nheap == g->heap_cap) {
		size_t cap = g->heap_cap ? g->heap_cap * 2 : 4096;
		struct heap_ent *h = realloc(g->heap, cap * sizeof(*h));

		if (!h) {
			g->err = PEGPU_GEN_E_NOMEM;
			return g->err;
		}
		g->heap = h;
		g->heap_cap = cap;
	}
	i = g->nheap++;
	while (i && heap_less(&e, &g->heap[(i - 1) / 2])) {
		g->heap[i] = g->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	g->heap[i] = e;
	return 0;
}

static struct heap_ent heap_pop(struct pegpu_gen *g)
{
	struct heap_ent top = g->heap[0], last = g->heap[--g->nheap];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < g->nheap) {
		if (c + 1 < g->nheap && heap_less(&g->heap[c + 1], &g->heap[c]))
			c++;
		if (!heap_less(&g->heap[c], &last))
			break;
		g->heap[i] = g->heap[c];
		i = c;
	}
	if (g->nheap)
		g->heap[i] = last;
	return top;
}

static void count_seg(struct pegpu_gen *g, uint64_t addr, uint64_t len)
{
	g->st.segments++;
	if (len == GP_SIZE)
		g->st.seg_4k++;
	else if (len <= 64 * 1024)
		g->st.seg_le64k++;
	else if (len <= 2 * MIB)
		g->st.seg_le2m++;
	else
		g->st.seg_big++;
	if (addr == g->last_end)
		g->st.seg_adjacent++;
}

/* Emit the buffer's MAP/SEG events now and schedule its UNMAP at `expire`. */
static int buf_commit(struct pegpu_gen *g, struct gbuf *b, uint64_t expire)
{
	struct pegpu_trace_event ev;
	uint32_t i;

	if (!b->nseg) {
		free(b);
		return 0;
	}
	if (expire < g->now)
		expire = g->now;
	for (i = 0; i < b->nseg; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.ts_ns = g->now;
		ev.id = b->id;
		ev.addr = b->seg[i].addr;
		ev.len = b->seg[i].len;
		ev.type = i ? PEGPU_TR_SEG : PEGPU_TR_MAP;
		ev.kind = b->kind;
		ev.dir = b->dir;
		ev.flags = i + 1 < b->nseg ? PEGPU_TF_MORE : 0;
		count_seg(g, ev.addr, ev.len);
		if (queue_push(g, &ev))
			goto fail;
	}
	g->last_end = b->seg[b->nseg - 1].addr + b->seg[b->nseg - 1].len;
	g->st.calls++;
	if (heap_push(g, expire, b))
		goto fail;
	return 0;
fail:
	buf_free_pages(g, b);
	free(b);
	return g->err;
}

/* One buffer of `order`-sized chunk(s): single, coherent. */
static int make_block_buf(struct pegpu_gen *g, uint8_t kind, uint8_t dir, unsigned int order,
			  uint64_t expire)
{
	struct gbuf *b = buf_new(g, 1, kind, dir, order ? SRC_BUDDY : SRC_KERN);
	uint64_t addr;
	int ret;

	if (!b)
		return g->err;
	ret = alloc_order(g, order, &addr);
	if (ret) {
		free(b);
		return g->err = ret;
	}
	buf_add(b, addr, (uint64_t)GP_SIZE << order);
	return buf_commit(g, b, expire);
}

/* A scatterlist of `pages` order-0 pages from `src`. */
static int make_sg_pages(struct pegpu_gen *g, struct pagesrc *src, uint8_t dir, uint64_t pages,
			 uint64_t expire)
{
	struct gbuf *b;
	uint64_t i, addr;
	int ret;

	if (pages > UINT32_MAX)
		return g->err = PEGPU_GEN_E_INVAL;
	b = buf_new(g, (uint32_t)pages, PEGPU_TK_SG, dir, src == &g->user ? SRC_USER : SRC_KERN);
	if (!b)
		return g->err;
	for (i = 0; i < pages; i++) {
		ret = alloc_page(g, src, &addr);
		if (ret) {
			buf_free_pages(g, b);
			free(b);
			return g->err = ret;
		}
		buf_add(b, addr, GP_SIZE);
	}
	return buf_commit(g, b, expire);
}

/*
 * A large pinned buffer of `extents` 2 MiB pieces: a huge page where
 * thp_pct says so, 512 user pages otherwise.
 */
static int make_sg_extents(struct pegpu_gen *g, uint8_t dir, uint64_t extents, uint32_t thp_pct,
			   uint64_t expire)
{
	uint64_t cap = 0, i, j, addr;
	bool *thp;
	struct gbuf *b;
	int ret = 0;

	thp = malloc(extents ? extents * sizeof(*thp) : 1);
	if (!thp)
		return g->err = PEGPU_GEN_E_NOMEM;
	for (i = 0; i < extents; i++) {
		thp[i] = rng_pct(&g->rng, thp_pct);
		cap += thp[i] ? 1 : BLOCK_PAGES;
	}
	if (cap > UINT32_MAX) {
		free(thp);
		return g->err = PEGPU_GEN_E_INVAL;
	}
	b = buf_new(g, (uint32_t)cap, PEGPU_TK_SG, dir, SRC_USER);
	if (!b) {
		free(thp);
		return g->err;
	}
	for (i = 0; i < extents && !ret; i++) {
		if (thp[i]) {
			ret = alloc_order(g, BLOCK_SHIFT, &addr);
			if (!ret)
				buf_add(b, addr, 2 * MIB);
			continue;
		}
		for (j = 0; j < BLOCK_PAGES && !ret; j++) {
			ret = alloc_page(g, &g->user, &addr);
			if (!ret)
				buf_add(b, addr, GP_SIZE);
		}
	}
	free(thp);
	if (ret) {
		buf_free_pages(g, b);
		free(b);
		return g->err = ret;
	}
	return buf_commit(g, b, expire);
}

static uint8_t kernel_dir(struct pegpu_gen *g)
{
	uint64_t r = rng_below(&g->rng, 10);

	return r < 5 ? PEGPU_DIR_BIDIRECTIONAL : r < 8 ? PEGPU_DIR_TO_DEVICE :
	       PEGPU_DIR_FROM_DEVICE;
}

/* ---------------------------------------------------------------- */
/* sessions                                                          */
/* ---------------------------------------------------------------- */

static uint64_t ms(uint64_t v)
{
	return v * NS_PER_MS;
}

static void session_free(struct session *s)
{
	free(s->chunk_len);
	free(s->chunk_start);
	free(s->chunk_done);
	s->chunk_len = s->chunk_start = s->chunk_done = NULL;
	s->state = S_OFF;
}

/* llm-load: plan every chunk's size, start and completion up front. */
static int llm_plan(struct pegpu_gen *g, struct session *s)
{
	const struct pegpu_gen_params *p = &g->p;
	uint64_t left = (uint64_t)p->llm_model_mib * MIB, link = s->start + ms(1);
	uint32_t n = 0, cap = p->llm_model_mib / p->llm_chunk_min_mib + 2, k;

	s->chunk_len = calloc(cap, sizeof(uint64_t));
	s->chunk_start = calloc(cap, sizeof(uint64_t));
	s->chunk_done = calloc(cap, sizeof(uint64_t));
	if (!s->chunk_len || !s->chunk_start || !s->chunk_done)
		return g->err = PEGPU_GEN_E_NOMEM;
	while (left && n < cap) {
		/* staging buffers are whole 2 MiB extents */
		uint64_t len = rng_range(&g->rng, p->llm_chunk_min_mib / 2,
					 p->llm_chunk_max_mib / 2) * 2 * MIB;

		if (len > left)
			len = (left + 2 * MIB - 1) & ~(2 * MIB - 1);
		s->chunk_len[n] = len;
		left -= len < left ? len : left;
		n++;
	}
	for (k = 0; k < n; k++) {
		/* a staging buffer is reused as soon as its previous chunk has moved */
		s->chunk_start[k] = k < p->llm_inflight ? s->start + ms(1) + k * CALL_NS :
				    s->chunk_done[k - p->llm_inflight];
		if (link < s->chunk_start[k])
			link = s->chunk_start[k];
		/* bytes * 1000 / MBps = ns */
		link += s->chunk_len[k] * 1000 / p->llm_mbps;
		s->chunk_done[k] = link;
	}
	s->nchunks = n;
	s->end = link + ms(10);
	return 0;
}

static int session_start(struct pegpu_gen *g, struct session *s, enum pegpu_gen_profile prof,
			 uint64_t t)
{
	const struct pegpu_gen_params *p = &g->p;

	memset(s, 0, sizeof(*s));
	s->profile = prof;
	s->t = t;
	s->start = t;
	g->st.sessions++;
	switch (prof) {
	case PEGPU_GEN_NVIDIA_LOADING:
		s->state = S_NV_FW;
		s->end = t + ms(p->nv_load_ms);
		break;
	case PEGPU_GEN_GAME_STREAMING:
		s->state = S_GS_PINNED;
		s->end = t + (uint64_t)p->gs_seconds * NS_PER_S;
		break;
	case PEGPU_GEN_LLM_LOAD:
		s->state = S_LLM_PINNED;
		return llm_plan(g, s);
	default:
		return g->err = PEGPU_GEN_E_INVAL;
	}
	return 0;
}

static int nv_step(struct pegpu_gen *g, struct session *s)
{
	const struct pegpu_gen_params *p = &g->p;
	uint64_t life, expire, r, burst_from, burst_to;
	int ret = 0;

	switch (s->state) {
	case S_NV_FW:
		/* the GSP firmware image, read-only for the GPU, kept while loaded */
		if (p->nv_fw_kib >= 4)
			ret = make_sg_pages(g, &g->kern, PEGPU_DIR_TO_DEVICE, p->nv_fw_kib / 4,
					    s->end);
		s->state = S_NV_PINNED;
		s->k = 0;
		s->t += 100 * CALL_NS;
		return ret;
	case S_NV_PINNED:
		if (s->k < p->nv_pinned) {
			ret = make_block_buf(g, PEGPU_TK_SINGLE, PEGPU_DIR_BIDIRECTIONAL, 0,
					     s->end);
		} else if (s->k < (uint64_t)p->nv_pinned + p->nv_coherent) {
			/* rings and queues: 4, 16 or 64 KiB, contiguous */
			ret = make_block_buf(g, PEGPU_TK_COHERENT, PEGPU_DIR_BIDIRECTIONAL,
					     (unsigned int)(2 * rng_below(&g->rng, 3)), s->end);
		} else {
			/* bursts spread over the load, the last 20% is steady state */
			burst_from = s->t;
			burst_to = s->end - ms(p->nv_load_ms) / 5;
			s->burst_gap = burst_to > burst_from ?
				       (burst_to - burst_from) / (p->nv_bursts + 1) : 0;
			s->state = S_NV_BURST;
			s->left = 0;
			s->t += rng_exp(&g->rng, s->burst_gap);
			return 0;
		}
		s->k++;
		s->t += CALL_NS;
		return ret;
	case S_NV_BURST:
		if (s->t >= s->end) {
			s->state = S_END;
			s->t = s->end;
			return 0;
		}
		if (!s->left) {
			if (s->bursts >= p->nv_bursts || s->t >= s->end - ms(p->nv_load_ms) / 5) {
				s->state = S_END;
				s->t = s->end;
				return 0;
			}
			s->left = rng_range(&g->rng, p->nv_burst_min, p->nv_burst_max);
			if (!s->left)
				s->left = 1;
		}
		life = rng_pct(&g->rng, p->nv_keep_pct) ? NEVER :
		       rng_exp(&g->rng, ms(p->nv_life_ms));
		expire = life == NEVER || life > s->end - s->t ? s->end : s->t + life;
		r = rng_below(&g->rng, 1000);
		if (r < p->nv_2m_permille)
			ret = make_block_buf(g, PEGPU_TK_SINGLE, PEGPU_DIR_TO_DEVICE, 9, expire);
		else if (r < p->nv_2m_permille + p->nv_64k_permille)
			ret = make_block_buf(g, rng_pct(&g->rng, 50) ? PEGPU_TK_COHERENT :
					     PEGPU_TK_SINGLE, PEGPU_DIR_BIDIRECTIONAL, 4, expire);
		else if (rng_pct(&g->rng, p->nv_sg_pct))
			ret = make_sg_pages(g, &g->kern, kernel_dir(g),
					    rng_range(&g->rng, 2, p->nv_sg_max), expire);
		else
			ret = make_block_buf(g, rng_pct(&g->rng, 10) ? PEGPU_TK_COHERENT :
					     PEGPU_TK_SINGLE, kernel_dir(g), 0, expire);
		s->t += CALL_NS;
		if (!--s->left) {
			s->bursts++;
			s->t += rng_exp(&g->rng, s->burst_gap);
		}
		return ret;
	default:
		return 0;
	}
}

static int gs_step(struct pegpu_gen *g, struct session *s)
{
	const struct pegpu_gen_params *p = &g->p;
	uint64_t frame = NS_PER_S / p->gs_fps, expire, r, bytes;
	int ret;

	if (s->state == S_GS_PINNED) {
		/* push buffers, semaphores, the driver's own rings */
		if (s->k < p->gs_pinned) {
			ret = make_block_buf(g, PEGPU_TK_SINGLE, PEGPU_DIR_BIDIRECTIONAL, 0,
					     s->end);
			s->k++;
			s->t += CALL_NS;
			return ret;
		}
		s->state = S_GS_FRAME;
		s->k = 0;
		s->t += frame;
		return 0;
	}
	if (s->t >= s->end) {
		s->state = S_END;
		s->t = s->end;
		return 0;
	}
	expire = s->t + rng_exp(&g->rng, (uint64_t)p->gs_life_frames * frame);
	if (expire > s->end)
		expire = s->end;
	r = rng_below(&g->rng, 100);
	if (r < p->gs_big_pct) {
		/* texture streaming, 2..8 MiB */
		ret = make_sg_extents(g, PEGPU_DIR_TO_DEVICE, rng_range(&g->rng, 1, 4),
				      p->gs_thp_pct, expire);
	} else if (r < p->gs_big_pct + p->gs_mid_pct) {
		/* staging uploads (90%) and readbacks, 64 KiB..1 MiB of user pages */
		bytes = rng_range(&g->rng, 16, 256);
		ret = make_sg_pages(g, &g->user, rng_pct(&g->rng, 90) ? PEGPU_DIR_TO_DEVICE :
				    PEGPU_DIR_FROM_DEVICE, bytes, expire);
	} else {
		/* constants, small uploads: one user page */
		ret = make_sg_pages(g, &g->user, PEGPU_DIR_TO_DEVICE, 1, expire);
	}
	s->t += frame / p->gs_calls;
	return ret;
}

static int llm_step(struct pegpu_gen *g, struct session *s)
{
	const struct pegpu_gen_params *p = &g->p;
	uint32_t i;
	int ret = 0;

	if (s->state == S_LLM_PINNED) {
		/* the runtime's context: pinned pages and a few coherent queues */
		if (s->k < p->llm_pinned) {
			ret = make_block_buf(g, s->k % 8 ? PEGPU_TK_SINGLE : PEGPU_TK_COHERENT,
					     PEGPU_DIR_BIDIRECTIONAL, 0, s->end);
			s->k++;
			s->t += CALL_NS;
			return ret;
		}
		s->state = S_LLM_CHUNK;
		s->k = 0;
		s->t = s->nchunks ? s->chunk_start[0] : s->end;
		if (s->t < g->now)
			s->t = g->now;
		return 0;
	}
	if (s->k >= s->nchunks) {
		s->state = S_END;
		s->t = s->end;
		return 0;
	}
	/* the staging buffer, then a few small control buffers for the copy */
	ret = make_sg_extents(g, PEGPU_DIR_TO_DEVICE, s->chunk_len[s->k] / (2 * MIB),
			      p->llm_thp_pct, s->chunk_done[s->k]);
	for (i = 0; i < 4 && !ret; i++)
		ret = make_block_buf(g, PEGPU_TK_SINGLE, PEGPU_DIR_BIDIRECTIONAL, 0,
				     s->chunk_done[s->k]);
	s->k++;
	s->t = s->k < s->nchunks ? s->chunk_start[s->k] : s->end;
	if (s->t < g->now)
		s->t = g->now;
	return ret;
}

/* Run the session's next call; at S_END start the next load or stop. */
static int session_step(struct pegpu_gen *g, struct session *s)
{
	switch (s->state) {
	case S_NV_FW:
	case S_NV_PINNED:
	case S_NV_BURST:
		return nv_step(g, s);
	case S_GS_PINNED:
	case S_GS_FRAME:
		return gs_step(g, s);
	case S_LLM_PINNED:
	case S_LLM_CHUNK:
		return llm_step(g, s);
	case S_END:
		if (s->profile == PEGPU_GEN_NVIDIA_LOADING && g->p.profile != PEGPU_GEN_MIXED &&
		    s->loads + 1 < g->p.nv_loads) {
			uint32_t loads = s->loads + 1;
			int ret;

			/* unload, a pause, load again */
			session_free(s);
			ret = session_start(g, s, PEGPU_GEN_NVIDIA_LOADING, s->end + ms(500));
			s->loads = loads;
			return ret;
		}
		session_free(s);
		return 0;
	default:
		return 0;
	}
}

/* mixed: start a random session when a slot is free. */
static int mix_step(struct pegpu_gen *g)
{
	static const enum pegpu_gen_profile pick[10] = {
		PEGPU_GEN_NVIDIA_LOADING, PEGPU_GEN_NVIDIA_LOADING,
		PEGPU_GEN_GAME_STREAMING, PEGPU_GEN_GAME_STREAMING, PEGPU_GEN_GAME_STREAMING,
		PEGPU_GEN_GAME_STREAMING, PEGPU_GEN_GAME_STREAMING,
		PEGPU_GEN_LLM_LOAD, PEGPU_GEN_LLM_LOAD, PEGPU_GEN_LLM_LOAD,
	};
	uint32_t i;
	int ret = 0;

	for (i = 0; i < g->nslots; i++) {
		if (g->slot[i].state == S_OFF) {
			ret = session_start(g, &g->slot[i], pick[rng_below(&g->rng, 10)], g->now);
			break;
		}
	}
	g->mix_next += rng_exp(&g->rng, (uint64_t)g->p.mix_gap_s * NS_PER_S) + 1;
	if (g->mix_next >= g->mix_end)
		g->mix_next = NEVER;
	return ret;
}

/* ---------------------------------------------------------------- */
/* public                                                            */
/* ---------------------------------------------------------------- */

struct pegpu_gen *pegpu_gen_new(const struct pegpu_gen_params *p)
{
	struct pegpu_gen *g;

	if (!p || pegpu_gen_check(p))
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->p = *p;
	rng_seed(&g->rng, p->seed);
	g->base_pg = p->ram_base >> GP_SHIFT;
	g->npages = ((uint64_t)p->ram_mib * MIB) >> GP_SHIFT;
	g->nblocks = (uint32_t)(g->npages >> BLOCK_SHIFT);
	g->used = calloc((size_t)(g->npages / 64), sizeof(uint64_t));
	g->bused = calloc(g->nblocks, sizeof(uint16_t));
	g->kern.win = calloc(p->pcp_high, sizeof(uint64_t));
	g->user.win = calloc(p->pcp_high, sizeof(uint64_t));
	g->freed = calloc(FREED_MAX, sizeof(uint32_t));
	if (!g->used || !g->bused || !g->kern.win || !g->user.win || !g->freed)
		goto err;
	g->kern.skip_pct = p->skip_pct;
	g->user.skip_pct = p->user_skip_pct;
	foreign_init(g);
	g->last_end = UINT64_MAX;

	if (p->profile == PEGPU_GEN_MIXED) {
		g->nslots = p->mix_slots;
		g->mix_next = 0;
		g->mix_end = (uint64_t)p->mix_minutes * 60 * NS_PER_S;
		if (!g->mix_end)
			g->mix_next = NEVER;
	} else {
		g->nslots = 1;
		g->mix_next = NEVER;
		if (session_start(g, &g->slot[0], p->profile, 0))
			goto err;
	}
	return g;
err:
	pegpu_gen_free(g);
	return NULL;
}

void pegpu_gen_free(struct pegpu_gen *g)
{
	uint32_t i;

	if (!g)
		return;
	while (g->nheap)
		free(heap_pop(g).b);
	for (i = 0; i < MAX_SLOTS; i++)
		session_free(&g->slot[i]);
	free(g->heap);
	free(g->q);
	free(g->used);
	free(g->bused);
	free(g->kern.win);
	free(g->user.win);
	free(g->freed);
	free(g);
}

void pegpu_gen_info(const struct pegpu_gen *g, struct pegpu_trace_info *info)
{
	memset(info, 0, sizeof(*info));
	info->major = PEGPU_TRACE_VERSION_MAJOR;
	info->minor = PEGPU_TRACE_VERSION_MINOR;
	info->ram_base = g->p.ram_base;
	info->ram_size = (uint64_t)g->p.ram_mib * MIB;
	info->seed = g->p.seed;
	snprintf(info->source, sizeof(info->source), "%s", pegpu_gen_profile_name(g->p.profile));
}

int pegpu_gen_next(struct pegpu_gen *g, struct pegpu_trace_event *ev)
{
	for (;;) {
		struct session *next = NULL;
		uint64_t t = NEVER;
		uint32_t i;

		if (g->err)
			return g->err;
		if (g->qh < g->qn) {
			*ev = g->q[g->qh++];
			g->st.end_ns = ev->ts_ns;
			return 1;
		}
		g->qh = g->qn = 0;

		for (i = 0; i < g->nslots; i++) {
			if (g->slot[i].state != S_OFF && g->slot[i].t < t) {
				t = g->slot[i].t;
				next = &g->slot[i];
			}
		}
		if (g->nheap && g->heap[0].t <= t && g->heap[0].t <= g->mix_next) {
			struct heap_ent e = heap_pop(g);

			memset(ev, 0, sizeof(*ev));
			if (e.t > g->now)
				g->now = e.t;
			ev->ts_ns = g->now;
			ev->id = e.b->id;
			ev->type = PEGPU_TR_UNMAP;
			ev->kind = e.b->kind;
			ev->dir = e.b->dir;
			ev->len = e.b->total > UINT32_MAX ? UINT32_MAX : e.b->total;
			buf_free_pages(g, e.b);
			free(e.b);
			g->st.end_ns = ev->ts_ns;
			return g->err ? g->err : 1;
		}
		if (g->mix_next != NEVER && g->mix_next <= t) {
			if (g->mix_next > g->now)
				g->now = g->mix_next;
			if (mix_step(g))
				return g->err;
			continue;
		}
		if (!next)
			return 0;	/* nothing running, nothing live */
		if (t > g->now)
			g->now = t;
		if (session_step(g, next))
			return g->err;
	}
}

void pegpu_gen_get_stats(const struct pegpu_gen *g, struct pegpu_gen_stats *st)
{
	*st = g->st;
}
