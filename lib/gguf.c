/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GGUF reader (see include/pegpu/gguf.h).
 *
 * Layout of a GGUF v2/v3 file (all little-endian):
 *   "GGUF" u32 version, u64 tensor count, u64 key/value count,
 *   key/values:   string key, u32 value type, value,
 *   tensor infos: string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *                 u64 offset (from the data section),
 *   padding to general.alignment (default 32), then the tensor data.
 * A string is a u64 length and that many bytes; an array is a u32 element
 * type, a u64 count and the elements.
 *
 * Everything is read through struct rd, which refuses to go past the end of
 * the file, so a truncated or lying file ends in a message, never in a read
 * of memory we do not own.  Counts are checked against the bytes left
 * before anything is allocated for them, and arrays grow as entries parse,
 * so a small hostile file cannot make us allocate much.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pegpu/gguf.h"

#define RD_BUF_SIZE	(64u << 10)

/* Smallest encodings, used to refuse counts the file cannot possibly hold. */
#define MIN_KV_BYTES		(8 + 1 + 4 + 1)		/* key len, 1-byte key, type, u8 */
#define MIN_TENSOR_BYTES	(8 + 1 + 4 + 8 + 4 + 8)	/* name, n_dims, 1 dim, type, off */

struct rd {
	const uint8_t *mem;	/* memory source, or NULL for fd */
	int fd;
	uint64_t size;
	uint64_t pos;
	uint8_t *buf;		/* fd read cache: [buf_off, buf_off + buf_len) */
	uint64_t buf_off;
	size_t buf_len;
	const char *name;
	char *err;
	size_t errlen;
};

/* A set of strings by index, for duplicate checks and lookups. */
struct strset {
	uint64_t *hash;
	uint32_t *idx;		/* UINT32_MAX: empty slot */
	size_t cap;		/* power of two */
	size_t n;
};

struct gguf {
	uint32_t version;
	uint32_t alignment;
	uint64_t file_size;
	uint64_t data_offset;
	struct gguf_kv *kv;
	size_t n_kv;
	struct gguf_tensor *t;
	size_t n_t;
	struct strset kv_set;
	struct strset t_set;
};

static const struct {
	const char *name;
	uint32_t blck;
	uint32_t bytes;
} type_info[] = {
	[GGML_T_F32] = { "F32", 1, 4 },
	[GGML_T_F16] = { "F16", 1, 2 },
	[GGML_T_Q4_0] = { "Q4_0", 32, 18 },
	[GGML_T_Q4_1] = { "Q4_1", 32, 20 },
	[GGML_T_Q5_0] = { "Q5_0", 32, 22 },
	[GGML_T_Q5_1] = { "Q5_1", 32, 24 },
	[GGML_T_Q8_0] = { "Q8_0", 32, 34 },
	[GGML_T_Q8_1] = { "Q8_1", 32, 36 },
	[GGML_T_Q2_K] = { "Q2_K", 256, 84 },
	[GGML_T_Q3_K] = { "Q3_K", 256, 110 },
	[GGML_T_Q4_K] = { "Q4_K", 256, 144 },
	[GGML_T_Q5_K] = { "Q5_K", 256, 176 },
	[GGML_T_Q6_K] = { "Q6_K", 256, 210 },
	[GGML_T_Q8_K] = { "Q8_K", 256, 292 },
	[GGML_T_IQ2_XXS] = { "IQ2_XXS", 256, 66 },
	[GGML_T_IQ2_XS] = { "IQ2_XS", 256, 74 },
	[GGML_T_IQ3_XXS] = { "IQ3_XXS", 256, 98 },
	[GGML_T_IQ1_S] = { "IQ1_S", 256, 50 },
	[GGML_T_IQ4_NL] = { "IQ4_NL", 32, 18 },
	[GGML_T_IQ3_S] = { "IQ3_S", 256, 110 },
	[GGML_T_IQ2_S] = { "IQ2_S", 256, 82 },
	[GGML_T_IQ4_XS] = { "IQ4_XS", 256, 136 },
	[GGML_T_I8] = { "I8", 1, 1 },
	[GGML_T_I16] = { "I16", 1, 2 },
	[GGML_T_I32] = { "I32", 1, 4 },
	[GGML_T_I64] = { "I64", 1, 8 },
	[GGML_T_F64] = { "F64", 1, 8 },
	[GGML_T_IQ1_M] = { "IQ1_M", 256, 56 },
	[GGML_T_BF16] = { "BF16", 1, 2 },
	[GGML_T_TQ1_0] = { "TQ1_0", 256, 54 },
	[GGML_T_TQ2_0] = { "TQ2_0", 256, 66 },
	[GGML_T_MXFP4] = { "MXFP4", 32, 17 },
	[GGML_T_NVFP4] = { "NVFP4", 64, 36 },
	[GGML_T_Q1_0] = { "Q1_0", 128, 18 },
	[GGML_T_Q2_0] = { "Q2_0", 64, 18 },
};

#define N_TYPES (sizeof(type_info) / sizeof(type_info[0]))

