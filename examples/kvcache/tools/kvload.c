// SPDX-License-Identifier: MIT
/*
 * kvload: load and verification client for kvcache (any memcached).
 *
 * Many connections on one epoll thread, each with a window of pipelined
 * requests.  Every key belongs to one connection, so each connection
 * knows exactly what every get must return: the value its own last set
 * wrote (values are a pseudo-random function of key, version and seed, so
 * every byte is checked).  Anything else, a refused or dropped connection
 * or a timeout is counted as an error; the exit status is 1 if there was
 * any.  Every request's latency goes into a histogram for p50/p99/p99.9.
 *
 *   kvload -p PORT [-H 127.0.0.1] [-c CONNS] [-t SECONDS] [-n KEYS]
 *          [-s VALUE_SIZE] [-P DEPTH] [-w SET_FRACTION] [-x PREFIX]
 *          [--populate | --verify] [--seed N]
 *
 * --populate sets keys 0..KEYS-1 (version 0) and exits; --verify gets
 * them all back and checks every byte.  The default mode runs mixed load
 * for -t seconds (or until SIGINT/SIGTERM with -t 0), then verifies the
 * last value of every key it wrote.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 200000 /* 1 us buckets up to 200 ms, then one overflow */
#define MAX_DEPTH 64
#define REQ_TIMEOUT_NS (10ULL * 1000000000ULL)

enum op { OP_GET, OP_SET };

struct req {
	enum op op;
	uint32_t key;
	uint32_t ver;
	bool expect; /* a get that must find a value */
	uint64_t sent_ns;
};

struct client {
	int fd;
	char *in;
	size_t inlen, incap;
	char *out;
	size_t outlen, outpos, outcap;
	struct req q[MAX_DEPTH];
	unsigned qhead, qlen;
	bool dead;
	uint64_t rng;
};

static struct {
	const char *host, *prefix;
	uint16_t port;
	unsigned conns, depth;
	double seconds, setfrac;
	uint32_t keys, vsize;
	uint64_t seed;
	enum { MODE_LOAD, MODE_POPULATE, MODE_VERIFY } mode;
} o = {"127.0.0.1", "kvl", 0, 50, 4, 10, 0.2, 10000, 100, 1, MODE_LOAD};

static struct client *cl;
static uint32_t *ver; /* per key: last version set, 0 = initial */
static uint8_t *seen; /* per key: has a value (set by us or populated) */
static uint64_t *hist, hist_over_max, nlat;
static uint64_t done_reqs, errors, conn_errors, mismatches, misses, timeouts;
static volatile sig_atomic_t stop;
static int epfd;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static int keystr(char *buf, uint32_t k)
{
	return sprintf(buf, "%s:%u", o.prefix, k);
}

/* The value of key @k at version @v: a header, then pseudo-random bytes. */
static void value(char *buf, uint32_t k, uint32_t v)
{
	uint64_t s = mix(o.seed ^ ((uint64_t)k << 32) ^ v);
	int n = snprintf(buf, o.vsize + 1, "%u:%u|", k, v);

	for (uint32_t i = (uint32_t)n; i < o.vsize; i++) {
		if (i % 8 == 0)
			s = mix(s);
		buf[i] = (char)('a' + ((s >> (8 * (i % 8))) & 0xff) % 26);
	}
}

static void record_latency(uint64_t ns)
{
	uint64_t us = ns / 1000;

	if (us < HIST_US)
		hist[us]++;
	else {
		hist[HIST_US]++;
		if (us > hist_over_max)
			hist_over_max = us;
	}
	nlat++;
}

static double percentile(double p)
{
	uint64_t want = (uint64_t)(p * (double)nlat), acc = 0;

	for (uint64_t i = 0; i <= HIST_US; i++) {
		acc += hist[i];
		if (acc > want || (acc == nlat && acc))
			return i == HIST_US ? (double)hist_over_max : (double)i;
	}
	return 0;
}

static double max_latency(void)
{
	if (hist[HIST_US])
		return (double)hist_over_max;
	for (uint64_t i = HIST_US; i-- > 0;)
		if (hist[i])
			return (double)i;
	return 0;
}

