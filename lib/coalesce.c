/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * Cluster coalescer core; include/pegpu/coalesce.h is the contract.
 *
 * This file is built into pegpu_dma.ko (arm64 and x86_64 kernels) as well
 * as into user-space tests, so it calls nothing: no libc, no kernel API,
 * no floating point, no 64-bit division (every size is a power of two, so
 * shifts and masks do), no recursion, no VLAs and only a few words of
 * stack.  The kmod calls it under a spinlock, so every path taken per DMA
 * buffer is O(1) apart from the page loop of a MAP or UNMAP, which is
 * bounded by the mapping's size.
 *
 * Memory layout of the caller's block (each part 16-byte aligned):
 *
 *	struct pgc_record recs[max_records];
 *	struct pgc_slot   cluster_tab[cluster_mask + 1];
 *	struct pgc_slot   page_tab[page_mask_tab + 1];
 *
 * Both tables use linear probing with backward-shift deletion: removing an
 * entry moves later entries of its probe run back instead of leaving a
 * tombstone, so after any amount of churn a table holds exactly its live
 * keys and probe runs stay as short as the load factor (at most 1/2) makes
 * them.
 */
#include "pegpu/coalesce.h"

enum pgc_rec_state {
	PGC_REC_FREE = 0,
	PGC_REC_PENDING,	/* MAP planned, outcome not reported yet */
	PGC_REC_LIVE,		/* mapped at iova */
	PGC_REC_FAILED,		/* MAP failed; waits for its refs to be put */
};

struct pgc_record {
	uint64_t addr;		/* guest-physical start, page aligned */
	uint64_t len;		/* bytes, page multiple */
	uint64_t iova;		/* valid while live */
	uint64_t bytes;		/* sum of the referencing buffers' lengths */
	uint32_t refs;
	uint32_t next;		/* free list link */
	uint8_t state;		/* enum pgc_rec_state */
	uint8_t kind;		/* enum pgc_kind */
};

/*
 * The key is stored rather than derived from the record so that probing
 * and backward shifts never touch the (colder) record array.
 */
struct pgc_slot {
	uint64_t key;
	uint32_t rec;		/* PGC_NONE: empty */
	uint32_t pad;
};

#define PGC_U64_MAX	(~(uint64_t)0)
#define PGC_U32_MAX	(~(uint32_t)0)
#define PGC_TAB_MISS	PGC_U64_MAX

/* Limits that keep every size below in range on 32- and 64-bit hosts. */
#define PGC_PAGE_SHIFT_MIN	9
#define PGC_PAGE_SHIFT_MAX	32
#define PGC_MAX_RECORDS_LIMIT	(1u << 30)
#define PGC_MAX_PAGES_LIMIT	(1ull << 31)

#define PGC_ALIGN16(x)	(((x) + 15) & ~(uint64_t)15)

/* murmur3's fmix64: a bijection whose low bits depend on every key bit. */
static uint64_t pgc_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* log2 of a power of two, as popcount(x - 1): no builtins, no libgcc. */
static uint32_t pgc_log2(uint64_t pow2)
{
	uint64_t x = pow2 - 1;

	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

static bool pgc_is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Smallest power of two >= 2 * n (n >= 1), so the load stays <= 1/2. */
static uint64_t pgc_tab_size(uint64_t n)
{
	uint64_t size = 2;

	while (size < 2 * n)
		size <<= 1;
	return size;
}

static uint64_t pgc_tab_find(const struct pgc_slot *t, uint64_t mask, uint64_t key)
{
	uint64_t i = pgc_mix(key) & mask;

	/* Terminates: the population is always below the table size. */
	while (t[i].rec != PGC_NONE) {
		if (t[i].key == key)
			return i;
		i = (i + 1) & mask;
	}
	return PGC_TAB_MISS;
}

/* The caller guarantees key is absent and the table is not full. */
static void pgc_tab_insert(struct pgc_slot *t, uint64_t mask, uint64_t key, uint32_t rec)
{
	uint64_t i = pgc_mix(key) & mask;

	while (t[i].rec != PGC_NONE)
		i = (i + 1) & mask;
	t[i].key = key;
	t[i].rec = rec;
}

static void pgc_tab_remove_at(struct pgc_slot *t, uint64_t mask, uint64_t hole)
{
	uint64_t j = hole;
	uint64_t home;

	for (;;) {
		j = (j + 1) & mask;
		if (t[j].rec == PGC_NONE)
			break;
		home = pgc_mix(t[j].key) & mask;
		/*
		 * The entry at j may move back into the hole only if the hole
		 * lies on its probe path home..j: placed before its home, no
		 * lookup would find it.
		 */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			t[hole].key = t[j].key;
			t[hole].rec = t[j].rec;
			hole = j;
		}
	}
	t[hole].key = 0;
	t[hole].rec = PGC_NONE;
}

