/* SPDX-License-Identifier: MIT */
/**
 * DOC: the control socket
 *
 * A service that calls luo_control_start() can be driven from the shell
 * with luoctl(1): status, prepare, freeze, cancel, finish, a whole update,
 * and listings of its sessions, files, subsystems and devices.  The
 * library serves a Unix stream socket, by default
 * ``$XDG_RUNTIME_DIR/luo/NAME.sock`` (``/run/luo/NAME.sock`` for root),
 * either from a thread of its own (%LUO_CONTROL_THREAD) or from a
 * descriptor the service puts in its own poll loop and hands to
 * luo_control_dispatch() when readable.  In the second mode every command,
 * the update included, runs on the service's own thread, between two of
 * its events, which is the simplest way to be quiescent at freeze.
 *
 * Only peers with the service's uid, or root, are served (SO_PEERCRED);
 * others get one refusal line and are logged.  The listening socket and
 * the connection that asked for an update both survive the update: the
 * new image's luo_control_start() answers that connection with the
 * outcome.  The protocol is described in docs/control-protocol.md.
 */
#ifndef LUO_CONTROL_H
#define LUO_CONTROL_H

#ifdef __cplusplus
extern "C" {
#endif

/** LUO_CONTROL_THREAD - serve the socket from a library thread. */
#define LUO_CONTROL_THREAD (1U << 0)

/** LUO_CONTROL_NAME_MAX - longest service name, in bytes. */
#define LUO_CONTROL_NAME_MAX 63

/** LUO_CONTROL_PROTOCOL - version of the line protocol served. */
#define LUO_CONTROL_PROTOCOL 1

struct luo_control;

/**
 * struct luo_control_opts - how to serve the control socket
 * @name: the service's name, 1 to 63 bytes of [A-Za-z0-9._-]; luoctl's
 *        ``-s NAME``.
 * @path: the socket's path, or NULL for the default one (its directory is
 *        created, mode 0700, if missing).
 * @flags: %LUO_CONTROL_THREAD, or 0 to be served through
 *         luo_control_fd() and luo_control_dispatch().
 * @peer_timeout_ms: how long a peer may leave a reply unread before it is
 *         dropped (and logged); 0 for 10,000.  The service never waits for
 *         a peer: replies are sent as the peer reads them.
 */
struct luo_control_opts {
	const char *name;
	const char *path;
	unsigned int flags;
	unsigned int peer_timeout_ms;
};

/**
 * luo_control_start() - serve the control socket
 * @opts: options; @opts->name is required.
 * @ctl: set to the server on success.
 *
 * Call it after luo_init() and, in a new image, before liveupdate_finish():
 * finish closes whatever of the control session was not taken back, and
 * the client that asked for the update would never hear the outcome.
 * Call it once the service serves again: the blackout it reports ends
 * here.  In a new image that came from an update the
 * control session carried over is retrieved: the same listening socket
 * is served again (no connection is ever refused during the update) and
 * the connection that asked for the update gets the outcome.
 *
 * A socket file at the path that nobody listens on (left by a process
 * that died) is replaced; anything else there is never touched.  The
 * check for a live listener does not block, even when that listener's
 * backlog is full.
 *
 * Return: 0; -EINVAL for a bad name or path; -EADDRINUSE if a live
 * process already listens on that path; -ENOTSOCK if something that is
 * not a socket (a regular file, a directory, a symbolic link) is there;
 * -ENODEV before luo_init(); -ENOMEM;
 * other negative errno from socket, bind or thread creation.
 */
int luo_control_start(const struct luo_control_opts *opts,
		      struct luo_control **ctl);

/**
 * luo_control_fd() - the descriptor to poll for readability
 * @ctl: a server started without %LUO_CONTROL_THREAD.
 *
 * Return: a descriptor (owned by the library), or -EINVAL when the server
 * runs its own thread.
 */
int luo_control_fd(const struct luo_control *ctl);

/**
 * luo_control_dispatch() - serve whatever is pending, without blocking
 * @ctl: a server started without %LUO_CONTROL_THREAD.
 *
 * Accepts new connections and runs the commands that have fully arrived.
 * An update command does not return here when it succeeds: the process
 * becomes the new image.
 *
 * Return: 0; -EINVAL when the server runs its own thread.
 */
int luo_control_dispatch(struct luo_control *ctl);

/**
 * luo_control_path() - where the server listens
 * @ctl: a server.
 *
 * Return: the socket's path, valid until luo_control_stop().
 */
const char *luo_control_path(const struct luo_control *ctl);

/**
 * luo_control_stop() - stop serving and remove the socket
 * @ctl: a server, or NULL.
 *
 * Joins the thread if there is one, closes every connection and unlinks
 * the socket path if it is still the socket file this server bound.
 */
void luo_control_stop(struct luo_control *ctl);

#ifdef __cplusplus
}
#endif

#endif /* LUO_CONTROL_H */
