/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu-mkgguf: write a llama-architecture GGUF model with random weights,
 * for tests (a few MB) and GPU benchmarks (a few GiB).  No Debian or npm
 * package ships a model, and random weights exercise llama.cpp exactly like
 * real ones of the same shape.
 *
 * What llama.cpp needs (shared/RIG.md): integer metadata typed UINT32, the
 * head dimension equal to rope.dimension_count, and a vocabulary; ours is
 * SentencePiece-style ("llama" tokenizer) with byte fallback: <unk>, <s>,
 * </s>, the 256 byte tokens <0x00>..<0xFF>, and the 95 printable ASCII
 * characters (space as U+2581) = 354 tokens, padded with multi-character
 * tokens when --vocab asks for more.
 *
 * The file is written to a temporary name next to the output and renamed
 * only when complete, so an interrupted run leaves nothing half-written.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "pegpu/gguf.h"

#define ALIGN		32u
#define BASE_VOCAB	354u
#define MAX_DIM		(1u << 20)
#define MAX_LAYERS	4096u
#define MAX_FILE	(1ull << 40)	/* 1 TiB: surely a typo beyond */
#define CHUNK		(1u << 20)

struct opts {
	const char *out;
	uint32_t layers, embd, heads, kv_heads, ff, ctx, vocab, experts, experts_used;
	uint32_t type;		/* GGML_T_F16 or GGML_T_F32 */
	uint64_t seed;
	const char *name;
	bool quiet;
};

struct tensor {
	char name[GGUF_MAX_NAME_LEN + 1];
	uint32_t type;
	uint32_t n_dims;
	uint64_t ne[3];
	float scale;		/* uniform in [-scale, scale]; 0: all ones */
	uint64_t size, offset;
};

struct buf {
	uint8_t *p;
	size_t len, cap;
	uint64_t n_kv;		/* key/values put */
	bool oom;
};

static const char *prog = "pegpu-mkgguf";
static char tmp_path[4096];	/* unlinked on a fatal signal */

static void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void on_signal(int sig)
{
	if (tmp_path[0])
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- byte buffer for the header ---- */

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);

		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_le(struct buf *b, uint64_t v, unsigned n)
{
	uint8_t x[8];

	for (unsigned i = 0; i < n; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	put(b, x, n);
}

static void put_str(struct buf *b, const char *s)
{
	put_le(b, strlen(s), 8);
	put(b, s, strlen(s));
}

static void put_f32(struct buf *b, float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	put_le(b, u, 4);
}

static void kv_u32(struct buf *b, const char *k, uint32_t v)
{
	b->n_kv++;
	put_str(b, k);
	put_le(b, GGUF_T_UINT32, 4);
	put_le(b, v, 4);
}

static void kv_f32(struct buf *b, const char *k, float v)
{
	b->n_kv++;
	put_str(b, k);
	put_le(b, GGUF_T_FLOAT32, 4);
	put_f32(b, v);
}

static void kv_str(struct buf *b, const char *k, const char *v)
{
	b->n_kv++;
	put_str(b, k);
	put_le(b, GGUF_T_STRING, 4);
	put_str(b, v);
}

static void kv_bool(struct buf *b, const char *k, bool v)
{
	b->n_kv++;
	put_str(b, k);
	put_le(b, GGUF_T_BOOL, 4);
	put_le(b, v, 1);
}

/* ---- vocabulary ---- */

enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_BYTE = 6 };

/* Token i's text into s (>= 16 bytes); returns its type, sets *score. */
static int token(uint32_t i, char *s, float *score)
{
	static const char *const special[3] = { "<unk>", "<s>", "</s>" };

	*score = 0;
	if (i < 3) {
		strcpy(s, special[i]);
		return i == 0 ? TOK_UNKNOWN : TOK_CONTROL;
	}
	if (i < 3 + 256) {
		sprintf(s, "<0x%02X>", i - 3);
		return TOK_BYTE;
	}
	if (i < BASE_VOCAB) {
		unsigned c = 0x20 + (i - 259);	/* printable ASCII */

		if (c == ' ')
			strcpy(s, "\xe2\x96\x81");	/* U+2581, SentencePiece's space */
		else
			sprintf(s, "%c", c);
		*score = -(float)(i - 259);
		return TOK_NORMAL;
	}
	/* padding: unique strings of 2+ printable characters (no space) */
	uint32_t k = i - BASE_VOCAB;
	size_t n = 0;

	do {
		s[n++] = (char)('!' + k % 94);
		k /= 94;
	} while (k && n < 8);
	if (n == 1)
		s[n++] = '!';
	s[n] = '\0';
	*score = -1000.0f - (float)(i - BASE_VOCAB);
	return TOK_NORMAL;
}

