// SPDX-License-Identifier: MIT
/*
 * Devices (seed 002) in one image: registration and request rules with
 * every error code, the preserve list order (children before parents) on a
 * tree of depth 6 with 1,365 devices, prepare failures of a driver and of a
 * bus at several positions, cancel after prepare and after freeze, reboot
 * failures, shutdown of the devices not preserved when the exec fails
 * after the shutdown, and the order across participants.  The incoming
 * side is in test_device_updated.c (a real exec).
 */
#define _GNU_SOURCE

#include "test_device.h"

/* ---- registration and requests: every error code ---- */

static void test_before_init(void **state)
{
	struct liveupdate_device_info info;

	(void)state;
	assert_int_equal(luo_exit(), 0);
	add(-1, "early", &sbus, &drv);
	assert_int_equal(reg(0), -ENODEV);
	assert_int_equal(liveupdate_device_unregister(&T[0].dev), -ENODEV);
	assert_int_equal(liveupdate_device_request(&T[0].dev, true), -ENODEV);
	assert_int_equal(liveupdate_device_request_path("early", true),
			 -ENODEV);
	assert_int_equal(liveupdate_device_reclaim(&T[0].dev, NULL, NULL),
			 -ENODEV);
	assert_int_equal(liveupdate_device_lookup("early", &info), -ENODEV);
	assert_int_equal(rec.log_errors, 6);
	assert_false(liveupdate_device_requested(&T[0].dev));
	assert_null(liveupdate_device_path(&T[0].dev));
	assert_int_equal(luo_init(NULL), 0);
}

static void test_register_errors(void **state)
{
	struct liveupdate_bus badbus = {"bad/bus", &bus_cbs, NULL, NULL};
	char long_name[70];
	int a, b, c, x;

	(void)state;
	assert_int_equal(liveupdate_device_register(NULL), -EINVAL);
	a = add(-1, "a", &sbus, &drv);
	assert_int_equal(reg(a), 0);
	assert_string_equal(liveupdate_device_path(&T[a].dev), "a");
	/* Names: empty, a slash, too long, not allowed characters. */
	x = add(-1, "", &sbus, &drv);
	assert_int_equal(reg(x), -EINVAL);
	snprintf(T[x].name, sizeof(T[x].name), "x/y");
	assert_int_equal(reg(x), -EINVAL);
	snprintf(T[x].name, sizeof(T[x].name), "sp ace");
	assert_int_equal(reg(x), -EINVAL);
	memset(long_name, 'n', 64);
	long_name[64] = 0;
	T[x].dev.name = long_name;
	assert_int_equal(reg(x), -EINVAL);
	long_name[63] = 0; /* 63 is fine */
	assert_int_equal(reg(x), 0);
	assert_int_equal(liveupdate_device_unregister(&T[x].dev), 0);
	T[x].dev.name = T[x].name;
	snprintf(T[x].name, sizeof(T[x].name), "pci:0000:00:01.0@x_y+z");
	T[x].dev.bus = &badbus;
	assert_int_equal(reg(x), -EINVAL);
	T[x].dev.bus = NULL;
	T[x].dev.driver = NULL; /* neither bus nor driver: allowed */
	assert_int_equal(reg(x), 0);
	/* Registered twice; lu not NULL. */
	assert_int_equal(reg(x), -EINVAL);
	/* The same path twice. */
	b = add(a, "b", &sbus, &drv);
	assert_int_equal(reg(b), 0);
	assert_string_equal(liveupdate_device_path(&T[b].dev), "a/b");
	c = add(a, "b", &pbus, &drv);
	assert_int_equal(reg(c), -EEXIST);
	assert_null(T[c].dev.lu);
	/* Same name under another parent is another path. */
	T[c].dev.parent = &T[b].dev;
	assert_int_equal(reg(c), 0);
	assert_string_equal(liveupdate_device_path(&T[c].dev), "a/b/b");
	/* A parent that is not registered. */
	x = add(-1, "orphan-parent", &sbus, &drv);
	c = add(x, "child", &sbus, &drv);
	assert_int_equal(reg(c), -EINVAL);
	/* Path too long: 63 + 1 + 63 + 1 + 63 + 1 + 63 + 1 + 63 > 255. */
	{
		static char names[5][64];
		int p = -1, r = 0;

		for (int i = 0; i < 5 && !r; i++) {
			memset(names[i], 'a' + i, 63);
			p = add(p, "", &sbus, &drv);
			T[p].dev.name = names[i];
			r = reg(p);
		}
		assert_int_equal(r, -ENAMETOOLONG);
		assert_int_equal(T[p].depth, 5);
	}
	assert_int_equal(rec.log_errors, 10);
}

