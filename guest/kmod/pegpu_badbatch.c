// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_badbatch: a hostile guest for the pegpu-dma device.
 *
 * Finds the pegpu-dma function, maps its BAR itself (whether or not
 * pegpu_dma is bound; no region request) and posts malformed batches built
 * in its own kmalloc'd memory.  Each must get exactly the documented
 * status (include/pegpu/dma_proto.h), and the device must stay usable: a
 * well-formed MAP/UNMAP afterwards works, and no mapping is left behind.
 *
 *   PEGPU_BADBATCH_CASE name=<n> result=PASS|FAIL [detail=...]
 *   PEGPU_BADBATCH result=PASS|FAIL cases=N failed=N
 *
 * Run it while nothing else uses pegpu-dma: LAST_STATUS is device-global.
 * The module stays loaded (rmmod it); all its work happens at load.
 */
#define pr_fmt(fmt) fmt

#include <linux/io.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "compat.h"
#include "pegpu/dma_proto.h"

struct bb {
	struct pci_dev *pdev;
	void __iomem *regs;
	bool enabled_here, master_here;

	u32 page_shift, max_batch, features;
	u64 page, iova_base, iova_size;

	void *buf;			/* batches: kmalloc, power-of-two sized */
	size_t buf_size;
	phys_addr_t buf_phys;
	struct page *target;		/* MAP target: 2 DART pages of RAM */
	unsigned int target_order;
	phys_addr_t target_phys;

	u64 live0;
	int cases, failed;
	char detail[160];
	bool cfail;
};

static u64 bb_counter(struct bb *b, enum pegpu_dma_counter c)
{
	if (!(b->features & PEGPU_DMA_F_COUNTERS))
		return 0;
	return readq(b->regs + PEGPU_DMA_REG_COUNTERS + 8 * c);
}

static __printf(2, 3) void bb_fail(struct bb *b, const char *fmt, ...)
{
	size_t used = strlen(b->detail);
	va_list ap;

	b->cfail = true;
	if (used && used < sizeof(b->detail) - 1)
		b->detail[used++] = ',';
	va_start(ap, fmt);
	if (used < sizeof(b->detail) - 1)
		vsnprintf(b->detail + used, sizeof(b->detail) - used, fmt, ap);
	va_end(ap);
}

static void bb_begin(struct bb *b)
{
	b->cfail = false;
	b->detail[0] = '\0';
}

static void bb_end(struct bb *b, const char *name)
{
	b->cases++;
	if (b->cfail)
		b->failed++;
	pr_info("PEGPU_BADBATCH_CASE name=%s result=%s%s%s\n", name,
		b->cfail ? "FAIL" : "PASS", b->detail[0] ? " detail=" : "", b->detail);
}

static struct pegpu_dma_batch_hdr *bb_hdr(struct bb *b, size_t off)
{
	return b->buf + off;
}

static struct pegpu_dma_entry *bb_ent(struct pegpu_dma_batch_hdr *h, u32 i)
{
	return (struct pegpu_dma_entry *)(h + 1) + i;
}

/* A well-formed header for `count` entries; entries are the caller's. */
static void bb_hdr_init(struct pegpu_dma_batch_hdr *h, u32 count)
{
	h->magic = cpu_to_le32(PEGPU_BATCH_MAGIC);
	h->count = cpu_to_le32(count);
	h->status = cpu_to_le32(PEGPU_ST_PENDING);
	h->nr_ok = cpu_to_le32(0xdeadbeef);
	h->cookie = cpu_to_le64(0x5045475542414442ull);
	h->reserved = 0;
}

static void bb_ent_set(struct pegpu_dma_entry *e, u16 op, u16 flags, u64 addr, u64 len, u64 iova)
{
	e->op = cpu_to_le16(op);
	e->flags = cpu_to_le16(flags);
	e->status = cpu_to_le32(PEGPU_ST_PENDING);
	e->addr = cpu_to_le64(addr);
	e->len = cpu_to_le64(len);
	e->iova = cpu_to_le64(iova);
}

