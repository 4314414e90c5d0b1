// SPDX-License-Identifier: MIT
/*
 * replaced-fd: an inherited preserved descriptor that the new image closed
 * or replaced before the library looked at it must be refused (-ESTALE,
 * every time), must not stop the handover, and must never be closed by
 * the library: the number now belongs to the service.
 *
 * Image 1 preserves a few files and records their identity (device,
 * inode, and what tells anonymous-inode files apart) in argv for image 2.
 * Image 2, before luo_init(), finds the library's inherited descriptors
 * (those without FD_CLOEXEC), closes some and puts other files at their
 * numbers, then checks retrieval and finish.
 *
 *   files-replaced replaced  - a memfd replaced by /dev/null before
 *                              luo_init, a pipe end closed, a memfd
 *                              replaced after luo_init
 *   files-replaced anon      - eventfds and a timerfd replaced by other
 *                              anonymous-inode files (a timerfd, another
 *                              eventfd, an epoll fd): they share one inode
 *                              with the originals
 *   files-replaced reused    - files retrieved once, their descriptor
 *                              closed and the number reused by the
 *                              service, some by a lookalike (same inode):
 *                              retrieving again must be -EALREADY, never
 *                              another file
 *
 * Since the files travel in flight on one Unix socket (ABI
 * "luo-file-scm-v1"), the only descriptor the new image inherits for them
 * is that carrier's; "replaced" then puts /dev/null at the carrier's
 * number and "anon" a lookalike Unix socket: the handover is adopted, all
 * files are refused with -ESTALE, the service's descriptor is left alone.
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

enum tok {
	/* "replaced" */
	T_VICTIM,   /* memfd, replaced by /dev/null before luo_init */
	T_CLOSED,   /* pipe read end, closed before luo_init */
	T_LATE,	    /* memfd, replaced by /dev/null after luo_init */
	T_OK_MEMFD, /* untouched */
	T_OK_PIPE,  /* untouched, the other pipe's read end */
	T_OK_EVENTFD /* untouched */,
	/* "anon" */
	T_EFD_TO_TIMERFD, /* eventfd, replaced by a timerfd */
	T_EFD_TO_EFD,	  /* eventfd, replaced by another eventfd */
	T_TFD_TO_EPOLL,	  /* timerfd, replaced by an epoll fd */
	T_ANON_OK,	  /* eventfd, untouched */
	/* "reused": retrieved, closed, the number reused */
	T_RU_FREE,	  /* memfd, the number left free */
	T_RU_NULL,	  /* memfd, /dev/null at its number */
	T_RU_EFD_TIMERFD, /* eventfd, a timerfd at its number */
	T_RU_EFD_EFD,	  /* eventfd, another eventfd at its number */
	T_RU_PIPE_R,	  /* pipe read end, the write end at its number */
	T_RU_PIPE_W,	  /* that write end */
	T_RU_REOPEN,	  /* memfd, reopened through /proc at its number */
	T_COUNT
};

static const char *const names[T_COUNT] = {
	"victim-memfd",
	"closed-pipe",
	"late-memfd",
	"ok-memfd",
	"ok-pipe",
	"ok-eventfd",
	"eventfd->timerfd",
	"eventfd->eventfd",
	"timerfd->epoll",
	"anon-ok-eventfd",
	"reused: memfd, number free",
	"reused: memfd, /dev/null there",
	"reused: eventfd, a timerfd there",
	"reused: eventfd, another eventfd there",
	"reused: pipe read end, its write end there",
	"reused: pipe write end",
	"reused: memfd, reopened through /proc there",
};

#define TOKEN(t) (0x7e9a0000ULL + (uint64_t)(t))
#define OK_EFD_VALUE 7
#define ANON_OK_VALUE 11
#define EFD_VALUE 2
#define NEW_EFD_VALUE 99

struct ident {
	uint64_t dev, ino;
	char id[128];
	int present;
	int fd; /* image 2: the inherited number */
};

static struct ident ids[T_COUNT];

/* A subsystem, to show the rest of the handover is adopted. */
#define SUB_DATA 0x5eed1234ULL

static uint64_t sub_data = SUB_DATA;
static struct liveupdate_subsystem sub =
	TEST_VALUE_SUBSYSTEM("replaced-test", &sub_data);
enum mode { M_REPLACED, M_ANON, M_REUSED };
static enum mode mode;

/* argv form: "TOKEN:DEV:INO:IDENTITY" */
static char *encode(int t)
{
	char *s;

	REQUIRE(asprintf(&s, "%d:%" PRIu64 ":%" PRIu64 ":%s", t, ids[t].dev,
			 ids[t].ino, ids[t].id) > 0,
		"asprintf");
	return s;
}

