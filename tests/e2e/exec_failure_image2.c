// SPDX-License-Identifier: MIT
/* exec-failure, image 2: the data, subsystems, subtree and environment
 * the real update carried, then finish. */
#define _GNU_SOURCE

#include "exec_failure.h"

int updated_image(void)
{
	char got_events[512];
	struct liveupdate_timing t;
	struct data_block *d = NULL;
	const void *fdt = NULL;
	uint64_t v[NSUB];
	int err, node, len;
	const fdt64_t *prop;

	where = "updated";
	CHECK(getenv(LUO_HANDOVER_ENV) != NULL, "no %s in the new image",
	      LUO_HANDOVER_ENV);
	CHECK(getenv("E2E_EXEC_FAILURE_MARK") &&
		      !strcmp(getenv("E2E_EXEC_FAILURE_MARK"), "1"),
	      "the caller's envp did not reach the new image");
	err = luo_init(NULL);
	CHECK(err == 0, "luo_init in the new image: %d (%s)", err,
	      strerror(-err));
	if (err)
		return 1;
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "state %s",
	      liveupdate_state_name(liveupdate_get_state()));
	CHECK(liveupdate_get_num() == 1, "liveupdate_get_num() = %llu",
	      (unsigned long long)liveupdate_get_num());
	CHECK(getenv(LUO_HANDOVER_ENV) == NULL, "%s still set after luo_init",
	      LUO_HANDOVER_ENV);
	CHECK(liveupdate_get_timing(&t) == 0 && t.prepare_ns &&
		      t.prepare_ns <= t.freeze_ns && t.freeze_ns <= t.exec_ns &&
		      t.exec_ns <= t.adopted_ns,
	      "timing %llu %llu %llu %llu", (unsigned long long)t.prepare_ns,
	      (unsigned long long)t.freeze_ns, (unsigned long long)t.exec_ns,
	      (unsigned long long)t.adopted_ns);
	check_arena_cloexec();

	/* Data of subsystems not registered yet is readable already. */
	for (int i = 0; i < NSUB; i++) {
		struct liveupdate_subsystem probe = {.name = sub_names[i]};

		err = liveupdate_get_subsystem_data(&probe, &v[i]);
		CHECK(err == 0, "liveupdate_get_subsystem_data(%s): %d",
		      sub_names[i], err);
	}
	{
		struct liveupdate_subsystem probe = {.name = "e2e-unknown"};
		uint64_t x;

		err = liveupdate_get_subsystem_data(&probe, &x);
		CHECK(err == -ENOENT, "data for an unknown subsystem: %d", err);
	}
	CHECK(v[1] == CONST_FREEZE,
	      "%s carried %#llx, want the freeze value %#llx", sub_names[1],
	      (unsigned long long)v[1], (unsigned long long)CONST_FREEZE);

	nevents = 0;
	register_subsystems();
	events_string(got_events, sizeof(got_events));
	CHECK(!strcmp(got_events, "B0 B1 B2"), "boot callbacks \"%s\"",
	      got_events);
	for (int i = 0; i < NSUB; i++)
		CHECK(ctl[i].boot_calls == 1 && ctl[i].boot_data == v[i],
		      "%s: boot called %d times with %#llx, want once with %#llx",
		      sub_names[i], ctl[i].boot_calls,
		      (unsigned long long)ctl[i].boot_data,
		      (unsigned long long)v[i]);

	err = kho_restore(v[0], DATA_SIZE, (void **)&d);
	CHECK(err == 0, "kho_restore(data at %#llx): %d",
	      (unsigned long long)v[0], err);
	if (!err) {
		CHECK(d->magic == DATA_MAGIC, "data magic %#llx",
		      (unsigned long long)d->magic);
		CHECK(d->self_off == v[0],
		      "data says it was at %#llx, not %#llx",
		      (unsigned long long)d->self_off,
		      (unsigned long long)v[0]);
		CHECK(d->failed_attempts == 22, "failed_attempts %llu",
		      (unsigned long long)d->failed_attempts);
		CHECK(bad_words(d) == 0, "%zu data words damaged",
		      bad_words(d));
	}
	err = kho_retrieve_subtree("e2e-user", &fdt);
	CHECK(err == 0, "kho_retrieve_subtree: %d", err);
	if (!err) {
		CHECK(kho_ptr_to_offset(fdt) == v[2],
		      "subtree at %#llx, the subsystem said %#llx",
		      (unsigned long long)kho_ptr_to_offset(fdt),
		      (unsigned long long)v[2]);
		CHECK(fdt_node_check_compatible(fdt, 0,
						"e2e-exec-failure-v1") == 0,
		      "subtree compatible");
		node = fdt_path_offset(fdt, "/data");
		prop = node < 0 ? NULL : fdt_getprop(fdt, node, "offset", &len);
		CHECK(prop && len == 8 && fdt64_ld(prop) == v[0],
		      "subtree /data/offset");
	}

	nevents = 0;
	err = liveupdate_finish();
	CHECK(err == 0, "liveupdate_finish: %d", err);
	events_string(got_events, sizeof(got_events));
	CHECK(!strcmp(got_events, "X0 X1 X2"), "finish callbacks \"%s\"",
	      got_events);
	for (int i = 0; i < NSUB; i++)
		CHECK(ctl[i].finish_calls == 1 && ctl[i].finish_data == v[i],
		      "%s: finish called %d times with %#llx", sub_names[i],
		      ctl[i].finish_calls,
		      (unsigned long long)ctl[i].finish_data);
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
	      "state %s after finish",
	      liveupdate_state_name(liveupdate_get_state()));
	err = liveupdate_get_subsystem_data(&subs[0], &v[0]);
	CHECK(err == -ENODATA, "subsystem data after finish: %d", err);
	if (d)
		CHECK(bad_words(d) == 0, "restored data damaged by finish");
	err = luo_exit();
	CHECK(err == 0, "luo_exit: %d", err);

	return stage_done(
		"22 failed updates left everything intact; the real update #1 carried data, subsystems and subtree");
}
