// SPDX-License-Identifier: MIT
/*
 * notify: the library's side of systemd's notify protocol, received on a
 * real AF_UNIX datagram socket (the protocol itself, no mock), across a
 * real exec.
 *
 *   notify abstract|path   the whole life of a service: READY=1, a
 *                          cancelled update (RELOADING=1, READY=1), a live
 *                          update into itself with an environment that
 *                          lacks NOTIFY_SOCKET (RELOADING=1, then READY=1
 *                          from the new image, same PID), STOPPING=1 at
 *                          luo_exit(); each sender's PID from SO_PASSCRED
 *   notify unset           no NOTIFY_SOCKET: nothing sent, every call 0,
 *                          and the new image does not get the variable
 *   notify bad             an address that is no socket path: -EINVAL
 *   notify mainpid         spawn mode's commit hook: MAINPID= and READY=1,
 *                          then nothing more from the old process
 *   notify journal         library lines carry "<3>" priorities when
 *                          stderr is JOURNAL_STREAM, and only then
 *   notify fdstore         under a store (LUO_FDSTORE=1): the arena and a
 *                          preserved listener stored with their names (not
 *                          a plain socket), removed when dropped; after a
 *                          live update the arena is not sent again, and
 *                          the new image removes it at exit
 *   notify restarted       started again as systemd does after a crash
 *                          (LISTEN_FDS, names in another order): the
 *                          listener found by name with its waiting client,
 *                          the crashed arena dropped from the store
 *
 * The service side runs as "notify service ..." in a child.
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

extern char **environ;

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* --- the service (child) side --- */

/* The environment without NOTIFY_SOCKET: the library must hand it on. */
static char **env_without_notify(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	for (size_t i = 0; env && i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14))
			env[k++] = environ[i];
	return env;
}

static int service_first(const char *self, bool expect_socket)
{
	char *argv[] = {(char *)self, "service", "updated",
			expect_socket ? "socket" : "nosocket", NULL};
	int want = expect_socket ? 1 : 0, err;

	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(luo_notify_ready() == want, "ready");
	/* A second READY only refreshes the status. */
	CHECK(luo_notify("STATUS=test line") == want, "raw message");
	CHECK(liveupdate_prepare() == 0, "prepare");
	CHECK(liveupdate_cancel() == 0, "cancel");
	CHECK(liveupdate_prepare() == 0, "prepare again");
	err = liveupdate_reboot(self, argv, env_without_notify());
	CHECK(0, "reboot returned %d", err);
	return 1;
}

static int service_updated(bool expect_socket)
{
	const char *v = getenv("NOTIFY_SOCKET");
	int want = expect_socket ? 1 : 0;

	CHECK(luo_init(NULL) == 0, "luo_init in the new image");
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED,
	      "not updated");
	CHECK(expect_socket ? v != NULL : v == NULL,
	      "NOTIFY_SOCKET in the new image is %s", v ? v : "unset");
	CHECK(luo_notify_ready() == want, "ready in the new image");
	CHECK(liveupdate_finish() == 0, "finish");
	CHECK(luo_exit() == 0, "exit");
	CHECK(luo_notify_stopping() == 0, "STOPPING=1 only once");
	return failures ? 1 : 0;
}

static int service_bad(void)
{
	CHECK(luo_notify("READY=1") == -EINVAL, "bad address");
	CHECK(luo_notify_ready() == 0, "ready with a bad address sends none");
	CHECK(luo_notify(NULL) == -EINVAL, "NULL message");
	return failures ? 1 : 0;
}

/* Log one error line (finish in the wrong state) to stderr. */
static int service_log(void)
{
	luo_init(NULL);
	liveupdate_finish();
	return 0;
}

/* Under a store: the arena, one listener of two files, then removals. */
static int service_fdstore(void)
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

static int service_fdstore_updated(void)
{
	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "updated");
	CHECK(liveupdate_finish() == 0, "finish");
	CHECK(luo_exit() == 0, "exit");
	return failures ? 1 : 0;
}

/* Started again by a manager after a crash: fds 3 (arena), 4 (listener). */
static int service_restarted(void)
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

/* The library's internal hook for spawn mode's commit (src/lifecycle/luo_service_notify.h). */
int luo_notify_main_pid(pid_t pid);

