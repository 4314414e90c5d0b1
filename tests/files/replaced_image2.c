// SPDX-License-Identifier: MIT
/*
 * Image 2 of replaced-fd, replaced-anon-fd and reused-after-retrieve (see
 * replaced.c): what the service does to the inherited descriptors before
 * and after luo_init(), and what retrieval and finish must then do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <luo/luo.h>

#include "common.h"

#include "replaced.h"

static int image2_replaced(struct luo_session *s)
{
	eventfd_t v = 0;
	char buf[32] = "";
	int fd;

	expect_stale(s, T_VICTIM);
	expect_stale(s, T_CLOSED);
	expect_stale(s, T_LATE);
	fd = retrieve_ok(s, T_OK_MEMFD);
	if (fd >= 0) {
		expect_content(fd, "ok-memfd-content", names[T_OK_MEMFD]);
		close(fd);
	}
	fd = retrieve_ok(s, T_OK_PIPE);
	if (fd >= 0) {
		CHECK(read_full(fd, buf, sizeof(buf), 5000) == 15 &&
			      !memcmp(buf, "ok-pipe-content", 15),
		      "ok pipe: read '%s'", buf);
		close(fd);
	}
	fd = retrieve_ok(s, T_OK_EVENTFD);
	if (fd >= 0) {
		CHECK(eventfd_read(fd, &v) == 0 && v == OK_EFD_VALUE,
		      "ok eventfd: %llu", (unsigned long long)v);
		close(fd);
	}
	return 0;
}

static int image2_anon(struct luo_session *s)
{
	eventfd_t v = 0;
	int fd;

	expect_stale(s, T_EFD_TO_TIMERFD);
	expect_stale(s, T_EFD_TO_EFD);
	expect_stale(s, T_TFD_TO_EPOLL);
	fd = retrieve_ok(s, T_ANON_OK);
	if (fd >= 0) {
		CHECK(eventfd_read(fd, &v) == 0 && v == ANON_OK_VALUE,
		      "untouched eventfd: value %llu, expected %d",
		      (unsigned long long)v, ANON_OK_VALUE);
		close(fd);
	}
	return 0;
}

/* Retrieved once, then closed: a second retrieval must be -EALREADY. */
static void expect_ebadf(struct luo_session *s, int t)
{
	int fd = -1, err = liveupdate_session_retrieve_fd(s, TOKEN(t), &fd);
	char id[256] = "";

	if (!err)
		fd_identity(fd, id, sizeof(id));
	CHECK(err == -EALREADY,
	      "%s: second retrieval returned %d (%s), expected -EALREADY%s%s",
	      names[t], err, err ? strerror(-err) : "success",
	      err ? "" : "; it handed out: ", id);
	if (!err)
		close(fd);
}

static int fd_reused[T_COUNT]; /* what the service put at each number */

static void image2_reused(struct luo_session *s)
{
	int fd[T_COUNT], reopened;
	char path[64];

	for (int t = T_RU_FREE; t <= T_RU_REOPEN; t++) {
		fd[t] = retrieve_ok(s, t);
		REQUIRE(fd[t] >= 0, "first retrieval of %s", names[t]);
		CHECK(fd[t] == ids[t].fd,
		      "%s: the first retrieval is fd %d, not the library's %d",
		      names[t], fd[t], ids[t].fd);
	}
	/* The service closes them and reuses the numbers. */
	close(fd[T_RU_FREE]);
	close(fd[T_RU_NULL]);
	put_at(fd[T_RU_NULL], open("/dev/null", O_RDWR));
	close(fd[T_RU_EFD_TIMERFD]);
	put_at(fd[T_RU_EFD_TIMERFD], timerfd_create(CLOCK_MONOTONIC, 0));
	close(fd[T_RU_EFD_EFD]);
	put_at(fd[T_RU_EFD_EFD], eventfd(NEW_EFD_VALUE, EFD_NONBLOCK));
	close(fd[T_RU_PIPE_R]);
	put_at(fd[T_RU_PIPE_R], dup(fd[T_RU_PIPE_W]));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd[T_RU_REOPEN]);
	reopened = open(path, O_RDWR);
	close(fd[T_RU_REOPEN]);
	put_at(fd[T_RU_REOPEN], reopened);
	for (int t = T_RU_FREE; t <= T_RU_REOPEN; t++)
		fd_reused[t] = fd[t];

	expect_ebadf(s, T_RU_FREE);
	expect_ebadf(s, T_RU_NULL);
	expect_ebadf(s, T_RU_EFD_TIMERFD);
	expect_ebadf(s, T_RU_EFD_EFD);
	expect_ebadf(s, T_RU_PIPE_R);
	expect_ebadf(s, T_RU_REOPEN);
	/* Still open: a second retrieval is refused all the same. */
	expect_ebadf(s, T_RU_PIPE_W);
	CHECK(fcntl(fd[T_RU_PIPE_W], F_GETFD) >= 0,
	      "pipe write end: the first descriptor was closed");
}

