/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trace replay through the coalescer, the device core and the DART
 * emulator (lib/dma_replay.c): doorbell and mapping behaviour of the
 * driver logic, refusals under small caps, recovery paths, and the long
 * mixed replay that must end with nothing mapped and no table grown
 * (issue 3: exhaustion and fragmentation).
 *
 * The long replay simulates two hours of mixed sessions in CI (a few
 * seconds); PEGPU_LONG_REPLAY=1 runs a day at the profiles' full rates.
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

#include "pegpu/dma_gen.h"
#include "pegpu/dma_replay.h"

#define RAM_BASE	0x40000000ull
#define RAM_SIZE	(1ull << 30)
#define KIB		1024ull
#define MIB		(1024ull * 1024)

static void cfg_default(struct pegpu_replay_config *c, uint64_t cluster)
{
	memset(c, 0, sizeof(*c));
	c->cluster_size = cluster;
	c->ram_base = RAM_BASE;
	c->ram_size = RAM_SIZE;
	c->dart_seed = 5;
}

static struct pegpu_replay *new_replay(const struct pegpu_replay_config *c)
{
	struct pegpu_replay *r = pegpu_replay_new(c);

	assert_non_null(r);
	return r;
}

static void ev_map(struct pegpu_replay *r, uint64_t id, uint8_t kind, uint64_t addr,
		   uint64_t len, uint8_t flags)
{
	struct pegpu_trace_event ev = {
		.ts_ns = 1, .id = id, .addr = addr, .len = len, .type = PEGPU_TR_MAP,
		.kind = kind, .dir = PEGPU_DIR_TO_DEVICE, .flags = flags,
	};

	assert_int_equal(pegpu_replay_event(r, &ev), 0);
}

static void ev_seg(struct pegpu_replay *r, uint64_t id, uint64_t addr, uint64_t len, bool more)
{
	struct pegpu_trace_event ev = {
		.ts_ns = 1, .id = id, .addr = addr, .len = len, .type = PEGPU_TR_SEG,
		.kind = PEGPU_TK_SG, .dir = PEGPU_DIR_TO_DEVICE,
		.flags = more ? PEGPU_TF_MORE : 0,
	};

	assert_int_equal(pegpu_replay_event(r, &ev), 0);
}

static void ev_unmap(struct pegpu_replay *r, uint64_t id, uint8_t kind)
{
	struct pegpu_trace_event ev = {
		.ts_ns = 1, .id = id, .type = PEGPU_TR_UNMAP, .kind = kind,
		.dir = PEGPU_DIR_TO_DEVICE,
	};

	assert_int_equal(pegpu_replay_event(r, &ev), 0);
}

/* A scatterlist of n 4 KiB pages, each in its own 1 MiB region. */
static void ev_sg_spread(struct pegpu_replay *r, uint64_t id, unsigned int n, uint64_t base)
{
	unsigned int i;

	ev_map(r, id, PEGPU_TK_SG, base, 4 * KIB, n > 1 ? PEGPU_TF_MORE : 0);
	for (i = 1; i < n; i++)
		ev_seg(r, id, base + i * MIB, 4 * KIB, i + 1 < n);
}

static struct pegpu_replay_stats stats(const struct pegpu_replay *r)
{
	struct pegpu_replay_stats st;

	pegpu_replay_get_stats(r, &st);
	return st;
}

static void assert_consistent(const struct pegpu_replay *r)
{
	char why[256];

	if (!pegpu_replay_check(r, why, sizeof(why)))
		fail_msg("replay inconsistent: %s", why);
}

