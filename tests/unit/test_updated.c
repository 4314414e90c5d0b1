// SPDX-License-Identifier: MIT
/*
 * The UPDATED state, which only a real exec produces: the first image sets
 * up subsystems, memory and a subtree and re-executes this binary; the
 * second image runs the tests against what it inherited.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "recorder.h"

enum { ALPHA = 1, BETA, GAMMA, DELTA, EPSILON };

static struct rec_subsys alpha, beta, gamma_, delta, epsilon;
static uint64_t kept_off, dropped_off;

static void init_subsystems(void)
{
	rec_subsys_init(&alpha, ALPHA, "alpha");
	rec_subsys_init(&beta, BETA, "beta");
	rec_subsys_init(&gamma_, GAMMA, "gamma");
	rec_subsys_init(&delta, DELTA, "delta");
	rec_subsys_init(&epsilon, EPSILON, "epsilon");
	alpha.prepare_data = 0x1111;
	alpha.freeze_data = 0x2222; /* freeze's value is what travels */
	beta.prepare_data = 0xbeef;
	gamma_.prepare_data = 0x3333;
}

/* First image: build the handover and exec ourselves. */
static int stage_one(const char *self)
{
	char *const argv[] = {(char *)self, "--updated", NULL};
	uint8_t *kept, *dropped;
	void *fdt;
	int err;

	if (luo_init(NULL))
		return 1;
	init_subsystems();
	if (liveupdate_register_subsystem(&alpha.h) ||
	    liveupdate_register_subsystem(&beta.h) ||
	    liveupdate_register_subsystem(&gamma_.h))
		return 1;
	if (kho_alloc_preserve(1 << 20, (void **)&kept) ||
	    kho_alloc_preserve(1 << 20, (void **)&dropped))
		return 1;
	for (int i = 0; i < 1 << 20; i++) {
		kept[i] = (uint8_t)(i * 7);
		dropped[i] = 0xdd;
	}
	if (kho_alloc_preserve(1024, &fdt) ||
	    fdt_create_empty_tree(fdt, 1024) ||
	    fdt_setprop_string(fdt, 0, "compatible", "test-app-v1") ||
	    fdt_setprop_u64(fdt, 0, "kept", kho_ptr_to_offset(kept)) ||
	    fdt_setprop_u64(fdt, 0, "dropped", kho_ptr_to_offset(dropped)) ||
	    kho_add_subtree("app", fdt))
		return 1;
	if (liveupdate_prepare())
		return 1;
	err = liveupdate_reboot(self, argv, NULL);
	fprintf(stderr, "test_updated: reboot failed: %d\n", err);
	return 1;
}

static void test_state_after_exec(void **state)
{
	struct liveupdate_timing t;

	(void)state;
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	assert_int_equal(liveupdate_get_num(), 1);
	assert_null(getenv(LUO_HANDOVER_ENV));
	assert_int_equal(liveupdate_get_timing(&t), 0);
	assert_true(t.prepare_ns > 0);
	assert_true(t.prepare_ns <= t.freeze_ns);
	assert_true(t.freeze_ns <= t.exec_ns);
	assert_true(t.exec_ns <= t.adopted_ns);
}

static void test_transitions_refused_in_updated(void **state)
{
	(void)state;
	rec.log_errors = 0;
	assert_int_equal(liveupdate_prepare(), -EINVAL);
	assert_int_equal(liveupdate_freeze(), -EINVAL);
	assert_int_equal(liveupdate_cancel(), -EINVAL);
	assert_int_equal(rec.log_errors, 3);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
}

static void test_subsystem_data(void **state)
{
	uint64_t data;

	(void)state;
	assert_int_equal(liveupdate_get_subsystem_data(&alpha.h, &data), 0);
	assert_int_equal(data, 0x2222);
	assert_int_equal(liveupdate_get_subsystem_data(&beta.h, &data), 0);
	assert_int_equal(data, 0xbeef);
	assert_int_equal(liveupdate_get_subsystem_data(&delta.h, &data),
			 -ENOENT);
}

static void test_register_calls_boot(void **state)
{
	(void)state;
	rec.n = 0;
	assert_int_equal(liveupdate_register_subsystem(&alpha.h), 0);
	assert_int_equal(rec_count(REC_BOOT, ALPHA), 1);
	assert_int_equal(rec.ev[0].data, 0x2222);
	/* No data from the old image: no boot. */
	assert_int_equal(liveupdate_register_subsystem(&epsilon.h), 0);
	assert_int_equal(rec_count(REC_BOOT, EPSILON), 0);
	assert_int_equal(liveupdate_register_subsystem(&gamma_.h), 0);
	assert_int_equal(rec_count(REC_BOOT, GAMMA), 1);
	assert_int_equal(liveupdate_register_subsystem(&alpha.h), -EEXIST);
	/* Registered and unregistered in UPDATED: allowed. */
	assert_int_equal(liveupdate_register_subsystem(&delta.h), 0);
	assert_int_equal(liveupdate_unregister_subsystem(&delta.h), 0);
}

