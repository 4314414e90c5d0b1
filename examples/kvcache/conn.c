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
#include <sys/uio.h>
#include <unistd.h>

#include <luo/luo.h>

#include "kv.h"
#include "kvlu.h"

#define BUF_MIN 2048	       /* first size of an input or output buffer */
#define WBUF_KEEP (256u << 10) /* free an idle buffer larger than this */
#define EV_LISTEN UINT64_MAX
#define EV_SIGNAL (UINT64_MAX - 1)
#define EV_CONTROL (UINT64_MAX - 2)
#define EV_CONNS (UINT64_MAX - 3) /* --inherit: the clients' epoll is ready */
/*
 * --inherit: clients live at conn_fd_min() or above: the library's
 * references (taken lowest first) stay below them, so that at prepare the
 * inherited range fits below the clients too (one run of numbers with no
 * client in it), and the new image's own first descriptors (also taken
 * lowest first, before the clients are retrieved) never land on a number
 * a registration is keyed by.  Clients, references and the range then
 * need about 2 * maxconns + 128 numbers.
 */
static int conn_fd_min(void)
{
	return (int)root->maxconns + 128;
}

struct kv_conn_rec *conn_recs;
int listen_fd = -1;
volatile bool want_sweep;

static struct conn *conns;
static uint32_t *free_slots, nfree_slots, nopen;
/*
 * epfd: the loop's (listener, signals, control socket); cepfd: the
 * clients', the same instance unless --inherit, where it is a preserved
 * epoll instance of its own, watched through epfd, whose registrations
 * cross the exec (every file it watches must be preserved).
 */
static int epfd = -1, cepfd = -1, sigfd = -1;

/* Clients registered with cepfd by this image (stats: conn_epoll_adds). */
uint64_t conn_epoll_adds;
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

/* Room for @len more bytes of text, compacting sent text first. */
static int wbuf_reserve(struct conn *c, size_t len)
{
	struct kv_conn_rec *r = c->rec;

	if ((size_t)r->wlen + len <= r->wcap)
		return 0;
	/*
	 * Compact only into room the unsent text does not occupy, in an order
	 * that leaves a valid queue at every instant (the old copy stays
	 * until the end moves): a new image killed in between must not make
	 * the old one send the wrong bytes.
	 */
	if (r->wpos && r->wlen - r->wpos <= r->wpos) {
		uint32_t shift = r->wpos;

		memcpy(c->wbuf, c->wbuf + shift, r->wlen - shift);
		r->wpos = 0;
		for (uint32_t i = r->oq_head; i < r->oq_tail; i++)
			if (!c->oq[i].item)
				c->oq[i].pos -= shift;
		r->wlen -= shift;
		if ((size_t)r->wlen + len <= r->wcap)
			return 0;
	}
	return buf_grow(&c->wbuf, &r->wbuf_off, &r->wcap, r->wlen,
			(size_t)r->wlen + len);
}

/* A free entry at the queue's tail (compacting or growing the queue). */
static struct kv_oent *oq_push(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	uint64_t off = r->oq_off;
	uint32_t cap = r->oq_cap * (uint32_t)sizeof(*c->oq);
	char *q = (char *)c->oq;

	/*
	 * Compact only into room the entries do not occupy, and move head and
	 * tail in one store: a new image killed in between leaves the old
	 * entries where head and tail say (a rollback sends them).
	 */
	if (r->oq_tail == r->oq_cap && r->oq_head &&
	    r->oq_tail - r->oq_head <= r->oq_head) {
		union kv_pair w = {.lo = 0, .hi = r->oq_tail - r->oq_head};

		memcpy(c->oq, c->oq + r->oq_head,
		       (r->oq_tail - r->oq_head) * sizeof(*c->oq));
		__atomic_store_n(&r->oq_word, w.word, __ATOMIC_RELEASE);
	}
	if (r->oq_tail == r->oq_cap) {
		size_t want = ((size_t)r->oq_cap + 1) * sizeof(*c->oq);

		if (buf_grow(&q, &off, &cap, r->oq_tail * sizeof(*c->oq), want))
			return NULL;
		c->oq = (struct kv_oent *)q;
		r->oq_off = off;
		r->oq_cap = cap / sizeof(*c->oq);
	}
	return &c->oq[r->oq_tail++];
}

static void out_failed(struct conn *c, int err)
{
	fprintf(stderr,
		"kvcache: no memory for output: %s; closing the connection\n",
		strerror(-err));
	c->rec->flags |= CONN_CLOSE_AFTER_WRITE;
}

/**
 * conn_out() - append text output for a connection
 * @c: the connection.
 * @data: bytes.
 * @len: their count.
 *
 * Return: 0 or a negative errno (the connection is then closed after what
 * it has).
 */
