// SPDX-License-Identifier: MIT
/*
 * luoctl stop: end the service that answers on the control socket with
 * SIGTERM and return once it has exited and its parent has reaped it.
 *
 * It exists for a unit's ExecStop= (docs/systemd.md): after a spawn-mode
 * commit the main process is not the service manager's child when it
 * takes over, and systemd 252 then sends SIGKILL right after SIGTERM
 * instead of waiting for it.  A synchronous ExecStop= is waited for, so
 * the service ends on its own and its exit status is seen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "luoctl.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static int pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Milliseconds left until @deadline_ns, at least 0. */
static int ms_left(uint64_t deadline_ns)
{
	uint64_t now = mono_ns();

	return now >= deadline_ns ? 0 : (int)((deadline_ns - now) / 1000000);
}

/*
 * Until the exited process is reaped: before that, its parent (under
 * systemd: the manager) has not yet taken note of its exit status.
 * Return: true once it is gone, false at @deadline_ns.
 */
static bool wait_reaped(int pidfd, uint64_t deadline_ns)
{
	struct timespec step = {0, 5000000};

	while (pidfd_signal(pidfd, 0) == 0) {
		if (!ms_left(deadline_ns))
			return false;
		nanosleep(&step, NULL);
	}
	return errno == ESRCH;
}

/**
 * cmd_stop() - the "stop" command: SIGTERM to the service, wait for its end
 * @c:    connected client; its greeting gave the service's pid
 * @json: print a JSON object instead of a line
 *
 * The pidfd is opened while the service still serves this connection, so
 * the signal cannot reach a process that reused its pid.
 *
 * Return: EXIT_OK once the process has exited and been reaped;
 * EXIT_TIMEOUT if it is still there at the command's deadline;
 * EXIT_REFUSED if it cannot be signalled (a message says why).
 */
int cmd_stop(struct client *c, bool json)
{
	int pidfd;

	if (c->pid <= 0) {
		fprintf(stderr,
			"luoctl: service %s gave no pid in its greeting; stop it with its service manager\n",
			c->name);
		return EXIT_REFUSED;
	}
	pidfd = service_pidfd(c->pid);
	if (pidfd < 0 || pidfd_signal(pidfd, SIGTERM)) {
		fprintf(stderr,
			"luoctl: cannot send SIGTERM to service %s (pid %d): %s; run luoctl as the service's user or root\n",
			c->name, c->pid, strerror(errno));
		if (pidfd >= 0)
			close(pidfd);
		return EXIT_REFUSED;
	}
	/* Its end closes the connection: no reply is awaited on it. */
	client_close(c);
	if (!pidfd_wait_exit(pidfd, c->deadline_ns) ||
	    !wait_reaped(pidfd, c->deadline_ns)) {
		close(pidfd);
		fprintf(stderr,
			"luoctl: service %s (pid %d) did not end in time after SIGTERM (--timeout)\n",
			c->name, c->pid);
		return EXIT_TIMEOUT;
	}
	close(pidfd);
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "service",
				       json_object_new_string(c->name));
		json_object_object_add(o, "command",
				       json_object_new_string("stop"));
		json_object_object_add(o, "pid", json_object_new_int(c->pid));
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_print(o);
	} else {
		printf("%s: stopped (pid %d ended)\n", c->name, c->pid);
	}
	return EXIT_OK;
}
