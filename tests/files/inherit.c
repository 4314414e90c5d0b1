// SPDX-License-Identifier: MIT
/*
 * inherit: preserved files crossing the exec as inherited descriptors
 * (LUO_INIT_EXEC_INHERIT) instead of in flight on the carrier.
 *
 * Image 1 preserves NFILES memfds (each holds its own token) with
 * inheritance on; image 2 does what the case says before luo_init(), then
 * checks retrieval, FD_CLOEXEC and that nothing of the range is left.
 *
 *   files-inherit arrive    - a prepare and a cancel first, then a
 *                             failed exec (each time the range gets
 *                             FD_CLOEXEC back, nothing is left open),
 *                             then the update: every file under
 *                             its token, all of them FD_CLOEXEC after
 *                             luo_init(), a program started then inherits
 *                             none, none left after finish
 *   files-inherit replaced  - another file dup2()ed onto one number of
 *                             the range: that token is refused (-ESTALE),
 *                             the others come across
 *   files-inherit hole      - with LUO_INIT_TRUST_CARRIER, one number of
 *                             the range closed (one the library's own
 *                             descriptors would fill before it checks
 *                             the range): the hole is seen and every
 *                             file checked, that token is refused
 *   files-inherit sentinel  - the sentinel replaced by a lookalike Unix
 *                             socket: every token is
 *                             refused, none of the range lacks FD_CLOEXEC
 *   files-inherit refused   - the arena's descriptor replaced: the
 *                             handover is refused and the whole range is
 *                             closed
 *   files-inherit ignored   - LUO_INIT_IGNORE_HANDOVER: the range is
 *                             closed
 *   files-inherit fallback  - RLIMIT_NOFILE too low for the range: the
 *                             update goes on with the files on the
 *                             carrier, every one arrives
 *   files-inherit epoll     - an epoll instance preserved with the two
 *                             sockets it watches: in the new image a write
 *                             to the peer is delivered by epoll_wait()
 *                             with the data image 1 registered, with no
 *                             epoll_ctl() in between
 *   files-inherit epoll-unpreserved - an epoll instance watching an
 *                             eventfd that is not preserved: prepare
 *                             refuses (-EINVAL) and the service serves on
 *   files-inherit epoll-spawn - a spawn-mode update with a preserved
 *                             epoll instance: refused (its registrations
 *                             mean nothing in another process), the
 *                             service serves on
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "common.h"

#define NFILES 64
#define VICTIM 5
#define HIGH_VICTIM 40

static const char *mode = "arrive";

static uint64_t token_of(int i)
{
	return 0x1000 + (uint64_t)i * 7919;
}

/* The inherited range and sentinel the handover environment names. */
static int handover_range(int *arena, int *base, int *sentinel)
{
	const char *v = getenv(LUO_HANDOVER_ENV);
	int release, pid;

	if (!v || sscanf(v, "%d,%d,%d,%d,%d", arena, &release, &pid, sentinel,
			 base) != 5)
		return -1;
	return 0;
}

/* Preserved files (the memfds of image 1) open in [first, last]. */
static int held_in(int first, int last)
{
	int n = 0;

	for (int fd = first; fd <= last; fd++)
		n += link_has(fd, "memfd:inherit ");
	return n;
}

