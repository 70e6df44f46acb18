/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trace replay through the coalescer, the device core and the DART
 * emulator (include/pegpu/dma_replay.h).
 *
 * The "driver" half below mirrors guest/kmod/pegpu_dma_ops.c and
 * pegpu_dma_batch.c function by function (map_range, unmap_range, map_sg
 * with its chunking, resolve, cancel and rollback, unmap_sg,
 * release_all), minus what user space cannot have (locks, cache syncs,
 * DMA masks).  The batch buffer lives in a fake guest RAM and the device
 * reads it through the same guest ops QEMU gives it, so doorbell counts
 * and batch contents are the ones the real stack produces.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pegpu/dma_replay.h"

#define ENT_SIZE	32u
#define HDR_SIZE	32u
#define DMA_ERROR	UINT64_MAX	/* DMA_MAPPING_ERROR */
/* driver-side statuses beyond the protocol's, as in pegpu_dma_priv.h */
#define XST_FULL	0x100u
#define XST_INVAL	0x101u
#define XST_BROKEN	0x103u
#define XST_NO_REPLY	0x104u

struct rseg {
	uint64_t dma;
	uint64_t len;
};

/* A buffer the trace has mapped (mapped or not: failed maps stay for their UNMAP). */
struct rbuf {
	uint64_t id;
	uint64_t bytes;
	uint32_t nseg;
	uint8_t kind;
	uint8_t dir;
	bool mapped;
	struct rseg *seg;	/* nseg entries; &one for single buffers */
	struct rseg one;
};

struct id_slot {
	uint64_t id;
	struct rbuf *b;		/* NULL: empty */
};

/* A scatterlist being collected, and map_sg's per-entry state. */
struct sgent {
	uint64_t phys;
	uint64_t len;
	uint64_t dma;		/* DMA_ERROR: failed / unresolved */
	struct pgc_ref ref;	/* the stash */
	bool resolved;
};

/* Per batch slot, as struct pegpu_dma_slot. */
struct bslot {
	uint32_t rec;
	uint32_t status;
	uint64_t iova;
	uint64_t len;
	struct pgc_ref ref;
};

struct pegpu_replay {
	struct pegpu_replay_config cfg;
	struct pegpu_replay_stats st;

	/* host */
	struct dart_emu *dart;
	struct pegpu_dmadev *dev;

	/* fake guest RAM: only the batch buffer is backed */
	uint8_t *bmem;
	uint64_t batch_gpa;
	uint64_t batch_bytes;

	/* driver */
	struct pgc pgc;
	void *pgc_mem;
	uint32_t batch_cap;
	uint32_t nent;
	uint64_t seq;
	struct bslot *slot;
	uint64_t page_mask;

	/* trace state */
	struct pegpu_trace_seq tseq;
	int dead;		/* sticky error */
	struct id_slot *ids;
	uint64_t id_mask;
	uint64_t nids;
	struct sgent *sg;
	uint32_t nsg;
	uint32_t sg_cap;
	struct pegpu_trace_event sg_first;
	bool sg_skip;		/* the list in progress is flagged FAILED */
	uint64_t baseline_mapped;	/* baseline: bytes of exact mappings */
};

static void st64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void st32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* ---------------------------------------------------------------- */
/* fake guest RAM                                                    */
/* ---------------------------------------------------------------- */

static bool ram_is_ram(void *opaque, uint64_t gpa, uint64_t len)
{
	const struct pegpu_replay *r = opaque;

	return len && gpa >= r->cfg.ram_base && gpa - r->cfg.ram_base < r->cfg.ram_size &&
	       len <= r->cfg.ram_size - (gpa - r->cfg.ram_base);
}

/* The device only ever needs the batch buffer; anything else is a bug. */
static uint8_t *ram_ptr(struct pegpu_replay *r, uint64_t gpa, uint64_t len)
{
	if (gpa < r->batch_gpa || gpa - r->batch_gpa > r->batch_bytes ||
	    len > r->batch_bytes - (gpa - r->batch_gpa)) {
		r->st.guest_faults++;
		return NULL;
	}
	return r->bmem + (gpa - r->batch_gpa);
}

static int ram_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
	uint8_t *p = ram_ptr(opaque, gpa, len);

	if (!p)
		return -1;
	memcpy(buf, p, len);
	return 0;
}

static int ram_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
	uint8_t *p = ram_ptr(opaque, gpa, len);

	if (!p)
		return -1;
	memcpy(p, buf, len);
	return 0;
}

/*
 * The emu backend behind a counter: the DART may refuse for IOVA space
 * (fragmentation), but must never see a request over its caps, because
 * the device is supposed to refuse those itself before asking.
 */
static int wrap_map(void *ctx, uint64_t gpa, uint64_t len, unsigned int dir, uint64_t *iova)
{
	struct pegpu_replay *r = ctx;
	int ret = pegpu_dma_backend_emu.map(r->dart, gpa, len, dir, iova);

	if (ret == PEGPU_ST_NO_IOVA)
		r->st.no_iova++;
	else if (ret == PEGPU_ST_NO_SPACE || ret == PEGPU_ST_TOO_MANY)
		r->st.dart_cap_refusals++;
	return ret;
}

