// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dmatest: backpressure cases (backpressure=1).
 *
 * Needs tiny DART caps (QEMU: max-mapped-bytes=1M,max-mappings=16) and
 * pegpu_dma loaded with cluster_size=0 (every buffer its own mapping, so
 * the arithmetic below is exact) and wait_ms set.  The caps are filled
 * with 64 KiB buffers from atomic context, where a refused map must fail
 * at once; then a sleepable map or allocation must wait until a kthread
 * unmaps one of them, and succeed; without an unmap it must give up after
 * wait_ms.  Streaming maps (map_page, map_sg) only wait where the kernel
 * can tell they may sleep (CONFIG_PREEMPT_COUNT); elsewhere they must fail
 * at once, which is checked instead.
 */
#define pr_fmt(fmt) fmt

#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "pegpu_dmatest.h"

#define DT_BP_BUF	SZ_64K
#define DT_BP_FILL	16		/* more 64 KiB buffers than 16 mappings allow */
#define DT_BP_DELAY_MS	200		/* the unmapping thread's head start */

struct dt_bp {
	struct dt_ctx *t;
	struct page *page[DT_BP_FILL];
	dma_addr_t dma[DT_BP_FILL];
	bool mapped[DT_BP_FILL];
	int nfill;			/* buffers mapped when the caps were reached */
	u32 wait_ms;
};

/* A thread that unmaps one buffer after a delay: the capacity a waiter needs. */
struct dt_release {
	struct dt_bp *bp;
	int idx;
	struct completion done;
};

static int dt_release_fn(void *arg)
{
	struct dt_release *rel = arg;
	struct dt_bp *bp = rel->bp;

	msleep(DT_BP_DELAY_MS);
	dma_unmap_single(bp->t->dev, bp->dma[rel->idx], DT_BP_BUF, DMA_BIDIRECTIONAL);
	bp->mapped[rel->idx] = false;
	kthread_complete_and_exit(&rel->done, 0);
}

/* Start the thread for the last mapped buffer; false if none or no thread. */
static bool dt_release_start(struct dt_bp *bp, struct dt_release *rel)
{
	struct task_struct *task;
	int i;

	for (i = bp->nfill - 1; i >= 0 && !bp->mapped[i]; i--)
		;
	if (i < 0)
		return false;
	rel->bp = bp;
	rel->idx = i;
	init_completion(&rel->done);
	task = kthread_run(dt_release_fn, rel, "pegpu_dt_rel");
	return !IS_ERR(task);
}

/* Map a filler buffer with interrupts off: never waits. */
static bool dt_bp_map_atomic(struct dt_bp *bp, int i, s64 *us)
{
	unsigned long flags;
	ktime_t t0;

	local_irq_save(flags);
	t0 = ktime_get();
	bp->dma[i] = dma_map_single(bp->t->dev, page_address(bp->page[i]), DT_BP_BUF,
				    DMA_BIDIRECTIONAL);
	if (us)
		*us = ktime_us_delta(ktime_get(), t0);
	local_irq_restore(flags);
	bp->mapped[i] = !dma_mapping_error(bp->t->dev, bp->dma[i]);
	return bp->mapped[i];
}

/* Map fillers again until the caps refuse one (after a case freed some). */
static void dt_bp_refill(struct dt_bp *bp)
{
	int i;

	for (i = 0; i < bp->nfill; i++)
		if (!bp->mapped[i] && !dt_bp_map_atomic(bp, i, NULL))
			break;
}

/*
 * Fill the caps from atomic context; the map that does not fit, an
 * atomic-context map_sg and a GFP_ATOMIC allocation must all fail at once
 * and be counted as refusals that could not wait.
 */
