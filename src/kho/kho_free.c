// SPDX-License-Identifier: MIT
/*
 * Frees of handover memory with the arena lock taken: the public
 * kho_unpreserve_free(), which refuses a frozen handover and a published
 * subtree, and the library's own luo_kho_free().  Both go through
 * luo_kho_free_locked(), which a spawn-mode trial defers (kho_trial.c).
 */
#define _GNU_SOURCE
#include <errno.h>

#include <luo/kho.h>

#include "kho_internal.h"
#include "log.h"

/* Free without the frozen check: the core frees its own metadata. */
int luo_kho_free(void *ptr)
{
	int err = kho_enter();

	if (err)
		return err;
	err = luo_kho_free_locked(kho_ptr_to_offset(ptr));
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

int kho_unpreserve_free(void *ptr)
{
	uint64_t off;
	int err = kho_enter();

	if (err)
		return err;
	off = kho_ptr_to_offset(ptr);
	if (luo_kho.frozen)
		err = -EBUSY;
	else if (luo_kho_is_published(off))
		err = -EBUSY;
	else
		err = luo_kho_free_locked(off);
	pthread_mutex_unlock(&luo_kho_lock);
	if (err == -EINVAL)
		pr_err("kho_unpreserve_free: %p is not the start of a handover allocation",
		       ptr);
	else if (err == -EBUSY)
		pr_err("kho_unpreserve_free: %p is frozen or published with kho_add_subtree(); cancel or remove it first",
		       ptr);
	return err;
}
