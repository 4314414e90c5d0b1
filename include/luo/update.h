/* SPDX-License-Identifier: MIT */
/**
 * DOC: the update as a transaction
 *
 * liveupdate_update() runs a whole update in one of two modes:
 *
 * - %LIVEUPDATE_MODE_EXEC: prepare, freeze and liveupdate_reboot(): the
 *   service's own PID execs the new binary (the kernel's model).
 * - %LIVEUPDATE_MODE_SPAWN: the new binary starts as a child while the old
 *   image still serves (pre-launch); at freeze it adopts the same arena
 *   and the preserved files; the old image stays resident and frozen until
 *   the new one commits, and on any failure kills it, cancels and serves
 *   again with everything it had.
 *
 * The new image's code is the same in both modes: luo_init() adopts from
 * either.  The old image's must stop serving at freeze (a subsystem's
 * freeze callback) and may resume at cancel: in exec mode execve() ends
 * its threads, in spawn mode nothing does, and from the adoption on the
 * new image serves the same connections.  In spawn mode liveupdate_finish() is the new image's request to
 * commit; with a trial the commit waits until the new image stayed alive
 * and healthy for the trial.  See docs/architecture.md, "Spawn mode and
 * the transaction".
 */
#ifndef LUO_UPDATE_H
#define LUO_UPDATE_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** LUO_SPAWN_ENV - names the transaction channel in a spawned new image. */
#define LUO_SPAWN_ENV "LUO_SPAWN_FD"

/**
 * enum liveupdate_mode - how the new binary takes over
 * @LIVEUPDATE_MODE_EXEC: execve() in the same process.
 * @LIVEUPDATE_MODE_SPAWN: a new child process; the old one stays until
 *                         commit.
 */
enum liveupdate_mode {
	LIVEUPDATE_MODE_EXEC = 0,
	LIVEUPDATE_MODE_SPAWN = 1,
};

/**
 * LIVEUPDATE_UPDATE_EXTERNAL_PROBE - someone outside (luoctl --health)
 * probes the new image during the trial and rolls back on failure, so a
 * trial is allowed without a registered health callback.
 */
#define LIVEUPDATE_UPDATE_EXTERNAL_PROBE (1U << 0)

/** LIVEUPDATE_DEADLINE_DEFAULT_MS - spawn mode's default deadline. */
#define LIVEUPDATE_DEADLINE_DEFAULT_MS 10000

/**
 * struct liveupdate_update_opts - one update
 * @mode: exec or spawn.
 * @path: the new binary, an absolute path.
 * @argv: its arguments, NULL terminated, argv[0] included.
 * @envp: its environment, or NULL for the current one.
 * @trial_ms: spawn mode: after adopting, the new image must stay alive
 *            (and its health probe pass) this long before the commit; 0
 *            commits as soon as it calls liveupdate_finish().
 * @deadline_ms: spawn mode: the new image must reach luo_init() within
 *               this, adopt within this after the freeze, and ask to
 *               commit (liveupdate_finish()) within this after its trial;
 *               0 means %LIVEUPDATE_DEADLINE_DEFAULT_MS.
 * @flags: LIVEUPDATE_UPDATE_* flags.
 * @progress: optional; called in the old image at each stage ("prepare",
 *            "spawn", "files", "adopted", "commit") with its duration in
 *            ns.  From "adopted" on the state lock is held: state changes
 *            from it give -EDEADLK.
 * @arg: passed to @progress.
 */
struct liveupdate_update_opts {
	enum liveupdate_mode mode;
	const char *path;
	char *const *argv;
	char *const *envp;
	uint64_t trial_ms;
	uint64_t deadline_ms;
	unsigned int flags;
	void (*progress)(const char *stage, uint64_t ns, void *arg);
	void *arg;
};

/**
 * enum liveupdate_txn_reason - why a spawn-mode update ended
 * @LIVEUPDATE_TXN_COMMITTED: it did not roll back.
 * @LIVEUPDATE_TXN_EXITED: the new image exited (see @exit_status).
 * @LIVEUPDATE_TXN_KILLED: the new image died by a signal (@term_signal).
 * @LIVEUPDATE_TXN_DEADLINE: it did not reach luo_init(), adopt, or ask
 *                           to commit within the deadline.
 * @LIVEUPDATE_TXN_REFUSED: its luo_init() refused the handover.
 * @LIVEUPDATE_TXN_LIVENESS: it stopped answering the liveness check.
 * @LIVEUPDATE_TXN_HEALTH: its health probe failed.
 * @LIVEUPDATE_TXN_REQUESTED: the service or the operator asked.
 * @LIVEUPDATE_TXN_CHANNEL: the channel broke.
 * @LIVEUPDATE_TXN_FAILED: the update failed in the old image (prepare,
 *                         freeze, start of the new binary).
 */
