// SPDX-License-Identifier: MIT
/*
 * The live update lifecycle, in the order a reader meets it: the
 * participants, luo_init() and the adoption of an incoming handover,
 * prepare, freeze, the reboot (execve() of the new image), cancel, finish
 * and luo_exit().  NORMAL -> PREPARED -> FROZEN -> exec -> UPDATED ->
 * NORMAL, with cancel back to NORMAL.  Transitions hold the state lock
 * (core/luo_state.c) for writing; callers that need the state to stay put
 * hold it for reading.
 *
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"
#include "luo_txn.h"

extern char **environ;

/*
 * Prepared and frozen in this order, cancelled in reverse.  Devices come
 * last: their reboot step shuts down the devices that are not preserved,
 * which cannot be undone, so it must be the very last thing before
 * execve(); and they are cancelled first, while the subsystems they may
 * depend on are still prepared (see include/luo/device.h).
 */
static const struct luo_participant *const participants[] = {
	&luo_subsystems_participant,
	&luo_sessions_participant,
	&luo_devices_participant,
};

#define NPARTICIPANTS (sizeof(participants) / sizeof(participants[0]))

static int wrong_state(const char *op, const char *want)
{
	pr_err("%s: the service is in state %s, %s", op,
	       liveupdate_state_name(liveupdate_get_state()), want);
	return -EINVAL;
}

/* The variable's value made safe for a one-line message. */
static const char *printable(const char *value, char *buf, size_t len)
{
	size_t i;

	for (i = 0; value[i] && i + 4 < len; i++)
		buf[i] = (value[i] > ' ' && value[i] < 0x7f) ? value[i] : '?';
	strcpy(buf + i, value[i] ? "..." : "");
	return buf;
}

/* The handover environment variable. */

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

/* The incoming data the participants parsed, dropped in reverse order. */
static void incoming_release(void)
{
	for (size_t i = NPARTICIPANTS; i--;)
		if (participants[i]->release_incoming)
			participants[i]->release_incoming();
}

/*
 * The incoming LUO FDT: the codec checks its header and exec node, then
 * each participant parses and keeps its own part.  Nothing is kept unless
 * every part checks out.
 */
static int incoming_parse(char *why, size_t whylen)
{
	const void *fdt;
	struct luo_ser *ser;
	uint64_t t[3];
	int err;

	err = luo_abi_in_parse(&fdt, &ser, t, why, whylen);
	if (err)
		return err;
	err = luo_subsystems_in_parse(fdt, why, whylen);
	err = err ?: luo_sessions_in_parse(fdt, ser->sessions_pa, why, whylen);
	err = err ?: luo_flbs_in_parse(ser->flbs_pa, why, whylen);
	err = err ?: luo_devices_in_parse(fdt, why, whylen);
	if (err) {
		luo_sessions_in_refuse();
		luo_flbs_forget();
		incoming_release();
		return err;
	}
	luo_global.liveupdate_num = ser->liveupdate_num;
	luo_global.timing.prepare_ns = t[0];
	luo_global.timing.freeze_ns = t[1];
	luo_global.timing.exec_ns = t[2];
	return 0;
}

/* Room in the outgoing LUO FDT for what the participants will write. */
static size_t outgoing_fdt_extra(void)
{
	size_t nsubsys, names = luo_subsystems_names_len(&nsubsys);

	return names + nsubsys * 32 + luo_devices_fdt_size();
}

