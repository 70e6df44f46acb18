/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu-dma device core, driven like the QEMU device drives it: batches in a
 * fake guest RAM (a buffer at GBASE with a hole), the emu backend behind a
 * wrapper that counts calls and can misbehave on request.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pegpu/dart_emu.h"
#include "pegpu/dma_dev.h"
#include "pegpu/dma_proto.h"

#define PG		(1ull << 14)
#define GBASE		0x40000000ull
#define GSIZE		(16ull << 20)
#define GEND		(GBASE + GSIZE)
#define HOLE		(GBASE + (8ull << 20))	/* [HOLE, HOLE + HOLE_LEN) is not RAM */
#define HOLE_LEN	(1ull << 20)
#define BATCH		(GBASE + 0x1000)	/* default batch location */
#define DATA		(GBASE + (1ull << 20))	/* buffers to map live from here */
#define RD		PEGPU_DIR_TO_DEVICE
#define WR		PEGPU_DIR_FROM_DEVICE
#define BIDI		PEGPU_DIR_BIDIRECTIONAL
#define PENDING		PEGPU_ST_PENDING
#define STALE_IOVA	0x5a5a5a5a5a5a5a5aull	/* what the guest leaves in iova */

/* ---------------------------------------------------------------- */
/* little-endian accessors for building batches                      */
/* ---------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---------------------------------------------------------------- */
/* fake guest RAM                                                    */
/* ---------------------------------------------------------------- */

struct guest {
	uint8_t *mem;
	unsigned int reads, writes;
	uint64_t max_read;		/* largest single read, to see the chunking */
	int fail_read_after;		/* > 0: the n-th read from now on fails */
};

static bool g_is_ram(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (!len || gpa < GBASE || gpa - GBASE > GSIZE || len > GSIZE - (gpa - GBASE))
		return false;
	return gpa + len <= HOLE || gpa >= HOLE + HOLE_LEN;
}

static int g_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
	struct guest *g = opaque;

	g->reads++;
	if (len > g->max_read)
		g->max_read = len;
	if (g->fail_read_after > 0 && --g->fail_read_after == 0)
		return -1;
	if (!g_is_ram(g, gpa, len))
		return -1;
	memcpy(buf, g->mem + (gpa - GBASE), len);
	return 0;
}

static int g_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
	struct guest *g = opaque;

	g->writes++;
	if (!g_is_ram(g, gpa, len))
		return -1;
	memcpy(g->mem + (gpa - GBASE), buf, len);
	return 0;
}

static const struct pegpu_dmadev_guest_ops guest_ops = {
	.read = g_read,
	.write = g_write,
	.is_ram = g_is_ram,
};

static uint8_t *gptr(struct guest *g, uint64_t gpa)
{
	assert_true(gpa >= GBASE && gpa < GEND);
	return g->mem + (gpa - GBASE);
}

static void hdr_init(struct guest *g, uint64_t gpa, uint32_t count)
{
	uint8_t *p = gptr(g, gpa);

	put_le(p + 0, PEGPU_BATCH_MAGIC, 4);
	put_le(p + 4, count, 4);
	put_le(p + 8, PENDING, 4);
	put_le(p + 12, 0xdeadbeef, 4);
	put_le(p + 16, 0x0123456789abcdefull, 8);	/* cookie */
	put_le(p + 24, 0, 8);
}

static void ent_set(struct guest *g, uint64_t gpa, uint32_t i, uint16_t op, uint16_t flags,
		    uint64_t addr, uint64_t len, uint64_t iova)
{
	uint8_t *p = gptr(g, gpa + 32 + 32ull * i);

	put_le(p + 0, op, 2);
	put_le(p + 2, flags, 2);
	put_le(p + 4, PENDING, 4);
	put_le(p + 8, addr, 8);
	put_le(p + 16, len, 8);
	put_le(p + 24, iova, 8);
}

static void ent_map(struct guest *g, uint64_t gpa, uint32_t i, uint16_t dir, uint64_t addr,
		    uint64_t len)
{
	ent_set(g, gpa, i, PEGPU_OP_MAP, dir, addr, len, STALE_IOVA);
}

static void ent_unmap(struct guest *g, uint64_t gpa, uint32_t i, uint64_t iova, uint64_t len)
{
	ent_set(g, gpa, i, PEGPU_OP_UNMAP, 0, 0, len, iova);
}

static uint32_t ent_status(struct guest *g, uint64_t gpa, uint32_t i)
{
	return (uint32_t)get_le(gptr(g, gpa + 32 + 32ull * i) + 4, 4);
}

static uint64_t ent_iova(struct guest *g, uint64_t gpa, uint32_t i)
{
	return get_le(gptr(g, gpa + 32 + 32ull * i) + 24, 8);
}

static uint32_t hdr_status(struct guest *g, uint64_t gpa)
{
	return (uint32_t)get_le(gptr(g, gpa) + 8, 4);
}

static uint32_t hdr_nr_ok(struct guest *g, uint64_t gpa)
{
	return (uint32_t)get_le(gptr(g, gpa) + 12, 4);
}

/* ---------------------------------------------------------------- */
/* backend wrapper: emu underneath, counting, misbehaving on demand   */
/* ---------------------------------------------------------------- */

struct wrap {
	struct dart_emu *emu;
	unsigned int map_calls, unmap_calls, reset_calls;
	int map_ret;			/* != 0: map returns this instead of mapping */
	uint64_t map_iova;		/* != 0: map "succeeds" with this IOVA */
	int unmap_ret;			/* != 0: unmap returns this */
};

static int w_map(void *ctx, uint64_t gpa, uint64_t len, unsigned int dir, uint64_t *iova)
{
	struct wrap *w = ctx;

	w->map_calls++;
	if (w->map_ret)
		return w->map_ret;
	if (w->map_iova) {
		*iova = w->map_iova;
		return PEGPU_ST_OK;
	}
	return pegpu_dma_backend_emu.map(w->emu, gpa, len, dir, iova);
}

static int w_unmap(void *ctx, uint64_t iova, uint64_t len)
{
	struct wrap *w = ctx;

	w->unmap_calls++;
	if (w->unmap_ret)
		return w->unmap_ret;
	return pegpu_dma_backend_emu.unmap(w->emu, iova, len);
}

static int w_translate(void *ctx, uint64_t iova, unsigned int dir, uint64_t *gpa,
		       uint64_t *contig)
{
	struct wrap *w = ctx;

	return pegpu_dma_backend_emu.translate(w->emu, iova, dir, gpa, contig);
}

static void w_reset(void *ctx)
{
	struct wrap *w = ctx;

	w->reset_calls++;
	pegpu_dma_backend_emu.reset(w->emu);
}

static void w_window(void *ctx, uint64_t *base, uint64_t *size)
{
	struct wrap *w = ctx;

	pegpu_dma_backend_emu.window(w->emu, base, size);
}

static const struct pegpu_dma_backend_ops wrap_ops = {
	.name = "wrap",
	.map = w_map,
	.unmap = w_unmap,
	.translate = w_translate,
	.reset = w_reset,
	.window = w_window,
};

/* bare: no translate, reset or window */
static const struct pegpu_dma_backend_ops bare_ops = {
	.name = "bare",
	.map = w_map,
	.unmap = w_unmap,
};

/* ---------------------------------------------------------------- */
/* fixture                                                           */
/* ---------------------------------------------------------------- */

struct logbuf {
	char text[8192];
	size_t len;
	unsigned int lines;
};

static void log_sink(void *opaque, const char *fmt, va_list ap)
{
	struct logbuf *l = opaque;
	int n;

	l->lines++;
	n = vsnprintf(l->text + l->len, sizeof(l->text) - l->len, fmt, ap);
	assert_true(n > 0);
	l->len += (size_t)n;
	if (l->len >= sizeof(l->text))
		l->len = sizeof(l->text) - 1;
}