static void pgc_tab_clear(struct pgc_slot *t, uint64_t mask)
{
	uint64_t i;

	for (i = 0; i <= mask; i++) {
		t[i].key = 0;
		t[i].rec = PGC_NONE;
		t[i].pad = 0;
	}
}

static uint64_t pgc_page_mask(const struct pgc *c)
{
	return ((uint64_t)1 << c->cfg.page_shift) - 1;
}

static uint64_t pgc_cluster_key(const struct pgc *c, uint64_t base)
{
	return base >> pgc_log2(c->cfg.cluster_size);
}

static uint64_t pgc_rec_pages(const struct pgc *c, const struct pgc_record *r)
{
	return r->len >> c->cfg.page_shift;
}

static void pgc_stats_zero(struct pgc_stats *st)
{
	st->live_records = 0;
	st->live_clusters = 0;
	st->live_exact = 0;
	st->mapped_bytes = 0;
	st->live_buffers = 0;
	st->buffer_bytes = 0;
	st->peak_records = 0;
	st->peak_mapped_bytes = 0;
	st->hits = 0;
	st->misses = 0;
	st->releases = 0;
}

static void pgc_rec_clear(struct pgc_record *r)
{
	r->addr = 0;
	r->len = 0;
	r->iova = 0;
	r->bytes = 0;
	r->refs = 0;
	r->state = PGC_REC_FREE;
	r->kind = 0;
}

static void pgc_rec_free(struct pgc *c, uint32_t idx)
{
	struct pgc_record *r = &c->recs[idx];

	pgc_rec_clear(r);
	r->next = c->free_head;
	c->free_head = idx;
}

static void pgc_req_fill(struct pgc_req *req, uint32_t rec, uint64_t addr, uint64_t len,
			 uint64_t iova)
{
	if (!req)
		return;
	req->rec = rec;
	req->addr = addr;
	req->len = len;
	req->iova = iova;
}

/*
 * Layout of the caller's block for cfg, or false if cfg is unusable.
 * Offsets are computed in 64 bits and checked against size_t so a 32-bit
 * build cannot wrap.
 */
static bool pgc_layout(const struct pgc_config *cfg, uint64_t *cluster_slots,
		       uint64_t *page_slots, uint64_t *off_ctab, uint64_t *off_ptab,
		       uint64_t *total)
{
	uint64_t page_size;

	if (!cfg)
		return false;
	if (cfg->page_shift < PGC_PAGE_SHIFT_MIN || cfg->page_shift > PGC_PAGE_SHIFT_MAX)
		return false;
	if (cfg->max_records == 0 || cfg->max_records > PGC_MAX_RECORDS_LIMIT)
		return false;
	if (cfg->max_pages == 0 || cfg->max_pages > PGC_MAX_PAGES_LIMIT)
		return false;
	page_size = (uint64_t)1 << cfg->page_shift;
	if (cfg->cluster_size) {
		if (!pgc_is_pow2(cfg->cluster_size) || cfg->cluster_size < page_size)
			return false;
		/* A cluster that can never be mapped is a configuration error. */
		if ((cfg->cluster_size >> cfg->page_shift) > cfg->max_pages)
			return false;
	}

	/* Without clusters the cluster table is never probed: one empty slot. */
	*cluster_slots = cfg->cluster_size ? pgc_tab_size(cfg->max_records) : 1;
	*page_slots = pgc_tab_size(cfg->max_pages);
	*off_ctab = PGC_ALIGN16((uint64_t)cfg->max_records * sizeof(struct pgc_record));
	*off_ptab = *off_ctab + PGC_ALIGN16(*cluster_slots * sizeof(struct pgc_slot));
	*total = *off_ptab + *page_slots * sizeof(struct pgc_slot);
	return *total <= (uint64_t)(size_t)-1;
}

