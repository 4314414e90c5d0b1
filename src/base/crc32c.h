/* SPDX-License-Identifier: MIT */
#ifndef LUO_SRC_CRC32C_H
#define LUO_SRC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli); @seed is the crc of what came before, 0 to start. */
uint32_t luo_crc32c(uint32_t seed, const void *buf, size_t len);

/*
 * Whether incoming checksums are enforced.  A fuzzing build turns them off
 * so the fuzzer reaches the parsers behind them; never in production.
 */
#ifdef LUO_FUZZING
#define luo_crc_mismatch(a, b) ((void)(a), (void)(b), 0)
#else
#define luo_crc_mismatch(a, b) ((a) != (b))
#endif

#endif
