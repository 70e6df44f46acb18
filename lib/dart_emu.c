/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * DART emulator (see include/pegpu/dart_emu.h).
 *
 * Layout: one flat page table over the IOVA window (one uint64_t per DART
 * page: physical page address | PTE_* bits), a parallel array holding, for
 * every mapped page, the index one past the last page of its mapping, and a
 * bitmap of pages in use.  A mapping owns its pages plus one guard page right
 * after them: the guard is marked in use in the bitmap but has no PTE, so a
 * device that runs off the end of a buffer faults instead of silently
 * hitting its neighbour, and two mappings are never adjacent.
 *
 * IOVAs come from a next-fit search that starts at a seed-dependent page
 * whose IOVA is an odd multiple of the page size and, after each mapping,
 * sometimes skips one extra page: callers see IOVAs that are page aligned
 * and nothing more, as on real hardware, so code that silently relies on
 * larger alignment breaks here first.
 */
#include <stdlib.h>
#include <string.h>

#include "pegpu/dart_emu.h"

#define PTE_VALID	(1ull << 0)
#define PTE_READ	(1ull << 1)	/* == DART_PROT_READ << 1 */
#define PTE_WRITE	(1ull << 2)	/* == DART_PROT_WRITE << 1 */
#define PTE_HEAD	(1ull << 3)	/* first page of a mapping */
#define PTE_PROT_SHIFT	1
#define PTE_FLAGS	(PTE_VALID | PTE_READ | PTE_WRITE | PTE_HEAD)

#define DART_PROT_ALL	(DART_PROT_READ | DART_PROT_WRITE)

/* Page sizes we accept: the PTE flag bits must fit below the page offset. */
#define DART_EMU_MIN_PAGE_SHIFT	12
#define DART_EMU_MAX_PAGE_SHIFT	30
/* Bounds the tables (12 bytes + 1 bit a page): 4 Mi pages = 48.5 MiB. */
#define DART_EMU_MAX_PAGES	(1u << 22)

#define NO_PAGE		UINT32_MAX

struct dart_emu {
	struct dart_emu_config cfg;	/* effective, defaults filled in */
	uint64_t page_size;
	uint64_t page_mask;		/* page_size - 1 */
	uint32_t npages;		/* pages in the window */
	uint32_t nwords;		/* bitmap words */
	uint64_t *pte;
	uint32_t *end;			/* mapped page -> one past its mapping's last page */
	uint64_t *used;			/* bitmap: mapped or guard page */
	uint32_t cursor;		/* next-fit: where the next search starts */
	uint64_t rng;			/* xorshift64 state, never 0 */
	struct dart_emu_stats st;
};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static unsigned int ctz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
	return (unsigned int)__builtin_ctzll(x);
#else
	unsigned int n = 0;

	while (!(x & 1)) {
		x >>= 1;
		n++;
	}
	return n;
#endif
}

static bool test_used(const struct dart_emu *d, uint32_t pg)
{
	return (d->used[pg / 64] >> (pg % 64)) & 1;
}

/* Set or clear bits [start, start + count) of the in-use bitmap. */
static void mark_used(struct dart_emu *d, uint32_t start, uint32_t count, bool set)
{
	while (count) {
		uint32_t bit = start % 64;
		uint32_t n = 64 - bit < count ? 64 - bit : count;
		uint64_t m = (n == 64 ? ~0ull : ((1ull << n) - 1)) << bit;

		if (set)
			d->used[start / 64] |= m;
		else
			d->used[start / 64] &= ~m;
		start += n;
		count -= n;
	}
}

/* First page >= pg that is free, or npages. */
static uint32_t next_free(const struct dart_emu *d, uint32_t pg)
{
	uint32_t w;
	uint64_t bits;

	if (pg >= d->npages)
		return d->npages;
	w = pg / 64;
	bits = ~d->used[w] & (~0ull << (pg % 64));
	while (!bits) {
		if (++w >= d->nwords)
			return d->npages;
		bits = ~d->used[w];
	}
	pg = w * 64 + ctz64(bits);
	return pg < d->npages ? pg : d->npages;
}

