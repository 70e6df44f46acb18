// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dmatest: PCI driver for pegpu-dmatest, the device that plays the
 * GPU in tests.  pegpu_dma must be loaded first: it has installed its
 * dma_map_ops on this device, so everything below uses the normal DMA API
 * and goes through the (emulated) DART.
 *
 * At probe it runs the self-test (or, by parameter, the refusal cases, a
 * trace replay or the backpressure cases) and prints one line per case and
 * one summary line, for the kernel-tier harness to parse:
 *
 *   PEGPU_SELFTEST_CASE name=<n> result=PASS|FAIL maps=N doorbells=N [detail=...]
 *   PEGPU_SELFTEST result=PASS|FAIL cases=N failed=N bytes_verified=N doorbells=N
 *       maps=N peak_mappings=N peak_mapped_bytes=N live_at_end=N cluster_size=N
 *
 * (maps and doorbells: pegpu-dma's counters, deltas over the case or run).
 * The driver stays bound afterwards; remove() frees what is left.
 */
#define pr_fmt(fmt) fmt

#include <linux/delay.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "compat.h"
#include "pegpu_dmatest.h"

static bool expect_refusal;
module_param(expect_refusal, bool, 0444);
MODULE_PARM_DESC(expect_refusal,
		 "run the refusal cases (device started with tiny caps: 1 MiB, 16 mappings)");

static uint leak;
module_param(leak, uint, 0444);
MODULE_PARM_DESC(leak,
		 "test only: leave this many buffers mapped after the run (single, sg, coherent in turn), for pegpu_dma's unload drain and reset tests");

static bool selftest = true;
module_param(selftest, bool, 0444);
MODULE_PARM_DESC(selftest, "run the self-test at probe (default Y; N: only leak=, if set)");

static char *replay;
module_param(replay, charp, 0444);
MODULE_PARM_DESC(replay,
		 "replay this DMA trace (firmware name, e.g. pegpu/replay.trace) instead of the self-test");

static uint verify_every = 4;
module_param(verify_every, uint, 0444);
MODULE_PARM_DESC(verify_every,
		 "replay: move and check data through the device for every n-th call (default 4; 0 = none)");

static bool backpressure;
module_param(backpressure, bool, 0444);
MODULE_PARM_DESC(backpressure,
		 "run the backpressure cases (tiny caps, pegpu_dma cluster_size=0 wait_ms>0)");

static uint seed = 0x9e9e;
module_param(seed, uint, 0444);
MODULE_PARM_DESC(seed, "seed of the test's pseudo-random data and unmap order");

void dt_stats(struct dt_ctx *t, struct pegpu_dma_stats *st)
{
	if (!t->get_stats || t->get_stats(t->dev, st))
		memset(st, 0, sizeof(*st));
}

/* A device counter, or the driver's closest equivalent without a counter block. */
u64 dt_dev_counter(const struct pegpu_dma_stats *st, enum pegpu_dma_counter c)
{
	if (st->dev_valid)
		return st->dev[c];
	switch (c) {
	case PEGPU_DMA_CNT_DOORBELLS:
		return st->drv.doorbells;
	case PEGPU_DMA_CNT_MAPS:
		return st->pgc.misses;
	case PEGPU_DMA_CNT_UNMAPS:
		return st->pgc.releases;
	case PEGPU_DMA_CNT_LIVE_MAPPINGS:
		return st->pgc.live_records;
	case PEGPU_DMA_CNT_MAPPED_BYTES:
		return st->pgc.mapped_bytes;
	case PEGPU_DMA_CNT_PEAK_MAPPINGS:
		return st->pgc.peak_records;
	case PEGPU_DMA_CNT_PEAK_MAPPED_BYTES:
		return st->pgc.peak_mapped_bytes;
	default:
		return 0;
	}
}

static __printf(2, 0) void dt_vappend(struct dt_ctx *t, const char *fmt, va_list ap)
{
	size_t used = strlen(t->detail);

	if (used && used < sizeof(t->detail) - 1)
		t->detail[used++] = ',';
	if (used < sizeof(t->detail) - 1)
		vsnprintf(t->detail + used, sizeof(t->detail) - used, fmt, ap);
}

/* Record a failure of the current case; detail takes no spaces. */
void dt_fail(struct dt_ctx *t, const char *fmt, ...)
{
	va_list ap;

	t->cfail = true;
	va_start(ap, fmt);
	dt_vappend(t, fmt, ap);
	va_end(ap);
}

/* Add an informational detail to the current case. */
void dt_note(struct dt_ctx *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dt_vappend(t, fmt, ap);
	va_end(ap);
}

void dt_case_begin(struct dt_ctx *t, const char *name)
{
	t->cname = name;
	t->cfail = false;
	t->detail[0] = '\0';
	dt_stats(t, &t->case0);
}

void dt_case_end(struct dt_ctx *t)
{
	struct pegpu_dma_stats now;
	u64 maps, db;

	dt_stats(t, &now);
	maps = dt_dev_counter(&now, PEGPU_DMA_CNT_MAPS) -
	       dt_dev_counter(&t->case0, PEGPU_DMA_CNT_MAPS);
	db = dt_dev_counter(&now, PEGPU_DMA_CNT_DOORBELLS) -
	     dt_dev_counter(&t->case0, PEGPU_DMA_CNT_DOORBELLS);
	t->cases++;
	if (t->cfail)
		t->failed++;
	pr_info("PEGPU_SELFTEST_CASE name=%s result=%s maps=%llu doorbells=%llu%s%s\n",
		t->cname, t->cfail ? "FAIL" : "PASS", maps, db,
		t->detail[0] ? " detail=" : "", t->detail);
}

void dt_ring_reset(struct dt_ctx *t)
{
	t->nd = 0;
}

/* Queue one descriptor; returns its index, or -1 (and fails the case) if the ring is full. */
int dt_add(struct dt_ctx *t, u32 op, u64 src, u64 dst, u64 len, u64 arg)
{
	struct pegpu_dmatest_desc *d;

	if (t->nd >= DT_RING_DESCS) {
		dt_fail(t, "ring_full");
		return -1;
	}
	d = &t->ring[t->nd];
	d->op = cpu_to_le32(op);
	d->status = cpu_to_le32(PEGPU_DT_ST_PENDING);
	d->src = cpu_to_le64(src);
	d->dst = cpu_to_le64(dst);
	d->len = cpu_to_le64(len);
	d->arg = cpu_to_le64(arg);
	d->result = 0;
	return t->nd++;
}

/* Run the queued descriptors; the device completes them inside the doorbell write. */
int dt_run(struct dt_ctx *t)
{
	u32 st, i, n = t->nd;
	int ret = 0;

	if (!n)
		return 0;
	writeq(t->ring_dma, t->regs + PEGPU_DMATEST_REG_RING_IOVA);
	writel(n, t->regs + PEGPU_DMATEST_REG_RING_COUNT);
	writel(1, t->regs + PEGPU_DMATEST_REG_DOORBELL);
	st = readl(t->regs + PEGPU_DMATEST_REG_STATUS);
	rmb();
	if (st != PEGPU_DT_ST_OK) {
		dt_fail(t, "device_status:%u,fault_iova:%#llx", st,
			readq(t->regs + PEGPU_DMATEST_REG_FAULT_IOVA));
		ret = -EIO;
	}
	for (i = 0; i < n; i++) {
		u32 ds = le32_to_cpu(READ_ONCE(t->ring[i].status));

		if (ds != PEGPU_DT_ST_OK) {
			dt_fail(t, "desc%u_op%u_status:%u", i, le32_to_cpu(t->ring[i].op), ds);
			ret = -EIO;
			break;
		}
	}
	t->nd = 0;
	return ret;
}

u64 dt_result(struct dt_ctx *t, int i)
{
	return i < 0 ? 0 : le64_to_cpu(READ_ONCE(t->ring[i].result));
}

u64 dt_faults(struct dt_ctx *t)
{
	return readq(t->regs + PEGPU_DMATEST_REG_FAULTS);
}

bool dt_verify_fill(struct dt_ctx *t, const void *buf, size_t len, u8 val, const char *what)
{
	const u8 *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] != val) {
			dt_fail(t, "%s_byte%zu:%#x!=%#x", what, i, p[i], val);
			return false;
		}
	}
	t->bytes_verified += len;
	return true;
}

