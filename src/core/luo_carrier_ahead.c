// SPDX-License-Identifier: MIT
/*
 * Files received ahead: in spawn mode the old image puts the preserved
 * files on the carrier at prepare and the new image takes them off while
 * the old one still serves, so the blackout does not pay for receiving
 * them.  They wait here, unused, until the sessions accept the whole
 * handover and claim them (luo_carrier_ahead.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "luo_carrier_ahead.h"
#include "luo_mem.h"

static struct {
	int *fds;
	size_t n;
	uint64_t ino;
	bool ready;
} ahead;

void luo_carrier_ahead_drop(void)
{
	for (size_t i = 0; i < ahead.n; i++)
		if (ahead.fds[i] >= 0)
			close(ahead.fds[i]);
	if (ahead.fds)
		luo_bulk_free(ahead.fds, ahead.n * sizeof(int));
	memset(&ahead, 0, sizeof(ahead));
}

int luo_carrier_ahead_receive(int rx, uint64_t ino, uint64_t count, char *why,
			      size_t whylen)
{
	int err;

	luo_carrier_ahead_drop();
	if (rx < 0 || !count || count > (1ULL << 24)) {
		if (rx >= 0)
			close(rx);
		snprintf(why, whylen, "no carrier or a bad count (%llu)",
			 (unsigned long long)count);
		return -EBADMSG;
	}
	ahead.fds = luo_bulk_alloc(count * sizeof(int));
	if (!ahead.fds) {
		close(rx);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	ahead.n = count;
	for (size_t i = 0; i < count; i++)
		ahead.fds[i] = -1;
	err = luo_carrier_receive(rx, ino, ahead.fds, count, why, whylen);
	if (err) {
		luo_carrier_ahead_drop();
		return err;
	}
	ahead.ino = ino;
	ahead.ready = true;
	return 0;
}

bool luo_carrier_ahead_ready(uint64_t ino, size_t n)
{
	return ahead.ready && ahead.ino == ino && ahead.n == n;
}

int luo_carrier_ahead_take(uint64_t ino, int *fds, size_t n)
{
	if (!ahead.ready)
		return -ENOENT;
	if (!luo_carrier_ahead_ready(ino, n)) {
		luo_carrier_ahead_drop();
		return -ESTALE;
	}
	memcpy(fds, ahead.fds, n * sizeof(int));
	luo_bulk_free(ahead.fds, ahead.n * sizeof(int));
	memset(&ahead, 0, sizeof(ahead));
	return 0;
}
