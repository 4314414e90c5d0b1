// SPDX-License-Identifier: MIT
/*
 * Raw arena image helpers for the fuzzing harness and the seed generator.
 * Every access is bounds checked against the image: these run on fuzzed
 * bytes before the library sees them.
 */
#include <libfdt.h>
#include <stdbool.h>
#include <string.h>

#include "../../src/kho/kho_internal.h"
#include "../../src/participants/luo_session_internal.h"
#include "fuzz_arena.h"

#define HDR_SIZE ((uint64_t)sizeof(struct kho_block_header))
#define DATA_START ((uint64_t)KHO_ARENA_DATA_START)

static uint32_t crc_table[256];

uint32_t fz_crc32c(uint32_t seed, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~seed;

	if (!crc_table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t v = i;

			for (int k = 0; k < 8; k++)
				v = (v >> 1) ^ ((v & 1) ? 0x82f63b78U : 0);
			crc_table[i] = v;
		}
	}
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* End of the part of @buf the block chain may cover. */
static uint64_t chain_limit(const uint8_t *buf, size_t len)
{
	struct kho_arena_header h;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	return h.arena_size < len ? h.arena_size : len;
}

/*
 * Walk the block chain: @fn sees each block header that lies inside the
 * image and has the right magic; the walk stops where the chain breaks.
 * Returns the offset of the last block visited (0 if none).
 */
static uint64_t walk(uint8_t *buf, size_t len,
		     bool (*fn)(uint8_t *buf, uint64_t off, uint64_t limit,
				void *arg),
		     void *arg)
{
	uint64_t limit = chain_limit(buf, len), off = DATA_START, last = 0;

	while (limit >= HDR_SIZE && off <= limit - HDR_SIZE) {
		struct kho_block_header h;

		memcpy(&h, buf + off, sizeof(h));
		if (h.magic != KHO_BLOCK_MAGIC)
			break;
		last = off;
		if (fn && !fn(buf, off, limit, arg))
			break;
		memcpy(&h, buf + off, sizeof(h));
		if (h.size < HDR_SIZE || h.size % KHO_BLOCK_ALIGN ||
		    h.size > limit - off)
			break;
		off += h.size;
	}
	return last;
}

static bool fix_block(uint8_t *buf, uint64_t off, uint64_t limit, void *arg)
{
	struct kho_block_header h;

	(void)arg;
	memcpy(&h, buf + off, sizeof(h));
	if ((h.flags & KHO_BLOCK_CHECKED) &&
	    h.checked_size <= limit - off - HDR_SIZE)
		h.payload_crc =
			fz_crc32c(0, buf + off + HDR_SIZE, h.checked_size);
	h.header_crc = 0;
	h.header_crc =
		fz_crc32c((uint32_t)off ^ (uint32_t)(off >> 32), &h, sizeof(h));
	memcpy(buf + off, &h, sizeof(h));
	return true;
}

void fz_arena_fix_checksums(uint8_t *buf, size_t len)
{
	struct kho_arena_header h;

	if (len < sizeof(h))
		return;
	walk(buf, len, fix_block, NULL);
	memcpy(&h, buf, sizeof(h));
	h.header_crc = 0;
	h.header_crc = fz_crc32c(0, &h, sizeof(h));
	memcpy(buf, &h, sizeof(h));
}

struct files_walk {
	fz_file_fn fn;
	void *arg;
	size_t visited;
};

static bool files_block(uint8_t *buf, uint64_t off, uint64_t limit, void *arg)
{
	struct files_walk *w = arg;
	struct kho_block_header h;
	struct luo_file_ser *fs;
	struct luo_file_fd_ser *fds;
	uint64_t n;

	memcpy(&h, buf + off, sizeof(h));
	if (h.flags != (KHO_BLOCK_USED | KHO_BLOCK_CHECKED) ||
	    !h.payload_size || h.payload_size % FZ_FILE_SER_SIZE ||
	    h.payload_size > limit - off - HDR_SIZE)
		return true;
	n = h.payload_size / FZ_FILE_SER_SIZE;
	/* The structures are packed: any address will do. */
	fs = (struct luo_file_ser *)(buf + off + HDR_SIZE);
	fds = (struct luo_file_fd_ser *)(fs + n);
	for (uint64_t i = 0; i < n; i++)
		/* The library's own rule for a handler compatible. */
		if (!luo_compatible_valid(fs[i].compatible,
					  sizeof(fs[i].compatible)))
			return true;
	for (uint64_t i = 0; i < n; i++, w->visited++)
		w->fn(&fs[i], &fds[i], w->arg);
	return true;
}

size_t fz_arena_for_each_file(uint8_t *buf, size_t len, fz_file_fn fn,
			      void *arg)
{
	struct files_walk w = {.fn = fn, .arg = arg};

	walk(buf, len, files_block, &w);
	return w.visited;
}

void *fz_arena_fdt_at(uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t limit = chain_limit(buf, len);
	struct kho_block_header h;

	if (off < DATA_START + HDR_SIZE || off > limit)
		return NULL;
	memcpy(&h, buf + off - HDR_SIZE, sizeof(h));
	if (h.magic != KHO_BLOCK_MAGIC || h.payload_size > limit - off ||
	    h.payload_size > INT32_MAX ||
	    h.payload_size < sizeof(struct fdt_header))
		return NULL;
	/* libfdt 1.6.1's fdt_check_full() crashes or loops forever on some
	 * blobs: not here (the library itself is what the fuzzer is after),
	 * so with the library's own bounded check first. */
	if (!luo_kho_fdt_valid(buf + off, (size_t)h.payload_size))
		return NULL;
	return buf + off;
}

int fz_arena_files_node(uint8_t *buf, size_t len, void **fdt)
{
	struct kho_arena_header h;
	const fdt64_t *p;
	void *root, *luo;
	int node, plen;

	if (len < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	root = fz_arena_fdt_at(buf, len, h.root_fdt);
	node = root ? fdt_subnode_offset(root, 0, LUO_FDT_KHO_ENTRY_NAME) : -1;
	p = node >= 0 ? fdt_getprop(root, node, KHO_SUBTREE_PROP, &plen) : NULL;
	luo = p && plen == sizeof(*p) ? fz_arena_fdt_at(buf, len, fdt64_ld(p))
				      : NULL;
	node = luo ? fdt_subnode_offset(luo, 0, LUO_FILES_NODE) : -1;
	if (node < 0)
		return -1;
	*fdt = luo;
	return node;
}

uint64_t fz_arena_last_block(uint8_t *buf, size_t len)
{
	return walk(buf, len, NULL, NULL);
}

size_t fz_arena_trim(uint8_t *buf, size_t len)
{
	struct kho_arena_header h;
	struct kho_block_header b;
	uint64_t last, end;

	if (len < sizeof(h))
		return len;
	memcpy(&h, buf, sizeof(h));
	if (h.arena_size != len || h.page_size != 4096)
		return len;
	last = walk(buf, len, NULL, NULL);
	if (!last)
		return len;
	memcpy(&b, buf + last, sizeof(b));
	if (b.flags || last + b.size != len)
		return len;
	end = (last + HDR_SIZE + 4095) / 4096 * 4096;
	b.size = end - last;
	memcpy(buf + last, &b, sizeof(b));
	h.arena_size = end;
	memcpy(buf, &h, sizeof(h));
	fz_arena_fix_checksums(buf, end);
	return end;
}