static const char *const vtype_names[GGUF_T_COUNT] = {
	"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL",
	"STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

static const uint8_t vtype_size[GGUF_T_COUNT] = {
	[GGUF_T_UINT8] = 1, [GGUF_T_INT8] = 1, [GGUF_T_UINT16] = 2, [GGUF_T_INT16] = 2,
	[GGUF_T_UINT32] = 4, [GGUF_T_INT32] = 4, [GGUF_T_FLOAT32] = 4, [GGUF_T_BOOL] = 1,
	[GGUF_T_UINT64] = 8, [GGUF_T_INT64] = 8, [GGUF_T_FLOAT64] = 8,
};

const char *gguf_vtype_name(enum gguf_vtype t)
{
	return (unsigned)t < GGUF_T_COUNT ? vtype_names[t] : "unknown";
}

const char *gguf_type_name(uint32_t type)
{
	return type < N_TYPES ? type_info[type].name : NULL;
}

bool gguf_type_block(uint32_t type, uint32_t *blck, uint32_t *bytes)
{
	if (type >= N_TYPES || !type_info[type].name)
		return false;
	*blck = type_info[type].blck;
	*bytes = type_info[type].bytes;
	return true;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int gguf_tensor_nbytes(uint32_t type, const uint64_t *ne, uint32_t n_dims, uint64_t *out,
		       char *err, size_t errlen)
{
	uint32_t blck, bytes;
	uint64_t rows = 1, n = 1;

	if (!gguf_type_block(type, &blck, &bytes)) {
		set_err(err, errlen, "unknown ggml type %" PRIu32, type);
		return -EINVAL;
	}
	if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
		set_err(err, errlen, "%" PRIu32 " dimensions (1 to %u allowed)", n_dims,
			GGUF_MAX_DIMS);
		return -EINVAL;
	}
	for (uint32_t j = 0; j < n_dims; j++) {
		/* ggml counts elements in int64_t */
		if (ne[j] == 0 || ne[j] > INT64_MAX || n > INT64_MAX / ne[j]) {
			set_err(err, errlen, "dimension %" PRIu32 " is %" PRIu64
				": zero, or the element count overflows", j, ne[j]);
			return -EINVAL;
		}
		n *= ne[j];
		if (j > 0)
			rows *= ne[j];
	}
	if (ne[0] % blck) {
		set_err(err, errlen, "first dimension %" PRIu64 " is not a multiple of %s's block "
			"of %" PRIu32 " elements", ne[0], type_info[type].name, blck);
		return -EINVAL;
	}
	/* row bytes <= ne[0] * 4 < 2^65 cannot happen: bytes/blck <= 4 for
	 * every type except Q8_K-like ones, which are <= 2; still check. */
	uint64_t row = ne[0] / blck;
	if (row > UINT64_MAX / bytes || row * bytes > UINT64_MAX / rows) {
		set_err(err, errlen, "tensor byte size overflows");
		return -EINVAL;
	}
	*out = row * bytes * rows;
	return 0;
}

/* ---- strset ---- */

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

typedef const char *(*name_of_fn)(const void *ctx, uint32_t idx);

/* Index of name in the set, or UINT32_MAX. */
static uint32_t strset_find(const struct strset *s, const char *name, uint64_t h,
			    name_of_fn name_of, const void *ctx)
{
	if (!s->cap)
		return UINT32_MAX;
	for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->idx[i] == UINT32_MAX)
			return UINT32_MAX;
		if (s->hash[i] == h && !strcmp(name_of(ctx, s->idx[i]), name))
			return s->idx[i];
	}
}

static int strset_grow(struct strset *s)
{
	size_t cap = s->cap ? s->cap * 2 : 64;
	uint64_t *hash = malloc(cap * sizeof(*hash));
	uint32_t *idx = malloc(cap * sizeof(*idx));

	if (!hash || !idx) {
		free(hash);
		free(idx);
		return -ENOMEM;
	}
	memset(idx, 0xff, cap * sizeof(*idx));
	for (size_t i = 0; i < s->cap; i++) {
		if (s->idx[i] == UINT32_MAX)
			continue;
		size_t j = s->hash[i] & (cap - 1);
		while (idx[j] != UINT32_MAX)
			j = (j + 1) & (cap - 1);
		hash[j] = s->hash[i];
		idx[j] = s->idx[i];
	}
	free(s->hash);
	free(s->idx);
	s->hash = hash;
	s->idx = idx;
	s->cap = cap;
	return 0;
}

/* Caller has checked the name is not in the set. */
static int strset_add(struct strset *s, uint64_t h, uint32_t index)
{
	if ((s->n + 1) * 2 > s->cap && strset_grow(s))
		return -ENOMEM;
	size_t i = h & (s->cap - 1);
	while (s->idx[i] != UINT32_MAX)
		i = (i + 1) & (s->cap - 1);
	s->hash[i] = h;
	s->idx[i] = index;
	s->n++;
	return 0;
}

static void strset_free(struct strset *s)
{
	free(s->hash);
	free(s->idx);
	memset(s, 0, sizeof(*s));
}

static const char *kv_name_of(const void *ctx, uint32_t idx)
{
	return ((const struct gguf *)ctx)->kv[idx].key;
}

static const char *t_name_of(const void *ctx, uint32_t idx)
{
	return ((const struct gguf *)ctx)->t[idx].name;
}

/* ---- bounded reading ---- */

