// SPDX-License-Identifier: MIT
/*
 * Connections and the event loop: one epoll thread serves the listening
 * socket, every client, the signalfd (SIGUSR1 updates, SIGTERM exits) and,
 * when the library has it, the control socket.  Being the only thread
 * makes the service quiescent at freeze for free: prepare, freeze and the
 * exec all run between two events.
 *
 * Each connection's record and buffers live in handover memory; the
 * connection's descriptor is preserved in the "kvcache" session under the
 * slot's token when it is accepted (only possible in NORMAL or UPDATED, so
 * accepting pauses while an update is prepared: new clients wait in the
 * listen backlog for the next image, nothing is refused).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <luo/luo.h>

#include "kv.h"
#include "kvlu.h"

#define BUF_MIN 2048	       /* first size of an input or output buffer */
#define WBUF_KEEP (256u << 10) /* free an idle buffer larger than this */
#define EV_LISTEN UINT64_MAX
#define EV_SIGNAL (UINT64_MAX - 1)
#define EV_CONTROL (UINT64_MAX - 2)

struct kv_conn_rec *conn_recs;
int listen_fd = -1;
volatile bool want_sweep;

static struct conn *conns;
static uint32_t *free_slots, nfree_slots, nopen;
static int epfd = -1, sigfd = -1;
static bool accept_paused, stopping;

/**
 * conn_count() - connections open now
 *
 * Return: the count, for stats.
 */
uint32_t conn_count(void)
{
	return nopen;
}

/* Grow a buffer in handover memory to at least @want bytes. */
static int buf_grow(char **buf, uint64_t *off, uint32_t *cap, uint32_t used,
		    size_t want)
{
	size_t ncap = *cap ? *cap : BUF_MIN;
	void *n;
	int err;

	while (ncap < want)
		ncap *= 2;
	if (ncap > UINT32_MAX / 2)
		return -E2BIG;
	err = kho_alloc_preserve(ncap, &n);
	if (err)
		return err;
	if (*buf) {
		memcpy(n, *buf, used);
		kho_unpreserve_free(*buf);
	}
	*buf = n;
	*off = kho_ptr_to_offset(n);
	*cap = (uint32_t)ncap;
	return 0;
}

static void buf_release(char **buf, uint64_t *off, uint32_t *cap)
{
	if (*buf)
		kho_unpreserve_free(*buf);
	*buf = NULL;
	*off = 0;
	*cap = 0;
}

/**
 * conn_reserve_out() - room for @len more bytes of output
 * @c: the connection.
 * @len: bytes about to be appended.
 *
 * Return: 0 or a negative errno (the output is then dropped and the
 * connection closed after what it has).
 */
int conn_reserve_out(struct conn *c, size_t len)
{
	struct kv_conn_rec *r = c->rec;

	if (r->wpos && r->wpos == r->wlen)
		r->wpos = r->wlen = 0;
	if ((size_t)r->wlen + len <= r->wcap)
		return 0;
	if (r->wpos) { /* compact before growing */
		memmove(c->wbuf, c->wbuf + r->wpos, r->wlen - r->wpos);
		r->wlen -= r->wpos;
		r->wpos = 0;
		if ((size_t)r->wlen + len <= r->wcap)
			return 0;
	}
	return buf_grow(&c->wbuf, &r->wbuf_off, &r->wcap, r->wlen,
			(size_t)r->wlen + len);
}

/**
 * conn_out() - append output for a connection
 * @c: the connection.
 * @data: bytes.
 * @len: their count.
 *
 * Return: 0 or a negative errno.
 */
int conn_out(struct conn *c, const void *data, size_t len)
{
	int err = conn_reserve_out(c, len);

	if (err) {
		fprintf(stderr, "kvcache: no memory for output: %s\n",
			strerror(-err));
		c->rec->flags |= CONN_CLOSE_AFTER_WRITE;
		return err;
	}
	memcpy(c->wbuf + c->rec->wlen, data, len);
	c->rec->wlen += (uint32_t)len;
	return 0;
}

/**
 * conn_printf() - append formatted output (one short line) for a connection
 * @c: the connection.
 * @fmt: printf format; the result is cut at 511 bytes.
 *
 * Return: 0 or a negative errno.
 */
