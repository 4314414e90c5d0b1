/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the session and preserved-file end-to-end tests:
 * /proc/self/fd scans, descriptor identity, timed reads and writes, and
 * the byte pattern the streaming tests send.  The stage driver and the
 * CHECK/REQUIRE assertions come from tests/common (stage.h, check.h).
 */
#ifndef LUO_TESTS_FILES_COMMON_H
#define LUO_TESTS_FILES_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#include <luo/luo.h>

#include "../common/stage.h"

/* This executable's path. */
void self_exe(char *buf, size_t len);
/* Whether /proc/self/fd/@fd names something containing @marker. */
bool link_has(int fd, const char *marker);

/*
 * A subsystem whose only job is to hand one u64 to the next image: the
 * value *@value_ holds at prepare.  The new image reads it back with
 * liveupdate_get_subsystem_data().
 */
extern const struct liveupdate_subsystem_ops test_value_ops;
#define TEST_VALUE_SUBSYSTEM(name_, value_)                                    \
	{                                                                      \
		.ops = &test_value_ops, .name = (name_), .arg = (value_)       \
	}

/* 1 if @fd is open, 0 if not. */
int fd_is_open(int fd);
/* 1 if FD_CLOEXEC is set, 0 if not, -1 if @fd is not open. */
int fd_cloexec(int fd);
/* 1 if @a and @b are the same open file description (kcmp), 0 if not,
 * -1 if kcmp is not available. */
int same_open_file(int a, int b);

/*
 * Descriptors of this process open on (@dev, @ino), lowest first, at most
 * @max of them into @out (the scan's own directory descriptor excluded).
 * Return: how many there are.
 */
int fds_of_inode(uint64_t dev, uint64_t ino, int *out, int max);

/*
 * What tells files apart beyond (device, inode): every eventfd, timerfd,
 * epoll... shares one anonymous inode, both ends of a pipe share one.  The
 * /proc/self/fd link name, the access mode, and for an eventfd its
 * "eventfd-id" from fdinfo.  Empty if @fd is not open.
 */
void fd_identity(int fd, char *buf, size_t len);

/* As fds_of_inode, also matching fd_identity() against @id. */
int fds_of_identity(uint64_t dev, uint64_t ino, const char *id, int *out,
		    int max);

/* Descriptors open without FD_CLOEXEC, 0..2 excluded, as fds_of_inode. */
int fds_without_cloexec(int *out, int max);
/* All open descriptors, 0..2 excluded, as fds_of_inode. */
int fds_all(int *out, int max);

/* Whole buffer or an error; EINTR and short writes handled. */
int write_all(int fd, const void *buf, size_t len);
/* Read until @len bytes, EOF or @timeout_ms passed without data.
 * Return: bytes read (less than @len on EOF or timeout), -1 on error. */
ssize_t read_full(int fd, void *buf, size_t len, int timeout_ms);
/* Wait for POLLIN: 1 ready, 0 timeout, -1 error. */
int wait_readable(int fd, int timeout_ms);

/* Byte @i of the test streams, and a running checksum over them. */
static inline uint8_t stream_byte(uint64_t i, uint64_t seed)
{
	return (uint8_t)(((i + seed) * 2654435761ULL) >> 24);
}

static inline uint64_t sum_step(uint64_t sum, uint8_t byte)
{
	return (sum ^ byte) * 0x100000001b3ULL; /* FNV-1a */
}

#define SUM_INIT 0xcbf29ce484222325ULL

/* Monotonic milliseconds. */
uint64_t now_ms(void);

/* The handover arena's memfd in this process (found by its name), or -1. */
int arena_memfd(void);

/* Token number i of a set whose tokens do not rise (a mixing function). */
uint64_t scattered_token(int i);

#endif
