// SPDX-License-Identifier: MIT
/*
 * The old image's side of an update as a transaction.
 *
 * Spawn mode: prepare; start the new binary as a child (same cgroup,
 * rlimits, credentials, environment and working directory, its own
 * process group) with its end of the channel in LUO_SPAWN_FD; wait for
 * its hello (its start-up is the pre-launch, outside the blackout); put
 * the files on the carrier and hand it over; freeze and seal; send the
 * arena; wait for adopted; then watch the trial (pidfd, pings, health
 * reports, requests) until the commit or a rollback.  The old image holds
 * the state lock from the freeze to the end, so nothing in it changes the
 * handover meanwhile.  Exec mode is liveupdate_reboot().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"
#include "luo_notify.h"
#include "luo_service_notify.h"
#include "luo_txn.h"

extern char **environ;

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define PING_MS 250
#define LIVENESS_MS 3000 /* no pong for this long: liveness lost */
#define CHANNEL_EOF_WAIT_MS 500

static _Atomic bool running, handed_over;

bool luo_spawn_handed_over(void)
{
	return handed_over;
}

bool luo_spawn_running(void)
{
	return running;
}

const char *liveupdate_txn_reason_name(enum liveupdate_txn_reason r)
{
	static const char *const names[] = {
		"committed", "exited", "killed",    "deadline", "refused",
		"liveness",  "health", "requested", "channel",	"failed"};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r]
							      : "unknown";
}

/* Cannot fail here: liveupdate_update() refused callbacks (-EDEADLK). */
static void state_lock(void)
{
	(void)luo_state_write_lock("liveupdate_update");
}

/* One update in flight. */
struct spawn {
	const struct liveupdate_update_opts *o;
	struct liveupdate_update_report *r;
	int ch;	   /* our end of the channel */
	int pidfd; /* the child */
	pid_t pid;
	bool reaped;
	bool locked; /* we hold the state write lock */
	bool adopt_sent;
	const struct luo_update_steps *steps;
	uint64_t start_ns, deadline_ms;
	uint64_t ahead_ino; /* the carrier sent ahead, 0 if none */
};

static void progress(struct spawn *sp, const char *stage, uint64_t ns)
{
	if (sp->o->progress)
		sp->o->progress(stage, ns, sp->o->arg);
}

/*
 * A copy of @envp without our variables, with the channel named and the
 * service manager's socket handed on (the new process is the one that
 * talks to it after the commit).
 */
static char **spawn_env(char *const *envp, int childfd)
{
	const char *notify = luo_notify_env_entry();
	size_t n = 0, k = 0, nlen = notify ? strcspn(notify, "=") + 1 : 0;
	bool has_notify = false;
	char **env;

	while (envp[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (notify && !strncmp(envp[i], notify, nlen))
			has_notify = true;
		if (strncmp(envp[i], LUO_SPAWN_ENV "=",
			    strlen(LUO_SPAWN_ENV) + 1) &&
		    strncmp(envp[i], LUO_HANDOVER_ENV "=",
			    strlen(LUO_HANDOVER_ENV) + 1))
			env[k++] = envp[i];
	}
	if (notify && !has_notify)
		env[k++] = (char *)notify;
	if (asprintf(&env[k], "%s=%d", LUO_SPAWN_ENV, childfd) < 0) {
		free(env);
		return NULL;
	}
	return env;
}

static int start_child(struct spawn *sp)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int sv[2], err;
	char **env;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	env = spawn_env(sp->o->envp ? sp->o->envp : environ, sv[1]);
	if (!env) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	posix_spawn_file_actions_init(&fa);
	/* dup2 onto itself clears FD_CLOEXEC in the child only. */
	posix_spawn_file_actions_adddup2(&fa, sv[1], sv[1]);
	posix_spawnattr_init(&attr);
	/* Its own process group: what it starts dies with it. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	fflush(NULL);
	err = -posix_spawn(&sp->pid, sp->o->path, &fa, &attr,
			   (char *const *)sp->o->argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	for (size_t i = 0; env[i]; i++)
		if (!strncmp(env[i], LUO_SPAWN_ENV "=",
			     strlen(LUO_SPAWN_ENV) + 1))
			free(env[i]);
	free(env);
	close(sv[1]);
	if (err) {
		close(sv[0]);
		sp->pid = 0;
		return err;
	}
	sp->ch = sv[0];
	sp->r->new_pid = sp->pid;
	sp->pidfd = (int)syscall(SYS_pidfd_open, sp->pid, 0);
	if (sp->pidfd < 0) {
		err = -errno;
		kill(sp->pid, SIGKILL);
		waitpid(sp->pid, NULL, 0);
		sp->reaped = true;
		return err;
	}
	return 0;
}

/* Collect the child's end if it came; true if it ended. */
static bool reap(struct spawn *sp, bool block)
{
	siginfo_t si;

	if (sp->reaped)
		return true;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)sp->pidfd, &si,
		   WEXITED | (block ? 0 : WNOHANG))) {
		/* Reaped by someone else (a SIGCHLD handler of the service):
		 * it ended, its status is unknown. */
		if (errno != ECHILD)
			return false;
		sp->reaped = true;
		return true;
	}
	if (!si.si_pid)
		return false;
	sp->reaped = true;
	if (si.si_code == CLD_EXITED)
		sp->r->exit_status = si.si_status;
	else
		sp->r->term_signal = si.si_status;
	return true;
}

