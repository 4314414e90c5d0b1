// SPDX-License-Identifier: MIT
/*
 * fuzz_convert: turn a fuzz input made for arena version 1 or 2 into one
 * for the current version (3: an idle intent record at 64, blocks from
 * 512), so that regressions and corpus inputs keep reaching the code they
 * were made for after the bump instead of stopping at the version check.
 *
 *   fuzz_convert IN OUT
 *
 * Every block moves up by the growth of the arena's head (448 bytes), and
 * so does every arena offset that points into the blocks: the header's
 * root FDT and crash record, each client's "fdt" in the root FDT, the LUO
 * FDT's "luo-abi-header", struct luo_ser's session and FLB blocks, each
 * session's file set; and every service u64 (subsystem data, user subtree
 * u64 properties, file and FLB data) that is exactly the payload offset of
 * a used block, as a kho_ptr_to_offset() value is.  The trailing free
 * block gives up the room (or the arena grows by a page when it cannot),
 * and the last two bytes of the input, the harness's carrier and control
 * bytes, stay the last two.
 *
 * A defect is kept: only what the old layout makes sound is followed (a
 * broken block chain is moved as it is, an offset outside the old data
 * area is left alone), and a checksum is recomputed only where it was
 * right before, so that an input for raw mode keeps its bad ones.
 *
 * An input cut short in its header, or whose header puts the blocks
 * elsewhere, only gets the new version (and the new first block's offset
 * where it had the old one).
 *
 * Exit status: 0 converted, 1 not an arena of an older version (nothing
 * written: the input must be judged by hand), 2 an error.
 */
#include <libfdt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_arena.h"

#define OLD_START ((uint64_t)KHO_BLOCK_ALIGN) /* versions 1 and 2 */
#define NEW_START ((uint64_t)KHO_ARENA_DATA_START)
#define SHIFT (NEW_START - OLD_START)
#define HDR ((uint64_t)sizeof(struct kho_block_header))
#define PAGE 4096
#define MAX_BLOCKS 4096

struct old_block {
	uint64_t off; /* in the old image */
	struct kho_block_header h;
	bool hdr_ok, payload_ok;
};

static struct old_block blocks[MAX_BLOCKS];
static size_t nblocks;
static uint64_t old_size; /* the old header's arena_size */

static uint32_t hdr_crc(const struct kho_block_header *h, uint64_t off)
{
	struct kho_block_header c = *h;

	c.header_crc = 0;
	return fz_crc32c((uint32_t)off ^ (uint32_t)(off >> 32), &c, sizeof(c));
}

/* The old chain as the old library walked it, up to where it breaks. */
static void walk_old(const uint8_t *buf, uint64_t len)
{
	uint64_t limit = old_size < len ? old_size : len, off = OLD_START;

	while (nblocks < MAX_BLOCKS && limit >= HDR && off <= limit - HDR) {
		struct old_block *b = &blocks[nblocks];

		memcpy(&b->h, buf + off, sizeof(b->h));
		if (b->h.magic != KHO_BLOCK_MAGIC)
			break;
		b->off = off;
		b->hdr_ok = hdr_crc(&b->h, off) == b->h.header_crc;
		b->payload_ok =
			(b->h.flags & KHO_BLOCK_CHECKED) &&
			b->h.checked_size <= len - off - HDR &&
			fz_crc32c(0, buf + off + HDR, b->h.checked_size) ==
				b->h.payload_crc;
		nblocks++;
		/* The old arena_size bounds the chain, not the file: a huge
		 * page arena's last block ends beyond the bytes given. */
		if (b->h.size < HDR || b->h.size % KHO_BLOCK_ALIGN ||
		    b->h.size > old_size - off)
			break;
		off += b->h.size;
	}
}

/* An offset into the old data area, moved; anything else as it was. */
static uint64_t moved(uint64_t off)
{
	return off >= OLD_START && off < old_size ? off + SHIFT : off;
}

/* A service u64: moved only if it is a used block's payload offset. */
static uint64_t moved_data(uint64_t v)
{
	for (size_t i = 0; i < nblocks; i++)
		if ((blocks[i].h.flags & KHO_BLOCK_USED) &&
		    v == blocks[i].off + HDR)
			return v + SHIFT;
	return v;
}

static uint8_t *out;
static uint64_t out_len;

/* @n bytes at @off of the new image, or NULL if they are not all there. */
static void *at(uint64_t off, uint64_t n)
{
	return off <= out_len && n <= out_len - off ? out + off : NULL;
}

