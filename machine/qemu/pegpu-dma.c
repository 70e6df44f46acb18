/*
 * PEGPU Machine: pegpu-dma, the paravirtual DMA mapper
 *
 * The guest posts batches of MAP/UNMAP entries in guest RAM and writes
 * the batch's address to the DOORBELL register; the whole batch is
 * processed inside that MMIO write.  Registers and batch format:
 * include/pegpu/dma_proto.h.  Decoding, validation, the DART caps, the
 * table of live mappings and the counters live in pegpu's device core
 * (lib/dma_dev.c); this file is the QEMU shell around it: guest memory
 * access, MMIO, properties, reset, and the host DART backend.
 *
 * Backends: "emu" (lib/dart_emu.c, any host) is built in; "dext" (Apple's
 * DART through the pegpu DriverKit driver, macOS only) registers itself
 * through pegpu_dma_register_backend() once it exists.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "exec/memory.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-properties.h"
#include "migration/blocker.h"
#include "migration/vmstate.h"
#include "qom/object.h"

#include "pegpu-dma.h"
#include "pegpu/dart_emu.h"
#include "pegpu/dma_proto.h"

#define PEGPU_DMA_DEFAULT_MAX_BATCH     1024
#define PEGPU_DMA_MAX_MAX_BATCH         65536
#define PEGPU_DMA_MAX_MAX_MAPPINGS      (1u << 20)

struct PegpuDmaState {
    PCIDevice pdev;
    MemoryRegion mmio;

    /* properties */
    char *backend_name;
    PCIDevice *managed;
    uint64_t max_mapped_bytes;
    uint32_t max_mappings;
    uint32_t max_batch;
    uint64_t iova_seed;

    const PegpuDmaBackend *backend;
    void *backend_ctx;
    struct pegpu_dmadev *core;
    Error *migration_blocker;
};

static const char *const pegpu_dma_counter_names[PEGPU_DMA_CNT__COUNT] =
    PEGPU_DMA_COUNTER_NAMES_INIT;

/* ------------------------------------------------------------------ */
/* Backends                                                            */
/* ------------------------------------------------------------------ */

static void *pegpu_dma_emu_create(PegpuDmaState *s,
                                  const struct pegpu_dmadev_limits *lim,
                                  uint64_t iova_seed, Error **errp)
{
    struct dart_emu_config cfg = {
        .page_shift = lim->page_shift,
        .max_mapped_bytes = lim->max_mapped_bytes,
        .max_mappings = lim->max_mappings,
        .seed = iova_seed,
    };
    struct dart_emu *dart = dart_emu_new(&cfg);

    if (!dart) {
        error_setg(errp, "pegpu-dma: the DART emulator refused its "
                   "configuration (max-mapped-bytes=%" PRIu64
                   ", max-mappings=%" PRIu32 ")",
                   lim->max_mapped_bytes, lim->max_mappings);
    }
    return dart;
}

static void pegpu_dma_emu_destroy(void *ctx)
{
    dart_emu_free(ctx);
}

static void *pegpu_dma_dext_unavailable(PegpuDmaState *s,
                                        const struct pegpu_dmadev_limits *lim,
                                        uint64_t iova_seed, Error **errp)
{
#ifdef CONFIG_DARWIN
    error_setg(errp, "pegpu-dma: backend=dext is not built into this QEMU "
               "yet (the DriverKit DART backend is still to come); use "
               "backend=emu");
#else
    error_setg(errp, "pegpu-dma: backend=dext drives Apple's DART through "
               "the pegpu DriverKit driver and exists only on macOS; use "
               "backend=emu (the DART emulator) on this host");
#endif
    return NULL;
}

#define PEGPU_DMA_MAX_BACKENDS 4

static PegpuDmaBackend pegpu_dma_backends[PEGPU_DMA_MAX_BACKENDS] = {
    {
        .name = "emu",
        .ops = &pegpu_dma_backend_emu,
        .create = pegpu_dma_emu_create,
        .destroy = pegpu_dma_emu_destroy,
    },
    {
        .name = "dext",
        .create = pegpu_dma_dext_unavailable,
    },
};

void pegpu_dma_register_backend(const PegpuDmaBackend *b)
{
    int i;

    for (i = 0; i < PEGPU_DMA_MAX_BACKENDS; i++) {
        if (!pegpu_dma_backends[i].name ||
            !strcmp(pegpu_dma_backends[i].name, b->name)) {
            pegpu_dma_backends[i] = *b;
            return;
        }
    }
    /* a programming error, found the first time such a QEMU starts */
    g_assert_not_reached();
}

