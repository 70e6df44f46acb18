/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DMA trace format (lib/dma_trace.c) and generators (lib/dma_gen.c): wire
 * layout, binary and text round trips, rejection of malformed input, the
 * sequencing rules, and that the generators are deterministic, obey the
 * rules, end with nothing live and produce the documented shapes.
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
#include "pegpu/dma_trace.h"

static struct pegpu_trace_event mk(uint64_t ts, uint8_t type, uint64_t id, uint8_t kind,
				   uint8_t dir, uint64_t addr, uint64_t len, uint8_t flags)
{
	struct pegpu_trace_event ev = {
		.ts_ns = ts, .id = id, .addr = addr, .len = len,
		.type = type, .kind = kind, .dir = dir, .flags = flags,
	};

	return ev;
}

/* A small trace that uses every record type, kind, direction and flag. */
static void sample(struct pegpu_trace *t)
{
	struct pegpu_trace_info info = { .ram_base = 0x40000000, .ram_size = 1ull << 30,
					 .seed = 7, .minor = 0 };
	struct pegpu_trace_event ev[] = {
		mk(0, PEGPU_TR_MAP, 1, PEGPU_TK_SINGLE, PEGPU_DIR_TO_DEVICE, 0x40001000, 4096, 0),
		mk(5, PEGPU_TR_MAP, 2, PEGPU_TK_SG, PEGPU_DIR_FROM_DEVICE, 0x40100000, 8192,
		   PEGPU_TF_MORE),
		mk(5, PEGPU_TR_SEG, 2, PEGPU_TK_SG, PEGPU_DIR_FROM_DEVICE, 0x40300000, 4096,
		   PEGPU_TF_MORE),
		mk(5, PEGPU_TR_SEG, 2, PEGPU_TK_SG, PEGPU_DIR_FROM_DEVICE, 0x40200000, 65536, 0),
		mk(9, PEGPU_TR_MAP, 3, PEGPU_TK_COHERENT, PEGPU_DIR_BIDIRECTIONAL, 0x40400000,
		   16384, 0),
		mk(9, PEGPU_TR_MAP, 4, PEGPU_TK_SINGLE, PEGPU_DIR_TO_DEVICE, 0x40500000, 4096,
		   PEGPU_TF_FAILED),
		mk(10, PEGPU_TR_DROP, 0, 0, 0, 3, 0, 0),
		mk(12, PEGPU_TR_UNMAP, 2, PEGPU_TK_SG, PEGPU_DIR_FROM_DEVICE, 0xdead0000, 77824, 0),
		mk(13, PEGPU_TR_UNMAP, 1, PEGPU_TK_SINGLE, PEGPU_DIR_TO_DEVICE, 0, 4096, 0),
		mk(13, PEGPU_TR_UNMAP, 3, PEGPU_TK_COHERENT, PEGPU_DIR_BIDIRECTIONAL, 0, 16384, 0),
	};
	size_t i;

	snprintf(info.source, sizeof(info.source), "unit-test");
	pegpu_trace_init(t, &info);
	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
		assert_int_equal(pegpu_trace_append(t, &ev[i]), 0);
}

/* Field by field: the struct has padding. */
static void assert_ev_equal(const struct pegpu_trace_event *a, const struct pegpu_trace_event *b)
{
	assert_int_equal(a->ts_ns, b->ts_ns);
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->addr, b->addr);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->dir, b->dir);
	assert_int_equal(a->flags, b->flags);
}

static uint64_t ev_hash(uint64_t h, const struct pegpu_trace_event *ev)
{
	uint64_t f[5] = { ev->ts_ns, ev->id, ev->addr, ev->len,
			  (uint64_t)ev->type | (uint64_t)ev->kind << 8 |
			  (uint64_t)ev->dir << 16 | (uint64_t)ev->flags << 24 };

	return pegpu_fnv1a64(h, f, sizeof(f));
}

