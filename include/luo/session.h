/* SPDX-License-Identifier: MIT */
/**
 * DOC: sessions, preserved files and File-Lifecycle-Bound objects
 *
 * A session is a named set of file descriptors that survive the live
 * update, each under a u64 token the service chooses, as in the kernel's
 * LUO uAPI.  The old image creates sessions and preserves fds into them;
 * the new image retrieves each session by name, each fd by token, and
 * finishes the session.  A session closed before the reboot is not carried
 * over.
 *
 * Preserving takes the library's own reference to the open file (a
 * duplicate descriptor), so the service may close its fd afterwards.  That
 * reference has FD_CLOEXEC, so no preserved file leaks into children the
 * service starts; it loses FD_CLOEXEC only for the exec of the update and
 * the new image's luo_init() sets it again.  Files nobody retrieves are
 * closed at finish.
 *
 * A file handler knows one kind of file.  The library picks the first
 * handler whose can_preserve() accepts the fd: handlers the service
 * registered, newest first, then the built-in ones (memfd, sockets, pipes
 * and FIFOs, eventfd, timerfd, regular files).
 *
 * An FLB is global state shared by many files of one handler: preserved
 * with the first such file, unpreserved with the last, retrieved once on
 * demand in the new image, finished with the last file there.
 *
 * Error codes follow the kernel uAPI.  Creating, preserving into and
 * closing a session are allowed in NORMAL and UPDATED and return -EBUSY
 * otherwise: preserve before liveupdate_prepare().  Unpreserving is
 * allowed at any time before the exec, as in the kernel, so a connection
 * that closes during an update is simply dropped (see
 * liveupdate_session_unpreserve_fd()).
 *
 * Callbacks.  Every file handler and FLB callback runs with the library's
 * sessions lock held by the calling thread (and the state held stable).
 * From inside one, these calls work: liveupdate_flb_get_outgoing() (the
 * old image: can_preserve, preserve, unpreserve, freeze, unfreeze),
 * liveupdate_flb_get_incoming() (the new image: retrieve, finish),
 * liveupdate_session_name(), liveupdate_session_get_tokens(), the kho_*
 * memory calls, liveupdate_get_state(), liveupdate_get_num() and
 * liveupdate_state_read_enter() where the callback does not run inside a
 * transition.  Every other call of this header (sessions, files, handler
 * and FLB registration) and every transition (prepare, freeze, cancel,
 * reboot, finish, luo_init(), luo_exit()) returns -EDEADLK at once and
 * logs why; none of them waits.
 */
#ifndef LUO_SESSION_H
#define LUO_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <luo/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** LUO_SESSION_MAX_FILES_DEFAULT - files per session unless configured. */
#define LUO_SESSION_MAX_FILES_DEFAULT 65536

struct luo_session;

/**
 * liveupdate_create_session() - create an outgoing session
 * @name: 1 to 63 bytes, NUL terminated within 64 bytes.
 * @session: set to the new session.
 *
 * Return: 0; -EINVAL for a bad name; -EEXIST if an outgoing session has
 * that name; -EBUSY while an update is in progress; -ENOMEM.
 */
int liveupdate_create_session(const char *name, struct luo_session **session);

/**
 * liveupdate_retrieve_session() - take an incoming session, once
 * @name: its name in the old image.
 * @session: set to the session.
 *
 * Return: 0; -ENOENT if the old image had no such session (or this image
 * did not start from a live update, or @name is empty or not NUL
 * terminated within 64 bytes: as in the kernel, no session has such a
 * name); -EINVAL if already retrieved or @session is NULL.
 */
int liveupdate_retrieve_session(const char *name, struct luo_session **session);

/**
 * liveupdate_session_preserve_fd() - carry @fd over the next update
 * @session: an outgoing session.
 * @fd: the file; the library keeps its own reference.
 * @token: the key to retrieve it by, unique within @session.
 *
 * Return: 0; -EBADF if @fd is not open or is an O_PATH descriptor (as in
 * the kernel); -EEXIST if @token is taken;
 * -EBUSY if this open file is already preserved (in any session) or an
 * update is in progress; -ENOENT if no handler can preserve it; -ENOSPC
 * if the session is full or the FLB table is; -EINVAL for an incoming
 * session; a handler's error.
 */
