// SPDX-License-Identifier: MIT
/*
 * The control socket: a Unix stream listener served from the library's own
 * thread or from the service's poll loop (one epoll descriptor either
 * way).  Peers are checked with SO_PEERCRED.  The listener is preserved in
 * the "luo.control" session from the start, so it is never closed during
 * an update; the connection that asks for an update joins it just before
 * prepare and is answered by the new image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#include "log.h"
#include "luo_control_internal.h"
#include "luo_internal.h"
#include "luo_txn.h"

/* One server per process: the session name it uses is fixed. */
static struct luo_control *active;
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;

#define EP_LISTENER ((void *)1)
#define EP_STOP ((void *)2)

static bool name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > LUO_CONTROL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/*
 * The socket's directory, created 0700 if missing (its parent must exist).
 * The default one must be a real directory of ours: under /tmp anyone could
 * have made it first.
 */
static int make_dir(const char *path, bool ours)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (ours && (lstat(dir, &st) || !S_ISDIR(st.st_mode) ||
		     st.st_uid != geteuid() || (st.st_mode & 0022))) {
		pr_err("control socket: %s is not a directory of this user's that only it can write; remove it or give a path",
		       dir);
		return -EPERM;
	}
	return 0;
}

static int bind_listener(struct luo_control *ctl)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, err;

	memcpy(sa.sun_path, ctl->path, strlen(ctl->path) + 1);
	err = make_dir(ctl->path, ctl->default_path);
	if (err) {
		pr_err("control socket: cannot create the directory of %s: %s",
		       ctl->path, strerror(-err));
		return err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	if (err == -EADDRINUSE) {
		/* A live server answers; a stale socket file does not. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 &&
			    !connect(probe, (struct sockaddr *)&sa, sizeof(sa));

		if (probe >= 0)
			close(probe);
		if (live) {
			pr_err("control socket %s is served by another process; stop it or choose another path",
			       ctl->path);
			close(fd);
			return -EADDRINUSE;
		}
		unlink(ctl->path);
		err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	}
	if (!err)
		err = chmod(ctl->path, 0600) || listen(fd, 128) ? -errno : 0;
	if (err) {
		pr_err("control socket: cannot listen on %s: %s", ctl->path,
		       strerror(-err));
		close(fd);
		return err;
	}
	ctl->listen_fd = fd;
	return 0;
}

int luo_ctl_send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};

			/* A peer that stops reading is dropped, not waited on. */
			if (poll(&p, 1, 2000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int ep_add(struct luo_control *ctl, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void conn_close(struct luo_control *ctl, struct ctl_conn *c)
{
	for (struct ctl_conn **p = &ctl->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c);
}

static struct ctl_conn *conn_add(struct luo_control *ctl, int fd)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));

	if (c)
		c->in = malloc(CTL_LINE_MAX);
	if (!c || !c->in || ep_add(ctl, fd, c)) {
		if (c)
			free(c->in);
		free(c);
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->next = ctl->conns;
	ctl->conns = c;
	return c;
}

static void greet(struct luo_control *ctl, int fd)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "luo %d %s %d\n",
			 LUO_CONTROL_PROTOCOL, ctl->name, (int)getpid());

	luo_ctl_send_all(fd, line, (size_t)n);
}

static void accept_all(struct luo_control *ctl)
{
	for (;;) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int fd = accept4(ctl->listen_fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			char line[256];
			int n = snprintf(
				line, sizeof(line),
				"error EACCES uid %u may not control service %s: only uid %u and root may\n",
				(unsigned)cred.uid, ctl->name,
				(unsigned)geteuid());

			pr_warn("control socket %s: refused a peer with uid %u (pid %d)",
				ctl->path, (unsigned)cred.uid, (int)cred.pid);
			luo_ctl_send_all(fd, line, (size_t)n);
			close(fd);
			continue;
		}
		if (conn_add(ctl, fd))
			greet(ctl, fd);
	}
}

/* Run every complete line that arrived; false when the peer is gone. */
static bool serve_conn(struct luo_control *ctl, struct ctl_conn *c)
{
	struct ctl_buf out = {0};
	bool alive = true;

	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->inlen,
				 CTL_LINE_MAX - c->inlen, 0);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			alive = false;
			break;
		}
		c->inlen += (size_t)n;
		while ((nl = memchr(c->in, '\n', c->inlen))) {
			char *words[256];
			size_t used = (size_t)(nl - c->in) + 1;
			int nw;

			*nl = '\0';
			luo_ctl_buf_reset(&out);
			nw = luo_ctl_split(c->in, words, 256);
			if (nw < 0)
				luo_ctl_error(
					&out, nw,
					"malformed request: too many words or a bad %%-escape");
			else if (nw > 0)
				luo_ctl_run(ctl, c, words, nw, &out);
			memmove(c->in, c->in + used, c->inlen - used);
			c->inlen -= used;
			if (out.len &&
			    luo_ctl_send_all(c->fd, out.data, out.len)) {
				alive = false;
				break;
			}
		}
		if (!alive)
			break;
		if (c->inlen == CTL_LINE_MAX) {
			luo_ctl_buf_reset(&out);
			luo_ctl_error(&out, -E2BIG,
				      "request longer than %d bytes",
				      CTL_LINE_MAX);
			luo_ctl_send_all(c->fd, out.data, out.len);
			alive = false;
			break;
		}
	}
	luo_ctl_buf_free(&out);
	return alive;
}