/* First page in [pg, limit) that is in use, or limit (limit <= npages). */
static uint32_t next_used(const struct dart_emu *d, uint32_t pg, uint32_t limit)
{
	uint32_t w;
	uint64_t bits;

	if (pg >= limit)
		return limit;
	w = pg / 64;
	bits = d->used[w] & (~0ull << (pg % 64));
	while (!bits) {
		if (++w >= d->nwords || w * 64 >= limit)
			return limit;
		bits = d->used[w];
	}
	pg = w * 64 + ctz64(bits);
	return pg < limit ? pg : limit;
}

/*
 * Lowest page p in [from, to) such that [p, p + need) is free (the run may
 * extend past `to`, not past the window).  Each iteration skips one used and
 * one free stretch, word by word.
 */
static uint32_t find_run(const struct dart_emu *d, uint32_t from, uint32_t to, uint32_t need)
{
	uint32_t pg = from;

	while (pg < to) {
		uint32_t limit, stop;

		pg = next_free(d, pg);
		if (pg >= to || d->npages - pg < need)
			return NO_PAGE;
		limit = pg + need;
		stop = next_used(d, pg, limit);
		if (stop == limit)
			return pg;
		pg = stop;
	}
	return NO_PAGE;
}

static bool config_fill(const struct dart_emu_config *in, struct dart_emu_config *c)
{
	uint64_t mask, pages;

	*c = *in;
	if (!c->page_shift)
		c->page_shift = DART_EMU_PAGE_SHIFT;
	if (c->page_shift < DART_EMU_MIN_PAGE_SHIFT || c->page_shift > DART_EMU_MAX_PAGE_SHIFT)
		return false;
	mask = (1ull << c->page_shift) - 1;
	/* Same shape as the header defaults, for any page size: [1 page, 4 GiB). */
	if (!c->iova_base)
		c->iova_base = 1ull << c->page_shift;
	if (!c->iova_size)
		c->iova_size = (4ull << 30) - (1ull << c->page_shift);
	if (!c->max_mapped_bytes)
		c->max_mapped_bytes = DART_EMU_DEFAULT_MAX_BYTES;
	if (!c->max_mappings)
		c->max_mappings = DART_EMU_DEFAULT_MAX_MAPPINGS;
	if ((c->iova_base & mask) || (c->iova_size & mask))
		return false;
	if (c->iova_size > UINT64_MAX - c->iova_base)
		return false;
	pages = c->iova_size >> c->page_shift;
	return pages >= 1 && pages <= DART_EMU_MAX_PAGES;
}

struct dart_emu *dart_emu_new(const struct dart_emu_config *cfg)
{
	static const struct dart_emu_config defaults;
	struct dart_emu *d;
	uint64_t base_pg;
	uint32_t start;

	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	if (!config_fill(cfg ? cfg : &defaults, &d->cfg))
		goto err;
	d->page_size = 1ull << d->cfg.page_shift;
	d->page_mask = d->page_size - 1;
	d->npages = (uint32_t)(d->cfg.iova_size >> d->cfg.page_shift);
	d->nwords = (d->npages + 63) / 64;
	d->pte = calloc(d->npages, sizeof(*d->pte));
	d->end = calloc(d->npages, sizeof(*d->end));
	d->used = calloc(d->nwords, sizeof(*d->used));
	if (!d->pte || !d->end || !d->used)
		goto err;

	d->rng = splitmix64(d->cfg.seed);
	if (!d->rng)
		d->rng = 1;
	/* Start where the IOVA is an odd number of pages: aligned to one page only. */
	base_pg = d->cfg.iova_base >> d->cfg.page_shift;
	start = (uint32_t)(xorshift64(&d->rng) % d->npages);
	if (!((base_pg + start) & 1))
		start = start + 1 < d->npages ? start + 1 : (start ? start - 1 : 0);
	d->cursor = start;
	return d;

err:
	dart_emu_free(d);
	return NULL;
}

void dart_emu_free(struct dart_emu *d)
{
	if (!d)
		return;
	free(d->pte);
	free(d->end);
	free(d->used);
	free(d);
}

void dart_emu_get_config(const struct dart_emu *d, struct dart_emu_config *cfg)
{
	*cfg = d->cfg;
}

static int refuse(struct dart_emu *d, int err)
{
	d->st.refusals++;
	return err;
}

