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
 *   notify fdconn          LUO_FDSTORE=connections: a connection stored,
 *                          the service SIGKILLed, started again with it
 *                          (names in another order, bad names, duplicates,
 *                          a pipe): the client is served, the unpreserved
 *                          socket was removed, the bad ones closed and
 *                          removed (notify_fdconn.c)
 *   notify fdconn-update   a stored connection adopted in a live update
 *                          and closed before it is preserved again:
 *                          liveupdate_fdstore_forget() removes it
 *
 * The service side runs as "notify service ..." in a child.  The store's
 * cases (fdstore, restarted) are in notify_fdstore.c, the manager's
 * receiver in notify_receiver.c.
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

extern char **environ;

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
	if (argc >= 3 && !strcmp(argv[2], "conns-update"))
		return service_conns_update();
	if (argc >= 3 && !strcmp(argv[2], "conns-update-new"))
		return service_conns_update_new();
	if (argc >= 3 && !strcmp(argv[2], "conns"))
		return service_conns();
	if (argc >= 3 && !strcmp(argv[2], "conns-restarted"))
		return service_conns_restarted();
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
	else if (!strcmp(argv[1], "fdconn"))
		fdconn(self);
	else if (!strcmp(argv[1], "fdconn-update"))
		fdconn_update(self);
	else if (!strcmp(argv[1], "restarted"))
		restarted(self);
	else
		return 2;
	if (!failures)
		printf("notify %s: ok\n", argv[1]);
	return failures ? 1 : 0;
}
