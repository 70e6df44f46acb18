/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * pegpu DMA wire protocol: the one definition shared by the guest driver
 * (guest/kmod), the QEMU devices (machine/qemu), lib/ and the tests.
 *
 * Everything the guest and the device exchange is little-endian and has a
 * fixed size; docs/protocol.md is the prose version of this file.  Two PCI
 * functions speak it:
 *
 *  - pegpu-dma      the paravirtual DMA mapper: the guest posts batches of
 *                   MAP/UNMAP entries in guest RAM and rings a doorbell; the
 *                   host maps them through Apple's DART (or the DART emulator).
 *  - pegpu-dmatest  a bus-master test device standing in for a GPU: it runs
 *                   COPY/FILL/CSUM descriptors through the DART translation.
 */
#ifndef PEGPU_DMA_PROTO_H
#define PEGPU_DMA_PROTO_H

#ifdef __KERNEL__
#include <linux/types.h>
typedef __le16 pegpu_le16;
typedef __le32 pegpu_le32;
typedef __le64 pegpu_le64;
#else
#include <stdint.h>
typedef uint16_t pegpu_le16;
typedef uint32_t pegpu_le32;
typedef uint64_t pegpu_le64;
#endif

/*
 * PCI identity.  1b36:0015 belongs to an upstream QEMU device; we use the
 * QEMU "experimental" vendor 1234 with ids of our own until pegpu has a
 * vendor id.  Change them only here.
 */
#define PEGPU_PCI_VENDOR_ID		0x1234
#define PEGPU_DMA_PCI_DEVICE_ID		0x9e90
#define PEGPU_DMATEST_PCI_DEVICE_ID	0x9e91
#define PEGPU_PCI_REVISION		0x01

/* ------------------------------------------------------------------ */
/* pegpu-dma: BAR0, 4 KiB of MMIO registers                            */
/* ------------------------------------------------------------------ */

#define PEGPU_DMA_BAR			0
#define PEGPU_DMA_BAR_SIZE		0x1000

#define PEGPU_DMA_MAGIC			0x50454744u	/* "PEGD" */
#define PEGPU_DMA_VERSION_MAJOR		1
#define PEGPU_DMA_VERSION_MINOR		0
#define PEGPU_DMA_VERSION \
	((PEGPU_DMA_VERSION_MAJOR << 16) | PEGPU_DMA_VERSION_MINOR)

/*
 * Register offsets.  32-bit registers take 32-bit accesses; 64-bit
 * registers take one 64-bit access (a 32-bit read of either half is
 * allowed, a 32-bit write is ignored and logged as a guest error).
 */
#define PEGPU_DMA_REG_MAGIC		0x000	/* RO 32 */
#define PEGPU_DMA_REG_VERSION		0x004	/* RO 32: major << 16 | minor */
#define PEGPU_DMA_REG_FEATURES		0x008	/* RO 32: PEGPU_DMA_F_* */
#define PEGPU_DMA_REG_PAGE_SHIFT	0x00c	/* RO 32: DART page = 1 << this (14) */
#define PEGPU_DMA_REG_MAX_BATCH		0x010	/* RO 32: entries per batch, max */
#define PEGPU_DMA_REG_MAX_MAPPINGS	0x014	/* RO 32: live mappings, max */
#define PEGPU_DMA_REG_MAX_MAPPED	0x018	/* RO 64: bytes mapped at once, max */
#define PEGPU_DMA_REG_IOVA_BASE		0x020	/* RO 64: lowest IOVA handed out */
#define PEGPU_DMA_REG_IOVA_SIZE		0x028	/* RO 64: IOVA window size, 0 = unknown */
#define PEGPU_DMA_REG_MANAGED_BDF	0x030	/* RO 32: domain << 16 | bus << 8 | devfn */
#define PEGPU_DMA_REG_MANAGED_VALID	0x034	/* RO 32: 1 if MANAGED_BDF names a device */
#define PEGPU_DMA_REG_CONTROL		0x038	/* WO 32: PEGPU_DMA_CTRL_* */
#define PEGPU_DMA_REG_LAST_STATUS	0x03c	/* RO 32: status of the last doorbell */
#define PEGPU_DMA_REG_DOORBELL		0x040	/* WO 64: guest-physical address of a batch */
#define PEGPU_DMA_REG_COUNTERS		0x100	/* RO 64 each: enum pegpu_dma_counter */