/* Adopt the handover named by the environment, or refuse it whole. */
static int adopt_handover(const char *value, uint64_t reserve)
{
	struct luo_handover_env env;
	int arena_fd, err;
	char why[256] = "", shown[40];
	uint64_t t[4];

	err = luo_parse_handover_env(value, &env);
	luo_global.teardown_fd = err ? -1 : env.release_fd;
	luo_global.teardown_pid = err ? 0 : env.helper_pid;
	luo_global.carrier_fd = err ? -1 : env.carrier_fd;
	arena_fd = env.arena_fd;
	if (err) {
		snprintf(why, sizeof(why), "not a descriptor number");
		goto refuse;
	}
	t[0] = luo_now_ns();
	err = luo_kho_arena_adopt(arena_fd, reserve, why, sizeof(why));
	if (err)
		goto refuse;
	t[1] = luo_now_ns();
	err = incoming_parse(why, sizeof(why));
	if (err) {
		luo_kho_forget_incoming();
		luo_kho_arena_destroy();
		goto refuse;
	}
	t[2] = luo_now_ns();
	luo_sessions_in_adopt();
	fcntl(arena_fd, F_SETFD, FD_CLOEXEC);
	if (luo_global.teardown_fd >= 0)
		fcntl(luo_global.teardown_fd, F_SETFD, FD_CLOEXEC);
	t[3] = luo_now_ns();
	pr_debug(
		"handover adopted: arena checked in %.1f us, LUO state parsed in %.1f us, files received in %.1f us",
		(t[1] - t[0]) / 1e3, (t[2] - t[1]) / 1e3, (t[3] - t[2]) / 1e3);
	return 0;
refuse:
	pr_err("refusing the incoming live update (%s=%s): %s; the handover was discarded: call luo_init() again to start fresh, or exit",
	       LUO_HANDOVER_ENV, printable(value, shown, sizeof(shown)), why);
	luo_teardown_release(false);
	/* Files in flight are released with the refused handover. */
	luo_carrier_discard_unverified(luo_global.carrier_fd);
	luo_global.carrier_fd = -1;
	return err;
}

int luo_init(const struct luo_init_opts *opts)
{
	struct luo_init_opts defaults = {0};
	unsigned int arena_flags = 0;
	char *value = NULL, *spawn = NULL, *rollback = NULL;
	uint64_t reserve;
	int err = 0;

	if (!opts)
		opts = &defaults;
	reserve = opts->arena_max ? opts->arena_max : KHO_DEFAULT_RESERVE;
	luo_state_write_lock();
	if (!luo_state_is(LIVEUPDATE_STATE_UNDEFINED)) {
		luo_state_write_unlock();
		pr_err("luo_init: already initialised");
		return -EALREADY;
	}
	luo_exec_self_open();
	/* Exec mode: how to go back to the old binary on a refusal. */
	if (getenv(LUO_ROLLBACK_ENV)) {
		rollback = strdup(getenv(LUO_ROLLBACK_ENV));
		unsetenv(LUO_ROLLBACK_ENV);
	}
	/* A spawned new image: the handover comes on the channel. */
	if (getenv(LUO_SPAWN_ENV)) {
		spawn = strdup(getenv(LUO_SPAWN_ENV));
		unsetenv(LUO_SPAWN_ENV);
	}
	if (getenv(LUO_HANDOVER_ENV)) {
		value = strdup(getenv(LUO_HANDOVER_ENV));
		unsetenv(LUO_HANDOVER_ENV);
		if (!value) {
			err = -ENOMEM;
			goto out;
		}
	}
	luo_global.init_flags = opts->flags;
	luo_global.session_max_files = opts->session_max_files
					       ? opts->session_max_files
					       : LUO_SESSION_MAX_FILES_DEFAULT;
	err = luo_fd_handlers_register();
	if (err)
		goto out;
	luo_global.teardown_fd = -1;
	luo_global.teardown_pid = 0;
	if (spawn) {
		char env[64];

		free(value);
		value = luo_txn_child_adopt(spawn, env, sizeof(env))
				? NULL
				: strdup(env);
	}
	if (value && !(opts->flags & LUO_INIT_IGNORE_HANDOVER)) {
		if (rollback)
			luo_exec_rollback_save(rollback);
		err = adopt_handover(value, reserve);
		if (err && rollback)
			luo_exec_rollback_run(err); /* returns if it cannot */
		if (spawn)
			luo_txn_child_result(err, NULL);
		if (!err) {
			luo_global.timing.adopted_ns = luo_now_ns();
			luo_set_state(LIVEUPDATE_STATE_UPDATED);
			pr_info("live update #%llu adopted, %.3f ms after the freeze began",
				(unsigned long long)luo_global.liveupdate_num,
				(luo_global.timing.adopted_ns -
				 luo_global.timing.freeze_ns) /
					1e6);
		}
		goto out;
	}
	if (value) {
		char shown[40];

		pr_warn("ignoring the incoming handover (%s=%s) as asked",
			LUO_HANDOVER_ENV,
			printable(value, shown, sizeof(shown)));
		luo_discard_handover(value);
		if (spawn)
			luo_txn_child_result(-ECANCELED,
					     "the new image ignores handovers");
	}
	if (opts->flags & LUO_INIT_HUGETLB)
		arena_flags |= KHO_ARENA_HUGETLB;
	if (opts->flags & LUO_INIT_THP)
		arena_flags |= KHO_ARENA_THP;
	err = luo_kho_arena_create(arena_flags, reserve);
	if (!err) {
		luo_global.liveupdate_num = 0;
		luo_set_state(LIVEUPDATE_STATE_NORMAL);
	}
out:
	if (err)
		luo_handlers_forget();
	luo_exec_rollback_forget();
	if (err)
		luo_exec_self_close();
	luo_state_write_unlock();
	free(value);
	free(spawn);
	free(rollback);
	return err;
}

