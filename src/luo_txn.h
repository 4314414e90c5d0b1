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

/* luo_txn.c: send/receive one message; -EPIPE when the peer is gone. */
int luo_txn_send(int ch, uint32_t type, int err, uint64_t a, uint64_t b,
		 const char *text, int fd);
int luo_txn_recv(int ch, struct luo_txn_msg *m, int *fd, int timeout_ms);

/**
 * luo_txn_child_adopt() - a spawned image's luo_init(): wait for the
 * handover on the channel the environment names
 * @value: the LUO_SPAWN_FD value.
 * @env: set to a handover value ("ARENA,-1,0,-1") for the usual adoption.
 * @envlen: size of @env.
 *
 * Sends hello, takes the preserved files ahead into a private table,
 * waits for adopt.  Called with the state write lock held.
 *
 * Return: 0 with @env set; a negative errno if there is no usable
 * channel or the old image went away (luo_init() then starts fresh).
 */
int luo_txn_child_adopt(const char *value, char *env, size_t envlen);

/**
 * luo_txn_child_result() - tell the old image how the adoption went
 * @err: 0 adopted (the trial starts), or luo_init()'s error (refused).
 * @why: the refusal's reason, or NULL.
 */
void luo_txn_child_result(int err, const char *why);

/**
 * luo_txn_files_take() - the files received ahead for carrier @ino
 * @ino: the carrier's inode as the LUO FDT names it.
 * @fds: receives @n descriptors, in carrier order.
 * @n: how many the sessions expect.
 *
 * Return: 0; -ENOENT if nothing was received ahead (receive from the
 * carrier as usual); -ESTALE if what was received does not match (the
 * files are closed).
 */
int luo_txn_files_take(uint64_t ino, int *fds, size_t n);

/* Were files received ahead for this carrier?  (parse_carrier's check.) */
bool luo_txn_files_ready(uint64_t ino, size_t n);

/**
 * luo_txn_defer_finish() - liveupdate_finish() in a spawned image
 *
 * Return: 1 if the caller goes on with the finish itself (no transaction,
 * or the commit came back at once); 0 if the commit was asked for and the
 * library's thread finishes when it comes; a negative errno.
 */
int luo_txn_defer_finish(void);

/* liveupdate_txn_rollback() with the reason to report: requested or
 * health (an outside probe failed). */
int luo_txn_rollback_as(enum liveupdate_txn_reason why, const char *reason);

/* luo_core.c: the finish itself (UPDATED -> NORMAL). */
int luo_finish_now(void);

/* luo_spawn.c: the old image handed over and must not unlink or shut
 * down anything shared any more. */
bool luo_spawn_handed_over(void);
/* luo_spawn.c: a spawn-mode update is running in this (old) image. */
bool luo_spawn_running(void);
/* luo_spawn.c: the registered hooks (for luo_txn.c's health probe). */
int luo_txn_hooks_health(void);
bool luo_txn_hooks_have_health(void);

/* luo_session.c: put the outgoing files on the carrier now (spawn mode,
 * in PREPARED); freeze then sends nothing more. */
int luo_sessions_send_ahead(int *rx, uint64_t *ino, size_t *count);

/* luo_exec_rollback.c: exec mode goes back to the old binary when the
 * new image refuses the handover. */
#define LUO_ROLLBACK_ENV "LUO_ROLLBACK_EXEC"
void luo_exec_self_open(void); /* luo_init(): our executable */
void luo_exec_self_close(void); /* luo_exit(), or luo_init() failed */
char *luo_exec_rollback_var(const char *handover); /* reboot: the variable */
void luo_exec_rollback_inherit(bool on);	   /* reboot: around execve() */
void luo_exec_rollback_save(const char *var); /* new image, before adopting */
void luo_exec_rollback_run(int err); /* refused: re-exec; returns on failure */
void luo_exec_rollback_forget(void); /* adopted (or fresh): drop the copies */

/* kho_trial.c */
void kho_trial_begin(void);  /* new image: frees are deferred */
void kho_trial_commit(void); /* new image: run the deferred frees */
bool kho_trial_defer_free(uint64_t payload_off); /* under kho_lock */
void kho_trial_repair(void); /* old image, after a rollback */

#endif
