/* SPDX-License-Identifier: MIT */
/*
 * fuzz_handover: what the harness's parts share: the input's control
 * bits, the invariant check, descriptor identities and snapshots
 * (fuzz_handover_fds.c, with the carrier), and the service that reads an
 * accepted handover back (fuzz_handover_service.c).
 */
#ifndef LUO_TESTS_FUZZ_HANDOVER_H
#define LUO_TESTS_FUZZ_HANDOVER_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#include <luo/luo.h>

#include "fuzz_arena.h"

#define CTL_ENV_MASK 0x03
#define CTL_ENV_PLAIN 0
#define CTL_ENV_TEARDOWN 1
#define CTL_ENV_MALFORMED 2
#define CTL_ENV_IGNORE 3
#define CTL_RAW 0x04
#define CTL_BIG_SMALL 0x08
#define CTL_NO_RETRIEVE 0x10
#define CTL_NO_SESSION_FINISH 0x20
#define CTL_NO_FINISH 0x40
#define CTL_NO_OUTGOING 0x80

#define PAGE 4096
#define BIG_MEMFD (4 << 20)
#define BIG_ALLOC (3 << 20)
#define MAX_FDS 512
#define MAX_SESSIONS 16
#define MAX_FILES 16

#define CARRIER_MAX 512 /* files the harness sends at most */

/* An invariant of the library broken: report it and abort(). */
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fail(__FILE__, __LINE__, #cond, __VA_ARGS__);          \
	} while (0)

__attribute__((noreturn, format(printf, 4, 5))) void
fail(const char *file, int line, const char *cond, const char *fmt, ...);

/* Descriptors: who is open, and as which file. */
struct fd_id {
	int fd;
	uint32_t mode;
	uint64_t dev, ino;
};

struct fd_snap {
	struct fd_id v[MAX_FDS];
	size_t n;
};

/* What an accepted arena holds, read back through the public API. */
struct in_session {
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	size_t nfiles;	/* files read, at most MAX_FILES */
	uint64_t total; /* files in the session */
	uint64_t token[MAX_FILES];
	struct luo_file_fd_ser where[MAX_FILES];
};

struct in_view {
	struct in_session s[MAX_SESSIONS];
	size_t n;
};

/* How make_carrier() spoils the carrier: the low 4 bits of its "how". */
enum carrier_defect {
	DEFECT_NONE,
	DEFECT_MAGIC,
	DEFECT_FIRST,
	DEFECT_COUNT,
	DEFECT_EXTRA,
	DEFECT_MISSING,
	DEFECT_NO_FILES,
	DEFECT_SHORT,
	DEFECT_UNNAMED,	 /* named neither in the environment nor the FDT */
	DEFECT_ENV_ONLY, /* named in the environment only */
	DEFECT_FDT_ONLY, /* named in the FDT only */
};

/* fuzz_handover_fds.c */
bool fd_identity(int fd, struct fd_id *id);
bool same_id(const struct fd_id *a, const struct fd_id *b);
bool still_open(const struct fd_id *id);
void snap_take(struct fd_snap *s);
const struct fd_id *snap_find(const struct fd_snap *s, int fd);
const char *fd_target(int fd);
void close_if_ours(struct fd_id *id);
void setup_once(void);
struct fd_id make_carrier(uint8_t *buf, size_t len, uint8_t how);
extern bool verbose;
extern struct fd_id sent[CARRIER_MAX + 1];
extern size_t nsent;

/* fuzz_handover_service.c */
void read_view(struct in_view *v);
void exercise_alloc(void);
void exercise_accepted(uint8_t ctl, struct in_view *v);

#endif
