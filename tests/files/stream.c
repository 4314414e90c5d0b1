// SPDX-License-Identifier: MIT
/*
 * tcp-stream-20: a TCP connection kept open across 20 live updates in a
 * row while the peer streams into it without pause.
 *
 * The peer is a forked child that is never exec'd and does not use the
 * library.  It sends a known byte stream (byte i is a function of i) over
 * 127.0.0.1 as fast as the server takes it.  Each server image retrieves
 * the connection from the session the previous image left, reads for a
 * while verifying every byte in order, keeps its position and running
 * checksum in handover memory, echoes the checksum at fixed positions so
 * the peer checks the other direction, preserves the connection into a
 * new session and updates again.  After the 20th update the server tells
 * the peer to stop, drains the connection to EOF and compares its count
 * and checksum with what the peer reports over a pipe (also carried
 * across every update); the peer compares the server's final count too.
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "common.h"

#define UPDATES 20
#define READ_MS 120	       /* each image reads at least this long */
#define STALL_MS 10000	       /* and until its first bytes, at most this */
#define ECHO_EVERY (256 << 10) /* echo the checksum at these positions */
#define SEED 0x5eed	       /* of the byte stream */
#define STATE_MAGIC 0x5354524541324f31ULL
#define REC_MAGIC 0x7265636fU
#define T_CONN 0xc0115ULL
#define T_REPORT 0x4e7047ULL

enum rec_type { REC_ECHO = 1, REC_STOP, REC_FINAL };

/* Server -> peer, fixed size. */
struct record {
	uint32_t magic, type;
	uint64_t pos, sum;
};

/* Peer -> server over the report pipe, once, at the end. */
struct report {
	uint64_t sent, sum, echoes_ok;
};

/* In handover memory, carried through all updates. */
struct state {
	uint64_t magic;
	int32_t peer;
	uint32_t updates; /* done so far, as this image counts them */
	uint64_t pos;	  /* bytes verified: the next expected index */
	uint64_t sum;	  /* checksum of bytes [0, pos) */
	uint64_t echoes;
	uint64_t bytes_in_image[UPDATES + 1];
};

static struct state *st;

/* Each image hands the offset of @st to the next. */
static uint64_t st_off;
static struct liveupdate_subsystem sub =
	TEST_VALUE_SUBSYSTEM("tcp-stream", &st_off);

/* ---- the peer: never exec'd, no library ---- */

static void peer(uint16_t port, int report_fd)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	static unsigned char out[64 << 10];
	unsigned char in[4096];
	size_t inlen = 0;
	uint64_t sent = 0, sum = SUM_INIT, echoes_ok = 0;
	uint64_t *sums = NULL; /* sums[k]: checksum of [0, k * ECHO_EVERY) */
	size_t nsums = 0, cap = 0;
	int fd, stopping = 0, final_seen = 0, eof = 0;

	where = "peer";
	alarm(60);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0 && !connect(fd, (void *)&a, sizeof(a)), "connect: %s",
		strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (!eof) {
		struct pollfd pfd = {
			.fd = fd, .events = POLLIN | (stopping ? 0 : POLLOUT)};
		int r = poll(&pfd, 1, 1000);

		REQUIRE(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(fd, in + inlen, sizeof(in) - inlen);

			if (n == 0) {
				eof = 1;
			} else if (n < 0 && errno != EAGAIN) {
				CHECK(0, "read: %s", strerror(errno));
				break;
			}
			inlen += n > 0 ? (size_t)n : 0;
			while (inlen >= sizeof(struct record)) {
				struct record rec;

				memcpy(&rec, in, sizeof(rec));
				memmove(in, in + sizeof(rec),
					inlen - sizeof(rec));
				inlen -= sizeof(rec);
				REQUIRE(rec.magic == REC_MAGIC,
					"garbage from the server");
				if (rec.type == REC_ECHO) {
					uint64_t k = rec.pos / ECHO_EVERY;

					CHECK(rec.pos % ECHO_EVERY == 0 &&
						      k < nsums &&
						      sums[k] == rec.sum,
					      "echo at %llu: checksum %#llx, expected %#llx",
					      (unsigned long long)rec.pos,
					      (unsigned long long)rec.sum,
					      k < nsums ? (unsigned long long)
								  sums[k]
							: 0ULL);
					echoes_ok++;
				} else if (rec.type == REC_STOP) {
					struct report rep = {sent, sum,
							     echoes_ok};

					stopping = 1;
					shutdown(fd, SHUT_WR);
					REQUIRE(!write_all(report_fd, &rep,
							   sizeof(rep)),
						"report: %s", strerror(errno));
				} else if (rec.type == REC_FINAL) {
					final_seen = 1;
					CHECK(rec.pos == sent && rec.sum == sum,
					      "the server received %llu bytes (checksum %#llx); sent %llu (%#llx)",
					      (unsigned long long)rec.pos,
					      (unsigned long long)rec.sum,
					      (unsigned long long)sent,
					      (unsigned long long)sum);
				}
			}
		}
		if (!stopping && (pfd.revents & POLLOUT)) {
			ssize_t n;

			for (size_t i = 0; i < sizeof(out); i++)
				out[i] = stream_byte(sent + i, SEED);
			n = write(fd, out, sizeof(out));
			if (n < 0 && errno != EAGAIN) {
				CHECK(0, "write: %s", strerror(errno));
				break;
			}
			for (ssize_t i = 0; i < n; i++) {
				if ((sent + i) % ECHO_EVERY == 0) {
					if (nsums == cap) {
						cap = cap ? cap * 2 : 1024;
						sums = realloc(
							sums,
							cap * sizeof(*sums));
						REQUIRE(sums, "out of memory");
					}
					sums[nsums++] = sum;
				}
				sum = sum_step(sum, out[i]);
			}
			sent += n > 0 ? (uint64_t)n : 0;
		}
	}
	CHECK(final_seen, "no final record from the server");
	CHECK(echoes_ok > 0, "no checksum echoed back");
	free(sums);
	close(fd);
	_exit(failures ? 1 : 0);
}

