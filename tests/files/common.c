// SPDX-License-Identifier: MIT
/* Helpers shared by the session and preserved-file end-to-end tests. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static int value_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	*data = *(const uint64_t *)h->arg;
	return 0;
}

const struct liveupdate_subsystem_ops test_value_ops = {
	.prepare = value_prepare,
};

void self_exe(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);

	REQUIRE(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
	buf[n] = 0;
}

int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

int fd_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	return fl < 0 ? -1 : !!(fl & FD_CLOEXEC);
}

int same_open_file(int a, int b)
{
	pid_t me = getpid();
	long r = syscall(SYS_kcmp, me, me, KCMP_FILE, a, b);

	if (r < 0)
		return -1;
	return r == 0;
}

/* Every open descriptor but the scan's own, passed to @match. */
static int scan_fds(int (*match)(int fd, void *arg), void *arg, int *out,
		    int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0, self;
	int *all = NULL;
	size_t nall = 0, cap = 0;

	REQUIRE(d, "opendir /proc/self/fd: %s", strerror(errno));
	self = dirfd(d);
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (e->d_name[0] == '.' || *end || fd == self)
			continue;
		if (nall == cap) {
			cap = cap ? cap * 2 : 64;
			all = realloc(all, cap * sizeof(*all));
			REQUIRE(all, "out of memory");
		}
		all[nall++] = (int)fd;
	}
	closedir(d);
	/* readdir order is the kernel's: sort for stable results. */
	for (size_t i = 1; i < nall; i++)
		for (size_t k = i; k > 0 && all[k - 1] > all[k]; k--) {
			int t = all[k];

			all[k] = all[k - 1];
			all[k - 1] = t;
		}
	for (size_t i = 0; i < nall; i++) {
		if (!match(all[i], arg))
			continue;
		if (n < max)
			out[n] = all[i];
		n++;
	}
	free(all);
	return n;
}

struct ino_key {
	uint64_t dev, ino;
	const char *id;
};

static int match_inode(int fd, void *arg)
{
	const struct ino_key *k = arg;
	struct stat st;
	char id[256];

	if (fstat(fd, &st) || (uint64_t)st.st_dev != k->dev ||
	    (uint64_t)st.st_ino != k->ino)
		return 0;
	if (!k->id)
		return 1;
	fd_identity(fd, id, sizeof(id));
	return !strcmp(id, k->id);
}

int fds_of_inode(uint64_t dev, uint64_t ino, int *out, int max)
{
	struct ino_key k = {dev, ino, NULL};

	return scan_fds(match_inode, &k, out, max);
}

int fds_of_identity(uint64_t dev, uint64_t ino, const char *id, int *out,
		    int max)
{
	struct ino_key k = {dev, ino, id};

	return scan_fds(match_inode, &k, out, max);
}

void fd_identity(int fd, char *buf, size_t len)
{
	char path[64], line[256];
	ssize_t n;
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	if (n < 0) {
		buf[0] = 0;
		return;
	}
	buf[n] = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	/* The access mode tells the two ends of a pipe or FIFO apart. */
	n = fcntl(fd, F_GETFL);
	snprintf(line, sizeof(line), "|acc=%d",
		 n < 0 ? -1 : (int)(n & O_ACCMODE));
	strncat(buf, line, len - strlen(buf) - 1);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "eventfd-id:", 11)) {
			line[strcspn(line, "\n")] = 0;
			strncat(buf, "|", len - strlen(buf) - 1);
			strncat(buf, line, len - strlen(buf) - 1);
		}
	}
	fclose(f);
}

static int match_no_cloexec(int fd, void *arg)
{
	(void)arg;
	return fd > 2 && fd_cloexec(fd) == 0;
}

int fds_without_cloexec(int *out, int max)
{
	return scan_fds(match_no_cloexec, NULL, out, max);
}

static int match_above_stdio(int fd, void *arg)
{
	(void)arg;
	return fd > 2;
}

int fds_all(int *out, int max)
{
	return scan_fds(match_above_stdio, NULL, out, max);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			poll(&pfd, 1, 1000);
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int r;

	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	return r;
}

ssize_t read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n;
		int r = wait_readable(fd, timeout_ms);

		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n = read(fd, p + got, len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return got ? (ssize_t)got : -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool link_has(int fd, const char *marker)
{
	char path[64], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return strstr(target, marker) != NULL;
}

int arena_memfd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	while (d && (e = readdir(d))) {
		char path[300], link[128];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0 &&
		    (link[n] = 0, !strncmp(link, "/memfd:luo-arena", 16))) {
			found = atoi(e->d_name);
			break;
		}
	}
	if (d)
		closedir(d);
	return found;
}

uint64_t scattered_token(int i)
{
	uint64_t x = (uint64_t)i + 0x9e3779b97f4a7c15ULL;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	return x;
}
