// SPDX-License-Identifier: MIT
/*
 * CRC32C over library metadata only (headers, FDTs, ABI structures): a few
 * kilobytes per update, and about 88 bytes per preserved file (the file
 * tables), summed at prepare and checked at adoption, inside the blackout.
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
#include <immintrin.h>

/* The SSE4.2 instruction computes the same polynomial, 8 bytes a step. */
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t c, const uint8_t *p, size_t len)
{
	uint64_t c64 = c;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c64 = _mm_crc32_u64(c64, v);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	while (len--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}

/*
 * rev64(x^e mod P): the folding constants, bit-reflected as the data is
 * (x^0 is bit 63), for a carry-less product that comes out one bit short.
 * Folding 128 bits A by D bits: A = A_hi x^64 + A_lo, and
 * A x^D = A_hi x^(D+64) + A_lo x^D; so the low half is multiplied by
 * x^(D+63) and the high half by x^(D-1).
 */
#define FOLD_512_LO 0x1c19243b00000000ULL /* x^575 */
#define FOLD_512_HI 0x75bba45b00000000ULL /* x^511 */
#define FOLD_128_LO 0x3743f7bd00000000ULL /* x^191 */
#define FOLD_128_HI 0x3171d43000000000ULL /* x^127 */

__attribute__((target("sse4.2,pclmul"))) static inline __m128i
fold(__m128i x, __m128i k, __m128i next)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
					   _mm_clmulepi64_si128(x, k, 0x11)),
			     next);
}

__attribute__((target("sse4.2,pclmul"))) static inline __m128i
load(const uint8_t *p)
{
	return _mm_loadu_si128((const __m128i *)p);
}

/*
 * The CRC32 instruction waits for the one before (3 cycles), and some CPUs
 * start only one every 3 cycles: about 6 GB/s, 150 us for the 880 KB file table
 * of 10,000 preserved files, inside the blackout.  Carry-less
 * multiplication folds the buffer instead, four 16-byte lanes at a time,
 * keeping the remainder modulo the polynomial; the 16 bytes left are a
 * message with the same CRC, which the instruction finishes.  @len >= 64.
 */
__attribute__((target("sse4.2,pclmul"))) static uint32_t
crc_pclmul(uint32_t c, const uint8_t *p, size_t len)
{
	const __m128i k512 =
		_mm_set_epi64x((long long)FOLD_512_HI, (long long)FOLD_512_LO);
	const __m128i k128 =
		_mm_set_epi64x((long long)FOLD_128_HI, (long long)FOLD_128_LO);
	/* The register's value goes into the first 32 bits of the message. */
	__m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128((int)c));
	__m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
	uint64_t c64;

	for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
		x0 = fold(x0, k512, load(p));
		x1 = fold(x1, k512, load(p + 16));
		x2 = fold(x2, k512, load(p + 32));
		x3 = fold(x3, k512, load(p + 48));
	}
	x0 = fold(fold(fold(x0, k128, x1), k128, x2), k128, x3);
	for (; len >= 16; p += 16, len -= 16)
		x0 = fold(x0, k128, load(p));
	c64 = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x0));
	c64 = _mm_crc32_u64(c64, (uint64_t)_mm_extract_epi64(x0, 1));
	return crc_sse42((uint32_t)c64, p, len);
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
/* What this CPU computes the CRC with. */
enum crc_level {
	CRC_UNKNOWN = 0, /* not asked yet */
	CRC_TABLE,	 /* neither: the table, a byte a step */
	CRC_INSN,	 /* SSE4.2: the CRC32 instruction */
	CRC_FOLD, /* SSE4.2 and PCLMULQDQ: folding, then the instruction */
};

#if __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h>
static enum crc_level cpu_level(void)
{
	if (!CPU_FEATURE_ACTIVE(SSE4_2))
		return CRC_TABLE;
	return CPU_FEATURE_ACTIVE(PCLMULQDQ) ? CRC_FOLD : CRC_INSN;
}
#else
#include <cpuid.h>
static enum crc_level cpu_level(void)
{
	unsigned int a, b, c, d;

	__cpuid(1, a, b, c, d);
	if (!(c & bit_SSE4_2))
		return CRC_TABLE;
	return (c & bit_PCLMUL) ? CRC_FOLD : CRC_INSN;
}
#endif

/* Asked once; racing first callers agree. */
static enum crc_level cpu_crc_level(void)
{
	static enum crc_level known = CRC_UNKNOWN;
	enum crc_level v = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (v == CRC_UNKNOWN) {
		v = cpu_level();
		__atomic_store_n(&known, v, __ATOMIC_RELAXED);
	}
	return v;
}
#endif

uint32_t luo_crc32c(uint32_t seed, const void *buf, size_t len)
{
#if defined(__x86_64__)
	enum crc_level level = cpu_crc_level();

	if (level == CRC_FOLD && len >= 64)
		return ~crc_pclmul(~seed, buf, len);
	if (level != CRC_TABLE)
		return ~crc_sse42(~seed, buf, len);
#endif
	return ~crc_bytes(~seed, buf, len);
}
