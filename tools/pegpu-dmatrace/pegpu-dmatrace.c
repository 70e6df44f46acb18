/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu-dmatrace: make, read and replay DMA traces (docs/dma-traces.md).
 *
 *   pegpu-dmatrace gen PROFILE [--seed N] [--set KEY=VALUE]... [--text] -o FILE
 *   pegpu-dmatrace show FILE
 *   pegpu-dmatrace replay FILE [--cluster BYTES] [--max-mappings N]
 *                         [--max-mapped-bytes BYTES] [--max-batch N] [--unmap-all]
 *
 * gen writes a synthetic trace (lib/dma_gen.c) in the binary form (or the
 * text form with --text); show prints any trace, binary or text, in the
 * text form (a trace read from pegpu_dma.ko's debugfs `trace` file, say);
 * replay runs a trace through the coalescer, the device core and the DART
 * emulator (lib/dma_replay.c) exactly as pegpu_dma.ko would, and prints
 * one line of key=value pairs: the counts the guest's debugfs `stats`
 * shows under the same names, for comparing a recording with its replay.
 *
 * The kernel tier uses gen to make the trace pegpu_dmatest.ko replays in
 * the guest, and replay to check the trace pegpu_dma.ko recorded meanwhile.
 * Exit status: 0, 1 if a trace is unreadable or a replay inconsistent,
 * 2 on bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pegpu/dma_gen.h"
#include "pegpu/dma_replay.h"

#define MAX_SETS	64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu-dmatrace gen PROFILE [--seed N] [--set KEY=VALUE]... [--text] -o FILE\n"
		"       pegpu-dmatrace show FILE\n"
		"       pegpu-dmatrace replay FILE [--cluster BYTES] [--max-mappings N]\n"
		"                             [--max-mapped-bytes BYTES] [--max-batch N] [--unmap-all]\n"
		"profiles: nvidia-loading game-streaming llm-load mixed\n");
}

/* A number with an optional K, M or G suffix (powers of 1024). */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	uint64_t n;

	if (!s || !*s || *s == '-')
		return -1;
	n = strtoull(s, &end, 0);
	if (end == s)
		return -1;
	switch (*end) {
	case 'K': case 'k':
		n <<= 10, end++;
		break;
	case 'M': case 'm':
		n <<= 20, end++;
		break;
	case 'G': case 'g':
		n <<= 30, end++;
		break;
	}
	if (*end)
		return -1;
	*v = n;
	return 0;
}

