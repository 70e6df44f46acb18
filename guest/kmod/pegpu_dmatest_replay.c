// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dmatest: replay a DMA trace in the guest (replay=<firmware name>).
 *
 * The trace (include/pegpu/dma_trace.h, binary form) comes through
 * request_firmware(), e.g. /lib/firmware/pegpu/replay.trace in the kernel
 * tier's initramfs.  Every MAP becomes the DMA API call of its kind on this
 * device (dma_map_single, dma_map_sgtable, dma_alloc_coherent or, for a
 * coherent buffer with one direction, dma_alloc_pages) and every UNMAP its
 * counterpart, in trace order and as fast as possible (timestamps are not
 * honoured: the point is the sequence the driver sees, not its pace).
 *
 * Where buffers lie decides how the coalescer shares DART mappings, so the
 * trace's layout is kept: its guest RAM is cut into 4 MiB granules, each
 * backed on first use by one physically contiguous 4 MiB block, and a
 * buffer lands at the same offset in its granule's block as in the trace.
 * Clusters (at most 1 MiB here) stay aligned, and buffers the trace keeps
 * apart stay apart, so live buffers never alias and their dma addresses,
 * the recorder's ids, stay unique.  A segment that crosses a granule
 * boundary is cut at it (counted as clamped).  Coherent buffers come from
 * the allocator: their address is not the caller's to choose.
 *
 * Every verify_every-th buffer also moves data through pegpu-dmatest, as a
 * GPU would in its direction: CPU-written data checksummed by the device
 * (to device), a device fill read back by the CPU (from device), both for
 * bidirectional and coherent buffers.
 */
#define pr_fmt(fmt) fmt

#include <linux/dma-mapping.h>
#include <linux/firmware.h>
#include <linux/mm.h>
#include <linux/prandom.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "compat.h"
#include "pegpu_dmatest.h"
#include "pegpu/dma_trace.h"

#define DT_GRANULES_MAX		64	/* 256 MiB of trace RAM */
#define DT_VERIFY_SEGS		256	/* segments of one buffer checked at most */
#define DT_SG_MAX		65536	/* segments of one scatterlist, at most */

struct dt_rbuf {
	u8 kind, dir;
	u32 nseg;
	u64 bytes;
	dma_addr_t dma;			/* single, coherent */
	void *va;			/* single: arena; coherent: cpu address */
	struct page *page;		/* coherent through dma_alloc_pages */
	struct sg_table sgt;		/* sg */
};

struct dt_seg {
	u64 addr;
	u32 len;
};

struct dt_replay {
	struct dt_ctx *t;
	u64 ram_base, ram_size, granule;
	struct page *gran[DT_GRANULES_MAX];
	unsigned int order, ngran;
	struct xarray live;		/* id -> struct dt_rbuf */
	unsigned int verify_every;

	/* the call being collected: a MAP and its SEGs */
	struct pegpu_trace_rec first;
	struct dt_seg *seg;
	u32 nseg, seg_cap;
	bool in_call, skip;

	/* totals */
	u64 events, calls, kinds[4], segments, unmaps, failures, skipped_failed;
	u64 unknown_unmaps, dup_ids, drops, clamped, verified, live_at_end;
};

static enum dma_data_direction dt_dma_dir(u8 dir)
{
	switch (dir) {
	case PEGPU_DIR_TO_DEVICE:
		return DMA_TO_DEVICE;
	case PEGPU_DIR_FROM_DEVICE:
		return DMA_FROM_DEVICE;
	default:
		return DMA_BIDIRECTIONAL;
	}
}

/* The arena address of a trace address; @len is cut at the granule's end. */
static void *dt_arena(struct dt_replay *r, u64 addr, u32 *len)
{
	u64 off, g;

	if (addr < r->ram_base || addr - r->ram_base >= r->ram_size)
		return NULL;
	off = addr - r->ram_base;
	g = div64_u64(off, r->granule);
	if (g >= DT_GRANULES_MAX)
		return NULL;
	if (!r->gran[g]) {
		r->gran[g] = alloc_pages(GFP_KERNEL | __GFP_NOWARN, r->order);
		if (!r->gran[g])
			return NULL;
		r->ngran++;
	}
	off -= g * r->granule;
	if (*len > r->granule - off) {
		*len = r->granule - off;
		r->clamped++;
	}
	return page_address(r->gran[g]) + off;
}

/* One segment as the device sees it and the CPU sees it. */
struct dt_vseg {
	dma_addr_t dma;
	void *va;
	u32 len;
};

/*
 * Move data through the device in the buffer's direction and check it.
 * For to-device data the CPU filled the buffer before it was mapped.
 */
