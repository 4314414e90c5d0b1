/* SPDX-License-Identifier: MIT */
#ifndef LUO_SRC_CLOCK_H
#define LUO_SRC_CLOCK_H

#include <stdint.h>

/**
 * luo_now_ns() - CLOCK_MONOTONIC in nanoseconds.
 *
 * Return: the time; the same clock in both images of an update.
 */
uint64_t luo_now_ns(void);

#endif
