// SPDX-License-Identifier: MIT
/*
 * foreign-fds: numbers in LUO_HANDOVER_FD that do not name the library's
 * own descriptors are left alone, and the real ones are still taken.
 *
 * Each refusal case runs luo_init() in a fresh child with the variable
 * set by hand:
 *   - "77,0,1" with standard input a pipe: fd 77 is not open, the
 *     "release" field names stdin and the "helper" is init: stdin must
 *     stay open (it used to be closed, and the fresh arena became fd 0);
 *   - the release field naming the write end of a pipe of the service,
 *     with the service's own child as the helper: left open with its
 *     descriptor flags, child not reaped;
 *   - the same with LUO_INIT_IGNORE_HANDOVER.
 * Then a real update into itself: the new image must take the real
 * helper (no warning) and the helper must be gone after
 * liveupdate_finish().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

static int failures;
static int warnings;
static char last_warning[512];

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "foreign-fds: FAIL %s:%d: ", __FILE__, \
				__LINE__);                                     \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			failures++;                                            \
		}                                                              \
	} while (0)

static void on_log(enum luo_log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (level == LUO_LOG_WARN) {
		warnings++;
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
	}
	fprintf(stderr, "luo: %s\n", msg);
}

static unsigned long ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : (unsigned long)st.st_ino;
}

/* Run @fn in a child; its exit status is the number of failures. */
static void in_child(const char *what, int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		abort();
	if (!pid)
		_exit(fn());
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", what);
}

static int case_stdin_pipe(void)
{
	int p[2];
	unsigned long ino;

	if (pipe(p) || dup2(p[0], 0) < 0)
		return 1;
	close(p[0]);
	ino = ino_of(0);
	close(77);
	setenv("LUO_HANDOVER_FD", "77,0,1", 1);
	CHECK(luo_init(NULL) == -EBADF, "refused");
	CHECK(fcntl(0, F_GETFD) >= 0 && ino_of(0) == ino,
	      "standard input is still the pipe");
	CHECK(luo_init(NULL) == 0, "fresh start");
	CHECK(fcntl(0, F_GETFD) >= 0 && ino_of(0) == ino,
	      "the fresh arena did not take fd 0");
	return failures;
}

/* A pipe and a child of ours that are not the library's helper. */
static int foreign_helper(bool ignore)
{
	struct luo_init_opts opts = {.flags = ignore ? LUO_INIT_IGNORE_HANDOVER
						     : 0};
	char env[64];
	int p[2], status;
	pid_t child;

	/* Not close-on-exec: the library must leave its flags as they are. */
	if (pipe(p))
		return 1;
	child = fork();
	if (!child) {
		pause();
		_exit(0);
	}
	close(77);
	snprintf(env, sizeof(env), "77,%d,%d", p[1], (int)child);
	setenv("LUO_HANDOVER_FD", env, 1);
	CHECK(luo_init(&opts) == (ignore ? 0 : -EBADF), "init");
	CHECK(fcntl(p[1], F_GETFD) == 0,
	      "the service's pipe is still open, and not close-on-exec");
	CHECK(waitpid(child, &status, WNOHANG) == 0,
	      "the service's child was not reaped");
	CHECK(warnings >= 1 && strstr(last_warning, "left alone"),
	      "one warning says so");
	kill(child, SIGKILL);
	CHECK(waitpid(child, &status, 0) == child,
	      "the service can still reap its child");
	return failures;
}

static int case_foreign_helper(void)
{
	luo_set_log_handler(on_log, NULL);
	return foreign_helper(false);
}

static int case_foreign_helper_ignored(void)
{
	luo_set_log_handler(on_log, NULL);
	return foreign_helper(true);
}

/* The new image of the real update. */
static int image2(const char *env)
{
	int fields = 0;
	pid_t helper = 0;
	char path[64];
	struct stat st;

	for (const char *p = env; p && *p; p++)
		if (*p == ',' && ++fields == 2)
			helper = (pid_t)atoi(p + 1);
	luo_set_log_handler(on_log, NULL);
	CHECK(luo_init(NULL) == 0, "adopted");
	CHECK(warnings == 0, "no warning: %s", last_warning);
	CHECK(helper > 0, "a helper is named (%s)", env ? env : "");
	CHECK(liveupdate_finish() == 0, "finish");
	/* The helper exits once released; the library reaps it. */
	snprintf(path, sizeof(path), "/proc/%d", (int)helper);
	for (int i = 0; i < 10000 && !stat(path, &st); i++)
		usleep(1000);
	CHECK(stat(path, &st), "the helper %d is gone", (int)helper);
	if (!failures)
		printf("foreign-fds: PASS\n");
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *const args[] = {self, "--image2", NULL};
	int err;

	if (n < 0)
		return 1;
	self[n] = 0;
	alarm(30);
	if (argc > 1 && !strcmp(argv[1], "--image2"))
		return image2(getenv("LUO_HANDOVER_FD"));
	in_child("stdin pipe named as the release fd", case_stdin_pipe);
	in_child("a foreign pipe and child", case_foreign_helper);
	in_child("a foreign pipe and child, handover ignored",
		 case_foreign_helper_ignored);
	if (failures)
		return 1;
	unsetenv("LUO_HANDOVER_FD");
	if (luo_init(NULL) || liveupdate_prepare())
		return 1;
	err = liveupdate_reboot(self, args, NULL);
	fprintf(stderr, "foreign-fds: reboot failed: %s\n", strerror(-err));
	return 1;
}
