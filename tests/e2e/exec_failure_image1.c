// SPDX-License-Identifier: MIT
/* exec-failure, image 1: 22 updates whose exec fails or that a callback
 * refuses, each checked to leave everything intact; then the real update
 * into image 2. */
#define _GNU_SOURCE

#include "exec_failure.h"

extern char **environ;

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
	err = liveupdate_reboot(path, g.must_not_run, NULL);
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
	printf("%s: %-28s -> %-4d %-16s %s\n", test_name, name, err,
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

int first_image(void)
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
	g.must_not_run = stage_next_argv((char *const[]){"must-not-run", NULL});
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
			"%s: FAIL [%s]: %d check(s) failed before the real update\n",
			test_name, where, failures);
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
	fflush(stdout);
	err = liveupdate_reboot(g.self, stage_next_argv(NULL), envp);
	CHECK(0, "liveupdate_reboot into %s returned %d (%s)", g.self, err,
	      strerror(-err));
	free(envp);
	return 1;
}