static int rd_fail(struct rd *r, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int rd_fail(struct rd *r, uint64_t off, const char *fmt, ...)
{
	char msg[GGUF_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err(r->err, r->errlen, "%s: offset %" PRIu64 " (0x%" PRIx64 "): %s", r->name, off,
		off, msg);
	return -EINVAL;
}

static uint64_t rd_left(const struct rd *r)
{
	return r->size - r->pos;
}

static int pread_all(struct rd *r, void *dst, size_t n, uint64_t off)
{
	uint8_t *p = dst;

	while (n) {
		ssize_t got = pread(r->fd, p, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return rd_fail(r, off, "read error: %s", strerror(errno));
		if (got == 0)
			return rd_fail(r, off, "file shrank while being read");
		p += got;
		off += (uint64_t)got;
		n -= (size_t)got;
	}
	return 0;
}

/* Read n bytes at the cursor; what names the field for the message. */
static int rd_read(struct rd *r, void *dst, uint64_t n, const char *what)
{
	if (n > rd_left(r))
		return rd_fail(r, r->pos, "truncated: %s needs %" PRIu64 " bytes, %" PRIu64
			       " left before the end of the file at %" PRIu64, what, n,
			       rd_left(r), r->size);
	if (r->mem) {
		memcpy(dst, r->mem + r->pos, n);
	} else if (r->pos >= r->buf_off && r->pos + n <= r->buf_off + r->buf_len) {
		memcpy(dst, r->buf + (r->pos - r->buf_off), n);
	} else if (n >= RD_BUF_SIZE) {
		if (pread_all(r, dst, n, r->pos))
			return -EINVAL;
	} else {
		size_t len = rd_left(r) < RD_BUF_SIZE ? (size_t)rd_left(r) : RD_BUF_SIZE;

		r->buf_len = 0;
		if (pread_all(r, r->buf, len, r->pos))
			return -EINVAL;
		r->buf_off = r->pos;
		r->buf_len = len;
		memcpy(dst, r->buf, n);
	}
	r->pos += n;
	return 0;
}

static int rd_skip(struct rd *r, uint64_t n, const char *what)
{
	if (n > rd_left(r))
		return rd_fail(r, r->pos, "truncated: %s needs %" PRIu64 " bytes, %" PRIu64
			       " left before the end of the file at %" PRIu64, what, n,
			       rd_left(r), r->size);
	r->pos += n;
	return 0;
}

static uint64_t le_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
	uint8_t b[4];

	if (rd_read(r, b, 4, what))
		return -EINVAL;
	*v = (uint32_t)le_get(b, 4);
	return 0;
}

static int rd_u64(struct rd *r, uint64_t *v, const char *what)
{
	uint8_t b[8];

	if (rd_read(r, b, 8, what))
		return -EINVAL;
	*v = le_get(b, 8);
	return 0;
}

/*
 * A GGUF string as a new NUL-terminated buffer; *len_out gets its length.
 * No embedded NUL is allowed when nul_ok is false (keys, names).
 */
static int rd_string(struct rd *r, uint64_t max, bool nul_ok, const char *what, char **out,
		     uint64_t *len_out)
{
	uint64_t at = r->pos, len;
	char *s;

	if (rd_u64(r, &len, what))
		return -EINVAL;
	if (len > max)
		return rd_fail(r, at, "%s is %" PRIu64 " bytes long, more than the limit of %"
			       PRIu64, what, len, max);
	if (len > rd_left(r))
		return rd_fail(r, at, "truncated: %s of %" PRIu64 " bytes runs past the end of the "
			       "file at %" PRIu64, what, len, r->size);
	s = malloc(len + 1);
	if (!s)
		return rd_fail(r, at, "out of memory for %s of %" PRIu64 " bytes", what, len);
	if (rd_read(r, s, len, what)) {
		free(s);
		return -EINVAL;
	}
	s[len] = '\0';
	if (!nul_ok && strlen(s) != len) {
		free(s);
		return rd_fail(r, at, "%s contains a NUL byte", what);
	}
	*out = s;
	if (len_out)
		*len_out = len;
	return 0;
}

/* ---- parsing ---- */

struct parse {
	struct rd r;
	struct gguf *g;
	uint64_t meta_bytes;		/* kept metadata, against GGUF_MAX_META_BYTES */
	size_t kv_cap, t_cap;
};

static int meta_charge(struct parse *p, uint64_t at, uint64_t n)
{
	if (n > GGUF_MAX_META_BYTES - p->meta_bytes)
		return rd_fail(&p->r, at, "metadata exceeds the limit of %u bytes in all",
			       GGUF_MAX_META_BYTES);
	p->meta_bytes += n;
	return 0;
}

static int decode_scalar(struct rd *r, uint64_t at, enum gguf_vtype t, const uint8_t *b,
			 struct gguf_kv *kv)
{
	uint64_t raw = le_get(b, vtype_size[t]);

	switch (t) {
	case GGUF_T_UINT8:
	case GGUF_T_UINT16:
	case GGUF_T_UINT32:
	case GGUF_T_UINT64:
		kv->v.u = raw;
		break;
	case GGUF_T_INT8:
		kv->v.i = (int8_t)raw;
		break;
	case GGUF_T_INT16:
		kv->v.i = (int16_t)raw;
		break;
	case GGUF_T_INT32:
		kv->v.i = (int32_t)raw;
		break;
	case GGUF_T_INT64:
		kv->v.i = (int64_t)raw;
		break;
	case GGUF_T_FLOAT32: {
		uint32_t u32 = (uint32_t)raw;
		float f;

		memcpy(&f, &u32, sizeof(f));
		kv->v.f = f;
		break;
	}
	case GGUF_T_FLOAT64:
		memcpy(&kv->v.f, &raw, sizeof(kv->v.f));
		break;
	case GGUF_T_BOOL:
		if (raw > 1)
			return rd_fail(r, at, "boolean value %" PRIu64 " is neither 0 nor 1", raw);
		kv->v.b = raw;
		break;
	default:
		return rd_fail(r, at, "internal: %s is not a scalar", gguf_vtype_name(t));
	}
	return 0;
}

static int parse_array(struct parse *p, struct gguf_kv *kv)
{
	struct rd *r = &p->r;
	uint64_t at = r->pos;
	uint32_t et;

	if (rd_u32(r, &et, "array element type"))
		return -EINVAL;
	if (et >= GGUF_T_COUNT)
		return rd_fail(r, at, "key '%s': unknown array element type %" PRIu32, kv->key, et);
	if (et == GGUF_T_ARRAY)
		return rd_fail(r, at, "key '%s': arrays of arrays are not supported", kv->key);
	kv->arr_type = et;
	at = r->pos;
	if (rd_u64(r, &kv->arr_n, "array length"))
		return -EINVAL;
	if (kv->arr_n > GGUF_MAX_ARRAY_LEN)
		return rd_fail(r, at, "key '%s': array of %" PRIu64 " elements, more than the "
			       "limit of %u", kv->key, kv->arr_n, GGUF_MAX_ARRAY_LEN);

	if (et == GGUF_T_STRING) {
		/* each element is at least its 8-byte length */
		if (kv->arr_n > rd_left(r) / 8)
			return rd_fail(r, at, "key '%s': %" PRIu64 " strings cannot fit in the %"
				       PRIu64 " bytes left", kv->key, kv->arr_n, rd_left(r));
		for (uint64_t i = 0; i < kv->arr_n; i++) {
			uint64_t sat = r->pos, len;

			if (rd_u64(r, &len, "array string length"))
				return -EINVAL;
			if (len > GGUF_MAX_STRING_LEN)
				return rd_fail(r, sat, "key '%s': string %" PRIu64 " is %" PRIu64
					       " bytes, more than the limit of %u", kv->key, i, len,
					       GGUF_MAX_STRING_LEN);
			if (rd_skip(r, len, "array string"))
				return -EINVAL;
		}
		return 0;
	}

	uint64_t esz = vtype_size[et], bytes = kv->arr_n * esz;	/* <= 2^24 * 8 */

	if (bytes > rd_left(r))
		return rd_fail(r, at, "truncated: key '%s': array of %" PRIu64 " %s needs %" PRIu64
			       " bytes, %" PRIu64 " left", kv->key, kv->arr_n,
			       gguf_vtype_name(et), bytes, rd_left(r));
	if (meta_charge(p, at, bytes))
		return -EINVAL;
	kv->arr = malloc(bytes ? bytes : 1);
	if (!kv->arr)
		return rd_fail(r, at, "out of memory for an array of %" PRIu64 " bytes", bytes);
	if (rd_read(r, kv->arr, bytes, "array"))
		return -EINVAL;
	if (et == GGUF_T_BOOL) {
		for (uint64_t i = 0; i < kv->arr_n; i++)
			if (((uint8_t *)kv->arr)[i] > 1)
				return rd_fail(r, at + 12 + i, "key '%s': boolean element %" PRIu64
					       " is neither 0 nor 1", kv->key, i);
	}
	return 0;
}

static int parse_kv(struct parse *p)
{
	struct rd *r = &p->r;
	struct gguf *g = p->g;
	struct gguf_kv *kv;
	uint64_t at = r->pos, h;
	uint32_t t;
	char *key;
	uint64_t klen;

	if (rd_string(r, GGUF_MAX_KEY_LEN, false, "key", &key, &klen))
		return -EINVAL;
	if (klen == 0) {
		free(key);
		return rd_fail(r, at, "empty key");
	}
	h = str_hash(key);
	if (strset_find(&g->kv_set, key, h, kv_name_of, g) != UINT32_MAX) {
		rd_fail(r, at, "duplicate key '%s'", key);
		free(key);
		return -EINVAL;
	}
	if (meta_charge(p, at, klen + 1)) {
		free(key);
		return -EINVAL;
	}
	if (g->n_kv == p->kv_cap) {
		size_t cap = p->kv_cap ? p->kv_cap * 2 : 32;
		struct gguf_kv *n = realloc(g->kv, cap * sizeof(*n));

		if (!n) {
			free(key);
			return rd_fail(r, at, "out of memory for %zu keys", cap);
		}
		g->kv = n;
		p->kv_cap = cap;
	}
	kv = &g->kv[g->n_kv];
	memset(kv, 0, sizeof(*kv));
	kv->key = key;
	kv->offset = at;
	g->n_kv++;		/* owned by g from here: freed by gguf_close */
	if (strset_add(&g->kv_set, h, (uint32_t)(g->n_kv - 1)))
		return rd_fail(r, at, "out of memory for the key index");

	at = r->pos;
	if (rd_u32(r, &t, "value type"))
		return -EINVAL;
	if (t >= GGUF_T_COUNT)
		return rd_fail(r, at, "key '%s': unknown value type %" PRIu32, key, t);
	kv->type = t;
	at = r->pos;
	if (t == GGUF_T_STRING) {
		if (rd_string(r, GGUF_MAX_STRING_LEN, true, "string value", &kv->str, &kv->str_len))
			return -EINVAL;
		return meta_charge(p, at, kv->str_len);
	}
	if (t == GGUF_T_ARRAY)
		return parse_array(p, kv);

	uint8_t b[8];

	if (rd_read(r, b, vtype_size[t], "value"))
		return -EINVAL;
	return decode_scalar(r, at, t, b, kv);
}

static int parse_tensor(struct parse *p)
{
	struct rd *r = &p->r;
	struct gguf *g = p->g;
	struct gguf_tensor *ti;
	char msg[GGUF_ERR_LEN];
	uint64_t at = r->pos, len, h;
	char *name;

	if (rd_string(r, GGUF_MAX_NAME_LEN, false, "tensor name", &name, &len))
		return -EINVAL;
	if (len == 0) {
		free(name);
		return rd_fail(r, at, "empty tensor name");
	}
	h = str_hash(name);
	if (strset_find(&g->t_set, name, h, t_name_of, g) != UINT32_MAX) {
		rd_fail(r, at, "duplicate tensor '%s'", name);
		free(name);
		return -EINVAL;
	}
	if (g->n_t == p->t_cap) {
		size_t cap = p->t_cap ? p->t_cap * 2 : 64;
		struct gguf_tensor *n = realloc(g->t, cap * sizeof(*n));

		if (!n) {
			free(name);
			return rd_fail(r, at, "out of memory for %zu tensors", cap);
		}
		g->t = n;
		p->t_cap = cap;
	}
	ti = &g->t[g->n_t];
	memset(ti, 0, sizeof(*ti));
	memcpy(ti->name, name, len + 1);
	free(name);

	uint64_t dat = r->pos;

	if (rd_u32(r, &ti->n_dims, "tensor dimension count"))
		return -EINVAL;
	if (ti->n_dims < 1 || ti->n_dims > GGUF_MAX_DIMS)
		return rd_fail(r, dat, "tensor '%s': %" PRIu32 " dimensions (1 to %u allowed)",
			       ti->name, ti->n_dims, GGUF_MAX_DIMS);
	for (uint32_t j = 0; j < GGUF_MAX_DIMS; j++) {
		ti->ne[j] = 1;
		if (j < ti->n_dims && rd_u64(r, &ti->ne[j], "tensor dimension"))
			return -EINVAL;
	}
	dat = r->pos;
	if (rd_u32(r, &ti->type, "tensor type"))
		return -EINVAL;
	if (!gguf_type_name(ti->type))
		return rd_fail(r, dat, "tensor '%s': unknown ggml type %" PRIu32
			       " (a newer llama.cpp format?)", ti->name, ti->type);
	if (gguf_tensor_nbytes(ti->type, ti->ne, ti->n_dims, &ti->size, msg, sizeof(msg)))
		return rd_fail(r, at, "tensor '%s': %s", ti->name, msg);
	dat = r->pos;
	if (rd_u64(r, &ti->offset, "tensor data offset"))
		return -EINVAL;
	if (ti->offset % g->alignment)
		return rd_fail(r, dat, "tensor '%s': data offset %" PRIu64 " is not a multiple of "
			       "the alignment %" PRIu32, ti->name, ti->offset, g->alignment);
	g->n_t++;
	if (strset_add(&g->t_set, h, (uint32_t)(g->n_t - 1)))
		return rd_fail(r, at, "out of memory for the tensor index");
	return 0;
}

static int set_alignment(struct parse *p)
{
	const struct gguf_kv *kv = gguf_find(p->g, "general.alignment");

	p->g->alignment = GGUF_DEFAULT_ALIGNMENT;
	if (!kv)
		return 0;
	if (kv->type != GGUF_T_UINT32)
		return rd_fail(&p->r, kv->offset, "general.alignment is %s, not UINT32",
			       gguf_vtype_name(kv->type));
	if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) || kv->v.u > GGUF_MAX_ALIGNMENT)
		return rd_fail(&p->r, kv->offset, "general.alignment %" PRIu64 " is not a power "
			       "of two up to %u", kv->v.u, GGUF_MAX_ALIGNMENT);
	p->g->alignment = (uint32_t)kv->v.u;
	return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
	const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
	const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every tensor's data lies inside the file, and no two overlap. */
static int check_tensor_data(struct parse *p)
{
	struct gguf *g = p->g;
	uint64_t room = g->file_size - g->data_offset;
	const struct gguf_tensor **v;
	int ret = 0;

	if (!g->n_t)
		return 0;
	v = malloc(g->n_t * sizeof(*v));
	if (!v)
		return rd_fail(&p->r, g->data_offset, "out of memory checking tensor offsets");
	for (size_t i = 0; i < g->n_t; i++) {
		const struct gguf_tensor *t = &g->t[i];

		if (t->offset > room || t->size > room - t->offset) {
			ret = rd_fail(&p->r, g->data_offset, "tensor '%s': data [%" PRIu64 ", +%"
				      PRIu64 ") runs past the end of the file (%" PRIu64 " bytes "
				      "of data)", t->name, t->offset, t->size, room);
			goto out;
		}
		v[i] = t;
	}
	qsort(v, g->n_t, sizeof(*v), cmp_by_offset);
	for (size_t i = 1; i < g->n_t; i++) {
		if (v[i - 1]->offset + v[i - 1]->size > v[i]->offset) {
			ret = rd_fail(&p->r, g->data_offset, "tensors '%s' and '%s' overlap",
				      v[i - 1]->name, v[i]->name);
			goto out;
		}
	}
out:
	free(v);
	return ret;
}

static int parse_all(struct parse *p)
{
	struct rd *r = &p->r;
	struct gguf *g = p->g;
	uint8_t magic[4];
	uint64_t n_t, n_kv, at;

	g->file_size = r->size;
	if (rd_read(r, magic, 4, "magic"))
		return -EINVAL;
	if (memcmp(magic, "GGUF", 4))
		return rd_fail(r, 0, "not a GGUF file (it starts with %02x %02x %02x %02x, not "
			       "'GGUF')", magic[0], magic[1], magic[2], magic[3]);
	if (rd_u32(r, &g->version, "version"))
		return -EINVAL;
	if (g->version == 1)
		return rd_fail(r, 4, "GGUF version 1 is not supported (convert the model with a "
			       "newer llama.cpp)");
	if (g->version == 0x02000000u || g->version == 0x03000000u)
		return rd_fail(r, 4, "big-endian GGUF is not supported");
	if (g->version != 2 && g->version != 3)
		return rd_fail(r, 4, "unknown GGUF version %" PRIu32 " (2 and 3 are supported)",
			       g->version);
	at = r->pos;
	if (rd_u64(r, &n_t, "tensor count"))
		return -EINVAL;
	if (n_t > GGUF_MAX_TENSORS)
		return rd_fail(r, at, "%" PRIu64 " tensors, more than the limit of %u", n_t,
			       GGUF_MAX_TENSORS);
	at = r->pos;
	if (rd_u64(r, &n_kv, "key/value count"))
		return -EINVAL;
	if (n_kv > GGUF_MAX_KV)
		return rd_fail(r, at, "%" PRIu64 " keys, more than the limit of %u", n_kv,
			       GGUF_MAX_KV);
	if (n_kv * MIN_KV_BYTES + n_t * MIN_TENSOR_BYTES > rd_left(r))
		return rd_fail(r, 8, "the header claims %" PRIu64 " tensors and %" PRIu64 " keys, "
			       "which cannot fit in the %" PRIu64 " bytes of the file", n_t, n_kv,
			       r->size);

	for (uint64_t i = 0; i < n_kv; i++)
		if (parse_kv(p))
			return -EINVAL;
	if (set_alignment(p))
		return -EINVAL;
	for (uint64_t i = 0; i < n_t; i++)
		if (parse_tensor(p))
			return -EINVAL;

	/* the data section starts at the next multiple of the alignment */
	uint64_t pad = (g->alignment - r->pos % g->alignment) % g->alignment;

	g->data_offset = r->pos + pad;
	if (n_t && g->data_offset > r->size)
		return rd_fail(r, r->pos, "truncated: the file ends before its tensor data");
	if (!n_t && g->data_offset > r->size)
		g->data_offset = r->size;
	return check_tensor_data(p);
}

static struct gguf *parse(struct rd *r)
{
	struct parse p = { .r = *r };
	struct gguf *g = calloc(1, sizeof(*g));

	if (!g) {
		set_err(r->err, r->errlen, "%s: out of memory", r->name);
		return NULL;
	}
	g->alignment = GGUF_DEFAULT_ALIGNMENT;
	p.g = g;
	if (parse_all(&p)) {
		gguf_close(g);
		return NULL;
	}
	return g;
}

struct gguf *gguf_parse_mem(const void *buf, size_t len, const char *name, char *err,
			    size_t errlen)
{
	static const uint8_t empty[1];
	struct rd r = {
		.mem = buf ? buf : empty,
		.fd = -1,
		.size = buf ? len : 0,
		.name = name ? name : "gguf",
		.err = err,
		.errlen = errlen,
	};

	return parse(&r);
}

struct gguf *gguf_open(const char *path, char *err, size_t errlen)
{
	struct gguf *g = NULL;
	struct stat st;
	struct rd r = {
		.fd = -1,
		.name = path,
		.err = err,
		.errlen = errlen,
	};

	r.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(r.fd, &st)) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	r.size = (uint64_t)st.st_size;
	r.buf = malloc(RD_BUF_SIZE);
	if (!r.buf) {
		set_err(err, errlen, "%s: out of memory", path);
		goto out;
	}
	g = parse(&r);
out:
	free(r.buf);
	close(r.fd);
	return g;
}

