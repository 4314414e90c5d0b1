// SPDX-License-Identifier: MIT
/*
 * unpreserve-updating: a service drops preserved connections while an
 * update is in progress, with no workaround, across a real exec.
 *
 * Every connection is one end of a Unix socket pair; the service closes
 * its own descriptor once it is preserved, so the library's reference is
 * the last one and the other end sees end-of-file exactly when the file
 * is really gone.  The other ends are preserved too (session "peers"), so
 * that the new image can check them.
 *
 * Image 1, round 1 (cancelled): A dropped while PREPARED, B while
 * FROZEN, C from inside a subsystem's cancel callback.  After the cancel
 * their peers see end-of-file, the tokens are free, and the files are not
 * carried.  Round 2 (the real update): D dropped while PREPARED, F while
 * FROZEN, E and G kept.  Image 2: only E and G came (listed and
 * retrievable), D and F are unknown tokens, their peers see end-of-file,
 * G's connection still works.  Image 2 then updates with H dropped only
 * while FROZEN (no drop before: the file table's checksum taken at
 * prepare must give way to the closed mark): image 3 gets only I, and
 * H's peer sees end-of-file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <luo/luo.h>

#include "stage.h"

enum { A, B, C, D, E, F, G, H, I, N };

static struct luo_session *conns, *peers, *late;
static int peer[N];

/* Whether the other end of @fd's connection is gone (EOF now). */
static bool at_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	return poll(&p, 1, 0) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/* A connection @i: its end preserved (our descriptor closed), the other
 * end kept here as peer[i]. */
static void connect_in(struct luo_session *s, int i)
{
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		abort();
	CHECK(liveupdate_session_preserve_fd(s, sp[0], i) == 0, "preserve %d",
	      i);
	close(sp[0]);
	peer[i] = sp[1];
}

static void connect_one(int i)
{
	connect_in(conns, i);
}

static int cancel_calls;

static void sub_cancel(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)h;
	(void)data;
	cancel_calls++;
	CHECK(liveupdate_session_unpreserve_fd(conns, C) == 0,
	      "unpreserve from a cancel callback");
}

static const struct liveupdate_subsystem_ops sub_ops = {.cancel = sub_cancel};
static struct liveupdate_subsystem sub = {.ops = &sub_ops,
					  .name = "unpreserve-test"};

static int image1(void)
{
	CHECK(liveupdate_register_subsystem(&sub) == 0, "subsystem");
	CHECK(liveupdate_create_session("conns", &conns) == 0, "session");
	for (int i = A; i <= C; i++)
		connect_one(i);

	/* Round 1, cancelled. */
	CHECK(liveupdate_prepare() == 0, "prepare");
	CHECK(liveupdate_session_unpreserve_fd(conns, A) == 0, "drop A");
	CHECK(at_eof(peer[A]), "A is closed at once");
	CHECK(liveupdate_freeze() == 0, "freeze");
	CHECK(liveupdate_session_unpreserve_fd(conns, B) == 0, "drop B");
	CHECK(liveupdate_cancel() == 0, "cancel");
	CHECK(cancel_calls == 1, "the cancel callback ran");
	for (int i = A; i <= C; i++) {
		CHECK(at_eof(peer[i]), "connection %d is closed", i);
		close(peer[i]);
	}
	CHECK(liveupdate_session_get_tokens(conns, NULL, 0) == 0,
	      "nothing left in the session");
	CHECK(liveupdate_unregister_subsystem(&sub) == 0, "unregister");

	/* Round 2: the tokens are free again; the real update. */
	for (int i = A; i <= G; i++)
		connect_one(i);
	for (int i = A; i <= C; i++)
		CHECK(liveupdate_session_unpreserve_fd(conns, i) == 0,
		      "drop %d in normal", i);
	CHECK(liveupdate_create_session("peers", &peers) == 0, "peers");
	for (int i = D; i <= G; i++)
		CHECK(liveupdate_session_preserve_fd(peers, peer[i], i) == 0,
		      "preserve peer %d", i);
	CHECK(liveupdate_prepare() == 0, "prepare");
	CHECK(liveupdate_session_unpreserve_fd(conns, D) == 0, "drop D");
	CHECK(liveupdate_freeze() == 0, "freeze");
	CHECK(liveupdate_session_unpreserve_fd(conns, F) == 0, "drop F");
	CHECK(!at_eof(peer[F]), "F is in flight until the exec");
	stage_reboot(NULL); /* from FROZEN; returns only on failure */
	return 1;
}

