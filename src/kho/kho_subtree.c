// SPDX-License-Identifier: MIT
/*
 * The root FDT: one node per client naming the offset of that client's own
 * FDT.  It is built when the handover is frozen, after every client had
 * its say, and every metadata block is checksummed at the same moment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <luo/kho.h>

#include "crc32c.h"
#include "fdt_bounded.h"
#include "kho_internal.h"
#include "log.h"

/*
 * A sound FDT of @size bytes at most.  Only version 17 blobs (what libfdt
 * writes) are accepted: libfdt 1.6.1's fdt_check_full() can crash on an
 * older header, and loop forever on lengths it does not bound, so every
 * structure is bounded first (luo_fdt_bounded()).
 */
bool luo_kho_fdt_valid(const void *fdt, size_t size)
{
	if (!luo_fdt_bounded(fdt, size) || fdt_check_header(fdt) ||
	    fdt_version(fdt) < 17 || fdt_totalsize(fdt) > size)
		return false;
	return !fdt_check_full(fdt, size);
}

bool luo_kho_is_published(uint64_t payload_off)
{
	for (size_t i = 0; i < luo_kho.nout; i++)
		if (luo_kho.out[i].off == payload_off)
			return true;
	return false;
}

static ssize_t out_find_name(const char *name)
{
	for (size_t i = 0; i < luo_kho.nout; i++)
		if (!strcmp(luo_kho.out[i].name, name))
			return (ssize_t)i;
	return -1;
}

int kho_add_subtree(const char *name, void *fdt)
{
	if (name && !strcmp(name, LUO_FDT_KHO_ENTRY_NAME)) {
		pr_err("kho_add_subtree: the name '%s' is reserved for the library",
		       name);
		return -EINVAL;
	}
	return luo_kho_publish(name, fdt);
}