int dart_emu_map(struct dart_emu *d, uint64_t paddr, uint64_t len, unsigned int prot,
		 uint64_t *iova)
{
	uint64_t n, pte_flags;
	uint32_t need, pg, i;

	if (!d || !iova || !len || ((paddr | len) & d->page_mask))
		return DART_E_INVAL;
	if (len - 1 > UINT64_MAX - paddr)
		return DART_E_INVAL;
	if (!prot || (prot & ~DART_PROT_ALL))
		return DART_E_INVAL;

	/* Caps first, and without touching anything: a real DART may panic instead. */
	if (len > d->cfg.max_mapped_bytes - d->st.mapped_bytes)
		return refuse(d, DART_E_NOSPACE);
	if (d->st.live_mappings >= d->cfg.max_mappings)
		return refuse(d, DART_E_TOOMANY);

	n = len >> d->cfg.page_shift;
	if (n >= d->npages)	/* the pages plus their guard must fit the window */
		return refuse(d, DART_E_NOIOVA);
	need = (uint32_t)n + 1;
	pg = find_run(d, d->cursor, d->npages, need);
	if (pg == NO_PAGE)
		pg = find_run(d, 0, d->cursor, need);
	if (pg == NO_PAGE)
		return refuse(d, DART_E_NOIOVA);

	pte_flags = PTE_VALID | ((uint64_t)prot << PTE_PROT_SHIFT);
	for (i = 0; i < n; i++) {
		d->pte[pg + i] = (paddr + ((uint64_t)i << d->cfg.page_shift)) | pte_flags;
		d->end[pg + i] = pg + (uint32_t)n;
	}
	d->pte[pg] |= PTE_HEAD;
	mark_used(d, pg, need, true);

	/* Skip a page now and then so consecutive IOVAs share no larger alignment. */
	d->cursor = pg + need + (uint32_t)(xorshift64(&d->rng) & 1);
	if (d->cursor >= d->npages)
		d->cursor = 0;

	d->st.maps++;
	d->st.live_mappings++;
	d->st.mapped_bytes += len;
	if (d->st.live_mappings > d->st.peak_mappings)
		d->st.peak_mappings = d->st.live_mappings;
	if (d->st.mapped_bytes > d->st.peak_mapped_bytes)
		d->st.peak_mapped_bytes = d->st.mapped_bytes;
	*iova = d->cfg.iova_base + ((uint64_t)pg << d->cfg.page_shift);
	return DART_OK;
}

int dart_emu_unmap(struct dart_emu *d, uint64_t iova, uint64_t len)
{
	uint32_t pg, n;

	if (!d || !len || ((iova | len) & d->page_mask))
		return DART_E_INVAL;
	if (iova < d->cfg.iova_base || iova - d->cfg.iova_base >= d->cfg.iova_size)
		return DART_E_NOTMAPPED;
	pg = (uint32_t)((iova - d->cfg.iova_base) >> d->cfg.page_shift);
	if (!(d->pte[pg] & PTE_HEAD))
		return DART_E_NOTMAPPED;
	n = d->end[pg] - pg;
	if ((len >> d->cfg.page_shift) != n)
		return DART_E_LENMISMATCH;

	memset(&d->pte[pg], 0, (size_t)n * sizeof(*d->pte));
	mark_used(d, pg, n + 1, false);
	d->st.unmaps++;
	d->st.live_mappings--;
	d->st.mapped_bytes -= len;
	return DART_OK;
}

static int fault(struct dart_emu *d, int err)
{
	d->st.faults++;
	return err;
}

int dart_emu_translate(struct dart_emu *d, uint64_t iova, unsigned int prot,
		       uint64_t *paddr, uint64_t *contig)
{
	uint64_t pte, off, need;
	uint32_t pg;

	if (!d)
		return DART_E_INVAL;
	if (!prot || (prot & ~DART_PROT_ALL))
		return fault(d, DART_E_INVAL);
	if (iova < d->cfg.iova_base || iova - d->cfg.iova_base >= d->cfg.iova_size)
		return fault(d, DART_E_FAULT);
	pg = (uint32_t)((iova - d->cfg.iova_base) >> d->cfg.page_shift);
	pte = d->pte[pg];
	need = (uint64_t)prot << PTE_PROT_SHIFT;
	if (!(pte & PTE_VALID) || (pte & need) != need)
		return fault(d, DART_E_FAULT);

	/*
	 * A mapping is one physically contiguous range with one permission
	 * (dart_emu_check verifies it), so the run ends where the mapping does.
	 */
	off = iova & d->page_mask;
	if (paddr)
		*paddr = (pte & ~d->page_mask) + off;
	if (contig)
		*contig = ((uint64_t)(d->end[pg] - pg) << d->cfg.page_shift) - off;
	return DART_OK;
}