bool dt_verify_same(struct dt_ctx *t, const void *a, const void *b, size_t len, const char *what)
{
	const u8 *p = a, *q = b;
	size_t i;

	if (!memcmp(a, b, len)) {
		t->bytes_verified += len;
		return true;
	}
	for (i = 0; i < len && p[i] == q[i]; i++)
		;
	dt_fail(t, "%s_differs_at:%zu", what, i);
	return false;
}

/*
 * Physically contiguous memory: kmalloc up to 64 KiB, one page block up
 * to the allocator's largest order, else a run of adjacent largest-order
 * blocks found among a few allocations (the buddy allocator has no larger
 * order; right after boot adjacent blocks are the rule).
 */
#define DT_HUNT_MAX	48

int dt_mem_alloc(struct dt_ctx *t, struct dt_mem *m, size_t size)
{
	unsigned int order = PEGPU_MAX_PAGE_ORDER, need, n = 0, i, j, k;
	unsigned long bpages = 1ul << order;
	struct page **hunt;
	int found = -1;

	memset(m, 0, sizeof(*m));
	m->size = size;
	if (size <= SZ_64K) {
		m->va = kmalloc(size, GFP_KERNEL);
		return m->va ? 0 : -ENOMEM;
	}
	if (get_order(size) <= PEGPU_MAX_PAGE_ORDER) {
		m->order = get_order(size);
		m->blocks[0] = alloc_pages(GFP_KERNEL | __GFP_NOWARN, m->order);
		if (!m->blocks[0])
			return -ENOMEM;
		m->nblocks = 1;
		m->va = page_address(m->blocks[0]);
		return 0;
	}

	need = DIV_ROUND_UP(size, PAGE_SIZE << order);
	if (need > ARRAY_SIZE(m->blocks))
		return -EINVAL;
	hunt = kcalloc(DT_HUNT_MAX, sizeof(*hunt), GFP_KERNEL);
	if (!hunt)
		return -ENOMEM;
	while (found < 0 && n < DT_HUNT_MAX) {
		hunt[n] = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);
		if (!hunt[n])
			break;
		n++;
		/* Is there a run of `need` blocks starting at some block? */
		for (i = 0; i < n && found < 0; i++) {
			unsigned long pfn = page_to_pfn(hunt[i]);

			for (k = 1; k < need; k++) {
				for (j = 0; j < n; j++)
					if (page_to_pfn(hunt[j]) == pfn + k * bpages)
						break;
				if (j == n)
					break;
			}
			if (k == need)
				found = i;
		}
	}
	if (found >= 0) {
		unsigned long pfn = page_to_pfn(hunt[found]);

		for (k = 0; k < need; k++)
			for (j = 0; j < n; j++)
				if (hunt[j] && page_to_pfn(hunt[j]) == pfn + k * bpages) {
					m->blocks[k] = hunt[j];
					hunt[j] = NULL;
				}
		m->nblocks = need;
		m->order = order;
		m->va = page_address(m->blocks[0]);
	}
	for (j = 0; j < n; j++)
		if (hunt[j])
			__free_pages(hunt[j], order);
	kfree(hunt);
	if (found < 0) {
		dt_note(t, "no_%zu_contiguous_bytes_after_%u_blocks", size, n);
		return -ENOMEM;
	}
	return 0;
}

