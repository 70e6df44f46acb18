/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the pegpu-dma device core (lib/dma_dev.c) decoding and
 * validating batches from a hostile guest, with the emu backend over the
 * DART emulator behind a checking wrapper.
 *
 * The input drives a sequence of guest actions: well-formed-ish batches
 * built from interesting values, raw bytes written anywhere in guest RAM,
 * doorbells at any address, resets, device-side translations and register
 * reads.  After every action a reference model, which knows the protocol
 * (docs/protocol.md), predicts the status of every batch and entry, the
 * counters and the live mappings, and the target crashes when the device
 * disagrees.  Properties:
 *  - the backend is never asked to map anything outside guest RAM, nor
 *    anything over a cap (the device refuses first), nor to unmap what is
 *    not live;
 *  - every status, header result, LAST_STATUS and counter is the model's;
 *  - live mappings translate to exactly the guest memory they map and
 *    nothing else translates;
 *  - pegpu_dmadev_check() and dart_emu_check() hold throughout;
 *  - nothing aborts, leaks or trips a sanitizer.
 */
#include <string.h>

#include "fuzz_common.h"
#include "pegpu/dart_emu.h"
#include "pegpu/dma_dev.h"
#include "pegpu/dma_proto.h"

#define PAGE		(1ull << DART_EMU_PAGE_SHIFT)
#define PMASK		(PAGE - 1)
#define R0_BASE		0x10000000ull
#define R0_SIZE		(1ull << 20)
#define R1_BASE		0x40000000ull
#define R1_SIZE		(2ull << 20)
#define MAX_MAPS	64u
#define MAX_ACTIONS	64u

struct shadow {
	uint64_t iova;
	uint64_t gpa;
	uint64_t len;
	uint16_t dir;
};

struct world {
	uint8_t r0[R0_SIZE];
	uint8_t r1[R1_SIZE];
	struct dart_emu *dart;
	struct pegpu_dmadev *dev;
	struct pegpu_dmadev_limits lim;
	/* the model */
	struct shadow map[MAX_MAPS];
	uint32_t nmap;
	uint64_t mapped;
	uint64_t cnt[PEGPU_DMA_CNT__COUNT];
	uint32_t last_status;
	bool in_doorbell;
};

static struct world *W;

/* ---------------------------------------------------------------- */
/* guest RAM: two regions with a hole between them                   */
/* ---------------------------------------------------------------- */

static uint8_t *ram_ptr(struct world *w, uint64_t gpa, uint64_t len)
{
	if (!len)
		return NULL;
	if (gpa >= R0_BASE && gpa - R0_BASE < R0_SIZE && len <= R0_SIZE - (gpa - R0_BASE))
		return w->r0 + (gpa - R0_BASE);
	if (gpa >= R1_BASE && gpa - R1_BASE < R1_SIZE && len <= R1_SIZE - (gpa - R1_BASE))
		return w->r1 + (gpa - R1_BASE);
	return NULL;
}

static bool g_is_ram(void *opaque, uint64_t gpa, uint64_t len)
{
	return ram_ptr(opaque, gpa, len) != NULL;
}

static int g_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
	uint8_t *p = ram_ptr(opaque, gpa, len);

	if (!p)
		return -1;
	memcpy(buf, p, len);
	return 0;
}

static int g_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
	uint8_t *p = ram_ptr(opaque, gpa, len);

	if (!p)
		return -1;
	memcpy(p, buf, len);
	return 0;
}

static const struct pegpu_dmadev_guest_ops gops = {
	.read = g_read,
	.write = g_write,
	.is_ram = g_is_ram,
};

/* ---------------------------------------------------------------- */
/* the backend, checked                                              */
/* ---------------------------------------------------------------- */

