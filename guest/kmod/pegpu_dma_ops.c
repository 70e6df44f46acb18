// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dma: the dma_map_ops installed on the managed device.
 *
 * Every streaming map asks the coalescer (lib/coalesce.c) which DART
 * mapping the buffer uses.  A buffer inside a live cluster needs no device
 * work at all; any other becomes a MAP entry.  map_sg plans the whole list
 * first and posts all its MAPs in one batch (one doorbell), splitting only
 * when more than a batch of new mappings is needed.  Coherent and page
 * allocations are made by the kernel's own allocator on the pegpu-dma PCI
 * function (plain dma-direct) and their pages mapped through the DART.
 *
 * Nothing here sleeps under pd->lock, and nothing panics: a refusal or a
 * device error returns DMA_MAPPING_ERROR (or map_sg's negative errno) with
 * a ratelimited warning that names the status.
 *
 * Every map and unmap is recorded in the trace ring (pegpu_dma_trace.c)
 * under the same lock hold as its coalescer operation.  With wait_ms set,
 * a map refused for a DART cap in a context that may sleep waits for an
 * unmap to free capacity and tries again, up to wait_ms (backpressure).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-direct.h>
#include <linux/dma-map-ops.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/wait.h>

#include "compat.h"
#include "pegpu_dma_priv.h"

static u16 pegpu_dir_flags(enum dma_data_direction dir)
{
	switch (dir) {
	case DMA_TO_DEVICE:
		return PEGPU_DIR_TO_DEVICE;
	case DMA_FROM_DEVICE:
		return PEGPU_DIR_FROM_DEVICE;
	default:
		return PEGPU_DIR_BIDIRECTIONAL;
	}
}

/*
 * A cluster mapping is shared by buffers of every direction, so it is
 * mapped both ways; an exact mapping honours the buffer's direction.
 */
static u16 pegpu_map_flags(const struct pegpu_dma *pd, const struct pgc_req *req,
			   enum dma_data_direction dir)
{
	if (pd->cluster_size && req->len == pd->cluster_size &&
	    IS_ALIGNED(req->addr, pd->cluster_size))
		return PEGPU_DIR_BIDIRECTIONAL;
	return pegpu_dir_flags(dir);
}

/* The highest dma address the device may be given for streaming DMA. */
static u64 pegpu_stream_limit(struct device *dev)
{
	u64 mask = dev->dma_mask ? *dev->dma_mask : DMA_BIT_MASK(32);

	return min_not_zero(mask, dev->bus_dma_limit);
}

/* ... and for coherent allocations. */
static u64 pegpu_coherent_limit(struct device *dev)
{
	return min_not_zero(dev->coherent_dma_mask, dev->bus_dma_limit);
}

/*
 * Cache maintenance for a non-coherent managed device, done by dma-direct
 * on the pegpu-dma function (same bus, same coherency).  A no-op for
 * coherent devices, which is every device of QEMU's virt and q35 machines.
 */
static void pegpu_sync_for_device(struct pegpu_dma *pd, struct device *dev,
				  phys_addr_t phys, size_t size, enum dma_data_direction dir)
{
	if (dev_is_dma_coherent(dev))
		return;
	dma_sync_single_for_device(&pd->pdev->dev, phys_to_dma(&pd->pdev->dev, phys), size, dir);
}

static void pegpu_sync_for_cpu(struct pegpu_dma *pd, struct device *dev,
			       phys_addr_t phys, size_t size, enum dma_data_direction dir)
{
	if (dev_is_dma_coherent(dev))
		return;
	dma_sync_single_for_cpu(&pd->pdev->dev, phys_to_dma(&pd->pdev->dev, phys), size, dir);
}

/* Guest-physical address behind a dma address we handed out. */
static bool pegpu_lookup(struct pegpu_dma *pd, dma_addr_t dma, phys_addr_t *phys)
{
	unsigned long flags;
	u64 p = 0;
	bool ok;

	spin_lock_irqsave(&pd->lock, flags);
	ok = pgc_lookup(&pd->pgc, dma, &p);
	spin_unlock_irqrestore(&pd->lock, flags);
	*phys = p;
	return ok;
}

/* ---- backpressure ---- */

/* Refusals that an unmap elsewhere can cure: a DART cap, or IOVA space. */
static bool pegpu_cap_status(u32 st)
{
	return st == PEGPU_ST_NO_SPACE || st == PEGPU_ST_TOO_MANY ||
	       st == PEGPU_ST_NO_IOVA || st == PEGPU_XST_FULL;
}

/*
 * Whether a streaming map (map_page/map_phys, map_sg) may sleep.  The DMA
 * API gives these no gfp, and GPU drivers call them from every context:
 * under their own spinlocks, in interrupt handlers, with preemption off.
 * Only a kernel with CONFIG_PREEMPT_COUNT can tell: there spin_lock, bh
 * and irq contexts and preempt_disable() all raise preempt_count, so
 * in_atomic() sees them, irqs_disabled() covers local_irq_save(), and
 * rcu_preempt_depth() covers rcu_read_lock() under PREEMPT_RCU (which does
 * not touch preempt_count).  Without it (Debian's arm64 6.1 is
 * PREEMPT_VOLUNTARY) a held spinlock is invisible, so streaming maps never
 * wait there; allocations, whose gfp says whether they may block, still do.
 * Our own SRCU read section allows sleeping.  A caller that holds a mutex
 * an unmapper needs only waits out wait_ms: the wait is always bounded.
 */
static bool pegpu_stream_may_sleep(void)
{
#ifdef CONFIG_PREEMPT_COUNT
	return !in_atomic() && !irqs_disabled() && !rcu_preempt_depth();
#else
	return false;
#endif
}

/*
 * One map call's attempts.  Each attempt knows whether a cap refusal would
 * still be waited out: such an attempt is quiet, its refusal is neither
 * reported, counted as a failure, nor recorded, since the call has not
 * failed yet.  A failed attempt notes the UNMAP generation under the lock,
 * after its own rollback UNMAPs: an UNMAP by anyone else between the
 * refusal and the sleep then ends the sleep at once, and our own rollback
 * never does (which would spin).
 */
struct pegpu_try {
	bool may_sleep;		/* the caller's context allows waiting */
	bool armed;		/* it has waited: deadline is set */
	bool quiet;		/* this attempt's cap refusal will be waited out */
	unsigned int n;		/* attempts made */
	unsigned long deadline;
	u64 gen;		/* pd->bp_gen when this attempt failed */
	u32 st;			/* this attempt's status */
};

static void pegpu_try_init(struct pegpu_try *t, bool may_sleep)
{
	memset(t, 0, sizeof(*t));
	t->may_sleep = may_sleep;
}

static void pegpu_try_begin(struct pegpu_dma *pd, struct pegpu_try *t)
{
	t->st = PEGPU_ST_OK;
	if (!t->may_sleep || READ_ONCE(pd->dying))
		t->quiet = false;
	else if (!t->armed)
		t->quiet = READ_ONCE(pegpu_wait_ms) != 0;
	else
		t->quiet = time_before(jiffies, t->deadline);
}

/*
 * After a failed attempt: if it was a cap refusal to wait out, sleep until
 * an UNMAP has been posted, the deadline passes or the instance goes away,
 * and return true to try again.
 */
static bool pegpu_try_wait(struct pegpu_dma *pd, struct pegpu_try *t)
{
	unsigned long flags;
	long left;

	t->n++;
	if (!t->quiet || !pegpu_cap_status(t->st))
		return false;
	might_sleep();
	if (!t->armed) {
		t->armed = true;
		t->deadline = jiffies + msecs_to_jiffies(min(READ_ONCE(pegpu_wait_ms),
							     PEGPU_WAIT_MS_MAX));
		spin_lock_irqsave(&pd->lock, flags);
		pd->drv.bp_waits++;
		spin_unlock_irqrestore(&pd->lock, flags);
	}
	left = (long)(t->deadline - jiffies);
	if (left > 0)
		wait_event_timeout(pd->bp_wq, READ_ONCE(pd->bp_gen) != t->gen ||
				   READ_ONCE(pd->dying), left);
	return true;
}

/* Count how a call that met a cap ended. */
static void pegpu_try_end(struct pegpu_dma *pd, const struct pegpu_try *t, bool ok)
{
	unsigned long flags;
	u64 *c = NULL;

	if (t->armed)
		c = ok ? &pd->drv.bp_wait_ok : &pd->drv.bp_timeouts;
	else if (!ok && !t->may_sleep && pegpu_cap_status(t->st) && READ_ONCE(pegpu_wait_ms))
		c = &pd->drv.bp_nowait;
	if (!c)
		return;
	spin_lock_irqsave(&pd->lock, flags);
	(*c)++;
	spin_unlock_irqrestore(&pd->lock, flags);
}

static void pegpu_warn_gone(struct device *dev, const char *what)
{
	dev_warn_ratelimited(dev, "pegpu_dma: %s: no pegpu-dma instance manages this device any more\n",
			     what);
}

/*
 * Map one physically contiguous range: a hit costs a table lookup, a miss
 * one batch of one MAP.  Returns the dma address or DMA_MAPPING_ERROR with
 * @t->st saying why.
 */
static dma_addr_t pegpu_map_range(struct pegpu_dma *pd, struct device *dev, phys_addr_t phys,
				  size_t size, enum dma_data_direction dir, u64 limit,
				  u8 kind, struct pegpu_try *t, const char *what)
{
	struct pgc_ref ref;
	struct pgc_req req;
	unsigned long flags;
	u64 dma = 0, iova;
	u32 st, k;
	int r;

	spin_lock_irqsave(&pd->lock, flags);
	if (!t->n)
		pd->drv.map_calls++;
	r = pgc_map(&pd->pgc, phys, size, &ref, &req);
	if (r < 0) {
		st = r == PGC_E_FULL ? PEGPU_XST_FULL : PEGPU_XST_INVAL;
		goto fail;
	}
	if (r == PGC_NEW) {
		pd->nent = 0;
		k = pegpu_batch_add(pd, PEGPU_OP_MAP, pegpu_map_flags(pd, &req, dir),
				    req.addr, req.len, 0);
		pegpu_batch_submit(pd);
		st = le32_to_cpu(pd->ent[k].status);
		if (st != PEGPU_ST_OK) {
			pgc_map_failed(&pd->pgc, req.rec);
			pgc_put(&pd->pgc, &ref, NULL);
			goto fail;
		}
		iova = le64_to_cpu(pd->ent[k].iova);
		pgc_map_done(&pd->pgc, req.rec, iova);
		if (!pgc_dma_addr(&pd->pgc, &ref, &dma)) {
			/* Mapped, but at an IOVA the tables reject: undo it. */
			pgc_put(&pd->pgc, &ref, NULL);
			pegpu_queue_unmap(pd, iova, req.len);
			pegpu_flush_unmaps(pd);
			st = PEGPU_XST_BROKEN;
			goto fail;
		}
	} else if (!pgc_dma_addr(&pd->pgc, &ref, &dma)) {
		/* Outside a batch every hit is on a live record; be safe anyway. */
		pgc_put(&pd->pgc, &ref, NULL);
		st = PEGPU_XST_BROKEN;
		goto fail;
	}
	if (dma + (size - 1) > limit) {
		if (pgc_unmap(&pd->pgc, dma, size, &req) == PGC_RELEASE) {
			pegpu_queue_unmap(pd, req.iova, req.len);
			pegpu_flush_unmaps(pd);
		}
		st = PEGPU_XST_MASK;
		goto fail;
	}
	pegpu_rec_map(pd, kind, dma, phys, size, pegpu_dir_flags(dir), false);
	spin_unlock_irqrestore(&pd->lock, flags);
	t->st = PEGPU_ST_OK;
	return dma;

fail:
	if (!t->quiet || !pegpu_cap_status(st)) {
		pd->drv.map_failures++;
		pegpu_warn_status(pd, dev, st, what, size);
		pegpu_rec_map(pd, kind, 0, phys, size, pegpu_dir_flags(dir), true);
	}
	t->gen = pd->bp_gen;
	spin_unlock_irqrestore(&pd->lock, flags);
	t->st = st;
	return DMA_MAPPING_ERROR;
}

/* Drop a buffer's reference; the last one of a mapping posts its UNMAP. */
static void pegpu_unmap_range(struct pegpu_dma *pd, struct device *dev, dma_addr_t dma,
			      size_t size, u8 kind, enum dma_data_direction dir,
			      const char *what)
{
	struct pgc_req req;
	unsigned long flags;
	int r;

	spin_lock_irqsave(&pd->lock, flags);
	pd->drv.unmap_calls++;
	pegpu_rec_unmap(pd, kind, dma, size, pegpu_dir_flags(dir));
	r = pgc_unmap(&pd->pgc, dma, size, &req);
	if (r == PGC_RELEASE) {
		pd->nent = 0;
		pegpu_queue_unmap(pd, req.iova, req.len);
		pegpu_flush_unmaps(pd);
	} else if (r < 0) {
		pd->drv.unknown_unmaps++;
	}
	spin_unlock_irqrestore(&pd->lock, flags);
	if (r < 0)
		dev_warn_ratelimited(dev, "pegpu_dma: %s of unknown dma address %pad (%zu bytes) ignored\n",
				     what, &dma, size);
}

static dma_addr_t pegpu_map_phys_attrs(struct device *dev, phys_addr_t phys, size_t size,
				       enum dma_data_direction dir, unsigned long attrs)
{
	dma_addr_t dma = DMA_MAPPING_ERROR;
	struct pegpu_dma *pd;
	struct pegpu_try t;
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "map");
		return DMA_MAPPING_ERROR;
	}
