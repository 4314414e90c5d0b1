// SPDX-License-Identifier: MIT
/*
 * The new image's side of a spawn-mode update: luo_init() finds the
 * channel in LUO_SPAWN_FD, says hello, takes the preserved files ahead
 * (before the freeze, so the blackout does not pay for them), waits for
 * the arena, and after the usual checks answers adopted or refused.  A
 * library thread then answers the old image's liveness pings, runs the
 * service's health probe during the trial, and runs the finish when the
 * old image grants the commit.  The messages: luo_txn.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"
#include "luo_carrier_ahead.h"
#include "luo_mem.h"
#include "luo_txn.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int ch; /* -1: no transaction open */
	/* The trial. */
	pid_t old_pid;
	uint64_t trial_ms;
	uint64_t adopted_ns;
	int health; /* 0 ok, 1 none yet, -errno */
	bool finish_requested;
	bool committed;
	int finish_err;
	int (*finish)(void); /* UPDATED -> NORMAL, from lifecycle.c */
	pthread_t thread;
} txn = {.lock = PTHREAD_MUTEX_INITIALIZER,
	 .done_cond = PTHREAD_COND_INITIALIZER,
	 .ch = -1,
	 .health = 1};

/* Set on the thread running the health probe. */
static __thread bool in_probe;

