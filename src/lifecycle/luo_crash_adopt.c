// SPDX-License-Identifier: MIT
/*
 * Adoption of the arena of a process that crashed (include/luo/fdstore.h,
 * docs/systemd.md): the service manager's store handed the arena memfd
 * back, with no sealed handover in it.  It is checked as any incoming
 * handover is (the header, every block header, the crash record), and
 * then adopted whole as an incoming kind of its own: the subsystems get
 * the values the service kept current, the blocks wait for kho_restore(),
 * no session comes back.  Anything that does not check out leaves a fresh
 * arena and one log line, never half an adoption.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "kho_crash_record.h"
#include "kho_internal.h"
#include "log.h"
#include "luo_crash_adopt.h"
#include "luo_fdstore.h"
#include "luo_internal.h"

int luo_crash_adopt(uint64_t reserve)
{
	const struct kho_crash_entry *e;
	char why[256] = "";
	uint64_t num;
	size_t n;
	int fd = luo_fdstore_take_arena(), err;

	if (fd < 0)
		return -ENOENT;
	err = luo_kho_arena_adopt_crashed(fd, reserve, why, sizeof(why));
	if (err) {
		/* Not a memfd: not mapped, but it is ours (from the store). */
		if (err == -EBADF)
			close(fd);
		goto refuse;
	}
	err = luo_kho_crash_record_adopt(why, sizeof(why));
	if (!err) {
		n = luo_kho_crash_entries(&e, &num);
		err = luo_subsystems_in_from_crash(e, n);
		if (err)
			snprintf(why, sizeof(why), "out of memory");
	}
	if (err) {
		luo_kho_forget_incoming();
		luo_kho_arena_destroy();
		goto refuse;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	luo_global.crash_recovered = true;
	luo_global.liveupdate_num = num;
	luo_global.timing = (struct liveupdate_timing){0};
	pr_warn("adopted the arena of a process that ended without a handover (a crash): %zu subsystem value%s, %zu allocations to restore; the data was not frozen and must be checked; no session came back (their files other than the sockets in the service manager's store are gone; liveupdate_fdstore_retrieve() hands those out)",
		n, n == 1 ? "" : "s", luo_kho.nblocks);
	return 0;
refuse:
	pr_warn("the arena of a process that ended without a handover (a crash) does not check out: %s; starting with a fresh arena, its data is lost",
		why);
	luo_fdstore_arena_refused();
	return err;
}

int liveupdate_crash_recovered(void)
{
	return __atomic_load_n(&luo_global.crash_recovered, __ATOMIC_RELAXED);
}
