/* SPDX-License-Identifier: MIT */
/**
 * DOC: libluo handover ABI
 *
 * Everything one program image hands to the next lives in one memfd, the
 * handover arena.  All references inside it are 64-bit offsets from the
 * start of the arena ("physical addresses"), never pointers, so they mean
 * the same thing in both images.  The inherited arena fd is named by the
 * environment variable %LUO_HANDOVER_ENV.
 *
 * Arena layout::
 *
 *   offset 0            struct kho_arena_header (one cache line; names the
 *                       crash record, struct kho_crash_record)
 *   offset 64           struct kho_intent (the change of block headers in
 *                       progress, if any: read only after a crash)
 *   data_start (512)    block, block, block, ... up to arena_size
 *
 * Every block starts with a struct kho_block_header and is a multiple of
 * %KHO_BLOCK_ALIGN bytes long; blocks tile [data_start, arena_size) with no
 * gap, so the new image can walk and check all of them.  Blocks flagged
 * %KHO_BLOCK_CHECKED hold library metadata (FDTs, ABI structures) and carry
 * a CRC32C of their payload; user data blocks are never read, copied or
 * checksummed on the update path.
 *
 * The root FDT (compatible "luo-kho-v1") has one subnode per client; each
 * holds the offset of that client's own FDT blob in property "fdt".  The
 * LUO client (node "LUO") follows the kernel's LUO ABI v2, plus a node of
 * its own for the files in flight and one for devices.  This is exactly
 * what is written (tests/abi checks a real handover against this header)::
 *
 *   / {
 *           compatible = "luo-kho-v1";
 *           LUO { fdt = <u64 offset of the LUO FDT>; };
 *           CLIENT { fdt = <u64 offset>; };     (one per kho_add_subtree())
 *   };
 *
 *   LUO FDT:
 *   / {
 *           compatible = "luo-v2";
 *           luo-abi-header = <u64 offset of struct luo_ser>;
 *           subsystems {
 *                   compatible = "subsystems-v1";
 *                   NAME = <u64 data>;          (one per subsystem)
 *           };
 *           files {
 *                   compatible = "luo-file-scm-v1";
 *                   carrier-fd = <u64>;  carrier-ino = <u64>;  count = <u64>;
 *                   inherit-base = <u64>;  (0: in flight; else inherited)
 *           };
 *           exec {
 *                   compatible = "luo-exec-v1";
 *                   prepare-ns = <u64>;  freeze-ns = <u64>;  exec-ns = <u64>;
 *           };                                  (CLOCK_MONOTONIC)
 *           devices {
 *                   compatible = "luo-devices-v1";
 *                   count = <u64 N>;
 *                   paths = N strings;  buses = N strings;  drivers = N strings;
 *                   driver-data = <N u64>;  bus-data = <N u64>;
 *           };
 *   };
 *
 * Every node and property name, every compatible string and every packed
 * structure of the handover is defined here.  Any change to one bumps the
 * compatible string or version its comment names; an incoming handover
 * that does not match is refused.
 */
#ifndef LUO_ABI_H
#define LUO_ABI_H

#include <stdint.h>

/** LUO_HANDOVER_ENV - environment variable naming the inherited arena fd. */
#define LUO_HANDOVER_ENV "LUO_HANDOVER_FD"

/* Arena and blocks: any change bumps KHO_ARENA_VERSION. */
#define KHO_ARENA_MAGIC 0x4f484b2d4f554cULL /* "LUO-KHO\0", little endian */
/* 2: the header names the crash record; 3: the intent record, data at 512 */
#define KHO_ARENA_VERSION 3
#define KHO_BLOCK_MAGIC 0x4b4c4248U /* "HBLK" */
#define KHO_BLOCK_ALIGN 64
/* Where the intent record (struct kho_intent) and the first block are. */
#define KHO_INTENT_OFFSET 64
#define KHO_ARENA_DATA_START 512
/* The root FDT: any change bumps KHO_ROOT_COMPATIBLE. */
#define KHO_ROOT_COMPATIBLE "luo-kho-v1"
#define KHO_SUBTREE_PROP "fdt" /* in each client's node: its FDT's offset */
/* The property every node of the handover's FDTs has. */
#define LUO_FDT_COMPATIBLE_PROP "compatible"

