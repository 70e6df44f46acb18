// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dmatest: the self-test cases.
 *
 * Every case maps memory through the normal DMA API (pegpu_dma's ops are
 * installed on this device), moves data through the pegpu-dmatest device
 * (COPY, FILL, CSUM descriptors in a coherent ring), verifies every byte
 * on the CPU, and checks pegpu-dma's counters: how many MAPs and doorbells
 * the case cost, and that everything it mapped was unmapped again.
 */
#define pr_fmt(fmt) fmt

#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/prandom.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "compat.h"
#include "pegpu_dmatest.h"

#define DT_SG_ENTRIES		256
#define DT_PACK_BUFS		64
#define DT_PACK_BUF		SZ_4K
#define DT_RANDOM_BUFS		128
#define DT_GUARD		64

u64 dt_since(const struct pegpu_dma_stats *a, const struct pegpu_dma_stats *b,
	     enum pegpu_dma_counter c)
{
	return dt_dev_counter(b, c) - dt_dev_counter(a, c);
}

static u64 dt_now_since(struct dt_ctx *t, const struct pegpu_dma_stats *a,
			enum pegpu_dma_counter c)
{
	struct pegpu_dma_stats now;

	dt_stats(t, &now);
	return dt_since(a, &now, c);
}

u64 dt_fnv(const void *buf, size_t len)
{
	return pegpu_fnv1a64(PEGPU_FNV1A64_INIT, buf, len);
}

static u32 dt_batch(struct dt_ctx *t)
{
	return max_t(u32, t->run0.lim.batch_entries, 1);
}

static u64 dt_doorbells_for(struct dt_ctx *t, u64 entries)
{
	return DIV_ROUND_UP_ULL(entries, dt_batch(t));
}

/* The descriptor ring (a coherent allocation) and a first coherent round trip. */
bool dt_case_ring(struct dt_ctx *t)
{
	dma_addr_t sd;
	void *scratch;
	int c;

	dt_case_begin(t, "coherent_ring");
	t->ring = dma_alloc_coherent(t->dev, DT_RING_DESCS * sizeof(*t->ring), &t->ring_dma,
				     GFP_KERNEL);
	if (!t->ring) {
		dt_fail(t, "ring_alloc_failed");
		goto out;
	}
	scratch = dma_alloc_coherent(t->dev, SZ_4K, &sd, GFP_KERNEL);
	if (!scratch) {
		dt_fail(t, "scratch_alloc_failed");
		goto out;
	}
	memset(scratch, 0, SZ_4K);
	dt_ring_reset(t);
	dt_add(t, PEGPU_DT_OP_FILL, 0, sd, SZ_4K, 0x3c);
	c = dt_add(t, PEGPU_DT_OP_CSUM, sd, 0, SZ_4K, 0);
	if (!dt_run(t) && dt_verify_fill(t, scratch, SZ_4K, 0x3c, "scratch") &&
	    dt_result(t, c) != dt_fnv(scratch, SZ_4K))
		dt_fail(t, "csum_mismatch");
	dma_free_coherent(t->dev, SZ_4K, scratch, sd);
	dt_note(t, "ring_iova:%#llx", (u64)t->ring_dma);
out:
	dt_case_end(t);
	return t->ring != NULL;
}

/* Coherent allocations of several sizes, data moved between them. */
static void dt_case_coherent(struct dt_ctx *t)
{
	static const size_t sizes[] = { SZ_4K, SZ_64K, SZ_1M, SZ_1M };
	struct pegpu_dma_stats before;
	dma_addr_t h[ARRAY_SIZE(sizes)];
	void *va[ARRAY_SIZE(sizes)] = { };
	int i, c0 = -1, c1 = -1;

	dt_case_begin(t, "coherent_sizes");
	before = t->case0;
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		va[i] = dma_alloc_coherent(t->dev, sizes[i], &h[i], GFP_KERNEL);
		if (!va[i]) {
			dt_fail(t, "alloc%d_failed", i);
			goto out;
		}
	}
	prandom_bytes_state(&t->rnd, va[2], SZ_1M);
	memset(va[3], 0, SZ_1M);
	memset(va[0], 0, SZ_4K);
	memset(va[1], 0, SZ_64K);
	dt_ring_reset(t);
	dt_add(t, PEGPU_DT_OP_FILL, 0, h[0], SZ_4K, 0x11);
	dt_add(t, PEGPU_DT_OP_FILL, 0, h[1], SZ_64K, 0x22);
	dt_add(t, PEGPU_DT_OP_COPY, h[2], h[3], SZ_1M, 0);
	c0 = dt_add(t, PEGPU_DT_OP_CSUM, h[3], 0, SZ_1M, 0);
	c1 = dt_add(t, PEGPU_DT_OP_CSUM, h[1], 0, SZ_64K, 0);
	if (dt_run(t))
		goto out;
	dt_verify_fill(t, va[0], SZ_4K, 0x11, "coh4k");
	dt_verify_fill(t, va[1], SZ_64K, 0x22, "coh64k");
	dt_verify_same(t, va[3], va[2], SZ_1M, "coh1m_copy");
	if (dt_result(t, c0) != dt_fnv(va[2], SZ_1M))
		dt_fail(t, "csum1m_mismatch");
	if (dt_result(t, c1) != dt_fnv(va[1], SZ_64K))
		dt_fail(t, "csum64k_mismatch");
out:
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		if (va[i])
			dma_free_coherent(t->dev, sizes[i], va[i], h[i]);
	/* Every mapping made here is gone again. */
	if (dt_now_since(t, &before, PEGPU_DMA_CNT_UNMAPS) !=
	    dt_now_since(t, &before, PEGPU_DMA_CNT_MAPS))
		dt_fail(t, "unmaps!=maps");
	dt_case_end(t);
}

/*
 * dma_map_single of one size: COPY src -> dst, CSUM dst, FILL dst; every
 * byte checked, and the bytes just past small buffers must stay untouched.
 * Each new mapping costs exactly one doorbell, each release one more.
 */