static int wrap_unmap(void *ctx, uint64_t iova, uint64_t len)
{
	struct pegpu_replay *r = ctx;

	return pegpu_dma_backend_emu.unmap(r->dart, iova, len);
}

static int wrap_translate(void *ctx, uint64_t iova, unsigned int dir, uint64_t *gpa,
			  uint64_t *contig)
{
	struct pegpu_replay *r = ctx;

	return pegpu_dma_backend_emu.translate(r->dart, iova, dir, gpa, contig);
}

static void wrap_reset(void *ctx)
{
	struct pegpu_replay *r = ctx;

	pegpu_dma_backend_emu.reset(r->dart);
}

static void wrap_window(void *ctx, uint64_t *base, uint64_t *size)
{
	struct pegpu_replay *r = ctx;

	pegpu_dma_backend_emu.window(r->dart, base, size);
}

static const struct pegpu_dma_backend_ops wrap_ops = {
	.name = "emu",
	.map = wrap_map,
	.unmap = wrap_unmap,
	.translate = wrap_translate,
	.reset = wrap_reset,
	.window = wrap_window,
};

static const struct pegpu_dmadev_guest_ops ram_ops = {
	.read = ram_read,
	.write = ram_write,
	.is_ram = ram_is_ram,
};

/* pgc's cluster_ok: the kmod maps a whole cluster only if it is all RAM. */
static bool cluster_ok(void *ctx, uint64_t base, uint64_t size)
{
	return ram_is_ram(ctx, base, size);
}

/* ---------------------------------------------------------------- */
/* the batch buffer and the doorbell (pegpu_dma_batch.c)             */
/* ---------------------------------------------------------------- */

static uint8_t *ent_ptr(struct pegpu_replay *r, uint32_t k)
{
	return r->bmem + HDR_SIZE + (size_t)k * ENT_SIZE;
}

static uint32_t ent_status(struct pegpu_replay *r, uint32_t k)
{
	return ld32(ent_ptr(r, k) + offsetof(struct pegpu_dma_entry, status));
}

static uint64_t ent_iova(struct pegpu_replay *r, uint32_t k)
{
	return ld64(ent_ptr(r, k) + offsetof(struct pegpu_dma_entry, iova));
}

static uint64_t ent_len(struct pegpu_replay *r, uint32_t k)
{
	return ld64(ent_ptr(r, k) + offsetof(struct pegpu_dma_entry, len));
}

static uint32_t batch_add(struct pegpu_replay *r, uint16_t op, uint16_t flags, uint64_t addr,
			  uint64_t len, uint64_t iova)
{
	uint8_t *e = ent_ptr(r, r->nent);

	st16(e + offsetof(struct pegpu_dma_entry, op), op);
	st16(e + offsetof(struct pegpu_dma_entry, flags), flags);
	st32(e + offsetof(struct pegpu_dma_entry, status), PEGPU_ST_PENDING);
	st64(e + offsetof(struct pegpu_dma_entry, addr), addr);
	st64(e + offsetof(struct pegpu_dma_entry, len), len);
	st64(e + offsetof(struct pegpu_dma_entry, iova), iova);
	return r->nent++;
}

static bool batch_full(const struct pegpu_replay *r)
{
	return r->nent >= r->batch_cap;
}

/* pegpu_batch_submit(): one doorbell; afterwards every status is final. */
static uint32_t batch_submit(struct pegpu_replay *r)
{
	uint8_t *h = r->bmem;
	uint32_t n = r->nent, st, i;

	if (!n)
		return PEGPU_ST_OK;
	st32(h + offsetof(struct pegpu_dma_batch_hdr, magic), PEGPU_BATCH_MAGIC);
	st32(h + offsetof(struct pegpu_dma_batch_hdr, count), n);
	st32(h + offsetof(struct pegpu_dma_batch_hdr, status), PEGPU_ST_PENDING);
	st32(h + offsetof(struct pegpu_dma_batch_hdr, nr_ok), 0);
	st64(h + offsetof(struct pegpu_dma_batch_hdr, cookie), ++r->seq);
	st64(h + offsetof(struct pegpu_dma_batch_hdr, reserved), 0);

	pegpu_dmadev_doorbell(r->dev, r->batch_gpa);
	r->nent = 0;

	st = ld32(h + offsetof(struct pegpu_dma_batch_hdr, status));
	if (st == PEGPU_ST_PENDING) {
		st = pegpu_dmadev_last_status(r->dev);
		if (st == PEGPU_ST_OK || st == PEGPU_ST_PENDING)
			st = XST_NO_REPLY;
	}
	for (i = 0; i < n; i++) {
		if (ent_status(r, i) == PEGPU_ST_PENDING)
			st32(ent_ptr(r, i) + offsetof(struct pegpu_dma_entry, status),
			     st == PEGPU_ST_OK ? XST_NO_REPLY : st);
	}
	return st;
}