int conn_out(struct conn *c, const void *data, size_t len)
{
	struct kv_conn_rec *r = c->rec;
	struct kv_oent *last;
	int err;

	if (!len)
		return 0;
	err = wbuf_reserve(c, len);
	if (err) {
		out_failed(c, err);
		return err;
	}
	memcpy(c->wbuf + r->wlen, data, len);
	last = r->oq_tail > r->oq_head ? &c->oq[r->oq_tail - 1] : NULL;
	if (last && !last->item && last->pos + last->len == r->wlen) {
		last->len += (uint32_t)len;
	} else {
		struct kv_oent *e = oq_push(c);

		if (!e) {
			out_failed(c, -ENOMEM);
			return -ENOMEM;
		}
		e->item = 0;
		e->pos = r->wlen;
		e->len = (uint32_t)len;
	}
	r->wlen += (uint32_t)len;
	r->pending += len;
	return 0;
}

/**
 * conn_out_item() - append part of an item's value, sent from the item
 * @c: the connection.
 * @it: a linked item; it holds a reference until this part is sent (a
 *      part of at most KV_COPY_MAX bytes is copied instead).
 * @pos: offset from the start of the value.
 * @len: bytes.
 *
 * Return: 0 or a negative errno (the connection is then closed after what
 * it has).
 */
int conn_out_item(struct conn *c, struct kv_item *it, uint32_t pos,
		  uint32_t len)
{
	/* One entry per chunk of a chained item; small parts are copied. */
	while (len) {
		uint32_t avail, k;
		const char *d = item_span(it, pos, &avail);
		struct kv_oent *e;

		if (!d) {
			out_failed(c, -EFAULT);
			return -EFAULT;
		}
		k = len < avail ? len : avail;
		if (k <= KV_COPY_MAX) {
			int err = conn_out(c, d, k);

			if (err)
				return err;
		} else {
			e = oq_push(c);
			if (!e) {
				out_failed(c, -ENOMEM);
				return -ENOMEM;
			}
			e->item = item_off(it);
			e->pos = pos;
			e->len = k;
			it->refcount++;
			c->rec->pending += k;
		}
		pos += k;
		len -= k;
	}
	return 0;
}

/* Drop every queued entry, releasing the items they hold. */
static void oq_release(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;

	for (uint32_t i = r->oq_head; c->oq && i < r->oq_tail; i++) {
		struct kv_item *it =
			c->oq[i].item ? item_at(c->oq[i].item) : NULL;

		if (it)
			item_release(it);
	}
	r->oq_head = r->oq_tail = 0;
	r->pending = 0;
	r->wpos = r->wlen = 0;
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
	if (epoll_ctl(cepfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
		      &ev))
		fprintf(stderr, "kvcache: epoll_ctl: %s\n", strerror(errno));
	else if (!c->events)
		conn_epoll_adds++;
	if (!c->events) /* what the next image's registration is keyed by */
		c->rec->ep_fd = c->fd;
	c->events = events;
	c->rec->ep_events = events;
}

