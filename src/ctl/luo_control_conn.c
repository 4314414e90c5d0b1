// SPDX-License-Identifier: MIT
/*
 * The control socket's peers: buffered, non-blocking I/O so that no peer
 * can make the service's thread wait.
 *
 * - A request is read one line at a time (peek, then take exactly the
 *   line): what follows it stays in the socket, so an update that execs
 *   leaves the next requests for the new image, which serves them.
 * - Every line gets exactly one answer (the server, luo_control.c, runs
 *   it): an empty line, a NUL byte, an over-long line or a last line cut
 *   off by end of file get an error.
 * - A reply is queued and sent as the socket takes it (EPOLLOUT); the next
 *   request is read only once it is all sent, so a peer that does not
 *   read holds at most one reply and is dropped after the peer timeout.
 * - A connection is closed so that the peer reads everything sent, then
 *   end of file: shut down both ways, drain what it sent, close.  Closing
 *   a Unix socket with unread input makes the peer see a reset instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "luo_control_internal.h"

/* Bounds per event, so that one busy peer cannot hold the others up. */
#define READS_PER_EVENT 64
#define PEEK_MAX 4096

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct ctl_conn *luo_ctl_conn_add(struct luo_control *ctl, int fd, int pid)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct ctl_conn *c = calloc(1, sizeof(*c));

	if (c)
		c->in = malloc(CTL_LINE_MAX);
	ev.data.ptr = c;
	if (!c || !c->in || epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		pr_err("control socket: cannot serve a new connection: %s",
		       c && c->in ? strerror(errno) : "out of memory");
		if (c)
			free(c->in);
		free(c);
		luo_ctl_close_socket(fd);
		return NULL;
	}
	c->fd = fd;
	c->pid = pid;
	c->ep_events = EPOLLIN;
	c->next = ctl->conns;
	ctl->conns = c;
	return c;
}

/* Read and drop what the peer sent: a close leaves nothing unread. */
static void drain(int fd)
{
	char buf[4096];

	for (int i = 0; i < 1024; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
}

void luo_ctl_close_socket(int fd)
{
	/* No more input can arrive, so the drain empties the socket. */
	shutdown(fd, SHUT_RDWR);
	drain(fd);
	close(fd);
}

void luo_ctl_conn_close(struct luo_control *ctl, struct ctl_conn *c)
{
	for (struct ctl_conn **p = &ctl->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (!c->dead) {
		luo_ctl_conn_flush(c); /* what the socket still takes */
		luo_ctl_close_socket(c->fd);
	} else {
		close(c->fd);
	}
	luo_ctl_buf_free(&c->out);
	free(c->in);
	free(c);
}

int luo_ctl_conn_flush(struct ctl_conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off,
				 c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->waited_ns)
				c->waited_ns = now_ns();
			return 0;
		}
		if (n < 0)
			return -errno;
		c->out_off += (size_t)n;
		c->waited_ns = 0; /* it reads: the clock starts again */
	}
	c->waited_ns = 0;
	c->out_off = 0;
	if (c->out.cap > (1U << 20))
		luo_ctl_buf_free(
			&c->out); /* do not keep a large listing's memory */
	else
		luo_ctl_buf_reset(&c->out);
	return 0;
}

/* One stage line, sent at once: the client shows progress as it goes. */
void luo_ctl_stage(struct ctl_conn *conn, const char *name, uint64_t ns)
{
	luo_ctl_buf_printf(&conn->out, "stage %s us=%llu\n", name,
			   (unsigned long long)(ns / 1000));
	luo_ctl_conn_flush(conn);
}

bool luo_ctl_conn_pending(const struct ctl_conn *c)
{
	return c->out_off < c->out.len;
}

void luo_ctl_conn_send_last(struct ctl_conn *c, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	/* The one wait on a peer: the process ends right after. */
	while (!luo_ctl_conn_flush(c) && luo_ctl_conn_pending(c)) {
		struct pollfd p = {.fd = c->fd, .events = POLLOUT};
		uint64_t now = now_ns();

		if (now >= end ||
		    poll(&p, 1, (int)((end - now) / 1000000ULL) + 1) <= 0)
			break;
	}
}

