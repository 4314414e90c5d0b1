// SPDX-License-Identifier: MIT
/*
 * Changes of the arena's metadata that a crash cannot tear (struct
 * kho_intent in luo/abi.h).  An allocation that splits a free block
 * rewrites two or three block headers, a free that merges rewrites one
 * and erases one or two, growing the arena rewrites a block header and
 * the arena header: a SIGKILL between two of those stores used to leave
 * a chain of headers that no walk accepts, and the whole arena was lost
 * after a crash.  So every change is written first, whole and checksummed,
 * into the intent record, then made, then the record is cleared.  The
 * writes are absolute (64-byte images, zeroed ranges), so doing them again
 * after a crash is harmless: crash adoption finishes an armed record
 * before it checks anything (luo_kho_intent_recover()).  A sealed
 * handover must have it idle.
 *
 * Below the blocks (kho_alloc.c), above the arena (kho_arena.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "kho_internal.h"
#include "log.h"

_Static_assert(sizeof(struct kho_block_header) == 64, "block header image");
_Static_assert(sizeof(struct kho_arena_header) == 64, "arena header image");
_Static_assert(KHO_INTENT_OFFSET + sizeof(struct kho_intent) <=
		       KHO_ARENA_DATA_START,
	       "the intent record fits before the first block");
_Static_assert(KHO_ARENA_DATA_START % KHO_BLOCK_ALIGN == 0, "data start");

#ifdef LUO_KHO_FAULT
static unsigned long fault_at, fault_seen;
static bool fault_armed;
bool luo_kho_fault_no_intent;

void luo_kho_fault_point(void)
{
	if (!fault_armed || ++fault_seen != fault_at)
		return;
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}

void luo_kho_fault_arm(unsigned long n)
{
	fault_armed = true;
	fault_at = n;
	fault_seen = 0;
}

unsigned long luo_kho_fault_points(void)
{
	return fault_seen;
}
#endif

/* The record's first word: 0 idle, KHO_INTENT_MAGIC armed. */
static uint64_t *intent_magic(uint8_t *base)
{
	return (uint64_t *)(base + KHO_INTENT_OFFSET);
}

/* Bytes of @rec the checksum covers: up to the last entry in use. */
static size_t intent_len(const struct kho_intent *rec)
{
	return offsetof(struct kho_intent, entry) +
	       rec->count * sizeof(struct kho_intent_entry);
}

static uint32_t intent_crc(const struct kho_intent *rec)
{
	struct kho_intent tmp;

	memcpy(&tmp, rec, intent_len(rec));
	tmp.crc = 0;
	return luo_crc32c(0, &tmp, intent_len(rec));
}

/*
 * Copy @n bytes into the arena.  A test build stores them 8 bytes at a
 * time with a kill point after each, as a crash can cut a memcpy anywhere.
 */
static void put(uint8_t *dst, const void *src, size_t n)
{
#ifdef LUO_KHO_FAULT
	for (size_t i = 0; i < n; i += 8) {
		memcpy(dst + i, (const uint8_t *)src + i,
		       n - i < 8 ? n - i : 8);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		luo_kho_fault_point();
	}
#else
	memcpy(dst, src, n);
#endif
}

uint32_t luo_kho_block_header_crc(uint64_t off,
				  const struct kho_block_header *h)
{
	struct kho_block_header tmp = *h;

	tmp.header_crc = 0;
	return luo_crc32c((uint32_t)off ^ (uint32_t)(off >> 32), &tmp,
			  sizeof(tmp));
}

void luo_kho_change_begin(struct kho_change *c)
{
	memset(&c->rec, 0, offsetof(struct kho_intent, entry));
}

static struct kho_intent_entry *add(struct kho_change *c)
{
	struct kho_intent_entry *e = &c->rec.entry[c->rec.count++];

	memset(e, 0, sizeof(*e));
	return e;
}

