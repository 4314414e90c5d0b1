// SPDX-License-Identifier: MIT
/*
 * What luo_control_start() does with what it finds at its path:
 *
 * - a regular file, a directory or a symbolic link is refused with
 *   -ENOTSOCK and left as it was;
 * - a socket whose owner is alive but whose backlog is full is refused
 *   with -EADDRINUSE, at once (a blocking probe waited for ever there);
 * - at stop, the path is removed only if it is still the socket file the
 *   server bound (not a file someone put there meanwhile).
 *
 * alarm() turns a hang into a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <luo/luo.h>

#include "../files/common.h"

static int start(const char *path, struct luo_control **ctl)
{
	struct luo_control_opts o = {.name = "path", .path = path};

	*ctl = NULL;
	return luo_control_start(&o, ctl);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	REQUIRE(fd >= 0, "create %s: %s", path, strerror(errno));
	REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text),
		"write");
	close(fd);
}

static int file_says(const char *path, const char *text)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(text) && !memcmp(buf, text, (size_t)n);
}

/* Not a socket: refused, untouched. */
static void not_sockets(const char *dir)
{
	char file[256], sub[256], link[256];
	struct luo_control *ctl;
	struct stat st;

	where = "not a socket";
	snprintf(file, sizeof(file), "%s/file.sock", dir);
	write_file(file, "precious");
	CHECK_EQ(start(file, &ctl), -ENOTSOCK);
	CHECK(!ctl, "a server was started over a regular file");
	CHECK(file_says(file, "precious"), "the regular file was replaced");

	snprintf(sub, sizeof(sub), "%s/dir.sock", dir);
	REQUIRE(!mkdir(sub, 0700), "mkdir");
	CHECK_EQ(start(sub, &ctl), -ENOTSOCK);
	CHECK(!lstat(sub, &st) && S_ISDIR(st.st_mode), "the directory is gone");

	snprintf(link, sizeof(link), "%s/link.sock", dir);
	REQUIRE(!symlink(file, link), "symlink");
	CHECK_EQ(start(link, &ctl), -ENOTSOCK);
	CHECK(!lstat(link, &st) && S_ISLNK(st.st_mode), "the link is gone");
	CHECK(file_says(file, "precious"), "the link's target was replaced");
}

/* A listener that accepts nobody, its backlog full. */
static void full_backlog(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct luo_control *ctl;
	int lfd, filled = 0;

	where = "full backlog";
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/busy.sock", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(lfd >= 0 && !bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) &&
			!listen(lfd, 0),
		"listen: %s", strerror(errno));
	for (int i = 0; i < 64; i++) {
		int c = socket(AF_UNIX,
			       SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		REQUIRE(c >= 0, "socket");
		if (connect(c, (struct sockaddr *)&sa, sizeof(sa))) {
			REQUIRE(errno == EAGAIN, "connect: %s",
				strerror(errno));
			close(c);
			break;
		}
		filled++; /* left open: they hold the backlog */
	}
	REQUIRE(filled > 0, "the backlog did not fill");
	CHECK_EQ(start(sa.sun_path, &ctl), -EADDRINUSE);
	CHECK(!ctl, "a server was started over a live one");
	close(lfd);
}

/* Stop removes its own socket file only. */
static void stop_removes_own(const char *dir)
{
	char path[256];
	struct luo_control *ctl;
	struct stat st;

	where = "stop";
	snprintf(path, sizeof(path), "%s/own.sock", dir);
	REQUIRE(!start(path, &ctl), "start");
	CHECK(!lstat(path, &st) && S_ISSOCK(st.st_mode), "no socket file");
	luo_control_stop(ctl);
	CHECK(lstat(path, &st) && errno == ENOENT,
	      "the socket file is still there after stop");

	REQUIRE(!start(path, &ctl), "start again");
	REQUIRE(!unlink(path), "unlink");
	write_file(path, "replaced");
	luo_control_stop(ctl);
	CHECK(file_says(path, "replaced"),
	      "stop removed a file that was not its socket");
}

int main(void)
{
	char dir[] = "/tmp/luo-ctl-path.XXXXXX", cmd[128];

	test_name = "control-path";
	alarm(30);
	REQUIRE(mkdtemp(dir), "mkdtemp");
	REQUIRE(!luo_init(NULL), "luo_init");
	not_sockets(dir);
	full_backlog(dir);
	stop_removes_own(dir);
	luo_exit();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		failures++;
	if (failures)
		return 1;
	printf("%s: all checks passed\n", test_name);
	return 0;
}