static const PegpuDmaBackend *pegpu_dma_find_backend(const char *name)
{
    int i;

    for (i = 0; i < PEGPU_DMA_MAX_BACKENDS; i++) {
        if (pegpu_dma_backends[i].name &&
            !strcmp(pegpu_dma_backends[i].name, name)) {
            return &pegpu_dma_backends[i];
        }
    }
    return NULL;
}

static char *pegpu_dma_backend_list(void)
{
    GString *str = g_string_new(NULL);
    int i;

    for (i = 0; i < PEGPU_DMA_MAX_BACKENDS; i++) {
        if (pegpu_dma_backends[i].name) {
            g_string_append_printf(str, "%s%s", str->len ? ", " : "",
                                   pegpu_dma_backends[i].name);
        }
    }
    return g_string_free(str, false);
}

/* ------------------------------------------------------------------ */
/* Guest memory, as the device core sees it                            */
/* ------------------------------------------------------------------ */

/*
 * True iff every byte of [gpa, gpa + len) is guest RAM that the device
 * may read and write through its bus-master address space: not MMIO (no
 * DMA into device registers, our own included), not ROM, not a RAM device
 * (another device's BAR).  With bus mastering disabled nothing is RAM.
 */
bool pegpu_dma_as_is_ram(AddressSpace *as, uint64_t gpa, uint64_t len)
{
    if (len == 0 || gpa + len < gpa) {
        return false;
    }

    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr = address_space_translate(as, gpa, &xlat, &l, false,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (!memory_region_is_ram(mr) || memory_region_is_rom(mr) ||
            memory_region_is_ram_device(mr) || l == 0) {
            return false;
        }
        l = MIN(l, len);
        gpa += l;
        len -= l;
    }
    return true;
}

static bool pegpu_dma_guest_is_ram(void *opaque, uint64_t gpa, uint64_t len)
{
    PegpuDmaState *s = opaque;

    return pegpu_dma_as_is_ram(pci_get_address_space(&s->pdev), gpa, len);
}

static int pegpu_dma_guest_read(void *opaque, uint64_t gpa, void *buf,
                                uint64_t len)
{
    PegpuDmaState *s = opaque;
    AddressSpace *as = pci_get_address_space(&s->pdev);

    if (!pegpu_dma_as_is_ram(as, gpa, len)) {
        return -1;
    }
    return address_space_read(as, gpa, MEMTXATTRS_UNSPECIFIED, buf, len)
           == MEMTX_OK ? 0 : -1;
}

static int pegpu_dma_guest_write(void *opaque, uint64_t gpa, const void *buf,
                                 uint64_t len)
{
    PegpuDmaState *s = opaque;
    AddressSpace *as = pci_get_address_space(&s->pdev);

    if (!pegpu_dma_as_is_ram(as, gpa, len)) {
        return -1;
    }
    return address_space_write(as, gpa, MEMTXATTRS_UNSPECIFIED, buf, len)
           == MEMTX_OK ? 0 : -1;
}

static const struct pegpu_dmadev_guest_ops pegpu_dma_guest_ops = {
    .read = pegpu_dma_guest_read,
    .write = pegpu_dma_guest_write,
    .is_ram = pegpu_dma_guest_is_ram,
};

static void G_GNUC_PRINTF(2, 0) pegpu_dma_core_log(void *opaque,
                                                   const char *fmt, va_list ap)
{
    PegpuDmaState *s = opaque;
    g_autofree char *msg = NULL;
    const char *m;

    if (!qemu_loglevel_mask(LOG_GUEST_ERROR)) {
        return;
    }
    msg = g_strdup_vprintf(fmt, ap);
    m = g_str_has_prefix(msg, TYPE_PEGPU_DMA ": ") ?
        msg + strlen(TYPE_PEGPU_DMA ": ") : msg;
    qemu_log_mask(LOG_GUEST_ERROR, "%s%s%s: %s%s", TYPE_PEGPU_DMA,
                  s->pdev.qdev.id ? " " : "",
                  s->pdev.qdev.id ? s->pdev.qdev.id : "",
                  m, g_str_has_suffix(m, "\n") ? "" : "\n");
}

struct pegpu_dmadev *pegpu_dma_core(PegpuDmaState *s)
{
    return s->core;
}

/* ------------------------------------------------------------------ */
/* Registers                                                           */
/* ------------------------------------------------------------------ */

