/* SPDX-License-Identifier: MIT */
/*
 * The update transaction: what the old image's side (luo_spawn.c), the new
 * image's side (luo_txn.c), the arena's trial rules (kho_trial.c) and the
 * hooks in the core, the sessions and the control server share.  The
 * protocol is in docs/architecture.md, "Spawn mode and the transaction".
 */
#ifndef LUO_SRC_LUO_TXN_H
#define LUO_SRC_LUO_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <luo/update.h>

#define LUO_TXN_MAGIC 0x4c554f54u /* "LUOT" */

enum luo_txn_type {
	LUO_TXN_HELLO = 1, /* new: luo_init() reached; a = pid */
	LUO_TXN_FILES,	   /* old: fd = carrier; a = inode, b = count */
	LUO_TXN_FILES_OK,  /* new: a = count received */
	LUO_TXN_ADOPT,	   /* old: fd = arena; a = trial ms, b = old pid */
	LUO_TXN_ADOPTED,   /* new: a = 1 if a health probe is registered */
	LUO_TXN_REFUSED,   /* new: err, text */
	LUO_TXN_PING,	   /* old: a = sequence */
	LUO_TXN_PONG,	   /* new: a = sequence */
	LUO_TXN_HEALTH,	   /* new: err = probe result, text */
	LUO_TXN_FINISH,	   /* new: a = 1 to end the trial now */
	LUO_TXN_ROLLBACK,  /* new: a = enum liveupdate_txn_reason, text */
	LUO_TXN_COMMIT,	   /* old: the old image ends; finish */
	LUO_TXN_KEPT, /* new, trial: fd preserved; a = token, text = session */
	LUO_TXN_DROPPED, /* new, trial: unpreserved; a = token, text = session */
	LUO_TXN_FINISHED, /* new: its finish ran after the commit; err */
};

/* One message on the channel (SOCK_SEQPACKET), maybe with one fd. */
struct luo_txn_msg {
	uint32_t magic;
	uint32_t type;
	int32_t err;
	uint32_t flags;
	uint64_t a, b;
	char text[160];
};

/**
 * luo_txn_send() - send one message on the channel
 * @ch: the channel.
 * @type: enum luo_txn_type.
 * @err: an errno for the message, or 0.
 * @a: first argument.
 * @b: second argument.
 * @text: one line for the report, or NULL.
 * @fd: a descriptor to pass with SCM_RIGHTS, or -1.
 *
 * Return: 0; -EPIPE when the peer is gone; another -errno.
 */
int luo_txn_send(int ch, uint32_t type, int err, uint64_t a, uint64_t b,
		 const char *text, int fd);

/**
 * luo_txn_recv() - receive one message
 * @ch: the channel.
 * @m: filled with the message.
 * @fd: set to a descriptor that came with it (FD_CLOEXEC) or -1; NULL
 *      closes any.
 * @timeout_ms: how long to wait; -1 forever.
 *
 * Return: 0; -ETIMEDOUT; -EAGAIN (interrupted, try again); -EPIPE at end
 * of file; -EBADMSG for a message that is not ours.
 */
int luo_txn_recv(int ch, struct luo_txn_msg *m, int *fd, int timeout_ms);

/**
 * luo_txn_child_adopt() - a spawned image's luo_init(): wait for the
 * handover on the channel the environment names
 * @value: the LUO_SPAWN_FD value.
 * @finish: the finish itself, UPDATED -> NORMAL (lifecycle.c): what
 *          liveupdate_finish() does without the commit request; the
 *          transaction's thread calls it once the old image granted the
 *          commit.
 * @env: set to a handover value ("ARENA,-1,0,-1") for the usual adoption.
 * @envlen: size of @env.
 *
 * Sends hello, takes the preserved files ahead into a private table,
 * waits for adopt.  Called with the state write lock held.
 *
 * Return: 0 with @env set; a negative errno if there is no usable
 * channel or the old image went away (luo_init() then starts fresh).
 */
int luo_txn_child_adopt(const char *value, int (*finish)(void), char *env,
			size_t envlen);

/**
 * luo_txn_child_result() - tell the old image how the adoption went
 * @err: 0 adopted (the trial starts), or luo_init()'s error (refused).
 * @why: the refusal's reason, or NULL.
 */
void luo_txn_child_result(int err, const char *why);

/**
 * luo_txn_defer_finish() - liveupdate_finish() in a spawned image
 *
 * Return: 1 if the caller goes on with the finish itself (no transaction,
 * or the commit came back at once); 0 if the commit was asked for and the
 * library's thread finishes when it comes; a negative errno.
 */
int luo_txn_defer_finish(void);

/**
 * luo_txn_rollback_as() - liveupdate_txn_rollback() with its reason
 * @why: %LIVEUPDATE_TXN_REQUESTED, or %LIVEUPDATE_TXN_HEALTH when an
 *       outside probe failed (luoctl --health).
 * @reason: one line for the report, or NULL.
 *
 * Return: as liveupdate_txn_rollback().
 */
int luo_txn_rollback_as(enum liveupdate_txn_reason why, const char *reason);

/* luo_spawn.c: the old image's side. */

/**
 * struct luo_update_steps - the lifecycle's steps a spawn-mode update
 * drives, given by lifecycle.c so that calls go from it down only
 * @prepare: liveupdate_prepare().
 * @freeze_locked: liveupdate_freeze() with the state write lock held; on
 *                 failure it has cancelled.
 * @cancel_locked: liveupdate_cancel() with the state write lock held.
 */