static void flush_unmaps(struct pegpu_replay *r)
{
	uint32_t n = r->nent, i;

	if (!n)
		return;
	if (batch_submit(r) == PEGPU_ST_OK)
		return;
	for (i = 0; i < n; i++)
		if (ent_status(r, i) != PEGPU_ST_OK)
			r->st.unmap_failures++;
}

static void queue_unmap(struct pegpu_replay *r, uint64_t iova, uint64_t len)
{
	if (batch_full(r))
		flush_unmaps(r);
	batch_add(r, PEGPU_OP_UNMAP, 0, 0, len, iova);
}

static bool is_refusal(uint32_t st)
{
	return st == PEGPU_ST_NO_SPACE || st == PEGPU_ST_TOO_MANY || st == PEGPU_ST_NO_IOVA ||
	       st == XST_FULL;
}

static void map_failed(struct pegpu_replay *r, uint32_t st)
{
	r->st.map_failures++;
	if (is_refusal(st))
		r->st.refused_calls++;
	if (st == XST_BROKEN)
		r->st.broken++;
}

/* ---------------------------------------------------------------- */
/* dma_map_ops (pegpu_dma_ops.c)                                     */
/* ---------------------------------------------------------------- */

/* A cluster is shared by every direction: mapped both ways.  Exact: as asked. */
static uint16_t map_flags(const struct pegpu_replay *r, const struct pgc_req *req, uint8_t dir)
{
	if (r->cfg.cluster_size && req->len == r->cfg.cluster_size &&
	    !(req->addr & (r->cfg.cluster_size - 1)))
		return PEGPU_DIR_BIDIRECTIONAL;
	return dir;
}

/* pegpu_map_range(): a hit is a table lookup, a miss one batch of one MAP. */
static uint64_t map_range(struct pegpu_replay *r, uint64_t phys, uint64_t size, uint8_t dir)
{
	struct pgc_ref ref;
	struct pgc_req req;
	uint64_t dma = 0, iova;
	uint32_t st, k;
	int ret;

	ret = pgc_map(&r->pgc, phys, size, &ref, &req);
	if (ret < 0) {
		st = ret == PGC_E_FULL ? XST_FULL : XST_INVAL;
		goto fail;
	}
	if (ret == PGC_NEW) {
		r->nent = 0;
		k = batch_add(r, PEGPU_OP_MAP, map_flags(r, &req, dir), req.addr, req.len, 0);
		batch_submit(r);
		st = ent_status(r, k);
		if (st != PEGPU_ST_OK) {
			pgc_map_failed(&r->pgc, req.rec);
			pgc_put(&r->pgc, &ref, NULL);
			goto fail;
		}
		iova = ent_iova(r, k);
		pgc_map_done(&r->pgc, req.rec, iova);
		if (!pgc_dma_addr(&r->pgc, &ref, &dma)) {
			pgc_put(&r->pgc, &ref, NULL);
			queue_unmap(r, iova, req.len);
			flush_unmaps(r);
			st = XST_BROKEN;
			goto fail;
		}
	} else if (!pgc_dma_addr(&r->pgc, &ref, &dma)) {
		pgc_put(&r->pgc, &ref, NULL);
		st = XST_BROKEN;
		goto fail;
	}
	return dma;
fail:
	map_failed(r, st);
	return DMA_ERROR;
}

/* pegpu_unmap_range(): the last reference of a mapping posts its UNMAP. */
static void unmap_range(struct pegpu_replay *r, uint64_t dma, uint64_t size)
{
	struct pgc_req req;
	int ret;

	ret = pgc_unmap(&r->pgc, dma, size, &req);
	if (ret == PGC_RELEASE) {
		r->nent = 0;
		queue_unmap(r, req.iova, req.len);
		flush_unmaps(r);
	} else if (ret < 0) {
		r->st.broken++;	/* the engine gave back an address it never got */
	}
}

/* pegpu_sg_resolve(): post the queued MAPs, turn the chunk's stashes into addresses. */
static uint32_t sg_resolve(struct pegpu_replay *r, struct sgent *chunk, uint32_t n)
{
	uint32_t count = r->nent, first = PEGPU_ST_OK, k, i;
	struct pgc_req req;
	uint64_t dma;

	if (count) {
		batch_submit(r);
		for (k = 0; k < count; k++) {
			r->slot[k].status = ent_status(r, k);
			r->slot[k].iova = ent_iova(r, k);
			r->slot[k].len = ent_len(r, k);
		}
		for (k = 0; k < count; k++) {
			struct bslot *sl = &r->slot[k];

			if (sl->status != PEGPU_ST_OK) {
				pgc_map_failed(&r->pgc, sl->rec);
				if (first == PEGPU_ST_OK)
					first = sl->status;
				continue;
			}
			pgc_map_done(&r->pgc, sl->rec, sl->iova);
			if (!pgc_dma_addr(&r->pgc, &sl->ref, &dma)) {
				queue_unmap(r, sl->iova, sl->len);
				if (first == PEGPU_ST_OK)
					first = XST_BROKEN;
			}
		}
	}
	for (i = 0; i < n; i++) {
		struct sgent *s = &chunk[i];

		s->resolved = true;
		if (pgc_dma_addr(&r->pgc, &s->ref, &dma)) {
			s->dma = dma;
			continue;
		}
		if (first == PEGPU_ST_OK)
			first = XST_BROKEN;
		if (pgc_put(&r->pgc, &s->ref, &req) == PGC_RELEASE)
			queue_unmap(r, req.iova, req.len);
		s->dma = DMA_ERROR;
	}
	return first;
}

