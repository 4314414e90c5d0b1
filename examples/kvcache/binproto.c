// SPDX-License-Identifier: MIT
/*
 * The memcached binary protocol (deprecated by memcached, still spoken by
 * many clients).  A request is a 24-byte header and a body; like the text
 * protocol it is consumed only once it has fully arrived, so a binary
 * request cut by an update is completed by the next image the same way.
 * Quiet variants answer only errors (get quiet: only hits).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kv.h"

#define BIN_REQ 0x80
#define BIN_RES 0x81
#define BIN_HDR 24

enum bin_status {
	ST_OK = 0x00,
	ST_ENOENT = 0x01,
	ST_EEXISTS = 0x02,
	ST_E2BIG = 0x03,
	ST_EINVAL = 0x04,
	ST_NOT_STORED = 0x05,
	ST_DELTA_BADVAL = 0x06,
	ST_UNKNOWN = 0x81,
	ST_ENOMEM = 0x82,
};

enum bin_op {
	OPB_GET = 0x00,
	OPB_SET = 0x01,
	OPB_ADD = 0x02,
	OPB_REPLACE = 0x03,
	OPB_DELETE = 0x04,
	OPB_INCR = 0x05,
	OPB_DECR = 0x06,
	OPB_QUIT = 0x07,
	OPB_FLUSH = 0x08,
	OPB_GETQ = 0x09,
	OPB_NOOP = 0x0a,
	OPB_VERSION = 0x0b,
	OPB_GETK = 0x0c,
	OPB_GETKQ = 0x0d,
	OPB_APPEND = 0x0e,
	OPB_PREPEND = 0x0f,
	OPB_STAT = 0x10,
	OPB_SETQ = 0x11,
	OPB_ADDQ = 0x12,
	OPB_REPLACEQ = 0x13,
	OPB_DELETEQ = 0x14,
	OPB_INCRQ = 0x15,
	OPB_DECRQ = 0x16,
	OPB_QUITQ = 0x17,
	OPB_FLUSHQ = 0x18,
	OPB_APPENDQ = 0x19,
	OPB_PREPENDQ = 0x1a,
	OPB_VERBOSITY = 0x1b,
	OPB_TOUCH = 0x1c,
	OPB_GAT = 0x1d,
	OPB_GATQ = 0x1e,
	OPB_GATK = 0x23,
	OPB_GATKQ = 0x24,
};

struct bin_req {
	uint8_t op;
	uint8_t extlen;
	uint16_t keylen;
	uint32_t bodylen;
	unsigned char opaque[4];
	uint64_t cas;
	const unsigned char *ext;
	const char *key;
	const char *val;
	uint32_t vlen;
	bool quiet;
};

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* The response header, then extras, key and value (copied). */
static void respond_hdr(struct conn *c, const struct bin_req *r,
			uint16_t status, uint64_t cas, uint8_t extlen,
			uint16_t keylen, uint32_t vlen)
{
	unsigned char h[BIN_HDR] = {BIN_RES, r->op};

	h[2] = (unsigned char)(keylen >> 8);
	h[3] = (unsigned char)keylen;
	h[4] = extlen;
	h[6] = (unsigned char)(status >> 8);
	h[7] = (unsigned char)status;
	put32(h + 8, (uint32_t)extlen + keylen + vlen);
	memcpy(h + 12, r->opaque, 4);
	put64(h + 16, cas);
	conn_out(c, h, sizeof(h));
}

static void respond(struct conn *c, const struct bin_req *r, uint16_t status,
		    uint64_t cas, const void *ext, uint8_t extlen,
		    const void *key, uint16_t keylen, const void *val,
		    uint32_t vlen)
{
	respond_hdr(c, r, status, cas, extlen, keylen, vlen);
	conn_out(c, ext, extlen);
	conn_out(c, key, keylen);
	conn_out(c, val, vlen);
}

/* An error with memcached's message; sent even for quiet requests. */
static void respond_err(struct conn *c, const struct bin_req *r,
			uint16_t status)
{
	const char *msg;

	switch (status) {
	case ST_ENOENT:
		msg = "Not found";
		break;
	case ST_EEXISTS:
		msg = "Data exists for key.";
		break;
	case ST_E2BIG:
		msg = "Too large.";
		break;
	case ST_EINVAL:
		msg = "Invalid arguments";
		break;
	case ST_NOT_STORED:
		msg = "Not stored.";
		break;
	case ST_DELTA_BADVAL:
		msg = "Non-numeric server-side value for incr or decr";
		break;
	case ST_ENOMEM:
		msg = "Out of memory";
		break;
	default:
		msg = "Unknown command";
		break;
	}
	respond(c, r, status, 0, NULL, 0, NULL, 0, msg, (uint32_t)strlen(msg));
}

