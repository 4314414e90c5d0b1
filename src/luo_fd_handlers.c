// SPDX-License-Identifier: MIT
/*
 * Built-in file handlers.  The open file itself survives execve(), so what
 * a handler adds is knowing its kind of file: accepting it, recording a
 * u64 that describes it, and checking in the new image that the inherited
 * descriptor is still that kind (the library already checked it is the
 * same file: type, device, inode).  What survives for each kind is in
 * docs/preserved-files.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "luo_internal.h"
#include "luo_session_internal.h"

static bool is_type(int fd, mode_t type)
{
	struct stat st;

	return !fstat(fd, &st) && (st.st_mode & S_IFMT) == type;
}

static bool is_memfd(int fd)
{
	return is_type(fd, S_IFREG) && fcntl(fd, F_GET_SEALS) >= 0;
}

static bool is_anon(int fd, const char *what)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, what);
}

/* Handler data: a fingerprint of the file's kind, checked on retrieval. */
static int check_retrieved(struct liveupdate_file_op_args *args, uint64_t now)
{
	if (now == args->serialized_data)
		return 0;
	pr_err("handler '%s': fd %d changed kind (%#llx, preserved as %#llx)",
	       args->handler->compatible, args->fd, (unsigned long long)now,
	       (unsigned long long)args->serialized_data);
	return -ESTALE;
}

/* memfd: the same inode, so the same pages, size, seals and offset. */
static uint64_t memfd_print(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals < 0 ? UINT64_MAX : (uint64_t)seals;
}

static bool memfd_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_memfd(fd);
}

static int memfd_preserve(struct liveupdate_file_op_args *args)
{
	args->serialized_data = memfd_print(args->fd);
	return 0;
}

/* Seals may only grow; re-read them at freeze so the check is exact. */
static int memfd_freeze(struct liveupdate_file_op_args *args)
{
	args->serialized_data = memfd_print(args->fd);
	return 0;
}

static int memfd_retrieve(struct liveupdate_file_op_args *args)
{
	return check_retrieved(args, memfd_print(args->fd));
}

/* Sockets: domain, type and whether listening. */
static uint64_t socket_print(int fd)
{
	int domain = -1, type = -1, listening = 0;
	socklen_t len = sizeof(int);

	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
	return (uint64_t)(uint32_t)domain << 32 |
	       (uint64_t)(uint16_t)type << 16 | (listening ? 1 : 0);
}

static bool socket_can(struct liveupdate_file_handler *h, int fd)
{
	uint64_t p;
	int domain, type;

	(void)h;
	if (!is_type(fd, S_IFSOCK))
		return false;
	p = socket_print(fd);
	domain = (int)(p >> 32);
	type = (int)((p >> 16) & 0xffff);
	return (domain == AF_INET || domain == AF_INET6 || domain == AF_UNIX) &&
	       (type == SOCK_STREAM || type == SOCK_DGRAM ||
		type == SOCK_SEQPACKET);
}

static int socket_preserve(struct liveupdate_file_op_args *args)
{
	args->serialized_data = socket_print(args->fd);
	return 0;
}

static int socket_retrieve(struct liveupdate_file_op_args *args)
{
	return check_retrieved(args, socket_print(args->fd));
}

/* Pipes and FIFOs: which end. */
static uint64_t accmode_print(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? UINT64_MAX : (uint64_t)(fl & O_ACCMODE);
}

static bool pipe_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_type(fd, S_IFIFO);
}

static int accmode_preserve(struct liveupdate_file_op_args *args)
{
	args->serialized_data = accmode_print(args->fd);
	return 0;
}

static int accmode_retrieve(struct liveupdate_file_op_args *args)
{
	return check_retrieved(args, accmode_print(args->fd));
}

/*
 * eventfd and timerfd: the counter and the timer live in the file.  All
 * anonymous-inode files share one inode, so the library's identity check
 * cannot tell them apart: check the kind again, and for an eventfd its id.
 */
static uint64_t eventfd_id(int fd)
{
	char path[64], buf[512];
	const char *p;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return UINT64_MAX;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return UINT64_MAX;
	buf[n] = 0;
	p = strstr(buf, "eventfd-id:");
	return p ? strtoull(p + 11, NULL, 10) : UINT64_MAX;
}

static int eventfd_preserve(struct liveupdate_file_op_args *args)
{
	args->serialized_data = eventfd_id(args->fd);
	return 0;
}

static int eventfd_retrieve(struct liveupdate_file_op_args *args)
{
	if (!is_anon(args->fd, "anon_inode:[eventfd]"))
		return check_retrieved(args, UINT64_MAX - 1);
	return check_retrieved(args, eventfd_id(args->fd));
}

static int timerfd_retrieve(struct liveupdate_file_op_args *args)
{
	return check_retrieved(args, is_anon(args->fd, "anon_inode:[timerfd]")
					     ? 0
					     : UINT64_MAX);
}

static bool eventfd_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_anon(fd, "anon_inode:[eventfd]");
}

static bool timerfd_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_anon(fd, "anon_inode:[timerfd]");
}

static int anon_preserve(struct liveupdate_file_op_args *args)
{
	args->serialized_data = 0;
	return 0;
}

/* Regular files: the open file description, so offset and flags. */
static bool file_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_type(fd, S_IFREG) && !is_memfd(fd);
}

static const struct liveupdate_file_ops memfd_ops = {
	.can_preserve = memfd_can,
	.preserve = memfd_preserve,
	.freeze = memfd_freeze,
	.retrieve = memfd_retrieve,
};

static const struct liveupdate_file_ops socket_ops = {
	.can_preserve = socket_can,
	.preserve = socket_preserve,
	.retrieve = socket_retrieve,
};

static const struct liveupdate_file_ops pipe_ops = {
	.can_preserve = pipe_can,
	.preserve = accmode_preserve,
	.retrieve = accmode_retrieve,
};

static const struct liveupdate_file_ops eventfd_ops = {
	.can_preserve = eventfd_can,
	.preserve = eventfd_preserve,
	.retrieve = eventfd_retrieve,
};

static const struct liveupdate_file_ops timerfd_ops = {
	.can_preserve = timerfd_can,
	.preserve = anon_preserve,
	.retrieve = timerfd_retrieve,
};

static const struct liveupdate_file_ops file_ops = {
	.can_preserve = file_can,
	.preserve = accmode_preserve,
	.retrieve = accmode_retrieve,
};

static struct liveupdate_file_handler builtins[] = {
	{.ops = &memfd_ops, .compatible = "memfd-v1"},
	{.ops = &socket_ops, .compatible = "socket-v1"},
	{.ops = &pipe_ops, .compatible = "pipe-v1"},
	{.ops = &eventfd_ops, .compatible = "eventfd-v1"},
	{.ops = &timerfd_ops, .compatible = "timerfd-v1"},
	{.ops = &file_ops, .compatible = "file-v1"},
};

int luo_fd_handlers_register(void)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		int err;

		builtins[i].next = NULL;
		err = luo_builtin_handler_add(&builtins[i]);
		if (err)
			return err;
	}
	return 0;
}
