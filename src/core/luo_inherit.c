// SPDX-License-Identifier: MIT
/*
 * Inherited files (LUO_INIT_EXEC_INHERIT): in exec mode the preserved
 * files cross execve() as plain inherited descriptors instead of in flight
 * on the carrier, so that nothing per file is left in the blackout.
 *
 * At prepare the library's references are moved to one contiguous range,
 * the lowest where no other descriptor is open, without FD_CLOEXEC, and a
 * sentinel (a Unix socket with nothing in flight, made by this process)
 * is put right above it: [base, base + n) are the files, base + n the
 * sentinel.  A full range leaves no number in it for a lowest-free
 * allocation in the new image's start-up to take: only a close (or a
 * dup2() onto a number) can put another file there.  The new image checks the sentinel
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
#include <stdlib.h>
#include <sys/resource.h>
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

/* The open descriptors of this process, unsorted; -1 if /proc cannot
 * say.  *@v is malloc()ed. */
static int open_fds(int **v, size_t *n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t cap = 0;
	int self;

	*v = NULL;
	*n = 0;
	if (!d)
		return -1;
	self = dirfd(d);
	while ((e = readdir(d))) {
		int fd = fd_name(e->d_name);

		if (fd < 0 || fd == self)
			continue;
		if (*n == cap) {
			int *nv = realloc(*v,
					  (cap ? 2 * cap : 256) * sizeof(int));

			if (!nv) {
				closedir(d);
				return -1;
			}
			*v = nv;
			cap = cap ? 2 * cap : 256;
		}
		(*v)[(*n)++] = fd;
	}
	closedir(d);
	return 0;
}

/*
 * Free numbers the new image keeps below the range: its start-up's
 * lowest-free allocations take those, not a number in the range that it
 * closed (the hole luo_inherit_adopt() looks for would be filled).
 */
#define FREE_BELOW 64

/*
 * The lowest base such that no descriptor but the library's references
 * is open in [base, base + n] and at least FREE_BELOW numbers from 3 up
 * to it will be free once the references moved; @kind[fd] is 1 for
 * another open descriptor.
 */
static int lowest_room(const char *kind, int size, size_t n)
{
	int run = 0, below = 0; /* not another's in [3, fd - n) */

	for (int fd = 3; fd < size; fd++) {
		int b = fd - (int)n;

		if (b > 3)
			below += kind[b - 1] != 1;
		run = kind[fd] == 1 ? 0 : run + 1;
		if ((size_t)run >= n + 1 && below >= FREE_BELOW)
			return b;
	}
	return -1; /* not with @size of room above every open number */
}

int luo_inherit_place(int *fds, size_t n, int *sentinel, uint64_t *ino,
		      int *base)
{
	struct rlimit rl = {0};
	int *open = NULL, *owner = NULL, rx = -1, size, top = 2, b;
	char *kind = NULL;
	size_t nopen, i = 0;
	uint64_t rx_ino;
	int err;

	*sentinel = -1;
	if (open_fds(&open, &nopen)) {
		pr_warn("liveupdate_prepare: cannot list /proc/self/fd to place the inherited files: mount /proc");
		err = -ENOENT;
		goto out;
	}
	for (size_t k = 0; k < nopen; k++)
		top = open[k] > top ? open[k] : top;
	size = top + (int)n + FREE_BELOW + 2;
	kind = calloc((size_t)size, 1);
	owner = malloc((size_t)size * sizeof(*owner));
	if (!kind || !owner) {
		pr_err("liveupdate_prepare: out of memory placing %zu inherited files",
		       n);
		err = -ENOMEM;
		goto out;
	}
	for (int fd = 0; fd < size; fd++)
		owner[fd] = -1;
	for (size_t k = 0; k < nopen; k++)
		kind[open[k]] = 1;
	for (size_t k = 0; k < n; k++) {
		kind[fds[k]] = 2;
		owner[fds[k]] = (int)k;
	}
	b = lowest_room(kind, size, n);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (b < 0 || (rlim_t)b + n >= rl.rlim_cur) {
		pr_warn("liveupdate_prepare: the %zu inherited files need descriptors %d to %zu, above RLIMIT_NOFILE %llu (one run free of other descriptors, 64 free below it): raise the limit",
			n, b, (size_t)b + n, (unsigned long long)rl.rlim_cur);
		err = -EMFILE;
		goto out;
	}
	/*
	 * File i goes to b + i, the sentinel to b + n.  A reference already
	 * on a slot that is not its own moves aside first (to the lowest free
	 * number, maybe a later slot it is moved from again).  F_DUPFD onto a
	 * number found free, never dup2(): a number another thread took in
	 * between is detected, not closed.
	 */
	for (i = 0; i <= n; i++) {
		int t = b + (int)i, src = i < n ? fds[i] : -1, got;

		if (i < n && src == t) {
			if (fcntl(t, F_SETFD, 0)) {
				err = -errno;
				goto fail;
			}
			continue;
		}
		if (owner[t] >= 0) {
			int j = owner[t], aside = fcntl(t, F_DUPFD_CLOEXEC, 3);

			if (aside < 0 || aside >= size) {
				err = aside < 0 ? -errno : -EAGAIN;
				if (aside >= 0)
					close(aside);
				goto fail;
			}
			close(t);
			owner[t] = -1;
			fds[j] = aside;
			owner[aside] = j;
		}
		if (i == n) {
			/* The sentinel: a carrier with nothing in flight. */
			err = luo_carrier_send(NULL, 0, &rx, &rx_ino);
			if (err)
				goto fail;
			src = rx;
			if (rx == t) {
				if (fcntl(t, F_SETFD, 0)) {
					err = -errno;
					goto fail;
				}
				rx = -1;
				*sentinel = t;
				break;
			}
		}
		got = fcntl(src, F_DUPFD, t);
		if (got != t) {
			err = got < 0 ? -errno : -EAGAIN;
			if (got >= 0)
				close(got);
			goto fail;
		}
		close(src);
		if (i < n) {
			owner[src] = -1;
			fds[i] = t;
			owner[t] = (int)i;
		} else {
			rx = -1;
			*sentinel = t;
		}
	}
	*ino = rx_ino;
	*base = b;
	goto out;
fail:
	/* Every reference stays ours, where it is now, closed on exec. */
	for (size_t k = 0; k < n; k++)
		fcntl(fds[k], F_SETFD, FD_CLOEXEC);
	if (err == -EMFILE || err == -ENFILE)
		luo_log_fd_shortage(
			"liveupdate_prepare",
			"the inherited range of the preserved files", err);
	else
		pr_warn("liveupdate_prepare: cannot place %zu inherited files at %d (slot %zu: %s): another thread opened descriptors there",
			n, b, i, strerror(-err));
out:
	if (rx >= 0)
		close(rx);
	free(open);
	free(kind);
	free(owner);
	return err;
}

void luo_inherit_restore(const int *fds, size_t n, int sentinel)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	if (sentinel >= 0)
		close(sentinel);
}

/* A hole seen first thing in luo_init(), before the library itself
 * opened anything that could fill it. */
static struct {
	int base, sentinel;
	bool holes;
} early = {-1, -1, false};

void luo_inherit_probe_early(int base, int sentinel, int src)
{
	int probe = fcntl(src, F_DUPFD_CLOEXEC, base);

	early.base = base;
	early.sentinel = sentinel;
	early.holes = probe >= 0 && probe < sentinel;
	if (probe >= 0)
		close(probe);
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
	if (early.base == base && early.sentinel == sentinel && early.holes)
		*holes = true;
	early.base = early.sentinel = -1;
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
