// SPDX-License-Identifier: MIT
/*
 * Spawn mode checks each preserved file's identity when it is received
 * ahead, before the freeze, so that retrieving the files after adoption
 * makes no fstat()/statx() at all; and the sealed session blocks stay the
 * authority: a file whose identity there differs from what arrived is
 * still refused with -ESTALE.
 *
 *   ahead-identity           the test: runs the service under strace -f
 *   ahead-identity --old OUT the service: preserves NFILES sockets, and at
 *                            freeze rewrites the inode the sealed block
 *                            records for the last one; updates into itself
 *                            in spawn mode
 *   (new image)              retrieves every socket between two markers
 *                            (write(-1, ...)), checks the results, writes
 *                            "ok" or the failure to OUT
 *
 * The test counts the stat-family calls the new image made between the
 * markers in strace's log.  Skips (77) without strace or where ptrace is
 * not allowed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/abi.h>
#include <luo/luo.h>

#include "common.h"

#define NFILES 200
#define BEGIN_MARK "ahead-identity: retrieval begins"
#define END_MARK "ahead-identity: retrieval ends"

static uint64_t victim_dev, victim_ino;

/*
 * Freeze, before the seal: the victim's entry (struct luo_file_fd_ser)
 * gets another inode, as a corrupt or wrong handover would have it.  The
 * file on the carrier is still the real one.
 */
static int sub_freeze(struct liveupdate_subsystem *h, uint64_t *data)
{
	struct luo_file_fd_ser want = {
		.mode = S_IFSOCK, .dev = victim_dev, .ino = victim_ino};
	int fd = arena_memfd();
	struct stat st;
	char *buf;
	size_t off = sizeof(want.index);

	(void)h;
	(void)data;
	if (fd < 0 || fstat(fd, &st) || !(buf = malloc((size_t)st.st_size)))
		return -EIO;
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return -EIO;
	}
	for (size_t i = 0; i + sizeof(want) <= (size_t)st.st_size; i += 4) {
		if (memcmp(buf + i + off, (char *)&want + off,
			   sizeof(want) - off))
			continue;
		want.ino = victim_ino + 1000003;
		free(buf);
		return pwrite(fd, &want.ino, sizeof(want.ino),
			      (off_t)(i +
				      offsetof(struct luo_file_fd_ser, ino))) ==
				       (ssize_t)sizeof(want.ino)
			       ? 0
			       : -EIO;
	}
	free(buf);
	fprintf(stderr, "old image: the victim's entry is not in the arena\n");
	return -EIO;
}

static const struct liveupdate_subsystem_ops ops = {.freeze = sub_freeze};
static struct liveupdate_subsystem sub = {.ops = &ops, .name = "ahead-test"};

static int old_image(const char *self, const char *out)
{
	char *argv[] = {(char *)self, "--new", (char *)out, NULL};
	struct liveupdate_update_opts o = {.mode = LIVEUPDATE_MODE_SPAWN,
					   .path = self,
					   .argv = argv,
					   .deadline_ms = 60000};
	struct liveupdate_update_report r;
	struct luo_session *s;
	int err;

	/* The freeze callback edits the sealed block: read it at the seal. */
	setenv("LUO_SEAL_FULL", "1", 1);
	if (luo_init(&(struct luo_init_opts){0}) ||
	    liveupdate_register_subsystem(&sub) ||
	    liveupdate_create_session("ahead", &s))
		return 1;
	for (int i = 1; i <= NFILES; i++) {
		int sp[2];
		struct stat st;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) ||
		    liveupdate_session_preserve_fd(s, sp[0], (uint64_t)i))
			return 1;
		if (i == NFILES) {
			if (fstat(sp[0], &st))
				return 1;
			victim_dev = st.st_dev;
			victim_ino = st.st_ino;
		}
		close(sp[0]); /* the library holds it; the peer stays open */
	}
	err = liveupdate_update(&o, &r);
	if (err) {
		fprintf(stderr, "old image: the update failed: %s (%s)\n",
			strerror(-err), r.text);
		return 1;
	}
	return 0;
}