/* Nothing mapped anywhere, every counter of live state back at zero. */
static void assert_empty(const struct pegpu_replay *r)
{
	struct pegpu_replay_stats st = stats(r);
	const struct pgc *c = pegpu_replay_pgc(r);
	struct dart_emu_stats ds;

	assert_consistent(r);
	dart_emu_get_stats(pegpu_replay_dart(r), &ds);
	assert_int_equal(st.live_mappings, 0);
	assert_int_equal(st.mapped_bytes, 0);
	assert_int_equal(st.live_buffers, 0);
	assert_int_equal(st.live_bytes, 0);
	assert_int_equal(st.demand_buffers, 0);
	assert_int_equal(st.demand_bytes, 0);
	assert_int_equal(ds.live_mappings, 0);
	assert_int_equal(ds.mapped_bytes, 0);
	assert_int_equal(c->st.live_records, 0);
	assert_int_equal(c->st.live_buffers, 0);
	assert_int_equal(c->st.buffer_bytes, 0);
	assert_int_equal(c->st.mapped_bytes, 0);
	assert_int_equal(c->pages_reserved, 0);
}

/* ---------------------------------------------------------------- */
/* driver behaviour                                                  */
/* ---------------------------------------------------------------- */

static void test_cluster_hits_need_no_doorbell(void **state)
{
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	struct pegpu_replay_stats st;

	(void)state;
	cfg_default(&c, 256 * KIB);
	r = new_replay(&c);
	ev_map(r, 1, PEGPU_TK_SINGLE, RAM_BASE + 0x1000, 4 * KIB, 0);
	st = stats(r);
	assert_int_equal(st.doorbells, 1);
	assert_int_equal(st.live_mappings, 1);
	assert_int_equal(st.mapped_bytes, 256 * KIB);
	/* same cluster: a hit, no device work */
	ev_map(r, 2, PEGPU_TK_SINGLE, RAM_BASE + 0x9000, 4 * KIB, 0);
	ev_map(r, 3, PEGPU_TK_COHERENT, RAM_BASE + 0x20000, 64 * KIB, 0);
	st = stats(r);
	assert_int_equal(st.doorbells, 1);
	assert_int_equal(st.live_mappings, 1);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.live_buffers, 3);
	/* unmapping a buffer of a still-used cluster: no device work either */
	ev_unmap(r, 1, PEGPU_TK_SINGLE);
	ev_unmap(r, 3, PEGPU_TK_COHERENT);
	assert_int_equal(stats(r).doorbells, 1);
	ev_unmap(r, 2, PEGPU_TK_SINGLE);
	st = stats(r);
	assert_int_equal(st.doorbells, 2);
	assert_int_equal(st.ops, 6);
	assert_empty(r);
	pegpu_replay_free(r);
}

static void test_sg_is_one_doorbell(void **state)
{
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	struct pegpu_replay_stats st;

	(void)state;
	cfg_default(&c, 256 * KIB);
	r = new_replay(&c);
	ev_sg_spread(r, 7, 5, RAM_BASE + 16 * MIB);
	st = stats(r);
	assert_int_equal(st.doorbells, 1);
	assert_int_equal(st.entries, 5);
	assert_int_equal(st.live_mappings, 5);
	ev_unmap(r, 7, PEGPU_TK_SG);
	st = stats(r);
	assert_int_equal(st.doorbells, 2);	/* all five UNMAPs in one batch */
	assert_int_equal(st.entries, 10);
	assert_empty(r);
	pegpu_replay_free(r);

	/* a device batch of 2 splits the list: 3 MAP doorbells, 3 UNMAP doorbells */
	c.max_batch = 2;
	r = new_replay(&c);
	ev_sg_spread(r, 7, 5, RAM_BASE + 16 * MIB);
	assert_int_equal(stats(r).doorbells, 3);
	ev_unmap(r, 7, PEGPU_TK_SG);
	assert_int_equal(stats(r).doorbells, 6);
	assert_empty(r);
	pegpu_replay_free(r);
}

static void test_baseline_one_doorbell_per_segment(void **state)
{
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	struct pegpu_replay_stats st;

	(void)state;
	cfg_default(&c, 0);
	c.baseline = true;
	r = new_replay(&c);
	ev_sg_spread(r, 1, 4, RAM_BASE + 16 * MIB);
	ev_map(r, 2, PEGPU_TK_SINGLE, RAM_BASE + 0x1000, 4 * KIB, 0);
	st = stats(r);
	assert_int_equal(st.doorbells, 5);
	assert_int_equal(st.live_mappings, 5);
	/* 4 KiB buffers in 16 KiB DART pages */
	assert_int_equal(st.mapped_bytes, 5 * 16 * KIB);
	assert_int_equal(st.live_bytes, 5 * 4 * KIB);
	ev_unmap(r, 1, PEGPU_TK_SG);
	ev_unmap(r, 2, PEGPU_TK_SINGLE);
	st = stats(r);
	assert_int_equal(st.doorbells, 10);
	assert_int_equal(st.ops, 10);
	assert_empty(r);
	pegpu_replay_free(r);
}