static void dt_case_single(struct dt_ctx *t, const char *name, size_t size)
{
	size_t guard = size < SZ_1M ? DT_GUARD : 0;
	dma_addr_t s_dma = DMA_MAPPING_ERROR, d_dma = DMA_MAPPING_ERROR;
	struct dt_mem src, dst;
	u64 maps, unmaps, db;
	int c;

	dt_case_begin(t, name);
	memset(&dst, 0, sizeof(dst));
	if (dt_mem_alloc(t, &src, size + guard) || dt_mem_alloc(t, &dst, size + guard)) {
		dt_fail(t, "alloc_%zu_failed", size);
		goto out;
	}
	prandom_bytes_state(&t->rnd, src.va, size);
	memset(src.va + size, 0xee, guard);
	memset(dst.va, 0, size);
	memset(dst.va + size, 0xdd, guard);

	s_dma = dma_map_single(t->dev, src.va, size, DMA_TO_DEVICE);
	if (dma_mapping_error(t->dev, s_dma)) {
		s_dma = DMA_MAPPING_ERROR;
		dt_fail(t, "map_src_failed");
		goto out;
	}
	d_dma = dma_map_single(t->dev, dst.va, size, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(t->dev, d_dma)) {
		d_dma = DMA_MAPPING_ERROR;
		dt_fail(t, "map_dst_failed");
		goto out;
	}

	dt_ring_reset(t);
	dt_add(t, PEGPU_DT_OP_COPY, s_dma, d_dma, size, 0);
	c = dt_add(t, PEGPU_DT_OP_CSUM, d_dma, 0, size, 0);
	if (dt_run(t))
		goto out;
	dma_sync_single_for_cpu(t->dev, d_dma, size, DMA_BIDIRECTIONAL);
	dt_verify_same(t, dst.va, src.va, size, "copy");
	if (dt_result(t, c) != dt_fnv(src.va, size))
		dt_fail(t, "csum_mismatch");
	dma_sync_single_for_device(t->dev, d_dma, size, DMA_BIDIRECTIONAL);

	dt_add(t, PEGPU_DT_OP_FILL, 0, d_dma, size, 0xa5);
	if (dt_run(t))
		goto out;
	dma_sync_single_for_cpu(t->dev, d_dma, size, DMA_BIDIRECTIONAL);
	dt_verify_fill(t, dst.va, size, 0xa5, "fill");
	if (guard) {
		dt_verify_fill(t, dst.va + size, guard, 0xdd, "dst_guard");
		dt_verify_fill(t, src.va + size, guard, 0xee, "src_guard");
	}
out:
	if (d_dma != DMA_MAPPING_ERROR)
		dma_unmap_single(t->dev, d_dma, size, DMA_BIDIRECTIONAL);
	if (s_dma != DMA_MAPPING_ERROR)
		dma_unmap_single(t->dev, s_dma, size, DMA_TO_DEVICE);
	dt_mem_free(&src);
	dt_mem_free(&dst);

	maps = dt_now_since(t, &t->case0, PEGPU_DMA_CNT_MAPS);
	unmaps = dt_now_since(t, &t->case0, PEGPU_DMA_CNT_UNMAPS);
	db = dt_now_since(t, &t->case0, PEGPU_DMA_CNT_DOORBELLS);
	if (maps > 2 || unmaps != maps || db != maps + unmaps)
		dt_fail(t, "maps:%llu,unmaps:%llu,doorbells:%llu", maps, unmaps, db);
	dt_case_end(t);
}

/*
 * map_sg of many small scattered buffers: all new mappings of the list in
 * one batch (one doorbell), fewer MAPs than entries when clusters are on;
 * unmap_sg releases them in one batch too.
 */
static void dt_case_sg(struct dt_ctx *t)
{
	const int n = DT_SG_ENTRIES;
	u64 maps, unmaps, db_map, db_unmap, cs = t->run0.lim.cluster_size;
	struct pegpu_dma_stats before, mid;
	struct scatterlist *sgl, *s;
	void **bufs;
	int i, cnt = 0, *csum;

	dt_case_begin(t, "sg_scattered");
	before = t->case0;
	sgl = kcalloc(n, sizeof(*sgl), GFP_KERNEL);
	bufs = kcalloc(n, sizeof(*bufs), GFP_KERNEL);
	csum = kcalloc(n, sizeof(*csum), GFP_KERNEL);
	if (!sgl || !bufs || !csum) {
		dt_fail(t, "alloc_failed");
		goto out;
	}
	sg_init_table(sgl, n);
	for (i = 0; i < n; i++) {
		size_t len = 64 + (i * 97) % 1900;

		bufs[i] = kmalloc(len, GFP_KERNEL);
		if (!bufs[i]) {
			dt_fail(t, "alloc_failed");
			goto out;
		}
		memset(bufs[i], 0, len);
		sg_set_buf(&sgl[i], bufs[i], len);
	}

	cnt = dma_map_sg(t->dev, sgl, n, DMA_BIDIRECTIONAL);
	dt_stats(t, &mid);
	maps = dt_since(&before, &mid, PEGPU_DMA_CNT_MAPS);
	db_map = dt_since(&before, &mid, PEGPU_DMA_CNT_DOORBELLS);
	if (cnt != n) {
		dt_fail(t, "map_sg_returned:%d", cnt);
		cnt = 0;
		goto out;
	}
	if (db_map != dt_doorbells_for(t, maps))
		dt_fail(t, "map_doorbells:%llu_for_%llu_maps", db_map, maps);
	if (cs && maps >= n)
		dt_fail(t, "no_coalescing");
	if (!cs && maps != n)
		dt_fail(t, "exact_maps:%llu!=%d", maps, n);

	dt_ring_reset(t);
	for_each_sg(sgl, s, n, i)
		dt_add(t, PEGPU_DT_OP_FILL, 0, sg_dma_address(s), sg_dma_len(s), (i * 7 + 1) & 0xff);
	for_each_sg(sgl, s, n, i)
		csum[i] = dt_add(t, PEGPU_DT_OP_CSUM, sg_dma_address(s), 0, sg_dma_len(s), 0);
	if (dt_run(t))
		goto out;
	dma_sync_sg_for_cpu(t->dev, sgl, n, DMA_BIDIRECTIONAL);
	for_each_sg(sgl, s, n, i) {
		if (!dt_verify_fill(t, bufs[i], s->length, (i * 7 + 1) & 0xff, "sg_fill"))
			break;
		if (dt_result(t, csum[i]) != dt_fnv(bufs[i], s->length)) {
			dt_fail(t, "sg_csum%d_mismatch", i);
			break;
		}
	}
out:
	if (cnt > 0) {
		dma_unmap_sg(t->dev, sgl, n, DMA_BIDIRECTIONAL);
		unmaps = dt_now_since(t, &mid, PEGPU_DMA_CNT_UNMAPS);
		db_unmap = dt_now_since(t, &mid, PEGPU_DMA_CNT_DOORBELLS);
		if (unmaps != maps)
			dt_fail(t, "unmaps:%llu!=maps:%llu", unmaps, maps);
		if (db_unmap != dt_doorbells_for(t, unmaps))
			dt_fail(t, "unmap_doorbells:%llu_for_%llu_unmaps", db_unmap, unmaps);
		dt_note(t, "entries:%d,maps:%llu,map_doorbells:%llu,unmap_doorbells:%llu",
			n, maps, db_map, db_unmap);
	}
	for (i = 0; bufs && i < n; i++)
		kfree(bufs[i]);
	kfree(csum);
	kfree(bufs);
	kfree(sgl);
	dt_case_end(t);
}