struct fx {
	struct guest g;
	struct wrap w;
	struct pegpu_dmadev *dev;
	struct logbuf log;
	struct pegpu_dmadev_limits lim;
};

static const struct pegpu_dmadev_limits default_lim = {
	.page_shift = 14,
	.max_batch = 200,	/* not a multiple of the 64-entry chunk */
	.max_mappings = 64,
	.max_mapped_bytes = 256 * PG,
};

static struct fx *fx_new_with(const struct pegpu_dmadev_limits *lim,
			      const struct dart_emu_config *ecfg,
			      const struct pegpu_dma_backend_ops *bops)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->g.mem = calloc(1, GSIZE);
	assert_non_null(f->g.mem);
	f->w.emu = dart_emu_new(ecfg);
	assert_non_null(f->w.emu);
	f->lim = *lim;
	f->dev = pegpu_dmadev_new(lim, &guest_ops, &f->g, bops, &f->w);
	assert_non_null(f->dev);
	pegpu_dmadev_set_log(f->dev, log_sink, &f->log);
	return f;
}

static struct fx *fx_new(void)
{
	return fx_new_with(&default_lim, NULL, &wrap_ops);
}

static void fx_check(struct fx *f)
{
	struct dart_emu_stats st;

	assert_true(pegpu_dmadev_check(f->dev));
	assert_true(dart_emu_check(f->w.emu));
	/* the backend holds exactly what the core thinks is live */
	dart_emu_get_stats(f->w.emu, &st);
	assert_int_equal(st.live_mappings,
			 pegpu_dmadev_counter(f->dev, PEGPU_DMA_CNT_LIVE_MAPPINGS));
	assert_int_equal(st.mapped_bytes, pegpu_dmadev_counter(f->dev, PEGPU_DMA_CNT_MAPPED_BYTES));
}

static void fx_free(struct fx *f)
{
	pegpu_dmadev_free(f->dev);
	dart_emu_free(f->w.emu);
	free(f->g.mem);
	free(f);
}

static uint64_t cnt(struct fx *f, enum pegpu_dma_counter c)
{
	return pegpu_dmadev_counter(f->dev, c);
}

/* Map one buffer through a one-entry batch; returns its IOVA. */
static uint64_t map1(struct fx *f, uint64_t addr, uint64_t len, uint16_t dir)
{
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, dir, addr, len);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 0), PEGPU_ST_OK);
	return ent_iova(&f->g, BATCH, 0);
}

static uint32_t unmap1(struct fx *f, uint64_t iova, uint64_t len)
{
	uint32_t st;

	hdr_init(&f->g, BATCH, 1);
	ent_unmap(&f->g, BATCH, 0, iova, len);
	st = pegpu_dmadev_doorbell(f->dev, BATCH);
	assert_int_equal(ent_status(&f->g, BATCH, 0), st);
	return st;
}

/* ---------------------------------------------------------------- */
/* tests                                                             */
/* ---------------------------------------------------------------- */

static void test_new_invalid(void **state)
{
	struct pegpu_dmadev_limits l;
	struct pegpu_dmadev_guest_ops go = guest_ops;
	struct pegpu_dma_backend_ops bo = wrap_ops;
	struct wrap w = { 0 };
	struct pegpu_dmadev *d;

	(void)state;
	l = default_lim; l.page_shift = 0;
	assert_null(pegpu_dmadev_new(&l, &guest_ops, NULL, &wrap_ops, &w));
	l = default_lim; l.page_shift = 40;
	assert_null(pegpu_dmadev_new(&l, &guest_ops, NULL, &wrap_ops, &w));
	l = default_lim; l.max_batch = 0;
	assert_null(pegpu_dmadev_new(&l, &guest_ops, NULL, &wrap_ops, &w));
	l = default_lim; l.max_batch = 65537;
	assert_null(pegpu_dmadev_new(&l, &guest_ops, NULL, &wrap_ops, &w));
	l = default_lim; l.max_mappings = 0;
	assert_null(pegpu_dmadev_new(&l, &guest_ops, NULL, &wrap_ops, &w));
	l = default_lim; l.max_mapped_bytes = 0;
	assert_null(pegpu_dmadev_new(&l, &guest_ops, NULL, &wrap_ops, &w));
	assert_null(pegpu_dmadev_new(NULL, &guest_ops, NULL, &wrap_ops, &w));
	assert_null(pegpu_dmadev_new(&default_lim, NULL, NULL, &wrap_ops, &w));
	assert_null(pegpu_dmadev_new(&default_lim, &guest_ops, NULL, NULL, &w));
	go.is_ram = NULL;
	assert_null(pegpu_dmadev_new(&default_lim, &go, NULL, &wrap_ops, &w));
	bo.unmap = NULL;
	assert_null(pegpu_dmadev_new(&default_lim, &guest_ops, NULL, &bo, &w));

	l = default_lim; l.max_batch = 65536; l.max_mappings = 65536;
	d = pegpu_dmadev_new(&l, &guest_ops, NULL, &bare_ops, &w);
	assert_non_null(d);
	assert_true(pegpu_dmadev_check(d));
	pegpu_dmadev_free(d);
	pegpu_dmadev_free(NULL);
}

static void test_registers(void **state)
{
	struct fx *f = fx_new();
	struct dart_emu_config ecfg;
	struct pegpu_dmadev *bare;
	const struct pegpu_dmadev *d = f->dev;
	uint64_t iova;
	unsigned int i;

	(void)state;
	dart_emu_get_config(f->w.emu, &ecfg);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAGIC, 4), PEGPU_DMA_MAGIC);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_VERSION, 4), PEGPU_DMA_VERSION);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_FEATURES, 4),
			 PEGPU_DMA_F_COUNTERS | PEGPU_DMA_F_RESET | PEGPU_DMA_F_DIRECTION);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_PAGE_SHIFT, 4), 14);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAX_BATCH, 4), 200);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAX_MAPPINGS, 4), 64);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAX_MAPPED, 8), 256 * PG);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAX_MAPPED, 4), 256 * PG);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAX_MAPPED + 4, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_IOVA_BASE, 8), ecfg.iova_base);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_IOVA_SIZE, 8), ecfg.iova_size);
	/* 4 GiB - 16 KiB: the high half is 0, the low half all but one page */
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_IOVA_SIZE, 4),
			 ecfg.iova_size & 0xffffffffu);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_IOVA_SIZE + 4, 4),
			 ecfg.iova_size >> 32);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_LAST_STATUS, 4), PEGPU_ST_OK);
	/* write-only, MANAGED_* (the QEMU shell's), unknown, misaligned, outside: 0 */
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_DOORBELL, 8), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_CONTROL, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MANAGED_BDF, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, 0x80, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, 0xffc, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAX_MAPPED + 2, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_BAR_SIZE, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, UINT64_MAX - 3, 4), 0);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_MAGIC, 3), 0);

	/* counters, after some traffic, in both widths */
	iova = map1(f, DATA, 5 * PG, BIDI);
	assert_int_equal(unmap1(f, iova, PG), PEGPU_ST_LEN_MISMATCH);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_LAST_STATUS, 4),
			 PEGPU_ST_LEN_MISMATCH);
	for (i = 0; i < PEGPU_DMA_CNT__COUNT; i++) {
		uint64_t off = PEGPU_DMA_REG_COUNTERS + 8ull * i;
		uint64_t v = pegpu_dmadev_counter(d, (enum pegpu_dma_counter)i);

		assert_int_equal(pegpu_dmadev_reg_read(d, off, 8), v);
		assert_int_equal(pegpu_dmadev_reg_read(d, off, 4), v & 0xffffffffu);
		assert_int_equal(pegpu_dmadev_reg_read(d, off + 4, 4), v >> 32);
	}
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_COUNTERS +
					       8 * PEGPU_DMA_CNT_DOORBELLS, 8), 2);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_COUNTERS +
					       8 * PEGPU_DMA_CNT_MAPPED_BYTES, 8), 5 * PG);
	assert_int_equal(pegpu_dmadev_reg_read(d, PEGPU_DMA_REG_COUNTERS +
					       8 * PEGPU_DMA_CNT__COUNT, 8), 0);
	assert_int_equal(pegpu_dmadev_counter(d, PEGPU_DMA_CNT__COUNT), 0);

	/* a backend without a window reports 0 = unknown */
	bare = pegpu_dmadev_new(&default_lim, &guest_ops, &f->g, &bare_ops, &f->w);
	assert_non_null(bare);
	assert_int_equal(pegpu_dmadev_reg_read(bare, PEGPU_DMA_REG_IOVA_BASE, 8), 0);
	assert_int_equal(pegpu_dmadev_reg_read(bare, PEGPU_DMA_REG_IOVA_SIZE, 8), 0);
	pegpu_dmadev_free(bare);
	fx_free(f);
}

