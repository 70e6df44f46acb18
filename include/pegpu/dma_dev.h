/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * pegpu-dma device core: everything the pegpu-dma PCI device does that does
 * not need QEMU.  It decodes and validates batches (include/pegpu/dma_proto.h),
 * enforces the DART caps itself *before* calling the backend (a real DART may
 * panic the host on a request it refuses), keeps the table of live mappings
 * that UNMAPs are checked against, and keeps the counters.
 *
 * The QEMU device (machine/qemu/pegpu-dma.c) is a thin shell around it; the
 * unit tests, fuzz targets and benchmarks drive it directly with guest
 * memory in a plain buffer.  User space only; callers serialise.
 */
#ifndef PEGPU_DMA_DEV_H
#define PEGPU_DMA_DEV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "pegpu/dma_proto.h"

/* How the core reaches guest memory.  Return 0 on success, -1 if any byte
 * of the range is not guest RAM (the core then reports NOT_RAM). */
struct pegpu_dmadev_guest_ops {
	int (*read)(void *opaque, uint64_t gpa, void *buf, uint64_t len);
	int (*write)(void *opaque, uint64_t gpa, const void *buf, uint64_t len);
	/* true iff [gpa, gpa + len) is entirely guest RAM (len > 0, no wrap) */
	bool (*is_ram)(void *opaque, uint64_t gpa, uint64_t len);
};

/*
 * A DART backend.  The core only calls map() for requests that pass every
 * check and fit the caps, and only calls unmap() for a mapping it knows is
 * live with exactly that iova and length.  Both return PEGPU_ST_OK or a
 * PEGPU_ST_* status (NO_IOVA, BACKEND, ...).
 *
 *  - emu:  lib/dma_backend_emu.c, over lib/dart_emu.c (any host)
 *  - dext: machine/qemu, macOS only, over the DriverKit user client
 */
struct pegpu_dma_backend_ops {
	const char *name;
	int (*map)(void *ctx, uint64_t gpa, uint64_t len, unsigned int dir, uint64_t *iova);
	int (*unmap)(void *ctx, uint64_t iova, uint64_t len);
	/* optional: device-side translation (only emu has one) */
	int (*translate)(void *ctx, uint64_t iova, unsigned int dir, uint64_t *gpa,
			 uint64_t *contig);
	/* optional: forget everything (after unmapping each live mapping) */
	void (*reset)(void *ctx);
	/* optional: IOVA window, for the IOVA_BASE/IOVA_SIZE registers */
	void (*window)(void *ctx, uint64_t *base, uint64_t *size);
};

struct pegpu_dmadev_limits {
	uint32_t page_shift;		/* 14 */
	uint32_t max_batch;		/* entries per batch; 1..65536 */
	uint32_t max_mappings;		/* live mappings cap */
	uint64_t max_mapped_bytes;	/* mapped bytes cap */
};

/* printf-like sink for guest mistakes (QEMU: qemu_log_mask(LOG_GUEST_ERROR)) */
typedef void (*pegpu_dmadev_log_fn)(void *opaque, const char *fmt, va_list ap);

struct pegpu_dmadev;

/* NULL on invalid limits or no memory. */
struct pegpu_dmadev *pegpu_dmadev_new(const struct pegpu_dmadev_limits *lim,
				      const struct pegpu_dmadev_guest_ops *gops, void *gopaque,
				      const struct pegpu_dma_backend_ops *bops, void *bctx);
void pegpu_dmadev_free(struct pegpu_dmadev *d);
void pegpu_dmadev_set_log(struct pegpu_dmadev *d, pegpu_dmadev_log_fn fn, void *opaque);

/*
 * The doorbell: process the batch at batch_gpa, write every status back to
 * guest memory, and return the batch status (also kept for LAST_STATUS).
 * Never fails hard: any guest input yields a status.
 */
uint32_t pegpu_dmadev_doorbell(struct pegpu_dmadev *d, uint64_t batch_gpa);

/* Unmap every live mapping through the backend (device reset, CONTROL.RESET). */
void pegpu_dmadev_reset(struct pegpu_dmadev *d);

/* Device-side access for a bus master (pegpu-dmatest); counts a fault on failure. */
int pegpu_dmadev_translate(struct pegpu_dmadev *d, uint64_t iova, unsigned int dir,
			   uint64_t *gpa, uint64_t *contig);
void pegpu_dmadev_count_fault(struct pegpu_dmadev *d);

uint64_t pegpu_dmadev_counter(const struct pegpu_dmadev *d, enum pegpu_dma_counter c);
const char *pegpu_dmadev_counter_name(enum pegpu_dma_counter c);
uint32_t pegpu_dmadev_last_status(const struct pegpu_dmadev *d);
const char *pegpu_dma_status_str(uint32_t status);

/* Read-only register file (offsets of dma_proto.h), minus MANAGED_*. */
uint64_t pegpu_dmadev_reg_read(const struct pegpu_dmadev *d, uint64_t offset, unsigned size);

/* Internal consistency (table vs counters vs caps); for tests and fuzzing. */
bool pegpu_dmadev_check(const struct pegpu_dmadev *d);

/* The emu backend: bctx is a struct dart_emu *. */
extern const struct pegpu_dma_backend_ops pegpu_dma_backend_emu;

#endif /* PEGPU_DMA_DEV_H */
