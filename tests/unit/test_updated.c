// SPDX-License-Identifier: MIT
/*
 * The UPDATED state, which only a real exec produces: the first image sets
 * up subsystems, memory and a subtree and re-executes this binary; the
 * second image runs the tests against what it inherited.  Over the stage
 * driver (tests/common/stage.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libfdt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "recorder.h"
#include "stage.h"

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

/* Image 1: build the handover and update into image 2. */
static int image_one(void)
{
	uint8_t *kept, *dropped;
	void *fdt;

	REQUIRE(!luo_init(NULL), "luo_init");
	init_subsystems();
	REQUIRE(!liveupdate_register_subsystem(&alpha.h) &&
			!liveupdate_register_subsystem(&beta.h) &&
			!liveupdate_register_subsystem(&gamma_.h),
		"registering the subsystems");
	REQUIRE(!kho_alloc_preserve(1 << 20, (void **)&kept) &&
			!kho_alloc_preserve(1 << 20, (void **)&dropped),
		"kho_alloc_preserve");
	for (int i = 0; i < 1 << 20; i++) {
		kept[i] = (uint8_t)(i * 7);
		dropped[i] = 0xdd;
	}
	REQUIRE(!kho_alloc_preserve(1024, &fdt) &&
			!fdt_create_empty_tree(fdt, 1024) &&
			!fdt_setprop_string(fdt, 0, "compatible",
					    "test-app-v1") &&
			!fdt_setprop_u64(fdt, 0, "kept",
					 kho_ptr_to_offset(kept)) &&
			!fdt_setprop_u64(fdt, 0, "dropped",
					 kho_ptr_to_offset(dropped)) &&
			!kho_add_subtree("app", fdt),
		"building the subtree");
	stage_reboot(NULL);
	return 1;
}

static void test_state_after_exec(void)
{
	struct liveupdate_timing t;

	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	CHECK_EQ(liveupdate_get_num(), 1);
	CHECK(getenv(LUO_HANDOVER_ENV) == NULL, "is set");
	CHECK_EQ(liveupdate_get_timing(&t), 0);
	CHECK(t.prepare_ns > 0, "is false");
	CHECK(t.prepare_ns <= t.freeze_ns, "is false");
	CHECK(t.freeze_ns <= t.exec_ns, "is false");
	CHECK(t.exec_ns <= t.adopted_ns, "is false");
}

static void test_transitions_refused_in_updated(void)
{
	rec.log_errors = 0;
	CHECK_EQ(liveupdate_prepare(), -EINVAL);
	CHECK_EQ(liveupdate_freeze(), -EINVAL);
	CHECK_EQ(liveupdate_cancel(), -EINVAL);
	CHECK_EQ(rec.log_errors, 3);
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
}

static void test_subsystem_data(void)
{
	uint64_t data;

	CHECK_EQ(liveupdate_get_subsystem_data(&alpha.h, &data), 0);
	CHECK_EQ(data, 0x2222);
	CHECK_EQ(liveupdate_get_subsystem_data(&beta.h, &data), 0);
	CHECK_EQ(data, 0xbeef);
	CHECK_EQ(liveupdate_get_subsystem_data(&delta.h, &data), -ENOENT);
}

static void test_register_calls_boot(void)
{
	rec.n = 0;
	CHECK_EQ(liveupdate_register_subsystem(&alpha.h), 0);
	CHECK_EQ(rec_count(REC_BOOT, ALPHA), 1);
	CHECK_EQ(rec.ev[0].data, 0x2222);
	/* No data from the old image: no boot. */
	CHECK_EQ(liveupdate_register_subsystem(&epsilon.h), 0);
	CHECK_EQ(rec_count(REC_BOOT, EPSILON), 0);
	CHECK_EQ(liveupdate_register_subsystem(&gamma_.h), 0);
	CHECK_EQ(rec_count(REC_BOOT, GAMMA), 1);
	CHECK_EQ(liveupdate_register_subsystem(&alpha.h), -EEXIST);
	/* Registered and unregistered in UPDATED: allowed. */
	CHECK_EQ(liveupdate_register_subsystem(&delta.h), 0);
	CHECK_EQ(liveupdate_unregister_subsystem(&delta.h), 0);
}

