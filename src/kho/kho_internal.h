/* SPDX-License-Identifier: MIT */
/*
 * Handover memory internals shared by the files of src/kho.  Calls between
 * them go one way (docs/architecture.md, "Inside a layer"): kho_setup.c,
 * kho_free.c -> kho_subtree.c -> kho_trial.c -> kho_alloc.c ->
 * kho_intent.c -> kho_arena.c.
 */
#ifndef LUO_SRC_KHO_INTERNAL_H
#define LUO_SRC_KHO_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <luo/abi.h>

#define KHO_HDR_SIZE ((uint64_t)sizeof(struct kho_block_header))
#define KHO_DATA_START ((uint64_t)KHO_ARENA_DATA_START)
#define KHO_HUGE_SIZE (2ULL << 20)
#define KHO_DEFAULT_RESERVE (64ULL << 30)
/* Largest arena an incoming header may claim: 64 TiB of address space. */
#define KHO_MAX_ARENA (1ULL << 46)
#define KHO_NAME_MAX 63
/* The arena memfd's name: how a new image tells its arena from others. */
#define KHO_ARENA_MEMFD_NAME "luo-arena"

/* One arena block, as the process indexes it (sorted by offset). */
struct kho_block {
	uint64_t off;  /* offset of the block header */
	uint64_t size; /* whole block, header included */
	uint64_t payload_size;
	uint64_t checked_size; /* incoming: payload bytes under the CRC */
	uint32_t flags;	       /* KHO_BLOCK_* as in the header */
	bool incoming; /* came from the previous image, not restored yet */
	/* Outgoing metadata: the payload's CRC taken ahead of the seal
	 * (luo_kho_meta_sum_ahead()), valid until luo_kho_meta_touch(). */
	bool ahead;
	uint32_t ahead_crc;
};

/* A published (outgoing) or received (incoming) client FDT. */
struct kho_subtree {
	char name[KHO_NAME_MAX + 1];
	uint64_t off; /* payload offset of the blob */
	bool meta;    /* the blob is the library's own (allocated checked) */
};

struct kho_arena {
	int fd;
	unsigned int flags; /* KHO_ARENA_* */
	uint64_t page_size;
	uint8_t *base;
	uint64_t reserved; /* bytes of address space mapped */
	uint64_t size;	   /* == header arena_size */

	struct kho_block *blocks;
	size_t nblocks, blocks_cap;
	/* Offsets of the free blocks, unordered: allocation scans only these. */
	uint64_t *free_offs;
	size_t nfree, free_cap;

	struct kho_subtree *out;
	size_t nout, out_cap;
	struct kho_subtree *in;
	size_t nin;

	bool frozen; /* no allocation changes: the handover is being built */
	uint64_t root_fdt; /* outgoing root FDT payload offset, 0 if none */
	uint64_t
		crash_record; /* payload offset of the crash record, 0 if none */
	/* The crash record's entries in this image (kho_crash_record.c). */
	struct kho_crash_entry crash_table[KHO_CRASH_MAX_ENTRIES];
	uint32_t crash_ntable;
	uint64_t crash_seq, crash_num;
};

extern struct kho_arena luo_kho;
extern pthread_mutex_t luo_kho_lock;

static inline uint64_t kho_round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static inline struct kho_arena_header *kho_header(void)
{
	return (struct kho_arena_header *)luo_kho.base;
}

static inline struct kho_block_header *kho_block_hdr(uint64_t off)
{
	return (struct kho_block_header *)(luo_kho.base + off);
}

bool luo_kho_ready(void);
bool luo_kho_name_valid(const char *name);

/* kho_arena.c: the memfd and its mapping (the bottom: calls nothing above). */
/*
 * Reserve @len bytes of address space aligned to 2 MiB (so transparent
 * huge pages can back it) and map @fd over it.
 */