static void put_vocab(struct buf *b, uint32_t n)
{
	char s[16];
	float score;

	kv_str(b, "tokenizer.ggml.model", "llama");
	b->n_kv += 3;		/* the three arrays */
	put_str(b, "tokenizer.ggml.tokens");
	put_le(b, GGUF_T_ARRAY, 4);
	put_le(b, GGUF_T_STRING, 4);
	put_le(b, n, 8);
	for (uint32_t i = 0; i < n; i++) {
		token(i, s, &score);
		put_str(b, s);
	}
	put_str(b, "tokenizer.ggml.scores");
	put_le(b, GGUF_T_ARRAY, 4);
	put_le(b, GGUF_T_FLOAT32, 4);
	put_le(b, n, 8);
	for (uint32_t i = 0; i < n; i++) {
		token(i, s, &score);
		put_f32(b, score);
	}
	put_str(b, "tokenizer.ggml.token_type");
	put_le(b, GGUF_T_ARRAY, 4);
	put_le(b, GGUF_T_INT32, 4);
	put_le(b, n, 8);
	for (uint32_t i = 0; i < n; i++)
		put_le(b, (uint32_t)token(i, s, &score), 4);
	kv_u32(b, "tokenizer.ggml.unknown_token_id", 0);
	kv_u32(b, "tokenizer.ggml.bos_token_id", 1);
	kv_u32(b, "tokenizer.ggml.eos_token_id", 2);
	kv_bool(b, "tokenizer.ggml.add_bos_token", true);
	kv_bool(b, "tokenizer.ggml.add_eos_token", false);
}

/* ---- tensors ---- */

static int add_tensor(struct tensor *t, size_t *n, uint32_t type, float scale, uint32_t n_dims,
		      uint64_t a, uint64_t b, uint64_t c, const char *fmt, ...)
	__attribute__((format(printf, 9, 10)));

static int add_tensor(struct tensor *t, size_t *n, uint32_t type, float scale, uint32_t n_dims,
		      uint64_t a, uint64_t b, uint64_t c, const char *fmt, ...)
{
	struct tensor *x = &t[(*n)++];
	char err[GGUF_ERR_LEN];
	va_list ap;

	memset(x, 0, sizeof(*x));
	va_start(ap, fmt);
	vsnprintf(x->name, sizeof(x->name), fmt, ap);
	va_end(ap);
	x->type = type;
	x->scale = scale;
	x->n_dims = n_dims;
	x->ne[0] = a;
	x->ne[1] = b;
	x->ne[2] = c;
	uint64_t ne[4] = { a, b, c, 1 };

	if (gguf_tensor_nbytes(type, ne, n_dims, &x->size, err, sizeof(err))) {
		die_msg("tensor %s: %s", x->name, err);
		return -1;
	}
	return 0;
}

