// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dma: PCI driver for the pegpu-dma paravirtual DMA mapper.
 *
 * Apple's DART lets an eGPU reach only ~1.5 GiB of mapped memory through
 * ~65,536 mappings at IOVAs of its own choosing, so guest RAM cannot be
 * identity-mapped for the GPU.  This driver installs dma_map_ops on the
 * GPU (the "managed device") once, at probe, that map only the live DMA
 * buffers through the pegpu-dma device (include/pegpu/dma_proto.h).
 *
 * Load order: pegpu_dma before the GPU driver.  While the managed device
 * has a driver bound, pegpu_dma holds a reference on itself so that it
 * cannot be unloaded under a live GPU driver.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/srcu.h>

#include "compat.h"
#include "pegpu_dma_priv.h"

static char *managed;
module_param(managed, charp, 0444);
MODULE_PARM_DESC(managed,
		 "managed device as DDDD:BB:DD.F (default: the device's MANAGED_BDF register)");

static ulong cluster_size = 262144;
module_param(cluster_size, ulong, 0444);
MODULE_PARM_DESC(cluster_size,
		 "coalescing cluster in bytes: 0 = off, else a power of two >= the DART page (default 262144)");

static bool precheck = true;
module_param(precheck, bool, 0444);
MODULE_PARM_DESC(precheck,
		 "check the DART caps in the guest before asking the device (default Y; N leaves every refusal to the device, for testing)");

static uint trace_records = 65536;
module_param(trace_records, uint, 0444);
MODULE_PARM_DESC(trace_records,
		 "records in the debugfs trace ring, rounded down to a power of two (default 65536, 2 MiB; 0 = do not record)");

unsigned int pegpu_wait_ms;
module_param_named(wait_ms, pegpu_wait_ms, uint, 0644);
MODULE_PARM_DESC(wait_ms,
		 "backpressure: a map refused for a DART cap waits up to this many ms (at most 60000) for an unmap to free capacity, where the caller may sleep (default 0 = fail at once)");

/* Largest cluster: offsets inside one are stashed in 32 bits by map_sg. */
#define PEGPU_CLUSTER_MAX	SZ_1G

static LIST_HEAD(pegpu_dma_list);
static DEFINE_MUTEX(pegpu_dma_list_lock);
DEFINE_STATIC_SRCU(pegpu_dma_srcu);

/**
 * pegpu_dma_get() - find the instance managing @dev and pin it
 * @dev: a device whose dma_map_ops are ours
 * @srcu_idx: filled for pegpu_dma_put()
 *
 * Context: any; does not sleep.
 * Return: the instance (call pegpu_dma_put() when done), or NULL.
 */
struct pegpu_dma *pegpu_dma_get(struct device *dev, int *srcu_idx)
{
	struct pegpu_dma *pd;

	*srcu_idx = srcu_read_lock(&pegpu_dma_srcu);
	list_for_each_entry_srcu(pd, &pegpu_dma_list, node, srcu_read_lock_held(&pegpu_dma_srcu))
		if (&pd->mdev->dev == dev)
			return pd;
	srcu_read_unlock(&pegpu_dma_srcu, *srcu_idx);
	return NULL;
}

void pegpu_dma_put(int srcu_idx)
{
	srcu_read_unlock(&pegpu_dma_srcu, srcu_idx);
}

/**
 * pegpu_dma_counter() - read one device counter
 * @pd: the instance
 * @c: which
 *
 * Return: the counter, or 0 if the device has no counter block.
 */
u64 pegpu_dma_counter(struct pegpu_dma *pd, enum pegpu_dma_counter c)
{
	if (!(pd->features & PEGPU_DMA_F_COUNTERS) || c >= PEGPU_DMA_CNT__COUNT)
		return 0;
	return readq(pd->regs + PEGPU_DMA_REG_COUNTERS + 8 * c);
}

/**
 * pegpu_dma_snapshot() - device counters, coalescer and driver statistics
 * @pd: the instance
 * @st: filled
 */
