/* SPDX-License-Identifier: MIT */
/*
 * The one assertion style of the exec tests: CHECK counts a failure and
 * goes on (so one run reports every broken check), REQUIRE stops the
 * process (setup without which the rest means nothing).  Every message
 * names the test and the image it ran in.  The stage driver (stage.h)
 * sets @test_name and @where and turns @failures into the exit status.
 */
#ifndef LUO_TESTS_CHECK_H
#define LUO_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern int failures;
extern const char *test_name; /* prefix of every message */
extern const char *where;     /* which image or process, in messages */

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			failures++;                                            \
			fprintf(stderr,                                        \
				"%s: FAIL [%s] %s:%d: %s: ", test_name, where, \
				__FILE__, __LINE__, #cond);                    \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

/* Integer equality, both values printed. */
#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		CHECK(a_ == b_, "%s is %lld, expected %lld", #a, a_, b_);      \
	} while (0)

/* String equality, both strings printed. */
#define CHECK_STREQ(a, b)                                                      \
	do {                                                                   \
		const char *a_ = (a), *b_ = (b);                               \
		CHECK(a_ != NULL && b_ != NULL && !strcmp(a_, b_),             \
		      "%s is \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", \
		      b_ ? b_ : "(null)");                                     \
	} while (0)

/* Setup that must work for the test to mean anything: exit 1 if not. */
#define REQUIRE(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
				"%s: FATAL [%s] %s:%d: %s: ", test_name,       \
				where, __FILE__, __LINE__, #cond);             \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			_exit(1);                                              \
		}                                                              \
	} while (0)

#endif
