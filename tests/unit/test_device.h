/* SPDX-License-Identifier: MIT */
/*
 * test_device: what its groups share (test_device_fixture.c): a journal
 * of every callback, the devices, their buses and drivers, and a
 * subsystem that writes into the same journal.
 */
#ifndef LUO_TESTS_TEST_DEVICE_H
#define LUO_TESTS_TEST_DEVICE_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "recorder.h"

struct ev {
	char op;  /* P prepare, R reboot, C cancel, F finish, S shutdown */
	char who; /* D driver, B bus, S subsystem */
	int id;	  /* device index, -1 for the subsystem */
	uint64_t data;
};

#define MAX_EV 65536
extern struct ev evs[MAX_EV];
extern int nev;

/* Make a callback fail: op, who and device. */
struct fail_spec {
	char op, who;
	int id;
	int err;
};
extern struct fail_spec fail;

extern int try_api_in_cb; /* callbacks call the device API */
extern int deadlk_seen;

struct tdev {
	struct liveupdate_device dev;
	int id, parent, depth;
	char name[32];
};

#define MAX_DEV 1400
extern struct tdev T[MAX_DEV];
extern int NT;

/* A bus with a shutdown (it takes precedence), one without. */
extern const struct liveupdate_bus sbus, pbus, nolu_bus;
extern const struct liveupdate_driver drv, nolu_drv;
/* A subsystem that writes into the same journal. */
extern struct liveupdate_subsystem sub;
/* The callbacks of every bus and of every driver. */
extern const struct liveupdate_device_cbs bus_cbs, drv_cbs;

struct tdev *of(struct liveupdate_device *dev);
void note(char op, char who, struct liveupdate_device *dev, uint64_t data);
int failing(char op, char who, struct liveupdate_device *dev);
uint64_t data_of(char who, int id);
/* Add a device under @parent (-1: a root); returns its index. */
int add(int parent, const char *name, const struct liveupdate_bus *b,
	const struct liveupdate_driver *d);
int reg(int i);
/* Depth 6, four children each: 1,365 devices, registered breadth first. */
void build_big_tree(void);
/* The expected preserve list: requested plus ancestors, deepest first. */
int expected_list(const bool *requested, int *out);
/* Check that events [*at, ...) are @op on @n devices of @list as given. */
void expect_pairs(int *at, char op, const int *list, int n, bool reverse,
		  const char *whos);
int count_ev(char op);
void reset_journal(void);
int setup(void **state);
int teardown(void **state);
void assert_no_flags(void);

/* test_device_tree.c */
void test_big_tree_prepare_cancel(void **state);
void test_big_tree_cancel_after_freeze(void **state);
void test_big_tree_prepare_failures(void **state);
void test_big_tree_shutdown_when_exec_fails(void **state);
void test_reboot_failure(void **state);
void test_cross_participant_order(void **state);
void test_threads(void **state);

#endif