void pegpu_dma_snapshot(struct pegpu_dma *pd, struct pegpu_dma_stats *st)
{
	unsigned long flags;
	int i;

	memset(st, 0, sizeof(*st));
	st->dev_valid = pd->features & PEGPU_DMA_F_COUNTERS;
	for (i = 0; i < PEGPU_DMA_CNT__COUNT; i++)
		st->dev[i] = pegpu_dma_counter(pd, i);
	spin_lock_irqsave(&pd->lock, flags);
	st->pgc = pd->pgc.st;
	st->drv = pd->drv;
	if (pd->tr.rec) {
		st->trace.capacity = (u64)pd->tr.mask + 1;
		st->trace.recorded = pd->tr.recorded;
		st->trace.dropped = pd->tr.dropped;
		st->trace.queued = pd->tr.head - pd->tr.tail;
	}
	spin_unlock_irqrestore(&pd->lock, flags);
	st->lim.page_shift = pd->page_shift;
	st->lim.max_batch = pd->max_batch;
	st->lim.batch_entries = pd->batch_cap;
	st->lim.max_mappings = pd->max_mappings;
	st->lim.max_mapped_bytes = pd->max_mapped;
	st->lim.iova_base = pd->iova_base;
	st->lim.iova_size = pd->iova_size;
	st->lim.cluster_size = pd->cluster_size;
	st->lim.coherent = dev_is_dma_coherent(&pd->mdev->dev);
	st->lim.wait_ms = READ_ONCE(pegpu_wait_ms);
	st->lim.wait_streaming = IS_ENABLED(CONFIG_PREEMPT_COUNT);
}

/**
 * pegpu_dma_get_stats() - statistics of the pegpu-dma instance managing a device
 * @managed: the managed device (e.g. &pdev->dev of the GPU)
 * @st: filled with the device's counters, the coalescer's and the driver's
 *	statistics, and the limits in force
 *
 * Context: any; does not sleep.
 * Return: 0, or -ENODEV if no pegpu-dma instance manages @managed.
 */
int pegpu_dma_get_stats(struct device *managed, struct pegpu_dma_stats *st)
{
	struct pegpu_dma *pd;
	int idx;

	pd = pegpu_dma_get(managed, &idx);
	if (!pd)
		return -ENODEV;
	pegpu_dma_snapshot(pd, st);
	pegpu_dma_put(idx);
	return 0;
}
EXPORT_SYMBOL_GPL(pegpu_dma_get_stats);

/* Coalescer callback: a whole cluster may be mapped only if it is all RAM. */
static bool pegpu_cluster_ok(void *ctx, u64 base, u64 size)
{
	return region_intersects(base, size, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE) ==
	       REGION_INTERSECTS;
}

