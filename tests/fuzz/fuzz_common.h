/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers for the libFuzzer targets: a byte consumer that never
 * fails and a property check that crashes loudly, so libFuzzer saves the
 * input that broke it.
 *
 * Once the input is used up the consumer goes on with a PRNG seeded from
 * the whole input (zeros would repeat one action forever): a short input
 * still drives a long, deterministic sequence, while the leading bytes
 * stay under the fuzzer's control.
 */
#ifndef PEGPU_FUZZ_COMMON_H
#define PEGPU_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fz {
	const uint8_t *p;
	size_t n;
	uint64_t rng;
};

static inline void fz_init(struct fz *f, const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ull;
	f->p = data;
	f->n = size;
	f->rng = h;
}

static inline bool fz_empty(const struct fz *f)
{
	return !f->n;
}

static inline uint8_t fz_u8(struct fz *f)
{
	uint64_t z;

	if (f->n) {
		f->n--;
		return *f->p++;
	}
	/* splitmix64 */
	z = (f->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint8_t)(z ^ (z >> 31));
}

static inline uint16_t fz_u16(struct fz *f)
{
	return (uint16_t)(fz_u8(f) | (fz_u8(f) << 8));
}

static inline uint32_t fz_u32(struct fz *f)
{
	return (uint32_t)fz_u16(f) | ((uint32_t)fz_u16(f) << 16);
}

static inline uint64_t fz_u64(struct fz *f)
{
	return (uint64_t)fz_u32(f) | ((uint64_t)fz_u32(f) << 32);
}

/* Uniform-ish in [0, n), n > 0. */
static inline uint32_t fz_below(struct fz *f, uint32_t n)
{
	return n <= 256 ? fz_u8(f) % n : fz_u32(f) % n;
}

/* A broken property: report and crash so the input is kept. */
#define PROP(cond, ...)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "property violated at %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			fprintf(stderr, "  " __VA_ARGS__);		\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

#endif /* PEGPU_FUZZ_COMMON_H */