static void respond_ok(struct conn *c, const struct bin_req *r, uint64_t cas)
{
	if (!r->quiet)
		respond(c, r, ST_OK, cas, NULL, 0, NULL, 0, NULL, 0);
}

/* get, getk, gat, gatk and their quiet forms; touch (no value). */
static void bin_get(struct conn *c, const struct bin_req *r, bool with_key,
		    bool touch, bool with_value)
{
	unsigned char flags[4];
	struct kv_item *it;

	it = item_get(r->key, r->keylen, !touch || with_value);
	if (touch && it)
		it->exptime = (uint32_t)item_exptime(get32(r->ext));
	item_count_lookup(it, touch);
	if (!it) {
		if (r->quiet)
			return;
		if (with_key)
			respond(c, r, ST_ENOENT, 0, NULL, 0, r->key, r->keylen,
				NULL, 0);
		else
			respond_err(c, r, ST_ENOENT);
		return;
	}
	put32(flags, it->flags);
	respond_hdr(c, r, ST_OK, it->cas, 4, with_key ? it->nkey : 0,
		    with_value ? it->nbytes - 2 : 0);
	conn_out(c, flags, 4);
	if (with_key)
		conn_out(c, item_key(it), it->nkey);
	if (with_value)
		conn_out_item(c, it, 0, it->nbytes - 2);
}

static void bin_store(struct conn *c, const struct bin_req *r, enum store_op op)
{
	bool concat = op == OP_APPEND || op == OP_PREPEND;
	uint32_t flags = 0, exptime = 0;
	struct kv_item *it;
	uint16_t st;

	if (!concat) {
		flags = get32(r->ext);
		exptime = get32(r->ext + 4); /* unsigned, as memcached */
	}
	store->stats.cmd_set++;
	it = item_alloc(r->key, r->keylen, flags, item_exptime(exptime),
			(size_t)r->vlen + 2);
	if (!it) {
		respond_err(c, r, ST_ENOMEM);
		if (op == OP_SET)
			item_set_failed(r->key, r->keylen);
		return;
	}
	item_write(it, 0, r->val, r->vlen);
	item_write(it, r->vlen, "\r\n", 2);
	if (r->cas && !concat) /* memcached: any cas makes it a cas */
		op = OP_CAS;
	switch (item_store(it, op, r->cas)) {
	case STORE_STORED:
		respond_ok(c, r, store->cas_counter);
		return;
	case STORE_EXISTS:
		st = ST_EEXISTS;
		break;
	case STORE_NOT_FOUND:
		st = ST_ENOENT;
		break;
	default: /* not stored: as memcached words it per command */
		st = op == OP_ADD	? ST_EEXISTS
		     : op == OP_REPLACE ? ST_ENOENT
					: ST_NOT_STORED;
		break;
	}
	respond_err(c, r, st);
}

static void bin_delete(struct conn *c, const struct bin_req *r)
{
	struct kv_item *it;

	it = item_get(r->key, r->keylen, false);
	if (!it) {
		store->stats.delete_misses++;
		respond_err(c, r, ST_ENOENT);
		return;
	}
	if (r->cas && r->cas != it->cas) {
		respond_err(c, r, ST_EEXISTS);
		return;
	}
	store->stats.delete_hits++;
	item_unlink(it);
	respond_ok(c, r, 0);
}

static void bin_delta(struct conn *c, const struct bin_req *r, bool incr)
{
	unsigned char out[8];
	uint64_t delta, initial, v;
	uint32_t exp;

	delta = get64(r->ext);
	initial = get64(r->ext + 8);
	exp = get32(r->ext + 16);
	switch (item_delta(r->key, r->keylen, incr, delta, &v)) {
	case DELTA_OK:
		if (incr)
			store->stats.incr_hits++;
		else
			store->stats.decr_hits++;
		break;
	case DELTA_NON_NUMERIC:
		respond_err(c, r, ST_DELTA_BADVAL);
		return;
	case DELTA_EOM:
		respond_err(c, r, ST_ENOMEM);
		return;
	case DELTA_NOT_FOUND: {
		char buf[24];
		int n;
		struct kv_item *it;

		/* 0xffffffff: do not create. */
		if (exp == UINT32_MAX) {
			if (incr)
				store->stats.incr_misses++;
			else
				store->stats.decr_misses++;
			respond_err(c, r, ST_ENOENT);
			return;
		}
		n = snprintf(buf, sizeof(buf), "%" PRIu64 "\r\n", initial);
		it = item_alloc(r->key, r->keylen, 0, item_exptime(exp),
				(size_t)n);
		if (!it) {
			respond_err(c, r, ST_ENOMEM);
			return;
		}
		memcpy(item_value(it), buf, (size_t)n);
		if (item_store(it, OP_ADD, 0) != STORE_STORED) {
			respond_err(c, r, ST_NOT_STORED);
			return;
		}
		v = initial;
		break;
	}
	}
	if (r->quiet)
		return;
	put64(out, v);
	respond(c, r, ST_OK, store->cas_counter, NULL, 0, NULL, 0, out, 8);
}