static void test_map_unmap(void **state)
{
	struct fx *f = fx_new();
	uint64_t iova[3], gpa, contig;
	uint8_t cookie[8];

	(void)state;
	hdr_init(&f->g, BATCH, 3);
	ent_map(&f->g, BATCH, 0, RD, DATA, PG);
	ent_map(&f->g, BATCH, 1, WR, DATA + 4 * PG, 3 * PG);
	ent_map(&f->g, BATCH, 2, BIDI, GEND - 2 * PG, 2 * PG);	/* last pages of RAM */
	memcpy(cookie, gptr(&f->g, BATCH + 16), 8);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_OK);
	assert_int_equal(hdr_status(&f->g, BATCH), PEGPU_ST_OK);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 3);
	assert_memory_equal(cookie, gptr(&f->g, BATCH + 16), 8);	/* never touched */
	assert_int_equal(get_le(gptr(&f->g, BATCH), 4), PEGPU_BATCH_MAGIC);
	assert_int_equal(pegpu_dmadev_last_status(f->dev), PEGPU_ST_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ent_status(&f->g, BATCH, (uint32_t)i), PEGPU_ST_OK);
		iova[i] = ent_iova(&f->g, BATCH, (uint32_t)i);
		assert_int_not_equal(iova[i], STALE_IOVA);
		assert_int_equal(iova[i] % PG, 0);
	}
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_DOORBELLS), 1);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ENTRIES), 3);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPS), 3);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 3);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPPED_BYTES), 6 * PG);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPINGS), 3);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPED_BYTES), 6 * PG);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS) + cnt(f, PEGPU_DMA_CNT_REFUSALS), 0);
	assert_int_equal(f->log.lines, 0);
	fx_check(f);

	/* the device sees the buffers where the guest put them, with the right direction */
	assert_int_equal(pegpu_dmadev_translate(f->dev, iova[0] + 8, RD, &gpa, &contig),
			 PEGPU_ST_OK);
	assert_int_equal(gpa, DATA + 8);
	assert_int_equal(contig, PG - 8);
	assert_int_not_equal(pegpu_dmadev_translate(f->dev, iova[0], WR, &gpa, &contig),
			     PEGPU_ST_OK);
	assert_int_equal(pegpu_dmadev_translate(f->dev, iova[1] + PG, WR, &gpa, &contig),
			 PEGPU_ST_OK);
	assert_int_equal(gpa, DATA + 5 * PG);
	assert_int_equal(contig, 2 * PG);
	assert_int_not_equal(pegpu_dmadev_translate(f->dev, iova[1], RD, &gpa, &contig),
			     PEGPU_ST_OK);
	assert_int_equal(pegpu_dmadev_translate(f->dev, iova[2], BIDI, &gpa, &contig),
			 PEGPU_ST_OK);
	assert_int_equal(gpa, GEND - 2 * PG);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_FAULTS), 2);

	hdr_init(&f->g, BATCH, 3);
	ent_unmap(&f->g, BATCH, 0, iova[1], 3 * PG);
	ent_unmap(&f->g, BATCH, 1, iova[0], PG);
	ent_unmap(&f->g, BATCH, 2, iova[2], 2 * PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_OK);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 3);
	assert_int_equal(ent_iova(&f->g, BATCH, 0), iova[1]);	/* UNMAP leaves iova alone */
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_UNMAPS), 3);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPPED_BYTES), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPINGS), 3);
	assert_int_equal(f->w.map_calls, 3);
	assert_int_equal(f->w.unmap_calls, 3);
	assert_int_not_equal(pegpu_dmadev_translate(f->dev, iova[0], RD, &gpa, &contig),
			     PEGPU_ST_OK);
	fx_check(f);
	fx_free(f);
}

/* Doorbells that cannot write the header: status through LAST_STATUS only. */
static void test_batch_unusable(void **state)
{
	static const struct {
		uint64_t gpa;
		uint32_t count;		/* header written there, if in RAM */
		uint32_t want;
	} cases[] = {
		{ BATCH + 8, 1, PEGPU_ST_BAD_ALIGN },
		{ BATCH + 32, 1, PEGPU_ST_BAD_ALIGN },
		{ BATCH + 63, 1, PEGPU_ST_BAD_ALIGN },
		{ UINT64_MAX, 1, PEGPU_ST_BAD_ALIGN },
		{ HOLE, 1, PEGPU_ST_BATCH_NOT_RAM },			/* header in the hole */
		{ GEND, 1, PEGPU_ST_BATCH_NOT_RAM },			/* just past RAM */
		{ GBASE - 64, 1, PEGPU_ST_BATCH_NOT_RAM },		/* just before RAM */
		{ 0, 1, PEGPU_ST_BATCH_NOT_RAM },
		{ UINT64_MAX - 63, 1, PEGPU_ST_BATCH_NOT_RAM },		/* would wrap */
		{ HOLE - 64, 2, PEGPU_ST_BATCH_NOT_RAM },		/* entries into the hole */
		{ GEND - 64, 1, PEGPU_ST_OK },				/* exactly fits */
		{ GEND - 64, 2, PEGPU_ST_BATCH_NOT_RAM },		/* entries run off RAM */
		{ GEND - 128, 4, PEGPU_ST_BATCH_NOT_RAM },
	};
	struct fx *f = fx_new();
	uint8_t *snap = malloc(GSIZE);
	uint64_t errors = 0;
	size_t i;

	(void)state;
	assert_non_null(snap);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t hgpa = cases[i].gpa & ~63ull;

		if (g_is_ram(NULL, hgpa, 32)) {
			hdr_init(&f->g, hgpa, cases[i].count);
			if (g_is_ram(NULL, hgpa + 32, 32))
				ent_map(&f->g, hgpa, 0, RD, DATA, PG);
		}
		memcpy(snap, f->g.mem, GSIZE);
		f->log.lines = 0;
		assert_int_equal(pegpu_dmadev_doorbell(f->dev, cases[i].gpa), cases[i].want);
		assert_int_equal(pegpu_dmadev_last_status(f->dev), cases[i].want);
		assert_int_equal(pegpu_dmadev_reg_read(f->dev, PEGPU_DMA_REG_LAST_STATUS, 4),
				 cases[i].want);
		if (cases[i].want == PEGPU_ST_OK) {
			uint64_t iova = ent_iova(&f->g, hgpa, 0);

			assert_int_equal(unmap1(f, iova, PG), PEGPU_ST_OK);
			continue;
		}
		errors++;
		assert_memory_equal(snap, f->g.mem, GSIZE);	/* not a byte written */
		assert_int_equal(f->log.lines, 1);
		assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), errors);
	}
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_DOORBELLS), sizeof(cases) / sizeof(cases[0]) + 1);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ENTRIES), 2);
	assert_int_equal(f->w.map_calls, 1);
	fx_check(f);
	free(snap);
	fx_free(f);
}