struct luo_update_steps {
	int (*prepare)(void);
	int (*freeze_locked)(void);
	void (*cancel_locked)(void);
};

/**
 * luo_spawn_update() - liveupdate_update() in spawn mode (lifecycle.c
 * checked the options)
 * @o: the options.
 * @r: the report, zeroed by the caller.
 * @steps: the lifecycle's steps.
 *
 * Return: as liveupdate_update().
 */
int luo_spawn_update(const struct liveupdate_update_opts *o,
		     struct liveupdate_update_report *r,
		     const struct luo_update_steps *steps);

/**
 * luo_spawn_handed_over() - this old image committed a spawn-mode update
 *
 * From then on it must not unlink, shut down or cancel anything shared:
 * the new process serves it.
 *
 * Return: true after the commit.
 */
bool luo_spawn_handed_over(void);

/**
 * luo_spawn_running() - a spawn-mode update runs in this (old) image
 *
 * Return: true from liveupdate_update() in spawn mode until its end.
 */
bool luo_spawn_running(void);

/* luo_txn_hooks.c: the service's hooks, read by both sides. */

/**
 * luo_txn_hooks_get() - a copy of the service's hooks
 *
 * Return: what liveupdate_set_txn_hooks() gave last (all NULL if none).
 */
struct liveupdate_txn_hooks luo_txn_hooks_get(void);

/**
 * luo_txn_hooks_health() - run the service's health probe
 *
 * Return: its result (0 healthy, or -errno); 0 if none is registered.
 */
int luo_txn_hooks_health(void);

/**
 * luo_txn_hooks_have_health() - did the service register a health probe
 *
 * Return: true if liveupdate_set_txn_hooks() gave one.
 */
bool luo_txn_hooks_have_health(void);

/* luo_txn_returned.c: the old image's files returned by the trial. */

/**
 * luo_txn_returned_add() - the new image preserved @fd during its trial
 * @session: the session's name there.
 * @token: its token there.
 * @fd: the descriptor received; owned from now on (closed at once if this
 *      image holds the very same file under @token in @session).
 */
void luo_txn_returned_add(const char *session, uint64_t token, int fd);

/**
 * luo_txn_returned_drop() - the new image unpreserved @token of @session
 * during its trial: close what was kept for it
 * @session: the session's name.
 * @token: the token.
 */
void luo_txn_returned_drop(const char *session, uint64_t token);

/**
 * luo_txn_returned_clear() - close every file not taken (after the
 * rollback hook; at the commit)
 *
 * Return: how many were closed.
 */
size_t luo_txn_returned_clear(void);

/**
 * luo_txn_returned_count() - files kept now
 *
 * Return: the count.
 */
size_t luo_txn_returned_count(void);

/* luo_exec_rollback.c: exec mode goes back to the old binary when the
 * new image refuses the handover. */
#define LUO_ROLLBACK_ENV "LUO_ROLLBACK_EXEC"

/**
 * luo_exec_self_args() - keep this image's arguments (luo_init(), every
 * image); its executable is opened at the first prepare, outside the
 * blackout
 */
void luo_exec_self_args(void);

/**
 * luo_exec_self_close() - forget them and close the executable (luo_exit(),
 * or a failed luo_init())
 */
void luo_exec_self_close(void);

/**
 * luo_exec_rollback_prepare() - make the way back ahead, at prepare
 *
 * Opens this image's executable and writes its arguments to a sealed
 * memfd outside the blackout (the open took 10-60 us of luo_init() here,
 * the memfd_create() and its write about 25 us of the exec); a cancel
 * closes both (luo_exec_rollback_inherit(false)).  Does nothing if this
 * image cannot offer a way back or already made it.
 */
void luo_exec_rollback_prepare(void);

/**
 * luo_exec_rollback_var() - the way back, for liveupdate_reboot()
 * @handover: the LUO_HANDOVER_FD value the new image gets.
 *
 * Return: "LUO_ROLLBACK_EXEC=EXE,ARGV,HANDOVER" (the caller frees it), or
 * NULL if this image cannot offer it.
 */
char *luo_exec_rollback_var(const char *handover);

/**
 * luo_exec_rollback_inherit() - let the way back reach the new image
 * @on: true right before execve(); false if it failed or the update was
 *      cancelled: the memfd and the executable are closed (the next
 *      prepare opens them again).
 */
void luo_exec_rollback_inherit(bool on);

/**
 * luo_exec_rollback_save() - new image, before adopting: keep what a
 * refusal needs to go back (duplicates of the handover's descriptors, the
 * arena header)
 * @var: the LUO_ROLLBACK_EXEC value.
 */
void luo_exec_rollback_save(const char *var);

/**
 * luo_exec_rollback_run() - the handover was refused: re-exec the old
 * binary with it, untouched
 * @err: luo_init()'s error, for the message.
 *
 * Does not return on success; returns if it cannot (no way back saved,
 * the same binary, execveat() failed) and luo_init() goes on as before.
 */
void luo_exec_rollback_run(int err);

/**
 * luo_exec_rollback_forget() - adopted (or started fresh): drop the copies
 */
void luo_exec_rollback_forget(void);

#endif
