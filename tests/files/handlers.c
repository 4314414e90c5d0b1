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

static const char *const tok_names[T_COUNT] = {
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

static struct state *st;

/* Image 1 hands the offset of @st to image 2. */
static uint64_t st_off;
static struct liveupdate_subsystem sub =
	TEST_VALUE_SUBSYSTEM("files-test", &st_off);

/* ---- sockets ---- */

static socklen_t unix_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* abstract: sun_path[0] stays NUL */
	strncpy(sa->sun_path + 1, name, sizeof(sa->sun_path) - 2);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   strlen(name));
}

static int inet_socket(int family, int type, uint16_t port, int do_bind)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	REQUIRE(fd >= 0, "socket: %s", strerror(errno));
	if (family == AF_INET) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(port)};

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (do_bind)
			REQUIRE(!bind(fd, (void *)&a, sizeof(a)),
				"bind 127.0.0.1: %s", strerror(errno));
		else if (connect(fd, (void *)&a, sizeof(a)))
			return close(fd), -errno;
	} else {
		struct sockaddr_in6 a = {.sin6_family = AF_INET6,
					 .sin6_port = htons(port)};

		a.sin6_addr = in6addr_loopback;
		if (do_bind)
			REQUIRE(!bind(fd, (void *)&a, sizeof(a)),
				"bind [::1]: %s", strerror(errno));
		else if (connect(fd, (void *)&a, sizeof(a)))
			return close(fd), -errno;
	}
	return fd;
}

static int tcp_connect(int family, uint16_t port)
{
	return inet_socket(family, SOCK_STREAM, port, 0);
}

