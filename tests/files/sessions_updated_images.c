// SPDX-License-Identifier: MIT
/* sessions-updated: the checks of image 1 (preserve), image 2 (UPDATED:
 * retrieve, handlers, FLB, re-preserve) and image 3 (the chained update). */
#define _GNU_SOURCE

#include "sessions_updated.h"

/* ==== image 1 ==== */

void test_i1_preserve(void)
{
	struct luo_session *user, *orphan, *main_s;
	struct flb_block *b;
	void *obj = NULL;
	int fd, p[2];

	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	register_user();
	CHECK_EQ(liveupdate_register_file_handler(&orphan_handler), 0);
	CHECK_EQ(liveupdate_flb_get_outgoing(&user_flb, &obj), -ENOENT);

	/* Three files of the user handler: one FLB preserve. */
	CHECK_EQ(liveupdate_create_session("user", &user), 0);
	for (int i = 0; i < 3; i++) {
		char text[2] = {(char)('a' + i), 0};

		fd = memfd_with(user_names[i], text, user_sizes[i]);
		CHECK_EQ(liveupdate_session_preserve_fd(user, fd, T_USER(i)),
			 0);
		close(fd);
		CHECK_EQ(cnt.preserve, i + 1);
		CHECK_EQ(cnt.flb_preserve, 1);
	}
	REQUIRE(liveupdate_flb_get_outgoing(&user_flb, &obj) == 0,
		"no FLB object");
	b = obj;
	CHECK_EQ(b->magic, FLB_MAGIC);
	b->flb_preserves = (uint32_t)cnt.flb_preserve;
	b->handler_preserves = (uint32_t)cnt.preserve;

	CHECK_EQ(liveupdate_create_session("orphan", &orphan), 0);
	fd = memfd_with("orphan", "orphan-content", 14);
	CHECK_EQ(liveupdate_session_preserve_fd(orphan, fd, T_ORPHAN), 0);
	close(fd);
	CHECK_EQ(cnt.orphan_preserve, 1);

	/* Built-in files, re-preserved by image 2 for image 3. */
	CHECK_EQ(liveupdate_create_session("main", &main_s), 0);
	fd = memfd_with("plain", "plain-1", 7);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 7);
	CHECK_EQ(liveupdate_session_preserve_fd(main_s, fd, T_PLAIN), 0);
	close(fd);
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(write(p[1], "pipe-1", 6), 6);
	CHECK_EQ(liveupdate_session_preserve_fd(main_s, p[0], T_PIPE_R), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(main_s, p[1], T_PIPE_W), 0);
	close(p[0]);
	close(p[1]);
	/* No user handler file is finished or retrieved in this image. */
	CHECK_EQ(cnt.unpreserve, 0);
	CHECK_EQ(cnt.flb_unpreserve, 0);
}

/* ==== image 2 ==== */

static int plain_fd = -1, pipe_r = -1, pipe_w = -1, user_fd[3] = {-1, -1, -1};
static struct luo_session *next_s, *user_session;

void test_i2_state(void)
{
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	CHECK_EQ(liveupdate_get_num(), 1);
}