/* pegpu_dma_map_sg(): plan all, one batch of new MAPs (split at capacity). */
static int map_sg(struct pegpu_replay *r, struct sgent *sg, uint32_t nents, uint8_t dir)
{
	uint32_t i, j, chunk = 0, chunk_n = 0, done = 0, st = PEGPU_ST_OK, k;
	struct pgc_req req;
	int ret;

	r->nent = 0;
	for (i = 0; i < nents; i++) {
		sg[i].dma = DMA_ERROR;
		sg[i].resolved = false;
	}
	for (i = 0; i < nents; i++) {
		struct sgent *s = &sg[i];

		ret = pgc_map(&r->pgc, s->phys, s->len, &s->ref, &req);
		if (ret < 0) {
			st = ret == PGC_E_FULL ? XST_FULL : XST_INVAL;
			goto cancel;
		}
		chunk_n++;
		if (ret != PGC_NEW)
			continue;
		k = batch_add(r, PEGPU_OP_MAP, map_flags(r, &req, dir), req.addr, req.len, 0);
		r->slot[k].rec = req.rec;
		r->slot[k].ref = s->ref;
		if (batch_full(r)) {
			st = sg_resolve(r, &sg[chunk], chunk_n);
			done += chunk_n;
			chunk = i + 1;
			chunk_n = 0;
			if (st != PEGPU_ST_OK)
				goto rollback;
		}
	}
	st = sg_resolve(r, &sg[chunk], chunk_n);
	done += chunk_n;
	if (st != PEGPU_ST_OK)
		goto rollback;
	flush_unmaps(r);
	return 0;

cancel:
	/* the chunk's MAPs were never posted: drop their references */
	r->nent = 0;
	for (j = 0; j < chunk_n; j++) {
		struct sgent *t = &sg[chunk + j];

		if (pgc_put(&r->pgc, &t->ref, &req) == PGC_RELEASE)
			queue_unmap(r, req.iova, req.len);
		t->dma = DMA_ERROR;
		t->resolved = true;
	}
	done += chunk_n;
rollback:
	for (j = 0; j < done; j++) {
		struct sgent *t = &sg[j];

		if (t->dma == DMA_ERROR)
			continue;
		if (pgc_unmap(&r->pgc, t->dma, t->len, &req) == PGC_RELEASE)
			queue_unmap(r, req.iova, req.len);
		t->dma = DMA_ERROR;
	}
	flush_unmaps(r);
	map_failed(r, st);
	return -1;
}

/* pegpu_dma_unmap_sg(): one batch of the UNMAPs it releases. */
static void unmap_sg(struct pegpu_replay *r, const struct rseg *seg, uint32_t n)
{
	struct pgc_req req;
	uint32_t i;

	r->nent = 0;
	for (i = 0; i < n; i++) {
		int ret = pgc_unmap(&r->pgc, seg[i].dma, seg[i].len, &req);

		if (ret == PGC_RELEASE)
			queue_unmap(r, req.iova, req.len);
		else if (ret < 0)
			r->st.broken++;
	}
	flush_unmaps(r);
}

/* ---------------------------------------------------------------- */
/* baseline: one exact mapping and one doorbell per segment          */
/* ---------------------------------------------------------------- */

static uint64_t base_map(struct pegpu_replay *r, uint64_t phys, uint64_t size, uint8_t dir,
			 uint32_t *st)
{
	uint64_t addr = phys & ~r->page_mask;
	uint64_t len = ((phys + size - 1) | r->page_mask) + 1 - addr;
	uint32_t k;

	r->nent = 0;
	k = batch_add(r, PEGPU_OP_MAP, dir, addr, len, 0);
	batch_submit(r);
	*st = ent_status(r, k);
	if (*st != PEGPU_ST_OK)
		return DMA_ERROR;
	r->baseline_mapped += len;
	return ent_iova(r, k) + (phys - addr);
}

static void base_unmap(struct pegpu_replay *r, uint64_t dma, uint64_t size)
{
	uint64_t iova = dma & ~r->page_mask;
	uint64_t len = ((dma + size - 1) | r->page_mask) + 1 - iova;

	r->nent = 0;
	batch_add(r, PEGPU_OP_UNMAP, 0, 0, len, iova);
	flush_unmaps(r);
	r->baseline_mapped -= len;
}

