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
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "../common/mix.h"

#define DATA_SIZE (1u << 20)
#define DATA_MAGIC 0x4558454346414c31ULL /* "EXECFAL1" */
#define CONST_PREPARE 0x1122334455667788ULL
#define CONST_FREEZE 0x8877665544332211ULL
#define USER_FDT_SIZE 1024
#define NSUB 3
#define MAX_EVENTS 64

extern char **environ;

static int failures;
static const char *where = "";

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			failures++;                                            \
			fprintf(stderr,                                        \
				"exec-failure: FAIL [%s] %s:%d: %s: ", where,  \
				__FILE__, __LINE__, #cond);                    \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

/* Preserved data block: a header, then a pattern. */
struct data_block {
	uint64_t magic;
	uint64_t self_off; /* its own offset, as the first image saw it */
	uint64_t failed_attempts;
	uint64_t words[];
};

#define DATA_WORDS ((DATA_SIZE - sizeof(struct data_block)) / 8)

static void fill_data(struct data_block *d)
{
	for (size_t i = 0; i < DATA_WORDS; i++)
		d->words[i] = mix(i ^ 0xe2e);
}

static size_t bad_words(const struct data_block *d)
{
	size_t bad = 0;

	for (size_t i = 0; i < DATA_WORDS; i++)
		bad += d->words[i] != mix(i ^ 0xe2e);
	return bad;
}

/* ---- subsystems recording every callback ---- */

struct sub_ctl {
	int refuse_prepare; /* -errno to return, or 0 */
	int refuse_freeze;
	uint64_t prepare_val;
	uint64_t freeze_val; /* 0: freeze leaves the value alone */
	uint64_t cancel_data;
	int boot_calls, finish_calls;
	uint64_t boot_data, finish_data;
};

static struct sub_ctl ctl[NSUB];
static struct liveupdate_subsystem subs[NSUB];
static const char *const sub_names[NSUB] = {"e2e.data", "e2e-const",
					    "e2e_subtree"};
static char events[MAX_EVENTS][8];
static int nevents;

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

static void register_subsystems(void)
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

static void events_string(char *buf, size_t len)
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
static void fd_table(char *buf, size_t len)
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

static struct {
	struct data_block *data;
	void *user_fdt;
	char fds[8192];
	struct kho_arena_stats stats;
	char self[PATH_MAX];
	char dir[PATH_MAX];
} g;

static void check_arena_cloexec(void)
{
	int fd = -1, n = arena_fds(&fd);

	CHECK(n == 1, "%d luo-arena memfds open, want 1", n);
	if (n == 1)
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC,
		      "arena fd %d lost FD_CLOEXEC", fd);
}

/* Everything that must hold in NORMAL after a failed attempt. */
/* A device nobody preserves: shut down by a real exec, never before a
 * failed one (the pre-check must catch every failure first). */
static int shutdowns;

static void dev_shutdown(struct liveupdate_device *dev)
{
	(void)dev;
	shutdowns++;
}

static const struct liveupdate_bus plain_bus = {.name = "e2e-plain",
						.shutdown = dev_shutdown};
static struct liveupdate_device plain_dev = {.name = "e2e-not-preserved",
					     .bus = &plain_bus};

static void check_normal_and_intact(void)
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

enum how {
	PREPARE_REBOOT,	       /* liveupdate_prepare(), then reboot */
	PREPARE_FREEZE_REBOOT, /* prepare, liveupdate_freeze(), reboot */
	PREPARE_ONLY,	       /* liveupdate_prepare() is expected to fail */
	PREPARE_FREEZE,	       /* liveupdate_freeze() is expected to fail */
	REBOOT_ONLY,	       /* reboot straight from NORMAL */
};

static void attempt(const char *name, enum how how, const char *path,
		    int expect, const char *expect_events)
{
	char *const argv[] = {g.self, "--must-not-run", NULL};
	char got_events[512];
	int err = 0;

	where = name;
	nevents = 0;
	for (int i = 0; i < NSUB; i++)
		ctl[i].cancel_data = 0;
	if (how != REBOOT_ONLY) {
		err = liveupdate_prepare();
		if (how == PREPARE_ONLY)
			goto done;
		CHECK(err == 0, "liveupdate_prepare: %d", err);
		CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_PREPARED,
		      "state %s after prepare",
		      liveupdate_state_name(liveupdate_get_state()));
	}
	if (how == PREPARE_FREEZE || how == PREPARE_FREEZE_REBOOT) {
		err = liveupdate_freeze();
		if (how == PREPARE_FREEZE)
			goto done;
		CHECK(err == 0, "liveupdate_freeze: %d", err);
	}
	err = liveupdate_reboot(path, argv, NULL);