/* The stat request being answered: its opaque goes into every pair. */
static const struct bin_req *stat_current;

static void stat_pair(struct conn *c, const char *name, const char *val)
{
	respond(c, stat_current, ST_OK, 0, NULL, 0, name,
		(uint16_t)strlen(name), val, (uint32_t)strlen(val));
}

static bool key_is(const struct bin_req *r, const char *s)
{
	size_t n = strlen(s);

	return r->keylen >= n && !memcmp(r->key, s, n);
}

static void bin_stat(struct conn *c, const struct bin_req *r)
{
	char group[16] = "";

	if (key_is(r, "reset")) {
		proto_stats_reset();
	} else if (key_is(r, "detail")) {
		if (!(r->keylen >= 9 && (!memcmp(r->key + 6, " on", 3) ||
					 !memcmp(r->key + 6, " off", 4) ||
					 !memcmp(r->key + 6, " dump", 5)))) {
			respond_err(c, r, ST_ENOENT);
			return;
		}
	} else {
		if (key_is(r, "settings"))
			strcpy(group, "settings");
		else if (r->keylen && r->keylen < sizeof(group))
			memcpy(group, r->key, r->keylen);
		else if (r->keylen)
			strcpy(group, "?");
		stat_current = r;
		if (!proto_stats(c, group, stat_pair)) {
			stat_current = NULL;
			respond_err(c, r, ST_ENOENT);
			return;
		}
		stat_current = NULL;
	}
	respond(c, r, ST_OK, 0, NULL, 0, NULL, 0, NULL, 0); /* the end */
}

/* memcached's per-command shape checks; a request failing one closes. */
static bool shape_ok(const struct bin_req *r, uint8_t base)
{
	uint32_t kl = r->keylen, el = r->extlen, bl = r->bodylen;

	switch (base) {
	case OPB_VERSION:
	case OPB_NOOP:
	case OPB_QUIT:
		return !el && !kl && !bl;
	case OPB_FLUSH:
		return !kl && bl == el && (el == 0 || el == 4);
	case OPB_SET:
	case OPB_ADD:
	case OPB_REPLACE:
		return el == 8 && kl && bl >= kl + 8;
	case OPB_GET:
	case OPB_GETK:
		return !el && bl == kl && kl;
	case OPB_DELETE:
		return kl && !el && bl == kl;
	case OPB_INCR:
	case OPB_DECR:
		return kl && el == 20 && bl == kl + el;
	case OPB_APPEND:
	case OPB_PREPEND:
		return kl && !el;
	case OPB_STAT:
		return !el;
	case OPB_TOUCH:
	case OPB_GAT:
	case OPB_GATK:
		return el == 4 && kl;
	}
	return true;
}

/* The quiet opcodes' loud twins. */
static uint8_t base_op(uint8_t op)
{
	switch (op) {
	case OPB_SETQ:
		return OPB_SET;
	case OPB_ADDQ:
		return OPB_ADD;
	case OPB_REPLACEQ:
		return OPB_REPLACE;
	case OPB_DELETEQ:
		return OPB_DELETE;
	case OPB_INCRQ:
		return OPB_INCR;
	case OPB_DECRQ:
		return OPB_DECR;
	case OPB_QUITQ:
		return OPB_QUIT;
	case OPB_FLUSHQ:
		return OPB_FLUSH;
	case OPB_APPENDQ:
		return OPB_APPEND;
	case OPB_PREPENDQ:
		return OPB_PREPEND;
	case OPB_GETQ:
		return OPB_GET;
	case OPB_GETKQ:
		return OPB_GETK;
	case OPB_GATQ:
		return OPB_GAT;
	case OPB_GATKQ:
		return OPB_GATK;
	}
	return op;
}

static bool known_op(uint8_t base)
{
	switch (base) {
	case OPB_GET:
	case OPB_SET:
	case OPB_ADD:
	case OPB_REPLACE:
	case OPB_DELETE:
	case OPB_INCR:
	case OPB_DECR:
	case OPB_QUIT:
	case OPB_FLUSH:
	case OPB_NOOP:
	case OPB_VERSION:
	case OPB_GETK:
	case OPB_APPEND:
	case OPB_PREPEND:
	case OPB_STAT:
	case OPB_TOUCH:
	case OPB_GAT:
	case OPB_GATK:
		return true;
	}
	return false;
}

