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

static void respond(struct conn *c, const struct bin_req *r, uint16_t status,
		    uint64_t cas, const void *ext, uint8_t extlen,
		    const void *key, uint16_t keylen, const void *val,
		    uint32_t vlen)
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
	if (extlen)
		conn_out(c, ext, extlen);
	if (keylen)
		conn_out(c, key, keylen);
	if (vlen)
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

static bool shape(const struct bin_req *r, unsigned ext, bool key, int val)
{
	return r->extlen == ext && (key ? r->keylen > 0 : r->keylen == 0) &&
	       (val < 0 || (val ? true : r->vlen == 0));
}

static void bin_get(struct conn *c, const struct bin_req *r, bool with_key,
		    bool touch)
{
	unsigned char flags[4];
	struct kv_item *it;

	if (!shape(r, touch ? 4 : 0, true, 0)) {
		respond_err(c, r, ST_EINVAL);
		return;
	}
	it = item_get(r->key, r->keylen, true);
	store->stats.cmd_get++;
	if (touch) {
		store->stats.cmd_touch++;
		if (it) {
			it->exptime = item_exptime((int32_t)get32(r->ext));
			store->stats.touch_hits++;
		} else {
			store->stats.touch_misses++;
		}
	}
	if (!it) {
		store->stats.get_misses++;
		if (r->quiet)
			return;
		if (with_key)
			respond(c, r, ST_ENOENT, 0, NULL, 0, r->key, r->keylen,
				NULL, 0);
		else
			respond_err(c, r, ST_ENOENT);
		return;
	}
	store->stats.get_hits++;
	put32(flags, it->flags);
	respond(c, r, ST_OK, it->cas, flags, 4, with_key ? item_key(it) : NULL,
		with_key ? it->nkey : 0, item_value(it), it->nbytes - 2);
}

