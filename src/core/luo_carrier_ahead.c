// SPDX-License-Identifier: MIT
/*
 * Files received ahead: in spawn mode the old image puts the preserved
 * files on the carrier at prepare and the new image takes them off while
 * the old one still serves, so the blackout does not pay for receiving
 * them.  They wait here, unused, until the sessions accept the whole
 * handover and claim them (luo_carrier_ahead.h).  Their identities are
 * read here too, for the same reason: the sessions compare them with the
 * sealed blocks at adoption instead of calling fstat() per retrieval.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luo_carrier_ahead.h"
#include "luo_mem.h"

static struct {
	int *fds;
	struct luo_carrier_ahead_id *ids;
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
	if (ahead.ids)
		luo_bulk_free(ahead.ids, ahead.n * sizeof(*ahead.ids));
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
	ahead.ids = luo_bulk_alloc(count * sizeof(*ahead.ids));
	if (!ahead.fds || !ahead.ids) {
		if (ahead.fds)
			luo_bulk_free(ahead.fds, count * sizeof(int));
		if (ahead.ids)
			luo_bulk_free(ahead.ids, count * sizeof(*ahead.ids));
		memset(&ahead, 0, sizeof(ahead));
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
	for (size_t i = 0; i < count; i++) {
		struct stat st;

		if (fstat(ahead.fds[i], &st))
			continue; /* mode 0: refused at retrieval */
		ahead.ids[i] = (struct luo_carrier_ahead_id){
			.dev = st.st_dev,
			.ino = st.st_ino,
			.mode = st.st_mode & S_IFMT};
	}
	ahead.ino = ino;
	ahead.ready = true;
	return 0;
}

bool luo_carrier_ahead_ready(uint64_t ino, size_t n)
{
	return ahead.ready && ahead.ino == ino && ahead.n == n;
}

int luo_carrier_ahead_take(uint64_t ino, int *fds,
			   struct luo_carrier_ahead_id **ids, size_t n)
{
	if (ids)
		*ids = NULL;
	if (!ahead.ready)
		return -ENOENT;
	if (!luo_carrier_ahead_ready(ino, n)) {
		luo_carrier_ahead_drop();
		return -ESTALE;
	}
	memcpy(fds, ahead.fds, n * sizeof(int));
	luo_bulk_free(ahead.fds, ahead.n * sizeof(int));
	if (ids)
		*ids = ahead.ids; /* the table itself: no copy in the blackout */
	else
		luo_bulk_free(ahead.ids, ahead.n * sizeof(*ahead.ids));
	memset(&ahead, 0, sizeof(ahead));
	return 0;
}
