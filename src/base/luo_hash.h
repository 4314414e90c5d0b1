/* SPDX-License-Identifier: MIT */
/* A small intrusive hash table keyed by u64, chained, growing. */
#ifndef LUO_SRC_HASH_H
#define LUO_SRC_HASH_H

#include <stddef.h>
#include <stdint.h>

struct luo_hnode {
	struct luo_hnode *next;
	uint64_t key;
};

struct luo_htable {
	struct luo_hnode **buckets;
	size_t nbuckets, count;
};

int luo_hash_add(struct luo_htable *t, struct luo_hnode *n, uint64_t key);
void luo_hash_del(struct luo_htable *t, struct luo_hnode *n);
/* First node with @key, then the next one after @prev with the same key. */
struct luo_hnode *luo_hash_find(const struct luo_htable *t, uint64_t key);
struct luo_hnode *luo_hash_next(const struct luo_hnode *prev);
void luo_hash_free(struct luo_htable *t);
/* Size an empty table for @n entries at once. */
int luo_hash_reserve(struct luo_htable *t, size_t n);

#define luo_hash_entry(node, type, member)                                     \
	((type *)((char *)(node)-offsetof(type, member)))

#endif