static u32 bb_est(struct pegpu_dma_batch_hdr *h, u32 i)
{
	return le32_to_cpu(READ_ONCE(bb_ent(h, i)->status));
}

/* Ring the doorbell with any 64-bit value; returns LAST_STATUS. */
static u32 bb_ring(struct bb *b, u64 addr)
{
	writeq(addr, b->regs + PEGPU_DMA_REG_DOORBELL);
	mb();
	return readl(b->regs + PEGPU_DMA_REG_LAST_STATUS);
}

/* Post the batch at buf + off; returns the header status (LAST_STATUS if still pending). */
static u32 bb_post(struct bb *b, size_t off, u32 *last)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, off);
	u32 l = bb_ring(b, b->buf_phys + off), st;

	st = le32_to_cpu(READ_ONCE(h->status));
	if (last)
		*last = l;
	return st == PEGPU_ST_PENDING ? l : st;
}

/* UNMAP every MAP entry of the batch at buf + off that succeeded (nothing may stay). */
static void bb_undo(struct bb *b, size_t off, u32 n)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, off);
	struct pegpu_dma_batch_hdr *u = bb_hdr(b, b->buf_size / 2);
	u32 i, k = 0;

	for (i = 0; i < n; i++) {
		struct pegpu_dma_entry *e = bb_ent(h, i);

		if (le16_to_cpu(e->op) == PEGPU_OP_MAP && bb_est(h, i) == PEGPU_ST_OK)
			bb_ent_set(bb_ent(u, k++), PEGPU_OP_UNMAP, 0, 0, le64_to_cpu(e->len),
				   le64_to_cpu(e->iova));
	}
	if (!k)
		return;
	bb_hdr_init(u, k);
	if (bb_post(b, b->buf_size / 2, NULL) != PEGPU_ST_OK)
		bb_fail(b, "cleanup_unmap_failed");
}

static const char *bb_name(u32 st)
{
	static const char *const names[] = {
		"OK", "BAD_OP", "BAD_FLAGS", "BAD_ALIGN", "BAD_LEN", "NOT_RAM", "NO_SPACE",
		"TOO_MANY", "NO_IOVA", "NOT_MAPPED", "LEN_MISMATCH", "BAD_BATCH",
		"BATCH_NOT_RAM", "BACKEND",
	};

	if (st == PEGPU_ST_PENDING)
		return "PENDING";
	return st < ARRAY_SIZE(names) ? names[st] : "UNKNOWN";
}

static void bb_expect(struct bb *b, const char *what, u32 got, u32 want)
{
	if (got != want)
		bb_fail(b, "%s:%s,want:%s", what, bb_name(got), bb_name(want));
}

/*
 * One batch of one entry whose processing must fail with `want` (entry and
 * header status, nr_ok 0), creating no mapping.
 */
static void bb_one_entry(struct bb *b, const char *name, u16 op, u16 flags, u64 addr, u64 len,
			 u64 iova, u32 want)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, 0);
	u64 live = bb_counter(b, PEGPU_DMA_CNT_LIVE_MAPPINGS);
	u32 st, last;

	bb_begin(b);
	bb_hdr_init(h, 1);
	bb_ent_set(bb_ent(h, 0), op, flags, addr, len, iova);
	st = bb_post(b, 0, &last);
	bb_expect(b, "batch", st, want);
	bb_expect(b, "entry", bb_est(h, 0), want);
	bb_expect(b, "last_status", last, want);
	if (le32_to_cpu(h->nr_ok) != 0)
		bb_fail(b, "nr_ok:%u", le32_to_cpu(h->nr_ok));
	bb_undo(b, 0, 1);
	if (bb_counter(b, PEGPU_DMA_CNT_LIVE_MAPPINGS) != live)
		bb_fail(b, "live_mappings_changed");
	bb_end(b, name);
}