static void out_reserve(struct client *c, size_t n)
{
	if (c->outlen + n <= c->outcap)
		return;
	if (c->outpos) {
		memmove(c->out, c->out + c->outpos, c->outlen - c->outpos);
		c->outlen -= c->outpos;
		c->outpos = 0;
	}
	while (c->outlen + n > c->outcap)
		c->outcap = c->outcap ? c->outcap * 2 : 4096;
	c->out = realloc(c->out, c->outcap);
	if (!c->out) {
		perror("kvload");
		exit(2);
	}
}

static void client_fail(struct client *c, const char *why)
{
	if (c->dead)
		return;
	fprintf(stderr, "kvload: connection %ld: %s\n", (long)(c - cl), why);
	conn_errors++;
	c->dead = true;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
}

/* Queue one request on @c. */
static void send_req(struct client *c, enum op op, uint32_t k)
{
	struct req *r = &c->q[(c->qhead + c->qlen++) % MAX_DEPTH];
	char key[64];
	int kl = keystr(key, k);

	r->op = op;
	r->key = k;
	r->sent_ns = now_ns();
	r->expect = seen[k] || o.mode == MODE_VERIFY;
	if (op == OP_SET) {
		/* Populated values are version 0, known to a later --verify. */
		r->ver = o.mode == MODE_POPULATE ? 0 : ++ver[k];
		out_reserve(c, (size_t)kl + o.vsize + 64);
		c->outlen += (size_t)sprintf(c->out + c->outlen,
					     "set %s 0 0 %u\r\n", key, o.vsize);
		value(c->out + c->outlen, k, r->ver);
		c->outlen += o.vsize;
		memcpy(c->out + c->outlen, "\r\n", 2);
		c->outlen += 2;
	} else {
		r->ver = ver[k];
		out_reserve(c, (size_t)kl + 8);
		c->outlen +=
			(size_t)sprintf(c->out + c->outlen, "get %s\r\n", key);
	}
}

static bool next_key(struct client *c, uint32_t *k)
{
	size_t idx = (size_t)(c - cl);

	if (o.mode == MODE_LOAD) {
		uint32_t per = o.keys / o.conns;

		if (!per)
			return false;
		c->rng = mix(c->rng);
		*k = (uint32_t)idx + o.conns * (uint32_t)(c->rng % per);
		return true;
	}
	/* populate / verify: walk the keys of this connection once */
	while (c->rng < o.keys && o.mode == MODE_VERIFY && !seen[c->rng])
		c->rng += o.conns;
	if (c->rng >= o.keys)
		return false;
	*k = (uint32_t)c->rng;
	c->rng += o.conns;
	return true;
}

static void fill(struct client *c)
{
	uint32_t k;

	while (!c->dead && !stop && c->qlen < o.depth && next_key(c, &k)) {
		enum op op;

		if (o.mode == MODE_POPULATE)
			op = OP_SET;
		else if (o.mode == MODE_VERIFY)
			op = OP_GET;
		else
			op = (double)(mix(c->rng ^ 77) % 1000) <
					     o.setfrac * 1000
				     ? OP_SET
				     : OP_GET;
		send_req(c, op, k);
		if (op == OP_SET)
			seen[k] = 1;
	}
}

static void flush_out(struct client *c)
{
	while (!c->dead && c->outpos < c->outlen) {
		ssize_t n =
			send(c->fd, c->out + c->outpos, c->outlen - c->outpos,
			     MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
						 .data.u64 =
							 (uint64_t)(c - cl)};
			epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		}
		if (n <= 0) {
			client_fail(c, strerror(errno));
			return;
		}
		c->outpos += (size_t)n;
	}
	c->outpos = c->outlen = 0;
}

static void bad(struct client *c, const struct req *r, const char *what)
{
	static unsigned printed;
	char key[64];

	keystr(key, r->key);
	if (printed++ < 10)
		fprintf(stderr,
			"kvload: connection %ld, %s %s (version %u): %s\n",
			(long)(c - cl), r->op == OP_SET ? "set" : "get", key,
			r->ver, what);
}