static int cmd_gen(int argc, char **argv)
{
	const char *sets[MAX_SETS], *out = NULL;
	struct pegpu_trace_writer w;
	struct pegpu_trace_event ev;
	struct pegpu_trace_info info;
	struct pegpu_gen_params p;
	struct pegpu_gen_stats gst;
	struct pegpu_gen *g;
	uint64_t seed = 1;
	int nsets = 0, profile, i, got = 0, ret;
	bool text = false;
	FILE *f;

	if (argc < 1 || (profile = pegpu_gen_profile_parse(argv[0])) < 0) {
		fprintf(stderr, "pegpu-dmatrace: gen wants a profile first\n");
		usage(stderr);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--seed") && v && !parse_u64(v, &seed)) {
			i++;
		} else if (!strcmp(argv[i], "--set") && v && nsets < MAX_SETS) {
			sets[nsets++] = v;
			i++;
		} else if (!strcmp(argv[i], "-o") && v) {
			out = v;
			i++;
		} else if (!strcmp(argv[i], "--text")) {
			text = true;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!out) {
		fprintf(stderr, "pegpu-dmatrace: gen wants -o FILE\n");
		return 2;
	}
	pegpu_gen_defaults(&p, (enum pegpu_gen_profile)profile, seed);
	for (i = 0; i < nsets; i++) {
		char key[64];
		const char *eq = strchr(sets[i], '=');

		if (!eq || (size_t)(eq - sets[i]) >= sizeof(key)) {
			fprintf(stderr, "pegpu-dmatrace: --set wants KEY=VALUE, got %s\n", sets[i]);
			return 2;
		}
		memcpy(key, sets[i], (size_t)(eq - sets[i]));
		key[eq - sets[i]] = '\0';
		if (pegpu_gen_set(&p, key, eq + 1)) {
			fprintf(stderr, "pegpu-dmatrace: bad parameter %s\n", sets[i]);
			return 2;
		}
	}
	g = pegpu_gen_new(&p);
	if (!g) {
		fprintf(stderr, "pegpu-dmatrace: inconsistent parameters for %s\n",
			pegpu_gen_profile_name(p.profile));
		return 2;
	}
	f = fopen(out, text ? "w" : "wb");
	if (!f) {
		perror(out);
		pegpu_gen_free(g);
		return 1;
	}
	pegpu_gen_info(g, &info);
	ret = pegpu_trace_writer_begin(&w, f, text ? PEGPU_TRACE_TEXT : PEGPU_TRACE_BINARY, &info);
	while (!ret && (got = pegpu_gen_next(g, &ev)) == 1)
		ret = pegpu_trace_writer_put(&w, &ev);
	if (!ret)
		ret = pegpu_trace_writer_end(&w);
	if (fclose(f) && !ret)
		ret = PEGPU_TRACE_E_IO;
	pegpu_gen_get_stats(g, &gst);
	pegpu_gen_free(g);
	if (got < 0 || ret) {
		fprintf(stderr, "pegpu-dmatrace: %s: %s\n", out,
			got < 0 ? "the generator failed (guest RAM too small for the profile?)" :
			pegpu_trace_strerror(ret));
		return 1;
	}
	fprintf(stderr, "pegpu-dmatrace: wrote %" PRIu64 " events (%" PRIu64 " calls, %" PRIu64
		" segments) to %s\n", w.events, gst.calls, gst.segments, out);
	return 0;
}

static int load(const char *path, struct pegpu_trace *t)
{
	char err[256];

	if (pegpu_trace_load(path, t, err, sizeof(err))) {
		fprintf(stderr, "pegpu-dmatrace: %s: %s\n", path, err);
		return -1;
	}
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	struct pegpu_trace_writer w;
	struct pegpu_trace t;
	size_t i;
	int ret;

	if (argc != 1) {
		usage(stderr);
		return 2;
	}
	if (load(argv[0], &t))
		return 1;
	ret = pegpu_trace_writer_begin(&w, stdout, PEGPU_TRACE_TEXT, &t.info);
	for (i = 0; !ret && i < t.n; i++)
		ret = pegpu_trace_writer_put(&w, &t.ev[i]);
	if (!ret)
		ret = pegpu_trace_writer_end(&w);
	pegpu_trace_free(&t);
	if (ret) {
		fprintf(stderr, "pegpu-dmatrace: %s\n", pegpu_trace_strerror(ret));
		return 1;
	}
	return 0;
}

