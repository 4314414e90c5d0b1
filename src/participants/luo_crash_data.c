// SPDX-License-Identifier: MIT
/*
 * The subsystems' values kept for a crash (liveupdate_crash_data_set(),
 * include/luo/fdstore.h): written into the arena's crash record
 * (src/kho/kho_crash_record.c), read back by the adoption of a crashed
 * arena (src/lifecycle/luo_crash_adopt.c).
 */
#include <errno.h>

#include "kho_crash_record.h"
#include "log.h"
#include "luo_internal.h"

int liveupdate_crash_data_set(struct liveupdate_subsystem *h, uint64_t data)
{
	int err;

	if (!h) {
		pr_err("liveupdate_crash_data_set: no subsystem given");
		return -EINVAL;
	}
	err = luo_kho_crash_record_set(h->name, data, liveupdate_get_num());
	if (err)
		pr_err("liveupdate_crash_data_set: '%.63s': %s%s", h->name,
		       err == -EINVAL	? "not a valid subsystem name"
		       : err == -ENOSPC ? "the crash record is full"
		       : err == -EBUSY	? "the handover is frozen"
		       : err == -ENODEV ? "call luo_init() first"
					: "out of handover memory",
		       err == -ENOSPC ? "; remove a value (0) first" : "");
	return err;
}
