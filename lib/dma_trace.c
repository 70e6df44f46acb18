/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DMA trace reader and writer (include/pegpu/dma_trace.h, docs/dma-traces.md).
 *
 * Traces come from guests (pegpu_dma.ko's debugfs ring) and from files
 * people pass around, so every byte is treated as hostile: records are
 * decoded field by field from little-endian bytes, every field is range
 * checked, the sequencing rules are enforced, and nothing is trusted to
 * size an allocation except the input length itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pegpu/dma_trace.h"

#define HDR_SIZE	((uint32_t)sizeof(struct pegpu_trace_file_hdr))
#define REC_SIZE	((uint32_t)sizeof(struct pegpu_trace_rec))
/* Bounds on what a header may claim, so a reader never trusts a wild size. */
#define HDR_SIZE_MAX	4096u
#define REC_SIZE_MAX	4096u
#define LINE_MAX_LEN	512u

static uint16_t ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t ld64(const uint8_t *p)
{
	return (uint64_t)ld32(p) | ((uint64_t)ld32(p + 4) << 32);
}

static void st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void st32(uint8_t *p, uint32_t v)
{
	st16(p, (uint16_t)v);
	st16(p + 2, (uint16_t)(v >> 16));
}

static void st64(uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)v);
	st32(p + 4, (uint32_t)(v >> 32));
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- */
/* names                                                             */
/* ---------------------------------------------------------------- */

const char *pegpu_trace_type_name(unsigned int type)
{
	switch (type) {
	case PEGPU_TR_MAP:	return "map";
	case PEGPU_TR_SEG:	return "seg";
	case PEGPU_TR_UNMAP:	return "unmap";
	case PEGPU_TR_DROP:	return "drop";
	default:		return NULL;
	}
}

const char *pegpu_trace_kind_name(unsigned int kind)
{
	switch (kind) {
	case PEGPU_TK_SINGLE:	return "single";
	case PEGPU_TK_SG:	return "sg";
	case PEGPU_TK_COHERENT:	return "coherent";
	default:		return NULL;
	}
}

const char *pegpu_trace_dir_name(unsigned int dir)
{
	switch (dir) {
	case PEGPU_DIR_TO_DEVICE:	return "to";
	case PEGPU_DIR_FROM_DEVICE:	return "from";
	case PEGPU_DIR_BIDIRECTIONAL:	return "bidi";
	default:			return NULL;
	}
}

const char *pegpu_trace_strerror(int err)
{
	switch (err) {
	case 0:				return "ok";
	case PEGPU_TRACE_E_FORMAT:	return "malformed trace";
	case PEGPU_TRACE_E_VERSION:	return "unsupported trace version";
	case PEGPU_TRACE_E_NOMEM:	return "out of memory";
	case PEGPU_TRACE_E_IO:		return "I/O error";
	default:			return "unknown error";
	}
}

/* ---------------------------------------------------------------- */
/* events                                                            */
/* ---------------------------------------------------------------- */

bool pegpu_trace_event_valid(const struct pegpu_trace_event *ev)
{
	switch (ev->type) {
	case PEGPU_TR_MAP:
	case PEGPU_TR_SEG:
		if (!pegpu_trace_kind_name(ev->kind) || !pegpu_trace_dir_name(ev->dir))
			return false;
		if (ev->flags & ~PEGPU_TF_MASK)
			return false;
		if (ev->type == PEGPU_TR_SEG &&
		    (ev->kind != PEGPU_TK_SG || (ev->flags & PEGPU_TF_FAILED)))
			return false;
		/* only a scatterlist has further segments */
		if ((ev->flags & PEGPU_TF_MORE) && ev->kind != PEGPU_TK_SG)
			return false;
		if (!ev->len || ev->len > UINT32_MAX || ev->len - 1 > UINT64_MAX - ev->addr)
			return false;
		return true;
	case PEGPU_TR_UNMAP:
		return pegpu_trace_kind_name(ev->kind) && pegpu_trace_dir_name(ev->dir) &&
		       !ev->flags && ev->len <= UINT32_MAX;
	case PEGPU_TR_DROP:
		/* id 0 as the format says: the text form has no field for it */
		return !ev->id && !ev->kind && !ev->dir && !ev->flags && !ev->len && ev->addr;
	default:
		return false;
	}
}

