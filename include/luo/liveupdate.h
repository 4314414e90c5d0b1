/* SPDX-License-Identifier: MIT */
/**
 * DOC: live update orchestration
 *
 * The life of a live update, as in the kernel's Live Update Orchestrator::
 *
 *   NORMAL --prepare--> PREPARED --freeze--> FROZEN --reboot(exec)-->
 *          [new image] UPDATED --finish--> NORMAL
 *
 * liveupdate_cancel() returns from PREPARED or FROZEN to NORMAL.  Every
 * participant whose prepare succeeded is told cancel exactly once, in the
 * reverse order of preparation; the same happens on its own when a
 * participant refuses freeze or when the exec fails.  prepare runs while
 * the service still serves; freeze and the exec are the blackout.
 *
 * All functions return 0 or a negative errno, log one line that says what
 * went wrong, and are thread safe.  Callbacks run with the state write
 * lock held: they must not call back into state changes or registration.
 */
#ifndef LUO_LIVEUPDATE_H
#define LUO_LIVEUPDATE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * enum liveupdate_state - where the service is in the live update cycle
 * @LIVEUPDATE_STATE_UNDEFINED: luo_init() has not run.
 * @LIVEUPDATE_STATE_NORMAL: serving; no update in progress.
 * @LIVEUPDATE_STATE_PREPARED: participants saved their state; still serving.
 * @LIVEUPDATE_STATE_FROZEN: blackout; the next step is the exec.
 * @LIVEUPDATE_STATE_UPDATED: new image, started from a live update, until
 *                            liveupdate_finish().
 */
enum liveupdate_state {
	LIVEUPDATE_STATE_UNDEFINED = 0,
	LIVEUPDATE_STATE_NORMAL = 1,
	LIVEUPDATE_STATE_PREPARED = 2,
	LIVEUPDATE_STATE_FROZEN = 3,
	LIVEUPDATE_STATE_UPDATED = 4,
};

/* luo_init() flags. */
/** LUO_INIT_HUGETLB - back a new arena with hugetlbfs pages (MFD_HUGETLB). */
#define LUO_INIT_HUGETLB (1U << 0)
/** LUO_INIT_THP - ask for shmem transparent huge pages (MADV_HUGEPAGE). */
#define LUO_INIT_THP (1U << 1)
/** LUO_INIT_SYNC_TEARDOWN - let execve() unmap the old image inline. */
#define LUO_INIT_SYNC_TEARDOWN (1U << 2)
/** LUO_INIT_IGNORE_HANDOVER - discard any incoming handover, start fresh. */
#define LUO_INIT_IGNORE_HANDOVER (1U << 3)
/**
 * LUO_INIT_TRUST_CARRIER - retrieve preserved files without the per-file
 * identity check (one fstat() each, most of the blackout a preserved
 * descriptor adds).  Identity then rests on the kernel's SCM_RIGHTS
 * guarantee, the verified carrier and the check every prepare makes in
 * the old image; a descriptor this image clobbers between luo_init() and
 * retrieval is no longer caught.  See docs/preserved-files.md.
 */
#define LUO_INIT_TRUST_CARRIER (1U << 4)
/**
 * LUO_INIT_EXEC_INHERIT - in exec mode, let the preserved files cross
 * execve() as inherited descriptors instead of in flight on the carrier:
 * nothing per file is left in the blackout.  At prepare the library's
 * references move to one contiguous range of descriptors, without
 * FD_CLOEXEC, under a sentinel socket; the new image's luo_init()
 * checks the sentinel and the range and sets FD_CLOEXEC on all of it with
 * one close_range().  The service promises two things: its start-up
 * before luo_init() closes or replaces no descriptor it did not open (a
 * close_range(3, ~0U, 0) loses every file: they are refused with
 * -ESTALE), and it starts no program while an update is prepared (every
 * preserved file lacks FD_CLOEXEC from prepare to the exec or the
 * cancel).  Spawn mode uses the carrier all the same.  Also set by
 * %LUO_EXEC_INHERIT_ENV=1.  See docs/preserved-files.md.
 */
#define LUO_INIT_EXEC_INHERIT (1U << 5)
/** LUO_EXEC_INHERIT_ENV - "1" sets %LUO_INIT_EXEC_INHERIT at luo_init(). */
#define LUO_EXEC_INHERIT_ENV "LUO_EXEC_INHERIT"

/**
 * struct luo_init_opts - options for luo_init()
 * @flags: LUO_INIT_* flags.
 * @arena_max: address space reserved for the arena, in bytes; 0 means
 *             64 GiB.  An incoming arena larger than this is still mapped
 *             whole.
 * @session_max_files: files one session may hold; 0 means
 *                     %LUO_SESSION_MAX_FILES_DEFAULT.
 *
 * By default the old image's address space is torn down after the new
 * image is up (see docs/architecture.md, "Blackout"), by a helper child
 * that shares it, started by liveupdate_prepare() and holding none of the
 * service's descriptors; %LUO_INIT_SYNC_TEARDOWN turns that off.
 */
struct luo_init_opts {
	unsigned int flags;
	uint64_t arena_max;
	uint32_t session_max_files;
};