int liveupdate_session_preserve_fd(struct luo_session *session, int fd,
				   uint64_t token);

/**
 * liveupdate_session_unpreserve_fd() - stop carrying a file
 * @session: an outgoing session.
 * @token: the file's token.
 *
 * Allowed in every state until the exec, also from subsystem and device
 * live update callbacks (cancel and freeze included).  The library's
 * reference is closed at once and the token is free again at once (a
 * cancel brings neither back).  In PREPARED the file is left out of the
 * handover; in FROZEN it is already in flight, so its entry is marked
 * closed and the new image closes it on arrival, without listing it.
 * The handler's unpreserve runs (after its unfreeze, if frozen); in
 * FROZEN the handover memory is frozen, so what that callback frees there
 * is released in the new image instead.
 *
 * Return: 0; -ENOENT for an unknown token; -EINVAL for an incoming
 * session; -EBUSY once the exec step has sealed the handover (from a
 * device's reboot callback); -EDEADLK from a file handler or FLB callback.
 */
int liveupdate_session_unpreserve_fd(struct luo_session *session,
				     uint64_t token);

/**
 * liveupdate_session_retrieve_fd() - get a preserved file back
 * @session: a retrieved incoming session.
 * @token: the file's token in the old image.
 * @fd: set to the descriptor, now owned by the caller (FD_CLOEXEC set).
 *
 * The retrieval hands over the received descriptor itself; retrieving the
 * same token again is refused.  The descriptor is checked to be the very file that was preserved
 * (type, device, inode, and the handler's own check); a file found closed
 * or replaced is refused.  A failed retrieval fails the same way every
 * later time.
 *
 * Return: 0; -ENOENT for an unknown token; -EINVAL for an outgoing or
 * finished session; -ESTALE if the descriptor is no longer that file;
 * -EALREADY if retrieved before (keep that descriptor); -ENXIO
 * if no handler with the file's compatible is registered (register it and
 * retry); a handler's error.
 */
int liveupdate_session_retrieve_fd(struct luo_session *session, uint64_t token,
				   int *fd);

/**
 * struct liveupdate_session_file - one file liveupdate_session_retrieve_all()
 * handed out
 * @token: the file's token in the old image.
 * @fd: the descriptor, now owned by the caller (FD_CLOEXEC set); -1 if @err.
 * @err: 0, or why this file was not retrieved, as
 *       liveupdate_session_retrieve_fd() says it: -ESTALE (refused, and
 *       refused again every time), -ENXIO (no handler registered yet:
 *       register it and call again), or a handler's error.
 */
struct liveupdate_session_file {
	uint64_t token;
	int fd;
	int err;
};

/**
 * liveupdate_session_retrieve_all() - get every preserved file back at once
 * @session: a retrieved incoming session.
 * @files: filled with one entry per file not retrieved before, in the
 *         order the handover lists them; may be NULL if @max is 0.
 * @max: room in @files; liveupdate_session_get_tokens() with max 0 says
 *       how many files the session has, which is always enough.
 *
 * The same as liveupdate_session_retrieve_fd() for each of those files,
 * with the same checks, in one call: a service with 10,000 connections
 * makes one call instead of 10,000 lookups by token.  Files retrieved
 * before (by either call) are left out; a later
 * liveupdate_session_retrieve_fd() of a file handed out here fails with
 * -EALREADY.  A file that fails says so in its entry and the others are
 * still handed out.  While no registered handler has a retrieve
 * callback (the built-in ones have none) the files are handed out
 * straight from the handover's table, without the per-file bookkeeping
 * a lookup by token needs.
 *
 * Return: the number of entries written (0 if every file was retrieved
 * before), counting failed ones; -EINVAL for a NULL @session, a NULL
 * @files with a non-zero @max, or a session that is outgoing, not
 * retrieved or finished; -ENOSPC if more than @max files wait (none was
 * retrieved); -ENOMEM; -EDEADLK from a file handler or FLB callback.
 */
int liveupdate_session_retrieve_all(struct luo_session *session,
				    struct liveupdate_session_file *files,
				    size_t max);

/**
 * liveupdate_session_finish() - done with an incoming session
 * @session: a retrieved incoming session; invalid after success.
 *
 * Every file gets its handler's finish; files never retrieved are closed.
 *
 * Return: 0; -EINVAL for an outgoing session.
 */
