/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * The "emu" DMA backend: the pegpu-dma core over the DART emulator, for hosts
 * without a DART (the Linux rig, unit tests, fuzzing).  bctx is a
 * struct dart_emu *, owned by the caller.
 */
#include "pegpu/dart_emu.h"
#include "pegpu/dma_dev.h"

/*
 * Direction is from the device's point of view: TO_DEVICE means the device
 * reads the memory, FROM_DEVICE that it writes it.
 */
static unsigned int dir_to_prot(unsigned int dir)
{
	unsigned int prot = 0;

	if (dir & PEGPU_DIR_TO_DEVICE)
		prot |= DART_PROT_READ;
	if (dir & PEGPU_DIR_FROM_DEVICE)
		prot |= DART_PROT_WRITE;
	return prot;
}

static int emu_map(void *ctx, uint64_t gpa, uint64_t len, unsigned int dir, uint64_t *iova)
{
	if (!dir || (dir & ~PEGPU_ENTRY_FLAGS_MASK))
		return PEGPU_ST_BAD_FLAGS;

	switch (dart_emu_map(ctx, gpa, len, dir_to_prot(dir), iova)) {
	case DART_OK:
		return PEGPU_ST_OK;
	case DART_E_NOSPACE:
		return PEGPU_ST_NO_SPACE;
	case DART_E_TOOMANY:
		return PEGPU_ST_TOO_MANY;
	case DART_E_NOIOVA:
		return PEGPU_ST_NO_IOVA;
	default:
		/* INVAL after the core's checks means the two disagree on the page size. */
		return PEGPU_ST_BACKEND;
	}
}

static int emu_unmap(void *ctx, uint64_t iova, uint64_t len)
{
	switch (dart_emu_unmap(ctx, iova, len)) {
	case DART_OK:
		return PEGPU_ST_OK;
	case DART_E_NOTMAPPED:
		return PEGPU_ST_NOT_MAPPED;
	case DART_E_LENMISMATCH:
		return PEGPU_ST_LEN_MISMATCH;
	default:
		return PEGPU_ST_BACKEND;
	}
}

static int emu_translate(void *ctx, uint64_t iova, unsigned int dir, uint64_t *gpa,
			 uint64_t *contig)
{
	if (!dir || (dir & ~PEGPU_ENTRY_FLAGS_MASK))
		return PEGPU_ST_BAD_FLAGS;
	switch (dart_emu_translate(ctx, iova, dir_to_prot(dir), gpa, contig)) {
	case DART_OK:
		return PEGPU_ST_OK;
	case DART_E_FAULT:
		return PEGPU_ST_NOT_MAPPED;
	default:
		return PEGPU_ST_BACKEND;
	}
}

static void emu_reset(void *ctx)
{
	dart_emu_reset(ctx);
}

static void emu_window(void *ctx, uint64_t *base, uint64_t *size)
{
	struct dart_emu_config cfg;

	dart_emu_get_config(ctx, &cfg);
	*base = cfg.iova_base;
	*size = cfg.iova_size;
}

const struct pegpu_dma_backend_ops pegpu_dma_backend_emu = {
	.name = "emu",
	.map = emu_map,
	.unmap = emu_unmap,
	.translate = emu_translate,
	.reset = emu_reset,
	.window = emu_window,
};