static int b_map(void *ctx, uint64_t gpa, uint64_t len, unsigned int dir, uint64_t *iova)
{
	struct world *w = ctx;
	struct dart_emu_stats ds;
	int ret;

	dart_emu_get_stats(w->dart, &ds);
	PROP(w->in_doorbell, "backend map outside a doorbell");
	PROP(ram_ptr(w, gpa, len), "backend asked to map [0x%llx, +0x%llx), not guest RAM",
	     (unsigned long long)gpa, (unsigned long long)len);
	PROP(len <= w->lim.max_mapped_bytes - ds.mapped_bytes, "backend asked over the bytes cap");
	PROP(ds.live_mappings < w->lim.max_mappings, "backend asked over the mappings cap");
	PROP(dir && !(dir & ~PEGPU_ENTRY_FLAGS_MASK), "backend asked with dir %u", dir);
	ret = pegpu_dma_backend_emu.map(w->dart, gpa, len, dir, iova);
	PROP(ret == PEGPU_ST_OK || ret == PEGPU_ST_NO_IOVA, "emu backend map said %d", ret);
	return ret;
}

static int b_unmap(void *ctx, uint64_t iova, uint64_t len)
{
	struct world *w = ctx;
	int ret = pegpu_dma_backend_emu.unmap(w->dart, iova, len);

	/* the device must only unmap what it knows is live, with its length */
	PROP(ret == PEGPU_ST_OK, "backend unmap of 0x%llx+0x%llx said %d",
	     (unsigned long long)iova, (unsigned long long)len, ret);
	return ret;
}

static int b_translate(void *ctx, uint64_t iova, unsigned int dir, uint64_t *gpa,
		       uint64_t *contig)
{
	struct world *w = ctx;

	return pegpu_dma_backend_emu.translate(w->dart, iova, dir, gpa, contig);
}

static void b_reset(void *ctx)
{
	struct world *w = ctx;

	pegpu_dma_backend_emu.reset(w->dart);
}

static void b_window(void *ctx, uint64_t *base, uint64_t *size)
{
	struct world *w = ctx;

	pegpu_dma_backend_emu.window(w->dart, base, size);
}

static const struct pegpu_dma_backend_ops bops = {
	.name = "checked-emu",
	.map = b_map,
	.unmap = b_unmap,
	.translate = b_translate,
	.reset = b_reset,
	.window = b_window,
};

/* ---------------------------------------------------------------- */
/* the model                                                         */
/* ---------------------------------------------------------------- */

static uint16_t ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)ld16(p) | ((uint32_t)ld16(p + 2) << 16);
}

static uint64_t ld64(const uint8_t *p)
{
	return (uint64_t)ld32(p) | ((uint64_t)ld32(p + 4) << 32);
}

static void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void st64(uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)v);
	st32(p + 4, (uint32_t)(v >> 32));
}

static int shadow_find(const struct world *w, uint64_t iova)
{
	uint32_t i;

	for (i = 0; i < w->nmap; i++)
		if (w->map[i].iova == iova)
			return (int)i;
	return -1;
}

static bool is_refusal(uint32_t st)
{
	return st == PEGPU_ST_NO_SPACE || st == PEGPU_ST_TOO_MANY || st == PEGPU_ST_NO_IOVA;
}

/* The status the protocol requires for a MAP, before the backend. */
static uint32_t predict_map(const struct world *w, uint16_t flags, uint64_t addr, uint64_t len)
{
	if (!flags || (flags & ~PEGPU_ENTRY_FLAGS_MASK))
		return PEGPU_ST_BAD_FLAGS;
	if ((addr & PMASK) || (len & PMASK))
		return PEGPU_ST_BAD_ALIGN;
	if (!len || len > UINT64_MAX - addr)
		return PEGPU_ST_BAD_LEN;
	if (!ram_ptr((struct world *)w, addr, len))
		return PEGPU_ST_NOT_RAM;
	if (len > w->lim.max_mapped_bytes - w->mapped)
		return PEGPU_ST_NO_SPACE;
	if (w->nmap >= w->lim.max_mappings)
		return PEGPU_ST_TOO_MANY;
	return PEGPU_ST_OK;
}