static void test_unregister_errors(void **state)
{
	int a, b, c;

	(void)state;
	a = add(-1, "a", &sbus, &drv);
	b = add(a, "b", &sbus, &drv);
	c = add(a, "c", &sbus, &drv);
	assert_int_equal(liveupdate_device_unregister(NULL), -EINVAL);
	assert_int_equal(liveupdate_device_unregister(&T[a].dev), -EINVAL);
	assert_int_equal(reg(a), 0);
	assert_int_equal(reg(b), 0);
	assert_int_equal(reg(c), 0);
	assert_int_equal(liveupdate_device_unregister(&T[a].dev), -EBUSY);
	assert_int_equal(liveupdate_device_request(&T[b].dev, true), 0);
	assert_int_equal(liveupdate_prepare(), 0);
	/* b and its parent a are being preserved; c is not. */
	assert_int_equal(liveupdate_device_unregister(&T[b].dev), -EBUSY);
	assert_int_equal(liveupdate_device_unregister(&T[c].dev), 0);
	/* Registering during an update is allowed; it is not preserved. */
	assert_int_equal(reg(c), 0);
	assert_false(liveupdate_device_preserved(&T[c].dev));
	assert_true(liveupdate_device_preserved(&T[b].dev));
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_device_unregister(&T[a].dev), -EBUSY);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(liveupdate_device_unregister(&T[b].dev), 0);
	assert_int_equal(liveupdate_device_unregister(&T[c].dev), 0);
	assert_int_equal(liveupdate_device_unregister(&T[a].dev), 0);
	assert_null(T[a].dev.lu);
	assert_int_equal(liveupdate_device_unregister(&T[a].dev), -EINVAL);
	assert_int_equal(rec.log_errors, 6);
}