void gguf_close(struct gguf *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_kv; i++) {
		free(g->kv[i].key);
		free(g->kv[i].str);
		free(g->kv[i].arr);
	}
	free(g->kv);
	free(g->t);
	strset_free(&g->kv_set);
	strset_free(&g->t_set);
	free(g);
}

/* ---- accessors ---- */

uint32_t gguf_version(const struct gguf *g)
{
	return g->version;
}

uint32_t gguf_alignment(const struct gguf *g)
{
	return g->alignment;
}

uint64_t gguf_data_offset(const struct gguf *g)
{
	return g->data_offset;
}

uint64_t gguf_file_size(const struct gguf *g)
{
	return g->file_size;
}

size_t gguf_kv_count(const struct gguf *g)
{
	return g->n_kv;
}

const struct gguf_kv *gguf_kv_at(const struct gguf *g, size_t i)
{
	return i < g->n_kv ? &g->kv[i] : NULL;
}

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key)
{
	uint32_t i = strset_find(&g->kv_set, key, str_hash(key), kv_name_of, g);

	return i == UINT32_MAX ? NULL : &g->kv[i];
}

size_t gguf_tensor_count(const struct gguf *g)
{
	return g->n_t;
}

const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, size_t i)
{
	return i < g->n_t ? &g->t[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
	uint32_t i = strset_find(&g->t_set, name, str_hash(name), t_name_of, g);

	return i == UINT32_MAX ? NULL : &g->t[i];
}

static bool is_int_type(enum gguf_vtype t)
{
	return t <= GGUF_T_INT32 || t == GGUF_T_UINT64 || t == GGUF_T_INT64;
}

static bool is_signed_type(enum gguf_vtype t)
{
	return t == GGUF_T_INT8 || t == GGUF_T_INT16 || t == GGUF_T_INT32 || t == GGUF_T_INT64;
}

int gguf_get_uint(const struct gguf *g, const char *key, uint64_t *out)
{
	const struct gguf_kv *kv = gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (!is_int_type(kv->type))
		return -EINVAL;
	if (is_signed_type(kv->type)) {
		if (kv->v.i < 0)
			return -EINVAL;
		*out = (uint64_t)kv->v.i;
	} else {
		*out = kv->v.u;
	}
	return 0;
}

int gguf_get_float(const struct gguf *g, const char *key, double *out)
{
	const struct gguf_kv *kv = gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type != GGUF_T_FLOAT32 && kv->type != GGUF_T_FLOAT64)
		return -EINVAL;
	*out = kv->v.f;
	return 0;
}

