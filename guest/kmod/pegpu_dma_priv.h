/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pegpu_dma.ko internals, shared by its source files only.
 *
 *   pegpu_dma_main.c      PCI driver: probe/remove, managed device, notifier
 *   pegpu_dma_batch.c     the batch buffer and the doorbell
 *   pegpu_dma_ops.c       the dma_map_ops installed on the managed device
 *   pegpu_dma_debugfs.c   debugfs: stats, mappings
 *   pegpu_dma_trace.c     the trace recorder and debugfs trace
 *   pegpu_dma_coalesce.c  lib/coalesce.c, compiled in
 *
 * Locking: pd->lock (spinlock, irqsave) covers the coalescer, the batch
 * buffer, the doorbell and the trace ring; nothing under it sleeps or
 * allocates.  Events are recorded under the same lock hold as the
 * coalescer operation they describe, so the trace's order is the order in
 * which the coalescer saw them and a replay reproduces its decisions.
 * The instance list is SRCU-protected so that dma_map_ops callbacks (any
 * context, and alloc or a backpressure wait, which may sleep) never race
 * with remove freeing the instance.
 */
#ifndef PEGPU_DMA_PRIV_H
#define PEGPU_DMA_PRIV_H

#include <linux/dma-map-ops.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/pci.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include "pegpu_dma.h"
#include "pegpu/dma_trace.h"

/*
 * The driver's batch buffer holds min(MAX_BATCH, this) entries: 16384
 * entries are 512 KiB, physically contiguous, allocated once.
 */
#define PEGPU_DMA_BATCH_ENTRIES_MAX	16384u

/*
 * Statuses of our own, beyond enum pegpu_dma_status, for the same error
 * paths and messages.  Never sent to or received from the device.
 */
#define PEGPU_XST_FULL		0x100	/* coalescer: record or page capacity */
#define PEGPU_XST_INVAL		0x101	/* bad arguments */
#define PEGPU_XST_MASK		0x102	/* IOVA beyond the device's DMA mask */
#define PEGPU_XST_BROKEN	0x103	/* device returned an unusable IOVA */
#define PEGPU_XST_NO_REPLY	0x104	/* device left the batch pending */
#define PEGPU_XST_GONE		0x105	/* pegpu-dma instance removed */

/* Module parameters read at run time (pegpu_dma_main.c). */
extern unsigned int pegpu_wait_ms;
/* Longest backpressure wait, whatever wait_ms says: keeps jiffies sums sane. */
#define PEGPU_WAIT_MS_MAX	60000u

/*
 * The trace ring: a FIFO of wire records, filled under pd->lock by the map
 * paths and drained by readers of debugfs `trace`.  A writer never
 * overwrites: when a call's records do not fit, they are counted in `lost`
 * and the next call that fits is preceded by one DROP record saying how
 * many events are missing there.
 */
struct pegpu_dma_trace {
	struct pegpu_trace_rec *rec;	/* NULL: not recording */
	u32 mask;			/* capacity - 1 (a power of two) */
	u64 head, tail;			/* records written, records read */
	u64 lost;			/* events lost since the last DROP record */
	u64 dropped;			/* events lost, in total */
	u64 recorded;			/* events written, in total */
	u64 t0;				/* ktime_get_ns() at the start */
	u64 last_ts;			/* keeps timestamps non-decreasing */
	u64 ram_base, ram_size;		/* span of System RAM, for the file header */
};

/* Per batch slot: which coalescer record a MAP is for, and its result. */
struct pegpu_dma_slot {
	u32 rec;		/* pgc record (MAP) */
	u32 status;		/* copied out of the entry after the doorbell */
	u64 iova;
	u64 len;
	struct pgc_ref ref;	/* the reference whose pgc_map() asked for the MAP */
};

struct pegpu_dma {
	struct list_head node;		/* pegpu_dma_list, SRCU */
	struct pci_dev *pdev;		/* the pegpu-dma function */
	void __iomem *regs;

