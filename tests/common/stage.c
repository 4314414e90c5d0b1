// SPDX-License-Identifier: MIT
/* The stage driver of the exec tests: see stage.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <luo/luo.h>

#include "stage.h"

int failures;
const char *test_name = "test";
const char *where = "";

#define STAGE_ARG "--stage="
#define HANDED_ARG "--handed"

static struct stage cur;
static char where_buf[32];
static char self_buf[4096];

const struct stage *stage_current(void)
{
	return &cur;
}

/*
 * Image 1: "SELF ARGS...".  Image N > 1: "SELF --stage=N ARGS... --handed
 * HANDED...", written by stage_next_argv() of image N - 1.
 */
static void parse(int argc, char **argv)
{
	int i = 1;

	cur.n = 1;
	if (argc > 1 && !strncmp(argv[1], STAGE_ARG, strlen(STAGE_ARG))) {
		char *end;
		unsigned long n =
			strtoul(argv[1] + strlen(STAGE_ARG), &end, 10);

		REQUIRE(!*end && n >= 2 && n < 1000000, "bad argument '%s'",
			argv[1]);
		cur.n = (unsigned int)n;
		i = 2;
	}
	cur.argv = argv + i;
	while (i < argc && (cur.n == 1 || strcmp(argv[i], HANDED_ARG)))
		i++;
	cur.argc = (int)(argv + i - cur.argv);
	if (i < argc) {
		cur.handed = argv + i + 1;
		cur.nhanded = argc - i - 1;
	} else {
		cur.handed = argv + argc; /* the terminating NULL */
		cur.nhanded = 0;
	}
}

int stage_main(int argc, char **argv, const struct stage_test *t)
{
	ssize_t n;
	int rc;

	test_name = t->name;
	parse(argc, argv);
	snprintf(where_buf, sizeof(where_buf), "image %u", cur.n);
	where = where_buf;
	n = readlink("/proc/self/exe", self_buf, sizeof(self_buf) - 1);
	REQUIRE(n > 0 && n < (ssize_t)sizeof(self_buf) - 1,
		"readlink /proc/self/exe: %s", strerror(errno));
	self_buf[n] = 0;
	cur.self = self_buf;
	if (cur.n == 1 && t->timeout_s)
		alarm(t->timeout_s); /* stays armed across every exec */
	rc = t->run(&cur);
	if (rc == 0 && failures)
		rc = stage_done("%s", "");
	return rc;
}

char **stage_next_argv(char *const handed[])
{
	int nh = 0, k = 0;
	char **argv;

	while (handed && handed[nh])
		nh++;
	argv = calloc((size_t)(cur.argc + nh + 4), sizeof(*argv));
	REQUIRE(argv, "out of memory");
	argv[k++] = (char *)cur.self;
	REQUIRE(asprintf(&argv[k++], STAGE_ARG "%u", cur.n + 1) > 0,
		"out of memory");
	for (int i = 0; i < cur.argc; i++)
		argv[k++] = cur.argv[i];
	argv[k++] = HANDED_ARG;
	for (int i = 0; i < nh; i++)
		argv[k++] = handed[i];
	argv[k] = NULL;
	return argv;
}

int stage_reboot(char *const handed[])
{
	int err;

	if (failures) {
		fprintf(stderr,
			"%s: FAIL [%s]: %d failures, not updating into image %u\n",
			test_name, where, failures, cur.n + 1);
		return -ECANCELED;
	}
	if (liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL) {
		err = liveupdate_prepare();
		CHECK(!err, "prepare: %s", strerror(-err));
		if (err)
			return err;
	}
	err = liveupdate_reboot(cur.self, stage_next_argv(handed), NULL);
	CHECK(0, "reboot into image %u: %s", cur.n + 1, strerror(-err));
	return err;
}

int stage_done(const char *fmt, ...)
{
	va_list ap;

	if (failures) {
		fprintf(stderr, "%s: FAIL [%s]: %d failures\n", test_name,
			where, failures);
		return 1;
	}
	printf("%s: PASS [%s]: ", test_name, where);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 0;
}