static void test_bad_batch(void **state)
{
	struct fx *f = fx_new();
	uint8_t cookie[8];
	int i;

	(void)state;
	for (i = 0; i < 6; i++) {
		hdr_init(&f->g, BATCH, 1);
		ent_map(&f->g, BATCH, 0, RD, DATA, PG);
		switch (i) {
		case 0: put_le(gptr(&f->g, BATCH), PEGPU_BATCH_MAGIC ^ 1, 4); break;
		case 1: put_le(gptr(&f->g, BATCH), 0x42544348, 4); break;	/* byte-swapped */
		case 2: put_le(gptr(&f->g, BATCH + 4), 0, 4); break;
		case 3: put_le(gptr(&f->g, BATCH + 4), 201, 4); break;	/* max_batch + 1 */
		case 4: put_le(gptr(&f->g, BATCH + 4), 0xffffffff, 4); break;
		case 5: put_le(gptr(&f->g, BATCH + 24), 1ull << 63, 8); break;
		}
		memcpy(cookie, gptr(&f->g, BATCH + 16), 8);
		assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BAD_BATCH);
		assert_int_equal(hdr_status(&f->g, BATCH), PEGPU_ST_BAD_BATCH);
		assert_int_equal(hdr_nr_ok(&f->g, BATCH), 0);
		assert_memory_equal(cookie, gptr(&f->g, BATCH + 16), 8);
		assert_int_equal(ent_status(&f->g, BATCH, 0), PENDING);	/* entries untouched */
		assert_int_equal(ent_iova(&f->g, BATCH, 0), STALE_IOVA);
		assert_int_equal(pegpu_dmadev_last_status(f->dev), PEGPU_ST_BAD_BATCH);
		assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), (uint64_t)i + 1);
	}
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ENTRIES), 0);
	assert_int_equal(f->w.map_calls, 0);
	assert_int_equal(f->log.lines, 6);
	assert_non_null(strstr(f->log.text, "magic 0x48435443"));
	assert_non_null(strstr(f->log.text, "count 201"));
	fx_check(f);
	fx_free(f);
}

/* Every per-entry validation failure, all in one batch; none reaches the backend. */
static void test_entry_errors(void **state)
{
	static const struct {
		uint16_t op, flags;
		uint64_t addr, len, iova;
		uint32_t want;
	} e[] = {
		{ 0, RD, DATA, PG, 0, PEGPU_ST_BAD_OP },
		{ 3, RD, DATA, PG, 0, PEGPU_ST_BAD_OP },
		{ 0x0101, RD, DATA, PG, 0, PEGPU_ST_BAD_OP },	/* MAP only in the low byte */
		{ 0xffff, 0, 0, 0, 0, PEGPU_ST_BAD_OP },
		{ PEGPU_OP_MAP, 0, DATA, PG, 0, PEGPU_ST_BAD_FLAGS },
		{ PEGPU_OP_MAP, 4, DATA, PG, 0, PEGPU_ST_BAD_FLAGS },
		{ PEGPU_OP_MAP, 0x8001, DATA, PG, 0, PEGPU_ST_BAD_FLAGS },
		{ PEGPU_OP_UNMAP, RD, 0, PG, 0x100004000ull, PEGPU_ST_BAD_FLAGS },
		{ PEGPU_OP_MAP, RD, DATA + 0x1000, PG, 0, PEGPU_ST_BAD_ALIGN },
		{ PEGPU_OP_MAP, RD, DATA + 1, PG, 0, PEGPU_ST_BAD_ALIGN },
		{ PEGPU_OP_MAP, RD, DATA, 0x1000, 0, PEGPU_ST_BAD_ALIGN },
		{ PEGPU_OP_MAP, RD, DATA, PG + 1, 0, PEGPU_ST_BAD_ALIGN },
		{ PEGPU_OP_UNMAP, 0, 0, PG, 0x100001000ull, PEGPU_ST_BAD_ALIGN },
		{ PEGPU_OP_UNMAP, 0, 0, PG - 1, 0x100004000ull, PEGPU_ST_BAD_ALIGN },
		{ PEGPU_OP_MAP, RD, DATA, 0, 0, PEGPU_ST_BAD_LEN },
		{ PEGPU_OP_UNMAP, 0, 0, 0, 0x100004000ull, PEGPU_ST_BAD_LEN },
		{ PEGPU_OP_MAP, WR, UINT64_MAX - PG + 1, 2 * PG, 0, PEGPU_ST_BAD_LEN },
		/* ends exactly at 2^64: addr + len is not representable */
		{ PEGPU_OP_MAP, WR, PG, UINT64_MAX - PG + 1, 0, PEGPU_ST_BAD_LEN },
		{ PEGPU_OP_MAP, WR, 2 * PG, UINT64_MAX - PG + 1, 0, PEGPU_ST_BAD_LEN },
		{ PEGPU_OP_UNMAP, 0, 0, 2 * PG, UINT64_MAX - PG + 1, PEGPU_ST_BAD_LEN },
		{ PEGPU_OP_MAP, RD, HOLE, PG, 0, PEGPU_ST_NOT_RAM },
		{ PEGPU_OP_MAP, RD, HOLE - PG, 2 * PG, 0, PEGPU_ST_NOT_RAM },	/* into the hole */
		{ PEGPU_OP_MAP, RD, HOLE + HOLE_LEN - PG, 2 * PG, 0, PEGPU_ST_NOT_RAM },
		{ PEGPU_OP_MAP, RD, GEND - PG, 2 * PG, 0, PEGPU_ST_NOT_RAM },	/* off the end */
		{ PEGPU_OP_MAP, RD, GBASE - PG, 2 * PG, 0, PEGPU_ST_NOT_RAM },
		{ PEGPU_OP_MAP, RD, 0, PG, 0, PEGPU_ST_NOT_RAM },
		{ PEGPU_OP_MAP, RD, GBASE, 1ull << 40, 0, PEGPU_ST_NOT_RAM },
		{ PEGPU_OP_UNMAP, 0, 0, PG, 0x100004000ull, PEGPU_ST_NOT_MAPPED },
		{ PEGPU_OP_UNMAP, 0, 0, PG, 0, PEGPU_ST_NOT_MAPPED },
	};
	const uint32_t n = sizeof(e) / sizeof(e[0]);
	struct fx *f = fx_new();
	uint32_t i;

	(void)state;
	hdr_init(&f->g, BATCH, n);
	for (i = 0; i < n; i++)
		ent_set(&f->g, BATCH, i, e[i].op, e[i].flags, e[i].addr, e[i].len,
			e[i].op == PEGPU_OP_UNMAP ? e[i].iova : STALE_IOVA);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BAD_OP);
	for (i = 0; i < n; i++) {
		if (ent_status(&f->g, BATCH, i) != e[i].want)
			print_error("entry %u: status %u, want %u\n", i,
				    ent_status(&f->g, BATCH, i), e[i].want);
		assert_int_equal(ent_status(&f->g, BATCH, i), e[i].want);
		if (e[i].op == PEGPU_OP_MAP)	/* a failed MAP leaves iova alone */
			assert_int_equal(ent_iova(&f->g, BATCH, i), STALE_IOVA);
	}
	assert_int_equal(hdr_status(&f->g, BATCH), PEGPU_ST_BAD_OP);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ENTRIES), n);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), n);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_REFUSALS), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPS) + cnt(f, PEGPU_DMA_CNT_UNMAPS), 0);
	assert_int_equal(f->w.map_calls + f->w.unmap_calls, 0);
	/* a few lines say what was wrong, one more says how many were not logged */
	assert_int_equal(f->log.lines, 8 + 1);
	assert_non_null(strstr(f->log.text, "entry 0: unknown op 0"));
	assert_non_null(strstr(f->log.text, "entry 7: UNMAP flags 0x1"));
	assert_non_null(strstr(f->log.text, "21 more failed entries"));
	fx_check(f);
	fx_free(f);
}