static uint32_t predict_unmap(const struct world *w, uint16_t flags, uint64_t iova, uint64_t len)
{
	int i;

	if (flags)
		return PEGPU_ST_BAD_FLAGS;
	if ((iova & PMASK) || (len & PMASK))
		return PEGPU_ST_BAD_ALIGN;
	if (!len || len > UINT64_MAX - iova)
		return PEGPU_ST_BAD_LEN;
	i = shadow_find(w, iova);
	if (i < 0)
		return PEGPU_ST_NOT_MAPPED;
	if (w->map[i].len != len)
		return PEGPU_ST_LEN_MISMATCH;
	return PEGPU_ST_OK;
}

/* The live mapping containing iova, or NULL. */
static const struct shadow *shadow_at(const struct world *w, uint64_t iova)
{
	uint32_t i;

	for (i = 0; i < w->nmap; i++)
		if (iova >= w->map[i].iova && iova - w->map[i].iova < w->map[i].len)
			return &w->map[i];
	return NULL;
}

/*
 * After a batch (the device has run all of it, so only the end state can
 * be checked): every live mapping translates to its memory at both ends
 * in exactly its directions, no two overlap, and the IOVAs this batch
 * unmapped fault unless a later entry mapped them again.
 */
static void check_mappings(struct world *w, const uint64_t *gone, uint32_t ngone)
{
	uint64_t gpa = 0, contig = 0;
	unsigned int dir, end;
	uint32_t i, j;
	int ret;

	for (i = 0; i < w->nmap; i++) {
		const struct shadow *m = &w->map[i];

		PROP(!(m->iova & PMASK), "unaligned iova 0x%llx", (unsigned long long)m->iova);
		for (j = i + 1; j < w->nmap; j++) {
			const struct shadow *o = &w->map[j];

			PROP(m->iova + m->len <= o->iova || o->iova + o->len <= m->iova,
			     "iova ranges overlap");
		}
		for (end = 0; end < 2; end++) {
			uint64_t off = end ? m->len - 1 : 0;

			for (dir = PEGPU_DIR_TO_DEVICE; dir <= PEGPU_DIR_FROM_DEVICE; dir <<= 1) {
				ret = dart_emu_translate(w->dart, m->iova + off,
							 dir == PEGPU_DIR_TO_DEVICE ? DART_PROT_READ :
							 DART_PROT_WRITE, &gpa, &contig);
				if (m->dir & dir)
					PROP(ret == DART_OK && gpa == m->gpa + off &&
					     contig == m->len - off,
					     "mapping does not translate to its memory");
				else
					PROP(ret == DART_E_FAULT,
					     "mapping allows a direction it was not given");
			}
		}
	}
	for (i = 0; i < ngone; i++)
		if (!shadow_at(w, gone[i]))
			PROP(dart_emu_translate(w->dart, gone[i], DART_PROT_READ, NULL, NULL) ==
			     DART_E_FAULT && dart_emu_translate(w->dart, gone[i], DART_PROT_WRITE,
								NULL, NULL) == DART_E_FAULT,
			     "unmapped iova 0x%llx still translates", (unsigned long long)gone[i]);
}

/*
 * Run the model over a batch the device just processed and compare.  The
 * device writes only status (and a MAP's iova) into an entry, so op,
 * flags, addr, len and an UNMAP's iova still read as the guest wrote them.
 */