/* ---------------------------------------------------------------- */
/* live buffers by id                                                */
/* ---------------------------------------------------------------- */

static uint64_t id_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return id;
}

static struct id_slot *id_find(const struct pegpu_replay *r, uint64_t id)
{
	uint64_t i = id_hash(id) & r->id_mask;

	while (r->ids[i].b) {
		if (r->ids[i].id == id)
			return &r->ids[i];
		i = (i + 1) & r->id_mask;
	}
	return NULL;
}

static void id_put(struct id_slot *tab, uint64_t mask, struct rbuf *b)
{
	uint64_t i = id_hash(b->id) & mask;

	while (tab[i].b)
		i = (i + 1) & mask;
	tab[i].id = b->id;
	tab[i].b = b;
}

/* Grows at half load and never shrinks: its size tracks the peak. */
static int id_insert(struct pegpu_replay *r, struct rbuf *b)
{
	if (2 * (r->nids + 1) > r->id_mask + 1) {
		uint64_t n = 2 * (r->id_mask + 1), i;
		struct id_slot *t = calloc(n, sizeof(*t));

		if (!t)
			return PEGPU_TRACE_E_NOMEM;
		for (i = 0; i <= r->id_mask; i++)
			if (r->ids[i].b)
				id_put(t, n - 1, r->ids[i].b);
		free(r->ids);
		r->ids = t;
		r->id_mask = n - 1;
	}
	id_put(r->ids, r->id_mask, b);
	r->nids++;
	return 0;
}

static void id_remove(struct pegpu_replay *r, struct id_slot *s)
{
	uint64_t hole = (uint64_t)(s - r->ids), j = hole, home;

	for (;;) {
		j = (j + 1) & r->id_mask;
		if (!r->ids[j].b)
			break;
		home = id_hash(r->ids[j].id) & r->id_mask;
		if (((j - home) & r->id_mask) >= ((j - hole) & r->id_mask)) {
			r->ids[hole] = r->ids[j];
			hole = j;
		}
	}
	r->ids[hole].b = NULL;
	r->ids[hole].id = 0;
	r->nids--;
}

static void rbuf_free(struct rbuf *b)
{
	if (b->seg != &b->one)
		free(b->seg);
	free(b);
}

static void demand_add(struct pegpu_replay *r, uint64_t segs, uint64_t bytes)
{
	r->st.demand_buffers += segs;
	r->st.demand_bytes += bytes;
	if (r->st.demand_buffers > r->st.demand_peak_buffers)
		r->st.demand_peak_buffers = r->st.demand_buffers;
	if (r->st.demand_bytes > r->st.demand_peak_bytes)
		r->st.demand_peak_bytes = r->st.demand_bytes;
}

static void live_add(struct pegpu_replay *r, uint64_t segs, uint64_t bytes)
{
	r->st.live_buffers += segs;
	r->st.live_bytes += bytes;
	if (r->st.live_buffers > r->st.peak_buffers)
		r->st.peak_buffers = r->st.live_buffers;
	if (r->st.live_bytes > r->st.peak_bytes)
		r->st.peak_bytes = r->st.live_bytes;
}

/* Unmap a live buffer the way its kind is unmapped, and forget it. */
static void buf_unmap(struct pegpu_replay *r, struct id_slot *s)
{
	struct rbuf *b = s->b;
	uint32_t i;

	r->st.unmap_calls++;
	r->st.demand_buffers -= b->nseg;
	r->st.demand_bytes -= b->bytes;
	if (b->mapped) {
		r->st.seg_unmaps += b->nseg;
		r->st.ops += b->nseg;
		if (r->cfg.baseline) {
			for (i = 0; i < b->nseg; i++)
				base_unmap(r, b->seg[i].dma, b->seg[i].len);
		} else if (b->kind == PEGPU_TK_SG) {
			unmap_sg(r, b->seg, b->nseg);
		} else {
			unmap_range(r, b->seg[0].dma, b->seg[0].len);
		}
		r->st.live_buffers -= b->nseg;
		r->st.live_bytes -= b->bytes;
	}
	id_remove(r, s);
	rbuf_free(b);
}

/* Map a collected call (1 segment for single/coherent) and remember it. */
static int buf_map(struct pegpu_replay *r, const struct pegpu_trace_event *first,
		   struct sgent *sg, uint32_t n)
{
	struct rbuf *b;
	struct id_slot *old;
	uint64_t bytes = 0;
	uint32_t i;
	int ret;