static void decode(const char *s)
{
	int t;
	uint64_t dev, ino;
	int off = 0;

	REQUIRE(sscanf(s, "%d:%" SCNu64 ":%" SCNu64 ":%n", &t, &dev, &ino,
		       &off) == 3 &&
			off > 0 && t >= 0 && t < T_COUNT,
		"bad argument '%s'", s);
	ids[t].dev = dev;
	ids[t].ino = ino;
	snprintf(ids[t].id, sizeof(ids[t].id), "%s", s + off);
	ids[t].present = 1;
}

static void keep(struct luo_session *s, int fd, int t)
{
	struct stat sb;
	int err;

	REQUIRE(!fstat(fd, &sb), "fstat");
	ids[t].dev = sb.st_dev;
	ids[t].ino = sb.st_ino;
	fd_identity(fd, ids[t].id, sizeof(ids[t].id));
	ids[t].present = 1;
	err = liveupdate_session_preserve_fd(s, fd, TOKEN(t));
	REQUIRE(!err, "preserve %s: %s", names[t], strerror(-err));
	close(fd);
}

static int memfd_with(const char *text)
{
	int fd = memfd_create("replaced-test", MFD_CLOEXEC);

	REQUIRE(fd >= 0 && !write_all(fd, text, strlen(text)), "memfd");
	return fd;
}