/**
 * pgc_mem_size() - bytes of memory pgc_init() needs for @cfg
 * @cfg: configuration
 *
 * Return: the size, or 0 if @cfg is invalid (page_shift outside 9..32,
 * cluster_size neither 0 nor a power of two >= the page, a cluster larger
 * than max_pages, max_records outside 1..2^30, max_pages outside 1..2^31).
 */
size_t pgc_mem_size(const struct pgc_config *cfg)
{
	uint64_t cs, ps, oc, op, total;

	if (!pgc_layout(cfg, &cs, &ps, &oc, &op, &total))
		return 0;
	return (size_t)total;
}

/**
 * pgc_init() - set up an empty coalescer
 * @c: the coalescer
 * @cfg: configuration, copied
 * @mem: pgc_mem_size(@cfg) bytes, 16-byte aligned, owned by @c until the
 *	 caller stops using it
 *
 * Return: 0, or PGC_E_INVAL for a bad @cfg or @mem.
 */
int pgc_init(struct pgc *c, const struct pgc_config *cfg, void *mem)
{
	uint64_t cs, ps, oc, op, total;
	unsigned char *base = mem;
	uint32_t i;

	if (!c || !mem || ((uintptr_t)mem & 15))
		return PGC_E_INVAL;
	if (!pgc_layout(cfg, &cs, &ps, &oc, &op, &total))
		return PGC_E_INVAL;

	c->cfg.cluster_size = cfg->cluster_size;
	c->cfg.page_shift = cfg->page_shift;
	c->cfg.max_records = cfg->max_records;
	c->cfg.max_pages = cfg->max_pages;
	c->cfg.cluster_ok = cfg->cluster_ok;
	c->cfg.ctx = cfg->ctx;
	c->recs = (struct pgc_record *)(void *)base;
	c->cluster_tab = (struct pgc_slot *)(void *)(base + oc);
	c->page_tab = (struct pgc_slot *)(void *)(base + op);
	c->cluster_mask = (uint32_t)(cs - 1);
	c->page_mask_tab = ps - 1;
	c->drain_next = 0;
	c->pages_reserved = 0;
	pgc_stats_zero(&c->st);

	/* Ascending free list: the first records handed out are 0, 1, ... */
	for (i = 0; i < cfg->max_records; i++) {
		pgc_rec_clear(&c->recs[i]);
		c->recs[i].next = i + 1 < cfg->max_records ? i + 1 : PGC_NONE;
	}
	c->free_head = 0;
	pgc_tab_clear(c->cluster_tab, c->cluster_mask);
	pgc_tab_clear(c->page_tab, c->page_mask_tab);
	return 0;
}

/**
 * pgc_map() - plan the mapping of buffer [@phys, @phys + @len)
 * @c: the coalescer
 * @phys: guest-physical start of the buffer
 * @len: bytes, > 0
 * @ref: filled with the buffer's handle on success
 * @req: filled with the MAP to issue when PGC_NEW is returned
 *
 * A buffer inside one cluster shares the cluster's record; an existing
 * record is reused without consulting cluster_ok again (it approved the
 * cluster when the record was created).  Any other buffer gets an exact
 * record of its pages.  Errors change nothing.
 *
 * Return: PGC_HIT, PGC_NEW, PGC_E_INVAL (zero length, a range that wraps
 * or ends in the last page of the address space), PGC_E_FULL (no record,
 * not enough page capacity, or a reference count at its limit) or
 * PGC_E_FAILED (the cluster's MAP failed and its references are not all
 * put yet).
 */