/**
 * luo_init() - start the library; adopt an incoming handover if there is one
 * @opts: options, or NULL for the defaults.
 *
 * If the environment names a handover (%LUO_HANDOVER_ENV), it is checked
 * completely before anything is used; on success the state is UPDATED,
 * otherwise NORMAL with a fresh arena.  The variable is removed from the
 * environment either way.
 *
 * Return: 0; -EALREADY if already initialised; -EBADF if the variable does
 * not name an open memfd; -EBADMSG for a corrupt or truncated handover;
 * -EPROTONOSUPPORT for an incompatible one; -ENOMEM.  After a refusal the
 * handover is discarded and the library stays uninitialised: call
 * luo_init() again to start fresh, or exit.
 */
int luo_init(const struct luo_init_opts *opts);

/**
 * luo_exit() - stop the library and release the arena
 *
 * All handover memory is lost.  Registered subsystems are forgotten.
 *
 * Return: 0; -EBUSY in PREPARED or FROZEN (cancel first).
 */
int luo_exit(void);

/**
 * liveupdate_prepare() - NORMAL -> PREPARED
 *
 * Calls every participant's prepare, in registration order, while the
 * service keeps serving.  If one fails, those already prepared are
 * cancelled in reverse order and its error is returned.
 *
 * Return: 0; -EINVAL if not in NORMAL; a participant's error.
 */
int liveupdate_prepare(void);

/**
 * liveupdate_freeze() - PREPARED -> FROZEN, the start of the blackout
 *
 * Calls every participant's freeze.  If one fails, every participant is
 * cancelled (reverse order), the state goes back to NORMAL and its error
 * is returned.
 *
 * Return: 0; -EINVAL if not in PREPARED; a participant's error.
 */
int liveupdate_freeze(void);

/**
 * liveupdate_cancel() - PREPARED or FROZEN -> NORMAL
 *
 * Return: 0; -EINVAL in any other state.
 */
int liveupdate_cancel(void);

/**
 * liveupdate_reboot() - exec the new image, handing everything over
 * @path: the program to execute.
 * @argv: its argument vector, NULL terminated.
 * @envp: its environment, or NULL for the current one.  %LUO_HANDOVER_ENV
 *        is set in a copy; the caller's array is not changed.
 *
 * From PREPARED, freeze runs first.  On success this does not return: the
 * same process continues as @path.  Before the devices that are not
 * preserved are shut down, everything execve() would refuse is checked:
 * the file, its format (an ELF executable for this machine or a "#!"
 * line), its interpreter (dynamic loader or "#!" program) and the size of
 * @argv and the environment.  Such a failure cancels every participant,
 * the state is NORMAL again, the service keeps everything it had and the
 * error is returned.  Only an exec failure no check can foresee (the file
 * replaced meanwhile, no memory) comes after that shutdown: those devices
 * stay shut down (a warning says so), the rest is as above.
 *
 * Return: only on failure: -EINVAL if not PREPARED or FROZEN or for a NULL
 * @path or @argv; a freeze error; the execve() error (-ENOENT, -EACCES,
 * -ENOEXEC, -E2BIG, -ELOOP, ...), found by the check or by execve().
 */
int liveupdate_reboot(const char *path, char *const argv[], char *const envp[]);

/**
 * liveupdate_finish() - UPDATED -> NORMAL, after the new image took over
 *
 * Calls finish on every subsystem that had incoming data, warns about
 * incoming data nobody registered for, releases incoming handover memory
 * nobody restored, and lets the old image's address space go.
 *
 * In an image started in spawn mode this is the request to commit (see
 * include/luo/update.h): without a trial the old image agrees at once and
 * the finish runs before this returns; with a trial this returns 0 at
 * once and the library's thread runs the finish when the trial passed.
 *
 * Return: 0; -EINVAL if not in UPDATED.
 */
int liveupdate_finish(void);

/**
 * liveupdate_get_state() - the current state
 *
 * Return: the state; %LIVEUPDATE_STATE_UNDEFINED before luo_init().
 */
enum liveupdate_state liveupdate_get_state(void);

/**
 * liveupdate_state_name() - a state's name, for messages
 * @state: a state.
 *
 * Return: "normal", "prepared", "frozen", "updated" or "undefined".
 */
const char *liveupdate_state_name(enum liveupdate_state state);

/**
 * liveupdate_get_num() - number of successful live updates so far
 *
 * Counts every update this service went through since its first image
 * started: 0 in the first image, 1 after the first update, and so on.
 *
 * Return: the counter.
 */
uint64_t liveupdate_get_num(void);

/**
 * struct liveupdate_timing - when the last live update happened
 * @prepare_ns: the old image started liveupdate_prepare().
 * @freeze_ns: the old image started freezing: the blackout began.
 * @exec_ns: the old image was about to execve(): stamped just before the
 *           handover is sealed (it must be inside the checksum), so a
 *           fraction of a millisecond before the call itself.
 * @adopted_ns: this image's luo_init() had checked and adopted everything.
 *
 * All CLOCK_MONOTONIC nanoseconds, comparable across the exec.
 */