int luo_kho_publish(const char *name, void *fdt)
{
	struct kho_block *b;
	uint64_t off;
	int err;

	if (!luo_kho_name_valid(name)) {
		pr_err("kho_add_subtree: bad name '%s': use 1 to 63 characters of [A-Za-z0-9,._+-]",
		       name ? name : "(null)");
		return -EINVAL;
	}
	pthread_mutex_lock(&luo_kho_lock);
	err = -ENODEV;
	if (!luo_kho_ready())
		goto out;
	off = kho_ptr_to_offset(fdt);
	b = luo_kho_block_by_payload(off);
	err = -EINVAL;
	if (!b) {
		pr_err("kho_add_subtree(%s): the FDT must start a kho_alloc_preserve() allocation",
		       name);
		goto out;
	}
	if (!luo_kho_fdt_valid(fdt, b->payload_size)) {
		pr_err("kho_add_subtree(%s): not a valid, finished FDT", name);
		goto out;
	}
	err = -EBUSY;
	if (luo_kho.frozen) {
		pr_err("kho_add_subtree(%s): the handover is frozen", name);
		goto out;
	}
	err = -EEXIST;
	if (out_find_name(name) >= 0) {
		pr_err("kho_add_subtree: a subtree named '%s' is already published",
		       name);
		goto out;
	}
	if (luo_kho.nout == luo_kho.out_cap) {
		size_t cap = luo_kho.out_cap ? luo_kho.out_cap * 2 : 8;
		struct kho_subtree *n = realloc(luo_kho.out, cap * sizeof(*n));

		err = -ENOMEM;
		if (!n)
			goto out;
		luo_kho.out = n;
		luo_kho.out_cap = cap;
	}
	memset(&luo_kho.out[luo_kho.nout], 0, sizeof(luo_kho.out[0]));
	strcpy(luo_kho.out[luo_kho.nout].name, name);
	luo_kho.out[luo_kho.nout].off = off;
	luo_kho.out[luo_kho.nout].meta = b->flags & KHO_BLOCK_CHECKED;
	luo_kho.nout++;
	err = 0;
out:
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

int kho_remove_subtree(void *fdt)
{
	uint64_t off;
	int err = -ENOENT;

	pthread_mutex_lock(&luo_kho_lock);
	off = kho_ptr_to_offset(fdt);
	if (luo_kho.frozen) {
		err = -EBUSY;
		goto out;
	}
	for (size_t i = 0; off && i < luo_kho.nout; i++) {
		if (luo_kho.out[i].off != off)
			continue;
		luo_kho.out[i] = luo_kho.out[--luo_kho.nout];
		err = 0;
		break;
	}
out:
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

int kho_retrieve_subtree(const char *name, const void **fdt)
{
	int err = -ENODATA;

	if (!name || !fdt)
		return -EINVAL;
	pthread_mutex_lock(&luo_kho_lock);
	for (size_t i = 0; i < luo_kho.nin; i++) {
		err = -ENOENT;
		if (!strcmp(luo_kho.in[i].name, name)) {
			*fdt = luo_kho.base + luo_kho.in[i].off;
			err = 0;
			break;
		}
	}
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

static int build_root_fdt(void)
{
	size_t size = 256;
	void *fdt;
	int err;

	for (size_t i = 0; i < luo_kho.nout; i++)
		size += 64 + strlen(luo_kho.out[i].name);
	err = luo_kho_alloc_locked(size, KHO_BLOCK_CHECKED, &fdt);
	if (err)
		return err;
	err = fdt_create_empty_tree(fdt, (int)size);
	err = err
		      ?: fdt_setprop_string(fdt, 0, "compatible",
					    KHO_ROOT_COMPATIBLE);
	for (size_t i = 0; !err && i < luo_kho.nout; i++) {
		int node = fdt_add_subnode(fdt, 0, luo_kho.out[i].name);

		err = node < 0 ? node
			       : fdt_setprop_u64(fdt, node, KHO_SUBTREE_PROP,
						 luo_kho.out[i].off);
	}
	if (err) {
		pr_err("cannot build the root FDT: %s", fdt_strerror(err));
		luo_kho_free_locked(kho_ptr_to_offset(fdt));
		return -ENOSPC;
	}
	luo_kho.root_fdt = kho_ptr_to_offset(fdt);
	return 0;
}

/*
 * Checksum every metadata block: library blocks whole, FDTs by totalsize.
 * The headers are written KHO_INTENT_MAX to a change (kho_intent.c), in
 * the blackout: 16,000 sessions' blocks are 4,000 changes, not 16,000.
 */
static int checksum_metadata(void)
{
	/* For a tool (or test) that edits the handover before the seal. */
	const char *full = getenv("LUO_SEAL_FULL");
	bool ahead_ok = !full || strcmp(full, "1");
	struct kho_change c;

	luo_kho_change_begin(&c);
	for (size_t i = 0; i < luo_kho.nblocks; i++) {
		struct kho_block *b = &luo_kho.blocks[i];
		uint64_t payload = b->off + KHO_HDR_SIZE;
		uint64_t len = b->payload_size;
		bool subtree = luo_kho_is_published(payload);

		if (!(b->flags & KHO_BLOCK_USED))
			continue;
		if (subtree) {
			const void *fdt = luo_kho.base + payload;

			if (!luo_kho_fdt_valid(fdt, b->payload_size)) {
				pr_err("a published subtree FDT at %#llx was damaged after kho_add_subtree()",
				       (unsigned long long)payload);
				if (c.rec.count)
					luo_kho_change_commit(&c);
				return -EINVAL;
			}
			len = fdt_totalsize(fdt);
			b->flags |= KHO_BLOCK_CHECKED;
		}
		if (!(b->flags & KHO_BLOCK_CHECKED))
			continue;
		luo_kho_change_block(
			&c, b,
			b->ahead && ahead_ok && !subtree
				? b->ahead_crc
				: luo_crc32c(0, luo_kho.base + payload, len),
			len);
		if (c.rec.count == KHO_INTENT_MAX) {
			luo_kho_change_commit(&c);
			luo_kho_change_begin(&c);
		}
	}
	if (c.rec.count)
		luo_kho_change_commit(&c);
	return 0;
}

/**
 * luo_kho_meta_sum_ahead() - checksum a metadata block before the blackout
 * @ptr: the payload of a block from luo_kho_alloc_meta()
 *
 * The seal (luo_kho_finalize()) then takes this checksum instead of
 * reading the block inside the blackout: for the sessions' file tables,
 * written whole at prepare, most of the seal's work.  The caller must call
 * luo_kho_meta_touch() before each later write to the block; a write it
 * misses makes the new image refuse the handover (checksum mismatch),
 * never adopt a changed table.  LUO_SEAL_FULL=1 in the environment makes
 * the seal read every block all the same (for a tool that edits the
 * handover in the arena before the seal).
 */
void luo_kho_meta_sum_ahead(const void *ptr)
{
	struct kho_block *b;

	pthread_mutex_lock(&luo_kho_lock);
	b = luo_kho.base ? luo_kho_block_by_payload(kho_ptr_to_offset(ptr))
			 : NULL;
	if (b && (b->flags & KHO_BLOCK_CHECKED)) {
		b->ahead_crc = luo_crc32c(0, ptr, b->payload_size);
		b->ahead = true;
	}
	pthread_mutex_unlock(&luo_kho_lock);
}

/**
 * luo_kho_meta_touch() - a metadata block is about to change
 * @ptr: the payload of a block from luo_kho_alloc_meta()
 *
 * Drops the checksum luo_kho_meta_sum_ahead() took: the seal reads the
 * block again.
 */
void luo_kho_meta_touch(const void *ptr)
{
	struct kho_block *b;

	pthread_mutex_lock(&luo_kho_lock);
	b = luo_kho.base ? luo_kho_block_by_payload(kho_ptr_to_offset(ptr))
			 : NULL;
	if (b)
		b->ahead = false;
	pthread_mutex_unlock(&luo_kho_lock);
}

/* No allocation changes from now on: the blackout has started. */
void luo_kho_freeze(void)
{
	pthread_mutex_lock(&luo_kho_lock);
	luo_kho.frozen = true;
	pthread_mutex_unlock(&luo_kho_lock);
}

/* Sealed: luo_kho_finalize() checksummed the metadata; nothing may change. */
bool luo_kho_sealed(void)
{
	bool sealed;

	pthread_mutex_lock(&luo_kho_lock);
	sealed = luo_kho.root_fdt != 0;
	pthread_mutex_unlock(&luo_kho_lock);
	return sealed;
}

/*
 * Seal the handover right before the exec: build the root FDT, checksum
 * every metadata block and point the arena header at the root.
 */
int luo_kho_finalize(void)
{
	int err;

	pthread_mutex_lock(&luo_kho_lock);
	err = build_root_fdt();
	if (!err) {
		err = checksum_metadata();
		if (err) {
			luo_kho_free_locked(luo_kho.root_fdt);
			luo_kho.root_fdt = 0;
		}
	}
	if (!err)
		luo_kho_header_write();
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

/* Undo luo_kho_freeze() and luo_kho_finalize(): the update was cancelled. */
void luo_kho_unfreeze(void)
{
	pthread_mutex_lock(&luo_kho_lock);
	/* Published user blobs are checksummed only while finalized. */
	for (size_t i = 0; i < luo_kho.nout; i++) {
		struct kho_block *b =
			luo_kho_block_by_payload(luo_kho.out[i].off);

		if (b && !luo_kho.out[i].meta &&
		    (b->flags & KHO_BLOCK_CHECKED)) {
			b->flags &= ~KHO_BLOCK_CHECKED;
			luo_kho_block_write(b, 0, 0);
		}
	}
	if (luo_kho.root_fdt)
		luo_kho_free_locked(luo_kho.root_fdt);
	luo_kho.root_fdt = 0;
	luo_kho.frozen = false;
	if (luo_kho.base)
		luo_kho_header_write();
	pthread_mutex_unlock(&luo_kho_lock);
}

/* Validate an incoming client blob: a checked block holding a sound FDT. */
static int incoming_fdt(uint64_t off, char *why, size_t whylen,
			const char *what)
{
	struct kho_block *b = luo_kho_block_by_payload(off);

	if (!b || !(b->flags & KHO_BLOCK_CHECKED))
		return luo_reason(
			why, whylen, -EBADMSG,
			"%s at %#llx is not a preserved metadata block", what,
			(unsigned long long)off);
	/* Only the checksummed bytes may hold the FDT. */
	if (!luo_kho_fdt_valid(luo_kho.base + off, b->checked_size))
		return luo_reason(why, whylen, -EBADMSG,
				  "%s at %#llx is not a valid FDT", what,
				  (unsigned long long)off);
	return 0;
}

int luo_kho_parse_incoming_root(char *why, size_t whylen)
{
	uint64_t root = kho_header()->root_fdt;
	const void *fdt;
	size_t n = 0;
	int node, err;

	/* The offset is checked before any pointer is formed from it. */
	err = incoming_fdt(root, why, whylen, "root FDT");
	if (err)
		return err;
	fdt = luo_kho.base + root;
	if (fdt_node_check_compatible(fdt, 0, KHO_ROOT_COMPATIBLE))
		return luo_reason(why, whylen, -EPROTONOSUPPORT,
				  "root FDT is not compatible with '%s'",
				  KHO_ROOT_COMPATIBLE);
	fdt_for_each_subnode(node, fdt, 0)
		n++;
	luo_kho.in = calloc(n ? n : 1, sizeof(*luo_kho.in));
	if (!luo_kho.in)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	fdt_for_each_subnode(node, fdt, 0) {
		const char *name = fdt_get_name(fdt, node, NULL);
		const fdt64_t *prop;
		uint64_t off;
		int len;

		if (!luo_kho_name_valid(name))
			return luo_reason(why, whylen, -EBADMSG,
					  "root FDT has a bad subtree name");
		for (size_t i = 0; i < luo_kho.nin; i++)
			if (!strcmp(luo_kho.in[i].name, name))
				return luo_reason(why, whylen, -EBADMSG,
						  "subtree '%s' appears twice",
						  name);
		prop = fdt_getprop(fdt, node, KHO_SUBTREE_PROP, &len);
		if (!prop || len != sizeof(*prop))
			return luo_reason(
				why, whylen, -EBADMSG,
				"subtree '%s' has no valid '%s' property", name,
				KHO_SUBTREE_PROP);
		off = fdt64_ld(prop);
		err = incoming_fdt(off, why, whylen, name);
		if (err)
			return err;
		strcpy(luo_kho.in[luo_kho.nin].name, name);
		luo_kho.in[luo_kho.nin].off = off;
		luo_kho.nin++;
	}
	return 0;
}

void luo_kho_forget_incoming(void)
{
	pthread_mutex_lock(&luo_kho_lock);
	free(luo_kho.in);
	luo_kho.in = NULL;
	luo_kho.nin = 0;
	pthread_mutex_unlock(&luo_kho_lock);
}

/* Hand @fn a sound blob; false for a missing or half-built one. */
static bool blob_visit(const char *name, uint64_t off, kho_blob_fn fn,
		       void *arg)
{
	struct kho_block *blk = luo_kho_block_by_payload(off);
	const void *fdt;

	if (!off || !blk)
		return false;
	fdt = luo_kho.base + off;
	if (!luo_kho_fdt_valid(fdt, blk->payload_size))
		return false;
	fn(name, off, fdt, fdt_totalsize(fdt), arg);
	return true;
}

size_t luo_kho_blobs_foreach(bool incoming, kho_blob_fn fn, void *arg)
{
	size_t n = 0;

	pthread_mutex_lock(&luo_kho_lock);
	if (incoming && luo_kho.in) {
		n += blob_visit("root", kho_header()->root_fdt, fn, arg);
		for (size_t i = 0; i < luo_kho.nin; i++)
			n += blob_visit(luo_kho.in[i].name, luo_kho.in[i].off,
					fn, arg);
	} else if (!incoming) {
		n += blob_visit("root", luo_kho.root_fdt, fn, arg);
		for (size_t i = 0; i < luo_kho.nout; i++)
			n += blob_visit(luo_kho.out[i].name, luo_kho.out[i].off,
					fn, arg);
	}
	pthread_mutex_unlock(&luo_kho_lock);
	return n;
}
