// SPDX-License-Identifier: MIT
/*
 * sessions-updated: the rules of sessions in the UPDATED state, across two
 * real updates in a row (image 1 -> image 2 -> image 3, one binary).
 *
 * Image 1 preserves three memfds through a user file handler that has an
 * FLB, one memfd through a handler that image 2 does not register at
 * first, and some built-in files.  Image 2 retrieves them, checks the
 * handler and FLB callbacks (retrieve per file, FLB retrieved once,
 * finished once with the last file), the error codes of incoming and
 * outgoing sessions, re-preserves files into a new outgoing session while
 * still UPDATED and updates again.  Image 3 checks that this second
 * update carried them.  Each image runs its checks as a cmocka group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <luo/luo.h>

#define T_USER(i) (0x05e40000ULL + (i)) /* i = 0, 1, 2 */
#define T_ORPHAN 0x0e9a11ULL
#define T_PLAIN 0x91a1ULL
#define T_PIPE_R 0x919eULL
#define T_PIPE_W 0x919fULL
#define T_EVENTFD 0xefdULL
#define T_USER_AGAIN 0x05e40020ULL
#define FLB_MAGIC 0x464c42424c4f434bULL /* "KCOLBBLF" */
#define EFD_VALUE 42

static const char *const user_names[3] = {"userfile-a", "userfile-b",
					  "userfile-c"};
static const size_t user_sizes[3] = {1000, 2000, 3000};

/* The FLB's object, in handover memory. */
struct flb_block {
	uint64_t magic;
	uint32_t image;		    /* which image preserved it */
	uint32_t flb_preserves;	    /* FLB preserve calls in that image */
	uint32_t handler_preserves; /* file preserve calls in that image */
	char text[32];
};

static int image; /* 1, 2 or 3 */

/* What the callbacks saw, in this image. */
static struct {
	int preserve, unpreserve, retrieve, finish, finish_retrieved;
	uint64_t retrieve_data[8];
	int flb_preserve, flb_unpreserve, flb_retrieve, flb_finish;
	uint64_t flb_retrieve_data, flb_finish_data;
	void *flb_finish_obj;
	uint32_t flb_finish_image;     /* the block's image at FLB finish */
	int flb_finishes_at_last_file; /* FLB finishes when the 3rd ran */
	char order[32];		       /* F: file finish, B: FLB finish */
	int orphan_preserve, orphan_retrieve;
} cnt;

static void order_add(char c)
{
	size_t n = strlen(cnt.order);

	if (n + 1 < sizeof(cnt.order))
		cnt.order[n] = c;
}

static bool link_has(int fd, const char *marker)
{
	char path[64], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return strstr(target, marker) != NULL;
}

/* ---- the user file handler and its FLB ---- */

static bool user_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return link_has(fd, "memfd:userfile");
}

static uint64_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? UINT64_MAX : (uint64_t)st.st_size;
}

/* The handler's data: a tag and the file's size, checked at retrieve. */
static int user_preserve(struct liveupdate_file_op_args *a)
{
	cnt.preserve++;
	a->serialized_data = 0x05e4ULL << 48 | file_size(a->fd);
	return 0;
}

static void user_unpreserve(struct liveupdate_file_op_args *a)
{
	(void)a;
	cnt.unpreserve++;
}

static int user_retrieve(struct liveupdate_file_op_args *a)
{
	if (cnt.retrieve < 8)
		cnt.retrieve_data[cnt.retrieve] = a->serialized_data;
	cnt.retrieve++;
	if (a->serialized_data != (0x05e4ULL << 48 | file_size(a->fd)))
		return -ESTALE;
	return 0;
}

static void user_finish(struct liveupdate_file_op_args *a)
{
	cnt.finish++;
	cnt.finish_retrieved += a->retrieved;
	if (cnt.finish == 3)
		cnt.flb_finishes_at_last_file = cnt.flb_finish;
	order_add('F');
}

