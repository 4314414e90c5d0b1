/* SPDX-License-Identifier: MIT */
#ifndef LUO_SRC_MEM_H
#define LUO_SRC_MEM_H

#include <stddef.h>

/*
 * Zeroed memory for large tables built inside the blackout.  Large ones
 * come from mmap(MAP_POPULATE): one system call maps every page, where
 * touching fresh heap pages one by one takes a fault each.
 */
void *luo_bulk_alloc(size_t bytes);
void luo_bulk_free(void *p, size_t bytes);

#endif