/*
 * 64 x 4 KiB buffers packed in one cluster: one MAP, one doorbell; a second
 * map of a buffer in the live cluster costs no doorbell at all.
 */
static void dt_case_pack(struct dt_ctx *t)
{
	const size_t span = DT_PACK_BUFS * DT_PACK_BUF;
	u64 cs = t->run0.lim.cluster_size, want, maps, db_first, db_rest, db_remap;
	struct pegpu_dma_stats before, s1, s2;
	unsigned int order = get_order(span);
	struct page *page = NULL;
	int i, mapped = 0, *c;
	dma_addr_t *dma, again;
	u8 *va;

	dt_case_begin(t, "cluster_pack");
	before = t->case0;
	want = !cs ? DT_PACK_BUFS : cs >= span ? 1 : span / cs;
	dma = kcalloc(DT_PACK_BUFS, sizeof(*dma), GFP_KERNEL);
	c = kcalloc(DT_PACK_BUFS, sizeof(*c), GFP_KERNEL);
	/* A block of 2^order pages is aligned to its size: one cluster if cs >= span. */
	if (dma && c)
		page = alloc_pages(GFP_KERNEL | __GFP_ZERO, order);
	if (!page) {
		dt_fail(t, "alloc_failed");
		goto end;
	}
	va = page_address(page);

	for (i = 0; i < DT_PACK_BUFS; i++) {
		dma[i] = dma_map_single(t->dev, va + i * DT_PACK_BUF, DT_PACK_BUF, DMA_BIDIRECTIONAL);
		if (dma_mapping_error(t->dev, dma[i])) {
			dt_fail(t, "map%d_failed", i);
			goto out;
		}
		mapped++;
		if (i == 0)
			dt_stats(t, &s1);
	}
	dt_stats(t, &s2);
	maps = dt_since(&before, &s2, PEGPU_DMA_CNT_MAPS);
	db_first = dt_since(&before, &s1, PEGPU_DMA_CNT_DOORBELLS);
	db_rest = dt_since(&s1, &s2, PEGPU_DMA_CNT_DOORBELLS);
	if (maps != want)
		dt_fail(t, "maps:%llu!=%llu", maps, want);
	if (cs >= span && (db_first != 1 || db_rest != 0))
		dt_fail(t, "doorbells_first:%llu_rest:%llu", db_first, db_rest);
	if (cs && s2.pgc.live_clusters - before.pgc.live_clusters != want)
		dt_fail(t, "live_clusters:+%llu", s2.pgc.live_clusters - before.pgc.live_clusters);

	/*
	 * Second map of a buffer in the live cluster: no doorbell, same
	 * address.  Without clusters it is a mapping of its own: a MAP and
	 * an UNMAP.
	 */
	again = dma_map_single(t->dev, va + 5 * DT_PACK_BUF, DT_PACK_BUF, DMA_TO_DEVICE);
	if (dma_mapping_error(t->dev, again)) {
		dt_fail(t, "remap_failed");
	} else {
		if (cs && again != dma[5])
			dt_fail(t, "remap_address_differs");
		dma_unmap_single(t->dev, again, DT_PACK_BUF, DMA_TO_DEVICE);
	}
	db_remap = dt_now_since(t, &s2, PEGPU_DMA_CNT_DOORBELLS);
	if (db_remap != (cs ? 0 : 2))
		dt_fail(t, "remap_doorbells:%llu", db_remap);
	if (!cs)
		want++;

	dt_ring_reset(t);
	for (i = 0; i < DT_PACK_BUFS; i++)
		dt_add(t, PEGPU_DT_OP_FILL, 0, dma[i], DT_PACK_BUF, 0x40 + i);
	for (i = 0; i < DT_PACK_BUFS; i++)
		c[i] = dt_add(t, PEGPU_DT_OP_CSUM, dma[i], 0, DT_PACK_BUF, 0);
	if (!dt_run(t)) {
		for (i = 0; i < DT_PACK_BUFS; i++) {
			dma_sync_single_for_cpu(t->dev, dma[i], DT_PACK_BUF, DMA_BIDIRECTIONAL);
			if (!dt_verify_fill(t, va + i * DT_PACK_BUF, DT_PACK_BUF, 0x40 + i, "pack"))
				break;
			if (dt_result(t, c[i]) != dt_fnv(va + i * DT_PACK_BUF, DT_PACK_BUF)) {
				dt_fail(t, "pack_csum%d_mismatch", i);
				break;
			}
		}
	}
	dt_note(t, "buffers:%d,maps:%llu,first_map_doorbells:%llu,next_%d_map_doorbells:%llu,remap_doorbells:%llu",
		DT_PACK_BUFS, maps, db_first, DT_PACK_BUFS - 1, db_rest, db_remap);
out:
	for (i = 0; i < mapped; i++)
		dma_unmap_single(t->dev, dma[i], DT_PACK_BUF, DMA_BIDIRECTIONAL);
	if (mapped == DT_PACK_BUFS &&
	    dt_now_since(t, &before, PEGPU_DMA_CNT_UNMAPS) != want)
		dt_fail(t, "unmaps!=%llu", want);
	__free_pages(page, order);
end:
	kfree(dma);
	kfree(c);
	dt_case_end(t);
}

/*
 * Buffers crossing a cluster boundary get exact mappings, each its own,
 * even when they overlap.
 */
