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
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#include "log.h"
#include "luo_control_internal.h"
#include "luo_internal.h"
#include "luo_name.h"
#include "luo_txn.h"

/* One server per process: the session name it uses is fixed. */
static struct luo_control *active;
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;

#define EP_LISTENER ((void *)1)
#define EP_STOP ((void *)2)
#define EP_TIMER ((void *)3)

static bool name_valid(const char *name)
{
	return name &&
	       luo_name_valid(name, strlen(name), LUO_CONTROL_NAME_MAX, "._-");
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

/*
 * Whether a live process listens on @sa.  The probe never blocks: a
 * listener whose backlog is full (its owner alive but not accepting) makes
 * a blocking connect() wait for ever, a non-blocking one answers EAGAIN.
 * Return: 1 live, 0 nobody listens (a stale socket file), negative errno
 * when it cannot tell.
 */
static int probe_listener(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int err, live;

	if (fd < 0)
		return -errno;
	err = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	if (err == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		socklen_t len = sizeof(err);

		err = poll(&p, 1, 1000) == 1 &&
				      !getsockopt(fd, SOL_SOCKET, SO_ERROR,
						  &err, &len)
			      ? err
			      : EAGAIN;
	}
	close(fd);
	if (!err || err == EAGAIN)
		live = 1;
	else if (err == ECONNREFUSED || err == ENOENT)
		live = 0;
	else
		live = -err;
	return live;
}

/* Remember which socket file is ours, so that stop removes only it. */
static void note_socket_file(struct luo_control *ctl)
{
	struct stat st;

	ctl->have_file = !lstat(ctl->path, &st) && S_ISSOCK(st.st_mode);
	ctl->file_dev = st.st_dev;
	ctl->file_ino = st.st_ino;
}

static int bind_listener(struct luo_control *ctl)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, err, live;

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
		/* Only a socket file is ever replaced: anything else at the
		 * path is someone's data. */
		if (lstat(ctl->path, &st) || !S_ISSOCK(st.st_mode)) {
			pr_err("control socket: %s exists and is not a socket; remove it or choose another path",
			       ctl->path);
			close(fd);
			return -ENOTSOCK;
		}
		live = probe_listener(&sa);
		if (live) {
			if (live > 0)
				pr_err("control socket %s is served by another process; stop it or choose another path",
				       ctl->path);
			else
				pr_err("control socket: cannot tell whether %s is in use (%s); remove it or choose another path",
				       ctl->path, strerror(-live));
			close(fd);
			return live > 0 ? -EADDRINUSE : live;
		}
		/* A stale socket file: nobody listens on it. */
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
	note_socket_file(ctl);
	return 0;
}