static void bin_run(struct conn *c, struct bin_req *r, uint8_t base,
		    bool *close)
{
	kv_fault(KV_FAULT_POINT_REQUEST);
	switch (base) {
	case OPB_GET:
		bin_get(c, r, false, false, true);
		break;
	case OPB_GETK:
		bin_get(c, r, true, false, true);
		break;
	case OPB_GAT:
		bin_get(c, r, false, true, true);
		break;
	case OPB_GATK:
		bin_get(c, r, true, true, true);
		break;
	case OPB_TOUCH:
		bin_get(c, r, false, true, false);
		break;
	case OPB_SET:
		bin_store(c, r, OP_SET);
		break;
	case OPB_ADD:
		bin_store(c, r, OP_ADD);
		break;
	case OPB_REPLACE:
		bin_store(c, r, OP_REPLACE);
		break;
	case OPB_APPEND:
		bin_store(c, r, OP_APPEND);
		break;
	case OPB_PREPEND:
		bin_store(c, r, OP_PREPEND);
		break;
	case OPB_DELETE:
		bin_delete(c, r);
		break;
	case OPB_INCR:
		bin_delta(c, r, true);
		break;
	case OPB_DECR:
		bin_delta(c, r, false);
		break;
	case OPB_QUIT:
		respond_ok(c, r, 0);
		*close = true;
		break;
	case OPB_FLUSH:
		store->stats.cmd_flush++;
		items_flush(r->extlen ? (int64_t)get32(r->ext) : 0);
		respond_ok(c, r, 0);
		break;
	case OPB_NOOP:
		respond_ok(c, r, 0);
		break;
	case OPB_VERSION:
		respond(c, r, ST_OK, 0, NULL, 0, NULL, 0, KV_VERSION_STRING,
			(uint32_t)strlen(KV_VERSION_STRING));
		break;
	case OPB_STAT:
		bin_stat(c, r);
		break;
	}
}

/**
 * bin_process() - run one binary request from the start of the input
 * @c: the connection.
 * @p: the request's first byte (the 0x80 magic).
 * @avail: bytes available from @p.
 * @close: set when the connection is to be closed after the answer.
 *
 * As memcached, a request is judged once its header, extras and key are
 * in: a malformed one is answered and closes the connection, a value too
 * large for any item is answered and swallowed rather than buffered, an
 * unknown command swallows its body length (past its extras and key, as
 * memcached does).  Storage requests are run once their value is in.
 *
 * Return: bytes consumed, or 0 to wait for more (c->need says how many).
 */
ssize_t bin_process(struct conn *c, const char *p, size_t avail, bool *close)
{
	const unsigned char *h = (const unsigned char *)p;
	struct bin_req r = {0};
	uint8_t base;
	size_t head;

	if (avail < BIN_HDR) {
		c->need = BIN_HDR;
		return 0;
	}
	r.op = h[1];
	r.keylen = get16(h + 2);
	r.extlen = h[4];
	r.bodylen = get32(h + 8);
	memcpy(r.opaque, h + 12, 4);
	r.cas = get64(h + 16);
	head = BIN_HDR + (size_t)r.extlen + r.keylen;
	if (avail < head) {
		c->need = head;
		return 0;
	}
	r.ext = h + BIN_HDR;
	r.key = p + BIN_HDR + r.extlen;
	if ((uint32_t)r.keylen + r.extlen > r.bodylen) {
		respond_err(c, &r, ST_UNKNOWN);
		*close = true;
		return (ssize_t)head;
	}
	r.vlen = r.bodylen - r.keylen - r.extlen;
	base = base_op(r.op);
	r.quiet = base != r.op;
	if (r.keylen > KEY_MAX_LENGTH || !shape_ok(&r, base)) {
		respond_err(c, &r, ST_EINVAL);
		*close = true;
		return (ssize_t)head;
	}
	if (!known_op(base)) {
		respond_err(c, &r, ST_UNKNOWN);
		c->rec->swallow = r.bodylen;
		return (ssize_t)head;
	}
	if (base == OPB_SET || base == OPB_ADD || base == OPB_REPLACE ||
	    base == OPB_APPEND || base == OPB_PREPEND) {
		uint32_t flags = base == OPB_APPEND || base == OPB_PREPEND
					 ? 0
					 : get32(r.ext);

		if (item_mc_total(r.keylen, flags, (size_t)r.vlen + 2) >
		    store->item_size_max) {
			respond_err(c, &r, ST_E2BIG);
			c->rec->swallow = r.vlen;
			if (base == OPB_SET)
				item_set_failed(r.key, r.keylen);
			return (ssize_t)head;
		}
	}
	if (avail < head + r.vlen) {
		c->need = head + r.vlen;
		return 0;
	}
	r.val = r.key + r.keylen;
	bin_run(c, &r, base, close);
	return (ssize_t)(head + r.vlen);
}