/* Arena flags: how the memfd was created, so the new image maps it alike. */
#define KHO_ARENA_HUGETLB (1U << 0)
#define KHO_ARENA_THP (1U << 1)

/**
 * struct kho_arena_header - first bytes of the handover arena
 * @magic: %KHO_ARENA_MAGIC.
 * @version: %KHO_ARENA_VERSION.
 * @header_size: sizeof(struct kho_arena_header).
 * @flags: KHO_ARENA_* flags.
 * @page_size: page size backing the arena (4 KiB or the huge page size).
 * @data_start: offset of the first block.
 * @arena_size: end of the last block; the memfd is at least this long.
 * @root_fdt: offset of the root FDT block payload, 0 while not finalized.
 * @crash_record: payload offset of the block holding the struct
 *                kho_crash_record (kept current during normal operation,
 *                read only after a crash), 0 if none.
 * @reserved: zero; pads the header to one cache line.
 * @header_crc: CRC32C of this structure with @header_crc set to 0.
 *
 * A change bumps %KHO_ARENA_VERSION.
 */
struct kho_arena_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint32_t flags;
	uint32_t page_size;
	uint64_t data_start;
	uint64_t arena_size;
	uint64_t root_fdt;
	uint64_t crash_record;
	uint32_t reserved;
	uint32_t header_crc;
} __attribute__((packed));

/*
 * The crash record: what a process restarted after a crash needs to adopt
 * the arena without a sealed handover (no root FDT).  Any change bumps
 * KHO_CRASH_VERSION.
 */
#define KHO_CRASH_MAGIC 0x524853414d43554cULL /* "LUCMASHR", little endian */
#define KHO_CRASH_VERSION 1
#define KHO_CRASH_SLOTS 2
#define KHO_CRASH_MAX_ENTRIES 32

/**
 * struct kho_crash_entry - one subsystem's u64, kept current
 * @name: NUL-terminated subsystem name, 1 to 63 characters of
 *        [A-Za-z0-9,._+-]; the rest zero.
 * @data: the u64 the service set (liveupdate_crash_data_set()).
 *
 * A change bumps %KHO_CRASH_VERSION.
 */
struct kho_crash_entry {
	char name[64];
	uint64_t data;
} __attribute__((packed));

/**
 * struct kho_crash_slot - one copy of the record
 * @magic: %KHO_CRASH_MAGIC.
 * @version: %KHO_CRASH_VERSION.
 * @count: entries in use, at most %KHO_CRASH_MAX_ENTRIES; unused ones zero.
 * @seq: incremented on every write; the valid slot with the highest wins.
 * @liveupdate_num: live updates the service had been through.
 * @entries: the subsystems' u64s.
 * @reserved: zero.
 * @crc: CRC32C of this slot with @crc set to 0.
 *
 * A change bumps %KHO_CRASH_VERSION.
 */
struct kho_crash_slot {
	uint64_t magic;
	uint32_t version;
	uint32_t count;
	uint64_t seq;
	uint64_t liveupdate_num;
	struct kho_crash_entry entries[KHO_CRASH_MAX_ENTRIES];
	uint32_t reserved;
	uint32_t crc;
} __attribute__((packed));

/**
 * struct kho_crash_record - the crash record, one plain arena block
 * @slot: two copies, written alternately (slot @seq % 2), each whole with
 *        its checksum before the next write: a process killed in the
 *        middle of a write leaves the other one intact.
 *
 * The blocks themselves need no record: their headers tile the arena
 * and are written (with their checksums) at every allocation and free,
 * through the intent record (struct kho_intent).
 * A change bumps %KHO_CRASH_VERSION.
 */