void dt_mem_free(struct dt_mem *m)
{
	unsigned int i;

	if (!m->va)
		return;
	if (!m->nblocks)
		kfree(m->va);
	for (i = 0; i < m->nblocks; i++)
		__free_pages(m->blocks[i], m->order);
	memset(m, 0, sizeof(*m));
}

/*
 * leak=N: map N buffers and never unmap them (nor free them: the device
 * may still reach them), so that unloading pegpu_dma, or a reboot, has
 * mappings to release: 4 KiB single maps (sharing a cluster), 1 MiB single
 * maps (exact mappings), 4-entry scatterlists and 64 KiB coherent buffers,
 * in turn.
 */
static void dt_leak(struct dt_ctx *t, unsigned int n)
{
	unsigned int i, done = 0;
	struct scatterlist *sgl;
	struct page *page;
	dma_addr_t dma;
	void *buf;
	int j;

	for (i = 0; i < n; i++) {
		switch (i % 4) {
		case 0:
			buf = kzalloc(SZ_4K, GFP_KERNEL);
			if (!buf)
				continue;
			dma = dma_map_single(t->dev, buf, SZ_4K, DMA_BIDIRECTIONAL);
			if (dma_mapping_error(t->dev, dma)) {
				kfree(buf);
				continue;
			}
			break;
		case 1:
			page = alloc_pages(GFP_KERNEL | __GFP_ZERO, get_order(SZ_1M));
			if (!page)
				continue;
			dma = dma_map_page(t->dev, page, 0, SZ_1M, DMA_TO_DEVICE);
			if (dma_mapping_error(t->dev, dma)) {
				__free_pages(page, get_order(SZ_1M));
				continue;
			}
			break;
		case 2:
			sgl = kcalloc(4, sizeof(*sgl), GFP_KERNEL);
			buf = kzalloc(4 * PAGE_SIZE, GFP_KERNEL);
			if (!sgl || !buf) {
				kfree(sgl);
				kfree(buf);
				continue;
			}
			sg_init_table(sgl, 4);
			for (j = 0; j < 4; j++)
				sg_set_buf(&sgl[j], buf + j * PAGE_SIZE, 512);
			if (dma_map_sg(t->dev, sgl, 4, DMA_FROM_DEVICE) != 4) {
				kfree(sgl);
				kfree(buf);
				continue;
			}
			break;
		default:
			if (!dma_alloc_coherent(t->dev, SZ_64K, &dma, GFP_KERNEL))
				continue;
			break;
		}
		done++;
	}
	dev_warn(t->dev, "leak=%u: left %u buffers mapped for pegpu_dma's unload or a reset\n",
		 n, done);
}

