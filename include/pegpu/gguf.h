/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GGUF reader: the header of a llama.cpp model file (metadata and tensor
 * list), never its tensor data.
 *
 * The reader trusts nothing in the file: every read is bounded by the file
 * size, every size is overflow-checked, counts and lengths have limits, and
 * any problem yields a message naming what is wrong and at which offset.
 * GGUF versions 2 and 3 (little-endian) are accepted.
 *
 * Arrays of numbers are kept; arrays of strings (vocabularies, merges) are
 * validated and counted but not kept, since nothing here needs them.
 */
#ifndef PEGPU_GGUF_H
#define PEGPU_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on what a file may ask for; beyond them the file is refused. */
#define GGUF_MAX_TENSORS	(1u << 20)
#define GGUF_MAX_KV		(1u << 20)
#define GGUF_MAX_KEY_LEN	65535u		/* the GGUF spec's limit */
#define GGUF_MAX_STRING_LEN	(16u << 20)	/* chat templates are ~100 KiB */
#define GGUF_MAX_ARRAY_LEN	(1u << 24)	/* vocabularies are ~256 Ki */
#define GGUF_MAX_META_BYTES	(256u << 20)	/* all kept metadata together */
#define GGUF_MAX_NAME_LEN	63u		/* ggml's GGML_MAX_NAME - 1 */
#define GGUF_MAX_DIMS		4u
#define GGUF_MAX_ALIGNMENT	(1u << 20)
#define GGUF_DEFAULT_ALIGNMENT	32u

/* Error messages fit in this many bytes. */
#define GGUF_ERR_LEN		256

enum gguf_vtype {
	GGUF_T_UINT8 = 0,
	GGUF_T_INT8 = 1,
	GGUF_T_UINT16 = 2,
	GGUF_T_INT16 = 3,
	GGUF_T_UINT32 = 4,
	GGUF_T_INT32 = 5,
	GGUF_T_FLOAT32 = 6,
	GGUF_T_BOOL = 7,
	GGUF_T_STRING = 8,
	GGUF_T_ARRAY = 9,
	GGUF_T_UINT64 = 10,
	GGUF_T_INT64 = 11,
	GGUF_T_FLOAT64 = 12,
	GGUF_T_COUNT
};

/* ggml tensor types that have a fixed block layout (ggml.h's enum ggml_type). */
enum gguf_ggml_type {
	GGML_T_F32 = 0, GGML_T_F16 = 1, GGML_T_Q4_0 = 2, GGML_T_Q4_1 = 3,
	GGML_T_Q5_0 = 6, GGML_T_Q5_1 = 7, GGML_T_Q8_0 = 8, GGML_T_Q8_1 = 9,
	GGML_T_Q2_K = 10, GGML_T_Q3_K = 11, GGML_T_Q4_K = 12, GGML_T_Q5_K = 13,
	GGML_T_Q6_K = 14, GGML_T_Q8_K = 15, GGML_T_IQ2_XXS = 16,
	GGML_T_IQ2_XS = 17, GGML_T_IQ3_XXS = 18, GGML_T_IQ1_S = 19,
	GGML_T_IQ4_NL = 20, GGML_T_IQ3_S = 21, GGML_T_IQ2_S = 22,
	GGML_T_IQ4_XS = 23, GGML_T_I8 = 24, GGML_T_I16 = 25, GGML_T_I32 = 26,
	GGML_T_I64 = 27, GGML_T_F64 = 28, GGML_T_IQ1_M = 29, GGML_T_BF16 = 30,
	GGML_T_TQ1_0 = 34, GGML_T_TQ2_0 = 35, GGML_T_MXFP4 = 39,
	GGML_T_NVFP4 = 40, GGML_T_Q1_0 = 41, GGML_T_Q2_0 = 42,
};

struct gguf_kv {
	char *key;			/* NUL-terminated, no NUL inside */
	enum gguf_vtype type;
	uint64_t offset;		/* file offset of the key, for messages */
	union {
		uint64_t u;		/* UINT8..UINT64 */
		int64_t i;		/* INT8..INT64 */
		double f;		/* FLOAT32, FLOAT64 */
		bool b;			/* BOOL */
	} v;
	/* GGUF_T_STRING: the bytes plus a NUL (the string may hold NULs) */
	char *str;
	uint64_t str_len;
	/* GGUF_T_ARRAY */
	enum gguf_vtype arr_type;
	uint64_t arr_n;
	void *arr;			/* little-endian elements; NULL for strings */
};

