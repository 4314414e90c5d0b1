/* SPDX-License-Identifier: MIT */
/* The service manager's notify protocol (luo_notify.c); what the library
 * tells it at each step is lifecycle/luo_service_notify.h. */
#ifndef LUO_SRC_NOTIFY_H
#define LUO_SRC_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* luo_notify.c: the protocol */

/** luo_notify_capture() - read $NOTIFY_SOCKET, once per process image. */
void luo_notify_capture(void);

/**
 * luo_notify_enabled() - whether messages go anywhere
 *
 * Return: true if $NOTIFY_SOCKET named a usable socket.
 */
bool luo_notify_enabled(void);

/**
 * luo_notify_env_entry() - the variable to hand on to the next image
 *
 * Return: "NOTIFY_SOCKET=VALUE" as this image got it, or NULL.
 */
const char *luo_notify_env_entry(void);

/** LUO_NOTIFY_MAX_FDS - most descriptors luo_notify_fds() sends at once. */
#define LUO_NOTIFY_MAX_FDS 8

/**
 * luo_notify_fds() - luo_notify() with descriptors attached (SCM_RIGHTS)
 * @msg: the message, e.g. "FDSTORE=1\nFDNAME=luo.arena".
 * @fds: descriptors for the manager to keep; still ours afterwards.
 * @nfds: how many, at most %LUO_NOTIFY_MAX_FDS.
 *
 * Return: as luo_notify().
 */
int luo_notify_fds(const char *msg, const int *fds, size_t nfds);

#endif
