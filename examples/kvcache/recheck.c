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
#include <string.h>

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

enum pass { COUNT, CLEAR, LINK };

static uint64_t per_class[KV_MAX_CLASSES];
/* What the chains hold, counted by the first walk: the counters. */
static uint64_t class_bytes[KV_MAX_CLASSES], all_bytes;
static bool rebuild[KV_MAX_CLASSES];

/* Walk every chain, cutting it where it stops checking out. */
static uint64_t walk(enum pass pass)
{
	uint64_t cut = 0;

	for (uint64_t b = 0; b < store->hash_buckets; b++) {
		uint64_t *next = &buckets()[b];
		unsigned hops = 0;

		while (*next) {
			struct kv_item *it = item_at(*next);
			bool relink = it && it->clsid < KV_MAX_CLASSES &&
				      rebuild[it->clsid];

			if (!item_fits(it, b) || ++hops > MAX_HOPS ||
			    (pass == LINK && relink &&
			     (it->prev || it->next ||
			      store->cls[it->clsid].lru_head == *next))) {
				/* Cut there; a twice-listed item is cut too. */
				*next = 0;
				cut++;
				break;
			}
			if (pass == COUNT) {
				size_t sz = item_mc_total(it->nkey, it->flags,
							  it->nbytes);

				per_class[it->clsid]++;
				class_bytes[it->clsid] += sz;
				all_bytes += sz;
			} else if (pass == CLEAR) {
				if (relink)
					it->prev = it->next = 0;
			} else {
				size_t sz = item_mc_total(it->nkey, it->flags,
							  it->nbytes);

				if (relink)
					lru_link(it);
				store->stats.curr_items++;
				store->stats.bytes += sz;
				store->cls[it->clsid].requested += sz;
			}
			next = &it->h_next;
		}
	}
	return cut;
}

/* A class's LRU holds exactly its hashed items, linked both ways. */
static bool lru_ok(unsigned clsid)
{
	const struct kv_class *c = &store->cls[clsid];
	uint64_t off = c->lru_head, prev = 0, n = 0;

	while (off) {
		struct kv_item *it = item_at(off);

		if (!it || !item_valid(it) || it->clsid != clsid ||
		    !(it->iflags & ITEM_LINKED) || it->prev != prev ||
		    ++n > per_class[clsid])
			return false;
		prev = off;
		off = it->next;
	}
	return n == per_class[clsid] && c->lru_tail == prev && c->nitems == n;
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
	uint64_t cut;
	unsigned rebuilt = 0;

	memset(per_class, 0, sizeof(per_class));
	memset(class_bytes, 0, sizeof(class_bytes));
	all_bytes = 0;
	memset(rebuild, 0, sizeof(rebuild));
	cut = walk(COUNT);
	for (unsigned i = 0; i < store->nclasses; i++) {
		rebuild[i] = !lru_ok(i);
		if (rebuild[i]) {
			/* Its order is lost: the hash's order replaces it. */
			store->cls[i].lru_head = store->cls[i].lru_tail = 0;
			store->cls[i].nitems = 0;
			rebuilt++;
		}
		store->cls[i].requested = 0;
	}
	store->stats.curr_items = 0;
	store->stats.bytes = 0;
	if (!rebuilt) {
		/*
		 * Every LRU list checks out: the chains, cut by the first
		 * walk, are what a linking walk would find (it cuts only at
		 * what the first one cut, or at an item listed twice, which
		 * a sound LRU list rules out), so its counters are the
		 * first walk's.  One walk of every item fewer.
		 */
		for (unsigned i = 0; i < store->nclasses; i++) {
			store->cls[i].requested = class_bytes[i];
			store->stats.curr_items += per_class[i];
		}
		store->stats.bytes = all_bytes;
		free_lists_recheck();
		return cut;
	}
	fprintf(stderr,
		"kvcache: %u LRU lists did not check out after the rollback; rebuilt from the hash table\n",
		rebuilt);
	walk(CLEAR);
	cut += walk(LINK);
	free_lists_recheck();
	return cut;
}