static const struct liveupdate_file_ops user_ops = {
	.can_preserve = user_can,
	.preserve = user_preserve,
	.unpreserve = user_unpreserve,
	.retrieve = user_retrieve,
	.finish = user_finish,
};

static struct liveupdate_file_handler user_handler = {
	.ops = &user_ops,
	.compatible = "userfile-v1",
};

static int flb_preserve(struct liveupdate_flb_op_args *a)
{
	struct flb_block *b;
	int err = kho_alloc_preserve(sizeof(*b), (void **)&b);

	cnt.flb_preserve++;
	if (err)
		return err;
	b->magic = FLB_MAGIC;
	b->image = (uint32_t)image;
	snprintf(b->text, sizeof(b->text), "flb of image %d", image);
	a->data = kho_ptr_to_offset(b);
	a->obj = b;
	return 0;
}

static void flb_unpreserve(struct liveupdate_flb_op_args *a)
{
	cnt.flb_unpreserve++;
	kho_unpreserve_free(a->obj);
}

static int flb_retrieve(struct liveupdate_flb_op_args *a)
{
	struct flb_block *b;
	int err = kho_restore(a->data, sizeof(*b), (void **)&b);

	cnt.flb_retrieve++;
	cnt.flb_retrieve_data = a->data;
	if (err)
		return err;
	if (b->magic != FLB_MAGIC)
		return -EBADMSG;
	a->obj = b;
	return 0;
}

static void flb_finish(struct liveupdate_flb_op_args *a)
{
	struct flb_block *b = a->obj;

	cnt.flb_finish++;
	cnt.flb_finish_data = a->data;
	cnt.flb_finish_obj = a->obj;
	cnt.flb_finish_image = b ? b->image : 0;
	order_add('B');
	if (b)
		kho_unpreserve_free(b);
}

static const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.unpreserve = flb_unpreserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
};

static struct liveupdate_flb user_flb = {
	.ops = &flb_ops,
	.compatible = "userfile-flb-v1",
};

/* ---- a handler that image 2 registers late ---- */

static bool orphan_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return link_has(fd, "memfd:orphan");
}

static int orphan_preserve(struct liveupdate_file_op_args *a)
{
	cnt.orphan_preserve++;
	a->serialized_data = 0x0e9a;
	return 0;
}

static int orphan_retrieve(struct liveupdate_file_op_args *a)
{
	cnt.orphan_retrieve++;
	return a->serialized_data == 0x0e9a ? 0 : -EINVAL;
}

static const struct liveupdate_file_ops orphan_ops = {
	.can_preserve = orphan_can,
	.preserve = orphan_preserve,
	.retrieve = orphan_retrieve,
};

static struct liveupdate_file_handler orphan_handler = {
	.ops = &orphan_ops,
	.compatible = "orphan-v1",
};

/* ---- helpers ---- */

static char self[4096];

static int memfd_with(const char *name, const char *text, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	for (size_t off = 0; off < size; off += len) {
		size_t n = size - off < len ? size - off : len;

		assert_int_equal(pwrite(fd, text, n, (off_t)off), (ssize_t)n);
	}
	return fd;
}

static void assert_content(int fd, const char *text, size_t size)
{
	char *buf = malloc(size + 1);
	size_t len = strlen(text);

	assert_non_null(buf);
	assert_int_equal(file_size(fd), size);
	assert_int_equal(pread(fd, buf, size + 1, 0), (ssize_t)size);
	for (size_t i = 0; i < size; i++)
		if (buf[i] != text[i % len])
			fail_msg("byte %zu of the file differs", i);
	free(buf);
}

static void assert_read(int fd, const char *want)
{
	char buf[64] = "";
	size_t len = strlen(want);
	ssize_t n = read(fd, buf, len);

	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, want, len);
}