static uint32_t pegpu_dma_managed_bdf(PegpuDmaState *s)
{
    if (!s->managed) {
        return 0;
    }
    /* domain 0: QEMU's PCI buses here are all in segment 0 */
    return (pci_dev_bus_num(s->managed) << 8) | s->managed->devfn;
}

static uint64_t pegpu_dma_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    PegpuDmaState *s = opaque;
    uint64_t valid = s->managed != NULL;

    switch (addr) {
    case PEGPU_DMA_REG_MANAGED_BDF:
        return pegpu_dma_managed_bdf(s) | (size == 8 ? valid << 32 : 0);
    case PEGPU_DMA_REG_MANAGED_VALID:
        return valid;
    default:
        return pegpu_dmadev_reg_read(s->core, addr, size);
    }
}

static const char *pegpu_dma_reg_name(hwaddr addr)
{
    switch (addr & ~7ULL) {
    case PEGPU_DMA_REG_MAGIC:
        return "MAGIC/VERSION";
    case PEGPU_DMA_REG_FEATURES:
        return "FEATURES/PAGE_SHIFT";
    case PEGPU_DMA_REG_MAX_BATCH:
        return "MAX_BATCH/MAX_MAPPINGS";
    case PEGPU_DMA_REG_MAX_MAPPED:
        return "MAX_MAPPED";
    case PEGPU_DMA_REG_IOVA_BASE:
        return "IOVA_BASE";
    case PEGPU_DMA_REG_IOVA_SIZE:
        return "IOVA_SIZE";
    case PEGPU_DMA_REG_MANAGED_BDF:
        return "MANAGED_BDF/MANAGED_VALID";
    case PEGPU_DMA_REG_CONTROL:
        return "CONTROL/LAST_STATUS";
    case PEGPU_DMA_REG_DOORBELL:
        return "DOORBELL";
    default:
        return addr >= PEGPU_DMA_REG_COUNTERS ? "COUNTERS" : "reserved";
    }
}

static void pegpu_dma_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                                 unsigned size)
{
    PegpuDmaState *s = opaque;

    if (addr == PEGPU_DMA_REG_DOORBELL && size == 8) {
        pegpu_dmadev_doorbell(s->core, val);
        return;
    }
    if (addr == PEGPU_DMA_REG_CONTROL && size == 4) {
        uint64_t unknown = val & ~(uint64_t)PEGPU_DMA_CTRL_RESET;

        if (unknown) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "%s: CONTROL: unknown bits 0x%" PRIx64 " ignored\n",
                          TYPE_PEGPU_DMA, unknown);
        }
        if (val & PEGPU_DMA_CTRL_RESET) {
            pegpu_dmadev_reset(s->core);
        }
        return;
    }
    if (addr == PEGPU_DMA_REG_DOORBELL ||
        addr == PEGPU_DMA_REG_DOORBELL + 4) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: %u-byte write to DOORBELL+0x%x ignored: the "
                      "doorbell takes one 64-bit store\n", TYPE_PEGPU_DMA,
                      size, (unsigned)(addr - PEGPU_DMA_REG_DOORBELL));
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR,
                  "%s: %u-byte write of 0x%" PRIx64 " to read-only or "
                  "reserved register 0x%03" HWADDR_PRIx " (%s) ignored\n",
                  TYPE_PEGPU_DMA, size, val, addr, pegpu_dma_reg_name(addr));
}

static const MemoryRegionOps pegpu_dma_mmio_ops = {
    .read = pegpu_dma_mmio_read,
    .write = pegpu_dma_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
};

/* ------------------------------------------------------------------ */
/* Host-readable counters: one read-only QOM property per counter      */
/* ------------------------------------------------------------------ */