void pegpu_trace_encode(const struct pegpu_trace_event *ev, struct pegpu_trace_rec *rec)
{
	uint8_t *p = (uint8_t *)rec;

	st64(p + offsetof(struct pegpu_trace_rec, ts_ns), ev->ts_ns);
	st64(p + offsetof(struct pegpu_trace_rec, id), ev->id);
	st64(p + offsetof(struct pegpu_trace_rec, addr), ev->addr);
	st32(p + offsetof(struct pegpu_trace_rec, len),
	     ev->len > UINT32_MAX ? UINT32_MAX : (uint32_t)ev->len);
	p[offsetof(struct pegpu_trace_rec, type)] = ev->type;
	p[offsetof(struct pegpu_trace_rec, kind)] = ev->kind;
	p[offsetof(struct pegpu_trace_rec, dir)] = ev->dir;
	p[offsetof(struct pegpu_trace_rec, flags)] = ev->flags;
}

int pegpu_trace_decode(const void *rec32, struct pegpu_trace_event *ev)
{
	const uint8_t *p = rec32;

	memset(ev, 0, sizeof(*ev));
	ev->ts_ns = ld64(p + offsetof(struct pegpu_trace_rec, ts_ns));
	ev->id = ld64(p + offsetof(struct pegpu_trace_rec, id));
	ev->addr = ld64(p + offsetof(struct pegpu_trace_rec, addr));
	ev->len = ld32(p + offsetof(struct pegpu_trace_rec, len));
	ev->type = p[offsetof(struct pegpu_trace_rec, type)];
	ev->kind = p[offsetof(struct pegpu_trace_rec, kind)];
	ev->dir = p[offsetof(struct pegpu_trace_rec, dir)];
	ev->flags = p[offsetof(struct pegpu_trace_rec, flags)];
	return pegpu_trace_event_valid(ev) ? 0 : PEGPU_TRACE_E_FORMAT;
}

/* ---------------------------------------------------------------- */
/* sequencing                                                        */
/* ---------------------------------------------------------------- */

void pegpu_trace_seq_init(struct pegpu_trace_seq *s)
{
	memset(s, 0, sizeof(*s));
}

/*
 * A scatterlist is recorded as one unit (the kmod writes it under its
 * lock), so its segments are adjacent, share id, direction and timestamp,
 * and nothing else may come between them.
 */
int pegpu_trace_seq_feed(struct pegpu_trace_seq *s, const struct pegpu_trace_event *ev)
{
	if (!pegpu_trace_event_valid(ev))
		return PEGPU_TRACE_E_FORMAT;
	if (s->started && ev->ts_ns < s->last_ts)
		return PEGPU_TRACE_E_FORMAT;
	if (s->in_sg) {
		if (ev->type != PEGPU_TR_SEG || ev->id != s->sg_id || ev->dir != s->sg_dir ||
		    ev->ts_ns != s->last_ts)
			return PEGPU_TRACE_E_FORMAT;
	} else if (ev->type == PEGPU_TR_SEG) {
		return PEGPU_TRACE_E_FORMAT;
	}
	s->started = true;
	s->last_ts = ev->ts_ns;
	if (ev->type == PEGPU_TR_MAP || ev->type == PEGPU_TR_SEG) {
		s->in_sg = (ev->flags & PEGPU_TF_MORE) != 0;
		s->sg_id = ev->id;
		s->sg_kind = ev->kind;
		s->sg_dir = ev->dir;
	}
	return 0;
}

int pegpu_trace_seq_end(const struct pegpu_trace_seq *s)
{
	return s->in_sg ? PEGPU_TRACE_E_FORMAT : 0;
}

/* ---------------------------------------------------------------- */
/* text                                                              */
/* ---------------------------------------------------------------- */