void test_i2_outgoing_in_updated(void)
{
	struct luo_session *main_s, *tmp, *other;
	int efd, fd = -1;

	CHECK_EQ(liveupdate_retrieve_session("main", &main_s), 0);
	/* The tokens that came in, before anything is retrieved. */
	{
		uint64_t tok[4] = {0}, seen = 0;

		CHECK_EQ(liveupdate_session_get_tokens(main_s, tok, 4), 3);
		for (int i = 0; i < 3; i++)
			seen |= tok[i] == T_PLAIN    ? 1
				: tok[i] == T_PIPE_R ? 2
				: tok[i] == T_PIPE_W ? 4
						     : 8;
		CHECK_EQ(seen, 7);
	}
	CHECK_EQ(liveupdate_session_retrieve_fd(main_s, T_PLAIN, &plain_fd), 0);
	CHECK_EQ(liveupdate_session_retrieve_fd(main_s, T_PIPE_R, &pipe_r), 0);
	CHECK_EQ(liveupdate_session_retrieve_fd(main_s, T_PIPE_W, &pipe_w), 0);

	/* Outgoing changes are allowed while UPDATED. */
	CHECK_EQ(liveupdate_create_session("next", &next_s), 0);
	CHECK_EQ(liveupdate_create_session("next", &other), -EEXIST);
	CHECK_EQ(liveupdate_session_preserve_fd(next_s, plain_fd, T_PLAIN), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(next_s, pipe_r, T_PIPE_R), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(next_s, pipe_w, T_PIPE_W), 0);
	CHECK_EQ(pwrite(plain_fd, "plain-2", 7, 7), 7);
	CHECK_EQ(write(pipe_w, "pipe-2", 6), 6);

	/* Incoming-only operations on an outgoing session, and back. */
	CHECK_EQ(liveupdate_session_retrieve_fd(next_s, T_PLAIN, &fd), -EINVAL);
	CHECK_EQ(fd, -1);
	CHECK_EQ(liveupdate_session_finish(next_s), -EINVAL);
	CHECK_EQ(liveupdate_session_close(main_s), -EINVAL);
	CHECK_EQ(liveupdate_session_preserve_fd(main_s, plain_fd, 99), -EINVAL);
	CHECK_EQ(liveupdate_session_unpreserve_fd(main_s, T_PLAIN), -EINVAL);

	/* Create, preserve into and close a session while UPDATED: the
	 * file is free again afterwards. */
	efd = eventfd(EFD_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0, "is false");
	CHECK_EQ(liveupdate_create_session("tmp", &tmp), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(tmp, efd, 1), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(next_s, efd, T_EVENTFD),
		 -EBUSY);
	CHECK_EQ(liveupdate_session_close(tmp), 0);
	CHECK_EQ(liveupdate_session_preserve_fd(next_s, efd, T_EVENTFD), 0);
	close(efd);

	/* Finishing the incoming session leaves the re-preserved files. */
	CHECK_EQ(liveupdate_session_finish(main_s), 0);
	check_content(plain_fd, "plain-1plain-2", 14);
}

void test_i2_user_handler_retrieve(void)
{
	struct luo_session *user, *other;
	struct flb_block *b;
	void *obj = NULL, *obj2 = NULL;

	memset(&cnt, 0, sizeof(cnt));
	register_user();
	CHECK_EQ(liveupdate_retrieve_session("user", &user), 0);
	CHECK_EQ(liveupdate_retrieve_session("user", &other), -EINVAL);
	user_session = user;
	for (int i = 0; i < 3; i++) {
		char text[2] = {(char)('a' + i), 0};

		CHECK_EQ(liveupdate_session_retrieve_fd(user, T_USER(i),
							&user_fd[i]),
			 0);
		CHECK_EQ(cnt.retrieve, i + 1);
		CHECK_EQ(cnt.retrieve_data[i], 0x05e4ULL << 48 | user_sizes[i]);
		check_content(user_fd[i], text, user_sizes[i]);
		CHECK(link_has(user_fd[i], user_names[i]), "is false");
	}
	/* The FLB: retrieved on the first call only. */
	CHECK_EQ(cnt.flb_retrieve, 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(liveupdate_flb_get_incoming(&user_flb,
						     i ? &obj2 : &obj),
			 0);
		CHECK_EQ(cnt.flb_retrieve, 1);
	}
	CHECK(obj == obj2, "pointers differ");
	b = obj;
	CHECK_EQ(b->magic, FLB_MAGIC);
	CHECK_EQ(b->image, 1);
	CHECK_STREQ(b->text, "flb of image 1");
	CHECK_EQ(b->flb_preserves, 1);
	CHECK_EQ(b->handler_preserves, 3);
	/* Nothing finished yet. */
	CHECK_EQ(cnt.finish, 0);
	CHECK_EQ(cnt.flb_finish, 0);
}

void test_i2_flb_finish(void)
{
	void *obj = NULL, *obj_before = NULL;

	REQUIRE(user_session != NULL, "NULL");
	CHECK_EQ(liveupdate_flb_get_incoming(&user_flb, &obj_before), 0);
	cnt.order[0] = 0;
	CHECK_EQ(liveupdate_session_finish(user_session), 0);
	CHECK_EQ(cnt.finish, 3);
	CHECK_EQ(cnt.finish_retrieved, 3);
	/* Once, after the third file's own finish. */
	CHECK_EQ(cnt.flb_finish, 1);
	CHECK_EQ(cnt.flb_finishes_at_last_file, 0);
	CHECK_STREQ(cnt.order, "FFFB");
	CHECK_EQ(cnt.flb_finish_data, cnt.flb_retrieve_data);
	CHECK(cnt.flb_finish_obj == obj_before, "pointers differ");
	CHECK_EQ(cnt.flb_finish_image, 1);
	CHECK_EQ(cnt.flb_retrieve, 1);
	CHECK_EQ(liveupdate_flb_get_incoming(&user_flb, &obj), -ENODATA);
	/* The retrieved descriptors are the service's. */
	for (int i = 0; i < 3; i++)
		CHECK(fcntl(user_fd[i], F_GETFD) >= 0, "is false");
}