static int unix_connect(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = unix_addr(&sa, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	REQUIRE(fd >= 0, "socket: %s", strerror(errno));
	if (connect(fd, (void *)&sa, len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	REQUIRE(!getsockname(fd, (void *)&ss, &len), "getsockname: %s",
		strerror(errno));
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* accept() with a timeout: -ETIMEDOUT if nothing is queued in time. */
static int accept_timeout(int lfd, int timeout_ms)
{
	int r = wait_readable(lfd, timeout_ms);

	if (r <= 0)
		return r ? -errno : -ETIMEDOUT;
	r = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* ---- streams ---- */

static int send_stream(int fd, uint64_t seed, uint64_t from, size_t len)
{
	unsigned char buf[4096];

	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = stream_byte(from + i, seed);
		if (write_all(fd, buf, n))
			return -1;
		from += n;
		len -= n;
	}
	return 0;
}

/* Read @len bytes and compare them with the stream; 0 if all match. */
static int expect_stream(int fd, uint64_t seed, uint64_t from, size_t len,
			 const char *what)
{
	unsigned char buf[4096];
	size_t done = 0;

	while (done < len) {
		size_t want =
			len - done < sizeof(buf) ? len - done : sizeof(buf);
		ssize_t n = read_full(fd, buf, want, IO_TIMEOUT);

		if (n != (ssize_t)want) {
			CHECK(0, "%s: got %zu of %zu bytes (%s)", what,
			      done + (n > 0 ? (size_t)n : 0), len,
			      n < 0 ? strerror(errno) : "EOF or timeout");
			return -1;
		}
		for (size_t i = 0; i < want; i++) {
			if (buf[i] != stream_byte(from + done + i, seed)) {
				CHECK(0, "%s: byte %llu is %#x, expected %#x",
				      what,
				      (unsigned long long)(from + done + i),
				      buf[i],
				      stream_byte(from + done + i, seed));
				return -1;
			}
		}
		done += want;
	}
	return 0;
}

static int expect_bytes(int fd, const char *want, const char *what)
{
	char buf[128] = "";
	size_t len = strlen(want);
	ssize_t n = read_full(fd, buf, len, IO_TIMEOUT);

	CHECK(n == (ssize_t)len && !memcmp(buf, want, len),
	      "%s: read %zd bytes '%.*s', expected '%s'", what, n,
	      n > 0 ? (int)n : 0, buf, want);
	return n == (ssize_t)len && !memcmp(buf, want, len) ? 0 : -1;
}

static int expect_eof(int fd, const char *what)
{
	char c;
	ssize_t n;

	if (wait_readable(fd, IO_TIMEOUT) <= 0) {
		CHECK(0, "%s: no EOF within %d ms", what, IO_TIMEOUT);
		return -1;
	}
	n = read(fd, &c, 1);
	CHECK(n == 0, "%s: expected EOF, read returned %zd (%s)", what, n,
	      n < 0 ? strerror(errno) : "extra data: duplicated bytes?");
	return n == 0 ? 0 : -1;
}

/* ---- the helper: the remote end, never exec'd ---- */

static void ctl_send(int ctl, char c)
{
	REQUIRE(!write_all(ctl, &c, 1), "control write: %s", strerror(errno));
}

static int ctl_expect(int ctl, char want, int timeout_ms)
{
	char c = 0;
	ssize_t n = read_full(ctl, &c, 1, timeout_ms);

	CHECK(n == 1 && c == want, "control: expected '%c', got %zd bytes '%c'",
	      want, n, n == 1 ? c : '?');
	return n == 1 && c == want ? 0 : -1;
}

static void helper(int ctl)
{
	struct hello h;
	int conn, b4, b6, bu;

	where = "helper";
	alarm(40);
	if (read_full(ctl, &h, sizeof(h), IO_TIMEOUT) != sizeof(h))
		_exit(2);
	h.unix_name[sizeof(h.unix_name) - 1] = 0;
	conn = tcp_connect(AF_INET, h.port4);
	REQUIRE(conn >= 0, "connect: %s", strerror(-conn));

	/* Phase 1, before the reboot: both ways, only ours is read. */
	expect_stream(conn, SEED_S2H, 0, PHASE1, "server->helper phase 1");
	REQUIRE(!send_stream(conn, SEED_H2S, 0, PHASE1), "send: %s",
		strerror(errno));
	ctl_send(ctl, 'K');

	/* Just before the reboot: connections left in the backlogs. */
	if (ctl_expect(ctl, 'G', IO_TIMEOUT))
		_exit(1);
	b4 = tcp_connect(AF_INET, h.port4);
	b6 = tcp_connect(AF_INET6, h.port6);
	bu = unix_connect(h.unix_name);
	CHECK(b4 >= 0, "connect to the IPv4 listener: %s", strerror(-b4));
	CHECK(b6 >= 0, "connect to the IPv6 listener: %s", strerror(-b6));
	CHECK(bu >= 0, "connect to the Unix listener: %s", strerror(-bu));
	if (b4 < 0 || b6 < 0 || bu < 0)
		_exit(1);
	REQUIRE(!write_all(b4, "backlog-4", 9) &&
			!write_all(b6, "backlog-6", 9) &&
			!write_all(bu, "backlog-u", 9),
		"backlog write: %s", strerror(errno));
	ctl_send(ctl, 'C');

	/* The blackout: keep sending while the server execs. */
	for (uint64_t pos = PHASE1; pos < PHASE1 + BLACKOUT;
	     pos += BLACKOUT_CHUNK) {
		REQUIRE(!send_stream(conn, SEED_H2S, pos, BLACKOUT_CHUNK),
			"blackout send: %s", strerror(errno));
		usleep(1000);
	}

	/* Image 2 is up: it accepted the backlog and answers. */
	if (ctl_expect(ctl, 'R', 30000))
		_exit(1);
	expect_bytes(b4, "accepted", "IPv4 backlog connection");
	expect_bytes(b6, "accepted", "IPv6 backlog connection");
	expect_bytes(bu, "accepted", "Unix backlog connection");
	expect_stream(conn, SEED_S2H, PHASE1, PHASE2,
		      "server->helper after the update");
	/* Image 2 shuts its side after PHASE2 bytes: nothing more may come. */
	expect_eof(conn, "server->helper end");
	shutdown(conn, SHUT_WR);
	close(b4);
	close(b6);
	close(bu);
	close(conn);
	_exit(failures ? 1 : 0);
}

static int inherited[T_COUNT][2]; /* the numbers the library inherited */
static int ninherited[T_COUNT];

/*
 * The library's descriptors of each carried file, all with FD_CLOEXEC:
 * its own references in image 1, the inherited ones right after luo_init
 * in image 2 (recorded in inherited[]).  Files not carried: none at all.
 */
static void check_library_fds(const char *when)
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

/* ---- image 1 ---- */

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

static void path_in(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", st->tmpdir, file);
}

static int image1(const char *self)
{
	char *const argv[] = {(char *)self, "--image2", NULL};
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

	where = "image 1";
	alarm(60); /* stays armed across the exec */
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
	CHECK_EQ(liveupdate_reboot("/nonexistent/luo-files", argv, NULL),
		 -ENOENT);
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	check_library_fds("image 1, after a failed exec");
	if (failures)
		return 1;

	err = liveupdate_prepare();
	REQUIRE(!err, "prepare: %s", strerror(-err));
	err = liveupdate_reboot(self, argv, NULL);
	REQUIRE(0, "reboot: %s", strerror(-err));
	return 1;
}

/* ---- image 2 ---- */

/* Right after luo_init, only what image 1 itself inherited from the test
 * runner lacks FD_CLOEXEC: nothing of the library's leaks to children. */
static void check_no_leak(void)
{
	int fds[64], n = fds_without_cloexec(fds, 64);

	CHECK(n == st->nharness,
	      "%d descriptors without FD_CLOEXEC after luo_init, image 1 started with %d",
	      n, st->nharness);
	for (int i = 0; i < n && i < 64; i++) {
		int known = 0;

		for (int k = 0; k < st->nharness; k++)
			known |= st->harness[k] == fds[i];
		CHECK(known, "fd %d lacks FD_CLOEXEC after luo_init", fds[i]);
	}
}

static int get(struct luo_session *s, enum tok t)
{
	struct stat sb;
	int fd = -1, err = liveupdate_session_retrieve_fd(s, TOKEN(t), &fd);

	CHECK(err == 0, "retrieve %s: %s", tok_names[t], strerror(-err));
	if (err)
		return -1;
	CHECK(fd_cloexec(fd) == 1, "retrieved %s (fd %d) lacks FD_CLOEXEC",
	      tok_names[t], fd);
	CHECK(!fstat(fd, &sb) && (uint64_t)sb.st_ino == st->rec[t].ino &&
		      (uint64_t)sb.st_dev == st->rec[t].dev,
	      "retrieved %s is not the preserved inode", tok_names[t]);
	/* The first retrieval hands over the inherited descriptor itself. */
	CHECK(ninherited[t] == 1 && fd == inherited[t][0],
	      "retrieved %s is fd %d, not the inherited descriptor %d",
	      tok_names[t], fd, ninherited[t] ? inherited[t][0] : -1);
	return fd;
}

/* A second retrieval is refused; a dup of the first stands in for it. */
static int get_again(struct luo_session *s, enum tok t, int first)
{
	int fd = -1, err = liveupdate_session_retrieve_fd(s, TOKEN(t), &fd);

	CHECK(err == -EALREADY,
	      "second retrieval of %s: %d, expected -EALREADY", tok_names[t],
	      err);
	CHECK(fd == -1, "a refused retrieval set fd %d", fd);
	return fcntl(first, F_DUPFD_CLOEXEC, 0);
}

static void check_memfd(int fd, int fd2)
{
	unsigned char *buf = malloc(MEMFD_SIZE + 1);
	struct stat sb;
	int same;

	REQUIRE(buf, "out of memory");
	CHECK(!fstat(fd, &sb) && sb.st_size == MEMFD_SIZE,
	      "memfd size %lld, expected %d", (long long)sb.st_size,
	      MEMFD_SIZE);
	CHECK_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_GROW | F_SEAL_SHRINK);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), MEMFD_OFFSET);
	CHECK(pread(fd, buf, MEMFD_SIZE + 1, 0) == MEMFD_SIZE,
	      "memfd pread: %s", strerror(errno));
	for (size_t i = 0; i < MEMFD_SIZE; i++) {
		if (buf[i] != stream_byte(i, SEED_MEMFD)) {
			CHECK(0, "memfd byte %zu is %#x, expected %#x", i,
			      buf[i], stream_byte(i, SEED_MEMFD));
			break;
		}
	}
	/* Sealed: cannot grow. */
	CHECK(ftruncate(fd, MEMFD_SIZE + 4096) < 0 && errno == EPERM,
	      "F_SEAL_GROW not enforced");
	/* A second retrieval: another descriptor, the same open file. */
	same = same_open_file(fd, fd2);
	CHECK(same != 0, "second retrieval is another open file (kcmp)");
	CHECK(fd != fd2, "second retrieval returned the same number");
	CHECK_EQ(lseek(fd2, 1234, SEEK_SET), 1234);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 1234); /* shared offset */
	free(buf);
}