static void print_replay(const struct pegpu_trace *t, const struct pegpu_replay *r,
			 bool consistent, const char *why)
{
	const struct pegpu_dmadev *d = pegpu_replay_dev(r);
	uint64_t kinds[4] = { 0 }, maps = 0, segs = 0, unmaps = 0, drops = 0;
	struct pegpu_replay_stats st;
	size_t i;

	for (i = 0; i < t->n; i++) {
		const struct pegpu_trace_event *ev = &t->ev[i];

		switch (ev->type) {
		case PEGPU_TR_MAP:
			maps++;
			segs++;
			if (ev->kind < 4)
				kinds[ev->kind]++;
			break;
		case PEGPU_TR_SEG:
			segs++;
			break;
		case PEGPU_TR_UNMAP:
			unmaps++;
			break;
		case PEGPU_TR_DROP:
			drops++;
			break;
		}
	}
	pegpu_replay_get_stats(r, &st);
	/* trace_* describe the input, the rest what replaying it did */
	printf("trace_events=%zu trace_maps=%" PRIu64 " trace_segments=%" PRIu64
	       " trace_unmaps=%" PRIu64 " trace_drop_records=%" PRIu64
	       " trace_single=%" PRIu64 " trace_sg=%" PRIu64 " trace_coherent=%" PRIu64,
	       t->n, maps, segs, unmaps, drops, kinds[PEGPU_TK_SINGLE], kinds[PEGPU_TK_SG],
	       kinds[PEGPU_TK_COHERENT]);
	printf(" calls=%" PRIu64 " segments=%" PRIu64 " unmap_calls=%" PRIu64
	       " map_failures=%" PRIu64 " skipped_failed=%" PRIu64 " dropped=%" PRIu64
	       " unknown_unmaps=%" PRIu64 " dup_maps=%" PRIu64,
	       st.calls, st.segments, st.unmap_calls, st.map_failures, st.skipped_failed,
	       st.dropped, st.unknown_unmaps, st.dup_maps);
	printf(" doorbells=%" PRIu64 " entries=%" PRIu64 " maps=%" PRIu64 " unmaps=%" PRIu64
	       " refusals=%" PRIu64 " errors=%" PRIu64 " live_mappings=%" PRIu64
	       " mapped_bytes=%" PRIu64 " peak_mappings=%" PRIu64 " peak_mapped_bytes=%" PRIu64
	       " hits=%" PRIu64 " misses=%" PRIu64 " live_buffers=%" PRIu64,
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_DOORBELLS),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_ENTRIES),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_MAPS),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_UNMAPS),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_REFUSALS),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_ERRORS),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_LIVE_MAPPINGS),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_MAPPED_BYTES),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_PEAK_MAPPINGS),
	       pegpu_dmadev_counter(d, PEGPU_DMA_CNT_PEAK_MAPPED_BYTES),
	       st.hits, st.misses, st.live_buffers);
	printf(" consistent=%d%s%s\n", consistent, consistent ? "" : " why=", consistent ? "" : why);
}

static int cmd_replay(int argc, char **argv)
{
	struct pegpu_replay_config cfg;
	struct pegpu_replay *r;
	struct pegpu_trace t;
	bool unmap_all = false, ok;
	char why[160] = "";
	uint64_t v;
	int i, ret;

	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	/* pegpu_dma.ko's defaults; the device's caps are QEMU's */
	cfg.cluster_size = 256 << 10;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *s = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--unmap-all")) {
			unmap_all = true;
			continue;
		}
		if (parse_u64(s, &v)) {
			usage(stderr);
			return 2;
		}
		i++;
		if (!strcmp(a, "--cluster")) {
			cfg.cluster_size = v;
		} else if (!strcmp(a, "--max-mappings") && v <= UINT32_MAX) {
			cfg.max_mappings = (uint32_t)v;
		} else if (!strcmp(a, "--max-mapped-bytes")) {
			cfg.max_mapped_bytes = v;
		} else if (!strcmp(a, "--max-batch") && v <= UINT32_MAX) {
			cfg.max_batch = (uint32_t)v;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (load(argv[0], &t))
		return 1;
	cfg.ram_base = t.info.ram_base;
	/* a trace that does not say where RAM is: every address counts as RAM */
	cfg.ram_size = t.info.ram_size ? t.info.ram_size : (1ull << 48);
	r = pegpu_replay_new(&cfg);
	if (!r) {
		fprintf(stderr, "pegpu-dmatrace: bad replay configuration\n");
		pegpu_trace_free(&t);
		return 2;
	}
	ret = pegpu_replay_trace(r, &t);
	if (ret)
		fprintf(stderr, "pegpu-dmatrace: replay stopped: %s\n", pegpu_trace_strerror(ret));
	if (unmap_all)
		pegpu_replay_unmap_all(r);
	ok = !ret && pegpu_replay_check(r, why, sizeof(why));
	if (!ok && !why[0])
		snprintf(why, sizeof(why), "replay_stopped");
	/* no spaces in why: the line is key=value pairs */
	for (i = 0; why[i]; i++)
		if (why[i] == ' ')
			why[i] = '_';
	print_replay(&t, r, ok, why);
	pegpu_replay_free(r);
	pegpu_trace_free(&t);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "gen"))
		return cmd_gen(argc - 2, argv + 2);
	if (!strcmp(argv[1], "show"))
		return cmd_show(argc - 2, argv + 2);
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(argc - 2, argv + 2);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