	/* device limits */
	u32 features;
	u32 version;
	u32 page_shift;
	u32 max_batch;
	u32 max_mappings;
	u64 max_mapped;
	u64 iova_base;
	u64 iova_size;
	u64 iova_last;			/* last IOVA the device may hand out */
	u64 cluster_size;

	/* the managed device */
	struct pci_dev *mdev;		/* referenced */
	const struct dma_map_ops *orig_ops;
	bool managed_bound;		/* we hold a module reference */
	struct notifier_block nb;

	/* under lock */
	spinlock_t lock;
	struct pgc pgc;
	void *pgc_mem;
	struct pegpu_dma_batch_hdr *batch;
	struct pegpu_dma_entry *ent;	/* batch + 1 */
	struct pegpu_dma_slot *slot;	/* batch_cap */
	u32 batch_cap;			/* entries the buffer holds */
	u32 nent;			/* entries queued */
	unsigned int batch_order;
	phys_addr_t batch_phys;
	u64 seq;
	struct pegpu_dma_drv_stats drv;
	struct pegpu_dma_trace tr;
	struct mutex tr_read;		/* debugfs trace readers take turns */

	/* backpressure: maps waiting for capacity sleep here until an UNMAP */
	wait_queue_head_t bp_wq;
	u64 bp_gen;			/* under lock: bumped whenever UNMAPs were posted */
	bool dying;			/* remove has begun: stop waiting */

	struct dentry *dbg;
};

extern const struct dma_map_ops pegpu_dma_ops;

/* pegpu_dma_main.c */
struct pegpu_dma *pegpu_dma_get(struct device *dev, int *srcu_idx);
void pegpu_dma_put(int srcu_idx);
u64 pegpu_dma_counter(struct pegpu_dma *pd, enum pegpu_dma_counter c);

/* pegpu_dma_batch.c */
int pegpu_batch_init(struct pegpu_dma *pd);
void pegpu_batch_fini(struct pegpu_dma *pd);
u32 pegpu_batch_add(struct pegpu_dma *pd, u16 op, u16 flags, u64 addr, u64 len, u64 iova);
u32 pegpu_batch_submit(struct pegpu_dma *pd);
void pegpu_queue_unmap(struct pegpu_dma *pd, u64 iova, u64 len);
void pegpu_flush_unmaps(struct pegpu_dma *pd);
void pegpu_dma_release_all(struct pegpu_dma *pd);
const char *pegpu_status_name(u32 st);
int pegpu_status_errno(u32 st);
void pegpu_warn_status(struct pegpu_dma *pd, struct device *dev, u32 st,
		       const char *what, u64 len);

static inline bool pegpu_batch_full(const struct pegpu_dma *pd)
{
	return pd->nent >= pd->batch_cap;
}

/* pegpu_dma_debugfs.c */
void pegpu_dma_debugfs_init(void);
void pegpu_dma_debugfs_exit(void);
void pegpu_dma_debugfs_add(struct pegpu_dma *pd);
void pegpu_dma_debugfs_remove(struct pegpu_dma *pd);
void pegpu_dma_snapshot(struct pegpu_dma *pd, struct pegpu_dma_stats *st);

/* pegpu_dma_trace.c: recording (pd->lock held, any context, never sleeps) */
int pegpu_rec_init(struct pegpu_dma *pd, unsigned int records);
void pegpu_rec_fini(struct pegpu_dma *pd);
void pegpu_rec_map(struct pegpu_dma *pd, u8 kind, u64 id, u64 phys, u64 len, u8 dir,
		   bool failed);
void pegpu_rec_sg(struct pegpu_dma *pd, struct scatterlist *sgl, int nents, u8 dir,
		  bool failed);
void pegpu_rec_unmap(struct pegpu_dma *pd, u8 kind, u64 id, u64 len, u8 dir);
extern const struct file_operations pegpu_rec_fops;

#endif /* PEGPU_DMA_PRIV_H */
