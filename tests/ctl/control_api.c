// SPDX-License-Identifier: MIT
/*
 * The control socket's C API, served from the service's own poll loop
 * (no library thread), across a real update that luoctl drives:
 *
 * image 1: argument checks; a stale socket file is replaced, a live one
 *          refused; luoctl "update --finish" is started as a child and
 *          the loop dispatches until the update execs this program again.
 * image 2: luo_control_start() answers luoctl on the carried-over
 *          connection, the loop dispatches its "finish", luoctl exits 0.
 *
 *   control_api LUOCTL
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <luo/luo.h>

#include "../files/common.h"

extern char **environ;

static struct luo_control *start(const char *path, unsigned int flags, int *err)
{
	struct luo_control_opts o = {
		.name = "api", .path = path, .flags = flags};
	struct luo_control *ctl = NULL;

	*err = luo_control_start(&o, &ctl);
	return ctl;
}

/* Serve until @child exits; its exit status. */
static int serve_until_exit(struct luo_control *ctl, pid_t child)
{
	int fd = luo_control_fd(ctl), status;

	for (int i = 0; i < 3000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, 10) > 0)
			CHECK_EQ(luo_control_dispatch(ctl), 0);
		if (waitpid(child, &status, WNOHANG) == child)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	}
	kill(child, SIGKILL);
	return -1;
}

static void image1(const char *luoctl, const char *self, const char *dir)
{
	char path[256], stale[256], tool_path[256];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct luo_control *ctl, *other;
	int err, fd;
	pid_t child;

	where = "image 1";
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	snprintf(tool_path, sizeof(tool_path), "%s", luoctl);

	/* Before luo_init, and bad names. */
	start(path, 0, &err);
	CHECK_EQ(err, -ENODEV);
	REQUIRE(!luo_init(NULL), "luo_init");
	{
		struct luo_control_opts bad = {.name = "a/b", .path = path};

		CHECK_EQ(luo_control_start(&bad, &ctl), -EINVAL);
		bad.name = "";
		CHECK_EQ(luo_control_start(&bad, &ctl), -EINVAL);
	}

	/* A stale socket file (nobody listening) is replaced. */
	snprintf(stale, sizeof(stale), "%s", path);
	strcpy(sa.sun_path, stale);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	REQUIRE(!bind(fd, (struct sockaddr *)&sa, sizeof(sa)), "bind");
	close(fd);
	ctl = start(path, 0, &err);
	REQUIRE(!err, "start over a stale socket: %s", strerror(-err));
	CHECK(!strcmp(luo_control_path(ctl), path), "path %s",
	      luo_control_path(ctl));
	/* One server per process. */
	other = start(path, 0, &err);
	CHECK_EQ(err, -EBUSY);
	CHECK(!other, "a second server");
	/* Poll mode: no thread, so the dispatch calls are ours. */
	CHECK(luo_control_fd(ctl) >= 0, "no fd");

	/* A live server on a path: another process is refused. */
	{
		char *argv[] = {(char *)self, "--second", path, NULL};
		int status;

		REQUIRE(!posix_spawn(&child, self, NULL, NULL, argv, environ),
			"spawn");
		waitpid(child, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "a second process could take a live server's path");
	}

	/* luoctl drives the update; this loop serves it. */
	{
		char *argv[] = {tool_path,	"-S",	      path, "update",
				"--finish",	(char *)self, "--", "--image2",
				(char *)luoctl, (char *)dir,  NULL};

		REQUIRE(!posix_spawn(&child, luoctl, NULL, NULL, argv, environ),
			"spawn luoctl");
	}
	err = serve_until_exit(ctl, child);
	/* Only a failed update gets here. */
	REQUIRE(0, "the update did not happen; luoctl exited %d", err);
}

static int image2(const char *dir)
{
	struct luo_control *ctl;
	char path[256];
	int err, status, code = -1;
	pid_t child;

	where = "image 2";
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	REQUIRE(!luo_init(NULL), "luo_init");
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	ctl = start(path, 0, &err);
	REQUIRE(!err, "start in the new image: %s", strerror(-err));
	/* luoctl is still this process's child: the exec kept it. */
	child = waitpid(-1, &status, WNOHANG);
	CHECK_EQ(child, 0);
	for (int i = 0; i < 3000 && code < 0; i++) {
		struct pollfd p = {.fd = luo_control_fd(ctl), .events = POLLIN};

		if (poll(&p, 1, 10) > 0)
			luo_control_dispatch(ctl);
		if (waitpid(-1, &status, WNOHANG) > 0)
			code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	}
	CHECK_EQ(code, 0);
	/* luoctl's --finish ran on the connection the update carried. */
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	CHECK_EQ(liveupdate_get_num(), 1);
	luo_control_stop(ctl);
	{
		struct stat st;

		CHECK(stat(path, &st) && errno == ENOENT,
		      "the socket file is still there after stop");
	}
	luo_exit();
	if (failures)
		return 1;
	printf("%s: all checks passed\n", test_name);
	return 0;
}

int main(int argc, char **argv)
{
	char self[4096], dir[] = "/tmp/luo-ctl-api.XXXXXX";

	test_name = "control-api";
	if (argc == 3 && !strcmp(argv[1], "--second")) {
		/* Another process asking for a path a live server holds. */
		struct luo_control *c2;
		int e;

		where = "second process";
		REQUIRE(!luo_init(NULL), "luo_init");
		c2 = start(argv[2], 0, &e);
		CHECK_EQ(e, -EADDRINUSE);
		CHECK(!c2, "a server was started");
		return failures ? 1 : 0;
	}
	if (argc == 4 && !strcmp(argv[1], "--image2")) {
		int r = image2(argv[3]);
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", argv[3]);
		if (system(cmd))
			r = 1;
		return r;
	}
	if (argc != 2)
		return fprintf(stderr, "usage: control_api LUOCTL\n"), 2;
	REQUIRE(mkdtemp(dir), "mkdtemp");
	self_exe(self, sizeof(self));
	alarm(60);
	image1(argv[1], self, dir);
	return 1;
}
