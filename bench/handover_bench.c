// SPDX-License-Identifier: MIT
/**
 * DOC: handover_bench - how long a live update takes, and what it touches
 *
 * The first image allocates @size bytes of handover memory, fills them with
 * a pattern and then updates into itself again and again (execve, same
 * PID).  Every new image measures the update that started it, stores the
 * result in a small state block that itself lives in handover memory, and
 * updates once more, until warmup + runs updates are done; the last image
 * checks every data word, prints the figures and appends them to CSV
 * files.
 *
 * Per update it records, all CLOCK_MONOTONIC:
 *
 * - prepare, freeze, exec: stamped by the old image's library
 *   (liveupdate_get_timing()); "exec" is stamped right before the handover
 *   is sealed and execve() is called;
 * - main: the first statement of the new image's main();
 * - init: luo_init() had adopted the handover (adopted_ns);
 * - ready: the bench subsystem is registered (its boot callback restored
 *   the state block) and kho_restore() gave back the data: the service
 *   could serve;
 * - minflt: minor faults from the freeze to "ready" (getrusage() counts
 *   carry across execve, so the old image stores its count at freeze);
 *   it must not grow with @size, or the update path touched the data;
 * - the time from liveupdate_finish() until the old address space is gone
 *   (with the default async teardown, that is when the helper holding it
 *   has exited).
 *
 * Before each update (untimed) the data is mapped in full again with
 * MADV_POPULATE_WRITE, so execve() has real page tables to deal with, and a
 * plain fork() + execve() of this binary with a fresh luo_init() is timed:
 * the floor an update cannot beat.
 *
 *   handover_bench [--pages 4k|hugetlb|thp] [--sync-teardown] [--size MIB]
 *                  [--runs N] [--warmup N] [--csv FILE] [--raw FILE]
 *                  [--check] [--smoke]
 *
 * --smoke is --size 1 --runs 2 --warmup 0 --check on 4 KiB pages; --check
 * makes the exit status say whether every number is sane and every word
 * verified (never whether anything was fast).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define STATE_MAGIC 0x3148434e45424f55ULL /* "UOBENCH1" */
#define SAMPLES 64
#define PATH_LEN 4096

/* One update, as measured by the image it started (plus its floor). */
struct bench_run {
	uint64_t prepare_ns, freeze_ns, exec_ns, main_ns, adopted_ns, ready_ns;
	uint64_t minflt, majflt; /* faults from freeze to ready */
	uint64_t rss_kb;	 /* VmRSS of the new image at ready */
	uint64_t finish_ns;	 /* liveupdate_finish() to old mm gone */
	uint64_t floor_fork_ns, floor_main_ns, floor_init_ns, floor_minflt;
	uint64_t verified;		   /* sample words that matched */
	uint64_t arena_allocs, arena_size; /* after liveupdate_finish() */
};

/* Lives in handover memory: offsets only, no pointers. */
struct bench_state {
	uint64_t magic;
	uint64_t size; /* bytes of data */
	uint64_t data_off;
	uint64_t seed;
	uint64_t nruns; /* warmup + measured */
	uint64_t warmup;
	uint64_t done; /* updates completed */
	uint64_t minflt_at_freeze, majflt_at_freeze;
	struct bench_run run[];
};

/* What a floor child sends back through its pipe. */
struct floor_msg {
	uint64_t main_ns, init_ns, minflt;
};

struct options {
	const char *pages; /* "4k", "hugetlb" or "thp" */
	bool sync_teardown;
	uint64_t size_mib, runs, warmup;
	const char *csv, *raw;
	bool check;
	int floor_fd; /* >= 0 in a floor child */
	char mode[32];
};

static struct bench_state *state;
static uint64_t *data;
static char self[PATH_LEN];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t pattern(uint64_t i)
{
	return mix(state->seed ^ i);
}

static uint64_t words(void)
{
	return state->size / sizeof(uint64_t);
}

/* ------------------------------------------------------------------ */
/* The bench subsystem: its u64 is the offset of the state block.      */

