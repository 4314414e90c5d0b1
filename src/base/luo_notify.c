// SPDX-License-Identifier: MIT
/*
 * systemd's notify protocol, written out: one datagram of newline-separated
 * KEY=VALUE lines on the AF_UNIX socket that $NOTIFY_SOCKET names (a path,
 * or an abstract name written with a leading '@').  The manager learns the
 * sender's PID from the kernel (it sets SO_PASSCRED), so nothing else goes
 * with the message.  No libsystemd: the protocol is stable and documented
 * (sd_notify(3)), and the library depends on nothing beyond libc and libfdt.
 *
 * The variable is read once and kept, so that a service that clears its
 * environment still reaches the manager and hands the socket on to its
 * next image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <luo/notify.h>

#include "log.h"
#include "luo_notify.h"

#define NOTIFY_ENV "NOTIFY_SOCKET"

static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t notify_once = PTHREAD_ONCE_INIT;
/* "NOTIFY_SOCKET=VALUE", or empty when unset or unusable. */
static char notify_entry[sizeof(NOTIFY_ENV) + sizeof(struct sockaddr_un)];
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen; /* 0: send nothing */
static int notify_fd = -1;

static void capture(void)
{
	const char *v = getenv(NOTIFY_ENV);
	size_t n = v ? strlen(v) : 0;

	if (!v || !n)
		return;
	if ((v[0] != '/' && v[0] != '@') || n >= sizeof(notify_addr.sun_path)) {
		/* E.g. systemd 253's vsock: addresses: not ours to speak. */
		pr_warn("%s=%s is neither a socket path nor an abstract '@' name of at most %zu bytes; not notifying the service manager",
			NOTIFY_ENV, v, sizeof(notify_addr.sun_path) - 1);
		return;
	}
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, v, n);
	if (v[0] == '@')
		notify_addr.sun_path[0] = '\0';
	/* An abstract name is exactly its bytes; a path ends with its NUL. */
	notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				     n + (v[0] == '/'));
	snprintf(notify_entry, sizeof(notify_entry), "%s=%s", NOTIFY_ENV, v);
}

void luo_notify_capture(void)
{
	pthread_once(&notify_once, capture);
}

bool luo_notify_enabled(void)
{
	luo_notify_capture();
	return notify_addrlen > 0;
}

const char *luo_notify_env_entry(void)
{
	luo_notify_capture();
	return notify_entry[0] ? notify_entry : NULL;
}

/* One unconnected datagram socket for the life of the process. */
static int notify_socket(void)
{
	struct timeval tv = {.tv_sec = 1};

	if (notify_fd >= 0)
		return notify_fd;
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd < 0)
		return -errno;
	/* A manager that does not read must not hang the service. */
	setsockopt(notify_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return notify_fd;
}

int luo_notify_fds(const char *msg, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(LUO_NOTIFY_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov;
	struct msghdr mh = {0};
	ssize_t n;
	int fd, err = 0;

	if (!msg || !*msg || nfds > LUO_NOTIFY_MAX_FDS || (nfds && !fds))
		return -EINVAL;
	luo_notify_capture();
	if (!notify_addrlen)
		return getenv(NOTIFY_ENV) && *getenv(NOTIFY_ENV) ? -EINVAL : 0;
	iov.iov_base = (void *)msg;
	iov.iov_len = strlen(msg);
	mh.msg_name = &notify_addr;
	mh.msg_namelen = notify_addrlen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cmsg, 0, sizeof(cmsg));
		mh.msg_control = cmsg.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	pthread_mutex_lock(&notify_lock);
	fd = notify_socket();
	if (fd < 0) {
		err = fd;
	} else {
		do
			n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			err = -errno;
	}
	pthread_mutex_unlock(&notify_lock);
	if (err) {
		pr_warn("cannot notify the service manager on %s: %s; systemd will not see this state change (check NotifyAccess= and that the manager still runs)",
			notify_entry + sizeof(NOTIFY_ENV), strerror(-err));
		return err;
	}
	return 1;
}

int luo_notify(const char *msg)
{
	return luo_notify_fds(msg, NULL, 0);
}
