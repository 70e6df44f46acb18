/*
 * PEGPU Machine: pegpu-dmatest, a bus master that plays the GPU
 *
 * It runs COPY/FILL/CSUM descriptors (include/pegpu/dma_proto.h) whose
 * addresses are IOVAs, translating every access through the DART of the
 * pegpu-dma it is attached to, exactly as the passed-through GPU's DMA
 * goes through Apple's DART: an access outside a live mapping, or against
 * the mapping's direction, faults; the fault is counted, logged and
 * reported in the descriptor's status, and never stops QEMU.
 *
 * Attachment: a pegpu-dma whose managed= names this device sets our "dma"
 * link at its realize, so the test device comes first on the command line:
 *   -device pegpu-dmatest,id=gpu0 -device pegpu-dma,managed=gpu0
 *
 * Semantics beyond the header:
 *  - not attached, or bus mastering disabled in PCI_COMMAND: STATUS is
 *    NO_DART and no memory is touched (a device that may not master the
 *    bus cannot reach the DART at all); logged as a guest error, no fault
 *    is counted;
 *  - RING_COUNT > PEGPU_DMATEST_MAX_RING: STATUS is BAD_DESC, nothing runs;
 *  - descriptors run in order; a failing one does not stop the rest, and
 *    STATUS is OK or the status of the first failing descriptor; a ring
 *    that cannot be read or written back stops the run with RING_FAULT;
 *  - a COPY/FILL that faults part-way leaves the bytes before the fault
 *    written;
 *  - BYTES_READ/BYTES_WRITTEN count descriptor payload (COPY/FILL/CSUM
 *    data), not descriptor fetches and status write-backs; DESCS counts
 *    descriptors whose status was written back, whatever the status.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "hw/pci/pci_device.h"
#include "migration/vmstate.h"
#include "qom/object.h"

#include "pegpu-dma.h"
#include "pegpu/dma_proto.h"

OBJECT_DECLARE_SIMPLE_TYPE(PegpuDmatestState, PEGPU_DMATEST)

#define PEGPU_DMATEST_CHUNK     (16 * 1024)     /* one DART page */

struct PegpuDmatestState {
    PCIDevice pdev;
    MemoryRegion mmio;

    PegpuDmaState *dma;         /* "dma" link, set by pegpu-dma */

    uint64_t ring_iova;
    uint32_t ring_count;
    uint32_t status;
    uint64_t faults;
    uint64_t fault_iova;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t descs;

    uint8_t buf[PEGPU_DMATEST_CHUNK];
};

/* One run of the ring: the context the helpers share. */
typedef struct PegpuDmatestRun {
    PegpuDmatestState *s;
    struct pegpu_dmadev *core;
    AddressSpace *as;
    uint32_t index;             /* descriptor being processed */
} PegpuDmatestRun;

static const char *pegpu_dmatest_op_name(uint32_t op)
{
    switch (op) {
    case PEGPU_DT_OP_COPY:
        return "COPY";
    case PEGPU_DT_OP_FILL:
        return "FILL";
    case PEGPU_DT_OP_CSUM:
        return "CSUM";
    default:
        return "ring";
    }
}

static void pegpu_dmatest_fault(PegpuDmatestRun *r, const char *what,
                                uint64_t iova, bool write, bool count_in_core)
{
    PegpuDmatestState *s = r->s;

    s->faults++;
    s->fault_iova = iova;
    if (count_in_core) {
        pegpu_dmadev_count_fault(r->core);
    }
    qemu_log_mask(LOG_GUEST_ERROR,
                  "%s %s: DMA fault: %s %s at IOVA 0x%" PRIx64
                  " (descriptor %" PRIu32 ")\n", TYPE_PEGPU_DMATEST,
                  s->pdev.qdev.id ? s->pdev.qdev.id : "",
                  write ? "write" : "read", what, iova, r->index);
}

/*
 * Move @len bytes between @buf and IOVA @iova through the DART, one
 * translated, physically contiguous piece at a time.  Returns the bytes
 * moved; fewer than @len means a fault (already counted and logged).
 */
