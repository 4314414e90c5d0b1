/* SPDX-License-Identifier: MIT */
/* What the library tells the service manager at each step of an update
 * (luo_service_notify.c); the protocol itself is base/luo_notify.h. */
#ifndef LUO_SRC_SERVICE_NOTIFY_H
#define LUO_SRC_SERVICE_NOTIFY_H

#include <sys/types.h>

/**
 * luo_notify_update_begin() - an update was prepared: RELOADING=1
 *
 * Called by liveupdate_prepare() once every participant prepared.
 */
void luo_notify_update_begin(void);

/**
 * luo_notify_update_cancelled() - the old image serves on: READY=1
 * @why: what happened, for STATUS= ("cancelled", "exec failed", a
 *       rollback's reason).
 *
 * Called by the cancel path (cancel, refused freeze, failed exec).  The
 * spawn mode's rollback calls it too.  Sends READY=1 only if this image
 * had said it was ready: a service still starting stays starting.
 */
void luo_notify_update_cancelled(const char *why);

/**
 * luo_notify_main_pid() - a new process is the service now: MAINPID=
 * @pid: the new main process.
 *
 * For spawn mode's commit: sent by the old image (the manager accepts
 * MAINPID= only from the current main process under NotifyAccess=main),
 * before it exits, together with READY=1, which ends the reload (the new
 * process's own READY=1 may have been refused while it was not yet the
 * main process).
 *
 * Return: as luo_notify().
 */
int luo_notify_main_pid(pid_t pid);

/**
 * luo_notify_status() - a STATUS= line of the library's making
 * @what: what the service is doing, e.g. "trial of pid 123, 20 s left".
 *
 * The live updates so far and the last blackout are appended.
 */
void luo_notify_status(const char *what);

#endif