int pgc_map(struct pgc *c, uint64_t phys, uint64_t len, struct pgc_ref *ref,
	    struct pgc_req *req)
{
	uint64_t pmask, last, addr, size, pages, key = 0;
	struct pgc_record *r;
	bool cluster = false;
	uint64_t slot;
	uint32_t idx;

	if (!c || !ref || !req)
		return PGC_E_INVAL;
	pmask = pgc_page_mask(c);
	if (len == 0 || len - 1 > PGC_U64_MAX - phys)
		return PGC_E_INVAL;
	last = phys + len - 1;
	/* The mapping's end (last page + 1) must be representable. */
	if ((last | pmask) == PGC_U64_MAX)
		return PGC_E_INVAL;

	addr = phys & ~pmask;
	if (c->cfg.cluster_size) {
		uint64_t cmask = c->cfg.cluster_size - 1;
		uint64_t base = phys & ~cmask;

		if ((last & ~cmask) == base) {
			key = pgc_cluster_key(c, base);
			slot = pgc_tab_find(c->cluster_tab, c->cluster_mask, key);
			if (slot != PGC_TAB_MISS) {
				idx = c->cluster_tab[slot].rec;
				r = &c->recs[idx];
				if (r->state == PGC_REC_FAILED)
					return PGC_E_FAILED;
				if (r->refs == PGC_U32_MAX)
					return PGC_E_FULL;
				r->refs++;
				r->bytes += len;
				c->st.live_buffers++;
				c->st.buffer_bytes += len;
				c->st.hits++;
				ref->rec = idx;
				ref->offset = phys - base;
				ref->len = len;
				pgc_req_fill(req, PGC_NONE, 0, 0, 0);
				return PGC_HIT;
			}
			cluster = !c->cfg.cluster_ok ||
				  c->cfg.cluster_ok(c->cfg.ctx, base, c->cfg.cluster_size);
			if (cluster)
				addr = base;
		}
	}

	size = cluster ? c->cfg.cluster_size : (last | pmask) + 1 - addr;
	pages = size >> c->cfg.page_shift;
	if (c->free_head == PGC_NONE || pages > c->cfg.max_pages - c->pages_reserved)
		return PGC_E_FULL;

	idx = c->free_head;
	r = &c->recs[idx];
	c->free_head = r->next;
	r->next = PGC_NONE;
	r->addr = addr;
	r->len = size;
	r->iova = 0;
	r->bytes = len;
	r->refs = 1;
	r->state = PGC_REC_PENDING;
	r->kind = cluster ? PGC_KIND_CLUSTER : PGC_KIND_EXACT;
	if (cluster)
		pgc_tab_insert(c->cluster_tab, c->cluster_mask, key, idx);
	c->pages_reserved += pages;
	c->st.live_buffers++;
	c->st.buffer_bytes += len;
	c->st.misses++;

	ref->rec = idx;
	ref->offset = phys - addr;
	ref->len = len;
	pgc_req_fill(req, idx, addr, size, 0);
	return PGC_NEW;
}

/**
 * pgc_map_failed() - the MAP for a pending record failed
 * @c: the coalescer
 * @rec: req->rec of the PGC_NEW
 *
 * The record keeps its references (each must be put) and, for a cluster,
 * its table entry, so that later buffers of the same batch get
 * PGC_E_FAILED rather than a second MAP of the same cluster.  Ignored
 * unless @rec is pending.
 */
void pgc_map_failed(struct pgc *c, uint32_t rec)
{
	struct pgc_record *r;

	if (!c || rec >= c->cfg.max_records)
		return;
	r = &c->recs[rec];
	if (r->state != PGC_REC_PENDING)
		return;
	r->state = PGC_REC_FAILED;
	c->pages_reserved -= pgc_rec_pages(c, r);
}