/* Off: exact mappings, but a scatterlist is still one doorbell. */
static void test_coalescing_off(void **state)
{
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	struct pegpu_replay_stats st;

	(void)state;
	cfg_default(&c, 0);
	r = new_replay(&c);
	ev_map(r, 1, PEGPU_TK_SINGLE, RAM_BASE + 0x1000, 4 * KIB, 0);
	ev_map(r, 2, PEGPU_TK_SINGLE, RAM_BASE + 0x9000, 4 * KIB, 0);
	ev_sg_spread(r, 3, 3, RAM_BASE + 16 * MIB);
	st = stats(r);
	assert_int_equal(st.live_mappings, 5);
	assert_int_equal(st.doorbells, 3);
	assert_int_equal(st.hits, 0);
	pegpu_replay_unmap_all(r);
	assert_empty(r);
	pegpu_replay_free(r);
}

/*
 * Under tiny caps a map is refused, a scatterlist that does not fit is
 * rolled back whole, nothing ever exceeds a cap and everything recovers.
 */
static void test_refusals_and_rollback(void **state)
{
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	struct pegpu_replay_stats st;
	unsigned int i;

	(void)state;
	cfg_default(&c, 0);
	c.max_mappings = 4;
	r = new_replay(&c);
	for (i = 0; i < 3; i++)
		ev_map(r, 10 + i, PEGPU_TK_SINGLE, RAM_BASE + i * MIB, 4 * KIB, 0);
	/* needs 3 new mappings, 1 left: refused as a whole */
	ev_sg_spread(r, 20, 3, RAM_BASE + 64 * MIB);
	st = stats(r);
	assert_int_equal(st.map_failures, 1);
	assert_int_equal(st.refused_calls, 1);
	assert_int_equal(st.live_mappings, 3);
	assert_int_equal(st.live_buffers, 3);
	assert_int_equal(st.demand_buffers, 6);
	assert_consistent(r);
	/* its UNMAP (the guest got an error, a recorded trace may still say so) is harmless */
	ev_unmap(r, 20, PEGPU_TK_SG);
	ev_map(r, 13, PEGPU_TK_SINGLE, RAM_BASE + 100 * MIB, 4 * KIB, 0);
	ev_map(r, 14, PEGPU_TK_SINGLE, RAM_BASE + 101 * MIB, 4 * KIB, 0);
	st = stats(r);
	assert_int_equal(st.live_mappings, 4);
	assert_int_equal(st.peak_mappings, 4);
	assert_int_equal(st.map_failures, 2);
	pegpu_replay_unmap_all(r);
	assert_empty(r);
	/* after the pressure is gone, maps work again */
	ev_map(r, 30, PEGPU_TK_SINGLE, RAM_BASE, 4 * KIB, 0);
	assert_int_equal(stats(r).live_mappings, 1);
	pegpu_replay_free(r);

	/* the bytes cap, with clusters: 2 clusters of 256 KiB fit, not 3 */
	cfg_default(&c, 256 * KIB);
	c.max_mapped_bytes = 512 * KIB;
	r = new_replay(&c);
	ev_map(r, 1, PEGPU_TK_SINGLE, RAM_BASE, 4 * KIB, 0);
	ev_map(r, 2, PEGPU_TK_SINGLE, RAM_BASE + MIB, 4 * KIB, 0);
	ev_map(r, 3, PEGPU_TK_SINGLE, RAM_BASE + 2 * MIB, 4 * KIB, 0);
	ev_map(r, 4, PEGPU_TK_SINGLE, RAM_BASE + 4 * KIB, 4 * KIB, 0);	/* hit: fine */
	st = stats(r);
	assert_int_equal(st.map_failures, 1);
	assert_int_equal(st.mapped_bytes, 512 * KIB);
	assert_int_equal(st.live_buffers, 3);
	pegpu_replay_unmap_all(r);
	assert_empty(r);
	pegpu_replay_free(r);
}