static void pegpu_dma_get_counter(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    PegpuDmaState *s = PEGPU_DMA(obj);
    uint64_t value = 0;

    if (s->core) {
        value = pegpu_dmadev_counter(s->core,
                                     (enum pegpu_dma_counter)(uintptr_t)opaque);
    }
    visit_type_uint64(v, name, &value, errp);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

static bool pegpu_dma_check_props(PegpuDmaState *s, Error **errp)
{
    uint64_t page = 1ULL << DART_EMU_PAGE_SHIFT;

    if (s->max_batch < 1 || s->max_batch > PEGPU_DMA_MAX_MAX_BATCH) {
        error_setg(errp, "pegpu-dma: max-batch=%" PRIu32 " is out of range",
                   s->max_batch);
        error_append_hint(errp, "Use 1..%d entries per batch (default %d).\n",
                          PEGPU_DMA_MAX_MAX_BATCH,
                          PEGPU_DMA_DEFAULT_MAX_BATCH);
        return false;
    }
    if (s->max_mappings < 1 || s->max_mappings > PEGPU_DMA_MAX_MAX_MAPPINGS) {
        error_setg(errp, "pegpu-dma: max-mappings=%" PRIu32 " is out of "
                   "range", s->max_mappings);
        error_append_hint(errp, "Use 1..%u; Apple's DART allows about %u "
                          "live mappings (the default).\n",
                          PEGPU_DMA_MAX_MAX_MAPPINGS,
                          DART_EMU_DEFAULT_MAX_MAPPINGS);
        return false;
    }
    if (s->max_mapped_bytes < page || s->max_mapped_bytes % page) {
        error_setg(errp, "pegpu-dma: max-mapped-bytes=%" PRIu64 " must be a "
                   "non-zero multiple of the %" PRIu64 "-byte DART page",
                   s->max_mapped_bytes, page);
        error_append_hint(errp, "Apple's DART maps about 1.5 GiB at once "
                          "(the default, 1536M).\n");
        return false;
    }
    return true;
}

static void pegpu_dma_realize(PCIDevice *pdev, Error **errp)
{
    PegpuDmaState *s = PEGPU_DMA(pdev);
    struct pegpu_dmadev_limits lim;
    const char *bname = s->backend_name ? s->backend_name : "emu";
    const PegpuDmaBackend *b;

    if (!pegpu_dma_check_props(s, errp)) {
        return;
    }
    b = pegpu_dma_find_backend(bname);
    if (!b) {
        g_autofree char *list = pegpu_dma_backend_list();

        error_setg(errp, "pegpu-dma: unknown backend '%s'", bname);
        error_append_hint(errp, "Backends: %s.\n", list);
        return;
    }
    if (s->managed == pdev) {
        error_setg(errp, "pegpu-dma: managed= names this pegpu-dma itself");
        error_append_hint(errp, "managed= names the device whose DMA goes "
                          "through this DART, e.g. -device pegpu-dmatest,"
                          "id=gpu0 -device pegpu-dma,managed=gpu0\n");
        return;
    }
    if (s->managed && object_dynamic_cast(OBJECT(s->managed),
                                          TYPE_PEGPU_DMATEST)) {
        Object *cur = object_property_get_link(OBJECT(s->managed),
                                               PEGPU_DMATEST_PROP_DMA, NULL);

        if (cur && cur != OBJECT(s)) {
            DeviceState *md = DEVICE(s->managed);

            error_setg(errp, "pegpu-dma: %s '%s' is already attached to "
                       "another pegpu-dma", TYPE_PEGPU_DMATEST,
                       md->id ? md->id : "");
            return;
        }
    }

    lim = (struct pegpu_dmadev_limits) {
        .page_shift = DART_EMU_PAGE_SHIFT,
        .max_batch = s->max_batch,
        .max_mappings = s->max_mappings,
        .max_mapped_bytes = s->max_mapped_bytes,
    };
    s->backend_ctx = b->create(s, &lim, s->iova_seed, errp);
    if (!s->backend_ctx) {
        return;
    }
    s->backend = b;
    s->core = pegpu_dmadev_new(&lim, &pegpu_dma_guest_ops, s, b->ops,
                               s->backend_ctx);
    if (!s->core) {
        error_setg(errp, "pegpu-dma: the device core refused the limits "
                   "max-batch=%" PRIu32 " max-mappings=%" PRIu32
                   " max-mapped-bytes=%" PRIu64, s->max_batch,
                   s->max_mappings, s->max_mapped_bytes);
        goto fail_backend;
    }
    /* the core's log sink type has no format attribute; ours has */
    pegpu_dmadev_set_log(s->core, (pegpu_dmadev_log_fn)pegpu_dma_core_log, s);

    error_setg(&s->migration_blocker, "pegpu-dma: live DMA mappings are held "
               "by the host DART and cannot be migrated");
    if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
        goto fail_core;
    }

    if (s->managed && object_dynamic_cast(OBJECT(s->managed),
                                          TYPE_PEGPU_DMATEST)) {
        if (!object_property_set_link(OBJECT(s->managed),
                                      PEGPU_DMATEST_PROP_DMA, OBJECT(s),
                                      errp)) {
            migrate_del_blocker(&s->migration_blocker);
            goto fail_core;
        }
    }

    pci_config_set_interrupt_pin(pdev->config, 0);
    memory_region_init_io(&s->mmio, OBJECT(s), &pegpu_dma_mmio_ops, s,
                          "pegpu-dma-mmio", PEGPU_DMA_BAR_SIZE);
    pci_register_bar(pdev, PEGPU_DMA_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mmio);
    return;

fail_core:
    pegpu_dmadev_free(s->core);
    s->core = NULL;
fail_backend:
    if (b->destroy) {
        b->destroy(s->backend_ctx);
    }
    s->backend_ctx = NULL;
    s->backend = NULL;
}

