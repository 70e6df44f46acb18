/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for lib/coalesce.c, the cluster coalescer.
 *
 * Besides the scenario tests, a property test drives tens of thousands of
 * random map/unmap batches against a simple array model and runs
 * pgc_check() after every step, and a churn test shows that the hash
 * tables return to their freshly initialised bytes (no tombstones) after
 * hundreds of thousands of operations.
 *
 * coalesce.c must also build freestanding (it goes into pegpu_dma.ko):
 *   gcc -std=gnu11 -O2 -ffreestanding -nostdlib -fno-builtin -Wall -Wextra \
 *       -Werror -Iinclude -c lib/coalesce.c && nm -u coalesce.o   # empty
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pegpu/coalesce.h"

#define KiB		(1024ull)
#define MiB		(1024ull * KiB)
#define PAGE_SHIFT	14
#define PAGE		(1ull << PAGE_SHIFT)
#define CLUSTER		(256 * KiB)

/* ------------------------------------------------------------------ */
/* Fixture: a coalescer plus a fake device handing out odd IOVAs        */
/* ------------------------------------------------------------------ */

/*
 * Like DART, the fake device picks every IOVA itself.  It hands out
 * addresses on odd page numbers (16 KiB aligned, never 32 KiB aligned) with
 * unmapped gaps between them, and never reuses one, so any address in a
 * gap or beyond `next` belongs to no mapping.
 */
struct fake_dev {
	uint64_t base;
	uint64_t next;
};

static void dev_init(struct fake_dev *d, uint64_t base)
{
	d->base = base;
	d->next = base;
}

static uint64_t dev_alloc(struct fake_dev *d, uint64_t len)
{
	uint64_t iova = d->next;

	if (!((iova >> PAGE_SHIFT) & 1))
		iova += PAGE;
	d->next = iova + len + PAGE * (1 + 2 * ((iova >> PAGE_SHIFT) & 3));
	return iova;
}

struct fix {
	struct pgc c;
	struct pgc_config cfg;
	void *mem;
	size_t mem_size;
	struct fake_dev dev;
};

static struct fix *fix_new(uint64_t cluster_size, uint32_t max_records, uint64_t max_pages)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->cfg.cluster_size = cluster_size;
	f->cfg.page_shift = PAGE_SHIFT;
	f->cfg.max_records = max_records;
	f->cfg.max_pages = max_pages;
	f->mem_size = pgc_mem_size(&f->cfg);
	assert_true(f->mem_size > 0);
	f->mem = aligned_alloc(64, (f->mem_size + 63) & ~(size_t)63);
	assert_non_null(f->mem);
	memset(f->mem, 0xa5, f->mem_size);	/* "contents irrelevant" */
	assert_int_equal(pgc_init(&f->c, &f->cfg, f->mem), 0);
	dev_init(&f->dev, 0x123454000ull);
	assert_true(pgc_check(&f->c));
	return f;
}

static void fix_free(struct fix *f)
{
	free(f->mem);
	free(f);
}

/* pgc_map plus, for PGC_NEW, a successful MAP on the fake device. */
static int map_now(struct fix *f, uint64_t phys, uint64_t len, struct pgc_ref *ref,
		   struct pgc_req *req)
{
	int rc = pgc_map(&f->c, phys, len, ref, req);

	if (rc == PGC_NEW)
		pgc_map_done(&f->c, req->rec, dev_alloc(&f->dev, req->len));
	return rc;
}

static uint64_t dma_of(struct fix *f, const struct pgc_ref *ref)
{
	uint64_t dma = 0;

	assert_true(pgc_dma_addr(&f->c, ref, &dma));
	return dma;
}

static void assert_translates(struct fix *f, uint64_t dma, uint64_t phys)
{
	uint64_t got = ~0ull;

	assert_true(pgc_lookup(&f->c, dma, &got));
	assert_int_equal(got, phys);
}

static void assert_stats_equal(const struct pgc_stats *a, const struct pgc_stats *b)
{
	assert_memory_equal(a, b, sizeof(*a));
}

static void assert_empty(struct fix *f)
{
	assert_int_equal(f->c.st.live_records, 0);
	assert_int_equal(f->c.st.live_clusters, 0);
	assert_int_equal(f->c.st.live_exact, 0);
	assert_int_equal(f->c.st.mapped_bytes, 0);
	assert_int_equal(f->c.st.live_buffers, 0);
	assert_int_equal(f->c.st.buffer_bytes, 0);
	assert_true(pgc_check(&f->c));
}

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

static void test_config_validation(void **state)
{
	struct pgc_config ok = { .cluster_size = CLUSTER, .page_shift = 14,
				 .max_records = 64, .max_pages = 1024 };
	struct pgc_config bad;
	struct pgc c;
	void *mem;
	size_t size;

	(void)state;
	size = pgc_mem_size(&ok);
	/* at least the page table's 2 x max_pages 64-bit keys */
	assert_true(size >= 2 * 1024 * sizeof(uint64_t));
	assert_int_equal(pgc_mem_size(NULL), 0);

	bad = ok;
	bad.cluster_size = 3 * PAGE;		/* not a power of two */
	assert_int_equal(pgc_mem_size(&bad), 0);
	bad.cluster_size = PAGE / 2;		/* smaller than a page */
	assert_int_equal(pgc_mem_size(&bad), 0);
	bad.cluster_size = 2048 * PAGE;		/* can never fit max_pages */
	assert_int_equal(pgc_mem_size(&bad), 0);
	bad = ok;
	bad.max_records = 0;
	assert_int_equal(pgc_mem_size(&bad), 0);
	bad = ok;
	bad.max_pages = 0;
	assert_int_equal(pgc_mem_size(&bad), 0);
	bad = ok;
	bad.page_shift = 2;
	assert_int_equal(pgc_mem_size(&bad), 0);
	bad = ok;
	bad.cluster_size = 0;			/* clusters off: valid, smaller */
	assert_true(pgc_mem_size(&bad) > 0);
	assert_true(pgc_mem_size(&bad) < size);

	mem = aligned_alloc(64, size + 64);
	assert_non_null(mem);
	assert_int_equal(pgc_init(&c, &ok, (char *)mem + 8), PGC_E_INVAL);
	bad = ok;
	bad.max_records = 0;
	assert_int_equal(pgc_init(&c, &bad, mem), PGC_E_INVAL);
	assert_int_equal(pgc_init(&c, &ok, NULL), PGC_E_INVAL);
	assert_int_equal(pgc_init(&c, &ok, mem), 0);
	assert_true(pgc_check(&c));
	free(mem);
}

