/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * DART emulator: what Apple's DART looks like to pegpu, for hosts without
 * one (the Linux rig, unit tests, fuzzing, benchmarks).
 *
 * It reproduces the properties the rest of pegpu must live with:
 *  - 16 KiB pages (page_shift 14): every mapping covers whole pages;
 *  - the emulator, not the caller, picks every IOVA, and deliberately keeps
 *    them aligned to no more than one page;
 *  - hard caps on bytes mapped at once and on live mappings; a request
 *    that would exceed either is refused, never overcommitted;
 *  - per-mapping read/write permission;
 *  - translation of device accesses (IOVA -> physical), for the test
 *    device that plays the GPU.
 *
 * User space only (uses malloc); not thread-safe: callers serialise.
 */
#ifndef PEGPU_DART_EMU_H
#define PEGPU_DART_EMU_H

#include <stdbool.h>
#include <stdint.h>

#define DART_EMU_PAGE_SHIFT		14
#define DART_EMU_DEFAULT_MAX_BYTES	(1536ull << 20)	/* 1.5 GiB */
#define DART_EMU_DEFAULT_MAX_MAPPINGS	65536u
#define DART_EMU_DEFAULT_IOVA_BASE	(1ull << DART_EMU_PAGE_SHIFT)
#define DART_EMU_DEFAULT_IOVA_SIZE	((4ull << 30) - DART_EMU_DEFAULT_IOVA_BASE)

/* permissions, as the device sees them */
#define DART_PROT_READ	(1u << 0)	/* device may read (DMA_TO_DEVICE) */
#define DART_PROT_WRITE	(1u << 1)	/* device may write (DMA_FROM_DEVICE) */

/* results; negative so they never collide with a valid count */
enum dart_emu_err {
	DART_OK = 0,
	DART_E_INVAL = -1,	/* zero/unaligned/overflowing arguments, bad prot */
	DART_E_NOSPACE = -2,	/* mapped-bytes cap */
	DART_E_TOOMANY = -3,	/* live-mappings cap */
	DART_E_NOIOVA = -4,	/* no free IOVA range large enough */
	DART_E_NOTMAPPED = -5,	/* unmap: iova does not start a live mapping */
	DART_E_LENMISMATCH = -6,/* unmap: length differs from the mapping's */
	DART_E_FAULT = -7,	/* translate: not mapped, or permission denied */
	DART_E_NOMEM = -8,	/* host out of memory */
};

struct dart_emu_config {
	uint32_t page_shift;		/* 0 = DART_EMU_PAGE_SHIFT */
	uint64_t iova_base;		/* page aligned, non-zero; 0 = default */
	uint64_t iova_size;		/* page multiple; 0 = default */
	uint64_t max_mapped_bytes;	/* 0 = default */
	uint32_t max_mappings;		/* 0 = default */
	uint64_t seed;			/* perturbs where IOVAs land; any value */
};

struct dart_emu_stats {
	uint64_t live_mappings;
	uint64_t mapped_bytes;
	uint64_t peak_mappings;
	uint64_t peak_mapped_bytes;
	uint64_t maps;
	uint64_t unmaps;
	uint64_t refusals;		/* NOSPACE + TOOMANY + NOIOVA */
	uint64_t faults;		/* failed translations */
};

struct dart_emu;

/* Returns NULL on an invalid config or no memory. */
struct dart_emu *dart_emu_new(const struct dart_emu_config *cfg);
void dart_emu_free(struct dart_emu *d);

/* The effective configuration (defaults filled in). */
void dart_emu_get_config(const struct dart_emu *d, struct dart_emu_config *cfg);

/*
 * Map [paddr, paddr + len) with `prot`; both page aligned, len > 0.
 * On success stores the chosen IOVA and returns DART_OK.
 */
int dart_emu_map(struct dart_emu *d, uint64_t paddr, uint64_t len, unsigned int prot,
		 uint64_t *iova);

/* Unmap exactly the mapping that starts at iova and is len bytes long. */
int dart_emu_unmap(struct dart_emu *d, uint64_t iova, uint64_t len);

/*
 * Translate a device access at `iova` needing `prot` (one DART_PROT_ bit).
 * On success stores the physical address and the bytes that stay
 * physically contiguous and accessible from there (>= 1).  A failure
 * counts one fault.
 */
int dart_emu_translate(struct dart_emu *d, uint64_t iova, unsigned int prot,
		       uint64_t *paddr, uint64_t *contig);

/* Drop every mapping; peaks restart from zero, totals are kept. */
void dart_emu_reset(struct dart_emu *d);

void dart_emu_get_stats(const struct dart_emu *d, struct dart_emu_stats *st);

/* Check internal invariants (tables vs counters); for tests and fuzzing. */
bool dart_emu_check(const struct dart_emu *d);

const char *dart_emu_strerror(int err);

#endif /* PEGPU_DART_EMU_H */