/**
 * pgc_map_done() - the MAP for a pending record succeeded
 * @c: the coalescer
 * @rec: req->rec of the PGC_NEW
 * @iova: the IOVA the device chose
 *
 * Every IOVA page of the mapping goes into the page table, so any dma
 * address inside it resolves in O(1).  An @iova the tables cannot hold
 * (not page aligned, wrapping, or overlapping a live mapping: a broken
 * device) turns the record failed, as pgc_map_failed() would; the caller
 * notices through pgc_dma_addr() returning false.  Ignored unless @rec is
 * pending.
 */
void pgc_map_done(struct pgc *c, uint32_t rec, uint64_t iova)
{
	uint64_t first, pages, p;
	struct pgc_record *r;

	if (!c || rec >= c->cfg.max_records)
		return;
	r = &c->recs[rec];
	if (r->state != PGC_REC_PENDING)
		return;
	if ((iova & pgc_page_mask(c)) || r->len - 1 > PGC_U64_MAX - iova)
		goto bad;
	first = iova >> c->cfg.page_shift;
	pages = pgc_rec_pages(c, r);
	for (p = 0; p < pages; p++)
		if (pgc_tab_find(c->page_tab, c->page_mask_tab, first + p) != PGC_TAB_MISS)
			goto bad;
	for (p = 0; p < pages; p++)
		pgc_tab_insert(c->page_tab, c->page_mask_tab, first + p, rec);

	r->iova = iova;
	r->state = PGC_REC_LIVE;
	c->st.live_records++;
	if (r->kind == PGC_KIND_CLUSTER)
		c->st.live_clusters++;
	else
		c->st.live_exact++;
	c->st.mapped_bytes += r->len;
	if (c->st.live_records > c->st.peak_records)
		c->st.peak_records = c->st.live_records;
	if (c->st.mapped_bytes > c->st.peak_mapped_bytes)
		c->st.peak_mapped_bytes = c->st.mapped_bytes;
	return;
bad:
	pgc_map_failed(c, rec);
}

/**
 * pgc_dma_addr() - dma address of a buffer
 * @c: the coalescer
 * @ref: the buffer's handle from pgc_map()
 * @dma: filled on success
 *
 * Return: true if @ref's record is live.
 */
bool pgc_dma_addr(const struct pgc *c, const struct pgc_ref *ref, uint64_t *dma)
{
	const struct pgc_record *r;

	if (!c || !ref || !dma || ref->rec >= c->cfg.max_records)
		return false;
	r = &c->recs[ref->rec];
	if (r->state != PGC_REC_LIVE || ref->offset >= r->len)
		return false;
	*dma = r->iova + ref->offset;
	return true;
}

/* Take a record out of both tables and free it; it has no references left. */
static int pgc_rec_release(struct pgc *c, uint32_t idx, struct pgc_req *req)
{
	struct pgc_record *r = &c->recs[idx];
	uint64_t pages = pgc_rec_pages(c, r);
	uint64_t slot, first, p;
	int ret = 0;

	if (r->kind == PGC_KIND_CLUSTER) {
		slot = pgc_tab_find(c->cluster_tab, c->cluster_mask,
				    pgc_cluster_key(c, r->addr));
		if (slot != PGC_TAB_MISS && c->cluster_tab[slot].rec == idx)
			pgc_tab_remove_at(c->cluster_tab, c->cluster_mask, slot);
	}
	/* Lengths passed to unmap that differ from the map's leave a remainder. */
	c->st.buffer_bytes -= r->bytes;
	c->st.live_buffers -= r->refs;

	if (r->state == PGC_REC_LIVE) {
		first = r->iova >> c->cfg.page_shift;
		for (p = 0; p < pages; p++) {
			slot = pgc_tab_find(c->page_tab, c->page_mask_tab, first + p);
			if (slot != PGC_TAB_MISS && c->page_tab[slot].rec == idx)
				pgc_tab_remove_at(c->page_tab, c->page_mask_tab, slot);
		}
		c->pages_reserved -= pages;
		c->st.live_records--;
		if (r->kind == PGC_KIND_CLUSTER)
			c->st.live_clusters--;
		else
			c->st.live_exact--;
		c->st.mapped_bytes -= r->len;
		c->st.releases++;
		pgc_req_fill(req, idx, r->addr, r->len, r->iova);
		ret = PGC_RELEASE;
	} else if (r->state == PGC_REC_PENDING) {
		c->pages_reserved -= pages;
	}
	pgc_rec_free(c, idx);
	return ret;
}