#ifdef DMA_ATTR_MMIO
	if (attrs & DMA_ATTR_MMIO) {
		dev_warn_ratelimited(dev, "pegpu_dma: mapping MMIO at %pa (peer-to-peer) is unsupported\n",
				     &phys);
		goto out;
	}
#endif
	if (!size || !valid_dma_direction(dir)) {
		pegpu_warn_status(pd, dev, PEGPU_XST_INVAL, "map", size);
		goto out;
	}
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		pegpu_sync_for_device(pd, dev, phys, size, dir);
	pegpu_try_init(&t, pegpu_stream_may_sleep());
	do {
		pegpu_try_begin(pd, &t);
		dma = pegpu_map_range(pd, dev, phys, size, dir, pegpu_stream_limit(dev),
				      PEGPU_TK_SINGLE, &t, "map");
	} while (dma == DMA_MAPPING_ERROR && pegpu_try_wait(pd, &t));
	pegpu_try_end(pd, &t, dma != DMA_MAPPING_ERROR);
out:
	pegpu_dma_put(idx);
	return dma;
}

static void pegpu_unmap_attrs(struct device *dev, dma_addr_t dma, size_t size,
			      enum dma_data_direction dir, unsigned long attrs)
{
	struct pegpu_dma *pd;
	phys_addr_t phys;
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "unmap");
		return;
	}
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && dir != DMA_TO_DEVICE &&
	    !dev_is_dma_coherent(dev) && pegpu_lookup(pd, dma, &phys))
		pegpu_sync_for_cpu(pd, dev, phys, size, dir);
	pegpu_unmap_range(pd, dev, dma, size, PEGPU_TK_SINGLE, dir, "unmap");
	pegpu_dma_put(idx);
}

