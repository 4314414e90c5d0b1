// SPDX-License-Identifier: MIT
/* test_session: the user handler for "unit-*" memfds with its counters and
 * FLB, the fixture and the helpers its groups share. */
#define _GNU_SOURCE

#include "test_session.h"

/* A user handler for memfds named "unit-*", with counters and an FLB. */
struct unit_counts cnt;

bool unit_can(struct liveupdate_file_handler *h, int fd)
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

int unit_preserve(struct liveupdate_file_op_args *a)
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

const struct liveupdate_file_ops unit_ops = {
	.can_preserve = unit_can,
	.preserve = unit_preserve,
	.unpreserve = unit_unpreserve,
	.freeze = unit_freeze,
	.unfreeze = unit_unfreeze,
};

struct liveupdate_file_handler unit_handler;

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

const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.unpreserve = flb_unpreserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
};

struct liveupdate_flb unit_flb;

int setup_opts(uint32_t max_files)
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

int setup(void **state)
{
	(void)state;
	return setup_opts(0);
}

int teardown(void **state)
{
	(void)state;
	return rec_luo_stop();
}

int memfd(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* Descriptors above @from without FD_CLOEXEC. */
int count_inheritable(int from)
{
	int n = 0;

	for (int fd = from; fd < 4096; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl >= 0 && !(fl & FD_CLOEXEC))
			n++;
	}
	return n;
}