void dart_emu_reset(struct dart_emu *d)
{
	memset(d->pte, 0, (size_t)d->npages * sizeof(*d->pte));
	memset(d->used, 0, (size_t)d->nwords * sizeof(*d->used));
	/*
	 * The cursor keeps going: IOVAs handed out after a reset differ from
	 * the ones before, so a stale IOVA faults rather than aliasing.
	 */
	d->st.live_mappings = 0;
	d->st.mapped_bytes = 0;
	d->st.peak_mappings = 0;
	d->st.peak_mapped_bytes = 0;
}

void dart_emu_get_stats(const struct dart_emu *d, struct dart_emu_stats *st)
{
	*st = d->st;
}

bool dart_emu_check(const struct dart_emu *d)
{
	uint64_t live = 0, pages = 0, used = 0;
	uint32_t pg = 0, w;

	if (!d || d->cursor >= d->npages)
		return false;
	while (pg < d->npages) {
		uint64_t head = d->pte[pg], flags;
		uint32_t end, i;

		if (!(head & PTE_VALID)) {
			if (head)	/* stray bits in an invalid entry */
				return false;
			pg++;
			continue;
		}
		if (!(head & PTE_HEAD))		/* a mapping must start with its head */
			return false;
		end = d->end[pg];
		/* pages plus the guard page, all inside the window */
		if (end <= pg || end >= d->npages)
			return false;
		flags = head & (PTE_READ | PTE_WRITE);
		if (!flags)
			return false;
		for (i = pg; i < end; i++) {
			uint64_t pte = d->pte[i];
			uint64_t want = (head & ~d->page_mask) +
					((uint64_t)(i - pg) << d->cfg.page_shift);

			if (!(pte & PTE_VALID) || ((pte & PTE_HEAD) != 0) != (i == pg))
				return false;
			if ((pte & (PTE_READ | PTE_WRITE)) != flags)
				return false;
			if ((pte & ~d->page_mask) != want || (pte & d->page_mask & ~PTE_FLAGS))
				return false;
			if (d->end[i] != end || !test_used(d, i))
				return false;
		}
		if (d->pte[end] || !test_used(d, end))	/* the guard */
			return false;
		live++;
		pages += end - pg;
		pg = end + 1;
	}
	for (w = 0; w < d->nwords; w++) {
		uint64_t bits = d->used[w];

		if (w == d->nwords - 1 && d->npages % 64 && (bits >> (d->npages % 64)))
			return false;
		while (bits) {
			used++;
			bits &= bits - 1;
		}
	}
	if (used != pages + live)	/* nothing in use but mappings and their guards */
		return false;
	if (live != d->st.live_mappings || (pages << d->cfg.page_shift) != d->st.mapped_bytes)
		return false;
	if (live > d->cfg.max_mappings || d->st.mapped_bytes > d->cfg.max_mapped_bytes)
		return false;
	if (d->st.peak_mappings < live || d->st.peak_mapped_bytes < d->st.mapped_bytes)
		return false;
	return d->st.maps - d->st.unmaps >= live;
}

const char *dart_emu_strerror(int err)
{
	switch (err) {
	case DART_OK:			return "ok";
	case DART_E_INVAL:		return "invalid argument";
	case DART_E_NOSPACE:		return "mapped-bytes cap reached";
	case DART_E_TOOMANY:		return "live-mappings cap reached";
	case DART_E_NOIOVA:		return "no free IOVA range large enough";
	case DART_E_NOTMAPPED:		return "IOVA starts no live mapping";
	case DART_E_LENMISMATCH:	return "length differs from the mapping's";
	case DART_E_FAULT:		return "translation fault";
	case DART_E_NOMEM:		return "out of memory";
	default:			return "unknown error";
	}
}
