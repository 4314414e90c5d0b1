/* SPDX-License-Identifier: MIT */
/* e2e-handover: the macros that make one corruption case one line. */
#ifndef LUO_TESTS_HANDOVER_CASES_H
#define LUO_TESTS_HANDOVER_CASES_H

#include "handover.h"

#define HF(f)                                                                  \
	.off = offsetof(struct kho_arena_header, f),                           \
	.len = sizeof(((struct kho_arena_header *)0)->f)
#define BF(f)                                                                  \
	.off = offsetof(struct kho_block_header, f),                           \
	.len = sizeof(((struct kho_block_header *)0)->f)
#define SF(f) .off = offsetof(struct luo_ser, f), .len = 8

/* One bit flipped somewhere; only a checksum can catch it. */
#define FLIP(n, t, o, m)                                                       \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_flip, .target = t,    \
		.off = o, .val = m                                             \
	}
#define FLIPR(n, t, r, o, m)                                                   \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_flip, .target = t,    \
		.op = r, .off = o, .val = m                                    \
	}
#define FLIPP(n, t, pa, pr, o, m)                                              \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_flip_prop,            \
		.target = t, .path = pa, .prop = pr, .off = o, .val = m        \
	}
#define HDR(n, e, field, k, v, r)                                              \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_hdr,      \
		HF(field), .vk = k, .val = v, .ref = r                         \
	}
#define BLK(n, e, t, field, k, v, r)                                           \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_blk,      \
		.target = t, BF(field), .vk = k, .val = v, .ref = r            \
	}
/* A block size change with its CRC recomputed: the walk then finds no
 * header where it looks next, so "corrupt" is the right diagnosis. */
#define BLKW(n, t, k, v, r)                                                    \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_blk, .target = t,     \
		BF(size), .vk = k, .val = v, .ref = r                          \
	}
#define SER(n, e, field, k, v, r)                                              \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_pay,      \
		.target = T_P_SER, SF(field), .vk = k, .val = v, .ref = r      \
	}
#define FDT(n, e, t, o, pa, pr, s)                                             \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_fdt,      \
		.target = t, .op = o, .path = pa, .prop = pr, .str = s         \
	}
#define FDTV(n, e, t, o, pa, pr, k, v, r)                                      \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_fdt,      \
		.target = t, .op = o, .path = pa, .prop = pr, .vk = k,         \
		.val = v, .ref = r                                             \
	}
/* The devices node's @pr set to the bytes of string literal @s. */
#define DEVB(n, e, pr, s)                                                      \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_fdt,      \
		.target = T_P_LUO, .op = OP_SETBYTES, .path = "/devices",      \
		.prop = pr, .str = s, .len = sizeof(s) - 1                     \
	}
#define BE32(n, t, r, o, v)                                                    \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .flags = RESIGNED,              \
		.fn = mut_be32, .target = t, .op = r, .off = o, .val = v       \
	}
#define TRUNC(n, k, v, r)                                                      \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_trunc, .vk = k,       \
		.val = v, .ref = r                                             \
	}
#define ENV(n, e, s, kind)                                                     \
	{                                                                      \
		.name = n, .expect = e, .fn = mut_env, .str = s, .op = kind    \
	}

#define NEG(x) ((uint64_t)(int64_t)(x))
#define LONGNAME                                                               \
	"x123456789012345678901234567890123456789012345678901234567890123"

#endif