	old = id_find(r, first->id);
	if (old) {
		/* the recorder lost this id's UNMAP; the driver did unmap it */
		r->st.dup_maps++;
		buf_unmap(r, old);
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return PEGPU_TRACE_E_NOMEM;
	b->seg = n == 1 ? &b->one : calloc(n, sizeof(*b->seg));
	if (!b->seg) {
		free(b);
		return PEGPU_TRACE_E_NOMEM;
	}
	b->id = first->id;
	b->nseg = n;
	b->kind = first->kind;
	b->dir = first->dir;
	for (i = 0; i < n; i++)
		bytes += sg[i].len;
	b->bytes = bytes;
	r->st.calls++;
	r->st.segments += n;
	r->st.ops += n;
	demand_add(r, n, bytes);

	if (r->cfg.baseline) {
		b->mapped = true;
		for (i = 0; i < n; i++) {
			uint32_t st, j;

			sg[i].dma = base_map(r, sg[i].phys, sg[i].len,
					     b->kind == PEGPU_TK_COHERENT ?
					     PEGPU_DIR_BIDIRECTIONAL : b->dir, &st);
			if (sg[i].dma != DMA_ERROR)
				continue;
			for (j = 0; j < i; j++)
				base_unmap(r, sg[j].dma, sg[j].len);
			map_failed(r, st);
			b->mapped = false;
			break;
		}
	} else if (b->kind == PEGPU_TK_SG) {
		b->mapped = map_sg(r, sg, n, b->dir) == 0;
	} else {
		sg[0].dma = map_range(r, sg[0].phys, sg[0].len,
				      b->kind == PEGPU_TK_COHERENT ? PEGPU_DIR_BIDIRECTIONAL :
				      b->dir);
		b->mapped = sg[0].dma != DMA_ERROR;
	}
	if (b->mapped) {
		for (i = 0; i < n; i++) {
			b->seg[i].dma = sg[i].dma;
			b->seg[i].len = sg[i].len;
		}
		live_add(r, n, bytes);
	}
	ret = id_insert(r, b);
	if (ret) {
		/* cannot track it: give it back now so nothing leaks */
		if (b->mapped) {
			r->st.live_buffers -= n;
			r->st.live_bytes -= bytes;
			if (r->cfg.baseline)
				for (i = 0; i < n; i++)
					base_unmap(r, b->seg[i].dma, b->seg[i].len);
			else if (b->kind == PEGPU_TK_SG)
				unmap_sg(r, b->seg, n);
			else
				unmap_range(r, b->seg[0].dma, b->seg[0].len);
		}
		r->st.demand_buffers -= n;
		r->st.demand_bytes -= bytes;
		rbuf_free(b);
	}
	return ret;
}

static int sg_push(struct pegpu_replay *r, const struct pegpu_trace_event *ev)
{
	if (r->nsg == r->sg_cap) {
		uint32_t cap = r->sg_cap ? r->sg_cap * 2 : 256;
		struct sgent *p;

		if (r->sg_cap >= PEGPU_REPLAY_MAX_SG)
			return PEGPU_TRACE_E_FORMAT;
		p = realloc(r->sg, (size_t)cap * sizeof(*p));
		if (!p)
			return PEGPU_TRACE_E_NOMEM;
		r->sg = p;
		r->sg_cap = cap;
	}
	memset(&r->sg[r->nsg], 0, sizeof(r->sg[0]));
	r->sg[r->nsg].phys = ev->addr;
	r->sg[r->nsg].len = ev->len;
	r->nsg++;
	return 0;
}

int pegpu_replay_event(struct pegpu_replay *r, const struct pegpu_trace_event *ev)
{
	struct id_slot *s;
	int ret;

	if (r->dead)
		return r->dead;
	ret = pegpu_trace_seq_feed(&r->tseq, ev);
	if (ret)
		goto dead;
	r->st.events++;

	switch (ev->type) {
	case PEGPU_TR_MAP:
		r->nsg = 0;
		r->sg_first = *ev;
		r->sg_skip = (ev->flags & PEGPU_TF_FAILED) != 0;
		if (r->sg_skip)
			r->st.skipped_failed++;
		/* fall through */
	case PEGPU_TR_SEG:
		if (r->sg_skip)
			break;
		ret = sg_push(r, ev);
		if (ret)
			goto dead;
		if (!(ev->flags & PEGPU_TF_MORE)) {
			ret = buf_map(r, &r->sg_first, r->sg, r->nsg);
			r->nsg = 0;
			if (ret)
				goto dead;
		}
		break;
	case PEGPU_TR_UNMAP:
		s = id_find(r, ev->id);
		if (!s) {
			r->st.unknown_unmaps++;
			break;
		}
		buf_unmap(r, s);
		break;
	case PEGPU_TR_DROP:
		r->st.dropped += ev->addr;
		break;
	}
	return 0;
dead:
	r->dead = ret;
	return ret;
}

int pegpu_replay_trace(struct pegpu_replay *r, const struct pegpu_trace *t)
{
	size_t i;
	int ret;

	for (i = 0; i < t->n; i++) {
		ret = pegpu_replay_event(r, &t->ev[i]);
		if (ret)
			return ret;
	}
	return 0;
}

void pegpu_replay_unmap_all(struct pegpu_replay *r)
{
	uint64_t i;

	/*
	 * Removal shifts later entries back, possibly into slot i and, for a
	 * run that wraps, across the end: go round until the table is empty.
	 */
	for (i = 0; r->nids; i = (i + 1) & r->id_mask)
		while (r->ids[i].b)
			buf_unmap(r, &r->ids[i]);
}

/* Forget every buffer without unmapping it (the guest lost them). */
static void forget_all(struct pegpu_replay *r)
{
	uint64_t i;

	for (i = 0; i <= r->id_mask; i++) {
		if (r->ids[i].b)
			rbuf_free(r->ids[i].b);
		r->ids[i].b = NULL;
		r->ids[i].id = 0;
	}
	r->nids = 0;
	r->st.live_buffers = 0;
	r->st.live_bytes = 0;
	r->st.demand_buffers = 0;
	r->st.demand_bytes = 0;
	r->baseline_mapped = 0;
	r->nsg = 0;
	pegpu_trace_seq_init(&r->tseq);
}

void pegpu_replay_release_all(struct pegpu_replay *r)
{
	struct pgc_req req;

	r->nent = 0;
	if (!r->cfg.baseline) {
		while (pgc_drain_one(&r->pgc, &req))
			queue_unmap(r, req.iova, req.len);
		flush_unmaps(r);
	}
	/* CONTROL.RESET, as belt and braces (the baseline relies on it) */
	pegpu_dmadev_reset(r->dev);
	forget_all(r);
}

void pegpu_replay_device_reset(struct pegpu_replay *r)
{
	struct pgc_req req;

	pegpu_dmadev_reset(r->dev);
	/* a new boot starts with a fresh driver: empty coalescer, no UNMAPs */
	if (!r->cfg.baseline)
		while (pgc_drain_one(&r->pgc, &req))
			;
	forget_all(r);
}

/* ---------------------------------------------------------------- */
/* setup, stats, checks                                              */
/* ---------------------------------------------------------------- */

struct pegpu_replay *pegpu_replay_new(const struct pegpu_replay_config *cfg)
{
	struct pegpu_dmadev_limits lim;
	struct dart_emu_config dcfg;
	struct pgc_config pcfg;
	struct pegpu_replay *r;
	size_t msize;