/*
 * A batch the device must reject as a whole with `want`: no entry is
 * processed (entry statuses stay PENDING), no mapping is created.  With
 * header_written false the header cannot be written either (misaligned or
 * outside RAM): only LAST_STATUS tells.
 */
static void bb_whole_batch(struct bb *b, const char *name, size_t off, u64 doorbell,
			   u32 want, bool header_written)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, off);
	u64 live = bb_counter(b, PEGPU_DMA_CNT_LIVE_MAPPINGS);
	u32 last, hst;

	last = bb_ring(b, doorbell);
	hst = le32_to_cpu(READ_ONCE(h->status));
	bb_expect(b, "last_status", last, want);
	if (header_written)
		bb_expect(b, "header", hst, want);
	else if (hst != PEGPU_ST_PENDING)
		bb_fail(b, "header_written:%s", bb_name(hst));
	if (bb_est(h, 0) != PEGPU_ST_PENDING)
		bb_fail(b, "entry_processed:%s", bb_name(bb_est(h, 0)));
	bb_undo(b, off, 1);
	if (bb_counter(b, PEGPU_DMA_CNT_LIVE_MAPPINGS) != live)
		bb_fail(b, "live_mappings_changed");
	bb_end(b, name);
}

/* A valid MAP of the target, to wrap in broken batches. */
static void bb_good_map(struct bb *b, struct pegpu_dma_batch_hdr *h, u32 i, u64 pages)
{
	bb_ent_set(bb_ent(h, i), PEGPU_OP_MAP, PEGPU_DIR_BIDIRECTIONAL, b->target_phys,
		   pages * b->page, 0);
}

static void bb_batch_cases(struct bb *b)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, 0);
	u32 big = b->max_batch + 1, i;

	bb_begin(b);
	bb_hdr_init(h, 1);
	bb_good_map(b, h, 0, 1);
	h->magic = cpu_to_le32(0xdeadbeef);
	bb_whole_batch(b, "bad_magic", 0, b->buf_phys, PEGPU_ST_BAD_BATCH, true);

	bb_begin(b);
	bb_hdr_init(h, 0);
	bb_good_map(b, h, 0, 1);
	bb_whole_batch(b, "count_zero", 0, b->buf_phys, PEGPU_ST_BAD_BATCH, true);

	bb_begin(b);
	if ((size_t)big * sizeof(struct pegpu_dma_entry) + sizeof(*h) <= b->buf_size / 2) {
		for (i = 0; i < big; i++)
			bb_good_map(b, h, i, 1);
	} else {
		bb_good_map(b, h, 0, 1);
	}
	bb_hdr_init(h, big);
	bb_whole_batch(b, "count_too_big", 0, b->buf_phys, PEGPU_ST_BAD_BATCH, true);
	for (i = 1; i < big && (size_t)i * 32 + 64 <= b->buf_size / 2; i++)
		if (bb_est(h, i) != PEGPU_ST_PENDING) {
			pr_info("PEGPU_BADBATCH_CASE name=count_too_big_entries result=FAIL detail=entry%u_processed\n", i);
			b->cases++;
			b->failed++;
			break;
		}

	bb_begin(b);
	bb_hdr_init(h, 1);
	bb_good_map(b, h, 0, 1);
	h->reserved = cpu_to_le64(1);
	bb_whole_batch(b, "reserved_nonzero", 0, b->buf_phys, PEGPU_ST_BAD_BATCH, true);

	/* Header 32 bytes into the buffer: not 64-byte aligned. */
	bb_begin(b);
	bb_hdr_init(bb_hdr(b, 32), 1);
	bb_good_map(b, bb_hdr(b, 32), 0, 1);
	bb_whole_batch(b, "misaligned", 32, b->buf_phys + 32, PEGPU_ST_BAD_ALIGN, false);

	/* A batch address far outside guest RAM. */
	bb_begin(b);
	bb_hdr_init(h, 1);
	bb_good_map(b, h, 0, 1);
	bb_whole_batch(b, "batch_not_ram", 0, 1ull << 47, PEGPU_ST_BATCH_NOT_RAM, false);
}

