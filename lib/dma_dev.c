/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * pegpu-dma device core (see include/pegpu/dma_dev.h and, for the batch
 * semantics, include/pegpu/dma_proto.h).
 *
 * Everything here is driven by guest input, so: no allocation after
 * pegpu_dmadev_new() (entries are read in fixed chunks into the device
 * struct), every length is checked for overflow before use, and a bad batch
 * only ever produces a status.  The live-mapping table is an open-addressing
 * hash keyed by IOVA, sized at twice max_mappings so probes stay short and
 * an empty slot always exists; deletion shifts entries back instead of
 * leaving tombstones, so a long-running guest cannot degrade it.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pegpu/dma_dev.h"

#define ENTRY_SIZE		((uint32_t)sizeof(struct pegpu_dma_entry))
#define HDR_SIZE		((uint32_t)sizeof(struct pegpu_dma_batch_hdr))
#define CHUNK_ENTRIES		64u
#define MIN_PAGE_SHIFT		12
#define MAX_PAGE_SHIFT		30
#define MAX_BATCH_LIMIT		65536u
/* Bounds the table (2 x 16 bytes a mapping, rounded up to a power of two). */
#define MAX_MAPPINGS_LIMIT	(1u << 20)
/* Entry errors logged per doorbell; the rest are summarised in one line. */
#define LOG_ENTRIES_PER_BATCH	8u

#define OFF_HDR_MAGIC		offsetof(struct pegpu_dma_batch_hdr, magic)
#define OFF_HDR_COUNT		offsetof(struct pegpu_dma_batch_hdr, count)
#define OFF_HDR_STATUS		offsetof(struct pegpu_dma_batch_hdr, status)
#define OFF_HDR_NR_OK		offsetof(struct pegpu_dma_batch_hdr, nr_ok)
#define OFF_HDR_RESERVED	offsetof(struct pegpu_dma_batch_hdr, reserved)
#define OFF_ENT_OP		offsetof(struct pegpu_dma_entry, op)
#define OFF_ENT_FLAGS		offsetof(struct pegpu_dma_entry, flags)
#define OFF_ENT_STATUS		offsetof(struct pegpu_dma_entry, status)
#define OFF_ENT_ADDR		offsetof(struct pegpu_dma_entry, addr)
#define OFF_ENT_LEN		offsetof(struct pegpu_dma_entry, len)
#define OFF_ENT_IOVA		offsetof(struct pegpu_dma_entry, iova)

_Static_assert(OFF_HDR_NR_OK == OFF_HDR_STATUS + 4, "status and nr_ok are written together");

struct live_slot {
	uint64_t iova;
	uint64_t len;		/* 0: empty slot (live mappings are never empty) */
};

/* One decoded entry, host byte order. */
struct dma_req {
	uint16_t op;
	uint16_t flags;
	uint64_t addr;
	uint64_t len;
	uint64_t iova;
};

struct pegpu_dmadev {
	struct pegpu_dmadev_limits lim;
	uint64_t page_mask;
	const struct pegpu_dmadev_guest_ops *gops;
	void *gopaque;
	const struct pegpu_dma_backend_ops *bops;
	void *bctx;
	pegpu_dmadev_log_fn log;
	void *log_opaque;

	uint64_t cnt[PEGPU_DMA_CNT__COUNT];
	uint32_t last_status;

	struct live_slot *slots;
	uint32_t slot_mask;	/* slots - 1 */
	uint32_t hash_shift;	/* 64 - log2(slots) */

	/* per doorbell */
	uint64_t batch_gpa;
	uint32_t logged;
	uint32_t unlogged;

	uint8_t chunk[CHUNK_ENTRIES * sizeof(struct pegpu_dma_entry)];
};

/*
 * The wire is little-endian whatever the host is; assemble bytes rather than
 * casting, which is both endian- and alignment-proof (compilers turn these
 * into plain loads and stores).
 */
