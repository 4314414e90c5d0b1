/* SPDX-License-Identifier: MIT */
/*
 * Test helpers: subsystems that record every callback in one global
 * journal, and a log handler that keeps the library's messages.
 */
#ifndef LUO_TESTS_RECORDER_H
#define LUO_TESTS_RECORDER_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <luo/luo.h>

#define REC_MAX_EVENTS 256
#define REC_MAX_SUBSYS 8

enum rec_op { REC_PREPARE, REC_FREEZE, REC_CANCEL, REC_BOOT, REC_FINISH };

struct rec_event {
	enum rec_op op;
	int id;	       /* which subsystem */
	uint64_t data; /* what the callback received (or set) */
};

/* Per subsystem: what to answer and what it saw. */
struct rec_subsys {
	struct liveupdate_subsystem h;
	int id;
	int prepare_ret, freeze_ret;
	uint64_t prepare_data, freeze_data; /* values to store */
	char name[32];
};

struct rec_journal {
	struct rec_event ev[REC_MAX_EVENTS];
	int n;
	int log_errors, log_warnings;
	char last_error[512];
	int deadlk_seen; /* callbacks that tried to take the state lock */
	int try_lock_in_callback;
	int allowed_refused; /* calls allowed in a callback that failed */
	int refusal_missing; /* calls not allowed that did not say so */
};

extern struct rec_journal rec;
extern const struct liveupdate_subsystem_ops rec_ops;

void rec_reset(void);
void rec_subsys_init(struct rec_subsys *s, int id, const char *name);
int rec_count(enum rec_op op, int id);
/* Order of @op events as a string of ids, e.g. "321". */
const char *rec_order(enum rec_op op);
void rec_log_handler(enum luo_log_level level, const char *msg, void *arg);
/* Fresh journal, messages captured, library started: 0 or -1. */
int rec_luo_start(const struct luo_init_opts *opts);
/* Cancel any update in progress and stop the library: 0 or -1. */
int rec_luo_stop(void);

#endif