/* Parse one response. Return: bytes consumed, 0 if incomplete. */
static size_t parse_one(struct client *c, const char *p, size_t n)
{
	struct req *r = &c->q[c->qhead];
	const char *nl = memchr(p, '\n', n);
	size_t used;

	if (!nl)
		return 0;
	used = (size_t)(nl - p) + 1;
	if (r->op == OP_SET) {
		if (used != 8 || memcmp(p, "STORED\r\n", 8)) {
			errors++;
			bad(c, r, "set not STORED");
		}
	} else if (used == 5 && !memcmp(p, "END\r\n", 5)) {
		if (r->expect) {
			misses++;
			bad(c, r, "missing");
		}
	} else if (used > 6 && !memcmp(p, "VALUE ", 6) && !r->expect) {
		/* A key this run has not written yet: any earlier value. */
		unsigned flags, len;

		if (sscanf(p, "VALUE %*s %u %u", &flags, &len) != 2) {
			errors++;
			bad(c, r, "bad VALUE line");
			return used;
		}
		if (n < used + len + 2 + 5)
			return 0;
		used += len + 2 + 5;
	} else if (used > 6 && !memcmp(p, "VALUE ", 6)) {
		unsigned flags, len;
		char key[64], want_key[64];
		static char *want;

		if (sscanf(p, "VALUE %63s %u %u", key, &flags, &len) != 3) {
			errors++;
			bad(c, r, "bad VALUE line");
			return used;
		}
		if (n < used + len + 2 + 5)
			return 0;
		if (!want)
			want = malloc(o.vsize + 1);
		keystr(want_key, r->key);
		value(want, r->key, r->ver);
		if (strcmp(key, want_key) || len != o.vsize ||
		    memcmp(p + used, want, o.vsize) ||
		    memcmp(p + used + len, "\r\nEND\r\n", 7)) {
			mismatches++;
			bad(c, r, "value differs from the one last set");
		}
		used += len + 2 + 5;
	} else {
		errors++;
		bad(c, r, "unexpected response");
	}
	record_latency(now_ns() - r->sent_ns);
	done_reqs++;
	c->qhead = (c->qhead + 1) % MAX_DEPTH;
	c->qlen--;
	return used;
}

