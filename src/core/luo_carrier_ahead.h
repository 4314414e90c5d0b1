/* SPDX-License-Identifier: MIT */
/*
 * Files received ahead (spawn mode): the new image takes the preserved
 * files off the carrier before the freeze and keeps them in a table until
 * its sessions claim them at adoption.  Below the sessions and the
 * lifecycle, beside the carrier.
 */
#ifndef LUO_SRC_CARRIER_AHEAD_H
#define LUO_SRC_CARRIER_AHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A file's identity as the new image saw it when it took the file off the
 * carrier ahead: compared with the sealed session blocks at adoption, so
 * that retrieval in the blackout makes no system call.
 */
struct luo_carrier_ahead_id {
	uint64_t dev, ino;
	uint32_t mode; /* S_IFMT bits; 0 if fstat() failed (never matches) */
};

/* luo_carrier.c (declared with the sessions that use it too). */
int luo_carrier_receive(int rx, uint64_t rx_ino, int *fds, size_t n, char *why,
			size_t whylen);

/**
 * luo_carrier_ahead_receive() - take @count files off carrier @rx now
 * @rx: the carrier's receiving end; closed in every case.
 *
 * Each file's identity (type, device, inode) is read here, before the
 * freeze, for luo_carrier_ahead_take().
 *
 * @ino: its inode.
 * @count: the files in flight.
 * @why: the reason on failure.
 * @whylen: size of @why.
 *
 * Return: 0; -EBADMSG, -ESTALE or -ENOMEM (nothing is kept).
 */
int luo_carrier_ahead_receive(int rx, uint64_t ino, uint64_t count, char *why,
			      size_t whylen);

/**
 * luo_carrier_ahead_ready() - were the files of carrier @ino received ahead
 * @ino: the carrier's inode as the LUO FDT names it.
 * @n: the number of files the sessions list.
 *
 * Return: true if luo_carrier_ahead_take() will give exactly those.
 */
bool luo_carrier_ahead_ready(uint64_t ino, size_t n);

/**
 * luo_carrier_ahead_take() - hand the files received ahead to the sessions
 * @ino: the carrier's inode as the LUO FDT names it.
 * @fds: receives @n descriptors, in carrier order (FD_CLOEXEC).
 * @ids: if not NULL, receives the table of their identities as read when
 *	they arrived, in carrier order; the caller frees it with
 *	luo_bulk_free(*@ids, @n * sizeof(**@ids)).  NULL unless 0 is returned.
 * @n: how many the sessions expect.
 *
 * Return: 0; -ENOENT if nothing was received ahead (receive from the
 * carrier as usual); -ESTALE if what was received does not match (the
 * files are closed).
 */
int luo_carrier_ahead_take(uint64_t ino, int *fds,
			   struct luo_carrier_ahead_id **ids, size_t n);

/**
 * luo_carrier_ahead_drop() - close whatever was received ahead and not
 * taken
 */
void luo_carrier_ahead_drop(void);

#endif