/* Write t in fmt to a memory buffer. */
static char *write_mem(const struct pegpu_trace *t, enum pegpu_trace_format fmt, size_t *len)
{
	struct pegpu_trace_writer w;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	size_t i;

	assert_non_null(f);
	assert_int_equal(pegpu_trace_writer_begin(&w, f, fmt, &t->info), 0);
	for (i = 0; i < t->n; i++)
		assert_int_equal(pegpu_trace_writer_put(&w, &t->ev[i]), 0);
	assert_int_equal(pegpu_trace_writer_end(&w), 0);
	assert_int_equal(w.events, t->n);
	fclose(f);
	return buf;
}

static void assert_same(const struct pegpu_trace *a, const struct pegpu_trace *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	assert_int_equal(a->info.ram_base, b->info.ram_base);
	assert_int_equal(a->info.ram_size, b->info.ram_size);
	assert_int_equal(a->info.seed, b->info.seed);
	assert_string_equal(a->info.source, b->info.source);
	for (i = 0; i < a->n; i++)
		assert_ev_equal(&a->ev[i], &b->ev[i]);
}

static void test_wire_layout(void **state)
{
	struct pegpu_trace_event ev = mk(0x0102030405060708ull, PEGPU_TR_MAP, 0x1112131415161718ull,
					 PEGPU_TK_SG, PEGPU_DIR_FROM_DEVICE, 0x2122232425262728ull,
					 0x31323334, PEGPU_TF_MORE);
	struct pegpu_trace_event back;
	struct pegpu_trace_rec rec;
	const uint8_t *p = (const uint8_t *)&rec;

	(void)state;
	pegpu_trace_encode(&ev, &rec);
	/* little-endian, field by field, as docs/dma-traces.md draws it */
	assert_int_equal(p[0], 0x08);
	assert_int_equal(p[7], 0x01);
	assert_int_equal(p[8], 0x18);
	assert_int_equal(p[16], 0x28);
	assert_int_equal(p[24], 0x34);
	assert_int_equal(p[27], 0x31);
	assert_int_equal(p[28], PEGPU_TR_MAP);
	assert_int_equal(p[29], PEGPU_TK_SG);
	assert_int_equal(p[30], PEGPU_DIR_FROM_DEVICE);
	assert_int_equal(p[31], PEGPU_TF_MORE);
	assert_int_equal(pegpu_trace_decode(&rec, &back), 0);
	assert_ev_equal(&ev, &back);
}

static void test_binary_roundtrip(void **state)
{
	struct pegpu_trace t, u;
	char err[128];
	size_t len;
	char *buf;

	(void)state;
	sample(&t);
	buf = write_mem(&t, PEGPU_TRACE_BINARY, &len);
	assert_int_equal(len, 64 + 32 * t.n);
	assert_memory_equal(buf, "PDTR", 4);
	assert_int_equal(pegpu_trace_parse(buf, len, &u, err, sizeof(err)), 0);
	assert_same(&t, &u);
	pegpu_trace_free(&u);
	free(buf);
	pegpu_trace_free(&t);
}

static void test_text_roundtrip(void **state)
{
	struct pegpu_trace t, u;
	char err[128];
	size_t len;
	char *buf;

	(void)state;
	sample(&t);
	buf = write_mem(&t, PEGPU_TRACE_TEXT, &len);
	assert_non_null(strstr(buf, "pegpu-dma-trace 1.0 ram=0x40000000+0x40000000 seed=7"));
	assert_non_null(strstr(buf, "\n5 map 2 sg from 0x40100000 8192 more\n"));
	assert_non_null(strstr(buf, "\n5 seg 2 from 0x40200000 65536\n"));
	assert_non_null(strstr(buf, "\n9 map 4 single to 0x40500000 4096 failed\n"));
	assert_non_null(strstr(buf, "\n10 drop 3\n"));
	assert_non_null(strstr(buf, "\n12 unmap 2 sg from 77824 0xdead0000\n"));
	assert_int_equal(pegpu_trace_parse(buf, len, &u, err, sizeof(err)), 0);
	assert_same(&t, &u);
	pegpu_trace_free(&u);
	free(buf);
	pegpu_trace_free(&t);
}