static int pgc_drop_ref(struct pgc *c, uint32_t idx, uint64_t len, struct pgc_req *req)
{
	struct pgc_record *r = &c->recs[idx];
	uint64_t sub = len < r->bytes ? len : r->bytes;

	r->bytes -= sub;
	c->st.buffer_bytes -= sub;
	r->refs--;
	c->st.live_buffers--;
	if (r->refs)
		return PGC_KEEP;
	return pgc_rec_release(c, idx, req);
}

/**
 * pgc_put() - drop the reference a pgc_map() took
 * @c: the coalescer
 * @ref: the handle pgc_map() filled
 * @req: filled when PGC_RELEASE is returned (may be NULL otherwise)
 *
 * For rollback.  Dropping the last reference of a pending record frees it:
 * the caller must then not issue (or must ignore) its MAP.
 *
 * Return: PGC_KEEP, PGC_RELEASE, 0 when a pending or failed record went
 * away, or PGC_E_INVAL for a handle that holds no reference.
 */
int pgc_put(struct pgc *c, const struct pgc_ref *ref, struct pgc_req *req)
{
	if (!c || !ref || ref->rec >= c->cfg.max_records)
		return PGC_E_INVAL;
	if (c->recs[ref->rec].state == PGC_REC_FREE || !c->recs[ref->rec].refs)
		return PGC_E_INVAL;
	return pgc_drop_ref(c, ref->rec, ref->len, req);
}

/* The live record whose mapping contains dma, or PGC_NONE. */
static uint32_t pgc_find_dma(const struct pgc *c, uint64_t dma)
{
	uint64_t slot = pgc_tab_find(c->page_tab, c->page_mask_tab, dma >> c->cfg.page_shift);

	return slot == PGC_TAB_MISS ? PGC_NONE : c->page_tab[slot].rec;
}

/**
 * pgc_unmap() - the DMA API unmaps buffer [@dma, @dma + @len)
 * @c: the coalescer
 * @dma: dma address pgc_dma_addr() gave for the buffer
 * @len: the buffer's length
 * @req: filled when PGC_RELEASE is returned
 *
 * Return: PGC_KEEP, PGC_RELEASE (the record is already gone from the
 * tables), or PGC_E_NOENT when the buffer is not inside one live mapping
 * (unknown address, zero or wrapping length, or a length running past the
 * mapping's end); errors change nothing.
 */
int pgc_unmap(struct pgc *c, uint64_t dma, uint64_t len, struct pgc_req *req)
{
	const struct pgc_record *r;
	uint32_t idx;

	if (!c || len == 0 || len - 1 > PGC_U64_MAX - dma)
		return PGC_E_NOENT;
	idx = pgc_find_dma(c, dma);
	if (idx == PGC_NONE)
		return PGC_E_NOENT;
	r = &c->recs[idx];
	/* Compare last bytes: a mapping may end at the top of the IOVA space. */
	if (dma < r->iova || dma + (len - 1) > r->iova + (r->len - 1))
		return PGC_E_NOENT;
	return pgc_drop_ref(c, idx, len, req);
}

/**
 * pgc_lookup() - guest-physical address behind a dma address
 * @c: the coalescer
 * @dma: any address inside a live mapping
 * @phys: filled on success
 *
 * Return: true if @dma lies in a live mapping.
 */
bool pgc_lookup(const struct pgc *c, uint64_t dma, uint64_t *phys)
{
	const struct pgc_record *r;
	uint32_t idx;

	if (!c || !phys)
		return false;
	idx = pgc_find_dma(c, dma);
	if (idx == PGC_NONE)
		return false;
	r = &c->recs[idx];
	*phys = r->addr + (dma - r->iova);
	return true;
}

