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

#include "replaced.h"

const char *const names[T_COUNT] = {
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

struct ident ids[T_COUNT];

static uint64_t sub_data = SUB_DATA;
struct liveupdate_subsystem sub =
	TEST_VALUE_SUBSYSTEM("replaced-test", &sub_data);
enum mode mode;

/* argv form: "TOKEN:DEV:INO:IDENTITY" */
static char *encode(int t)
{
	char *s;

	REQUIRE(asprintf(&s, "%d:%" PRIu64 ":%" PRIu64 ":%s", t, ids[t].dev,
			 ids[t].ino, ids[t].id) > 0,
		"asprintf");
	return s;
}

void decode(const char *s)
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

static int image1(void)
{
	struct itimerspec its = {.it_interval = {0, 50000000},
				 .it_value = {0, 50000000}};
	struct luo_session *s;
	char *handed[T_COUNT + 1];
	int p[2], fd, n = 0;

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
	for (int t = 0; t < T_COUNT; t++)
		if (ids[t].present)
			handed[n++] = encode(t);
	handed[n] = NULL;
	stage_reboot(handed);
	return 1;
}

/*
 * Preserved files reach the new image as descriptors it inherits (the
 * "luo-file-fd-v1" ABI); only then can the service close or replace one
 * before luo_init().
 */
int files_inherited_as_fds(void)
{
	return !strcmp(LUO_FILES_COMPATIBLE, "luo-file-fd-v1");
}

/*
 * Find each preserved file's descriptor: before luo_init among those
 * without FD_CLOEXEC (the library clears it for the exec), after it among
 * all (@any).
 */
void find_inherited(int any)
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
void put_at(int num, int newfd)
{
	REQUIRE(newfd >= 0, "open: %s", strerror(errno));
	if (newfd == num) /* landed there by itself */
		return;
	REQUIRE(dup2(newfd, num) == num, "dup2: %s", strerror(errno));
	close(newfd);
}

int is_dev_null(int fd)
{
	struct stat sb;

	return !fstat(fd, &sb) && S_ISCHR(sb.st_mode) &&
	       sb.st_rdev == makedev(1, 3);
}

int link_is(int fd, const char *want)
{
	char id[256];

	fd_identity(fd, id, sizeof(id));
	return !strncmp(id, want, strlen(want));
}

/* Retrieval must fail with -ESTALE, and the same way the second time. */
void expect_stale(struct luo_session *s, int t)
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

int retrieve_ok(struct luo_session *s, int t)
{
	int fd = -1, err = liveupdate_session_retrieve_fd(s, TOKEN(t), &fd);

	CHECK(!err, "%s: retrieval failed: %s", names[t], strerror(-err));
	return err ? -1 : fd;
}

void expect_content(int fd, const char *want, const char *what)
{
	char buf[64] = "";
	size_t len = strlen(want);

	CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)len &&
		      !memcmp(buf, want, len),
	      "%s: content '%s', expected '%s'", what, buf, want);
}

static int run(const struct stage *st)
{
	const char *arg = st->argc == 1 ? st->argv[0] : "";

	if (strcmp(arg, "replaced") && strcmp(arg, "anon") &&
	    strcmp(arg, "reused"))
		return fprintf(stderr, "usage: %s replaced|anon|reused\n",
			       st->self),
		       2;
	mode = !strcmp(arg, "anon")	? M_ANON
	       : !strcmp(arg, "reused") ? M_REUSED
					: M_REPLACED;
	test_name = mode == M_ANON     ? "replaced-anon-fd"
		    : mode == M_REUSED ? "reused-after-retrieve"
				       : "replaced-fd";
	if (st->n > 1)
		return image2(st->nhanded, st->handed);
	return image1();
}

static const struct stage_test test = {"replaced-fd", 30, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