static void bb_entry_cases(struct bb *b)
{
	u64 pg = b->page, tp = b->target_phys;
	u64 bar = pci_resource_start(b->pdev, PEGPU_DMA_BAR) & ~(pg - 1);
	u64 beyond = b->iova_size ? b->iova_base + b->iova_size + pg : 1ull << 62;

	bb_one_entry(b, "unknown_op", 7, PEGPU_DIR_TO_DEVICE, tp, pg, 0, PEGPU_ST_BAD_OP);
	bb_one_entry(b, "op_zero", 0, PEGPU_DIR_TO_DEVICE, tp, pg, 0, PEGPU_ST_BAD_OP);
	bb_one_entry(b, "bad_flags", PEGPU_OP_MAP, PEGPU_DIR_TO_DEVICE | 0x80, tp, pg, 0,
		     PEGPU_ST_BAD_FLAGS);
	bb_one_entry(b, "no_direction", PEGPU_OP_MAP, 0, tp, pg, 0, PEGPU_ST_BAD_FLAGS);
	bb_one_entry(b, "unaligned_addr", PEGPU_OP_MAP, PEGPU_DIR_TO_DEVICE, tp + 4096, pg, 0,
		     PEGPU_ST_BAD_ALIGN);
	bb_one_entry(b, "unaligned_len", PEGPU_OP_MAP, PEGPU_DIR_TO_DEVICE, tp, 4096, 0,
		     PEGPU_ST_BAD_ALIGN);
	bb_one_entry(b, "zero_len", PEGPU_OP_MAP, PEGPU_DIR_TO_DEVICE, tp, 0, 0, PEGPU_ST_BAD_LEN);
	bb_one_entry(b, "overflowing_len", PEGPU_OP_MAP, PEGPU_DIR_TO_DEVICE, tp, 0 - pg, 0,
		     PEGPU_ST_BAD_LEN);
	bb_one_entry(b, "map_not_ram", PEGPU_OP_MAP, PEGPU_DIR_TO_DEVICE, bar, pg, 0,
		     PEGPU_ST_NOT_RAM);
	bb_one_entry(b, "unmap_never_mapped", PEGPU_OP_UNMAP, 0, 0, pg, beyond,
		     PEGPU_ST_NOT_MAPPED);
	bb_one_entry(b, "unmap_unaligned_iova", PEGPU_OP_UNMAP, 0, 0, pg, b->iova_base + 4096,
		     PEGPU_ST_BAD_ALIGN);
}

/* MAP one or two pages of the target in its own batch; 0 on failure. */
static u64 bb_map(struct bb *b, u64 pages)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, 0);
	u32 st;

	bb_hdr_init(h, 1);
	bb_good_map(b, h, 0, pages);
	st = bb_post(b, 0, NULL);
	if (st != PEGPU_ST_OK || bb_est(h, 0) != PEGPU_ST_OK || le32_to_cpu(h->nr_ok) != 1) {
		bb_fail(b, "map:%s", bb_name(st));
		return 0;
	}
	return le64_to_cpu(bb_ent(h, 0)->iova);
}

static u32 bb_unmap(struct bb *b, u64 iova, u64 len)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, 0);
	u32 st;

	bb_hdr_init(h, 1);
	bb_ent_set(bb_ent(h, 0), PEGPU_OP_UNMAP, 0, 0, len, iova);
	st = bb_post(b, 0, NULL);
	if (st != bb_est(h, 0))
		bb_fail(b, "unmap_header:%s_entry:%s", bb_name(st), bb_name(bb_est(h, 0)));
	return st;
}

