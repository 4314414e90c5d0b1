// SPDX-License-Identifier: MIT
/*
 * e2e-teardown-fds: from the moment execve() returns, no process but the
 * new image holds any descriptor of the old image.
 *
 *   e2e-teardown-fds N [sync]
 *
 * Runs a chain of N real live updates of this binary into itself.  Every
 * image listens on the same TCP port (close-on-exec, not preserved: the
 * way a service that starts fresh binds its port again).  At its very
 * first statement, before luo_init(), each new image looks at the helper
 * named by LUO_HANDOVER_FD: its descriptor table must hold nothing but
 * its end of the release pipe, and the table itself must be a small one,
 * not a copy as large as the old image's (which holds descriptor
 * HIGH_FD); and the port must bind again at once, without SO_REUSEADDR.
 * "sync" runs the chain with LUO_INIT_SYNC_TEARDOWN, where no helper may
 * exist at all.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <luo/luo.h>

static unsigned long iter, total;

/* Every image holds a descriptor this high (close-on-exec), so that its
 * table has at least this many slots. */
#define HIGH_FD 1000

__attribute__((format(printf, 1, 2), noreturn)) static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "e2e-teardown-fds: update %lu of %lu: ", iter, total);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A listener on 127.0.0.1:@port (0: any), close-on-exec. */
static int listen_on(unsigned int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)*port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail("socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
		fail("bind of port %u: %s (the old image's listener is still open somewhere)",
		     *port, strerror(errno));
	if (listen(fd, 16) || getsockname(fd, (struct sockaddr *)&a, &len))
		fail("listen: %s", strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

/* The size of process @pid's descriptor table (FDSize), -1 unknown. */
static long table_size(long pid)
{
	char path[64], line[256];
	long size = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "FDSize: %ld", &size) == 1)
			break;
	if (f)
		fclose(f);
	return size;
}

/* The helper's table must hold one descriptor: the release pipe. */
static void check_helper(const char *env, bool sync)
{
	long arena, release, pid;
	char path[64], link[PATH_MAX], want[64];
	struct stat st;
	struct dirent *d;
	DIR *dir;
	int n = 0;

	if (!env)
		fail("no handover in the environment");
	if (sscanf(env, "%ld,%ld,%ld", &arena, &release, &pid) < 1)
		fail("LUO_HANDOVER_FD=%s unparsable", env);
	if (sync) {
		if (strchr(env, ',') && pid != 0)
			fail("a helper %ld exists with LUO_INIT_SYNC_TEARDOWN",
			     pid);
		return;
	}
	if (!strchr(env, ',') || pid <= 0 || release < 0)
		fail("no helper named in LUO_HANDOVER_FD=%s", env);
	if (fstat((int)release, &st) || !S_ISFIFO(st.st_mode))
		fail("release descriptor %ld is not a pipe", release);
	snprintf(want, sizeof(want), "pipe:[%llu]",
		 (unsigned long long)st.st_ino);
	snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
	dir = opendir(path);
	if (!dir)
		fail("cannot list the helper's descriptors: %s (pid %ld)",
		     strerror(errno), pid);
	while ((d = readdir(dir))) {
		char entry[PATH_MAX];
		ssize_t len;

		if (d->d_name[0] == '.')
			continue;
		snprintf(entry, sizeof(entry), "%s/%s", path, d->d_name);
		len = readlink(entry, link, sizeof(link) - 1);
		if (len < 0)
			continue; /* closed while we looked */
		link[len] = 0;
		if (strcmp(link, want))
			fail("the helper still holds the old image's %s (fd %ld)",
			     link, atol(d->d_name));
		n++;
	}
	closedir(dir);
	if (n != 1)
		fail("the helper holds %d descriptors, not its release pipe alone",
		     n);
	/* It never copied the old image's table, which spans HIGH_FD. */
	n = (int)table_size(pid);
	if (n < 0 || n > HIGH_FD)
		fail("the helper's descriptor table has %d slots: a copy of the old image's (which held descriptor %d), not a table of its own",
		     n, HIGH_FD);
}

int main(int argc, char **argv)
{
	const char *env = getenv("LUO_HANDOVER_FD");
	bool chained = argc == 5 && !strcmp(argv[1], "--chain");
	bool sync = chained ? !strcmp(argv[4], "sync")
			    : argc > 2 && !strcmp(argv[2], "sync");
	struct luo_init_opts opts = {
		.flags = sync ? LUO_INIT_SYNC_TEARDOWN : 0,
		.arena_max = 64 << 20,
	};
	unsigned int port = 0;
	char a_iter[24], a_total[24], self[PATH_MAX];
	char *next[] = {
		argv[0], "--chain", a_iter, a_total, sync ? "sync" : "async",
		NULL};
	ssize_t len;
	int err, listener;

	if (chained) {
		iter = strtoul(argv[2], NULL, 10);
		total = strtoul(argv[3], NULL, 10);
		/* Right after the exec: no system call ran before. */
		check_helper(env, sync);
		port = (unsigned int)strtoul(strchr(argv[2], ':') + 1, NULL,
					     10);
		listener = listen_on(&port);
	} else {
		if (argc < 2 || !(total = strtoul(argv[1], NULL, 10))) {
			fprintf(stderr, "usage: e2e-teardown-fds N [sync]\n");
			return 2;
		}
		listener = listen_on(&port);
		/* A few more of the old image's files, all close-on-exec. */
		eventfd(0, EFD_CLOEXEC);
		memfd_create("teardown-fds", MFD_CLOEXEC);
	}
	if (fcntl(listener, F_DUPFD_CLOEXEC, HIGH_FD) < HIGH_FD)
		fail("cannot open descriptor %d: %s", HIGH_FD, strerror(errno));
	err = luo_init(&opts);
	if (err)
		fail("luo_init: %s", strerror(-err));
	if (chained) {
		if (liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED)
			fail("handover not adopted");
		err = liveupdate_finish();
		if (err)
			fail("finish: %s", strerror(-err));
	}
	if (iter == total) {
		printf("e2e-teardown-fds: %lu updates (%s teardown): no old descriptor outlived the exec, the port bound at once every time\n",
		       total, sync ? "sync" : "async");
		return 0;
	}
	snprintf(a_iter, sizeof(a_iter), "%lu:%u", iter + 1, port);
	snprintf(a_total, sizeof(a_total), "%lu", total);
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0)
		fail("readlink: %s", strerror(errno));
	self[len] = 0;
	err = liveupdate_prepare();
	if (err)
		fail("prepare: %s", strerror(-err));
	err = liveupdate_reboot(self, next, NULL);
	fail("reboot: %s", strerror(-err));
}
