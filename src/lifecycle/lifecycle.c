// SPDX-License-Identifier: MIT
/*
 * The live update lifecycle, in the order a reader meets it: the
 * participants, luo_init() and the adoption of an incoming handover,
 * prepare, freeze, the reboot (execve() of the new image), cancel,
 * liveupdate_update() (exec mode here; spawn mode in luo_spawn.c, which
 * drives the steps this file gives it), finish and luo_exit().  NORMAL ->
 * PREPARED -> FROZEN -> exec -> UPDATED -> NORMAL, with cancel back to
 * NORMAL.  Transitions hold the state lock (core/luo_state.c) for
 * writing; callers that need the state to stay put hold it for reading.
 *
 * The reboot: execve() of the new image with the arena fd inherited and
 * named in the environment.  If the exec fails, everything is put back and
 * the old image goes on serving.
 *
 * Blackout and the old address space: execve() frees the old image's page
 * tables before the new image runs, tens of milliseconds per GiB of 4 KiB
 * pages.  Unless told otherwise, a helper child created with CLONE_VM at
 * prepare shares the old address space, so the exec only drops a
 * reference.  It starts on the old image's descriptor table (CLONE_FILES,
 * so a table of 10,000 files is not copied whole) and at once takes a
 * private one holding only its own pipe end, before prepare returns: no
 * file of the old image outlives the exec because of it.  The new image
 * checks that the helper is its own at liveupdate_finish(), not in the
 * blackout.
 * The helper holds the address space until the new image reaches
 * liveupdate_finish(), then exits and the teardown happens off the
 * blackout.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
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

#include "kho_crash_record.h"
#include "kho_internal.h"
#include "log.h"
#include "luo_crash_adopt.h"
#include "luo_fdstore.h"
#include "luo_inherit.h"
#include "luo_internal.h"
#include "luo_notify.h"
#include "luo_service_notify.h"
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

static void cancel_locked(void);
static int finish_now(void);

/* The variable's value made safe for a one-line message. */
static const char *printable(const char *value, char *buf, size_t len)
{
	size_t i;

	for (i = 0; value[i] && i + 4 < len; i++)
		buf[i] = (value[i] > ' ' && value[i] < 0x7f) ? value[i] : '?';
	strcpy(buf + i, value[i] ? "..." : "");
	return buf;
}

/* Whether @pid is a child of this process: wait's answer, no /proc. */
static bool is_child(pid_t pid)
{
	siginfo_t si = {0};

	return !waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
}

/*
 * Whether process @pid holds the pipe with inode @ino and nothing else,
 * as the helper does once it closed its copy of the old image's table:
 * 1 yes, 0 no, 2 not yet (it holds more), -1 unreadable.
 */
static int holds_only_pipe(pid_t pid, uint64_t ino)
{
	char dir[64], target[64], want[40];
	char ents[1024] __attribute__((aligned(8)));
	int found = 0, others = 0, dfd;
	ssize_t n;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "pipe:[%llu]", (unsigned long long)ino);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1; /* not readable (a non-dumpable service, no /proc) */
	/* The helper holds one or two: one getdents, one readlinkat each. */
	while ((n = getdents64(dfd, ents, sizeof(ents))) > 0) {
		for (long off = 0; off < n;) {
			const struct dirent64 *d = (const void *)(ents + off);
			ssize_t len;

			off += d->d_reclen;
			if (d->d_name[0] == '.')
				continue;
			len = readlinkat(dfd, d->d_name, target,
					 sizeof(target) - 1);
			target[len > 0 ? len : 0] = 0;
			if (!strcmp(target, want))
				found++;
			else
				others++;
		}
	}
	close(dfd);
	if (n < 0)
		return -1;
	if (!found)
		return 0;
	return others || found > 1 ? 2 : 1;
}

/*
 * The helper closes its copy of the table first thing, long before the
 * new image gets here; only a starved one needs the wait (at most 2 s,
 * and only when something is named that still holds more).
 */
