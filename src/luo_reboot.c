// SPDX-License-Identifier: MIT
/*
 * The reboot: execve() of the new image with the arena fd inherited and
 * named in the environment.  If the exec fails, everything is put back and
 * the old image goes on serving.
 *
 * Blackout and the old address space: execve() frees the old image's page
 * tables before the new image runs, tens of milliseconds per GiB of 4 KiB
 * pages.  Unless told otherwise, a helper child created with CLONE_VM
 * shares the old address space just before the exec, so the kernel only
 * drops a reference; the helper holds it until the new image reaches
 * liveupdate_finish(), then exits and the teardown happens off the
 * blackout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"
#include "luo_txn.h"

extern char **environ;

#define HOLDER_STACK (64 << 10)
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

static struct {
	pid_t pid;
	int release_fd; /* our end; the holder exits when it closes */
	int hold_fd;	/* the holder's end, closed in the parent */
	void *stack;
	/* The old arena mapping, which the holder unmaps slice by slice. */
	uint8_t *arena;
	uint64_t arena_len;
	int closed; /* set by the holder once its descriptors are closed */
} holder = {.release_fd = -1, .hold_fd = -1};

/*
 * Tearing down a large mapping in one go stalls the new image's page
 * faults on the same memfd for as long as it takes (tens of ms per GiB
 * seen on a VM).  In 16 MiB slices with a pause between them, each stall
 * is short and the new image's faults get through in between.
 */
#define HOLDER_SLICE (16ULL << 20)
#define HOLDER_PAUSE_NS 200000

/* The fds travel by value: the parent changes @holder right after clone. */
#define HOLDER_ARG(hold, release)                                              \
	((void *)(uintptr_t)(((uint64_t)(release) << 32) | (uint32_t)(hold)))

/* Strict decimal, no sign, no junk; -1 if not. */
static long parse_num(const char *s, const char **end, long max)
{
	long v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		if (v > max)
			return -1;
	}
	*end = s;
	return v;
}

/* A field that is a number or, where @may_be_unset, -1. */
static long parse_field(const char *s, const char **end, bool may_be_unset)
{
	if (may_be_unset && s[0] == '-' && s[1] == '1') {
		*end = s + 2;
		return -1;
	}
	return parse_num(s, end, 1 << 30) < 0 ? -2 : parse_num(s, end, 1 << 30);
}

/*
 * "ARENA" or "ARENA,RELEASE,PID" or "ARENA,RELEASE,PID,CARRIER": the arena
 * memfd; the pipe and pid of the helper holding the old address space
 * (-1 and 0 if none); the socket carrying the preserved files (-1 if
 * none).  Strict: anything else is not a handover.
 */
int luo_parse_handover_env(const char *value, struct luo_handover_env *e)
{
	const char *p = value;

	*e = (struct luo_handover_env){.release_fd = -1, .carrier_fd = -1};
	e->arena_fd = (int)parse_field(p, &p, false);
	if (e->arena_fd < 0)
		return -EBADF;
	if (*p == ',') {
		e->release_fd = (int)parse_field(p + 1, &p, true);
		if (e->release_fd < -1 || *p != ',')
			return -EBADF;
		e->helper_pid = (pid_t)parse_field(p + 1, &p, false);
		if (e->helper_pid < 0 ||
		    (e->release_fd >= 0) != (e->helper_pid > 0))
			return -EBADF;
		if (*p == ',') {
			e->carrier_fd = (int)parse_field(p + 1, &p, true);
			if (e->carrier_fd < -1)
				return -EBADF;
		}
	}
	return *p ? -EBADF : 0;
}

/* Drop an incoming handover unread: close what is verifiably ours. */
void luo_discard_handover(const char *value)
{
	struct luo_handover_env e;
	struct stat st;

	if (luo_parse_handover_env(value, &e))
		return;
	if (!fstat(e.arena_fd, &st) && S_ISREG(st.st_mode) &&
	    fcntl(e.arena_fd, F_GET_SEALS) >= 0)
		close(e.arena_fd);
	luo_carrier_discard_unverified(e.carrier_fd);
	luo_global.teardown_fd = e.release_fd;
	luo_global.teardown_pid = e.helper_pid;
	luo_teardown_release(false);
}

static pthread_t reaper;
static bool reaper_running;

static void *reap_helper(void *arg)
{
	/* Blocks only this thread; the service may have reaped it first. */
	waitpid((pid_t)(intptr_t)arg, NULL, 0);
	return NULL;
}

