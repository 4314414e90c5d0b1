/* SPDX-License-Identifier: MIT */
/* e2e-handover: what its parts share (see handover.c). */
#ifndef LUO_TESTS_E2E_HANDOVER_H
#define LUO_TESTS_E2E_HANDOVER_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#include "../common/mix.h"

#define BIG_SIZE (8u << 20)
#define SMALL_SIZE 1000
#define TWIN_SIZE 256
#define GAP_SIZE (16u << 10)
#define USER_FDT_SIZE 4096
#define CONST_DATA 0x2aULL
#define BIG_SEED 0xb16b16ULL
#define SMALL_SEED 0x5a11ULL
#define USER_COMPATIBLE "e2e-user-v1"
#define PROBE_FD 100
#define PROBE_REFUSED 3
#define PROBE_TIMEOUT_MS 30000
#define MIN_CORRUPTIONS 50
#define BLK_HDR ((uint64_t)sizeof(struct kho_block_header))

extern char self[PATH_MAX];
extern char selfdir[PATH_MAX];

/* ------------------------------------------------------------------ */
/* The inherited (pristine) handover and where things are in it. */

struct blk {
	uint64_t off; /* header offset */
	uint64_t size, payload_size, checked_size;
	uint32_t flags;
};

struct layout {
	int fd;
	const uint8_t *p; /* read-only view of the original */
	uint64_t file_size, arena_size;
	struct blk blocks[512];
	size_t nblocks;
	/* payload offsets */
	uint64_t root, luo, ser, user, big, small, twin1, twin2;
	/* header offsets */
	uint64_t free_mid, tail;
};

extern struct layout L;

/* ------------------------------------------------------------------ */
/* Corruption cases. */

enum target {
	T_NONE,
	T_HDR,
	T_B_FIRST, /* block headers */
	T_B_ROOT,
	T_B_LUO,
	T_B_SER,
	T_B_USER,
	T_B_BIG,
	T_B_SMALL,
	T_B_TWIN1,
	T_B_TWIN2,
	T_B_FREE,
	T_B_TAIL,
	T_P_ROOT, /* payloads */
	T_P_LUO,
	T_P_SER,
	T_P_USER,
	T_P_BIG,
	T_P_FREE,
	T_END, /* arena_size */
	T_HALF,
};

/* Expected outcome. */
#define ACCEPT 0
#define REFUSE_ANY 1 /* any refusal; the errno is not pinned down */

/* Case flags. */
#define RESIGNED                                                               \
	0x1 /* checksums recomputed: a checksum must not be the reason */
#define CONTROL 0x2 /* a positive control, not a corruption */

/* How a value is computed from the case. */
enum vk { V_ABS, V_ADD, V_REF };

/* FDT operations. */
enum op {
	OP_NOP,
	OP_SETU64,
	OP_SETU32,
	OP_SETSTR,
	OP_DELPROP,
	OP_DELNODE,
	OP_RENAME,
	OP_ADDNODE,  /* subnode @str of @path with "fdt" = value */
	OP_DUPNODE,  /* a second subnode named @str with "fdt" = value */
	OP_DUPPROP,  /* a second property named @prop with value */
	OP_SETBYTES, /* @prop = the @len bytes at @str */
};

/* Regions of an FDT, for raw flips. */
enum region { R_START, R_STRUCT, R_STRINGS };

/* Where probe fd PROBE_FD comes from. */
enum fdkind {
	FDK_COPY, /* the (damaged) copy */
	FDK_NONE,
	FDK_DEVNULL,
	FDK_PIPE,
	FDK_DISKFILE, /* a regular file on disk holding the pristine bytes */
	FDK_DIR,
	FDK_RANDOM_MEMFD,
	FDK_EMPTY_MEMFD,
	FDK_SEALED_MEMFD,  /* the pristine copy, F_SEAL_WRITE */
	FDK_RDONLY,	   /* the pristine copy, opened again read-only */
	FDK_SHM_FILE,	   /* a /dev/shm file named as the arena, pristine */
	FDK_FOREIGN_MEMFD, /* the pristine bytes in a memfd named otherwise */
};

struct ctx;

struct kase {
	const char *name;
	int expect;
	unsigned int flags;
	int (*fn)(struct ctx *c, const struct kase *k);
	int target;
	uint64_t off, len;
	int vk;
	uint64_t val;
	int ref;
	int op;
	const char *path, *prop, *str;
};

struct ctx {
	uint8_t *p; /* writable view of the copy */
	int fd;
	uint64_t size;
	char env[64];
	int fdkind;
};

/* handover.c */
void fill(void *p, size_t len, uint64_t seed);
size_t bad_words(const void *p, size_t len, uint64_t seed);
uint32_t crc32c(uint32_t seed, const void *buf, size_t len);

/* handover_layout.c */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void take_handover(void);
const struct blk *blk_at(uint64_t hdr_off);
uint64_t u64_prop(const void *fdt, const char *path, const char *prop);
const void *payload_fdt(uint64_t payload, const char *what);
void parse_layout(void);
uint64_t tgt(int t);

/* handover_mutators.c */
uint64_t value(const struct kase *k, uint64_t cur);
uint64_t get_le(const uint8_t *p, uint64_t len);
void set_le(uint8_t *p, uint64_t len, uint64_t v);
void resign_arena_header(struct ctx *c);
void resign_block_header(struct ctx *c, uint64_t off);
void resign_block(struct ctx *c, uint64_t off);
int mut_none(struct ctx *c, const struct kase *k);
int mut_resign_all(struct ctx *c, const struct kase *k);
uint64_t region_base(const struct kase *k);
int mut_flip(struct ctx *c, const struct kase *k);
int mut_flip_prop(struct ctx *c, const struct kase *k);
int mut_fill(struct ctx *c, const struct kase *k);
int mut_hdr(struct ctx *c, const struct kase *k);
int mut_blk(struct ctx *c, const struct kase *k);
int mut_pay(struct ctx *c, const struct kase *k);
int mut_be32(struct ctx *c, const struct kase *k);
int mut_make_free(struct ctx *c, const struct kase *k);
int mut_shrink_payload(struct ctx *c, const struct kase *k);
int mut_shrink_checked(struct ctx *c, const struct kase *k);
int mut_copy_header(struct ctx *c, const struct kase *k);
int mut_trunc(struct ctx *c, const struct kase *k);
int mut_grow(struct ctx *c, const struct kase *k);
int mut_fdt(struct ctx *c, const struct kase *k);
int mut_env(struct ctx *c, const struct kase *k);

/* handover_cases.c */
extern const struct kase cases[];
extern const size_t ncases;

/* handover_corrupt.c, handover_dtc.c: the stages */
int stage_corrupt(void);
int stage_dtc(const char *dtc);

#endif
