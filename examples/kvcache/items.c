// SPDX-License-Identifier: MIT
/*
 * Item semantics on top of the slabs, the hash table and the LRU:
 * expiry, flush_all, the six storage commands, delete and incr/decr.
 * Expired and flushed items are removed lazily, when looked up or when
 * they reach an LRU tail, as memcached does.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kv.h"

/**
 * kv_now() - wall-clock seconds
 *
 * Expiry times are absolute wall-clock seconds rather than memcached's
 * seconds-since-start, so they mean the same in the next image.
 *
 * Return: CLOCK_REALTIME seconds.
 */
int64_t kv_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

/**
 * kv_mono_ns() - CLOCK_MONOTONIC in nanoseconds, as the library stamps it
 *
 * Return: nanoseconds.
 */
uint64_t kv_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/**
 * item_exptime() - an absolute expiry time from a protocol exptime
 * @exptime: 0 (never), negative (already expired), up to 30 days
 *           (relative seconds) or more (an absolute Unix time).
 *
 * Return: absolute seconds, 0 for never; 1 (long past) for expired.
 */
int64_t item_exptime(int64_t exptime)
{
	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return 1;
	if (exptime > KV_REALTIME_MAXDELTA)
		return exptime > UINT32_MAX ? UINT32_MAX : exptime;
	return kv_now() + exptime;
}

static size_t item_mc_size(const struct kv_item *it)
{
	return item_mc_total(it->nkey, it->flags, it->nbytes);
}

enum liveness { LIVE, EXPIRED, FLUSHED };

static enum liveness item_liveness(const struct kv_item *it, int64_t now)
{
	if (it->cas <= store->flush_cas)
		return FLUSHED;
	/* As memcached: the second before the flush time is flushed too. */
	if (store->flush_at && now >= store->flush_at &&
	    it->time <= store->flush_at)
		return FLUSHED;
	if (it->exptime && it->exptime <= now)
		return EXPIRED;
	return LIVE;
}

/**
 * item_unlink() - remove a linked item; free its chunk unless it is being sent
 * @it: the item.
 *
 * An item that output queues still send from keeps its chunk until the
 * last of them is done (item_release()).
 */
void item_unlink(struct kv_item *it)
{
	if (!(it->iflags & ITEM_LINKED))
		return;
	hash_remove(it, hash_key(item_key(it), it->nkey));
	lru_unlink(it);
	it->iflags &= (uint16_t)~ITEM_LINKED;
	store->stats.curr_items--;
	store->stats.bytes -= item_mc_size(it);
	store->cls[it->clsid].requested -= item_mc_size(it);
	if (!it->refcount)
		item_free(it);
}

/**
 * item_release() - an output queue is done sending from an item
 * @it: the item; freed if it was unlinked meanwhile and nobody else sends it.
 */
void item_release(struct kv_item *it)
{
	if (!it || !it->refcount)
		return;
	if (--it->refcount == 0 && !(it->iflags & (ITEM_LINKED | ITEM_SLABBED)))
		item_free(it);
}

/**
 * item_alloc() - a new, unlinked item, evicting if memory is full
 * @key: its key.
 * @nkey: key length, at most KEY_MAX_LENGTH.
 * @flags: client flags.
 * @exptime: absolute expiry (item_exptime()).
 * @nbytes: value length including "\r\n".
 *
 * Return: the item with key and header filled in, or NULL if it is too
 * large or nothing can be evicted for it.
 */
