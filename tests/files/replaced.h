/* SPDX-License-Identifier: MIT */
/*
 * What the two parts of replaced-fd, replaced-anon-fd and
 * reused-after-retrieve share: the preserved files, their identities
 * (handed from image 1 to image 2 in argv) and the checks of a retrieval.
 * replaced.c is image 1 and the helpers, replaced_image2.c image 2.
 */
#ifndef LUO_TESTS_FILES_REPLACED_H
#define LUO_TESTS_FILES_REPLACED_H

#include <stdint.h>

#include <luo/luo.h>

#include "common.h"

enum tok {
	/* "replaced" */
	T_VICTIM,   /* memfd, replaced by /dev/null before luo_init */
	T_CLOSED,   /* pipe read end, closed before luo_init */
	T_LATE,	    /* memfd, replaced by /dev/null after luo_init */
	T_OK_MEMFD, /* untouched */
	T_OK_PIPE,  /* untouched, the other pipe's read end */
	T_OK_EVENTFD /* untouched */,
	/* "anon" */
	T_EFD_TO_TIMERFD, /* eventfd, replaced by a timerfd */
	T_EFD_TO_EFD,	  /* eventfd, replaced by another eventfd */
	T_TFD_TO_EPOLL,	  /* timerfd, replaced by an epoll fd */
	T_ANON_OK,	  /* eventfd, untouched */
	/* "reused": retrieved, closed, the number reused */
	T_RU_FREE,	  /* memfd, the number left free */
	T_RU_NULL,	  /* memfd, /dev/null at its number */
	T_RU_EFD_TIMERFD, /* eventfd, a timerfd at its number */
	T_RU_EFD_EFD,	  /* eventfd, another eventfd at its number */
	T_RU_PIPE_R,	  /* pipe read end, the write end at its number */
	T_RU_PIPE_W,	  /* that write end */
	T_RU_REOPEN,	  /* memfd, reopened through /proc at its number */
	T_COUNT
};

extern const char *const names[T_COUNT];

#define TOKEN(t) (0x7e9a0000ULL + (uint64_t)(t))
#define OK_EFD_VALUE 7
#define ANON_OK_VALUE 11
#define EFD_VALUE 2
#define NEW_EFD_VALUE 99

struct ident {
	uint64_t dev, ino;
	char id[128];
	int present;
	int fd; /* image 2: the inherited number */
};

extern struct ident ids[T_COUNT];

/* A subsystem, to show the rest of the handover is adopted. */
#define SUB_DATA 0x5eed1234ULL
extern struct liveupdate_subsystem sub;

enum mode { M_REPLACED, M_ANON, M_REUSED };
extern enum mode mode;

/* Image 2's half of the identities image 1 handed on: "TOKEN:DEV:INO:ID". */
void decode(const char *s);
/* 1 if preserved files reach the new image as inherited descriptors. */
int files_inherited_as_fds(void);
/* Each preserved file's inherited descriptor, into ids[].fd. */
void find_inherited(int any);
/* Put @newfd at @num, as a service reusing the number would. */
void put_at(int num, int newfd);
int is_dev_null(int fd);
/* 1 if @fd's identity starts with @want (its /proc/self/fd link). */
int link_is(int fd, const char *want);
/* Retrieval must fail with -ESTALE, and the same way the second time. */
void expect_stale(struct luo_session *s, int t);
int retrieve_ok(struct luo_session *s, int t);
void expect_content(int fd, const char *want, const char *what);

/* Image 2: @argc identities from image 1 in @argv. */
int image2(int argc, char **argv);

#endif