static void fix_u64(uint64_t off, uint64_t (*fn)(uint64_t))
{
	uint64_t v;
	void *p = at(off, 8);

	if (!p)
		return;
	memcpy(&v, p, 8);
	v = fn(v);
	memcpy(p, &v, 8);
}

/* The u64 FDT property @name of @node, moved by @fn. */
static uint64_t fix_prop(void *fdt, int node, const char *name,
			 uint64_t (*fn)(uint64_t))
{
	int len;
	fdt64_t *p = fdt_getprop_w(fdt, node, name, &len);

	if (!p || len != 8)
		return 0;
	fdt64_st(p, fn(fdt64_ld(p)));
	return fdt64_ld(p);
}

/* Every u64 property of every node of @fdt that names a used block. */
static void fix_all_data_props(void *fdt)
{
	for (int node = 0; node >= 0; node = fdt_next_node(fdt, node, NULL)) {
		int prop;

		fdt_for_each_property_offset(prop, fdt, node) {
			int len;
			const char *name;

			fdt_getprop_by_offset(fdt, prop, &name, &len);
			if (len == 8)
				fix_prop(fdt, node, name, moved_data);
		}
	}
}

static void fix_luo_ser(uint64_t off)
{
	struct luo_ser s;
	struct luo_session_header_ser sh;
	struct luo_flb_header_ser fh;
	void *p = at(off, sizeof(s));

	if (!p)
		return;
	fix_u64(off + offsetof(struct luo_ser, sessions_pa), moved);
	fix_u64(off + offsetof(struct luo_ser, flbs_pa), moved);
	memcpy(&s, p, sizeof(s));
	if (s.sessions_pa && at(s.sessions_pa, sizeof(sh))) {
		memcpy(&sh, at(s.sessions_pa, sizeof(sh)), sizeof(sh));
		for (uint64_t i = 0; i < sh.count && i < 4096; i++) {
			uint64_t ss = s.sessions_pa + sizeof(sh) +
				      i * sizeof(struct luo_session_ser);
			uint64_t fo = ss + offsetof(struct luo_session_ser,
						    file_set_ser.files);
			uint64_t files, count;

			if (!at(ss, sizeof(struct luo_session_ser)))
				break;
			fix_u64(fo, moved);
			memcpy(&files, out + fo, 8);
			memcpy(&count, out + fo + 8, 8);
			for (uint64_t k = 0;
			     k < count && at(files, (k + 1) * FZ_FILE_SER_SIZE);
			     k++)
				fix_u64(files +
						k * sizeof(struct
							   luo_file_ser) +
						offsetof(struct luo_file_ser,
							 data),
					moved_data);
		}
	}
	if (s.flbs_pa && at(s.flbs_pa, sizeof(fh))) {
		memcpy(&fh, at(s.flbs_pa, sizeof(fh)), sizeof(fh));
		for (uint64_t i = 0; i < fh.count && i < LUO_FLB_MAX; i++) {
			uint64_t e = s.flbs_pa + sizeof(fh) +
				     i * sizeof(struct luo_flb_ser);

			if (!at(e, sizeof(struct luo_flb_ser)))
				break;
			fix_u64(e + offsetof(struct luo_flb_ser, data),
				moved_data);
		}
	}
}

/* The FDTs and what they lead to; fz_arena_fdt_at() checks each blob. */
static void fix_fdts(uint64_t root_off)
{
	void *root = fz_arena_fdt_at(out, out_len, root_off), *fdt;
	int node;

	if (!root)
		return;
	fdt_for_each_subnode(node, root, 0) {
		uint64_t off = fix_prop(root, node, KHO_SUBTREE_PROP, moved);
		const char *name = fdt_get_name(root, node, NULL);
		int sub;

		fdt = off ? fz_arena_fdt_at(out, out_len, off) : NULL;
		if (!fdt)
			continue;
		if (!name || strcmp(name, LUO_FDT_KHO_ENTRY_NAME)) {
			fix_all_data_props(fdt);
			continue;
		}
		fix_luo_ser(fix_prop(fdt, 0, LUO_FDT_ABI_HEADER, moved));
		sub = fdt_subnode_offset(fdt, 0, LUO_SUBSYSTEMS_NODE);
		if (sub >= 0) {
			int prop;

			fdt_for_each_property_offset(prop, fdt, sub) {
				const char *pname;
				int len;

				fdt_getprop_by_offset(fdt, prop, &pname, &len);
				if (len == 8)
					fix_prop(fdt, sub, pname, moved_data);
			}
		}
	}
}