static void check_listeners(int l4, int l6, int lu, int ctl)
{
	struct hello h = {0};
	int lfd[3] = {l4, l6, lu};
	const char *marker[3] = {"backlog-4", "backlog-6", "backlog-u"};
	const char *what[3] = {"IPv4", "IPv6", "Unix"};

	snprintf(h.unix_name, sizeof(h.unix_name), "luo-files-%d-listen",
		 (int)getpid());
	/* Connections queued before the reboot, accepted now. */
	for (int i = 0; i < 3; i++) {
		int c = accept_timeout(lfd[i], IO_TIMEOUT);

		CHECK(c >= 0, "%s listener: no backlog connection: %s", what[i],
		      strerror(-c));
		if (c < 0)
			continue;
		expect_bytes(c, marker[i], what[i]);
		CHECK(!write_all(c, "accepted", 8), "write: %s",
		      strerror(errno));
		close(c);
	}
	/* New connections after the update: not refused. */
	for (int i = 0; i < 3; i++) {
		int c, a;

		if (i == 2)
			c = unix_connect(h.unix_name);
		else
			c = tcp_connect(i ? AF_INET6 : AF_INET,
					local_port(lfd[i]));
		CHECK(c >= 0, "connect to the %s listener after the update: %s",
		      what[i], strerror(-c));
		if (c < 0)
			continue;
		a = accept_timeout(lfd[i], IO_TIMEOUT);
		CHECK(a >= 0, "%s listener: accept after the update: %s",
		      what[i], strerror(-a));
		if (a >= 0) {
			CHECK(write(c, "ping", 4) == 4, "write");
			expect_bytes(a, "ping", "new connection");
			CHECK(write(a, "pong", 4) == 4, "write");
			expect_bytes(c, "pong", "new connection");
			close(a);
		}
		close(c);
	}
	/* The helper now checks it was answered. */
	ctl_send(ctl, 'R');
}