static void test_text_by_hand(void **state)
{
	static const char txt[] =
		"# a comment before the header\n\n"
		"pegpu-dma-trace 1.7 ram=0x0+0x100000000 future=ignored\n"
		"  0 map 9 coherent bidi 0x1000 0x4000   # trailing comment\n"
		"\r\n"
		"100 unmap 9 coherent bidi 16384\r\n";
	struct pegpu_trace t;
	char err[128];

	(void)state;
	assert_int_equal(pegpu_trace_parse(txt, sizeof(txt) - 1, &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.info.minor, 7);
	assert_int_equal(t.info.ram_size, 1ull << 32);
	assert_int_equal(t.ev[0].kind, PEGPU_TK_COHERENT);
	assert_int_equal(t.ev[0].len, 0x4000);
	assert_int_equal(t.ev[1].type, PEGPU_TR_UNMAP);
	pegpu_trace_free(&t);
}

/* Each of these must be refused, with a message. */
static void test_text_rejects(void **state)
{
	static const char *const bad[] = {
		"",						/* no header */
		"pegpu-dma-trace 2.0\n",			/* another major */
		"pegpu-dma-trace 1.0\n0 map 1 single to 0x1000 0\n",	/* zero length */
		"pegpu-dma-trace 1.0\n0 map 1 single up 0x1000 4096\n",	/* direction */
		"pegpu-dma-trace 1.0\n0 map 1 single to 0x1000 4096 more\n",	/* MORE on single */
		"pegpu-dma-trace 1.0\n0 map 1 sg to 0x1000 4096 more\n",	/* ends inside sg */
		"pegpu-dma-trace 1.0\n0 seg 1 to 0x1000 4096\n",		/* SEG without MAP */
		"pegpu-dma-trace 1.0\n0 map 1 sg to 0x1000 4096 more\n1 seg 1 to 0x2000 4096\n",
		"pegpu-dma-trace 1.0\n0 map 1 sg to 0x1000 4096 more\n0 seg 2 to 0x2000 4096\n",
		"pegpu-dma-trace 1.0\n5 drop 1\n4 drop 1\n",		/* time goes back */
		"pegpu-dma-trace 1.0\n0 drop 0\n",			/* empty drop */
		"pegpu-dma-trace 1.0\n0 map 1 single to 0xfffffffffffff000 8192\n",	/* wraps */
		"pegpu-dma-trace 1.0\n0 map 1 single to 0x1000 4294967296\n",	/* > 32 bits */
		"pegpu-dma-trace 1.0\n0 map 1 single to 0x1000 4096 extra\n",
		"pegpu-dma-trace 1.0\n0 map 1 single to 0x1g00 4096\n",
		"pegpu-dma-trace 1.0\n0 map 99999999999999999999 single to 0x1000 4096\n",
		"pegpu-dma-trace 1.0\n0 unmap 1 single to 4096 0x1 0x2\n",
		"pegpu-dma-trace 1.0\n0 frobnicate\n",
	};
	struct pegpu_trace t;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (pegpu_trace_parse(bad[i], strlen(bad[i]), &t, err, sizeof(err)) == 0)
			fail_msg("accepted bad trace %zu: %s", i, bad[i]);
		assert_true(err[0] != '\0');
		assert_int_equal(t.n, 0);
		assert_null(t.ev);
	}
}