static void register_user(void)
{
	assert_int_equal(liveupdate_register_file_handler(&user_handler), 0);
	assert_int_equal(liveupdate_register_flb(&user_handler, &user_flb), 0);
}

static void do_update(const char *next)
{
	char *const argv[] = {self, (char *)next, NULL};
	int err = liveupdate_prepare();

	if (!err)
		err = liveupdate_reboot(self, argv, NULL);
	fprintf(stderr, "sessions-updated: update into %s failed: %s\n", next,
		strerror(-err));
}

/* ==== image 1 ==== */

static void test_i1_preserve(void **state)
{
	struct luo_session *user, *orphan, *main_s;
	struct flb_block *b;
	void *obj = NULL;
	int fd, p[2];

	(void)state;
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	register_user();
	assert_int_equal(liveupdate_register_file_handler(&orphan_handler), 0);
	assert_int_equal(liveupdate_flb_get_outgoing(&user_flb, &obj), -ENOENT);

	/* Three files of the user handler: one FLB preserve. */
	assert_int_equal(liveupdate_create_session("user", &user), 0);
	for (int i = 0; i < 3; i++) {
		char text[2] = {(char)('a' + i), 0};

		fd = memfd_with(user_names[i], text, user_sizes[i]);
		assert_int_equal(
			liveupdate_session_preserve_fd(user, fd, T_USER(i)), 0);
		close(fd);
		assert_int_equal(cnt.preserve, i + 1);
		assert_int_equal(cnt.flb_preserve, 1);
	}
	assert_int_equal(liveupdate_flb_get_outgoing(&user_flb, &obj), 0);
	b = obj;
	assert_int_equal(b->magic, FLB_MAGIC);
	b->flb_preserves = (uint32_t)cnt.flb_preserve;
	b->handler_preserves = (uint32_t)cnt.preserve;

	assert_int_equal(liveupdate_create_session("orphan", &orphan), 0);
	fd = memfd_with("orphan", "orphan-content", 14);
	assert_int_equal(liveupdate_session_preserve_fd(orphan, fd, T_ORPHAN),
			 0);
	close(fd);
	assert_int_equal(cnt.orphan_preserve, 1);

	/* Built-in files, re-preserved by image 2 for image 3. */
	assert_int_equal(liveupdate_create_session("main", &main_s), 0);
	fd = memfd_with("plain", "plain-1", 7);
	assert_int_equal(lseek(fd, 0, SEEK_END), 7);
	assert_int_equal(liveupdate_session_preserve_fd(main_s, fd, T_PLAIN),
			 0);
	close(fd);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "pipe-1", 6), 6);
	assert_int_equal(liveupdate_session_preserve_fd(main_s, p[0], T_PIPE_R),
			 0);
	assert_int_equal(liveupdate_session_preserve_fd(main_s, p[1], T_PIPE_W),
			 0);
	close(p[0]);
	close(p[1]);
	/* No user handler file is finished or retrieved in this image. */
	assert_int_equal(cnt.unpreserve, 0);
	assert_int_equal(cnt.flb_unpreserve, 0);
}

/* ==== image 2 ==== */

static int plain_fd = -1, pipe_r = -1, pipe_w = -1, user_fd[3] = {-1, -1, -1};
static struct luo_session *next_s, *user_session;

static void test_i2_state(void **state)
{
	(void)state;
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	assert_int_equal(liveupdate_get_num(), 1);
}

