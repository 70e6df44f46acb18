// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dma: the DMA trace recorder.
 *
 * Every map and unmap the managed device's DMA API calls make (single,
 * scatterlist, coherent) becomes records of include/pegpu/dma_trace.h in a
 * bounded ring, allocated once at probe.  Recording happens under pd->lock,
 * in the same lock hold as the coalescer operation it describes: it never
 * sleeps or allocates, works in any context the map paths do, and the
 * records come out in the order the coalescer saw the calls, which is what
 * a replay (lib/dma_replay.c) needs to reproduce its decisions.
 *
 * debugfs `trace` reads the ring as a binary trace file: the 64-byte file
 * header, then the records, consumed as they reach the reader; a read at
 * an empty ring ends the file.  The ring never overwrites: a call whose records do
 * not fit is lost whole (a scatterlist is one unit) and counted, and the
 * next call that fits is preceded by a DROP record carrying the count, so
 * every gap is marked where it happened; a reader that drains the ring
 * gets a DROP for a gap at the very end too.  stats shows the totals.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/ioport.h>
#include <linux/log2.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "pegpu_dma_priv.h"

#define PEGPU_REC_MIN		16u
#define PEGPU_REC_MAX		(1u << 22)	/* 128 MiB of records */
#define PEGPU_REC_STAGE		128u		/* records a read copies per lock hold */
#define PEGPU_REC_SOURCE	"pegpu_dma.ko"

/* System RAM's span, for the file header: a replay treats it as guest RAM. */
static int pegpu_rec_ram(struct resource *res, void *arg)
{
	u64 *span = arg;

	span[0] = min_t(u64, span[0], res->start);
	span[1] = max_t(u64, span[1], res->end + 1);
	return 0;
}

/**
 * pegpu_rec_init() - allocate the trace ring
 * @pd: the instance
 * @records: capacity in records (rounded down to a power of two, at least
 *	     16, at most 4M); 0 = do not record
 *
 * A ring that cannot be allocated leaves recording off with a message: the
 * trace is a diagnostic, not a reason to refuse the device.
 *
 * Return: 0.
 */
int pegpu_rec_init(struct pegpu_dma *pd, unsigned int records)
{
	struct pegpu_dma_trace *tr = &pd->tr;
	u64 span[2] = { U64_MAX, 0 };
	u32 cap;

	memset(tr, 0, sizeof(*tr));
	if (!records)
		return 0;
	cap = rounddown_pow_of_two(clamp(records, PEGPU_REC_MIN, PEGPU_REC_MAX));
	tr->rec = vzalloc(array_size(cap, sizeof(*tr->rec)));
	if (!tr->rec) {
		dev_warn(&pd->pdev->dev, "no memory for a trace ring of %u records: not recording\n",
			 cap);
		return 0;
	}
	tr->mask = cap - 1;
	walk_iomem_res_desc(IORES_DESC_NONE, IORESOURCE_SYSTEM_RAM, 0, U64_MAX, span,
			    pegpu_rec_ram);
	if (span[1] > span[0]) {
		tr->ram_base = span[0];
		tr->ram_size = span[1] - span[0];
	}
	tr->t0 = ktime_get_mono_fast_ns();
	return 0;
}

void pegpu_rec_fini(struct pegpu_dma *pd)
{
	vfree(pd->tr.rec);
	pd->tr.rec = NULL;
}

/*
 * The fast monotonic clock: safe in any context, NMI and suspend included,
 * where ktime_get_ns() may warn.  It may lag a little across CPUs, and
 * readers require non-decreasing timestamps: the lock orders the calls.
 */
static u64 pegpu_rec_now(struct pegpu_dma_trace *tr)
{
	u64 now = ktime_get_mono_fast_ns();
	u64 ts = now > tr->t0 ? now - tr->t0 : 0;

	if (ts < tr->last_ts)
		ts = tr->last_ts;
	tr->last_ts = ts;
	return ts;
}

static void pegpu_rec_put(struct pegpu_dma_trace *tr, u64 ts, u64 id, u64 addr, u64 len,
			  u8 type, u8 kind, u8 dir, u8 flags)
{
	struct pegpu_trace_rec *r = &tr->rec[tr->head & tr->mask];

	r->ts_ns = cpu_to_le64(ts);
	r->id = cpu_to_le64(id);
	r->addr = cpu_to_le64(addr);
	r->len = cpu_to_le32(min_t(u64, len, U32_MAX));
	r->type = type;
	r->kind = kind;
	r->dir = dir;
	r->flags = flags;
	tr->head++;
}

