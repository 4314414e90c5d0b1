// SPDX-License-Identifier: MIT
/*
 * One LRU list per size class, doubly linked through region offsets:
 * head is the most recently used item, tail the next one to evict.
 */
#include "kv.h"

/**
 * lru_link() - put an item at the head of its class's LRU
 * @it: an item not on the list.
 */
void lru_link(struct kv_item *it)
{
	struct kv_class *c = &store->cls[it->clsid];
	struct kv_item *head = item_at(c->lru_head);
	uint64_t off = item_off(it);

	it->prev = 0;
	it->next = head ? c->lru_head : 0;
	if (head)
		head->prev = off;
	else
		c->lru_tail = off;
	c->lru_head = off;
	c->nitems++;
}

/**
 * lru_unlink() - take an item off its class's LRU
 * @it: an item on the list.
 */
void lru_unlink(struct kv_item *it)
{
	struct kv_class *c = &store->cls[it->clsid];
	struct kv_item *prev = item_at(it->prev), *next = item_at(it->next);

	if (prev)
		prev->next = it->next;
	else
		c->lru_head = next ? it->next : 0;
	if (next)
		next->prev = it->prev;
	else
		c->lru_tail = prev ? it->prev : 0;
	it->prev = it->next = 0;
	if (c->nitems)
		c->nitems--;
}

/**
 * lru_bump() - mark an item as just used
 * @it: a linked item.
 */
void lru_bump(struct kv_item *it)
{
	if (store->cls[it->clsid].lru_head == item_off(it))
		return;
	lru_unlink(it);
	lru_link(it);
}

/**
 * lru_tail() - the least recently used item of a class
 * @clsid: the class.
 *
 * Return: the item, or NULL if the class holds none.
 */
struct kv_item *lru_tail(unsigned clsid)
{
	struct kv_item *it = item_at(store->cls[clsid].lru_tail);

	if (it && (!(it->iflags & ITEM_LINKED) || it->clsid != clsid ||
		   !item_valid(it))) {
		/* A corrupt list: forget it rather than evict junk. */
		store->cls[clsid].lru_head = store->cls[clsid].lru_tail = 0;
		return NULL;
	}
	return it;
}