enum ev { EV_MSG, EV_TIMEOUT, EV_ENDED, EV_EOF };

/* Wait for a message until @until_ns (0: forever), or the child's end. */
static enum ev wait_event(struct spawn *sp, struct luo_txn_msg *m, int *fd,
			  uint64_t until_ns)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = sp->ch, .events = POLLIN},
				      {.fd = sp->pidfd, .events = POLLIN}};
		uint64_t now = luo_now_ns();
		int timeout = -1, err;

		if (until_ns) {
			if (now >= until_ns)
				return EV_TIMEOUT;
			timeout = (int)((until_ns - now + 999999) / 1000000);
		}
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			return EV_EOF;
		if (p[0].revents) {
			err = luo_txn_recv(sp->ch, m, fd, 0);
			if (!err)
				return EV_MSG;
			if (err != -EAGAIN && err != -ETIMEDOUT &&
			    err != -EBADMSG) {
				/* Closed: usually because it is ending. */
				struct pollfd q = {.fd = sp->pidfd,
						   .events = POLLIN};

				poll(&q, 1, CHANNEL_EOF_WAIT_MS);
				return reap(sp, false) ? EV_ENDED : EV_EOF;
			}
		}
		if (p[1].revents && reap(sp, false))
			return EV_ENDED;
	}
}