static int pegpu_dma_read_limits(struct pegpu_dma *pd)
{
	struct device *dev = &pd->pdev->dev;
	u32 magic, major;

	magic = readl(pd->regs + PEGPU_DMA_REG_MAGIC);
	if (magic != PEGPU_DMA_MAGIC) {
		dev_err(dev, "not a pegpu-dma device: magic %#x, expected %#x\n", magic,
			PEGPU_DMA_MAGIC);
		return -ENODEV;
	}
	pd->version = readl(pd->regs + PEGPU_DMA_REG_VERSION);
	major = pd->version >> 16;
	if (major != PEGPU_DMA_VERSION_MAJOR) {
		dev_err(dev, "pegpu-dma protocol %u.%u, this driver speaks %u.x: update %s\n",
			major, pd->version & 0xffff, PEGPU_DMA_VERSION_MAJOR,
			major > PEGPU_DMA_VERSION_MAJOR ? "pegpu_dma.ko" : "the PEGPU Machine");
		return -ENODEV;
	}
	pd->features = readl(pd->regs + PEGPU_DMA_REG_FEATURES);
	pd->page_shift = readl(pd->regs + PEGPU_DMA_REG_PAGE_SHIFT);
	pd->max_batch = readl(pd->regs + PEGPU_DMA_REG_MAX_BATCH);
	pd->max_mappings = readl(pd->regs + PEGPU_DMA_REG_MAX_MAPPINGS);
	pd->max_mapped = readq(pd->regs + PEGPU_DMA_REG_MAX_MAPPED);
	pd->iova_base = readq(pd->regs + PEGPU_DMA_REG_IOVA_BASE);
	pd->iova_size = readq(pd->regs + PEGPU_DMA_REG_IOVA_SIZE);

	if (pd->page_shift < 12 || pd->page_shift > 30 || !pd->max_batch ||
	    !pd->max_mappings || pd->max_mapped < (1ull << pd->page_shift) ||
	    (pd->iova_size && pd->iova_size - 1 > U64_MAX - pd->iova_base)) {
		dev_err(dev, "unusable limits: page shift %u, batch %u, %u mappings, %llu bytes, IOVA %#llx+%#llx\n",
			pd->page_shift, pd->max_batch, pd->max_mappings, pd->max_mapped,
			pd->iova_base, pd->iova_size);
		return -ENODEV;
	}
	if (pd->iova_size) {
		pd->iova_last = pd->iova_base + pd->iova_size - 1;
	} else {
		/* Unknown window: every mapping is checked against the DMA mask anyway. */
		pd->iova_last = DMA_BIT_MASK(32);
		dev_info(dev, "IOVA window not advertised: assuming 32-bit IOVAs\n");
	}

	pd->cluster_size = cluster_size;
	if (cluster_size && (!is_power_of_2(cluster_size) ||
			     cluster_size < (1ull << pd->page_shift) ||
			     cluster_size > PEGPU_CLUSTER_MAX || cluster_size > pd->max_mapped)) {
		dev_err(dev, "cluster_size=%lu is invalid: use 0 (off) or a power of two from the DART page (%u bytes) to %llu bytes\n",
			cluster_size, 1u << pd->page_shift,
			min_t(u64, PEGPU_CLUSTER_MAX, rounddown_pow_of_two(pd->max_mapped)));
		return -EINVAL;
	}
	return 0;
}

static int pegpu_dma_init_coalescer(struct pegpu_dma *pd)
{
	struct pgc_config cfg = {
		.cluster_size = pd->cluster_size,
		.page_shift = pd->page_shift,
		.max_records = pd->max_mappings,
		.max_pages = pd->max_mapped >> pd->page_shift,
		.cluster_ok = pegpu_cluster_ok,
		.ctx = pd,
	};
	size_t size;

	/* Without the guest-side check the device alone refuses (it always checks). */
	if (!precheck) {
		cfg.max_records = clamp_t(u64, 2ull * pd->max_mappings, 65536, 1u << 30);
		cfg.max_pages = clamp_t(u64, 2 * cfg.max_pages, 1ull << 17, 1ull << 31);
	}
	size = pgc_mem_size(&cfg);
	if (!size) {
		dev_err(&pd->pdev->dev, "coalescer rejects the configuration (%u mappings, %llu pages, cluster %llu)\n",
			cfg.max_records, cfg.max_pages, cfg.cluster_size);
		return -EINVAL;
	}
	pd->pgc_mem = kvzalloc(size + 15, GFP_KERNEL);
	if (!pd->pgc_mem)
		return -ENOMEM;
	if (pgc_init(&pd->pgc, &cfg, PTR_ALIGN(pd->pgc_mem, 16))) {
		kvfree(pd->pgc_mem);
		pd->pgc_mem = NULL;
		return -EINVAL;
	}
	return 0;
}

