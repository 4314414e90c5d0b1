// SPDX-License-Identifier: MIT
/*
 * The handover arena: one memfd, mapped once into a fixed reservation of
 * address space so that it can grow without moving.  The next image maps
 * the same memfd again: the same pages, nothing copied.  The bottom of the
 * memory layer: it calls nothing of it (kho_setup.c makes a new arena or
 * adopts an incoming one with the blocks and subtrees above this).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "kho_internal.h"
#include "log.h"
#include "luo_name.h"

struct kho_arena luo_kho = {.fd = -1};
pthread_mutex_t luo_kho_lock = PTHREAD_MUTEX_INITIALIZER;

bool luo_kho_ready(void)
{
	return luo_kho.base != NULL;
}

bool luo_kho_name_valid(const char *name)
{
	return name && luo_name_valid(name, strnlen(name, KHO_NAME_MAX + 1),
				      KHO_NAME_MAX, ",._+-");
}

int luo_kho_arena_map(int fd, uint64_t len, bool thp)
{
	uint64_t slack = KHO_HUGE_SIZE;
	uint8_t *raw, *aligned, *p;

	raw = mmap(NULL, len + slack, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -errno;
	aligned = (uint8_t *)kho_round_up((uintptr_t)raw, slack);
	if (aligned > raw)
		munmap(raw, aligned - raw);
	munmap(aligned + len, raw + slack - aligned);

	p = mmap(aligned, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		munmap(aligned, len);
		return err;
	}
	if (thp && madvise(p, len, MADV_HUGEPAGE))
		pr_info("MADV_HUGEPAGE refused (%s): arena stays on 4 KiB pages",
			strerror(errno));
	luo_kho.base = p;
	luo_kho.reserved = len;
	return 0;
}

void luo_kho_arena_reset(void)
{
	free(luo_kho.blocks);
	free(luo_kho.free_offs);
	free(luo_kho.out);
	free(luo_kho.in);
	memset(&luo_kho, 0, sizeof(luo_kho));
	luo_kho.fd = -1;
}

void luo_kho_header_image(struct kho_arena_header *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = KHO_ARENA_MAGIC;
	h->version = KHO_ARENA_VERSION;
	h->header_size = sizeof(*h);
	h->flags = luo_kho.flags;
	h->page_size = (uint32_t)luo_kho.page_size;
	h->data_start = KHO_DATA_START;
	h->arena_size = luo_kho.size;
	h->root_fdt = luo_kho.root_fdt;
	h->crash_record = luo_kho.crash_record;
	h->header_crc = luo_crc32c(0, h, sizeof(*h));
}

int luo_kho_arena_grow(uint64_t new_size)
{
	new_size = kho_round_up(new_size, luo_kho.page_size);
	if (new_size <= luo_kho.size)
		return 0;
	if (new_size > luo_kho.reserved) {
		pr_err("handover arena full: %llu bytes needed, %llu reserved; raise luo_init_opts.arena_max",
		       (unsigned long long)new_size,
		       (unsigned long long)luo_kho.reserved);
		return -ENOMEM;
	}
	if (luo_kho.flags & KHO_ARENA_HUGETLB) {
		/* Take the huge pages now: a fault without one is SIGBUS. */
		if (fallocate(luo_kho.fd, 0, (off_t)luo_kho.size,
			      (off_t)(new_size - luo_kho.size))) {
			int err = errno;

			pr_err("cannot get %llu bytes of huge pages for the arena: %s; reserve more in /proc/sys/vm/nr_hugepages",
			       (unsigned long long)(new_size - luo_kho.size),
			       strerror(err));
			return -ENOMEM;
		}
	} else if (ftruncate(luo_kho.fd, (off_t)new_size)) {
		int err = errno;

		pr_err("cannot grow the arena to %llu bytes: %s",
		       (unsigned long long)new_size, strerror(err));
		return -ENOMEM;
	}
	luo_kho.size = new_size;
	return 0;
}

/*
 * Zero a byte range so free memory always reads as zero: whole pages go
 * back to the system, the ragged edges are cleared by hand.
 */
void luo_kho_zero_range(uint64_t off, uint64_t len)
{
	uint64_t lo = kho_round_up(off, luo_kho.page_size);
	uint64_t hi = (off + len) / luo_kho.page_size * luo_kho.page_size;

	if (hi > lo &&
	    !fallocate(luo_kho.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)lo, (off_t)(hi - lo))) {
		memset(luo_kho.base + off, 0, lo - off);
		memset(luo_kho.base + hi, 0, off + len - hi);
		return;
	}
	memset(luo_kho.base + off, 0, len);
}

/*
 * Whether @fd can be an arena this library created: a memfd (sealable,
 * no name in any file system) called "luo-arena".  A tmpfs file such as
 * one in /dev/shm accepts F_GET_SEALS too, so the seals alone do not
 * tell; a descriptor that fails this is not ours and is never closed.
 */
bool luo_kho_fd_is_arena_memfd(int fd)
{
	static const char want[] = "/memfd:" KHO_ARENA_MEMFD_NAME " (deleted)";
	char path[64], target[sizeof(want) + 1];
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 0 || fcntl(fd, F_GET_SEALS) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target));
	/* Without /proc the name cannot be read: the rest must do. */
	if (n < 0)
		return errno == ENOENT && access("/proc/self/fd", F_OK);
	return (size_t)n == sizeof(want) - 1 &&
	       !memcmp(target, want, (size_t)n);
}

void luo_kho_arena_destroy(void)
{
	if (luo_kho.base)
		munmap(luo_kho.base, luo_kho.reserved);
	if (luo_kho.fd >= 0)
		close(luo_kho.fd);
	luo_kho_arena_reset();
}

int luo_kho_fd(void)
{
	return luo_kho.fd;
}