static int new_image(const char *out)
{
	static int fds[NFILES + 1], errs[NFILES + 1];
	char msg[256] = "ok";
	struct luo_session *s;
	FILE *f;

	if (luo_init(&(struct luo_init_opts){0}) ||
	    liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED ||
	    liveupdate_retrieve_session("ahead", &s)) {
		snprintf(msg, sizeof(msg), "the new image did not adopt");
		goto out;
	}
	if (write(-1, BEGIN_MARK, strlen(BEGIN_MARK)) >= 0)
		return 1;
	for (int i = 1; i <= NFILES; i++)
		errs[i] =
			liveupdate_session_retrieve_fd(s, (uint64_t)i, &fds[i]);
	if (write(-1, END_MARK, strlen(END_MARK)) >= 0)
		return 1;
	for (int i = 1; i <= NFILES; i++) {
		int type = 0;
		socklen_t len = sizeof(type);
		int want = i == NFILES ? -ESTALE : 0;

		if (errs[i] != want) {
			snprintf(msg, sizeof(msg),
				 "token %d: retrieval returned %d, expected %d",
				 i, errs[i], want);
			break;
		}
		if (!want &&
		    (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &len) ||
		     type != SOCK_STREAM)) {
			snprintf(msg, sizeof(msg),
				 "token %d: not the preserved socket", i);
			break;
		}
	}
	liveupdate_session_finish(s);
	liveupdate_finish();
out:
	f = fopen(out, "w");
	if (!f)
		return 1;
	fprintf(f, "%s\n", msg);
	fclose(f);
	return 0;
}

static int is_stat_call(const char *call)
{
	static const char *const names[] = {"fstat(",	"newfstatat(", "statx(",
					    "fstat64(", "fstatat64(",  "stat(",
					    "lstat(",	NULL};

	for (int i = 0; names[i]; i++)
		if (!strncmp(call, names[i], strlen(names[i])))
			return 1;
	return 0;
}

/* The stat-family calls between the markers, or -1 without markers. */
static int count_between_marks(const char *trace)
{
	FILE *f = fopen(trace, "r");
	char line[4096];
	long pid = -1;
	int count = -1;

	while (f && fgets(line, sizeof(line), f)) {
		char *end;
		long p = strtol(line, &end, 10);

		while (*end == ' ')
			end++;
		if (pid < 0) {
			if (strstr(line, BEGIN_MARK)) {
				pid = p;
				count = 0;
			}
			continue;
		}
		if (p != pid)
			continue;
		if (strstr(line, END_MARK))
			break;
		if (is_stat_call(end)) {
			if (count < 5)
				fprintf(stderr, "in the blackout: %s", line);
			count++;
		}
	}
	if (f)
		fclose(f);
	return count;
}

static int run_test(const char *self)
{
	char dir[] = "/tmp/luo-ahead-XXXXXX", trace[256], out[256], res[256];
	int status, n;
	pid_t pid;
	FILE *f;

	if (access("/usr/bin/strace", X_OK)) {
		printf("SKIP: strace is not installed\n");
		return 77;
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(trace, sizeof(trace), "%s/trace", dir);
	snprintf(out, sizeof(out), "%s/result", dir);
	pid = fork();
	if (pid == 0) {
		/* LeakSanitizer cannot run under ptrace (sanitized builds). */
		const char *asan = getenv("ASAN_OPTIONS");
		char opts[1024];

		snprintf(opts, sizeof(opts), "%s%sdetect_leaks=0",
			 asan ? asan : "", asan && *asan ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
		execl("/usr/bin/strace", "strace", "-f", "-qq", "-o", trace,
		      "-e", "trace=%stat,%fstat,write", "-e", "signal=none",
		      self, "--old", out, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		f = fopen(trace, "r");
		/* strace itself could not trace (no ptrace here). */
		if (f && fgets(res, sizeof(res), f) && strstr(res, "PTRACE")) {
			printf("SKIP: ptrace is not allowed: %s", res);
			return 77;
		}
		fprintf(stderr,
			"FAIL: the service under strace ended with %#x\n",
			status);
		return 1;
	}
	f = fopen(out, "r");
	if (!f || !fgets(res, sizeof(res), f)) {
		fprintf(stderr, "FAIL: the new image wrote no result\n");
		return 1;
	}
	fclose(f);
	if (strcmp(res, "ok\n")) {
		fprintf(stderr, "FAIL: %s", res);
		return 1;
	}
	n = count_between_marks(trace);
	if (n != 0) {
		fprintf(stderr,
			"FAIL: retrieving %d files after a spawn-mode adoption made %d stat calls (expected none: checked when received ahead)\n",
			NFILES, n);
		return 1;
	}
	printf("ok: %d files retrieved with no stat call, the one whose sealed identity differs refused with -ESTALE\n",
	       NFILES);
	unlink(trace);
	unlink(out);
	rmdir(dir);
	return 0;
}

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return 1;
	self[n] = 0;
	if (getenv(LUO_SPAWN_ENV) && argc == 3 && !strcmp(argv[1], "--new"))
		return new_image(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--old"))
		return old_image(self, argv[2]);
	return run_test(self);
}