static void dt_case_bp_atomic(struct dt_bp *bp)
{
	struct dt_ctx *t = bp->t;
	struct pegpu_dma_stats before, after;
	struct scatterlist sg;
	spinlock_t lock;
	dma_addr_t h = 0;
	s64 us = 0, sg_us, coh_us;
	void *coh;
	ktime_t t0;
	int i, cnt;

	dt_case_begin(t, "bp_atomic_no_wait");
	before = t->case0;
	spin_lock_init(&lock);
	for (i = 0; i < DT_BP_FILL; i++) {
		if (!dt_bp_map_atomic(bp, i, &us))
			break;
		bp->nfill++;
	}
	if (bp->nfill == DT_BP_FILL) {
		dt_fail(t, "caps_never_reached_after_%d", DT_BP_FILL);
		goto out;
	}

	/* A spinlock is the atomic context a kernel with preempt counts can see. */
	sg_init_one(&sg, page_address(bp->page[DT_BP_FILL - 1]), DT_BP_BUF);
	spin_lock(&lock);
	t0 = ktime_get();
	cnt = dma_map_sg(t->dev, &sg, 1, DMA_TO_DEVICE);
	sg_us = ktime_us_delta(ktime_get(), t0);
	spin_unlock(&lock);
	if (cnt > 0) {
		dt_fail(t, "sg_map_over_caps_succeeded");
		dma_unmap_sg(t->dev, &sg, 1, DMA_TO_DEVICE);
	}

	local_bh_disable();
	t0 = ktime_get();
	coh = dma_alloc_coherent(t->dev, DT_BP_BUF, &h, GFP_ATOMIC);
	coh_us = ktime_us_delta(ktime_get(), t0);
	local_bh_enable();
	if (coh) {
		dt_fail(t, "atomic_alloc_over_caps_succeeded");
		dma_free_coherent(t->dev, DT_BP_BUF, coh, h);
	}

	dt_stats(t, &after);
	/* "At once": far below the wait the driver would otherwise do. */
	if (us * 2 > bp->wait_ms * 1000ll || sg_us * 2 > bp->wait_ms * 1000ll ||
	    coh_us * 2 > bp->wait_ms * 1000ll)
		dt_fail(t, "atomic_refusal_slow:%lld,%lld,%lldus", us, sg_us, coh_us);
	if (after.drv.bp_nowait - before.drv.bp_nowait != 3)
		dt_fail(t, "bp_nowait:%llu!=3", after.drv.bp_nowait - before.drv.bp_nowait);
	if (after.drv.bp_waits != before.drv.bp_waits)
		dt_fail(t, "atomic_map_waited");
	dt_note(t, "fill:%d,refused_us:%lld,sg_us:%lld,coherent_us:%lld,nowait:%llu", bp->nfill,
		us, sg_us, coh_us, after.drv.bp_nowait - before.drv.bp_nowait);
out:
	dt_case_end(t);
}

/* Check a waiter's outcome: waited about as long as the release took, then succeeded. */
static void dt_bp_check_wait(struct dt_bp *bp, const struct pegpu_dma_stats *before,
			     bool ok, s64 ms, const char *what)
{
	struct dt_ctx *t = bp->t;
	struct pegpu_dma_stats after;

	dt_stats(t, &after);
	if (!ok)
		dt_fail(t, "%s_failed_after:%lldms", what, ms);
	/* The release comes DT_BP_DELAY_MS after the call: it must have waited for it. */
	if (ms < DT_BP_DELAY_MS / 2 || ms >= bp->wait_ms)
		dt_fail(t, "%s_waited:%lldms", what, ms);
	if (after.drv.bp_waits - before->drv.bp_waits != 1 ||
	    after.drv.bp_wait_ok - before->drv.bp_wait_ok != 1)
		dt_fail(t, "%s_bp_waits:%llu,ok:%llu", what,
			after.drv.bp_waits - before->drv.bp_waits,
			after.drv.bp_wait_ok - before->drv.bp_wait_ok);
	dt_note(t, "%s_waited_ms:%lld", what, ms);
}

/* Move data through a buffer that was mapped after waiting. */
static void dt_bp_use(struct dt_ctx *t, dma_addr_t dma, void *va, u8 val)
{
	int c;

	dt_ring_reset(t);
	dt_add(t, PEGPU_DT_OP_FILL, 0, dma, DT_BP_BUF, val);
	c = dt_add(t, PEGPU_DT_OP_CSUM, dma, 0, DT_BP_BUF, 0);
	if (!dt_run(t) && dt_verify_fill(t, va, DT_BP_BUF, val, "bp_buf") &&
	    dt_result(t, c) != dt_fnv(va, DT_BP_BUF))
		dt_fail(t, "bp_csum_mismatch");
}