int luo_kho_arena_map(int fd, uint64_t len, bool thp);
/* Forget the arena: the index and lists freed, nothing unmapped or closed. */
void luo_kho_arena_reset(void);
bool luo_kho_fd_is_arena_memfd(int fd);
void luo_kho_arena_destroy(void);
int luo_kho_arena_grow(uint64_t new_size);
/* The arena header as this image has it, checksum included. */
void luo_kho_header_image(struct kho_arena_header *h);
void luo_kho_zero_range(uint64_t off, uint64_t len);

/*
 * kho_intent.c: every change of the arena's metadata, made so that a
 * crash at any instruction leaves it whole before or whole after
 * (struct kho_intent in luo/abi.h).  luo_kho_lock held.
 */
struct kho_change {
	struct kho_intent rec;
};

/* Start a change (nothing is written until luo_kho_change_commit()). */
void luo_kho_change_begin(struct kho_change *c);
/* CRC32C of a block header at @off (seeded with the offset). */
uint32_t luo_kho_block_header_crc(uint64_t off,
				  const struct kho_block_header *h);
/* Add the header of @b, as luo_kho_block_write() would write it. */
void luo_kho_change_block(struct kho_change *c, const struct kho_block *b,
			  uint32_t payload_crc, uint64_t checked_size);
/* Add the zeroing of [@off, @off + @len): multiples of KHO_BLOCK_ALIGN. */
void luo_kho_change_zero(struct kho_change *c, uint64_t off, uint64_t len);
/* Add the arena header as this image has it. */
void luo_kho_change_header(struct kho_change *c);
/* Record the change in the arena, make it, clear the record. */
void luo_kho_change_commit(struct kho_change *c);
/* One block header, crash-safe (a change of one entry). */
void luo_kho_block_write(const struct kho_block *b, uint32_t payload_crc,
			 uint64_t checked_size);
/* The arena header, crash-safe (a change of one entry). */
void luo_kho_header_write(void);

/**
 * luo_kho_intent_recover() - finish the change a crash interrupted
 * @fd: the arena memfd of a process that crashed, not yet mapped.
 * @file_size: its size.
 * @why: the reason of a refusal.
 * @whylen: its size.
 *
 * For crash adoption only, before the arena header is checked.  An idle
 * record is left alone.  An armed one is checked as untrusted input
 * (checksum, count, every offset and length inside the memfd and aligned,
 * zero images for zeroing) and its writes are done again, then it is
 * cleared.  Everything is checked as usual afterwards.
 *
 * Return: 0 (nothing to do, or done); -EBADMSG for a bad record (with
 * @why); -ENOMEM if the memfd cannot be mapped.
 */
int luo_kho_intent_recover(int fd, uint64_t file_size, char *why,
			   size_t whylen);

/**
 * luo_kho_intent_idle() - whether an arena's intent record is idle
 * @fd: an arena memfd, not yet mapped (at least %KHO_ARENA_DATA_START long).
 *
 * A sealed handover must have it idle: nothing was being changed.
 *
 * Return: true if idle.
 */
bool luo_kho_intent_idle(int fd);

#ifdef LUO_KHO_FAULT
/*
 * Test builds only (meson: the *-fault libraries): a kill point between
 * any two stores of a change.  luo_kho_fault_arm(n) makes the n-th point
 * reached from now on SIGKILL the process (0: count only);
 * luo_kho_fault_points() says how many were reached since.
 */
void luo_kho_fault_point(void);
void luo_kho_fault_arm(unsigned long n);
unsigned long luo_kho_fault_points(void);
/* Test builds: make each change without its intent record (to show a
 * test fails without it). */
extern bool luo_kho_fault_no_intent;
#else
static inline void luo_kho_fault_point(void)
{
}
#endif

/* kho_setup.c: a new arena, or the incoming one adopted (the top). */
int luo_kho_arena_create(unsigned int arena_flags, uint64_t reserve);
int luo_kho_arena_adopt(int fd, uint64_t reserve, char *why, size_t whylen);
int luo_kho_arena_adopt_crashed(int fd, uint64_t reserve, char *why,
				size_t whylen);

