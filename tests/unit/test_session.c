// SPDX-License-Identifier: MIT
/*
 * Sessions, preserved files, file handlers and FLBs in the old image:
 * every error code, every FLB count transition, the failure paths.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "recorder.h"

/* A user handler for memfds named "unit-*", with counters and an FLB. */
static struct {
	int can, preserve, unpreserve, freeze, unfreeze;
	int fail_preserve, fail_freeze_at; /* 0: never; n: the nth freeze */
	int flb_preserve, flb_unpreserve;
	int fail_flb_preserve;
	uint64_t flb_data;
} cnt;

static bool unit_can(struct liveupdate_file_handler *h, int fd)
{
	char path[64], target[128];
	ssize_t n;

	(void)h;
	cnt.can++;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return strstr(target, "memfd:unit-") != NULL;
}

static int unit_preserve(struct liveupdate_file_op_args *a)
{
	cnt.preserve++;
	if (cnt.fail_preserve)
		return -EIO;
	a->serialized_data = 0xf11e;
	return 0;
}

static void unit_unpreserve(struct liveupdate_file_op_args *a)
{
	(void)a;
	cnt.unpreserve++;
}

static int unit_freeze(struct liveupdate_file_op_args *a)
{
	(void)a;
	if (cnt.fail_freeze_at && ++cnt.freeze == cnt.fail_freeze_at)
		return -EAGAIN;
	if (!cnt.fail_freeze_at)
		cnt.freeze++;
	return 0;
}

static void unit_unfreeze(struct liveupdate_file_op_args *a)
{
	(void)a;
	cnt.unfreeze++;
}

static const struct liveupdate_file_ops unit_ops = {
	.can_preserve = unit_can,
	.preserve = unit_preserve,
	.unpreserve = unit_unpreserve,
	.freeze = unit_freeze,
	.unfreeze = unit_unfreeze,
};

static struct liveupdate_file_handler unit_handler;

static int flb_preserve(struct liveupdate_flb_op_args *a)
{
	cnt.flb_preserve++;
	if (cnt.fail_flb_preserve)
		return -EPERM;
	a->data = cnt.flb_data;
	a->obj = &cnt;
	return 0;
}

static void flb_unpreserve(struct liveupdate_flb_op_args *a)
{
	assert_int_equal(a->data, cnt.flb_data);
	assert_ptr_equal(a->obj, &cnt);
	cnt.flb_unpreserve++;
}

static int flb_retrieve(struct liveupdate_flb_op_args *a)
{
	(void)a;
	return 0;
}

static void flb_finish(struct liveupdate_flb_op_args *a)
{
	(void)a;
}

static const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.unpreserve = flb_unpreserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
};

static struct liveupdate_flb unit_flb;

static int setup_opts(uint32_t max_files)
{
	struct luo_init_opts opts = {.session_max_files = max_files};

	memset(&cnt, 0, sizeof(cnt));
	if (rec_luo_start(&opts))
		return -1;
	memset(&unit_handler, 0, sizeof(unit_handler));
	unit_handler.ops = &unit_ops;
	unit_handler.compatible = "unit-v1";
	memset(&unit_flb, 0, sizeof(unit_flb));
	unit_flb.ops = &flb_ops;
	unit_flb.compatible = "unit-flb-v1";
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_opts(0);
}

static int teardown(void **state)
{
	(void)state;
	return rec_luo_stop();
}

static int memfd(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* Descriptors above @from without FD_CLOEXEC. */
static int count_inheritable(int from)
{
	int n = 0;

	for (int fd = from; fd < 4096; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl >= 0 && !(fl & FD_CLOEXEC))
			n++;
	}
	return n;
}

