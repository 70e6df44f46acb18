// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dma: debugfs, under <debugfs>/pegpu_dma/<pci name of pegpu-dma>/
 *
 *   stats     device counters (BAR counter block), coalescer and driver
 *             statistics, limits; one "name value" pair per line
 *   mappings  the live mapping table: kind iova phys len refs
 *   trace     the recorded DMA events, a binary trace (pegpu_dma_trace.c);
 *             only while recording (trace_records > 0)
 */
#include <linux/debugfs.h>
#include <linux/mm.h>
#include <linux/seq_file.h>

#include "pegpu_dma_priv.h"

static struct dentry *pegpu_dma_debugfs_root;

static const char *const pegpu_counter_names[] = PEGPU_DMA_COUNTER_NAMES_INIT;

/* The coalescer's own consistency check (refcounts, tables, stats). */
static bool pegpu_dma_check(struct pegpu_dma *pd)
{
	unsigned long flags;
	bool ok;

	spin_lock_irqsave(&pd->lock, flags);
	ok = pgc_check(&pd->pgc);
	spin_unlock_irqrestore(&pd->lock, flags);
	return ok;
}

static int pegpu_stats_show(struct seq_file *m, void *unused)
{
	struct pegpu_dma *pd = m->private;
	struct pegpu_dma_stats *st;
	int i;

	BUILD_BUG_ON(ARRAY_SIZE(pegpu_counter_names) != PEGPU_DMA_CNT__COUNT);
	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	pegpu_dma_snapshot(pd, st);

	seq_printf(m, "managed %s\n", pci_name(pd->mdev));
	if (st->dev_valid)
		for (i = 0; i < PEGPU_DMA_CNT__COUNT; i++)
			seq_printf(m, "device.%s %llu\n", pegpu_counter_names[i], st->dev[i]);

	seq_printf(m, "coalescer.live_records %llu\n", st->pgc.live_records);
	seq_printf(m, "coalescer.live_clusters %llu\n", st->pgc.live_clusters);
	seq_printf(m, "coalescer.live_exact %llu\n", st->pgc.live_exact);
	seq_printf(m, "coalescer.mapped_bytes %llu\n", st->pgc.mapped_bytes);
	seq_printf(m, "coalescer.live_buffers %llu\n", st->pgc.live_buffers);
	seq_printf(m, "coalescer.buffer_bytes %llu\n", st->pgc.buffer_bytes);
	seq_printf(m, "coalescer.peak_records %llu\n", st->pgc.peak_records);
	seq_printf(m, "coalescer.peak_mapped_bytes %llu\n", st->pgc.peak_mapped_bytes);
	seq_printf(m, "coalescer.hits %llu\n", st->pgc.hits);
	seq_printf(m, "coalescer.misses %llu\n", st->pgc.misses);
	seq_printf(m, "coalescer.releases %llu\n", st->pgc.releases);
	seq_printf(m, "coalescer.consistent %d\n", pegpu_dma_check(pd));

	seq_printf(m, "driver.map_calls %llu\n", st->drv.map_calls);
	seq_printf(m, "driver.sg_calls %llu\n", st->drv.sg_calls);
	seq_printf(m, "driver.sg_entries %llu\n", st->drv.sg_entries);
	seq_printf(m, "driver.unmap_calls %llu\n", st->drv.unmap_calls);
	seq_printf(m, "driver.doorbells %llu\n", st->drv.doorbells);
	seq_printf(m, "driver.map_failures %llu\n", st->drv.map_failures);
	seq_printf(m, "driver.unmap_failures %llu\n", st->drv.unmap_failures);
	seq_printf(m, "driver.unknown_unmaps %llu\n", st->drv.unknown_unmaps);
	seq_printf(m, "driver.bp_waits %llu\n", st->drv.bp_waits);
	seq_printf(m, "driver.bp_wait_ok %llu\n", st->drv.bp_wait_ok);
	seq_printf(m, "driver.bp_timeouts %llu\n", st->drv.bp_timeouts);
	seq_printf(m, "driver.bp_nowait %llu\n", st->drv.bp_nowait);

	seq_printf(m, "trace.capacity %llu\n", st->trace.capacity);
	seq_printf(m, "trace.recorded %llu\n", st->trace.recorded);
	seq_printf(m, "trace.dropped %llu\n", st->trace.dropped);
	seq_printf(m, "trace.queued %llu\n", st->trace.queued);

	seq_printf(m, "limits.page_shift %u\n", st->lim.page_shift);
	seq_printf(m, "limits.max_batch %u\n", st->lim.max_batch);
	seq_printf(m, "limits.batch_entries %u\n", st->lim.batch_entries);
	seq_printf(m, "limits.max_mappings %u\n", st->lim.max_mappings);
	seq_printf(m, "limits.max_mapped_bytes %llu\n", st->lim.max_mapped_bytes);
	seq_printf(m, "limits.iova_base %#llx\n", st->lim.iova_base);
	seq_printf(m, "limits.iova_size %#llx\n", st->lim.iova_size);
	seq_printf(m, "limits.cluster_size %llu\n", st->lim.cluster_size);
	seq_printf(m, "limits.coherent %d\n", st->lim.coherent);
	seq_printf(m, "limits.wait_ms %u\n", st->lim.wait_ms);
	seq_printf(m, "limits.wait_streaming %d\n", st->lim.wait_streaming);
	kfree(st);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pegpu_stats);