/* A cluster that is not all guest RAM is not mapped as a cluster. */
static void test_cluster_at_ram_edge(void **state)
{
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	struct pegpu_replay_stats st;

	(void)state;
	cfg_default(&c, 1 * MIB);
	c.ram_base = RAM_BASE + 512 * KIB;	/* the first 1 MiB cluster is half outside */
	r = new_replay(&c);
	ev_map(r, 1, PEGPU_TK_SINGLE, c.ram_base + 4 * KIB, 4 * KIB, 0);
	st = stats(r);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.mapped_bytes, 16 * KIB);	/* exact */
	ev_unmap(r, 1, PEGPU_TK_SINGLE);
	assert_empty(r);
	/* outside guest RAM entirely: the device says NOT_RAM, the guest gets an error */
	ev_map(r, 2, PEGPU_TK_SINGLE, 0x1000, 4 * KIB, 0);
	st = stats(r);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.map_failures, 1);
	assert_consistent(r);
	pegpu_replay_free(r);
}

/* Recorded traces: drops leave unknown unmaps and reused ids; FAILED maps are skipped. */
static void test_irregular_traces(void **state)
{
	struct pegpu_trace_event drop = { .ts_ns = 1, .type = PEGPU_TR_DROP, .addr = 5 };
	struct pegpu_trace_event bad = { .ts_ns = 0, .type = PEGPU_TR_DROP, .addr = 1 };
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	struct pegpu_replay_stats st;

	(void)state;
	cfg_default(&c, 256 * KIB);
	r = new_replay(&c);
	assert_int_equal(pegpu_replay_event(r, &drop), 0);
	ev_unmap(r, 99, PEGPU_TK_SINGLE);
	ev_map(r, 1, PEGPU_TK_SINGLE, RAM_BASE, 4 * KIB, 0);
	ev_map(r, 1, PEGPU_TK_SINGLE, RAM_BASE + 10 * MIB, 4 * KIB, 0);	/* id reused */
	ev_map(r, 2, PEGPU_TK_SG, RAM_BASE + 20 * MIB, 4 * KIB,
	       PEGPU_TF_MORE | PEGPU_TF_FAILED);
	ev_seg(r, 2, RAM_BASE + 30 * MIB, 4 * KIB, false);
	st = stats(r);
	assert_int_equal(st.dropped, 5);
	assert_int_equal(st.unknown_unmaps, 1);
	assert_int_equal(st.dup_maps, 1);
	assert_int_equal(st.skipped_failed, 1);
	assert_int_equal(st.live_mappings, 1);		/* the first id 1 was unmapped */
	assert_consistent(r);
	/* time going back breaks the rules: the engine stops */
	assert_int_equal(pegpu_replay_event(r, &bad), PEGPU_TRACE_E_FORMAT);
	assert_int_equal(pegpu_replay_event(r, &drop), PEGPU_TRACE_E_FORMAT);
	pegpu_replay_free(r);
}

/* Module unload and guest reboot release everything the guest held. */
static void test_release_and_reset(void **state)
{
	struct pegpu_replay_config c;
	struct pegpu_replay *r;
	unsigned int i, round;

	(void)state;
	for (round = 0; round < 2; round++) {
		cfg_default(&c, 256 * KIB);
		r = new_replay(&c);
		for (i = 0; i < 200; i++)
			ev_map(r, i + 1, PEGPU_TK_SINGLE, RAM_BASE + i * 100 * KIB, 4 * KIB, 0);
		ev_sg_spread(r, 1000, 50, RAM_BASE + 512 * MIB);
		assert_true(stats(r).live_mappings > 100);
		if (round == 0)
			pegpu_replay_release_all(r);
		else
			pegpu_replay_device_reset(r);
		assert_empty(r);
		/* and the stack works afterwards */
		ev_map(r, 1, PEGPU_TK_SINGLE, RAM_BASE, 4 * KIB, 0);
		assert_int_equal(stats(r).live_mappings, 1);
		pegpu_replay_unmap_all(r);
		assert_empty(r);
		pegpu_replay_free(r);
	}
}

