// SPDX-License-Identifier: MIT
/*
 * Builds of kvcache that fail on purpose (meson: kvcache-fault-*, never
 * installed), selected with -DKV_FAULT=N: the new image of a spawn-mode
 * update that exits, crashes, hangs, refuses or turns unhealthy, so that
 * tests/kvcache/rollback.sh can show the old image rolling back with
 * every key and connection.  Without KV_FAULT every point is a no-op.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kv.h"

#ifdef KV_FAULT
static unsigned long requests;

/* A real SIGSEGV by default action, also under ASan (which catches it). */
static void crash(void)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigset_t set;

	sigaction(SIGSEGV, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGSEGV);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), SIGSEGV);
	_exit(99); /* not reached */
}

static void hang(void)
{
	for (;;)
		pause();
}
#endif

/**
 * kv_fault() - fail here if this build was made to
 * @p: where the caller is.
 *
 * Return: for %KV_FAULT_POINT_REFUSE and %KV_FAULT_POINT_HEALTH, true if
 * the caller must fail; otherwise false (or it does not return).
 */
bool kv_fault(enum kv_fault_point p)
{
#ifdef KV_FAULT
	switch (p) {
	case KV_FAULT_POINT_START:
		if (KV_FAULT == KV_FAULT_EXIT_START) {
			fprintf(stderr,
				"kvcache: test fault: exit 3 at start\n");
			exit(3);
		}
		if (KV_FAULT == KV_FAULT_SEGV_START)
			crash();
		if (KV_FAULT == KV_FAULT_HANG_BEFORE_INIT)
			hang();
		return false;
	case KV_FAULT_POINT_ADOPTED:
		if (KV_FAULT == KV_FAULT_HANG_ADOPTED) {
			fprintf(stderr,
				"kvcache: test fault: hanging after adopting\n");
			hang();
		}
		return false;
	case KV_FAULT_POINT_REQUEST:
		/* Counted per command; the crash comes in the middle of one. */
		if (KV_FAULT == KV_FAULT_SEGV_REQUEST && ++requests >= 1000)
			crash();
		return false;
	case KV_FAULT_POINT_STORE:
		if (KV_FAULT == KV_FAULT_SEGV_REQUEST && requests + 1 >= 1000)
			crash();
		return false;
	case KV_FAULT_POINT_REFUSE:
		return KV_FAULT == KV_FAULT_REFUSE;
	case KV_FAULT_POINT_HEALTH:
		return KV_FAULT == KV_FAULT_HEALTH;
	}
#endif
	(void)p;
	return false;
}
