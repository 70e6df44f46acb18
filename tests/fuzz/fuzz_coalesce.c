/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the cluster coalescer (lib/coalesce.c) under any
 * sequence of calls a driver could make, against a reference model.
 *
 * The input picks a configuration (page size, cluster size, record and
 * page capacity, which clusters cluster_ok refuses) and then batches of
 * maps resolved the way pegpu_dma.ko resolves them (pgc_map for every
 * buffer, then pgc_map_done / pgc_map_failed per new record with IOVAs
 * that are sometimes unusable, then pgc_dma_addr / pgc_put per buffer),
 * unmaps, rollbacks, lookups, bogus unmaps and drains.  The model predicts
 * every return code, request, dma address and statistic; the target
 * crashes on any difference and whenever pgc_check() fails or a capacity
 * is exceeded.
 */
#include <string.h>

#include "fuzz_common.h"
#include "pegpu/coalesce.h"

#define MAX_REC		32u
#define MAX_BUF		256u
#define MAX_ACTIONS	64u
#define PHYS_BASE	0x40000000ull
#define IOVA_BASE	0x100000000ull

enum mstate { M_FREE = 0, M_PENDING, M_LIVE, M_FAILED };

struct mrec {
	enum mstate state;
	bool cluster;
	uint64_t addr, len, iova, bytes;
	uint32_t refs;
};

struct mbuf {
	bool used;
	struct pgc_ref ref;
	uint64_t phys, len;
};

struct model {
	struct pgc c;
	struct pgc_config cfg;
	void *mem;
	uint64_t pmask;
	uint64_t deny_mask;	/* cluster_ok refuses clusters whose base has these bits */
	struct mrec rec[MAX_REC];
	struct mbuf buf[MAX_BUF];
	uint64_t peak_records, peak_mapped;
};

static bool cluster_ok(void *ctx, uint64_t base, uint64_t size)
{
	const struct model *m = ctx;

	(void)size;
	return !(base & m->deny_mask);
}

/* ---------------------------------------------------------------- */
/* model helpers                                                     */
/* ---------------------------------------------------------------- */

static uint64_t rec_pages(const struct model *m, const struct mrec *r)
{
	return r->len >> m->cfg.page_shift;
}

static uint64_t reserved(const struct model *m)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < m->cfg.max_records; i++)
		if (m->rec[i].state == M_PENDING || m->rec[i].state == M_LIVE)
			n += rec_pages(m, &m->rec[i]);
	return n;
}

/* The record (any state but free) of the cluster at base, or -1. */
static int cluster_rec(const struct model *m, uint64_t base)
{
	uint32_t i;

	for (i = 0; i < m->cfg.max_records; i++)
		if (m->rec[i].state != M_FREE && m->rec[i].cluster && m->rec[i].addr == base)
			return (int)i;
	return -1;
}

/* The live record whose IOVA range holds dma, or -1. */
static int live_at(const struct model *m, uint64_t dma)
{
	uint32_t i;

	for (i = 0; i < m->cfg.max_records; i++) {
		const struct mrec *r = &m->rec[i];

		if (r->state == M_LIVE && dma >= r->iova && dma - r->iova < r->len)
			return (int)i;
	}
	return -1;
}

static bool overlaps_live(const struct model *m, uint64_t iova, uint64_t len)
{
	uint32_t i;

	for (i = 0; i < m->cfg.max_records; i++) {
		const struct mrec *r = &m->rec[i];

		/* last bytes: a mapping may end at the top of the address space */
		if (r->state == M_LIVE && iova <= r->iova + (r->len - 1) &&
		    r->iova <= iova + (len - 1))
			return true;
	}
	return false;
}

