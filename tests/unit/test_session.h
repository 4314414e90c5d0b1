/* SPDX-License-Identifier: MIT */
/*
 * test_session: what its groups share (test_session_fixture.c): a user
 * handler for memfds named "unit-*" with counters and an FLB, the setup
 * and small helpers.
 */
#ifndef LUO_TESTS_TEST_SESSION_H
#define LUO_TESTS_TEST_SESSION_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* What the user handler and its FLB were called for, and what to fail. */
struct unit_counts {
	int can, preserve, unpreserve, freeze, unfreeze;
	int fail_preserve, fail_freeze_at; /* 0: never; n: the nth freeze */
	int flb_preserve, flb_unpreserve;
	int fail_flb_preserve;
	uint64_t flb_data;
};
extern struct unit_counts cnt;

/* The handler's callbacks: it takes memfds named "unit-*". */
bool unit_can(struct liveupdate_file_handler *h, int fd);
int unit_preserve(struct liveupdate_file_op_args *a);
extern const struct liveupdate_file_ops unit_ops;
extern const struct liveupdate_flb_ops flb_ops;
extern struct liveupdate_file_handler unit_handler;
extern struct liveupdate_flb unit_flb;

/* luo_init() with @max_files files per session (0: the default). */
int setup_opts(uint32_t max_files);
int setup(void **state);
int teardown(void **state);
int memfd(const char *name);
/* Descriptors above @from without FD_CLOEXEC. */
int count_inheritable(int from);

/* test_session_handlers.c */
void test_handler_registration(void **state);
void test_user_handler_takes_precedence(void **state);
void test_handler_preserve_failure_leaves_nothing(void **state);
void test_flb_counts(void **state);
void test_flb_preserve_failure(void **state);
void test_flb_registration(void **state);
void test_flb_table_full(void **state);
void test_freeze_failure_unfreezes(void **state);
void test_exec_failure_restores_cloexec(void **state);
void test_files_in_flight_at_prepare(void **state);

#endif
