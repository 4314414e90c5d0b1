// SPDX-License-Identifier: MIT
/*
 * The arena set up at luo_init(): a new one, mapped with one free block
 * covering it, or the previous image's, its header checked before it is
 * mapped, then its blocks walked and its root FDT parsed.  The top of the
 * memory layer: it calls the arena, the blocks and the subtrees below it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "kho_internal.h"
#include "log.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

int luo_kho_arena_create(unsigned int arena_flags, uint64_t reserve)
{
	unsigned int mfd_flags = MFD_CLOEXEC;
	struct kho_block first;
	int err;

	if (arena_flags & KHO_ARENA_HUGETLB)
		mfd_flags |= MFD_HUGETLB;
	luo_kho.fd = memfd_create(KHO_ARENA_MEMFD_NAME, mfd_flags);
	if (luo_kho.fd < 0) {
		err = -errno;
		pr_err("cannot create the handover memfd%s: %s",
		       (arena_flags & KHO_ARENA_HUGETLB) ? " on hugetlbfs" : "",
		       strerror(errno));
		luo_kho_arena_reset();
		return err;
	}
	luo_kho.flags = arena_flags;
	luo_kho.page_size =
		(arena_flags & KHO_ARENA_HUGETLB) ? KHO_HUGE_SIZE : 4096;
	err = luo_kho_arena_map(luo_kho.fd,
				kho_round_up(reserve, KHO_HUGE_SIZE),
				arena_flags & KHO_ARENA_THP);
	if (err) {
		pr_err("cannot reserve %llu bytes of address space for the arena: %s",
		       (unsigned long long)reserve, strerror(-err));
		goto fail;
	}
	luo_kho.size = 0;
	err = luo_kho_arena_grow(luo_kho.page_size);
	if (err)
		goto fail;

	/* One free block covers everything after the header. */
	first = (struct kho_block){.off = KHO_DATA_START,
				   .size = luo_kho.size - KHO_DATA_START};
	err = luo_kho_index_insert(0, &first);
	err = err ?: luo_kho_free_add(first.off);
	if (err)
		goto fail;
	luo_kho_block_write(&first, 0, 0);
	luo_kho_header_write();
	return 0;
fail:
	luo_kho_arena_destroy();
	return err;
}

/* Check what can be checked without mapping: fd type and header. */
static int adopt_check_header(int fd, const struct stat *st,
			      struct kho_arena_header *h, bool sealed,
			      char *why, size_t whylen)
{
	uint32_t crc;
	ssize_t n;

	if (!luo_kho_fd_is_arena_memfd(fd))
		return luo_reason(
			why, whylen, -EBADF,
			"fd %d is not a handover arena (a memfd named '%s'); it was left alone",
			fd, KHO_ARENA_MEMFD_NAME);
	if ((uint64_t)st->st_size < sizeof(*h))
		return luo_reason(
			why, whylen, -EBADMSG,
			"arena truncated to %llu bytes, shorter than its header (%zu)",
			(unsigned long long)st->st_size, sizeof(*h));
	n = pread(fd, h, sizeof(*h), 0);
	if (n != (ssize_t)sizeof(*h))
		return luo_reason(
			why, whylen, -EBADMSG,
			"cannot read the arena header (%zd of %zu bytes)", n,
			sizeof(*h));
	if (h->magic != KHO_ARENA_MAGIC)
		return luo_reason(why, whylen, -EBADMSG,
				  "bad arena magic %#llx (want %#llx)",
				  (unsigned long long)h->magic,
				  KHO_ARENA_MAGIC);
	crc = h->header_crc;
	h->header_crc = 0;
	if (luo_crc_mismatch(luo_crc32c(0, h, sizeof(*h)), crc))
		return luo_reason(why, whylen, -EBADMSG,
				  "arena header checksum mismatch (%#x)", crc);
	h->header_crc = crc;
	if (h->version != KHO_ARENA_VERSION)
		return luo_reason(why, whylen, -EPROTONOSUPPORT,
				  "arena version %u, this library reads %d",
				  h->version, KHO_ARENA_VERSION);
	if (h->header_size != sizeof(*h) || h->data_start != KHO_DATA_START ||
	    h->reserved)
		return luo_reason(
			why, whylen, -EBADMSG,
			"arena header layout mismatch (size %u, data at %llu)",
			h->header_size, (unsigned long long)h->data_start);
	if (h->flags & ~(KHO_ARENA_HUGETLB | KHO_ARENA_THP))
		return luo_reason(why, whylen, -EPROTONOSUPPORT,
				  "unknown arena flags %#x", h->flags);
	if (h->page_size !=
	    ((h->flags & KHO_ARENA_HUGETLB) ? KHO_HUGE_SIZE : 4096))
		return luo_reason(
			why, whylen, -EBADMSG,
			"arena page size %u does not match its flags %#x",
			h->page_size, h->flags);
	if (h->arena_size < h->data_start + KHO_HDR_SIZE ||
	    h->arena_size % h->page_size || h->arena_size > KHO_MAX_ARENA)
		return luo_reason(
			why, whylen, -EBADMSG,
			"arena size %llu is not a valid size (page %u)",
			(unsigned long long)h->arena_size, h->page_size);
	if (h->arena_size > (uint64_t)st->st_size)
		return luo_reason(
			why, whylen, -EBADMSG,
			"arena truncated: header says %llu bytes, the memfd has %llu",
			(unsigned long long)h->arena_size,
			(unsigned long long)st->st_size);
	if (sealed && !h->root_fdt)
		return luo_reason(why, whylen, -EBADMSG,
				  "arena was never finalized (no root FDT)");
	if (sealed && !luo_kho_intent_idle(fd))
		return luo_reason(
			why, whylen, -EBADMSG,
			"the sealed arena's intent record is not idle: a change of its metadata was in progress");
	return 0;
}