int pegpu_trace_format_line(const struct pegpu_trace_event *ev, char *buf, size_t size)
{
	const char *more = (ev->flags & PEGPU_TF_MORE) ? " more" : "";
	const char *failed = (ev->flags & PEGPU_TF_FAILED) ? " failed" : "";
	const char *kind = pegpu_trace_kind_name(ev->kind);
	const char *dir = pegpu_trace_dir_name(ev->dir);
	int n;

	switch (ev->type) {
	case PEGPU_TR_MAP:
		n = snprintf(buf, size, "%" PRIu64 " map %" PRIu64 " %s %s 0x%" PRIx64 " %" PRIu64
			     "%s%s", ev->ts_ns, ev->id, kind ? kind : "?", dir ? dir : "?",
			     ev->addr, ev->len, more, failed);
		break;
	case PEGPU_TR_SEG:
		n = snprintf(buf, size, "%" PRIu64 " seg %" PRIu64 " %s 0x%" PRIx64 " %" PRIu64
			     "%s",
			     ev->ts_ns, ev->id, dir ? dir : "?", ev->addr, ev->len, more);
		break;
	case PEGPU_TR_UNMAP:
		if (ev->addr)
			n = snprintf(buf, size, "%" PRIu64 " unmap %" PRIu64 " %s %s %" PRIu64
				     " 0x%" PRIx64, ev->ts_ns, ev->id, kind ? kind : "?",
				     dir ? dir : "?", ev->len, ev->addr);
		else
			n = snprintf(buf, size, "%" PRIu64 " unmap %" PRIu64 " %s %s %" PRIu64,
				     ev->ts_ns, ev->id, kind ? kind : "?", dir ? dir : "?",
				     ev->len);
		break;
	case PEGPU_TR_DROP:
		n = snprintf(buf, size, "%" PRIu64 " drop %" PRIu64, ev->ts_ns, ev->addr);
		break;
	default:
		n = snprintf(buf, size, "# unknown record type %u", (unsigned int)ev->type);
		break;
	}
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

/* Tokeniser over a bounded line: no NUL terminator needed. */
struct toks {
	const char *p;
	const char *end;
};

static bool tok_next(struct toks *t, const char **s, size_t *n)
{
	while (t->p < t->end && (*t->p == ' ' || *t->p == '\t' || *t->p == '\r'))
		t->p++;
	if (t->p >= t->end || *t->p == '#')
		return false;
	*s = t->p;
	while (t->p < t->end && *t->p != ' ' && *t->p != '\t' && *t->p != '\r')
		t->p++;
	*n = (size_t)(t->p - *s);
	return true;
}

static bool tok_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && !memcmp(s, word, n);
}

/* Decimal or 0x-hex, no sign, no overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	unsigned int base = 10;
	uint64_t v = 0;
	size_t i = 0;

	if (n >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i >= n || n - i > 20)
		return false;
	for (; i < n; i++) {
		unsigned int d;
		char c = s[i];

		if (c >= '0' && c <= '9')
			d = (unsigned int)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned int)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned int)(c - 'A' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

static bool tok_u64(struct toks *t, uint64_t *v)
{
	const char *s;
	size_t n;

	return tok_next(t, &s, &n) && parse_u64(s, n, v);
}

static bool tok_name(struct toks *t, const char *(*name)(unsigned int), uint8_t *v)
{
	const char *s;
	unsigned int i;
	size_t n;

	if (!tok_next(t, &s, &n))
		return false;
	for (i = 1; i < 8; i++) {
		const char *w = name(i);

		if (w && tok_is(s, n, w)) {
			*v = (uint8_t)i;
			return true;
		}
	}
	return false;
}

int pegpu_trace_parse_line(const char *line, size_t len, struct pegpu_trace_event *ev)
{
	struct toks t = { line, line + len };
	const char *s;
	size_t n;

	memset(ev, 0, sizeof(*ev));
	if (!tok_next(&t, &s, &n))
		return 1;	/* blank or comment */
	if (!parse_u64(s, n, &ev->ts_ns) || !tok_next(&t, &s, &n))
		return PEGPU_TRACE_E_FORMAT;

	if (tok_is(s, n, "map")) {
		ev->type = PEGPU_TR_MAP;
		if (!tok_u64(&t, &ev->id) || !tok_name(&t, pegpu_trace_kind_name, &ev->kind) ||
		    !tok_name(&t, pegpu_trace_dir_name, &ev->dir) || !tok_u64(&t, &ev->addr) ||
		    !tok_u64(&t, &ev->len))
			return PEGPU_TRACE_E_FORMAT;
		while (tok_next(&t, &s, &n)) {
			if (tok_is(s, n, "more") && !(ev->flags & PEGPU_TF_MORE))
				ev->flags |= PEGPU_TF_MORE;
			else if (tok_is(s, n, "failed") && !(ev->flags & PEGPU_TF_FAILED))
				ev->flags |= PEGPU_TF_FAILED;
			else
				return PEGPU_TRACE_E_FORMAT;
		}
	} else if (tok_is(s, n, "seg")) {
		ev->type = PEGPU_TR_SEG;
		ev->kind = PEGPU_TK_SG;
		if (!tok_u64(&t, &ev->id) || !tok_name(&t, pegpu_trace_dir_name, &ev->dir) ||
		    !tok_u64(&t, &ev->addr) || !tok_u64(&t, &ev->len))
			return PEGPU_TRACE_E_FORMAT;
		if (tok_next(&t, &s, &n)) {
			if (!tok_is(s, n, "more"))
				return PEGPU_TRACE_E_FORMAT;
			ev->flags |= PEGPU_TF_MORE;
		}
	} else if (tok_is(s, n, "unmap")) {
		ev->type = PEGPU_TR_UNMAP;
		if (!tok_u64(&t, &ev->id) || !tok_name(&t, pegpu_trace_kind_name, &ev->kind) ||
		    !tok_name(&t, pegpu_trace_dir_name, &ev->dir) || !tok_u64(&t, &ev->len))
			return PEGPU_TRACE_E_FORMAT;
		if (tok_next(&t, &s, &n) && !parse_u64(s, n, &ev->addr))
			return PEGPU_TRACE_E_FORMAT;
	} else if (tok_is(s, n, "drop")) {
		ev->type = PEGPU_TR_DROP;
		if (!tok_u64(&t, &ev->addr))
			return PEGPU_TRACE_E_FORMAT;
	} else {
		return PEGPU_TRACE_E_FORMAT;
	}
	if (tok_next(&t, &s, &n))
		return PEGPU_TRACE_E_FORMAT;
	return pegpu_trace_event_valid(ev) ? 0 : PEGPU_TRACE_E_FORMAT;
}