int conn_printf(struct conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	return conn_out(c, buf,
			(size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void ep_set(struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events,
				 .data.u64 = (uint64_t)(c - conns)};

	if (c->events == events)
		return;
	if (epoll_ctl(epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
		      &ev))
		fprintf(stderr, "kvcache: epoll_ctl: %s\n", strerror(errno));
	c->events = events;
}

static void conn_close(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	uint32_t slot = (uint32_t)(c - conns);
	enum liveupdate_state st = liveupdate_get_state();
	bool can_unpreserve =
		st == LIVEUPDATE_STATE_NORMAL || st == LIVEUPDATE_STATE_UPDATED;

	if (c->events)
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->events = 0;
	close(c->fd);
	c->fd = -1;
	buf_release(&c->rbuf, &r->rbuf_off, &r->rcap);
	buf_release(&c->wbuf, &r->wbuf_off, &r->wcap);
	r->rlen = r->wlen = r->wpos = 0;
	r->swallow = 0;
	r->flags = 0;
	nopen--;
	/*
	 * While an update is under way the library keeps its reference: the
	 * next image (or the sweep after a cancel) lets it go.
	 */
	if (!c->preserved || (can_unpreserve && !kvlu_unpreserve(r->token))) {
		c->preserved = false;
		r->state = CONN_FREE;
		free_slots[nfree_slots++] = slot;
	} else {
		r->state = CONN_ZOMBIE;
		want_sweep = true;
	}
}

/**
 * conns_sweep() - release the slots of connections closed during an update
 *
 * Runs in NORMAL after a cancelled update: their descriptors are still
 * preserved and can be let go now.
 */
void conns_sweep(void)
{
	enum liveupdate_state st = liveupdate_get_state();

	if (st != LIVEUPDATE_STATE_NORMAL && st != LIVEUPDATE_STATE_UPDATED)
		return;
	want_sweep = false;
	for (uint32_t i = 0; i < root->maxconns; i++) {
		if (conn_recs[i].state != CONN_ZOMBIE)
			continue;
		kvlu_unpreserve(conn_recs[i].token);
		conn_recs[i].state = CONN_FREE;
		free_slots[nfree_slots++] = i;
	}
}

/* Write what is pending; arm EPOLLOUT if the socket is full. */
static int conn_flush(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;

	while (r->wpos < r->wlen) {
		ssize_t n = send(c->fd, c->wbuf + r->wpos, r->wlen - r->wpos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0)
			return -1;
		r->wpos += (uint32_t)n;
		store->stats.bytes_written += (uint64_t)n;
	}
	r->wpos = r->wlen = 0;
	if (r->wcap > WBUF_KEEP &&
	    liveupdate_get_state() != LIVEUPDATE_STATE_FROZEN)
		buf_release(&c->wbuf, &r->wbuf_off, &r->wcap);
	return 0;
}

/* Parse what came in, send what is due, decide what to wait for. */
static void conn_run(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	int f;

	for (;;) {
		enum proto_result res = PROTO_OK;

		if (r->rlen && !(r->flags & CONN_CLOSE_AFTER_WRITE))
			res = proto_process(c);
		if (res == PROTO_CLOSE)
			r->flags |= CONN_CLOSE_AFTER_WRITE;
		f = conn_flush(c);
		if (f < 0 || (f == 0 && (r->flags & CONN_CLOSE_AFTER_WRITE))) {
			conn_close(c);
			return;
		}
		/* Stopped for the output, which has drained: go on. */
		if (f != 0 || res != PROTO_BLOCKED)
			break;
	}
	/* A large request came and went: do not keep its buffer. */
	if (!r->rlen && r->rcap > WBUF_KEEP &&
	    liveupdate_get_state() != LIVEUPDATE_STATE_FROZEN)
		buf_release(&c->rbuf, &r->rbuf_off, &r->rcap);
	/* Stop reading while the client does not read its answers. */
	ep_set(c, f ? EPOLLOUT : EPOLLIN);
}

static void conn_readable(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;

	for (int rounds = 0; rounds < 4; rounds++) {
		size_t want = r->rlen +
			      (c->need > r->rlen ? c->need - r->rlen : 0) +
			      1024;
		ssize_t n;

		if (r->rcap - r->rlen < 1024 || r->rcap < want) {
			int err = buf_grow(
				&c->rbuf, &r->rbuf_off, &r->rcap, r->rlen,
				want > r->rcap * 2u ? want : r->rcap * 2u);

			if (err) {
				fprintf(stderr,
					"kvcache: input buffer of %zu bytes: %s; closing\n",
					want, strerror(-err));
				conn_close(c);
				return;
			}
		}
		n = recv(c->fd, c->rbuf + r->rlen, r->rcap - r->rlen,
			 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		r->rlen += (uint32_t)n;
		if ((size_t)n < r->rcap - r->rlen + (size_t)n)
			break; /* drained */
	}
	conn_run(c);
}

/**
 * conn_attach() - give a slot's record its descriptor in this image
 * @slot: the slot.
 * @fd: the connection's descriptor.
 * @adopted: the record and its buffers came from the previous image.
 *
 * Return: 0, or -EBADMSG if an adopted record does not check out.
 */
int conn_attach(uint32_t slot, int fd, bool adopted)
{
	struct conn *c = &conns[slot];
	struct kv_conn_rec *r = &conn_recs[slot];
	void *p;

	c->rec = r;
	c->fd = fd;
	c->events = 0;
	c->preserved = false;
	c->rbuf = c->wbuf = NULL;
	if (adopted) {
		if (r->rlen > r->rcap || r->wpos > r->wlen ||
		    r->wlen > r->wcap || (r->rcap && !r->rbuf_off) ||
		    (r->wcap && !r->wbuf_off))
			return -EBADMSG;
		if (r->rcap) {
			if (kho_restore(r->rbuf_off, r->rcap, &p))
				return -EBADMSG;
			c->rbuf = p;
		}
		if (r->wcap) {
			if (kho_restore(r->wbuf_off, r->wcap, &p))
				return -EBADMSG;
			c->wbuf = p;
		}
	}
	nopen++;
	return 0;
}

/**
 * conn_start() - begin serving an attached connection
 * @slot: the slot.
 *
 * Runs whatever the previous image left in its buffers first: a request
 * that was half received when the update began is completed here.
 */
void conn_start(uint32_t slot)
{
	conn_run(&conns[slot]);
}

static void accept_new(void)
{
	for (int i = 0; i < 64 && !accept_paused; i++) {
		int fd = accept4(listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC),
		    one = 1, err;
		struct kv_conn_rec *r;
		uint32_t slot;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				fprintf(stderr, "kvcache: accept: %s\n",
					strerror(errno));
			return;
		}
		if (!nfree_slots) {
			static const char msg[] =
				"SERVER_ERROR Too many open connections\r\n";

			store->stats.rejected_connections++;
			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0)
				(void)0;
			close(fd);
			continue;
		}
		slot = free_slots[--nfree_slots];
		r = &conn_recs[slot];
		memset(r, 0, sizeof(*r));
		r->token = (uint64_t)slot + 1;
		err = kvlu_preserve(fd, r->token);
		if (err) {
			fprintf(stderr,
				"kvcache: cannot preserve a new connection (%s): refusing it\n",
				strerror(-err));
			store->stats.conn_errors++;
			free_slots[nfree_slots++] = slot;
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		r->state = CONN_OPEN;
		conn_attach(slot, fd, false);
		conns[slot].preserved = true;
		store->stats.total_connections++;
		ep_set(&conns[slot], EPOLLIN);
	}
}

/**
 * conns_pause_accept() - stop or resume accepting connections
 * @pause: true to stop (prepare), false to resume (cancel, new image).
 */
void conns_pause_accept(bool pause)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_LISTEN};

	if (pause == accept_paused || listen_fd < 0 || epfd < 0)
		return;
	epoll_ctl(epfd, pause ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, listen_fd, &ev);
	accept_paused = pause;
}

