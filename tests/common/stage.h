/* SPDX-License-Identifier: MIT */
/*
 * The stage driver of the exec tests: "I am image N of a chain of real
 * execs of this very binary".  A test gives one function that does one
 * image's work; the driver tells it which image it is, carries the test
 * runner's arguments to every image, hands on what one image passes to
 * the next, re-executes the binary through liveupdate_reboot() and turns
 * the CHECK failures (check.h) into one verdict and the exit status.
 *
 *	static int run(const struct stage *s)
 *	{
 *		if (s->n == 1) {
 *			... luo_init(), preserve, CHECK ...
 *			stage_reboot(NULL);	// returns only on failure
 *			return 1;
 *		}
 *		... luo_init(), retrieve, CHECK ...
 *		return stage_done("it came across");
 *	}
 *	static const struct stage_test test = {"my-test", 30, run};
 *	int main(int argc, char **argv) { return stage_main(argc, argv, &test); }
 *
 * The image number travels in argv ("SELF --stage=N ARGS... --handed
 * HANDED..."), so a stage can act before luo_init() (or refuse the
 * handover) and still know where it is.
 */
#ifndef LUO_TESTS_STAGE_H
#define LUO_TESTS_STAGE_H

#include "check.h"

/**
 * struct stage - the image this process is
 * @n: 1 in the image the test runner started, N + 1 after N updates
 * @argc: number of @argv
 * @argv: the runner's arguments (without argv[0]), the same in every image
 * @nhanded: number of @handed
 * @handed: what the previous image passed to stage_reboot() (none in 1)
 * @self: this executable, the program of every update
 */
struct stage {
	unsigned int n;
	int argc;
	char **argv;
	int nhanded;
	char **handed;
	const char *self;
};

/**
 * struct stage_test - a test that runs as a chain of real execs
 * @name: the test's name, the prefix of every message (@test_name)
 * @timeout_s: alarm() armed in image 1; it stays armed across every exec,
 *	so it bounds the whole chain; 0 for none
 * @run: one image's work.  Return: the exit status (0 pass, 77 skip);
 *	a 0 with CHECK failures counted becomes 1
 */
struct stage_test {
	const char *name;
	unsigned int timeout_s;
	int (*run)(const struct stage *s);
};

/**
 * stage_main() - run the image of @t this process is
 * @argc: main()'s
 * @argv: main()'s
 * @t: the test
 *
 * Sets @test_name, and @where to "image N".
 * Return: the exit status for main().
 */
int stage_main(int argc, char **argv, const struct stage_test *t);

/**
 * stage_current() - the image this process is, for helpers of a stage
 * Return: the struct stage_main() passed to the stage.
 */
const struct stage *stage_current(void);

/**
 * stage_next_argv() - the argv that makes an exec of this binary image N+1
 * @handed: NULL-terminated strings for the next image's &stage.handed, or
 *	NULL for none
 *
 * For calls of liveupdate_reboot() the test makes itself (a failing exec).
 * Return: a NULL-terminated array (never freed: the process execs or ends).
 */
char **stage_next_argv(char *const handed[]);

/**
 * stage_reboot() - update into the next image
 * @handed: as for stage_next_argv()
 *
 * Refuses to go on if this image counted failures (they are reported, the
 * chain ends here).  Otherwise prepares if the state is NORMAL, then
 * liveupdate_reboot() of this binary as image N+1.
 * Return: only on failure, a negative errno (-ECANCELED if refused); a
 * failed prepare or reboot is counted as a failure.
 */
int stage_reboot(char *const handed[]);

/**
 * stage_done() - the verdict of the last image
 * @fmt: printf() format of the one-line summary printed on success
 *
 * Return: 0 and the summary on stdout if no failure was counted, else 1
 * and the number of failures on stderr.
 */
int stage_done(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
