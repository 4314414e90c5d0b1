/* SPDX-License-Identifier: MIT */
/* An FDT bounded before libfdt walks it (fdt_bounded.c). */
#ifndef LUO_SRC_FDT_BOUNDED_H
#define LUO_SRC_FDT_BOUNDED_H

#include <stdbool.h>
#include <stddef.h>

/**
 * luo_fdt_bounded() - every structure of an FDT inside its bounds
 * @fdt: the blob.
 * @size: bytes readable at @fdt.
 *
 * Checks, with 64-bit arithmetic and without libfdt, that the header's
 * blocks lie inside @size, the reservation map ends, and every tag, node
 * name and property of the structure block lies inside it with its name
 * inside the strings block, nodes balanced under one root, FDT_END last.
 * Only then may a libfdt walker see the blob: libfdt 1.6.1 adds lengths
 * in int and loops forever on a property length of 0xfffffff4.
 *
 * Return: true if it is bounded (version 17 or later only).
 */
bool luo_fdt_bounded(const void *fdt, size_t size);

#endif
