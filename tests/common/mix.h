/* SPDX-License-Identifier: MIT */
/*
 * The data pattern the end-to-end tests and benchmarks write before an
 * update and check after it: word i of a region is mix(seed ^ i).
 */
#ifndef LUO_TESTS_MIX_H
#define LUO_TESTS_MIX_H

#include <stdint.h>

/* A 64-bit finaliser (MurmurHash3's): every input bit moves every output
 * bit, so a word at the wrong place or of another seed never matches. */
static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