static void dt_replay_verify(struct dt_replay *r, struct dt_rbuf *b, struct dt_vseg *v, u32 n)
{
	struct dt_ctx *t = r->t;
	enum dma_data_direction dir = dt_dma_dir(b->dir);
	int csum[DT_VERIFY_SEGS];
	u8 val = 0x40 + (r->calls & 0x3f);
	u32 i;

	n = min_t(u32, n, DT_VERIFY_SEGS);
	dt_ring_reset(t);
	if (b->dir & PEGPU_DIR_TO_DEVICE) {
		for (i = 0; i < n; i++)
			csum[i] = dt_add(t, PEGPU_DT_OP_CSUM, v[i].dma, 0, v[i].len, 0);
		if (dt_run(t))
			return;
		for (i = 0; i < n; i++) {
			if (dt_result(t, csum[i]) != dt_fnv(v[i].va, v[i].len)) {
				dt_fail(t, "csum_call%llu_seg%u", r->calls, i);
				return;
			}
			t->bytes_verified += v[i].len;
		}
	}
	if (b->dir & PEGPU_DIR_FROM_DEVICE) {
		for (i = 0; i < n; i++)
			dt_add(t, PEGPU_DT_OP_FILL, 0, v[i].dma, v[i].len, val);
		if (dt_run(t))
			return;
		if (b->kind == PEGPU_TK_SG)
			dma_sync_sgtable_for_cpu(t->dev, &b->sgt, dir);
		else if (b->kind == PEGPU_TK_SINGLE || b->page)
			dma_sync_single_for_cpu(t->dev, b->dma, b->bytes, dir);
		for (i = 0; i < n; i++)
			if (!dt_verify_fill(t, v[i].va, v[i].len, val, "replay_fill"))
				return;
	}
	r->verified++;
}

static void dt_rbuf_unmap(struct dt_replay *r, struct dt_rbuf *b)
{
	struct device *dev = r->t->dev;
	enum dma_data_direction dir = dt_dma_dir(b->dir);

	switch (b->kind) {
	case PEGPU_TK_SINGLE:
		dma_unmap_single(dev, b->dma, b->bytes, dir);
		break;
	case PEGPU_TK_SG:
		dma_unmap_sgtable(dev, &b->sgt, dir, 0);
		sg_free_table(&b->sgt);
		break;
	case PEGPU_TK_COHERENT:
		if (b->page)
			dma_free_pages(dev, b->bytes, b->page, b->dma, dir);
		else
			dma_free_coherent(dev, b->bytes, b->va, b->dma);
		break;
	}
	kfree(b);
}

/* Perform the collected call: r->first and its r->nseg segments. */
static int dt_replay_map(struct dt_replay *r)
{
	struct dt_ctx *t = r->t;
	struct device *dev = t->dev;
	u64 id = le64_to_cpu(r->first.id);
	bool verify = r->verify_every && !(r->calls % r->verify_every);
	enum dma_data_direction dir;
	struct dt_vseg *v = NULL;
	struct scatterlist *s;
	struct dt_rbuf *b, *old;
	u32 i, len;
	void *va;
	int ret;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	v = kcalloc(r->nseg, sizeof(*v), GFP_KERNEL);
	if (!b || !v) {
		ret = -ENOMEM;
		goto err;
	}
	b->kind = r->first.kind;
	b->dir = r->first.dir;
	b->nseg = r->nseg;
	dir = dt_dma_dir(b->dir);
	r->calls++;
	r->kinds[b->kind]++;
	r->segments += r->nseg;

	/* The trace's id is live already: it lost an UNMAP; the driver did unmap. */
	old = xa_erase(&r->live, id);
	if (old) {
		r->dup_ids++;
		dt_rbuf_unmap(r, old);
	}

	if (b->kind == PEGPU_TK_COHERENT) {
		b->bytes = r->seg[0].len;
		if (dir == DMA_BIDIRECTIONAL) {
			b->va = dma_alloc_coherent(dev, b->bytes, &b->dma, GFP_KERNEL);
		} else {
			b->page = dma_alloc_pages(dev, b->bytes, &b->dma, dir, GFP_KERNEL);
			b->va = b->page ? page_address(b->page) : NULL;
		}
		if (!b->va)
			goto map_failed;
		v[0] = (struct dt_vseg){ b->dma, b->va, b->bytes };
		if (verify && (b->dir & PEGPU_DIR_TO_DEVICE)) {
			prandom_bytes_state(&t->rnd, b->va, b->bytes);
			if (b->page)
				dma_sync_single_for_device(dev, b->dma, b->bytes, dir);
		}
	} else {
		for (i = 0; i < r->nseg; i++) {
			len = r->seg[i].len;
			va = dt_arena(r, r->seg[i].addr, &len);
			if (!va) {
				dt_fail(t, "no_arena_for_%#llx", r->seg[i].addr);
				ret = -ENOMEM;
				goto err;
			}
			v[i].va = va;
			v[i].len = len;
			b->bytes += len;
			/* CPU data for the device goes in before the buffer is mapped. */
			if (verify && (b->dir & PEGPU_DIR_TO_DEVICE))
				prandom_bytes_state(&t->rnd, va, len);
		}
		if (b->kind == PEGPU_TK_SINGLE) {
			b->va = v[0].va;
			b->dma = dma_map_single(dev, b->va, b->bytes, dir);
			if (dma_mapping_error(dev, b->dma))
				goto map_failed;
			v[0].dma = b->dma;
		} else {
			ret = sg_alloc_table(&b->sgt, r->nseg, GFP_KERNEL);
			if (ret)
				goto err;
			for_each_sg(b->sgt.sgl, s, r->nseg, i)
				sg_set_buf(s, v[i].va, v[i].len);
			if (dma_map_sgtable(dev, &b->sgt, dir, 0)) {
				sg_free_table(&b->sgt);
				goto map_failed;
			}
			for_each_sgtable_dma_sg(&b->sgt, s, i)
				v[i].dma = sg_dma_address(s);
		}
	}
	if (verify)
		dt_replay_verify(r, b, v, r->nseg);
	ret = xa_err(xa_store(&r->live, id, b, GFP_KERNEL));
	if (ret) {
		dt_rbuf_unmap(r, b);
		b = NULL;
		goto err;
	}
	kfree(v);
	return 0;

map_failed:
	/* The recording guest's map succeeded (failed ones are skipped): so must ours. */
	r->failures++;
	dt_fail(t, "map_failed_call%llu_kind%u_bytes%llu", r->calls, b->kind, b->bytes);
	kfree(b);
	kfree(v);
	return 0;
err:
	kfree(b);
	kfree(v);
	return ret;
}