static void test_create_rules(void **state)
{
	struct luo_session *s, *t;
	char name[65];

	(void)state;
	assert_int_equal(liveupdate_create_session("", &s), -EINVAL);
	assert_int_equal(liveupdate_create_session(NULL, &s), -EINVAL);
	memset(name, 'n', 64);
	name[64] = 0; /* no NUL within 64 bytes */
	assert_int_equal(liveupdate_create_session(name, &s), -EINVAL);
	name[63] = 0;
	assert_int_equal(liveupdate_create_session(name, &s), 0);
	assert_string_equal(liveupdate_session_name(s), name);
	assert_int_equal(liveupdate_create_session(name, &t), -EEXIST);
	assert_int_equal(liveupdate_session_close(s), 0);
	/* Closed: the name is free again. */
	assert_int_equal(liveupdate_create_session(name, &t), 0);
}

static void test_preserve_rules(void **state)
{
	struct luo_session *a, *b;
	int m = memfd("plain"), other = memfd("other"), devnull;

	(void)state;
	assert_int_equal(liveupdate_create_session("a", &a), 0);
	assert_int_equal(liveupdate_create_session("b", &b), 0);
	assert_int_equal(liveupdate_session_preserve_fd(a, -1, 1), -EBADF);
	assert_int_equal(liveupdate_session_preserve_fd(a, 9999, 1), -EBADF);
	assert_int_equal(liveupdate_session_preserve_fd(a, m, 1), 0);
	assert_int_equal(liveupdate_session_preserve_fd(a, other, 1), -EEXIST);
	/* The same open file, in any session, under any descriptor. */
	assert_int_equal(liveupdate_session_preserve_fd(a, m, 2), -EBUSY);
	assert_int_equal(liveupdate_session_preserve_fd(b, m, 1), -EBUSY);
	{
		int d = dup(m);

		assert_int_equal(liveupdate_session_preserve_fd(b, d, 1),
				 -EBUSY);
		close(d);
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(liveupdate_session_preserve_fd(a, devnull, 3),
			 -ENOENT);
	close(devnull);
	/* The message names the kind of file and what is supported. */
	{
		int ep = epoll_create1(EPOLL_CLOEXEC), dir;

		assert_int_equal(liveupdate_session_preserve_fd(a, ep, 5),
				 -ENOENT);
		assert_non_null(strstr(rec.last_error, "an epoll instance"));
		assert_non_null(strstr(rec.last_error, "memfds"));
		close(ep);
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_int_equal(liveupdate_session_preserve_fd(a, devnull, 5),
				 -ENOENT);
		assert_non_null(strstr(rec.last_error,
				       "a character device (/dev/null)"));
		close(devnull);
		dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_int_equal(liveupdate_session_preserve_fd(a, dir, 5),
				 -ENOENT);
		assert_non_null(strstr(rec.last_error, "a directory (/)"));
		close(dir);
	}
	/* As the kernel: an O_PATH descriptor is no open file. */
	{
		char path[64];
		int opath;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", other);
		opath = open(path, O_PATH | O_CLOEXEC);
		assert_true(opath >= 0);
		assert_int_equal(liveupdate_session_preserve_fd(a, opath, 4),
				 -EBADF);
		close(opath);
		opath = open("/tmp", O_PATH | O_CLOEXEC);
		assert_true(opath >= 0);
		assert_int_equal(liveupdate_session_preserve_fd(a, opath, 4),
				 -EBADF);
		close(opath);
	}
	/* Tokens are per session. */
	assert_int_equal(liveupdate_session_preserve_fd(b, other, 1), 0);
	assert_int_equal(liveupdate_session_preserve_fd(NULL, other, 1),
			 -EINVAL);
}

static void test_tokens_listed(void **state)
{
	struct luo_session *s;
	uint64_t tok[4] = {0}, sum = 0;
	int a = memfd("t1"), b = memfd("t2"), c = memfd("t3");

	(void)state;
	assert_int_equal(liveupdate_create_session("toks", &s), 0);
	assert_int_equal(liveupdate_session_get_tokens(s, NULL, 0), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, a, 10), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, b, 20), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, c, 30), 0);
	assert_int_equal(liveupdate_session_get_tokens(s, NULL, 0), 3);
	/* Too little room: the count, and only what fits. */
	assert_int_equal(liveupdate_session_get_tokens(s, tok, 1), 3);
	assert_true(tok[0] == 10 || tok[0] == 20 || tok[0] == 30);
	assert_int_equal(tok[1], 0);
	assert_int_equal(liveupdate_session_get_tokens(s, tok, 4), 3);
	for (int i = 0; i < 3; i++)
		sum += tok[i];
	assert_int_equal(sum, 60);
	assert_int_equal(liveupdate_session_get_tokens(NULL, tok, 4), -EINVAL);
	assert_int_equal(liveupdate_session_get_tokens(s, NULL, 4), -EINVAL);
	assert_int_equal(liveupdate_session_close(s), 0);
	close(a);
	close(b);
	close(c);
}