struct kho_crash_record {
	struct kho_crash_slot slot[KHO_CRASH_SLOTS];
} __attribute__((packed));

/* Block flags. */
#define KHO_BLOCK_USED (1U << 0)
#define KHO_BLOCK_CHECKED (1U << 1)

/**
 * struct kho_block_header - header in front of every arena block
 * @magic: %KHO_BLOCK_MAGIC.
 * @flags: KHO_BLOCK_* flags; a block without %KHO_BLOCK_USED is free.
 * @size: bytes of the whole block, header included; multiple of 64.
 * @payload_size: bytes the owner asked for (0 for a free block).
 * @checked_size: leading payload bytes covered by @payload_crc.
 * @payload_crc: CRC32C of the first @checked_size payload bytes when
 *               %KHO_BLOCK_CHECKED, else 0.
 * @header_crc: CRC32C of the header with this field set to 0, seeded with
 *              the block's own offset so a header copied elsewhere fails.
 * @reserved: zero; pads the header to one cache line.
 *
 * A change bumps %KHO_ARENA_VERSION.
 */
struct kho_block_header {
	uint32_t magic;
	uint32_t flags;
	uint64_t size;
	uint64_t payload_size;
	uint64_t checked_size;
	uint32_t payload_crc;
	uint32_t header_crc;
	uint8_t reserved[24];
} __attribute__((packed));

/*
 * The intent record: how the block headers of the arena stay consistent
 * through a crash.  Every change of block headers (an allocation splitting
 * a free block, a free merging with its neighbours, the arena growing) and
 * of the arena header is first written here whole, then done, then the
 * record is cleared.  A process restarted after a crash finds it armed if
 * the crash came in the middle, checks it as untrusted input and does it
 * again (every entry is idempotent): the change is then complete, never
 * half made.  A sealed handover must have it idle.  Any change bumps
 * KHO_ARENA_VERSION.
 */
#define KHO_INTENT_MAGIC 0x544e45544e49554cULL /* "LUINTENT", little endian */
#define KHO_INTENT_MAX 4

/**
 * struct kho_intent_entry - one write of a change of the arena's metadata
 * @off: where: 0 for the arena header, else a block header's offset
 *       (data_start or above, a multiple of %KHO_BLOCK_ALIGN).
 * @zero_len: 0 to write @image (64 bytes) at @off; else the length of a
 *            range to zero from @off (a multiple of %KHO_BLOCK_ALIGN), and
 *            @image is zero.
 * @image: the 64 bytes to write: a whole struct kho_arena_header or struct
 *         kho_block_header, its checksum included.
 *
 * A change bumps %KHO_ARENA_VERSION.
 */
struct kho_intent_entry {
	uint64_t off;
	uint64_t zero_len;
	uint8_t image[64];
} __attribute__((packed));

/**
 * struct kho_intent - the change in progress, at %KHO_INTENT_OFFSET
 * @magic: %KHO_INTENT_MAGIC while a change is being made, 0 when idle
 *         (then nothing else is read); written last, cleared first.
 * @count: entries of @entry in use, 1 to %KHO_INTENT_MAX.
 * @crc: CRC32C of the structure up to the end of the last entry in use,
 *       with @magic set and @crc 0.
 * @seq: incremented on every change.
 * @entry: the writes, done in order.
 *
 * A change bumps %KHO_ARENA_VERSION.
 */
struct kho_intent {
	uint64_t magic;
	uint32_t count;
	uint32_t crc;
	uint64_t seq;
	struct kho_intent_entry entry[KHO_INTENT_MAX];
} __attribute__((packed));

/* The LUO FDT, root node: any change bumps LUO_FDT_COMPATIBLE. */
#define LUO_FDT_KHO_ENTRY_NAME "LUO"
#define LUO_FDT_COMPATIBLE "luo-v2"
#define LUO_FDT_ABI_HEADER "luo-abi-header"

