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
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "recorder.h"

/* ---- a journal of every callback ---- */

struct ev {
	char op;  /* P prepare, R reboot, C cancel, F finish, S shutdown */
	char who; /* D driver, B bus, S subsystem */
	int id;	  /* device index, -1 for the subsystem */
	uint64_t data;
};

#define MAX_EV 65536
static struct ev evs[MAX_EV];
static int nev;

/* Make a callback fail: op, who and device. */
static struct {
	char op, who;
	int id;
	int err;
} fail;

static int try_api_in_cb; /* callbacks call the device API */
static int deadlk_seen;

/* ---- devices ---- */

struct tdev {
	struct liveupdate_device dev;
	int id, parent, depth;
	char name[32];
};

#define MAX_DEV 1400
static struct tdev T[MAX_DEV];
static int NT;

static struct tdev *of(struct liveupdate_device *dev)
{
	return (struct tdev *)((char *)dev - offsetof(struct tdev, dev));
}

static void note(char op, char who, struct liveupdate_device *dev,
		 uint64_t data)
{
	if (nev < MAX_EV)
		evs[nev++] = (struct ev){op, who, dev ? of(dev)->id : -1, data};
	if (try_api_in_cb) {
		struct tdev x = {0};

		x.dev.name = "x";
		if (liveupdate_device_register(&x.dev) == -EDEADLK)
			deadlk_seen++;
	}
}

static int failing(char op, char who, struct liveupdate_device *dev)
{
	return fail.err && fail.op == op && fail.who == who &&
			       fail.id == of(dev)->id
		       ? fail.err
		       : 0;
}

static uint64_t data_of(char who, int id)
{
	return (who == 'D' ? 0xd0000000ULL : 0xb0000000ULL) + (uint64_t)id;
}