/* The statistics against the model: cheap, after every call. */
static void check(struct model *m)
{
	uint64_t live = 0, clus = 0, exact = 0, mapped = 0, refs = 0, bytes = 0, used = 0;
	uint32_t i;

	for (i = 0; i < m->cfg.max_records; i++) {
		const struct mrec *r = &m->rec[i];

		if (r->state == M_FREE)
			continue;
		used++;
		refs += r->refs;
		bytes += r->bytes;
		if (r->state != M_LIVE)
			continue;
		live++;
		mapped += r->len;
		if (r->cluster)
			clus++;
		else
			exact++;
	}
	if (live > m->peak_records)
		m->peak_records = live;
	if (mapped > m->peak_mapped)
		m->peak_mapped = mapped;
	PROP(m->c.st.live_records == live && m->c.st.live_clusters == clus &&
	     m->c.st.live_exact == exact, "live records %llu/%llu/%llu, model %llu/%llu/%llu",
	     (unsigned long long)m->c.st.live_records, (unsigned long long)m->c.st.live_clusters,
	     (unsigned long long)m->c.st.live_exact, (unsigned long long)live,
	     (unsigned long long)clus, (unsigned long long)exact);
	PROP(m->c.st.mapped_bytes == mapped, "mapped bytes");
	PROP(m->c.st.live_buffers == refs && m->c.st.buffer_bytes == bytes,
	     "buffers %llu/%llu, model %llu/%llu", (unsigned long long)m->c.st.live_buffers,
	     (unsigned long long)m->c.st.buffer_bytes, (unsigned long long)refs,
	     (unsigned long long)bytes);
	PROP(m->c.pages_reserved == reserved(m), "pages reserved");
	PROP(m->c.pages_reserved <= m->cfg.max_pages && used <= m->cfg.max_records,
	     "over a capacity");
	PROP(m->c.st.peak_records == m->peak_records &&
	     m->c.st.peak_mapped_bytes == m->peak_mapped, "peaks");
}

/* ---------------------------------------------------------------- */
/* operations                                                        */
/* ---------------------------------------------------------------- */

static int pick_live_buf(struct model *m, struct fz *f);

/* Mostly a small area so clusters fill up; sometimes next to a held buffer. */
static uint64_t pick_phys(struct model *m, struct fz *f)
{
	int b;

	switch (fz_u8(f) % 10) {
	case 8: case 9:
		b = pick_live_buf(m, f);
		if (b >= 0)
			return m->buf[b].phys + fz_u16(f) - 0x8000;
		return PHYS_BASE;
	case 7:
		return fz_u64(f);
	case 6:
		return UINT64_MAX - fz_u16(f);
	default:
		/* a few MiB, 512-byte steps: clusters fill up and collide */
		return PHYS_BASE + (uint64_t)fz_u16(f) * 512;
	}
}

static uint64_t pick_len(struct fz *f)
{
	switch (fz_u8(f) % 8) {
	case 0: case 1: case 2: case 3:
		return (uint64_t)fz_below(f, 16384) + 1;	/* small buffers */
	case 4: case 5:
		return ((uint64_t)fz_below(f, 64) + 1) * 4096;
	case 6:
		return 0;
	default:
		return fz_u64(f);
	}
}

/*
 * pgc_map with the model's prediction.  Returns the buffer slot used, or
 * -1 if the map (correctly) failed.
 */
static int do_map(struct model *m, struct fz *f, struct pgc_req *req, int *ret_out)
{
	uint64_t phys = pick_phys(m, f), len = pick_len(f), last, addr, size, pages;
	uint64_t base = 0, cmask;
	int want, ret, slot = -1, crec = -1;
	bool cluster = false;
	struct pgc_ref ref;
	uint32_t i, nfree = 0;

	*ret_out = PGC_E_INVAL;
	for (i = 0; i < MAX_BUF; i++)
		if (!m->buf[i].used) {
			slot = (int)i;
			break;
		}
	if (slot < 0)
		return -1;

	/* prediction */
	if (!len || len - 1 > UINT64_MAX - phys || ((phys + len - 1) | m->pmask) == UINT64_MAX) {
		want = PGC_E_INVAL;
		goto call;
	}
	last = phys + len - 1;
	addr = phys & ~m->pmask;
	size = (last | m->pmask) + 1 - addr;
	if (m->cfg.cluster_size) {
		cmask = m->cfg.cluster_size - 1;
		base = phys & ~cmask;
		if ((last & ~cmask) == base) {
			crec = cluster_rec(m, base);
			if (crec >= 0) {
				want = m->rec[crec].state == M_FAILED ? PGC_E_FAILED : PGC_HIT;
				goto call;
			}
			cluster = !(base & m->deny_mask);
			if (cluster) {
				addr = base;
				size = m->cfg.cluster_size;
			}
		}
	}
	pages = size >> m->cfg.page_shift;
	for (i = 0; i < m->cfg.max_records; i++)
		nfree += m->rec[i].state == M_FREE;
	want = !nfree || pages > m->cfg.max_pages - reserved(m) ? PGC_E_FULL : PGC_NEW;

call:
	memset(req, 0xa5, sizeof(*req));
	ret = pgc_map(&m->c, phys, len, &ref, req);
	*ret_out = ret;
	PROP(ret == want, "pgc_map(0x%llx, %llu) = %d, model %d", (unsigned long long)phys,
	     (unsigned long long)len, ret, want);
	if (ret < 0)
		return -1;
	PROP(ref.rec < m->cfg.max_records && ref.len == len, "bad ref");
	if (ret == PGC_HIT) {
		struct mrec *r = &m->rec[crec];

		PROP(ref.rec == (uint32_t)crec && ref.offset == phys - base, "hit on wrong record");
		r->refs++;
		r->bytes += len;
	} else {
		struct mrec *r = &m->rec[ref.rec];

		PROP(r->state == M_FREE, "NEW reuses a busy record %u", ref.rec);
		PROP(req->rec == ref.rec && req->addr == addr && req->len == size,
		     "request 0x%llx+0x%llx, model 0x%llx+0x%llx", (unsigned long long)req->addr,
		     (unsigned long long)req->len, (unsigned long long)addr,
		     (unsigned long long)size);
		PROP(ref.offset == phys - addr, "offset");
		r->state = M_PENDING;
		r->cluster = cluster;
		r->addr = addr;
		r->len = size;
		r->refs = 1;
		r->bytes = len;
	}
	m->buf[slot].used = true;
	m->buf[slot].ref = ref;
	m->buf[slot].phys = phys;
	m->buf[slot].len = len;
	return slot;
}

