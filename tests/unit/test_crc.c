// SPDX-License-Identifier: MIT
/* CRC32C of library metadata: the known check value, and the fast paths
 * (the CRC32 instruction; carry-less folding from 64 bytes) against a
 * bit-by-bit reference at every length and alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

uint32_t luo_crc32c(uint32_t seed, const void *buf, size_t len);

static uint32_t reference(uint32_t seed, const uint8_t *p, size_t len)
{
	uint32_t c = ~seed;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? 0x82f63b78U : 0);
	}
	return ~c;
}

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(luo_crc32c(0, "123456789", 9), 0xe3069283U);
	assert_int_equal(luo_crc32c(0, "", 0), 0);
}

static void test_against_reference(void **state)
{
	uint8_t buf[600];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len += 13)
			assert_int_equal(luo_crc32c(0x1234, buf + off, len),
					 reference(0x1234, buf + off, len));
}

/* Where the folding loop (from 64 bytes) hands over: four lanes, then
 * 16-byte steps, then the tail; every length across the first few
 * rounds, and long buffers chained through it. */
static void test_fold_edges(void **state)
{
	uint8_t buf[400];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)((i * 2654435761U) >> 11);
	for (size_t off = 0; off < 3; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len++)
			assert_int_equal(luo_crc32c(0xabcd, buf + off, len),
					 reference(0xabcd, buf + off, len));
}

static void test_long_against_reference(void **state)
{
	static uint8_t buf[3 * 3 * 4096 + 64];
	static const size_t lens[] = {3 * 4096 - 1,   3 * 4096, 3 * 4096 + 1,
				      3 * 4096 + 13,  6 * 4096, 6 * 4096 + 7,
				      sizeof(buf) - 9};

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)((i * 2654435761U) >> 13);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
		for (size_t off = 0; off < 9; off += 4)
			assert_int_equal(luo_crc32c(0xfeed, buf + off, lens[k]),
					 reference(0xfeed, buf + off, lens[k]));
	assert_int_equal(luo_crc32c(luo_crc32c(0, buf, 5000), buf + 5000,
				    sizeof(buf) - 5000),
			 reference(0, buf, sizeof(buf)));
}

static void test_chaining(void **state)
{
	const char *s = "handover metadata";
	size_t n = strlen(s);

	(void)state;
	assert_int_equal(luo_crc32c(luo_crc32c(0, s, 5), s + 5, n - 5),
			 luo_crc32c(0, s, n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_against_reference),
		cmocka_unit_test(test_fold_edges),
		cmocka_unit_test(test_long_against_reference),
		cmocka_unit_test(test_chaining),
	};

	return cmocka_run_group_tests_name("crc32c", tests, NULL, NULL);
}