/* Spawn mode's commit as the old process tells it, then its exit. */
static int service_mainpid(void)
{
	CHECK(luo_init(NULL) == 0, "luo_init");
	CHECK(luo_notify_ready() == 1, "ready");
	CHECK(luo_notify_main_pid(4242) == 1, "MAINPID=");
	CHECK(luo_notify_stopping() == 0, "STOPPING=1 after the hand-off");
	CHECK(luo_exit() == 0, "exit");
	return failures ? 1 : 0;
}

static int service(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[2], "mainpid"))
		return service_mainpid();
	if (argc >= 3 && !strcmp(argv[2], "fdstore"))
		return service_fdstore();
	if (argc >= 3 && !strcmp(argv[2], "fdstore-updated"))
		return service_fdstore_updated();
	if (argc >= 3 && !strcmp(argv[2], "restarted"))
		return service_restarted();
	if (argc >= 4 && !strcmp(argv[2], "first"))
		return service_first(argv[0], !strcmp(argv[3], "socket"));
	if (argc >= 4 && !strcmp(argv[2], "updated"))
		return service_updated(!strcmp(argv[3], "socket"));
	if (argc >= 3 && !strcmp(argv[2], "bad"))
		return service_bad();
	if (argc >= 3 && !strcmp(argv[2], "log"))
		return service_log();
	return 2;
}

/* --- the manager (parent) side --- */

struct msg {
	char text[1024];
	pid_t pid;
	uint64_t at_us;
	int fd; /* the first descriptor sent with it, or -1 */
	int nfds;
};

/* A receiver like systemd's: SOCK_DGRAM, SO_PASSCRED. */
static int receiver(bool abstract, char *value, size_t len)
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
static int collect(int fd, pid_t child, struct msg *m, int max, int *status)
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

static pid_t spawn(const char *self, char *const argv[], const char *notify)
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

static bool has_line(const struct msg *m, const char *line)
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

static const char *value_of(const struct msg *m, const char *key)
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

static void show(const struct msg *m, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  [%d] pid %d: %s\n", i, (int)m[i].pid,
			m[i].text);
}

static void lifecycle(const char *self, bool abstract)
{
	char value[108];
	char *argv[] = {(char *)self, "service", "first", "socket", NULL};
	struct msg m[16];
	int fd = receiver(abstract, value, sizeof(value)), status = 0, n;
	uint64_t t0 = mono_us();
	pid_t child = spawn(self, argv, value);

	n = collect(fd, child, m, 16, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "service failed (status %#x)", status);
	/* ready, status, reloading, ready (cancel), reloading, ready, stop */
	CHECK(n == 7, "%d messages, expected 7", n);
	if (n == 7) {
		const char *mono;

		CHECK(has_line(&m[0], "READY=1"), "first is not READY=1");
		CHECK(value_of(&m[0], "STATUS") &&
			      strstr(value_of(&m[0], "STATUS"),
				     "serving (state normal), 0 live updates"),
		      "first STATUS");
		CHECK(!strcmp(m[1].text, "STATUS=test line"), "raw message");
		CHECK(has_line(&m[2], "RELOADING=1"), "no RELOADING=1");
		mono = value_of(&m[2], "MONOTONIC_USEC");
		CHECK(mono && strtoull(mono, NULL, 10) >= t0 &&
			      strtoull(mono, NULL, 10) <= m[2].at_us,
		      "MONOTONIC_USEC=%s outside [%llu, %llu]",
		      mono ? mono : "(none)", (unsigned long long)t0,
		      (unsigned long long)m[2].at_us);
		CHECK(has_line(&m[3], "READY=1") &&
			      strstr(m[3].text, "cancelled"),
		      "a cancel is not READY=1 with a reason");
		CHECK(has_line(&m[4], "RELOADING=1"), "second RELOADING=1");
		CHECK(has_line(&m[5], "READY=1") &&
			      strstr(m[5].text,
				     "(state updated), 1 live update, last blackout "),
		      "the new image's READY=1 and STATUS");
		CHECK(has_line(&m[6], "STOPPING=1"), "no STOPPING=1");
		for (int i = 0; i < n; i++)
			CHECK(m[i].pid == child,
			      "message %d from pid %d, not the service's %d", i,
			      (int)m[i].pid, (int)child);
	}
	if (failures)
		show(m, n);
	close(fd);
	if (!abstract)
		unlink(value);
}

static void unset(const char *self)
{
	char value[108];
	char *argv[] = {(char *)self, "service", "first", "nosocket", NULL};
	struct msg m[4];
	int fd = receiver(true, value, sizeof(value)), status = 0, n;
	pid_t child = spawn(self, argv, NULL);

	n = collect(fd, child, m, 4, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "service failed (status %#x)", status);
	CHECK(n == 0, "%d messages without NOTIFY_SOCKET", n);
	close(fd);
}

