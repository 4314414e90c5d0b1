// SPDX-License-Identifier: MIT
/*
 * handlers-across-exec: every built-in file handler across a real exec.
 *
 * Image 1 creates one file of every kind the library knows (memfd, TCP
 * and UDP sockets over IPv4 and IPv6, Unix stream, datagram and seqpacket
 * sockets, an established TCP connection, a pipe, a FIFO, eventfds, a
 * timerfd, regular files), puts known state in each, preserves them in
 * sessions, closes its own copies and live-updates into itself.  Image 2
 * retrieves them and checks that the state survived, that the descriptors
 * carry FD_CLOEXEC, the session and token error codes, and that finish
 * closes what nobody retrieved.
 *
 * A helper process (forked, never exec'd, not using the library) is the
 * remote end of the TCP connection: it sends bytes during the blackout,
 * which must arrive exactly once, and it connects to the listeners just
 * before the reboot, so those connections wait in the backlog across the
 * exec and are accepted by image 2.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <luo/luo.h>

#include "handlers.h"

const char *const tok_names[T_COUNT] = {
	[T_MEMFD] = "memfd",
	[T_TCP4] = "tcp4-listener",
	[T_TCP6] = "tcp6-listener",
	[T_UDP4] = "udp4",
	[T_UDP6] = "udp6",
	[T_UNIX_LISTEN] = "unix-listener",
	[T_UNIX_DGRAM] = "unix-dgram",
	[T_TCP_CONN] = "tcp-connection",
	[T_PAIR_A] = "unix-pair-a",
	[T_PAIR_B] = "unix-pair-b",
	[T_SEQ_A] = "seqpacket-a",
	[T_SEQ_B] = "seqpacket-b",
	[T_PIPE_R] = "pipe-read",
	[T_PIPE_W] = "pipe-write",
	[T_FIFO_R] = "fifo-read",
	[T_FIFO_W] = "fifo-write",
	[T_EFD_SEM] = "eventfd-semaphore",
	[T_EFD] = "eventfd",
	[T_TIMERFD] = "timerfd",
	[T_FILE_APPEND] = "file-append",
	[T_FILE_RO] = "file-readonly",
	[T_CTL] = "control-socket",
	[T_UNRETRIEVED] = "unretrieved-memfd",
	[T_LEFT_MEMFD] = "leftover-memfd",
	[T_LEFT_EFD] = "leftover-eventfd",
	[T_CLOSED_MEMFD] = "closed-session-memfd",
	[T_UNPRESERVED] = "unpreserved-memfd",
};

struct state *st;
uint64_t st_off;
struct liveupdate_subsystem sub = TEST_VALUE_SUBSYSTEM("files-test", &st_off);

int inherited[T_COUNT][2];
int ninherited[T_COUNT];

/*
 * The library's descriptors of each carried file, all with FD_CLOEXEC:
 * its own references in image 1, the inherited ones right after luo_init
 * in image 2 (recorded in inherited[]).  Files not carried: none at all.
 */
void check_library_fds(const char *when)
{
	for (int t = 1; t < T_COUNT; t++) {
		const struct rec *r = &st->rec[t];
		int fds[8], n, want = 0;

		for (int k = 1; k < T_COUNT; k++)
			want += st->rec[k].carried &&
				st->rec[k].dev == r->dev &&
				st->rec[k].ino == r->ino &&
				!strcmp(st->rec[k].id, r->id);
		n = fds_of_identity(r->dev, r->ino, r->id, fds, 8);
		if (!r->carried) {
			CHECK(n == 0,
			      "%s: %s was closed or unpreserved but %d descriptors of it are open",
			      when, tok_names[t], n);
			continue;
		}
		/* Pipe and FIFO ends share an inode (and link name): as
		 * many descriptors as files. */
		CHECK(n == want,
		      "%s: %s: %d descriptors of the file, expected %d", when,
		      tok_names[t], n, want);
		for (int i = 0; i < n && i < 8; i++)
			CHECK(fd_cloexec(fds[i]) == 1,
			      "%s: fd %d (%s) lacks FD_CLOEXEC", when, fds[i],
			      tok_names[t]);
		for (int i = 0; i < n && i < 2; i++)
			inherited[t][i] = fds[i];
		ninherited[t] = n < 2 ? n : 2;
	}
}

void path_in(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", st->tmpdir, file);
}

static int run(const struct stage *stage)
{
	signal(SIGPIPE, SIG_IGN);
	return stage->n == 1 ? image1() : image2();
}

static const struct stage_test test = {"handlers-across-exec", 60, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
