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
#include "luo_control_proto.h"

/*
 * A sound FDT of @size bytes at most.  Only version 17 blobs (what libfdt
 * writes) are accepted: libfdt 1.6.1's fdt_check_full() can crash on an
 * older header, and loop forever on lengths it does not bound, so every
 * structure is bounded first (luo_fdt_bounded()).
 */
bool kho_fdt_valid(const void *fdt, size_t size)
{
	if (!luo_fdt_bounded(fdt, size) || fdt_check_header(fdt) ||
	    fdt_version(fdt) < 17 || fdt_totalsize(fdt) > size)
		return false;
	return !fdt_check_full(fdt, size);
}

bool kho_is_published(uint64_t payload_off)
{
	for (size_t i = 0; i < kho.nout; i++)
		if (kho.out[i].off == payload_off)
			return true;
	return false;
}

static ssize_t out_find_name(const char *name)
{
	for (size_t i = 0; i < kho.nout; i++)
		if (!strcmp(kho.out[i].name, name))
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
	return kho_publish(name, fdt);
}

int kho_publish(const char *name, void *fdt)
{
	struct kho_block *b;
	uint64_t off;
	int err;

	if (!kho_name_valid(name)) {
		pr_err("kho_add_subtree: bad name '%s': use 1 to 63 characters of [A-Za-z0-9,._+-]",
		       name ? name : "(null)");
		return -EINVAL;
	}
	pthread_mutex_lock(&kho_lock);
	err = -ENODEV;
	if (!kho_ready())
		goto out;
	off = kho_ptr_to_offset(fdt);
	b = kho_block_by_payload(off);
	err = -EINVAL;
	if (!b) {
		pr_err("kho_add_subtree(%s): the FDT must start a kho_alloc_preserve() allocation",
		       name);
		goto out;
	}
	if (!kho_fdt_valid(fdt, b->payload_size)) {
		pr_err("kho_add_subtree(%s): not a valid, finished FDT", name);
		goto out;
	}
	err = -EBUSY;
	if (kho.frozen) {
		pr_err("kho_add_subtree(%s): the handover is frozen", name);
		goto out;
	}
	err = -EEXIST;
	if (out_find_name(name) >= 0) {
		pr_err("kho_add_subtree: a subtree named '%s' is already published",
		       name);
		goto out;
	}
	if (kho.nout == kho.out_cap) {
		size_t cap = kho.out_cap ? kho.out_cap * 2 : 8;
		struct kho_subtree *n = realloc(kho.out, cap * sizeof(*n));

		err = -ENOMEM;
		if (!n)
			goto out;
		kho.out = n;
		kho.out_cap = cap;
	}
	memset(&kho.out[kho.nout], 0, sizeof(kho.out[0]));
	strcpy(kho.out[kho.nout].name, name);
	kho.out[kho.nout].off = off;
	kho.out[kho.nout].meta = b->flags & KHO_BLOCK_CHECKED;
	kho.nout++;
	err = 0;
out:
	pthread_mutex_unlock(&kho_lock);
	return err;
}

int kho_remove_subtree(void *fdt)
{
	uint64_t off;
	int err = -ENOENT;

	pthread_mutex_lock(&kho_lock);
	off = kho_ptr_to_offset(fdt);
	if (kho.frozen) {
		err = -EBUSY;
		goto out;
	}
	for (size_t i = 0; off && i < kho.nout; i++) {
		if (kho.out[i].off != off)
			continue;
		kho.out[i] = kho.out[--kho.nout];
		err = 0;
		break;
	}
out:
	pthread_mutex_unlock(&kho_lock);
	return err;
}

int kho_retrieve_subtree(const char *name, const void **fdt)
{
	int err = -ENODATA;

	if (!name || !fdt)
		return -EINVAL;
	pthread_mutex_lock(&kho_lock);
	for (size_t i = 0; i < kho.nin; i++) {
		err = -ENOENT;
		if (!strcmp(kho.in[i].name, name)) {
			*fdt = kho.base + kho.in[i].off;
			err = 0;
			break;
		}
	}
	pthread_mutex_unlock(&kho_lock);
	return err;
}

