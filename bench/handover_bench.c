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
 * the floor, what starting the program at all costs on this machine.
 *
 *   handover_bench [--pages 4k|hugetlb|thp] [--sync-teardown] [--size MIB]
 *                  [--runs N] [--warmup N] [--csv FILE] [--raw FILE]
 *                  [--check] [--smoke]
 *   handover_bench --summarize [--csv FILE] RAW.csv...
 *
 * --smoke is --size 1 --runs 2 --warmup 0 --check on 4 KiB pages; --check
 * makes the exit status say whether every number is sane and every word
 * verified (never whether anything was fast).  --summarize reads raw CSV
 * files (--raw) of any number of runs and prints and appends (--csv) one
 * summary per mode and size over all of their measured updates.
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

#include "../tests/common/mix.h"

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
	uint64_t run_delay_ns, floor_run_delay_ns; /* runnable, not running */
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
	uint64_t run_delay_at_prepare;
	struct bench_run run[];
};

/* What a floor child sends back through its pipe. */
struct floor_msg {
	uint64_t main_ns, init_ns, minflt, run_delay_ns;
};

struct options {
	const char *pages; /* "4k", "hugetlb" or "thp" */
	bool sync_teardown;
	uint64_t size_mib, runs, warmup;
	const char *csv, *raw;
	bool check;
	int floor_fd; /* >= 0 in a floor child */
	char mode[32];
	bool summarize; /* the remaining arguments are raw CSV files */
	char **files;
	int nfiles;
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

/*
 * Nanoseconds this task has spent runnable but waiting for a CPU, from
 * /proc/self/schedstat; it survives execve() like the task does.  Other
 * load on the machine shows up here.  Plain system calls: it is read at
 * the edges of the timed window.
 */
static uint64_t run_delay_ns(void)
{
	char buf[128];
	int fd = open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	char *p;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	strtoull(buf, &p, 10); /* time on a CPU */
	return strtoull(p, NULL, 10);
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
	msg.run_delay_ns = run_delay_ns(); /* since fork() */
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
	r->floor_run_delay_ns = msg.run_delay_ns;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One update cycle.                                                   */

/* In the new image, right at "ready": what did the update cost? */
static void record_update(uint64_t main_ns, uint64_t ready_ns)
{
	struct bench_run *r = &state->run[state->done];
	struct liveupdate_timing t = {0};
	uint64_t delay = run_delay_ns();
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	liveupdate_get_timing(&t);
	r->run_delay_ns = delay - state->run_delay_at_prepare;
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
	int err;

	state->run_delay_at_prepare = run_delay_ns();
	err = liveupdate_prepare();

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

/* The update against the floor timed right before it. */
static double floor_ratio(const struct bench_run *r)
{
	double f = floor_total(r);

	return f > 0 ? freeze_ready(r) / f : 0;
}

static double run_delay_us(const struct bench_run *r)
{
	return (double)r->run_delay_ns / 1e3;
}

static double floor_run_delay_us(const struct bench_run *r)
{
	return (double)r->floor_run_delay_ns / 1e3;
}

static double finish_gone(const struct bench_run *r)
{
	return ms(r->finish_ns);
}

static const struct metric metrics[] = {
	{"freeze_ready_ms", freeze_ready, "%.4f"},
	{"prepare_ready_ms", prepare_ready, "%.4f"},
	{"floor_ms", floor_total, "%.4f"},
	{"floor_ratio", floor_ratio, "%.4f"},
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
	{"run_delay_us", run_delay_us, "%.0f"},
	{"floor_run_delay_us", floor_run_delay_us, "%.0f"},
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

/* One update's figures: a line of the raw CSV. */
struct row {
	char mode[32];
	uint64_t size_mib, run, samples_ok, huge_mib;
	bool warmup, full_ok;
	double v[NMETRICS];
};

#define RAW_FIXED                                                              \
	"mode,size_mib,run,warmup,samples_ok,full_verified,huge_mapped_mib"
#define RAW_NFIXED 7

struct stat3 {
	double min, med, max;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts @v. */
static struct stat3 stat3_of(double *v, size_t n)
{
	struct stat3 s = {0};

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

static bool row_ok(const struct row *w)
{
	return w->full_ok && w->samples_ok == SAMPLES + 2;
}

/* Header of a CSV: the fixed columns, then each metric with @suffixes. */
static void csv_header(char *buf, size_t size, const char *fixed,
		       const char *const *suffixes, size_t nsuffixes)
{
	size_t len = (size_t)snprintf(buf, size, "%s", fixed);

	for (size_t i = 0; i < NMETRICS; i++)
		for (size_t k = 0; k < nsuffixes && len < size; k++)
			len += (size_t)snprintf(buf + len, size - len, ",%s%s",
						metrics[i].name, suffixes[k]);
	if (len < size)
		snprintf(buf + len, size - len, "\n");
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

static int write_raw_csv(const char *path, const struct row *rows, size_t n)
{
	static const char *const plain[] = {""};
	char header[4096];
	FILE *f;

	csv_header(header, sizeof(header), RAW_FIXED, plain, 1);
	f = open_csv(path, header);
	if (!f)
		return -1;
	for (size_t k = 0; k < n; k++) {
		const struct row *w = &rows[k];

		fprintf(f,
			"%s,%" PRIu64 ",%" PRIu64 ",%d,%" PRIu64 ",%d,%" PRIu64,
			w->mode, w->size_mib, w->run, w->warmup, w->samples_ok,
			w->full_ok, w->huge_mib);
		for (size_t i = 0; i < NMETRICS; i++) {
			fputc(',', f);
			fprintf(f, metrics[i].fmt, w->v[i]);
		}
		fputc('\n', f);
	}
	return fclose(f);
}

/* Lines of a raw CSV written by write_raw_csv(); NULL on error. */
static struct row *read_raw_csv(const char *path, size_t *n)
{
	static const char *const plain[] = {""};
	char header[4096], line[4096];
	struct row *rows = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	*n = 0;
	if (!f) {
		perror(path);
		return NULL;
	}
	csv_header(header, sizeof(header), RAW_FIXED, plain, 1);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok;
		struct row w = {0};
		size_t col = 0;

		if (!strcmp(line, header))
			continue;
		if (*n == cap) {
			struct row *r = realloc(rows, (cap = cap * 2 + 64) *
							      sizeof(*rows));
			if (!r)
				goto bad;
			rows = r;
		}
		for (tok = strtok_r(line, ",\n", &save); tok;
		     tok = strtok_r(NULL, ",\n", &save), col++) {
			uint64_t u = strtoull(tok, NULL, 10);

			if (col == 0)
				snprintf(w.mode, sizeof(w.mode), "%s", tok);
			else if (col == 1)
				w.size_mib = u;
			else if (col == 2)
				w.run = u;
			else if (col == 3)
				w.warmup = u;
			else if (col == 4)
				w.samples_ok = u;
			else if (col == 5)
				w.full_ok = u;
			else if (col == 6)
				w.huge_mib = u;
			else if (col < RAW_NFIXED + NMETRICS)
				w.v[col - RAW_NFIXED] = strtod(tok, NULL);
		}
		if (col != RAW_NFIXED + NMETRICS)
			goto bad;
		rows[(*n)++] = w;
	}
	fclose(f);
	return rows;
bad:
	fprintf(stderr, "handover_bench: %s: not a raw CSV of this version\n",
		path);
	fclose(f);
	free(rows);
	return NULL;
}

/* Figures of one mode and size over its measured (non-warmup) rows. */
struct group {
	const char *mode;
	uint64_t size_mib, runs, huge_mib;
	bool verified;
	struct stat3 s[NMETRICS];
};

static void group_stats(struct group *g, const struct row *rows, size_t n)
{
	double *v = calloc(n ? n : 1, sizeof(*v));

	g->runs = 0;
	g->verified = true;
	g->huge_mib = UINT64_MAX;
	for (size_t k = 0; k < n; k++) {
		const struct row *w = &rows[k];

		if (w->warmup || w->size_mib != g->size_mib ||
		    strcmp(w->mode, g->mode))
			continue;
		g->runs++;
		g->verified &= row_ok(w);
		if (w->huge_mib < g->huge_mib)
			g->huge_mib = w->huge_mib;
	}
	for (size_t i = 0; v && i < NMETRICS; i++) {
		size_t m = 0;

		for (size_t k = 0; k < n; k++)
			if (!rows[k].warmup &&
			    rows[k].size_mib == g->size_mib &&
			    !strcmp(rows[k].mode, g->mode))
				v[m++] = rows[k].v[i];
		g->s[i] = stat3_of(v, m);
	}
	free(v);
}

static void print_group(const struct group *g)
{
	printf("handover_bench: mode %s, %" PRIu64 " MiB, %" PRIu64
	       " runs, huge-mapped %" PRIu64 " MiB, data %s\n",
	       g->mode, g->size_mib, g->runs, g->huge_mib,
	       g->verified ? "verified" : "CORRUPT");
	printf("  %-20s %12s %12s %12s\n", "", "min", "median", "max");
	for (size_t i = 0; i < NMETRICS; i++)
		printf("  %-20s %12.3f %12.3f %12.3f\n", metrics[i].name,
		       g->s[i].min, g->s[i].med, g->s[i].max);
}

static int write_group_csv(const char *path, const struct group *g)
{
	static const char *const s3[] = {"_min", "_med", "_max"};
	char header[8192];
	FILE *f;

	csv_header(header, sizeof(header),
		   "mode,size_mib,runs,huge_mapped_mib,verified", s3, 3);
	f = open_csv(path, header);
	if (!f)
		return -1;
	fprintf(f, "%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%d", g->mode,
		g->size_mib, g->runs, g->huge_mib, g->verified);
	for (size_t i = 0; i < NMETRICS; i++)
		fprintf(f, ",%.4f,%.4f,%.4f", g->s[i].min, g->s[i].med,
			g->s[i].max);
	fputc('\n', f);
	return fclose(f);
}

/* Every mode and size in @rows, in order of appearance: print, append. */
static int summarize(const struct row *rows, size_t n, const char *csv)
{
	int err = 0;

	for (size_t k = 0; k < n; k++) {
		struct group g = {.mode = rows[k].mode,
				  .size_mib = rows[k].size_mib};
		size_t j;

		for (j = 0; j < k; j++)
			if (rows[j].size_mib == g.size_mib &&
			    !strcmp(rows[j].mode, g.mode))
				break;
		if (j < k)
			continue; /* done already */
		group_stats(&g, rows, n);
		if (!g.runs)
			continue;
		print_group(&g);
		if (csv)
			err |= write_group_csv(csv, &g);
		err |= !g.verified;
	}
	return err ? 1 : 0;
}

/* --summarize: one summary row per mode and size over raw CSV files. */
static int summarize_files(char **paths, int npaths, const char *csv)
{
	struct row *all = NULL;
	size_t n = 0;
	int err;

	for (int i = 0; i < npaths; i++) {
		size_t m;
		struct row *rows = read_raw_csv(paths[i], &m), *r;

		if (!rows)
			return 1;
		r = realloc(all, (n + m + 1) * sizeof(*all));
		if (!r)
			return 1;
		all = r;
		memcpy(all + n, rows, m * sizeof(*rows));
		n += m;
		free(rows);
	}
	err = summarize(all, n, csv);
	free(all);
	return err;
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
	struct row *rows = calloc(state->nruns, sizeof(*rows));
	uint64_t huge_mib;
	bool full_ok;
	int err;

	if (!rows)
		return 1;
	populate_data();
	full_ok = !verify_all();
	huge_mib = huge_mapped_kb(data) >> 10;
	for (uint64_t k = 0; k < state->nruns; k++) {
		struct row *w = &rows[k];

		snprintf(w->mode, sizeof(w->mode), "%s", o->mode);
		w->size_mib = state->size >> 20;
		w->run = k;
		w->warmup = k < state->warmup;
		w->samples_ok = state->run[k].verified;
		w->full_ok = full_ok;
		w->huge_mib = huge_mib;
		for (size_t i = 0; i < NMETRICS; i++)
			w->v[i] = metrics[i].get(&state->run[k]);
	}
	err = summarize(rows, state->nruns, o->csv);
	if (o->raw)
		err |= write_raw_csv(o->raw, rows, state->nruns);
	free(rows);
	if (err || !full_ok)
		return 1;
	return o->check ? sanity_check(full_ok) : 0;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: handover_bench [--pages 4k|hugetlb|thp] [--sync-teardown] [--size MIB]\n"
		"                      [--runs N] [--warmup N] [--csv FILE] [--raw FILE]\n"
		"                      [--check] [--smoke]\n"
		"       handover_bench --summarize [--csv FILE] RAW.csv...\n");
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
		{"summarize", no_argument, NULL, 'u'},
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
		case 'u':
			o->summarize = true;
			break;
		case 'f':
			o->floor_fd = atoi(optarg);
			break;
		default:
			return -1;
		}
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;
	if (o->summarize != (o->nfiles > 0) || !o->size_mib || !o->runs ||
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
	if (o.summarize)
		return summarize_files(o.files, o.nfiles, o.csv);
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