static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void dev_log(struct pegpu_dmadev *d, const char *fmt, ...)
{
	va_list ap;

	if (!d->log)
		return;
	va_start(ap, fmt);
	d->log(d->log_opaque, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- */
/* live-mapping table                                                */
/* ---------------------------------------------------------------- */

static uint32_t slot_home(const struct pegpu_dmadev *d, uint64_t iova)
{
	/* Fibonacci hashing: IOVAs are page multiples, the high product bits are not. */
	return (uint32_t)((iova * 0x9e3779b97f4a7c15ull) >> d->hash_shift);
}

static struct live_slot *table_find(const struct pegpu_dmadev *d, uint64_t iova)
{
	uint32_t i = slot_home(d, iova);

	/* Terminates: the table is at most half full. */
	while (d->slots[i].len) {
		if (d->slots[i].iova == iova)
			return &d->slots[i];
		i = (i + 1) & d->slot_mask;
	}
	return NULL;
}

static void table_insert(struct pegpu_dmadev *d, uint64_t iova, uint64_t len)
{
	uint32_t i = slot_home(d, iova);

	while (d->slots[i].len)
		i = (i + 1) & d->slot_mask;
	d->slots[i].iova = iova;
	d->slots[i].len = len;
}

static void table_remove(struct pegpu_dmadev *d, struct live_slot *s)
{
	uint32_t hole = (uint32_t)(s - d->slots);
	uint32_t j = hole;

	/*
	 * Backward-shift deletion: pull each later member of the probe run
	 * into the hole unless its home lies cyclically in (hole, j], where
	 * moving it would put it before its home.
	 */
	for (;;) {
		uint32_t home;

		j = (j + 1) & d->slot_mask;
		if (!d->slots[j].len)
			break;
		home = slot_home(d, d->slots[j].iova);
		if (((j - home) & d->slot_mask) < ((j - hole) & d->slot_mask))
			continue;
		d->slots[hole] = d->slots[j];
		hole = j;
	}
	d->slots[hole].len = 0;
	d->slots[hole].iova = 0;
}

/* ---------------------------------------------------------------- */
/* setup                                                             */
/* ---------------------------------------------------------------- */

struct pegpu_dmadev *pegpu_dmadev_new(const struct pegpu_dmadev_limits *lim,
				      const struct pegpu_dmadev_guest_ops *gops, void *gopaque,
				      const struct pegpu_dma_backend_ops *bops, void *bctx)
{
	struct pegpu_dmadev *d;
	uint32_t nslots = 2, bits = 1;

	if (!lim || !gops || !gops->read || !gops->write || !gops->is_ram ||
	    !bops || !bops->map || !bops->unmap)
		return NULL;
	if (lim->page_shift < MIN_PAGE_SHIFT || lim->page_shift > MAX_PAGE_SHIFT)
		return NULL;
	if (!lim->max_batch || lim->max_batch > MAX_BATCH_LIMIT)
		return NULL;
	if (!lim->max_mappings || lim->max_mappings > MAX_MAPPINGS_LIMIT)
		return NULL;
	if (!lim->max_mapped_bytes)
		return NULL;

	while (nslots < 2 * lim->max_mappings) {
		nslots <<= 1;
		bits++;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->slots = calloc(nslots, sizeof(*d->slots));
	if (!d->slots)
		goto err;
	d->slot_mask = nslots - 1;
	d->hash_shift = 64 - bits;
	d->lim = *lim;
	d->page_mask = (1ull << lim->page_shift) - 1;
	d->gops = gops;
	d->gopaque = gopaque;
	d->bops = bops;
	d->bctx = bctx;
	d->last_status = PEGPU_ST_OK;
	return d;

err:
	free(d);
	return NULL;
}

void pegpu_dmadev_free(struct pegpu_dmadev *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d);
}

void pegpu_dmadev_set_log(struct pegpu_dmadev *d, pegpu_dmadev_log_fn fn, void *opaque)
{
	d->log = fn;
	d->log_opaque = opaque;
}

/* ---------------------------------------------------------------- */
/* batches                                                           */
/* ---------------------------------------------------------------- */

static bool is_refusal(uint32_t st)
{
	return st == PEGPU_ST_NO_SPACE || st == PEGPU_ST_TOO_MANY || st == PEGPU_ST_NO_IOVA;
}

/* Log one rejected entry, within the per-doorbell budget. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static uint32_t entry_fail(struct pegpu_dmadev *d, uint32_t idx, uint32_t st,
			   const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	if (!d->log)
		return st;
	if (d->logged >= LOG_ENTRIES_PER_BATCH) {
		d->unlogged++;
		return st;
	}
	d->logged++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dev_log(d, "pegpu-dma: batch 0x%" PRIx64 " entry %" PRIu32 ": %s\n", d->batch_gpa, idx,
		msg);
	return st;
}

/*
 * Checks run in a fixed order (flags, alignment, length, RAM, bytes cap,
 * count cap, backend) so that an entry with several faults always gets the
 * same status, whichever device implementation the guest talks to.
 */
static uint32_t do_map(struct pegpu_dmadev *d, uint32_t idx, const struct dma_req *r,
		       uint64_t *iova_out)
{
	uint64_t iova = 0;
	int ret;

	if (!r->flags || (r->flags & ~PEGPU_ENTRY_FLAGS_MASK))
		return entry_fail(d, idx, PEGPU_ST_BAD_FLAGS,
				  "MAP flags 0x%x, want a direction only", (unsigned int)r->flags);
	if (r->addr & d->page_mask)
		return entry_fail(d, idx, PEGPU_ST_BAD_ALIGN, "MAP addr 0x%" PRIx64
				  " not page aligned", r->addr);
	if (r->len & d->page_mask)
		return entry_fail(d, idx, PEGPU_ST_BAD_ALIGN, "MAP len 0x%" PRIx64
				  " not a page multiple", r->len);
	if (!r->len)
		return entry_fail(d, idx, PEGPU_ST_BAD_LEN, "MAP len 0");
	if (r->len > UINT64_MAX - r->addr)	/* the end must be representable too */
		return entry_fail(d, idx, PEGPU_ST_BAD_LEN, "MAP addr 0x%" PRIx64 " + len 0x%"
				  PRIx64 " overflows", r->addr, r->len);
	if (!d->gops->is_ram(d->gopaque, r->addr, r->len))
		return entry_fail(d, idx, PEGPU_ST_NOT_RAM, "MAP [0x%" PRIx64 ", +0x%" PRIx64
				  ") not guest RAM", r->addr, r->len);

	/* Our own caps, before the backend: the real DART may panic the host instead. */
	if (r->len > d->lim.max_mapped_bytes - d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES])
		return entry_fail(d, idx, PEGPU_ST_NO_SPACE, "MAP len 0x%" PRIx64 " over the cap:"
				  " 0x%" PRIx64 " of 0x%" PRIx64 " bytes mapped", r->len,
				  d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES], d->lim.max_mapped_bytes);
	if (d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS] >= d->lim.max_mappings)
		return entry_fail(d, idx, PEGPU_ST_TOO_MANY, "MAP over the cap: %" PRIu64
				  " mappings live", d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS]);

	ret = d->bops->map(d->bctx, r->addr, r->len, r->flags & PEGPU_ENTRY_FLAGS_MASK, &iova);
	if (ret != PEGPU_ST_OK) {
		uint32_t st = (uint32_t)ret;

		/* Pass on what describes the entry; batch-level or unknown codes are a bug. */
		if (ret < 0 || st >= PEGPU_ST_BAD_BATCH)
			st = PEGPU_ST_BACKEND;
		return entry_fail(d, idx, st, "MAP [0x%" PRIx64 ", +0x%" PRIx64
				  ") refused by backend %s: %s", r->addr, r->len, d->bops->name,
				  pegpu_dma_status_str(st));
	}
	/* A backend bug must not corrupt the table the UNMAP checks rely on. */
	if ((iova & d->page_mask) || r->len > UINT64_MAX - iova) {
		d->bops->unmap(d->bctx, iova, r->len);
		return entry_fail(d, idx, PEGPU_ST_BACKEND, "backend %s returned bad iova 0x%"
				  PRIx64, d->bops->name, iova);
	}
	if (table_find(d, iova))
		return entry_fail(d, idx, PEGPU_ST_BACKEND, "backend %s returned live iova 0x%"
				  PRIx64, d->bops->name, iova);

	table_insert(d, iova, r->len);
	d->cnt[PEGPU_DMA_CNT_MAPS]++;
	d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS]++;
	d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES] += r->len;
	if (d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS] > d->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS])
		d->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS] = d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS];
	if (d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES] > d->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES])
		d->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES] = d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES];
	*iova_out = iova;
	return PEGPU_ST_OK;
}

