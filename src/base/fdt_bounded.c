// SPDX-License-Identifier: MIT
/*
 * An FDT bounded before libfdt walks it.  Shared by the library (every
 * incoming blob) and luoctl (every blob a peer sends).
 */
#include <libfdt.h>
#include <stdint.h>
#include <string.h>

#include "fdt_bounded.h"

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* See fdt_bounded.h; the offsets are 64-bit so no sum can wrap. */
bool luo_fdt_bounded(const void *fdt, size_t size)
{
	const uint8_t *b = fdt;
	uint64_t total, off_st, size_st, off_str, size_str, off_rsv, p = 0;
	static const uint8_t zero[16];
	const uint8_t *st, *str;
	unsigned int depth = 0;
	bool root = false;

	if (size < sizeof(struct fdt_header) || be32_at(b) != FDT_MAGIC)
		return false;
	total = be32_at(b + 4);
	off_st = be32_at(b + 8);
	off_str = be32_at(b + 12);
	off_rsv = be32_at(b + 16);
	size_str = be32_at(b + 32);
	size_st = be32_at(b + 36);
	if (be32_at(b + 20) < 17 || total > size ||
	    total < sizeof(struct fdt_header) || off_rsv % 8 ||
	    off_rsv < sizeof(struct fdt_header) || off_st % 4 ||
	    off_st < sizeof(struct fdt_header) || size_st % 4 ||
	    off_st + size_st > total || off_str + size_str > total)
		return false;
	for (;; off_rsv += 16) { /* address and size, both 0 at the end */
		if (off_rsv + 16 > total)
			return false;
		if (!memcmp(b + off_rsv, zero, sizeof(zero)))
			break;
	}
	st = b + off_st;
	str = b + off_str;
	while (p + 4 <= size_st) {
		uint32_t tag = be32_at(st + p);
		uint64_t len, name;

		p += 4;
		switch (tag) {
		case FDT_BEGIN_NODE:
			if (!depth && root)
				return false; /* a second root */
			len = 0;
			while (p + len < size_st && st[p + len])
				len++;
			if (p + len >= size_st)
				return false;
			p += (len + 1 + 3) / 4 * 4;
			depth++;
			root = true;
			break;
		case FDT_END_NODE:
			if (!depth--)
				return false;
			break;
		case FDT_PROP:
			if (!depth || p + 8 > size_st)
				return false;
			len = be32_at(st + p);
			name = be32_at(st + p + 4);
			p += 8;
			if (len > size_st - p || name >= size_str ||
			    !memchr(str + name, 0, size_str - name))
				return false;
			p += (len + 3) / 4 * 4;
			break;
		case FDT_NOP:
			break;
		case FDT_END:
			return root && !depth;
		default:
			return false;
		}
	}
	return false;
}
