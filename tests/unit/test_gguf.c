/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GGUF reader: a round trip through a small model built here, the model
 * summary, every truncation of that file, hand-made hostile files, and
 * random mutations (run it under ASan: meson -Db_sanitize=address).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pegpu/gguf.h"

/* ---- a tiny GGUF builder ---- */

struct tb {
	uint8_t *p;
	size_t len, cap;
};

static void tb_put(struct tb *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* n little-endian bytes of v; bytes past the eighth are zero */
static void tb_le(struct tb *b, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t x = i < 8 ? (uint8_t)(v >> (8 * i)) : 0;

		tb_put(b, &x, 1);
	}
}

static void tb_str(struct tb *b, const char *s)
{
	tb_le(b, strlen(s), 8);
	tb_put(b, s, strlen(s));
}

static void tb_hdr(struct tb *b, uint32_t version, uint64_t n_t, uint64_t n_kv)
{
	tb_put(b, "GGUF", 4);
	tb_le(b, version, 4);
	tb_le(b, n_t, 8);
	tb_le(b, n_kv, 8);
}

static void kv_u32(struct tb *b, const char *k, uint32_t v)
{
	tb_str(b, k);
	tb_le(b, GGUF_T_UINT32, 4);
	tb_le(b, v, 4);
}

static void kv_str(struct tb *b, const char *k, const char *v)
{
	tb_str(b, k);
	tb_le(b, GGUF_T_STRING, 4);
	tb_str(b, v);
}

struct tdesc {
	const char *name;
	uint32_t type;
	uint32_t n_dims;
	uint64_t ne[4];
	uint64_t size;		/* expected, hand-computed */
};

/*
 * The test model: llama, 2 layers, n_embd 32, 4 heads, 2 KV heads, an
 * expert tensor in layer 1, tied embeddings (no output.weight), a few
 * types.  Tensor data follow each other, aligned to 32, and the file ends
 * exactly at the end of the last tensor so that every shorter prefix is
 * invalid.
 */
static const struct tdesc model_tensors[] = {
	{ "token_embd.weight", GGML_T_F16, 2, { 32, 10 }, 32 * 10 * 2 },
	{ "output_norm.weight", GGML_T_F32, 1, { 32 }, 32 * 4 },
	{ "blk.0.attn_q.weight", GGML_T_Q8_0, 2, { 32, 32 }, 32 * 34 },
	{ "blk.0.attn_k.weight", GGML_T_Q4_0, 2, { 32, 16 }, 16 * 18 },
	{ "blk.0.ffn_up.weight", GGML_T_BF16, 2, { 32, 3 }, 32 * 3 * 2 },
	{ "blk.1.attn_q.weight", GGML_T_Q6_K, 2, { 256, 2 }, 2 * 210 },
	{ "blk.1.ffn_up_exps.weight", GGML_T_Q4_K, 3, { 256, 2, 4 }, 8 * 144 },
	{ "blk.1.ffn_gate_inp.weight", GGML_T_F32, 2, { 32, 4 }, 32 * 4 * 4 },
	{ "rope_freqs.weight", GGML_T_F32, 1, { 4 }, 16 },
	{ "blk.1.attn_norm.weight", GGML_T_IQ4_XS, 1, { 256 }, 136 },
};

#define N_MODEL_T (sizeof(model_tensors) / sizeof(model_tensors[0]))

static uint64_t model_offset[N_MODEL_T];

static struct tb build_model(void)
{
	struct tb b = { 0 };
	uint64_t off = 0;