#define PEGPU_DMA_F_COUNTERS		(1u << 0)	/* counter block present */
#define PEGPU_DMA_F_RESET		(1u << 1)	/* CONTROL.RESET supported */
#define PEGPU_DMA_F_DIRECTION		(1u << 2)	/* mappings honour direction */

/* CONTROL.RESET unmaps every live mapping and clears the peaks (not the totals). */
#define PEGPU_DMA_CTRL_RESET		(1u << 0)

/*
 * Device counters, readable by the guest at PEGPU_DMA_REG_COUNTERS + 8 * n
 * and by the host (QOM properties named by pegpu_dma_counter_names).
 */
enum pegpu_dma_counter {
	PEGPU_DMA_CNT_DOORBELLS = 0,	/* doorbell writes */
	PEGPU_DMA_CNT_ENTRIES,		/* batch entries decoded */
	PEGPU_DMA_CNT_MAPS,		/* successful MAP entries */
	PEGPU_DMA_CNT_UNMAPS,		/* successful UNMAP entries */
	PEGPU_DMA_CNT_LIVE_MAPPINGS,	/* mappings live now */
	PEGPU_DMA_CNT_MAPPED_BYTES,	/* bytes mapped now */
	PEGPU_DMA_CNT_PEAK_MAPPINGS,	/* highest LIVE_MAPPINGS since reset */
	PEGPU_DMA_CNT_PEAK_MAPPED_BYTES,/* highest MAPPED_BYTES since reset */
	PEGPU_DMA_CNT_REFUSALS,		/* MAPs refused for a cap or no IOVA space */
	PEGPU_DMA_CNT_ERRORS,		/* entries or batches rejected as malformed */
	PEGPU_DMA_CNT_FAULTS,		/* device accesses outside a live mapping */
	PEGPU_DMA_CNT_RESETS,		/* device resets and CONTROL.RESET */
	PEGPU_DMA_CNT__COUNT
};

#define PEGPU_DMA_COUNTER_NAMES_INIT {		\
	"doorbells", "entries", "maps", "unmaps",	\
	"live-mappings", "mapped-bytes",		\
	"peak-mappings", "peak-mapped-bytes",		\
	"refusals", "errors", "faults", "resets" }

/* ------------------------------------------------------------------ */
/* pegpu-dma: batches in guest RAM                                     */
/* ------------------------------------------------------------------ */

/*
 * A batch is a header followed directly by `count` entries, all in guest
 * RAM, the header 64-byte aligned.  The guest fills it, sets every status
 * (header and entries) to PEGPU_ST_PENDING and writes the batch's
 * guest-physical address to DOORBELL with one 64-bit store.
 *
 * The device processes the whole batch inside that MMIO write: when the
 * store instruction retires, every status has been written.  This is what
 * lets atomic-context callers (dma_map_* under spinlocks, in interrupts)
 * use the protocol without sleeping or polling.
 *
 * Entries are processed in order; a failing entry does not stop the rest.
 * The header's status is PEGPU_ST_OK when every entry succeeded, otherwise
 * the status of the first failing entry; nr_ok counts the successes.  If
 * the batch itself is unusable (misaligned, outside RAM), the device cannot
 * write the header and reports through LAST_STATUS only, so a guest that
 * still sees PENDING in the header reads LAST_STATUS.
 */
#define PEGPU_BATCH_MAGIC		0x48435442u	/* "BTCH" */
#define PEGPU_BATCH_ALIGN		64