static void check_dgram(int fd, const char *want, const char *what)
{
	char buf[64];
	ssize_t n = -1;

	if (wait_readable(fd, IO_TIMEOUT) > 0)
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, strlen(want)),
	      "%s: received %zd bytes, expected '%s'", what, n, want);
}

static void check_pairs(int a, int b, int qa, int qb)
{
	char buf[64];

	expect_bytes(b, "pair a->b", "unix pair, queued a->b");
	expect_bytes(a, "pair b->a", "unix pair, queued b->a");
	CHECK(write_all(a, "again", 5) == 0, "pair write");
	expect_bytes(b, "again", "unix pair after the update");
	/* seqpacket: message boundaries kept */
	CHECK(wait_readable(qb, IO_TIMEOUT) > 0 &&
		      recv(qb, buf, sizeof(buf), 0) == 4 &&
		      !memcmp(buf, "rec1", 4),
	      "seqpacket: first record");
	CHECK(recv(qb, buf, sizeof(buf), MSG_DONTWAIT) == 10 &&
		      !memcmp(buf, "record-two", 10),
	      "seqpacket: second record");
	CHECK(send(qb, "back", 4, 0) == 4, "seqpacket send");
	CHECK(wait_readable(qa, IO_TIMEOUT) > 0 &&
		      recv(qa, buf, sizeof(buf), 0) == 4,
	      "seqpacket: reply");
}

static void check_pipes(int pr, int pw, int fr, int fw)
{
	expect_bytes(pr, "pipe-data-before", "pipe");
	CHECK(!write_all(pw, "after", 5), "pipe write");
	expect_bytes(pr, "after", "pipe after the update");
	expect_bytes(fr, "fifo-data-before", "fifo");
	CHECK(!write_all(fw, "after", 5), "fifo write");
	expect_bytes(fr, "after", "fifo after the update");
}

static void check_counters(int sem, int efd, int tfd)
{
	struct itimerspec its;
	eventfd_t v = 0;
	uint64_t expirations = 0;

	for (int i = 0; i < 5; i++) {
		CHECK(eventfd_read(sem, &v) == 0 && v == 1,
		      "semaphore eventfd read %d: %llu", i,
		      (unsigned long long)v);
	}
	CHECK(eventfd_read(sem, &v) < 0 && errno == EAGAIN,
	      "semaphore eventfd: count above 5");
	CHECK(eventfd_read(efd, &v) == 0 && v == EFD_VALUE,
	      "eventfd value %#llx, expected %#llx", (unsigned long long)v,
	      EFD_VALUE);
	CHECK(!timerfd_gettime(tfd, &its), "timerfd_gettime: %s",
	      strerror(errno));
	CHECK(its.it_interval.tv_sec == 0 &&
		      its.it_interval.tv_nsec == TIMER_NS,
	      "timer interval %lld.%09ld", (long long)its.it_interval.tv_sec,
	      its.it_interval.tv_nsec);
	CHECK(its.it_value.tv_sec || its.it_value.tv_nsec, "timer disarmed");
	/* Still firing: expirations now, and again after reading them. */
	for (int i = 0; i < 2; i++) {
		expirations = 0;
		CHECK(wait_readable(tfd, 2000) > 0 &&
			      read(tfd, &expirations, 8) == 8 &&
			      expirations >= 1,
		      "timer expiration %d missing", i);
	}
}

