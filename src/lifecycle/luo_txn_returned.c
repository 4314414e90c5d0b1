// SPDX-License-Identifier: MIT
/*
 * Files returned by a rolled-back trial (spawn mode, the old image).
 *
 * During its trial the new image tells the old one of every file it
 * preserves (with the descriptor) and unpreserves (luo_txn.c), as it
 * happens: a new image killed by SIGKILL cannot send anything at the end.
 * The old image keeps here those it does not hold itself (a connection
 * the new image accepted from the shared listener), drops those the new
 * image let go, hands them to the service's rollback hook
 * (liveupdate_txn_returned_take()) and closes the rest when the hook
 * returns, or all of them at the commit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "luo_hash.h"
#include "luo_internal.h"
#include "luo_txn.h"

struct returned {
	char session[LIVEUPDATE_SESSION_NAME_LENGTH];
	uint64_t token;
	int fd;
	struct luo_hnode node;
	struct returned *next, **pprev;
};

static pthread_mutex_t returned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct luo_htable by_key;
static struct returned *list;
static size_t count;

static uint64_t key_of(const char *session, uint64_t token)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*session)
		h = (h ^ (uint8_t)*session++) * 0x100000001b3ULL;
	return h ^ (token * 0x9e3779b97f4a7c15ULL);
}

static struct returned *find_locked(const char *session, uint64_t token)
{
	struct luo_hnode *n = luo_hash_find(&by_key, key_of(session, token));

	for (; n; n = luo_hash_next(n)) {
		struct returned *r = luo_hash_entry(n, struct returned, node);

		if (r->token == token && !strcmp(r->session, session))
			return r;
	}
	return NULL;
}

/* Unlink @r; its descriptor is the caller's. */
static void remove_locked(struct returned *r)
{
	luo_hash_del(&by_key, &r->node);
	*r->pprev = r->next;
	if (r->next)
		r->next->pprev = r->pprev;
	count--;
	free(r);
}

void luo_txn_returned_add(const char *session, uint64_t token, int fd)
{
	struct returned *r;
	struct stat st;

	if (fd < 0)
		return;
	pthread_mutex_lock(&returned_lock);
	r = find_locked(session, token);
	if (r) { /* preserved again under the same token: the newer counts */
		close(r->fd);
		remove_locked(r);
	}
	pthread_mutex_unlock(&returned_lock);
	/* The same file this image preserved itself (a connection the new
	 * image adopted and preserved again): it never left. */
	if (fstat(fd, &st) ||
	    luo_sessions_out_holds(session, token, st.st_dev, st.st_ino)) {
		close(fd);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		pr_err("rollback: no memory to keep session '%s' token %#llx the new image preserved; its client will see a reset on a rollback",
		       session, (unsigned long long)token);
		close(fd);
		return;
	}
	snprintf(r->session, sizeof(r->session), "%s", session);
	r->token = token;
	r->fd = fd;
	pthread_mutex_lock(&returned_lock);
	if (luo_hash_add(&by_key, &r->node, key_of(session, token))) {
		pthread_mutex_unlock(&returned_lock);
		pr_err("rollback: no memory to keep session '%s' token %#llx the new image preserved; its client will see a reset on a rollback",
		       session, (unsigned long long)token);
		close(fd);
		free(r);
		return;
	}
	r->next = list;
	r->pprev = &list;
	if (list)
		list->pprev = &r->next;
	list = r;
	count++;
	pthread_mutex_unlock(&returned_lock);
}

void luo_txn_returned_drop(const char *session, uint64_t token)
{
	struct returned *r;

	pthread_mutex_lock(&returned_lock);
	r = find_locked(session, token);
	if (r) {
		close(r->fd);
		remove_locked(r);
	}
	pthread_mutex_unlock(&returned_lock);
}

size_t luo_txn_returned_clear(void)
{
	size_t n;

	pthread_mutex_lock(&returned_lock);
	n = count;
	while (list) {
		close(list->fd);
		remove_locked(list);
	}
	luo_hash_free(&by_key);
	pthread_mutex_unlock(&returned_lock);
	return n;
}

size_t luo_txn_returned_count(void)
{
	size_t n;

	pthread_mutex_lock(&returned_lock);
	n = count;
	pthread_mutex_unlock(&returned_lock);
	return n;
}

int liveupdate_txn_returned_take(const char *session, uint64_t token, int *fd)
{
	struct returned *r;

	if (!session || !fd)
		return -EINVAL;
	pthread_mutex_lock(&returned_lock);
	r = find_locked(session, token);
	if (r) {
		*fd = r->fd;
		remove_locked(r);
	}
	pthread_mutex_unlock(&returned_lock);
	return r ? 0 : -ENOENT;
}

int liveupdate_txn_returned_foreach(int (*fn)(const char *session,
					      uint64_t token, void *arg),
				    void *arg)
{
	struct returned *snap;
	size_t n = 0;
	int ret = 0;

	if (!fn)
		return -EINVAL;
	/* A copy: @fn takes files, which changes the list. */
	pthread_mutex_lock(&returned_lock);
	snap = count ? calloc(count, sizeof(*snap)) : NULL;
	if (count && !snap) {
		pthread_mutex_unlock(&returned_lock);
		pr_err("liveupdate_txn_returned_foreach: no memory for the list; take the files by token instead");
		return -ENOMEM;
	}
	for (struct returned *r = list; r; r = r->next)
		snap[n++] = *r;
	pthread_mutex_unlock(&returned_lock);
	for (size_t i = 0; i < n && !ret; i++)
		ret = fn(snap[i].session, snap[i].token, arg);
	free(snap);
	return ret;
}