/**
 * pgc_for_each() - visit every live record, in record order
 * @c: the coalescer
 * @fn: called once per live record; must not call back into @c
 * @ctx: passed to @fn
 */
void pgc_for_each(const struct pgc *c, pgc_visit_fn fn, void *ctx)
{
	const struct pgc_record *r;
	uint32_t i;

	if (!c || !fn)
		return;
	for (i = 0; i < c->cfg.max_records; i++) {
		r = &c->recs[i];
		if (r->state == PGC_REC_LIVE)
			fn(ctx, (enum pgc_kind)r->kind, r->iova, r->addr, r->len, r->refs);
	}
}

/**
 * pgc_drain_one() - empty the coalescer, one UNMAP at a time
 * @c: the coalescer
 * @req: filled with the next live mapping to unmap
 *
 * Each call removes one live record, whatever its reference count, and
 * returns its UNMAP.  When none is left, pending and failed records are
 * forgotten too (their MAPs must not be reported afterwards) and false is
 * returned: the coalescer is then empty and usable again.  Between calls
 * it stays consistent; the scan resumes where the last call stopped, so a
 * full drain costs O(max_records) in all.
 *
 * Return: true if *@req names a mapping to unmap.
 */
bool pgc_drain_one(struct pgc *c, struct pgc_req *req)
{
	uint32_t i, pass;

	if (!c)
		return false;
	for (pass = 0; pass < 2; pass++) {
		for (i = c->drain_next; i < c->cfg.max_records; i++) {
			if (c->recs[i].state != PGC_REC_LIVE)
				continue;
			c->drain_next = i + 1;
			pgc_rec_release(c, i, req);
			return true;
		}
		/* Records mapped behind the cursor since the drain started. */
		c->drain_next = 0;
		if (!c->st.live_records)
			break;
	}
	for (i = 0; i < c->cfg.max_records; i++)
		if (c->recs[i].state != PGC_REC_FREE)
			pgc_rec_release(c, i, NULL);
	return false;
}

/*
 * Linear probing invariant: every entry is reachable from its home slot,
 * i.e. no empty slot lies between them.  (Duplicate keys show up in
 * pgc_check as a record whose lookup finds another record, or as a count
 * mismatch.)
 */
static bool pgc_tab_check(const struct pgc_slot *t, uint64_t mask, uint64_t *count)
{
	uint64_t empty = PGC_TAB_MISS, run = 0, n = 0, i, j, home;

	for (i = 0; i <= mask; i++) {
		if (t[i].rec == PGC_NONE) {
			empty = i;
			break;
		}
	}
	if (empty == PGC_TAB_MISS)
		return false;
	for (i = 1; i <= mask + 1; i++) {
		j = (empty + i) & mask;
		if (t[j].rec == PGC_NONE) {
			run = 0;
			continue;
		}
		run++;
		n++;
		home = pgc_mix(t[j].key) & mask;
		if (((j - home) & mask) >= run)
			return false;
	}
	*count = n;
	return true;
}

/**
 * pgc_check() - verify internal consistency
 * @c: the coalescer
 *
 * Recounts everything from the records and tables and compares with the
 * statistics: states, kinds and alignment of every record, the free list,
 * reference and byte sums, page reservations, both tables' probing
 * invariants, every page-table entry naming a live record covering that
 * page and every live record owning all its pages, every cluster-table
 * entry naming a cluster record with the same index and vice versa.
 * O(records + table slots + live pages); for tests and fuzzing.
 *
 * Return: true if consistent.
 */