/* The managed device: module parameter, else the device's own register. */
static int pegpu_dma_find_managed(struct pegpu_dma *pd)
{
	struct device *dev = &pd->pdev->dev;
	unsigned int dom = 0, bus, slot, fn;
	u32 bdf;

	if (managed && *managed) {
		if (sscanf(managed, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4) {
			dom = 0;
			if (sscanf(managed, "%x:%x.%x", &bus, &slot, &fn) != 3) {
				dev_err(dev, "managed=%s: expected DDDD:BB:DD.F\n", managed);
				return -EINVAL;
			}
		}
		if (bus > 0xff || slot > 0x1f || fn > 7) {
			dev_err(dev, "managed=%s: not a PCI address\n", managed);
			return -EINVAL;
		}
		bdf = dom << 16 | bus << 8 | PCI_DEVFN(slot, fn);
	} else {
		if (readl(pd->regs + PEGPU_DMA_REG_MANAGED_VALID) != 1) {
			dev_err(dev, "no managed device: the device names none (QEMU: -device pegpu-dma,managed=<id>) and managed= is not set\n");
			return -ENODEV;
		}
		bdf = readl(pd->regs + PEGPU_DMA_REG_MANAGED_BDF);
	}

	pd->mdev = pci_get_domain_bus_and_slot(bdf >> 16, (bdf >> 8) & 0xff, bdf & 0xff);
	if (!pd->mdev) {
		dev_err(dev, "managed device %04x:%02x:%02x.%x not found\n", bdf >> 16,
			(bdf >> 8) & 0xff, PCI_SLOT(bdf & 0xff), PCI_FUNC(bdf & 0xff));
		return -ENODEV;
	}
	if (pd->mdev == pd->pdev) {
		dev_err(dev, "refusing to manage itself\n");
		goto err_put;
	}
	if (pegpu_dev_uses_iommu(&pd->mdev->dev)) {
		dev_err(dev, "%s is translated by a guest IOMMU: pegpu_dma cannot manage it (remove the vIOMMU)\n",
			pci_name(pd->mdev));
		goto err_put;
	}
	return 0;

err_put:
	pci_dev_put(pd->mdev);
	pd->mdev = NULL;
	return -EINVAL;
}

/*
 * (Re)install our ops.  Called at probe and whenever the driver core may
 * have reset them: arm64 clears dev->dma_ops on unbind
 * (arch_teardown_dma_ops) and dma_configure may set them at bind.
 */
static void pegpu_dma_install_ops(struct pegpu_dma *pd, bool again)
{
	struct device *dev = &pd->mdev->dev;

	if (dev->dma_ops == &pegpu_dma_ops)
		return;
	if (dev->dma_ops && dev->dma_ops != pd->orig_ops)
		dev_warn(&pd->pdev->dev, "%s: replacing dma_ops %ps set by the kernel\n",
			 pci_name(pd->mdev), dev->dma_ops);
	else if (again)
		dev_info(&pd->pdev->dev, "%s: dma_ops were reset by the driver core; reinstalled\n",
			 pci_name(pd->mdev));
	set_dma_ops(dev, &pegpu_dma_ops);
	pegpu_reset_need_sync(dev);
}

static int pegpu_dma_bus_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct pegpu_dma *pd = container_of(nb, struct pegpu_dma, nb);
	struct device *dev = data;

	if (dev != &pd->mdev->dev)
		return NOTIFY_DONE;

	/* BIND/UNBOUND/NOT_BOUND run under the managed device's lock. */
	switch (action) {
	case BUS_NOTIFY_BIND_DRIVER:
		/* After dma_configure: the device's coherency is known now. */
		pegpu_dma_install_ops(pd, true);
		if (!dev_is_dma_coherent(dev) && dev_is_dma_coherent(&pd->pdev->dev))
			dev_warn(&pd->pdev->dev, "%s is not DMA coherent but pegpu-dma is: no cache maintenance will be done for it\n",
				 pci_name(pd->mdev));
		if (!pd->managed_bound) {
			__module_get(THIS_MODULE);
			pd->managed_bound = true;
		}
		break;
	case BUS_NOTIFY_UNBOUND_DRIVER:
	case BUS_NOTIFY_DRIVER_NOT_BOUND:
		if (pd->managed_bound) {
			pd->managed_bound = false;
			module_put(THIS_MODULE);
		}
		pegpu_dma_install_ops(pd, true);
		break;
	case BUS_NOTIFY_DEL_DEVICE:
		dev_warn(&pd->pdev->dev, "managed device %s is going away\n", pci_name(pd->mdev));
		break;
	}
	return NOTIFY_OK;
}