static void test_binary_rejects(void **state)
{
	struct pegpu_trace t, u;
	uint8_t *copy;
	char err[128];
	size_t len;
	char *buf;

	(void)state;
	sample(&t);
	buf = write_mem(&t, PEGPU_TRACE_BINARY, &len);
	copy = malloc(len + 64);
	assert_non_null(copy);

	/* truncated anywhere but on a record boundary */
	assert_int_not_equal(pegpu_trace_parse(buf, 40, &u, err, sizeof(err)), 0);
	assert_int_not_equal(pegpu_trace_parse(buf, len - 5, &u, err, sizeof(err)), 0);
	/* cut after the first sg segment: ends inside the list */
	assert_int_not_equal(pegpu_trace_parse(buf, 64 + 32 * 3, &u, err, sizeof(err)), 0);
	/* ... but on a boundary outside a list it is a shorter, valid trace */
	assert_int_equal(pegpu_trace_parse(buf, 64 + 32 * 4, &u, err, sizeof(err)), 0);
	assert_int_equal(u.n, 4);
	pegpu_trace_free(&u);

	/* another major version */
	memcpy(copy, buf, len);
	copy[4] = 2;
	assert_int_equal(pegpu_trace_parse(copy, len, &u, err, sizeof(err)), PEGPU_TRACE_E_VERSION);
	/* unknown record type, kind, flag */
	memcpy(copy, buf, len);
	copy[64 + 28] = 9;
	assert_int_equal(pegpu_trace_parse(copy, len, &u, err, sizeof(err)), PEGPU_TRACE_E_FORMAT);
	memcpy(copy, buf, len);
	copy[64 + 29] = 0;
	assert_int_equal(pegpu_trace_parse(copy, len, &u, err, sizeof(err)), PEGPU_TRACE_E_FORMAT);
	memcpy(copy, buf, len);
	copy[64 + 31] = 0x80;
	assert_int_equal(pegpu_trace_parse(copy, len, &u, err, sizeof(err)), PEGPU_TRACE_E_FORMAT);
	/* a wild rec_size */
	memcpy(copy, buf, len);
	copy[12] = 0xff;
	copy[13] = 0xff;
	assert_int_equal(pegpu_trace_parse(copy, len, &u, err, sizeof(err)), PEGPU_TRACE_E_FORMAT);

	/* a later minor version with longer header and records still reads */
	{
		size_t n = t.n, i, off;
		size_t l2 = 96 + 48 * n;
		uint8_t *v = calloc(1, l2);

		assert_non_null(v);
		memcpy(v, buf, 64);
		v[6] = 3;		/* minor 3 */
		v[8] = 96;		/* hdr_size */
		v[12] = 48;		/* rec_size */
		for (i = 0, off = 96; i < n; i++, off += 48) {
			memcpy(v + off, buf + 64 + 32 * i, 32);
			memset(v + off + 32, 0xee, 16);	/* fields this reader does not know */
		}
		assert_int_equal(pegpu_trace_parse(v, l2, &u, err, sizeof(err)), 0);
		assert_int_equal(u.info.minor, 3);
		assert_int_equal(u.n, n);
		for (i = 0; i < n; i++)
			assert_ev_equal(&u.ev[i], &t.ev[i]);
		pegpu_trace_free(&u);
		free(v);
	}
	free(copy);
	free(buf);
	pegpu_trace_free(&t);
}

static void test_writer_refuses_bad_sequence(void **state)
{
	struct pegpu_trace_info info = { 0 };
	struct pegpu_trace_writer w;
	struct pegpu_trace_event a = mk(0, PEGPU_TR_MAP, 1, PEGPU_TK_SG, PEGPU_DIR_TO_DEVICE,
					0x1000, 4096, PEGPU_TF_MORE);
	struct pegpu_trace_event b = mk(0, PEGPU_TR_UNMAP, 1, PEGPU_TK_SG, PEGPU_DIR_TO_DEVICE,
					0, 4096, 0);
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_int_equal(pegpu_trace_writer_begin(&w, f, PEGPU_TRACE_BINARY, &info), 0);
	assert_int_equal(pegpu_trace_writer_put(&w, &a), 0);
	/* an UNMAP in the middle of a scatterlist, and the error sticks */
	assert_int_equal(pegpu_trace_writer_put(&w, &b), PEGPU_TRACE_E_FORMAT);
	assert_int_equal(pegpu_trace_writer_end(&w), PEGPU_TRACE_E_FORMAT);
	fclose(f);
	free(buf);

	f = open_memstream(&buf, &len);
	assert_int_equal(pegpu_trace_writer_begin(&w, f, PEGPU_TRACE_TEXT, &info), 0);
	assert_int_equal(pegpu_trace_writer_put(&w, &a), 0);
	/* stopping inside a list is an error too */
	assert_int_equal(pegpu_trace_writer_end(&w), PEGPU_TRACE_E_FORMAT);
	fclose(f);
	free(buf);
}

