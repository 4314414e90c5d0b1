// SPDX-License-Identifier: MIT
/*
 * The store region and its slab allocator.
 *
 * One kho allocation holds the store header, the hash buckets and the
 * slab pages, so every link between items is an offset from the region's
 * start and the next image uses the items in place.  As in memcached,
 * items go into chunks of size classes growing by a factor (-f, 1.25);
 * the memory limit (-m) is a number of pages handed to classes on demand,
 * and a class with no free chunk and no page left evicts from its LRU.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <luo/luo.h>

#include "kv.h"

struct kv_store *store;
char *store_base;

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/**
 * slabs_create() - allocate and lay out a fresh store region
 * @mem_limit: bytes of slab pages (-m).
 * @item_size_max: largest item, header included (-I); also the page size.
 * @factor: growth factor between chunk sizes.
 * @region: set to the region (zeroed handover memory).
 * @size: set to its size.
 *
 * Return: 0 or a negative errno from kho_alloc_preserve().
 */
int slabs_create(uint64_t mem_limit, uint32_t item_size_max, double factor,
		 void **region, size_t *size)
{
	uint64_t page = align_up(item_size_max, 4096);
	uint64_t npages = mem_limit / page ? mem_limit / page : 1;
	uint64_t buckets = 1 << 16, hash_off, slab_off, total;
	uint64_t csize = KV_CLASS_MIN;
	unsigned n = 0;
	int err;

	while (buckets < mem_limit / 256)
		buckets <<= 1;
	hash_off = align_up(sizeof(struct kv_store), 64);
	slab_off = align_up(hash_off + buckets * 8, 4096);
	total = slab_off + npages * page;
	err = kho_alloc_preserve(total, region);
	if (err)
		return err;
	*size = total;
	store_base = *region;
	store = *region;
	store->magic = KV_STORE_MAGIC;
	store->layout = KV_STORE_LAYOUT;
	store->region_size = total;
	store->hash_off = hash_off;
	store->hash_buckets = buckets;
	store->slab_off = slab_off;
	store->page_size = page;
	store->npages = npages;
	store->mem_limit = npages * page;
	store->item_size_max = item_size_max;
	store->started = kv_now();
	/*
	 * memcached's classes: growing by the factor up to half a page, then
	 * half a page.  Larger items are chains of chunks (chunks.c).
	 */
	while (csize <= (double)(page / 2) / factor && n < KV_MAX_CLASSES - 2) {
		store->cls[n].size = (uint32_t)csize;
		store->cls[n].perslab = (uint32_t)(page / csize);
		n++;
		csize = align_up((uint64_t)(csize * factor), 8);
	}
	store->cls[n].size = (uint32_t)(page / 2);
	store->cls[n].perslab = 2;
	store->nclasses = n + 1;
	return 0;
}

/**
 * slabs_adopt() - check and take over the store region of an earlier image
 * @region: the restored region.
 * @size: its size as restored.
 *
 * Checks the header's numbers against each other and against @size, so
 * that item_at() bounds are right; links between items are checked as
 * they are followed.
 *
 * Return: 0, or -EBADMSG with a message saying what does not fit.
 */