static uint64_t pick_iova(struct model *m, struct fz *f, uint64_t len)
{
	switch (fz_u8(f) % 10) {
	case 0:
		return IOVA_BASE + fz_u16(f);			/* unaligned, mostly */
	case 1:
		return UINT64_MAX - len + 1 - (m->pmask + 1) * fz_u8(f);	/* at the top */
	case 2:
		return fz_u64(f);
	default:
		/* a small window: overlaps with live mappings happen */
		return IOVA_BASE + ((uint64_t)fz_u8(f) << m->cfg.page_shift);
	}
}

static void drop_ref_model(struct model *m, uint32_t rec, uint64_t len, int ret,
			   const struct pgc_req *req)
{
	struct mrec *r = &m->rec[rec];
	uint64_t sub = len < r->bytes ? len : r->bytes;
	int want;

	r->bytes -= sub;
	r->refs--;
	if (r->refs) {
		want = PGC_KEEP;
	} else if (r->state == M_LIVE) {
		want = PGC_RELEASE;
		PROP(req->iova == r->iova && req->len == r->len && req->addr == r->addr,
		     "release request");
	} else {
		want = 0;
	}
	PROP(ret == want, "drop returned %d, model %d", ret, want);
	if (!r->refs)
		memset(r, 0, sizeof(*r));
}

/* A batch of maps resolved the way the kmod's map_sg resolves them. */
static void act_batch(struct model *m, struct fz *f)
{
	uint32_t n = fz_below(f, 8) + 1, i, k, nreq = 0;
	struct pgc_req reqs[8];
	int slots[8], ret;
	uint64_t dma;

	for (i = 0; i < n; i++) {
		struct pgc_req req;

		slots[i] = do_map(m, f, &req, &ret);
		if (ret == PGC_NEW)
			reqs[nreq++] = req;
		check(m);
	}
	for (k = 0; k < nreq; k++) {
		struct mrec *r = &m->rec[reqs[k].rec];

		if (r->state != M_PENDING)
			continue;
		if (fz_u8(f) % 8 == 0) {
			pgc_map_failed(&m->c, reqs[k].rec);
			r->state = M_FAILED;
		} else {
			uint64_t iova = pick_iova(m, f, r->len);
			bool ok = !(iova & m->pmask) && r->len - 1 <= UINT64_MAX - iova &&
				  !overlaps_live(m, iova, r->len);

			pgc_map_done(&m->c, reqs[k].rec, iova);
			r->state = ok ? M_LIVE : M_FAILED;
			r->iova = ok ? iova : 0;
		}
		/* a second report for the same record is ignored */
		if (fz_u8(f) % 16 == 0)
			pgc_map_failed(&m->c, reqs[k].rec);
		check(m);
	}
	/*
	 * Maps between the outcome and the rollback: a failed cluster must
	 * refuse new buffers (PGC_E_FAILED) until its references are put.
	 */
	while (fz_u8(f) % 4 == 0) {
		struct pgc_req req;
		int s = do_map(m, f, &req, &ret);

		if (ret == PGC_NEW) {
			pgc_map_failed(&m->c, req.rec);
			m->rec[req.rec].state = M_FAILED;
		}
		if (s >= 0) {
			/* roll it back at once, as a failed map_sg would */
			struct pgc_req rq;

			ret = pgc_put(&m->c, &m->buf[s].ref, &rq);
			drop_ref_model(m, m->buf[s].ref.rec, m->buf[s].len, ret, &rq);
			m->buf[s].used = false;
		}
		check(m);
	}
	for (i = 0; i < n; i++) {
		struct mbuf *b;
		struct mrec *r;
		bool ok;

		if (slots[i] < 0)
			continue;
		b = &m->buf[slots[i]];
		r = &m->rec[b->ref.rec];
		ok = pgc_dma_addr(&m->c, &b->ref, &dma);
		PROP(ok == (r->state == M_LIVE), "dma_addr says %d for state %d", ok, r->state);
		if (ok) {
			uint64_t phys = 0;

			PROP(dma == r->iova + b->ref.offset, "dma address");
			PROP(pgc_lookup(&m->c, dma, &phys) && phys == b->phys, "lookup");
			PROP(pgc_lookup(&m->c, dma + b->len - 1, &phys) &&
			     phys == b->phys + b->len - 1, "lookup of the last byte");
			continue;
		}
		/* its record failed: drop the reference, as the kmod does */
		{
			struct pgc_req req;

			ret = pgc_put(&m->c, &b->ref, &req);
			drop_ref_model(m, b->ref.rec, b->len, ret, &req);
			b->used = false;
		}
		check(m);
	}
}