/*
 * Let go of the previous image's address space: closing our end wakes the
 * holder, which exits and so frees it.  @wait reaps it; otherwise a
 * short-lived thread does when it exits, and the next prepare or
 * luo_exit() joins that thread.
 */
void luo_teardown_release(bool wait)
{
	if (luo_global.teardown_fd >= 0) {
		struct stat st;

		/* Never close an fd that is not the pipe it should be. */
		if (!fstat(luo_global.teardown_fd, &st) && S_ISFIFO(st.st_mode))
			close(luo_global.teardown_fd);
		luo_global.teardown_fd = -1;
	}
	if (reaper_running && wait) {
		pthread_join(reaper, NULL);
		reaper_running = false;
	}
	if (luo_global.teardown_pid > 0 &&
	    waitpid(luo_global.teardown_pid, NULL, wait ? 0 : WNOHANG) != 0)
		luo_global.teardown_pid = 0;
	/* Still tearing down: reap it when it is done, not at the next
	 * prepare, so that it never lingers as a zombie. */
	if (luo_global.teardown_pid > 0 && !reaper_running &&
	    !pthread_create(&reaper, NULL, reap_helper,
			    (void *)(intptr_t)luo_global.teardown_pid)) {
		reaper_running = true;
		luo_global.teardown_pid = 0;
	}
}

/* Runs in the helper, on its own stack, in the shared address space:
 * plain system calls only, nothing that touches the C library's state. */
__attribute__((no_sanitize_address)) static int holder_main(void *arg)
{
	uint64_t fds = (uintptr_t)arg;
	int hold = (int)(uint32_t)fds;
	char c;

	/* Its copy of the descriptor table must not keep the old image's
	 * files open past the exec: keep only the pipe it waits on. */
	if (hold > 0)
		syscall(SYS_close_range, 0, hold - 1, 0);
	syscall(SYS_close_range, hold + 1, ~0U, 0);
	/* Its copy held every file of the old image until now: tell the
	 * parent, which waits for this before the exec. */
	__atomic_store_n(&holder.closed, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &holder.closed, FUTEX_WAKE, 1, NULL, NULL, 0);
	while (syscall(SYS_read, hold, &c, 1) < 0)
		;
	for (uint64_t off = 0;
	     off < __atomic_load_n(&holder.arena_len, __ATOMIC_SEQ_CST);
	     off += HOLDER_SLICE) {
		struct timespec pause = {0, HOLDER_PAUSE_NS};
		uint64_t len = holder.arena_len - off < HOLDER_SLICE
				       ? holder.arena_len - off
				       : HOLDER_SLICE;

		syscall(SYS_munmap, holder.arena + off, len);
		syscall(SYS_nanosleep, &pause, NULL);
	}
	syscall(SYS_exit, 0);
	return 0;
}

static void holder_stop(void)
{
	/* The exec failed: this address space lives on, unmap nothing.  The
	 * holder shares it and reads this only after the close wakes it. */
	__atomic_store_n(&holder.arena_len, 0, __ATOMIC_SEQ_CST);
	if (holder.release_fd >= 0)
		close(holder.release_fd);
	if (holder.hold_fd >= 0)
		close(holder.hold_fd);
	if (holder.pid > 0)
		waitpid(holder.pid, NULL, 0);
	if (holder.stack)
		munmap(holder.stack, HOLDER_STACK);
	holder.pid = 0;
	holder.release_fd = holder.hold_fd = -1;
	holder.stack = NULL;
}

static int holder_start(void)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	holder.hold_fd = fds[0];
	holder.release_fd = fds[1];
	holder.stack = mmap(NULL, HOLDER_STACK, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (holder.stack == MAP_FAILED) {
		holder.stack = NULL;
		holder_stop();
		return -ENOMEM;
	}
	holder.arena = kho.base;
	holder.arena_len = kho.size;
	holder.closed = 0;
	holder.pid = clone(holder_main, (char *)holder.stack + HOLDER_STACK,
			   CLONE_VM | SIGCHLD,
			   HOLDER_ARG(holder.hold_fd, holder.release_fd));
	if (holder.pid < 0) {
		int err = -errno;

		holder.pid = 0;
		holder_stop();
		return err;
	}
	close(holder.hold_fd);
	holder.hold_fd = -1;
	/*
	 * Until the holder has closed its copy of the descriptor table, it
	 * keeps every file of the old image open: a listener the new image
	 * closes would stay bound.  Wait for that (bounded: it is the
	 * holder's first step).
	 */
	for (int i = 0;
	     i < 100 && !__atomic_load_n(&holder.closed, __ATOMIC_SEQ_CST);
	     i++) {
		struct timespec ts = {0, 1000000};

		syscall(SYS_futex, &holder.closed, FUTEX_WAIT, 0, &ts, NULL, 0);
	}
	/* Our end must reach the new image. */
	fcntl(holder.release_fd, F_SETFD, 0);
	return 0;
}