int gguf_get_bool(const struct gguf *g, const char *key, bool *out)
{
	const struct gguf_kv *kv = gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type != GGUF_T_BOOL)
		return -EINVAL;
	*out = kv->v.b;
	return 0;
}

const char *gguf_get_str(const struct gguf *g, const char *key)
{
	const struct gguf_kv *kv = gguf_find(g, key);

	return kv && kv->type == GGUF_T_STRING ? kv->str : NULL;
}

int gguf_arr_get_uint(const struct gguf_kv *kv, uint64_t i, uint64_t *out)
{
	if (kv->type != GGUF_T_ARRAY || !is_int_type(kv->arr_type) || !kv->arr)
		return -EINVAL;
	if (i >= kv->arr_n)
		return -ENOENT;

	unsigned sz = vtype_size[kv->arr_type];
	uint64_t raw = le_get((const uint8_t *)kv->arr + i * sz, sz);

	if (is_signed_type(kv->arr_type)) {
		/* sign-extend from sz bytes */
		unsigned shift = 64 - 8 * sz;
		int64_t v = (int64_t)(raw << shift) >> shift;

		if (v < 0)
			return -EINVAL;
		raw = (uint64_t)v;
	}
	*out = raw;
	return 0;
}

/* ---- llama-family model summary ---- */

