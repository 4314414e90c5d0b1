// SPDX-License-Identifier: MIT
/* e2e-handover: the mutators, each damaging a copy of the handover one way. */
#include "handover.h"

uint64_t value(const struct kase *k, uint64_t cur)
{
	switch (k->vk) {
	case V_ADD:
		return cur + k->val;
	case V_REF:
		return tgt(k->ref) + k->val;
	default:
		return k->val;
	}
}

/* Fields wider than 8 bytes (reserved arrays) are set by their first 8. */
uint64_t get_le(const uint8_t *p, uint64_t len)
{
	uint64_t v = 0;

	memcpy(&v, p, len < 8 ? len : 8);
	return v;
}

void set_le(uint8_t *p, uint64_t len, uint64_t v)
{
	memcpy(p, &v, len < 8 ? len : 8);
}

void resign_arena_header(struct ctx *c)
{
	struct kho_arena_header h;

	memcpy(&h, c->p, sizeof(h));
	h.header_crc = 0;
	h.header_crc = crc32c(0, &h, sizeof(h));
	memcpy(c->p, &h, sizeof(h));
}

void resign_block_header(struct ctx *c, uint64_t off)
{
	struct kho_block_header h;

	memcpy(&h, c->p + off, sizeof(h));
	h.header_crc = 0;
	h.header_crc =
		crc32c((uint32_t)off ^ (uint32_t)(off >> 32), &h, sizeof(h));
	memcpy(c->p + off, &h, sizeof(h));
}

/* Recompute a checked block's payload CRC, then its header CRC. */
void resign_block(struct ctx *c, uint64_t off)
{
	struct kho_block_header h;

	memcpy(&h, c->p + off, sizeof(h));
	if (h.flags & KHO_BLOCK_CHECKED) {
		h.payload_crc = crc32c(0, c->p + off + BLK_HDR, h.checked_size);
		memcpy(c->p + off, &h, sizeof(h));
	}
	resign_block_header(c, off);
}

int mut_none(struct ctx *c, const struct kase *k)
{
	(void)c;
	(void)k;
	return 0;
}

int mut_resign_all(struct ctx *c, const struct kase *k)
{
	(void)k;
	for (size_t i = 0; i < L.nblocks; i++)
		resign_block(c, L.blocks[i].off);
	resign_arena_header(c);
	return 0;
}

uint64_t region_base(const struct kase *k)
{
	uint64_t base = tgt(k->target);
	const void *fdt = L.p + base;

	if (k->op == R_STRUCT)
		return base + fdt_off_dt_struct(fdt);
	if (k->op == R_STRINGS)
		return base + fdt_off_dt_strings(fdt);
	return base;
}

/* Flip bits of one byte; checksums are left alone. */
int mut_flip(struct ctx *c, const struct kase *k)
{
	c->p[region_base(k) + k->off] ^= (uint8_t)k->val;
	return 0;
}

/* Flip bits of one byte of a property's value in an FDT payload. */
int mut_flip_prop(struct ctx *c, const struct kase *k)
{
	uint64_t base = tgt(k->target);
	int node = fdt_path_offset(L.p + base, k->path), len;
	const uint8_t *v =
		node < 0 ? NULL : fdt_getprop(L.p + base, node, k->prop, &len);

	if (!v || (uint64_t)len <= k->off)
		return -1;
	c->p[(uint64_t)(v - L.p) + k->off] ^= (uint8_t)k->val;
	return 0;
}

/* Overwrite a byte range with one value. */
int mut_fill(struct ctx *c, const struct kase *k)
{
	memset(c->p + tgt(k->target) + k->off, (int)k->val, k->len);
	return 0;
}

/* A field of the arena header, header CRC recomputed. */
int mut_hdr(struct ctx *c, const struct kase *k)
{
	uint8_t *f = c->p + k->off;

	set_le(f, k->len, value(k, get_le(f, k->len)));
	resign_arena_header(c);
	return 0;
}

/* A field of a block header, header CRC recomputed. */
int mut_blk(struct ctx *c, const struct kase *k)
{
	uint8_t *f = c->p + tgt(k->target) + k->off;

	set_le(f, k->len, value(k, get_le(f, k->len)));
	resign_block_header(c, tgt(k->target));
	return 0;
}

/* A field in a checked payload (struct luo_ser), both CRCs recomputed. */
int mut_pay(struct ctx *c, const struct kase *k)
{
	uint8_t *f = c->p + tgt(k->target) + k->off;

	set_le(f, k->len, value(k, get_le(f, k->len)));
	resign_block(c, tgt(k->target) - BLK_HDR);
	return 0;
}

/* A big-endian u32 in an FDT payload (header or region), CRCs recomputed. */
int mut_be32(struct ctx *c, const struct kase *k)
{
	uint64_t at = region_base(k) + k->off;
	fdt32_t v = cpu_to_fdt32((uint32_t)k->val);

	memcpy(c->p + at, &v, 4);
	resign_block(c, tgt(k->target) - BLK_HDR);
	return 0;
}

/* Turn a used block into a well-formed free block. */
int mut_make_free(struct ctx *c, const struct kase *k)
{
	struct kho_block_header h;
	uint64_t off = tgt(k->target);

	memcpy(&h, c->p + off, sizeof(h));
	h.flags = 0;
	h.payload_size = 0;
	h.checked_size = 0;
	h.payload_crc = 0;
	memcpy(c->p + off, &h, sizeof(h));
	resign_block_header(c, off);
	return 0;
}

