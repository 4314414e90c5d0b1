// SPDX-License-Identifier: MIT
/*
 * The handover environment variable (LUO_HANDOVER_FD), parsed: read by
 * the adoption (lifecycle.c) and by the way back of exec mode
 * (luo_exec_rollback.c), so it lives below both.
 */
#include <errno.h>
#include <stdbool.h>

#include "luo_internal.h"

/* Strict decimal, no sign, no junk; -1 if not. */
static long parse_num(const char *s, const char **end, long max)
{
	long v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		if (v > max)
			return -1;
	}
	*end = s;
	return v;
}

/* A field that is a number or, where @may_be_unset, -1. */
static long parse_field(const char *s, const char **end, bool may_be_unset)
{
	if (may_be_unset && s[0] == '-' && s[1] == '1') {
		*end = s + 2;
		return -1;
	}
	return parse_num(s, end, 1 << 30) < 0 ? -2 : parse_num(s, end, 1 << 30);
}

/*
 * "ARENA" or "ARENA,RELEASE,PID" or "ARENA,RELEASE,PID,CARRIER" or
 * "ARENA,RELEASE,PID,CARRIER,BASE": the arena memfd; the pipe and pid of
 * the helper holding the old address space (-1 and 0 if none); the socket
 * carrying the preserved files (-1 if none); the first descriptor of the
 * inherited files, the carrier then being the sentinel above them
 * (LUO_INIT_EXEC_INHERIT).  Strict: anything else is not a handover.
 */
int luo_parse_handover_env(const char *value, struct luo_handover_env *e)
{
	const char *p = value;

	*e = (struct luo_handover_env){.release_fd = -1, .carrier_fd = -1};
	e->arena_fd = (int)parse_field(p, &p, false);
	if (e->arena_fd < 0)
		return -EBADF;
	if (*p == ',') {
		e->release_fd = (int)parse_field(p + 1, &p, true);
		if (e->release_fd < -1 || *p != ',')
			return -EBADF;
		e->helper_pid = (pid_t)parse_field(p + 1, &p, false);
		if (e->helper_pid < 0 ||
		    (e->release_fd >= 0) != (e->helper_pid > 0))
			return -EBADF;
		if (*p == ',') {
			e->carrier_fd = (int)parse_field(p + 1, &p, true);
			if (e->carrier_fd < -1)
				return -EBADF;
		}
		if (*p == ',') {
			e->inherit_base = (int)parse_field(p + 1, &p, false);
			if (e->inherit_base <= 2 ||
			    e->inherit_base >= e->carrier_fd)
				return -EBADF;
		}
	}
	return *p ? -EBADF : 0;
}