static uint64_t pegpu_dmatest_xfer(PegpuDmatestRun *r, uint64_t iova,
                                   void *buf, uint64_t len, bool write)
{
    unsigned int dir = write ? PEGPU_DIR_FROM_DEVICE : PEGPU_DIR_TO_DEVICE;
    uint64_t done = 0;

    while (done < len) {
        uint64_t at = iova + done, gpa, contig = 0, n;

        if (at < iova) {
            pegpu_dmatest_fault(r, "wraps the IOVA space", at, write, true);
            break;
        }
        if (pegpu_dmadev_translate(r->core, at, dir, &gpa, &contig) != 0 ||
            contig == 0) {
            /* the core counted this fault in pegpu-dma's counter */
            pegpu_dmatest_fault(r, write ? "outside a writable mapping" :
                                "outside a readable mapping", at, write,
                                false);
            break;
        }
        n = MIN(len - done, contig);
        if (!pegpu_dma_as_is_ram(r->as, gpa, n) ||
            address_space_rw(r->as, gpa, MEMTXATTRS_UNSPECIFIED,
                             (uint8_t *)buf + done, n, write) != MEMTX_OK) {
            pegpu_dmatest_fault(r, "translating to memory that is not RAM",
                                at, write, true);
            break;
        }
        done += n;
    }
    return done;
}

/* Payload transfer: counts bytes; returns true when all of @len moved. */
static bool pegpu_dmatest_data(PegpuDmatestRun *r, uint64_t iova, void *buf,
                               uint64_t len, bool write)
{
    uint64_t n = pegpu_dmatest_xfer(r, iova, buf, len, write);

    if (write) {
        r->s->bytes_written += n;
    } else {
        r->s->bytes_read += n;
    }
    return n == len;
}

static uint32_t pegpu_dmatest_exec(PegpuDmatestRun *r,
                                   struct pegpu_dmatest_desc *d)
{
    PegpuDmatestState *s = r->s;
    uint32_t op = le32_to_cpu(d->op);
    uint64_t src = le64_to_cpu(d->src);
    uint64_t dst = le64_to_cpu(d->dst);
    uint64_t len = le64_to_cpu(d->len);
    uint64_t csum = PEGPU_FNV1A64_INIT;
    uint64_t off, n;

    if (op != PEGPU_DT_OP_COPY && op != PEGPU_DT_OP_FILL &&
        op != PEGPU_DT_OP_CSUM) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: descriptor %" PRIu32
                      ": unknown op %" PRIu32 "\n", TYPE_PEGPU_DMATEST,
                      r->index, op);
        return PEGPU_DT_ST_BAD_DESC;
    }
    if (len == 0 || len > PEGPU_DMATEST_MAX_LEN) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: descriptor %" PRIu32
                      ": %s length %" PRIu64 " is not 1..%llu\n",
                      TYPE_PEGPU_DMATEST, r->index, pegpu_dmatest_op_name(op),
                      len, PEGPU_DMATEST_MAX_LEN);
        return PEGPU_DT_ST_BAD_DESC;
    }

    if (op == PEGPU_DT_OP_FILL) {
        memset(s->buf, (uint8_t)le64_to_cpu(d->arg), sizeof(s->buf));
    }
    for (off = 0; off < len; off += n) {
        n = MIN(len - off, sizeof(s->buf));
        switch (op) {
        case PEGPU_DT_OP_COPY:
            if (!pegpu_dmatest_data(r, src + off, s->buf, n, false) ||
                !pegpu_dmatest_data(r, dst + off, s->buf, n, true)) {
                return PEGPU_DT_ST_FAULT;
            }
            break;
        case PEGPU_DT_OP_FILL:
            if (!pegpu_dmatest_data(r, dst + off, s->buf, n, true)) {
                return PEGPU_DT_ST_FAULT;
            }
            break;
        case PEGPU_DT_OP_CSUM:
            if (!pegpu_dmatest_data(r, src + off, s->buf, n, false)) {
                return PEGPU_DT_ST_FAULT;
            }
            csum = pegpu_fnv1a64(csum, s->buf, n);
            break;
        }
    }
    if (op == PEGPU_DT_OP_CSUM) {
        d->result = cpu_to_le64(csum);
    }
    return PEGPU_DT_ST_OK;
}