static void bad(const char *self)
{
	char *argv[] = {(char *)self, "service", "bad", NULL};
	int status = 0;
	pid_t child = spawn(self, argv, "vsock:2:1234");

	waitpid(child, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "bad address case failed (status %#x)", status);
}

/* Run the logging service with stderr on a pipe; its first line. */
static void log_line(const char *self, int mode, char *line, size_t len)
{
	char *argv[] = {(char *)self, "service", "log", NULL};
	int p[2];
	pid_t pid;
	ssize_t n;

	if (pipe(p))
		exit(1);
	pid = fork();
	if (pid == 0) {
		struct stat st;
		char v[64];

		dup2(p[1], 2);
		fstat(2, &st);
		snprintf(v, sizeof(v), "%llu:%llu",
			 (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino + (mode == 2));
		if (mode)
			setenv("JOURNAL_STREAM", v, 1);
		else
			unsetenv("JOURNAL_STREAM");
		execv(self, argv);
		_exit(127);
	}
	close(p[1]);
	n = read(p[0], line, len - 1);
	line[n > 0 ? n : 0] = '\0';
	close(p[0]);
	waitpid(pid, NULL, 0);
}

static void journal(const char *self)
{
	char line[1024];

	log_line(self, 1, line, sizeof(line));
	CHECK(!strncmp(line, "<3>luo: error: ", 15),
	      "journal stream: line is '%s'", line);
	log_line(self, 0, line, sizeof(line));
	CHECK(!strncmp(line, "luo: error: ", 12), "plain stderr: '%s'", line);
	log_line(self, 2, line, sizeof(line));
	CHECK(!strncmp(line, "luo: error: ", 12),
	      "JOURNAL_STREAM of another file: '%s'", line);
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

/* MAINPID= with READY=1 at a commit, and silence from the old process. */
static void mainpid(const char *self)
{
	char value[108];
	char *argv[] = {(char *)self, "service", "mainpid", NULL};
	struct msg m[8];
	int fd = receiver(true, value, sizeof(value)), status = 0, n;
	pid_t child = spawn(self, argv, value);

	n = collect(fd, child, m, 8, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "service failed (status %#x)", status);
	CHECK(n == 2, "%d messages, expected 2", n);
	if (n == 2) {
		CHECK(has_line(&m[1], "MAINPID=4242") &&
			      has_line(&m[1], "READY=1") &&
			      strstr(m[1].text,
				     "STATUS=serving from the new process"),
		      "MAINPID message");
	}
	if (failures)
		show(m, n);
	close(fd);
}

/* Only listeners and the arena go to the store, and come out again. */
static void fdstore(const char *self)
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
static void restarted(const char *self)
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
	/* the crashed arena dropped, the new one stored, ready */
	CHECK(n == 3, "%d messages, expected 3", n);
	if (n == 3) {
		CHECK(!strcmp(m[0].text, "FDSTOREREMOVE=1\nFDNAME=luo.arena"),
		      "the old arena's removal");
		CHECK(!strcmp(m[1].text, "FDSTORE=1\nFDNAME=luo.arena") &&
			      m[1].nfds == 1 && is_memfd(m[1].fd),
		      "the new arena");
		CHECK(has_line(&m[2], "READY=1"), "ready");
	}
	if (failures)
		show(m, n);
	close(fd);
}

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	test_name = "notify";
	where = "manager";
	if (argc >= 2 && !strcmp(argv[1], "service")) {
		where = "service";
		return service(argc, argv);
	}
	if (n < 0 || argc != 2)
		return 2;
	self[n] = '\0';
	if (!strcmp(argv[1], "abstract"))
		lifecycle(self, true);
	else if (!strcmp(argv[1], "path"))
		lifecycle(self, false);
	else if (!strcmp(argv[1], "unset"))
		unset(self);
	else if (!strcmp(argv[1], "bad"))
		bad(self);
	else if (!strcmp(argv[1], "journal"))
		journal(self);
	else if (!strcmp(argv[1], "fdstore"))
		fdstore(self);
	else if (!strcmp(argv[1], "mainpid"))
		mainpid(self);
	else if (!strcmp(argv[1], "restarted"))
		restarted(self);
	else
		return 2;
	if (!failures)
		printf("notify %s: ok\n", argv[1]);
	return failures ? 1 : 0;
}