static void bin_store(struct conn *c, const struct bin_req *r, enum store_op op)
{
	bool concat = op == OP_APPEND || op == OP_PREPEND;
	uint32_t flags = 0;
	int32_t exptime = 0;
	struct kv_item *it;
	uint16_t st;

	if (!shape(r, concat ? 0 : 8, true, -1)) {
		respond_err(c, r, ST_EINVAL);
		return;
	}
	if (!concat) {
		flags = get32(r->ext);
		exptime = (int32_t)get32(r->ext + 4);
	}
	store->stats.cmd_set++;
	if (item_total(r->keylen, (size_t)r->vlen + 2) > store->item_size_max) {
		respond_err(c, r, ST_E2BIG);
		return;
	}
	it = item_alloc(r->key, r->keylen, flags, item_exptime(exptime),
			(size_t)r->vlen + 2);
	if (!it) {
		respond_err(c, r, ST_ENOMEM);
		return;
	}
	memcpy(item_value(it), r->val, r->vlen);
	memcpy(item_value(it) + r->vlen, "\r\n", 2);
	if (r->cas && (op == OP_SET || op == OP_REPLACE))
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
	case STORE_TOO_LARGE:
		st = ST_E2BIG;
		break;
	case STORE_NO_MEMORY:
		st = ST_ENOMEM;
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

	if (!shape(r, 0, true, 0)) {
		respond_err(c, r, ST_EINVAL);
		return;
	}
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

	if (!shape(r, 20, true, 0)) {
		respond_err(c, r, ST_EINVAL);
		return;
	}
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

		if (incr)
			store->stats.incr_misses++;
		else
			store->stats.decr_misses++;
		/* 0xffffffff: do not create. */
		if (exp == UINT32_MAX) {
			respond_err(c, r, ST_ENOENT);
			return;
		}
		n = snprintf(buf, sizeof(buf), "%" PRIu64 "\r\n", initial);
		it = item_alloc(r->key, r->keylen, 0,
				item_exptime((int32_t)exp), (size_t)n);
		if (!it) {
			respond_err(c, r, ST_ENOMEM);
			return;
		}
		memcpy(item_value(it), buf, (size_t)n);
		item_store(it, OP_SET, 0);
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

static void bin_stat(struct conn *c, const struct bin_req *r)
{
	if (r->extlen || r->vlen) {
		respond_err(c, r, ST_EINVAL);
		return;
	}
	if (r->keylen == 5 && !memcmp(r->key, "reset", 5)) {
		proto_stats_reset();
	} else if (r->keylen) {
		respond_err(c, r, ST_ENOENT);
		return;
	} else {
		stat_current = r;
		proto_stats(c, stat_pair);
		stat_current = NULL;
	}
	respond(c, r, ST_OK, 0, NULL, 0, NULL, 0, NULL, 0); /* the end */
}

static void bin_run(struct conn *c, struct bin_req *r, bool *close)
{
	switch (r->op) {
	case OPB_GETQ:
	case OPB_GETKQ:
	case OPB_GATQ:
	case OPB_GATKQ:
	case OPB_SETQ:
	case OPB_ADDQ:
	case OPB_REPLACEQ:
	case OPB_DELETEQ:
	case OPB_INCRQ:
	case OPB_DECRQ:
	case OPB_QUITQ:
	case OPB_FLUSHQ:
	case OPB_APPENDQ:
	case OPB_PREPENDQ:
		r->quiet = true;
		break;
	}
	switch (r->op) {
	case OPB_GET:
	case OPB_GETQ:
		bin_get(c, r, false, false);
		break;
	case OPB_GETK:
	case OPB_GETKQ:
		bin_get(c, r, true, false);
		break;
	case OPB_GAT:
	case OPB_GATQ:
		bin_get(c, r, false, true);
		break;
	case OPB_GATK:
	case OPB_GATKQ:
		bin_get(c, r, true, true);
		break;
	case OPB_SET:
	case OPB_SETQ:
		bin_store(c, r, OP_SET);
		break;
	case OPB_ADD:
	case OPB_ADDQ:
		bin_store(c, r, OP_ADD);
		break;
	case OPB_REPLACE:
	case OPB_REPLACEQ:
		bin_store(c, r, OP_REPLACE);
		break;
	case OPB_APPEND:
	case OPB_APPENDQ:
		bin_store(c, r, OP_APPEND);
		break;
	case OPB_PREPEND:
	case OPB_PREPENDQ:
		bin_store(c, r, OP_PREPEND);
		break;
	case OPB_DELETE:
	case OPB_DELETEQ:
		bin_delete(c, r);
		break;
	case OPB_INCR:
	case OPB_INCRQ:
		bin_delta(c, r, true);
		break;
	case OPB_DECR:
	case OPB_DECRQ:
		bin_delta(c, r, false);
		break;
	case OPB_QUIT:
	case OPB_QUITQ:
		respond_ok(c, r, 0);
		*close = true;
		break;
	case OPB_FLUSH:
	case OPB_FLUSHQ:
		if ((r->extlen != 0 && r->extlen != 4) || r->keylen ||
		    r->vlen) {
			respond_err(c, r, ST_EINVAL);
			break;
		}
		store->stats.cmd_flush++;
		items_flush(r->extlen ? (int32_t)get32(r->ext) : 0);
		respond_ok(c, r, 0);
		break;
	case OPB_NOOP:
		respond_ok(c, r, 0);
		break;
	case OPB_VERSION:
		respond(c, r, ST_OK, 0, NULL, 0, NULL, 0, KV_VERSION_STRING,
			(uint32_t)strlen(KV_VERSION_STRING));
		break;
	case OPB_VERBOSITY:
		if (r->extlen != 4) {
			respond_err(c, r, ST_EINVAL);
			break;
		}
		settings.verbose = (int)get32(r->ext);
		respond_ok(c, r, 0);
		break;
	case OPB_TOUCH: {
		struct kv_item *it;

		if (!shape(r, 4, true, 0)) {
			respond_err(c, r, ST_EINVAL);
			break;
		}
		store->stats.cmd_touch++;
		it = item_get(r->key, r->keylen, false);
		if (!it) {
			store->stats.touch_misses++;
			respond_err(c, r, ST_ENOENT);
			break;
		}
		store->stats.touch_hits++;
		it->exptime = item_exptime((int32_t)get32(r->ext));
		respond_ok(c, r, it->cas);
		break;
	}
	case OPB_STAT:
		bin_stat(c, r);
		break;
	default:
		respond_err(c, r, ST_UNKNOWN);
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
 * A body larger than any item could be is answered at once and then
 * swallowed rather than buffered.
 *
 * Return: bytes consumed, or 0 to wait for more (c->need says how many).
 */
ssize_t bin_process(struct conn *c, const char *p, size_t avail, bool *close)
{
	const unsigned char *h = (const unsigned char *)p;
	struct bin_req r = {0};

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
	if ((uint32_t)r.keylen + r.extlen > r.bodylen ||
	    r.keylen > KEY_MAX_LENGTH) {
		/* memcached closes here: the stream cannot be trusted. */
		respond_err(c, &r, ST_EINVAL);
		*close = true;
		return (ssize_t)avail;
	}
	if (r.bodylen > store->item_size_max + 512) {
		respond_err(c, &r, ST_E2BIG);
		c->rec->swallow = r.bodylen;
		return BIN_HDR;
	}
	if (avail < BIN_HDR + (size_t)r.bodylen) {
		c->need = BIN_HDR + (size_t)r.bodylen;
		return 0;
	}
	r.ext = h + BIN_HDR;
	r.key = p + BIN_HDR + r.extlen;
	r.val = r.key + r.keylen;
	r.vlen = r.bodylen - r.keylen - r.extlen;
	bin_run(c, &r, close);
	return BIN_HDR + (ssize_t)r.bodylen;
}
