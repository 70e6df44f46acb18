/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-or-later */
/*
 * pegpu DMA traces: what a guest's DMA API did, in an order and with the
 * detail needed to replay it (docs/dma-traces.md is the prose version).
 *
 * A binary trace is one file header followed by fixed-size records, all
 * little-endian.  Each record is one event: a MAP of a buffer (single,
 * first segment of a scatterlist, or a coherent allocation), a further SEG
 * of a scatterlist, an UNMAP, or a DROP saying how many events a bounded
 * recorder (pegpu_dma.ko's debugfs ring) had to throw away at that point.
 * Fixed-size records let the kernel fill a ring of these structs directly
 * and let a reader skip fields a later minor version appends.
 *
 * The wire structs below are shared with pegpu_dma.ko; the functions at
 * the end (lib/dma_trace.c) are user space only.
 */
#ifndef PEGPU_DMA_TRACE_H
#define PEGPU_DMA_TRACE_H

#include "pegpu/dma_proto.h"	/* pegpu_le*, PEGPU_DIR_* */

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#endif

#define PEGPU_TRACE_MAGIC		0x52544450u	/* "PDTR" */
#define PEGPU_TRACE_VERSION_MAJOR	1
#define PEGPU_TRACE_VERSION_MINOR	0
#define PEGPU_TRACE_SOURCE_LEN		24
#define PEGPU_TRACE_TEXT_MAGIC		"pegpu-dma-trace"

/*
 * File header, 64 bytes.  hdr_size and rec_size let a minor version append
 * fields: a reader takes the first bytes it knows and skips the rest.
 */
struct pegpu_trace_file_hdr {
	pegpu_le32 magic;		/* PEGPU_TRACE_MAGIC */
	pegpu_le16 major;		/* a reader refuses another major */
	pegpu_le16 minor;
	pegpu_le32 hdr_size;		/* bytes of this header, >= 64 */
	pegpu_le32 rec_size;		/* bytes of each record, >= 32 */
	pegpu_le64 ram_base;		/* guest RAM the buffers lie in; 0 + 0 = unknown */
	pegpu_le64 ram_size;
	pegpu_le64 seed;		/* generator seed; 0 for recorded traces */
	/* "nvidia-loading", "pegpu_dma.ko", ...; NUL padded */
	char source[PEGPU_TRACE_SOURCE_LEN];
};

/* Record types. */
enum pegpu_trace_type {
	PEGPU_TR_MAP = 1,	/* a buffer (or a scatterlist's first segment) is mapped */
	PEGPU_TR_SEG = 2,	/* the next segment of the scatterlist being mapped */
	PEGPU_TR_UNMAP = 3,	/* the buffer with this id is unmapped (all its segments) */
	PEGPU_TR_DROP = 4,	/* `addr` events were lost here (recorder ring full) */
};

/* Which DMA API call made the buffer. */
enum pegpu_trace_kind {
	PEGPU_TK_SINGLE = 1,	/* dma_map_page / dma_map_phys / dma_map_single */
	PEGPU_TK_SG = 2,	/* dma_map_sg: one id, several segments */
	PEGPU_TK_COHERENT = 3,	/* dma_alloc_coherent / dma_alloc_pages */
};

/* Record flags. */
#define PEGPU_TF_MORE	(1u << 0)	/* MAP/SEG: another SEG of this id follows */
#define PEGPU_TF_FAILED	(1u << 1)	/* MAP: the call failed, no UNMAP follows */
#define PEGPU_TF_MASK	(PEGPU_TF_MORE | PEGPU_TF_FAILED)

/*
 * One event, 32 bytes.  `id` names a buffer from its MAP to its UNMAP; it
 * is unique among live buffers and may be reused afterwards (the kmod uses
 * the first dma address).  The segments of one scatterlist are
 * consecutive records with the same id and timestamp: MAP (kind SG) then
 * SEGs, each but the last flagged MORE.
 */
struct pegpu_trace_rec {
	pegpu_le64 ts_ns;	/* nanoseconds since the trace started, non-decreasing */
	pegpu_le64 id;
	pegpu_le64 addr;	/* MAP/SEG: guest-physical start; UNMAP: dma address
				 * (informational); DROP: events lost */
	pegpu_le32 len;		/* MAP/SEG: segment bytes, > 0; UNMAP: the buffer's
				 * total bytes, saturated at 0xffffffff */
	uint8_t type;		/* enum pegpu_trace_type */
	uint8_t kind;		/* enum pegpu_trace_kind (MAP, SEG, UNMAP) */
	uint8_t dir;		/* PEGPU_DIR_* (MAP, SEG, UNMAP), non-zero */
	uint8_t flags;		/* PEGPU_TF_* */
};

_Static_assert(sizeof(struct pegpu_trace_file_hdr) == 64, "trace header is 64 bytes");
_Static_assert(sizeof(struct pegpu_trace_rec) == 32, "trace record is 32 bytes");