static void test_request_errors(void **state)
{
	struct liveupdate_device_info info;
	int a, b, c, d, e, f;

	(void)state;
	a = add(-1, "a", &nolu_bus, &drv); /* bus without callbacks */
	b = add(a, "b", &sbus, &drv);
	c = add(-1, "c", &sbus, &drv);
	d = add(c, "d", &sbus, &nolu_drv); /* driver without callbacks */
	e = add(-1, "e", NULL, NULL);	   /* nothing to call */
	f = add(e, "f", &pbus, &drv);
	assert_int_equal(liveupdate_device_request(NULL, true), -EINVAL);
	assert_int_equal(liveupdate_device_request(&T[a].dev, true), -EINVAL);
	for (int i = a; i <= f; i++)
		assert_int_equal(reg(i), 0);
	rec.log_errors = 0;
	/* The device itself, then an ancestor: the log names the one. */
	assert_int_equal(liveupdate_device_request(&T[d].dev, true), -EINVAL);
	assert_non_null(strstr(rec.last_error, "'c/d'"));
	assert_non_null(strstr(rec.last_error, "driver 'nolu-drv'"));
	assert_int_equal(liveupdate_device_request(&T[b].dev, true), -EINVAL);
	assert_non_null(strstr(rec.last_error, "ancestor 'a'"));
	assert_non_null(strstr(rec.last_error, "bus 'nolu-bus'"));
	assert_int_equal(liveupdate_device_request(&T[a].dev, true), -EINVAL);
	assert_false(liveupdate_device_requested(&T[b].dev));
	assert_int_equal(rec.log_errors, 3);
	/* Unrequesting needs no callbacks. */
	assert_int_equal(liveupdate_device_request(&T[d].dev, false), 0);
	assert_int_equal(liveupdate_device_request(&T[f].dev, true), 0);
	assert_int_equal(liveupdate_device_request(&T[f].dev, true), 0);
	assert_true(liveupdate_device_requested(&T[f].dev));
	assert_false(liveupdate_device_requested(&T[e].dev));
	assert_int_equal(liveupdate_device_request_path("e/f", false), 0);
	assert_false(liveupdate_device_requested(&T[f].dev));
	assert_int_equal(liveupdate_device_request_path("e/f", true), 0);
	assert_int_equal(liveupdate_device_request_path("e/g", true), -ENOENT);
	assert_int_equal(liveupdate_device_request_path(NULL, true), -EINVAL);
	assert_int_equal(liveupdate_device_request_path("c/d", true), -EINVAL);
	/* Only in NORMAL. */
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_device_request(&T[c].dev, true), -EBUSY);
	assert_int_equal(liveupdate_device_request_path("e/f", false), -EBUSY);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_device_request(&T[f].dev, false), -EBUSY);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_true(liveupdate_device_requested(&T[f].dev));
	/* Reclaim and lookup in the first image. */
	assert_int_equal(liveupdate_device_reclaim(&T[f].dev, NULL, NULL),
			 -ENODATA);
	assert_int_equal(liveupdate_device_reclaim(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(liveupdate_device_lookup("e/f", &info), 0);
	assert_string_equal(info.path, "e/f");
	assert_string_equal(info.bus, "pbus");
	assert_string_equal(info.driver, "drv");
	assert_int_equal(info.depth, 2);
	assert_true(info.registered && info.requested);
	assert_false(info.preserved || info.reclaimed);
	assert_int_equal(liveupdate_device_lookup("e", &info), 0);
	assert_string_equal(info.bus, "");
	assert_string_equal(info.driver, "");
	assert_int_equal(liveupdate_device_lookup("nope", &info), -ENOENT);
	assert_int_equal(liveupdate_device_lookup(NULL, &info), -EINVAL);
	assert_int_equal(liveupdate_device_foreach(NULL, NULL), -EINVAL);
	assert_int_equal(rec.log_errors, 14);
}

static int list_cb(const struct liveupdate_device_info *info, void *arg)
{
	char *buf = arg;
	struct tdev x = {0};

	x.dev.name = "x";
	/* The device API is off limits here. */
	if (liveupdate_device_register(&x.dev) != -EDEADLK ||
	    liveupdate_device_request_path(info->path, true) != -EDEADLK)
		return -1;
	snprintf(buf + strlen(buf), 512 - strlen(buf), "%s:%d%d%d%d;",
		 info->path, info->registered, info->requested, info->preserved,
		 info->depth);
	return strcmp(info->path, "a/b/c") ? 0 : 42;
}

static void test_foreach(void **state)
{
	char buf[512] = "";
	int a, b, c;

	(void)state;
	a = add(-1, "a", &sbus, &drv);
	b = add(a, "b", &sbus, &drv);
	c = add(b, "c", &sbus, &drv);
	add(a, "z", &sbus, &drv);
	for (int i = 0; i < NT; i++)
		assert_int_equal(reg(i), 0);
	assert_int_equal(liveupdate_device_request(&T[b].dev, true), 0);
	assert_int_equal(liveupdate_prepare(), 0);
	/* Stops at "a/b/c": its return value comes back. */
	assert_int_equal(liveupdate_device_foreach(list_cb, buf), 42);
	assert_string_equal(buf, "a:1011;a/b:1112;a/b/c:1003;");
	buf[0] = 0;
	assert_int_equal(liveupdate_device_unregister(&T[c].dev), 0);
	assert_int_equal(liveupdate_device_foreach(list_cb, buf), 0);
	assert_string_equal(buf, "a:1011;a/b:1112;a/z:1002;");
	assert_int_equal(liveupdate_cancel(), 0);
}

/* A callback that calls the device API gets -EDEADLK. */
static void test_deadlock_from_callbacks(void **state)
{
	int a;

	(void)state;
	a = add(-1, "a", &sbus, &drv);
	assert_int_equal(reg(a), 0);
	assert_int_equal(liveupdate_device_request(&T[a].dev, true), 0);
	try_api_in_cb = 1;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(nev, 4);
	assert_int_equal(deadlk_seen, 4);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T_(test_before_init),
		T_(test_register_errors),
		T_(test_unregister_errors),
		T_(test_request_errors),
		T_(test_foreach),
		T_(test_deadlock_from_callbacks),
		T_(test_big_tree_prepare_cancel),
		T_(test_big_tree_cancel_after_freeze),
		T_(test_big_tree_prepare_failures),
		T_(test_big_tree_shutdown_when_exec_fails),
		T_(test_reboot_failure),
		T_(test_cross_participant_order),
		T_(test_threads),
	};

	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
