// SPDX-License-Identifier: MIT
/* luoctl's tables for people (luoctl_json.c has the JSON). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "luoctl.h"

/* @cols: the keys to show, in order, NULL terminated; NULL: every key of
 * the first row. */
void print_table(const struct reply *r, const char *const *cols)
{
	const char *keys[64];
	size_t ncols = 0, width[64];

	if (cols) {
		while (cols[ncols] && ncols < 64) {
			keys[ncols] = cols[ncols];
			ncols++;
		}
	} else if (r->nrows) {
		for (; ncols < r->rows[0].n && ncols < 64; ncols++)
			keys[ncols] = r->rows[0].keys[ncols];
	}
	if (!r->nrows) {
		printf("(none)\n");
		return;
	}
	for (size_t k = 0; k < ncols; k++) {
		width[k] = strlen(keys[k]);
		for (size_t i = 0; i < r->nrows; i++) {
			const char *v = row_get(&r->rows[i], keys[k]);
			size_t len = v ? strlen(v) : 1;

			if (len > width[k])
				width[k] = len;
		}
	}
	for (size_t k = 0; k < ncols; k++) {
		char up[64];
		size_t j;

		for (j = 0; keys[k][j] && j < sizeof(up) - 1; j++)
			up[j] = (char)(keys[k][j] >= 'a' && keys[k][j] <= 'z'
					       ? keys[k][j] - 32
					       : keys[k][j]);
		up[j] = '\0';
		printf("%-*s%s", k + 1 < ncols ? (int)width[k] : 0, up,
		       k + 1 < ncols ? "  " : "\n");
	}
	for (size_t i = 0; i < r->nrows; i++) {
		for (size_t k = 0; k < ncols; k++) {
			const char *v = row_get(&r->rows[i], keys[k]);

			printf("%-*s%s", k + 1 < ncols ? (int)width[k] : 0,
			       v ? v : "-", k + 1 < ncols ? "  " : "\n");
		}
	}
}