struct kv_item *item_alloc(const char *key, size_t nkey, uint32_t flags,
			   int64_t exptime, size_t nbytes)
{
	size_t mc = item_mc_total(nkey, flags, nbytes);
	bool chunked = mc > store->cls[store->nclasses - 1].size;
	size_t total =
		chunked ? item_head_total(nkey) : item_total(nkey, nbytes);
	unsigned clsid = slabs_clsid(chunked ? total : mc);
	struct kv_item *it;

	if (mc > store->item_size_max || clsid >= store->nclasses)
		return NULL;
	it = item_chunk_get(total, clsid);
	if (!it)
		return NULL;
	it->nkey = (uint8_t)nkey;
	it->nbytes = (uint32_t)nbytes;
	it->flags = flags;
	it->exptime = (uint32_t)exptime;
	memcpy(item_key(it), key, nkey);
	if (chunked) {
		bool ok;

		it->iflags = ITEM_CHUNKED;
		it->refcount = 1; /* not moved while its chunks are found */
		ok = chunks_alloc(it, nbytes);
		it->refcount = 0;
		if (!ok) {
			item_free(it);
			return NULL;
		}
	}
	return it;
}

/**
 * item_chunk_get() - a free chunk of a class, evicting or moving a page
 * @total: bytes needed.
 * @clsid: the class.
 *
 * As memcached: a few items from the tail of the class's LRU are looked
 * at, those being sent skipped; with nothing of its own to evict, the
 * class takes a page from another one (slabs_rebalance()).
 *
 * Return: the chunk (header zeroed but for its class), or NULL.
 */
struct kv_item *item_chunk_get(size_t total, unsigned clsid)
{
	struct kv_item *it;
	int64_t now = kv_now();

	for (int tries = 0; !(it = slabs_alloc(total, clsid)); tries++) {
		struct kv_item *victim = lru_tail(clsid);

		for (int k = 0; victim && victim->refcount && k < 5; k++)
			victim = item_at(victim->prev);
		if (!victim || victim->refcount ||
		    !(victim->iflags & ITEM_LINKED)) {
			if (tries <= 50 && slabs_rebalance(clsid))
				continue;
			return NULL;
		}
		if (tries > 50)
			return NULL;
		if (item_liveness(victim, now) != LIVE) {
			store->stats.reclaimed++;
			store->cls[clsid].reclaimed++;
			if (!(victim->iflags & ITEM_FETCHED))
				store->stats.expired_unfetched++;
		} else {
			store->stats.evictions++;
			store->cls[clsid].evictions++;
			if (!(victim->iflags & ITEM_FETCHED))
				store->stats.evicted_unfetched++;
		}
		item_unlink(victim);
	}
	return it;
}

/**
 * item_discard() - free an item that was never linked
 * @it: from item_alloc().
 */
void item_discard(struct kv_item *it)
{
	item_free(it);
}

static struct kv_item *lookup(const char *key, size_t nkey, bool count)
{
	uint64_t hv = hash_key(key, nkey);
	struct kv_item *it = hash_find(key, nkey, hv);
	enum liveness l;

	if (!it)
		return NULL;
	l = item_liveness(it, kv_now());
	if (l == LIVE)
		return it;
	if (count) {
		if (l == EXPIRED)
			store->stats.get_expired++;
		else
			store->stats.get_flushed++;
	}
	item_unlink(it);
	return NULL;
}

/**
 * item_get() - a live item by key, marked as used
 * @key: the key.
 * @nkey: its length.
 * @count: count expired/flushed hits in the stats (get, gat).
 *
 * Return: the item or NULL.
 */
struct kv_item *item_get(const char *key, size_t nkey, bool count)
{
	struct kv_item *it = lookup(key, nkey, count);

	if (it) {
		lru_bump(it);
		it->iflags |= ITEM_FETCHED;
	}
	return it;
}

/**
 * item_count_lookup() - count one key of a get or a get-and-touch
 * @it: what item_get() found, or NULL.
 * @touch: gat/gats or a binary GAT: counted as a touch, else as a get.
 */
void item_count_lookup(const struct kv_item *it, bool touch)
{
	if (touch) {
		store->stats.cmd_touch++;
		if (it)
			store->stats.touch_hits++;
		else
			store->stats.touch_misses++;
	} else {
		store->stats.cmd_get++;
		if (it)
			store->stats.get_hits++;
		else
			store->stats.get_misses++;
	}
}