/* "pegpu-dma-trace 1.0 ram=BASE+SIZE seed=N source=NAME" */
static int parse_text_header(const char *line, size_t len, struct pegpu_trace_info *info)
{
	struct toks t = { line, line + len };
	const char *s, *dot, *plus;
	uint64_t major, minor;
	size_t n;

	if (!tok_next(&t, &s, &n) || !tok_is(s, n, PEGPU_TRACE_TEXT_MAGIC))
		return PEGPU_TRACE_E_FORMAT;
	if (!tok_next(&t, &s, &n))
		return PEGPU_TRACE_E_FORMAT;
	dot = memchr(s, '.', n);
	if (!dot || !parse_u64(s, (size_t)(dot - s), &major) ||
	    !parse_u64(dot + 1, n - (size_t)(dot + 1 - s), &minor) || minor > 0xffff)
		return PEGPU_TRACE_E_FORMAT;
	if (major != PEGPU_TRACE_VERSION_MAJOR)
		return PEGPU_TRACE_E_VERSION;
	info->major = (uint16_t)major;
	info->minor = (uint16_t)minor;
	while (tok_next(&t, &s, &n)) {
		if (n > 4 && !memcmp(s, "ram=", 4)) {
			plus = memchr(s + 4, '+', n - 4);
			if (!plus || !parse_u64(s + 4, (size_t)(plus - s - 4), &info->ram_base) ||
			    !parse_u64(plus + 1, n - (size_t)(plus + 1 - s), &info->ram_size) ||
			    info->ram_size - 1 > UINT64_MAX - info->ram_base)
				return PEGPU_TRACE_E_FORMAT;
		} else if (n > 5 && !memcmp(s, "seed=", 5)) {
			if (!parse_u64(s + 5, n - 5, &info->seed))
				return PEGPU_TRACE_E_FORMAT;
		} else if (n > 7 && !memcmp(s, "source=", 7)) {
			if (n - 7 > PEGPU_TRACE_SOURCE_LEN)
				return PEGPU_TRACE_E_FORMAT;
			memcpy(info->source, s + 7, n - 7);
			info->source[n - 7] = '\0';
		}
		/* unknown key=value words are a later minor version's: skip them */
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* in-memory traces                                                  */
/* ---------------------------------------------------------------- */

void pegpu_trace_init(struct pegpu_trace *t, const struct pegpu_trace_info *info)
{
	memset(t, 0, sizeof(*t));
	if (info)
		t->info = *info;
	t->info.major = PEGPU_TRACE_VERSION_MAJOR;
	if (!info)
		t->info.minor = PEGPU_TRACE_VERSION_MINOR;
}

int pegpu_trace_append(struct pegpu_trace *t, const struct pegpu_trace_event *ev)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct pegpu_trace_event *p;

		if (cap > SIZE_MAX / sizeof(*p))
			return PEGPU_TRACE_E_NOMEM;
		p = realloc(t->ev, cap * sizeof(*p));
		if (!p)
			return PEGPU_TRACE_E_NOMEM;
		t->ev = p;
		t->cap = cap;
	}
	t->ev[t->n++] = *ev;
	return 0;
}