int slabs_adopt(void *region, size_t size)
{
	struct kv_store *s = region;
	const char *why = NULL;

	if (size < sizeof(*s) || s->magic != KV_STORE_MAGIC)
		why = "bad magic";
	else if (s->layout != KV_STORE_LAYOUT)
		why = "unknown layout";
	else if (s->region_size != size)
		why = "region size differs from the allocation";
	else if (!s->hash_buckets ||
		 (s->hash_buckets & (s->hash_buckets - 1)) ||
		 s->hash_off < sizeof(*s) ||
		 s->hash_off + s->hash_buckets * 8 > s->slab_off)
		why = "hash table out of bounds";
	else if (!s->page_size || (s->page_size & 4095) || !s->npages ||
		 s->slab_off > size ||
		 s->npages > (size - s->slab_off) / s->page_size ||
		 s->pages_used > s->npages)
		why = "slab pages out of bounds";
	else if (!s->nclasses || s->nclasses > KV_MAX_CLASSES ||
		 s->item_size_max > s->page_size)
		why = "bad size classes";
	for (unsigned i = 0; !why && i < s->nclasses; i++) {
		const struct kv_class *c = &s->cls[i];

		if (c->size < KV_CLASS_MIN || (c->size & 7) ||
		    c->size > s->page_size ||
		    (i && c->size <= s->cls[i - 1].size) ||
		    c->perslab != s->page_size / c->size)
			why = "bad size class";
	}
	if (why) {
		fprintf(stderr, "kvcache: refusing the handed-over store: %s\n",
			why);
		return -EBADMSG;
	}
	store = s;
	store_base = region;
	return 0;
}

/**
 * slabs_clsid() - the class for an item of @total bytes
 * @total: header, key and value.
 *
 * Return: the class index, or store->nclasses if it is too large.
 */
unsigned slabs_clsid(size_t total)
{
	unsigned lo = 0, hi = store->nclasses;

	if (total > store->item_size_max)
		return store->nclasses;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (store->cls[mid].size >= total)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/**
 * slabs_carve() - give a page to a class: its chunks join the free list
 * @page: the page's region offset.
 * @clsid: the class.
 */
void slabs_carve(uint64_t page, unsigned clsid)
{
	struct kv_class *c = &store->cls[clsid];

	c->npages++;
	/* Highest address first so chunks are handed out in order. */
	for (uint64_t i = c->perslab; i-- > 0;) {
		struct kv_item *it =
			(struct kv_item *)(store_base + page + i * c->size);

		memset(it, 0, sizeof(*it));
		it->clsid = (uint8_t)clsid;
		it->iflags = ITEM_SLABBED;
		it->h_next = c->free_head;
		c->free_head = item_off(it);
		c->nfree++;
	}
}

/* Carve a page never used yet, while -m allows. */
static bool slabs_grow(unsigned clsid)
{
	if (store->pages_used >= store->npages)
		return false;
	slabs_carve(store->slab_off + store->pages_used++ * store->page_size,
		    clsid);
	return true;
}

/**
 * slabs_alloc() - a free chunk of class @clsid
 * @total: bytes needed (for the caller's sanity, not the class choice).
 * @clsid: from slabs_clsid().
 *
 * Return: the chunk, or NULL when the class has none and no page is left.
 */
struct kv_item *slabs_alloc(size_t total, unsigned clsid)
{
	struct kv_class *c;
	struct kv_item *it;

	if (clsid >= store->nclasses || total > store->cls[clsid].size)
		return NULL;
	c = &store->cls[clsid];
	if (!c->free_head && !slabs_grow(clsid))
		return NULL;
	it = item_at(c->free_head);
	if (!it || !(it->iflags & ITEM_SLABBED) || it->clsid != clsid ||
	    !item_valid(it)) {
		/* A broken free list: drop it rather than hand out junk. */
		fprintf(stderr,
			"kvcache: class %u free list is corrupt at %#llx; dropping it\n",
			clsid, (unsigned long long)c->free_head);
		c->free_head = 0;
		c->nfree = 0;
		return NULL;
	}
	c->free_head = it->h_next;
	c->nfree--;
	memset(it, 0, sizeof(*it));
	it->clsid = (uint8_t)clsid;
	return it;
}

/**
 * slabs_free() - give an unlinked item's chunk back to its class
 * @it: the item.
 */
void slabs_free(struct kv_item *it)
{
	struct kv_class *c = &store->cls[it->clsid];

	it->iflags = ITEM_SLABBED;
	it->nkey = 0; /* a free chunk is a valid empty one (item_valid()) */
	it->nbytes = 0;
	it->h_next = c->free_head;
	c->free_head = item_off(it);
	c->nfree++;
}
