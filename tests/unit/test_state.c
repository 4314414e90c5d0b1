// SPDX-License-Identifier: MIT
/*
 * State machine and subsystem rules: every allowed and refused
 * transition, every error code, callback order and cancel order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "recorder.h"

static struct rec_subsys s1, s2, s3;

static int setup(void **state)
{
	(void)state;
	if (rec_luo_start(NULL))
		return -1;
	rec_subsys_init(&s1, 1, "one");
	rec_subsys_init(&s2, 2, "two");
	rec_subsys_init(&s3, 3, "three");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rec_luo_stop();
}

static void register_all(void)
{
	assert_int_equal(liveupdate_register_subsystem(&s1.h), 0);
	assert_int_equal(liveupdate_register_subsystem(&s2.h), 0);
	assert_int_equal(liveupdate_register_subsystem(&s3.h), 0);
}

static void test_undefined_before_init(void **state)
{
	struct rec_subsys s;
	void *p;

	(void)state;
	assert_int_equal(luo_exit(), 0);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_UNDEFINED);
	rec_subsys_init(&s, 9, "early");
	assert_int_equal(liveupdate_register_subsystem(&s.h), -ENODEV);
	rec.log_errors = 0;
	assert_int_equal(kho_alloc_preserve(64, &p), -ENODEV);
	/* Said, with what to do. */
	assert_int_equal(rec.log_errors, 1);
	assert_non_null(strstr(rec.last_error, "kho_alloc_preserve"));
	assert_non_null(strstr(rec.last_error, "luo_init()"));
	assert_int_equal(liveupdate_prepare(), -EINVAL);
	assert_int_equal(luo_init(NULL), 0);
}

static void test_init_twice(void **state)
{
	(void)state;
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	assert_int_equal(luo_init(NULL), -EALREADY);
	assert_int_equal(liveupdate_get_num(), 0);
}

static void test_full_cycle_without_exec(void **state)
{
	(void)state;
	register_all();
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_PREPARED);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_FROZEN);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	assert_string_equal(rec_order(REC_PREPARE), "123");
	assert_string_equal(rec_order(REC_FREEZE), "123");
	assert_string_equal(rec_order(REC_CANCEL), "321");
	assert_int_equal(rec.log_errors, 0);
	/* A second cycle works the same. */
	rec_reset();
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_string_equal(rec_order(REC_PREPARE), "123");
	assert_string_equal(rec_order(REC_FREEZE), "");
	assert_string_equal(rec_order(REC_CANCEL), "321");
}

static void test_refused_in_normal(void **state)
{
	(void)state;
	assert_int_equal(liveupdate_freeze(), -EINVAL);
	assert_int_equal(rec.log_errors, 1); /* one line per refusal */
	assert_int_equal(liveupdate_cancel(), -EINVAL);
	assert_int_equal(liveupdate_finish(), -EINVAL);
	assert_int_equal(liveupdate_reboot("/bin/true",
					   (char *const[]){"true", NULL}, NULL),
			 -EINVAL);
	assert_int_equal(rec.log_errors, 4);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
}

static void test_refused_in_prepared(void **state)
{
	(void)state;
	register_all();
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_prepare(), -EINVAL);
	assert_int_equal(liveupdate_finish(), -EINVAL);
	assert_int_equal(luo_exit(), -EBUSY);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_PREPARED);
	assert_int_equal(rec_count(REC_CANCEL, 1), 0);
}

static void test_refused_in_frozen(void **state)
{
	void *p;

	(void)state;
	register_all();
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_prepare(), -EINVAL);
	assert_int_equal(liveupdate_freeze(), -EINVAL);
	assert_int_equal(liveupdate_finish(), -EINVAL);
	assert_int_equal(luo_exit(), -EBUSY);
	assert_int_equal(kho_alloc_preserve(64, &p), -EBUSY);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_FROZEN);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(kho_alloc_preserve(64, &p), 0);
}

static void test_cancel_from_prepared(void **state)
{
	(void)state;
	register_all();
	s1.prepare_data = 11;
	s2.prepare_data = 22;
	s3.prepare_data = 33;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_string_equal(rec_order(REC_CANCEL), "321");
	/* cancel gets what prepare stored */
	assert_int_equal(rec.ev[3].data, 33);
	assert_int_equal(rec.ev[4].data, 22);
	assert_int_equal(rec.ev[5].data, 11);
	assert_int_equal(liveupdate_cancel(), -EINVAL);
}

