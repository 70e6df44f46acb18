/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * Cluster coalescer: decides which DART mapping each DMA buffer uses, so
 * that thousands of small buffers share a few mappings.
 *
 * Guest-physical memory is cut into aligned clusters (256 KiB by default).
 * A buffer that lies inside one cluster takes a reference on a mapping of
 * the whole cluster (created on first use, unmapped when the last reference
 * goes); any other buffer gets an exact mapping of its pages rounded to the
 * DART page.  With cluster_size 0 every buffer gets an exact mapping.
 *
 * The core does no I/O and no allocation: it plans.  pgc_map() says
 * whether a buffer hits an existing mapping or needs a MAP; the caller
 * batches the MAPs, rings the device, and reports each outcome with
 * pgc_map_done()/pgc_map_failed().  pgc_unmap() says whether an UNMAP is
 * due.  All lookups are O(1) (hash tables with backward-shift deletion, so
 * no tombstones accumulate).
 *
 * Pure C without libc: compiled into pegpu_dma.ko and into the unit tests.
 * Not thread-safe: the caller serialises (the kmod holds a spinlock).
 */
#ifndef PEGPU_COALESCE_H
#define PEGPU_COALESCE_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#endif

#define PGC_NONE	0xffffffffu	/* no record */

/* return codes (negative: errors) */
enum pgc_result {
	PGC_HIT = 0,		/* pgc_map: reuses a live or pending mapping, no MAP */
	PGC_NEW = 1,		/* pgc_map: caller must MAP req->addr/len */
	PGC_KEEP = 2,		/* pgc_unmap/put: still referenced, no UNMAP */
	PGC_RELEASE = 3,	/* pgc_unmap/put: caller must UNMAP req->iova/len */
	PGC_E_INVAL = -1,	/* bad arguments (zero length, overflow, ...) */
	PGC_E_FULL = -2,	/* out of records or table space */
	PGC_E_NOENT = -3,	/* dma address belongs to no mapping */
	PGC_E_FAILED = -4,	/* the mapping this buffer needs failed in this batch */
};

enum pgc_kind { PGC_KIND_CLUSTER = 1, PGC_KIND_EXACT = 2 };

struct pgc_config {
	uint64_t cluster_size;	/* 0 = off; else a power of two >= page size */
	uint32_t page_shift;	/* DART page: 14 */
	uint32_t max_records;	/* live + pending mappings, e.g. the device's cap */
	uint64_t max_pages;	/* live IOVA pages, e.g. max_mapped_bytes >> page_shift */
	/*
	 * Optional: may a whole cluster at [base, base + size) be mapped?
	 * (The kmod checks it is all System RAM.)  NULL = always.  If it says
	 * no, the buffer gets an exact mapping instead.
	 */
	bool (*cluster_ok)(void *ctx, uint64_t base, uint64_t size);
	void *ctx;
};

/* What the caller must tell the device. */
struct pgc_req {
	uint32_t rec;		/* record the request is for */
	uint64_t addr;		/* MAP: guest-physical start (page aligned) */
	uint64_t len;		/* MAP/UNMAP: bytes (page multiple) */
	uint64_t iova;		/* UNMAP: the mapping's IOVA */
};

/* A buffer's handle on its mapping: dma address = rec's iova + offset. */
struct pgc_ref {
	uint32_t rec;
	uint64_t offset;
	uint64_t len;		/* buffer length; pgc_put uses it for the stats */
};

struct pgc_stats {
	uint64_t live_records;		/* mappings live now (cluster + exact) */
	uint64_t live_clusters;
	uint64_t live_exact;
	uint64_t mapped_bytes;		/* bytes of live mappings */
	uint64_t live_buffers;		/* references held */
	uint64_t buffer_bytes;		/* bytes of the buffers referencing them */
	uint64_t peak_records;
	uint64_t peak_mapped_bytes;
	uint64_t hits;			/* pgc_map that needed no MAP */
	uint64_t misses;		/* pgc_map that needed a MAP */
	uint64_t releases;		/* records whose UNMAP was requested */
};

