// SPDX-License-Identifier: MIT
/*
 * Sessions, preserved files, file handlers and FLBs in the old image:
 * every error code, every FLB count transition, the failure paths.
 */
#define _GNU_SOURCE

#include "test_session.h"

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