static void conn_close(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	uint32_t slot = (uint32_t)(c - conns);
	enum liveupdate_state st = liveupdate_get_state();
	bool can_unpreserve =
		st == LIVEUPDATE_STATE_NORMAL || st == LIVEUPDATE_STATE_UPDATED;

	if (c->events)
		epoll_ctl(cepfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->events = 0;
	r->ep_events = 0;
	close(c->fd);
	c->fd = -1;
	oq_release(c);
	buf_release(&c->rbuf, &r->rbuf_off, &r->rcap);
	buf_release(&c->wbuf, &r->wbuf_off, &r->wcap);
	{
		char *q = (char *)c->oq;

		buf_release(&q, &r->oq_off, &r->oq_cap);
		c->oq = NULL;
	}
	r->rlen = r->wlen = r->wpos = 0;
	r->get_resume = 0;
	r->swallow = 0;
	r->flags = 0;
	nopen--;
	/*
	 * While an update is under way the library keeps its reference: the
	 * next image (or the sweep after a cancel) lets it go.
	 */
	if (!c->preserved)
		kvlu_forget(r->token);
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

/* Where queue entry @e's bytes are; NULL if its item is not one. */
static const char *oent_data(struct conn *c, const struct kv_oent *e)
{
	struct kv_item *it;

	if (!e->item)
		return c->wbuf + e->pos;
	it = item_at(e->item);
	if (it) {
		uint32_t avail;
		const char *d = item_span(it, e->pos, &avail);

		if (d && avail >= e->len)
			return d;
	}
	return NULL;
}

/*
 * Take the sent bytes off the queue's front, as out_stage names them:
 * entries before its head entry are done, that entry becomes
 * out_stage_ent.  Idempotent, so that out_redo() can finish what a new
 * image killed half way through left.  @release: let the items of the
 * finished entries go (after a rollback conns_recount_refs() counts
 * again instead).
 */
static void out_apply(struct conn *c, bool release)
{
	struct kv_conn_rec *r = c->rec;
	uint32_t h = r->out_stage & ~OUT_STAGED;

	for (uint32_t i = r->oq_head; i < h; i++) {
		uint64_t it = c->oq[i].item;

		if (!it)
			r->wpos = c->oq[i].pos + c->oq[i].len;
		/* Head first: a kill in between leaves no reference twice. */
		r->oq_head = i + 1;
		if (it && release)
			item_release(item_at(it));
	}
	if (h < r->oq_tail) {
		c->oq[h].span = r->out_stage_ent;
		if (!c->oq[h].item)
			r->wpos = c->oq[h].pos;
	}
}

/*
 * @n bytes went into the socket: count them and take them off the queue.
 * The count and where the queue's head goes are published in one store
 * (out_word) before the queue is changed, so that a kill at any instant
 * leaves either the send not counted (the socket's own count then says
 * how much to skip: sync_with_socket()) or counted and staged.
 */
static void out_consume(struct conn *c, uint64_t n)
{
	struct kv_conn_rec *r = c->rec;
	uint32_t h = r->oq_head;
	uint64_t left = n;
	struct kv_oent e = {0};
	union kv_pair w;

	while (h < r->oq_tail && left >= c->oq[h].len)
		left -= c->oq[h++].len;
	if (h < r->oq_tail) {
		e = c->oq[h];
		e.pos += (uint32_t)left;
		e.len -= (uint32_t)left;
	}
	r->out_stage_ent = e.span;
	w.lo = r->out_seq + (uint32_t)n;
	w.hi = OUT_STAGED | h;
	__atomic_store_n(&r->out_word, w.word, __ATOMIC_RELEASE);
	out_apply(c, true);
	r->pending -= n;
	w.hi = 0;
	__atomic_store_n(&r->out_word, w.word, __ATOMIC_RELEASE);
}

/*
 * Write what is queued, text and values straight from their items, up to
 * 64 pieces per call.  Return: 0 all sent, 1 the socket is full, -1 error.
 */
static int conn_flush(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;

	while (r->oq_head < r->oq_tail) {
		struct iovec iov[64];
		struct msghdr mh = {.msg_iov = iov};
		uint32_t i = r->oq_head;
		ssize_t n;

		for (; i < r->oq_tail && mh.msg_iovlen < 64; i++) {
			const char *d = oent_data(c, &c->oq[i]);

			if (!d)
				return -1;
			if (!c->oq[i].len) /* left by out_redo() */
				continue;
			iov[mh.msg_iovlen].iov_base = (void *)d;
			iov[mh.msg_iovlen++].iov_len = c->oq[i].len;
		}
		if (!mh.msg_iovlen) {
			out_consume(c, 0);
			continue;
		}
		if (!(r->flags & CONN_IO))
			r->flags |= CONN_IO;
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0)
			return -1;
		/* A kill here: written, not counted (sync_with_socket()). */
		kv_fault(KV_FAULT_POINT_WRITE);
		store->stats.bytes_written += (uint64_t)n;
		out_consume(c, (uint64_t)n);
	}
	/* In an order that leaves a valid queue at every instant. */
	r->oq_word = 0;
	r->wpos = 0;
	r->wlen = 0;
	r->pending = 0;
	if (liveupdate_get_state() != LIVEUPDATE_STATE_FROZEN) {
		char *q = (char *)c->oq;

		if (r->wcap > WBUF_KEEP)
			buf_release(&c->wbuf, &r->wbuf_off, &r->wcap);
		if ((size_t)r->oq_cap * sizeof(*c->oq) > WBUF_KEEP) {
			buf_release(&q, &r->oq_off, &r->oq_cap);
			c->oq = NULL;
		}
	}
	return 0;
}

/*
 * Parse what came in, send what is due, decide what to wait for.  A few
 * rounds at most per event, so that one client with a huge answer and a
 * fast socket does not hold the loop: EPOLLOUT brings it back next turn.
 */
static void conn_run(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	enum proto_result res;
	int f;

	for (int round = 0;; round++) {
		res = PROTO_OK;
		if (r->rlen && !(r->flags & CONN_CLOSE_AFTER_WRITE)) {
			res = r->pending > KV_OUT_CAP ? PROTO_BLOCKED
						      : proto_process(c);
		}
		if (res == PROTO_CLOSE)
			r->flags |= CONN_CLOSE_AFTER_WRITE;
		f = conn_flush(c);
		if (f < 0 || (f == 0 && (r->flags & CONN_CLOSE_AFTER_WRITE))) {
			conn_close(c);
			return;
		}
		/* Stopped for the output, which has drained: go on. */
		if (f != 0 || res != PROTO_BLOCKED || round == 3)
			break;
	}
	/* A large request came and went: do not keep its buffer. */
	if (!r->rlen && r->rcap > WBUF_KEEP &&
	    liveupdate_get_state() != LIVEUPDATE_STATE_FROZEN)
		buf_release(&c->rbuf, &r->rbuf_off, &r->rcap);
	/*
	 * Stop reading while the output is over its cap (the client does not
	 * read its answers): its input waits in the socket, not here.
	 */
	ep_set(c, f || res == PROTO_BLOCKED ? EPOLLOUT : EPOLLIN);
}

/* One read per event, into a buffer grown only for a request's known size. */
static void conn_readable(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	size_t want =
		r->rlen + (c->need > r->rlen ? c->need - r->rlen : 0) + 1024;
	ssize_t n;

	if (r->rcap - r->rlen < 1024 || r->rcap < want) {
		int err = buf_grow(&c->rbuf, &r->rbuf_off, &r->rcap, r->rlen,
				   want > r->rcap * 2u ? want : r->rcap * 2u);

		if (err) {
			fprintf(stderr,
				"kvcache: input buffer of %zu bytes: %s; closing\n",
				want, strerror(-err));
			conn_close(c);
			return;
		}
	}
	/*
	 * Read without taking, publish (length and count in one store), then
	 * take: a kill at any instant leaves bytes either in the socket only
	 * or counted in the record, and after a rollback sync_with_socket()
	 * drops from the socket what the record has.  A crash between the
	 * two flag changes must not resume the connection
	 * (conn_rec_between_requests()).
	 */
	r->flags |= CONN_IN_RECV | CONN_IO;
	do
		n = recv(c->fd, c->rbuf + r->rlen, r->rcap - r->rlen,
			 MSG_DONTWAIT | MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		union kv_pair w = {.lo = r->rlen + (uint32_t)n,
				   .hi = r->in_seq + (uint32_t)n};
		ssize_t t;

		__atomic_store_n(&r->in_word, w.word, __ATOMIC_RELEASE);
		/* A kill here: counted, still in the socket. */
		kv_fault(KV_FAULT_POINT_READ);
		do
			t = recv(c->fd, c->rbuf + r->rlen - n, (size_t)n,
				 MSG_DONTWAIT | MSG_TRUNC);
		while (t < 0 && errno == EINTR);
		if (t != n) {
			fprintf(stderr,
				"kvcache: a connection's socket lost %zd bytes it had shown (%s): closing it\n",
				n, t < 0 ? strerror(errno) : "short");
			r->flags &= ~CONN_IN_RECV;
			conn_close(c);
			return;
		}
	}
	r->flags &= ~CONN_IN_RECV;
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	conn_run(c);
}

/* Every queued piece of an adopted connection points where it may. */
static bool oq_valid(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	uint64_t total = 0;

	for (uint32_t i = r->oq_head; i < r->oq_tail; i++) {
		const struct kv_oent *e = &c->oq[i];
		struct kv_item *it = e->item ? item_at(e->item) : NULL;

		if (e->item && (!it || !item_valid(it) || !it->refcount ||
				(uint64_t)e->pos + e->len > it->nbytes))
			return false;
		if (!e->item &&
		    ((uint64_t)e->pos + e->len > r->wlen || e->pos < r->wpos))
			return false;
		total += e->len;
	}
	return total == r->pending;
}

/*
 * A buffer of this image's own after a rollback: a live allocation in the
 * arena as the repair left it.  Blocks the rolled-back image allocated
 * are free again (and zeroed): kho_restore() refuses them, as it refuses
 * any offset that does not start an allocation in use.
 */
static int own_block(uint64_t off, size_t size, void **p)
{
	if (!size)
		return -EBADMSG;
	return kho_restore(off, size, p) ? -EBADMSG : 0;
}

/*
 * A new image killed in the middle of its output: finish taking a send
 * off the queue (out_consume()) from the stage it published, and drop
 * what was queued for a request it had not finished answering (after
 * conn_mark_done()'s count: that request is run again).  The queue's
 * byte count and text end are computed again from its entries, which
 * the kill may have left ahead of them.  Return: 0, or -EBADMSG if the
 * record does not fit its queue.
 */
static int out_redo(struct conn *c)
{
	struct kv_conn_rec *r = c->rec;
	uint32_t h = r->out_stage & ~OUT_STAGED, cut;
	uint64_t total = 0;

	if (!(r->out_stage & OUT_STAGED) && !(r->rdone & RDONE_BATCH))
		return 0;
	if (r->oq_tail > r->oq_head && !c->oq)
		return -EBADMSG;
	if (r->out_stage & OUT_STAGED) {
		if (h < r->oq_head || h > r->oq_tail)
			return -EBADMSG;
		out_apply(c, false); /* the references are counted again */
		r->out_stage = 0;
	}
	for (uint32_t i = r->oq_head; i < r->oq_tail; i++)
		total += c->oq[i].len;
	if (r->rdone & RDONE_BATCH) {
		cut = r->out_seq + (uint32_t)total - r->done_q;
		if (cut > total)
			return -EBADMSG;
		total -= cut;
		while (cut && r->oq_tail > r->oq_head) {
			struct kv_oent *e = &c->oq[r->oq_tail - 1];
			uint32_t k = cut < e->len ? cut : e->len;

			e->len -= k;
			cut -= k;
			if (!e->len)
				r->oq_tail--;
		}
		r->wlen = r->wpos;
		for (uint32_t i = r->oq_head; i < r->oq_tail; i++)
			if (!c->oq[i].item &&
			    c->oq[i].pos + c->oq[i].len > r->wlen)
				r->wlen = c->oq[i].pos + c->oq[i].len;
	}
	r->pending = total;
	return 0;
}

static int attach(uint32_t slot, int fd, bool adopted,
		  int (*block)(uint64_t off, size_t size, void **p))
{
	struct conn *c = &conns[slot];
	struct kv_conn_rec *r = &conn_recs[slot];
	void *p;

	c->rec = r;
	c->fd = fd;
	c->events = 0;
	c->preserved = false;
	c->rbuf = c->wbuf = NULL;
	c->oq = NULL;
	if (adopted) {
		if (r->rlen > r->rcap || r->wpos > r->wlen ||
		    r->wlen > r->wcap || (r->rcap && !r->rbuf_off) ||
		    (r->wcap && !r->wbuf_off) || r->oq_head > r->oq_tail ||
		    r->oq_tail > r->oq_cap || (r->oq_cap && !r->oq_off))
			return -EBADMSG;
		if (r->rcap) {
			if (block(r->rbuf_off, r->rcap, &p))
				return -EBADMSG;
			c->rbuf = p;
		}
		if (r->wcap) {
			if (block(r->wbuf_off, r->wcap, &p))
				return -EBADMSG;
			c->wbuf = p;
		}
		if (r->oq_cap) {
			if (block(r->oq_off, r->oq_cap * sizeof(*c->oq), &p))
				return -EBADMSG;
			c->oq = p;
		}
		if (out_redo(c))
			return -EBADMSG;
		if (!oq_valid(c))
			return -EBADMSG;
	}
	nopen++;
	return 0;
}

/**
 * conn_rec_between_requests() - a crashed connection can be served on
 * @r: its record as the crashed image left it.
 *
 * True if nothing of a request had been read (not even inside recv())
 * and every answer had been sent: the client's byte stream and ours are
 * then both at a request boundary, and it loses nothing if served again.
 * Any other connection may have lost part of a request (whose rest would
 * then be read as a command) or of an answer: it must be closed.
 */
bool conn_rec_between_requests(const struct kv_conn_rec *r)
{
	return r->state == CONN_OPEN && !(r->flags & CONN_IN_RECV) &&
	       !(r->flags & CONN_CLOSE_AFTER_WRITE) && !r->rlen && !r->rdone &&
	       !r->swallow && !r->get_resume && !r->pending &&
	       r->oq_head == r->oq_tail && r->wpos == r->wlen;
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
	return attach(slot, fd, adopted, kho_restore);
}

/**
 * conns_forget_registrations() - register every client again
 *
 * --inherit, when not every client could be put back on its
 * registration's number (the files came on the carrier after all, or the
 * start-up took a number): the inherited instance is replaced by an empty
 * one, which takes its registrations with it, and each adopted client is
 * registered again when it is started.
 *
 * Return: 0 or a negative errno.
 */
int conns_forget_registrations(void)
{
	struct epoll_event cev = {.events = EPOLLIN, .data.u64 = EV_CONNS};
	int fresh = epoll_create1(EPOLL_CLOEXEC);

	if (fresh < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fresh, &cev)) {
		if (fresh >= 0)
			close(fresh);
		return -errno;
	}
	close(cepfd); /* its registrations go with it */
	cepfd = fresh;
	for (uint32_t i = 0; i < root->maxconns; i++) {
		conns[i].events = 0;
		conn_recs[i].ep_events = 0;
	}
	return 0;
}