#define SUMMARY_MAX_LAYERS	65536u
#define SUMMARY_MAX_DIM		(1u << 24)

struct arch_key {
	const struct gguf *g;
	const char *arch;
	char *err;
	size_t errlen;
};

static const struct gguf_kv *arch_kv(const struct arch_key *a, const char *suffix, char *key,
				     size_t keylen)
{
	snprintf(key, keylen, "%s.%s", a->arch, suffix);
	return gguf_find(a->g, key);
}

/*
 * <arch>.<suffix> as a count in [lo, hi]: required or optional (then
 * *out keeps its default).  A per-layer array (some models give head counts
 * per layer) yields its largest element, and every element is stored in
 * per_layer[] when given.
 */
static int arch_count(const struct arch_key *a, const char *suffix, bool required, uint64_t lo,
		      uint64_t hi, uint32_t n_layer, uint32_t *per_layer, uint32_t *out)
{
	char key[192];
	const struct gguf_kv *kv = arch_kv(a, suffix, key, sizeof(key));
	uint64_t v = 0;

	if (!kv) {
		if (required) {
			set_err(a->err, a->errlen, "missing metadata key %s", key);
			return -EINVAL;
		}
		return 0;	/* *out and per_layer[] keep the caller's defaults */
	}
	if (kv->type == GGUF_T_ARRAY) {
		if (!per_layer || kv->arr_n != n_layer || !kv->arr)
			goto bad;
		for (uint32_t l = 0; l < n_layer; l++) {
			uint64_t e;

			if (gguf_arr_get_uint(kv, l, &e) || e < lo || e > hi)
				goto bad;
			per_layer[l] = (uint32_t)e;
			v = e > v ? e : v;
		}
	} else {
		if (gguf_get_uint(a->g, key, &v) || v < lo || v > hi)
			goto bad;
		for (uint32_t l = 0; per_layer && l < n_layer; l++)
			per_layer[l] = (uint32_t)v;
	}
	*out = (uint32_t)v;
	return 0;
bad:
	set_err(a->err, a->errlen, "metadata key %s (offset %" PRIu64 "): expected %s in [%"
		PRIu64 ", %" PRIu64 "]", key, kv->offset,
		per_layer ? "an integer or one integer per layer" : "an integer", lo, hi);
	return -EINVAL;
}