int liveupdate_session_finish(struct luo_session *session);

/**
 * liveupdate_session_close() - destroy an outgoing session
 * @session: an outgoing session; invalid after success.
 *
 * Its files are unpreserved; it is not carried over.
 *
 * Return: 0; -EBUSY while an update is in progress; -EINVAL for an
 * incoming session (finish it instead).
 */
int liveupdate_session_close(struct luo_session *session);

/**
 * liveupdate_session_name() - a session's name
 * @session: any session.
 *
 * Return: the name.
 */
const char *liveupdate_session_name(const struct luo_session *session);

/**
 * liveupdate_session_get_tokens() - the tokens of a session's files
 * @session: a retrieved, unfinished incoming session, or an outgoing one.
 * @tokens: filled with up to @max tokens; may be NULL if @max is 0.
 * @max: room in @tokens.
 *
 * For an incoming session these are all the files the old image carried
 * in it, retrieved or not, in the order the handover lists them; call
 * with @max 0 first to learn how many there are.
 *
 * Return: the number of files in @session (if more than @max, only @max
 * tokens were written); -EINVAL for a NULL @session, a NULL @tokens with
 * a non-zero @max, or an incoming session not retrieved or finished.
 */
int liveupdate_session_get_tokens(struct luo_session *session, uint64_t *tokens,
				  size_t max);

struct liveupdate_file_handler;
struct liveupdate_flb;

/**
 * struct liveupdate_file_op_args - what a file handler callback works on
 * @handler: the handler.
 * @fd: preserve, freeze, unfreeze, unpreserve: the library's descriptor of
 *      the file; retrieve: the inherited descriptor (the handler may
 *      replace it); finish: the descriptor if it was never retrieved and
 *      still is the file, else -1.
 * @serialized_data: preserve sets it (and freeze may change it); the other
 *                   callbacks, and the new image, get it back.
 * @private_data: the handler's own pointer for this file in this image.
 * @retrieved: finish: whether the service retrieved the file.
 */
struct liveupdate_file_op_args {
	struct liveupdate_file_handler *handler;
	int fd;
	uint64_t serialized_data;
	void *private_data;
	bool retrieved;
};

/**
 * struct liveupdate_file_ops - a file handler's callbacks
 *
 * Each runs with the sessions lock held; see the DOC section above for
 * the calls allowed inside (in short: the FLB getters, the kho_* calls,
 * liveupdate_session_name() and liveupdate_session_get_tokens()).
 *
 * @can_preserve: required; whether this handler knows @fd's kind of file.
 * @preserve: required; save what the new image needs, into
 *            @args->serialized_data (typically a kho offset).
 * @unpreserve: optional; undo preserve (unpreserve, session close).
 * @freeze: optional; last changes inside the blackout.
 * @unfreeze: optional; undo freeze when the update is cancelled.
 * @retrieve: optional; in the new image, check and restore the file.
 * @finish: optional; in the new image, clean up.  If the file was never
 *          retrieved the library closes @args->fd after this returns.
 */
struct liveupdate_file_ops {
	bool (*can_preserve)(struct liveupdate_file_handler *handler, int fd);
	int (*preserve)(struct liveupdate_file_op_args *args);
	void (*unpreserve)(struct liveupdate_file_op_args *args);
	int (*freeze)(struct liveupdate_file_op_args *args);
	void (*unfreeze)(struct liveupdate_file_op_args *args);
	int (*retrieve)(struct liveupdate_file_op_args *args);
	void (*finish)(struct liveupdate_file_op_args *args);
};

/**
 * struct liveupdate_file_handler - a kind of preservable file
 * @ops: callbacks.
 * @compatible: unique name with version, 1 to 47 bytes, e.g. "memfd-v1";
 *              it travels with every file so the new image finds the
 *              handler again.
 *
 * The remaining fields belong to the library; zero them.
 */
struct liveupdate_file_handler {
	const struct liveupdate_file_ops *ops;
	const char *compatible;
	/* private: */
	struct liveupdate_file_handler *next;
	struct luo_flb_link *flbs;
	int builtin;
};

/**
 * liveupdate_register_file_handler() - add a kind of preservable file
 * @handler: the handler; must stay valid while registered.
 *
 * Return: 0; -EINVAL for bad ops or compatible (also the reserved
 * "luo-closed-v1"); -EEXIST if the compatible is taken; -EBUSY while an update is in progress; -ENODEV before
 * luo_init().
 */