/*
 * Files in flight on the carrier (not "luo-file-fd-v1"): the one
 * descriptor the new image inherits for them is the carrier's.  Replaced
 * before luo_init() (by /dev/null, or in "anon" mode by a lookalike: a
 * Unix stream socket), the rest of the handover is still adopted, every
 * file is refused with -ESTALE, every time, and the service's descriptor
 * at that number is left alone.
 */
static int image2_carrier(void)
{
	int cand[64], dummy[1], n = fds_without_cloexec(cand, 64);
	int carrier = -1, nsock = 0, pair[2] = {-1, -1}, err;
	struct luo_session *s;
	struct stat sb;
	uint64_t data = 0, ino;

	REQUIRE(n <= 64, "too many descriptors");
	for (int i = 0; i < n; i++) {
		if (!fstat(cand[i], &sb) && S_ISSOCK(sb.st_mode)) {
			carrier = cand[i];
			nsock++;
		}
	}
	REQUIRE(nsock == 1,
		"%d sockets without FD_CLOEXEC before luo_init, expected the carrier alone",
		nsock);
	/* In flight: no preserved file has a descriptor yet. */
	for (int t = 0; t < T_COUNT; t++)
		if (ids[t].present)
			CHECK(fds_of_identity(ids[t].dev, ids[t].ino, ids[t].id,
					      dummy, 0) == 0,
			      "%s has a descriptor before luo_init", names[t]);
	if (mode == M_ANON) {
		REQUIRE(!socketpair(AF_UNIX, SOCK_STREAM, 0, pair),
			"socketpair");
		put_at(carrier, pair[0]);
	} else {
		put_at(carrier, open("/dev/null", O_RDWR));
	}
	REQUIRE(!fstat(carrier, &sb), "fstat");
	ino = sb.st_ino;

	err = luo_init(NULL);
	REQUIRE(!err, "luo_init refused the handover: %s", strerror(-err));
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	CHECK(!liveupdate_get_subsystem_data(&sub, &data) && data == SUB_DATA,
	      "subsystem data %#llx, expected %#llx", (unsigned long long)data,
	      SUB_DATA);
	CHECK_EQ(liveupdate_register_subsystem(&sub), 0);
	REQUIRE(!liveupdate_retrieve_session("replaced", &s),
		"retrieve session");
	for (int t = 0; t < T_COUNT; t++)
		if (ids[t].present)
			expect_stale(s, t);
	CHECK_EQ(liveupdate_session_finish(s), 0);
	CHECK_EQ(liveupdate_finish(), 0);
	CHECK(!fstat(carrier, &sb) && sb.st_ino == ino,
	      "fd %d, where the service put %s, was closed or changed by the library",
	      carrier, mode == M_ANON ? "a Unix socket" : "/dev/null");
	if (mode == M_ANON) {
		char c = 0;

		CHECK(write(pair[1], "x", 1) == 1 &&
			      read(carrier, &c, 1) == 1 && c == 'x',
		      "the service's socket at fd %d no longer works", carrier);
		close(pair[1]);
	}
	close(carrier);
	return stage_done(
		"the carrier replaced: handover adopted, files refused, the service's descriptor left alone");
}