static void test_invalid_map_args(void **state)
{
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_stats before = f->c.st;
	struct pgc_ref ref;
	struct pgc_req req;

	(void)state;
	assert_int_equal(pgc_map(&f->c, 0x1000, 0, &ref, &req), PGC_E_INVAL);
	assert_int_equal(pgc_map(&f->c, ~0ull - 10, 100, &ref, &req), PGC_E_INVAL);
	/* ends in the last page: the mapping's end is not representable */
	assert_int_equal(pgc_map(&f->c, ~0ull - 100, 100, &ref, &req), PGC_E_INVAL);
	assert_int_equal(pgc_map(&f->c, 0x1000, 10, NULL, &req), PGC_E_INVAL);
	assert_stats_equal(&before, &f->c.st);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

/* ------------------------------------------------------------------ */
/* Clusters and exact mappings                                          */
/* ------------------------------------------------------------------ */

static void test_cluster_packs_small_buffers(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref refs[64];
	struct pgc_req req;
	uint64_t iova, i;

	(void)state;
	assert_int_equal(map_now(f, base, 4 * KiB, &refs[0], &req), PGC_NEW);
	assert_int_equal(req.addr, base);
	assert_int_equal(req.len, CLUSTER);
	assert_int_equal(req.rec, refs[0].rec);
	assert_int_equal(refs[0].offset, 0);
	iova = dma_of(f, &refs[0]);
	assert_int_equal(iova & (PAGE - 1), 0);
	assert_int_equal((iova >> PAGE_SHIFT) & 1, 1);	/* odd page: weird IOVA */

	for (i = 1; i < 64; i++) {
		assert_int_equal(map_now(f, base + i * 4 * KiB, 4 * KiB, &refs[i], &req), PGC_HIT);
		assert_int_equal(refs[i].rec, refs[0].rec);
		assert_int_equal(refs[i].offset, i * 4 * KiB);
		assert_int_equal(refs[i].len, 4 * KiB);
		assert_int_equal(dma_of(f, &refs[i]), iova + i * 4 * KiB);
		assert_translates(f, iova + i * 4 * KiB + 123, base + i * 4 * KiB + 123);
	}
	assert_int_equal(f->c.st.live_records, 1);
	assert_int_equal(f->c.st.live_clusters, 1);
	assert_int_equal(f->c.st.live_exact, 0);
	assert_int_equal(f->c.st.mapped_bytes, CLUSTER);
	assert_int_equal(f->c.st.live_buffers, 64);
	assert_int_equal(f->c.st.buffer_bytes, 64 * 4 * KiB);
	assert_int_equal(f->c.st.hits, 63);
	assert_int_equal(f->c.st.misses, 1);
	assert_int_equal(f->c.st.peak_records, 1);
	assert_int_equal(f->c.st.peak_mapped_bytes, CLUSTER);
	assert_true(pgc_check(&f->c));

	/* a buffer exactly filling a cluster joins it too */
	assert_int_equal(map_now(f, base, CLUSTER, &refs[0], &req), PGC_HIT);
	/* the next cluster is a new mapping */
	assert_int_equal(map_now(f, base + CLUSTER, 1, &refs[1], &req), PGC_NEW);
	assert_int_equal(req.addr, base + CLUSTER);
	assert_int_equal(f->c.st.live_clusters, 2);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

static void test_straddling_buffer_gets_exact_mapping(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref ref;
	struct pgc_req req;
	uint64_t phys, dma;

	(void)state;
	/* 4 KiB crossing a cluster boundary: pages of both sides, rounded */
	phys = base + CLUSTER - 2 * KiB;
	assert_int_equal(map_now(f, phys, 4 * KiB, &ref, &req), PGC_NEW);
	assert_int_equal(req.addr, base + CLUSTER - PAGE);
	assert_int_equal(req.len, 2 * PAGE);
	assert_int_equal(ref.offset, PAGE - 2 * KiB);
	dma = dma_of(f, &ref);
	assert_translates(f, dma, phys);
	assert_translates(f, dma + 4 * KiB - 1, phys + 4 * KiB - 1);
	assert_int_equal(f->c.st.live_exact, 1);
	assert_int_equal(f->c.st.live_clusters, 0);
	assert_int_equal(f->c.st.mapped_bytes, 2 * PAGE);

	/* odd start and odd end round out to whole 16 KiB pages */
	phys = base + 3 * CLUSTER - 0x1003;
	assert_int_equal(map_now(f, phys, 0x8007, &ref, &req), PGC_NEW);
	assert_int_equal(req.addr, phys & ~(PAGE - 1));
	assert_int_equal(req.len, ((phys + 0x8007 + PAGE - 1) & ~(PAGE - 1)) - req.addr);
	assert_int_equal(req.len, 3 * PAGE);
	assert_int_equal(ref.offset, phys & (PAGE - 1));
	assert_int_equal(dma_of(f, &ref) & (PAGE - 1), phys & (PAGE - 1));
	assert_translates(f, dma_of(f, &ref) + 0x8006, phys + 0x8006);

	/* two straddling buffers on the same pages still get two mappings */
	assert_int_equal(map_now(f, base + CLUSTER - 1, 2, &ref, &req), PGC_NEW);
	assert_int_equal(f->c.st.live_exact, 3);
	assert_int_equal(f->c.st.live_records, 3);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

static void test_buffer_larger_than_cluster(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref ref, ref2;
	struct pgc_req req;

	(void)state;
	assert_int_equal(map_now(f, base, 1 * MiB, &ref, &req), PGC_NEW);
	assert_int_equal(req.addr, base);
	assert_int_equal(req.len, 1 * MiB);
	assert_int_equal(ref.offset, 0);
	assert_translates(f, dma_of(f, &ref) + 1 * MiB - 1, base + 1 * MiB - 1);

	assert_int_equal(map_now(f, base + 5, CLUSTER, &ref2, &req), PGC_NEW);
	assert_int_equal(req.addr, base);
	assert_int_equal(req.len, CLUSTER + PAGE);
	assert_int_equal(ref2.offset, 5);
	/* a small buffer in the same cluster gets a cluster mapping of its own */
	assert_int_equal(map_now(f, base + 8 * KiB, 4 * KiB, &ref2, &req), PGC_NEW);
	assert_int_equal(req.len, CLUSTER);
	assert_int_equal(f->c.st.live_exact, 2);
	assert_int_equal(f->c.st.live_clusters, 1);
	assert_int_equal(f->c.st.mapped_bytes, 1 * MiB + CLUSTER + PAGE + CLUSTER);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

static void test_cluster_size_zero_maps_every_buffer(void **state)
{
	struct fix *f = fix_new(0, 64, 1024);
	struct pgc_ref a, b;
	struct pgc_req req;
	int i;

	(void)state;
	for (i = 0; i < 8; i++) {
		assert_int_equal(map_now(f, 0x40000000ull + i * 64, 64, &a, &req), PGC_NEW);
		assert_int_equal(req.addr, 0x40000000ull);
		assert_int_equal(req.len, PAGE);
		assert_int_equal(a.offset, (uint64_t)i * 64);
	}
	assert_int_equal(map_now(f, 0x40000003ull, 0x8000, &b, &req), PGC_NEW);
	assert_int_equal(req.len, 3 * PAGE);
	assert_int_equal(b.offset, 3);
	assert_int_equal(f->c.st.live_records, 9);
	assert_int_equal(f->c.st.live_exact, 9);
	assert_int_equal(f->c.st.live_clusters, 0);
	assert_int_equal(f->c.st.hits, 0);
	assert_int_equal(f->c.st.misses, 9);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

struct ok_ctx {
	uint64_t reject_base;
	int calls;
	uint64_t last_base, last_size;
};

static bool cluster_ok_cb(void *ctx, uint64_t base, uint64_t size)
{
	struct ok_ctx *o = ctx;

	o->calls++;
	o->last_base = base;
	o->last_size = size;
	return base != o->reject_base;
}

static void test_cluster_ok_rejects_to_exact(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct ok_ctx o = { .reject_base = base + CLUSTER };
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref ref;
	struct pgc_req req;

	(void)state;
	f->cfg.cluster_ok = cluster_ok_cb;
	f->cfg.ctx = &o;
	assert_int_equal(pgc_init(&f->c, &f->cfg, f->mem), 0);

	assert_int_equal(map_now(f, base + 100, 4 * KiB, &ref, &req), PGC_NEW);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.last_base, base);
	assert_int_equal(o.last_size, CLUSTER);
	assert_int_equal(req.len, CLUSTER);
	/* an existing cluster was approved when created: no second call */
	assert_int_equal(map_now(f, base + 8 * KiB, 4 * KiB, &ref, &req), PGC_HIT);
	assert_int_equal(o.calls, 1);

	/* rejected cluster: exact mappings, each a NEW */
	assert_int_equal(map_now(f, base + CLUSTER + 100, 4 * KiB, &ref, &req), PGC_NEW);
	assert_int_equal(o.last_base, base + CLUSTER);
	assert_int_equal(req.addr, base + CLUSTER);
	assert_int_equal(req.len, PAGE);
	assert_int_equal(ref.offset, 100);
	assert_int_equal(map_now(f, base + CLUSTER + 200, 4 * KiB, &ref, &req), PGC_NEW);
	assert_int_equal(o.calls, 3);
	assert_int_equal(f->c.st.live_clusters, 1);
	assert_int_equal(f->c.st.live_exact, 2);
	/* buffers that are not inside one cluster never ask */
	assert_int_equal(map_now(f, base + CLUSTER - 1, 2, &ref, &req), PGC_NEW);
	assert_int_equal(o.calls, 3);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

/* ------------------------------------------------------------------ */
/* Unmap, lookup, errors                                                */
/* ------------------------------------------------------------------ */

static void test_release_only_at_last_unmap(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref r[3];
	struct pgc_req req;
	uint64_t iova, phys;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		map_now(f, base + i * 8 * KiB, 8 * KiB, &r[i], &req);
	iova = dma_of(f, &r[0]);
	assert_int_equal(pgc_unmap(&f->c, iova + 8 * KiB, 8 * KiB, &req), PGC_KEEP);
	assert_int_equal(pgc_unmap(&f->c, iova, 8 * KiB, &req), PGC_KEEP);
	assert_int_equal(f->c.st.live_records, 1);
	assert_int_equal(f->c.st.live_buffers, 1);
	assert_int_equal(f->c.st.buffer_bytes, 8 * KiB);
	assert_translates(f, iova + 16 * KiB, base + 16 * KiB);
	assert_true(pgc_check(&f->c));

	memset(&req, 0, sizeof(req));
	assert_int_equal(pgc_unmap(&f->c, iova + 16 * KiB, 8 * KiB, &req), PGC_RELEASE);
	assert_int_equal(req.iova, iova);
	assert_int_equal(req.len, CLUSTER);
	assert_int_equal(req.addr, base);
	assert_int_equal(req.rec, r[0].rec);
	assert_false(pgc_lookup(&f->c, iova, &phys));
	assert_false(pgc_dma_addr(&f->c, &r[2], &phys));
	assert_int_equal(f->c.st.releases, 1);
	assert_empty(f);
	/* a second unmap of the same buffer finds nothing */
	assert_int_equal(pgc_unmap(&f->c, iova + 16 * KiB, 8 * KiB, &req), PGC_E_NOENT);

	/* exact mappings release at their single unmap */
	assert_int_equal(map_now(f, base + 5, 1 * MiB, &r[0], &req), PGC_NEW);
	assert_int_equal(pgc_unmap(&f->c, dma_of(f, &r[0]), 1 * MiB, &req), PGC_RELEASE);
	assert_int_equal(req.len, 1 * MiB + PAGE);
	assert_empty(f);
	fix_free(f);
}

static void test_unmap_noent(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref a, b;
	struct pgc_req req;
	struct pgc_stats before;
	uint64_t ia, ib, phys;

	(void)state;
	map_now(f, base + CLUSTER - 4 * KiB, 4 * KiB, &a, &req);	/* last 4K of a cluster */
	map_now(f, base + 8 * MiB - 50, 100, &b, &req);	/* exact: straddles */
	ia = dma_of(f, &a);
	ib = dma_of(f, &b);
	before = f->c.st;

	assert_int_equal(pgc_unmap(&f->c, 0, 4 * KiB, &req), PGC_E_NOENT);
	assert_int_equal(pgc_unmap(&f->c, f->dev.base - PAGE, 4 * KiB, &req), PGC_E_NOENT);
	assert_int_equal(pgc_unmap(&f->c, f->dev.next + 7 * PAGE, 4 * KiB, &req), PGC_E_NOENT);
	/* the gap the device leaves after each mapping is foreign */
	assert_int_equal(pgc_unmap(&f->c, ia - (CLUSTER - 4 * KiB) + CLUSTER, 1, &req),
			 PGC_E_NOENT);
	/* a guest-physical address is not a dma address */
	assert_int_equal(pgc_unmap(&f->c, base + CLUSTER - 4 * KiB, 4 * KiB, &req), PGC_E_NOENT);
	/* a length running past the end of the mapping */
	assert_int_equal(pgc_unmap(&f->c, ia, 4 * KiB + 1, &req), PGC_E_NOENT);
	assert_int_equal(pgc_unmap(&f->c, ib, 2 * PAGE, &req), PGC_E_NOENT);
	/* zero and wrapping lengths */
	assert_int_equal(pgc_unmap(&f->c, ia, 0, &req), PGC_E_NOENT);
	assert_int_equal(pgc_unmap(&f->c, ia, ~0ull, &req), PGC_E_NOENT);
	assert_false(pgc_lookup(&f->c, f->dev.next, &phys));
	assert_false(pgc_lookup(&f->c, ia + 4 * KiB, &phys));	/* gap after cluster */
	assert_stats_equal(&before, &f->c.st);
	assert_true(pgc_check(&f->c));

	/* the real ones still work */
	assert_int_equal(pgc_unmap(&f->c, ib, 100, &req), PGC_RELEASE);
	assert_int_equal(pgc_unmap(&f->c, ia, 4 * KiB, &req), PGC_RELEASE);
	assert_empty(f);
	fix_free(f);
}

static void test_pending_hits_within_batch(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref r[4];
	struct pgc_req req, req2;
	uint64_t dma, phys, iova;
	int i;

	(void)state;
	assert_int_equal(pgc_map(&f->c, base + 4 * KiB, 4 * KiB, &r[0], &req), PGC_NEW);
	for (i = 1; i < 4; i++) {
		assert_int_equal(pgc_map(&f->c, base + (i + 1) * 4 * KiB, 4 * KiB, &r[i], &req2),
				 PGC_HIT);
		assert_int_equal(r[i].rec, req.rec);
		assert_false(pgc_dma_addr(&f->c, &r[i], &dma));
	}
	/* pending: not live, not translatable, not unmappable */
	assert_int_equal(f->c.st.live_records, 0);
	assert_int_equal(f->c.st.live_buffers, 4);
	assert_int_equal(f->c.st.hits, 3);
	assert_int_equal(f->c.st.misses, 1);
	assert_true(pgc_check(&f->c));

	iova = dev_alloc(&f->dev, req.len);
	pgc_map_done(&f->c, req.rec, iova);
	pgc_map_done(&f->c, req.rec, iova + 64 * MiB);	/* not pending any more: ignored */
	for (i = 0; i < 4; i++) {
		assert_int_equal(dma_of(f, &r[i]), iova + (i + 1) * 4 * KiB);
		assert_translates(f, iova + (i + 1) * 4 * KiB, base + (i + 1) * 4 * KiB);
	}
	assert_false(pgc_lookup(&f->c, iova + 64 * MiB, &phys));
	assert_int_equal(f->c.st.live_records, 1);
	assert_true(pgc_check(&f->c));
	for (i = 0; i < 4; i++)
		assert_int_equal(pgc_unmap(&f->c, dma_of(f, &r[i]), 4 * KiB, &req),
				 i < 3 ? PGC_KEEP : PGC_RELEASE);
	assert_empty(f);
	fix_free(f);
}

static void test_map_failed_and_rollback(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref a, b, c, d, e;
	struct pgc_req req, req2;
	struct pgc_stats before;
	uint64_t dma;

	(void)state;
	/* a batch: a NEW cluster, a HIT on it, an exact buffer */
	assert_int_equal(pgc_map(&f->c, base, 4 * KiB, &a, &req), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + 4 * KiB, 4 * KiB, &b, &req2), PGC_HIT);
	assert_int_equal(pgc_map(&f->c, base + 1 * MiB, 1 * MiB, &c, &req2), PGC_NEW);
	pgc_map_failed(&f->c, req.rec);
	pgc_map_failed(&f->c, req2.rec);
	assert_false(pgc_dma_addr(&f->c, &a, &dma));
	assert_true(pgc_check(&f->c));

	/* later buffers of the batch for that cluster: E_FAILED, no state change */
	before = f->c.st;
	assert_int_equal(pgc_map(&f->c, base + 64 * KiB, 4 * KiB, &d, &req2), PGC_E_FAILED);
	assert_stats_equal(&before, &f->c.st);

	assert_int_equal(pgc_put(&f->c, &a, &req2), PGC_KEEP);
	assert_int_equal(pgc_put(&f->c, &b, &req2), 0);
	assert_int_equal(pgc_put(&f->c, &c, &req2), 0);
	assert_int_equal(pgc_put(&f->c, &c, &req2), PGC_E_INVAL);	/* already gone */
	assert_int_equal(f->c.st.releases, 0);
	assert_empty(f);

	/* the cluster can be tried again in the next batch */
	assert_int_equal(map_now(f, base + 64 * KiB, 4 * KiB, &d, &req), PGC_NEW);
	assert_int_equal(map_now(f, base, 4 * KiB, &e, &req2), PGC_HIT);

	/* rollback of live references: KEEP, then RELEASE at the last */
	dma = dma_of(f, &d) - 64 * KiB;
	assert_int_equal(pgc_put(&f->c, &e, &req2), PGC_KEEP);
	assert_int_equal(pgc_put(&f->c, &d, &req2), PGC_RELEASE);
	assert_int_equal(req2.iova, dma);
	assert_int_equal(req2.addr, base);
	assert_int_equal(req2.len, CLUSTER);
	assert_empty(f);

	/* rollback of a pending record before its MAP went out */
	assert_int_equal(pgc_map(&f->c, base, 4 * KiB, &a, &req), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + 8 * KiB, 4 * KiB, &b, &req), PGC_HIT);
	assert_int_equal(pgc_put(&f->c, &b, NULL), PGC_KEEP);
	assert_int_equal(pgc_put(&f->c, &a, NULL), 0);
	assert_empty(f);
	assert_int_equal(f->c.st.releases, 1);
	fix_free(f);
}

static void test_full_without_state_change(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 4, 48);	/* 4 records, 768 KiB */
	struct pgc_ref r[8], x;
	struct pgc_req req;
	struct pgc_stats before;
	uint64_t reserved;
	int i;

	(void)state;
	/* records: one cluster + three exact = 4 = max_records */
	assert_int_equal(map_now(f, base, 4 * KiB, &r[0], &req), PGC_NEW);
	for (i = 1; i < 4; i++)
		assert_int_equal(map_now(f, base + i * MiB - 2 * KiB, 4 * KiB + 1, &r[i], &req),
				 PGC_NEW);
	assert_int_equal(f->c.st.live_exact, 3);
	assert_int_equal(f->c.st.live_records, 4);

	before = f->c.st;
	reserved = f->c.pages_reserved;
	assert_int_equal(pgc_map(&f->c, base + 32 * MiB, 4 * KiB, &x, &req), PGC_E_FULL);
	assert_int_equal(pgc_map(&f->c, base + 33 * MiB, 1 * MiB, &x, &req), PGC_E_FULL);
	assert_stats_equal(&before, &f->c.st);
	assert_int_equal(f->c.pages_reserved, reserved);
	assert_true(pgc_check(&f->c));
	/* a hit needs no record */
	assert_int_equal(map_now(f, base + 4 * KiB, 4 * KiB, &r[4], &req), PGC_HIT);
	/* freeing one record makes room for exactly one */
	assert_int_equal(pgc_unmap(&f->c, dma_of(f, &r[3]), 4 * KiB + 1, &req), PGC_RELEASE);
	assert_int_equal(map_now(f, base + 32 * MiB, 4 * KiB, &x, &req), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + 34 * MiB, 4 * KiB, &r[5], &req), PGC_E_FULL);
	fix_free(f);

	/* pages: pending reservations count, failures give them back */
	f = fix_new(CLUSTER, 64, 48);			/* 3 clusters' worth */
	assert_int_equal(pgc_map(&f->c, base, 1, &r[0], &req), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + CLUSTER, 1, &r[1], &req), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + 2 * CLUSTER, 1, &r[2], &req), PGC_NEW);
	before = f->c.st;
	assert_int_equal(pgc_map(&f->c, base + 3 * CLUSTER, 1, &x, &req), PGC_E_FULL);
	assert_int_equal(pgc_map(&f->c, base + 8 * MiB, 1, &x, &req), PGC_E_FULL);
	assert_stats_equal(&before, &f->c.st);
	assert_int_equal(pgc_map(&f->c, base + 100, 1, &x, &req), PGC_HIT);	/* pending hit */
	pgc_map_failed(&f->c, r[1].rec);
	assert_int_equal(pgc_map(&f->c, base + 8 * MiB, 16 * PAGE, &r[3], &req), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + 9 * MiB, 1, &r[4], &req), PGC_E_FULL);
	assert_true(pgc_check(&f->c));
	assert_int_equal(pgc_put(&f->c, &r[1], NULL), 0);
	assert_int_equal(pgc_put(&f->c, &r[3], NULL), 0);
	assert_int_equal(pgc_put(&f->c, &r[2], NULL), 0);
	assert_int_equal(pgc_put(&f->c, &x, NULL), PGC_KEEP);
	assert_int_equal(pgc_put(&f->c, &r[0], NULL), 0);
	assert_empty(f);
	assert_int_equal(f->c.pages_reserved, 0);

	/* a single exact buffer of exactly max_pages fits; one byte more does not */
	assert_int_equal(pgc_map(&f->c, base, 48 * PAGE + 1, &x, &req), PGC_E_FULL);
	assert_int_equal(map_now(f, base, 48 * PAGE, &x, &req), PGC_NEW);
	assert_int_equal(f->c.st.mapped_bytes, 48 * PAGE);
	assert_int_equal(pgc_map(&f->c, base + 64 * MiB, 1, &r[0], &req), PGC_E_FULL);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