static void bb_sequence_cases(struct bb *b)
{
	struct pegpu_dma_batch_hdr *h = bb_hdr(b, 0);
	u64 pg = b->page, iova;
	u32 st;

	bb_begin(b);
	iova = bb_map(b, 1);
	if (iova) {
		bb_expect(b, "unmap1", bb_unmap(b, iova, pg), PEGPU_ST_OK);
		bb_expect(b, "unmap2", bb_unmap(b, iova, pg), PEGPU_ST_NOT_MAPPED);
	}
	bb_end(b, "double_unmap");

	bb_begin(b);
	iova = bb_map(b, 2);
	if (iova) {
		bb_expect(b, "short", bb_unmap(b, iova, pg), PEGPU_ST_LEN_MISMATCH);
		bb_expect(b, "long", bb_unmap(b, iova, 4 * pg), PEGPU_ST_LEN_MISMATCH);
		bb_expect(b, "middle", bb_unmap(b, iova + pg, pg), PEGPU_ST_NOT_MAPPED);
		bb_expect(b, "exact", bb_unmap(b, iova, 2 * pg), PEGPU_ST_OK);
	}
	bb_end(b, "unmap_wrong_len");

	/* Entries are processed in order; a failing one does not stop the rest. */
	bb_begin(b);
	bb_hdr_init(h, 4);
	bb_good_map(b, h, 0, 1);
	bb_ent_set(bb_ent(h, 1), 9, PEGPU_DIR_TO_DEVICE, b->target_phys, pg, 0);
	bb_ent_set(bb_ent(h, 2), PEGPU_OP_MAP, PEGPU_DIR_TO_DEVICE, b->target_phys, 0, 0);
	bb_good_map(b, h, 3, 2);
	st = bb_post(b, 0, NULL);
	bb_expect(b, "batch", st, PEGPU_ST_BAD_OP);
	bb_expect(b, "e0", bb_est(h, 0), PEGPU_ST_OK);
	bb_expect(b, "e1", bb_est(h, 1), PEGPU_ST_BAD_OP);
	bb_expect(b, "e2", bb_est(h, 2), PEGPU_ST_BAD_LEN);
	bb_expect(b, "e3", bb_est(h, 3), PEGPU_ST_OK);
	if (le32_to_cpu(h->nr_ok) != 2)
		bb_fail(b, "nr_ok:%u", le32_to_cpu(h->nr_ok));
	if (bb_est(h, 0) == PEGPU_ST_OK && bb_est(h, 3) == PEGPU_ST_OK &&
	    le64_to_cpu(bb_ent(h, 0)->iova) == le64_to_cpu(bb_ent(h, 3)->iova))
		bb_fail(b, "same_iova_twice");
	bb_undo(b, 0, 4);
	bb_end(b, "mixed_batch");

	/* The device is alive: a well-formed MAP and UNMAP still work. */
	bb_begin(b);
	iova = bb_map(b, 2);
	if (iova)
		bb_expect(b, "unmap", bb_unmap(b, iova, 2 * pg), PEGPU_ST_OK);
	bb_end(b, "still_alive");

	bb_begin(b);
	if (bb_counter(b, PEGPU_DMA_CNT_LIVE_MAPPINGS) != b->live0)
		bb_fail(b, "live_mappings:%llu,at_start:%llu",
			bb_counter(b, PEGPU_DMA_CNT_LIVE_MAPPINGS), b->live0);
	bb_end(b, "nothing_left");
}