static uint32_t pegpu_dmatest_run(PegpuDmatestState *s)
{
    PegpuDmatestRun r = { .s = s };
    const uint64_t dsz = sizeof(struct pegpu_dmatest_desc);
    uint32_t run_status = PEGPU_DT_ST_OK;
    uint32_t i;

    r.core = s->dma ? pegpu_dma_core(s->dma) : NULL;
    if (!r.core) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: doorbell, but no pegpu-dma "
                      "translates for this device (attach one with "
                      "-device pegpu-dma,managed=<this id>)\n",
                      TYPE_PEGPU_DMATEST);
        return PEGPU_DT_ST_NO_DART;
    }
    if (!(pci_get_word(s->pdev.config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: doorbell with bus mastering "
                      "disabled in PCI_COMMAND: no DMA\n",
                      TYPE_PEGPU_DMATEST);
        return PEGPU_DT_ST_NO_DART;
    }
    if (s->ring_count > PEGPU_DMATEST_MAX_RING) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: RING_COUNT %" PRIu32
                      " exceeds %d\n", TYPE_PEGPU_DMATEST, s->ring_count,
                      PEGPU_DMATEST_MAX_RING);
        return PEGPU_DT_ST_BAD_DESC;
    }
    r.as = pci_get_address_space(&s->pdev);

    for (i = 0; i < s->ring_count; i++) {
        struct pegpu_dmatest_desc d;
        uint64_t at = s->ring_iova + i * dsz;
        uint32_t st;

        r.index = i;
        if (at < s->ring_iova ||
            pegpu_dmatest_xfer(&r, at, &d, dsz, false) != dsz) {
            if (at < s->ring_iova) {
                pegpu_dmatest_fault(&r, "of a ring that wraps the IOVA space",
                                    at, false, true);
            }
            return PEGPU_DT_ST_RING_FAULT;
        }
        st = pegpu_dmatest_exec(&r, &d);
        d.status = cpu_to_le32(st);
        if (le32_to_cpu(d.op) == PEGPU_DT_OP_CSUM && st == PEGPU_DT_ST_OK &&
            pegpu_dmatest_xfer(&r, at + offsetof(struct pegpu_dmatest_desc,
                                                 result),
                               &d.result, sizeof(d.result), true) !=
            sizeof(d.result)) {
            return PEGPU_DT_ST_RING_FAULT;
        }
        if (pegpu_dmatest_xfer(&r, at + offsetof(struct pegpu_dmatest_desc,
                                                 status),
                               &d.status, sizeof(d.status), true) !=
            sizeof(d.status)) {
            return PEGPU_DT_ST_RING_FAULT;
        }
        s->descs++;
        if (st != PEGPU_DT_ST_OK && run_status == PEGPU_DT_ST_OK) {
            run_status = st;
        }
    }
    return run_status;
}

/* ------------------------------------------------------------------ */
/* Registers                                                           */
/* ------------------------------------------------------------------ */

static uint64_t pegpu_dmatest_reg64(uint64_t v, hwaddr addr, hwaddr base,
                                    unsigned size)
{
    if (size == 8) {
        return addr == base ? v : 0;
    }
    return addr == base ? (uint32_t)v : v >> 32;
}

static uint64_t pegpu_dmatest_mmio_read(void *opaque, hwaddr addr,
                                        unsigned size)
{
    PegpuDmatestState *s = opaque;
    hwaddr base = addr & ~7ULL;
    uint64_t v;

    switch (base) {
    case PEGPU_DMATEST_REG_MAGIC:       /* and VERSION */
        v = PEGPU_DMATEST_MAGIC | ((uint64_t)PEGPU_DMATEST_VERSION << 32);
        break;
    case PEGPU_DMATEST_REG_RING_IOVA:
        v = s->ring_iova;
        break;
    case PEGPU_DMATEST_REG_RING_COUNT:  /* and DOORBELL (reads as 0) */
        v = s->ring_count;
        break;
    case PEGPU_DMATEST_REG_STATUS:      /* and 4 reserved bytes */
        v = s->status;
        break;
    case PEGPU_DMATEST_REG_FAULTS:
        v = s->faults;
        break;
    case PEGPU_DMATEST_REG_FAULT_IOVA:
        v = s->fault_iova;
        break;
    case PEGPU_DMATEST_REG_BYTES_READ:
        v = s->bytes_read;
        break;
    case PEGPU_DMATEST_REG_BYTES_WRITTEN:
        v = s->bytes_written;
        break;
    case PEGPU_DMATEST_REG_DESCS:
        v = s->descs;
        break;
    default:
        return 0;
    }
    if (size == 8 && addr != base) {
        return 0;       /* misaligned 64-bit reads are refused by .valid */
    }
    return pegpu_dmatest_reg64(v, addr, base, size);
}

