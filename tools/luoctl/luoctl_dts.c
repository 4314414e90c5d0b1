// SPDX-License-Identifier: MIT
/* A flattened device tree printed as device-tree source, as `dtc -O dts`
 * would, so that the stock dtc reads it back. */
#define _GNU_SOURCE
#include <ctype.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#include "fdt_bounded.h"
#include "luoctl.h"

/* A list of NUL-terminated printable strings, none empty. */
static bool is_strings(const char *v, int len)
{
	int start = 0;

	if (len <= 0 || v[len - 1])
		return false;
	for (int i = 0; i < len; i++) {
		if (!v[i]) {
			if (i == start)
				return false;
			start = i + 1;
		} else if (!isprint((unsigned char)v[i]) || v[i] == '"' ||
			   v[i] == '\\') {
			return false;
		}
	}
	return true;
}

static void print_value(const char *v, int len)
{
	if (is_strings(v, len)) {
		printf(" = ");
		for (int i = 0; i < len; i += (int)strlen(v + i) + 1)
			printf("%s\"%s\"", i ? ", " : "", v + i);
	} else if (len % 4 == 0) {
		printf(" = <");
		for (int i = 0; i < len; i += 4)
			printf("%s0x%x", i ? " " : "",
			       fdt32_ld((const fdt32_t *)(v + i)));
		printf(">");
	} else {
		printf(" = [");
		for (int i = 0; i < len; i++)
			printf("%s%02x", i ? " " : "", (unsigned char)v[i]);
		printf("]");
	}
}

int print_dts(const void *fdt, size_t size, const char *label)
{
	int depth = 0, offset = 0, next;
	uint32_t tag;

	/* Bounded first: libfdt's walkers can loop forever otherwise. */
	if (!luo_fdt_bounded(fdt, size) || fdt_check_header(fdt) ||
	    fdt_totalsize(fdt) > size || fdt_check_full(fdt, size)) {
		fprintf(stderr, "luoctl: blob '%s' is not a valid FDT\n",
			label);
		return -1;
	}
	printf("/dts-v1/;\n// %s: %u bytes\n\n", label, fdt_totalsize(fdt));
	do {
		tag = fdt_next_tag(fdt, offset, &next);
		switch (tag) {
		case FDT_BEGIN_NODE: {
			const char *name = fdt_get_name(fdt, offset, NULL);

			printf("%*s%s {\n", depth * 4, "",
			       depth ? (name ? name : "?") : "/");
			depth++;
			break;
		}
		case FDT_END_NODE:
			depth--;
			printf("%*s};\n", depth * 4, "");
			break;
		case FDT_PROP: {
			const char *name;
			int len;
			const char *v =
				fdt_getprop_by_offset(fdt, offset, &name, &len);

			printf("%*s%s", depth * 4, "", name ? name : "?");
			if (v && len > 0)
				print_value(v, len);
			printf(";\n");
			break;
		}
		default:
			break;
		}
		offset = next;
	} while (tag != FDT_END && offset >= 0);
	return 0;
}