static int ep_add(struct luo_control *ctl, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void greet(struct luo_control *ctl, struct ctl_conn *c)
{
	luo_ctl_buf_printf(&c->out, "luo %d %s %d\n", LUO_CONTROL_PROTOCOL,
			   ctl->name, (int)getpid());
	luo_ctl_conn_flush(c);
	luo_ctl_conn_watch(ctl, c);
}

/* One refusal line (a new socket always has room for it), then a close
 * the peer sees as end of file. */
static void refuse(struct luo_control *ctl, int fd, const struct ucred *cred)
{
	char line[256];
	int n = snprintf(
		line, sizeof(line),
		"error EACCES uid %u may not control service %s: only uid %u and root may\n",
		(unsigned)cred->uid, ctl->name, (unsigned)geteuid());

	pr_warn("control socket %s: refused a peer with uid %u (pid %d)",
		ctl->path, (unsigned)cred->uid, (int)cred->pid);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		pr_warn("control socket %s: could not tell the refused peer why",
			ctl->path);
	luo_ctl_close_socket(fd);
}

/* A bounded number per event: a flood of connections waits its turn. */
static void accept_some(struct luo_control *ctl)
{
	for (int i = 0; i < 64; i++) {
		struct ucred cred = {.uid = (uid_t)-1, .pid = 0};
		socklen_t len = sizeof(cred);
		struct ctl_conn *c;
		int fd = accept4(ctl->listen_fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			refuse(ctl, fd, &cred);
			continue;
		}
		c = luo_ctl_conn_add(ctl, fd, (int)cred.pid);
		if (c)
			greet(ctl, c);
	}
}

/* Bounds per event, so that one busy peer cannot hold the others up. */
#define LINES_PER_EVENT 16

/* Run the line in c->in (newline included): its whole answer into c->out. */
static void run_line(struct luo_control *ctl, struct ctl_conn *c)
{
	size_t len = c->inlen - 1;
	struct ctl_buf *out = &c->out;
	char *words[256];
	int nw;

	c->in[len] = '\0';
	if (memchr(c->in, '\0', len)) {
		luo_ctl_error(
			out, -EINVAL,
			"malformed request: a NUL byte in the line; write bytes outside printable ASCII as %%XX (but never %%00)");
		return;
	}
	nw = luo_ctl_split(c->in, words, 256);
	if (nw < 0)
		luo_ctl_error(
			out, nw,
			"malformed request: more than 256 words, a bad %%-escape or %%00");
	else if (nw == 0)
		luo_ctl_error(
			out, -EINVAL,
			"empty request: send a command such as 'status' (luoctl(1) lists them)");
	else
		luo_ctl_run(ctl, c, words, nw, out);
	if (out->err) {
		luo_ctl_buf_reset(out);
		luo_ctl_error(out, -ENOMEM,
			      "the service is out of memory for this reply");
	} else if (out->len - c->out_off > CTL_REPLY_MAX) {
		size_t n = out->len - c->out_off;

		out->len = c->out_off;
		luo_ctl_error(
			out, -E2BIG,
			"the reply is %zu bytes, more than the %u a peer may have pending",
			n, CTL_REPLY_MAX);
	}
}

/* Answer what @c sent, one line at a time, while its replies get sent. */
static void serve_input(struct luo_control *ctl, struct ctl_conn *c)
{
	for (int i = 0;
	     i < LINES_PER_EVENT && !c->eof && !luo_ctl_conn_pending(c); i++) {
		int r = luo_ctl_conn_read_line(c);

		if (r == 0)
			break;
		if (r < 0) {
			c->eof = true;
			if (c->inlen)
				luo_ctl_error(
					&c->out, -EINVAL,
					"incomplete request: the connection ended before its newline; it was not run");
		} else if (r == 2) {
			c->skipping = true;
			luo_ctl_error(
				&c->out, -E2BIG,
				"request longer than %d bytes; it was not run",
				CTL_LINE_MAX);
		} else {
			run_line(ctl, c);
		}
		c->inlen = 0;
		if (luo_ctl_conn_flush(c)) {
			c->eof = true;
			luo_ctl_buf_reset(&c->out);
			c->out_off = 0;
		}
	}
}

/* Serve @c's epoll @events; false when it is to be closed. */
static bool serve_conn(struct luo_control *ctl, struct ctl_conn *c,
		       uint32_t events)
{
	(void)events; /* whatever woke us, the socket says what is left */
	if (c->dead)
		return false;
	if (luo_ctl_conn_pending(c) && luo_ctl_conn_flush(c))
		return false; /* the peer is gone */
	serve_input(ctl, c);
	if (c->eof && !luo_ctl_conn_pending(c))
		return false;
	luo_ctl_conn_watch(ctl, c);
	return true;
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
			accept_some(ctl);
		} else if (p == EP_TIMER) {
			uint64_t count;

			if (read(ctl->timer_fd, &count, sizeof(count)) < 0)
				ctl->timer_at_ns = 0; /* re-armed below */
			else
				ctl->timer_at_ns = 0; /* fired */
		} else if (!serve_conn(ctl, p, ev[i].events)) {
			/* Only this connection is closed: no command closes
			 * another (the update shuts the others down but leaves
			 * them listed), so later events of the batch stay
			 * valid. */
			luo_ctl_conn_close(ctl, p);
		}
	}
	/* After the batch: it may close connections the batch names. */
	luo_ctl_conns_sweep(ctl);
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

/*
 * An inherited descriptor (LUO_INIT_EXEC_INHERIT) arrives inside the
 * range the old image's prepare placed above its other descriptors; left
 * there it splits the free run the next prepare's range needs, which then
 * goes above everything (and past RLIMIT_NOFILE for a service with many
 * files).  Move it to the lowest free number (one received off the
 * carrier mostly is there already); unchanged on failure.
 */