static void report_set(struct spawn *sp, enum liveupdate_txn_reason reason,
		       int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report_set(struct spawn *sp, enum liveupdate_txn_reason reason,
		       int err, const char *fmt, ...)
{
	va_list ap;

	sp->r->reason = reason;
	sp->r->error = err;
	va_start(ap, fmt);
	vsnprintf(sp->r->text, sizeof(sp->r->text), fmt, ap);
	va_end(ap);
}

/* The reason for a child that ended on its own. */
static void report_ended(struct spawn *sp, const char *when)
{
	if (sp->r->term_signal)
		report_set(
			sp, LIVEUPDATE_TXN_KILLED, -ECHILD,
			"the new image (pid %d) was killed by signal %d (%s) %s",
			(int)sp->pid, sp->r->term_signal,
			strsignal(sp->r->term_signal), when);
	else
		report_set(sp, LIVEUPDATE_TXN_EXITED, -ECHILD,
			   "the new image (pid %d) exited with status %d %s",
			   (int)sp->pid, sp->r->exit_status, when);
}

/* A file the new image preserved or unpreserved during its trial. */
static bool trial_file(const struct luo_txn_msg *m, int fd)
{
	if (m->type == LUO_TXN_KEPT) {
		luo_txn_returned_add(m->text, m->a, fd);
		return true;
	}
	if (fd >= 0)
		close(fd);
	if (m->type != LUO_TXN_DROPPED)
		return false;
	luo_txn_returned_drop(m->text, m->a);
	return true;
}

/* The new image is gone: what it sent before it died is still queued. */
static void drain_trial_files(struct spawn *sp)
{
	for (size_t i = 0; i < (1u << 20); i++) {
		struct luo_txn_msg m;
		int fd, err = luo_txn_recv(sp->ch, &m, &fd, 0);

		if (err == -EAGAIN || err == -EBADMSG)
			continue;
		if (err)
			return;
		trial_file(&m, fd);
	}
}

/*
 * Kill the new process group, take everything back, serve again.  Every
 * participant is cancelled exactly once, in reverse order.
 */
static int rollback(struct spawn *sp)
{
	struct liveupdate_txn_hooks h = luo_txn_hooks_get();
	uint64_t t0 = luo_now_ns();
	size_t returned, untaken;

	if (sp->pid > 0) {
		kill(-sp->pid, SIGKILL);
		kill(sp->pid, SIGKILL);
		if (!reap(sp, true))
			pr_warn("rollback: cannot collect the new image (pid %d): %s",
				(int)sp->pid, strerror(errno));
		sp->r->ran_ns = luo_now_ns() - sp->start_ns;
	}
	if (sp->ch >= 0 && sp->adopt_sent)
		drain_trial_files(sp);
	if (sp->ch >= 0)
		close(sp->ch);
	if (sp->pidfd >= 0)
		close(sp->pidfd);
	sp->ch = sp->pidfd = -1;
	if (!sp->locked)
		state_lock();
	sp->locked = true;
	if (sp->adopt_sent)
		luo_kho_trial_repair();
	if (luo_state_is(LIVEUPDATE_STATE_PREPARED) ||
	    luo_state_is(LIVEUPDATE_STATE_FROZEN))
		sp->steps->cancel_locked();
	sp->r->rollback_ns = luo_now_ns() - t0;
	returned = luo_txn_returned_count();
	if (h.rollback)
		h.rollback(sp->r, h.arg);
	untaken = luo_txn_returned_clear();
	if (untaken)
		pr_warn("rollback: %zu of the %zu files the new image preserved in its trial were not taken by the service (liveupdate_txn_returned_take() in its rollback hook) and are closed",
			untaken, returned);
	pr_err("live update rolled back (%s): %s; the new image ran %.1f ms; the old image (pid %d) serves again, state %s",
	       liveupdate_txn_reason_name(sp->r->reason), sp->r->text,
	       sp->r->ran_ns / 1e6, (int)getpid(),
	       liveupdate_state_name(liveupdate_get_state()));
	return -ECANCELED;
}

/* Wait for one message of @type until @until_ns; anything else fails. */
static int expect(struct spawn *sp, uint32_t type, struct luo_txn_msg *m,
		  int *fd, uint64_t until_ns, const char *what)
{
	switch (wait_event(sp, m, fd, until_ns)) {
	case EV_MSG:
		if (m->type == type)
			return 0;
		if (m->type == LUO_TXN_REFUSED) {
			report_set(
				sp, LIVEUPDATE_TXN_REFUSED, m->err,
				"the new image (pid %d) refused the handover: %s",
				(int)sp->pid, m->text);
			return -ECANCELED;
		}
		if (m->type == LUO_TXN_ROLLBACK) {
			report_set(sp, LIVEUPDATE_TXN_REQUESTED, -ECANCELED,
				   "the new image asked for a rollback: %s",
				   m->text);
			return -ECANCELED;
		}
		if (fd && *fd >= 0)
			close(*fd);
		report_set(sp, LIVEUPDATE_TXN_CHANNEL, -EPROTO,
			   "the new image sent message %u while %s", m->type,
			   what);
		return -ECANCELED;
	case EV_TIMEOUT:
		report_set(
			sp, LIVEUPDATE_TXN_DEADLINE, -ETIMEDOUT,
			"the new image (pid %d) did not %s within %llu ms (hung, or not linked with libluo)",
			(int)sp->pid, what,
			(unsigned long long)sp->deadline_ms);
		return -ECANCELED;
	case EV_ENDED: {
		char when[64];

		snprintf(when, sizeof(when), "before it could %s", what);
		report_ended(sp, when);
		return -ECANCELED;
	}
	default:
		report_set(sp, LIVEUPDATE_TXN_CHANNEL, -EPIPE,
			   "the new image closed the channel while %s", what);
		return -ECANCELED;
	}
}

static uint64_t ms_from_now(uint64_t ms)
{
	return luo_now_ns() + ms * 1000000ULL;
}

/* Pre-launch, then the files ahead; still serving (PREPARED). */

/* Hand the carrier @rx with @count files (@ino) to the new image and wait
 * until it has taken them; -ECANCELED with the report set otherwise. */
static int pass_files(struct spawn *sp, int rx, uint64_t ino, size_t count)
{
	struct luo_txn_msg m;
	int err = luo_txn_send(sp->ch, LUO_TXN_FILES, 0, ino, count, NULL, rx);

	if (err) {
		report_set(sp, LIVEUPDATE_TXN_CHANNEL, err,
			   "cannot pass the files to the new image: %s",
			   strerror(-err));
		return -ECANCELED;
	}
	if (expect(sp, LUO_TXN_FILES_OK, &m, NULL, ms_from_now(sp->deadline_ms),
		   "receive the files"))
		return -ECANCELED;
	return 0;
}

static int prelaunch(struct spawn *sp)
{
	struct luo_txn_msg m;
	uint64_t t0 = luo_now_ns(), ino;
	size_t count;
	int err, rx;

	err = start_child(sp);
	if (err) {
		report_set(sp, LIVEUPDATE_TXN_FAILED, err,
			   "cannot start '%s': %s", sp->o->path,
			   strerror(-err));
		return err;
	}
	pr_info("live update: started the new image '%s' as pid %d",
		sp->o->path, (int)sp->pid);
	if (expect(sp, LUO_TXN_HELLO, &m, NULL, ms_from_now(sp->deadline_ms),
		   "reach luo_init()"))
		return -ECANCELED;
	progress(sp, "spawn", luo_now_ns() - t0);
	t0 = luo_now_ns();
	state_lock();
	err = luo_state_is(LIVEUPDATE_STATE_PREPARED)
		      ? luo_sessions_send_ahead(&rx, &ino, &count)
		      : -EINVAL;
	luo_state_write_unlock();
	if (err) {
		report_set(sp, LIVEUPDATE_TXN_FAILED, err,
			   "cannot send the preserved files ahead: %s",
			   strerror(-err));
		return -ECANCELED;
	}
	if (!count)
		return 0;
	if (pass_files(sp, rx, ino, count))
		return -ECANCELED;
	sp->ahead_ino = ino;
	progress(sp, "files", luo_now_ns() - t0);
	return 0;
}

/*
 * Files dropped after prepare are sent again at freeze, on a new carrier:
 * pass that one too (inside the blackout, only in that case).
 */
static int files_again(struct spawn *sp)
{
	uint64_t ino;
	size_t count;
	int err, rx;

	err = luo_sessions_send_ahead(&rx, &ino, &count);
	if (err || !count || ino == sp->ahead_ino)
		return err;
	return pass_files(sp, rx, ino, count);
}

/* The blackout: freeze, seal, hand the arena over, wait for adopted. */
static int handover(struct spawn *sp, bool *has_probe)
{
	struct luo_txn_msg m;
	uint64_t t0 = luo_now_ns();
	int err;

	state_lock();
	sp->locked = true;
	err = sp->steps->freeze_locked();
	if (err) {
		report_set(sp, LIVEUPDATE_TXN_FAILED, err, "freeze failed: %s",
			   strerror(-err));
		return -ECANCELED;
	}
	err = files_again(sp);
	if (err) {
		if (err != -ECANCELED)
			report_set(sp, LIVEUPDATE_TXN_FAILED, err,
				   "cannot pass the files again: %s",
				   strerror(-err));
		return -ECANCELED;
	}
	luo_abi_out_set_time(LUO_EXEC_EXEC_NS, luo_now_ns());
	err = luo_kho_finalize();
	if (!err)
		err = luo_txn_send(sp->ch, LUO_TXN_ADOPT, 0, sp->o->trial_ms,
				   (uint64_t)getpid(), NULL, luo_kho_fd());
	if (err) {
		report_set(sp, LIVEUPDATE_TXN_FAILED, err,
			   "cannot hand the arena over: %s", strerror(-err));
		return -ECANCELED;
	}
	sp->adopt_sent = true;
	if (expect(sp, LUO_TXN_ADOPTED, &m, NULL, ms_from_now(sp->deadline_ms),
		   "adopt the handover"))
		return -ECANCELED;
	sp->r->blackout_ns = luo_now_ns() - t0;
	*has_probe = m.a == 1;
	progress(sp, "adopted", sp->r->blackout_ns);
	return 0;
}

/* Until the commit or a failure; 0 means commit. */
static int trial(struct spawn *sp, bool has_probe)
{
	bool finish = false, force = false, healthy = false;
	bool need_probe = has_probe && sp->o->trial_ms;
	uint64_t adopted = luo_now_ns(), last_pong = adopted, seq = 0;
	uint64_t trial_end = adopted + sp->o->trial_ms * 1000000ULL;
	uint64_t next_ping = adopted + PING_MS * 1000000ULL;
	char what[96];

	snprintf(what, sizeof(what), "trial of pid %d in progress (%llu ms)",
		 (int)sp->pid, (unsigned long long)sp->o->trial_ms);
	luo_notify_status(what);
	for (;;) {
		struct luo_txn_msg m;
		uint64_t now = luo_now_ns();
		int fd = -1;

		if (finish &&
		    (force || (now >= trial_end && (!need_probe || healthy))))
			return 0;
		/* Never ready: hung after adopting, or waiting for nothing. */
		if (!finish && now > trial_end + sp->deadline_ms * 1000000ULL) {
			report_set(
				sp, LIVEUPDATE_TXN_DEADLINE, -ETIMEDOUT,
				"the new image (pid %d) did not ask to commit (liveupdate_finish() or 'luoctl commit') within %llu ms after adopting and its trial",
				(int)sp->pid,
				(unsigned long long)sp->deadline_ms);
			return -ECANCELED;
		}
		if (now - last_pong > LIVENESS_MS * 1000000ULL) {
			report_set(
				sp, LIVEUPDATE_TXN_LIVENESS, -ETIMEDOUT,
				"the new image (pid %d) stopped answering the liveness check for %d ms",
				(int)sp->pid, LIVENESS_MS);
			return -ECANCELED;
		}
		if (now >= next_ping) {
			luo_txn_send(sp->ch, LUO_TXN_PING, 0, ++seq, 0, NULL,
				     -1);
			next_ping = now + PING_MS * 1000000ULL;
		}
		switch (wait_event(sp, &m, &fd,
				   finish && !force && trial_end < next_ping &&
						   trial_end > now
					   ? trial_end
					   : next_ping)) {
		case EV_TIMEOUT:
			continue;
		case EV_ENDED:
			report_ended(sp, "during the trial");
			return -ECANCELED;
		case EV_EOF:
			report_set(
				sp, LIVEUPDATE_TXN_CHANNEL, -EPIPE,
				"the new image (pid %d) closed the channel during the trial",
				(int)sp->pid);
			return -ECANCELED;
		case EV_MSG:
			break;
		}
		if (trial_file(&m, fd))
			continue;
		switch (m.type) {
		case LUO_TXN_PONG:
			last_pong = luo_now_ns();
			break;
		case LUO_TXN_HEALTH:
			if (m.err) {
				report_set(
					sp, LIVEUPDATE_TXN_HEALTH, m.err,
					"the new image's health probe failed: %s",
					m.text[0] ? m.text : strerror(-m.err));
				return -ECANCELED;
			}
			healthy = true;
			break;
		case LUO_TXN_FINISH:
			finish = true;
			force = force || m.a == 1;
			break;
		case LUO_TXN_ROLLBACK:
			report_set(sp,
				   m.a == LIVEUPDATE_TXN_HEALTH
					   ? LIVEUPDATE_TXN_HEALTH
					   : LIVEUPDATE_TXN_REQUESTED,
				   -ECANCELED, "rollback asked for: %s",
				   m.text);
			return -ECANCELED;
		default:
			break;
		}
	}
}

/*
 * After the commit: wait until the new image has run its finish, so that
 * the update is reported committed only once the new image is NORMAL and
 * takes the next update or device request.  0, the finish's error, or
 * -EPIPE / -ETIMEDOUT when the new image ended or did not answer.
 */
static int wait_finished(struct spawn *sp)
{
	uint64_t until = luo_now_ns() + sp->deadline_ms * 1000000ULL;

	for (;;) {
		struct luo_txn_msg m;
		int fd = -1;

		switch (wait_event(sp, &m, &fd, until)) {
		case EV_TIMEOUT:
			return -ETIMEDOUT;
		case EV_ENDED:
		case EV_EOF:
			return -EPIPE;
		case EV_MSG:
			break;
		}
		/* A file preserved just before the commit: the new image
		 * keeps its own copy. */
		if (fd >= 0)
			close(fd);
		if (m.type == LUO_TXN_FINISHED)
			return m.err;
	}
}

int luo_spawn_update(const struct liveupdate_update_opts *o,
		     struct liveupdate_update_report *r,
		     const struct luo_update_steps *steps)
{
	struct spawn sp = {
		.o = o, .r = r, .ch = -1, .pidfd = -1, .steps = steps};
	struct liveupdate_txn_hooks h = luo_txn_hooks_get();
	bool has_probe = false, expected = false;
	uint64_t t0;
	int err;

	if (!atomic_compare_exchange_strong(&running, &expected, true)) {
		pr_err("liveupdate_update: a spawn-mode update is already running; wait for its commit or rollback");
		return -EBUSY;
	}
	sp.deadline_ms = o->deadline_ms ? o->deadline_ms
					: LIVEUPDATE_DEADLINE_DEFAULT_MS;
	t0 = luo_now_ns();
	if (liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL) {
		err = steps->prepare();
		if (err) {
			report_set(&sp, LIVEUPDATE_TXN_FAILED, err,
				   "prepare failed: %s", strerror(-err));
			running = false;
			return err;
		}
		progress(&sp, "prepare", luo_now_ns() - t0);
	}
	sp.start_ns = luo_now_ns();
	err = prelaunch(&sp);
	if (err && !sp.pid) {
		/* Nothing started: a plain failed update. */
		state_lock();
		if (luo_state_is(LIVEUPDATE_STATE_PREPARED))
			steps->cancel_locked();
		luo_state_write_unlock();
		pr_err("live update cancelled: %s; the service keeps serving",
		       r->text);
		running = false;
		return err;
	}
	if (!err)
		err = handover(&sp, &has_probe);
	if (!err)
		err = trial(&sp, has_probe);
	if (err) {
		err = rollback(&sp);
		luo_state_write_unlock();
		running = false;
		return err;
	}
	/* Commit: the new image finishes, this one ends. */
	luo_txn_send(sp.ch, LUO_TXN_COMMIT, 0, 0, 0, NULL, -1);
	luo_txn_returned_clear(); /* the new image holds them */
	handed_over = true;
	err = wait_finished(&sp);
	if (err)
		pr_warn("live update committed, but the new image (pid %d) %s: %s; it serves on its own from here",
			(int)sp.pid,
			err == -EPIPE || err == -ETIMEDOUT
				? "did not confirm its finish"
				: "failed its finish",
			strerror(-err));
	r->reason = LIVEUPDATE_TXN_COMMITTED;
	r->ran_ns = luo_now_ns() - sp.start_ns;
	snprintf(r->text, sizeof(r->text),
		 "committed: pid %d serves now, after %.1f ms%s%s", (int)sp.pid,
		 r->ran_ns / 1e6, err ? "; its finish: " : "",
		 err ? strerror(-err) : "");
	pr_info("live update committed: the new image (pid %d) took over; the old image (pid %d) ends",
		(int)sp.pid, (int)getpid());
	progress(&sp, "commit", luo_now_ns() - t0);
	/* Before this process exits: the manager follows the new PID. */
	luo_notify_main_pid(sp.pid);
	if (h.committed)
		h.committed(sp.pid, h.arg);
	close(sp.ch);
	close(sp.pidfd);
	/* FROZEN for good: liveupdate_cancel() refuses from now on. */
	luo_state_write_unlock();
	return 0;
}