done:
	CHECK(err == expect, "returned %d (%s), want %d (%s)", err,
	      strerror(-err), expect, strerror(-expect));
	events_string(got_events, sizeof(got_events));
	CHECK(!strcmp(got_events, expect_events),
	      "callbacks were \"%s\", want \"%s\"", got_events, expect_events);
	/* cancel gets what prepare/freeze left */
	for (int i = 0; i < NSUB; i++) {
		char c[4];
		uint64_t want = ctl[i].prepare_val;

		snprintf(c, sizeof(c), "C%d", i);
		if (!strstr(expect_events, c))
			continue;
		snprintf(c, sizeof(c), "F%d", i);
		if (strstr(expect_events, c) && ctl[i].freeze_val &&
		    !ctl[i].refuse_freeze)
			want = ctl[i].freeze_val;
		CHECK(ctl[i].cancel_data == want,
		      "cancel of %s got %#llx, want %#llx", sub_names[i],
		      (unsigned long long)ctl[i].cancel_data,
		      (unsigned long long)want);
	}
	check_normal_and_intact();
	printf("exec-failure: %-28s -> %-4d %-16s %s\n", name, err,
	       strerror(-err), got_events);
}

static int make_file(const char *name, mode_t mode, const char *content,
		     char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s.%d", g.dir, name, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
		close(fd);
		return -EIO;
	}
	/* closed before the exec, or execve() says ETXTBSY */
	close(fd);
	return chmod(path, mode) ? -errno : 0;
}

/* A copy of this very program whose dynamic loader does not exist. */
static int make_noloader(char *path, size_t len)
{
	int in = open(g.self, O_RDONLY | O_CLOEXEC), out, err = 0;
	struct stat st;
	Elf64_Ehdr eh;
	char *buf;

	if (in < 0 || fstat(in, &st))
		return -errno;
	buf = malloc((size_t)st.st_size);
	if (!buf || read(in, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		close(in);
		return -EIO;
	}
	close(in);
	memcpy(&eh, buf, sizeof(eh));
	err = -ENOENT; /* no PT_INTERP: a static build, nothing to test */
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_INTERP && ph.p_filesz > 2) {
			buf[ph.p_offset + 1] = 'X'; /* "/Xib64/ld-linux..." */
			err = 0;
		}
	}
	snprintf(path, len, "%s/e2e-no-loader.%d", g.dir, (int)getpid());
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (!err &&
	    (out < 0 || write(out, buf, (size_t)st.st_size) != st.st_size))
		err = -EIO;
	if (out >= 0)
		close(out);
	free(buf);
	return err;
}