void pegpu_trace_free(struct pegpu_trace *t)
{
	free(t->ev);
	t->ev = NULL;
	t->n = 0;
	t->cap = 0;
}

static int parse_binary(const uint8_t *p, size_t len, struct pegpu_trace *t, char *err,
			size_t errlen)
{
	struct pegpu_trace_info info;
	struct pegpu_trace_event ev;
	struct pegpu_trace_seq seq;
	uint32_t hdr_size, rec_size;
	size_t off, i, nrec;
	int ret;

	if (len < HDR_SIZE) {
		set_err(err, errlen, "binary trace shorter than its %u-byte header", HDR_SIZE);
		return PEGPU_TRACE_E_FORMAT;
	}
	memset(&info, 0, sizeof(info));
	info.major = ld16(p + offsetof(struct pegpu_trace_file_hdr, major));
	info.minor = ld16(p + offsetof(struct pegpu_trace_file_hdr, minor));
	if (info.major != PEGPU_TRACE_VERSION_MAJOR) {
		set_err(err, errlen, "trace version %u.%u, this reader knows %u.x",
			info.major, info.minor, PEGPU_TRACE_VERSION_MAJOR);
		return PEGPU_TRACE_E_VERSION;
	}
	hdr_size = ld32(p + offsetof(struct pegpu_trace_file_hdr, hdr_size));
	rec_size = ld32(p + offsetof(struct pegpu_trace_file_hdr, rec_size));
	if (hdr_size < HDR_SIZE || hdr_size > HDR_SIZE_MAX || rec_size < REC_SIZE ||
	    rec_size > REC_SIZE_MAX || hdr_size > len) {
		set_err(err, errlen, "bad header: hdr_size %" PRIu32 " rec_size %" PRIu32,
			hdr_size, rec_size);
		return PEGPU_TRACE_E_FORMAT;
	}
	if ((len - hdr_size) % rec_size) {
		set_err(err, errlen, "%zu bytes after the header are not whole %" PRIu32
			"-byte records", len - hdr_size, rec_size);
		return PEGPU_TRACE_E_FORMAT;
	}
	info.ram_base = ld64(p + offsetof(struct pegpu_trace_file_hdr, ram_base));
	info.ram_size = ld64(p + offsetof(struct pegpu_trace_file_hdr, ram_size));
	info.seed = ld64(p + offsetof(struct pegpu_trace_file_hdr, seed));
	if (info.ram_size && info.ram_size - 1 > UINT64_MAX - info.ram_base) {
		set_err(err, errlen, "bad header: guest RAM range wraps");
		return PEGPU_TRACE_E_FORMAT;
	}
	memcpy(info.source, p + offsetof(struct pegpu_trace_file_hdr, source),
	       PEGPU_TRACE_SOURCE_LEN);
	info.source[PEGPU_TRACE_SOURCE_LEN] = '\0';
	/* stop at the first NUL: bytes after it are padding */
	info.source[strnlen(info.source, PEGPU_TRACE_SOURCE_LEN)] = '\0';

	pegpu_trace_init(t, &info);
	pegpu_trace_seq_init(&seq);
	nrec = (len - hdr_size) / rec_size;
	for (i = 0, off = hdr_size; i < nrec; i++, off += rec_size) {
		ret = pegpu_trace_decode(p + off, &ev);
		if (!ret)
			ret = pegpu_trace_seq_feed(&seq, &ev);
		if (!ret)
			ret = pegpu_trace_append(t, &ev);
		if (ret) {
			set_err(err, errlen, "record %zu: %s", i,
				ret == PEGPU_TRACE_E_NOMEM ? "out of memory" :
				"invalid field or out of sequence");
			goto fail;
		}
	}
	if (pegpu_trace_seq_end(&seq)) {
		set_err(err, errlen, "trace ends inside a scatterlist");
		ret = PEGPU_TRACE_E_FORMAT;
		goto fail;
	}
	return 0;

fail:
	pegpu_trace_free(t);
	return ret;
}

