// SPDX-License-Identifier: MIT
/*
 * failed-retrieve: a file whose handler refuses to retrieve it in the new
 * image.  The refusal must repeat, the same way, without calling the
 * handler again; the file still gets its handler's finish; and since
 * nobody retrieved it, finish must close the inherited descriptor (the
 * library checked it was the very preserved file before asking the
 * handler, so it is the library's to close).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <luo/luo.h>

#include "common.h"

#define T_BAD 0xbadULL
#define T_GOOD 0x600dULL
#define DATA_BAD 1
#define DATA_GOOD 2

static struct {
	int retrieve, finish, finish_retrieved;
	int retrieve_fd;  /* the inherited descriptor the handler saw */
	int finish_fd[2]; /* what finish got, per file */
} cnt = {.retrieve_fd = -1, .finish_fd = {-2, -2}};

static bool flaky_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return link_has(fd, "memfd:flaky");
}

static int flaky_preserve(struct liveupdate_file_op_args *a)
{
	a->serialized_data =
		link_has(a->fd, "flaky-bad") ? DATA_BAD : DATA_GOOD;
	return 0;
}

static int flaky_retrieve(struct liveupdate_file_op_args *a)
{
	if (a->serialized_data != DATA_BAD)
		return 0;
	cnt.retrieve++;
	cnt.retrieve_fd = a->fd;
	return -EIO;
}

static void flaky_finish(struct liveupdate_file_op_args *a)
{
	int i = a->serialized_data == DATA_BAD ? 0 : 1;

	cnt.finish++;
	cnt.finish_retrieved += a->retrieved;
	cnt.finish_fd[i] = a->fd;
}

static const struct liveupdate_file_ops flaky_ops = {
	.can_preserve = flaky_can,
	.preserve = flaky_preserve,
	.retrieve = flaky_retrieve,
	.finish = flaky_finish,
};

static struct liveupdate_file_handler flaky = {
	.ops = &flaky_ops,
	.compatible = "flaky-v1",
};

static int image1(void)
{
	struct luo_session *s;
	struct stat sb;
	char arg[64];
	char *handed[] = {arg, NULL};
	int bad, good;

	REQUIRE(!luo_init(NULL), "luo_init");
	REQUIRE(!liveupdate_register_file_handler(&flaky), "register");
	REQUIRE(!liveupdate_create_session("flaky", &s), "session");
	bad = memfd_create("flaky-bad", MFD_CLOEXEC);
	good = memfd_create("flaky-good", MFD_CLOEXEC);
	REQUIRE(bad >= 0 && good >= 0 && !fstat(bad, &sb), "memfd");
	snprintf(arg, sizeof(arg), "%" PRIu64 ":%" PRIu64, (uint64_t)sb.st_dev,
		 (uint64_t)sb.st_ino);
	REQUIRE(!liveupdate_session_preserve_fd(s, bad, T_BAD) &&
			!liveupdate_session_preserve_fd(s, good, T_GOOD),
		"preserve");
	close(bad);
	close(good);
	stage_reboot(handed);
	return 1;
}

static int image2(const char *arg)
{
	struct luo_session *s;
	uint64_t dev, ino;
	int inherited, fd = -1, n;

	REQUIRE(sscanf(arg, "%" SCNu64 ":%" SCNu64, &dev, &ino) == 2,
		"bad argument");
	REQUIRE(!luo_init(NULL), "luo_init");
	n = fds_of_inode(dev, ino, &inherited, 1);
	REQUIRE(n == 1, "%d descriptors of the file after luo_init, expected 1",
		n);
	REQUIRE(!liveupdate_register_file_handler(&flaky), "register");
	REQUIRE(!liveupdate_retrieve_session("flaky", &s), "retrieve session");

	CHECK_EQ(liveupdate_session_retrieve_fd(s, T_BAD, &fd), -EIO);
	CHECK_EQ(cnt.retrieve, 1);
	CHECK_EQ(cnt.retrieve_fd, inherited);
	/* The same way again, without asking the handler again. */
	CHECK_EQ(liveupdate_session_retrieve_fd(s, T_BAD, &fd), -EIO);
	CHECK_EQ(cnt.retrieve, 1);
	CHECK_EQ(fd, -1);
	CHECK_EQ(liveupdate_session_retrieve_fd(s, T_GOOD, &fd), 0);
	CHECK(fd >= 0, "no descriptor for the good file");
	CHECK(fd_is_open(inherited), "the refused file was closed early");

	CHECK_EQ(liveupdate_session_finish(s), 0);
	CHECK_EQ(cnt.finish, 2);
	CHECK_EQ(cnt.finish_retrieved, 1);
	/* Never retrieved: its finish gets the descriptor (session.h). */
	CHECK(cnt.finish_fd[0] == inherited,
	      "the refused file's finish got fd %d, expected the inherited %d",
	      cnt.finish_fd[0], inherited);
	CHECK_EQ(cnt.finish_fd[1], -1); /* retrieved: -1 */
	CHECK(!fd_is_open(inherited),
	      "fd %d, the inherited descriptor of the file whose retrieval failed, is still open after its session finished: leaked",
	      inherited);
	CHECK_EQ(liveupdate_finish(), 0);
	CHECK(!fd_is_open(inherited),
	      "fd %d still open after liveupdate_finish(): leaked for good",
	      inherited);
	close(fd);
	return stage_done(
		"a refused file is refused again and closed at finish");
}

/* Image 1 hands the refused file's "DEV:INO" to image 2. */
static int run(const struct stage *st)
{
	if (st->n == 1)
		return image1();
	REQUIRE(st->nhanded == 1, "%d arguments from image 1, expected 1",
		st->nhanded);
	return image2(st->handed[0]);
}

static const struct stage_test test = {"failed-retrieve", 30, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