/* ---------------------------------------------------------------- */
/* generators                                                        */
/* ---------------------------------------------------------------- */

struct gen_summary {
	uint64_t events, maps, unmaps, hash, max_live;
	struct pegpu_gen_stats st;
};

/* Run a generator to the end, checking the trace rules and id liveness. */
static void run_gen(const struct pegpu_gen_params *p, struct gen_summary *s)
{
	struct pegpu_gen *g = pegpu_gen_new(p);
	struct pegpu_trace_event ev;
	struct pegpu_trace_seq seq;
	uint64_t live = 0, last_id = 0;
	int r;

	assert_non_null(g);
	memset(s, 0, sizeof(*s));
	s->hash = PEGPU_FNV1A64_INIT;
	pegpu_trace_seq_init(&seq);
	while ((r = pegpu_gen_next(g, &ev)) == 1) {
		assert_int_equal(pegpu_trace_seq_feed(&seq, &ev), 0);
		s->hash = ev_hash(s->hash, &ev);
		s->events++;
		/* buffers stay inside the declared guest RAM */
		if (ev.type == PEGPU_TR_MAP || ev.type == PEGPU_TR_SEG) {
			assert_true(ev.addr >= p->ram_base);
			assert_true(ev.addr + ev.len <= p->ram_base + ((uint64_t)p->ram_mib << 20));
			assert_int_equal(ev.addr & 4095, 0);
		}
		if (ev.type == PEGPU_TR_MAP) {
			/* ids are fresh, so every UNMAP matches exactly one MAP */
			assert_true(ev.id > last_id);
			last_id = ev.id;
			s->maps++;
			if (++live > s->max_live)
				s->max_live = live;
		} else if (ev.type == PEGPU_TR_UNMAP) {
			assert_true(ev.id <= last_id);
			s->unmaps++;
			live--;
		}
	}
	assert_int_equal(r, 0);
	assert_int_equal(pegpu_trace_seq_end(&seq), 0);
	assert_int_equal(live, 0);
	assert_int_equal(s->maps, s->unmaps);
	pegpu_gen_get_stats(g, &s->st);
	assert_int_equal(s->st.calls, s->maps);
	pegpu_gen_free(g);
}

static void test_gen_deterministic(void **state)
{
	struct pegpu_gen_params p;
	struct gen_summary a, b, c;

	(void)state;
	pegpu_gen_defaults(&p, PEGPU_GEN_NVIDIA_LOADING, 42);
	p.nv_bursts = 4;
	run_gen(&p, &a);
	run_gen(&p, &b);
	assert_int_equal(a.hash, b.hash);
	assert_int_equal(a.events, b.events);
	p.seed = 43;
	run_gen(&p, &c);
	assert_int_not_equal(a.hash, c.hash);
}

/* The shape issue 3 asks of nvidia-loading: >90% 4 KiB, bursts, rarely contiguous. */
static void test_gen_nvidia_shape(void **state)
{
	struct pegpu_gen_params p;
	struct gen_summary s;

	(void)state;
	pegpu_gen_defaults(&p, PEGPU_GEN_NVIDIA_LOADING, 1);
	run_gen(&p, &s);
	assert_true(s.st.seg_4k * 100 > s.st.segments * 90);
	assert_true(s.st.seg_le64k > 0);		/* some 64 KiB buffers */
	assert_true(s.st.seg_le2m > 0);			/* some 2 MiB buffers */
	assert_true(s.st.seg_adjacent * 100 < s.st.segments * 5);
	assert_true(s.max_live > 2000);
	assert_true(s.st.end_ns >= 3000000000ull);	/* the load lasts nv_load_ms */
}

