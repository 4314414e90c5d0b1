// SPDX-License-Identifier: MIT
/*
 * The live update state machine: NORMAL -> PREPARED -> FROZEN -> exec ->
 * UPDATED -> NORMAL, with cancel back to NORMAL.  Transitions hold the
 * state lock for writing; callers that need the state to stay put hold it
 * for reading.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"
#include "luo_txn.h"

struct luo_global luo_global = {.teardown_fd = -1};

static _Atomic int luo_state = LIVEUPDATE_STATE_UNDEFINED;
static pthread_rwlock_t state_lock;
static pthread_once_t state_lock_once = PTHREAD_ONCE_INIT;
/* Set while this thread holds the write lock (and so runs callbacks). */
static __thread bool state_writer;

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

static void state_lock_init(void)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	/* An update must not starve behind a stream of readers. */
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&state_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

void luo_state_write_lock(void)
{
	pthread_once(&state_lock_once, state_lock_init);
	pthread_rwlock_wrlock(&state_lock);
	state_writer = true;
}

void luo_state_write_unlock(void)
{
	state_writer = false;
	pthread_rwlock_unlock(&state_lock);
}

int liveupdate_state_read_enter(void)
{
	if (state_writer) {
		pr_err("the live update state cannot be locked from inside a live update callback");
		return -EDEADLK;
	}
	pthread_once(&state_lock_once, state_lock_init);
	pthread_rwlock_rdlock(&state_lock);
	return 0;
}

void liveupdate_state_read_exit(void)
{
	pthread_rwlock_unlock(&state_lock);
}

enum liveupdate_state liveupdate_get_state(void)
{
	return (enum liveupdate_state)atomic_load(&luo_state);
}

bool luo_state_is(enum liveupdate_state s)
{
	return liveupdate_get_state() == s;
}

void luo_set_state(enum liveupdate_state s)
{
	atomic_store(&luo_state, s);
}

const char *liveupdate_state_name(enum liveupdate_state state)
{
	switch (state) {
	case LIVEUPDATE_STATE_NORMAL:
		return "normal";
	case LIVEUPDATE_STATE_PREPARED:
		return "prepared";
	case LIVEUPDATE_STATE_FROZEN:
		return "frozen";
	case LIVEUPDATE_STATE_UPDATED:
		return "updated";
	default:
		return "undefined";
	}
}

uint64_t liveupdate_get_num(void)
{
	return luo_global.liveupdate_num;
}

int liveupdate_get_timing(struct liveupdate_timing *t)
{
	if (!t)
		return -EINVAL;
	if (!luo_global.timing.adopted_ns)
		return -ENODATA;
	*t = luo_global.timing;
	return 0;
}

uint64_t luo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

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
	err = kho_arena_adopt(arena_fd, reserve, why, sizeof(why));
	if (err)
		goto refuse;
	t[1] = luo_now_ns();
	err = luo_abi_in_parse(why, sizeof(why));
	if (err) {
		kho_forget_incoming();
		kho_arena_destroy();
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
	err = kho_arena_create(arena_flags, reserve);
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
	luo_abi_in_release();
	luo_sessions_forget();
	luo_flbs_forget();
	luo_handlers_forget();
	kho_forget_incoming();
	kho_arena_destroy();
	luo_subsystems_forget();
	luo_devices_forget();
	luo_global.liveupdate_num = 0;
	memset(&luo_global.timing, 0, sizeof(luo_global.timing));
	luo_set_state(LIVEUPDATE_STATE_UNDEFINED);
	luo_state_write_unlock();
	return 0;
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
	err = luo_abi_out_create();
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
	luo_abi_out_set_time("prepare-ns", start);
	luo_set_state(LIVEUPDATE_STATE_PREPARED);
out:
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

void luo_cancel_locked(void)
{
	for (size_t i = NPARTICIPANTS; i--;)
		participants[i]->cancel();
	kho_unfreeze();
	luo_abi_out_destroy();
	luo_set_state(LIVEUPDATE_STATE_NORMAL);
}

int luo_freeze_locked(void)
{
	int err = 0;

	if (!luo_state_is(LIVEUPDATE_STATE_PREPARED))
		return wrong_state("liveupdate_freeze", "it needs prepared");
	luo_abi_out_set_time("freeze-ns", luo_now_ns());
	for (size_t i = 0; i < NPARTICIPANTS; i++) {
		err = participants[i]->freeze();
		if (err) {
			luo_cancel_locked();
			pr_info("live update cancelled: a participant refused freeze");
			return err;
		}
	}
	kho_freeze();
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
	luo_abi_in_release();
	kho_forget_incoming();
	kho_release_unclaimed();
	luo_teardown_release(false);
	luo_set_state(LIVEUPDATE_STATE_NORMAL);
out:
	luo_state_write_unlock();
	return err;
}