/* A limit that leaves exactly @room free descriptor numbers. */
static rlim_t limit_with_room(int room)
{
	int fd = 0;

	for (; room > 0; fd++)
		room -= fcntl(fd, F_GETFD) < 0;
	return (rlim_t)fd;
}

/*
 * Under a low RLIMIT_NOFILE: each preserved file costs the library one
 * descriptor; running out, at preserve or for the carrier at freeze, is
 * an error that says so, with the counts and what to do.
 */
static void test_descriptor_budget(void **state)
{
	struct rlimit old, low;
	struct luo_session *s;
	int mine[64], fill[64], nmine = 0, nfill = 0, err = 0;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	/* Odd: the library's duplicate is what runs out, not a memfd. */
	low.rlim_cur = limit_with_room(21);
	assert_int_equal(liveupdate_create_session("budget", &s), 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	/* The service keeps its own descriptors: two per file. */
	while (nmine < 64) {
		int fd = memfd_create("budget", MFD_CLOEXEC);

		if (fd < 0)
			break;
		mine[nmine++] = fd;
		rec.log_errors = 0;
		err = liveupdate_session_preserve_fd(s, fd, (uint64_t)nmine);
		if (err)
			break;
	}
	assert_int_equal(err, -EMFILE);
	assert_true(nmine > 5 && nmine < 20);
	assert_int_equal(rec.log_errors, 1);
	assert_non_null(strstr(rec.last_error, "RLIMIT_NOFILE"));
	assert_non_null(strstr(rec.last_error, "one descriptor per preserved"));
	/* Closing ours frees room: the library's reference is enough. */
	for (int i = 0; i < nmine; i++)
		close(mine[i]);
	/* The table full: no room for the carrier, made at prepare. */
	while (nfill < 64 && (fill[nfill] = open("/dev/null", O_RDONLY)) >= 0)
		nfill++;
	rec.log_errors = 0;
	assert_int_equal(liveupdate_prepare(), -EMFILE);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	assert_true(rec.log_errors >= 1);
	assert_non_null(strstr(rec.last_error, "carrier"));
	assert_non_null(strstr(rec.last_error, "RLIMIT_NOFILE"));
	while (nfill)
		close(fill[--nfill]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* With room again the update gets through. */
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(liveupdate_session_close(s), 0);
}

static void test_two_opens_of_one_file_are_two_files(void **state)
{
	char path[] = "/tmp/luo-unit-XXXXXX";
	struct luo_session *s;
	int a, b;

	(void)state;
	a = mkstemp(path);
	assert_true(a >= 0);
	b = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	assert_int_equal(liveupdate_create_session("files", &s), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, a, 1), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, b, 2), 0);
	close(a);
	close(b);
}

static void test_library_keeps_its_reference(void **state)
{
	struct luo_session *s;
	int base = count_inheritable(3);
	int m = memfd("kept");

	(void)state;
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 7), 0);
	close(m);
	/* Closing ours does not unpreserve; nothing inheritable appeared. */
	assert_int_equal(count_inheritable(3), base);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 7), 0);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 7), -ENOENT);
}

/* The library's descriptor for @ino, other than @except. */
static int find_library_fd(ino_t ino, int except)
{
	struct stat st;

	for (int fd = 3; fd < 4096; fd++)
		if (fd != except && !fstat(fd, &st) && st.st_ino == ino)
			return fd;
	return -1;
}

/* A service that clobbers the library's descriptor is stopped at prepare,
 * outside the blackout, and keeps serving in NORMAL. */
