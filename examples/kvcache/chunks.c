// SPDX-License-Identifier: MIT
/*
 * Large items in chains of chunks, as memcached stores them.
 *
 * An item larger than half a page (the largest class) would waste most
 * of a page-sized chunk: a 573,440-byte value took a whole 1 MiB page.
 * Instead its own chunk (from a small class) holds the header, the key
 * and the offset of the first data chunk; the value is spread over chunks
 * of the largest class, the last one from the class that fits what is
 * left.  A data chunk reuses the item header: h_next is the next chunk,
 * prev the head item, nbytes the bytes it holds, iflags ITEM_CHUNK.  All
 * links are store region offsets, so a chain crosses a live update as it
 * is; every link followed is checked (item_at(), flags, the back link).
 */
#include <string.h>

#include "kv.h"

static uint64_t *first_chunk(struct kv_item *head)
{
	return (uint64_t *)(head->data + ((head->nkey + 7u) & ~7u));
}

/* The chunk after @ch (or the first when @ch is NULL), checked. */
static struct kv_item *chunk_next(struct kv_item *head, struct kv_item *ch)
{
	uint64_t off;
	struct kv_item *n;

	if (ch)
		off = ch->h_next;
	else
		memcpy(&off, first_chunk(head), sizeof(off));
	n = off ? item_at(off) : NULL;
	if (!n || !(n->iflags & ITEM_CHUNK) || n->prev != item_off(head) ||
	    n->clsid >= store->nclasses ||
	    sizeof(*n) + n->nbytes > store->cls[n->clsid].size)
		return NULL;
	return n;
}

/**
 * chunks_alloc() - the data chunks of a chunked item
 * @head: the item, from its own chunk, held (refcount) by the caller.
 * @nbytes: the value's length with its "\r\n".
 *
 * Return: false if the memory cannot be found (the chunks found so far
 * stay on the chain; item_free() releases them).
 */
bool chunks_alloc(struct kv_item *head, size_t nbytes)
{
	unsigned big = store->nclasses - 1;
	size_t cap = store->cls[big].size - sizeof(struct kv_item);
	uint64_t zero = 0, *link = NULL;
	struct kv_item *prev = NULL;

	memcpy(first_chunk(head), &zero, sizeof(zero));
	while (nbytes) {
		size_t n = nbytes < cap ? nbytes : cap;
		unsigned clsid =
			n == cap ? big
				 : slabs_clsid(sizeof(struct kv_item) + n);
		struct kv_item *ch =
			item_chunk_get(sizeof(struct kv_item) + n, clsid);
		uint64_t off;

		if (!ch)
			return false;
		ch->iflags = ITEM_CHUNK;
		ch->prev = item_off(head);
		ch->nbytes = (uint32_t)n;
		ch->h_next = 0;
		off = item_off(ch);
		if (prev) {
			prev->h_next = off;
		} else {
			link = first_chunk(head);
			memcpy(link, &off, sizeof(off));
		}
		prev = ch;
		nbytes -= n;
	}
	return true;
}

/**
 * item_free() - give an item's chunks (all of a chained one) back
 * @it: an item neither linked nor referenced.
 */
void item_free(struct kv_item *it)
{
	if (it->iflags & ITEM_CHUNKED) {
		struct kv_item *ch = chunk_next(it, NULL);

		while (ch) {
			struct kv_item *next = chunk_next(it, ch);

			slabs_free(ch);
			ch = next;
		}
	}
	slabs_free(it);
}

/**
 * item_span() - where byte @pos of an item's value is, and how many follow
 * @it: the item.
 * @pos: offset in the value (with its "\r\n").
 * @len: set to the contiguous bytes there.
 *
 * Return: the bytes, or NULL past the end or on a broken chain.
 */
const char *item_span(struct kv_item *it, uint32_t pos, uint32_t *len)
{
	struct kv_item *ch;

	if (pos >= it->nbytes)
		return NULL;
	if (!(it->iflags & ITEM_CHUNKED)) {
		*len = it->nbytes - pos;
		return item_value(it) + pos;
	}
	for (ch = chunk_next(it, NULL); ch; ch = chunk_next(it, ch)) {
		if (pos < ch->nbytes) {
			*len = ch->nbytes - pos;
			return ch->data + pos;
		}
		pos -= ch->nbytes;
	}
	return NULL;
}

/**
 * item_write() - write into an item's value
 * @it: the item.
 * @pos: offset in the value.
 * @src: bytes.
 * @n: their count; the value must hold them.
 */
void item_write(struct kv_item *it, uint32_t pos, const void *src, size_t n)
{
	const char *s = src;

	while (n) {
		uint32_t avail;
		char *d = (char *)item_span(it, pos, &avail);
		size_t k;

		if (!d)
			return;
		k = n < avail ? n : avail;
		memcpy(d, s, k);
		s += k;
		pos += (uint32_t)k;
		n -= k;
	}
}

/**
 * item_copy() - copy part of one item's value into another's
 * @dst: the item written.
 * @dpos: offset in its value.
 * @src: the item read.
 * @spos: offset in its value.
 * @n: bytes.
 */
void item_copy(struct kv_item *dst, uint32_t dpos, struct kv_item *src,
	       uint32_t spos, size_t n)
{
	while (n) {
		uint32_t avail;
		const char *s = item_span(src, spos, &avail);
		size_t k;

		if (!s)
			return;
		k = n < avail ? n : avail;
		item_write(dst, dpos, s, k);
		spos += (uint32_t)k;
		dpos += (uint32_t)k;
		n -= k;
	}
}