static void test_subtree_and_restore(void)
{
	struct kho_arena_stats st;
	const void *fdt;
	const fdt64_t *prop;
	uint8_t *kept;
	int len;

	CHECK_EQ(kho_retrieve_subtree("app", &fdt), 0);
	CHECK_EQ(fdt_node_check_compatible(fdt, 0, "test-app-v1"), 0);
	CHECK_EQ(kho_retrieve_subtree("nope", &fdt), -ENOENT);
	CHECK_EQ(kho_retrieve_subtree("app", &fdt), 0);
	prop = fdt_getprop(fdt, 0, "kept", &len);
	REQUIRE(prop != NULL, "is NULL");
	kept_off = fdt64_ld(prop);
	prop = fdt_getprop(fdt, 0, "dropped", &len);
	REQUIRE(prop != NULL, "is NULL");
	dropped_off = fdt64_ld(prop);

	CHECK_EQ(kho_get_stats(&st), 0);
	CHECK(st.incoming_unclaimed >= 3, "is false");
	CHECK_EQ(kho_restore(kept_off, (1 << 20) + 1, (void **)&kept), -EINVAL);
	CHECK_EQ(kho_restore(kept_off, 1 << 20, (void **)&kept), 0);
	for (int i = 0; i < 1 << 20; i++)
		if (kept[i] != (uint8_t)(i * 7)) {
			CHECK(0, "kept byte %d changed", i);
			break; /* the first is enough */
		}
	CHECK_EQ(kho_get_stats(&st), 0);
	CHECK(st.incoming_unclaimed >= 2, "is false");
}

static void test_finish(void)
{
	struct kho_arena_stats before, after;
	const void *fdt;
	uint64_t data;
	uint8_t *kept, *dropped;
	void *fresh;

	CHECK_EQ(kho_get_stats(&before), 0);
	rec.n = 0;
	rec.log_warnings = 0;
	CHECK_EQ(liveupdate_finish(), 0);
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	/* finish for those with incoming data, in registration order */
	CHECK_STREQ(rec_order(REC_FINISH), "13");
	CHECK_EQ(rec.ev[0].data, 0x2222);
	CHECK_EQ(rec.ev[1].data, 0x3333);
	/* "beta" left data but nobody registered it in this image. */
	CHECK_EQ(rec.log_warnings, 1);
	CHECK_EQ(liveupdate_get_subsystem_data(&alpha.h, &data), -ENODATA);
	CHECK_EQ(kho_retrieve_subtree("app", &fdt), -ENODATA);
	/* Unclaimed memory is gone, the claimed block survives. */
	CHECK_EQ(kho_get_stats(&after), 0);
	CHECK_EQ(after.incoming_unclaimed, 0);
	CHECK(after.allocated + (1 << 20) <= before.allocated, "is false");
	CHECK_EQ(kho_restore(dropped_off, 1, &fresh), -ENOENT);
	/* Released memory reads as zero, like all free memory. */
	dropped = kho_offset_to_ptr(dropped_off);
	REQUIRE(dropped != NULL, "is NULL");
	for (int i = 0; i < 1 << 20; i++)
		if (dropped[i]) {
			CHECK(0, "released byte %d reads %#x", i, dropped[i]);
			break;
		}
	/* The merged free space is whole again: 1 MiB fits where it was. */
	CHECK_EQ(kho_alloc_preserve(1 << 20, &fresh), 0);
	CHECK_EQ(kho_unpreserve_free(fresh), 0);
	CHECK_EQ(kho_restore(kept_off, 1 << 20, (void **)&kept), 0);
	CHECK_EQ(kept[12345], (uint8_t)(12345 * 7));
	CHECK_EQ(liveupdate_finish(), -EINVAL);
	CHECK_EQ(liveupdate_get_num(), 1);
}

static void test_next_cycle_after_finish(void)
{
	void *p;

	rec.n = 0;
	CHECK_EQ(kho_alloc_preserve(4096, &p), 0);
	CHECK_EQ(liveupdate_prepare(), 0);
	CHECK_EQ(liveupdate_freeze(), 0);
	CHECK_EQ(liveupdate_cancel(), 0);
	CHECK_STREQ(rec_order(REC_PREPARE), "153");
	CHECK_STREQ(rec_order(REC_CANCEL), "351");
	CHECK_EQ(liveupdate_get_num(), 1);
}

/* Image 2 runs the checks against what it inherited. */
static int run(const struct stage *s)
{
	if (s->n == 1)
		return image_one();
	rec_reset();
	luo_set_log_handler(rec_log_handler, NULL);
	init_subsystems();
	REQUIRE(!luo_init(NULL), "the handover was refused");
	test_state_after_exec();
	test_transitions_refused_in_updated();
	test_subsystem_data();
	test_register_calls_boot();
	test_subtree_and_restore();
	test_finish();
	test_next_cycle_after_finish();
	return stage_done("the UPDATED state: subsystems, memory, subtree, "
			  "finish and the next cycle");
}

static const struct stage_test test = {"updated", 50, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