static uint32_t do_unmap(struct pegpu_dmadev *d, uint32_t idx, const struct dma_req *r)
{
	struct live_slot *s;
	int ret;

	if (r->flags)
		return entry_fail(d, idx, PEGPU_ST_BAD_FLAGS, "UNMAP flags 0x%x, want 0",
				  (unsigned int)r->flags);
	if (r->iova & d->page_mask)
		return entry_fail(d, idx, PEGPU_ST_BAD_ALIGN, "UNMAP iova 0x%" PRIx64
				  " not page aligned", r->iova);
	if (r->len & d->page_mask)
		return entry_fail(d, idx, PEGPU_ST_BAD_ALIGN, "UNMAP len 0x%" PRIx64
				  " not a page multiple", r->len);
	if (!r->len)
		return entry_fail(d, idx, PEGPU_ST_BAD_LEN, "UNMAP len 0");
	if (r->len > UINT64_MAX - r->iova)
		return entry_fail(d, idx, PEGPU_ST_BAD_LEN, "UNMAP iova 0x%" PRIx64 " + len 0x%"
				  PRIx64 " overflows", r->iova, r->len);
	s = table_find(d, r->iova);
	if (!s)
		return entry_fail(d, idx, PEGPU_ST_NOT_MAPPED, "UNMAP iova 0x%" PRIx64
				  " starts no live mapping", r->iova);
	if (s->len != r->len)
		return entry_fail(d, idx, PEGPU_ST_LEN_MISMATCH, "UNMAP iova 0x%" PRIx64
				  " len 0x%" PRIx64 ", mapping has 0x%" PRIx64,
				  r->iova, r->len, s->len);

	ret = d->bops->unmap(d->bctx, r->iova, r->len);
	if (ret != PEGPU_ST_OK) {
		/* Keep the record: the host may still have it mapped, the caps must count it. */
		return entry_fail(d, idx, PEGPU_ST_BACKEND, "UNMAP iova 0x%" PRIx64
				  " failed in backend %s: %s", r->iova, d->bops->name,
				  pegpu_dma_status_str((uint32_t)ret));
	}
	table_remove(d, s);
	d->cnt[PEGPU_DMA_CNT_UNMAPS]++;
	d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS]--;
	d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES] -= r->len;
	return PEGPU_ST_OK;
}