static bool dt_rec_valid(const struct pegpu_trace_rec *rec)
{
	u8 kind = rec->kind, dir = rec->dir, flags = rec->flags;

	switch (rec->type) {
	case PEGPU_TR_MAP:
	case PEGPU_TR_SEG:
		if (kind < PEGPU_TK_SINGLE || kind > PEGPU_TK_COHERENT ||
		    dir < PEGPU_DIR_TO_DEVICE || dir > PEGPU_DIR_BIDIRECTIONAL ||
		    (flags & ~PEGPU_TF_MASK) || !le32_to_cpu(rec->len))
			return false;
		if ((flags & PEGPU_TF_MORE) && kind != PEGPU_TK_SG)
			return false;
		return rec->type == PEGPU_TR_MAP ||
		       (kind == PEGPU_TK_SG && !(flags & PEGPU_TF_FAILED));
	case PEGPU_TR_UNMAP:
	case PEGPU_TR_DROP:
		return true;
	default:
		return false;
	}
}

/* One record; a negative errno stops the replay. */
static int dt_replay_rec(struct dt_replay *r, const struct pegpu_trace_rec *rec)
{
	struct dt_rbuf *b;

	r->events++;
	if (!dt_rec_valid(rec))
		return -EINVAL;
	if (r->in_call != (rec->type == PEGPU_TR_SEG) ||
	    (r->in_call && rec->id != r->first.id))
		return -EINVAL;

	switch (rec->type) {
	case PEGPU_TR_MAP:
		r->first = *rec;
		r->nseg = 0;
		r->skip = rec->flags & PEGPU_TF_FAILED;
		if (r->skip)
			r->skipped_failed++;
		fallthrough;
	case PEGPU_TR_SEG:
		r->in_call = rec->flags & PEGPU_TF_MORE;
		if (!r->skip) {
			if (r->nseg == r->seg_cap) {
				u32 cap = r->seg_cap ? 2 * r->seg_cap : 64;
				struct dt_seg *p;

				if (cap > DT_SG_MAX)
					return -E2BIG;
				p = krealloc_array(r->seg, cap, sizeof(*p), GFP_KERNEL);
				if (!p)
					return -ENOMEM;
				r->seg = p;
				r->seg_cap = cap;
			}
			r->seg[r->nseg].addr = le64_to_cpu(rec->addr);
			r->seg[r->nseg].len = le32_to_cpu(rec->len);
			r->nseg++;
		}
		if (!r->in_call && !r->skip)
			return dt_replay_map(r);
		return 0;
	case PEGPU_TR_UNMAP:
		b = xa_erase(&r->live, le64_to_cpu(rec->id));
		if (!b) {
			r->unknown_unmaps++;
			return 0;
		}
		r->unmaps++;
		dt_rbuf_unmap(r, b);
		return 0;
	default:
		r->drops += le64_to_cpu(rec->addr);
		return 0;
	}
}

