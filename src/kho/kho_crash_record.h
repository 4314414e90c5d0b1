/* SPDX-License-Identifier: MIT */
/*
 * The crash record (struct kho_crash_record in luo/abi.h): the subsystems'
 * u64s kept current in the arena during normal operation, so that a
 * process restarted after a crash can adopt the arena without a sealed
 * handover.  Written only when the service sets a value, never per
 * request; read only at adoption, as untrusted input.
 */
#ifndef LUO_SRC_KHO_CRASH_RECORD_H
#define LUO_SRC_KHO_CRASH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <luo/abi.h>

/**
 * luo_kho_crash_record_set() - keep @name's u64 in the crash record
 * @name: a subsystem name (luo_kho_name_valid()).
 * @data: the value; 0 removes the entry.
 * @liveupdate_num: the service's live update count, recorded with it.
 *
 * Allocates the record (one plain arena block, named by the arena
 * header) on first use.  Takes luo_kho_lock.
 *
 * Return: 0; -EINVAL for a bad name; -ENOSPC when %KHO_CRASH_MAX_ENTRIES
 * names are kept already; -EBUSY when the record must be allocated while
 * the handover is frozen; -ENODEV without an arena; -ENOMEM.
 */
int luo_kho_crash_record_set(const char *name, uint64_t data,
			     uint64_t liveupdate_num);

/**
 * luo_kho_crash_record_adopt() - read and claim the adopted arena's record
 * @why: the reason when it does not check out.
 * @whylen: its size.
 *
 * After luo_kho_arena_adopt() or luo_kho_arena_adopt_crashed(): checks the
 * block the header names (a plain used block large enough), both slots
 * (magic, version, checksum, count, names, zero padding), takes the valid
 * slot written last and keeps its entries as this image's record.  On any
 * failure nothing is kept and the block is left to the release of
 * unclaimed memory.
 *
 * Return: 0; -ENOENT if the arena names no record; -EBADMSG (with @why).
 */
int luo_kho_crash_record_adopt(char *why, size_t whylen);

/**
 * luo_kho_crash_entries() - the record's entries, as adopted or set since
 * @entries: set to the table (valid until the next set or the arena's end).
 * @liveupdate_num: set to the live update count of the record.
 *
 * Return: the number of entries.
 */
size_t luo_kho_crash_entries(const struct kho_crash_entry **entries,
			     uint64_t *liveupdate_num);

#endif