static void test_caps(void **state)
{
	struct pegpu_dmadev_limits lim = default_lim;
	struct fx *f;
	uint64_t a, b, c[3];
	int i;

	(void)state;
	lim.max_mappings = 4;
	lim.max_mapped_bytes = 8 * PG;
	f = fx_new_with(&lim, NULL, &wrap_ops);

	/* bytes: exactly up to the cap, then refused without a backend call */
	hdr_init(&f->g, BATCH, 4);
	ent_map(&f->g, BATCH, 0, RD, DATA, 9 * PG);
	ent_map(&f->g, BATCH, 1, RD, DATA, 4 * PG);
	ent_map(&f->g, BATCH, 2, RD, DATA + 8 * PG, 4 * PG);
	ent_map(&f->g, BATCH, 3, RD, DATA + 16 * PG, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_NO_SPACE);
	assert_int_equal(ent_status(&f->g, BATCH, 0), PEGPU_ST_NO_SPACE);
	assert_int_equal(ent_status(&f->g, BATCH, 1), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 2), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 3), PEGPU_ST_NO_SPACE);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 2);
	a = ent_iova(&f->g, BATCH, 1);
	b = ent_iova(&f->g, BATCH, 2);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPPED_BYTES), 8 * PG);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_REFUSALS), 2);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), 0);
	assert_int_equal(f->w.map_calls, 2);
	fx_check(f);

	/* count: 4 live is fine, the 5th is refused (with bytes to spare) */
	assert_int_equal(unmap1(f, b, 4 * PG), PEGPU_ST_OK);
	for (i = 0; i < 3; i++)
		c[i] = map1(f, DATA + (32 + 2 * (uint64_t)i) * PG, PG, WR);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 4);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPPED_BYTES), 7 * PG);
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, WR, DATA, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_TOO_MANY);
	assert_int_equal(ent_status(&f->g, BATCH, 0), PEGPU_ST_TOO_MANY);
	/* over both caps: bytes are checked first */
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, WR, DATA, 2 * PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_NO_SPACE);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_REFUSALS), 4);
	assert_int_equal(f->w.map_calls, 5);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPINGS), 4);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPED_BYTES), 8 * PG);

	/* freeing one makes room again */
	assert_int_equal(unmap1(f, c[1], PG), PEGPU_ST_OK);
	c[1] = map1(f, DATA, PG, WR);
	(void)a;
	fx_check(f);
	fx_free(f);
}

static void test_unmap_rules(void **state)
{
	struct fx *f = fx_new(), *other = fx_new();
	uint64_t a, b, foreign, gpa, contig;

	(void)state;
	a = map1(f, DATA, 2 * PG, BIDI);
	b = map1(f, DATA + 8 * PG, PG, RD);
	/* an IOVA that is live, but on another device (its own DART) */
	do {
		foreign = map1(other, DATA, PG, RD);
	} while (foreign == a || foreign == b);

	hdr_init(&f->g, BATCH, 8);
	ent_unmap(&f->g, BATCH, 0, a, PG);		/* too short */
	ent_unmap(&f->g, BATCH, 1, a, 3 * PG);		/* too long */
	ent_unmap(&f->g, BATCH, 2, a + PG, PG);		/* inside, not the start */
	ent_unmap(&f->g, BATCH, 3, foreign, PG);
	ent_unmap(&f->g, BATCH, 4, a, 2 * PG);		/* right */
	ent_unmap(&f->g, BATCH, 5, a, 2 * PG);		/* double */
	ent_unmap(&f->g, BATCH, 6, b + 2 * PG, PG);	/* past the end */
	ent_unmap(&f->g, BATCH, 7, b, 2 * PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_LEN_MISMATCH);
	assert_int_equal(ent_status(&f->g, BATCH, 0), PEGPU_ST_LEN_MISMATCH);
	assert_int_equal(ent_status(&f->g, BATCH, 1), PEGPU_ST_LEN_MISMATCH);
	assert_int_equal(ent_status(&f->g, BATCH, 2), PEGPU_ST_NOT_MAPPED);
	assert_int_equal(ent_status(&f->g, BATCH, 3), PEGPU_ST_NOT_MAPPED);
	assert_int_equal(ent_status(&f->g, BATCH, 4), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 5), PEGPU_ST_NOT_MAPPED);
	assert_int_equal(ent_status(&f->g, BATCH, 6), PEGPU_ST_NOT_MAPPED);
	assert_int_equal(ent_status(&f->g, BATCH, 7), PEGPU_ST_LEN_MISMATCH);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 1);
	assert_int_equal(f->w.unmap_calls, 1);		/* only the right one got through */
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), 7);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 1);

	/* b survived all that */
	assert_int_equal(pegpu_dmadev_translate(f->dev, b, RD, &gpa, &contig), PEGPU_ST_OK);
	assert_int_equal(gpa, DATA + 8 * PG);
	assert_int_equal(unmap1(f, b, PG), PEGPU_ST_OK);
	assert_int_equal(unmap1(f, b, PG), PEGPU_ST_NOT_MAPPED);
	fx_check(f);
	fx_check(other);
	fx_free(other);
	fx_free(f);
}

static void test_mixed_batch(void **state)
{
	struct fx *f = fx_new();
	uint64_t iova0, iova2, iova5;

	(void)state;
	hdr_init(&f->g, BATCH, 7);
	ent_map(&f->g, BATCH, 0, RD, DATA, PG);
	ent_map(&f->g, BATCH, 1, 0, DATA + 2 * PG, PG);			/* BAD_FLAGS */
	ent_map(&f->g, BATCH, 2, WR, DATA + 4 * PG, 2 * PG);
	ent_unmap(&f->g, BATCH, 3, 0x7770000ull << 14, PG);		/* NOT_MAPPED */
	ent_map(&f->g, BATCH, 4, BIDI, HOLE, PG);			/* NOT_RAM */
	ent_map(&f->g, BATCH, 5, BIDI, DATA + 8 * PG, 4 * PG);
	ent_set(&f->g, BATCH, 6, 9, 0, 0, 0, STALE_IOVA);		/* BAD_OP */
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BAD_FLAGS);
	assert_int_equal(hdr_status(&f->g, BATCH), PEGPU_ST_BAD_FLAGS);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 3);
	assert_int_equal(ent_status(&f->g, BATCH, 0), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 1), PEGPU_ST_BAD_FLAGS);
	assert_int_equal(ent_status(&f->g, BATCH, 2), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 3), PEGPU_ST_NOT_MAPPED);
	assert_int_equal(ent_status(&f->g, BATCH, 4), PEGPU_ST_NOT_RAM);
	assert_int_equal(ent_status(&f->g, BATCH, 5), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 6), PEGPU_ST_BAD_OP);
	iova0 = ent_iova(&f->g, BATCH, 0);
	iova2 = ent_iova(&f->g, BATCH, 2);
	iova5 = ent_iova(&f->g, BATCH, 5);
	assert_int_equal(ent_iova(&f->g, BATCH, 1), STALE_IOVA);
	assert_int_equal(ent_iova(&f->g, BATCH, 4), STALE_IOVA);
	assert_true(iova0 != iova2 && iova2 != iova5 && iova0 != iova5);
	assert_int_equal(pegpu_dmadev_reg_read(f->dev, PEGPU_DMA_REG_LAST_STATUS, 4),
			 PEGPU_ST_BAD_FLAGS);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ENTRIES), 7);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPS), 3);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), 4);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_REFUSALS), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPPED_BYTES), 7 * PG);
	assert_int_equal(f->log.lines, 4);
	assert_non_null(strstr(f->log.text, "entry 4: MAP [0x40800000, +0x4000) not guest RAM"));
	fx_check(f);

	/* a good batch afterwards resets LAST_STATUS */
	hdr_init(&f->g, BATCH, 3);
	ent_unmap(&f->g, BATCH, 0, iova5, 4 * PG);
	ent_unmap(&f->g, BATCH, 1, iova0, PG);
	ent_unmap(&f->g, BATCH, 2, iova2, 2 * PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_OK);
	assert_int_equal(pegpu_dmadev_reg_read(f->dev, PEGPU_DMA_REG_LAST_STATUS, 4), PEGPU_ST_OK);
	fx_check(f);
	fx_free(f);
}

