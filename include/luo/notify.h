/* SPDX-License-Identifier: MIT */
/**
 * DOC: telling the service manager (systemd's notify protocol)
 *
 * Under a unit with ``Type=notify`` the library speaks systemd's notify
 * protocol itself (datagrams on ``$NOTIFY_SOCKET``; no libsystemd):
 *
 * - ``READY=1`` when the service calls luo_notify_ready().  Only the
 *   service knows when it serves, so it calls it once it does, in every
 *   image: after a fresh start and after adopting a live update (the same
 *   line of code runs in both).  After an update this ends the reload.
 * - ``RELOADING=1`` and ``MONOTONIC_USEC=`` when an update has been
 *   prepared (liveupdate_prepare() succeeded), sent by the library.  In
 *   exec mode the PID stays the same throughout, so ``NotifyAccess=main``
 *   accepts the new image's ``READY=1``.
 * - ``READY=1`` again, sent by the library, when the update is cancelled
 *   (a cancel, a refused freeze, a failed exec): the old image serves on.
 * - ``STOPPING=1`` from luo_notify_stopping() or luo_exit().
 * - ``STATUS=`` with each of them, for ``systemctl status``: what the
 *   service is doing, the live updates so far and the last blackout.
 *
 * Nothing is sent, and every call returns 0, when ``$NOTIFY_SOCKET`` is
 * not set.  The variable is read once, at the first call or luo_init(),
 * and handed on to the new image of a live update even when the service
 * passes an environment without it.  Socket paths and abstract names
 * (``@name``) are supported.  See docs/systemd.md.
 */
#ifndef LUO_NOTIFY_H
#define LUO_NOTIFY_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * luo_notify() - send one message to the service manager
 * @msg: newline-separated ``KEY=VALUE`` assignments, e.g. ``"STATUS=..."``.
 *
 * For what the library does not send itself.  One datagram, sent without
 * blocking for more than a second.
 *
 * Return: 1 if sent; 0 if ``$NOTIFY_SOCKET`` is not set; -EINVAL for a
 * NULL or empty @msg or an unusable ``$NOTIFY_SOCKET``; another negative
 * errno if the datagram could not be sent.
 */
int luo_notify(const char *msg);

/**
 * luo_notify_ready() - tell the service manager that the service serves
 *
 * Call it once the service accepts and answers requests, after
 * luo_init() and, in a new image, once the adopted state serves again
 * (after luo_control_start() if the service has a control socket: then
 * ``systemctl reload`` and luoctl agree on when the update ended).  Sends
 * ``READY=1`` and a ``STATUS=`` line; a second call in the same image
 * only refreshes the status.
 *
 * Return: as luo_notify().
 */
int luo_notify_ready(void);

/**
 * luo_notify_stopping() - tell the service manager that the service stops
 *
 * Sends ``STOPPING=1`` and a ``STATUS=`` line once per image; luo_exit()
 * calls it too.
 *
 * Return: as luo_notify().
 */
int luo_notify_stopping(void);

#ifdef __cplusplus
}
#endif

#endif /* LUO_NOTIFY_H */
