// SPDX-License-Identifier: MIT
/*
 * Allocator of the handover arena.  Blocks tile the arena; each starts with
 * a struct kho_block_header so the next image can walk and check them all.
 * The process keeps a sorted index of the blocks, rebuilt from that walk,
 * and never trusts a pointer found in the arena.  Free memory always reads
 * as zero, so allocation never has to clear anything.  Every change of
 * headers is one struct kho_change (kho_intent.c): a crash in the middle
 * of a split or a merge leaves it whole before or whole after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <luo/kho.h>

#include "crc32c.h"
#include "kho_internal.h"
#include "log.h"

#define KHO_BLOCK_FLAGS (KHO_BLOCK_USED | KHO_BLOCK_CHECKED)

int luo_kho_index_insert(size_t at, const struct kho_block *b)
{
	if (luo_kho.nblocks == luo_kho.blocks_cap) {
		size_t cap = luo_kho.blocks_cap ? luo_kho.blocks_cap * 2 : 64;
		struct kho_block *n = realloc(luo_kho.blocks, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		luo_kho.blocks = n;
		luo_kho.blocks_cap = cap;
	}
	memmove(&luo_kho.blocks[at + 1], &luo_kho.blocks[at],
		(luo_kho.nblocks - at) * sizeof(*b));
	luo_kho.blocks[at] = *b;
	luo_kho.nblocks++;
	return 0;
}

static void index_erase(size_t at)
{
	memmove(&luo_kho.blocks[at], &luo_kho.blocks[at + 1],
		(luo_kho.nblocks - at - 1) * sizeof(luo_kho.blocks[0]));
	luo_kho.nblocks--;
}

/* Index of the block whose header is at @off, or -1. */
static ssize_t index_find(uint64_t off)
{
	size_t lo = 0, hi = luo_kho.nblocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (luo_kho.blocks[mid].off == off)
			return (ssize_t)mid;
		if (luo_kho.blocks[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

struct kho_block *luo_kho_block_by_payload(uint64_t payload_off)
{
	ssize_t i;

	if (payload_off < KHO_DATA_START + KHO_HDR_SIZE)
		return NULL;
	i = index_find(payload_off - KHO_HDR_SIZE);
	if (i < 0 || !(luo_kho.blocks[i].flags & KHO_BLOCK_USED))
		return NULL;
	return &luo_kho.blocks[i];
}

/* Payload alignment: large regions start on (huge) page boundaries. */
static uint64_t alloc_align(uint64_t size)
{
	bool huge = luo_kho.flags & (KHO_ARENA_HUGETLB | KHO_ARENA_THP);

	if (huge && size >= KHO_HUGE_SIZE)
		return KHO_HUGE_SIZE;
	if (size >= (64 << 10))
		return 4096;
	return KHO_BLOCK_ALIGN;
}

/* Where a block for @need bytes with @align would start in free block @b. */
static uint64_t fit_start(const struct kho_block *b, uint64_t align)
{
	return kho_round_up(b->off + KHO_HDR_SIZE, align) - KHO_HDR_SIZE;
}

int luo_kho_free_add(uint64_t off)
{
	if (luo_kho.nfree == luo_kho.free_cap) {
		size_t cap = luo_kho.free_cap ? luo_kho.free_cap * 2 : 16;
		uint64_t *n = realloc(luo_kho.free_offs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		luo_kho.free_offs = n;
		luo_kho.free_cap = cap;
	}
	luo_kho.free_offs[luo_kho.nfree++] = off;
	return 0;
}

static void free_del(uint64_t off)
{
	for (size_t i = 0; i < luo_kho.nfree; i++) {
		if (luo_kho.free_offs[i] == off) {
			luo_kho.free_offs[i] =
				luo_kho.free_offs[--luo_kho.nfree];
			return;
		}
	}
}

/* Best fit among the free blocks; returns the block's index or -1. */
static ssize_t find_fit(uint64_t need, uint64_t align)
{
	ssize_t best = -1;
	uint64_t best_left = UINT64_MAX;

	for (size_t k = 0; k < luo_kho.nfree; k++) {
		ssize_t i = index_find(luo_kho.free_offs[k]);
		const struct kho_block *b;
		uint64_t start, end;

		if (i < 0)
			continue;
		b = &luo_kho.blocks[i];
		start = fit_start(b, align);
		end = b->off + b->size;
		if (start + need > end)
			continue;
		if (end - (start + need) < best_left) {
			best_left = end - (start + need);
			best = i;
		}
	}
	return best;
}

/*
 * Make the arena big enough that its last block can hold the request.  The
 * memfd grows first (a crash then leaves it longer than the header says,
 * which is allowed); the last block's header and the arena header change
 * together.
 */
static ssize_t grow_for(uint64_t need, uint64_t align)
{
	struct kho_block *last = &luo_kho.blocks[luo_kho.nblocks - 1];
	struct kho_block tail;
	struct kho_change c;
	uint64_t from, old_size = luo_kho.size;
	int err;

	from = (last->flags & KHO_BLOCK_USED) ? luo_kho.size : last->off;
	tail.off = from;
	err = luo_kho_arena_grow(
		kho_round_up(fit_start(&tail, align) + need, KHO_HUGE_SIZE));
	if (err)
		return err;
	if (last->flags & KHO_BLOCK_USED) {
		tail = (struct kho_block){.off = old_size,
					  .size = luo_kho.size - old_size};
		err = luo_kho_index_insert(luo_kho.nblocks, &tail);
		err = err ?: luo_kho_free_add(tail.off);
		if (err) {
			if (luo_kho.blocks[luo_kho.nblocks - 1].off == old_size)
				luo_kho.nblocks--;
			/* The header never said more. */
			luo_kho.size = old_size;
			return err;
		}
	} else {
		last->size = luo_kho.size - last->off;
	}
	luo_kho_change_begin(&c);
	luo_kho_change_block(&c, &luo_kho.blocks[luo_kho.nblocks - 1], 0, 0);
	luo_kho_change_header(&c);
	luo_kho_change_commit(&c);
	return (ssize_t)luo_kho.nblocks - 1;
}

int luo_kho_alloc_locked(size_t size, uint32_t flags, void **ptr)
{
	uint64_t align = alloc_align(size);
	uint64_t need = KHO_HDR_SIZE + kho_round_up(size, KHO_BLOCK_ALIGN);
	struct kho_block *b, used, tail, gap;
	struct kho_change c;
	uint64_t start, end;
	ssize_t i;
	int err;

	if (need < size) /* overflow */
		return -ENOMEM;
	i = find_fit(need, align);
	if (i < 0)
		i = grow_for(need, align);
	if (i < 0)
		return (int)i;

	b = &luo_kho.blocks[i];
	start = fit_start(b, align);
	end = b->off + b->size;
	used = (struct kho_block){.off = start,
				  .size = need,
				  .payload_size = size,
				  .flags = KHO_BLOCK_USED | flags};
	tail = (struct kho_block){.off = start + need,
				  .size = end - (start + need)};
	/* Reserve room first so nothing below can fail half way. */
	if (luo_kho.nfree == luo_kho.free_cap) {
		err = luo_kho_free_add(0);
		if (err)
			return err;
		luo_kho.nfree--;
	}
	if (luo_kho.nblocks + 2 > luo_kho.blocks_cap) {
		size_t cap = luo_kho.blocks_cap * 2 + 2;
		struct kho_block *n = realloc(luo_kho.blocks, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		luo_kho.blocks = n;
		luo_kho.blocks_cap = cap;
		b = &luo_kho.blocks[i];
	}
	/* The leading gap, the new block and the tail: one change. */
	luo_kho_change_begin(&c);
	if (start > b->off) {
		gap = *b;
		gap.size = start - b->off; /* leading gap stays free */
		luo_kho_change_block(&c, &gap, 0, 0);
	}
	luo_kho_change_block(&c, &used, 0, 0);
	if (tail.size)
		luo_kho_change_block(&c, &tail, 0, 0);
	luo_kho_change_commit(&c);

	if (start > b->off) {
		b->size = gap.size;
		i++;
		err = luo_kho_index_insert((size_t)i, &used);
	} else {
		free_del(b->off);
		*b = used;
		err = 0;
	}
	if (!err && tail.size) {
		err = luo_kho_index_insert((size_t)i + 1, &tail);
		if (!err)
			luo_kho.free_offs[luo_kho.nfree++] = tail.off;
	}
	if (err) /* cannot happen: room was reserved above */
		return err;
	*ptr = luo_kho.base + start + KHO_HDR_SIZE;
	return 0;
}

int luo_kho_block_free_locked(uint64_t payload_off)
{
	struct kho_block *b = luo_kho_block_by_payload(payload_off);
	struct kho_block merged;
	struct kho_change c;
	bool merge_next, merge_prev;
	uint64_t zero_from, zero_end;
	size_t i;

	if (!b)
		return -EINVAL;
	i = (size_t)(b - luo_kho.blocks);
	merge_next = i + 1 < luo_kho.nblocks &&
		     !(luo_kho.blocks[i + 1].flags & KHO_BLOCK_USED);
	merge_prev = i > 0 && !(luo_kho.blocks[i - 1].flags & KHO_BLOCK_USED);
	/*
	 * One change: the payload zeroed with the headers that go (its own
	 * if the previous block takes it, the next one's if it takes the
	 * next block), then the one header that stays.
	 */
	merged = (struct kho_block){.off = b->off, .size = b->size};
	if (merge_next)
		merged.size += luo_kho.blocks[i + 1].size;
	if (merge_prev) {
		merged.off = luo_kho.blocks[i - 1].off;
		merged.size += luo_kho.blocks[i - 1].size;
	}
	zero_from = merge_prev ? b->off : payload_off;
	zero_end = b->off + b->size + (merge_next ? KHO_HDR_SIZE : 0);
	luo_kho_change_begin(&c);
	luo_kho_change_zero(&c, zero_from, zero_end - zero_from);
	luo_kho_change_block(&c, &merged, 0, 0);
	luo_kho_change_commit(&c);

	b->flags = 0;
	b->payload_size = 0;
	b->checked_size = 0;
	b->incoming = false;
	b->ahead = false;
	if (merge_next) {
		free_del(luo_kho.blocks[i + 1].off);
		b->size += luo_kho.blocks[i + 1].size;
		index_erase(i + 1);
	}
	if (merge_prev) {
		luo_kho.blocks[i - 1].size += b->size;
		index_erase(i);
	} else if (luo_kho_free_add(b->off)) {
		/* The block stays free but unused until the next boot walk. */
		pr_warn("out of memory tracking a freed handover block");
	}
	return 0;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Map a large metadata range in one call instead of a fault per page. */
static void populate(uint64_t off, uint64_t len)
{
	uint64_t lo = off / 4096 * 4096;

	if (len >= (16 << 10))
		madvise(luo_kho.base + lo, off + len - lo, MADV_POPULATE_READ);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/*
 * Walk and check every block of an incoming arena, building the index.
 * Nothing in a block's payload is read except for checked metadata.
 */
int luo_kho_walk_incoming(char *why, size_t whylen)
{
	uint64_t off = KHO_DATA_START;

	while (off < luo_kho.size) {
		const struct kho_block_header *h;
		struct kho_block b;

		if (luo_kho.size - off < KHO_HDR_SIZE)
			return luo_reason(
				why, whylen, -EBADMSG,
				"block at %#llx runs past the arena end %#llx",
				(unsigned long long)off,
				(unsigned long long)luo_kho.size);
		h = kho_block_hdr(off);
		if (h->magic != KHO_BLOCK_MAGIC ||
		    luo_crc_mismatch(h->header_crc,
				     luo_kho_block_header_crc(off, h)))
			return luo_reason(why, whylen, -EBADMSG,
					  "block header at %#llx is corrupt",
					  (unsigned long long)off);
		if (h->size < KHO_HDR_SIZE || h->size % KHO_BLOCK_ALIGN ||
		    h->size > luo_kho.size - off ||
		    (h->flags & ~KHO_BLOCK_FLAGS) ||
		    h->payload_size > h->size - KHO_HDR_SIZE ||
		    h->checked_size > h->payload_size)
			return luo_reason(
				why, whylen, -EBADMSG,
				"block at %#llx has bad size %#llx or flags %#x",
				(unsigned long long)off,
				(unsigned long long)h->size, h->flags);
		if (!(h->flags & KHO_BLOCK_USED) &&
		    (h->payload_size || h->flags || h->checked_size ||
		     h->payload_crc))
			return luo_reason(why, whylen, -EBADMSG,
					  "free block at %#llx claims contents",
					  (unsigned long long)off);
		if (!(h->flags & KHO_BLOCK_CHECKED) &&
		    (h->checked_size || h->payload_crc))
			return luo_reason(
				why, whylen, -EBADMSG,
				"block at %#llx is not flagged checked but has checked_size or payload_crc set",
				(unsigned long long)off);
		if (!all_zero(h->reserved, sizeof(h->reserved)))
			return luo_reason(
				why, whylen, -EBADMSG,
				"block header at %#llx has reserved bytes set",
				(unsigned long long)off);
		if (h->flags & KHO_BLOCK_CHECKED)
			populate(off + KHO_HDR_SIZE, h->checked_size);
		if ((h->flags & KHO_BLOCK_CHECKED) &&
		    luo_crc_mismatch(
			    luo_crc32c(0, luo_kho.base + off + KHO_HDR_SIZE,
				       h->checked_size),
			    h->payload_crc))
			return luo_reason(
				why, whylen, -EBADMSG,
				"metadata block at %#llx fails its checksum",
				(unsigned long long)off);
		b = (struct kho_block){.off = off,
				       .size = h->size,
				       .payload_size = h->payload_size,
				       .checked_size = h->checked_size,
				       .flags = h->flags,
				       .incoming = h->flags & KHO_BLOCK_USED};
		if (luo_kho_index_insert(luo_kho.nblocks, &b) ||
		    (!(h->flags & KHO_BLOCK_USED) && luo_kho_free_add(off)))
			return luo_reason(why, whylen, -ENOMEM,
					  "out of memory indexing the arena");
		off += h->size;
	}
	return 0;
}

int luo_kho_enter_op(const char *op)
{
	pthread_mutex_lock(&luo_kho_lock);
	if (!luo_kho_ready()) {
		pthread_mutex_unlock(&luo_kho_lock);
		pr_err("%s: there is no handover arena: call luo_init() first",
		       op);
		return -ENODEV;
	}
	return 0;
}

int luo_kho_alloc_meta(size_t size, void **ptr)
{
	int err = kho_enter();

	if (err)
		return err;
	err = luo_kho_alloc_locked(size, KHO_BLOCK_CHECKED, ptr);
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

int kho_alloc_preserve(size_t size, void **ptr)
{
	int err;

	if (!size || !ptr)
		return -EINVAL;
	err = kho_enter();
	if (err)
		return err;
	if (luo_kho.frozen)
		err = -EBUSY;
	else
		err = luo_kho_alloc_locked(size, 0, ptr);
	pthread_mutex_unlock(&luo_kho_lock);
	if (err == -EBUSY)
		pr_err("kho_alloc_preserve: the handover is frozen; allocate before liveupdate_freeze() or after a cancel");
	return err;
}

uint64_t kho_ptr_to_offset(const void *ptr)
{
	const uint8_t *p = ptr;

	if (!luo_kho.base || p < luo_kho.base + KHO_DATA_START ||
	    p >= luo_kho.base + luo_kho.size)
		return 0;
	return (uint64_t)(p - luo_kho.base);
}

void *kho_offset_to_ptr(uint64_t offset)
{
	if (!luo_kho.base || offset < KHO_DATA_START || offset >= luo_kho.size)
		return NULL;
	return luo_kho.base + offset;
}

/*
 * Claim an incoming block.  @meta is for the library's own structures,
 * which must be checked blocks; they stay "incoming" so finish frees them.
 */
int luo_kho_incoming_block(uint64_t payload_off, size_t min_size, bool meta,
			   void **ptr)
{
	struct kho_block *b = luo_kho_block_by_payload(payload_off);

	if (!b || (meta && !(b->flags & KHO_BLOCK_CHECKED)))
		return -ENOENT;
	/* Metadata is read only where its checksum covers it. */
	if (b->payload_size < min_size || (meta && b->checked_size < min_size))
		return -EINVAL;
	*ptr = luo_kho.base + payload_off;
	return 0;
}

int kho_restore(uint64_t offset, size_t size, void **ptr)
{
	struct kho_block *b;
	int err;

	if (!ptr)
		return -EINVAL;
	err = kho_enter();
	if (err)
		return err;
	b = luo_kho_block_by_payload(offset);
	if (!b) {
		err = -ENOENT;
	} else if (b->payload_size < size) {
		err = -EINVAL;
	} else {
		if (b->incoming && (b->flags & KHO_BLOCK_CHECKED)) {
			/* From now on it is plain user memory. */
			b->flags &= ~KHO_BLOCK_CHECKED;
			luo_kho_block_write(b, 0, 0);
		}
		b->incoming = false;
		*ptr = luo_kho.base + offset;
	}
	pthread_mutex_unlock(&luo_kho_lock);
	if (err == -ENOENT)
		pr_err("kho_restore: no handover allocation starts at offset %#llx",
		       (unsigned long long)offset);
	else if (err == -EINVAL)
		pr_err("kho_restore: allocation at %#llx is smaller than the %zu bytes asked for",
		       (unsigned long long)offset, size);
	return err;
}

/*
 * Close a run of free blocks being merged into one, starting at index @w:
 * zero everything after its header if something in it was just freed,
 * and write its header.
 */
static void release_run_end(size_t w, bool freed)
{
	struct kho_block *b = &luo_kho.blocks[w];
	struct kho_change c;

	if (!freed)
		return;
	luo_kho_change_begin(&c);
	luo_kho_change_zero(&c, b->off + KHO_HDR_SIZE, b->size - KHO_HDR_SIZE);
	luo_kho_change_block(&c, b, 0, 0);
	luo_kho_change_commit(&c);
}

/*
 * One pass over the index, linear in the number of blocks: every
 * unclaimed block becomes free, runs of free blocks merge into one (one
 * zeroing each), and the free list is rebuilt.  Freeing them one by one
 * shifted the index and searched the free list per block: quadratic, 16,000
 * sessions' file blocks took seconds.
 */
void luo_kho_release_unclaimed(void)
{
	size_t freed = 0, w = 0;
	uint64_t bytes = 0;
	bool run_freed = false;

	pthread_mutex_lock(&luo_kho_lock);
	for (size_t r = 0; r < luo_kho.nblocks; r++) {
		struct kho_block b = luo_kho.blocks[r];
		bool now_freed = b.incoming;

		if (now_freed) {
			freed++;
			bytes += b.payload_size;
			b = (struct kho_block){.off = b.off, .size = b.size};
		}
		if (!(b.flags & KHO_BLOCK_USED) && w > 0 &&
		    !(luo_kho.blocks[w - 1].flags & KHO_BLOCK_USED)) {
			/* Joins the free block before it; its header goes. */
			luo_kho.blocks[w - 1].size += b.size;
			run_freed = true;
			continue;
		}
		if (w > 0 && !(luo_kho.blocks[w - 1].flags & KHO_BLOCK_USED))
			release_run_end(w - 1, run_freed);
		run_freed = now_freed;
		luo_kho.blocks[w++] = b;
	}
	if (w > 0 && !(luo_kho.blocks[w - 1].flags & KHO_BLOCK_USED))
		release_run_end(w - 1, run_freed);
	luo_kho.nblocks = w;
	if (freed) {
		luo_kho.nfree = 0;
		for (size_t i = 0; i < w; i++)
			if (!(luo_kho.blocks[i].flags & KHO_BLOCK_USED) &&
			    luo_kho_free_add(luo_kho.blocks[i].off))
				/* Stays free but unused until the next walk. */
				pr_warn("out of memory tracking a freed handover block");
	}
	pthread_mutex_unlock(&luo_kho_lock);
	if (freed)
		pr_info("released %zu unclaimed handover allocations (%llu bytes)",
			freed, (unsigned long long)bytes);
}

int kho_get_stats(struct kho_arena_stats *st)
{
	int err;

	if (!st)
		return -EINVAL;
	err = kho_enter();
	if (err)
		return err;
	memset(st, 0, sizeof(*st));
	st->page_size = luo_kho.page_size;
	st->arena_size = luo_kho.size;
	st->reserved = luo_kho.reserved;
	st->hugetlb = !!(luo_kho.flags & KHO_ARENA_HUGETLB);
	st->thp = !!(luo_kho.flags & KHO_ARENA_THP);
	for (size_t i = 0; i < luo_kho.nblocks; i++) {
		if (!(luo_kho.blocks[i].flags & KHO_BLOCK_USED))
			continue;
		st->allocations++;
		st->allocated += luo_kho.blocks[i].payload_size;
		st->incoming_unclaimed += luo_kho.blocks[i].incoming;
	}
	pthread_mutex_unlock(&luo_kho_lock);
	return 0;
}