static int lowest_number(int fd)
{
	int low;

	if (fd < 0)
		return fd;
	low = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (low < 0 || low > fd) {
		if (low >= 0)
			close(low);
		return fd;
	}
	close(fd);
	return low;
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
	fd = lowest_number(fd);
	*requester = lowest_number(*requester);
	liveupdate_session_finish(s);
	if (fd < 0)
		return 0;
	sa.sun_path[sizeof(sa.sun_path) - 1] = '\0';
	if (strcmp(sa.sun_path, ctl->path))
		pr_warn("control socket: still serving %s, where the previous image listened, not %s",
			sa.sun_path, ctl->path);
	snprintf(ctl->path, sizeof(ctl->path), "%s", sa.sun_path);
	ctl->listen_fd = fd;
	note_socket_file(ctl);
	return 0;
}

/*
 * After a crash: the listener the service manager kept in its descriptor
 * store, if it still listens on our path; clients that connected while
 * the service was down are in its backlog.
 */
static void adopt_stored(struct luo_control *ctl)
{
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa), len = sizeof(int);
	int fd, acc = 0;

	if (liveupdate_fdstore_retrieve(CTL_SESSION, CTL_TOKEN_LISTENER, &fd))
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) ||
	    sa.sun_family != AF_UNIX || salen <= sizeof(sa_family_t) ||
	    strncmp(sa.sun_path, ctl->path, sizeof(sa.sun_path)) ||
	    access(ctl->path, F_OK)) {
		close(fd);
		return;
	}
	ctl->listen_fd = fd;
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
		luo_ctl_conn_close(ctl, ctl->conns);
	if (ctl->session)
		liveupdate_session_close(ctl->session);
	if (ctl->listen_fd >= 0) {
		struct stat st;

		close(ctl->listen_fd);
		/* Only the socket file this server bound or took over, and
		 * not after a spawn-mode commit: the new process serves it. */
		if (ctl->have_file && !luo_spawn_handed_over() &&
		    !lstat(ctl->path, &st) && S_ISSOCK(st.st_mode) &&
		    st.st_dev == ctl->file_dev && st.st_ino == ctl->file_ino)
			unlink(ctl->path);
	}
	if (ctl->epfd >= 0)
		close(ctl->epfd);
	if (ctl->stop_fd >= 0)
		close(ctl->stop_fd);
	if (ctl->timer_fd >= 0)
		close(ctl->timer_fd);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}

static int control_setup(struct luo_control *ctl, int *requester)
{
	enum liveupdate_state st = liveupdate_get_state();
	int err;

	/* After a crash nothing came over but what the store kept. */
	if (st == LIVEUPDATE_STATE_UPDATED && !liveupdate_crash_recovered()) {
		note_update(ctl);
		err = adopt_incoming(ctl, requester);
		if (err)
			return err;
	} else {
		adopt_stored(ctl);
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
	ctl->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ctl->timer_fd < 0) {
		err = -errno;
		pr_err("control socket: cannot create the peer timer: %s",
		       strerror(-err));
		return err;
	}
	err = ep_add(ctl, ctl->timer_fd, EP_TIMER);
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
	ctl->listen_fd = ctl->epfd = ctl->stop_fd = ctl->timer_fd = -1;
	ctl->flags = opts->flags;
	ctl->peer_timeout_ns =
		(uint64_t)(opts->peer_timeout_ms
				   ? opts->peer_timeout_ms
				   : CTL_PEER_TIMEOUT_MS_DEFAULT) *
		1000000ULL;
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
			if (!out.err)
				send(requester, out.data, out.len,
				     MSG_NOSIGNAL | MSG_DONTWAIT);
			luo_ctl_buf_free(&out);
			luo_ctl_close_socket(requester);
		}
		control_free(ctl);
		return err;
	}
	active = ctl;
	pthread_mutex_unlock(&active_lock);
	if (requester >= 0) {
		struct ctl_conn *c;
		struct ucred cred = {0};
		socklen_t len = sizeof(cred);

		pthread_mutex_lock(&ctl->lock);
		/* It stays a client: "update --finish" goes on on it, and the
		 * requests it sent after the update wait in it. */
		getsockopt(requester, SOL_SOCKET, SO_PEERCRED, &cred, &len);
		c = luo_ctl_conn_add(ctl, requester, (int)cred.pid);
		if (c) {
			luo_ctl_report_update(&c->out);
			luo_ctl_conn_flush(c);
			luo_ctl_conn_watch(ctl, c);
			luo_ctl_conns_sweep(ctl);
		}
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
