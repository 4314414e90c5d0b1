// SPDX-License-Identifier: MIT
/* test_session: file handlers and FLBs (registration, precedence, counts,
 * failures), freeze and exec failures, files in flight at prepare. */
#define _GNU_SOURCE

#include "test_session.h"

void test_handler_registration(void **state)
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

void test_user_handler_takes_precedence(void **state)
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

void test_handler_preserve_failure_leaves_nothing(void **state)
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

void test_flb_counts(void **state)
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

void test_flb_preserve_failure(void **state)
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

void test_flb_registration(void **state)
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
void test_flb_table_full(void **state)
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

void test_freeze_failure_unfreezes(void **state)
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

void test_exec_failure_restores_cloexec(void **state)
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
void test_files_in_flight_at_prepare(void **state)
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
