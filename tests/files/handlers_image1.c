// SPDX-License-Identifier: MIT
/*
 * handlers-across-exec, image 1: one file of every kind with known state
 * in it, preserved in sessions; a failed exec first, then the update.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "handlers.h"

static void keep(struct luo_session *s, int fd, enum tok t)
{
	struct stat sb;
	int err;

	REQUIRE(!fstat(fd, &sb), "fstat %s: %s", tok_names[t], strerror(errno));
	st->rec[t].dev = sb.st_dev;
	st->rec[t].ino = sb.st_ino;
	fd_identity(fd, st->rec[t].id, sizeof(st->rec[t].id));
	err = liveupdate_session_preserve_fd(s, fd, TOKEN(t));
	REQUIRE(err == 0, "preserve %s: %s", tok_names[t], strerror(-err));
	st->rec[t].carried = 1;
}

static int make_memfd(const char *name, size_t size, unsigned int flags)
{
	int fd = memfd_create(name, MFD_CLOEXEC | flags);

	REQUIRE(fd >= 0, "memfd_create: %s", strerror(errno));
	if (size)
		REQUIRE(!send_stream(fd, SEED_MEMFD, 0, size),
			"memfd write: %s", strerror(errno));
	return fd;
}

int image1(void)
{
	struct luo_session *files, *leftover, *closed, *empty;
	struct itimerspec its = {.it_interval = {0, TIMER_NS},
				 .it_value = {0, TIMER_NS}};
	struct sockaddr_un sa;
	struct hello h = {0};
	int ctl[2], fd, fd2, l4, l6, lu, u4, u6, ud, conn, p[2], sp[2];
	char path[256];
	int harness[16] = {0}, nharness;
	pid_t pid;
	int err;

	nharness = fds_without_cloexec(harness, 16);
	REQUIRE(nharness <= 16, "%d inherited descriptors", nharness);
	REQUIRE(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl),
		"socketpair: %s", strerror(errno));
	pid = fork();
	REQUIRE(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(ctl[0]);
		helper(ctl[1]);
	}
	close(ctl[1]);

	REQUIRE(!luo_init(NULL), "luo_init failed");
	REQUIRE(!kho_alloc_preserve(sizeof(*st), (void **)&st),
		"kho_alloc_preserve failed");
	st_off = kho_ptr_to_offset(st);
	REQUIRE(!liveupdate_register_subsystem(&sub), "register failed");
	st->magic = STATE_MAGIC;
	st->helper = pid;
	st->nharness = nharness;
	memcpy(st->harness, harness, sizeof(harness));
	snprintf(st->tmpdir, sizeof(st->tmpdir), "/tmp/luo-files-XXXXXX");
	REQUIRE(mkdtemp(st->tmpdir), "mkdtemp: %s", strerror(errno));

	REQUIRE(!liveupdate_create_session("files", &files), "create files");
	REQUIRE(!liveupdate_create_session("leftover", &leftover), "create");
	REQUIRE(!liveupdate_create_session("closed", &closed), "create");
	REQUIRE(!liveupdate_create_session("empty", &empty), "create");

	/* Listeners, then the established connection. */
	l4 = inet_socket(AF_INET, SOCK_STREAM, 0, 1);
	l6 = inet_socket(AF_INET6, SOCK_STREAM, 0, 1);
	lu = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(h.unix_name, sizeof(h.unix_name), "luo-files-%d-listen",
		 (int)getpid());
	REQUIRE(lu >= 0 && !bind(lu, (void *)&sa, unix_addr(&sa, h.unix_name)),
		"unix bind: %s", strerror(errno));
	REQUIRE(!listen(l4, 16) && !listen(l6, 16) && !listen(lu, 16),
		"listen: %s", strerror(errno));
	h.port4 = local_port(l4);
	h.port6 = local_port(l6);
	REQUIRE(!write_all(ctl[0], &h, sizeof(h)), "control write");
	conn = accept_timeout(l4, IO_TIMEOUT);
	REQUIRE(conn >= 0, "accept: %s", strerror(-conn));
	REQUIRE(!send_stream(conn, SEED_S2H, 0, PHASE1), "send");
	/* The helper's PHASE1 bytes stay unread: image 2 reads them. */
	REQUIRE(!ctl_expect(ctl[0], 'K', IO_TIMEOUT), "helper phase 1");
	keep(files, l4, T_TCP4);
	keep(files, l6, T_TCP6);
	keep(files, lu, T_UNIX_LISTEN);
	keep(files, conn, T_TCP_CONN);
	keep(files, ctl[0], T_CTL);

	/* Datagram sockets, each with one datagram waiting. */
	u4 = inet_socket(AF_INET, SOCK_DGRAM, 0, 1);
	u6 = inet_socket(AF_INET6, SOCK_DGRAM, 0, 1);
	fd = inet_socket(AF_INET, SOCK_DGRAM, local_port(u4), 0);
	REQUIRE(fd >= 0 && write(fd, "udp4-datagram", 13) == 13, "udp4 send");
	close(fd);
	fd = inet_socket(AF_INET6, SOCK_DGRAM, local_port(u6), 0);
	REQUIRE(fd >= 0 && write(fd, "udp6-datagram", 13) == 13, "udp6 send");
	close(fd);
	ud = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(path, sizeof(path), "luo-files-%d-dgram", (int)getpid());
	REQUIRE(ud >= 0 && !bind(ud, (void *)&sa, unix_addr(&sa, path)),
		"unix dgram bind: %s", strerror(errno));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0 && sendto(fd, "unix-datagram", 13, 0, (void *)&sa,
				  unix_addr(&sa, path)) == 13,
		"unix dgram send: %s", strerror(errno));
	close(fd);
	keep(files, u4, T_UDP4);
	keep(files, u6, T_UDP6);
	keep(files, ud, T_UNIX_DGRAM);

	/* A connected Unix stream pair and a seqpacket pair, data queued
	 * both ways. */
	REQUIRE(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp),
		"socketpair");
	REQUIRE(!write_all(sp[0], "pair a->b", 9) &&
			!write_all(sp[1], "pair b->a", 9),
		"pair write");
	keep(files, sp[0], T_PAIR_A);
	keep(files, sp[1], T_PAIR_B);
	close(sp[0]);
	close(sp[1]);
	REQUIRE(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp),
		"seqpacket pair");
	REQUIRE(send(sp[0], "rec1", 4, 0) == 4 &&
			send(sp[0], "record-two", 10, 0) == 10,
		"seqpacket send");
	keep(files, sp[0], T_SEQ_A);
	keep(files, sp[1], T_SEQ_B);
	close(sp[0]);
	close(sp[1]);

	/* memfd: content, size, seals (one added after preserve: the
	 * handler must see it at freeze), offset. */
	fd = make_memfd("luo-files-memfd", MEMFD_SIZE, MFD_ALLOW_SEALING);
	REQUIRE(!fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), "seal: %s",
		strerror(errno));
	keep(files, fd, T_MEMFD);
	REQUIRE(!fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), "seal: %s",
		strerror(errno));
	REQUIRE(lseek(fd, MEMFD_OFFSET, SEEK_SET) == MEMFD_OFFSET, "lseek");
	/* Refusals while we are at it. */
	CHECK_EQ(liveupdate_session_preserve_fd(files, fd, TOKEN(99)), -EBUSY);
	fd2 = dup(fd);
	CHECK_EQ(liveupdate_session_preserve_fd(leftover, fd2, TOKEN(99)),
		 -EBUSY);
	close(fd2);
	fd2 = make_memfd("luo-files-other", 1, 0);
	CHECK_EQ(liveupdate_session_preserve_fd(files, fd2, TOKEN(T_TCP4)),
		 -EEXIST);
	close(fd2);
	CHECK_EQ(liveupdate_session_preserve_fd(files, fd2, TOKEN(99)), -EBADF);
	fd2 = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK_EQ(liveupdate_session_preserve_fd(files, fd2, TOKEN(99)),
		 -ENOENT);
	close(fd2);
	close(fd);

	/* Pipe and FIFO, data waiting, both ends kept. */
	REQUIRE(!pipe2(p, O_CLOEXEC), "pipe");
	REQUIRE(!write_all(p[1], "pipe-data-before", 16), "pipe write");
	keep(files, p[0], T_PIPE_R);
	keep(files, p[1], T_PIPE_W);
	close(p[0]);
	close(p[1]);
	path_in(path, sizeof(path), "fifo");
	REQUIRE(!mkfifo(path, 0600), "mkfifo: %s", strerror(errno));
	p[0] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	p[1] = open(path, O_WRONLY | O_CLOEXEC);
	REQUIRE(p[0] >= 0 && p[1] >= 0, "fifo open: %s", strerror(errno));
	REQUIRE(!write_all(p[1], "fifo-data-before", 16), "fifo write");
	keep(files, p[0], T_FIFO_R);
	keep(files, p[1], T_FIFO_W);
	close(p[0]);
	close(p[1]);

	/* eventfds with a count, a periodic timerfd. */
	fd = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(fd >= 0, "eventfd");
	keep(files, fd, T_EFD_SEM);
	close(fd);
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(fd >= 0 && eventfd_write(fd, EFD_VALUE) == 0, "eventfd");
	keep(files, fd, T_EFD);
	close(fd);
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	REQUIRE(fd >= 0 && !timerfd_settime(fd, 0, &its, NULL), "timerfd");
	keep(files, fd, T_TIMERFD);
	close(fd);

	/* Regular files: an O_APPEND one at offset 3, a read-only one at 7. */
	path_in(path, sizeof(path), "append.txt");
	fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && !write_all(fd, "hello", 5), "file: %s",
		strerror(errno));
	REQUIRE(lseek(fd, 3, SEEK_SET) == 3, "lseek");
	keep(files, fd, T_FILE_APPEND);
	close(fd);
	path_in(path, sizeof(path), "ro.txt");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && !write_all(fd, "0123456789abcdef", 16), "file");
	close(fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0 && lseek(fd, 7, SEEK_SET) == 7, "file");
	keep(files, fd, T_FILE_RO);
	close(fd);

	/* Never retrieved: one in "files", a whole session of them. */
	fd = make_memfd("luo-files-unretrieved", 4096, 0);
	keep(files, fd, T_UNRETRIEVED);
	close(fd);
	fd = make_memfd("luo-files-leftover", 4096, 0);
	keep(leftover, fd, T_LEFT_MEMFD);
	close(fd);
	fd = eventfd(3, EFD_CLOEXEC);
	REQUIRE(fd >= 0, "eventfd");
	keep(leftover, fd, T_LEFT_EFD);
	close(fd);

	/* A session closed before the reboot: not carried, its file gone. */
	fd = make_memfd("luo-files-closed", 4096, 0);
	keep(closed, fd, T_CLOSED_MEMFD);
	close(fd);
	err = liveupdate_session_close(closed);
	CHECK_EQ(err, 0);
	st->rec[T_CLOSED_MEMFD].carried = 0;
	/* Unpreserved: not carried either. */
	fd = make_memfd("luo-files-unpreserved", 4096, 0);
	keep(files, fd, T_UNPRESERVED);
	close(fd);
	CHECK_EQ(liveupdate_session_unpreserve_fd(files, TOKEN(T_UNPRESERVED)),
		 0);
	CHECK_EQ(liveupdate_session_unpreserve_fd(files, TOKEN(T_UNPRESERVED)),
		 -ENOENT);
	st->rec[T_UNPRESERVED].carried = 0;

	/* The helper connects to the listeners, then blackout traffic. */
	ctl_send(ctl[0], 'G');
	REQUIRE(!ctl_expect(ctl[0], 'C', IO_TIMEOUT), "helper connects");
	close(l4);
	close(l6);
	close(lu);
	close(u4);
	close(u6);
	close(ud);
	close(conn);
	close(ctl[0]);
	check_library_fds("image 1, before the update");

	/* An exec that fails puts FD_CLOEXEC back on every preserved file. */
	err = liveupdate_prepare();
	REQUIRE(!err, "prepare: %s", strerror(-err));
	CHECK_EQ(liveupdate_reboot("/nonexistent/luo-files",
				   stage_next_argv(NULL), NULL),
		 -ENOENT);
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	check_library_fds("image 1, after a failed exec");
	stage_reboot(NULL); /* not if anything failed so far */
	return 1;
}