void test_i2_unregistered_handler(void)
{
	struct luo_session *orphan;
	int fd = -1;

	CHECK_EQ(liveupdate_retrieve_session("orphan", &orphan), 0);
	CHECK_EQ(liveupdate_session_retrieve_fd(orphan, T_ORPHAN, &fd), -ENXIO);
	CHECK_EQ(liveupdate_session_retrieve_fd(orphan, T_ORPHAN, &fd), -ENXIO);
	CHECK_EQ(fd, -1);
	CHECK_EQ(cnt.orphan_retrieve, 0);
	CHECK_EQ(liveupdate_register_file_handler(&orphan_handler), 0);
	CHECK_EQ(liveupdate_session_retrieve_fd(orphan, T_ORPHAN, &fd), 0);
	CHECK_EQ(cnt.orphan_retrieve, 1);
	CHECK(link_has(fd, "memfd:orphan"), "is false");
	check_content(fd, "orphan-content", 14);
	CHECK_EQ(liveupdate_session_finish(orphan), 0);
	close(fd);
}

void test_i2_represerve_user_file(void)
{
	void *obj = NULL;

	cnt.preserve = cnt.flb_preserve = 0;
	CHECK_EQ(liveupdate_session_preserve_fd(next_s, user_fd[1],
						T_USER_AGAIN),
		 0);
	CHECK_EQ(cnt.preserve, 1);
	CHECK_EQ(cnt.flb_preserve, 1);
	CHECK_EQ(liveupdate_flb_get_outgoing(&user_flb, &obj), 0);
	((struct flb_block *)obj)->flb_preserves = 1;
	((struct flb_block *)obj)->handler_preserves = 1;
}

void test_i2_finish(void)
{
	struct luo_session *other;

	CHECK_EQ(liveupdate_finish(), 0);
	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	/* The incoming sessions are gone, the outgoing one stays. */
	CHECK_EQ(liveupdate_retrieve_session("main", &other), -ENOENT);
	CHECK_EQ(liveupdate_create_session("next", &other), -EEXIST);
}

/* ==== image 3 ==== */

void test_i3_chained(void)
{
	struct luo_session *next, *other;
	struct flb_block *b;
	eventfd_t v = 0;
	void *obj = NULL;
	int fd;

	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	CHECK_EQ(liveupdate_get_num(), 2);
	CHECK_EQ(liveupdate_retrieve_session("main", &other), -ENOENT);
	CHECK_EQ(liveupdate_retrieve_session("user", &other), -ENOENT);
	CHECK_EQ(liveupdate_retrieve_session("next", &next), 0);

	CHECK_EQ(liveupdate_session_retrieve_fd(next, T_PLAIN, &fd), 0);
	check_content(fd, "plain-1plain-2", 14);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 7); /* image 1's offset */
	close(fd);
	CHECK_EQ(liveupdate_session_retrieve_fd(next, T_PIPE_R, &fd), 0);
	check_read(fd, "pipe-1pipe-2");
	close(fd);
	CHECK_EQ(liveupdate_session_retrieve_fd(next, T_EVENTFD, &fd), 0);
	CHECK_EQ(eventfd_read(fd, &v), 0);
	CHECK_EQ(v, EFD_VALUE);
	close(fd);

	/* The user file and its FLB, as image 2 preserved them. */
	register_user();
	CHECK_EQ(liveupdate_session_retrieve_fd(next, T_USER_AGAIN, &fd), 0);
	CHECK_EQ(cnt.retrieve, 1);
	check_content(fd, "b", user_sizes[1]);
	close(fd);
	REQUIRE(liveupdate_flb_get_incoming(&user_flb, &obj) == 0,
		"no FLB object");
	b = obj;
	CHECK_EQ(b->image, 2);
	CHECK_STREQ(b->text, "flb of image 2");
	CHECK_EQ(cnt.flb_retrieve, 1);
	CHECK_EQ(liveupdate_session_finish(next), 0);
	CHECK_EQ(cnt.finish, 1);
	CHECK_EQ(cnt.flb_finish, 1);
	CHECK_EQ(cnt.flb_finish_image, 2);
	CHECK_EQ(liveupdate_finish(), 0);
}