/* Tensors in llama.cpp's order; returns the count or -1. */
static int list_tensors(const struct opts *o, struct tensor *t)
{
	uint32_t hd = o->embd / o->heads, q = hd * o->heads, kvd = hd * o->kv_heads;
	uint32_t w = o->type;
	float se = 1.0f / sqrtf((float)o->embd), sf = 1.0f / sqrtf((float)o->ff);
	size_t n = 0;
	int r = 0;

	r |= add_tensor(t, &n, w, 1.0f, 2, o->embd, o->vocab, 1, "token_embd.weight");
	r |= add_tensor(t, &n, GGML_T_F32, 0, 1, o->embd, 1, 1, "output_norm.weight");
	r |= add_tensor(t, &n, w, se, 2, o->embd, o->vocab, 1, "output.weight");
	for (uint32_t l = 0; l < o->layers && !r; l++) {
		r |= add_tensor(t, &n, GGML_T_F32, 0, 1, o->embd, 1, 1, "blk.%u.attn_norm.weight", l);
		r |= add_tensor(t, &n, w, se, 2, o->embd, q, 1, "blk.%u.attn_q.weight", l);
		r |= add_tensor(t, &n, w, se, 2, o->embd, kvd, 1, "blk.%u.attn_k.weight", l);
		r |= add_tensor(t, &n, w, se, 2, o->embd, kvd, 1, "blk.%u.attn_v.weight", l);
		r |= add_tensor(t, &n, w, 1.0f / sqrtf((float)q), 2, q, o->embd, 1,
				"blk.%u.attn_output.weight", l);
		r |= add_tensor(t, &n, GGML_T_F32, 0, 1, o->embd, 1, 1, "blk.%u.ffn_norm.weight", l);
		if (o->experts) {
			r |= add_tensor(t, &n, GGML_T_F32, se, 2, o->embd, o->experts, 1,
					"blk.%u.ffn_gate_inp.weight", l);
			r |= add_tensor(t, &n, w, se, 3, o->embd, o->ff, o->experts,
					"blk.%u.ffn_gate_exps.weight", l);
			r |= add_tensor(t, &n, w, sf, 3, o->ff, o->embd, o->experts,
					"blk.%u.ffn_down_exps.weight", l);
			r |= add_tensor(t, &n, w, se, 3, o->embd, o->ff, o->experts,
					"blk.%u.ffn_up_exps.weight", l);
		} else {
			r |= add_tensor(t, &n, w, se, 2, o->embd, o->ff, 1, "blk.%u.ffn_gate.weight", l);
			r |= add_tensor(t, &n, w, sf, 2, o->ff, o->embd, 1, "blk.%u.ffn_down.weight", l);
			r |= add_tensor(t, &n, w, se, 2, o->embd, o->ff, 1, "blk.%u.ffn_up.weight", l);
		}
	}
	return r ? -1 : (int)n;
}