/**
 * conn_set_registered() - an adopted connection is registered already
 * @slot: the slot, attached.
 * @events: the events of its registration in the inherited epoll instance
 *          (keyed by the number the connection has now).
 */
void conn_set_registered(uint32_t slot, uint32_t events)
{
	conns[slot].events = events;
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
				"ERROR Too many open connections\r\n";

			store->stats.rejected_connections++;
			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0)
				(void)0;
			close(fd);
			continue;
		}
		if (settings.inherit && fd < conn_fd_min()) {
			int high = fcntl(fd, F_DUPFD_CLOEXEC, conn_fd_min());

			if (high >= 0) {
				close(fd);
				fd = high;
			}
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
 * conns_epoll_fd() - the clients' epoll instance, to preserve (--inherit)
 *
 * Return: its descriptor, or -1 where the clients share the loop's.
 */
int conns_epoll_fd(void)
{
	return cepfd != epfd ? cepfd : -1;
}

/**
 * conns_setup() - the connection table and the event loop's descriptors
 * @maxconns: slots in the table (the adopted table's size after an update).
 * @conn_epfd: --inherit: the clients' epoll instance the previous image
 *             preserved, or -1 to make one.
 *
 * Return: 0 or a negative errno.
 */
int conns_setup(uint32_t maxconns, int conn_epfd)
{
	struct epoll_event cev = {.events = EPOLLIN, .data.u64 = EV_CONNS};
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
	cepfd = epfd;
	if (settings.inherit) {
		cepfd = conn_epfd >= 0 ? conn_epfd
				       : epoll_create1(EPOLL_CLOEXEC);
		if (cepfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, cepfd, &cev))
			return -errno;
	}
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

/**
 * conns_recount_refs() - recompute every item's reference count
 *
 * After an update that dropped a connection record, the references its
 * output queue held would never be released: count them again from the
 * queues that were kept.  Each slab page holds one class, whose number
 * every chunk header carries.
 */
void conns_recount_refs(void)
{
	for (uint64_t p = 0; p < store->pages_used; p++) {
		uint64_t base = store->slab_off + p * store->page_size;
		struct kv_item *first = item_at(base);
		uint32_t size;

		if (!first || first->clsid >= store->nclasses)
			continue;
		size = store->cls[first->clsid].size;
		for (uint64_t o = 0; o + size <= store->page_size; o += size)
			((struct kv_item *)(store_base + base + o))->refcount =
				0;
	}
	for (uint32_t i = 0; i < root->maxconns; i++) {
		struct conn *c = &conns[i];

		if (conn_recs[i].state != CONN_OPEN || !c->oq)
			continue;
		for (uint32_t k = c->rec->oq_head; k < c->rec->oq_tail; k++) {
			struct kv_item *it = item_at(c->oq[k].item);

			if (c->oq[k].item && it)
				it->refcount++;
		}
	}
}

static uint32_t represerve_next = UINT32_MAX;

/* --inherit: the inherited numbers of clients put back on their own,
 * closed from the loop (conns_close_inherited()), not in the blackout. */
static int *inherited;
static uint32_t ninherited, inherited_cap;

/**
 * conns_defer_close() - close an inherited duplicate later
 * @fd: a client's descriptor at its inherited number, now a duplicate.
 *
 * Closed now if it cannot be kept (no memory).
 */
void conns_defer_close(int fd)
{
	if (ninherited == inherited_cap) {
		uint32_t cap = inherited_cap ? 2 * inherited_cap : 1024;
		int *n = realloc(inherited, cap * sizeof(*n));

		if (!n) {
			close(fd);
			return;
		}
		inherited = n;
		inherited_cap = cap;
	}
	inherited[ninherited++] = fd;
}

/*
 * Close up to @budget (0: all) of them.  Before every prepare all are
 * closed: left open they would stand where the next inherited range goes.
 */
static void conns_close_inherited(uint32_t budget)
{
	for (uint32_t done = 0; ninherited && (!budget || done < budget);
	     done++)
		close(inherited[--ninherited]);
	if (!ninherited && inherited) {
		free(inherited);
		inherited = NULL;
		inherited_cap = 0;
	}
}

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

	if (!budget)
		conns_close_inherited(0);
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

/* Serve one connection's event. */
static void conn_event(const struct epoll_event *ev)
{
	uint64_t d = ev->data.u64;
	struct conn *c;

	if (d >= root->maxconns || conns[d].fd < 0)
		return;
	c = &conns[d];
	if (ev->events & EPOLLOUT)
		conn_run(c);
	else
		conn_readable(c);
}

/* --inherit: what the clients' own epoll instance has ready. */
static void conn_events(void)
{
	struct epoll_event evs[256];
	int n = epoll_wait(cepfd, evs, 256, 0);

	for (int i = 0; i < n; i++) {
		conn_event(&evs[i]);
		if (liveupdate_get_state() == LIVEUPDATE_STATE_FROZEN)
			break;
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

		kv_fault(KV_FAULT_POINT_LOOP);
		/* before re-preserving: the numbers they hold are free again */
		conns_close_inherited(1024);
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

			if (d == EV_CONNS) {
				conn_events();
			} else if (d == EV_LISTEN) {
				accept_new();
			} else if (d == EV_SIGNAL) {
				on_signal();
			} else if (d == EV_CONTROL) {
				kvlu_control_dispatch();
			} else {
				conn_event(&evs[i]);
			}
			/* An update (or a refusal of one) ran: events are stale. */
			if (liveupdate_get_state() == LIVEUPDATE_STATE_FROZEN)
				break;
		}
	}
	return 0;
}

