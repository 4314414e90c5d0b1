// SPDX-License-Identifier: MIT
/*
 * exec-failure: a live update whose exec fails must leave the service
 * exactly as it was, and a later update must still work.
 *
 * The first image prepares a handover (data, three subsystems, a user
 * subtree, a device nobody preserves) and then makes liveupdate_reboot()
 * fail in every way an exec can fail (missing file, no exec permission,
 * garbage content, a directory, a script whose interpreter is missing or
 * not named, an ELF object file, a program whose dynamic loader is
 * missing): the pre-check must catch each before the device is shut
 * down, plus a freeze refused during the reboot, a reboot from
 * FROZEN, a refused prepare and a refused liveupdate_freeze().  After each
 * attempt it checks the state, the exact order of the callbacks, the data,
 * the environment, the arena fd's FD_CLOEXEC, the open fds, child
 * processes and the arena's allocations.  Then it really updates into
 * itself ("--updated"), where the new image checks everything arrived.
 */
#define _GNU_SOURCE

#include "exec_failure.h"

void fill_data(struct data_block *d)
{
	for (size_t i = 0; i < DATA_WORDS; i++)
		d->words[i] = mix(i ^ 0xe2e);
}

size_t bad_words(const struct data_block *d)
{
	size_t bad = 0;

	for (size_t i = 0; i < DATA_WORDS; i++)
		bad += d->words[i] != mix(i ^ 0xe2e);
	return bad;
}

/* ---- subsystems recording every callback ---- */

struct sub_ctl ctl[NSUB];
struct liveupdate_subsystem subs[NSUB];
const char *const sub_names[NSUB] = {"e2e.data", "e2e-const", "e2e_subtree"};
char events[MAX_EVENTS][8];
int nevents;

static int sub_idx(struct liveupdate_subsystem *h)
{
	return (int)(h - subs);
}

static void record(char what, struct liveupdate_subsystem *h)
{
	if (nevents < MAX_EVENTS)
		snprintf(events[nevents], sizeof(events[0]), "%c%d", what,
			 sub_idx(h));
	nevents++;
}

static int sub_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	struct sub_ctl *c = &ctl[sub_idx(h)];

	record('P', h);
	CHECK(*data == 0, "prepare of %s got data %#llx, not 0", h->name,
	      (unsigned long long)*data);
	if (c->refuse_prepare)
		return c->refuse_prepare;
	*data = c->prepare_val;
	return 0;
}

static int sub_freeze(struct liveupdate_subsystem *h, uint64_t *data)
{
	struct sub_ctl *c = &ctl[sub_idx(h)];

	record('F', h);
	CHECK(*data == c->prepare_val,
	      "freeze of %s got %#llx, prepare left %#llx", h->name,
	      (unsigned long long)*data, (unsigned long long)c->prepare_val);
	if (c->refuse_freeze)
		return c->refuse_freeze;
	if (c->freeze_val)
		*data = c->freeze_val;
	return 0;
}

static void sub_cancel(struct liveupdate_subsystem *h, uint64_t data)
{
	record('C', h);
	ctl[sub_idx(h)].cancel_data = data;
}

static void sub_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	record('B', h);
	ctl[sub_idx(h)].boot_calls++;
	ctl[sub_idx(h)].boot_data = data;
}

static void sub_finish(struct liveupdate_subsystem *h, uint64_t data)
{
	record('X', h);
	ctl[sub_idx(h)].finish_calls++;
	ctl[sub_idx(h)].finish_data = data;
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.prepare = sub_prepare,
	.freeze = sub_freeze,
	.cancel = sub_cancel,
	.boot = sub_boot,
	.finish = sub_finish,
};

void register_subsystems(void)
{
	for (int i = 0; i < NSUB; i++) {
		int err;

		memset(&subs[i], 0, sizeof(subs[i]));
		subs[i].ops = &sub_ops;
		subs[i].name = sub_names[i];
		err = liveupdate_register_subsystem(&subs[i]);
		CHECK(err == 0, "register %s: %d", sub_names[i], err);
	}
}

void events_string(char *buf, size_t len)
{
	buf[0] = 0;
	for (int i = 0; i < nevents && i < MAX_EVENTS; i++) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, "%s%s", i ? " " : "", events[i]);
	}
}

/* ---- process-level checks ---- */