struct liveupdate_timing {
	uint64_t prepare_ns;
	uint64_t freeze_ns;
	uint64_t exec_ns;
	uint64_t adopted_ns;
};

/**
 * liveupdate_get_timing() - timestamps of the update this image came from
 * @t: filled on success.
 *
 * Return: 0; -ENODATA if this image did not start from a live update.
 */
int liveupdate_get_timing(struct liveupdate_timing *t);

/**
 * liveupdate_state_read_enter() - hold the state stable
 *
 * Takes the state lock for reading: no transition can start until
 * liveupdate_state_read_exit().  Use it around work that must not race
 * with an update, e.g. preserving an object only in NORMAL.  It nests:
 * a thread that holds it may call it again, and may call the library
 * (which holds it too), without waiting behind a queued transition; only
 * its last liveupdate_state_read_exit() releases it.  A transition
 * started by a thread that holds it returns -EDEADLK.
 *
 * Return: 0; -EDEADLK when called from a subsystem's or device's live
 * update callback (the transition holds the lock for writing).
 */
int liveupdate_state_read_enter(void);

/**
 * liveupdate_state_read_exit() - release liveupdate_state_read_enter()
 */
void liveupdate_state_read_exit(void);

struct liveupdate_subsystem;

/**
 * struct liveupdate_subsystem_ops - a subsystem's live update callbacks
 *
 * prepare, freeze, cancel and finish run inside the transition, which
 * holds the state lock for writing.  From them these work: the kho_*
 * calls, the getters (state, number, timing, subsystem data),
 * liveupdate_session_unpreserve_fd() (cancel and freeze included), the
 * incoming session calls (retrieve a session or fd, finish a session,
 * list tokens) and liveupdate_session_name(); everything else
 * (transitions, liveupdate_state_read_enter(), registration of anything,
 * creating, preserving into or closing a session, device calls) returns
 * -EDEADLK at once and logs why.  boot runs inside
 * liveupdate_register_subsystem() with the state held for reading: every
 * call but a transition works there.
 *
 * @prepare: optional; save state while still serving.  May store a u64
 *           (typically a kho offset) in *@data.  Return 0 or -errno.
 * @freeze: optional; last changes inside the blackout; may update *@data.
 * @cancel: optional; undo prepare/freeze.  Gets the data they set.
 * @boot: optional; in the new image, called at registration with the
 *        data the old image left, if there was any.
 * @finish: optional; in the new image, at liveupdate_finish(), with the
 *          same data.  Clean up what is no longer needed.
 */
struct liveupdate_subsystem_ops {
	int (*prepare)(struct liveupdate_subsystem *h, uint64_t *data);
	int (*freeze)(struct liveupdate_subsystem *h, uint64_t *data);
	void (*cancel)(struct liveupdate_subsystem *h, uint64_t data);
	void (*boot)(struct liveupdate_subsystem *h, uint64_t data);
	void (*finish)(struct liveupdate_subsystem *h, uint64_t data);
};

/**
 * struct liveupdate_subsystem - a module of the service taking part
 * @ops: its callbacks.
 * @name: unique name, 1 to 63 characters of [A-Za-z0-9,._+-]; it is the
 *        key under which its u64 reaches the next image.
 * @arg: for the owner's use; the library does not touch it.
 *
 * The remaining fields belong to the library; zero them before
 * registering and leave them alone while registered.
 */
struct liveupdate_subsystem {
	const struct liveupdate_subsystem_ops *ops;
	const char *name;
	void *arg;
	/* private: */
	struct liveupdate_subsystem *next, *prev;
	uint64_t private_data;
	int prepared;
};

/**
 * liveupdate_register_subsystem() - add a participant
 * @h: the subsystem; must stay valid until unregistered.
 *
 * Allowed in NORMAL and UPDATED.  In UPDATED, @h->ops->boot runs before
 * this returns if the old image left data under @h->name.
 *
 * Return: 0; -EINVAL for a bad name or NULL; -EEXIST if @h or its name is
 * registered; -EBUSY in PREPARED or FROZEN; -ENODEV before luo_init().
 */
int liveupdate_register_subsystem(struct liveupdate_subsystem *h);

/**
 * liveupdate_unregister_subsystem() - remove a participant
 * @h: a registered subsystem.
 *
 * Return: 0; -ENOENT if @h is not registered (nothing changes); -EBUSY in
 * PREPARED or FROZEN; -EINVAL for NULL.
 */
int liveupdate_unregister_subsystem(struct liveupdate_subsystem *h);

/**
 * liveupdate_get_subsystem_data() - data the old image left for @h
 * @h: a subsystem (registered or not) named as in the old image.
 * @data: set to the u64 on success.
 *
 * Return: 0; -ENODATA if this image did not start from a live update or
 * after liveupdate_finish(); -ENOENT if the old image had no such
 * subsystem.
 */
int liveupdate_get_subsystem_data(struct liveupdate_subsystem *h,
				  uint64_t *data);

#ifdef __cplusplus
}
#endif

#endif /* LUO_LIVEUPDATE_H */
