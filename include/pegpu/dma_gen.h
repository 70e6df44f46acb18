/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Synthetic DMA traces: seeded, parameterised workload generators whose
 * output is a stream of trace events (include/pegpu/dma_trace.h).
 *
 * Each profile models how a GPU driver in the guest uses the DMA API, down
 * to where in guest-physical memory the buffers land (that is what decides
 * how well the coalescer can share DART mappings).  docs/dma-traces.md
 * says what each profile models and why its numbers were chosen.
 *
 *   nvidia-loading   the NVIDIA driver loading: GSP firmware, RM's pinned
 *                    pages, bursts of thousands of 4 KiB mappings
 *   game-streaming   a game: steady churn of short-lived buffers per frame
 *   llm-load         a model loaded onto the GPU: large sequential buffers
 *   mixed            all three as overlapping sessions, for hours
 *
 * The same parameters and seed give the same trace on every host (integer
 * arithmetic plus IEEE double +, -, *, / only).
 */
#ifndef PEGPU_DMA_GEN_H
#define PEGPU_DMA_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pegpu/dma_trace.h"

enum pegpu_gen_profile {
	PEGPU_GEN_NVIDIA_LOADING = 0,
	PEGPU_GEN_GAME_STREAMING,
	PEGPU_GEN_LLM_LOAD,
	PEGPU_GEN_MIXED,
	PEGPU_GEN__COUNT
};

/*
 * Every knob; pegpu_gen_defaults() fills in the documented values and
 * pegpu_gen_set() changes one by name (the names are the field names).
 * Sizes are in the unit their name says.
 */
struct pegpu_gen_params {
	enum pegpu_gen_profile profile;
	uint64_t seed;
	uint64_t ram_base;		/* guest RAM, 2 MiB aligned */
	uint32_t ram_mib;		/* guest RAM size */

	/* where pages come from (see the page model in lib/dma_gen.c) */
	uint32_t window;		/* pages a per-CPU list hands out in shuffled order */
	uint32_t skip_pct;		/* pages of a window other kernel users take meanwhile */
	uint32_t user_skip_pct;		/* the same for user (get_user_pages) memory */
	uint32_t adjacent_pct;		/* a new window continues in the next 2 MiB block */
	uint32_t pcp_high;		/* freed pages a per-CPU list keeps for reuse (LIFO) */
	uint32_t foreign_pct;		/* pages the rest of the system holds all along */
	uint32_t hole_reuse_pct;	/* refills that go to recently freed blocks first */

	/* nvidia-loading */
	uint32_t nv_loads;		/* driver load/unload cycles */
	uint32_t nv_load_ms;		/* one load, first map to unload */
	uint32_t nv_fw_kib;		/* GSP firmware image: one sg list of 4 KiB pages */
	uint32_t nv_pinned;		/* RM's pinned 4 KiB pages at init */
	uint32_t nv_coherent;		/* coherent rings/queues at init, 4..64 KiB */
	uint32_t nv_bursts;		/* allocation bursts per load */
	uint32_t nv_burst_min;		/* DMA API calls per burst, uniform */
	uint32_t nv_burst_max;
	uint32_t nv_sg_pct;		/* burst calls that are sg lists of 4 KiB pages */
	uint32_t nv_sg_max;		/* pages in such a list, uniform from 2 */
	uint32_t nv_64k_permille;	/* burst calls of 64 KiB (order 4) */
	uint32_t nv_2m_permille;	/* burst calls of 2 MiB (order 9) */
	uint32_t nv_keep_pct;		/* burst buffers kept until unload */
	uint32_t nv_life_ms;		/* mean life of the others (exponential) */

	/* game-streaming */
	uint32_t gs_seconds;		/* session length */
	uint32_t gs_fps;
	uint32_t gs_calls;		/* DMA API calls per frame */
	uint32_t gs_life_frames;	/* mean buffer life in frames (exponential) */
	uint32_t gs_mid_pct;		/* calls that upload 64 KiB..1 MiB of user pages */
	uint32_t gs_big_pct;		/* calls that stream 2..8 MiB (textures) */
	uint32_t gs_thp_pct;		/* 2 MiB extents of big uploads backed by huge pages */
	uint32_t gs_pinned;		/* driver's pinned 4 KiB pages for the session */

	/* llm-load */
	uint32_t llm_model_mib;		/* weights to upload */
	uint32_t llm_chunk_min_mib;	/* pinned staging buffer per chunk, uniform */
	uint32_t llm_chunk_max_mib;
	uint32_t llm_inflight;		/* chunks mapped at once */
	uint32_t llm_mbps;		/* link bandwidth, MB/s (a chunk lives while it moves) */
	uint32_t llm_thp_pct;		/* 2 MiB extents backed by huge pages */
	uint32_t llm_pinned;		/* runtime's pinned 4 KiB pages for the session */

	/* mixed */
	uint32_t mix_minutes;		/* new sessions start for this long */
	uint32_t mix_gap_s;		/* mean gap between session starts (exponential) */
	uint32_t mix_slots;		/* sessions running at once, at most */
};

/* What the generator produced, for documentation and sanity checks. */
struct pegpu_gen_stats {
	uint64_t calls;			/* MAP events (one per DMA API call) */
	uint64_t segments;		/* MAP + SEG events */
	uint64_t seg_4k;		/* segments of exactly 4 KiB */
	uint64_t seg_le64k;		/* 4 KiB < len <= 64 KiB */
	uint64_t seg_le2m;		/* 64 KiB < len <= 2 MiB */
	uint64_t seg_big;		/* > 2 MiB */
	uint64_t seg_adjacent;		/* start where the previous call's last one ended */
	uint64_t sessions;
	uint64_t end_ns;		/* timestamp of the last event */
};

enum pegpu_gen_err {
	PEGPU_GEN_E_INVAL = -1,		/* bad parameters */
	PEGPU_GEN_E_NOMEM = -2,
	PEGPU_GEN_E_RAM = -3,		/* the modelled guest RAM ran out of free pages */
};

struct pegpu_gen;

const char *pegpu_gen_profile_name(enum pegpu_gen_profile p);
/* -1 if unknown */
int pegpu_gen_profile_parse(const char *name);

void pegpu_gen_defaults(struct pegpu_gen_params *p, enum pegpu_gen_profile profile,
			uint64_t seed);
/* Set one parameter by name ("nv_bursts", "seed", ...); 0 or PEGPU_GEN_E_INVAL. */
int pegpu_gen_set(struct pegpu_gen_params *p, const char *name, const char *value);
/* Write "name=value" lines of every parameter (for reports). */
void pegpu_gen_print_params(const struct pegpu_gen_params *p, FILE *f, const char *prefix);

/* NULL on invalid parameters (see pegpu_gen_check) or no memory. */
struct pegpu_gen *pegpu_gen_new(const struct pegpu_gen_params *p);
int pegpu_gen_check(const struct pegpu_gen_params *p);
void pegpu_gen_free(struct pegpu_gen *g);

/* The trace header a file of this generator's output should carry. */
void pegpu_gen_info(const struct pegpu_gen *g, struct pegpu_trace_info *info);

/*
 * Next event: 1 (filled), 0 (the trace is over: every buffer was unmapped)
 * or a negative pegpu_gen_err.  The stream always obeys the trace
 * sequencing rules and ends with nothing live.
 */
int pegpu_gen_next(struct pegpu_gen *g, struct pegpu_trace_event *ev);

void pegpu_gen_get_stats(const struct pegpu_gen *g, struct pegpu_gen_stats *st);

#endif /* PEGPU_DMA_GEN_H */