static void readable(struct client *c)
{
	for (;;) {
		ssize_t n;
		size_t pos = 0, k;

		if (c->incap - c->inlen < 4096) {
			c->incap = c->incap ? c->incap * 2 : 16384;
			c->in = realloc(c->in, c->incap);
		}
		n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen,
			 MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			client_fail(c, n ? strerror(errno)
					 : "closed by the server");
			return;
		}
		c->inlen += (size_t)n;
		while (c->qlen &&
		       (k = parse_one(c, c->in + pos, c->inlen - pos)))
			pos += k;
		memmove(c->in, c->in + pos, c->inlen - pos);
		c->inlen -= pos;
		if (!c->qlen && c->inlen) {
			errors++;
			fprintf(stderr,
				"kvload: unexpected bytes from the server\n");
			c->inlen = 0;
		}
	}
	fill(c);
	flush_out(c);
}

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static int run(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(o.port)};
	struct epoll_event evs[256];
	uint64_t t0, end, last_check;
	unsigned live;

	done_reqs = nlat = errors = conn_errors = mismatches = misses =
		timeouts = 0;
	memset(hist, 0, (HIST_US + 1) * sizeof(*hist));
	inet_pton(AF_INET, o.host, &a.sin_addr);
	epfd = epoll_create1(0);
	cl = calloc(o.conns, sizeof(*cl));
	for (unsigned i = 0; i < o.conns; i++) {
		struct client *c = &cl[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
		int one = 1;

		c->rng = o.mode == MODE_LOAD ? mix(o.seed + i) : i;
		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (c->fd < 0 || connect(c->fd, (void *)&a, sizeof(a))) {
			fprintf(stderr, "kvload: connect %s:%u: %s\n", o.host,
				o.port, strerror(errno));
			conn_errors++;
			c->dead = true;
			continue;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
	}
	t0 = now_ns();
	end = o.seconds > 0 ? t0 + (uint64_t)(o.seconds * 1e9) : UINT64_MAX;
	last_check = t0;
	for (unsigned i = 0; i < o.conns; i++) {
		fill(&cl[i]);
		flush_out(&cl[i]);
	}
	for (;;) {
		uint64_t t = now_ns();
		int n;

		if (t >= end)
			stop = 1;
		live = 0;
		for (unsigned i = 0; i < o.conns; i++)
			live += !cl[i].dead && cl[i].qlen;
		if (!live)
			break;
		if (t - last_check > 1000000000ULL) {
			last_check = t;
			for (unsigned i = 0; i < o.conns; i++) {
				struct client *c = &cl[i];

				if (!c->dead && c->qlen &&
				    t - c->q[c->qhead].sent_ns >
					    REQ_TIMEOUT_NS) {
					timeouts++;
					client_fail(c, "no answer within 10 s");
				}
			}
		}
		n = epoll_wait(epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct client *c = &cl[evs[i].data.u64];

			if (c->dead)
				continue;
			if (evs[i].events & EPOLLOUT) {
				struct epoll_event ev = {
					.events = EPOLLIN,
					.data.u64 = evs[i].data.u64};

				epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
				flush_out(c);
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				readable(c);
		}
	}
	{
		double secs = (double)(now_ns() - t0) / 1e9;
		static const char *names[] = {"load", "populate", "verify"};

		printf("kvload: mode=%s conns=%u requests=%llu seconds=%.2f throughput=%.0f req/s p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f errors=%llu mismatches=%llu misses=%llu conn_errors=%llu timeouts=%llu\n",
		       names[o.mode], o.conns, (unsigned long long)done_reqs,
		       secs, (double)done_reqs / secs, percentile(0.5),
		       percentile(0.99), percentile(0.999), max_latency(),
		       (unsigned long long)errors,
		       (unsigned long long)mismatches,
		       (unsigned long long)misses,
		       (unsigned long long)conn_errors,
		       (unsigned long long)timeouts);
	}
	for (unsigned i = 0; i < o.conns; i++) {
		if (!cl[i].dead)
			close(cl[i].fd);
		free(cl[i].in);
		free(cl[i].out);
	}
	free(cl);
	cl = NULL;
	close(epfd);
	return errors || mismatches || misses || conn_errors || timeouts;
}

/* After load: every key this run wrote must hold its last value. */
static int verify_after_load(void)
{
	uint64_t total = 0;

	for (uint32_t k = 0; k < o.keys; k++)
		total += seen[k];
	printf("kvload: verifying the last value of %llu keys\n",
	       (unsigned long long)total);
	o.mode = MODE_VERIFY;
	stop = 0;
	o.seconds = 0;
	return run();
}

static void usage(void)
{
	fprintf(stderr,
		"usage: kvload -p PORT [-H HOST] [-c CONNS] [-t SECONDS] [-n KEYS] [-s SIZE] [-P DEPTH] [-w SETFRAC] [-x PREFIX] [--seed N] [--populate|--verify]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"populate", no_argument, NULL, 'O'},
		{"verify", no_argument, NULL, 'V'},
		{"seed", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "H:p:c:t:n:s:P:w:x:", lo, NULL)) !=
	       -1) {
		switch (c) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = (uint16_t)atoi(optarg);
			break;
		case 'c':
			o.conns = (unsigned)atoi(optarg);
			break;
		case 't':
			o.seconds = atof(optarg);
			break;
		case 'n':
			o.keys = (uint32_t)atoi(optarg);
			break;
		case 's':
			o.vsize = (uint32_t)atoi(optarg);
			break;
		case 'P':
			o.depth = (unsigned)atoi(optarg);
			break;
		case 'w':
			o.setfrac = atof(optarg);
			break;
		case 'x':
			o.prefix = optarg;
			break;
		case 'S':
			o.seed = strtoull(optarg, NULL, 0);
			break;
		case 'O':
			o.mode = MODE_POPULATE;
			break;
		case 'V':
			o.mode = MODE_VERIFY;
			break;
		default:
			usage();
		}
	}
	if (!o.port || !o.conns || o.depth < 1 || o.depth > MAX_DEPTH ||
	    o.vsize < 24 || !o.keys)
		usage();
	{
		/* Thousands of connections: use the whole descriptor limit. */
		struct rlimit rl;

		if (!getrlimit(RLIMIT_NOFILE, &rl)) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGPIPE, SIG_IGN);
	ver = calloc(o.keys, sizeof(*ver));
	seen = calloc(o.keys, 1);
	hist = calloc(HIST_US + 1, sizeof(*hist));
	if (!ver || !seen || !hist)
		return 2;
	if (o.mode == MODE_VERIFY)
		memset(seen, 1, o.keys);
	rc = run();
	if (o.mode == MODE_LOAD)
		rc |= verify_after_load();
	free(ver);
	free(seen);
	free(hist);
	return rc;
}