static int first_image(void)
{
	static const char *const full =
		"P0 P1 P2 F0 F1 F2 C2 C1 C0"; /* freeze runs inside reboot */
	char missing[PATH_MAX], noexec[PATH_MAX], garbage[PATH_MAX];
	char nointerp[PATH_MAX], noname[PATH_MAX], object[PATH_MAX];
	char noloader[PATH_MAX];
	char value[64];
	char **envp;
	size_t n = 0;
	int err, node;

	where = "setup";
	CHECK(getenv(LUO_HANDOVER_ENV) == NULL, "test started with %s set",
	      LUO_HANDOVER_ENV);
	err = luo_init(NULL);
	CHECK(err == 0, "luo_init: %d", err);
	if (err)
		return 1;
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL, "state %s",
	      liveupdate_state_name(liveupdate_get_state()));

	err = kho_alloc_preserve(DATA_SIZE, (void **)&g.data);
	CHECK(err == 0, "kho_alloc_preserve(data): %d", err);
	err = err ?: kho_alloc_preserve(USER_FDT_SIZE, &g.user_fdt);
	CHECK(err == 0, "kho_alloc_preserve(fdt): %d", err);
	if (err)
		return 1;
	g.data->magic = DATA_MAGIC;
	g.data->self_off = kho_ptr_to_offset(g.data);
	fill_data(g.data);
	err = fdt_create_empty_tree(g.user_fdt, USER_FDT_SIZE);
	err = err
		      ?: fdt_setprop_string(g.user_fdt, 0, "compatible",
					    "e2e-exec-failure-v1");
	node = err ?: fdt_add_subnode(g.user_fdt, 0, "data");
	err = node < 0 ? node
		       : fdt_setprop_u64(g.user_fdt, node, "offset",
					 g.data->self_off);
	CHECK(err == 0, "building the user FDT: %s", fdt_strerror(err));
	err = kho_add_subtree("e2e-user", g.user_fdt);
	CHECK(err == 0, "kho_add_subtree: %d", err);

	ctl[0].prepare_val = g.data->self_off;
	ctl[1].prepare_val = CONST_PREPARE;
	ctl[1].freeze_val = CONST_FREEZE; /* freeze changes its value */
	ctl[2].prepare_val = kho_ptr_to_offset(g.user_fdt);
	register_subsystems();
	CHECK(liveupdate_device_register(&plain_dev) == 0, "device");
	if (failures)
		return 1;

	/* Files to fail the exec with, next to this (executable) binary. */
	snprintf(missing, sizeof(missing), "%s/e2e-does-not-exist.%d", g.dir,
		 (int)getpid());
	err = make_file("e2e-noexec", 0644, "#!/bin/sh\nexit 99\n", noexec,
			sizeof(noexec));
	CHECK(err == 0, "creating %s: %s", noexec, strerror(-err));
	err = make_file("e2e-garbage", 0755,
			"\x01\x02\x03 this is not a program\n", garbage,
			sizeof(garbage));
	CHECK(err == 0, "creating %s: %s", garbage, strerror(-err));
	err = make_file("e2e-no-interp", 0755,
			"#!/nonexistent/e2e-interpreter\nexit 0\n", nointerp,
			sizeof(nointerp));
	CHECK(err == 0, "creating %s: %s", nointerp, strerror(-err));
	err = make_file("e2e-empty-shebang", 0755, "#!\n", noname,
			sizeof(noname));
	CHECK(err == 0, "creating %s: %s", noname, strerror(-err));
	/* An ELF header, but an object file, not a program. */
	err = make_file("e2e-elf-object", 0755,
			"\x7f"
			"ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"
			"\x01",
			object, sizeof(object));
	CHECK(err == 0, "creating %s: %s", object, strerror(-err));
	err = make_noloader(noloader, sizeof(noloader));
	CHECK(err == 0, "creating %s: %s", noloader, strerror(-err));
	if (failures)
		goto out;

	CHECK(kho_get_stats(&g.stats) == 0, "kho_get_stats");
	fd_table(g.fds, sizeof(g.fds));
	where = "baseline";
	check_arena_cloexec();

	for (int round = 0; round < 2; round++) {
		attempt("missing-path", PREPARE_REBOOT, missing, -ENOENT, full);
		attempt("no-exec-permission", PREPARE_REBOOT, noexec, -EACCES,
			full);
		attempt("garbage-content", PREPARE_REBOOT, garbage, -ENOEXEC,
			full);
		attempt("directory", PREPARE_REBOOT, g.dir, -EACCES, full);
		attempt("script-interpreter-missing", PREPARE_REBOOT, nointerp,
			-ENOENT, full);
		attempt("script-without-interpreter", PREPARE_REBOOT, noname,
			-ENOEXEC, full);
		attempt("elf-object-file", PREPARE_REBOOT, object, -ENOEXEC,
			full);
		attempt("elf-loader-missing", PREPARE_REBOOT, noloader, -ENOENT,
			full);
	}
	/* The path is valid: only the refused freeze keeps it from running. */
	ctl[1].refuse_freeze = -EAGAIN;
	attempt("freeze-refused-in-reboot", PREPARE_REBOOT, g.self, -EAGAIN,
		"P0 P1 P2 F0 F1 C2 C1 C0");
	ctl[1].refuse_freeze = 0;
	attempt("reboot-from-frozen", PREPARE_FREEZE_REBOOT, missing, -ENOENT,
		full);
	ctl[2].refuse_prepare = -EPERM;
	attempt("prepare-refused", PREPARE_ONLY, NULL, -EPERM,
		"P0 P1 P2 C1 C0");
	ctl[2].refuse_prepare = 0;
	ctl[0].refuse_freeze = -EIO;
	attempt("freeze-refused", PREPARE_FREEZE, NULL, -EIO,
		"P0 P1 P2 F0 C2 C1 C0");
	ctl[0].refuse_freeze = 0;
	attempt("reboot-from-normal", REBOOT_ONLY, g.self, -EINVAL, "");
	attempt("missing-path-again", PREPARE_REBOOT, missing, -ENOENT, full);
	g.data->failed_attempts = 22;

