// SPDX-License-Identifier: MIT
/*
 * The sessions lock: one mutex over sessions, files, handlers and FLBs,
 * taken by luo_session.c, luo_file.c and luo_flb.c, so it lives below
 * them all (docs/architecture.md, "Inside a layer"; the lock order).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "log.h"
#include "luo_session_internal.h"

/* The sessions and their files: guards the lists below and every file in
 * them, the handlers and the FLBs (luo_file.c and luo_flb.c take it too). */
pthread_mutex_t luo_sessions_lock = PTHREAD_MUTEX_INITIALIZER;
/* Set while this thread holds luo_sessions_lock: every file handler and
 * FLB callback runs so, and the calls allowed there must not take it. */
static __thread bool sessions_held;

int luo_sessions_lock_enter(const char *op)
{
	if (sessions_held) {
		pr_err("%s: not allowed from a file handler or FLB callback (see include/luo/session.h for the calls that are)",
		       op);
		return -EDEADLK;
	}
	pthread_mutex_lock(&luo_sessions_lock);
	sessions_held = true;
	return 0;
}

void luo_sessions_lock_leave(void)
{
	sessions_held = false;
	pthread_mutex_unlock(&luo_sessions_lock);
}

bool luo_sessions_lock_held(void)
{
	return sessions_held;
}
