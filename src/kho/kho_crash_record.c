// SPDX-License-Identifier: MIT
/*
 * The crash record (luo/abi.h, struct kho_crash_record): what a process
 * restarted after a crash needs beyond the block headers, which tile the
 * arena and are current anyway.  The record holds the subsystems' u64s,
 * in two slots written alternately, each with its own CRC32C, so a
 * SIGKILL in the middle of a write leaves the previous slot whole.  It is
 * a plain block (not checksummed at freeze): it changes outside any
 * update, and the slots carry their own checksums.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "kho_crash_record.h"
#include "kho_internal.h"
#include "log.h"

/*
 * This image's entries live in luo_kho (crash_table...), under luo_kho_lock,
 * written out on each change; the arena's reset clears them with it.
 */

static struct kho_crash_record *record(void)
{
	return (struct kho_crash_record *)(luo_kho.base + luo_kho.crash_record);
}

static uint32_t slot_crc(const struct kho_crash_slot *s)
{
	struct kho_crash_slot tmp = *s;

	tmp.crc = 0;
	return luo_crc32c(0, &tmp, sizeof(tmp));
}

/* Under luo_kho_lock, with the record allocated. */
static void slot_write(void)
{
	struct kho_crash_slot *s = &record()->slot[++luo_kho.crash_seq % KHO_CRASH_SLOTS];

	memset(s, 0, sizeof(*s));
	s->magic = KHO_CRASH_MAGIC;
	s->version = KHO_CRASH_VERSION;
	s->count = luo_kho.crash_ntable;
	s->seq = luo_kho.crash_seq;
	s->liveupdate_num = luo_kho.crash_num;
	memcpy(s->entries, luo_kho.crash_table, luo_kho.crash_ntable * sizeof(*luo_kho.crash_table));
	s->crc = slot_crc(s);
	/* The slot is whole before anything names it. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static int record_alloc(void)
{
	void *p;
	int err;

	if (luo_kho.frozen)
		return -EBUSY;
	err = luo_kho_alloc_locked(sizeof(struct kho_crash_record), 0, &p);
	if (err)
		return err;
	luo_kho.crash_record = (uint64_t)((uint8_t *)p - luo_kho.base);
	slot_write();
	luo_kho_header_write();
	return 0;
}

int luo_kho_crash_record_set(const char *name, uint64_t data,
			     uint64_t liveupdate_num)
{
	uint32_t i;
	int err = 0;

	if (!luo_kho_name_valid(name))
		return -EINVAL;
	pthread_mutex_lock(&luo_kho_lock);
	if (!luo_kho_ready()) {
		err = -ENODEV;
		goto out;
	}
	for (i = 0; i < luo_kho.crash_ntable && strcmp(luo_kho.crash_table[i].name, name); i++)
		;
	if (i == luo_kho.crash_ntable && !data)
		goto out; /* nothing to remove */
	if (i == luo_kho.crash_ntable && luo_kho.crash_ntable == KHO_CRASH_MAX_ENTRIES) {
		err = -ENOSPC;
		goto out;
	}
	if (!luo_kho.crash_record) {
		err = record_alloc();
		if (err)
			goto out;
	}
	if (!data) {
		memmove(&luo_kho.crash_table[i], &luo_kho.crash_table[i + 1],
			(luo_kho.crash_ntable - i - 1) * sizeof(*luo_kho.crash_table));
		memset(&luo_kho.crash_table[--luo_kho.crash_ntable], 0, sizeof(*luo_kho.crash_table));
	} else {
		if (i == luo_kho.crash_ntable) {
			memset(&luo_kho.crash_table[i], 0, sizeof(*luo_kho.crash_table));
			strcpy(luo_kho.crash_table[i].name, name);
			luo_kho.crash_ntable++;
		}
		luo_kho.crash_table[i].data = data;
	}
	luo_kho.crash_num = liveupdate_num;
	slot_write();
out:
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* One slot, as untrusted input.  Return: NULL if sound, else the reason. */
static const char *slot_check(const struct kho_crash_slot *s)
{
	if (s->magic != KHO_CRASH_MAGIC)
		return "bad magic";
	if (luo_crc_mismatch(slot_crc(s), s->crc))
		return "checksum mismatch";
	if (s->version != KHO_CRASH_VERSION)
		return "unknown version";
	if (s->count > KHO_CRASH_MAX_ENTRIES || s->reserved)
		return "bad count or reserved bits";
	for (uint32_t i = 0; i < KHO_CRASH_MAX_ENTRIES; i++) {
		const struct kho_crash_entry *e = &s->entries[i];
		size_t len = strnlen(e->name, sizeof(e->name));

		if (i >= s->count) {
			if (!all_zero(e, sizeof(*e)))
				return "an unused entry is not zero";
			continue;
		}
		if (len == sizeof(e->name) || !luo_kho_name_valid(e->name) ||
		    !all_zero(e->name + len, sizeof(e->name) - len))
			return "an entry's name is malformed";
		for (uint32_t k = 0; k < i; k++)
			if (!strcmp(s->entries[k].name, e->name))
				return "a name appears twice";
	}
	return NULL;
}

int luo_kho_crash_record_adopt(char *why, size_t whylen)
{
	uint64_t off = luo_kho.crash_record;
	const struct kho_crash_slot *best = NULL;
	const char *bad[KHO_CRASH_SLOTS] = {0};
	struct kho_block *b;
	int err = 0;

	pthread_mutex_lock(&luo_kho_lock);
	luo_kho.crash_ntable = 0;
	luo_kho.crash_seq = luo_kho.crash_num = 0;
	luo_kho.crash_record = 0;
	if (!off) {
		err = luo_reason(why, whylen, -ENOENT,
				 "the arena names no crash record");
		goto out;
	}
	b = luo_kho_block_by_payload(off);
	if (!b || !(b->flags & KHO_BLOCK_USED) ||
	    (b->flags & KHO_BLOCK_CHECKED) ||
	    b->payload_size < sizeof(struct kho_crash_record)) {
		err = luo_reason(
			why, whylen, -EBADMSG,
			"the crash record at %#llx is not a block of its size",
			(unsigned long long)off);
		goto out;
	}
	luo_kho.crash_record = off;
	for (int i = 0; i < KHO_CRASH_SLOTS; i++) {
		const struct kho_crash_slot *s = &record()->slot[i];

		bad[i] = slot_check(s);
		if (!bad[i] && (!best || s->seq > best->seq))
			best = s;
	}
	if (!best) {
		luo_kho.crash_record = 0;
		err = luo_reason(
			why, whylen, -EBADMSG,
			"crash record at %#llx: slot 0: %s, slot 1: %s",
			(unsigned long long)off, bad[0], bad[1]);
		goto out;
	}
	luo_kho.crash_ntable = best->count;
	memcpy(luo_kho.crash_table, best->entries, sizeof(luo_kho.crash_table));
	luo_kho.crash_seq = best->seq;
	luo_kho.crash_num = best->liveupdate_num;
	b->incoming = false; /* this image's record from now on */
out:
	if (err)
		luo_kho_header_write(); /* no longer names a record */
	pthread_mutex_unlock(&luo_kho_lock);
	return err;
}

size_t luo_kho_crash_entries(const struct kho_crash_entry **entries,
			     uint64_t *liveupdate_num)
{
	size_t n;

	pthread_mutex_lock(&luo_kho_lock);
	*entries = luo_kho.crash_table;
	*liveupdate_num = luo_kho.crash_num;
	n = luo_kho.crash_ntable;
	pthread_mutex_unlock(&luo_kho_lock);
	return n;
}