/* The errors execve() would give for a missing or non-executable file. */
static int exec_precheck(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS))
		return -errno;
	return 0;
}

static bool is_var(const char *entry, const char *name)
{
	size_t len = strlen(name);

	return !strncmp(entry, name, len) && entry[len] == '=';
}

/* A copy of @envp with our variable set, and @extra (the way back for a
 * refusal) if not NULL; NULL on allocation failure. */
static char **handover_env(char *const envp[], const char *value, char *extra)
{
	size_t n = 0, k = 0;
	char **env;

	while (envp[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!is_var(envp[i], LUO_HANDOVER_ENV) &&
		    !is_var(envp[i], LUO_ROLLBACK_ENV))
			env[k++] = envp[i];
	if (extra)
		env[k++] = extra;
	if (asprintf(&env[k], "%s=%s", LUO_HANDOVER_ENV, value) < 0) {
		free(env);
		return NULL;
	}
	return env;
}

static void free_env(char **env)
{
	size_t n = 0;

	if (!env)
		return;
	while (env[n + 1])
		n++;
	free(env[n]); /* ours is last */
	free(env);
}

int liveupdate_reboot(const char *path, char *const argv[], char *const envp[])
{
	bool async = !(luo_global.init_flags & LUO_INIT_SYNC_TEARDOWN);
	char value[64], *back = NULL;
	char **env = NULL;
	int err, fd, carrier;

	if (!path || !argv || !argv[0]) {
		pr_err("liveupdate_reboot: needs a path and argv with at least argv[0]");
		return -EINVAL;
	}
	luo_state_write_lock();
	if (luo_state_is(LIVEUPDATE_STATE_PREPARED)) {
		err = luo_freeze_locked();
		if (err)
			goto out;
	} else if (!luo_state_is(LIVEUPDATE_STATE_FROZEN)) {
		pr_err("liveupdate_reboot: the service is in state %s; run liveupdate_prepare() first",
		       liveupdate_state_name(liveupdate_get_state()));
		err = -EINVAL;
		goto out;
	}
	luo_abi_out_set_time("exec-ns", luo_now_ns());
	err = kho_finalize();
	if (err)
		goto cancel;
	fd = kho_fd();
	if (async && (err = holder_start()))
		pr_warn("cannot keep the old address space aside (%s); the exec will tear it down inline",
			strerror(-err));
	carrier = luo_sessions_carrier_fd();
	if (carrier >= 0)
		snprintf(value, sizeof(value), "%d,%d,%d,%d", fd,
			 holder.pid > 0 ? holder.release_fd : -1,
			 holder.pid > 0 ? (int)holder.pid : 0, carrier);
	else if (holder.pid > 0)
		snprintf(value, sizeof(value), "%d,%d,%d", fd,
			 holder.release_fd, (int)holder.pid);
	else
		snprintf(value, sizeof(value), "%d", fd);
	back = luo_exec_rollback_var(value);
	env = handover_env(envp ? envp : environ, value, back);
	if (!env) {
		err = -ENOMEM;
		goto cancel;
	}
	/*
	 * The devices' reboot step shuts down those not preserved, which
	 * cannot be undone: fail the usual ways (no such file, not an
	 * executable file) before it runs.
	 */
	err = exec_precheck(path);
	if (err)
		goto exec_failed;
	err = luo_participants_reboot();
	if (err)
		goto cancel;
	fcntl(fd, F_SETFD, 0);
	luo_exec_rollback_inherit(true);
	fflush(NULL);
	execve(path, argv, env);
	err = -errno;
exec_failed:
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	pr_err("exec of '%s' failed: %s; live update cancelled, the old image keeps running",
	       path, strerror(-err));
cancel:
	luo_exec_rollback_inherit(false);
	free(back);
	free_env(env);
	holder_stop();
	luo_cancel_locked();
out:
	luo_state_write_unlock();
	return err;
}
