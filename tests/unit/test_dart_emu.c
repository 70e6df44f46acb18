/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DART emulator: caps, IOVA placement, translation, permissions, exact
 * unmaps, reset, and a long random run against a reference model.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pegpu/dart_emu.h"

#define PG	(1ull << DART_EMU_PAGE_SHIFT)
#define RW	(DART_PROT_READ | DART_PROT_WRITE)

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static struct dart_emu *emu_with(uint64_t iova_size, uint64_t max_bytes, uint32_t max_maps,
				 uint64_t seed)
{
	struct dart_emu_config cfg = {
		.iova_size = iova_size,
		.max_mapped_bytes = max_bytes,
		.max_mappings = max_maps,
		.seed = seed,
	};
	struct dart_emu *d = dart_emu_new(&cfg);

	assert_non_null(d);
	assert_true(dart_emu_check(d));
	return d;
}

static void assert_stats_equal(const struct dart_emu_stats *a, const struct dart_emu_stats *b)
{
	assert_int_equal(a->live_mappings, b->live_mappings);
	assert_int_equal(a->mapped_bytes, b->mapped_bytes);
	assert_int_equal(a->peak_mappings, b->peak_mappings);
	assert_int_equal(a->peak_mapped_bytes, b->peak_mapped_bytes);
	assert_int_equal(a->maps, b->maps);
	assert_int_equal(a->unmaps, b->unmaps);
	assert_int_equal(a->refusals, b->refusals);
	assert_int_equal(a->faults, b->faults);
}

static void test_config_defaults(void **state)
{
	struct dart_emu_config zero = { 0 }, cfg;
	struct dart_emu_stats st;
	struct dart_emu *d;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		d = dart_emu_new(i ? &zero : NULL);
		assert_non_null(d);
		dart_emu_get_config(d, &cfg);
		assert_int_equal(cfg.page_shift, DART_EMU_PAGE_SHIFT);
		assert_int_equal(cfg.iova_base, DART_EMU_DEFAULT_IOVA_BASE);
		assert_int_equal(cfg.iova_size, DART_EMU_DEFAULT_IOVA_SIZE);
		assert_int_equal(cfg.max_mapped_bytes, DART_EMU_DEFAULT_MAX_BYTES);
		assert_int_equal(cfg.max_mappings, DART_EMU_DEFAULT_MAX_MAPPINGS);
		dart_emu_get_stats(d, &st);
		assert_int_equal(st.live_mappings + st.mapped_bytes + st.maps + st.refusals, 0);
		assert_true(dart_emu_check(d));
		dart_emu_free(d);
	}
	dart_emu_free(NULL);
}

static void test_config_invalid(void **state)
{
	static const struct dart_emu_config bad[] = {
		{ .page_shift = 11 },
		{ .page_shift = 31 },
		{ .page_shift = 64 },
		{ .iova_base = 0x1000 },			/* not 16 KiB aligned */
		{ .iova_size = PG + 0x1000 },			/* not a page multiple */
		{ .iova_base = UINT64_MAX - PG + 1, .iova_size = 2 * PG },	/* wraps */
		{ .iova_size = 1ull << 40 },			/* 64 Mi pages: too big */
	};
	struct dart_emu_config ok = { .page_shift = 12, .iova_base = 0x1000, .iova_size = 0x3000 };
	struct dart_emu *d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(dart_emu_new(&bad[i]));
	d = dart_emu_new(&ok);
	assert_non_null(d);
	dart_emu_free(d);
}

