// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>

#include "luo_hash.h"
#include "luo_mem.h"

static size_t slot(const struct luo_htable *t, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)(key & (t->nbuckets - 1));
}

static int resize(struct luo_htable *t, size_t nb)
{
	struct luo_hnode **b = luo_bulk_alloc(nb * sizeof(*b));
	struct luo_htable old = *t;

	if (!b)
		return -ENOMEM;
	t->buckets = b;
	t->nbuckets = nb;
	for (size_t i = 0; i < old.nbuckets; i++) {
		struct luo_hnode *n = old.buckets[i], *next;

		for (; n; n = next) {
			size_t s = slot(t, n->key);

			next = n->next;
			n->next = b[s];
			b[s] = n;
		}
	}
	luo_bulk_free(old.buckets, old.nbuckets * sizeof(*b));
	return 0;
}

int luo_hash_reserve(struct luo_htable *t, size_t n)
{
	/* Sized to @n, not more: an incoming session with one file must not
	 * cost a 64-bucket table (16,000 of them did, in the blackout). */
	size_t nb = 4;

	while (nb < n)
		nb *= 2;
	return nb > t->nbuckets ? resize(t, nb) : 0;
}

int luo_hash_add(struct luo_htable *t, struct luo_hnode *n, uint64_t key)
{
	size_t s;

	if (t->count >= t->nbuckets) {
		int err = resize(t, t->nbuckets ? t->nbuckets * 2 : 64);

		if (err)
			return err;
	}
	n->key = key;
	s = slot(t, key);
	n->next = t->buckets[s];
	t->buckets[s] = n;
	t->count++;
	return 0;
}

void luo_hash_del(struct luo_htable *t, struct luo_hnode *n)
{
	struct luo_hnode **pp;

	if (!t->nbuckets)
		return;
	for (pp = &t->buckets[slot(t, n->key)]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			t->count--;
			return;
		}
	}
}

static struct luo_hnode *from(struct luo_hnode *n, uint64_t key)
{
	while (n && n->key != key)
		n = n->next;
	return n;
}

struct luo_hnode *luo_hash_find(const struct luo_htable *t, uint64_t key)
{
	if (!t->nbuckets)
		return NULL;
	return from(t->buckets[slot(t, key)], key);
}

struct luo_hnode *luo_hash_next(const struct luo_hnode *prev)
{
	return from(prev->next, prev->key);
}

void luo_hash_free(struct luo_htable *t)
{
	luo_bulk_free(t->buckets, t->nbuckets * sizeof(*t->buckets));
	t->buckets = NULL;
	t->nbuckets = t->count = 0;
}