static void dt_replay_fw(struct dt_replay *r, const struct firmware *fw)
{
	const struct pegpu_trace_file_hdr *h = (const void *)fw->data;
	struct dt_ctx *t = r->t;
	struct pegpu_trace_rec rec;
	u32 hdr_size, rec_size;
	struct dt_rbuf *b;
	unsigned long id;
	size_t off, i = 0;
	int ret = 0;

	if (fw->size < sizeof(*h) || le32_to_cpu(h->magic) != PEGPU_TRACE_MAGIC ||
	    le16_to_cpu(h->major) != PEGPU_TRACE_VERSION_MAJOR) {
		dt_fail(t, "not_a_binary_trace_1.x");
		return;
	}
	hdr_size = le32_to_cpu(h->hdr_size);
	rec_size = le32_to_cpu(h->rec_size);
	r->ram_base = le64_to_cpu(h->ram_base);
	r->ram_size = le64_to_cpu(h->ram_size);
	if (hdr_size < sizeof(*h) || hdr_size > fw->size || rec_size < sizeof(rec) ||
	    (fw->size - hdr_size) % rec_size || !r->ram_size) {
		dt_fail(t, "bad_header:hdr%u,rec%u,ram%llu", hdr_size, rec_size, r->ram_size);
		return;
	}
	r->granule = min_t(u64, SZ_4M, PAGE_SIZE << PEGPU_MAX_PAGE_ORDER);
	r->order = get_order(r->granule);
	xa_init(&r->live);

	for (off = hdr_size; off < fw->size; off += rec_size, i++) {
		memcpy(&rec, fw->data + off, sizeof(rec));
		ret = dt_replay_rec(r, &rec);
		if (ret) {
			dt_fail(t, "record%zu:%d", i, ret);
			break;
		}
		if (!(i % 64))
			cond_resched();
	}
	if (!ret && r->in_call)
		dt_fail(t, "ends_inside_a_scatterlist");

	/* What the trace left mapped goes now: the run must end with nothing live. */
	xa_for_each(&r->live, id, b) {
		xa_erase(&r->live, id);
		r->live_at_end++;
		dt_rbuf_unmap(r, b);
	}
	xa_destroy(&r->live);
}

/**
 * dt_run_replay() - replay the trace in firmware file @name
 * @t: the test context
 * @name: firmware name (relative to /lib/firmware)
 * @verify_every: move data through the device for every n-th call; 0 = none
 *
 * Prints the usual case lines and summary, and one line
 * PEGPU_REPLAY result=PASS|FAIL events=N calls=N single=N sg=N coherent=N
 * segments=N unmaps=N map_failures=N skipped_failed=N unknown_unmaps=N
 * dup_ids=N drops=N clamped=N verified=N live_at_end=N arena_mib=N
 */
void dt_run_replay(struct dt_ctx *t, const char *name, unsigned int verify_every)
{
	const struct firmware *fw = NULL;
	struct dt_replay *r;
	unsigned int i;
	int ret;

	dt_begin_run(t);
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (dt_case_ring(t) && r) {
		dt_case_begin(t, "replay");
		r->t = t;
		r->verify_every = verify_every;
		ret = request_firmware(&fw, name, t->dev);
		if (ret)
			dt_fail(t, "request_firmware_%s:%d", name, ret);
		else
			dt_replay_fw(r, fw);
		release_firmware(fw);
		dt_note(t, "calls:%llu,verified:%llu", r->calls, r->verified);
		dt_case_end(t);
		pr_info("PEGPU_REPLAY result=%s events=%llu calls=%llu single=%llu sg=%llu coherent=%llu segments=%llu unmaps=%llu map_failures=%llu skipped_failed=%llu unknown_unmaps=%llu dup_ids=%llu drops=%llu clamped=%llu verified=%llu live_at_end=%llu arena_mib=%llu\n",
			t->failed ? "FAIL" : "PASS", r->events, r->calls,
			r->kinds[PEGPU_TK_SINGLE], r->kinds[PEGPU_TK_SG],
			r->kinds[PEGPU_TK_COHERENT], r->segments, r->unmaps, r->failures,
			r->skipped_failed, r->unknown_unmaps, r->dup_ids, r->drops, r->clamped,
			r->verified, r->live_at_end, (r->ngran * r->granule) >> 20);
	} else if (!r) {
		pr_info("PEGPU_REPLAY result=FAIL events=0 detail=no_memory\n");
	}
	dt_case_faults(t, false);
	dt_case_teardown(t);
	dt_summary(t);
	if (r) {
		for (i = 0; i < DT_GRANULES_MAX; i++)
			if (r->gran[i])
				__free_pages(r->gran[i], r->order);
		kfree(r->seg);
		kfree(r);
	}
}
