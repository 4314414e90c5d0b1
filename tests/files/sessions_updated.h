/* SPDX-License-Identifier: MIT */
/*
 * sessions-updated: what its images share (sessions_updated.c): the
 * user file handler with its FLB, the handler image 2 registers late,
 * and the file helpers.
 */
#ifndef LUO_TESTS_SESSIONS_UPDATED_H
#define LUO_TESTS_SESSIONS_UPDATED_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <luo/luo.h>

#include "common.h"
#include "stage.h"
#define T_USER(i) (0x05e40000ULL + (i)) /* i = 0, 1, 2 */
#define T_ORPHAN 0x0e9a11ULL
#define T_PLAIN 0x91a1ULL
#define T_PIPE_R 0x919eULL
#define T_PIPE_W 0x919fULL
#define T_EVENTFD 0xefdULL
#define T_USER_AGAIN 0x05e40020ULL
#define FLB_MAGIC 0x464c42424c4f434bULL /* "KCOLBBLF" */
#define EFD_VALUE 42

/* The FLB's object, in handover memory. */
struct flb_block {
	uint64_t magic;
	uint32_t image;		    /* which image preserved it */
	uint32_t flb_preserves;	    /* FLB preserve calls in that image */
	uint32_t handler_preserves; /* file preserve calls in that image */
	char text[32];
};

/* What the callbacks saw, in this image. */
struct su_counts {
	int preserve, unpreserve, retrieve, finish, finish_retrieved;
	uint64_t retrieve_data[8];
	int flb_preserve, flb_unpreserve, flb_retrieve, flb_finish;
	uint64_t flb_retrieve_data, flb_finish_data;
	void *flb_finish_obj;
	uint32_t flb_finish_image;     /* the block's image at FLB finish */
	int flb_finishes_at_last_file; /* FLB finishes when the 3rd ran */
	char order[32];		       /* F: file finish, B: FLB finish */
	int orphan_preserve, orphan_retrieve;
};
extern struct su_counts cnt;

extern const char *const user_names[3];
extern const size_t user_sizes[3];
extern int image; /* 1, 2 or 3 */
extern struct liveupdate_flb user_flb;
extern struct liveupdate_file_handler orphan_handler;

/* A memfd named @name of @size bytes, @text repeated. */
int memfd_with(const char *name, const char *text, size_t size);
/* @fd holds @size bytes, @text repeated. */
void check_content(int fd, const char *text, size_t size);
/* The next read() of @fd gives @want. */
void check_read(int fd, const char *want);
/* The user handler and its FLB. */
void register_user(void);

/* sessions_updated_images.c: each image's checks, in order. */
void test_i1_preserve(void);
void test_i2_state(void);
void test_i2_outgoing_in_updated(void);
void test_i2_user_handler_retrieve(void);
void test_i2_flb_finish(void);
void test_i2_unregistered_handler(void);
void test_i2_represerve_user_file(void);
void test_i2_finish(void);
void test_i3_chained(void);

#endif