static int bench_prepare(struct liveupdate_subsystem *h, uint64_t *val)
{
	(void)h;
	*val = kho_ptr_to_offset(state);
	return 0;
}

/* The blackout starts: remember our fault counts, they survive execve. */
static int bench_freeze(struct liveupdate_subsystem *h, uint64_t *val)
{
	struct rusage ru;

	(void)h;
	(void)val;
	getrusage(RUSAGE_SELF, &ru);
	state->minflt_at_freeze = (uint64_t)ru.ru_minflt;
	state->majflt_at_freeze = (uint64_t)ru.ru_majflt;
	return 0;
}

static void bench_boot(struct liveupdate_subsystem *h, uint64_t val)
{
	struct bench_state *s;
	size_t full;

	(void)h;
	if (kho_restore(val, sizeof(*s), (void **)&s) ||
	    s->magic != STATE_MAGIC)
		return;
	full = sizeof(*s) + s->nruns * sizeof(s->run[0]);
	if (kho_restore(val, full, (void **)&s) ||
	    kho_restore(s->data_off, s->size, (void **)&data))
		return;
	state = s;
}

static const struct liveupdate_subsystem_ops bench_ops = {
	.prepare = bench_prepare,
	.freeze = bench_freeze,
	.boot = bench_boot,
};

static struct liveupdate_subsystem bench_subsys = {
	.ops = &bench_ops,
	.name = "bench",
};

/* ------------------------------------------------------------------ */
/* Data: fill, sample, verify, map in full.                            */

static void fill_data(void)
{
	for (uint64_t i = 0; i < words(); i++)
		data[i] = pattern(i);
}

/* Check the first and last word and SAMPLES spread over the data. */
static uint64_t verify_samples(uint64_t salt)
{
	uint64_t n = words(), ok = 0;

	for (uint64_t k = 0; k < SAMPLES + 2; k++) {
		uint64_t i =
			k == 0	 ? 0
			: k == 1 ? n - 1
				 : mix(state->seed + salt * SAMPLES + k) % n;

		ok += data[i] == pattern(i);
	}
	return ok;
}

static int verify_all(void)
{
	for (uint64_t i = 0; i < words(); i++) {
		if (data[i] != pattern(i)) {
			fprintf(stderr,
				"handover_bench: word %" PRIu64 " is %#" PRIx64
				", expected %#" PRIx64 "\n",
				i, data[i], pattern(i));
			return -1;
		}
	}
	return 0;
}

/* Map every data page, so the next exec has page tables to deal with. */
static int populate_data(void)
{
	struct kho_arena_stats st;
	uintptr_t lo, hi;

	if (kho_get_stats(&st))
		return -1;
	lo = (uintptr_t)data / st.page_size * st.page_size;
	hi = ((uintptr_t)data + state->size + st.page_size - 1) / st.page_size *
	     st.page_size;
	if (!madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE))
		return 0;
	/* Older kernels: write-touch one word per 4 KiB. */
	for (volatile uint64_t *p = data; p < data + words(); p += 512)
		*p = *p;
	return 0;
}

/* ------------------------------------------------------------------ */
/* /proc readers.                                                      */

/* A "Name:   123 kB" field of /proc/self/status; 0 if absent. */
static uint64_t status_kb(const char *field)
{
	char line[256];
	uint64_t v = 0;
	size_t len = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len))
			v = strtoull(line + len, NULL, 10);
	fclose(f);
	return v;
}

/* KiB of the mapping holding @addr that are mapped with huge pages. */
static uint64_t huge_mapped_kb(const void *addr)
{
	char line[512];
	uint64_t kb = 0;
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char name[64];
		unsigned long long v;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (!in || sscanf(line, "%63[^:]: %llu kB", name, &v) != 2)
			continue;
		if (!strcmp(name, "ShmemPmdMapped") ||
		    !strcmp(name, "FilePmdMapped") ||
		    !strcmp(name, "Shared_Hugetlb") ||
		    !strcmp(name, "Private_Hugetlb"))
			kb += v;
	}
	fclose(f);
	return kb;
}

/* ------------------------------------------------------------------ */
/* The floor: fork + exec of this binary, fresh luo_init(), no data.   */