static void decode_entry(const uint8_t *p, struct dma_req *r)
{
	r->op = get_le16(p + OFF_ENT_OP);
	r->flags = get_le16(p + OFF_ENT_FLAGS);
	r->addr = get_le64(p + OFF_ENT_ADDR);
	r->len = get_le64(p + OFF_ENT_LEN);
	r->iova = get_le64(p + OFF_ENT_IOVA);
}

/* Write a status (and a MAP's IOVA) back; only the device-owned fields are touched. */
static void entry_complete(struct pegpu_dmadev *d, uint64_t gpa, uint32_t idx, uint32_t st,
			   bool write_iova, uint64_t iova)
{
	uint8_t buf[8];

	if (write_iova) {
		put_le64(buf, iova);
		if (d->gops->write(d->gopaque, gpa + OFF_ENT_IOVA, buf, 8))
			dev_log(d, "pegpu-dma: batch 0x%" PRIx64 " entry %" PRIu32
				": cannot write iova back\n", d->batch_gpa, idx);
	}
	put_le32(buf, st);
	if (d->gops->write(d->gopaque, gpa + OFF_ENT_STATUS, buf, 4))
		dev_log(d, "pegpu-dma: batch 0x%" PRIx64 " entry %" PRIu32
			": cannot write status back\n", d->batch_gpa, idx);
}

static uint32_t batch_fail(struct pegpu_dmadev *d, uint32_t st, const char *why)
{
	d->cnt[PEGPU_DMA_CNT_ERRORS]++;
	dev_log(d, "pegpu-dma: batch 0x%" PRIx64 ": %s\n", d->batch_gpa, why);
	d->last_status = st;
	return st;
}

static void write_hdr_result(struct pegpu_dmadev *d, uint32_t st, uint32_t nr_ok)
{
	uint8_t buf[8];

	put_le32(buf, st);
	put_le32(buf + 4, nr_ok);
	if (d->gops->write(d->gopaque, d->batch_gpa + OFF_HDR_STATUS, buf, sizeof(buf)))
		dev_log(d, "pegpu-dma: batch 0x%" PRIx64 ": cannot write header back\n",
			d->batch_gpa);
}