static int pick_live_buf(struct model *m, struct fz *f)
{
	uint32_t start = fz_below(f, MAX_BUF), i;

	for (i = 0; i < MAX_BUF; i++) {
		uint32_t s = (start + i) % MAX_BUF;

		if (m->buf[s].used)
			return (int)s;
	}
	return -1;
}

static void act_unmap(struct model *m, struct fz *f, bool put)
{
	int s = pick_live_buf(m, f), ret;
	struct pgc_req req;
	struct mbuf *b;
	uint64_t dma;

	if (s < 0)
		return;
	b = &m->buf[s];
	PROP(pgc_dma_addr(&m->c, &b->ref, &dma), "a held buffer has no dma address");
	memset(&req, 0, sizeof(req));
	if (put) {
		ret = pgc_put(&m->c, &b->ref, &req);
		drop_ref_model(m, b->ref.rec, b->len, ret, &req);
	} else {
		const struct mrec *r = &m->rec[b->ref.rec];
		/* callers may pass another length, as long as it stays inside the mapping */
		uint64_t room = r->iova + (r->len - 1) - dma + 1;
		uint64_t len = fz_u8(f) % 4 ? b->len : (uint64_t)fz_u32(f) % room + 1;

		ret = pgc_unmap(&m->c, dma, len, &req);
		drop_ref_model(m, b->ref.rec, len, ret, &req);
	}
	b->used = false;
}

/* Unmaps of addresses the driver never handed out change nothing. */
static void act_bogus_unmap(struct model *m, struct fz *f)
{
	uint64_t dma = fz_u8(f) % 2 ? IOVA_BASE + fz_u32(f) : fz_u64(f);
	uint64_t len = pick_len(f);
	struct pgc_req req;
	struct pgc_ref ref;
	int r, ret, b = pick_live_buf(m, f);

	/* inside a live mapping but running past its end */
	if (b >= 0 && fz_u8(f) % 2) {
		const struct mrec *mr = &m->rec[m->buf[b].ref.rec];

		dma = mr->iova + fz_u32(f) % mr->len;
		len = mr->iova + mr->len - dma + 1 + fz_u16(f);
	}
	r = live_at(m, dma);

	if (r >= 0 && len && len - 1 <= UINT64_MAX - dma &&
	    dma + len - 1 <= m->rec[r].iova + m->rec[r].len - 1)
		return;		/* that would be a real unmap of some buffer in it */
	ret = pgc_unmap(&m->c, dma, len, &req);
	PROP(ret == PGC_E_NOENT, "bogus unmap returned %d", ret);
	/* a put of a handle that holds nothing */
	ref.rec = fz_u32(f);
	ref.offset = 0;
	ref.len = 1;
	if (ref.rec >= m->cfg.max_records || m->rec[ref.rec].state == M_FREE)
		PROP(pgc_put(&m->c, &ref, &req) == PGC_E_INVAL, "bogus put");
}