/* A sleepable allocation (GFP_KERNEL) waits for the unmap and succeeds. */
static void dt_case_bp_coherent(struct dt_bp *bp)
{
	struct dt_ctx *t = bp->t;
	struct dt_release rel;
	dma_addr_t h = 0;
	ktime_t t0;
	void *coh;

	dt_case_begin(t, "bp_wait_coherent");
	if (!dt_release_start(bp, &rel)) {
		dt_fail(t, "no_release_thread");
		goto out;
	}
	t0 = ktime_get();
	coh = dma_alloc_coherent(t->dev, DT_BP_BUF, &h, GFP_KERNEL);
	dt_bp_check_wait(bp, &t->case0, coh != NULL, ktime_ms_delta(ktime_get(), t0),
			 "coherent");
	wait_for_completion(&rel.done);
	if (coh) {
		dt_bp_use(t, h, coh, 0x7c);
		dma_free_coherent(t->dev, DT_BP_BUF, coh, h);
	}
	dt_bp_refill(bp);
out:
	dt_case_end(t);
}

/*
 * Streaming maps: dma_map_single and dma_map_sg in process context wait
 * where the kernel has preempt counts, and fail at once where it has not.
 */
static void dt_case_bp_streaming(struct dt_bp *bp)
{
	struct dt_ctx *t = bp->t;
	bool can = t->run0.lim.wait_streaming;
	struct pegpu_dma_stats before, after;
	struct dt_release rel;
	struct scatterlist sg;
	struct page *page;
	dma_addr_t dma;
	ktime_t t0;
	s64 ms;
	int cnt;
	void *va;

	dt_case_begin(t, "bp_wait_streaming");
	page = alloc_pages(GFP_KERNEL, get_order(DT_BP_BUF));
	if (!page) {
		dt_fail(t, "alloc_failed");
		goto out;
	}
	va = page_address(page);

	/* dma_map_single */
	dt_stats(t, &before);
	if (!dt_release_start(bp, &rel)) {
		dt_fail(t, "no_release_thread");
		goto free;
	}
	t0 = ktime_get();
	dma = dma_map_single(t->dev, va, DT_BP_BUF, DMA_BIDIRECTIONAL);
	ms = ktime_ms_delta(ktime_get(), t0);
	if (can) {
		dt_bp_check_wait(bp, &before, !dma_mapping_error(t->dev, dma), ms, "single");
	} else {
		dt_stats(t, &after);
		if (!dma_mapping_error(t->dev, dma) || ms * 2 > bp->wait_ms ||
		    after.drv.bp_nowait - before.drv.bp_nowait != 1)
			dt_fail(t, "single_without_preempt_count:%lldms", ms);
	}
	wait_for_completion(&rel.done);
	if (!dma_mapping_error(t->dev, dma)) {
		dt_bp_use(t, dma, va, 0x3e);
		dma_unmap_single(t->dev, dma, DT_BP_BUF, DMA_BIDIRECTIONAL);
	}
	dt_bp_refill(bp);

	/* dma_map_sg: one list, same story */
	dt_stats(t, &before);
	if (!dt_release_start(bp, &rel)) {
		dt_fail(t, "no_release_thread");
		goto free;
	}
	sg_init_one(&sg, va, DT_BP_BUF);
	t0 = ktime_get();
	cnt = dma_map_sg(t->dev, &sg, 1, DMA_BIDIRECTIONAL);
	ms = ktime_ms_delta(ktime_get(), t0);
	if (can) {
		dt_bp_check_wait(bp, &before, cnt == 1, ms, "sg");
	} else {
		dt_stats(t, &after);
		if (cnt > 0 || ms * 2 > bp->wait_ms ||
		    after.drv.bp_nowait - before.drv.bp_nowait != 1)
			dt_fail(t, "sg_without_preempt_count:%lldms", ms);
	}
	wait_for_completion(&rel.done);
	if (cnt == 1) {
		dt_bp_use(t, sg_dma_address(&sg), va, 0x5d);
		dma_unmap_sg(t->dev, &sg, 1, DMA_BIDIRECTIONAL);
	}
	dt_bp_refill(bp);
	dt_note(t, "streaming_waits:%d", can);
free:
	__free_pages(page, get_order(DT_BP_BUF));
out:
	dt_case_end(t);
}