/* kho_alloc.c */
int luo_kho_index_insert(size_t at, const struct kho_block *b);
int luo_kho_free_add(uint64_t off);
struct kho_block *luo_kho_block_by_payload(uint64_t payload_off);
int luo_kho_alloc_locked(size_t size, uint32_t flags, void **ptr);
/* Free a block now, whatever a trial says (kho_trial.c decides). */
int luo_kho_block_free_locked(uint64_t payload_off);
/* Take luo_kho_lock if there is an arena; else log for @op, -ENODEV. */
int luo_kho_enter_op(const char *op);
#define kho_enter() luo_kho_enter_op(__func__)
int luo_kho_walk_incoming(char *why, size_t whylen);

/* kho_subtree.c */
int luo_kho_parse_incoming_root(char *why, size_t whylen);
bool luo_kho_is_published(uint64_t payload_off);
bool luo_kho_fdt_valid(const void *fdt, size_t size);
int luo_kho_publish(const char *name, void *fdt);
void luo_kho_forget_incoming(void);

/* Used by the LUO core. */
int luo_kho_alloc_meta(size_t size, void **ptr);
int luo_kho_free(void *ptr);
void luo_kho_freeze(void);
bool luo_kho_sealed(void);
int luo_kho_finalize(void);
void luo_kho_unfreeze(void);
void luo_kho_meta_sum_ahead(const void *ptr);
void luo_kho_meta_touch(const void *ptr);
void luo_kho_release_unclaimed(void);
int luo_kho_incoming_block(uint64_t payload_off, size_t min_size, bool meta,
			   void **ptr);
int luo_kho_fd(void);

/**
 * typedef kho_blob_fn - called by luo_kho_blobs_foreach() for one FDT blob.
 * @name: "root" or the subtree's name.
 * @off: its offset in the arena.
 * @fdt: the blob.
 * @size: its total size.
 * @arg: the caller's argument.
 */
typedef void (*kho_blob_fn)(const char *name, uint64_t off, const void *fdt,
			    uint32_t size, void *arg);

/**
 * luo_kho_blobs_foreach() - walk the root FDT and every subtree FDT.
 * @incoming: the incoming handover's blobs, else the outgoing ones.
 * @fn: called, under the arena lock, for each sound blob (a missing or
 *      half-built one is skipped); it must not call the kho_* API.
 * @arg: passed to @fn.
 *
 * Return: the number of blobs @fn was called for.
 */
size_t luo_kho_blobs_foreach(bool incoming, kho_blob_fn fn, void *arg);

/* kho_trial.c: the arena during a spawn-mode trial. */
/**
 * luo_kho_trial_begin() - new image, adopted in spawn mode: from now on frees
 * of handover memory are deferred (the old image's data must stay)
 */
void luo_kho_trial_begin(void);

/**
 * luo_kho_trial_commit() - new image, at the commit: do the deferred frees
 */
void luo_kho_trial_commit(void);

/**
 * luo_kho_free_locked() - free a block, or defer it during a trial
 * @payload_off: the block's payload offset (luo_kho_lock held).
 *
 * Return: 0, or -EINVAL if no block starts there.
 */
int luo_kho_free_locked(uint64_t payload_off);

/**
 * luo_kho_trial_defer_free() - record a free during the trial (luo_kho_lock held)
 * @payload_off: the block's payload offset.
 *
 * Return: true if deferred (the caller frees nothing now).
 */
bool luo_kho_trial_defer_free(uint64_t payload_off);

/**
 * luo_kho_trial_repair() - old image, after a rollback: take the arena back
 *
 * Block headers written again from this image's index, free blocks zeroed
 * again, a grown memfd cut back, the header rewritten.
 */
void luo_kho_trial_repair(void);

#endif