/* Descriptors a program started with fork+exec now has, 0..2 excluded. */
static int child_fds(void)
{
	char buf[64] = "";
	int p[2], status;
	pid_t pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (!pid) {
		dup2(p[1], 1);
		execl("/bin/sh", "sh", "-c", "ls /proc/$$/fd | wc -l",
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	n = read_full(p[0], buf, sizeof(buf) - 1, 5000);
	close(p[0]);
	waitpid(pid, &status, 0);
	return n > 0 ? atoi(buf) - 3 : -1;
}

#define TOK_EPOLL 0xe0
#define TOK_A 0xa0
#define TOK_B 0xb0
#define DATA_A 0x5eed0000aaaaULL

/* An epoll instance watching one end of a socket pair, all preserved. */
static int image1_epoll(bool unpreserved)
{
	struct luo_init_opts o = {.flags = LUO_INIT_EXEC_INHERIT};
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DATA_A};
	struct luo_session *s;
	int sp[2], ep, efd = -1;

	REQUIRE(!luo_init(&o), "luo_init");
	REQUIRE(!liveupdate_create_session("epoll", &s), "session");
	REQUIRE(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp),
		"socketpair");
	ep = epoll_create1(EPOLL_CLOEXEC);
	REQUIRE(ep >= 0 && !epoll_ctl(ep, EPOLL_CTL_ADD, sp[0], &ev), "epoll");
	if (unpreserved) {
		efd = eventfd(0, EFD_CLOEXEC);
		ev.data.u64 = 1;
		REQUIRE(efd >= 0 && !epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev),
			"eventfd");
	}
	CHECK_EQ(liveupdate_session_preserve_fd(s, sp[0], TOK_A), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(s, sp[1], TOK_B), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(s, ep, TOK_EPOLL), 0);
	close(sp[0]);
	close(sp[1]);
	close(ep);
	if (!strcmp(mode, "epoll-spawn")) {
		struct liveupdate_update_report r;
		char **argv;
		struct liveupdate_update_opts u = {
			.mode = LIVEUPDATE_MODE_SPAWN,
			.path = stage_current()->self,
			.deadline_ms = 10000};

		argv = stage_next_argv(NULL);
		u.argv = argv;

		/* The spawned image gets as far as luo_init(), then is
		 * killed: the files cannot be sent to it. */
		CHECK_EQ(liveupdate_update(&u, &r), -ECANCELED);
		CHECK(r.reason == LIVEUPDATE_TXN_FAILED && r.error == -EINVAL,
		      "report: %s (%d): %s",
		      liveupdate_txn_reason_name(r.reason), r.error, r.text);
		CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
		      "state %s",
		      liveupdate_state_name(liveupdate_get_state()));
		/* This image ends without an exec: argv[1] is its own. */
		free(argv[1]);
		free(argv);
		return stage_done(
			"an epoll instance is refused by a spawn-mode update");
	}
	if (unpreserved) {
		CHECK_EQ(liveupdate_prepare(), -EINVAL);
		CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
		      "state %s",
		      liveupdate_state_name(liveupdate_get_state()));
		close(efd);
		return stage_done(
			"an epoll target that is not preserved is refused at prepare");
	}
	stage_reboot(NULL);
	return 1;
}

static int image2_epoll(void)
{
	struct epoll_event ev[2];
	struct luo_session *s;
	int ep = -1, a = -1, b = -1, n;

	REQUIRE(!luo_init(NULL), "luo_init");
	REQUIRE(!liveupdate_retrieve_session("epoll", &s), "session");
	CHECK_EQ(liveupdate_session_retrieve_fd(s, TOK_EPOLL, &ep), 0);
	CHECK_EQ(liveupdate_session_retrieve_fd(s, TOK_A, &a), 0);
	CHECK_EQ(liveupdate_session_retrieve_fd(s, TOK_B, &b), 0);
	REQUIRE(ep >= 0 && a >= 0 && b >= 0, "retrieval");
	CHECK_EQ(epoll_wait(ep, ev, 2, 0), 0);
	REQUIRE(write(b, "x", 1) == 1, "write");
	n = epoll_wait(ep, ev, 2, 5000);
	CHECK_EQ(n, 1);
	if (n == 1) {
		CHECK(ev[0].data.u64 == DATA_A,
		      "event data %#llx, registered %#llx",
		      (unsigned long long)ev[0].data.u64, DATA_A);
		CHECK(ev[0].events & EPOLLIN, "events %#x", ev[0].events);
	}
	CHECK_EQ(liveupdate_session_finish(s), 0);
	CHECK_EQ(liveupdate_finish(), 0);
	return stage_done("the epoll registration came across with its data");
}