static int build_root_fdt(void)
{
	size_t size = 256;
	void *fdt;
	int err;

	for (size_t i = 0; i < kho.nout; i++)
		size += 64 + strlen(kho.out[i].name);
	err = kho_alloc_locked(size, KHO_BLOCK_CHECKED, &fdt);
	if (err)
		return err;
	err = fdt_create_empty_tree(fdt, (int)size);
	err = err
		      ?: fdt_setprop_string(fdt, 0, "compatible",
					    KHO_ROOT_COMPATIBLE);
	for (size_t i = 0; !err && i < kho.nout; i++) {
		int node = fdt_add_subnode(fdt, 0, kho.out[i].name);

		err = node < 0 ? node
			       : fdt_setprop_u64(fdt, node, KHO_SUBTREE_PROP,
						 kho.out[i].off);
	}
	if (err) {
		pr_err("cannot build the root FDT: %s", fdt_strerror(err));
		kho_free_locked(kho_ptr_to_offset(fdt));
		return -ENOSPC;
	}
	kho.root_fdt = kho_ptr_to_offset(fdt);
	return 0;
}

/* Checksum every metadata block: library blocks whole, FDTs by totalsize. */
static int checksum_metadata(void)
{
	for (size_t i = 0; i < kho.nblocks; i++) {
		struct kho_block *b = &kho.blocks[i];
		uint64_t payload = b->off + KHO_HDR_SIZE;
		uint64_t len = b->payload_size;
		bool subtree = kho_is_published(payload);

		if (!(b->flags & KHO_BLOCK_USED))
			continue;
		if (subtree) {
			const void *fdt = kho.base + payload;

			if (!kho_fdt_valid(fdt, b->payload_size)) {
				pr_err("a published subtree FDT at %#llx was damaged after kho_add_subtree()",
				       (unsigned long long)payload);
				return -EINVAL;
			}
			len = fdt_totalsize(fdt);
			b->flags |= KHO_BLOCK_CHECKED;
		}
		if (b->flags & KHO_BLOCK_CHECKED)
			kho_block_write(
				b, luo_crc32c(0, kho.base + payload, len), len);
	}
	return 0;
}

/* No allocation changes from now on: the blackout has started. */
void kho_freeze(void)
{
	pthread_mutex_lock(&kho_lock);
	kho.frozen = true;
	pthread_mutex_unlock(&kho_lock);
}

/* Sealed: kho_finalize() checksummed the metadata; nothing may change. */
bool kho_sealed(void)
{
	bool sealed;

	pthread_mutex_lock(&kho_lock);
	sealed = kho.root_fdt != 0;
	pthread_mutex_unlock(&kho_lock);
	return sealed;
}

/*
 * Seal the handover right before the exec: build the root FDT, checksum
 * every metadata block and point the arena header at the root.
 */
int kho_finalize(void)
{
	int err;

	pthread_mutex_lock(&kho_lock);
	err = build_root_fdt();
	if (!err) {
		err = checksum_metadata();
		if (err) {
			kho_free_locked(kho.root_fdt);
			kho.root_fdt = 0;
		}
	}
	if (!err)
		kho_header_write();
	pthread_mutex_unlock(&kho_lock);
	return err;
}

/* Undo kho_freeze() and kho_finalize(): the update was cancelled. */
void kho_unfreeze(void)
{
	pthread_mutex_lock(&kho_lock);
	/* Published user blobs are checksummed only while finalized. */
	for (size_t i = 0; i < kho.nout; i++) {
		struct kho_block *b = kho_block_by_payload(kho.out[i].off);

		if (b && !kho.out[i].meta && (b->flags & KHO_BLOCK_CHECKED)) {
			b->flags &= ~KHO_BLOCK_CHECKED;
			kho_block_write(b, 0, 0);
		}
	}
	if (kho.root_fdt)
		kho_free_locked(kho.root_fdt);
	kho.root_fdt = 0;
	kho.frozen = false;
	if (kho.base)
		kho_header_write();
	pthread_mutex_unlock(&kho_lock);
}