	if (!cfg || cfg->ram_size < (4ull << 20) || cfg->ram_size - 1 > UINT64_MAX - cfg->ram_base)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cfg = *cfg;
	if (!r->cfg.max_batch)
		r->cfg.max_batch = PEGPU_REPLAY_DEFAULT_MAX_BATCH;
	if (!r->cfg.max_mappings)
		r->cfg.max_mappings = DART_EMU_DEFAULT_MAX_MAPPINGS;
	if (!r->cfg.max_mapped_bytes)
		r->cfg.max_mapped_bytes = DART_EMU_DEFAULT_MAX_BYTES;
	r->page_mask = (1ull << DART_EMU_PAGE_SHIFT) - 1;
	pegpu_trace_seq_init(&r->tseq);

	memset(&dcfg, 0, sizeof(dcfg));
	dcfg.max_mapped_bytes = r->cfg.max_mapped_bytes;
	dcfg.max_mappings = r->cfg.max_mappings;
	dcfg.iova_size = r->cfg.iova_size;
	dcfg.seed = r->cfg.dart_seed;
	r->dart = dart_emu_new(&dcfg);
	if (!r->dart)
		goto err;

	lim.page_shift = DART_EMU_PAGE_SHIFT;
	lim.max_batch = r->cfg.max_batch;
	lim.max_mappings = r->cfg.max_mappings;
	lim.max_mapped_bytes = r->cfg.max_mapped_bytes;

	/* the kmod's batch buffer, at the top of guest RAM, 64 KiB aligned */
	r->batch_cap = r->cfg.max_batch < PEGPU_REPLAY_DRIVER_BATCH_MAX ? r->cfg.max_batch :
		       PEGPU_REPLAY_DRIVER_BATCH_MAX;
	r->batch_bytes = HDR_SIZE + (uint64_t)r->batch_cap * ENT_SIZE;
	if (r->batch_bytes > r->cfg.ram_size / 2)
		goto err;
	r->batch_gpa = (r->cfg.ram_base + r->cfg.ram_size - r->batch_bytes) & ~0xffffull;
	r->bmem = calloc(1, r->batch_bytes);
	r->slot = calloc(r->batch_cap, sizeof(*r->slot));
	if (!r->bmem || !r->slot)
		goto err;
	r->dev = pegpu_dmadev_new(&lim, &ram_ops, r, &wrap_ops, r);
	if (!r->dev)
		goto err;

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.cluster_size = r->cfg.cluster_size;
	pcfg.page_shift = DART_EMU_PAGE_SHIFT;
	pcfg.max_records = r->cfg.max_mappings;
	pcfg.max_pages = r->cfg.max_mapped_bytes >> DART_EMU_PAGE_SHIFT;
	pcfg.cluster_ok = cluster_ok;
	pcfg.ctx = r;
	msize = pgc_mem_size(&pcfg);
	if (!msize)
		goto err;
	r->pgc_mem = aligned_alloc(16, (msize + 15) & ~(size_t)15);
	if (!r->pgc_mem || pgc_init(&r->pgc, &pcfg, r->pgc_mem))
		goto err;