static void put_header(struct buf *b, const struct opts *o, const struct tensor *t, size_t nt)
{
	struct buf kv = { 0 };

	kv_str(&kv, "general.architecture", "llama");
	kv_str(&kv, "general.name", o->name);
	kv_u32(&kv, "general.file_type", o->type == GGML_T_F16 ? 1 : 0);
	kv_u32(&kv, "general.alignment", ALIGN);
	kv_u32(&kv, "llama.block_count", o->layers);
	kv_u32(&kv, "llama.context_length", o->ctx);
	kv_u32(&kv, "llama.embedding_length", o->embd);
	kv_u32(&kv, "llama.feed_forward_length", o->ff);
	kv_u32(&kv, "llama.attention.head_count", o->heads);
	kv_u32(&kv, "llama.attention.head_count_kv", o->kv_heads);
	kv_u32(&kv, "llama.rope.dimension_count", o->embd / o->heads);
	kv_f32(&kv, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	kv_f32(&kv, "llama.rope.freq_base", 10000.0f);
	if (o->experts) {
		kv_u32(&kv, "llama.expert_count", o->experts);
		kv_u32(&kv, "llama.expert_used_count", o->experts_used);
	}
	put_vocab(&kv, o->vocab);

	put(b, "GGUF", 4);
	put_le(b, 3, 4);
	put_le(b, nt, 8);
	put_le(b, kv.n_kv, 8);
	put(b, kv.p, kv.len);
	b->oom |= kv.oom;
	free(kv.p);
	for (size_t i = 0; i < nt; i++) {
		put_str(b, t[i].name);
		put_le(b, t[i].n_dims, 4);
		for (uint32_t j = 0; j < t[i].n_dims; j++)
			put_le(b, t[i].ne[j], 8);
		put_le(b, t[i].type, 4);
		put_le(b, t[i].offset, 8);
	}
	while (b->len % ALIGN)
		put_le(b, 0, 1);
}

/* ---- random data ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* IEEE half from a float in the normal range or small (flushed to 0). */
static uint16_t to_half(float f)
{
	uint32_t u, sign, man;
	int32_t exp;

	memcpy(&u, &f, 4);
	sign = (u >> 16) & 0x8000;
	exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
	man = u & 0x7fffff;
	if (exp <= 0)
		return (uint16_t)sign;
	if (exp >= 31)
		return (uint16_t)(sign | 0x7bff);
	/* round to nearest, ties away: good enough for random weights */
	man += 0x1000;
	if (man & 0x800000) {
		man = 0;
		if (++exp >= 31)
			return (uint16_t)(sign | 0x7bff);
	}
	return (uint16_t)(sign | (uint32_t)exp << 10 | man >> 13);
}

struct progress {
	uint64_t total, done;
	time_t last;
	int last_pct;
	bool tty, on;
};

static void progress(struct progress *p, bool final)
{
	time_t now;
	int pct;

	if (!p->on)
		return;
	now = time(NULL);
	pct = p->total ? (int)(p->done * 100 / p->total) : 100;
	if (!final && (p->tty ? now == p->last : pct < p->last_pct + 10))
		return;
	if (final && !p->tty && pct == p->last_pct)
		return;		/* the last line already said 100% */
	p->last = now;
	p->last_pct = pct;
	fprintf(stderr, "%s%s: %.2f / %.2f GiB (%d%%)%s", p->tty ? "\r" : "", prog,
		(double)p->done / (1 << 30), (double)p->total / (1 << 30), pct,
		p->tty && !final ? "" : "\n");
	fflush(stderr);
}

static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One tensor's data: values from a per-tensor table, 4 per random draw. */
static int write_tensor(int fd, const struct tensor *t, uint64_t *rng, uint8_t *chunk,
			float *tab, struct progress *pg)
{
	uint32_t esz = t->type == GGML_T_F16 ? 2 : 4;
	uint64_t left = t->size;

	for (uint32_t i = 0; i < 65536; i++)
		tab[i] = t->scale == 0 ? 1.0f : ((float)i / 32767.5f - 1.0f) * t->scale;
	while (left) {
		size_t n = left < CHUNK ? (size_t)left : CHUNK, k = 0;
		uint64_t r = 0;

		for (size_t off = 0; off < n; off += esz, k++) {
			if (!(k & 3))
				r = splitmix64(rng);
			float v = tab[(r >> (16 * (k & 3))) & 0xffff];

			if (esz == 2) {
				uint16_t h = to_half(v);

				memcpy(chunk + off, &h, 2);
			} else {
				memcpy(chunk + off, &v, 4);
			}
		}
		int ret = write_all(fd, chunk, n);

		if (ret)
			return ret;
		left -= n;
		pg->done += n;
		progress(pg, false);
	}
	return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: %s -o OUT.gguf [options]\n"
"\n"
"Write a llama-architecture GGUF model with random weights (for tests and\n"
"benchmarks: it loads and runs in llama.cpp, its output is gibberish).\n"
"\n"
"  -o, --output PATH     the file to write (replaced if it exists)\n"
"      --layers N        transformer blocks (default 4)\n"
"      --embd N          embedding width (default 128)\n"
"      --heads N         attention heads; must divide --embd (default 4)\n"
"      --kv-heads N      key/value heads; must divide --heads (default: --heads)\n"
"      --ff N            feed-forward width (default 3 x --embd)\n"
"      --ctx N           training context length stored in the file (default 2048)\n"
"      --vocab N         vocabulary size, at least %u: the byte-fallback\n"
"                        vocabulary, padded with filler tokens (default %u)\n"
"      --experts N       make it a mixture of experts with N experts (default 0)\n"
"      --experts-used K  experts used per token (default 2)\n"
"      --type f16|f32    weight type (default f16)\n"
"      --seed N          random seed: the same seed gives the same file (default 1)\n"
"      --name NAME       general.name (default pegpu-random)\n"
"  -q, --quiet           no progress output\n"
"\n"
"Example, a ~16 MB test model:\n"
"  %s -o tiny.gguf --layers 48 --embd 128\n",
		prog, BASE_VOCAB, BASE_VOCAB, prog);
}