enum liveupdate_txn_reason {
	LIVEUPDATE_TXN_COMMITTED = 0,
	LIVEUPDATE_TXN_EXITED,
	LIVEUPDATE_TXN_KILLED,
	LIVEUPDATE_TXN_DEADLINE,
	LIVEUPDATE_TXN_REFUSED,
	LIVEUPDATE_TXN_LIVENESS,
	LIVEUPDATE_TXN_HEALTH,
	LIVEUPDATE_TXN_REQUESTED,
	LIVEUPDATE_TXN_CHANNEL,
	LIVEUPDATE_TXN_FAILED,
};

/**
 * struct liveupdate_update_report - what happened to a spawn-mode update
 * @reason: committed, or why it rolled back.
 * @error: 0, or the negative errno that goes with @reason.
 * @text: one line for people: the reason with its details.
 * @new_pid: the new image's PID (0 if it never started).
 * @exit_status: its exit status, or -1.
 * @term_signal: the signal that ended it, or 0.
 * @ran_ns: how long the new image ran, start to end (or to commit).
 * @blackout_ns: freeze to adopted; 0 if it never adopted.
 * @rollback_ns: from the failure seen to the old image serving again.
 */
struct liveupdate_update_report {
	enum liveupdate_txn_reason reason;
	int error;
	char text[192];
	pid_t new_pid;
	int exit_status;
	int term_signal;
	uint64_t ran_ns;
	uint64_t blackout_ns;
	uint64_t rollback_ns;
};

/**
 * liveupdate_update() - run a live update in exec or spawn mode
 * @opts: the update.
 * @report: spawn mode: filled with the outcome; may be NULL.
 *
 * From NORMAL, prepares first; from PREPARED goes on from there.
 *
 * Exec mode does what liveupdate_reboot() does and returns only on
 * failure, with the update cancelled.
 *
 * Spawn mode blocks until the transaction ends.  Returns 0 once the new
 * image committed and has run its finish (it is NORMAL, and takes the
 * next update; the wait is bounded by the deadline, and a new image that
 * ends or fails its finish then is logged and named in @report's text):
 * the old image has handed over everything and must end
 * now without touching preserved state or shared descriptors (return
 * from main() or _exit(0); do not shutdown() sockets or unlink control
 * sockets: the new process serves them).  On a rollback the new process
 * group was killed, every participant was cancelled once in reverse order,
 * the state is NORMAL and the service serves on with everything it had.
 *
 * Must not be called from a live update callback (-EDEADLK).
 *
 * Return: 0 committed (spawn); -ECANCELED rolled back (@report says why);
 * -EINVAL for bad options or the wrong state; -EBUSY if a spawn-mode
 * update is already running; -EDEADLK from a callback; otherwise the error
 * of prepare, freeze or of starting the new binary (state NORMAL).
 */
int liveupdate_update(const struct liveupdate_update_opts *opts,
		      struct liveupdate_update_report *report);

/**
 * struct liveupdate_txn_hooks - the service's part in the transaction
 * @health: new image, during a trial: return 0 if healthy, else a
 *          negative errno (the update rolls back).  Runs on a library
 *          thread, with no library lock held, every tenth of the trial
 *          (at least every second, at most every 50 ms); it must return
 *          quickly.  Calling liveupdate_finish(), liveupdate_txn_commit()
 *          or liveupdate_txn_rollback() from it gives -EDEADLK.
 * @rollback: old image, after a rollback: the participants were
 *            cancelled, the state is NORMAL.  What the new image wrote
 *            into handover memory during its trial is still there:
 *            re-validate it or discard it here.  The files the new image
 *            preserved in its trial and this image does not hold (the
 *            connections it accepted) are offered here:
 *            liveupdate_txn_returned_take(); those not taken are closed
 *            when it returns.  Runs with the state lock held, so state
 *            changes from it give -EDEADLK (liveupdate_session_preserve_fd()
 *            included: preserve what was taken once
 *            liveupdate_update() returned).
 * @committed: old image, at the commit, before liveupdate_update()
 *             returns 0: tell a supervisor the new main PID.  Same lock
 *             rule as @rollback.
 * @arg: passed to every hook.
 */