static void pegpu_dma_list_del(struct pegpu_dma *pd)
{
	mutex_lock(&pegpu_dma_list_lock);
	list_del_rcu(&pd->node);
	mutex_unlock(&pegpu_dma_list_lock);
	synchronize_srcu(&pegpu_dma_srcu);
}

static void pegpu_dma_free(struct pegpu_dma *pd)
{
	pegpu_rec_fini(pd);
	pegpu_batch_fini(pd);
	kvfree(pd->pgc_mem);
	if (pd->mdev)
		pci_dev_put(pd->mdev);
	kfree(pd);
}

static int pegpu_dma_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct pegpu_dma *pd;
	struct device *mdev;
	int ret;

	pd = kzalloc(sizeof(*pd), GFP_KERNEL);
	if (!pd)
		return -ENOMEM;
	pd->pdev = pdev;
	spin_lock_init(&pd->lock);
	init_waitqueue_head(&pd->bp_wq);
	mutex_init(&pd->tr_read);
	INIT_LIST_HEAD(&pd->node);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	pci_set_master(pdev);
	ret = pci_request_region(pdev, PEGPU_DMA_BAR, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	pd->regs = pci_iomap(pdev, PEGPU_DMA_BAR, PEGPU_DMA_BAR_SIZE);
	if (!pd->regs) {
		ret = -ENOMEM;
		goto err_release;
	}
	ret = pegpu_dma_read_limits(pd);
	if (ret)
		goto err_unmap;
	/* Our allocations on behalf of the managed device may come from anywhere. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_unmap;
	/* pegpu_dma_free() releases the batch, the coalescer and mdev. */
	ret = pegpu_batch_init(pd);
	if (ret)
		goto err_unmap;
	ret = pegpu_dma_init_coalescer(pd);
	if (ret)
		goto err_unmap;
	ret = pegpu_rec_init(pd, trace_records);
	if (ret)
		goto err_unmap;
	ret = pegpu_dma_find_managed(pd);
	if (ret)
		goto err_unmap;
	mdev = &pd->mdev->dev;

	pci_set_drvdata(pdev, pd);
	mutex_lock(&pegpu_dma_list_lock);
	list_add_tail_rcu(&pd->node, &pegpu_dma_list);
	mutex_unlock(&pegpu_dma_list_lock);

	pd->nb.notifier_call = pegpu_dma_bus_notify;
	ret = bus_register_notifier(&pci_bus_type, &pd->nb);
	if (ret)
		goto err_list;

	device_lock(mdev);
	if (mdev->driver) {
		dev_err(dev, "%s already has driver %s bound: its existing DMA mappings would be lost; load pegpu_dma before the GPU driver\n",
			pci_name(pd->mdev), mdev->driver->name);
		device_unlock(mdev);
		ret = -EBUSY;
		goto err_notifier;
	}
	/* Start from an empty device: mappings left by an earlier instance go. */
	if (pd->features & PEGPU_DMA_F_RESET)
		writel(PEGPU_DMA_CTRL_RESET, pd->regs + PEGPU_DMA_REG_CONTROL);
	pd->orig_ops = mdev->dma_ops;
	pegpu_dma_install_ops(pd, false);
	device_unlock(mdev);

	pegpu_dma_debugfs_add(pd);
	dev_info(dev, "managing %s: protocol %u.%u, DART page %u KiB, caps %llu MiB / %u mappings, batch %u (device %u), cluster %llu KiB%s, IOVA %#llx-%#llx\n",
		 pci_name(pd->mdev), pd->version >> 16, pd->version & 0xffff,
		 (1u << pd->page_shift) >> 10, pd->max_mapped >> 20, pd->max_mappings,
		 pd->batch_cap, pd->max_batch, pd->cluster_size >> 10,
		 pd->cluster_size ? "" : " (coalescing off)", pd->iova_base, pd->iova_last);
	if (!precheck)
		dev_info(dev, "precheck=N: the device alone enforces the DART caps\n");
	if (pd->tr.rec)
		dev_info(dev, "recording DMA events: debugfs trace, %u records\n", pd->tr.mask + 1);
	return 0;

err_notifier:
	bus_unregister_notifier(&pci_bus_type, &pd->nb);
err_list:
	pegpu_dma_list_del(pd);
	pci_set_drvdata(pdev, NULL);
err_unmap:
	pci_iounmap(pdev, pd->regs);
err_release:
	pci_release_region(pdev, PEGPU_DMA_BAR);
err_disable:
	pci_clear_master(pdev);
	pci_disable_device(pdev);
err_free:
	pegpu_dma_free(pd);
	return ret;
}

