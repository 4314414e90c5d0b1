// SPDX-License-Identifier: MIT
/*
 * Built-in file handlers.  The open file itself crosses the exec (on the
 * carrier, see luo_carrier.c), so a built-in handler only has to know its
 * kind of file: accept it, and record a u64 that describes it (shown by
 * tools; the kernel passing the very file is what guarantees identity).
 * What survives for each kind is in docs/preserved-files.md.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luo_internal.h"

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

/* memfd: the same inode, so the same pages, size, seals and offset. */
static bool memfd_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_memfd(fd);
}

/* The seals when preserved, for tools to show. */
static int memfd_record(struct liveupdate_file_op_args *args)
{
	int seals = fcntl(args->fd, F_GET_SEALS);

	args->serialized_data = seals < 0 ? 0 : (uint64_t)seals;
	return 0;
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

/* Pipes, FIFOs and regular files: the access mode. */
static int accmode_preserve(struct liveupdate_file_op_args *args)
{
	int fl = fcntl(args->fd, F_GETFL);

	args->serialized_data = fl < 0 ? 0 : (uint64_t)(fl & O_ACCMODE);
	return 0;
}

static bool pipe_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_type(fd, S_IFIFO);
}

/* eventfd and timerfd: the counter and the timer live in the file. */
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

static int zero_preserve(struct liveupdate_file_op_args *args)
{
	args->serialized_data = 0;
	return 0;
}

/*
 * epoll: only when the files are inherited (LUO_INIT_EXEC_INHERIT): the
 * instance and its registrations cross the exec untouched, each keyed by
 * the number its target had when it was added and delivering the data
 * the service gave it.  Prepare checks that every target is preserved
 * (luo_epoll_check_targets(), src/participants/luo_epoll.c).
 */
static bool epoll_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return (luo_global.init_flags & LUO_INIT_EXEC_INHERIT) &&
	       is_anon(fd, "anon_inode:[eventpoll]");
}

static bool file_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return is_type(fd, S_IFREG) && fcntl(fd, F_GET_SEALS) < 0;
}

static const struct liveupdate_file_ops memfd_ops = {
	.can_preserve = memfd_can,
	.preserve = memfd_record,
};

static const struct liveupdate_file_ops socket_ops = {
	.can_preserve = socket_can,
	.preserve = socket_preserve,
};

static const struct liveupdate_file_ops pipe_ops = {
	.can_preserve = pipe_can,
	.preserve = accmode_preserve,
};

static const struct liveupdate_file_ops eventfd_ops = {
	.can_preserve = eventfd_can,
	.preserve = zero_preserve,
};

static const struct liveupdate_file_ops timerfd_ops = {
	.can_preserve = timerfd_can,
	.preserve = zero_preserve,
};

static const struct liveupdate_file_ops epoll_ops = {
	.can_preserve = epoll_can,
	.preserve = zero_preserve,
};

static const struct liveupdate_file_ops file_ops = {
	.can_preserve = file_can,
	.preserve = accmode_preserve,
};

static struct liveupdate_file_handler builtins[] = {
	{.ops = &memfd_ops, .compatible = "memfd-v1"},
	{.ops = &socket_ops, .compatible = "socket-v1"},
	{.ops = &pipe_ops, .compatible = "pipe-v1"},
	{.ops = &eventfd_ops, .compatible = "eventfd-v1"},
	{.ops = &timerfd_ops, .compatible = "timerfd-v1"},
	{.ops = &file_ops, .compatible = "file-v1"},
	{.ops = &epoll_ops, .compatible = LUO_EPOLL_COMPATIBLE},
};

/* What the built-in handlers take, for the message about what they do not. */
const char luo_fd_handlers_supported[] =
	"memfds, regular files, pipes and FIFOs, eventfds, timerfds, and TCP, UDP and Unix sockets (stream, datagram, seqpacket); epoll instances when the files are inherited (LUO_INIT_EXEC_INHERIT)";

static const struct {
	const char *link, *kind;
} anon_kinds[] = {
	{"anon_inode:[eventpoll]", "an epoll instance"},
	{"anon_inode:inotify", "an inotify instance"},
	{"anon_inode:[fanotify]", "a fanotify instance"},
	{"anon_inode:[signalfd]", "a signalfd"},
	{"anon_inode:[pidfd]", "a pidfd"},
	{"anon_inode:[io_uring]", "an io_uring instance"},
	{"anon_inode:[userfaultfd]", "a userfaultfd"},
	{"anon_inode:[perf_event]", "a perf event"},
};

/*
 * The kind of file @fd is, in words, for the message that no handler can
 * preserve it.
 */
const char *luo_fd_kind(int fd, const struct stat *st, char *buf, size_t len)
{
	char path[64], target[128] = "";
	int domain = -1, type = -1;
	socklen_t sl = sizeof(int);
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	switch (st->st_mode & S_IFMT) {
	case S_IFCHR:
		snprintf(buf, len, "a character device (%s)", target);
		return buf;
	case S_IFBLK:
		snprintf(buf, len, "a block device (%s)", target);
		return buf;
	case S_IFDIR:
		snprintf(buf, len, "a directory (%s)", target);
		return buf;
	case S_IFSOCK:
		getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl);
		sl = sizeof(int);
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl);
		if (domain == AF_PACKET)
			snprintf(buf, len, "a packet socket");
		else if (domain == AF_NETLINK)
			snprintf(buf, len, "a netlink socket");
		else if (type == SOCK_RAW)
			snprintf(buf, len, "a raw socket (domain %d)", domain);
		else
			snprintf(buf, len, "a socket of domain %d, type %d",
				 domain, type);
		return buf;
	default:
		break;
	}
	for (size_t i = 0; i < sizeof(anon_kinds) / sizeof(anon_kinds[0]); i++)
		if (!strcmp(target, anon_kinds[i].link))
			return anon_kinds[i].kind;
	if (!strncmp(target, "pidfd:", 6))
		return "a pidfd";
	if (!strncmp(target, "anon_inode:", 11))
		snprintf(buf, len, "an anonymous-inode file (%s)", target + 11);
	else
		snprintf(buf, len, "a file of mode %#o (%s)",
			 (unsigned int)st->st_mode, target);
	return buf;
}

/**
 * luo_fd_handlers() - the built-in file handlers.
 * @count: their number.
 *
 * The participants' file registry adds them at luo_init().
 *
 * Return: the table.
 */
struct liveupdate_file_handler *luo_fd_handlers(size_t *count)
{
	*count = sizeof(builtins) / sizeof(builtins[0]);
	return builtins;
}
