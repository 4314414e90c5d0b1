// SPDX-License-Identifier: MIT
/*
 * many-files: a thousand preserved files in four sessions across a real
 * exec, under scattered 64-bit tokens, retrieved in the opposite order and
 * each checked to be the right file (memfds and pipes carry their own
 * token, eventfds a count derived from it).  Afterwards no descriptor of
 * the library's is left open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <luo/luo.h>

#include "common.h"

#define NFILES 1000
#define NSESSIONS 4

static int open_fds(void)
{
	struct rlimit rl;
	int n = 0;

	REQUIRE(!getrlimit(RLIMIT_NOFILE, &rl), "getrlimit");
	for (rlim_t fd = 0; fd < rl.rlim_cur && fd < (1 << 20); fd++)
		n += fcntl((int)fd, F_GETFD) >= 0;
	return n;
}

/* Retrieve with LUO_INIT_TRUST_CARRIER: no per-file identity check. */
static bool trusted;
static struct luo_init_opts init_opts;

static void session_name(char *buf, size_t len, int k)
{
	snprintf(buf, len, "many-%d", k);
}

static int image1(void)
{
	struct luo_session *s[NSESSIONS];
	char name[32], text[32];
	int err;

	REQUIRE(!luo_init(&init_opts), "luo_init");
	for (int k = 0; k < NSESSIONS; k++) {
		session_name(name, sizeof(name), k);
		REQUIRE(!liveupdate_create_session(name, &s[k]), "session");
	}
	for (int i = 0; i < NFILES; i++) {
		uint64_t tok = scattered_token(i);
		int fd, p[2];

		snprintf(text, sizeof(text), "%016llx",
			 (unsigned long long)tok);
		switch (i % 3) {
		case 0:
			fd = memfd_create(text, MFD_CLOEXEC);
			REQUIRE(fd >= 0 && !write_all(fd, text, 16), "memfd");
			break;
		case 1:
			REQUIRE(!pipe2(p, O_CLOEXEC), "pipe: %s",
				strerror(errno));
			REQUIRE(!write_all(p[1], text, 16), "pipe write");
			close(p[1]);
			fd = p[0];
			break;
		default:
			fd = eventfd((unsigned int)(tok & 0xffffff) + 1,
				     EFD_CLOEXEC | EFD_NONBLOCK);
			REQUIRE(fd >= 0, "eventfd");
		}
		err = liveupdate_session_preserve_fd(s[i % NSESSIONS], fd, tok);
		REQUIRE(!err, "preserve file %d: %s", i, strerror(-err));
		close(fd);
	}
	stage_reboot(NULL);
	return 1;
}

static int image2(void)
{
	struct luo_session *s[NSESSIONS];
	char name[32], text[32], buf[32];
	int before, after, err, wrong = 0;

	err = luo_init(&init_opts);
	REQUIRE(!err, "luo_init refused the handover: %s", strerror(-err));
	before = open_fds();
	CHECK(before >= NFILES, "only %d descriptors after luo_init", before);
	for (int k = 0; k < NSESSIONS; k++) {
		session_name(name, sizeof(name), k);
		REQUIRE(!liveupdate_retrieve_session(name, &s[k]), "session");
	}
	for (int i = NFILES - 1; i >= 0; i--) {
		uint64_t tok = scattered_token(i);
		eventfd_t v = 0;
		int fd = -1, ok;

		err = liveupdate_session_retrieve_fd(s[i % NSESSIONS], tok,
						     &fd);
		if (err) {
			CHECK(0, "file %d: %s", i, strerror(-err));
			continue;
		}
		/* ...and not in another session (a sample: each miss logs) */
		if (i % 100 == 0)
			CHECK_EQ(liveupdate_session_retrieve_fd(
					 s[(i + 1) % NSESSIONS], tok, &err),
				 -ENOENT);
		snprintf(text, sizeof(text), "%016llx",
			 (unsigned long long)tok);
		memset(buf, 0, sizeof(buf));
		switch (i % 3) {
		case 0:
			ok = pread(fd, buf, sizeof(buf), 0) == 16 &&
			     !memcmp(buf, text, 16);
			break;
		case 1:
			ok = read(fd, buf, sizeof(buf)) == 16 &&
			     !memcmp(buf, text, 16);
			break;
		default:
			ok = eventfd_read(fd, &v) == 0 &&
			     v == (tok & 0xffffff) + 1;
		}
		if (!ok && wrong++ < 5)
			CHECK(0, "file %d (token %s) is not the preserved one",
			      i, text);
		close(fd);
	}
	CHECK(wrong == 0, "%d files were not the preserved ones", wrong);
	for (int k = 0; k < NSESSIONS; k++)
		CHECK_EQ(liveupdate_session_finish(s[k]), 0);
	CHECK_EQ(liveupdate_finish(), 0);
	after = open_fds();
	CHECK(after <= before - NFILES,
	      "%d descriptors after finish, %d before retrieval: the library keeps some of the %d files",
	      after, before, NFILES);
	return stage_done("%d files in %d sessions came across", NFILES,
			  NSESSIONS);
}

static int run(const struct stage *st)
{
	struct rlimit rl;

	for (int i = 0; i < st->argc; i++)
		if (!strcmp(st->argv[i], "--trusted"))
			trusted = true;
	init_opts.flags = trusted ? LUO_INIT_TRUST_CARRIER : 0;
	test_name = trusted ? "many-files-trusted" : "many-files";
	/* Room for the files, the library's references and the scans. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 4096 &&
	    rl.rlim_max >= 4096) {
		rl.rlim_cur = 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (st->n > 1)
		return image2();
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 2 * NFILES + 64) {
		printf("%s: skipped, RLIMIT_NOFILE is %llu\n", test_name,
		       (unsigned long long)rl.rlim_cur);
		return 77;
	}
	return image1();
}

static const struct stage_test test = {"many-files", 30, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