static void dt_case_straddle(struct dt_ctx *t)
{
	u64 cs = t->run0.lim.cluster_size ? t->run0.lim.cluster_size : SZ_256K;
	dma_addr_t a_dma = DMA_MAPPING_ERROR, b_dma = DMA_MAPPING_ERROR;
	struct pegpu_dma_stats before, s;
	unsigned int order = get_order(2 * cs);
	const size_t a_len = SZ_4K, b_len = SZ_2K;
	u64 exp_a, exp_b;
	u8 *va, *a, *b;
	struct page *page;
	int ca, cb;

	dt_case_begin(t, "straddle");
	before = t->case0;
	if (order > PEGPU_MAX_PAGE_ORDER) {
		dt_note(t, "skipped_cluster_too_large_to_allocate_two");
		goto end;
	}
	page = alloc_pages(GFP_KERNEL, order);
	if (!page) {
		dt_fail(t, "alloc_failed");
		goto end;
	}
	va = page_address(page);
	a = va + cs - a_len / 2;	/* [cs - 2K, cs + 2K) */
	b = va + cs - b_len / 2;	/* [cs - 1K, cs + 1K), inside a */
	memset(a - DT_GUARD, 0x5c, a_len + 2 * DT_GUARD);
	prandom_bytes_state(&t->rnd, a, a_len);

	a_dma = dma_map_single(t->dev, a, a_len, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(t->dev, a_dma)) {
		a_dma = DMA_MAPPING_ERROR;
		dt_fail(t, "map_a_failed");
		goto out;
	}
	b_dma = dma_map_single(t->dev, b, b_len, DMA_TO_DEVICE);
	if (dma_mapping_error(t->dev, b_dma)) {
		b_dma = DMA_MAPPING_ERROR;
		dt_fail(t, "map_b_failed");
		goto out;
	}
	dt_stats(t, &s);
	if (dt_since(&before, &s, PEGPU_DMA_CNT_MAPS) != 2)
		dt_fail(t, "maps:%llu!=2", dt_since(&before, &s, PEGPU_DMA_CNT_MAPS));
	if (s.pgc.live_exact - before.pgc.live_exact != 2)
		dt_fail(t, "live_exact:+%llu", s.pgc.live_exact - before.pgc.live_exact);
	if (s.pgc.live_clusters != before.pgc.live_clusters)
		dt_fail(t, "cluster_mapped");

	/* Checksums of the data as the device will read it, before its FILL. */
	exp_a = dt_fnv(a, a_len);
	exp_b = dt_fnv(b, b_len);
	dt_ring_reset(t);
	ca = dt_add(t, PEGPU_DT_OP_CSUM, a_dma, 0, a_len, 0);
	cb = dt_add(t, PEGPU_DT_OP_CSUM, b_dma, 0, b_len, 0);
	dt_add(t, PEGPU_DT_OP_FILL, 0, a_dma, a_len, 0x77);
	if (dt_run(t))
		goto out;
	if (dt_result(t, ca) != exp_a)
		dt_fail(t, "csum_a_mismatch");
	if (dt_result(t, cb) != exp_b)
		dt_fail(t, "csum_b_mismatch");
	dma_sync_single_for_cpu(t->dev, a_dma, a_len, DMA_BIDIRECTIONAL);
	dt_verify_fill(t, a, a_len, 0x77, "straddle_fill");
	dt_verify_fill(t, a - DT_GUARD, DT_GUARD, 0x5c, "guard_below");
	dt_verify_fill(t, a + a_len, DT_GUARD, 0x5c, "guard_above");
	dt_note(t, "a_iova:%#llx,b_iova:%#llx", (u64)a_dma, (u64)b_dma);
out:
	if (b_dma != DMA_MAPPING_ERROR)
		dma_unmap_single(t->dev, b_dma, b_len, DMA_TO_DEVICE);
	if (a_dma != DMA_MAPPING_ERROR)
		dma_unmap_single(t->dev, a_dma, a_len, DMA_BIDIRECTIONAL);
	if (dt_now_since(t, &before, PEGPU_DMA_CNT_UNMAPS) !=
	    dt_now_since(t, &before, PEGPU_DMA_CNT_MAPS))
		dt_fail(t, "unmaps!=maps");
	__free_pages(page, order);
end:
	dt_case_end(t);
}

