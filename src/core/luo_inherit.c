// SPDX-License-Identifier: MIT
/*
 * Inherited files (LUO_INIT_EXEC_INHERIT): in exec mode the preserved
 * files cross execve() as plain inherited descriptors instead of in flight
 * on the carrier, so that nothing per file is left in the blackout.
 *
 * At prepare the library's references are moved to one contiguous range
 * above every open descriptor, without FD_CLOEXEC, and a sentinel (a Unix
 * socket with nothing in flight, made by this process) is put right above
 * the range: [base, base + n) are the files, base + n the sentinel.  A
 * lowest-free allocation in the new image's start-up cannot land in the
 * range while a lower number is free.  The new image checks the sentinel
 * (type and inode), probes for a hole in the range with one F_DUPFD, and
 * sets FD_CLOEXEC on all of it with one close_range().  What that catches
 * and what only the per-file identity check at retrieval catches is in
 * docs/preserved-files.md, "In flight or inherited".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "luo_inherit.h"
#include "luo_internal.h"

/* Set FD_CLOEXEC on [first, last]: one system call where the kernel has
 * CLOSE_RANGE_CLOEXEC (5.11), one per descriptor otherwise. */
static void cloexec_range(int first, int last)
{
	if (first > last)
		return;
	if (!syscall(SYS_close_range, (unsigned int)first, (unsigned int)last,
		     CLOSE_RANGE_CLOEXEC))
		return;
	for (int fd = first; fd <= last; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* A directory entry of /proc/self/fd as a number, -1 for "." and "..". */
static int fd_name(const char *s)
{
	int v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (1 << 27))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* The highest open descriptor of this process, -1 if /proc cannot say. */
static int highest_open_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int max = -1, self;

	if (!d)
		return -1;
	self = dirfd(d);
	while ((e = readdir(d))) {
		int fd = fd_name(e->d_name);

		if (fd != self && fd > max)
			max = fd;
	}
	closedir(d);
	return max;
}

int luo_inherit_place(int *fds, size_t n, int *sentinel, uint64_t *ino,
		      int *base)
{
	int top = highest_open_fd(), rx, s;
	uint64_t rx_ino;
	size_t i;
	int err;

	if (top < 0) {
		pr_err("liveupdate_prepare: cannot list /proc/self/fd to place the inherited files; mount /proc or update without LUO_INIT_EXEC_INHERIT");
		return -ENOENT;
	}
	/* The sentinel: a carrier with nothing in flight. */
	err = luo_carrier_send(NULL, 0, &rx, &rx_ino);
	if (err)
		return err;
	*base = top + 1 > rx ? top + 1 : rx + 1;
	for (i = 0; i < n; i++) {
		int fd = fcntl(fds[i], F_DUPFD, *base + (int)i);

		if (fd != *base + (int)i) {
			err = fd < 0 ? -errno : -EAGAIN;
			if (fd >= 0)
				close(fd);
			break;
		}
	}
	s = err ? -1 : fcntl(rx, F_DUPFD, *base + (int)n);
	if (!err && s != *base + (int)n) {
		err = s < 0 ? -errno : -EAGAIN;
		if (s >= 0)
			close(s);
	}
	close(rx);
	if (err) {
		/* Undo: the copies made so far go, the originals stay. */
		for (size_t k = 0; k < i; k++)
			close(*base + (int)k);
		if (err == -EMFILE || err == -ENFILE)
			luo_log_fd_shortage(
				"liveupdate_prepare",
				"the inherited range of the preserved files",
				err);
		else
			pr_err("liveupdate_prepare: cannot place %zu inherited files at %d (%s): another thread opened descriptors there; retry the update",
			       n, *base, strerror(-err));
		return err;
	}
	for (i = 0; i < n; i++) {
		close(fds[i]);
		fds[i] = *base + (int)i;
	}
	*sentinel = s;
	*ino = rx_ino;
	return 0;
}

void luo_inherit_restore(const int *fds, size_t n, int sentinel)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	if (sentinel >= 0)
		close(sentinel);
}

int luo_inherit_adopt(int sentinel, uint64_t ino, int base, size_t n,
		      bool *holes, char *why, size_t whylen)
{
	struct stat st;
	int probe;

	*holes = false;
	if (fstat(sentinel, &st) || !S_ISSOCK(st.st_mode) ||
	    (uint64_t)st.st_ino != ino) {
		/* Not ours to close: only keep them from children. */
		cloexec_range(base, base + (int)n - 1);
		return luo_reason(
			why, whylen, -ESTALE,
			"descriptor %d is no longer the sentinel above the %zu inherited files (closed or replaced before luo_init())",
			sentinel, n);
	}
	/* The lowest free number at or above base: inside the range means
	 * the start-up closed one of the files. */
	probe = fcntl(sentinel, F_DUPFD_CLOEXEC, base);
	if (probe >= 0) {
		*holes = probe < base + (int)n;
		close(probe);
	}
	cloexec_range(base, base + (int)n);
	close(sentinel);
	return 0;
}

/* A refused handover's range, released once the rollback did not take it. */
static struct {
	int first, last;
} refused = {-1, -1};

void luo_inherit_refused(int sentinel, int base)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int flags;
	struct stat st;

	refused.first = refused.last = -1;
	if (sentinel < 0 || base <= 2 || base >= sentinel)
		return;
	/* Only a socket of ours without FD_CLOEXEC, as the carrier. */
	if (fstat(sentinel, &st) || !S_ISSOCK(st.st_mode) ||
	    (flags = fcntl(sentinel, F_GETFD)) < 0 || (flags & FD_CLOEXEC) ||
	    getsockopt(sentinel, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    cred.pid != getpid())
		return;
	refused.first = base;
	refused.last = sentinel - 1;
}

void luo_inherit_release_refused(void)
{
	if (refused.first < 0)
		return;
	pr_info("closing the %d files inherited with the refused handover (descriptors %d to %d)",
		refused.last - refused.first + 1, refused.first, refused.last);
	if (syscall(SYS_close_range, (unsigned int)refused.first,
		    (unsigned int)refused.last, 0))
		for (int fd = refused.first; fd <= refused.last; fd++)
			close(fd);
	refused.first = refused.last = -1;
}
