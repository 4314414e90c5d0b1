// SPDX-License-Identifier: MIT
/*
 * Tests only (tests/ctl/txn.sh, through LD_PRELOAD): a process whose end
 * is slow.  _exit() waits EXIT_DELAY_MS milliseconds first, so that an
 * old image that has sent its commit reply is still running for a while,
 * as a large one tearing down its memory would be.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void _exit(int status)
{
	const char *ms = getenv("EXIT_DELAY_MS");

	if (ms) {
		long v = atol(ms);
		struct timespec t = {v / 1000, (v % 1000) * 1000000L};

		nanosleep(&t, NULL);
	}
	syscall(SYS_exit_group, status);
	for (;;)
		;
}