/* ------------------------------------------------------------------ */
/* Odd IOVAs from a broken or unusual device                            */
/* ------------------------------------------------------------------ */

static void test_iova_at_top_of_address_space(void **state)
{
	const uint64_t base = 0x80000000ull;
	const uint64_t top = 0ull - CLUSTER;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref r, r2;
	struct pgc_req req;

	(void)state;
	assert_int_equal(pgc_map(&f->c, base + 4 * KiB, 4 * KiB, &r, &req), PGC_NEW);
	pgc_map_done(&f->c, req.rec, top);
	assert_int_equal(dma_of(f, &r), top + 4 * KiB);
	assert_translates(f, ~0ull, base + CLUSTER - 1);
	assert_int_equal(map_now(f, base + CLUSTER - 4 * KiB, 4 * KiB, &r2, &req), PGC_HIT);
	assert_int_equal(dma_of(f, &r2), ~0ull - 4 * KiB + 1);
	assert_int_equal(pgc_unmap(&f->c, ~0ull - 4 * KiB + 1, 4 * KiB + 1, &req), PGC_E_NOENT);
	assert_int_equal(pgc_unmap(&f->c, ~0ull - 4 * KiB + 1, 4 * KiB, &req), PGC_KEEP);
	assert_true(pgc_check(&f->c));
	assert_int_equal(pgc_unmap(&f->c, top + 4 * KiB, 4 * KiB, &req), PGC_RELEASE);
	assert_int_equal(req.iova, top);
	assert_empty(f);
	fix_free(f);
}

