// SPDX-License-Identifier: MIT
/*
 * Moving slab pages between size classes (memcached's slab reassignment).
 *
 * Once -m is handed out, a class that has no free chunk and nothing of its
 * own to evict would refuse every item for good, whatever the other
 * classes hold.  Here it takes a page from another class instead: the
 * page's items are evicted (as the LRU would), its free chunks leave the
 * old class's free list and the page is carved again for the new class.
 * A page with an item that an output queue is still sending (or that an
 * append or incr holds) is left alone.  Everything involved (chunk
 * headers, free lists, the cursor) is in the store region, so a move
 * needs no state of its own across a live update.
 */
#include <stdio.h>
#include <string.h>

#include "kv.h"

/*
 * Whether any chunk of the page is held: being sent, or allocated and not
 * (or no longer) linked, i.e. an item being built or replaced; a chunk of
 * a chain counts as its item.
 */
static bool page_busy(uint64_t base, uint32_t size)
{
	for (uint64_t o = 0; o + size <= store->page_size; o += size) {
		const struct kv_item *it =
			(const struct kv_item *)(store_base + base + o);

		if (it->iflags & ITEM_SLABBED)
			continue;
		if (it->iflags & ITEM_CHUNK)
			it = item_at(it->prev);
		if (!it || it->refcount || !(it->iflags & ITEM_LINKED))
			return true;
	}
	return false;
}

/* Take the page's chunks (all free by now) off the class's free list. */
static void unlist_page(struct kv_class *c, uint64_t base)
{
	uint64_t *link = &c->free_head;

	while (*link) {
		struct kv_item *it = item_at(*link);

		if (!it) { /* a broken list ends here */
			*link = 0;
			break;
		}
		if (*link >= base && *link < base + store->page_size) {
			*link = it->h_next;
			if (c->nfree)
				c->nfree--;
		} else {
			link = &it->h_next;
		}
	}
}

/**
 * slabs_rebalance() - move a page from another class to class @dst
 * @dst: the class that needs a chunk.
 *
 * Looks at every used page once at most, from where the last move
 * stopped, so that the pages taken go round all classes.
 *
 * Return: true if @dst got a page.
 */
bool slabs_rebalance(unsigned dst)
{
	int64_t now = kv_now();

	for (uint64_t tries = 0; tries < store->pages_used; tries++) {
		uint64_t p = store->rebalance_next++ % store->pages_used;
		uint64_t base = store->slab_off + p * store->page_size;
		struct kv_item *first = item_at(base);
		struct kv_class *src;
		unsigned from;

		if (!first || first->clsid >= store->nclasses ||
		    first->clsid == dst)
			continue;
		from = first->clsid;
		src = &store->cls[from];
		if (src->npages < 1 || page_busy(base, src->size))
			continue;
		for (uint64_t o = 0; o + src->size <= store->page_size;
		     o += src->size) {
			struct kv_item *it =
				(struct kv_item *)(store_base + base + o);

			/* A chunk goes with its whole item. */
			if (it->iflags & ITEM_CHUNK)
				it = item_at(it->prev);
			if (!it || !(it->iflags & ITEM_LINKED))
				continue;
			if (it->exptime && it->exptime <= now) {
				store->stats.reclaimed++;
				src->reclaimed++;
			} else {
				store->stats.evictions++;
				src->evictions++;
			}
			item_unlink(it);
		}
		unlist_page(src, base);
		src->npages--;
		slabs_carve(base, dst);
		store->stats.slabs_moved++;
		kv_log(2, "kvcache: page %llu moved from class %u to %u\n",
		       (unsigned long long)p, from + 1, dst + 1);
		return true;
	}
	return false;
}