	r->ids = calloc(1024, sizeof(*r->ids));
	if (!r->ids)
		goto err;
	r->id_mask = 1023;
	return r;
err:
	pegpu_replay_free(r);
	return NULL;
}

void pegpu_replay_free(struct pegpu_replay *r)
{
	uint64_t i;

	if (!r)
		return;
	if (r->ids)
		for (i = 0; i <= r->id_mask; i++)
			if (r->ids[i].b)
				rbuf_free(r->ids[i].b);
	free(r->ids);
	free(r->sg);
	free(r->pgc_mem);
	pegpu_dmadev_free(r->dev);
	dart_emu_free(r->dart);
	free(r->slot);
	free(r->bmem);
	free(r);
}

void pegpu_replay_get_stats(const struct pegpu_replay *r, struct pegpu_replay_stats *st)
{
	*st = r->st;
	st->doorbells = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_DOORBELLS);
	st->entries = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_ENTRIES);
	st->refusals = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_REFUSALS);
	st->errors = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_ERRORS);
	st->live_mappings = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_LIVE_MAPPINGS);
	st->mapped_bytes = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_MAPPED_BYTES);
	st->peak_mappings = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_PEAK_MAPPINGS);
	st->peak_mapped_bytes = pegpu_dmadev_counter(r->dev, PEGPU_DMA_CNT_PEAK_MAPPED_BYTES);
	st->hits = r->cfg.baseline ? 0 : r->pgc.st.hits;
	st->misses = r->cfg.baseline ? 0 : r->pgc.st.misses;
	st->id_slots = r->id_mask + 1;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static bool fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (why && n) {
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return false;
}

bool pegpu_replay_check(const struct pegpu_replay *r, char *why, size_t whylen)
{
	struct pegpu_replay_stats st;
	struct dart_emu_stats ds;
	uint64_t want_maps, want_bytes;

	pegpu_replay_get_stats(r, &st);
	dart_emu_get_stats(r->dart, &ds);
	if (!r->cfg.baseline && !pgc_check(&r->pgc))
		return fail(why, whylen, "pgc_check failed");
	if (!pegpu_dmadev_check(r->dev))
		return fail(why, whylen, "pegpu_dmadev_check failed");
	if (!dart_emu_check(r->dart))
		return fail(why, whylen, "dart_emu_check failed");
	if (st.live_mappings != ds.live_mappings || st.mapped_bytes != ds.mapped_bytes)
		return fail(why, whylen, "device %llu mappings / %llu bytes, DART %llu / %llu",
			    (unsigned long long)st.live_mappings,
			    (unsigned long long)st.mapped_bytes,
			    (unsigned long long)ds.live_mappings,
			    (unsigned long long)ds.mapped_bytes);
	if (r->cfg.baseline) {
		want_maps = st.live_buffers;
		want_bytes = r->baseline_mapped;
	} else {
		want_maps = r->pgc.st.live_records;
		want_bytes = r->pgc.st.mapped_bytes;
		if (r->pgc.st.live_buffers != st.live_buffers ||
		    r->pgc.st.buffer_bytes != st.live_bytes)
			return fail(why, whylen, "coalescer holds %llu buffers / %llu bytes, the"
				    " guest %llu / %llu",
				    (unsigned long long)r->pgc.st.live_buffers,
				    (unsigned long long)r->pgc.st.buffer_bytes,
				    (unsigned long long)st.live_buffers,
				    (unsigned long long)st.live_bytes);
	}
	if (st.live_mappings != want_maps || st.mapped_bytes != want_bytes)
		return fail(why, whylen, "device %llu mappings / %llu bytes, driver %llu / %llu",
			    (unsigned long long)st.live_mappings,
			    (unsigned long long)st.mapped_bytes, (unsigned long long)want_maps,
			    (unsigned long long)want_bytes);
	if (st.peak_mappings > r->cfg.max_mappings ||
	    st.peak_mapped_bytes > r->cfg.max_mapped_bytes)
		return fail(why, whylen, "a peak exceeds a cap");
	if (st.dart_cap_refusals)
		return fail(why, whylen, "the DART hit a cap %llu times: the device let it through",
			    (unsigned long long)st.dart_cap_refusals);
	if (st.guest_faults || st.unmap_failures || st.broken)
		return fail(why, whylen, "guest faults %llu, unmap failures %llu, broken %llu",
			    (unsigned long long)st.guest_faults,
			    (unsigned long long)st.unmap_failures, (unsigned long long)st.broken);
	if (r->nids > r->id_mask / 2 + 1)
		return fail(why, whylen, "id table over half full");
	return true;
}

const struct pgc *pegpu_replay_pgc(const struct pegpu_replay *r)
{
	return &r->pgc;
}

const struct pegpu_dmadev *pegpu_replay_dev(const struct pegpu_replay *r)
{
	return r->dev;
}

const struct dart_emu *pegpu_replay_dart(const struct pegpu_replay *r)
{
	return r->dart;
}