uint32_t pegpu_dmadev_doorbell(struct pegpu_dmadev *d, uint64_t batch_gpa)
{
	uint8_t hdr[sizeof(struct pegpu_dma_batch_hdr)];
	uint32_t magic, count, done = 0, nr_ok = 0, bst = PEGPU_ST_OK;
	uint64_t reserved, ents_gpa, ents_len;

	d->cnt[PEGPU_DMA_CNT_DOORBELLS]++;
	d->batch_gpa = batch_gpa;
	d->logged = 0;
	d->unlogged = 0;

	/* Until the header is known good, report through LAST_STATUS only. */
	if (batch_gpa % PEGPU_BATCH_ALIGN)
		return batch_fail(d, PEGPU_ST_BAD_ALIGN, "header not 64-byte aligned");
	if (batch_gpa > UINT64_MAX - HDR_SIZE ||
	    !d->gops->is_ram(d->gopaque, batch_gpa, HDR_SIZE) ||
	    d->gops->read(d->gopaque, batch_gpa, hdr, HDR_SIZE))
		return batch_fail(d, PEGPU_ST_BATCH_NOT_RAM, "header not in guest RAM");

	magic = get_le32(hdr + OFF_HDR_MAGIC);
	count = get_le32(hdr + OFF_HDR_COUNT);
	reserved = get_le64(hdr + OFF_HDR_RESERVED);
	if (magic != PEGPU_BATCH_MAGIC || !count || count > d->lim.max_batch || reserved) {
		char why[96];

		snprintf(why, sizeof(why), "bad header: magic 0x%08" PRIx32 " count %" PRIu32
			 " reserved 0x%" PRIx64, magic, count, reserved);
		write_hdr_result(d, PEGPU_ST_BAD_BATCH, 0);
		return batch_fail(d, PEGPU_ST_BAD_BATCH, why);
	}

	/* The entries' extent needs a sane count, hence this comes after BAD_BATCH. */
	ents_gpa = batch_gpa + HDR_SIZE;
	ents_len = (uint64_t)count * ENTRY_SIZE;	/* <= 2 MiB: max_batch is bounded */
	if (ents_gpa > UINT64_MAX - ents_len || !d->gops->is_ram(d->gopaque, ents_gpa, ents_len))
		return batch_fail(d, PEGPU_ST_BATCH_NOT_RAM, "entries not in guest RAM");

	while (done < count) {
		uint32_t n = count - done < CHUNK_ENTRIES ? count - done : CHUNK_ENTRIES;
		uint64_t chunk_gpa = ents_gpa + (uint64_t)done * ENTRY_SIZE;
		uint32_t i;

		if (d->gops->read(d->gopaque, chunk_gpa, d->chunk, (uint64_t)n * ENTRY_SIZE)) {
			/* RAM vanished under us (hot-unplug); the rest stay PENDING. */
			if (bst == PEGPU_ST_OK)
				bst = PEGPU_ST_BATCH_NOT_RAM;
			d->cnt[PEGPU_DMA_CNT_ERRORS]++;
			dev_log(d, "pegpu-dma: batch 0x%" PRIx64 ": entries from %" PRIu32
				" unreadable\n", batch_gpa, done);
			break;
		}
		for (i = 0; i < n; i++) {
			uint32_t idx = done + i, st;
			struct dma_req r;
			uint64_t iova = 0;

			decode_entry(d->chunk + (size_t)i * ENTRY_SIZE, &r);
			d->cnt[PEGPU_DMA_CNT_ENTRIES]++;
			if (r.op == PEGPU_OP_MAP)
				st = do_map(d, idx, &r, &iova);
			else if (r.op == PEGPU_OP_UNMAP)
				st = do_unmap(d, idx, &r);
			else
				st = entry_fail(d, idx, PEGPU_ST_BAD_OP, "unknown op %u",
						(unsigned int)r.op);

			if (st == PEGPU_ST_OK)
				nr_ok++;
			else if (is_refusal(st))
				d->cnt[PEGPU_DMA_CNT_REFUSALS]++;
			else
				d->cnt[PEGPU_DMA_CNT_ERRORS]++;
			if (st != PEGPU_ST_OK && bst == PEGPU_ST_OK)
				bst = st;
			entry_complete(d, chunk_gpa + (uint64_t)i * ENTRY_SIZE, idx, st,
				       r.op == PEGPU_OP_MAP && st == PEGPU_ST_OK, iova);
		}
		done += n;
	}
	if (d->unlogged)
		dev_log(d, "pegpu-dma: batch 0x%" PRIx64 ": %" PRIu32 " more failed entries"
			" not logged\n", batch_gpa, d->unlogged);

	write_hdr_result(d, bst, nr_ok);
	d->last_status = bst;
	return bst;
}

