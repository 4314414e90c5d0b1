// SPDX-License-Identifier: MIT
/*
 * handlers-across-exec, image 2: every file retrieved and its state
 * checked, FD_CLOEXEC, the session and token error codes, and finish
 * closing what nobody retrieved.
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

int image2(void)
{
	struct luo_session *files, *empty, *other;
	int fd[T_COUNT], memfd2 = -1, status = 0, err;
	uint64_t data;
	pid_t r;

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
	return stage_done("all kinds of files came across the update");
}