/* A full batch crosses several 64-entry chunks; reads stay chunk sized. */
static void test_big_batch(void **state)
{
	struct fx *f = fx_new();
	uint64_t iova[200];
	uint32_t i;

	(void)state;
	hdr_init(&f->g, BATCH, 200);
	for (i = 0; i < 200; i++)
		ent_map(&f->g, BATCH, i, (uint16_t)(1 + i % 3), DATA + 2ull * i * PG, PG);
	f->g.max_read = 0;
	/* the live-mappings cap (64) cuts in part way, every status is still written */
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_TOO_MANY);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 64);
	assert_true(f->g.max_read <= 64 * 32);
	assert_true(f->g.reads >= 1 + 4);
	for (i = 0; i < 200; i++)
		assert_int_equal(ent_status(&f->g, BATCH, i),
				 i < 64 ? PEGPU_ST_OK : PEGPU_ST_TOO_MANY);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 64);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_REFUSALS), 136);
	assert_int_equal(f->log.lines, 8 + 1);
	fx_check(f);
	fx_free(f);

	/* again with room for all of them, then unmap them all in one batch */
	{
		struct pegpu_dmadev_limits lim = default_lim;

		lim.max_mappings = 1000;
		f = fx_new_with(&lim, NULL, &wrap_ops);
	}
	hdr_init(&f->g, BATCH, 200);
	for (i = 0; i < 200; i++)
		ent_map(&f->g, BATCH, i, BIDI, DATA + 2ull * i * PG, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_OK);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 200);
	for (i = 0; i < 200; i++)
		iova[i] = ent_iova(&f->g, BATCH, i);
	hdr_init(&f->g, BATCH, 200);
	for (i = 0; i < 200; i++)
		ent_unmap(&f->g, BATCH, i, iova[199 - i], PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_OK);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 200);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPINGS), 200);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ENTRIES), 400);
	fx_check(f);

	/* a chunk that cannot be read any more: earlier entries done, the rest PENDING */
	hdr_init(&f->g, BATCH, 130);
	for (i = 0; i < 130; i++)
		ent_map(&f->g, BATCH, i, RD, DATA + 2ull * i * PG, PG);
	f->g.fail_read_after = 3;	/* header, chunk 0, then chunk 1 fails */
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BATCH_NOT_RAM);
	f->g.fail_read_after = 0;
	assert_int_equal(hdr_status(&f->g, BATCH), PEGPU_ST_BATCH_NOT_RAM);
	assert_int_equal(hdr_nr_ok(&f->g, BATCH), 64);
	assert_int_equal(ent_status(&f->g, BATCH, 63), PEGPU_ST_OK);
	assert_int_equal(ent_status(&f->g, BATCH, 64), PENDING);
	assert_int_equal(ent_status(&f->g, BATCH, 129), PENDING);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 64);
	fx_check(f);
	fx_free(f);
}

static void test_reset(void **state)
{
	struct fx *f = fx_new();
	struct dart_emu_stats st;
	uint64_t iova[5], gpa, contig;
	int i;

	(void)state;
	for (i = 0; i < 5; i++)
		iova[i] = map1(f, DATA + 8ull * (uint64_t)i * PG, (uint64_t)(i + 1) * PG, BIDI);
	assert_int_equal(unmap1(f, iova[4], PG), PEGPU_ST_LEN_MISMATCH);
	pegpu_dmadev_reset(f->dev);
	assert_int_equal(f->w.unmap_calls, 5);
	assert_int_equal(f->w.reset_calls, 1);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_RESETS), 1);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPPED_BYTES), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPINGS), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPED_BYTES), 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPS), 5);		/* totals are kept */
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_DOORBELLS), 6);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), 1);
	assert_int_equal(pegpu_dmadev_last_status(f->dev), PEGPU_ST_OK);
	dart_emu_get_stats(f->w.emu, &st);
	assert_int_equal(st.live_mappings, 0);
	assert_int_equal(st.unmaps, 5);		/* each unmapped through the backend */
	fx_check(f);
	for (i = 0; i < 5; i++) {
		assert_int_not_equal(pegpu_dmadev_translate(f->dev, iova[i], RD, &gpa, &contig),
				     PEGPU_ST_OK);
		assert_int_equal(unmap1(f, iova[i], (uint64_t)(i + 1) * PG), PEGPU_ST_NOT_MAPPED);
	}
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_FAULTS), 5);
	iova[0] = map1(f, DATA, 3 * PG, RD);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPINGS), 1);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_PEAK_MAPPED_BYTES), 3 * PG);
	pegpu_dmadev_reset(f->dev);
	pegpu_dmadev_reset(f->dev);		/* idempotent */
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_RESETS), 3);
	fx_check(f);
	fx_free(f);
}

static void test_backend_failures(void **state)
{
	struct dart_emu_config tight = { .max_mappings = 2 };
	struct fx *f = fx_new();
	uint64_t a, b;

	(void)state;
	a = map1(f, DATA, PG, RD);

	f->w.map_ret = PEGPU_ST_BACKEND;
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, RD, DATA, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BACKEND);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), 1);
	f->w.map_ret = PEGPU_ST_NO_IOVA;	/* a refusal, not an error */
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, RD, DATA, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_NO_IOVA);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_REFUSALS), 1);
	f->w.map_ret = -5;			/* garbage: reported as BACKEND */
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, RD, DATA, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BACKEND);
	f->w.map_ret = PEGPU_ST_BATCH_NOT_RAM;	/* not an entry status */
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, RD, DATA, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BACKEND);
	f->w.map_ret = 0;

	/* success with an unusable IOVA: released again, entry fails */
	f->w.map_iova = 0x123456789001ull;
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, RD, DATA, PG);
	f->w.unmap_calls = 0;
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BACKEND);
	assert_int_equal(f->w.unmap_calls, 1);
	/* success with an IOVA that is already live: the table stays right */
	f->w.map_iova = a;
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, RD, DATA, 2 * PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BACKEND);
	f->w.map_iova = 0;
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 1);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), 5);
	fx_check(f);

	/* a failed backend unmap keeps the mapping accounted; a retry works */
	f->w.unmap_ret = PEGPU_ST_BACKEND;
	assert_int_equal(unmap1(f, a, PG), PEGPU_ST_BACKEND);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 1);
	f->w.unmap_ret = 0;
	assert_int_equal(unmap1(f, a, PG), PEGPU_ST_OK);
	fx_check(f);
	fx_free(f);

	/* a backend with tighter caps than the core: its refusal is passed on */
	f = fx_new_with(&default_lim, &tight, &wrap_ops);
	a = map1(f, DATA, PG, RD);
	b = map1(f, DATA + 2 * PG, PG, RD);
	hdr_init(&f->g, BATCH, 1);
	ent_map(&f->g, BATCH, 0, RD, DATA + 4 * PG, PG);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_TOO_MANY);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_REFUSALS), 1);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), 2);
	assert_int_equal(unmap1(f, a, PG), PEGPU_ST_OK);
	assert_int_equal(unmap1(f, b, PG), PEGPU_ST_OK);
	fx_check(f);
	fx_free(f);
}