/* ---------------------------------------------------------------- */
/* reset, translation, counters, registers                           */
/* ---------------------------------------------------------------- */

void pegpu_dmadev_reset(struct pegpu_dmadev *d)
{
	uint32_t i;

	for (i = 0; i <= d->slot_mask; i++) {
		struct live_slot *s = &d->slots[i];
		int ret;

		if (!s->len)
			continue;
		ret = d->bops->unmap(d->bctx, s->iova, s->len);
		if (ret != PEGPU_ST_OK)
			dev_log(d, "pegpu-dma: reset: backend %s failed to unmap iova 0x%" PRIx64
				" len 0x%" PRIx64 ": %s\n", d->bops->name, s->iova, s->len,
				pegpu_dma_status_str((uint32_t)ret));
		s->iova = 0;
		s->len = 0;
	}
	if (d->bops->reset)
		d->bops->reset(d->bctx);
	d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS] = 0;
	d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES] = 0;
	d->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS] = 0;
	d->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES] = 0;
	d->cnt[PEGPU_DMA_CNT_RESETS]++;
	d->last_status = PEGPU_ST_OK;
}

int pegpu_dmadev_translate(struct pegpu_dmadev *d, uint64_t iova, unsigned int dir,
			   uint64_t *gpa, uint64_t *contig)
{
	int ret;

	if (!d->bops->translate) {
		d->cnt[PEGPU_DMA_CNT_FAULTS]++;
		return PEGPU_ST_BACKEND;
	}
	if (!dir || (dir & ~PEGPU_ENTRY_FLAGS_MASK)) {
		d->cnt[PEGPU_DMA_CNT_FAULTS]++;
		return PEGPU_ST_BAD_FLAGS;
	}
	ret = d->bops->translate(d->bctx, iova, dir, gpa, contig);
	if (ret != PEGPU_ST_OK) {
		d->cnt[PEGPU_DMA_CNT_FAULTS]++;
		return ret > 0 ? ret : PEGPU_ST_BACKEND;
	}
	return PEGPU_ST_OK;
}

void pegpu_dmadev_count_fault(struct pegpu_dmadev *d)
{
	d->cnt[PEGPU_DMA_CNT_FAULTS]++;
}

uint64_t pegpu_dmadev_counter(const struct pegpu_dmadev *d, enum pegpu_dma_counter c)
{
	if ((unsigned int)c >= PEGPU_DMA_CNT__COUNT)
		return 0;
	return d->cnt[c];
}

static const char *const counter_names[] = PEGPU_DMA_COUNTER_NAMES_INIT;
_Static_assert(sizeof(counter_names) / sizeof(counter_names[0]) == PEGPU_DMA_CNT__COUNT,
	       "one name per counter");

const char *pegpu_dmadev_counter_name(enum pegpu_dma_counter c)
{
	if ((unsigned int)c >= PEGPU_DMA_CNT__COUNT)
		return NULL;
	return counter_names[c];
}

uint32_t pegpu_dmadev_last_status(const struct pegpu_dmadev *d)
{
	return d->last_status;
}

const char *pegpu_dma_status_str(uint32_t status)
{
	static const char *const names[PEGPU_ST__COUNT] = {
		[PEGPU_ST_OK] = "ok",
		[PEGPU_ST_BAD_OP] = "unknown op",
		[PEGPU_ST_BAD_FLAGS] = "bad flags",
		[PEGPU_ST_BAD_ALIGN] = "not page aligned",
		[PEGPU_ST_BAD_LEN] = "zero or overflowing length",
		[PEGPU_ST_NOT_RAM] = "not guest RAM",
		[PEGPU_ST_NO_SPACE] = "mapped-bytes cap reached",
		[PEGPU_ST_TOO_MANY] = "live-mappings cap reached",
		[PEGPU_ST_NO_IOVA] = "no IOVA space",
		[PEGPU_ST_NOT_MAPPED] = "not a live mapping",
		[PEGPU_ST_LEN_MISMATCH] = "length mismatch",
		[PEGPU_ST_BAD_BATCH] = "bad batch header",
		[PEGPU_ST_BATCH_NOT_RAM] = "batch not in guest RAM",
		[PEGPU_ST_BACKEND] = "backend failure",
	};

	if (status == PEGPU_ST_PENDING)
		return "pending";
	if (status >= PEGPU_ST__COUNT || !names[status])
		return "unknown status";
	return names[status];
}

