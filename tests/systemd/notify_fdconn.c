// SPDX-License-Identifier: MIT
/*
 * notify fdconn: established connections in systemd's descriptor store
 * (LUO_FDSTORE=connections).  The test plays the manager: it keeps what
 * the service stores, honours the removals, SIGKILLs nothing itself (the
 * service dies by SIGKILL), then starts the service again with what it
 * kept in LISTEN_FDS/LISTEN_FDNAMES, in another order and with names and
 * descriptors the library must refuse.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "check.h"
#include "notify.h"

/* Before the crash: fd 3 is a listener with a client in its backlog. */
int service_conns(void)
{
	struct luo_session *s;
	int c, sp[2], m = memfd_create("plain", MFD_CLOEXEC);

	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(liveupdate_create_session("kv", &s) == 0, "session");
	c = accept4(3, NULL, NULL, SOCK_CLOEXEC);
	CHECK(c >= 0, "accept");
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp),
	      "socketpair");
	CHECK(liveupdate_session_preserve_fd(s, 3, 1) == 0, "preserve 1");
	CHECK(liveupdate_session_preserve_fd(s, c, 2) == 0, "preserve 2");
	CHECK(liveupdate_session_preserve_fd(s, sp[0], 3) == 0, "preserve 3");
	CHECK(liveupdate_session_unpreserve_fd(s, 3) == 0, "unpreserve 3");
	CHECK(liveupdate_session_preserve_fd(s, m, 4) == 0, "preserve 4");
	fflush(NULL);
	raise(SIGKILL);
	return 1;
}

/* After it: fd 3 the connection, 4 the listener, 5-10 to be refused. */
int service_conns_restarted(void)
{
	char buf[8];
	int fd = -1, l = -1, x;

	struct stat conn, st;

	CHECK(!fstat(3, &conn), "no fd 3");
	CHECK(luo_init(NULL) == 0, "luo_init");
	/* Closed (the numbers may be reused by the library's own files). */
	for (int i = 5; i <= 10; i++)
		CHECK(fstat(i, &st) || (!S_ISFIFO(st.st_mode) &&
					(st.st_ino != conn.st_ino ||
					 st.st_dev != conn.st_dev)),
		      "fd %d (refused) is still open", i);
	CHECK(liveupdate_fdstore_retrieve("kv", 2, &fd) == 0,
	      "the connection did not come back");
	CHECK(fd == 3, "the connection is fd %d, not 3", fd);
	CHECK(liveupdate_fdstore_retrieve("kv", 1, &l) == 0 && l == 4,
	      "the listener");
	CHECK(liveupdate_fdstore_retrieve("kv", 3, &x) == -ENOENT,
	      "the unpreserved socket");
	CHECK(liveupdate_fdstore_retrieve("kv", 5, &x) == -ENOENT,
	      "a name handed back twice");
	CHECK(liveupdate_fdstore_retrieve("kv", 6, &x) == -ENOENT, "a pipe");
	CHECK(liveupdate_fdstore_retrieve("k#v", 7, &x) == -ENOENT,
	      "a name that does not parse");
	if (fd == 3) {
		CHECK(read(fd, buf, 5) == 5 && !memcmp(buf, "ping\n", 5),
		      "the client's request");
		CHECK(write(fd, "pong\n", 5) == 5, "answer");
	}
	CHECK(luo_notify_ready() == 1, "ready");
	return failures ? 1 : 0;
}

static bool is_connected(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	return fd >= 0 && !getpeername(fd, (struct sockaddr *)&a, &len);
}

static bool got(const struct msg *m, int n, const char *text)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(m[i].text, text))
			return true;
	return false;
}