static void test_bad_iova_fails_record(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct pgc_ref a, b, c;
	struct pgc_req req;
	uint64_t dma, ia;

	(void)state;
	map_now(f, base, 4 * KiB, &a, &req);
	ia = dma_of(f, &a);

	/* not page aligned */
	assert_int_equal(pgc_map(&f->c, base + 8 * MiB, 4 * KiB, &b, &req), PGC_NEW);
	pgc_map_done(&f->c, req.rec, 0x7000000ull + 4 * KiB);
	assert_false(pgc_dma_addr(&f->c, &b, &dma));
	assert_true(pgc_check(&f->c));
	assert_int_equal(pgc_put(&f->c, &b, NULL), 0);

	/* overlapping a live mapping: must not corrupt the page table */
	assert_int_equal(pgc_map(&f->c, base + 1 * MiB, 1 * MiB, &c, &req), PGC_NEW);
	pgc_map_done(&f->c, req.rec, ia - 2 * PAGE);
	assert_false(pgc_dma_addr(&f->c, &c, &dma));
	assert_translates(f, ia, base);
	assert_true(pgc_check(&f->c));
	assert_int_equal(pgc_put(&f->c, &c, NULL), 0);

	/* wrapping past the top */
	assert_int_equal(pgc_map(&f->c, base + 8 * MiB, 4 * KiB, &b, &req), PGC_NEW);
	pgc_map_done(&f->c, req.rec, 0ull - PAGE);
	assert_false(pgc_dma_addr(&f->c, &b, &dma));
	assert_int_equal(pgc_put(&f->c, &b, NULL), 0);

	assert_int_equal(f->c.st.live_records, 1);
	assert_int_equal(pgc_unmap(&f->c, ia, 4 * KiB, &req), PGC_RELEASE);
	assert_empty(f);
	fix_free(f);
}