/*
 * After a rollback: what the killed new image did on the socket and had
 * not recorded, from the kernel's counts (sock_counts()) against the
 * record's.  Input it had counted into the buffer but not yet taken from
 * the socket is dropped from the socket; output it had written but not
 * counted is skipped in the queue.  Then the record's counts are the
 * socket's again.  @kept: the record's buffers are the ones the new image
 * used (false: they were dropped, what is in the socket stays there).
 * A socket that is not TCP is left as it is.  Return: true if the record
 * and the socket disagreed beyond that (logged).
 */
static bool sync_with_socket(struct conn *c, bool kept)
{
	struct kv_conn_rec *r = c->rec;
	uint64_t in, out;
	int32_t d, x;
	bool odd = false;

	if (sock_counts(c->fd, &in, &out))
		return false;
	d = (int32_t)(r->in_seq - (uint32_t)in);
	if (kept && d > 0 && (uint32_t)d <= r->rlen) {
		char sink[4096];

		while (d > 0) {
			ssize_t t =
				recv(c->fd, sink,
				     (size_t)d < sizeof(sink) ? (size_t)d
							      : sizeof(sink),
				     MSG_DONTWAIT | MSG_TRUNC);

			if (t <= 0 && errno != EINTR)
				break;
			if (t > 0) {
				d -= (int32_t)t;
				in += (uint64_t)t;
			}
		}
	}
	odd = kept && d != 0;
	x = (int32_t)((uint32_t)out - r->out_seq);
	if (kept && x > 0 && (uint64_t)x <= r->pending)
		out_consume(c, (uint64_t)x);
	else if (kept && x)
		odd = true;
	r->in_seq = (uint32_t)in;
	r->out_seq = (uint32_t)out;
	if (odd)
		fprintf(stderr,
			"kvcache: connection %u: its record and its socket disagree after the rollback (input %d, output %d bytes)\n",
			(unsigned)(c - conns), (int)d, (int)x);
	return odd;
}

