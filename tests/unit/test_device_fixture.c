// SPDX-License-Identifier: MIT
/* test_device: the fixture every group shares: a journal of every callback,
 * the devices (a tree of up to 1,400), their buses, drivers and a subsystem
 * that write into the journal. */
#define _GNU_SOURCE
#include "test_device.h"

/* ---- a journal of every callback ---- */

struct ev evs[MAX_EV];
int nev;

struct fail_spec fail;

int try_api_in_cb; /* callbacks call the device API */
int deadlk_seen;

/* ---- devices ---- */

struct tdev T[MAX_DEV];
int NT;

struct tdev *of(struct liveupdate_device *dev)
{
	return (struct tdev *)((char *)dev - offsetof(struct tdev, dev));
}

void note(char op, char who, struct liveupdate_device *dev, uint64_t data)
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

int failing(char op, char who, struct liveupdate_device *dev)
{
	return fail.err && fail.op == op && fail.who == who &&
			       fail.id == of(dev)->id
		       ? fail.err
		       : 0;
}

uint64_t data_of(char who, int id)
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
	const struct liveupdate_device_cbs W##_cbs = {                         \
		.prepare = W##_prepare,                                        \
		.reboot = W##_reboot,                                          \
		.finish = W##_finish,                                          \
		.cancel = W##_cancel,                                          \
	}

CBS(drv);
CBS(bus);

/* A bus with a shutdown (it takes precedence), one without. */
const struct liveupdate_bus sbus = {"sbus", &bus_cbs, bus_shutdown, NULL};
const struct liveupdate_bus pbus = {"pbus", &bus_cbs, NULL, NULL};
const struct liveupdate_bus nolu_bus = {"nolu-bus", NULL, NULL, NULL};
const struct liveupdate_driver drv = {"drv", &drv_cbs, drv_shutdown, NULL};
const struct liveupdate_driver nolu_drv = {"nolu-drv", NULL, NULL, NULL};

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
struct liveupdate_subsystem sub = {.ops = &sub_ops, .name = "sub"};

/* Add a device under @parent (-1: a root); returns its index. */
int add(int parent, const char *name, const struct liveupdate_bus *b,
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

int reg(int i)
{
	return liveupdate_device_register(&T[i].dev);
}

/*
 * Depth 6, four children each: 1 + 4 + 16 + 64 + 256 + 1024 = 1365
 * devices, registered breadth first.  Even ids on sbus (bus shutdown), odd
 * ids on pbus (the driver's shutdown applies).
 */
void build_big_tree(void)
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
int expected_list(const bool *requested, int *out)
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
void expect_pairs(int *at, char op, const int *list, int n, bool reverse,
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

int count_ev(char op)
{
	int c = 0;

	for (int i = 0; i < nev; i++)
		c += evs[i].op == op;
	return c;
}

void reset_journal(void)
{
	nev = 0;
	memset(&fail, 0, sizeof(fail));
	try_api_in_cb = 0;
	deadlk_seen = 0;
	rec.log_errors = rec.log_warnings = 0;
	rec.last_error[0] = 0;
}

int setup(void **state)
{
	(void)state;
	NT = 0;
	reset_journal();
	if (rec_luo_start(NULL))
		return -1;
	rec.log_errors = 0;
	return 0;
}

int teardown(void **state)
{
	(void)state;
	return rec_luo_stop();
}

void assert_no_flags(void)
{
	for (int i = 0; i < NT; i++) {
		if (liveupdate_device_preserved(&T[i].dev))
			fail_msg("device %d still preserved", i);
		if (liveupdate_device_reclaimed(&T[i].dev))
			fail_msg("device %d reclaimed", i);
	}
}