	tb_hdr(&b, 3, N_MODEL_T, 11);
	kv_str(&b, "general.architecture", "llama");
	kv_str(&b, "general.name", "test");
	kv_u32(&b, "llama.block_count", 2);
	kv_u32(&b, "llama.embedding_length", 32);
	kv_u32(&b, "llama.attention.head_count", 4);
	kv_u32(&b, "llama.attention.head_count_kv", 2);
	kv_u32(&b, "llama.context_length", 64);
	kv_u32(&b, "llama.expert_count", 4);
	/* an INT32 count and a float */
	tb_str(&b, "llama.expert_used_count");
	tb_le(&b, GGUF_T_INT32, 4);
	tb_le(&b, 2, 4);
	tb_str(&b, "llama.attention.layer_norm_rms_epsilon");
	tb_le(&b, GGUF_T_FLOAT32, 4);
	tb_le(&b, 0x3727c5ac, 4);	/* 1e-5f */
	/* a string array, kept only as a count */
	tb_str(&b, "tokenizer.ggml.tokens");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, GGUF_T_STRING, 4);
	tb_le(&b, 3, 8);
	tb_str(&b, "<unk>");
	tb_str(&b, "a");
	tb_str(&b, "");
	for (size_t i = 0; i < N_MODEL_T; i++) {
		const struct tdesc *t = &model_tensors[i];

		tb_str(&b, t->name);
		tb_le(&b, t->n_dims, 4);
		for (uint32_t j = 0; j < t->n_dims; j++)
			tb_le(&b, t->ne[j], 8);
		tb_le(&b, t->type, 4);
		tb_le(&b, off, 8);
		model_offset[i] = off;
		off += (t->size + 31) / 32 * 32;
	}
	while (b.len % 32)
		tb_le(&b, 0, 1);
	for (size_t i = 0; i < N_MODEL_T; i++) {
		size_t end = i + 1 < N_MODEL_T ? (model_tensors[i].size + 31) / 32 * 32
					       : model_tensors[i].size;

		for (size_t k = 0; k < end; k++)
			tb_le(&b, (uint8_t)(i * 7 + k), 1);
	}
	return b;
}

/* Parse from an exact-size heap copy, so ASan sees any over-read. */
static struct gguf *parse_exact(const uint8_t *p, size_t len, char *err)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct gguf *g;

	assert_non_null(copy);
	memcpy(copy, p, len);
	err[0] = '\0';
	g = gguf_parse_mem(copy, len, "t.gguf", err, GGUF_ERR_LEN);
	free(copy);
	return g;
}

static void check_model(const struct gguf *g)
{
	uint64_t u;
	double f;

	assert_int_equal(gguf_version(g), 3);
	assert_int_equal(gguf_alignment(g), 32);
	assert_int_equal(gguf_kv_count(g), 11);
	assert_string_equal(gguf_get_str(g, "general.architecture"), "llama");
	assert_int_equal(gguf_get_uint(g, "llama.block_count", &u), 0);
	assert_int_equal(u, 2);
	assert_int_equal(gguf_get_uint(g, "llama.expert_used_count", &u), 0);
	assert_int_equal(u, 2);
	assert_int_equal(gguf_get_uint(g, "no.such.key", &u), -ENOENT);
	assert_int_equal(gguf_get_uint(g, "general.name", &u), -EINVAL);
	assert_int_equal(gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &f), 0);
	assert_true(f > 0.99e-5 && f < 1.01e-5);
	assert_null(gguf_get_str(g, "llama.block_count"));

	const struct gguf_kv *kv = gguf_find(g, "tokenizer.ggml.tokens");

	assert_non_null(kv);
	assert_int_equal(kv->type, GGUF_T_ARRAY);
	assert_int_equal(kv->arr_type, GGUF_T_STRING);
	assert_int_equal(kv->arr_n, 3);

	assert_int_equal(gguf_tensor_count(g), N_MODEL_T);
	for (size_t i = 0; i < N_MODEL_T; i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);

		assert_string_equal(t->name, model_tensors[i].name);
		assert_int_equal(t->type, model_tensors[i].type);
		assert_int_equal(t->n_dims, model_tensors[i].n_dims);
		assert_int_equal(t->size, model_tensors[i].size);
		assert_int_equal(t->offset, model_offset[i]);
		assert_ptr_equal(gguf_find_tensor(g, t->name), t);
	}
	assert_null(gguf_find_tensor(g, "output.weight"));
}