/**
 * conns_clear_io() - no connection has been read or written yet
 *
 * At the freeze: a rollback then compares with their sockets only the
 * connections the new image served (CONN_IO), not all of them.
 */
void conns_clear_io(void)
{
	for (uint32_t i = 0; i < root->maxconns; i++)
		conn_recs[i].flags &= ~CONN_IO;
}

/**
 * conns_align_counts() - a fresh record for a socket that carried bytes
 * @slot: an attached slot, its record made fresh (after a crash).
 */
void conns_align_counts(uint32_t slot)
{
	sync_with_socket(&conns[slot], false);
}

/*
 * A returned connection whose buffers were the new image's: nothing of
 * it is lost if every request it had not answered is still in the socket
 * (it was killed between counting a read and taking it) and every answer
 * it had queued went out (the socket's count is the record's plus all
 * that was pending).
 */
static bool unanswered_in_socket(const struct kv_conn_rec *r, int fd)
{
	uint64_t in, out;
	int32_t d, x;

	if (sock_counts(fd, &in, &out))
		return !r->rdone && !r->rlen && !r->pending &&
		       r->wlen <= r->wpos;
	d = (int32_t)(r->in_seq - (uint32_t)in);
	x = (int32_t)((uint32_t)out - r->out_seq);
	return !r->rdone && d >= 0 && (uint32_t)d == r->rlen && !r->swallow &&
	       !r->get_resume && x >= 0 && (uint64_t)x == r->pending;
}

