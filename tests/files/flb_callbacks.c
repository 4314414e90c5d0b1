// SPDX-License-Identifier: MIT
/*
 * flb-callbacks: what a file handler callback may call, across a real
 * update, with a writer queued on the state lock meanwhile.
 *
 * Image 1: the handler's preserve asks for its FLB's object
 * (liveupdate_flb_get_outgoing(), the kernel's intended use) while
 * another thread waits in liveupdate_prepare() for the state lock; the
 * calls the header allows there work, every other one is -EDEADLK at
 * once.  The waiting prepare then runs, and the image updates into
 * itself.  Image 2: the handler's retrieve asks for the FLB's incoming
 * object (liveupdate_flb_get_incoming()) while another thread waits in
 * liveupdate_finish().
 *
 * The writer is known to be queued, not assumed: the test waits until
 * that thread sleeps in the futex system call of the lock
 * (/proc/self/task/TID/syscall), which it reaches only once it is queued.
 * Without the fix each image hangs; the stage driver's alarm turns that
 * into a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <luo/luo.h>

#include "common.h"
#include "stage.h"

#define TOKEN 0xcb1
#define FLB_MAGIC 0xf1bcb1f1bcb1ULL

/* ---- a writer queued on the state lock ---- */

static struct {
	pthread_t thread;
	_Atomic pid_t tid;
	int (*op)(void);
	int ret;
} writer;

static void *writer_main(void *arg)
{
	(void)arg;
	atomic_store(&writer.tid, (pid_t)syscall(SYS_gettid));
	writer.ret = writer.op();
	return NULL;
}

/* Whether thread @tid sleeps in futex(2), i.e. waits for the lock. */
static int in_futex(pid_t tid)
{
	char path[64], buf[128] = "";
	FILE *f;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f))
		nr = strtol(buf, NULL, 10);
	fclose(f);
	return nr == SYS_futex;
}

/* Start @op on another thread and return once it is queued. */
static void queue_writer(int (*op)(void))
{
	writer.op = op;
	atomic_store(&writer.tid, 0);
	if (pthread_create(&writer.thread, NULL, writer_main, NULL))
		abort();
	while (!atomic_load(&writer.tid))
		sched_yield();
	while (!in_futex(atomic_load(&writer.tid)))
		usleep(1000);
}

/* ---- the FLB ---- */

struct flb_obj {
	uint64_t magic;
	int image;
};

static int flb_preserve(struct liveupdate_flb_op_args *a)
{
	struct flb_obj *o;
	int err = kho_alloc_preserve(sizeof(*o), (void **)&o);

	if (err)
		return err;
	o->magic = FLB_MAGIC;
	o->image = 1;
	a->data = kho_ptr_to_offset(o);
	a->obj = o;
	return 0;
}

static int flb_retrieve(struct liveupdate_flb_op_args *a)
{
	struct flb_obj *o;
	int err = kho_restore(a->data, sizeof(*o), (void **)&o);

	if (err)
		return err;
	a->obj = o;
	return o->magic == FLB_MAGIC ? 0 : -EBADMSG;
}

static void flb_finish(struct liveupdate_flb_op_args *a)
{
	(void)a;
}

static const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
};

static struct liveupdate_flb flb = {.ops = &flb_ops,
				    .compatible = "flbcb-flb-v1"};

/* ---- the handler ---- */

static struct luo_session *session;
static int other_fd = -1;
static struct liveupdate_file_handler handler, other_handler;
static int preserve_calls, retrieve_calls;

static bool cb_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	return link_has(fd, "memfd:flbcb");
}

