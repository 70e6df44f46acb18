// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dma: the batch buffer and the doorbell.
 *
 * One batch buffer per pegpu-dma device, allocated at probe: physically
 * contiguous pages (so 64-byte aligned), header then entries.  The caller
 * holds pd->lock, queues entries with pegpu_batch_add() and posts them with
 * pegpu_batch_submit(): one 64-bit store of the buffer's guest-physical
 * address to DOORBELL.  The device completes the whole batch inside that
 * store, so the statuses are final when it returns; a header still PENDING
 * means the device could not even read the batch, and LAST_STATUS says why.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/wait.h>

#include "pegpu_dma_priv.h"

static const char *const pegpu_status_names[] = {
	[PEGPU_ST_OK]		= "OK",
	[PEGPU_ST_BAD_OP]	= "BAD_OP",
	[PEGPU_ST_BAD_FLAGS]	= "BAD_FLAGS",
	[PEGPU_ST_BAD_ALIGN]	= "BAD_ALIGN",
	[PEGPU_ST_BAD_LEN]	= "BAD_LEN",
	[PEGPU_ST_NOT_RAM]	= "NOT_RAM",
	[PEGPU_ST_NO_SPACE]	= "NO_SPACE",
	[PEGPU_ST_TOO_MANY]	= "TOO_MANY",
	[PEGPU_ST_NO_IOVA]	= "NO_IOVA",
	[PEGPU_ST_NOT_MAPPED]	= "NOT_MAPPED",
	[PEGPU_ST_LEN_MISMATCH]	= "LEN_MISMATCH",
	[PEGPU_ST_BAD_BATCH]	= "BAD_BATCH",
	[PEGPU_ST_BATCH_NOT_RAM] = "BATCH_NOT_RAM",
	[PEGPU_ST_BACKEND]	= "BACKEND",
};

/**
 * pegpu_status_name() - printable name of a device or driver status
 * @st: enum pegpu_dma_status or PEGPU_XST_*
 */
const char *pegpu_status_name(u32 st)
{
	switch (st) {
	case PEGPU_ST_PENDING:
		return "PENDING";
	case PEGPU_XST_FULL:
		return "GUEST_CAP";
	case PEGPU_XST_INVAL:
		return "INVALID";
	case PEGPU_XST_MASK:
		return "ABOVE_DMA_MASK";
	case PEGPU_XST_BROKEN:
		return "BAD_IOVA_FROM_DEVICE";
	case PEGPU_XST_NO_REPLY:
		return "NO_REPLY";
	case PEGPU_XST_GONE:
		return "NO_PEGPU_DMA";
	}
	if (st < ARRAY_SIZE(pegpu_status_names) && pegpu_status_names[st])
		return pegpu_status_names[st];
	return "UNKNOWN";
}

/**
 * pegpu_status_errno() - the map_sg error for a failed mapping
 * @st: the first failure's status
 *
 * Per include/linux/dma-map-ops.h and dma_map_sgtable(): -ENOMEM when
 * resources (caps, IOVA space) ran out and a retry may work, -EINVAL for
 * requests that can never work, -EIO for anything else.
 */
