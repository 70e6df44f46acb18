/*
 * PEGPU Machine: pegpu-dma, the paravirtual DMA mapper (internal interface)
 *
 * What the other pegpu devices in this directory may call: the test bus
 * master (pegpu-dmatest) translates its accesses through the pegpu-dma it
 * is attached to, and host backends (emu here; dext, the macOS DriverKit
 * DART, later) plug in through PegpuDmaBackend.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_PEGPU_DMA_H
#define HW_MISC_PEGPU_DMA_H

#include "exec/memory.h"
#include "qom/object.h"
#include "pegpu/dma_dev.h"

#define TYPE_PEGPU_DMA "pegpu-dma"
#define TYPE_PEGPU_DMATEST "pegpu-dmatest"

typedef struct PegpuDmaState PegpuDmaState;
DECLARE_INSTANCE_CHECKER(PegpuDmaState, PEGPU_DMA, TYPE_PEGPU_DMA)

/* Name of pegpu-dmatest's link to the pegpu-dma it translates through. */
#define PEGPU_DMATEST_PROP_DMA "dma"

/*
 * The device core of a realized pegpu-dma, or NULL (not realized yet,
 * or unrealized).  Callers hold the BQL, which serialises the core.
 */
struct pegpu_dmadev *pegpu_dma_core(PegpuDmaState *s);

/*
 * True iff every byte of [gpa, gpa + len) is guest RAM reachable through
 * @as (a device's bus-master address space): not MMIO, ROM or another
 * device's RAM BAR.  Takes the RCU read lock itself.
 */
bool pegpu_dma_as_is_ram(AddressSpace *as, uint64_t gpa, uint64_t len);

/*
 * A host DART backend.  create() returns the backend context for the
 * device core (bctx of pegpu_dmadev_new) or NULL with errp set; it sees
 * the device's properties (limits, iova-seed) through @s.
 */
typedef struct PegpuDmaBackend {
    const char *name;
    const struct pegpu_dma_backend_ops *ops;
    void *(*create)(PegpuDmaState *s, const struct pegpu_dmadev_limits *lim,
                    uint64_t iova_seed, Error **errp);
    void (*destroy)(void *ctx);
} PegpuDmaBackend;

/*
 * Make a backend selectable with backend=<name>; one of the same name is
 * replaced (the macOS dext backend replaces the placeholder that explains
 * why dext is unavailable).  Call it from a type_init() function.
 */
void pegpu_dma_register_backend(const PegpuDmaBackend *b);

#endif /* HW_MISC_PEGPU_DMA_H */