void luo_ctl_conn_watch(struct luo_control *ctl, struct ctl_conn *c)
{
	uint32_t want = luo_ctl_conn_pending(c) ? EPOLLOUT
			: c->eof		? 0
						: EPOLLIN;
	struct epoll_event ev = {.events = want, .data.ptr = c};

	if (c->dead || want == c->ep_events)
		return;
	if (!epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, c->fd, &ev))
		c->ep_events = want;
}

/*
 * Take the next line of @c into c->in, never more than the line.
 * Return: 1 a line (its newline included), 2 a line longer than
 * CTL_LINE_MAX began (c->in holds its head), 0 nothing more for now,
 * -1 end of file or an error.
 */
int luo_ctl_conn_read_line(struct ctl_conn *c)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		size_t room = CTL_LINE_MAX - c->inlen;
		char *at = c->in + c->inlen, *nl;
		ssize_t n, take;

		n = recv(c->fd, at, room < PEEK_MAX ? room : PEEK_MAX,
			 MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		nl = memchr(at, '\n', (size_t)n);
		take = nl ? nl - at + 1 : n;
		if (recv(c->fd, at, (size_t)take, MSG_DONTWAIT) != take)
			return -1;
		if (c->skipping) {
			/* The rest of an over-long line, already answered. */
			c->skipping = !nl;
			continue;
		}
		c->inlen += (size_t)take;
		if (nl)
			return 1;
		if (c->inlen == CTL_LINE_MAX)
			return 2;
	}
	return 0;
}

void luo_ctl_conns_quiesce(struct luo_control *ctl, struct ctl_conn *keep)
{
	for (struct ctl_conn *c = ctl->conns; c; c = c->next) {
		if (c == keep || c->dead)
			continue;
		/* Nothing more can arrive; what did gets an answer. */
		shutdown(c->fd, SHUT_RD);
		if (luo_ctl_conn_pending(c))
			luo_ctl_conn_flush(c);
		while (!luo_ctl_conn_pending(c)) {
			int r = luo_ctl_conn_read_line(c);

			if (r == 0 || (r < 0 && !c->inlen))
				break;
			c->skipping = r == 2;
			c->inlen = 0;
			luo_ctl_error(
				&c->out, -EAGAIN,
				"the service is starting its new image and closes this connection; reconnect and send the request again");
			if (luo_ctl_conn_flush(c) || r < 0)
				break;
		}
		shutdown(c->fd, SHUT_WR);
		drain(c->fd);
		/* The exec closes it; if the exec fails, the next event. */
		c->dead = true;
	}
}

void luo_ctl_conns_sweep(struct luo_control *ctl)
{
	uint64_t now = now_ns(), next = 0;
	struct ctl_conn *c = ctl->conns, *n;
	struct itimerspec its = {0};

	for (; c; c = n) {
		n = c->next;
		if (!luo_ctl_conn_pending(c) || !c->waited_ns)
			continue;
		if (now - c->waited_ns >= ctl->peer_timeout_ns) {
			pr_warn("control socket %s: dropped a peer (pid %d) that left %zu bytes of its reply unread for %llu ms",
				ctl->path, c->pid, c->out.len - c->out_off,
				(unsigned long long)(now - c->waited_ns) /
					1000000);
			c->out_off = c->out.len; /* nothing more is sent */
			luo_ctl_conn_close(ctl, c);
			continue;
		}
		if (!next || c->waited_ns + ctl->peer_timeout_ns < next)
			next = c->waited_ns + ctl->peer_timeout_ns;
	}
	if (next == ctl->timer_at_ns)
		return;
	its.it_value.tv_sec = (time_t)(next / 1000000000ULL);
	its.it_value.tv_nsec = (long)(next % 1000000000ULL);
	if (!timerfd_settime(ctl->timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		ctl->timer_at_ns = next;
}
