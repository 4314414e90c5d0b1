/* SPDX-License-Identifier: MIT */
/* Sessions, preserved files and FLBs: what luo_session.c, luo_file.c and
 * luo_flb.c share.  Calls go luo_session.c -> luo_file.c -> luo_flb.c ->
 * luo_file_set.c, luo_sessions_lock.c. */
#ifndef LUO_SRC_SESSION_INTERNAL_H
#define LUO_SRC_SESSION_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <luo/luo.h>

#include "luo_hash.h"

/*
 * One preserved file.  Outgoing: the library's duplicate of the service's
 * descriptor.  Incoming: the inherited descriptor, until retrieved
 * (handed out as a duplicate) or finished (closed).
 */
struct luo_file {
	struct luo_session *session;
	struct liveupdate_file_handler *fh; /* incoming: found at retrieve */
	char compatible[LIVEUPDATE_HNDL_COMPAT_LENGTH];
	uint64_t token;
	int fd;
	uint64_t data;
	void *private_data;
	uint32_t mode;
	uint64_t dev, ino;
	bool frozen;
	bool checked_ahead;  /* incoming: identity matched when it arrived */
	bool must_check;     /* incoming: checked even if trusted (a hole) */
	int retrieve_status; /* incoming: 0 not yet, 1 done, < 0 the error */
	size_t index;	     /* in session->files */
	size_t ser_pos;	     /* outgoing: entry in the session's file block */
	uint32_t carrier_index;	     /* incoming: place in the carrier stream */
	struct luo_hnode token_node; /* session->tokens */
};

/*
 * Incoming: what the table entry of a file not yet made a struct luo_file
 * knows (struct luo_session, @in).
 */
#define LUO_IN_CLOSED (1U << 0)	   /* unpreserved after freeze: not listed */
#define LUO_IN_RETRIEVED (1U << 1) /* handed out */
#define LUO_IN_STALE (1U << 2)	   /* refused: -ESTALE */
#define LUO_IN_CHECKED (1U << 3)   /* identity matched when it arrived */
#define LUO_IN_SAME (1U << 4)	   /* compatible the same as the entry before */

struct luo_session {
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	bool incoming, retrieved, finished;
	/*
	 * Incoming, until the first call that needs a struct luo_file per
	 * file: the session's checked table in the handover arena and one
	 * LUO_IN_* byte per entry.  @state is NULL once the files were made
	 * (or if the session has none); @live counts the listed entries,
	 * @nretrieved those handed out.  Building 10,000 struct luo_file in
	 * fresh memory cost most of a millisecond of the blackout;
	 * liveupdate_session_retrieve_all() hands them out from the table.
	 * The parse checked that entry i is number @first + i of the stream,
	 * so its descriptor is found without reading its luo_file_fd_ser.
	 */
	struct {
		const struct luo_file_ser *fs;
		const struct luo_file_fd_ser *fds;
		uint8_t *state;
		size_t count, live, nretrieved;
		uint32_t first;
	} in;
	struct luo_file **files;
	size_t nfiles, cap;
	struct luo_file *pool; /* incoming: all files in one allocation */
	struct luo_file_ser *ser_files; /* outgoing: its block while updating */
	/* Outgoing, from prepare: a file's handler has freeze or unfreeze
	 * (without, freeze has nothing to do per file). */
	bool freeze_ops;
	struct luo_htable tokens;
	struct luo_hnode name_node; /* in the outgoing or incoming names */
	struct luo_session *next;
};

/* The compatible marking a file unpreserved after freeze (luo/abi.h,
 * struct luo_file_ser): in flight already, closed on arrival.  No handler
 * may have this name. */
#define LUO_FILE_CLOSED_COMPATIBLE "luo-closed-v1"

/* luo_sessions_lock.c */
/* Guards every structure of sessions, files, handlers and FLBs. */
extern pthread_mutex_t luo_sessions_lock;

/**
 * luo_sessions_lock_enter() - take the sessions lock
 * @op: the public call taking it, for the message.
 *
 * Return: 0; -EDEADLK (logged, naming @op) if this thread holds it
 * already, i.e. from a file handler or FLB callback.
 */
int luo_sessions_lock_enter(const char *op);