int pegpu_status_errno(u32 st)
{
	switch (st) {
	case PEGPU_ST_NO_SPACE:
	case PEGPU_ST_TOO_MANY:
	case PEGPU_ST_NO_IOVA:
	case PEGPU_XST_FULL:
		return -ENOMEM;
	case PEGPU_ST_BAD_FLAGS:
	case PEGPU_ST_BAD_ALIGN:
	case PEGPU_ST_BAD_LEN:
	case PEGPU_ST_NOT_RAM:
	case PEGPU_XST_INVAL:
	case PEGPU_XST_MASK:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/**
 * pegpu_warn_status() - ratelimited warning for a failed map or unmap
 * @pd: the instance
 * @dev: device to name in the message (the managed device)
 * @st: the status
 * @what: "map", "map_sg", "unmap", ...
 * @len: bytes involved
 *
 * Cap refusals name the live totals, from the device's counters when it
 * has them (the device's view is the one that matters), else from the
 * coalescer.  May be called with pd->lock held.
 */
void pegpu_warn_status(struct pegpu_dma *pd, struct device *dev, u32 st,
		       const char *what, u64 len)
{
	u64 bytes, maps;

	switch (st) {
	case PEGPU_ST_NO_SPACE:
	case PEGPU_ST_TOO_MANY:
	case PEGPU_ST_NO_IOVA:
	case PEGPU_XST_FULL:
		if (pd->features & PEGPU_DMA_F_COUNTERS) {
			bytes = pegpu_dma_counter(pd, PEGPU_DMA_CNT_MAPPED_BYTES);
			maps = pegpu_dma_counter(pd, PEGPU_DMA_CNT_LIVE_MAPPINGS);
		} else {
			bytes = pd->pgc.st.mapped_bytes;
			maps = pd->pgc.st.live_records;
		}
		dev_warn_ratelimited(dev,
			"pegpu_dma: %s of %llu bytes refused (%s): DART cap reached: %llu bytes / %llu mappings live (caps %llu bytes / %u mappings)\n",
			what, len, pegpu_status_name(st), bytes, maps,
			pd->max_mapped, pd->max_mappings);
		break;
	default:
		dev_warn_ratelimited(dev, "pegpu_dma: %s of %llu bytes failed: %s\n",
				     what, len, pegpu_status_name(st));
		break;
	}
}

/**
 * pegpu_batch_init() - allocate the batch buffer
 * @pd: the instance, limits read
 *
 * Return: 0 or -ENOMEM.
 */
int pegpu_batch_init(struct pegpu_dma *pd)
{
	u32 cap = min(pd->max_batch, PEGPU_DMA_BATCH_ENTRIES_MAX);
	struct page *page = NULL;
	unsigned int order;
	size_t bytes;

	/* Halve the buffer until the allocation works; one entry at least. */
	for (;;) {
		bytes = sizeof(struct pegpu_dma_batch_hdr) +
			(size_t)cap * sizeof(struct pegpu_dma_entry);
		order = get_order(bytes);
		page = alloc_pages(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN, order);
		if (page || cap == 1)
			break;
		cap /= 2;
	}
	if (!page)
		return -ENOMEM;

	pd->slot = kvcalloc(cap, sizeof(*pd->slot), GFP_KERNEL);
	if (!pd->slot) {
		__free_pages(page, order);
		return -ENOMEM;
	}
	pd->batch = page_address(page);
	pd->ent = (struct pegpu_dma_entry *)(pd->batch + 1);
	pd->batch_phys = page_to_phys(page);
	pd->batch_order = order;
	pd->batch_cap = cap;
	pd->nent = 0;
	BUILD_BUG_ON(PAGE_SIZE % PEGPU_BATCH_ALIGN);
	return 0;
}

void pegpu_batch_fini(struct pegpu_dma *pd)
{
	if (pd->batch)
		free_pages((unsigned long)pd->batch, pd->batch_order);
	pd->batch = NULL;
	pd->ent = NULL;
	kvfree(pd->slot);
	pd->slot = NULL;
}

/**
 * pegpu_batch_add() - queue one entry
 * @pd: the instance, lock held, batch not full
 * @op: PEGPU_OP_MAP or PEGPU_OP_UNMAP
 * @flags: PEGPU_DIR_* (MAP)
 * @addr: guest-physical start (MAP)
 * @len: bytes
 * @iova: the mapping's IOVA (UNMAP)
 *
 * Return: the entry's index in the batch.
 */
u32 pegpu_batch_add(struct pegpu_dma *pd, u16 op, u16 flags, u64 addr, u64 len, u64 iova)
{
	struct pegpu_dma_entry *e = &pd->ent[pd->nent];

	lockdep_assert_held(&pd->lock);
	e->op = cpu_to_le16(op);
	e->flags = cpu_to_le16(flags);
	e->status = cpu_to_le32(PEGPU_ST_PENDING);
	e->addr = cpu_to_le64(addr);
	e->len = cpu_to_le64(len);
	e->iova = cpu_to_le64(iova);
	return pd->nent++;
}

/**
 * pegpu_batch_submit() - post the queued entries, one doorbell
 * @pd: the instance, lock held
 *
 * Afterwards every queued entry's status is final (entries the device did
 * not reach carry the batch's failure status) and the queue is empty; the
 * entries stay readable until the next pegpu_batch_add().
 *
 * Return: the batch status: PEGPU_ST_OK if every entry succeeded.
 */
u32 pegpu_batch_submit(struct pegpu_dma *pd)
{
	struct pegpu_dma_batch_hdr *h = pd->batch;
	u32 n = pd->nent, st, i;

	lockdep_assert_held(&pd->lock);
	if (!n)
		return PEGPU_ST_OK;

	h->magic = cpu_to_le32(PEGPU_BATCH_MAGIC);
	h->count = cpu_to_le32(n);
	h->status = cpu_to_le32(PEGPU_ST_PENDING);
	h->nr_ok = 0;
	h->cookie = cpu_to_le64(++pd->seq);
	h->reserved = 0;

	/* writeq orders the batch's normal-memory stores before the MMIO store. */
	writeq(pd->batch_phys, pd->regs + PEGPU_DMA_REG_DOORBELL);
	/* The device wrote the statuses before the store retired; read them after. */
	mb();
	pd->drv.doorbells++;
	pd->nent = 0;

	st = le32_to_cpu(READ_ONCE(h->status));
	if (st == PEGPU_ST_PENDING) {
		/* The device could not use the batch at all: LAST_STATUS says why. */
		st = readl(pd->regs + PEGPU_DMA_REG_LAST_STATUS);
		if (st == PEGPU_ST_OK || st == PEGPU_ST_PENDING)
			st = PEGPU_XST_NO_REPLY;
		dev_err_ratelimited(&pd->pdev->dev, "batch of %u entries not processed: %s\n",
				    n, pegpu_status_name(st));
	}
	for (i = 0; i < n; i++) {
		u32 est = le32_to_cpu(READ_ONCE(pd->ent[i].status));

		if (est == PEGPU_ST_PENDING)
			pd->ent[i].status = cpu_to_le32(st == PEGPU_ST_OK ?
							PEGPU_XST_NO_REPLY : st);
	}
	return st;
}

/**
 * pegpu_flush_unmaps() - post queued UNMAPs and report failures
 * @pd: the instance, lock held; the queue holds UNMAP entries only
 */
void pegpu_flush_unmaps(struct pegpu_dma *pd)
{
	u32 n = pd->nent, i, st;

	if (!n)
		return;
	st = pegpu_batch_submit(pd);
	/*
	 * Capacity was freed: maps waiting for it (backpressure) try again.
	 * wq_has_sleeper() pairs with the waiter's barrier in prepare_to_wait().
	 */
	WRITE_ONCE(pd->bp_gen, pd->bp_gen + 1);
	if (wq_has_sleeper(&pd->bp_wq))
		wake_up(&pd->bp_wq);
	if (st == PEGPU_ST_OK)
		return;
	for (i = 0; i < n; i++) {
		st = le32_to_cpu(pd->ent[i].status);
		if (st == PEGPU_ST_OK)
			continue;
		pd->drv.unmap_failures++;
		dev_warn_ratelimited(&pd->pdev->dev,
				     "UNMAP iova %#llx len %llu failed: %s\n",
				     le64_to_cpu(pd->ent[i].iova),
				     le64_to_cpu(pd->ent[i].len), pegpu_status_name(st));
	}
}

/**
 * pegpu_queue_unmap() - queue an UNMAP, posting the batch first if full
 * @pd: the instance, lock held; the queue holds UNMAP entries only
 * @iova: the mapping's IOVA
 * @len: the mapping's length
 */
void pegpu_queue_unmap(struct pegpu_dma *pd, u64 iova, u64 len)
{
	if (pegpu_batch_full(pd))
		pegpu_flush_unmaps(pd);
	pegpu_batch_add(pd, PEGPU_OP_UNMAP, 0, 0, len, iova);
}

/**
 * pegpu_dma_release_all() - unmap every live mapping (remove, unload)
 * @pd: the instance, no longer reachable through the managed device's ops
 *
 * Drains the coalescer into UNMAP batches, then resets the device as belt
 * and braces, and reports the device's own live-mappings count, which
 * must be 0.
 */
void pegpu_dma_release_all(struct pegpu_dma *pd)
{
	struct pgc_req req;
	unsigned long flags;
	u64 n = 0, live;

	spin_lock_irqsave(&pd->lock, flags);
	pd->nent = 0;
	while (pgc_drain_one(&pd->pgc, &req)) {
		pegpu_queue_unmap(pd, req.iova, req.len);
		n++;
	}
	pegpu_flush_unmaps(pd);
	spin_unlock_irqrestore(&pd->lock, flags);

	if (n)
		dev_info(&pd->pdev->dev, "unmapped %llu mappings left by %s\n", n,
			 pci_name(pd->mdev));
	if (pd->features & PEGPU_DMA_F_RESET)
		writel(PEGPU_DMA_CTRL_RESET, pd->regs + PEGPU_DMA_REG_CONTROL);
	if (pd->features & PEGPU_DMA_F_COUNTERS) {
		live = pegpu_dma_counter(pd, PEGPU_DMA_CNT_LIVE_MAPPINGS);
		pr_info("released, device live mappings %llu\n", live);
	} else {
		pr_info("released, device live mappings unknown (no counters)\n");
	}
}