int liveupdate_prepare(void)
{
	pid_t helper =
		__atomic_load_n(&luo_global.teardown_pid, __ATOMIC_RELAXED);
	uint64_t start;
	size_t i;
	int err;

	/*
	 * The previous update's old address space must be gone first; wait
	 * for it without the state lock, so serving threads never stall
	 * behind that teardown.
	 */
	if (helper > 0 && luo_global.teardown_fd < 0 &&
	    waitpid(helper, NULL, 0) == helper)
		__atomic_compare_exchange_n(&luo_global.teardown_pid, &helper,
					    0, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	start = luo_now_ns();
	luo_state_write_lock();
	if (!luo_state_is(LIVEUPDATE_STATE_NORMAL)) {
		err = wrong_state("liveupdate_prepare",
				  luo_state_is(LIVEUPDATE_STATE_UPDATED)
					  ? "call liveupdate_finish() first"
					  : "it needs normal");
		goto out;
	}
	/* The previous update's old image must be gone before a new one. */
	luo_teardown_release(true);
	err = luo_abi_out_create(outgoing_fdt_extra());
	if (err)
		goto out;
	for (i = 0; i < NPARTICIPANTS; i++) {
		err = participants[i]->prepare();
		if (err)
			break;
	}
	if (err) {
		while (i--)
			participants[i]->cancel();
		luo_abi_out_destroy();
		goto out;
	}
	luo_abi_out_set_time(LUO_EXEC_PREPARE_NS, start);
	luo_set_state(LIVEUPDATE_STATE_PREPARED);
out:
	luo_state_write_unlock();
	return err;
}

int luo_freeze_locked(void)
{
	int err = 0;

	if (!luo_state_is(LIVEUPDATE_STATE_PREPARED))
		return wrong_state("liveupdate_freeze", "it needs prepared");
	luo_abi_out_set_time(LUO_EXEC_FREEZE_NS, luo_now_ns());
	for (size_t i = 0; i < NPARTICIPANTS; i++) {
		err = participants[i]->freeze();
		if (err) {
			luo_cancel_locked();
			pr_info("live update cancelled: a participant refused freeze");
			return err;
		}
	}
	luo_kho_freeze();
	luo_set_state(LIVEUPDATE_STATE_FROZEN);
	return 0;
}

int liveupdate_freeze(void)
{
	int err;

	luo_state_write_lock();
	err = luo_freeze_locked();
	luo_state_write_unlock();
	return err;
}

int luo_participants_reboot(void)
{
	for (size_t i = 0; i < NPARTICIPANTS; i++) {
		int err =
			participants[i]->reboot ? participants[i]->reboot() : 0;

		if (err)
			return err;
	}
	return 0;
}

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
	/* Set by the holder once its copy of the descriptor table is closed;
	 * the exec waits for it (a futex word in the shared address space). */
	uint32_t closed;
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
	holder.arena = luo_kho.base;
	holder.arena_len = luo_kho.size;
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
	 * Until the holder has closed its copy of our descriptors, the old
	 * image's files (a listening socket above all) outlive the exec in
	 * it: a new image that drops one and binds its address again would
	 * find it still in use.  So wait for that, a few microseconds; at
	 * most a second, should the holder have been killed meanwhile.
	 */
	for (int i = 0;
	     i < 1000 && !__atomic_load_n(&holder.closed, __ATOMIC_SEQ_CST);
	     i++) {
		struct timespec ms = {0, 1000000};

		syscall(SYS_futex, &holder.closed, FUTEX_WAIT, 0, &ms, NULL, 0);
	}
	if (!__atomic_load_n(&holder.closed, __ATOMIC_SEQ_CST))
		pr_warn("the old address space holder (pid %d) did not close its copy of the descriptors within 1 s; the old image's files may outlive the update until it does",
			(int)holder.pid);
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
	luo_abi_out_set_time(LUO_EXEC_EXEC_NS, luo_now_ns());
	err = luo_kho_finalize();
	if (err)
		goto cancel;
	fd = luo_kho_fd();
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

void luo_cancel_locked(void)
{
	for (size_t i = NPARTICIPANTS; i--;)
		participants[i]->cancel();
	luo_kho_unfreeze();
	luo_abi_out_destroy();
	luo_set_state(LIVEUPDATE_STATE_NORMAL);
}

int liveupdate_cancel(void)
{
	int err = 0;

	luo_state_write_lock();
	if (luo_spawn_handed_over()) {
		pr_err("liveupdate_cancel: this old image committed its update: the new process serves now; end this one");
		err = -ESRCH;
	} else if (luo_state_is(LIVEUPDATE_STATE_PREPARED) ||
		   luo_state_is(LIVEUPDATE_STATE_FROZEN))
		luo_cancel_locked();
	else
		err = wrong_state("liveupdate_cancel",
				  "only prepared or frozen can be cancelled");
	luo_state_write_unlock();
	return err;
}

int liveupdate_finish(void)
{
	/* A spawned image asks the old one to commit first. */
	int err = luo_txn_defer_finish();

	return err == 1 ? luo_finish_now() : err;
}

int luo_finish_now(void)
{
	int err = 0;

	luo_state_write_lock();
	if (!luo_state_is(LIVEUPDATE_STATE_UPDATED)) {
		err = wrong_state("liveupdate_finish",
				  "only updated can be finished");
		goto out;
	}
	for (size_t i = 0; i < NPARTICIPANTS; i++)
		participants[i]->finish();
	luo_abi_in_warn_unclaimed();
	incoming_release();
	luo_kho_forget_incoming();
	luo_kho_release_unclaimed();
	luo_teardown_release(false);
	luo_set_state(LIVEUPDATE_STATE_NORMAL);
out:
	luo_state_write_unlock();
	return err;
}

int luo_exit(void)
{
	enum liveupdate_state s;

	luo_state_write_lock();
	s = liveupdate_get_state();
	if (s == LIVEUPDATE_STATE_PREPARED || s == LIVEUPDATE_STATE_FROZEN) {
		luo_state_write_unlock();
		pr_err("luo_exit: a live update is in progress (state %s): cancel it first",
		       liveupdate_state_name(s));
		return -EBUSY;
	}
	luo_teardown_release(true);
	luo_exec_self_close();
	for (size_t i = NPARTICIPANTS; i--;)
		participants[i]->forget();
	luo_kho_forget_incoming();
	luo_kho_arena_destroy();
	luo_global.liveupdate_num = 0;
	memset(&luo_global.timing, 0, sizeof(luo_global.timing));
	luo_set_state(LIVEUPDATE_STATE_UNDEFINED);
	luo_state_write_unlock();
	return 0;
}