out:
	unlink(noexec);
	unlink(garbage);
	unlink(nointerp);
	unlink(noname);
	unlink(object);
	unlink(noloader);
	if (failures) {
		fprintf(stderr,
			"exec-failure: %d check(s) failed before the real update\n",
			failures);
		return 1;
	}

	/*
	 * The real update, into this very binary.  The environment handed
	 * over already holds a stale LUO_HANDOVER_FD: the library must
	 * replace it, not add a second one.
	 */
	where = "real-update";
	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp)
		return 1;
	memcpy(envp, environ, n * sizeof(*envp));
	snprintf(value, sizeof(value), "%s=999", LUO_HANDOVER_ENV);
	envp[n] = value;
	envp[n + 1] = "E2E_EXEC_FAILURE_MARK=1";
	nevents = 0;
	err = liveupdate_prepare();
	CHECK(err == 0, "liveupdate_prepare: %d", err);
	{
		char *const argv[] = {g.self, "--updated", NULL};

		fflush(stdout);
		err = liveupdate_reboot(g.self, argv, envp);
	}
	CHECK(0, "liveupdate_reboot into %s returned %d (%s)", g.self, err,
	      strerror(-err));
	free(envp);
	return 1;
}

/* ---- the new image ---- */

static int updated_image(void)
{
	char got_events[512];
	struct liveupdate_timing t;
	struct data_block *d = NULL;
	const void *fdt = NULL;
	uint64_t v[NSUB];
	int err, node, len;
	const fdt64_t *prop;

	where = "updated";
	CHECK(getenv(LUO_HANDOVER_ENV) != NULL, "no %s in the new image",
	      LUO_HANDOVER_ENV);
	CHECK(getenv("E2E_EXEC_FAILURE_MARK") &&
		      !strcmp(getenv("E2E_EXEC_FAILURE_MARK"), "1"),
	      "the caller's envp did not reach the new image");
	err = luo_init(NULL);
	CHECK(err == 0, "luo_init in the new image: %d (%s)", err,
	      strerror(-err));
	if (err)
		return 1;
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "state %s",
	      liveupdate_state_name(liveupdate_get_state()));
	CHECK(liveupdate_get_num() == 1, "liveupdate_get_num() = %llu",
	      (unsigned long long)liveupdate_get_num());
	CHECK(getenv(LUO_HANDOVER_ENV) == NULL, "%s still set after luo_init",
	      LUO_HANDOVER_ENV);
	CHECK(liveupdate_get_timing(&t) == 0 && t.prepare_ns &&
		      t.prepare_ns <= t.freeze_ns && t.freeze_ns <= t.exec_ns &&
		      t.exec_ns <= t.adopted_ns,
	      "timing %llu %llu %llu %llu", (unsigned long long)t.prepare_ns,
	      (unsigned long long)t.freeze_ns, (unsigned long long)t.exec_ns,
	      (unsigned long long)t.adopted_ns);
	check_arena_cloexec();

	/* Data of subsystems not registered yet is readable already. */
	for (int i = 0; i < NSUB; i++) {
		struct liveupdate_subsystem probe = {.name = sub_names[i]};

		err = liveupdate_get_subsystem_data(&probe, &v[i]);
		CHECK(err == 0, "liveupdate_get_subsystem_data(%s): %d",
		      sub_names[i], err);
	}
	{
		struct liveupdate_subsystem probe = {.name = "e2e-unknown"};
		uint64_t x;

		err = liveupdate_get_subsystem_data(&probe, &x);
		CHECK(err == -ENOENT, "data for an unknown subsystem: %d", err);
	}
	CHECK(v[1] == CONST_FREEZE,
	      "%s carried %#llx, want the freeze value %#llx", sub_names[1],
	      (unsigned long long)v[1], (unsigned long long)CONST_FREEZE);

	nevents = 0;
	register_subsystems();
	events_string(got_events, sizeof(got_events));
	CHECK(!strcmp(got_events, "B0 B1 B2"), "boot callbacks \"%s\"",
	      got_events);
	for (int i = 0; i < NSUB; i++)
		CHECK(ctl[i].boot_calls == 1 && ctl[i].boot_data == v[i],
		      "%s: boot called %d times with %#llx, want once with %#llx",
		      sub_names[i], ctl[i].boot_calls,
		      (unsigned long long)ctl[i].boot_data,
		      (unsigned long long)v[i]);

	err = kho_restore(v[0], DATA_SIZE, (void **)&d);
	CHECK(err == 0, "kho_restore(data at %#llx): %d",
	      (unsigned long long)v[0], err);
	if (!err) {
		CHECK(d->magic == DATA_MAGIC, "data magic %#llx",
		      (unsigned long long)d->magic);
		CHECK(d->self_off == v[0],
		      "data says it was at %#llx, not %#llx",
		      (unsigned long long)d->self_off,
		      (unsigned long long)v[0]);
		CHECK(d->failed_attempts == 22, "failed_attempts %llu",
		      (unsigned long long)d->failed_attempts);
		CHECK(bad_words(d) == 0, "%zu data words damaged",
		      bad_words(d));
	}
	err = kho_retrieve_subtree("e2e-user", &fdt);
	CHECK(err == 0, "kho_retrieve_subtree: %d", err);
	if (!err) {
		CHECK(kho_ptr_to_offset(fdt) == v[2],
		      "subtree at %#llx, the subsystem said %#llx",
		      (unsigned long long)kho_ptr_to_offset(fdt),
		      (unsigned long long)v[2]);
		CHECK(fdt_node_check_compatible(fdt, 0,
						"e2e-exec-failure-v1") == 0,
		      "subtree compatible");
		node = fdt_path_offset(fdt, "/data");
		prop = node < 0 ? NULL : fdt_getprop(fdt, node, "offset", &len);
		CHECK(prop && len == 8 && fdt64_ld(prop) == v[0],
		      "subtree /data/offset");
	}

	nevents = 0;
	err = liveupdate_finish();
	CHECK(err == 0, "liveupdate_finish: %d", err);
	events_string(got_events, sizeof(got_events));
	CHECK(!strcmp(got_events, "X0 X1 X2"), "finish callbacks \"%s\"",
	      got_events);
	for (int i = 0; i < NSUB; i++)
		CHECK(ctl[i].finish_calls == 1 && ctl[i].finish_data == v[i],
		      "%s: finish called %d times with %#llx", sub_names[i],
		      ctl[i].finish_calls,
		      (unsigned long long)ctl[i].finish_data);
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
	      "state %s after finish",
	      liveupdate_state_name(liveupdate_get_state()));
	err = liveupdate_get_subsystem_data(&subs[0], &v[0]);
	CHECK(err == -ENODATA, "subsystem data after finish: %d", err);
	if (d)
		CHECK(bad_words(d) == 0, "restored data damaged by finish");
	err = luo_exit();
	CHECK(err == 0, "luo_exit: %d", err);

	if (failures) {
		fprintf(stderr,
			"exec-failure: %d check(s) failed in the new image\n",
			failures);
		return 1;
	}
	printf("exec-failure: PASS: 22 failed updates left everything intact; the real update #1 carried data, subsystems and subtree\n");
	return 0;
}

int main(int argc, char **argv)
{
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	n = readlink("/proc/self/exe", g.self, sizeof(g.self) - 1);
	if (n < 0) {
		perror("readlink /proc/self/exe");
		return 1;
	}
	g.self[n] = 0;
	{
		char tmp[PATH_MAX];

		snprintf(tmp, sizeof(tmp), "%s", g.self);
		snprintf(g.dir, sizeof(g.dir), "%s", dirname(tmp));
	}

	if (argc > 1 && !strcmp(argv[1], "--must-not-run")) {
		fprintf(stderr,
			"exec-failure: FAIL: the new image ran although the update must have failed\n");
		return 99;
	}
	if (argc > 1 && !strcmp(argv[1], "--updated"))
		return updated_image();
	return first_image();
}