static unsigned int luo_flags(const struct options *o)
{
	unsigned int flags = 0;

	if (!strcmp(o->pages, "hugetlb"))
		flags |= LUO_INIT_HUGETLB;
	else if (!strcmp(o->pages, "thp"))
		flags |= LUO_INIT_THP;
	if (o->sync_teardown)
		flags |= LUO_INIT_SYNC_TEARDOWN;
	return flags;
}

/* In the child: start the library fresh and report when it was up. */
static int floor_child(const struct options *o, uint64_t main_ns)
{
	struct luo_init_opts lo = {.flags = luo_flags(o)};
	struct floor_msg msg = {.main_ns = main_ns};
	struct rusage ru;

	if (luo_init(&lo))
		return 1;
	msg.init_ns = now_ns();
	getrusage(RUSAGE_SELF, &ru);
	msg.minflt = (uint64_t)ru.ru_minflt;
	if (write(o->floor_fd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		return 1;
	luo_exit();
	return 0;
}

static int floor_once(const struct options *o, struct bench_run *r)
{
	char fdarg[16], pages[16];
	char *argv[] = {self, "--floor", fdarg, "--pages", pages, NULL};
	struct floor_msg msg;
	int fds[2], status = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds))
		return -1;
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
	snprintf(pages, sizeof(pages), "%s", o->pages);
	r->floor_fork_ns = now_ns();
	pid = fork();
	if (pid == 0) {
		execv(self, argv);
		_exit(127);
	}
	close(fds[1]);
	n = pid > 0 ? read(fds[0], &msg, sizeof(msg)) : -1;
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (n != (ssize_t)sizeof(msg) || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "handover_bench: the floor child failed\n");
		return -1;
	}
	r->floor_main_ns = msg.main_ns;
	r->floor_init_ns = msg.init_ns;
	r->floor_minflt = msg.minflt;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One update cycle.                                                   */

/* In the new image, right at "ready": what did the update cost? */
static void record_update(uint64_t main_ns, uint64_t ready_ns)
{
	struct bench_run *r = &state->run[state->done];
	struct liveupdate_timing t = {0};
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	liveupdate_get_timing(&t);
	r->prepare_ns = t.prepare_ns;
	r->freeze_ns = t.freeze_ns;
	r->exec_ns = t.exec_ns;
	r->adopted_ns = t.adopted_ns;
	r->main_ns = main_ns;
	r->ready_ns = ready_ns;
	r->minflt = (uint64_t)ru.ru_minflt - state->minflt_at_freeze;
	r->majflt = (uint64_t)ru.ru_majflt - state->majflt_at_freeze;
	r->rss_kb = status_kb("VmRSS:");
	r->verified = verify_samples(state->done);
}

/*
 * Finish the update and wait until the old address space is gone: with
 * async teardown the helper holding it is our only child and becomes a
 * zombie after it freed it (WNOWAIT leaves the reaping to the library).
 */
static int finish_update(struct bench_run *r)
{
	uint64_t t0 = now_ns();
	struct kho_arena_stats st;
	siginfo_t si;
	int err;

	err = liveupdate_finish();
	if (err)
		return err;
	while (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) && errno == EINTR)
		;
	r->finish_ns = now_ns() - t0;
	err = kho_get_stats(&st);
	if (err)
		return err;
	r->arena_allocs = st.allocations;
	r->arena_size = st.arena_size;
	return 0;
}

/* Only returns if the update failed. */
static int update(char **argv)
{
	int err = liveupdate_prepare();

	if (!err)
		err = liveupdate_reboot(self, argv, NULL);
	fprintf(stderr, "handover_bench: live update failed: %s\n",
		strerror(-err));
	return 1;
}

