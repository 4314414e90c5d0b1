// SPDX-License-Identifier: MIT
/*
 * Exec mode rolls back where it can: a new image whose luo_init() refuses
 * the handover (incompatible, corrupt, too old) re-execs the old binary
 * with the same, untouched handover, so the service comes back as the old
 * version, same PID, nothing lost.
 *
 * Every image keeps its command line from luo_init() on, and opens its own
 * executable at its first prepare, outside the blackout (O_PATH on
 * /proc/self/exe: the file this image runs, even after a package upgrade
 * replaced it on disk).  liveupdate_reboot() passes
 * both to the new image with the handover's own value:
 * LUO_ROLLBACK_EXEC=EXE_FD,ARGV_FD,HANDOVER where ARGV_FD is a sealed memfd
 * holding the NUL-separated arguments.  The new image keeps duplicates of
 * the handover's descriptors and the arena header (the only byte the
 * checks write before a refusal), and on a refusal puts them back and
 * calls execveat() on the old executable (unless it is the very file this
 * image runs: that would refuse again).  A new image that crashes after
 * the exec cannot be helped here: that is what spawn mode is for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <luo/abi.h>

#include "log.h"
#include "luo_internal.h"
#include "luo_txn.h"

#define ARGV_MAX (256 << 10)

extern char **environ;

static struct {
	int exe_fd;    /* this image's executable, O_PATH */
	int argv_fd;   /* outgoing: the memfd with our arguments */
	char *cmdline; /* our arguments, NUL separated */
	size_t cmdline_len;
	/* Incoming: what a refusal needs to go back. */
	int old_exe, old_argv;
	char *old_value;
	int saved[4], orig[4];
	struct kho_arena_header header;
	bool have_header;
} rb = {.exe_fd = -1,
	.argv_fd = -1,
	.old_exe = -1,
	.old_argv = -1,
	.saved = {-1, -1, -1, -1},
	.orig = {-1, -1, -1, -1}};

/* This image's executable, opened when first needed. */
static int self_exe(void)
{
	if (rb.exe_fd < 0)
		rb.exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	return rb.exe_fd;
}

void luo_exec_self_args(void)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if (rb.cmdline)
		return;
	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0 &&
	       rb.cmdline_len + (size_t)n <= ARGV_MAX) {
		char *p = realloc(rb.cmdline, rb.cmdline_len + (size_t)n);

		if (!p)
			break;
		rb.cmdline = p;
		memcpy(rb.cmdline + rb.cmdline_len, buf, (size_t)n);
		rb.cmdline_len += (size_t)n;
	}
	close(fd);
}

