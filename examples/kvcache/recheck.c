// SPDX-License-Identifier: MIT
/*
 * The store after a rolled-back update.  The new image wrote into the
 * same store during its trial and may have died anywhere, in the middle
 * of a set included: its acknowledged writes are kept (its clients were
 * told STORED), but nothing is trusted that does not check out.  Every
 * hash chain is walked and cut at an item that is not a whole, linked
 * item of that bucket; the LRU lists and the counters are rebuilt from
 * what the chains hold; a free list is cut where it stops checking out.
 * Chunks the dead image took and never linked stay unused (memory, not
 * data).  See docs/kvcache.md, "Spawn mode and rollback".
 */
#include <stdio.h>

#include "kv.h"

#define MAX_HOPS 1000000

static uint64_t *buckets(void)
{
	return (uint64_t *)(store_base + store->hash_off);
}

static bool item_fits(struct kv_item *it, uint64_t bucket)
{
	return it && item_valid(it) && (it->iflags & ITEM_LINKED) &&
	       !(it->iflags & (ITEM_SLABBED | ITEM_CHUNK)) &&
	       (hash_key(item_key(it), it->nkey) & (store->hash_buckets - 1)) ==
		       bucket;
}

/* Walk every chain; @link true: put each item on its LRU. */
static uint64_t walk(bool link)
{
	uint64_t cut = 0;

	for (uint64_t b = 0; b < store->hash_buckets; b++) {
		uint64_t *next = &buckets()[b];
		unsigned hops = 0;

		while (*next) {
			struct kv_item *it = item_at(*next);

			if (!item_fits(it, b) || ++hops > MAX_HOPS ||
			    (link &&
			     (it->prev || it->next ||
			      store->cls[it->clsid].lru_head == *next))) {
				/* Cut there; a twice-listed item is cut too. */
				*next = 0;
				cut++;
				break;
			}
			if (link) {
				lru_link(it);
				store->stats.curr_items++;
				store->stats.bytes += item_mc_total(
					it->nkey, it->flags, it->nbytes);
				store->cls[it->clsid].requested +=
					item_mc_total(it->nkey, it->flags,
						      it->nbytes);
			} else {
				it->prev = it->next = 0;
			}
			next = &it->h_next;
		}
	}
	return cut;
}

static void free_lists_recheck(void)
{
	for (unsigned i = 0; i < store->nclasses; i++) {
		struct kv_class *c = &store->cls[i];
		uint64_t *next = &c->free_head, n = 0;

		while (*next) {
			struct kv_item *it = item_at(*next);

			if (!it || !item_valid(it) || it->clsid != i ||
			    !(it->iflags & ITEM_SLABBED) ||
			    n > c->perslab * c->npages) {
				fprintf(stderr,
					"kvcache: class %u free list cut after %llu chunks\n",
					i, (unsigned long long)n);
				*next = 0;
				break;
			}
			n++;
			next = &it->h_next;
		}
		c->nfree = n;
	}
}

/**
 * store_recheck() - make the store safe to serve after a rollback
 *
 * Return: hash chains cut (each cut loses the items after it).
 */
uint64_t store_recheck(void)
{
	uint64_t cut = walk(false);

	for (unsigned i = 0; i < store->nclasses; i++) {
		store->cls[i].lru_head = store->cls[i].lru_tail = 0;
		store->cls[i].nitems = 0;
		store->cls[i].requested = 0;
	}
	store->stats.curr_items = 0;
	store->stats.bytes = 0;
	cut += walk(true);
	free_lists_recheck();
	return cut;
}