#define CBS(W)                                                                 \
	static int W##_prepare(struct liveupdate_device *dev, uint64_t *data)  \
	{                                                                      \
		note('P', #W[0] == 'd' ? 'D' : 'B', dev, *data);               \
		if (failing('P', #W[0] == 'd' ? 'D' : 'B', dev))               \
			return failing('P', #W[0] == 'd' ? 'D' : 'B', dev);    \
		*data = data_of(#W[0] == 'd' ? 'D' : 'B', of(dev)->id);        \
		return 0;                                                      \
	}                                                                      \
	static int W##_reboot(struct liveupdate_device *dev, uint64_t data)    \
	{                                                                      \
		note('R', #W[0] == 'd' ? 'D' : 'B', dev, data);                \
		return failing('R', #W[0] == 'd' ? 'D' : 'B', dev);            \
	}                                                                      \
	static void W##_finish(struct liveupdate_device *dev, uint64_t data)   \
	{                                                                      \
		note('F', #W[0] == 'd' ? 'D' : 'B', dev, data);                \
	}                                                                      \
	static void W##_cancel(struct liveupdate_device *dev, uint64_t data)   \
	{                                                                      \
		note('C', #W[0] == 'd' ? 'D' : 'B', dev, data);                \
	}                                                                      \
	static void W##_shutdown(struct liveupdate_device *dev)                \
	{                                                                      \
		note('S', #W[0] == 'd' ? 'D' : 'B', dev, 0);                   \
	}                                                                      \
	static const struct liveupdate_device_cbs W##_cbs = {                  \
		.prepare = W##_prepare,                                        \
		.reboot = W##_reboot,                                          \
		.finish = W##_finish,                                          \
		.cancel = W##_cancel,                                          \
	}

CBS(drv);
CBS(bus);

/* A bus with a shutdown (it takes precedence), one without. */
static const struct liveupdate_bus sbus = {"sbus", &bus_cbs, bus_shutdown,
					   NULL};
static const struct liveupdate_bus pbus = {"pbus", &bus_cbs, NULL, NULL};
static const struct liveupdate_bus nolu_bus = {"nolu-bus", NULL, NULL, NULL};
static const struct liveupdate_driver drv = {"drv", &drv_cbs, drv_shutdown,
					     NULL};
static const struct liveupdate_driver nolu_drv = {"nolu-drv", NULL, NULL, NULL};

/* A subsystem that writes into the same journal. */
static int sub_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	note('P', 'S', NULL, 0);
	*data = 7;
	return 0;
}

static int sub_freeze(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	(void)data;
	note('Z', 'S', NULL, 0);
	return fail.err && fail.op == 'Z' ? fail.err : 0;
}

static void sub_cancel(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)h;
	note('C', 'S', NULL, data);
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.prepare = sub_prepare,
	.freeze = sub_freeze,
	.cancel = sub_cancel,
};
static struct liveupdate_subsystem sub = {.ops = &sub_ops, .name = "sub"};

/* Add a device under @parent (-1: a root); returns its index. */
static int add(int parent, const char *name, const struct liveupdate_bus *b,
	       const struct liveupdate_driver *d)
{
	struct tdev *t = &T[NT];

	memset(t, 0, sizeof(*t));
	t->id = NT;
	t->parent = parent;
	t->depth = parent < 0 ? 1 : T[parent].depth + 1;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->dev.name = t->name;
	t->dev.parent = parent < 0 ? NULL : &T[parent].dev;
	t->dev.bus = b;
	t->dev.driver = d;
	return NT++;
}

static int reg(int i)
{
	return liveupdate_device_register(&T[i].dev);
}

/*
 * Depth 6, four children each: 1 + 4 + 16 + 64 + 256 + 1024 = 1365
 * devices, registered breadth first.  Even ids on sbus (bus shutdown), odd
 * ids on pbus (the driver's shutdown applies).
 */
static void build_big_tree(void)
{
	char name[32];
	int first = 0, last;

	NT = 0;
	add(-1, "root", &sbus, &drv);
	for (int depth = 2; depth <= 6; depth++) {
		last = NT;
		for (int p = first; p < last; p++)
			for (int c = 0; c < 4; c++) {
				snprintf(name, sizeof(name), "d%d-c%d", depth,
					 c);
				add(p, name, NT % 2 ? &pbus : &sbus, &drv);
			}
		first = last;
	}
	assert_int_equal(NT, 1365);
	for (int i = 0; i < NT; i++)
		assert_int_equal(reg(i), 0);
}

/* The expected preserve list: requested plus ancestors, deepest first. */
static int expected_list(const bool *requested, int *out)
{
	static bool in[MAX_DEV];
	int n = 0;

	memset(in, 0, sizeof(in));
	for (int i = 0; i < NT; i++)
		for (int d = requested[i] ? i : -1; d >= 0 && !in[d];
		     d = T[d].parent)
			in[d] = true;
	for (int depth = 6; depth >= 1; depth--)
		for (int i = 0; i < NT; i++)
			if (in[i] && T[i].depth == depth)
				out[n++] = i;
	return n;
}

/* Check that events [*at, ...) are @op on @n devices of @list as given. */
static void expect_pairs(int *at, char op, const int *list, int n, bool reverse,
			 const char *whos)
{
	for (int k = 0; k < n; k++) {
		int id = list[reverse ? n - 1 - k : k];

		for (const char *w = whos; *w; w++) {
			struct ev *e = &evs[*at];

			if (*at >= nev)
				fail_msg(
					"journal ends at %d, wanted %c%c of %d",
					nev, op, *w, id);
			if (e->op != op || e->who != *w || e->id != id)
				fail_msg(
					"event %d is %c%c of %d, wanted %c%c of %d",
					*at, e->op, e->who, e->id, op, *w, id);
			if ((op == 'C' || op == 'R') &&
			    e->data != data_of(*w, id))
				fail_msg("event %d (%c%c of %d) got data %#llx",
					 *at, op, *w, id,
					 (unsigned long long)e->data);
			(*at)++;
		}
	}
}

static int count_ev(char op)
{
	int c = 0;

	for (int i = 0; i < nev; i++)
		c += evs[i].op == op;
	return c;
}

static void reset_journal(void)
{
	nev = 0;
	memset(&fail, 0, sizeof(fail));
	try_api_in_cb = 0;
	deadlk_seen = 0;
	rec.log_errors = rec.log_warnings = 0;
	rec.last_error[0] = 0;
}

static int setup(void **state)
{
	(void)state;
	NT = 0;
	reset_journal();
	if (rec_luo_start(NULL))
		return -1;
	rec.log_errors = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rec_luo_stop();
}

static void assert_no_flags(void)
{
	for (int i = 0; i < NT; i++) {
		if (liveupdate_device_preserved(&T[i].dev))
			fail_msg("device %d still preserved", i);
		if (liveupdate_device_reclaimed(&T[i].dev))
			fail_msg("device %d reclaimed", i);
	}
}

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

/* ---- the big tree: order, cancel, shutdown ---- */

static bool req[MAX_DEV];
static int list[MAX_DEV];

/* Request a spread of devices at every depth. */
static int request_spread(void)
{
	memset(req, 0, sizeof(req));
	for (int i = 0; i < NT; i++)
		if ((T[i].depth == 6 && i % 7 == 0) ||
		    (T[i].depth == 4 && i % 5 == 0) || i == 3) {
			req[i] = true;
			assert_int_equal(
				liveupdate_device_request(&T[i].dev, true), 0);
		}
	return expected_list(req, list);
}

static void test_big_tree_prepare_cancel(void **state)
{
	int n, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	assert_true(n > 200 && n < NT);
	assert_int_equal(liveupdate_prepare(), 0);
	/* Driver then bus, deepest first, each once, nothing else. */
	expect_pairs(&at, 'P', list, n, false, "DB");
	assert_int_equal(at, nev);
	for (int i = 0; i < NT; i++) {
		bool in = false;

		for (int j = 0; j < n; j++)
			in |= list[j] == i;
		if (liveupdate_device_preserved(&T[i].dev) != in)
			fail_msg("device %d preserved %d, expected %d", i, !in,
				 in);
		if (liveupdate_device_requested(&T[i].dev) != req[i])
			fail_msg("device %d requested flag wrong", i);
	}
	nev = 0;
	assert_int_equal(liveupdate_cancel(), 0);
	/* Reverse order, bus then driver, with the data prepare stored. */
	at = 0;
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_no_flags();
	assert_int_equal(count_ev('S'), 0);
	/* Requests survive a cancel; the next cycle is the same. */
	nev = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	at = 0;
	expect_pairs(&at, 'P', list, n, false, "DB");
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(rec.log_errors, 0);
}

static void test_big_tree_cancel_after_freeze(void **state)
{
	int n, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(nev, 2 * n); /* freeze calls no device callback */
	nev = 0;
	assert_int_equal(liveupdate_cancel(), 0);
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_no_flags();
	/* Cancel happens once: a second one is refused and calls nothing. */
	nev = 0;
	assert_int_equal(liveupdate_cancel(), -EINVAL);
	assert_int_equal(nev, 0);
}

/* A failing driver (who 'D') or bus ('B') prepare at position @pos. */
static void prepare_failure_at(char who, int pos)
{
	int n, at = 0;

	nev = 0;
	n = expected_list(req, list);
	assert_true(pos < n);
	fail = (typeof(fail)){'P', who, list[pos], -EIO};
	assert_int_equal(liveupdate_prepare(), -EIO);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	expect_pairs(&at, 'P', list, pos, false, "DB");
	expect_pairs(&at, 'P', list + pos, 1, false, who == 'D' ? "D" : "DB");
	/* The failing device's driver is cancelled if its bus failed. */
	if (who == 'B') {
		assert_true(at < nev);
		assert_int_equal(evs[at].op, 'C');
		assert_int_equal(evs[at].who, 'D');
		assert_int_equal(evs[at].id, list[pos]);
		assert_int_equal(evs[at].data, data_of('D', list[pos]));
		at++;
	}
	expect_pairs(&at, 'C', list, pos, true, "BD");
	assert_int_equal(at, nev);
	assert_no_flags();
	assert_non_null(strstr(rec.last_error,
			       who == 'D' ? "driver 'drv' refused prepare"
					  : "refused prepare"));
	memset(&fail, 0, sizeof(fail));
}

static void test_big_tree_prepare_failures(void **state)
{
	int n;

	(void)state;
	build_big_tree();
	n = request_spread();
	int positions[] = {0, 1, n / 2, n - 2, n - 1};

	for (size_t k = 0; k < sizeof(positions) / sizeof(positions[0]); k++) {
		prepare_failure_at('D', positions[k]);
		prepare_failure_at('B', positions[k]);
	}
	assert_int_equal(rec.log_errors, 10);
	/* Nothing is left over: the next prepare works. */
	nev = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(nev, 2 * n);
	assert_int_equal(liveupdate_cancel(), 0);
}

/* ---- reboot and shutdown (exec made to fail) ---- */

static char garbage_path[4096];
static int garbage_fd = -1;

/*
 * A program the pre-check passes but execve() refuses, next to this
 * binary (where programs can run): a script still open for writing
 * (-ETXTBSY), the kind of failure no check before the shutdown can
 * foresee (the pre-check catches a bad format itself).
 */
static const char *make_garbage(void)
{
	ssize_t n = readlink("/proc/self/exe", garbage_path, 4000);
	static const char script[] = "#!/bin/sh\nexit 0\n";

	assert_true(n > 0);
	garbage_path[n] = 0;
	strcat(garbage_path, "-busy-XXXXXX");
	if (garbage_fd >= 0)
		close(garbage_fd);
	garbage_fd = mkstemp(garbage_path);
	assert_true(garbage_fd >= 0);
	assert_int_equal(write(garbage_fd, script, sizeof(script) - 1),
			 (ssize_t)sizeof(script) - 1);
	assert_int_equal(fchmod(garbage_fd, 0755), 0);
	return garbage_path; /* garbage_fd stays open for writing */
}

/* Every registered device not in the list, children before parents. */
static int expected_shutdown(const int *plist, int n, int *out)
{
	static bool in[MAX_DEV];
	int k = 0;

	memset(in, 0, sizeof(in));
	for (int j = 0; j < n; j++)
		in[plist[j]] = true;
	for (int i = NT - 1; i >= 0; i--)
		if (!in[i] && T[i].dev.lu)
			out[k++] = i;
	return k;
}

static void test_big_tree_shutdown_when_exec_fails(void **state)
{
	static int down[MAX_DEV];
	char *const argv[] = {"x", NULL};
	const char *garbage = make_garbage();
	int n, ndown, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	ndown = expected_shutdown(list, n, down);
	assert_int_equal(n + ndown, NT);

	/* A missing program fails before anything is shut down. */
	assert_int_equal(liveupdate_prepare(), 0);
	nev = 0;
	assert_int_equal(liveupdate_reboot("/nonexistent/luo-x", argv, NULL),
			 -ENOENT);
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_int_equal(count_ev('R') + count_ev('S'), 0);

	/* An exec only execve() refuses: reboot, shutdown, then the exec. */
	rec.log_warnings = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	nev = 0;
	assert_int_equal(liveupdate_reboot(garbage, argv, NULL), -ETXTBSY);
	at = 0;
	expect_pairs(&at, 'R', list, n, false, "DB");
	for (int k = 0; k < ndown; k++, at++) {
		int id = down[k];
		/* The bus's shutdown wins; pbus has none: the driver's. */
		char who = T[id].dev.bus == &sbus ? 'B' : 'D';

		if (evs[at].op != 'S' || evs[at].who != who || evs[at].id != id)
			fail_msg("event %d is %c%c of %d, wanted S%c of %d", at,
				 evs[at].op, evs[at].who, evs[at].id, who, id);
	}
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_int_equal(rec.log_warnings, 1); /* "they stay shut down" */
	assert_no_flags();
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	unlink(garbage);
}

/* A refused reboot cancels every prepared device once, in reverse. */
static void test_reboot_failure(void **state)
{
	char *const argv[] = {"x", NULL};
	const char *garbage = make_garbage();
	int n, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	for (int k = 0; k < 2; k++) {
		int pos = k ? n - 1 : n / 3;

		assert_int_equal(liveupdate_prepare(), 0);
		nev = 0;
		at = 0;
		fail = (typeof(fail)){'R', k ? 'B' : 'D', list[pos], -EPIPE};
		assert_int_equal(liveupdate_reboot(garbage, argv, NULL),
				 -EPIPE);
		expect_pairs(&at, 'R', list, pos, false, "DB");
		expect_pairs(&at, 'R', list + pos, 1, false, k ? "DB" : "D");
		expect_pairs(&at, 'C', list, n, true, "BD");
		assert_int_equal(at, nev);
		assert_int_equal(count_ev('S'), 0);
		assert_no_flags();
	}
	unlink(garbage);
}

/* ---- order across participants ---- */

static void test_cross_participant_order(void **state)
{
	int a, b, at;

	(void)state;
	a = add(-1, "a", &sbus, &drv);
	b = add(a, "b", &pbus, &drv);
	assert_int_equal(reg(a), 0);
	assert_int_equal(reg(b), 0);
	assert_int_equal(liveupdate_register_subsystem(&sub), 0);
	assert_int_equal(liveupdate_device_request(&T[b].dev, true), 0);
	list[0] = b;
	list[1] = a;

	/* Subsystems prepare first; devices are cancelled first. */
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(nev, 10);
	assert_true(evs[0].op == 'P' && evs[0].who == 'S');
	at = 1;
	expect_pairs(&at, 'P', list, 2, false, "DB");
	expect_pairs(&at, 'C', list, 2, true, "BD");
	assert_true(evs[9].op == 'C' && evs[9].who == 'S');

	/* A device refusing prepare cancels the subsystem after itself. */
	nev = 0;
	fail = (typeof(fail)){'P', 'B', a, -EAGAIN};
	assert_int_equal(liveupdate_prepare(), -EAGAIN);
	/* S-P, b D-P B-P, a D-P B-P, a D-C, b B-C D-C, S-C */
	assert_int_equal(nev, 9);
	assert_true(evs[0].op == 'P' && evs[0].who == 'S');
	assert_true(evs[5].op == 'C' && evs[5].who == 'D' && evs[5].id == a);
	assert_true(evs[6].op == 'C' && evs[6].who == 'B' && evs[6].id == b);
	assert_true(evs[7].op == 'C' && evs[7].who == 'D' && evs[7].id == b);
	assert_true(evs[8].op == 'C' && evs[8].who == 'S');

	/* The subsystem refusing freeze cancels the devices first. */
	nev = 0;
	fail = (typeof(fail)){'Z', 'S', -1, -EIO};
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), -EIO);
	assert_int_equal(nev, 11);
	assert_true(evs[5].op == 'Z');
	at = 6;
	expect_pairs(&at, 'C', list, 2, true, "BD");
	assert_true(evs[10].op == 'C' && evs[10].who == 'S');
	memset(&fail, 0, sizeof(fail));
	assert_int_equal(liveupdate_unregister_subsystem(&sub), 0);
}

/* ---- threads: the registry changes while updates come and go ---- */

#define CHURN 32

static struct {
	int bad, done, cycles, busy;
} churn_st;

static int count_cb(const struct liveupdate_device_info *info, void *arg)
{
	(void)info;
	(*(int *)arg)++;
	return 0;
}

static void *churn(void *arg)
{
	bool on[CHURN] = {false};
	int r;

	(void)arg;
	for (int round = 0;
	     round < 400 ||
	     __atomic_load_n(&churn_st.cycles, __ATOMIC_SEQ_CST) < 200;
	     round++) {
		for (int i = 1; i <= CHURN; i++) {
			if (!on[i - 1]) {
				r = reg(i);
				churn_st.bad += r != 0;
				on[i - 1] = !r;
			}
			r = liveupdate_device_request(&T[i].dev, round % 3);
			churn_st.bad += r && r != -EBUSY;
			churn_st.busy += r == -EBUSY;
		}
		for (int i = CHURN; i >= 1; i--) {
			if (i % 2 && round % 5)
				continue;
			r = liveupdate_device_unregister(&T[i].dev);
			churn_st.bad += r && r != -EBUSY;
			on[i - 1] = r != 0;
		}
	}
	__atomic_store_n(&churn_st.done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th;
	char name[16];
	int cycles = 0;

	(void)state;
	add(-1, "pool", &sbus, &drv);
	for (int i = 0; i < CHURN; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		add(0, name, i % 2 ? &pbus : &sbus, &drv);
	}
	assert_int_equal(reg(0), 0);
	memset(&churn_st, 0, sizeof(churn_st));
	assert_int_equal(pthread_create(&th, NULL, churn, NULL), 0);
	while (!__atomic_load_n(&churn_st.done, __ATOMIC_SEQ_CST) ||
	       cycles < 20) {
		int n = 0;

		assert_int_equal(liveupdate_prepare(), 0);
		assert_int_equal(liveupdate_device_foreach(count_cb, &n), 0);
		assert_true(n >= 1 && n <= CHURN + 1);
		if (cycles % 2)
			assert_int_equal(liveupdate_freeze(), 0);
		assert_int_equal(liveupdate_cancel(), 0);
		cycles++;
		__atomic_store_n(&churn_st.cycles, cycles, __ATOMIC_SEQ_CST);
	}
	print_message("%d updates cancelled while %d requests met -EBUSY\n",
		      cycles, churn_st.busy);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(churn_st.bad, 0);
	/* Every callback came in pairs: as many cancels as prepares. */
	assert_int_equal(count_ev('P'), count_ev('C'));
	assert_no_flags();
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