struct pegpu_map_row {
	u64 iova, phys, len;
	u32 refs;
	u8 kind;
};

struct pegpu_map_snap {
	struct pegpu_map_row *rows;
	u32 n, cap;
};

static void pegpu_map_visit(void *ctx, enum pgc_kind kind, u64 iova, u64 phys, u64 len,
			    u32 refs)
{
	struct pegpu_map_snap *s = ctx;

	if (s->n >= s->cap)
		return;
	s->rows[s->n++] = (struct pegpu_map_row){ iova, phys, len, refs, kind };
}

/* Snapshot under the lock, print outside it: the table may hold 65536 rows. */
static int pegpu_mappings_show(struct seq_file *m, void *unused)
{
	struct pegpu_dma *pd = m->private;
	struct pegpu_map_snap s = { .cap = pd->pgc.cfg.max_records };
	unsigned long flags;
	u32 i;

	s.rows = kvmalloc_array(s.cap, sizeof(*s.rows), GFP_KERNEL);
	if (!s.rows)
		return -ENOMEM;
	spin_lock_irqsave(&pd->lock, flags);
	pgc_for_each(&pd->pgc, pegpu_map_visit, &s);
	spin_unlock_irqrestore(&pd->lock, flags);

	seq_puts(m, "kind iova phys len refs\n");
	for (i = 0; i < s.n; i++)
		seq_printf(m, "%s %#llx %#llx %llu %u\n",
			   s.rows[i].kind == PGC_KIND_CLUSTER ? "cluster" : "exact",
			   s.rows[i].iova, s.rows[i].phys, s.rows[i].len, s.rows[i].refs);
	kvfree(s.rows);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pegpu_mappings);

void pegpu_dma_debugfs_init(void)
{
	pegpu_dma_debugfs_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
}

void pegpu_dma_debugfs_exit(void)
{
	debugfs_remove_recursive(pegpu_dma_debugfs_root);
	pegpu_dma_debugfs_root = NULL;
}

void pegpu_dma_debugfs_add(struct pegpu_dma *pd)
{
	pd->dbg = debugfs_create_dir(pci_name(pd->pdev), pegpu_dma_debugfs_root);
	debugfs_create_file("stats", 0444, pd->dbg, pd, &pegpu_stats_fops);
	debugfs_create_file("mappings", 0400, pd->dbg, pd, &pegpu_mappings_fops);
	if (pd->tr.rec)
		debugfs_create_file("trace", 0400, pd->dbg, pd, &pegpu_rec_fops);
}

void pegpu_dma_debugfs_remove(struct pegpu_dma *pd)
{
	debugfs_remove_recursive(pd->dbg);
	pd->dbg = NULL;
}