static void test_gen_other_profiles(void **state)
{
	struct pegpu_gen_params p;
	struct gen_summary s;

	(void)state;
	pegpu_gen_defaults(&p, PEGPU_GEN_GAME_STREAMING, 1);
	p.gs_seconds = 1;
	run_gen(&p, &s);
	/* 120 frames of 32 calls plus the pinned set */
	assert_true(s.maps >= 120 * 32 && s.maps <= 120 * 32 + p.gs_pinned + 32);

	pegpu_gen_defaults(&p, PEGPU_GEN_LLM_LOAD, 1);
	p.llm_model_mib = 1024;
	run_gen(&p, &s);
	assert_true(s.st.seg_le2m > 0);		/* huge-page extents */
	/* the link moves 1 GiB at 2500 MB/s: the load cannot end sooner */
	assert_true(s.st.end_ns >= (1024ull << 20) * 1000 / 2500);

	pegpu_gen_defaults(&p, PEGPU_GEN_MIXED, 1);
	p.mix_minutes = 20;
	p.mix_gap_s = 300;
	p.gs_seconds = 2;
	p.gs_fps = 30;
	p.llm_model_mib = 256;
	p.nv_bursts = 2;
	run_gen(&p, &s);
	assert_true(s.st.sessions >= 2);
}

static void test_gen_params(void **state)
{
	struct pegpu_gen_params p;

	(void)state;
	pegpu_gen_defaults(&p, PEGPU_GEN_LLM_LOAD, 1);
	assert_int_equal(pegpu_gen_check(&p), 0);
	assert_int_equal(pegpu_gen_set(&p, "nv_bursts", "7"), 0);
	assert_int_equal(p.nv_bursts, 7);
	assert_int_equal(pegpu_gen_set(&p, "seed", "0x10"), 0);
	assert_int_equal(p.seed, 16);
	assert_int_equal(pegpu_gen_set(&p, "profile", "mixed"), 0);
	assert_int_equal(p.profile, PEGPU_GEN_MIXED);
	assert_int_not_equal(pegpu_gen_set(&p, "nv_bursts", "-1"), 0);
	assert_int_not_equal(pegpu_gen_set(&p, "nv_bursts", "5000000000"), 0);
	assert_int_not_equal(pegpu_gen_set(&p, "no_such_knob", "1"), 0);
	assert_int_not_equal(pegpu_gen_set(&p, "profile", "doom"), 0);
	p.ram_base = 0x1000;		/* not 2 MiB aligned */
	assert_int_not_equal(pegpu_gen_check(&p), 0);
	assert_null(pegpu_gen_new(&p));
	assert_int_equal(pegpu_gen_profile_parse("llm-load"), PEGPU_GEN_LLM_LOAD);
	assert_int_equal(pegpu_gen_profile_parse("nope"), -1);
}

/* Guest RAM too small for the workload: a clean error, not a hang or a crash. */
static void test_gen_ram_exhausted(void **state)
{
	struct pegpu_gen_params p;
	struct pegpu_trace_event ev;
	struct pegpu_gen *g;
	int r;

	(void)state;
	pegpu_gen_defaults(&p, PEGPU_GEN_LLM_LOAD, 1);
	p.ram_mib = 64;
	p.llm_model_mib = 1024;
	p.llm_chunk_min_mib = 256;
	p.llm_chunk_max_mib = 256;
	g = pegpu_gen_new(&p);
	assert_non_null(g);
	while ((r = pegpu_gen_next(g, &ev)) == 1)
		;
	assert_int_equal(r, PEGPU_GEN_E_RAM);
	pegpu_gen_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_layout),
		cmocka_unit_test(test_binary_roundtrip),
		cmocka_unit_test(test_text_roundtrip),
		cmocka_unit_test(test_text_by_hand),
		cmocka_unit_test(test_text_rejects),
		cmocka_unit_test(test_binary_rejects),
		cmocka_unit_test(test_writer_refuses_bad_sequence),
		cmocka_unit_test(test_gen_deterministic),
		cmocka_unit_test(test_gen_nvidia_shape),
		cmocka_unit_test(test_gen_other_profiles),
		cmocka_unit_test(test_gen_params),
		cmocka_unit_test(test_gen_ram_exhausted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