#if PEGPU_HAVE_MAP_PHYS
static dma_addr_t pegpu_dma_map_phys(struct device *dev, phys_addr_t phys, size_t size,
				     enum dma_data_direction dir, unsigned long attrs)
{
	return pegpu_map_phys_attrs(dev, phys, size, dir, attrs);
}

static void pegpu_dma_unmap_phys(struct device *dev, dma_addr_t dma, size_t size,
				 enum dma_data_direction dir, unsigned long attrs)
{
	pegpu_unmap_attrs(dev, dma, size, dir, attrs);
}
#else
static dma_addr_t pegpu_dma_map_page(struct device *dev, struct page *page,
				     unsigned long offset, size_t size,
				     enum dma_data_direction dir, unsigned long attrs)
{
	return pegpu_map_phys_attrs(dev, page_to_phys(page) + offset, size, dir, attrs);
}

static void pegpu_dma_unmap_page(struct device *dev, dma_addr_t dma, size_t size,
				 enum dma_data_direction dir, unsigned long attrs)
{
	pegpu_unmap_attrs(dev, dma, size, dir, attrs);
}

static dma_addr_t pegpu_dma_map_resource(struct device *dev, phys_addr_t phys, size_t size,
					 enum dma_data_direction dir, unsigned long attrs)
{
	dev_warn_ratelimited(dev, "pegpu_dma: map_resource of %pa (peer-to-peer MMIO) is unsupported\n",
			     &phys);
	return DMA_MAPPING_ERROR;
}
#endif