static int fresh_state(const struct options *o)
{
	uint64_t nruns = o->warmup + o->runs;
	int err;

	err = kho_alloc_preserve(sizeof(*state) + nruns * sizeof(state->run[0]),
				 (void **)&state);
	if (err)
		return err;
	state->magic = STATE_MAGIC;
	state->size = o->size_mib << 20;
	state->nruns = nruns;
	state->warmup = o->warmup;
	state->seed = mix(now_ns() ^ (uint64_t)getpid());
	err = kho_alloc_preserve(state->size, (void **)&data);
	if (err)
		return err;
	state->data_off = kho_ptr_to_offset(data);
	/* Allocate the pages in one go; faulting them one by one is slower. */
	populate_data();
	fill_data();
	return 0;
}

/* ------------------------------------------------------------------ */
/* Results.                                                            */

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* A figure per run; times in ms, counts as they are. */
struct metric {
	const char *name;
	double (*get)(const struct bench_run *r);
	const char *fmt; /* "%.4f" for ms, "%.0f" for counts */
};

#define METRIC_NS(fn, a, b)                                                    \
	static double fn(const struct bench_run *r)                            \
	{                                                                      \
		return ms(r->b - r->a);                                        \
	}
#define METRIC_N(fn, f)                                                        \
	static double fn(const struct bench_run *r)                            \
	{                                                                      \
		return (double)r->f;                                           \
	}

METRIC_NS(freeze_ready, freeze_ns, ready_ns)
METRIC_NS(prepare_ready, prepare_ns, ready_ns)
METRIC_NS(prepare_freeze, prepare_ns, freeze_ns)
METRIC_NS(freeze_exec, freeze_ns, exec_ns)
METRIC_NS(exec_main, exec_ns, main_ns)
METRIC_NS(main_init, main_ns, adopted_ns)
METRIC_NS(init_ready, adopted_ns, ready_ns)
METRIC_NS(floor_total, floor_fork_ns, floor_init_ns)
METRIC_NS(floor_fork_main, floor_fork_ns, floor_main_ns)
METRIC_NS(floor_main_init, floor_main_ns, floor_init_ns)
METRIC_N(minflt, minflt)
METRIC_N(majflt, majflt)
METRIC_N(rss_kb, rss_kb)
METRIC_N(floor_minflt, floor_minflt)
METRIC_N(arena_allocs, arena_allocs)

static double arena_mib(const struct bench_run *r)
{
	return (double)r->arena_size / (1 << 20);
}

static double finish_gone(const struct bench_run *r)
{
	return ms(r->finish_ns);
}

