// SPDX-License-Identifier: MIT
/*
 * The carrier: preserved files cross the exec in flight on one Unix
 * socket.  At freeze the old image sends them all with SCM_RIGHTS, 253 to
 * a message; only the receiving end is inherited; the new image takes
 * them in again with MSG_CMSG_CLOEXEC.
 *
 * Why not simply inherit every descriptor: that needs FD_CLOEXEC cleared
 * on each before the exec and set again after, two system calls per file
 * inside the blackout, and leaves descriptor numbers that the new image
 * may close or reuse before it looks.  In flight, the kernel keeps the
 * very open files, whole batches cost one system call, and no descriptor
 * lacks FD_CLOEXEC at any moment but the carrier's own.  A service that
 * accepts those costs opts in to inheritance (luo_inherit.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <luo/abi.h>

#include "log.h"
#include "luo_internal.h"

#define CMSG_BUF CMSG_SPACE(LUO_CARRIER_BATCH * sizeof(int))

/*
 * One line for a descriptor that could not be had: how many are open,
 * the limit, and what to do (each preserved file costs the library one).
 */
void luo_log_fd_shortage(const char *op, const char *what, int err)
{
	struct rlimit rl = {0};
	unsigned long open_fds = 0;
	DIR *d = opendir("/proc/self/fd");

	if (d) {
		while (readdir(d))
			open_fds++;
		closedir(d);
		open_fds = open_fds > 3 ? open_fds - 3 : 0; /* ., .., d */
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (err == -EMFILE || err == -ENFILE)
		pr_err("%s: no descriptor for %s: %s (%lu open, RLIMIT_NOFILE %llu); the library holds one descriptor per preserved file: close your own descriptor once it is preserved, or raise the limit",
		       op, what, strerror(-err), open_fds,
		       (unsigned long long)rl.rlim_cur);
	else
		pr_err("%s: no descriptor for %s: %s", op, what,
		       strerror(-err));
}

/* Room for everything: nobody reads before the exec, so never block. */
static void grow_sndbuf(int fd, size_t n)
{
	int want = (int)(n / LUO_CARRIER_BATCH + 1) * 4096 + (1 << 16);

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

int luo_carrier_send(const int *fds, size_t n, int *rx, uint64_t *rx_ino)
{
	union {
		char buf[CMSG_BUF];
		struct cmsghdr align;
	} ctl;
	struct stat st;
	int sp[2], err = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		err = -errno;
		luo_log_fd_shortage(
			"liveupdate_freeze",
			"the carrier of the preserved files (2 descriptors)",
			err);
		return err;
	}
	grow_sndbuf(sp[0], n);
	for (size_t first = 0; first < n; first += LUO_CARRIER_BATCH) {
		size_t k = n - first < LUO_CARRIER_BATCH ? n - first
							 : LUO_CARRIER_BATCH;
		struct luo_carrier_msg m = {.magic = LUO_CARRIER_MAGIC,
					    .first = (uint32_t)first,
					    .count = (uint32_t)k};
		struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen =
					     CMSG_SPACE(k * sizeof(int))};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

		memset(ctl.buf, 0, sizeof(ctl.buf));
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(c), fds + first, k * sizeof(int));
		if (sendmsg(sp[0], &msg, MSG_DONTWAIT | MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(m)) {
			err = -errno;
			pr_err("cannot pass preserved files %zu to %zu to the new image: %s%s",
			       first, first + k - 1, strerror(errno),
			       errno == EAGAIN
				       ? " (socket buffer full: raise net.core.wmem_max)"
			       : errno == ETOOMANYREFS
				       ? " (too many files in flight: raise RLIMIT_NOFILE)"
				       : "");
			break;
		}
	}
	close(sp[0]);
	if (!err && fstat(sp[1], &st)) {
		err = -errno;
		pr_err("cannot check the carrier of the preserved files: %s",
		       strerror(errno));
	}
	if (err) {
		close(sp[1]); /* drops whatever was in flight */
		return err;
	}
	*rx = sp[1];
	*rx_ino = st.st_ino;
	return 0;
}

/* Close the first @n received descriptors. */
static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * Take the @n files in again, in order.  @rx is checked to be the carrier
 * before anything is read; it is closed in every case where it was.
 */
int luo_carrier_receive(int rx, uint64_t rx_ino, int *fds, size_t n, char *why,
			size_t whylen)
{
	union {
		char buf[CMSG_BUF];
		struct cmsghdr align;
	} ctl;
	struct stat st;
	size_t got = 0;

	if (rx < 0 || fstat(rx, &st) || !S_ISSOCK(st.st_mode) ||
	    (uint64_t)st.st_ino != rx_ino)
		return luo_reason(
			why, whylen, -ESTALE,
			"descriptor %d is no longer the carrier of the preserved files (closed or replaced before luo_init())",
			rx);
	while (got < n) {
		struct luo_carrier_msg m;
		struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf)};
		struct cmsghdr *c;
		size_t k = 0;
		ssize_t r;

		r = recvmsg(rx, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		c = r > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
		if (c && c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_RIGHTS) {
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			if (got + k > n) {
				/* More than announced: take none of them. */
				close_all((int *)CMSG_DATA(c), k);
				k = 0;
				r = -1;
			} else {
				memcpy(fds + got, CMSG_DATA(c),
				       k * sizeof(int));
			}
		}
		if (r != (ssize_t)sizeof(m) || (msg.msg_flags & MSG_CTRUNC) ||
		    m.magic != LUO_CARRIER_MAGIC || m.first != got ||
		    m.count != k || !k) {
			close_all(fds, got + k);
			close(rx);
			return luo_reason(
				why, whylen, -EBADMSG,
				"the carrier delivered a bad batch after %zu of %zu files",
				got, n);
		}
		got += k;
	}
	close(rx);
	return 0;
}

/* Drop the files in flight without taking them: close the carrier if it
 * still is the carrier. */
void luo_carrier_discard(int rx, uint64_t rx_ino)
{
	struct stat st;

	if (rx >= 0 && !fstat(rx, &st) && S_ISSOCK(st.st_mode) &&
	    (uint64_t)st.st_ino == rx_ino)
		close(rx);
}

/*
 * Close a carrier named only by the environment (a refused or ignored
 * handover), after checking it can only be ours: a Unix stream socket
 * without FD_CLOEXEC whose other end this very process created.
 */
void luo_carrier_discard_unverified(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int domain = 0, type = 0, flags;
	socklen_t ilen = sizeof(int);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) || !S_ISSOCK(st.st_mode))
		return;
	flags = fcntl(fd, F_GETFD);
	if (flags < 0 || (flags & FD_CLOEXEC) ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &ilen) ||
	    domain != AF_UNIX)
		return;
	ilen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) ||
	    type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    cred.pid != getpid())
		return;
	close(fd);
}