/* Validate an incoming client blob: a checked block holding a sound FDT. */
static int incoming_fdt(uint64_t off, char *why, size_t whylen,
			const char *what)
{
	struct kho_block *b = kho_block_by_payload(off);

	if (!b || !(b->flags & KHO_BLOCK_CHECKED))
		return luo_reason(
			why, whylen, -EBADMSG,
			"%s at %#llx is not a preserved metadata block", what,
			(unsigned long long)off);
	/* Only the checksummed bytes may hold the FDT. */
	if (!kho_fdt_valid(kho.base + off, b->checked_size))
		return luo_reason(why, whylen, -EBADMSG,
				  "%s at %#llx is not a valid FDT", what,
				  (unsigned long long)off);
	return 0;
}

int kho_parse_incoming_root(char *why, size_t whylen)
{
	uint64_t root = kho_header()->root_fdt;
	const void *fdt;
	size_t n = 0;
	int node, err;

	/* The offset is checked before any pointer is formed from it. */
	err = incoming_fdt(root, why, whylen, "root FDT");
	if (err)
		return err;
	fdt = kho.base + root;
	if (fdt_node_check_compatible(fdt, 0, KHO_ROOT_COMPATIBLE))
		return luo_reason(why, whylen, -EPROTONOSUPPORT,
				  "root FDT is not compatible with '%s'",
				  KHO_ROOT_COMPATIBLE);
	fdt_for_each_subnode(node, fdt, 0)
		n++;
	kho.in = calloc(n ? n : 1, sizeof(*kho.in));
	if (!kho.in)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	fdt_for_each_subnode(node, fdt, 0) {
		const char *name = fdt_get_name(fdt, node, NULL);
		const fdt64_t *prop;
		uint64_t off;
		int len;

		if (!kho_name_valid(name))
			return luo_reason(why, whylen, -EBADMSG,
					  "root FDT has a bad subtree name");
		for (size_t i = 0; i < kho.nin; i++)
			if (!strcmp(kho.in[i].name, name))
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
		strcpy(kho.in[kho.nin].name, name);
		kho.in[kho.nin].off = off;
		kho.nin++;
	}
	return 0;
}

void kho_forget_incoming(void)
{
	pthread_mutex_lock(&kho_lock);
	free(kho.in);
	kho.in = NULL;
	kho.nin = 0;
	pthread_mutex_unlock(&kho_lock);
}

/* One row for a sound blob; false for a missing or half-built one. */
static bool describe_blob(struct ctl_buf *b, const char *name, uint64_t off)
{
	struct kho_block *blk = kho_block_by_payload(off);
	const void *fdt;

	if (!off || !blk)
		return false;
	fdt = kho.base + off;
	if (!kho_fdt_valid(fdt, blk->payload_size))
		return false;
	ctl_row_begin(b);
	ctl_row_str(b, "name", name);
	ctl_row_u64(b, "offset", off);
	ctl_row_u64(b, "size", fdt_totalsize(fdt));
	ctl_buf_printf(b, " hex=");
	for (uint32_t i = 0; i < fdt_totalsize(fdt); i++)
		ctl_buf_printf(b, "%02x", ((const uint8_t *)fdt)[i]);
	ctl_row_end(b);
	return true;
}

int kho_blobs_describe(struct ctl_buf *b, bool incoming)
{
	size_t n = 0;

	pthread_mutex_lock(&kho_lock);
	if (incoming && kho.in) {
		n += describe_blob(b, "root", kho_header()->root_fdt);
		for (size_t i = 0; i < kho.nin; i++)
			n += describe_blob(b, kho.in[i].name, kho.in[i].off);
	} else if (!incoming) {
		n += describe_blob(b, "root", kho.root_fdt);
		for (size_t i = 0; i < kho.nout; i++)
			n += describe_blob(b, kho.out[i].name, kho.out[i].off);
	}
	pthread_mutex_unlock(&kho_lock);
	return n ? 0 : -ENODATA;
}