struct pegpu_dma_batch_hdr {
	pegpu_le32 magic;	/* guest: PEGPU_BATCH_MAGIC */
	pegpu_le32 count;	/* guest: entries following, 1..MAX_BATCH */
	pegpu_le32 status;	/* device: PEGPU_ST_* for the whole batch */
	pegpu_le32 nr_ok;	/* device: entries that succeeded */
	pegpu_le64 cookie;	/* guest: opaque, never read by the device */
	pegpu_le64 reserved;	/* must be zero */
};

enum pegpu_dma_op {
	PEGPU_OP_MAP = 1,	/* in: addr, len, flags;  out: iova, status */
	PEGPU_OP_UNMAP = 2,	/* in: iova, len;         out: status */
};

/* entry flags: the direction of the device's accesses */
#define PEGPU_DIR_TO_DEVICE	(1u << 0)	/* device reads the memory */
#define PEGPU_DIR_FROM_DEVICE	(1u << 1)	/* device writes the memory */
#define PEGPU_DIR_BIDIRECTIONAL	(PEGPU_DIR_TO_DEVICE | PEGPU_DIR_FROM_DEVICE)
#define PEGPU_ENTRY_FLAGS_MASK	PEGPU_DIR_BIDIRECTIONAL

struct pegpu_dma_entry {
	pegpu_le16 op;		/* guest: enum pegpu_dma_op */
	pegpu_le16 flags;	/* guest: PEGPU_DIR_*, MAP only, non-zero */
	pegpu_le32 status;	/* device: PEGPU_ST_* */
	pegpu_le64 addr;	/* guest, MAP: guest-physical start, page aligned */
	pegpu_le64 len;		/* guest: bytes, a non-zero page multiple */
	pegpu_le64 iova;	/* MAP: device writes it; UNMAP: guest gives it */
};

/* statuses, in entries, batch headers and LAST_STATUS */
enum pegpu_dma_status {
	PEGPU_ST_OK = 0,
	PEGPU_ST_BAD_OP = 1,		/* unknown op */
	PEGPU_ST_BAD_FLAGS = 2,		/* unknown flag bits, or no direction on MAP */
	PEGPU_ST_BAD_ALIGN = 3,		/* addr/len/iova not page aligned; batch misaligned */
	PEGPU_ST_BAD_LEN = 4,		/* zero length, or addr + len overflows */
	PEGPU_ST_NOT_RAM = 5,		/* range not entirely guest RAM */
	PEGPU_ST_NO_SPACE = 6,		/* would exceed the mapped-bytes cap */
	PEGPU_ST_TOO_MANY = 7,		/* would exceed the live-mappings cap */
	PEGPU_ST_NO_IOVA = 8,		/* backend has no IOVA range that large */
	PEGPU_ST_NOT_MAPPED = 9,	/* UNMAP of an IOVA that starts no live mapping */
	PEGPU_ST_LEN_MISMATCH = 10,	/* UNMAP length differs from the mapping's */
	PEGPU_ST_BAD_BATCH = 11,	/* bad magic, count 0 or > MAX_BATCH, reserved != 0 */
	PEGPU_ST_BATCH_NOT_RAM = 12,	/* batch header or entries outside guest RAM */
	PEGPU_ST_BACKEND = 13,		/* the host backend failed; see the host log */
	PEGPU_ST__COUNT,
	PEGPU_ST_PENDING = 0xffffffffu,	/* set by the guest before the doorbell */
};

/* ------------------------------------------------------------------ */
/* pegpu-dmatest: BAR0, 4 KiB of MMIO registers                        */
/* ------------------------------------------------------------------ */

#define PEGPU_DMATEST_BAR		0
#define PEGPU_DMATEST_BAR_SIZE		0x1000
#define PEGPU_DMATEST_MAGIC		0x50454754u	/* "PEGT" */
#define PEGPU_DMATEST_VERSION		PEGPU_DMA_VERSION

