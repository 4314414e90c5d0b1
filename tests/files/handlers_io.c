// SPDX-License-Identifier: MIT
/*
 * handlers-across-exec: sockets, the byte streams and the helper process,
 * the remote end of the TCP connection and of the backlog connections.
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

/* ---- sockets ---- */

socklen_t unix_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* abstract: sun_path[0] stays NUL */
	strncpy(sa->sun_path + 1, name, sizeof(sa->sun_path) - 2);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   strlen(name));
}

int inet_socket(int family, int type, uint16_t port, int do_bind)
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

int tcp_connect(int family, uint16_t port)
{
	return inet_socket(family, SOCK_STREAM, port, 0);
}

int unix_connect(const char *name)
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

uint16_t local_port(int fd)
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
int accept_timeout(int lfd, int timeout_ms)
{
	int r = wait_readable(lfd, timeout_ms);

	if (r <= 0)
		return r ? -errno : -ETIMEDOUT;
	r = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* ---- streams ---- */

int send_stream(int fd, uint64_t seed, uint64_t from, size_t len)
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
int expect_stream(int fd, uint64_t seed, uint64_t from, size_t len,
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

int expect_bytes(int fd, const char *want, const char *what)
{
	char buf[128] = "";
	size_t len = strlen(want);
	ssize_t n = read_full(fd, buf, len, IO_TIMEOUT);

	CHECK(n == (ssize_t)len && !memcmp(buf, want, len),
	      "%s: read %zd bytes '%.*s', expected '%s'", what, n,
	      n > 0 ? (int)n : 0, buf, want);
	return n == (ssize_t)len && !memcmp(buf, want, len) ? 0 : -1;
}

int expect_eof(int fd, const char *what)
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

void ctl_send(int ctl, char c)
{
	REQUIRE(!write_all(ctl, &c, 1), "control write: %s", strerror(errno));
}

int ctl_expect(int ctl, char want, int timeout_ms)
{
	char c = 0;
	ssize_t n = read_full(ctl, &c, 1, timeout_ms);

	CHECK(n == 1 && c == want, "control: expected '%c', got %zd bytes '%c'",
	      want, n, n == 1 ? c : '?');
	return n == 1 && c == want ? 0 : -1;
}

void helper(int ctl)
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