struct gguf_tensor {
	char name[GGUF_MAX_NAME_LEN + 1];
	uint32_t type;			/* enum gguf_ggml_type */
	uint32_t n_dims;
	uint64_t ne[GGUF_MAX_DIMS];	/* unused dims are 1 */
	uint64_t offset;		/* from the start of the data section */
	uint64_t size;			/* bytes, from the type's block layout */
};

struct gguf;

/* Open and parse a file; NULL with a message in err on any problem. */
struct gguf *gguf_open(const char *path, char *err, size_t errlen);
/* The same over a buffer (tests, fuzzing); name appears in messages. */
struct gguf *gguf_parse_mem(const void *buf, size_t len, const char *name, char *err,
			    size_t errlen);
void gguf_close(struct gguf *g);

uint32_t gguf_version(const struct gguf *g);
uint32_t gguf_alignment(const struct gguf *g);
uint64_t gguf_data_offset(const struct gguf *g);	/* file offset of tensor data */
uint64_t gguf_file_size(const struct gguf *g);

size_t gguf_kv_count(const struct gguf *g);
const struct gguf_kv *gguf_kv_at(const struct gguf *g, size_t i);
const struct gguf_kv *gguf_find(const struct gguf *g, const char *key);

/*
 * Typed lookups: 0 on success, -ENOENT when the key is missing, -EINVAL
 * when it has another type or its value does not fit (a negative count).
 * gguf_get_uint accepts any integer type holding a non-negative value;
 * gguf_get_float accepts FLOAT32 and FLOAT64.
 */
int gguf_get_uint(const struct gguf *g, const char *key, uint64_t *out);
int gguf_get_float(const struct gguf *g, const char *key, double *out);
int gguf_get_bool(const struct gguf *g, const char *key, bool *out);
/* NULL when missing or not a string. */
const char *gguf_get_str(const struct gguf *g, const char *key);
/* Element i of an integer array as a non-negative value (same errors). */
int gguf_arr_get_uint(const struct gguf_kv *kv, uint64_t i, uint64_t *out);

size_t gguf_tensor_count(const struct gguf *g);
const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, size_t i);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

/* "F16", "Q4_K", ...; NULL for a type this reader does not know. */
const char *gguf_type_name(uint32_t type);
/* Elements per block and bytes per block; false for an unknown type. */
bool gguf_type_block(uint32_t type, uint32_t *blck, uint32_t *bytes);
/* Bytes of a tensor: 0 on success, -EINVAL (message in err) otherwise. */
int gguf_tensor_nbytes(uint32_t type, const uint64_t *ne, uint32_t n_dims, uint64_t *out,
		       char *err, size_t errlen);
const char *gguf_vtype_name(enum gguf_vtype t);

/*
 * What the split planner needs from a llama-family model.  Tensors named
 * blk.N.* belong to layer N; token_embd.* is the input layer (always on the
 * host in llama.cpp); output.* and output_norm.* are the output layer.
 */
struct gguf_model_summary {
	char arch[64];
	uint32_t n_layer;		/* <arch>.block_count */
	uint32_t n_embd;		/* <arch>.embedding_length */
	uint32_t n_head;		/* <arch>.attention.head_count */
	uint32_t n_head_kv;		/* the largest per-layer value */
	uint32_t n_ctx_train;		/* <arch>.context_length */
	uint32_t head_dim_k, head_dim_v;
	uint32_t n_vocab;		/* rows of token_embd */
	uint32_t n_expert, n_expert_used; /* 0 for dense models */
	uint64_t *layer_bytes;		/* [n_layer]: all blk.N.* tensors */
	uint64_t *layer_expert_bytes;	/* [n_layer]: blk.N.ffn_*_exps* */
	uint64_t *layer_kv_bytes;	/* [n_layer]: f16 K + V bytes per token */
	uint64_t input_bytes;		/* token_embd.* */
	/* output.*, output_norm.*; with tied embeddings (no output.weight)
	 * llama.cpp copies token_embd to the output device: counted here. */
	uint64_t output_bytes;
	bool output_tied;
	uint64_t other_bytes;		/* anything else; planned on the host */
	uint64_t total_bytes;		/* all tensors in the file */
};

/* 0 on success; -EINVAL with a message when the model is not usable. */
int gguf_model_summary(const struct gguf *g, struct gguf_model_summary *s, char *err,
		       size_t errlen);
void gguf_model_summary_free(struct gguf_model_summary *s);

#endif /* PEGPU_GGUF_H */
