// SPDX-License-Identifier: MIT
/*
 * sessions-updated: the rules of sessions in the UPDATED state, across two
 * real updates in a row (image 1 -> image 2 -> image 3, one binary).
 *
 * Image 1 preserves three memfds through a user file handler that has an
 * FLB, one memfd through a handler that image 2 does not register at
 * first (whose freeze changes its data: the new image must see the change),
 * and some built-in files.  Image 2 retrieves them, checks the
 * handler and FLB callbacks (retrieve per file, FLB retrieved once,
 * finished once with the last file), the error codes of incoming and
 * outgoing sessions, re-preserves files into a new outgoing session while
 * still UPDATED and updates again.  Image 3 checks that this second
 * update carried them.  Over the stage driver (tests/common/stage.h).
 */
#define _GNU_SOURCE

#include "sessions_updated.h"

const char *const user_names[3] = {"userfile-a", "userfile-b", "userfile-c"};
const size_t user_sizes[3] = {1000, 2000, 3000};

int image; /* 1, 2 or 3 */

struct su_counts cnt;

static void order_add(char c)
{
	size_t n = strlen(cnt.order);

	if (n + 1 < sizeof(cnt.order))
		cnt.order[n] = c;
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

struct liveupdate_flb user_flb = {
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

/* Changes the data at freeze, after the seal's checksum was taken ahead
 * at prepare: the new image must get the changed value. */
static int orphan_freeze(struct liveupdate_file_op_args *a)
{
	a->serialized_data = 0x0e9b;
	return 0;
}

static int orphan_retrieve(struct liveupdate_file_op_args *a)
{
	cnt.orphan_retrieve++;
	return a->serialized_data == 0x0e9b ? 0 : -EINVAL;
}

static const struct liveupdate_file_ops orphan_ops = {
	.can_preserve = orphan_can,
	.preserve = orphan_preserve,
	.freeze = orphan_freeze,
	.retrieve = orphan_retrieve,
};

struct liveupdate_file_handler orphan_handler = {
	.ops = &orphan_ops,
	.compatible = "orphan-v1",
};

/* ---- helpers ---- */

int memfd_with(const char *name, const char *text, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	size_t len = strlen(text);

	REQUIRE(fd >= 0, "memfd_create(%s): %s", name, strerror(errno));
	for (size_t off = 0; off < size; off += len) {
		size_t n = size - off < len ? size - off : len;

		CHECK_EQ(pwrite(fd, text, n, (off_t)off), (ssize_t)n);
	}
	return fd;
}

void check_content(int fd, const char *text, size_t size)
{
	char *buf = malloc(size + 1);
	size_t len = strlen(text);

	REQUIRE(buf != NULL, "NULL");
	CHECK_EQ(file_size(fd), size);
	CHECK_EQ(pread(fd, buf, size + 1, 0), (ssize_t)size);
	for (size_t i = 0; i < size; i++) {
		if (buf[i] != text[i % len]) {
			CHECK(0, "byte %zu of the file differs", i);
			break; /* the first is enough */
		}
	}
	free(buf);
}

void check_read(int fd, const char *want)
{
	char buf[64] = "";
	size_t len = strlen(want);
	ssize_t n = read(fd, buf, len);

	CHECK_EQ(n, (ssize_t)len);
	CHECK(!memcmp(buf, want, len), "bytes differ");
}

void register_user(void)
{
	CHECK_EQ(liveupdate_register_file_handler(&user_handler), 0);
	CHECK_EQ(liveupdate_register_flb(&user_handler, &user_flb), 0);
}

static int run(const struct stage *s)
{
	image = (int)s->n;
	REQUIRE(!luo_init(NULL), "luo_init failed");
	switch (s->n) {
	case 1:
		test_i1_preserve();
		stage_reboot(NULL);
		return 1;
	case 2:
		test_i2_state();
		test_i2_outgoing_in_updated();
		test_i2_user_handler_retrieve();
		test_i2_flb_finish();
		test_i2_unregistered_handler();
		test_i2_represerve_user_file();
		test_i2_finish();
		stage_reboot(NULL);
		return 1;
	default:
		test_i3_chained();
		return stage_done(
			"UPDATED sessions, handlers and FLBs across two updates");
	}
}

/* The alarm stays armed across both updates. */
static const struct stage_test test = {"sessions-updated", 30, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