/*
 * The record's buffers were the rolled-back image's (the arena repair
 * freed them): serve the connection from empty buffers, its counts the
 * socket's.  Return: true if that lost unanswered requests or answers.
 */
static bool drop_buffers(struct conn *c, int fd)
{
	struct kv_conn_rec *r = c->rec;
	uint32_t slot = (uint32_t)(c - conns);
	bool lost = !unanswered_in_socket(r, fd);

	r->rbuf_off = r->wbuf_off = r->oq_off = 0;
	r->rcap = r->rlen = r->wcap = r->wlen = r->wpos = 0;
	r->oq_cap = r->oq_head = r->oq_tail = 0;
	r->pending = r->swallow = 0;
	r->get_resume = 0;
	r->done_word = 0;
	r->out_stage = 0;
	attach(slot, fd, true, own_block);
	sync_with_socket(c, false);
	return lost;
}

/*
 * A client the rolled-back new image accepted in its trial (the library
 * handed its descriptor back): serve it here from its record.  Its
 * buffers were the new image's, dropped by the arena repair, so what it
 * had read and not answered is lost (counted); an idle one loses nothing.
 * It is preserved again before the next update (conns_represerve()).
 * Return: true if it lost unanswered requests.
 */
static bool take_returned(uint32_t slot, int fd)
{
	struct conn *c = &conns[slot];
	bool lost = false;

	if (attach(slot, fd, true, own_block))
		lost = drop_buffers(c, fd);
	else if (sync_with_socket(c, true))
		lost = true;
	c->need = 0;
	ep_set(c, EPOLLIN);
	return lost;
}