/**
 * luo_sessions_lock_leave() - release what luo_sessions_lock_enter() took
 */
void luo_sessions_lock_leave(void);

/**
 * luo_sessions_lock_held() - this thread holds the sessions lock (it runs
 * a file handler or FLB callback, or the library's own code under it)
 *
 * Return: true if so.
 */
bool luo_sessions_lock_held(void);

/* luo_file_set.c: what sessions, files and FLBs share. */

/**
 * luo_file_by_token() - the file of @s under @token
 * @s: the session.
 * @token: the token.
 *
 * Return: the file, or NULL.
 */
struct luo_file *luo_file_by_token(const struct luo_session *s, uint64_t token);

/**
 * luo_session_add_file() - put @f in the set of @s (its array and token
 * table)
 * @s: the session.
 * @f: the file, its token set and not in any session yet.
 *
 * Return: 0 or -ENOMEM.
 */
int luo_session_add_file(struct luo_session *s, struct luo_file *f);

/**
 * luo_session_remove_file() - take @f out of the set of @s
 * @s: the session.
 * @f: a file of @s.
 */
void luo_session_remove_file(struct luo_session *s, struct luo_file *f);

/**
 * luo_handler_users_set() - who answers luo_handler_in_use()
 * @users: true if an outgoing session has a file through the handler
 *         (luo_session.c, which owns the session lists).
 */
void luo_handler_users_set(
	bool (*users)(const struct liveupdate_file_handler *fh));

/**
 * luo_handler_in_use() - an outgoing session has a file through @fh
 * @fh: the handler.
 *
 * Unregistering it, or changing its FLBs, is refused then.
 *
 * Return: true if so; false before any outgoing session exists.
 */
bool luo_handler_in_use(const struct liveupdate_file_handler *fh);

/**
 * luo_compatible_valid() - the rule for a handler's or an FLB's compatible
 * @s: the string (need not be NUL-terminated within @max).
 * @max: the size of the field it must fit, NUL included.
 *
 * Return: true for 1 to @max - 1 printable ASCII bytes, no space.
 */
bool luo_compatible_valid(const char *s, size_t max);

/* luo_file.c */
int luo_file_preserve(struct luo_session *s, int fd, uint64_t token);
void luo_file_unpreserve(struct luo_file *f);
int luo_file_freeze(struct luo_file *f);
void luo_file_unfreeze(struct luo_file *f);
int luo_file_retrieve(struct luo_file *f, int *fd);
int luo_file_check_held(const struct luo_file *f);
void luo_file_finish(struct luo_file *f);
struct liveupdate_file_handler *luo_handler_find(const char *compatible);

/**
 * luo_handlers_retrieve_any() - a registered handler has a retrieve callback
 *
 * Return: true if so (its files need a struct luo_file each to retrieve).
 */
bool luo_handlers_retrieve_any(void);

/**
 * luo_fd_is_file() - @fd is still the file recorded with these identities
 * @fd: the descriptor.
 * @mode: st_mode & S_IFMT recorded.
 * @dev: st_dev recorded.
 * @ino: st_ino recorded.
 *
 * Return: true if fstat() says so.
 */
bool luo_fd_is_file(int fd, uint32_t mode, uint64_t dev, uint64_t ino);

/* luo_flb.c */
int luo_flb_file_preserve(struct liveupdate_file_handler *fh);
void luo_flb_file_unpreserve(struct liveupdate_file_handler *fh);
void luo_flb_file_finish(struct liveupdate_file_handler *fh);
bool luo_flb_handler_has(struct liveupdate_file_handler *fh);
void luo_flb_links_free(struct liveupdate_file_handler *fh);
int luo_flbs_serialize(uint64_t *flbs_pa);
void luo_flbs_reserialize(void);
void luo_flbs_unserialize(void);
void luo_flbs_finish_all(void);

/* luo_carrier.c */
int luo_carrier_send(const int *fds, size_t n, int *rx, uint64_t *rx_ino);
int luo_carrier_receive(int rx, uint64_t rx_ino, int *fds, size_t n, char *why,
			size_t whylen);
void luo_carrier_discard(int rx, uint64_t rx_ino);

#endif
