// SPDX-License-Identifier: MIT
/*
 * The memcached text protocol.
 *
 * proto_process() works on the unprocessed input of one connection and
 * consumes only whole requests: a storage command stays in the input
 * buffer until its data block has fully arrived.  The input buffer lives
 * in handover memory, so a request half received when an update begins is
 * simply completed by the next image; no parser state has to travel
 * except the count of bytes still to swallow after a refused value.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <luo/luo.h>

#include "kv.h"

#define MAX_TOKENS 24
#define LINE_MAX_NONGET 2048	  /* as memcached: longer lines close */
#define LINE_MAX_GET (1u << 20)	  /* multi-gets may be long */
#define OUT_HIGH_WATER (4u << 20) /* stop parsing until the client reads */

struct token {
	char *s;
	size_t len;
};

/* Answer unless noreply was given. */
static void reply(struct conn *c, const char *s)
{
	if (c->noreply)
		return;
	conn_out(c, s, strlen(s));
	conn_out(c, "\r\n", 2);
}

/* Errors are sent even with noreply, as memcached does. */
static void reply_err(struct conn *c, const char *s)
{
	conn_out(c, s, strlen(s));
	conn_out(c, "\r\n", 2);
}

static size_t tokenize(char *line, size_t len, struct token *t, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len && n < max) {
		while (i < len && line[i] == ' ')
			i++;
		if (i == len)
			break;
		t[n].s = line + i;
		while (i < len && line[i] != ' ')
			i++;
		t[n].len = (size_t)(line + i - t[n].s);
		t[n].s[t[n].len] = 0; /* the line is ours to cut up */
		n++;
		i++;
	}
	return n;
}

static bool tok_is(const struct token *t, const char *s)
{
	return !strcmp(t->s, s);
}

/* memcached's safe_strtoull: digits only, no sign, no overflow. */
static bool parse_u64(const struct token *t, uint64_t *v)
{
	char *end;

	if (!t->len || t->s[0] == '-' || t->s[0] == '+' || t->s[0] == ' ')
		return false;
	errno = 0;
	*v = strtoull(t->s, &end, 10);
	return !errno && *end == 0;
}

static bool parse_u32(const struct token *t, uint32_t *v)
{
	uint64_t x;

	if (!parse_u64(t, &x) || x > UINT32_MAX)
		return false;
	*v = (uint32_t)x;
	return true;
}

static bool parse_i32(const struct token *t, int32_t *v)
{
	char *end;
	long x;

	if (!t->len)
		return false;
	errno = 0;
	x = strtol(t->s, &end, 10);
	if (errno || *end || x < INT32_MIN || x > INT32_MAX)
		return false;
	*v = (int32_t)x;
	return true;
}

/*
 * As memcached's set_noreply_maybe(): a last token "noreply" silences the
 * answer.  Return: the token count without it.
 */
static size_t noreply_check(struct conn *c, struct token *t, size_t n)
{
	if (n > 1 && tok_is(&t[n - 1], "noreply")) {
		c->noreply = true;
		return n - 1;
	}
	return n;
}

/* memcached answers a wrong number of tokens with a bare ERROR. */
static bool want_tokens(struct conn *c, size_t n, size_t lo, size_t hi)
{
	if (n >= lo && n <= hi)
		return true;
	reply_err(c, "ERROR");
	return false;
}

/* The common start of a keyed command: token count, noreply, key length. */
static bool keyed_command(struct conn *c, struct token *t, size_t n, size_t lo,
			  size_t hi)
{
	if (!want_tokens(c, n, lo, hi))
		return false;
	noreply_check(c, t, n);
	if (t[1].len > KEY_MAX_LENGTH) {
		reply_err(c, "CLIENT_ERROR bad command line format");
		return false;
	}
	return true;
}

static void out_value(struct conn *c, struct kv_item *it, bool with_cas)
{
	char hdr[KEY_MAX_LENGTH + 96];
	int n;

	if (with_cas)
		n = snprintf(hdr, sizeof(hdr),
			     "VALUE %.*s %u %u %" PRIu64 "\r\n", it->nkey,
			     item_key(it), it->flags, it->nbytes - 2, it->cas);
	else
		n = snprintf(hdr, sizeof(hdr), "VALUE %.*s %u %u\r\n", it->nkey,
			     item_key(it), it->flags, it->nbytes - 2);
	conn_out(c, hdr, (size_t)n);
	conn_out(c, item_value(it), it->nbytes);
}