static void pegpu_dmatest_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                                     unsigned size)
{
    PegpuDmatestState *s = opaque;

    switch (addr) {
    case PEGPU_DMATEST_REG_RING_IOVA:
        if (size == 8) {
            s->ring_iova = val;
            return;
        }
        break;
    case PEGPU_DMATEST_REG_RING_COUNT:
        if (size == 4) {
            s->ring_count = val;
            return;
        }
        break;
    case PEGPU_DMATEST_REG_DOORBELL:
        if (size == 4) {
            s->status = pegpu_dmatest_run(s);
            return;
        }
        break;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "%s: %u-byte write of 0x%" PRIx64
                  " to register 0x%03" HWADDR_PRIx " ignored (read-only, "
                  "reserved or the wrong width)\n", TYPE_PEGPU_DMATEST, size,
                  val, addr);
}

static const MemoryRegionOps pegpu_dmatest_mmio_ops = {
    .read = pegpu_dmatest_mmio_read,
    .write = pegpu_dmatest_mmio_write,
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
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

static void pegpu_dmatest_realize(PCIDevice *pdev, Error **errp)
{
    PegpuDmatestState *s = PEGPU_DMATEST(pdev);

    pci_config_set_interrupt_pin(pdev->config, 0);
    memory_region_init_io(&s->mmio, OBJECT(s), &pegpu_dmatest_mmio_ops, s,
                          "pegpu-dmatest-mmio", PEGPU_DMATEST_BAR_SIZE);
    pci_register_bar(pdev, PEGPU_DMATEST_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mmio);
}

static void pegpu_dmatest_reset(DeviceState *dev)
{
    PegpuDmatestState *s = PEGPU_DMATEST(dev);

    s->ring_iova = 0;
    s->ring_count = 0;
    s->status = PEGPU_DT_ST_OK;
    s->faults = 0;
    s->fault_iova = 0;
    s->bytes_read = 0;
    s->bytes_written = 0;
    s->descs = 0;
}

static void pegpu_dmatest_instance_init(Object *obj)
{
    PegpuDmatestState *s = PEGPU_DMATEST(obj);

    /* weak: the pegpu-dma that sets it clears it when it goes away */
    object_property_add_link(obj, PEGPU_DMATEST_PROP_DMA, TYPE_PEGPU_DMA,
                             (Object **)&s->dma,
                             object_property_allow_set_link, 0);
    object_property_add_uint64_ptr(obj, "faults", &s->faults,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "bytes-read", &s->bytes_read,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "bytes-written", &s->bytes_written,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "descs", &s->descs,
                                   OBJ_PROP_FLAG_READ);
}

/* Its state is a test device's; pegpu-dma blocks migration anyway. */
static const VMStateDescription pegpu_dmatest_vmstate = {
    .name = TYPE_PEGPU_DMATEST,
    .unmigratable = 1,
};

static void pegpu_dmatest_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = pegpu_dmatest_realize;
    k->vendor_id = PEGPU_PCI_VENDOR_ID;
    k->device_id = PEGPU_DMATEST_PCI_DEVICE_ID;
    k->revision = PEGPU_PCI_REVISION;
    k->class_id = PCI_CLASS_OTHERS;
    dc->desc = "pegpu DMA test engine (a GPU stand-in behind the DART)";
    dc->vmsd = &pegpu_dmatest_vmstate;
    device_class_set_legacy_reset(dc, pegpu_dmatest_reset);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static void pegpu_dmatest_register_types(void)
{
    static InterfaceInfo interfaces[] = {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    };
    static const TypeInfo pegpu_dmatest_info = {
        .name          = TYPE_PEGPU_DMATEST,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(PegpuDmatestState),
        .instance_init = pegpu_dmatest_instance_init,
        .class_init    = pegpu_dmatest_class_init,
        .interfaces    = interfaces,
    };

    type_register_static(&pegpu_dmatest_info);
}
type_init(pegpu_dmatest_register_types)
