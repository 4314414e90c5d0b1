/* SPDX-License-Identifier: MIT */
/*
 * What the parts of handlers-across-exec share: the files it preserves,
 * the state image 1 leaves in handover memory, the socket and stream
 * helpers.  handlers.c: the shared state and the stage table;
 * handlers_io.c: sockets, streams and the helper process;
 * handlers_image1.c and handlers_image2.c: the two images.
 */
#ifndef LUO_TESTS_FILES_HANDLERS_H
#define LUO_TESTS_FILES_HANDLERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <luo/luo.h>

#include "common.h"

#define STATE_MAGIC 0x53454c4946554c31ULL /* "1LUFILES" */
#define MEMFD_SIZE (3 * 4096 + 123)
#define MEMFD_OFFSET 777
#define PHASE1 1000	   /* bytes each way before the reboot */
#define BLACKOUT 16384	   /* bytes the helper sends around the exec */
#define BLACKOUT_CHUNK 256 /* ... in chunks, 1 ms apart */
#define PHASE2 1000	   /* bytes from image 2 to the helper */
#define SEED_S2H 11	   /* stream server -> helper */
#define SEED_H2S 22	   /* stream helper -> server */
#define SEED_MEMFD 33
#define TIMER_NS 20000000L /* 20 ms */
#define EFD_VALUE 0x123456789ULL
#define IO_TIMEOUT 10000 /* ms */

enum tok {
	T_MEMFD = 1,
	T_TCP4,
	T_TCP6,
	T_UDP4,
	T_UDP6,
	T_UNIX_LISTEN,
	T_UNIX_DGRAM,
	T_TCP_CONN,
	T_PAIR_A,
	T_PAIR_B,
	T_SEQ_A,
	T_SEQ_B,
	T_PIPE_R,
	T_PIPE_W,
	T_FIFO_R,
	T_FIFO_W,
	T_EFD_SEM,
	T_EFD,
	T_TIMERFD,
	T_FILE_APPEND,
	T_FILE_RO,
	T_CTL,
	T_UNRETRIEVED, /* in "files", never retrieved */
	T_LEFT_MEMFD,  /* in "leftover", a session never retrieved */
	T_LEFT_EFD,
	T_CLOSED_MEMFD, /* in "closed", closed before the reboot */
	T_UNPRESERVED,	/* in "files", unpreserved before the reboot */
	T_COUNT
};

/* 64-bit tokens, so truncation to 32 bits would show. */
#define TOKEN(t) (0xf11e5e0000000000ULL | (uint64_t)(t))

extern const char *const tok_names[T_COUNT];

struct rec {
	uint64_t dev, ino;
	char id[96];	  /* fd_identity(): anonymous inodes are shared */
	uint32_t carried; /* preserved in a session that goes over */
};

/* In handover memory; found in image 2 through the subsystem's u64. */
struct state {
	uint64_t magic;
	int32_t helper;
	char tmpdir[128];
	struct rec rec[T_COUNT];
	int32_t nharness;    /* descriptors image 1 started with ... */
	int32_t harness[16]; /* ... without FD_CLOEXEC (from the runner) */
};

/* What the helper needs to connect: sent over the control socket. */
struct hello {
	uint16_t port4, port6;
	char unix_name[64]; /* abstract, without the leading NUL */
};

extern struct state *st;
/* Image 1 hands the offset of @st to image 2. */
extern uint64_t st_off;
extern struct liveupdate_subsystem sub;

extern int inherited[T_COUNT][2]; /* the numbers the library inherited */
extern int ninherited[T_COUNT];

/* The library's descriptors of each carried file (see handlers.c). */
void check_library_fds(const char *when);
/* @file in the test's temporary directory. */
void path_in(char *buf, size_t len, const char *file);

/* Sockets (abstract Unix names, loopback only). */
socklen_t unix_addr(struct sockaddr_un *sa, const char *name);
int inet_socket(int family, int type, uint16_t port, int do_bind);
int tcp_connect(int family, uint16_t port);
int unix_connect(const char *name);
uint16_t local_port(int fd);
/* accept() with a timeout: -ETIMEDOUT if nothing is queued in time. */
int accept_timeout(int lfd, int timeout_ms);

/* The byte streams: send, and read and compare (0 if all match). */
int send_stream(int fd, uint64_t seed, uint64_t from, size_t len);
int expect_stream(int fd, uint64_t seed, uint64_t from, size_t len,
		  const char *what);
int expect_bytes(int fd, const char *want, const char *what);
int expect_eof(int fd, const char *what);

/* The control socket to the helper: one byte per step. */
void ctl_send(int ctl, char c);
int ctl_expect(int ctl, char want, int timeout_ms);
/* The remote end: a forked child, never exec'd, without the library. */
void helper(int ctl) __attribute__((noreturn));

int image1(void);
int image2(void);

#endif