#ifndef __KERNEL__

/* An event in host byte order. */
struct pegpu_trace_event {
	uint64_t ts_ns;
	uint64_t id;
	uint64_t addr;
	uint64_t len;		/* < 2^32 */
	uint8_t type;
	uint8_t kind;
	uint8_t dir;
	uint8_t flags;
};

struct pegpu_trace_info {
	uint16_t major;
	uint16_t minor;
	uint64_t ram_base;
	uint64_t ram_size;
	uint64_t seed;
	char source[PEGPU_TRACE_SOURCE_LEN + 1];	/* NUL terminated */
};

enum pegpu_trace_format {
	PEGPU_TRACE_BINARY = 0,
	PEGPU_TRACE_TEXT = 1,
};

/* Errors (negative); 0 is success. */
enum pegpu_trace_err {
	PEGPU_TRACE_E_FORMAT = -1,	/* not a trace, or a malformed record/line */
	PEGPU_TRACE_E_VERSION = -2,	/* another major version */
	PEGPU_TRACE_E_NOMEM = -3,
	PEGPU_TRACE_E_IO = -4,
};

/* A whole trace in memory. */
struct pegpu_trace {
	struct pegpu_trace_info info;
	struct pegpu_trace_event *ev;
	size_t n;
	size_t cap;
};

/*
 * Check one event on its own: known type, kind and direction, no unknown
 * flags, a length that fits 32 bits, a MAP/SEG range that is non-empty and
 * does not wrap.  Sequencing (SEG after MORE, timestamps) is the parser's.
 */
bool pegpu_trace_event_valid(const struct pegpu_trace_event *ev);

/* Host order <-> wire.  decode returns 0 or PEGPU_TRACE_E_FORMAT. */
void pegpu_trace_encode(const struct pegpu_trace_event *ev, struct pegpu_trace_rec *rec);
int pegpu_trace_decode(const void *rec32, struct pegpu_trace_event *ev);

/*
 * Incremental sequencing check, shared by the parser and by writers that
 * want to refuse a malformed stream early: feed every event in order, then
 * call pegpu_trace_seq_end.
 */
struct pegpu_trace_seq {
	uint64_t last_ts;
	uint64_t sg_id;		/* id of the scatterlist in progress */
	uint8_t sg_kind;
	uint8_t sg_dir;
	bool in_sg;		/* the last MAP/SEG had MORE */
	bool started;
};
void pegpu_trace_seq_init(struct pegpu_trace_seq *s);
int pegpu_trace_seq_feed(struct pegpu_trace_seq *s, const struct pegpu_trace_event *ev);
int pegpu_trace_seq_end(const struct pegpu_trace_seq *s);

/* Text form of one event, without the newline; returns the length or -1 if buf is too small. */
int pegpu_trace_format_line(const struct pegpu_trace_event *ev, char *buf, size_t size);

/* Parse one text line (no newline needed).  0, 1 for a blank/comment line, or an error. */
int pegpu_trace_parse_line(const char *line, size_t len, struct pegpu_trace_event *ev);

/*
 * Parse a whole trace, binary or text (told apart by the first bytes).
 * On error *t is empty and, if err is not NULL, err says where and why.
 */
int pegpu_trace_parse(const void *buf, size_t len, struct pegpu_trace *t, char *err,
		      size_t errlen);
int pegpu_trace_load(const char *path, struct pegpu_trace *t, char *err, size_t errlen);

void pegpu_trace_init(struct pegpu_trace *t, const struct pegpu_trace_info *info);
int pegpu_trace_append(struct pegpu_trace *t, const struct pegpu_trace_event *ev);
void pegpu_trace_free(struct pegpu_trace *t);

/* Streaming writer: header first, then events; checks the sequencing. */
struct pegpu_trace_writer {
	FILE *f;
	enum pegpu_trace_format fmt;
	struct pegpu_trace_seq seq;
	uint64_t events;
	int err;		/* first error, sticky */
};
int pegpu_trace_writer_begin(struct pegpu_trace_writer *w, FILE *f, enum pegpu_trace_format fmt,
			     const struct pegpu_trace_info *info);
int pegpu_trace_writer_put(struct pegpu_trace_writer *w, const struct pegpu_trace_event *ev);
/* Checks the stream did not stop inside a scatterlist and flushes; returns the first error. */
int pegpu_trace_writer_end(struct pegpu_trace_writer *w);

const char *pegpu_trace_type_name(unsigned int type);
const char *pegpu_trace_kind_name(unsigned int kind);
const char *pegpu_trace_dir_name(unsigned int dir);
const char *pegpu_trace_strerror(int err);

#endif /* !__KERNEL__ */

#endif /* PEGPU_DMA_TRACE_H */