/* Nobody unmaps: a sleepable allocation gives up after wait_ms. */
static void dt_case_bp_timeout(struct dt_bp *bp)
{
	struct dt_ctx *t = bp->t;
	struct pegpu_dma_stats after;
	dma_addr_t h = 0;
	ktime_t t0;
	void *coh;
	s64 ms;

	dt_case_begin(t, "bp_timeout");
	t0 = ktime_get();
	coh = dma_alloc_coherent(t->dev, DT_BP_BUF, &h, GFP_KERNEL);
	ms = ktime_ms_delta(ktime_get(), t0);
	dt_stats(t, &after);
	if (coh) {
		dt_fail(t, "alloc_over_caps_succeeded");
		dma_free_coherent(t->dev, DT_BP_BUF, coh, h);
	}
	/* Jiffies round the deadline; a loaded host may add a lot on top. */
	if (ms * 4 < bp->wait_ms * 3 || ms > 4 * bp->wait_ms + 1000)
		dt_fail(t, "gave_up_after:%lldms", ms);
	if (after.drv.bp_timeouts - t->case0.drv.bp_timeouts != 1 ||
	    after.drv.bp_waits - t->case0.drv.bp_waits != 1)
		dt_fail(t, "bp_timeouts:%llu,waits:%llu",
			after.drv.bp_timeouts - t->case0.drv.bp_timeouts,
			after.drv.bp_waits - t->case0.drv.bp_waits);
	dt_note(t, "gave_up_after_ms:%lld,wait_ms:%u", ms, bp->wait_ms);
	dt_case_end(t);
}

/**
 * dt_run_backpressure() - the backpressure cases
 * @t: the test context
 */
void dt_run_backpressure(struct dt_ctx *t)
{
	struct dt_bp *bp;
	int i;

	dt_begin_run(t);
	bp = kzalloc(sizeof(*bp), GFP_KERNEL);
	if (!bp || !dt_case_ring(t))
		goto end;
	bp->t = t;
	bp->wait_ms = t->run0.lim.wait_ms;

	dt_case_begin(t, "bp_setup");
	if (!bp->wait_ms || t->run0.lim.cluster_size || t->run0.lim.max_mappings > 64)
		dt_fail(t, "needs_wait_ms_cluster_size0_tiny_caps:wait%u,cluster%llu,maps%u",
			bp->wait_ms, t->run0.lim.cluster_size, t->run0.lim.max_mappings);
	for (i = 0; i < DT_BP_FILL; i++) {
		bp->page[i] = alloc_pages(GFP_KERNEL | __GFP_ZERO, get_order(DT_BP_BUF));
		if (!bp->page[i])
			dt_fail(t, "alloc_failed");
	}
	dt_note(t, "wait_ms:%u,wait_streaming:%d", bp->wait_ms, t->run0.lim.wait_streaming);
	dt_case_end(t);
	if (!t->failed) {
		dt_case_bp_atomic(bp);
		if (!t->failed) {
			dt_case_bp_coherent(bp);
			dt_case_bp_streaming(bp);
			dt_case_bp_timeout(bp);
		}
	}
	for (i = 0; i < DT_BP_FILL; i++) {
		if (bp->mapped[i])
			dma_unmap_single(t->dev, bp->dma[i], DT_BP_BUF, DMA_BIDIRECTIONAL);
		if (bp->page[i])
			__free_pages(bp->page[i], get_order(DT_BP_BUF));
	}
end:
	kfree(bp);
	dt_case_faults(t, true);
	dt_case_teardown(t);
	dt_summary(t);
}