/* How many of this process's descriptors are the way back's memfd. */
static int rollback_memfds(void)
{
	char path[64], link[128];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		n += strstr(link, "memfd:luo-rollback-argv") != NULL;
	}
	return n;
}

/* The exec-mode way back (the arguments in a sealed memfd) is made at
 * prepare, outside the blackout, and a cancel closes it. */
static void test_rollback_memfd_at_prepare(void **state)
{
	(void)state;
	assert_int_equal(rollback_memfds(), 0);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(rollback_memfds(), 1);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(rollback_memfds(), 0);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(rollback_memfds(), 1);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(rollback_memfds(), 0);
}

static void test_freeze_sees_prepare_data(void **state)
{
	(void)state;
	register_all();
	s2.prepare_data = 0x20;
	s2.freeze_data = 0x21;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	/* freeze of "two" was handed prepare's value... */
	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].op == REC_FREEZE && rec.ev[i].id == 2)
			assert_int_equal(rec.ev[i].data, 0x20);
	assert_int_equal(liveupdate_cancel(), 0);
	/* ...and cancel is handed freeze's. */
	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].op == REC_CANCEL && rec.ev[i].id == 2)
			assert_int_equal(rec.ev[i].data, 0x21);
}

static void test_prepare_failure_cancels_earlier(void **state)
{
	(void)state;
	register_all();
	s2.prepare_ret = -EIO;
	assert_int_equal(liveupdate_prepare(), -EIO);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	assert_string_equal(rec_order(REC_PREPARE), "12");
	assert_string_equal(rec_order(REC_CANCEL), "1");
	assert_int_equal(rec.log_errors, 1);
	/* A retry once the participant agrees goes through. */
	rec_reset();
	s2.prepare_ret = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_string_equal(rec_order(REC_CANCEL), "321");
}

static void test_first_prepare_failure_cancels_nobody(void **state)
{
	(void)state;
	register_all();
	s1.prepare_ret = -ENOMEM;
	assert_int_equal(liveupdate_prepare(), -ENOMEM);
	assert_string_equal(rec_order(REC_CANCEL), "");
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
}

static void test_freeze_failure_cancels_all_once(void **state)
{
	(void)state;
	register_all();
	s2.freeze_ret = -EAGAIN;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), -EAGAIN);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	assert_string_equal(rec_order(REC_FREEZE), "12");
	assert_string_equal(rec_order(REC_CANCEL), "321");
	for (int id = 1; id <= 3; id++)
		assert_int_equal(rec_count(REC_CANCEL, id), 1);
	assert_int_equal(liveupdate_cancel(), -EINVAL);
}

static void test_reboot_from_prepared_freezes_first(void **state)
{
	(void)state;
	register_all();
	s3.freeze_ret = -EPERM;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_reboot("/bin/true",
					   (char *const[]){"true", NULL}, NULL),
			 -EPERM);
	assert_string_equal(rec_order(REC_FREEZE), "123");
	assert_string_equal(rec_order(REC_CANCEL), "321");
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	assert_null(getenv(LUO_HANDOVER_ENV));
}

/* A temporary file with @mode and @content; the caller unlinks it. */
static void make_file(char *path, mode_t mode, const char *content)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
			 (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_reboot_exec_failures(void **state)
{
	char noexec[] = "/tmp/luo-noexec-XXXXXX";
	char garbage[] = "/tmp/luo-garbage-XXXXXX";
	struct {
		const char *path;
		int err;
	} cases[] = {
		{"/nonexistent/luo-no-such-binary", -ENOENT},
		{noexec, -EACCES},
		{garbage, -ENOEXEC},
		{"/", -EACCES},
	};
	char *const argv[] = {"x", NULL};
	void *data;

	(void)state;
	make_file(noexec, 0644, "#!/bin/sh\nexit 0\n");
	make_file(garbage, 0755, "\x7f\x45\x4c\x46 this is not a program");
	assert_int_equal(kho_alloc_preserve(4096, &data), 0);
	memset(data, 0x5a, 4096);
	register_all();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rec_reset();
		assert_int_equal(liveupdate_prepare(), 0);
		assert_int_equal(liveupdate_freeze(), 0);
		assert_int_equal(liveupdate_reboot(cases[i].path, argv, NULL),
				 cases[i].err);
		assert_int_equal(liveupdate_get_state(),
				 LIVEUPDATE_STATE_NORMAL);
		assert_string_equal(rec_order(REC_CANCEL), "321");
		assert_int_equal(rec.log_errors, 1);
		assert_null(getenv(LUO_HANDOVER_ENV));
		for (int k = 0; k < 4096; k++)
			assert_int_equal(((unsigned char *)data)[k], 0x5a);
	}
	unlink(noexec);
	unlink(garbage);
}