struct visit {
	const struct model *m;
	uint32_t n;
};

static void visit(void *ctx, enum pgc_kind kind, uint64_t iova, uint64_t phys, uint64_t len,
		  uint32_t refs)
{
	struct visit *v = ctx;
	int r = live_at(v->m, iova);

	PROP(r >= 0 && v->m->rec[r].iova == iova && v->m->rec[r].addr == phys &&
	     v->m->rec[r].len == len && v->m->rec[r].refs == refs &&
	     (kind == PGC_KIND_CLUSTER) == v->m->rec[r].cluster, "for_each record");
	v->n++;
}

static void act_for_each(struct model *m)
{
	struct visit v = { m, 0 };

	pgc_for_each(&m->c, visit, &v);
	PROP(v.n == m->c.st.live_records, "for_each count");
}

/* Unload: every live record is unmapped once, then the coalescer is empty. */
static void act_drain(struct model *m)
{
	uint64_t live = m->c.st.live_records, n = 0;
	struct pgc_req req;
	int r;

	while (pgc_drain_one(&m->c, &req)) {
		r = live_at(m, req.iova);
		PROP(r >= 0 && m->rec[r].iova == req.iova && m->rec[r].len == req.len,
		     "drain returned something not live");
		m->rec[r].state = M_FAILED;	/* counted once: no longer live in the model */
		PROP(++n <= live, "drain returned too much");
	}
	PROP(n == live, "drain missed records");
	memset(m->rec, 0, sizeof(m->rec));
	memset(m->buf, 0, sizeof(m->buf));
	PROP(pgc_check(&m->c), "pgc_check after drain");
	check(m);
	PROP(m->c.st.live_buffers == 0 && m->c.pages_reserved == 0, "drained but not empty");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t cluster_shift[] = { 0, 0, 1, 2, 4, 6 };
	struct model *m = calloc(1, sizeof(*m));
	uint32_t n, nact, cs;
	struct fz f;
	size_t msize;

	PROP(m, "out of memory");
	fz_init(&f, data, size);
	m->cfg.page_shift = fz_u8(&f) % 4 ? 14 : 12;
	m->pmask = (1ull << m->cfg.page_shift) - 1;
	cs = fz_below(&f, sizeof(cluster_shift));
	m->cfg.cluster_size = cs ? (m->pmask + 1) << cluster_shift[cs] : 0;
	m->cfg.max_records = fz_below(&f, MAX_REC) + 1;
	m->cfg.max_pages = fz_below(&f, 256) + 1;
	m->deny_mask = fz_u8(&f) % 4 ? 0 : (uint64_t)1 << (16 + fz_below(&f, 8));
	m->cfg.cluster_ok = cluster_ok;
	m->cfg.ctx = m;

	msize = pgc_mem_size(&m->cfg);
	if (m->cfg.cluster_size && (m->cfg.cluster_size >> m->cfg.page_shift) > m->cfg.max_pages) {
		/* a cluster that can never be mapped is a configuration error */
		PROP(msize == 0, "pgc_mem_size accepted a cluster larger than max_pages");
		free(m);
		return 0;
	}
	PROP(msize, "pgc_mem_size rejected a valid config");
	m->mem = aligned_alloc(16, (msize + 15) & ~(size_t)15);
	PROP(m->mem, "out of memory");
	PROP(pgc_init(&m->c, &m->cfg, m->mem) == 0, "pgc_init");
	PROP(pgc_check(&m->c), "pgc_check after init");
	check(m);

	for (n = 0, nact = fz_below(&f, MAX_ACTIONS) + 1; n < nact; n++) {
		switch (fz_u8(&f) % 12) {
		case 0: case 1: case 2: case 3: case 4:
			act_batch(m, &f);
			break;
		case 5: case 6: case 7:
			act_unmap(m, &f, false);
			break;
		case 8:
			act_unmap(m, &f, true);
			break;
		case 9:
			act_bogus_unmap(m, &f);
			break;
		case 10:
			act_for_each(m);
			break;
		default:
			if (fz_u8(&f) % 4 == 0)
				act_drain(m);
			break;
		}
		check(m);
		/* the full table walk, once per action: it dominates the run time */
		PROP(pgc_check(&m->c), "pgc_check failed");
	}
	act_drain(m);
	free(m->mem);
	free(m);
	return 0;
}