/* ---------------------------------------------------------------- */
/* the long mixed replay                                             */
/* ---------------------------------------------------------------- */

static bool long_mode(void)
{
	const char *e = getenv("PEGPU_LONG_REPLAY");

	return e && *e && strcmp(e, "0");
}

static void mixed_params(struct pegpu_gen_params *p, uint64_t seed)
{
	pegpu_gen_defaults(p, PEGPU_GEN_MIXED, seed);
	if (long_mode()) {
		/* a day of sessions at the profiles' own rates */
		p->mix_minutes = 24 * 60;
		p->mix_gap_s = 600;
		return;
	}
	/*
	 * Two hours of sessions, each thinner than the benchmark's so CI
	 * stays in seconds: fewer and smaller calls, same shapes.
	 */
	p->mix_minutes = 120;
	p->mix_gap_s = 240;
	p->nv_fw_kib = 8192;
	p->nv_pinned = 1024;
	p->nv_bursts = 6;
	p->nv_burst_max = 512;
	p->gs_seconds = 30;
	p->gs_fps = 20;
	p->gs_calls = 4;
	p->gs_mid_pct = 5;
	p->gs_pinned = 512;
	p->llm_model_mib = 512;
	p->llm_pinned = 128;
}

struct long_result {
	struct pegpu_replay_stats st;
	uint64_t sessions;
	uint64_t sim_ns;
};

static void long_replay(const struct pegpu_replay_config *c, uint64_t seed,
			struct long_result *res)
{
	struct pegpu_gen_params p;
	struct pegpu_trace_event ev;
	struct pegpu_gen_stats gst;
	struct pegpu_replay *r;
	struct pegpu_gen *g;
	uint64_t n = 0, slots_mid = 0, last_ts = 0;
	int got;

	mixed_params(&p, seed);
	g = pegpu_gen_new(&p);
	assert_non_null(g);
	r = new_replay(c);
	while ((got = pegpu_gen_next(g, &ev)) == 1) {
		assert_int_equal(pegpu_replay_event(r, &ev), 0);
		n++;
		if (n % 100000 == 0)
			assert_consistent(r);
		/* the id table only grows to the first peaks, never with time */
		if (!slots_mid && ev.ts_ns > p.mix_minutes * 30ull * 1000000000ull)
			slots_mid = stats(r).id_slots;
		last_ts = ev.ts_ns;
	}
	assert_int_equal(got, 0);
	pegpu_replay_get_stats(r, &res->st);
	pegpu_gen_get_stats(g, &gst);
	res->sessions = gst.sessions;
	res->sim_ns = last_ts;
	assert_true(slots_mid > 0);
	assert_int_equal(res->st.id_slots, slots_mid);

	/* the trace unmapped everything: nothing may be left anywhere */
	assert_empty(r);
	assert_int_equal(pegpu_dmadev_counter(pegpu_replay_dev(r), PEGPU_DMA_CNT_MAPS),
			 pegpu_dmadev_counter(pegpu_replay_dev(r), PEGPU_DMA_CNT_UNMAPS));
	assert_int_equal(res->st.errors, 0);

	/*
	 * No fragmentation creep: after hours of churn the DART can still
	 * take one mapping of the whole byte budget (bar one page).
	 */
	ev.ts_ns = last_ts;
	ev.id = 1ull << 62;
	ev.addr = p.ram_base;
	ev.len = c->max_mapped_bytes - 16 * KIB;
	ev.type = PEGPU_TR_MAP;
	ev.kind = PEGPU_TK_SINGLE;
	ev.dir = PEGPU_DIR_TO_DEVICE;
	ev.flags = 0;
	assert_int_equal(pegpu_replay_event(r, &ev), 0);
	assert_int_equal(stats(r).live_mappings, 1);
	assert_int_equal(stats(r).map_failures, res->st.map_failures);
	ev.type = PEGPU_TR_UNMAP;
	ev.addr = 0;
	assert_int_equal(pegpu_replay_event(r, &ev), 0);
	assert_empty(r);
	pegpu_replay_free(r);
	pegpu_gen_free(g);
}

