// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "luo_mem.h"

#define BULK_MIN (64 << 10)

/* Pages mapped and populated ahead (luo_bulk_reserve()), handed out in
 * order; never reused, so always still zero. */
static struct {
	pthread_mutex_t lock;
	char *base;
	size_t len, used;
} reserve = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t page_round(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (bytes + page - 1) & ~(page - 1);
}

static void *reserve_take(size_t bytes)
{
	size_t r = page_round(bytes);
	void *p = NULL;

	pthread_mutex_lock(&reserve.lock);
	if (reserve.base && reserve.len - reserve.used >= r) {
		p = reserve.base + reserve.used;
		reserve.used += r;
	}
	pthread_mutex_unlock(&reserve.lock);
	return p;
}

void *luo_bulk_alloc(size_t bytes)
{
	void *p;

	if (bytes < BULK_MIN)
		return calloc(1, bytes ? bytes : 1);
	p = reserve_take(bytes);
	if (p)
		return p;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* A chunk of the reserve is page aligned and page rounded: munmap()
 * frees exactly it, as it does a mapping of its own. */
void luo_bulk_free(void *p, size_t bytes)
{
	if (!p)
		return;
	if (bytes < BULK_MIN)
		free(p);
	else
		munmap(p, bytes);
}

int luo_bulk_reserve(size_t bytes)
{
	void *p;

	luo_bulk_reserve_release();
	bytes = page_round(bytes);
	if (bytes < BULK_MIN)
		return 0;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	pthread_mutex_lock(&reserve.lock);
	reserve.base = p;
	reserve.len = bytes;
	reserve.used = 0;
	pthread_mutex_unlock(&reserve.lock);
	return 0;
}

void luo_bulk_reserve_release(void)
{
	pthread_mutex_lock(&reserve.lock);
	if (reserve.base && reserve.used < reserve.len)
		munmap(reserve.base + reserve.used, reserve.len - reserve.used);
	reserve.base = NULL;
	reserve.len = reserve.used = 0;
	pthread_mutex_unlock(&reserve.lock);
}
