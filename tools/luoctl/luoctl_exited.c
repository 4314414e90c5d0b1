// SPDX-License-Identifier: MIT
/*
 * After a spawn-mode commit: wait until the old image has exited, so that
 * luoctl reports the commit only once the old process is gone.  The old
 * image sends its reply and then runs its finish path and exits; a caller
 * that looked at the process table right after luoctl returned would
 * otherwise still find it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "luoctl.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/**
 * service_pidfd() - a pidfd on a service's process
 * @pid: its pid (from the greeting of the connection it serves).
 *
 * Opened while the process still serves this connection (before an
 * update, or before the stop's signal), so that it cannot name a process
 * that reused the pid.
 *
 * Return: the descriptor, or -1 (no pid, no pidfd support).
 */
int service_pidfd(pid_t pid)
{
	return pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
}

/**
 * pidfd_wait_exit() - wait until the process of a pidfd has exited
 * @pidfd: a pidfd (not closed here).
 * @deadline_ns: mono_ns() time to give up at.
 *
 * Return: true once it has exited (a zombie not yet reaped counts),
 * false at @deadline_ns.
 */
bool pidfd_wait_exit(int pidfd, uint64_t deadline_ns)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int n;

	do {
		uint64_t now = mono_ns();
		int ms = now >= deadline_ns
				 ? 0
				 : (int)((deadline_ns - now) / 1000000);

		n = poll(&p, 1, ms);
	} while (n < 0 && errno == EINTR);
	return n > 0;
}

/**
 * wait_old_image_exit() - wait until the old image of a commit has exited
 * @pidfd: from service_pidfd(), or -1 to open one on @pid now.
 * @pid: the old image's pid; with @pidfd -1, a pid that no longer exists
 *       has exited.
 * @deadline_ns: mono_ns() time to give up at.
 *
 * Closes @pidfd.  A message says so when it gives up.
 *
 * Return: 0 once it has exited (a zombie not yet reaped counts);
 * EXIT_TIMEOUT if it is still running at @deadline_ns.
 */
int wait_old_image_exit(int pidfd, pid_t pid, uint64_t deadline_ns)
{
	bool exited;

	if (pidfd < 0)
		pidfd = service_pidfd(pid);
	if (pidfd < 0)
		return 0; /* gone already (ESRCH), or nothing to wait with */
	exited = pidfd_wait_exit(pidfd, deadline_ns);
	close(pidfd);
	if (exited)
		return 0;
	fprintf(stderr,
		"luoctl: committed, but the old image (pid %d) has not exited yet (--timeout): run 'luoctl status'\n",
		(int)pid);
	return EXIT_TIMEOUT;
}
