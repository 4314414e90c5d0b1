// SPDX-License-Identifier: MIT
/*
 * txn_bench: the blackout of a live update in exec and spawn mode, next to
 * the fork+exec floor, and the rollback time.
 *
 *   txn_bench --mode exec|spawn --size MIB --fds N --runs R
 *             [--init-delay MS] [--trust] [--inherit] [--bulk] [--phases]
 *             --out FILE
 *   txn_bench --rollback --size MIB --fds N --runs R --out FILE
 *
 * The first image fills SIZE MiB of handover memory and preserves N
 * connected sockets, then updates into itself R times in a row.  Each new
 * image sleeps INIT-DELAY ms before luo_init() (a slow start-up: in spawn
 * mode that is pre-launch, outside the blackout), retrieves every socket
 * and records the blackout: from the freeze to that moment.  Before each
 * update the old image also times the floor: fork+exec of this binary
 * until its main() runs.  The last image writes one line per update to
 * FILE: "mode size_mib fds init_ms blackout_ns floor_ns".  --trust
 * retrieves with LUO_INIT_TRUST_CARRIER (no per-file identity check);
 * --inherit lets exec mode inherit the files (LUO_INIT_EXEC_INHERIT)
 * instead of passing them on the carrier (a row whose files went on the
 * carrier all the same, the range not fitting, says "-fellback").
 * --bulk retrieves the sockets with one liveupdate_session_retrieve_all()
 * instead of one liveupdate_session_retrieve_fd() each ("-bulk").
 * --phases prints, per update, where the blackout went to stderr: the old
 * image from the freeze to the exec, the exec until main(), main() until
 * luo_init(), luo_init(), and the retrieval.
 *
 * --rollback updates into /bin/false R times in spawn mode and writes
 * "rollback size_mib fds 0 rollback_ns floor_ns" lines: from the old
 * image seeing the child's exit to serving again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#define MAGIC 0x54584e42454e4331ULL
#define MAXRUNS 256

struct bstate {
	uint64_t magic;
	uint64_t runs, done, nfds;
	uint64_t blackout_ns[MAXRUNS], floor_ns[MAXRUNS];
	uint8_t on_carrier[MAXRUNS]; /* --inherit, but the files were not */
	uint64_t data_off, data_len;
};

static struct bstate *st;
extern char **environ;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int sub_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	*data = kho_ptr_to_offset(st);
	return 0;
}

static void sub_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)h;
	if (kho_restore(data, sizeof(*st), (void **)&st) || st->magic != MAGIC)
		st = NULL;
}

static const struct liveupdate_subsystem_ops ops = {.prepare = sub_prepare,
						    .boot = sub_boot};
static struct liveupdate_subsystem sub = {.ops = &ops, .name = "bench"};

/* Every socket with one call; @held[token - 1] gets its descriptor. */
static int retrieve_all(struct luo_session *s, int *held, uint64_t n)
{
	struct liveupdate_session_file *files =
		malloc((n + 1) * sizeof(*files));
	int got = files ? liveupdate_session_retrieve_all(s, files, n) : -1;

	for (int i = 0; got >= 0 && i < got; i++) {
		if (files[i].err || files[i].token < 1 || files[i].token > n)
			got = -1;
		else
			held[files[i].token - 1] = files[i].fd;
	}
	free(files);
	return got == (int)n ? 0 : 1;
}