/* The new image closed this image's connection in @c's slot and gave the
 * slot to a client of its own: let ours go. */
static void drop_replaced(struct conn *c)
{
	if (c->events)
		epoll_ctl(cepfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->events = 0;
	nopen--;
	/* Allowed from the rollback hook: the token is free for the new one. */
	if (c->preserved)
		kvlu_unpreserve(c->rec->token);
	c->preserved = false;
}

/**
 * conns_take_back() - serve the connections again after a rolled-back update
 * @returned: set to the count of clients the new image had accepted that
 *            are served here now.
 *
 * The new image served them during its trial from the same records and
 * buffers in handover memory: take its view, so that requests it had read
 * but not answered are answered here.  A record that does not check out
 * (its buffers were the new image's, dropped by the arena repair) loses
 * its unanswered input and output but keeps the connection.  Connections
 * the new image closed are closed here (released by the sweep, since the
 * state lock is held); those it accepted come back from the library
 * (kvlu_take_returned()) with the record it wrote for them.
 *
 * Return: connections whose unanswered requests were lost.
 */
uint32_t conns_take_back(uint32_t *returned)
{
	uint32_t cut = 0;

	*returned = 0;
	nfree_slots = 0;
	for (uint32_t i = 0; i < root->maxconns; i++) {
		struct conn *c = &conns[i];
		struct kv_conn_rec *r = &conn_recs[i];
		uint32_t events = c->events, done;
		bool preserved = c->preserved;
		int back;

		if (r->state == CONN_OPEN && r->token == (uint64_t)i + 1 &&
		    !kvlu_take_returned(r->token, &back)) {
			if (c->fd >= 0)
				drop_replaced(c);
			cut += take_returned(i, back);
			(*returned)++;
			goto run;
		}
		if (c->fd < 0) {
			if (r->state ==
			    CONN_OPEN) /* accepted by the new image */
				memset(r, 0, sizeof(*r));
			if (r->state == CONN_FREE)
				free_slots[nfree_slots++] = i;
			else
				want_sweep = true;
			continue;
		}
		if (r->state != CONN_OPEN) { /* closed by the new image */
			if (events)
				epoll_ctl(cepfd, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->fd = -1;
			c->events = 0;
			c->rbuf = c->wbuf = NULL;
			c->oq = NULL;
			nopen--;
			memset(r, 0, sizeof(*r));
			r->token = (uint64_t)i + 1;
			r->state = preserved ? CONN_ZOMBIE : CONN_FREE;
			if (preserved)
				want_sweep = true;
			else
				free_slots[nfree_slots++] = i;
			continue;
		}
		nopen--; /* attach() counts it again */
		if (attach(i, c->fd, true, own_block)) {
			if (drop_buffers(c, c->fd)) {
				fprintf(stderr,
					"kvcache: connection %u: its buffers from the rolled-back image do not check out; its unanswered requests are dropped\n",
					i);
				cut++;
			}
		} else if ((r->flags & CONN_IO) && sync_with_socket(c, true)) {
			cut++;
		}
		c->events = events;
		c->preserved = preserved;
	run:
		/* The new image died inside a batch: skip what it answered. */
		done = r->rdone & ~RDONE_BATCH;
		if (done && done <= r->rlen && c->rbuf) {
			memmove(c->rbuf, c->rbuf + done, r->rlen - done);
			r->rlen -= done;
		}
		r->done_word = 0;
		c->need = 0;
	}
	if (*returned) /* not preserved here yet: before the next update */
		represerve_next = 0;
	conns_recount_refs();
	return cut;
}

/**
 * conns_resume_all() - run what every open connection has buffered
 *
 * After conns_take_back(), once the state is NORMAL again.
 */
void conns_resume_all(void)
{
	for (uint32_t i = 0; i < root->maxconns; i++)
		if (conn_recs[i].state == CONN_OPEN && conns[i].fd >= 0)
			conn_run(&conns[i]);
}