void fdconn(const char *self)
{
	char value[108], buf[8];
	char *argv1[] = {(char *)self, "service", "conns", NULL};
	char *argv2[] = {(char *)self, "service", "conns-restarted", NULL};
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct msg m[32];
	int rfd = receiver(true, value, sizeof(value)), status = 0, n;
	int l = socket(AF_INET, SOCK_STREAM, 0), c, p[2];
	int conn = -1, lst = -1;
	pid_t child;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 4) || getsockname(l, (struct sockaddr *)&a, &len) ||
	    pipe(p)) {
		perror("notify: fdconn");
		exit(1);
	}
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(!connect(c, (struct sockaddr *)&a, sizeof(a)), "connect");

	child = fork();
	if (child == 0) {
		dup2(l, 3);
		setenv("LUO_FDSTORE", "connections", 1);
		setenv("NOTIFY_SOCKET", value, 1);
		execv(self, argv1);
		_exit(127);
	}
	n = collect(rfd, child, m, 32, &status);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "the service did not die by SIGKILL (status %#x)", status);
	/* What the manager keeps: the last FDSTORE of a name not removed. */
	for (int i = 0; i < n; i++) {
		if (!strcmp(m[i].text, "FDSTORE=1\nFDNAME=luo.s.kv.2"))
			conn = m[i].fd;
		if (!strcmp(m[i].text, "FDSTORE=1\nFDNAME=luo.s.kv.1"))
			lst = m[i].fd;
	}
	CHECK(is_connected(conn), "the connection was not stored");
	CHECK(got(m, n, "FDSTORE=1\nFDNAME=luo.s.kv.3") &&
		      got(m, n, "FDSTOREREMOVE=1\nFDNAME=luo.s.kv.3"),
	      "the unpreserved socket was not stored and removed");
	CHECK(!got(m, n, "FDSTORE=1\nFDNAME=luo.s.kv.4"), "a memfd was stored");
	CHECK(lst >= 0, "the listener was not stored");
	if (failures) {
		show(m, n);
		close(rfd);
		return;
	}
	/* The client sends while nobody serves: it waits in the socket. */
	CHECK(write(c, "ping\n", 5) == 5, "client write");

	child = fork();
	if (child == 0) {
		char pid[16];
		int order[] = {conn, lst, conn, conn, p[0], conn, conn, conn};

		for (int i = 0; i < 8; i++)
			order[i] = dup(order[i]);
		for (int i = 0; i < 8; i++)
			dup2(order[i], 3 + i);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_PID", pid, 1);
		setenv("LISTEN_FDS", "8", 1);
		setenv("LISTEN_FDNAMES",
		       "luo.s.kv.2:luo.s.kv.1:luo.s.kv.5:luo.s.kv.5:luo.s.kv.6:"
		       "luo.s.kv.02:luo.s.k#v.7:luo.s.kv.18446744073709551616",
		       1);
		setenv("LUO_FDSTORE", "connections", 1);
		setenv("NOTIFY_SOCKET", value, 1);
		execv(self, argv2);
		_exit(127);
	}
	n = collect(rfd, child, m, 32, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "restarted service failed (status %#x)", status);
	CHECK(read(c, buf, 5) == 5 && !memcmp(buf, "pong\n", 5),
	      "the client connected before the crash was not served");
	CHECK(got(m, n, "FDSTOREREMOVE=1\nFDNAME=luo.s.kv.5"),
	      "the duplicate name not removed");
	CHECK(got(m, n, "FDSTOREREMOVE=1\nFDNAME=luo.s.kv.6"),
	      "the pipe not removed");
	CHECK(got(m, n, "FDSTOREREMOVE=1\nFDNAME=luo.s.kv.02") &&
		      got(m, n, "FDSTOREREMOVE=1\nFDNAME=luo.s.k#v.7") &&
		      got(m, n,
			  "FDSTOREREMOVE=1\nFDNAME=luo.s.kv.18446744073709551616"),
	      "the bad names not removed");
	if (failures)
		show(m, n);
	close(rfd);
}

/* A connection stored, then a live update in which it is closed. */
int service_conns_update(void)
{
	struct luo_session *s;
	int sp[2];

	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp),
	      "socketpair");
	CHECK(liveupdate_create_session("kv", &s) == 0, "session");
	CHECK(liveupdate_session_preserve_fd(s, sp[0], 2) == 0, "preserve");
	CHECK(liveupdate_prepare() == 0, "prepare");
	CHECK(liveupdate_reboot(
		      "/proc/self/exe",
		      (char *[]){"notify", "service", "conns-update-new", NULL},
		      NULL) == 0,
	      "reboot");
	return 1;
}

int service_conns_update_new(void)
{
	struct luo_session *in;
	int fd = -1;

	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(liveupdate_retrieve_session("kv", &in) == 0, "retrieve");
	CHECK(liveupdate_session_retrieve_fd(in, 2, &fd) == 0, "fd");
	CHECK(liveupdate_session_finish(in) == 0, "session finish");
	CHECK(liveupdate_finish() == 0, "finish");
	/* Closed before it is preserved again: the store's copy must go. */
	close(fd);
	CHECK(liveupdate_fdstore_forget("kv", 2) == 0, "forget");
	CHECK(liveupdate_fdstore_forget(NULL, 2) == -EINVAL, "forget NULL");
	CHECK(luo_exit() == 0, "exit");
	return failures ? 1 : 0;
}

void fdconn_update(const char *self)
{
	char value[108];
	char *argv[] = {(char *)self, "service", "conns-update", NULL};
	struct msg m[16];
	int rfd = receiver(true, value, sizeof(value)), status = 0, n, at = -1;
	pid_t child;

	setenv("LUO_FDSTORE", "connections", 1);
	child = spawn(self, argv, value);
	unsetenv("LUO_FDSTORE");
	n = collect(rfd, child, m, 16, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "service failed (status %#x)", status);
	for (int i = 0; i < n; i++)
		if (!strcmp(m[i].text, "FDSTORE=1\nFDNAME=luo.s.kv.2"))
			at = i;
	CHECK(at >= 0, "the connection was not stored");
	for (int i = at + 1; i < n; i++)
		if (!strcmp(m[i].text, "FDSTOREREMOVE=1\nFDNAME=luo.s.kv.2"))
			at = -2;
	CHECK(at == -2,
	      "the connection closed after the update stayed in the store");
	if (failures)
		show(m, n);
	close(rfd);
}