/* Calls every callback may make, and some it may not. */
static void common_calls(void)
{
	struct luo_session *s;
	uint64_t tok[2];

	CHECK(liveupdate_state_read_enter() == 0,
	      "a nested read lock must not wait behind the queued writer");
	liveupdate_state_read_exit();
	CHECK(liveupdate_get_state() != LIVEUPDATE_STATE_UNDEFINED, "state");
	CHECK(liveupdate_session_get_tokens(session, tok, 2) >= 0,
	      "listing tokens is allowed");
	CHECK(liveupdate_session_preserve_fd(session, other_fd, 99) == -EDEADLK,
	      "preserve from a handler callback");
	CHECK(liveupdate_session_unpreserve_fd(session, 98) == -EDEADLK,
	      "unpreserve from a handler callback");
	CHECK(liveupdate_create_session("flbcb-inner", &s) == -EDEADLK,
	      "create from a handler callback");
	CHECK(liveupdate_retrieve_session("flbcb-inner", &s) == -EDEADLK,
	      "retrieve from a handler callback");
	CHECK(liveupdate_register_file_handler(&other_handler) == -EDEADLK,
	      "handler registration from a handler callback");
	CHECK(liveupdate_register_flb(&handler, &flb) == -EDEADLK,
	      "FLB registration from a handler callback");
	CHECK(liveupdate_prepare() == -EDEADLK, "prepare from a callback");
	CHECK(liveupdate_cancel() == -EDEADLK, "cancel from a callback");
	CHECK(liveupdate_finish() == -EDEADLK, "finish from a callback");
}

static int cb_preserve(struct liveupdate_file_op_args *a)
{
	struct flb_obj *o = NULL;

	preserve_calls++;
	queue_writer(liveupdate_prepare);
	CHECK(liveupdate_flb_get_outgoing(&flb, (void **)&o) == 0,
	      "liveupdate_flb_get_outgoing() in preserve");
	CHECK(o && o->magic == FLB_MAGIC, "the outgoing FLB object");
	common_calls();
	a->serialized_data = 0xcb;
	return 0;
}

static int cb_retrieve(struct liveupdate_file_op_args *a)
{
	struct flb_obj *o = NULL;

	retrieve_calls++;
	queue_writer(liveupdate_finish);
	CHECK(liveupdate_flb_get_incoming(&flb, (void **)&o) == 0,
	      "liveupdate_flb_get_incoming() in retrieve");
	CHECK(o && o->magic == FLB_MAGIC && o->image == 1,
	      "the incoming FLB object");
	common_calls();
	return a->serialized_data == 0xcb ? 0 : -EINVAL;
}

static const struct liveupdate_file_ops cb_ops = {
	.can_preserve = cb_can,
	.preserve = cb_preserve,
	.retrieve = cb_retrieve,
};

static void register_all(void)
{
	handler = (struct liveupdate_file_handler){.ops = &cb_ops,
						   .compatible = "flbcb-v1"};
	other_handler = (struct liveupdate_file_handler){
		.ops = &cb_ops, .compatible = "flbcb-other-v1"};
	CHECK(liveupdate_register_file_handler(&handler) == 0, "register");
	CHECK(liveupdate_register_flb(&handler, &flb) == 0, "register FLB");
}

static int image1(void)
{
	int fd = memfd_create("flbcb-file", MFD_CLOEXEC);

	other_fd = memfd_create("plain", MFD_CLOEXEC);
	register_all();
	CHECK(liveupdate_create_session("flbcb", &session) == 0, "session");
	CHECK(liveupdate_session_preserve_fd(session, fd, TOKEN) == 0,
	      "preserve");
	CHECK(preserve_calls == 1, "preserve ran once");
	pthread_join(writer.thread, NULL);
	CHECK(writer.ret == 0, "the queued prepare ran after: %d", writer.ret);
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_PREPARED, "prepared");
	stage_reboot(NULL); /* returns only on failure */
	return 1;
}

static int image2(void)
{
	int fd = -1;

	other_fd = memfd_create("plain", MFD_CLOEXEC);
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "updated");
	register_all();
	CHECK(liveupdate_retrieve_session("flbcb", &session) == 0, "retrieve");
	CHECK(liveupdate_session_retrieve_fd(session, TOKEN, &fd) == 0,
	      "retrieve fd");
	CHECK(retrieve_calls == 1, "retrieve ran once");
	pthread_join(writer.thread, NULL);
	CHECK(writer.ret == 0, "the queued finish ran after: %d", writer.ret);
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL, "finished");
	CHECK(fd >= 0 && fcntl(fd, F_GETFD) >= 0, "the retrieved file");
	return stage_done(
		"FLB getters worked inside preserve and retrieve with a writer queued");
}

static int run(const struct stage *s)
{
	REQUIRE(!luo_init(NULL), "luo_init");
	return s->n == 1 ? image1() : image2();
}

/* A hang is a failure: the alarm bounds the whole chain. */
static const struct stage_test test = {"flb-callbacks", 20, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
