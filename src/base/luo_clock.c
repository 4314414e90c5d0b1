// SPDX-License-Identifier: MIT
/* The one clock the library records its timings with. */
#include <time.h>

#include "luo_clock.h"

uint64_t luo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
