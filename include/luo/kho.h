/* SPDX-License-Identifier: MIT */
/**
 * DOC: handover memory (KHO)
 *
 * Memory allocated with kho_alloc_preserve() lives in the handover arena, a
 * memfd that the next program image inherits and maps again: the very same
 * pages, nothing copied.  Refer to such memory across an update by its
 * offset (kho_ptr_to_offset()); pointers differ between images.
 *
 * A client publishes a small FDT describing its state with
 * kho_add_subtree(); the new image finds it with kho_retrieve_subtree() and
 * takes ownership of the memory it still needs with kho_restore().  Incoming
 * memory that nobody restored is released by liveupdate_finish().
 *
 * All functions return 0 or a negative errno and are thread safe.
 */
#ifndef LUO_KHO_H
#define LUO_KHO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * kho_alloc_preserve() - allocate zeroed memory that survives live updates
 * @size: bytes wanted, at least 1.
 * @ptr: set to the new memory on success.
 *
 * The memory is aligned to 64 bytes; allocations of 64 KiB and more are
 * aligned to the arena's page size (4 KiB, or 2 MiB on huge pages), so large
 * regions map with huge pages when the arena has them.  The arena grows on
 * demand up to its reservation (see &struct luo_init_opts.arena_max).
 *
 * Return: 0; -EINVAL for size 0; -ENOMEM when the arena cannot grow;
 * -ENODEV before luo_init(); -EBUSY while the handover is frozen.
 */
int kho_alloc_preserve(size_t size, void **ptr);

/**
 * kho_unpreserve_free() - free memory from kho_alloc_preserve()
 * @ptr: start of the allocation.
 *
 * The pages go back to the system (hole punched) and read as zero again.
 *
 * Return: 0; -EINVAL if @ptr is not the start of a live allocation;
 * -EBUSY while the handover is frozen or @ptr is a published subtree.
 */
int kho_unpreserve_free(void *ptr);

/**
 * kho_ptr_to_offset() - stable offset of arena memory
 * @ptr: any address inside a live allocation.
 *
 * Return: the offset (never 0), or 0 if @ptr is not in the arena.
 */
uint64_t kho_ptr_to_offset(const void *ptr);

/**
 * kho_offset_to_ptr() - address of an arena offset in this image
 * @offset: an offset from kho_ptr_to_offset(), possibly of an earlier image.
 *
 * Return: the address, or NULL if @offset is 0 or outside the arena.
 */
void *kho_offset_to_ptr(uint64_t offset);

/**
 * kho_restore() - claim memory preserved by the previous image
 * @offset: offset of the allocation's start, as the previous image saw it.
 * @size: bytes the caller will use; at most the allocation's size.
 * @ptr: set to the memory on success.
 *
 * Claimed memory stays allocated after liveupdate_finish(); it belongs to
 * the caller like any kho_alloc_preserve() memory.  Claiming twice is
 * allowed and returns the same address.
 *
 * Return: 0; -ENOENT if no allocation starts at @offset; -EINVAL if @size
 * is larger than the allocation; -ENODEV before luo_init().
 */
int kho_restore(uint64_t offset, size_t size, void **ptr);

/**
 * kho_add_subtree() - publish a client's FDT to the next image
 * @name: node name, 1 to 63 characters of [A-Za-z0-9,._+-].
 * @fdt: a finished FDT blob inside a kho_alloc_preserve() allocation.
 *
 * The blob is checked with fdt_check_full() and checksummed when the
 * handover is finalized; the caller may change it until then.
 *
 * Return: 0; -EINVAL for a bad name or blob; -EEXIST if @name is taken;
 * -EBUSY while frozen; -ENOMEM.
 */
int kho_add_subtree(const char *name, void *fdt);

/**
 * kho_remove_subtree() - withdraw a subtree added with kho_add_subtree()
 * @fdt: the blob that was added.
 *
 * Return: 0; -ENOENT if @fdt is not published; -EBUSY while frozen.
 */
int kho_remove_subtree(void *fdt);

/**
 * kho_retrieve_subtree() - find a subtree published by the previous image
 * @name: node name given to kho_add_subtree() in the previous image.
 * @fdt: set to the validated blob on success.
 *
 * The blob stays valid until liveupdate_finish() unless claimed with
 * kho_restore(kho_ptr_to_offset(blob), ...).
 *
 * Return: 0; -ENOENT if there is no such subtree; -ENODATA if this image
 * did not start from a live update.
 */
int kho_retrieve_subtree(const char *name, const void **fdt);

/**
 * struct kho_arena_stats - figures about the handover arena
 * @page_size: page size backing the arena.
 * @arena_size: bytes of the arena in use (header and all blocks).
 * @reserved: bytes of address space reserved for growth.
 * @allocated: payload bytes in live allocations.
 * @allocations: number of live allocations.
 * @incoming_unclaimed: incoming allocations not restored yet.
 * @hugetlb: the arena is on hugetlbfs pages.
 * @thp: the arena asks for transparent huge pages.
 */
struct kho_arena_stats {
	uint64_t page_size;
	uint64_t arena_size;
	uint64_t reserved;
	uint64_t allocated;
	uint64_t allocations;
	uint64_t incoming_unclaimed;
	int hugetlb;
	int thp;
};

/**
 * kho_get_stats() - read figures about the handover arena
 * @stats: filled on success.
 *
 * Return: 0; -ENODEV before luo_init().
 */
int kho_get_stats(struct kho_arena_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* LUO_KHO_H */