/*
 * Version 1 had three reserved words where the crash record now is: set,
 * they were a layout defect, which the one reserved word left keeps.
 */
static void v1_reserved(struct kho_arena_header *h)
{
	if (h->crash_record && !h->reserved)
		h->reserved =
			(uint32_t)(h->crash_record | h->crash_record >> 32)
				?: 1;
	h->crash_record = 0;
}

/*
 * An input whose header is cut short or has no blocks where the old
 * layout has them is about the header's fields: only its version
 * changes (its checksum with it, if it was right), so that the next
 * check still sees the defect.
 */
static int header_only(const uint8_t *in, uint64_t len, FILE *o)
{
	struct kho_arena_header h = {0};
	uint32_t version = KHO_ARENA_VERSION, crc;
	bool crc_ok, version_1;
	uint8_t *copy;
	int err;

	memcpy(&h, in, len < sizeof(h) ? len : sizeof(h));
	/* The version's bytes must be the input's, not the harness's. */
	if (h.magic != KHO_ARENA_MAGIC || (h.version != 1 && h.version != 2) ||
	    len < offsetof(struct kho_arena_header, version) + 4 + 2)
		return 1;
	crc = h.header_crc;
	h.header_crc = 0;
	crc_ok = len >= sizeof(h) && fz_crc32c(0, &h, sizeof(h)) == crc;
	version_1 = h.version == 1;
	copy = malloc(len);
	if (!copy)
		return 2;
	memcpy(copy, in, len);
	memcpy(copy + offsetof(struct kho_arena_header, version), &version,
	       sizeof(version));
	/* The old first block's place becomes the new one's: its two low
	 * bytes change, and must not be the harness's two. */
	if (h.data_start == OLD_START) {
		uint64_t ds = NEW_START,
			 at_ds = offsetof(struct kho_arena_header, data_start);

		if (len < at_ds + 2 + 2) {
			free(copy);
			return 1;
		}
		memcpy(copy + at_ds, &ds,
		       len - at_ds < sizeof(ds) ? len - at_ds : sizeof(ds));
	}
	/* The reserved word must be the input's own, as the version's. */
	if (version_1 && h.crash_record &&
	    len < offsetof(struct kho_arena_header, header_crc) + 2) {
		free(copy);
		return 1;
	}
	if (version_1 && len >= sizeof(h)) {
		memcpy(&h, copy, sizeof(h));
		v1_reserved(&h);
		memcpy(copy, &h, sizeof(h));
	}
	if (crc_ok) {
		memcpy(&h, copy, sizeof(h));
		h.header_crc = 0;
		h.header_crc = fz_crc32c(0, &h, sizeof(h));
		memcpy(copy, &h, sizeof(h));
	}
	err = fwrite(copy, 1, len, o) == len ? 0 : 2;
	free(copy);
	return err;
}