/*
 * map_sg keeps each entry's coalescer reference in the entry's own dma
 * address until its batch is resolved (as iommu-dma stashes its data):
 * record << 32 | offset (offsets are below the cluster size, at most
 * 1 GiB).  sg_dma_len() is left alone until resolution: without
 * CONFIG_NEED_SG_DMA_LENGTH it is the entry's length itself.
 */
static void pegpu_sg_stash(struct scatterlist *s, const struct pgc_ref *ref)
{
	sg_dma_address(s) = ((u64)ref->rec << 32) | lower_32_bits(ref->offset);
}

static void pegpu_sg_unstash(struct scatterlist *s, struct pgc_ref *ref)
{
	ref->rec = upper_32_bits(sg_dma_address(s));
	ref->offset = lower_32_bits(sg_dma_address(s));
	ref->len = s->length;
}

static void pegpu_sg_mark_failed(struct scatterlist *s)
{
	sg_dma_address(s) = DMA_MAPPING_ERROR;
}

/*
 * Post the queued MAPs (if any) and turn the @n stashed entries from
 * @chunk on into dma addresses.  An entry that cannot be used drops its
 * reference and is marked DMA_MAPPING_ERROR.  Afterwards the batch queue
 * holds UNMAPs only.  Returns the first failure's status, or OK.
 */
