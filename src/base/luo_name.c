// SPDX-License-Identifier: MIT
/* The rule every name of the library follows: letters, digits, a few
 * punctuation characters that each kind of name chooses. */
#include <string.h>

#include "luo_name.h"

bool luo_name_valid(const char *name, size_t len, size_t max, const char *punct)
{
	if (!name || len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c && strchr(punct, c))))
			return false;
	}
	return true;
}