/* ------------------------------------------------------------------ */
/* for_each and drain                                                   */
/* ------------------------------------------------------------------ */

struct seen {
	uint64_t iova[64], phys[64], len[64];
	uint32_t refs[64];
	enum pgc_kind kind[64];
	int n;
};

static void visit(void *ctx, enum pgc_kind kind, uint64_t iova, uint64_t phys, uint64_t len,
		  uint32_t refs)
{
	struct seen *s = ctx;

	assert_true(s->n < 64);
	s->kind[s->n] = kind;
	s->iova[s->n] = iova;
	s->phys[s->n] = phys;
	s->len[s->n] = len;
	s->refs[s->n] = refs;
	s->n++;
}

static void test_for_each_and_drain(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(CLUSTER, 64, 1024);
	struct seen s = { .n = 0 };
	struct pgc_ref r;
	struct pgc_req req, pend, failed;
	uint64_t drained[64];
	int i, j, n = 0, ncl = 0;

	(void)state;
	for (i = 0; i < 10; i++)	/* 5 clusters with 2 refs each */
		map_now(f, base + (i / 2) * CLUSTER + (i & 1) * 4 * KiB, 4 * KiB, &r, &req);
	for (i = 0; i < 3; i++)		/* 3 exact */
		map_now(f, base + 16 * MiB + i * MiB, 1 * MiB, &r, &req);
	/* plus a pending and a failed record */
	assert_int_equal(pgc_map(&f->c, base + 64 * MiB, 1, &r, &pend), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + 65 * MiB, 1, &r, &failed), PGC_NEW);
	pgc_map_failed(&f->c, failed.rec);

	pgc_for_each(&f->c, visit, &s);
	assert_int_equal(s.n, 8);
	for (i = 0; i < s.n; i++) {
		uint64_t phys = ~0ull;

		if (s.kind[i] == PGC_KIND_CLUSTER) {
			ncl++;
			assert_int_equal(s.len[i], CLUSTER);
			assert_int_equal(s.refs[i], 2);
		} else {
			assert_int_equal(s.kind[i], PGC_KIND_EXACT);
			assert_int_equal(s.len[i], 1 * MiB);
			assert_int_equal(s.refs[i], 1);
		}
		assert_true(pgc_lookup(&f->c, s.iova[i], &phys));
		assert_int_equal(phys, s.phys[i]);
	}
	assert_int_equal(ncl, 5);

	while (pgc_drain_one(&f->c, &req)) {
		assert_true(n < 64);
		drained[n++] = req.iova;
		assert_true(pgc_check(&f->c));	/* consistent between calls */
	}
	assert_int_equal(n, 8);
	for (i = 0; i < s.n; i++) {	/* every live mapping exactly once */
		int hits = 0;

		for (j = 0; j < n; j++)
			hits += drained[j] == s.iova[i];
		assert_int_equal(hits, 1);
	}
	assert_empty(f);
	assert_int_equal(f->c.pages_reserved, 0);
	assert_int_equal(f->c.st.releases, 8);
	assert_false(pgc_drain_one(&f->c, &req));
	/* the pending record is forgotten: its late MAP report is ignored */
	pgc_map_done(&f->c, pend.rec, dev_alloc(&f->dev, pend.len));
	assert_empty(f);
	s.n = 0;
	pgc_for_each(&f->c, visit, &s);
	assert_int_equal(s.n, 0);

	/* usable again, all records free */
	for (i = 0; i < 64; i++)
		assert_int_equal(map_now(f, base + i * MiB, 1, &r, &req), PGC_NEW);
	assert_int_equal(pgc_map(&f->c, base + 100 * MiB, 1, &r, &req), PGC_E_FULL);
	assert_true(pgc_check(&f->c));
	fix_free(f);
}