static void test_reboot_bad_arguments(void **state)
{
	(void)state;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(
		liveupdate_reboot(NULL, (char *const[]){"x", NULL}, NULL),
		-EINVAL);
	assert_int_equal(liveupdate_reboot("/bin/true", NULL, NULL), -EINVAL);
	assert_int_equal(
		liveupdate_reboot("/bin/true", (char *const[]){NULL}, NULL),
		-EINVAL);
	/* Bad arguments leave the update where it was. */
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_PREPARED);
}

static void test_register_rules(void **state)
{
	struct rec_subsys dup, bad;

	(void)state;
	register_all();
	assert_int_equal(liveupdate_register_subsystem(&s1.h), -EEXIST);
	rec_subsys_init(&dup, 4, "two");
	assert_int_equal(liveupdate_register_subsystem(&dup.h), -EEXIST);
	rec_subsys_init(&bad, 5, "");
	assert_int_equal(liveupdate_register_subsystem(&bad.h), -EINVAL);
	rec_subsys_init(&bad, 5, "has space");
	assert_int_equal(liveupdate_register_subsystem(&bad.h), -EINVAL);
	bad.h.name = NULL;
	assert_int_equal(liveupdate_register_subsystem(&bad.h), -EINVAL);
	assert_int_equal(liveupdate_register_subsystem(NULL), -EINVAL);
	rec_subsys_init(&bad, 5, "no-ops");
	bad.h.ops = NULL;
	assert_int_equal(liveupdate_register_subsystem(&bad.h), -EINVAL);
	/* 63 characters are fine, 64 are not. */
	rec_subsys_init(&bad, 5, "");
	memset(bad.name, 'a', 31);
	assert_int_equal(liveupdate_register_subsystem(&bad.h), 0);
	{
		char longname[65];

		memset(longname, 'b', 64);
		longname[64] = 0;
		dup.h.name = longname;
		assert_int_equal(liveupdate_register_subsystem(&dup.h),
				 -EINVAL);
		longname[63] = 0;
		assert_int_equal(liveupdate_register_subsystem(&dup.h), 0);
		assert_int_equal(liveupdate_unregister_subsystem(&dup.h), 0);
	}
}

static void test_register_busy_while_updating(void **state)
{
	struct rec_subsys late;

	(void)state;
	register_all();
	rec_subsys_init(&late, 4, "late");
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_register_subsystem(&late.h), -EBUSY);
	assert_int_equal(liveupdate_unregister_subsystem(&s1.h), -EBUSY);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_register_subsystem(&late.h), -EBUSY);
	assert_int_equal(liveupdate_unregister_subsystem(&s1.h), -EBUSY);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(liveupdate_register_subsystem(&late.h), 0);
}

static void test_unregister(void **state)
{
	struct rec_subsys stranger;

	(void)state;
	register_all();
	rec_subsys_init(&stranger, 7, "stranger");
	assert_int_equal(liveupdate_unregister_subsystem(&stranger.h), -ENOENT);
	assert_int_equal(liveupdate_unregister_subsystem(NULL), -EINVAL);
	/* Nothing changed: all three still take part. */
	assert_int_equal(liveupdate_prepare(), 0);
	assert_string_equal(rec_order(REC_PREPARE), "123");
	assert_int_equal(liveupdate_cancel(), 0);
	rec_reset();
	assert_int_equal(liveupdate_unregister_subsystem(&s2.h), 0);
	assert_int_equal(liveupdate_unregister_subsystem(&s2.h), -ENOENT);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_string_equal(rec_order(REC_PREPARE), "13");
	assert_string_equal(rec_order(REC_CANCEL), "31");
	/* Head and tail removal keep the list sound. */
	assert_int_equal(liveupdate_unregister_subsystem(&s1.h), 0);
	assert_int_equal(liveupdate_unregister_subsystem(&s3.h), 0);
	assert_int_equal(liveupdate_register_subsystem(&s2.h), 0);
	rec_reset();
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_string_equal(rec_order(REC_PREPARE), "2");
}

static void test_subsystem_data_needs_update(void **state)
{
	uint64_t data = 7;

	(void)state;
	register_all();
	assert_int_equal(liveupdate_get_subsystem_data(&s1.h, &data), -ENODATA);
	assert_int_equal(data, 7);
	assert_int_equal(liveupdate_get_subsystem_data(NULL, &data), -EINVAL);
}