/* One u64 property per subsystem, named after it; bumps
 * LUO_SUBSYSTEMS_COMPATIBLE. */
#define LUO_SUBSYSTEMS_NODE "subsystems"
#define LUO_SUBSYSTEMS_COMPATIBLE "subsystems-v1"

/* The update's timestamps; bumps LUO_EXEC_COMPATIBLE. */
#define LUO_EXEC_NODE "exec"
#define LUO_EXEC_COMPATIBLE "luo-exec-v1"
#define LUO_EXEC_PREPARE_NS "prepare-ns"
#define LUO_EXEC_FREEZE_NS "freeze-ns"
#define LUO_EXEC_EXEC_NS "exec-ns"

/* The preserved devices in preserve order (children first), one parallel
 * property per field; bumps LUO_DEVICES_COMPATIBLE (see luo/device.h). */
#define LUO_DEVICES_NODE "devices"
#define LUO_DEVICES_COMPATIBLE "luo-devices-v1"
#define LUO_DEVICES_COUNT "count"
#define LUO_DEVICES_PATHS "paths"
#define LUO_DEVICES_BUSES "buses"
#define LUO_DEVICES_DRIVERS "drivers"
#define LUO_DEVICES_DRIVER_DATA "driver-data"
#define LUO_DEVICES_BUS_DATA "bus-data"

/* The files in flight on the carrier; bumps LUO_FILES_COMPATIBLE, as do
 * struct luo_file_fd_ser and struct luo_carrier_msg. */
#define LUO_FILES_NODE "files"
#define LUO_FILES_COMPATIBLE "luo-file-scm-v1"
#define LUO_FILES_CARRIER_FD "carrier-fd"
#define LUO_FILES_CARRIER_INO "carrier-ino"
#define LUO_FILES_COUNT "count"
/*
 * Not 0: the files are inherited, not in flight (LUO_INIT_EXEC_INHERIT):
 * descriptors inherit-base to inherit-base + count - 1, in carrier order,
 * and carrier-fd (= inherit-base + count) is the sentinel, a socket with
 * nothing in flight.  The handover environment then has a fifth field,
 * the same base, which an image without inheritance refuses.  An image
 * that does not know the property ignores it.
 */
#define LUO_FILES_INHERIT_BASE "inherit-base"
/* Files travel in batches of at most this many per message. */
#define LUO_CARRIER_BATCH 253

#define LIVEUPDATE_SESSION_NAME_LENGTH 64
#define LIVEUPDATE_HNDL_COMPAT_LENGTH 48
#define LIVEUPDATE_FLB_COMPAT_LENGTH 48
#define LUO_FLB_PGCNT 1
#define LUO_FLB_MAX                                                            \
	((LUO_FLB_PGCNT * 4096 - sizeof(struct luo_flb_header_ser)) /          \
	 sizeof(struct luo_flb_ser))

/**
 * struct luo_ser - root of the preserved LUO state (ABI v2)
 * @liveupdate_num: number of successful live updates, this one included.
 * @sessions_pa: offset of the session block header, or 0 for none.
 * @flbs_pa: offset of the FLB block header, or 0 for none.
 *
 * A change bumps %LUO_FDT_COMPATIBLE (the kernel's ABI v2).
 */
struct luo_ser {
	uint64_t liveupdate_num;
	uint64_t sessions_pa;
	uint64_t flbs_pa;
} __attribute__((packed));

/**
 * struct luo_session_header_ser - start of the session block
 * @count: number of struct luo_session_ser that follow.
 * @pgcnt: 4 KiB pages the block spans.
 *
 * A change bumps %LUO_FDT_COMPATIBLE (the kernel's ABI v2).
 */
struct luo_session_header_ser {
	uint64_t count;
	uint64_t pgcnt;
} __attribute__((packed));

