// SPDX-License-Identifier: MIT
/*
 * The state word and the state lock every layer above reads: the current
 * live update state, the update counter and the timing of the incoming
 * update.  Transitions hold the lock for writing; callers that need the
 * state to stay put hold it for reading.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "log.h"
#include "luo_internal.h"
struct luo_global luo_global = {.teardown_fd = -1};

static _Atomic int luo_state = LIVEUPDATE_STATE_UNDEFINED;
static pthread_rwlock_t state_lock;
static pthread_once_t state_lock_once = PTHREAD_ONCE_INIT;
/* Set while this thread holds the write lock (and so runs callbacks). */
static __thread bool state_writer;
/* How many times this thread entered the read lock (held once). */
static __thread unsigned int state_readers;

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

/*
 * Take the state lock for writing, or say why not: from a callback the
 * lock is already held by this very thread (for writing by a transition,
 * for reading by the call that runs the callback), so waiting would hang.
 */
int luo_state_write_lock(const char *op)
{
	if (state_writer || state_readers) {
		pr_err("%s: not allowed from a live update callback, a file handler or FLB callback, or while this thread holds liveupdate_state_read_enter()",
		       op);
		return -EDEADLK;
	}
	pthread_once(&state_lock_once, state_lock_init);
	pthread_rwlock_wrlock(&state_lock);
	state_writer = true;
	return 0;
}

void luo_state_write_unlock(void)
{
	state_writer = false;
	pthread_rwlock_unlock(&state_lock);
}

bool luo_state_writer(void)
{
	return state_writer;
}

/*
 * Readers are counted per thread and only the first takes the lock: the
 * lock prefers writers, so a second read lock taken while a writer waits
 * would wait behind that writer, which waits for the first: a deadlock.
 */
int liveupdate_state_read_enter(void)
{
	if (state_writer) {
		pr_err("the live update state cannot be locked from inside a live update callback");
		return -EDEADLK;
	}
	if (state_readers++)
		return 0;
	pthread_once(&state_lock_once, state_lock_init);
	pthread_rwlock_rdlock(&state_lock);
	return 0;
}

void liveupdate_state_read_exit(void)
{
	if (state_readers && !--state_readers)
		pthread_rwlock_unlock(&state_lock);
}

int luo_state_hold(void)
{
	return state_writer ? 0 : liveupdate_state_read_enter();
}

void luo_state_unhold(void)
{
	if (!state_writer)
		liveupdate_state_read_exit();
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