struct liveupdate_txn_hooks {
	int (*health)(void *arg);
	void (*rollback)(const struct liveupdate_update_report *r, void *arg);
	void (*committed)(pid_t new_pid, void *arg);
	void *arg;
};

/**
 * liveupdate_txn_returned_take() - take a file the rolled-back new image
 * had preserved
 * @session: the name of the session the new image preserved it in.
 * @token: its token there.
 * @fd: set to the descriptor; the caller owns it (not preserved here).
 *
 * Old image, from the rollback hook (&struct liveupdate_txn_hooks): every
 * file the new image preserved during its trial (sent to this image as it
 * preserved it) that this image does not hold itself under the same
 * session and token, less those the new image unpreserved again: the
 * connections it accepted from the shared listener, for instance.  The
 * service serves them again with what the new image left in handover
 * memory for them, and preserves them itself once liveupdate_update()
 * returned.  What the hook does not take is closed when it returns.
 *
 * Return: 0; -ENOENT if there is no such file (or it was taken, or the
 * hook has returned); -EINVAL for a NULL argument.
 */
int liveupdate_txn_returned_take(const char *session, uint64_t token, int *fd);

/**
 * liveupdate_txn_returned_foreach() - list the files a rolled-back new
 * image had preserved
 * @fn: called for each with its session's name and token; it may take the
 *      file (liveupdate_txn_returned_take()); a non-zero return stops.
 * @arg: passed to @fn.
 *
 * Old image, from the rollback hook; see liveupdate_txn_returned_take().
 *
 * Return: the first non-zero return of @fn, or 0; -EINVAL without @fn;
 * -ENOMEM.
 */
int liveupdate_txn_returned_foreach(int (*fn)(const char *session,
					      uint64_t token, void *arg),
				    void *arg);

/**
 * liveupdate_set_txn_hooks() - register the transaction hooks
 * @hooks: copied; NULL removes them.
 *
 * Return: 0.
 */
int liveupdate_set_txn_hooks(const struct liveupdate_txn_hooks *hooks);

/**
 * liveupdate_txn_rollback() - a spawned image under trial gives up
 * @reason: one line for the report, or NULL.
 *
 * Asks the old image to roll back: it kills this process and serves
 * again.  Returns at once; the end comes with SIGKILL.
 *
 * Return: 0; -ENOENT if this image is not a spawned image before its
 * commit; -EDEADLK from the health callback.
 */
int liveupdate_txn_rollback(const char *reason);

/**
 * liveupdate_txn_commit() - end the trial now and commit
 *
 * In a spawned image under trial (e.g. the operator's 'luoctl commit'):
 * commit without waiting for the rest of the trial.  The finish runs once
 * the old image agreed, from the library's thread.
 *
 * Return: 0; -ENOENT if no trial is running; -EDEADLK from the health
 * callback.
 */
int liveupdate_txn_commit(void);

/**
 * struct liveupdate_txn_status - a trial in progress, seen from the new
 * image
 * @old_pid: the old image, resident and frozen.
 * @new_pid: this process.
 * @trial_ms: the trial asked for.
 * @elapsed_ms: since adopting.
 * @health: last probe result: 0 healthy, 1 none yet, or a negative errno.
 * @finish_requested: liveupdate_finish() was called.
 */
struct liveupdate_txn_status {
	pid_t old_pid;
	pid_t new_pid;
	uint64_t trial_ms;
	uint64_t elapsed_ms;
	int health;
	int finish_requested;
};

/**
 * liveupdate_txn_get_status() - is this a spawned image before its commit
 * @st: filled on success.
 *
 * Return: 0; -ENOENT if no transaction is open in this image.
 */
int liveupdate_txn_get_status(struct liveupdate_txn_status *st);

/**
 * liveupdate_txn_reason_name() - a reason's name, for messages and JSON
 * @r: a reason.
 *
 * Return: "committed", "exited", "killed", "deadline", "refused",
 * "liveness", "health", "requested", "channel" or "failed".
 */
const char *liveupdate_txn_reason_name(enum liveupdate_txn_reason r);

#ifdef __cplusplus
}
#endif

#endif /* LUO_UPDATE_H */