static void check_regular(int fa, int fro)
{
	char buf[16] = "";
	struct stat sb;
	int fl = fcntl(fa, F_GETFL);

	CHECK_EQ(lseek(fa, 0, SEEK_CUR), 3);
	CHECK(fl >= 0 && (fl & O_APPEND) && (fl & O_ACCMODE) == O_RDWR,
	      "append file flags %#x", fl);
	CHECK(write(fa, "X", 1) == 1, "write");
	CHECK(!fstat(fa, &sb) && sb.st_size == 6, "append went elsewhere");
	CHECK(pread(fa, buf, 6, 0) == 6 && !memcmp(buf, "helloX", 6),
	      "append file content '%.6s'", buf);
	fl = fcntl(fro, F_GETFL);
	CHECK(fl >= 0 && (fl & O_ACCMODE) == O_RDONLY && !(fl & O_APPEND),
	      "read-only file flags %#x", fl);
	CHECK_EQ(lseek(fro, 0, SEEK_CUR), 7);
	CHECK(read(fro, buf, 3) == 3 && !memcmp(buf, "789", 3),
	      "read-only file: read at its offset");
}

static void cleanup_tmpdir(void)
{
	char path[256];

	path_in(path, sizeof(path), "fifo");
	unlink(path);
	path_in(path, sizeof(path), "append.txt");
	unlink(path);
	path_in(path, sizeof(path), "ro.txt");
	unlink(path);
	rmdir(st->tmpdir);
}