static void test_translate(void **state)
{
	struct fx *f = fx_new();
	struct pegpu_dmadev *bare;
	uint64_t iova, gpa = 0, contig = 0;

	(void)state;
	iova = map1(f, DATA, 4 * PG, BIDI);
	assert_int_equal(pegpu_dmadev_translate(f->dev, iova + 3 * PG + 7, WR, &gpa, &contig),
			 PEGPU_ST_OK);
	assert_int_equal(gpa, DATA + 3 * PG + 7);
	assert_int_equal(contig, PG - 7);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_FAULTS), 0);
	assert_int_equal(pegpu_dmadev_translate(f->dev, iova, 0, &gpa, &contig),
			 PEGPU_ST_BAD_FLAGS);
	assert_int_equal(pegpu_dmadev_translate(f->dev, iova, 4, &gpa, &contig),
			 PEGPU_ST_BAD_FLAGS);
	assert_int_equal(pegpu_dmadev_translate(f->dev, iova + 4 * PG, RD, &gpa, &contig),
			 PEGPU_ST_NOT_MAPPED);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_FAULTS), 3);
	pegpu_dmadev_count_fault(f->dev);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_FAULTS), 4);

	bare = pegpu_dmadev_new(&default_lim, &guest_ops, &f->g, &bare_ops, &f->w);
	assert_non_null(bare);
	assert_int_equal(pegpu_dmadev_translate(bare, iova, RD, &gpa, &contig), PEGPU_ST_BACKEND);
	assert_int_equal(pegpu_dmadev_counter(bare, PEGPU_DMA_CNT_FAULTS), 1);
	pegpu_dmadev_reset(bare);	/* no reset op: fine */
	assert_int_equal(pegpu_dmadev_counter(bare, PEGPU_DMA_CNT_RESETS), 1);
	pegpu_dmadev_free(bare);
	fx_free(f);
}

/* The plain emu backend, no wrapper: what the QEMU device uses on Linux. */
static void test_emu_backend(void **state)
{
	struct dart_emu_config ecfg = { .seed = 42 };
	struct dart_emu *emu = dart_emu_new(&ecfg);
	struct guest g = { .mem = calloc(1, GSIZE) };
	struct pegpu_dmadev *d;
	uint64_t iova, gpa, contig;

	(void)state;
	assert_non_null(emu);
	assert_non_null(g.mem);
	d = pegpu_dmadev_new(&default_lim, &guest_ops, &g, &pegpu_dma_backend_emu, emu);
	assert_non_null(d);
	assert_string_equal(pegpu_dma_backend_emu.name, "emu");
	hdr_init(&g, BATCH, 1);
	ent_map(&g, BATCH, 0, RD, DATA, 2 * PG);
	assert_int_equal(pegpu_dmadev_doorbell(d, BATCH), PEGPU_ST_OK);
	iova = ent_iova(&g, BATCH, 0);
	assert_int_equal(pegpu_dmadev_translate(d, iova + PG, RD, &gpa, &contig), PEGPU_ST_OK);
	assert_int_equal(gpa, DATA + PG);
	assert_int_equal(contig, PG);
	assert_int_equal(pegpu_dmadev_translate(d, iova, WR, &gpa, &contig), PEGPU_ST_NOT_MAPPED);
	/* the backend's own checks, called directly */
	assert_int_equal(pegpu_dma_backend_emu.map(emu, DATA, PG, 0, &iova), PEGPU_ST_BAD_FLAGS);
	assert_int_equal(pegpu_dma_backend_emu.map(emu, DATA + 1, PG, RD, &iova),
			 PEGPU_ST_BACKEND);
	assert_int_equal(pegpu_dma_backend_emu.unmap(emu, 0, PG), PEGPU_ST_NOT_MAPPED);
	assert_int_equal(pegpu_dma_backend_emu.unmap(emu, ent_iova(&g, BATCH, 0), PG),
			 PEGPU_ST_LEN_MISMATCH);
	assert_int_equal(pegpu_dma_backend_emu.translate(emu, 0, 0, &gpa, &contig),
			 PEGPU_ST_BAD_FLAGS);
	pegpu_dmadev_reset(d);
	assert_true(pegpu_dmadev_check(d));
	assert_true(dart_emu_check(emu));
	{
		struct dart_emu_stats st;

		dart_emu_get_stats(emu, &st);
		assert_int_equal(st.live_mappings, 0);
	}
	pegpu_dmadev_free(d);
	dart_emu_free(emu);
	free(g.mem);
}

static void test_no_log(void **state)
{
	struct fx *f = fx_new();
	int i;

	(void)state;
	pegpu_dmadev_set_log(f->dev, NULL, NULL);
	hdr_init(&f->g, BATCH, 20);
	for (i = 0; i < 20; i++)
		ent_set(&f->g, BATCH, (uint32_t)i, 7, 0, 0, 0, 0);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), PEGPU_ST_BAD_OP);
	assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH + 1), PEGPU_ST_BAD_ALIGN);
	assert_int_equal(f->log.lines, 0);
	assert_int_equal(cnt(f, PEGPU_DMA_CNT_ERRORS), 21);
	fx_free(f);
}

/* ---------------------------------------------------------------- */
/* random batches against a reference model                          */
/* ---------------------------------------------------------------- */

#define RM_MAPS		24u
#define RM_BYTES	(48 * PG)
#define RM_PENDING	(1ull << 63)	/* model: MAP in this batch, IOVA not known yet */
#define RM_NOWHERE	(1ull << 40)	/* outside the emu's IOVA window */

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

struct rm_map {
	uint64_t iova, len;
};

struct rmodel {
	struct rm_map m[RM_MAPS];
	uint32_t n;
	uint64_t bytes;
	uint64_t cnt[PEGPU_DMA_CNT__COUNT];
};

static int rm_find(const struct rmodel *m, uint64_t iova)
{
	uint32_t i;

	for (i = 0; i < m->n; i++)
		if (m->m[i].iova == iova)
			return (int)i;
	return -1;
}