/* Many buffers of mixed sizes, verified, then unmapped in a shuffled order. */
static void dt_case_random(struct dt_ctx *t)
{
	static const size_t sizes[] = { 64, 200, 512, 1000, 4096, 9000, 16384, 65536 };
	const int n = DT_RANDOM_BUFS;
	struct pegpu_dma_stats before, after;
	dma_addr_t *dma = NULL;
	int i, j, mapped = 0, *order = NULL, *c = NULL;
	void **bufs;

	dt_case_begin(t, "unmap_random");
	before = t->case0;
	bufs = kcalloc(n, sizeof(*bufs), GFP_KERNEL);
	dma = kcalloc(n, sizeof(*dma), GFP_KERNEL);
	order = kcalloc(n, sizeof(*order), GFP_KERNEL);
	c = kcalloc(n, sizeof(*c), GFP_KERNEL);
	if (!bufs || !dma || !order || !c) {
		dt_fail(t, "alloc_failed");
		goto out;
	}
	for (i = 0; i < n; i++) {
		bufs[i] = kzalloc(sizes[i % ARRAY_SIZE(sizes)], GFP_KERNEL);
		if (!bufs[i]) {
			dt_fail(t, "alloc_failed");
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		dma[i] = dma_map_single(t->dev, bufs[i], sizes[i % ARRAY_SIZE(sizes)],
					DMA_BIDIRECTIONAL);
		if (dma_mapping_error(t->dev, dma[i])) {
			dt_fail(t, "map%d_failed", i);
			break;
		}
		mapped++;
	}
	if (mapped == n) {
		dt_ring_reset(t);
		for (i = 0; i < n; i++)
			dt_add(t, PEGPU_DT_OP_FILL, 0, dma[i], sizes[i % ARRAY_SIZE(sizes)],
			       (i * 3 + 5) & 0xff);
		for (i = 0; i < n; i++)
			c[i] = dt_add(t, PEGPU_DT_OP_CSUM, dma[i], 0, sizes[i % ARRAY_SIZE(sizes)], 0);
		if (!dt_run(t)) {
			for (i = 0; i < n; i++) {
				size_t len = sizes[i % ARRAY_SIZE(sizes)];

				dma_sync_single_for_cpu(t->dev, dma[i], len, DMA_BIDIRECTIONAL);
				if (!dt_verify_fill(t, bufs[i], len, (i * 3 + 5) & 0xff, "rnd_fill"))
					break;
				if (dt_result(t, c[i]) != dt_fnv(bufs[i], len)) {
					dt_fail(t, "rnd_csum%d_mismatch", i);
					break;
				}
			}
		}
	}
	/* Fisher-Yates with the fixed seed: the same order every run. */
	for (i = 0; i < mapped; i++)
		order[i] = i;
	for (i = mapped - 1; i > 0; i--) {
		int tmp;

		j = prandom_u32_state(&t->rnd) % (i + 1);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (i = 0; i < mapped; i++)
		dma_unmap_single(t->dev, dma[order[i]], sizes[order[i] % ARRAY_SIZE(sizes)],
				 DMA_BIDIRECTIONAL);
	dt_stats(t, &after);
	if (dt_since(&before, &after, PEGPU_DMA_CNT_UNMAPS) !=
	    dt_since(&before, &after, PEGPU_DMA_CNT_MAPS))
		dt_fail(t, "unmaps!=maps");
	if (dt_dev_counter(&after, PEGPU_DMA_CNT_LIVE_MAPPINGS) !=
	    dt_dev_counter(&before, PEGPU_DMA_CNT_LIVE_MAPPINGS) ||
	    after.pgc.live_buffers != before.pgc.live_buffers)
		dt_fail(t, "live_mappings_left");
	dt_note(t, "buffers:%d,maps:%llu,first_unmapped:%d", n,
		dt_since(&before, &after, PEGPU_DMA_CNT_MAPS), mapped ? order[0] : -1);
out:
	for (i = 0; bufs && i < n; i++)
		kfree(bufs[i]);
	kfree(bufs);
	kfree(dma);
	kfree(order);
	kfree(c);
	dt_case_end(t);
}

/*
 * The map paths in atomic context: map_sg and map_single with interrupts
 * off (new clusters, so real doorbells), a GFP_ATOMIC coherent allocation
 * with softirqs off; the data is then moved and checked as usual.
 */
static void dt_case_atomic(struct dt_ctx *t)
{
	const int n = 16;
	struct scatterlist sgl[16], *s;
	dma_addr_t single[16], coh_dma = 0;
	struct pegpu_dma_stats before;
	unsigned long flags;
	int i, cnt = 0, mapped = 0;
	void *coh = NULL;
	struct dt_mem m;
	u8 *va;

	dt_case_begin(t, "atomic_context");
	before = t->case0;
	if (dt_mem_alloc(t, &m, SZ_4M)) {
		dt_fail(t, "alloc_failed");
		goto end;
	}
	va = m.va;
	memset(va, 0, SZ_4M);
	sg_init_table(sgl, n);
	for (i = 0; i < n; i++)
		sg_set_buf(&sgl[i], va + i * SZ_256K + SZ_8K, SZ_1K);

	local_irq_save(flags);
	cnt = dma_map_sg(t->dev, sgl, n, DMA_BIDIRECTIONAL);
	for (i = 0; cnt == n && i < n; i++) {
		single[i] = dma_map_single(t->dev, va + i * SZ_256K + SZ_64K, SZ_4K,
					   DMA_BIDIRECTIONAL);
		if (dma_mapping_error(t->dev, single[i]))
			break;
		mapped++;
	}
	local_irq_restore(flags);

	local_bh_disable();
	coh = dma_alloc_coherent(t->dev, SZ_4K, &coh_dma, GFP_ATOMIC);
	local_bh_enable();

	if (cnt != n || mapped != n || !coh) {
		dt_fail(t, "sg:%d,single:%d,coherent:%d", cnt, mapped, !!coh);
		goto unmap;
	}
	dt_ring_reset(t);
	for_each_sg(sgl, s, n, i)
		dt_add(t, PEGPU_DT_OP_FILL, 0, sg_dma_address(s), sg_dma_len(s), 0xc0 + i);
	for (i = 0; i < n; i++)
		dt_add(t, PEGPU_DT_OP_FILL, 0, single[i], SZ_4K, 0x80 + i);
	dt_add(t, PEGPU_DT_OP_FILL, 0, coh_dma, SZ_4K, 0x6b);
	if (!dt_run(t)) {
		dma_sync_sg_for_cpu(t->dev, sgl, n, DMA_BIDIRECTIONAL);
		for (i = 0; i < n; i++) {
			dma_sync_single_for_cpu(t->dev, single[i], SZ_4K, DMA_BIDIRECTIONAL);
			dt_verify_fill(t, va + i * SZ_256K + SZ_8K, SZ_1K, 0xc0 + i, "atomic_sg");
			dt_verify_fill(t, va + i * SZ_256K + SZ_64K, SZ_4K, 0x80 + i, "atomic_single");
		}
		dt_verify_fill(t, coh, SZ_4K, 0x6b, "atomic_coherent");
	}
unmap:
	local_irq_save(flags);
	for (i = 0; i < mapped; i++)
		dma_unmap_single(t->dev, single[i], SZ_4K, DMA_BIDIRECTIONAL);
	if (cnt > 0)
		dma_unmap_sg(t->dev, sgl, n, DMA_BIDIRECTIONAL);
	local_irq_restore(flags);
	if (coh)
		dma_free_coherent(t->dev, SZ_4K, coh, coh_dma);
	dt_mem_free(&m);
	if (dt_now_since(t, &before, PEGPU_DMA_CNT_UNMAPS) !=
	    dt_now_since(t, &before, PEGPU_DMA_CNT_MAPS))
		dt_fail(t, "unmaps!=maps");
end:
	dt_case_end(t);
}

/* Several threads mapping and unmapping at once: the lock, the coalescer's refcounts. */
#define DT_THREADS	4
#define DT_ITERS	1500
#define DT_LIVE		8

struct dt_worker {
	struct dt_ctx *t;
	struct rnd_state rnd;
	struct completion done;
	atomic_t *errors;
	atomic64_t *ops;
};

struct dt_live {
	void *buf;
	dma_addr_t dma;
	size_t len;
	enum dma_data_direction dir;
};

static void dt_worker_sg(struct dt_worker *w)
{
	struct scatterlist sgl[4];
	void *bufs[4];
	int i, cnt;

	sg_init_table(sgl, 4);
	for (i = 0; i < 4; i++) {
		bufs[i] = kmalloc(300 + i * 200, GFP_KERNEL);
		if (!bufs[i]) {
			while (i--)
				kfree(bufs[i]);
			atomic_inc(w->errors);
			return;
		}
		sg_set_buf(&sgl[i], bufs[i], 300 + i * 200);
	}
	cnt = dma_map_sg(w->t->dev, sgl, 4, DMA_TO_DEVICE);
	if (cnt == 4)
		dma_unmap_sg(w->t->dev, sgl, 4, DMA_TO_DEVICE);
	else
		atomic_inc(w->errors);
	atomic64_inc(w->ops);
	for (i = 0; i < 4; i++)
		kfree(bufs[i]);
}

static int dt_worker_fn(void *arg)
{
	static const enum dma_data_direction dirs[] = {
		DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL,
	};
	struct dt_worker *w = arg;
	struct dt_live live[DT_LIVE] = { };
	int i, k;

	for (i = 0; i < DT_ITERS; i++) {
		struct dt_live *l = &live[prandom_u32_state(&w->rnd) % DT_LIVE];

		if (l->buf) {
			dma_unmap_single(w->t->dev, l->dma, l->len, l->dir);
			kfree(l->buf);
			l->buf = NULL;
		}
		l->len = 1 + prandom_u32_state(&w->rnd) % 24000;
		l->dir = dirs[prandom_u32_state(&w->rnd) % ARRAY_SIZE(dirs)];
		l->buf = kmalloc(l->len, GFP_KERNEL);
		if (!l->buf) {
			atomic_inc(w->errors);
			continue;
		}
		l->dma = dma_map_single(w->t->dev, l->buf, l->len, l->dir);
		if (dma_mapping_error(w->t->dev, l->dma)) {
			atomic_inc(w->errors);
			kfree(l->buf);
			l->buf = NULL;
		}
		atomic64_inc(w->ops);
		if (!(i % 16))
			dt_worker_sg(w);
		cond_resched();
	}
	for (k = 0; k < DT_LIVE; k++) {
		if (!live[k].buf)
			continue;
		dma_unmap_single(w->t->dev, live[k].dma, live[k].len, live[k].dir);
		kfree(live[k].buf);
	}
	kthread_complete_and_exit(&w->done, 0);
}

static void dt_case_concurrent(struct dt_ctx *t)
{
	struct pegpu_dma_stats before, after;
	struct dt_worker *w;
	atomic64_t ops = ATOMIC64_INIT(0);
	atomic_t errors = ATOMIC_INIT(0);
	int i, started = 0;

	dt_case_begin(t, "concurrent");
	before = t->case0;
	w = kcalloc(DT_THREADS, sizeof(*w), GFP_KERNEL);
	if (!w) {
		dt_fail(t, "alloc_failed");
		goto end;
	}
	for (i = 0; i < DT_THREADS; i++) {
		struct task_struct *task;

		w[i].t = t;
		w[i].errors = &errors;
		w[i].ops = &ops;
		prandom_seed_state(&w[i].rnd, prandom_u32_state(&t->rnd));
		init_completion(&w[i].done);
		task = kthread_run(dt_worker_fn, &w[i], "pegpu_dt/%d", i);
		if (IS_ERR(task)) {
			dt_fail(t, "kthread_failed");
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++)
		wait_for_completion(&w[i].done);
	kfree(w);

	dt_stats(t, &after);
	if (atomic_read(&errors))
		dt_fail(t, "errors:%d", atomic_read(&errors));
	if (dt_dev_counter(&after, PEGPU_DMA_CNT_LIVE_MAPPINGS) !=
	    dt_dev_counter(&before, PEGPU_DMA_CNT_LIVE_MAPPINGS) ||
	    after.pgc.live_buffers != before.pgc.live_buffers)
		dt_fail(t, "live_mappings_left");
	if (after.drv.map_failures != before.drv.map_failures ||
	    after.drv.unknown_unmaps != before.drv.unknown_unmaps)
		dt_fail(t, "driver_failures:%llu,unknown_unmaps:%llu",
			after.drv.map_failures - before.drv.map_failures,
			after.drv.unknown_unmaps - before.drv.unknown_unmaps);
	dt_note(t, "threads:%d,cpus:%u,map_ops:%lld,hits:%llu", started, num_online_cpus(),
		(long long)atomic64_read(&ops), after.pgc.hits - before.pgc.hits);
end:
	dt_case_end(t);
}

/*
 * The rest of the DMA API surface: masks against the IOVA window, the
 * required mask, the largest mapping, dma_alloc_pages (the alloc_pages op),
 * dma_get_sgtable of a coherent buffer, and map_resource's refusal.
 */
static void dt_case_api(struct dt_ctx *t)
{
	u64 window_end = t->run0.lim.iova_size ?
			 t->run0.lim.iova_base + t->run0.lim.iova_size - 1 : DMA_BIT_MASK(32);
	struct pegpu_dma_stats before;
	struct sg_table sgt;
	dma_addr_t h, ch, r;
	struct page *page;
	size_t maxmap;
	void *coh;
	int c;

	dt_case_begin(t, "api_misc");
	before = t->case0;
	/* A mask below the window's end is refused, one covering it accepted. */
	if (window_end > DMA_BIT_MASK(24) && !dma_set_mask(t->dev, DMA_BIT_MASK(24)))
		dt_fail(t, "24bit_mask_accepted");
	if (dma_set_mask(t->dev, DMA_BIT_MASK(fls64(window_end))))
		dt_fail(t, "window_mask_refused");
	if (dma_set_mask_and_coherent(t->dev, DMA_BIT_MASK(64)))
		dt_fail(t, "64bit_mask_refused");
	if (dma_get_required_mask(t->dev) < window_end)
		dt_fail(t, "required_mask:%#llx", dma_get_required_mask(t->dev));
	maxmap = dma_max_mapping_size(t->dev);
	if (maxmap > t->run0.lim.max_mapped_bytes)
		dt_fail(t, "max_mapping_size:%zu", maxmap);

	page = dma_alloc_pages(t->dev, SZ_64K, &h, DMA_BIDIRECTIONAL, GFP_KERNEL);
	if (!page) {
		dt_fail(t, "alloc_pages_failed");
	} else {
		memset(page_address(page), 0, SZ_64K);
		dma_sync_single_for_device(t->dev, h, SZ_64K, DMA_BIDIRECTIONAL);
		dt_ring_reset(t);
		dt_add(t, PEGPU_DT_OP_FILL, 0, h, SZ_64K, 0x5e);
		c = dt_add(t, PEGPU_DT_OP_CSUM, h, 0, SZ_64K, 0);
		if (!dt_run(t)) {
			dma_sync_single_for_cpu(t->dev, h, SZ_64K, DMA_BIDIRECTIONAL);
			if (dt_verify_fill(t, page_address(page), SZ_64K, 0x5e, "alloc_pages") &&
			    dt_result(t, c) != dt_fnv(page_address(page), SZ_64K))
				dt_fail(t, "alloc_pages_csum");
		}
		dma_free_pages(t->dev, SZ_64K, page, h, DMA_BIDIRECTIONAL);
	}

	coh = dma_alloc_coherent(t->dev, SZ_16K, &ch, GFP_KERNEL);
	if (!coh) {
		dt_fail(t, "coherent_failed");
	} else {
		if (dma_get_sgtable(t->dev, &sgt, coh, ch, SZ_16K)) {
			dt_fail(t, "get_sgtable_failed");
		} else {
			if (sgt.orig_nents != 1 || sgt.sgl->length != SZ_16K ||
			    (virt_addr_valid(coh) && sg_page(sgt.sgl) != virt_to_page(coh)))
				dt_fail(t, "sgtable_wrong");
			sg_free_table(&sgt);
		}
		dma_free_coherent(t->dev, SZ_16K, coh, ch);
	}

	r = dma_map_resource(t->dev, pci_resource_start(t->pdev, PEGPU_DMATEST_BAR), SZ_4K,
			     DMA_BIDIRECTIONAL, 0);
	if (!dma_mapping_error(t->dev, r)) {
		dt_fail(t, "map_resource_succeeded");
		dma_unmap_resource(t->dev, r, SZ_4K, DMA_BIDIRECTIONAL, 0);
	}
	if (dt_now_since(t, &before, PEGPU_DMA_CNT_UNMAPS) !=
	    dt_now_since(t, &before, PEGPU_DMA_CNT_MAPS))
		dt_fail(t, "unmaps!=maps");
	dt_note(t, "required_mask:%#llx,max_mapping_size:%zu", dma_get_required_mask(t->dev),
		maxmap);
	dt_case_end(t);
}

/* Neither device saw a bad access, and pegpu-dma saw no malformed entry. */
void dt_case_faults(struct dt_ctx *t, bool refusals_ok)
{
	u64 faults, dfaults, errors, refusals;

	dt_case_begin(t, "no_faults");
	faults = dt_faults(t) - t->faults0;
	dfaults = dt_since(&t->run0, &t->case0, PEGPU_DMA_CNT_FAULTS);
	errors = dt_since(&t->run0, &t->case0, PEGPU_DMA_CNT_ERRORS);
	refusals = dt_since(&t->run0, &t->case0, PEGPU_DMA_CNT_REFUSALS);
	if (faults || dfaults)
		dt_fail(t, "dmatest_faults:%llu,dma_faults:%llu", faults, dfaults);
	if (errors)
		dt_fail(t, "device_errors:%llu", errors);
	if (refusals && !refusals_ok)
		dt_fail(t, "refusals:%llu", refusals);
	dt_note(t, "refusals:%llu,map_failures:%llu", refusals,
		t->case0.drv.map_failures - t->run0.drv.map_failures);
	dt_case_end(t);
}

/* Free the ring: nothing of ours may stay mapped. */
void dt_case_teardown(struct dt_ctx *t)
{
	struct pegpu_dma_stats now;

	dt_case_begin(t, "teardown");
	if (t->ring) {
		dma_free_coherent(t->dev, DT_RING_DESCS * sizeof(*t->ring), t->ring, t->ring_dma);
		t->ring = NULL;
	}
	dt_stats(t, &now);
	if (now.pgc.live_buffers || now.pgc.live_records)
		dt_fail(t, "coalescer_live_buffers:%llu,records:%llu", now.pgc.live_buffers,
			now.pgc.live_records);
	if (dt_dev_counter(&now, PEGPU_DMA_CNT_LIVE_MAPPINGS))
		dt_fail(t, "device_live_mappings:%llu",
			dt_dev_counter(&now, PEGPU_DMA_CNT_LIVE_MAPPINGS));
	dt_case_end(t);
}

void dt_begin_run(struct dt_ctx *t)
{
	dt_stats(t, &t->run0);
	t->faults0 = dt_faults(t);
	t->bytes_verified = 0;
	t->cases = 0;
	t->failed = 0;
	dev_info(t->dev, "self-test: cluster %llu, DART page %u, batch %u, caps %llu bytes / %u mappings%s\n",
		 t->run0.lim.cluster_size, 1u << t->run0.lim.page_shift,
		 t->run0.lim.batch_entries, t->run0.lim.max_mapped_bytes,
		 t->run0.lim.max_mappings, t->expect_refusal ? ", refusal cases" : "");
}

void dt_summary(struct dt_ctx *t)
{
	struct pegpu_dma_stats end;

	dt_stats(t, &end);
	pr_info("PEGPU_SELFTEST result=%s cases=%d failed=%d bytes_verified=%llu doorbells=%llu maps=%llu peak_mappings=%llu peak_mapped_bytes=%llu live_at_end=%llu cluster_size=%llu\n",
		t->failed ? "FAIL" : "PASS", t->cases, t->failed, t->bytes_verified,
		dt_since(&t->run0, &end, PEGPU_DMA_CNT_DOORBELLS),
		dt_since(&t->run0, &end, PEGPU_DMA_CNT_MAPS),
		dt_dev_counter(&end, PEGPU_DMA_CNT_PEAK_MAPPINGS),
		dt_dev_counter(&end, PEGPU_DMA_CNT_PEAK_MAPPED_BYTES),
		dt_dev_counter(&end, PEGPU_DMA_CNT_LIVE_MAPPINGS),
		end.lim.cluster_size);
}

void dt_run_selftest(struct dt_ctx *t)
{
	dt_begin_run(t);
	if (dt_case_ring(t)) {
		dt_case_coherent(t);
		dt_case_single(t, "single_1B", 1);
		dt_case_single(t, "single_4K", SZ_4K);
		dt_case_single(t, "single_64K", SZ_64K);
		dt_case_single(t, "single_1M", SZ_1M);
		dt_case_single(t, "single_8M", SZ_8M);
		dt_case_sg(t);
		dt_case_pack(t);
		dt_case_straddle(t);
		dt_case_random(t);
		dt_case_atomic(t);
		dt_case_concurrent(t);
		dt_case_api(t);
	}
	dt_case_faults(t, false);
	dt_case_teardown(t);
	dt_summary(t);
}

/* ---- refusal cases: the device was started with tiny caps ---- */

/* A mapping larger than the mapped-bytes cap must fail cleanly. */
static void dt_case_refuse_big(struct dt_ctx *t)
{
	size_t size = SZ_4M;
	struct dt_mem m;
	dma_addr_t dma;

	dt_case_begin(t, "refuse_big");
	if (dt_mem_alloc(t, &m, size)) {
		dt_fail(t, "alloc_failed");
		goto end;
	}
	if (size <= t->run0.lim.max_mapped_bytes)
		dt_note(t, "cap_%llu_not_tiny", t->run0.lim.max_mapped_bytes);
	dma = dma_map_single(t->dev, m.va, size, DMA_TO_DEVICE);
	if (!dma_mapping_error(t->dev, dma)) {
		dt_fail(t, "4M_map_succeeded_at:%#llx", (u64)dma);
		dma_unmap_single(t->dev, dma, size, DMA_TO_DEVICE);
	} else {
		dt_note(t, "4M_map_refused");
	}
	dt_mem_free(&m);
end:
	dt_case_end(t);
}

/* map_sg needing more mappings than the caps allow: an error, and a full rollback. */
static void dt_case_refuse_sg(struct dt_ctx *t)
{
	const int n = 32;
	const size_t stride = SZ_128K;
	struct pegpu_dma_stats before, after;
	struct scatterlist *s;
	struct sg_table sgt;
	struct dt_mem m;
	int i, ret;

	dt_case_begin(t, "refuse_sg");
	before = t->case0;
	if (dt_mem_alloc(t, &m, SZ_4M)) {
		dt_fail(t, "alloc_failed");
		goto end;
	}
	if (sg_alloc_table(&sgt, n, GFP_KERNEL)) {
		dt_fail(t, "sg_alloc_failed");
		goto free_mem;
	}
	for_each_sg(sgt.sgl, s, n, i)
		sg_set_buf(s, m.va + i * stride, SZ_4K);
	ret = dma_map_sgtable(t->dev, &sgt, DMA_BIDIRECTIONAL, 0);
	if (!ret) {
		dt_fail(t, "map_sg_of_%d_succeeded", n);
		dma_unmap_sgtable(t->dev, &sgt, DMA_BIDIRECTIONAL, 0);
	} else {
		dt_note(t, "errno:%d", ret);
		if (ret != -ENOMEM)
			dt_fail(t, "expected_ENOMEM");
	}
	dt_stats(t, &after);
	if (dt_dev_counter(&after, PEGPU_DMA_CNT_LIVE_MAPPINGS) !=
	    dt_dev_counter(&before, PEGPU_DMA_CNT_LIVE_MAPPINGS) ||
	    after.pgc.live_buffers != before.pgc.live_buffers ||
	    after.pgc.live_records != before.pgc.live_records)
		dt_fail(t, "not_rolled_back:live_%llu->%llu",
			dt_dev_counter(&before, PEGPU_DMA_CNT_LIVE_MAPPINGS),
			dt_dev_counter(&after, PEGPU_DMA_CNT_LIVE_MAPPINGS));
	sg_free_table(&sgt);
free_mem:
	dt_mem_free(&m);
end:
	dt_case_end(t);
}

/* After the refusals, small maps still work. */
static void dt_case_after_refusal(struct dt_ctx *t)
{
	const int n = 8;
	struct scatterlist sgl[8], *s;
	dma_addr_t s_dma, d_dma;
	u8 *src, *dst, *sgbuf;
	int i, cnt;

	dt_case_begin(t, "after_refusal");
	src = kmalloc(SZ_4K, GFP_KERNEL);
	dst = kzalloc(SZ_4K, GFP_KERNEL);
	sgbuf = kzalloc(n * 512, GFP_KERNEL);
	if (!src || !dst || !sgbuf) {
		dt_fail(t, "alloc_failed");
		goto out;
	}
	prandom_bytes_state(&t->rnd, src, SZ_4K);
	s_dma = dma_map_single(t->dev, src, SZ_4K, DMA_TO_DEVICE);
	if (dma_mapping_error(t->dev, s_dma)) {
		dt_fail(t, "map_src_failed");
		goto out;
	}
	d_dma = dma_map_single(t->dev, dst, SZ_4K, DMA_FROM_DEVICE);
	if (dma_mapping_error(t->dev, d_dma)) {
		dt_fail(t, "map_dst_failed");
		dma_unmap_single(t->dev, s_dma, SZ_4K, DMA_TO_DEVICE);
		goto out;
	}
	dt_ring_reset(t);
	dt_add(t, PEGPU_DT_OP_COPY, s_dma, d_dma, SZ_4K, 0);
	if (!dt_run(t)) {
		dma_sync_single_for_cpu(t->dev, d_dma, SZ_4K, DMA_FROM_DEVICE);
		dt_verify_same(t, dst, src, SZ_4K, "copy");
	}
	dma_unmap_single(t->dev, d_dma, SZ_4K, DMA_FROM_DEVICE);
	dma_unmap_single(t->dev, s_dma, SZ_4K, DMA_TO_DEVICE);

	sg_init_table(sgl, n);
	for (i = 0; i < n; i++)
		sg_set_buf(&sgl[i], sgbuf + i * 512, 512);
	cnt = dma_map_sg(t->dev, sgl, n, DMA_FROM_DEVICE);
	if (cnt != n) {
		dt_fail(t, "map_sg_returned:%d", cnt);
		goto out;
	}
	dt_ring_reset(t);
	for_each_sg(sgl, s, n, i)
		dt_add(t, PEGPU_DT_OP_FILL, 0, sg_dma_address(s), sg_dma_len(s), 0x90 + i);
	if (!dt_run(t)) {
		dma_sync_sg_for_cpu(t->dev, sgl, n, DMA_FROM_DEVICE);
		for (i = 0; i < n; i++)
			dt_verify_fill(t, sgbuf + i * 512, 512, 0x90 + i, "sg_fill");
	}
	dma_unmap_sg(t->dev, sgl, n, DMA_FROM_DEVICE);
out:
	kfree(src);
	kfree(dst);
	kfree(sgbuf);
	dt_case_end(t);
}

void dt_run_refusal(struct dt_ctx *t)
{
	dt_begin_run(t);
	if (dt_case_ring(t)) {
		dt_case_refuse_big(t);
		dt_case_refuse_sg(t);
		dt_case_after_refusal(t);
	}
	dt_case_faults(t, true);
	dt_case_teardown(t);
	dt_summary(t);
}