static int bb_setup(struct bb *b)
{
	size_t need;

	b->pdev = pci_get_device(PEGPU_PCI_VENDOR_ID, PEGPU_DMA_PCI_DEVICE_ID, NULL);
	if (!b->pdev) {
		pr_err("pegpu_badbatch: no pegpu-dma device\n");
		return -ENODEV;
	}
	if (!pci_is_enabled(b->pdev)) {
		if (pci_enable_device(b->pdev))
			return -EIO;
		b->enabled_here = true;
	}
	if (!b->pdev->is_busmaster) {
		pci_set_master(b->pdev);
		b->master_here = true;
	}
	b->regs = pci_iomap(b->pdev, PEGPU_DMA_BAR, PEGPU_DMA_BAR_SIZE);
	if (!b->regs)
		return -ENOMEM;
	if (readl(b->regs + PEGPU_DMA_REG_MAGIC) != PEGPU_DMA_MAGIC ||
	    readl(b->regs + PEGPU_DMA_REG_VERSION) >> 16 != PEGPU_DMA_VERSION_MAJOR) {
		pr_err("pegpu_badbatch: not a pegpu-dma %u.x device\n", PEGPU_DMA_VERSION_MAJOR);
		return -ENODEV;
	}
	b->features = readl(b->regs + PEGPU_DMA_REG_FEATURES);
	b->page_shift = readl(b->regs + PEGPU_DMA_REG_PAGE_SHIFT);
	b->max_batch = readl(b->regs + PEGPU_DMA_REG_MAX_BATCH);
	b->iova_base = readq(b->regs + PEGPU_DMA_REG_IOVA_BASE);
	b->iova_size = readq(b->regs + PEGPU_DMA_REG_IOVA_SIZE);
	if (b->page_shift < 12 || b->page_shift > 24 || !b->max_batch)
		return -ENODEV;
	b->page = 1ull << b->page_shift;
	b->live0 = bb_counter(b, PEGPU_DMA_CNT_LIVE_MAPPINGS);

	/* Two halves: batches, and cleanup UNMAPs; room for MAX_BATCH + 1 entries if it fits. */
	need = sizeof(struct pegpu_dma_batch_hdr) +
	       ((size_t)b->max_batch + 1) * sizeof(struct pegpu_dma_entry);
	b->buf_size = roundup_pow_of_two(2 * max_t(size_t, need, SZ_4K));
	if (b->buf_size > KMALLOC_MAX_SIZE)
		b->buf_size = SZ_64K;
	b->buf = kzalloc(b->buf_size, GFP_KERNEL);
	if (!b->buf)
		return -ENOMEM;
	b->buf_phys = virt_to_phys(b->buf);

	b->target_order = get_order(2 * b->page);
	b->target = alloc_pages(GFP_KERNEL | __GFP_ZERO, b->target_order);
	if (!b->target)
		return -ENOMEM;
	b->target_phys = page_to_phys(b->target);
	return 0;
}

static void bb_teardown(struct bb *b)
{
	if (b->target)
		__free_pages(b->target, b->target_order);
	kfree(b->buf);
	if (b->regs)
		pci_iounmap(b->pdev, b->regs);
	if (b->master_here)
		pci_clear_master(b->pdev);
	if (b->enabled_here)
		pci_disable_device(b->pdev);
	pci_dev_put(b->pdev);
}

static int __init bb_init(void)
{
	struct bb *b;
	int ret;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	ret = bb_setup(b);
	if (ret) {
		pr_info("PEGPU_BADBATCH_CASE name=setup result=FAIL detail=errno:%d\n", ret);
		b->cases = b->failed = 1;
	} else {
		bb_batch_cases(b);
		bb_entry_cases(b);
		bb_sequence_cases(b);
	}
	pr_info("PEGPU_BADBATCH result=%s cases=%d failed=%d\n", b->failed ? "FAIL" : "PASS",
		b->cases, b->failed);
	bb_teardown(b);
	kfree(b);
	return 0;
}

static void __exit bb_exit(void)
{
}

module_init(bb_init);
module_exit(bb_exit);

MODULE_DESCRIPTION("pegpu: malformed-batch test of the pegpu-dma device");
MODULE_AUTHOR("pegpu");
MODULE_LICENSE("GPL");