static int parse_text(const char *p, size_t len, struct pegpu_trace *t, char *err,
		      size_t errlen)
{
	struct pegpu_trace_info info;
	struct pegpu_trace_event ev;
	struct pegpu_trace_seq seq;
	size_t off = 0, lineno = 0;
	bool have_hdr = false;
	int ret = 0;

	memset(&info, 0, sizeof(info));
	pegpu_trace_init(t, NULL);
	pegpu_trace_seq_init(&seq);
	while (off < len) {
		const char *nl = memchr(p + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (p + off)) : len - off;
		const char *line = p + off;

		off += n + (nl ? 1 : 0);
		lineno++;
		if (n > LINE_MAX_LEN) {
			set_err(err, errlen, "line %zu: longer than %u bytes", lineno,
				LINE_MAX_LEN);
			ret = PEGPU_TRACE_E_FORMAT;
			goto fail;
		}
		if (memchr(line, '\0', n)) {
			set_err(err, errlen, "line %zu: NUL byte", lineno);
			ret = PEGPU_TRACE_E_FORMAT;
			goto fail;
		}
		if (!have_hdr) {
			struct toks tk = { line, line + n };
			const char *s;
			size_t sn;

			if (!tok_next(&tk, &s, &sn))
				continue;
			ret = parse_text_header(line, n, &info);
			if (ret) {
				set_err(err, errlen, "line %zu: %s", lineno,
					ret == PEGPU_TRACE_E_VERSION ? "unsupported version" :
					"bad '" PEGPU_TRACE_TEXT_MAGIC "' header");
				goto fail;
			}
			t->info = info;
			have_hdr = true;
			continue;
		}
		ret = pegpu_trace_parse_line(line, n, &ev);
		if (ret == 1) {
			ret = 0;
			continue;
		}
		if (!ret)
			ret = pegpu_trace_seq_feed(&seq, &ev);
		if (!ret)
			ret = pegpu_trace_append(t, &ev);
		if (ret) {
			set_err(err, errlen, "line %zu: %s", lineno,
				ret == PEGPU_TRACE_E_NOMEM ? "out of memory" :
				"malformed or out of sequence");
			goto fail;
		}
	}
	if (!have_hdr) {
		set_err(err, errlen, "no '" PEGPU_TRACE_TEXT_MAGIC "' header line");
		ret = PEGPU_TRACE_E_FORMAT;
		goto fail;
	}
	if (pegpu_trace_seq_end(&seq)) {
		set_err(err, errlen, "trace ends inside a scatterlist");
		ret = PEGPU_TRACE_E_FORMAT;
		goto fail;
	}
	return 0;

fail:
	pegpu_trace_free(t);
	return ret;
}

int pegpu_trace_parse(const void *buf, size_t len, struct pegpu_trace *t, char *err,
		      size_t errlen)
{
	const uint8_t *p = buf;

	pegpu_trace_init(t, NULL);
	if (len >= 4 && ld32(p) == PEGPU_TRACE_MAGIC)
		return parse_binary(p, len, t, err, errlen);
	return parse_text(buf, len, t, err, errlen);
}

int pegpu_trace_load(const char *path, struct pegpu_trace *t, char *err, size_t errlen)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *nb;
	FILE *f;
	int ret;

	pegpu_trace_init(t, NULL);
	f = fopen(path, "rb");
	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return PEGPU_TRACE_E_IO;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			nb = realloc(buf, cap);
			if (!nb) {
				set_err(err, errlen, "%s: out of memory", path);
				ret = PEGPU_TRACE_E_NOMEM;
				goto out;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		set_err(err, errlen, "%s: read error", path);
		ret = PEGPU_TRACE_E_IO;
		goto out;
	}
	ret = pegpu_trace_parse(buf, len, t, err, errlen);