static int image2(void)
{
	struct luo_session *files, *empty, *other;
	int fd[T_COUNT], memfd2 = -1, status = 0, err;
	uint64_t data;
	pid_t r;

	where = "image 2";
	for (int t = 0; t < T_COUNT; t++)
		fd[t] = -1;
	err = luo_init(NULL);
	REQUIRE(!err, "luo_init refused the handover: %s", strerror(-err));
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	CHECK_EQ(liveupdate_get_num(), 1);
	REQUIRE(!liveupdate_get_subsystem_data(&sub, &data) &&
			!kho_restore(data, sizeof(*st), (void **)&st) &&
			st->magic == STATE_MAGIC,
		"no state from image 1");
	CHECK_EQ(liveupdate_register_subsystem(&sub), 0);
	check_library_fds("image 2, right after luo_init");
	check_no_leak();

	/* Sessions. */
	CHECK_EQ(liveupdate_retrieve_session("files", &files), 0);
	CHECK_EQ(liveupdate_retrieve_session("files", &other), -EINVAL);
	CHECK_EQ(liveupdate_retrieve_session("no-such-session", &other),
		 -ENOENT);
	CHECK_EQ(liveupdate_retrieve_session("closed", &other), -ENOENT);
	CHECK_EQ(liveupdate_retrieve_session("empty", &empty), 0);
	CHECK_EQ(liveupdate_session_retrieve_fd(empty, TOKEN(T_MEMFD), &err),
		 -ENOENT);
	CHECK_EQ(liveupdate_session_finish(empty), 0);
	if (failures)
		return 1;
	CHECK_EQ(liveupdate_session_retrieve_fd(files, TOKEN(99), &err),
		 -ENOENT);
	CHECK_EQ(liveupdate_session_retrieve_fd(files, T_MEMFD, &err), -ENOENT);
	CHECK_EQ(liveupdate_session_retrieve_fd(files, TOKEN(T_UNPRESERVED),
						&err),
		 -ENOENT);
	CHECK_EQ(liveupdate_session_retrieve_fd(files, TOKEN(T_LEFT_MEMFD),
						&err),
		 -ENOENT);

	for (int t = T_MEMFD; t <= T_CTL; t++)
		fd[t] = get(files, t);
	memfd2 = get_again(files, T_MEMFD, fd[T_MEMFD]);
	for (int t = T_MEMFD; t <= T_CTL; t++)
		if (fd[t] < 0)
			return 1;

	check_memfd(fd[T_MEMFD], memfd2);
	check_listeners(fd[T_TCP4], fd[T_TCP6], fd[T_UNIX_LISTEN], fd[T_CTL]);
	check_dgram(fd[T_UDP4], "udp4-datagram", "UDP/IPv4");
	check_dgram(fd[T_UDP6], "udp6-datagram", "UDP/IPv6");
	check_dgram(fd[T_UNIX_DGRAM], "unix-datagram", "Unix datagram");
	/* Everything the helper sent, before and during the blackout,
	 * exactly once and in order. */
	expect_stream(fd[T_TCP_CONN], SEED_H2S, 0, PHASE1 + BLACKOUT,
		      "helper->server across the update");
	CHECK(!send_stream(fd[T_TCP_CONN], SEED_S2H, PHASE1, PHASE2),
	      "send after the update: %s", strerror(errno));
	shutdown(fd[T_TCP_CONN], SHUT_WR);
	expect_eof(fd[T_TCP_CONN], "helper->server end");
	check_pairs(fd[T_PAIR_A], fd[T_PAIR_B], fd[T_SEQ_A], fd[T_SEQ_B]);
	check_pipes(fd[T_PIPE_R], fd[T_PIPE_W], fd[T_FIFO_R], fd[T_FIFO_W]);
	check_counters(fd[T_EFD_SEM], fd[T_EFD], fd[T_TIMERFD]);
	check_regular(fd[T_FILE_APPEND], fd[T_FILE_RO]);

	/* Retrieved before and that descriptor closed since: -EALREADY. */
	close(fd[T_FILE_RO]);
	CHECK_EQ(liveupdate_session_retrieve_fd(files, TOKEN(T_FILE_RO), &err),
		 -EALREADY);
	fd[T_FILE_RO] = -1;

	/* The helper's verdict. */
	r = waitpid(st->helper, &status, 0);
	CHECK(r == st->helper && WIFEXITED(status) && !WEXITSTATUS(status),
	      "helper failed (status %#x)", status);

	/*
	 * Finishing "files" closes the inherited descriptors nobody
	 * retrieved; the retrieved ones were handed to the service as they
	 * are and stay open (the one closed above stays closed).
	 * "leftover" is untouched until liveupdate_finish().
	 */
	CHECK_EQ(liveupdate_session_finish(files), 0);
	for (int t = T_MEMFD; t <= T_UNRETRIEVED; t++) {
		for (int i = 0; i < ninherited[t]; i++) {
			int n = inherited[t][i], held = n == memfd2;

			for (int k = T_MEMFD; k <= T_CTL; k++)
				held |= fd[k] >= 0 && n == fd[k];
			if (held)
				CHECK(fd_is_open(n),
				      "fd %d, retrieved (%s), closed by finish",
				      n, tok_names[t]);
			else
				CHECK(!fd_is_open(n),
				      "inherited fd %d (%s) still open after its session finished",
				      n, tok_names[t]);
		}
	}
	for (int t = T_LEFT_MEMFD; t <= T_LEFT_EFD; t++)
		for (int i = 0; i < ninherited[t]; i++)
			CHECK(fd_is_open(inherited[t][i]),
			      "inherited fd %d (%s) closed before finish",
			      inherited[t][i], tok_names[t]);
	CHECK_EQ(liveupdate_finish(), 0);
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	for (int t = T_LEFT_MEMFD; t <= T_LEFT_EFD; t++)
		for (int i = 0; i < ninherited[t]; i++)
			CHECK(!fd_is_open(inherited[t][i]),
			      "inherited fd %d (%s) never retrieved, still open after liveupdate_finish",
			      inherited[t][i], tok_names[t]);
	/* Retrieved descriptors are the service's: still usable. */
	CHECK(fd_is_open(fd[T_MEMFD]) && fd_is_open(memfd2),
	      "retrieved memfd closed by finish");
	CHECK(eventfd_write(fd[T_EFD], 1) == 0, "retrieved eventfd unusable");

	for (int t = T_MEMFD; t <= T_CTL; t++)
		close(fd[t]);
	close(memfd2);
	cleanup_tmpdir();
	if (failures) {
		fprintf(stderr, "%s: %d failures\n", test_name, failures);
		return 1;
	}
	printf("%s: all kinds of files came across the update\n", test_name);
	return 0;
}

int main(int argc, char **argv)
{
	char self[4096];

	test_name = "handlers-across-exec";
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !strcmp(argv[1], "--image2"))
		return image2();
	self_exe(self, sizeof(self));
	return image1(self);
}