static void do_link(struct kv_item *it)
{
	it->cas = ++store->cas_counter;
	it->time = (uint32_t)kv_now();
	it->iflags = (uint16_t)((it->iflags & ITEM_CHUNKED) | ITEM_LINKED);
	hash_insert(it, hash_key(item_key(it), it->nkey));
	kv_fault(KV_FAULT_POINT_STORE); /* in the hash, not yet on the LRU */
	lru_link(it);
	store->stats.curr_items++;
	store->stats.total_items++;
	store->stats.bytes += item_mc_size(it);
	store->cls[it->clsid].requested += item_mc_size(it);
}

static void do_replace(struct kv_item *old, struct kv_item *it)
{
	if (old)
		item_unlink(old);
	do_link(it);
}

/*
 * append/prepend: a new item holding both values.  The old item is held
 * meanwhile so that the allocation can neither evict nor move it.
 */
static enum store_result concat(struct kv_item *old, struct kv_item *it,
				bool append)
{
	size_t oldlen = old->nbytes - 2, addlen = it->nbytes - 2;
	struct kv_item *n;

	old->refcount++; /* neither evicted nor moved while we allocate */
	n = item_alloc(item_key(old), old->nkey, old->flags, old->exptime,
		       oldlen + addlen + 2);
	old->refcount--;
	if (!n) { /* too large or no memory: memcached says NOT_STORED */
		item_discard(it);
		return STORE_NOT_STORED;
	}
	if (append) {
		item_copy(n, 0, old, 0, oldlen);
		item_copy(n, (uint32_t)oldlen, it, 0, addlen + 2);
	} else {
		item_copy(n, 0, it, 0, addlen);
		item_copy(n, (uint32_t)addlen, old, 0, oldlen + 2);
	}
	item_discard(it);
	do_replace(old, n);
	return STORE_STORED;
}

/**
 * item_store() - link a new item according to a storage command
 * @it: from item_alloc(), value filled in; consumed in every case.
 * @op: set, add, replace, append, prepend or cas.
 * @cas: the cas unique for OP_CAS.
 *
 * Return: what to answer.
 */
enum store_result item_store(struct kv_item *it, enum store_op op, uint64_t cas)
{
	struct kv_item *old = lookup(item_key(it), it->nkey, false);

	switch (op) {
	case OP_SET:
		break;
	case OP_ADD:
		if (old) {
			lru_bump(old);
			item_discard(it);
			return STORE_NOT_STORED;
		}
		break;
	case OP_REPLACE:
		if (!old) {
			item_discard(it);
			return STORE_NOT_STORED;
		}
		break;
	case OP_APPEND:
	case OP_PREPEND:
		if (!old) {
			item_discard(it);
			return STORE_NOT_STORED;
		}
		return concat(old, it, op == OP_APPEND);
	case OP_CAS:
		if (!old) {
			item_discard(it);
			store->stats.cas_misses++;
			return STORE_NOT_FOUND;
		}
		if (old->cas != cas) {
			item_discard(it);
			store->stats.cas_badval++;
			return STORE_EXISTS;
		}
		store->stats.cas_hits++;
		break;
	}
	do_replace(old, it);
	return STORE_STORED;
}

/**
 * item_delete() - remove a key
 * @key: the key.
 * @nkey: its length.
 *
 * Return: whether a live item was deleted.
 */
bool item_delete(const char *key, size_t nkey)
{
	struct kv_item *it = lookup(key, nkey, false);

	if (!it)
		return false;
	item_unlink(it);
	return true;
}

/*
 * The value as memcached reads it (strtoull, then a space, the "\r" or
 * the end): leading white space and a sign are taken, anything after the
 * number's first space ignored, a negative number refused.
 */
