// SPDX-License-Identifier: MIT
/*
 * CRC32C over library metadata only (headers, FDTs, ABI structures): a few
 * kilobytes per update, and about 88 bytes per preserved file (the file
 * tables), checked twice inside the blackout: at the seal and at adoption.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

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

static uint32_t crc_bytes(uint32_t c, const uint8_t *p, size_t len)
{
	pthread_once(&crc_table_once, crc_table_init);
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
/*
 * a * b modulo the polynomial, both in the reflected representation the
 * register has (x^0 is bit 31).
 */
static uint32_t mul_mod_poly(uint32_t a, uint32_t b)
{
	uint32_t m = 1U << 31, p = 0;

	for (; m; m >>= 1) {
		if (a & m)
			p ^= b;
		b = (b & 1) ? (b >> 1) ^ CRC32C_POLY_REFLECTED : b >> 1;
	}
	return p;
}

/* Bytes per lane of the three-lane loop. */
#define CRC_LANE 4096

/*
 * The SSE4.2 instruction computes the same polynomial, 8 bytes a step; one
 * step waits for the previous one's result (3 cycles) but the CPU can
 * start one every cycle, so long buffers run as three independent lanes
 * of CRC_LANE bytes, joined by the register being linear:
 * crc(c, A B) = crc(c, A) * x^(8 |B|) + crc(0, B).
 */
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t c, const uint8_t *p, size_t len)
{
	static uint32_t x_lane, x_2lanes; /* x^(8 CRC_LANE), its square */
	uint64_t c64 = c;

	if (len >= 3 * CRC_LANE &&
	    !__atomic_load_n(&x_2lanes, __ATOMIC_RELAXED)) {
		uint64_t x = 1U << 31;

		for (size_t i = 0; i < CRC_LANE; i += 8)
			x = __builtin_ia32_crc32di(x, 0);
		/* Racing first callers store the same values. */
		__atomic_store_n(&x_lane, (uint32_t)x, __ATOMIC_RELAXED);
		__atomic_store_n(&x_2lanes,
				 mul_mod_poly((uint32_t)x, (uint32_t)x),
				 __ATOMIC_RELAXED);
	}
	while (len >= 3 * CRC_LANE) {
		uint64_t a = c64, b = 0, d = 0;

		for (size_t i = 0; i < CRC_LANE; i += 8) {
			uint64_t va, vb, vd;

			memcpy(&va, p + i, 8);
			memcpy(&vb, p + CRC_LANE + i, 8);
			memcpy(&vd, p + 2 * CRC_LANE + i, 8);
			a = __builtin_ia32_crc32di(a, va);
			b = __builtin_ia32_crc32di(b, vb);
			d = __builtin_ia32_crc32di(d, vd);
		}
		c64 = mul_mod_poly(__atomic_load_n(&x_2lanes, __ATOMIC_RELAXED),
				   (uint32_t)a) ^
		      mul_mod_poly(__atomic_load_n(&x_lane, __ATOMIC_RELAXED),
				   (uint32_t)b) ^
		      (uint32_t)d;
		p += 3 * CRC_LANE;
		len -= 3 * CRC_LANE;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	while (len--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

/*
 * Whether the CPU has SSE4.2, asked at the first CRC, never at load:
 * __builtin_cpu_supports() would link in libgcc's CPU detection, a
 * constructor that runs a dozen CPUID instructions in every exec (each one
 * traps to the hypervisor on a VM).  glibc has already asked the CPU at
 * start-up and answers from memory; without that interface, one CPUID.
 */
#if defined(__x86_64__)
#if __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h>
static bool cpu_sse42(void)
{
	return CPU_FEATURE_ACTIVE(SSE4_2);
}
#else
#include <cpuid.h>
static bool cpu_sse42(void)
{
	unsigned int a, b, c, d;

	__cpuid(1, a, b, c, d);
	return c & bit_SSE4_2;
}
#endif

static bool have_sse42(void)
{
	/* 0 unknown, 1 no, 2 yes; racing first callers agree. */
	static int known;
	int v = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (!v) {
		v = cpu_sse42() ? 2 : 1;
		__atomic_store_n(&known, v, __ATOMIC_RELAXED);
	}
	return v == 2;
}
#endif

uint32_t luo_crc32c(uint32_t seed, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (have_sse42())
		return ~crc_sse42(~seed, buf, len);
#endif
	return ~crc_bytes(~seed, buf, len);
}