static u32 pegpu_sg_resolve(struct pegpu_dma *pd, struct scatterlist *chunk, int n, u64 limit)
{
	u32 count = pd->nent, first = PEGPU_ST_OK, k;
	struct scatterlist *s;
	struct pgc_ref ref;
	struct pgc_req req;
	u64 dma;
	int i;

	if (count) {
		pegpu_batch_submit(pd);
		/* Copy the results out: UNMAPs queued below reuse the entries. */
		for (k = 0; k < count; k++) {
			pd->slot[k].status = le32_to_cpu(pd->ent[k].status);
			pd->slot[k].iova = le64_to_cpu(pd->ent[k].iova);
			pd->slot[k].len = le64_to_cpu(pd->ent[k].len);
		}
		for (k = 0; k < count; k++) {
			struct pegpu_dma_slot *sl = &pd->slot[k];

			if (sl->status != PEGPU_ST_OK) {
				pgc_map_failed(&pd->pgc, sl->rec);
				if (first == PEGPU_ST_OK)
					first = sl->status;
				continue;
			}
			pgc_map_done(&pd->pgc, sl->rec, sl->iova);
			if (!pgc_dma_addr(&pd->pgc, &sl->ref, &dma)) {
				pegpu_queue_unmap(pd, sl->iova, sl->len);
				if (first == PEGPU_ST_OK)
					first = PEGPU_XST_BROKEN;
			}
		}
	}

	for (i = 0, s = chunk; i < n; i++, s = sg_next(s)) {
		pegpu_sg_unstash(s, &ref);
		if (pgc_dma_addr(&pd->pgc, &ref, &dma) && dma + (s->length - 1) <= limit) {
			sg_dma_address(s) = dma;
			sg_dma_len(s) = s->length;
			continue;
		}
		/* A failed record's status is already recorded; else the mask. */
		if (first == PEGPU_ST_OK)
			first = PEGPU_XST_MASK;
		if (pgc_put(&pd->pgc, &ref, &req) == PGC_RELEASE)
			pegpu_queue_unmap(pd, req.iova, req.len);
		pegpu_sg_mark_failed(s);
	}
	return first;
}

/*
 * One attempt at mapping a list, all under one lock hold; returns nents or
 * a negative errno with @t->st saying why.
 */
static int pegpu_map_sg_once(struct pegpu_dma *pd, struct device *dev, struct scatterlist *sgl,
			     int nents, enum dma_data_direction dir, u64 limit,
			     struct pegpu_try *t)
{
	struct scatterlist *s, *e, *chunk;
	int i, j, chunk_n = 0, done = 0;
	struct pgc_ref ref;
	struct pgc_req req;
	unsigned long flags;
	u32 st = PEGPU_ST_OK, k;
	u64 bytes = 0;
	int r;

	spin_lock_irqsave(&pd->lock, flags);
	if (!t->n) {
		pd->drv.sg_calls++;
		pd->drv.sg_entries += nents;
	}
	pd->nent = 0;
	chunk = sgl;
	for_each_sg(sgl, s, nents, i) {
		bytes += s->length;
		if (!s->length) {
			st = PEGPU_XST_INVAL;
			goto cancel;
		}
		r = pgc_map(&pd->pgc, sg_phys(s), s->length, &ref, &req);
		if (r < 0) {
			st = r == PGC_E_FULL ? PEGPU_XST_FULL : PEGPU_XST_INVAL;
			goto cancel;
		}
		pegpu_sg_stash(s, &ref);
		chunk_n++;
		if (r != PGC_NEW)
			continue;
		k = pegpu_batch_add(pd, PEGPU_OP_MAP, pegpu_map_flags(pd, &req, dir),
				    req.addr, req.len, 0);
		pd->slot[k].rec = req.rec;
		pd->slot[k].ref = ref;
		if (pegpu_batch_full(pd)) {
			/* More new mappings than a batch holds: post this part now. */
			st = pegpu_sg_resolve(pd, chunk, chunk_n, limit);
			done += chunk_n;
			chunk = sg_next(s);
			chunk_n = 0;
			if (st != PEGPU_ST_OK)
				goto rollback;
		}
	}
	st = pegpu_sg_resolve(pd, chunk, chunk_n, limit);
	done += chunk_n;
	if (st != PEGPU_ST_OK)
		goto rollback;
	pegpu_flush_unmaps(pd);
	pegpu_rec_sg(pd, sgl, nents, pegpu_dir_flags(dir), false);
	spin_unlock_irqrestore(&pd->lock, flags);
	t->st = PEGPU_ST_OK;
	return nents;

cancel:
	/* The chunk's MAPs were never posted: drop their references. */
	pd->nent = 0;
	for (j = 0, e = chunk; j < chunk_n; j++, e = sg_next(e)) {
		pegpu_sg_unstash(e, &ref);
		if (pgc_put(&pd->pgc, &ref, &req) == PGC_RELEASE)
			pegpu_queue_unmap(pd, req.iova, req.len);
		pegpu_sg_mark_failed(e);
	}
	done += chunk_n;
rollback:
	/* Warn first: the totals in the message are those the refusal saw. */
	if (!t->quiet || !pegpu_cap_status(st)) {
		pd->drv.map_failures++;
		pegpu_warn_status(pd, dev, st, "map_sg", bytes);
		pegpu_rec_sg(pd, sgl, nents, pegpu_dir_flags(dir), true);
	}
	/* Unmap what this call mapped; entries marked failed hold nothing. */
	for (j = 0, e = sgl; j < done; j++, e = sg_next(e)) {
		if (sg_dma_address(e) == DMA_MAPPING_ERROR)
			continue;
		if (pgc_unmap(&pd->pgc, sg_dma_address(e), e->length, &req) == PGC_RELEASE)
			pegpu_queue_unmap(pd, req.iova, req.len);
		pegpu_sg_mark_failed(e);
	}
	pegpu_flush_unmaps(pd);
	t->gen = pd->bp_gen;
	spin_unlock_irqrestore(&pd->lock, flags);
	t->st = st;
	return pegpu_status_errno(st);
}

