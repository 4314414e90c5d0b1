// SPDX-License-Identifier: MIT
/*
 * fuzz_replay: run the fuzzing harness without libFuzzer, over every file
 * named on the command line and every file inside the directories named
 * there (not recursively, in name order).  A missing directory is skipped,
 * so an empty regressions/ need not exist.  Each input runs in a child
 * process, so that one that breaks an invariant (the harness aborts) or
 * crashes does not stop the others; the run exits 1 if any failed, after
 * naming them all.  Files named seed-* (real handovers from
 * make_seeds) must also be accepted by luo_init(): if not, the committed
 * seeds no longer match the library's ABI and must be made again.
 *
 * Paths after --regressions are regressions: each must get past the
 * arena version check, or it no longer reaches the defect it was made
 * for (after a version bump: convert it, see README.md).  Every input
 * refused there is counted in the summary line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/abi.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int fuzz_handover_accepted, fuzz_handover_err;

/* Child exit statuses besides 0: */
#define EXIT_STALE_SEED 3
#define EXIT_STALE_REGRESSION 4
#define EXIT_VERSION_REFUSED 5 /* a corpus input: counted, not a failure */

/* Whether an input's arena header has a version this library refuses. */
static bool other_version(const uint8_t *buf, size_t len)
{
	struct kho_arena_header h = {0};

	/* The harness pads a short input with zeros, as the library sees. */
	if (len < sizeof(h.magic))
		return false;
	memcpy(&h, buf, len < sizeof(h) ? len : sizeof(h));
	return h.magic == KHO_ARENA_MAGIC && h.version != KHO_ARENA_VERSION;
}

static bool regressions;

/* Run one input in this process; the exit status of its child. */
static int run_here(const char *path)
{
	bool refused_version;
	FILE *f = fopen(path, "rb");
	const char *name;
	uint8_t *buf = NULL;
	long len;

	if (!f) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) || !(buf = malloc(len ? (size_t)len : 1)) ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
		free(buf);
		fclose(f);
		return 2;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	/* The header check refuses another version with this error and
	 * looks at nothing past it. */
	refused_version = fuzz_handover_err == -EPROTONOSUPPORT &&
			  other_version(buf, (size_t)len);
	free(buf);
	name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (!strncmp(name, "seed-", 5) && !fuzz_handover_accepted) {
		fprintf(stderr,
			"fuzz_replay: %s: this real handover is refused: the seeds are stale, make them again with make_seeds (LUO_FUZZ_VERBOSE=1 says why)\n",
			path);
		return EXIT_STALE_SEED;
	}
	if (refused_version && regressions) {
		fprintf(stderr,
			"fuzz_replay: %s: this regression stops at the arena version check (this library reads version %d) and no longer reaches its defect: convert it with fuzz_convert (tests/fuzz/README.md)\n",
			path, KHO_ARENA_VERSION);
		return EXIT_STALE_REGRESSION;
	}
	return refused_version ? EXIT_VERSION_REFUSED : 0;
}

static size_t nfailed, nversion;

static int run_file(const char *path)
{
	int status;
	pid_t pid;

	printf("fuzz_replay: %s\n", path);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fuzz_replay: fork");
		return -1;
	}
	if (!pid)
		exit(run_here(path));
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_VERSION_REFUSED)
		nversion++;
	if (WIFEXITED(status) && (!WEXITSTATUS(status) ||
				  WEXITSTATUS(status) == EXIT_VERSION_REFUSED))
		return 0;
	if (WIFSIGNALED(status))
		printf("fuzz_replay: FAILED: %s (signal %d)\n", path,
		       WTERMSIG(status));
	else
		printf("fuzz_replay: FAILED: %s (exit %d)\n", path,
		       WEXITSTATUS(status));
	nfailed++;
	return -1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_dir(const char *dir, size_t *count)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, by_name), err = 0;

	if (n < 0) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (list[i]->d_name[0] != '.' && !stat(path, &st) &&
		    S_ISREG(st.st_mode) &&
		    strcmp(list[i]->d_name, "README.md")) {
			err |= run_file(path);
			++*count;
		}
		free(list[i]);
	}
	free(list);
	return err;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int err = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (!strcmp(argv[i], "--regressions")) {
			regressions = true;
			continue;
		}

		if (stat(argv[i], &st)) {
			if (errno == ENOENT) {
				printf("fuzz_replay: %s does not exist, skipped\n",
				       argv[i]);
				continue;
			}
			fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i],
				strerror(errno));
			err = -1;
		} else if (S_ISDIR(st.st_mode)) {
			err |= run_dir(argv[i], &count);
		} else {
			err |= run_file(argv[i]);
			count++;
		}
	}
	printf("fuzz_replay: %zu inputs run, %zu failed, %zu stopped at the arena version check\n",
	       count, nfailed, nversion);
	return err ? 1 : 0;
}