static void model_doorbell(struct world *w, uint64_t gpa, uint32_t ret, const uint8_t *hdr_before)
{
	uint32_t magic = ld32(hdr_before), count = ld32(hdr_before + 4), want_bst = PEGPU_ST_OK;
	uint64_t reserved = ld64(hdr_before + 24);
	uint32_t nr_ok = 0, i, ngone = 0;
	uint64_t gone[64];
	uint8_t *hdr, *e;

	w->cnt[PEGPU_DMA_CNT_DOORBELLS]++;
	if (gpa % PEGPU_BATCH_ALIGN) {
		want_bst = PEGPU_ST_BAD_ALIGN;
		goto batch_fail;
	}
	hdr = ram_ptr(w, gpa, 32);
	if (!hdr || gpa > UINT64_MAX - 32) {
		want_bst = PEGPU_ST_BATCH_NOT_RAM;
		goto batch_fail;
	}
	if (magic != PEGPU_BATCH_MAGIC || !count || count > w->lim.max_batch || reserved) {
		want_bst = PEGPU_ST_BAD_BATCH;
		PROP(ld32(hdr + 8) == PEGPU_ST_BAD_BATCH && ld32(hdr + 12) == 0,
		     "bad header not reported in the header");
		goto batch_fail;
	}
	e = ram_ptr(w, gpa + 32, (uint64_t)count * 32);
	if (!e) {
		want_bst = PEGPU_ST_BATCH_NOT_RAM;
		goto batch_fail;
	}

	for (i = 0; i < count; i++, e += 32) {
		uint16_t op = ld16(e), flags = ld16(e + 2);
		uint32_t st = ld32(e + 4), want;
		uint64_t addr = ld64(e + 8), len = ld64(e + 16), iova = ld64(e + 24);

		w->cnt[PEGPU_DMA_CNT_ENTRIES]++;
		if (op == PEGPU_OP_MAP) {
			want = predict_map(w, flags, addr, len);
			/* the backend may still be out of IOVA space */
			if (want == PEGPU_ST_OK && st == PEGPU_ST_NO_IOVA)
				want = PEGPU_ST_NO_IOVA;
			PROP(st == want, "entry %u MAP: status %u, model %u", i, st, want);
			if (st == PEGPU_ST_OK) {
				struct shadow m = { iova, addr, len, flags };

				PROP(w->nmap < MAX_MAPS, "more mappings than the cap");
				w->map[w->nmap++] = m;
				w->mapped += len;
				w->cnt[PEGPU_DMA_CNT_MAPS]++;
				/* peaks move entry by entry, not batch by batch */
				if (w->nmap > w->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS])
					w->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS] = w->nmap;
				if (w->mapped > w->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES])
					w->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES] = w->mapped;
			}
		} else if (op == PEGPU_OP_UNMAP) {
			want = predict_unmap(w, flags, iova, len);
			PROP(st == want, "entry %u UNMAP: status %u, model %u", i, st, want);
			if (st == PEGPU_ST_OK) {
				int k = shadow_find(w, iova);

				w->mapped -= w->map[k].len;
				w->map[k] = w->map[--w->nmap];
				w->cnt[PEGPU_DMA_CNT_UNMAPS]++;
				if (ngone < 64)
					gone[ngone++] = iova;
			}
		} else {
			want = PEGPU_ST_BAD_OP;
			PROP(st == want, "entry %u op %u: status %u", i, op, st);
		}
		if (st == PEGPU_ST_OK)
			nr_ok++;
		else if (is_refusal(st))
			w->cnt[PEGPU_DMA_CNT_REFUSALS]++;
		else
			w->cnt[PEGPU_DMA_CNT_ERRORS]++;
		if (st != PEGPU_ST_OK && want_bst == PEGPU_ST_OK)
			want_bst = st;
	}
	w->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS] = w->nmap;
	w->cnt[PEGPU_DMA_CNT_MAPPED_BYTES] = w->mapped;
	check_mappings(w, gone, ngone);
	PROP(ret == want_bst, "doorbell returned %u, model %u", ret, want_bst);
	PROP(ld32(hdr + 8) == want_bst && ld32(hdr + 12) == nr_ok,
	     "header says %u/%u, model %u/%u", ld32(hdr + 8), ld32(hdr + 12), want_bst, nr_ok);
	w->last_status = want_bst;
	return;

batch_fail:
	w->cnt[PEGPU_DMA_CNT_ERRORS]++;
	PROP(ret == want_bst, "doorbell returned %u, model %u", ret, want_bst);
	w->last_status = want_bst;
}