/* One random entry; returns the status the model predicts. */
static uint32_t rm_entry(struct fx *f, struct rmodel *m, uint32_t i, uint64_t *rng,
			 bool *is_map, uint64_t *len_out)
{
	uint64_t r = xorshift64(rng), addr, len, iova;
	unsigned int kind = (unsigned int)(r % 20);
	uint16_t dir = (uint16_t)(1 + (r >> 8) % 3);
	int k;

	*is_map = false;
	addr = GBASE + ((r >> 12) % (GSIZE / PG)) * PG;
	len = (1 + (r >> 32) % 4) * PG;
	if (kind < 9) {
		/* a MAP that is valid unless it runs into the hole or off RAM */
		ent_map(&f->g, BATCH, i, dir, addr, len);
		if (!g_is_ram(NULL, addr, len))
			return PEGPU_ST_NOT_RAM;
		if (len > RM_BYTES - m->bytes)
			return PEGPU_ST_NO_SPACE;
		if (m->n >= RM_MAPS)
			return PEGPU_ST_TOO_MANY;
		*is_map = true;
		*len_out = len;
		/* the IOVA is known after the doorbell: a placeholder until then */
		m->m[m->n++] = (struct rm_map){ RM_PENDING | i, len };
		m->bytes += len;
		return PEGPU_ST_OK;
	}
	if (kind < 15) {
		/* UNMAP of a live mapping, sometimes wrongly */
		k = m->n ? (int)((r >> 40) % m->n) : -1;
		if (k < 0 || (m->m[k].iova & RM_PENDING)) {
			/* none, or mapped earlier in this batch: the guest cannot know it yet */
			ent_unmap(&f->g, BATCH, i, RM_NOWHERE, PG);
			return PEGPU_ST_NOT_MAPPED;
		}
		iova = m->m[k].iova;
		if ((r >> 50) % 4 == 0) {
			ent_unmap(&f->g, BATCH, i, iova, m->m[k].len + PG);
			return PEGPU_ST_LEN_MISMATCH;
		}
		if ((r >> 52) % 4 == 0) {
			ent_unmap(&f->g, BATCH, i, iova + PG, m->m[k].len);
			return rm_find(m, iova + PG) >= 0 ? PEGPU_ST_LEN_MISMATCH :
							     PEGPU_ST_NOT_MAPPED;
		}
		ent_unmap(&f->g, BATCH, i, iova, m->m[k].len);
		m->bytes -= m->m[k].len;
		m->m[k] = m->m[--m->n];
		return PEGPU_ST_OK;
	}
	switch (kind) {
	case 15:
		ent_set(&f->g, BATCH, i, (uint16_t)(r >> 16), dir, addr, len, 0);
		if ((uint16_t)(r >> 16) == PEGPU_OP_MAP || (uint16_t)(r >> 16) == PEGPU_OP_UNMAP)
			ent_set(&f->g, BATCH, i, 0, dir, addr, len, 0);
		return PEGPU_ST_BAD_OP;
	case 16:
		ent_map(&f->g, BATCH, i, (uint16_t)(dir << 2), addr, len);
		return PEGPU_ST_BAD_FLAGS;
	case 17:
		ent_map(&f->g, BATCH, i, dir, addr + ((r >> 56) | 1), len);
		return PEGPU_ST_BAD_ALIGN;
	case 18:
		ent_map(&f->g, BATCH, i, dir, addr, 0);
		return PEGPU_ST_BAD_LEN;
	default:
		/* random page-aligned IOVAs beyond the 4 GiB window: never live */
		ent_unmap(&f->g, BATCH, i, RM_NOWHERE | ((r >> 20) << 14), PG);
		return PEGPU_ST_NOT_MAPPED;
	}
}

static void test_random_vs_model(void **state)
{
	struct pegpu_dmadev_limits lim = default_lim;
	struct rmodel *m = calloc(1, sizeof(*m));
	struct dart_emu_config ecfg = { .iova_size = 1024 * PG, .seed = 77 };
	uint64_t rng = 0x243f6a8885a308d3ull;
	struct fx *f;
	int batch;

	(void)state;
	assert_non_null(m);
	lim.max_mappings = RM_MAPS;
	lim.max_mapped_bytes = RM_BYTES;
	/* a small window keeps the per-batch dart_emu_check cheap */
	f = fx_new_with(&lim, &ecfg, &wrap_ops);
	for (batch = 0; batch < 3000; batch++) {
		uint32_t count = 1 + (uint32_t)(xorshift64(&rng) % 40), i, nr_ok = 0;
		uint32_t want[40], first_bad = PEGPU_ST_OK;
		bool is_map[40];
		uint64_t lens[40];

		if (xorshift64(&rng) % 200 == 0) {
			pegpu_dmadev_reset(f->dev);
			m->n = 0;
			m->bytes = 0;
			m->cnt[PEGPU_DMA_CNT_RESETS]++;
			m->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS] = 0;
			m->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES] = 0;
			fx_check(f);
			continue;
		}
		hdr_init(&f->g, BATCH, count);
		for (i = 0; i < count; i++) {
			want[i] = rm_entry(f, m, i, &rng, &is_map[i], &lens[i]);
			m->cnt[PEGPU_DMA_CNT_ENTRIES]++;
			if (want[i] == PEGPU_ST_OK) {
				nr_ok++;
				m->cnt[is_map[i] ? PEGPU_DMA_CNT_MAPS : PEGPU_DMA_CNT_UNMAPS]++;
			} else if (want[i] == PEGPU_ST_NO_SPACE || want[i] == PEGPU_ST_TOO_MANY) {
				m->cnt[PEGPU_DMA_CNT_REFUSALS]++;
			} else {
				m->cnt[PEGPU_DMA_CNT_ERRORS]++;
			}
			if (want[i] != PEGPU_ST_OK && first_bad == PEGPU_ST_OK)
				first_bad = want[i];
			if (m->n > m->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS])
				m->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS] = m->n;
			if (m->bytes > m->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES])
				m->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES] = m->bytes;
		}
		m->cnt[PEGPU_DMA_CNT_DOORBELLS]++;
		assert_int_equal(pegpu_dmadev_doorbell(f->dev, BATCH), first_bad);
		assert_int_equal(hdr_status(&f->g, BATCH), first_bad);
		assert_int_equal(hdr_nr_ok(&f->g, BATCH), nr_ok);
		for (i = 0; i < count; i++) {
			assert_int_equal(ent_status(&f->g, BATCH, i), want[i]);
			if (is_map[i]) {
				/* fill in the IOVA of the model's matching placeholder */
				uint64_t iova = ent_iova(&f->g, BATCH, i);
				int k = rm_find(m, RM_PENDING | i);

				assert_true(k >= 0);
				assert_true(rm_find(m, iova) < 0);
				assert_int_equal(m->m[k].len, lens[i]);
				m->m[k].iova = iova;
			}
		}
		for (i = 0; i < PEGPU_DMA_CNT__COUNT; i++) {
			if (i == PEGPU_DMA_CNT_LIVE_MAPPINGS || i == PEGPU_DMA_CNT_MAPPED_BYTES ||
			    i == PEGPU_DMA_CNT_FAULTS)
				continue;
			assert_int_equal(cnt(f, (enum pegpu_dma_counter)i), m->cnt[i]);
		}
		assert_int_equal(cnt(f, PEGPU_DMA_CNT_LIVE_MAPPINGS), m->n);
		assert_int_equal(cnt(f, PEGPU_DMA_CNT_MAPPED_BYTES), m->bytes);
		fx_check(f);
	}
	assert_true(m->cnt[PEGPU_DMA_CNT_MAPS] > 5000);
	assert_true(m->cnt[PEGPU_DMA_CNT_UNMAPS] > 2000);
	assert_true(m->cnt[PEGPU_DMA_CNT_REFUSALS] > 100);
	fx_free(f);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_invalid),
		cmocka_unit_test(test_registers),
		cmocka_unit_test(test_map_unmap),
		cmocka_unit_test(test_batch_unusable),
		cmocka_unit_test(test_bad_batch),
		cmocka_unit_test(test_entry_errors),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_unmap_rules),
		cmocka_unit_test(test_mixed_batch),
		cmocka_unit_test(test_big_batch),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_backend_failures),
		cmocka_unit_test(test_translate),
		cmocka_unit_test(test_emu_backend),
		cmocka_unit_test(test_no_log),
		cmocka_unit_test(test_random_vs_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