static void test_callbacks_cannot_lock_state(void **state)
{
	(void)state;
	register_all();
	rec.try_lock_in_callback = 1;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	/* three prepares and three cancels, each refused */
	assert_int_equal(rec.deadlk_seen, 6);
	assert_int_equal(rec.allowed_refused, 0);
	assert_int_equal(rec.refusal_missing, 0);
	rec.try_lock_in_callback = 0;
	assert_int_equal(liveupdate_state_read_enter(), 0);
	liveupdate_state_read_exit();
}

static int prepare_done;

static void *prepare_thread(void *arg)
{
	(void)arg;
	assert_int_equal(liveupdate_prepare(), 0);
	__atomic_store_n(&prepare_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_read_lock_holds_state(void **state)
{
	pthread_t t;

	(void)state;
	prepare_done = 0;
	assert_int_equal(liveupdate_state_read_enter(), 0);
	assert_int_equal(pthread_create(&t, NULL, prepare_thread, NULL), 0);
	usleep(100 * 1000);
	/* The transition waits for the reader. */
	assert_int_equal(__atomic_load_n(&prepare_done, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	liveupdate_state_read_exit();
	pthread_join(t, NULL);
	assert_int_equal(prepare_done, 1);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_PREPARED);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(liveupdate_state_name(LIVEUPDATE_STATE_NORMAL),
			    "normal");
	assert_string_equal(liveupdate_state_name(LIVEUPDATE_STATE_PREPARED),
			    "prepared");
	assert_string_equal(liveupdate_state_name(LIVEUPDATE_STATE_FROZEN),
			    "frozen");
	assert_string_equal(liveupdate_state_name(LIVEUPDATE_STATE_UPDATED),
			    "updated");
	assert_string_equal(liveupdate_state_name(LIVEUPDATE_STATE_UNDEFINED),
			    "undefined");
	assert_string_equal(liveupdate_state_name((enum liveupdate_state)42),
			    "undefined");
}

static void test_no_timing_without_update(void **state)
{
	struct liveupdate_timing t;

	(void)state;
	assert_int_equal(liveupdate_get_timing(&t), -ENODATA);
	assert_int_equal(liveupdate_get_timing(NULL), -EINVAL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* In a fresh process: LUO_LOG_LEVEL is read once, at luo_init(). */
static void run_log_level_probe(const char *value, char *out, size_t len)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	size_t got = 0;
	int p[2], status;
	pid_t pid;

	assert_true(n > 0);
	self[n] = 0;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		dup2(p[1], 2);
		setenv("LUO_LOG_LEVEL", value, 1);
		execl(self, self, "--log-level-probe", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (got + 1 < len && (n = read(p[0], out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_unknown_log_level_warns(void **state)
{
	char out[2048];

	(void)state;
	run_log_level_probe("verbose", out, sizeof(out));
	assert_non_null(strstr(out, "LUO_LOG_LEVEL='verbose' is not a level"));
	assert_non_null(
		strstr(out, "error (0), warning (1), info (2) or debug (3)"));
	run_log_level_probe("warning", out, sizeof(out));
	assert_null(strstr(out, "not a level"));
	run_log_level_probe("debug", out, sizeof(out));
	assert_null(strstr(out, "not a level"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_undefined_before_init),
		T(test_init_twice),
		T(test_full_cycle_without_exec),
		T(test_refused_in_normal),
		T(test_refused_in_prepared),
		T(test_refused_in_frozen),
		T(test_cancel_from_prepared),
		T(test_rollback_memfd_at_prepare),
		T(test_freeze_sees_prepare_data),
		T(test_prepare_failure_cancels_earlier),
		T(test_first_prepare_failure_cancels_nobody),
		T(test_freeze_failure_cancels_all_once),
		T(test_reboot_from_prepared_freezes_first),
		T(test_reboot_exec_failures),
		T(test_reboot_bad_arguments),
		T(test_register_rules),
		T(test_register_busy_while_updating),
		T(test_unregister),
		T(test_subsystem_data_needs_update),
		T(test_callbacks_cannot_lock_state),
		T(test_read_lock_holds_state),
		T(test_state_names),
		T(test_no_timing_without_update),
		T(test_unknown_log_level_warns),
	};

	if (argc > 1 && !strcmp(argv[1], "--log-level-probe"))
		return luo_init(NULL) ? 1 : 0;

	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