struct pgc_record;	/* private */
struct pgc_slot;	/* private */

struct pgc {
	struct pgc_config cfg;
	struct pgc_record *recs;
	struct pgc_slot *cluster_tab;	/* cluster index -> record */
	struct pgc_slot *page_tab;	/* IOVA page -> record */
	uint32_t cluster_mask;		/* table size - 1 */
	uint64_t page_mask_tab;		/* table size - 1 */
	uint32_t free_head;
	uint32_t drain_next;		/* pgc_drain_one's scan position */
	uint64_t pages_reserved;	/* IOVA pages of live + pending records */
	struct pgc_stats st;
};

/* Bytes of memory pgc_init() needs for cfg; 0 if cfg is invalid. */
size_t pgc_mem_size(const struct pgc_config *cfg);

/* mem: pgc_mem_size(cfg) bytes, 16-byte aligned, contents irrelevant. */
int pgc_init(struct pgc *c, const struct pgc_config *cfg, void *mem);

/*
 * Plan the mapping of buffer [phys, phys + len).  Fills *ref.  Returns
 * PGC_HIT (no device work; if the record is still pending in this batch,
 * its dma address is known after pgc_map_done), PGC_NEW (fills *req: the
 * caller MAPs req->addr/req->len and then calls pgc_map_done or
 * pgc_map_failed with req->rec), or an error.
 */
int pgc_map(struct pgc *c, uint64_t phys, uint64_t len, struct pgc_ref *ref,
	    struct pgc_req *req);

/*
 * The MAP for rec succeeded at iova: the record becomes live.  An iova the
 * tables cannot take (not page aligned, wrapping, overlapping a live
 * mapping) makes it failed instead; pgc_dma_addr() then returns false.
 */
void pgc_map_done(struct pgc *c, uint32_t rec, uint64_t iova);

/*
 * The MAP for rec failed.  Every reference taken on it (by pgc_map in this
 * batch) must be dropped with pgc_put(); the last one frees the record
 * without an UNMAP.
 */
void pgc_map_failed(struct pgc *c, uint32_t rec);

/* dma address of a buffer whose record is live; PGC_E_FAILED-safe: returns
 * false if the record is not live. */
bool pgc_dma_addr(const struct pgc *c, const struct pgc_ref *ref, uint64_t *dma);

/*
 * Drop one reference (rollback of a pgc_map, e.g. when a later buffer of
 * the same scatterlist failed).  Returns PGC_KEEP, or PGC_RELEASE with
 * *req filled if the record was live and must be unmapped, or 0 if it was
 * a failed/pending record that just went away.
 */
int pgc_put(struct pgc *c, const struct pgc_ref *ref, struct pgc_req *req);

/*
 * Unmap the buffer mapped at dma address `dma` with length len (as the DMA
 * API passes them).  Returns PGC_KEEP, PGC_RELEASE (*req filled; the record
 * is already gone from the tables), or PGC_E_NOENT.
 */
int pgc_unmap(struct pgc *c, uint64_t dma, uint64_t len, struct pgc_req *req);

/* Guest-physical address behind a dma address (for sync ops); false if unknown. */
bool pgc_lookup(const struct pgc *c, uint64_t dma, uint64_t *phys);

/*
 * Visit every live record (debugfs, unload).  The callback gets the kind,
 * iova, guest-physical address, length and reference count.
 */
typedef void (*pgc_visit_fn)(void *ctx, enum pgc_kind kind, uint64_t iova, uint64_t phys,
			     uint64_t len, uint32_t refs);
void pgc_for_each(const struct pgc *c, pgc_visit_fn fn, void *ctx);

/*
 * Forget every record, live or not, and fill *req for the next live one to
 * unmap: call repeatedly until it returns false (unload path).
 */
bool pgc_drain_one(struct pgc *c, struct pgc_req *req);

/* Internal consistency (refcounts vs tables vs stats); tests and fuzzing. */
bool pgc_check(const struct pgc *c);

#endif /* PEGPU_COALESCE_H */