/**
 * struct luo_file_set_ser - where a session's files are
 * @files: offset of the file set block, 0 if @count is 0.
 * @count: number of files.
 *
 * The file set block holds struct luo_file_ser[@count] followed by struct
 * luo_file_fd_ser[@count] (the "files" node, "luo-file-scm-v1").
 *
 * A change bumps %LUO_FDT_COMPATIBLE (the kernel's ABI v2).
 */
struct luo_file_set_ser {
	uint64_t files;
	uint64_t count;
} __attribute__((packed));

/**
 * struct luo_session_ser - one preserved session
 * @name: NUL-terminated name.
 * @file_set_ser: its files.
 *
 * A change bumps %LUO_FDT_COMPATIBLE (the kernel's ABI v2).
 */
struct luo_session_ser {
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	struct luo_file_set_ser file_set_ser;
} __attribute__((packed));

/**
 * struct luo_file_ser - one preserved file, as the kernel has it
 * @compatible: NUL-terminated compatible of its handler; "luo-closed-v1"
 *              for a file unpreserved after freeze, which keeps its place
 *              in the carrier stream and is closed by the new image on
 *              arrival (an older library sees an unknown handler).
 * @data: the handler's u64.
 * @token: the service's key for it.
 *
 * A change bumps %LUO_FDT_COMPATIBLE (the kernel's ABI v2).
 */
struct luo_file_ser {
	char compatible[LIVEUPDATE_HNDL_COMPAT_LENGTH];
	uint64_t data;
	uint64_t token;
} __attribute__((packed));

/**
 * struct luo_file_fd_ser - how a preserved file reaches the new image
 * @index: its place in the carrier stream: files are numbered across all
 *         sessions, in the order of the session block.
 * @mode: its st_mode & S_IFMT.
 * @dev: its st_dev.
 * @ino: its st_ino.
 *
 * The open files themselves cross the exec in flight on one Unix socket,
 * the carrier, whose receiving end the new image inherits (the "files"
 * node names it: "carrier-fd", "carrier-ino", "count").  The old image
 * sends them with SCM_RIGHTS in messages of at most %LUO_CARRIER_BATCH,
 * each with a struct luo_carrier_msg as its data.  The identity fields let
 * the new image check each file it received.
 *
 * A change bumps %LUO_FILES_COMPATIBLE.
 */
struct luo_file_fd_ser {
	uint32_t index;
	uint32_t mode;
	uint64_t dev;
	uint64_t ino;
} __attribute__((packed));

/**
 * struct luo_carrier_msg - the data of one carrier message
 * @magic: %LUO_CARRIER_MAGIC.
 * @first: index of the first file in this message.
 * @count: files in this message.
 *
 * A change bumps %LUO_FILES_COMPATIBLE.
 */
struct luo_carrier_msg {
	uint32_t magic;
	uint32_t first;
	uint32_t count;
} __attribute__((packed));

#define LUO_CARRIER_MAGIC 0x4c55464dU /* "MFUL" */

/**
 * struct luo_flb_header_ser - start of the FLB block (%LUO_FLB_PGCNT pages)
 * @pgcnt: pages the block spans.
 * @count: number of struct luo_flb_ser that follow.
 *
 * A change bumps %LUO_FDT_COMPATIBLE (the kernel's ABI v2).
 */
struct luo_flb_header_ser {
	uint64_t pgcnt;
	uint64_t count;
} __attribute__((packed));

/**
 * struct luo_flb_ser - one preserved File-Lifecycle-Bound object
 * @name: NUL-terminated compatible of the FLB.
 * @data: its preserve callback's u64.
 * @count: number of preserved files that depend on it.
 *
 * A change bumps %LUO_FDT_COMPATIBLE (the kernel's ABI v2).
 */
struct luo_flb_ser {
	char name[LIVEUPDATE_FLB_COMPAT_LENGTH];
	uint64_t data;
	uint64_t count;
} __attribute__((packed));

#endif /* LUO_ABI_H */
