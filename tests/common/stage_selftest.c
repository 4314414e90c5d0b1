// SPDX-License-Identifier: MIT
/*
 * stage-driver: the stage driver itself, over three real execs.  Every
 * image checks its number, the runner's arguments (the same in each) and
 * what the previous image handed on, including an empty string and one
 * with spaces; image 3 checks that the alarm of image 1 is still armed.
 *
 *   stage-selftest alpha beta     the chain above, passes
 *   stage-selftest refuse         image 1 counts a failure and asks to
 *                                 update: the driver must refuse and exit
 *                                 1 (meson: should_fail); an image 2 would
 *                                 pass
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <luo/luo.h>

#include "stage.h"

#define TIMEOUT_S 30

static void check_handed(const struct stage *s, char *const want[])
{
	int n = 0;

	while (want[n])
		n++;
	CHECK_EQ(s->nhanded, n);
	for (int i = 0; i < n && i < s->nhanded; i++)
		CHECK_STREQ(s->handed[i], want[i]);
	CHECK(s->handed[s->nhanded] == NULL, "handed[] not NULL-terminated");
}

static int run(const struct stage *s)
{
	char *const none[] = {NULL};
	char *const to2[] = {"one", "two words", "", NULL};
	char *const to3[] = {"--stage=7", NULL};
	int refuse = s->argc == 1 && !strcmp(s->argv[0], "refuse");
	unsigned int left;

	if (refuse) {
		if (s->n > 1)
			return stage_done(
				"image 2 ran: the driver did not refuse");
		REQUIRE(!luo_init(NULL), "luo_init");
		CHECK(0, "%s", "a failure on purpose");
		CHECK_EQ(stage_reboot(NULL), -ECANCELED);
		return 0; /* the driver must turn this into 1 */
	}
	CHECK_EQ(s->argc, 2);
	if (s->argc == 2) {
		CHECK_STREQ(s->argv[0], "alpha");
		CHECK_STREQ(s->argv[1], "beta");
	}
	CHECK(s->self && s->self[0] == '/', "self is '%s'", s->self);
	REQUIRE(!luo_init(NULL), "luo_init");
	CHECK_EQ(liveupdate_get_num(), s->n - 1);
	if (s->n > 1)
		CHECK_EQ(liveupdate_finish(), 0);
	switch (s->n) {
	case 1:
		check_handed(s, none);
		stage_reboot(to2);
		return 1;
	case 2:
		check_handed(s, to2);
		stage_reboot(to3);
		return 1;
	default:
		CHECK_EQ(s->n, 3);
		check_handed(s, to3);
		left = alarm(0);
		CHECK(left > 0 && left <= TIMEOUT_S,
		      "alarm of image 1: %u s left, expected 1..%d", left,
		      TIMEOUT_S);
		return stage_done("3 images, arguments carried and handed on");
	}
}

static const struct stage_test test = {"stage-driver", TIMEOUT_S, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