/* get, gets, gat, gats */
static void cmd_get(struct conn *c, struct token *t, size_t n, bool with_cas,
		    bool touch)
{
	size_t first = touch ? 2 : 1;
	uint32_t mark = c->rec->wlen;
	int64_t exptime = 0;
	int32_t e;

	if (n <= first) {
		reply_err(c, "ERROR");
		return;
	}
	if (touch) {
		if (!parse_i32(&t[1], &e)) {
			reply_err(c, "CLIENT_ERROR invalid exptime argument");
			return;
		}
		exptime = item_exptime(e);
	}
	for (size_t i = first; i < n; i++) {
		struct kv_item *it;

		if (t[i].len > KEY_MAX_LENGTH) {
			c->rec->wlen = mark; /* drop the values so far */
			reply_err(c, "CLIENT_ERROR bad command line format");
			return;
		}
		it = item_get(t[i].s, t[i].len, true);
		if (touch) {
			store->stats.cmd_touch++;
			if (it) {
				store->stats.touch_hits++;
				it->exptime = exptime;
			} else {
				store->stats.touch_misses++;
			}
		}
		store->stats.cmd_get++;
		if (it) {
			store->stats.get_hits++;
			out_value(c, it, with_cas);
		} else {
			store->stats.get_misses++;
		}
	}
	conn_out(c, "END\r\n", 5);
}

/*
 * set, add, replace, append, prepend, cas.  @data is the start of the
 * data block, @avail the bytes of it already received.
 * Return: bytes of the data block consumed, or -1 to wait for more.
 */
static ssize_t cmd_store(struct conn *c, struct token *t, size_t n,
			 enum store_op op, const char *data, size_t avail)
{
	size_t want = op == OP_CAS ? 6 : 5;
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas = 0;
	struct kv_item *it;
	const char *msg;