static void check_all(struct world *w)
{
	struct dart_emu_stats ds;
	unsigned int c;

	PROP(pegpu_dmadev_check(w->dev), "pegpu_dmadev_check failed");
	PROP(dart_emu_check(w->dart), "dart_emu_check failed");
	for (c = 0; c < PEGPU_DMA_CNT__COUNT; c++)
		PROP(pegpu_dmadev_counter(w->dev, c) == w->cnt[c], "counter %s: %llu, model %llu",
		     pegpu_dmadev_counter_name(c),
		     (unsigned long long)pegpu_dmadev_counter(w->dev, c),
		     (unsigned long long)w->cnt[c]);
	PROP(pegpu_dmadev_last_status(w->dev) == w->last_status, "LAST_STATUS differs");
	dart_emu_get_stats(w->dart, &ds);
	PROP(ds.live_mappings == w->nmap && ds.mapped_bytes == w->mapped,
	     "DART holds %llu/%llu, model %u/%llu", (unsigned long long)ds.live_mappings,
	     (unsigned long long)ds.mapped_bytes, w->nmap, (unsigned long long)w->mapped);
	PROP(w->nmap <= w->lim.max_mappings && w->mapped <= w->lim.max_mapped_bytes,
	     "over a cap");
}

/* ---------------------------------------------------------------- */
/* actions                                                           */
/* ---------------------------------------------------------------- */

static uint64_t pick_gpa(struct fz *f, uint64_t len)
{
	switch (fz_u8(f) % 8) {
	case 0: return R0_BASE + (uint64_t)fz_below(f, R0_SIZE / PAGE) * PAGE;
	case 1: case 2: return R1_BASE + (uint64_t)fz_below(f, R1_SIZE / PAGE) * PAGE;
	case 3: return R0_BASE + R0_SIZE - len;			/* flush with the end */
	case 4: return R0_BASE + R0_SIZE - len + PAGE;		/* one page past it */
	case 5: return R1_BASE - PAGE;				/* just below RAM */
	case 6: return UINT64_MAX - fz_u16(f) * PAGE + 1;	/* near the wrap */
	default: return fz_u64(f);
	}
}

static uint64_t pick_len(struct fz *f)
{
	switch (fz_u8(f) % 6) {
	case 0: case 1: case 2: return ((uint64_t)fz_below(f, 16) + 1) * PAGE;
	case 3: return 0;
	case 4: return fz_u16(f);				/* unaligned, small */
	default: return fz_u64(f);
	}
}

static uint16_t pick_flags(struct fz *f)
{
	uint8_t r = fz_u8(f);

	return r < 200 ? (uint16_t)(r % 3 + 1) : (uint16_t)(r & 0x0f ? r : fz_u16(f));
}

/* Fill one entry with the model's interesting values. */
static void make_entry(struct world *w, struct fz *f, uint8_t *e)
{
	uint8_t kind = fz_u8(f) % 10;
	uint64_t len, addr = 0, iova = 0;
	uint16_t op, flags;

	if (kind < 5) {			/* MAP */
		op = PEGPU_OP_MAP;
		flags = pick_flags(f);
		len = pick_len(f);
		addr = pick_gpa(f, len);
		if (fz_u8(f) % 8 == 0)
			addr |= fz_u8(f);	/* misalign */
		iova = 0x5a5a5a5a5a5a5a5aull;
	} else if (kind < 9) {		/* UNMAP */
		op = PEGPU_OP_UNMAP;
		flags = fz_u8(f) % 16 == 0 ? pick_flags(f) : 0;
		if (w->nmap && fz_u8(f) % 4) {
			const struct shadow *m = &w->map[fz_below(f, w->nmap)];

			iova = m->iova;
			len = m->len;
			switch (fz_u8(f) % 8) {
			case 0: len += PAGE; break;		/* too long */
			case 1: iova += PAGE; break;		/* inside, not the start */
			case 2: len = 0; break;
			case 3: len -= PAGE; break;		/* too short (or 0) */
			default: break;
			}
		} else {
			iova = fz_u8(f) % 2 ? DART_EMU_DEFAULT_IOVA_BASE + fz_u32(f) * PAGE :
			       fz_u64(f);
			len = pick_len(f);
		}
	} else {			/* anything */
		op = fz_u16(f);
		flags = fz_u16(f);
		addr = fz_u64(f);
		len = fz_u64(f);
		iova = fz_u64(f);
	}
	e[0] = (uint8_t)op;
	e[1] = (uint8_t)(op >> 8);
	e[2] = (uint8_t)flags;
	e[3] = (uint8_t)(flags >> 8);
	st32(e + 4, PEGPU_ST_PENDING);
	st64(e + 8, addr);
	st64(e + 16, len);
	st64(e + 24, iova);
}

