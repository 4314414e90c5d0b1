// SPDX-License-Identifier: MIT
/**
 * DOC: teardown_bench - how the old arena mapping goes, and what the new
 * image's page faults see meanwhile
 *
 *   teardown_bench --size MIB --pages 4k|thp|hugetlb --how HOW [--runs R]
 *
 * A process standing in for the teardown helper maps a memfd of MIB MiB
 * and maps all of it (MADV_POPULATE_WRITE), as the old image had.  On
 * "go" it unmaps it HOW, then exits.  Meanwhile this process, standing in
 * for the new image, maps the same memfd and faults in one page after the
 * other, timing each fault, until the helper is gone.  Printed per run:
 * the linger (go until the helper has exited and been reaped), the
 * longest single fault and the 99th percentile fault, in microseconds.
 *
 * HOW: "whole" (one munmap), "slice-pause" (16 MiB munmap slices with a
 * 0.2 ms nanosleep between them), "slice-yield" (16 MiB slices,
 * sched_yield between), "slice" (16 MiB slices, nothing between),
 * "slice64-yield" (64 MiB slices, sched_yield), "dontneed-yield"
 * (MADV_DONTNEED in 16 MiB slices with sched_yield, then one munmap).
 * Never judges a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_FAULTS (1 << 22)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "teardown_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void unmap_how(const char *how, uint8_t *p, uint64_t len)
{
	uint64_t slice = strstr(how, "slice64") ? 64ULL << 20 : 16ULL << 20;
	bool dontneed = !strncmp(how, "dontneed", 8);

	if (!strcmp(how, "whole")) {
		munmap(p, len);
		return;
	}
	for (uint64_t off = 0; off < len; off += slice) {
		uint64_t n = len - off < slice ? len - off : slice;

		if (dontneed)
			madvise(p + off, n, MADV_DONTNEED);
		else
			munmap(p + off, n);
		if (strstr(how, "pause")) {
			struct timespec pause = {0, 200000};

			nanosleep(&pause, NULL);
		} else if (strstr(how, "yield")) {
			sched_yield();
		}
	}
	if (dontneed)
		munmap(p, len);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void one_run(int fd, uint64_t len, uint64_t page, bool thp,
		    const char *how, uint64_t *faults)
{
	int go[2], ready[2];
	uint64_t t0, gone = 0, n = 0;
	uint8_t *p;
	pid_t pid;
	char c;

	if (pipe(go) || pipe(ready))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("helper mmap");
		if (thp)
			madvise(p, len, MADV_HUGEPAGE);
		if (madvise(p, len, MADV_POPULATE_WRITE))
			die("MADV_POPULATE_WRITE");
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		unmap_how(how, p, len);
		_exit(0);
	}
	if (read(ready[0], &c, 1) != 1)
		die("helper did not get ready");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	if (thp)
		madvise(p, len, MADV_HUGEPAGE);
	t0 = now_ns();
	if (write(go[1], "g", 1) != 1)
		die("go");
	/* Fault pages in, in order, until the helper is gone. */
	for (uint64_t off = 0; n < MAX_FAULTS; off = (off + page) % len) {
		uint64_t t = now_ns();

		((volatile uint8_t *)p)[off] += 1;
		faults[n++] = now_ns() - t;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			gone = now_ns();
			break;
		}
	}
	if (!gone) {
		waitpid(pid, NULL, 0);
		gone = now_ns();
	}
	munmap(p, len);
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	qsort(faults, n, sizeof(*faults), cmp_u64);
	printf("%s,%llu,%.1f,%.1f,%.1f,%llu\n", how,
	       (unsigned long long)(len >> 20), (gone - t0) / 1e3,
	       faults[n - 1] / 1e3, faults[n * 99 / 100] / 1e3,
	       (unsigned long long)n);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"pages", required_argument, NULL, 'p'},
		{"how", required_argument, NULL, 'h'},
		{"runs", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	const char *pages = "4k", *how = "whole";
	uint64_t size = 1024, runs = 5, page = 4096;
	uint64_t *faults;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			size = strtoull(optarg, NULL, 0);
			break;
		case 'p':
			pages = optarg;
			break;
		case 'h':
			how = optarg;
			break;
		case 'r':
			runs = strtoull(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	fd = memfd_create("teardown-bench",
			  !strcmp(pages, "hugetlb") ? MFD_HUGETLB : 0);
	if (fd < 0)
		die("memfd_create");
	if (strcmp(pages, "4k"))
		page = 2 << 20;
	if (ftruncate(fd, (off_t)(size << 20)))
		die("ftruncate");
	faults = malloc(MAX_FAULTS * sizeof(*faults));
	if (!faults)
		die("malloc");
	for (uint64_t r = 0; r < runs; r++)
		one_run(fd, size << 20, page, !strcmp(pages, "thp"), how,
			faults);
	return 0;
}
