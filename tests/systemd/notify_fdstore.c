// SPDX-License-Identifier: MIT
/*
 * notify fdstore|restarted: systemd's descriptor store (LUO_FDSTORE=1).
 * Both sides of each case: the service that runs as "notify service ..."
 * in a child, and the manager that receives its messages (notify.c has
 * main() and the protocol's cases).
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

/* Under a store: the arena, one listener of two files, then removals. */
int service_fdstore(void)
{
	struct luo_session *s;
	int l = socket(AF_INET, SOCK_STREAM, 0), sp[2];
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	CHECK(l >= 0 && !bind(l, (struct sockaddr *)&a, sizeof(a)) &&
		      !listen(l, 4),
	      "listener");
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sp), "socketpair");
	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(liveupdate_create_session("kv:1", &s) == 0, "session");
	CHECK(liveupdate_session_preserve_fd(s, l, 7) == 0, "preserve");
	CHECK(liveupdate_session_preserve_fd(s, sp[0], 8) == 0, "preserve");
	CHECK(liveupdate_session_unpreserve_fd(s, 8) == 0, "unpreserve");
	CHECK(liveupdate_session_unpreserve_fd(s, 7) == 0, "unpreserve");
	CHECK(liveupdate_session_close(s) == 0, "close");
	/* The new image's arena is the stored one: not sent again. */
	CHECK(liveupdate_prepare() == 0, "prepare");
	CHECK(liveupdate_reboot(
		      "/proc/self/exe",
		      (char *[]){"notify", "service", "fdstore-updated", NULL},
		      NULL) == 0,
	      "reboot");
	return 1;
}

int service_fdstore_updated(void)
{
	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "updated");
	CHECK(liveupdate_finish() == 0, "finish");
	CHECK(luo_exit() == 0, "exit");
	return failures ? 1 : 0;
}

/* Started again by a manager after a crash: fds 3 (arena), 4 (listener). */
int service_restarted(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = -1, c, acc = 0;
	socklen_t alen = sizeof(acc);

	struct stat old_arena, st;
	char path[64];

	CHECK(!fstat(3, &old_arena), "no fd 3");
	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(!getenv("LISTEN_FDS") && !getenv("LISTEN_PID") &&
		      !getenv("LISTEN_FDNAMES"),
	      "LISTEN_* still set");
	CHECK(liveupdate_fdstore_retrieve("kv", 1, &fd) == 0, "retrieve");
	CHECK(fd == 4, "the listener is fd %d, not 4", fd);
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "no FD_CLOEXEC");
	CHECK(!getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) && acc,
	      "not listening");
	CHECK(liveupdate_fdstore_retrieve("kv", 1, &c) == -ENOENT,
	      "retrieved twice");
	CHECK(liveupdate_fdstore_retrieve("kv", 2, &c) == -ENOENT,
	      "a token that was not stored");
	/* The client that connected while nobody served is in the backlog. */
	c = accept(fd, (struct sockaddr *)&a, &len);
	CHECK(c >= 0 && write(c, "hi", 2) == 2, "accept from the backlog");
	/* The crashed image's arena is closed, not kept. */
	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
		CHECK(stat(path, &st) || st.st_ino != old_arena.st_ino ||
			      st.st_dev != old_arena.st_dev,
		      "fd %d is the old arena", i);
	}
	CHECK(luo_notify_ready() == 1, "ready");
	return failures ? 1 : 0;
}

static bool is_memfd(int fd)
{
	char link[64], target[128];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return !strncmp(target, "/memfd:", 7);
}

static bool is_listener(int fd)
{
	int acc = 0;
	socklen_t len = sizeof(acc);

	return !getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) && acc;
}

/* Only listeners and the arena go to the store, and come out again. */
void fdstore(const char *self)
{
	char value[108];
	char *argv[] = {(char *)self, "service", "fdstore", NULL};
	struct msg m[16];
	int fd = receiver(true, value, sizeof(value)), status = 0, n;
	pid_t child;

	setenv("LUO_FDSTORE", "1", 1);
	child = spawn(self, argv, value);
	unsetenv("LUO_FDSTORE");
	n = collect(fd, child, m, 16, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "service failed (status %#x)", status);
	/* arena, listener, listener removed, stopping, arena removed */
	CHECK(n == 5, "%d messages, expected 5", n);
	if (n == 5) {
		CHECK(!strcmp(m[0].text, "FDSTORE=1\nFDNAME=luo.arena") &&
			      m[0].nfds == 1 && is_memfd(m[0].fd),
		      "the arena");
		CHECK(!strcmp(m[1].text, "FDSTORE=1\nFDNAME=luo.s.kv%3A1.7") &&
			      m[1].nfds == 1 && is_listener(m[1].fd),
		      "the listener");
		CHECK(!strcmp(m[2].text,
			      "FDSTOREREMOVE=1\nFDNAME=luo.s.kv%3A1.7") &&
			      m[2].nfds == 0,
		      "the listener's removal");
		CHECK(has_line(&m[3], "STOPPING=1"), "stopping");
		CHECK(m[3].pid == child && m[4].pid == child,
		      "not from the same PID after the update");
		CHECK(!strcmp(m[4].text, "FDSTOREREMOVE=1\nFDNAME=luo.arena"),
		      "the arena's removal");
	}
	if (failures)
		show(m, n);
	close(fd);
}

/* What a manager hands back after a crash is found by name. */
void restarted(const char *self)
{
	char value[108];
	char *argv[] = {(char *)self, "service", "restarted", NULL};
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct msg m[16];
	int fd = receiver(true, value, sizeof(value)), status = 0, n;
	int l = socket(AF_INET, SOCK_STREAM, 0), arena, c;
	char buf[2];
	pid_t child;

	arena = memfd_create("luo-arena", MFD_CLOEXEC);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 4) || getsockname(l, (struct sockaddr *)&a, &len) ||
	    arena < 0) {
		perror("notify: restarted");
		exit(1);
	}
	/* A client of the crashed service, waiting in the backlog. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(!connect(c, (struct sockaddr *)&a, sizeof(a)), "connect");
	child = fork();
	if (child == 0) {
		char pid[16];

		dup2(arena, 3);
		dup2(l, 4);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_PID", pid, 1);
		setenv("LISTEN_FDS", "2", 1);
		/* Order is not kept: found by name. */
		setenv("LISTEN_FDNAMES", "luo.arena:luo.s.kv.1", 1);
		setenv("LUO_FDSTORE", "1", 1);
		setenv("NOTIFY_SOCKET", value, 1);
		execv(self, argv);
		_exit(127);
	}
	close(l);
	n = collect(fd, child, m, 16, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "service failed (status %#x)", status);
	CHECK(read(c, buf, 2) == 2 && !memcmp(buf, "hi", 2),
	      "the waiting client was not served");
	/*
	 * the crashed arena dropped, the new one stored, the listener taken
	 * and not preserved again removed, ready
	 */
	CHECK(n == 4, "%d messages, expected 4", n);
	if (n == 4) {
		CHECK(!strcmp(m[0].text, "FDSTOREREMOVE=1\nFDNAME=luo.arena"),
		      "the old arena's removal");
		CHECK(!strcmp(m[1].text, "FDSTORE=1\nFDNAME=luo.arena") &&
			      m[1].nfds == 1 && is_memfd(m[1].fd),
		      "the new arena");
		CHECK(!strcmp(m[2].text, "FDSTOREREMOVE=1\nFDNAME=luo.s.kv.1"),
		      "the listener not preserved again kept in the store");
		CHECK(has_line(&m[3], "READY=1"), "ready");
	}
	if (failures)
		show(m, n);
	close(fd);
}