static int image2(void)
{
	uint64_t tok[8] = {0};
	int fd = -1, e = -1, g = -1, n;
	char c = 0;

	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "updated");
	CHECK(liveupdate_retrieve_session("conns", &conns) == 0, "conns");
	CHECK(liveupdate_retrieve_session("peers", &peers) == 0, "peers");
	n = liveupdate_session_get_tokens(conns, tok, 8);
	CHECK(n == 2 && ((tok[0] == E && tok[1] == G) ||
			 (tok[0] == G && tok[1] == E)),
	      "only E and G came across (%d files)", n);
	CHECK(liveupdate_session_retrieve_fd(conns, D, &fd) == -ENOENT,
	      "D dropped while prepared");
	CHECK(liveupdate_session_retrieve_fd(conns, F, &fd) == -ENOENT,
	      "F dropped while frozen");
	CHECK(liveupdate_session_retrieve_fd(conns, E, &e) == 0, "E");
	CHECK(liveupdate_session_retrieve_fd(conns, G, &g) == 0, "G");
	for (int i = D; i <= G; i++)
		CHECK(liveupdate_session_retrieve_fd(peers, i, &peer[i]) == 0,
		      "peer %d", i);
	CHECK(at_eof(peer[D]), "D's peer sees the end");
	CHECK(at_eof(peer[F]), "F's peer sees the end: closed on arrival");
	CHECK(!at_eof(peer[E]), "E is open");
	CHECK(write(g, "g", 1) == 1 && read(peer[G], &c, 1) == 1 && c == 'g',
	      "G still works");
	CHECK(liveupdate_finish() == 0, "finish");

	/* Dropped only after freeze: nothing writes the table again before. */
	CHECK(liveupdate_create_session("late", &late) == 0, "late");
	CHECK(liveupdate_create_session("late-peers", &peers) == 0,
	      "late-peers");
	for (int i = H; i <= I; i++) {
		connect_in(late, i);
		CHECK(liveupdate_session_preserve_fd(peers, peer[i], i) == 0,
		      "preserve peer %d", i);
	}
	CHECK(liveupdate_prepare() == 0, "prepare");
	CHECK(liveupdate_freeze() == 0, "freeze");
	CHECK(liveupdate_session_unpreserve_fd(late, H) == 0, "drop H");
	stage_reboot(NULL);
	return 1;
}

static int image3(void)
{
	uint64_t tok[4] = {0};
	int fd = -1, n;

	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "updated");
	CHECK(liveupdate_retrieve_session("late", &late) == 0, "late");
	CHECK(liveupdate_retrieve_session("late-peers", &peers) == 0,
	      "late-peers");
	n = liveupdate_session_get_tokens(late, tok, 4);
	CHECK(n == 1 && tok[0] == I, "only I came across (%d files)", n);
	CHECK(liveupdate_session_retrieve_fd(late, H, &fd) == -ENOENT,
	      "H dropped while frozen");
	for (int i = H; i <= I; i++)
		CHECK(liveupdate_session_retrieve_fd(peers, i, &peer[i]) == 0,
		      "peer %d", i);
	CHECK(at_eof(peer[H]), "H's peer sees the end: closed on arrival");
	CHECK(!at_eof(peer[I]), "I is open");
	CHECK(liveupdate_finish() == 0, "finish");
	return stage_done(
		"dropped connections closed, tokens freed, none carried");
}

static int run(const struct stage *s)
{
	REQUIRE(!luo_init(NULL), "luo_init");
	return s->n == 1 ? image1() : s->n == 2 ? image2() : image3();
}

static const struct stage_test test = {"unpreserve-updating", 20, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
