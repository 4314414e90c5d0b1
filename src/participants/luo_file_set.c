// SPDX-License-Identifier: MIT
/*
 * What sessions, files and FLBs all need, below the three of them: a
 * session's set of files (its array and its token table), whether a
 * handler has outgoing files, and the rule for compatible strings.
 * Callers hold the sessions lock.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "luo_session_internal.h"

struct luo_file *luo_file_by_token(const struct luo_session *s, uint64_t token)
{
	struct luo_hnode *n = luo_hash_find(&s->tokens, token);

	return n ? luo_hash_entry(n, struct luo_file, token_node) : NULL;
}

int luo_session_add_file(struct luo_session *s, struct luo_file *f)
{
	int err;

	if (s->nfiles == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct luo_file **n = realloc(s->files, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->files = n;
		s->cap = cap;
	}
	err = luo_hash_add(&s->tokens, &f->token_node, f->token);
	if (err)
		return err;
	f->index = s->nfiles;
	s->files[s->nfiles++] = f;
	return 0;
}

void luo_session_remove_file(struct luo_session *s, struct luo_file *f)
{
	luo_hash_del(&s->tokens, &f->token_node);
	s->files[f->index] = s->files[--s->nfiles];
	s->files[f->index]->index = f->index;
}

/* Set by luo_session.c, which owns the session lists; NULL until the
 * first outgoing session exists. */
static bool (*handler_users)(const struct liveupdate_file_handler *fh);

void luo_handler_users_set(
	bool (*users)(const struct liveupdate_file_handler *fh))
{
	handler_users = users;
}

bool luo_handler_in_use(const struct liveupdate_file_handler *fh)
{
	return handler_users && handler_users(fh);
}

bool luo_compatible_valid(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max);
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}