static int pegpu_dma_map_sg(struct device *dev, struct scatterlist *sgl, int nents,
			    enum dma_data_direction dir, unsigned long attrs)
{
	struct pegpu_dma *pd;
	struct scatterlist *s;
	struct pegpu_try t;
	int i, idx, ret;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "map_sg");
		return -EIO;
	}
	if (nents <= 0 || !valid_dma_direction(dir)) {
		pegpu_warn_status(pd, dev, PEGPU_XST_INVAL, "map_sg", 0);
		ret = -EINVAL;
		goto out;
	}
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && !dev_is_dma_coherent(dev))
		for_each_sg(sgl, s, nents, i)
			pegpu_sync_for_device(pd, dev, sg_phys(s), s->length, dir);
	pegpu_try_init(&t, pegpu_stream_may_sleep());
	do {
		pegpu_try_begin(pd, &t);
		ret = pegpu_map_sg_once(pd, dev, sgl, nents, dir, pegpu_stream_limit(dev), &t);
	} while (ret < 0 && pegpu_try_wait(pd, &t));
	pegpu_try_end(pd, &t, ret > 0);
out:
	pegpu_dma_put(idx);
	return ret;
}

static void pegpu_dma_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents,
			       enum dma_data_direction dir, unsigned long attrs)
{
	struct pegpu_dma *pd;
	struct scatterlist *s;
	struct pgc_req req;
	unsigned long flags;
	phys_addr_t phys;
	int i, idx, unknown = 0;
	u64 bytes = 0;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "unmap_sg");
		return;
	}
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && dir != DMA_TO_DEVICE && !dev_is_dma_coherent(dev))
		for_each_sg(sgl, s, nents, i)
			if (pegpu_lookup(pd, sg_dma_address(s), &phys))
				pegpu_sync_for_cpu(pd, dev, phys, sg_dma_len(s), dir);
	for_each_sg(sgl, s, nents, i)
		bytes += sg_dma_len(s);

	spin_lock_irqsave(&pd->lock, flags);
	pd->drv.unmap_calls++;
	if (nents > 0)
		pegpu_rec_unmap(pd, PEGPU_TK_SG, sg_dma_address(sgl), bytes, pegpu_dir_flags(dir));
	pd->nent = 0;
	for_each_sg(sgl, s, nents, i) {
		int r = pgc_unmap(&pd->pgc, sg_dma_address(s), sg_dma_len(s), &req);

		if (r == PGC_RELEASE)
			pegpu_queue_unmap(pd, req.iova, req.len);
		else if (r < 0)
			unknown++;
	}
	pegpu_flush_unmaps(pd);
	pd->drv.unknown_unmaps += unknown;
	spin_unlock_irqrestore(&pd->lock, flags);
	if (unknown)
		dev_warn_ratelimited(dev, "pegpu_dma: unmap_sg: %d of %d entries had unknown dma addresses\n",
				     unknown, nents);
	pegpu_dma_put(idx);
}

/*
 * Map memory that alloc/alloc_pages just took from the kernel.  The gfp says
 * whether the caller may block: then it may wait for DART capacity.
 */
static dma_addr_t pegpu_map_alloc(struct pegpu_dma *pd, struct device *dev, phys_addr_t phys,
				  size_t size, enum dma_data_direction dir, gfp_t gfp,
				  const char *what)
{
	struct pegpu_try t;
	dma_addr_t dma;

	pegpu_try_init(&t, gfpflags_allow_blocking(gfp));
	do {
		pegpu_try_begin(pd, &t);
		dma = pegpu_map_range(pd, dev, phys, size, dir, pegpu_coherent_limit(dev),
				      PEGPU_TK_COHERENT, &t, what);
	} while (dma == DMA_MAPPING_ERROR && pegpu_try_wait(pd, &t));
	pegpu_try_end(pd, &t, dma != DMA_MAPPING_ERROR);
	return dma;
}