int image2(int argc, char **argv)
{
	struct luo_session *s;
	int new_efd = -1, err;

	for (int i = 0; i < argc; i++)
		decode(argv[i]);
	if (mode != M_REUSED) {
		if (!files_inherited_as_fds())
			return image2_carrier();
		find_inherited(0);
	}

	/* The service reuses numbers before starting the library. */
	if (mode == M_REPLACED) {
		close(ids[T_VICTIM].fd);
		put_at(ids[T_VICTIM].fd, open("/dev/null", O_RDWR));
		REQUIRE(is_dev_null(ids[T_VICTIM].fd), "dup2");
		close(ids[T_CLOSED].fd);
	} else if (mode == M_ANON) {
		close(ids[T_EFD_TO_TIMERFD].fd);
		put_at(ids[T_EFD_TO_TIMERFD].fd,
		       timerfd_create(CLOCK_MONOTONIC, 0));
		new_efd = eventfd(NEW_EFD_VALUE, EFD_NONBLOCK);
		put_at(ids[T_EFD_TO_EFD].fd, new_efd);
		put_at(ids[T_TFD_TO_EPOLL].fd, epoll_create1(0));
	}

	err = luo_init(NULL);
	REQUIRE(!err, "luo_init refused the handover: %s", strerror(-err));
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	CHECK_EQ(liveupdate_register_subsystem(&sub), 0);
	if (mode == M_REPLACED) {
		/* ...and one after luo_init. */
		put_at(ids[T_LATE].fd, open("/dev/null", O_RDWR));
		/* The closed number must stay free: nothing of ours there. */
	}
	if (mode == M_REUSED)
		find_inherited(1);
	REQUIRE(!liveupdate_retrieve_session("replaced", &s),
		"retrieve session");
	if (mode == M_ANON)
		image2_anon(s);
	else if (mode == M_REUSED)
		image2_reused(s);
	else
		image2_replaced(s);
	CHECK_EQ(liveupdate_session_finish(s), 0);
	CHECK_EQ(liveupdate_finish(), 0);

	/* What the service put there is still there. */
	if (mode == M_REPLACED) {
		CHECK(is_dev_null(ids[T_VICTIM].fd),
		      "/dev/null at fd %d (replaced before luo_init) was closed or changed by the library",
		      ids[T_VICTIM].fd);
		CHECK(is_dev_null(ids[T_LATE].fd),
		      "/dev/null at fd %d (replaced after luo_init) was closed or changed by the library",
		      ids[T_LATE].fd);
		CHECK(!fd_is_open(ids[T_OK_MEMFD].fd) &&
			      !fd_is_open(ids[T_OK_PIPE].fd) &&
			      !fd_is_open(ids[T_OK_EVENTFD].fd),
		      "inherited descriptors of retrieved files still open after finish");
	} else if (mode == M_REUSED) {
		CHECK(!fd_is_open(fd_reused[T_RU_FREE]),
		      "fd %d reopened by the library", fd_reused[T_RU_FREE]);
		CHECK(is_dev_null(fd_reused[T_RU_NULL]),
		      "the service's /dev/null at fd %d was closed by the library",
		      fd_reused[T_RU_NULL]);
		CHECK(link_is(fd_reused[T_RU_EFD_TIMERFD],
			      "anon_inode:[timerfd]"),
		      "the service's timerfd at fd %d was closed by the library",
		      fd_reused[T_RU_EFD_TIMERFD]);
		CHECK(link_is(fd_reused[T_RU_EFD_EFD], "anon_inode:[eventfd]"),
		      "the service's eventfd at fd %d was closed by the library",
		      fd_reused[T_RU_EFD_EFD]);
		CHECK(fd_is_open(fd_reused[T_RU_PIPE_R]) &&
			      fd_is_open(fd_reused[T_RU_PIPE_W]) &&
			      fd_is_open(fd_reused[T_RU_REOPEN]),
		      "the service's descriptors were closed by the library");
	} else {
		eventfd_t v = 0;

		CHECK(link_is(ids[T_EFD_TO_TIMERFD].fd, "anon_inode:[timerfd]"),
		      "the service's timerfd at fd %d was closed by the library",
		      ids[T_EFD_TO_TIMERFD].fd);
		CHECK(link_is(ids[T_EFD_TO_EFD].fd, "anon_inode:[eventfd]") &&
			      eventfd_read(ids[T_EFD_TO_EFD].fd, &v) == 0 &&
			      v == NEW_EFD_VALUE,
		      "the service's eventfd at fd %d was closed or drained by the library",
		      ids[T_EFD_TO_EFD].fd);
		CHECK(link_is(ids[T_TFD_TO_EPOLL].fd, "anon_inode:[eventpoll]"),
		      "the service's epoll fd at fd %d was closed by the library",
		      ids[T_TFD_TO_EPOLL].fd);
	}
	return stage_done("replaced descriptors refused and left alone");
}
