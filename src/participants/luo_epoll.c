// SPDX-License-Identifier: MIT
/*
 * A preserved epoll instance (built-in handler "epoll-v1", inherited files
 * only) must watch preserved files only: a registration whose target is
 * not preserved would cross the exec pointing at a file the new image
 * cannot name, keep that file open and deliver its events.  Checked at
 * every prepare, outside the blackout, from what the kernel lists in
 * /proc/self/fdinfo.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "log.h"
#include "luo_internal.h"

int luo_epoll_check_targets(int epfd, const char *session, uint64_t token)
{
	char path[64], line[256];
	unsigned int n = 0;
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	f = fopen(path, "re");
	if (!f) {
		pr_err("session '%s' token %#llx: cannot read %s to check what the epoll instance watches: %s",
		       session, (unsigned long long)token, path,
		       strerror(errno));
		return -errno;
	}
	while (!err && fgets(line, sizeof(line), f)) {
		unsigned long long data, ino;
		unsigned int events, sdev;
		long long pos;
		int tfd;

		if (strncmp(line, "tfd:", 4))
			continue;
		if (sscanf(line,
			   "tfd: %d events: %x data: %llx pos:%lld ino:%llx sdev:%x",
			   &tfd, &events, &data, &pos, &ino, &sdev) != 6) {
			pr_err("session '%s' token %#llx: cannot read the epoll instance's targets (%s): %s",
			       session, (unsigned long long)token, path, line);
			err = -EINVAL;
			break;
		}
		n++;
		/* The kernel's own dev_t: 12 bits of major, 20 of minor. */
		if (!luo_file_epoll_target_preserved(
			    epfd, tfd, makedev(sdev >> 20, sdev & 0xfffff),
			    ino)) {
			pr_err("session '%s' token %#llx: the epoll instance watches descriptor %d (inode %llu), which is not a preserved file: preserve every file it watches, or remove it (EPOLL_CTL_DEL) before the update",
			       session, (unsigned long long)token, tfd, ino);
			err = -EINVAL;
		}
	}
	fclose(f);
	if (!err)
		pr_debug(
			"session '%s' token %#llx: the epoll instance watches %u preserved files",
			session, (unsigned long long)token, n);
	return err;
}