/* "blk.N.rest" -> N and rest; false for any other name. */
static bool parse_blk(const char *name, uint32_t *layer, const char **rest)
{
	uint64_t n = 0;
	const char *p;

	if (strncmp(name, "blk.", 4))
		return false;
	p = name + 4;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > UINT32_MAX)
			return false;
	}
	if (*p != '.')
		return false;
	*layer = (uint32_t)n;
	*rest = p + 1;
	return true;
}

/* MoE expert tensors: ffn_<something>_exps, then '.' or the end. */
static bool is_expert_tensor(const char *rest)
{
	const char *e;

	if (strncmp(rest, "ffn_", 4))
		return false;
	for (e = strstr(rest + 4, "_exps"); e; e = strstr(e + 1, "_exps"))
		if (e[5] == '.' || e[5] == '\0')
			return e > rest + 4;
	return false;
}

static bool name_is(const char *name, const char *stem)
{
	size_t n = strlen(stem);

	return !strncmp(name, stem, n) && (name[n] == '.' || name[n] == '\0');
}

static int add_bytes(uint64_t *acc, uint64_t n, char *err, size_t errlen)
{
	if (n > UINT64_MAX - *acc) {
		set_err(err, errlen, "tensor sizes overflow");
		return -EINVAL;
	}
	*acc += n;
	return 0;
}