/* ---- the server ---- */

static void fatal_stop(void)
{
	if (st && st->peer > 0)
		kill(st->peer, SIGKILL);
	fprintf(stderr, "%s: %d failures\n", test_name, failures);
	exit(1);
}

static void send_record(int fd, uint32_t type)
{
	struct record rec = {REC_MAGIC, type, st->pos, st->sum};

	if (write_all(fd, &rec, sizeof(rec))) {
		CHECK(0, "send to the peer: %s", strerror(errno));
		fatal_stop();
	}
}

/* Verify what arrived; echo at each ECHO_EVERY boundary. */
static void consume(int fd, const unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t want = stream_byte(st->pos, SEED);

		if (buf[i] != want) {
			CHECK(0,
			      "update %u: byte %llu is %#x, expected %#x: the stream lost or repeated bytes",
			      st->updates, (unsigned long long)st->pos, buf[i],
			      want);
			fatal_stop();
		}
		if (st->pos % ECHO_EVERY == 0) {
			send_record(fd, REC_ECHO);
			st->echoes++;
		}
		st->sum = sum_step(st->sum, buf[i]);
		st->pos++;
	}
	st->bytes_in_image[st->updates] += n;
}

/* Read for @ms (or to EOF if @ms < 0). Return: 1 at EOF. */
static int serve(int fd, int ms)
{
	static unsigned char buf[64 << 10];
	uint64_t start = now_ms();
	uint64_t end = start + (uint64_t)(ms < 0 ? 15000 : ms);

	/* A loaded machine may give the peer no time within READ_MS: every
	 * image must see bytes, not within a fixed window. */
	while (now_ms() < end || (ms >= 0 && !st->bytes_in_image[st->updates] &&
				  now_ms() < start + STALL_MS)) {
		ssize_t n;
		int r = wait_readable(fd, 20);

		if (r < 0) {
			CHECK(0, "poll: %s", strerror(errno));
			fatal_stop();
		}
		if (r == 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			CHECK(0, "read: %s", strerror(errno));
			fatal_stop();
		}
		if (n == 0)
			return 1;
		consume(fd, buf, (size_t)n);
	}
	if (ms < 0) {
		CHECK(0, "no EOF from the peer within 15 s");
		fatal_stop();
	}
	return 0;
}

static void update(int conn, int report)
{
	struct luo_session *s;
	char name[32];
	int err;

	snprintf(name, sizeof(name), "stream-%u", st->updates);
	err = liveupdate_create_session(name, &s);
	CHECK(!err, "create session %s: %s", name, strerror(-err));
	err = err ?: liveupdate_session_preserve_fd(s, conn, T_CONN);
	CHECK(!err, "preserve the connection: %s", strerror(-err));
	err = err ?: liveupdate_session_preserve_fd(s, report, T_REPORT);
	CHECK(!err, "preserve the report pipe: %s", strerror(-err));
	if (err)
		fatal_stop();
	close(conn);
	close(report);
	stage_reboot(NULL); /* returns only on failure */
	fatal_stop();
}