static void test_i2_outgoing_in_updated(void **state)
{
	struct luo_session *main_s, *tmp, *other;
	int efd, fd = -1;

	(void)state;
	assert_int_equal(liveupdate_retrieve_session("main", &main_s), 0);
	/* The tokens that came in, before anything is retrieved. */
	{
		uint64_t tok[4] = {0}, seen = 0;

		assert_int_equal(liveupdate_session_get_tokens(main_s, tok, 4),
				 3);
		for (int i = 0; i < 3; i++)
			seen |= tok[i] == T_PLAIN    ? 1
				: tok[i] == T_PIPE_R ? 2
				: tok[i] == T_PIPE_W ? 4
						     : 8;
		assert_int_equal(seen, 7);
	}
	assert_int_equal(
		liveupdate_session_retrieve_fd(main_s, T_PLAIN, &plain_fd), 0);
	assert_int_equal(
		liveupdate_session_retrieve_fd(main_s, T_PIPE_R, &pipe_r), 0);
	assert_int_equal(
		liveupdate_session_retrieve_fd(main_s, T_PIPE_W, &pipe_w), 0);

	/* Outgoing changes are allowed while UPDATED. */
	assert_int_equal(liveupdate_create_session("next", &next_s), 0);
	assert_int_equal(liveupdate_create_session("next", &other), -EEXIST);
	assert_int_equal(
		liveupdate_session_preserve_fd(next_s, plain_fd, T_PLAIN), 0);
	assert_int_equal(
		liveupdate_session_preserve_fd(next_s, pipe_r, T_PIPE_R), 0);
	assert_int_equal(
		liveupdate_session_preserve_fd(next_s, pipe_w, T_PIPE_W), 0);
	assert_int_equal(pwrite(plain_fd, "plain-2", 7, 7), 7);
	assert_int_equal(write(pipe_w, "pipe-2", 6), 6);

	/* Incoming-only operations on an outgoing session, and back. */
	assert_int_equal(liveupdate_session_retrieve_fd(next_s, T_PLAIN, &fd),
			 -EINVAL);
	assert_int_equal(fd, -1);
	assert_int_equal(liveupdate_session_finish(next_s), -EINVAL);
	assert_int_equal(liveupdate_session_close(main_s), -EINVAL);
	assert_int_equal(liveupdate_session_preserve_fd(main_s, plain_fd, 99),
			 -EINVAL);
	assert_int_equal(liveupdate_session_unpreserve_fd(main_s, T_PLAIN),
			 -EINVAL);

	/* Create, preserve into and close a session while UPDATED: the
	 * file is free again afterwards. */
	efd = eventfd(EFD_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(efd >= 0);
	assert_int_equal(liveupdate_create_session("tmp", &tmp), 0);
	assert_int_equal(liveupdate_session_preserve_fd(tmp, efd, 1), 0);
	assert_int_equal(liveupdate_session_preserve_fd(next_s, efd, T_EVENTFD),
			 -EBUSY);
	assert_int_equal(liveupdate_session_close(tmp), 0);
	assert_int_equal(liveupdate_session_preserve_fd(next_s, efd, T_EVENTFD),
			 0);
	close(efd);

	/* Finishing the incoming session leaves the re-preserved files. */
	assert_int_equal(liveupdate_session_finish(main_s), 0);
	assert_content(plain_fd, "plain-1plain-2", 14);
}

static void test_i2_user_handler_retrieve(void **state)
{
	struct luo_session *user, *other;
	struct flb_block *b;
	void *obj = NULL, *obj2 = NULL;

	(void)state;
	memset(&cnt, 0, sizeof(cnt));
	register_user();
	assert_int_equal(liveupdate_retrieve_session("user", &user), 0);
	assert_int_equal(liveupdate_retrieve_session("user", &other), -EINVAL);
	user_session = user;
	for (int i = 0; i < 3; i++) {
		char text[2] = {(char)('a' + i), 0};

		assert_int_equal(liveupdate_session_retrieve_fd(user, T_USER(i),
								&user_fd[i]),
				 0);
		assert_int_equal(cnt.retrieve, i + 1);
		assert_int_equal(cnt.retrieve_data[i],
				 0x05e4ULL << 48 | user_sizes[i]);
		assert_content(user_fd[i], text, user_sizes[i]);
		assert_true(link_has(user_fd[i], user_names[i]));
	}
	/* The FLB: retrieved on the first call only. */
	assert_int_equal(cnt.flb_retrieve, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(liveupdate_flb_get_incoming(&user_flb,
							     i ? &obj2 : &obj),
				 0);
		assert_int_equal(cnt.flb_retrieve, 1);
	}
	assert_ptr_equal(obj, obj2);
	b = obj;
	assert_int_equal(b->magic, FLB_MAGIC);
	assert_int_equal(b->image, 1);
	assert_string_equal(b->text, "flb of image 1");
	assert_int_equal(b->flb_preserves, 1);
	assert_int_equal(b->handler_preserves, 3);
	/* Nothing finished yet. */
	assert_int_equal(cnt.finish, 0);
	assert_int_equal(cnt.flb_finish, 0);
}

static void test_i2_flb_finish(void **state)
{
	void *obj = NULL, *obj_before = NULL;

	(void)state;
	assert_non_null(user_session);
	assert_int_equal(liveupdate_flb_get_incoming(&user_flb, &obj_before),
			 0);
	cnt.order[0] = 0;
	assert_int_equal(liveupdate_session_finish(user_session), 0);
	assert_int_equal(cnt.finish, 3);
	assert_int_equal(cnt.finish_retrieved, 3);
	/* Once, after the third file's own finish. */
	assert_int_equal(cnt.flb_finish, 1);
	assert_int_equal(cnt.flb_finishes_at_last_file, 0);
	assert_string_equal(cnt.order, "FFFB");
	assert_int_equal(cnt.flb_finish_data, cnt.flb_retrieve_data);
	assert_ptr_equal(cnt.flb_finish_obj, obj_before);
	assert_int_equal(cnt.flb_finish_image, 1);
	assert_int_equal(cnt.flb_retrieve, 1);
	assert_int_equal(liveupdate_flb_get_incoming(&user_flb, &obj),
			 -ENODATA);
	/* The retrieved descriptors are the service's. */
	for (int i = 0; i < 3; i++)
		assert_true(fcntl(user_fd[i], F_GETFD) >= 0);
}

static void test_i2_unregistered_handler(void **state)
{
	struct luo_session *orphan;
	int fd = -1;

	(void)state;
	assert_int_equal(liveupdate_retrieve_session("orphan", &orphan), 0);
	assert_int_equal(liveupdate_session_retrieve_fd(orphan, T_ORPHAN, &fd),
			 -ENXIO);
	assert_int_equal(liveupdate_session_retrieve_fd(orphan, T_ORPHAN, &fd),
			 -ENXIO);
	assert_int_equal(fd, -1);
	assert_int_equal(cnt.orphan_retrieve, 0);
	assert_int_equal(liveupdate_register_file_handler(&orphan_handler), 0);
	assert_int_equal(liveupdate_session_retrieve_fd(orphan, T_ORPHAN, &fd),
			 0);
	assert_int_equal(cnt.orphan_retrieve, 1);
	assert_true(link_has(fd, "memfd:orphan"));
	assert_content(fd, "orphan-content", 14);
	assert_int_equal(liveupdate_session_finish(orphan), 0);
	close(fd);
}

static void test_i2_represerve_user_file(void **state)
{
	void *obj = NULL;

	(void)state;
	cnt.preserve = cnt.flb_preserve = 0;
	assert_int_equal(liveupdate_session_preserve_fd(next_s, user_fd[1],
							T_USER_AGAIN),
			 0);
	assert_int_equal(cnt.preserve, 1);
	assert_int_equal(cnt.flb_preserve, 1);
	assert_int_equal(liveupdate_flb_get_outgoing(&user_flb, &obj), 0);
	((struct flb_block *)obj)->flb_preserves = 1;
	((struct flb_block *)obj)->handler_preserves = 1;
}

static void test_i2_finish(void **state)
{
	struct luo_session *other;

	(void)state;
	assert_int_equal(liveupdate_finish(), 0);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	/* The incoming sessions are gone, the outgoing one stays. */
	assert_int_equal(liveupdate_retrieve_session("main", &other), -ENOENT);
	assert_int_equal(liveupdate_create_session("next", &other), -EEXIST);
}

/* ==== image 3 ==== */

static void test_i3_chained(void **state)
{
	struct luo_session *next, *other;
	struct flb_block *b;
	eventfd_t v = 0;
	void *obj = NULL;
	int fd;

	(void)state;
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	assert_int_equal(liveupdate_get_num(), 2);
	assert_int_equal(liveupdate_retrieve_session("main", &other), -ENOENT);
	assert_int_equal(liveupdate_retrieve_session("user", &other), -ENOENT);
	assert_int_equal(liveupdate_retrieve_session("next", &next), 0);

	assert_int_equal(liveupdate_session_retrieve_fd(next, T_PLAIN, &fd), 0);
	assert_content(fd, "plain-1plain-2", 14);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 7); /* image 1's offset */
	close(fd);
	assert_int_equal(liveupdate_session_retrieve_fd(next, T_PIPE_R, &fd),
			 0);
	assert_read(fd, "pipe-1pipe-2");
	close(fd);
	assert_int_equal(liveupdate_session_retrieve_fd(next, T_EVENTFD, &fd),
			 0);
	assert_int_equal(eventfd_read(fd, &v), 0);
	assert_int_equal(v, EFD_VALUE);
	close(fd);

	/* The user file and its FLB, as image 2 preserved them. */
	register_user();
	assert_int_equal(
		liveupdate_session_retrieve_fd(next, T_USER_AGAIN, &fd), 0);
	assert_int_equal(cnt.retrieve, 1);
	assert_content(fd, "b", user_sizes[1]);
	close(fd);
	assert_int_equal(liveupdate_flb_get_incoming(&user_flb, &obj), 0);
	b = obj;
	assert_int_equal(b->image, 2);
	assert_string_equal(b->text, "flb of image 2");
	assert_int_equal(cnt.flb_retrieve, 1);
	assert_int_equal(liveupdate_session_finish(next), 0);
	assert_int_equal(cnt.finish, 1);
	assert_int_equal(cnt.flb_finish, 1);
	assert_int_equal(cnt.flb_finish_image, 2);
	assert_int_equal(liveupdate_finish(), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest image1_tests[] = {
		cmocka_unit_test(test_i1_preserve),
	};
	const struct CMUnitTest image2_tests[] = {
		cmocka_unit_test(test_i2_state),
		cmocka_unit_test(test_i2_outgoing_in_updated),
		cmocka_unit_test(test_i2_user_handler_retrieve),
		cmocka_unit_test(test_i2_flb_finish),
		cmocka_unit_test(test_i2_unregistered_handler),
		cmocka_unit_test(test_i2_represerve_user_file),
		cmocka_unit_test(test_i2_finish),
	};
	const struct CMUnitTest image3_tests[] = {
		cmocka_unit_test(test_i3_chained),
	};
	ssize_t n;
	int failed;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return 1;
	self[n] = 0;
	image = argc < 2 ? 1 : !strcmp(argv[1], "--image2") ? 2 : 3;
	if (image == 1)
		alarm(30); /* stays armed across both updates */
	if (luo_init(NULL)) {
		fprintf(stderr, "sessions-updated: luo_init failed\n");
		return 1;
	}
	switch (image) {
	case 1:
		failed = cmocka_run_group_tests_name("image-1", image1_tests,
						     NULL, NULL);
		if (!failed)
			do_update("--image2");
		return 1;
	case 2:
		failed = cmocka_run_group_tests_name("image-2-updated",
						     image2_tests, NULL, NULL);
		if (!failed)
			do_update("--image3");
		return 1;
	default:
		return cmocka_run_group_tests_name("image-3-chained",
						   image3_tests, NULL, NULL);
	}
}
