// SPDX-License-Identifier: MIT
/*
 * luoctl --json: every value is typed by the command's schema
 * (docs/luoctl-json.md), never guessed from its text: a service named
 * 12345 stays a string, "yes"/"no" become booleans, tokens ("0x1")
 * numbers.  Every key of the schema is present; null where the service
 * did not send it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luoctl.h"

/* An unsigned integer in decimal or 0x hex, nothing else around it. */
static bool parse_u64(const char *v, uint64_t *out)
{
	char *end;

	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		return false;
	errno = 0;
	*out = strtoull(v, &end, 0);
	return !errno && !*end;
}

static struct json_object *typed(const char *key, const char *v,
				 enum jtype type)
{
	uint64_t u;

	if (!v)
		return NULL;
	switch (type) {
	case J_STR:
		return json_object_new_string(v);
	case J_INT:
		if (parse_u64(v, &u))
			return json_object_new_uint64(u);
		break;
	case J_SINT: {
		char *end;
		long long x;

		errno = 0;
		x = strtoll(v, &end, 10);
		if (*v && !errno && !*end)
			return json_object_new_int64(x);
		break;
	}
	case J_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "true"))
			return json_object_new_boolean(1);
		if (!strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "false"))
			return json_object_new_boolean(0);
		break;
	}
	fprintf(stderr, "luoctl: the service sent '%s' for %s, not %s: null\n",
		v, key, type == J_BOOL ? "a boolean" : "an integer");
	return NULL;
}

struct json_object *json_row(const struct row *row, const struct jfield *fields)
{
	struct json_object *o = json_object_new_object();

	for (const struct jfield *f = fields; o && f->key; f++)
		json_object_object_add(
			o, f->key,
			typed(f->key, row_get(row, f->key), f->type));
	return o;
}

struct json_object *json_rows(const struct reply *r,
			      const struct jfield *fields)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < r->nrows; i++)
		json_object_array_add(a, json_row(&r->rows[i], fields));
	return a;
}

void json_print(struct json_object *o)
{
	puts(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}
