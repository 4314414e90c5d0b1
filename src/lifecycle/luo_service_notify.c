// SPDX-License-Identifier: MIT
/*
 * What the library tells the service manager at each step of the service's
 * life and of an update (docs/systemd.md): READY=1 when the service says
 * it serves, RELOADING=1 once an update is prepared, READY=1 again when
 * the new image serves or the old one resumes, MAINPID= when spawn mode
 * commits, STOPPING=1 at the end, and a STATUS= line each time.
 *
 * The flags are per process image: a new image starts with none sent,
 * which is right, since the manager waits for its READY=1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>
#include <luo/notify.h>

#include "luo_fdstore.h"
#include "luo_internal.h"
#include "luo_notify.h"
#include "luo_service_notify.h"

static atomic_bool ready_sent, stopping_sent;
static _Atomic uint64_t last_blackout_ns; /* of the update we came from */

/* "3 live updates, last blackout 1.234 ms" */
static void counts(char *buf, size_t len)
{
	uint64_t num = liveupdate_get_num(),
		 bo = atomic_load(&last_blackout_ns);
	int n = snprintf(buf, len, "%llu live update%s",
			 (unsigned long long)num, num == 1 ? "" : "s");

	if (bo && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", last blackout %.3f ms",
			 bo / 1e6);
}

static int send_with_status(const char *head, const char *what)
{
	char msg[512], tail[128];

	counts(tail, sizeof(tail));
	snprintf(msg, sizeof(msg), "%sSTATUS=%s (state %s), %s", head, what,
		 liveupdate_state_name(liveupdate_get_state()), tail);
	return luo_notify(msg);
}

int luo_notify_ready(void)
{
	struct liveupdate_timing t;

	if (!luo_notify_enabled())
		return 0;
	/* The blackout ends now, as the manager sees it. */
	if (!atomic_load(&ready_sent) && !atomic_load(&last_blackout_ns) &&
	    !liveupdate_get_timing(&t))
		atomic_store(&last_blackout_ns, luo_now_ns() - t.freeze_ns);
	atomic_store(&ready_sent, true);
	/* It serves: what it did not take back after a crash is not wanted. */
	luo_fdstore_release_unclaimed();
	return send_with_status("READY=1\n", "serving");
}

int luo_notify_stopping(void)
{
	if (!luo_notify_enabled() || atomic_exchange(&stopping_sent, true))
		return 0;
	return send_with_status("STOPPING=1\n", "stopping");
}

void luo_notify_update_begin(void)
{
	struct timespec ts;
	char head[96];

	if (!luo_notify_enabled() || !atomic_load(&ready_sent))
		return;
	/* systemd 253 and later check that the clock is of this reload. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu\n",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
			 (unsigned long long)ts.tv_nsec / 1000);
	send_with_status(head, "live update in progress");
}

void luo_notify_update_cancelled(const char *why)
{
	char what[160];

	if (!luo_notify_enabled() || !atomic_load(&ready_sent))
		return;
	snprintf(what, sizeof(what), "serving, the last live update %s", why);
	send_with_status("READY=1\n", what);
}

/*
 * Wait until the manager has read everything sent so far (BARRIER=1 with
 * a pipe it closes once it got there, as sd_notify_barrier()): an old main
 * process that exits right after MAINPID= would otherwise race the
 * manager, which may see it exit first and take the service for dead
 * (seen under load: systemd SIGKILLed the new process).  At most 5 s.
 */
static void notify_barrier(void)
{
	struct pollfd p = {.events = POLLIN};
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return;
	if (luo_notify_fds("BARRIER=1", &fds[1], 1)) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	close(fds[1]);
	p.fd = fds[0];
	while (poll(&p, 1, 5000) < 0 && errno == EINTR)
		;
	close(fds[0]);
}

int luo_notify_main_pid(pid_t pid)
{
	char head[64];
	int err;

	if (!luo_notify_enabled())
		return 0;
	snprintf(head, sizeof(head), "MAINPID=%d\nREADY=1\n", (int)pid);
	err = send_with_status(head, "serving from the new process");
	if (!err)
		notify_barrier();
	/*
	 * This process is no longer the main one: under NotifyAccess=main
	 * anything more from it (its STOPPING=1 on the way out) is refused.
	 */
	atomic_store(&stopping_sent, true);
	atomic_store(&ready_sent, false);
	return err;
}

void luo_notify_status(const char *what)
{
	if (luo_notify_enabled())
		send_with_status("", what);
}