/* The 8 bytes of register space at off8 (8-byte aligned), 32-bit pairs combined. */
static uint64_t reg_read64(const struct pegpu_dmadev *d, uint64_t off8)
{
	uint64_t base = 0, size = 0;

	if (off8 >= PEGPU_DMA_REG_COUNTERS &&
	    off8 < PEGPU_DMA_REG_COUNTERS + 8 * (uint64_t)PEGPU_DMA_CNT__COUNT)
		return d->cnt[(off8 - PEGPU_DMA_REG_COUNTERS) / 8];

	switch (off8) {
	case PEGPU_DMA_REG_MAGIC:		/* + VERSION */
		return PEGPU_DMA_MAGIC | ((uint64_t)PEGPU_DMA_VERSION << 32);
	case PEGPU_DMA_REG_FEATURES:		/* + PAGE_SHIFT */
		return (PEGPU_DMA_F_COUNTERS | PEGPU_DMA_F_RESET | PEGPU_DMA_F_DIRECTION) |
		       ((uint64_t)d->lim.page_shift << 32);
	case PEGPU_DMA_REG_MAX_BATCH:		/* + MAX_MAPPINGS */
		return d->lim.max_batch | ((uint64_t)d->lim.max_mappings << 32);
	case PEGPU_DMA_REG_MAX_MAPPED:
		return d->lim.max_mapped_bytes;
	case PEGPU_DMA_REG_IOVA_BASE:
	case PEGPU_DMA_REG_IOVA_SIZE:
		if (!d->bops->window)
			return 0;
		d->bops->window(d->bctx, &base, &size);
		return off8 == PEGPU_DMA_REG_IOVA_BASE ? base : size;
	case PEGPU_DMA_REG_CONTROL:		/* write-only low half, LAST_STATUS high */
		return (uint64_t)d->last_status << 32;
	default:
		return 0;
	}
}

uint64_t pegpu_dmadev_reg_read(const struct pegpu_dmadev *d, uint64_t offset, unsigned size)
{
	uint64_t v;
	unsigned int shift;

	if ((size != 1 && size != 2 && size != 4 && size != 8) || (offset % size) ||
	    offset >= PEGPU_DMA_BAR_SIZE)
		return 0;
	v = reg_read64(d, offset & ~7ull);
	shift = (unsigned int)(offset & 7) * 8;
	v >>= shift;
	return size == 8 ? v : v & ((1ull << (size * 8)) - 1);
}

bool pegpu_dmadev_check(const struct pegpu_dmadev *d)
{
	uint64_t live = 0, bytes = 0;
	uint32_t i;

	if (!d)
		return false;
	for (i = 0; i <= d->slot_mask; i++) {
		const struct live_slot *s = &d->slots[i];
		uint32_t j;

		if (!s->len) {
			if (s->iova)
				return false;
			continue;
		}
		if ((s->iova & d->page_mask) || (s->len & d->page_mask))
			return false;
		if (s->len > d->lim.max_mapped_bytes)
			return false;
		/* Reachable: no empty slot between its home and where it sits. */
		for (j = slot_home(d, s->iova); j != i; j = (j + 1) & d->slot_mask) {
			if (!d->slots[j].len || d->slots[j].iova == s->iova)
				return false;
		}
		live++;
		bytes += s->len;
	}
	if (live != d->cnt[PEGPU_DMA_CNT_LIVE_MAPPINGS] ||
	    bytes != d->cnt[PEGPU_DMA_CNT_MAPPED_BYTES])
		return false;
	if (live > d->lim.max_mappings || bytes > d->lim.max_mapped_bytes)
		return false;
	if (d->cnt[PEGPU_DMA_CNT_PEAK_MAPPINGS] < live ||
	    d->cnt[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES] < bytes)
		return false;
	/* a reset drops mappings without UNMAPs, hence >= */
	if (d->cnt[PEGPU_DMA_CNT_MAPS] < d->cnt[PEGPU_DMA_CNT_UNMAPS] ||
	    d->cnt[PEGPU_DMA_CNT_MAPS] - d->cnt[PEGPU_DMA_CNT_UNMAPS] < live)
		return false;
	return d->cnt[PEGPU_DMA_CNT_ENTRIES] >= d->cnt[PEGPU_DMA_CNT_MAPS] +
		d->cnt[PEGPU_DMA_CNT_UNMAPS];
}