static int parse_u32(const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
		die_msg("%s: '%s' is not a number from %" PRIu32 " to %" PRIu32, opt, s, lo, hi);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_LAYERS = 256, O_EMBD, O_HEADS, O_KVH, O_FF, O_CTX, O_VOCAB, O_EXP, O_EXPU,
	       O_TYPE, O_SEED, O_NAME };
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "layers", required_argument, NULL, O_LAYERS },
		{ "embd", required_argument, NULL, O_EMBD },
		{ "heads", required_argument, NULL, O_HEADS },
		{ "kv-heads", required_argument, NULL, O_KVH },
		{ "ff", required_argument, NULL, O_FF },
		{ "ctx", required_argument, NULL, O_CTX },
		{ "vocab", required_argument, NULL, O_VOCAB },
		{ "experts", required_argument, NULL, O_EXP },
		{ "experts-used", required_argument, NULL, O_EXPU },
		{ "type", required_argument, NULL, O_TYPE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "name", required_argument, NULL, O_NAME },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool kvh = false, ff = false;
	int c;

	*o = (struct opts){ .layers = 4, .embd = 128, .heads = 4, .ctx = 2048,
			    .vocab = BASE_VOCAB, .experts_used = 2, .type = GGML_T_F16,
			    .seed = 1, .name = "pegpu-random" };
	while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 'o': o->out = optarg; break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); exit(PEGPU_EXIT_OK);
		case O_LAYERS: r = parse_u32("--layers", optarg, 1, MAX_LAYERS, &o->layers); break;
		case O_EMBD: r = parse_u32("--embd", optarg, 1, MAX_DIM, &o->embd); break;
		case O_HEADS: r = parse_u32("--heads", optarg, 1, MAX_DIM, &o->heads); break;
		case O_KVH: r = parse_u32("--kv-heads", optarg, 1, MAX_DIM, &o->kv_heads); kvh = true; break;
		case O_FF: r = parse_u32("--ff", optarg, 1, 4 * MAX_DIM, &o->ff); ff = true; break;
		case O_CTX: r = parse_u32("--ctx", optarg, 1, UINT32_MAX, &o->ctx); break;
		case O_VOCAB: r = parse_u32("--vocab", optarg, BASE_VOCAB, 1u << 22, &o->vocab); break;
		case O_EXP: r = parse_u32("--experts", optarg, 0, 256, &o->experts); break;
		case O_EXPU: r = parse_u32("--experts-used", optarg, 1, 256, &o->experts_used); break;
		case O_SEED: {
			char *end;

			errno = 0;
			o->seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end) {
				die_msg("--seed: '%s' is not a number", optarg);
				r = -1;
			}
			break;
		}
		case O_TYPE:
			if (!strcmp(optarg, "f16")) {
				o->type = GGML_T_F16;
			} else if (!strcmp(optarg, "f32")) {
				o->type = GGML_T_F32;
			} else {
				die_msg("--type: '%s' is not f16 or f32", optarg);
				r = -1;
			}
			break;
		case O_NAME: o->name = optarg; break;
		default:
			fprintf(stderr, "Try '%s --help'.\n", prog);
			return -1;
		}
		if (r)
			return -1;
	}
	if (optind < argc) {
		die_msg("unexpected argument '%s' (the output file goes after -o)", argv[optind]);
		return -1;
	}
	if (!o->out) {
		die_msg("no output file: give -o OUT.gguf (see --help)");
		return -1;
	}
	if (!kvh)
		o->kv_heads = o->heads;
	if (!ff)
		o->ff = 3 * o->embd;
	if (o->embd % o->heads) {
		die_msg("--heads %" PRIu32 " must divide --embd %" PRIu32, o->heads, o->embd);
		return -1;
	}
	if (o->heads % o->kv_heads) {
		die_msg("--kv-heads %" PRIu32 " must divide --heads %" PRIu32, o->kv_heads, o->heads);
		return -1;
	}
	if ((o->embd / o->heads) % 2) {
		die_msg("the head dimension (--embd / --heads = %" PRIu32 ") must be even for RoPE",
			o->embd / o->heads);
		return -1;
	}
	if (o->experts && o->experts_used > o->experts) {
		die_msg("--experts-used %" PRIu32 " exceeds --experts %" PRIu32, o->experts_used,
			o->experts);
		return -1;
	}
	return 0;
}