static int helper_holds_pipe(pid_t pid, uint64_t ino)
{
	int r = 2;

	for (int i = 0; i < 2000 && r == 2; i++) {
		struct timespec ms = {0, 1000000};

		r = holds_only_pipe(pid, ino);
		if (r == 2)
			nanosleep(&ms, NULL);
	}
	return r == 2 ? 0 : r;
}

/*
 * The helper the environment names, until luo_teardown_release() checks
 * that it is ours: which pipe the descriptor was at adoption, and its
 * descriptor flags then, put back if it turns out not to be.
 */
static struct {
	dev_t dev;
	ino_t ino;
	int fd_flags;
} teardown_named;

static void warn_not_ours(int fd, pid_t pid)
{
	pr_warn("the handover names descriptor %d and process %d as its teardown helper, but they are not this library's: left alone",
		fd, (int)pid);
}

/*
 * Take the teardown helper named by the environment if it may be ours:
 * @fd the write end of a pipe, @pid a child of this process.  Whether
 * that child holds that very pipe and no other descriptor (a look at its
 * table in /proc, the larger the old image's table the longer) is left to
 * luo_teardown_release(), out of the blackout: nothing is closed or
 * waited for before then.  The descriptor is made close-on-exec at once,
 * so that no child the new image starts keeps the old address space.
 * Anything else (stdin, somebody else's pipe or child) is left alone:
 * closing it or waiting for it would act on what the service owns.
 */
void luo_teardown_adopt(int fd, pid_t pid)
{
	struct stat st;
	int fl, fd_flags;

	luo_global.teardown_fd = -1;
	luo_global.teardown_pid = 0;
	if (fd < 0 && pid <= 0)
		return;
	if (fd >= 0 && pid > 0 && !fstat(fd, &st) && S_ISFIFO(st.st_mode) &&
	    (fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_ACCMODE) == O_WRONLY &&
	    (fd_flags = fcntl(fd, F_GETFD)) >= 0 && is_child(pid)) {
		teardown_named.dev = st.st_dev;
		teardown_named.ino = st.st_ino;
		teardown_named.fd_flags = fd_flags;
		fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC);
		luo_global.teardown_fd = fd;
		luo_global.teardown_pid = pid;
		return;
	}
	warn_not_ours(fd, pid);
}

/*
 * Keep the named helper only if its descriptor is still the pipe it was
 * at adoption and the helper holds that pipe and no more: true if so.
 */
static bool teardown_verify(void)
{
	int fd = luo_global.teardown_fd;
	pid_t pid = luo_global.teardown_pid;
	struct stat st;
	bool same;
	int held;

	same = !fstat(fd, &st) && S_ISFIFO(st.st_mode) &&
	       st.st_dev == teardown_named.dev &&
	       st.st_ino == teardown_named.ino;
	if (same) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		held = helper_holds_pipe(pid, (uint64_t)st.st_ino);
		/* Unreadable: a reader on the other end must do. */
		if (held > 0 || (held < 0 && poll(&p, 1, 0) >= 0 &&
				 !(p.revents & (POLLERR | POLLNVAL))))
			return true;
		fcntl(fd, F_SETFD, teardown_named.fd_flags);
	}
	luo_global.teardown_pid = 0;
	warn_not_ours(fd, pid);
	return false;
}

