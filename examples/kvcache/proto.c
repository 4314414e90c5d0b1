// SPDX-License-Identifier: MIT
/*
 * The memcached text protocol, answering as memcached 1.6 does (the
 * differential test, tests/kvcache/differential.py, compares the two byte
 * for byte).
 *
 * proto_process() works on the unprocessed input of one connection and
 * consumes only whole requests: a storage command stays in the input
 * buffer until its data block has fully arrived.  The input buffer lives
 * in handover memory, so a request half received when an update begins is
 * simply completed by the next image; the only parser state that travels
 * is in the connection record: the bytes still to swallow after a refused
 * value, and where a multi-get stopped for the output cap.
 */
#define _GNU_SOURCE
#include <ctype.h>
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

#define MAX_TOKENS 24		 /* memcached's, the terminal token included */
#define LINE_MAX_NONGET 2048	 /* as memcached: longer lines close */
#define LINE_MAX_GET (16u << 20) /* multi-gets may be long (see docs) */

struct token {
	char *s;
	size_t len;
};

/* Every answer, errors included, is suppressed by noreply (as memcached). */
static void reply(struct conn *c, const char *s)
{
	if (c->noreply) {
		c->noreply = false;
		return;
	}
	conn_out(c, s, strlen(s));
	conn_out(c, "\r\n", 2);
}

/*
 * memcached's tokenizer: at most MAX_TOKENS - 1 tokens.  Return: the count
 * of tokens plus the terminal one, as memcached counts (so the numbers
 * below are memcached's).
 */
static size_t tokenize(char *line, struct token *t)
{
	size_t n = 0;
	char *s = line, *e = line;

	for (; *e; e++) {
		if (*e != ' ')
			continue;
		if (s != e) {
			t[n].s = s;
			t[n].len = (size_t)(e - s);
			n++;
			*e = 0;
			if (n == MAX_TOKENS - 1) {
				s = e + 1;
				e = s;
				break;
			}
		}
		s = e + 1;
	}
	if (s != e && n < MAX_TOKENS - 1) {
		t[n].s = s;
		t[n].len = (size_t)(e - s);
		n++;
	}
	t[n].s = *e ? e : NULL;
	t[n].len = 0;
	return n + 1;
}

static bool tok_is(const struct token *t, const char *s)
{
	return t->s && !strcmp(t->s, s);
}

/* memcached's safe_strtoull(). */
static bool mc_strtoull(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long l;

	errno = 0;
	l = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return false;
	if (!(isspace((unsigned char)*end) || (!*end && end != s)))
		return false;
	if ((long long)l < 0 && strchr(s, '-'))
		return false;
	*v = l;
	return true;
}

/* memcached's safe_strtoul(): parsed as 64 bits, kept as 32 (truncated). */
static bool mc_strtoul(const char *s, uint32_t *v)
{
	char *end;
	unsigned long l;

	errno = 0;
	l = strtoul(s, &end, 10);
	if (errno == ERANGE)
		return false;
	if (!(isspace((unsigned char)*end) || (!*end && end != s)))
		return false;
	if ((long)l < 0 && strchr(s, '-'))
		return false;
	*v = (uint32_t)l;
	return true;
}

/* memcached's safe_strtol(): parsed as 64 bits, kept as 32 (truncated). */
static bool mc_strtol(const char *s, int32_t *v)
{
	char *end;
	long l;

	errno = 0;
	l = strtol(s, &end, 10);
	if (errno == ERANGE)
		return false;
	if (!(isspace((unsigned char)*end) || (!*end && end != s)))
		return false;
	*v = (int32_t)(uint32_t)(unsigned long)l;
	return true;
}

/* As memcached's set_noreply_maybe(): the last token "noreply" silences. */
static bool noreply_check(struct conn *c, struct token *t, size_t nt)
{
	if (tok_is(&t[nt - 2], "noreply"))
		c->noreply = true;
	return c->noreply;
}

/* memcached: exptimes below 0 become "just past 30 days": expired. */
static int64_t text_exptime(int32_t e)
{
	return item_exptime(e < 0 ? KV_REALTIME_MAXDELTA + 1 : e);
}

static bool key_too_long(struct conn *c, const struct token *t)
{
	if (t->len <= KEY_MAX_LENGTH)
		return false;
	reply(c, "CLIENT_ERROR bad command line format");
	return true;
}

/* "VALUE key flags bytes [cas]\r\n" then the value, sent from the item. */
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
	conn_out_item(c, it, 0, it->nbytes);
}

