/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pegpu guest modules: differences between the kernels we build for.
 *
 * Pinned ABI: Debian 6.1.0-47 (arm64, amd64); compile-checked against 6.12
 * (bookworm-backports).  Newer kernels changed the DMA ops API:
 *   6.10  dma_map_ops.alloc_pages  -> alloc_pages_op
 *   6.11  dev->dma_skip_sync, dev->dma_iommu (ops ignored for iommu-dma)
 *   6.18  map_page/unmap_page      -> map_phys/unmap_phys, and
 *         map_resource is dma_map_phys(..., DMA_ATTR_MMIO)
 *   6.8   MAX_ORDER                -> MAX_PAGE_ORDER (inclusive since 6.4)
 * Everything version-dependent is decided here, nowhere else.
 */
#ifndef PEGPU_KMOD_COMPAT_H
#define PEGPU_KMOD_COMPAT_H

#include <linux/version.h>
#include <linux/mmzone.h>
#include <linux/device.h>
#include <linux/dma-map-ops.h>

#if BITS_PER_LONG != 64
#error "pegpu needs a 64-bit kernel: its 64-bit registers take one 64-bit access"
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 18, 0)
#define PEGPU_HAVE_MAP_PHYS		1	/* map_phys/unmap_phys replace map_page */
#else
#define PEGPU_HAVE_MAP_PHYS		0
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
#define PEGPU_OPS_ALLOC_PAGES		alloc_pages_op
#else
#define PEGPU_OPS_ALLOC_PAGES		alloc_pages
#endif

/* The largest order the page allocator hands out. */
#if defined(MAX_PAGE_ORDER)
#define PEGPU_MAX_PAGE_ORDER		MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define PEGPU_MAX_PAGE_ORDER		MAX_ORDER
#else
#define PEGPU_MAX_PAGE_ORDER		(MAX_ORDER - 1)
#endif

/*
 * 6.11+: a device handled by iommu-dma ignores dev->dma_ops altogether.
 * Before that, iommu-dma installed itself as dev->dma_ops.  Either way a
 * device translated by a guest IOMMU cannot be managed.
 */
static inline bool pegpu_dev_uses_iommu(struct device *dev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0) && defined(CONFIG_IOMMU_DMA)
	if (dev->dma_iommu)
		return true;
#endif
	return device_iommu_mapped(dev);
}

/*
 * 6.11+: dev->dma_skip_sync may have been set for dma-direct by an earlier
 * dma_set_mask(); our sync ops must be called again.
 */
static inline void pegpu_reset_need_sync(struct device *dev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	dma_reset_need_sync(dev);
#endif
}

#endif /* PEGPU_KMOD_COMPAT_H */
