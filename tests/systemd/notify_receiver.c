// SPDX-License-Identifier: MIT
/*
 * notify, the manager's side: a receiver like systemd's on a real
 * datagram socket, the service started as a child, its messages collected
 * and read.  The cases are in notify.c and notify_fdstore.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#include "check.h"
#include "notify.h"

uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* A receiver like systemd's: SOCK_DGRAM, SO_PASSCRED. */
int receiver(bool abstract, char *value, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t salen;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;

	if (abstract) {
		snprintf(value, len, "@luo-notify-test-%d", (int)getpid());
		memcpy(sa.sun_path, value, strlen(value));
		sa.sun_path[0] = '\0';
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				    strlen(value));
	} else {
		snprintf(value, len, "/tmp/luo-notify-test-%d.sock",
			 (int)getpid());
		unlink(value);
		strcpy(sa.sun_path, value);
		salen = sizeof(sa);
	}
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, 4) ||
	    bind(fd, (struct sockaddr *)&sa, salen)) {
		perror("notify: receiver");
		exit(1);
	}
	return fd;
}

/* Messages until STOPPING=1, the child's exit or 30 s; returns count. */
int collect(int fd, pid_t child, struct msg *m, int max, int *status)
{
	int n = 0;
	bool exited = false;
	uint64_t deadline = mono_us() + 30000000ULL;

	while (n < max && mono_us() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char cbuf[CMSG_SPACE(sizeof(struct ucred)) +
			  CMSG_SPACE(8 * sizeof(int))];
		struct iovec iov = {m[n].text, sizeof(m[n].text) - 1};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf)};
		ssize_t len;

		if (poll(&p, 1, 100) <= 0) {
			if (exited)
				break;
			if (waitpid(child, status, WNOHANG) == child)
				exited = true; /* drain what is queued */
			continue;
		}
		len = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (len < 0)
			continue;
		m[n].text[len] = '\0';
		m[n].at_us = mono_us();
		m[n].pid = 0;
		m[n].fd = -1;
		m[n].nfds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
		     c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred u;

				memcpy(&u, CMSG_DATA(c), sizeof(u));
				m[n].pid = u.pid;
			} else if (c->cmsg_type == SCM_RIGHTS) {
				m[n].nfds = (int)((c->cmsg_len - CMSG_LEN(0)) /
						  sizeof(int));
				memcpy(&m[n].fd, CMSG_DATA(c), sizeof(int));
			}
		}
		n++;
	}
	if (!exited && waitpid(child, status, 0) != child)
		*status = -1;
	return n;
}

pid_t spawn(const char *self, char *const argv[], const char *notify)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (notify)
			setenv("NOTIFY_SOCKET", notify, 1);
		else
			unsetenv("NOTIFY_SOCKET");
		execv(self, argv);
		_exit(127);
	}
	return pid;
}

bool has_line(const struct msg *m, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = m->text; p && *p;) {
		if (!strncmp(p, line, n) && (p[n] == '\n' || !p[n]))
			return true;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return false;
}

const char *value_of(const struct msg *m, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = m->text; p && *p;) {
		if (!strncmp(p, key, n) && p[n] == '=')
			return p + n + 1;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return NULL;
}

void show(const struct msg *m, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  [%d] pid %d: %s\n", i, (int)m[i].pid,
			m[i].text);
}