static void pegpu_dma_exit(PCIDevice *pdev)
{
    PegpuDmaState *s = PEGPU_DMA(pdev);

    if (s->managed && object_dynamic_cast(OBJECT(s->managed),
                                          TYPE_PEGPU_DMATEST) &&
        object_property_get_link(OBJECT(s->managed), PEGPU_DMATEST_PROP_DMA,
                                 NULL) == OBJECT(s)) {
        object_property_set_link(OBJECT(s->managed), PEGPU_DMATEST_PROP_DMA,
                                 NULL, &error_abort);
    }
    migrate_del_blocker(&s->migration_blocker);
    if (s->core) {
        /* unmap everything through the backend before it goes away */
        pegpu_dmadev_reset(s->core);
        pegpu_dmadev_free(s->core);
        s->core = NULL;
    }
    if (s->backend && s->backend->destroy) {
        s->backend->destroy(s->backend_ctx);
    }
    s->backend_ctx = NULL;
    s->backend = NULL;
}

static void pegpu_dma_reset(DeviceState *dev)
{
    PegpuDmaState *s = PEGPU_DMA(dev);

    if (s->core) {
        pegpu_dmadev_reset(s->core);
    }
}

static const Property pegpu_dma_properties[] = {
    DEFINE_PROP_STRING("backend", PegpuDmaState, backend_name),
    DEFINE_PROP_LINK("managed", PegpuDmaState, managed, TYPE_PCI_DEVICE,
                     PCIDevice *),
    DEFINE_PROP_SIZE("max-mapped-bytes", PegpuDmaState, max_mapped_bytes,
                     DART_EMU_DEFAULT_MAX_BYTES),
    DEFINE_PROP_UINT32("max-mappings", PegpuDmaState, max_mappings,
                       DART_EMU_DEFAULT_MAX_MAPPINGS),
    DEFINE_PROP_UINT32("max-batch", PegpuDmaState, max_batch,
                       PEGPU_DMA_DEFAULT_MAX_BATCH),
    DEFINE_PROP_UINT64("iova-seed", PegpuDmaState, iova_seed, 0),
};

/* Live mappings sit in the host DART: see the migration blocker too. */
static const VMStateDescription pegpu_dma_vmstate = {
    .name = TYPE_PEGPU_DMA,
    .unmigratable = 1,
};

static void pegpu_dma_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    int i;

    k->realize = pegpu_dma_realize;
    k->exit = pegpu_dma_exit;
    k->vendor_id = PEGPU_PCI_VENDOR_ID;
    k->device_id = PEGPU_DMA_PCI_DEVICE_ID;
    k->revision = PEGPU_PCI_REVISION;
    k->class_id = PCI_CLASS_SYSTEM_OTHER;
    dc->desc = "pegpu paravirtual DMA mapper (DART)";
    dc->vmsd = &pegpu_dma_vmstate;
    device_class_set_legacy_reset(dc, pegpu_dma_reset);
    device_class_set_props(dc, pegpu_dma_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);

    for (i = 0; i < PEGPU_DMA_CNT__COUNT; i++) {
        object_class_property_add(klass, pegpu_dma_counter_names[i],
                                  "uint64", pegpu_dma_get_counter,
                                  NULL, NULL, (void *)(uintptr_t)i);
        object_class_property_set_description(klass,
                                              pegpu_dma_counter_names[i],
                                              "device counter (read-only)");
    }
}

static void pegpu_dma_register_types(void)
{
    static InterfaceInfo interfaces[] = {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    };
    static const TypeInfo pegpu_dma_info = {
        .name          = TYPE_PEGPU_DMA,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(PegpuDmaState),
        .class_init    = pegpu_dma_class_init,
        .interfaces    = interfaces,
    };

    type_register_static(&pegpu_dma_info);
}
type_init(pegpu_dma_register_types)