static void test_prepare_refuses_clobbered_file(void **state)
{
	struct luo_session *s;
	struct stat st;
	int m = memfd("clobbered"), lib, other;

	(void)state;
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), 0);
	assert_int_equal(fstat(m, &st), 0);
	lib = find_library_fd(st.st_ino, m);
	assert_true(lib >= 0);
	other = eventfd(0, EFD_CLOEXEC);
	assert_true(other >= 0);
	assert_int_equal(dup3(other, lib, O_CLOEXEC), lib);
	assert_int_equal(liveupdate_prepare(), -ESTALE);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	/* Preserving it again is the way out. */
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 1), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), 0);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	close(other);
	close(m);
}

static void test_full_session(void **state)
{
	struct luo_session *s;
	int fds[5];

	(void)state;
	assert_int_equal(luo_exit(), 0);
	setup_opts(4);
	assert_int_equal(liveupdate_create_session("small", &s), 0);
	for (int i = 0; i < 5; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	for (int i = 0; i < 4; i++)
		assert_int_equal(liveupdate_session_preserve_fd(s, fds[i], i),
				 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, fds[4], 4), -ENOSPC);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 0), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, fds[4], 4), 0);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
}

static void test_busy_during_update(void **state)
{
	struct luo_session *s, *t;
	int m = memfd("busy"), n = memfd("busy2");

	(void)state;
	int o = memfd("busy3");

	assert_int_equal(liveupdate_create_session("s", &s), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, n, 2), 0);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_create_session("t", &t), -EBUSY);
	assert_int_equal(liveupdate_session_preserve_fd(s, o, 3), -EBUSY);
	assert_int_equal(liveupdate_session_close(s), -EBUSY);
	assert_int_equal(liveupdate_register_file_handler(&unit_handler),
			 -EBUSY);
	/* Dropping a file is allowed until the exec. */
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 1), 0);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 1), -ENOENT);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 2), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, o, 3), -EBUSY);
	assert_int_equal(liveupdate_session_close(s), -EBUSY);
	assert_int_equal(liveupdate_cancel(), 0);
	/* The cancel brings neither back: both tokens and files are free. */
	assert_int_equal(liveupdate_session_get_tokens(s, NULL, 0), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, n, 2), 0);
	assert_int_equal(liveupdate_session_close(s), 0);
	close(o);
}

static void test_incoming_calls_in_normal(void **state)
{
	struct luo_session *s, *out;
	int fd = -1;

	(void)state;
	assert_int_equal(liveupdate_retrieve_session("x", &s), -ENOENT);
	/* As the kernel, which only compares names: not found. */
	{
		char name[65];

		assert_int_equal(liveupdate_retrieve_session("", &s), -ENOENT);
		memset(name, 'n', 64);
		name[64] = 0; /* no NUL within 64 bytes */
		assert_int_equal(liveupdate_retrieve_session(name, &s),
				 -ENOENT);
		assert_int_equal(liveupdate_retrieve_session("x", NULL),
				 -EINVAL);
	}
	assert_int_equal(liveupdate_create_session("out", &out), 0);
	assert_int_equal(liveupdate_session_retrieve_fd(out, 1, &fd), -EINVAL);
	assert_int_equal(liveupdate_session_finish(out), -EINVAL);
	assert_int_equal(fd, -1);
}