/* fork+exec of this binary until its main() runs, in ns. */
static uint64_t floor_once(const char *self)
{
	char *argv[] = {(char *)self, "--floor-probe", NULL};
	int p[2];
	uint64_t t0, t1 = 0;
	pid_t pid;
	posix_spawn_file_actions_t fa;

	if (pipe(p))
		return 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	t0 = now_ns();
	if (posix_spawn(&pid, self, &fa, NULL, argv, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		return 0;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (read(p[0], &t1, sizeof(t1)) != sizeof(t1))
		t1 = t0;
	close(p[0]);
	waitpid(pid, NULL, 0);
	return t1 - t0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'},
		{"size", required_argument, NULL, 's'},
		{"fds", required_argument, NULL, 'f'},
		{"runs", required_argument, NULL, 'r'},
		{"init-delay", required_argument, NULL, 'd'},
		{"out", required_argument, NULL, 'o'},
		{"rollback", no_argument, NULL, 'R'},
		{"floor-probe", no_argument, NULL, 'F'},
		{"trust", no_argument, NULL, 'T'},
		{"inherit", no_argument, NULL, 'I'},
		{"bulk", no_argument, NULL, 'B'},
		{"phases", no_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	const char *mode = "exec", *out = NULL;
	uint64_t size = 1, nfds = 0, runs = 5, delay = 0;
	struct luo_session *s;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	bool rollback = false, trust = false, inherit = false, inherited;
	bool bulk = false, phases = false;
	uint64_t t_main = now_ns(), t_init0, t_init1;
	uint64_t delay_asked;
	struct rlimit rl;
	int *held, c;

	if (argc > 1 && !strcmp(argv[1], "--floor-probe")) {
		uint64_t t = now_ns();

		return write(1, &t, sizeof(t)) == sizeof(t) ? 0 : 1;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'm')
			mode = optarg;
		else if (c == 's')
			size = strtoull(optarg, NULL, 10);
		else if (c == 'f')
			nfds = strtoull(optarg, NULL, 10);
		else if (c == 'r')
			runs = strtoull(optarg, NULL, 10);
		else if (c == 'd')
			delay = strtoull(optarg, NULL, 10);
		else if (c == 'o')
			out = optarg;
		else if (c == 'R')
			rollback = true;
		else if (c == 'T')
			trust = true;
		else if (c == 'I')
			inherit = true;
		else if (c == 'B')
			bulk = true;
		else if (c == 'P')
			phases = true;
		else
			return 2;
	}
	if (n < 0 || !out || runs > MAXRUNS)
		return 2;
	self[n] = 0;
	delay_asked = delay;
	if (delay && getenv("LUO_HANDOVER_FD") == NULL &&
	    getenv(LUO_SPAWN_ENV) == NULL)
		delay = 0; /* the first image starts at once */
	if (delay) {
		struct timespec ts = {(time_t)(delay / 1000),
				      (long)(delay % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	/* One descriptor per preserved socket, and as many in flight; where
	 * raising the limit is not allowed the current one must do. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_max < 2 * nfds + 64) {
		rl.rlim_cur = rl.rlim_max = 2 * nfds + 64;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Inherited files name their range in a fifth field. */
	inherited = getenv("LUO_HANDOVER_FD") &&
		    sscanf(getenv("LUO_HANDOVER_FD"), "%*d,%*d,%*d,%*d,%d",
			   &c) == 1;
	t_init0 = now_ns();
	if (luo_init(&(struct luo_init_opts){
		    .arena_max = (size + 64) << 20,
		    .flags = (trust ? LUO_INIT_TRUST_CARRIER : 0) |
			     (inherit ? LUO_INIT_EXEC_INHERIT : 0)}))
		return 1;
	t_init1 = now_ns();
	if (liveupdate_register_subsystem(&sub))
		return 1;
	held = NULL;
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED) {
		struct liveupdate_timing t;
		uint64_t t_ret;

		if (!st || liveupdate_retrieve_session("bench", &s))
			return 1;
		held = realloc(held, (st->nfds + 1) * sizeof(int));
		if (bulk && retrieve_all(s, held, st->nfds))
			return 1;
		for (uint64_t i = 0; !bulk && i < st->nfds; i++)
			if (liveupdate_session_retrieve_fd(s, i + 1, &held[i]))
				return 1;
		/* Serving again: every connection is back. */
		t_ret = now_ns();
		liveupdate_get_timing(&t);
		st->on_carrier[st->done] = inherit && !inherited && st->nfds;
		st->blackout_ns[st->done++] = t_ret - t.freeze_ns;
		if (phases)
			fprintf(stderr,
				"phases us: freeze-exec %.1f exec-main %.1f main-init %.1f init %.1f retrieve %.1f blackout %.1f\n",
				(t.exec_ns - t.freeze_ns) / 1e3,
				(t_main - t.exec_ns) / 1e3,
				(t_init0 - t_main) / 1e3,
				(t_init1 - t_init0) / 1e3,
				(t_ret - t_init1) / 1e3,
				(t_ret - t.freeze_ns) / 1e3);
		liveupdate_session_finish(s);
		if (liveupdate_finish())
			return 1;
	} else {
		void *data;

		if (kho_alloc_preserve(sizeof(*st), (void **)&st) ||
		    kho_alloc_preserve(size << 20, &data))
			return 1;
		memset(data, 0x5a, size << 20);
		st->magic = MAGIC;
		st->runs = runs;
		st->nfds = nfds;
		held = realloc(held, (nfds + 1) * sizeof(int));
		for (uint64_t i = 0; i < nfds; i++) {
			int sp[2];

			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				       sp))
				return 1;
			held[i] = sp[0];
			close(sp[1]);
		}
	}
	if (liveupdate_create_session("bench", &s))
		return 1;
	/* The library keeps its own duplicate: one descriptor each. */
	for (uint64_t i = 0; i < st->nfds; i++) {
		if (liveupdate_session_preserve_fd(s, held[i], i + 1))
			return 1;
		close(held[i]);
	}
	while (rollback && st->done < st->runs) {
		char *fargv[] = {"/bin/false", NULL};
		struct liveupdate_update_opts o = {
			.mode = LIVEUPDATE_MODE_SPAWN,
			.path = "/bin/false",
			.argv = fargv};
		struct liveupdate_update_report r;

		st->floor_ns[st->done] = floor_once(self);
		if (liveupdate_update(&o, &r) != -ECANCELED)
			return 1;
		st->blackout_ns[st->done++] = r.rollback_ns;
	}
	if (st->done >= st->runs) {
		FILE *f = fopen(out, "a");

		char label[32];

		snprintf(label, sizeof(label), "%s%s%s%s",
			 rollback ? "rollback" : mode,
			 inherit ? "-inherit" : "", trust ? "-trust" : "",
			 bulk ? "-bulk" : "");
		for (uint64_t i = 0; f && i < st->done; i++)
			fprintf(f, "%s%s %llu %llu %llu %llu %llu\n", label,
				st->on_carrier[i] ? "-fellback" : "",
				(unsigned long long)size,
				(unsigned long long)st->nfds,
				(unsigned long long)delay_asked,
				(unsigned long long)st->blackout_ns[i],
				(unsigned long long)st->floor_ns[i]);
		if (f)
			fclose(f);
		return 0;
	}
	{
		char sz[32], fd[32], rn[32], dl[32];
		char *nargv[] = {self,	       "--mode",
				 (char *)mode, "--size",
				 sz,	       "--fds",
				 fd,	       "--runs",
				 rn,	       "--init-delay",
				 dl,	       "--out",
				 (char *)out,  NULL,
				 NULL,	       NULL,
				 NULL,	       NULL};
		struct liveupdate_update_opts o = {
			.mode = strcmp(mode, "spawn") ? LIVEUPDATE_MODE_EXEC
						      : LIVEUPDATE_MODE_SPAWN,
			.path = self,
			.argv = nargv,
			.deadline_ms = strcmp(mode, "spawn") ? 0 : 30000};
		int err;

		char **extra = &nargv[13];

		if (trust)
			*extra++ = "--trust";
		if (inherit)
			*extra++ = "--inherit";
		if (bulk)
			*extra++ = "--bulk";
		if (phases)
			*extra++ = "--phases";
		snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
		snprintf(fd, sizeof(fd), "%llu", (unsigned long long)nfds);
		snprintf(rn, sizeof(rn), "%llu", (unsigned long long)runs);
		snprintf(dl, sizeof(dl), "%llu",
			 (unsigned long long)delay_asked);
		st->floor_ns[st->done] = floor_once(self);
		err = liveupdate_update(&o, NULL);
		if (!err)
			return 0; /* spawn mode committed: the new one goes on */
		fprintf(stderr, "txn_bench: update failed: %s\n",
			strerror(-err));
		return 1;
	}
}
