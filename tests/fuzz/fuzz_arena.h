/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the fuzzing harness and the seed generator: they read
 * and patch raw handover arena images (see include/luo/abi.h) without the
 * library, so that test inputs can be made consistent before luo_init()
 * judges them.
 */
#ifndef LUO_TESTS_FUZZ_ARENA_H
#define LUO_TESTS_FUZZ_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <luo/abi.h>

/* Bytes of one preserved file in a file set block. */
#define FZ_FILE_SER_SIZE                                                       \
	(sizeof(struct luo_file_ser) + sizeof(struct luo_file_fd_ser))

/* CRC32C (Castagnoli), independent of the library's implementation. */
uint32_t fz_crc32c(uint32_t seed, const void *buf, size_t len);

/*
 * Recompute every checksum of the arena image @buf[0..@len): the arena
 * header, each block header along the block chain as far as the chain is
 * sound, and the payload CRC of every KHO_BLOCK_CHECKED block.  Nothing
 * else changes, so a structurally bad image stays bad.
 */
void fz_arena_fix_checksums(uint8_t *buf, size_t len);

/*
 * Call @fn for every preserved-file record of every block that looks like
 * a session's file set (a checked block of exactly N * FZ_FILE_SER_SIZE
 * payload bytes whose N compatibles are printable strings).  Returns the
 * number of records visited.  The records may be changed in place.
 */
typedef void (*fz_file_fn)(struct luo_file_ser *file,
			   struct luo_file_fd_ser *where, void *arg);
size_t fz_arena_for_each_file(uint8_t *buf, size_t len, fz_file_fn fn,
			      void *arg);

/*
 * The LUO FDT of the arena image and the offset of its "files" node,
 * found through the arena header's root FDT and its "LUO" subtree, each a
 * sound FDT within its block's payload.  Returns the node offset and sets
 * *@fdt, or returns -1.  Properties may be changed in place.
 */
int fz_arena_files_node(uint8_t *buf, size_t len, void **fdt);

/*
 * The FDT at payload offset @off of the arena image, if its block holds
 * a sound one (bounded by the library's own check first), else NULL.
 */
void *fz_arena_fdt_at(uint8_t *buf, size_t len, uint64_t off);

/* Offset of the last block header of the chain, 0 if there is none. */
uint64_t fz_arena_last_block(uint8_t *buf, size_t len);

/*
 * Shrink the trailing free block so the arena ends at the first page
 * boundary after it; fixes the checksums.  Returns the new arena size, or
 * @len unchanged if the image does not end with a free block.
 */
size_t fz_arena_trim(uint8_t *buf, size_t len);

#endif