static void test_handler_registration(void **state)
{
	struct liveupdate_file_handler bad = {.ops = &unit_ops,
					      .compatible = ""};
	struct liveupdate_file_handler taken = {.ops = &unit_ops,
						.compatible = "memfd-v1"};
	struct liveupdate_file_ops noprep = {.can_preserve = unit_can};
	struct liveupdate_file_handler incomplete = {.ops = &noprep,
						     .compatible = "x-v1"};
	char longname[60];

	(void)state;
	assert_int_equal(liveupdate_register_file_handler(&bad), -EINVAL);
	assert_int_equal(liveupdate_register_file_handler(NULL), -EINVAL);
	assert_int_equal(liveupdate_register_file_handler(&incomplete),
			 -EINVAL);
	memset(longname, 'c', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	bad.compatible = longname; /* 59 bytes: over 47 */
	assert_int_equal(liveupdate_register_file_handler(&bad), -EINVAL);
	/* Reserved: marks a file unpreserved after freeze. */
	bad.compatible = "luo-closed-v1";
	assert_int_equal(liveupdate_register_file_handler(&bad), -EINVAL);
	assert_int_equal(liveupdate_register_file_handler(&taken), -EEXIST);
	assert_int_equal(liveupdate_register_file_handler(&unit_handler), 0);
	assert_int_equal(liveupdate_register_file_handler(&unit_handler),
			 -EEXIST);
	assert_int_equal(liveupdate_unregister_file_handler(&taken), -ENOENT);
	assert_int_equal(liveupdate_unregister_file_handler(&unit_handler), 0);
}

static void test_user_handler_takes_precedence(void **state)
{
	struct luo_session *s;
	int mine = memfd("unit-a"), plain = memfd("plain");

	(void)state;
	assert_int_equal(liveupdate_register_file_handler(&unit_handler), 0);
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, mine, 1), 0);
	assert_int_equal(cnt.preserve, 1);
	/* An ordinary memfd still goes to the built-in handler. */
	assert_int_equal(liveupdate_session_preserve_fd(s, plain, 2), 0);
	assert_int_equal(cnt.preserve, 1);
	/* A handler with files cannot go away. */
	assert_int_equal(liveupdate_unregister_file_handler(&unit_handler),
			 -EBUSY);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 1), 0);
	assert_int_equal(cnt.unpreserve, 1);
	assert_int_equal(liveupdate_unregister_file_handler(&unit_handler), 0);
}

static void test_handler_preserve_failure_leaves_nothing(void **state)
{
	struct luo_session *s;
	int mine = memfd("unit-fail");
	int base = count_inheritable(3);
	void *obj;

	(void)state;
	assert_int_equal(liveupdate_register_file_handler(&unit_handler), 0);
	assert_int_equal(liveupdate_register_flb(&unit_handler, &unit_flb), 0);
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	cnt.fail_preserve = 1;
	assert_int_equal(liveupdate_session_preserve_fd(s, mine, 1), -EIO);
	/* The FLB went up and back down: counts as they were. */
	assert_int_equal(cnt.flb_preserve, 1);
	assert_int_equal(cnt.flb_unpreserve, 1);
	assert_int_equal(liveupdate_flb_get_outgoing(&unit_flb, &obj), -ENOENT);
	assert_int_equal(count_inheritable(3), base);
	cnt.fail_preserve = 0;
	assert_int_equal(liveupdate_session_preserve_fd(s, mine, 1), 0);
}

static void test_flb_counts(void **state)
{
	struct luo_session *s;
	int f[3];
	void *obj;

	(void)state;
	cnt.flb_data = 0xdada;
	assert_int_equal(liveupdate_register_file_handler(&unit_handler), 0);
	assert_int_equal(liveupdate_register_flb(&unit_handler, &unit_flb), 0);
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	assert_int_equal(liveupdate_flb_get_outgoing(&unit_flb, &obj), -ENOENT);
	for (int i = 0; i < 3; i++) {
		f[i] = memfd("unit-flb");
		assert_int_equal(liveupdate_session_preserve_fd(s, f[i], i), 0);
		assert_int_equal(cnt.flb_preserve, 1); /* only the first */
	}
	assert_int_equal(liveupdate_flb_get_outgoing(&unit_flb, &obj), 0);
	assert_ptr_equal(obj, &cnt);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 0), 0);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 1), 0);
	assert_int_equal(cnt.flb_unpreserve, 0);
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 2), 0);
	assert_int_equal(cnt.flb_unpreserve, 1); /* only the last */
	assert_int_equal(liveupdate_flb_get_outgoing(&unit_flb, &obj), -ENOENT);
	/* And up again: a fresh preserve. */
	assert_int_equal(liveupdate_session_preserve_fd(s, f[0], 0), 0);
	assert_int_equal(cnt.flb_preserve, 2);
	/* Closing the session drops the last file. */
	assert_int_equal(liveupdate_session_close(s), 0);
	assert_int_equal(cnt.flb_unpreserve, 2);
	for (int i = 0; i < 3; i++)
		close(f[i]);
}