static void test_map_translate(void **state)
{
	struct dart_emu *d = emu_with(0, 0, 0, 1);
	struct dart_emu_config cfg;
	struct dart_emu_stats st;
	uint64_t iova = 0, pa = 0, contig = 0;

	(void)state;
	dart_emu_get_config(d, &cfg);
	assert_int_equal(dart_emu_map(d, 0x80000000, 3 * PG, RW, &iova), DART_OK);
	assert_int_equal(iova % PG, 0);
	assert_true(iova >= cfg.iova_base && iova + 3 * PG <= cfg.iova_base + cfg.iova_size);

	assert_int_equal(dart_emu_translate(d, iova, DART_PROT_READ, &pa, &contig), DART_OK);
	assert_int_equal(pa, 0x80000000);
	assert_int_equal(contig, 3 * PG);
	assert_int_equal(dart_emu_translate(d, iova + PG + 100, DART_PROT_WRITE, &pa, &contig),
			 DART_OK);
	assert_int_equal(pa, 0x80000000 + PG + 100);
	assert_int_equal(contig, 2 * PG - 100);
	assert_int_equal(dart_emu_translate(d, iova + 3 * PG - 1, DART_PROT_READ, &pa, &contig),
			 DART_OK);
	assert_int_equal(pa, 0x80000000 + 3 * PG - 1);
	assert_int_equal(contig, 1);
	/* outputs are optional */
	assert_int_equal(dart_emu_translate(d, iova, DART_PROT_READ, NULL, NULL), DART_OK);

	/* the guard page after the mapping, and the page before it, fault */
	assert_int_equal(dart_emu_translate(d, iova + 3 * PG, DART_PROT_READ, &pa, &contig),
			 DART_E_FAULT);
	assert_int_equal(dart_emu_translate(d, iova - 1, DART_PROT_READ, &pa, &contig),
			 DART_E_FAULT);
	/* outside the window */
	assert_int_equal(dart_emu_translate(d, 0, DART_PROT_READ, &pa, &contig), DART_E_FAULT);
	assert_int_equal(dart_emu_translate(d, cfg.iova_base + cfg.iova_size, DART_PROT_READ,
					    &pa, &contig), DART_E_FAULT);
	assert_int_equal(dart_emu_translate(d, UINT64_MAX, DART_PROT_READ, &pa, &contig),
			 DART_E_FAULT);
	/* a bad prot fails, and counts as a fault like every failed access */
	assert_int_equal(dart_emu_translate(d, iova, 0, &pa, &contig), DART_E_INVAL);
	assert_int_equal(dart_emu_translate(d, iova, 4, &pa, &contig), DART_E_INVAL);
	dart_emu_get_stats(d, &st);
	assert_int_equal(st.faults, 7);
	assert_int_equal(st.maps, 1);
	assert_int_equal(st.live_mappings, 1);
	assert_int_equal(st.mapped_bytes, 3 * PG);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_permissions(void **state)
{
	struct dart_emu *d = emu_with(0, 0, 0, 2);
	uint64_t ro, wo, rw, pa, contig;
	struct dart_emu_stats st;

	(void)state;
	assert_int_equal(dart_emu_map(d, 0x100000, PG, DART_PROT_READ, &ro), DART_OK);
	assert_int_equal(dart_emu_map(d, 0x200000, PG, DART_PROT_WRITE, &wo), DART_OK);
	assert_int_equal(dart_emu_map(d, 0x300000, PG, RW, &rw), DART_OK);

	assert_int_equal(dart_emu_translate(d, ro, DART_PROT_READ, &pa, &contig), DART_OK);
	assert_int_equal(pa, 0x100000);
	assert_int_equal(dart_emu_translate(d, ro, DART_PROT_WRITE, &pa, &contig), DART_E_FAULT);
	assert_int_equal(dart_emu_translate(d, ro, RW, &pa, &contig), DART_E_FAULT);
	assert_int_equal(dart_emu_translate(d, wo, DART_PROT_WRITE, &pa, &contig), DART_OK);
	assert_int_equal(pa, 0x200000);
	assert_int_equal(dart_emu_translate(d, wo + 5, DART_PROT_READ, &pa, &contig),
			 DART_E_FAULT);
	assert_int_equal(dart_emu_translate(d, rw, DART_PROT_READ, &pa, &contig), DART_OK);
	assert_int_equal(dart_emu_translate(d, rw, DART_PROT_WRITE, &pa, &contig), DART_OK);
	assert_int_equal(dart_emu_translate(d, rw, RW, &pa, &contig), DART_OK);
	assert_int_equal(pa, 0x300000);
	dart_emu_get_stats(d, &st);
	assert_int_equal(st.faults, 3);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_map_invalid(void **state)
{
	struct dart_emu *d = emu_with(0, 0, 0, 3);
	struct dart_emu_stats before, after;
	uint64_t iova = 0, pa = 0, contig = 0;

	(void)state;
	dart_emu_get_stats(d, &before);
	assert_int_equal(dart_emu_map(d, 0x100000, 0, RW, &iova), DART_E_INVAL);
	assert_int_equal(dart_emu_map(d, 0x100000 + 0x1000, PG, RW, &iova), DART_E_INVAL);
	assert_int_equal(dart_emu_map(d, 0x100000, PG + 0x1000, RW, &iova), DART_E_INVAL);
	assert_int_equal(dart_emu_map(d, UINT64_MAX - PG + 1, 2 * PG, RW, &iova), DART_E_INVAL);
	assert_int_equal(dart_emu_map(d, 0x100000, PG, 0, &iova), DART_E_INVAL);
	assert_int_equal(dart_emu_map(d, 0x100000, PG, 4, &iova), DART_E_INVAL);
	assert_int_equal(dart_emu_map(d, 0x100000, PG, RW, NULL), DART_E_INVAL);
	assert_int_equal(dart_emu_map(NULL, 0x100000, PG, RW, &iova), DART_E_INVAL);
	dart_emu_get_stats(d, &after);
	assert_stats_equal(&before, &after);		/* invalid is not a refusal */

	/* the very last physical page is a valid target, and paddr 0 too */
	assert_int_equal(dart_emu_map(d, UINT64_MAX - PG + 1, PG, RW, &iova), DART_OK);
	assert_int_equal(dart_emu_translate(d, iova + PG - 1, DART_PROT_READ, &pa, &contig),
			 DART_OK);
	assert_int_equal(pa, UINT64_MAX);
	assert_int_equal(contig, 1);
	assert_int_equal(dart_emu_map(d, 0, PG, RW, &iova), DART_OK);
	assert_int_equal(dart_emu_translate(d, iova, DART_PROT_READ, &pa, &contig), DART_OK);
	assert_int_equal(pa, 0);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_cap_mappings(void **state)
{
	struct dart_emu *d = emu_with(0, 0, 4, 4);
	struct dart_emu_stats before, after;
	uint64_t iova[5];
	int i;

	(void)state;
	for (i = 0; i < 4; i++)
		assert_int_equal(dart_emu_map(d, 0x100000 * (i + 1), PG, RW, &iova[i]), DART_OK);
	dart_emu_get_stats(d, &before);
	assert_int_equal(dart_emu_map(d, 0x900000, PG, RW, &iova[4]), DART_E_TOOMANY);
	dart_emu_get_stats(d, &after);
	/* a refusal changes nothing but the refusal counter */
	assert_int_equal(after.refusals, before.refusals + 1);
	after.refusals = before.refusals;
	assert_stats_equal(&before, &after);
	assert_true(dart_emu_check(d));

	assert_int_equal(dart_emu_unmap(d, iova[2], PG), DART_OK);
	assert_int_equal(dart_emu_map(d, 0x900000, PG, RW, &iova[4]), DART_OK);
	assert_int_equal(dart_emu_map(d, 0xa00000, PG, RW, &iova[2]), DART_E_TOOMANY);
	dart_emu_get_stats(d, &after);
	assert_int_equal(after.refusals, 2);
	assert_int_equal(after.peak_mappings, 4);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_cap_bytes(void **state)
{
	struct dart_emu *d = emu_with(0, 10 * PG, 0, 5);
	struct dart_emu_stats before, after;
	uint64_t a, b, c;

	(void)state;
	assert_int_equal(dart_emu_map(d, 0, 11 * PG, RW, &a), DART_E_NOSPACE);
	assert_int_equal(dart_emu_map(d, 0, 6 * PG, RW, &a), DART_OK);
	assert_int_equal(dart_emu_map(d, 0x1000000, 4 * PG, RW, &b), DART_OK);	/* exactly full */
	dart_emu_get_stats(d, &before);
	assert_int_equal(before.mapped_bytes, 10 * PG);
	assert_int_equal(dart_emu_map(d, 0x2000000, PG, RW, &c), DART_E_NOSPACE);
	assert_int_equal(dart_emu_map(d, 0x2000000, 5 * PG, RW, &c), DART_E_NOSPACE);
	dart_emu_get_stats(d, &after);
	assert_int_equal(after.refusals, before.refusals + 2);
	after.refusals = before.refusals;
	assert_stats_equal(&before, &after);

	assert_int_equal(dart_emu_unmap(d, b, 4 * PG), DART_OK);
	assert_int_equal(dart_emu_map(d, 0x2000000, 5 * PG, RW, &c), DART_E_NOSPACE);
	assert_int_equal(dart_emu_map(d, 0x2000000, 4 * PG, RW, &c), DART_OK);
	dart_emu_get_stats(d, &after);
	assert_int_equal(after.peak_mapped_bytes, 10 * PG);
	assert_int_equal(after.refusals, 4);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_no_iova(void **state)
{
	struct dart_emu *d = emu_with(8 * PG, 0, 0, 6);
	struct dart_emu_stats before, after;
	uint64_t a, b, iova[8];
	int n = 0, i;

	(void)state;
	/* a mapping needs its pages plus a guard page inside the window */
	assert_int_equal(dart_emu_map(d, 0, 8 * PG, RW, &a), DART_E_NOIOVA);
	assert_int_equal(dart_emu_map(d, 0, 1ull << 40, RW, &a), DART_E_NOSPACE);
	assert_int_equal(dart_emu_map(d, 0, 7 * PG, RW, &a), DART_OK);
	assert_int_equal(dart_emu_map(d, 0, PG, RW, &b), DART_E_NOIOVA);
	dart_emu_get_stats(d, &after);
	assert_int_equal(after.refusals, 3);
	assert_int_equal(dart_emu_unmap(d, a, 7 * PG), DART_OK);

	/* fill the window with one-page mappings until it is out of IOVAs */
	while (n < 8 && dart_emu_map(d, 0, PG, RW, &iova[n]) == DART_OK)
		n++;
	assert_true(n >= 2 && n <= 4);	/* 2 pages each, some left unusable by the layout */
	dart_emu_get_stats(d, &before);
	assert_int_equal(dart_emu_map(d, 0, PG, RW, &b), DART_E_NOIOVA);
	dart_emu_get_stats(d, &after);
	assert_int_equal(after.refusals, before.refusals + 1);
	assert_int_equal(dart_emu_unmap(d, iova[0], PG), DART_OK);
	assert_int_equal(dart_emu_map(d, 0, PG, RW, &b), DART_OK);
	assert_int_equal(b, iova[0]);	/* the only place left */
	for (i = 1; i < n; i++)
		assert_int_equal(dart_emu_unmap(d, iova[i], PG), DART_OK);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_unmap_exact(void **state)
{
	struct dart_emu *d = emu_with(0, 0, 0, 7);
	struct dart_emu_stats before, after;
	struct dart_emu_config cfg;
	uint64_t iova, pa, contig;

	(void)state;
	dart_emu_get_config(d, &cfg);
	assert_int_equal(dart_emu_map(d, 0x40000000, 3 * PG, RW, &iova), DART_OK);
	dart_emu_get_stats(d, &before);
	assert_int_equal(dart_emu_unmap(d, iova, 2 * PG), DART_E_LENMISMATCH);
	assert_int_equal(dart_emu_unmap(d, iova, 4 * PG), DART_E_LENMISMATCH);
	assert_int_equal(dart_emu_unmap(d, iova, 1ull << 50), DART_E_LENMISMATCH);
	assert_int_equal(dart_emu_unmap(d, iova + PG, 2 * PG), DART_E_NOTMAPPED);
	assert_int_equal(dart_emu_unmap(d, iova + 3 * PG, PG), DART_E_NOTMAPPED);
	assert_int_equal(dart_emu_unmap(d, iova - PG, 4 * PG), DART_E_NOTMAPPED);
	assert_int_equal(dart_emu_unmap(d, 0, PG), DART_E_NOTMAPPED);
	assert_int_equal(dart_emu_unmap(d, cfg.iova_base + cfg.iova_size, PG), DART_E_NOTMAPPED);
	assert_int_equal(dart_emu_unmap(d, UINT64_MAX - PG + 1, PG), DART_E_NOTMAPPED);
	assert_int_equal(dart_emu_unmap(d, iova + 0x1000, 3 * PG), DART_E_INVAL);
	assert_int_equal(dart_emu_unmap(d, iova, 3 * PG - 0x1000), DART_E_INVAL);
	assert_int_equal(dart_emu_unmap(d, iova, 0), DART_E_INVAL);
	dart_emu_get_stats(d, &after);
	assert_stats_equal(&before, &after);
	assert_int_equal(dart_emu_translate(d, iova + PG, DART_PROT_READ, &pa, &contig), DART_OK);
	assert_int_equal(pa, 0x40000000 + PG);

	assert_int_equal(dart_emu_unmap(d, iova, 3 * PG), DART_OK);
	assert_int_equal(dart_emu_unmap(d, iova, 3 * PG), DART_E_NOTMAPPED);	/* double */
	assert_int_equal(dart_emu_translate(d, iova, DART_PROT_READ, &pa, &contig), DART_E_FAULT);
	dart_emu_get_stats(d, &after);
	assert_int_equal(after.live_mappings, 0);
	assert_int_equal(after.mapped_bytes, 0);
	assert_int_equal(after.unmaps, 1);
	assert_int_equal(after.peak_mapped_bytes, 3 * PG);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

struct range {
	uint64_t iova, len;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/* Map n buffers, then check alignment spread, window bounds and guard gaps. */
static void check_long_run(uint64_t seed, int n, uint32_t max_pages)
{
	struct dart_emu *d = emu_with(0, 0, 0, seed);
	struct range *r = calloc((size_t)n, sizeof(*r));
	struct dart_emu_config cfg;
	uint64_t rng = seed * 2654435761u + 1;
	int i, aligned32 = 0, aligned64k = 0;

	assert_non_null(r);
	dart_emu_get_config(d, &cfg);
	for (i = 0; i < n; i++) {
		r[i].len = (1 + xorshift64(&rng) % max_pages) * PG;
		assert_int_equal(dart_emu_map(d, (uint64_t)i << 30, r[i].len, RW, &r[i].iova),
				 DART_OK);
		assert_int_equal(r[i].iova % PG, 0);
		aligned32 += r[i].iova % (2 * PG) == 0;
		aligned64k += r[i].iova % (4 * PG) == 0;
	}
	/* page aligned, but not to anything larger as a rule */
	assert_true(aligned32 > 0 && aligned32 < n);
	assert_true(aligned64k < n / 2);

	qsort(r, (size_t)n, sizeof(*r), cmp_range);
	for (i = 0; i < n; i++) {
		assert_true(r[i].iova >= cfg.iova_base);
		assert_true(r[i].iova + r[i].len + PG <= cfg.iova_base + cfg.iova_size);
		if (i)	/* never overlapping, never adjacent: a guard page between */
			assert_true(r[i - 1].iova + r[i - 1].len + PG <= r[i].iova);
	}
	assert_true(dart_emu_check(d));
	free(r);
	dart_emu_free(d);
}

static void test_iova_alignment(void **state)
{
	(void)state;
	/* one-page buffers are the case where a naive allocator keeps one parity */
	check_long_run(1, 20000, 1);
	check_long_run(2, 20000, 4);
	check_long_run(3, 2000, 64);
}

static void test_first_iova_odd(void **state)
{
	uint64_t first[64];
	int seed, distinct = 0, j;

	(void)state;
	for (seed = 0; seed < 64; seed++) {
		struct dart_emu *d = emu_with(0, 0, 0, (uint64_t)seed);

		assert_int_equal(dart_emu_map(d, 0, PG, RW, &first[seed]), DART_OK);
		/* an odd page: 16 KiB aligned, not 32 KiB */
		assert_int_equal((first[seed] / PG) % 2, 1);
		for (j = 0; j < seed && first[j] != first[seed]; j++)
			;
		distinct += j == seed;
		dart_emu_free(d);
	}
	assert_true(distinct > 48);	/* the seed moves it */
}

static void test_reset(void **state)
{
	struct dart_emu *d = emu_with(0, 0, 0, 8);
	struct dart_emu_stats st;
	uint64_t iova[10], pa, contig;
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		assert_int_equal(dart_emu_map(d, (uint64_t)i << 24, (uint64_t)(i + 1) * PG, RW,
					      &iova[i]), DART_OK);
	assert_int_equal(dart_emu_unmap(d, iova[0], PG), DART_OK);
	dart_emu_reset(d);
	assert_true(dart_emu_check(d));
	dart_emu_get_stats(d, &st);
	assert_int_equal(st.live_mappings, 0);
	assert_int_equal(st.mapped_bytes, 0);
	assert_int_equal(st.peak_mappings, 0);
	assert_int_equal(st.peak_mapped_bytes, 0);
	assert_int_equal(st.maps, 10);		/* totals are kept */
	assert_int_equal(st.unmaps, 1);
	for (i = 1; i < 10; i++) {
		assert_int_equal(dart_emu_translate(d, iova[i], DART_PROT_READ, &pa, &contig),
				 DART_E_FAULT);
		assert_int_equal(dart_emu_unmap(d, iova[i], (uint64_t)(i + 1) * PG),
				 DART_E_NOTMAPPED);
	}
	assert_int_equal(dart_emu_map(d, 0, 2 * PG, RW, &iova[0]), DART_OK);
	dart_emu_get_stats(d, &st);
	assert_int_equal(st.peak_mappings, 1);
	assert_int_equal(st.peak_mapped_bytes, 2 * PG);
	assert_int_equal(st.faults, 9);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_default_caps_boundary(void **state)
{
	struct dart_emu *d = emu_with(0, 0, 0, 9);
	struct dart_emu_stats st;
	uint64_t iova;
	uint32_t i;

	(void)state;
	for (i = 0; i < DART_EMU_DEFAULT_MAX_MAPPINGS; i++)
		assert_int_equal(dart_emu_map(d, (uint64_t)i * PG, PG, DART_PROT_READ, &iova),
				 DART_OK);
	assert_int_equal(dart_emu_map(d, 0, PG, DART_PROT_READ, &iova), DART_E_TOOMANY);
	dart_emu_get_stats(d, &st);
	assert_int_equal(st.live_mappings, DART_EMU_DEFAULT_MAX_MAPPINGS);
	assert_int_equal(st.refusals, 1);
	assert_true(dart_emu_check(d));

	dart_emu_reset(d);
	for (i = 0; i < 6; i++)
		assert_int_equal(dart_emu_map(d, (uint64_t)i << 32, 256ull << 20, RW, &iova),
				 DART_OK);
	assert_int_equal(dart_emu_map(d, 0, PG, RW, &iova), DART_E_NOSPACE);
	dart_emu_get_stats(d, &st);
	assert_int_equal(st.mapped_bytes, DART_EMU_DEFAULT_MAX_BYTES);
	assert_int_equal(st.refusals, 2);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_page_shift_12(void **state)
{
	struct dart_emu_config cfg = { .page_shift = 12, .iova_size = 64 * 0x1000 };
	struct dart_emu *d = dart_emu_new(&cfg);
	uint64_t iova, pa, contig;

	(void)state;
	assert_non_null(d);
	dart_emu_get_config(d, &cfg);
	assert_int_equal(cfg.iova_base, 0x1000);
	assert_int_equal(dart_emu_map(d, 0x5000, 0x3000, DART_PROT_READ, &iova), DART_OK);
	assert_int_equal(iova % 0x1000, 0);
	assert_int_equal(dart_emu_translate(d, iova + 0x1234, DART_PROT_READ, &pa, &contig),
			 DART_OK);
	assert_int_equal(pa, 0x6234);
	assert_int_equal(contig, 0x3000 - 0x1234);
	assert_int_equal(dart_emu_unmap(d, iova, 0x3000), DART_OK);
	assert_true(dart_emu_check(d));
	dart_emu_free(d);
}

static void test_strerror(void **state)
{
	int i, j;

	(void)state;
	for (i = DART_E_NOMEM; i <= DART_OK; i++) {
		assert_string_not_equal(dart_emu_strerror(i), dart_emu_strerror(-100));
		for (j = DART_E_NOMEM; j < i; j++)
			assert_string_not_equal(dart_emu_strerror(i), dart_emu_strerror(j));
	}
}

/* ---------------------------------------------------------------- */
/* random run against a reference model                              */
/* ---------------------------------------------------------------- */

#define MODEL_PAGES	512u
#define MODEL_MAPS	40u
#define MODEL_BYTES	(120 * PG)

struct model_map {
	uint64_t iova, paddr, len;
	unsigned int prot;
};

struct model {
	struct model_map m[MODEL_MAPS];
	uint32_t n;
	uint64_t bytes;
	struct dart_emu_stats st;
};

/* Would the window have n + 1 free pages in a row, given the live mappings and guards? */
static bool model_has_room(const struct model *m, uint64_t base, uint64_t pages)
{
	bool used[MODEL_PAGES] = { false };
	uint32_t i, run = 0;
	uint64_t p;

	for (i = 0; i < m->n; i++) {
		uint64_t first = (m->m[i].iova - base) / PG;

		for (p = first; p <= first + m->m[i].len / PG; p++)
			used[p] = true;
	}
	for (p = 0; p < MODEL_PAGES; p++) {
		run = used[p] ? 0 : run + 1;
		if (run >= pages + 1)
			return true;
	}
	return false;
}

static int model_find(const struct model *m, uint64_t iova)
{
	uint32_t i;

	for (i = 0; i < m->n; i++)
		if (iova >= m->m[i].iova && iova - m->m[i].iova < m->m[i].len)
			return (int)i;
	return -1;
}

static void model_step(struct dart_emu *d, struct model *m, uint64_t *rng, uint64_t base)
{
	uint64_t r = xorshift64(rng), iova, pa, contig, len;
	unsigned int what = (unsigned int)(r % 100), prot;
	struct dart_emu_stats st;
	int ret, k;

	if (what < 50) {
		/* map: sometimes huge, to hit the byte cap and the window */
		len = (1 + (r >> 8) % ((r >> 40) % 16 ? 8 : 200)) * PG;
		prot = 1 + (unsigned int)((r >> 20) % 3);
		pa = ((r >> 24) % 100000) * PG;
		ret = dart_emu_map(d, pa, len, prot, &iova);
		if (len > MODEL_BYTES - m->bytes) {
			assert_int_equal(ret, DART_E_NOSPACE);
			m->st.refusals++;
		} else if (m->n >= MODEL_MAPS) {
			assert_int_equal(ret, DART_E_TOOMANY);
			m->st.refusals++;
		} else if (!model_has_room(m, base, len / PG)) {
			assert_int_equal(ret, DART_E_NOIOVA);
			m->st.refusals++;
		} else {
			assert_int_equal(ret, DART_OK);
			assert_int_equal(iova % PG, 0);
			assert_true(iova >= base && iova + len + PG <= base + MODEL_PAGES * PG);
			for (k = 0; k < (int)m->n; k++) {
				/* [iova, iova + len] incl. guards never touches another */
				assert_true(iova + len + PG <= m->m[k].iova ||
					    m->m[k].iova + m->m[k].len + PG <= iova);
			}
			m->m[m->n++] = (struct model_map){ iova, pa, len, prot };
			m->bytes += len;
			m->st.maps++;
		}
	} else if (what < 80) {
		/* unmap a live mapping, sometimes wrongly first */
		if (!m->n) {
			assert_int_equal(dart_emu_unmap(d, base + PG, PG), DART_E_NOTMAPPED);
			return;
		}
		k = (int)((r >> 8) % m->n);
		if ((r >> 32) % 4 == 0)
			assert_int_equal(dart_emu_unmap(d, m->m[k].iova, m->m[k].len + PG),
					 DART_E_LENMISMATCH);
		if ((r >> 34) % 4 == 0 && m->m[k].len > PG)
			assert_int_equal(dart_emu_unmap(d, m->m[k].iova + PG, m->m[k].len - PG),
					 DART_E_NOTMAPPED);
		assert_int_equal(dart_emu_unmap(d, m->m[k].iova, m->m[k].len), DART_OK);
		assert_int_equal(dart_emu_unmap(d, m->m[k].iova, m->m[k].len),
				 DART_E_NOTMAPPED);
		m->bytes -= m->m[k].len;
		m->m[k] = m->m[--m->n];
		m->st.unmaps++;
	} else if (what < 99) {
		/* translate anywhere in (and just around) the window */
		iova = base - PG + (r >> 8) % ((MODEL_PAGES + 2) * PG);
		prot = 1 + (unsigned int)((r >> 48) % 3);
		ret = dart_emu_translate(d, iova, prot, &pa, &contig);
		k = model_find(m, iova);
		if (k >= 0 && (m->m[k].prot & prot) == prot) {
			assert_int_equal(ret, DART_OK);
			assert_int_equal(pa, m->m[k].paddr + (iova - m->m[k].iova));
			assert_int_equal(contig, m->m[k].iova + m->m[k].len - iova);
		} else {
			assert_int_equal(ret, DART_E_FAULT);
			m->st.faults++;
		}
	} else {
		dart_emu_reset(d);
		m->n = 0;
		m->bytes = 0;
	}

	dart_emu_get_stats(d, &st);
	assert_int_equal(st.live_mappings, m->n);
	assert_int_equal(st.mapped_bytes, m->bytes);
	assert_int_equal(st.maps, m->st.maps);
	assert_int_equal(st.unmaps, m->st.unmaps);
	assert_int_equal(st.refusals, m->st.refusals);
	assert_int_equal(st.faults, m->st.faults);
}

static void test_random_vs_model(void **state)
{
	uint64_t seed;

	(void)state;
	for (seed = 1; seed <= 4; seed++) {
		struct dart_emu *d = emu_with(MODEL_PAGES * PG, MODEL_BYTES, MODEL_MAPS, seed);
		struct dart_emu_config cfg;
		struct model *m = calloc(1, sizeof(*m));
		uint64_t rng = 0x9e3779b97f4a7c15ull * seed;
		int step;

		assert_non_null(m);
		dart_emu_get_config(d, &cfg);
		for (step = 0; step < 10000; step++) {
			model_step(d, m, &rng, cfg.iova_base);
			assert_true(dart_emu_check(d));
		}
		assert_true(m->st.maps > 1000 && m->st.refusals > 100 && m->st.faults > 100);
		free(m);
		dart_emu_free(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_invalid),
		cmocka_unit_test(test_map_translate),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_map_invalid),
		cmocka_unit_test(test_cap_mappings),
		cmocka_unit_test(test_cap_bytes),
		cmocka_unit_test(test_no_iova),
		cmocka_unit_test(test_unmap_exact),
		cmocka_unit_test(test_iova_alignment),
		cmocka_unit_test(test_first_iova_odd),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_default_caps_boundary),
		cmocka_unit_test(test_page_shift_12),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_random_vs_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