static size_t skip_spaces(const char *p, size_t i, size_t len)
{
	while (i < len && p[i] == ' ')
		i++;
	return i;
}

static size_t token_end(const char *p, size_t i, size_t len)
{
	while (i < len && p[i] != ' ')
		i++;
	return i;
}

/*
 * get, gets, gat, gats on the raw line (not copied, not cut up: a request
 * that stops for the output cap stays intact for this image or the next).
 * @line/@len: the line without its end of line.  Keys are answered in
 * order; when the output is over its cap the rest waits, and
 * rec->get_resume says where to go on.
 * Return: true when done, false to be called again with the same line.
 */
static bool cmd_get(struct conn *c, const char *line, size_t len, bool with_cas,
		    bool touch)
{
	struct kv_conn_rec *r = c->rec;
	int64_t exptime = 0;
	size_t i = skip_spaces(line, 0, len);

	i = skip_spaces(line, token_end(line, i, len), len); /* the command */
	if (touch) {
		size_t e = token_end(line, i, len);
		char num[32];
		int32_t x;

		if (i == len) { /* memcached: "gat" alone is an error */
			reply(c, "ERROR");
			return true;
		}
		snprintf(num, sizeof(num), "%.*s",
			 (int)(e - i < sizeof(num) ? e - i : sizeof(num) - 1),
			 line + i);
		if (e - i >= sizeof(num) || !mc_strtol(num, &x)) {
			reply(c, "CLIENT_ERROR invalid exptime argument");
			return true;
		}
		exptime = text_exptime(x);
		i = skip_spaces(line, e, len);
	} else if (i == len) {
		reply(c, "ERROR");
		return true;
	}
	if (!r->get_resume) {
		/* memcached answers an over-long key alone, values dropped. */
		for (size_t k = i; k < len;) {
			size_t e = token_end(line, k, len);

			if (e - k > KEY_MAX_LENGTH) {
				reply(c,
				      "CLIENT_ERROR bad command line format");
				return true;
			}
			k = skip_spaces(line, e, len);
		}
	} else if (r->get_resume > i && r->get_resume <= len) {
		i = r->get_resume;
	}
	r->get_resume = 0;
	while (i < len) {
		size_t e = token_end(line, i, len);
		struct kv_item *it;

		if (r->pending > KV_OUT_CAP) {
			r->get_resume = (uint32_t)i;
			return false;
		}
		it = item_get(line + i, e - i, true);
		if (touch && it)
			it->exptime = (uint32_t)exptime;
		item_count_lookup(it, touch);
		if (it)
			out_value(c, it, with_cas);
		i = skip_spaces(line, e, len);
	}
	conn_out(c, "END\r\n", 5);
	return true;
}

static const char *store_msg(enum store_result res)
{
	switch (res) {
	case STORE_STORED:
		return "STORED";
	case STORE_EXISTS:
		return "EXISTS";
	case STORE_NOT_FOUND:
		return "NOT_FOUND";
	case STORE_TOO_LARGE:
		return "SERVER_ERROR object too large for cache";
	case STORE_NO_MEMORY:
		return "SERVER_ERROR out of memory storing object";
	default:
		return "NOT_STORED";
	}
}

/*
 * set, add, replace, append, prepend, cas.  @data is the start of the
 * data block, @avail the bytes of it already received.
 * Return: bytes of the data block consumed, or -1 to wait for more.
 */
static ssize_t cmd_store(struct conn *c, struct token *t, size_t nt,
			 enum store_op op, const char *data, size_t avail)
{
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas = 0;
	struct kv_item *it;
	size_t nbytes;

