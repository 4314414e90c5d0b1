// SPDX-License-Identifier: MIT
/*
 * The arena during a spawn-mode trial.  Both images map the same memfd;
 * the old one must be able to take it back whole if the new one fails.
 *
 * New image: a free punches the block's pages out of the memfd, and those
 * may be the old image's data, so frees are only recorded during the
 * trial and done at the commit.  Allocations take space the old image
 * sees as free; that is harmless to it.
 *
 * Old image, after a rollback: its own index is the truth.  Every block
 * header the new image changed is written again from it, every free block
 * is zeroed again (free memory always reads as zero), and a memfd the new
 * image grew is cut back to the old size.
 *
 * Above the blocks (kho_alloc.c), below the subtrees: every free of the
 * layer's callers goes through luo_kho_free_locked() here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kho_internal.h"
#include "log.h"

static struct {
	bool on;
	uint64_t *offs;
	size_t n, cap;
} trial;

void luo_kho_trial_begin(void)
{
	pthread_mutex_lock(&luo_kho_lock);
	trial.on = true;
	pthread_mutex_unlock(&luo_kho_lock);
}

bool luo_kho_trial_defer_free(uint64_t payload_off)
{
	if (!trial.on)
		return false;
	if (trial.n == trial.cap) {
		size_t cap = trial.cap ? trial.cap * 2 : 64;
		uint64_t *n = realloc(trial.offs, cap * sizeof(*n));

		/* Out of memory: keep the block; it is freed at the next
		 * boot walk's finish as unclaimed memory, never lost. */
		if (!n)
			return true;
		trial.offs = n;
		trial.cap = cap;
	}
	trial.offs[trial.n++] = payload_off;
	return true;
}

int luo_kho_free_locked(uint64_t payload_off)
{
	if (!luo_kho_block_by_payload(payload_off))
		return -EINVAL;
	/* A spawned image under trial frees nothing of the old one's. */
	if (luo_kho_trial_defer_free(payload_off))
		return 0;
	return luo_kho_block_free_locked(payload_off);
}

void luo_kho_trial_commit(void)
{
	size_t n;

	pthread_mutex_lock(&luo_kho_lock);
	trial.on = false;
	n = trial.n;
	for (size_t i = 0; i < trial.n; i++)
		luo_kho_block_free_locked(trial.offs[i]);
	free(trial.offs);
	memset(&trial, 0, sizeof(trial));
	pthread_mutex_unlock(&luo_kho_lock);
	if (n)
		pr_debug("commit: %zu handover frees of the trial done", n);
}

void luo_kho_trial_repair(void)
{
	size_t rewritten = 0;
	struct stat st;

	pthread_mutex_lock(&luo_kho_lock);
	for (size_t i = 0; i < luo_kho.nblocks; i++) {
		const struct kho_block *b = &luo_kho.blocks[i];
		const struct kho_block_header *h = kho_block_hdr(b->off);
		struct kho_change c;

		/* Each block whole at once: a crash here keeps the chain. */
		luo_kho_change_begin(&c);
		if (!(b->flags & KHO_BLOCK_USED))
			luo_kho_change_zero(&c, b->off + KHO_HDR_SIZE,
					    b->size - KHO_HDR_SIZE);
		if (h->magic != KHO_BLOCK_MAGIC || h->size != b->size ||
		    h->flags != b->flags ||
		    h->payload_size != b->payload_size) {
			luo_kho_change_block(&c, b, 0, 0);
			rewritten++;
		}
		if (c.rec.count)
			luo_kho_change_commit(&c);
	}
	if (!fstat(luo_kho.fd, &st) && (uint64_t)st.st_size > luo_kho.size &&
	    ftruncate(luo_kho.fd, (off_t)luo_kho.size))
		pr_warn("rollback: cannot cut the arena back to %llu bytes",
			(unsigned long long)luo_kho.size);
	luo_kho_header_write();
	pthread_mutex_unlock(&luo_kho_lock);
	if (rewritten)
		pr_info("rollback: %zu handover block headers the new image changed were restored",
			rewritten);
}