static void test_drain_picks_up_records_behind_cursor(void **state)
{
	const uint64_t base = 0x80000000ull;
	struct fix *f = fix_new(0, 8, 64);
	struct pgc_ref r;
	struct pgc_req req;
	int i, n = 0;

	(void)state;
	for (i = 0; i < 4; i++)
		map_now(f, base + i * MiB, 1, &r, &req);
	assert_true(pgc_drain_one(&f->c, &req));
	assert_true(pgc_drain_one(&f->c, &req));
	/* mapped mid-drain into a freed low record: must still be drained */
	map_now(f, base + 9 * MiB, 1, &r, &req);
	assert_true(r.rec < 2);
	while (pgc_drain_one(&f->c, &req))
		n++;
	assert_int_equal(n, 3);
	assert_empty(f);
	fix_free(f);
}

/* ------------------------------------------------------------------ */
/* Property test against an array model                                 */
/* ------------------------------------------------------------------ */

enum { M_FREE, M_PENDING, M_LIVE, M_FAILED };

struct mrec {
	int state;
	enum pgc_kind kind;
	uint64_t addr, len, iova;
	uint32_t refs;
};

struct mbuf {
	uint64_t phys, len, dma;
	uint32_t rec;
};

struct model {
	struct fix *f;
	struct mrec *recs;
	uint32_t nrecs_used;
	uint64_t reserved;	/* pages of pending + live records */
	struct mbuf *bufs;
	size_t nbufs, cap;
	uint64_t buf_bytes;
	uint64_t rng;
	uint64_t region;	/* base of the densely used physical region */
	uint64_t region_size;
	size_t target;		/* live buffers to hover around */
	bool deep;		/* pgc_check inside batches too */
	unsigned long steps, maps, unmaps, hits, news, fulls, fails, rollbacks;
};

static uint64_t rnd(struct model *m)
{
	uint64_t x = m->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->rng = x;
	return x;
}

static uint64_t rnd_range(struct model *m, uint64_t lo, uint64_t hi)	/* [lo, hi] */
{
	return lo + rnd(m) % (hi - lo + 1);
}

/* Clusters the "kmod" refuses (not all System RAM, say). */
static bool model_cluster_ok(void *ctx, uint64_t base, uint64_t size)
{
	(void)ctx;
	return ((base / size) % 7) != 3;
}

static void gen_buffer(struct model *m, uint64_t *phys, uint64_t *len)
{
	uint64_t r = rnd(m) % 100;
	uint64_t region = m->region;

	if (rnd(m) % 10 == 0)	/* sometimes anywhere in a 1 TiB range */
		region = (rnd(m) & ((1ull << 40) - 1)) & ~(4 * KiB - 1);
	if (r < 60) {
		*len = 4 * KiB;
		*phys = region + (rnd(m) % (m->region_size / (4 * KiB))) * 4 * KiB;
	} else if (r < 70) {
		*len = rnd_range(m, 1, 4 * KiB);
		*phys = region + rnd(m) % m->region_size;
	} else if (r < 90) {
		*len = rnd_range(m, 4 * KiB, 256 * KiB);
		*phys = region + rnd(m) % m->region_size;
	} else if (r < 95) {
		*len = rnd_range(m, 256 * KiB, 4 * MiB);
		*phys = region + rnd(m) % m->region_size;
	} else {		/* straddling a cluster boundary */
		*len = rnd_range(m, 2, 16 * KiB);
		*phys = region + (rnd(m) % (m->region_size / CLUSTER) + 1) * CLUSTER -
			rnd_range(m, 1, *len - 1);
	}
}

static int model_find_cluster(struct model *m, uint64_t base)
{
	uint32_t i;

	for (i = 0; i < m->f->cfg.max_records; i++)
		if (m->recs[i].state != M_FREE && m->recs[i].kind == PGC_KIND_CLUSTER &&
		    m->recs[i].addr == base)
			return (int)i;
	return -1;
}

static void model_free_rec(struct model *m, uint32_t rec)
{
	struct mrec *r = &m->recs[rec];

	if (r->state == M_PENDING || r->state == M_LIVE)
		m->reserved -= r->len / PAGE;
	r->state = M_FREE;
	m->nrecs_used--;
}

static void model_compare_stats(struct model *m)
{
	const struct pgc_stats *st = &m->f->c.st;
	uint64_t live = 0, cl = 0, ex = 0, mapped = 0, refs = 0;
	uint32_t i;

	for (i = 0; i < m->f->cfg.max_records; i++) {
		struct mrec *r = &m->recs[i];

		if (r->state == M_FREE)
			continue;
		refs += r->refs;
		if (r->state != M_LIVE)
			continue;
		live++;
		mapped += r->len;
		if (r->kind == PGC_KIND_CLUSTER)
			cl++;
		else
			ex++;
	}
	assert_int_equal(st->live_records, live);
	assert_int_equal(st->live_clusters, cl);
	assert_int_equal(st->live_exact, ex);
	assert_int_equal(st->mapped_bytes, mapped);
	assert_int_equal(st->live_buffers, refs);
	assert_int_equal(refs, m->nbufs);	/* between batches */
	assert_int_equal(st->buffer_bytes, m->buf_bytes);
	assert_int_equal(m->f->c.pages_reserved, m->reserved);
	assert_true(st->peak_records >= live);
	assert_true(st->peak_mapped_bytes >= mapped);
}

/* Drop one reference in the model; returns the result pgc_* must give. */
static int model_drop(struct model *m, uint32_t rec, const struct pgc_req *req)
{
	struct mrec *r = &m->recs[rec];
	int state = r->state;

	assert_true(r->refs > 0);
	if (--r->refs)
		return PGC_KEEP;
	if (state == M_LIVE) {
		assert_int_equal(req->iova, r->iova);
		assert_int_equal(req->len, r->len);
		assert_int_equal(req->addr, r->addr);
		assert_int_equal(req->rec, rec);
	}
	model_free_rec(m, rec);
	return state == M_LIVE ? PGC_RELEASE : 0;
}


/*
 * One batch, as the kmod runs it: plan up to 6 buffers with pgc_map, let
 * the device MAP the new records (some fail), then drop the buffers of
 * failed MAPs or, now and then, roll the whole batch back with pgc_put.
 */
