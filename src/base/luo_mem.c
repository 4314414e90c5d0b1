// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>

#include "luo_mem.h"

#define BULK_MIN (64 << 10)

void *luo_bulk_alloc(size_t bytes)
{
	void *p;

	if (bytes < BULK_MIN)
		return calloc(1, bytes ? bytes : 1);
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void luo_bulk_free(void *p, size_t bytes)
{
	if (!p)
		return;
	if (bytes < BULK_MIN)
		free(p);
	else
		munmap(p, bytes);
}
