// SPDX-License-Identifier: MIT
/*
 * A control peer that does not read cannot stall the service (poll mode,
 * the service's own loop here):
 *
 * 1. peer A asks for a large listing (20,000 sessions) and reads nothing;
 *    peer B is answered 100 times meanwhile; then A reads and gets the
 *    whole listing, ended by "ok" (the service kept it for A instead of
 *    waiting on A and then dropping it);
 * 2. with a short peer timeout, a peer that never reads is dropped and
 *    the drop is logged; it sees what was sent, then end of file.
 *
 * Every wait is a bounded number of loop turns, never a duration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <luo/luo.h>

#include "../files/common.h"

#define SESSIONS 20000

static struct luo_control *ctl;
static int dropped_logged;

static void on_log(enum luo_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)arg;
	if (strstr(msg, "dropped a peer"))
		dropped_logged++;
	fprintf(stderr, "luo: %s\n", msg);
}

/* One turn of the service's loop. */
static void turn(int wait_ms)
{
	struct pollfd p = {.fd = luo_control_fd(ctl), .events = POLLIN};

	if (poll(&p, 1, wait_ms) > 0)
		CHECK_EQ(luo_control_dispatch(ctl), 0);
}

struct peer {
	int fd;
	char *buf;
	size_t len, cap;
	size_t lines;
	bool eof, reset;
};

static void peer_open(struct peer *p, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(p, 0, sizeof(*p));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	REQUIRE(p->fd >= 0 &&
			!connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)),
		"connect: %s", strerror(errno));
	p->cap = 1 << 16;
	p->buf = malloc(p->cap);
	REQUIRE(p->buf, "malloc");
}

static void peer_send(struct peer *p, const char *s)
{
	REQUIRE(send(p->fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s),
		"send: %s", strerror(errno));
}

/* Read what is there; keep only the last line, count the lines. */
static void peer_read(struct peer *p)
{
	for (;;) {
		char chunk[65536];
		ssize_t n = recv(p->fd, chunk, sizeof(chunk), 0);

		if (n < 0 && errno == ECONNRESET)
			p->reset = true;
		if (n <= 0) {
			p->eof = n == 0 || errno != EAGAIN;
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n') {
				p->lines++;
				p->buf[p->len] = '\0';
				if (p->len)
					memmove(p->buf + p->cap / 2, p->buf,
						p->len + 1 < p->cap / 2
							? p->len + 1
							: p->cap / 2);
				p->len = 0;
				continue;
			}
			if (p->len + 1 < p->cap / 2)
				p->buf[p->len++] = chunk[i];
		}
	}
}

/* The last complete line read. */
static const char *last_line(struct peer *p)
{
	return p->buf + p->cap / 2;
}

/* Serve until @p has read @lines lines in all, or ended. */
static bool serve_until_lines(struct peer *p, size_t lines)
{
	for (int i = 0; i < 20000 && p->lines < lines && !p->eof; i++) {
		turn(1);
		peer_read(p);
	}
	return p->lines >= lines;
}

static void peer_close(struct peer *p)
{
	close(p->fd);
	free(p->buf);
}

static void start(const char *path, unsigned int timeout_ms)
{
	struct luo_control_opts o = {
		.name = "peers", .path = path, .peer_timeout_ms = timeout_ms};

	REQUIRE(!luo_control_start(&o, &ctl), "luo_control_start");
}

static void slow_peer_does_not_stall(const char *path)
{
	struct peer a, b;

	where = "slow peer";
	start(path, 600000);
	peer_open(&a, path);
	REQUIRE(serve_until_lines(&a, 1), "no greeting for A");
	peer_send(&a, "sessions\n");
	/* A reads nothing from here on. */
	peer_open(&b, path);
	REQUIRE(serve_until_lines(&b, 1), "no greeting for B");
	for (int i = 0; i < 100; i++) {
		peer_send(&b, "status\n");
		/* greeting + 2 lines (data, ok) per status */
		if (!serve_until_lines(&b, 1 + 2 * (size_t)(i + 1))) {
			CHECK(0, "B got no answer to status #%d", i + 1);
			break;
		}
		CHECK(!strcmp(last_line(&b), "ok"), "B's answer #%d: %s", i + 1,
		      last_line(&b));
	}
	/* Now A reads its whole listing: every session and the control
	 * session, then ok. */
	serve_until_lines(&a, 1 + SESSIONS + 1 + 1);
	CHECK_EQ(a.lines, 1 + SESSIONS + 1 + 1);
	CHECK(!strcmp(last_line(&a), "ok"), "A's last line: %s", last_line(&a));
	CHECK(!a.eof && !a.reset, "A was dropped");
	peer_close(&a);
	peer_close(&b);
	luo_control_stop(ctl);
}

static void stalled_peer_dropped(const char *path)
{
	struct peer c;
	int i;

	where = "stalled peer";
	start(path, 100);
	peer_open(&c, path);
	REQUIRE(serve_until_lines(&c, 1), "no greeting");
	peer_send(&c, "sessions\n");
	for (i = 0; i < 3000 && !dropped_logged; i++)
		turn(10);
	CHECK(dropped_logged == 1, "the stalled peer was not dropped (%d)",
	      dropped_logged);
	/* It reads what was sent, then end of file, not a reset. */
	for (i = 0; i < 3000 && !c.eof; i++) {
		turn(0);
		peer_read(&c);
	}
	CHECK(c.eof && !c.reset, "no clean end of file (eof %d reset %d)",
	      c.eof, c.reset);
	CHECK(c.lines > 1 && c.lines < 1 + SESSIONS + 2,
	      "the dropped peer read %zu lines", c.lines);
	peer_close(&c);
	luo_control_stop(ctl);
}

int main(void)
{
	char dir[] = "/tmp/luo-ctl-peers.XXXXXX", path[256], cmd[128];

	test_name = "control-peers";
	signal(SIGPIPE, SIG_IGN);
	alarm(120);
	REQUIRE(mkdtemp(dir), "mkdtemp");
	snprintf(path, sizeof(path), "%s/p.sock", dir);
	luo_set_log_handler(on_log, NULL);
	REQUIRE(!luo_init(NULL), "luo_init");
	for (int i = 0; i < SESSIONS; i++) {
		char name[32];
		struct luo_session *s;

		snprintf(name, sizeof(name), "listing-%05d", i);
		REQUIRE(!liveupdate_create_session(name, &s), "session %d", i);
	}
	slow_peer_does_not_stall(path);
	stalled_peer_dropped(path);
	luo_exit();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		failures++;
	if (failures)
		return 1;
	printf("%s: all checks passed\n", test_name);
	return 0;
}