/* The DROP record for the events lost since the last one; room is reserved. */
static void pegpu_rec_put_drop(struct pegpu_dma_trace *tr, u64 ts)
{
	pegpu_rec_put(tr, ts, 0, tr->lost, 0, PEGPU_TR_DROP, 0, 0, 0);
	tr->lost = 0;
}

/*
 * Make room for one call's @n records (and the DROP that must precede them
 * after a gap) and return its timestamp; or count the call as lost and
 * return false.
 */
static bool pegpu_rec_begin(struct pegpu_dma *pd, u64 n, u64 *ts)
{
	struct pegpu_dma_trace *tr = &pd->tr;
	u64 free = (u64)tr->mask + 1 - (tr->head - tr->tail);

	lockdep_assert_held(&pd->lock);
	if (n + (tr->lost ? 1 : 0) > free) {
		tr->lost += n;
		tr->dropped += n;
		return false;
	}
	*ts = pegpu_rec_now(tr);
	if (tr->lost)
		pegpu_rec_put_drop(tr, *ts);
	tr->recorded += n;
	return true;
}

/**
 * pegpu_rec_map() - record a single or coherent map
 * @pd: the instance, lock held
 * @kind: PEGPU_TK_SINGLE or PEGPU_TK_COHERENT
 * @id: the dma address handed out (0 if @failed)
 * @phys: guest-physical start
 * @len: bytes; a mapping of 4 GiB or more does not fit a record and is
 *	 counted as lost
 * @dir: PEGPU_DIR_*
 * @failed: the call returned an error
 */
void pegpu_rec_map(struct pegpu_dma *pd, u8 kind, u64 id, u64 phys, u64 len, u8 dir,
		   bool failed)
{
	struct pegpu_dma_trace *tr = &pd->tr;
	u64 ts;

	if (!tr->rec || !len)
		return;
	if (len > U32_MAX) {
		tr->lost++;
		tr->dropped++;
		return;
	}
	if (!pegpu_rec_begin(pd, 1, &ts))
		return;
	pegpu_rec_put(tr, ts, failed ? 0 : id, phys, len, PEGPU_TR_MAP, kind, dir,
		      failed ? PEGPU_TF_FAILED : 0);
}

/**
 * pegpu_rec_sg() - record a map_sg call: a MAP and a SEG per further entry
 * @pd: the instance, lock held
 * @sgl: the list as the caller passed it (entry lengths and pages)
 * @nents: its entries
 * @dir: PEGPU_DIR_*
 * @failed: the call returned an error (the id is then 0)
 *
 * The whole list is one unit: it is recorded or lost as a whole.  A list
 * with an empty entry is invalid (map_sg refused it) and not recorded.
 */
void pegpu_rec_sg(struct pegpu_dma *pd, struct scatterlist *sgl, int nents, u8 dir,
		  bool failed)
{
	struct pegpu_dma_trace *tr = &pd->tr;
	struct scatterlist *s;
	u64 ts, id;
	int i;

	if (!tr->rec || nents <= 0)
		return;
	for_each_sg(sgl, s, nents, i)
		if (!s->length)
			return;
	if (!pegpu_rec_begin(pd, nents, &ts))
		return;
	id = failed ? 0 : sg_dma_address(sgl);
	for_each_sg(sgl, s, nents, i)
		pegpu_rec_put(tr, ts, id, sg_phys(s), s->length,
			      i ? PEGPU_TR_SEG : PEGPU_TR_MAP, PEGPU_TK_SG, dir,
			      (i + 1 < nents ? PEGPU_TF_MORE : 0) |
			      (failed && !i ? PEGPU_TF_FAILED : 0));
}

/**
 * pegpu_rec_unmap() - record an unmap or free
 * @pd: the instance, lock held
 * @kind: the kind of the call that mapped it
 * @id: the dma address being unmapped (an sg list's first)
 * @len: the buffer's bytes (saturated at 4 GiB - 1)
 * @dir: PEGPU_DIR_*
 */
void pegpu_rec_unmap(struct pegpu_dma *pd, u8 kind, u64 id, u64 len, u8 dir)
{
	struct pegpu_dma_trace *tr = &pd->tr;
	u64 ts;

	if (!tr->rec || !pegpu_rec_begin(pd, 1, &ts))
		return;
	pegpu_rec_put(tr, ts, id, id, len, PEGPU_TR_UNMAP, kind, dir, 0);
}

/* ---- debugfs `trace` ---- */