out:
	free(buf);
	fclose(f);
	return ret;
}

/* ---------------------------------------------------------------- */
/* writer                                                            */
/* ---------------------------------------------------------------- */

/*
 * A binary header's source may hold any bytes; the text header only takes
 * one printable word (no blank, no '#'), else it is left out.
 */
static bool source_is_word(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '#')
			return false;
	return n > 0;
}

int pegpu_trace_writer_begin(struct pegpu_trace_writer *w, FILE *f, enum pegpu_trace_format fmt,
			     const struct pegpu_trace_info *info)
{
	struct pegpu_trace_file_hdr hdr;
	uint8_t *p = (uint8_t *)&hdr;
	size_t srclen;

	memset(w, 0, sizeof(*w));
	w->f = f;
	w->fmt = fmt;
	pegpu_trace_seq_init(&w->seq);
	srclen = strnlen(info->source, PEGPU_TRACE_SOURCE_LEN);

	if (fmt == PEGPU_TRACE_TEXT) {
		if (fprintf(f, "%s %u.%u", PEGPU_TRACE_TEXT_MAGIC, PEGPU_TRACE_VERSION_MAJOR,
			    PEGPU_TRACE_VERSION_MINOR) < 0)
			goto io;
		if (info->ram_size &&
		    fprintf(f, " ram=0x%" PRIx64 "+0x%" PRIx64, info->ram_base, info->ram_size) < 0)
			goto io;
		if (info->seed && fprintf(f, " seed=%" PRIu64, info->seed) < 0)
			goto io;
		if (source_is_word(info->source, srclen) &&
		    fprintf(f, " source=%.*s", (int)srclen, info->source) < 0)
			goto io;
		if (fputc('\n', f) == EOF)
			goto io;
		return 0;
	}
	memset(&hdr, 0, sizeof(hdr));
	st32(p + offsetof(struct pegpu_trace_file_hdr, magic), PEGPU_TRACE_MAGIC);
	st16(p + offsetof(struct pegpu_trace_file_hdr, major), PEGPU_TRACE_VERSION_MAJOR);
	st16(p + offsetof(struct pegpu_trace_file_hdr, minor), PEGPU_TRACE_VERSION_MINOR);
	st32(p + offsetof(struct pegpu_trace_file_hdr, hdr_size), HDR_SIZE);
	st32(p + offsetof(struct pegpu_trace_file_hdr, rec_size), REC_SIZE);
	st64(p + offsetof(struct pegpu_trace_file_hdr, ram_base), info->ram_base);
	st64(p + offsetof(struct pegpu_trace_file_hdr, ram_size), info->ram_size);
	st64(p + offsetof(struct pegpu_trace_file_hdr, seed), info->seed);
	memcpy(hdr.source, info->source, srclen);
	if (fwrite(&hdr, HDR_SIZE, 1, f) != 1)
		goto io;
	return 0;
io:
	w->err = PEGPU_TRACE_E_IO;
	return w->err;
}

int pegpu_trace_writer_put(struct pegpu_trace_writer *w, const struct pegpu_trace_event *ev)
{
	struct pegpu_trace_rec rec;
	char line[160];
	int ret;

	if (w->err)
		return w->err;
	ret = pegpu_trace_seq_feed(&w->seq, ev);
	if (ret) {
		w->err = ret;
		return ret;
	}
	if (w->fmt == PEGPU_TRACE_TEXT) {
		if (pegpu_trace_format_line(ev, line, sizeof(line)) < 0 ||
		    fprintf(w->f, "%s\n", line) < 0)
			w->err = PEGPU_TRACE_E_IO;
	} else {
		pegpu_trace_encode(ev, &rec);
		if (fwrite(&rec, REC_SIZE, 1, w->f) != 1)
			w->err = PEGPU_TRACE_E_IO;
	}
	if (!w->err)
		w->events++;
	return w->err;
}

int pegpu_trace_writer_end(struct pegpu_trace_writer *w)
{
	if (!w->err && pegpu_trace_seq_end(&w->seq))
		w->err = PEGPU_TRACE_E_FORMAT;
	if (fflush(w->f) && !w->err)
		w->err = PEGPU_TRACE_E_IO;
	return w->err;
}
