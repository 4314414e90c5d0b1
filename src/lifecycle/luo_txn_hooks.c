// SPDX-License-Identifier: MIT
/*
 * The service's transaction hooks (liveupdate_set_txn_hooks()): read by
 * both sides of a spawn-mode update, the old image's (luo_spawn.c) and
 * the new image's trial (luo_txn.c), so they live below both.
 */
#include <pthread.h>
#include <string.h>

#include "luo_txn.h"

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct liveupdate_txn_hooks hooks;

int liveupdate_set_txn_hooks(const struct liveupdate_txn_hooks *h)
{
	pthread_mutex_lock(&hooks_lock);
	if (h)
		hooks = *h;
	else
		memset(&hooks, 0, sizeof(hooks));
	pthread_mutex_unlock(&hooks_lock);
	return 0;
}

struct liveupdate_txn_hooks luo_txn_hooks_get(void)
{
	struct liveupdate_txn_hooks h;

	pthread_mutex_lock(&hooks_lock);
	h = hooks;
	pthread_mutex_unlock(&hooks_lock);
	return h;
}

bool luo_txn_hooks_have_health(void)
{
	return luo_txn_hooks_get().health != NULL;
}

int luo_txn_hooks_health(void)
{
	struct liveupdate_txn_hooks h = luo_txn_hooks_get();

	return h.health ? h.health(h.arg) : 0;
}