/**
 * conns_setup() - the connection table and the event loop's descriptors
 * @maxconns: slots in the table (the adopted table's size after an update).
 *
 * Return: 0 or a negative errno.
 */
int conns_setup(uint32_t maxconns)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_SIGNAL};
	sigset_t mask;

	conns = calloc(maxconns, sizeof(*conns));
	free_slots = calloc(maxconns, sizeof(*free_slots));
	if (!conns || !free_slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < maxconns; i++)
		conns[i].fd = -1;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (epfd < 0 || sigfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &ev))
		return -errno;
	accept_paused = true; /* until conns_go() */
	return 0;
}

/**
 * conns_go() - fill the free list and start accepting
 *
 * Called once the table holds every adopted connection.
 */
void conns_go(void)
{
	for (uint32_t i = root->maxconns; i-- > 0;)
		if (conn_recs[i].state == CONN_FREE)
			free_slots[nfree_slots++] = i;
	conns_pause_accept(false);
}

/**
 * conns_for_each_open() - call @fn for every open connection
 * @fn: gets the slot and its descriptor; a non-zero return stops.
 *
 * Return: the first non-zero return of @fn, or 0.
 */
int conns_for_each_open(int (*fn)(uint32_t slot, int fd, uint64_t token))
{
	for (uint32_t i = 0; i < root->maxconns; i++) {
		int err;

		if (conn_recs[i].state != CONN_OPEN || conns[i].fd < 0)
			continue;
		err = fn(i, conns[i].fd, conn_recs[i].token);
		if (err)
			return err;
	}
	return 0;
}