/* The arena memfd (its /proc/self/fd link names it "luo-arena"). */
static int arena_fds(int *fd)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[64], link[PATH_MAX];
		ssize_t l;

		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l < 0)
			continue;
		link[l] = 0;
		if (strstr(link, "memfd:luo-arena")) {
			*fd = atoi(e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* All open fds with their targets, as one string. */
void fd_table(char *buf, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fds[256], n = 0;

	buf[0] = 0;
	if (!d)
		return;
	while ((e = readdir(d)) && n < 256) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		fds[n++] = atoi(e->d_name);
	}
	closedir(d);
	/* readdir order is not numeric; sort for a stable string */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];

			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		char path[64], link[256];
		size_t used = strlen(buf);
		ssize_t l;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[i]);
		l = readlink(path, link, sizeof(link) - 1);
		link[l < 0 ? 0 : l] = 0;
		/* pipe:[inode] differs per pipe; the fd number and kind do not */
		if (!strncmp(link, "pipe:", 5) || !strncmp(link, "socket:", 7))
			link[strchr(link, ':') - link] = 0;
		snprintf(buf + used, len - used, "%d=%s%s;", fds[i], link,
			 (fcntl(fds[i], F_GETFD) & FD_CLOEXEC) ? "(cloexec)"
							       : "");
	}
}

struct exec_failure_globals g;

void check_arena_cloexec(void)
{
	int fd = -1, n = arena_fds(&fd);

	CHECK(n == 1, "%d luo-arena memfds open, want 1", n);
	if (n == 1)
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC,
		      "arena fd %d lost FD_CLOEXEC", fd);
}

/* A device nobody preserves: shut down by a real exec, never before a
 * failed one (the pre-check must catch every failure first). */
int shutdowns;

static void dev_shutdown(struct liveupdate_device *dev)
{
	(void)dev;
	shutdowns++;
}

static const struct liveupdate_bus plain_bus = {.name = "e2e-plain",
						.shutdown = dev_shutdown};
struct liveupdate_device plain_dev = {.name = "e2e-not-preserved",
				      .bus = &plain_bus};

/* Everything that must hold in NORMAL after a failed attempt. */
void check_normal_and_intact(void)
{
	struct kho_arena_stats st;
	char fds[sizeof(g.fds)];
	int status;
	pid_t pid;

	CHECK(shutdowns == 0,
	      "a device was shut down before the exec failed (%d)", shutdowns);

	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL, "state is %s",
	      liveupdate_state_name(liveupdate_get_state()));
	CHECK(liveupdate_get_num() == 0, "update number %llu",
	      (unsigned long long)liveupdate_get_num());
	CHECK(getenv(LUO_HANDOVER_ENV) == NULL, "%s=%s left in the environment",
	      LUO_HANDOVER_ENV, getenv(LUO_HANDOVER_ENV));
	CHECK(g.data->magic == DATA_MAGIC, "data header damaged");
	CHECK(bad_words(g.data) == 0, "%zu data words damaged",
	      bad_words(g.data));
	CHECK(fdt_check_full(g.user_fdt, USER_FDT_SIZE) == 0,
	      "user FDT damaged");
	check_arena_cloexec();
	fd_table(fds, sizeof(fds));
	CHECK(!strcmp(fds, g.fds),
	      "open fds changed:\n  before %s\n  after  %s", g.fds, fds);
	pid = waitpid(-1, &status, WNOHANG);
	CHECK(pid == -1 && errno == ECHILD,
	      "a child process is left behind (waitpid %d)", (int)pid);
	CHECK(kho_get_stats(&st) == 0, "kho_get_stats failed");
	CHECK(st.allocations == g.stats.allocations &&
		      st.allocated == g.stats.allocated,
	      "arena allocations %llu (%llu bytes), want %llu (%llu bytes)",
	      (unsigned long long)st.allocations,
	      (unsigned long long)st.allocated,
	      (unsigned long long)g.stats.allocations,
	      (unsigned long long)g.stats.allocated);
}

/*
 * Image 1 (the runner's) makes the failing attempts, then the real update;
 * an attempt's argv hands on "must-not-run", so an exec that should have
 * failed and did not is caught in the image it started.
 */
static int run(const struct stage *s)
{
	char tmp[PATH_MAX];

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(g.self, sizeof(g.self), "%s", s->self);
	snprintf(tmp, sizeof(tmp), "%s", g.self);
	snprintf(g.dir, sizeof(g.dir), "%s", dirname(tmp));
	if (s->n == 1)
		return first_image();
	if (s->nhanded && !strcmp(s->handed[0], "must-not-run")) {
		fprintf(stderr,
			"%s: FAIL [%s]: the new image ran although the update must have failed\n",
			test_name, where);
		return 99;
	}
	return updated_image();
}

static const struct stage_test test = {"exec-failure", 50, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