void luo_kho_change_block(struct kho_change *c, const struct kho_block *b,
			  uint32_t payload_crc, uint64_t checked_size)
{
	struct kho_intent_entry *e = add(c);
	struct kho_block_header h = {
		.magic = KHO_BLOCK_MAGIC,
		.flags = b->flags,
		.size = b->size,
		.payload_size = b->payload_size,
		.checked_size = checked_size,
		.payload_crc = payload_crc,
	};

	h.header_crc = luo_kho_block_header_crc(b->off, &h);
	e->off = b->off;
	memcpy(e->image, &h, sizeof(h));
}

void luo_kho_change_zero(struct kho_change *c, uint64_t off, uint64_t len)
{
	struct kho_intent_entry *e;

	if (!len)
		return;
	e = add(c);
	e->off = off;
	e->zero_len = len;
}

void luo_kho_change_header(struct kho_change *c)
{
	struct kho_intent_entry *e = add(c);
	struct kho_arena_header h;

	luo_kho_header_image(&h);
	e->off = 0;
	memcpy(e->image, &h, sizeof(h));
}

static void zero_live(uint64_t off, uint64_t len)
{
#ifdef LUO_KHO_FAULT
	uint64_t half = len / 2 / KHO_BLOCK_ALIGN * KHO_BLOCK_ALIGN;

	luo_kho_zero_range(off, half);
	luo_kho_fault_point();
	luo_kho_zero_range(off + half, len - half);
	luo_kho_fault_point();
#else
	luo_kho_zero_range(off, len);
#endif
}

