/* SPDX-License-Identifier: MIT */
/* The rule every name of the library follows (luo_name.c). */
#ifndef LUO_SRC_NAME_H
#define LUO_SRC_NAME_H

#include <stdbool.h>
#include <stddef.h>

/**
 * luo_name_valid() - a name of 1 to @max characters from a given set
 * @name: the name (need not be NUL-terminated).
 * @len: its length.
 * @max: the longest allowed.
 * @punct: the characters allowed besides ASCII letters and digits.
 *
 * Used by every layer for its own names: subtree and subsystem names
 * (",._+-"), device path components (",._+:@-"), control socket names
 * ("._-").  A NUL byte inside @len is never allowed.
 *
 * Return: true if @name follows the rule.
 */
bool luo_name_valid(const char *name, size_t len, size_t max,
		    const char *punct);

#endif
