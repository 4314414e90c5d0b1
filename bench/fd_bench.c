// SPDX-License-Identifier: MIT
/**
 * DOC: fd_bench - blackout added by preserved file descriptors
 *
 * Opens N descriptors (eventfds, pipes, sockets and memfds, in turn),
 * preserves them in S sessions (descriptor i in session i % S) and
 * live-updates into itself R times.  Each new image times the blackout:
 * from the old image's freeze to the moment it has retrieved every
 * session and every descriptor; then how long finishing them all and
 * liveupdate_finish() take.  Between updates it re-preserves them (not
 * timed: that is normal running).
 *
 *   fd_bench --fds N [--sessions S] --runs R [--warmup W] [--csv FILE]
 *            [--trust-carrier]
 *
 * --trust-carrier starts every image with LUO_INIT_TRUST_CARRIER, so
 * retrieval skips the per-file fstat() identity check.
 *
 * Prints one line per run and a summary: min/median/max blackout and its
 * phases (freeze to exec, exec to luo_init() done, retrieval of all fds).
 * Compare N against N=0 from the same run for the cost per descriptor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#define MAX_RUNS 256
#define MAGIC 0x4644424e43480001ULL

/* One run's figures, nanoseconds. */
struct run {
	uint64_t freeze_to_exec, exec_to_init, init_to_ready, total;
	uint64_t freeze_ns;
	uint64_t finish; /* every session finished and liveupdate_finish() */
};

/* In handover memory: the chain's state and every result so far. */
struct state {
	uint64_t magic;
	uint64_t fds, sessions, runs, warmup, done;
	uint64_t generation; /* session name suffix */
	char csv[1024];
	struct run run[MAX_RUNS];
};

static struct state *st;
static int *fds;     /* this image's descriptors */
static bool trusted; /* LUO_INIT_TRUST_CARRIER: no identity check */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int bench_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	*data = kho_ptr_to_offset(st);
	return 0;
}

static void bench_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)h;
	if (kho_restore(data, sizeof(*st), (void **)&st) || st->magic != MAGIC)
		st = NULL;
}

static const struct liveupdate_subsystem_ops ops = {
	.prepare = bench_prepare,
	.boot = bench_boot,
};

static struct liveupdate_subsystem subsys = {.ops = &ops, .name = "fd-bench"};

static void die(const char *what, int err)
{
	fprintf(stderr, "fd_bench: %s: %s\n", what,
		strerror(err < 0 ? -err : err));
	exit(1);
}

/* A mix of kinds, so every built-in handler's cost is in the figure. */
static int open_one(uint64_t i)
{
	int p[2], s[2];

	switch (i % 4) {
	case 0:
		return eventfd(0, EFD_CLOEXEC);
	case 1:
		if (pipe2(p, O_CLOEXEC))
			return -1;
		close(p[1]);
		return p[0];
	case 2:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s))
			return -1;
		close(s[1]);
		return s[0];
	default:
		return memfd_create("fd-bench", MFD_CLOEXEC);
	}
}

/* N preserved files plus a few of our own, within the hard limit. */
static void raise_nofile(uint64_t n)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= n + 64)
		return;
	rl.rlim_cur = n + 64;
	if (rl.rlim_max < rl.rlim_cur && geteuid() == 0)
		rl.rlim_max = rl.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("raising RLIMIT_NOFILE (raise the hard limit: ulimit -Hn)",
		    errno);
}

static struct luo_session **sessions;

static void session_name(char *name, size_t len, uint64_t gen, uint64_t k)
{
	snprintf(name, len, "fds-%llu-%llu", (unsigned long long)gen,
		 (unsigned long long)k);
}