static int sum_tensors(const struct gguf *g, struct gguf_model_summary *s, char *err,
		       size_t errlen)
{
	const struct gguf_tensor *embd = NULL;
	bool has_output = false;
	int ret = 0;

	for (size_t i = 0; i < g->n_t && !ret; i++) {
		const struct gguf_tensor *t = &g->t[i];
		const char *rest;
		uint32_t l;

		ret = add_bytes(&s->total_bytes, t->size, err, errlen);
		if (ret)
			break;
		if (parse_blk(t->name, &l, &rest) && l < s->n_layer) {
			ret = add_bytes(&s->layer_bytes[l], t->size, err, errlen);
			if (!ret && is_expert_tensor(rest))
				ret = add_bytes(&s->layer_expert_bytes[l], t->size, err, errlen);
		} else if (name_is(t->name, "token_embd")) {
			ret = add_bytes(&s->input_bytes, t->size, err, errlen);
			if (!strcmp(t->name, "token_embd.weight"))
				embd = t;
		} else if (name_is(t->name, "output") || name_is(t->name, "output_norm")) {
			ret = add_bytes(&s->output_bytes, t->size, err, errlen);
			has_output |= !strcmp(t->name, "output.weight");
		} else {
			/* rope_freqs, blk.N beyond block_count (e.g. MTP heads), ... */
			ret = add_bytes(&s->other_bytes, t->size, err, errlen);
		}
	}
	if (ret)
		return ret;
	if (embd && embd->ne[1] <= UINT32_MAX)
		s->n_vocab = (uint32_t)embd->ne[1];
	if (!has_output && embd) {
		/* tied embeddings: llama.cpp duplicates token_embd as the output */
		s->output_tied = true;
		ret = add_bytes(&s->output_bytes, embd->size, err, errlen);
	}
	return ret;
}

int gguf_model_summary(const struct gguf *g, struct gguf_model_summary *s, char *err,
		       size_t errlen)
{
	struct arch_key a = { .g = g, .err = err, .errlen = errlen };
	uint32_t *kv_heads = NULL;
	const char *arch;
	int ret = -EINVAL;

	memset(s, 0, sizeof(*s));
	arch = gguf_get_str(g, "general.architecture");
	if (!arch || !*arch || strlen(arch) >= sizeof(s->arch) ||
	    strspn(arch, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(arch)) {
		set_err(err, errlen, "general.architecture is missing or not a short lowercase "
			"name");
		return -EINVAL;
	}
	snprintf(s->arch, sizeof(s->arch), "%s", arch);
	a.arch = s->arch;

	if (arch_count(&a, "block_count", true, 1, SUMMARY_MAX_LAYERS, 0, NULL, &s->n_layer) ||
	    arch_count(&a, "embedding_length", true, 1, SUMMARY_MAX_DIM, 0, NULL, &s->n_embd))
		goto fail;
	s->layer_bytes = calloc(s->n_layer, sizeof(uint64_t));
	s->layer_expert_bytes = calloc(s->n_layer, sizeof(uint64_t));
	s->layer_kv_bytes = calloc(s->n_layer, sizeof(uint64_t));
	kv_heads = calloc(s->n_layer, sizeof(uint32_t));
	if (!s->layer_bytes || !s->layer_expert_bytes || !s->layer_kv_bytes || !kv_heads) {
		set_err(err, errlen, "out of memory for %" PRIu32 " layers", s->n_layer);
		goto fail;
	}
	/* kv_heads[] first gets the head counts: no GQA unless stated */
	if (arch_count(&a, "attention.head_count", true, 0, SUMMARY_MAX_DIM, s->n_layer,
		       kv_heads, &s->n_head))
		goto fail;
	if (!s->n_head) {
		set_err(err, errlen, "%s.attention.head_count is 0", s->arch);
		goto fail;
	}
	s->n_head_kv = s->n_head;
	if (arch_count(&a, "attention.head_count_kv", false, 0, SUMMARY_MAX_DIM, s->n_layer,
		       kv_heads, &s->n_head_kv) ||
	    arch_count(&a, "context_length", false, 0, UINT32_MAX, 0, NULL, &s->n_ctx_train) ||
	    arch_count(&a, "expert_count", false, 0, 1u << 16, 0, NULL, &s->n_expert) ||
	    arch_count(&a, "expert_used_count", false, 0, 1u << 16, 0, NULL, &s->n_expert_used))
		goto fail;
	if (s->n_expert_used > s->n_expert) {
		set_err(err, errlen, "%s.expert_used_count %" PRIu32 " exceeds expert_count %"
			PRIu32, s->arch, s->n_expert_used, s->n_expert);
		goto fail;
	}
	/* head dims default to n_embd / n_head, as in llama.cpp */
	s->head_dim_k = s->n_embd / s->n_head;
	if (arch_count(&a, "attention.key_length", false, 1, SUMMARY_MAX_DIM, 0, NULL,
		       &s->head_dim_k))
		goto fail;
	s->head_dim_v = s->n_embd / s->n_head;
	if (arch_count(&a, "attention.value_length", false, 1, SUMMARY_MAX_DIM, 0, NULL,
		       &s->head_dim_v))
		goto fail;
	if (!s->head_dim_k || !s->head_dim_v) {
		set_err(err, errlen, "head dimension is 0 (n_embd %" PRIu32 " < n_head %" PRIu32
			")", s->n_embd, s->n_head);
		goto fail;
	}
	/* f16 K and V: 2 bytes per element; < 2^24 * 2^24 * 2 * 2, no overflow */
	for (uint32_t l = 0; l < s->n_layer; l++)
		s->layer_kv_bytes[l] = ((uint64_t)s->head_dim_k + s->head_dim_v) * kv_heads[l] * 2;
	ret = sum_tensors(g, s, err, errlen);
	if (ret)
		goto fail;
	free(kv_heads);
	return 0;
fail:
	free(kv_heads);
	gguf_model_summary_free(s);
	return -EINVAL;
}

void gguf_model_summary_free(struct gguf_model_summary *s)
{
	free(s->layer_bytes);
	free(s->layer_expert_bytes);
	free(s->layer_kv_bytes);
	s->layer_bytes = s->layer_expert_bytes = s->layer_kv_bytes = NULL;
}