static int convert(const uint8_t *in, uint64_t len, FILE *o)
{
	uint64_t padded = (len + PAGE - 1) / PAGE * PAGE, grow = 0, end, n;
	int err;
	struct kho_arena_header h, nh;
	uint32_t version;
	bool hdr_ok, absorb = false;
	uint8_t *old;

	if (len < sizeof(h))
		return header_only(in, len, o);
	old = calloc(padded, 1);
	if (!old)
		return 2;
	memcpy(old, in, len);
	memcpy(&h, old, sizeof(h));
	version = h.version;
	if (h.magic != KHO_ARENA_MAGIC || (version != 1 && version != 2) ||
	    h.data_start != OLD_START) {
		free(old);
		return header_only(in, len, o);
	}
	nh = h;
	nh.header_crc = 0;
	hdr_ok = fz_crc32c(0, &nh, sizeof(nh)) == h.header_crc;
	old_size = h.arena_size;
	walk_old(old, padded);

	/* Room for the head: from a trailing free block ending the arena,
	 * else one more page (4 KiB arenas only: a huge one has room). */
	if (nblocks) {
		struct old_block *l = &blocks[nblocks - 1];

		absorb = !l->h.flags && l->off + l->h.size == old_size &&
			 l->h.size >= SHIFT + HDR;
		end = l->off + l->h.size == old_size ? old_size : 0;
	} else {
		end = 0;
	}
	if (!absorb && h.page_size == PAGE)
		grow = PAGE;
	out_len = padded + grow;
	if (nblocks && blocks[nblocks - 1].off + SHIFT + HDR > out_len)
		out_len = (blocks[nblocks - 1].off + SHIFT + HDR + PAGE - 1) /
			  PAGE * PAGE;
	out = calloc(out_len + SHIFT, 1);
	if (!out) {
		free(old);
		return 2;
	}
	memcpy(out, old, sizeof(h));
	memcpy(out + NEW_START, old + OLD_START, padded - OLD_START);
	/* The harness's bytes, if they lay in the trailing free block,
	 * are not block contents: not moved, but put back at the end. */
	if (absorb && len - 2 >= blocks[nblocks - 1].off + HDR) {
		out[len - 2 + SHIFT] = 0;
		out[len - 1 + SHIFT] = 0;
	}

	/* Block sizes: the last free block shrinks, or a page is added. */
	if (absorb) {
		struct kho_block_header *b =
			(void *)(out + blocks[nblocks - 1].off + SHIFT);
		uint64_t sz;

		memcpy(&sz, &b->size, 8);
		sz -= SHIFT;
		memcpy(&b->size, &sz, 8);
		blocks[nblocks - 1].h.size = sz;
	} else if (grow && end) {
		struct kho_block_header fb = {.magic = KHO_BLOCK_MAGIC,
					      .size = grow - SHIFT};
		uint64_t at_off = end + SHIFT;

		if (at(at_off, HDR)) {
			fb.header_crc = hdr_crc(&fb, at_off);
			memcpy(out + at_off, &fb, sizeof(fb));
		}
	}

	/* The header: version, layout, and the offsets it holds. */
	memcpy(&nh, out, sizeof(nh));
	nh.version = KHO_ARENA_VERSION;
	nh.data_start = NEW_START;
	nh.arena_size += grow;
	nh.root_fdt = moved(h.root_fdt);
	if (version == 2)
		nh.crash_record = moved(h.crash_record);
	else
		v1_reserved(&nh);
	memcpy(out, &nh, sizeof(nh));
	fix_fdts(nh.root_fdt);
	/* The intent record between them is zero: idle. */

	/* Checksums, where they were right. */
	for (size_t i = 0; i < nblocks; i++) {
		uint64_t off = blocks[i].off + SHIFT;
		struct kho_block_header b;

		if (!at(off, HDR))
			break;
		memcpy(&b, out + off, sizeof(b));
		if (blocks[i].payload_ok && at(off + HDR, b.checked_size))
			b.payload_crc =
				fz_crc32c(0, out + off + HDR, b.checked_size);
		if (blocks[i].hdr_ok)
			b.header_crc = hdr_crc(&b, off);
		memcpy(out + off, &b, sizeof(b));
	}
	if (hdr_ok) {
		memcpy(&nh, out, sizeof(nh));
		nh.header_crc = 0;
		nh.header_crc = fz_crc32c(0, &nh, sizeof(nh));
		memcpy(out, &nh, sizeof(nh));
	}

	/* As long as the input where the trailing free block, whose payload
	 * nobody reads, gave up the room; else every byte moved is kept. */
	if (absorb) {
		uint64_t fp = blocks[nblocks - 1].off + SHIFT + HDR;

		n = out_len;
		while (n > fp && !out[n - 1])
			n--;
		n += 2;
		if (n < fp + 2)
			n = fp + 2;
		if (n < len)
			n = len;
	} else {
		n = len + SHIFT;
		/* A page was added: the memfd holds it if it held the arena. */
		if (grow && padded >= old_size && n < old_size + grow)
			n = old_size + grow;
	}
	if (n > out_len)
		n = out_len;
	out[n - 2] = in[len - 2];
	out[n - 1] = in[len - 1];
	free(old);
	err = fwrite(out, 1, n, o) == n ? 0 : 2;
	free(out);
	return err;
}

int main(int argc, char **argv)
{
	FILE *f, *o;
	uint8_t *buf;
	long len;
	int err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) || !(buf = malloc(len ? (size_t)len : 1)) ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "fuzz_convert: cannot read %s\n", argv[1]);
		return 2;
	}
	fclose(f);
	o = fopen(argv[2], "wb");
	if (!o) {
		fprintf(stderr, "fuzz_convert: cannot write %s\n", argv[2]);
		return 2;
	}
	err = convert(buf, (uint64_t)len, o);
	free(buf);
	if (fclose(o) || err) {
		remove(argv[2]);
		if (err == 1)
			fprintf(stderr,
				"fuzz_convert: %s: cannot be converted: not an arena of version 1 or 2, or too short\n",
				argv[1]);
		return err ? err : 2;
	}
	return 0;
}