static void test_subtree_and_restore(void **state)
{
	struct kho_arena_stats st;
	const void *fdt;
	const fdt64_t *prop;
	uint8_t *kept;
	int len;

	(void)state;
	assert_int_equal(kho_retrieve_subtree("app", &fdt), 0);
	assert_int_equal(fdt_node_check_compatible(fdt, 0, "test-app-v1"), 0);
	assert_int_equal(kho_retrieve_subtree("nope", &fdt), -ENOENT);
	assert_int_equal(kho_retrieve_subtree("app", &fdt), 0);
	prop = fdt_getprop(fdt, 0, "kept", &len);
	assert_non_null(prop);
	kept_off = fdt64_ld(prop);
	prop = fdt_getprop(fdt, 0, "dropped", &len);
	assert_non_null(prop);
	dropped_off = fdt64_ld(prop);

	assert_int_equal(kho_get_stats(&st), 0);
	assert_true(st.incoming_unclaimed >= 3);
	assert_int_equal(kho_restore(kept_off, (1 << 20) + 1, (void **)&kept),
			 -EINVAL);
	assert_int_equal(kho_restore(kept_off, 1 << 20, (void **)&kept), 0);
	for (int i = 0; i < 1 << 20; i++)
		if (kept[i] != (uint8_t)(i * 7))
			fail_msg("kept byte %d changed", i);
	assert_int_equal(kho_get_stats(&st), 0);
	assert_true(st.incoming_unclaimed >= 2);
}

static void test_finish(void **state)
{
	struct kho_arena_stats before, after;
	const void *fdt;
	uint64_t data;
	uint8_t *kept, *dropped;
	void *fresh;

	(void)state;
	assert_int_equal(kho_get_stats(&before), 0);
	rec.n = 0;
	rec.log_warnings = 0;
	assert_int_equal(liveupdate_finish(), 0);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	/* finish for those with incoming data, in registration order */
	assert_string_equal(rec_order(REC_FINISH), "13");
	assert_int_equal(rec.ev[0].data, 0x2222);
	assert_int_equal(rec.ev[1].data, 0x3333);
	/* "beta" left data but nobody registered it in this image. */
	assert_int_equal(rec.log_warnings, 1);
	assert_int_equal(liveupdate_get_subsystem_data(&alpha.h, &data),
			 -ENODATA);
	assert_int_equal(kho_retrieve_subtree("app", &fdt), -ENODATA);
	/* Unclaimed memory is gone, the claimed block survives. */
	assert_int_equal(kho_get_stats(&after), 0);
	assert_int_equal(after.incoming_unclaimed, 0);
	assert_true(after.allocated + (1 << 20) <= before.allocated);
	assert_int_equal(kho_restore(dropped_off, 1, &fresh), -ENOENT);
	/* Released memory reads as zero, like all free memory. */
	dropped = kho_offset_to_ptr(dropped_off);
	assert_non_null(dropped);
	for (int i = 0; i < 1 << 20; i++)
		if (dropped[i])
			fail_msg("released byte %d reads %#x", i, dropped[i]);
	/* The merged free space is whole again: 1 MiB fits where it was. */
	assert_int_equal(kho_alloc_preserve(1 << 20, &fresh), 0);
	assert_int_equal(kho_unpreserve_free(fresh), 0);
	assert_int_equal(kho_restore(kept_off, 1 << 20, (void **)&kept), 0);
	assert_int_equal(kept[12345], (uint8_t)(12345 * 7));
	assert_int_equal(liveupdate_finish(), -EINVAL);
	assert_int_equal(liveupdate_get_num(), 1);
}

static void test_next_cycle_after_finish(void **state)
{
	void *p;

	(void)state;
	rec.n = 0;
	assert_int_equal(kho_alloc_preserve(4096, &p), 0);
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_string_equal(rec_order(REC_PREPARE), "153");
	assert_string_equal(rec_order(REC_CANCEL), "351");
	assert_int_equal(liveupdate_get_num(), 1);
}

int main(int argc, char **argv __attribute__((unused)))
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_after_exec),
		cmocka_unit_test(test_transitions_refused_in_updated),
		cmocka_unit_test(test_subsystem_data),
		cmocka_unit_test(test_register_calls_boot),
		cmocka_unit_test(test_subtree_and_restore),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_next_cycle_after_finish),
	};
	char self[4096];
	ssize_t n;

	if (argc < 2) {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return 1;
		self[n] = 0;
		return stage_one(self);
	}
	rec_reset();
	luo_set_log_handler(rec_log_handler, NULL);
	init_subsystems();
	if (luo_init(NULL)) {
		fprintf(stderr, "test_updated: the handover was refused\n");
		return 1;
	}
	return cmocka_run_group_tests_name("updated", tests, NULL, NULL);
}
