/* SPDX-License-Identifier: MIT */
/*
 * Inherited files (exec mode with LUO_INIT_EXEC_INHERIT): the preserved
 * files cross execve() as inherited descriptors in one contiguous range
 * under a sentinel, instead of in flight on the carrier.  Below the
 * sessions and the lifecycle, beside the carrier.
 */
#ifndef LUO_SRC_INHERIT_H
#define LUO_SRC_INHERIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* luo_carrier.c: with @n 0, a carrier with nothing in flight. */
int luo_carrier_send(const int *fds, size_t n, int *rx, uint64_t *rx_ino);

/**
 * luo_inherit_place() - move the library's references into the range
 * @fds: the @n references (FD_CLOEXEC); each is moved to *@base + i,
 *	without FD_CLOEXEC.  Updated in every case: on failure an entry
 *	may name another number for the same file (with FD_CLOEXEC).
 * @n: how many.
 * @sentinel: set to the sentinel's number, *@base + @n.
 * @ino: set to the sentinel's inode.
 * @base: set to the first number of the range: the lowest at or above 3
 *	where no other descriptor is open in [base, base + @n].
 *
 * Return: 0; a negative errno (logged as a warning: the caller puts the
 * files on the carrier instead), with every reference in @fds open and
 * FD_CLOEXEC, and no sentinel.
 */
int luo_inherit_place(int *fds, size_t n, int *sentinel, uint64_t *ino,
		      int *base);

/**
 * luo_inherit_restore() - set FD_CLOEXEC back and close the sentinel
 * @fds: the references to keep (set FD_CLOEXEC on; -1 entries skipped).
 * @n: how many.
 * @sentinel: closed if >= 0.
 *
 * Cancel, or the switch to the carrier for a spawned image.
 */
void luo_inherit_restore(const int *fds, size_t n, int sentinel);

/**
 * luo_inherit_probe_early() - look for a hole in the range first thing
 * @base: the first number of the range the environment names.
 * @sentinel: the sentinel's number it names (the end of the range).
 * @src: any open descriptor (F_DUPFD needs one), e.g. the sentinel.
 *
 * At the very start of luo_init(), before the library opens anything a
 * lowest-free allocation could put in a hole; luo_inherit_adopt() counts
 * what it saw if the LUO FDT confirms the same range.  Touches nothing.
 */
void luo_inherit_probe_early(int base, int sentinel, int src);

/**
 * luo_inherit_adopt() - check the inherited range in the new image
 * @sentinel: the number both the environment and the LUO FDT name.
 * @ino: the sentinel's inode as the LUO FDT records it.
 * @base: the first number of the range.
 * @n: the files in it.
 * @holes: set if a number inside the range is free (the start-up closed
 *	a file): the caller then checks each file's identity.
 * @why: the reason on failure.
 * @whylen: size of @why.
 *
 * Sets FD_CLOEXEC on the whole range in every case (children started
 * from now on inherit none of it) and closes the sentinel if it is one.
 *
 * Return: 0; -ESTALE if the sentinel is gone or replaced (then no number
 * of the range can be trusted and none is closed).
 */
int luo_inherit_adopt(int sentinel, uint64_t ino, int base, size_t n,
		      bool *holes, char *why, size_t whylen);

/**
 * luo_inherit_refused() - note the range of a refused handover
 * @sentinel: the sentinel the environment names.
 * @base: the first number of the range the environment names.
 *
 * Before the sentinel is closed: the range is released later only if the
 * sentinel is verifiably this process's (a Unix socket it created,
 * without FD_CLOEXEC) and lies right above it.
 */
void luo_inherit_refused(int sentinel, int base);

/**
 * luo_inherit_release_refused() - close the range noted at the refusal
 *
 * After the exec-mode rollback did not take the handover back to the old
 * binary: the files would otherwise stay open, unserved, for good.
 */
void luo_inherit_release_refused(void);

#endif