static void *pegpu_dma_alloc(struct device *dev, size_t size, dma_addr_t *handle,
			     gfp_t gfp, unsigned long attrs)
{
	struct pegpu_dma *pd;
	void *cpu = NULL;
	dma_addr_t h, dma;
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "alloc");
		return NULL;
	}
	cpu = dma_alloc_attrs(&pd->pdev->dev, size, &h, gfp, attrs);
	if (!cpu)
		goto out;
	dma = pegpu_map_alloc(pd, dev, dma_to_phys(&pd->pdev->dev, h), size, DMA_BIDIRECTIONAL,
			      gfp, "alloc");
	if (dma == DMA_MAPPING_ERROR) {
		dma_free_attrs(&pd->pdev->dev, size, cpu, h, attrs);
		cpu = NULL;
		goto out;
	}
	*handle = dma;
out:
	pegpu_dma_put(idx);
	return cpu;
}

static void pegpu_dma_free(struct device *dev, size_t size, void *cpu, dma_addr_t dma,
			   unsigned long attrs)
{
	struct pegpu_dma *pd;
	phys_addr_t phys;
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "free");
		return;
	}
	if (!pegpu_lookup(pd, dma, &phys)) {
		dev_warn_ratelimited(dev, "pegpu_dma: free of unknown handle %pad (%zu bytes): leaked\n",
				     &dma, size);
		goto out;
	}
	pegpu_unmap_range(pd, dev, dma, size, PEGPU_TK_COHERENT, DMA_BIDIRECTIONAL, "free");
	dma_free_attrs(&pd->pdev->dev, size, cpu, phys_to_dma(&pd->pdev->dev, phys), attrs);
out:
	pegpu_dma_put(idx);
}

static struct page *pegpu_dma_alloc_pages(struct device *dev, size_t size, dma_addr_t *handle,
					  enum dma_data_direction dir, gfp_t gfp)
{
	struct pegpu_dma *pd;
	struct page *page;
	dma_addr_t h, dma;
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "alloc_pages");
		return NULL;
	}
	page = dma_alloc_pages(&pd->pdev->dev, size, &h, dir, gfp);
	if (!page)
		goto out;
	dma = pegpu_map_alloc(pd, dev, page_to_phys(page), size, dir, gfp, "alloc_pages");
	if (dma == DMA_MAPPING_ERROR) {
		dma_free_pages(&pd->pdev->dev, size, page, h, dir);
		page = NULL;
		goto out;
	}
	*handle = dma;
out:
	pegpu_dma_put(idx);
	return page;
}

static void pegpu_dma_free_pages(struct device *dev, size_t size, struct page *page,
				 dma_addr_t dma, enum dma_data_direction dir)
{
	struct pegpu_dma *pd;
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd) {
		pegpu_warn_gone(dev, "free_pages");
		return;
	}
	pegpu_unmap_range(pd, dev, dma, size, PEGPU_TK_COHERENT, dir, "free_pages");
	dma_free_pages(&pd->pdev->dev, size, page,
		       phys_to_dma(&pd->pdev->dev, page_to_phys(page)), dir);
	pegpu_dma_put(idx);
}

/* mmap and get_sgtable of coherent buffers: the pegpu-dma function owns the pages. */
static int pegpu_dma_mmap(struct device *dev, struct vm_area_struct *vma, void *cpu,
			  dma_addr_t dma, size_t size, unsigned long attrs)
{
	struct pegpu_dma *pd;
	phys_addr_t phys;
	int idx, ret = -ENXIO;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd)
		return -ENXIO;
	if (pegpu_lookup(pd, dma, &phys))
		ret = dma_mmap_attrs(&pd->pdev->dev, vma, cpu, phys_to_dma(&pd->pdev->dev, phys),
				     size, attrs);
	pegpu_dma_put(idx);
	return ret;
}

static int pegpu_dma_get_sgtable(struct device *dev, struct sg_table *sgt, void *cpu,
				 dma_addr_t dma, size_t size, unsigned long attrs)
{
	struct pegpu_dma *pd;
	phys_addr_t phys;
	int idx, ret = -ENXIO;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd)
		return -ENXIO;
	if (pegpu_lookup(pd, dma, &phys))
		ret = dma_get_sgtable_attrs(&pd->pdev->dev, sgt, cpu,
					    phys_to_dma(&pd->pdev->dev, phys), size, attrs);
	pegpu_dma_put(idx);
	return ret;
}