static int image1(void)
{
	struct luo_init_opts o = {.flags = LUO_INIT_EXEC_INHERIT};
	struct luo_session *s;
	char text[32];
	int all, bare, err;

	REQUIRE(!luo_init(&o), "luo_init");
	REQUIRE(!liveupdate_create_session("inherit", &s), "session");
	for (int i = 0; i < NFILES; i++) {
		int fd = memfd_create("inherit", MFD_CLOEXEC);

		snprintf(text, sizeof(text), "%016llx",
			 (unsigned long long)token_of(i));
		REQUIRE(fd >= 0 && !write_all(fd, text, 16), "memfd");
		err = liveupdate_session_preserve_fd(s, fd, token_of(i));
		REQUIRE(!err, "preserve %d: %s", i, strerror(-err));
		close(fd);
	}
	if (!strcmp(mode, "arrive")) {
		all = fds_all(NULL, 0);
		bare = fds_without_cloexec(NULL, 0);
		REQUIRE(!liveupdate_prepare(), "prepare");
		CHECK(fds_without_cloexec(NULL, 0) >= bare + NFILES + 1,
		      "prepared: %d descriptors without FD_CLOEXEC, expected the %d files and the sentinel more than %d",
		      fds_without_cloexec(NULL, 0), NFILES, bare);
		REQUIRE(!liveupdate_cancel(), "cancel");
		CHECK_EQ(fds_without_cloexec(NULL, 0), bare);
		CHECK_EQ(fds_all(NULL, 0), all);
		/* An exec that fails cancels the same way. */
		REQUIRE(!liveupdate_prepare(), "prepare");
		CHECK(liveupdate_reboot("/nonexistent/luo-inherit",
					stage_next_argv(NULL), NULL) < 0,
		      "the exec of a missing binary succeeded");
		CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
		      "state %s after the failed exec",
		      liveupdate_state_name(liveupdate_get_state()));
		CHECK_EQ(fds_without_cloexec(NULL, 0), bare);
		CHECK_EQ(fds_all(NULL, 0), all);
	}
	if (!strcmp(mode, "fallback")) {
		struct rlimit rl;
		int top = 0, fds[4096];
		int k = fds_all(fds, 4096);

		for (int i = 0; i < k && i < 4096; i++)
			top = fds[i] > top ? fds[i] : top;
		/* Room for the prepare's own descriptors, not for the range. */
		REQUIRE(!getrlimit(RLIMIT_NOFILE, &rl), "getrlimit");
		rl.rlim_cur = (rlim_t)top + 24;
		REQUIRE(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit");
	}
	stage_reboot(NULL);
	return 1;
}

/* Every token but @bad (-1: none; NFILES: all) comes across intact. */
static void retrieve_all(struct luo_session *s, int bad)
{
	char text[32], buf[32];

	for (int i = 0; i < NFILES; i++) {
		int fd = -1, err;

		err = liveupdate_session_retrieve_fd(s, token_of(i), &fd);
		if (bad == NFILES || i == bad) {
			CHECK(err == -ESTALE, "token %d: %s, expected -ESTALE",
			      i, strerror(-err));
			continue;
		}
		if (err) {
			CHECK(0, "token %d: %s", i, strerror(-err));
			continue;
		}
		snprintf(text, sizeof(text), "%016llx",
			 (unsigned long long)token_of(i));
		memset(buf, 0, sizeof(buf));
		CHECK(pread(fd, buf, sizeof(buf), 0) == 16 &&
			      !memcmp(buf, text, 16),
		      "token %d: fd %d is not its file", i, fd);
		CHECK(fd_cloexec(fd) == 1, "token %d: fd %d lacks FD_CLOEXEC",
		      i, fd);
		close(fd);
	}
}