static uint32_t represerve_next = UINT32_MAX;

/**
 * conns_represerve() - put adopted connections into this image's session
 * @budget: most connections to do now; 0 for all of them.
 *
 * The new image serves first and re-preserves its adopted connections a
 * batch per loop iteration (about 15 µs each here, far more than the rest
 * of the blackout with thousands of clients).  Every path to an update
 * (SIGUSR1, any control command) first calls this with 0, so no update can
 * begin with a connection left out.  The first call starts the walk.
 *
 * Return: true when every open connection is preserved.
 */
bool conns_represerve(uint32_t budget)
{
	enum liveupdate_state st = liveupdate_get_state();
	uint32_t done = 0;

	/* Only possible in NORMAL and UPDATED: never close anyone otherwise. */
	if (st != LIVEUPDATE_STATE_NORMAL && st != LIVEUPDATE_STATE_UPDATED)
		return false;
	if (represerve_next == UINT32_MAX)
		represerve_next = 0;
	for (; represerve_next < root->maxconns; represerve_next++) {
		struct conn *c = &conns[represerve_next];
		int err;

		if (budget && done == budget)
			return false;
		if (conn_recs[represerve_next].state != CONN_OPEN ||
		    c->fd < 0 || c->preserved)
			continue;
		err = kvlu_preserve(c->fd, c->rec->token);
		if (err) {
			/* It would be lost by the next update: say so now. */
			fprintf(stderr,
				"kvcache: cannot preserve connection %u again (%s): closing it\n",
				represerve_next, strerror(-err));
			store->stats.conn_errors++;
			conn_close(c);
			continue;
		}
		c->preserved = true;
		done++;
	}
	return true;
}

static void on_signal(void)
{
	struct signalfd_siginfo si;

	while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			kvlu_update("SIGUSR1");
		else
			stopping = true;
	}
}

/* FROZEN by a separate control command: wait, serving nobody. */
static void wait_frozen(void)
{
	struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN},
			      {.fd = kvlu_control_fd(), .events = POLLIN}};

	if (poll(p, p[1].fd >= 0 ? 2 : 1, 100) > 0) {
		if (p[0].revents)
			on_signal();
		if (p[1].fd >= 0 && p[1].revents)
			kvlu_control_dispatch();
	}
}

/**
 * event_loop() - serve until SIGTERM or SIGINT
 *
 * Return: 0.
 */
int event_loop(void)
{
	struct epoll_event evs[256];
	int cfd = kvlu_control_fd();

	if (cfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.u64 = EV_CONTROL};

		epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev);
	}
	bool represerving = represerve_next != UINT32_MAX;

	while (!stopping) {
		int n;

		if (represerving)
			represerving = !conns_represerve(256);

		if (liveupdate_get_state() == LIVEUPDATE_STATE_FROZEN) {
			wait_frozen();
			continue;
		}
		if (want_sweep)
			conns_sweep();
		n = epoll_wait(epfd, evs, 256, represerving ? 0 : 1000);
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;

			if (d == EV_LISTEN) {
				accept_new();
			} else if (d == EV_SIGNAL) {
				on_signal();
			} else if (d == EV_CONTROL) {
				kvlu_control_dispatch();
			} else if (d < root->maxconns && conns[d].fd >= 0) {
				struct conn *c = &conns[d];

				if (evs[i].events & EPOLLOUT)
					conn_run(c);
				else
					conn_readable(c);
			}
			/* An update (or a refusal of one) ran: events are stale. */
			if (liveupdate_get_state() == LIVEUPDATE_STATE_FROZEN)
				break;
		}
	}
	return 0;
}
