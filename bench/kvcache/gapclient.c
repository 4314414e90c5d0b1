// SPDX-License-Identifier: MIT
/*
 * gapclient: the client side of bench/kvcache/run-gap.sh.  Speaks the
 * memcached text protocol over TCP; every result is one JSON line on stdout.
 *
 *   gapclient load   -p PORT --bytes N [--vsize 4096] [--conns 2]
 *       fill N bytes of values: keys key:0 .. key:K-1 (K = N / vsize), each
 *       value derived from its key (pipelined sets, 64 in flight)
 *   gapclient verify -p PORT --bytes N [--vsize 4096]
 *       read every key back (pipelined multi-gets) and compare each value
 *       with the one derived from its key: how many came back correct
 *   gapclient gap    -p PORT --bytes N [--pid PID --signal N] [--trigger CMD]
 *                    [--conns 4] [--warmup-ms 1000] [--tail-ms 1000]
 *                    [--max-s 300]
 *       poll the server from several connections (one thread each, get and
 *       set back to back, reconnect when a connection drops); after the
 *       warm-up send signal N to PID (the trigger time is taken right
 *       before), then run CMD with /bin/sh if given; report the longest
 *       interval without any successful response, when service came back,
 *       and how many connections had to reconnect
 *   gapclient bench  -p PORT --bytes N [--conns 4] [--depth 16]
 *                    [--seconds 10] [--set-pct 10]
 *       throughput: each connection keeps DEPTH requests in flight
 *       (random preloaded keys, gets and SET-PCT % sets of the same value)
 *
 * All times are CLOCK_MONOTONIC.  A "successful response" is any complete,
 * well-formed answer: a get that hits (value checked) or misses, a set
 * answered STORED.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAXV (1u << 20)

static const char *host = "127.0.0.1";
static int port;
static uint64_t nbytes;
static unsigned vsize = 4096;
static unsigned nconns;
static const char *trigger;
static unsigned warmup_ms = 1000, tail_ms = 1000, max_s = 300;
static unsigned depth = 16, seconds = 10, set_pct = 10;
static pid_t sig_pid;
static int sig_no;
static uint64_t nkeys;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "gapclient: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* The value of key:N: printable bytes from a xorshift stream seeded by N. */
static void make_value(uint64_t n, char *v, unsigned len)
{
	uint64_t x = n * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;

	for (unsigned i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t y = x;
		for (unsigned j = 0; j < 8 && i + j < len; j++, y >>= 8)
			v[i + j] = 'A' + (y & 31) % 26;
	}
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* --- a buffered connection ------------------------------------------ */

struct conn {
	int fd;
	char *buf;
	size_t cap, off, len; /* unread bytes are buf[off, off + len) */
	int timeout_ms;	      /* per read; -1 waits forever */
};

static int conn_open(struct conn *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1;

	inet_pton(AF_INET, host, &a.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->off = c->len = 0;
	if (!c->buf) {
		c->cap = 2 * MAXV;
		c->buf = malloc(c->cap);
		if (!c->buf)
			die("malloc");
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int send_all(struct conn *c, const char *p, size_t n)
{
	while (n) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= r;
	}
	return 0;
}

/* Read more into the buffer; -1 on EOF, error or timeout. */
static int fill(struct conn *c)
{
	if (c->off + c->len == c->cap) {
		memmove(c->buf, c->buf + c->off, c->len);
		c->off = 0;
	}
	if (c->len == c->cap)
		return -1;
	for (;;) {
		if (c->timeout_ms >= 0) {
			struct pollfd p = {.fd = c->fd, .events = POLLIN};
			int r = poll(&p, 1, c->timeout_ms);
			if (r == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (r < 0 && errno == EINTR)
				continue;
		}
		ssize_t r = recv(c->fd, c->buf + c->off + c->len,
				 c->cap - c->off - c->len, 0);
		if (r > 0) {
			c->len += r;
			return 0;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			errno = ECONNRESET;
		return -1;
	}
}

/* A line (without \r\n) into *line; -1 on failure. */
static int read_line(struct conn *c, char **line, size_t *n)
{
	for (;;) {
		char *p = memchr(c->buf + c->off, '\n', c->len);
		if (p) {
			char *s = c->buf + c->off;
			size_t l = p - s + 1;
			*line = s;
			*n = l >= 2 && p[-1] == '\r' ? l - 2 : l - 1;
			c->off += l;
			c->len -= l;
			return 0;
		}
		if (fill(c) < 0)
			return -1;
	}
}

static int read_bytes(struct conn *c, size_t n, char **data)
{
	while (c->len < n)
		if (fill(c) < 0)
			return -1;
	*data = c->buf + c->off;
	c->off += n;
	c->len -= n;
	return 0;
}

/*
 * One get response for key:N.  Returns 1 hit with the right value, 0 miss,
 * 2 hit with a wrong value, -1 on a broken connection or protocol error.
 * With multi-get, call once per VALUE until it returns 0 (END); *got is
 * the key number of the VALUE read.
 */
static int read_value(struct conn *c, uint64_t *got, char *expect)
{
	char *l, *d;
	size_t n;
	unsigned long long k;
	unsigned flags, len;

	if (read_line(c, &l, &n) < 0)
		return -1;
	if (n == 3 && !memcmp(l, "END", 3))
		return 0;
	l[n] = 0;
	if (sscanf(l, "VALUE key:%llu %u %u", &k, &flags, &len) != 3)
		return -1;
	if (read_bytes(c, len + 2, &d) < 0)
		return -1;
	*got = k;
	if (len != vsize)
		return 2;
	make_value(k, expect, vsize);
	return memcmp(d, expect, vsize) ? 2 : 1;
}

/* --- load and verify ------------------------------------------------- */

struct range {
	uint64_t lo, hi;
	uint64_t ok, miss, bad, err;
};

#define BATCH 64

static void *load_thread(void *arg)
{
	struct range *r = arg;
	struct conn c = {.fd = -1, .timeout_ms = 30000};
	size_t cap = BATCH * (vsize + 64);
	char *out = malloc(cap), *l;
	size_t n;

	if (conn_open(&c) < 0)
		die("connect");
	for (uint64_t k = r->lo; k < r->hi;) {
		size_t o = 0;
		unsigned b = 0;
		for (; b < BATCH && k < r->hi; b++, k++) {
			o += sprintf(out + o, "set key:%llu 0 0 %u\r\n",
				     (unsigned long long)k, vsize);
			make_value(k, out + o, vsize);
			o += vsize;
			out[o++] = '\r';
			out[o++] = '\n';
		}
		if (send_all(&c, out, o) < 0)
			die("send");
		for (unsigned i = 0; i < b; i++) {
			if (read_line(&c, &l, &n) < 0)
				die("load: read");
			if (n == 6 && !memcmp(l, "STORED", 6))
				r->ok++;
			else
				r->err++;
		}
	}
	conn_close(&c);
	free(out);
	return NULL;
}

/*
 * Multi-gets of at most 16 keys (kvcache answers only the first 23 keys of
 * a longer one), 4 such commands in flight.
 */
#define MGET 16
#define MGET_INFLIGHT 4

static void *verify_thread(void *arg)
{
	struct range *r = arg;
	struct conn c = {.fd = -1, .timeout_ms = 30000};
	char *out = malloc(MGET_INFLIGHT * (MGET * 32 + 16)),
	     *expect = malloc(vsize + 8);

	if (conn_open(&c) < 0)
		die("connect");
	for (uint64_t k = r->lo; k < r->hi;) {
		size_t o = 0;
		uint64_t lo[MGET_INFLIGHT];
		unsigned nk[MGET_INFLIGHT], ncmd = 0;
		for (; ncmd < MGET_INFLIGHT && k < r->hi; ncmd++) {
			lo[ncmd] = k;
			nk[ncmd] = 0;
			o += sprintf(out + o, "get");
			for (; nk[ncmd] < MGET && k < r->hi; nk[ncmd]++, k++)
				o += sprintf(out + o, " key:%llu",
					     (unsigned long long)k);
			o += sprintf(out + o, "\r\n");
		}
		if (send_all(&c, out, o) < 0)
			die("send");
		for (unsigned i = 0; i < ncmd; i++) {
			unsigned hits = 0;
			for (;;) {
				uint64_t got;
				int v = read_value(&c, &got, expect);
				if (v < 0)
					die("verify: read");
				if (v == 0)
					break;
				hits++;
				if (v == 1 && got >= lo[i] && got < lo[i] + nk[i])
					r->ok++;
				else
					r->bad++;
			}
			r->miss += nk[i] - hits;
		}
	}
	conn_close(&c);
	free(out);
	free(expect);
	return NULL;
}

static int run_ranges(void *(*fn)(void *), const char *what)
{
	unsigned t = nconns ? nconns : 2;
	struct range *r = calloc(t, sizeof(*r));
	pthread_t *th = calloc(t, sizeof(*th));
	uint64_t t0 = now_ns(), ok = 0, miss = 0, bad = 0, err = 0;

	for (unsigned i = 0; i < t; i++) {
		r[i].lo = nkeys * i / t;
		r[i].hi = nkeys * (i + 1) / t;
		pthread_create(&th[i], NULL, fn, &r[i]);
	}
	for (unsigned i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		ok += r[i].ok;
		miss += r[i].miss;
		bad += r[i].bad;
		err += r[i].err;
	}
	double s = (now_ns() - t0) / 1e9;
	printf("{\"mode\":\"%s\",\"keys\":%llu,\"vsize\":%u,\"ok\":%llu,"
	       "\"miss\":%llu,\"bad\":%llu,\"err\":%llu,\"fraction\":%.6f,"
	       "\"seconds\":%.3f,\"mib_per_s\":%.1f}\n",
	       what, (unsigned long long)nkeys, vsize, (unsigned long long)ok,
	       (unsigned long long)miss, (unsigned long long)bad,
	       (unsigned long long)err, nkeys ? (double)ok / nkeys : 0, s,
	       nkeys * (double)vsize / 1048576.0 / s);
	return 0;
}

/* --- the gap measurement ---------------------------------------------- */

static _Atomic uint64_t last_ok;      /* time of the latest success */
static _Atomic bool stop;
static uint64_t t_trigger, t_trigger_done;
static _Atomic uint64_t t_trigger_atomic;
static int trigger_status = -1;

#define MAXGAPS 4096
static pthread_mutex_t gap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t from, to;
} gaps[MAXGAPS]; /* every interval of >= 1 ms without a success */
static unsigned ngaps;

struct poller {
	unsigned id;
	pthread_t th;
	uint64_t ops, hits, misses, bad, stored, errors;
	uint64_t reconnects, failed_connects;
	uint64_t first_ok_after_trigger; /* 0: none yet */
	uint64_t last_ok;
};

static void success(struct poller *p)
{
	uint64_t t = now_ns(), prev = atomic_load(&last_ok);

	p->ops++;
	p->last_ok = t;
	if (!p->first_ok_after_trigger) {
		uint64_t tt = atomic_load(&t_trigger_atomic);
		if (tt && t > tt)
			p->first_ok_after_trigger = t;
	}
	while (t > prev) {
		if (atomic_compare_exchange_weak(&last_ok, &prev, t)) {
			if (prev && t - prev >= 1000000) {
				pthread_mutex_lock(&gap_lock);
				if (ngaps < MAXGAPS) {
					gaps[ngaps].from = prev;
					gaps[ngaps].to = t;
					ngaps++;
				}
				pthread_mutex_unlock(&gap_lock);
			}
			break;
		}
	}
}

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	struct conn c = {.fd = -1, .timeout_ms = 60000};
	uint64_t seed = 0x1234567ull + p->id * 7919, i = 0;
	char req[256], val[128], *l, *expect = malloc(vsize + 8);
	size_t n;
	bool had_conn = false;

	memset(val, 'v', sizeof(val));
	while (!atomic_load(&stop)) {
		if (c.fd < 0) {
			if (conn_open(&c) < 0) {
				p->failed_connects++;
				usleep(100);
				continue;
			}
			if (had_conn)
				p->reconnects++;
			had_conn = true;
		}
		int ok;
		if (i++ & 1) {
			int o = snprintf(req, sizeof(req),
					 "set gap:%u:%llu 0 0 100\r\n", p->id,
					 (unsigned long long)(i % 256));
			memcpy(req + o, val, 100);
			memcpy(req + o + 100, "\r\n", 2);
			ok = send_all(&c, req, o + 102) == 0 &&
			     read_line(&c, &l, &n) == 0;
			if (ok) {
				ok = n == 6 && !memcmp(l, "STORED", 6);
				if (ok)
					p->stored++;
			}
		} else {
			uint64_t k = nkeys ? rnd(&seed) % nkeys : 0, got;
			int o = snprintf(req, sizeof(req), "get key:%llu\r\n",
					 (unsigned long long)k);
			ok = send_all(&c, req, o) == 0;
			if (ok) {
				int v = read_value(&c, &got, expect);
				if (v == 1 || v == 2) {
					if (v == 1 && got == k)
						p->hits++;
					else
						p->bad++;
					v = read_value(&c, &got, expect);
					ok = v == 0;
				} else {
					ok = v == 0;
					if (ok)
						p->misses++;
				}
			}
		}
		if (ok) {
			success(p);
		} else {
			p->errors++;
			conn_close(&c);
		}
	}
	conn_close(&c);
	free(c.buf);
	free(expect);
	return NULL;
}

static void *trigger_thread(void *arg)
{
	(void)arg;
	t_trigger = now_ns();
	atomic_store(&t_trigger_atomic, t_trigger);
	if (sig_pid > 0 && kill(sig_pid, sig_no) < 0)
		die("kill");
	trigger_status = trigger ? system(trigger) : 0;
	t_trigger_done = now_ns();
	return NULL;
}

static int run_gap(void)
{
	unsigned t = nconns ? nconns : 4;
	struct poller *ps = calloc(t, sizeof(*ps));
	pthread_t trig;
	uint64_t t0 = now_ns(), deadline;
	bool all_back = false;

	atomic_store(&last_ok, t0); /* no success yet: a gap from the start */
	for (unsigned i = 0; i < t; i++) {
		ps[i].id = i;
		pthread_create(&ps[i].th, NULL, poll_thread, &ps[i]);
	}
	usleep(warmup_ms * 1000);
	pthread_create(&trig, NULL, trigger_thread, NULL);
	pthread_join(trig, NULL);
	/* Wait until every connection had a success after the trigger,
	 * then the tail; give up at max_s. */
	deadline = t_trigger + (uint64_t)max_s * 1000000000ull;
	while (now_ns() < deadline) {
		unsigned back = 0;
		for (unsigned i = 0; i < t; i++)
			back += ps[i].last_ok > t_trigger_done;
		if (back == t) {
			all_back = true;
			break;
		}
		usleep(1000);
	}
	usleep(tail_ms * 1000);
	uint64_t t_end = now_ns();
	atomic_store(&stop, true);
	/* A poller stuck in a read gives up after its timeout; shut the
	 * sockets down so the join is prompt. */
	for (unsigned i = 0; i < t; i++)
		pthread_join(ps[i].th, NULL);

	/* The longest interval without a success that ends after the
	 * trigger, including one still open at the end. */
	uint64_t gfrom = 0, gto = 0, gmax = 0, first_ok = 0, recover = 0;
	uint64_t ops = 0, hits = 0, misses = 0, bad = 0, stored = 0, err = 0;
	uint64_t reconnects = 0, fconn = 0, dropped = 0;
	pthread_mutex_lock(&gap_lock);
	uint64_t lo = atomic_load(&last_ok);
	if (t_end > lo && t_end - lo >= 1000000 && ngaps < MAXGAPS) {
		gaps[ngaps].from = lo;
		gaps[ngaps].to = t_end;
		ngaps++;
	}
	for (unsigned g = 0; g < ngaps; g++) {
		if (gaps[g].to < t_trigger)
			continue;
		if (gaps[g].to - gaps[g].from > gmax) {
			gmax = gaps[g].to - gaps[g].from;
			gfrom = gaps[g].from;
			gto = gaps[g].to;
		}
	}
	pthread_mutex_unlock(&gap_lock);
	for (unsigned i = 0; i < t; i++) {
		ops += ps[i].ops;
		hits += ps[i].hits;
		misses += ps[i].misses;
		bad += ps[i].bad;
		stored += ps[i].stored;
		err += ps[i].errors;
		reconnects += ps[i].reconnects;
		fconn += ps[i].failed_connects;
		dropped += ps[i].reconnects > 0;
		if (ps[i].first_ok_after_trigger &&
		    (!first_ok || ps[i].first_ok_after_trigger < first_ok))
			first_ok = ps[i].first_ok_after_trigger;
	}
	/* Service back: the end of the longest gap if it started after the
	 * trigger's effect (or the first success after the trigger if no
	 * gap of 1 ms or more happened). */
	recover = gto ? gto : first_ok;
	printf("{\"mode\":\"gap\",\"conns\":%u,\"gap_ms\":%.3f,"
	       "\"gap_from_trigger_ms\":%.3f,\"recover_ms\":%.3f,"
	       "\"first_ok_after_trigger_ms\":%.3f,\"trigger_cmd_ms\":%.3f,"
	       "\"trigger_status\":%d,\"all_back\":%s,\"dropped_conns\":%llu,"
	       "\"reconnects\":%llu,\"failed_connects\":%llu,\"errors\":%llu,"
	       "\"ops\":%llu,\"hits\":%llu,\"misses\":%llu,\"bad\":%llu,"
	       "\"stored\":%llu,\"gaps_over_1ms\":%u,\"run_s\":%.3f,"
	       "\"t_trigger_ns\":%llu}\n",
	       t, gmax / 1e6,
	       gto ? ((double)gfrom - (double)t_trigger) / 1e6 : 0.0,
	       recover ? (recover - t_trigger) / 1e6 : -1.0,
	       first_ok ? (first_ok - t_trigger) / 1e6 : -1.0,
	       (t_trigger_done - t_trigger) / 1e6,
	       WIFEXITED(trigger_status) ? WEXITSTATUS(trigger_status) : -1,
	       all_back ? "true" : "false", (unsigned long long)dropped,
	       (unsigned long long)reconnects, (unsigned long long)fconn,
	       (unsigned long long)err, (unsigned long long)ops,
	       (unsigned long long)hits, (unsigned long long)misses,
	       (unsigned long long)bad, (unsigned long long)stored, ngaps,
	       (t_end - t0) / 1e9, (unsigned long long)t_trigger);
	/* The gaps of 1 ms or more from 1 s before the trigger on, relative
	 * to the trigger (ms), on stderr for the logs: */
	/* the 8 longest, in time order */
	bool pick[MAXGAPS] = {0};
	for (unsigned n = 0; n < 8; n++) {
		int best = -1;
		for (unsigned g = 0; g < ngaps; g++)
			if (!pick[g] && gaps[g].to + 1000000000ull >= t_trigger &&
			    (best < 0 || gaps[g].to - gaps[g].from >
						 gaps[best].to - gaps[best].from))
				best = g;
		if (best >= 0)
			pick[best] = true;
	}
	fprintf(stderr, "gaps: %u of >= 1 ms; the 8 longest (ms from trigger):",
		ngaps);
	for (unsigned g = 0; g < ngaps; g++)
		if (pick[g])
			fprintf(stderr, " [%.1f..%.1f]",
				((double)gaps[g].from - (double)t_trigger) / 1e6,
				((double)gaps[g].to - (double)t_trigger) / 1e6);
	fprintf(stderr, "\n");
	return 0;
}

/* --- throughput --------------------------------------------------------- */

struct bencher {
	unsigned id;
	pthread_t th;
	uint64_t ops, hits, misses, errors;
};

static void *bench_thread(void *arg)
{
	struct bencher *b = arg;
	struct conn c = {.fd = -1, .timeout_ms = 30000};
	uint64_t seed = 0xabcdefull + b->id * 104729;
	size_t cap = depth * (vsize + 64);
	char *out = malloc(cap), *expect = malloc(vsize + 8), *l;
	bool *isset = calloc(depth, sizeof(bool));
	size_t n;

	if (conn_open(&c) < 0)
		die("connect");
	while (!atomic_load(&stop)) {
		size_t o = 0;
		for (unsigned i = 0; i < depth; i++) {
			uint64_t k = rnd(&seed) % nkeys;
			isset[i] = rnd(&seed) % 100 < set_pct;
			if (isset[i]) {
				o += sprintf(out + o, "set key:%llu 0 0 %u\r\n",
					     (unsigned long long)k, vsize);
				make_value(k, out + o, vsize);
				o += vsize;
				out[o++] = '\r';
				out[o++] = '\n';
			} else {
				o += sprintf(out + o, "get key:%llu\r\n",
					     (unsigned long long)k);
			}
		}
		if (send_all(&c, out, o) < 0)
			die("bench: send");
		for (unsigned i = 0; i < depth; i++) {
			if (isset[i]) {
				if (read_line(&c, &l, &n) < 0)
					die("bench: read");
				b->ops++;
				continue;
			}
			uint64_t got;
			int v = read_value(&c, &got, expect);
			if (v < 0)
				die("bench: read");
			if (v) {
				b->hits++;
				if (read_value(&c, &got, expect) != 0)
					die("bench: protocol");
			} else {
				b->misses++;
			}
			b->ops++;
		}
	}
	conn_close(&c);
	return NULL;
}

static int run_bench(void)
{
	unsigned t = nconns ? nconns : 4;
	struct bencher *bs = calloc(t, sizeof(*bs));
	uint64_t ops = 0, hits = 0, misses = 0;

	for (unsigned i = 0; i < t; i++) {
		bs[i].id = i;
		pthread_create(&bs[i].th, NULL, bench_thread, &bs[i]);
	}
	uint64_t t0 = now_ns();
	usleep(seconds * 1000000u);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < t; i++) {
		pthread_join(bs[i].th, NULL);
		ops += bs[i].ops;
		hits += bs[i].hits;
		misses += bs[i].misses;
	}
	double s = (now_ns() - t0) / 1e9;
	printf("{\"mode\":\"bench\",\"conns\":%u,\"depth\":%u,\"set_pct\":%u,"
	       "\"ops\":%llu,\"hits\":%llu,\"misses\":%llu,\"seconds\":%.3f,"
	       "\"ops_per_s\":%.0f}\n",
	       t, depth, set_pct, (unsigned long long)ops,
	       (unsigned long long)hits, (unsigned long long)misses, s,
	       ops / s);
	return 0;
}

static uint64_t parse_size(const char *s)
{
	char *e;
	uint64_t v = strtoull(s, &e, 10);

	switch (*e) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10;
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", 1, 0, 'p'},	  {"host", 1, 0, 'H'},
		{"bytes", 1, 0, 'b'},	  {"vsize", 1, 0, 'v'},
		{"conns", 1, 0, 'c'},	  {"trigger", 1, 0, 't'},
		{"warmup-ms", 1, 0, 'w'}, {"tail-ms", 1, 0, 'T'},
		{"max-s", 1, 0, 'M'},	  {"depth", 1, 0, 'd'},
		{"seconds", 1, 0, 's'},	  {"set-pct", 1, 0, 'S'},
		{"pid", 1, 0, 'P'},	  {"signal", 1, 0, 'k'},
		{0, 0, 0, 0}};
	int o;

	if (argc < 2) {
		fprintf(stderr, "usage: gapclient load|verify|gap|bench -p PORT "
				"--bytes N [options]; see the source\n");
		return 2;
	}
	const char *mode = argv[1];
	optind = 2;
	while ((o = getopt_long(argc, argv, "p:H:b:v:c:t:w:T:M:d:s:S:P:k:", opts,
				NULL)) != -1) {
		switch (o) {
		case 'p': port = atoi(optarg); break;
		case 'H': host = optarg; break;
		case 'b': nbytes = parse_size(optarg); break;
		case 'v': vsize = atoi(optarg); break;
		case 'c': nconns = atoi(optarg); break;
		case 't': trigger = optarg; break;
		case 'w': warmup_ms = atoi(optarg); break;
		case 'T': tail_ms = atoi(optarg); break;
		case 'M': max_s = atoi(optarg); break;
		case 'd': depth = atoi(optarg); break;
		case 's': seconds = atoi(optarg); break;
		case 'S': set_pct = atoi(optarg); break;
		case 'P': sig_pid = atoi(optarg); break;
		case 'k': sig_no = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!port || !vsize || vsize > MAXV / 2) {
		fprintf(stderr, "gapclient: need -p PORT and a sane --vsize\n");
		return 2;
	}
	nkeys = nbytes / vsize;
	if (!strcmp(mode, "load"))
		return run_ranges(load_thread, "load");
	if (!strcmp(mode, "verify"))
		return run_ranges(verify_thread, "verify");
	if (!strcmp(mode, "gap")) {
		if (!trigger && !(sig_pid && sig_no)) {
			fprintf(stderr, "gapclient: gap needs --trigger CMD "
					"and/or --pid PID --signal N\n");
			return 2;
		}
		return run_gap();
	}
	if (!strcmp(mode, "bench") && nkeys)
		return run_bench();
	fprintf(stderr, "gapclient: unknown mode %s (or no --bytes)\n", mode);
	return 2;
}