static const struct metric metrics[] = {
	{"freeze_ready_ms", freeze_ready, "%.4f"},
	{"prepare_ready_ms", prepare_ready, "%.4f"},
	{"floor_ms", floor_total, "%.4f"},
	{"prepare_freeze_ms", prepare_freeze, "%.4f"},
	{"freeze_exec_ms", freeze_exec, "%.4f"},
	{"exec_main_ms", exec_main, "%.4f"},
	{"main_init_ms", main_init, "%.4f"},
	{"init_ready_ms", init_ready, "%.4f"},
	{"floor_fork_main_ms", floor_fork_main, "%.4f"},
	{"floor_main_init_ms", floor_main_init, "%.4f"},
	{"finish_teardown_ms", finish_gone, "%.4f"},
	{"minflt", minflt, "%.0f"},
	{"majflt", majflt, "%.0f"},
	{"rss_kb", rss_kb, "%.0f"},
	{"floor_minflt", floor_minflt, "%.0f"},
	{"arena_allocs", arena_allocs, "%.0f"},
	{"arena_mib", arena_mib, "%.0f"},
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

struct stat3 {
	double min, med, max;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct stat3 stats_of(const struct metric *m)
{
	uint64_t n = state->nruns - state->warmup;
	const struct bench_run *runs = state->run + state->warmup;
	struct stat3 s = {0};
	double *v = calloc(n ? n : 1, sizeof(*v));

	if (!v || !n) {
		free(v);
		return s;
	}
	for (uint64_t i = 0; i < n; i++)
		v[i] = m->get(&runs[i]);
	qsort(v, n, sizeof(*v), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	free(v);
	return s;
}

/* Append to @path, writing @header first if the file is new or empty. */
static FILE *open_csv(const char *path, const char *header)
{
	FILE *f = fopen(path, "a");

	if (!f) {
		perror(path);
		return NULL;
	}
	if (ftell(f) == 0)
		fputs(header, f);
	return f;
}

static int write_summary_csv(const struct options *o, const struct stat3 *s,
			     uint64_t huge_kb, bool verified)
{
	char header[4096];
	size_t len;
	FILE *f;

	len = (size_t)snprintf(header, sizeof(header),
			       "mode,size_mib,runs,huge_mapped_mib,verified");
	for (size_t i = 0; i < NMETRICS; i++)
		len += (size_t)snprintf(header + len, sizeof(header) - len,
					",%s_min,%s_med,%s_max",
					metrics[i].name, metrics[i].name,
					metrics[i].name);
	snprintf(header + len, sizeof(header) - len, "\n");
	f = open_csv(o->csv, header);
	if (!f)
		return -1;
	fprintf(f, "%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%d", o->mode,
		state->size >> 20, state->nruns - state->warmup, huge_kb >> 10,
		verified);
	for (size_t i = 0; i < NMETRICS; i++)
		fprintf(f, ",%.4f,%.4f,%.4f", s[i].min, s[i].med, s[i].max);
	fputc('\n', f);
	return fclose(f);
}

static int write_raw_csv(const struct options *o)
{
	char header[2048];
	size_t len;
	FILE *f;

	len = (size_t)snprintf(header, sizeof(header),
			       "mode,size_mib,run,warmup,verified");
	for (size_t i = 0; i < NMETRICS; i++)
		len += (size_t)snprintf(header + len, sizeof(header) - len,
					",%s", metrics[i].name);
	snprintf(header + len, sizeof(header) - len, "\n");
	f = open_csv(o->raw, header);
	if (!f)
		return -1;
	for (uint64_t k = 0; k < state->nruns; k++) {
		const struct bench_run *r = &state->run[k];

		fprintf(f, "%s,%" PRIu64 ",%" PRIu64 ",%d,%" PRIu64, o->mode,
			state->size >> 20, k, k < state->warmup, r->verified);
		for (size_t i = 0; i < NMETRICS; i++) {
			fputc(',', f);
			fprintf(f, metrics[i].fmt, metrics[i].get(r));
		}
		fputc('\n', f);
	}
	return fclose(f);
}

static void print_summary(const struct options *o, const struct stat3 *s,
			  uint64_t huge_kb, bool verified)
{
	printf("handover_bench: mode %s, %" PRIu64 " MiB, %" PRIu64
	       " runs (+%" PRIu64 " warmup), huge-mapped %" PRIu64
	       " MiB, data %s\n",
	       o->mode, state->size >> 20, state->nruns - state->warmup,
	       state->warmup, huge_kb >> 10, verified ? "verified" : "CORRUPT");
	printf("  %-20s %12s %12s %12s\n", "", "min", "median", "max");
	for (size_t i = 0; i < NMETRICS; i++)
		printf("  %-20s %12.3f %12.3f %12.3f\n", metrics[i].name,
		       s[i].min, s[i].med, s[i].max);
	printf("  freeze->ready / floor (medians): %.2f\n",
	       s[2].med > 0 ? s[0].med / s[2].med : 0.0);
}

/* --check: did it run and measure something real?  No time limits. */
static int sanity_check(bool verified)
{
	int bad = 0;

	if (!verified || liveupdate_get_num() != state->nruns ||
	    state->done != state->nruns)
		bad++;
	for (uint64_t k = 0; k < state->nruns; k++) {
		const struct bench_run *r = &state->run[k];

		bad += !r->prepare_ns || r->prepare_ns > r->freeze_ns ||
		       r->freeze_ns > r->exec_ns || r->exec_ns > r->main_ns ||
		       r->main_ns > r->adopted_ns ||
		       r->adopted_ns > r->ready_ns;
		bad += r->floor_fork_ns >= r->floor_main_ns ||
		       r->floor_main_ns > r->floor_init_ns;
		bad += !r->minflt || !r->rss_kb || !r->floor_minflt;
		bad += r->verified != SAMPLES + 2;
		/* Nothing leaks: state + data, same arena size every time. */
		bad += r->arena_allocs != 2 ||
		       r->arena_size != state->run[0].arena_size;
	}
	if (bad)
		fprintf(stderr, "handover_bench: %d insane figures\n", bad);
	return bad ? 1 : 0;
}

/* The last image: check everything, report. */
static int report(const struct options *o)
{
	struct stat3 s[NMETRICS];
	uint64_t huge_kb;
	bool verified;
	int err = 0;

	populate_data();
	verified = !verify_all();
	huge_kb = huge_mapped_kb(data);

	for (size_t i = 0; i < NMETRICS; i++)
		s[i] = stats_of(&metrics[i]);
	print_summary(o, s, huge_kb, verified);
	if (o->csv)
		err |= write_summary_csv(o, s, huge_kb, verified);
	if (o->raw)
		err |= write_raw_csv(o);
	if (!verified || err)
		return 1;
	return o->check ? sanity_check(verified) : 0;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: handover_bench [--pages 4k|hugetlb|thp] [--sync-teardown] [--size MIB]\n"
		"                      [--runs N] [--warmup N] [--csv FILE] [--raw FILE]\n"
		"                      [--check] [--smoke]\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"pages", required_argument, NULL, 'p'},
		{"sync-teardown", no_argument, NULL, 'S'},
		{"size", required_argument, NULL, 's'},
		{"runs", required_argument, NULL, 'n'},
		{"warmup", required_argument, NULL, 'w'},
		{"csv", required_argument, NULL, 'c'},
		{"raw", required_argument, NULL, 'r'},
		{"check", no_argument, NULL, 'k'},
		{"smoke", no_argument, NULL, 'm'},
		{"floor", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.pages = "4k",
			      .size_mib = 1,
			      .runs = 20,
			      .warmup = 1,
			      .floor_fd = -1};
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->pages = optarg;
			break;
		case 'S':
			o->sync_teardown = true;
			break;
		case 's':
			o->size_mib = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			o->runs = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			o->warmup = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			o->csv = optarg;
			break;
		case 'r':
			o->raw = optarg;
			break;
		case 'k':
			o->check = true;
			break;
		case 'm':
			o->size_mib = 1;
			o->runs = 2;
			o->warmup = 0;
			o->check = true;
			break;
		case 'f':
			o->floor_fd = atoi(optarg);
			break;
		default:
			return -1;
		}
	}
	if (optind != argc || !o->size_mib || !o->runs ||
	    (strcmp(o->pages, "4k") && strcmp(o->pages, "hugetlb") &&
	     strcmp(o->pages, "thp")))
		return -1;
	snprintf(o->mode, sizeof(o->mode), "%s%s", o->pages,
		 o->sync_teardown ? "-sync" : "");
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t main_ns = now_ns(), ready_ns;
	struct luo_init_opts lo = {0};
	struct options o;
	ssize_t n;
	int err;

	if (parse_options(argc, argv, &o)) {
		usage();
		return 2;
	}
	if (o.floor_fd >= 0)
		return floor_child(&o, main_ns);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return 2;
	self[n] = 0;

	lo.flags = luo_flags(&o);
	err = luo_init(&lo);
	if (!err)
		err = liveupdate_register_subsystem(&bench_subsys);
	ready_ns = now_ns();
	if (err) {
		fprintf(stderr, "handover_bench: cannot start: %s\n",
			strerror(-err));
		return 1;
	}

	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED) {
		if (!state) {
			fprintf(stderr,
				"handover_bench: no state handed over\n");
			return 1;
		}
		record_update(main_ns, ready_ns);
		if (finish_update(&state->run[state->done]))
			return 1;
		state->done++;
	} else {
		err = fresh_state(&o);
		if (err) {
			fprintf(stderr,
				"handover_bench: cannot allocate %" PRIu64
				" MiB of handover memory: %s\n",
				o.size_mib, strerror(-err));
			return 1;
		}
	}

	if (state->done < state->nruns) {
		if (populate_data() || floor_once(&o, &state->run[state->done]))
			return 1;
		return update(argv);
	}
	return report(&o);
}