static void test_flb_preserve_failure(void **state)
{
	struct luo_session *s;
	int m = memfd("unit-flbfail");

	(void)state;
	assert_int_equal(liveupdate_register_file_handler(&unit_handler), 0);
	assert_int_equal(liveupdate_register_flb(&unit_handler, &unit_flb), 0);
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	cnt.fail_flb_preserve = 1;
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), -EPERM);
	assert_int_equal(cnt.preserve, 0); /* the handler was never asked */
	assert_int_equal(cnt.flb_unpreserve, 0);
	cnt.fail_flb_preserve = 0;
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), 0);
}

static void test_flb_registration(void **state)
{
	/* Registered objects outlive this frame until luo_exit(). */
	static struct liveupdate_flb clash, other, noops;
	static struct liveupdate_file_handler second;
	struct luo_session *s;
	int m = memfd("unit-reg");

	(void)state;
	clash = (struct liveupdate_flb){.ops = &flb_ops,
					.compatible = "unit-flb-v1"};
	other = (struct liveupdate_flb){.ops = &flb_ops,
					.compatible = "other-flb-v1"};
	noops = (struct liveupdate_flb){.compatible = "x-v1"};
	second = (struct liveupdate_file_handler){.ops = &unit_ops,
						  .compatible = "unit2-v1"};
	assert_int_equal(liveupdate_register_file_handler(&unit_handler), 0);
	assert_int_equal(liveupdate_register_file_handler(&second), 0);
	assert_int_equal(liveupdate_register_flb(&unit_handler, &noops),
			 -EINVAL);
	assert_int_equal(liveupdate_register_flb(NULL, &unit_flb), -EINVAL);
	assert_int_equal(liveupdate_register_flb(&unit_handler, &unit_flb), 0);
	assert_int_equal(liveupdate_register_flb(&unit_handler, &unit_flb),
			 -EEXIST);
	/* Another FLB object with the same compatible. */
	assert_int_equal(liveupdate_register_flb(&second, &clash), -EEXIST);
	/* One FLB shared by two handlers is fine. */
	assert_int_equal(liveupdate_register_flb(&second, &unit_flb), 0);
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), 0);
	/* The newest handler, "second", took the file: it is busy now. */
	assert_int_equal(liveupdate_register_flb(&second, &other), -EBUSY);
	assert_int_equal(liveupdate_unregister_flb(&second, &unit_flb), -EBUSY);
	assert_int_equal(liveupdate_unregister_flb(&unit_handler, &unit_flb),
			 0);
	assert_int_equal(liveupdate_unregister_flb(&unit_handler, &unit_flb),
			 -ENOENT);
	assert_int_equal(liveupdate_register_flb(&unit_handler, &other), 0);
	assert_int_equal(liveupdate_session_close(s), 0);
	assert_int_equal(liveupdate_unregister_flb(&second, &unit_flb), 0);
}