void luo_kho_change_commit(struct kho_change *c)
{
	struct kho_intent *rec = &c->rec;
	uint64_t *magic = intent_magic(luo_kho.base);
	uint64_t seq;
	bool journal = true;

#ifdef LUO_KHO_FAULT
	journal = !luo_kho_fault_no_intent;
#endif
	memcpy(&seq,
	       luo_kho.base + KHO_INTENT_OFFSET +
		       offsetof(struct kho_intent, seq),
	       sizeof(seq));
	rec->magic = KHO_INTENT_MAGIC;
	rec->seq = seq + 1;
	rec->crc = intent_crc(rec);
	if (journal) {
		/*
		 * A record another process left armed (a spawn-mode image
		 * that died in its trial: the old image repairs the blocks
		 * itself) is void once this one starts writing.
		 */
		if (__atomic_load_n(magic, __ATOMIC_RELAXED)) {
			__atomic_store_n(magic, 0, __ATOMIC_RELAXED);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
		}
		/* All but the magic, which is 0 (idle) until it is whole. */
		put(luo_kho.base + KHO_INTENT_OFFSET + sizeof(*magic),
		    (const uint8_t *)rec + sizeof(*magic),
		    intent_len(rec) - sizeof(*magic));
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		__atomic_store_n(magic, KHO_INTENT_MAGIC, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		luo_kho_fault_point();
	}
	for (uint32_t i = 0; i < rec->count; i++) {
		const struct kho_intent_entry *e = &rec->entry[i];

		if (e->zero_len)
			zero_live(e->off, e->zero_len);
		else
			put(luo_kho.base + e->off, e->image, sizeof(e->image));
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (journal)
		__atomic_store_n(magic, 0, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void luo_kho_block_write(const struct kho_block *b, uint32_t payload_crc,
			 uint64_t checked_size)
{
	struct kho_change c;

	luo_kho_change_begin(&c);
	luo_kho_change_block(&c, b, payload_crc, checked_size);
	luo_kho_change_commit(&c);
}

void luo_kho_header_write(void)
{
	struct kho_change c;

	luo_kho_change_begin(&c);
	luo_kho_change_header(&c);
	luo_kho_change_commit(&c);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* One entry of an untrusted record.  Return: NULL if sound, else why. */
static const char *entry_check(const struct kho_intent_entry *e,
			       uint64_t file_size)
{
	if (e->zero_len) {
		if (e->off < KHO_DATA_START || e->off % KHO_BLOCK_ALIGN ||
		    e->zero_len % KHO_BLOCK_ALIGN ||
		    e->zero_len > file_size - e->off)
			return "zeroes a range outside the blocks";
		if (!all_zero(e->image, sizeof(e->image)))
			return "zeroes a range but carries an image";
		return NULL;
	}
	if (e->off && (e->off < KHO_DATA_START || e->off % KHO_BLOCK_ALIGN ||
		       e->off > file_size - sizeof(e->image)))
		return "writes a header outside the blocks";
	return NULL;
}

/* Zero a range of the mapped memfd, giving whole pages back. */
static void zero_mapped(int fd, uint8_t *map, uint64_t off, uint64_t len)
{
	uint64_t lo = kho_round_up(off, 4096), hi = (off + len) / 4096 * 4096;

	if (hi > lo &&
	    !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)lo, (off_t)(hi - lo))) {
		memset(map + off, 0, lo - off);
		memset(map + hi, 0, off + len - hi);
		return;
	}
	memset(map + off, 0, len); /* hugetlbfs: no 4 KiB holes */
}

int luo_kho_intent_recover(int fd, uint64_t file_size, char *why, size_t whylen)
{
	struct kho_intent rec;
	const char *bad = NULL;
	uint8_t *map;
	uint32_t i;

	if (file_size < KHO_DATA_START)
		return 0; /* too short for an arena: its header check says so */
	if (pread(fd, &rec, sizeof(rec), KHO_INTENT_OFFSET) !=
	    (ssize_t)sizeof(rec))
		return luo_reason(why, whylen, -EBADMSG,
				  "cannot read the intent record");
	if (!rec.magic)
		return 0;
	if (rec.magic != KHO_INTENT_MAGIC)
		return luo_reason(why, whylen, -EBADMSG,
				  "intent record has bad magic %#llx",
				  (unsigned long long)rec.magic);
	if (!rec.count || rec.count > KHO_INTENT_MAX)
		return luo_reason(why, whylen, -EBADMSG,
				  "intent record names %u writes (1 to %d)",
				  rec.count, KHO_INTENT_MAX);
	if (luo_crc_mismatch(rec.crc, intent_crc(&rec)))
		return luo_reason(why, whylen, -EBADMSG,
				  "intent record checksum mismatch (%#x)",
				  rec.crc);
	if (file_size > KHO_MAX_ARENA)
		return luo_reason(why, whylen, -EBADMSG,
				  "arena memfd of %llu bytes is too large",
				  (unsigned long long)file_size);
	for (i = 0; i < rec.count && !bad; i++)
		bad = entry_check(&rec.entry[i], file_size);
	if (bad)
		return luo_reason(why, whylen, -EBADMSG,
				  "intent record entry %u %s (offset %#llx)",
				  i - 1, bad,
				  (unsigned long long)rec.entry[i - 1].off);
	map = mmap(NULL, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return luo_reason(
			why, whylen, -ENOMEM,
			"cannot map the arena to finish its intent record: %s",
			strerror(errno));
	for (i = 0; i < rec.count; i++) {
		const struct kho_intent_entry *e = &rec.entry[i];

		if (e->zero_len)
			zero_mapped(fd, map, e->off, e->zero_len);
		else
			memcpy(map + e->off, e->image, sizeof(e->image));
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(intent_magic(map), 0, __ATOMIC_RELAXED);
	munmap(map, file_size);
	pr_info("the crashed process was changing the arena's metadata: finished that change (%u writes, record %llu) before checking the arena",
		rec.count, (unsigned long long)rec.seq);
	return 0;
}

bool luo_kho_intent_idle(int fd)
{
	uint64_t magic = 1;

	return pread(fd, &magic, sizeof(magic), KHO_INTENT_OFFSET) ==
		       (ssize_t)sizeof(magic) &&
	       !magic;
}
