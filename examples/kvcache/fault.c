// SPDX-License-Identifier: MIT
/*
 * Builds of kvcache that fail on purpose (meson: kvcache-fault-*, never
 * installed), selected with -DKV_FAULT=N: the new image of a spawn-mode
 * update that exits, crashes, hangs, refuses or turns unhealthy, so that
 * tests/kvcache/rollback.sh can show the old image rolling back with
 * every key and connection; one killed in the middle of an incr and one
 * inside a change of block headers (linked with the library's fault
 * build), for tests/kvcache/crash.py; and two killed right after a read
 * or a write on a client's socket, for tests/kvcache/killed_io.py.
 * Without KV_FAULT every point is a no-op.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kv.h"
#if defined(KV_FAULT) && KV_FAULT == KV_FAULT_KILL_HEADER
#include "kho_internal.h" /* the library's fault build: its kill points */
#endif

#ifdef KV_FAULT
static unsigned long requests, deltas, reads, writes;
/* Health fault: the probe asks the event loop to stop between requests. */
static atomic_int park_asked, parked;

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

/* SIGKILL, as from outside, on the @at-th pass counted in @count. */
static void kill_at(unsigned long *count, unsigned long at, const char *where)
{
	if (++*count < at)
		return;
	fprintf(stderr, "kvcache: test fault: SIGKILL %s\n", where);
	kill(getpid(), SIGKILL);
}

/**
 * kv_fault() - fail here if this build was made to
 * @p: where the caller is.
 *
 * Return: for %KV_FAULT_POINT_REFUSE and %KV_FAULT_POINT_HEALTH, true if
 * the caller must fail; otherwise false (or it does not return).
 */
bool kv_fault(enum kv_fault_point p)
{
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
#if KV_FAULT == KV_FAULT_KILL_HEADER
		/* From now on each connection's buffers are a change. */
		if (++requests == 1000 && getenv("KV_KHO_POINT")) {
			fprintf(stderr,
				"kvcache: test fault: SIGKILL at kill point %s of the handover memory's changes from now\n",
				getenv("KV_KHO_POINT"));
			luo_kho_fault_arm(
				strtoul(getenv("KV_KHO_POINT"), NULL, 10));
			/* To show the test fails without the intent record. */
			luo_kho_fault_no_intent = getenv("KV_KHO_NO_INTENT");
		}
#endif
		return false;
	case KV_FAULT_POINT_STORE:
		if (KV_FAULT == KV_FAULT_SEGV_REQUEST && requests + 1 >= 1000)
			crash();
		return false;
	case KV_FAULT_POINT_REFUSE:
		return KV_FAULT == KV_FAULT_REFUSE;
	case KV_FAULT_POINT_HEALTH:
		/*
		 * Fail once the loop stands still between requests: the old
		 * image's kill then cannot land inside a write() (see
		 * docs/kvcache.md on a kill in the middle of a request).
		 */
		if (KV_FAULT != KV_FAULT_HEALTH)
			return false;
		atomic_store(&park_asked, 1);
		for (int i = 0; i < 200 && !atomic_load(&parked); i++)
			nanosleep(&(struct timespec){0, 1000000}, NULL);
		return true;
	case KV_FAULT_POINT_DELTA:
		/* A crash from outside could land here; this one always does. */
		if (KV_FAULT == KV_FAULT_KILL_DELTA)
			kill_at(&deltas, 50, "in the middle of an incr");
		return false;
	case KV_FAULT_POINT_READ:
		/* The worst instant of a read for a kill from outside. */
		if (KV_FAULT == KV_FAULT_KILL_READ)
			kill_at(&reads, 20, "right after a read");
		return false;
	case KV_FAULT_POINT_WRITE:
		if (KV_FAULT == KV_FAULT_KILL_WRITE)
			kill_at(&writes, 20, "right after a write");
		return false;
	case KV_FAULT_POINT_LOOP:
		if (KV_FAULT == KV_FAULT_HEALTH && atomic_load(&park_asked)) {
			atomic_store(&parked, 1);
			hang();
		}
		return false;
	}
	return false;
}
#endif