static void serve_events(struct luo_control *ctl, bool *stop)
{
	struct epoll_event ev[16];
	int n = epoll_wait(ctl->epfd, ev, 16, 0);

	for (int i = 0; i < n; i++) {
		void *p = ev[i].data.ptr;

		if (p == EP_STOP) {
			*stop = true;
		} else if (p == EP_LISTENER) {
			accept_all(ctl);
		} else if (!serve_conn(ctl, p)) {
			/* Only this connection is closed: no command closes
			 * another, so later events of the batch stay valid. */
			conn_close(ctl, p);
		}
	}
}

static void *control_thread(void *arg)
{
	struct luo_control *ctl = arg;
	bool stop = false;

	while (!stop) {
		pthread_mutex_lock(&ctl->lock);
		serve_events(ctl, &stop);
		pthread_mutex_unlock(&ctl->lock);
		if (!stop) {
			struct pollfd p = {.fd = ctl->epfd, .events = POLLIN};

			poll(&p, 1, -1);
		}
	}
	return NULL;
}

int luo_ctl_preserve_requester(struct luo_control *ctl, int fd)
{
	if (!ctl->session)
		return -ENOENT;
	return liveupdate_session_preserve_fd(ctl->session, fd,
					      CTL_TOKEN_REQUESTER);
}

void luo_ctl_unpreserve_requester(struct luo_control *ctl)
{
	if (ctl->session)
		liveupdate_session_unpreserve_fd(ctl->session,
						 CTL_TOKEN_REQUESTER);
}

/*
 * In a new image: take the listener and the requester back from the
 * session the old image's server preserved.  No such session is not an
 * error (the old image served no control socket).
 */
static int adopt_incoming(struct luo_control *ctl, int *requester)
{
	struct luo_session *s;
	int acc = 0, err, fd = -1;
	socklen_t len = sizeof(acc);
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);

	*requester = -1;
	if (liveupdate_retrieve_session(CTL_SESSION, &s))
		return 0;
	err = liveupdate_session_retrieve_fd(s, CTL_TOKEN_LISTENER, &fd);
	if (!err &&
	    (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc ||
	     getsockname(fd, (struct sockaddr *)&sa, &salen) ||
	     sa.sun_family != AF_UNIX || salen <= sizeof(sa_family_t))) {
		pr_err("control socket: the carried-over listener is not a listening Unix socket; opening a new one");
		close(fd);
		fd = -1;
	}
	/* Only an update asked for here carries a requester. */
	if (!luo_session_has_token(s, CTL_TOKEN_REQUESTER) ||
	    liveupdate_session_retrieve_fd(s, CTL_TOKEN_REQUESTER, requester))
		*requester = -1;
	liveupdate_session_finish(s);
	if (fd < 0)
		return 0;
	sa.sun_path[sizeof(sa.sun_path) - 1] = '\0';
	if (strcmp(sa.sun_path, ctl->path))
		pr_warn("control socket: still serving %s, where the previous image listened, not %s",
			sa.sun_path, ctl->path);
	snprintf(ctl->path, sizeof(ctl->path), "%s", sa.sun_path);
	ctl->listen_fd = fd;
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void note_update(struct luo_control *ctl)
{
	struct liveupdate_timing t;
	uint64_t mono = clock_ns(CLOCK_MONOTONIC);

	if (liveupdate_get_timing(&t))
		return;
	ctl->updated = true;
	ctl->blackout_ns = mono - t.freeze_ns;
	ctl->update_realtime_ns = clock_ns(CLOCK_REALTIME) - (mono - t.exec_ns);
}

static void control_free(struct luo_control *ctl)
{
	while (ctl->conns)
		conn_close(ctl, ctl->conns);
	if (ctl->session)
		liveupdate_session_close(ctl->session);
	if (ctl->listen_fd >= 0) {
		close(ctl->listen_fd);
		/* After a spawn-mode commit the new process serves it. */
		if (!luo_spawn_handed_over())
			unlink(ctl->path);
	}
	if (ctl->epfd >= 0)
		close(ctl->epfd);
	if (ctl->stop_fd >= 0)
		close(ctl->stop_fd);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}