int liveupdate_register_file_handler(struct liveupdate_file_handler *handler);

/**
 * liveupdate_unregister_file_handler() - remove a handler
 * @handler: a registered handler without preserved files.
 *
 * Return: 0; -ENOENT if not registered; -EBUSY if it has preserved files
 * or an update is in progress.
 */
int liveupdate_unregister_file_handler(struct liveupdate_file_handler *handler);

/**
 * struct liveupdate_flb_op_args - what an FLB callback works on
 * @flb: the FLB.
 * @data: preserve sets it; unpreserve, retrieve get it.
 * @obj: preserve and retrieve set the live object; unpreserve and finish
 *       get it.
 */
struct liveupdate_flb_op_args {
	struct liveupdate_flb *flb;
	uint64_t data;
	void *obj;
};

/**
 * struct liveupdate_flb_ops - an FLB's callbacks
 *
 * They run inside the file handler callback or library call that causes
 * them, with the same calls allowed (see the DOC section above).
 *
 * @preserve: required; with the first dependent file preserved.
 * @unpreserve: optional; with the last dependent file unpreserved.
 * @retrieve: required; in the new image, once, when first asked for (or
 *            at the last file's finish if nobody asked).
 * @finish: required; in the new image, with the last file finished.
 */
struct liveupdate_flb_ops {
	int (*preserve)(struct liveupdate_flb_op_args *args);
	void (*unpreserve)(struct liveupdate_flb_op_args *args);
	int (*retrieve)(struct liveupdate_flb_op_args *args);
	void (*finish)(struct liveupdate_flb_op_args *args);
};

/**
 * struct liveupdate_flb - global state bound to the life of some files
 * @ops: callbacks.
 * @compatible: unique name with version, 1 to 47 bytes.
 *
 * The remaining fields belong to the library; zero them.
 */
struct liveupdate_flb {
	const struct liveupdate_flb_ops *ops;
	const char *compatible;
	/* private: */
	struct {
		uint64_t count, data;
		void *obj;
	} outgoing;
	struct {
		uint64_t count, data;
		void *obj;
		bool found, retrieved, finished;
	} incoming;
	struct liveupdate_flb *next;
	int users;
};

/**
 * liveupdate_register_flb() - declare that @handler's files need @flb
 * @handler: a registered file handler without preserved files.
 * @flb: the FLB; may be shared by several handlers.
 *
 * Return: 0; -EINVAL for bad ops or compatible; -EEXIST if already
 * declared for @handler, or another FLB has the compatible; -EBUSY while
 * updating or if @handler has preserved files; -ENOMEM.
 */
int liveupdate_register_flb(struct liveupdate_file_handler *handler,
			    struct liveupdate_flb *flb);

/**
 * liveupdate_unregister_flb() - undo liveupdate_register_flb()
 * @handler: the handler.
 * @flb: the FLB.
 *
 * Return: 0; -ENOENT if not declared; -EBUSY if @handler has files.
 */
int liveupdate_unregister_flb(struct liveupdate_file_handler *handler,
			      struct liveupdate_flb *flb);

/**
 * liveupdate_flb_get_incoming() - the FLB's object from the old image
 * @flb: a registered FLB.
 * @objp: set to the object its retrieve callback produced.
 *
 * Retrieves it on the first call.  Allowed inside file handler and FLB
 * callbacks, e.g. from a handler's retrieve.
 *
 * Return: 0; -ENODATA if nothing came for it or it was finished; -ENOENT
 * if the old image did not preserve it; the retrieve callback's error.
 */
int liveupdate_flb_get_incoming(struct liveupdate_flb *flb, void **objp);

/**
 * liveupdate_flb_get_outgoing() - the FLB's object being preserved
 * @flb: a registered FLB.
 * @objp: set to the object its preserve callback produced.
 *
 * Allowed inside file handler and FLB callbacks, e.g. from a handler's
 * preserve (the FLB is preserved before the file's own preserve runs).
 *
 * Return: 0; -ENOENT if no dependent file is preserved.
 */
int liveupdate_flb_get_outgoing(struct liveupdate_flb *flb, void **objp);

#ifdef __cplusplus
}
#endif

#endif /* LUO_SESSION_H */
