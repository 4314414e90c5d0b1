/* SPDX-License-Identifier: MIT */
/* The service manager's descriptor store (luo_fdstore.c): hooks for the
 * arena, sessions and the start of a process. */
#ifndef LUO_SRC_FDSTORE_H
#define LUO_SRC_FDSTORE_H

#include <stdbool.h>
#include <stdint.h>

/**
 * luo_fdstore_capture() - take what the manager handed back at start
 *
 * Called by luo_init() before the arena is made: descriptors named
 * "luo.*" in LISTEN_FDS/LISTEN_FDNAMES (for this PID) are kept for
 * liveupdate_fdstore_retrieve().  Once per process image.
 */
void luo_fdstore_capture(void);

/**
 * luo_fdstore_arena() - the arena exists: keep it in the store
 * @fd: the arena memfd, or -1 to only drop a recovered one.
 * @adopted: it came from a live update: the store holds it already.
 *
 * An arena handed back after a crash and not taken with
 * luo_fdstore_take_arena() is dropped first.
 */
void luo_fdstore_arena(int fd, bool adopted);

/**
 * luo_fdstore_take_arena() - the arena memfd the manager handed back
 *
 * Return: the descriptor (the caller owns it), or -1 if none came back.
 */
int luo_fdstore_take_arena(void);

/**
 * luo_fdstore_arena_refused() - the handed-back arena was not adopted
 *
 * Removes it from the store (FDSTOREREMOVE=1), so that the fresh arena
 * stored next is the only one under its name.
 */
void luo_fdstore_arena_refused(void);

/** luo_fdstore_arena_gone() - the arena is released: FDSTOREREMOVE=1. */
void luo_fdstore_arena_gone(void);

/**
 * luo_fdstore_preserved() - a file joined an outgoing session
 * @session: the session's name.
 * @token: the file's token.
 * @fd: the file; stored if it is a listening socket.
 */
void luo_fdstore_preserved(const char *session, uint64_t token, int fd);

/**
 * luo_fdstore_unpreserved() - a file left an outgoing session
 * @session: the session's name.
 * @token: the file's token; removed from the store if this image put it
 *         there.
 */
void luo_fdstore_unpreserved(const char *session, uint64_t token);

/**
 * luo_fdstore_release_unclaimed() - close what the service did not take
 *
 * Called by luo_notify_ready(): the service serves, so what it did not
 * retrieve by then is not wanted; it is closed and removed from the store.
 */
void luo_fdstore_release_unclaimed(void);

#endif