/* Shrink a checked block's payload_size (and checked_size) to @val. */
int mut_shrink_payload(struct ctx *c, const struct kase *k)
{
	struct kho_block_header h;
	uint64_t off = tgt(k->target);

	memcpy(&h, c->p + off, sizeof(h));
	h.payload_size = k->val;
	h.checked_size = k->val;
	memcpy(c->p + off, &h, sizeof(h));
	resign_block(c, off);
	return 0;
}

/*
 * Leave payload_size alone but checksum only the first @val bytes: what
 * the parsers read beyond them would not be covered by any CRC.
 */
int mut_shrink_checked(struct ctx *c, const struct kase *k)
{
	struct kho_block_header h;
	uint64_t off = tgt(k->target);

	memcpy(&h, c->p + off, sizeof(h));
	h.checked_size = k->val;
	memcpy(c->p + off, &h, sizeof(h));
	resign_block(c, off);
	return 0;
}

/* Copy the header of block @target over the header of block @ref. */
int mut_copy_header(struct ctx *c, const struct kase *k)
{
	uint8_t a[BLK_HDR], b[BLK_HDR];

	memcpy(a, c->p + tgt(k->target), BLK_HDR);
	memcpy(b, c->p + tgt(k->ref), BLK_HDR);
	memcpy(c->p + tgt(k->ref), a, BLK_HDR);
	if (k->val) /* swap */
		memcpy(c->p + tgt(k->target), b, BLK_HDR);
	return 0;
}

int mut_trunc(struct ctx *c, const struct kase *k)
{
	return ftruncate(c->fd, (off_t)value(k, c->size));
}

/* The memfd and arena_size both grow by a page; the header is re-signed. */
int mut_grow(struct ctx *c, const struct kase *k)
{
	struct kho_arena_header h;

	if (ftruncate(c->fd, (off_t)(c->size + k->val)))
		return -1;
	memcpy(&h, c->p, sizeof(h));
	h.arena_size += k->val;
	memcpy(c->p, &h, sizeof(h));
	resign_arena_header(c);
	return 0;
}

/* Edit an FDT payload with libfdt, write it back the same size, re-sign. */
int mut_fdt(struct ctx *c, const struct kase *k)
{
	uint64_t payload = tgt(k->target);
	void *orig = c->p + payload;
	int size = (int)fdt_totalsize(orig);
	int bufsize = size + 4096, node = 0, err = 0;
	char *tmp = malloc((size_t)bufsize);
	uint64_t v = value(k, 0);

	if (!tmp)
		return -1;
	err = fdt_open_into(orig, tmp, bufsize);
	if (!err && k->path) {
		node = fdt_path_offset(tmp, k->path);
		err = node < 0 ? node : 0;
	}
	switch (err ? OP_NOP : k->op) {
	case OP_SETU64:
		err = fdt_setprop_u64(tmp, node, k->prop, v);
		break;
	case OP_SETU32:
		err = fdt_setprop_u32(tmp, node, k->prop, (uint32_t)v);
		break;
	case OP_SETSTR:
		err = fdt_setprop_string(tmp, node, k->prop, k->str);
		break;
	case OP_DELPROP:
		err = fdt_delprop(tmp, node, k->prop);
		break;
	case OP_SETBYTES:
		err = fdt_setprop(tmp, node, k->prop, k->str, (int)k->len);
		break;
	case OP_DELNODE:
		err = fdt_del_node(tmp, node);
		break;
	case OP_RENAME:
		err = fdt_set_name(tmp, node, k->str);
		break;
	case OP_ADDNODE:
	case OP_DUPNODE: {
		int sub = fdt_add_subnode(
			tmp, node, k->op == OP_ADDNODE ? k->str : "e2e-dup");

		err = sub < 0 ? sub
			      : fdt_setprop_u64(tmp, sub, KHO_SUBTREE_PROP, v);
		/* libfdt refuses a duplicate name when adding, not renaming */
		if (!err && k->op == OP_DUPNODE)
			err = fdt_set_name(tmp, sub, k->str);
		break;
	}
	case OP_DUPPROP: {
		/* add "<prop minus last char>~", then rename its string */
		char alias[128];
		size_t n = strlen(k->prop);
		char *strings;
		int slen;

		snprintf(alias, sizeof(alias), "%.*s~", (int)n - 1, k->prop);
		err = fdt_setprop_u64(tmp, node, alias, v);
		if (err)
			break;
		strings = tmp + fdt_off_dt_strings(tmp);
		slen = (int)fdt_size_dt_strings(tmp);
		err = -FDT_ERR_NOTFOUND;
		for (int i = 0; i + (int)n < slen; i++)
			if (!memcmp(strings + i, alias, n + 1)) {
				memcpy(strings + i, k->prop, n);
				err = 0;
				break;
			}
		break;
	}
	default:
		break;
	}
	/* packed first, or fdt_open_into() wants room for the slack too */
	if (!err)
		err = fdt_pack(tmp);
	if (!err)
		err = fdt_open_into(tmp, orig, size);
	free(tmp);
	if (err) {
		fprintf(stderr, "e2e-handover: %s: libfdt: %s\n", k->name,
			fdt_strerror(err));
		return -1;
	}
	resign_block(c, payload - BLK_HDR);
	return 0;
}

int mut_env(struct ctx *c, const struct kase *k)
{
	snprintf(c->env, sizeof(c->env), "%s", k->str);
	c->fdkind = k->op;
	return 0;
}
