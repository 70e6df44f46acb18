/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User-space replay of DMA traces through the real pieces: the cluster
 * coalescer (lib/coalesce.c) plays pegpu_dma.ko, the pegpu-dma device core
 * (lib/dma_dev.c) with the emu backend over the DART emulator plays the
 * host.  Batches are built in a fake guest RAM exactly as the kmod builds
 * them (guest/kmod/pegpu_dma_ops.c): a map that hits a live cluster needs
 * no device work, a miss is one batch of one MAP, a scatterlist is one
 * batch of all its new MAPs (split only at the batch capacity), an unmap
 * that releases a mapping is one batch of one UNMAP.
 *
 * One engine for the benchmark (bench/dma-coalesce), the unit tests and
 * the fuzz targets.  Not thread-safe.
 */
#ifndef PEGPU_DMA_REPLAY_H
#define PEGPU_DMA_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pegpu/coalesce.h"
#include "pegpu/dart_emu.h"
#include "pegpu/dma_dev.h"
#include "pegpu/dma_trace.h"

/* The kmod's batch buffer holds at most this many entries (PEGPU_DMA_BATCH_ENTRIES_MAX). */
#define PEGPU_REPLAY_DRIVER_BATCH_MAX	16384u
/* QEMU's pegpu-dma max-batch default. */
#define PEGPU_REPLAY_DEFAULT_MAX_BATCH	1024u
/* Longest scatterlist the engine accepts. */
#define PEGPU_REPLAY_MAX_SG		(1u << 20)

struct pegpu_replay_config {
	uint64_t cluster_size;		/* 0 = coalescing off (every buffer exact) */
	/*
	 * The naive design to compare against: no coalescer, one exact DART
	 * mapping and one doorbell per segment, for maps and unmaps alike.
	 */
	bool baseline;
	uint32_t max_batch;		/* device MAX_BATCH; 0 = QEMU's default */
	uint32_t max_mappings;		/* DART caps; 0 = the DART defaults */
	uint64_t max_mapped_bytes;
	uint64_t iova_size;		/* DART IOVA window; 0 = default */
	uint64_t dart_seed;
	uint64_t ram_base;		/* guest RAM; size >= 4 MiB */
	uint64_t ram_size;
};

struct pegpu_replay_stats {
	uint64_t events;		/* trace events consumed */
	uint64_t calls;			/* map calls replayed */
	uint64_t segments;		/* their segments */
	uint64_t unmap_calls;
	uint64_t seg_unmaps;		/* segments of buffers unmapped */
	uint64_t ops;			/* segments + seg_unmaps: the unit of "per 1000 ops" */
	uint64_t map_failures;		/* calls that returned DMA_MAPPING_ERROR / an errno */
	uint64_t refused_calls;		/* ... of them because of a cap or IOVA space */

	/* the device's counters */
	uint64_t doorbells;
	uint64_t entries;
	uint64_t refusals;
	uint64_t errors;		/* malformed entries (NOT_RAM: a trace outside guest RAM) */
	uint64_t live_mappings;
	uint64_t mapped_bytes;
	uint64_t peak_mappings;
	uint64_t peak_mapped_bytes;

	/* buffers (segments) the guest holds mapped */
	uint64_t live_buffers;
	uint64_t live_bytes;
	uint64_t peak_buffers;
	uint64_t peak_bytes;
	/* ... as the trace asks for them, whether or not the map worked */
	uint64_t demand_buffers;
	uint64_t demand_bytes;
	uint64_t demand_peak_buffers;
	uint64_t demand_peak_bytes;

	uint64_t no_iova;		/* MAPs the DART refused for IOVA space (legitimate) */

	uint64_t hits;			/* coalescer: maps that needed no MAP */
	uint64_t misses;

	/* trace irregularities (recorded traces with drops have them) */
	uint64_t unknown_unmaps;	/* UNMAP of an id not live */
	uint64_t dup_maps;		/* MAP of a live id: the old one is unmapped first */
	uint64_t skipped_failed;	/* MAPs the recorder flagged FAILED */
	uint64_t dropped;		/* events the recorder lost */

	/* must stay 0: the engine or the device misbehaved */
	uint64_t guest_faults;		/* device touched fake RAM outside the batch buffer */
	uint64_t unmap_failures;	/* an UNMAP the driver posted failed */
	uint64_t broken;		/* the device returned an IOVA the coalescer rejected */
	uint64_t dart_cap_refusals;	/* the DART hit a cap: the device let too much through */

	uint64_t id_slots;		/* capacity of the live-id table (growth check) */
};

struct pegpu_replay;

/* NULL on an invalid config or no memory. */
struct pegpu_replay *pegpu_replay_new(const struct pegpu_replay_config *cfg);
void pegpu_replay_free(struct pegpu_replay *r);

/*
 * Replay one event.  0, or PEGPU_TRACE_E_FORMAT for an event that breaks
 * the trace rules (the engine then refuses further events), or
 * PEGPU_TRACE_E_NOMEM.
 */
int pegpu_replay_event(struct pegpu_replay *r, const struct pegpu_trace_event *ev);
int pegpu_replay_trace(struct pegpu_replay *r, const struct pegpu_trace *t);

/* Unmap every live buffer the way its owner would (dma_unmap_*, dma_free_*). */
void pegpu_replay_unmap_all(struct pegpu_replay *r);

/*
 * The kmod's remove/unload path (pegpu_dma_release_all): drain the
 * coalescer into UNMAP batches, then CONTROL.RESET.  Buffers still held
 * are forgotten.
 */
void pegpu_replay_release_all(struct pegpu_replay *r);

/* A device reset (guest reboot): the device drops everything, the driver
 * (a new boot) starts with an empty coalescer. */
void pegpu_replay_device_reset(struct pegpu_replay *r);

void pegpu_replay_get_stats(const struct pegpu_replay *r, struct pegpu_replay_stats *st);

/*
 * Every consistency check at once: pgc_check, pegpu_dmadev_check,
 * dart_emu_check, and that the coalescer, the device and the DART agree on
 * live mappings and bytes, that the coalescer's buffer counts match the
 * engine's, that the DART never hit a cap (the device must refuse first)
 * and that nothing else that must stay 0 moved.  Device `errors` are not
 * checked: a trace may name memory outside guest RAM.  On failure, why (if
 * not NULL) says which.
 */
bool pegpu_replay_check(const struct pegpu_replay *r, char *why, size_t whylen);

/* The parts, for tests that look deeper. */
const struct pgc *pegpu_replay_pgc(const struct pegpu_replay *r);
const struct pegpu_dmadev *pegpu_replay_dev(const struct pegpu_replay *r);
const struct dart_emu *pegpu_replay_dart(const struct pegpu_replay *r);

#endif /* PEGPU_DMA_REPLAY_H */
