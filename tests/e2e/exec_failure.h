/* SPDX-License-Identifier: MIT */
/*
 * exec-failure: what its images share (exec_failure.c): the preserved
 * data block, the subsystems that record every callback, the device
 * nobody preserves, the process-level checks.
 */
#ifndef LUO_TESTS_EXEC_FAILURE_H
#define LUO_TESTS_EXEC_FAILURE_H

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "mix.h"
#include "stage.h"

#define DATA_SIZE (1u << 20)
#define DATA_MAGIC 0x4558454346414c31ULL /* "EXECFAL1" */
#define CONST_PREPARE 0x1122334455667788ULL
#define CONST_FREEZE 0x8877665544332211ULL
#define USER_FDT_SIZE 1024
#define NSUB 3
#define MAX_EVENTS 64

/* Preserved data block: a header, then a pattern. */
struct data_block {
	uint64_t magic;
	uint64_t self_off; /* its own offset, as the first image saw it */
	uint64_t failed_attempts;
	uint64_t words[];
};

#define DATA_WORDS ((DATA_SIZE - sizeof(struct data_block)) / 8)

struct sub_ctl {
	int refuse_prepare; /* -errno to return, or 0 */
	int refuse_freeze;
	uint64_t prepare_val;
	uint64_t freeze_val; /* 0: freeze leaves the value alone */
	uint64_t cancel_data;
	int boot_calls, finish_calls;
	uint64_t boot_data, finish_data;
};

extern struct sub_ctl ctl[NSUB];
extern struct liveupdate_subsystem subs[NSUB];
extern const char *const sub_names[NSUB];
extern char events[MAX_EVENTS][8];
extern int nevents;
/* Devices shut down (by an exec that did happen). */
extern int shutdowns;
extern struct liveupdate_device plain_dev;

/* What image 1 set up and what every failed attempt compares against. */
struct exec_failure_globals {
	struct data_block *data;
	void *user_fdt;
	char fds[8192];
	struct kho_arena_stats stats;
	char self[PATH_MAX];
	char dir[PATH_MAX];
	char **must_not_run; /* argv of an exec that must fail */
};
extern struct exec_failure_globals g;

void fill_data(struct data_block *d);
size_t bad_words(const struct data_block *d);
void register_subsystems(void);
/* The callbacks recorded since nevents was last reset, "P0 P1 ...". */
void events_string(char *buf, size_t len);
/* All open fds with their targets, as one string. */
void fd_table(char *buf, size_t len);
void check_arena_cloexec(void);
/* Everything that must hold in NORMAL after a failed attempt. */
void check_normal_and_intact(void);

/* exec_failure_image1.c: the failed attempts, then the real update. */
int first_image(void);
/* exec_failure_image2.c: what came across. */
int updated_image(void);

#endif