	noreply_check(c, t, nt);
	if (key_too_long(c, &t[1]))
		return 0;
	if (!mc_strtoul(t[2].s, &flags) || !mc_strtol(t[3].s, &exptime) ||
	    !mc_strtol(t[4].s, &vlen)) {
		reply(c, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (op == OP_CAS && !mc_strtoull(t[5].s, &cas)) {
		reply(c, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (vlen < 0 || vlen > INT32_MAX - 2) {
		reply(c, "CLIENT_ERROR bad command line format");
		return 0;
	}
	nbytes = (size_t)vlen + 2;
	if (item_mc_total(t[1].len, flags, nbytes) > store->item_size_max) {
		reply(c, "SERVER_ERROR object too large for cache");
		c->rec->swallow = nbytes;
		if (op == OP_SET)
			item_set_failed(t[1].s, t[1].len);
		return 0;
	}
	if (avail < nbytes) {
		/* Keep the whole request in the input buffer until it is in. */
		c->need = nbytes;
		return -1;
	}
	store->stats.cmd_set++;
	it = item_alloc(t[1].s, t[1].len, flags, text_exptime(exptime), nbytes);
	if (!it) {
		reply(c, "SERVER_ERROR out of memory storing object");
		if (op == OP_SET)
			item_set_failed(t[1].s, t[1].len);
		return (ssize_t)nbytes;
	}
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		/* memcached reads the block, then refuses it. */
		item_discard(it);
		reply(c, "CLIENT_ERROR bad data chunk");
		return (ssize_t)nbytes;
	}
	item_write(it, 0, data, nbytes);
	reply(c, store_msg(item_store(it, op, cas)));
	return (ssize_t)nbytes;
}

static void cmd_delete(struct conn *c, struct token *t, size_t nt)
{
	if (nt > 3) {
		bool zero = tok_is(&t[2], "0");
		bool nr = noreply_check(c, t, nt);

		if (!((nt == 4 && (zero || nr)) || (nt == 5 && zero && nr))) {
			reply(c, "CLIENT_ERROR bad command line format.  "
				 "Usage: delete <key> [noreply]");
			return;
		}
	}
	if (key_too_long(c, &t[1]))
		return;
	if (item_delete(t[1].s, t[1].len)) {
		store->stats.delete_hits++;
		reply(c, "DELETED");
	} else {
		store->stats.delete_misses++;
		reply(c, "NOT_FOUND");
	}
}

static void cmd_delta(struct conn *c, struct token *t, size_t nt, bool incr)
{
	uint64_t delta, v;
	char buf[24];

	noreply_check(c, t, nt);
	if (key_too_long(c, &t[1]))
		return;
	if (!mc_strtoull(t[2].s, &delta)) {
		reply(c, "CLIENT_ERROR invalid numeric delta argument");
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
		reply(c, "CLIENT_ERROR cannot increment or decrement "
			 "non-numeric value");
		break;
	case DELTA_EOM:
		reply(c, "SERVER_ERROR out of memory");
		break;
	}
}

static void cmd_touch(struct conn *c, struct token *t, size_t nt)
{
	struct kv_item *it;
	int32_t e;

	noreply_check(c, t, nt);
	if (key_too_long(c, &t[1]))
		return;
	if (!mc_strtol(t[2].s, &e)) {
		reply(c, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	store->stats.cmd_touch++;
	it = item_get(t[1].s, t[1].len, false);
	if (it) {
		it->exptime = (uint32_t)text_exptime(e);
		store->stats.touch_hits++;
		reply(c, "TOUCHED");
	} else {
		store->stats.touch_misses++;
		reply(c, "NOT_FOUND");
	}
}

static void cmd_flush(struct conn *c, struct token *t, size_t nt)
{
	int32_t delay = 0;

	noreply_check(c, t, nt);
	store->stats.cmd_flush++;
	if (nt != (c->noreply ? 3u : 2u) && !mc_strtol(t[1].s, &delay)) {
		reply(c, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	items_flush(delay);
	reply(c, "OK");
}

static void cmd_verbosity(struct conn *c, struct token *t, size_t nt)
{
	uint32_t level;

	noreply_check(c, t, nt);
	if (!mc_strtoul(t[1].s, &level)) {
		reply(c, "CLIENT_ERROR bad command line format");
		return;
	}
	settings.verbose = level > 2 ? 2 : (int)level;
	reply(c, "OK");
}

/* ---- statistics ---- */

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

/* A per-class statistic: "PREFIX:N:NAME". */
static void stat_cls(struct conn *c, const char *prefix, unsigned id,
		     const char *name, uint64_t v)
{
	char key[64];

	snprintf(key, sizeof(key), "%s%u:%s", prefix, id, name);
	stat_u64(c, key, v);
}

static void stats_general(struct conn *c)
{
	const struct kv_stats *s = &store->stats;
	struct rusage ru;
	int64_t now = kv_now();
	char buf[64];
	/* memcached's counters that have no meaning here: always 0. */
	static const char *const zero1[] = {
		"response_obj_oom", "response_obj_count", "response_obj_bytes",
		"read_buf_count",   "read_buf_bytes",	  "read_buf_bytes_free",
		"read_buf_oom",	    "reserved_fds"};

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
	for (size_t i = 0; i < sizeof(zero1) / sizeof(zero1[0]); i++)
		stat_u64(c, zero1[i], 0);
	stat_u64(c, "cmd_get", s->cmd_get);
	stat_u64(c, "cmd_set", s->cmd_set);
	stat_u64(c, "cmd_flush", s->cmd_flush);
	stat_u64(c, "cmd_touch", s->cmd_touch);
	stat_u64(c, "cmd_meta", 0);
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
	stat_u64(c, "store_too_large", 0);
	stat_u64(c, "store_no_memory", 0);
	stat_u64(c, "auth_cmds", 0);
	stat_u64(c, "auth_errors", 0);
	stat_u64(c, "bytes_read", s->bytes_read);
	stat_u64(c, "bytes_written", s->bytes_written);
	stat_u64(c, "limit_maxbytes", store->mem_limit);
	stat_u64(c, "accepting_conns", 1);
	stat_u64(c, "listen_disabled_num", 0);
	stat_u64(c, "time_in_listen_disabled_us", 0);
	stat_u64(c, "threads", 1);
	stat_u64(c, "conn_yields", 0);
	stat_u64(c, "hash_power_level",
		 (uint64_t)__builtin_ctzll(store->hash_buckets));
	stat_u64(c, "hash_bytes", store->hash_buckets * 8);
	stat_u64(c, "hash_is_expanding", 0);
	{
		static const char *const zero2[] = {
			"slab_reassign_rescues",
			"slab_reassign_chunk_rescues",
			"slab_reassign_evictions_nomem",
			"slab_reassign_inline_reclaim",
			"slab_reassign_busy_items",
			"slab_reassign_busy_deletes",
			"slab_reassign_running",
			"lru_crawler_running",
			"lru_crawler_starts",
			"lru_maintainer_juggles",
			"malloc_fails",
			"log_worker_dropped",
			"log_worker_written",
			"log_watcher_skipped",
			"log_watcher_sent",
			"log_watchers",
			"unexpected_napi_ids",
			"round_robin_fallback"};

		for (size_t i = 0; i < sizeof(zero2) / sizeof(zero2[0]); i++) {
			stat_u64(c, zero2[i], 0);
			if (!strcmp(zero2[i], "slab_reassign_running"))
				stat_u64(c, "slabs_moved", s->slabs_moved);
		}
	}
	stat_u64(c, "bytes", s->bytes);
	stat_u64(c, "curr_items", s->curr_items);
	stat_u64(c, "total_items", s->total_items);
	stat_u64(c, "slab_global_page_pool", store->npages - store->pages_used);
	stat_u64(c, "expired_unfetched", s->expired_unfetched);
	stat_u64(c, "evicted_unfetched", s->evicted_unfetched);
	stat_u64(c, "evicted_active", 0);
	stat_u64(c, "evictions", s->evictions);
	stat_u64(c, "reclaimed", s->reclaimed);
	{
		static const char *const zero3[] = {
			"crawler_reclaimed", "crawler_items_checked",
			"lrutail_reflocked", "moves_to_cold",
			"moves_to_warm",     "moves_within_lru",
			"direct_reclaims",   "lru_bumps_dropped"};

		for (size_t i = 0; i < sizeof(zero3) / sizeof(zero3[0]); i++)
			stat_u64(c, zero3[i], 0);
	}
	/* kvcache's own, after memcached's. */
	stat_u64(c, "live_updates", liveupdate_get_num());
	stat_u64(c, "live_update_last_blackout_us", s->last_blackout_ns / 1000);
	/* Clients this image registered with epoll (not those it inherited). */
	stat_u64(c, "conn_epoll_adds", conn_epoll_adds);
}

static void stats_settings(struct conn *c)
{
	char buf[32];
	/* Settings memcached reports that are fixed here. */
	static const char *const fixed[][2] = {
		{"num_threads_per_udp", "1"},
		{"stat_key_prefix", ":"},
		{"detail_enabled", "no"},
		{"reqs_per_event", "20"},
		{"cas_enabled", "yes"},
		{"tcp_backlog", "4096"},
		{"binding_protocol", "auto-negotiate"},
		{"auth_enabled_sasl", "no"},
		{"auth_enabled_ascii", "no"},
	};
	static const char *const fixed2[][2] = {
		{"maxconns_fast", "yes"},	 {"hashpower_init", "0"},
		{"slab_reassign", "no"},	 {"slab_automove", "0"},
		{"slab_automove_ratio", "0.80"}, {"slab_automove_window", "30"},
	};
	static const char *const fixed3[][2] = {
		{"lru_crawler", "no"},
		{"lru_crawler_sleep", "100"},
		{"lru_crawler_tocrawl", "0"},
		{"tail_repair_time", "0"},
		{"flush_enabled", "yes"},
		{"dump_enabled", "no"},
		{"hash_algorithm", "fnv1a"},
		{"lru_maintainer_thread", "no"},
		{"lru_segmented", "no"},
		{"hot_lru_pct", "20"},
		{"warm_lru_pct", "40"},
		{"hot_max_factor", "0.20"},
		{"warm_max_factor", "2.00"},
		{"temp_lru", "no"},
		{"temporary_ttl", "61"},
		{"idle_timeout", "0"},
		{"watcher_logbuf_size", "262144"},
		{"worker_logbuf_size", "65536"},
		{"read_buf_mem_limit", "0"},
		{"track_sizes", "no"},
		{"inline_ascii_response", "no"},
		{"ext_item_size", "512"},
		{"ext_item_age", "4294967295"},
		{"ext_low_ttl", "0"},
		{"ext_recache_rate", "2000"},
		{"ext_wbuf_size", "4194304"},
		{"ext_compact_under", "0"},
		{"ext_drop_under", "0"},
		{"ext_max_sleep", "1000000"},
		{"ext_max_frag", "0.80"},
		{"slab_automove_freeratio", "0.010"},
		{"ext_drop_unread", "no"},
		{"ssl_enabled", "no"},
		{"ssl_chain_cert", "(null)"},
		{"ssl_key", "(null)"},
		{"ssl_verify_mode", "0"},
		{"ssl_keyformat", "1"},
		{"ssl_ciphers", "NULL"},
		{"ssl_ca_cert", "NULL"},
		{"ssl_wbuf_size", "16384"},
		{"ssl_session_cache", "no"},
		{"ssl_kernel_tls", "no"},
		{"ssl_min_version", "tlsv1.2"},
		{"num_napi_ids", "(null)"},
		{"memory_file", "(null)"},
	};

	stat_u64(c, "maxbytes", store->mem_limit);
	stat_u64(c, "maxconns", settings.maxconns);
	stat_u64(c, "tcpport", settings.port);
	stat_u64(c, "udpport", 0);
	stat_str(c, "inter", settings.addr ? settings.addr : "NULL");
	stat_u64(c, "verbosity", (uint64_t)settings.verbose);
	stat_u64(c, "oldest", 0);
	stat_str(c, "evictions", "on");
	stat_str(c, "domain_socket", "NULL");
	stat_str(c, "umask", "700");
	stat_str(c, "shutdown_command", "no");
	snprintf(buf, sizeof(buf), "%.2f", settings.factor);
	stat_str(c, "growth_factor", buf);
	stat_u64(c, "chunk_size", KV_CLASS_MIN - KV_MC_ITEM_HDR + 8);
	stat_u64(c, "num_threads", 1);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		stat_str(c, fixed[i][0], fixed[i][1]);
	stat_u64(c, "item_size_max", store->item_size_max);
	for (size_t i = 0; i < sizeof(fixed2) / sizeof(fixed2[0]); i++)
		stat_str(c, fixed2[i][0], fixed2[i][1]);
	stat_u64(c, "slab_chunk_max", store->page_size / 2);
	for (size_t i = 0; i < sizeof(fixed3) / sizeof(fixed3[0]); i++)
		stat_str(c, fixed3[i][0], fixed3[i][1]);
}

static void stats_slabs(struct conn *c)
{
	unsigned active = 0;

	for (unsigned i = 0; i < store->nclasses; i++) {
		const struct kv_class *k = &store->cls[i];
		unsigned id = i + 1;

		if (!k->npages)
			continue;
		active++;
		stat_cls(c, "", id, "chunk_size", k->size);
		stat_cls(c, "", id, "chunks_per_page", k->perslab);
		stat_cls(c, "", id, "total_pages", k->npages);
		stat_cls(c, "", id, "total_chunks", k->npages * k->perslab);
		stat_cls(c, "", id, "used_chunks",
			 k->npages * k->perslab - k->nfree);
		stat_cls(c, "", id, "free_chunks", k->nfree);
		stat_cls(c, "", id, "free_chunks_end", 0);
		stat_cls(c, "", id, "get_hits", 0);
		stat_cls(c, "", id, "cmd_set", 0);
		stat_cls(c, "", id, "delete_hits", 0);
		stat_cls(c, "", id, "incr_hits", 0);
		stat_cls(c, "", id, "decr_hits", 0);
		stat_cls(c, "", id, "cas_hits", 0);
		stat_cls(c, "", id, "cas_badval", 0);
		stat_cls(c, "", id, "touch_hits", 0);
	}
	stat_u64(c, "active_slabs", active);
	stat_u64(c, "total_malloced", store->pages_used * store->page_size);
}

static void stats_items(struct conn *c)
{
	static const char *const zero[] = {
		"evicted_nonzero",   "evicted_time",
		"outofmemory",	     "tailrepairs",
		"reclaimed",	     "expired_unfetched",
		"evicted_unfetched", "evicted_active",
		"crawler_reclaimed", "crawler_items_checked",
		"lrutail_reflocked", "moves_to_cold",
		"moves_to_warm",     "moves_within_lru",
		"direct_reclaims",   "hits_to_hot",
		"hits_to_warm",	     "hits_to_cold",
		"hits_to_temp"};

	for (unsigned i = 0; i < store->nclasses; i++) {
		const struct kv_class *k = &store->cls[i];
		unsigned id = i + 1;

		if (!k->nitems)
			continue;
		stat_cls(c, "items:", id, "number", k->nitems);
		stat_cls(c, "items:", id, "number_hot", 0);
		stat_cls(c, "items:", id, "number_warm", 0);
		stat_cls(c, "items:", id, "number_cold", k->nitems);
		stat_cls(c, "items:", id, "age_hot", 0);
		stat_cls(c, "items:", id, "age_warm", 0);
		stat_cls(c, "items:", id, "age", 0);
		stat_cls(c, "items:", id, "mem_requested", k->requested);
		stat_cls(c, "items:", id, "evicted", k->evictions);
		for (size_t z = 0; z < sizeof(zero) / sizeof(zero[0]); z++)
			stat_cls(c, "items:", id, zero[z],
				 strcmp(zero[z], "reclaimed") ? 0
							      : k->reclaimed);
	}
}

/**
 * proto_stats() - one group of statistics, a name/value pair at a time
 * @c: the connection asking.
 * @group: "" (general), "settings", "slabs", "items" or "sizes".
 * @emit: called for each pair (the binary protocol's stat responses), or
 *        NULL for "STAT name value" lines.
 *
 * Return: false if there is no such group.
 */
bool proto_stats(struct conn *c, const char *group, stat_emit_fn emit)
{
	bool ok = true;

	stat_emit = emit;
	if (!*group)
		stats_general(c);
	else if (!strcmp(group, "settings"))
		stats_settings(c);
	else if (!strcmp(group, "slabs"))
		stats_slabs(c);
	else if (!strcmp(group, "items"))
		stats_items(c);
	else if (!strcmp(group, "sizes"))
		stat_str(c, "sizes_status", "disabled");
	else
		ok = false;
	stat_emit = NULL;
	return ok;
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

/*
 * "stats cachedump CLASS LIMIT": memcached lists the cold part of its
 * segmented LRU, which a recent item has not reached; there is no such part
 * here, so the list is empty (the arguments are checked as memcached does).
 */
static void cmd_cachedump(struct conn *c, struct token *t, size_t nt)
{
	uint32_t id, limit;

	if (nt < 5) {
		reply(c, "CLIENT_ERROR bad command line");
		return;
	}
	if (!mc_strtoul(t[2].s, &id) || !mc_strtoul(t[3].s, &limit)) {
		reply(c, "CLIENT_ERROR bad command line format");
		return;
	}
	if (id >= KV_MAX_CLASSES) {
		reply(c, "CLIENT_ERROR Illegal slab id");
		return;
	}
	conn_out(c, "END\r\n", 5);
}

static void cmd_stats(struct conn *c, struct token *t, size_t nt)
{
	const char *sub = nt > 2 ? t[1].s : "";

	if (tok_is(&t[1], "reset")) {
		proto_stats_reset();
		reply(c, "RESET");
		return;
	}
	if (tok_is(&t[1], "detail")) {
		if (nt < 4)
			reply(c,
			      "CLIENT_ERROR usage: stats detail on|off|dump");
		else if (tok_is(&t[2], "on") || tok_is(&t[2], "off"))
			reply(c, "OK");
		else if (tok_is(&t[2], "dump"))
			reply(c, "END");
		else
			reply(c,
			      "CLIENT_ERROR usage: stats detail on|off|dump");
		return;
	}
	if (tok_is(&t[1], "cachedump")) {
		cmd_cachedump(c, t, nt);
		return;
	}
	if (!proto_stats(c, sub, NULL)) {
		reply(c, "ERROR");
		return;
	}
	conn_out(c, "END\r\n", 5);
}

/* Whether a line is one memcached lets grow past 2048 bytes. */
static bool long_line_ok(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == ' ')
		i++;
	if (i > 100)
		return false;
	p += i;
	n -= i;
	return (n >= 4 && !memcmp(p, "get ", 4)) ||
	       (n >= 5 && !memcmp(p, "gets ", 5));
}

/* The get family, recognised before the line is cut into tokens. */
static int get_kind(const char *p, size_t n, bool *with_cas, bool *touch)
{
	size_t i = 0, e;

	while (i < n && p[i] == ' ')
		i++;
	e = i;
	while (e < n && p[e] != ' ')
		e++;
	p += i;
	n = e - i;
	*with_cas = n == 4 && (!memcmp(p, "gets", 4) || !memcmp(p, "gats", 4));
	*touch = (n == 3 && !memcmp(p, "gat", 3)) ||
		 (n == 4 && !memcmp(p, "gats", 4));
	return (n == 3 && (!memcmp(p, "get", 3) || !memcmp(p, "gat", 3))) ||
	       (n == 4 && (!memcmp(p, "gets", 4) || !memcmp(p, "gats", 4) ||
			   !memcmp(p, "bget", 4)));
}

/*
 * Run one command line (a NUL-terminated copy, cut up here).
 * Return: bytes of data block consumed, -1: wait for more data.
 */
static ssize_t dispatch(struct conn *c, char *line, const char *data,
			size_t avail, bool *close)
{
	struct token t[MAX_TOKENS + 1];
	size_t nt = tokenize(line, t);
	const char *cmd = t[0].s;

#define WANT(lo, hi)                                                           \
	do {                                                                   \
		if (nt < (lo) || nt > (hi)) {                                  \
			reply(c, "ERROR");                                     \
			return 0;                                              \
		}                                                              \
	} while (0)

	if (nt < 2 || t[0].len < 2) {
		reply(c, "ERROR");
		return 0;
	}
	if (!strcmp(cmd, "set")) {
		WANT(6, 7);
		return cmd_store(c, t, nt, OP_SET, data, avail);
	} else if (!strcmp(cmd, "add")) {
		WANT(6, 7);
		return cmd_store(c, t, nt, OP_ADD, data, avail);
	} else if (!strcmp(cmd, "replace")) {
		WANT(6, 7);
		return cmd_store(c, t, nt, OP_REPLACE, data, avail);
	} else if (!strcmp(cmd, "append")) {
		WANT(6, 7);
		return cmd_store(c, t, nt, OP_APPEND, data, avail);
	} else if (!strcmp(cmd, "prepend")) {
		WANT(6, 7);
		return cmd_store(c, t, nt, OP_PREPEND, data, avail);
	} else if (!strcmp(cmd, "cas")) {
		WANT(7, 8);
		return cmd_store(c, t, nt, OP_CAS, data, avail);
	} else if (!strcmp(cmd, "delete")) {
		WANT(3, 5);
		cmd_delete(c, t, nt);
	} else if (!strcmp(cmd, "incr") || !strcmp(cmd, "decr")) {
		WANT(4, 5);
		cmd_delta(c, t, nt, cmd[0] == 'i');
	} else if (!strcmp(cmd, "touch")) {
		WANT(4, 5);
		cmd_touch(c, t, nt);
	} else if (!strcmp(cmd, "flush_all")) {
		WANT(2, 4);
		cmd_flush(c, t, nt);
	} else if (!strcmp(cmd, "version")) {
		reply(c, "VERSION " KV_VERSION_STRING);
	} else if (!strcmp(cmd, "verbosity")) {
		WANT(3, 4);
		cmd_verbosity(c, t, nt);
	} else if (!strcmp(cmd, "stats")) {
		cmd_stats(c, t, nt);
	} else if (!strcmp(cmd, "quit")) {
		*close = true;
	} else if (!strcmp(cmd, "shutdown")) {
		reply(c, "ERROR: shutdown not enabled");
	} else if (!strcmp(cmd, "mn")) {
		reply(c, "MN"); /* the meta no-op, for pipelining clients */
	} else if (cmd[0] == 'g') {
		reply(c, "ERROR");
	} else if (!strncmp(t[nt - 2].s, "HTTP/", 5)) {
		*close = true; /* memcached closes on an HTTP request at once */
		c->rec->flags |= CONN_CLOSE_AFTER_WRITE;
	} else {
		reply(c, "ERROR");
	}
#undef WANT
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
 * (stopped because the output is over its cap; call again once it
 * drained), PROTO_CLOSE (quit, an HTTP request, a line too long).
 */
enum proto_result proto_process(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	size_t pos = 0;
	enum proto_result res = PROTO_OK;

	c->need = 0;
	conn_mark_done(r, 0);
	while (pos < r->rlen) {
		char *p = c->rbuf + pos, *nl;
		size_t avail = r->rlen - pos, linelen, ll;
		bool close = false, with_cas, touch;
		ssize_t used;

		/* Answered so far: a rollback resumes after them (conn.c). */
		conn_mark_done(r, (uint32_t)pos);

		if (r->swallow) {
			size_t k = avail < r->swallow ? avail : r->swallow;

			r->swallow -= k;
			pos += k;
			continue;
		}
		if (r->pending > KV_OUT_CAP) {
			res = PROTO_BLOCKED;
			break;
		}
		if (!(r->flags & (CONN_PROTO_BINARY | CONN_PROTO_TEXT)))
			r->flags |= (unsigned char)*p == 0x80
					    ? CONN_PROTO_BINARY
					    : CONN_PROTO_TEXT;
		if (r->flags & CONN_PROTO_BINARY) {
			/* memcached: anything but a request magic closes. */
			if ((unsigned char)*p != 0x80) {
				res = PROTO_CLOSE;
				pos = r->rlen;
				break;
			}
			used = bin_process(c, p, avail, &close);
			if (!used)
				break;
			store->stats.bytes_read += (uint64_t)used;
			pos += (size_t)used;
			conn_mark_done(r, (uint32_t)pos);
			if (close) {
				res = PROTO_CLOSE;
				break;
			}
			continue;
		}
		nl = memchr(p, '\n', avail);
		if (!nl) {
			/* memcached: no newline in 2048 bytes is junk, unless
			 * a multi-get; nothing is answered. */
			if (avail > LINE_MAX_NONGET &&
			    (!long_line_ok(p, avail) || avail > LINE_MAX_GET)) {
				res = PROTO_CLOSE;
				pos = r->rlen;
			}
			break;
		}
		linelen = (size_t)(nl - p);
		ll = linelen;
		if (ll > 1 && p[ll - 1] == '\r')
			ll--;
		c->noreply = false;
		kv_fault(KV_FAULT_POINT_REQUEST);
		if (get_kind(p, ll, &with_cas, &touch)) {
			if (!cmd_get(c, p, ll, with_cas, touch)) {
				res = PROTO_BLOCKED;
				break;
			}
			used = 0;
		} else {
			/*
			 * The tokenizer writes NULs into the line; a request that
			 * must wait for its data is parsed again, so parse a copy.
			 */
			char line[LINE_MAX_NONGET + 1], *lp = line, *big = NULL;

			if (ll > LINE_MAX_NONGET) {
				big = malloc(ll + 1);
				if (!big) {
					res = PROTO_CLOSE;
					break;
				}
				lp = big;
			}
			memcpy(lp, p, ll);
			lp[ll] = 0;
			used = dispatch(c, lp, nl + 1, avail - linelen - 1,
					&close);
			free(big);
		}
		if (used < 0) {
			c->need += linelen + 1;
			break;
		}
		store->stats.bytes_read += linelen + 1 + (size_t)used;
		pos += linelen + 1 + (size_t)used;
		conn_mark_done(r, (uint32_t)pos);
		if (close) {
			res = PROTO_CLOSE;
			break;
		}
	}
	/*
	 * Drop the answered part in an order that a new image killed at any
	 * point leaves a record the old one resumes from (conns_take_back()
	 * skips rdone bytes while rdone <= rlen): rdone is cleared last, and
	 * a remainder shorter than the answered part is copied from bytes
	 * the copy does not overwrite.  Only a kill inside the copy of a
	 * remainder at least as long as the answered part (a large value
	 * still arriving) can lose that connection's input.
	 */
	if (pos && pos < r->rlen) {
		memmove(c->rbuf, c->rbuf + pos, r->rlen - pos);
		r->rlen -= (uint32_t)pos;
	} else if (pos) {
		r->rlen = 0;
	}
	__atomic_store_n(&r->done_word, 0, __ATOMIC_RELEASE);
	return res;
}
