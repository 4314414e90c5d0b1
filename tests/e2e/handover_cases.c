// SPDX-License-Identifier: MIT
/* e2e-handover: the corruption cases, one line each. */
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

const struct kase cases[] = {
	/* Positive controls: the harness can see an acceptance. */
	{.name = "control-pristine",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_none},
	{.name = "control-all-crcs-recomputed",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_resign_all},
	{.name = "control-luo-fdt-rewritten",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_fdt,
	 .target = T_P_LUO,
	 .op = OP_NOP},
	{.name = "control-root-fdt-rewritten",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_NOP},
	/* user data is never checksummed: changing it is not detectable */
	{.name = "control-user-data-changed",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_fill,
	 .target = T_B_TWIN1,
	 .off = 64,
	 .len = TWIN_SIZE,
	 .val = 0x55},

	/* The memfd truncated. */
	TRUNC("truncate-to-0", V_ABS, 0, 0),
	TRUNC("truncate-to-63", V_ABS, 63, 0),
	TRUNC("truncate-to-header", V_ABS, 64, 0),
	TRUNC("truncate-to-4k", V_ABS, 4096, 0),
	TRUNC("truncate-to-half", V_REF, 0, T_HALF),
	TRUNC("truncate-minus-page", V_REF, NEG(-4096), T_END),
	TRUNC("truncate-minus-byte", V_REF, NEG(-1), T_END),

	/* Arena header: one flipped bit in every field. */
	FLIP("hdr-flip-magic", T_HDR, 0, 0x01),
	FLIP("hdr-flip-magic-high", T_HDR, 7, 0x80),
	FLIP("hdr-flip-version", T_HDR, 8, 0x02),
	FLIP("hdr-flip-header-size", T_HDR, 12, 0x01),
	FLIP("hdr-flip-flags", T_HDR, 16, 0x02),
	FLIP("hdr-flip-page-size", T_HDR, 21, 0x10),
	FLIP("hdr-flip-data-start", T_HDR, 24, 0x40),
	FLIP("hdr-flip-arena-size", T_HDR, 34, 0x01),
	FLIP("hdr-flip-arena-size-high", T_HDR, 39, 0x01),
	FLIP("hdr-flip-root-fdt", T_HDR, 40, 0x40),
	FLIP("hdr-flip-reserved", T_HDR, 48, 0x01),
	FLIP("hdr-flip-reserved-last", T_HDR, 56, 0x01),
	FLIP("hdr-flip-header-crc", T_HDR, 60, 0x01),
	{.name = "hdr-zeroed",
	 .expect = -EBADMSG,
	 .fn = mut_fill,
	 .target = T_HDR,
	 .len = 64,
	 .val = 0},
	{.name = "hdr-all-ones",
	 .expect = -EBADMSG,
	 .fn = mut_fill,
	 .target = T_HDR,
	 .len = 64,
	 .val = 0xff},

	/* Arena header, CRC recomputed: each field check on its own. */
	HDR("hdr-magic-resigned", -EBADMSG, magic, V_ADD, 1, 0),
	HDR("hdr-version-2", -EPROTONOSUPPORT, version, V_ABS, 2, 0),
	HDR("hdr-version-0", -EPROTONOSUPPORT, version, V_ABS, 0, 0),
	HDR("hdr-header-size-63", -EBADMSG, header_size, V_ABS, 63, 0),
	HDR("hdr-header-size-128", -EBADMSG, header_size, V_ABS, 128, 0),
	HDR("hdr-data-start-0", -EBADMSG, data_start, V_ABS, 0, 0),
	HDR("hdr-data-start-128", -EBADMSG, data_start, V_ABS, 128, 0),
	HDR("hdr-reserved-set", -EBADMSG, reserved, V_ABS, 1, 0),
	HDR("hdr-flags-unknown", -EPROTONOSUPPORT, flags, V_ABS, 0x4, 0),
	HDR("hdr-flags-hugetlb-on-4k-pages", -EBADMSG, flags, V_ABS,
	    KHO_ARENA_HUGETLB, 0),
	HDR("hdr-page-size-8k", -EBADMSG, page_size, V_ABS, 8192, 0),
	HDR("hdr-page-size-0", -EBADMSG, page_size, V_ABS, 0, 0),
	HDR("hdr-arena-size-0", -EBADMSG, arena_size, V_ABS, 0, 0),
	HDR("hdr-arena-size-unaligned", -EBADMSG, arena_size, V_ADD, 64, 0),
	HDR("hdr-arena-size-2^50", -EBADMSG, arena_size, V_ABS, 1ULL << 50, 0),
	HDR("hdr-arena-size-past-memfd", -EBADMSG, arena_size, V_ADD, 4096, 0),
	HDR("hdr-arena-size-minus-page", -EBADMSG, arena_size, V_ADD,
	    NEG(-4096), 0),
	{.name = "hdr-arena-and-memfd-plus-page",
	 .expect = -EBADMSG,
	 .fn = mut_grow,
	 .val = 4096},
	HDR("hdr-root-0", -EBADMSG, root_fdt, V_ABS, 0, 0),
	HDR("hdr-root-in-arena-header", -EBADMSG, root_fdt, V_ABS, 16, 0),
	HDR("hdr-root-at-block-header", -EBADMSG, root_fdt, V_REF, NEG(-64),
	    T_P_ROOT),
	HDR("hdr-root-unaligned", -EBADMSG, root_fdt, V_ADD, 1, 0),
	HDR("hdr-root-mid-block", -EBADMSG, root_fdt, V_ADD, 64, 0),
	HDR("hdr-root-past-end", -EBADMSG, root_fdt, V_REF, 4096, T_END),
	HDR("hdr-root-max", -EBADMSG, root_fdt, V_ABS, UINT64_MAX, 0),
	/* Far past the mapping: checked before any pointer is formed. */
	HDR("hdr-root-far", -EBADMSG, root_fdt, V_ABS, 0xffffffff00000f00ULL,
	    0),
	HDR("hdr-root-to-free-block", -EBADMSG, root_fdt, V_REF, 0, T_P_FREE),
	HDR("hdr-root-to-user-data", -EBADMSG, root_fdt, V_REF, 0, T_P_BIG),
	HDR("hdr-root-to-luo-ser", -EBADMSG, root_fdt, V_REF, 0, T_P_SER),
	HDR("hdr-root-to-luo-fdt", -EPROTONOSUPPORT, root_fdt, V_REF, 0,
	    T_P_LUO),
	HDR("hdr-root-to-user-fdt", -EPROTONOSUPPORT, root_fdt, V_REF, 0,
	    T_P_USER),

	/* Block headers: one flipped bit per field, CRC left alone. */
	FLIP("blk-root-flip-magic", T_B_ROOT, 0, 0x01),
	FLIP("blk-root-flip-flags", T_B_ROOT, 4, 0x02),
	FLIP("blk-root-flip-size", T_B_ROOT, 9, 0x01),
	FLIP("blk-root-flip-payload-size", T_B_ROOT, 16, 0x01),
	FLIP("blk-root-flip-checked-size", T_B_ROOT, 24, 0x01),
	FLIP("blk-root-flip-payload-crc", T_B_ROOT, 32, 0x01),
	FLIP("blk-root-flip-header-crc", T_B_ROOT, 36, 0x01),
	FLIP("blk-root-flip-reserved", T_B_ROOT, 40, 0x01),
	FLIP("blk-big-flip-magic", T_B_BIG, 3, 0x40),
	FLIP("blk-big-flip-flags", T_B_BIG, 4, 0x02),
	FLIP("blk-big-flip-size", T_B_BIG, 10, 0x01),
	FLIP("blk-big-flip-payload-size", T_B_BIG, 17, 0x01),
	FLIP("blk-big-flip-reserved", T_B_BIG, 63, 0x80),
	FLIP("blk-free-flip-flags", T_B_FREE, 4, 0x01),
	FLIP("blk-free-flip-size", T_B_FREE, 8, 0x40),
	FLIP("blk-first-flip-size", T_B_FIRST, 8, 0x40),
	FLIP("blk-tail-flip-magic", T_B_TAIL, 1, 0x01),
	FLIP("blk-luo-flip-checked-size", T_B_LUO, 24, 0x01),
	FLIP("blk-ser-flip-flags", T_B_SER, 4, 0x02),
	{.name = "blk-free-header-zeroed",
	 .expect = -EBADMSG,
	 .fn = mut_fill,
	 .target = T_B_FREE,
	 .len = 64,
	 .val = 0},

	/* Block headers, CRC recomputed. */
	BLK("blk-big-size-0", -EBADMSG, T_B_BIG, size, V_ABS, 0, 0),
	BLK("blk-big-size-unaligned", -EBADMSG, T_B_BIG, size, V_ADD, 8, 0),
	BLKW("blk-big-size-minus-64", T_B_BIG, V_ADD, NEG(-64), 0),
	BLKW("blk-big-size-plus-4k", T_B_BIG, V_ADD, 4096, 0),
	BLK("blk-first-size-past-end", -EBADMSG, T_B_FIRST, size, V_REF, 0,
	    T_END),
	BLKW("blk-tail-size-short", T_B_TAIL, V_ADD, NEG(-64), 0),
	BLK("blk-tail-size-long", -EBADMSG, T_B_TAIL, size, V_ADD, 64, 0),
	BLK("blk-flags-unknown", -EBADMSG, T_B_BIG, flags, V_ABS, 0x5, 0),
	BLK("blk-free-claims-payload", -EBADMSG, T_B_FREE, payload_size, V_ABS,
	    64, 0),
	BLK("blk-free-flagged-checked", -EBADMSG, T_B_FREE, flags, V_ABS,
	    KHO_BLOCK_CHECKED, 0),
	BLK("blk-payload-exceeds-size", -EBADMSG, T_B_SMALL, payload_size,
	    V_ADD, 4096, 0),
	BLK("blk-checked-exceeds-payload", -EBADMSG, T_B_LUO, checked_size,
	    V_ADD, 8, 0),
	{.name = "blk-payload-crc-wrong",
	 .expect = -EBADMSG,
	 .fn = mut_blk,
	 .target = T_B_LUO,
	 BF(payload_crc),
	 .vk = V_ADD,
	 .val = 1},
	BLK("blk-ser-not-checked", -EBADMSG, T_B_SER, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	BLK("blk-luo-fdt-not-checked", -EBADMSG, T_B_LUO, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	BLK("blk-root-fdt-not-checked", -EBADMSG, T_B_ROOT, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	BLK("blk-user-fdt-not-checked", -EBADMSG, T_B_USER, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	{.name = "blk-reserved-set",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_blk,
	 .target = T_B_SMALL,
	 .off = offsetof(struct kho_block_header, reserved),
	 .len = 8,
	 .vk = V_ABS,
	 .val = 1},
	BLK("blk-free-payload-crc-set", -EBADMSG, T_B_FREE, payload_crc, V_ABS,
	    0x1234, 0),
	{.name = "blk-ser-freed",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_make_free,
	 .target = T_B_SER},
	{.name = "blk-luo-fdt-freed",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_make_free,
	 .target = T_B_LUO},
	{.name = "blk-user-fdt-freed",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_make_free,
	 .target = T_B_USER},
	{.name = "blk-ser-payload-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_payload,
	 .target = T_B_SER,
	 .val = 16},
	{.name = "blk-luo-fdt-payload-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_payload,
	 .target = T_B_LUO,
	 .val = 64},
	{.name = "blk-ser-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_SER,
	 .val = 8},
	{.name = "blk-luo-fdt-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_LUO,
	 .val = 64},
	{.name = "blk-root-fdt-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_ROOT,
	 .val = 64},
	{.name = "blk-user-fdt-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_USER,
	 .val = 64},
	/* identical headers but for the offset seed of their CRC */
	{.name = "blk-header-copied-to-twin",
	 .expect = -EBADMSG,
	 .fn = mut_copy_header,
	 .target = T_B_TWIN1,
	 .ref = T_B_TWIN2},
	{.name = "blk-twin-headers-swapped",
	 .expect = -EBADMSG,
	 .fn = mut_copy_header,
	 .target = T_B_TWIN1,
	 .ref = T_B_TWIN2,
	 .val = 1},

	/* Root FDT: flipped bits, CRC left alone. */
	FLIPR("root-flip-fdt-magic", T_P_ROOT, R_START, 0, 0x01),
	FLIPR("root-flip-totalsize", T_P_ROOT, R_START, 7, 0x01),
	FLIPR("root-flip-off-dt-struct", T_P_ROOT, R_START, 11, 0x04),
	FLIPR("root-flip-version", T_P_ROOT, R_START, 23, 0x01),
	FLIPR("root-flip-struct", T_P_ROOT, R_STRUCT, 3, 0x04),
	FLIPR("root-flip-strings", T_P_ROOT, R_STRINGS, 0, 0x01),
	FLIPP("root-flip-compatible", T_P_ROOT, "/", "compatible", 9, 0x01),
	FLIPP("root-flip-luo-fdt", T_P_ROOT, "/LUO", "fdt", 7, 0x40),
	FLIPP("root-flip-user-fdt", T_P_ROOT, "/e2e-user", "fdt", 6, 0x01),

	/* Root FDT, CRCs recomputed. */
	FDT("root-compat-luo-kho-v0", -EPROTONOSUPPORT, T_P_ROOT, OP_SETSTR,
	    "/", "compatible", "luo-kho-v0"),
	FDT("root-compat-luo-kho-v2", -EPROTONOSUPPORT, T_P_ROOT, OP_SETSTR,
	    "/", "compatible", "luo-kho-v2"),
	FDT("root-compat-missing", -EPROTONOSUPPORT, T_P_ROOT, OP_DELPROP, "/",
	    "compatible", NULL),
	FDT("root-luo-node-missing", -EBADMSG, T_P_ROOT, OP_DELNODE, "/LUO",
	    NULL, NULL),
	FDT("root-luo-node-renamed", -EBADMSG, T_P_ROOT, OP_RENAME, "/LUO",
	    NULL, "LUX"),
	FDT("root-luo-fdt-missing", -EBADMSG, T_P_ROOT, OP_DELPROP, "/LUO",
	    "fdt", NULL),
	FDTV("root-luo-fdt-u32", -EBADMSG, T_P_ROOT, OP_SETU32, "/LUO", "fdt",
	     V_REF, 0, T_P_LUO),
	FDTV("root-luo-fdt-0", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO", "fdt",
	     V_ABS, 0, 0),
	FDTV("root-luo-fdt-to-luo-ser", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 0, T_P_SER),
	FDTV("root-luo-fdt-to-user-data", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 0, T_P_BIG),
	FDTV("root-luo-fdt-to-free-block", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, 0, T_P_FREE),
	FDTV("root-luo-fdt-unaligned", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 4, T_P_LUO),
	FDTV("root-luo-fdt-mid-block", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 64, T_P_LUO),
	FDTV("root-luo-fdt-at-block-header", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, NEG(-64), T_P_LUO),
	FDTV("root-luo-fdt-past-end", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 64, T_END),
	FDTV("root-luo-fdt-max", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO", "fdt",
	     V_ABS, UINT64_MAX, 0),
	FDTV("root-luo-fdt-to-root-fdt", -EPROTONOSUPPORT, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, 0, T_P_ROOT),
	FDTV("root-luo-fdt-to-user-fdt", -EPROTONOSUPPORT, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, 0, T_P_USER),
	FDTV("root-user-fdt-to-luo-ser", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/e2e-user", "fdt", V_REF, 0, T_P_SER),
	FDTV("root-user-fdt-to-user-data", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/e2e-user", "fdt", V_REF, 0, T_P_BIG),
	{.name = "root-subtree-name-with-@",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_ADDNODE,
	 .path = "/",
	 .str = "e2e@1",
	 .vk = V_REF,
	 .ref = T_P_USER},
	{.name = "root-subtree-name-too-long",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_ADDNODE,
	 .path = "/",
	 .str = LONGNAME,
	 .vk = V_REF,
	 .ref = T_P_USER},
	{.name = "root-luo-node-twice",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_DUPNODE,
	 .path = "/",
	 .str = "LUO",
	 .vk = V_REF,
	 .ref = T_P_LUO},
	BE32("root-fdt-magic-resigned", T_P_ROOT, R_START, 0, 0xd00dfeef),
	BE32("root-fdt-totalsize-resigned", T_P_ROOT, R_START, 4, 1 << 20),
	BE32("root-fdt-off-struct-resigned", T_P_ROOT, R_START, 8, 0xfff0),
	BE32("root-fdt-bad-token-resigned", T_P_ROOT, R_STRUCT, 0, 0x77),
	/* libfdt 1.6.1's fdt_check_full() loops forever on this length:
	 * the library must bound the structure block before calling it. */
	BE32("root-fdt-prop-len-fffffff4-resigned", T_P_ROOT, R_STRUCT, 12,
	     0xfffffff4),
	BE32("luo-fdt-prop-len-fffffff4-resigned", T_P_LUO, R_STRUCT, 12,
	     0xfffffff4),

	/* LUO FDT: flipped bits, CRC left alone. */
	FLIPR("luo-flip-fdt-magic", T_P_LUO, R_START, 3, 0x01),
	FLIPR("luo-flip-struct", T_P_LUO, R_STRUCT, 3, 0x02),
	FLIPR("luo-flip-strings", T_P_LUO, R_STRINGS, 2, 0x01),
	FLIPP("luo-flip-compatible", T_P_LUO, "/", "compatible", 5, 0x01),
	FLIPP("luo-flip-abi-header", T_P_LUO, "/", LUO_FDT_ABI_HEADER, 7, 0x08),
	FLIPP("luo-flip-subsystems-compatible", T_P_LUO, "/subsystems",
	      "compatible", 12, 0x01),
	FLIPP("luo-flip-subsystem-value", T_P_LUO, "/subsystems", "e2e-const",
	      7, 0x01),
	FLIPP("luo-flip-exec-compatible", T_P_LUO, "/exec", "compatible", 10,
	      0x01),
	FLIPP("luo-flip-exec-ns", T_P_LUO, "/exec", "exec-ns", 0, 0x80),

	/* LUO FDT, CRCs recomputed. */
	FDT("luo-compat-luo-v1", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR, "/",
	    "compatible", "luo-v1"),
	FDT("luo-compat-luo-v3", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR, "/",
	    "compatible", "luo-v3"),
	FDT("luo-compat-empty", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR, "/",
	    "compatible", ""),
	FDT("luo-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP, "/",
	    "compatible", NULL),
	FDT("luo-abi-header-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/",
	    LUO_FDT_ABI_HEADER, NULL),
	FDTV("luo-abi-header-u32", -EBADMSG, T_P_LUO, OP_SETU32, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_SER),
	FDTV("luo-abi-header-0", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_ABS, 0, 0),
	FDTV("luo-abi-header-in-arena-header", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/", LUO_FDT_ABI_HEADER, V_ABS, 8, 0),
	FDTV("luo-abi-header-at-block-header", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/", LUO_FDT_ABI_HEADER, V_REF, NEG(-64), T_P_SER),
	FDTV("luo-abi-header-unaligned", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 8, T_P_SER),
	FDTV("luo-abi-header-mid-block", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 4096, T_P_BIG),
	FDTV("luo-abi-header-to-user-data", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_BIG),
	FDTV("luo-abi-header-to-free-block", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_FREE),
	FDTV("luo-abi-header-past-end", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 128, T_END),
	FDTV("luo-abi-header-max", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_ABS, UINT64_MAX, 0),
	FDTV("luo-abi-header-to-root-fdt", REFUSE_ANY, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_ROOT),
	FDT("subsystems-compat-v2", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR,
	    "/subsystems", "compatible", "subsystems-v2"),
	FDT("subsystems-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP,
	    "/subsystems", "compatible", NULL),
	FDT("subsystems-node-missing", -EBADMSG, T_P_LUO, OP_DELNODE,
	    "/subsystems", NULL, NULL),
	FDT("subsystems-node-renamed", -EBADMSG, T_P_LUO, OP_RENAME,
	    "/subsystems", NULL, "subsystem"),
	FDTV("subsystems-entry-u32", -EBADMSG, T_P_LUO, OP_SETU32,
	     "/subsystems", "e2e-const", V_ABS, 42, 0),
	FDTV("subsystems-entry-name-with-@", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/subsystems", "e2e@const", V_ABS, 42, 0),
	FDTV("subsystems-entry-name-too-long", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/subsystems", LONGNAME, V_ABS, 42, 0),
	FDTV("subsystems-entry-twice", -EBADMSG, T_P_LUO, OP_DUPPROP,
	     "/subsystems", "e2e-const", V_ABS, 43, 0),
	FDT("exec-compat-luo-exec-v9", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR,
	    "/exec", "compatible", "luo-exec-v9"),
	FDT("exec-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP,
	    "/exec", "compatible", NULL),
	FDT("exec-node-missing", -EBADMSG, T_P_LUO, OP_DELNODE, "/exec", NULL,
	    NULL),
	FDT("exec-freeze-ns-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/exec",
	    "freeze-ns", NULL),
	FDTV("exec-exec-ns-u32", -EBADMSG, T_P_LUO, OP_SETU32, "/exec",
	     "exec-ns", V_ABS, 1, 0),
	/* The devices node (luo-devices-v1). */
	FLIPP("devices-flip-paths", T_P_LUO, "/devices", "paths", 3, 0x01),
	FLIPP("devices-flip-driver-data", T_P_LUO, "/devices", "driver-data", 2,
	      0x10),
	FDT("devices-compat-v2", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR,
	    "/devices", "compatible", "luo-devices-v2"),
	FDT("devices-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP,
	    "/devices", "compatible", NULL),
	FDT("devices-count-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/devices",
	    "count", NULL),
	FDTV("devices-count-u32", -EBADMSG, T_P_LUO, OP_SETU32, "/devices",
	     "count", V_ABS, 2, 0),
	FDTV("devices-count-3", -EBADMSG, T_P_LUO, OP_SETU64, "/devices",
	     "count", V_ABS, 3, 0),
	FDTV("devices-count-1", -EBADMSG, T_P_LUO, OP_SETU64, "/devices",
	     "count", V_ABS, 1, 0),
	FDTV("devices-count-huge", -EBADMSG, T_P_LUO, OP_SETU64, "/devices",
	     "count", V_ABS, 1ULL << 40, 0),
	FDT("devices-paths-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/devices",
	    "paths", NULL),
	FDT("devices-buses-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/devices",
	    "buses", NULL),
	FDT("devices-drivers-missing", -EBADMSG, T_P_LUO, OP_DELPROP,
	    "/devices", "drivers", NULL),
	FDT("devices-bus-data-missing", -EBADMSG, T_P_LUO, OP_DELPROP,
	    "/devices", "bus-data", NULL),
	FDTV("devices-driver-data-one-value", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/devices", "driver-data", V_ABS, 1, 0),
	DEVB("devices-paths-one", -EBADMSG, "paths", "e2e-bus0\0"),
	DEVB("devices-paths-three", -EBADMSG, "paths",
	     "e2e-bus0/e2e-dev0\0e2e-bus0\0e2e-bus1\0"),
	DEVB("devices-paths-unterminated", -EBADMSG, "paths",
	     "e2e-bus0/e2e-dev0\0e2e-bus0"),
	DEVB("devices-paths-parent-first", -EBADMSG, "paths",
	     "e2e-bus0\0e2e-bus0/e2e-dev0\0"),
	DEVB("devices-paths-parent-missing", -EBADMSG, "paths",
	     "e2e-bus1/e2e-dev0\0e2e-bus0\0"),
	DEVB("devices-paths-twice", -EBADMSG, "paths", "e2e-bus0\0e2e-bus0\0"),
	DEVB("devices-path-empty", -EBADMSG, "paths", "e2e-bus0/e2e-dev0\0\0"),
	DEVB("devices-path-leading-slash", -EBADMSG, "paths",
	     "/e2e-bus0/e2e-dev0\0e2e-bus0\0"),
	DEVB("devices-path-double-slash", -EBADMSG, "paths",
	     "e2e-bus0//e2e-dev0\0e2e-bus0\0"),
	DEVB("devices-path-trailing-slash", -EBADMSG, "paths",
	     "e2e-bus0/e2e-dev0/\0e2e-bus0\0"),
	DEVB("devices-path-space", -EBADMSG, "paths",
	     "e2e-bus0/e2e dev0\0e2e-bus0\0"),
	DEVB("devices-path-too-long", -EBADMSG, "paths",
	     "e2e-bus0/" LONGNAME LONGNAME LONGNAME LONGNAME "\0e2e-bus0\0"),
	DEVB("devices-path-name-too-long", -EBADMSG, "paths",
	     "e2e-bus0/" LONGNAME "\0e2e-bus0\0"),
	DEVB("devices-buses-one", -EBADMSG, "buses", "e2e-bus\0"),
	DEVB("devices-bus-bad-name", -EBADMSG, "buses", "e2e bus\0e2e-bus\0"),
	DEVB("devices-driver-with-slash", -EBADMSG, "drivers",
	     "e2e/drv\0e2e-drv\0"),
	DEVB("devices-driver-too-long", -EBADMSG, "drivers",
	     LONGNAME "\0e2e-drv\0"),
	BE32("luo-fdt-magic-resigned", T_P_LUO, R_START, 0, 0xfeedd00d),
	BE32("luo-fdt-size-strings-resigned", T_P_LUO, R_START, 32, 0x7fffffff),

	/* struct luo_ser: flipped bits, then CRCs recomputed. */
	FLIP("ser-flip-liveupdate-num", T_P_SER, 0, 0x01),
	FLIP("ser-flip-sessions-pa", T_P_SER, 8, 0x40),
	FLIP("ser-flip-flbs-pa", T_P_SER, 23, 0x80),
	SER("ser-liveupdate-num-0", -EBADMSG, liveupdate_num, V_ABS, 0, 0),
	SER("ser-sessions-garbage", -EBADMSG, sessions_pa, V_ABS, 0x1234567, 0),
	SER("ser-sessions-to-user-data", -EBADMSG, sessions_pa, V_REF, 0,
	    T_P_BIG),
	SER("ser-sessions-to-free-block", -EBADMSG, sessions_pa, V_REF, 0,
	    T_P_FREE),
	SER("ser-sessions-unaligned", -EBADMSG, sessions_pa, V_REF, 1, T_P_LUO),
	SER("ser-flbs-max", -EBADMSG, flbs_pa, V_ABS, UINT64_MAX, 0),
	SER("ser-flbs-at-block-header", -EBADMSG, flbs_pa, V_REF, NEG(-64),
	    T_P_ROOT),
	SER("ser-flbs-past-end", -EBADMSG, flbs_pa, V_REF, 64, T_END),

	/* The user subtree FDT. */
	FLIPR("user-flip-fdt-magic", T_P_USER, R_START, 1, 0x01),
	FLIPR("user-flip-totalsize", T_P_USER, R_START, 5, 0x01),
	FLIPR("user-flip-struct", T_P_USER, R_STRUCT, 40, 0x01),
	FLIPR("user-flip-strings", T_P_USER, R_STRINGS, 1, 0x20),
	FLIPP("user-flip-compatible", T_P_USER, "/", "compatible", 0, 0x01),
	FLIPP("user-flip-child-value", T_P_USER, "/child", "value", 4, 0x01),
	BE32("user-fdt-magic-resigned", T_P_USER, R_START, 0, 0),
	BE32("user-fdt-totalsize-resigned", T_P_USER, R_START, 4,
	     USER_FDT_SIZE * 2),
	BE32("user-fdt-bad-token-resigned", T_P_USER, R_STRUCT, 0, 0x1234),

	/* LUO_HANDOVER_FD garbage; fd 100 holds the pristine copy. */
	ENV("env-empty", -EBADF, "", FDK_COPY),
	ENV("env-abc", -EBADF, "abc", FDK_COPY),
	ENV("env-minus-1", -EBADF, "-1", FDK_COPY),
	ENV("env-99999999999", -EBADF, "99999999999", FDK_COPY),
	ENV("env-3x", -EBADF, "3x", FDK_COPY),
	ENV("env-7-comma", -EBADF, "7,", FDK_COPY),
	ENV("env-7-8", -EBADF, "7,8", FDK_COPY),
	ENV("env-100x", -EBADF, "100x", FDK_COPY),
	ENV("env-space-100", -EBADF, " 100", FDK_COPY),
	ENV("env-plus-100", -EBADF, "+100", FDK_COPY),
	ENV("env-hex-0x64", -EBADF, "0x64", FDK_COPY),
	ENV("env-100-newline", -EBADF, "100\n", FDK_COPY),
	ENV("env-100-comma", -EBADF, "100,", FDK_COPY),
	ENV("env-two-fields", -EBADF, "100,101", FDK_COPY),
	ENV("env-teardown-pid-0", -EBADF, "100,101,0", FDK_COPY),
	ENV("env-empty-field", -EBADF, "100,,1", FDK_COPY),
	ENV("env-five-fields", -EBADF, "100,101,1,2,3", FDK_COPY),
	ENV("env-carrier-minus-two", -EBADF, "100,-1,0,-2", FDK_COPY),
	ENV("env-helper-without-pid", -EBADF, "100,101,0,-1", FDK_COPY),
	ENV("env-stderr", -EBADF, "2", FDK_COPY),
	ENV("env-closed-fd", -EBADF, "100", FDK_NONE),
	ENV("env-dev-null", -EBADF, "100", FDK_DEVNULL),
	ENV("env-pipe", -EBADF, "100", FDK_PIPE),
	ENV("env-regular-file-with-arena", -EBADF, "100", FDK_DISKFILE),
	ENV("env-directory", -EBADF, "100", FDK_DIR),
	ENV("env-random-memfd", -EBADMSG, "100", FDK_RANDOM_MEMFD),
	ENV("env-empty-memfd", -EBADMSG, "100", FDK_EMPTY_MEMFD),
	ENV("env-write-sealed-memfd", REFUSE_ANY, "100", FDK_SEALED_MEMFD),
	ENV("env-read-only-fd", REFUSE_ANY, "100", FDK_RDONLY),
	/* Not the library's arena, whatever it holds: never closed. */
	ENV("env-shm-file-named-arena", -EBADF, "100", FDK_SHM_FILE),
	ENV("env-foreign-memfd-with-arena", -EBADF, "100", FDK_FOREIGN_MEMFD),

	/* The original must still be intact after all of that. */
	{.name = "control-pristine-again",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_none},
};

const size_t ncases = sizeof(cases) / sizeof(cases[0]);
