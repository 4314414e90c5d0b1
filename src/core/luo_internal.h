/* SPDX-License-Identifier: MIT */
/* LUO core internals: state, participants, the LUO FDT. */
#ifndef LUO_SRC_LUO_INTERNAL_H
#define LUO_SRC_LUO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <luo/luo.h>

#include "luo_clock.h"

/*
 * A participant in the update: one class of state (subsystems, sessions,
 * devices).  They are prepared and frozen in array order and cancelled in
 * reverse; see participants[] in lifecycle/lifecycle.c.
 */
struct luo_participant {
	const char *name;
	int (*prepare)(void);
	int (*freeze)(void);
	void (*cancel)(void);
	void (*finish)(void);
	int (*reboot)(void); /* optional: the last step before execve() */
	/* optional: drop the incoming data it parsed (refusal, finish) */
	void (*release_incoming)(void);
	void (*forget)(void); /* luo_exit(): drop everything it holds */
};

extern const struct luo_participant luo_subsystems_participant;
extern const struct luo_participant luo_sessions_participant;
extern const struct luo_participant luo_devices_participant;

/* luo_state.c: the state word, the counter, the state lock */
struct luo_global {
	enum liveupdate_state state;
	uint64_t liveupdate_num; /* updates this service has been through */
	unsigned int init_flags;
	uint32_t session_max_files;
	/* The old image's address space, kept by a helper until finish. */
	int teardown_fd;
	pid_t teardown_pid;
	int carrier_fd;	  /* the incoming carrier the environment names */
	int inherit_base; /* the inherited range it names; 0: none */
	struct liveupdate_timing timing; /* of the incoming update */
	bool crash_recovered; /* adopted the arena of a crashed process */
};

extern struct luo_global luo_global;

int luo_state_write_lock(const char *op);
void luo_state_write_unlock(void);
bool luo_state_writer(void);
/* Hold the state stable: a read lock, or nothing if this thread already
 * holds it for writing (a transition runs the callback that calls). */
int luo_state_hold(void);
void luo_state_unhold(void);
bool luo_state_is(enum liveupdate_state s);
void luo_set_state(enum liveupdate_state s);
int luo_participants_reboot(void);

/* luo_fdt.c: the LUO FDT codec: the outgoing FDT and struct luo_ser, the
 * incoming header and exec node. */
int luo_abi_out_create(size_t extra);
void luo_abi_out_destroy(void);
int luo_abi_out_set_subsystem(const char *name, uint64_t data);
int luo_abi_out_set_time(const char *prop, uint64_t ns);
void luo_abi_out_set_sessions(uint64_t sessions_pa, uint64_t flbs_pa);
int luo_abi_out_set_carrier(int fd, uint64_t ino, uint64_t count,
			    uint64_t inherit_base);
struct luo_ser;
int luo_abi_in_parse(const void **fdt, struct luo_ser **ser, uint64_t t[3],
		     char *why, size_t whylen);
int luo_fdt_get_u64(const void *fdt, int node, const char *prop, uint64_t *val);
int luo_fdt_check_node(const void *fdt, const char *name, const char *compat,
		       int *node, char *why, size_t whylen);
void *luo_abi_out_fdt(void);

/* luo_device.c, luo_device_abi.c */
size_t luo_devices_fdt_size(void);
int luo_devices_in_parse(const void *luo_fdt, char *why, size_t whylen);
void luo_devices_in_release(void);
void luo_devices_forget(void);

/*
 * What the participants list for the control layer: one row each, walked
 * under the participant's own lock (a callback must not call back into
 * that participant).  Only the control layer formats them.
 */
struct luo_subsystem_row {
	const char *name;
	bool prepared;
	bool incoming; /* the old image left data for it */
	uint64_t incoming_data;
	uint64_t outgoing_data;
};

struct luo_session_row {
	const char *name;
	bool incoming;
	size_t nfiles;
	const char *status; /* open, waiting, retrieved, finished */
};

struct luo_file_row {
	const char *session;
	bool incoming;
	uint64_t token;
	const char *handler; /* its compatible string */
	const char *kind;    /* file, socket, fifo, chardev, dir, anon */
	uint64_t ino;
	const char *status;
};

/**
 * luo_subsystems_foreach() - one row per registered subsystem.
 * @fn: called in registration order, under the subsystems' lock.
 * @arg: passed to @fn.
 */
void luo_subsystems_foreach(void (*fn)(const struct luo_subsystem_row *row,
				       void *arg),
			    void *arg);

/**
 * luo_sessions_foreach() - one row per session, outgoing then incoming.
 * @fn: called under the sessions lock.
 * @arg: passed to @fn.
 */
void luo_sessions_foreach(void (*fn)(const struct luo_session_row *row,
				     void *arg),
			  void *arg);

/**
 * luo_session_files_foreach() - one row per preserved file, outgoing
 * sessions then incoming, each session's files in order.
 * @fn: called under the sessions lock.
 * @arg: passed to @fn.
 */
void luo_session_files_foreach(void (*fn)(const struct luo_file_row *row,
					  void *arg),
			       void *arg);
struct luo_session;
bool luo_session_has_token(struct luo_session *s, uint64_t token);

/* luo_session.c, luo_file.c, luo_flb.c, luo_fd_handlers.c */
struct luo_session;
struct luo_file;
int luo_sessions_in_parse(const void *luo_fdt, uint64_t sessions_pa, char *why,
			  size_t whylen);