static bool parse_value(const struct kv_item *it, uint64_t *v)
{
	const char *p = ((const char *)it->data) + it->nkey;
	size_t n = it->nbytes - 2, i = 0;
	bool neg = false;
	uint64_t x = 0;

	while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
		i++;
	if (i < n && (p[i] == '+' || p[i] == '-'))
		neg = p[i++] == '-';
	if (i == n || p[i] < '0' || p[i] > '9')
		return false;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		uint64_t d = (uint64_t)(p[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return false; /* ERANGE */
		x = x * 10 + d;
	}
	if (i < n && !(p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
		return false;
	if (neg) {
		x = -x;
		if ((int64_t)x < 0)
			return false;
	}
	*v = x;
	return true;
}

/**
 * item_delta() - incr or decr
 * @key: the key.
 * @nkey: its length.
 * @incr: true for incr (wraps at 2^64), false for decr (stops at 0).
 * @delta: the amount.
 * @result: set to the new value on success.
 *
 * As memcached: a result no longer than the value is written in place,
 * padded with spaces to the value's length (unless the item is being
 * sent); a longer one makes a new item.
 *
 * Return: DELTA_OK, DELTA_NOT_FOUND, DELTA_NON_NUMERIC or DELTA_EOM.
 */
enum delta_result item_delta(const char *key, size_t nkey, bool incr,
			     uint64_t delta, uint64_t *result)
{
	struct kv_item *it = item_get(key, nkey, false), *n;
	char buf[24];
	uint64_t v;
	size_t nbytes;
	int len;

	if (!it)
		return DELTA_NOT_FOUND;
	if ((it->iflags & ITEM_CHUNKED) || !parse_value(it, &v))
		return DELTA_NON_NUMERIC; /* memcached: a chunked one too */
	v = incr ? v + delta : (v < delta ? 0 : v - delta);
	*result = v;
	len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	if ((uint32_t)len + 2 <= it->nbytes && !it->refcount) {
		/* Named first: a crash in between must not serve half of it. */
		__atomic_store_n(&store->wip_item, item_off(it),
				 __ATOMIC_SEQ_CST);
		memset(item_value(it) + len, ' ', it->nbytes - 2 - (size_t)len);
		/* In two halves: a fault build dies in between (fault.c). */
		memcpy(item_value(it), buf, (size_t)len / 2);
		kv_fault(KV_FAULT_POINT_DELTA);
		memcpy(item_value(it) + len / 2, buf + len / 2,
		       (size_t)len - (size_t)len / 2);
		it->cas = ++store->cas_counter;
		__atomic_store_n(&store->wip_item, 0, __ATOMIC_SEQ_CST);
		return DELTA_OK;
	}
	/*
	 * Longer, or being sent (its bytes must not change under the send):
	 * a new item, padded as the in-place one would be.
	 */
	nbytes = (uint32_t)len + 2 <= it->nbytes ? it->nbytes : (size_t)len + 2;
	it->refcount++; /* neither evicted nor moved while we allocate */
	n = item_alloc(key, nkey, it->flags, it->exptime, nbytes);
	it->refcount--;
	if (!n)
		return DELTA_EOM;
	memset(item_value(n), ' ', nbytes - 2);
	memcpy(item_value(n), buf, (size_t)len);
	memcpy(item_value(n) + nbytes - 2, "\r\n", 2);
	do_replace(it, n);
	return DELTA_OK;
}

/**
 * item_set_failed() - a set that could not be stored removes the old value
 * @key: the key.
 * @nkey: its length.
 *
 * As memcached: a client must not read a stale value after its set
 * failed (too large, out of memory).
 *
 * Return: whether a value was removed.
 */
bool item_set_failed(const char *key, size_t nkey)
{
	return item_delete(key, nkey);
}

/**
 * items_flush() - flush_all
 * @delay: 0 or less: now; otherwise like an exptime (relative seconds,
 *         or an absolute time beyond 30 days).
 */
void items_flush(int64_t delay)
{
	int64_t now = kv_now();
	int64_t at = (delay > 0 ? item_exptime(delay) : now) - 1;

	/* As memcached: "oldest live" is a second before; a cas id is used. */
	store->flush_at = at;
	if (at <= now)
		store->flush_cas = ++store->cas_counter;
}