#define PEGPU_DMATEST_REG_MAGIC		0x000	/* RO 32 */
#define PEGPU_DMATEST_REG_VERSION	0x004	/* RO 32 */
#define PEGPU_DMATEST_REG_RING_IOVA	0x008	/* RW 64: IOVA of the descriptor array */
#define PEGPU_DMATEST_REG_RING_COUNT	0x010	/* RW 32: descriptors in the array */
#define PEGPU_DMATEST_REG_DOORBELL	0x014	/* WO 32: run RING_COUNT descriptors now */
#define PEGPU_DMATEST_REG_STATUS	0x018	/* RO 32: PEGPU_DT_ST_* of the last run */
#define PEGPU_DMATEST_REG_FAULTS	0x020	/* RO 64: faults since reset */
#define PEGPU_DMATEST_REG_FAULT_IOVA	0x028	/* RO 64: IOVA of the last fault */
#define PEGPU_DMATEST_REG_BYTES_READ	0x030	/* RO 64: bytes read through DART */
#define PEGPU_DMATEST_REG_BYTES_WRITTEN	0x038	/* RO 64: bytes written through DART */
#define PEGPU_DMATEST_REG_DESCS		0x040	/* RO 64: descriptors completed */

/*
 * Descriptors live at RING_IOVA: the device fetches them through the DART
 * like a GPU fetches its command buffers, so the ring must be mapped
 * bidirectionally (dma_alloc_coherent does that).  Like pegpu-dma, the
 * doorbell completes the whole ring before the MMIO write retires.
 */
#define PEGPU_DMATEST_MAX_RING		4096
#define PEGPU_DMATEST_MAX_LEN		(64ull << 20)	/* per descriptor */

enum pegpu_dmatest_op {
	PEGPU_DT_OP_COPY = 1,	/* dst[0..len) = src[0..len) */
	PEGPU_DT_OP_FILL = 2,	/* dst[0..len) = (uint8_t)arg */
	PEGPU_DT_OP_CSUM = 3,	/* result = pegpu_fnv1a64(src[0..len)) */
};

enum pegpu_dmatest_status {
	PEGPU_DT_ST_OK = 0,
	PEGPU_DT_ST_FAULT = 1,		/* an access fell outside a live mapping */
	PEGPU_DT_ST_BAD_DESC = 2,	/* unknown op, zero or oversized length */
	PEGPU_DT_ST_RING_FAULT = 3,	/* the ring itself could not be read */
	PEGPU_DT_ST_NO_DART = 4,	/* not linked to a pegpu-dma with translation */
	PEGPU_DT_ST_PENDING = 0xffffffffu,
};

struct pegpu_dmatest_desc {
	pegpu_le32 op;		/* guest: enum pegpu_dmatest_op */
	pegpu_le32 status;	/* device: enum pegpu_dmatest_status */
	pegpu_le64 src;		/* guest: IOVA (COPY, CSUM) */
	pegpu_le64 dst;		/* guest: IOVA (COPY, FILL) */
	pegpu_le64 len;		/* guest: bytes, 1..PEGPU_DMATEST_MAX_LEN */
	pegpu_le64 arg;		/* guest: FILL byte */
	pegpu_le64 result;	/* device: CSUM result */
};

/* FNV-1a, 64-bit: the checksum both sides compute for CSUM. */
#define PEGPU_FNV1A64_INIT	0xcbf29ce484222325ull
#define PEGPU_FNV1A64_PRIME	0x100000001b3ull

static inline uint64_t pegpu_fnv1a64(uint64_t h, const void *buf, uint64_t len)
{
	const unsigned char *p = (const unsigned char *)buf;

	while (len--) {
		h ^= *p++;
		h *= PEGPU_FNV1A64_PRIME;
	}
	return h;
}

/* Layout is part of the ABI: these never change within a major version. */
_Static_assert(sizeof(struct pegpu_dma_batch_hdr) == 32, "batch header is 32 bytes");
_Static_assert(sizeof(struct pegpu_dma_entry) == 32, "batch entry is 32 bytes");
_Static_assert(sizeof(struct pegpu_dmatest_desc) == 48, "dmatest descriptor is 48 bytes");
_Static_assert(PEGPU_DMA_REG_COUNTERS + 8 * PEGPU_DMA_CNT__COUNT <= PEGPU_DMA_BAR_SIZE,
	       "counters fit the BAR");

#endif /* PEGPU_DMA_PROTO_H */
