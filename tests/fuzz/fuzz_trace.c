/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: DMA trace parsing (lib/dma_trace.c), binary and text,
 * and the replay of whatever parses (lib/dma_replay.c) through the
 * coalescer, the device core and the DART emulator under small caps.
 *
 * Properties: the parser never crashes, leaks or reads out of bounds; a
 * refused input leaves an empty trace; an accepted trace survives a round
 * trip through both formats unchanged; and any accepted trace, however
 * odd (unknown ids, reused ids, buffers outside guest RAM, huge lists,
 * drops), replays with the coalescer, device and DART consistent with
 * each other and never over a cap, and leaves nothing mapped once its
 * buffers are unmapped or the driver is unloaded.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "pegpu/dma_replay.h"
#include "pegpu/dma_trace.h"

static bool word(const char *s)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '#')
			return false;
	return n > 0;
}

static void same_events(const struct pegpu_trace *a, const struct pegpu_trace *b)
{
	size_t i;

	PROP(a->n == b->n, "%zu events became %zu", a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const struct pegpu_trace_event *x = &a->ev[i], *y = &b->ev[i];

		PROP(x->ts_ns == y->ts_ns && x->id == y->id && x->addr == y->addr &&
		     x->len == y->len && x->type == y->type && x->kind == y->kind &&
		     x->dir == y->dir && x->flags == y->flags, "event %zu changed", i);
	}
}

static void roundtrip(const struct pegpu_trace *t, enum pegpu_trace_format fmt)
{
	struct pegpu_trace_writer w;
	struct pegpu_trace u;
	char *buf = NULL, err[160];
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	PROP(f, "open_memstream");
	ret = pegpu_trace_writer_begin(&w, f, fmt, &t->info);
	for (i = 0; !ret && i < t->n; i++)
		ret = pegpu_trace_writer_put(&w, &t->ev[i]);
	if (!ret)
		ret = pegpu_trace_writer_end(&w);
	fclose(f);
	PROP(ret == 0, "writing an accepted trace failed: %s", pegpu_trace_strerror(ret));
	ret = pegpu_trace_parse(buf, len, &u, err, sizeof(err));
	PROP(ret == 0, "re-reading format %d failed: %s", fmt, err);
	same_events(t, &u);
	PROP(u.info.seed == t->info.seed, "seed");
	PROP(u.info.ram_size == t->info.ram_size, "ram size");
	if (t->info.ram_size)
		PROP(u.info.ram_base == t->info.ram_base, "ram base");
	if (fmt == PEGPU_TRACE_BINARY || word(t->info.source))
		PROP(!strcmp(u.info.source, t->info.source), "source");
	pegpu_trace_free(&u);
	free(buf);
}

static void replay(const struct pegpu_trace *t, uint64_t h)
{
	static const uint64_t clusters[4] = { 0, 64 << 10, 256 << 10, 1 << 20 };
	struct pegpu_replay_config cfg;
	struct pegpu_replay_stats st;
	struct pegpu_replay *r;
	char why[200];
	size_t i;

	memset(&cfg, 0, sizeof(cfg));
	cfg.baseline = (h & 7) == 7;
	cfg.cluster_size = clusters[(h >> 3) & 3];
	cfg.max_batch = 1 + ((h >> 5) & 15);
	cfg.max_mappings = 1 + ((h >> 9) & 63);
	cfg.max_mapped_bytes = (1 + ((h >> 15) & 511)) << 14;
	if (cfg.cluster_size > cfg.max_mapped_bytes)
		cfg.cluster_size = 0;
	cfg.iova_size = 64ull << 20;
	cfg.dart_seed = h;
	if (t->info.ram_size >= (4ull << 20) && t->info.ram_size <= (1ull << 48)) {
		cfg.ram_base = t->info.ram_base;
		cfg.ram_size = t->info.ram_size;
	} else {
		cfg.ram_base = 0x40000000;
		cfg.ram_size = 1ull << 30;
	}
	r = pegpu_replay_new(&cfg);
	PROP(r, "pegpu_replay_new");
	for (i = 0; i < t->n; i++) {
		/* the parser's traces obey the rules, so the engine takes every event */
		PROP(pegpu_replay_event(r, &t->ev[i]) == 0, "replay refused event %zu", i);
		if (i % 16 == 15)
			PROP(pegpu_replay_check(r, why, sizeof(why)), "after event %zu: %s", i, why);
	}
	PROP(pegpu_replay_check(r, why, sizeof(why)), "after the trace: %s", why);
	pegpu_replay_get_stats(r, &st);
	PROP(st.peak_mappings <= cfg.max_mappings && st.peak_mapped_bytes <= cfg.max_mapped_bytes,
	     "over a cap");

	/* the guest unmaps what is left: nothing may stay mapped */
	pegpu_replay_unmap_all(r);
	PROP(pegpu_replay_check(r, why, sizeof(why)), "after unmap_all: %s", why);
	pegpu_replay_get_stats(r, &st);
	PROP(!st.live_mappings && !st.mapped_bytes && !st.live_buffers && !st.demand_buffers,
	     "left %llu mappings", (unsigned long long)st.live_mappings);
	pegpu_replay_free(r);

	/* the same trace, then the driver unloads with everything still mapped */
	r = pegpu_replay_new(&cfg);
	PROP(r, "pegpu_replay_new");
	for (i = 0; i < t->n; i++)
		PROP(pegpu_replay_event(r, &t->ev[i]) == 0, "replay refused event %zu", i);
	pegpu_replay_release_all(r);
	PROP(pegpu_replay_check(r, why, sizeof(why)), "after release_all: %s", why);
	pegpu_replay_get_stats(r, &st);
	PROP(!st.live_mappings && !st.mapped_bytes, "unload left mappings");
	pegpu_replay_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pegpu_trace t;
	char err[160];
	struct fz f;

	fz_init(&f, data, size);
	if (pegpu_trace_parse(data, size, &t, err, sizeof(err))) {
		PROP(t.n == 0 && t.ev == NULL, "a refused trace left events");
		PROP(err[0], "a refused trace without a reason");
		return 0;
	}
	roundtrip(&t, PEGPU_TRACE_BINARY);
	roundtrip(&t, PEGPU_TRACE_TEXT);
	replay(&t, f.rng);
	pegpu_trace_free(&t);
	return 0;
}