int luo_txn_send(int ch, uint32_t type, int err, uint64_t a, uint64_t b,
		 const char *text, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct luo_txn_msg m = {.magic = LUO_TXN_MAGIC,
				.type = type,
				.err = err,
				.a = a,
				.b = b};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(ctl.buf, 0, sizeof(ctl.buf));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(ch, &msg, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int luo_txn_recv(int ch, struct luo_txn_msg *m, int *fd, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	struct pollfd p = {.fd = ch, .events = POLLIN};
	struct cmsghdr *c;
	ssize_t r;

	if (fd)
		*fd = -1;
	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (!r)
		return -ETIMEDOUT;
	r = recvmsg(ch, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	if (r == 0)
		return -EPIPE;
	c = CMSG_FIRSTHDR(&msg);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		int got;

		memcpy(&got, CMSG_DATA(c), sizeof(int));
		if (fd)
			*fd = got;
		else
			close(got);
	}
	if (r != (ssize_t)sizeof(*m) || m->magic != LUO_TXN_MAGIC ||
	    (msg.msg_flags & MSG_CTRUNC)) {
		if (fd && *fd >= 0)
			close(*fd);
		return -EBADMSG;
	}
	m->text[sizeof(m->text) - 1] = '\0';
	return 0;
}

/* The channel the variable names: a Unix seqpacket socket, or nothing. */
static int channel_fd(const char *value)
{
	int type = 0;
	socklen_t len = sizeof(type);
	char *end;
	long fd = strtol(value, &end, 10);

	if (!*value || *end || fd < 0 || fd > (1 << 30) ||
	    getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) ||
	    type != SOCK_SEQPACKET)
		return -EBADF;
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return (int)fd;
}

/* The preserved files, received while the old image still serves. */
static int files_ahead(int ch, int rx, uint64_t ino, uint64_t count)
{
	char why[256];
	int err = luo_carrier_ahead_receive(rx, ino, count, why, sizeof(why));

	if (err) {
		pr_err("spawned image: the preserved files did not arrive ahead: %s",
		       why);
		return err;
	}
	/* The tables the parse inside the blackout fills: populated now. */
	luo_sessions_in_reserve(count);
	return luo_txn_send(ch, LUO_TXN_FILES_OK, 0, count, 0, NULL, -1);
}

int luo_txn_child_adopt(const char *value, int (*finish)(void), char *env,
			size_t envlen)
{
	struct luo_txn_msg m;
	int ch = channel_fd(value), fd, err;

	txn.finish = finish;
	if (ch < 0) {
		pr_err("%s=%s does not name the transaction channel (a Unix seqpacket socket); starting fresh",
		       LUO_SPAWN_ENV, value);
		return ch;
	}
	err = luo_txn_send(ch, LUO_TXN_HELLO, 0, (uint64_t)getpid(), 0, NULL,
			   -1);
	while (!err) {
		/* The old image's deadline bounds this wait. */
		err = luo_txn_recv(ch, &m, &fd, -1);
		if (err == -EAGAIN) {
			err = 0;
			continue;
		}
		if (err)
			break;
		if (m.type == LUO_TXN_FILES) {
			err = files_ahead(ch, fd, m.a, m.b);
		} else if (m.type == LUO_TXN_ADOPT && fd >= 0) {
			txn.trial_ms = m.a;
			txn.old_pid = (pid_t)m.b;
			txn.ch = ch;
			snprintf(env, envlen, "%d,-1,0,-1", fd);
			return 0;
		} else {
			if (fd >= 0)
				close(fd);
			err = -EBADMSG;
		}
	}
	pr_err("spawned image: the old image stopped the update before the handover (%s); starting fresh",
	       strerror(-err));
	luo_carrier_ahead_drop();
	luo_bulk_reserve_release();
	close(ch);
	return err;
}

static uint64_t probe_interval_ms(void)
{
	uint64_t ms = txn.trial_ms / 10;

	return ms < 50 ? 50 : ms > 1000 ? 1000 : ms;
}

static bool open_locked(void);

/*
 * During the trial every file this image preserves or unpreserves goes to
 * the old image at once (not at the end: SIGKILL leaves no end), so that
 * a rollback gives the old image the connections accepted here.  One
 * message per change, none per request.
 */
static void trial_preserved(const char *name, uint64_t token, int fd)
{
	pthread_mutex_lock(&txn.lock);
	if (open_locked() &&
	    luo_txn_send(txn.ch, LUO_TXN_KEPT, 0, token, 0, name, fd))
		pr_warn("spawned image: cannot tell the old image of session '%s' token %#llx; a rollback would lose it",
			name, (unsigned long long)token);
	pthread_mutex_unlock(&txn.lock);
}

static void trial_unpreserved(const char *name, uint64_t token)
{
	pthread_mutex_lock(&txn.lock);
	if (open_locked())
		luo_txn_send(txn.ch, LUO_TXN_DROPPED, 0, token, 0, name, -1);
	pthread_mutex_unlock(&txn.lock);
}

static const struct luo_sessions_watch trial_watch = {
	.preserved = trial_preserved,
	.unpreserved = trial_unpreserved,
};

/* The commit came (or the old image is gone): the trial is over. */
static void commit(bool old_gone)
{
	bool finish;

	luo_sessions_set_watch(NULL);
	luo_kho_trial_commit();
	pthread_mutex_lock(&txn.lock);
	txn.committed = true;
	finish = txn.finish_requested;
	pthread_mutex_unlock(&txn.lock);
	if (old_gone)
		pr_warn("spawned image: the old image went away during the trial; this image goes on alone");
	else
		pr_info("live update committed: the old image (pid %d) ends",
			(int)txn.old_pid);
	txn.finish_err = finish ? txn.finish() : 0;
	/* The old image reports the commit once this image is NORMAL. */
	if (!old_gone)
		luo_txn_send(txn.ch, LUO_TXN_FINISHED, txn.finish_err, 0, 0,
			     NULL, -1);
	pthread_mutex_lock(&txn.lock);
	close(txn.ch);
	txn.ch = -1;
	pthread_cond_broadcast(&txn.done_cond);
	pthread_mutex_unlock(&txn.lock);
}

static void *txn_thread(void *arg)
{
	bool probe = luo_txn_hooks_have_health() && txn.trial_ms;
	uint64_t next_probe = luo_now_ns();

	(void)arg;
	/* Unmapping what the tables did not use waits until after the
	 * blackout, on this thread. */
	luo_bulk_reserve_release();
	for (;;) {
		struct luo_txn_msg m;
		int timeout = -1, err;

		/* Probed once the image says it is ready (finish). */
		if (probe && txn.finish_requested) {
			uint64_t now = luo_now_ns();

			if (now >= next_probe) {
				int h;

				in_probe = true;
				h = luo_txn_hooks_health();
				in_probe = false;
				txn.health = h > 0 ? 0 : h;
				luo_txn_send(txn.ch, LUO_TXN_HEALTH, txn.health,
					     0, 0, h < 0 ? strerror(-h) : NULL,
					     -1);
				next_probe =
					now + probe_interval_ms() * 1000000;
			}
			timeout = (int)((next_probe - now) / 1000000) + 1;
		}
		err = luo_txn_recv(txn.ch, &m, NULL, timeout);
		if (err == -ETIMEDOUT || err == -EAGAIN || err == -EBADMSG)
			continue;
		if (err) {
			commit(true);
			return NULL;
		}
		if (m.type == LUO_TXN_PING) {
			luo_txn_send(txn.ch, LUO_TXN_PONG, 0, m.a, 0, NULL, -1);
		} else if (m.type == LUO_TXN_COMMIT) {
			commit(false);
			return NULL;
		}
	}
}

void luo_txn_child_result(int err, const char *why)
{
	if (txn.ch < 0)
		return;
	if (err) {
		char text[160];

		snprintf(text, sizeof(text), "%s%s%s", strerror(-err),
			 why ? ": " : "", why ? why : "");
		luo_txn_send(txn.ch, LUO_TXN_REFUSED, err, 0, 0, text, -1);
		luo_carrier_ahead_drop();
		luo_bulk_reserve_release();
		close(txn.ch);
		txn.ch = -1;
		return;
	}
	luo_carrier_ahead_drop(); /* anything the sessions did not take */
	luo_kho_trial_begin();
	txn.adopted_ns = luo_now_ns();
	luo_txn_send(txn.ch, LUO_TXN_ADOPTED, 0,
		     luo_txn_hooks_have_health() ? 1 : 0, 0, NULL, -1);
	luo_sessions_set_watch(&trial_watch);
	if (pthread_create(&txn.thread, NULL, txn_thread, NULL)) {
		pr_err("spawned image: cannot start the transaction thread; rolling back");
		luo_bulk_reserve_release();
		luo_txn_send(txn.ch, LUO_TXN_ROLLBACK, -EAGAIN, 0, 0,
			     "the new image could not start its thread", -1);
		return;
	}
	pthread_detach(txn.thread);
}

static bool open_locked(void)
{
	return txn.ch >= 0 && !txn.committed;
}

int luo_txn_defer_finish(void)
{
	int err;

	if (in_probe)
		return -EDEADLK;
	pthread_mutex_lock(&txn.lock);
	if (!open_locked() ||
	    liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED) {
		pthread_mutex_unlock(&txn.lock);
		return 1;
	}
	txn.finish_requested = true;
	err = luo_txn_send(txn.ch, LUO_TXN_FINISH, 0, 0, 0, NULL, -1);
	if (err || txn.trial_ms) {
		pthread_mutex_unlock(&txn.lock);
		/* With a trial, the thread finishes at the commit. */
		return err;
	}
	/* No trial: the old image answers at once; finish before return. */
	while (!txn.committed)
		pthread_cond_wait(&txn.done_cond, &txn.lock);
	while (txn.ch >= 0)
		pthread_cond_wait(&txn.done_cond, &txn.lock);
	err = txn.finish_err;
	pthread_mutex_unlock(&txn.lock);
	return err;
}

/* Take the lock with a transaction open in this image: 0, else -EDEADLK
 * (from the health probe) or -ENOENT (none), the lock not held. */
static int lock_open(void)
{
	if (in_probe)
		return -EDEADLK;
	pthread_mutex_lock(&txn.lock);
	if (!open_locked()) {
		pthread_mutex_unlock(&txn.lock);
		return -ENOENT;
	}
	return 0;
}

int liveupdate_txn_commit(void)
{
	int err = lock_open();

	if (err)
		return err;
	txn.finish_requested = true;
	err = luo_txn_send(txn.ch, LUO_TXN_FINISH, 0, 1, 0, NULL, -1);
	pthread_mutex_unlock(&txn.lock);
	return err;
}

int liveupdate_txn_rollback(const char *reason)
{
	return luo_txn_rollback_as(LIVEUPDATE_TXN_REQUESTED, reason);
}

int luo_txn_rollback_as(enum liveupdate_txn_reason why, const char *reason)
{
	int err = lock_open();

	if (err)
		return err;
	pr_warn("spawned image: asking the old image to roll back (%s)",
		reason ? reason : "no reason given");
	err = luo_txn_send(txn.ch, LUO_TXN_ROLLBACK, 0, (uint64_t)why, 0,
			   reason ? reason : "asked by the new image", -1);
	pthread_mutex_unlock(&txn.lock);
	return err;
}

int liveupdate_txn_get_status(struct liveupdate_txn_status *st)
{
	if (!st)
		return -EINVAL;
	pthread_mutex_lock(&txn.lock);
	if (!open_locked()) {
		pthread_mutex_unlock(&txn.lock);
		return -ENOENT;
	}
	*st = (struct liveupdate_txn_status){
		.old_pid = txn.old_pid,
		.new_pid = getpid(),
		.trial_ms = txn.trial_ms,
		.elapsed_ms = (luo_now_ns() - txn.adopted_ns) / 1000000,
		.health = txn.health,
		.finish_requested = txn.finish_requested,
	};
	pthread_mutex_unlock(&txn.lock);
	return 0;
}