/* Accepts memfds named exactly after the handler's compatible. */
static bool named_can(struct liveupdate_file_handler *h, int fd)
{
	char path[64], target[128], want[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", h->compatible);
	return !strcmp(target, want);
}

static const struct liveupdate_file_ops named_ops = {
	.can_preserve = named_can,
	.preserve = unit_preserve,
};

/* FLB table full: the first file of one FLB too many is -ENOSPC. */
static void test_flb_table_full(void **state)
{
	enum { N = LUO_FLB_MAX + 1 };
	static struct liveupdate_file_handler hs[N];
	static struct liveupdate_flb fl[N];
	static char names[N][2][32];
	struct luo_session *s;
	int fds[N];

	(void)state;
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	for (int i = 0; i < N; i++) {
		snprintf(names[i][0], 32, "h%d-v1", i);
		snprintf(names[i][1], 32, "f%d-v1", i);
		hs[i] = (struct liveupdate_file_handler){
			.ops = &named_ops, .compatible = names[i][0]};
		fl[i] = (struct liveupdate_flb){.ops = &flb_ops,
						.compatible = names[i][1]};
		assert_int_equal(liveupdate_register_file_handler(&hs[i]), 0);
		assert_int_equal(liveupdate_register_flb(&hs[i], &fl[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		fds[i] = memfd(names[i][0]);
		assert_int_equal(liveupdate_session_preserve_fd(s, fds[i], i),
				 i == N - 1 ? -ENOSPC : 0);
	}
	assert_int_equal(cnt.flb_preserve, N - 1);
	/* Room again once one FLB is no longer needed. */
	assert_int_equal(liveupdate_session_unpreserve_fd(s, 0), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, fds[N - 1], N - 1),
			 0);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(liveupdate_session_close(s), 0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

static void test_freeze_failure_unfreezes(void **state)
{
	struct luo_session *s;
	int f[3];
	int base;

	(void)state;
	assert_int_equal(liveupdate_register_file_handler(&unit_handler), 0);
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	for (int i = 0; i < 3; i++) {
		f[i] = memfd("unit-frz");
		assert_int_equal(liveupdate_session_preserve_fd(s, f[i], i), 0);
	}
	base = count_inheritable(3);
	cnt.fail_freeze_at = 2;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), -EAGAIN);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	assert_int_equal(cnt.unfreeze, 1); /* the one that froze */
	assert_int_equal(count_inheritable(3), base);
	/* The files are still preserved; a later update works. */
	cnt.fail_freeze_at = 0;
	cnt.freeze = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(cnt.freeze, 3);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(cnt.unfreeze, 4);
	assert_int_equal(count_inheritable(3), base);
	for (int i = 0; i < 3; i++)
		close(f[i]);
}

static void test_exec_failure_restores_cloexec(void **state)
{
	struct luo_session *s;
	int m = memfd("exec-fail"), base;
	char *const argv[] = {"x", NULL};

	(void)state;
	assert_int_equal(liveupdate_create_session("s", &s), 0);
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), 0);
	close(m);
	base = count_inheritable(3);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_reboot("/nonexistent/luo", argv, NULL),
			 -ENOENT);
	assert_int_equal(count_inheritable(3), base);
	/* Still preserved: the token is taken. */
	m = memfd("exec-fail-2");
	assert_int_equal(liveupdate_session_preserve_fd(s, m, 1), -EEXIST);
	close(m);
}

/* Open descriptors below 4096. */
static int count_open(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/*
 * The files go in flight at prepare, not in the blackout: freeze (and the
 * exec) open no descriptor and send nothing, however many files there are.
 */
static void test_files_in_flight_at_prepare(void **state)
{
	struct luo_session *s;
	int before, prepared;

	(void)state;
	assert_int_equal(liveupdate_create_session("flight", &s), 0);
	for (int i = 0; i < 8; i++) {
		int m = memfd("flight");

		assert_int_equal(liveupdate_session_preserve_fd(s, m, i), 0);
		close(m);
	}
	before = count_open();
	assert_int_equal(liveupdate_prepare(), 0);
	prepared = count_open();
	/* The carrier's receiving end (and the teardown helper's pipe). */
	assert_true(prepared > before);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(count_open(), prepared);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(count_open(), before);
	/* A second round works the same. */
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(count_open(), prepared);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(count_open(), prepared);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(count_open(), before);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_create_rules),
		T(test_preserve_rules),
		T(test_tokens_listed),
		T(test_descriptor_budget),
		T(test_two_opens_of_one_file_are_two_files),
		T(test_library_keeps_its_reference),
		T(test_prepare_refuses_clobbered_file),
		T(test_full_session),
		T(test_busy_during_update),
		T(test_incoming_calls_in_normal),
		T(test_handler_registration),
		T(test_user_handler_takes_precedence),
		T(test_handler_preserve_failure_leaves_nothing),
		T(test_flb_counts),
		T(test_flb_preserve_failure),
		T(test_flb_registration),
		T(test_flb_table_full),
		T(test_freeze_failure_unfreezes),
		T(test_exec_failure_restores_cloexec),
		T(test_files_in_flight_at_prepare),
	};

	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