static void test_round_trip(void **state)
{
	struct tb b = build_model();
	char err[GGUF_ERR_LEN];
	struct gguf *g;

	(void)state;
	g = parse_exact(b.p, b.len, err);
	if (!g)
		fail_msg("%s", err);
	check_model(g);
	gguf_close(g);

	/* the same through a file */
	char path[] = "/tmp/pegpu-test-gguf-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b.p, b.len), (ssize_t)b.len);
	close(fd);
	g = gguf_open(path, err, sizeof(err));
	unlink(path);
	if (!g)
		fail_msg("%s", err);
	check_model(g);
	assert_int_equal(gguf_file_size(g), b.len);
	gguf_close(g);

	assert_null(gguf_open("/nonexistent/x.gguf", err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
	assert_null(gguf_open("/tmp", err, sizeof(err)));
	free(b.p);
}

static void test_summary(void **state)
{
	struct tb b = build_model();
	struct gguf_model_summary s;
	char err[GGUF_ERR_LEN];
	struct gguf *g = parse_exact(b.p, b.len, err);

	(void)state;
	assert_non_null(g);
	assert_int_equal(gguf_model_summary(g, &s, err, sizeof(err)), 0);
	assert_string_equal(s.arch, "llama");
	assert_int_equal(s.n_layer, 2);
	assert_int_equal(s.n_embd, 32);
	assert_int_equal(s.n_head, 4);
	assert_int_equal(s.n_head_kv, 2);
	assert_int_equal(s.n_ctx_train, 64);
	assert_int_equal(s.head_dim_k, 8);
	assert_int_equal(s.head_dim_v, 8);
	assert_int_equal(s.n_vocab, 10);
	assert_int_equal(s.n_expert, 4);
	assert_int_equal(s.n_expert_used, 2);
	assert_int_equal(s.layer_bytes[0], 32 * 34 + 16 * 18 + 32 * 3 * 2);
	assert_int_equal(s.layer_bytes[1], 2 * 210 + 8 * 144 + 32 * 4 * 4 + 136);
	assert_int_equal(s.layer_expert_bytes[0], 0);
	assert_int_equal(s.layer_expert_bytes[1], 8 * 144);
	/* (8 + 8) * 2 KV heads * 2 bytes */
	assert_int_equal(s.layer_kv_bytes[0], 64);
	assert_int_equal(s.layer_kv_bytes[1], 64);
	assert_int_equal(s.input_bytes, 640);
	assert_true(s.output_tied);
	assert_int_equal(s.output_bytes, 128 + 640);
	assert_int_equal(s.other_bytes, 16);
	uint64_t total = 0;

	for (size_t i = 0; i < N_MODEL_T; i++)
		total += model_tensors[i].size;
	assert_int_equal(s.total_bytes, total);
	gguf_model_summary_free(&s);
	gguf_close(g);
	free(b.p);
}

static void test_truncated_everywhere(void **state)
{
	struct tb b = build_model();
	char err[GGUF_ERR_LEN];

	(void)state;
	for (size_t len = 0; len < b.len; len++) {
		struct gguf *g = parse_exact(b.p, len, err);

		if (g)
			fail_msg("a prefix of %zu of %zu bytes parsed", len, b.len);
		if (!strstr(err, "offset") && len)
			fail_msg("prefix %zu: message without an offset: %s", len, err);
	}
	free(b.p);
}

/* ---- hostile files ---- */

static void expect_error(struct tb *b, const char *needle)
{
	char err[GGUF_ERR_LEN];
	struct gguf *g = parse_exact(b->p, b->len, err);

	if (g)
		fail_msg("parsed, expected an error with '%s'", needle);
	if (!strstr(err, needle))
		fail_msg("expected '%s' in: %s", needle, err);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void test_hostile_header(void **state)
{
	struct tb b = { 0 };

	(void)state;
	tb_put(&b, "GGML", 4);
	tb_le(&b, 3, 4);
	tb_le(&b, 0, 16);
	expect_error(&b, "not a GGUF file");

	tb_hdr(&b, 1, 0, 0);
	expect_error(&b, "version 1 is not supported");
	tb_hdr(&b, 0x03000000, 0, 0);
	expect_error(&b, "big-endian");
	tb_hdr(&b, 4, 0, 0);
	expect_error(&b, "unknown GGUF version 4");

	tb_hdr(&b, 3, 1ull << 40, 0);
	expect_error(&b, "more than the limit");
	tb_hdr(&b, 3, 0, UINT64_MAX);
	expect_error(&b, "more than the limit");
	tb_hdr(&b, 3, 1000, 1000);
	expect_error(&b, "cannot fit");

	/* an empty but valid file: no keys, no tensors */
	char err[GGUF_ERR_LEN];

	tb_hdr(&b, 2, 0, 0);
	struct gguf *g = parse_exact(b.p, b.len, err);

	assert_non_null(g);
	assert_int_equal(gguf_version(g), 2);
	gguf_close(g);
	free(b.p);
}

static void test_hostile_kv(void **state)
{
	struct tb b = { 0 };

	(void)state;
	tb_hdr(&b, 3, 0, 1);
	tb_le(&b, 1ull << 62, 8);
	tb_le(&b, 0, 8);
	expect_error(&b, "key is 4611686018427387904 bytes long");

	tb_hdr(&b, 3, 0, 1);
	tb_le(&b, 100, 8);
	tb_put(&b, "short", 5);
	tb_le(&b, 0, 4);	/* reach the smallest key/value size */
	expect_error(&b, "runs past the end");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "");
	tb_le(&b, GGUF_T_UINT8, 4);
	tb_le(&b, 0, 2);
	expect_error(&b, "empty key");

	tb_hdr(&b, 3, 0, 1);
	tb_le(&b, 3, 8);
	tb_put(&b, "a\0b", 3);
	tb_le(&b, GGUF_T_UINT8, 4);
	tb_le(&b, 0, 1);
	expect_error(&b, "NUL");

	tb_hdr(&b, 3, 0, 2);
	kv_u32(&b, "k", 1);
	kv_u32(&b, "k", 2);
	expect_error(&b, "duplicate key 'k'");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, 13, 4);
	tb_le(&b, 0, 8);
	expect_error(&b, "unknown value type 13");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, GGUF_T_BOOL, 4);
	tb_le(&b, 2, 1);
	expect_error(&b, "neither 0 nor 1");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, GGUF_T_STRING, 4);
	tb_le(&b, GGUF_MAX_STRING_LEN + 1ull, 8);
	tb_le(&b, 0, 8);
	expect_error(&b, "more than the limit");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, 1, 8);
	expect_error(&b, "arrays of arrays");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, 77, 4);
	tb_le(&b, 1, 8);
	expect_error(&b, "unknown array element type 77");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, GGUF_T_UINT64, 4);
	tb_le(&b, GGUF_MAX_ARRAY_LEN + 1ull, 8);
	expect_error(&b, "more than the limit");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, GGUF_T_UINT64, 4);
	tb_le(&b, 1000, 8);
	tb_le(&b, 0, 16);
	expect_error(&b, "truncated");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "k");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, GGUF_T_STRING, 4);
	tb_le(&b, 1000000, 8);
	tb_le(&b, 0, 16);
	expect_error(&b, "cannot fit");

	tb_hdr(&b, 3, 0, 1);
	tb_str(&b, "general.alignment");
	tb_le(&b, GGUF_T_UINT64, 4);
	tb_le(&b, 32, 8);
	expect_error(&b, "not UINT32");

	tb_hdr(&b, 3, 0, 1);
	kv_u32(&b, "general.alignment", 48);
	expect_error(&b, "not a power of two");

	tb_hdr(&b, 3, 0, 1);
	kv_u32(&b, "general.alignment", 0);
	expect_error(&b, "not a power of two");
}