static void mixed_config(struct pegpu_replay_config *c, uint64_t cluster)
{
	struct pegpu_gen_params p;

	mixed_params(&p, 0);
	cfg_default(c, cluster);
	c->ram_base = p.ram_base;
	c->ram_size = (uint64_t)p.ram_mib * MIB;
	/* the DART's real budget; the long test needs it for the final check */
	c->max_mapped_bytes = DART_EMU_DEFAULT_MAX_BYTES;
}

static void test_long_mixed_replay(void **state)
{
	struct pegpu_replay_config c;
	struct long_result res;

	(void)state;
	mixed_config(&c, 256 * KIB);
	long_replay(&c, 11, &res);
	print_message("long replay: %.1f simulated hours, %llu sessions, %llu ops, "
		      "peak %llu mappings\n", res.sim_ns / 3.6e12,
		      (unsigned long long)res.sessions, (unsigned long long)res.st.ops,
		      (unsigned long long)res.st.peak_mappings);
	/* sessions start for two hours; the last ones end around then */
	assert_true(res.sim_ns >= 90 * 60ull * 1000000000ull);
	assert_true(res.sessions >= 10);
	/* under the real caps nothing is refused */
	assert_int_equal(res.st.map_failures, 0);
	assert_int_equal(res.st.refusals, 0);
	assert_true(res.st.hits > res.st.misses);
}

/*
 * The same hours under caps the workload exceeds: maps are refused (and
 * counted), never over a cap, and when the load goes away nothing is left.
 */
static void test_long_replay_exhausted(void **state)
{
	struct pegpu_replay_config c;
	struct long_result res;

	(void)state;
	mixed_config(&c, 64 * KIB);
	c.max_mappings = 512;
	c.max_mapped_bytes = 128 * MIB;
	long_replay(&c, 12, &res);
	print_message("exhausted replay: %llu refusals in %llu failed calls, peak %llu "
		      "mappings / %llu MiB\n", (unsigned long long)res.st.refusals,
		      (unsigned long long)res.st.map_failures,
		      (unsigned long long)res.st.peak_mappings,
		      (unsigned long long)(res.st.peak_mapped_bytes >> 20));
	assert_true(res.st.map_failures > 0);
	assert_true(res.st.peak_mappings <= 512);
	assert_true(res.st.peak_mapped_bytes <= 128 * MIB);
	assert_true(res.st.no_iova + res.st.refused_calls >= res.st.map_failures);
}

/* The baseline design under the same hours: more mappings, same clean end. */
static void test_long_replay_baseline(void **state)
{
	struct pegpu_replay_config c;
	struct long_result res, coal;

	(void)state;
	if (!long_mode()) {
		/* the baseline doubles the run time; the coalesced runs cover CI */
		skip();
	}
	mixed_config(&c, 0);
	c.baseline = true;
	long_replay(&c, 11, &res);
	mixed_config(&c, 256 * KIB);
	long_replay(&c, 11, &coal);
	assert_true(res.st.peak_mappings > coal.st.peak_mappings);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_hits_need_no_doorbell),
		cmocka_unit_test(test_sg_is_one_doorbell),
		cmocka_unit_test(test_baseline_one_doorbell_per_segment),
		cmocka_unit_test(test_coalescing_off),
		cmocka_unit_test(test_refusals_and_rollback),
		cmocka_unit_test(test_cluster_at_ram_edge),
		cmocka_unit_test(test_irregular_traces),
		cmocka_unit_test(test_release_and_reset),
		cmocka_unit_test(test_long_mixed_replay),
		cmocka_unit_test(test_long_replay_exhausted),
		cmocka_unit_test(test_long_replay_baseline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