static void preserve_all(void)
{
	char name[64];
	int err;

	for (uint64_t k = 0; k < st->sessions; k++) {
		session_name(name, sizeof(name), st->generation, k);
		err = liveupdate_create_session(name, &sessions[k]);
		if (err)
			die("create session", err);
	}
	st->generation++;
	for (uint64_t i = 0; i < st->fds; i++) {
		err = liveupdate_session_preserve_fd(sessions[i % st->sessions],
						     fds[i], i);
		if (err)
			die("preserve", err);
		close(fds[i]);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void stats(const char *what, size_t off, uint64_t n)
{
	uint64_t v[MAX_RUNS];
	uint64_t k = 0;

	for (uint64_t i = st->warmup; i < st->done; i++)
		v[k++] = *(const uint64_t *)((const char *)&st->run[i] + off);
	qsort(v, k, sizeof(v[0]), cmp_u64);
	printf("  %-16s min %9.1f  median %9.1f  max %9.1f us", what,
	       v[0] / 1e3, v[k / 2] / 1e3, v[k - 1] / 1e3);
	if (n)
		printf("   (median %.3f us/fd)", v[k / 2] / 1e3 / n);
	printf("\n");
}

static void report(void)
{
	FILE *csv = st->csv[0] ? fopen(st->csv, "a") : NULL;

	printf("fd_bench: %llu fds in %llu sessions, %llu runs (+%llu warm-up)\n",
	       (unsigned long long)st->fds, (unsigned long long)st->sessions,
	       (unsigned long long)(st->done - st->warmup),
	       (unsigned long long)st->warmup);
	stats("blackout", offsetof(struct run, total), st->fds);
	stats("freeze->exec", offsetof(struct run, freeze_to_exec), 0);
	stats("exec->init", offsetof(struct run, exec_to_init), 0);
	stats("retrieve all", offsetof(struct run, init_to_ready), st->fds);
	stats("finish all", offsetof(struct run, finish), 0);
	for (uint64_t i = st->warmup; csv && i < st->done; i++)
		fprintf(csv, "%s,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n",
			trusted ? "trusted" : "checked",
			(unsigned long long)st->fds,
			(unsigned long long)st->sessions,
			(unsigned long long)(i - st->warmup),
			(unsigned long long)st->run[i].total,
			(unsigned long long)st->run[i].freeze_to_exec,
			(unsigned long long)st->run[i].exec_to_init,
			(unsigned long long)st->run[i].init_to_ready,
			(unsigned long long)st->run[i].finish);
	if (csv)
		fclose(csv);
}

/* The new image: retrieve everything, timed; that ends the blackout. */
static void adopt(void)
{
	struct liveupdate_timing t;
	char name[64];
	uint64_t ready, done;
	int err;

	for (uint64_t k = 0; k < st->sessions; k++) {
		session_name(name, sizeof(name), st->generation - 1, k);
		err = liveupdate_retrieve_session(name, &sessions[k]);
		if (err)
			die("retrieve session", err);
	}
	for (uint64_t i = 0; i < st->fds; i++) {
		err = liveupdate_session_retrieve_fd(sessions[i % st->sessions],
						     i, &fds[i]);
		if (err)
			die("retrieve fd", err);
	}
	ready = now_ns();
	liveupdate_get_timing(&t);
	st->run[st->done] = (struct run){
		.freeze_ns = t.freeze_ns,
		.freeze_to_exec = t.exec_ns - t.freeze_ns,
		.exec_to_init = t.adopted_ns - t.exec_ns,
		.init_to_ready = ready - t.adopted_ns,
		.total = ready - t.freeze_ns,
	};
	for (uint64_t k = 0; k < st->sessions; k++) {
		err = liveupdate_session_finish(sessions[k]);
		if (err)
			die("finish session", err);
	}
	err = liveupdate_finish();
	if (err)
		die("finish", err);
	done = now_ns();
	st->run[st->done].finish = done - ready;
	st->done++;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"fds", required_argument, NULL, 'n'},
		{"sessions", required_argument, NULL, 's'},
		{"runs", required_argument, NULL, 'r'},
		{"warmup", required_argument, NULL, 'w'},
		{"csv", required_argument, NULL, 'c'},
		{"chain", no_argument, NULL, 'C'},
		{"trust-carrier", no_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	uint64_t n = 1000, nsessions = 1, runs = 10, warmup = 1;
	const char *csv = "";
	struct luo_init_opts init = {0};
	char *next[] = {argv[0], "--chain", NULL, NULL};
	int c, err;

	while ((c = getopt_long(argc, argv, "n:s:r:w:c:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			n = strtoull(optarg, NULL, 0);
			break;
		case 's':
			nsessions = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			runs = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			warmup = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			csv = optarg;
			break;
		case 't':
			init.flags |= LUO_INIT_TRUST_CARRIER;
			next[2] = "--trust-carrier";
			break;
		default:
			break;
		}
	}
	err = luo_init(&init);
	if (err)
		die("luo_init", err);
	trusted = init.flags & LUO_INIT_TRUST_CARRIER;
	err = liveupdate_register_subsystem(&subsys);
	if (err)
		die("register", err);
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED) {
		if (!st)
			die("no state from the previous image", EINVAL);
		fds = calloc(st->fds + 1, sizeof(*fds));
		sessions = calloc(st->sessions, sizeof(*sessions));
		if (!fds || !sessions)
			die("calloc", ENOMEM);
		raise_nofile(st->fds);
		adopt();
	} else {
		if (runs + warmup > MAX_RUNS || runs == 0)
			die("--runs must be 1 to 255 with the warm-up", EINVAL);
		if (!nsessions)
			die("--sessions must be at least 1", EINVAL);
		raise_nofile(n);
		err = kho_alloc_preserve(sizeof(*st), (void **)&st);
		if (err)
			die("alloc", err);
		*st = (struct state){.magic = MAGIC,
				     .fds = n,
				     .sessions = nsessions,
				     .runs = runs,
				     .warmup = warmup};
		snprintf(st->csv, sizeof(st->csv), "%s", csv);
		fds = calloc(n + 1, sizeof(*fds));
		sessions = calloc(nsessions, sizeof(*sessions));
		if (!fds || !sessions)
			die("calloc", ENOMEM);
		for (uint64_t i = 0; i < n; i++)
			if ((fds[i] = open_one(i)) < 0)
				die("open", errno);
	}
	if (st->done == st->runs + st->warmup) {
		report();
		return 0;
	}
	preserve_all();
	err = liveupdate_prepare();
	if (err)
		die("prepare", err);
	err = liveupdate_reboot("/proc/self/exe", next, NULL);
	die("reboot", err);
	return 1;
}