static int check_space(const char *dir, uint64_t need)
{
	struct statvfs sv;

	if (statvfs(dir, &sv))
		return 0;	/* cannot tell: let write() report it */
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;

	if (need > avail) {
		die_msg("the model needs %" PRIu64 " bytes but %s has only %" PRIu64 " free", need,
			dir, avail);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct tensor *t = NULL;
	struct buf hdr = { 0 };
	struct progress pg = { 0 };
	uint8_t *chunk = NULL;
	float *tab = NULL;
	uint64_t off = 0, rng;
	char dir[4096];
	int fd = -1, nt, ret = PEGPU_EXIT_FAIL;

	if (parse_opts(argc, argv, &o))
		return PEGPU_EXIT_USAGE;
	t = calloc((size_t)o.layers * 10 + 3, sizeof(*t));
	chunk = malloc(CHUNK);
	tab = malloc(65536 * sizeof(*tab));
	if (!t || !chunk || !tab) {
		die_msg("out of memory");
		goto out;
	}
	nt = list_tensors(&o, t);
	if (nt < 0)
		goto out;
	for (int i = 0; i < nt; i++) {
		t[i].offset = off;
		if (t[i].size > MAX_FILE - off) {
			die_msg("the model would exceed %llu bytes: check the sizes", MAX_FILE);
			goto out;
		}
		off += (t[i].size + ALIGN - 1) / ALIGN * ALIGN;
		if (off > MAX_FILE) {
			die_msg("the model would exceed %llu bytes: check the sizes", MAX_FILE);
			goto out;
		}
	}
	put_header(&hdr, &o, t, (size_t)nt);
	if (hdr.oom) {
		die_msg("out of memory");
		goto out;
	}

	snprintf(dir, sizeof(dir), "%s", o.out);
	char *slash = strrchr(dir, '/');

	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	else
		strcpy(dir, ".");
	if (check_space(dir, hdr.len + off))
		goto out;

	if (snprintf(tmp_path, sizeof(tmp_path), "%s.tmp.XXXXXX", o.out) >=
	    (int)sizeof(tmp_path)) {
		tmp_path[0] = '\0';
		die_msg("output path too long");
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	fd = mkstemp(tmp_path);
	if (fd < 0) {
		die_msg("cannot create a file next to %s: %s", o.out, strerror(errno));
		tmp_path[0] = '\0';
		goto out;
	}
	fchmod(fd, 0644);

	pg.total = hdr.len + off;
	pg.on = !o.quiet && pg.total >= (64u << 20);
	pg.tty = isatty(2);
	pg.last_pct = -10;
	rng = o.seed;
	int err = write_all(fd, hdr.p, hdr.len);

	pg.done = hdr.len;
	for (int i = 0; i < nt && !err; i++) {
		static const uint8_t zero[ALIGN];
		uint64_t pad = (ALIGN - t[i].size % ALIGN) % ALIGN;

		err = write_tensor(fd, &t[i], &rng, chunk, tab, &pg);
		if (!err)
			err = write_all(fd, zero, pad);
		pg.done += pad;
	}
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	fd = -1;
	if (err) {
		die_msg("writing %s: %s", tmp_path, strerror(-err));
		goto out;
	}
	if (rename(tmp_path, o.out)) {
		die_msg("renaming %s to %s: %s", tmp_path, o.out, strerror(errno));
		goto out;
	}
	tmp_path[0] = '\0';
	progress(&pg, true);
	if (!o.quiet)
		fprintf(stderr, "%s: wrote %s: %" PRIu32 " layers, n_embd %" PRIu32 ", %" PRIu32
			" heads (%" PRIu32 " KV), n_ff %" PRIu32 ", vocab %" PRIu32 "%s, %" PRIu64
			" bytes\n", prog, o.out, o.layers, o.embd, o.heads, o.kv_heads, o.ff, o.vocab,
			o.experts ? ", MoE" : "", pg.total);
	ret = PEGPU_EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	if (tmp_path[0])
		unlink(tmp_path);
	free(hdr.p);
	free(t);
	free(chunk);
	free(tab);
	return ret;
}