bool pgc_check(const struct pgc *c)
{
	uint64_t pmask, nlive = 0, nclus = 0, nexact = 0, mapped = 0, refs = 0, bytes = 0;
	uint64_t reserved = 0, nfree = 0, ncluster_recs = 0, live_pages = 0;
	uint64_t n, i, p, slot, first, pages;
	const struct pgc_record *r;
	const struct pgc_slot *s;
	uint32_t idx;

	if (!c || !c->recs || !c->cluster_tab || !c->page_tab)
		return false;
	pmask = pgc_page_mask(c);
	if (c->drain_next > c->cfg.max_records)
		return false;

	for (idx = 0; idx < c->cfg.max_records; idx++) {
		r = &c->recs[idx];
		if (r->state == PGC_REC_FREE) {
			if (r->refs || r->bytes)
				return false;
			nfree++;
			continue;
		}
		if (r->state > PGC_REC_FAILED || !r->refs)
			return false;
		if (!r->len || (r->len & pmask) || (r->addr & pmask))
			return false;
		pages = pgc_rec_pages(c, r);
		if (r->kind == PGC_KIND_CLUSTER) {
			if (!c->cfg.cluster_size || r->len != c->cfg.cluster_size ||
			    (r->addr & (c->cfg.cluster_size - 1)))
				return false;
			slot = pgc_tab_find(c->cluster_tab, c->cluster_mask,
					    pgc_cluster_key(c, r->addr));
			if (slot == PGC_TAB_MISS || c->cluster_tab[slot].rec != idx)
				return false;
			ncluster_recs++;
		} else if (r->kind == PGC_KIND_EXACT) {
			if (r->refs != 1)
				return false;
		} else {
			return false;
		}
		refs += r->refs;
		bytes += r->bytes;
		if (r->state == PGC_REC_PENDING)
			reserved += pages;
		if (r->state != PGC_REC_LIVE)
			continue;
		if ((r->iova & pmask) || r->len - 1 > PGC_U64_MAX - r->iova)
			return false;
		reserved += pages;
		live_pages += pages;
		nlive++;
		if (r->kind == PGC_KIND_CLUSTER)
			nclus++;
		else
			nexact++;
		mapped += r->len;
		first = r->iova >> c->cfg.page_shift;
		for (p = 0; p < pages; p++) {
			slot = pgc_tab_find(c->page_tab, c->page_mask_tab, first + p);
			if (slot == PGC_TAB_MISS || c->page_tab[slot].rec != idx)
				return false;
		}
	}

	/* Free list: only free records, each once (bounded walk). */
	n = 0;
	for (idx = c->free_head; idx != PGC_NONE; idx = c->recs[idx].next) {
		if (idx >= c->cfg.max_records || c->recs[idx].state != PGC_REC_FREE)
			return false;
		if (++n > nfree)
			return false;
	}
	if (n != nfree)
		return false;

	if (!pgc_tab_check(c->cluster_tab, c->cluster_mask, &n) || n != ncluster_recs)
		return false;
	for (i = 0; i <= c->cluster_mask; i++) {
		s = &c->cluster_tab[i];
		if (s->rec == PGC_NONE)
			continue;
		if (s->rec >= c->cfg.max_records)
			return false;
		r = &c->recs[s->rec];
		if (r->state == PGC_REC_FREE || r->kind != PGC_KIND_CLUSTER ||
		    pgc_cluster_key(c, r->addr) != s->key)
			return false;
	}

	if (!pgc_tab_check(c->page_tab, c->page_mask_tab, &n) || n != live_pages)
		return false;
	for (i = 0; i <= c->page_mask_tab; i++) {
		s = &c->page_tab[i];
		if (s->rec == PGC_NONE)
			continue;
		if (s->rec >= c->cfg.max_records)
			return false;
		r = &c->recs[s->rec];
		first = r->iova >> c->cfg.page_shift;
		if (r->state != PGC_REC_LIVE || s->key < first ||
		    s->key - first >= pgc_rec_pages(c, r))
			return false;
	}

	if (c->st.live_records != nlive || c->st.live_clusters != nclus ||
	    c->st.live_exact != nexact || c->st.mapped_bytes != mapped ||
	    c->st.live_buffers != refs || c->st.buffer_bytes != bytes ||
	    c->pages_reserved != reserved || reserved > c->cfg.max_pages)
		return false;
	if (c->st.peak_records < nlive || c->st.peak_mapped_bytes < mapped ||
	    c->st.releases > c->st.misses)
		return false;
	return true;
}