static int dt_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct pegpu_dma_stats st;
	struct dt_ctx *t;
	u32 magic;
	int ret;

	t = devm_kzalloc(dev, sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->pdev = pdev;
	t->dev = dev;
	t->expect_refusal = expect_refusal;
	prandom_seed_state(&t->rnd, seed);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	t->regs = pcim_iomap(pdev, PEGPU_DMATEST_BAR, PEGPU_DMATEST_BAR_SIZE);
	if (!t->regs)
		return -ENOMEM;
	magic = readl(t->regs + PEGPU_DMATEST_REG_MAGIC);
	if (magic != PEGPU_DMATEST_MAGIC) {
		dev_err(dev, "not a pegpu-dmatest device: magic %#x\n", magic);
		return -ENODEV;
	}
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret) {
		dev_err(dev, "64-bit DMA mask refused: %d\n", ret);
		return ret;
	}
	pci_set_drvdata(pdev, t);

	/*
	 * Looked up rather than linked: without pegpu_dma this driver still
	 * loads, reports the failure, and stays bound (so that a pegpu_dma
	 * loaded afterwards shows its "already has a driver" refusal).
	 */
	t->get_stats = symbol_get(pegpu_dma_get_stats);
	if (!t->get_stats || t->get_stats(dev, &st)) {
		/* Without pegpu_dma the device would DMA to guest-physical addresses. */
		pr_info("PEGPU_SELFTEST_CASE name=setup result=FAIL maps=0 doorbells=0 detail=%s_not_managed_by_pegpu_dma\n",
			pci_name(pdev));
		pr_info("PEGPU_SELFTEST result=FAIL cases=1 failed=1 bytes_verified=0 doorbells=0 maps=0 peak_mappings=0 peak_mapped_bytes=0 live_at_end=0 cluster_size=0\n");
		dev_err(dev, "pegpu_dma does not manage this device: load pegpu_dma first; no DMA will be done\n");
		return 0;
	}

	if (replay && *replay)
		dt_run_replay(t, replay, verify_every);
	else if (backpressure)
		dt_run_backpressure(t);
	else if (t->expect_refusal)
		dt_run_refusal(t);
	else if (selftest)
		dt_run_selftest(t);
	if (leak)
		dt_leak(t, leak);
	return 0;
}

static void dt_remove(struct pci_dev *pdev)
{
	struct dt_ctx *t = pci_get_drvdata(pdev);

	if (t && t->ring)
		dma_free_coherent(t->dev, DT_RING_DESCS * sizeof(*t->ring), t->ring, t->ring_dma);
	if (t && t->get_stats)
		symbol_put(pegpu_dma_get_stats);
}

static const struct pci_device_id dt_ids[] = {
	{ PCI_DEVICE(PEGPU_PCI_VENDOR_ID, PEGPU_DMATEST_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dt_ids);

static struct pci_driver dt_driver = {
	.name		= KBUILD_MODNAME,
	.id_table	= dt_ids,
	.probe		= dt_probe,
	.remove		= dt_remove,
};
module_pci_driver(dt_driver);

MODULE_SOFTDEP("pre: pegpu_dma");
MODULE_DESCRIPTION("pegpu: DMA self-test through pegpu_dma and the pegpu-dmatest device");
MODULE_AUTHOR("pegpu");
MODULE_LICENSE("GPL");