static int image1(const char *self, const char *mode_arg)
{
	struct itimerspec its = {.it_interval = {0, 50000000},
				 .it_value = {0, 50000000}};
	struct luo_session *s;
	char *argv[T_COUNT + 4];
	int p[2], fd, n = 0, err;

	where = "image 1";
	alarm(30);
	REQUIRE(!luo_init(NULL), "luo_init");
	REQUIRE(!liveupdate_register_subsystem(&sub), "register");
	REQUIRE(!liveupdate_create_session("replaced", &s), "session");
	if (mode == M_REPLACED) {
		keep(s, memfd_with("victim"), T_VICTIM);
		REQUIRE(!pipe2(p, O_CLOEXEC), "pipe");
		keep(s, p[0], T_CLOSED);
		close(p[1]);
		keep(s, memfd_with("late"), T_LATE);
		keep(s, memfd_with("ok-memfd-content"), T_OK_MEMFD);
		REQUIRE(!pipe2(p, O_CLOEXEC), "pipe");
		REQUIRE(!write_all(p[1], "ok-pipe-content", 15), "write");
		keep(s, p[0], T_OK_PIPE);
		close(p[1]);
		fd = eventfd(OK_EFD_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
		REQUIRE(fd >= 0, "eventfd");
		keep(s, fd, T_OK_EVENTFD);
	} else if (mode == M_ANON) {
		fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
		REQUIRE(fd >= 0, "eventfd");
		keep(s, fd, T_EFD_TO_TIMERFD);
		fd = eventfd(EFD_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
		REQUIRE(fd >= 0, "eventfd");
		keep(s, fd, T_EFD_TO_EFD);
		fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		REQUIRE(fd >= 0 && !timerfd_settime(fd, 0, &its, NULL),
			"timerfd");
		keep(s, fd, T_TFD_TO_EPOLL);
		fd = eventfd(ANON_OK_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
		REQUIRE(fd >= 0, "eventfd");
		keep(s, fd, T_ANON_OK);
	} else {
		keep(s, memfd_with("free"), T_RU_FREE);
		keep(s, memfd_with("null"), T_RU_NULL);
		fd = eventfd(EFD_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
		REQUIRE(fd >= 0, "eventfd");
		keep(s, fd, T_RU_EFD_TIMERFD);
		fd = eventfd(EFD_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
		REQUIRE(fd >= 0, "eventfd");
		keep(s, fd, T_RU_EFD_EFD);
		REQUIRE(!pipe2(p, O_CLOEXEC), "pipe");
		keep(s, p[0], T_RU_PIPE_R);
		keep(s, p[1], T_RU_PIPE_W);
		keep(s, memfd_with("reopen"), T_RU_REOPEN);
	}
	argv[n++] = (char *)self;
	argv[n++] = (char *)mode_arg;
	argv[n++] = "--image2";
	for (int t = 0; t < T_COUNT; t++)
		if (ids[t].present)
			argv[n++] = encode(t);
	argv[n] = NULL;
	err = liveupdate_prepare();
	REQUIRE(!err, "prepare: %s", strerror(-err));
	err = liveupdate_reboot(self, argv, NULL);
	REQUIRE(0, "reboot: %s", strerror(-err));
	return 1;
}

/*
 * Preserved files reach the new image as descriptors it inherits (the
 * "luo-file-fd-v1" ABI); only then can the service close or replace one
 * before luo_init().
 */
static int files_inherited_as_fds(void)
{
	return !strcmp(LUO_FILES_COMPATIBLE, "luo-file-fd-v1");
}

/*
 * Find each preserved file's descriptor: before luo_init among those
 * without FD_CLOEXEC (the library clears it for the exec), after it among
 * all (@any).
 */
static void find_inherited(int any)
{
	int open_fds[256], n;

	n = any ? fds_all(open_fds, 256) : fds_without_cloexec(open_fds, 256);
	REQUIRE(n <= 256, "too many descriptors");
	for (int t = 0; t < T_COUNT; t++) {
		int found = 0;

		if (!ids[t].present)
			continue;
		for (int i = 0; i < n; i++) {
			struct stat sb;
			char id[256];

			if (fstat(open_fds[i], &sb) ||
			    (uint64_t)sb.st_dev != ids[t].dev ||
			    (uint64_t)sb.st_ino != ids[t].ino)
				continue;
			fd_identity(open_fds[i], id, sizeof(id));
			if (strcmp(id, ids[t].id))
				continue;
			ids[t].fd = open_fds[i];
			found++;
		}
		REQUIRE(found == 1, "%s: %d %sdescriptors match it, expected 1",
			names[t], found,
			any ? "" : "inherited FD_CLOEXEC-less ");
	}
}

/* Put @newfd at @num, as a service reusing the number would. */
static void put_at(int num, int newfd)
{
	REQUIRE(newfd >= 0, "open: %s", strerror(errno));
	if (newfd == num) /* landed there by itself */
		return;
	REQUIRE(dup2(newfd, num) == num, "dup2: %s", strerror(errno));
	close(newfd);
}

static int is_dev_null(int fd)
{
	struct stat sb;

	return !fstat(fd, &sb) && S_ISCHR(sb.st_mode) &&
	       sb.st_rdev == makedev(1, 3);
}

static int link_is(int fd, const char *want)
{
	char id[256];

	fd_identity(fd, id, sizeof(id));
	return !strncmp(id, want, strlen(want));
}

/* Retrieval must fail with -ESTALE, and the same way the second time. */
static void expect_stale(struct luo_session *s, int t)
{
	for (int i = 0; i < 2; i++) {
		int fd = -1,
		    err = liveupdate_session_retrieve_fd(s, TOKEN(t), &fd);
		char id[256] = "";

		if (!err)
			fd_identity(fd, id, sizeof(id));
		CHECK(err == -ESTALE,
		      "%s, attempt %d: retrieval returned %d (%s), expected -ESTALE%s%s",
		      names[t], i + 1, err, err ? strerror(-err) : "success",
		      err ? "" : "; it handed out: ", id);
		if (!err)
			close(fd);
	}
}

static int retrieve_ok(struct luo_session *s, int t)
{
	int fd = -1, err = liveupdate_session_retrieve_fd(s, TOKEN(t), &fd);

	CHECK(!err, "%s: retrieval failed: %s", names[t], strerror(-err));
	return err ? -1 : fd;
}

static void expect_content(int fd, const char *want, const char *what)
{
	char buf[64] = "";
	size_t len = strlen(want);

	CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)len &&
		      !memcmp(buf, want, len),
	      "%s: content '%s', expected '%s'", what, buf, want);
}

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
	if (failures) {
		fprintf(stderr, "%s: %d failures\n", test_name, failures);
		return 1;
	}
	printf("%s: the carrier replaced: handover adopted, files refused, the service's descriptor left alone\n",
	       test_name);
	return 0;
}

static int image2(int argc, char **argv)
{
	struct luo_session *s;
	int new_efd = -1, err;

	where = "image 2";
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
	if (failures) {
		fprintf(stderr, "%s: %d failures\n", test_name, failures);
		return 1;
	}
	printf("%s: replaced descriptors refused and left alone\n", test_name);
	return 0;
}

int main(int argc, char **argv)
{
	char self[4096];

	if (argc < 2 || (strcmp(argv[1], "replaced") &&
			 strcmp(argv[1], "anon") && strcmp(argv[1], "reused")))
		return fprintf(stderr, "usage: %s replaced|anon|reused\n",
			       argv[0]),
		       2;
	mode = !strcmp(argv[1], "anon")	    ? M_ANON
	       : !strcmp(argv[1], "reused") ? M_REUSED
					    : M_REPLACED;
	test_name = mode == M_ANON     ? "replaced-anon-fd"
		    : mode == M_REUSED ? "reused-after-retrieve"
				       : "replaced-fd";
	if (argc > 2 && !strcmp(argv[2], "--image2"))
		return image2(argc - 3, argv + 3);
	self_exe(self, sizeof(self));
	return image1(self, argv[1]);
}