static void ring(struct world *w, uint64_t gpa)
{
	uint8_t before[32] = { 0 };
	uint8_t *h = ram_ptr(w, gpa, 32);
	uint32_t ret;

	if (h)
		memcpy(before, h, 32);
	w->in_doorbell = true;
	ret = pegpu_dmadev_doorbell(w->dev, gpa);
	w->in_doorbell = false;
	model_doorbell(w, gpa, ret, before);
}

static void act_batch(struct world *w, struct fz *f)
{
	uint32_t count = fz_below(f, w->lim.max_batch + 2) + (fz_u8(f) % 16 == 0 ? 0 : 1);
	uint64_t gpa, bytes = 32 + (uint64_t)count * 32;
	uint8_t *h, *e;
	uint32_t i;

	/* a 64-byte aligned place that holds it, mostly */
	if (fz_u8(f) % 8 == 0) {
		gpa = pick_gpa(f, bytes);
	} else {
		uint64_t room = R1_SIZE - bytes;

		gpa = R1_BASE + ((fz_u32(f) % (room / 64 + 1)) * 64);
	}
	h = ram_ptr(w, gpa, bytes);
	if (!h) {
		ring(w, gpa);
		return;
	}
	st32(h, fz_u8(f) % 32 ? PEGPU_BATCH_MAGIC : fz_u32(f));
	st32(h + 4, count);
	st32(h + 8, PEGPU_ST_PENDING);
	st32(h + 12, 0);
	st64(h + 16, fz_u64(f));
	st64(h + 24, fz_u8(f) % 32 ? 0 : fz_u64(f));
	for (i = 0, e = h + 32; i < count; i++, e += 32)
		make_entry(w, f, e);
	ring(w, gpa);
}

static void act_raw_write(struct world *w, struct fz *f)
{
	uint64_t gpa = R1_BASE + fz_below(f, R1_SIZE);
	uint32_t n = fz_u8(f);
	uint8_t *p;

	if (fz_u8(f) % 2)
		gpa = R0_BASE + fz_below(f, R0_SIZE);
	while (n && !(p = ram_ptr(w, gpa, n)))
		n--;
	if (n)
		while (n--)
			*p++ = fz_u8(f);
}

static void act_translate(struct world *w, struct fz *f)
{
	uint64_t iova, gpa = 0, contig = 0, off = 0;
	unsigned int dir = fz_u8(f) % 4;
	const struct shadow *m = NULL;
	uint32_t i;
	int ret;

	if (w->nmap && fz_u8(f) % 4) {
		m = &w->map[fz_below(f, w->nmap)];
		off = fz_u32(f) % (m->len + PAGE);	/* sometimes into the guard */
		iova = m->iova + off;
		if (off >= m->len)
			m = NULL;
	} else {
		iova = fz_u8(f) % 2 ? DART_EMU_DEFAULT_IOVA_BASE + fz_u32(f) : fz_u64(f);
		for (i = 0; i < w->nmap; i++)
			if (iova >= w->map[i].iova && iova - w->map[i].iova < w->map[i].len) {
				m = &w->map[i];
				off = iova - m->iova;
			}
	}
	ret = pegpu_dmadev_translate(w->dev, iova, dir, &gpa, &contig);
	if (m && dir && (m->dir & dir) == dir) {
		PROP(ret == PEGPU_ST_OK && gpa == m->gpa + off && contig == m->len - off,
		     "translation of a live mapping wrong");
	} else {
		PROP(ret != PEGPU_ST_OK, "translation outside a live mapping succeeded");
		w->cnt[PEGPU_DMA_CNT_FAULTS]++;
	}
}