static void finale(int conn, int report)
{
	struct report rep = {0};
	int status = 0;
	pid_t r;

	send_record(conn, REC_STOP);
	serve(conn, -1); /* to EOF: the peer stopped writing */
	CHECK(read_full(report, &rep, sizeof(rep), 10000) == sizeof(rep),
	      "no report from the peer");
	CHECK(rep.sent == st->pos, "received %llu bytes, the peer sent %llu",
	      (unsigned long long)st->pos, (unsigned long long)rep.sent);
	CHECK(rep.sum == st->sum, "checksum %#llx, the peer's %#llx",
	      (unsigned long long)st->sum, (unsigned long long)rep.sum);
	send_record(conn, REC_FINAL);
	shutdown(conn, SHUT_WR);
	r = waitpid(st->peer, &status, 0);
	CHECK(r == st->peer && WIFEXITED(status) && !WEXITSTATUS(status),
	      "the peer failed (status %#x)", status);
	CHECK_EQ(liveupdate_get_num(), UPDATES);
	CHECK_EQ(st->updates, UPDATES);
	/* Echoes sent while draining arrive after the peer's report. */
	CHECK(rep.echoes_ok > 0 && rep.echoes_ok <= st->echoes,
	      "%llu echoes sent, the peer had checked %llu at the stop",
	      (unsigned long long)st->echoes,
	      (unsigned long long)rep.echoes_ok);
	for (int i = 0; i <= UPDATES; i++)
		CHECK(st->bytes_in_image[i] > 0,
		      "image %d received nothing: the stream stalled", i);
	close(conn);
	close(report);
}

/* Image 1 sets up the peer and the state; every image streams a while. */
static int run(const struct stage *stage)
{
	struct luo_session *s;
	int conn = -1, report = -1, err;
	uint64_t data;

	signal(SIGPIPE, SIG_IGN);
	if (stage->n == 1) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t len = sizeof(a);
		int l, p[2];
		pid_t pid;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		REQUIRE(l >= 0 && !bind(l, (void *)&a, sizeof(a)) &&
				!listen(l, 1) &&
				!getsockname(l, (void *)&a, &len),
			"listen: %s", strerror(errno));
		REQUIRE(!pipe2(p, O_CLOEXEC), "pipe");
		pid = fork();
		REQUIRE(pid >= 0, "fork");
		if (pid == 0) {
			close(l);
			close(p[0]);
			peer(ntohs(a.sin_port), p[1]);
		}
		close(p[1]);
		report = p[0];
		conn = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		REQUIRE(conn >= 0, "accept: %s", strerror(errno));
		close(l);
		REQUIRE(!luo_init(NULL), "luo_init");
		REQUIRE(!kho_alloc_preserve(sizeof(*st), (void **)&st),
			"kho_alloc_preserve");
		st_off = kho_ptr_to_offset(st);
		st->magic = STATE_MAGIC;
		st->peer = pid;
		st->sum = SUM_INIT;
		REQUIRE(!liveupdate_register_subsystem(&sub), "register");
	} else {
		char name[32];

		err = luo_init(NULL);
		REQUIRE(!err, "luo_init refused the handover: %s",
			strerror(-err));
		REQUIRE(!liveupdate_get_subsystem_data(&sub, &data) &&
				!kho_restore(data, sizeof(*st), (void **)&st) &&
				st->magic == STATE_MAGIC,
			"no state from the previous image");
		st_off = data;
		REQUIRE(!liveupdate_register_subsystem(&sub), "register");
		snprintf(name, sizeof(name), "stream-%u", st->updates);
		st->updates++;
		CHECK_EQ(liveupdate_get_num(), st->updates);
		err = liveupdate_retrieve_session(name, &s);
		REQUIRE(!err, "retrieve session %s: %s", name, strerror(-err));
		err = liveupdate_session_retrieve_fd(s, T_CONN, &conn);
		REQUIRE(!err, "retrieve the connection: %s", strerror(-err));
		err = liveupdate_session_retrieve_fd(s, T_REPORT, &report);
		REQUIRE(!err, "retrieve the report pipe: %s", strerror(-err));
		CHECK_EQ(liveupdate_session_finish(s), 0);
		if (st->updates >= 2) {
			snprintf(name, sizeof(name), "stream-%u",
				 st->updates - 2);
			CHECK_EQ(liveupdate_retrieve_session(name, &s),
				 -ENOENT);
		}
		CHECK_EQ(liveupdate_finish(), 0);
	}
	if (failures)
		fatal_stop();
	if (serve(conn, READ_MS)) {
		CHECK(0, "the peer closed the connection early");
		fatal_stop();
	}
	if (st->updates < UPDATES)
		update(conn, report);
	finale(conn, report);
	return stage_done(
		"%llu bytes verified in order across %u live updates, %llu checksums echoed",
		(unsigned long long)st->pos, st->updates,
		(unsigned long long)st->echoes);
}

static const struct stage_test test = {"tcp-stream-20", 60, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