static int image2(void)
{
	struct luo_init_opts o = {0};
	struct luo_session *s;
	int arena, base, sentinel, other, err, bad = -1;

	if (!strcmp(mode, "fallback")) {
		CHECK(handover_range(&arena, &base, &sentinel),
		      "the files were inherited: %s", getenv(LUO_HANDOVER_ENV));
		REQUIRE(!luo_init(NULL), "luo_init");
		REQUIRE(!liveupdate_retrieve_session("inherit", &s), "session");
		retrieve_all(s, -1);
		CHECK_EQ(liveupdate_session_finish(s), 0);
		CHECK_EQ(liveupdate_finish(), 0);
		return stage_done("fallback: %d files came on the carrier",
				  NFILES);
	}
	REQUIRE(!handover_range(&arena, &base, &sentinel),
		"no inherited range in %s=%s", LUO_HANDOVER_ENV,
		getenv(LUO_HANDOVER_ENV) ?: "(unset)");
	CHECK_EQ(sentinel - base, NFILES);
	CHECK_EQ(held_in(base, sentinel - 1), NFILES);
	CHECK(link_has(sentinel, "socket:"), "fd %d is not the sentinel",
	      sentinel);
	if (!strcmp(mode, "replaced")) {
		other = memfd_create("other", MFD_CLOEXEC);
		REQUIRE(dup2(other, base + VICTIM) == base + VICTIM, "dup2");
		close(other);
		bad = VICTIM;
	} else if (!strcmp(mode, "hole")) {
		/* At or above 100, where the library's own duplicates for the
		 * exec-mode rollback go before it looks at the range. */
		CHECK(base + HIGH_VICTIM >= 100, "range at %d", base);
		close(base + HIGH_VICTIM);
		o.flags = LUO_INIT_TRUST_CARRIER;
		bad = HIGH_VICTIM;
	} else if (!strcmp(mode, "sentinel")) {
		int sp[2];

		/* A lookalike: a Unix socket of this process, no FD_CLOEXEC. */
		REQUIRE(!socketpair(AF_UNIX, SOCK_STREAM, 0, sp), "socketpair");
		REQUIRE(dup2(sp[0], sentinel) == sentinel, "dup2");
		close(sp[0]);
		close(sp[1]);
		bad = NFILES;
	} else if (!strcmp(mode, "refused")) {
		other = memfd_create("not-the-arena", MFD_CLOEXEC);
		REQUIRE(dup2(other, arena) == arena, "dup2");
		close(other);
	} else if (!strcmp(mode, "ignored")) {
		o.flags = LUO_INIT_IGNORE_HANDOVER;
	}
	err = luo_init(&o);
	if (!strcmp(mode, "refused") || !strcmp(mode, "ignored")) {
		if (err)
			CHECK_EQ(luo_init(NULL), 0);
		CHECK_EQ(held_in(base, sentinel), 0);
		CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
		      "state %s",
		      liveupdate_state_name(liveupdate_get_state()));
		return stage_done("%s: the %d inherited files were closed",
				  mode, NFILES);
	}
	REQUIRE(!err, "luo_init refused the handover: %s", strerror(-err));
	for (int fd = base; fd < sentinel; fd++)
		CHECK(fd_cloexec(fd) != 0,
		      "fd %d lacks FD_CLOEXEC after luo_init", fd);
	if (!strcmp(mode, "arrive")) {
		int n = child_fds();

		CHECK(n >= 0 && n < NFILES,
		      "a program started after luo_init() has %d descriptors",
		      n);
	}
	REQUIRE(!liveupdate_retrieve_session("inherit", &s), "session");
	retrieve_all(s, bad);
	CHECK_EQ(liveupdate_session_finish(s), 0);
	CHECK_EQ(liveupdate_finish(), 0);
	if (!strcmp(mode, "arrive"))
		CHECK_EQ(held_in(base, sentinel), 0);
	return stage_done("%s: %d inherited files", mode, NFILES);
}

static int run(const struct stage *st)
{
	static char name[64];

	if (st->argc > 0)
		mode = st->argv[0];
	snprintf(name, sizeof(name), "inherit-%s", mode);
	test_name = name;
	if (!strncmp(mode, "epoll", 5))
		return st->n > 1 ? image2_epoll()
				 : image1_epoll(
					   !strcmp(mode, "epoll-unpreserved"));
	return st->n > 1 ? image2() : image1();
}

static const struct stage_test test = {"inherit", 30, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
