/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pegpu_dmatest.ko: self-test of pegpu_dma through the pegpu-dmatest
 * device, which plays the GPU: it runs COPY/FILL/CSUM descriptors from a
 * coherent ring through the (emulated) DART, like a GPU running command
 * buffers.
 *
 *   pegpu_dmatest_main.c    PCI driver, device access, case bookkeeping
 *   pegpu_dmatest_cases.c   the self-test and refusal cases
 *   pegpu_dmatest_replay.c  replay of a DMA trace (replay=)
 *   pegpu_dmatest_bp.c      backpressure cases (backpressure=1)
 */
#ifndef PEGPU_DMATEST_H
#define PEGPU_DMATEST_H

#include <linux/dma-mapping.h>
#include <linux/pci.h>
#include <linux/prandom.h>

#include "pegpu_dma.h"

#define DT_RING_DESCS	1024u	/* descriptors in the ring (48 KiB) */

struct dt_ctx {
	struct pci_dev *pdev;
	struct device *dev;
	void __iomem *regs;

	/* the descriptor ring: dma_alloc_coherent through pegpu_dma */
	struct pegpu_dmatest_desc *ring;
	dma_addr_t ring_dma;
	u32 nd;				/* descriptors queued */

	/* pegpu_dma_get_stats(), by symbol_get: loading works without pegpu_dma */
	int (*get_stats)(struct device *managed, struct pegpu_dma_stats *st);
	struct rnd_state rnd;		/* fixed seed: reproducible runs */
	bool expect_refusal;

	/* whole run */
	struct pegpu_dma_stats run0;	/* at the start */
	u64 faults0;			/* pegpu-dmatest FAULTS at the start */
	u64 bytes_verified;
	int cases, failed;

	/* current case */
	const char *cname;
	struct pegpu_dma_stats case0;
	char detail[192];
	bool cfail;
};

/* pegpu_dmatest_main.c */
void dt_stats(struct dt_ctx *t, struct pegpu_dma_stats *st);
u64 dt_dev_counter(const struct pegpu_dma_stats *st, enum pegpu_dma_counter c);
void dt_case_begin(struct dt_ctx *t, const char *name);
void dt_case_end(struct dt_ctx *t);
__printf(2, 3) void dt_fail(struct dt_ctx *t, const char *fmt, ...);
__printf(2, 3) void dt_note(struct dt_ctx *t, const char *fmt, ...);
void dt_ring_reset(struct dt_ctx *t);
int dt_add(struct dt_ctx *t, u32 op, u64 src, u64 dst, u64 len, u64 arg);
int dt_run(struct dt_ctx *t);
u64 dt_result(struct dt_ctx *t, int i);
u64 dt_faults(struct dt_ctx *t);
bool dt_verify_fill(struct dt_ctx *t, const void *buf, size_t len, u8 val, const char *what);
bool dt_verify_same(struct dt_ctx *t, const void *a, const void *b, size_t len, const char *what);

/* physically contiguous buffers of any size up to a few max-order blocks */
struct dt_mem {
	void *va;
	size_t size;
	unsigned int order;		/* per block */
	unsigned int nblocks;		/* 0: kmalloc */
	struct page *blocks[4];
};
int dt_mem_alloc(struct dt_ctx *t, struct dt_mem *m, size_t size);
void dt_mem_free(struct dt_mem *m);

/* pegpu_dmatest_cases.c */
void dt_run_selftest(struct dt_ctx *t);
void dt_run_refusal(struct dt_ctx *t);
/* ... the pieces every run shares */
u64 dt_fnv(const void *buf, size_t len);
u64 dt_since(const struct pegpu_dma_stats *a, const struct pegpu_dma_stats *b,
	     enum pegpu_dma_counter c);
void dt_begin_run(struct dt_ctx *t);
bool dt_case_ring(struct dt_ctx *t);
void dt_case_faults(struct dt_ctx *t, bool refusals_ok);
void dt_case_teardown(struct dt_ctx *t);
void dt_summary(struct dt_ctx *t);

/* pegpu_dmatest_replay.c */
void dt_run_replay(struct dt_ctx *t, const char *name, unsigned int verify_every);

/* pegpu_dmatest_bp.c */
void dt_run_backpressure(struct dt_ctx *t);

#endif /* PEGPU_DMATEST_H */