static void act_reset(struct world *w)
{
	pegpu_dmadev_reset(w->dev);
	w->nmap = 0;
	w->mapped = 0;
	w->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS] = 0;
	w->cnt[PEGPU_DMA_CNT_MAPPED_BYTES] = 0;
	w->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS] = 0;
	w->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES] = 0;
	w->cnt[PEGPU_DMA_CNT_RESETS]++;
	w->last_status = PEGPU_ST_OK;
}

static void act_regs(struct world *w, struct fz *f)
{
	static const unsigned int sizes[4] = { 1, 2, 4, 8 };
	unsigned int size = sizes[fz_u8(f) % 4];
	uint64_t off = fz_u16(f) % (PEGPU_DMA_BAR_SIZE + 16), v;
	unsigned int c;

	v = pegpu_dmadev_reg_read(w->dev, off, size);
	(void)v;
	/* the counter block reads the model's values */
	c = fz_below(f, PEGPU_DMA_CNT__COUNT);
	PROP(pegpu_dmadev_reg_read(w->dev, PEGPU_DMA_REG_COUNTERS + 8 * c, 8) == w->cnt[c],
	     "counter register %u", c);
	PROP(pegpu_dmadev_reg_read(w->dev, PEGPU_DMA_REG_MAX_MAPPINGS, 4) == w->lim.max_mappings,
	     "MAX_MAPPINGS register");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct dart_emu_config dc;
	struct world *w;
	unsigned int n, nact;

	fz_init(&f, data, size);
	if (!W) {
		W = calloc(1, sizeof(*W));
		if (!W)
			abort();
	}
	w = W;
	memset(w->map, 0, sizeof(w->map));
	memset(w->cnt, 0, sizeof(w->cnt));
	w->nmap = 0;
	w->mapped = 0;
	w->last_status = PEGPU_ST_OK;
	/* stale batches from the last input must not leak into this one */
	memset(w->r0, 0, sizeof(w->r0));
	memset(w->r1, 0, sizeof(w->r1));

	w->lim.page_shift = DART_EMU_PAGE_SHIFT;
	w->lim.max_batch = fz_below(&f, 64) + 1;
	w->lim.max_mappings = fz_below(&f, MAX_MAPS) + 1;
	w->lim.max_mapped_bytes = ((uint64_t)fz_below(&f, 256) + 1) * PAGE;
	memset(&dc, 0, sizeof(dc));
	dc.max_mappings = w->lim.max_mappings;
	dc.max_mapped_bytes = w->lim.max_mapped_bytes;
	/* a small IOVA window so the backend runs out of space now and then */
	dc.iova_size = ((uint64_t)fz_below(&f, 512) + 2) * PAGE;
	dc.seed = fz_u64(&f);
	w->dart = dart_emu_new(&dc);
	PROP(w->dart, "dart_emu_new");
	w->dev = pegpu_dmadev_new(&w->lim, &gops, w, &bops, w);
	PROP(w->dev, "pegpu_dmadev_new");

	/* as many actions as the first byte says, at least one */
	for (n = 0, nact = fz_below(&f, MAX_ACTIONS) + 1; n < nact; n++) {
		switch (fz_u8(&f) % 10) {
		case 0: case 1: case 2: case 3:
			act_batch(w, &f);
			break;
		case 4:
			act_raw_write(w, &f);
			break;
		case 5:
			/* a doorbell on whatever is there */
			ring(w, fz_u8(&f) % 2 ? R1_BASE + (fz_u32(&f) % R1_SIZE & ~63u) :
			     fz_u64(&f));
			break;
		case 6:
			act_reset(w);
			break;
		case 7: case 8:
			act_translate(w, &f);
			break;
		default:
			act_regs(w, &f);
			break;
		}
		check_all(w);
	}
	/* the reset path always unmaps everything */
	act_reset(w);
	check_all(w);
	pegpu_dmadev_free(w->dev);
	dart_emu_free(w->dart);
	return 0;
}
