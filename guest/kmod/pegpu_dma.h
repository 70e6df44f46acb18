/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pegpu_dma.ko: what other modules may call (the self-test, later quirks).
 *
 * pegpu_dma installs its dma_map_ops on one "managed" device (the GPU) and
 * maps that device's DMA buffers through the pegpu-dma paravirtual device
 * (include/pegpu/dma_proto.h).  Other modules only read statistics.
 */
#ifndef PEGPU_DMA_KMOD_H
#define PEGPU_DMA_KMOD_H

#include <linux/types.h>

#include "pegpu/dma_proto.h"
#include "pegpu/coalesce.h"

struct device;

/* Counters kept by the driver itself (not by the device). */
struct pegpu_dma_drv_stats {
	u64 map_calls;		/* map_page/map_phys and alloc-side maps */
	u64 sg_calls;		/* map_sg */
	u64 sg_entries;		/* entries passed to map_sg */
	u64 unmap_calls;	/* unmap_page/unmap_phys, free-side unmaps, unmap_sg */
	u64 doorbells;		/* batches this driver posted */
	u64 map_failures;	/* maps that returned an error */
	u64 unmap_failures;	/* UNMAP entries the device rejected */
	u64 unknown_unmaps;	/* unmaps of dma addresses we never handed out */
	/* backpressure (wait_ms): maps refused for a DART cap that ... */
	u64 bp_waits;		/* ... waited for an unmap to free capacity */
	u64 bp_wait_ok;		/* ... waited and then succeeded */
	u64 bp_timeouts;	/* ... waited wait_ms and still failed */
	u64 bp_nowait;		/* ... failed at once: the caller could not sleep */
};

/* The device's limits and the driver's configuration. */
struct pegpu_dma_limits {
	u32 page_shift;		/* DART page = 1 << page_shift */
	u32 max_batch;		/* device: entries per batch */
	u32 batch_entries;	/* driver: entries in its batch buffer (<= max_batch) */
	u32 max_mappings;	/* device: live mappings cap */
	u64 max_mapped_bytes;	/* device: mapped bytes cap */
	u64 iova_base;		/* device: IOVA window */
	u64 iova_size;		/* 0 = unknown */
	u64 cluster_size;	/* driver: coalescing cluster, 0 = off */
	bool coherent;		/* managed device is DMA coherent */
	u32 wait_ms;		/* driver: backpressure wait, 0 = off */
	bool wait_streaming;	/* streaming maps can tell whether they may wait */
};

/* The debugfs trace ring (include/pegpu/dma_trace.h records). */
struct pegpu_dma_trace_stats {
	u64 capacity;		/* records the ring holds; 0 = not recording */
	u64 recorded;		/* events written to the ring (not counting DROPs) */
	u64 dropped;		/* events lost because the ring was full, in total */
	u64 queued;		/* records waiting to be read */
};

/**
 * struct pegpu_dma_stats - snapshot for pegpu_dma_get_stats()
 * @dev_valid: @dev holds the device's counters (PEGPU_DMA_F_COUNTERS)
 * @dev: device counters, indexed by enum pegpu_dma_counter
 * @pgc: the cluster coalescer's statistics
 * @drv: the driver's own counters
 * @lim: limits and configuration
 * @trace: the trace recorder's counters
 */
struct pegpu_dma_stats {
	bool dev_valid;
	u64 dev[PEGPU_DMA_CNT__COUNT];
	struct pgc_stats pgc;
	struct pegpu_dma_drv_stats drv;
	struct pegpu_dma_limits lim;
	struct pegpu_dma_trace_stats trace;
};

int pegpu_dma_get_stats(struct device *managed, struct pegpu_dma_stats *st);

#endif /* PEGPU_DMA_KMOD_H */