static void model_batch(struct model *m)
{
	struct {
		uint64_t phys, len;
		struct pgc_ref ref;
	} b[6];
	uint32_t news[6];
	int nb = 0, nn = 0, i, k = (int)rnd_range(m, 1, 6);
	struct pgc *c = &m->f->c;
	uint64_t fail_base = ~0ull;
	bool rollback, any_failed = false;

	for (i = 0; i < k; i++) {
		uint64_t phys, len, base, addr, size, last;
		bool in_cluster, cluster = false;
		int expect, rc, found = -1;
		struct pgc_ref ref;
		struct pgc_req req;
		struct pgc_stats before = c->st;

		gen_buffer(m, &phys, &len);
		last = phys + len - 1;
		base = phys & ~(CLUSTER - 1);
		in_cluster = (last & ~(CLUSTER - 1)) == base;
		if (in_cluster)
			found = model_find_cluster(m, base);
		if (found >= 0) {
			expect = m->recs[found].state == M_FAILED ? PGC_E_FAILED : PGC_HIT;
			addr = base;
			size = CLUSTER;
		} else {
			cluster = in_cluster && model_cluster_ok(NULL, base, CLUSTER);
			addr = cluster ? base : phys & ~(PAGE - 1);
			size = cluster ? CLUSTER : ((last | (PAGE - 1)) + 1) - addr;
			expect = PGC_NEW;
			if (m->nrecs_used == m->f->cfg.max_records ||
			    m->reserved + size / PAGE > m->f->cfg.max_pages)
				expect = PGC_E_FULL;
		}
		rc = pgc_map(c, phys, len, &ref, &req);
		assert_int_equal(rc, expect);
		m->maps++;
		if (rc < 0) {
			m->fulls += rc == PGC_E_FULL;
			assert_stats_equal(&before, &c->st);
			continue;
		}
		assert_int_equal(ref.offset, phys - addr);
		assert_int_equal(ref.len, len);
		if (rc == PGC_HIT) {
			assert_int_equal(ref.rec, (uint32_t)found);
			m->recs[found].refs++;
			m->hits++;
		} else {
			struct mrec *r;

			assert_int_equal(req.rec, ref.rec);
			assert_int_equal(req.addr, addr);
			assert_int_equal(req.len, size);
			assert_true(req.rec < m->f->cfg.max_records);
			r = &m->recs[req.rec];
			assert_int_equal(r->state, M_FREE);
			r->state = M_PENDING;
			r->kind = cluster ? PGC_KIND_CLUSTER : PGC_KIND_EXACT;
			r->addr = addr;
			r->len = size;
			r->iova = 0;
			r->refs = 1;
			m->nrecs_used++;
			m->reserved += size / PAGE;
			news[nn++] = req.rec;
			m->news++;
		}
		b[nb].phys = phys;
		b[nb].len = len;
		b[nb].ref = ref;
		nb++;
	}
	if (m->deep)
		assert_true(pgc_check(c));

	/* the device: most MAPs succeed */
	for (i = 0; i < nn; i++) {
		struct mrec *r = &m->recs[news[i]];

		if (rnd(m) % 10 == 0) {
			pgc_map_failed(c, news[i]);
			r->state = M_FAILED;
			m->reserved -= r->len / PAGE;
			m->fails++;
			any_failed = true;
			if (r->kind == PGC_KIND_CLUSTER)
				fail_base = r->addr;
		} else {
			r->iova = dev_alloc(&m->f->dev, r->len);
			pgc_map_done(c, news[i], r->iova);
			r->state = M_LIVE;
		}
	}
	if (m->deep)
		assert_true(pgc_check(c));
	if (fail_base != ~0ull) {
		struct pgc_stats before = c->st;
		struct pgc_ref ref;
		struct pgc_req req;

		assert_int_equal(pgc_map(c, fail_base + rnd(m) % (CLUSTER - 8), 8, &ref, &req),
				 PGC_E_FAILED);
		assert_stats_equal(&before, &c->st);
	}

	/* the caller: drop buffers of failed MAPs, or roll back everything */
	rollback = rnd(m) % 16 == 0 || (any_failed && rnd(m) % 2);
	m->rollbacks += rollback;
	for (i = 0; i < nb; i++) {
		uint32_t rec = b[i].ref.rec;
		struct pgc_req req;
		struct mbuf *mb;
		uint64_t dma;
		int rc;

		if (rollback || m->recs[rec].state == M_FAILED) {
			memset(&req, 0xee, sizeof(req));
			rc = pgc_put(c, &b[i].ref, &req);
			assert_int_equal(rc, model_drop(m, rec, &req));
			continue;
		}
		assert_true(pgc_dma_addr(c, &b[i].ref, &dma));
		assert_int_equal(dma, m->recs[rec].iova + b[i].ref.offset);
		assert_translates(m->f, dma, b[i].phys);
		assert_translates(m->f, dma + b[i].len - 1, b[i].phys + b[i].len - 1);
		assert_true(m->nbufs < m->cap);
		mb = &m->bufs[m->nbufs++];
		mb->phys = b[i].phys;
		mb->len = b[i].len;
		mb->dma = dma;
		mb->rec = rec;
		m->buf_bytes += b[i].len;
	}
}

static void model_unmap(struct model *m)
{
	size_t i = rnd(m) % m->nbufs;
	struct mbuf mb = m->bufs[i];
	struct pgc *c = &m->f->c;
	struct pgc_req req;

	if (rnd(m) % 8 == 0) {	/* the same buffer with a length past the mapping */
		const struct mrec *r = &m->recs[mb.rec];
		uint64_t past = r->iova + r->len - mb.dma + rnd_range(m, 1, 3 * PAGE);
		struct pgc_stats before = c->st;

		assert_int_equal(pgc_unmap(c, mb.dma, past, &req), PGC_E_NOENT);
		assert_stats_equal(&before, &c->st);
	}
	int rc;

	memset(&req, 0xee, sizeof(req));
	rc = pgc_unmap(c, mb.dma, mb.len, &req);
	assert_int_equal(rc, model_drop(m, mb.rec, &req));
	m->bufs[i] = m->bufs[--m->nbufs];
	m->buf_bytes -= mb.len;
	m->unmaps++;
}

/* Any IOVA: translates iff the model has a live mapping covering it. */
static void model_probe_iova(struct model *m, uint64_t iova)
{
	uint64_t phys = 0, want = 0;
	bool found = false;
	uint32_t i;

	for (i = 0; i < m->f->cfg.max_records; i++) {
		const struct mrec *r = &m->recs[i];

		if (r->state == M_LIVE && iova >= r->iova && iova - r->iova < r->len) {
			assert_false(found);	/* the device never overlaps */
			found = true;
			want = r->addr + (iova - r->iova);
		}
	}
	assert_int_equal(pgc_lookup(&m->f->c, iova, &phys), found);
	if (found)
		assert_int_equal(phys, want);
}

struct visit_log {
	struct model *m;
	int n;
};