struct pegpu_rec_reader {
	struct pegpu_dma *pd;
	size_t hdr_off;			/* bytes of the header this reader has had */
	struct pegpu_trace_file_hdr hdr;
	struct pegpu_trace_rec stage[PEGPU_REC_STAGE];
};

static int pegpu_rec_open(struct inode *inode, struct file *file)
{
	struct pegpu_dma *pd = inode->i_private;
	struct pegpu_trace_file_hdr *h;
	struct pegpu_rec_reader *r;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->pd = pd;
	h = &r->hdr;
	BUILD_BUG_ON(sizeof(*h) != 64 || sizeof(struct pegpu_trace_rec) != 32);
	h->magic = cpu_to_le32(PEGPU_TRACE_MAGIC);
	h->major = cpu_to_le16(PEGPU_TRACE_VERSION_MAJOR);
	h->minor = cpu_to_le16(PEGPU_TRACE_VERSION_MINOR);
	h->hdr_size = cpu_to_le32(sizeof(*h));
	h->rec_size = cpu_to_le32(sizeof(struct pegpu_trace_rec));
	h->ram_base = cpu_to_le64(pd->tr.ram_base);
	h->ram_size = cpu_to_le64(pd->tr.ram_size);
	memcpy(h->source, PEGPU_REC_SOURCE, sizeof(PEGPU_REC_SOURCE));
	file->private_data = r;
	return stream_open(inode, file);
}

/*
 * Copy up to @max records from the read position without consuming them.
 * A drained ring with a gap at its end gets its DROP record now: the
 * reader may stop here.
 */
static u32 pegpu_rec_peek(struct pegpu_dma *pd, struct pegpu_trace_rec *buf, u32 max)
{
	struct pegpu_dma_trace *tr = &pd->tr;
	unsigned long flags;
	u32 n, i;

	spin_lock_irqsave(&pd->lock, flags);
	if (tr->head == tr->tail && tr->lost)
		pegpu_rec_put_drop(tr, pegpu_rec_now(tr));
	n = min_t(u64, max, tr->head - tr->tail);
	for (i = 0; i < n; i++)
		buf[i] = tr->rec[(tr->tail + i) & tr->mask];
	spin_unlock_irqrestore(&pd->lock, flags);
	return n;
}

/* Consume @n records the reader has delivered. */
static void pegpu_rec_consume(struct pegpu_dma *pd, u32 n)
{
	unsigned long flags;

	spin_lock_irqsave(&pd->lock, flags);
	pd->tr.tail += n;
	spin_unlock_irqrestore(&pd->lock, flags);
}

/*
 * The file header (each open gets one), then whole records: every file
 * read is a valid trace.  Records leave the ring only once they are in the
 * reader's buffer, so a short read, a faulting buffer or a reader that
 * stops early loses nothing: the next read or open carries on where this
 * one stopped.  Readers take turns (tr_read).
 */
static ssize_t pegpu_rec_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	const size_t rs = sizeof(struct pegpu_trace_rec);
	struct pegpu_rec_reader *r = file->private_data;
	struct pegpu_dma *pd = r->pd;
	size_t done = 0, n, left;
	ssize_t err = 0;
	u32 k;

	if (r->hdr_off < sizeof(r->hdr)) {
		n = min(count, sizeof(r->hdr) - r->hdr_off);
		if (copy_to_user(ubuf, (u8 *)&r->hdr + r->hdr_off, n))
			return -EFAULT;
		r->hdr_off += n;
		done = n;
	}
	if (done < count && count - done < rs)
		return done ? done : -EINVAL;
	mutex_lock(&pd->tr_read);
	while (count - done >= rs) {
		k = pegpu_rec_peek(pd, r->stage, min_t(size_t, (count - done) / rs,
						     ARRAY_SIZE(r->stage)));
		if (!k)
			break;
		left = copy_to_user(ubuf + done, r->stage, k * rs);
		/* Whole records only: a partly copied one stays in the ring. */
		n = (k * rs - left) / rs;
		pegpu_rec_consume(pd, n);
		done += n * rs;
		if (left) {
			err = -EFAULT;
			break;
		}
	}
	mutex_unlock(&pd->tr_read);
	return done ? done : err;
}

/* Only the reader's own memory: the instance may be gone by now. */
static int pegpu_rec_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

const struct file_operations pegpu_rec_fops = {
	.owner		= THIS_MODULE,
	.open		= pegpu_rec_open,
	.read		= pegpu_rec_read,
	.release	= pegpu_rec_release,
};
