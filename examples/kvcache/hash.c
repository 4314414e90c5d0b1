// SPDX-License-Identifier: MIT
/*
 * The hash table: a power-of-two array of region offsets in the store
 * region, chained through kv_item.h_next.  Its size is fixed when the
 * store is created (about one bucket per 256 bytes of -m), which keeps
 * chains short without ever rehashing, so an update never finds a table
 * half way through an expansion.
 */
#include <stdio.h>
#include <string.h>

#include "kv.h"

static uint64_t *buckets(void)
{
	return (uint64_t *)(store_base + store->hash_off);
}

/**
 * hash_key() - 64-bit FNV-1a of a key, finished with a murmur mix
 * @key: the key.
 * @nkey: its length.
 *
 * Return: the hash.
 */
uint64_t hash_key(const char *key, size_t nkey)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < nkey; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* An item good enough to compare keys with: see item_at() for the rest. */
static bool item_sane(const struct kv_item *it)
{
	return (it->iflags & ITEM_LINKED) && item_valid(it);
}

/**
 * hash_find() - the linked item with this key
 * @key: the key.
 * @nkey: its length.
 * @hv: hash_key(key, nkey).
 *
 * Return: the item, or NULL.
 */
struct kv_item *hash_find(const char *key, size_t nkey, uint64_t hv)
{
	uint64_t *b = &buckets()[hv & (store->hash_buckets - 1)], *link = b;
	unsigned hops = 0;
	static unsigned reported;

	for (;;) {
		struct kv_item *it = item_at(*link);

		if (!*link)
			return NULL;
		if (!it || !item_sane(it) || ++hops > 1000000) {
			/* Cut a corrupt chain there; the items after are lost. */
			if (reported++ < 10)
				fprintf(stderr,
					"kvcache: hash bucket %llu: no item at %#llx; chain cut there\n",
					(unsigned long long)(b - buckets()),
					(unsigned long long)*link);
			*link = 0;
			return NULL;
		}
		if (it->nkey == nkey && !memcmp(item_key(it), key, nkey))
			return it;
		link = &it->h_next;
	}
}

/**
 * hash_insert() - add an item at the head of its chain
 * @it: an unlinked item.
 * @hv: its key's hash.
 */
void hash_insert(struct kv_item *it, uint64_t hv)
{
	uint64_t *b = &buckets()[hv & (store->hash_buckets - 1)];

	it->h_next = *b;
	*b = item_off(it);
}

/**
 * hash_remove() - take an item out of its chain
 * @it: a linked item.
 * @hv: its key's hash.
 */
void hash_remove(struct kv_item *it, uint64_t hv)
{
	uint64_t *p = &buckets()[hv & (store->hash_buckets - 1)];
	uint64_t off = item_off(it);

	while (*p) {
		struct kv_item *cur = item_at(*p);

		if (!cur) {
			*p = 0;
			return;
		}
		if (*p == off) {
			*p = it->h_next;
			it->h_next = 0;
			return;
		}
		p = &cur->h_next;
	}
}
