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

/**
 * luo_bulk_reserve() - map and populate @bytes now, for later bulk tables
 * @bytes: how much the tables to come will take, about.
 *
 * For a spawned new image, which knows before the freeze how many files
 * its tables will hold: luo_bulk_alloc() takes from the reserve while it
 * lasts, so the blackout pays no page population.  Single use: release
 * it once the tables are built.
 *
 * Return: 0; -ENOMEM (luo_bulk_alloc() maps as usual).
 */
int luo_bulk_reserve(size_t bytes);

/**
 * luo_bulk_reserve_release() - unmap what is left of the reserve
 *
 * Tables taken from it stay valid and are freed one by one as usual.
 */
void luo_bulk_reserve_release(void);

#endif