/* One tensor info, then padding and size bytes of data. */
static void one_tensor(struct tb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
		       uint32_t type, uint64_t off, size_t data)
{
	tb_hdr(b, 3, 1, 0);
	tb_str(b, name);
	tb_le(b, n_dims, 4);
	for (uint32_t j = 0; j < n_dims; j++)
		tb_le(b, ne[j], 8);
	tb_le(b, type, 4);
	tb_le(b, off, 8);
	while (b->len % 32)
		tb_le(b, 0, 1);
	for (size_t i = 0; i < data; i++)
		tb_le(b, 0, 1);
}

static void test_hostile_tensors(void **state)
{
	static const uint64_t n4[] = { 4 }, n0[] = { 0 }, big[] = { 1ull << 40, 1ull << 40 };
	static const uint64_t n5[] = { 1, 1, 1, 1, 1 }, q40[] = { 33 };
	struct tb b = { 0 };
	char err[GGUF_ERR_LEN];

	(void)state;
	one_tensor(&b, "t", 1, n4, GGML_T_F32, 0, 16);
	struct gguf *g = parse_exact(b.p, b.len, err);

	if (!g)
		fail_msg("%s", err);
	assert_int_equal(gguf_tensor_at(g, 0)->size, 16);
	gguf_close(g);
	free(b.p);
	memset(&b, 0, sizeof(b));

	one_tensor(&b, "t", 0, n4, GGML_T_F32, 0, 16);
	expect_error(&b, "0 dimensions");
	one_tensor(&b, "t", 5, n5, GGML_T_F32, 0, 16);
	expect_error(&b, "5 dimensions");
	one_tensor(&b, "t", 1, n0, GGML_T_F32, 0, 16);
	expect_error(&b, "zero, or the element count overflows");
	one_tensor(&b, "t", 2, big, GGML_T_F32, 0, 16);
	expect_error(&b, "overflows");
	one_tensor(&b, "t", 1, n4, 4, 0, 16);
	expect_error(&b, "unknown ggml type 4");
	one_tensor(&b, "t", 1, n4, 999, 0, 16);
	expect_error(&b, "unknown ggml type 999");
	one_tensor(&b, "t", 1, q40, GGML_T_Q4_0, 0, 64);
	expect_error(&b, "not a multiple of Q4_0's block of 32");
	one_tensor(&b, "t", 1, n4, GGML_T_F32, 8, 64);
	expect_error(&b, "not a multiple of the alignment");
	one_tensor(&b, "t", 1, n4, GGML_T_F32, 0, 15);
	expect_error(&b, "runs past the end");
	one_tensor(&b, "t", 1, n4, GGML_T_F32, UINT64_MAX - 31, 16);
	expect_error(&b, "runs past the end");
	one_tensor(&b, "", 1, n4, GGML_T_F32, 0, 16);
	expect_error(&b, "empty tensor name");
	one_tensor(&b, "0123456789012345678901234567890123456789012345678901234567890123", 1, n4,
		   GGML_T_F32, 0, 16);
	expect_error(&b, "more than the limit of 63");

	/* two tensors: duplicate name, overlap */
	for (int k = 0; k < 2; k++) {
		tb_hdr(&b, 3, 2, 0);
		for (int i = 0; i < 2; i++) {
			tb_str(&b, k == 0 ? "same" : (i ? "b" : "a"));
			tb_le(&b, 1, 4);
			tb_le(&b, 16, 8);
			tb_le(&b, GGML_T_F32, 4);
			tb_le(&b, k == 0 ? (uint64_t)i * 64 : (uint64_t)i * 32, 8);
		}
		while (b.len % 32)
			tb_le(&b, 0, 1);
		for (int i = 0; i < 128; i++)
			tb_le(&b, 0, 1);
		expect_error(&b, k == 0 ? "duplicate tensor 'same'" : "overlap");
	}
}