static void pegpu_sync_one(struct device *dev, dma_addr_t dma, size_t size,
			   enum dma_data_direction dir, bool for_cpu)
{
	struct pegpu_dma *pd;
	phys_addr_t phys;
	int idx;

	if (dev_is_dma_coherent(dev))
		return;
	pd = pegpu_dma_get(dev, &idx);
	if (!pd)
		return;
	if (pegpu_lookup(pd, dma, &phys)) {
		if (for_cpu)
			pegpu_sync_for_cpu(pd, dev, phys, size, dir);
		else
			pegpu_sync_for_device(pd, dev, phys, size, dir);
	}
	pegpu_dma_put(idx);
}

static void pegpu_dma_sync_single_for_cpu(struct device *dev, dma_addr_t dma, size_t size,
					  enum dma_data_direction dir)
{
	pegpu_sync_one(dev, dma, size, dir, true);
}

static void pegpu_dma_sync_single_for_device(struct device *dev, dma_addr_t dma, size_t size,
					     enum dma_data_direction dir)
{
	pegpu_sync_one(dev, dma, size, dir, false);
}

static void pegpu_dma_sync_sg_for_cpu(struct device *dev, struct scatterlist *sgl, int nents,
				      enum dma_data_direction dir)
{
	struct scatterlist *s;
	int i;

	if (dev_is_dma_coherent(dev))
		return;
	for_each_sg(sgl, s, nents, i)
		pegpu_sync_one(dev, sg_dma_address(s), sg_dma_len(s), dir, true);
}

static void pegpu_dma_sync_sg_for_device(struct device *dev, struct scatterlist *sgl,
					 int nents, enum dma_data_direction dir)
{
	struct scatterlist *s;
	int i;

	if (dev_is_dma_coherent(dev))
		return;
	for_each_sg(sgl, s, nents, i)
		pegpu_sync_one(dev, sg_dma_address(s), sg_dma_len(s), dir, false);
}

/* The device's masks must cover every IOVA the DART may hand out. */
static int pegpu_dma_dma_supported(struct device *dev, u64 mask)
{
	struct pegpu_dma *pd;
	int idx, ok;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd)
		return 0;
	ok = mask >= pd->iova_last;
	if (!ok)
		dev_info_ratelimited(dev, "pegpu_dma: DMA mask %#llx does not cover the DART IOVA window (up to %#llx)\n",
				     mask, pd->iova_last);
	pegpu_dma_put(idx);
	return ok;
}

static u64 pegpu_dma_get_required_mask(struct device *dev)
{
	struct pegpu_dma *pd;
	u64 mask = DMA_BIT_MASK(64);
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd)
		return mask;
	mask = DMA_BIT_MASK(fls64(pd->iova_last));
	pegpu_dma_put(idx);
	return mask;
}

/* A buffer at a page offset needs up to one DART page more than its size. */
static size_t pegpu_dma_max_mapping_size(struct device *dev)
{
	struct pegpu_dma *pd;
	size_t max = SIZE_MAX;
	u64 page;
	int idx;

	pd = pegpu_dma_get(dev, &idx);
	if (!pd)
		return max;
	page = 1ull << pd->page_shift;
	max = pd->max_mapped > page ? pd->max_mapped - page : page;
	pegpu_dma_put(idx);
	return max;
}

const struct dma_map_ops pegpu_dma_ops = {
	.alloc			= pegpu_dma_alloc,
	.free			= pegpu_dma_free,
	.PEGPU_OPS_ALLOC_PAGES	= pegpu_dma_alloc_pages,
	.free_pages		= pegpu_dma_free_pages,
	.mmap			= pegpu_dma_mmap,
	.get_sgtable		= pegpu_dma_get_sgtable,
#if PEGPU_HAVE_MAP_PHYS
	.map_phys		= pegpu_dma_map_phys,
	.unmap_phys		= pegpu_dma_unmap_phys,
#else
	.map_page		= pegpu_dma_map_page,
	.unmap_page		= pegpu_dma_unmap_page,
	.map_resource		= pegpu_dma_map_resource,
#endif
	.map_sg			= pegpu_dma_map_sg,
	.unmap_sg		= pegpu_dma_unmap_sg,
	.sync_single_for_cpu	= pegpu_dma_sync_single_for_cpu,
	.sync_single_for_device	= pegpu_dma_sync_single_for_device,
	.sync_sg_for_cpu	= pegpu_dma_sync_sg_for_cpu,
	.sync_sg_for_device	= pegpu_dma_sync_sg_for_device,
	.dma_supported		= pegpu_dma_dma_supported,
	.get_required_mask	= pegpu_dma_get_required_mask,
	.max_mapping_size	= pegpu_dma_max_mapping_size,
};