static int control_setup(struct luo_control *ctl, int *requester)
{
	enum liveupdate_state st = liveupdate_get_state();
	int err;

	if (st == LIVEUPDATE_STATE_UPDATED) {
		note_update(ctl);
		err = adopt_incoming(ctl, requester);
		if (err)
			return err;
	}
	if (ctl->listen_fd < 0) {
		err = bind_listener(ctl);
		if (err)
			return err;
	}
	ctl->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctl->epfd < 0)
		return -errno;
	err = ep_add(ctl, ctl->listen_fd, EP_LISTENER);
	if (err)
		return err;
	/* Kept in a session from now on: the update never closes it. */
	err = liveupdate_create_session(CTL_SESSION, &ctl->session);
	if (!err)
		err = liveupdate_session_preserve_fd(
			ctl->session, ctl->listen_fd, CTL_TOKEN_LISTENER);
	if (err) {
		pr_err("control socket: cannot preserve the listener in session '%s': %s",
		       CTL_SESSION, strerror(-err));
		return err;
	}
	if (ctl->flags & LUO_CONTROL_THREAD) {
		ctl->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ctl->stop_fd < 0)
			return -errno;
		err = ep_add(ctl, ctl->stop_fd, EP_STOP);
		if (err)
			return err;
	}
	return 0;
}

int luo_control_start(const struct luo_control_opts *opts,
		      struct luo_control **ctlp)
{
	struct luo_control *ctl;
	int err, requester = -1;

	if (!opts || !ctlp || !name_valid(opts->name)) {
		pr_err("luo_control_start: the name must be 1 to %d characters of [A-Za-z0-9._-]",
		       LUO_CONTROL_NAME_MAX);
		return -EINVAL;
	}
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UNDEFINED) {
		pr_err("luo_control_start: call luo_init() first");
		return -ENODEV;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->listen_fd = ctl->epfd = ctl->stop_fd = -1;
	ctl->flags = opts->flags;
	pthread_mutex_init(&ctl->lock, NULL);
	snprintf(ctl->name, sizeof(ctl->name), "%s", opts->name);
	if (opts->path) {
		if (!*opts->path || strlen(opts->path) >= sizeof(ctl->path)) {
			pr_err("luo_control_start: the path must be 1 to %zu bytes",
			       sizeof(ctl->path) - 1);
			free(ctl);
			return -EINVAL;
		}
		snprintf(ctl->path, sizeof(ctl->path), "%s", opts->path);
	} else if (luo_ctl_default_path(opts->name, ctl->path,
					sizeof(ctl->path))) {
		pr_err("luo_control_start: the default socket path is too long; give a path");
		free(ctl);
		return -EINVAL;
	} else {
		ctl->default_path = true;
	}
	pthread_mutex_lock(&active_lock);
	if (active) {
		pthread_mutex_unlock(&active_lock);
		pr_err("luo_control_start: this process already serves %s",
		       active->path);
		free(ctl);
		return -EBUSY;
	}
	err = control_setup(ctl, &requester);
	if (!err && (ctl->flags & LUO_CONTROL_THREAD)) {
		err = -pthread_create(&ctl->thread, NULL, control_thread, ctl);
		ctl->have_thread = !err;
	}
	if (err) {
		pthread_mutex_unlock(&active_lock);
		if (requester >= 0) {
			struct ctl_buf out = {0};

			luo_ctl_error(
				&out, err,
				"the new image could not serve the control socket: %s",
				strerror(-err));
			luo_ctl_send_all(requester, out.data, out.len);
			luo_ctl_buf_free(&out);
			close(requester);
		}
		control_free(ctl);
		return err;
	}
	active = ctl;
	pthread_mutex_unlock(&active_lock);
	if (requester >= 0) {
		pthread_mutex_lock(&ctl->lock);
		luo_ctl_report_update(requester);
		/* It stays a client: "update --finish" goes on on it. */
		conn_add(ctl, requester);
		pthread_mutex_unlock(&ctl->lock);
	}
	*ctlp = ctl;
	return 0;
}

int luo_control_fd(const struct luo_control *ctl)
{
	if (!ctl || (ctl->flags & LUO_CONTROL_THREAD))
		return -EINVAL;
	return ctl->epfd;
}

int luo_control_dispatch(struct luo_control *ctl)
{
	bool stop = false;

	if (!ctl || (ctl->flags & LUO_CONTROL_THREAD))
		return -EINVAL;
	pthread_mutex_lock(&ctl->lock);
	serve_events(ctl, &stop);
	pthread_mutex_unlock(&ctl->lock);
	return 0;
}

const char *luo_control_path(const struct luo_control *ctl)
{
	return ctl ? ctl->path : NULL;
}

void luo_control_stop(struct luo_control *ctl)
{
	if (!ctl)
		return;
	if (ctl->have_thread) {
		uint64_t one = 1;

		if (write(ctl->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(ctl->thread, NULL);
	}
	pthread_mutex_lock(&active_lock);
	if (active == ctl)
		active = NULL;
	pthread_mutex_unlock(&active_lock);
	control_free(ctl);
}