static void pegpu_dma_remove(struct pci_dev *pdev)
{
	struct pegpu_dma *pd = pci_get_drvdata(pdev);
	struct device *mdev = &pd->mdev->dev;

	pegpu_dma_debugfs_remove(pd);
	bus_unregister_notifier(&pci_bus_type, &pd->nb);

	device_lock(mdev);
	if (mdev->dma_ops == &pegpu_dma_ops)
		set_dma_ops(mdev, pd->orig_ops);
	if (pd->managed_bound) {
		/* Only a hot-unplug of pegpu-dma gets here: the module is pinned otherwise. */
		dev_crit(&pdev->dev, "removed while %s has driver %s bound: its DMA mappings are gone; rebind that driver\n",
			 pci_name(pd->mdev), mdev->driver ? mdev->driver->name : "?");
		pd->managed_bound = false;
		module_put(THIS_MODULE);
	}
	device_unlock(mdev);

	/* Maps waiting for capacity give up now rather than hold up the SRCU wait. */
	WRITE_ONCE(pd->dying, true);
	wake_up_all(&pd->bp_wq);

	/* No new callers can find pd; wait for those still inside our ops. */
	pegpu_dma_list_del(pd);
	pegpu_dma_release_all(pd);

	pci_iounmap(pdev, pd->regs);
	pci_release_region(pdev, PEGPU_DMA_BAR);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	pegpu_dma_free(pd);
}

static const struct pci_device_id pegpu_dma_ids[] = {
	{ PCI_DEVICE(PEGPU_PCI_VENDOR_ID, PEGPU_DMA_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, pegpu_dma_ids);

static struct pci_driver pegpu_dma_driver = {
	.name		= KBUILD_MODNAME,
	.id_table	= pegpu_dma_ids,
	.probe		= pegpu_dma_probe,
	.remove		= pegpu_dma_remove,
	/* Unbinding under a live GPU driver would pull its mappings away. */
	.driver.suppress_bind_attrs = true,
};

static int __init pegpu_dma_init(void)
{
	int ret;

	if (cluster_size && !is_power_of_2(cluster_size)) {
		pr_err("cluster_size=%lu is not a power of two (use 0 to turn coalescing off)\n",
		       cluster_size);
		return -EINVAL;
	}
	pegpu_dma_debugfs_init();
	ret = pci_register_driver(&pegpu_dma_driver);
	if (ret)
		pegpu_dma_debugfs_exit();
	return ret;
}

static void __exit pegpu_dma_exit(void)
{
	pci_unregister_driver(&pegpu_dma_driver);
	pegpu_dma_debugfs_exit();
}

module_init(pegpu_dma_init);
module_exit(pegpu_dma_exit);

MODULE_DESCRIPTION("pegpu: DMA mapping through the pegpu-dma paravirtual DART mapper");
MODULE_AUTHOR("pegpu");
MODULE_LICENSE("GPL");