void luo_exec_rollback_prepare(void)
{
	int fd;

	if (!rb.cmdline_len || rb.argv_fd >= 0 || self_exe() < 0)
		return;
	fd = memfd_create("luo-rollback-argv", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return;
	if (write(fd, rb.cmdline, rb.cmdline_len) != (ssize_t)rb.cmdline_len ||
	    fcntl(fd, F_ADD_SEALS,
		  F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) {
		close(fd);
		return;
	}
	rb.argv_fd = fd;
}

char *luo_exec_rollback_var(const char *handover)
{
	char *var = NULL;

	/* Made at prepare; made here only if that could not be done. */
	luo_exec_rollback_prepare();
	if (rb.argv_fd < 0)
		return NULL;
	if (asprintf(&var, "%s=%d,%d,%s", LUO_ROLLBACK_ENV, rb.exe_fd,
		     rb.argv_fd, handover) < 0) {
		/* Not named: it must not reach the new image. */
		close(rb.argv_fd);
		rb.argv_fd = -1;
		return NULL;
	}
	return var;
}

void luo_exec_rollback_inherit(bool on)
{
	if (on) {
		if (rb.argv_fd < 0)
			return; /* not named: nothing to pass */
		fcntl(rb.exe_fd, F_SETFD, 0);
		fcntl(rb.argv_fd, F_SETFD, 0);
		return;
	}
	/* A cancel leaves no descriptor behind; the next prepare opens
	 * them again. */
	if (rb.argv_fd >= 0)
		close(rb.argv_fd);
	if (rb.exe_fd >= 0)
		close(rb.exe_fd);
	rb.argv_fd = rb.exe_fd = -1;
}

void luo_exec_rollback_save(const char *var)
{
	struct luo_handover_env e;
	char *end;
	long exe, argv;

	exe = strtol(var, &end, 10);
	if (*end != ',')
		return;
	argv = strtol(end + 1, &end, 10);
	if (*end != ',' || exe < 0 || argv < 0 ||
	    luo_parse_handover_env(end + 1, &e))
		return;
	rb.old_exe = (int)exe;
	rb.old_argv = (int)argv;
	/* Not for whatever this image starts. */
	fcntl(rb.old_exe, F_SETFD, FD_CLOEXEC);
	fcntl(rb.old_argv, F_SETFD, FD_CLOEXEC);
	rb.old_value = strdup(end + 1);
	rb.orig[0] = e.arena_fd;
	rb.orig[1] = e.release_fd;
	rb.orig[2] = e.carrier_fd;
	for (int i = 0; i < 3; i++)
		if (rb.orig[i] >= 0)
			rb.saved[i] = fcntl(rb.orig[i], F_DUPFD_CLOEXEC, 100);
	rb.have_header = pread(e.arena_fd, &rb.header, sizeof(rb.header), 0) ==
			 (ssize_t)sizeof(rb.header);
}

/* The saved arguments, split; NULL if they cannot be read back. */
static char **old_argv(void)
{
	struct stat st;
	char *buf, **argv;
	size_t n = 0, k = 0;

	if (fstat(rb.old_argv, &st) || st.st_size <= 0 || st.st_size > ARGV_MAX)
		return NULL;
	buf = calloc(1, (size_t)st.st_size + 1);
	if (!buf ||
	    pread(rb.old_argv, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return NULL;
	}
	for (off_t i = 0; i < st.st_size; i++)
		n += !buf[i];
	argv = calloc(n + 2, sizeof(*argv));
	if (!argv) {
		free(buf);
		return NULL;
	}
	for (off_t i = 0; i < st.st_size; i += (off_t)strlen(buf + i) + 1)
		argv[k++] = buf + i;
	return argv;
}

void luo_exec_rollback_run(int err)
{
	struct stat old, self;
	char **argv;

	if (rb.old_exe < 0 || !rb.old_value)
		return;
	/* The same binary would refuse the same way again. */
	if (!fstat(rb.old_exe, &old) && !fstat(self_exe(), &self) &&
	    old.st_dev == self.st_dev && old.st_ino == self.st_ino)
		return;
	argv = old_argv();
	if (!argv) {
		pr_err("cannot read the old image's arguments back; not going back to it");
		return;
	}
	for (int i = 0; i < 3; i++)
		if (rb.saved[i] >= 0 && dup2(rb.saved[i], rb.orig[i]) < 0)
			return;
	if (rb.have_header && pwrite(rb.orig[0], &rb.header, sizeof(rb.header),
				     0) != (ssize_t)sizeof(rb.header))
		return;
	pr_err("the new image refused the handover (%s): re-executing the old binary with the same handover, same pid %d",
	       strerror(-err), (int)getpid());
	unsetenv(LUO_ROLLBACK_ENV);
	setenv(LUO_HANDOVER_ENV, rb.old_value, 1);
	fflush(NULL);
	syscall(SYS_execveat, rb.old_exe, "", argv, environ, AT_EMPTY_PATH);
	pr_err("cannot re-execute the old binary: %s; starting fresh",
	       strerror(errno));
	unsetenv(LUO_HANDOVER_ENV);
	free(argv[0]);
	free(argv);
}

void luo_exec_rollback_forget(void)
{
	for (int i = 0; i < 3; i++) {
		if (rb.saved[i] >= 0)
			close(rb.saved[i]);
		rb.saved[i] = rb.orig[i] = -1;
	}
	if (rb.old_exe >= 0)
		close(rb.old_exe);
	if (rb.old_argv >= 0)
		close(rb.old_argv);
	rb.old_exe = rb.old_argv = -1;
	free(rb.old_value);
	rb.old_value = NULL;
	rb.have_header = false;
}

void luo_exec_self_close(void)
{
	if (rb.exe_fd >= 0)
		close(rb.exe_fd);
	rb.exe_fd = -1;
	free(rb.cmdline);
	rb.cmdline = NULL;
	rb.cmdline_len = 0;
}