static void model_visit(void *ctx, enum pgc_kind kind, uint64_t iova, uint64_t phys,
			uint64_t len, uint32_t refs)
{
	struct visit_log *v = ctx;
	uint32_t i;
	int matches = 0;

	v->n++;
	for (i = 0; i < v->m->f->cfg.max_records; i++) {
		const struct mrec *r = &v->m->recs[i];

		if (r->state == M_LIVE && r->iova == iova) {
			matches++;
			assert_int_equal(r->kind, kind);
			assert_int_equal(r->addr, phys);
			assert_int_equal(r->len, len);
			assert_int_equal(r->refs, refs);
		}
	}
	assert_int_equal(matches, 1);
}

static void model_probe(struct model *m)
{
	struct fake_dev *d = &m->f->dev;
	int i;

	for (i = 0; i < 8; i++)
		model_probe_iova(m, d->base + rnd(m) % (d->next - d->base + 4 * PAGE));
	model_probe_iova(m, d->base - 1);
	if (rnd(m) % 8 == 0) {
		struct visit_log v = { .m = m, .n = 0 };

		pgc_for_each(&m->f->c, model_visit, &v);
		assert_int_equal(v.n, m->f->c.st.live_records);
	}
}

static struct model *model_new(uint64_t seed, uint32_t max_records, uint64_t max_pages,
			       size_t target)
{
	struct model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->f = fix_new(CLUSTER, max_records, max_pages);
	m->f->cfg.cluster_ok = model_cluster_ok;
	assert_int_equal(pgc_init(&m->f->c, &m->f->cfg, m->f->mem), 0);
	m->recs = calloc(max_records, sizeof(*m->recs));
	m->cap = target * 2 + 64;
	m->bufs = calloc(m->cap, sizeof(*m->bufs));
	assert_non_null(m->recs);
	assert_non_null(m->bufs);
	m->rng = seed ? seed : 1;
	m->region = 0x80000000ull;
	m->region_size = 16 * MiB;
	m->target = target;
	return m;
}

static void model_step(struct model *m, bool check)
{
	uint64_t r = rnd(m) % 100;
	unsigned int want_map = m->nbufs < m->target ? 60 : 35;

	if (m->nbufs + 6 >= m->cap)
		want_map = 0;
	if (m->nbufs == 0 || r < want_map)
		model_batch(m);
	else if (r < 93)
		model_unmap(m);
	else
		model_probe(m);
	if (m->nbufs) {		/* every step: one buffer's addresses */
		const struct mbuf *mb = &m->bufs[rnd(m) % m->nbufs];
		uint64_t off = rnd(m) % mb->len;

		assert_translates(m->f, mb->dma + off, mb->phys + off);
	}
	model_compare_stats(m);
	if (check)
		assert_true(pgc_check(&m->f->c));
	m->steps++;
}

/* Unmap everything, then the tables must be byte-identical to fresh ones. */
static void model_finish(struct model *m)
{
	struct fix *fresh = fix_new(CLUSTER, m->f->cfg.max_records, m->f->cfg.max_pages);
	size_t off = (size_t)((char *)m->f->c.cluster_tab - (char *)m->f->mem);

	while (m->nbufs) {
		model_unmap(m);
		if (m->nbufs % 64 == 0)
			assert_true(pgc_check(&m->f->c));
	}
	model_compare_stats(m);
	assert_empty(m->f);
	assert_int_equal(m->f->c.pages_reserved, 0);
	assert_int_equal(m->nrecs_used, 0);
	assert_int_equal(m->f->c.st.hits, m->hits);
	assert_int_equal(m->f->c.st.misses, m->news);

	/* layout: records, then the cluster table, then the page table, to the end */
	assert_int_equal((char *)fresh->c.cluster_tab - (char *)fresh->mem, off);
	assert_true((char *)m->f->c.page_tab > (char *)m->f->c.cluster_tab);
	assert_memory_equal((char *)m->f->mem + off, (char *)fresh->mem + off,
			    m->f->mem_size - off);
	fix_free(fresh);
}

static void model_free(struct model *m)
{
	fix_free(m->f);
	free(m->recs);
	free(m->bufs);
	free(m);
}

static void test_property_random_ops(void **state)
{
	static const uint64_t seeds[] = { 0x9e3779b97f4a7c15ull, 42, 0xdeadbeefcafef00dull };
	size_t s;
	int i;

	(void)state;
	for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		struct model *m = model_new(seeds[s], 192, 2048, 150);

		m->deep = true;

		for (i = 0; i < 10000; i++)
			model_step(m, true);
		/* the run must have exercised every outcome */
		assert_true(m->hits > 1000);
		assert_true(m->news > 1000);
		assert_true(m->fulls > 0);
		assert_true(m->fails > 50);
		assert_true(m->rollbacks > 50);
		assert_true(m->unmaps > 1000);
		assert_true(m->f->c.st.releases > 500);
		print_message("seed %#llx: %lu maps, %lu hits, %lu new, %lu full, %lu failed, "
			      "%lu rollbacks, %lu unmaps, peak %llu records / %llu KiB\n",
			      (unsigned long long)seeds[s], m->maps, m->hits, m->news, m->fulls,
			      m->fails, m->rollbacks, m->unmaps,
			      (unsigned long long)m->f->c.st.peak_records,
			      (unsigned long long)(m->f->c.st.peak_mapped_bytes / KiB));
		model_finish(m);
		model_free(m);
	}
}

/*
 * Hundreds of thousands of operations on small, heavily loaded tables.
 * With tombstones the tables would fill with dead slots; with backward
 * shift deletion they must end byte-identical to freshly initialised ones
 * and every probe run must stay valid throughout (pgc_check).
 */
static void test_churn_tables_do_not_degrade(void **state)
{
	struct model *m = model_new(0x0123456789abcdefull, 128, 1024, 150);
	int i;

	(void)state;
	m->region_size = 64 * MiB;	/* more distinct clusters */
	for (i = 0; i < 300000; i++)
		model_step(m, i % 1000 == 0);
	assert_true(m->f->c.st.releases > 50000);
	assert_true(m->f->c.st.peak_records > 100);
	model_finish(m);
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_validation),
		cmocka_unit_test(test_invalid_map_args),
		cmocka_unit_test(test_cluster_packs_small_buffers),
		cmocka_unit_test(test_straddling_buffer_gets_exact_mapping),
		cmocka_unit_test(test_buffer_larger_than_cluster),
		cmocka_unit_test(test_cluster_size_zero_maps_every_buffer),
		cmocka_unit_test(test_cluster_ok_rejects_to_exact),
		cmocka_unit_test(test_release_only_at_last_unmap),
		cmocka_unit_test(test_unmap_noent),
		cmocka_unit_test(test_pending_hits_within_batch),
		cmocka_unit_test(test_map_failed_and_rollback),
		cmocka_unit_test(test_full_without_state_change),
		cmocka_unit_test(test_iova_at_top_of_address_space),
		cmocka_unit_test(test_bad_iova_fails_record),
		cmocka_unit_test(test_for_each_and_drain),
		cmocka_unit_test(test_drain_picks_up_records_behind_cursor),
		cmocka_unit_test(test_property_random_ops),
		cmocka_unit_test(test_churn_tables_do_not_degrade),
	};
	const char *filter = getenv("PGC_TEST_FILTER");	/* e.g. "*churn*" */

	if (filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