/*
 * @sealed: a live update's handover (its root FDT is parsed), else the
 * arena of a process that crashed (kho_crash_record.c): every block is
 * walked and checked alike, there is no root FDT to read.
 */
static int arena_adopt(int fd, uint64_t reserve, bool sealed, char *why,
		       size_t whylen)
{
	struct kho_arena_header h;
	struct stat st;
	int err;

	if (fstat(fd, &st))
		return luo_reason(why, whylen, -EBADF, "fd %d is not open", fd);
	/* After a crash, first finish the change it interrupted, if any. */
	err = sealed || !luo_kho_fd_is_arena_memfd(fd)
		      ? 0
		      : luo_kho_intent_recover(fd, (uint64_t)st.st_size, why,
					       whylen);
	err = err ?: adopt_check_header(fd, &st, &h, sealed, why, whylen);
	if (err) {
		/* Close it only if it was ours to close: a memfd. */
		if (err != -EBADF)
			close(fd);
		return err;
	}

	luo_kho.fd = fd;
	luo_kho.flags = h.flags;
	luo_kho.page_size = h.page_size;
	luo_kho.size = h.arena_size;
	if (reserve < h.arena_size)
		reserve = h.arena_size;
	err = luo_kho_arena_map(fd, kho_round_up(reserve, KHO_HUGE_SIZE),
				h.flags & KHO_ARENA_THP);
	if (err) {
		/* A sealed or read-only memfd cannot be ours: not usable. */
		snprintf(why, whylen, "cannot map the %llu byte arena: %s",
			 (unsigned long long)h.arena_size, strerror(-err));
		err = (err == -EACCES || err == -EPERM) ? -EBADF : err;
		goto fail;
	}
	luo_kho.root_fdt = 0;
	luo_kho.crash_record = h.crash_record; /* checked by its reader */
	err = luo_kho_walk_incoming(why, whylen);
	if (err)
		goto fail;
	err = sealed ? luo_kho_parse_incoming_root(why, whylen) : 0;
	if (err)
		goto fail;
	/* The incoming root FDT is history now; ours is built at freeze. */
	luo_kho_header_write();
	return 0;
fail:
	luo_kho_arena_destroy(); /* closes @fd: it is a memfd, and not usable */
	return err;
}

int luo_kho_arena_adopt(int fd, uint64_t reserve, char *why, size_t whylen)
{
	return arena_adopt(fd, reserve, true, why, whylen);
}

/**
 * luo_kho_arena_adopt_crashed() - adopt the arena of a process that crashed
 * @fd: the arena memfd the service manager's store handed back.
 * @reserve: address space to reserve for it.
 * @why: the reason of a refusal.
 * @whylen: its size.
 *
 * Every check of luo_kho_arena_adopt() (the header, every block header,
 * every checksummed block) but the root FDT, which a crash never wrote
 * (or wrote for a handover nobody received: it is ignored).  Every used
 * block is incoming, to be claimed or released at finish.
 *
 * Return: 0; -EBADF if @fd is not an arena memfd (left open); any other
 * error closes @fd.
 */
int luo_kho_arena_adopt_crashed(int fd, uint64_t reserve, char *why,
				size_t whylen)
{
	return arena_adopt(fd, reserve, false, why, whylen);
}