int luo_flbs_in_parse(uint64_t flbs_pa, char *why, size_t whylen);
void luo_sessions_forget(void);
void luo_sessions_in_refuse(void);
void luo_flbs_forget(void);
int luo_fd_handlers_register(void);
struct stat;
extern const char luo_fd_handlers_supported[];
const char *luo_fd_kind(int fd, const struct stat *st, char *buf, size_t len);
struct liveupdate_file_handler *luo_fd_handlers(size_t *count);
/* The built-in epoll handler's compatible (inherited files only). */
#define LUO_EPOLL_COMPATIBLE "epoll-v1"
/**
 * luo_epoll_check_targets() - is every file epoll instance @epfd watches
 * preserved
 * @epfd: the library's reference to a preserved epoll instance.
 * @session: its session's name, for the message.
 * @token: its token, for the message.
 *
 * Reads the targets from /proc/self/fdinfo and compares each with the
 * preserved files (prepare, outside the blackout).
 *
 * Return: 0; -EINVAL (logged, naming the target) if one is not.
 */
int luo_epoll_check_targets(int epfd, const char *session, uint64_t token);
/**
 * luo_file_epoll_target_preserved() - is an epoll target a preserved file
 * @epfd: the epoll instance.
 * @tfd: the number the target was registered with.
 * @dev: the target's device, as fdinfo gives it.
 * @ino: the target's inode, as fdinfo gives it.
 *
 * The very file is compared with kcmp(KCMP_EPOLL_TFD) (files that share
 * an inode, as every eventfd does, are told apart); without kcmp, the
 * inode decides.  Sessions lock held.
 *
 * Return: true if an outgoing preserved file is that target.
 */
bool luo_file_epoll_target_preserved(int epfd, int tfd, uint64_t dev,
				     uint64_t ino);
int luo_builtin_handler_add(struct liveupdate_file_handler *fh);
void luo_handlers_forget(void);
void luo_sessions_in_adopt(void);
/**
 * luo_sessions_send_ahead() - put the outgoing files on the carrier now
 * @rx: set to the carrier's receiving end (-1 if there are no files).
 * @ino: set to its inode.
 * @count: set to the number of files in flight.
 *
 * Spawn mode, in PREPARED with the state lock held (luo_session.c); the
 * freeze then sends nothing more.  A cancel closes the carrier.
 *
 * Return: 0, or the error of sending them.
 */
int luo_sessions_send_ahead(int *rx, uint64_t *ino, size_t *count);

/**
 * luo_sessions_in_reserve() - populate ahead the memory of @count incoming
 * files' tables
 * @count: the files received ahead (spawn mode, before the freeze).
 *
 * The parse of the session blocks inside the blackout then takes its
 * pool, its arrays and its token tables from pages mapped already
 * (luo_bulk_reserve()).  Best effort: without it they are mapped then.
 */
void luo_sessions_in_reserve(size_t count);

/**
 * struct luo_sessions_watch - told of every change to the outgoing sessions
 * @preserved: @fd joined session @name under @token.
 * @unpreserved: the file under @token left session @name.
 *
 * Called with the sessions lock held, after the change took effect: they
 * must not call into the sessions.
 */
struct luo_sessions_watch {
	void (*preserved)(const char *name, uint64_t token, int fd);
	void (*unpreserved)(const char *name, uint64_t token);
};

/**
 * luo_sessions_set_watch() - install the watch (NULL removes it)
 * @w: kept, not copied.
 */
void luo_sessions_set_watch(const struct luo_sessions_watch *w);

/**
 * luo_sessions_out_holds() - does this image's outgoing session @name hold
 * the file @dev/@ino under @token
 * @name: the session's name.
 * @token: the token.
 * @dev: the file's device (st_dev).
 * @ino: its inode (st_ino).
 *
 * Return: true if it does.
 */
bool luo_sessions_out_holds(const char *name, uint64_t token, uint64_t dev,
			    uint64_t ino);

/* luo_subsystems.c: registration, and the incoming values it owns */
size_t luo_subsystems_names_len(size_t *count);
int luo_subsystems_in_parse(const void *fdt, char *why, size_t whylen);
void luo_subsystems_in_release(void);
int luo_subsystems_in_from_crash(const struct kho_crash_entry *e, size_t n);
int luo_abi_in_subsystem(const char *name, uint64_t *data);
void luo_abi_in_subsystem_mark(const char *name);
void luo_abi_in_warn_unclaimed(void);
void luo_subsystems_forget(void);

/* lifecycle.c: the old address space */
/* The handover environment variable, parsed (luo_handover_env.c). */
struct luo_handover_env {
	int arena_fd;
	int release_fd; /* -1: no helper holds the old address space */
	pid_t helper_pid;
	int carrier_fd;	  /* -1: no files in flight */
	int inherit_base; /* 0: files in flight; else inherited from here on,
			   * carrier_fd the sentinel above them */
};

/**
 * luo_parse_handover_env() - parse a LUO_HANDOVER_FD value
 * @value: "ARENA[,RELEASE,PID[,CARRIER[,BASE]]]".
 * @e: filled with its fields (unset ones -1 or 0).
 *
 * Return: 0; -EBADF if @value is not exactly that.
 */
int luo_parse_handover_env(const char *value, struct luo_handover_env *e);
int luo_sessions_carrier_fd(void);
/**
 * luo_sessions_inherit_base() - where the outgoing files are inherited
 *
 * For the handover variable's fifth field (liveupdate_reboot()).
 *
 * Return: the first descriptor of the inherited range, with
 * luo_sessions_carrier_fd() the sentinel above it; 0 if the files are on
 * the carrier (or there are none).
 */
int luo_sessions_inherit_base(void);
void luo_carrier_discard_unverified(int fd);
/* luo_carrier.c: the one message for a descriptor that could not be had. */
void luo_log_fd_shortage(const char *op, const char *what, int err);
void luo_teardown_release(bool wait);
void luo_teardown_adopt(int fd, pid_t pid);
int luo_holder_prepare(void);
void luo_holder_cancel(void);
void luo_discard_handover(const char *value);

#endif