/* Drop an incoming handover unread: close what is verifiably ours. */
void luo_discard_handover(const char *value)
{
	struct luo_handover_env e;

	if (luo_parse_handover_env(value, &e))
		return;
	if (luo_kho_fd_is_arena_memfd(e.arena_fd))
		close(e.arena_fd);
	luo_inherit_refused(e.carrier_fd, e.inherit_base);
	luo_carrier_discard_unverified(e.carrier_fd);
	luo_inherit_release_refused();
	luo_teardown_adopt(e.release_fd, e.helper_pid);
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
	/* Numbers from the environment are acted on only once verified. */
	luo_teardown_adopt(err ? -1 : env.release_fd, err ? 0 : env.helper_pid);
	luo_global.carrier_fd = err ? -1 : env.carrier_fd;
	luo_global.inherit_base = err ? 0 : env.inherit_base;
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
	t[3] = luo_now_ns();
	pr_debug(
		"handover adopted: arena checked in %.1f us, LUO state parsed in %.1f us, files received in %.1f us",
		(t[1] - t[0]) / 1e3, (t[2] - t[1]) / 1e3, (t[3] - t[2]) / 1e3);
	return 0;
refuse:
	pr_err("refusing the incoming live update (%s=%s): %s; the handover was discarded: call luo_init() again to start fresh, or exit",
	       LUO_HANDOVER_ENV, printable(value, shown, sizeof(shown)), why);
	luo_teardown_release(false);
	/* Files in flight are released with the refused handover; inherited
	 * ones once the exec-mode rollback did not take them back. */
	luo_inherit_refused(luo_global.carrier_fd, luo_global.inherit_base);
	luo_carrier_discard_unverified(luo_global.carrier_fd);
	luo_global.inherit_base = 0;
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

	/* Before anything is opened that could fill a hole in the range. */
	if (getenv(LUO_HANDOVER_ENV)) {
		struct luo_handover_env e;

		if (!luo_parse_handover_env(getenv(LUO_HANDOVER_ENV), &e) &&
		    e.inherit_base)
			luo_inherit_probe_early(e.inherit_base, e.carrier_fd,
						e.carrier_fd);
	}
	luo_log_read_env();
	if (!opts)
		opts = &defaults;
	luo_notify_capture();
	luo_fdstore_capture();
	reserve = opts->arena_max ? opts->arena_max : KHO_DEFAULT_RESERVE;
	err = luo_state_write_lock("luo_init");
	if (err)
		return err;
	if (!luo_state_is(LIVEUPDATE_STATE_UNDEFINED)) {
		luo_state_write_unlock();
		pr_err("luo_init: already initialised");
		return -EALREADY;
	}
	luo_exec_self_args();
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
	if (getenv(LUO_EXEC_INHERIT_ENV) &&
	    !strcmp(getenv(LUO_EXEC_INHERIT_ENV), "1"))
		luo_global.init_flags |= LUO_INIT_EXEC_INHERIT;
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
		value = luo_txn_child_adopt(spawn, finish_now, env, sizeof(env))
				? NULL
				: strdup(env);
	}
	if (value && !(opts->flags & LUO_INIT_IGNORE_HANDOVER)) {
		if (rollback)
			luo_exec_rollback_save(rollback);
		err = adopt_handover(value, reserve);
		if (err && rollback)
			luo_exec_rollback_run(err); /* returns if it cannot */
		luo_inherit_release_refused();
		if (spawn)
			luo_txn_child_result(err, NULL);
		if (!err) {
			char why[160] = "";

			/* The record goes on; without one a set makes it. */
			if (luo_kho_crash_record_adopt(why, sizeof(why)) !=
			    -ENOENT)
				pr_debug("crash record: %s",
					 *why ? why : "carried over");
			luo_fdstore_arena(luo_kho_fd(), true);
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
	/* Restarted after a crash: the arena the service manager kept. */
	if (!value && !(opts->flags & LUO_INIT_IGNORE_HANDOVER) &&
	    !luo_crash_adopt(reserve)) {
		/* No timing: nothing was frozen (liveupdate_get_timing()). */
		luo_fdstore_arena(luo_kho_fd(), true);
		luo_set_state(LIVEUPDATE_STATE_UPDATED);
		goto out;
	}
	if (opts->flags & LUO_INIT_HUGETLB)
		arena_flags |= KHO_ARENA_HUGETLB;
	if (opts->flags & LUO_INIT_THP)
		arena_flags |= KHO_ARENA_THP;
	err = luo_kho_arena_create(arena_flags, reserve);
	if (!err) {
		luo_fdstore_arena(luo_kho_fd(), false);
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
	err = luo_state_write_lock("liveupdate_prepare");
	if (err)
		return err;
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
	/* Outside the blackout; on failure the exec tears down inline. */
	luo_holder_prepare();
	luo_exec_rollback_prepare();
	luo_abi_out_set_time(LUO_EXEC_PREPARE_NS, start);
	luo_set_state(LIVEUPDATE_STATE_PREPARED);
	luo_notify_update_begin();
out:
	luo_state_write_unlock();
	return err;
}

static int freeze_locked(void)
{
	int err = 0;

	if (!luo_state_is(LIVEUPDATE_STATE_PREPARED))
		return wrong_state("liveupdate_freeze", "it needs prepared");
	luo_abi_out_set_time(LUO_EXEC_FREEZE_NS, luo_now_ns());
	for (size_t i = 0; i < NPARTICIPANTS; i++) {
		err = participants[i]->freeze();
		if (err) {
			cancel_locked();
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
	int err = luo_state_write_lock("liveupdate_freeze");

	if (err)
		return err;
	err = freeze_locked();
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
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

static struct {
	pid_t pid;
	int release_fd; /* our end; the holder exits when it closes */
	int hold_fd;	/* the holder's end, closed in the parent */
	void *stack;
	int ready; /* futex: the holder's descriptor table is empty */
	/* The old arena mapping, which the holder unmaps slice by slice
	 * (or whole, on huge pages). */
	uint8_t *arena;
	uint64_t arena_len;
	bool huge;
} holder = {.release_fd = -1, .hold_fd = -1};

/*
 * Tearing down a large 4 KiB-page mapping in one go stalls the new
 * image's page faults on the same memfd for as long as it takes (tens of
 * ms per GiB seen on a VM).  In 16 MiB slices each stall is short and the
 * new image's faults get through in between; no pause is needed between
 * slices (a 0.2 ms sleep after each of 256 slices kept 4 GiB alive
 * 50-75 ms longer).
 * Huge-page mappings (hugetlb, shmem THP) have 512 times fewer entries
 * and go in one munmap: 4 GiB in ~1-5 ms, the new image's faults held up
 * ~1.5 ms at most (bench/results/teardown.md).
 */
#define HOLDER_SLICE (16ULL << 20)

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
 * holder, which exits and so frees it; first, if luo_teardown_adopt() took
 * the helper on the environment's word, check that it is ours.  @wait
 * reaps it; otherwise a short-lived thread does when it exits, and the
 * next prepare or luo_exit() joins that thread.
 */
void luo_teardown_release(bool wait)
{
	/* Never close an fd that is not the pipe it should be. */
	if (luo_global.teardown_fd >= 0) {
		if (teardown_verify())
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
	uint64_t len, slice;
	char c;

	/*
	 * It shares the old image's descriptor table until this first call,
	 * which gives it a private one holding only the numbers up to the
	 * pipe: the old image's files above it (10,000 and more for a busy
	 * service) are never taken and dropped again one by one.  Then it
	 * keeps only the pipe it waits on, and says so before the service
	 * goes on (and long before the exec).  Without close_range() (Linux
	 * before 5.9) it must not go on sharing: it exits, and the exec
	 * tears down inline.
	 */
	if (syscall(SYS_close_range, hold + 1, ~0U, CLOSE_RANGE_UNSHARE))
		syscall(SYS_exit, 1);
	if (hold > 0)
		syscall(SYS_close_range, 0, hold - 1, 0);
	__atomic_store_n(&holder.ready, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &holder.ready, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	while (syscall(SYS_read, hold, &c, 1) < 0)
		;
	len = __atomic_load_n(&holder.arena_len, __ATOMIC_SEQ_CST);
	slice = holder.huge ? len : HOLDER_SLICE;
	for (uint64_t off = 0; off < len; off += slice)
		syscall(SYS_munmap, holder.arena + off,
			len - off < slice ? len - off : slice);
	syscall(SYS_exit, 0);
	return 0;
}

/* Stop the helper without unmapping anything: this address space lives on
 * (cancel, failed exec, refused prepare). */
static void holder_stop(void)
{
	/* The holder shares this memory and reads it only after the close
	 * wakes it. */
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

/* Wait until the helper has its own, emptied descriptor table; false if
 * it died first. */
static bool holder_wait_ready(void)
{
	while (!__atomic_load_n(&holder.ready, __ATOMIC_SEQ_CST)) {
		struct timespec step = {0, 20000000};

		syscall(SYS_futex, &holder.ready, FUTEX_WAIT_PRIVATE, 0, &step,
			NULL, 0);
		if (!__atomic_load_n(&holder.ready, __ATOMIC_SEQ_CST) &&
		    waitpid(holder.pid, NULL, WNOHANG) == holder.pid) {
			holder.pid = 0;
			return false;
		}
	}
	return true;
}

/**
 * luo_holder_prepare() - start the helper that will hold the old address
 * space across the exec
 *
 * Called by liveupdate_prepare(), outside the blackout.  The helper
 * shares this image's descriptor table until it unshares the numbers up to
 * its own pipe end and closes all but that end, before this returns: from
 * the exec on no process but the new image holds any of this image's
 * files (a listening port can be bound again at once), and the table was
 * never copied whole.
 * Nothing happens with LUO_INIT_SYNC_TEARDOWN.
 *
 * Return: 0, or a negative errno after a warning line: the update goes on
 * with the teardown inside execve().
 */
int luo_holder_prepare(void)
{
	int fds[2], err;

	if (luo_global.init_flags & LUO_INIT_SYNC_TEARDOWN)
		return 0;
	if (pipe2(fds, O_CLOEXEC)) {
		err = -errno;
		goto fail;
	}
	holder.hold_fd = fds[0];
	holder.release_fd = fds[1];
	holder.ready = 0;
	holder.arena = NULL;
	holder.arena_len = 0;
	holder.stack = mmap(NULL, HOLDER_STACK, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (holder.stack == MAP_FAILED) {
		holder.stack = NULL;
		holder_stop();
		err = -ENOMEM;
		goto fail;
	}
	holder.pid = clone(holder_main, (char *)holder.stack + HOLDER_STACK,
			   CLONE_VM | CLONE_FILES | SIGCHLD,
			   HOLDER_ARG(holder.hold_fd, holder.release_fd));
	if (holder.pid < 0) {
		err = -errno;
		holder.pid = 0;
		holder_stop();
		goto fail;
	}
	/* Until it is ready the table is shared: its end is closed after. */
	if (!holder_wait_ready()) {
		holder_stop();
		err = -ECHILD;
		goto fail;
	}
	close(holder.hold_fd);
	holder.hold_fd = -1;
	return 0;
fail:
	pr_warn("cannot start the helper that keeps the old address space aside (%s); the exec will tear it down inline",
		strerror(-err));
	return err;
}

/**
 * luo_holder_cancel() - stop the helper of an update that will not happen
 *
 * Called when a prepared or frozen update is cancelled (and so after a
 * failed exec).  Unmaps nothing.  Safe to call without a helper.
 */
void luo_holder_cancel(void)
{
	holder_stop();
}

/* Whether binfmt_misc has handlers: then any format may run. */
static bool binfmt_misc_handlers(void)
{
	DIR *d = opendir("/proc/sys/fs/binfmt_misc");
	struct dirent *e;
	bool any = false;

	if (!d)
		return false;
	while (!any && (e = readdir(d)))
		any = e->d_name[0] != '.' && strcmp(e->d_name, "register") &&
		      strcmp(e->d_name, "status");
	closedir(d);
	return any;
}

static int precheck_file(const char *path, int depth);

/*
 * An ELF file: an executable or shared object for this machine (when of
 * this word size; the kernel may run the other one), and its program
 * interpreter (the dynamic loader) present.
 */
static int precheck_elf(int fd, const unsigned char *buf, size_t n, int depth)
{
	Elf64_Phdr batch[32]; /* one pread() per header was most of the time */
	Elf64_Ehdr eh;
	char interp[PATH_MAX];

	if (n < EI_NIDENT + 4)
		return -ENOEXEC;
	if (buf[EI_CLASS] != ELFCLASS64)
		return 0; /* 32-bit: compat emulation decides; not checked */
	if (n < sizeof(eh))
		return -ENOEXEC;
	memcpy(&eh, buf, sizeof(eh));
	if ((eh.e_type != ET_EXEC && eh.e_type != ET_DYN) ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096)
		return -ENOEXEC;
#if defined(__x86_64__)
	if (eh.e_machine != EM_X86_64)
		return -ENOEXEC;
#elif defined(__aarch64__)
	if (eh.e_machine != EM_AARCH64)
		return -ENOEXEC;
#endif
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		unsigned int k = i % 32;
		Elf64_Phdr ph;

		if (!k) {
			size_t want =
				(eh.e_phnum - i < 32 ? eh.e_phnum - i : 32) *
				sizeof(ph);

			if (pread(fd, batch, want,
				  (off_t)(eh.e_phoff +
					  (uint64_t)i * sizeof(ph))) !=
			    (ssize_t)want)
				return -ENOEXEC;
		}
		ph = batch[k];
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz < 2 || ph.p_filesz > sizeof(interp) ||
		    pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset) !=
			    (ssize_t)ph.p_filesz ||
		    interp[ph.p_filesz - 1])
			return -ENOEXEC;
		return precheck_file(interp, depth + 1);
	}
	return 0;
}

/* A "#!" line: its interpreter must be runnable itself. */
static int precheck_script(const unsigned char *buf, size_t n, int depth)
{
	char interp[PATH_MAX];
	size_t i = 2, k = 0;

	while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	while (i < n && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' &&
	       buf[i] && k + 1 < sizeof(interp))
		interp[k++] = (char)buf[i++];
	interp[k] = 0;
	/* No interpreter, or a name cut off by the kernel's 256 bytes. */
	if (!k || (i >= n && n == 256))
		return -ENOEXEC;
	return precheck_file(interp, depth + 1);
}

/*
 * The errors execve() would give, found before the devices' reboot step
 * shuts anything down: the file missing or not an executable regular
 * file, a format the kernel cannot run (no ELF executable for this
 * machine, no "#!" line, unless binfmt_misc has handlers), an
 * interpreter (dynamic loader or "#!" program) missing or unrunnable, or
 * interpreters nested deeper than the kernel follows.
 */
static int precheck_file(const char *path, int depth)
{
	unsigned char buf[256];
	struct stat st;
	ssize_t n;
	int fd, err;

	if (depth > 4)
		return -ELOOP;
	if (stat(path, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS))
		return -errno;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* executable but unreadable: cannot look inside */
	n = pread(fd, buf, sizeof(buf), 0);
	if (n >= 4 && !memcmp(buf, ELFMAG, SELFMAG))
		err = precheck_elf(fd, buf, (size_t)n, depth);
	else if (n >= 2 && buf[0] == '#' && buf[1] == '!')
		err = precheck_script(buf, (size_t)n, depth);
	else
		err = binfmt_misc_handlers() ? 0 : -ENOEXEC;
	close(fd);
	return err;
}

/* Arguments and environment within what execve() takes. */
static int precheck_args(char *const argv[], char *const envp[])
{
	long max = sysconf(_SC_ARG_MAX);
	size_t total = 0;

	for (int k = 0; k < 2; k++) {
		for (char *const *p = k ? envp : argv; *p; p++) {
			size_t len = strlen(*p) + 1;

			if (len > 32 * 4096) /* one string at most */
				return -E2BIG;
			total += len + sizeof(char *);
		}
	}
	return max > 0 && total > (size_t)max ? -E2BIG : 0;
}

static int exec_precheck(const char *path, char *const argv[],
			 char *const envp[])
{
	int err = precheck_file(path, 0);

	return err ? err : precheck_args(argv, envp);
}

/* Whether @envp sets the variable that @entry ("NAME=...") sets. */
static bool env_has(char *const envp[], const char *entry)
{
	size_t len = (size_t)(strchr(entry, '=') - entry) + 1;

	for (size_t i = 0; envp[i]; i++)
		if (!strncmp(envp[i], entry, len))
			return true;
	return false;
}

static bool is_var(const char *entry, const char *name)
{
	size_t len = strlen(name);

	return !strncmp(entry, name, len) && entry[len] == '=';
}

/*
 * A copy of @envp with our variable set, the service manager's socket
 * handed on even if @envp lacks it, and @extra (the way back for a
 * refusal) if not NULL; NULL on allocation failure.
 */
static char **handover_env(char *const envp[], const char *value, char *extra)
{
	size_t n = 0, k = 0;
	const char *notify = luo_notify_env_entry();
	char **env;

	while (envp[n])
		n++;
	env = calloc(n + 4, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!is_var(envp[i], LUO_HANDOVER_ENV) &&
		    !is_var(envp[i], LUO_ROLLBACK_ENV))
			env[k++] = envp[i];
	if (notify && !env_has(envp, notify))
		env[k++] = (char *)notify;
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
	char value[64], *back = NULL;
	char **env = NULL;
	int err, fd, carrier;

	if (!path || !argv || !argv[0]) {
		pr_err("liveupdate_reboot: needs a path and argv with at least argv[0]");
		return -EINVAL;
	}
	err = luo_state_write_lock("liveupdate_reboot");
	if (err)
		return err;
	if (luo_state_is(LIVEUPDATE_STATE_PREPARED)) {
		err = freeze_locked();
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
	if (holder.pid > 0) {
		/* Read by the holder only once the new image lets it go. */
		holder.arena = luo_kho.base;
		holder.huge =
			luo_kho.flags & (KHO_ARENA_HUGETLB | KHO_ARENA_THP);
		__atomic_store_n(&holder.arena_len, luo_kho.size,
				 __ATOMIC_SEQ_CST);
	}
	carrier = luo_sessions_carrier_fd();
	if (carrier >= 0 && luo_sessions_inherit_base())
		snprintf(value, sizeof(value), "%d,%d,%d,%d,%d", fd,
			 holder.pid > 0 ? holder.release_fd : -1,
			 holder.pid > 0 ? (int)holder.pid : 0, carrier,
			 luo_sessions_inherit_base());
	else if (carrier >= 0)
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
		pr_err("liveupdate_reboot: out of memory copying the environment; live update cancelled");
		goto cancel;
	}
	/*
	 * The devices' reboot step shuts down those not preserved, which
	 * cannot be undone: fail every way the kernel would (no such file,
	 * not executable, bad format, interpreter missing, arguments too
	 * long) before it runs.
	 */
	err = exec_precheck(path, argv, env);
	if (err)
		goto exec_failed;
	err = luo_participants_reboot();
	if (err)
		goto cancel;
	fcntl(fd, F_SETFD, 0);
	luo_exec_rollback_inherit(true);
	/* Our end of the holder's pipe must reach the new image. */
	if (holder.pid > 0)
		fcntl(holder.release_fd, F_SETFD, 0);
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
	cancel_locked(); /* stops the holder too */
out:
	luo_state_write_unlock();
	return err;
}

static void cancel_locked(void)
{
	for (size_t i = NPARTICIPANTS; i--;)
		participants[i]->cancel();
	luo_holder_cancel();
	luo_exec_rollback_inherit(false); /* the memfd made at prepare */
	luo_kho_unfreeze();
	luo_abi_out_destroy();
	luo_set_state(LIVEUPDATE_STATE_NORMAL);
	luo_notify_update_cancelled("was cancelled");
}

int liveupdate_cancel(void)
{
	int err = luo_state_write_lock("liveupdate_cancel");

	if (err)
		return err;
	if (luo_spawn_handed_over()) {
		pr_err("liveupdate_cancel: this old image committed its update: the new process serves now; end this one");
		err = -ESRCH;
	} else if (luo_state_is(LIVEUPDATE_STATE_PREPARED) ||
		   luo_state_is(LIVEUPDATE_STATE_FROZEN))
		cancel_locked();
	else
		err = wrong_state("liveupdate_cancel",
				  "only prepared or frozen can be cancelled");
	luo_state_write_unlock();
	return err;
}

/*
 * The steps a spawn-mode update drives from luo_spawn.c: given to it
 * rather than called by name, so that calls inside the lifecycle layer go
 * one way, from this file down (docs/architecture.md, "Inside a layer").
 */
static const struct luo_update_steps update_steps = {
	.prepare = liveupdate_prepare,
	.freeze_locked = freeze_locked,
	.cancel_locked = cancel_locked,
};

static bool opts_valid(const struct liveupdate_update_opts *o)
{
	if (!o || !o->path || !o->argv || !o->argv[0]) {
		pr_err("liveupdate_update: needs options with a path and argv with at least argv[0]");
		return false;
	}
	if (o->mode != LIVEUPDATE_MODE_EXEC &&
	    o->mode != LIVEUPDATE_MODE_SPAWN) {
		pr_err("liveupdate_update: unknown mode %d (exec or spawn)",
		       (int)o->mode);
		return false;
	}
	if (o->mode == LIVEUPDATE_MODE_EXEC &&
	    (o->trial_ms || o->deadline_ms)) {
		pr_err("liveupdate_update: a trial and a deadline need spawn mode: the old image is gone once exec succeeds");
		return false;
	}
	if (o->mode == LIVEUPDATE_MODE_SPAWN && o->trial_ms &&
	    !luo_txn_hooks_have_health() &&
	    !(o->flags & LIVEUPDATE_UPDATE_EXTERNAL_PROBE)) {
		pr_err("liveupdate_update: a trial needs a health probe: register one with liveupdate_set_txn_hooks() or probe from outside (luoctl update --health CMD)");
		return false;
	}
	return true;
}

int liveupdate_update(const struct liveupdate_update_opts *o,
		      struct liveupdate_update_report *report)
{
	struct liveupdate_update_report dummy;
	int err;

	if (!report)
		report = &dummy;
	memset(report, 0, sizeof(*report));
	report->exit_status = -1;
	if (!opts_valid(o))
		return -EINVAL;
	/* From a callback, the state lock is ours: -EDEADLK. */
	err = liveupdate_state_read_enter();
	if (err)
		return err;
	liveupdate_state_read_exit();
	if (luo_spawn_running()) {
		pr_err("liveupdate_update: a spawn-mode update is already running; wait for its commit or rollback");
		return -EBUSY;
	}
	if (o->mode == LIVEUPDATE_MODE_SPAWN)
		return luo_spawn_update(o, report, &update_steps);
	if (liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL) {
		err = liveupdate_prepare();
		if (err)
			return err;
	}
	err = liveupdate_reboot(o->path, o->argv, o->envp);
	report->reason = LIVEUPDATE_TXN_FAILED;
	report->error = err;
	snprintf(report->text, sizeof(report->text), "exec of '%s' failed: %s",
		 o->path, strerror(-err));
	return err;
}

int liveupdate_finish(void)
{
	/* A spawned image asks the old one to commit first. */
	int err = luo_txn_defer_finish();

	return err == 1 ? finish_now() : err;
}

static int finish_now(void)
{
	int err = luo_state_write_lock("liveupdate_finish");

	if (err)
		return err;
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

	if (luo_state_write_lock("luo_exit"))
		return -EDEADLK;
	s = liveupdate_get_state();
	if (s == LIVEUPDATE_STATE_PREPARED || s == LIVEUPDATE_STATE_FROZEN) {
		luo_state_write_unlock();
		pr_err("luo_exit: a live update is in progress (state %s): cancel it first",
		       liveupdate_state_name(s));
		return -EBUSY;
	}
	luo_notify_stopping();
	luo_fdstore_arena_gone();
	luo_teardown_release(true);
	luo_exec_self_close();
	for (size_t i = NPARTICIPANTS; i--;)
		participants[i]->forget();
	luo_kho_forget_incoming();
	luo_kho_arena_destroy();
	luo_global.liveupdate_num = 0;
	luo_global.crash_recovered = false;
	memset(&luo_global.timing, 0, sizeof(luo_global.timing));
	luo_set_state(LIVEUPDATE_STATE_UNDEFINED);
	luo_state_write_unlock();
	return 0;
}
