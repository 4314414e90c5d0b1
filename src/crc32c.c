// SPDX-License-Identifier: MIT
/*
 * CRC32C over library metadata only (headers, FDTs, ABI structures): a few
 * kilobytes per update, so a byte-wise table is plenty.
 */
#include <pthread.h>

#include "crc32c.h"

#define CRC32C_POLY_REFLECTED 0x82f63b78U

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? CRC32C_POLY_REFLECTED : 0);
		crc_table[i] = c;
	}
}

uint32_t luo_crc32c(uint32_t seed, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~seed;

	pthread_once(&crc_table_once, crc_table_init);
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}