	/* One more token is noreply; another extra token is ignored. */
	if (!keyed_command(c, t, n, want, want + 1))
		return 0;
	if (!parse_u32(&t[2], &flags) || !parse_i32(&t[3], &exptime) ||
	    !parse_i32(&t[4], &vlen) ||
	    (op == OP_CAS && !parse_u64(&t[5], &cas))) {
		reply_err(c, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (vlen < 0 || vlen > INT32_MAX - 2) {
		reply_err(c, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (item_total(t[1].len, (size_t)vlen + 2) > store->item_size_max) {
		reply_err(c, "SERVER_ERROR object too large for cache");
		c->rec->swallow = (uint64_t)vlen + 2;
		store->stats.cmd_set++;
		return 0;
	}
	if (avail < (size_t)vlen + 2) {
		/* Keep the whole request in the input buffer until it is in. */
		c->need = (size_t)vlen + 2;
		return -1;
	}
	store->stats.cmd_set++;
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		reply_err(c, "CLIENT_ERROR bad data chunk");
		/* memcached swallows the rest of a bad chunk as a line. */
		return vlen + 2;
	}
	it = item_alloc(t[1].s, t[1].len, flags, item_exptime(exptime),
			(size_t)vlen + 2);
	if (!it) {
		reply_err(c, "SERVER_ERROR out of memory storing object");
		return vlen + 2;
	}
	memcpy(item_value(it), data, (size_t)vlen + 2);
	switch (item_store(it, op, cas)) {
	case STORE_STORED:
		msg = "STORED";
		break;
	case STORE_EXISTS:
		msg = "EXISTS";
		break;
	case STORE_NOT_FOUND:
		msg = "NOT_FOUND";
		break;
	case STORE_TOO_LARGE:
		reply_err(c, "SERVER_ERROR object too large for cache");
		return vlen + 2;
	case STORE_NO_MEMORY:
		reply_err(c, "SERVER_ERROR out of memory storing object");
		return vlen + 2;
	default:
		msg = "NOT_STORED";
		break;
	}
	reply(c, msg);
	return vlen + 2;
}

static void cmd_delete(struct conn *c, struct token *t, size_t n)
{
	if (!want_tokens(c, n, 2, 4))
		return;
	if (n > 2) {
		bool zero = tok_is(&t[2], "0");
		bool nr = noreply_check(c, t, n) != n;

		if (!((n == 3 && (zero || nr)) || (n == 4 && zero && nr))) {
			reply_err(
				c,
				"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
			return;
		}
	}
	if (t[1].len > KEY_MAX_LENGTH) {
		reply_err(c, "CLIENT_ERROR bad command line format");
		return;
	}
	if (item_delete(t[1].s, t[1].len)) {
		store->stats.delete_hits++;
		reply(c, "DELETED");
	} else {
		store->stats.delete_misses++;
		reply(c, "NOT_FOUND");
	}
}

static void cmd_delta(struct conn *c, struct token *t, size_t n, bool incr)
{
	uint64_t delta, v;
	char buf[24];

	if (!keyed_command(c, t, n, 3, 4))
		return;
	if (!parse_u64(&t[2], &delta)) {
		reply_err(c, "CLIENT_ERROR invalid numeric delta argument");
		return;
	}
	switch (item_delta(t[1].s, t[1].len, incr, delta, &v)) {
	case DELTA_OK:
		if (incr)
			store->stats.incr_hits++;
		else
			store->stats.decr_hits++;
		snprintf(buf, sizeof(buf), "%" PRIu64, v);
		reply(c, buf);
		break;
	case DELTA_NOT_FOUND:
		if (incr)
			store->stats.incr_misses++;
		else
			store->stats.decr_misses++;
		reply(c, "NOT_FOUND");
		break;
	case DELTA_NON_NUMERIC:
		reply_err(
			c,
			"CLIENT_ERROR cannot increment or decrement non-numeric value");
		break;
	case DELTA_EOM:
		reply_err(c, "SERVER_ERROR out of memory");
		break;
	}
}

static void cmd_touch(struct conn *c, struct token *t, size_t n)
{
	struct kv_item *it;
	int32_t e;

	if (!keyed_command(c, t, n, 3, 4))
		return;
	if (!parse_i32(&t[2], &e)) {
		reply_err(c, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	store->stats.cmd_touch++;
	it = item_get(t[1].s, t[1].len, false);
	if (it) {
		it->exptime = item_exptime(e);
		store->stats.touch_hits++;
		reply(c, "TOUCHED");
	} else {
		store->stats.touch_misses++;
		reply(c, "NOT_FOUND");
	}
}

static void cmd_flush(struct conn *c, struct token *t, size_t n)
{
	int32_t delay = 0;

	if (!want_tokens(c, n, 1, 3))
		return;
	n = noreply_check(c, t, n);
	if (n >= 2 && !parse_i32(&t[1], &delay)) {
		reply_err(c, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	store->stats.cmd_flush++;
	items_flush(delay);
	reply(c, "OK");
}

static stat_emit_fn stat_emit;

static void stat_str(struct conn *c, const char *name, const char *v)
{
	if (stat_emit)
		stat_emit(c, name, v);
	else
		conn_printf(c, "STAT %s %s\r\n", name, v);
}

static void stat_u64(struct conn *c, const char *name, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	stat_str(c, name, buf);
}

static void stats_general(struct conn *c);

/**
 * proto_stats() - the general statistics, one name/value pair at a time
 * @c: the connection asking.
 * @emit: called for each pair (the binary protocol's stat responses).
 */
void proto_stats(struct conn *c, stat_emit_fn emit)
{
	stat_emit = emit;
	stats_general(c);
	stat_emit = NULL;
}

/**
 * proto_stats_reset() - "stats reset": zero the counters
 *
 * What describes the current contents (items, bytes) and the live
 * update figures are kept.
 */
void proto_stats_reset(void)
{
	struct kv_stats *s = &store->stats, keep = *s;

	memset(s, 0, sizeof(*s));
	s->curr_items = keep.curr_items;
	s->bytes = keep.bytes;
	s->live_updates = keep.live_updates;
	s->last_blackout_ns = keep.last_blackout_ns;
}

static void cmd_stats(struct conn *c, struct token *t, size_t n)
{
	if (n == 2 && tok_is(&t[1], "reset")) {
		proto_stats_reset();
		conn_out(c, "RESET\r\n", 7);
		return;
	}
	if (n == 2 && tok_is(&t[1], "settings")) {
		stat_u64(c, "maxbytes", store->mem_limit);
		stat_u64(c, "maxconns", settings.maxconns);
		stat_u64(c, "tcpport", settings.port);
		conn_printf(c, "STAT growth_factor %.2f\r\n", settings.factor);
		stat_u64(c, "item_size_max", store->item_size_max);
		stat_u64(c, "num_threads", 1);
		stat_u64(c, "verbosity", (uint64_t)settings.verbose);
		conn_printf(c, "STAT cas_enabled yes\r\n");
		conn_out(c, "END\r\n", 5);
		return;
	}
	if (n == 2 && (tok_is(&t[1], "slabs") || tok_is(&t[1], "items"))) {
		bool slabs = tok_is(&t[1], "slabs");

		for (unsigned i = 0; i < store->nclasses; i++) {
			const struct kv_class *k = &store->cls[i];

			if (!k->npages)
				continue;
			if (slabs) {
				conn_printf(c, "STAT %u:chunk_size %u\r\n",
					    i + 1, k->size);
				conn_printf(c, "STAT %u:chunks_per_page %u\r\n",
					    i + 1, k->perslab);
				conn_printf(c,
					    "STAT %u:total_pages %" PRIu64
					    "\r\n",
					    i + 1, k->npages);
				conn_printf(c,
					    "STAT %u:used_chunks %" PRIu64
					    "\r\n",
					    i + 1, k->nitems);
				conn_printf(c,
					    "STAT %u:free_chunks %" PRIu64
					    "\r\n",
					    i + 1, k->nfree);
			} else {
				conn_printf(c,
					    "STAT items:%u:number %" PRIu64
					    "\r\n",
					    i + 1, k->nitems);
				conn_printf(c,
					    "STAT items:%u:evicted %" PRIu64
					    "\r\n",
					    i + 1, k->evictions);
			}
		}
		if (slabs) {
			stat_u64(c, "active_slabs", store->nclasses);
			stat_u64(c, "total_malloced",
				 store->pages_used * store->page_size);
		}
		conn_out(c, "END\r\n", 5);
		return;
	}
	if (n > 1) {
		reply_err(c, "ERROR");
		return;
	}
	stats_general(c);
	conn_out(c, "END\r\n", 5);
}

static void stats_general(struct conn *c)
{
	const struct kv_stats *s = &store->stats;
	struct rusage ru;
	int64_t now = kv_now();
	char buf[64];

	getrusage(RUSAGE_SELF, &ru);
	stat_u64(c, "pid", (uint64_t)getpid());
	stat_u64(c, "uptime", (uint64_t)(now - store->started));
	stat_u64(c, "time", (uint64_t)now);
	stat_str(c, "version", KV_VERSION_STRING);
	stat_str(c, "libevent", "none");
	stat_u64(c, "pointer_size", sizeof(void *) * 8);
	snprintf(buf, sizeof(buf), "%ld.%06ld", (long)ru.ru_utime.tv_sec,
		 (long)ru.ru_utime.tv_usec);
	stat_str(c, "rusage_user", buf);
	snprintf(buf, sizeof(buf), "%ld.%06ld", (long)ru.ru_stime.tv_sec,
		 (long)ru.ru_stime.tv_usec);
	stat_str(c, "rusage_system", buf);
	stat_u64(c, "max_connections", settings.maxconns);
	stat_u64(c, "curr_connections", conn_count());
	stat_u64(c, "total_connections", s->total_connections);
	stat_u64(c, "rejected_connections", s->rejected_connections);
	stat_u64(c, "connection_structures", conn_count());
	stat_u64(c, "cmd_get", s->cmd_get);
	stat_u64(c, "cmd_set", s->cmd_set);
	stat_u64(c, "cmd_flush", s->cmd_flush);
	stat_u64(c, "cmd_touch", s->cmd_touch);
	stat_u64(c, "get_hits", s->get_hits);
	stat_u64(c, "get_misses", s->get_misses);
	stat_u64(c, "get_expired", s->get_expired);
	stat_u64(c, "get_flushed", s->get_flushed);
	stat_u64(c, "delete_misses", s->delete_misses);
	stat_u64(c, "delete_hits", s->delete_hits);
	stat_u64(c, "incr_misses", s->incr_misses);
	stat_u64(c, "incr_hits", s->incr_hits);
	stat_u64(c, "decr_misses", s->decr_misses);
	stat_u64(c, "decr_hits", s->decr_hits);
	stat_u64(c, "cas_misses", s->cas_misses);
	stat_u64(c, "cas_hits", s->cas_hits);
	stat_u64(c, "cas_badval", s->cas_badval);
	stat_u64(c, "touch_hits", s->touch_hits);
	stat_u64(c, "touch_misses", s->touch_misses);
	stat_u64(c, "bytes_read", s->bytes_read);
	stat_u64(c, "bytes_written", s->bytes_written);
	stat_u64(c, "limit_maxbytes", store->mem_limit);
	stat_u64(c, "threads", 1);
	stat_u64(c, "hash_power_level",
		 (uint64_t)__builtin_ctzll(store->hash_buckets));
	stat_u64(c, "hash_bytes", store->hash_buckets * 8);
	stat_u64(c, "bytes", s->bytes);
	stat_u64(c, "curr_items", s->curr_items);
	stat_u64(c, "total_items", s->total_items);
	stat_u64(c, "expired_unfetched", s->expired_unfetched);
	stat_u64(c, "evicted_unfetched", s->evicted_unfetched);
	stat_u64(c, "evictions", s->evictions);
	stat_u64(c, "reclaimed", s->reclaimed);
	stat_u64(c, "live_updates", liveupdate_get_num());
	stat_u64(c, "live_update_last_blackout_us", s->last_blackout_ns / 1000);
}

static bool is_get(const char *p, size_t n)
{
	return (n >= 4 && !memcmp(p, "get ", 4)) ||
	       (n >= 5 && (!memcmp(p, "gets ", 5) || !memcmp(p, "gat ", 4))) ||
	       (n >= 5 && !memcmp(p, "gats ", 5));
}

/* Run one command line. Return: bytes of data block consumed, -1: wait. */
static ssize_t dispatch(struct conn *c, char *line, size_t len,
			const char *data, size_t avail, bool *close)
{
	struct token t[MAX_TOKENS];
	size_t n;

	c->noreply = false;
	if (is_get(line, len)) {
		/* As many keys as the line holds, like memcached. */
		size_t max = len / 2 + 2;
		struct token *keys = malloc(max * sizeof(*keys));

		if (!keys) {
			reply_err(c, "SERVER_ERROR out of memory");
			return 0;
		}
		n = tokenize(line, len, keys, max);
		/* get, gets, gat, gats: a trailing 's' asks for the CAS. */
		cmd_get(c, keys, n, keys[0].len == 4, keys[0].s[1] == 'a');
		free(keys);
		return 0;
	}
	n = tokenize(line, len, t, MAX_TOKENS);
	if (!n) {
		reply_err(c, "ERROR");
		return 0;
	}
	if (tok_is(&t[0], "get"))
		cmd_get(c, t, n, false, false);
	else if (tok_is(&t[0], "gets"))
		cmd_get(c, t, n, true, false);
	else if (tok_is(&t[0], "gat"))
		cmd_get(c, t, n, false, true);
	else if (tok_is(&t[0], "gats"))
		cmd_get(c, t, n, true, true);
	else if (tok_is(&t[0], "set"))
		return cmd_store(c, t, n, OP_SET, data, avail);
	else if (tok_is(&t[0], "add"))
		return cmd_store(c, t, n, OP_ADD, data, avail);
	else if (tok_is(&t[0], "replace"))
		return cmd_store(c, t, n, OP_REPLACE, data, avail);
	else if (tok_is(&t[0], "append"))
		return cmd_store(c, t, n, OP_APPEND, data, avail);
	else if (tok_is(&t[0], "prepend"))
		return cmd_store(c, t, n, OP_PREPEND, data, avail);
	else if (tok_is(&t[0], "cas"))
		return cmd_store(c, t, n, OP_CAS, data, avail);
	else if (tok_is(&t[0], "delete"))
		cmd_delete(c, t, n);
	else if (tok_is(&t[0], "incr"))
		cmd_delta(c, t, n, true);
	else if (tok_is(&t[0], "decr"))
		cmd_delta(c, t, n, false);
	else if (tok_is(&t[0], "touch"))
		cmd_touch(c, t, n);
	else if (tok_is(&t[0], "flush_all"))
		cmd_flush(c, t, n);
	else if (tok_is(&t[0], "version"))
		conn_out(c, "VERSION " KV_VERSION_STRING "\r\n",
			 strlen("VERSION " KV_VERSION_STRING "\r\n"));
	else if (tok_is(&t[0], "stats"))
		cmd_stats(c, t, n);
	else if (tok_is(&t[0], "verbosity") && n >= 2 && n <= 3) {
		n = noreply_check(c, t, n);
		if (n >= 2)
			settings.verbose = atoi(t[1].s);
		reply(c, "OK");
	} else if (tok_is(&t[0], "quit"))
		*close = true;
	else
		reply_err(c, "ERROR");
	return 0;
}

/**
 * proto_process() - run every complete request in a connection's input
 * @c: the connection.
 *
 * Consumed bytes are removed from the input buffer; an incomplete request
 * stays at its start, and c->need says how large it will be if known.
 *
 * Return: PROTO_OK (all consumed or waiting for more), PROTO_BLOCKED
 * (stopped because the output is too large; call again once it drained),
 * PROTO_CLOSE (quit, or a line too long).
 */
enum proto_result proto_process(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	size_t pos = 0;
	enum proto_result res = PROTO_OK;

	c->need = 0;
	while (pos < r->rlen) {
		char *p = c->rbuf + pos, *nl;
		size_t avail = r->rlen - pos, linelen;
		bool close = false;
		ssize_t used;

		if (r->swallow) {
			size_t k = avail < r->swallow ? avail : r->swallow;

			r->swallow -= k;
			pos += k;
			continue;
		}
		if (r->wlen - r->wpos > OUT_HIGH_WATER) {
			res = PROTO_BLOCKED;
			break;
		}
		if ((unsigned char)*p == 0x80) { /* the binary protocol */
			used = bin_process(c, p, avail, &close);
			if (!used)
				break;
			store->stats.bytes_read += (uint64_t)used;
			pos += (size_t)used;
			if (close) {
				res = PROTO_CLOSE;
				break;
			}
			continue;
		}
		nl = memchr(p, '\n', avail);
		if (!nl) {
			if (avail > (is_get(p, avail) ? LINE_MAX_GET
						      : LINE_MAX_NONGET)) {
				reply_err(c, "CLIENT_ERROR line too long");
				res = PROTO_CLOSE;
				pos = r->rlen;
			}
			break;
		}
		linelen = (size_t)(nl - p);
		/*
		 * The tokenizer writes NULs into the line; a request that must
		 * wait for its data is parsed again, so parse a copy.
		 */
		{
			char line[LINE_MAX_NONGET + 1], *lp = line, *big = NULL;
			size_t ll = linelen;

			if (ll && p[ll - 1] == '\r')
				ll--;
			if (ll > LINE_MAX_NONGET) {
				big = malloc(ll + 1);
				if (!big)
					return PROTO_CLOSE;
				lp = big;
			}
			memcpy(lp, p, ll);
			lp[ll] = 0;
			used = dispatch(c, lp, ll, nl + 1, avail - linelen - 1,
					&close);
			free(big);
		}
		if (used < 0) {
			c->need += linelen + 1;
			break;
		}
		store->stats.bytes_read += linelen + 1 + (size_t)used;
		pos += linelen + 1 + (size_t)used;
		if (close) {
			res = PROTO_CLOSE;
			break;
		}
	}
	if (pos) {
		memmove(c->rbuf, c->rbuf + pos, r->rlen - pos);
		r->rlen -= (uint32_t)pos;
	}
	return res;
}