static void test_type_sizes(void **state)
{
	static const struct { uint32_t type; uint64_t bytes; } want[] = {
		{ GGML_T_F32, 1024 }, { GGML_T_F16, 512 }, { GGML_T_BF16, 512 },
		{ GGML_T_Q4_0, 144 }, { GGML_T_Q4_1, 160 }, { GGML_T_Q5_0, 176 },
		{ GGML_T_Q5_1, 192 }, { GGML_T_Q8_0, 272 }, { GGML_T_Q2_K, 84 },
		{ GGML_T_Q3_K, 110 }, { GGML_T_Q4_K, 144 }, { GGML_T_Q5_K, 176 },
		{ GGML_T_Q6_K, 210 }, { GGML_T_Q8_K, 292 }, { GGML_T_IQ2_XXS, 66 },
		{ GGML_T_IQ2_XS, 74 }, { GGML_T_IQ3_XXS, 98 }, { GGML_T_IQ1_S, 50 },
		{ GGML_T_IQ4_NL, 144 }, { GGML_T_IQ3_S, 110 }, { GGML_T_IQ2_S, 82 },
		{ GGML_T_IQ4_XS, 136 }, { GGML_T_IQ1_M, 56 }, { GGML_T_TQ1_0, 54 },
		{ GGML_T_TQ2_0, 66 }, { GGML_T_MXFP4, 136 },
	};
	uint64_t ne[4] = { 256, 1, 1, 1 }, n;
	char err[GGUF_ERR_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(gguf_tensor_nbytes(want[i].type, ne, 1, &n, err, sizeof(err)), 0);
		if (n != want[i].bytes)
			fail_msg("%s: %llu bytes, expected %llu", gguf_type_name(want[i].type),
				 (unsigned long long)n, (unsigned long long)want[i].bytes);
	}
	ne[1] = 3;
	assert_int_equal(gguf_tensor_nbytes(GGML_T_Q4_K, ne, 2, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3 * 144);
	assert_int_equal(gguf_tensor_nbytes(31, ne, 2, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown ggml type 31"));
	assert_null(gguf_type_name(4));
	assert_string_equal(gguf_type_name(GGML_T_Q6_K), "Q6_K");
}

/* Summary errors: a file that parses but is not a usable llama model. */
static void summary_error(struct tb *b, const char *needle)
{
	char err[GGUF_ERR_LEN];
	struct gguf_model_summary s;
	struct gguf *g = parse_exact(b->p, b->len, err);

	if (!g)
		fail_msg("%s", err);
	assert_int_equal(gguf_model_summary(g, &s, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("expected '%s' in: %s", needle, err);
	assert_null(s.layer_bytes);
	gguf_close(g);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void test_summary_errors(void **state)
{
	struct tb b = { 0 };

	(void)state;
	tb_hdr(&b, 3, 0, 0);
	summary_error(&b, "general.architecture");

	tb_hdr(&b, 3, 0, 1);
	kv_str(&b, "general.architecture", "Llama!");
	summary_error(&b, "general.architecture");

	tb_hdr(&b, 3, 0, 1);
	kv_str(&b, "general.architecture", "llama");
	summary_error(&b, "missing metadata key llama.block_count");

	tb_hdr(&b, 3, 0, 3);
	kv_str(&b, "general.architecture", "llama");
	kv_u32(&b, "llama.block_count", 100000000);
	kv_u32(&b, "llama.embedding_length", 8);
	summary_error(&b, "llama.block_count");

	tb_hdr(&b, 3, 0, 4);
	kv_str(&b, "general.architecture", "llama");
	kv_u32(&b, "llama.block_count", 2);
	kv_u32(&b, "llama.embedding_length", 8);
	kv_u32(&b, "llama.attention.head_count", 0);
	summary_error(&b, "head_count is 0");

	tb_hdr(&b, 3, 0, 4);
	kv_str(&b, "general.architecture", "llama");
	kv_u32(&b, "llama.block_count", 2);
	kv_u32(&b, "llama.embedding_length", 8);
	tb_str(&b, "llama.attention.head_count");
	tb_le(&b, GGUF_T_INT32, 4);
	tb_le(&b, (uint32_t)-4, 4);
	summary_error(&b, "llama.attention.head_count");

	/* per-layer KV heads: an array of the wrong length */
	tb_hdr(&b, 3, 0, 5);
	kv_str(&b, "general.architecture", "llama");
	kv_u32(&b, "llama.block_count", 2);
	kv_u32(&b, "llama.embedding_length", 8);
	kv_u32(&b, "llama.attention.head_count", 2);
	tb_str(&b, "llama.attention.head_count_kv");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, GGUF_T_UINT32, 4);
	tb_le(&b, 3, 8);
	tb_le(&b, 1, 4);
	tb_le(&b, 1, 4);
	tb_le(&b, 1, 4);
	summary_error(&b, "one integer per layer");
}

static void test_per_layer_kv_heads(void **state)
{
	struct tb b = { 0 };
	struct gguf_model_summary s;
	char err[GGUF_ERR_LEN];

	(void)state;
	tb_hdr(&b, 3, 0, 5);
	kv_str(&b, "general.architecture", "llama");
	kv_u32(&b, "llama.block_count", 2);
	kv_u32(&b, "llama.embedding_length", 8);
	kv_u32(&b, "llama.attention.head_count", 2);
	tb_str(&b, "llama.attention.head_count_kv");
	tb_le(&b, GGUF_T_ARRAY, 4);
	tb_le(&b, GGUF_T_INT32, 4);
	tb_le(&b, 2, 8);
	tb_le(&b, 0, 4);
	tb_le(&b, 2, 4);

	struct gguf *g = parse_exact(b.p, b.len, err);

	assert_non_null(g);
	assert_int_equal(gguf_model_summary(g, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n_head_kv, 2);
	assert_int_equal(s.layer_kv_bytes[0], 0);
	assert_int_equal(s.layer_kv_bytes[1], (4 + 4) * 2 * 2);
	assert_int_equal(s.output_bytes, 0);
	gguf_model_summary_free(&s);
	gguf_close(g);
	free(b.p);
}

/* ---- fuzz-style mutations ---- */

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void test_mutations(void **state)
{
	static const uint64_t nasty[] = {
		0, 1, 2, 31, 32, 63, 64, 255, 0x7fffffff, 0xffffffff, 1ull << 32,
		1ull << 62, INT64_MAX, UINT64_MAX, UINT64_MAX - 31,
	};
	struct tb b = build_model();
	uint8_t *m = malloc(b.len + 64);
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	unsigned parsed = 0, iters = 20000;
	char err[GGUF_ERR_LEN];

	(void)state;
	assert_non_null(m);
	for (unsigned it = 0; it < iters; it++) {
		size_t len = b.len;
		unsigned n = 1 + xorshift64(&rng) % 4;

		memcpy(m, b.p, b.len);
		for (unsigned k = 0; k < n; k++) {
			uint64_t r = xorshift64(&rng);
			size_t at = (size_t)(r >> 8) % len;

			switch (r % 5) {
			case 0:		/* flip a byte */
				m[at] ^= (uint8_t)(1 + (r >> 40) % 255);
				break;
			case 1: {	/* a nasty 8-byte value */
				uint64_t v = nasty[(r >> 32) % (sizeof(nasty) / sizeof(nasty[0]))];

				for (unsigned i = 0; i < 8 && at + i < len; i++)
					m[at + i] = (uint8_t)(v >> (8 * i));
				break;
			}
			case 2: {	/* a nasty 4-byte value */
				uint64_t v = nasty[(r >> 32) % (sizeof(nasty) / sizeof(nasty[0]))];

				for (unsigned i = 0; i < 4 && at + i < len; i++)
					m[at + i] = (uint8_t)(v >> (8 * i));
				break;
			}
			case 3:		/* truncate */
				len = at;
				break;
			default:	/* grow with junk */
				if (len < b.len + 64)
					m[len++] = (uint8_t)(r >> 48);
				break;
			}
			if (!len)
				len = 1;
		}
		struct gguf *g = parse_exact(m, len, err);

		if (!g) {
			assert_true(err[0] != '\0');
			continue;
		}
		parsed++;
		/* whatever parsed must be self-consistent and summarizable */
		for (size_t i = 0; i < gguf_tensor_count(g); i++) {
			const struct gguf_tensor *t = gguf_tensor_at(g, i);

			assert_true(gguf_data_offset(g) + t->offset + t->size <= len);
			assert_ptr_equal(gguf_find_tensor(g, t->name), t);
		}
		for (size_t i = 0; i < gguf_kv_count(g); i++)
			assert_ptr_equal(gguf_find(g, gguf_kv_at(g, i)->key), gguf_kv_at(g, i));
		struct gguf_model_summary s;

		if (!gguf_model_summary(g, &s, err, sizeof(err)))
			gguf_model_summary_free(&s);
		gguf_close(g);
	}
	/* some mutations hit tensor data and still parse */
	assert_true(parsed > 0 && parsed < iters);
	free(m);
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_hostile_header),
		cmocka_unit_test(test_hostile_kv),
		cmocka_unit_test(test_hostile_tensors),
		cmocka_unit_test(test_type_sizes),
		cmocka_unit_test(test_summary_errors),
		cmocka_unit_test(test_per_layer_kv_heads),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
